#!/usr/bin/env bash
# Long libFuzzer runs for the issue's figures: every harness, one at a time, at
# `nice -n 19` (the machine is shared), each until it has executed RUNS inputs
# or spent its time. Time: --secs S per harness, or --until HH:MM (UTC) to
# share the time left fairly: each harness gets (time left)/(harnesses left),
# so what a fast harness leaves (it stops at RUNS) goes to the slower ones.
# A crash does not end a harness's run: the artifact is kept (OUT/crash-*), the
# fuzzer restarts on the grown corpus for the rest of its time, and the crash
# is counted. Writes OUT/summary.tsv and prints it as a table:
#   harness, execs, seconds, exec/s, cov, ft (libFuzzer's last line), corpus
#   files, crashes, target (>= 10 M executions or >= 3600 s, and no crash).
#   tools/fuzz_long.sh [--until HH:MM | --secs S] [--runs N] [--out DIR] [--build DIR] [NAMES...]
# Defaults: --secs 3600, --runs 10000000, --out /tmp/fuzzlong, --build build-fuzz,
# names in order config checkpoint model idx csv image (fast ones first).
# Binaries are taken from the build dir when each harness starts (build with
# tests/fuzz/build.sh first), so a harness fixed during the run is picked up.
# Background: nohup tools/fuzz_long.sh --until 09:15 >/tmp/fuzzlong/run.log 2>&1 &
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
SECS=3600 UNTIL="" RUNS=10000000 OUT=/tmp/fuzzlong BUILD="$SRC/build-fuzz"
while [ $# -gt 0 ]; do
  case "$1" in
    --until) UNTIL=$2; shift 2 ;;
    --secs) SECS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    -*) echo "fuzz_long.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(config checkpoint model idx csv image)
end=""
if [ -n "$UNTIL" ]; then
  end=$(date -u -d "$UNTIL" +%s) || { echo "fuzz_long.sh: bad --until $UNTIL" >&2; exit 2; }
  [ "$end" -gt "$(date +%s)" ] || end=$((end + 86400))
fi
mkdir -p "$OUT"
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
summary="$OUT/summary.tsv"
printf 'harness\texecs\tseconds\texec_per_s\tcov\tft\tcorpus\tcrashes\ttarget\n' >"$summary"
left=${#names[@]}
for name in "${names[@]}"; do
  budget=$SECS
  [ -n "$end" ] && budget=$(( (end - $(date +%s)) / left ))
  left=$((left - 1))
  work="$OUT/work/$name"
  mkdir -p "$work"
  log="$OUT/$name.log"
  : >"$log"
  t0=$(date +%s) execs=0 crashes=0 cov="" ft="" seg=0
  echo "$(date -u +%T) fuzz_$name: budget ${budget} s or $RUNS executions"
  while :; do
    spent=$(( $(date +%s) - t0 ))
    remain=$((budget - spent)) todo=$((RUNS - execs))
    [ "$remain" -ge 10 ] && [ "$todo" -gt 0 ] || break
    [ -x "$BUILD/fuzz_$name" ] || { echo "fuzz_$name: no binary in $BUILD" | tee -a "$log"; break; }
    seg=$((seg + 1))
    nice -n 19 "$BUILD/fuzz_$name" -max_total_time="$remain" -runs="$todo" -timeout=30 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$OUT/crash-$name-" "$work" "$SRC/tests/fuzz/corpus/$name" \
      >"$OUT/$name.seg$seg.log" 2>&1
    rc=$?
    cat "$OUT/$name.seg$seg.log" >>"$log"
    n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$OUT/$name.seg$seg.log" | tail -1)
    [ -n "$n" ] || n=$(grep -oE '^#[0-9]+' "$OUT/$name.seg$seg.log" | tail -1 | tr -d '#')
    execs=$((execs + ${n:-0}))
    last=$(grep -E '^#[0-9]+.*cov: ' "$OUT/$name.seg$seg.log" | tail -1)
    c=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last"); f=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    [ -n "$c" ] && cov=$c ft=$f
    rm -f "$OUT/$name.seg$seg.log"
    if [ "$rc" -ne 0 ]; then
      crashes=$((crashes + 1))
      echo "$(date -u +%T) fuzz_$name: crash (exit $rc) after ${n:-?} executions in segment $seg; see $log and $OUT/crash-$name-*"
      [ "${n:-0}" -ge 1000 ] || { echo "fuzz_$name: crashes at once, giving up on this harness"; break; }
    fi
  done
  secs=$(( $(date +%s) - t0 ))
  rate=$(( secs > 0 ? execs / secs : 0 ))
  corp=$(ls "$work" | wc -l)
  target=no
  { [ "$execs" -ge 10000000 ] || [ "$secs" -ge 3600 ]; } && [ "$crashes" -eq 0 ] && target=yes
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "fuzz_$name" "$execs" "$secs" "$rate" "${cov:-?}" "${ft:-?}" \
    "$corp" "$crashes" "$target" >>"$summary"
  echo "$(date -u +%T) fuzz_$name: $execs executions in $secs s ($rate/s), cov ${cov:-?} ft ${ft:-?}, corpus $corp, crashes $crashes"
done
column -t -s $'\t' "$summary"
