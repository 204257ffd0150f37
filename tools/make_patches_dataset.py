#!/usr/bin/env python3
"""A small natural-image task the project never trained on: 32x32 colour
patches cut from the photographs that Debian's python3-skimage ships
(skimage/data), one class per photograph. Each photo is cut into a grid of
non-overlapping tiles (scaled up first where it has too few), and the tiles
are dealt at random to train and test: the splits come from one distribution
(as a user's would), and a test patch never overlaps a training patch.

    /usr/bin/python3 tools/make_patches_dataset.py OUT [--train N] [--test N] [--size S] [--seed S]

writes OUT/train/<class>/*.png and OUT/test/<class>/*.png (an ImageFolder per
split: gradfeat train --data OUT --split train --val OUT --val-split test).
"""
import argparse
import os
import sys

import numpy as np

PHOTOS = ["astronaut", "coffee", "chelsea", "rocket", "motorcycle_left", "retina", "hubble_deep_field",
          "brick", "grass", "gravel"]


def load(name, data_dir):
    from PIL import Image
    for ext in (".png", ".jpg"):
        p = os.path.join(data_dir, name + ext)
        if os.path.isfile(p):
            im = np.asarray(Image.open(p).convert("RGB"))
            return im
    raise FileNotFoundError(f"{name}.png/.jpg not in {data_dir} (Debian package python3-skimage)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--train", type=int, default=200, help="training patches per class (default 200)")
    ap.add_argument("--test", type=int, default=100, help="test patches per class (default 100)")
    ap.add_argument("--size", type=int, default=32, help="patch side in pixels (default 32)")
    ap.add_argument("--scale", type=float, default=0.5,
                    help="scale each photo by this factor before cutting (raised until it has enough tiles; default 0.5)")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    try:
        import skimage
    except ImportError:
        sys.exit("make_patches_dataset.py: needs python3-skimage (apt-get install python3-skimage)")
    from PIL import Image
    data_dir = os.path.join(os.path.dirname(skimage.__file__), "data")
    rng = np.random.default_rng(a.seed)
    for cls, name in enumerate(PHOTOS):
        im = load(name, data_dir)
        h, w = im.shape[:2]
        need = a.train + a.test
        scale = a.scale
        while (int(h * scale) // a.size) * (int(w * scale) // a.size) < need:
            scale *= 1.1
        sh, sw = int(h * scale), int(w * scale)
        im = np.asarray(Image.fromarray(im).resize((sw, sh), Image.BILINEAR))
        tiles = [(y * a.size, x * a.size) for y in range(sh // a.size) for x in range(sw // a.size)]
        order = rng.permutation(len(tiles))
        for split, sel in (("train", order[:a.train]), ("test", order[a.train:need])):
            d = os.path.join(a.out, split, f"{cls:02d}_{name}")
            os.makedirs(d, exist_ok=True)
            for i, t in enumerate(sel):
                y, x = tiles[t]
                p = im[y:y + a.size, x:x + a.size]
                if rng.random() < 0.5:
                    p = p[:, ::-1]
                Image.fromarray(np.ascontiguousarray(p)).save(os.path.join(d, f"{i:04d}.png"))
    print(f"make_patches_dataset.py: {len(PHOTOS)} classes, {a.train}/{a.test} patches per class in {a.out}")


if __name__ == "__main__":
    main()
