/* GEMM through CLBlast, row-major, with a temp buffer owned by the context. */
#include <clblast_c.h>
#include "gf_internal.h"

static CLBlastTranspose tr(int t) { return t ? CLBlastTransposeYes : CLBlastTransposeNo; }

gf_status gf_gemm(gf_ctx *ctx, int ta, int tb, size_t M, size_t N, size_t K,
                  float alpha, cl_mem A, size_t off_a, size_t lda,
                  cl_mem B, size_t off_b, size_t ldb,
                  float beta, cl_mem C, size_t off_c, size_t ldc) {
    if (M == 0 || N == 0) return GF_OK;
    if (K == 0) return gf_fail(ctx, GF_ERR_INTERNAL, "gf_gemm called with K = 0");
    size_t need = 0;
    CLBlastStatusCode s = CLBlastSGemmTempBufferSize(CLBlastLayoutRowMajor, tr(ta), tr(tb), M, N, K,
                                                     off_a, lda, off_b, ldb, off_c, ldc, &ctx->queue, &need);
    if (s != CLBlastSuccess) return gf_clblast_fail(ctx, s, "CLBlastSGemmTempBufferSize");
    if (need > ctx->gemm_tmp_bytes) {
        gf_buf_release(&ctx->gemm_tmp);
        ctx->gemm_tmp_bytes = 0;
        GF_TRY(gf_buf_create(ctx, need, "GEMM temp buffer", &ctx->gemm_tmp));
        ctx->gemm_tmp_bytes = need;
    }
    s = CLBlastSgemmWithTempBuffer(CLBlastLayoutRowMajor, tr(ta), tr(tb), M, N, K, alpha, A, off_a, lda,
                                   B, off_b, ldb, beta, C, off_c, ldc, &ctx->queue, NULL,
                                   need ? ctx->gemm_tmp : NULL);
    if (s != CLBlastSuccess) return gf_clblast_fail(ctx, s, "CLBlastSgemm");
    return GF_OK;
}

gf_status gf_gemm_batched(gf_ctx *ctx, int ta, int tb, size_t M, size_t N, size_t K,
                          float alpha, cl_mem A, size_t off_a, size_t lda, size_t stride_a,
                          cl_mem B, size_t off_b, size_t ldb, size_t stride_b,
                          float beta, cl_mem C, size_t off_c, size_t ldc, size_t stride_c, size_t batch) {
    if (M == 0 || N == 0 || batch == 0) return GF_OK;
    if (K == 0) return gf_fail(ctx, GF_ERR_INTERNAL, "gf_gemm_batched called with K = 0");
    CLBlastStatusCode s = CLBlastSgemmStridedBatched(CLBlastLayoutRowMajor, tr(ta), tr(tb), M, N, K, alpha,
                                                     A, off_a, lda, stride_a, B, off_b, ldb, stride_b, beta,
                                                     C, off_c, ldc, stride_c, batch, &ctx->queue, NULL);
    if (s != CLBlastSuccess) return gf_clblast_fail(ctx, s, "CLBlastSgemmStridedBatched");
    return GF_OK;
}
