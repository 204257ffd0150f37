# Sourced by the tests/cli_*.sh scripts that count checks: . "$(dirname "$0")/testlib.sh"
# Gives: bash's -u; check NAME CONDITION (CONDITION is eval'ed; a failure prints "FAIL: NAME"
# and returns 1, so `check ... || cat LOG` shows the evidence); a temporary directory $t,
# removed on exit unless GF_KEEP_TMP is set; the binary $G, Python $PY and Fashion-MNIST $FM;
# and finish, the script's last command: the summary line, success only when checks ran and
# none failed.
set -u
fails=0; checks=0
check() { checks=$((checks+1)); if ! eval "$2"; then echo "FAIL: $1"; fails=$((fails+1)); return 1; fi; }
t=$(mktemp -d)
if [ -n "${GF_KEEP_TMP:-}" ]; then echo "keeping $t"; else trap 'rm -rf "$t"' EXIT; fi
G="$GF_BIN"
PY=/usr/bin/python3
FM=/usr/share/datasets/fashion-mnist
finish() { echo "$((checks-fails)) passed, $fails failed"; [ $fails -eq 0 ] && [ $checks -gt 0 ]; }

# The oclgrind checks (tests/cli_oclgrind_*.sh): oclgrind_small NAME [ARGS...] runs
# $GF_BUILD/tests/NAME --small ARGS (test_ops: `--filter OP,...`, its rows of those ops) under oclgrind (--check-api --data-races; oclgrind wraps the program via LD_PRELOAD, so only its
# simulator device is seen) and counts as checks: exit 0, ran on the Oclgrind device, a summary line
# "NAME...: N checks, 0 failed" with N > 0, nothing in oclgrind's log (an out-of-bounds access, a data
# race, an API error). --inst-counts names every kernel run in $t/TAG.out (TAG: NAME and ARGS);
# oclgrind_covers FILE.cl...
# then checks that every kernel of those cl/ files ran in at least one of the runs so far.
# Variables set on the call (GRADFEAT_HOST_BLAS=0 oclgrind_small test_ops --filter conv) reach the program.
# GRADFEAT_MAX_WORK_GROUP=N on the call caps every work-group gradfeat launches (oclgrind's device allows
# far more than GPUs do): the run is tagged with the cap and must say it ran with it.
# OCLGRIND_UNINIT=1 on the call adds --uninitialized (a read of memory nothing wrote). Two limits of oclgrind
# 21.10 are worked around for it: it aborts on LLVM's freeze instruction, which the optimiser emits, so the
# kernels are built with -cl-opt-disable (OCLGRIND_BUILD_OPTIONS); and it does not see clEnqueueFillBuffer, so
# buffers are zeroed by host writes (GRADFEAT_ZERO=write). The run is tagged "uninit". Unoptimised kernels
# under this check run 5-10 times slower. oclgrind_uninit NAME [ARGS...]: such runs at the caps 64, 128 and
# 256 (the reductions size their local memory by the group), or at the caps in UNINIT_CAPS on the call.
# oclgrind_caps NAME [ARGS...]: oclgrind_small at the GPU-like caps 64, 128 and 256 in turn (OCLGRIND_CAPS: others).
# oclgrind missing or a test binary not built is a failure, never a skip.
oclgrind_caps() {
  local wg
  for wg in ${OCLGRIND_CAPS:-64 128 256}; do GRADFEAT_MAX_WORK_GROUP=$wg oclgrind_small "$@"; done
}
oclgrind_uninit() {
  # GF_OCLGRIND_UNINIT=0 (.ci/sanitize.sh): these runs check the kernels, which the plain pass has done; the
  # sanitizer pass runs the host code under the other oclgrind runs
  [ "${GF_OCLGRIND_UNINIT:-1}" = 0 ] && { echo "oclgrind --uninitialized: in the plain pass (GF_OCLGRIND_UNINIT=0)"; return 0; }
  local wg
  for wg in ${UNINIT_CAPS:-64 128 256}; do OCLGRIND_UNINIT=1 GRADFEAT_MAX_WORK_GROUP=$wg oclgrind_small "$@"; done
}
oclgrind_small() {
  local name=$1 T="$GF_BUILD/tests/$1" rc s tag wg=${GRADFEAT_MAX_WORK_GROUP:-} un=${OCLGRIND_UNINIT:-}
  local -a uopt=() uenv=()
  shift
  [ -n "$un" ] && { uopt=(--uninitialized); uenv=(OCLGRIND_BUILD_OPTIONS=-cl-opt-disable GRADFEAT_ZERO=write); }
  tag=$(echo "$name $*${wg:+ wg$wg}${un:+ uninit}" | tr -c 'A-Za-z0-9_\n' '_')
  check "oclgrind is installed (Debian package oclgrind)" 'command -v oclgrind > /dev/null' || return 1
  check "$T is built" '[ -x "$T" ]' || return 1
  s=$(date +%s)
  # No program-binary cache: simulator binaries must not land in the user cache.
  env "${uenv[@]}" GRADFEAT_CACHE=0 GRADFEAT_DEVICE= oclgrind --check-api --data-races "${uopt[@]}" --inst-counts \
    --log "$t/$tag.log" "$T" --small "$@" > "$t/$tag.out" 2> "$t/$tag.err"
  rc=$?
  # the program's own lines (the instruction histograms go to stdout too)
  grep -v '^ \|^Instructions executed for kernel\|^$' "$t/$tag.out"; cat "$t/$tag.err"
  echo "$name --small $*${wg:+ (work-group cap $wg)}${un:+ (--uninitialized)} under oclgrind: exit $rc, $(( $(date +%s) - s )) s"
  check "$name --small $*${wg:+ (work-group cap $wg)}${un:+ (--uninitialized)} under oclgrind exits 0 (exited $rc)" '[ $rc -eq 0 ]'
  [ -n "$wg" ] && [ "$name" = test_ops ] &&
    check "$name $* ran with the work-group cap $wg" 'grep -q "kernel paths .*, work-group cap $wg " "$t/$tag.out"'
  check "$name $* ran on the Oclgrind device" 'grep -q "^device: Oclgrind" "$t/$tag.out"'
  check "$name $* reports passing checks" 'grep -q "^$name[^:]*: [1-9][0-9]* checks, 0 failed" "$t/$tag.out"'
  check "oclgrind reports no problem in $name $*" '[ ! -s "$t/$tag.log" ]' || head -60 "$t/$tag.log"
}
oclgrind_covers() {
  local f k ks
  for f in "$@"; do
    ks=$(sed -n 's/^kernel void \([A-Za-z0-9_]*\).*/\1/p' "$GF_SRC/$f")
    check "$f has kernels" '[ -n "$ks" ]'
    for k in $ks; do
      check "kernel $k of $f ran under oclgrind" "grep -qs \"^Instructions executed for kernel '$k':\" \"\$t\"/*.out"
    done
  done
}
