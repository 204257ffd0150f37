#!/usr/bin/python3
"""Convert a torchvision CNN (resnet18/34/50, vgg11/16, alexnet, mobilenet_v2) with its weights into a
gradfeat .safetensors model (models/README.md). The graph is traced with torch.fx, so module names
become node names and state_dict keys become tensor names; BatchNorm stays a node (folded at load).

usage: convert_torchvision.py --arch resnet18 [--weights state_dict_or_checkpoint.pth]
                              [--num-classes N] [--classes a,b,...|--classes-file F]
                              [--input-size 224] [--random-seed S] out.safetensors
Without --weights the weights are random (torchvision's init, seeded with --random-seed).
A checkpoint may be a state_dict, or a dict holding one under 'state_dict' / 'model'
('module.' prefixes from DataParallel are stripped).
"""
import argparse
import math
import operator
import os
import sys

import numpy as np
import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F
from torch.fx.passes.shape_prop import ShapeProp
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gfmodel  # noqa: E402

ARCHS = ["resnet18", "resnet34", "resnet50", "vgg11", "vgg16", "alexnet", "mobilenet_v2"]
IMAGENET_PRE = {"channels": 3, "color_order": "RGB", "resize": "shorter_center_crop",
                "interpolation": "bilinear", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def _pair(v):
    return [int(v), int(v)] if isinstance(v, int) else [int(v[0]), int(v[1])]


def _pool_pad(in_hw, k, s, p, ceil_mode, dil=(1, 1)):
    """[t,l,b,r] for PyTorch pooling; ceil_mode becomes extra bottom/right padding."""
    pad = [p[0], p[1], p[0], p[1]]
    if ceil_mode:
        for ax in (0, 1):
            eff = dil[ax] * (k[ax] - 1) + 1
            out = math.ceil((in_hw[ax] + 2 * p[ax] - eff) / s[ax]) + 1
            if (out - 1) * s[ax] >= in_hw[ax] + p[ax]:
                out -= 1
            extra = (out - 1) * s[ax] + eff - (in_hw[ax] + 2 * p[ax])
            pad[2 + ax] += max(extra, 0)
    return pad


def convert_module(model, input_size, in_ch=3):
    """Trace `model` (eval mode) and build a gfmodel.Graph."""
    model.eval()
    gm = torch.fx.symbolic_trace(model)
    ShapeProp(gm).propagate(torch.zeros(1, in_ch, input_size, input_size))
    mods = dict(gm.named_modules())
    sd = model.state_dict()
    g = gfmodel.Graph("input", [in_ch, input_size, input_size])
    ours = {}
    unsupported = []

    def shape_of(n):
        return list(n.meta["tensor_meta"].shape)

    def tensor(key):
        return g.tensor(key, sd[key].detach().cpu().float().numpy())

    for n in gm.graph.nodes:
        if n.op == "placeholder":
            ours[n.name] = "input"
            continue
        if n.op == "output":
            arg = n.args[0]
            g.outputs = [ours[a.name] for a in (arg if isinstance(arg, (tuple, list)) else [arg])]
            continue
        args = [a for a in n.args if isinstance(a, torch.fx.Node)]
        src = ours.get(args[0].name) if args else None
        in_shape = shape_of(args[0]) if args else None
        if n.op == "call_module":
            m, t = mods[n.target], n.target
            if isinstance(m, nn.Conv2d):
                if m.padding_mode != "zeros" or isinstance(m.padding, str):
                    if isinstance(m.padding, str) and m.padding == "valid":
                        pad = [0, 0, 0, 0]
                    else:
                        unsupported.append("%s: Conv2d padding %r/%s" % (t, m.padding, m.padding_mode))
                        continue
                else:
                    p = _pair(m.padding)
                    pad = [p[0], p[1], p[0], p[1]]
                params = {"weight": tensor(t + ".weight")}
                if m.bias is not None:
                    params["bias"] = tensor(t + ".bias")
                ours[n.name] = g.add(t, "conv2d", [src], params,
                                     {"stride": _pair(m.stride), "pad": pad, "dilation": _pair(m.dilation),
                                      "groups": int(m.groups)})
            elif isinstance(m, nn.Linear):
                params = {"weight": tensor(t + ".weight")}
                if m.bias is not None:
                    params["bias"] = tensor(t + ".bias")
                ours[n.name] = g.add(t, "linear", [src], params)
            elif isinstance(m, nn.BatchNorm2d):
                params = {"running_mean": tensor(t + ".running_mean"), "running_var": tensor(t + ".running_var")}
                if m.affine:
                    params["weight"] = tensor(t + ".weight")
                    params["bias"] = tensor(t + ".bias")
                ours[n.name] = g.add(t, "batchnorm", [src], params, {"eps": float(m.eps)})
            elif isinstance(m, nn.ReLU):
                ours[n.name] = g.add(t, "relu", [src])
            elif isinstance(m, nn.ReLU6) or (isinstance(m, nn.Hardtanh) and m.min_val == 0 and m.max_val == 6):
                ours[n.name] = g.add(t, "relu6", [src])
            elif isinstance(m, nn.LeakyReLU):
                ours[n.name] = g.add(t, "leaky_relu", [src], None, {"alpha": float(m.negative_slope)})
            elif isinstance(m, nn.MaxPool2d):
                k, s, p, d = _pair(m.kernel_size), _pair(m.stride or m.kernel_size), _pair(m.padding), _pair(m.dilation)
                if d != [1, 1]:
                    unsupported.append("%s: MaxPool2d dilation %s" % (t, d))
                    continue
                ours[n.name] = g.add(t, "maxpool", [src], None,
                                     {"kernel": k, "stride": s, "pad": _pool_pad(in_shape[2:], k, s, p, m.ceil_mode)})
            elif isinstance(m, nn.AvgPool2d):
                k, s, p = _pair(m.kernel_size), _pair(m.stride or m.kernel_size), _pair(m.padding)
                if m.divisor_override:
                    unsupported.append("%s: AvgPool2d divisor_override" % t)
                    continue
                if m.ceil_mode and m.count_include_pad:
                    unsupported.append("%s: AvgPool2d ceil_mode with count_include_pad" % t)
                    continue
                ours[n.name] = g.add(t, "avgpool", [src], None,
                                     {"kernel": k, "stride": s, "pad": _pool_pad(in_shape[2:], k, s, p, m.ceil_mode),
                                      "count_include_pad": bool(m.count_include_pad)})
            elif isinstance(m, nn.AdaptiveAvgPool2d):
                ours[n.name] = adaptive(g, t, src, in_shape, m.output_size, unsupported)
            elif isinstance(m, (nn.Dropout, nn.Identity)):
                ours[n.name] = src
            elif isinstance(m, nn.Flatten):
                ours[n.name] = g.add(t, "flatten", [src])
            elif isinstance(m, nn.Softmax):
                ours[n.name] = g.add(t, "softmax", [src])
            else:
                unsupported.append("%s: module %s" % (t, type(m).__name__))
        elif n.op == "call_function" or n.op == "call_method":
            f = n.target
            if f in (operator.add, operator.iadd, torch.add, "add", "add_"):
                a, b = (ours[x.name] for x in args[:2])
                base = max((a, b), key=len).rsplit(".", 1)[0] if "." in max((a, b), key=len) else ""
                ours[n.name] = g.add((base + ".add") if base else n.name, "add", [a, b])
            elif f in (torch.flatten, "flatten", "view", "reshape"):
                if len(shape_of(n)) != 2:
                    unsupported.append("%s: %s to rank %d" % (n.name, f, len(shape_of(n))))
                    continue
                ours[n.name] = g.add(n.name, "flatten", [src])
            elif f in (F.relu, torch.relu, "relu", "relu_"):
                ours[n.name] = g.add(n.name, "relu", [src])
            elif f is F.relu6:
                ours[n.name] = g.add(n.name, "relu6", [src])
            elif f is F.adaptive_avg_pool2d:
                ours[n.name] = adaptive(g, n.name, src, in_shape, n.args[1], unsupported)
            elif f in (torch.softmax, F.softmax, "softmax"):
                ours[n.name] = g.add(n.name, "softmax", [src])
            elif f in (F.dropout, "contiguous"):
                ours[n.name] = src
            elif f in (torch.mean, "mean") and tuple(n.args[1] if len(n.args) > 1 else n.kwargs.get("dim")) in ((2, 3), (-2, -1)):
                ours[n.name] = g.add(n.name, "global_avgpool", [src])
            else:
                unsupported.append("%s: function %s" % (n.name, getattr(f, "__name__", f)))
        else:
            unsupported.append("%s: %s %s" % (n.name, n.op, n.target))
    if unsupported:
        raise SystemExit("unsupported layers:\n  " + "\n  ".join(unsupported))
    # feature: input of the last linear layer (through flatten/dropout), i.e. the pooled features
    for nd in reversed(g.nodes):
        if nd["op"] == "linear":
            f = nd["inputs"][0]
            byname = {x["name"]: x for x in g.nodes}
            while f in byname and byname[f]["op"] == "flatten" and byname[byname[f]["inputs"][0]]["op"] == "global_avgpool":
                f = byname[f]["inputs"][0]
            g.feature = f
            break
    return g


def adaptive(g, name, src, in_shape, out_size, unsupported):
    oh, ow = _pair(out_size) if out_size is not None else in_shape[2:]
    h, w = in_shape[2], in_shape[3]
    if oh == 1 and ow == 1:
        return g.add(name, "global_avgpool", [src])
    if (h, w) == (oh, ow):
        return src  # identity at this input size
    if h % oh == 0 and w % ow == 0:
        k = [h // oh, w // ow]
        return g.add(name, "avgpool", [src], None, {"kernel": k, "stride": k, "pad": [0, 0, 0, 0]})
    unsupported.append("%s: AdaptiveAvgPool2d %dx%d -> %dx%d (not an integer ratio)" % (name, h, w, oh, ow))
    return src


def load_state_dict(path):
    ck = torch.load(path, map_location="cpu")
    if isinstance(ck, dict):
        for k in ("state_dict", "model", "model_state_dict"):
            if k in ck and isinstance(ck[k], dict):
                ck = ck[k]
                break
    if not isinstance(ck, dict):
        raise SystemExit("%s: not a state_dict or checkpoint dict" % path)
    return {k[7:] if k.startswith("module.") else k: v for k, v in ck.items()}


def build(arch, num_classes):
    if arch not in ARCHS:
        raise SystemExit("--arch %s: choose one of %s" % (arch, ", ".join(ARCHS)))
    return getattr(torchvision.models, arch)(weights=None, num_classes=num_classes)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--arch", required=True)
    ap.add_argument("--weights")
    ap.add_argument("--num-classes", type=int)
    ap.add_argument("--classes", default="")
    ap.add_argument("--classes-file")
    ap.add_argument("--input-size", type=int, default=224)
    ap.add_argument("--random-seed", type=int, default=0)
    args = ap.parse_args(argv)
    classes = [c for c in args.classes.split(",") if c]
    if args.classes_file:
        classes = [l.strip() for l in open(args.classes_file) if l.strip()]
    sd = load_state_dict(args.weights) if args.weights else None
    nc = args.num_classes or (len(classes) if classes else None)
    if nc is None and sd is not None:
        last = [k for k in sd if k.endswith(".weight") and sd[k].dim() == 2]
        nc = sd[last[-1]].shape[0] if last else 1000
    nc = nc or 1000
    torch.manual_seed(args.random_seed)
    model = build(args.arch, nc)
    if sd is not None:
        model.load_state_dict(sd)
    g = convert_module(model, args.input_size)
    pre = dict(IMAGENET_PRE, input_size=[args.input_size, args.input_size],
               resize_shorter=int(round(args.input_size * 256 / 224)))
    gfmodel.write(args.out, g, pre, classes)
    print("wrote %s: %d nodes, %d tensors, outputs %s, feature %s" %
          (args.out, len(g.nodes), len(g.tensors), g.outputs, g.feature))


if __name__ == "__main__":
    main()
