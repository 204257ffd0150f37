#!/usr/bin/python3
"""Independent PyTorch reference for gradfeat's linearized models (README.md, "The method in plain words"):

    full      logits = w1ᵀ f(x) + b1 + ω̄ᵀ J(x) w2
    gradient  logits =             b1 + ω̄ᵀ J(x) w2

J(x) w2 comes from torch.autograd.forward_ad (a dual θ̄ + ε·w2 pushed through the block rebuilt from a
node list), ω̄ is its own tensor (never aliased to w1), and the loss is softmax cross-entropy averaged
over the batch. For each case (a start point for w1, b1, w2) and method it writes the logits, the loss,
the gradients of (w1, b1, w2) and the parameters after ONE torch.optim.Adam step. Everything runs in
float64. The w2 gradient from reverse-over-forward AD is also checked against a plain reverse-mode VJP
Jᵀ(ω̄ᵀ g) of the block's forward (a second, independent path); the script fails when they disagree.

usage: torch_linearized_reference.py DIR        (reads DIR/spec.json, writes DIR/out/*.f64 + DIR/out/summary.json)

spec.json:
  n, K, c_in, h_in, w_in, param_count (floats in the block's parameter vector, padding included)
  nodes: [{kind: conv|linear|act|maxpool|avgpool|gap|add|flatten|mul|concat|layernorm (eps)|shuffle (groups)|slice (slice_off), name, in: [a, b, ...]
           (-1 = block input; mul: in[1] of in[0]'s shape or a per-channel gate [C, 1, 1]; concat: all inputs),
           conv: c_out, kh, kw, stride [h, w], pad [top, bottom, left, right], dil [h, w], groups;
           linear: lin_in, lin_out;  conv/linear: w_off, w_count, b_off, b_count (offsets in floats, -1 none);
           act: act relu|leaky|relu6|sigmoid|silu|hardsigmoid|hardswish|gelu|gelu_tanh, slope (leaky;
           hardsigmoid: clamp(slope x + 1/2, 0, 1));  pools: k [h, w], s [h, w], pad [t, b, l, r], count_include_pad}]
  files: name -> raw little-endian float32 (int32 for labels) file in DIR:
         x [n, c_in, h_in, w_in], labels [n], theta [param_count], omega [K, d]
  optim: lr, beta1, beta2, eps, weight_decay
  cases: [{name, w1: file [K, d], b1: file [K], w2: file [param_count]}]
  methods: ["full", "gradient"]
Outputs (float64, DIR/out/<case>.<method>.<what>.f64): logits [n, K], loss [1], grad_w1 [K*d] (zeros for
gradient), grad_b1 [K], grad_w2 [param_count], new_w1 [K*d] (full only), new_b1 [K], new_w2 [param_count].
"""
import json
import os
import sys

import numpy as np
import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F

DT = torch.float64


def load(d, spec, name, dtype=np.float32):
    f = spec["files"][name]
    a = np.fromfile(os.path.join(d, f["path"]), dtype=dtype)
    n = int(np.prod(f["shape"]))
    if a.size != n:
        raise SystemExit(f"{name}: {f['path']} holds {a.size} values, spec says {n}")
    return a.reshape(f["shape"])


def t64(a):
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))


def run_block(nodes, x, theta):
    """Forward of the block graph; theta is the flat parameter vector (may be a dual tensor: slices
    and every op below carry the tangent). Returns the GAP of the last node's output [n, d]."""
    outs = []
    for nd in nodes:
        def src(k):
            return x if nd["in"][k] < 0 else outs[nd["in"][k]]
        kind = nd["kind"]
        if kind in ("conv", "linear"):
            W = theta[nd["w_off"]:nd["w_off"] + nd["w_count"]]
            b = theta[nd["b_off"]:nd["b_off"] + nd["b_count"]] if nd["b_off"] >= 0 else None
        if kind == "conv":
            z = src(0)
            cin = z.shape[1]
            W = W.reshape(nd["c_out"], cin // nd["groups"], nd["kh"], nd["kw"])
            t, bo, l, r = nd["pad"]
            z = F.pad(z, (l, r, t, bo))                                 # asymmetric (TF SAME) pads
            y = F.conv2d(z, W, b, tuple(nd["stride"]), 0, tuple(nd["dil"]), nd["groups"])
        elif kind == "linear":
            z = src(0).reshape(x.shape[0], -1)
            y = F.linear(z, W.reshape(nd["lin_out"], nd["lin_in"]), b).reshape(x.shape[0], -1, 1, 1)
        elif kind == "act":
            z = src(0)
            if nd["act"] == "relu":
                y = F.relu(z)
            elif nd["act"] == "leaky":
                y = F.leaky_relu(z, nd["slope"])
            elif nd["act"] == "relu6":
                y = F.hardtanh(z, 0.0, 6.0)
            elif nd["act"] == "sigmoid":
                y = torch.sigmoid(z)
            elif nd["act"] == "silu":
                y = F.silu(z)
            elif nd["act"] == "hardsigmoid":   # PyTorch's hardsigmoid is slope 1/6
                y = torch.clamp(nd["slope"] * z + 0.5, 0.0, 1.0)
            elif nd["act"] == "hardswish":
                y = F.hardswish(z)
            elif nd["act"] == "gelu":
                y = F.gelu(z)
            elif nd["act"] == "gelu_tanh":
                y = F.gelu(z, approximate="tanh")
            else:
                raise SystemExit(f"node {nd['name']}: unknown activation {nd['act']}")
        elif kind == "maxpool":
            t, bo, l, r = nd["pad"]
            z = F.pad(src(0), (l, r, t, bo), value=float("-inf"))     # padding never wins the max
            y = F.max_pool2d(z, tuple(nd["k"]), tuple(nd["s"]))
        elif kind == "avgpool":
            t, bo, l, r = nd["pad"]
            z = src(0)
            s = F.avg_pool2d(F.pad(z, (l, r, t, bo)), tuple(nd["k"]), tuple(nd["s"]))
            if not nd["count_include_pad"]:   # divide by the real elements in each window only
                ones = torch.ones((1, 1) + tuple(z.shape[2:]), dtype=DT)
                s = s / F.avg_pool2d(F.pad(ones, (l, r, t, bo)), tuple(nd["k"]), tuple(nd["s"]))
            y = s
        elif kind == "gap":
            y = src(0).mean(dim=(2, 3), keepdim=True)
        elif kind == "add":
            y = src(0) + src(1)
        elif kind == "mul":   # a [n, C, 1, 1] gate broadcasts over H x W
            y = src(0) * src(1)
        elif kind == "layernorm":   # over channels at each pixel, no affine part
            y = F.layer_norm(src(0).permute(0, 2, 3, 1), (src(0).shape[1],), eps=nd["eps"]).permute(0, 3, 1, 2)
        elif kind == "concat":
            y = torch.cat([src(k) for k in range(len(nd["in"]))], dim=1)
        elif kind == "shuffle":   # torchvision's channel_shuffle
            s0 = src(0)
            n_, c_, h_, w_ = s0.shape
            y = s0.reshape(n_, nd["groups"], c_ // nd["groups"], h_, w_).transpose(1, 2).reshape(n_, c_, h_, w_)
        elif kind == "slice":   # channels slice_off .. slice_off + c - 1
            y = src(0)[:, nd["slice_off"]:nd["slice_off"] + nd["c"]]
        elif kind == "flatten":
            y = src(0).reshape(x.shape[0], -1, 1, 1)
        else:
            raise SystemExit(f"node {nd['name']}: unknown kind {kind}")
        if nd.get("c") is not None and tuple(y.shape[1:]) != (nd["c"], nd["h"], nd["w"]):
            raise SystemExit(f"node {nd['name']}: torch shape {tuple(y.shape[1:])} vs spec "
                             f"{(nd['c'], nd['h'], nd['w'])}")
        outs.append(y)
    return outs[-1].mean(dim=(2, 3))


def model(method, nodes, x, theta_bar, omega_bar, w1, b1, w2):
    """Logits of the linearized model; w2's tangent goes through forward-mode AD."""
    with fwAD.dual_level():
        f_dual = run_block(nodes, x, fwAD.make_dual(theta_bar, w2))
        f, tf = fwAD.unpack_dual(f_dual)
    logits = tf @ omega_bar.t() + b1
    if method == "full":
        logits = logits + f @ w1.t()
    return logits, f.detach()


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    d = sys.argv[1]
    spec = json.load(open(os.path.join(d, "spec.json")))
    # one thread: the shapes are small, and on a loaded machine OpenMP workers that wait for a core
    # make each conv ~10x slower (measured: float64 depthwise 3x3 on 8x128x15x15, 0.28 s vs 0.02 s)
    torch.set_num_threads(1)
    nodes = spec["nodes"]
    n, K, P = spec["n"], spec["K"], spec["param_count"]
    x = t64(load(d, spec, "x"))
    labels = torch.from_numpy(load(d, spec, "labels", np.int32).astype(np.int64))
    theta_bar = t64(load(d, spec, "theta"))
    omega_bar = t64(load(d, spec, "omega"))          # frozen: its own tensor, no grad
    dim = omega_bar.shape[1]
    o = spec["optim"]
    outd = os.path.join(d, "out")
    os.makedirs(outd, exist_ok=True)
    summary = {"cases": {}}

    def save(tag, what, t):
        np.ascontiguousarray(t.detach().reshape(-1).numpy(), dtype=np.float64).tofile(
            os.path.join(outd, f"{tag}.{what}.f64"))

    for case in spec["cases"]:
        for method in spec["methods"]:
            tag = f"{case['name']}.{method}"
            w1 = t64(load(d, spec, case["w1"])).reshape(K, dim).clone().requires_grad_(True)
            b1 = t64(load(d, spec, case["b1"])).reshape(K).clone().requires_grad_(True)
            w2 = t64(load(d, spec, case["w2"])).reshape(P).clone().requires_grad_(True)
            logits, f = model(method, nodes, x, theta_bar, omega_bar, w1, b1, w2)
            loss = F.cross_entropy(logits, labels)
            params = [w1, b1, w2] if method == "full" else [b1, w2]
            grads = torch.autograd.grad(loss, params, allow_unused=False)
            gw1 = grads[0] if method == "full" else torch.zeros_like(w1)
            gb1, gw2 = grads[-2], grads[-1]

            # second path for the w2 gradient: reverse-mode VJP of the plain forward at θ̄ with the
            # cotangent ω̄ᵀ g (g = dloss/dlogits in closed form: (softmax - onehot) / n)
            g = (torch.softmax(logits.detach(), 1) - F.one_hot(labels, K).to(DT)) / n
            th = theta_bar.clone().requires_grad_(True)
            (vjp,) = torch.autograd.grad(run_block(nodes, x, th), th, g @ omega_bar)
            vjp_err = float((vjp - gw2).abs().max() / (gw2.abs().max() + 1e-300))
            if not vjp_err < 1e-9:
                raise SystemExit(f"{tag}: reverse-over-forward w2 gradient disagrees with the VJP ({vjp_err:.3e})")
            # ω̄ stays frozen and distinct from w1 (the official code's aliasing bug)
            assert omega_bar.data_ptr() != w1.data_ptr() and not omega_bar.requires_grad

            opt = torch.optim.Adam(params, lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"],
                                   weight_decay=o["weight_decay"])
            for p, gp in zip(params, grads):
                p.grad = gp.detach().clone()
            opt.step()
            save(tag, "logits", logits)
            save(tag, "loss", loss.reshape(1))
            save(tag, "grad_w1", gw1)
            save(tag, "grad_b1", gb1)
            save(tag, "grad_w2", gw2)
            if method == "full":
                save(tag, "new_w1", w1)
            save(tag, "new_b1", b1)
            save(tag, "new_w2", w2)
            summary["cases"][tag] = {"loss": float(loss), "vjp_vs_forward_ad": vjp_err,
                                     "grad_w2_absmax": float(gw2.abs().max())}
    json.dump(summary, open(os.path.join(outd, "summary.json"), "w"), indent=1)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
