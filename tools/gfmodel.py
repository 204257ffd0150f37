"""Shared helpers for the gradfeat converters: build a graph, write the .safetensors model file
(format: models/README.md), read it back, and a small NumPy reference executor used to check the
converters against their source frameworks. Needs only numpy."""
import json
import struct

import numpy as np

FORMAT_VERSION = "1"
OPS = {"conv2d", "linear", "batchnorm", "relu", "relu6", "leaky_relu", "maxpool", "avgpool",
       "global_avgpool", "add", "flatten", "softmax"}


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
