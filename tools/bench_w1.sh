#!/usr/bin/env bash
# Workload W1 (host/report/README.md) side by side: gradfeat's linearized and fine-tune
# steps (ResNet-18 layer4, BN folded, cached 256x14x14 features, 20 classes)
# and the PyTorch peer (../shared/peer/torch_linearized_bench.py, or our copy
# of its method when shared/ is absent) in one invocation, with the ratios.
#   tools/bench_w1.sh [--batch 64] [--reps 3] [--device SEL] [--torch-device cpu|cuda]
set -euo pipefail
cd "$(dirname "$0")/.."
batch=64 reps=3 device="" tdev=cpu
while [ $# -gt 0 ]; do
  case "$1" in
    --batch) batch=$2; shift 2 ;; --reps) reps=$2; shift 2 ;;
    --device) device=$2; shift 2 ;; --torch-device) tdev=$2; shift 2 ;;
    *) echo "usage: $0 [--batch N] [--reps N] [--device SEL] [--torch-device cpu|cuda]" >&2; exit 2 ;;
  esac
done
B=${GF_BUILD_DIR:-build}
threads=$(nproc)
peer=../shared/peer/torch_linearized_bench.py
out=$("$B/gradfeat" bench linearized --batch "$batch" --reps "$reps" ${device:+--device "$device"})
echo "$out"
gl=$(echo "$out" | awk '/^linearized/ {print $3}')
gf=$(echo "$out" | awk '/^fine-tune/ {print $2}')
if [ -f "$peer" ] && /usr/bin/python3 -c "import torch" 2>/dev/null; then
  p=$(/usr/bin/python3 "$peer" --device "$tdev" --batch "$batch" --steps "$reps" --threads "$threads")
  echo "$p"
  tl=$(echo "$p" | sed -n 's/.*linearized step \([0-9.]*\) ms.*/\1/p')
  tf=$(echo "$p" | sed -n 's/.*finetune step \([0-9.]*\) ms.*/\1/p')
  awk -v gl="$gl" -v gf="$gf" -v tl="$tl" -v tf="$tf" 'BEGIN {
    printf "%-22s %12s %12s %8s\n", "W1 step (ms)", "gradfeat", "PyTorch", "ratio";
    printf "%-22s %12.1f %12.1f %8.2f\n", "linearized", gl, tl, gl / tl;
    printf "%-22s %12.1f %12.1f %8.2f\n", "fine-tune", gf, tf, gf / tf }'
else
  echo "(PyTorch peer not available: install python3-torch and keep ../shared/peer to compare)"
fi
