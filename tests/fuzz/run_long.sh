#!/usr/bin/env bash
# Long fuzzing, one harness after the other (one core, niced), each for SECS
# seconds, growing the working corpus OUT/work/<name> from the seeds in
# tests/fuzz/corpus/<name>. Prints executions and coverage per harness;
# crashes land in OUT/crash-<name>-*.
#   tests/fuzz/run_long.sh [SECS [OUT [NAMES...]]]   (defaults: 600, build-fuzz, all)
set -u
SRC=$(cd "$(dirname "$0")/../.." && pwd)
SECS=${1:-600}
OUT=${2:-$SRC/build-fuzz}
shift 2 2>/dev/null || shift $#
bash "$SRC/tests/fuzz/build.sh" "$OUT" >/dev/null || exit 1
names=("$@")
[ ${#names[@]} -gt 0 ] || for d in "$SRC"/tests/fuzz/corpus/*/; do names+=("$(basename "$d")"); done
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
rc=0
for name in "${names[@]}"; do
  mkdir -p "$OUT/work/$name"
  log="$OUT/long-$name.log"
  start=$(date +%s)
  nice -n 10 "$OUT/fuzz_$name" -max_total_time="$SECS" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$OUT/crash-$name-" "$OUT/work/$name" "$SRC/tests/fuzz/corpus/$name" >"$log" 2>&1 || rc=1
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9a-zA-Z]+')
  crashes=$(ls "$OUT"/crash-"$name"-* 2>/dev/null | wc -l)
  echo "fuzz_$name: ${execs:-?} executions in $(( $(date +%s) - start )) s, $last, crash files: $crashes"
done
exit $rc
