#!/usr/bin/env bash
# gradfeat tune (issue 18 item 6) on PoCL with the CLBlast path forced (GRADFEAT_PATHS=gpu; by default a
# CPU device runs GEMMs in the host BLAS):
#   - a tiny-budget tune writes this device's tuning file into the cache folder (temp + rename: no temp
#     file left), with the parameters it printed, and doctor then reports the device tuned and applied;
#   - a file with non-default parameters for every kernel (Xgemm, XgemmDirect, the indirect switch-over)
#     is applied, and GEMM-using runs give the untuned run's numbers to fp32 rounding: the emotion net's
#     predictions (image by image, every class probability) and the conv/linear rows of test_ops;
#   - corrupt, truncated, foreign (another device or driver), binary and directory files are ignored with a
#     warning naming the file, and the run goes on with CLBlast's defaults (exit 0, same numbers);
#   - GRADFEAT_TUNING=0 ignores a good file; the host-BLAS path reports it not applied; bad settings and an
#     unusable cache folder are errors that say what to do.
. "$(dirname "$0")/testlib.sh"
unset GRADFEAT_DEVICE GRADFEAT_PATHS GRADFEAT_CONV_KERNELS GRADFEAT_BN_WALK GRADFEAT_GEMM GRADFEAT_HOST_BLAS GRADFEAT_TUNING
export OCL_ICD_VENDORS=/etc/OpenCL/vendors/pocl.icd GRADFEAT_DEVICE="Portable Computing Language"
export GRADFEAT_CACHE_DIR="$t/kc"
GPU=(env GRADFEAT_PATHS=gpu)

# --- tune with a tiny budget writes the file
"${GPU[@]}" "$G" tune --budget 1 --batch 1 --reps 1 > "$t/tune.txt" 2> "$t/tune.err"; rc=$?
cat "$t/tune.txt"
check "tune exits 0 (rc $rc)" '[ $rc -eq 0 ]' || tail -20 "$t/tune.err"
f=$(sed -n 's/^written: //p' "$t/tune.txt")
check "tune names the file it wrote, in the cache folder" '[ -n "$f" ] && [ -f "$f" ] && [ "$(dirname "$f")" = "$t/kc" ] &&
  [[ "$(basename "$f")" =~ ^clblast-tune-[0-9a-f]{16}\.txt$ ]]'
check "no temp file left beside it" '! ls -A "$t/kc" | grep -q tmp && [ "$(ls "$t/kc" | grep -c "^clblast-tune-")" -eq 1 ]'
check "progress with an ETA on stderr, not stdout" 'grep -q "^tune Xgemm: .* tried .*ETA " "$t/tune.err" && ! grep -q ETA "$t/tune.txt"'
check "before/after GFLOP/s printed" 'grep -qE "^SGEMM at the layer4 conv GEMMs \(batch 1\): default [0-9.]+ GFLOP/s, tuned [0-9.]+ GFLOP/s" "$t/tune.txt"'
check "the file holds the kernel lines tune printed" 'for k in Xgemm XgemmDirect GemmRoutine; do
  grep -qx "$(grep "^kernel $k " "$t/tune.txt")" "$f" || exit 1; done; grep -qx "kernel GemmRoutine XGEMM_MIN_INDIRECT_SIZE=[0-9]*" "$f"'

doctor() { "$@" "$G" doctor --no-selftest > "$t/doc.txt" 2> "$t/doc.err"; sed -n "/^== CLBlast tuning/,/^== /p" "$t/doc.txt"; }
doctor "${GPU[@]}"
check "doctor: tuned and applied, with the file" 'grep -qx "state           tuned, applied" "$t/doc.txt" && grep -qx "file            $f" "$t/doc.txt"'
check "doctor: the measured figures" 'grep -q "^measured        SGEMM [0-9.]* GFLOP/s with CLBlast.s defaults, [0-9.]* tuned" "$t/doc.txt"'
doctor env
check "doctor on the host-BLAS path: tuned, not applied" 'grep -qx "state           tuned, not applied" "$t/doc.txt" &&
  grep -q "GEMMs run in the host BLAS" "$t/doc.txt"'
doctor env GRADFEAT_PATHS=gpu GRADFEAT_TUNING=0
check "GRADFEAT_TUNING=0: not applied, and the setting is listed" 'grep -qx "state           tuned, not applied" "$t/doc.txt" &&
  grep -q "tuning is off" "$t/doc.txt" && grep -qx "GEMM tuning       off  (from env GRADFEAT_TUNING)" "$t/doc.txt"'
GRADFEAT_TUNING=yes "$G" doctor --no-selftest > /dev/null 2> "$t/bad.err"; rc=$?
check "GRADFEAT_TUNING=yes is a usage error (rc $rc)" '[ $rc -eq 2 ] && grep -q "GRADFEAT_TUNING=.yes. is not 0 or 1" "$t/bad.err"'

# --- a file with non-default parameters for every kernel (checksum: gf_fnv1a, FNV-1a 64 from GF_FNV_INIT, of the
# bytes before its line)
write_tune() {  # write_tune DEVICE_NAME (or "": this one's) > file
  $PY - "$t/tuned.txt" "$1" <<'EOF'
import sys
src, other = sys.argv[1], sys.argv[2]
head = {}
for line in open(src):   # the facts of the file tune wrote: device, vendor, driver, platform, clblast
    k, _, v = line.rstrip("\n").partition(" ")
    if k in ("format", "device", "vendor", "driver", "platform", "clblast"): head[k] = v
if other: head["device"] = other
text = "# written by tests/cli_tune.sh\n" + "".join("%s %s\n" % (k, head[k]) for k in
        ("format", "device", "vendor", "driver", "platform", "clblast"))
text += "sgemm_gflops 1.00 2.00\n"
text += ("kernel Xgemm GEMMK=0 KREG=1 KWG=16 KWI=2 MDIMA=8 MDIMC=8 MWG=32 NDIMB=8 NDIMC=8 NWG=32 SA=1 SB=1 "
         "STRM=1 STRN=1 VWM=2 VWN=2\n")
text += "kernel XgemmDirect KWID=8 MDIMAD=16 MDIMCD=16 NDIMBD=16 NDIMCD=16 PADA=1 PADB=1 VWMD=2 VWND=2 WGD=64\n"
text += "kernel GemmRoutine XGEMM_MIN_INDIRECT_SIZE=64\n"
h = 1469598103934665603
for b in text.encode():
    h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
sys.stdout.write(text + "checksum %016x\n" % h)
EOF
}
cp "$f" "$t/tuned.txt"
write_tune "" > "$t/mine.txt" && cp "$t/mine.txt" "$f"
doctor "${GPU[@]}"
check "a hand-made file with every kernel set is applied" 'grep -qx "state           tuned, applied" "$t/doc.txt" &&
  grep -q "applied: Xgemm GEMMK=0 KREG=1 KWG=16 .*; XgemmDirect KWID=8 .*WGD=64; GemmRoutine XGEMM_MIN_INDIRECT_SIZE=64;" "$t/doc.txt"' ||
  cat "$t/doc.err"
check "doctor: the file's figures" 'grep -q "^measured        SGEMM 1.0 GFLOP/s with CLBlast.s defaults, 2.0 tuned" "$t/doc.txt"'

# --- the same numbers with and without the parameters: the emotion net's predictions, and test_ops' conv/linear rows
EMO="$t/emotion.safetensors"
bash "$GF_SRC/models/emotion/fetch.sh" "$EMO" > /dev/null 2> "$t/fetch.err" || cat "$t/fetch.err"
$PY -c "
import numpy as np; from PIL import Image
r = np.random.default_rng(7)
for i in range(3): Image.fromarray((r.random((64, 64, 3)) * 255).astype(np.uint8)).save('$t/img%d.png' % i)"
predict() { "$@" "$G" predict "$EMO" "$t"/img0.png "$t"/img1.png "$t"/img2.png --top-k 7 --json; }
predict "${GPU[@]}" GRADFEAT_TUNING=0 > "$t/p_untuned.json" 2> "$t/p_untuned.err"; rc1=$?
predict "${GPU[@]}" > "$t/p_tuned.json" 2> "$t/p_tuned.err"; rc2=$?
predict env > "$t/p_host.json" 2> "$t/p_host.err"; rc3=$?
close() {  # close A.json B.json TOL: every probability of every image within TOL
  $PY - "$1" "$2" "$3" <<'EOF'
import json, sys
a, b, tol = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), float(sys.argv[3])
def probs(d):
    return [{p["index"]: p["probability"] for p in r["top"]} for r in d]
pa, pb = probs(a), probs(b)
assert len(pa) == len(pb) == 3, (len(pa), len(pb))
worst = max(abs(x[k] - y[k]) for x, y in zip(pa, pb) for k in x)
assert all(set(x) == set(y) for x, y in zip(pa, pb)), "different classes"
print("max |d prob| %.2e (tolerance %g)" % (worst, tol))
assert worst <= tol
EOF
}
check "predict with the CLBlast path: tuned and untuned runs exit 0 (rc $rc1 $rc2 $rc3)" '[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && [ $rc3 -eq 0 ]' ||
  cat "$t/p_untuned.err" "$t/p_tuned.err" "$t/p_host.err"
check "the tuned run used the parameters (no warning)" '! grep -qi "tuning" "$t/p_tuned.err"' || cat "$t/p_tuned.err"
check "tuned = untuned predictions to fp32 rounding" 'close "$t/p_untuned.json" "$t/p_tuned.json" 2e-6'
check "tuned CLBlast = host BLAS predictions to fp32 rounding" 'close "$t/p_host.json" "$t/p_tuned.json" 2e-6'
"${GPU[@]}" "$GF_BUILD/tests/test_ops" --filter conv,linear > "$t/affine.txt" 2>&1; rc=$?
check "test_ops --filter conv,linear passes on the CLBlast path with the parameters (rc $rc)" '[ $rc -eq 0 ]' || grep -E "FAIL" "$t/affine.txt" | head

# --- bad files are ignored with a warning naming the file; the run goes on with CLBlast's defaults
bad_file() {  # bad_file LABEL WANT: the run warns with WANT, exits 0, predicts as untuned; doctor says IGNORED
  want=$2
  predict "${GPU[@]}" > "$t/p_bad.json" 2> "$t/p_bad.err"; local rc=$?
  check "$1: predict exits 0 (rc $rc)" '[ $rc -eq 0 ]' || cat "$t/p_bad.err"
  check "$1: a warning naming the file and why" 'grep -q "^gradfeat: ignoring the CLBlast tuning file $f: .*$want" "$t/p_bad.err"' ||
    cat "$t/p_bad.err"
  check "$1: the untuned numbers" 'close "$t/p_untuned.json" "$t/p_bad.json" 2e-6'
  doctor "${GPU[@]}"
  check "$1: doctor says ignored" 'grep -qx "state           tuning file IGNORED" "$t/doc.txt" && grep -q "^note .*$want" "$t/doc.txt"'
}
sed 's/KWG=16 KWI=2/KWG=32 KWI=2/' "$t/mine.txt" > "$f"
bad_file "one edited value" "checksum does not match"
head -c 200 "$t/mine.txt" > "$f"
bad_file "truncated" "no checksum line"
write_tune "Radeon RX 7600" > "$f"
bad_file "another device" "made for device 'Radeon RX 7600'"
sed 's/^driver .*/driver 0.0-other/' "$t/mine.txt" | $PY -c "
import sys
t = sys.stdin.read(); body = t[:t.rindex('checksum ')]
h = 1469598103934665603
for b in body.encode(): h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
sys.stdout.write(body + 'checksum %016x\n' % h)" > "$f"
bad_file "another driver" "made for driver '0.0-other'"
sed 's/MWG=32/MWG=40/' "$t/mine.txt" | $PY -c "
import sys
t = sys.stdin.read(); body = t[:t.rindex('checksum ')]
h = 1469598103934665603
for b in body.encode(): h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
sys.stdout.write(body + 'checksum %016x\n' % h)" > "$f"
bad_file "parameters CLBlast's constraints forbid" "invalid parameters"
head -c 3000 /dev/urandom > "$f"
bad_file "binary garbage" "not text\|no checksum"
rm -f "$f"; mkdir "$f"
bad_file "a directory in its place" "not a regular file"
rmdir "$f"

# --- tune's own errors
: > "$t/file"
GRADFEAT_CACHE_DIR="$t/file/kc" "${GPU[@]}" "$G" tune --budget 1 > /dev/null 2> "$t/nodir.err"; rc=$?
check "tune into an unusable cache folder: exit 9 naming it, before any search (rc $rc)" '[ $rc -eq 9 ] &&
  grep -q "cannot create the cache folder $t/file/kc" "$t/nodir.err" && grep -q "GRADFEAT_CACHE_DIR" "$t/nodir.err" &&
  ! grep -q "timing" "$t/nodir.err"' || cat "$t/nodir.err"
"$G" tune --budget 0 > /dev/null 2> "$t/b0.err"; rc=$?
check "tune --budget 0 is a usage error (rc $rc)" '[ $rc -eq 2 ]' || cat "$t/b0.err"
"$G" tune extra > /dev/null 2>&1; rc=$?
check "tune with an argument is a usage error (rc $rc)" '[ $rc -eq 2 ]'
finish
