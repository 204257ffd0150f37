#!/usr/bin/env bash
# The affine kernels under oclgrind (`test_ops --small --filter conv,linear`): every kernel of cl/conv.cl
# (im2col and col2im, per element and per plane; the layout transposes; fill_bias; reduce_nc; the
# depthwise forward and backward, per element and per plane; sum_partials of the reductions split by a
# tiny item budget) and the CLBlast GEMMs they feed: GEMMs through CLBlast (not the host BLAS), so that
# the offsets and leading dimensions the conv passes to CLBlast are checked by oclgrind too. Fails on an
# out-of-bounds access, a data race, an API error, a failed check, a kernel of cl/conv.cl that did not
# run, or oclgrind missing (tests/testlib.sh oclgrind_small).
# At the cap 64 here, 128 and 256 in cli_oclgrind_affine_caps (the three took 900+ s on an Intel Xeon VM).
. "$(dirname "$0")/testlib.sh"
OCLGRIND_CAPS=64 GRADFEAT_HOST_BLAS=0 oclgrind_caps test_ops --filter conv,linear
# --uninitialized: tests/cli_oclgrind_affine_uninit.sh, cli_oclgrind_element_uninit.sh
oclgrind_covers cl/conv.cl
finish
