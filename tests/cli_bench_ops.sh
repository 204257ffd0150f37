#!/usr/bin/env bash
# `gradfeat bench ops` / `bench linearized` / `bench trunk` smoke tests at tiny sizes (the real runs are batch 64): the
# table has the three conv rows with finite GFLOP/s, ratios and % of the SGEMM peak; each bench prints the
# roofline line (SGEMM peak and memory bandwidth, positive); bad options are usage errors (exit 2).
set -u
fails=0
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
# "roofline: SGEMM peak X GFLOP/s (...), memory bandwidth Y GB/s (...); ridge Z FLOP/byte" with X, Y, Z > 0
roofline_ok() {
  sed -n 's/^roofline: SGEMM peak \([0-9.]*\) GFLOP\/s (gf_gemm [0-9x]*), memory bandwidth \([0-9.]*\) GB\/s (.*); ridge \([0-9.]*\) FLOP\/byte$/\1 \2 \3/p' "$1" |
    awk 'NF == 3 && $1 > 0 && $2 > 0 && $3 > 0 { ok = 1 } END { exit !ok }'
}
"$GF_BIN" bench ops --batch 1 --reps 1 > "$t/out.txt" 2> "$t/err.txt"; rc=$?
cat "$t/out.txt"
[ $rc -eq 0 ] || { echo "FAIL: bench ops exited $rc"; cat "$t/err.txt"; fails=1; }
for row in "conv forward" "conv tangent" "conv backward"; do
  grep -E "^$row.* [0-9]+\.[0-9]+ +[0-9]+\.[0-9] +\(GEMM" "$t/out.txt" | grep -vE "nan|inf" |
    sed -E 's/.* ([0-9.]+) +\(GEMM.*/\1/' | awk '$1 > 0 { ok = 1 } END { exit !ok }' || { echo "FAIL: no finite row '$row' with a positive peak %"; fails=1; }
done
roofline_ok "$t/out.txt" || { echo "FAIL: bench ops: no roofline line with positive figures"; fails=1; }
grep -qE "^  NN .* GFLOP/s +[0-9]+\.[0-9] % of peak$" "$t/out.txt" || { echo "FAIL: bench ops: plain GEMM rows without % of peak"; fails=1; }
"$GF_BIN" bench ops --batch 0 > /dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || { echo "FAIL: --batch 0 exited $rc, want 2"; fails=1; }
"$GF_BIN" bench nothing > /dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || { echo "FAIL: unknown benchmark exited $rc, want 2"; fails=1; }
# bench linearized (W1 shape, tiny): runs, reports peak memory; a budget too small fails with exit 4
"$GF_BIN" bench linearized --batch 2 --size 32 --reps 1 --max-device-mem 512M > "$t/lin.txt" 2>&1; rc=$?
[ $rc -eq 0 ] && grep -qE "^linearized \(full\) +[0-9.]+ +[0-9.]+ +[0-9]+\.[0-9]$" "$t/lin.txt" &&
  grep -qE "^fine-tune +[0-9.]+ +[0-9.]+ +[0-9]+\.[0-9]$" "$t/lin.txt" && roofline_ok "$t/lin.txt" &&
  grep -q "peak device memory" "$t/lin.txt" || { echo "FAIL: bench linearized (rc $rc)"; cat "$t/lin.txt"; fails=1; }
"$GF_BIN" bench linearized --batch 2 --size 32 --reps 1 --max-device-mem 1M > /dev/null 2> "$t/oom.txt"; rc=$?
[ $rc -eq 4 ] && grep -q "max-device-mem" "$t/oom.txt" || { echo "FAIL: tiny budget exited $rc, want 4"; cat "$t/oom.txt"; fails=1; }
grep -qE "^peak host memory \(max RSS\): [0-9.]+ MiB$" "$t/lin.txt" || { echo "FAIL: no peak host memory line"; fails=1; }
# bench trunk: the emotion net's forward at batch 2 gives a finite images/s row; --model is required
EMO="$t/emotion.safetensors"
bash "$GF_SRC/models/emotion/fetch.sh" "$EMO" > /dev/null 2> "$t/fetch.err" || { cat "$t/fetch.err"; fails=1; }
"$GF_BIN" bench trunk --model "$EMO" --batch 2 --reps 1 > "$t/trunk.txt" 2>&1; rc=$?
[ $rc -eq 0 ] && grep -qE "^forward +[0-9.]+ +[0-9]+\.[0-9] +[0-9.]+ +[0-9]+\.[0-9]$" "$t/trunk.txt" && grep -q "input 1x64x64" "$t/trunk.txt" &&
  grep -qE "^trunk +[0-9.]+ +[0-9]+\.[0-9] +[0-9.]+ +[0-9]+\.[0-9] +\(to add_1, the input of top block add_2\)$" "$t/trunk.txt" &&
  roofline_ok "$t/trunk.txt" &&
  grep -q "^peak host memory" "$t/trunk.txt" || { echo "FAIL: bench trunk (rc $rc)"; cat "$t/trunk.txt"; fails=1; }
"$GF_BIN" bench trunk > /dev/null 2> "$t/nomodel.txt"; rc=$?
[ $rc -eq 2 ] && grep -q -- "--model" "$t/nomodel.txt" || { echo "FAIL: bench trunk without --model exited $rc, want 2"; fails=1; }
"$GF_BIN" bench trunk --model "$t/nope.safetensors" > /dev/null 2>&1; rc=$?
[ $rc -eq 5 ] || { echo "FAIL: bench trunk with a missing model exited $rc, want 5"; fails=1; }
[ $fails -eq 0 ] && echo "bench ops: ok"
exit $fails
