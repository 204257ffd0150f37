#!/usr/bin/env bash
# Several processes (mpirun, issue 19): `gradfeat pretrain` (small28 at 1/4 width, 200 Fashion-MNIST
# images, batch 32: 7 steps an epoch, the last of 8 images; SGD) as 1 process (no mpirun), 2 ranks and
# 3 ranks (--oversubscribe; 32 and 8 are not divisible by 3). Each step's batch is split over the ranks;
# the gradient and the BatchNorm batch statistics are summed over them (host/graph/block.c).
#  - the yardstick is the 1-process floor: how far two 1-process runs that differ only in the BN kernels'
#    summation order (GRADFEAT_BN_WALK=strided) are apart. Differences are ||x - y|| / ||x|| per saved
#    tensor; for BN running means / ||sqrt(running_var)|| (a mean near 0 is a sum that cancels);
#  - one step: every tensor within max(1e-6, 10 x its own floor) (measured: 2 and 3 ranks are as far
#    from 1 process as the floor, 1.1e-5 at worst, in bn1.bias, a gradient that cancels; the conv and fc
#    weights ~5e-8);
#  - two epochs (14 steps, with evaluation): rounding grows with the steps in one process too: every
#    tensor within max(1e-5, 10 x the worst floor); the summary lines (losses and accuracies to the
#    printed digits) are the same. Without the BN sums over the ranks a 2-rank run is 0.1..1 apart (the
#    running means);
#  - --grad-chunk 2 (chunks of 2 images, BN statistics per chunk, sums in double in chunk order): 1, 2 and 3
#    ranks write the same model bit for bit, and a run stopped with 2 ranks and resumed with 3 too; one chunk
#    per batch is the plain run bit for bit; 1 and 2 ranks agree bit for bit on rusticl (llvmpipe) too; a
#    chunk of one image is refused;
#  - rank 0 alone prints and writes: one summary on stdout, the run directory's files as with 1 process;
#  - --steps 5 then --resume with 2 ranks ends with the uninterrupted 2-rank model, bit for bit;
#  - a failing rank stops the job: bad data on rank 1, and rank 1 SIGKILLed mid-run, each end with a
#    non-zero exit instead of a hang; a batch the ranks cannot all share is refused (exit 2).
# mpirun --bind-to none: as tests/cli_mpi.sh (Open MPI would bind each rank to one core).
. "$(dirname "$0")/testlib.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1   # Open MPI refuses root without both
check "mpirun is installed (Debian openmpi-bin)" 'command -v mpirun > /dev/null' || { finish; exit 1; }
MPI=(mpirun --bind-to none --oversubscribe)
args=(--arch small28 --width-div 4 --data "$FM" --split train --limit 200 --batch 32 --optimizer sgd --threads 1 --seed 5)
val=(--val "$FM" --val-split test --val-limit 100)
run() {  # run NAME NP ARGS...: pretrain with NP ranks (0 = no mpirun), model $t/NAME.safetensors
  local name=$1 np=$2; shift 2
  local pre=()
  [ "$np" -gt 0 ] && pre=("${MPI[@]}" -n "$np")
  timeout 300 "${pre[@]}" "$G" pretrain "${args[@]}" --out "$t/$name.safetensors" "$@" > "$t/$name.out" 2> "$t/$name.err"
}
cat > "$t/cmp.py" <<'EOF'
# cmp.py A B TOL FLOOR_A FLOOR_B each|worst: every tensor of B within tolerance of A (||a - b|| / ||a||;
# BN running means / ||sqrt(running_var)||). each: tensor k's tolerance is max(TOL, 10 x its difference
# between FLOOR_A and FLOOR_B); worst: max(TOL, 10 x the worst such difference) for all
import json, struct, sys
import numpy as np
def load(p):
    b = open(p, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h, d = json.loads(b[8:8 + n]), b[8 + n:]
    return {k: np.frombuffer(d[v["data_offsets"][0]:v["data_offsets"][1]], dtype=np.float32).astype(np.float64)
            for k, v in h.items() if k != "__metadata__"}
def diffs(a, b):
    x, y = load(a), load(b)
    assert x.keys() == y.keys() and len(x) > 0
    r = {}
    for k in x:
        s = np.linalg.norm(np.sqrt(x[k[:-4] + "var"])) if k.endswith("running_mean") else np.linalg.norm(x[k])
        r[k] = np.linalg.norm(x[k] - y[k]) / max(s, 1e-30)
    return r
d, f, tol = diffs(sys.argv[1], sys.argv[2]), diffs(sys.argv[4], sys.argv[5]), float(sys.argv[3])
assert sum(k.endswith("running_mean") for k in d) == 3 and sum(k.endswith("running_var") for k in d) == 3, sorted(d)
each = sys.argv[6] == "each"
tols = {k: max(tol, 10 * (f[k] if each else max(f.values()))) for k in d}
w = max(d, key=lambda k: d[k] / tols[k])
print(f"worst {d[w]:.3g} ({w}), its tolerance {tols[w]:.3g}; the 1-process floor there {f[w]:.3g}, "
      f"worst floor {max(f.values()):.3g} ({max(f, key=f.get)})")
sys.exit(int(d[w] > tols[w]))
EOF
cat > "$t/same.py" <<'EOF'
# same.py A B: the same tensors, bit for bit (the metadata may differ: the settings, the training loss summed
# per rank in double against one process's float sum)
import json, struct, sys
def load(p):
    b = open(p, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h, d = json.loads(b[8:8 + n]), b[8 + n:]
    h.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], d[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in h.items()}
a, b = load(sys.argv[1]), load(sys.argv[2])
bad = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
if bad: print("tensors differ:", bad)
sys.exit(int(bool(bad) or not a))
EOF

# one step
run p1 0 --steps 1 --epochs 1; rc1=$?
run p2 2 --steps 1 --epochs 1; rc2=$?
run p3 3 --steps 1 --epochs 1; rc3=$?
GRADFEAT_BN_WALK=strided run pw 0 --steps 1 --epochs 1; rcw=$?
check "one step with 1, 2, 3 ranks (and 1 with the strided BN walk) exits 0 (rc $rc1 $rc2 $rc3 $rcw)" \
  '[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && [ $rc3 -eq 0 ] && [ $rcw -eq 0 ]' || tail -3 "$t"/p[123w].err
for k in 2 3; do
  check "one step, $k ranks: every tensor within max(1e-6, 10x its 1-process floor) of 1 process" \
    '$PY "$t/cmp.py" "$t/p1.safetensors" "$t/p$k.safetensors" 1e-6 "$t/p1.safetensors" "$t/pw.safetensors" each'
done

# two epochs with evaluation
run e1 0 --epochs 2 "${val[@]}" --run-dir "$t/e1"; rc1=$?
run e2 2 --epochs 2 "${val[@]}" --run-dir "$t/e2"; rc2=$?
GRADFEAT_BN_WALK=strided run ew 0 --epochs 2 "${val[@]}"; rcw=$?
check "two epochs with 1 and 2 ranks (and 1 with the strided BN walk) exit 0 (rc $rc1 $rc2 $rcw)" \
  '[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && [ $rcw -eq 0 ]' || tail -3 "$t"/e[12w].err
check "two epochs, 2 ranks: every tensor within 10x the 1-process floor" \
  '$PY "$t/cmp.py" "$t/e1.safetensors" "$t/e2.safetensors" 1e-5 "$t/e1.safetensors" "$t/ew.safetensors" worst'
summary() { grep -E "^(train|val) " "$1"; }
check "... the same losses and accuracies printed" 'diff <(summary "$t/e1.out") <(summary "$t/e2.out")'
check "one summary on stdout (rank 0 prints)" '[ $(grep -c "^small28 labels: 2 epochs, 14 steps" "$t/e2.out") -eq 1 ]' \
  || cat "$t/e2.out"
check "the ranks named once on stderr, and the gradient floats summed per step" \
  '[ $(grep -c "^ranks: 2 processes" "$t/e2.err") -eq 1 ] && grep -q "2 ranks: each step sums [0-9]* gradient floats" "$t/e2.err"'
check "the run directories hold the same files, metrics.jsonl as many lines" \
  'diff <(ls "$t/e1") <(ls "$t/e2") && [ $(wc -l < "$t/e2/metrics.jsonl") -eq 2 ]'

# --steps 5, then --resume with 2 ranks: the uninterrupted 2-rank model
run r2 2 --epochs 2 "${val[@]}" --run-dir "$t/r2" --steps 5 --checkpoint-every 3; rc=$?
check "2 ranks, --steps 5: exit 0 with a checkpoint (rc $rc)" '[ $rc -eq 0 ] && [ -s "$t/r2/checkpoint.gfptck" ]' \
  || tail -3 "$t/r2.err"
timeout 300 "${MPI[@]}" -n 2 "$G" pretrain --resume "$t/r2" --out "$t/r2.safetensors" > "$t/r2b.out" 2> "$t/r2b.err"; rc=$?
check "--resume with 2 ranks exits 0 (rc $rc)" '[ $rc -eq 0 ] && grep -q "resuming at epoch 1, batch 5" "$t/r2b.err"' \
  || tail -3 "$t/r2b.err"
check "... and ends with the uninterrupted 2-rank model, bit for bit" 'cmp "$t/e2.safetensors" "$t/r2.safetensors"'

# --grad-chunk 2: each step runs chunks of 2 images, BN statistics per chunk, the gradient and the running
# statistics' update summed over the chunks in double, in order: 1, 2 and 3 ranks give the same bits
run c1 0 --epochs 2 "${val[@]}" --grad-chunk 2; rc1=$?
run c2 2 --epochs 2 "${val[@]}" --grad-chunk 2; rc2=$?
run c3 3 --epochs 2 "${val[@]}" --grad-chunk 2; rc3=$?
check "--grad-chunk 2, two epochs with 1, 2, 3 ranks exit 0 (rc $rc1 $rc2 $rc3)" \
  '[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && [ $rc3 -eq 0 ]' || tail -3 "$t"/c[123].err
check "... 2 and 3 ranks write the 1-process model bit for bit, BN running statistics included" \
  '$PY "$t/same.py" "$t/c1.safetensors" "$t/c2.safetensors" && $PY "$t/same.py" "$t/c1.safetensors" "$t/c3.safetensors"'
check "... and print the same losses and accuracies" \
  'diff <(summary "$t/c1.out") <(summary "$t/c2.out") && diff <(summary "$t/c1.out") <(summary "$t/c3.out")'
check "... a model of its own (statistics per chunk: not the whole-batch model)" '! $PY "$t/same.py" "$t/c1.safetensors" "$t/e1.safetensors" > /dev/null'
# ... on the second OpenCL implementation too (Mesa rusticl over llvmpipe; tools/setup.sh installs it)
check "rusticl's llvmpipe device is there (Debian mesa-opencl-icd)" \
  'RUSTICL_ENABLE=llvmpipe "$G" devices 2> /dev/null | grep -q rusticl'
RUSTICL_ENABLE=llvmpipe run l1 0 --epochs 1 --grad-chunk 4 --device llvmpipe; rc1=$?
RUSTICL_ENABLE=llvmpipe run l2 2 --epochs 1 --grad-chunk 4 --device llvmpipe; rc2=$?
check "--grad-chunk 4 on llvmpipe: 2 ranks write the 1-process tensors bit for bit (rc $rc1 $rc2)" \
  '[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && $PY "$t/same.py" "$t/l1.safetensors" "$t/l2.safetensors"' || tail -3 "$t"/l[12].err
# one chunk per batch (--grad-chunk 32 = --batch) is the plain run: the chunk path adds nothing of its own
run cb 0 --epochs 2 "${val[@]}" --grad-chunk 32; rc=$?
check "--grad-chunk = --batch gives the plain 1-process model bit for bit (rc $rc)" \
  '[ $rc -eq 0 ] && $PY "$t/same.py" "$t/e1.safetensors" "$t/cb.safetensors"'
# stopped with 2 ranks, resumed with 3: the same bits as the uninterrupted run
run cr 2 --epochs 2 "${val[@]}" --grad-chunk 2 --run-dir "$t/cr" --steps 5 --checkpoint-every 3; rc=$?
timeout 300 "${MPI[@]}" -n 3 "$G" pretrain --resume "$t/cr" --out "$t/cr.safetensors" > "$t/crb.out" 2> "$t/crb.err"; rc2=$?
check "--grad-chunk 2: --steps 5 with 2 ranks, --resume with 3 ends with the 1-process model bit for bit (rc $rc $rc2)" \
  '[ $rc -eq 0 ] && [ $rc2 -eq 0 ] && $PY "$t/same.py" "$t/c1.safetensors" "$t/cr.safetensors"' || tail -3 "$t/crb.err"
timeout 120 "$G" pretrain "${args[@]}" --limit 201 --grad-chunk 2 --out "$t/one.safetensors" > /dev/null 2> "$t/one.err"; rc=$?
check "a chunk of one image is refused (rc $rc)" '[ $rc -eq 2 ] && grep -q "leaves a chunk of one image" "$t/one.err"' \
  || cat "$t/one.err"

# a failing rank stops the job
printf '%s\n' '#!/bin/bash' \
  "if [ \"\$OMPI_COMM_WORLD_RANK\" = 1 ]; then exec \"\$@\" --data \"$t/nothing\"; else exec \"\$@\"; fi" > "$t/rank1.sh"
timeout 120 "${MPI[@]}" -n 2 bash "$t/rank1.sh" "$G" pretrain "${args[@]}" --out "$t/f1.safetensors" \
  > "$t/f1.out" 2> "$t/f1.err"; rc=$?
check "bad data on rank 1: the job exits non-zero, no hang (rc $rc)" '[ $rc -ne 0 ] && [ $rc -ne 124 ]'
check "... naming the rank and the problem" 'grep -q "rank 1 of 2: error: .*nothing" "$t/f1.err"' || cat "$t/f1.err"
# rank 1 SIGKILLed after rank 0 reported step 3 (the wrapper leaves rank 1's pid)
printf '%s\n' '#!/bin/bash' "if [ \"\$OMPI_COMM_WORLD_RANK\" = 1 ]; then echo \$\$ > \"$t/rank1.pid\"; fi" 'exec "$@"' \
  > "$t/pid1.sh"
s=$(date +%s)
timeout 120 "${MPI[@]}" -n 2 bash "$t/pid1.sh" "$G" pretrain "${args[@]}" --epochs 20 --log-every 1 \
  --out "$t/k1.safetensors" > "$t/k1.out" 2> "$t/k1.err" & job=$!
for _ in $(seq 1 3000); do grep -qs "step 3/7" "$t/k1.err" && break; kill -0 $job 2> /dev/null || break; sleep 0.02; done
[ -s "$t/rank1.pid" ] && kill -KILL "$(cat "$t/rank1.pid")"
wait $job; rc=$?
check "rank 1 SIGKILLed mid-run: the job exits non-zero, no hang (rc $rc, $(( $(date +%s) - s )) s)" \
  '[ $rc -ne 0 ] && [ $rc -ne 124 ] && [ ! -e "$t/k1.safetensors" ]' || tail -3 "$t/k1.err"
timeout 120 "${MPI[@]}" -n 3 "$G" pretrain "${args[@]}" --batch 2 --out "$t/b.safetensors" > /dev/null 2> "$t/b.err"; rc=$?
check "3 ranks, --batch 2: refused (rc $rc)" '[ $rc -eq 2 ] && grep -q "3 ranks need at least 3 images in every batch" "$t/b.err"' \
  || cat "$t/b.err"
timeout 120 "${MPI[@]}" -n 2 "$G" pretrain "${args[@]}" --no-such-option > /dev/null 2> "$t/u.err"; rc=$?
check "2 ranks, an unknown option: exit 2, the usage error printed once (rc $rc)" \
  '[ $rc -eq 2 ] && [ $(grep -c "Run .gradfeat pretrain --help" "$t/u.err") -eq 1 ]' || cat "$t/u.err"
# ... and when only rank 1 has it (argv differs between ranks), rank 1 does not wait for rank 0 forever
printf '%s\n' '#!/bin/bash' 'if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then exec "$@" --no-such-option; else exec "$@"; fi' \
  > "$t/r1opt.sh"
s=$(date +%s)
timeout 120 "${MPI[@]}" -n 2 bash "$t/r1opt.sh" "$G" pretrain "${args[@]}" --epochs 20 --out "$t/u1.safetensors" \
  > /dev/null 2> "$t/u1.err"; rc=$?
check "an unknown option on rank 1 only: the job exits non-zero, no hang, rank 1's message shown (rc $rc, $(( $(date +%s) - s )) s)" \
  '[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "Run .gradfeat pretrain --help" "$t/u1.err"' || tail -5 "$t/u1.err"
finish
