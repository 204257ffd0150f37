#!/usr/bin/env python3
"""Fails when a host/ file includes a header of a HIGHER layer (host/README.md).

    tools/check_layers.py [SRC]        (SRC: the source root; default: this script's ../)

Layers, lowest first: runtime < ops < data < graph < method < pretrain < report < cli.
A file of host/<layer>/ may include headers of its own layer and of the layers below it.
Headers are named by file name alone (every layer folder is on the include path), so a
header name must be unique across host/; "cli/cli.h"-style paths resolve as the compiler
does (relative to the including file, then to host/). The public headers in include/ have
the layer of what they declare (PUBLIC below) and are checked too. A quoted include that
names no header of the project is an error (the table must know every header).
Also checked, for every header of host/ and include/: nothing but comments outside its include
guard (a declaration after the guard's #endif breaks a second inclusion).
Exit 0 when every include points down or sideways; 1 with one line per bad include.
Python 3 standard library only; run by ctest as `check_layers`.
"""
import os
import re
import sys

LAYERS = ["runtime", "ops", "data", "graph", "method", "pretrain", "report", "cli"]
# The public API (include/): each header has the lowest layer that may include it, the layer of most of
# what it declares (a public header may also declare entry points implemented higher up).
PUBLIC = {
    "gradfeat.h": "runtime",        # status codes, context, devices, kernel cache (+ gf_selftest, in ops/)
    "gradfeat_data.h": "data",      # datasets, preprocessing, the batch loader
    "gradfeat_model.h": "graph",    # model files: load, info, forward
    "gradfeat_train.h": "method",   # jobs: train, eval, predict, adapted models (+ gf_pretrain_*, in pretrain/)
}
# Upward includes allowed on purpose: (including file relative to host/, header) -> reason. Empty today.
EXCEPTIONS = {}

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')
COMMENT_RE = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)


def outside_guard(text):
    """Line numbers of code outside the header's outermost #if/#endif pairs (comments ignored)."""
    # blank out comments but keep their newlines, so line numbers stay right
    text = COMMENT_RE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    depth, bad = 0, []
    for lineno, line in enumerate(text.split("\n"), 1):
        t = line.strip()
        if not t:
            continue
        if re.match(r"#\s*if", t):
            depth += 1
        elif re.match(r"#\s*endif", t):
            depth -= 1
        elif depth == 0:
            bad.append(lineno)
    return bad


def main():
    src = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
    host = os.path.join(src, "host")
    rank = {name: i for i, name in enumerate(LAYERS)}
    errors = []

    # header name -> layer
    owner = {}
    files = []  # (path, layer)
    for layer in LAYERS:
        d = os.path.join(host, layer)
        if not os.path.isdir(d):
            errors.append(f"host/{layer}/: layer folder missing")
            continue
        for name in sorted(os.listdir(d)):
            path = os.path.join(d, name)
            if not name.endswith((".c", ".h")) or not os.path.isfile(path):
                continue
            files.append((path, layer))
            if name.endswith(".h"):
                if name in owner or name in PUBLIC:
                    errors.append(f"host/{layer}/{name}: header name also used by layer {owner.get(name, 'include/')}")
                owner[name] = layer
    for name in sorted(os.listdir(host)):
        if name.endswith((".c", ".h")):
            errors.append(f"host/{name}: a source file outside the layer folders")
    for name, layer in PUBLIC.items():
        if not os.path.isfile(os.path.join(src, "include", name)):
            errors.append(f"include/{name}: listed in PUBLIC but missing")
    for name in sorted(os.listdir(os.path.join(src, "include"))):
        if name.endswith(".h"):
            if name not in PUBLIC:
                errors.append(f"include/{name}: public header without a layer (add it to PUBLIC)")
            else:
                files.append((os.path.join(src, "include", name), PUBLIC[name]))

    def layer_of(including, inc):
        """Layer of the header `inc` included from file `including`; None when unknown."""
        for base in (os.path.dirname(including), host):
            p = os.path.normpath(os.path.join(base, inc))
            if os.path.isfile(p):
                rel = os.path.relpath(p, host)
                top = rel.split(os.sep)[0]
                if top in rank:
                    return top
                if os.path.relpath(p, src).startswith("include" + os.sep):
                    return PUBLIC.get(os.path.basename(p))
        name = os.path.basename(inc)
        if inc == name:
            return owner.get(name) or PUBLIC.get(name)
        return None

    n_inc = 0
    for path, layer in files:
        rel = os.path.relpath(path, src)
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        if path.endswith(".h"):
            bad = outside_guard(text)
            if bad:
                errors.append(f"{rel}:{bad[0]}: code outside the include guard ({len(bad)} line(s))")
        for lineno, line in enumerate(text.split("\n"), 1):
            m = INCLUDE_RE.match(line)
            if not m:
                continue
            n_inc += 1
            inc = m.group(1)
            target = layer_of(path, inc)
            if target is None:
                errors.append(f'{rel}:{lineno}: #include "{inc}": not a header of host/ or include/')
            elif rank[target] > rank[layer]:
                key = (os.path.relpath(path, host), inc)
                if key not in EXCEPTIONS:
                    errors.append(f'{rel}:{lineno}: #include "{inc}": layer {layer} includes a header of '
                                  f'the higher layer {target}')

    for e in errors:
        print(f"check_layers: {e}", file=sys.stderr)
    if errors:
        print(f"check_layers: FAILED, {len(errors)} problem(s); order: {' < '.join(LAYERS)}", file=sys.stderr)
        return 1
    print(f"check_layers: ok, {len(files)} files, {n_inc} includes, order {' < '.join(LAYERS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
