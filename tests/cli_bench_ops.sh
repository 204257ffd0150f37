#!/usr/bin/env bash
# `gradfeat bench ops` / `bench linearized` smoke tests at tiny sizes (the real runs are batch 64): the
# table has the three conv rows with finite GFLOP/s and ratios; bad options
# are usage errors (exit 2).
set -u
fails=0
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
"$GF_BIN" bench ops --batch 1 --reps 1 > "$t/out.txt" 2> "$t/err.txt"; rc=$?
cat "$t/out.txt"
[ $rc -eq 0 ] || { echo "FAIL: bench ops exited $rc"; cat "$t/err.txt"; fails=1; }
for row in "conv forward" "conv tangent" "conv backward"; do
  grep -E "^$row.* [0-9]+\.[0-9]+ +\(GEMM" "$t/out.txt" | grep -qvE "nan|inf" || { echo "FAIL: no finite row '$row'"; fails=1; }
done
"$GF_BIN" bench ops --batch 0 > /dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || { echo "FAIL: --batch 0 exited $rc, want 2"; fails=1; }
"$GF_BIN" bench nothing > /dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || { echo "FAIL: unknown benchmark exited $rc, want 2"; fails=1; }
# bench linearized (W1 shape, tiny): runs, reports peak memory; a budget too small fails with exit 4
"$GF_BIN" bench linearized --batch 2 --size 32 --reps 1 --max-device-mem 512M > "$t/lin.txt" 2>&1; rc=$?
[ $rc -eq 0 ] && grep -qE "^linearized \(full\) +[0-9.]+" "$t/lin.txt" && grep -q "peak device memory" "$t/lin.txt" ||
  { echo "FAIL: bench linearized (rc $rc)"; cat "$t/lin.txt"; fails=1; }
"$GF_BIN" bench linearized --batch 2 --size 32 --reps 1 --max-device-mem 1M > /dev/null 2> "$t/oom.txt"; rc=$?
[ $rc -eq 4 ] && grep -q "max-device-mem" "$t/oom.txt" || { echo "FAIL: tiny budget exited $rc, want 4"; cat "$t/oom.txt"; fails=1; }
[ $fails -eq 0 ] && echo "bench ops: ok"
exit $fails
