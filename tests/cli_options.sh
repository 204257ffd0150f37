#!/usr/bin/env bash
# Every subcommand's options come from one table (host/cli/options.c): for each subcommand an
# environment twin GRADFEAT_<NAME> takes effect, a flag overrides it (and --config FILE sits in
# between), and a bad value in the environment exits 2 naming the variable. Probes are chosen to
# stop early (usage errors, missing files, header-only dataset reads) so that nothing trains.
. "$(dirname "$0")/testlib.sh"
EMO="$t/emotion.safetensors"
bash "$GF_SRC/models/emotion/fetch.sh" "$EMO" > /dev/null 2> "$t/fetch.err" || { cat "$t/fetch.err"; echo "0 passed, 1 failed"; exit 1; }
isjson() { /usr/bin/python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$1" 2> /dev/null; }
bad_env() {  # bad_env VAR=VALUE CMD...: exit 2 and the message names VAR
  local kv="$1"; shift
  env "$kv" "$G" "$@" > /dev/null 2> "$t/bad.err"; local rc=$?
  check "$1: bad ${kv%%=*} -> exit 2 naming it (rc $rc)" '[ $rc -eq 2 ] && grep -q "environment ${kv%%=*}: --" "$t/bad.err"'
}

# train (more in cli_config.sh): GRADFEAT_BATCH=0 fails the batch check, --batch 8 gets to the missing model
GRADFEAT_BATCH=0 "$G" train --model "$t/nope.safetensors" --data "$FM" > /dev/null 2> "$t/e"; rc=$?
check "train: GRADFEAT_BATCH used (rc $rc)" '[ $rc -eq 2 ] && grep -q "environment GRADFEAT_BATCH: --batch must be an integer in \[1,1000000000\]" "$t/e"'
GRADFEAT_BATCH=0 "$G" train --model "$t/nope.safetensors" --data "$FM" --batch 8 > /dev/null 2> "$t/e"; rc=$?
check "train: --batch overrides GRADFEAT_BATCH (rc $rc)" '[ $rc -eq 5 ] && grep -q "nope.safetensors" "$t/e"'
bad_env GRADFEAT_LR=fast train --model x --data y

# eval: GRADFEAT_DATA stands in for --data; GRADFEAT_BATCH=0 is refused unless --batch is given
"$G" eval "$t/nope.safetensors" > /dev/null 2> "$t/e"; rc=$?
check "eval: without data -> exit 2 (rc $rc)" '[ $rc -eq 2 ] && grep -q -- "--data is required" "$t/e"'
GRADFEAT_DATA="$FM" "$G" eval "$t/nope.safetensors" > /dev/null 2> "$t/e"; rc=$?
check "eval: GRADFEAT_DATA used (rc $rc)" '[ $rc -eq 5 ] && grep -q "nope.safetensors" "$t/e"'
GRADFEAT_BATCH=0 "$G" eval "$t/nope.safetensors" --data "$FM" --batch 8 > /dev/null 2> "$t/e"; rc=$?
check "eval: --batch overrides GRADFEAT_BATCH (rc $rc)" '[ $rc -eq 5 ]'
bad_env GRADFEAT_BATCH=0 eval "$t/nope.safetensors" --data "$FM"

# info: GRADFEAT_JSON=1 gives JSON, --json=no text
GRADFEAT_JSON=1 "$G" info "$EMO" > "$t/i1" 2> "$t/e"; rc=$?
check "info: GRADFEAT_JSON=1 -> JSON (rc $rc)" '[ $rc -eq 0 ] && isjson "$t/i1"'
GRADFEAT_JSON=1 "$G" info "$EMO" --json=no > "$t/i2" 2> "$t/e"; rc=$?
check "info: --json=no overrides (rc $rc)" '[ $rc -eq 0 ] && grep -q "^parameters:" "$t/i2" && ! isjson "$t/i2"'
bad_env GRADFEAT_NODES=maybe info "$EMO"

# devices
GRADFEAT_JSON=yes "$G" devices > "$t/d1" 2> "$t/e"; rc=$?
check "devices: GRADFEAT_JSON=yes -> JSON (rc $rc)" '[ $rc -eq 0 ] && isjson "$t/d1"'
GRADFEAT_JSON=0 "$G" devices --json > "$t/d2" 2> "$t/e"; rc=$?
check "devices: --json overrides GRADFEAT_JSON=0 (rc $rc)" '[ $rc -eq 0 ] && isjson "$t/d2"'
bad_env GRADFEAT_JSON=2 devices

# data: GRADFEAT_SPLIT picks the IDX split (10000 test images); --split train overrides; a config file
# sits between the two
GRADFEAT_SPLIT=test "$G" data inspect "$FM" > "$t/a1" 2> "$t/e"; rc=$?
check "data: GRADFEAT_SPLIT=test used (rc $rc)" '[ $rc -eq 0 ] && grep -q "10000 samples" "$t/a1"'
GRADFEAT_SPLIT=test "$G" data inspect "$FM" --split train > "$t/a2" 2> "$t/e"; rc=$?
check "data: --split overrides (rc $rc)" '[ $rc -eq 0 ] && grep -q "60000 samples" "$t/a2"'
printf 'split train\n' > "$t/data.conf"
GRADFEAT_SPLIT=test GRADFEAT_DATA_CONFIG="$t/data.conf" "$G" data inspect "$FM" > "$t/a3" 2> "$t/e"; rc=$?
check "data: GRADFEAT_DATA_CONFIG file beats GRADFEAT_SPLIT (rc $rc)" '[ $rc -eq 0 ] && grep -q "60000 samples" "$t/a3"'
"$G" data inspect "$FM" --config "$t/data.conf" --split test > "$t/a4" 2> "$t/e"; rc=$?
check "data: --split beats --config (rc $rc)" '[ $rc -eq 0 ] && grep -q "10000 samples" "$t/a4"'
bad_env GRADFEAT_FORMAT=jpeg data inspect "$FM"
bad_env GRADFEAT_SIZE=0x3 data inspect "$FM"

# bench: its sizes have GRADFEAT_BENCH_* twins; size 8 is refused, --size 32 gets past the check (to a
# 1 MiB budget that fails at once with exit 4)
GRADFEAT_BENCH_SIZE=8 "$G" bench linearized > /dev/null 2> "$t/e"; rc=$?
check "bench: GRADFEAT_BENCH_SIZE used (rc $rc)" '[ $rc -eq 2 ] && grep -q "environment GRADFEAT_BENCH_SIZE: --size must be at least 16" "$t/e"'
GRADFEAT_BENCH_SIZE=8 "$G" bench linearized --size 32 --batch 1 --reps 1 --max-device-mem 1M > /dev/null 2> "$t/e"; rc=$?
check "bench: --size overrides (rc $rc)" '[ $rc -eq 4 ]'
GRADFEAT_BATCH=0 "$G" bench ops --help > /dev/null 2>&1; rc=$?
check "bench: train's GRADFEAT_BATCH does not reach bench (rc $rc)" '[ $rc -eq 0 ]'
bad_env GRADFEAT_BENCH_REPS=-1 bench ops
bad_env GRADFEAT_MAX_DEVICE_MEM=lots bench ops

# report: GRADFEAT_REPORT_OUTPUT names the page, -o overrides
mkdir -p "$t/run" && echo '{}' > "$t/run/results.json"
GRADFEAT_REPORT_OUTPUT="$t/env.html" "$G" report "$t/run" > /dev/null 2> "$t/e"; rc=$?
check "report: GRADFEAT_REPORT_OUTPUT used (rc $rc)" '[ $rc -eq 0 ] && [ -s "$t/env.html" ]'
GRADFEAT_REPORT_OUTPUT="$t/env2.html" "$G" report "$t/run" -o "$t/flag.html" > /dev/null 2> "$t/e"; rc=$?
check "report: -o overrides (rc $rc)" '[ $rc -eq 0 ] && [ -s "$t/flag.html" ] && [ ! -e "$t/env2.html" ]'
printf 'bogus 1\n' > "$t/rep.conf"
GRADFEAT_REPORT_CONFIG="$t/rep.conf" "$G" report "$t/run" > /dev/null 2> "$t/e"; rc=$?
check "report: GRADFEAT_REPORT_CONFIG read (unknown key -> exit 2, FILE:LINE) (rc $rc)" '[ $rc -eq 2 ] && grep -q "rep.conf:1: unknown option" "$t/e"'

# doctor: GRADFEAT_NO_SELFTEST=1 skips the selftest; the flag overrides GRADFEAT_NO_SELFTEST=0
GRADFEAT_NO_SELFTEST=1 "$G" doctor > "$t/o1" 2> "$t/e"; rc=$?
check "doctor: GRADFEAT_NO_SELFTEST used (rc $rc)" '[ $rc -eq 0 ] && grep -q "skipped (--no-selftest)" "$t/o1"'
GRADFEAT_NO_SELFTEST=0 "$G" doctor --no-selftest > "$t/o2" 2> "$t/e"; rc=$?
check "doctor: --no-selftest overrides (rc $rc)" '[ $rc -eq 0 ] && grep -q "skipped (--no-selftest)" "$t/o2"'
bad_env GRADFEAT_NO_SELFTEST=sometimes doctor

# device-only commands (the twin GRADFEAT_DEVICE is read by the library): env picks, flag overrides
GRADFEAT_DEVICE=no-such-device "$G" cache info > /dev/null 2> "$t/e"; rc=$?
check "cache: GRADFEAT_DEVICE used (rc $rc)" '[ $rc -eq 3 ]'
GRADFEAT_DEVICE=no-such-device "$G" cache info --device cpu > "$t/c1" 2> "$t/e"; rc=$?
check "cache: --device overrides (rc $rc)" '[ $rc -eq 0 ] && grep -q "^cache dir:" "$t/c1"'
GRADFEAT_CACHE_CONFIG="$t/none.conf" "$G" cache info > /dev/null 2> "$t/e"; rc=$?
check "cache: GRADFEAT_CACHE_CONFIG read (missing file -> exit 5 naming it) (rc $rc)" '[ $rc -eq 5 ] && grep -q "none.conf" "$t/e"'
GRADFEAT_DEVICE=no-such-device "$G" selftest > /dev/null 2> "$t/e"; rc=$?
check "selftest: GRADFEAT_DEVICE used (rc $rc)" '[ $rc -eq 3 ]'
printf 'device no-such-device\n' > "$t/st.conf"
"$G" selftest --config "$t/st.conf" > /dev/null 2> "$t/e"; rc=$?
check "selftest: --config device used (rc $rc)" '[ $rc -eq 3 ]'
bad_env GRADFEAT_VERBOSE=loud selftest

# predict: GRADFEAT_TOP_K=1 shows one class per image, --top-k 2 two
/usr/bin/python3 -c "
import sys
w=h=48
sys.stdout.buffer.write(b'P5 %d %d 255\n' % (w, h) + bytes((x*5+y*3)%256 for y in range(h) for x in range(w)))" > "$t/face.pgm"
GRADFEAT_TOP_K=1 "$G" predict "$EMO" "$t/face.pgm" > "$t/p1" 2> "$t/e"; rc=$?
check "predict: GRADFEAT_TOP_K=1 used (rc $rc)" '[ $rc -eq 0 ] && [ "$(grep -c "^ *[0-9]\. " "$t/p1")" -eq 1 ]'
GRADFEAT_TOP_K=1 "$G" predict "$EMO" "$t/face.pgm" --top-k 2 > "$t/p2" 2> "$t/e"; rc=$?
check "predict: --top-k overrides (rc $rc)" '[ $rc -eq 0 ] && [ "$(grep -c "^ *[0-9]\. " "$t/p2")" -eq 2 ]'
bad_env GRADFEAT_TOP_K=0 predict "$EMO" "$t/face.pgm"

# every subcommand's --help lists its twins and the --config line
for c in train eval predict info data bench report doctor selftest cache devices; do
  "$G" $c --help > "$t/h" 2>&1; rc=$?
  check "$c --help (rc $rc) lists GRADFEAT_ twins, --config and examples" \
    '[ $rc -eq 0 ] && grep -q "\[GRADFEAT_[A-Z_]*\]" "$t/h" && grep -q -- "--config FILE" "$t/h" && grep -q "^examples:" "$t/h"'
done
finish
