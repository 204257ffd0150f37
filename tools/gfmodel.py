"""Shared helpers for the gradfeat converters: build a graph, write the .safetensors model file
(format: models/README.md), read it back, and a small NumPy reference executor used to check the
converters against their source frameworks. Needs only numpy."""
import json
import struct

import numpy as np

FORMAT_VERSION = "1"
OPS = {"conv2d", "linear", "batchnorm", "relu", "relu6", "leaky_relu", "maxpool", "avgpool",
       "global_avgpool", "add", "flatten", "softmax", "sigmoid", "silu", "hardsigmoid", "hardswish", "gelu",
       "mul", "concat", "layernorm", "shuffle", "slice"}


class Graph:
    def __init__(self, input_name, input_shape):
        self.input = {"name": input_name, "shape": [int(v) for v in input_shape]}
        self.nodes = []
        self.tensors = {}
        self.outputs = []
        self.feature = None
        self.blocks = []
        self._names = {input_name}

    def unique(self, name):
        base, i = name, 1
        while name in self._names:
            name = "%s_%d" % (base, i)
            i += 1
        return name

    def tensor(self, name, arr):
        arr = np.ascontiguousarray(np.asarray(arr, dtype=np.float32))
        if name in self.tensors:
            raise ValueError("duplicate tensor " + name)
        self.tensors[name] = arr
        return name

    def add(self, name, op, inputs, params=None, attrs=None):
        if op not in OPS:
            raise ValueError("unsupported op %s (node %s)" % (op, name))
        name = self.unique(name)
        self._names.add(name)
        node = {"name": name, "op": op, "inputs": list(inputs)}
        if params:
            node["params"] = dict(params)
        if attrs:
            node["attrs"] = dict(attrs)
        self.nodes.append(node)
        return name

    def to_json(self):
        g = {"input": self.input, "outputs": self.outputs, "nodes": self.nodes}
        if self.feature:
            g["feature"] = self.feature
        if self.blocks:
            g["blocks"] = self.blocks
        return g


def write(path, graph, preprocess, classes, extra_tensors=None):
    """Write graph + its tensors as one safetensors file."""
    tensors = dict(graph.tensors)
    if extra_tensors:
        tensors.update(extra_tensors)
    meta = {
        "gradfeat.format_version": FORMAT_VERSION,
        "gradfeat.graph": json.dumps(graph.to_json(), separators=(",", ":")),
        "gradfeat.preprocess": json.dumps(preprocess, separators=(",", ":")),
        "gradfeat.classes": json.dumps(list(classes)),
    }
    write_safetensors(path, tensors, meta)


def write_safetensors(path, tensors, meta, dtype_override=None):
    header = {"__metadata__": meta}
    blobs, off = [], 0
    for name in sorted(tensors):
        arr = tensors[name]
        dt = (dtype_override or {}).get(name)
        if dt == "F16":
            arr = np.asarray(arr, dtype=np.float16)
        else:
            arr = np.asarray(arr, dtype=np.float32)
            dt = "F32"
        b = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read(path):
    """Returns (graph dict, preprocess dict, classes, tensors dict of float32 arrays)."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    tensors = {}
    for name, t in header.items():
        dt = {"F32": "<f4", "F16": "<f2"}[t["dtype"]]
        a, b = t["data_offsets"]
        tensors[name] = np.frombuffer(data[base + a:base + b], dtype=dt).astype(np.float32).reshape(t["shape"])
    return (json.loads(meta["gradfeat.graph"]), json.loads(meta.get("gradfeat.preprocess", "{}")),
            json.loads(meta.get("gradfeat.classes", "[]")), tensors)


# ---------------------------------------------------------------- NumPy reference executor

def _pad4(a):
    a = a or [0, 0, 0, 0]
    return [int(v) for v in a]


def _conv(x, w, b, stride, pad, dil, groups):
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    t, l, bo, r = pad
    xp = np.pad(x, ((0, 0), (0, 0), (t, bo), (l, r)))
    oh = (h + t + bo - dil[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wd + l + r - dil[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((n, o, oh, ow), dtype=np.float64)
    og = o // groups
    for g in range(groups):
        xs = xp[:, g * cg:(g + 1) * cg]
        ws = w[g * og:(g + 1) * og].astype(np.float64)
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i * dil[0]:i * dil[0] + stride[0] * (oh - 1) + 1:stride[0],
                           j * dil[1]:j * dil[1] + stride[1] * (ow - 1) + 1:stride[1]]
                out[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", patch, ws[:, :, i, j])
    if b is not None:
        out += b.reshape(1, -1, 1, 1)
    return out


def _pool(x, k, s, pad, mode, include_pad=True):
    n, c, h, w = x.shape
    t, l, bo, r = pad
    fill = -np.inf if mode == "max" else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), (t, bo), (l, r)), constant_values=fill)
    ones = np.pad(np.ones((h, w)), ((t, bo), (l, r)))
    oh = (h + t + bo - k[0]) // s[0] + 1
    ow = (w + l + r - k[1]) // s[1] + 1
    out = np.zeros((n, c, oh, ow))
    for y in range(oh):
        for xx in range(ow):
            win = xp[:, :, y * s[0]:y * s[0] + k[0], xx * s[1]:xx * s[1] + k[1]]
            if mode == "max":
                out[:, :, y, xx] = win.max(axis=(2, 3))
            else:
                cnt = k[0] * k[1] if include_pad else ones[y * s[0]:y * s[0] + k[0], xx * s[1]:xx * s[1] + k[1]].sum()
                out[:, :, y, xx] = win.sum(axis=(2, 3)) / cnt
    return out


def run_numpy(graph, tensors, x):
    """Forward pass in float64; x is [N, C, H, W]. Returns dict node name -> activation."""
    vals = {graph["input"]["name"]: np.asarray(x, dtype=np.float64)}
    pending = list(graph["nodes"])
    while pending:
        progressed = False
        for nd in list(pending):
            if not all(i in vals for i in nd["inputs"]):
                continue
            pending.remove(nd)
            progressed = True
            a = nd.get("attrs", {})
            p = {k: tensors[v].astype(np.float64) for k, v in nd.get("params", {}).items()}
            x0 = vals[nd["inputs"][0]]
            op = nd["op"]
            if op == "conv2d":
                if x0.ndim == 2:  # a squeeze-excitation's 1x1 conv on a pooled [N, C]
                    x0 = x0.reshape(x0.shape + (1, 1))
                y = _conv(x0, p["weight"], p.get("bias"), a.get("stride", [1, 1]), _pad4(a.get("pad")),
                          a.get("dilation", [1, 1]), a.get("groups", 1))
            elif op == "linear":
                y = x0.reshape(x0.shape[0], -1) @ p["weight"].T
                if "bias" in p:
                    y = y + p["bias"]
            elif op == "batchnorm":
                sh = (1, -1) + (1,) * (x0.ndim - 2)
                sc = p.get("weight", 1.0) / np.sqrt(p["running_var"] + a.get("eps", 1e-5))
                y = (x0 - p["running_mean"].reshape(sh)) * np.reshape(sc, sh) + np.reshape(p.get("bias", 0.0), sh if "bias" in p else ())
            elif op == "relu":
                y = np.maximum(x0, 0)
            elif op == "relu6":
                y = np.clip(x0, 0, 6)
            elif op == "leaky_relu":
                y = np.where(x0 > 0, x0, x0 * a.get("alpha", 0.01))
            elif op in ("maxpool", "avgpool"):
                k = a["kernel"]
                y = _pool(x0, k, a.get("stride", k), _pad4(a.get("pad")), op[:3], a.get("count_include_pad", True))
            elif op == "global_avgpool":
                y = x0.mean(axis=(2, 3))
            elif op == "add":
                y = x0 + vals[nd["inputs"][1]]
            elif op == "sigmoid":
                y = 1 / (1 + np.exp(-x0))
            elif op == "silu":
                y = x0 / (1 + np.exp(-x0))
            elif op == "hardsigmoid":
                y = np.clip(a.get("alpha", 1 / 6) * x0 + a.get("beta", 0.5), 0, 1)
            elif op == "hardswish":
                y = x0 * np.clip(x0 + 3, 0, 6) / 6
            elif op == "gelu":
                if a.get("approximate", "none") == "tanh":
                    y = 0.5 * x0 * (1 + np.tanh(np.sqrt(2 / np.pi) * (x0 + 0.044715 * x0 ** 3)))
                else:
                    from math import erf
                    y = 0.5 * x0 * (1 + np.vectorize(erf)(x0 / np.sqrt(2)))
            elif op == "mul":  # elementwise, or a per-channel gate (flat [N, C] or [N, C, 1, 1]) on either side
                x1 = vals[nd["inputs"][1]]
                if x0.ndim != x1.ndim:
                    x0, x1 = (x0.reshape(x0.shape + (1, 1)), x1) if x0.ndim < x1.ndim else (x0, x1.reshape(x1.shape + (1, 1)))
                y = x0 * x1
            elif op == "layernorm":
                m = x0.mean(axis=1, keepdims=True)
                y = (x0 - m) / np.sqrt(((x0 - m) ** 2).mean(axis=1, keepdims=True) + a.get("eps", 1e-5))
            elif op == "concat":
                y = np.concatenate([vals[i] for i in nd["inputs"]], axis=1)
            elif op == "shuffle":  # ShuffleNet: [N, G, C/G, H, W] -> transpose(1, 2) -> [N, C, H, W]
                g = a["groups"]
                y = x0.reshape((x0.shape[0], g, x0.shape[1] // g) + x0.shape[2:]).swapaxes(1, 2).reshape(x0.shape)
            elif op == "slice":  # channels start..end-1
                y = x0[:, a["start"]:a["end"]]
            elif op == "flatten":
                y = x0.reshape(x0.shape[0], -1)
            elif op == "softmax":
                z = x0 - x0.max(axis=1, keepdims=True)
                e = np.exp(z)
                y = e / e.sum(axis=1, keepdims=True)
            else:
                raise ValueError("op " + op)
            vals[nd["name"]] = y
        if not progressed:
            raise ValueError("graph has a cycle or an undefined input")
    return vals


def tf_same_pad(in_size, k, s, d=1):
    """TensorFlow SAME padding (before, after) along one axis."""
    out = (in_size + s - 1) // s
    eff = (k - 1) * d + 1
    total = max((out - 1) * s + eff - in_size, 0)
    return total // 2, total - total // 2


def resize_bilinear_tf_legacy(img, oh, ow):
    """TF1 resize_bilinear, align_corners=False, half_pixel_centers=False: src = dst * in/out,
    neighbour indices clamped to the last row/column. img: [H, W] or [H, W, C]."""
    img = np.asarray(img, dtype=np.float64)
    ih, iw = img.shape[:2]
    ys = np.arange(oh) * (ih / oh)
    xs = np.arange(ow) * (iw / ow)
    y0 = np.floor(ys).astype(int)
    x0 = np.floor(xs).astype(int)
    y1 = np.minimum(y0 + 1, ih - 1)
    x1 = np.minimum(x0 + 1, iw - 1)
    fy = (ys - y0)[:, None]
    fx = (xs - x0)[None, :]
    if img.ndim == 3:
        fy, fx = fy[..., None], fx[..., None]
    top = img[y0][:, x0] * (1 - fx) + img[y0][:, x1] * fx
    bot = img[y1][:, x0] * (1 - fx) + img[y1][:, x1] * fx
    return top * (1 - fy) + bot * fy


# ---------------------------------------------------------------- converter front door

# Exit codes shared by every tools/convert_*.py (documented in models/README.md):
EXIT_OK = 0
EXIT_INTERNAL = 1     # a bug in the converter: the only case that prints a Python traceback
EXIT_USAGE = 2        # bad command line (argparse), or a model using something gradfeat cannot represent
EXIT_BAD_INPUT = 5    # the input file cannot be read or is not what the converter expects


class ConvertError(Exception):
    """A user-facing converter failure: one line on stderr, no traceback."""

    def __init__(self, msg, code=EXIT_USAGE):
        Exception.__init__(self, msg)
        self.code = code


class Unsupported(ConvertError):
    """The model is readable but uses an op/layer/attribute gradfeat has no equivalent for (exit 2)."""

    def __init__(self, msg):
        ConvertError.__init__(self, msg, EXIT_USAGE)


class BadInput(ConvertError):
    """The input file is missing, unreadable or malformed (exit 5)."""

    def __init__(self, msg):
        ConvertError.__init__(self, msg, EXIT_BAD_INPUT)


def argument_parser(doc):
    """argparse.ArgumentParser whose usage errors are one line: 'prog: error: ... (see --help)', exit 2."""
    import argparse
    import sys

    class Parser(argparse.ArgumentParser):
        def error(self, message):
            sys.stderr.write("%s: error: %s (see --help)\n" % (self.prog, message))
            sys.exit(EXIT_USAGE)

    return Parser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def run_main(prog, main, argv=None):
    """Runs a converter's main(argv); user errors become one line 'prog: message' and an exit code."""
    import sys
    try:
        main(argv)
    except ConvertError as e:
        sys.stderr.write("%s: %s\n" % (prog, str(e).strip().replace("\n", "; ")))
        sys.exit(e.code)
    except SystemExit as e:  # argparse (--help: 0, usage: 2), or a message from a helper
        if isinstance(e.code, str):
            sys.stderr.write("%s: %s\n" % (prog, e.code.strip().replace("\n", "; ")))
            sys.exit(EXIT_USAGE)
        raise
    except OSError as e:  # missing file, directory instead of a file, permission, full disk
        what = e.filename if e.filename is not None else ""
        sys.stderr.write("%s: %s%s%s\n" % (prog, what, ": " if what else "", e.strerror or e))
        sys.exit(EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        sys.exit(130)


def open_regular(path, mode="rb"):
    """open() that refuses directories, FIFOs and devices with a clear message (exit 5)."""
    import os
    import stat
    try:
        st = os.stat(path)
    except OSError as e:
        raise BadInput("%s: %s" % (path, e.strerror))
    if not stat.S_ISREG(st.st_mode):
        raise BadInput("%s: not a regular file" % path)
    return open(path, mode)


def parse_js_literal(text, start=0):
    """Parses one JavaScript literal (object, array, string, number, true/false/!0/!1, null, void 0) as
    minifiers write them (bare keys, '.5', single or double quotes). Returns (value, end offset)."""
    n = len(text)

    def ws(i):
        while i < n and text[i] in " \t\r\n":
            i += 1
        return i

    def string(i):
        q = text[i]
        out, i = [], i + 1
        while i < n and text[i] != q:
            if text[i] == "\\":
                i += 1
                if i >= n:
                    break
                c = text[i]
                if c == "u":
                    out.append(chr(int(text[i + 1:i + 5], 16)))
                    i += 4
                elif c == "x":
                    out.append(chr(int(text[i + 1:i + 3], 16)))
                    i += 2
                else:
                    out.append({"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "0": "\0"}.get(c, c))
            else:
                out.append(text[i])
            i += 1
        if i >= n:
            raise ValueError("unterminated string at offset %d" % i)
        return "".join(out), i + 1

    def value(i):
        i = ws(i)
        if i >= n:
            raise ValueError("unexpected end of input")
        c = text[i]
        if c == "{":
            obj, i = {}, ws(i + 1)
            while text[i] != "}":
                if text[i] in "\"'":
                    key, i = string(i)
                else:
                    j = i
                    while j < n and (text[j].isalnum() or text[j] in "_$"):
                        j += 1
                    if j == i:
                        raise ValueError("bad object key at offset %d" % i)
                    key, i = text[i:j], j
                i = ws(i)
                if text[i] != ":":
                    raise ValueError("expected ':' at offset %d" % i)
                obj[key], i = value(i + 1)
                i = ws(i)
                if text[i] == ",":
                    i = ws(i + 1)
                elif text[i] != "}":
                    raise ValueError("expected ',' or '}' at offset %d" % i)
            return obj, i + 1
        if c == "[":
            arr, i = [], ws(i + 1)
            while text[i] != "]":
                v, i = value(i)
                arr.append(v)
                i = ws(i)
                if text[i] == ",":
                    i = ws(i + 1)
                elif text[i] != "]":
                    raise ValueError("expected ',' or ']' at offset %d" % i)
            return arr, i + 1
        if c in "\"'":
            return string(i)
        for word, v in (("!0", True), ("!1", False), ("true", True), ("false", False), ("null", None),
                        ("void 0", None)):
            if text.startswith(word, i):
                return v, i + len(word)
        j = i
        while j < n and (text[j].isdigit() or text[j] in "+-.eE"):
            j += 1
        if j == i:
            raise ValueError("unexpected %r at offset %d" % (c, i))
        tok = text[i:j]
        try:
            return (float(tok) if any(ch in tok for ch in ".eE") else int(tok)), j
        except ValueError:
            raise ValueError("bad number %r at offset %d" % (tok, i))

    return value(start)


def read_js_module_export(path):
    """The value a browserify/UMD bundle (TF.js '.min.js' packaging) assigns to module.exports:
    `...exports={modelTopology:...}` or `...exports="<base64>"`."""
    import re
    with open_regular(path, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    m = re.search(r"\bexports\s*=\s*(?=[{\"'\[])", text)
    if not m:
        raise BadInput("%s: no 'exports=<literal>' found; expected a TF.js model packaged as a JavaScript "
                       "module (model.min.js / group1-shard1of1.min.js) or a model.json" % path)
    try:
        v, _ = parse_js_literal(text, m.end())
    except (ValueError, IndexError) as e:
        raise BadInput("%s: cannot parse the exported JavaScript literal (%s)" % (path, e))
    return v
