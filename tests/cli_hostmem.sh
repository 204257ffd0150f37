#!/usr/bin/env bash
# Zero-copy caches on devices sharing host memory (GRADFEAT_HOST_MEM=map, the default there) against the copy
# path (GRADFEAT_HOST_MEM=copy): the activation cache in CL_MEM_ALLOC_HOST_PTR memory filled through a mapping
# (f16: halves written by the C reference of vstore_half_rte) and the primal cache in such memory give the
# copy path's models byte for byte, with --cache-dtype f32 and f16, on PoCL and on Mesa's rusticl/llvmpipe
# (both report CL_DEVICE_HOST_UNIFIED_MEMORY; the rusticl half runs where its ICD is installed, as CI has).
# doctor names the choice and where it came from; a bad value is a usage error.
. "$(dirname "$0")/testlib.sh"
S="$GF_SRC"
EMO="$S/models/emotion/emotion.safetensors"
[ -f "$EMO" ] || EMO="$t/emotion.safetensors"
[ -f "$EMO" ] || bash "$S/models/emotion/fetch.sh" "$EMO" > /dev/null 2> "$t/fetch.err" || { cat "$t/fetch.err"; echo "0 passed, 1 failed"; exit 1; }
unset GRADFEAT_HOST_MEM GRADFEAT_DEVICE GRADFEAT_PATHS

GRADFEAT_HOST_MEM=copy "$G" doctor --no-selftest --device cpu > "$t/doc.txt" 2>&1
check "doctor: the setting and its source, the path in use" \
  'grep -qx "host memory       copy  (from env GRADFEAT_HOST_MEM)" "$t/doc.txt" && grep -q "^kernel paths: .*caches copied" "$t/doc.txt"' \
  || grep -E "host memory|kernel paths" "$t/doc.txt"
"$G" doctor --no-selftest --device cpu > "$t/doc2.txt" 2>&1
check "doctor: PoCL shares host memory, so the caches are mapped by default" \
  'grep -q "unified host memory yes" "$t/doc2.txt" && grep -q "^kernel paths: .*caches mapped" "$t/doc2.txt"' \
  || grep -E "unified|kernel paths" "$t/doc2.txt"
GRADFEAT_HOST_MEM=sometimes "$G" selftest > /dev/null 2> "$t/bad.txt"; rc=$?
check "GRADFEAT_HOST_MEM=sometimes -> exit 2 naming it (rc $rc)" '[ $rc -eq 2 ] && grep -q "GRADFEAT_HOST_MEM" "$t/bad.txt"' || cat "$t/bad.txt"

both() {   # both LABEL DEVICE EXTRA...: the same run with the caches mapped and copied, compared
  local label=$1 dev=$2; shift 2
  for hm in map copy; do
    GRADFEAT_HOST_MEM=$hm "$G" train --model "$EMO" --data "$FM" --split train --val "$FM" --val-split test \
      --device "$dev" --cache-dir "$t/cache" --run-dir "$t/$label-$hm" "$@" > "$t/$label-$hm.out" 2> "$t/$label-$hm.err"
    local rc=$?
    check "$label, caches $hm: exit 0 (rc $rc)" '[ $rc -eq 0 ]' || tail -5 "$t/$label-$hm.err"
  done
  check "$label: the activation and primal caches were on the device" \
    'grep -q "activation cache .* on the device.*primal cache" "$t/$label-map.err"' || grep cache "$t/$label-map.err"
  check "$label: mapped and copied caches give the same models" \
    'for f in "$t/$label-copy"/*.safetensors; do cmp "$f" "$t/$label-map/$(basename "$f")" || exit 1; done'
  check "$label: and the same results" '$PY - "$t/$label-map/results.json" "$t/$label-copy/results.json" <<EOF
import json, sys
a, b = (json.load(open(p))["methods"] for p in sys.argv[1:])
for r in (a, b):
    for v in r.values(): v.pop("seconds")
assert a == b, (a, b)
EOF'
}
small=(--limit 100 --val-limit 100 --method all --epochs 1 --batch 32)
both pocl-f32 cpu "${small[@]}" --cache-dtype f32
both pocl-f16 cpu "${small[@]}" --cache-dtype f16

if RUSTICL_ENABLE=llvmpipe "$G" devices 2> /dev/null | grep -q rusticl; then
  export RUSTICL_ENABLE=llvmpipe
  "$G" doctor --no-selftest --device llvmpipe > "$t/doc3.txt" 2>&1
  check "doctor: llvmpipe shares host memory too (caches mapped)" \
    'grep -q "^kernel paths: .*caches mapped" "$t/doc3.txt"' || grep -E "unified|kernel paths" "$t/doc3.txt"
  tiny=(--limit 48 --val-limit 32 --method linear,full --epochs 1 --batch 16)
  both rusticl-f32 llvmpipe "${tiny[@]}" --cache-dtype f32
  both rusticl-f16 llvmpipe "${tiny[@]}" --cache-dtype f16
else
  echo "note: Mesa's rusticl ICD is not installed (mesa-opencl-icd): the PoCL half ran alone"
fi
finish
