#!/usr/bin/env bash
# The layer-norm kernels under oclgrind (`test_ops --small --filter ln`): ln_forward and ln_jacobian
# (tangent and backward) of cl/ln.cl, on one channel, 5 channels and 2x24x5x3 with a constant pixel. Fails
# on an out-of-bounds access, a data race, an API error, a failed check, a kernel of cl/ln.cl that did not
# run, or oclgrind missing (tests/testlib.sh oclgrind_small).
. "$(dirname "$0")/testlib.sh"
oclgrind_caps test_ops --filter ln
oclgrind_uninit test_ops --filter ln
oclgrind_covers cl/ln.cl
finish
