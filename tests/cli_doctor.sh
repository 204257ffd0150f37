#!/usr/bin/env bash
# gradfeat doctor: the bug-report dump. Checks its facts against other sources
# (`gradfeat --version`, `gradfeat devices --json`, the environment, the ICD
# folder, the cache folder on disk), the kernel-cache state across two runs,
# and its exit codes: 0 all good, 3 no OpenCL driver, 7 a kernel that does not
# build, 8 a kernel that computes the wrong numbers (GRADFEAT_KERNEL_DIR with a
# broken copy of cl/).
. "$(dirname "$0")/testlib.sh"

GRADFEAT_CACHE=1 GRADFEAT_CACHE_DIR="$t/kc" GRADFEAT_DOCTOR_PROBE=xyz42 "$G" doctor > "$t/d1.txt" 2> "$t/d1.err"; rc=$?
cat "$t/d1.txt"
check "doctor exits 0 (rc $rc)" '[ $rc -eq 0 ]' || cat "$t/d1.err"
check "sections in order" '[ "$(grep "^== " "$t/d1.txt" | tr "\n" "|")" = "== gradfeat|== environment|== settings|== OpenCL platforms and devices|== chosen device|== kernel cache|== CLBlast tuning|== selftest|== result|" ]'
# every setting the library is handed, with where it came from (the library reads no environment)
check "settings: the cache folder from the environment" 'grep -qx "kernel cache dir  $t/kc  (from env GRADFEAT_CACHE_DIR)" "$t/d1.txt"'
check "settings: the cache switch from the environment" 'grep -qx "kernel cache      on  (from env GRADFEAT_CACHE)" "$t/d1.txt"'
check "settings: defaults say so" 'grep -qx "BN walk           auto  (from default)" "$t/d1.txt"'
GRADFEAT_BN_WALK=strided "$G" doctor --no-selftest --device cpu > "$t/d0.txt" 2>&1
check "settings: a flag and a variable" 'grep -qx "device            cpu  (from flag --device)" "$t/d0.txt" &&
  grep -qx "BN walk           strided  (from env GRADFEAT_BN_WALK)" "$t/d0.txt"' || sed -n "/^== settings/,/^$/p" "$t/d0.txt"
ver=$("$G" --version)
check "version and git hash as --version prints them" \
  'grep -qx "gradfeat        $(echo "$ver" | sed -n "1s/^gradfeat //p")" "$t/d1.txt"'
check "CLBlast version as --version prints it" 'grep -qx "CLBlast         $(echo "$ver" | sed -n "2s/^CLBlast //p")" "$t/d1.txt"'
check "OpenCL header API level" 'grep -q "^OpenCL headers  API level 1.2" "$t/d1.txt"'
# subnormals flushed in the CLI's threads and in the host BLAS's workers (set as OpenBLAS starts them): a
# two-thread GEMM on subnormal inputs gives zeros; GRADFEAT_DENORMALS=keep leaves them (IEEE), nonzero
check "subnormals flushed to zero, host BLAS workers included" 'grep -q "^subnormals      flushed to zero (a 256x256x32 host GEMM on subnormals gave zeros)$" "$t/d1.txt"'
GRADFEAT_DENORMALS=keep "$G" doctor --no-selftest > "$t/dk.txt" 2>&1
check "GRADFEAT_DENORMALS=keep keeps them: the same GEMM gives nonzeros" \
  'grep -q "^subnormals      kept (GRADFEAT_DENORMALS=keep; 65536 and 65536 of 65536 outputs" "$t/dk.txt"' || grep subnormals "$t/dk.txt"
check "environment: GRADFEAT_* variables listed" 'grep -qx "GRADFEAT_DOCTOR_PROBE=xyz42" "$t/d1.txt" && grep -qx "GRADFEAT_CACHE_DIR=$t/kc" "$t/d1.txt"'
icd_dir=${OCL_ICD_VENDORS:-/etc/OpenCL/vendors}
first_icd=$(ls "$icd_dir"/*.icd 2>/dev/null | head -1)
check "ICD files listed with their library" '[ -n "$first_icd" ] && grep -qx "ICD file        $first_icd -> $(head -1 "$first_icd")" "$t/d1.txt"'

"$G" devices --json > "$t/dev.json"
check "every device of devices --json, with its limits" '$PY - "$t/dev.json" "$t/d1.txt" <<EOF
import json, sys
devs = json.load(open(sys.argv[1])); text = open(sys.argv[2]).read()
assert devs, "no devices"
for d in devs:
    head = "  device %d (%d:%d): %s\n" % (d["index"], d["platform_index"], d["device_index"], d["name"])
    assert head in text, head
    block = text.split(head, 1)[1].split("\n  device ", 1)[0]
    assert "platform %d: %s" % (d["platform_index"], d["platform"]) in text
    assert ("driver %s," % d["driver_version"]) in block, block
    assert ("compute units %d," % d["compute_units"]) in block, block
    assert ("max work-group %d" % d["max_work_group_size"]) in block, block
    mib = lambda b: ("%d MiB" % (b // 2**20)) if b >= 2**20 else ("%d KiB" % (b // 1024))
    assert ("global memory " + mib(d["global_mem_bytes"])) in block, block
    assert ("max allocation " + mib(d["max_alloc_bytes"])) in block, block
    assert ("fp64 %s" % ("yes" if d["fp64"] else "no")) in block, block
assert text.count("\n  device ") == len(devs)
EOF'
# the chosen device follows GRADFEAT_DEVICE, with the reason
last=$($PY -c 'import json,sys; d=json.load(open(sys.argv[1]))[-1]; print(d["index"], d["name"])' "$t/dev.json")
GRADFEAT_DEVICE=${last%% *} "$G" doctor --no-selftest > "$t/d2.txt" 2>&1; rc=$?
check "--no-selftest: exits 0, skips the selftest" '[ $rc -eq 0 ] && grep -qx "skipped (--no-selftest)" "$t/d2.txt" && ! grep -q "^check " "$t/d2.txt"'
check "chosen device = GRADFEAT_DEVICE, with the reason" \
  'sed -n "/^== chosen device/{n;p}" "$t/d2.txt" | grep -q "^device ${last%% *} ([0-9]*:[0-9]*) ${last#* } — .*GRADFEAT_DEVICE"' || sed -n "/^== chosen device/,+1p" "$t/d2.txt"

# kernel cache: first run builds and saves, second run loads; entries match the folder on disk
n_files=$(find "$t/kc" -type f | wc -l)
GRADFEAT_CACHE=1 GRADFEAT_CACHE_DIR="$t/kc" "$G" doctor > "$t/d3.txt" 2>&1; rc=$?
check "kernel cache: dir, used, entries as on disk" \
  'grep -qx "dir             $t/kc" "$t/d1.txt" && grep -q "^used            yes" "$t/d1.txt" && grep -q "^entries         0 " "$t/d1.txt" && [ $n_files -gt 0 ] && grep -q "^entries         $n_files " "$t/d3.txt"'
check "kernel cache: first run builds from source and saves, second loads" \
  'grep -Eq "^kernels ready in .* \(([1-9][0-9]*) built from source, 0 from the cache, \1 saved to it\)" "$t/d1.txt" && grep -Eq "^kernels ready in .* \(0 built from source, [1-9][0-9]* from the cache" "$t/d3.txt"'
check "selftest table: every row ok, count line consistent" '$PY - "$t/d1.txt" <<EOF
import re, sys
text = open(sys.argv[1]).read()
sec = text.split("== selftest\n", 1)[1].split("\n== result", 1)[0].splitlines()
rows = [l for l in sec[2:] if not re.match(r"\d+ passed", l)]
assert len(rows) >= 20, rows
assert all(re.search(r"\s[0-9.e+-]+\s+[0-9.e+-]+\s+[0-9.e+-]+\s+ok$", r) for r in rows), rows
assert "%d passed, 0 failed" % len(rows) in sec, sec[-1]
assert text.rstrip().endswith("== result\nall good"), text[-80:]
EOF'

# ---- failures ----
mkdir "$t/novendors"
OCL_ICD_VENDORS="$t/novendors" "$G" doctor > "$t/d4.txt" 2> "$t/d4.err"; rc=$?
check "no OpenCL driver -> exit 3, still prints versions and the empty ICD folder (rc $rc)" \
  '[ $rc -eq 3 ] && grep -q "^gradfeat        " "$t/d4.txt" && grep -q "ICD folder      $t/novendors: no .icd files" "$t/d4.txt" && grep -q "^OCL_ICD_VENDORS=$t/novendors" "$t/d4.txt" && grep -q "problem: no OpenCL device" "$t/d4.txt"'
"$G" doctor --device no-such-device-xyz > "$t/d5.txt" 2> "$t/d5.err"; rc=$?
check "unknown --device -> exit 3 naming it (rc $rc)" '[ $rc -eq 3 ] && grep -q "no-such-device-xyz" "$t/d5.err"'
mkdir "$t/cl-bad" "$t/cl-wrong"
cp "$GF_SRC"/cl/*.cl "$t/cl-bad/" && cp "$GF_SRC"/cl/*.cl "$t/cl-wrong/"
echo "this is not OpenCL C;" >> "$t/cl-bad/util.cl"
sed -i 's/a \* x\[i\] + b \* y\[i\];/a * x[i] + b * y[i] + 0.5f;/' "$t/cl-wrong/util.cl"
check "the wrong-numbers kernel copy differs from cl/util.cl" '! cmp -s "$t/cl-wrong/util.cl" "$GF_SRC/cl/util.cl"'
GRADFEAT_KERNEL_DIR="$t/cl-bad" "$G" doctor > "$t/d6.txt" 2> "$t/d6.err"; rc=$?
check "kernel that does not build -> exit 7 naming the file (rc $rc)" '[ $rc -eq 7 ] && grep -q "util.cl" "$t/d6.err"' || tail -3 "$t/d6.err"
GRADFEAT_KERNEL_DIR="$t/cl-wrong" "$G" doctor > "$t/d7.txt" 2> "$t/d7.err"; rc=$?
check "kernel with wrong numbers -> exit 8, its row FAIL (rc $rc)" \
  '[ $rc -eq 8 ] && grep -Eq "^util axpby .*FAIL$" "$t/d7.txt" && grep -q "problem: selftest checks failed" "$t/d7.txt"'
"$G" doctor --bogus > /dev/null 2>&1; rc=$?
check "unknown option -> exit 2" '[ $rc -eq 2 ]'
# the host BLAS's kernels (what CPU devices' GEMMs run), and whether OPENBLAS_CORETYPE forced them
OPENBLAS_CORETYPE=Haswell "$G" doctor --no-selftest > "$t/b1.txt" 2>&1
env -u OPENBLAS_CORETYPE "$G" doctor --no-selftest > "$t/b2.txt" 2>&1
# unset: OpenBLAS's own choice, or gradfeat's where OpenBLAS fell back to Prescott's kernels on a CPU it did not know
# (host/runtime/gemm.c choose_blas_kernels_once): never Prescott's on a CPU with AVX
avx=0; grep -qw avx /proc/cpuinfo 2>/dev/null && avx=1
check "host BLAS line: OPENBLAS_CORETYPE=Haswell shows forced Haswell kernels; unset, OpenBLAS's own choice or gradfeat's, not Prescott's with AVX" \
  'grep -q "^host BLAS *OpenBLAS, kernels Haswell (forced: OPENBLAS_CORETYPE=Haswell)" "$t/b1.txt" &&
   grep -q "^OPENBLAS_CORETYPE=Haswell" "$t/b1.txt" &&
   grep -Eq "^host BLAS *OpenBLAS, kernels [A-Za-z0-9]* \((its own choice|it did not know this CPU and fell back to [A-Za-z0-9]*.s: gradfeat chose these)" "$t/b2.txt" &&
   { [ $avx -eq 0 ] || ! grep -q "^host BLAS *OpenBLAS, kernels Prescott" "$t/b2.txt"; }' \
  || grep -h "BLAS" "$t/b1.txt" "$t/b2.txt"
# OpenBLAS asks the program how long its idle threads spin (host/cli/hostblas.c): 2^4 cycles unless set
OPENBLAS_THREAD_TIMEOUT=20 "$G" doctor --no-selftest > "$t/b3.txt" 2>&1
check "OpenBLAS's idle threads: 2^4 cycles by gradfeat's default, 2^20 with OPENBLAS_THREAD_TIMEOUT=20" \
  'grep -q "^host BLAS .*idle threads spin 2^4 cycles (gradfeat.s default)" "$t/b2.txt" &&
   grep -q "^host BLAS .*idle threads spin 2^20 cycles (OPENBLAS_THREAD_TIMEOUT)" "$t/b3.txt"' || grep -h "^host BLAS" "$t"/b[23].txt
# a batch of GEMMs split over OpenBLAS's threads (host/runtime/gemm.c run_split), named where there are two or more
OPENBLAS_NUM_THREADS=2 "$G" doctor --no-selftest > "$t/b4.txt" 2>&1
OPENBLAS_NUM_THREADS=1 "$G" doctor --no-selftest > "$t/b5.txt" 2>&1
check "host BLAS line: batched GEMMs split over OpenBLAS's 2 threads, not named with 1" \
  'grep -q "^host BLAS .*; batched GEMMs split over its 2 threads, a GEMM each" "$t/b4.txt" &&
   grep -q "^host BLAS " "$t/b5.txt" && ! grep -q "batched GEMMs split" "$t/b5.txt"' || grep -h "^host BLAS" "$t"/b[45].txt
"$G" doctor --help | grep -q -- "--no-selftest"; check "help lists options" '[ $? -eq 0 ]'

finish
