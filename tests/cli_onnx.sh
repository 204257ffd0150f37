#!/usr/bin/env bash
# Native ONNX loading (host/graph/onnx_import.c): `--model x.onnx` and `gradfeat convert` against
# tools/convert_onnx.py on the same ONNX files. Per model of tests/onnx_native.py (the ONNX cases of
# model_parity.py's zoo, exported here by torch.onnx, the GELU/LayerNorm/channels-last ops17 net included):
# the converted files are the same model (graph, preprocessing, bit-identical tensors), `info --json --nodes`
# and `predict --json` (all logits, 17 digits) agree byte for byte; one model trains to the same metrics
# and head. Bad files: exit 5 with a message naming the file, node or tensor; usage: exit 2; unwritable
# output: exit 9. Needs a build with protobuf-c
# (libprotobuf-c-dev, protobuf-c-compiler), python3-torch, python3-onnx and an OpenCL device: without them
# it fails, never skips.
. "$(dirname "$0")/testlib.sh"
NAT="$GF_SRC/tests/onnx_native.py"

z="$t/zoo"
"$PY" "$NAT" export "$z" > "$t/export.txt" 2>&1; rc=$?
check "onnx_native.py export (torch.onnx + tools/convert_onnx.py) exits 0 (rc $rc)" '[ $rc -eq 0 ]' || tail -20 "$t/export.txt"
n=0
for c in $(cat "$z/cases.txt" 2>/dev/null); do
  d="$z/$c"; n=$((n + 1))
  "$G" convert "$d/model.onnx" "$d/c.safetensors" > "$d/conv.txt" 2>&1; rc=$?
  check "$c: gradfeat convert exits 0 (rc $rc)" '[ $rc -eq 0 ]' || cat "$d/conv.txt"
  "$PY" "$NAT" compare "$d/py.safetensors" "$d/c.safetensors" > "$d/cmp.txt" 2>&1; rc=$?
  cat "$d/cmp.txt"
  check "$c: gradfeat convert == tools/convert_onnx.py (graph, preprocessing, bit-identical tensors)" '[ $rc -eq 0 ]'
  "$G" info --json --nodes "$d/model.onnx" 2>&1 | grep -v '"path":' > "$d/info_onnx.json"
  "$G" info --json --nodes "$d/py.safetensors" 2>&1 | grep -v '"path":' > "$d/info_py.json"
  check "$c: info --json --nodes of the .onnx == of the converted file" \
    'grep -q "\"nodes\"" "$d/info_onnx.json" && cmp -s "$d/info_onnx.json" "$d/info_py.json"' || diff "$d/info_onnx.json" "$d/info_py.json" | head -5
  "$G" predict --json --top-k 10 "$d/model.onnx" "$d/img0.png" "$d/img1.png" > "$d/pred_onnx.json" 2> "$d/pred_onnx.err"; rc=$?
  "$G" predict --json --top-k 10 "$d/py.safetensors" "$d/img0.png" "$d/img1.png" > "$d/pred_py.json" 2> /dev/null
  check "$c: predict --model x.onnx exits 0 (rc $rc)" '[ $rc -eq 0 ]' || cat "$d/pred_onnx.err"
  check "$c: predict through the .onnx == through the converted file (every logit, bit-identical)" \
    'grep -q "\"logit\"" "$d/pred_onnx.json" && cmp -s "$d/pred_onnx.json" "$d/pred_py.json"' || diff "$d/pred_onnx.json" "$d/pred_py.json" | head -5
done
check "the export gave at least 12 ONNX models (got $n)" '[ $n -ge 12 ]'

# the fuzz seeds (tests/fuzz/make_corpus.py): tiny nets with the rarer mappings (float16 initializers, Gemm
# alpha and transB, a zero Pad folded into a Conv, Clip attributes, ceil_mode, counted padding, SE gate, SiLU,
# softmax, a ShuffleNet unit with a symbolic batch)
for f in "$GF_SRC"/tests/fuzz/corpus/onnx/*.onnx; do
  s=$(basename "$f" .onnx)
  case "$s" in truncated|regress_*) continue ;; esac   # invalid on purpose (regress_*: inputs the fuzzer found)
  "$PY" "$GF_SRC/tools/convert_onnx.py" "$f" "$t/$s.py.safetensors" > /dev/null 2>&1
  "$G" convert "$f" "$t/$s.c.safetensors" > /dev/null 2>&1
  "$PY" "$NAT" compare "$t/$s.py.safetensors" "$t/$s.c.safetensors" > "$t/$s.cmp" 2>&1; rc=$?
  check "seed $s: gradfeat convert == tools/convert_onnx.py" '[ $rc -eq 0 ]' || cat "$t/$s.cmp"
done

# train: the same run from the .onnx and from the converted file (metrics but the timing, the head)
d="$z/onnx_mobilenet_v3_small"
targs=(--data "$FM" --split train --limit 64 --val "$FM" --val-split test --val-limit 32 --method linear,full
       --epochs 1 --probe-epochs 1 --batch 32 --cache-dir "$t/cache")
"$G" train --model "$d/model.onnx" "${targs[@]}" --run-dir "$t/run_onnx" > "$t/train_onnx.txt" 2>&1; rc=$?
check "train --model x.onnx exits 0 (rc $rc)" '[ $rc -eq 0 ]' || tail -5 "$t/train_onnx.txt"
"$G" train --model "$d/py.safetensors" "${targs[@]}" --run-dir "$t/run_py" > "$t/train_py.txt" 2>&1
strip() { sed 's/,"seconds":[0-9.e+-]*//' "$1"; }
check "train: the same metrics from the .onnx and the converted file" \
  '[ -s "$t/run_onnx/metrics.jsonl" ] && [ "$(strip "$t/run_onnx/metrics.jsonl")" = "$(strip "$t/run_py/metrics.jsonl")" ]' ||
  diff "$t/run_onnx/metrics.jsonl" "$t/run_py/metrics.jsonl"
"$PY" - "$t/run_onnx/full.safetensors" "$t/run_py/full.safetensors" > "$t/adapted.txt" 2>&1 <<'EOF'
import sys
sys.path.insert(0, __import__("os").environ["GF_SRC"] + "/tools")
import gfmodel
a, b = gfmodel.read(sys.argv[1])[3], gfmodel.read(sys.argv[2])[3]
assert sorted(a) == sorted(b) and any(k.startswith("gradfeat.head.") for k in a), "tensor names differ"
assert all(a[k].tobytes() == b[k].tobytes() for k in a), "a tensor differs"
EOF
rc=$?
check "train: the adapted model of the .onnx run holds the same tensors (network + head)" '[ $rc -eq 0 ]' || cat "$t/adapted.txt"
"$G" predict "$t/run_onnx/full.safetensors" "$d/img0.png" > "$t/pa.txt" 2>&1; rc=$?
check "predict with the adapted model of the .onnx run exits 0 (rc $rc)" '[ $rc -eq 0 ]' || cat "$t/pa.txt"

# bad files: exit 5 (as for a bad .safetensors), one line naming the file and what is wrong
b="$t/bad"
"$PY" "$NAT" bad "$b" > "$t/bad.txt" 2>&1; rc=$?
check "onnx_native.py bad exits 0 (rc $rc)" '[ $rc -eq 0 ]' || tail -5 "$t/bad.txt"
: > "$b/empty.onnx"; mkdir -p "$b/dir.onnx"
expect() {   # NAME CODE TEXT -- command...   ("+" instead of "--": more lines than the error may come)
  local name=$1 code=$2 text=$3 one=$4; shift 4
  "$@" > "$t/o.txt" 2> "$t/e.txt"; local rc=$?
  check "$name: exit $code (got $rc)" '[ $rc -eq $code ]' || cat "$t/e.txt"
  check "$name: message has '$text'" 'grep -qF -- "$text" "$t/e.txt"' || cat "$t/e.txt"
  [ "$one" = "+" ] || check "$name: one line on stderr" '[ $(wc -l < "$t/e.txt") -eq 1 ]' || cat "$t/e.txt"
}
"$G" info "$b/small.onnx" > "$t/small.txt" 2>&1; rc=$?
check "the base of the bad files loads (rc $rc)" '[ $rc -eq 0 ]' || cat "$t/small.txt"
expect missing 5 "nope.onnx: cannot open" -- "$G" info "$b/nope.onnx"
expect directory 5 "dir.onnx: not a regular file" -- "$G" info "$b/dir.onnx"
expect empty 5 "empty.onnx: empty file, not an ONNX model" -- "$G" info "$b/empty.onnx"
expect wrong-magic 5 "garbage.onnx: not an ONNX model (protobuf parse error" -- "$G" info "$b/garbage.onnx"
expect truncated 5 "truncated.onnx: not an ONNX model (protobuf parse error" -- "$G" info "$b/truncated.onnx"
expect deep-nesting 5 "deep.onnx: not an ONNX model (messages nested deeper than 64 levels)" -- "$G" info "$b/deep.onnx"
expect unsupported-op 5 "erf.onnx: unsupported ops (gradfeat has no equivalent): Erf (1 nodes, e.g. erfnode)" -- "$G" info "$b/erf.onnx"
expect unsupported-transpose 5 "node /tr/Transpose: Transpose [0, 1, 3, 2] not supported" -- "$G" info "$b/transpose.onnx"
expect absent-input 5 "node /2/Mul: Mul needs 2 inputs" -- "$G" info "$GF_SRC/tests/fuzz/corpus/onnx/regress_mul_absent_input.onnx"
expect external-data 5 "initializer w: stored as external data" -- "$G" info "$b/ext.onnx"
expect short-raw-data 5 "initializer w: holds 428 bytes for 108 elements" -- "$G" info "$b/shortraw.onnx"
expect predict-bad 5 "truncated.onnx: not an ONNX model" -- "$G" predict "$b/truncated.onnx" "$d/img0.png"
expect train-bad 5 "erf.onnx: unsupported ops" + "$G" train --model "$b/erf.onnx" "${targs[@]}" --run-dir "$t/run_bad"
expect convert-bad 5 "truncated.onnx: not an ONNX model" -- "$G" convert "$b/truncated.onnx" "$t/o.safetensors"
check "a failed convert leaves no output file" '[ ! -e "$t/o.safetensors" ]'
expect convert-usage 2 "expected MODEL.onnx and OUT.safetensors" + "$G" convert "$b/small.onnx"
expect convert-same 2 "would overwrite the input" + "$G" convert "$b/small.onnx" "$b/small.onnx"
expect convert-unwritable 9 "cannot create" -- "$G" convert "$b/small.onnx" "$t/no/such/dir/x.safetensors"
"$G" convert "$b/small.onnx" "$t/small.safetensors" > "$t/c.txt" 2>&1; rc=$?
check "convert of the small model exits 0 and says what it wrote (rc $rc)" '[ $rc -eq 0 ] && grep -q "^wrote .*small.safetensors: 5 nodes" "$t/c.txt"' || cat "$t/c.txt"
check "convert leaves no temporary file" '[ -z "$(ls "$t" | grep "\.tmp\.")" ]'
finish
