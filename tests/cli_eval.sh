#!/usr/bin/env bash
# gradfeat eval / predict on the adapted models train writes (emotion net +
# Fashion-MNIST): for all four methods eval reproduces train's val loss and
# accuracy (to 1e-6) and predict agrees with eval image by image (images filed
# under predict's top-1 class evaluate to 100 %); the files are valid plain
# models too (gradfeat info); bad invocations give the documented exit codes.
set -u
fails=0; checks=0
check() { checks=$((checks+1)); if ! eval "$2"; then echo "FAIL: $1"; fails=$((fails+1)); return 1; fi; }
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
G="$GF_BIN"
PY=/usr/bin/python3
FM=/usr/share/datasets/fashion-mnist
EMO="$t/emotion.safetensors"
bash "$GF_SRC/models/emotion/fetch.sh" "$EMO" > /dev/null 2> "$t/fetch.err" || { cat "$t/fetch.err"; echo "0 passed, 1 failed"; exit 1; }

"$G" train --model "$EMO" --data "$FM" --split train --limit 48 --val "$FM" --val-split test --val-limit 40 \
    --method all --epochs 1 --probe-epochs 3 --batch 16 --lr 0.005 --cache-dir "$t/cache" --run-dir "$t/R" \
    > "$t/train.out" 2> "$t/train.err"; rc=$?
check "train exits 0 (rc $rc)" '[ $rc -eq 0 ]' || cat "$t/train.err"

$PY -c "
import gzip,sys,numpy as np
from PIL import Image
raw=gzip.open(sys.argv[1],'rb').read()[16:]
x=np.frombuffer(raw,np.uint8).reshape(-1,28,28)
for i in range(100,108): Image.fromarray(x[i]).save('%s/img%02d.png'%(sys.argv[2],i))" "$FM/t10k-images-idx3-ubyte.gz" "$t"

for m in linear gradient full finetune; do
  M="$t/R/$m.safetensors"
  "$G" eval "$M" --data "$FM" --split test --limit 40 --batch 16 --cache-dir "$t/cache" --json > "$t/ev.json" 2> "$t/ev.err"; rc=$?
  check "eval $m exits 0 (rc $rc)" '[ $rc -eq 0 ]' || cat "$t/ev.err"
  check "eval $m = train's val loss and accuracy" '$PY -c "
import json,sys
e=json.load(open(sys.argv[1])); r=json.load(open(sys.argv[2]))[\"methods\"][sys.argv[3]]
assert e[\"n\"]==40 and e[\"method\"]==sys.argv[3] and e[\"top\"]==\"add_2\", e
assert abs(e[\"loss\"]-r[\"val_loss\"])<=1e-6 and abs(e[\"value\"]-r[\"val_metric\"])<=1e-6, (e, r)" "$t/ev.json" "$t/R/results.json" $m'
  "$G" predict "$M" "$t"/img*.png --top-k 3 --json > "$t/pred.json" 2> "$t/pred.err"; rc=$?
  check "predict $m exits 0 (rc $rc)" '[ $rc -eq 0 ]' || cat "$t/pred.err"
  rm -rf "$t/P"
  $PY -c "
import json,os,shutil,sys
p=json.load(open(sys.argv[1])); root=sys.argv[2]
assert len(p)==8, p
for r in p:
  top=r['top']; assert len(top)==3 and top[0]['probability']>=top[1]['probability']>=top[2]['probability'], r
  assert all(t['class'] in [str(k) for k in range(10)] for t in top), r   # the adapted classes, not emotion's
for k in range(10): os.makedirs('%s/%d'%(root,k))
for r in p: shutil.copy(r['image'], '%s/%s'%(root,r['top'][0]['class']))" "$t/pred.json" "$t/P" \
    || { echo "FAIL: predict $m output"; fails=$((fails+1)); }
  "$G" eval "$M" --data "$t/P" --no-cache --json > "$t/evp.json" 2> "$t/evp.err"; rc=$?
  check "$m: images filed by predict's top-1 evaluate to 100 % (rc $rc)" '[ $rc -eq 0 ] && $PY -c "
import json,sys; e=json.load(open(sys.argv[1])); assert e[\"n\"]==8 and e[\"value\"]==1.0, e" "$t/evp.json"' \
    || cat "$t/evp.err"
done

"$G" info "$t/R/full.safetensors" > "$t/info.txt" 2>&1; rc=$?
check "an adapted model is a valid plain model file (info, rc $rc)" '[ $rc -eq 0 ] && grep -q add_2 "$t/info.txt"'
"$G" eval "$t/R/full.safetensors" > /dev/null 2>&1; rc=$?
check "eval without --data -> exit 2 (rc $rc)" '[ $rc -eq 2 ]'
"$G" eval "$t/nope.safetensors" --data "$FM" > /dev/null 2> "$t/e.txt"; rc=$?
check "eval of a missing file -> exit 5 naming it (rc $rc)" '[ $rc -eq 5 ] && grep -q nope.safetensors "$t/e.txt"'
mkdir -p "$t/three/a" "$t/three/b" "$t/three/c"; cp "$t/img100.png" "$t/three/a/"; cp "$t/img101.png" "$t/three/b/"; cp "$t/img102.png" "$t/three/c/"
"$G" eval "$t/R/full.safetensors" --data "$t/three" --no-cache > /dev/null 2> "$t/e.txt"; rc=$?
check "eval on data with other classes -> exit 5 (rc $rc)" '[ $rc -eq 5 ] && grep -q "3 classes" "$t/e.txt"'
head -c 5000 "$t/R/full.safetensors" > "$t/cut.safetensors"
"$G" predict "$t/cut.safetensors" "$t/img100.png" > /dev/null 2> "$t/e.txt"; rc=$?
check "predict on a truncated model -> exit 5 (rc $rc)" '[ $rc -eq 5 ]'
"$G" eval --help | grep -q -- "--limit"; check "eval --help" '[ $? -eq 0 ]'

echo "$((checks-fails)) passed, $fails failed"
[ $fails -eq 0 ] && [ $checks -gt 0 ]
