#!/usr/bin/env bash
# The networks `gradfeat pretrain` builds ARE the PyTorch ones: for small28, bigan and resnet18c
# at full width, a model file written after two training steps (BN running statistics moved)
# loads by tensor name into the PyTorch peer's modules (tools/torch_pretrain_bench.py: same
# state_dict keys and shapes, num_batches_tracked aside), and in eval mode PyTorch's logits on
# real Fashion-MNIST test images equal `gradfeat predict`'s (loader, preprocessing, BN folding,
# graph executor) to 1e-4 relative.
. "$(dirname "$0")/testlib.sh"

"$PY" - "$t" <<'EOF' || { echo "cannot write the test images"; exit 1; }
import gzip, sys
import numpy as np
x = np.frombuffer(gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").read(), np.uint8,
                  offset=16).reshape(-1, 28, 28)
for i in range(6):
    open(f"{sys.argv[1]}/img{i}.pgm", "wb").write(b"P5 28 28 255\n" + x[i * 997].tobytes())
EOF

for a in small28 bigan resnet18c; do
  "$G" pretrain --arch "$a" --data "$FM" --limit 16 --batch 8 --steps 2 --seed 4 --quiet --out "$t/$a.safetensors" \
      > /dev/null 2> "$t/$a.err"; rc=$?
  check "$a: pretrain --steps 2 exits 0 (rc $rc)" '[ $rc -eq 0 ]' || { cat "$t/$a.err"; continue; }
  "$G" predict "$t/$a.safetensors" "$t"/img*.pgm --json --top-k 10 > "$t/$a.json" 2> "$t/$a.perr"; rc=$?
  check "$a: predict exits 0 (rc $rc)" '[ $rc -eq 0 ]' || cat "$t/$a.perr"
  "$PY" - "$GF_SRC/tools" "$a" "$t/$a.safetensors" "$t/$a.json" > "$t/$a.cmp" 2>&1 <<'EOF'
import json, sys
import numpy as np
import torch
sys.path.insert(0, sys.argv[1])
import gfmodel
import torch_pretrain_bench as tb
arch, path, pred = sys.argv[2], sys.argv[3], sys.argv[4]
graph, pre, classes, tensors = gfmodel.read(path)
c, h, w = graph["input"]["shape"]
k = tensors["fc.weight"].shape[0]
net = tb.build(arch, c, k)
want = {n: t for n, t in net.state_dict().items() if not n.endswith("num_batches_tracked")}
if set(want) != set(tensors):
    sys.exit(f"names differ: missing {sorted(set(want) - set(tensors))}, extra {sorted(set(tensors) - set(want))}")
for n, t in want.items():
    if tuple(t.shape) != tuple(tensors[n].shape):
        sys.exit(f"{n}: shape {list(tensors[n].shape)} in the file, {list(t.shape)} in torch")
net.load_state_dict({n: torch.from_numpy(tensors[n].copy()) for n in want}, strict=False)
net.eval()
rows = json.load(open(pred))
worst = 0.0
for r in rows:
    img = open(r["image"], "rb").read()[-h * w:]
    x = torch.from_numpy(np.frombuffer(img, np.uint8).astype(np.float32).reshape(1, 1, h, w)) / 255.0
    x = (x - pre["mean"][0]) / pre["std"][0]
    with torch.no_grad():
        ref = net(x)[0].double().numpy()
    got = np.zeros(k)
    for e in r["top"]:
        got[e["index"]] = e["logit"]
    scale = max(1.0, float(np.abs(ref).max()))
    worst = max(worst, float(np.abs(got - ref).max()) / scale)
print(f"{arch}: {len(rows)} images, max |gradfeat - torch| / scale = {worst:.3g}")
sys.exit(0 if worst <= 1e-4 and len(rows) == 6 else 1)
EOF
  rc=$?
  check "$a: PyTorch logits equal gradfeat's ($(tail -1 "$t/$a.cmp"))" '[ $rc -eq 0 ]' || cat "$t/$a.cmp"
done

finish
