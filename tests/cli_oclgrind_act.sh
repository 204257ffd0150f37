#!/usr/bin/env bash
# The activation kernels under oclgrind (`test_ops --small --filter act`): act_forward and act_jacobian of
# cl/act.cl (tangent and backward) and their CPU-style run kernels act_*_rows, every kind (ReLU, leaky with
# positive and negative slopes, ReLU6, sigmoid, SiLU, hard-sigmoid at both slopes, hard-swish, GELU erf and
# tanh), in place, the special values. Fails on an out-of-bounds access, a data race, an API error, a failed
# check, a kernel of cl/act.cl that did not run, or oclgrind missing (tests/testlib.sh oclgrind_small).
. "$(dirname "$0")/testlib.sh"
oclgrind_caps test_ops --filter act
oclgrind_uninit test_ops --filter act
oclgrind_covers cl/act.cl
finish
