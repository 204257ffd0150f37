/* GEMM, row-major. Two paths behind one interface:
 *  - CLBlast on the device, with a temp buffer owned by the context;
 *  - host CBLAS for CPU devices whose buffers live in host memory (PoCL):
 *    the buffers are mapped (zero-copy) and the host BLAS runs in place.
 *    Mapping waits for the queued work, which on a CPU device is where the
 *    cores are anyway. GRADFEAT_HOST_BLAS=0 forces CLBlast. */
#define _GNU_SOURCE   /* RTLD_DEFAULT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <clblast_c.h>
#include "gf_internal.h"
#ifdef GF_HAVE_CBLAS
#include <cblas.h>
#include <dlfcn.h>
#include <pthread.h>
#endif

/* CLBlast prints kernel build logs ("OpenCL compiler error/warning: ...") with printf, i.e. into
 * our stdout, which carries results only. Around each CLBlast call fd 1 points at stderr: flush
 * what we printed, swap, call, flush what CLBlast printed (still buffered in stdout), swap back.
 * The calls come from the thread that prints results, so nothing of ours lands on stderr.
 * Returns the saved fd 1 for gf_clblast_quiet_end, or -1 when nothing was swapped. */
int gf_clblast_quiet_begin(void) {
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    if (saved < 0) return -1;
    if (dup2(STDERR_FILENO, STDOUT_FILENO) < 0) { close(saved); return -1; }
    return saved;
}

void gf_clblast_quiet_end(int saved) {
    if (saved < 0) return;
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
}

static CLBlastTranspose tr(int t) { return t ? CLBlastTransposeYes : CLBlastTransposeNo; }

#ifdef GF_HAVE_CBLAS
typedef struct { cl_mem m; float *p; } mapping;

/* Map each distinct buffer once (A, B and C may share one). */
static gf_status map_all(gf_ctx *ctx, cl_mem bufs[3], mapping maps[3], int *n) {
    *n = 0;
    for (int i = 0; i < 3; i++) {
        int seen = 0;
        for (int j = 0; j < *n; j++) seen |= maps[j].m == bufs[i];
        if (seen) continue;
        size_t size = 0;
        GF_CL(ctx, clGetMemObjectInfo(bufs[i], CL_MEM_SIZE, sizeof size, &size, NULL), "clGetMemObjectInfo");
        cl_int e;
        void *p = clEnqueueMapBuffer(ctx->queue, bufs[i], CL_TRUE, CL_MAP_READ | CL_MAP_WRITE, 0, size, 0, NULL,
                                     NULL, &e);
        if (e != CL_SUCCESS) return gf_cl_fail(ctx, e, "clEnqueueMapBuffer (host BLAS GEMM)");
        maps[*n].m = bufs[i]; maps[*n].p = p;
        (*n)++;
    }
    return GF_OK;
}

static float *mapped(mapping *maps, int n, cl_mem m) {
    for (int i = 0; i < n; i++) if (maps[i].m == m) return maps[i].p;
    return NULL;
}

static gf_status unmap_all(gf_ctx *ctx, mapping *maps, int n) {
    for (int i = 0; i < n; i++)
        GF_CL(ctx, clEnqueueUnmapMemObject(ctx->queue, maps[i].m, maps[i].p, 0, NULL, NULL), "clEnqueueUnmapMemObject");
    return GF_OK;
}

/* OpenBLAS's thread count, looked up by name: any other CBLAS has none, and its batches run as a loop. */
static int (*blas_get_threads)(void);
static void (*blas_set_threads)(int);
static void find_blas_threads_once(void) {
    blas_get_threads = (int (*)(void))dlsym(RTLD_DEFAULT, "openblas_get_num_threads");
    blas_set_threads = (void (*)(int))dlsym(RTLD_DEFAULT, "openblas_set_num_threads");
    if (!blas_set_threads) blas_get_threads = NULL;
}
/* OpenBLAS's thread count is one per process: a split sets it to 1 and back under this lock, so that contexts on
 * two threads splitting at once neither read the 1 of the other as the count to restore nor leave it there. */
static pthread_mutex_t split_lock = PTHREAD_MUTEX_INITIALIZER;
int gf_host_blas_threads(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, find_blas_threads_once);
    if (!blas_get_threads) return 1;
    pthread_mutex_lock(&split_lock);
    int n = blas_get_threads();
    pthread_mutex_unlock(&split_lock);
    return n;
}

/* GEMMs i0 .. i1 - 1 of a batch, mapped pointers at their offsets */
typedef struct gemm_share {
    int ta, tb;
    size_t M, N, K, lda, sa, ldb, sb, ldc, sc, i0, i1;
    float alpha, beta;
    const float *a, *b;
    float *c;
} gemm_share;

static void *run_share(void *arg) {
    const gemm_share *s = arg;
    for (size_t i = s->i0; i < s->i1; i++)
        cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans, s->tb ? CblasTrans : CblasNoTrans, (int)s->M,
                    (int)s->N, (int)s->K, s->alpha, s->a + i * s->sa, (int)s->lda, s->b + i * s->sb, (int)s->ldb,
                    s->beta, s->c + i * s->sc, (int)s->ldc);
    return NULL;
}

/* A batch split over ctx->blas_split host threads, each a share of whole GEMMs with the host BLAS on one thread.
 * The batched GEMMs are Winograd's 36 planes, each small (64 x 64 x 3,136 at ResNet-18's first stage): run one
 * after another, OpenBLAS splits each over its threads and joins them 36 times (its second thread spent up to a
 * fifth of its samples in sched_yield there); split, each thread runs its GEMMs without waiting. Only for batches
 * of at least 4 GEMMs a thread (host_gemm), so that the share of the busiest is within 5/4 of the mean: measured
 * on 2 cores only; with more threads than a quarter of the batch OpenBLAS's own split is kept. Every GEMM runs as
 * OpenBLAS runs it on one thread: the bits of the batch one after another with OpenBLAS on one thread
 * (test_runtime). Against OpenBLAS's own split over its threads they can differ in the last bit where its kernels
 * treat edge tiles differently (Haswell's: 9,121 of test_runtime's 162,240 values; SkylakeX's: none, so the
 * ResNet-18 job's models were cmp-identical there). Threads inherit the caller's floating-point mode (hostblas.c). */
enum { MAX_SPLIT = 64 };
static void run_split(int threads, gemm_share *all) {
    gemm_share share[MAX_SPLIT];
    pthread_t tid[MAX_SPLIT];
    int started[MAX_SPLIT] = {0};
    size_t batch = all->i1;
    if (threads > MAX_SPLIT) threads = MAX_SPLIT;
    if ((size_t)threads > batch) threads = (int)batch;
    pthread_mutex_lock(&split_lock);
    int blas = blas_get_threads();
    blas_set_threads(1);
    for (int t = 0; t < threads; t++) {
        share[t] = *all;
        share[t].i0 = batch * (size_t)t / (size_t)threads;
        share[t].i1 = batch * (size_t)(t + 1) / (size_t)threads;
        if (t > 0) started[t] = pthread_create(&tid[t], NULL, run_share, &share[t]) == 0;
    }
    run_share(&share[0]);
    for (int t = 1; t < threads; t++) {
        if (started[t]) pthread_join(tid[t], NULL);
        else run_share(&share[t]);   /* no thread to be had: this one runs the share */
    }
    blas_set_threads(blas);
    pthread_mutex_unlock(&split_lock);
}

/* OpenBLAS picks its kernels from the CPU as it loads. 0.3.21 (Debian 12) knows no CPU newer than Sapphire Rapids and
 * on one it does not know falls back to its Prescott (SSE3) kernels: on an Emerald Rapids VM (family 6, model 207)
 * SGEMM 1024^3 ran at 64 GFLOP/s with them against 273 with its SkylakeX kernels, and test_method_torch's emotion
 * rows missed PyTorch's gradients by 6e-3 (Nehalem's kernels and every newer one within its tolerance; cause not
 * found). Where it fell back so on a CPU with AVX, OpenBLAS is made to choose again as if OPENBLAS_CORETYPE named
 * the newest kernels the CPU runs (gotoblas_dynamic_quit / _init, exported by its DYNAMIC_ARCH builds, Debian's
 * among them), once, before gradfeat's first GEMM; the variable is unset again after. A user's OPENBLAS_CORETYPE
 * is left alone; `doctor` says what was replaced. */
static char blas_replaced[32];
static void choose_blas_kernels_once(void) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (getenv("OPENBLAS_CORETYPE")) return;
    const char *(*corename)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT, "openblas_get_corename");
    void (*quit)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "gotoblas_dynamic_quit");
    void (*init)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init");
    if (!corename || !quit || !init || strcasecmp(corename(), "Prescott") != 0) return;
    __builtin_cpu_init();
    const char *want = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                               __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")
                           ? "SkylakeX"
                       : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? "Haswell"
                       : __builtin_cpu_supports("avx")                                   ? "Sandybridge"
                                                                                         : NULL;
    if (!want) return;   /* a CPU without AVX: Prescott's kernels may be its own */
    snprintf(blas_replaced, sizeof blas_replaced, "%s", corename());
    quit();
    setenv("OPENBLAS_CORETYPE", want, 1);
    init();
    unsetenv("OPENBLAS_CORETYPE");
#endif
}
const char *gf_host_blas_replaced(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, choose_blas_kernels_once);
    return blas_replaced[0] ? blas_replaced : NULL;
}

/* The host BLAS's work buffers, taken while the address space still has room: OpenBLAS (0.3.21, Debian 12) allocates
 * one at a thread's first GEMM where its pool has none free and, when that allocation fails (an address-space limit
 * reached by the caches: `ulimit -v`), retries forever (OpenBLAS issue 5289, fixed in 0.3.30), so a run that fills
 * its limit first hung in its first GEMM instead of failing on its own allocation with a message. Two GEMMs of a size
 * past OpenBLAS's small-matrix path at the first host-BLAS context, split as a batch is (one each on two threads at
 * once), make the buffers the calling thread and run_split's threads take (freed back to OpenBLAS's pool, not to the
 * system: later GEMMs reuse them). */
static void host_blas_reserve_once(void) {
    enum { N = 256 };
    (void)gf_host_blas_replaced();   /* the kernels first, then their buffers */
    int threads = gf_host_blas_threads();
    if (threads < 1 || !blas_set_threads) threads = 1;
    if (threads > MAX_SPLIT) threads = MAX_SPLIT;
    float *a = calloc((size_t)(2 + threads) * N * N, sizeof(float));
    if (!a) return;   /* no room even for this: the run fails on its own allocations */
    gemm_share each = {0, 0, N, N, N, N, 0, N, 0, N, (size_t)N * N, 0, (size_t)threads, 1.0f, 0.0f, a, a + N * N,
                       a + 2 * N * N};   /* a GEMM for each thread, all at once */
    if (threads >= 2) run_split(threads, &each);
    else run_share(&each);
    free(a);
}
void gf_host_blas_reserve(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;   /* contexts may be made on several threads */
    pthread_once(&once, host_blas_reserve_once);
}

static gf_status host_gemm(gf_ctx *ctx, int ta, int tb, size_t M, size_t N, size_t K, float alpha,
                           cl_mem A, size_t off_a, size_t lda, size_t sa, cl_mem B, size_t off_b, size_t ldb,
                           size_t sb, float beta, cl_mem C, size_t off_c, size_t ldc, size_t sc, size_t batch) {
    cl_mem bufs[3] = {A, B, C};
    mapping maps[3];
    int n;
    GF_TRY(map_all(ctx, bufs, maps, &n));
    gemm_share all = {ta, tb, M, N, K, lda, sa, ldb, sb, ldc, sc, 0, batch, alpha, beta,
                      mapped(maps, n, A) + off_a, mapped(maps, n, B) + off_b, mapped(maps, n, C) + off_c};
    int split = ctx->blas_split;
    /* sc 0 sums the batch into one C: one after another only */
    if (split >= 2 && split <= MAX_SPLIT && batch >= 4 * (size_t)split && sc != 0 && blas_set_threads) {
        run_split(split, &all);
        ctx->blas_splits++;
    } else {
        run_share(&all);
    }
    return unmap_all(ctx, maps, n);
}
#else
const char *gf_host_blas_replaced(void) { return NULL; }
#endif

gf_status gf_gemm(gf_ctx *ctx, int ta, int tb, size_t M, size_t N, size_t K,
                  float alpha, cl_mem A, size_t off_a, size_t lda,
                  cl_mem B, size_t off_b, size_t ldb,
                  float beta, cl_mem C, size_t off_c, size_t ldc) {
    if (M == 0 || N == 0) return GF_OK;
    if (K == 0) return gf_fail(ctx, GF_ERR_INTERNAL, "gf_gemm called with K = 0");
#ifdef GF_HAVE_CBLAS
    if (ctx->host_blas)
        return host_gemm(ctx, ta, tb, M, N, K, alpha, A, off_a, lda, 0, B, off_b, ldb, 0, beta, C, off_c, ldc, 0, 1);
#endif
    size_t need = 0;
    int quiet = gf_clblast_quiet_begin();
    CLBlastStatusCode s = CLBlastSGemmTempBufferSize(CLBlastLayoutRowMajor, tr(ta), tr(tb), M, N, K,
                                                     off_a, lda, off_b, ldb, off_c, ldc, &ctx->queue, &need);
    gf_clblast_quiet_end(quiet);
    if (s != CLBlastSuccess) return gf_clblast_fail(ctx, s, "CLBlastSGemmTempBufferSize");
    if (need > ctx->gemm_tmp_bytes) {
        gf_buf_release(&ctx->gemm_tmp);
        ctx->gemm_tmp_bytes = 0;
        GF_TRY(gf_buf_create(ctx, need, "GEMM temp buffer", &ctx->gemm_tmp));
        ctx->gemm_tmp_bytes = need;
    }
    quiet = gf_clblast_quiet_begin();
    s = CLBlastSgemmWithTempBuffer(CLBlastLayoutRowMajor, tr(ta), tr(tb), M, N, K, alpha, A, off_a, lda,
                                   B, off_b, ldb, beta, C, off_c, ldc, &ctx->queue, NULL,
                                   need ? ctx->gemm_tmp : NULL);
    gf_clblast_quiet_end(quiet);
    if (s != CLBlastSuccess) return gf_clblast_fail(ctx, s, "CLBlastSgemm");
    return GF_OK;
}

gf_status gf_gemm_batched(gf_ctx *ctx, int ta, int tb, size_t M, size_t N, size_t K,
                          float alpha, cl_mem A, size_t off_a, size_t lda, size_t stride_a,
                          cl_mem B, size_t off_b, size_t ldb, size_t stride_b,
                          float beta, cl_mem C, size_t off_c, size_t ldc, size_t stride_c, size_t batch) {
    if (M == 0 || N == 0 || batch == 0) return GF_OK;
    if (K == 0) return gf_fail(ctx, GF_ERR_INTERNAL, "gf_gemm_batched called with K = 0");
#ifdef GF_HAVE_CBLAS
    if (ctx->host_blas)
        return host_gemm(ctx, ta, tb, M, N, K, alpha, A, off_a, lda, stride_a, B, off_b, ldb, stride_b, beta, C,
                         off_c, ldc, stride_c, batch);
#endif
    int quiet = gf_clblast_quiet_begin();
    CLBlastStatusCode s = CLBlastSgemmStridedBatched(CLBlastLayoutRowMajor, tr(ta), tr(tb), M, N, K, alpha,
                                                     A, off_a, lda, stride_a, B, off_b, ldb, stride_b, beta,
                                                     C, off_c, ldc, stride_c, batch, &ctx->queue, NULL);
    gf_clblast_quiet_end(quiet);
    if (s != CLBlastSuccess) return gf_clblast_fail(ctx, s, "CLBlastSgemmStridedBatched");
    return GF_OK;
}
