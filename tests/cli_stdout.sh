#!/usr/bin/env bash
# stdout carries results only: CLBlast prints kernel build logs to stdout ("OpenCL compiler
# error/warning: ..."); host/runtime/gemm.c points fd 1 at stderr around every CLBlast call. To make CLBlast
# print, its GEMM kernels are made to fail to build on PoCL: POCL_EXTRA_BUILD_FLAGS redefines a macro
# CLBlast #defines (GEMMK) under -Werror; gradfeat's own kernels do not define it and still build.
# `selftest` with GRADFEAT_HOST_BLAS=0 then fails its CLBlast GEMM rows (exit 8), and its stdout must
# still be exactly the result table, with CLBlast's log on stderr.
# POCL_EXTRA_BUILD_FLAGS works on PoCL only, so the run is pinned to PoCL's ICD and device whatever
# GRADFEAT_DEVICE / other ICDs the environment has (the CI matrix runs the suite on Mesa's llvmpipe
# too); what it checks, gradfeat's stdout handling around CLBlast, is host code.
. "$(dirname "$0")/testlib.sh"
OCL_ICD_VENDORS=/etc/OpenCL/vendors/pocl.icd GRADFEAT_DEVICE="Portable Computing Language" \
POCL_CACHE_DIR="$t/pocl" GRADFEAT_CACHE=0 GRADFEAT_GEMM=clblast POCL_EXTRA_BUILD_FLAGS="-DGEMMK=7 -Werror" \
  "$G" selftest > "$t/out" 2> "$t/err"; rc=$?
check "selftest with broken CLBlast kernels exits 8 (rc $rc)" '[ $rc -eq 8 ] && grep -q "^gemm NN (CLBlast) .* FAIL$" "$t/out"'
check "CLBlast's build log went to stderr" 'grep -q "OpenCL compiler error/warning" "$t/err"'
check "stdout has no CLBlast text" '! grep -qi "compiler\|error\|macro" "$t/out"'
# every stdout line is one of the table's: device line, header, a row, the summary
check "stdout is the result table only" '! grep -vE "^device: |^kernel paths: |^check +max abs +max rel +tol +result$|^[a-z].* (ok|FAIL)$|^[0-9]+ passed, [0-9]+ failed$" "$t/out"'
check "the table is complete (header, rows, summary)" '[ "$(grep -c "^check " "$t/out")" -eq 1 ] && [ "$(grep -cE " (ok|FAIL)$" "$t/out")" -ge 30 ] && grep -qE "^[0-9]+ passed, [1-9][0-9]* failed$" "$t/out"'
finish
