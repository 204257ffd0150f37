#!/usr/bin/python3
"""PyTorch reference for tests/test_bn_block.c: one training-mode BatchNorm forward +
backward in float64 (torch.nn.functional.batch_norm, training=True).

usage: torch_bn_reference.py DIR N C HW EPS MOMENTUM
reads DIR/{x,dy,gamma,beta,running_mean,running_var}.f32 (raw little-endian
float32, x and dy NCHW with H*W flattened to HW), writes DIR/{y,dx,dgamma,dbeta,
running_mean,running_var}.f64 (raw float64): y, the gradients of <y, dy>, and
the running statistics after the update (unbiased variance, PyTorch's rule)."""
import sys

import numpy as np
import torch


def main():
    d = sys.argv[1]
    n, c, hw = (int(v) for v in sys.argv[2:5])
    eps, momentum = float(sys.argv[5]), float(sys.argv[6])

    def load(name, shape):
        a = np.fromfile(f"{d}/{name}.f32", dtype="<f4")
        assert a.size == int(np.prod(shape)), (name, a.size, shape)
        return torch.from_numpy(a.astype(np.float64).reshape(shape))

    x = load("x", (n, c, hw)).requires_grad_(True)
    dy = load("dy", (n, c, hw))
    gamma = load("gamma", (c,)).requires_grad_(True)
    beta = load("beta", (c,)).requires_grad_(True)
    rm, rv = load("running_mean", (c,)), load("running_var", (c,))
    y = torch.nn.functional.batch_norm(x, rm, rv, gamma, beta, training=True, momentum=momentum, eps=eps)
    (y * dy).sum().backward()
    out = {"y": y, "dx": x.grad, "dgamma": gamma.grad, "dbeta": beta.grad, "running_mean": rm, "running_var": rv}
    for name, t in out.items():
        t.detach().numpy().astype("<f8").tofile(f"{d}/{name}.f64")
    print("torch", torch.__version__, "batch_norm reference written to", d)


if __name__ == "__main__":
    main()
