#!/usr/bin/env bash
# cli_oclgrind_affine's run (`test_ops --small --filter conv,linear`, CLBlast GEMMs) at the work-group caps 128
# and 256, for the variants whose launches the cap changes most (element, plane, winograd4); apart from it for
# the time limit (all variants at three caps ran past 900 s on an Intel Xeon VM, December 2026; the conv
# reductions are compiled at RED_WG 64 whatever the cap). Fails on an out-of-bounds access, a data race, an API
# error or a failed check.
. "$(dirname "$0")/testlib.sh"
for v in element plane winograd4; do
  OCLGRIND_CAPS="128 256" GRADFEAT_HOST_BLAS=0 oclgrind_caps test_ops --filter conv,linear --variant $v
done
finish
