/* BatchNorm forward (training / eval) and backward; kernels in cl/bn.cl. */
#include "ops_bn.h"
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static gf_status bn_check(gf_ctx *ctx, int n, int c, int hw, float eps, const char *what) {
    if (n < 1 || c < 1 || hw < 1 || (uint64_t)n * (uint64_t)c * (uint64_t)hw > INT_MAX)
        return gf_fail(ctx, GF_ERR_USAGE, "%s: bad shape n=%d c=%d hw=%d (each >= 1, n*c*hw < 2^31)", what, n, c, hw);
    if (!(eps > 0.0f) || !isfinite(eps))
        return gf_fail(ctx, GF_ERR_USAGE, "%s: eps %g must be positive and finite", what, (double)eps);
    return GF_OK;
}

/* Lane walk (cl/bn.cl WALK_BEGIN): contiguous chunks on CPU devices, so that
 * each work-item streams its own memory, with 16 lanes per channel; strided
 * (coalesced) with up to 256 lanes elsewhere. PoCL, 2 cores, n=64 c=64 32x32:
 * training forward 137 -> 41 ms, backward 169 -> 25 ms (axpby of the same
 * size: 18-27 ms). The context's bn_walk option (GRADFEAT_BN_WALK=blocked|strided)
 * overrides; tests/test_ops.c runs both walks on one device. */
static int bn_blocked(gf_ctx *ctx) { return ctx->bn_blocked; }

/* Lanes per channel: a power of two, no more than the n*hw values need; more
 * than the walk's usual 16 / 256 when a lane's loops (up to three passes of
 * about 2 iterations per value it walks) would pass the context's item budget
 * (README "Kernel paths"), up to the kernel's work-group limit. That limit can
 * be low (llvmpipe: 32), and one work-group per channel cannot split further:
 * there, a lane walks n*hw/32 values, within llvmpipe's 65,535 loop iterations
 * up to about 200,000 values per channel (batch 64 at 56x56); a two-level
 * reduction for larger ones is not written yet. */
static gf_status bn_local(gf_ctx *ctx, cl_kernel k, int n, int hw, size_t *L) {
    size_t M = (size_t)n * (size_t)hw, cap = bn_blocked(ctx) ? 16 : 256;
    while (cap < 4096 && 6 * ((M + cap - 1) / cap) + 3 > ctx->item_budget) cap *= 2;
    return gf_pow2_local(ctx, k, cap, M, L);
}

gf_status gf_bn_train_forward(gf_ctx *ctx, int n, int c, int hw, cl_mem x, cl_mem gamma, cl_mem beta, float eps,
                              float momentum, cl_mem running_mean, cl_mem running_var, cl_mem y,
                              cl_mem save_mean, cl_mem save_invstd) {
    const char *what = "batchnorm training forward";
    GF_TRY(bn_check(ctx, n, c, hw, eps, what));
    if ((size_t)n * (size_t)hw < 2)
        return gf_fail(ctx, GF_ERR_USAGE, "%s: training needs more than one value per channel (n*h*w = 1, as PyTorch); "
                                          "use a batch of at least 2 or eval mode", what);
    if (!(momentum >= 0.0f && momentum <= 1.0f))
        return gf_fail(ctx, GF_ERR_USAGE, "%s: momentum %g outside [0, 1]", what, (double)momentum);
    if (!x || !gamma || !beta || !y || !running_mean != !running_var || !save_mean != !save_invstd)
        return gf_fail(ctx, GF_ERR_USAGE, "%s: x, gamma, beta, y are required; running mean/var and saved "
                                          "mean/invstd come in pairs", what);
    cl_kernel k;
    size_t L;
    GF_TRY(gf_kernel(ctx, "bn", NULL, "bn_train_forward", &k));
    GF_TRY(bn_local(ctx, k, n, hw, &L));
    double M = (double)n * hw;
    int upd = running_mean != NULL, save = save_mean != NULL;
    /* Absent optional buffers still need a valid argument: x, never written (flags off). */
    GF_TRY(gf_args(ctx, k, "bn_train_forward", "mmmmmmmmuuufffiiiL", x, gamma, beta, upd ? running_mean : x,
                   upd ? running_var : x, y, save ? save_mean : x, save ? save_invstd : x, (unsigned)n, (unsigned)c,
                   (unsigned)hw, (double)eps, (double)momentum, M / (M - 1.0), upd, save, bn_blocked(ctx), L));
    size_t global = (size_t)c * L;
    return gf_launch(ctx, k, "bn_train_forward", 1, &global, &L);
}

gf_status gf_bn_eval_forward(gf_ctx *ctx, int n, int c, int hw, cl_mem x, cl_mem gamma, cl_mem beta, float eps,
                             cl_mem running_mean, cl_mem running_var, cl_mem y) {
    const char *what = "batchnorm eval forward";
    GF_TRY(bn_check(ctx, n, c, hw, eps, what));
    if (!x || !gamma || !beta || !running_mean || !running_var || !y)
        return gf_fail(ctx, GF_ERR_USAGE, "%s: every buffer is required", what);
    size_t total = (size_t)n * c * hw;
    cl_kernel k;
    GF_TRY(gf_kernel(ctx, "bn", NULL, "bn_eval_forward", &k));
    GF_TRY(gf_args(ctx, k, "bn_eval_forward", "mmmmmmuuuf", x, gamma, beta, running_mean, running_var, y,
                   (unsigned)total, (unsigned)c, (unsigned)hw, (double)eps));
    return gf_launch1(ctx, k, "bn_eval_forward", total);
}

static gf_status bn_backward(gf_ctx *ctx, int n, int c, int hw, cl_mem x, cl_mem dy, cl_mem gamma, cl_mem mean,
                             cl_mem stat, int train, float eps, cl_mem dx, cl_mem dgamma, cl_mem dbeta,
                             int accumulate, const char *what) {
    GF_TRY(bn_check(ctx, n, c, hw, eps, what));
    if (!x || !dy || !gamma || !mean || !stat || !dgamma != !dbeta)
        return gf_fail(ctx, GF_ERR_USAGE, "%s: x, dy, gamma and the statistics are required; dgamma and dbeta "
                                          "come as a pair", what);
    int has_dx = dx != NULL, has_dp = dgamma != NULL;
    if (!has_dx && !has_dp) return GF_OK;
    cl_kernel k;
    size_t L;
    GF_TRY(gf_kernel(ctx, "bn", NULL, "bn_backward", &k));
    GF_TRY(bn_local(ctx, k, n, hw, &L));
    /* Absent outputs get dy as a placeholder argument, never written (flags off). */
    GF_TRY(gf_args(ctx, k, "bn_backward", "mmmmmmmmuuuifiiiiLL", x, dy, gamma, mean, stat, has_dx ? dx : dy,
                   has_dp ? dgamma : dy, has_dp ? dbeta : dy, (unsigned)n, (unsigned)c, (unsigned)hw, train,
                   (double)eps, has_dx, has_dp, accumulate != 0, bn_blocked(ctx), L, L));
    size_t global = (size_t)c * L;
    return gf_launch(ctx, k, "bn_backward", 1, &global, &L);
}

gf_status gf_bn_train_backward(gf_ctx *ctx, int n, int c, int hw, cl_mem x, cl_mem dy, cl_mem gamma,
                               cl_mem save_mean, cl_mem save_invstd, cl_mem dx, cl_mem dgamma, cl_mem dbeta,
                               int accumulate) {
    /* eps is unused in training mode (invstd is saved); any positive value passes the check. */
    return bn_backward(ctx, n, c, hw, x, dy, gamma, save_mean, save_invstd, 1, 1.0f, dx, dgamma, dbeta, accumulate,
                       "batchnorm training backward");
}

gf_status gf_bn_eval_backward(gf_ctx *ctx, int n, int c, int hw, cl_mem x, cl_mem dy, cl_mem gamma, float eps,
                              cl_mem running_mean, cl_mem running_var, cl_mem dx, cl_mem dgamma, cl_mem dbeta,
                              int accumulate) {
    return bn_backward(ctx, n, c, hw, x, dy, gamma, running_mean, running_var, 0, eps, dx, dgamma, dbeta, accumulate,
                       "batchnorm eval backward");
}

gf_status gf_bn_sums(gf_ctx *ctx, int n, int c, int hw, cl_mem x, cl_mem shift, cl_mem out) {
    GF_TRY(bn_check(ctx, n, c, hw, 1.0f, "batchnorm partial sums"));
    cl_kernel k;
    size_t L;
    GF_TRY(gf_kernel(ctx, "bn", NULL, "bn_sums", &k));
    GF_TRY(bn_local(ctx, k, n, hw, &L));
    /* without a shift the kernel reads none: x stands in for the argument */
    GF_TRY(gf_args(ctx, k, "bn_sums", "mmmuuuiiLL", x, shift ? shift : x, out, (unsigned)n, (unsigned)c, (unsigned)hw,
                   shift == NULL, bn_blocked(ctx), L, L));
    size_t global = (size_t)c * L;
    return gf_launch(ctx, k, "bn_sums", 1, &global, &L);
}

gf_status gf_bn_apply(gf_ctx *ctx, int n, int c, int hw, cl_mem x, cl_mem gamma, cl_mem beta, cl_mem hi, cl_mem lo,
                      cl_mem invstd, cl_mem y) {
    GF_TRY(bn_check(ctx, n, c, hw, 1.0f, "batchnorm apply"));
    size_t total = (size_t)n * c * hw;
    cl_kernel k;
    GF_TRY(gf_kernel(ctx, "bn", NULL, "bn_apply", &k));
    GF_TRY(gf_args(ctx, k, "bn_apply", "mmmmmmmuuu", x, gamma, beta, hi, lo, invstd, y, (unsigned)total, (unsigned)c,
                   (unsigned)hw));
    return gf_launch1(ctx, k, "bn_apply", total);
}

gf_status gf_bn_backward_dx(gf_ctx *ctx, int n, int c, int hw, cl_mem x, cl_mem dy, cl_mem gamma, cl_mem hi,
                            cl_mem lo, cl_mem invstd, cl_mem sums, double M, cl_mem dx) {
    GF_TRY(bn_check(ctx, n, c, hw, 1.0f, "batchnorm backward dx"));
    size_t total = (size_t)n * c * hw;
    cl_kernel k;
    GF_TRY(gf_kernel(ctx, "bn", NULL, "bn_backward_dx", &k));
    GF_TRY(gf_args(ctx, k, "bn_backward_dx", "mmmmmmmmuuuf", x, dy, gamma, hi, lo, invstd, sums, dx, (unsigned)total,
                   (unsigned)c, (unsigned)hw, 1.0 / M));
    return gf_launch1(ctx, k, "bn_backward_dx", total);
}
