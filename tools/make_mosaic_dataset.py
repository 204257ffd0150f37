#!/usr/bin/python3
"""Multi-label task from real images: 2x2 mosaics of Fashion-MNIST items.

Each 56x56 gray PNG holds 2-4 Fashion-MNIST items (28x28) in distinct
quadrants (the others stay black); its labels are the set of classes present.
Train mosaics use items of the IDX train split only, test mosaics items of the
test split only. Everything is a function of --seed.

    /usr/bin/python3 tools/make_mosaic_dataset.py --train 2000 --test 1000 --seed 1 --out runs/data/mosaic
    gradfeat train --data OUT/manifest.csv --split train --val OUT/manifest.csv --val-split test ...

Writes OUT/{train,test}/NNNNNN.png, OUT/manifest.csv (`path,labels,split`,
header line, labels ';'-separated class names, paths relative to the manifest)
and OUT/classes.txt (the 10 names in Fashion-MNIST label order).

gradfeat's CSV reader (host/data/data_csv.c) builds the class map from the label
tokens of the rows of the split it reads (names sorted by byte order), so every
class must occur in each split, or train and test would get different class
maps: this script checks that and fails otherwise. Names contain '/' and ' '
(no ',' ';' or '"'), which the reader keeps as they are.
Only numpy and zlib: the PNGs are written by hand (8-bit gray, no filter)."""
import argparse
import gzip
import os
import struct
import sys
import zlib

import numpy as np

FM_DIR = "/usr/share/datasets/fashion-mnist"
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def read_idx(path):
    """IDX file (gzip or plain) -> numpy array (uint8 data only)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {arr.size} bytes of data, header says {dims}")
    return arr.reshape(dims)


def load_split(fm_dir, split):
    prefix = "train" if split == "train" else "t10k"
    def find(stem):
        for ext in (".gz", ""):
            p = os.path.join(fm_dir, stem + ext)
            if os.path.exists(p):
                return p
        raise FileNotFoundError(os.path.join(fm_dir, stem) + "[.gz]")
    x = read_idx(find(f"{prefix}-images-idx3-ubyte"))
    y = read_idx(find(f"{prefix}-labels-idx1-ubyte"))
    if x.shape[0] != y.shape[0] or x.shape[1:] != (28, 28):
        raise ValueError(f"{fm_dir}: {split} images {x.shape} vs labels {y.shape}")
    return x, y


def png_gray(path, img):
    """8-bit grayscale PNG, filter 0 on every row."""
    h, w = img.shape
    raw = b"".join(b"\x00" + img[r].tobytes() for r in range(h))
    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def make_split(x, y, n, rng):
    """n mosaics: (images n x 56 x 56, class sets)."""
    imgs = np.zeros((n, 56, 56), np.uint8)
    labels = []
    for i in range(n):
        k = int(rng.integers(2, 5))                       # 2..4 items
        quads = rng.choice(4, size=k, replace=False)       # distinct quadrants
        items = rng.integers(0, x.shape[0], size=k)        # items drawn with replacement over the split
        present = set()
        for q, it in zip(quads, items):
            r, c = divmod(int(q), 2)
            imgs[i, 28 * r:28 * r + 28, 28 * c:28 * c + 28] = x[it]
            present.add(int(y[it]))
        labels.append(sorted(present))
    return imgs, labels


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", type=int, default=2000, help="training mosaics (default 2000)")
    ap.add_argument("--test", type=int, default=1000, help="test mosaics (default 1000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--fashion-mnist", default=FM_DIR, help=f"folder of the IDX files (default {FM_DIR})")
    a = ap.parse_args()
    if a.train < 1 or a.test < 1:
        ap.error("--train and --test must be at least 1")
    os.makedirs(a.out, exist_ok=True)
    # independent streams per split: the test mosaics do not change with --train
    ss_train, ss_test = np.random.SeedSequence(a.seed).spawn(2)
    rows = []
    for split, n, ss in (("train", a.train, ss_train), ("test", a.test, ss_test)):
        x, y = load_split(a.fashion_mnist, split)
        imgs, labels = make_split(x, y, n, np.random.default_rng(ss))
        seen = set(c for l in labels for c in l)
        missing = [CLASSES[c] for c in range(10) if c not in seen]
        if missing:
            sys.exit(f"make_mosaic_dataset: the {split} split has no mosaic with {', '.join(missing)}; "
                     f"gradfeat would build a different class map for it: use more mosaics or another --seed")
        os.makedirs(os.path.join(a.out, split), exist_ok=True)
        for i in range(n):
            rel = f"{split}/{i:06d}.png"
            png_gray(os.path.join(a.out, rel), imgs[i])
            rows.append(f"{rel},{';'.join(CLASSES[c] for c in labels[i])},{split}\n")
        print(f"{split}: {n} mosaics, {np.mean([len(l) for l in labels]):.2f} classes per mosaic", file=sys.stderr)
    with open(os.path.join(a.out, "manifest.csv.tmp"), "w") as f:
        f.write("path,labels,split\n")
        f.writelines(rows)
    os.replace(os.path.join(a.out, "manifest.csv.tmp"), os.path.join(a.out, "manifest.csv"))
    with open(os.path.join(a.out, "classes.txt"), "w") as f:
        f.write("".join(c + "\n" for c in CLASSES))
    print(os.path.join(a.out, "manifest.csv"))


if __name__ == "__main__":
    main()
