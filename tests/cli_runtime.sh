#!/usr/bin/env bash
# CLI foundation: devices, --version, selftest, no-platform advice, bad --device,
# GRADFEAT_KERNEL_DIR (disk kernels; a broken one shows the build log + file).
. "$(dirname "$0")/testlib.sh"

"$G" devices > "$t/dev.txt"; rc=$?
check "devices exits 0" '[ $rc -eq 0 ]'
check "devices lists a device" 'grep -qE "^0 +[0-9]+:[0-9]+" "$t/dev.txt"'
"$G" devices --json > "$t/dev.json"
check "devices --json is JSON with a name" '/usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d and d[0][\"name\"]" "$t/dev.json"'

"$G" --version > "$t/ver.txt"
check "--version names version, CLBlast, OpenCL" 'grep -q "^gradfeat [0-9]" "$t/ver.txt" && grep -q CLBlast "$t/ver.txt" && grep -q OpenCL "$t/ver.txt"'

mkdir "$t/empty"
OCL_ICD_VENDORS="$t/empty" "$G" devices > "$t/np.out" 2> "$t/np.err"; rc=$?
check "no platform -> exit 3 (got $rc)" '[ $rc -eq 3 ]'
check "no platform -> advice" 'grep -q "pocl-opencl-icd" "$t/np.err" && grep -q OCL_ICD_VENDORS "$t/np.err"'
OCL_ICD_VENDORS="$t/empty" "$G" selftest > /dev/null 2> "$t/np2.err"; rc=$?
check "selftest without platform -> exit 3 (got $rc)" '[ $rc -eq 3 ]'

"$G" selftest --device no-such-device-xyz > /dev/null 2> "$t/bad.err"; rc=$?
check "bad --device -> exit 3 (got $rc)" '[ $rc -eq 3 ]'
check "bad --device lists devices" 'grep -q "no OpenCL device matches" "$t/bad.err" && grep -qE "^  0 \(" "$t/bad.err"'
GRADFEAT_DEVICE=42 "$G" cache info > /dev/null 2> "$t/bad2.err"; rc=$?
check "bad GRADFEAT_DEVICE -> exit 3" '[ $rc -eq 3 ] && grep -q "GRADFEAT_DEVICE" "$t/bad2.err"'
"$G" selftest --bogus > /dev/null 2>&1; rc=$?
check "unknown option -> exit 2" '[ $rc -eq 2 ]'
"$G" frobnicate > /dev/null 2>&1; rc=$?
check "unknown command -> exit 2" '[ $rc -eq 2 ]'

"$G" selftest --device cpu > "$t/st.txt" 2>&1; rc=$?
check "selftest passes (rc $rc)" '[ $rc -eq 0 ] && grep -q " 0 failed" "$t/st.txt"'

# Kernels from disk: a copy works; a broken copy reports the file and the build log.
mkdir "$t/cl"; cp "$GF_SRC"/cl/*.cl "$t/cl/"
GRADFEAT_KERNEL_DIR="$t/cl" "$G" selftest > /dev/null 2>&1; rc=$?
check "GRADFEAT_KERNEL_DIR copy -> selftest ok (rc $rc)" '[ $rc -eq 0 ]'
echo "this is not OpenCL C;" >> "$t/cl/util.cl"
GRADFEAT_KERNEL_DIR="$t/cl" "$G" selftest > "$t/bk.out" 2> "$t/bk.err"; rc=$?
check "broken kernel -> exit 7 (got $rc)" '[ $rc -eq 7 ]'
check "broken kernel -> names cl/util.cl and shows the log" 'grep -q "cl/util.cl" "$t/bk.err" && grep -qi "error" "$t/bk.err"'

# Cache CLI round trip with the cache forced on.
export GRADFEAT_CACHE=1 GRADFEAT_CACHE_DIR="$t/cache"
"$G" selftest > /dev/null 2>&1
"$G" cache info > "$t/ci.txt"
check "cache info shows entries" 'grep -qE "entries: [1-9]" "$t/ci.txt"'
"$G" cache clear > /dev/null
"$G" cache info > "$t/ci2.txt"
check "cache clear empties it" 'grep -q "entries: 0" "$t/ci2.txt"'

finish
