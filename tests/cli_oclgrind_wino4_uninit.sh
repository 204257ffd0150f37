#!/usr/bin/env bash
# The Winograd F(4x4, 3x3) transforms under oclgrind --uninitialized (tests/testlib.sh oclgrind_uninit): `test_ops
# --small --filter conv --variant wino4-clblast --winograd-rows` (the per-tile kernels, CLBlast's batched GEMM) at the cap 64. The
# CPU-style (rows) kernels and every cap run in cli_oclgrind_affine. Apart from cli_oclgrind_affine_uninit for the
# time limit: unoptimised kernels under this check run 5-10 times slower. Fails on a read of memory nothing wrote,
# an out-of-bounds access, a data race, an API error or a failed check.
. "$(dirname "$0")/testlib.sh"
# --winograd-rows: as in cli_oclgrind_wino2_uninit (the other rows are cli_oclgrind_element_uninit's)
UNINIT_CAPS=64 GRADFEAT_HOST_BLAS=0 oclgrind_uninit test_ops --filter conv --variant wino4-clblast --winograd-rows
finish
