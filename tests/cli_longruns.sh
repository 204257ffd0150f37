#!/usr/bin/env bash
# Long runs that talk (issue 22 item 5): with stderr not a terminal, progress lines come every
# --log-every-secs seconds (default 30) as well as every --log-every steps; `pretrain --steps 0` writes the
# initialised, untrained model (the random-init control), the same bytes for the same seed.
. "$(dirname "$0")/testlib.sh"
P=(--arch small28 --data "$FM" --split train --batch 32 --epochs 1 --threads 2 --seed 3)

# by time: 64 steps, --log-every far away, a line at least every second
"$G" pretrain "${P[@]}" --limit 2048 --log-every 100000 --log-every-secs 1 --out "$t/a.safetensors" > "$t/a.out" 2> "$t/a.err"; rc=$?
check "pretrain (rc $rc)" '[ $rc -eq 0 ]' || cat "$t/a.err"
secs=$(sed -n 's/.*images, \([0-9.]*\) s,.*/\1/p' "$t/a.out")
mid=$(grep -cE "step ([0-9]|[1-5][0-9]|6[0-3])/64 " "$t/a.err")
if awk "BEGIN{exit !($secs >= 2.5)}"; then
  check "an epoch of $secs s prints progress by time ($mid lines before its last step)" '[ $mid -ge 1 ]' || cat "$t/a.err"
else
  echo "note: the epoch took only $secs s; the by-time check needs >= 2.5 s"
fi
"$G" pretrain "${P[@]}" --limit 256 --log-every 100000 --log-every-secs 0 --out "$t/b.safetensors" > /dev/null 2> "$t/b.err"; rc=$?
check "--log-every-secs 0: only the epoch's last step line (rc $rc)" \
  '[ $rc -eq 0 ] && [ $(grep -c "step [0-9]*/8 " "$t/b.err") -eq 1 ] && grep -q "step 8/8 " "$t/b.err"' || cat "$t/b.err"
"$G" pretrain --help | grep -q -- "--log-every-secs"
check "pretrain --help lists --log-every-secs" '[ $? -eq 0 ]'
"$G" train --help | grep -q -- "--log-every-secs"
check "train --help lists --log-every-secs" '[ $? -eq 0 ]'

# --steps 0: the initialised model
"$G" pretrain "${P[@]}" --width-div 8 --limit 256 --steps 0 --out "$t/i1.safetensors" > "$t/i1.out" 2> "$t/i1.err"; rc=$?
check "--steps 0 exits 0 (rc $rc)" '[ $rc -eq 0 ]' || cat "$t/i1.err"
check "--steps 0 says so, no step taken" 'grep -q "0 epochs (--steps 0: initialised, untrained), 0 steps" "$t/i1.out"' || cat "$t/i1.out"
"$G" pretrain "${P[@]}" --width-div 8 --limit 256 --steps 0 --out "$t/i2.safetensors" > /dev/null 2>&1
check "same seed: byte-identical untrained model" 'cmp -s "$t/i1.safetensors" "$t/i2.safetensors"'
"$G" pretrain "${P[@]}" --width-div 8 --limit 256 --steps 1 --out "$t/s1.safetensors" > /dev/null 2>&1
"$PY" - "$t/i1.safetensors" "$t/s1.safetensors" "$GF_SRC/tools" > "$t/cmp" 2>&1 <<'PYEOF'
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[3])
import gfmodel
g0, _, _, t0 = gfmodel.read(sys.argv[1])
g1, _, _, t1 = gfmodel.read(sys.argv[2])
assert sorted(t0) == sorted(t1)
moved = [k for k in t0 if k.endswith(".weight") and not np.array_equal(t0[k], t1[k])]
assert moved, "one SGD step changed no weight"
for k in t0:  # Kaiming init: finite, not all zero; BN running stats at their initial values
    assert np.isfinite(t0[k]).all(), k
    if k.endswith("running_var"): assert np.all(t0[k] == 1), k
    if k.endswith("running_mean"): assert np.all(t0[k] == 0), k
print("ok")
PYEOF
check "--steps 0 = initial weights (one step moves them; BN stats untouched)" 'grep -qx ok "$t/cmp"' || cat "$t/cmp"
"$G" train --model "$t/i1.safetensors" --data "$FM" --split train --limit 64 --method linear --epochs 1 --probe-epochs 1 \
  --no-cache --quiet > "$t/tr.out" 2> "$t/tr.err"; rc=$?
check "train on the untrained model (the random-init control) (rc $rc)" '[ $rc -eq 0 ] && grep -q "^linear" "$t/tr.out"' \
  || cat "$t/tr.err"
finish
