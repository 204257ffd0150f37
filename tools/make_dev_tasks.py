#!/usr/bin/env python3
"""Development tasks carved from TRAINING data only, to choose gradfeat's defaults
without ever looking at a test split (tools/run_method_table.sh --tasks fmdev,patchesdev).

    /usr/bin/python3 tools/make_dev_tasks.py OUT [--patches PATCHES_DIR]

OUT/fmdev:      IDX files: 'train' = 5,000 Fashion-MNIST *training* images, 't10k' = 2,000 other
                training images (seeded permutation 100); the real t10k split is never read.
OUT/patchesdev: an ImageFolder whose train/test are 140/60 per class of the patches task's TRAIN
                split (tools/make_patches_dataset.py; symlinks), its test split never read.
"""
import argparse
import gzip
import os
import subprocess
import sys

import numpy as np

FM = "/usr/share/datasets/fashion-mnist"


def idx_write(path, arr, magic):
    with open(path, "wb") as f:
        f.write(np.array([magic, len(arr), *arr.shape[1:]], ">u4").tobytes())
        f.write(arr.tobytes())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--patches", help="an existing tools/make_patches_dataset.py folder (default: made in OUT)")
    a = ap.parse_args()
    fm = os.path.join(a.out, "fmdev")
    os.makedirs(fm, exist_ok=True)
    with gzip.open(os.path.join(FM, "train-images-idx3-ubyte.gz")) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(os.path.join(FM, "train-labels-idx1-ubyte.gz")) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    p = np.random.default_rng(100).permutation(len(y))
    for prefix, idx in (("train", p[:5000]), ("t10k", p[5000:7000])):
        idx_write(os.path.join(fm, f"{prefix}-images-idx3-ubyte"), x[idx], 0x803)
        idx_write(os.path.join(fm, f"{prefix}-labels-idx1-ubyte"), y[idx], 0x801)
    src = a.patches or os.path.join(a.out, "patches")
    if not os.path.isdir(os.path.join(src, "train")):
        subprocess.check_call([sys.executable, os.path.join(os.path.dirname(__file__), "make_patches_dataset.py"), src],
                              stdout=subprocess.DEVNULL)
    for c in sorted(os.listdir(os.path.join(src, "train"))):
        files = sorted(os.listdir(os.path.join(src, "train", c)))
        order = np.random.default_rng(7).permutation(len(files))
        for split, sel in (("train", order[:140]), ("test", order[140:200])):
            d = os.path.join(a.out, "patchesdev", split, c)
            os.makedirs(d, exist_ok=True)
            for i in sel:
                dst = os.path.join(d, files[i])
                if not os.path.lexists(dst):
                    os.symlink(os.path.abspath(os.path.join(src, "train", c, files[i])), dst)
    print(f"make_dev_tasks.py: {fm} (5000 / 2000 training images), {os.path.join(a.out, 'patchesdev')} (140 / 60 per class)")


if __name__ == "__main__":
    main()
