#!/usr/bin/env bash
# One command for a machine with a GPU (issue 18, item 7): build, list the OpenCL devices, run
# `selftest`, the op tests and `train --method all` end to end on the GPU, then W1 (tools/bench_w1.sh)
# next to the PyTorch CUDA peer; everything goes to one summary file.
#   tools/gpu_check.sh [--device SEL] [--out FILE] [--no-build]
# SEL defaults to "gpu". On an NVIDIA machine whose /etc/OpenCL/vendors lists only PoCL (the driver
# is installed but not registered as an ICD), the script writes an ICD file for libnvidia-opencl.so
# into a temp folder and points OCL_ICD_VENDORS at it (plus PoCL's, so that both show). Exit 0 when every step passed.
# Status: written without a GPU to run it on (2026-12-03); not yet run on a GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
device=gpu out=gpu_check_summary.txt build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device=$2; shift 2 ;; --out) out=$2; shift 2 ;; --no-build) build=0; shift ;;
    *) echo "usage: $0 [--device SEL] [--out FILE] [--no-build]" >&2; exit 2 ;;
  esac
done
B=${GF_BUILD_DIR:-build}
G="$B/gradfeat"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fails=0
: > "$out"
log() { echo "$*" | tee -a "$out"; }
step() {   # step NAME CMD...: runs CMD, its output into the summary, counts a failure
  local name=$1; shift
  log "== $name"
  local s=$SECONDS
  "$@" > "$tmp/step.txt" 2>&1; local rc=$?
  grep -v "^MESA: warning" "$tmp/step.txt" | tail -40 >> "$out"
  log "-- $name: exit $rc, $((SECONDS - s)) s"
  [ $rc -eq 0 ] || fails=$((fails + 1))
  return $rc
}

# NVIDIA's OpenCL library present but not registered with the ICD loader
nv=$(ls /usr/lib/x86_64-linux-gnu/libnvidia-opencl.so.1 /usr/lib/libnvidia-opencl.so* 2>/dev/null | head -1)
if [ -n "$nv" ] && ! grep -qs nvidia /etc/OpenCL/vendors/*.icd; then
  mkdir -p "$tmp/icd"
  echo "$nv" > "$tmp/icd/nvidia.icd"
  [ -f /etc/OpenCL/vendors/pocl.icd ] && cp /etc/OpenCL/vendors/pocl.icd "$tmp/icd/"
  export OCL_ICD_VENDORS="$tmp/icd"
  log "OCL_ICD_VENDORS=$OCL_ICD_VENDORS ($nv)"
fi
log "gpu_check $(date -u +%FT%TZ) on $(hostname); device selector '$device'"
command -v nvidia-smi > /dev/null && nvidia-smi -L | tee -a "$out"

if [ $build -eq 1 ]; then
  step "build" bash -c "cmake -S . -B '$B' -DCMAKE_BUILD_TYPE=Release > /dev/null && cmake --build '$B' -j\$(nproc)" || exit 1
fi
step "devices" "$G" devices
step "doctor (chosen device, kernel paths)" "$G" doctor --no-selftest --device "$device"
step "selftest" "$G" selftest --device "$device"
for t in test_ops test_bn_block test_linearized test_model_parity_emotion; do
  step "$t" env GRADFEAT_DEVICE="$device" "$B/tests/$t"
done
EMO="$tmp/emotion.safetensors"
if bash models/emotion/fetch.sh "$EMO" > /dev/null 2>&1 && [ -d /usr/share/datasets/fashion-mnist ]; then
  FM=/usr/share/datasets/fashion-mnist
  step "train --method all (emotion net, 1000 / 1000 Fashion-MNIST, 3 epochs)" \
    "$G" train --model "$EMO" --data "$FM" --split train --limit 1000 --val "$FM" --val-split test --val-limit 1000 \
    --epochs 3 --method all --device "$device" --run-dir "$tmp/run" --cache-dir "$tmp/cache"
else
  log "== train: skipped (no emotion net or no Fashion-MNIST)"; fails=$((fails + 1))
fi
tdev=cpu; /usr/bin/python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null && tdev=cuda
step "W1 (bench_w1.sh, PyTorch peer on $tdev)" bash tools/bench_w1.sh --batch 64 --reps 5 --device "$device" --torch-device "$tdev"
step "bench ops" "$G" bench ops --batch 64 --reps 5 --device "$device"
log "== gpu_check: $fails step(s) failed; summary in $out"
[ $fails -eq 0 ]
