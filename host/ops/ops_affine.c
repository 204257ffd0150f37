/* Affine family: conv2d and linear, forward / tangent / backward side by side,
 * plus BatchNorm folding. See ops_affine.h for layouts and scratch slots. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "ops_affine.h"
#include "ops_util.h"

#define FAMILY "conv"
#define DEFAULT_WORKSPACE ((size_t)256 << 20)

/* Geometry arguments of the conv.cl kernels, in their order (13 ints). */
#define G_FMT "iiiiiiiiiiiii"
#define G_ARGS(d) (d)->c_in, (d)->h_in, (d)->w_in, (d)->h_out, (d)->w_out, (d)->kh, (d)->kw, \
    (d)->stride_h, (d)->stride_w, (d)->pad_top, (d)->pad_left, (d)->dil_h, (d)->dil_w

static gf_status kern_w(gf_ctx *ctx, int w, const char *name, cl_kernel *k) {
    char defs[32];
    snprintf(defs, sizeof defs, "-DRED_WG=%d", w);
    /* the default 64 needs no define, so the program is the one gf_ctx_warmup built */
    return gf_kernel(ctx, FAMILY, w == 64 ? NULL : defs, name, k);
}

/* Work-group size of the reduction kernels (RED_WG, compiled in): 64, or the
 * largest power of two that the device and both reduction kernels accept
 * (CL_KERNEL_WORK_GROUP_SIZE; Mesa's llvmpipe reports 32 for some kernels).
 * Found once per context. */
static gf_status red_wg(gf_ctx *ctx, int *out) {
    if (!ctx->conv_red_wg) {
        int w = 64;
        while (w > 1 && (size_t)w > ctx->info.max_work_group) w >>= 1;
        static const char *const red[2] = {"reduce_nc", "dw_backward_weight"};
        for (int i = 0; i < 2; i++) {
            cl_kernel k;
            size_t lim = 1;
            GF_TRY(kern_w(ctx, w, red[i], &k));
            GF_TRY(gf_wg_limit(ctx, k, (size_t)w, &lim));
            if (lim < (size_t)w) {
                while ((size_t)w > lim && w > 1) w >>= 1;
                i = -1;   /* rebuilt at the smaller size: check both again */
            }
        }
        ctx->conv_red_wg = w;
    }
    *out = ctx->conv_red_wg;
    return GF_OK;
}

static gf_status kern(gf_ctx *ctx, const char *name, cl_kernel *k) {
    int w;
    GF_TRY(red_wg(ctx, &w));
    return kern_w(ctx, w, name, k);
}

/* n work items of a kernel without local memory: local size from the kernel's limits. */
static gf_status launch1(gf_ctx *ctx, cl_kernel k, const char *name, size_t n) {
    return gf_launch1(ctx, k, name, n);
}

/* One work-group of red_wg items per output (reduction kernels). */
static gf_status launch_groups(gf_ctx *ctx, cl_kernel k, const char *name, size_t groups) {
    int w;
    GF_TRY(red_wg(ctx, &w));
    size_t local = (size_t)w, global = groups * local;
    return gf_launch(ctx, k, name, 1, &global, &local);
}

/* The buffer exists and holds at least `floats` floats (clGetMemObjectInfo is
 * a host query: no synchronisation). */
static gf_status need_buf(gf_ctx *ctx, const char *op, const char *name, cl_mem m, size_t floats) {
    if (!m) return gf_fail(ctx, GF_ERR_USAGE, "%s: %s is missing", op, name);
    size_t sz = 0;
    cl_int e = clGetMemObjectInfo(m, CL_MEM_SIZE, sizeof sz, &sz, NULL);
    if (e != CL_SUCCESS) {
        char what[160];
        snprintf(what, sizeof what, "%s: clGetMemObjectInfo(%s)", op, name);
        return gf_cl_fail(ctx, e, what);
    }
    if (sz < floats * sizeof(float))
        return gf_fail(ctx, GF_ERR_USAGE, "%s: %s holds %zu bytes, needs %zu", op, name, sz, floats * sizeof(float));
    return GF_OK;
}

/* ------------------------------------------------------------------ */
/* Descriptor                                                          */

void gf_conv_same_pads(int in, int k, int stride, int dil, int *pad_before, int *pad_after) {
    if (stride < 1) stride = 1;
    if (dil < 1) dil = 1;
    int out = (in + stride - 1) / stride;
    int eff = (k - 1) * dil + 1;
    int total = (out - 1) * stride + eff - in;
    if (total < 0) total = 0;
    *pad_before = total / 2;
    *pad_after = total - total / 2;
}

gf_status gf_conv_desc_check(gf_ctx *ctx, gf_conv_desc *d) {
    if (d->n < 1 || d->c_in < 1 || d->h_in < 1 || d->w_in < 1 || d->c_out < 1 || d->kh < 1 || d->kw < 1)
        return gf_fail(ctx, GF_ERR_USAGE, "conv: sizes must be positive (n %d, c_in %d, %dx%d, c_out %d, kernel %dx%d)",
                       d->n, d->c_in, d->h_in, d->w_in, d->c_out, d->kh, d->kw);
    if (d->stride_h < 1 || d->stride_w < 1 || d->dil_h < 1 || d->dil_w < 1)
        return gf_fail(ctx, GF_ERR_USAGE, "conv: stride (%d, %d) and dilation (%d, %d) must be >= 1",
                       d->stride_h, d->stride_w, d->dil_h, d->dil_w);
    if (d->pad_top < 0 || d->pad_bottom < 0 || d->pad_left < 0 || d->pad_right < 0)
        return gf_fail(ctx, GF_ERR_USAGE, "conv: negative padding (%d, %d, %d, %d)",
                       d->pad_top, d->pad_bottom, d->pad_left, d->pad_right);
    if (d->groups < 1 || d->c_in % d->groups || d->c_out % d->groups)
        return gf_fail(ctx, GF_ERR_USAGE, "conv: groups %d must divide c_in %d and c_out %d",
                       d->groups, d->c_in, d->c_out);
    if (d->variant < GF_CONV_VARIANT_AUTO || d->variant > GF_CONV_VARIANT_PLANE)
        return gf_fail(ctx, GF_ERR_USAGE, "conv: unknown kernel variant %d", d->variant);
    if (d->algo < GF_CONV_ALGO_AUTO || d->algo > GF_CONV_ALGO_WINOGRAD4)
        return gf_fail(ctx, GF_ERR_USAGE, "conv: unknown algorithm %d", d->algo);
    /* keeps every index expression of the kernels (oh*stride - pad + i*dil) inside int */
    const int big = 1 << 24;
    if (d->h_in > big || d->w_in > big || d->kh > big || d->kw > big || d->stride_h > big || d->stride_w > big ||
        d->dil_h > big || d->dil_w > big || d->pad_top > big || d->pad_bottom > big || d->pad_left > big ||
        d->pad_right > big)
        return gf_fail(ctx, GF_ERR_USAGE, "conv: a size, stride, dilation or padding exceeds %d", big);
    long long eh = (long long)(d->kh - 1) * d->dil_h + 1, ew = (long long)(d->kw - 1) * d->dil_w + 1;
    long long ph = (long long)d->h_in + d->pad_top + d->pad_bottom, pw = (long long)d->w_in + d->pad_left + d->pad_right;
    if (eh > ph || ew > pw)
        return gf_fail(ctx, GF_ERR_USAGE, "conv: dilated kernel %lldx%lld larger than the padded input %lldx%lld",
                       eh, ew, ph, pw);
    long long oh = (ph - eh) / d->stride_h + 1, ow = (pw - ew) / d->stride_w + 1;
    /* Kernels index with int: every tensor must stay below INT_MAX elements. */
    long long in_sz = (long long)d->n * d->c_in * d->h_in * d->w_in;
    long long out_sz = (long long)d->n * d->c_out * oh * ow;
    long long w_sz = (long long)d->c_out * (d->c_in / d->groups) * d->kh * d->kw;
    long long col1 = (long long)d->c_in * d->kh * d->kw * oh * ow;
    if (in_sz > INT_MAX || out_sz > INT_MAX || w_sz > INT_MAX || col1 > INT_MAX)
        return gf_fail(ctx, GF_ERR_USAGE, "conv: tensor too large for 32-bit indexing (input %lld, output %lld, weight %lld elements)",
                       in_sz, out_sz, w_sz);
    d->h_out = (int)oh;
    d->w_out = (int)ow;
    return GF_OK;
}

gf_status gf_conv_desc_init(gf_ctx *ctx, gf_conv_desc *d, int n, int c_in, int h_in, int w_in,
                            int c_out, int kh, int kw, int stride_h, int stride_w,
                            int pad_top, int pad_bottom, int pad_left, int pad_right,
                            int dil_h, int dil_w, int groups) {
    memset(d, 0, sizeof *d);
    d->n = n; d->c_in = c_in; d->h_in = h_in; d->w_in = w_in; d->c_out = c_out;
    d->kh = kh; d->kw = kw; d->stride_h = stride_h; d->stride_w = stride_w;
    d->pad_top = pad_top; d->pad_bottom = pad_bottom; d->pad_left = pad_left; d->pad_right = pad_right;
    d->dil_h = dil_h; d->dil_w = dil_w; d->groups = groups;
    return gf_conv_desc_check(ctx, d);
}

gf_status gf_conv_desc_simple(gf_ctx *ctx, gf_conv_desc *d, int n, int c_in, int h, int w,
                              int c_out, int k, int stride, int pad, int dil, int groups) {
    return gf_conv_desc_init(ctx, d, n, c_in, h, w, c_out, k, k, stride, stride, pad, pad, pad, pad, dil, dil, groups);
}

int gf_conv_is_depthwise(const gf_conv_desc *d) { return d->groups > 1 && d->groups == d->c_in; }

/* ------------------------------------------------------------------ */
/* Conv building blocks                                                */

typedef struct conv_sizes {
    size_t P;       /* output pixels per image */
    size_t Kc;      /* rows of the im2col matrix: c_in * kh * kw */
    size_t Kg;      /* per group: (c_in / groups) * kh * kw */
    size_t cog;     /* output channels per group */
    size_t x_n, y_n, w_n;  /* floats in x, y, W */
} conv_sizes;

static conv_sizes sizes_of(const gf_conv_desc *d) {
    conv_sizes s;
    s.P = (size_t)d->h_out * d->w_out;
    s.Kc = (size_t)d->c_in * d->kh * d->kw;
    s.Kg = s.Kc / (size_t)d->groups;
    s.cog = (size_t)d->c_out / (size_t)d->groups;
    s.x_n = (size_t)d->n * d->c_in * d->h_in * d->w_in;
    s.y_n = (size_t)d->n * d->c_out * s.P;
    s.w_n = (size_t)d->c_out * s.Kg;
    return s;
}

/* Images per chunk so that [Kc, nb*P] and [c_out, nb*P] fit the workspace limit;
 * chunks are balanced so the last one is not tiny. */
static gf_status conv_chunk(gf_ctx *ctx, const gf_conv_desc *d, const char *op, int *nb_out) {
    conv_sizes s = sizes_of(d);
    size_t rows = s.Kc > (size_t)d->c_out ? s.Kc : (size_t)d->c_out;
    size_t per_img = rows * s.P * sizeof(float);
    size_t limit = d->max_workspace ? d->max_workspace : DEFAULT_WORKSPACE;
    size_t cap = (size_t)ctx->info.max_alloc;
    if (cap == 0 || cap > (size_t)INT_MAX * sizeof(float)) cap = (size_t)INT_MAX * sizeof(float);
    if (limit > cap) limit = cap;
    size_t nb;
    if (per_img > limit) {
        if (per_img > cap)
            return gf_fail(ctx, GF_ERR_MEMORY, "%s: one image needs %zu bytes of im2col workspace, more than the device's "
                           "max allocation %zu", op, per_img, cap);
        nb = 1;
    } else {
        nb = limit / per_img;
    }
    if (nb > (size_t)d->n) nb = (size_t)d->n;
    size_t chunks = ((size_t)d->n + nb - 1) / nb;
    *nb_out = (int)(((size_t)d->n + chunks - 1) / chunks);
    return GF_OK;
}

static gf_status conv_workspace(gf_ctx *ctx, const gf_conv_desc *d, int nb, cl_mem *col, cl_mem *tmp) {
    conv_sizes s = sizes_of(d);
    size_t cols = (size_t)nb * s.P;
    GF_TRY(gf_scratch(ctx, GF_AFFINE_SLOT_COL, s.Kc * cols * sizeof(float), col));
    GF_TRY(gf_scratch(ctx, GF_AFFINE_SLOT_OUT, (size_t)d->c_out * cols * sizeof(float), tmp));
    return GF_OK;
}

/* Per-plane loop kernels on CPU devices (no vector integer divide there),
 * per-element kernels elsewhere (coalesced on GPUs): the context's conv_kernels
 * path (GRADFEAT_CONV_KERNELS); desc.variant overrides. */
static int plane_kernels(const gf_ctx *ctx, const gf_conv_desc *d) {
    if (d->variant == GF_CONV_VARIANT_ELEMENT) return 0;
    if (d->variant == GF_CONV_VARIANT_PLANE) return 1;
    return ctx->conv_plane;
}

/* Rows per work item of a tiled plane kernel (cl/conv.cl "Bounded work per work
 * item"): as many of the `total` rows as keep one item's loop iterations
 * (`fixed` + rows * `per_row`) within the context's item budget; at least 1. */
static int item_rows(const gf_ctx *ctx, size_t per_row, size_t fixed, int total) {
    size_t B = ctx->item_budget, r = 1;
    if (B > fixed) r = (B - fixed) / (per_row ? per_row : 1);
    if (r < 1) r = 1;
    if (r > (size_t)total) r = (size_t)total;
    return (int)r;
}

static size_t tiles_of(int total, int rows) { return ((size_t)total + (size_t)rows - 1) / (size_t)rows; }

static gf_status run_im2col(gf_ctx *ctx, const gf_conv_desc *d, cl_mem x, int n0, int nb, cl_mem col) {
    conv_sizes s = sizes_of(d);
    int x_off = (int)((size_t)n0 * d->c_in * d->h_in * d->w_in);
    cl_kernel k;
    if (plane_kernels(ctx, d)) {
        size_t taps = (size_t)d->kh * d->kw;
        int rows = item_rows(ctx, taps * ((size_t)d->w_out + 1), taps + d->kh, d->h_out);
        GF_TRY(kern(ctx, "im2col_plane", &k));
        GF_TRY(gf_args(ctx, k, "im2col_plane", "mimi" G_FMT "i", x, x_off, col, nb, G_ARGS(d), rows));
        return launch1(ctx, k, "im2col_plane", (size_t)nb * d->c_in * tiles_of(d->h_out, rows));
    }
    GF_TRY(kern(ctx, "im2col", &k));
    GF_TRY(gf_args(ctx, k, "im2col", "mimi" G_FMT, x, x_off, col, nb, G_ARGS(d)));
    size_t lim;
    GF_TRY(gf_wg_limit(ctx, k, 64, &lim));
    size_t global[2] = {(size_t)nb * s.P, s.Kc}, local[2] = {lim, 1};
    return gf_launch(ctx, k, "im2col", 2, global, local);
}

static gf_status run_col2im(gf_ctx *ctx, const gf_conv_desc *d, cl_mem col, cl_mem gx, int n0, int nb, int acc) {
    cl_kernel k;
    size_t per = (size_t)d->c_in * d->h_in * d->w_in;
    if (plane_kernels(ctx, d)) {
        size_t taps = (size_t)d->kh * d->kw, row = taps * ((size_t)d->w_out + 1);
        int rows = item_rows(ctx, (size_t)d->w_in + row, taps + d->kh + row, d->h_in);
        GF_TRY(kern(ctx, "col2im_plane", &k));
        GF_TRY(gf_args(ctx, k, "col2im_plane", "mmiii" G_FMT "i", col, gx, (int)((size_t)n0 * per), acc, nb,
                       G_ARGS(d), rows));
        return launch1(ctx, k, "col2im_plane", (size_t)nb * d->c_in * tiles_of(d->h_in, rows));
    }
    GF_TRY(kern(ctx, "col2im", &k));
    GF_TRY(gf_args(ctx, k, "col2im", "mmiii" G_FMT, col, gx, (int)((size_t)n0 * per), acc, nb, G_ARGS(d)));
    return launch1(ctx, k, "col2im", (size_t)nb * per);
}

/* The forward's epilogue after the bias (gf_conv2d_forward_post): + r (NULL: none), then the activation act
 * (kernel code: 0 none, 1 ReLU, 2 ReLU6). A kernel that applies it sets done. */
typedef struct conv_post { cl_mem r; int act, done; } conv_post;

/* y[n0.., :, :] = tmp[c, nl*P + p] (+ b), then post's epilogue in the CPU-style kernel (post may be NULL). */
static gf_status run_to_ncp(gf_ctx *ctx, const gf_conv_desc *d, cl_mem tmp, cl_mem y, int n0, int nb, cl_mem b,
                            conv_post *post) {
    conv_sizes s = sizes_of(d);
    int rows = plane_kernels(ctx, d);
    const char *name = rows ? "cnp_to_ncp_rows" : "cnp_to_ncp";
    cl_kernel k;
    int len = item_rows(ctx, 1, 0, (int)s.P);
    GF_TRY(kern(ctx, name, &k));
    if (rows) {
        cl_mem r = post && post->r ? post->r : tmp;
        GF_TRY(gf_args(ctx, k, name, "mmimiiiiimii", tmp, y, (int)((size_t)n0 * d->c_out * s.P),
                       b ? b : tmp, b != NULL, nb, d->c_out, (int)s.P, len, r, post && post->r != NULL,
                       post ? post->act : 0));
        if (post) post->done = 1;
    } else
        GF_TRY(gf_args(ctx, k, name, "mmimiiii", tmp, y, (int)((size_t)n0 * d->c_out * s.P),
                       b ? b : tmp, b != NULL, nb, d->c_out, (int)s.P));
    return launch1(ctx, k, name, (size_t)nb * d->c_out * (rows ? tiles_of((int)s.P, len) : s.P));
}

static gf_status run_to_cnp(gf_ctx *ctx, const gf_conv_desc *d, cl_mem g, int n0, int nb, cl_mem tmp) {
    conv_sizes s = sizes_of(d);
    int rows = plane_kernels(ctx, d);
    const char *name = rows ? "ncp_to_cnp_rows" : "ncp_to_cnp";
    cl_kernel k;
    int len = item_rows(ctx, 1, 0, (int)s.P);
    GF_TRY(kern(ctx, name, &k));
    if (rows)
        GF_TRY(gf_args(ctx, k, name, "mimiiii", g, (int)((size_t)n0 * d->c_out * s.P), tmp, nb, d->c_out,
                       (int)s.P, len));
    else
        GF_TRY(gf_args(ctx, k, name, "mimiii", g, (int)((size_t)n0 * d->c_out * s.P), tmp, nb, d->c_out, (int)s.P));
    return launch1(ctx, k, name, (size_t)nb * d->c_out * (rows ? tiles_of((int)s.P, len) : s.P));
}

static gf_status run_fill_bias(gf_ctx *ctx, cl_mem y, cl_mem b, int N, int C, int P) {
    cl_kernel k;
    GF_TRY(kern(ctx, "fill_bias", &k));
    GF_TRY(gf_args(ctx, k, "fill_bias", "mmiiii", y, b ? b : y, b != NULL, N, C, P));
    return launch1(ctx, k, "fill_bias", (size_t)N * C * P);
}

/* Slices per output of a work-group reduction over `total` values (`per` loop
 * iterations each) so that one item's loop stays within the item budget; then
 * a partial-sums buffer (GF_AFFINE_SLOT_PART) when more than one. */
static gf_status red_slices(gf_ctx *ctx, size_t outputs, size_t total, size_t per, int *slices, cl_mem *part) {
    int w;
    GF_TRY(red_wg(ctx, &w));
    size_t per_item = (total + (size_t)w - 1) / (size_t)w * (per ? per : 1);
    size_t S = (per_item + ctx->item_budget - 1) / ctx->item_budget;
    if (S < 1) S = 1;
    if (S > total) S = total ? total : 1;
    *slices = (int)S;
    *part = NULL;
    if (S > 1) GF_TRY(gf_scratch(ctx, GF_AFFINE_SLOT_PART, outputs * S * sizeof(float), part));
    return GF_OK;
}

/* out[k] (+)= the slices' partial sums, in slice order. */
static gf_status run_sum_partials(gf_ctx *ctx, cl_mem part, cl_mem out, int acc, size_t count, int slices) {
    cl_kernel k;
    GF_TRY(kern(ctx, "sum_partials", &k));
    GF_TRY(gf_args(ctx, k, "sum_partials", "mmiii", part, out, acc, (int)count, slices));
    return launch1(ctx, k, "sum_partials", count);
}

/* gb[c] (+)= sum over n, p of g[n, c, p]; rows: the CPU-style kernel (reduce_nc_rows), else the work-group one. */
static gf_status run_reduce(gf_ctx *ctx, int rows, cl_mem g, cl_mem gb, int acc, int N, int C, int P) {
    cl_kernel k;
    int slices;
    cl_mem part;
    if (rows) {   /* an item per (channel, slice) walking contiguous runs; a slice's values within the item budget */
        size_t total = (size_t)N * P, S = (total + ctx->item_budget - 1) / ctx->item_budget;
        slices = (int)(S > 1 ? S : 1);
        part = NULL;
        if (slices > 1) GF_TRY(gf_scratch(ctx, GF_AFFINE_SLOT_PART, (size_t)C * slices * sizeof(float), &part));
        GF_TRY(kern(ctx, "reduce_nc_rows", &k));
        GF_TRY(gf_args(ctx, k, "reduce_nc_rows", "mmiiiiim", g, gb, acc, N, C, P, slices, part ? part : gb));
        GF_TRY(launch1(ctx, k, "reduce_nc_rows", (size_t)C * slices));
        if (slices > 1) GF_TRY(run_sum_partials(ctx, part, gb, acc, (size_t)C, slices));
        return GF_OK;
    }
    GF_TRY(red_slices(ctx, (size_t)C, (size_t)N * P, 1, &slices, &part));
    GF_TRY(kern(ctx, "reduce_nc", &k));
    GF_TRY(gf_args(ctx, k, "reduce_nc", "mmiiiiim", g, gb, acc, N, C, P, slices, part ? part : gb));
    GF_TRY(launch_groups(ctx, k, "reduce_nc", (size_t)C * slices));
    if (slices > 1) GF_TRY(run_sum_partials(ctx, part, gb, acc, (size_t)C, slices));
    return GF_OK;
}

/* out[c_out, cols] = beta*out + W * col, one GEMM per group. */
static gf_status gemm_fwd(gf_ctx *ctx, const gf_conv_desc *d, cl_mem W, cl_mem col, size_t cols, float beta, cl_mem out) {
    conv_sizes s = sizes_of(d);
    for (size_t g = 0; g < (size_t)d->groups; g++)
        GF_TRY(gf_gemm(ctx, 0, 0, s.cog, cols, s.Kg, 1.0f, W, g * s.cog * s.Kg, s.Kg,
                       col, g * s.Kg * cols, cols, beta, out, g * s.cog * cols, cols));
    return GF_OK;
}

/* gW[c_out, Kg] = beta*gW + gmat[c_out, cols] * col^T, per group. */
static gf_status gemm_wgrad(gf_ctx *ctx, const gf_conv_desc *d, cl_mem gmat, cl_mem col, size_t cols, float beta, cl_mem gW) {
    conv_sizes s = sizes_of(d);
    for (size_t g = 0; g < (size_t)d->groups; g++)
        GF_TRY(gf_gemm(ctx, 0, 1, s.cog, s.Kg, cols, 1.0f, gmat, g * s.cog * cols, cols,
                       col, g * s.Kg * cols, cols, beta, gW, g * s.cog * s.Kg, s.Kg));
    return GF_OK;
}

/* col[Kc, cols] = W^T * gmat, per group. */
static gf_status gemm_colgrad(gf_ctx *ctx, const gf_conv_desc *d, cl_mem W, cl_mem gmat, size_t cols, cl_mem col) {
    conv_sizes s = sizes_of(d);
    for (size_t g = 0; g < (size_t)d->groups; g++)
        GF_TRY(gf_gemm(ctx, 1, 0, s.Kg, cols, s.cog, 1.0f, W, g * s.cog * s.Kg, s.Kg,
                       gmat, g * s.cog * cols, cols, 0.0f, col, g * s.Kg * cols, cols));
    return GF_OK;
}

size_t gf_conv_keep_bytes(const gf_conv_desc *d) {
    conv_sizes s = sizes_of(d);
    return s.Kc * (size_t)d->n * s.P * sizeof(float);
}

/* desc.keep's buffer when this conv keeps its im2col (gf_conv_keep: direct, the whole batch one chunk of nb), or NULL */
static cl_mem keep_buf(const gf_ctx *ctx, const gf_conv_desc *d, int nb) {
    const gf_conv_keep *k = d->keep;
    if (!k || !k->buf || nb < d->n || gf_conv_is_depthwise(d) || gf_conv_uses_winograd(ctx, d)) return NULL;
    return k->bytes >= gf_conv_keep_bytes(d) ? k->buf : NULL;
}

int gf_conv_keeps(gf_ctx *ctx, const gf_conv_desc *d) {
    int nb = 0;
    return d->keep && conv_chunk(ctx, d, "conv", &nb) == GF_OK && keep_buf(ctx, d, nb) != NULL;
}

/* im2col(x) of images n0..n0+m-1 for a GEMM: *cx = the kept buffer (read when it holds x's, else made there) or col */
static gf_status im2col_x(gf_ctx *ctx, const gf_conv_desc *d, cl_mem x, int n0, int m, int nb, cl_mem col, cl_mem *cx) {
    cl_mem kb = keep_buf(ctx, d, nb);
    *cx = kb ? kb : col;
    if (!kb) return run_im2col(ctx, d, x, n0, m, col);
    if (d->keep->n == d->n) return GF_OK;
    GF_TRY(run_im2col(ctx, d, x, 0, d->n, kb));
    d->keep->n = d->n;
    return GF_OK;
}

/* 3x3 taps, stride 1, dilation 1: the depthwise row kernel dw_conv3_plane (CPU-style paths). */
static int dw3_plane(const gf_conv_desc *d) {
    return d->kh == 3 && d->kw == 3 && d->stride_h == 1 && d->stride_w == 1 && d->dil_h == 1 && d->dil_w == 1;
}

/* A "same" 3x3 stride-1 conv (pads 1 all round: the output has the input's size) on rows at least 8 wide and
 * 3 high: the flattened runs of dw_conv3_plane and dw3_backward_input_flat */
static int dw3_same_flat(const gf_conv_desc *d) {
    return dw3_plane(d) && d->pad_top == 1 && d->pad_bottom == 1 && d->pad_left == 1 && d->pad_right == 1 &&
           d->w_in >= 8 && d->h_in >= 3;
}

/* Depthwise direct: y = Wa*xa (has_a) + Wb*xb (has_b) + bias. */
static gf_status run_dw_conv(gf_ctx *ctx, const gf_conv_desc *d, cl_mem xa, cl_mem Wa, cl_mem xb, cl_mem Wb,
                             cl_mem bias, cl_mem y) {
    cl_kernel k;
    int plane = plane_kernels(ctx, d);
    const char *name = plane ? "dw_conv_plane" : "dw_conv";
    int has_a = xa && Wa, has_b = xb && Wb;
    size_t per_row = (size_t)d->w_out + 2 + 2 * (size_t)d->kh * (1 + (size_t)d->kw * ((size_t)d->w_out + 1));
    int rows = item_rows(ctx, per_row, 2, d->h_out);
    if (plane && dw3_plane(d)) {
        /* 3x3 stride 1 (cl/conv.cl dw_conv3_plane): the interior columns in one vectorised pass, 2-3x the
         * general plane kernel on PoCL (emotion net's 15x15 and 29x29 planes, batch 64) */
        GF_TRY(kern(ctx, "dw_conv3_plane", &k));
        GF_TRY(gf_args(ctx, k, "dw_conv3_plane", "mmimmimimiiiiiiiiii", has_a ? xa : y, has_a ? Wa : y, has_a, has_b ? xb : y,
                       has_b ? Wb : y, has_b, bias ? bias : y, bias != NULL, y, d->n, d->c_out / d->c_in, d->c_in,
                       d->h_in, d->w_in, d->h_out, d->w_out, d->pad_top, d->pad_left, rows));
        return launch1(ctx, k, "dw_conv3_plane", (size_t)d->n * d->c_out * tiles_of(d->h_out, rows));
    }
    GF_TRY(kern(ctx, name, &k));
    GF_TRY(gf_args(ctx, k, name, plane ? "mmimmimimii" G_FMT "i" : "mmimmimimii" G_FMT,
                   has_a ? xa : y, has_a ? Wa : y, has_a, has_b ? xb : y, has_b ? Wb : y, has_b,
                   bias ? bias : y, bias != NULL, y, d->n, d->c_out / d->c_in, G_ARGS(d), rows));
    return launch1(ctx, k, name, plane ? (size_t)d->n * d->c_out * tiles_of(d->h_out, rows) : sizes_of(d).y_n);
}

static gf_status check_desc(gf_ctx *ctx, const gf_conv_desc *d, const char *op) {
    if (!d) return gf_fail(ctx, GF_ERR_USAGE, "%s: no descriptor", op);
    gf_conv_desc c = *d;
    GF_TRY(gf_conv_desc_check(ctx, &c));
    if (c.h_out != d->h_out || c.w_out != d->w_out)
        return gf_fail(ctx, GF_ERR_USAGE, "%s: descriptor output %dx%d disagrees with its geometry (%dx%d): "
                       "use gf_conv_desc_init", op, d->h_out, d->w_out, c.h_out, c.w_out);
    return GF_OK;
}

/* ------------------------------------------------------------------ */
/* Winograd F(2x2, 3x3) and F(4x4, 3x3) (cl/conv.cl "Winograd")       */

/* The output tile (2 or 4) when this conv runs as Winograd (3x3, stride 1, dilation 1, one group), else 0: the
 * descriptor's algorithm, else the context's (GRADFEAT_CONV_ALGO); auto: F(4x4, 3x3) for frozen weights (d->fixed:
 * their filter transforms are made once and kept) at shapes where it measured faster than the direct conv
 * (README "Kernel paths"): with the CPU-style row kernels from GF_WINO_CPU_MIN_IN input and GF_WINO_CPU_MIN_OUT
 * output channels and GF_WINO_CPU_MIN_TILES 2x2 output tiles, with the GPU-style tile kernels (never measured on
 * a GPU) from GF_WINO_MIN_CHANNELS channels and GF_WINO_MIN_TILES tiles. Weights that change every call (fine-tuning)
 * pay 36 planes of filter transforms each time: F(4x4, 3x3) for them only with the row kernels, from
 * GF_WINO_CPU_MOVING_MIN_CHANNELS channels each way and GF_WINO_CPU_MOVING_MIN_TILES4 4x4 output tiles. */
int gf_conv_uses_winograd(const gf_ctx *ctx, const gf_conv_desc *d) {
    if (d->kh != 3 || d->kw != 3 || d->stride_h != 1 || d->stride_w != 1 || d->dil_h != 1 || d->dil_w != 1 ||
        d->groups != 1)
        return 0;
    int algo = d->algo ? d->algo : ctx->conv_algo;
    if (algo == GF_CONV_ALGO_DIRECT) return 0;
    if (algo == GF_CONV_ALGO_WINOGRAD) return 2;
    if (algo == GF_CONV_ALGO_WINOGRAD4) return 4;
    if (!d->fixed) {
        /* the filter transforms are made every call: they pay for themselves only over many 4x4 tiles, and only
         * where the GEMMs (c_in c_out a tile) outweigh the tile transforms (c_in + c_out) */
        size_t tiles4 = (size_t)d->n * (size_t)((d->h_out + 3) / 4) * (size_t)((d->w_out + 3) / 4);
        return plane_kernels(ctx, d) && d->c_in >= GF_WINO_CPU_MOVING_MIN_CHANNELS &&
                       d->c_out >= GF_WINO_CPU_MOVING_MIN_CHANNELS && tiles4 >= GF_WINO_CPU_MOVING_MIN_TILES4
                   ? 4 : 0;
    }
    size_t tiles = (size_t)d->n * (size_t)((d->h_out + 1) / 2) * (size_t)((d->w_out + 1) / 2);
    if (plane_kernels(ctx, d))
        return d->c_in >= GF_WINO_CPU_MIN_IN && d->c_out >= GF_WINO_CPU_MIN_OUT && tiles >= GF_WINO_CPU_MIN_TILES
                   ? 4 : 0;
    return d->c_in >= GF_WINO_MIN_CHANNELS && d->c_out >= GF_WINO_MIN_CHANNELS && tiles >= GF_WINO_MIN_TILES ? 4 : 0;
}

/* One Winograd convolution: y[n, co, OH, OW] (+)= sum over the terms of conv(x_k, W_k) (+ b), x_k [n, ci, H, W],
 * the m x m output tile (th, tw) reading input rows m th - pt .., columns m tw - pl .. (zero outside); P = (m + 2)^2
 * transformed planes. flip: W_k is the forward weight [ci, co, 3, 3] of a conv whose input gradient this is
 * (rotated and transposed). */
typedef struct wino_conv {
    int n, ci, h, w, co, oh, ow, pt, pl, flip, m;
    const gf_conv_desc *d;   /* for the kernel variant and the workspace limit */
} wino_conv;

void gf_conv_fixed_release(gf_conv_fixed *f) {
    if (!f) return;
    gf_buf_release(&f->U[0]);
    gf_buf_release(&f->U[1]);
    f->W = NULL;
    f->m = 0;
}

static size_t wino_planes(const wino_conv *c) { return (size_t)(c->m + 2) * (c->m + 2); }

/* The P filter-transform planes [co, ci] of W into U from offset u_off (floats). */
static gf_status wino_filter(gf_ctx *ctx, const wino_conv *c, int by_row, cl_mem W, cl_mem U, size_t u_off) {
    const char *nf = c->m == 4 ? (by_row ? "wino4_filter_rows" : "wino4_filter")
                               : (by_row ? "wino_filter_rows" : "wino_filter");
    int blk = item_rows(ctx, c->m == 4 ? 130 : 48, 0, c->ci);   /* the rows kernel: inputs per work item */
    cl_kernel kf;
    GF_TRY(kern(ctx, nf, &kf));
    if (by_row)
        GF_TRY(gf_args(ctx, kf, nf, "mmiiiii", W, U, (int)u_off, c->co, c->ci, c->flip, blk));
    else
        GF_TRY(gf_args(ctx, kf, nf, "mmiiii", W, U, (int)u_off, c->co, c->ci, c->flip));
    return launch1(ctx, kf, nf, by_row ? (size_t)c->co * tiles_of(c->ci, blk) : (size_t)c->co * c->ci);
}

/* The transforms of a fixed weight (desc.fixed): made on first use into their own buffer, kept there for every
 * later call with the same W (θ̄ is frozen while gradient/full train: the forward, the tangent's W ṫ term and
 * the input gradient then skip them each step). Recorded only once made. *U = NULL when the device memory (or
 * --max-device-mem) has no room for them: the caller then makes them in its scratch, as for any weight. */
static gf_status wino_fixed_filter(gf_ctx *ctx, const wino_conv *c, int by_row, gf_conv_fixed *fx, cl_mem W,
                                   cl_mem *U) {
    if (fx->W != W || fx->m != c->m) gf_conv_fixed_release(fx);   /* another buffer or tile: stale */
    fx->W = W;
    fx->m = c->m;
    *U = NULL;
    if (!fx->U[c->flip]) {
        cl_mem u = NULL;
        gf_status st = gf_buf_create(ctx, wino_planes(c) * c->co * c->ci * sizeof(float), "Winograd filter transforms "
                                     "of fixed weights", &u);
        if (st == GF_ERR_MEMORY) return GF_OK;
        if (st == GF_OK) st = wino_filter(ctx, c, by_row, W, u, 0);
        if (st != GF_OK) { gf_buf_release(&u); return st; }
        fx->U[c->flip] = u;
    }
    *U = fx->U[c->flip];
    return GF_OK;
}

/* Images per chunk (*nb): V [P, ci, nb*tpi] and M [P, co, nb*tpi] within the workspace limit, `terms` filter
 * transforms [P, co, ci] within the device's largest allocation; *by_row: the CPU-style kernels (a row of tiles
 * per work item: TW loop iterations of ~50 (F(2x2)) or ~150 (F(4x4)) each, within the item budget; else one tile
 * per item as on GPUs). */
static gf_status wino_plan(gf_ctx *ctx, const char *op, const wino_conv *c, int terms, size_t *nb, int *by_row) {
    int TH = (c->oh + c->m - 1) / c->m, TW = (c->ow + c->m - 1) / c->m;
    size_t P = wino_planes(c), tpi = (size_t)TH * TW, plane_u = (size_t)c->co * c->ci;
    size_t rows = (size_t)(c->ci > c->co ? c->ci : c->co);
    size_t per_img = P * rows * tpi * sizeof(float);
    size_t limit = c->d->max_workspace ? c->d->max_workspace : DEFAULT_WORKSPACE;
    size_t cap = (size_t)ctx->info.max_alloc;
    if (cap == 0 || cap > (size_t)INT_MAX * sizeof(float)) cap = (size_t)INT_MAX * sizeof(float);
    if (limit > cap) limit = cap;
    if (per_img > cap || P * plane_u * terms * sizeof(float) > cap)
        return gf_fail(ctx, GF_ERR_MEMORY, "%s: Winograd workspace of one image (%zu bytes) or the filter transforms "
                       "exceed the device's max allocation %zu", op, per_img, cap);
    size_t n = per_img > limit ? 1 : limit / per_img;
    if (n > (size_t)c->n) n = (size_t)c->n;
    size_t chunks = ((size_t)c->n + n - 1) / n;
    *nb = ((size_t)c->n + chunks - 1) / chunks;
    *by_row = plane_kernels(ctx, c->d) && (size_t)TW * (c->m == 4 ? 160 : 64) <= ctx->item_budget;
    return GF_OK;
}

/* fixed_term: the term whose W is c->d->fixed's (-1: none); post: the forward's epilogue (NULL: none), applied
 * by the F(4x4) row kernel. */
static gf_status wino_run(gf_ctx *ctx, const char *op, const wino_conv *c, int terms, const cl_mem *xs,
                          const cl_mem *Ws, int fixed_term, cl_mem b, cl_mem y, int acc, conv_post *post) {
    const int m4 = c->m == 4;
    int TH = (c->oh + c->m - 1) / c->m, TW = (c->ow + c->m - 1) / c->m;
    size_t P = wino_planes(c), tpi = (size_t)TH * TW, plane_u = (size_t)c->co * c->ci, nb = 1;
    int by_row = 0;
    GF_TRY(wino_plan(ctx, op, c, terms, &nb, &by_row));
    const char *ni = m4 ? (by_row ? "wino4_input_rows" : "wino4_input") : (by_row ? "wino_input_rows" : "wino_input");
    const char *no = m4 ? (by_row ? "wino4_output_rows" : "wino4_output")
                        : (by_row ? "wino_output_rows" : "wino_output");
    size_t per = by_row ? (size_t)TH : tpi;   /* work items per image and channel */
    cl_kernel ki, ko;
    GF_TRY(kern(ctx, ni, &ki));
    GF_TRY(kern(ctx, no, &ko));
    cl_mem kept = NULL, U = NULL, V, M, Us[2];
    size_t u_offs[2];
    if (fixed_term >= 0 && c->d->fixed) GF_TRY(wino_fixed_filter(ctx, c, by_row, c->d->fixed, Ws[fixed_term], &kept));
    size_t made = (size_t)terms - (kept != NULL);   /* filter transforms made in this call, into the scratch U */
    if (made) GF_TRY(gf_scratch(ctx, GF_AFFINE_SLOT_WINO_U, P * plane_u * made * sizeof(float), &U));
    GF_TRY(gf_scratch(ctx, GF_AFFINE_SLOT_COL, P * c->ci * nb * tpi * sizeof(float), &V));
    GF_TRY(gf_scratch(ctx, GF_AFFINE_SLOT_OUT, P * c->co * nb * tpi * sizeof(float), &M));
    for (int k = 0, j = 0; k < terms; k++) {   /* U of term k: P planes [co, ci] in Us[k] from u_offs[k] */
        if (kept && k == fixed_term) {
            Us[k] = kept;
            u_offs[k] = 0;
        } else {
            Us[k] = U;
            u_offs[k] = (size_t)j++ * P * plane_u;
            GF_TRY(wino_filter(ctx, c, by_row, Ws[k], U, u_offs[k]));
        }
    }
    if (post) post->done = m4 && by_row;
    for (int n0 = 0; n0 < c->n; n0 += (int)nb) {
        int m = c->n - n0 < (int)nb ? c->n - n0 : (int)nb;
        size_t T = (size_t)m * tpi;
        for (int k = 0; k < terms; k++) {
            GF_TRY(gf_args(ctx, ki, ni, "mimiiiiiiii", xs[k], (int)((size_t)n0 * c->ci * c->h * c->w), V, m,
                           c->ci, c->h, c->w, c->pt, c->pl, TH, TW));
            GF_TRY(launch1(ctx, ki, ni, (size_t)c->ci * m * per));
            /* M[xi] (+)= U_k[xi] V[xi], xi = 0..P-1 */
            GF_TRY(gf_gemm_batched(ctx, 0, 0, (size_t)c->co, T, (size_t)c->ci, 1.0f, Us[k], u_offs[k],
                                   (size_t)c->ci, plane_u, V, 0, T, (size_t)c->ci * T, k ? 1.0f : 0.0f, M, 0, T,
                                   (size_t)c->co * T, P));
        }
        int y_off = (int)((size_t)n0 * c->co * c->oh * c->ow);
        if (m4 && by_row)
            GF_TRY(gf_args(ctx, ko, no, "mmimiiiiiiiimii", M, y, y_off, b ? b : M, b != NULL, acc, m, c->co, c->oh,
                           c->ow, TH, TW, post && post->r ? post->r : M, post && post->r != NULL,
                           post ? post->act : 0));
        else
            GF_TRY(gf_args(ctx, ko, no, "mmimiiiiiiii", M, y, y_off, b ? b : M, b != NULL, acc, m, c->co, c->oh,
                           c->ow, TH, TW));
        GF_TRY(launch1(ctx, ko, no, (size_t)c->co * m * per));
    }
    return GF_OK;
}

static wino_conv wino_forward_of(const gf_ctx *ctx, const gf_conv_desc *d) {
    wino_conv c = {d->n, d->c_in, d->h_in, d->w_in, d->c_out, d->h_out, d->w_out, d->pad_top, d->pad_left, 0,
                   gf_conv_uses_winograd(ctx, d), d};
    return c;
}

/* The weight gradient by F(4x4, 3x3) (cl/conv.cl): per chunk of images V of x and dM = A g A^T of the output
 * gradient's tiles, dU[xi] (+)= dM[xi] V[xi]^T (36 NT GEMMs, later chunks adding), then gW (+)= G^T dU G. */
static gf_status wino_weight_grad(gf_ctx *ctx, const char *op, const gf_conv_desc *d, cl_mem x, cl_mem g, cl_mem gW,
                                  int acc) {
    wino_conv c = wino_forward_of(ctx, d);   /* c.m == 4: the caller's condition */
    int TH = (c.oh + 3) / 4, TW = (c.ow + 3) / 4, by_row = 0;
    size_t P = wino_planes(&c), tpi = (size_t)TH * TW, plane_u = (size_t)c.co * c.ci, nb = 1;
    GF_TRY(wino_plan(ctx, op, &c, 1, &nb, &by_row));
    const char *ni = by_row ? "wino4_input_rows" : "wino4_input";
    const char *ng = by_row ? "wino4_grad_output_rows" : "wino4_grad_output";
    size_t per = by_row ? (size_t)TH : tpi;   /* work items per image and channel */
    cl_kernel ki, kg, kf;
    GF_TRY(kern(ctx, ni, &ki));
    GF_TRY(kern(ctx, ng, &kg));
    GF_TRY(kern(ctx, "wino4_filter_grad", &kf));
    cl_mem V, dM, dU;
    GF_TRY(gf_scratch(ctx, GF_AFFINE_SLOT_WINO_U, P * plane_u * sizeof(float), &dU));
    GF_TRY(gf_scratch(ctx, GF_AFFINE_SLOT_COL, P * c.ci * nb * tpi * sizeof(float), &V));
    GF_TRY(gf_scratch(ctx, GF_AFFINE_SLOT_OUT, P * c.co * nb * tpi * sizeof(float), &dM));
    for (int n0 = 0; n0 < c.n; n0 += (int)nb) {
        int m = c.n - n0 < (int)nb ? c.n - n0 : (int)nb;
        size_t T = (size_t)m * tpi;
        GF_TRY(gf_args(ctx, ki, ni, "mimiiiiiiii", x, (int)((size_t)n0 * c.ci * c.h * c.w), V, m, c.ci, c.h, c.w,
                       c.pt, c.pl, TH, TW));
        GF_TRY(launch1(ctx, ki, ni, (size_t)c.ci * m * per));
        GF_TRY(gf_args(ctx, kg, ng, "mimiiiiii", g, (int)((size_t)n0 * c.co * c.oh * c.ow), dM, m, c.co, c.oh, c.ow,
                       TH, TW));
        GF_TRY(launch1(ctx, kg, ng, (size_t)c.co * m * per));
        GF_TRY(gf_gemm_batched(ctx, 0, 1, (size_t)c.co, (size_t)c.ci, T, 1.0f, dM, 0, T, (size_t)c.co * T, V, 0, T,
                               (size_t)c.ci * T, n0 ? 1.0f : 0.0f, dU, 0, (size_t)c.ci, plane_u, P));
    }
    GF_TRY(gf_args(ctx, kf, "wino4_filter_grad", "mmiii", dU, gW, acc, c.co, c.ci));
    return launch1(ctx, kf, "wino4_filter_grad", plane_u);
}

/* The input gradient as a Winograd conv of g (c_out channels, h_out x w_out) with the rotated, transposed
 * filter: gx[ih] = sum_i W[i] g[ih + pt - i] is a conv with padding 2 - pt (needs pt, pl <= 2). */
static int wino_backward_ok(const gf_conv_desc *d) { return d->pad_top <= 2 && d->pad_left <= 2; }
static wino_conv wino_backward_of(const gf_ctx *ctx, const gf_conv_desc *d) {
    wino_conv c = {d->n, d->c_out, d->h_out, d->w_out, d->c_in, d->h_in, d->w_in, 2 - d->pad_top, 2 - d->pad_left, 1,
                   gf_conv_uses_winograd(ctx, d), d};
    return c;
}

/* ------------------------------------------------------------------ */
/* Conv: forward, tangent, backward                                    */

gf_status gf_conv2d_forward(gf_ctx *ctx, const gf_conv_desc *d, cl_mem x, cl_mem W, cl_mem b, cl_mem y) {
    return gf_conv2d_forward_post(ctx, d, x, W, b, NULL, NULL, y);
}

/* The conv itself, then what of the epilogue no kernel of its path took: the residual added and the activation
 * run in place, as the graph's own add and activation nodes would run them (the same bits either way: test_ops'
 * conv rows compare both in every kernel variant). */
gf_status gf_conv2d_forward_post(gf_ctx *ctx, const gf_conv_desc *d, cl_mem x, cl_mem W, cl_mem b, cl_mem r,
                                 const gf_act *act, cl_mem y) {
    static const char op[] = "conv forward";
    GF_TRY(check_desc(ctx, d, op));
    conv_sizes s = sizes_of(d);
    GF_TRY(need_buf(ctx, op, "x", x, s.x_n));
    GF_TRY(need_buf(ctx, op, "W", W, s.w_n));
    if (b) GF_TRY(need_buf(ctx, op, "b", b, (size_t)d->c_out));
    GF_TRY(need_buf(ctx, op, "y", y, s.y_n));
    if (r) GF_TRY(need_buf(ctx, op, "residual", r, s.y_n));
    if (r && r == y) return gf_fail(ctx, GF_ERR_INTERNAL, "%s: the residual shares the output's buffer", op);
    /* the activations the kernels apply themselves; the others run after the conv */
    int code = !act ? 0 : act->kind == GF_ACT_RELU ? 1 : act->kind == GF_ACT_RELU6 ? 2 : -1;
    conv_post post = {r, code > 0 ? code : 0, 0}, *pp = r || code > 0 ? &post : NULL;
    if (gf_conv_is_depthwise(d)) {
        GF_TRY(run_dw_conv(ctx, d, x, W, NULL, NULL, b, y));
    } else if (gf_conv_uses_winograd(ctx, d)) {
        wino_conv c = wino_forward_of(ctx, d);
        GF_TRY(wino_run(ctx, op, &c, 1, &x, &W, 0, b, y, 0, pp));
    } else {
        int nb;
        cl_mem col, tmp;
        GF_TRY(conv_chunk(ctx, d, op, &nb));
        GF_TRY(conv_workspace(ctx, d, nb, &col, &tmp));
        for (int n0 = 0; n0 < d->n; n0 += nb) {
            int m = d->n - n0 < nb ? d->n - n0 : nb;
            cl_mem cx;
            GF_TRY(im2col_x(ctx, d, x, n0, m, nb, col, &cx));
            GF_TRY(gemm_fwd(ctx, d, W, cx, (size_t)m * s.P, 0.0f, tmp));
            GF_TRY(run_to_ncp(ctx, d, tmp, y, n0, m, b, pp));
        }
    }
    if (r && !post.done) GF_TRY(gf_add(ctx, s.y_n, y, r, y));
    if (act && !(post.done && code >= 0)) GF_TRY(gf_act_forward(ctx, *act, s.y_n, y, y));
    return GF_OK;
}

gf_status gf_conv2d_tangent(gf_ctx *ctx, const gf_conv_desc *d, cl_mem x, cl_mem Wt, cl_mem bt,
                            cl_mem W, cl_mem t_in, cl_mem t_out) {
    static const char op[] = "conv tangent";
    GF_TRY(check_desc(ctx, d, op));
    conv_sizes s = sizes_of(d);
    int use_a = Wt != NULL, use_b = W != NULL && t_in != NULL;
    if (use_a) {
        GF_TRY(need_buf(ctx, op, "x", x, s.x_n));
        GF_TRY(need_buf(ctx, op, "Wt", Wt, s.w_n));
    }
    if (use_b) {
        GF_TRY(need_buf(ctx, op, "W", W, s.w_n));
        GF_TRY(need_buf(ctx, op, "t_in", t_in, s.x_n));
    }
    if (bt) GF_TRY(need_buf(ctx, op, "bt", bt, (size_t)d->c_out));
    GF_TRY(need_buf(ctx, op, "t_out", t_out, s.y_n));
    if (!use_a && !use_b) return run_fill_bias(ctx, t_out, bt, d->n, d->c_out, (int)s.P);
    if (gf_conv_is_depthwise(d))
        return run_dw_conv(ctx, d, use_a ? x : NULL, Wt, use_b ? t_in : NULL, use_b ? W : NULL, bt, t_out);
    if (gf_conv_uses_winograd(ctx, d)) {   /* both terms summed in the transformed domain, one output transform */
        cl_mem xs[2], Ws[2];
        int terms = 0;
        if (use_a) { xs[terms] = x; Ws[terms++] = Wt; }
        if (use_b) { xs[terms] = t_in; Ws[terms++] = W; }
        wino_conv c = wino_forward_of(ctx, d);
        return wino_run(ctx, op, &c, terms, xs, Ws, use_b ? terms - 1 : -1, bt, t_out, 0, NULL);
    }
    int nb;
    cl_mem col, tmp;
    GF_TRY(conv_chunk(ctx, d, op, &nb));
    GF_TRY(conv_workspace(ctx, d, nb, &col, &tmp));
    for (int n0 = 0; n0 < d->n; n0 += nb) {
        int m = d->n - n0 < nb ? d->n - n0 : nb;
        size_t cols = (size_t)m * s.P;
        if (use_a) {
            cl_mem cx;
            GF_TRY(im2col_x(ctx, d, x, n0, m, nb, col, &cx));
            GF_TRY(gemm_fwd(ctx, d, Wt, cx, cols, 0.0f, tmp));
        }
        /* W ṫ is added by a second GEMM with beta 1 into the same tmp rather than one GEMM over the
         * K-concatenated [W̃ | W] x [col(x); col(ṫ)]: that needs [W̃ | W] copied every step (W̃ moves) and twice the
         * col workspace, and the host BLAS blocks K itself (one more pass over tmp either way); measured at W1's
         * 512 x 3136 x 4608, OpenBLAS, 2 threads: concatenated / two GEMMs 0.97-1.01 (best of 15), no gain */
        if (use_b) {   /* the in-order queue finishes the first GEMM before col is overwritten */
            GF_TRY(run_im2col(ctx, d, t_in, n0, m, col));
            GF_TRY(gemm_fwd(ctx, d, W, col, cols, use_a ? 1.0f : 0.0f, tmp));
        }
        GF_TRY(run_to_ncp(ctx, d, tmp, t_out, n0, m, bt, NULL));
    }
    return GF_OK;
}

gf_status gf_conv2d_backward(gf_ctx *ctx, const gf_conv_desc *d, cl_mem x, cl_mem W, cl_mem g,
                             cl_mem gx, cl_mem gW, cl_mem gb, int accumulate) {
    static const char op[] = "conv backward";
    GF_TRY(check_desc(ctx, d, op));
    conv_sizes s = sizes_of(d);
    int acc = accumulate ? 1 : 0;
    GF_TRY(need_buf(ctx, op, "g", g, s.y_n));
    if (gx) {
        GF_TRY(need_buf(ctx, op, "W", W, s.w_n));
        GF_TRY(need_buf(ctx, op, "gx", gx, s.x_n));
    }
    if (gW) {
        GF_TRY(need_buf(ctx, op, "x", x, s.x_n));
        GF_TRY(need_buf(ctx, op, "gW", gW, s.w_n));
    }
    if (gb) {
        GF_TRY(need_buf(ctx, op, "gb", gb, (size_t)d->c_out));
        GF_TRY(run_reduce(ctx, plane_kernels(ctx, d), g, gb, acc, d->n, d->c_out, (int)s.P));
    }
    if (!gx && !gW) return GF_OK;
    if (gf_conv_is_depthwise(d)) {
        int M = d->c_out / d->c_in;
        cl_kernel k;
        if (gx) {
            int plane = plane_kernels(ctx, d);
            const char *name = plane ? "dw_backward_input_plane" : "dw_backward_input";
            size_t taps = (size_t)M * d->kh * d->kw, row = taps * ((size_t)d->w_out + 1);
            int rows = item_rows(ctx, (size_t)d->w_in + row, (size_t)M * (1 + d->kh) + taps + row, d->h_in);
            if (plane && dw3_same_flat(d) && rows >= d->h_in) {   /* a whole plane per item (cl/conv.cl) */
                GF_TRY(kern(ctx, "dw3_backward_input_flat", &k));
                GF_TRY(gf_args(ctx, k, "dw3_backward_input_flat", "mmmiiiiii", W, g, gx, acc, d->n, M, d->c_in,
                               d->h_in, d->w_in));
                GF_TRY(launch1(ctx, k, "dw3_backward_input_flat", (size_t)d->n * d->c_in));
            } else {
                GF_TRY(kern(ctx, name, &k));
                GF_TRY(gf_args(ctx, k, name, plane ? "mmmiii" G_FMT "i" : "mmmiii" G_FMT, W, g, gx, acc, d->n, M,
                               G_ARGS(d), rows));
                GF_TRY(launch1(ctx, k, name, plane ? (size_t)d->n * d->c_in * tiles_of(d->h_in, rows) : s.x_n));
            }
        }
        if (gW && plane_kernels(ctx, d)) {
            /* tiles of the N*OH output rows per weight, partial sums added in a
             * fixed order; no more tiles than the item budget (sum_partials) */
            int total = d->n * d->h_out;
            int rows = item_rows(ctx, (size_t)d->w_out + 1, 0, total);
            if (tiles_of(total, rows) > ctx->item_budget) rows = (int)tiles_of(total, (int)ctx->item_budget);
            size_t tiles = tiles_of(total, rows);
            cl_mem part = gW;
            if (tiles > 1) GF_TRY(gf_scratch(ctx, GF_AFFINE_SLOT_PART, s.w_n * tiles * sizeof(float), &part));
            if (dw3_plane(d)) {   /* 3x3 stride 1: a channel's nine weights per item, the same tiles and sums */
                GF_TRY(kern(ctx, "dw3_backward_weight_rows", &k));
                GF_TRY(gf_args(ctx, k, "dw3_backward_weight_rows", "mmmiiiiiiiiiiim", x, g, gW, acc, d->n, M, d->c_in,
                               d->h_in, d->w_in, d->h_out, d->w_out, d->pad_top, d->pad_left, rows, part));
                GF_TRY(launch1(ctx, k, "dw3_backward_weight_rows", (size_t)d->c_out * tiles));
            } else {
                GF_TRY(kern(ctx, "dw_backward_weight_serial", &k));
                GF_TRY(gf_args(ctx, k, "dw_backward_weight_serial", "mmmiii" G_FMT "im", x, g, gW, acc, d->n, M,
                               G_ARGS(d), rows, part));
                GF_TRY(launch1(ctx, k, "dw_backward_weight_serial", s.w_n * tiles));
            }
            if (tiles > 1) GF_TRY(run_sum_partials(ctx, part, gW, acc, s.w_n, (int)tiles));
        } else if (gW) {
            int slices;
            cl_mem part;
            GF_TRY(red_slices(ctx, s.w_n, (size_t)d->n * d->h_out, (size_t)d->w_out + 1, &slices, &part));
            GF_TRY(kern(ctx, "dw_backward_weight", &k));
            GF_TRY(gf_args(ctx, k, "dw_backward_weight", "mmmiii" G_FMT "im", x, g, gW, acc, d->n, M, G_ARGS(d),
                           slices, part ? part : gW));
            GF_TRY(launch_groups(ctx, k, "dw_backward_weight", s.w_n * slices));
            if (slices > 1) GF_TRY(run_sum_partials(ctx, part, gW, acc, s.w_n, slices));
        }
        return GF_OK;
    }
    /* the input gradient by Winograd where the forward would be; the weight gradient too with F(4x4, 3x3) */
    int tile = gf_conv_uses_winograd(ctx, d);
    cl_mem gx_wino = gx && tile && wino_backward_ok(d) ? gx : NULL, gW_wino = gW && tile == 4 ? gW : NULL;
    if (gx_wino) gx = NULL;
    if (gW_wino) gW = NULL;
    int nb;
    cl_mem col, tmp;
    if (gx || gW) {
        GF_TRY(conv_chunk(ctx, d, op, &nb));
        GF_TRY(conv_workspace(ctx, d, nb, &col, &tmp));
    }
    for (int n0 = 0; (gx || gW) && n0 < d->n; n0 += nb) {
        int m = d->n - n0 < nb ? d->n - n0 : nb;
        size_t cols = (size_t)m * s.P;
        GF_TRY(run_to_cnp(ctx, d, g, n0, m, tmp));
        if (gW) {
            cl_mem cx;
            GF_TRY(im2col_x(ctx, d, x, n0, m, nb, col, &cx));
            /* later chunks add to what the first chunk wrote */
            GF_TRY(gemm_wgrad(ctx, d, tmp, cx, cols, (acc || n0 > 0) ? 1.0f : 0.0f, gW));
        }
        if (gx) {
            GF_TRY(gemm_colgrad(ctx, d, W, tmp, cols, col));
            GF_TRY(run_col2im(ctx, d, col, gx, n0, m, acc));
        }
    }
    if (gx_wino) {
        wino_conv c = wino_backward_of(ctx, d);
        GF_TRY(wino_run(ctx, op, &c, 1, &g, &W, 0, NULL, gx_wino, acc, NULL));
    }
    if (gW_wino) GF_TRY(wino_weight_grad(ctx, op, d, x, g, gW_wino, acc));
    return GF_OK;
}

/* ------------------------------------------------------------------ */
/* Linear                                                              */

static gf_status check_linear(gf_ctx *ctx, const char *op, int n, int in, int out) {
    if (n < 1 || in < 1 || out < 1)
        return gf_fail(ctx, GF_ERR_USAGE, "%s: sizes must be positive (n %d, in %d, out %d)", op, n, in, out);
    if ((long long)n * in > INT_MAX || (long long)n * out > INT_MAX || (long long)in * out > INT_MAX)
        return gf_fail(ctx, GF_ERR_USAGE, "%s: tensor too large for 32-bit indexing (n %d, in %d, out %d)", op, n, in, out);
    return GF_OK;
}

gf_status gf_linear_forward(gf_ctx *ctx, int n, int in, int out, cl_mem x, cl_mem W, cl_mem b, cl_mem y) {
    static const char op[] = "linear forward";
    GF_TRY(check_linear(ctx, op, n, in, out));
    GF_TRY(need_buf(ctx, op, "x", x, (size_t)n * in));
    GF_TRY(need_buf(ctx, op, "W", W, (size_t)out * in));
    if (b) GF_TRY(need_buf(ctx, op, "b", b, (size_t)out));
    GF_TRY(need_buf(ctx, op, "y", y, (size_t)n * out));
    if (b) GF_TRY(run_fill_bias(ctx, y, b, n, out, 1));
    return gf_gemm(ctx, 0, 1, (size_t)n, (size_t)out, (size_t)in, 1.0f, x, 0, (size_t)in, W, 0, (size_t)in,
                   b ? 1.0f : 0.0f, y, 0, (size_t)out);
}

gf_status gf_linear_tangent(gf_ctx *ctx, int n, int in, int out, cl_mem x, cl_mem Wt, cl_mem bt,
                            cl_mem W, cl_mem t_in, cl_mem t_out) {
    static const char op[] = "linear tangent";
    GF_TRY(check_linear(ctx, op, n, in, out));
    int use_a = Wt != NULL, use_b = W != NULL && t_in != NULL;
    if (use_a) {
        GF_TRY(need_buf(ctx, op, "x", x, (size_t)n * in));
        GF_TRY(need_buf(ctx, op, "Wt", Wt, (size_t)out * in));
    }
    if (use_b) {
        GF_TRY(need_buf(ctx, op, "W", W, (size_t)out * in));
        GF_TRY(need_buf(ctx, op, "t_in", t_in, (size_t)n * in));
    }
    if (bt) GF_TRY(need_buf(ctx, op, "bt", bt, (size_t)out));
    GF_TRY(need_buf(ctx, op, "t_out", t_out, (size_t)n * out));
    float beta = 0.0f;
    if (bt || (!use_a && !use_b)) {
        GF_TRY(run_fill_bias(ctx, t_out, bt, n, out, 1));
        beta = 1.0f;
    }
    if (use_a) {
        GF_TRY(gf_gemm(ctx, 0, 1, (size_t)n, (size_t)out, (size_t)in, 1.0f, x, 0, (size_t)in, Wt, 0, (size_t)in,
                       beta, t_out, 0, (size_t)out));
        beta = 1.0f;
    }
    if (use_b)
        GF_TRY(gf_gemm(ctx, 0, 1, (size_t)n, (size_t)out, (size_t)in, 1.0f, t_in, 0, (size_t)in, W, 0, (size_t)in,
                       beta, t_out, 0, (size_t)out));
    return GF_OK;
}

gf_status gf_linear_backward(gf_ctx *ctx, int n, int in, int out, cl_mem x, cl_mem W, cl_mem g,
                             cl_mem gx, cl_mem gW, cl_mem gb, int accumulate) {
    static const char op[] = "linear backward";
    GF_TRY(check_linear(ctx, op, n, in, out));
    float beta = accumulate ? 1.0f : 0.0f;
    GF_TRY(need_buf(ctx, op, "g", g, (size_t)n * out));
    if (gx) {
        GF_TRY(need_buf(ctx, op, "W", W, (size_t)out * in));
        GF_TRY(need_buf(ctx, op, "gx", gx, (size_t)n * in));
        GF_TRY(gf_gemm(ctx, 0, 0, (size_t)n, (size_t)in, (size_t)out, 1.0f, g, 0, (size_t)out, W, 0, (size_t)in,
                       beta, gx, 0, (size_t)in));
    }
    if (gW) {
        GF_TRY(need_buf(ctx, op, "x", x, (size_t)n * in));
        GF_TRY(need_buf(ctx, op, "gW", gW, (size_t)out * in));
        GF_TRY(gf_gemm(ctx, 1, 0, (size_t)out, (size_t)in, (size_t)n, 1.0f, g, 0, (size_t)out, x, 0, (size_t)in,
                       beta, gW, 0, (size_t)in));
    }
    if (gb) {
        GF_TRY(need_buf(ctx, op, "gb", gb, (size_t)out));
        GF_TRY(run_reduce(ctx, ctx->conv_plane, g, gb, accumulate ? 1 : 0, n, out, 1));
    }
    return GF_OK;
}

/* ------------------------------------------------------------------ */
/* BatchNorm folding (host)                                            */

gf_status gf_bn_fold(gf_ctx *ctx, float *W, const float *b_in, float *b_out, int c_out, size_t per_out,
                     const float *gamma, const float *beta, const float *mean, const float *var, float eps) {
    if (!W || !b_out || !gamma || !beta || !mean || !var || c_out < 1)
        return gf_fail(ctx, GF_ERR_USAGE, "bn fold: missing array or c_out %d < 1", c_out);
    for (int o = 0; o < c_out; o++) {
        double v = (double)var[o] + eps;
        if (!(v > 0) || !isfinite(v) || !isfinite(gamma[o]) || !isfinite(beta[o]) || !isfinite(mean[o]))
            return gf_fail(ctx, GF_ERR_INPUT, "bn fold: channel %d has var %g + eps %g, gamma %g, beta %g, mean %g",
                           o, (double)var[o], (double)eps, (double)gamma[o], (double)beta[o], (double)mean[o]);
    }
    for (int o = 0; o < c_out; o++) {
        double scale = (double)gamma[o] / sqrt((double)var[o] + eps);
        for (size_t i = 0; i < per_out; i++) W[(size_t)o * per_out + i] = (float)(W[(size_t)o * per_out + i] * scale);
        double b = b_in ? (double)b_in[o] : 0.0;
        b_out[o] = (float)((b - mean[o]) * scale + beta[o]);
    }
    return GF_OK;
}
