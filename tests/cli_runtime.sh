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

# The default device must pass the selftest where there is a choice (host/cli/devcheck.c): with Mesa's rusticl
# enabled there are two CPU devices, PoCL first by the order. Its verdict is kept in the cache folder; a device
# whose kept verdict is "fail" (what a broken driver leaves) is passed over for llvmpipe, with a warning naming
# it; every device failed -> exit 3; a named device and a single device are used as asked.
if RUSTICL_ENABLE=llvmpipe "$G" devices 2> /dev/null | grep -q rusticl; then
  VC="$t/verdicts"
  RUSTICL_ENABLE=llvmpipe GRADFEAT_CACHE_DIR="$VC" "$G" cache info > "$t/v1.out" 2> "$t/v1.err"; rc=$?
  check "two devices, no verdict yet: the default (PoCL) is checked and used (exit $rc)" \
    '[ $rc -eq 0 ] && grep -q "checking the default device pthread" "$t/v1.err"' || cat "$t/v1.err"
  check "its verdict is kept: one selftest-*.txt saying pass" \
    '[ $(ls "$VC"/selftest-*.txt | wc -l) -eq 1 ] && grep -q "^pass [0-9]* rows" "$VC"/selftest-*.txt'
  RUSTICL_ENABLE=llvmpipe GRADFEAT_CACHE_DIR="$VC" "$G" cache info > /dev/null 2> "$t/v2.err"; rc=$?
  check "a kept pass: no second selftest" '[ $rc -eq 0 ] && [ ! -s "$t/v2.err" ]' || cat "$t/v2.err"
  pocl_verdict=$(ls "$VC"/selftest-*.txt)
  echo "fail 3 of 42 rows failed" > "$pocl_verdict"
  RUSTICL_ENABLE=llvmpipe GRADFEAT_CACHE_DIR="$VC" "$G" selftest > "$t/v3.out" 2> "$t/v3.err"; rc=$?
  check "selftest reports on the default itself (PoCL) without the check" \
    'grep -q "^device: pthread" "$t/v3.out" && ! grep -q "failed the selftest" "$t/v3.err"' || cat "$t/v3.out" "$t/v3.err"
  RUSTICL_ENABLE=llvmpipe GRADFEAT_CACHE_DIR="$VC" "$G" cache info --device auto > /dev/null 2> "$t/v4.err"; rc=$?
  check "a device whose kept verdict is fail is passed over, with a warning (exit $rc)" \
    '[ $rc -eq 0 ] && grep -q "warning: device 0 (0:0) pthread.* failed the selftest: 3 of 42 rows failed" "$t/v4.err" && grep -q "checking the default device llvmpipe" "$t/v4.err"' || cat "$t/v4.err"
  RUSTICL_ENABLE=llvmpipe GRADFEAT_CACHE_DIR="$VC" GRADFEAT_DEVICE= "$G" bench trunk --verbose --model "$t/none" 2> "$t/v5.err" > /dev/null
  check "the run's device is llvmpipe, and the reason says why" \
    'grep -q "llvmpipe .*passed over 1 device that failed the selftest" "$t/v5.err"' || cat "$t/v5.err"
  RUSTICL_ENABLE=llvmpipe GRADFEAT_CACHE_DIR="$VC" "$G" cache info --device 0:0 > /dev/null 2> "$t/v6.err"; rc=$?
  check "a named device is used as asked, no check" '[ $rc -eq 0 ] && [ ! -s "$t/v6.err" ]' || cat "$t/v6.err"
  GRADFEAT_CACHE_DIR="$VC" "$G" cache info > /dev/null 2> "$t/v7.err"; rc=$?
  check "a single device (rusticl off) is used without the check" '[ $rc -eq 0 ] && [ ! -s "$t/v7.err" ]' || cat "$t/v7.err"
  # a real failure: kernels from a folder whose ReLU is wrong (no verdict kept for such kernels)
  mkdir "$t/badrelu" && cp "$GF_SRC"/cl/*.cl "$t/badrelu/"
  sed -i 's/if (kind == ACT_RELU) r = (v <= 0.0f) ? 0.0f : v;/if (kind == ACT_RELU) r = (v <= 0.0f) ? 0.0f : 2.0f * v;/' "$t/badrelu/act.cl"
  check "the broken ReLU is in place" 'grep -q "2.0f \* v" "$t/badrelu/act.cl"'
  RUSTICL_ENABLE=llvmpipe GRADFEAT_CACHE_DIR="$t/vc2" GRADFEAT_KERNEL_DIR="$t/badrelu" "$G" cache info > /dev/null 2> "$t/v9.err"; rc=$?
  check "kernels that fail the selftest on both devices: both warned about, exit 3 (exit $rc)" \
    '[ $rc -eq 3 ] && [ $(grep -c "failed the selftest: [0-9]* of [0-9]* rows failed" "$t/v9.err") -eq 2 ] && grep -q "every OpenCL device failed" "$t/v9.err"' || cat "$t/v9.err"
  check "no verdict kept for kernels from a folder" '[ $(ls "$t/vc2"/selftest-*.txt 2> /dev/null | wc -l) -eq 0 ]'
  for f in "$VC"/selftest-*.txt; do echo "fail 1 of 42 rows failed" > "$f"; done
  RUSTICL_ENABLE=llvmpipe GRADFEAT_CACHE_DIR="$VC" "$G" cache info > /dev/null 2> "$t/v8.err"; rc=$?
  check "every device failed: exit 3, saying so (exit $rc)" \
    '[ $rc -eq 3 ] && grep -q "every OpenCL device failed the selftest" "$t/v8.err"' || cat "$t/v8.err"
  GRADFEAT_CACHE_DIR="$VC" "$G" cache clear > /dev/null
  check "cache clear forgets the verdicts" '[ $(ls "$VC"/selftest-*.txt 2> /dev/null | wc -l) -eq 0 ]'
else
  check "Mesa's rusticl is installed (mesa-opencl-icd; tools/setup.sh --tests): the default-device check needs two devices" false
fi
finish
