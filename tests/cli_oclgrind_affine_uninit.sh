#!/usr/bin/env bash
# The affine kernels under oclgrind --uninitialized (tests/testlib.sh oclgrind_uninit): `test_ops --small
# --filter conv,linear` with CLBlast GEMMs, at the cap 64 (conv's reductions are compiled at RED_WG 64
# whatever the cap), on both conv kernel styles (plane, element); the Winograd transforms in
# cli_oclgrind_wino2_uninit and cli_oclgrind_wino4_uninit. Fails on a read of memory nothing wrote, an
# out-of-bounds access, a data race, an API error or a failed check. Apart from cli_oclgrind_affine because
# unoptimised kernels under this check run 5-10 times slower (200-300 s a variant on the loaded 2-core VM):
# each test keeps its own time limit.
. "$(dirname "$0")/testlib.sh"
for v in plane; do   # element: cli_oclgrind_element_uninit (the two ran past 900 s on an Intel Xeon VM)
  UNINIT_CAPS=64 GRADFEAT_HOST_BLAS=0 oclgrind_uninit test_ops --filter conv,linear --variant $v
done
finish
