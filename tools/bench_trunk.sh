#!/usr/bin/env bash
# Trunk feature extraction side by side: images/s of the forward pass of ResNet-18 at 224 px (random
# torchvision weights, tools/convert_torchvision.py) and of the emotion net (models/emotion/fetch.sh),
# `gradfeat bench trunk` next to the PyTorch peer (tools/torch_trunk_bench.py: the same model file run
# by torch.nn.functional, BN folded as gradfeat folds it, torch.set_num_threads, no_grad, same batch)
# (and on request the ImageNet-initialised MobileNetV2 backbone, models/mobilenet_v2/fetch.sh, and CenterNet's
# MobileNetV3 trunk at 512 px, models/centernet/fetch.sh: --models mobilenet_v2,centernet)
# in one invocation, with the ratio gradfeat time / PyTorch time (below 1: gradfeat is faster).
#   tools/bench_trunk.sh [--batch 16] [--reps 3] [--device SEL] [--threads 2] [--models resnet18,emotion,mobilenet_v2,centernet]
# Models are made once in ${GF_BENCH_DIR:-~/.cache/gradfeat/bench}. GF_BUILD_DIR picks the build (build).
set -euo pipefail
cd "$(dirname "$0")/.."
batch=16 reps=3 device="" threads=2 models=resnet18,emotion
while [ $# -gt 0 ]; do
  case "$1" in
    --batch) batch=$2; shift 2 ;; --reps) reps=$2; shift 2 ;; --device) device=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;; --models) models=$2; shift 2 ;;
    *) echo "usage: $0 [--batch N] [--reps N] [--device SEL] [--threads N] [--models resnet18,emotion]" >&2; exit 2 ;;
  esac
done
B=${GF_BUILD_DIR:-build}
dir=${GF_BENCH_DIR:-$HOME/.cache/gradfeat/bench}
mkdir -p "$dir"
py=/usr/bin/python3
have_torch=0; $py -c "import torch, torchvision" 2>/dev/null && have_torch=1
rows=""
for m in ${models//,/ }; do
  case "$m" in
    resnet18)
      f="$dir/resnet18-random-224.safetensors"
      [ -s "$f" ] || $py tools/convert_torchvision.py --arch resnet18 --random-seed 1 --input-size 224 "$f" > /dev/null ;;
    emotion)
      f="$dir/emotion.safetensors"
      [ -s "$f" ] || bash models/emotion/fetch.sh "$f" > /dev/null ;;
    mobilenet_v2)
      f="$dir/mobilenet_v2.safetensors"
      [ -s "$f" ] || bash models/mobilenet_v2/fetch.sh "$f" > /dev/null ;;
    centernet)
      f="$dir/centernet-512.safetensors"
      [ -s "$f" ] || bash models/centernet/fetch.sh "$f" 512 > /dev/null ;;
    *) echo "$0: unknown model $m (resnet18, emotion, mobilenet_v2, centernet)" >&2; exit 2 ;;
  esac
  out=$("$B/gradfeat" bench trunk --model "$f" --batch "$batch" --reps "$reps" ${device:+--device "$device"})
  echo "$out"
  g_ms=$(echo "$out" | awk '$1 == "forward" {print $2}')
  g_ips=$(echo "$out" | awk '$1 == "forward" {print $3}')
  gt_ms=$(echo "$out" | awk '$1 == "trunk" {print $2}')
  gt_ips=$(echo "$out" | awk '$1 == "trunk" {print $3}')
  cut=$(echo "$out" | sed -n 's/^trunk .*(to \([^,]*\), the input of top block.*/\1/p')
  g_dev=$(echo "$out" | sed -n 's/^peak device memory held by gradfeat: \([0-9.]*\) MiB.*/\1/p')
  g_rss=$(echo "$out" | sed -n 's/^peak host memory (max RSS): \([0-9.]*\) MiB/\1/p')
  if [ $have_torch = 1 ]; then
    p=$($py tools/torch_trunk_bench.py "$f" --batch "$batch" --reps "$reps" --threads "$threads" ${cut:+--to "$cut"})
    echo "$p"
    t_ms=$(echo "$p" | sed -n 's/^torch forward \([0-9.]*\) ms\/batch.*/\1/p')
    t_ips=$(echo "$p" | sed -n 's/^torch forward .* ms\/batch \([0-9.]*\) images\/s/\1/p')
    tt_ms=$(echo "$p" | sed -n 's/^torch trunk \([0-9.]*\) ms\/batch.*/\1/p')
    tt_ips=$(echo "$p" | sed -n 's/^torch trunk .* ms\/batch \([0-9.]*\) images\/s.*/\1/p')
  else
    t_ms=nan t_ips=nan tt_ms=nan tt_ips=nan
  fi
  rows+="$m-forward $g_ips $t_ips $g_ms $t_ms $g_dev $g_rss"$'\n'
  [ -n "$cut" ] && rows+="$m-trunk $gt_ips ${tt_ips:-nan} $gt_ms ${tt_ms:-nan} $g_dev $g_rss"$'\n'
done
echo
[ $have_torch = 1 ] || echo "(PyTorch peer not available: apt-get install python3-torch python3-torchvision)"
printf '%s' "$rows" | awk -v b="$batch" -v th="$threads" 'BEGIN {
    printf "trunk forward, batch %d (PyTorch: %d threads)\n", b, th;
    printf "%-18s %14s %14s %8s %14s %14s\n", "model-pass", "gradfeat img/s", "PyTorch img/s", "ratio", "device MiB", "host RSS MiB" }
  NF == 7 { r = ($5 == "nan") ? "-" : sprintf("%.2f", $4 / $5);
    printf "%-18s %14.1f %14s %8s %14.1f %14.1f\n", $1, $2, $3, r, $6, $7 }'
echo "forward = the whole net; trunk = up to the input of the default top block, what train's trunk pass runs"
echo "ratio = gradfeat time / PyTorch time per batch (below 1: gradfeat is faster); memory: the gradfeat process"
