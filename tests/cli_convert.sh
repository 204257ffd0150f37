#!/usr/bin/env bash
# Converter front doors (issues 21/22): every tools/convert_*.py answers a wrong input with ONE line on
# stderr saying what it expected, no Python traceback, and the documented exit code (models/README.md:
# 2 bad command line or a model gradfeat cannot represent, 5 unreadable/malformed input); every option
# its --help names is one argparse accepts; real inputs: a tiny ONNX model with an op we lack (a lone Erf,
# not torch's GELU pattern), a Mul by a constant, a HardSigmoid with beta != 0.5 and a Slice of rows (only
# channel ranges map), a Split, a broken TF.js model, a TF.js graph model's --output naming no node, a
# malformed --input-size, an --output that is no computed map (a folded Pad, the inner node of a
# fused hard_swish), a hard_swish spelled in elementary ops whose inner add another node reads (and
# --output keeping only what a node reads, which also drops that reader), a
# torch module scaling by a constant and one concatenating along H; efficientnet_b0 (SiLU, SE) and
# squeezenet1_1 (torch.cat, ceil-mode pools) convert (issue 17) and load.
. "$(dirname "$0")/testlib.sh"
T="$GF_SRC/tools"

# expect NAME CODE FRAGMENT -- command...: exit CODE, one stderr line containing FRAGMENT, no traceback
expect() {
  local name="$1" code="$2" frag="$3"; shift 4
  "$@" >"$t/out" 2>"$t/err"; local rc=$?
  check "$name: exit $code (got $rc)" "[ $rc -eq $code ]" || cat "$t/err"
  check "$name: one stderr line" "[ \$(wc -l <'$t/err') -eq 1 ]" || cat "$t/err"
  check "$name: no traceback" "! grep -q Traceback '$t/err'"
  check "$name: names the problem" 'grep -qF -- "$frag" "$t/err"' || { echo "  want: $frag"; cat "$t/err"; }
}

# fixtures: garbage, a directory, an ONNX model with Sigmoid, TF.js variants
printf 'not a model' >"$t/garbage.bin"; mkdir "$t/dir"
"$PY" - "$t" <<'PYEOF' || { echo "FATAL: fixtures"; exit 1; }
import json, sys, numpy as np, onnx
from onnx import helper, TensorProto, numpy_helper
t = sys.argv[1]
w = numpy_helper.from_array(np.ones((2, 3, 1, 1), np.float32), "w")
def one(op, name, extra=(), attrs=None, inits=(), yshape=(1, 2, 4, 4)):
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node(op, ["c"] + list(extra), ["y"], name=name, **(attrs or {}))]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(yshape))], [w] + list(inits))
    onnx.save(helper.make_model(g), "%s/%s.onnx" % (t, name))
one("Erf", "erf")
one("Mul", "mulconst", ["k"], inits=[numpy_helper.from_array(np.float32(2.0), "k")])
one("HardSigmoid", "hsig", attrs={"alpha": 0.2, "beta": 0.6})
ints64 = lambda name, v: numpy_helper.from_array(np.array(v, np.int64), name)
one("Slice", "sliceh", ["s0", "s1", "s2"], inits=[ints64("s0", [1]), ints64("s1", [3]), ints64("s2", [2])],
    yshape=(1, 2, 2, 4))
layers = [{"class_name": "Conv2D", "config": {"name": "c", "batch_input_shape": [None, 4, 4, 3], "filters": 2,
           "kernel_size": [1, 1], "strides": [1, 1], "padding": "valid", "activation": "linear", "use_bias": False}},
          {"class_name": "Bidirectional", "config": {"name": "rnn"}}]
mj = {"format": "layers-model", "modelTopology": {"model_config": {"class_name": "Sequential", "config": {"layers": layers}}},
      "weightsManifest": [{"paths": ["w.bin"], "weights": [{"name": "c/kernel", "shape": [1, 1, 3, 2], "dtype": "float32"}]}]}
json.dump(mj, open(t + "/layer.json", "w"))
open(t + "/w.bin", "wb").write(np.ones(6, np.float32).tobytes())
mj2 = dict(mj, weightsManifest=[{"paths": ["short.bin"], "weights": mj["weightsManifest"][0]["weights"]}])
json.dump(mj2, open(t + "/short.json", "w"))
open(t + "/short.bin", "wb").write(b"\0" * 8)
mj3 = dict(mj, weightsManifest=[{"paths": ["nothere.bin"], "weights": mj["weightsManifest"][0]["weights"]}])
json.dump(mj3, open(t + "/noshard.json", "w"))
ints = lambda v: {"list": {"i": [str(x) for x in v]}}
gnodes = [{"name": "x", "op": "Placeholder", "attr": {"shape": {"shape": {"dim": [{"size": "-1"}, {"size": "4"},
                                                                                  {"size": "4"}, {"size": "3"}]}}}},
          {"name": "p", "op": "Const", "attr": {"value": {"tensor": {"intVal": [0, 0, 1, 1, 1, 1, 0, 0]}}}},
          {"name": "net/pad/Pad", "op": "Pad", "input": ["x", "p"]},
          {"name": "net/pool/MaxPool", "op": "MaxPool", "input": ["net/pad/Pad"],
           "attr": {"ksize": ints([1, 2, 2, 1]), "strides": ints([1, 2, 2, 1]), "padding": {"s": "VkFMSUQ="}}}]
json.dump({"format": "graph-model", "modelTopology": {"node": gnodes}, "weightsManifest": mj["weightsManifest"]},
          open(t + "/padpool.json", "w"))
open(t + "/nomodel.min.js", "w").write("!function(e){module.exports=e()}(function(){return 42});")
open(t + "/badlit.min.js", "w").write("a.exports={modelTopology:{x:[1,2,}}")
# ONNX: a Split of channels (torch.split exports it; gradfeat maps only Slice ranges)
nodes = [helper.make_node("Conv", ["x", "w4"], ["c"], name="conv"),
         helper.make_node("Split", ["c"], ["y0", "y1"], name="split", axis=1)]
vi = lambda n, s: helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
g = helper.make_graph(nodes, "g", [vi("x", [1, 3, 4, 4])], [vi("y0", [1, 2, 4, 4]), vi("y1", [1, 2, 4, 4])],
                      [numpy_helper.from_array(np.ones((4, 3, 1, 1), np.float32), "w4")])
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), t + "/split.onnx")
# TF.js graph models: conv -> relu (the trunk), then a pool and an op gradfeat lacks (a detection head)
VALID = {"s": "VkFMSUQ="}
x = {"name": "x", "op": "Placeholder", "attr": {"shape": {"shape": {"dim": [{"size": "-1"}, {"size": "4"},
                                                                             {"size": "4"}, {"size": "3"}]}}}}
conv = {"name": "net/conv/Conv2D", "op": "Conv2D", "input": ["x", "net/conv/kernel"],
        "attr": {"strides": ints([1, 1, 1, 1]), "padding": VALID}}
wm = lambda names: [{"paths": ["g.bin"], "weights": [{"name": n, "shape": s, "dtype": "float32"} for n, s in names]}]
def save(name, nodes, wts):
    json.dump({"format": "graph-model", "modelTopology": {"node": nodes}, "weightsManifest": wm(wts)},
              open("%s/%s.json" % (t, name), "w"))
save("head", [x, conv, {"name": "net/relu/Relu", "op": "Relu", "input": ["net/conv/Conv2D"]},
              {"name": "net/head/MaxPool", "op": "MaxPool", "input": ["net/relu/Relu"],
               "attr": {"ksize": ints([1, 2, 2, 1]), "strides": ints([1, 2, 2, 1]), "padding": VALID}},
              {"name": "net/head/nms", "op": "NonMaxSuppressionV5", "input": ["net/head/MaxPool"]}],
     [("net/conv/kernel", [1, 1, 3, 2])])
# hard_swish  mul(mul(c, 1/6), relu6(add(c, 3)))  whose add is also read by a Relu
save("hswish", [x, conv, {"name": "net/add", "op": "AddV2", "input": ["net/conv/Conv2D", "three"]},
                {"name": "net/r6", "op": "Relu6", "input": ["net/add"]},
                {"name": "net/m1", "op": "Mul", "input": ["net/conv/Conv2D", "sixth"]},
                {"name": "net/hs", "op": "Mul", "input": ["net/m1", "net/r6"]},
                {"name": "net/leak", "op": "Relu", "input": ["net/add"]}],
     [("net/conv/kernel", [1, 1, 3, 2]), ("three", []), ("sixth", [])])
open(t + "/g.bin", "wb").write(np.array([1] * 6 + [3.0, 1 / 6.0], np.float32).tobytes())
PYEOF

O="$PY $T/convert_onnx.py"
expect onnx-missing 5 "nope.onnx: No such file" -- $O "$t/nope.onnx" "$t/o.safetensors"
expect onnx-dir 5 "not a regular file" -- $O "$t/dir" "$t/o.safetensors"
expect onnx-garbage 5 "not an ONNX model" -- $O "$t/garbage.bin" "$t/o.safetensors"
expect onnx-unsupported-op 2 "Erf (1 nodes, e.g. erf)" -- $O "$t/erf.onnx" "$t/o.safetensors"
expect onnx-mul-constant 2 "node mulconst: Mul by a constant not supported" -- $O "$t/mulconst.onnx" "$t/o.safetensors"
expect onnx-hardsigmoid-beta 2 "node hsig: HardSigmoid beta 0.6" -- $O "$t/hsig.onnx" "$t/o.safetensors"
expect onnx-slice-h 2 "node sliceh: Slice [0:1, 0:2, 1:3, 0:4] of a [1, 2, 4, 4] map not supported" -- \
  $O "$t/sliceh.onnx" "$t/o.safetensors"
expect onnx-split 2 "Split (1 nodes, e.g. split)" -- $O "$t/split.onnx" "$t/o.safetensors"
expect onnx-bad-preprocess 2 "--preprocess: not valid JSON" -- $O "$t/erf.onnx" "$t/o.safetensors" --preprocess '{'
expect onnx-usage 2 "the following arguments are required: model, out (see --help)" -- $O

J="$PY $T/convert_tfjs.py"
expect tfjs-garbage 5 "expected a TF.js model.json" -- $J "$t/garbage.bin" "$t/o.safetensors"
expect tfjs-layer 2 "layer rnn (Bidirectional) not supported" -- $J "$t/layer.json" "$t/o.safetensors"
expect tfjs-pad-into-pool 2 "reads the zero padding net/pad/Pad" -- $J "$t/padpool.json" "$t/o.safetensors"
expect tfjs-short-shard 5 "hold 8 bytes, the manifest needs 24" -- $J "$t/short.json" "$t/o.safetensors"
expect tfjs-no-shard 5 "nothere.bin" -- $J "$t/noshard.json" "$t/o.safetensors"
expect tfjs-js-no-literal 5 "no 'exports=<literal>' found" -- $J "$t/nomodel.min.js" "$t/o.safetensors"
expect tfjs-js-bad-literal 5 "cannot parse the exported JavaScript literal" -- $J "$t/badlit.min.js" "$t/o.safetensors"
expect tfjs-name-prefix 2 "unrecognized arguments: --name-prefix" -- $J "$t/layer.json" "$t/o.safetensors" --name-prefix p
# graph-model --output / --input-size (issue 17): a refusal writes nothing
expect tfjs-head 2 "unsupported TF.js ops: NonMaxSuppressionV5" -- $J "$t/head.json" "$t/head.safetensors"
expect tfjs-output-unknown 2 "--output net/nope: no such node in the graph (e.g. x, net/conv/Conv2D," -- \
  $J "$t/head.json" "$t/head.safetensors" --output net/nope
for s in 3x4 0,4 4,-1 4,4,4; do
  expect "tfjs-input-size $s" 2 "--input-size $s: expected H,W or one number, 1 to 65536" -- \
    $J "$t/head.json" "$t/head.safetensors" --output net/relu/Relu "--input-size=$s"
done
expect tfjs-output-empty 2 "--output ',': expected comma-separated TF node names" -- \
  $J "$t/head.json" "$t/head.safetensors" --output ,
expect tfjs-output-pad 2 "--output net/pad/Pad: a Pad node, not a computed map" -- \
  $J "$t/padpool.json" "$t/head.safetensors" --output net/pad/Pad
expect tfjs-output-inner 2 "node net/r6: part of a hard activation (net/hs) but also read by --output" -- \
  $J "$t/hswish.json" "$t/head.safetensors" --output net/hs,net/r6
expect tfjs-hswish-inner-read 2 "node net/add: part of a hard activation (net/hs) but also read by net/leak" -- \
  $J "$t/hswish.json" "$t/head.safetensors"
check "tfjs: no refusal wrote a model" "[ ! -e '$t/head.safetensors' ]"
# what a converted model holds: node ops -> outputs, input [C, H, W]
desc() { "$PY" -c 'import sys; sys.path.insert(0, sys.argv[1]); import gfmodel; g = gfmodel.read(sys.argv[2])[0]
print(" ".join(n["op"] for n in g["nodes"]), "->", ",".join(g["outputs"]), g["input"]["shape"])' "$T" "$1"; }
check "tfjs --output net/relu/Relu converts" \
  "$J '$t/head.json' '$t/trunk.safetensors' --output net/relu/Relu --input-size 6,8 >'$t/trunk.log' 2>&1" || cat "$t/trunk.log"
check "tfjs --output keeps only its ancestors (conv, relu; its GAP as the feature)" \
  "[ \"\$(desc '$t/trunk.safetensors')\" = 'conv2d relu global_avgpool -> relu [3, 6, 8]' ]" || desc "$t/trunk.safetensors"
check "tfjs --output net/hs:0 (a tensor name): hard_swish once its add's other reader is dropped" \
  "$J '$t/hswish.json' '$t/hs.safetensors' --output net/hs:0 >'$t/hs.log' 2>&1" || cat "$t/hs.log"
check "tfjs hard_swish pattern -> one hardswish node" \
  "[ \"\$(desc '$t/hs.safetensors')\" = 'conv2d hardswish global_avgpool -> hs [3, 4, 4]' ]" || desc "$t/hs.safetensors"
check "tfjs --help does not offer --name-prefix" "! $J --help | grep -q name-prefix"

V="$PY $T/convert_torchvision.py"
expect tv-arch 2 "--arch resnet19: not a torchvision classification model" -- $V --arch resnet19 "$t/o.safetensors"
expect tv-weights-garbage 5 "not a PyTorch checkpoint" -- $V --arch resnet18 --weights "$t/garbage.bin" "$t/o.safetensors"
expect tv-factory 2 "cannot import no_such_module_xyz" -- $V --factory no_such_module_xyz:build "$t/o.safetensors"
cat >"$t/mynet.py" <<'PYEOF'
import torch.nn as nn
def build(num_classes=10):
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, num_classes))
PYEOF
expect tv-channels 2 "expected input[1, 3, 28, 28] to have 1 channels" -- \
  bash -c "cd '$t' && $V --factory mynet:build --input-size 28 o.safetensors"
check "tv --factory --channels 1 converts" "(cd '$t' && $V --factory mynet:build --channels 1 --input-size 28 my.safetensors >/dev/null 2>&1)"
check "gradfeat info reads it" "\"\$G\" info '$t/my.safetensors' | grep -q 'feature: *4 \\[8\\]'" || "$G" info "$t/my.safetensors"
cat >"$t/oddnets.py" <<'PYEOF'
import torch, torch.nn as nn
class Scale(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__(); self.c = nn.Conv2d(3, 4, 1); self.fc = nn.Linear(4, num_classes)
    def forward(self, x):
        return self.fc((self.c(x) * 2.0).mean((2, 3)))
class CatH(Scale):
    def forward(self, x):
        y = self.c(x)
        return self.fc(torch.cat([y, y], 2).mean((2, 3)))
class PermMean(Scale):
    def forward(self, x):
        return self.fc(self.c(x).permute(0, 2, 3, 1).mean((1, 2)))
class PadPool(Scale):
    def forward(self, x):
        return self.fc(torch.nn.functional.max_pool2d(torch.nn.functional.pad(self.c(x), (1, 1, 1, 1)), 2).mean((2, 3)))
def scale(num_classes=10): return Scale(num_classes)
def padpool(num_classes=10): return PadPool(num_classes)
def permmean(num_classes=10): return PermMean(num_classes)
def cath(num_classes=10): return CatH(num_classes)
PYEOF
expect tv-mul-constant 2 "function mul (_operator.mul): a product with a constant" -- \
  bash -c "cd '$t' && $V --factory oddnets:scale --input-size 8 o.safetensors"
expect tv-cat-dim 2 "function cat (torch.cat): concatenation other than of 2..64 NCHW maps along channels (dim 2)" -- \
  bash -c "cd '$t' && $V --factory oddnets:cath --input-size 8 o.safetensors"
expect tv-pad-into-pool 2 "reads a zero padding (F.pad / ZeroPad2d folds only into the Conv2d after it)" -- \
  bash -c "cd '$t' && $V --factory oddnets:padpool --input-size 8 o.safetensors"
expect tv-channels-last 2 "on a channels-last view of a map (after a permute)" -- \
  bash -c "cd '$t' && $V --factory oddnets:permmean --input-size 8 o.safetensors"
for a in efficientnet_b0 squeezenet1_1; do
  check "tv $a converts (issue 17: SiLU/SE, torch.cat/ceil-mode pool)" \
    "$V --arch $a --input-size 32 '$t/$a.safetensors' >'$t/$a.log' 2>&1" || cat "$t/$a.log"
  check "gradfeat info reads $a" "\"\$G\" info '$t/$a.safetensors' >/dev/null"
done

# every --option that a converter's --help mentions is one its argparse accepts, and every option it
# accepts is listed (the parsers are built by make_parser(), the same call main() makes); the ONNX and
# TF.js tools run with --help exit 0 and print that text
"$PY" - "$T" "$PY" >"$t/opts" 2>&1 <<'PYEOF'
import re, subprocess, sys
sys.path.insert(0, sys.argv[1])
import convert_onnx, convert_tfjs, convert_torchvision
bad = []
for mod in (convert_onnx, convert_tfjs, convert_torchvision):
    ap = mod.make_parser()
    text = ap.format_help()
    if mod is not convert_torchvision:  # a run of that one imports torch: seconds
        r = subprocess.run([sys.argv[2], mod.__file__, "--help"], capture_output=True, text=True)
        text = r.stdout
        if r.returncode != 0 or r.stderr or "usage:" not in text:
            bad.append("%s --help: exit %d, stderr %r" % (mod.__name__, r.returncode, r.stderr[-200:]))
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", text))
    accepted = {o for o in ap._option_string_actions if o.startswith("--")}
    bad += ["%s: --help names %s, which argparse rejects" % (mod.__name__, o) for o in sorted(named - accepted)]
    bad += ["%s: --help does not list %s" % (mod.__name__, o) for o in sorted(accepted - named)]
print("\n".join(bad) or "ok")
PYEOF
check "every option a converter's --help names is accepted, every accepted one named, --help exits 0" \
  "grep -qx ok '$t/opts'" || cat "$t/opts"
finish
