#!/usr/bin/env bash
# The util kernels under oclgrind: gf_axpby, gf_add and gf_fill (`test_runtime --small`), and the cache
# gathers and half storage (`test_half --small`): gf_store_half (vstore_half_rte at an offset between
# guard bands), gf_gather_rows_half (vload_half) and gf_gather_rows — every kernel of cl/util.cl. Fails
# on an out-of-bounds access, a data race, an API error, a failed check, a kernel of cl/util.cl that did
# not run, or oclgrind missing (tests/testlib.sh oclgrind_small); each also with --uninitialized.
. "$(dirname "$0")/testlib.sh"
oclgrind_small test_runtime
oclgrind_small test_half
oclgrind_uninit test_runtime
oclgrind_uninit test_half
oclgrind_covers cl/util.cl
finish
