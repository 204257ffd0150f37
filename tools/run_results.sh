#!/usr/bin/env bash
# The results tables: the emotion net (FER-2013 mini-Xception) adapted with the
# four methods (linear probe, gradient, full = the paper's model, finetune) to
#   fm      Fashion-MNIST, 2000 training images (seeded subset), the full 10000 test images
#   lfw     scikit-image's lfw_subset face / non-face, 70/30 per class (tools/make_lfw_folder.py)
#   mosaic  2x2 Fashion-MNIST mosaics, multi-label, mAP (tools/make_mosaic_dataset.py)
# each next to a raw-pixel logistic-regression baseline on the same samples
# (tools/logreg_baseline.py). Prints one markdown table (also OUT/results.md,
# and OUT/results.json with everything).
#
#   tools/run_results.sh                    # full size (tens of minutes on a 2-core PoCL CPU)
#   tools/run_results.sh --quick            # smoke test: tiny subsets, 1 epoch
#   tools/run_results.sh --tasks fm,lfw -- --lr 0.005     # after `--`: extra `gradfeat train` options
#
# Options (environment twin in brackets):
#   --out DIR           run folder (RESULTS_OUT, default runs/results, runs/results-quick with --quick)
#   --build DIR         folder with the gradfeat binary (GF_BUILD_DIR, default build)
#   --tasks LIST        comma list of fm,lfw,mosaic (RESULTS_TASKS, default all three)
#   --epochs N          epochs per method (RESULTS_EPOCHS, default 10 = gradfeat's default; quick 1)
#   --batch N           batch size (RESULTS_BATCH, default 64; quick 32)
#   --seed N            subsets, shuffling, mosaics (RESULTS_SEED, default 1)
#   --fm-train N        Fashion-MNIST training images (RESULTS_FM_TRAIN, default 2000; quick 64)
#   --fm-val N          Fashion-MNIST test images, 0 = all 10000 (RESULTS_FM_VAL, default 0; quick 64)
#   --lfw-train N       lfw training images, 0 = all 140 (RESULTS_LFW_TRAIN, default 0; quick 64)
#   --lfw-val N         lfw test images, 0 = all 60 (RESULTS_LFW_VAL, default 0)
#   --mosaic-train N    training mosaics (RESULTS_MOSAIC_TRAIN, default 2000; quick 64)
#   --mosaic-test N     test mosaics (RESULTS_MOSAIC_TEST, default 1000; quick 64)
#   --lr-iters N        L-BFGS iterations of the baseline (RESULTS_LR_ITERS, default 500; quick 50)
# The device is gradfeat's usual choice (GRADFEAT_DEVICE to pick one). Exit
# status: 0 when every task ran, 1 otherwise (the table still shows the rest).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
quick=0
for a in "$@"; do [ "$a" = "--" ] && break; [ "$a" = "--quick" ] && quick=1; done
if [ $quick = 1 ]; then d_ep=1 d_batch=32 d_fmt=64 d_fmv=64 d_lfw=64 d_mst=64 d_mse=64 d_it=50 d_out=runs/results-quick
else d_ep=10 d_batch=64 d_fmt=2000 d_fmv=0 d_lfw=0 d_mst=2000 d_mse=1000 d_it=500 d_out=runs/results; fi
OUT=${RESULTS_OUT:-$d_out}; B=${GF_BUILD_DIR:-build}; TASKS=${RESULTS_TASKS:-fm,lfw,mosaic}
EPOCHS=${RESULTS_EPOCHS:-$d_ep}; BATCH=${RESULTS_BATCH:-$d_batch}; SEED=${RESULTS_SEED:-1}
FM_TRAIN=${RESULTS_FM_TRAIN:-$d_fmt}; FM_VAL=${RESULTS_FM_VAL:-$d_fmv}; LFW_TRAIN=${RESULTS_LFW_TRAIN:-$d_lfw}; LFW_VAL=${RESULTS_LFW_VAL:-0}
MOS_TRAIN=${RESULTS_MOSAIC_TRAIN:-$d_mst}; MOS_TEST=${RESULTS_MOSAIC_TEST:-$d_mse}; LR_ITERS=${RESULTS_LR_ITERS:-$d_it}
EXTRA=()
usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-2}"; }
num() { [[ "$2" =~ ^[0-9]+$ ]] || { echo "run_results.sh: $1 needs a non-negative integer, got '$2'" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) shift ;;
    --out) OUT=$2; shift 2 ;;
    --build) B=$2; shift 2 ;;
    --tasks) TASKS=$2; shift 2 ;;
    --epochs) num "$1" "${2-}"; EPOCHS=$2; shift 2 ;;
    --batch) num "$1" "${2-}"; BATCH=$2; shift 2 ;;
    --seed) num "$1" "${2-}"; SEED=$2; shift 2 ;;
    --fm-train) num "$1" "${2-}"; FM_TRAIN=$2; shift 2 ;;
    --fm-val) num "$1" "${2-}"; FM_VAL=$2; shift 2 ;;
    --lfw-train) num "$1" "${2-}"; LFW_TRAIN=$2; shift 2 ;;
    --lfw-val) num "$1" "${2-}"; LFW_VAL=$2; shift 2 ;;
    --mosaic-train) num "$1" "${2-}"; MOS_TRAIN=$2; shift 2 ;;
    --mosaic-test) num "$1" "${2-}"; MOS_TEST=$2; shift 2 ;;
    --lr-iters) num "$1" "${2-}"; LR_ITERS=$2; shift 2 ;;
    -h|--help) usage 0 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) echo "run_results.sh: unknown option '$1' (--help lists them)" >&2; exit 2 ;;
  esac
done
for t in ${TASKS//,/ }; do case $t in fm|lfw|mosaic) ;; *) echo "run_results.sh: unknown task '$t' (fm, lfw, mosaic)" >&2; exit 2 ;; esac; done

[ -x "$B/gradfeat" ] || { echo "run_results.sh: no $B/gradfeat (build first, or --build DIR / GF_BUILD_DIR)" >&2; exit 2; }
MODEL=models/emotion/emotion.safetensors
[ -f "$MODEL" ] || bash models/emotion/fetch.sh "$MODEL" || { echo "run_results.sh: could not fetch the emotion net" >&2; exit 1; }
FM=/usr/share/datasets/fashion-mnist
mkdir -p "$OUT/data" || exit 1
log() { echo "run_results.sh: $*" >&2; }

# one task: gradfeat train --method all + the baseline, each into OUT/<task>/
run_task() {   # run_task NAME  DATA SPLIT LIMIT  VAL VAL_SPLIT VAL_LIMIT
  local name=$1 data=$2 split=$3 limit=$4 val=$5 vsplit=$6 vlimit=$7 dir="$OUT/$1" rc
  rm -rf "$dir"; mkdir -p "$dir"
  log "$name: gradfeat train (log $dir/train.log)"
  local t0=$SECONDS
  "$B/gradfeat" train --model "$MODEL" --data "$data" --split "$split" --limit "$limit" \
    --val "$val" --val-split "$vsplit" --val-limit "$vlimit" --method all --epochs "$EPOCHS" --batch "$BATCH" \
    --seed "$SEED" --cache-dir "$OUT/cache" --run-dir "$dir" ${EXTRA[@]+"${EXTRA[@]}"} \
    > "$dir/table.txt" 2> "$dir/train.log"; rc=$?
  echo $((SECONDS - t0)) > "$dir/wall_seconds"
  if [ $rc -ne 0 ]; then log "$name: gradfeat train failed (exit $rc):"; tail -5 "$dir/train.log" >&2; echo $rc > "$dir/failed"; fi
  cat "$dir/table.txt" >&2
  log "$name: raw-pixel logistic regression"
  $PY tools/logreg_baseline.py --data "$data" --split "$split" --limit "$limit" --val "$val" --val-split "$vsplit" \
    --val-limit "$vlimit" --seed "$SEED" --iters "$LR_ITERS" --json "$dir/baseline.json" > "$dir/baseline.txt" 2>&1; rc=$?
  cat "$dir/baseline.txt" >&2
  [ $rc -eq 0 ] || { log "$name: baseline failed (exit $rc)"; echo "baseline $rc" >> "$dir/failed"; }
}

status=0
for t in ${TASKS//,/ }; do
  case $t in
    fm) run_task fm "$FM" train "$FM_TRAIN" "$FM" test "$FM_VAL" ;;
    lfw)
      $PY tools/make_lfw_folder.py --out "$OUT/data/lfw" >&2 || { status=1; continue; }
      run_task lfw "$OUT/data/lfw" train "$LFW_TRAIN" "$OUT/data/lfw" test "$LFW_VAL" ;;
    mosaic)
      md="$OUT/data/mosaic-$MOS_TRAIN-$MOS_TEST-s$SEED"
      if [ ! -f "$md/manifest.csv" ]; then
        $PY tools/make_mosaic_dataset.py --train "$MOS_TRAIN" --test "$MOS_TEST" --seed "$SEED" --out "$md" >&2 \
          || { status=1; continue; }
      fi
      run_task mosaic "$md/manifest.csv" train 0 "$md/manifest.csv" test 0 ;;
  esac
  [ -f "$OUT/$t/failed" ] && status=1
done

# the table
$PY - "$OUT" "$TASKS" <<'EOF' || status=1
import json, os, sys
out, tasks = sys.argv[1], sys.argv[2].split(",")
names = {"fm": "emotion net → Fashion-MNIST", "lfw": "emotion net → lfw face / non-face",
         "mosaic": "emotion net → Fashion-MNIST 2×2 mosaics (multi-label)"}
methods = ["linear", "gradient", "full", "finetune"]
def load(p):
    try:
        with open(p) as f: return json.load(f)
    except (OSError, ValueError): return None
rows, everything, device = [], {}, set()
for t in tasks:
    r, b = load(f"{out}/{t}/results.json"), load(f"{out}/{t}/baseline.json")
    try:
        wall = float(open(f"{out}/{t}/wall_seconds").read())
    except (OSError, ValueError):
        wall = None
    everything[t] = {"gradfeat": r, "baseline": b, "gradfeat_wall_seconds": wall}
    pct = lambda v: "—" if v is None else f"{100 * v:.2f}"
    metric = (r or {}).get("metric") or (b or {}).get("metric") or "?"
    if r: device.add(r.get("device", "?"))
    # training samples given (gradfeat holds --holdout of them out for model selection)
    n_tr = r["n_train"] + r.get("n_holdout", 0) if r else (b or {}).get("n_train", "?")
    n_va = (r or b or {}).get("n_val", "?")
    ms = (r or {}).get("methods", {})
    cells = [f"{names[t]} ({n_tr} train / {n_va} test, {metric})", pct((b or {}).get("val_metric"))]
    cells += [pct(ms.get(m, {}).get("val_metric")) for m in methods]
    times = [f"{m} {ms[m]['seconds']:.1f}" for m in methods if m in ms]
    if r: times.append(f"trunk {r.get('trunk_seconds', 0):.1f}")
    if b: times.append(f"LR {b['seconds']:.1f} (CPU, numpy)")
    cells.append(", ".join(times) if times else "failed")
    rows.append(cells)
dev = ", ".join(sorted(device)) or "?"
head = ["task", "raw-pixel LR", "linear", "gradient", "full", "finetune", f"wall time per method (s, {dev})"]
lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(c) + " |" for c in rows]
r0 = next((e["gradfeat"] for e in everything.values() if e["gradfeat"]), None)
note = (f"Test-split metric in % after the last epoch (no model selection). gradfeat: epochs per method {r0['epochs']}, batch "
        f"{r0['batch']}, {r0['optimizer']} lr {r0['lr']:g}, seed {r0['seed']}; method seconds include the per-epoch "
        f"evaluation; the probe (linear, {r0['epochs']}x10 epochs) trains on cached pooled features.") if r0 else ""
text = "\n".join(lines) + ("\n\n" + note if note else "") + "\n"
with open(f"{out}/results.md", "w") as f: f.write(text)
with open(f"{out}/results.json", "w") as f: json.dump(everything, f, indent=2)
print(text, end="")
EOF
exit $status
