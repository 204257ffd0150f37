#!/usr/bin/env bash
# From-scratch training throughput side by side: `gradfeat pretrain --steps N` on Fashion-MNIST and
# the PyTorch peer (tools/torch_pretrain_bench.py, random data of the same shape, same optimiser) with
# --threads T, for each architecture; prints images/s for both and the ratio gradfeat / PyTorch.
#   tools/bench_pretrain.sh [--arch small28|bigan|resnet18c|all] [--batch 128] [--steps 20]
#                           [--threads 2] [--task labels|rotation] [--device SEL] [--data PATH]
#                           [--augment] [--torch-device cpu|cuda] [--reps R]
# Input sizes: small28 28x28 (Fashion-MNIST's own), bigan and resnet18c 32x32 (gradfeat resizes), 1
# channel. gradfeat's images/s is over all its steps (kernels are compiled before), loading included
# (--threads decoding threads); the peer's excludes 3 warm-up steps. Without --augment gradfeat runs
# with --no-augment, like the peer (which has no data pipeline). --task rotation: 4 samples per image,
# both sides count source images (a quarter of the samples). --reps R: R alternating runs of each side, the best images/s of each
# counts (on a shared machine the load changes between runs). Env: GF_BUILD_DIR (default build), GF_PYTHON (default /usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."
archs="small28 bigan resnet18c" batch=128 steps=20 threads=2 task=labels device="" data=/usr/share/datasets/fashion-mnist
augment=0 tdev=cpu reps=1
usage() { sed -n '4,6p' "$0" | sed 's/^# *//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) [ "$2" = all ] || archs=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;; --steps) steps=$2; shift 2 ;; --threads) threads=$2; shift 2 ;;
    --task) task=$2; shift 2 ;; --device) device=$2; shift 2 ;; --data) data=$2; shift 2 ;;
    --augment) augment=1; shift ;; --torch-device) tdev=$2; shift 2 ;; --reps) reps=$2; shift 2 ;;
    *) usage ;;
  esac
done
B=${GF_BUILD_DIR:-build}
py=${GF_PYTHON:-/usr/bin/python3}
[ -x "$B/gradfeat" ] || { echo "bench_pretrain.sh: $B/gradfeat not found (build first or set GF_BUILD_DIR)" >&2; exit 3; }
"$py" -c "import torch" 2>/dev/null || { echo "bench_pretrain.sh: $py has no torch (Debian: python3-torch)" >&2; exit 3; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rows=""
for a in $archs; do
  case "$a" in small28) size=28 ;; bigan|resnet18c) size=32 ;; *) echo "unknown arch $a" >&2; exit 2 ;; esac
  aug=--no-augment
  [ "$augment" = 1 ] && aug=""
  g=0 t=0
  for ((r = 0; r < reps; r++)); do
    out=$("$B/gradfeat" pretrain --arch "$a" --data "$data" --split train --task "$task" --size "$size" \
          --batch "$batch" --steps "$steps" --seed 1 --threads "$threads" $aug --quiet \
          ${device:+--device "$device"} --out "$tmp/$a.safetensors")
    echo "gradfeat: $(echo "$out" | head -1)"
    gi=$(echo "$out" | awk '{for (i = 2; i <= NF; i++) if ($i == "img/s" || $i == "img/s,") print $(i-1)}' | head -1)
    p=$("$py" tools/torch_pretrain_bench.py --arch "$a" --task "$task" --batch "$batch" --size "$size" --channels 1 \
          --steps "$steps" --warmup 3 --threads "$threads" --device "$tdev")
    echo "torch:    $p"
    ti=$(echo "$p" | sed -n 's/.* \([0-9.]*\) images\/s.*/\1/p')
    g=$(awk -v a="$g" -v b="$gi" 'BEGIN { print (b > a ? b : a) }')
    t=$(awk -v a="$t" -v b="$ti" 'BEGIN { print (b > a ? b : a) }')
  done
  rows="$rows$a $g $t"$'\n'
done
printf '%s' "$rows" | awk -v task="$task" -v b="$batch" -v th="$threads" -v reps="$reps" 'BEGIN {
    printf "\n%-10s %14s %14s %8s   (task %s, batch %s, torch threads %s, best of %s)\n", "images/s", "gradfeat",
           "PyTorch", "ratio", task, b, th, reps }
  NF == 3 { printf "%-10s %14.1f %14.1f %8.2f\n", $1, $2, $3, ($3 > 0 ? $2 / $3 : 0) }'
