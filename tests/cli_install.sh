#!/usr/bin/env bash
# Install like a library (issue 22 items 2, 3): `cmake --install` into a scratch prefix puts the CLI, the shared
# library (soname libgradfeat.so.0), the static library, the headers, gradfeat.pc and the CMake package (in
# lib/<multiarch triplet> on Debian), the man page and the bash completion in place; a tiny program builds against the installed library with pkg-config (shared and --static) and
# with find_package(gradfeat) (gradfeat::gradfeat_shared and gradfeat::gradfeat) and runs; `cpack -G DEB`
# makes a .deb whose Depends come from the binaries, and its CLI runs from `dpkg -x` (--version, selftest).
. "$(dirname "$0")/testlib.sh"
B="${GF_BUILD:?GF_BUILD}"
R="$t/root"
# a GF_SANITIZE build's static library needs the sanitizer runtimes in the programs linked against it
san=""
grep -q "^GF_SANITIZE:BOOL=ON" "$B/CMakeCache.txt" 2>/dev/null && san="-fsanitize=address,undefined,float-cast-overflow"
cmake --install "$B" --prefix "$R" > "$t/install.log" 2>&1; rc=$?
check "cmake --install (rc $rc)" '[ $rc -eq 0 ]' || tail "$t/install.log"
L=$(dirname "$(find "$R" -name libgradfeat.a | head -1)")
for f in bin/gradfeat include/gradfeat.h include/gradfeat_train.h; do check "installed $f" "[ -f '$R/$f' ]"; done
check "static and shared libraries" '[ -f "$L/libgradfeat.a" ] && [ -L "$L/libgradfeat.so" ] && [ -L "$L/libgradfeat.so.0" ]'
check "soname libgradfeat.so.0" 'objdump -p "$L/libgradfeat.so" | grep -q "SONAME *libgradfeat.so.0$"'
check "pkg-config file" '[ -f "$L/pkgconfig/gradfeat.pc" ]'
check "CMake package" '[ -f "$L/cmake/gradfeat/gradfeatConfig.cmake" ] && [ -f "$L/cmake/gradfeat/gradfeatTargets.cmake" ]'
# Debian multiarch (GF_MULTIARCH): libraries, gradfeat.pc and the CMake package in lib/<triplet>
MA=$(cc -print-multiarch 2>/dev/null)
if [ -f /etc/debian_version ] && [ -n "$MA" ] && grep -q "^GF_MULTIARCH:BOOL=ON" "$B/CMakeCache.txt"; then
  check "multiarch: the libraries in lib/$MA" '[ "$L" = "$R/lib/$MA" ] && [ ! -e "$R/lib/libgradfeat.a" ]' || echo "L=$L"
  check "multiarch: gradfeat.pc's libdir is lib/$MA" \
    '[ "$(realpath "$(PKG_CONFIG_PATH="$L/pkgconfig" pkg-config --variable=libdir gradfeat)")" = "$R/lib/$MA" ]'
fi
# the man page and the completion (written by the CLI at build time, tests/cli_docs.sh checks their content)
check "installed share/man/man1/gradfeat.1.gz (= the build's)" 'cmp -s "$R/share/man/man1/gradfeat.1.gz" "$B/gradfeat.1.gz"'
check "installed share/bash-completion/completions/gradfeat (= the build's)" \
  'cmp -s "$R/share/bash-completion/completions/gradfeat" "$B/gradfeat.bash-completion"'
"$R/bin/gradfeat" --version > "$t/v" 2>&1
check "installed CLI --version" 'grep -q "^gradfeat " "$t/v"' || cat "$t/v"

cat > "$t/prog.c" <<'CEOF'
#include <stdio.h>
#include <stdlib.h>
#include <gradfeat.h>
int main(void) {
    gf_device_info *d = NULL;
    int n = 0;
    char msg[512];
    gf_status st = gf_devices_list(&d, &n, msg, sizeof msg);
    printf("gradfeat %s (git %s): %d OpenCL devices\n", gf_version(), gf_git_hash(), st == GF_OK ? n : 0);
    free(d);
    return st == GF_OK && n > 0 ? 0 : 1;
}
CEOF
export PKG_CONFIG_PATH="$L/pkgconfig"
cc -std=c11 -Wall -Werror $san "$t/prog.c" $(pkg-config --cflags --libs gradfeat) -o "$t/p_shared" 2> "$t/cc1"; rc=$?
check "pkg-config: build against the shared library (rc $rc)" '[ $rc -eq 0 ]' || cat "$t/cc1"
check "pkg-config: the program needs libgradfeat.so.0" 'objdump -p "$t/p_shared" | grep -q "NEEDED *libgradfeat.so.0$"'
LD_LIBRARY_PATH="$L" "$t/p_shared" > "$t/o1" 2>&1; rc=$?
check "pkg-config shared program runs (rc $rc)" '[ $rc -eq 0 ] && grep -q "OpenCL devices" "$t/o1"' || cat "$t/o1"
cc -std=c11 -Wall -Werror $san "$t/prog.c" $(pkg-config --cflags gradfeat) "$L/libgradfeat.a" \
   $(pkg-config --static --libs-only-l gradfeat | sed 's/-lgradfeat//') -o "$t/p_static" 2> "$t/cc2"; rc=$?
check "pkg-config --static: build against libgradfeat.a (rc $rc)" '[ $rc -eq 0 ]' || cat "$t/cc2"
check "static program does not need libgradfeat.so" '! objdump -p "$t/p_static" | grep -q "NEEDED *libgradfeat"'
"$t/p_static" > "$t/o2" 2>&1; rc=$?
check "static program runs (rc $rc)" '[ $rc -eq 0 ]' || cat "$t/o2"

mkdir -p "$t/cm"
cp "$t/prog.c" "$t/cm/"
cat > "$t/cm/CMakeLists.txt" <<'CEOF'
cmake_minimum_required(VERSION 3.18)
project(uses_gradfeat C)
find_package(gradfeat 0.1 REQUIRED)
add_executable(p_cmake_shared prog.c)
target_link_libraries(p_cmake_shared PRIVATE gradfeat::gradfeat_shared)
add_executable(p_cmake_static prog.c)
target_link_libraries(p_cmake_static PRIVATE gradfeat::gradfeat)
CEOF
(cmake -S "$t/cm" -B "$t/cm/b" -DCMAKE_PREFIX_PATH="$R" -DCMAKE_C_FLAGS="$san" && cmake --build "$t/cm/b") > "$t/cm.log" 2>&1; rc=$?
check "find_package(gradfeat): both targets build (rc $rc)" '[ $rc -eq 0 ]' || tail -20 "$t/cm.log"
"$t/cm/b/p_cmake_shared" > "$t/o3" 2>&1; rc=$?
check "find_package shared program runs (rpath) (rc $rc)" '[ $rc -eq 0 ]' || cat "$t/o3"
"$t/cm/b/p_cmake_static" > "$t/o4" 2>&1; rc=$?
check "find_package static program runs (rc $rc)" '[ $rc -eq 0 ]' || cat "$t/o4"

# .deb. cpack runs the `preinstall` target, which rebuilds the whole tree when HEAD moved since the build
# (the git hash is compiled in): that would relink the programs under the tests running beside this one.
# So a build that is not at HEAD fails here, saying so, instead of racing them.
built=$(sed -n 's/.*gf_git_hash_generated\[\] = "\([0-9a-f]*\)".*/\1/p' "$B/gf_git_hash.c" 2>/dev/null)
head=$(git -C "${GF_SRC:-$(dirname "$0")/..}" rev-parse --short=12 HEAD 2>/dev/null)
if [ -n "$built" ] && [ -n "$head" ] && [ "$built" != "$head" ]; then
  check "the build is at HEAD (built $built, HEAD $head): run cmake --build first" false
  finish; exit $?
fi
(cd "$B" && cpack -G DEB -B "$t/pkg") > "$t/cpack.log" 2>&1; rc=$?
deb=$(ls "$t"/pkg/gradfeat_*.deb 2>/dev/null | head -1)
check "cpack -G DEB (rc $rc)" '[ $rc -eq 0 ] && [ -n "$deb" ]' || tail "$t/cpack.log"
dpkg-deb -f "$deb" Depends > "$t/deps" 2>&1
check "Depends lists the Debian libraries used" \
  'grep -q libclblast1 "$t/deps" && grep -q libcjson1 "$t/deps" && grep -q ocl-icd-libopencl1 "$t/deps" && grep -q zlib1g "$t/deps"' \
  || cat "$t/deps"
# the optional parts this build has bring their libraries along
if grep -q "^GF_MPI:BOOL=ON" "$B/CMakeCache.txt"; then
  check "Depends lists Open MPI (GF_MPI build)" 'grep -q libopenmpi "$t/deps"' || cat "$t/deps"
fi
if [ -f "$B/onnx/onnx.pb-c.c" ]; then
  check "Depends lists protobuf-c (native ONNX build)" 'grep -q libprotobuf-c1 "$t/deps"' || cat "$t/deps"
fi
dpkg-deb -c "$deb" | sed 's/ -> .*//' | awk '{print $NF}' > "$t/files"
check "the .deb holds the man page and the completion" \
  'grep -qx "./usr/share/man/man1/gradfeat.1.gz" "$t/files" && grep -qx "./usr/share/bash-completion/completions/gradfeat" "$t/files"' \
  || cat "$t/files"
if [ -n "${MA:-}" ] && [ -f /etc/debian_version ] && grep -q "^GF_MULTIARCH:BOOL=ON" "$B/CMakeCache.txt"; then
  check "the .deb's libraries, gradfeat.pc and CMake package are in /usr/lib/$MA" \
    'grep -qx "./usr/lib/$MA/libgradfeat.so.0" "$t/files" && grep -qx "./usr/lib/$MA/libgradfeat.a" "$t/files" &&
     grep -qx "./usr/lib/$MA/pkgconfig/gradfeat.pc" "$t/files" && grep -qx "./usr/lib/$MA/cmake/gradfeat/gradfeatConfig.cmake" "$t/files" &&
     ! grep -q "^./usr/lib/libgradfeat" "$t/files"' || cat "$t/files"
fi
dpkg-deb -I "$deb" shlibs > "$t/shlibs" 2>&1; dpkg-deb -I "$deb" postinst > "$t/postinst" 2>&1
check "the .deb declares libgradfeat.so.0 (shlibs) and its postinst runs ldconfig" \
  'grep -q "^libgradfeat 0 gradfeat (>= 0.1.0)$" "$t/shlibs" && grep -q "ldconfig" "$t/postinst"' || cat "$t/shlibs" "$t/postinst"
dpkg -x "$deb" "$t/x"
if command -v man > /dev/null && command -v groff > /dev/null; then
  MANWIDTH=80 man -l "$t/x/usr/share/man/man1/gradfeat.1.gz" > "$t/man.txt" 2> "$t/man.err"; rc=$?
  check "man -l renders the .deb's gradfeat.1.gz without a warning (rc $rc)" \
    '[ $rc -eq 0 ] && [ ! -s "$t/man.err" ] && grep -q "gradfeat selftest" "$t/man.txt"' || head "$t/man.err"
fi
check "the .deb's completion completes 'gradfeat sel' to selftest" \
  '[ "$(bash -c ". $t/x/usr/share/bash-completion/completions/gradfeat; COMP_WORDS=(gradfeat sel); COMP_CWORD=1; _gradfeat; echo \${COMPREPLY[*]}")" = selftest ]'
"$t/x/usr/bin/gradfeat" --version > "$t/v2" 2>&1; rc=$?
check "gradfeat --version from the unpacked .deb (rc $rc)" '[ $rc -eq 0 ] && grep -q "^gradfeat " "$t/v2"' || cat "$t/v2"
"$t/x/usr/bin/gradfeat" selftest > "$t/st" 2>&1; rc=$?
check "gradfeat selftest from the unpacked .deb (rc $rc)" '[ $rc -eq 0 ]' || tail "$t/st"
echo "deb: $(basename "$deb"), $(du -k "$deb" | cut -f1) KiB; Depends: $(cat "$t/deps")"
finish
