/* Which kernels the host BLAS runs. On CPU devices gradfeat's GEMMs run in the host BLAS (OpenBLAS), which
 * picks its kernels from the CPU when it loads unless OPENBLAS_CORETYPE names others: forced AVX2 kernels
 * ("Haswell") on an AVX-512 CPU halve the GEMMs' speed (measured on the 2-core AMD EPYC: SGEMM 2048^3 225
 * GFLOP/s with Haswell's kernels against 418 with SkylakeX's), so doctor and the benchmarks say which. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include "cli.h"

void cli_host_blas_describe(char *out, size_t cap) {
    const char *(*corename)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT, "openblas_get_corename");
    const char *env = getenv("OPENBLAS_CORETYPE");
    if (!corename) snprintf(out, cap, "not OpenBLAS (no openblas_get_corename)");
    else if (env && *env) snprintf(out, cap, "OpenBLAS, kernels %s (forced: OPENBLAS_CORETYPE=%s)", corename(), env);
    else snprintf(out, cap, "OpenBLAS, kernels %s (its own choice for this CPU)", corename());
}
