#!/usr/bin/env bash
# gradfeat train end to end on real parts: the emotion net (fetched, sha256-
# pinned) adapted to Fashion-MNIST (Debian dataset-fashion-mnist), all four
# methods on small subsets. Checks the table, the run directory, that a second
# run reuses the activation cache and reproduces the numbers exactly, and the
# exit codes of bad invocations.
. "$(dirname "$0")/testlib.sh"
EMO="$t/emotion.safetensors"
bash "$GF_SRC/models/emotion/fetch.sh" "$EMO" > /dev/null 2> "$t/fetch.err" || { cat "$t/fetch.err"; echo "0 passed, 1 failed"; exit 1; }

args=(--model "$EMO" --data "$FM" --split train --limit 192 --val "$FM" --val-split test --val-limit 128
      --epochs 2 --probe-epochs 2 --batch 32 --lr 0.005 --cache-dir "$t/cache")
"$G" train "${args[@]}" --run-dir "$t/run1" > "$t/out1.txt" 2> "$t/err1.txt"; rc=$?
cat "$t/out1.txt"
check "train exits 0 (rc $rc)" '[ $rc -eq 0 ]' || cat "$t/err1.txt"
for m in linear gradient full finetune; do
  check "table row $m" 'grep -qE "^$m +([0-9.]+|-) +([0-9.]+%|-) +[0-9.]+ +[0-9.]+%" "$t/out1.txt"'   # "-": kept epoch 0, no training figures
done
check "progress on stderr, not stdout" 'grep -q "\] epoch" "$t/err1.txt" && ! grep -q "\] epoch" "$t/out1.txt"'
check "trunk progress with ETA" 'grep -q "ETA" "$t/err1.txt"'
check "classes.txt has the 10 classes" '[ $(wc -l < "$t/run1/classes.txt") -eq 10 ] && grep -qP "^9\t" "$t/run1/classes.txt"'
check "metrics.jsonl: the probe (one L-BFGS solve) + 3 methods x 2 epochs" '[ $(wc -l < "$t/run1/metrics.jsonl") -eq 7 ]'
check "results.json parses with 4 methods" '/usr/bin/python3 -c "
import json,sys; r=json.load(open(sys.argv[1])); m=r[\"methods\"]
assert set(m)=={\"linear\",\"gradient\",\"full\",\"finetune\"}, m
assert all(0<=v[\"val_metric\"]<=1 for v in m.values())
assert r[\"n_train\"]+r[\"n_holdout\"]==192 and r[\"n_holdout\"]>=10 and r[\"n_val\"]==128
assert r[\"select\"]==\"last\" and all(v[\"best_epoch\"]==2 for k,v in m.items() if k!=\"linear\"), r[\"select\"]  # the default keeps the last epoch" "$t/run1/results.json"'
# learning rates per method: finetune trains at its own default (1e-4) whatever --lr, at --lr / 10 with
# --finetune-lr 0; --lr-auto picks each method's from {its rate, x10, /10}
check "finetune trained at 1e-4 beside --lr 5e-3" '/usr/bin/python3 -c "
import json,sys; m=json.load(open(sys.argv[1]))[\"methods\"]
assert abs(m[\"finetune\"][\"lr\"]-1e-4)<1e-9 and abs(m[\"full\"][\"lr\"]-5e-3)<1e-9, m" "$t/run1/results.json"'
# --finetune-lr 0: finetune at --lr / 10 (the previous default)
"$G" train "${args[@]}" --method finetune --epochs 1 --finetune-lr 0 --run-dir "$t/ft0" > "$t/ft0.txt" 2>&1; rc=$?
check "--finetune-lr 0: finetune at --lr / 10 (rc $rc)" '[ $rc -eq 0 ] && /usr/bin/python3 -c "
import json,sys; m=json.load(open(sys.argv[1]))[\"methods\"]
assert abs(m[\"finetune\"][\"lr\"]-5e-4)<1e-9, m" "$t/ft0/results.json"' || cat "$t/ft0.txt"
"$G" train "${args[@]}" --method full,finetune --epochs 1 --finetune-lr 0.002 --lr-auto --run-dir "$t/lra" > "$t/lra.txt" 2>&1; rc=$?
check "--lr-auto with --finetune-lr: each method's rate from its own grid (rc $rc)" '[ $rc -eq 0 ] && grep -q "^finetune: learning rate .* (chosen on the holdout)" "$t/lra.txt" && /usr/bin/python3 -c "
import json,sys; m=json.load(open(sys.argv[1]))[\"methods\"]
near=lambda x,g: any(abs(x-v)<1e-9 for v in g)
assert near(m[\"finetune\"][\"lr\"],[2e-3,2e-2,2e-4]) and near(m[\"full\"][\"lr\"],[5e-3,5e-2,5e-4]), m" "$t/lra/results.json"' || cat "$t/lra.txt"
# the trials leave no trace: full at the chosen rate, trained alone, gives the same model and figures
lr_full=$(/usr/bin/python3 -c "import json,sys; print(repr(json.load(open(sys.argv[1]))['methods']['full']['lr']))" "$t/lra/results.json")
"$G" train "${args[@]}" --method full --epochs 1 --lr "$lr_full" --run-dir "$t/lrf" > "$t/lrf.txt" 2>&1; rc=$?
check "--lr-auto: full at its chosen rate ($lr_full) = full trained at that --lr (rc $rc)" '[ $rc -eq 0 ] && /usr/bin/python3 -c "
import json,struct,sys
def tensors(p):   # the adapted model without its metadata (which records the options)
    b=open(p,\"rb\").read(); n=struct.unpack(\"<Q\",b[:8])[0]; h=json.loads(b[8:8+n]); h.pop(\"__metadata__\",None); return h,b[8+n:]
assert tensors(sys.argv[1]+\"/full.safetensors\")==tensors(sys.argv[2]+\"/full.safetensors\")
a=json.load(open(sys.argv[1]+\"/results.json\"))[\"methods\"][\"full\"]; b=json.load(open(sys.argv[2]+\"/results.json\"))[\"methods\"][\"full\"]
assert a[\"val_metric\"]==b[\"val_metric\"] and a[\"holdout_loss\"]==b[\"holdout_loss\"], (a,b)" "$t/lra" "$t/lrf"'
# the final evaluation's confusion matrices: sum = evaluation samples, diagonal share = the reported accuracy
check "confusion matrices agree with results.json" '/usr/bin/python3 -c "
import json,sys; d=sys.argv[1]; r=json.load(open(d+\"/results.json\"))
for m,v in r[\"methods\"].items():
    c=json.load(open(d+\"/confusion_\"+m+\".json\"))[\"counts\"]
    n=sum(map(sum,c)); tr=sum(c[i][i] for i in range(len(c)))
    assert len(c)==10 and n==128, (m,n)
    assert abs(tr/n-v[\"val_metric\"])<1e-9, (m,tr/n,v[\"val_metric\"])" "$t/run1"'
# the probe learned something on 10 classes (chance is 10 %)
check "probe beats chance" '/usr/bin/python3 -c "
import json,sys; r=json.load(open(sys.argv[1])); assert r[\"methods\"][\"linear\"][\"val_metric\"]>0.2" "$t/run1/results.json"'

"$G" train "${args[@]}" --run-dir "$t/run2" > "$t/out2.txt" 2> "$t/err2.txt"; rc=$?
check "second run exits 0" '[ $rc -eq 0 ]'
check "second run reuses the activation cache" 'grep -q "reused from the activation cache" "$t/err2.txt"'
check "same seed, same device: identical table" 'diff <(awk "{NF--; print}" "$t/out1.txt") <(awk "{NF--; print}" "$t/out2.txt")'

"$G" train --model "$t/nope.safetensors" --data "$FM" > /dev/null 2> "$t/e.txt"; rc=$?
check "missing model -> exit 5 (rc $rc)" '[ $rc -eq 5 ] && grep -q "nope.safetensors" "$t/e.txt"'
"$G" train --model "$EMO" --data "$t/no-such-data" > /dev/null 2> "$t/e.txt"; rc=$?
check "missing data -> exit 5 (rc $rc)" '[ $rc -eq 5 ] && grep -q "no-such-data" "$t/e.txt"'
"$G" train --model "$EMO" --data "$FM" --method bogus > /dev/null 2>&1; rc=$?
check "bad --method -> exit 2" '[ $rc -eq 2 ]'
"$G" train --model "$EMO" --data "$FM" --top nosuch --limit 10 > /dev/null 2> "$t/e.txt"; rc=$?
check "bad --top -> exit 2 naming the blocks" '[ $rc -eq 2 ] && grep -q "add_2" "$t/e.txt"'
"$G" train --data "$FM" > /dev/null 2>&1; rc=$?
check "missing --model -> exit 2" '[ $rc -eq 2 ]'
GRADFEAT_EPOCHS=x "$G" train --model "$EMO" --data "$FM" > /dev/null 2> "$t/e.txt"; rc=$?
check "env twin is parsed (bad GRADFEAT_EPOCHS -> exit 2)" '[ $rc -eq 2 ] && grep -q epochs "$t/e.txt"'
"$G" train --help | grep -q -- "--max-device-mem"; check "help lists options" '[ $? -eq 0 ]'

# NTK + evaluation every 2 epochs: runs, val measured only at epochs 2 and 3, saved model records ntk
"$G" train --model "$EMO" --data "$FM" --split train --limit 64 --val "$FM" --val-split test --val-limit 64 \
  --method full --epochs 3 --probe-epochs 1 --eval-every 2 --ntk --batch 32 --cache-dir "$t/cache" --run-dir "$t/run3" \
  > "$t/out3.txt" 2> "$t/err3.txt"; rc=$?
check "--ntk --eval-every run exits 0 (rc $rc)" '[ $rc -eq 0 ]'
check "eval only at epochs 2 and 3" '[ "$(grep "\"full\"" "$t/run3/metrics.jsonl" | grep -c "\"val_metric\":-1")" -eq 1 ]'
check "saved full model records ntk" '/usr/bin/python3 -c "
import json,struct,sys; f=open(sys.argv[1],\"rb\"); n=struct.unpack(\"<Q\",f.read(8))[0]
m=json.loads(json.loads(f.read(n))[\"__metadata__\"][\"gradfeat.adapted\"]); assert m[\"ntk\"] is True" "$t/run3/full.safetensors"'

# progress: plain lines every --log-every steps off a terminal, --log-json objects per report and epoch,
# and one updating line (carriage returns) on a terminal (script(1) gives the run a pty)
"$G" train --model "$EMO" --data "$FM" --split train --limit 128 --method linear --epochs 1 --probe sgd --probe-epochs 1 \
  --holdout 0 --batch 16 --log-every 2 --log-json "$t/log.json" --cache-dir "$t/cache" > /dev/null 2> "$t/prog.txt"; rc=$?
check "progress run exits 0" '[ $rc -eq 0 ]'
check "a progress line every 2 steps (8 steps)" '[ $(grep -c "step [0-9]*/8 loss" "$t/prog.txt") -eq 4 ] && grep -q "img/s.*ETA" "$t/prog.txt"'
check "--log-json: step and epoch objects" '/usr/bin/python3 -c "
import json,sys; L=[json.loads(l) for l in open(sys.argv[1])]
assert [x[\"type\"] for x in L].count(\"step\")==4 and L[-1][\"type\"]==\"epoch\", L
assert all(x[\"loss\"]>0 for x in L if x[\"type\"]==\"step\")" "$t/log.json"'
if command -v script > /dev/null; then
  script -qec "\"$G\" train --model \"$EMO\" --data $FM --split train --limit 128 --method linear --epochs 1 --probe sgd --probe-epochs 1 --batch 16 --cache-dir \"$t/cache\"" /dev/null > "$t/tty.txt" 2>&1
  check "terminal: the progress line updates in place" 'grep -q $(printf "\r")  "$t/tty.txt" && grep -q "\[linear  \] epoch 1/1 \[" "$t/tty.txt"'
fi

# train and evaluation folders with different class names are refused (exit 5), not silently mismatched
for split in train test; do
  for c in a b $([ $split = train ] && echo c || echo d); do
    mkdir -p "$t/cls/$split/$c"
    for i in 1 2; do { printf 'P5\n8 8\n255\n'; head -c 64 /dev/urandom; } > "$t/cls/$split/$c/$i.pgm"; done
  done
done
"$G" train --model "$EMO" --data "$t/cls" --split train --val "$t/cls" --val-split test --epochs 1 --no-cache \
  > /dev/null 2> "$t/e.txt"; rc=$?
check "class names differ between splits -> exit 5 (rc $rc)" '[ $rc -eq 5 ] && grep -q "same classes" "$t/e.txt"'

finish
