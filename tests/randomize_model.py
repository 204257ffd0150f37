#!/usr/bin/python3
"""Random θ for the paper's sanity check (Table 1: a random network gives nothing): copy a gradfeat
.safetensors model with the values of every tensor shuffled (seeded permutation per tensor). Each tensor
keeps its exact value distribution (mean, std, range: no blow-up or collapse of the activations from a
changed scale), but everything the weights learned is gone. Header and graph metadata are copied as-is.

usage: randomize_model.py IN.safetensors OUT.safetensors [--seed S]
"""
import argparse
import json
import struct

import numpy as np

DTYPES = {"F32": np.float32, "F16": np.float16}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("inp")
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    raw = open(a.inp, "rb").read()
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hlen])
    data = bytearray(raw[8 + hlen:])
    rng = np.random.default_rng(a.seed)
    shuffled = 0
    for name in sorted(k for k in header if k != "__metadata__"):
        t = header[name]
        if t["dtype"] not in DTYPES:
            raise SystemExit(f"{a.inp}: tensor {name} has dtype {t['dtype']} (only F32/F16 handled)")
        b, e = t["data_offsets"]
        v = np.frombuffer(bytes(data[b:e]), dtype=DTYPES[t["dtype"]]).copy()
        data[b:e] = rng.permutation(v).tobytes()
        shuffled += 1
    with open(a.out, "wb") as f:
        f.write(raw[:8 + hlen])
        f.write(bytes(data))
    print(f"{a.out}: {shuffled} tensors shuffled (seed {a.seed})")


if __name__ == "__main__":
    main()
