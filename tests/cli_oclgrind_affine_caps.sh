#!/usr/bin/env bash
# cli_oclgrind_affine's run (`test_ops --small --filter conv,linear`, CLBlast GEMMs, every variant) at the
# work-group caps 128 and 256; apart from it for the time limit (the three caps in one test ran past 900 s on
# an Intel Xeon VM, December 2026). Fails on an out-of-bounds access, a data race, an API error or a failed check.
. "$(dirname "$0")/testlib.sh"
OCLGRIND_CAPS="128 256" GRADFEAT_HOST_BLAS=0 oclgrind_caps test_ops --filter conv,linear
finish
