#!/usr/bin/env bash
# Fetch the MobileNetV2 of npm nsfwjs@4.4.0 (MIT; ImageNet-initialised, fine-tuned by its authors on
# 5 image classes), verify the pinned sha256 of its TF.js files, and convert it with tools/convert_tfjs.py.
#   usage: models/mobilenet_v2/fetch.sh [OUT.safetensors]  (default: models/mobilenet_v2/mobilenet_v2.safetensors)
#   env:   GF_MODEL_CACHE  folder for the verified TF.js files (default ~/.cache/gradfeat/mobilenet_v2)
#          GF_PYTHON       python with numpy (default /usr/bin/python3)
# Idempotent: verified cached files are reused; npm runs only when they are missing or wrong.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$here/mobilenet_v2.safetensors}"
cache="${GF_MODEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gradfeat/mobilenet_v2}"
py="${GF_PYTHON:-/usr/bin/python3}"
pkg="nsfwjs@4.4.0"
. "$here/../npm_fetch.sh"
cache=$(npm_fetch_verified "$cache" "$pkg" package/dist/models/mobilenet_v2 \
  model.min.js=c32f104fd562b08cdff5ed69dfe1209643afa47e792fb12751d2949aa61a397a \
  group1-shard1of1.min.js=ef2e0a63f7d2c4960b37b024b669313f65d3c45cd59e9042636c55b39de53517)
# nsfwjs feeds 224x224 RGB scaled to [0, 1]; the classes are its five
"$py" "$root/tools/convert_tfjs.py" "$cache/model.min.js" "$out" \
  --classes drawing,hentai,neutral,porn,sexy \
  --preprocess '{"input_size":[224,224],"channels":3,"color_order":"RGB","resize":"stretch","interpolation":"bilinear","scale":1.0,"offset":0.0}' >&2
echo "$out"
