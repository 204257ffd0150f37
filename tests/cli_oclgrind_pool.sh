#!/usr/bin/env bash
# The pool kernels under oclgrind (`test_ops --small --filter maxpool,avgpool,gap`): every kernel of
# cl/pool.cl (max pool forward and argmax, tangent gather, backward gather, the last two also an item per
# plane; average pool, both divisor rules; global average pool, gap_forward_small on 7x7 planes and
# gap_forward's local-memory tree on 9x9 ones, and its backward) on a small TF-SAME case. Fails on an
# out-of-bounds access, a data race, an API error, a failed check, a kernel of cl/pool.cl that did not run, or
# oclgrind missing (tests/testlib.sh oclgrind_small).
. "$(dirname "$0")/testlib.sh"
oclgrind_caps test_ops --filter maxpool,avgpool,gap
oclgrind_uninit test_ops --filter maxpool,avgpool,gap
oclgrind_covers cl/pool.cl
finish
