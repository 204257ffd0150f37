#!/usr/bin/python3
"""Convert a PyTorch CNN (any torchvision classification model, or your own nn.Module) with its weights
into a gradfeat .safetensors model (models/README.md). The module is traced with torch.fx and every node
is mapped to a gradfeat op where one exists (Conv2d, Linear, BatchNorm2d, ReLU/ReLU6/LeakyReLU,
Sigmoid, SiLU, Hardsigmoid, Hardswish, GELU, max and average pooling, adaptive average pooling, residual
add, products (elementwise, or squeeze-excitation's per-channel gate), torch.cat over channels, flatten,
mean over H,W, dropout/identity/stochastic depth (eval), softmax, a zero F.pad / ZeroPad2d folded into the
Conv2d after it, and ConvNeXt's channels-last pieces: a
permute to NHWC and back, LayerNorm over channels (its affine part a depthwise 1x1 conv), Linear on NHWC
(a 1x1 conv), a per-channel layer_scale parameter (a depthwise 1x1 conv)); the first node that has no
equivalent is named with its module class and the tool stops.
There is no list of architectures: what traces and maps, converts. Module names become node names and
state_dict keys become tensor names; BatchNorm stays a node (folded at load).

Where the model comes from (one of):
  --arch NAME          torchvision.models.NAME (e.g. resnet18, vgg11_bn, mnasnet0_5, regnet_x_400mf)
  --factory MOD:FUNC   your code: FUNC() from the Python module MOD (a file MOD.py in the current folder
                       or on PYTHONPATH) returns the nn.Module; --num-classes N is passed as
                       num_classes=N when given
  --module-file F.pt   a whole module saved with torch.save(model, F.pt)
--weights loads a state_dict, or a checkpoint dict holding one under 'state_dict' / 'model' /
'model_state_dict' ('module.' prefixes from DataParallel are stripped). Without --weights (and without
--module-file) the weights are random (the model's own init, seeded with --random-seed).

Exit codes: 0 written; 2 bad command line, or the model uses a layer gradfeat cannot represent (named);
5 a file is missing, unreadable or not what was expected; 1 an internal error (a bug: traceback).
"""
import json
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


# Functions traced as one node (their bodies iterate x.size(), which torch.fx cannot trace): ShuffleNetV2's
# channel_shuffle(x, groups) becomes a gradfeat `shuffle`.
_LEAF_FUNCTIONS = tuple(f for f in (getattr(getattr(torchvision.models, "shufflenetv2", None), "channel_shuffle", None),)
                        if f is not None)


class _Tracer(torch.fx.Tracer):
    """torch.fx's tracer, plus: unpacking the result of x.chunk(n, dim) (a constant n) gives its n pieces."""

    def __init__(self):
        super().__init__(autowrap_functions=_LEAF_FUNCTIONS)

    def iter(self, obj):
        nd = obj.node
        if nd.op == "call_method" and nd.target == "chunk" and len(nd.args) > 1 and isinstance(nd.args[1], int):
            return iter([obj[i] for i in range(nd.args[1])])
        return super().iter(obj)


def convert_module(model, input_size, in_ch=3):
    """Trace `model` (eval mode) and build a gfmodel.Graph."""
    model.eval()
    try:
        tracer = _Tracer()
        gm = torch.fx.GraphModule(model, tracer.trace(model))
    except Exception as e:  # data-dependent control flow, unsupported Python in forward()
        raise gfmodel.Unsupported("%s cannot be traced by torch.fx (%s: %s)" %
                                  (type(model).__name__, type(e).__name__, str(e).strip().splitlines()[0]))
    import contextlib
    import io
    buf = io.StringIO()  # ShapeProp prints the traceback of a failing node itself: keep it quiet
    try:
        with contextlib.redirect_stderr(buf):
            ShapeProp(gm).propagate(torch.zeros(1, in_ch, input_size, input_size))
    except Exception as e:
        lines = [l for l in buf.getvalue().splitlines() if l.strip()]
        why = lines[-1] if lines else str(e).strip().splitlines()[0]
        raise gfmodel.Unsupported("%s does not run on a 1x%dx%dx%d input (--channels, --input-size): %s" %
                                  (type(model).__name__, in_ch, input_size, input_size, why))
    mods = dict(gm.named_modules())
    pend = {}  # fx node -> (spatial map [oh*ow, h*w], h, w) of an adaptive pool waiting to fold into a Linear
    sd = model.state_dict()
    g = gfmodel.Graph("input", [in_ch, input_size, input_size])
    ours = {}
    unsupported = []

    def what(n):  # "features.0.2 (torch.nn.modules.activation.SiLU)" for the error message
        if n.op == "call_module":
            c = type(mods[n.target])
            return "module %s (%s.%s)" % (n.target, c.__module__, c.__qualname__)
        if n.op in ("call_function", "call_method"):
            f = n.target
            return "%s %s (%s)" % ("function" if n.op == "call_function" else "method", n.name,
                                   f if isinstance(f, str) else "%s.%s" % (getattr(f, "__module__", "") or "",
                                                                          getattr(f, "__name__", f)))
        return "%s %s" % (n.op, n.target)

    def shape_of(n):
        return list(n.meta["tensor_meta"].shape)

    def tensor(key):
        return g.tensor(key, sd[key].detach().cpu().float().numpy())

    # ConvNeXt: a permute to NHWC, LayerNorm over the last dim, Linear on NHWC, permute back. Our maps stay
    # NCHW; `cl` holds the fx nodes that are such a channels-last VIEW of one (the same gradfeat node), and
    # only layer norm (over channels), Linear (a 1x1 conv), elementwise ops and the permute back may read them.
    cl = set()
    consts = {}  # get_attr fx node -> (qualified name, float64 value): ConvNeXt's layer_scale, LayerNorm2d's affine
    ELEMENTWISE_MODS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Sigmoid, nn.SiLU, nn.Hardsigmoid, nn.Hardswish, nn.GELU,
                        nn.Dropout, nn.Identity)

    def layernorm(name, src, C, eps, gamma, beta):
        """layer norm over channels + its affine part as a depthwise 1x1 conv (tangent parameters like a conv's)."""
        y = g.add(name, "layernorm", [src], None, {"eps": float(eps)})
        if gamma is None and beta is None:
            return y
        params = {"weight": g.tensor(name + ".weight", (np.ones(C) if gamma is None else gamma).reshape(C, 1, 1, 1))}
        if beta is not None:
            params["bias"] = g.tensor(name + ".bias", beta.reshape(C))
        return g.add(name + ".affine", "conv2d", [y], params, {"groups": C})

    zpad = {}  # fx node of a zero F.pad / nn.ZeroPad2d -> (its input fx node, [t, l, b, r]): folds into the next Conv2d

    def np64(t):
        return None if t is None else t.detach().cpu().double().numpy()

    for n in gm.graph.nodes:
        if n.op == "placeholder":
            ours[n.name] = "input"
            continue
        if n.op == "get_attr":
            v = gm
            for part in n.target.split("."):
                v = getattr(v, part)
            if torch.is_tensor(v):
                consts[n.name] = (n.target, v.detach().cpu().double().numpy())
                continue
        if n.op != "output" and any(isinstance(a, torch.fx.Node) and a.name in zpad for a in n.args) and \
                not (n.op == "call_module" and isinstance(mods[n.target], nn.Conv2d) and n.args[0].name in zpad and
                     mods[n.target].padding_mode == "zeros" and not isinstance(mods[n.target].padding, str)):
            unsupported.append("%s reads a zero padding (F.pad / ZeroPad2d folds only into the Conv2d after it)" %
                               what(n))
            break
        if n.op != "output" and any(isinstance(a, torch.fx.Node) and a.name in cl for a in n.args):
            m = mods.get(n.target) if n.op == "call_module" else None
            f = n.target if n.op != "call_module" else None
            src0 = n.args[0]
            if isinstance(m, ELEMENTWISE_MODS) or f in (F.gelu, F.relu, torch.relu, "relu", F.silu, torch.sigmoid,
                                                       F.dropout, "contiguous") or \
                    getattr(f, "__name__", None) == "stochastic_depth":
                if isinstance(m, (nn.Dropout, nn.Identity)) or f in (F.dropout, "contiguous") or \
                        getattr(f, "__name__", None) == "stochastic_depth":
                    ours[n.name] = ours[src0.name]
                    cl.add(n.name)
                    continue
                cl.add(n.name)  # handled below as usual, on the NCHW node; the result stays a channels-last view
            elif f in (torch.permute, "permute"):
                dims = list(n.args[1:]) if len(n.args) > 2 else list(n.args[1] if len(n.args) > 1 else n.kwargs["dims"])
                if [int(d) % 4 for d in dims] != [0, 3, 1, 2]:
                    unsupported.append("%s: permute %s of a channels-last view" % (what(n), dims))
                    break
                ours[n.name] = ours[src0.name]
                continue
            elif isinstance(m, nn.LayerNorm) or f is F.layer_norm:
                shape = shape_of(src0)
                C = shape[-1]
                ns = tuple(m.normalized_shape) if m is not None else tuple(n.args[1] if len(n.args) > 1 else n.kwargs["normalized_shape"])
                if ns != (C,):
                    unsupported.append("%s: layer norm over %s of a channels-last map (only over its channels)" % (what(n), ns))
                    break
                if m is not None:
                    gamma, beta, eps = (np64(m.weight), np64(m.bias), m.eps) if m.elementwise_affine else (None, None, m.eps)
                    name = n.target
                else:
                    w_, b_ = (n.args[2] if len(n.args) > 2 else n.kwargs.get("weight")), (n.args[3] if len(n.args) > 3 else n.kwargs.get("bias"))
                    gamma = consts[w_.name][1] if isinstance(w_, torch.fx.Node) else None
                    beta = consts[b_.name][1] if isinstance(b_, torch.fx.Node) else None
                    eps = n.args[4] if len(n.args) > 4 else n.kwargs.get("eps", 1e-5)
                    name = consts[w_.name][0].rsplit(".", 1)[0] if isinstance(w_, torch.fx.Node) else n.name
                ours[n.name] = layernorm(name, ours[src0.name], C, eps, gamma, beta)
                cl.add(n.name)
                continue
            elif isinstance(m, nn.Linear):
                W = sd[n.target + ".weight"].detach().cpu().float().numpy()
                params = {"weight": g.tensor(n.target + ".weight", W.reshape(W.shape[0], W.shape[1], 1, 1))}
                if m.bias is not None:
                    params["bias"] = tensor(n.target + ".bias")
                ours[n.name] = g.add(n.target, "conv2d", [ours[src0.name]], params)   # a Linear on NHWC = a 1x1 conv
                cl.add(n.name)
                continue
            else:
                unsupported.append("%s on a channels-last view of a map (after a permute)" % what(n))
                break
        if n.op == "output":
            arg = n.args[0]
            g.outputs = [ours[a.name] for a in (arg if isinstance(arg, (tuple, list)) else [arg])]
            continue
        if n.op == "call_method" and n.target == "chunk":   # read only through operator.getitem below
            dim = n.args[2] if len(n.args) > 2 else n.kwargs.get("dim", 0)
            xs_ = shape_of(n.args[0])
            if len(xs_) != 4 or dim not in (1, -3) or not isinstance(n.args[1], int):
                unsupported.append("%s: chunk other than of an NCHW map along channels (dim %s)" % (what(n), dim))
                break
            continue
        if n.op == "call_function" and n.target is operator.getitem and isinstance(n.args[0], torch.fx.Node) and \
                n.args[0].op == "call_method" and n.args[0].target == "chunk":
            ch, k = n.args[0], n.args[1]
            C, pieces = shape_of(ch.args[0])[1], ch.args[1]
            step = -(-C // pieces)   # torch.chunk: pieces of ceil(C / n) channels, the last one smaller
            start, end = k * step, min(C, (k + 1) * step)
            base = ours[ch.args[0].name]
            ours[n.name] = g.add(n.name, "slice", [base], None, {"start": int(start), "end": int(end)})
            continue
        if n.op == "call_function" and n.target in _LEAF_FUNCTIONS:   # channel_shuffle(x, groups)
            groups = n.args[1] if len(n.args) > 1 else n.kwargs["groups"]
            if len(shape_of(n.args[0])) != 4 or not isinstance(groups, int) or shape_of(n.args[0])[1] % groups:
                unsupported.append("%s: channel shuffle in %s groups" % (what(n), groups))
                break
            ours[n.name] = g.add(n.name, "shuffle", [ours[n.args[0].name]], None, {"groups": int(groups)})
            continue
        args = [a for a in n.args if isinstance(a, torch.fx.Node)]
        if n.op == "call_function" and n.target in (torch.cat, torch.concat) and n.args and \
                isinstance(n.args[0], (list, tuple)):
            args = [a for a in n.args[0] if isinstance(a, torch.fx.Node)]
        src = ours.get(args[0].name) if args else None
        in_shape = shape_of(args[0]) if args else None
        if unsupported:
            break
        pin = [a.name for a in args if a.name in pend]
        if pin:  # a non-integer adaptive pool: only flatten/dropout/identity and then a Linear may follow
            m = mods.get(n.target) if n.op == "call_module" else None
            if isinstance(m, (nn.Dropout, nn.Identity, nn.Flatten)) or n.target in (torch.flatten, "flatten", "view",
                                                                                    "reshape", F.dropout, "contiguous"):
                pend[n.name] = pend[pin[0]]
                ours[n.name] = src if isinstance(m, (nn.Dropout, nn.Identity)) or n.target in (F.dropout, "contiguous") \
                    else g.add(n.target if m is not None else n.name, "flatten", [src])
                continue
            if isinstance(m, nn.Linear):
                P, h, w = pend[pin[0]]
                wt = sd[n.target + ".weight"].detach().cpu().double().numpy()
                o, cin = wt.shape
                oh_ow = P.shape[0]
                wt = np.einsum("ocq,qp->ocp", wt.reshape(o, cin // oh_ow, oh_ow), P).reshape(o, -1)
                params = {"weight": g.tensor(n.target + ".weight", wt)}
                if m.bias is not None:
                    params["bias"] = tensor(n.target + ".bias")
                ours[n.name] = g.add(n.target, "linear", [src], params)
                continue
            unsupported.append("%s after an AdaptiveAvgPool2d whose output size is not an integer fraction of "
                               "its %dx%d input (that pool folds only into a following Linear)" %
                               (what(n), pend[pin[0]][1], pend[pin[0]][2]))
            continue
        if n.op == "call_module":
            m, t = mods[n.target], n.target
            if isinstance(m, nn.ZeroPad2d) and len(in_shape) == 4:
                l_, r_, t_, b_ = (list(m.padding) * 4)[:4] if isinstance(m.padding, (tuple, list)) else [m.padding] * 4
                if min(l_, r_, t_, b_) < 0:
                    unsupported.append("%s: negative padding (a crop)" % what(n))
                    continue
                zpad[n.name] = (args[0].name, [t_, l_, b_, r_])
                continue
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
                if args[0].name in zpad:   # a zero F.pad / ZeroPad2d before it: more padding
                    p0, extra = zpad[args[0].name]
                    src = ours[p0]
                    pad = [u + v for u, v in zip(pad, extra)]
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
            elif isinstance(m, nn.Sigmoid):
                ours[n.name] = g.add(t, "sigmoid", [src])
            elif isinstance(m, nn.SiLU):
                ours[n.name] = g.add(t, "silu", [src])
            elif isinstance(m, nn.Hardsigmoid):
                ours[n.name] = g.add(t, "hardsigmoid", [src])
            elif isinstance(m, nn.Hardswish):
                ours[n.name] = g.add(t, "hardswish", [src])
            elif isinstance(m, nn.GELU):
                ours[n.name] = g.add(t, "gelu", [src], None, {"approximate": getattr(m, "approximate", "none")})
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
                ours[n.name] = adaptive(g, t, src, in_shape, m.output_size, pend, n.name)
            elif isinstance(m, (nn.Dropout, nn.Identity)):
                ours[n.name] = src
            elif isinstance(m, nn.Flatten):
                ours[n.name] = g.add(t, "flatten", [src])
            elif isinstance(m, nn.Softmax):
                ours[n.name] = g.add(t, "softmax", [src])
            else:
                unsupported.append(what(n))
        elif n.op == "call_function" or n.op == "call_method":
            f = n.target
            if f in (operator.add, operator.iadd, torch.add, "add", "add_"):
                a, b = (ours[x.name] for x in args[:2])
                base = max((a, b), key=len).rsplit(".", 1)[0] if "." in max((a, b), key=len) else ""
                ours[n.name] = g.add((base + ".add") if base else n.name, "add", [a, b])
            elif f in (operator.mul, operator.imul, torch.mul, "mul", "mul_") and len(args) == 2 and \
                    sum(a.name in consts for a in args) == 1:   # a per-channel scale (ConvNeXt's layer_scale)
                k, x_ = (args[0], args[1]) if args[0].name in consts else (args[1], args[0])
                qn, v = consts[k.name]
                xs_ = shape_of(x_)
                if len(xs_) != 4 or v.size != xs_[1] or v.shape not in ((xs_[1],), (xs_[1], 1, 1), (1, xs_[1], 1, 1)):
                    unsupported.append("%s: product with the parameter %s of shape %s (only a per-channel scale of a "
                                       "[N, C, H, W] map)" % (what(n), qn, list(v.shape)))
                    continue
                C = xs_[1]
                ours[n.name] = g.add(qn, "conv2d", [ours[x_.name]], {"weight": g.tensor(qn, v.reshape(C, 1, 1, 1))},
                                     {"groups": C})
            elif f in (operator.mul, operator.imul, torch.mul, "mul", "mul_"):
                if len(args) != 2 or len(n.args) != 2:
                    unsupported.append("%s: a product with a constant (only products of two tensors)" % what(n))
                    continue
                a, b = (ours[x.name] for x in args)
                sa, sb = shape_of(args[0]), shape_of(args[1])
                gate_ok = lambda p, q: len(p) == 4 and len(q) == 4 and p[:2] == q[:2] and q[2:] == [1, 1]
                if not (sa == sb or gate_ok(sa, sb) or gate_ok(sb, sa)):
                    unsupported.append("%s: product of shapes %s and %s (equal shapes or a per-channel gate only)" %
                                       (what(n), sa, sb))
                    continue
                base = max((a, b), key=len).rsplit(".", 1)[0] if "." in max((a, b), key=len) else ""
                ours[n.name] = g.add((base + ".mul") if base else n.name, "mul", [a, b])
            elif f in (torch.cat, torch.concat, "cat"):
                dim = n.args[1] if len(n.args) > 1 else n.kwargs.get("dim", 0)
                shapes = [shape_of(x) for x in args]
                if len(args) == 1 and len(n.args[0]) == 1:  # a list of one map (DenseNet's first layer)
                    ours[n.name] = ours[args[0].name]
                    continue
                if len(args) < 2 or len(args) > 64 or dim not in (1, -3) or any(len(sh) != 4 for sh in shapes) or \
                        len(args) != len(n.args[0]):
                    unsupported.append("%s: concatenation other than of 2..64 NCHW maps along channels (dim %s)" %
                                       (what(n), dim))
                    continue
                ins = [ours[x.name] for x in args]
                base = ins[0].rsplit(".", 1)[0] if "." in ins[0] else ""
                ours[n.name] = g.add((base + ".cat") if base else n.name, "concat", ins)
            elif f is F.pad:
                pd = list(n.args[1] if len(n.args) > 1 else n.kwargs["pad"])
                mode = n.args[2] if len(n.args) > 2 else n.kwargs.get("mode", "constant")
                value = n.args[3] if len(n.args) > 3 else n.kwargs.get("value", None)
                if len(in_shape) != 4 or len(pd) != 4 or mode != "constant" or value not in (None, 0, 0.0) or min(pd) < 0:
                    unsupported.append("%s: F.pad %s mode %s value %s (only zeros around H, W)" % (what(n), pd, mode, value))
                    continue
                zpad[n.name] = (args[0].name, [pd[2], pd[0], pd[3], pd[1]])
            elif f in (torch.permute, "permute"):
                dims = list(n.args[1:]) if len(n.args) > 2 else list(n.args[1] if len(n.args) > 1 else n.kwargs["dims"])
                if len(in_shape) != 4 or [int(d) % 4 for d in dims] != [0, 2, 3, 1]:
                    unsupported.append("%s: permute %s (only NCHW -> NHWC for a channels-last layer norm)" %
                                       (what(n), dims))
                    continue
                ours[n.name] = src
                cl.add(n.name)
            elif f is F.layer_norm and len(in_shape) == 2:   # over the features of a flat vector
                ns = tuple(n.args[1] if len(n.args) > 1 else n.kwargs["normalized_shape"])
                if ns != (in_shape[1],):
                    unsupported.append("%s: layer norm over %s" % (what(n), ns))
                    continue
                w_, b_ = (n.args[2] if len(n.args) > 2 else n.kwargs.get("weight")), (n.args[3] if len(n.args) > 3 else n.kwargs.get("bias"))
                ours[n.name] = layernorm(n.name, src, in_shape[1], n.args[4] if len(n.args) > 4 else n.kwargs.get("eps", 1e-5),
                                         consts[w_.name][1] if isinstance(w_, torch.fx.Node) else None,
                                         consts[b_.name][1] if isinstance(b_, torch.fx.Node) else None)
            elif f in (torch.sigmoid, F.sigmoid, "sigmoid"):
                ours[n.name] = g.add(n.name, "sigmoid", [src])
            elif f is F.silu:
                ours[n.name] = g.add(n.name, "silu", [src])
            elif f is F.hardsigmoid:
                ours[n.name] = g.add(n.name, "hardsigmoid", [src])
            elif f is F.hardswish:
                ours[n.name] = g.add(n.name, "hardswish", [src])
            elif f is F.gelu:
                ours[n.name] = g.add(n.name, "gelu", [src], None, {"approximate": n.kwargs.get("approximate", "none")})
            elif getattr(f, "__name__", None) == "stochastic_depth" and "torchvision" in (getattr(f, "__module__", "") or ""):
                training = n.args[3] if len(n.args) > 3 else n.kwargs.get("training", True)
                if training:
                    unsupported.append("%s: stochastic depth in training mode" % what(n))
                    continue
                ours[n.name] = src  # identity in eval
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
                ours[n.name] = adaptive(g, n.name, src, in_shape, n.args[1], pend, n.name)
            elif f in (torch.softmax, F.softmax, "softmax"):
                ours[n.name] = g.add(n.name, "softmax", [src])
            elif f in (F.dropout, "contiguous"):
                ours[n.name] = src
            elif f in (torch.mean, "mean") and tuple(n.args[1] if len(n.args) > 1 else n.kwargs.get("dim")) in ((2, 3), (-2, -1)):
                ours[n.name] = g.add(n.name, "global_avgpool", [src])
            else:
                unsupported.append(what(n))
        else:
            unsupported.append(what(n))
    if unsupported:
        raise gfmodel.Unsupported("cannot convert %s: no gradfeat op for %s (gradfeat ops: %s)" %
                                  (type(model).__name__, unsupported[0], ", ".join(sorted(gfmodel.OPS))))
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


def adaptive(g, name, src, in_shape, out_size, pend, fx_name):
    h, w = in_shape[2], in_shape[3]
    oh, ow = [h if v is None else int(v) for v in ((out_size, out_size) if not isinstance(out_size, (tuple, list))
                                                  else out_size)]
    if oh == 1 and ow == 1:
        return g.add(name, "global_avgpool", [src])
    if (h, w) == (oh, ow):
        return src  # identity at this input size
    if h % oh == 0 and w % ow == 0:
        k = [h // oh, w // ow]
        return g.add(name, "avgpool", [src], None, {"kernel": k, "stride": k, "pad": [0, 0, 0, 0]})
    # not an integer ratio (e.g. VGG's 7x7 pool on the 1x1 map of a 32 px input): the pool is linear, so
    # it folds into the Linear that reads the flattened map (convert_module checks that one follows)
    P = np.zeros((oh, ow, h, w))
    for i in range(oh):
        y0, y1 = (i * h) // oh, -(-((i + 1) * h) // oh)
        for j in range(ow):
            x0, x1 = (j * w) // ow, -(-((j + 1) * w) // ow)
            P[i, j, y0:y1, x0:x1] = 1.0 / ((y1 - y0) * (x1 - x0))
    pend[fx_name] = (P.reshape(oh * ow, h * w), h, w)
    return src


def load_state_dict(path):
    with gfmodel.open_regular(path):
        pass
    try:
        ck = torch.load(path, map_location="cpu")
    except Exception as e:  # pickle / zip errors
        raise gfmodel.BadInput("%s: not a PyTorch checkpoint (%s)" % (path, str(e).strip().splitlines()[0]))
    if isinstance(ck, dict):
        for k in ("state_dict", "model", "model_state_dict"):
            if k in ck and isinstance(ck[k], dict):
                ck = ck[k]
                break
    if isinstance(ck, nn.Module):
        ck = ck.state_dict()
    if not isinstance(ck, dict) or not all(torch.is_tensor(v) for v in ck.values()):
        raise gfmodel.BadInput("%s: expected a state_dict (name -> tensor) or a checkpoint dict holding one under "
                               "'state_dict', 'model' or 'model_state_dict'" % path)
    return {k[7:] if k.startswith("module.") else k: v for k, v in ck.items()}


def build(arch, num_classes):
    """torchvision.models.<arch>(weights=None, num_classes=...), for any classification architecture."""
    names = torchvision.models.list_models(module=torchvision.models)
    if arch not in names:
        near = [a for a in names if a.startswith(arch[:4])] or names
        raise gfmodel.ConvertError("--arch %s: not a torchvision classification model (e.g. %s)" %
                                   (arch, ", ".join(near[:12])))
    return torchvision.models.get_model(arch, weights=None, num_classes=num_classes)


def from_factory(spec, num_classes):
    import importlib
    if ":" not in spec:
        raise gfmodel.ConvertError("--factory %s: expected MODULE:FUNCTION, e.g. mynet:build" % spec)
    mod, fn = spec.split(":", 1)
    sys.path.insert(0, os.getcwd())
    try:
        f = getattr(importlib.import_module(mod), fn)
    except ImportError as e:
        raise gfmodel.ConvertError("--factory %s: cannot import %s (%s)" % (spec, mod, e))
    except AttributeError:
        raise gfmodel.ConvertError("--factory %s: module %s has no %s" % (spec, mod, fn))
    m = f(num_classes=num_classes) if num_classes else f()
    if not isinstance(m, nn.Module):
        raise gfmodel.ConvertError("--factory %s returned %s, not a torch.nn.Module" % (spec, type(m).__name__))
    return m


def from_module_file(path):
    with gfmodel.open_regular(path):
        pass
    try:
        m = torch.load(path, map_location="cpu")
    except Exception as e:
        raise gfmodel.BadInput("%s: cannot load (%s); expected torch.save(model, FILE) of an nn.Module "
                               "(for a state_dict use --arch/--factory with --weights)" %
                               (path, str(e).strip().splitlines()[0]))
    if not isinstance(m, nn.Module):
        raise gfmodel.BadInput("%s holds a %s, not an nn.Module (for a state_dict use --arch/--factory with "
                               "--weights)" % (path, type(m).__name__))
    return m


def make_parser():
    ap = gfmodel.argument_parser(__doc__)
    ap.add_argument("out", help="the .safetensors file to write")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--arch", help="torchvision.models architecture name")
    src.add_argument("--factory", metavar="MOD:FUNC", help="your own builder: MOD.FUNC() returns the nn.Module")
    src.add_argument("--module-file", metavar="F.pt", help="a module saved with torch.save(model, F.pt)")
    ap.add_argument("--weights", help="state_dict or checkpoint (.pth) to load into the model")
    ap.add_argument("--num-classes", type=int, help="output units (default: from --weights or the classes, else 1000)")
    ap.add_argument("--classes", default="", help="comma-separated class names, one per output unit")
    ap.add_argument("--classes-file", help="class names, one per line")
    ap.add_argument("--input-size", type=int, default=224, help="square input size in pixels (default 224)")
    ap.add_argument("--channels", type=int, default=3, choices=(1, 3),
                    help="input channels: 3 (RGB, ImageNet mean/std) or 1 (gray, mean 0.5, std 0.5)")
    ap.add_argument("--preprocess", help="gradfeat.preprocess JSON (models/README.md) instead of the default")
    ap.add_argument("--random-seed", type=int, default=0, help="seed of the random init without --weights")
    return ap


def main(argv=None):
    args = make_parser().parse_args(argv)
    if args.input_size < 1 or (args.num_classes is not None and args.num_classes < 1):
        raise gfmodel.ConvertError("--input-size and --num-classes must be positive")
    classes = [c for c in args.classes.split(",") if c]
    if args.classes_file:
        with gfmodel.open_regular(args.classes_file, "r") as f:
            classes = [l.strip() for l in f if l.strip()]
    sd = load_state_dict(args.weights) if args.weights else None
    nc = args.num_classes or (len(classes) if classes else None)
    if nc is None and sd is not None:
        last = [k for k in sd if k.endswith(".weight") and sd[k].dim() == 2]
        nc = sd[last[-1]].shape[0] if last else None
    torch.manual_seed(args.random_seed)
    if args.arch:
        model = build(args.arch, nc or 1000)
    elif args.factory:
        model = from_factory(args.factory, nc)
    else:
        model = from_module_file(args.module_file)
    if sd is not None:
        try:
            model.load_state_dict(sd)
        except RuntimeError as e:
            raise gfmodel.ConvertError("--weights %s do not fit the model: %s" %
                                       (args.weights, " ".join(str(e).split())[:600]), gfmodel.EXIT_BAD_INPUT)
    pre = dict(IMAGENET_PRE, input_size=[args.input_size, args.input_size],
               resize_shorter=int(round(args.input_size * 256 / 224)))
    if args.channels == 1:
        pre.update(channels=1, color_order="GRAY", mean=[0.5], std=[0.5])
    if args.preprocess:
        try:
            pre = json.loads(args.preprocess)
        except ValueError as e:
            raise gfmodel.ConvertError("--preprocess: not valid JSON (%s)" % e)
    g = convert_module(model, args.input_size, args.channels)
    gfmodel.write(args.out, g, pre, classes)
    print("wrote %s: %d nodes, %d tensors, outputs %s, feature %s" %
          (args.out, len(g.nodes), len(g.tensors), g.outputs, g.feature))


if __name__ == "__main__":
    gfmodel.run_main("convert_torchvision", main)
