#!/usr/bin/env bash
# The Winograd F(2x2, 3x3) transforms under oclgrind --uninitialized (tests/testlib.sh oclgrind_uninit): `test_ops
# --small --filter conv --variant wino-clblast --winograd-rows` (the per-tile kernels, CLBlast's batched GEMM) at the cap 64;
# the CPU-style ones share their filter helper and run in cli_oclgrind_affine. Apart from
# cli_oclgrind_affine_uninit for the time limit (that test with this variant took 869 of its 900 s on the 2-core VM
# under a parallel suite): unoptimised kernels under this check run 5-10 times slower. Fails on a read of memory
# nothing wrote, an out-of-bounds access, a data race, an API error or a failed check.
. "$(dirname "$0")/testlib.sh"
# --winograd-rows: the rows whose conv takes the Winograd path; the others (1x1, depthwise, stride 2, linear) run the
# element kernels and CLBlast alone, as in cli_oclgrind_element_uninit (all rows: 782 s on the 2-core Emerald Rapids VM)
UNINIT_CAPS=64 GRADFEAT_HOST_BLAS=0 oclgrind_uninit test_ops --filter conv --variant wino-clblast --winograd-rows
finish
