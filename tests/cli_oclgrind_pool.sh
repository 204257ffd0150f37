#!/usr/bin/env bash
# The pool kernels (cl/pool.cl: max pool forward/argmax, tangent gather,
# backward gather, average pool both divisor rules, global average pool with
# its local-memory tree reduction) run under oclgrind on a small TF-SAME case
# (`test_pool --small`): fails on any out-of-bounds access, data race,
# API error, or failed check (--uninitialized is left out: oclgrind 21.10
# aborts on LLVM freeze instructions with it). Oclgrind wraps the program
# via LD_PRELOAD, so the test binary sees only the Oclgrind platform.
set -u
T="$GF_BUILD/tests/test_pool"
command -v oclgrind > /dev/null || { echo "FAIL: oclgrind not installed (Debian package oclgrind)"; exit 1; }
[ -x "$T" ] || { echo "FAIL: $T not built"; exit 1; }
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
# No program-binary cache: simulator binaries must not land in the user cache.
GRADFEAT_CACHE=0 GRADFEAT_DEVICE= oclgrind --check-api --data-races \
  --log "$t/oclgrind.log" "$T" --small > "$t/out.txt" 2>&1
rc=$?
cat "$t/out.txt"
fails=0
if [ $rc -ne 0 ]; then echo "FAIL: test_pool --small under oclgrind exited $rc"; fails=1; fi
if ! grep -q "^device: Oclgrind" "$t/out.txt"; then echo "FAIL: did not run on the Oclgrind device"; fails=1; fi
if ! grep -q "^test_pool: [1-9][0-9]* checks, 0 failed" "$t/out.txt"; then echo "FAIL: no passing checks reported"; fails=1; fi
if [ -s "$t/oclgrind.log" ]; then
  echo "FAIL: oclgrind reported problems:"; head -60 "$t/oclgrind.log"; fails=1
fi
[ $fails -eq 0 ] && echo "oclgrind pool: ok"
exit $fails
