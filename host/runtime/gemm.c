/* GEMM, row-major. Two paths behind one interface:
 *  - CLBlast on the device, with a temp buffer owned by the context;
 *  - host CBLAS for CPU devices whose buffers live in host memory (PoCL):
 *    the buffers are mapped (zero-copy) and the host BLAS runs in place.
 *    Mapping waits for the queued work, which on a CPU device is where the
 *    cores are anyway. GRADFEAT_HOST_BLAS=0 forces CLBlast. */
#include <stdio.h>
#include <unistd.h>
#include <clblast_c.h>
#include "gf_internal.h"
#ifdef GF_HAVE_CBLAS
#include <cblas.h>
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

/* The host BLAS's work buffer, taken while the address space still has room: OpenBLAS (0.3.21, Debian 12) allocates it
 * at a thread's first GEMM and, when that allocation fails (an address-space limit reached by the caches: `ulimit
 * -v`), retries forever (OpenBLAS issue 5289, fixed in 0.3.30), so a run that fills its limit first hung in its
 * first GEMM instead of failing on its own allocation with a message. One GEMM of a size past OpenBLAS's
 * small-matrix path at the first host-BLAS context makes the calling thread's buffer (freed back to OpenBLAS's
 * pool, not to the system: later GEMMs reuse it). */
static void host_blas_reserve_once(void) {
    enum { N = 256 };
    float *a = calloc((size_t)3 * N * N, sizeof(float));
    if (!a) return;   /* no room even for this: the run fails on its own allocations */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1.0f, a, N, a + N * N, N, 0.0f, a + 2 * N * N, N);
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
    float *a = mapped(maps, n, A), *b = mapped(maps, n, B), *c = mapped(maps, n, C);
    for (size_t i = 0; i < batch; i++)
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N,
                    (int)K, alpha, a + off_a + i * sa, (int)lda, b + off_b + i * sb, (int)ldb, beta,
                    c + off_c + i * sc, (int)ldc);
    return unmap_all(ctx, maps, n);
}
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
