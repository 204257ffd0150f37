#!/usr/bin/env bash
# `gradfeat bench ops` smoke test at batch 1 (the real run is batch 64): the
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
[ $fails -eq 0 ] && echo "bench ops: ok"
exit $fails
