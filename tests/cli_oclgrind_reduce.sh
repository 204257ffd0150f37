#!/usr/bin/env bash
# The kernels with work-group reductions in local memory and barriers —
# cl/loss.cl (softmax cross-entropy, sigmoid BCE, top-1 count) and cl/optim.cl
# (SGD, Adam, two-stage squared norm, clip) — run under oclgrind on small cases
# (`test_loss --small`, `test_optim --small`): fails on any out-of-bounds
# access, data race (e.g. a missing barrier in a tree), API error, or failed
# check. Oclgrind wraps each program via LD_PRELOAD (only its platform is seen).
set -u
command -v oclgrind > /dev/null || { echo "FAIL: oclgrind not installed (Debian package oclgrind)"; exit 1; }
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
fails=0
for name in test_loss test_optim; do
  T="$GF_BUILD/tests/$name"
  [ -x "$T" ] || { echo "FAIL: $T not built"; fails=1; continue; }
  # No program-binary cache: simulator binaries must not land in the user cache.
  GRADFEAT_CACHE=0 GRADFEAT_DEVICE= oclgrind --check-api --data-races \
    --log "$t/$name.log" "$T" --small > "$t/$name.out" 2>&1
  rc=$?
  cat "$t/$name.out"
  if [ $rc -ne 0 ]; then echo "FAIL: $name --small under oclgrind exited $rc"; fails=1; fi
  if ! grep -q "^device: Oclgrind" "$t/$name.out"; then echo "FAIL: $name did not run on the Oclgrind device"; fails=1; fi
  if ! grep -q "^$name: [1-9][0-9]* checks, 0 failed" "$t/$name.out"; then echo "FAIL: $name reported no passing checks"; fails=1; fi
  if [ -s "$t/$name.log" ]; then
    echo "FAIL: oclgrind reported problems in $name:"; head -60 "$t/$name.log"; fails=1
  fi
done
[ $fails -eq 0 ] && echo "oclgrind loss/optim: ok"
exit $fails
