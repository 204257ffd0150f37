/* Losses with device-side reduction; kernels in cl/loss.cl. */
#include "ops_loss.h"
#include <limits.h>
#include <math.h>
#include <stdlib.h>

static gf_status loss_check(gf_ctx *ctx, int B, int K, size_t off, const char *what) {
    if (B <= 0 || K <= 0 || (size_t)B * (size_t)K > UINT_MAX || off > UINT_MAX - 2)
        return gf_fail(ctx, GF_ERR_USAGE, "%s: bad shape B=%d K=%d (offset %zu)", what, B, K, off);
    return GF_OK;
}

gf_status gf_softmax_xent_over(gf_ctx *ctx, int B, int K, cl_mem logits, cl_mem labels, cl_mem grad,
                               cl_mem out, size_t off, int accumulate, int mean_over) {
    GF_TRY(loss_check(ctx, B, K, off, "softmax cross-entropy"));
    cl_kernel k;
    size_t L;
    GF_TRY(gf_kernel(ctx, "loss", NULL, "softmax_xent", &k));
    GF_TRY(gf_pow2_local(ctx, k, 256, (size_t)B, &L));
    /* Without grad the argument still needs a valid buffer: logits, never written. */
    GF_TRY(gf_args(ctx, k, "softmax_xent", "mmmmiiiifuLL", logits, labels, grad ? grad : logits, out,
                   B, K, grad != NULL, accumulate != 0, 1.0 / (mean_over > 0 ? mean_over : B), (unsigned)off, L, L));
    return gf_launch(ctx, k, "softmax_xent", 1, &L, &L);
}

gf_status gf_softmax_xent(gf_ctx *ctx, int B, int K, cl_mem logits, cl_mem labels, cl_mem grad,
                          cl_mem out, size_t off, int accumulate) {
    return gf_softmax_xent_over(ctx, B, K, logits, labels, grad, out, off, accumulate, 0);
}

gf_status gf_sigmoid_bce_over(gf_ctx *ctx, int B, int K, cl_mem logits, cl_mem targets, cl_mem grad,
                              cl_mem out, size_t off, int accumulate, int per_sample, int mean_over) {
    GF_TRY(loss_check(ctx, B, K, off, "sigmoid BCE"));
    size_t n = (size_t)B * (size_t)K;
    cl_kernel k;
    size_t L;
    GF_TRY(gf_kernel(ctx, "loss", NULL, "sigmoid_bce", &k));
    GF_TRY(gf_pow2_local(ctx, k, 256, n, &L));
    int rows = mean_over > 0 ? mean_over : B;
    double inv = per_sample ? 1.0 / rows : 1.0 / ((double)rows * K);
    GF_TRY(gf_args(ctx, k, "sigmoid_bce", "mmmmuiifuLL", logits, targets, grad ? grad : logits, out,
                   (unsigned)n, grad != NULL, accumulate != 0, inv, (unsigned)off, L, L));
    return gf_launch(ctx, k, "sigmoid_bce", 1, &L, &L);
}

gf_status gf_sigmoid_bce(gf_ctx *ctx, int B, int K, cl_mem logits, cl_mem targets, cl_mem grad,
                         cl_mem out, size_t off, int accumulate, int per_sample) {
    return gf_sigmoid_bce_over(ctx, B, K, logits, targets, grad, out, off, accumulate, per_sample, 0);
}

gf_status gf_top1_count(gf_ctx *ctx, int B, int K, cl_mem logits, cl_mem labels,
                        cl_mem out, size_t off, int accumulate) {
    GF_TRY(loss_check(ctx, B, K, off, "top-1 count"));
    cl_kernel k;
    size_t L;
    GF_TRY(gf_kernel(ctx, "loss", NULL, "top1_count", &k));
    GF_TRY(gf_pow2_local(ctx, k, 256, (size_t)B, &L));
    GF_TRY(gf_args(ctx, k, "top1_count", "mmmiiiuLL", logits, labels, out, B, K, accumulate != 0,
                   (unsigned)off, L, L));
    return gf_launch(ctx, k, "top1_count", 1, &L, &L);
}
