#!/usr/bin/python3
"""PyTorch peer of `gradfeat bench trunk`: the forward pass of the same gradfeat model file
(.safetensors: graph, weights) run by PyTorch on the CPU, images/s at the same batch.

usage: torch_trunk_bench.py MODEL.safetensors [--batch B] [--reps N] [--threads T] [--to NODE] [--check]

The graph of the file is executed node by node with torch.nn.functional (conv2d with its
asymmetric padding, linear, pools, activations, add, flatten, softmax); BatchNorm that follows a
conv is folded into it, as gradfeat folds it at load, so both run the same arithmetic.
torch.set_num_threads(T) (default 2), torch.no_grad(), one warm-up batch, then N timed batches.
--check compares the PyTorch output with the NumPy reference executor of tools/gfmodel.py on two
images first (max relative difference printed; exit 1 above 1e-3).
--to NODE also times the trunk alone: the nodes NODE depends on (as `gradfeat bench trunk` times
the trunk up to the default top block's input, which it names).
Prints: "torch forward <ms per batch> ms/batch <images/s> images/s" (and "torch trunk ..."), settings.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gfmodel  # noqa: E402


def pad4(a):
    return [int(v) for v in (a or [0, 0, 0, 0])]


def fold_bn(graph, tensors):
    """Returns {conv node name: (weight, bias)} with each conv->batchnorm pair folded, and the set of
    folded BN names (they become identities)."""
    users = {}
    for nd in graph["nodes"]:
        for i in nd["inputs"]:
            users.setdefault(i, []).append(nd)
    by_name = {nd["name"]: nd for nd in graph["nodes"]}
    folded, identities = {}, set()
    for nd in graph["nodes"]:
        if nd["op"] != "batchnorm":
            continue
        src = by_name.get(nd["inputs"][0])
        if not src or src["op"] != "conv2d" or len(users.get(src["name"], [])) != 1:
            continue
        p = {k: tensors[v] for k, v in nd.get("params", {}).items()}
        cp = {k: tensors[v] for k, v in src.get("params", {}).items()}
        eps = nd.get("attrs", {}).get("eps", 1e-5)
        scale = p.get("weight", np.ones_like(p["running_var"])) / np.sqrt(p["running_var"] + eps)
        w = cp["weight"] * scale.reshape(-1, 1, 1, 1)
        b = (cp.get("bias", np.zeros_like(scale)) - p["running_mean"]) * scale + p.get("bias", 0.0)
        folded[src["name"]] = (w.astype(np.float32), b.astype(np.float32))
        identities.add(nd["name"])
    return folded, identities


class Net(torch.nn.Module):
    def __init__(self, graph, tensors):
        super().__init__()
        self.graph = graph
        folded, self.identities = fold_bn(graph, tensors)
        self.p = {}
        for nd in graph["nodes"]:
            if nd["name"] in folded:
                w, b = folded[nd["name"]]
                self.p[nd["name"]] = {"weight": torch.from_numpy(w.copy()), "bias": torch.from_numpy(b.copy())}
            else:
                self.p[nd["name"]] = {k: torch.from_numpy(tensors[v].copy()) for k, v in nd.get("params", {}).items()}
        self.order = self.toposort(graph)

    @staticmethod
    def toposort(graph):
        done, order, pending = {graph["input"]["name"]}, [], list(graph["nodes"])
        while pending:
            for nd in list(pending):
                if all(i in done for i in nd["inputs"]):
                    pending.remove(nd)
                    order.append(nd)
                    done.add(nd["name"])
        return order

    def needed(self, target):
        """Names of the nodes target depends on (and target)."""
        by_name = {nd["name"]: nd for nd in self.order}
        need, stack = set(), [target]
        while stack:
            n = stack.pop()
            if n in need or n not in by_name:
                continue
            need.add(n)
            stack.extend(by_name[n]["inputs"])
        return need

    def forward(self, x, to=None):
        vals = {self.graph["input"]["name"]: x}
        need = self.needed(to) if to else None
        y = self.run(vals, [nd for nd in self.order if need is None or nd["name"] in need])
        if to:
            return vals[to]
        return vals[self.graph["outputs"][0]] if "outputs" in self.graph else y

    def run(self, vals, nodes, params=None):
        """Runs nodes (in order) on vals {name: tensor}, adding each output; params {node: {name: tensor}}
        replaces self.p for the nodes it names (tools/torch_job_peer.py: trained or dual parameters).
        Returns the last output."""
        y = None
        for nd in nodes:
            a, op = nd.get("attrs", {}), nd["op"]
            p = params[nd["name"]] if params is not None and nd["name"] in params else self.p[nd["name"]]
            x0 = vals[nd["inputs"][0]]
            if nd["name"] in self.identities:
                y = x0
            elif op == "conv2d":
                if x0.dim() == 2:  # a squeeze-excitation's 1x1 conv on a pooled [N, C]
                    x0 = x0.reshape(x0.shape[0], x0.shape[1], 1, 1)
                t, l, b_, r = pad4(a.get("pad"))
                if t == b_ and l == r:
                    y = F.conv2d(x0, p["weight"], p.get("bias"), a.get("stride", [1, 1]), (t, l),
                                 a.get("dilation", [1, 1]), a.get("groups", 1))
                else:
                    y = F.conv2d(F.pad(x0, (l, r, t, b_)), p["weight"], p.get("bias"), a.get("stride", [1, 1]), 0,
                                 a.get("dilation", [1, 1]), a.get("groups", 1))
            elif op == "linear":
                y = F.linear(x0.reshape(x0.shape[0], -1), p["weight"], p.get("bias"))
            elif op == "batchnorm":
                y = F.batch_norm(x0, p["running_mean"], p["running_var"], p.get("weight"), p.get("bias"), False, 0.0,
                                 a.get("eps", 1e-5))
            elif op == "relu":
                y = F.relu(x0)
            elif op == "relu6":
                y = F.relu6(x0)
            elif op == "sigmoid":
                y = torch.sigmoid(x0)
            elif op == "hardsigmoid":
                y = torch.clamp(a.get("alpha", 1 / 6) * x0 + a.get("beta", 0.5), 0, 1)
            elif op == "hardswish":
                y = F.hardswish(x0)
            elif op == "mul":  # elementwise, or a per-channel gate on either side
                x1 = vals[nd["inputs"][1]]
                if x0.dim() != x1.dim() or x0.shape[2:] != x1.shape[2:]:
                    g_, m_ = (x0, x1) if x0[0].numel() < x1[0].numel() else (x1, x0)
                    y = m_ * g_.reshape(g_.shape[0], g_.shape[1], 1, 1)
                else:
                    y = x0 * x1
            elif op == "leaky_relu":
                y = F.leaky_relu(x0, a.get("alpha", 0.01))
            elif op in ("maxpool", "avgpool"):
                k = a["kernel"]
                s = a.get("stride", k)
                t, l, b_, r = pad4(a.get("pad"))
                if op == "maxpool":
                    y = F.max_pool2d(F.pad(x0, (l, r, t, b_), value=float("-inf")) if (t or l or b_ or r) else x0, k, s)
                elif t == b_ and l == r and (t or l):
                    y = F.avg_pool2d(x0, k, s, (t, l), count_include_pad=a.get("count_include_pad", True))
                else:
                    if (t or l or b_ or r) and not a.get("count_include_pad", True):
                        raise ValueError("asymmetric avgpool without count_include_pad")
                    y = F.avg_pool2d(F.pad(x0, (l, r, t, b_)), k, s)
            elif op == "global_avgpool":
                y = x0.mean(dim=(2, 3))
            elif op == "add":
                y = x0 + vals[nd["inputs"][1]]
            elif op == "flatten":
                y = x0.reshape(x0.shape[0], -1)
            elif op == "softmax":
                y = F.softmax(x0, dim=1)
            else:
                raise ValueError("op " + op)
            vals[nd["name"]] = y
        return y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--to", help="also time the trunk up to this node")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    graph, _, _, tensors = gfmodel.read(a.model)
    net = Net(graph, tensors).eval()
    shp = graph["input"]["shape"][-3:]
    g = np.random.default_rng(777)
    x = torch.from_numpy(g.uniform(-2, 2, size=[a.batch] + list(shp)).astype(np.float32))
    with torch.no_grad():
        if a.check:
            ref = gfmodel.run_numpy(graph, tensors, x[:2].numpy())
            out_name = graph["outputs"][0] if "outputs" in graph else graph["nodes"][-1]["name"]
            got = net(x[:2]).numpy().reshape(2, -1)
            want = np.asarray(ref[out_name]).reshape(2, -1)
            rel = float(np.max(np.abs(got - want) / (1 + np.abs(want))))
            print("check vs NumPy reference: max rel diff %.2e" % rel)
            if not rel <= 1e-3:
                sys.exit(1)
        net(x)  # warm-up
        t0 = time.perf_counter()
        for _ in range(a.reps):
            y = net(x)
        sec = (time.perf_counter() - t0) / a.reps
        if a.to:
            if a.to not in net.needed(a.to):
                sys.exit("torch_trunk_bench: no node %s" % a.to)
            net(x, a.to)  # warm-up
            t0 = time.perf_counter()
            for _ in range(a.reps):
                net(x, a.to)
            tsec = (time.perf_counter() - t0) / a.reps
    if not torch.isfinite(y).all():
        sys.exit("torch_trunk_bench: output is not finite")
    print("torch %s, input %s, batch %d, %d threads, torch %s" % (a.model, "x".join(map(str, shp)), a.batch,
                                                                 a.threads, torch.__version__))
    print("torch forward %.1f ms/batch %.1f images/s" % (sec * 1e3, a.batch / sec))
    if a.to:
        print("torch trunk %.1f ms/batch %.1f images/s (to %s)" % (tsec * 1e3, a.batch / tsec, a.to))


if __name__ == "__main__":
    main()
