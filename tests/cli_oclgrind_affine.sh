#!/usr/bin/env bash
# The affine kernels (cl/conv.cl: im2col, col2im, transposes, reductions,
# depthwise) and the CLBlast GEMMs they feed, run under oclgrind on a small
# case (`test_affine --small`): fails on any out-of-bounds access, data race,
# API error, or failed check. Oclgrind is a simulator device: the test binary
# sees only its platform (oclgrind wraps the program via LD_PRELOAD).
set -u
T="$GF_BUILD/tests/test_affine"
command -v oclgrind > /dev/null || { echo "FAIL: oclgrind not installed (Debian package oclgrind)"; exit 1; }
[ -x "$T" ] || { echo "FAIL: $T not built"; exit 1; }
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
# No program-binary cache: simulator binaries must not land in the user cache.
# GEMMs through CLBlast (not host BLAS) so that the offsets and leading
# dimensions the conv passes to CLBlast are checked by oclgrind too.
GRADFEAT_HOST_BLAS=0 GRADFEAT_CACHE=0 GRADFEAT_DEVICE= oclgrind --check-api --data-races --log "$t/oclgrind.log" "$T" --small > "$t/out.txt" 2>&1
rc=$?
cat "$t/out.txt"
fails=0
if [ $rc -ne 0 ]; then echo "FAIL: test_affine --small under oclgrind exited $rc"; fails=1; fi
if ! grep -q "^device: Oclgrind" "$t/out.txt"; then echo "FAIL: did not run on the Oclgrind device"; fails=1; fi
if [ -s "$t/oclgrind.log" ]; then
  echo "FAIL: oclgrind reported problems:"; head -60 "$t/oclgrind.log"; fails=1
fi
[ $fails -eq 0 ] && echo "oclgrind affine: ok"
exit $fails
