#!/bin/bash
# Decode + preprocess throughput of the batch loader (gradfeat data bench):
# Fashion-MNIST (IDX) and a generated ImageFolder of 500 JPEGs at ~300x250
# (made with Debian's python3-pil), with 0 worker threads (decoding in the
# caller) and with every CPU.  usage: tools/bench_data.sh [BUILD_DIR]
set -eu
BIN=${1:-build}/gradfeat
FM=/usr/share/datasets/fashion-mnist
T=$(mktemp -d /tmp/gf_bench_data_XXXXXX)
trap 'rm -rf "$T"' EXIT
/usr/bin/python3 - "$T/jpg" <<'PY'
import os, sys
import numpy as np
from PIL import Image
root = sys.argv[1]
rng = np.random.default_rng(0)
yy, xx = np.mgrid[0:250, 0:300].astype(np.float32)
for k in range(500):
    d = os.path.join(root, "class%d" % (k % 10))
    os.makedirs(d, exist_ok=True)
    f = rng.uniform(0.01, 0.08, 3)
    p = rng.uniform(0, 6.3, 3)
    img = np.stack([127 + 100 * np.sin(f[c] * xx + p[c]) * np.cos(f[(c + 1) % 3] * yy) for c in range(3)], -1)
    img += rng.normal(0, 12, img.shape)
    w, h = int(rng.integers(280, 321)), int(rng.integers(230, 271))
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).resize((w, h)).save(os.path.join(d, "%03d.jpg" % k), quality=90)
PY
echo "== Fashion-MNIST train (IDX, gzip), 28x28x1 (native size)"
for t in 0 -1; do "$BIN" data bench "$FM" --size 28 --channels 1 --batch 256 --batches 234 --threads $t | grep '^bench:'; done
echo "== Fashion-MNIST train, resized to 224x224x3"
for t in 0 -1; do "$BIN" data bench "$FM" --size 224 --channels 3 --batch 64 --batches 40 --threads $t | grep '^bench:'; done
echo "== 500 JPEGs ~300x250 -> shorter side 256, centre crop 224x224x3"
for t in 0 -1; do "$BIN" data bench "$T/jpg" --size 224 --resize crop --shorter 256 --batch 50 --batches 10 --threads $t | grep '^bench:'; done
echo "== same, random resized crop + flip"
for t in 0 -1; do "$BIN" data bench "$T/jpg" --size 224 --augment --batch 50 --batches 10 --threads $t | grep '^bench:'; done
