#!/usr/bin/env bash
# tools/run_results.sh --quick at tiny sizes (3 tasks, 1 epoch): the table has
# the three rows with every number in [0,100]; plus independent checks of the
# pieces the results rest on:
#  - logreg_baseline.py picks the same samples as `gradfeat train --limit`:
#    images whose pixels encode their index, trunk cut at the input
#    (--top conv2d_1), so gradfeat's activation cache file holds the picked
#    images; their decoded indices must equal the baseline's, for train and val;
#  - every mosaic quadrant is a Fashion-MNIST item (found in the IDX split) and
#    the manifest's labels are exactly the classes of those items;
#  - the lfw folder holds round(255 x) of lfw_subset.npy, faces = the first 100.
. "$(dirname "$0")/testlib.sh"
S="$GF_SRC"
EMO="$S/models/emotion/emotion.safetensors"
[ -f "$EMO" ] || EMO="$t/emotion.safetensors"
[ -f "$EMO" ] || bash "$S/models/emotion/fetch.sh" "$EMO" > /dev/null 2> "$t/fetch.err" || { cat "$t/fetch.err"; echo "0 passed, 1 failed"; exit 1; }
mkdir -p "$t/bin" && ln -s "$GF_BIN" "$t/bin/gradfeat"

# 1. pick(): the baseline's subsets vs gradfeat's
$PY - "$t/pick" <<'EOF'
import os, sys
sys.path.insert(0, os.path.join(os.environ["GF_SRC"], "tools"))
import numpy as np
from make_lfw_folder import png_gray
root = sys.argv[1]
for cls, lo, hi in (("a", 0, 170), ("b", 170, 300)):   # image i: left half i % 256, right half i // 256
    os.makedirs(f"{root}/{cls}")
    for i in range(lo, hi):
        img = np.zeros((4, 4), np.uint8); img[:, :2] = i % 256; img[:, 2:] = i // 256
        png_gray(f"{root}/{cls}/{i:04d}.png", img)
EOF
"$GF_BIN" train --model "$EMO" --data "$t/pick" --val "$t/pick" --limit 100 --val-limit 45 --seed 7 --top conv2d_1 \
  --method linear --epochs 1 --probe-epochs 1 --batch 32 --cache-dir "$t/pickcache" --quiet > "$t/pick.out" 2>&1; rc=$?
check "gradfeat train on the index images exits 0 (rc $rc)" '[ $rc -eq 0 ]' || cat "$t/pick.out"
check "baseline picks gradfeat's train and val samples" '$PY - "$t" "$EMO" <<EOF
import glob, os, struct, subprocess, sys
import numpy as np
t = sys.argv[1]
got = {}
for f in glob.glob(t + "/pickcache/*.bin"):   # GFACT002 | key | n | S | 8 zero bytes | ok[n] | pad to 64 | z0[n x S]
    b = open(f, "rb").read()
    assert b[:8] == b"GFACT002", b[:8]
    n, S = struct.unpack("<ii", b[16:24])
    assert S == 64 * 64, S
    z = np.frombuffer(b, np.float32, offset=(32 + n + 63) // 64 * 64).reshape(n, S)
    pix = np.rint((z + 1) * 127.5).astype(int)   # emotion net: value = pixel * 2/255 - 1
    got[n] = list(pix[:, 0] + 256 * pix[:, 63])
out = subprocess.run([sys.executable, os.environ["GF_SRC"] + "/tools/logreg_baseline.py", "--data", t + "/pick", "--val",
                      t + "/pick", "--limit", "100", "--val-limit", "45", "--seed", "7", "--print-indices"],
                     capture_output=True, text=True, check=True).stdout.split("\n")
tr, va = [list(map(int, l.split()[1:])) for l in out[:2]]
assert len(tr) == 100 and len(va) == 45 and tr != va[:len(tr)], (tr, va)
assert got.get(100) == tr, ("train", got.get(100), tr)
assert got.get(45) == va, ("val", got.get(45), va)
EOF'

# 2. the whole pipeline, tiny
GF_BUILD_DIR="$t/bin" bash "$S/tools/run_results.sh" --quick --out "$t/res" --fm-train 16 --fm-val 16 --lfw-train 16 --lfw-val 16 \
  --mosaic-train 16 --mosaic-test 16 --batch 16 --lr-iters 20 > "$t/table.md" 2> "$t/run.err"; rc=$?
cat "$t/table.md"
check "run_results.sh exits 0 (rc $rc)" '[ $rc -eq 0 ]' || tail -30 "$t/run.err"
check "table: header, 3 task rows, 6 numbers in [0,100] each" '$PY - "$t/table.md" <<EOF
import re, sys
rows = [l for l in open(sys.argv[1]) if l.startswith("|")]
assert rows[0].startswith("| task | raw-pixel LR | linear | gradient | full | finetune | wall time"), rows[0]
body = rows[2:]
assert len(body) == 3, body
for l, key, metric, n in zip(body, ("Fashion-MNIST (", "lfw", "mosaics"), ("accuracy", "accuracy", "mAP"), ("16 train / 16", "16 train / 16", "16 train / 16")):
    c = [x.strip() for x in l.strip().strip("|").split("|")]
    assert key in c[0] and metric in c[0] and n in c[0], c
    v = [float(x) for x in c[1:6]]
    assert all(0 <= x <= 100 for x in v), v
    for m in ("linear", "gradient", "full", "finetune", "trunk", "LR"):
        assert re.search(m + r" [0-9]+\.[0-9]", c[6]), (m, c[6])
EOF'
check "results.json: gradfeat + baseline per task, same n_train/n_val" '$PY - "$t/res/results.json" <<EOF
import json, sys
r = json.load(open(sys.argv[1]))
assert set(r) == {"fm", "lfw", "mosaic"}, r.keys()
for k, e in r.items():
    g, b = e["gradfeat"], e["baseline"]
    assert (g["n_train"] + g["n_holdout"], g["n_val"]) == (b["n_train"], b["n_val"]), (k, g["n_train"], g["n_val"], b)
    assert g["metric"] == b["metric"] == ("mAP" if k == "mosaic" else "accuracy"), (k, g["metric"], b["metric"])
    assert set(g["methods"]) == {"linear", "gradient", "full", "finetune"}
EOF'

# 3. the mosaics: quadrants are Fashion-MNIST items, labels = their classes
check "mosaic labels are the classes of the items in the quadrants" '$PY - "$t/res/data/mosaic-16-16-s1" <<EOF
import csv, gzip, os, struct, sys
import numpy as np
from PIL import Image
d = sys.argv[1]
names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
def idx(p):
    b = gzip.open(p).read(); nd = b[3]
    return np.frombuffer(b, np.uint8, offset=4 + 4 * nd).reshape(struct.unpack(">" + "I" * nd, b[4:4 + 4 * nd]))
fm = "/usr/share/datasets/fashion-mnist/"
lut = {}
for split, pre in (("train", "train"), ("test", "t10k")):
    x, y = idx(fm + pre + "-images-idx3-ubyte.gz"), idx(fm + pre + "-labels-idx1-ubyte.gz")
    lut[split] = {}
    for i in range(len(y)): lut[split].setdefault(x[i].tobytes(), set()).add(int(y[i]))
rows = list(csv.reader(open(d + "/manifest.csv")))
assert rows[0] == ["path", "labels", "split"], rows[0]
counts = {"train": 0, "test": 0}
for path, labels, split in rows[1:]:
    assert path.startswith(split + "/"), path
    a = np.asarray(Image.open(os.path.join(d, path)))
    assert a.shape == (56, 56) and a.dtype == np.uint8, a.shape
    present, items = set(), 0
    for r in (0, 28):
        for c in (0, 28):
            q = a[r:r + 28, c:c + 28]
            if not q.any(): continue   # an empty quadrant (no Fashion-MNIST item is all black)
            cls = lut[split].get(q.tobytes())
            assert cls is not None, (path, r, c, "not an item of the " + split + " split")
            assert len(cls) == 1, (path, cls)
            present |= cls; items += 1
    assert 2 <= items <= 4, (path, items)
    assert labels.split(";") == [names[k] for k in sorted(present)], (path, labels, present)
    counts[split] += 1
assert counts == {"train": 16, "test": 16}, counts
EOF'

# 4. the lfw folder
check "lfw folder: round(255 x), faces first, 70/30 split per class" '$PY - "$t/res/data/lfw" <<EOF
import os, sys
import numpy as np
from PIL import Image
d = sys.argv[1]
x = np.load("/usr/lib/python3/dist-packages/skimage/data/lfw_subset.npy")
for sub, n in (("all", 100), ("train", 70), ("test", 30)):
    assert sorted(os.listdir(os.path.join(d, sub))) == ["face", "nonface"]
    for cls, lo in (("face", 0), ("nonface", 100)):
        files = sorted(os.listdir(os.path.join(d, sub, cls)))
        assert len(files) == n, (sub, cls, len(files))
        for f in files:
            i = int(f[:3]); assert lo <= i < lo + 100, (sub, cls, f)
            a = np.asarray(Image.open(os.path.join(d, sub, cls, f))).astype(float)
            assert a.shape == (25, 25) and np.abs(a - 255 * x[i]).max() <= 0.5 + 1e-9, (sub, cls, f)
for cls in ("face", "nonface"):
    tr, te = (set(os.listdir(os.path.join(d, s, cls))) for s in ("train", "test"))
    assert not tr & te and tr | te == set(os.listdir(os.path.join(d, "all", cls)))
EOF'

finish
