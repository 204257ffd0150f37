#!/usr/bin/python3
"""Convert a TensorFlow.js model (graph model or layers model, model.json + weight shards) into a
gradfeat .safetensors model (models/README.md).

TF.js tensors are NHWC; gradfeat is NCHW: conv kernels HWIO -> OIHW, depthwise HWCM -> [C*M,1,kh,kw]
with groups=C, dense kernels [in,out] -> [out,in] (rows permuted when a Flatten of an NHWC map
precedes them). TF 'SAME' padding becomes explicit (possibly asymmetric) pads; SAME average pooling
excludes the padding from the count. Weights may be float32, float16 or uint8/uint16-quantised.

The model may also come in the '.min.js' packaging some npm packages ship (nsfwjs): model.min.js is a
JavaScript module exporting the model.json object, and each weight shard a .min.js exporting its bytes
as base64; pass model.min.js as the model (shards are found as <path> or <path>.min.js).
Keras ZeroPadding2D (and a graph model's zero Pad) folds into the convolution that reads it.

Exit codes: 0 written; 2 bad command line, or a layer/op gradfeat cannot represent (named);
5 the model or a weight shard is missing, unreadable or malformed; 1 an internal error (a bug: traceback).
"""
import base64
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gfmodel  # noqa: E402


def read_shard(base_dir, p):
    """Bytes of one weight shard: a binary file, or a '.min.js' module exporting them as base64."""
    path = os.path.join(base_dir, p)
    if not os.path.exists(path) and os.path.exists(path + ".min.js"):
        path += ".min.js"
    if path.endswith(".js"):
        v = gfmodel.read_js_module_export(path)
        if not isinstance(v, str):
            raise gfmodel.BadInput("%s: exports a %s, expected a base64 string of weight bytes" % (path, type(v).__name__))
        try:
            return base64.b64decode(v, validate=True)
        except ValueError as e:
            raise gfmodel.BadInput("%s: exported string is not base64 (%s)" % (path, e))
    with gfmodel.open_regular(path) as f:
        return f.read()


def load_weights(model_json, base_dir):
    """Decode every weights manifest entry into float32/int32 numpy arrays."""
    out = {}
    for group in model_json.get("weightsManifest", []):
        blob = b"".join(read_shard(base_dir, p) for p in group["paths"])
        off = 0
        need = 0
        for w in group["weights"]:
            n = int(np.prod([int(v) for v in w["shape"]])) if w["shape"] else 1
            dt = (w.get("quantization") or {}).get("dtype") or w.get("dtype", "float32")
            need += n * {"uint8": 1, "uint16": 2, "float16": 2}.get(dt, 4)
        if need > len(blob):
            raise gfmodel.BadInput("weight shards %s hold %d bytes, the manifest needs %d" %
                                   (", ".join(group["paths"]), len(blob), need))
        for w in group["weights"]:
            shape = [int(s) for s in w["shape"]]
            n = int(np.prod(shape)) if shape else 1
            q = w.get("quantization")
            dt = w.get("dtype", "float32")
            if q:
                qdt = q["dtype"]
                if qdt == "float16":
                    arr = np.frombuffer(blob, dtype="<f2", count=n, offset=off).astype(np.float32)
                    off += 2 * n
                elif qdt in ("uint8", "uint16"):
                    size = 1 if qdt == "uint8" else 2
                    raw = np.frombuffer(blob, dtype="u1" if size == 1 else "<u2", count=n, offset=off)
                    off += size * n
                    arr = raw.astype(np.float32) * np.float32(q["scale"]) + np.float32(q["min"])
                else:
                    raise SystemExit("weight %s: unsupported quantization dtype %s" % (w["name"], qdt))
            elif dt == "float32":
                arr = np.frombuffer(blob, dtype="<f4", count=n, offset=off).copy()
                off += 4 * n
            elif dt == "int32":
                arr = np.frombuffer(blob, dtype="<i4", count=n, offset=off).copy()
                off += 4 * n
            elif dt == "float16":
                arr = np.frombuffer(blob, dtype="<f2", count=n, offset=off).astype(np.float32)
                off += 2 * n
            else:
                raise SystemExit("weight %s: unsupported dtype %s" % (w["name"], dt))
            out[w["name"]] = arr.reshape(shape)
    return out


def _attr_list(attr, key):
    v = attr.get(key, {}).get("list", {})
    if "i" in v:
        return [int(x) for x in v["i"]]
    if "s" in v:
        return [base64.b64decode(x).decode() for x in v["s"]]
    return []


def _attr_s(attr, key, default=None):
    v = attr.get(key)
    return base64.b64decode(v["s"]).decode() if v and "s" in v else default


def _attr_f(attr, key, default):
    v = attr.get(key)
    return float(v["f"]) if v and "f" in v else default


class Conv:
    """Builds our nodes while tracking [C,H,W] shapes (needed for SAME padding)."""

    def __init__(self, g):
        self.g = g
        self.shape = {}      # our node name -> [C,H,W] or [F]
        self.nhwc_flat = {}  # flatten node -> (H, W, C) of the NHWC map it came from

    def pads(self, src, kh, kw, sh, sw, dh, dw, padding, explicit=None):
        _, h, w = self.shape[src]
        if padding == "VALID":
            return [0, 0, 0, 0]
        if padding == "SAME":
            t, b = gfmodel.tf_same_pad(h, kh, sh, dh)
            l, r = gfmodel.tf_same_pad(w, kw, sw, dw)
            return [t, l, b, r]
        if padding == "EXPLICIT" and explicit:
            e = explicit  # NHWC pairs
            return [e[2], e[4], e[3], e[5]]
        raise SystemExit("padding %s not supported" % padding)

    def conv(self, name, src, w_oihw, bias, stride, pad, dil, groups):
        name = self.g.unique(name)
        c, h, w = self.shape[src]
        o, _, kh, kw = w_oihw.shape
        params = {"weight": self.g.tensor(name + ".weight", w_oihw)}
        if bias is not None:
            params["bias"] = self.g.tensor(name + ".bias", bias)
        n = self.g.add(name, "conv2d", [src], params,
                       {"stride": stride, "pad": pad, "dilation": dil, "groups": groups})
        oh = (h + pad[0] + pad[2] - dil[0] * (kh - 1) - 1) // stride[0] + 1
        ow = (w + pad[1] + pad[3] - dil[1] * (kw - 1) - 1) // stride[1] + 1
        self.shape[n] = [o, oh, ow]
        return n

    def linear(self, name, src, w_in_out, bias):
        name = self.g.unique(name)
        w = np.asarray(w_in_out, dtype=np.float32)
        if src in self.nhwc_flat:  # rows are in NHWC flatten order: reorder to NCHW
            h, wd, c = self.nhwc_flat[src]
            w = w.reshape(h, wd, c, -1).transpose(2, 0, 1, 3).reshape(h * wd * c, -1)
        params = {"weight": self.g.tensor(name + ".weight", w.T)}
        if bias is not None:
            params["bias"] = self.g.tensor(name + ".bias", bias)
        n = self.g.add(name, "linear", [src], params)
        self.shape[n] = [w.shape[1]]
        return n

    def simple(self, name, op, inputs, attrs=None, shape=None):
        n = self.g.add(name, op, inputs, None, attrs)
        self.shape[n] = shape if shape is not None else list(self.shape[inputs[0]])
        return n

    def act(self, name, kind, src, alpha=None):
        if kind == "Relu" or kind == "relu":
            return self.simple(name, "relu", [src])
        if kind in ("Relu6", "relu6"):
            return self.simple(name, "relu6", [src])
        if kind in ("LeakyRelu", "leaky_relu", "leakyrelu"):
            return self.simple(name, "leaky_relu", [src], {"alpha": alpha if alpha is not None else 0.2})
        if kind in ("linear", None, ""):
            return src
        if kind == "softmax":
            return self.simple(name, "softmax", [src])
        raise SystemExit("activation %s not supported (node %s)" % (kind, name))

    def pool(self, name, op, src, k, s, padding):
        pad = self.pads(src, k[0], k[1], s[0], s[1], 1, 1, padding)
        c, h, w = self.shape[src]
        attrs = {"kernel": k, "stride": s, "pad": pad}
        if op == "avgpool":
            attrs["count_include_pad"] = False  # TF never counts padding
        n = self.g.add(name, op, [src], None, attrs)
        self.shape[n] = [c, (h + pad[0] + pad[2] - k[0]) // s[0] + 1, (w + pad[1] + pad[3] - k[1]) // s[1] + 1]
        return n

    def flatten(self, name, src):
        sh = self.shape[src]
        n = self.simple(name, "flatten", [src], shape=[int(np.prod(sh))])
        if len(sh) == 3 and sh[1] * sh[2] > 1:
            self.nhwc_flat[n] = (sh[1], sh[2], sh[0])
        return n


def short_names(nodes):
    names = [n["name"] for n in nodes if n["op"] not in ("Const", "Placeholder") and "/" in n["name"]]
    parts = [n.split("/") for n in names]
    common = 0
    if parts:
        while all(len(p) > common + 1 and p[common] == parts[0][common] for p in parts):
            common += 1
    return lambda full: "/".join(full.split("/")[common:]) if full.count("/") >= common else full


def layer_of(tf_name, short):
    s = short(tf_name)
    return s.split("/")[0] if "/" in s else s


def _ins(n):
    return [i.split(":")[0] for i in n.get("input", []) if not i.startswith("^")]


def prune_to(nodes, outputs):
    """The nodes the TF nodes `outputs` depend on (in file order): a detection head or post-processing that
    the kept outputs do not read is dropped before any op is looked at."""
    by_name = {n["name"]: n for n in nodes}
    missing = [o for o in outputs if o not in by_name]
    if missing:
        raise gfmodel.ConvertError("--output %s: no such node in the graph (e.g. %s)" %
                                   (missing[0], ", ".join(n["name"] for n in nodes if n["op"] != "Const")[-400:]))
    keep, stack = set(), list(outputs)
    while stack:
        cur = stack.pop()
        if cur in keep or cur not in by_name:
            continue
        keep.add(cur)
        stack.extend(i.lstrip("^") for i in _ins(by_name[cur]))
    return [n for n in nodes if n["name"] in keep]


HARD_CONST = 1e-3  # TF's 1/6 in a float16 export is 0.1666259765625 (2.4e-4 below): accepted as 1/6


def hard_activations(nodes, consts, outputs=()):
    """Finds TF's MobileNetV3 activations spelled out in elementary ops and returns ({final node: (op, x)},
    {inner nodes}): hard_swish  mul(mul(x, 1/6), relu6(add(x, 3)))  -> hardswish(x);
    hard_sigmoid  mul(1/6, relu6(add(x, 3)))  -> hardsigmoid(x). The inner nodes must feed nothing else
    and be none of the `outputs` (--output).
    The float16 export stores 1/6 as 0.1666259765625; gradfeat computes the exact 1/6 (2.4e-4 relative:
    models/centernet/README.md gives what that does to the features)."""
    by_name = {n["name"]: n for n in nodes}
    users = {}
    for n in nodes:
        for i in _ins(n):
            users.setdefault(i, set()).add(n["name"])
    for o in outputs:  # a node kept as an output is read from outside: it cannot vanish into a fused node
        users.setdefault(o, set()).add("--output")

    def cval(name):
        v = consts.get(name)
        return float(np.ravel(v)[0]) if v is not None and np.size(v) == 1 else None

    def sixth(name):
        v = cval(name)
        return v is not None and abs(6 * v - 1) <= HARD_CONST

    def relu6_plus3(name):  # relu6(add(x, 3)) -> (x, add node)
        r = by_name.get(name)
        if not r or r["op"] != "Relu6":
            return None
        a = by_name.get(_ins(r)[0])
        if not a or a["op"] not in ("Add", "AddV2"):
            return None
        i = _ins(a)
        for x, k in ((i[0], i[1]), (i[1], i[0])):
            if cval(k) == 3.0:
                return x, a["name"]
        return None

    fused, inner = {}, set()
    for n in nodes:
        if n["op"] != "Mul" or len(_ins(n)) != 2:
            continue
        p, q = _ins(n)
        for u, v in ((p, q), (q, p)):
            r = relu6_plus3(v)
            if r is None:
                continue
            x, add = r
            un = by_name.get(u)
            if un is not None and un["op"] == "Mul" and len(_ins(un)) == 2:
                a, b = _ins(un)
                if (sixth(a) and b == x) or (sixth(b) and a == x):
                    fused[n["name"]] = ("hardswish", x)
                    parts = {u, v, add}
                    break
            elif sixth(u):
                fused[n["name"]] = ("hardsigmoid", x)
                parts = {v, add}
                break
        else:
            continue
        for t in parts:
            if users.get(t, set()) - parts - {n["name"]}:
                raise gfmodel.Unsupported("node %s: part of a hard activation (%s) but also read by %s" %
                                          (t, n["name"], sorted(users[t] - parts - {n["name"]})[0]))
        inner |= parts
    return fused, inner


def convert_graph_model(mj, weights, feature, outputs=None, input_size=None):
    nodes = mj["modelTopology"]["node"]
    if outputs:
        nodes = prune_to(nodes, outputs)
    short = short_names(nodes)
    consts = dict(weights)
    ph = [n for n in nodes if n["op"] == "Placeholder"]
    if len(ph) != 1:
        raise SystemExit("expected one Placeholder input, found %d" % len(ph))
    dims = [int(d.get("size", -1)) for d in ph[0]["attr"]["shape"]["shape"]["dim"]]
    if len(dims) != 4:
        raise SystemExit("input %s: expected NHWC rank 4, got %s" % (ph[0]["name"], dims))
    if input_size:
        dims[1], dims[2] = input_size
    if min(dims[1:]) < 1:
        raise gfmodel.ConvertError("input %s has an unknown size %s: give --input-size" % (ph[0]["name"], dims))
    g = gfmodel.Graph("input", [dims[3], dims[1], dims[2]])
    cv = Conv(g)
    cv.shape["input"] = [dims[3], dims[1], dims[2]]
    ours = {ph[0]["name"]: "input"}  # TF node name -> our node name
    supported = {"Const", "Placeholder", "Identity", "_FusedConv2D", "Conv2D", "DepthwiseConv2dNative",
                 "FusedDepthwiseConv2dNative", "MaxPool", "AvgPool", "AddV2", "Add", "BiasAdd", "Relu",
                 "Relu6", "LeakyRelu", "Mean", "Softmax", "MatMul", "_FusedMatMul", "Reshape", "Flatten",
                 "Squeeze", "FusedBatchNorm", "FusedBatchNormV3", "StopGradient", "Pad", "PadV2", "Mul"}
    bad = sorted({n["op"] for n in nodes} - supported)
    if bad:
        raise SystemExit("unsupported TF.js ops: " + ", ".join(bad))
    for n in nodes:
        if n["op"] == "Const" and n["name"] not in consts:
            t = n.get("attr", {}).get("value", {}).get("tensor")
            if t is not None and "intVal" in t:
                consts[n["name"]] = np.array([int(v) for v in t["intVal"]])
    hard, hard_inner = hard_activations(nodes, consts, outputs or ())
    # nested scopes (tower_0/MobilenetV3/expanded_conv_3/squeeze_excite/Conv/...): node names from the scope path
    nested = outputs is not None

    def scoped(tf_name):
        s = short(tf_name)
        for tail in ("/BatchNorm/FusedBatchNormV3", "/BatchNorm/FusedBatchNorm", "/Relu6", "/Relu", "/BiasAdd",
                     "/depthwise", "/mul_1"):
            if s.endswith(tail) and s.count("/") >= 1:
                s = s[:-len(tail)]
                break
        return s.replace("/", ".")

    tfpads = {}  # Pad node -> (its input, [t, l, b, r]): folded into the conv that reads it

    def inp(name, reader=None):
        name = name.split(":")[0]
        if name.startswith("^"):
            return None
        if name in tfpads and reader is not None:
            raise gfmodel.Unsupported("node %s reads the zero padding %s; gradfeat folds zero padding only into a "
                                      "following convolution" % (reader, name))
        return ours.get(name)

    by_name = {n["name"]: n for n in nodes}
    done = set(ours)
    order = []

    def visit(n):  # topological order over the TF graph
        stack = [(n, False)]
        while stack:
            cur, exp = stack.pop()
            if cur["name"] in done:
                continue
            if exp:
                done.add(cur["name"])
                order.append(cur)
                continue
            stack.append((cur, True))
            for i in cur.get("input", []):
                i = i.split(":")[0].lstrip("^")
                if i in by_name and i not in done:
                    stack.append((by_name[i], False))
    for n in nodes:
        visit(n)

    for n in order:
        op, attr, name = n["op"], n.get("attr", {}), n["name"]
        ins = [i for i in n.get("input", []) if not i.startswith("^")]
        base = short(name).replace("/", ".")
        if op in ("Const", "Placeholder") or name in hard_inner:
            continue
        lay = scoped(name) if nested else layer_of(name, short)
        if name in hard:
            kind, x = hard[name]
            ours[name] = cv.simple(lay if kind == "hardswish" else lay + ".hard_sigmoid", kind, [inp(x, name)])
            continue
        if op == "Mul":
            a, b = ins[0].split(":")[0], ins[1].split(":")[0]
            if a in consts or b in consts:
                raise gfmodel.Unsupported("node %s: product with a constant not supported (only hard_swish / "
                                          "hard_sigmoid as MobileNetV3 writes them, and products of two maps)" % name)
            sa, sb = cv.shape[inp(a, name)], cv.shape[inp(b, name)]
            gate = lambda p_, q_: len(p_) == 3 and len(q_) == 3 and p_[0] == q_[0] and q_[1:] == [1, 1]
            if not (sa == sb or gate(sa, sb) or gate(sb, sa)):
                raise gfmodel.Unsupported("node %s: product of shapes %s and %s (equal shapes or a per-channel gate "
                                          "only)" % (name, sa, sb))
            ours[name] = cv.simple(lay, "mul", [inp(a, name), inp(b, name)], shape=max(sa, sb, key=lambda v: v[1:]))
            continue
        if op in ("Identity", "StopGradient"):
            if ins[0].split(":")[0] in tfpads:
                tfpads[name] = tfpads[ins[0].split(":")[0]]
                ours[name] = ours[ins[0].split(":")[0]]
                continue
            ours[name] = inp(ins[0])
            continue
        if op in ("Pad", "PadV2"):
            p = np.asarray(consts[ins[1].split(":")[0]]).reshape(-1)
            if p.size != 8 or p[0] or p[1] or p[6] or p[7] or min(p) < 0:
                raise gfmodel.Unsupported("node %s: %s of %s (only zero padding of H and W)" % (name, op, p.tolist()))
            if op == "PadV2" and float(np.ravel(consts[ins[2].split(":")[0]])[0]) != 0.0:
                raise gfmodel.Unsupported("node %s: PadV2 with a non-zero constant" % name)
            src = inp(ins[0], name)
            tfpads[name] = (src, [int(p[2]), int(p[4]), int(p[3]), int(p[5])])
            c_, h_, w_ = cv.shape[src]
            ours[name] = name
            cv.shape[name] = [c_, h_ + int(p[2]) + int(p[3]), w_ + int(p[4]) + int(p[5])]
            continue
        if op in ("_FusedConv2D", "Conv2D", "DepthwiseConv2dNative", "FusedDepthwiseConv2dNative"):
            src0 = ins[0].split(":")[0]
            ps = inp(ins[0])  # the (maybe zero-padded) map whose shape the conv's own padding rule sees
            src, zpad = tfpads.get(src0, (ps, [0, 0, 0, 0]))
            w = consts[ins[1].split(":")[0]]
            st = _attr_list(attr, "strides") or [1, 1, 1, 1]
            dl = _attr_list(attr, "dilations") or [1, 1, 1, 1]
            kh, kw = w.shape[0], w.shape[1]
            pad = cv.pads(ps, kh, kw, st[1], st[2], dl[1], dl[2], _attr_s(attr, "padding", "VALID"),
                          _attr_list(attr, "explicit_paddings"))
            pad = [a_ + b_ for a_, b_ in zip(pad, zpad)]
            if "Depthwise" in op:
                c, m = w.shape[2], w.shape[3]
                wt = w.transpose(2, 3, 0, 1).reshape(c * m, 1, kh, kw)
                groups = c
            else:
                wt = w.transpose(3, 2, 0, 1)
                groups = 1
            wname = ins[1].split(":")[0]
            lname = layer_of(wname, short)
            if lname.startswith("unknown") or lname == wname:
                lname = layer_of(name, short)
            if nested:
                lname = scoped(name)
            fused = _attr_list(attr, "fused_ops")
            bias = None
            rest = fused
            if fused[:1] == ["BiasAdd"]:
                bias = consts[ins[2].split(":")[0]]
                rest = fused[1:]
            if "Depthwise" in op and not nested:
                lname += ".depthwise"
            cnode = cv.conv(lname, src, wt, bias, [st[1], st[2]], pad, [dl[1], dl[2]], groups)
            lname = cnode
            if fused[:1] == ["FusedBatchNorm"]:
                sc, of, mu, var = (consts[i.split(":")[0]] for i in ins[2:6])
                params = {k: g.tensor(lname + ".bn." + k, v) for k, v in
                          (("weight", sc), ("bias", of), ("running_mean", mu), ("running_var", var))}
                conv_node = cnode
                cnode = g.add(lname + ".bn", "batchnorm", [cnode], params,
                              {"eps": _attr_f(attr, "epsilon", 1e-3)})
                cv.shape[cnode] = list(cv.shape[conv_node])
                rest = fused[1:]
            for a in rest:
                cnode = cv.act(layer_of(name, short) if layer_of(name, short) != lname and not nested else
                               lname + "." + a.lower(),
                               a, cnode, _attr_f(attr, "leakyrelu_alpha", 0.2))
            ours[name] = cnode
        elif op in ("MaxPool", "AvgPool"):
            k = _attr_list(attr, "ksize")
            s = _attr_list(attr, "strides")
            ours[name] = cv.pool(layer_of(name, short), "maxpool" if op == "MaxPool" else "avgpool",
                                 inp(ins[0], name), [k[1], k[2]], [s[1], s[2]], _attr_s(attr, "padding", "VALID"))
        elif op in ("AddV2", "Add", "BiasAdd"):
            a, b = ins[0].split(":")[0], ins[1].split(":")[0]
            if b in consts or a in consts:
                raise SystemExit("node %s: add of a constant not supported (fold it into a conv)" % name)
            ours[name] = cv.simple(lay, "add", [inp(ins[0], name), inp(ins[1], name)])
        elif op in ("Relu", "Relu6", "LeakyRelu"):
            ours[name] = cv.act(lay, op, inp(ins[0], name), _attr_f(attr, "alpha", 0.2))
        elif op == "Mean":
            axes = sorted(int(v) % 4 for v in np.ravel(consts[ins[1].split(":")[0]]))
            if axes != [1, 2]:
                raise SystemExit("node %s: Mean over axes %s not supported (only spatial)" % (name, axes))
            src = inp(ins[0], name)
            keep = bool(attr.get("keep_dims", {}).get("b"))  # [C, 1, 1]: a squeeze-excitation's 1x1 convs read it
            ours[name] = cv.simple(lay, "global_avgpool", [src],
                                   shape=[cv.shape[src][0]] + ([1, 1] if keep else []))
        elif op == "Softmax":
            ours[name] = cv.simple(layer_of(name, short), "softmax", [inp(ins[0], name)])
        elif op in ("Reshape", "Flatten", "Squeeze"):
            src = inp(ins[0], name)
            sh = cv.shape[src]
            ours[name] = src if len(sh) == 1 or (sh[1] == 1 and sh[2] == 1 and op == "Squeeze") else \
                cv.flatten(layer_of(name, short), src)
        elif op in ("MatMul", "_FusedMatMul"):
            w = consts[ins[1].split(":")[0]]
            if attr.get("transpose_b", {}).get("b"):
                w = w.T
            fused = _attr_list(attr, "fused_ops")
            bias = consts[ins[2].split(":")[0]] if fused[:1] == ["BiasAdd"] else None
            lname = layer_of(name, short)
            src = inp(ins[0], name)
            if len(cv.shape[src]) == 3 and cv.shape[src][1] * cv.shape[src][2] > 1:
                src = cv.flatten(lname + ".flatten", src)
            node = cv.linear(lname, src, w, bias)
            for a in fused[1:]:
                node = cv.act(lname + "." + a.lower(), a, node, _attr_f(attr, "leakyrelu_alpha", 0.2))
            ours[name] = node
        elif op in ("FusedBatchNorm", "FusedBatchNormV3"):
            sc, of, mu, var = (consts[i.split(":")[0]] for i in ins[1:5])
            lname = g.unique(layer_of(name, short))
            params = {k: g.tensor(lname + "." + k, v) for k, v in
                      (("weight", sc), ("bias", of), ("running_mean", mu), ("running_var", var))}
            ours[name] = cv.simple(lname, "batchnorm", [inp(ins[0], name)],
                                   {"eps": _attr_f(attr, "epsilon", 1e-3)})
            g.nodes[-1]["params"] = params
        else:
            raise SystemExit("op %s (node %s) not supported" % (op, name))

    if outputs:  # each named node must have become a node of ours (not the input, a constant, a folded Pad)
        real = {nd["name"] for nd in g.nodes}
        for o in outputs:
            if ours.get(o) not in real:
                raise gfmodel.Unsupported("--output %s: a %s node, not a computed map (the input, a constant or "
                                          "a zero padding that folds into the next convolution)" %
                                          (o, by_name[o]["op"]))
    outs = outputs or [o for o in (mj.get("userDefinedMetadata", {}).get("signature", {}).get("outputs", {}) or {})]
    out_nodes = [ours[o.split(":")[0]] for o in outs if o.split(":")[0] in ours]
    if not out_nodes:
        consumed = {i for nd in g.nodes for i in nd["inputs"]}
        out_nodes = [nd["name"] for nd in g.nodes if nd["name"] not in consumed]
    g.outputs = out_nodes
    set_feature(g, cv, feature)
    return g


def set_feature(g, cv, feature):
    if feature is None:
        # default: the last conv feature map before the classification head (global-average-pooled), i.e.
        # the last node with a spatial map larger than 1x1; else the input of the last linear layer
        maps = [nd["name"] for nd in g.nodes if len(cv.shape.get(nd["name"], [])) == 3 and
                cv.shape[nd["name"]][1] * cv.shape[nd["name"]][2] > 1]
        if maps:
            feature = maps[-1]
        else:
            for nd in reversed(g.nodes):
                if nd["op"] in ("linear", "global_avgpool"):
                    g.feature = nd["inputs"][0] if nd["op"] == "linear" else nd["name"]
                    return
            return
    names = {nd["name"] for nd in g.nodes}
    if feature not in names:
        raise gfmodel.ConvertError("--feature %s: no such node (e.g. %s; gradfeat info lists them all)" %
                                   (feature, ", ".join([nd["name"] for nd in g.nodes][-12:])))
    if len(cv.shape[feature]) == 3 and cv.shape[feature][1] * cv.shape[feature][2] > 1:
        gap = [nd["name"] for nd in g.nodes if nd["op"] == "global_avgpool" and nd["inputs"] == [feature]]
        feature = gap[0] if gap else \
            cv.simple(feature + ".gap", "global_avgpool", [feature], shape=[cv.shape[feature][0]])
    g.feature = feature


def convert_layers_model(mj, weights, feature):
    topo = mj["modelTopology"]
    cfg = topo.get("model_config", topo)
    cls, conf = cfg["class_name"], cfg["config"]
    layers = conf["layers"] if isinstance(conf, dict) else conf
    sequential = cls == "Sequential"
    first = layers[0]["config"]
    shape = first.get("batch_input_shape") or conf.get("build_input_shape") if isinstance(conf, dict) else None
    if not shape:
        shape = first.get("batch_input_shape")
    if not shape or len(shape) != 4:
        raise SystemExit("layers model: need an NHWC image input, got %s" % (shape,))
    g = gfmodel.Graph("input", [shape[3], shape[1], shape[2]])
    cv = Conv(g)
    cv.shape["input"] = [shape[3], shape[1], shape[2]]
    ours = {}
    zeropads = {}  # ZeroPadding2D layer -> (its input, [t, l, b, r])
    prev = "input"

    def W(layer, key):
        for k in (layer + "/" + key, layer + "/" + layer + "/" + key):
            if k in weights:
                return weights[k]
        cands = [k for k in weights if k.endswith("/" + key) and ("/" + layer + "/" in "/" + k)]
        if cands:
            return weights[cands[0]]
        return None

    for L in layers:
        kind, c = L["class_name"], L["config"]
        name = c.get("name", L.get("name"))
        if sequential:
            srcs = [prev]
        else:
            inb = L.get("inbound_nodes", [])
            srcs = []
            for i in (inb[0] if inb else []):
                src_name = i[0] if isinstance(i, list) else i.get("args", [{}])[0].get("config", {}).get("keras_history", [None])[0]
                if src_name not in ours:
                    raise SystemExit("layer %s: input layer %s not converted (unsupported or out of order)" % (L["config"].get("name"), src_name))
                srcs.append(ours[src_name])
            if not srcs and L["class_name"] != "InputLayer":
                raise SystemExit("layer %s: no inbound nodes" % L["config"].get("name"))
        if kind == "InputLayer":
            ours[name] = "input"
            prev = "input"
            continue
        s = ps = srcs[0]  # ps: the (maybe zero-padded) map whose shape the conv's own padding rule sees
        zpad = [0, 0, 0, 0]  # a ZeroPadding2D in front: folded into this conv's own padding
        if s in zeropads:
            s, zpad = zeropads[s]
            if kind not in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D"):
                raise gfmodel.Unsupported("layer %s (%s) reads ZeroPadding2D output; gradfeat folds zero padding only "
                                          "into a following Conv2D/DepthwiseConv2D/SeparableConv2D" % (name, kind))
        if kind == "ZeroPadding2D":
            pd = c.get("padding", [[1, 1], [1, 1]])
            if isinstance(pd, int):
                pd = [[pd, pd], [pd, pd]]
            pd = [[v, v] if isinstance(v, int) else list(v) for v in pd]
            if c.get("data_format", "channels_last") != "channels_last":
                raise gfmodel.Unsupported("layer %s: ZeroPadding2D data_format %s" % (name, c.get("data_format")))
            zeropads[name] = (s, [pd[0][0], pd[1][0], pd[0][1], pd[1][1]])  # [t, l, b, r]
            c_, h_, w_ = cv.shape[s]
            ours[name] = name
            cv.shape[name] = [c_, h_ + pd[0][0] + pd[0][1], w_ + pd[1][0] + pd[1][1]]
            prev = name
            continue
        if kind in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D"):
            st = c.get("strides", [1, 1])
            dl = c.get("dilation_rate", [1, 1])
            if isinstance(dl, int):
                dl = [dl, dl]
            pad_mode = c.get("padding", "valid").upper()
            bias = W(name, "bias") if c.get("use_bias", True) else None
            if kind == "Conv2D":
                k = W(name, "kernel")
                pad = cv.pads(ps, k.shape[0], k.shape[1], st[0], st[1], dl[0], dl[1], pad_mode)
                node = cv.conv(name, s, k.transpose(3, 2, 0, 1), bias, list(st), [a + b for a, b in zip(pad, zpad)],
                               list(dl), 1)
            else:
                dk = W(name, "depthwise_kernel")
                cc, m = dk.shape[2], dk.shape[3]
                pad = cv.pads(ps, dk.shape[0], dk.shape[1], st[0], st[1], dl[0], dl[1], pad_mode)
                pad = [a + b for a, b in zip(pad, zpad)]
                dw = dk.transpose(2, 3, 0, 1).reshape(cc * m, 1, dk.shape[0], dk.shape[1])
                if kind == "DepthwiseConv2D":
                    node = cv.conv(name, s, dw, bias, list(st), pad, list(dl), cc)
                else:
                    node = cv.conv(name + ".depthwise", s, dw, None, list(st), pad, list(dl), cc)
                    pk = W(name, "pointwise_kernel")
                    node = cv.conv(name, node, pk.transpose(3, 2, 0, 1), bias, [1, 1], [0, 0, 0, 0], [1, 1], 1)
            node = cv.act(name + "." + c.get("activation", "linear"), c.get("activation", "linear"), node)
        elif kind == "Dense":
            src = s
            if len(cv.shape[src]) == 3 and cv.shape[src][1] * cv.shape[src][2] > 1:
                src = cv.flatten(name + ".flatten", src)
            node = cv.linear(name, src, W(name, "kernel"), W(name, "bias") if c.get("use_bias", True) else None)
            node = cv.act(name + "." + c.get("activation", "linear"), c.get("activation", "linear"), node)
        elif kind == "BatchNormalization":
            params = {}
            for key, ours_key in (("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"),
                                  ("moving_variance", "running_var")):
                v = W(name, key)
                if v is not None:
                    params[ours_key] = g.tensor(name + "." + ours_key, v)
            node = cv.simple(name, "batchnorm", [s], {"eps": c.get("epsilon", 1e-3)})
            g.nodes[-1]["params"] = params
        elif kind in ("Activation", "ReLU", "LeakyReLU"):
            if kind == "ReLU":
                a = "relu6" if c.get("max_value") == 6 else "relu"
            elif kind == "LeakyReLU":
                a = "leaky_relu"
            else:
                a = c["activation"]
            node = cv.act(name, a, s, c.get("alpha"))
        elif kind in ("MaxPooling2D", "AveragePooling2D"):
            k = c["pool_size"]
            st = c.get("strides") or k
            node = cv.pool(name, "maxpool" if kind == "MaxPooling2D" else "avgpool", s, list(k), list(st),
                           c.get("padding", "valid").upper())
        elif kind == "GlobalAveragePooling2D":
            node = cv.simple(name, "global_avgpool", [s], shape=[cv.shape[s][0]])
        elif kind == "Add":
            node = cv.simple(name, "add", srcs[:2])
        elif kind == "Flatten":
            node = cv.flatten(name, s)
        elif kind == "Dropout":
            node = s
        else:
            raise SystemExit("layer %s (%s) not supported" % (name, kind))
        ours[name] = node
        prev = node
    outs = conf.get("output_layers") if isinstance(conf, dict) else None
    g.outputs = [ours[o[0]] for o in outs] if outs else [prev]
    set_feature(g, cv, feature)
    return g


def read_model_json(path):
    """model.json, or the model.min.js packaging (a JavaScript module exporting the same object)."""
    with gfmodel.open_regular(path) as f:
        head = f.read(1 << 16)
        rest = f.read()
    text = head + rest
    if path.endswith(".js") or not text.lstrip()[:1] == b"{":
        if b"exports" in head or path.endswith(".js"):
            mj = gfmodel.read_js_module_export(path)
        else:
            raise gfmodel.BadInput("%s: expected a TF.js model.json (a JSON object with modelTopology and "
                                   "weightsManifest) or its model.min.js packaging" % path)
    else:
        try:
            mj = json.loads(text.decode("utf-8"))
        except ValueError as e:
            raise gfmodel.BadInput("%s: not valid JSON (%s); expected a TF.js model.json" % (path, e))
    if not isinstance(mj, dict) or "modelTopology" not in mj:
        raise gfmodel.BadInput("%s: no modelTopology; expected a TF.js model.json (graph or layers model), "
                               "as written by tensorflowjs_converter" % path)
    if not mj.get("weightsManifest"):
        raise gfmodel.BadInput("%s: no weightsManifest; the TF.js model names no weight shards" % path)
    return mj


def make_parser():
    ap = gfmodel.argument_parser(__doc__)
    ap.add_argument("model_json", help="model.json (or model.min.js); weight shards are read from its folder")
    ap.add_argument("out", help="the .safetensors file to write")
    ap.add_argument("--classes", default="", help="comma-separated class names")
    ap.add_argument("--feature", help="feature node (global-average-pooled if spatial)")
    ap.add_argument("--preprocess", help="gradfeat.preprocess JSON")
    ap.add_argument("--output", help="graph models: comma-separated TF node names (or tensor names NAME:0) to keep "
                    "as the outputs, each a computed map; only "
                    "the nodes they depend on are converted (drops a detection head and its post-processing)")
    ap.add_argument("--input-size", help="graph models: H,W (or one number) replacing the input's spatial size "
                    "(fully convolutional trunks; needed when the model.json leaves it unknown)")
    return ap


def main(argv=None):
    args = make_parser().parse_args(argv)
    mj = read_model_json(args.model_json)
    weights = load_weights(mj, os.path.dirname(os.path.abspath(args.model_json)))
    fmt = mj.get("format", "")
    if fmt == "graph-model" or "node" in mj.get("modelTopology", {}):
        size = outputs = None
        if args.output is not None:  # TF node names, or tensor names name:0 (a signature's spelling)
            outputs = [o[:-2] if o.endswith(":0") else o for o in (v.strip() for v in args.output.split(",")) if o]
            if not outputs:
                raise gfmodel.ConvertError("--output %r: expected comma-separated TF node names" % args.output)
        if args.input_size is not None:
            try:
                size = [int(v) for v in args.input_size.split(",")]
                size = size * 2 if len(size) == 1 else size
                if len(size) != 2 or min(size) < 1 or max(size) > 65536:
                    raise ValueError
            except ValueError:
                raise gfmodel.ConvertError("--input-size %s: expected H,W or one number, 1 to 65536" % args.input_size)
        g = convert_graph_model(mj, weights, args.feature, outputs, size)
    else:
        if args.output is not None or args.input_size is not None:
            raise gfmodel.ConvertError("--output and --input-size apply to graph models only")
        g = convert_layers_model(mj, weights, args.feature)
    c, h, w = g.input["shape"]
    try:
        pre = json.loads(args.preprocess) if args.preprocess else None
    except ValueError as e:
        raise gfmodel.ConvertError("--preprocess: not valid JSON (%s)" % e)
    pre = pre or {
        "input_size": [h, w], "channels": c, "color_order": "GRAY" if c == 1 else "RGB",
        "resize": "stretch", "interpolation": "bilinear", "scale": 1.0, "offset": 0.0}
    classes = [s for s in args.classes.split(",") if s] if args.classes else []
    gfmodel.write(args.out, g, pre, classes)
    print("wrote %s: %d nodes, %d tensors, outputs %s, feature %s" %
          (args.out, len(g.nodes), len(g.tensors), g.outputs, g.feature))


if __name__ == "__main__":
    gfmodel.run_main("convert_tfjs", main)
