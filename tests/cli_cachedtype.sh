#!/usr/bin/env bash
# --cache-dtype f16 (emotion net, Fashion-MNIST 200 train / 600 test, all four methods, one epoch):
#  - f16 and f32 runs: every method's test accuracy within 0.5 points; the activation cache's device bytes
#    exactly halve and the primal cache's at most 0.6x (its pooled features and max-pool routing stay
#    32-bit); the f16 run's numbers are not the f32 run's (the halves were really used); results.json
#    records cache_dtype under settings;
#  - the two tiers of an f16 activation cache give the same numbers: on the device (vstore_half) and in
#    host memory (rounded in C on upload), both without the primal cache;
#  - a checkpoint written with f32 refuses a resume with f16 (exit 2 naming cache_dtype), and `--resume
#    RUN_DIR` alone continues an f16 run as f16 (needs the test hooks: GRADFEAT_TEST_KILL_AT).
. "$(dirname "$0")/testlib.sh"
S="$GF_SRC"
EMO="$S/models/emotion/emotion.safetensors"
[ -f "$EMO" ] || EMO="$t/emotion.safetensors"
[ -f "$EMO" ] || bash "$S/models/emotion/fetch.sh" "$EMO" > /dev/null 2> "$t/fetch.err" || { cat "$t/fetch.err"; echo "0 passed, 1 failed"; exit 1; }

args=(--model "$EMO" --data "$FM" --split train --limit 200 --val "$FM" --val-split test --val-limit 600
      --method all --epochs 1 --batch 32 --cache-dir "$t/cache")
run() {  # run NAME EXTRA...: train, outputs in $t/NAME
  local name=$1; shift
  "$G" train "${args[@]}" --run-dir "$t/$name" "$@" > "$t/$name.out" 2> "$t/$name.err"
}

run f32 --cache-dtype f32; rc=$?
check "f32 run exits 0 (rc $rc)" '[ $rc -eq 0 ]' || cat "$t/f32.err"
GRADFEAT_CACHE_DTYPE=f16 run f16; rc=$?      # the environment twin
check "f16 run (GRADFEAT_CACHE_DTYPE=f16) exits 0 (rc $rc)" '[ $rc -eq 0 ]' || cat "$t/f16.err"
check "progress line names f16 and the device bytes" 'grep -q "activation cache .* MiB on the device (f16), primal cache .* MiB (f16)" "$t/f16.err"' \
  || grep cache "$t/f16.err"
check "f16 vs f32: accuracy within 0.5 points, activation bytes halve, primal bytes <= 0.6x, numbers differ" '$PY - "$t/f32/results.json" "$t/f16/results.json" <<EOF
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
assert a["settings"]["cache_dtype"] == "f32" and b["settings"]["cache_dtype"] == "f16", (a["settings"], b["settings"])
ma, mb = a["cache_memory"], b["cache_memory"]
print("cache bytes f32", ma, "f16", mb)
assert ma["activation_bytes"] > 0 and mb["activation_bytes"] * 2 == ma["activation_bytes"], (ma, mb)
assert 0 < mb["primal_bytes"] <= 0.6 * ma["primal_bytes"], (ma, mb)
differ = 0
for m in ("linear", "gradient", "full", "finetune"):
    x, y = a["methods"][m]["val_metric"], b["methods"][m]["val_metric"]
    print(m, "f32 %.2f f16 %.2f" % (100 * x, 100 * y))
    assert abs(x - y) <= 0.005, (m, x, y)
    differ += a["methods"][m]["val_loss"] != b["methods"][m]["val_loss"]
assert differ, "f16 gave the f32 numbers bit for bit: the halves were not used"
EOF'

# the host tier rounds like the device: the f16 activation cache alone fits (no room for the primal
# cache) vs nothing fits
act=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["cache_memory"]["activation_bytes"])' "$t/f16/results.json")
run dev --cache-dtype f16 --max-device-mem "$act" --method linear,full; rc1=$?
run host --cache-dtype f16 --max-device-mem 1K --method linear,full; rc2=$?
check "tier runs exit 0 (rc $rc1 $rc2)" '[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ]' || cat "$t/dev.err" "$t/host.err"
check "f16 tiers: activation cache on the device, no primal cache / in host memory" \
  'grep -q "on the device (f16), no primal cache" "$t/dev.err" && grep -q "in host memory (f16" "$t/host.err"' \
  || grep cache "$t/dev.err" "$t/host.err"
check "f16 on the device and in host memory: the same numbers" '$PY - "$t/dev/results.json" "$t/host/results.json" <<EOF
import json, sys
a, b = (json.load(open(p))["methods"] for p in sys.argv[1:])
for r in (a, b):
    for v in r.values(): v.pop("seconds")
assert a == b, (a, b)
EOF'
check "f16 on the device and in host memory: the same models" \
  'for m in linear full; do cmp "$t/dev/$m.safetensors" "$t/host/$m.safetensors" || exit 1; done'

# resume: killed right after its first checkpoint (the probe's end), then resumed
GRADFEAT_TEST_KILL_AT=checkpoint:1 run r32 --cache-dtype f32; rc=$?
check "f32 run killed after its first checkpoint (rc $rc)" '[ $rc -eq 137 ] && [ -s "$t/r32/checkpoint.gfckpt" ]' || cat "$t/r32.err"
"$G" train "${args[@]}" --cache-dtype f16 --resume "$t/r32" > /dev/null 2> "$t/e.txt"; rc=$?
check "resume of an f32 checkpoint with --cache-dtype f16 -> exit 2 naming cache_dtype (rc $rc)" \
  '[ $rc -eq 2 ] && grep -q "cache_dtype = \"f32\", this run has \"f16\"" "$t/e.txt"' || cat "$t/e.txt"
GRADFEAT_TEST_KILL_AT=checkpoint:1 run r16 --cache-dtype f16; rc=$?
check "f16 run killed after its first checkpoint (rc $rc)" '[ $rc -eq 137 ]' || cat "$t/r16.err"
"$G" train --resume "$t/r16" --cache-dir "$t/cache" > "$t/r16b.out" 2> "$t/r16b.err"; rc=$?
check "--resume RUN_DIR alone continues as f16 (rc $rc)" \
  '[ $rc -eq 0 ] && grep -q "(f16)" "$t/r16b.err" && grep -q "\"cache_dtype\":[[:space:]]*\"f16\"" "$t/r16/results.json"' || cat "$t/r16b.err"
check "the resumed f16 run ends with the uninterrupted f16 run's models" \
  'for m in linear gradient full finetune; do cmp "$t/f16/$m.safetensors" "$t/r16/$m.safetensors" || exit 1; done'
finish
