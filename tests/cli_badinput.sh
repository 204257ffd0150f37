#!/usr/bin/env bash
# The bad-input catalogue: every row of tests/badinput.tsv (also the table in
# tests/README.md) is one bad model file, dataset, image, CLI argument or
# device selection; the command must exit with the listed code and its stderr
# must contain the listed fragment. Never a crash, never exit 0. Fixtures are
# written here (tiny model via tools/gfmodel.py, then broken copies; IDX
# records cut from Fashion-MNIST; small images).
set -u
G=${GF_BIN:?GF_BIN}
SRC=${GF_SRC:?GF_SRC}
PY=/usr/bin/python3
FM=/usr/share/datasets/fashion-mnist
TSV="$SRC/tests/badinput.tsv"
T=$(mktemp -d /tmp/gf_badinput_XXXXXX)
trap 'rm -rf "$T"' EXIT
export GRADFEAT_CACHE=0 GRADFEAT_QUIET=1

"$PY" - "$T" "$SRC/tools" "$FM" <<'PYEOF' || { echo "FATAL: could not write the fixtures"; exit 1; }
import gzip, io, json, os, struct, sys, zlib
import numpy as np
T, tools, FM = sys.argv[1:4]
sys.path.insert(0, tools)
import gfmodel
r = np.random.default_rng(0)
def w(name, data):
    p = os.path.join(T, name)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    open(p, "wb").write(data)

# ---- models: one valid tiny model, then broken copies
def build():
    g = gfmodel.Graph("x", [3, 8, 8])
    g.tensor("conv.weight", r.standard_normal((4, 3, 3, 3)))
    for k, v in (("weight", 1.0), ("bias", 0.0), ("running_mean", 0.0), ("running_var", 1.0)):
        g.tensor("bn." + k, np.full(4, v))
    g.tensor("fc.weight", r.standard_normal((2, 4)))
    g.add("conv", "conv2d", ["x"], {"weight": "conv.weight"}, {"pad": [1, 1, 1, 1]})
    g.add("bn", "batchnorm", ["conv"], {k: "bn." + k for k in ("weight", "bias", "running_mean", "running_var")})
    g.add("relu", "relu", ["bn"])
    g.add("gap", "global_avgpool", ["relu"])
    g.add("fc", "linear", ["gap"], {"weight": "fc.weight"})
    g.outputs = ["fc"]
    g.feature = "gap"
    return g
pre = {"input_size": [8, 8], "channels": 3, "color_order": "RGB", "resize": "stretch"}
ok = os.path.join(T, "m/ok.safetensors")
os.makedirs(os.path.dirname(ok), exist_ok=True)
gfmodel.write(ok, build(), pre, ["cat", "dog"])
data = open(ok, "rb").read()
n = struct.unpack("<Q", data[:8])[0]
hdr = json.loads(data[8:8 + n])
body = data[8 + n:]
def dump(name, h, b=None):
    hb = json.dumps(h).encode()
    w("m/" + name, struct.pack("<Q", len(hb)) + hb + (body if b is None else b))
def edit(name, fn):
    h = json.loads(json.dumps(hdr)); fn(h); dump(name, h)
def meta(name, key, fn):
    def f(h):
        v = json.loads(h["__metadata__"][key]); v = fn(v) or v; h["__metadata__"][key] = json.dumps(v)
    edit(name, f)
def node(i, **kw):
    return lambda g: g["nodes"][i].update(**kw)
w("m/empty.safetensors", b"")
w("m/garbage.safetensors", b"hello")
w("m/truncated.safetensors", data[:-40])
w("m/hugeheader.safetensors", struct.pack("<Q", 1 << 62) + data[8:])
w("m/headerpastend.safetensors", struct.pack("<Q", len(data)) + data[8:])
w("m/notjson.safetensors", struct.pack("<Q", 8) + b"{nope!!}")
w("m/jsonarray.safetensors", struct.pack("<Q", 2) + b"[]")
edit("nometa.safetensors", lambda h: h.pop("__metadata__"))
edit("version.safetensors", lambda h: h["__metadata__"].update({"gradfeat.format_version": "2"}))
edit("nograph.safetensors", lambda h: h["__metadata__"].pop("gradfeat.graph"))
edit("graphnotjson.safetensors", lambda h: h["__metadata__"].update({"gradfeat.graph": "{not json"}))
edit("offsets.safetensors", lambda h: h["conv.weight"]["data_offsets"].__setitem__(1, h["conv.weight"]["data_offsets"][1] + 10**9))
edit("offsetsorder.safetensors", lambda h: h["conv.weight"].update(data_offsets=[400, 0]))
edit("dtype.safetensors", lambda h: h["bn.bias"].update(dtype="I32"))
edit("bytecount.safetensors", lambda h: h["bn.bias"].update(shape=[5]))
edit("negshape.safetensors", lambda h: h["bn.bias"].update(shape=[-4]))
edit("shape.safetensors", lambda h: h["fc.weight"].update(shape=[4, 2]))
edit("missing.safetensors", lambda h: h.update({"bn.running_variance": h.pop("bn.running_var")}))   # data still covered once
meta("unknownop.safetensors", "gradfeat.graph", node(2, op="swish"))
meta("cycle.safetensors", "gradfeat.graph", node(0, inputs=["relu"]))
meta("undefinedinput.safetensors", "gradfeat.graph", node(2, inputs=["nowhere"]))
meta("dupname.safetensors", "gradfeat.graph", node(2, name="conv"))
meta("badattr.safetensors", "gradfeat.graph", node(0, attrs={"stride": [0, 0]}))
meta("hugeattr.safetensors", "gradfeat.graph", node(0, attrs={"pad": [10**89, 1, 1, 1]}))   # fuzz_model: UB cast
meta("nooutputs.safetensors", "gradfeat.graph", lambda g: g.update(outputs=["ghost"]))
meta("badfeature.safetensors", "gradfeat.graph", lambda g: g.update(feature="ghost"))
meta("badinputshape.safetensors", "gradfeat.graph", lambda g: g["input"].update(shape=[3, 0, 8]))
meta("badpre_std.safetensors", "gradfeat.preprocess", lambda p: p.update(mean=[0, 0, 0], std=[1, 0, 1]))
meta("badpre_size.safetensors", "gradfeat.preprocess", lambda p: p.update(input_size=[9, 9]))
meta("badpre_resize.safetensors", "gradfeat.preprocess", lambda p: p.update(resize="squash"))
meta("classes.safetensors", "gradfeat.classes", lambda c: ["cat", "dog", "bird"])
os.makedirs(os.path.join(T, "m/dir.safetensors"), exist_ok=True)
g0 = build(); g0.tensors["conv.weight"] = np.zeros((0, 3, 3, 3)); gfmodel.write(os.path.join(T, "m/conv0.safetensors"), g0, pre, ["cat", "dog"])
edit("grapharray.safetensors", lambda h: h["__metadata__"].update({"gradfeat.graph": "[]"}))
# another architecture (other block names) for a --resume with the wrong --model
g2 = gfmodel.Graph("x", [3, 8, 8])
g2.tensor("s1.weight", r.standard_normal((4, 3, 3, 3))); g2.tensor("s2.weight", r.standard_normal((4, 4, 3, 3)))
g2.tensor("head.weight", r.standard_normal((2, 4)))
g2.add("s1", "conv2d", ["x"], {"weight": "s1.weight"}, {"pad": [1, 1, 1, 1]}); g2.add("a1", "relu", ["s1"])
g2.add("s2", "conv2d", ["a1"], {"weight": "s2.weight"}, {"pad": [1, 1, 1, 1]}); g2.add("a2", "relu", ["s2"])
g2.add("pool", "global_avgpool", ["a2"]); g2.add("head", "linear", ["pool"], {"weight": "head.weight"})
g2.outputs = ["head"]; g2.feature = "pool"
gfmodel.write(os.path.join(T, "m/other_arch.safetensors"), g2, pre, ["cat", "dog"])
# strict safetensors (issue 21): names once, data covered exactly once, only space padding in the header
hj = json.dumps(hdr).encode()
k = hj.index(b'"fc.weight"'); e = hj.index(b"}", k) + 1
w("m/dupname_tensor.safetensors", struct.pack("<Q", len(hj) + e - k + 2) + hj[:-1] + b", " + hj[k:e] + b"}" + body)
edit("overlap.safetensors", lambda h: h["bn.bias"].update(data_offsets=h["bn.weight"]["data_offsets"]))
dump("trailing.safetensors", hdr, body + bytes(8))
def shifted(h):
    for kk, v in h.items():
        if kk != "__metadata__": v["data_offsets"] = [x + 8 for x in v["data_offsets"]]
h2 = json.loads(json.dumps(hdr)); shifted(h2); dump("gap.safetensors", h2, bytes(8) + body)
w("m/headernul.safetensors", struct.pack("<Q", len(hj) + 8) + hj + bytes(8) + body)
w("m/latin1name.safetensors", struct.pack("<Q", len(hj)) + hj.replace(b'"fc.weight"', b'"fc.w\xe9ight"') + body)
w("m/headergarbage.safetensors", struct.pack("<Q", len(hj) + 4) + hj + b"xyz " + body)
# non-finite weights; a data checksum that does not match
fb = hdr["fc.weight"]["data_offsets"][0]
b2 = bytearray(body); b2[fb:fb + 4] = struct.pack("<f", float("nan")); dump("nan.safetensors", hdr, bytes(b2))
b3 = bytearray(body); b3[fb:fb + 4] = struct.pack("<f", float("-inf")); dump("inf.safetensors", hdr, bytes(b3))
def fnv(b):
    x = 1469598103934665603
    for c in b: x = ((x ^ c) * 1099511628211) & (2**64 - 1)
    return "%016x" % x
h3 = json.loads(json.dumps(hdr)); h3["__metadata__"]["gradfeat.data_fnv1a64"] = fnv(body)
dump("sum_ok.safetensors", h3)
b4 = bytearray(body); b4[fb] ^= 0x01; dump("sum_bad.safetensors", h3, bytes(b4))

# ---- images (for predict with ok.safetensors)
from PIL import Image
small = Image.fromarray((np.arange(64).reshape(8, 8) * 4).astype(np.uint8))
b = io.BytesIO(); small.save(b, "PNG"); png = b.getvalue()
b = io.BytesIO(); small.convert("RGB").save(b, "JPEG"); jpg = b.getvalue()
w("img/ok.png", png)
w("img/empty.png", b"")
w("img/text.png", b"this is not an image\n")
w("img/truncated.png", png[: len(png) // 2])
w("img/truncated.jpg", jpg[: len(jpg) - 20])
# PNG whose IDAT chunk claims 1 GiB (stb would allocate it before reading)
idat = png.index(b"IDAT") - 4
w("img/chunklen.png", png[:idat] + struct.pack(">I", 1 << 30) + png[idat + 4:])
# valid PNG header claiming 20000 x 20000 pixels (400 Mpx)
ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
w("img/huge.png", png[:16] + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)) + png[33:])
w("img/huge.pgm", b"P5\n100000 100000\n255\n" + bytes(16))

# ---- datasets
with gzip.open(os.path.join(FM, "t10k-images-idx3-ubyte.gz")) as f: im = f.read(16 + 3 * 784)
with gzip.open(os.path.join(FM, "t10k-labels-idx1-ubyte.gz")) as f: lb = f.read(8 + 3)
im = im[:4] + struct.pack(">I", 3) + im[8:]
lb = lb[:4] + struct.pack(">I", 3) + lb[8:]
def idx(name, images, labels):
    w("d/%s/x-images-idx3-ubyte" % name, images)
    if labels is not None: w("d/%s/x-labels-idx1-ubyte" % name, labels)
idx("idx_ok", im, lb)
idx("idx_magic", b"\x01\x02\x08\x03" + im[4:], lb)
idx("idx_type", im[:2] + b"\x0d" + im[3:], lb)
idx("idx_truncated", im[:-100], lb)
idx("idx_claim", im[:4] + struct.pack(">III", 1 << 20, 1024, 1024) + im[16:], lb)
idx("idx_count", im, lb[:4] + struct.pack(">I", 4) + lb[8:] + b"\x00")
idx("idx_nolabels", im, None)
idx("idx_dims", im[:3] + b"\x02" + im[4:12], lb)
idx("idx_swapped", im, im)                                                # the labels file is an images file
idx("idx_one", im, lb[:8] + bytes([lb[8]]) * 3)                        # three samples of one class
w("d/csv_same.csv", b"path,labels\n../img/ok.png,cat;dog\n../img/ok.png,cat;dog\n")   # multi-label, every row the same
w("d/idx_gz/x-images-idx3-ubyte.gz", gzip.compress(im)[:-30])
w("d/idx_gz/x-labels-idx1-ubyte", lb)
w("d/csv_nul.csv", b"path,labels\n\x00a.png,x\n")
w("d/csv_cols.csv", b"a,b,c,d\n")
w("d/csv_missing.csv", b"path,labels\nnone1.png,cat\nnone2.png,dog\n")
w("d/csv_empty.csv", b"")
w("d/csv_huge_label.csv", b"path,labels\nimg/ok.png,0\nimg/ok.png,999999\n")
w("d/noise.bin", bytes(r.integers(0, 256, 100, dtype=np.uint8)))
os.makedirs(os.path.join(T, "d/folder_empty/onlyclass"), exist_ok=True)
w("d/folder_bad/k/x.png", b"x")
w("d/folder_trunc/k/t.jpg", jpg[: len(jpg) - 20])
w("d/folder_huge/k/h.png", open(os.path.join(T, "img/huge.png"), "rb").read())
w("d/class_names.txt", b"a\nb\n")
PYEOF
mkdir -p "$T/empty_icd"
# named pipes where files are read: nothing ever writes to them, so a reader that opens one blocks forever
mkdir -p "$T/d/idx_fifo" "$T/ck/fifo"
cp "$T/d/idx_ok/x-labels-idx1-ubyte" "$T/d/idx_fifo/"
for f in m/fifo.safetensors d/fifo.csv d/idx_fifo/x-images-idx3-ubyte d/fifo_classes.txt d/fifo.conf ck/fifo/checkpoint.gfckpt; do
  mkfifo "$T/$f" || { echo "FATAL: mkfifo $f"; exit 1; }
done

# ---- checkpoints: a tiny run SIGKILLed after its second probe step (GRADFEAT_TEST_KILL_AT, host/method/train.c),
# then broken copies; ck/modelchg was trained on ck/model.safetensors, which then changes
ckpt_run() {   # ckpt_run DIR MODEL
  ( cd "$T" && GRADFEAT_TEST_KILL_AT=linear:2 "$G" train --model "$2" --data d/idx_ok/x-images-idx3-ubyte --epochs 1 --probe sgd \
      --batch 1 --checkpoint-every 1 --run-dir "$1" >/dev/null 2>&1 & wait $! ) 2>/dev/null
  [ -s "$T/$1/checkpoint.gfckpt" ] || { echo "FATAL: no checkpoint in $1"; exit 1; }
}
cp "$T/m/ok.safetensors" "$T/ck_model.safetensors"
ckpt_run ck/good m/ok.safetensors
ckpt_run ck/modelchg ck_model.safetensors
# ck/datachg was trained on d/idx_chg, whose pixels then change (same size, same mtime)
mkdir -p "$T/d/idx_chg" && cp -p "$T"/d/idx_ok/* "$T/d/idx_chg/"
( cd "$T" && GRADFEAT_TEST_KILL_AT=linear:2 "$G" train --model m/ok.safetensors --data d/idx_chg/x-images-idx3-ubyte --probe sgd \
    --epochs 1 --batch 1 --checkpoint-every 1 --run-dir ck/datachg >/dev/null 2>&1 & wait $! ) 2>/dev/null
"$PY" -c "
import sys; p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); b[100] ^= 0xff; open(p, 'r+b').write(b)" "$T/d/idx_chg/x-images-idx3-ubyte"
touch -r "$T/d/idx_ok/x-images-idx3-ubyte" "$T/d/idx_chg/x-images-idx3-ubyte"
"$PY" - "$T" <<'PYEOF' || { echo "FATAL: could not write the checkpoint fixtures"; exit 1; }
import os, sys
T = sys.argv[1]
good = open(T + "/ck/good/checkpoint.gfckpt", "rb").read()
def w(d, data):
    os.makedirs(T + "/ck/" + d, exist_ok=True)
    if data is not None: open(T + "/ck/%s/checkpoint.gfckpt" % d, "wb").write(data)
b = bytearray(good); b[len(b) // 2] ^= 0x40; w("corrupt", bytes(b))
w("trunc", good[:100])
w("garbage", b"hello\n")
w("none", None)
m = bytearray(open(T + "/ck_model.safetensors", "rb").read()); m[-3] ^= 0x01   # one weight, not the header
open(T + "/ck_model.safetensors", "wb").write(bytes(m))
PYEOF
# checkpoints bound to their run directory (issue 21 item 4): two runs that differ in --lr, killed in gradient
# (linear done, primal cache on); ck/swapmetrics holds A's files and B's checkpoint, ck/swapmodel also B's metrics.jsonl
for x in A B; do
  ( cd "$T" && GRADFEAT_TEST_KILL_AT=gradient:1 "$G" train --model m/ok.safetensors --data d/idx_ok/x-images-idx3-ubyte \
      --method linear,gradient --epochs 1 --probe sgd --batch 1 --checkpoint-every 1 --lr "$([ $x = A ] && echo 0.001 || echo 0.002)" \
      --run-dir ck/run$x >/dev/null 2>&1 & wait $! ) 2>/dev/null
  [ -s "$T/ck/run$x/linear.safetensors" ] || { echo "FATAL: no linear.safetensors in ck/run$x"; exit 1; }
done
cp -r "$T/ck/runA" "$T/ck/swapmetrics"; cp "$T/ck/runB/checkpoint.gfckpt" "$T/ck/swapmetrics/"
cp -r "$T/ck/runA" "$T/ck/swapmodel"; cp "$T/ck/runB/checkpoint.gfckpt" "$T/ck/runB/metrics.jsonl" "$T/ck/swapmodel/"
# a progressive JPEG whose scans use Huffman tables it never defines (found by fuzz_image)
cp "$SRC/tests/data/jpeg-undefined-huffman-1.jpg" "$T/img/undefined-huffman.jpg"

[ -r "$TSV" ] || { echo "FATAL: $TSV missing"; exit 1; }
fails=0; rows=0
# ASan reserves terabytes of shadow address space at start, so a sanitizer build cannot run under ulimit -v / -d
san=0; grep -qs "^GF_SANITIZE:BOOL=ON" "${GF_BUILD:-}/CMakeCache.txt" && san=1
while IFS=$'\t' read -r id group want frag cmd; do
  case "$id" in ''|'#'*|id) continue ;; esac
  rows=$((rows + 1))
  case "$san:$cmd" in 1:ulimit\ -[vd]*) echo "not run in a sanitizer build (ASan needs unlimited address space): $id"; continue ;; esac
  grep -qF "| \`$id\` |" "$SRC/tests/README.md" || { echo "FAIL: $id is not in the tests/README.md table"; fails=$((fails + 1)); }
  ( cd "$T" && eval "$cmd" ) >"$T/out" 2>"$T/err" </dev/null
  rc=$?
  if [ "$rc" != "$want" ]; then
    echo "FAIL: $id: exit $rc, want $want: $cmd"; head -5 "$T/err"; fails=$((fails + 1)); continue
  fi
  if ! grep -qF -- "$frag" "$T/err"; then
    echo "FAIL: $id: stderr lacks '$frag': $cmd"; head -5 "$T/err"; fails=$((fails + 1)); continue
  fi
  if grep -qE "AddressSanitizer|runtime error:|LeakSanitizer" "$T/err"; then
    echo "FAIL: $id: sanitizer report"; head -30 "$T/err"; fails=$((fails + 1)); continue
  fi
  echo "ok  $id ($rc): $(grep -F -- "$frag" "$T/err" | head -1 | cut -c1-150)"
done <"$TSV"
[ "$rows" -ge 40 ] || { echo "FAIL: only $rows rows in $TSV"; fails=$((fails + 1)); }
[ "$fails" -eq 0 ] && echo "cli_badinput: $rows bad inputs, all as catalogued" || echo "cli_badinput: $fails of $rows failed"
exit $((fails > 0))
