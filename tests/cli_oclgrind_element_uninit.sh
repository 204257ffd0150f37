#!/usr/bin/env bash
# cli_oclgrind_affine_uninit's check for the per-element (GPU-style) conv kernels: `test_ops --small --filter
# conv,linear --variant element` under oclgrind --uninitialized with CLBlast GEMMs at the cap 64 (tests/testlib.sh
# oclgrind_uninit); apart from it for the time limit (the two variants in one test ran past 900 s on an Intel
# Xeon VM, December 2026). Fails on a read of memory nothing wrote, an out-of-bounds access, a data race, an API
# error or a failed check.
. "$(dirname "$0")/testlib.sh"
UNINIT_CAPS=64 GRADFEAT_HOST_BLAS=0 oclgrind_uninit test_ops --filter conv,linear --variant element
finish
