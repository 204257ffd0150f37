#!/usr/bin/python3
"""PyTorch peer of `gradfeat train --method all`: the same job, written the way a careful PyTorch user would,
timed per phase (tools/bench_job.sh runs it beside gradfeat and prints the ratios).

usage: torch_job_peer.py --model M.safetensors --cut NODE --data D --split train [--limit N]
                         [--val D --val-split test --val-limit N] [--epochs 10] [--batch 64] [--lr 1e-2]
                         [--finetune-lr 1e-4] [--select last|loss] [--beta1 0.5] [--beta2 0.999] [--weight-decay 1e-6] [--holdout 0.1]
                         [--seed 1] [--threads 2] [--probe-threads 1] [--methods linear,gradient,full,finetune] [--json OUT]

What runs, as gradfeat's defaults do (README "The method in plain words", "Why the defaults"):
- data: the same images: gradfeat's seeded --limit subset and its per-class seeded holdout (the generators of
  host/runtime/util.c and host/method/train.c, ported), the preprocessing the model file names (the emotion
  net: TF-legacy bilinear resize to 64x64, 2v-1; the torchvision models: shorter side to 256 and a 224 centre
  crop, ImageNet mean/std; the ResNet-18 workload's images are made 256x256, so no resampling happens);
  IDX (Fashion-MNIST .gz) or an image folder DIR/SPLIT/CLASS/*.
- trunk: the model file run by torch.nn.functional (tools/torch_trunk_bench.py's executor, BN folded as
  gradfeat folds it) up to the top block's input (--cut), once, no_grad, batch --batch; kept in memory.
- features: the top block at θ̄ over the cached trunk outputs (train, holdout, val): the probe's features.
- probe (linear): L-BFGS (torch.optim.LBFGS, strong Wolfe, float64) on mean cross-entropy + l2/2 |W|² (bias
  not penalised), warm-started along 1e-1 .. 1e-6 (half decades), L2 chosen by held-out loss, the path
  stopped once the held-out loss has risen twice in a row past the best (gradfeat's rule); on --probe-threads
  (default 1: tiny products, where OpenMP threads waiting for a busy core cost 30x).
- gradient / full: J(x) w2 by forward-mode AD (torch.autograd.forward_ad: θ̄ + ε·s⊙w2 dual through the
  block; torch 1.13 has no torch.func), the gradient by reverse mode through it; NTK parametrisation
  (s = sqrt(1/C_out) on weights, sqrt(0.1) on biases, sqrt(1/K) on full's head, which starts at sqrt(K) ω̄;
  ω̄ frozen); gradient's bias starts at the log class frequencies. finetune: plain backprop of the block and
  the head at --finetune-lr (1e-4), weight decay toward θ̄. Adam (β1 0.5), weight decay as L2 in the gradient, the rate
  falling by a cosine of the step to 0, gradfeat's per-epoch shuffle; every method evaluated on the holdout
  before training and after each epoch (and on --val); the last epoch kept (--select last, gradfeat's default;
  --select loss: the lowest held-out loss); stopped after 3 evaluations above 3x the starting held-out loss and
  above the lowest so far (diverged: the lowest held-out loss's parameters kept).
Prints one line per phase ("peer phase NAME SECONDS s") and per method, and with --json a JSON object:
{"phases": {name: seconds}, "methods": {name: {"val_metric", "val_loss", "holdout_loss", "best_epoch"}}, ...}.
"""
import argparse
import gzip
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gfmodel  # noqa: E402
from torch_trunk_bench import Net  # noqa: E402

M64 = (1 << 64) - 1


def xorshift(s):   # host/method/train.c rng_next (state update and output)
    s ^= s >> 12
    s ^= (s << 25) & M64
    s ^= s >> 27
    return s, (s * 0x2545F4914F6CDD1D) & M64


def seeded_subset(n, limit, seed):   # host/runtime/util.c gf_seeded_subset
    p = list(range(n))
    if 0 < limit < n:
        s = (seed * 0x9E3779B97F4A7C15 + 0xD1B54A32D192ED03) & M64
        for i in range(limit):
            s, r = xorshift(s)
            j = i + r % (n - i)
            p[i], p[j] = p[j], p[i]
        p = sorted(p[:limit])
    return p


def shuffle(n, seed):   # host/method/train.c shuffle
    s = (seed * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & M64
    p = list(range(n))
    for i in range(n - 1, 0, -1):
        s, r = xorshift(s)
        j = r % (i + 1)
        p[i], p[j] = p[j], p[i]
    return p


def holdout_split(labels, K, frac, seed):   # host/method/train.c gf_holdout_split (single-label)
    n = len(labels)
    if frac <= 0 or n < 2:
        return list(range(n)), []
    perm = shuffle(n, (seed * 0xD1B54A32D192ED03 + 17) & M64)
    count = np.bincount(labels, minlength=K)
    taken = np.zeros(K, int)
    out = np.zeros(n, bool)
    for i in perm:
        c = labels[i]
        want = min(int(frac * count[c] + 0.5), count[c] - 1)
        if taken[c] < want:
            taken[c] += 1
            out[i] = True
    return [i for i in range(n) if not out[i]], [i for i in range(n) if out[i]]


def read_idx(path):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        data = f.read()
    nd = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * nd).reshape(dims)


def list_dataset(root, split):
    """[(source, label)] in gradfeat's order and the class count: IDX images by index, folder files sorted."""
    idx = {"train": "train", "test": "t10k"}.get(split, split)
    for ext in ("-images-idx3-ubyte.gz", "-images-idx3-ubyte"):
        if os.path.isfile(os.path.join(root, idx + ext)):
            x = read_idx(os.path.join(root, idx + ext))
            y = read_idx(os.path.join(root, idx + ext.replace("images-idx3", "labels-idx1"))).astype(np.int64)
            return ("idx", x), list(y), int(y.max()) + 1
    d = os.path.join(root, split)
    classes = sorted(c for c in os.listdir(d) if os.path.isdir(os.path.join(d, c)))
    files, labels = [], []
    for k, c in enumerate(classes):
        for f in sorted(os.listdir(os.path.join(d, c))):
            files.append(os.path.join(d, c, f))
            labels.append(k)
    return ("files", files), labels, len(classes)


def preprocess(src, rows, pre, shape):
    """The model file's preprocessing for the rows of the dataset: [n, C, H, W] float32."""
    C, H, W = shape
    kind, data = src
    if kind == "idx":
        img = data[rows].astype(np.float64)            # [n, h, w] gray
    else:
        from PIL import Image
        img = np.stack([np.asarray(Image.open(data[r]).convert("L" if C == 1 else "RGB")) for r in rows]).astype(np.float64)
    if img.ndim == 3:
        img = img[..., None]
    if C == 3 and img.shape[-1] == 1:
        img = np.repeat(img, 3, -1)
    if C == 1 and img.shape[-1] == 3:
        raise SystemExit("torch_job_peer: colour images for a gray model are not handled")
    n, ih, iw = img.shape[:3]
    resize = pre.get("resize", "stretch")
    if resize == "shorter_center_crop":
        S = pre.get("resize_shorter") or max(H, W)
        if min(ih, iw) != S:
            raise SystemExit("torch_job_peer: make the images %dpx on the shorter side (no resampling here)" % S)
        t, l = (ih - H) // 2, (iw - W) // 2
        img = img[:, t:t + H, l:l + W]
    elif (ih, iw) != (H, W):
        if pre.get("interpolation") != "bilinear_tf_legacy":
            raise SystemExit("torch_job_peer: only bilinear_tf_legacy resizing is ported")
        ys, xs = np.arange(H) * (ih / H), np.arange(W) * (iw / W)
        y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
        y1, x1 = np.minimum(y0 + 1, ih - 1), np.minimum(x0 + 1, iw - 1)
        fy, fx = (ys - y0)[None, :, None, None], (xs - x0)[None, None, :, None]
        top = img[:, y0][:, :, x0] * (1 - fx) + img[:, y0][:, :, x1] * fx
        bot = img[:, y1][:, :, x0] * (1 - fx) + img[:, y1][:, :, x1] * fx
        img = top * (1 - fy) + bot * fy
    v = img / 255.0
    if "mean" in pre:
        v = (v - np.array(pre["mean"])) / np.array(pre["std"])
    else:
        v = v * pre.get("scale", 1.0) + pre.get("offset", 0.0)
    return torch.from_numpy(np.ascontiguousarray(v.transpose(0, 3, 1, 2), dtype=np.float32))


class Timer:
    def __init__(self):
        self.phases = {}

    def __call__(self, name):
        t = self

        class _T:
            def __enter__(self):
                self.t0 = time.perf_counter()

            def __exit__(self, *a):
                t.phases[name] = t.phases.get(name, 0.0) + time.perf_counter() - self.t0
                print("peer phase %-9s %8.2f s" % (name, t.phases[name]), flush=True)
        return _T()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--cut", required=True, help="the top block's input node (gradfeat info: 'input (cut)')")
    ap.add_argument("--feature", help="the pooled feature node (default: the model file's)")
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="train")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--val")
    ap.add_argument("--val-split", default="test")
    ap.add_argument("--val-limit", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--finetune-lr", type=float, default=1e-4, help="0: --lr / 10")
    ap.add_argument("--select", choices=("last", "loss"), default="last",
                    help="keep the last epoch (a diverged method: its lowest held-out loss) or the lowest held-out loss")
    ap.add_argument("--beta1", type=float, default=0.5)
    ap.add_argument("--beta2", type=float, default=0.999)
    ap.add_argument("--weight-decay", type=float, default=1e-6)
    ap.add_argument("--holdout", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--probe-threads", type=int, default=1,
                    help="threads of the L-BFGS probe (default 1: its products are tiny; with 2 OpenMP threads on a "
                         "loaded 2-core machine one evaluation took 60 ms instead of 2)")
    ap.add_argument("--methods", default="linear,gradient,full,finetune")
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    T = Timer()
    t_start = time.perf_counter()
    methods = a.methods.split(",")

    # ---- model and block
    graph, pre, _, tensors = gfmodel.read(a.model)
    net = Net(graph, tensors).eval()
    feat = a.feature or graph.get("feature")
    if not feat:
        raise SystemExit("torch_job_peer: the model names no feature node: --feature")
    trunk_need = net.needed(a.cut)
    if a.cut not in trunk_need:
        raise SystemExit("torch_job_peer: no node " + a.cut)
    block = [nd for nd in net.order if nd["name"] in net.needed(feat) and nd["name"] not in trunk_need]
    theta_bar, s_ntk = {}, {}
    for nd in block:
        p = net.p[nd["name"]]
        if nd["name"] in net.identities or not p:
            continue
        if nd["op"] not in ("conv2d", "linear"):
            raise SystemExit("torch_job_peer: block node %s (%s) has parameters" % (nd["name"], nd["op"]))
        theta_bar[nd["name"]] = {k: v.detach().clone() for k, v in p.items()}
        c_out = p["weight"].shape[0]
        s_ntk[nd["name"]] = {"weight": math.sqrt(1.0 / c_out), "bias": math.sqrt(0.1)}
    P = sum(v.numel() for d in theta_bar.values() for v in d.values())

    def block_fwd(z, params):
        vals = {a.cut: z}
        return net.run(vals, block, params).reshape(z.shape[0], -1)

    # ---- data: the same rows, the same holdout
    with T("data"):
        src, labels_all, K = list_dataset(a.data, a.split)
        rows = seeded_subset(len(labels_all), a.limit, a.seed)
        x_tr = preprocess(src, rows, pre, graph["input"]["shape"][-3:])
        y_all = np.array([labels_all[r] for r in rows], np.int64)
        if a.val:
            vsrc, vlabels_all, _ = list_dataset(a.val, a.val_split)
            vrows = seeded_subset(len(vlabels_all), a.val_limit, a.seed + 1)
            x_va = preprocess(vsrc, vrows, pre, graph["input"]["shape"][-3:])
            y_va = torch.from_numpy(np.array([vlabels_all[r] for r in vrows], np.int64))
    with T("trunk"):
        def trunk(x):
            with torch.no_grad():
                return torch.cat([net(x[i:i + a.batch], a.cut) for i in range(0, len(x), a.batch)])
        z_all = trunk(x_tr)
        z_va = trunk(x_va) if a.val else None
    tr_idx, ho_idx = holdout_split(list(y_all), K, a.holdout, a.seed)
    z_tr, y_tr = z_all[tr_idx], torch.from_numpy(y_all[tr_idx])
    z_ho, y_ho = z_all[ho_idx], torch.from_numpy(y_all[ho_idx])
    del z_all
    n = len(tr_idx)
    print("peer: %d training / %d held-out / %d evaluation samples, %d classes; top block %s -> %s, %d tangent "
          "parameters; torch %s, %d threads" % (n, len(ho_idx), len(z_va) if a.val else 0, K, a.cut, feat, P,
                                                torch.__version__, a.threads), flush=True)

    with T("features"):
        def features(z):
            with torch.no_grad():
                return torch.cat([block_fwd(z[i:i + a.batch], None) for i in range(0, len(z), a.batch)])
        f_tr, f_ho = features(z_tr), features(z_ho)
        f_va = features(z_va) if a.val else None
    d = f_tr.shape[1]
    results = {}

    # ---- the probe: L-BFGS along the L2 path, chosen on the holdout
    with T("linear"):
        torch.set_num_threads(a.probe_threads)
        F64 = [f.double() if f is not None else None for f in (f_tr, f_ho, f_va)]
        W = torch.zeros(K, d, dtype=torch.float64, requires_grad=True)
        b = torch.zeros(K, dtype=torch.float64, requires_grad=True)
        grid = [1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6]
        best, best_loss, prev, rises, best_l2 = None, math.inf, math.inf, 0, None
        for l2 in grid:
            opt = torch.optim.LBFGS([W, b], lr=1, max_iter=500, history_size=10, tolerance_grad=1e-6,
                                    tolerance_change=1e-12, line_search_fn="strong_wolfe")

            def closure():
                opt.zero_grad()
                loss = F.cross_entropy(F64[0] @ W.t() + b, y_tr) + 0.5 * l2 * (W * W).sum()
                loss.backward()
                return loss
            opt.step(closure)
            with torch.no_grad():
                hl = float(F.cross_entropy(F64[1] @ W.t() + b, y_ho)) if len(ho_idx) else 0.0
            take = hl < best_loss
            if take:
                best_loss, best_l2, best = hl, l2, (W.detach().clone(), b.detach().clone())
            rises = rises + 1 if (not take and hl > prev) else 0
            prev = hl
            if rises >= 2 or not len(ho_idx):
                break
        omega = best[0].float()
        b_probe = best[1].float()

        def lin_eval(f, y):
            with torch.no_grad():
                z = f @ omega.t() + b_probe
                return float(F.cross_entropy(z, y)), float((z.argmax(1) == y).double().mean())
        tl, tm = lin_eval(f_tr, y_tr)
        hl, hm = lin_eval(f_ho, y_ho)
        vl, vm = lin_eval(f_va, y_va) if a.val else (math.nan, math.nan)
        torch.set_num_threads(a.threads)
    results["linear"] = {"train_loss": tl, "val_loss": vl, "val_metric": vm, "holdout_loss": hl, "best_epoch": 1,
                         "probe_l2": best_l2}
    print("peer linear   probe L2 %g, val %.2f%% (loss %.4f), holdout loss %.4f" % (best_l2, 100 * vm, vl, hl),
          flush=True)

    # ---- gradient / full / finetune
    sqrtK = math.sqrt(K)

    def make(method):
        st = {}
        if method == "finetune":
            st["theta"] = {nm: {k: v.clone().requires_grad_(True) for k, v in p.items()} for nm, p in theta_bar.items()}
            st["w1"] = omega.clone().requires_grad_(True)
            st["b1"] = b_probe.clone().requires_grad_(True)
        else:
            st["w2"] = {nm: {k: torch.zeros_like(v, requires_grad=True) for k, v in p.items()}
                        for nm, p in theta_bar.items()}
            if method == "full":
                st["w1"] = (omega * sqrtK).requires_grad_(True)
                st["b1"] = b_probe.clone().requires_grad_(True)
            else:   # the best bias-only model: log class frequencies (add-half smoothing)
                cnt = torch.bincount(y_tr, minlength=K).double()
                st["b1"] = torch.log((cnt + 0.5) / (n + 0.5 * K)).float().requires_grad_(True)
        return st

    def leaves(method, st):
        if method == "finetune":
            return [st["w1"], st["b1"]], [v for p in st["theta"].values() for v in p.values()]
        head = [st["w1"], st["b1"]] if method == "full" else [st["b1"]]
        return head, [v for p in st["w2"].values() for v in p.values()]

    def logits(method, st, z):
        if method == "finetune":
            f = block_fwd(z, st["theta"])
            return f @ st["w1"].t() + st["b1"]
        with fwAD.dual_level():
            dual = {nm: {k: fwAD.make_dual(theta_bar[nm][k], s_ntk[nm][k] * v) for k, v in p.items()}
                    for nm, p in st["w2"].items()}
            f, tf = fwAD.unpack_dual(block_fwd(z, dual))
        out = tf @ omega.t() + st["b1"]
        if method == "full":
            out = out + f @ (st["w1"] / sqrtK).t()
        return out

    def evaluate(method, st, z, y):
        with torch.no_grad():
            loss = correct = 0.0
            for i in range(0, len(z), a.batch):
                lg = logits(method, st, z[i:i + a.batch])
                loss += float(F.cross_entropy(lg, y[i:i + a.batch], reduction="sum"))
                correct += float((lg.argmax(1) == y[i:i + a.batch]).sum())
        return loss / len(z), correct / len(z)

    method_index = {"gradient": 1, "full": 2, "finetune": 3}
    for method in ("gradient", "full", "finetune"):
        if method not in methods:
            continue
        with T(method):
            lr0 = a.finetune_lr if (method == "finetune" and a.finetune_lr > 0) else (a.lr / 10 if method == "finetune" else a.lr)
            st = make(method)
            head, blockp = leaves(method, st)
            groups = [{"params": head, "weight_decay": a.weight_decay}]
            # w2 decays toward 0 (torch's L2); a fine-tuned θ decays toward θ̄ (added to the gradient below)
            groups.append({"params": blockp, "weight_decay": a.weight_decay if method != "finetune" else 0.0})
            opt = torch.optim.Adam(groups, lr=lr0, betas=(a.beta1, a.beta2), eps=1e-8)
            tb = [v for p in theta_bar.values() for v in p.values()]
            snap = lambda: [v.detach().clone() for v in head + blockp]  # noqa: E731
            hl, hm = evaluate(method, st, z_ho, y_ho)
            loss0, best_l, best_ep, best_p, bad, last = hl, hl, 0, snap(), 0, 0
            steps_total = (n + a.batch - 1) // a.batch
            vl = vm = math.nan
            for ep in range(a.epochs):
                perm = torch.tensor(shuffle(n, (a.seed * 1000003 + method_index[method] * 7919 + ep) & M64))
                for s, b0 in enumerate(range(0, n, a.batch)):
                    for g in opt.param_groups:
                        g["lr"] = lr0 * 0.5 * (1 + math.cos(math.pi * (ep * steps_total + s) / (a.epochs * steps_total)))
                    ix = perm[b0:b0 + a.batch]
                    loss = F.cross_entropy(logits(method, st, z_tr[ix]), y_tr[ix])
                    opt.zero_grad()
                    loss.backward()
                    if method == "finetune" and a.weight_decay:
                        with torch.no_grad():
                            for p_, r_ in zip(blockp, tb):
                                p_.grad.add_(p_ - r_, alpha=a.weight_decay)
                    opt.step()
                hl, hm = evaluate(method, st, z_ho, y_ho)
                last = ep + 1
                bad = bad + 1 if (hl > 3 * loss0 and hl > best_l) or math.isnan(hl) else 0
                if hl < best_l:
                    best_l, best_ep, best_p = hl, ep + 1, snap()
                if a.val:
                    vl, vm = evaluate(method, st, z_va, y_va)
                if bad >= 3:
                    break
            diverged = bad >= 3
            kept, kept_l = best_ep, best_l
            if a.select == "last" and not diverged:
                kept, kept_l = last, hl
            if kept != last:   # keep the lowest held-out loss's parameters
                with torch.no_grad():
                    for p_, v_ in zip(head + blockp, best_p):
                        p_.copy_(v_)
                if a.val:
                    vl, vm = evaluate(method, st, z_va, y_va)
        results[method] = {"val_loss": vl, "val_metric": vm, "holdout_loss": kept_l, "best_epoch": kept,
                           "lr": lr0}
        print("peer %-9s val %.2f%% (loss %.4f), holdout loss %.4f, kept epoch %d" % (method, 100 * vm, vl, kept_l,
                                                                                 kept), flush=True)
    total = time.perf_counter() - t_start
    print("peer total %.2f s (after imports)" % total, flush=True)
    if a.json:
        json.dump({"phases": T.phases, "total_seconds": total, "methods": results, "n_train": n,
                   "n_holdout": len(ho_idx), "n_val": len(z_va) if a.val else 0, "classes": K,
                   "tangent_parameters": P, "torch": torch.__version__, "threads": a.threads}, open(a.json, "w"),
                  indent=1)


if __name__ == "__main__":
    main()
