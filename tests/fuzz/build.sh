#!/usr/bin/env bash
# Builds the libFuzzer harnesses tests/fuzz/fuzz_*.c with clang:
# the library (host/<layer>/*.c) with -fsanitize=fuzzer-no-link,address,undefined
# into OUT/lib, each harness linked with -fsanitize=fuzzer,address,undefined
# into OUT/fuzz_<name>. Incremental: a second run only relinks what changed.
#   tests/fuzz/build.sh [OUT]      (default OUT: build-fuzz in the source root)
# Needs clang + libclang-rt-dev (Debian: clang, libclang-rt-14-dev).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:-$SRC/build-fuzz}
CC=${GF_FUZZ_CC:-clang}
JOBS=${GF_FUZZ_JOBS:-2}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
command -v "$CC" >/dev/null || { echo "fuzz/build.sh: $CC not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"

cmake -S "$SRC" -B "$OUT/lib" -DCMAKE_C_COMPILER="$CC" -DGF_TESTS=OFF -DGF_WERROR=OFF -DGF_MPI=OFF \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link $SAN" >"$OUT/cmake.log" \
  || { cat "$OUT/cmake.log" >&2; exit 1; }
cmake --build "$OUT/lib" --target gradfeat -j"$JOBS" >"$OUT/build.log" 2>&1 || { tail -50 "$OUT/build.log" >&2; exit 1; }

CFLAGS=(-std=c11 -g -O1 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -DCL_TARGET_OPENCL_VERSION=120
        -I"$SRC/include" -I"$SRC/host" -I/usr/include/stb)
# every layer folder of host/ is on the include path, as in CMakeLists.txt (GF_LAYERS)
for layer in runtime ops data graph method pretrain report; do CFLAGS+=(-I"$SRC/host/$layer"); done
LIBS=("$OUT/lib/libgradfeat.a" -lOpenCL -lclblast -lcjson -lstb -lz -lpthread -lm)
# the host-BLAS GEMM path is compiled in when CMake found OpenBLAS
# (its flags live with the object library that feeds libgradfeat.a)
if cat "$OUT"/lib/CMakeFiles/gradfeat*.dir/flags.make 2>/dev/null | grep -q "GF_HAVE_CBLAS"; then LIBS+=(-lopenblas); fi
# native ONNX loading (fuzz_onnx) is compiled in when CMake found protobuf-c
if cat "$OUT"/lib/CMakeFiles/gradfeat*.dir/flags.make 2>/dev/null | grep -q "GF_HAVE_PROTOBUF_C"; then LIBS+=(-lprotobuf-c); fi

# stb_image with coverage + ASan only (no UBSan: upstream code)
obj_stb="$OUT/stb_image_impl.o"
if [ ! -e "$obj_stb" ] || [ "$SRC/tests/fuzz/stb_image_impl.c" -nt "$obj_stb" ] || [ "$SRC/host/data/stb_image.c" -nt "$obj_stb" ]; then
  "$CC" "${CFLAGS[@]}" -fsanitize=fuzzer-no-link,address -c "$SRC/tests/fuzz/stb_image_impl.c" -o "$obj_stb"
fi

# the --config parser lives in the CLI (host/cli/config.c), not the library
obj_cfg="$OUT/cli_config.o"
if [ ! -e "$obj_cfg" ] || [ "$SRC/host/cli/config.c" -nt "$obj_cfg" ]; then
  "$CC" "${CFLAGS[@]}" $SAN -fsanitize=fuzzer-no-link -c "$SRC/host/cli/config.c" -o "$obj_cfg"
fi

built=()
for src in "$SRC"/tests/fuzz/fuzz_*.c; do
  name=$(basename "$src" .c)
  extra=("$obj_stb")   # every harness: ahead of the archive's UBSan-instrumented copy
  [ "$name" = fuzz_config ] && extra+=("$obj_cfg")
  bin="$OUT/$name"
  if [ -e "$bin" ] && [ "$bin" -nt "$src" ] && [ "$bin" -nt "$OUT/lib/libgradfeat.a" ] && [ "$bin" -nt "$SRC/tests/fuzz/fuzz_common.h" ] \
     && [ "$bin" -nt "$SRC/tests/fuzz/fuzz_model_check.h" ] \
     && [ "$bin" -nt "$obj_stb" ] && { [ ${#extra[@]} -eq 1 ] || [ "$bin" -nt "${extra[1]}" ]; }; then
    built+=("$name"); continue
  fi
  "$CC" "${CFLAGS[@]}" $SAN -fsanitize=fuzzer "$src" "${extra[@]}" "${LIBS[@]}" -o "$bin"
  built+=("$name")
done
echo "fuzz/build.sh: ${built[*]} in $OUT"
