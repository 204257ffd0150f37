#!/usr/bin/env bash
# libFuzzer smoke run: builds tests/fuzz/fuzz_*.c with clang (ASan + UBSan +
# libFuzzer, tests/fuzz/build.sh, into $GF_BUILD/fuzz), replays each harness's
# seed corpus (tests/fuzz/corpus/<name>: every seed must still be accepted or
# rejected cleanly), then mutates GF_FUZZ_RUNS (default 5000) inputs per harness
# with a fixed libFuzzer seed (GF_FUZZ_SEED, default 1), so CI is reproducible:
# the long, randomly seeded runs (tests/README.md) are where new bugs are hunted.
# (A known stb_image 2.27 bug in progressive-JPEG Huffman decoding, found by the
# long runs, would otherwise make this test fail at random.)
# Fails on any crash, sanitizer report, leak, timeout (>30 s per input: a million-class CSV takes ~6 s under ASan) or
# out-of-memory (>2 GiB), and prints the reproducer. Long runs: tests/README.md.
set -u
SRC=${GF_SRC:?GF_SRC}
OUT=${GF_BUILD:?GF_BUILD}/fuzz
RUNS=${GF_FUZZ_RUNS:-5000}
SEED=${GF_FUZZ_SEED:-1}
T=$(mktemp -d /tmp/gf_fuzz_smoke_XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

command -v clang >/dev/null || { echo "FAIL: clang not installed (apt-get install clang libclang-rt-14-dev)"; exit 1; }
if ! bash "$SRC/tests/fuzz/build.sh" "$OUT" >"$T/build.txt" 2>&1; then
  cat "$T/build.txt"; echo "FAIL: tests/fuzz/build.sh"; exit 1
fi
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
n=0
for seeds in "$SRC"/tests/fuzz/corpus/*/; do
  name=$(basename "$seeds")
  bin="$OUT/fuzz_$name"
  [ -x "$bin" ] || { fail "no harness binary for corpus $name"; continue; }
  n=$((n + 1))
  mkdir -p "$T/$name"
  # 1) the seeds alone: a regression check that needs no luck
  if ! "$bin" -runs=0 -timeout=30 -rss_limit_mb=2048 -artifact_prefix="$T/$name-" "$seeds" >"$T/$name.seeds.log" 2>&1; then
    tail -40 "$T/$name.seeds.log"; fail "$name: a seed input crashed"; continue
  fi
  # 2) bounded mutation
  if ! "$bin" -runs="$RUNS" -seed="$SEED" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$T/$name-" "$T/$name" "$seeds" >"$T/$name.log" 2>&1; then
    tail -60 "$T/$name.log"
    for a in "$T/$name"-*; do [ -e "$a" ] && { echo "reproducer ($a):"; od -c "$a" | head -20; }; done
    fail "$name: fuzzing found a crash (reproduce: $bin <file>)"
    continue
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$T/$name.log")
  last=$(grep -E '^#[0-9]+' "$T/$name.log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+')
  echo "ok  fuzz_$name: $execs executions (seed $SEED), $last"
done
[ "$n" -ge 4 ] || fail "expected at least 4 harnesses (model, idx, csv, image), ran $n"
[ "$fails" -eq 0 ] && echo "cli_fuzz_smoke: all passed" || echo "cli_fuzz_smoke: $fails failed"
exit $((fails > 0))
