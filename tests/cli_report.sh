#!/usr/bin/env bash
# gradfeat report on a real run directory: a tiny training run (emotion net on
# Fashion-MNIST, the four methods), then the HTML page rendered in headless
# Chromium (Debian `chromium`). Checks that the page is self-contained, that the
# comparison table, curves, metadata, confusion matrices and per-class AP carry
# the numbers of the run files (compared here with numbers Python reads from
# those files, not with the report's own code), that the screenshot is not blank
# and shows the method colours, and the exit codes of bad run directories.
. "$(dirname "$0")/testlib.sh"
CHROME=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROME" ]; then
  echo "FAIL: chromium not found (Debian: apt-get install chromium; tools/setup.sh --tests installs it)"
  echo "0 passed, 1 failed"; exit 1
fi
EMO="$t/emotion.safetensors"
bash "$GF_SRC/models/emotion/fetch.sh" "$EMO" > /dev/null 2> "$t/fetch.err" || { cat "$t/fetch.err"; echo "0 passed, 1 failed"; exit 1; }

R="$t/run"
"$G" train --model "$EMO" --data "$FM" --split train --limit 64 --val "$FM" --val-split test --val-limit 64 \
  --epochs 2 --batch 32 --cache-dir "$t/cache" --run-dir "$R" --quiet > "$t/train.txt" 2> "$t/train.err"; rc=$?
check "training run exits 0 (rc $rc)" '[ $rc -eq 0 ]' || { cat "$t/train.err"; echo "0 passed, 1 failed"; exit 1; }

# Chromium, sandboxed to a temp profile with no network services.
chrome() {
  timeout 90 "$CHROME" --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --disable-dev-shm-usage --user-data-dir="$t/profile" "$@" 2>> "$t/chrome.err"
}

# ---- 1. the page of the real run: table, curves, metadata ----
"$G" report "$R" > "$t/out.txt" 2> "$t/err.txt"; rc=$?
check "report exits 0 (rc $rc)" '[ $rc -eq 0 ]' || cat "$t/err.txt"
check "report prints the path it wrote" 'grep -qx "$R/report.html" "$t/out.txt"'
check "no temp file left behind" '[ -z "$(ls "$R" | grep tmp)" ]'
check "self-contained: no scripts, no external URLs or resources" \
  '! grep -Eqi "<script|https?://|src=|<link|@import|url\(" "$R/report.html"'
chrome --dump-dom "file://$R/report.html" > "$t/dom.html"
check "Chromium parses the page (--dump-dom)" '[ -s "$t/dom.html" ] && grep -q "Comparison of the methods" "$t/dom.html"' || tail -5 "$t/chrome.err"

# Expected table text straight from results.json (the CLI table's formats: loss %.4f, metric %.2f%%).
check "comparison table rows carry results.json numbers (HTML and DOM)" '$PY - "$R" "$R/report.html" "$t/dom.html" <<EOF
import json, re, sys
run, *pages = sys.argv[1:]
res = json.load(open(run + "/results.json"))
assert set(res["methods"]) == {"linear", "gradient", "full", "finetune"}, res["methods"]
for page in pages:
    html = open(page, encoding="utf-8").read()
    table = re.search(r"<table id=\"comparison\">(.*?)</table>", html, re.S).group(1)
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)[1:]
    text = [re.sub(r"<[^>]+>", " ", r) for r in rows]
    assert len(text) == 4, text
    for name, row in zip(["linear", "gradient", "full", "finetune"], text):   # the paper order
        m = res["methods"][name]
        want = [name, "%.4f" % m["train_loss"], "%.2f%%" % (100 * m["train_metric"]),
                "%.4f" % m["val_loss"], "%.2f%%" % (100 * m["val_metric"]), "%.1f" % m["seconds"]]
        got = row.split()
        for w in want:
            assert w in got, (page, name, w, got)
    best = max(res["methods"], key=lambda k: res["methods"][k]["val_metric"])
    assert re.search(r"<tr class=\"best\">.*?</span>\s*%s\s*<" % best, table, re.S), ("best row", best)
EOF'

check "curves: one loss and one accuracy panel per method, one point per epoch" '$PY - "$R" "$t/dom.html" <<EOF
import json, re, sys
run, page = sys.argv[1:]
html = open(page, encoding="utf-8").read()
epochs = {}
for line in open(run + "/metrics.jsonl"):
    o = json.loads(line); epochs.setdefault(o["method"], []).append(o)
for row, key in (("loss", "train_loss"), ("metric", "train_metric")):
    div = re.search(r"<div class=\"charts\" id=\"%s-curves\">(.*?)</div>" % row, html, re.S).group(1)
    panels = re.findall(r"<svg.*?</svg>", div, re.S)
    assert len(panels) == 4, (row, len(panels))
    for p in panels:
        name = re.search(r"class=\"ptitle\"[^>]*>(\w+)<", p).group(1)
        solid = [l for l in re.findall(r"<polyline points=\"([^\"]+)\"([^>]*)>", p) if "dasharray" not in l[1]][0][0]
        ys = [float(pt.split(",")[1]) for pt in solid.split()]
        vals = [e[key] for e in epochs[name]]
        assert len(ys) == len(vals), (name, row, len(ys), len(vals))
        # higher value = smaller (or, closer than the 0.1-px grid, equal) SVG y: the pixel order follows the data order
        for i in range(len(vals)):
            for j in range(len(vals)):
                if vals[i] > vals[j] + 1e-9: assert ys[i] <= ys[j], (name, row, i, j)   # equal: closer than 0.1 px
EOF'

check "metadata: device, driver, seed, gradfeat version, times" '$PY - "$R" "$t/dom.html" <<EOF
import json, re, sys, html as H
run, page = sys.argv[1:]
res = json.load(open(run + "/results.json"))
meta = re.search(r"<table class=\"meta\" id=\"metadata\">(.*?)</table>", open(page, encoding="utf-8").read(), re.S).group(1)
pairs = dict((H.unescape(k), H.unescape(v)) for k, v in re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td></tr>", meta))
for k in ("device", "driver", "gradfeat", "optimizer", "metric", "model", "top"):
    assert pairs[k] == res[k], (k, pairs.get(k), res[k])
assert pairs["seed"] == "%d" % res["seed"] and pairs["n_val"] == "%d" % res["n_val"], pairs
assert pairs["trunk_seconds"] == "%.2f s" % res["trunk_seconds"], pairs["trunk_seconds"]
# the phases before the probe (tools/bench_job.sh reads them): caches onto the device, the block features
assert res["cache_seconds"] >= 0 and res["features_seconds"] > 0, (res["cache_seconds"], res["features_seconds"])
total = sum(m["seconds"] for m in res["methods"].values())
assert pairs["training time (all methods)"] == "%.2f s" % total, (pairs["training time (all methods)"], total)
assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", pairs["results.json written"])
EOF'

# ---- 2. confusion matrices and per-class AP (files as report.h specifies them) ----
$PY - "$R" <<'EOF'
import json, sys
run = sys.argv[1]
K = 10
for s, m in enumerate(["linear", "gradient", "full", "finetune"]):
    c = [[(3 * i + 5 * j + s) % 7 if i != j else 20 + i + s for j in range(K)] for i in range(K)]
    json.dump({"method": m, "split": "val", "classes": K, "counts": c}, open("%s/confusion_%s.json" % (run, m), "w"))
    ap = [None if k == 3 else round(0.05 + 0.09 * ((k + s) % 10), 4) for k in range(K)]
    json.dump({"method": m, "split": "val", "ap": ap}, open("%s/ap_%s.json" % (run, m), "w"))
EOF
"$G" report "$R" -o "$t/full.html" > /dev/null 2> "$t/err.txt"; rc=$?
check "report with confusion + AP files exits 0 (rc $rc)" '[ $rc -eq 0 ]' || cat "$t/err.txt"
chrome --dump-dom "file://$t/full.html" > "$t/dom2.html"
check "confusion matrices: captions and cell counts match the files" '$PY - "$R" "$t/dom2.html" <<EOF
import json, re, sys, html as H
run, page = sys.argv[1:]
dom = open(page, encoding="utf-8").read()
sec = re.search(r"<div class=\"mats\" id=\"confusion\">(.*?)</div>", dom, re.S).group(1)
figs = re.findall(r"<figure>(.*?)</figure>", sec, re.S)
assert len(figs) == 4, len(figs)
for f, m in zip(figs, ["linear", "gradient", "full", "finetune"]):
    c = json.load(open("%s/confusion_%s.json" % (run, m)))["counts"]
    tot = sum(map(sum, c)); diag = sum(c[i][i] for i in range(10))
    cap = H.unescape(re.sub(r"<[^>]+>", "", re.search(r"<figcaption>(.*?)</figcaption>", f, re.S).group(1)))
    assert cap.strip() == "%s \u2014 %.2f%% of %d correct" % (m, 100.0 * diag / tot, tot), cap
    cells = [int(x) for x in re.findall(r">(\d+)</text>", f)]
    nonzero = [c[i][j] for i in range(10) for j in range(10) if c[i][j] > 0]
    labels = [int(x) for x in re.findall(r"font-size:11px\">(\d+)</text>", f)]
    assert sorted(cells) == sorted(nonzero + labels), (m, len(cells), len(nonzero), len(labels))
EOF'
check "per-class AP table: values and mean over classes with positives" '$PY - "$R" "$t/dom2.html" <<EOF
import json, re, sys
run, page = sys.argv[1:]
tab = re.search(r"<table id=\"per-class-ap\">(.*?)</table>", open(page, encoding="utf-8").read(), re.S).group(1)
rows = [re.sub(r"<[^>]+>", " ", r).split() for r in re.findall(r"<tr[^>]*>(.*?)</tr>", tab, re.S)[1:]]
assert len(rows) == 11, len(rows)
aps = {m: json.load(open("%s/ap_%s.json" % (run, m)))["ap"] for m in ["linear", "gradient", "full", "finetune"]}
for k in range(10):
    want = ["%.1f%%" % (100 * aps[m][k]) for m in aps if aps[m][k] is not None]
    got = [x for x in rows[k] if x.endswith("%")]
    assert got == want, (k, got, want)
    if k == 3: assert rows[k].count("positives)") == 4, rows[k]
mean = [x for x in rows[10] if x.endswith("%")]
want = ["%.1f%%" % (100 * sum(v for v in aps[m] if v is not None) / 9) for m in aps]
assert mean == want, (mean, want)
EOF'

# ---- 3. the screenshot: not blank, and the SVG charts drawn in the method colours ----
chrome --screenshot="$t/shot.png" --window-size=1200,1600 "file://$t/full.html" > /dev/null
check "screenshot written" '[ -s "$t/shot.png" ]' || tail -5 "$t/chrome.err"
check "screenshot is not blank and shows the four method colours" '$PY - "$t/shot.png" <<EOF
import sys
from PIL import Image
im = Image.open(sys.argv[1]).convert("RGB")
assert im.size == (1200, 1600), im.size
px = list(im.getdata())
nonwhite = sum(1 for p in px if sum(p) < 720) / len(px)
assert nonwhite > 0.03, "only %.2f%% non-white pixels" % (100 * nonwhite)
cols = {"linear": (0x1f, 0x77, 0xb4), "gradient": (0xff, 0x7f, 0x0e), "full": (0x2c, 0xa0, 0x2c), "finetune": (0xd6, 0x27, 0x28)}
for name, c in cols.items():
    n = sum(1 for p in px if abs(p[0] - c[0]) < 24 and abs(p[1] - c[1]) < 24 and abs(p[2] - c[2]) < 24)
    assert n > 400, (name, n)
# the confusion matrix shading (white -> rgb(8,48,107)) is on the first screen
shade = sum(1 for p in px if 30 < p[2] - p[0] < 110 and p[0] < 200 and p[2] - p[1] > 15)
assert shade > 2000, ("confusion shading", shade)
print("non-white %.1f%%, shaded %d" % (100 * nonwhite, shade))
EOF'

# ---- 4. bad input, atomic writes, usage ----
cp "$t/full.html" "$t/keep.html"
echo '{"method": "full", "counts": [[1, 2], [3]]}' > "$R/confusion_full.json"
"$G" report "$R" -o "$t/full.html" > /dev/null 2> "$t/e.txt"; rc=$?
check "malformed confusion file -> exit 5 naming it (rc $rc)" '[ $rc -eq 5 ] && grep -q "confusion_full.json" "$t/e.txt"'
check "a failed report leaves the previous page untouched" 'cmp -s "$t/full.html" "$t/keep.html"'
rm "$R"/confusion_*.json "$R"/ap_*.json
printf '{"method":"full","epoch":' >> "$R/metrics.jsonl"       # a killed run: partial last line
"$G" report "$R" -o - > "$t/stdout.html" 2> "$t/e.txt"; rc=$?
check "partial last metrics line is noted, not fatal; -o - writes stdout (rc $rc)" \
  '[ $rc -eq 0 ] && head -c 15 "$t/stdout.html" | grep -q "<!DOCTYPE html>" && grep -q "incomplete last line" "$t/stdout.html"'
mkdir "$t/unfinished" && head -3 "$R/metrics.jsonl" > "$t/unfinished/metrics.jsonl"
"$G" report "$t/unfinished" > /dev/null 2> "$t/e.txt"; rc=$?
check "run without results.json: curves only, with a note (rc $rc)" \
  '[ $rc -eq 0 ] && grep -q "has not finished" "$t/unfinished/report.html" && ! grep -q "id=\"comparison\"" "$t/unfinished/report.html"'
mkdir "$t/empty"
"$G" report "$t/empty" > /dev/null 2> "$t/e.txt"; rc=$?
check "empty folder -> exit 5 (rc $rc)" '[ $rc -eq 5 ] && grep -q "results.json" "$t/e.txt"'
"$G" report "$t/nope" > /dev/null 2> "$t/e.txt"; rc=$?
check "missing folder -> exit 5 naming it (rc $rc)" '[ $rc -eq 5 ] && grep -q "nope" "$t/e.txt"'
"$G" report > /dev/null 2>&1; rc=$?
check "no RUN_DIR -> exit 2" '[ $rc -eq 2 ]'
"$G" report --help | grep -q -- "--output"; check "help lists options" '[ $? -eq 0 ]'

finish
