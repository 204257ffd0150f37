/* Which kernels the host BLAS runs. On CPU devices gradfeat's GEMMs run in the host BLAS (OpenBLAS), which
 * picks its kernels from the CPU when it loads unless OPENBLAS_CORETYPE names others: forced AVX2 kernels
 * ("Haswell") on an AVX-512 CPU halve the GEMMs' speed (measured on the 2-core AMD EPYC: SGEMM 2048^3 225
 * GFLOP/s with Haswell's kernels against 418 with SkylakeX's), so doctor and the benchmarks say which. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include "cli.h"

static int blas_timeout_asked;

void cli_host_blas_describe(char *out, size_t cap) {
    const char *(*corename)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT, "openblas_get_corename");
    const char *env = getenv("OPENBLAS_CORETYPE"), *to = getenv("OPENBLAS_THREAD_TIMEOUT");
    char idle[160];
    if (blas_timeout_asked)
        snprintf(idle, sizeof idle, "; idle threads spin 2^%d cycles (%s)", openblas_thread_timeout(),
                 to && *to ? "OPENBLAS_THREAD_TIMEOUT" : "gradfeat's default");
    else snprintf(idle, sizeof idle, "; idle threads: OpenBLAS's own timeout (it did not ask gradfeat)");
    if (!corename) snprintf(out, cap, "not OpenBLAS (no openblas_get_corename)");
    else if (env && *env) snprintf(out, cap, "OpenBLAS, kernels %s (forced: OPENBLAS_CORETYPE=%s)%s", corename(), env, idle);
    else snprintf(out, cap, "OpenBLAS, kernels %s (its own choice for this CPU)%s", corename(), idle);
}

/* OpenBLAS's worker threads spin (sched_yield) for 2^OPENBLAS_THREAD_TIMEOUT cycles after each GEMM before
 * they sleep: 2^28 by default, about 0.1 s, during which they take the cores from the OpenCL device's
 * threads that run the kernels between GEMMs (on a CPU device, both share the same cores). OpenBLAS reads the
 * variable once, as it loads, through this function of its own; the program's definition takes its place
 * (ELF symbol interposition; a BLAS that is not OpenBLAS never calls it) and answers 4, the least OpenBLAS
 * takes, unless the variable is set. Measured on W1 (2-core AMD EPYC, `gradfeat bench linearized`, two
 * alternating rounds): linearized step 935/945 ms -> 784/758, fine-tune 702/649 -> 545/532. */
int openblas_thread_timeout(void) {
    const char *v = getenv("OPENBLAS_THREAD_TIMEOUT");
    blas_timeout_asked = 1;
    return v && *v ? atoi(v) : 4;
}
