#!/usr/bin/env bash
# gradfeat train --config FILE: precedence flags > config file > GRADFEAT_* > defaults,
# FILE:LINE errors, exit codes. Probes which source won through option checks that
# fail fast (batch 0 -> exit 2) or pass on to the (missing) model file (exit 5): no training.
. "$(dirname "$0")/testlib.sh"
base="model $t/nope.safetensors
data $FM"
printf '%s\nbatch 0\n' "$base" > "$t/c1.conf"
"$G" train --config "$t/c1.conf" > /dev/null 2> "$t/e"; rc=$?
check "config value is used (batch 0 -> exit 2, rc $rc)" '[ $rc -eq 2 ] && grep -q "config file: batch must be an integer in \[1,1000000000\], got .0." "$t/e"'
"$G" train --config "$t/c1.conf" --batch 8 > /dev/null 2> "$t/e"; rc=$?
check "flag overrides config (rc $rc)" '[ $rc -eq 5 ] && grep -q "nope.safetensors" "$t/e"'
printf '%s\nbatch 8\n' "$base" > "$t/c2.conf"
GRADFEAT_BATCH=0 "$G" train --config "$t/c2.conf" > /dev/null 2> "$t/e"; rc=$?
check "config overrides GRADFEAT_* (rc $rc)" '[ $rc -eq 5 ]'
printf '%s\n' "$base" > "$t/c3.conf"
GRADFEAT_BATCH=0 "$G" train --config "$t/c3.conf" > /dev/null 2> "$t/e"; rc=$?
check "GRADFEAT_* fills what the config leaves (rc $rc)" '[ $rc -eq 2 ]'
GRADFEAT_CONFIG="$t/c1.conf" "$G" train > /dev/null 2> "$t/e"; rc=$?
check "GRADFEAT_CONFIG names the file (rc $rc)" '[ $rc -eq 2 ] && grep -q "config file: batch must be an integer in \[1,1000000000\], got .0." "$t/e"'
printf '# c\nmodel x\n\nbogus_key 3\n' > "$t/c4.conf"
"$G" train --config "$t/c4.conf" > /dev/null 2> "$t/e"; rc=$?
check "unknown key -> exit 2 with FILE:LINE (rc $rc)" '[ $rc -eq 2 ] && grep -q "c4.conf:4: unknown option .bogus-key." "$t/e"'
printf 'epochs x\n' > "$t/c5.conf"
"$G" train --config "$t/c5.conf" > /dev/null 2> "$t/e"; rc=$?
check "bad value -> exit 2 with FILE:LINE (rc $rc)" '[ $rc -eq 2 ] && grep -q "c5.conf:1: bad value .x. for .epochs." "$t/e"'
printf 'quiet maybe\n' > "$t/c6.conf"
"$G" train --config "$t/c6.conf" > /dev/null 2> "$t/e"; rc=$?
check "switch takes yes/no (rc $rc)" '[ $rc -eq 2 ] && grep -q "c6.conf:1:" "$t/e"'
"$G" train --config "$t/none.conf" > /dev/null 2> "$t/e"; rc=$?
check "missing config file -> exit 5 naming it (rc $rc)" '[ $rc -eq 5 ] && grep -q "none.conf" "$t/e"'
"$G" train --help | grep -q -- "--config FILE"; check "help lists --config" '[ $? -eq 0 ]'
finish
