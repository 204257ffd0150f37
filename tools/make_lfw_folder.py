#!/usr/bin/python3
"""Face / non-face ImageFolder from scikit-image's lfw_subset (Debian python3-skimage).

lfw_subset.npy holds 200 float64 25x25 images in [0,1]: the first 100 are
faces, the next 100 non-faces (skimage.data.lfw_subset docstring). This writes
them as 8-bit gray PNGs (round(255 x)) in

    OUT/all/{face,nonface}/NNN.png     every image (gradfeat --split all)
    OUT/train/{face,nonface}/NNN.png   a seeded per-class split, --train-frac of each class
    OUT/test/{face,nonface}/NNN.png    the rest

NNN is the index in the .npy file, so a file can be traced back to its source.
The split is a fixed function of --seed (default 0): 70/30 gives 70 + 70 train,
30 + 30 test images.

    /usr/bin/python3 tools/make_lfw_folder.py --out runs/data/lfw
    gradfeat train --data OUT --split train --val OUT --val-split test ..."""
import argparse
import os
import shutil
import struct
import zlib

import numpy as np

NPY_CANDIDATES = ["/usr/lib/python3/dist-packages/skimage/data/lfw_subset.npy"]


def find_npy():
    for p in NPY_CANDIDATES:
        if os.path.exists(p):
            return p
    try:   # another install location
        import skimage.data
        p = os.path.join(os.path.dirname(skimage.data.__file__), "lfw_subset.npy")
        if os.path.exists(p):
            return p
    except ImportError:
        pass
    raise SystemExit("make_lfw_folder: lfw_subset.npy not found (Debian: apt-get install python3-skimage)")


def png_gray(path, img):
    h, w = img.shape
    raw = b"".join(b"\x00" + img[r].tobytes() for r in range(h))
    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--npy", default=None, help="lfw_subset.npy (default: skimage's copy)")
    ap.add_argument("--train-frac", type=float, default=0.7, help="fraction of each class for training (default 0.7)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    x = np.load(a.npy or find_npy())
    if x.shape != (200, 25, 25):
        raise SystemExit(f"make_lfw_folder: expected 200 x 25 x 25 images, got {x.shape}")
    x8 = np.clip(np.rint(np.asarray(x, np.float64) * 255.0), 0, 255).astype(np.uint8)
    for sub in ("all", "train", "test"):   # rebuild: stale files would change the split
        shutil.rmtree(os.path.join(a.out, sub), ignore_errors=True)
    rng = np.random.default_rng(a.seed)
    counts = {}
    for cls, lo in (("face", 0), ("nonface", 100)):
        idx = np.arange(lo, lo + 100)
        perm = rng.permutation(idx)
        n_train = int(round(a.train_frac * len(idx)))
        if not 1 <= n_train < len(idx):
            raise SystemExit("make_lfw_folder: --train-frac leaves a split empty")
        for sub, members in (("all", idx), ("train", perm[:n_train]), ("test", perm[n_train:])):
            d = os.path.join(a.out, sub, cls)
            os.makedirs(d, exist_ok=True)
            for i in sorted(members):
                png_gray(os.path.join(d, f"{i:03d}.png"), x8[i])
            counts[(sub, cls)] = len(members)
    print(" ".join(f"{s}/{c}={n}" for (s, c), n in counts.items()))


if __name__ == "__main__":
    main()
