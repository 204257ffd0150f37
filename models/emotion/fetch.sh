#!/usr/bin/env bash
# Fetch the FER-2013 emotion net (mini-Xception) from npm @vladmandic/human@3.3.6 (MIT), verify the
# pinned sha256 of emotion.json / emotion.bin, and convert it with tools/convert_tfjs.py.
#   usage: models/emotion/fetch.sh [OUT.safetensors]      (default: models/emotion/emotion.safetensors)
#   env:   GF_MODEL_CACHE  folder for the verified TF.js files (default ~/.cache/gradfeat/emotion)
#          GF_PYTHON       python with numpy (default /usr/bin/python3)
# Idempotent: verified cached files are reused; npm runs only when they are missing or wrong.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$here/emotion.safetensors}"
cache="${GF_MODEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gradfeat/emotion}"
py="${GF_PYTHON:-/usr/bin/python3}"
pkg="@vladmandic/human@3.3.6"
. "$here/../npm_fetch.sh"
cache=$(npm_fetch_verified "$cache" "$pkg" package/models \
  emotion.json=56f7e557eb0c863a8b9ab04ac7ccba756e93bf2c27dce135ef0e8712b80b7ad2 \
  emotion.bin=927ac8224f356ab1e68c2bcfbfa07b0c8567047d1bcf817388ba6e38214c4987)
"$py" "$root/tools/convert_tfjs.py" "$cache/emotion.json" "$out" \
  --classes angry,disgust,fear,happy,sad,surprise,neutral --feature add_2 \
  --preprocess '{"input_size":[64,64],"channels":1,"color_order":"GRAY","resize":"stretch","interpolation":"bilinear_tf_legacy","scale":2.0,"offset":-1.0}' >&2
echo "$out"
