#!/usr/bin/env bash
# The activation cache file (trunk outputs, memory-mapped while training):
#  - a second run maps the file instead of running the trunk, and the trained
#    models are byte-identical to the first run's and to a --no-cache run's
#    (host-memory tier);
#  - a dataset with an undecodable image: the run compacts the trunk outputs
#    over the failed sample through a private mapping, so the cache file is
#    byte-for-byte unchanged by the run that reuses it;
#  - when the cache directory cannot be made the run warns, keeps the outputs
#    in host memory and gives the same model.
. "$(dirname "$0")/testlib.sh"
S="$GF_SRC"
EMO="$S/models/emotion/emotion.safetensors"
[ -f "$EMO" ] || EMO="$t/emotion.safetensors"
[ -f "$EMO" ] || bash "$S/models/emotion/fetch.sh" "$EMO" > /dev/null 2> "$t/fetch.err" || { cat "$t/fetch.err"; echo "0 passed, 1 failed"; exit 1; }

$PY - "$t/data" <<'EOF'
import os, sys
sys.path.insert(0, os.path.join(os.environ["GF_SRC"], "tools"))
import numpy as np
from make_lfw_folder import png_gray
root = sys.argv[1]
rng = np.random.default_rng(3)
for c, cls in enumerate(("dark", "light")):
    os.makedirs(f"{root}/{cls}")
    for i in range(24):
        img = np.clip(rng.normal(80 + 100 * c, 40, (20, 20)), 0, 255).astype(np.uint8)
        png_gray(f"{root}/{cls}/{i:03d}.png", img)
open(f"{root}/light/zz_broken.png", "wb").write(b"\x89PNG\r\n\x1a\nthis is not a png")
EOF
run() {  # run NAME EXTRA...: train, outputs in $t/NAME
  local name=$1; shift
  "$GF_BIN" train --model "$EMO" --data "$t/data" --val "$t/data" --method linear,full --epochs 1 --probe-epochs 2 \
    --batch 8 --seed 5 --run-dir "$t/$name" "$@" > "$t/$name.out" 2> "$t/$name.err"
}
# temp files of earlier runs: one whose process is gone (killed mid-write), one of a live process
mkdir -p "$t/cache"
dead=$(sh -c 'echo $$')
echo partial > "$t/cache/00000000deadbeef.bin.tmp.$dead"
echo partial > "$t/cache/00000000000a11fe.bin.tmp.$$"
run first --cache-dir "$t/cache"; rc=$?
check "first run exits 0 (rc $rc)" '[ $rc -eq 0 ]' || tail -20 "$t/first.err"
check "a dead run's temp file is removed" '[ ! -e "$t/cache/00000000deadbeef.bin.tmp.$dead" ]'
check "a live process's temp file is kept" '[ -e "$t/cache/00000000000a11fe.bin.tmp.$$" ]'
rm -f "$t/cache/00000000000a11fe.bin.tmp.$$"
n_files=$(ls "$t/cache"/*.bin 2>/dev/null | wc -l)
check "one cache file per split ($n_files; train and val are the same data, so 1)" '[ "$n_files" -ge 1 ]'
check "no temp files left in the cache dir" '[ -z "$(ls "$t/cache" | grep tmp)" ]'
check "the broken image is reported" 'grep -q "zz_broken.png" "$t/first.err"'
sha_before=$(cat "$t/cache"/*.bin | sha256sum)
run second --cache-dir "$t/cache"; rc=$?
check "second run exits 0 (rc $rc)" '[ $rc -eq 0 ]' || tail -20 "$t/second.err"
check "second run reuses the cache" 'grep -q "reused from the activation cache" "$t/second.err"'
check "the cache file is unchanged by the run that maps it" '[ "$(cat "$t/cache"/*.bin | sha256sum)" = "$sha_before" ]'
run nocache --no-cache; rc=$?
check "--no-cache run exits 0 (rc $rc)" '[ $rc -eq 0 ]' || tail -20 "$t/nocache.err"
for m in linear full; do
  check "$m model: mapped cache = first run" 'cmp -s "$t/first/$m.safetensors" "$t/second/$m.safetensors"'
  check "$m model: host-memory tier = mapped" 'cmp -s "$t/first/$m.safetensors" "$t/nocache/$m.safetensors"'
done
# an unusable cache directory (its parent is a regular file): warn, keep the outputs in host memory
: > "$t/afile"
run limited --cache-dir "$t/afile/cache"; rc=$?
check "run with an unusable cache dir exits 0 (rc $rc)" '[ $rc -eq 0 ]'
check "it warns and keeps the outputs in host memory" 'grep -q "keeping the trunk outputs in host memory" "$t/limited.err"'
check "linear model then = first run" 'cmp -s "$t/first/linear.safetensors" "$t/limited/linear.safetensors"'
finish
