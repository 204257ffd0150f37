#!/usr/bin/python3
"""Writes the seed corpora tests/fuzz/corpus/<harness>/ from the project's own
tools and real data: tiny models via tools/gfmodel.py, IDX records cut from
Fashion-MNIST, small images of every format stb_image reads (PIL), CSV
manifests. Run with Debian's python (numpy, PIL): /usr/bin/python3."""
import gzip
import io
import json
import os
import struct
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, "tools"))
import gfmodel  # noqa: E402

FM = "/usr/share/datasets/fashion-mnist"
r = np.random.default_rng(0)


def out(kind, name, data):
    d = os.path.join(HERE, "corpus", kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def model_bytes(build, pre, classes, f16=None):
    g = build()
    tmp = io.BytesIO()
    tensors = dict(g.tensors)
    meta = {"gradfeat.format_version": "1",
            "gradfeat.graph": json.dumps(g.to_json(), separators=(",", ":")),
            "gradfeat.preprocess": json.dumps(pre, separators=(",", ":")),
            "gradfeat.classes": json.dumps(list(classes))}
    path = os.path.join(HERE, ".tmp.safetensors")
    gfmodel.write_safetensors(path, tensors, meta, dtype_override=f16)
    with open(path, "rb") as f:
        b = f.read()
    os.remove(path)
    return b


def bn(g, name, c):
    for k, v in (("weight", 1.0), ("bias", 0.1), ("running_mean", 0.0), ("running_var", 1.0)):
        g.tensor("%s.%s" % (name, k), np.full(c, v))
    return {k: "%s.%s" % (name, k) for k in ("weight", "bias", "running_mean", "running_var")}


def tiny():
    g = gfmodel.Graph("x", [3, 8, 8])
    g.tensor("conv.weight", r.standard_normal((4, 3, 3, 3)))
    g.tensor("fc.weight", r.standard_normal((2, 4)))
    g.add("conv", "conv2d", ["x"], {"weight": "conv.weight"}, {"pad": [1, 1, 1, 1]})
    g.add("bn", "batchnorm", ["conv"], bn(g, "bn", 4))
    g.add("relu", "relu", ["bn"])
    g.add("gap", "global_avgpool", ["relu"])
    g.add("fc", "linear", ["gap"], {"weight": "fc.weight"})
    g.outputs = ["fc"]
    g.feature = "gap"
    return g


def resnetish():
    """stem, maxpool, one residual block (named), avgpool, flatten, linear, softmax."""
    g = gfmodel.Graph("input", [1, 12, 12])
    g.tensor("stem.weight", r.standard_normal((4, 1, 3, 3)))
    g.tensor("stem.bias", r.standard_normal(4))
    g.add("stem", "conv2d", ["input"], {"weight": "stem.weight", "bias": "stem.bias"},
          {"stride": [1, 1], "pad": [1, 1, 1, 1]})
    g.add("stem.act", "relu6", ["stem"])
    g.add("pool", "maxpool", ["stem.act"], attrs={"kernel": [2, 2], "stride": [2, 2]})
    g.tensor("b.c1.weight", r.standard_normal((4, 1, 3, 3)))
    g.add("b.c1", "conv2d", ["pool"], {"weight": "b.c1.weight"}, {"pad": [1, 1, 1, 1], "groups": 4})
    g.add("b.bn1", "batchnorm", ["b.c1"], bn(g, "b.bn1", 4), {"eps": 1e-3})
    g.add("b.act1", "leaky_relu", ["b.bn1"], attrs={"alpha": 0.1})
    g.tensor("b.c2.weight", r.standard_normal((4, 4, 1, 1)))
    g.add("b.c2", "conv2d", ["b.act1"], {"weight": "b.c2.weight"}, {"dilation": [1, 1]})
    g.add("b.add", "add", ["b.c2", "pool"])
    g.add("b.out", "relu", ["b.add"])
    g.add("avg", "avgpool", ["b.out"], attrs={"kernel": [3, 3], "stride": [3, 3], "pad": [0, 0, 0, 0],
                                            "count_include_pad": False})
    g.add("flat", "flatten", ["avg"])
    g.tensor("fc.weight", r.standard_normal((3, 16)))
    g.tensor("fc.bias", r.standard_normal(3))
    g.add("fc", "linear", ["flat"], {"weight": "fc.weight", "bias": "fc.bias"})
    g.add("prob", "softmax", ["fc"])
    g.outputs = ["prob"]
    g.feature = "flat"
    g.blocks = [{"name": "block", "input": "pool", "output": "b.out"}]
    return g


def gated():
    """issue 17's ops: SiLU, a squeeze-excitation gate (GAP, 1x1 convs, hard-sigmoid) multiplied in from the left,
    GELU (tanh form), sigmoid, an elementwise product, hard-swish, a three-way concat, layer norm, GELU (erf)."""
    g = gfmodel.Graph("x", [3, 6, 6])
    g.tensor("c.weight", r.standard_normal((4, 3, 3, 3)))
    g.add("c", "conv2d", ["x"], {"weight": "c.weight"}, {"pad": [1, 1, 1, 1]})
    g.add("c.act", "silu", ["c"])
    g.add("se.pool", "global_avgpool", ["c.act"])
    g.tensor("se.fc1.weight", r.standard_normal((2, 4, 1, 1)))
    g.add("se.fc1", "conv2d", ["se.pool"], {"weight": "se.fc1.weight"})
    g.add("se.act", "gelu", ["se.fc1"], attrs={"approximate": "tanh"})
    g.tensor("se.fc2.weight", r.standard_normal((4, 2, 1, 1)))
    g.add("se.fc2", "conv2d", ["se.act"], {"weight": "se.fc2.weight"})
    g.add("se.gate", "hardsigmoid", ["se.fc2"], attrs={"alpha": 0.2})
    g.add("se.mul", "mul", ["se.gate", "c.act"])
    g.add("sig", "sigmoid", ["se.mul"])
    g.add("prod", "mul", ["se.mul", "sig"])
    g.add("hs", "hardswish", ["c"])
    g.add("cat", "concat", ["prod", "hs", "c.act"])
    g.add("ln", "layernorm", ["cat"], attrs={"eps": 1e-6})
    g.add("out", "gelu", ["ln"])
    g.add("gap", "global_avgpool", ["out"])
    g.tensor("fc.weight", r.standard_normal((2, 12)))
    g.add("fc", "linear", ["gap"], {"weight": "fc.weight"})
    g.outputs = ["fc"]
    g.feature = "gap"
    return g


def shuffled():
    """ShuffleNetV2's unit: chunk in two (slices), a 1x1 conv on one half, concat, channel shuffle (own rng:
    the other seeds' bytes stay as they were)."""
    q = np.random.default_rng(17)
    g = gfmodel.Graph("x", [3, 6, 6])
    g.tensor("c.weight", q.standard_normal((4, 3, 3, 3)))
    g.add("c", "conv2d", ["x"], {"weight": "c.weight"}, {"pad": [1, 1, 1, 1]})
    g.add("lo", "slice", ["c"], attrs={"start": 0, "end": 2})
    g.add("hi", "slice", ["c"], attrs={"start": 2, "end": 4})
    g.tensor("b.weight", q.standard_normal((2, 2, 1, 1)))
    g.add("b", "conv2d", ["hi"], {"weight": "b.weight"})
    g.add("cat", "concat", ["lo", "b"])
    g.add("sh", "shuffle", ["cat"], attrs={"groups": 2})
    g.add("gap", "global_avgpool", ["sh"])
    g.tensor("fc.weight", q.standard_normal((2, 4)))
    g.add("fc", "linear", ["gap"], {"weight": "fc.weight"})
    g.outputs = ["fc"]
    g.feature = "gap"
    return g


def make_models():
    out("model", "tiny.safetensors", model_bytes(tiny, {"input_size": [8, 8], "channels": 3, "color_order": "RGB",
                                                        "resize": "stretch"}, ["cat", "dog"]))
    pre = {"input_size": [12, 12], "channels": 1, "color_order": "GRAY", "resize": "shorter_center_crop",
           "resize_shorter": 14, "interpolation": "bilinear_tf_legacy", "scale": 2.0, "offset": -1.0,
           "mean": [0.5], "std": [0.25]}
    out("model", "resnetish.safetensors", model_bytes(resnetish, pre, ["a", "b", "c"]))
    out("model", "resnetish_f16.safetensors",
        model_bytes(resnetish, dict(pre, interpolation="nearest", color_order="GRAY"), ["a", "b", "c"],
                    f16={"fc.weight": "F16", "b.c2.weight": "F16"}))
    out("model", "not_a_model.safetensors", struct.pack("<Q", 2) + b"{}")
    out("model", "gated_concat.safetensors", model_bytes(gated, {"input_size": [6, 6], "channels": 3,
                                                                 "color_order": "RGB", "resize": "stretch"}, ["a", "b"]))
    strict_seeds(model_bytes(tiny, {"input_size": [8, 8], "channels": 3, "color_order": "RGB", "resize": "stretch"},
                             ["cat", "dog"]))
    out("model", "shuffle_slice.safetensors", model_bytes(shuffled, {"input_size": [6, 6], "channels": 3,
                                                                     "color_order": "RGB", "resize": "stretch"}, ["a", "b"]))


def strict_seeds(data):
    """One seed per strict-safetensors rejection (issue 21) and the data checksum, from the tiny model."""
    n = struct.unpack("<Q", data[:8])[0]
    hj, body = data[8:8 + n].rstrip(b" "), data[8 + n:]
    hdr = json.loads(hj)
    def dump(name, h, b=body):
        x = json.dumps(h).encode()
        out("model", name, struct.pack("<Q", len(x)) + x + b)
    def fnv(b):
        x = 1469598103934665603
        for c in b:
            x = ((x ^ c) * 1099511628211) & (2**64 - 1)
        return "%016x" % x
    k = hj.index(b'"fc.weight"'); e = hj.index(b"}", k) + 1
    out("model", "strict_dup_name.safetensors", struct.pack("<Q", len(hj) + e - k + 2) + hj[:-1] + b", " + hj[k:e] + b"}" + body)
    h = json.loads(hj); h["bn.bias"]["data_offsets"] = h["bn.weight"]["data_offsets"]; dump("strict_overlap.safetensors", h)
    dump("strict_trailing.safetensors", hdr, body + bytes(8))
    h = json.loads(hj)
    for kk, v in h.items():
        if kk != "__metadata__":
            v["data_offsets"] = [x + 8 for x in v["data_offsets"]]
    dump("strict_gap.safetensors", h, bytes(8) + body)
    out("model", "strict_header_nul.safetensors", struct.pack("<Q", len(hj) + 8) + hj + bytes(8) + body)
    out("model", "strict_header_garbage.safetensors", struct.pack("<Q", len(hj) + 4) + hj + b"xyz " + body)
    fb = hdr["fc.weight"]["data_offsets"][0]
    b = bytearray(body); b[fb:fb + 4] = struct.pack("<f", float("nan")); dump("strict_nan.safetensors", hdr, bytes(b))
    h = json.loads(hj); h["__metadata__"]["gradfeat.data_fnv1a64"] = fnv(body)
    dump("checksum_ok.safetensors", h)
    b = bytearray(body); b[fb] ^= 1; dump("checksum_bad.safetensors", h, bytes(b))


def idx_bytes(images, labels):
    return struct.pack("<I", len(images)) + images + labels


def make_idx():
    with gzip.open(os.path.join(FM, "t10k-images-idx3-ubyte.gz")) as f:
        img = f.read(16 + 3 * 784)
    with gzip.open(os.path.join(FM, "t10k-labels-idx1-ubyte.gz")) as f:
        lab = f.read(8 + 3)
    img = img[:4] + struct.pack(">I", 3) + img[8:]
    lab = lab[:4] + struct.pack(">I", 3) + lab[8:]
    out("idx", "fmnist3", idx_bytes(img, lab))
    out("idx", "fmnist3_gz", idx_bytes(gzip.compress(img, 9), gzip.compress(lab, 9)))
    small = bytes([0, 0, 8, 3]) + struct.pack(">III", 2, 4, 4) + bytes(range(32))
    out("idx", "small2", idx_bytes(small, bytes([0, 0, 8, 1]) + struct.pack(">I", 2) + b"\x00\x07"))
    rgb = bytes([0, 0, 8, 4]) + struct.pack(">IIII", 2, 2, 3, 3) + bytes(range(36))
    out("idx", "rgb2", idx_bytes(rgb, bytes([0, 0, 8, 1]) + struct.pack(">I", 2) + b"\x01\x00"))


def make_csv():
    seeds = {
        "single": (0x10, "path,labels\na.pgm,cat\nb.ppm,dog\nc.png,cat\n"),
        "multi": (0x12, "a.pgm,cat;dog\nb.ppm,dog\nc.png,\nbad.png,bird\n"),
        "split": (0x11, "path,labels,split\na.pgm,0,train\nb.ppm,1,test\n\"c.png\",2,train\n# comment\n"),
        "classes": (0x1c, "\xef\xbb\xbfa.pgm,cat\r\nb.ppm,bird\r\nmissing.png,dog\r\n"),
        "quoted": (0x20, "\"a.pgm\",\"cat;dog\"\n\"b \"\"x\"\".ppm\",dog\n  c.png , 1 \n"),
        "ints": (0x04, "a.pgm,0;2\nb.ppm,5\nc.png,1\n"),
    }
    for name, (opt, text) in seeds.items():
        out("csv", name, bytes([opt]) + text.encode("latin-1"))


def make_images():
    with gzip.open(os.path.join(FM, "t10k-images-idx3-ubyte.gz")) as f:
        f.read(16)
        gray = np.frombuffer(f.read(784), np.uint8).reshape(28, 28)
    small = Image.fromarray(gray).resize((12, 10))
    rgb = Image.merge("RGB", [small, small.transpose(Image.FLIP_LEFT_RIGHT), small.transpose(Image.FLIP_TOP_BOTTOM)])
    cfgs = [bytes([7, 7, 0x00, 0]), bytes([15, 3, 0x07, 9]), bytes([2, 30, 0x6d, 5]), bytes([9, 9, 0x95, 40])]
    imgs = []
    for fmt, im, kw in (("PNG", small, {}), ("PNG", rgb, {}), ("PNG", rgb.convert("RGBA"), {}),
                        ("PNG", rgb.convert("P"), {}), ("PNG", small.convert("LA"), {}),
                        ("JPEG", rgb, {"quality": 70}), ("JPEG", small, {"quality": 50}),
                        ("JPEG", rgb, {"progressive": True}), ("BMP", rgb, {}), ("GIF", rgb.convert("P"), {}),
                        ("TGA", rgb, {}), ("PPM", rgb, {}), ("PPM", small, {})):
        b = io.BytesIO()
        im.save(b, fmt, **kw)
        imgs.append((fmt.lower() + "_" + im.mode.lower(), b.getvalue()))
    for i, (name, data) in enumerate(imgs):
        out("image", "%02d_%s" % (i, name), cfgs[i % len(cfgs)] + data)


def make_onnx():
    """Seeds of fuzz_onnx: tiny nets exported by torch.onnx (every op family the importer maps: conv, BN, the
    activations, pools with ceil_mode and counted padding, an SE gate, a ShuffleNet unit with x.chunk and a
    symbolic batch, i.e. shape arithmetic, concat, linear, softmax; GELU, LayerNorm and a channels-last block
    at opsets 13 and 17) and two hand-written ones (onnx.helper)."""
    import torch
    import torch.nn as nn
    import onnx
    from onnx import helper, TensorProto, numpy_helper

    class Shuffle(nn.Module):   # ShuffleNetV2's unit: chunk, branch, concat, channel shuffle
        def __init__(self):
            super().__init__()
            self.b = nn.Sequential(nn.Conv2d(2, 2, 1), nn.BatchNorm2d(2), nn.ReLU(), nn.Conv2d(2, 2, 3, padding=1, groups=2))

        def forward(self, x):
            a, b = x.chunk(2, dim=1)
            y = torch.cat((a, self.b(b)), 1)
            n, c, h, w = y.shape
            return y.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)

    class SE(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Conv2d(4, 2, 1), nn.Conv2d(2, 4, 1)

        def forward(self, x):
            s = x.mean((2, 3), keepdim=True)
            return x * nn.functional.hardsigmoid(self.fc2(torch.relu(self.fc1(s))))

    torch.manual_seed(0)
    nets = {
        "convnet": (nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU6(), nn.MaxPool2d(3, 2, ceil_mode=True),
                                  nn.AvgPool2d(3, 1, padding=1), nn.LeakyReLU(0.1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(4, 3), nn.Softmax(1)), False),
        "se_hswish": (nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.Hardswish(), SE(), nn.SiLU(), nn.Flatten(), nn.Linear(36, 2)), False),
        "shuffle_dyn": (nn.Sequential(nn.Conv2d(3, 4, 1), Shuffle(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)), True),
    }
    sys.path.insert(0, os.path.dirname(HERE))
    import model_parity   # its ops17 net: erf-GELU and LayerNorm subgraphs, a ConvNeXt-style channels-last block
    nets["ops17"] = (model_parity.ops17(False, convnext=True), False)
    tmp = os.path.join(HERE, ".tmp.onnx")
    for name, (net, dyn) in nets.items():
        net.eval()
        for opset in (13, 17) if name == "ops17" else (13,):
            torch.onnx.export(net, torch.randn(1, 3, 8, 8), tmp, opset_version=opset, input_names=["input"],
                              output_names=["y"], dynamic_axes={"input": {0: "n"}, "y": {0: "n"}} if dyn else None)
            out("onnx", name + ("_opset17" if opset == 17 else "") + ".onnx", open(tmp, "rb").read())
    os.remove(tmp)
    w = numpy_helper.from_array(r.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    fc = numpy_helper.from_array(r.standard_normal((5, 4)).astype(np.float16), "fc")
    nodes = [helper.make_node("Pad", ["x", "pads"], ["p"], name="/pad/Pad"),
             helper.make_node("Conv", ["p", "w"], ["c"], name="/conv/Conv", auto_pad="NOTSET"),
             helper.make_node("Clip", ["c"], ["r"], name="/clip/Clip", min=0.0, max=6.0),
             helper.make_node("GlobalAveragePool", ["r"], ["g"], name="/pool/GlobalAveragePool"),
             helper.make_node("Reshape", ["g", "shape"], ["f"], name="/Reshape"),
             helper.make_node("Gemm", ["f", "fc"], ["y"], name="/fc/Gemm", transB=1, alpha=0.5)]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 6])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
                          [w, fc, numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads"),
                           numpy_helper.from_array(np.array([1, -1], np.int64), "shape")])
    data = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()
    out("onnx", "pad_gemm_f16.onnx", data)
    # the typed fields instead of raw_data: float_data, double_data (a MatMul's bias Add)
    tw = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3], r.standard_normal(108).astype(np.float32).tolist())
    tf = helper.make_tensor("fc", TensorProto.FLOAT, [4, 5], r.standard_normal(20).astype(np.float32).tolist())
    tb = helper.make_tensor("b", TensorProto.DOUBLE, [5], r.standard_normal(5).tolist())
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="/conv/Conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="/relu/Relu"),
             helper.make_node("GlobalAveragePool", ["r"], ["p"], name="/pool/GlobalAveragePool"),
             helper.make_node("Flatten", ["p"], ["f"], name="/Flatten"),
             helper.make_node("MatMul", ["f", "fc"], ["m"], name="/fc/MatMul"),
             helper.make_node("Add", ["m", "b"], ["y"], name="/fc/Add")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])], [tw, tf, tb])
    out("onnx", "typed_fields.onnx", helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString())
    # unnamed nodes: names from the op type with _1, _2, ... suffixes, one clashing with a literal node name
    inits, nodes, x = [], [], "x"
    for i in range(6):
        inits.append(numpy_helper.from_array(r.standard_normal((3, 3, 1, 1)).astype(np.float32), "w%d" % i))
        nodes += [helper.make_node("Conv", [x, "w%d" % i], ["c%d" % i]), helper.make_node("Relu", ["c%d" % i], ["r%d" % i])]
        x = "r%d" % i
    nodes += [helper.make_node("Relu", [x], ["relu_2"], name="relu_2"), helper.make_node("Relu", ["relu_2"], ["y"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])], inits)
    out("onnx", "unnamed.onnx", helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString())
    out("onnx", "truncated.onnx", data[:len(data) * 2 // 3])


if __name__ == "__main__":
    if sys.argv[1:] == ["onnx"]:   # only the ONNX seeds (needs python3-torch, python3-onnx)
        make_onnx()
        sys.exit(0)
    make_models()
    make_idx()
    make_csv()
    make_images()
    make_onnx()
    for k in sorted(os.listdir(os.path.join(HERE, "corpus"))):
        d = os.path.join(HERE, "corpus", k)
        print(k, len(os.listdir(d)), "files", sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)), "bytes")
