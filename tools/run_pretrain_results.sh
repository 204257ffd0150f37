#!/usr/bin/env bash
# Issue 7's results table: source networks that gradfeat trained itself
# (`gradfeat pretrain`, small28), adapted to Fashion-MNIST labels with the four
# methods (linear probe, gradient, full = the paper's model, finetune):
#   mnist    small28 trained on MNIST digits (labels) — models/small28-mnist/make.sh
#   rotation small28 trained on Fashion-MNIST training images, self-supervised:
#            the label is the rotation (0/90/180/270°), the clothing labels are never seen
#   random   small28 at its Kaiming initialisation (one epoch at lr 1e-12 sets the BatchNorm
#            running statistics): the paper's "random θ gives nothing" control
# Target: Fashion-MNIST, a seeded subset of the training split, evaluated on the test split.
# Prints a markdown table (also OUT/results.md; OUT/<source>/ holds each run).
#
#   tools/run_pretrain_results.sh                 # full size (tens of minutes on a 2-core PoCL CPU)
#   tools/run_pretrain_results.sh --quick         # smoke test: tiny sizes
# Options (environment twin in brackets):
#   --out DIR            (PRESULTS_OUT, default runs/pretrain-results, runs/pretrain-results-quick with --quick)
#   --build DIR          folder with the gradfeat binary (GF_BUILD_DIR, default build)
#   --sources LIST       comma list of mnist,rotation,random (PRESULTS_SOURCES, default all)
#   --mnist-epochs N     epochs on MNIST's 60000 images (PRESULTS_MNIST_EPOCHS, default 2; quick: 1 on 512)
#   --rot-images N       Fashion-MNIST training images for the rotation task (PRESULTS_ROT_IMAGES, default 20000)
#   --rot-epochs N       (PRESULTS_ROT_EPOCHS, default 2)
#   --train N            target training images (PRESULTS_TRAIN, default 2000; quick 64)
#   --val N              target test images, 0 = all 10000 (PRESULTS_VAL, default 0; quick 64)
#   --epochs N           epochs per method on the target (PRESULTS_EPOCHS, default 3; quick 1)
# The mnist source reuses models/small28-mnist/small28-mnist.safetensors when it exists.
# Exit status: 0 when every source ran, 1 otherwise (the table still shows the rest).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
FM=/usr/share/datasets/fashion-mnist
quick=0
for a in "$@"; do [ "$a" = "--quick" ] && quick=1; done
if [ $quick = 1 ]; then d_me=1 d_ri=256 d_re=1 d_tr=64 d_va=64 d_ep=1 d_out=runs/pretrain-results-quick
else d_me=2 d_ri=20000 d_re=2 d_tr=2000 d_va=0 d_ep=3 d_out=runs/pretrain-results; fi
OUT=${PRESULTS_OUT:-$d_out}; B=${GF_BUILD_DIR:-build}; SOURCES=${PRESULTS_SOURCES:-mnist,rotation,random}
ME=${PRESULTS_MNIST_EPOCHS:-$d_me}; RI=${PRESULTS_ROT_IMAGES:-$d_ri}; RE=${PRESULTS_ROT_EPOCHS:-$d_re}
TR=${PRESULTS_TRAIN:-$d_tr}; VA=${PRESULTS_VAL:-$d_va}; EP=${PRESULTS_EPOCHS:-$d_ep}
usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-2}"; }
num() { [[ "$2" =~ ^[0-9]+$ ]] || { echo "run_pretrain_results.sh: $1 needs a non-negative integer, got '$2'" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) shift ;;
    --out) OUT=$2; shift 2 ;;
    --build) B=$2; shift 2 ;;
    --sources) SOURCES=$2; shift 2 ;;
    --mnist-epochs) num "$1" "${2-}"; ME=$2; shift 2 ;;
    --rot-images) num "$1" "${2-}"; RI=$2; shift 2 ;;
    --rot-epochs) num "$1" "${2-}"; RE=$2; shift 2 ;;
    --train) num "$1" "${2-}"; TR=$2; shift 2 ;;
    --val) num "$1" "${2-}"; VA=$2; shift 2 ;;
    --epochs) num "$1" "${2-}"; EP=$2; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "run_pretrain_results.sh: unknown option $1" >&2; usage 2 ;;
  esac
done
GF="$B/gradfeat"
[ -x "$GF" ] || { echo "run_pretrain_results.sh: $GF not found (build first, or --build DIR)" >&2; exit 3; }
[ -d "$FM" ] || { echo "run_pretrain_results.sh: $FM missing (apt-get install dataset-fashion-mnist)" >&2; exit 3; }
mkdir -p "$OUT"
status=0
IFS=, read -r -a srcs <<< "$SOURCES"
for s in "${srcs[@]}"; do
  d="$OUT/$s"; mkdir -p "$d"; rm -f "$d/failed"
  model="$d/source.safetensors"; t0=$(date +%s.%N)
  case "$s" in
    mnist)
      if [ $quick = 0 ] && [ -f models/small28-mnist/small28-mnist.safetensors ]; then
        cp models/small28-mnist/small28-mnist.safetensors "$model"
      else
        mn="$(tools/fetch_mnist.sh)" || { echo "fetching MNIST failed" >&2; touch "$d/failed"; status=1; continue; }
        lim=(); [ $quick = 1 ] && lim=(--limit 512)
        "$GF" pretrain --arch small28 --data "$mn" --split train "${lim[@]}" --no-augment --epochs "$ME" --seed 1 \
          --out "$model" --log-every 100 2> "$d/pretrain.log" || { tail -5 "$d/pretrain.log" >&2; touch "$d/failed"; status=1; continue; }
      fi ;;
    rotation)
      "$GF" pretrain --arch small28 --task rotation --data "$FM" --split train --limit "$RI" --epochs "$RE" --seed 1 \
        --out "$model" --log-every 100 2> "$d/pretrain.log" || { tail -5 "$d/pretrain.log" >&2; touch "$d/failed"; status=1; continue; } ;;
    random)
      "$GF" pretrain --arch small28 --data "$FM" --split train --limit 1024 --epochs 1 --lr 1e-12 --weight-decay 0 \
        --no-augment --seed 1 --out "$model" --quiet 2> "$d/pretrain.log" || { tail -5 "$d/pretrain.log" >&2; touch "$d/failed"; status=1; continue; } ;;
    *) echo "run_pretrain_results.sh: unknown source $s" >&2; status=1; continue ;;
  esac
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc > "$d/pretrain_seconds"
  "$GF" train --model "$model" --data "$FM" --split train --limit "$TR" --val "$FM" --val-split test --val-limit "$VA" \
    --method all --epochs "$EP" --probe-epochs 200 --batch 64 --seed 1 --cache-dir "" --run-dir "$d/run" \
    --log-every 100 > "$d/train.out" 2> "$d/train.log" || { tail -5 "$d/train.log" >&2; touch "$d/failed"; status=1; }
done

$PY - "$OUT" "$SOURCES" <<'EOF' || status=1
import json, sys
out, srcs = sys.argv[1], sys.argv[2].split(",")
names = {"mnist": "small28 trained on MNIST digits (labels)",
         "rotation": "small28 trained on Fashion-MNIST images, rotation task (no labels)",
         "random": "small28 at random init (control)"}
methods = ["linear", "gradient", "full", "finetune"]
rows, dev, r0 = [], set(), None
for s in srcs:
    try: r = json.load(open(f"{out}/{s}/run/results.json"))
    except (OSError, ValueError): r = None
    try: pt = float(open(f"{out}/{s}/pretrain_seconds").read())
    except (OSError, ValueError): pt = None
    if r: dev.add(r.get("device", "?")); r0 = r0 or r
    ms = (r or {}).get("methods", {})
    pct = lambda v: "—" if v is None else f"{100 * v:.2f}"
    times = [f"{m} {ms[m]['seconds']:.0f}" for m in methods if m in ms]
    if pt is not None: times.insert(0, f"pretrain {pt:.0f}")
    n = f" ({r['n_train']} train / {r['n_val']} test)" if r else ""
    rows.append([names.get(s, s) + n] + [pct(ms.get(m, {}).get("val_metric")) for m in methods] + [", ".join(times) or "failed"])
head = ["source → Fashion-MNIST labels (accuracy %)", "linear", "gradient", "full", "finetune",
        f"wall time (s, {', '.join(sorted(dev)) or '?'})"]
lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(c) + " |" for c in rows]
note = (f"Test-split accuracy after the last epoch. Top block: small28's conv3+bn3+relu (BN folded at load). "
        f"Epochs per method {r0['epochs']}, batch {r0['batch']}, {r0['optimizer']} lr {r0['lr']:g}, probe 200 epochs, "
        f"seed {r0['seed']}.") if r0 else ""
text = "\n".join(lines) + ("\n\n" + note if note else "") + "\n"
open(f"{out}/results.md", "w").write(text)
print(text, end="")
EOF
exit $status
