#!/usr/bin/env bash
# Train small28 on MNIST from scratch with gradfeat itself (see README.md, the model card).
#   usage: models/small28-mnist/make.sh [EPOCHS]          (default 3)
#   env:   GF_BUILD_DIR       build folder holding gradfeat (default build; else gradfeat on PATH)
#          GRADFEAT_DATA_DIR  where tools/fetch_mnist.sh keeps MNIST (default ~/.cache/gradfeat/data)
#          GRADFEAT_DEVICE / --device in GF_PRETRAIN_ARGS   OpenCL device; GF_PRETRAIN_ARGS: extra options
# Output: models/small28-mnist/small28-mnist.safetensors (git-ignored) and the run folder
# models/small28-mnist/run/ (metrics.jsonl; checkpoint.gfptck while unfinished: rerunning this
# script after an interruption resumes it bit-identically).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
epochs="${1:-3}"
B="${GF_BUILD_DIR:-$root/build}"
case "$B" in /*) ;; *) B="$root/$B" ;; esac
gf="$B/gradfeat"
[ -x "$gf" ] || gf="$(command -v gradfeat || true)"
[ -n "$gf" ] || { echo "make.sh: no gradfeat binary in $B or on PATH (build first, or set GF_BUILD_DIR)" >&2; exit 3; }
data="$("$root/tools/fetch_mnist.sh")"
# --no-augment: pretrain's augmentation always includes horizontal flips, which turn digits into
# non-digits; MNIST needs none to train well.
run="$here/run"
args=(--arch small28 --data "$data" --split train --val "$data" --val-split test --no-augment
      --epochs "$epochs" --seed 1 --run-dir "$run" --out "$here/small28-mnist.safetensors")
if [ -f "$run/checkpoint.gfptck" ]; then
  echo "make.sh: resuming the interrupted run in $run" >&2
  args=(--resume "$run" "${args[@]}")
else
  rm -f "$run/metrics.jsonl"
fi
# shellcheck disable=SC2086   # GF_PRETRAIN_ARGS is a list of options on purpose
"$gf" pretrain "${args[@]}" ${GF_PRETRAIN_ARGS:-}
