#!/usr/bin/python3
"""Raw-pixel logistic-regression baseline on exactly the samples `gradfeat train` uses.

    /usr/bin/python3 tools/logreg_baseline.py --data D [--split S] [--limit N]
        --val V [--val-split S] [--val-limit N] [--seed 1] [--json OUT]

Same data options and rules as `gradfeat train` (include/gradfeat_data.h):
IDX files or an IDX folder (split train = train-*, test = t10k-*), an ImageFolder
(root[/split]/<class>/<image>, classes and files in byte order, image
extensions only), or a CSV manifest `path,labels[,split]` (header `path...`,
'#' comments, labels ';'-separated names or integers; the class map is built
from the rows of the split read, names in byte order; multi-label when any
training row has != 1 labels). --limit picks the same seeded subset as
gradfeat (host/method/job.c `pick`: partial Fisher-Yates with xorshift64*, then back
in dataset order; the evaluation set uses seed + 1). It assumes every image
decodes: gradfeat drops undecodable files before picking, which would shift
the indices (this script stops on such a file instead).

Model: pixels / 255 (gray; colour images through PIL's ITU-R 601 luma, the
weights gradfeat uses), one weight per pixel and class plus a bias, W = 0 at
the start, full-batch L-BFGS (scipy, float64) for at most --iters iterations
on mean loss + l2/2 |W|^2 (l2 default 1/n_train, i.e. scikit-learn's C = 1).
Softmax cross-entropy and top-1 accuracy for single-label data; per-class
sigmoid BCE and mAP (host/method/train.c gf_mean_ap: rank by descending score, ties
pessimistic, classes without positives left out) for multi-label data.
Deterministic: no random initialisation; --seed only picks the subsets."""
import argparse
import gzip
import json
import os
import struct
import sys
import time

import numpy as np

M64 = (1 << 64) - 1
IMAGE_EXT = ("jpg", "jpeg", "png", "bmp", "gif", "tga", "ppm", "pgm", "pnm")


def pick(n, limit, seed):
    """host/method/job.c pick(): a seeded subset of `limit` of range(n) in dataset order (all when limit is 0)."""
    p = list(range(n))
    if not (0 < limit < n):
        return p
    s = (seed * 0x9E3779B97F4A7C15 + 0xD1B54A32D192ED03) & M64
    for i in range(limit):
        s ^= s >> 12
        s = (s ^ (s << 25)) & M64
        s ^= s >> 27
        j = i + ((s * 0x2545F4914F6CDD1D) & M64) % (n - i)
        p[i], p[j] = p[j], p[i]
    return sorted(p[:limit])


# ------------------------------------------------------------------ datasets
class Dataset:
    """classes: names; items: list of (source, label set); source = path or (array, row)."""
    def __init__(self, classes, items, multi):
        self.classes, self.items, self.multi = classes, items, multi


def read_idx_file(path):
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise SystemExit(f"logreg_baseline: {path}: not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def open_idx(path, split):
    if os.path.isdir(path):
        prefix = "t10k" if split == "test" else (split or "train")
        names = sorted(n for n in os.listdir(path) if n.startswith(prefix) and "-images-idx3-ubyte" in n)
        if not names:
            raise SystemExit(f"logreg_baseline: IDX folder {path} has no {prefix}-images-idx3-ubyte[.gz]")
        images = os.path.join(path, names[0])
    else:
        images = path
    labels = images.replace("images-idx3", "labels-idx1")
    if not os.path.exists(labels):
        labels = labels[:-3] if labels.endswith(".gz") else labels + ".gz"
    x, y = read_idx_file(images), read_idx_file(labels)
    K = int(y.max()) + 1
    return Dataset([str(k) for k in range(K)], [((x, i), {int(y[i])}) for i in range(len(y))], False)


def open_folder(path, split):
    root = os.path.join(path, split) if split else path
    classes = sorted(e for e in os.listdir(root) if not e.startswith(".") and os.path.isdir(os.path.join(root, e)))
    items = []
    for k, c in enumerate(classes):
        d = os.path.join(root, c)
        for f in sorted(e for e in os.listdir(d) if not e.startswith(".")):
            fp = os.path.join(d, f)
            ext = f.rsplit(".", 1)[-1].lower() if "." in f[1:] else ""
            if not os.path.isdir(fp) and ext in IMAGE_EXT:
                items.append((fp, {k}))
    return Dataset(classes, items, False)


def split_fields(line):
    """host/data/data_csv.c split_fields: ',' separated, optional double quotes ("" escapes), blanks trimmed."""
    out, p, n = [], 0, len(line)
    while True:
        while p < n and line[p] in " \t":
            p += 1
        if p < n and line[p] == '"':
            p += 1
            w = []
            while p < n:
                if line[p] == '"':
                    if p + 1 < n and line[p + 1] == '"':
                        w.append('"'); p += 2; continue
                    p += 1
                    break
                w.append(line[p]); p += 1
            while p < n and line[p] != ",":
                p += 1
            field = "".join(w)
        else:
            q = line.find(",", p)
            q = n if q < 0 else q
            field = line[p:q].rstrip(" \t")
            p = q
        out.append(field)
        if p < n and line[p] == ",":
            p += 1
            continue
        return out


def open_csv(path, split):
    base = os.path.dirname(path)
    rows = []
    seen_data = False
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if text.startswith("\ufeff"):
        text = text[1:]
    for line in text.split("\n"):
        line = line.rstrip("\r \t")
        if not line.strip(" \t") or line.lstrip(" \t").startswith("#"):
            continue
        fields = split_fields(line)
        first, seen_data = not seen_data, True
        if first and fields[0].lower() == "path":
            continue
        if len(fields) not in (2, 3) or not fields[0]:
            continue
        if split and (len(fields) < 3 or fields[2] != split):
            continue
        toks = [t.strip(" \t") for t in fields[1].split(";")]
        rows.append((os.path.join(base, fields[0]), [t for t in toks if t]))
    tokens = [t for _, ts in rows for t in ts]
    numeric = all(t.isdigit() and int(t) <= 1000000 for t in tokens)
    if numeric:
        K = max((int(t) for t in tokens), default=-1) + 1
        classes = [str(k) for k in range(K)]
        index = {str(k): k for k in range(K)}
        index.update({t: int(t) for t in tokens})   # "007" -> 7, as parse_int does
    else:
        classes = sorted(set(tokens), key=lambda s: s.encode())
        index = {c: k for k, c in enumerate(classes)}
    multi = any(len(ts) != 1 for _, ts in rows)
    items = [(p, {index[t] for t in ts}) for p, ts in rows if all(t in index for t in ts)]
    return Dataset(classes, items, multi)


def open_dataset(path, split):
    if os.path.isdir(path):
        if any("-idx3-ubyte" in e for e in os.listdir(path)):
            return open_idx(path, split)
        return open_folder(path, split)
    if path.lower().endswith(".csv"):
        return open_csv(path, split)
    return open_idx(path, split)


def load_pixels(ds, idx):
    """Rows of [0,1] floats (n x pixels); every image must have the same size."""
    from PIL import Image
    rows = []
    for i in idx:
        src = ds.items[i][0]
        if isinstance(src, tuple):
            a = src[0][src[1]]
        else:
            try:
                with Image.open(src) as im:
                    a = np.asarray(im.convert("L"))
            except Exception as e:   # gradfeat would have dropped it before picking
                raise SystemExit(f"logreg_baseline: {src}: {e} (the subset would no longer match gradfeat's)")
        rows.append(a.reshape(-1))
    shapes = {r.shape for r in rows}
    if len(shapes) != 1:
        raise SystemExit(f"logreg_baseline: images of different sizes {sorted(shapes)}: raw pixels need one size")
    return np.stack(rows).astype(np.float64) / 255.0


def targets(ds, idx, K):
    t = np.zeros((len(idx), K))
    for r, i in enumerate(idx):
        for k in ds.items[i][1]:
            t[r, k] = 1
    return t


# ------------------------------------------------------------------ model + metrics
def fit(x, t, multi, l2, iters):
    """Full-batch L-BFGS (scipy L-BFGS-B, no bounds) from W = 0, b = 0."""
    from scipy.optimize import minimize
    n, d = x.shape
    K = t.shape[1]

    def f(theta):
        W, b = theta[:d * K].reshape(d, K), theta[d * K:]
        z = x @ W + b
        if multi:   # sum over classes of BCE with logits, mean over samples
            loss = float(np.sum(np.logaddexp(0, z) - t * z)) / n
            g = (0.5 * (1 + np.tanh(0.5 * z)) - t) / n      # sigmoid(z) - t, overflow-free
        else:       # softmax cross-entropy
            zmax = z.max(1, keepdims=True)
            e = np.exp(z - zmax)
            se = e.sum(1, keepdims=True)
            loss = float(np.mean(np.log(se[:, 0]) + zmax[:, 0] - np.sum(z * t, 1)))
            g = (e / se - t) / n
        loss += 0.5 * l2 * float(np.sum(W * W))
        gW = x.T @ g + l2 * W
        return loss, np.concatenate([gW.ravel(), g.sum(0)])

    r = minimize(f, np.zeros(d * K + K), jac=True, method="L-BFGS-B",
                 options={"maxiter": iters, "maxfun": 2 * iters + 20, "maxcor": 20, "ftol": 1e-15, "gtol": 1e-10})
    return r.x[:d * K].reshape(d, K), r.x[d * K:], float(r.fun), int(r.nit)


def mean_ap(scores, t):
    """host/method/train.c gf_mean_ap on float32 scores: per class, rank by descending score
    (ties: negatives first), AP = mean precision at the positives; mean over classes with positives."""
    s32 = scores.astype(np.float32)
    aps = []
    for k in range(t.shape[1]):
        pos = t[:, k] > 0.5
        if not pos.any():
            continue
        order = np.lexsort((pos.astype(np.int8), -s32[:, k]))   # primary: score desc; then negatives first
        hit = pos[order]
        ranks = np.nonzero(hit)[0] + 1
        aps.append(float(np.mean(np.arange(1, len(ranks) + 1) / ranks)))
    return float(np.mean(aps)) if aps else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--split")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--val", required=True)
    ap.add_argument("--val-split")
    ap.add_argument("--val-limit", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1, help="gradfeat's --seed (default 1)")
    ap.add_argument("--iters", type=int, default=500, help="L-BFGS iterations (default 500)")
    ap.add_argument("--l2", type=float, default=None, help="L2 on W (default 1/n_train)")
    ap.add_argument("--json", help="write the result here")
    ap.add_argument("--print-indices", action="store_true", help="print the picked sample indices and stop")
    a = ap.parse_args()
    t0 = time.time()
    dtr, dva = open_dataset(a.data, a.split), open_dataset(a.val, a.val_split)
    itr = pick(len(dtr.items), a.limit, a.seed)
    iva = pick(len(dva.items), a.val_limit, a.seed + 1)
    if a.print_indices:
        print("train", *itr)
        print("val", *iva)
        return
    K = len(dtr.classes)
    if len(dva.classes) != K:
        raise SystemExit(f"logreg_baseline: {K} training classes but {len(dva.classes)} evaluation classes")
    if dva.classes != dtr.classes:
        print(f"logreg_baseline: warning: the class maps differ (train {dtr.classes}, eval {dva.classes}); "
              "gradfeat only compares their sizes", file=sys.stderr)
    multi = dtr.multi
    xtr, xva = load_pixels(dtr, itr), load_pixels(dva, iva)
    ttr, tva = targets(dtr, itr, K), targets(dva, iva, K)
    l2 = a.l2 if a.l2 is not None else 1.0 / len(itr)
    W, b, loss, n_iter = fit(xtr, ttr, multi, l2, a.iters)
    z_tr, z_va = xtr @ W + b, xva @ W + b
    if multi:
        m_tr, m_va, metric = mean_ap(z_tr, ttr), mean_ap(z_va, tva), "mAP"
    else:
        m_tr = float(np.mean(z_tr.argmax(1) == ttr.argmax(1)))
        m_va = float(np.mean(z_va.argmax(1) == tva.argmax(1)))
        metric = "accuracy"
    secs = time.time() - t0
    res = {"method": "raw-pixel logistic regression", "metric": metric, "val_metric": m_va, "train_metric": m_tr,
           "train_loss": loss, "n_train": len(itr), "n_val": len(iva), "classes": K, "pixels": xtr.shape[1],
           "l2": l2, "iters": a.iters, "lbfgs_iterations_done": n_iter, "device": "CPU (numpy/scipy)", "seed": a.seed, "seconds": secs}
    print(f"raw-pixel LR: val {metric} {100 * m_va:.2f}%  train {metric} {100 * m_tr:.2f}%  "
          f"({len(itr)} train / {len(iva)} eval, {K} classes, {xtr.shape[1]} pixels, l2 {l2:.3g}, "
          f"{n_iter} L-BFGS iterations, {secs:.1f} s)")
    if a.json:
        with open(a.json + ".tmp", "w") as f:
            json.dump(res, f, indent=2)
        os.replace(a.json + ".tmp", a.json)


if __name__ == "__main__":
    main()
