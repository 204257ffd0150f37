#!/usr/bin/python3
"""Convert an ONNX CNN (NCHW, one image input) into a gradfeat .safetensors model (models/README.md).
gradfeat also reads .onnx files itself, as the model of any command (`gradfeat convert model.onnx
out.safetensors` writes the same model, host/graph/onnx_import.c): this tool adds --classes and --preprocess.

Supported ops: Conv, Gemm, MatMul(+Add), BatchNormalization, Relu, LeakyRelu, Clip(0,6), Sigmoid,
HardSigmoid (beta 0.5), HardSwish, MaxPool and AveragePool (ceil_mode as extra bottom/right padding),
GlobalAveragePool, ReduceMean over H,W, Add, Mul of two tensors (equal shapes or a per-channel gate:
SiLU/swish and squeeze-excitation), Concat over channels, Flatten, Reshape to [N,-1], Softmax,
Identity, Dropout, a constant zero Pad of H,W (folded into the Conv or AveragePool that reads it; torch
writes one before every AveragePool with count_include_pad), GELU as torch exports it (Div by sqrt 2 -> Erf
-> Add 1 -> Mul by x -> Mul by 0.5, or the Gelu op of opset 20), LayerNorm as torch exports it (ReduceMean,
Sub, Pow, ReduceMean, Add eps, Sqrt, Div, then Mul/Add by gamma/beta: a layernorm node and a depthwise 1x1
conv) over channels, or as the LayerNormalization op of opset 17, and ConvNeXt's channels-last blocks (Transpose to NHWC and back; MatMul+Add on NHWC
become 1x1 convs; Mul by a [C, 1, 1] constant, the layer scale, a depthwise 1x1 conv), Slice of a range of
channels (torch's x.chunk), and ShuffleNet's channel shuffle (Reshape to [N, G, C/G, H, W], Transpose [0, 2, 1, 3, 4],
Reshape back). Shape arithmetic (Shape, Gather, Unsqueeze, Concat, Cast, Add, Div, ... on integers, as torch
writes it for x.size() and for a symbolic batch size, which is read as 1) is evaluated on the static shapes
first. Any other op is listed (with the nodes using it) and the tool exits with status 2.

Exit codes: 0 written; 2 bad command line or an op/attribute gradfeat cannot represent (each one named);
5 the input is missing, unreadable or not an ONNX model; 1 an internal error (a bug: traceback).
"""
import json
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gfmodel  # noqa: E402

SUPPORTED = {"Conv", "Gemm", "MatMul", "BatchNormalization", "Relu", "LeakyRelu", "Clip", "MaxPool",
             "AveragePool", "GlobalAveragePool", "ReduceMean", "Add", "Flatten", "Reshape", "Softmax",
             "Identity", "Dropout", "Constant", "Sigmoid", "HardSigmoid", "HardSwish", "Mul", "Concat", "Gelu", "Pad",
             "Transpose", "LayerNormalization", "Slice"}


def _const(inits, name, value, tol=1e-6):
    """True when initializer `name` is a scalar (any shape of one element) equal to value."""
    v = inits.get(name)
    return v is not None and np.size(v) == 1 and abs(float(np.ravel(v)[0]) - value) <= tol * max(1.0, abs(value))


def _producers_users(gr):
    """{output name: the node producing it}, {input name: the nodes reading it} of an ONNX graph."""
    prod = {o: n for n in gr.node for o in n.output}
    users = {}
    for n in gr.node:
        for i in n.input:
            users.setdefault(i, []).append(n)
    return prod, users


def gelu_patterns(gr, inits):
    """torch.onnx's erf GELU: y = Mul(Mul(x, Add(Erf(Div(x, sqrt2)), 1)), 0.5) (either operand order of each
    Mul/Add, Div or Mul by 1/sqrt2). Returns ({output of the last Mul: (x, the last Mul node)}, {names of the
    absorbed nodes' outputs}) so that the converter emits one gelu node and skips the rest."""
    prod, users = _producers_users(gr)
    found, absorbed = {}, set()

    def other(n, known):  # the input of a 2-input node that is not `known`
        return n.input[1] if n.input[0] == known else n.input[0] if n.input[1] == known else None

    for erf in (n for n in gr.node if n.op_type == "Erf"):
        div = prod.get(erf.input[0])
        if div is None or len(div.input) != 2:
            continue
        if div.op_type == "Div" and _const(inits, div.input[1], np.sqrt(2.0), 1e-5):
            x = div.input[0]
        elif div.op_type == "Mul" and (_const(inits, div.input[1], 1 / np.sqrt(2.0), 1e-5) or
                                       _const(inits, div.input[0], 1 / np.sqrt(2.0), 1e-5)):
            x = div.input[0] if div.input[0] not in inits else div.input[1]
        else:
            continue
        u = users.get(erf.output[0], [])
        if len(u) != 1 or u[0].op_type != "Add" or not _const(inits, other(u[0], erf.output[0]) or "", 1.0):
            continue
        add = u[0]
        u = users.get(add.output[0], [])
        if len(u) != 1 or u[0].op_type != "Mul" or other(u[0], add.output[0]) != x:
            continue
        m1 = u[0]
        u = users.get(m1.output[0], [])
        if len(u) != 1 or u[0].op_type != "Mul" or not _const(inits, other(u[0], m1.output[0]) or "", 0.5):
            continue
        m2 = u[0]
        found[m2.output[0]] = (x, m2)
        absorbed.update(n.output[0] for n in (div, erf, add, m1))   # by output name: protobuf wrappers are not stable
    return found, absorbed


def layernorm_patterns(gr, inits):
    """torch.onnx's LayerNorm over the last axis: d = Sub(x, ReduceMean(x)); y = Div(d, Sqrt(Add(ReduceMean(Pow(d,
    2)), eps))), then optionally Mul(y, gamma) and Add(., beta) with constant [C] gamma, beta. Returns
    ({output of the last node: (x, axis, eps, gamma, beta)}, {outputs of the absorbed nodes})."""
    prod, users = _producers_users(gr)
    found, absorbed = {}, set()

    def axes(n):
        a = attrs_of(n).get("axes")
        if a is None and len(n.input) > 1 and n.input[1] in inits:
            a = list(np.ravel(inits[n.input[1]]))
        return [int(v) for v in a] if a is not None else None

    def only_user(name, op):
        u = users.get(name, [])
        return u[0] if len(u) == 1 and u[0].op_type == op else None

    for sub in (n for n in gr.node if n.op_type == "Sub"):
        rm = prod.get(sub.input[1])
        if rm is None or rm.op_type != "ReduceMean" or rm.input[0] != sub.input[0] or axes(rm) is None or \
                len(axes(rm)) != 1 or not attrs_of(rm).get("keepdims", 1):
            continue
        x, ax = sub.input[0], axes(rm)[0]
        d = sub.output[0]
        du = users.get(d, [])
        pw = next((u for u in du if u.op_type == "Pow" and _const(inits, u.input[1], 2.0)), None)
        dv = next((u for u in du if u.op_type == "Div" and u.input[0] == d), None)
        if pw is None or dv is None or len(du) != 2:
            continue
        rm2 = only_user(pw.output[0], "ReduceMean")
        add = rm2 and only_user(rm2.output[0], "Add")
        sq = add and only_user(add.output[0], "Sqrt")
        if not sq or axes(rm2) != axes(rm) or dv.input[1] != sq.output[0]:
            continue
        epsname = add.input[1] if add.input[0] == rm2.output[0] else add.input[0]
        if epsname not in inits or np.size(inits[epsname]) != 1:
            continue
        chain, last, gamma, beta = [rm, sub, pw, rm2, add, sq], dv, None, None
        m = only_user(dv.output[0], "Mul")
        if m is not None:
            g_ = m.input[1] if m.input[0] == dv.output[0] else m.input[0]
            if g_ in inits and np.ndim(inits[g_]) == 1:
                chain.append(last)
                last, gamma = m, inits[g_]
                a = only_user(m.output[0], "Add")
                b_ = a and (a.input[1] if a.input[0] == m.output[0] else a.input[0])
                if a is not None and b_ in inits and np.ndim(inits[b_]) == 1:
                    chain.append(last)
                    last, beta = a, inits[b_]
        found[last.output[0]] = (x, ax, float(np.ravel(inits[epsname])[0]), gamma, beta)
        absorbed.update(n.output[0] for n in chain)
    return found, absorbed


# Shape arithmetic that torch.onnx writes where a module computes sizes from x.size() (ShuffleNetV2's
# x.chunk(2, dim=1): Shape -> Gather -> Add -> Div -> Mul -> Slice ends): with static shapes every value is
# known, so fold_shape_arithmetic evaluates these ops on integer constants and static shapes only
SHAPE_OPS = {"Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast", "Add", "Sub", "Mul", "Div", "Slice",
             "Identity"}


def _static_shapes(gr):
    """{tensor name: [dims]} from the graph's inputs, outputs and inferred value_info (-1: not static)."""
    shapes = {}
    for vi in list(gr.value_info) + list(gr.input) + list(gr.output):
        if vi.type.tensor_type.HasField("shape"):   # else the rank is unknown too
            shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else -1 for d in vi.type.tensor_type.shape.dim]
    return shapes


def _eval_shape_op(n, v, shapes):
    """The value of node n on known inputs v (arrays; None for an absent optional input), or None when the
    node is not integer shape arithmetic."""
    op, a = n.op_type, attrs_of(n)
    if op == "Shape":
        s = shapes.get(n.input[0])
        if s is None or min(s, default=0) < 0:
            return None
        return np.array(s[a.get("start", 0):a.get("end", len(s))], np.int64)
    ints = [x for x in v if x is not None]
    if not ints or any(x.dtype.kind not in "iub" for x in ints):  # float maths is the converter's, not folded
        return None
    if op == "Cast":
        to = onnx.helper.tensor_dtype_to_np_dtype(a["to"]) if hasattr(onnx.helper, "tensor_dtype_to_np_dtype") \
            else onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[a["to"]]   # onnx < 1.13
        return v[0].astype(to) if np.dtype(to).kind in "iub" else None
    if op == "Identity":
        return v[0]
    if op == "Gather":
        return np.take(v[0], v[1], axis=a.get("axis", 0))
    if op in ("Unsqueeze", "Squeeze"):
        axes = a.get("axes", list(v[1]) if len(v) > 1 and v[1] is not None else None)
        if op == "Squeeze":
            return np.squeeze(v[0], axis=None if axes is None else tuple(int(x) % v[0].ndim for x in axes))
        out = v[0]
        nd = out.ndim + len(axes)
        for ax in sorted(int(x) % nd for x in axes):
            out = np.expand_dims(out, ax)
        return out
    if op == "Concat":
        return np.concatenate(v, axis=a["axis"])
    if op in ("Add", "Sub", "Mul"):
        return {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}[op](v[0], v[1])
    if op == "Div":   # ONNX integer division truncates toward zero
        q = np.abs(v[0]) // np.abs(v[1])
        return (np.sign(v[0]) * np.sign(v[1]) * q).astype(np.result_type(v[0], v[1]))
    if op == "Slice":
        x = v[0]
        starts, ends = (v[1], v[2]) if len(v) > 2 else (a["starts"], a["ends"])
        axes = v[3] if len(v) > 3 and v[3] is not None else a.get("axes", range(len(starts)))
        steps = v[4] if len(v) > 4 and v[4] is not None else [1] * len(starts)
        idx = [slice(None)] * x.ndim
        for st, en, ax, sp in zip(starts, ends, axes, steps):
            idx[int(ax)] = slice(int(st), int(en), int(sp))
        return x[tuple(idx)]
    return None


def fold_shape_arithmetic(model):
    """Evaluates SHAPE_OPS nodes whose inputs are integer constants or (Shape) tensors of static shape, and
    returns the model with their results as initializers and shapes re-inferred (repeated while something
    folds: a Slice with folded ends gets a static shape that a later Shape can read)."""
    while True:   # ends: every round removes the nodes it folds
        gr = model.graph
        shapes = _static_shapes(gr)
        vals = {i.name: numpy_helper.to_array(i) for i in gr.initializer}
        for n in gr.node:
            if n.op_type == "Constant" and "value" in attrs_of(n):
                vals[n.output[0]] = numpy_helper.to_array(attrs_of(n)["value"])
        folded = {}
        for n in gr.node:
            if n.op_type not in SHAPE_OPS or len(n.output) != 1:
                continue
            if n.op_type == "Shape":
                v = [None]
            elif all(not i or i in vals for i in n.input):
                v = [vals[i] if i else None for i in n.input]
            else:
                continue
            r = _eval_shape_op(n, v, shapes)
            if r is not None:
                vals[n.output[0]] = folded[n.output[0]] = np.asarray(r)
        if not folded:
            return model
        read = {i for n in gr.node if n.output[0] not in folded for i in n.input} | {o.name for o in gr.output}
        keep = [n for n in gr.node if n.output[0] not in folded]
        new = onnx.helper.make_graph(keep, gr.name, gr.input, gr.output,
                                     list(gr.initializer) + [numpy_helper.from_array(v, k) for k, v in folded.items()
                                                             if k in read])
        m = onnx.helper.make_model(new, opset_imports=model.opset_import, ir_version=model.ir_version)
        try:
            model = shape_inference.infer_shapes(m)
        except Exception as e:
            raise gfmodel.BadInput("ONNX shape inference failed after folding shape arithmetic: %s" %
                                   str(e).strip().splitlines()[0])


def shuffle_patterns(gr, inits, shapes):
    """torch.onnx's channel shuffle (ShuffleNetV2's channel_shuffle(x, G)): Reshape x [N, C, H, W] to
    [N, G, C/G, H, W], Transpose perm [0, 2, 1, 3, 4], Reshape back to [N, C, H, W]. Returns ({output of the
    last Reshape: (x, G)}, {outputs of the absorbed Reshape and Transpose})."""
    prod, users = _producers_users(gr)
    found, absorbed = {}, set()
    for tr in (n for n in gr.node if n.op_type == "Transpose"):
        if [int(v) for v in attrs_of(tr).get("perm", [])] != [0, 2, 1, 3, 4]:
            continue
        r1, u = prod.get(tr.input[0]), users.get(tr.output[0], [])
        if r1 is None or r1.op_type != "Reshape" or len(u) != 1 or u[0].op_type != "Reshape" or \
                len(users.get(r1.output[0], [])) != 1:
            continue
        r2, x = u[0], r1.input[0]
        xs, mid, ys = shapes.get(x, []), shapes.get(r1.output[0], []), shapes.get(r2.output[0], [])
        if len(xs) != 4 or min(xs) <= 0 or ys != xs or len(mid) != 5 or mid[0] != xs[0] or mid[3:] != xs[2:] or \
                mid[1] * mid[2] != xs[1]:
            continue
        found[r2.output[0]] = (x, mid[1])
        absorbed.update((r1.output[0], tr.output[0]))
    return found, absorbed


def _channel_slice(n, a, inits, xs, name):
    """(start, end) of channels that Slice node n takes from an NCHW map of shape xs (every other axis whole,
    steps 1), or raises Unsupported naming the node."""
    def const(i, key):
        if len(n.input) > i and n.input[i]:
            if n.input[i] not in inits:
                raise gfmodel.Unsupported("node %s: Slice %s is computed from the activations, not a constant"
                                          % (name, key))
            return [int(v) for v in np.ravel(inits[n.input[i]])]
        return [int(v) for v in a[key]] if key in a else None
    starts, ends = const(1, "starts"), const(2, "ends")
    axes = const(3, "axes") or list(range(len(starts)))
    steps = const(4, "steps") or [1] * len(starts)
    lo, hi = [0, 0, 0, 0], list(xs)
    for st, en, ax, sp in zip(starts, ends, axes, steps):
        ax %= 4
        d = xs[ax]
        st, en = (st + d if st < 0 else st), (en + d if en < 0 else en)
        lo[ax], hi[ax] = max(0, min(st, d)), max(0, min(en, d))
        if sp != 1:
            raise gfmodel.Unsupported("node %s: Slice with step %d not supported (only channels, step 1)" % (name, sp))
    if lo[0] or lo[2:] != [0, 0] or hi[0] != xs[0] or hi[2:] != xs[2:] or hi[1] <= lo[1]:
        raise gfmodel.Unsupported("node %s: Slice [%s] of a %s map not supported (only a range of channels)" %
                                  (name, ", ".join("%d:%d" % (p, q) for p, q in zip(lo, hi)), xs))
    return lo[1], hi[1]


def _ceil_pad(in_hw, k, s, pads):
    """Extra bottom/right padding that makes floor-mode pooling give ceil_mode's output size (a last window
    must start inside the input or its left padding, as in ONNX/PyTorch)."""
    pads = list(pads)
    for ax in (0, 1):
        span = in_hw[ax] + pads[ax] + pads[ax + 2]
        out = -(-(span - k[ax]) // s[ax]) + 1
        if (out - 1) * s[ax] >= in_hw[ax] + pads[ax]:
            out -= 1
        pads[ax + 2] += max((out - 1) * s[ax] + k[ax] - span, 0)
    return pads


def clean_name(node):
    """'/layer1/layer1.0/conv1/Conv' -> 'layer1.0.conv1', '/stage2/stage2.1/branch2/branch2.0/Conv' ->
    'stage2.1.branch2.0' (PyTorch-export scopes to module paths: a scope that extends the one before it with
    '.index' names that one's child)."""
    comps = [c for c in (node.name or "").split("/") if c]
    if len(comps) > 1:
        comps = comps[:-1]
    elif comps and comps[0].startswith(node.op_type):
        comps = []
    res, last = "", ""
    for c in comps:
        res = c if not res else res + c[len(last):] if c.startswith(last + ".") else res + "." + c
        last = c
    return res or node.op_type.lower()


def attrs_of(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def auto_pads(auto_pad, in_hw, k, s, d):
    if auto_pad in ("", "NOTSET", b"NOTSET", b""):
        return None
    if isinstance(auto_pad, bytes):
        auto_pad = auto_pad.decode()
    if auto_pad == "VALID":
        return [0, 0, 0, 0]
    p = []
    for ax in (0, 1):
        out = -(-in_hw[ax] // s[ax])
        total = max((out - 1) * s[ax] + (k[ax] - 1) * d[ax] + 1 - in_hw[ax], 0)
        small, big = total // 2, total - total // 2
        p.append((small, big) if auto_pad == "SAME_UPPER" else (big, small))
    return [p[0][0], p[1][0], p[0][1], p[1][1]]


def convert(model):
    model = onnx.ModelProto.FromString(model.SerializeToString())   # the caller's model stays as it was
    inits0 = {i.name for i in model.graph.initializer}
    for i in model.graph.input:   # a symbolic batch size (dynamic_axes) is 1 here: gradfeat's graph is per image,
        d = i.type.tensor_type.shape.dim   # and the shape arithmetic below needs every size
        if i.name not in inits0 and len(d) == 4 and not d[0].HasField("dim_value"):
            d[0].dim_value = 1
    try:
        model = shape_inference.infer_shapes(model)
    except Exception as e:  # onnx raises its own InferenceError / ValidationError types
        raise gfmodel.BadInput("ONNX shape inference failed: %s" % str(e).strip().splitlines()[0])
    model = fold_shape_arithmetic(model)
    gr = model.graph
    inits = {i.name: numpy_helper.to_array(i) for i in gr.initializer}
    for n in gr.node:
        if n.op_type == "Constant":
            inits[n.output[0]] = numpy_helper.to_array(attrs_of(n)["value"])
        elif n.op_type == "Identity" and n.input[0] in inits:
            # torch.onnx.export keeps one copy of equal initializers (e.g. every fresh BatchNorm's
            # ones/zeros) and reads the others through Identity nodes: follow them
            inits[n.output[0]] = inits[n.input[0]]
    shapes = _static_shapes(gr)
    gelus, absorbed = gelu_patterns(gr, inits)
    lns, ln_absorbed = layernorm_patterns(gr, inits)
    absorbed |= ln_absorbed
    shuffles, sh_absorbed = shuffle_patterns(gr, inits, shapes)
    absorbed |= sh_absorbed
    for n in gr.node:   # opset 17's single op: the same as the subgraph (scale, bias: constants)
        if n.op_type == "LayerNormalization":
            at = attrs_of(n)
            if any(i not in inits for i in n.input[1:] if i) or len(n.output) > 1 and any(n.output[1:]):
                raise gfmodel.Unsupported("node %s: LayerNormalization with computed scale/bias or statistics "
                                          "outputs not supported" % (n.name or n.output[0]))
            lns[n.output[0]] = (n.input[0], int(at.get("axis", -1)), float(at.get("epsilon", 1e-5)),
                                inits[n.input[1]] if len(n.input) > 1 and n.input[1] else None,
                                inits[n.input[2]] if len(n.input) > 2 and n.input[2] else None)
    bad = {}
    for n in gr.node:
        if n.output[0] in absorbed or n.output[0] in gelus or n.output[0] in lns or n.output[0] in shuffles:
            continue
        if n.op_type not in SUPPORTED:
            bad.setdefault(n.op_type, []).append(n.name or n.output[0])
    if bad:
        lines = ["%s (%d nodes, e.g. %s)" % (op, len(v), v[0]) for op, v in sorted(bad.items())]
        raise gfmodel.Unsupported("unsupported ops (gradfeat has no equivalent): " + "; ".join(lines))
    inputs = [i for i in gr.input if i.name not in inits]
    if len(inputs) != 1:
        raise gfmodel.Unsupported("need exactly one image input, found %s" % [i.name for i in inputs])
    ish = shapes[inputs[0].name]
    if len(ish) != 4 or min(ish[1:]) <= 0:
        raise gfmodel.Unsupported("input %s: need static NCHW shape, got %s" % (inputs[0].name, ish))
    g = gfmodel.Graph("input", ish[1:])
    ours = {inputs[0].name: "input"}

    def W(name, key, arr):
        return g.tensor(g.unique(name) + "." + key if (name + "." + key) in g.tensors else name + "." + key, arr)

    def init(key, node):
        if key not in inits:
            raise gfmodel.Unsupported("node %s (%s): input %s is computed, not a constant weight" %
                                      (node.name or node.output[0], node.op_type, key))
        return inits[key]

    readers = {}
    for n in gr.node:
        for i in n.input:
            readers.setdefault(i, []).append(n.op_type)
    nhwc = set()  # tensors that are an NHWC (Transpose [0,2,3,1]) view of one of our NCHW maps (ConvNeXt)
    padded = {}  # output of a zero Pad -> (its input, [t, l, b, r]) for the Conv/AveragePool reading it

    def unpad(x, node):
        """(source, extra [t, l, b, r]) of input x: a folded Pad's input and its pads, else x and zeros."""
        if x in padded:
            if attrs_of(node).get("auto_pad", "NOTSET") not in ("NOTSET", b"NOTSET", "", b""):
                raise gfmodel.Unsupported("node %s: a Pad before an auto_pad %s" % (node.name or node.output[0],
                                                                                  node.op_type))
            if node.op_type == "AveragePool" and any(attrs_of(node).get("pads", [0, 0, 0, 0])) and \
                    not attrs_of(node).get("count_include_pad", 0):
                raise gfmodel.Unsupported("node %s: a Pad before an AveragePool that pads without counting" %
                                          (node.name or node.output[0]))
            return padded[x]
        return x, [0, 0, 0, 0]

    for n in gr.node:
        op, a = n.op_type, attrs_of(n)
        if op == "Constant" or (op == "Identity" and n.output[0] in inits) or n.output[0] in absorbed:
            continue
        if op == "Pad":
            mode = a.get("mode", b"constant")
            mode = mode.decode() if isinstance(mode, bytes) else mode
            pads = list(a["pads"]) if "pads" in a else [int(v) for v in init(n.input[1], n)] if len(n.input) > 1 else []
            value = float(a.get("value", 0.0)) if len(n.input) < 3 or not n.input[2] else float(np.ravel(init(n.input[2], n))[0])
            if mode != "constant" or value != 0 or len(pads) != 8 or pads[0] or pads[1] or pads[4] or pads[5] or \
                    min(pads) < 0:
                raise gfmodel.Unsupported("node %s: Pad %s (value %s, pads %s) not supported (only zeros around H,W)"
                                          % (n.name or n.output[0], mode, value, pads))
            tlbr = [pads[2], pads[3], pads[6], pads[7]]
            if not any(tlbr):
                ours[n.output[0]] = ours.get(n.input[0])
            elif all(r in ("Conv", "AveragePool") for r in readers.get(n.output[0], [])):
                padded[n.output[0]] = (n.input[0], tlbr)
            else:
                raise gfmodel.Unsupported("node %s: a non-zero Pad read by %s (it folds only into Conv or AveragePool)"
                                          % (n.name or n.output[0], sorted(set(readers.get(n.output[0], [])))))
            continue
        name = g.unique(clean_name(n))
        x, extra = unpad(n.input[0], n) if n.input else (None, [0, 0, 0, 0])
        src = ours.get(x)
        xs = shapes.get(x, [])
        out = n.output[0]
        if any(i in nhwc for i in n.input) and not (out in gelus or out in lns or op in (
                "Transpose", "MatMul", "Add", "Relu", "Sigmoid", "Identity", "Dropout")):
            raise gfmodel.Unsupported("node %s: %s on an NHWC view of a map (after a Transpose) not supported" %
                                      (n.name or out, op))
        if out in shuffles:  # the channel-shuffle Reshape/Transpose/Reshape, recognised above
            ours[out] = g.add(name, "shuffle", [ours[shuffles[out][0]]], None, {"groups": int(shuffles[out][1])})
        elif out in gelus:  # the erf GELU subgraph, recognised above
            ours[out] = g.add(name, "gelu", [ours[gelus[out][0]]], None, {"approximate": "none"})
            if gelus[out][0] in nhwc:
                nhwc.add(out)
        elif out in lns:  # the LayerNorm subgraph: over channels (NHWC last axis, NCHW axis 1, or a flat vector)
            x0, ax, eps, gamma, beta = lns[out]
            sh = shapes.get(x0, [])
            C = sh[-1] if x0 in nhwc else sh[1] if len(sh) > 1 else -1
            over_c = (x0 in nhwc and ax in (-1, 3)) or (x0 not in nhwc and len(sh) == 4 and ax in (1, -3)) or \
                     (len(sh) == 2 and ax in (1, -1))
            if gamma is not None and np.ndim(gamma) > 1 or beta is not None and np.ndim(beta) > 1:
                over_c = False
            if not over_c or (gamma is not None and np.size(gamma) != C) or (beta is not None and np.size(beta) != C):
                raise gfmodel.Unsupported("node %s: LayerNorm over axis %s of a %s tensor (only over channels)" %
                                          (n.name or out, ax, "NHWC" if x0 in nhwc else sh))
            y = g.add(name, "layernorm", [ours[x0]], None, {"eps": eps})
            if gamma is not None or beta is not None:
                params = {"weight": W(name, "weight", (np.ones(C) if gamma is None else gamma).reshape(C, 1, 1, 1))}
                if beta is not None:
                    params["bias"] = W(name, "bias", np.ravel(beta))
                y = g.add(name + ".affine", "conv2d", [y], params, {"groups": C})
            ours[out] = y
            if x0 in nhwc:
                nhwc.add(out)
        elif op == "Transpose":
            perm = [int(v) for v in a.get("perm", [])]
            if perm == [0, 2, 3, 1] and x not in nhwc and len(xs) == 4:
                nhwc.add(out)
            elif not (perm == [0, 3, 1, 2] and x in nhwc):
                raise gfmodel.Unsupported("node %s: Transpose %s not supported (only NCHW <-> NHWC around a channels-"
                                          "last LayerNorm)" % (n.name or out, perm))
            ours[out] = src
        elif op == "MatMul" and x in nhwc:   # a Linear on NHWC: a 1x1 conv
            if n.input[1] not in inits:
                raise gfmodel.Unsupported("node %s: MatMul of two activations not supported" % n.name)
            wt = inits[n.input[1]].T
            ours[out] = g.add(name, "conv2d", [src], {"weight": W(name, "weight", wt.reshape(wt.shape[0], wt.shape[1], 1, 1))})
            nhwc.add(out)
        elif op == "Conv":
            w = init(n.input[1], n)
            k = list(a.get("kernel_shape", w.shape[2:]))
            s = list(a.get("strides", [1, 1]))
            d = list(a.get("dilations", [1, 1]))
            pads = auto_pads(a.get("auto_pad", ""), xs[2:], k, s, d)
            if pads is None:
                p = list(a.get("pads", [0, 0, 0, 0]))
                pads = [p[0], p[1], p[2], p[3]]
            pads = [u + v for u, v in zip(pads, extra)]
            params = {"weight": W(name, "weight", w)}
            if len(n.input) > 2 and n.input[2]:
                params["bias"] = W(name, "bias", init(n.input[2], n))
            ours[out] = g.add(name, "conv2d", [src], params,
                              {"stride": s, "pad": pads, "dilation": d, "groups": int(a.get("group", 1))})
        elif op == "Gemm":
            if a.get("transA", 0):
                raise gfmodel.Unsupported("node %s: Gemm transA=1 not supported" % n.name)
            w = init(n.input[1], n) * a.get("alpha", 1.0)
            if not a.get("transB", 0):
                w = w.T
            params = {"weight": W(name, "weight", w)}
            if len(n.input) > 2 and n.input[2]:
                params["bias"] = W(name, "bias", np.broadcast_to(init(n.input[2], n) * a.get("beta", 1.0), (w.shape[0],)))
            ours[out] = g.add(name, "linear", [src], params)
        elif op == "MatMul":
            if n.input[1] not in inits:
                raise gfmodel.Unsupported("node %s: MatMul of two activations not supported" % n.name)
            ours[out] = g.add(name, "linear", [src], {"weight": W(name, "weight", inits[n.input[1]].T)})
        elif op == "BatchNormalization":
            params = {k: W(name, k, init(i, n)) for k, i in
                      zip(("weight", "bias", "running_mean", "running_var"), n.input[1:5])}
            ours[out] = g.add(name, "batchnorm", [src], params, {"eps": float(a.get("epsilon", 1e-5))})
        elif op == "Relu":
            ours[out] = g.add(name, "relu", [src])
        elif op == "LeakyRelu":
            ours[out] = g.add(name, "leaky_relu", [src], None, {"alpha": float(a.get("alpha", 0.01))})
        elif op == "Clip":
            lo = a.get("min", float(init(n.input[1], n)) if len(n.input) > 1 and n.input[1] else None)
            hi = a.get("max", float(init(n.input[2], n)) if len(n.input) > 2 and n.input[2] else None)
            if lo == 0 and hi == 6:
                ours[out] = g.add(name, "relu6", [src])
            elif lo == 0 and hi is None:
                ours[out] = g.add(name, "relu", [src])
            else:
                raise gfmodel.Unsupported("node %s: Clip(%s, %s) not supported (only relu/relu6)" % (n.name, lo, hi))
        elif op in ("MaxPool", "AveragePool"):
            k = list(a["kernel_shape"])
            s = list(a.get("strides", [1, 1]))
            if list(a.get("dilations", [1, 1])) != [1, 1]:
                raise gfmodel.Unsupported("node %s: pooling dilation not supported" % n.name)
            pads = auto_pads(a.get("auto_pad", ""), xs[2:], k, s, [1, 1])
            include = bool(a.get("count_include_pad", 0))
            if pads is None:
                pads = list(a.get("pads", [0, 0, 0, 0]))
            elif op == "AveragePool":
                include = False
            if any(extra):  # a folded zero Pad: padding that the mean counts
                pads = [u + v for u, v in zip(pads, extra)]
                include = True
            if a.get("ceil_mode", 0):  # extra bottom/right padding: never wins a max, never counted in the mean
                if op == "AveragePool" and include:
                    raise gfmodel.Unsupported("node %s: AveragePool ceil_mode=1 with count_include_pad=1 not "
                                              "supported" % n.name)
                pads = _ceil_pad(xs[2:], k, s, pads)
            attrs = {"kernel": k, "stride": s, "pad": pads}
            if op == "AveragePool":
                attrs["count_include_pad"] = include
            ours[out] = g.add(name, "maxpool" if op == "MaxPool" else "avgpool", [src], None, attrs)
        elif op == "GlobalAveragePool":
            ours[out] = g.add(name, "global_avgpool", [src])
        elif op == "ReduceMean":
            axes = a.get("axes")
            if axes is None and len(n.input) > 1:
                axes = list(init(n.input[1], n))
            if sorted(int(v) % 4 for v in axes) != [2, 3]:
                raise gfmodel.Unsupported("node %s: ReduceMean over %s not supported (only H,W)" % (n.name, axes))
            ours[out] = g.add(name, "global_avgpool", [src])
        elif op == "Add":
            a0, a1 = n.input[0], n.input[1]
            if a1 in inits or a0 in inits:  # bias after MatMul
                c, xin = (inits[a1], a0) if a1 in inits else (inits[a0], a1)
                prev = next((nd for nd in g.nodes if nd["name"] == ours[xin]), None)
                if prev is not None and prev["op"] == "conv2d" and xin in nhwc and "bias" not in prev.get("params", {}):
                    prev.setdefault("params", {})["bias"] = W(prev["name"], "bias", np.ravel(c))
                    ours[out] = ours[xin]
                    nhwc.add(out)
                    continue
                if prev is None or prev["op"] != "linear" or "bias" in prev.get("params", {}):
                    raise gfmodel.Unsupported("node %s: Add of a constant only supported as a MatMul bias" % n.name)
                prev.setdefault("params", {})["bias"] = W(prev["name"], "bias", np.ravel(c))
                ours[out] = ours[xin]
            else:
                if (a0 in nhwc) != (a1 in nhwc):
                    raise gfmodel.Unsupported("node %s: Add of an NHWC view and an NCHW map" % (n.name or out))
                ours[out] = g.add(name, "add", [ours[a0], ours[a1]])
                if a0 in nhwc:
                    nhwc.add(out)
        elif op in ("Flatten", "Reshape"):
            if op == "Flatten" and a.get("axis", 1) != 1:
                raise gfmodel.Unsupported("node %s: Flatten axis %s not supported" % (n.name, a.get("axis")))
            if op == "Reshape":
                tgt = list(init(n.input[1], n))
                if len(tgt) != 2 or tgt[0] not in (0, 1, -1, ish[0]):
                    raise gfmodel.Unsupported("node %s: Reshape to %s not supported (only [N,-1])" % (n.name, tgt))
            ours[out] = g.add(name, "flatten", [src])
        elif op == "Softmax":
            if a.get("axis", -1) not in (1, -1):
                raise gfmodel.Unsupported("node %s: Softmax axis %s not supported" % (n.name, a.get("axis")))
            ours[out] = g.add(name, "softmax", [src])
        elif op == "Sigmoid":
            ours[out] = g.add(name, "sigmoid", [src])
        elif op == "HardSigmoid":
            if abs(a.get("beta", 0.5) - 0.5) > 1e-7:
                raise gfmodel.Unsupported("node %s: HardSigmoid beta %s not supported (only 0.5)" % (n.name, a.get("beta")))
            ours[out] = g.add(name, "hardsigmoid", [src], None, {"alpha": float(a.get("alpha", 0.2))})
        elif op == "HardSwish":
            ours[out] = g.add(name, "hardswish", [src])
        elif op == "Gelu":
            ours[out] = g.add(name, "gelu", [src], None, {"approximate": a.get("approximate", b"none").decode()
                                                          if isinstance(a.get("approximate"), bytes)
                                                          else a.get("approximate", "none")})
        elif op == "Mul":
            a0, a1 = n.input[0], n.input[1]
            if (a0 in inits) != (a1 in inits):   # a per-channel scale of an NCHW map (ConvNeXt's layer_scale)
                k_, x_ = (a0, a1) if a0 in inits else (a1, a0)
                v, sx = inits[k_], shapes.get(x_, [])
                if x_ not in nhwc and len(sx) == 4 and np.size(v) == sx[1] and \
                        tuple(np.shape(v)) in ((sx[1], 1, 1), (1, sx[1], 1, 1)):
                    ours[out] = g.add(name, "conv2d", [ours[x_]], {"weight": W(name, "weight", np.reshape(v, (sx[1], 1, 1, 1)))},
                                      {"groups": sx[1]})
                    continue
            if a0 in inits or a1 in inits:
                raise gfmodel.Unsupported("node %s: Mul by a constant not supported (only products of two tensors or a "
                                          "per-channel scale [C, 1, 1] of a map)" % (n.name or out))
            s0, s1 = shapes.get(a0, []), shapes.get(a1, [])
            gate = lambda p, q: len(p) == 4 and len(q) == 4 and p[:2] == q[:2] and q[2:] == [1, 1]
            if not (s0 == s1 or gate(s0, s1) or gate(s1, s0)):
                raise gfmodel.Unsupported("node %s: Mul of shapes %s and %s (equal shapes or a per-channel gate only)"
                                          % (n.name or out, s0, s1))
            ours[out] = g.add(name, "mul", [ours[a0], ours[a1]])
        elif op == "Concat" and len(n.input) == 1:  # torch.cat of a one-map list (DenseNet's first layer)
            ours[out] = ours[n.input[0]]
        elif op == "Concat":
            if a.get("axis") not in (1, -3) or any(len(shapes.get(i, [])) != 4 for i in n.input) or len(n.input) < 2:
                raise gfmodel.Unsupported("node %s: Concat axis %s of %d inputs not supported (channels of 2..64 "
                                          "NCHW maps)" % (n.name or out, a.get("axis"), len(n.input)))
            ours[out] = g.add(name, "concat", [ours[i] for i in n.input])
        elif op == "Slice":   # a range of channels (torch's x.chunk / split, ends folded from the shape)
            if len(xs) != 4 or min(xs) <= 0:
                raise gfmodel.Unsupported("node %s: Slice of a %s tensor not supported (only channels of a static NCHW "
                                          "map)" % (n.name or out, xs))
            lo, hi = _channel_slice(n, a, inits, xs, n.name or out)
            ours[out] = src if (lo, hi) == (0, xs[1]) else g.add(name, "slice", [src], None, {"start": lo, "end": hi})
        elif op in ("Identity", "Dropout"):
            ours[out] = src
        if x in nhwc and op in ("Relu", "Sigmoid", "Identity", "Dropout"):
            nhwc.add(out)
    g.outputs = [ours[o.name] for o in gr.output]
    byname = {nd["name"]: nd for nd in g.nodes}
    for nd in reversed(g.nodes):
        if nd["op"] == "linear":
            f = nd["inputs"][0]
            while f in byname and byname[f]["op"] == "flatten" and byname[byname[f]["inputs"][0]]["op"] == "global_avgpool":
                f = byname[f]["inputs"][0]
            g.feature = f
            break
    return g


def load(path):
    with gfmodel.open_regular(path) as f:
        data = f.read()
    try:
        return onnx.load_model_from_string(data)
    except Exception as e:  # google.protobuf DecodeError and friends
        raise gfmodel.BadInput("%s: not an ONNX model (%s: %s)" % (path, type(e).__name__, str(e).strip() or "parse error"))


def make_parser():
    ap = gfmodel.argument_parser(__doc__)
    ap.add_argument("model", help="the .onnx file (one NCHW image input with a static shape)")
    ap.add_argument("out", help="the .safetensors file to write")
    ap.add_argument("--classes", default="", help="comma-separated class names, one per output unit")
    ap.add_argument("--preprocess", help="gradfeat.preprocess JSON (models/README.md); default: ImageNet "
                    "mean/std, shorter side to size*256/224, centre crop")
    return ap


def main(argv=None):
    args = make_parser().parse_args(argv)
    pre = None
    if args.preprocess:
        try:
            pre = json.loads(args.preprocess)
        except ValueError as e:
            raise gfmodel.ConvertError("--preprocess: not valid JSON (%s)" % e)
    g = convert(load(args.model))
    c, h, w = g.input["shape"]
    pre = pre or {
        "input_size": [h, w], "channels": c, "color_order": "RGB" if c == 3 else "GRAY",
        "resize": "shorter_center_crop", "resize_shorter": int(round(h * 256 / 224)), "interpolation": "bilinear",
        "mean": [0.485, 0.456, 0.406][:c] if c == 3 else [0.5], "std": [0.229, 0.224, 0.225][:c] if c == 3 else [0.5]}
    gfmodel.write(args.out, g, pre, [s for s in args.classes.split(",") if s])
    print("wrote %s: %d nodes, %d tensors, outputs %s, feature %s" %
          (args.out, len(g.nodes), len(g.tensors), g.outputs, g.feature))


if __name__ == "__main__":
    gfmodel.run_main("convert_onnx", main)
