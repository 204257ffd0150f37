/* Pooling on the device; kernels in cl/pool.cl. */
#include "ops_pool.h"
#include <limits.h>
#include <math.h>
#include <stdlib.h>

size_t gf_pool2d_in_count(const gf_pool2d *p) {
    return (size_t)p->N * (size_t)p->C * (size_t)p->H * (size_t)p->W;
}

size_t gf_pool2d_out_count(const gf_pool2d *p) {
    return (size_t)p->N * (size_t)p->C * (size_t)p->OH * (size_t)p->OW;
}

static gf_status pool_validate(gf_ctx *ctx, const gf_pool2d *p, const char *what) {
    if (p->N <= 0 || p->C <= 0 || p->H <= 0 || p->W <= 0 || p->kh <= 0 || p->kw <= 0 ||
        p->sh <= 0 || p->sw <= 0 || p->pt < 0 || p->pb < 0 || p->pl < 0 || p->pr < 0)
        return gf_fail(ctx, GF_ERR_USAGE, "%s: bad geometry N=%d C=%d H=%d W=%d kernel %dx%d "
                       "stride %dx%d pad %d,%d,%d,%d", what, p->N, p->C, p->H, p->W, p->kh, p->kw,
                       p->sh, p->sw, p->pt, p->pb, p->pl, p->pr);
    if (p->pt >= p->kh || p->pb >= p->kh || p->pl >= p->kw || p->pr >= p->kw)
        return gf_fail(ctx, GF_ERR_USAGE, "%s: padding %d,%d,%d,%d must be smaller than the kernel "
                       "%dx%d (a window would hold only padding)", what, p->pt, p->pb, p->pl, p->pr,
                       p->kh, p->kw);
    if (p->OH != (p->H + p->pt + p->pb - p->kh) / p->sh + 1 ||
        p->OW != (p->W + p->pl + p->pr - p->kw) / p->sw + 1 || p->OH <= 0 || p->OW <= 0)
        return gf_fail(ctx, GF_ERR_USAGE, "%s: output %dx%d does not match input %dx%d, kernel "
                       "%dx%d, stride %dx%d, padding %d,%d,%d,%d", what, p->OH, p->OW, p->H, p->W,
                       p->kh, p->kw, p->sh, p->sw, p->pt, p->pb, p->pl, p->pr);
    size_t in = gf_pool2d_in_count(p), out = gf_pool2d_out_count(p);
    if (in > UINT_MAX || out > UINT_MAX || (size_t)p->H * (size_t)p->W > INT_MAX)
        return gf_fail(ctx, GF_ERR_USAGE, "%s: tensor of %zu elements exceeds the 32-bit index range",
                       what, in);
    return GF_OK;
}

gf_status gf_pool2d_init(gf_ctx *ctx, gf_pool2d *p, int N, int C, int H, int W,
                         int kh, int kw, int sh, int sw, int ph, int pw) {
    gf_pool2d q = {N, C, H, W, 0, 0, kh, kw, sh, sw, ph, ph, pw, pw, 1};
    if (sh > 0 && sw > 0) {
        q.OH = (H + 2 * ph - kh) / sh + 1;
        q.OW = (W + 2 * pw - kw) / sw + 1;
    }
    GF_TRY(pool_validate(ctx, &q, "pool geometry"));
    *p = q;
    return GF_OK;
}

/* One axis of TF padding; returns the output size. */
static int tf_axis(int in, int k, int s, int same, int *before, int *after) {
    if (!same) {
        *before = *after = 0;
        return in >= k ? (in - k) / s + 1 : 0;
    }
    int out = (in + s - 1) / s;
    int total = (out - 1) * s + k - in;
    if (total < 0) total = 0;
    *before = total / 2;
    *after = total - total / 2;
    return out;
}

gf_status gf_pool2d_init_tf(gf_ctx *ctx, gf_pool2d *p, int N, int C, int H, int W,
                            int kh, int kw, int sh, int sw, int same) {
    gf_pool2d q = {N, C, H, W, 0, 0, kh, kw, sh, sw, 0, 0, 0, 0, 0};
    if (sh > 0 && sw > 0 && kh > 0 && kw > 0) {
        q.OH = tf_axis(H, kh, sh, same, &q.pt, &q.pb);
        q.OW = tf_axis(W, kw, sw, same, &q.pl, &q.pr);
    }
    GF_TRY(pool_validate(ctx, &q, same ? "pool geometry (TF SAME)" : "pool geometry (TF VALID)"));
    *p = q;
    return GF_OK;
}

#define NCOF(p) ((size_t)(p)->N * (size_t)(p)->C)

/* 3-D range (w, h, planes) with a 2-D tile of at most 64 work-items (within
 * the device's and the kernel's limits) covering w first: PoCL otherwise picks
 * tiny work-groups for 3-D ranges. */
static gf_status launch3(gf_ctx *ctx, cl_kernel k, const char *name, int w, int h, size_t planes) {
    size_t lim = 1;
    GF_TRY(gf_wg_limit(ctx, k, 64, &lim));
    size_t lx = 1, ly = 1;
    while (lx * 2 <= lim && lx < (size_t)w) lx *= 2;
    while (lx * ly * 2 <= lim && ly < (size_t)h) ly *= 2;
    size_t g[3] = {(size_t)w, (size_t)h, planes}, l[3] = {lx, ly, 1};
    return gf_launch(ctx, k, name, 3, g, l);
}

gf_status gf_maxpool_forward(gf_ctx *ctx, const gf_pool2d *p, cl_mem x, cl_mem y, cl_mem argmax) {
    GF_TRY(pool_validate(ctx, p, "max pool forward"));
    if (!y && !argmax) return gf_fail(ctx, GF_ERR_USAGE, "max pool forward: neither output nor argmax given");
    cl_kernel k;
    /* 3x3 windows on CPU-style paths (cl/pool.cl maxpool3_rows): a row per work item, the interior columns in
     * one straight pass; 1.3-1.6x maxpool_forward on PoCL (emotion net's 29x29 and 15x15, ResNet's 112x112).
     * A row's work (about 12 steps per output) must fit the item budget. */
    if (ctx->conv_plane && p->kh == 3 && p->kw == 3 && (size_t)p->OW * 12 <= ctx->item_budget) {
        GF_TRY(gf_kernel(ctx, "pool", NULL, "maxpool3_rows", &k));
        GF_TRY(gf_args(ctx, k, "maxpool3_rows", "mmmiiuiiiiiiii", x, y ? y : x, argmax ? argmax : x, y != NULL,
                       argmax != NULL, (unsigned)NCOF(p), p->H, p->W, p->OH, p->OW, p->sh, p->sw, p->pt, p->pl));
        size_t lim = 1;
        GF_TRY(gf_wg_limit(ctx, k, 64, &lim));
        size_t lx = 1;
        while (lx * 2 <= lim && lx < (size_t)p->OH) lx *= 2;
        size_t g[2] = {((size_t)p->OH + lx - 1) / lx * lx, NCOF(p)}, l[2] = {lx, 1};
        return gf_launch(ctx, k, "maxpool3_rows", 2, g, l);
    }
    GF_TRY(gf_kernel(ctx, "pool", NULL, "maxpool_forward", &k));
    /* A NULL buffer is never written (has_* = 0); pass x so that the argument is valid. */
    GF_TRY(gf_args(ctx, k, "maxpool_forward", "mmmiiuiiiiiiiiii", x, y ? y : x, argmax ? argmax : x,
                   y != NULL, argmax != NULL, (unsigned)NCOF(p), p->H, p->W, p->OH, p->OW, p->kh, p->kw,
                   p->sh, p->sw, p->pt, p->pl));
    return launch3(ctx, k, "maxpool_forward", p->OW, p->OH, NCOF(p));
}

gf_status gf_maxpool_tangent(gf_ctx *ctx, const gf_pool2d *p, cl_mem argmax, cl_mem t_in, cl_mem t_out) {
    GF_TRY(pool_validate(ctx, p, "max pool tangent"));
    size_t n = gf_pool2d_out_count(p);
    cl_kernel k;
    if (ctx->conv_plane && (size_t)p->OH * p->OW <= ctx->item_budget) {   /* CPU-style: an item per plane */
        GF_TRY(gf_kernel(ctx, "pool", NULL, "maxpool_tangent_planes", &k));
        GF_TRY(gf_args(ctx, k, "maxpool_tangent_planes", "mmmuii", t_in, argmax, t_out, (unsigned)NCOF(p),
                       p->H * p->W, p->OH * p->OW));
        return gf_launch1(ctx, k, "maxpool_tangent_planes", NCOF(p));
    }
    GF_TRY(gf_kernel(ctx, "pool", NULL, "maxpool_tangent", &k));
    GF_TRY(gf_args(ctx, k, "maxpool_tangent", "mmmuii", t_in, argmax, t_out, (unsigned)n,
                   p->H * p->W, p->OH * p->OW));
    return gf_launch1(ctx, k, "maxpool_tangent", n);
}

gf_status gf_maxpool_backward(gf_ctx *ctx, const gf_pool2d *p, cl_mem argmax, cl_mem g_out, cl_mem g_in) {
    GF_TRY(pool_validate(ctx, p, "max pool backward"));
    cl_kernel k;
    /* CPU-style paths (cl/pool.cl maxpool_backward_planes): an item per plane scatters to the argmaxes, when a
     * plane's work fits the item budget */
    size_t HW = (size_t)p->H * p->W, OHW = (size_t)p->OH * p->OW;
    if (ctx->conv_plane && HW + 2 * OHW <= ctx->item_budget) {
        GF_TRY(gf_kernel(ctx, "pool", NULL, "maxpool_backward_planes", &k));
        GF_TRY(gf_args(ctx, k, "maxpool_backward_planes", "mmmuii", g_out, argmax, g_in, (unsigned)NCOF(p), (int)HW,
                       (int)OHW));
        return gf_launch1(ctx, k, "maxpool_backward_planes", NCOF(p));
    }
    GF_TRY(gf_kernel(ctx, "pool", NULL, "maxpool_backward", &k));
    GF_TRY(gf_args(ctx, k, "maxpool_backward", "mmmuiiiiiiiiii", g_out, argmax, g_in, (unsigned)NCOF(p),
                   p->H, p->W, p->OH, p->OW, p->kh, p->kw, p->sh, p->sw, p->pt, p->pl));
    return launch3(ctx, k, "maxpool_backward", p->W, p->H, NCOF(p));
}

gf_status gf_avgpool_forward(gf_ctx *ctx, const gf_pool2d *p, cl_mem x, cl_mem y) {
    GF_TRY(pool_validate(ctx, p, "average pool forward"));
    cl_kernel k;
    GF_TRY(gf_kernel(ctx, "pool", NULL, "avgpool_forward", &k));
    GF_TRY(gf_args(ctx, k, "avgpool_forward", "mmuiiiiiiiiiiiii", x, y, (unsigned)NCOF(p), p->H, p->W,
                   p->OH, p->OW, p->kh, p->kw, p->sh, p->sw, p->pt, p->pl, p->count_include_pad != 0,
                   p->H + p->pb, p->W + p->pr));
    return launch3(ctx, k, "avgpool_forward", p->OW, p->OH, NCOF(p));
}

gf_status gf_avgpool_tangent(gf_ctx *ctx, const gf_pool2d *p, cl_mem t_in, cl_mem t_out) {
    return gf_avgpool_forward(ctx, p, t_in, t_out);
}

gf_status gf_avgpool_backward(gf_ctx *ctx, const gf_pool2d *p, cl_mem g_out, cl_mem g_in) {
    GF_TRY(pool_validate(ctx, p, "average pool backward"));
    cl_kernel k;
    GF_TRY(gf_kernel(ctx, "pool", NULL, "avgpool_backward", &k));
    GF_TRY(gf_args(ctx, k, "avgpool_backward", "mmuiiiiiiiiiiiii", g_out, g_in, (unsigned)NCOF(p), p->H, p->W,
                   p->OH, p->OW, p->kh, p->kw, p->sh, p->sw, p->pt, p->pl, p->count_include_pad != 0,
                   p->H + p->pb, p->W + p->pr));
    return launch3(ctx, k, "avgpool_backward", p->W, p->H, NCOF(p));
}

gf_status gf_gap_forward(gf_ctx *ctx, size_t NC, size_t HW, cl_mem x, cl_mem y) {
    if (NC == 0 || HW == 0 || NC * HW > UINT_MAX)
        return gf_fail(ctx, GF_ERR_USAGE, "global average pool: bad size %zu planes x %zu", NC, HW);
    cl_kernel k;
    if (HW <= 64) {
        GF_TRY(gf_kernel(ctx, "pool", NULL, "gap_forward_small", &k));
        GF_TRY(gf_args(ctx, k, "gap_forward_small", "mmuu", x, y, (unsigned)NC, (unsigned)HW));
        return gf_launch1(ctx, k, "gap_forward_small", NC);
    }
    GF_TRY(gf_kernel(ctx, "pool", NULL, "gap_forward", &k));
    size_t L;
    /* Enough lanes to cover a plane once, at most 256. */
    size_t cap = 1;
    while (cap < HW && cap < 256) cap *= 2;
    GF_TRY(gf_pow2_local(ctx, k, cap, 0, &L));
    GF_TRY(gf_args(ctx, k, "gap_forward", "mmuuL", x, y, (unsigned)NC, (unsigned)HW, L));
    size_t global = NC * L;
    return gf_launch(ctx, k, "gap_forward", 1, &global, &L);
}

gf_status gf_gap_tangent(gf_ctx *ctx, size_t NC, size_t HW, cl_mem t_in, cl_mem t_out) {
    return gf_gap_forward(ctx, NC, HW, t_in, t_out);
}

gf_status gf_gap_backward(gf_ctx *ctx, size_t NC, size_t HW, cl_mem g_out, cl_mem g_in) {
    if (NC == 0 || HW == 0 || NC * HW > UINT_MAX)
        return gf_fail(ctx, GF_ERR_USAGE, "global average pool backward: bad size %zu planes x %zu", NC, HW);
    cl_kernel k;
    GF_TRY(gf_kernel(ctx, "pool", NULL, "gap_backward", &k));
    GF_TRY(gf_args(ctx, k, "gap_backward", "mmuu", g_out, g_in, (unsigned)(NC * HW), (unsigned)HW));
    return gf_launch1(ctx, k, "gap_backward", NC * HW);
}
