#!/usr/bin/env bash
# gradfeat info / predict: malformed model files give a clear error naming the
# problem and exit 5 (never a crash); a valid converted model is summarised; the
# layers of a block without a skip that one named module holds are one top block;
# the emotion net fetched by models/emotion/fetch.sh is summarised and predicts
# "happy" for skimage lfw_subset[1] (TF.js: 0.978).
set -u
BIN="${GF_BIN:?GF_BIN}"
SRC="${GF_SRC:?GF_SRC}"
PY=/usr/bin/python3
T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

# A tiny valid model (conv + bn + relu + gap + linear) written with tools/gfmodel.py, then broken copies.
"$PY" - "$T" "$SRC/tools" <<'PYEOF' || { echo "FATAL: could not write test models" >&2; exit 1; }
import json, struct, sys
import numpy as np
out, tools = sys.argv[1], sys.argv[2]
sys.path.insert(0, tools)
import gfmodel
r = np.random.default_rng(0)
def build():
    g = gfmodel.Graph("x", [3, 8, 8])
    g.tensor("conv.weight", r.standard_normal((4, 3, 3, 3)))
    for k, v in (("weight", 1.0), ("bias", 0.0), ("running_mean", 0.0), ("running_var", 1.0)):
        g.tensor("bn." + k, np.full(4, v))
    g.tensor("fc.weight", r.standard_normal((2, 4)))
    g.add("conv", "conv2d", ["x"], {"weight": "conv.weight"}, {"pad": [1, 1, 1, 1]})
    g.add("bn", "batchnorm", ["conv"], {"weight": "bn.weight", "bias": "bn.bias", "running_mean": "bn.running_mean",
                                        "running_var": "bn.running_var"})
    g.add("relu", "relu", ["bn"])
    g.add("gap", "global_avgpool", ["relu"])
    g.add("fc", "linear", ["gap"], {"weight": "fc.weight"})
    g.outputs = ["fc"]
    g.feature = "gap"
    return g
pre = {"input_size": [8, 8], "channels": 3, "color_order": "RGB", "resize": "stretch"}
gfmodel.write(out + "/ok.safetensors", build(), pre, ["cat", "dog"])
data = open(out + "/ok.safetensors", "rb").read()
n = struct.unpack("<Q", data[:8])[0]
hdr = json.loads(data[8:8 + n])
def dump(name, h, body=None):
    hb = json.dumps(h).encode()
    open(out + "/" + name, "wb").write(struct.pack("<Q", len(hb)) + hb + (data[8 + n:] if body is None else body))
def graph_edit(name, fn):
    h = json.loads(json.dumps(hdr)); gg = json.loads(h["__metadata__"]["gradfeat.graph"]); fn(gg)
    h["__metadata__"]["gradfeat.graph"] = json.dumps(gg); dump(name, h)
open(out + "/truncated.safetensors", "wb").write(data[:-40])
open(out + "/hugeheader.safetensors", "wb").write(struct.pack("<Q", 1 << 62) + data[8:])
h = json.loads(json.dumps(hdr)); h["conv.weight"]["data_offsets"][1] += 10**9; dump("offsets.safetensors", h)
h = json.loads(json.dumps(hdr)); h["bn.bias"]["dtype"] = "I32"; dump("dtype.safetensors", h)
h = json.loads(json.dumps(hdr)); h["fc.weight"]["shape"] = [4, 2]; dump("shape.safetensors", h)
h = json.loads(json.dumps(hdr)); h["bn.running_variance"] = h.pop("bn.running_var"); dump("missing.safetensors", h)   # data still covered once
graph_edit("unknownop.safetensors", lambda gg: gg["nodes"][2].update(op="swish"))
graph_edit("cycle.safetensors", lambda gg: gg["nodes"][0].update(inputs=["relu"]))
open(out + "/garbage.safetensors", "wb").write(b"hello")
# top blocks of layers without skips (issue 17 item 3): a chain of 1x1/3x3 convs, named as Keras and torch name them
g = gfmodel.Graph("x", [3, 8, 8])
prev, c = "x", 3
for nm, k, groups in (("Conv1", 3, 1), ("conv2d_1", 1, 1), ("conv2d_2", 1, 1), ("features.0", 1, 1), ("features.3", 1, 1),
                      ("features.17.conv.0.0", 1, 1), ("features.17.conv.1.0", 3, 4), ("features.17.conv.2", 1, 1),
                      ("block_16_expand", 1, 1), ("block_16_depthwise", 3, 4), ("block_16_project", 1, 1), ("Conv_1", 1, 1)):
    g.tensor(nm + ".weight", r.standard_normal((4, c // groups, k, k)) * 0.3)
    g.add(nm, "conv2d", [prev], {"weight": nm + ".weight"}, {"pad": [k // 2] * 4, "groups": groups})
    prev = g.add(nm + "_relu", "relu", [nm])
    c = 4
g.add("gap", "global_avgpool", [prev])
g.tensor("fc.weight", r.standard_normal((2, 4)))
g.add("fc", "linear", ["gap"], {"weight": "fc.weight"})
g.outputs, g.feature = ["fc"], "gap"
gfmodel.write(out + "/chain.safetensors", g, pre, [])
# a VGG stage (torch Sequential layers up to a max pool), a fire module (squeeze, two expands, concat) and
# two container layers without a pool after them
g = gfmodel.Graph("x", [3, 16, 16])
prev, c = "x", 3
def conv(nm, src, cin, cout, k):
    g.tensor(nm + ".weight", r.standard_normal((cout, cin, k, k)) * 0.3)
    g.add(nm, "conv2d", [src], {"weight": nm + ".weight"}, {"pad": [k // 2] * 4})
    return g.add(nm + "_relu", "relu", [nm])
prev = conv("features.0", prev, 3, 4, 3)
prev = g.add("features.2", "maxpool", [prev], attrs={"kernel": [2, 2], "stride": [2, 2]})
prev = conv("features.3", prev, 4, 4, 3)
prev = conv("features.5", prev, 4, 4, 3)
prev = g.add("features.7", "maxpool", [prev], attrs={"kernel": [2, 2], "stride": [2, 2]})
sq = conv("fire.squeeze", prev, 4, 2, 1)
prev = g.add("fire.cat", "concat", [conv("fire.expand1x1", sq, 2, 2, 1), conv("fire.expand3x3", sq, 2, 2, 3)])
# two DenseNet-style blocks of one module: each a piece of several layers, so each its own block
for blk, cin in (("dense.block1", 4), ("dense.block2", 8)):
    c1 = conv(blk + ".conv1", prev, cin, 2, 1)
    c2 = conv(blk + ".conv2", g.add(blk + ".cat1", "concat", [prev, c1]), cin + 2, 2, 1)
    prev = g.add(blk + ".cat", "concat", [prev, c1, c2])
prev = conv("classifier.0", prev, 12, 4, 1)
prev = conv("classifier.1", prev, 4, 4, 1)
g.add("gap", "global_avgpool", [prev])
g.tensor("fc.weight", r.standard_normal((2, 4)))
g.add("fc", "linear", ["gap"], {"weight": "fc.weight"})
g.outputs, g.feature = ["fc"], "gap"
gfmodel.write(out + "/stages.safetensors", g, dict(pre, input_size=[16, 16]), [])
PYEOF

check_bad() {  # file, expected text in the message
  local f="$T/$1" want="$2" rc
  "$BIN" info "$f" >"$T/out" 2>"$T/err"; rc=$?
  if [ "$rc" -ne 5 ]; then fail "$1: exit $rc, want 5 ($(cat "$T/err"))"; return; fi
  grep -qF -- "$want" "$T/err" || fail "$1: message lacks '$want': $(cat "$T/err")"
  echo "ok  $1: $(cat "$T/err")"
}
check_bad truncated.safetensors "outside the data area"
check_bad hugeheader.safetensors "header length"
check_bad offsets.safetensors "tensor 'conv.weight': data_offsets"
check_bad dtype.safetensors "tensor 'bn.bias': dtype I32 not supported"
check_bad shape.safetensors "tensor 'fc.weight' (weight) has shape [4, 2], the graph needs [*, 4]"
check_bad missing.safetensors "bn.running_var"
check_bad unknownop.safetensors "node 'relu': unsupported op 'swish'"
check_bad cycle.safetensors "graph has a cycle"
check_bad garbage.safetensors "too short"
check_bad does-not-exist.safetensors "cannot open"
# predict must refuse a bad model the same way
"$BIN" predict "$T/cycle.safetensors" "$T/none.png" >/dev/null 2>"$T/err"; rc=$?
[ "$rc" -eq 5 ] || fail "predict on a bad model: exit $rc"

# the valid tiny model
"$BIN" info "$T/ok.safetensors" >"$T/out" 2>&1 || fail "info ok.safetensors: $(cat "$T/out")"
grep -q "feature:    gap \[4\]" "$T/out" || fail "info: feature line missing: $(cat "$T/out")"
grep -q "1 BatchNorm folded" "$T/out" || fail "info: BN folding not reported"
"$BIN" info --json --nodes "$T/ok.safetensors" >"$T/json" || fail "info --json"
"$PY" -c "import json,sys; j=json.load(open(sys.argv[1])); assert j['feature']=='gap' and j['parameters']==132 and len(j['graph'])==5, j" "$T/json" \
  || fail "info --json content"
"$BIN" info >/dev/null 2>&1; [ $? -eq 2 ] || fail "info without a file must be a usage error"

# one-layer pieces of one named module are one block (block_16_*, features.17.conv.*); bare numbers (features.0 /
# features.3: layers of one container; conv2d_1 / conv2d_2: Keras's auto-numbering) are not modules
"$BIN" info "$T/chain.safetensors" >"$T/out" 2>&1 || fail "info chain.safetensors: $(cat "$T/out")"
blocks=$(sed -n '/^top blocks/,/^multi-block/p' "$T/out" | awk 'NR > 2 && /^  / {print $1 "<" $2 ">" $3 ":" $4}' | tr '\n' ' ')
want="Conv_1<block_16_project_relu>Conv_1_relu:2 block_16<features.17.conv.2_relu>block_16_project_relu:6 \
features.17<features.3_relu>features.17.conv.2_relu:6 features.3<features.0_relu>features.3_relu:2 \
features.0<conv2d_2_relu>features.0_relu:2 conv2d_2<conv2d_1_relu>conv2d_2_relu:2 conv2d_1<Conv1_relu>conv2d_1_relu:2 \
Conv1<x>Conv1_relu:2 "
[ "$blocks" = "$want" ] || fail "chain top blocks: got '$blocks', want '$want'"
grep -Eq "^  block_16\.\.Conv_1 +features\.17\.conv\.2_relu +Conv_1_relu +8 " "$T/out" || fail "span block_16..Conv_1: $(cat "$T/out")"
# container layers up to a pool are a stage (VGG's conv4 / conv5); a fire module is one block; two dense blocks
# of one module are two blocks; container layers without a pool stay apart
"$BIN" info "$T/stages.safetensors" >"$T/out" 2>&1 || fail "info stages.safetensors: $(cat "$T/out")"
blocks=$(sed -n '/^top blocks/,/^multi-block/p' "$T/out" | awk 'NR > 2 && /^  / {print $1 "<" $2 ">" $3 ":" $4}' | tr '\n' ' ')
want="classifier.1<classifier.0_relu>classifier.1_relu:2 classifier.0<dense.block2.cat>classifier.0_relu:2 \
dense.block2<dense.block1.cat>dense.block2.cat:6 dense.block1<fire.cat>dense.block1.cat:6 \
fire<features.7>fire.cat:7 features.3-7<features.2>features.7:5 features.0<x>features.2:3 "
[ "$blocks" = "$want" ] || fail "stage / fire top blocks: got '$blocks', want '$want'"

# the emotion net: fetch (cached, sha256-pinned), info, predict on lfw_subset[1] saved as PGM
EMO="$T/emotion.safetensors"
if ! bash "$SRC/models/emotion/fetch.sh" "$EMO" >/dev/null 2>"$T/fetch.err"; then
  cat "$T/fetch.err" >&2; fail "models/emotion/fetch.sh"
else
  "$BIN" info "$EMO" >"$T/out" 2>&1 || fail "info emotion: $(cat "$T/out")"
  cat "$T/out"
  grep -q "feature:    add_2.gap \[256\]" "$T/out" || fail "emotion feature node"
  grep -Eq "^  add_2 +add_1 +add_2 " "$T/out" || fail "emotion top block add_1 -> add_2"
  "$PY" - "$T/face.pgm" <<'PYEOF' || fail "could not write the face image"
import subprocess, sys
import numpy as np
p = subprocess.run(["bash", "-c", "dpkg -L python3-skimage | grep lfw_subset.npy | head -1"], capture_output=True, text=True).stdout.strip()
img = np.clip(np.round(np.load(p)[1] * 255), 0, 255).astype(np.uint8)
open(sys.argv[1], "wb").write(b"P5\n25 25\n255\n" + img.tobytes())
PYEOF
  "$BIN" predict "$EMO" "$T/face.pgm" --top-k 3 >"$T/out" 2>&1 || fail "predict: $(cat "$T/out")"
  cat "$T/out"
  "$BIN" predict "$EMO" "$T/face.pgm" "$T/face.pgm" --json --top-k 7 >"$T/json" 2>"$T/err" || fail "predict --json: $(cat "$T/err")"
  "$PY" -c "
import json,sys
j=json.load(open(sys.argv[1]))
assert len(j)==2, j
t=j[0]['top'][0]
assert t['class']=='happy' and t['probability']>0.9, t
assert abs(sum(x['probability'] for x in j[0]['top'])-1)<1e-4, j[0]
" "$T/json" || fail "predict --json: $(cat "$T/json")"
  "$BIN" predict "$EMO" "$T/missing.png" >/dev/null 2>"$T/err"; rc=$?
  [ "$rc" -eq 5 ] && grep -q "missing.png" "$T/err" || fail "predict on a missing image: exit $rc $(cat "$T/err")"
fi
[ "$fails" -eq 0 ] && echo "cli_model: all passed" || echo "cli_model: $fails failed"
exit $((fails > 0))
