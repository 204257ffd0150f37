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
 * when a lane would still walk too far, *S > 1 and the channel's values are cut
 * into S segments of *seg values, one work-group each (cl/bn.cl bn_seg_sums),
 * whose sums a second kernel adds in order; with S = 1 the one-group kernels run. */
static gf_status bn_plan(gf_ctx *ctx, cl_kernel k, int n, int hw, size_t *L, size_t *S, size_t *seg) {
    size_t M = (size_t)n * (size_t)hw, cap = bn_blocked(ctx) ? 16 : 256;
    size_t per = ctx->item_budget >= 9 ? (ctx->item_budget - 3) / 6 : 1;   /* values one lane may walk */
    while (cap < 4096 && (M + cap - 1) / cap > per) cap *= 2;
    GF_TRY(gf_pow2_local(ctx, k, cap, M, L));
    *S = (M + *L * per - 1) / (*L * per);
    *seg = (M + *S - 1) / *S;
    return GF_OK;
}

/* The two-level path's buffers (scratch slots GF_BN_SLOT_*): part [2 * c * S], and per channel hi (the
 * first value, or the mean), lo (the mean's offset from hi, or 0), invstd, and sums [2c]. The finishing
 * kernels walk a channel's S pairs in one item: at the default budget S stays below 2^31 / (32 * 2730),
 * about 25,000, for any tensor bn_check accepts. */
typedef struct { cl_mem part, hi, lo, invstd, sums; } bn_seg_bufs;
static gf_status bn_seg_scratch(gf_ctx *ctx, int c, size_t S, bn_seg_bufs *b) {
    GF_TRY(gf_scratch(ctx, GF_BN_SLOT_PART, 2 * (size_t)c * S * sizeof(float), &b->part));
    GF_TRY(gf_scratch(ctx, GF_BN_SLOT_HI, (size_t)c * sizeof(float), &b->hi));
    GF_TRY(gf_scratch(ctx, GF_BN_SLOT_LO, (size_t)c * sizeof(float), &b->lo));
    GF_TRY(gf_scratch(ctx, GF_BN_SLOT_INVSTD, (size_t)c * sizeof(float), &b->invstd));
    return gf_scratch(ctx, GF_BN_SLOT_SUMS, 2 * (size_t)c * sizeof(float), &b->sums);
}

/* One segment-sums pass (cl/bn.cl bn_seg_sums, modes there). */
static gf_status bn_seg_sums(gf_ctx *ctx, int n, int c, int hw, cl_mem x, cl_mem dy, cl_mem u, cl_mem v, cl_mem part,
                             int mode, int train, float eps, int own) {
    cl_kernel k;
    size_t L, S, seg;
    GF_TRY(gf_kernel(ctx, "bn", NULL, "bn_seg_sums", &k));
    GF_TRY(bn_plan(ctx, k, n, hw, &L, &S, &seg));
    /* absent inputs of a mode get x, never read */
    GF_TRY(gf_args(ctx, k, "bn_seg_sums", "mmmmmuuuuuiifiiLL", x, dy ? dy : x, u ? u : x, v ? v : x, part,
                   (unsigned)n, (unsigned)c, (unsigned)hw, (unsigned)S, (unsigned)seg, mode, train, (double)eps, own,
                   bn_blocked(ctx), L, L));
    size_t global = (size_t)c * S * L;
    return gf_launch(ctx, k, "bn_seg_sums", 1, &global, &L);
}

/* The segment count the two-level kernels use (bn_seg_sums' plan), 1 when one group per channel does. */
static gf_status bn_segments(gf_ctx *ctx, cl_kernel one_group, int n, int hw, size_t *L, size_t *S) {
    size_t seg;
    GF_TRY(bn_plan(ctx, one_group, n, hw, L, S, &seg));
    if (*S == 1) return GF_OK;
    cl_kernel k;
    GF_TRY(gf_kernel(ctx, "bn", NULL, "bn_seg_sums", &k));
    return bn_plan(ctx, k, n, hw, L, S, &seg);
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
    size_t L, S;
    GF_TRY(gf_kernel(ctx, "bn", NULL, "bn_train_forward", &k));
    GF_TRY(bn_segments(ctx, k, n, hw, &L, &S));
    double M = (double)n * hw;
    int upd = running_mean != NULL, save = save_mean != NULL;
    if (S > 1) {   /* two levels: the mean's offset, the variance, then y as the one-group kernel computes it */
        bn_seg_bufs b;
        GF_TRY(bn_seg_scratch(ctx, c, S, &b));
        GF_TRY(bn_seg_sums(ctx, n, c, hw, x, NULL, NULL, NULL, b.part, 0, 1, eps, 0));
        GF_TRY(gf_kernel(ctx, "bn", NULL, "bn_seg_mean", &k));
        GF_TRY(gf_args(ctx, k, "bn_seg_mean", "mmmmuuuf", x, b.part, b.hi, b.lo, (unsigned)c, (unsigned)hw,
                       (unsigned)S, 1.0 / M));
        GF_TRY(gf_launch1(ctx, k, "bn_seg_mean", (size_t)c));
        GF_TRY(bn_seg_sums(ctx, n, c, hw, x, NULL, b.lo, NULL, b.part, 1, 1, eps, 0));
        GF_TRY(gf_kernel(ctx, "bn", NULL, "bn_seg_var", &k));
        GF_TRY(gf_args(ctx, k, "bn_seg_var", "mmmmmmmmuuffffii", b.part, b.hi, b.lo, b.invstd,
                       upd ? running_mean : x, upd ? running_var : x, save ? save_mean : x, save ? save_invstd : x,
                       (unsigned)c, (unsigned)S, 1.0 / M, (double)eps, (double)momentum, M / (M - 1.0), upd, save));
        GF_TRY(gf_launch1(ctx, k, "bn_seg_var", (size_t)c));
        return gf_bn_apply(ctx, n, c, hw, x, gamma, beta, b.hi, b.lo, b.invstd, y);
    }
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

/* dx element-wise from the channel sums (cl/bn.cl bn_backward_dx; train = 0: gamma * invstd * dy). */
static gf_status bn_dx(gf_ctx *ctx, int n, int c, int hw, cl_mem x, cl_mem dy, cl_mem gamma, cl_mem hi, cl_mem lo,
                       cl_mem invstd, cl_mem sums, double M, int train, cl_mem dx) {
    size_t total = (size_t)n * c * hw;
    cl_kernel k;
    GF_TRY(gf_kernel(ctx, "bn", NULL, "bn_backward_dx", &k));
    GF_TRY(gf_args(ctx, k, "bn_backward_dx", "mmmmmmmmuuufi", x, dy, gamma, hi, lo, invstd, sums, dx,
                   (unsigned)total, (unsigned)c, (unsigned)hw, 1.0 / M, train));
    return gf_launch1(ctx, k, "bn_backward_dx", total);
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
    size_t L, S;
    GF_TRY(gf_kernel(ctx, "bn", NULL, "bn_backward", &k));
    GF_TRY(bn_segments(ctx, k, n, hw, &L, &S));
    if (S > 1) {   /* two levels: the channel sums, then dx element-wise as the one-group kernel computes it */
        bn_seg_bufs b;
        GF_TRY(bn_seg_scratch(ctx, c, S, &b));
        GF_TRY(bn_seg_sums(ctx, n, c, hw, x, dy, mean, stat, b.part, 2, train, eps, 0));
        GF_TRY(gf_kernel(ctx, "bn", NULL, "bn_seg_grad", &k));
        GF_TRY(gf_args(ctx, k, "bn_seg_grad", "mmmmmmmuuifii", b.part, stat, has_dp ? dgamma : dy,
                       has_dp ? dbeta : dy, b.sums, b.lo, b.invstd, (unsigned)c, (unsigned)S, train, (double)eps,
                       has_dp, accumulate != 0));
        GF_TRY(gf_launch1(ctx, k, "bn_seg_grad", (size_t)c));
        return has_dx ? bn_dx(ctx, n, c, hw, x, dy, gamma, mean, b.lo, b.invstd, b.sums, (double)n * hw, train, dx)
                      : GF_OK;
    }
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
    size_t L, S;
    GF_TRY(gf_kernel(ctx, "bn", NULL, "bn_sums", &k));
    GF_TRY(bn_segments(ctx, k, n, hw, &L, &S));
    if (S > 1) {
        bn_seg_bufs b;
        GF_TRY(bn_seg_scratch(ctx, c, S, &b));
        GF_TRY(bn_seg_sums(ctx, n, c, hw, x, NULL, shift, NULL, b.part, 3, 1, 1.0f, shift == NULL));
        GF_TRY(gf_kernel(ctx, "bn", NULL, "bn_seg_pair", &k));
        GF_TRY(gf_args(ctx, k, "bn_seg_pair", "mmmuuui", x, b.part, out, (unsigned)c, (unsigned)hw, (unsigned)S,
                       shift == NULL));
        return gf_launch1(ctx, k, "bn_seg_pair", (size_t)c);
    }
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
    return bn_dx(ctx, n, c, hw, x, dy, gamma, hi, lo, invstd, sums, M, 1, dx);
}
