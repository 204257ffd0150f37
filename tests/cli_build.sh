#!/usr/bin/env bash
# Build-system claims (issue 22). (1) Each library source compiles once: the static and the shared library
# are made of the objects of one OBJECT library (-fPIC), so the build has exactly one compile rule per
# host/<layer>/*.c (Makefiles: build.make rules; Ninja: build.ninja edges). (2) The git commit in
# `gradfeat --version` (and results.json, reports) is taken at build time, not at configure time
# (cmake/GitHash.cmake): the binary reports the hash the build wrote into
# BUILD/gf_git_hash.c; and in a scratch project wired with the same gf_git_hash_source(), a commit
# made after configuring shows after the next build, a build with no new commit recompiles and
# relinks nothing, a new commit recompiles only the hash's source, and a tree that is not a git
# checkout says "unknown" (Makefiles, and Ninja when installed). ~10 s, no OpenCL.
. "$(dirname "$0")/testlib.sh"
B="${GF_BUILD:?GF_BUILD}"
S="${GF_SRC:?GF_SRC}"

# (1) one compile rule per library source
gen=$(sed -n 's/^CMAKE_GENERATOR:INTERNAL=//p' "$B/CMakeCache.txt")
rules() {   # SOURCE (relative to the source dir): how many objects the build compiles from it
  case "$gen" in
    *Makefiles*) cat "$B"/CMakeFiles/*/build.make | grep -c "^CMakeFiles/[^ ]*/$1\.o: $S/$1\$" ;;
    Ninja*) grep -c "^build CMakeFiles/[^ ]*/$1\.o: C_COMPILER[^ ]* $S/$1" "$B/build.ninja" ;;
    *) echo -1 ;;
  esac
}
srcs=$(cd "$S" && ls host/runtime/*.c host/ops/*.c host/data/*.c host/graph/*.c host/method/*.c host/pretrain/*.c host/report/*.c)
: > "$t/twice"
for f in $srcs; do n=$(rules "$f"); [ "$n" = 1 ] || echo "$f: $n" >> "$t/twice"; done
check "each of the $(echo $srcs | wc -w) library sources compiles once ($gen)" '[ $(echo $srcs | wc -w) -ge 30 ] && [ ! -s "$t/twice" ]' || head "$t/twice"
if grep -q "^GF_SHARED:BOOL=ON" "$B/CMakeCache.txt"; then
  check "... with -fPIC (they go into libgradfeat.so too)" \
    'grep -q -- "-fPIC" "$B/CMakeFiles/gradfeat_objects.dir/flags.make" 2>/dev/null || grep -q -- "-fPIC" "$B/build.ninja"'
fi

# (2) the git hash
h=$(sed -n 's/.*gf_git_hash_generated\[\] = "\(.*\)";.*/\1/p' "$B/gf_git_hash.c" 2>/dev/null)
check "the build wrote gf_git_hash.c (git $h)" '[ -n "$h" ]'
check "gradfeat --version reports it" '"$G" --version | head -1 | grep -qF "(git $h)"' || "$G" --version
if head=$(git -C "$S" rev-parse --short=12 HEAD 2> /dev/null) && [ "$head" != "$h" ]; then
  echo "note: this build is of $h, the checkout is at $head now (cmake --build updates it)"
fi

P=$t/proj
mkdir -p "$P"
cp "$S/cmake/GitHash.cmake" "$P/"
cat > "$P/main.c" <<'EOF'
#include <stdio.h>
extern const char gf_git_hash_generated[];
int main(void) { puts(gf_git_hash_generated); return 0; }
EOF
cat > "$P/other.c" <<'EOF'
int other(void) { return 1; }
EOF
# the same wiring as CMakeLists.txt: the hash's source in an OBJECT library that depends on the target
cat > "$P/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.18)
project(githash C)
include(GitHash.cmake)
gf_git_hash_source(hash_target ${CMAKE_CURRENT_BINARY_DIR}/gf_git_hash.c)
add_library(objs OBJECT other.c ${CMAKE_CURRENT_BINARY_DIR}/gf_git_hash.c)
add_dependencies(objs hash_target)
add_executable(p main.c $<TARGET_OBJECTS:objs>)
EOF
g() { git -C "$P" -c user.name=t -c user.email=t@t -c commit.gpgsign=false "$@"; }
g init -q && g add -A && g commit -q -m one
# Makefiles (CI's generator) and, when installed, Ninja
gens=("Unix Makefiles")
command -v ninja > /dev/null && gens+=(Ninja)
for gen in "${gens[@]}"; do
  b="$t/b-${gen// /_}"
  cmake -G "$gen" -S "$P" -B "$b" > "$t/cfg.log" 2>&1; rc=$?
  check "$gen: scratch project configures (rc $rc)" '[ $rc -eq 0 ]' || tail "$t/cfg.log"
  cmake --build "$b" > "$t/b1.log" 2>&1
  h1=$(g rev-parse --short=12 HEAD)
  check "$gen: first build: the program prints HEAD ($h1)" '[ "$("$b/p")" = "$h1" ]' || cat "$t/b1.log"
  cp -p "$b/p" "$t/p1"
  sleep 1   # a relink would show as a newer file
  cmake --build "$b" > "$t/b2.log" 2>&1
  check "$gen: a build with no new commit compiles and links nothing" \
    '! grep -q "Building C object" "$t/b2.log" && ! grep -q "Linking" "$t/b2.log" && [ ! "$b/p" -nt "$t/p1" ]' || cat "$t/b2.log"
  echo "$gen" >> "$P/NOTES"
  g add NOTES && g commit -q -m "after configuring ($gen)"
  h2=$(g rev-parse --short=12 HEAD)
  cmake --build "$b" > "$t/b3.log" 2>&1
  check "$gen: a commit after configuring: the next build prints the new HEAD ($h2)" \
    '[ "$h2" != "$h1" ] && [ "$("$b/p")" = "$h2" ]' || cat "$t/b3.log"
  check "$gen: ... recompiling the hash's source only" \
    '[ $(grep -c "Building C object" "$t/b3.log") -eq 1 ] && grep -q "Building C object.*gf_git_hash.c" "$t/b3.log"' || cat "$t/b3.log"
done
# not a git checkout (a release tarball): "unknown"
mkdir -p "$t/tarball"
cp "$P"/*.c "$P"/*.cmake "$P/CMakeLists.txt" "$t/tarball/"
(export GIT_CEILING_DIRECTORIES="$t"; cmake -S "$t/tarball" -B "$t/b4" && cmake --build "$t/b4") > "$t/b4.log" 2>&1
check "outside a git checkout: unknown" '[ "$("$t/b4/p")" = "unknown" ]' || tail "$t/b4.log"
finish
