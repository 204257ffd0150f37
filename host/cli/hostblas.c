/* Which kernels the host BLAS runs. On CPU devices gradfeat's GEMMs run in the host BLAS (OpenBLAS), which
 * picks its kernels from the CPU when it loads unless OPENBLAS_CORETYPE names others: forced AVX2 kernels
 * ("Haswell") on an AVX-512 CPU halve the GEMMs' speed (measured on the 2-core AMD EPYC: SGEMM 2048^3 225
 * GFLOP/s with Haswell's kernels against 418 with SkylakeX's), so doctor and the benchmarks say which. */
#define _GNU_SOURCE
#include <cblas.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <pmmintrin.h>
#endif
#include "cli.h"

static int blas_timeout_asked;

/* Subnormal floats (below 1.2e-38) flushed to zero in this thread and the threads it starts afterwards (x86
 * MXCSR: FTZ for results, DAZ for inputs), unless GRADFEAT_DENORMALS=keep. Where a run's gradients get that
 * small (a confident softmax: exp(z - max) under 1e-38, then products and sums of such values), the CPU takes
 * a slow microcode path for every operation on them: the ResNet-18 job's fine-tuning ran its backward GEMMs
 * 7-10x slower (`tools/bench_job.sh --workloads resnet18`: finetune 9.1 -> 4.0 s, the same losses). GPUs'
 * fp32 flushes them too. Threads inherit the mode when they are created, so this runs in main() and again
 * as OpenBLAS loads, before it starts its worker threads (openblas_thread_timeout below). */
int cli_flush_denormals(void) {
    const char *v = getenv("GRADFEAT_DENORMALS");
    if (v && !strcmp(v, "keep")) return 0;
#if defined(__x86_64__) || defined(__i386__)
    _MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_ON);
    _MM_SET_DENORMALS_ZERO_MODE(_MM_DENORMALS_ZERO_ON);
    return 1;
#else
    return 0;
#endif
}

/* What the host BLAS does with subnormals, seen from a GEMM big enough for its worker threads: one on
 * subnormal inputs (DAZ: zero), one whose products underflow (FTZ: zero). "flushed" when both give zeros. */
void cli_denormals_describe(char *out, size_t cap) {
    enum { M = 256, N = 256, K = 32 };
    float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * K * N), *c = malloc(sizeof(float) * M * N);
    if (!a || !b || !c) {
        snprintf(out, cap, "not checked (out of host memory)");
        free(a); free(b); free(c);
        return;
    }
    int nz[2] = {0, 0};
    for (int t = 0; t < 2; t++) {
        float x = t ? 1e-20f : 1e-39f, y = t ? 1e-20f : 1.0f;   /* t 0: inputs subnormal; t 1: products */
        for (int i = 0; i < M * K; i++) a[i] = x;
        for (int i = 0; i < K * N; i++) b[i] = y;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, a, K, b, N, 0.0f, c, N);
        for (int i = 0; i < M * N; i++) nz[t] += c[i] != 0.0f;
    }
    const char *v = getenv("GRADFEAT_DENORMALS");
    int keep = v && !strcmp(v, "keep");
    if (!nz[0] && !nz[1]) snprintf(out, cap, "flushed to zero (a %dx%dx%d host GEMM on subnormals gave zeros)", M, N, K);
    else snprintf(out, cap, "kept (%s; %d and %d of %d outputs of a host GEMM on subnormal inputs and with subnormal "
                  "products nonzero): slower where gradients get that small", keep ? "GRADFEAT_DENORMALS=keep" :
                  "this CPU or build", nz[0], nz[1], M * N);
    free(a); free(b); free(c);
}

void cli_host_blas_describe(char *out, size_t cap) {
    const char *(*corename)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT, "openblas_get_corename");
    const char *env = getenv("OPENBLAS_CORETYPE"), *to = getenv("OPENBLAS_THREAD_TIMEOUT");
    char idle[224];
    if (blas_timeout_asked)
        snprintf(idle, sizeof idle, "; idle threads spin 2^%d cycles (%s)", openblas_thread_timeout(),
                 to && *to ? "OPENBLAS_THREAD_TIMEOUT" : "gradfeat's default");
    else snprintf(idle, sizeof idle, "; idle threads: OpenBLAS's own timeout (it did not ask gradfeat)");
    int (*threads)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "openblas_get_num_threads");
    int nt = threads ? threads() : 1;
    if (nt >= 2) {   /* host/runtime/gemm.c run_split */
        size_t used = strlen(idle);
        snprintf(idle + used, sizeof idle - used, "; batched GEMMs split over its %d threads, a GEMM each", nt);
    }
    const char *replaced = gf_host_blas_replaced();   /* first: it may change the kernels */
    if (!corename) snprintf(out, cap, "not OpenBLAS (no openblas_get_corename)");
    else if (replaced)
        snprintf(out, cap, "OpenBLAS, kernels %s (it did not know this CPU and fell back to %s's: gradfeat chose "
                 "these; OPENBLAS_CORETYPE overrides)%s", corename(), replaced, idle);
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
    cli_flush_denormals();   /* the worker threads, started right after this call, inherit it */
    return v && *v ? atoi(v) : 4;
}
