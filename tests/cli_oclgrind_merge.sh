#!/usr/bin/env bash
# The merge kernels under oclgrind (`test_ops --small --filter mul,concat,shuffle,slice`): mul_forward,
# mul_tangent, mul_backward, mul_gate_grad_small (7x7 planes), mul_gate_grad (9x9 planes: a work-group
# tree in local memory), concat_slice (concat and slice: copy, add, zero-fill) and channel_shuffle
# (forward, inverse, accumulate) of cl/merge.cl. Fails on an out-of-bounds access, a data race, an API
# error, a failed check, a kernel of cl/merge.cl that did not run, or oclgrind missing (tests/testlib.sh
# oclgrind_small).
. "$(dirname "$0")/testlib.sh"
oclgrind_caps test_ops --filter mul,concat,shuffle,slice
oclgrind_uninit test_ops --filter mul,concat,shuffle,slice
oclgrind_covers cl/merge.cl
finish
