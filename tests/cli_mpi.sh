#!/usr/bin/env bash
# Several processes (mpirun, issue 19): `gradfeat train --method all` on the emotion net + Fashion-MNIST
# (200 train / 300 test, 2 epochs, batch 32, --select last so that the trained tensors are the ones saved)
# as 1 process (no mpirun), 2 ranks and 3 ranks (--oversubscribe on 2 cores; 32 is not divisible by 3):
#  - SGD: the printed table is identical to the digits (seconds aside); every saved tensor agrees with
#    the 1-process run to 1e-5 relative (||x - y|| / ||x||; each step's summed gradient agrees to ~1e-7,
#    tests/test_shards.c, and the last bits add up over the 24 steps); the probe's model is the same bytes;
#  - Adam (the default): the printed table is identical for 2 ranks (Adam divides by sqrt(v): a gradient
#    element near 0 turns last-bit differences into lr-sized ones, so its tensors are not compared);
#  - Adam with --grad-chunk 4 (the gradient summed over fixed chunks of 4 samples in double, in order):
#    1 process and 2 ranks give the same models, bit for bit;
#  - the activation caches written by 1, 2 and 3 ranks (each rank runs whole batches of the trunk pass)
#    are the same bytes; a 2-rank run on the 1-process cache reuses it and gives the 2-rank models bit
#    for bit (a K-rank run is deterministic);
#  - rank 0 alone writes: one table on stdout, the run directory's files as with one process,
#    results.json records "ranks";
#  - `bench linearized` runs split too (the job's images/s, then rank 0 alone for the parallel
#    efficiency), `bench trunk` runs a batch per rank at once (the same two figures); other commands
#    refuse under mpirun;
#  - a failing rank stops the job: bad data on rank 1 only, and rank 1 SIGKILLed mid-training
#    (GRADFEAT_TEST_KILL_AT, the test hooks), each end with a non-zero exit instead of a hang; the
#    checkpoint written before the kill resumes with 2 ranks to the uninterrupted run's models bit for
#    bit, and with 3 ranks to within the tolerance above.
# mpirun --bind-to none: Open MPI binds each rank to one core by default, and OpenBLAS (the CPU device's
# GEMM) then runs one thread instead of two, which changes the last bits against a plain run.
. "$(dirname "$0")/testlib.sh"
S="$GF_SRC"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1   # Open MPI refuses root without both
EMO="$t/emotion.safetensors"
bash "$S/models/emotion/fetch.sh" "$EMO" > /dev/null 2> "$t/fetch.err" || { cat "$t/fetch.err"; echo "0 passed, 1 failed"; exit 1; }
check "mpirun is installed (Debian openmpi-bin)" 'command -v mpirun > /dev/null' || { finish; exit 1; }

args=(--model "$EMO" --data "$FM" --split train --limit 200 --val "$FM" --val-split test --val-limit 300
      --method all --epochs 2 --batch 32 --select last)
sgd=(--optimizer sgd --lr 0.01)
MPI=(mpirun --bind-to none --oversubscribe)
run() {  # run NAME NP CACHE EXTRA...: train with NP ranks (0 = no mpirun), outputs in $t/NAME*
  local name=$1 np=$2 cache=$3; shift 3
  local pre=()
  [ "$np" -gt 0 ] && pre=("${MPI[@]}" -n "$np")
  timeout 600 "${pre[@]}" "$G" train "${args[@]}" --cache-dir "$t/$cache" --run-dir "$t/$name" "$@" \
    > "$t/$name.out" 2> "$t/$name.err"
}
table() { grep -E "^(linear|gradient|full|finetune) " "$1" | awk '{NF--; print}'; }   # the seconds column aside

run s1 0 c1 "${sgd[@]}"; rc1=$?
run s2 2 c2 "${sgd[@]}"; rc2=$?
run s3 3 c3 "${sgd[@]}"; rc3=$?
check "SGD runs with 1, 2, 3 ranks exit 0 (rc $rc1 $rc2 $rc3)" '[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && [ $rc3 -eq 0 ]' \
  || tail -5 "$t"/s[123].err
cat "$t/s1.out"
check "2 ranks: the same table" 'diff <(table "$t/s1.out") <(table "$t/s2.out")'
check "3 ranks: the same table" 'diff <(table "$t/s1.out") <(table "$t/s3.out")'
check "one table on stdout (rank 0 prints)" '[ $(grep -c "^method " "$t/s2.out") -eq 1 ] && [ $(grep -c "^method " "$t/s3.out") -eq 1 ]'
check "the ranks named once on stderr" '[ $(grep -c "^ranks: 3 processes" "$t/s3.err") -eq 1 ] && ! grep -q "^ranks:" "$t/s1.err"'
check "results.json: ranks 1, 2, 3 and each rank's device" '$PY - "$t"/s1/results.json "$t"/s2/results.json "$t"/s3/results.json <<EOF
import json, sys
r = [json.load(open(p)) for p in sys.argv[1:]]
assert [x["ranks"] for x in r] == [1, 2, 3], [x["ranks"] for x in r]
assert [len(x["rank_devices"]) for x in r] == [1, 2, 3] and all(x["rank_devices"][0] == x["device"] for x in r), r[2]
EOF'
check "the run directories hold the same files" 'diff <(ls "$t/s1") <(ls "$t/s2") && diff <(ls "$t/s1") <(ls "$t/s3")'
check "metrics.jsonl: as many lines" '[ $(wc -l < "$t/s1/metrics.jsonl") -eq $(wc -l < "$t/s3/metrics.jsonl") ]'
cat > "$t/cmp.py" <<'EOF'
import json, struct, sys
import numpy as np
def load(p):
    b = open(p, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h, d = json.loads(b[8:8 + n]), b[8 + n:]
    dt = {"F32": np.float32, "F16": np.float16, "I32": np.int32, "I64": np.int64, "U8": np.uint8}
    return {k: np.frombuffer(d[v["data_offsets"][0]:v["data_offsets"][1]], dtype=dt[v["dtype"]]).astype(np.float64)
            for k, v in h.items() if k != "__metadata__"}
a, b, tol = sys.argv[1], sys.argv[2], float(sys.argv[3])
bad = 0
for m in ("linear", "gradient", "full", "finetune"):
    x, y = load(f"{a}/{m}.safetensors"), load(f"{b}/{m}.safetensors")
    assert x.keys() == y.keys(), m
    nr = max(np.linalg.norm(x[k] - y[k]) / max(np.linalg.norm(x[k]), 1e-30) for k in x)
    mr = max(np.max(np.abs(x[k] - y[k])) / max(np.max(np.abs(x[k])), 1e-30) for k in x if x[k].size)
    print(f"{m}: worst tensor ||x-y||/||x|| {nr:.3g}, max|x-y|/max|x| {mr:.3g}")
    bad += int(nr > tol)
sys.exit(bad)
EOF
check "2 ranks: every saved tensor within 1e-5 (norm) of 1 process" '$PY "$t/cmp.py" "$t/s1" "$t/s2" 1e-5'
check "3 ranks: every saved tensor within 1e-5 (norm) of 1 process" '$PY "$t/cmp.py" "$t/s1" "$t/s3" 1e-5'
check "the probe (linear) is the same bytes with 1, 2, 3 ranks" \
  'cmp "$t/s1/linear.safetensors" "$t/s2/linear.safetensors" && cmp "$t/s1/linear.safetensors" "$t/s3/linear.safetensors"'
check "activation caches of 1, 2, 3 ranks: the same files, the same bytes" \
  '[ $(ls "$t/c1" | wc -l) -eq 2 ] && diff <(ls "$t/c1") <(ls "$t/c3") && for f in "$t"/c1/*.bin; do cmp "$f" "$t/c2/${f##*/}" && cmp "$f" "$t/c3/${f##*/}" || exit 1; done'

# another number of ranks reuses the cache, and a K-rank run repeats itself
run s2b 2 c1 "${sgd[@]}"; rc=$?
check "2 ranks on the 1-process cache: exit 0, the cache reused (rc $rc)" \
  '[ $rc -eq 0 ] && [ $(grep -c "reused from the activation cache" "$t/s2b.err") -eq 2 ]' || tail -5 "$t/s2b.err"
check "... and the 2-rank models bit for bit" \
  'for m in linear gradient full finetune; do cmp "$t/s2/$m.safetensors" "$t/s2b/$m.safetensors" || exit 1; done'

# Adam
run a1 0 c1; rc1=$?
run a2 2 c1; rc2=$?
check "Adam runs with 1 and 2 ranks exit 0 (rc $rc1 $rc2)" '[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ]' || tail -5 "$t"/a[12].err
check "Adam, 2 ranks: the same table" 'diff <(table "$t/a1.out") <(table "$t/a2.out")'
$PY "$t/cmp.py" "$t/a1" "$t/a2" 1 | sed 's/^/Adam 1 vs 2 ranks: /'
# --grad-chunk 4: every step's gradient summed over chunks of 4 samples in double, in order, with any
# number of ranks: Adam's models are the same bytes with 1 process and 2 ranks
run g1 0 c1 --grad-chunk 4; rc1=$?
run g2 2 c1 --grad-chunk 4; rc2=$?
check "Adam --grad-chunk 4 with 1 and 2 ranks exit 0 (rc $rc1 $rc2)" '[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ]' || tail -5 "$t"/g[12].err
check "... and give the same models, bit for bit" \
  'for m in linear gradient full finetune; do cmp "$t/g1/$m.safetensors" "$t/g2/$m.safetensors" || exit 1; done' \
  || $PY "$t/cmp.py" "$t/g1" "$t/g2" 1

# a failing rank stops the job: rank 1 reads data that is not there
printf '%s\n' '#!/bin/bash' \
  "if [ \"\$OMPI_COMM_WORLD_RANK\" = 1 ]; then exec \"\$@\" --data \"$t/nothing\"; else exec \"\$@\"; fi" > "$t/rank1.sh"
timeout 300 "${MPI[@]}" -n 2 bash "$t/rank1.sh" "$G" train "${args[@]}" --cache-dir "$t/c1" --run-dir "$t/f1" \
  > "$t/f1.out" 2> "$t/f1.err"; rc=$?
check "bad data on rank 1: the job exits non-zero, no hang (rc $rc)" '[ $rc -ne 0 ] && [ $rc -ne 124 ]'
check "... naming the rank and the problem" 'grep -q "rank 1 of 2: error: .*nothing" "$t/f1.err"' || cat "$t/f1.err"
# bench linearized under mpirun: the job's images/s and the gradient floats per step, printed once
timeout 600 "${MPI[@]}" -n 2 "$G" bench linearized --batch 8 --size 32 --reps 1 > "$t/b2.out" 2> "$t/b2.err"; rc=$?
check "bench linearized with 2 ranks exits 0 and reports the job's rate once per step kind (rc $rc)" \
  '[ $rc -eq 0 ] && [ $(grep -c "^2 ranks, .* images/s in all; each step sums [0-9]* gradient floats" "$t/b2.out") -eq 2 ]' \
  || cat "$t/b2.out" "$t/b2.err"
check "... and its 1-rank figure (rank 0 alone) and parallel efficiency once per step kind" \
  '[ $(grep -c "^2 ranks, .*: 1 rank alone (rank 0, the others idle) [0-9.]* images/s; parallel efficiency [0-9.]*" "$t/b2.out") -eq 2 ]'
# bench trunk under mpirun: every rank its own batches at once, then rank 0 alone; printed once
timeout 600 "${MPI[@]}" -n 2 "$G" bench trunk --model "$EMO" --batch 4 --reps 1 > "$t/bt.out" 2> "$t/bt.err"; rc=$?
check "bench trunk with 2 ranks exits 0, one table, the job's images/s and the efficiency once (rc $rc)" \
  '[ $rc -eq 0 ] && [ $(grep -c "^trunk " "$t/bt.out") -eq 1 ] && [ $(grep -c "^2 ranks, trunk: [0-9.]* images/s in all (2 batches of 4 at once); 1 rank alone (rank 0, the others idle) [0-9.]* images/s; parallel efficiency [0-9.]*" "$t/bt.out") -eq 1 ]' \
  || cat "$t/bt.out" "$t/bt.err"
timeout 300 "${MPI[@]}" -n 2 "$G" bench linearized --batch 1 --size 32 --reps 1 > /dev/null 2> "$t/b1.err"; rc=$?
check "bench linearized: a batch smaller than the ranks is refused (rc $rc)" \
  '[ $rc -eq 2 ] && grep -q "smaller than the 2 ranks" "$t/b1.err"' || cat "$t/b1.err"
timeout 300 "${MPI[@]}" -n 2 "$G" info "$EMO" > /dev/null 2> "$t/i2.err"; rc=$?
check "other commands refuse to run over several processes (rc $rc)" \
  '[ $rc -eq 2 ] && grep -q "does not run over several processes" "$t/i2.err"' || cat "$t/i2.err"

# rank 1 SIGKILLed in its 7th step of gradient (a checkpoint every 4 steps): the job ends; `--resume` with
# 2 ranks ends with the uninterrupted 2-rank run's models, bit for bit, and with 3 ranks within tolerance
printf '%s\n' '#!/bin/bash' 'if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then export GRADFEAT_TEST_KILL_AT=gradient:7; fi' \
  'exec "$@"' > "$t/kill1.sh"
kill_run() {  # kill_run NAME: the SGD run, rank 1 killed
  timeout 300 "${MPI[@]}" -n 2 bash "$t/kill1.sh" "$G" train "${args[@]}" "${sgd[@]}" --checkpoint-every 4 \
    --cache-dir "$t/c1" --run-dir "$t/$1" > "$t/$1.out" 2> "$t/$1.err"
}
kill_run k1; rc=$?
check "rank 1 SIGKILLed mid-training: the job exits non-zero, no hang (rc $rc)" '[ $rc -ne 0 ] && [ $rc -ne 124 ]' \
  || tail -5 "$t/k1.err"
check "... before the end (no results.json), after a checkpoint" '[ ! -f "$t/k1/results.json" ] && [ -s "$t/k1/checkpoint.gfckpt" ]'
cp -r "$t/k1" "$t/k1b"
timeout 600 "${MPI[@]}" -n 2 "$G" train --resume "$t/k1" --cache-dir "$t/c1" > "$t/k1r.out" 2> "$t/k1r.err"; rc=$?
check "--resume with 2 ranks exits 0 (rc $rc)" '[ $rc -eq 0 ] && grep -q "^resuming from" "$t/k1r.err"' || tail -5 "$t/k1r.err"
check "... and ends with the uninterrupted 2-rank models, bit for bit" \
  'for m in linear gradient full finetune; do cmp "$t/s2/$m.safetensors" "$t/k1/$m.safetensors" || exit 1; done'
check "... and the same table" 'diff <(table "$t/s2.out") <(table "$t/k1r.out")'
timeout 600 "${MPI[@]}" -n 3 "$G" train --resume "$t/k1b" --cache-dir "$t/c1" > "$t/k1c.out" 2> "$t/k1c.err"; rc=$?
check "--resume of the 2-rank checkpoint with 3 ranks exits 0 (rc $rc)" '[ $rc -eq 0 ]' || tail -5 "$t/k1c.err"
check "... its tensors within 1e-5 (norm) of 1 process" '$PY "$t/cmp.py" "$t/s1" "$t/k1b" 1e-5'
finish
