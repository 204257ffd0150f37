#!/bin/bash
# gradfeat data inspect|bench: Fashion-MNIST counts and a contact sheet; a
# small ImageFolder (PGM/PPM written here) with bad files and an empty class
# reports them and still exits 0; unusable datasets exit 5, bad usage 2.
set -u
BIN=${GF_BIN:?GF_BIN not set}
FM=/usr/share/datasets/fashion-mnist
T=$(mktemp -d /tmp/gf_cli_data_XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
expect_rc() { # want_rc description command...
    local want=$1 what=$2; shift 2
    "$@" >"$T/out" 2>"$T/err"; local rc=$?
    [ "$rc" = "$want" ] || { fail "$what: exit $rc, want $want"; cat "$T/out" "$T/err"; }
}
has() { grep -q -- "$2" "$1" || { fail "expected '$2' in $1:"; cat "$1"; }; }

# Fashion-MNIST test split + contact sheet
expect_rc 0 "inspect fashion-mnist" "$BIN" data inspect "$FM" --split test --grid "$T/grid.png" --grid-n 25
has "$T/out" "10000 samples, 10 classes"
[ "$(grep -cE '^ +[0-9]+  [0-9] +1000$' "$T/out")" = 10 ] || { fail "10 classes of 1000"; cat "$T/out"; }
has "$T/out" "28x28 (10000)"
[ "$(head -c 8 "$T/grid.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "grid is not a PNG"
# 5x5 tiles of 28 px with 2 px gaps = 152 px: PNG IHDR width/height
[ "$(od -An -tu1 -j16 -N8 "$T/grid.png" | tr -s ' ')" = " 0 0 0 152 0 0 0 152" ] || fail "grid size"

# ImageFolder written here
mkdir -p "$T/ds/ants" "$T/ds/bees" "$T/ds/cats"
pgm() { { printf 'P5\n%d %d\n255\n' "$2" "$3"; head -c $(($2 * $3)) /dev/urandom; } >"$1"; }
ppm() { { printf 'P6\n%d %d\n255\n' "$2" "$3"; head -c $(($2 * $3 * 3)) /dev/urandom; } >"$1"; }
pgm "$T/ds/ants/a1.pgm" 30 20
ppm "$T/ds/ants/a2.ppm" 40 20
pgm "$T/ds/bees/b1.pgm" 30 20
echo "not an image" >"$T/ds/bees/notes.txt"
echo "text named like a jpeg" >"$T/ds/bees/fake.jpg"
: >"$T/ds/bees/zero.png"
expect_rc 0 "inspect folder with bad files" "$BIN" data inspect "$T/ds" --grid "$T/g2.png" --save-classes "$T/classes.txt"
has "$T/out" "3 samples, 3 classes"
has "$T/out" "ants  *2$"
has "$T/out" "bees  *1$"
has "$T/out" "cats  *0$"
has "$T/out" "skipped 4 inputs"
has "$T/out" "notes.txt: not an image file"
has "$T/out" "fake.jpg: not a readable image"
has "$T/out" "zero.png: empty file"
has "$T/out" "cats: empty class folder"
has "$T/out" "width 30..40"
[ "$(cat "$T/classes.txt")" = "$(printf '0\tants\n1\tbees\n2\tcats')" ] || fail "class map"
[ -s "$T/g2.png" ] || fail "folder grid"

# CSV manifest, multi-label
printf 'path,labels\nds/ants/a1.pgm,x;y\nds/bees/b1.pgm,y\nds/ants/a2.ppm,\nds/none.pgm,x\n' >"$T/m.csv"
expect_rc 0 "inspect csv" "$BIN" data inspect "$T/m.csv"
has "$T/out" "3 samples, 2 classes, multi-label"
has "$T/out" "none.pgm: cannot open"

# loader throughput
expect_rc 0 "bench" "$BIN" data bench "$FM" --split test --size 28 --channels 1 --batch 100 --batches 5 --threads 2
has "$T/out" "bench: 500 images"
has "$T/out" "images/s"

# unusable datasets: exit 5 with a message; usage errors: exit 2
expect_rc 5 "missing path" "$BIN" data inspect "$T/nope"
has "$T/err" "error: .*nope"
mkdir -p "$T/empty/onlyclass"
expect_rc 5 "only an empty class" "$BIN" data inspect "$T/empty"
has "$T/err" "no usable samples"
mkdir -p "$T/bad/k"; echo x >"$T/bad/k/x.png"
expect_rc 5 "only bad files" "$BIN" data inspect "$T/bad"
has "$T/err" "not a readable image"
printf 'a,b,c,d\n' >"$T/cols.csv"
expect_rc 5 "csv with wrong columns only" "$BIN" data inspect "$T/cols.csv"
head -c 100 /dev/urandom >"$T/noise.bin"
expect_rc 5 "random bytes" "$BIN" data inspect "$T/noise.bin"
expect_rc 2 "no action" "$BIN" data
expect_rc 2 "unknown action" "$BIN" data frobnicate "$FM"
expect_rc 2 "no path" "$BIN" data inspect
expect_rc 2 "bad option" "$BIN" data inspect "$FM" --no-such-option
expect_rc 2 "bad size" "$BIN" data inspect "$FM" --size 0

if [ "$fails" -ne 0 ]; then echo "cli_data: $fails failures"; exit 1; fi
echo "cli_data: ok"
