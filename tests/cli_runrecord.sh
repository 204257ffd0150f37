#!/usr/bin/env bash
# Complete, exact run records (issue 22 item 4): results.json holds every setting of the job (the
# configuration checkpoints are compared on, gf_job_config_json in host/method/rundir.c) under "settings", the environment
# (device, driver, platform, gradfeat version, git hash) under "environment", float settings as their exact
# decimals ("lr": 0.001, not 0.0010000000474974513); `gradfeat report A B -o F` puts runs side by side with the
# differing settings highlighted; pretrain's metrics.jsonl writes null (not -1) without validation data.
. "$(dirname "$0")/testlib.sh"
cat > "$t/m.py" <<'PYEOF'
import sys, numpy as np
sys.path.insert(0, sys.argv[2])
import gfmodel
r = np.random.default_rng(0)
g = gfmodel.Graph("x", [1, 28, 28])
g.tensor("conv.weight", r.standard_normal((4, 1, 3, 3)) * 0.3)
g.tensor("fc.weight", r.standard_normal((10, 4)) * 0.3)
g.add("conv", "conv2d", ["x"], {"weight": "conv.weight"}, {"pad": [1, 1, 1, 1], "stride": [2, 2]})
g.add("relu", "relu", ["conv"])
g.add("gap", "global_avgpool", ["relu"])
g.add("fc", "linear", ["gap"], {"weight": "fc.weight"})
g.outputs, g.feature = ["fc"], "gap"
gfmodel.write(sys.argv[1], g, {"input_size": [28, 28], "channels": 1, "color_order": "GRAY", "resize": "stretch",
                               "interpolation": "bilinear", "mean": [0.5], "std": [0.5]}, [])
PYEOF
"$PY" "$t/m.py" "$t/m.safetensors" "$GF_SRC/tools" || { echo "FATAL: model"; exit 1; }
run() {  # run DIR LR
  "$G" train --model "$t/m.safetensors" --data "$FM" --split train --limit 64 --method linear --epochs 1 \
      --probe-epochs 1 --lr "$2" --weight-decay 1e-6 --momentum 0.9 --no-cache --quiet --run-dir "$t/$1" \
      > /dev/null 2> "$t/$1.err"
}
run A 0.001; rc=$?
check "train A (rc $rc)" '[ $rc -eq 0 ]' || cat "$t/A.err"
run B 0.003; rc=$?
check "train B (rc $rc)" '[ $rc -eq 0 ]' || cat "$t/B.err"
R="$t/A/results.json"
check "lr written as 0.001 (top level and settings)" '[ $(grep -cE "\"lr\":[[:space:]]+0\.001,$" "$R") -eq 2 ]' || cat "$R"
check "weight_decay written as 1e-06" 'grep -qE "\"weight_decay\":[[:space:]]+1e-06,$" "$R"' || cat "$R"
check "no float noise in settings (>= 10 significant digits)" \
  '! sed -n "/\"settings\"/,/}/p" "$R" | grep -qE "[0-9]\.[0-9]{10,}|[0-9]{11,}e"' || cat "$R"
"$PY" - "$R" > "$t/keys" 2>&1 <<'PYEOF'
import json, re, sys
r = json.load(open(sys.argv[1]))
s, e = r["settings"], r["environment"]
need = ["model", "model_fnv1a64", "data", "split", "limit", "top", "methods", "epochs", "probe_epochs", "batch",
        "optimizer", "lr", "momentum", "beta1", "beta2", "weight_decay", "clip_norm", "lr_halve_every", "lr_cosine", "ntk",
        "eval_every", "seed", "cache_dtype"]
miss = [k for k in need if k not in s] + ["environment." + k for k in
        ("gradfeat", "git", "device", "device_version", "driver", "platform", "platform_version") if not e.get(k)]
assert not miss, "missing: %s" % miss
assert s["lr"] == 0.001 and s["momentum"] == 0.9 and s["beta1"] == 0.5 and s["beta2"] == 0.999, s
assert s["lr_cosine"] == 1, s  # the default schedule is recorded
assert s["cache_dtype"] == "f32" and r["cache_memory"]["dtype"] == "f32", (s, r.get("cache_memory"))
assert s["probe_epochs"] == 1 and s["limit"] == 64 and r["git"] == e["git"], (s, r["git"])
assert re.fullmatch(r"[0-9a-f]{7,40}|unknown", e["git"]), e["git"]
print("ok")
PYEOF
check "settings and environment complete, values exact" 'grep -qx ok "$t/keys"' || cat "$t/keys"

"$G" report "$t/A" "$t/B" -o "$t/cmp.html" > /dev/null 2> "$t/cmp.err"; rc=$?
check "report A B -o (rc $rc)" '[ $rc -eq 0 ]' || cat "$t/cmp.err"
check "side by side: differing lr highlighted" 'grep -q "<tr class=\"diff\"><td>settings.lr</td><td>0.001</td><td>0.003</td>" "$t/cmp.html"'
check "side by side: equal batch not highlighted" 'grep -q "<tr><td>settings.batch</td><td>64</td><td>64</td>" "$t/cmp.html"'
check "side by side: both runs' linear metric" '[ $(grep -A1 "<td class=\"l\">linear</td>" "$t/cmp.html" | grep -o "train accuracy" | wc -l) -eq 2 ]' \
  || grep linear "$t/cmp.html"
"$G" report "$t/A" "$t/B" > /dev/null 2> "$t/noo.err"; rc=$?
check "several runs without -o: usage error (rc $rc)" '[ $rc -eq 2 ] && grep -q -- "-o FILE" "$t/noo.err"'
"$G" report "$t/A" "$t/nope" -o "$t/x.html" > /dev/null 2> "$t/nope.err"; rc=$?
check "a run without results.json: exit 5 naming it (rc $rc)" '[ $rc -eq 5 ] && grep -q "nope/results.json" "$t/nope.err"'
"$G" report "$t/A" > /dev/null 2>&1
check "single report shows settings.lr exactly" 'grep -q "<td>settings.lr</td><td>0.001</td>" "$t/A/report.html"'

"$G" pretrain --arch small28 --width-div 8 --data "$FM" --split train --limit 64 --batch 32 --epochs 1 --threads 2 \
    --lr 0.1 --run-dir "$t/P" --out "$t/P.safetensors" > /dev/null 2> "$t/P.err"; rc=$?
check "pretrain without validation (rc $rc)" '[ $rc -eq 0 ]' || cat "$t/P.err"
check "pretrain metrics: null for absent validation" 'grep -q "\"val_loss\":null,\"val_acc\":null" "$t/P/metrics.jsonl"' \
  || cat "$t/P/metrics.jsonl"
"$PY" -c "
import json, struct, sys
d = open(sys.argv[1], 'rb').read(); n = struct.unpack('<Q', d[:8])[0]
p = json.loads(json.loads(d[8:8 + n])['__metadata__']['gradfeat.pretrained'])
assert p['config']['lr'] == 0.1 and '0.100000' not in json.dumps(p), p['config']
print('ok')" "$t/P.safetensors" > "$t/pre" 2>&1
check "pretrained metadata: lr 0.1 exactly" 'grep -qx ok "$t/pre"' || cat "$t/pre"
finish
