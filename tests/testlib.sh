# Sourced by the tests/cli_*.sh scripts that count checks: . "$(dirname "$0")/testlib.sh"
# Gives: bash's -u; check NAME CONDITION (CONDITION is eval'ed; a failure prints "FAIL: NAME"
# and returns 1, so `check ... || cat LOG` shows the evidence); a temporary directory $t,
# removed on exit unless GF_KEEP_TMP is set; the binary $G, Python $PY and Fashion-MNIST $FM;
# and finish, the script's last command: the summary line, success only when checks ran and
# none failed.
set -u
fails=0; checks=0
check() { checks=$((checks+1)); if ! eval "$2"; then echo "FAIL: $1"; fails=$((fails+1)); return 1; fi; }
t=$(mktemp -d)
if [ -n "${GF_KEEP_TMP:-}" ]; then echo "keeping $t"; else trap 'rm -rf "$t"' EXIT; fi
G="$GF_BIN"
PY=/usr/bin/python3
FM=/usr/share/datasets/fashion-mnist
finish() { echo "$((checks-fails)) passed, $fails failed"; [ $fails -eq 0 ] && [ $checks -gt 0 ]; }
