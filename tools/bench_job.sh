#!/usr/bin/env bash
# The whole job side by side: `gradfeat train --method all` and its PyTorch peer (tools/torch_job_peer.py: the
# same rows, holdout, probe path, NTK parametrisation, optimiser, schedule and selection, written with
# torch.autograd.forward_ad) on the same data in one invocation; wall time per phase for both, the ratios
# gradfeat / PyTorch (below 1: gradfeat is faster) and the evaluation accuracy of each method side by side.
#   tools/bench_job.sh [--workloads emotion,resnet18] [--epochs N] [--threads 2] [--device SEL] [--smoke] [--out DIR]
# Workloads:
#   emotion   the emotion net (models/emotion), top block add_2, 2,000 Fashion-MNIST training images (200 held
#             out), 1,000 test images to evaluate; --epochs (default 2)
#   resnet18  torchvision's ResNet-18 with random weights (tools/convert_torchvision.py), 224 px, top block layer4.1,
#             512 synthetic 256x256 training images in 4 classes (centre-cropped to 224, no resampling), 128 test
#             images; --epochs (default 1)
# --smoke: the emotion net on 120 / 60 images, 1 epoch: that both sides run (no ctest: over a minute here).
# gradfeat's phases come from its run's results.json (trunk_seconds, cache_seconds, features_seconds, each
# method's seconds); each side's total is the wall time of its process (gradfeat: model load, kernel build,
# everything; the peer: after Python's imports). The activation cache is a fresh folder, so the trunk runs.
# Data and models are made once in ${GF_BENCH_DIR:-~/.cache/gradfeat/bench}/job; runs go to --out (a temp folder).
# GF_BUILD_DIR picks the build (build).
set -euo pipefail
cd "$(dirname "$0")/.."
workloads=emotion,resnet18 epochs="" threads=2 device="" smoke=0 out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --workloads) workloads=$2; shift 2 ;; --epochs) epochs=$2; shift 2 ;; --threads) threads=$2; shift 2 ;;
    --device) device=$2; shift 2 ;; --smoke) smoke=1; workloads=emotion; shift ;; --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench_job.sh: unknown option $1 (--help)" >&2; exit 2 ;;
  esac
done
B=${GF_BUILD_DIR:-build}
py=/usr/bin/python3
dir=${GF_BENCH_DIR:-$HOME/.cache/gradfeat/bench}/job
mkdir -p "$dir"
[ -n "$out" ] || out=$(mktemp -d "${TMPDIR:-/tmp}/gf-bench-job.XXXXXX")
mkdir -p "$out"
if ! $py -c "import torch, numpy" 2>/dev/null; then
  echo "bench_job.sh: the PyTorch peer needs python3-torch and python3-numpy (apt-get install python3-torch)" >&2
  exit 3
fi
FM=/usr/share/datasets/fashion-mnist
# CPU devices run their GEMMs in OpenBLAS: which kernels (OPENBLAS_CORETYPE may force slower ones) moves the ratios
"$B/gradfeat" doctor --no-selftest 2> /dev/null | sed -n 's/^host BLAS *\(.*\)/gradfeat host BLAS: \1/p'
now() { date +%s.%N; }

for w in ${workloads//,/ }; do
  case "$w" in
    emotion)
      model=models/emotion/emotion.safetensors
      [ -s "$model" ] || bash models/emotion/fetch.sh > /dev/null
      top=add_2 ep=${epochs:-2}
      if [ $smoke = 1 ]; then ntr=120 nva=60 ep=1; else ntr=2000 nva=1000; fi
      gdata=(--data "$FM" --split train --limit "$ntr" --val "$FM" --val-split test --val-limit "$nva")
      pdata=(--data "$FM" --split train --limit "$ntr" --val "$FM" --val-split test --val-limit "$nva") ;;
    resnet18)
      model=$dir/resnet18-random-224.safetensors
      if [ ! -s "$model" ]; then
        $py tools/convert_torchvision.py --arch resnet18 --random-seed 1 --input-size 224 "$model.tmp$$" > /dev/null
        mv "$model.tmp$$" "$model"
      fi
      imgs=$dir/synthetic256
      if [ ! -f "$imgs/.done" ]; then   # 4 classes: a tint and a stripe orientation each, noise on top
        $py - "$imgs" <<'EOF'
import os, sys
import numpy as np
from PIL import Image
root = sys.argv[1]
g = np.random.default_rng(20)
yy, xx = np.mgrid[0:256, 0:256] / 256.0
for split, per in (("train", 128), ("test", 32)):
    for k in range(4):
        d = os.path.join(root, split, "c%d" % k)
        os.makedirs(d, exist_ok=True)
        ang = k * np.pi / 4
        for i in range(per):
            f = g.uniform(4, 12)
            stripes = np.sin(2 * np.pi * f * (np.cos(ang) * xx + np.sin(ang) * yy) + g.uniform(0, 6.3))
            tint = np.array([[0.6, 0.4, 0.4], [0.4, 0.6, 0.4], [0.4, 0.4, 0.6], [0.5, 0.5, 0.5]])[k]
            img = 128 + 60 * stripes[..., None] * tint + g.normal(0, 40, (256, 256, 3))
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(os.path.join(d, "%03d.png" % i))
open(os.path.join(root, ".done"), "w").close()
EOF
      fi
      top=layer4.1 ep=${epochs:-1}
      gdata=(--data "$imgs" --split train --val "$imgs" --val-split test)
      pdata=(--data "$imgs" --split train --val "$imgs" --val-split test) ;;
    *) echo "bench_job.sh: unknown workload $w (emotion, resnet18)" >&2; exit 2 ;;
  esac
  cut=$("$B/gradfeat" info "$model" | awk -v t="$top" '$1 == t && NF >= 6 {print $2; exit}')
  [ -n "$cut" ] || { echo "bench_job.sh: $model has no top block $top" >&2; exit 1; }
  run=$out/$w-gradfeat
  rm -rf "$run" "$out/$w-acache"; mkdir -p "$out/$w-acache"
  echo "== $w: gradfeat train --method all --top $top --epochs $ep (log: $run.log)"
  t0=$(now)
  "$B/gradfeat" train --model "$model" "${gdata[@]}" --top "$top" --method all --epochs "$ep" --run-dir "$run" \
      --cache-dir "$out/$w-acache" ${device:+--device "$device"} > "$run.table" 2> "$run.log"
  t1=$(now)
  cat "$run.table"
  echo "== $w: tools/torch_job_peer.py (PyTorch ${threads} threads; log: $out/$w-peer.log)"
  t2=$(now)
  OMP_NUM_THREADS=$threads $py tools/torch_job_peer.py --model "$model" --cut "$cut" "${pdata[@]}" --epochs "$ep" \
      --threads "$threads" --json "$out/$w-peer.json" > "$out/$w-peer.log" 2>&1 || { cat "$out/$w-peer.log"; exit 1; }
  t3=$(now)
  grep -E '^peer (linear|gradient|full|finetune)' "$out/$w-peer.log" || true
  $py - "$w" "$run/results.json" "$out/$w-peer.json" "$t0" "$t1" "$t2" "$t3" "$threads" <<'EOF'
import json, sys
w, gpath, ppath = sys.argv[1:4]
t0, t1, t2, t3 = map(float, sys.argv[4:8])
g, p = json.load(open(gpath)), json.load(open(ppath))
gm, pm, pp = g["methods"], p["methods"], p["phases"]
rows = [("trunk (+data)", g["trunk_seconds"], pp.get("data", 0) + pp.get("trunk", 0)),
        ("caches+features", g.get("cache_seconds", 0) + g.get("features_seconds", 0), pp.get("features", 0))]
for m in ("linear", "gradient", "full", "finetune"):
    rows.append((m if m != "linear" else "probe (linear)", gm[m]["seconds"] if m in gm else float("nan"), pp.get(m, float("nan"))))
rows.append(("total (process)", t1 - t0, t3 - t2))
print("\n%s: %d training / %d held-out / %d evaluation images, %d epochs; PyTorch %s, %s threads" % (
    w, g["n_train"], g["n_holdout"], g["n_val"], g["epochs"], p["torch"], sys.argv[8]))
print("%-18s %12s %12s %8s" % ("phase (s)", "gradfeat", "PyTorch", "ratio"))
for name, a, b in rows:
    print("%-18s %12.2f %12.2f %8s" % (name, a, b, "%.3g" % (a / b) if b > 0 else "-"))
print("%-18s %12s %12s %8s" % ("val accuracy %", "gradfeat", "PyTorch", "diff"))
for m in ("linear", "gradient", "full", "finetune"):
    a = 100 * gm[m].get("val_metric", float("nan")) if m in gm else float("nan")
    b = 100 * pm[m]["val_metric"] if m in pm else float("nan")
    print("%-18s %12.2f %12.2f %+8.2f" % (m, a, b, a - b))
print("ratio = gradfeat / PyTorch wall time (below 1: gradfeat is faster); gradfeat's trunk includes decoding "
      "and preprocessing (its loader threads), the peer's 'data' is added to its trunk")
EOF
done
