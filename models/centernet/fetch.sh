#!/usr/bin/env bash
# Fetch the CenterNet object detector (MobileNetV3 trunk, COCO) from npm @vladmandic/human@3.3.6 (MIT), verify the
# pinned sha256 of centernet.json / centernet.bin, and convert its MobileNetV3 trunk (detection head and
# post-processing dropped) with tools/convert_tfjs.py.
#   usage: models/centernet/fetch.sh [OUT.safetensors] [SIZE]   (default: models/centernet/centernet.safetensors, 512)
#          SIZE: input side in pixels (the trunk is fully convolutional; the detector was trained at 512)
#   env:   GF_MODEL_CACHE  folder for the verified TF.js files (default ~/.cache/gradfeat/centernet)
#          GF_PYTHON       python with numpy (default /usr/bin/python3)
# Idempotent: verified cached files are reused; npm runs only when they are missing or wrong.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$here/centernet.safetensors}"
size="${2:-512}"
cache="${GF_MODEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gradfeat/centernet}"
py="${GF_PYTHON:-/usr/bin/python3}"
pkg="@vladmandic/human@3.3.6"
case "$size" in ''|*[!0-9]*) echo "fetch.sh: SIZE must be a number of pixels, got '$size'" >&2; exit 2;; esac
[ "$size" -ge 32 ] && [ "$size" -le 2048 ] || { echo "fetch.sh: SIZE $size out of range (32..2048)" >&2; exit 2; }

. "$here/../npm_fetch.sh"
cache=$(npm_fetch_verified "$cache" "$pkg" package/models \
  centernet.json=bfb942eaacc5becf738d536663bc4580a0ae9e560722306e6d4dd7fe4a09de05 \
  centernet.bin=1b635a15009071f506f9f2b3519b31c072c534888989f30d269ffd44734ef7ef)
# human feeds the detector float RGB 0..255 resized with tf.image.resizeBilinear (TF1 legacy rule): scale 255
"$py" "$root/tools/convert_tfjs.py" "$cache/centernet.json" "$out" \
  --output tower_0/extern1/hard_swish/mul_1 --input-size "$size" \
  --preprocess "{\"input_size\":[$size,$size],\"channels\":3,\"color_order\":\"RGB\",\"resize\":\"stretch\",\"interpolation\":\"bilinear_tf_legacy\",\"scale\":255.0,\"offset\":0.0}" >&2
echo "$out"
