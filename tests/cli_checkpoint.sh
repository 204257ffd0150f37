#!/usr/bin/env bash
# Durable training runs on real parts (emotion net + Fashion-MNIST subsets):
# - a run stopped by SIGINT (exit 130) during the probe and by SIGTERM (exit
#   143) during `full`, resumed each time (once with the options repeated, once
#   with `--resume RUN_DIR` alone), ends with the SAME BYTES as an
#   uninterrupted run: saved models (head, ω̄, w2 per node), results.json
#   numbers and metrics.jsonl (seconds aside);
# - after SIGKILL the last periodic checkpoint resumes just as exactly, and so
#   does the same checkpoint rewritten as a version-01 (FNV-1a) file;
# - a corrupt or truncated checkpoint is rejected with exit 5 naming the file;
#   resuming with other options is a usage error; a finished run has nothing
#   to resume;
# - `gradfeat eval` on the saved models reproduces train's val loss/accuracy;
# - `gradfeat predict` on the saved full model agrees with eval image by image
#   (images filed under predict's top-1 class evaluate to 100 %).
. "$(dirname "$0")/testlib.sh"
EMO="$t/emotion.safetensors"
bash "$GF_SRC/models/emotion/fetch.sh" "$EMO" > /dev/null 2> "$t/fetch.err" || { cat "$t/fetch.err"; echo "0 passed, 1 failed"; exit 1; }

args=(--model "$EMO" --data "$FM" --split train --limit 64 --val "$FM" --val-split test --val-limit 32
      --method linear,full --epochs 3 --probe sgd --probe-epochs 80 --batch 16 --lr 0.005 --checkpoint-every 3
      --cache-dir "$t/cache")

# start a run in the background, wait for a progress line, send a signal
interrupt() {   # $1 signal, $2 regex on stderr, $3 stderr file, rest: gradfeat args
    local sig=$1 re=$2 err=$3; shift 3
    "$G" "$@" > /dev/null 2> "$err" & local pid=$!
    for _ in $(seq 1 600); do grep -qsE "$re" "$err" && break; kill -0 $pid 2> /dev/null || break; sleep 0.05; done
    kill -"$sig" $pid 2> /dev/null
    { wait $pid; } 2> /dev/null
}

# A: uninterrupted
"$G" train "${args[@]}" --run-dir "$t/A" > "$t/A.out" 2> "$t/A.err"; rc=$?
check "uninterrupted run exits 0 (rc $rc)" '[ $rc -eq 0 ]' || cat "$t/A.err"
check "saved models written" '[ -s "$t/A/linear.safetensors" ] && [ -s "$t/A/full.safetensors" ]'
check "finished run leaves no checkpoint" '[ ! -e "$t/A/checkpoint.gfckpt" ]'

# B: SIGINT during the probe, resume, SIGTERM during full, resume
interrupt INT '\[linear  \] epoch +2/' "$t/B1.err" train "${args[@]}" --run-dir "$t/B"; rc=$?
check "SIGINT -> exit 130 (rc $rc)" '[ $rc -eq 130 ]' || cat "$t/B1.err"
check "SIGINT message names the checkpoint" 'grep -q "interrupted (SIGINT): checkpoint written to $t/B/checkpoint.gfckpt" "$t/B1.err"'
cp -r "$t/B" "$t/C"      # for the corruption checks
interrupt TERM '\[full    \] epoch +1/' "$t/B2.err" train "${args[@]}" --resume "$t/B"; rc=$?
check "resumed run, then SIGTERM -> exit 143 (rc $rc)" '[ $rc -eq 143 ]' || cat "$t/B2.err"
check "first resume started inside the probe" 'grep -q "resuming from .*: linear, epoch" "$t/B2.err"'
# the options may be left out: the checkpoint holds the job's configuration
"$G" train --resume "$t/B" --cache-dir "$t/cache" > "$t/B3.out" 2> "$t/B3.err"; rc=$?
check "second resume (--resume RUN_DIR alone) exits 0 (rc $rc)" '[ $rc -eq 0 ]' || cat "$t/B3.err"
check "second resume started inside full" 'grep -q "resuming from .*: full, epoch" "$t/B3.err"'
for m in linear full; do
  check "$m.safetensors bit-identical to the uninterrupted run" 'cmp "$t/A/$m.safetensors" "$t/B/$m.safetensors"'
done
check "same table (seconds aside)" 'diff <(awk "{NF--; print}" "$t/A.out") <(awk "{NF--; print}" "$t/B3.out")'
check "metrics.jsonl: same lines, none repeated (seconds aside)" \
  'diff <(sed "s/,\"seconds\":[^}]*//" "$t/A/metrics.jsonl") <(sed "s/,\"seconds\":[^}]*//" "$t/B/metrics.jsonl")'
check "results.json: same numbers" '$PY -c "
import json,sys
a,b=(json.load(open(p))[\"methods\"] for p in sys.argv[1:])
for r in (a,b):
  for v in r.values(): v.pop(\"seconds\")
assert a==b,(a,b)" "$t/A/results.json" "$t/B/results.json"'

# D: SIGKILL (no handler runs) during full: the last periodic checkpoint
# (--checkpoint-every 3) is intact and resumes exactly; metrics.jsonl is cut
# back to what that checkpoint had seen, so no epoch is logged twice
interrupt KILL '\[full    \] epoch +2/' "$t/D1.err" train "${args[@]}" --run-dir "$t/D"; rc=$?
check "SIGKILL -> 137 (rc $rc)" '[ $rc -eq 137 ]'
check "a periodic checkpoint survived" '[ -s "$t/D/checkpoint.gfckpt" ]'
# L: the same checkpoint as a gradfeat before XXH3 wrote it (frame "GFCKPT01" with FNV-1a 64, the run's files
# listed under "files" with their FNV-1a): it still resumes, to the same bytes
cp -r "$t/D" "$t/L"
$PY - "$t/L" <<'PYEOF' || { echo "FAIL: making the legacy checkpoint"; fails=$((fails+1)); }
import json, os, struct, sys
d = sys.argv[1]; p = os.path.join(d, "checkpoint.gfckpt")
def fnv(b):
    x = 1469598103934665603
    for c in b: x = ((x ^ c) * 1099511628211) & (2**64 - 1)
    return x
b = open(p, "rb").read()
assert b[:8] == b"GFCKPT02", b[:8]
jl, dl = struct.unpack("<QQ", b[8:24])
j = json.loads(b[32:32 + jl]); data = b[32 + jl:]
meta = json.loads(j["meta"]); files = meta.pop("files_xxh3")
assert "linear.safetensors" in files, files
meta["files"] = {k: "%016x" % fnv(open(os.path.join(d, k), "rb").read()) for k in files}
j["meta"] = json.dumps(meta, separators=(",", ":"))
jb = json.dumps(j, separators=(",", ":")).encode()
open(p, "wb").write(b"GFCKPT01" + struct.pack("<QQQ", len(jb), len(data), fnv(jb + data)) + jb + data)
PYEOF
"$G" train --resume "$t/L" --cache-dir "$t/cache" > /dev/null 2> "$t/L.err"; rc=$?
check "a version-01 checkpoint (FNV-1a) resumes: exit 0 inside full (rc $rc)" \
  '[ $rc -eq 0 ] && grep -q "resuming from .*: full, epoch" "$t/L.err"' || cat "$t/L.err"
check "resume from the version-01 checkpoint: full.safetensors bit-identical" 'cmp "$t/A/full.safetensors" "$t/L/full.safetensors"'
# --resume alone keeps --checkpoint-every 3 (not the default 500): killed right after
# its first checkpoint, the resumed run has saved a point inside full, not its end
GRADFEAT_TEST_KILL_AT=checkpoint:1 "$G" train --resume "$t/D" --cache-dir "$t/cache" > /dev/null 2> "$t/D1b.err"; rc=$?
check "resume alone, killed after its first checkpoint -> 137 (rc $rc)" '[ $rc -eq 137 ]' || cat "$t/D1b.err"
"$G" train --resume "$t/D" --cache-dir "$t/cache" > "$t/D2.out" 2> "$t/D2.err"; rc=$?
check "that checkpoint came from --checkpoint-every 3 (mid-full)" 'grep -q "resuming from .*: full, epoch" "$t/D2.err"' \
  || { cat "$t/D1b.err"; head -3 "$t/D2.err"; }
check "resume after SIGKILL exits 0 (rc $rc)" '[ $rc -eq 0 ]' || cat "$t/D2.err"
check "resume after SIGKILL: full.safetensors bit-identical" 'cmp "$t/A/full.safetensors" "$t/D/full.safetensors"'
check "resume after SIGKILL: metrics.jsonl without repeats" \
  'diff <(sed "s/,\"seconds\":[^}]*//" "$t/A/metrics.jsonl") <(sed "s/,\"seconds\":[^}]*//" "$t/D/metrics.jsonl")'

# corrupt / truncated checkpoints, wrong options, nothing to resume
cp "$t/C/checkpoint.gfckpt" "$t/good.gfckpt"
$PY -c "
import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[len(b)//2]^=0x40; open(p,'wb').write(b)" "$t/C/checkpoint.gfckpt"
"$G" train "${args[@]}" --resume "$t/C" > /dev/null 2> "$t/e.txt"; rc=$?
check "corrupt checkpoint -> exit 5 naming the file (rc $rc)" '[ $rc -eq 5 ] && grep -q "$t/C/checkpoint.gfckpt.*checksum" "$t/e.txt"' || cat "$t/e.txt"
head -c 1000 "$t/good.gfckpt" > "$t/C/checkpoint.gfckpt"
"$G" train "${args[@]}" --resume "$t/C" > /dev/null 2> "$t/e.txt"; rc=$?
check "truncated checkpoint -> exit 5 naming the file (rc $rc)" '[ $rc -eq 5 ] && grep -q "$t/C/checkpoint.gfckpt" "$t/e.txt"'
cp "$t/good.gfckpt" "$t/C/checkpoint.gfckpt"
"$G" train "${args[@]}" --lr 0.01 --resume "$t/C" > /dev/null 2> "$t/e.txt"; rc=$?
check "resume with another --lr -> exit 2 naming lr (rc $rc)" '[ $rc -eq 2 ] && grep -q "lr = " "$t/e.txt"'
"$G" train "${args[@]}" --lr-schedule step --resume "$t/C" > /dev/null 2> "$t/e.txt"; rc=$?
check "resume with another --lr-schedule -> exit 2 naming lr_cosine (rc $rc)" '[ $rc -eq 2 ] && grep -q "lr_cosine" "$t/e.txt"' || cat "$t/e.txt"
"$G" train "${args[@]}" --resume "$t/A" > /dev/null 2> "$t/e.txt"; rc=$?
check "resume of a finished run -> exit 5 (rc $rc)" '[ $rc -eq 5 ] && grep -q "no checkpoint" "$t/e.txt"'

# eval reproduces train's val columns
for m in linear full; do
  "$G" eval "$t/A/$m.safetensors" --data "$FM" --split test --limit 32 --batch 16 --cache-dir "$t/cache" --json \
      > "$t/ev_$m.json" 2> "$t/ev_$m.err"; rc=$?
  check "eval $m exits 0 (rc $rc)" '[ $rc -eq 0 ]' || cat "$t/ev_$m.err"
  check "eval $m = train's val loss and accuracy" '$PY -c "
import json,sys
e=json.load(open(sys.argv[1])); r=json.load(open(sys.argv[2]))[\"methods\"][sys.argv[3]]
assert e[\"n\"]==32 and e[\"method\"]==sys.argv[3], e
assert abs(e[\"loss\"]-r[\"val_loss\"])<=1e-6 and abs(e[\"value\"]-r[\"val_metric\"])<=1e-6, (e, r)" "$t/ev_$m.json" "$t/A/results.json" $m'
done

# predict on the saved full model, image by image, against eval
$PY -c "
import gzip,sys,numpy as np
from PIL import Image
raw=gzip.open(sys.argv[1],'rb').read()[16:]
x=np.frombuffer(raw,np.uint8).reshape(-1,28,28)
for i in range(12): Image.fromarray(x[i]).save('%s/img%02d.png'%(sys.argv[2],i))" "$FM/t10k-images-idx3-ubyte.gz" "$t"
"$G" predict "$t/A/full.safetensors" "$t"/img*.png --top-k 1 --json > "$t/pred.json" 2> "$t/pred.err"; rc=$?
check "predict on an adapted model exits 0 (rc $rc)" '[ $rc -eq 0 ]' || cat "$t/pred.err"
# file each image under predict's top-1 class (all 10 class folders exist, empty ones included)
$PY -c "
import json,os,shutil,sys
p=json.load(open(sys.argv[1])); root=sys.argv[2]
assert len(p)==12 and all(len(r['top'])==1 for r in p), p
for k in range(10): os.makedirs('%s/%d'%(root,k))
for r in p: shutil.copy(r['image'], '%s/%s'%(root,r['top'][0]['class']))" "$t/pred.json" "$t/pred" \
  || { echo "FAIL: predict output"; fails=$((fails+1)); }
"$G" eval "$t/A/full.safetensors" --data "$t/pred" --no-cache --json > "$t/ev_pred.json" 2> "$t/ev_pred.err"; rc=$?
check "eval on images filed by predict's top-1: 100 % (rc $rc)" '[ $rc -eq 0 ] && $PY -c "
import json,sys; e=json.load(open(sys.argv[1])); assert e[\"n\"]==12 and e[\"value\"]==1.0, e" "$t/ev_pred.json"' \
  || cat "$t/ev_pred.err" "$t/ev_pred.json"
"$G" eval "$EMO" --data "$t/pred" > /dev/null 2> "$t/e.txt"; rc=$?
check "eval of a plain model -> exit 5 (rc $rc)" '[ $rc -eq 5 ] && grep -q "not an adapted" "$t/e.txt"'

finish
