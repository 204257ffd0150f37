#!/usr/bin/python3
"""Test helper for tests/cli_onnx.sh (native ONNX loading, host/graph/onnx_import.c).

usage: onnx_native.py export OUTDIR        the ONNX cases of model_parity.py's zoo, exported by torch.onnx:
                                           OUTDIR/<case>/model.onnx, OUTDIR/<case>/py.safetensors (the same
                                           ONNX file through tools/convert_onnx.py), OUTDIR/<case>/img{0,1}.png
                                           (random images at the input size) and OUTDIR/cases.txt
                                           (GF_ONNX_ONLY=a,b keeps the cases whose names contain a or b)
       onnx_native.py compare A B          exit 0 when the gradfeat model files A and B hold the same graph,
                                           preprocessing, classes and bit-identical tensors (names, shapes, values)
       onnx_native.py bad OUTDIR           small ONNX files with one defect each (see BAD below)
"""
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tools"))
sys.path.insert(0, HERE)

# (case, arch, px, opset, dynamic batch): model_parity.py's ZOO ONNX cases that gradfeat reads natively,
# plus a small ShuffleNet at opset 13 with a fixed batch and the resnet18 of test_model_parity_onnx at 64 px.
# ops17 is model_parity.py's small net of the rarer ops with a ConvNeXt-style block (erf-GELU and LayerNorm
# subgraphs at opset 13, the LayerNormalization op at 17, channels-last Transpose/MatMul, layer scale).
# GF_ONNX_EXTRA=1 adds the big ones of model_parity.py's ZOO_EXTRA (too slow for CI).
CASES = [("onnx_ops17", "ops17", 16, 13, False),
         ("onnx17_ops17", "ops17", 16, 17, False),
         ("onnx_resnet18", "resnet18", 64, 13, False),
         ("onnx_resnet18_fresh", "resnet18", 64, 13, False),
         ("onnx_squeezenet1_1", "squeezenet1_1", 64, 13, False),
         ("onnx_efficientnet_b0", "efficientnet_b0", 64, 13, False),
         ("onnx_mobilenet_v3_small", "mobilenet_v3_small", 64, 13, False),
         ("onnx17_mobilenet_v3_small", "mobilenet_v3_small", 64, 17, False),
         ("onnx_mnasnet0_5", "mnasnet0_5", 64, 13, False),
         ("onnx_regnet_x_400mf", "regnet_x_400mf", 64, 13, False),
         ("onnx_shufflenet_v2_x1_0", "shufflenet_v2_x1_0", 64, 13, False),
         ("onnxdyn_shufflenet_v2_x0_5", "shufflenet_v2_x0_5", 64, 13, True)]
EXTRA = [("onnx_resnet34", "resnet34", 64, 13, False),
         ("onnx_alexnet_224", "alexnet", 224, 13, False),
         ("onnx_vgg11_bn_224", "vgg11_bn", 224, 13, False),
         ("onnx_googlenet", "googlenet", 64, 13, False),
         ("onnx_densenet121", "densenet121", 64, 13, False),
         ("onnx_convnext_tiny", "convnext_tiny", 64, 13, False)]


def export(out):
    import torch
    import onnx
    import convert_onnx
    import convert_torchvision as ct
    import gfmodel
    import model_parity as mp
    from PIL import Image
    only = [w for w in os.environ.get("GF_ONNX_ONLY", "").split(",") if w]
    names = []
    for case, arch, size, opset, dyn in CASES + (EXTRA if os.environ.get("GF_ONNX_EXTRA") else []):
        if only and not any(w in case for w in only):
            continue
        d = os.path.join(out, case)
        os.makedirs(d, exist_ok=True)
        if arch == "ops17":   # as model_parity.zoo: random BN statistics and LayerNorm affine, a gate that matters
            torch.manual_seed(1234)
            m = mp.randomize_ops17(mp.ops17(False, convnext=True))
        elif case.endswith("_fresh"):   # default BN init: torch.onnx shares equal initializers behind Identity nodes
            torch.manual_seed(1234)
            m = ct.build(arch, 10).eval()
        else:
            m = mp.seeded_torchvision(arch, 10, size)
        x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(7))
        op = os.path.join(d, "model.onnx")
        torch.onnx.export(m, x, op, opset_version=opset, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "n"}, "logits": {0: "n"}} if dyn else None)
        g = convert_onnx.convert(onnx.load(op))
        c, h, w = g.input["shape"]
        pre = {"input_size": [h, w], "channels": c, "color_order": "RGB", "resize": "shorter_center_crop",
               "resize_shorter": int(round(h * 256 / 224)), "interpolation": "bilinear",
               "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}   # convert_onnx.py's default
        gfmodel.write(os.path.join(d, "py.safetensors"), g, pre, [])
        rng = np.random.default_rng(3)
        for k in range(2):
            Image.fromarray(rng.integers(0, 256, (size + 9 * k, size + 5, 3), dtype=np.uint8)).save(
                os.path.join(d, "img%d.png" % k))
        names.append(case)
    open(os.path.join(out, "cases.txt"), "w").write("\n".join(names) + "\n")


def compare(a, b):
    import gfmodel
    ga, pa, ca, ta = gfmodel.read(a)
    gb, pb, cb, tb = gfmodel.read(b)
    bad = []
    if ga != gb:
        na = {n["name"]: n for n in ga.get("nodes", [])}
        nb = {n["name"]: n for n in gb.get("nodes", [])}
        diff = [k for k in sorted(set(na) | set(nb)) if na.get(k) != nb.get(k)]
        bad.append("graph differs (%d vs %d nodes; first differing: %s: %s vs %s; outputs %s vs %s, feature %s vs %s)" %
                   (len(na), len(nb), diff[:1], na.get(diff[0]) if diff else None, nb.get(diff[0]) if diff else None,
                    ga.get("outputs"), gb.get("outputs"), ga.get("feature"), gb.get("feature")))
    if pa != pb:
        bad.append("preprocess differs: %s vs %s" % (pa, pb))
    if ca != cb:
        bad.append("classes differ")
    if sorted(ta) != sorted(tb):
        bad.append("tensor names differ: %s" % sorted(set(ta) ^ set(tb))[:5])
    for k in sorted(set(ta) & set(tb)):
        if ta[k].shape != tb[k].shape or ta[k].tobytes() != tb[k].tobytes():
            bad.append("tensor %s differs (shape %s vs %s)" % (k, ta[k].shape, tb[k].shape))
            break
    if bad:
        print("%s vs %s: %s" % (a, b, "; ".join(bad)))
        return 1
    print("same model: %d nodes, %d tensors (%d floats), bit-identical" %
          (len(ga["nodes"]), len(ta), sum(v.size for v in ta.values())))
    return 0


def bad(out):
    """One defect per file: erf.onnx (an op gradfeat lacks), truncated.onnx (a valid model cut in half),
    garbage.onnx (not protobuf), ext.onnx (an initializer in external data), shortraw.onnx (raw_data shorter
    than the dims say), deep.onnx (messages nested 600 deep), transpose.onnx (a Transpose of H and W), small.onnx
    (a valid tiny conv net, the base of the others)."""
    import onnx
    from onnx import helper, TensorProto, numpy_helper
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(1)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    fc = numpy_helper.from_array(rng.standard_normal((4, 5)).astype(np.float32), "fc")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="/conv/Conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="/relu/Relu"),
             helper.make_node("GlobalAveragePool", ["r"], ["p"], name="/pool/GlobalAveragePool"),
             helper.make_node("Flatten", ["p"], ["f"], name="/Flatten"),
             helper.make_node("MatMul", ["f", "fc"], ["y"], name="/fc/MatMul")]
    X = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    Y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])

    def save(name, nds, inits):
        m = helper.make_model(helper.make_graph(nds, "g", [X], [Y], inits), opset_imports=[helper.make_opsetid("", 13)])
        onnx.save(m, os.path.join(out, name))
        return m

    m = save("small.onnx", nodes, [w, fc])
    data = m.SerializeToString()
    open(os.path.join(out, "truncated.onnx"), "wb").write(data[:len(data) // 2])
    open(os.path.join(out, "garbage.onnx"), "wb").write(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    erf = list(nodes)
    erf[1] = helper.make_node("Erf", ["c"], ["r"], name="erfnode")
    save("erf.onnx", erf, [w, fc])
    ext = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, 3, 3, 3])
    ext.data_location = TensorProto.EXTERNAL
    e = ext.external_data.add()
    e.key, e.value = "location", "weights.bin"
    save("ext.onnx", nodes, [ext, fc])
    short = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    short.raw_data = short.raw_data[:-4]
    save("shortraw.onnx", nodes, [short, fc])
    # messages nested 200 deep (ModelProto.graph -> GraphProto.node -> NodeProto.attribute -> AttributeProto.g
    # -> ...): a parser that recursed per level without a bound could run out of stack on a bigger one
    def field(num, payload):
        n, key = len(payload), bytes([num << 3 | 2])
        v = bytearray()
        while True:
            v.append((n & 0x7f) | (0x80 if n > 0x7f else 0))
            n >>= 7
            if not n:
                break
        return key + bytes(v) + payload
    g = b""
    for _ in range(200):
        g = field(1, field(5, field(6, g)))   # graph{node{attribute{g: graph{...}}}}
    open(os.path.join(out, "deep.onnx"), "wb").write(field(7, g))
    tr = list(nodes)
    tr[1] = helper.make_node("Transpose", ["c"], ["r"], name="/tr/Transpose", perm=[0, 1, 3, 2])
    save("transpose.onnx", tr, [w, fc])


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "export":
        export(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    elif len(sys.argv) == 3 and sys.argv[1] == "bad":
        bad(sys.argv[2])
    else:
        sys.exit(__doc__)
