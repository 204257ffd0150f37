/* Product and channel concat on the device; kernels in cl/merge.cl. */
#include "ops_merge.h"
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static gf_status mul_check(gf_ctx *ctx, size_t planes, size_t HW, const char *what) {
    if (planes == 0 || HW == 0 || planes > UINT_MAX / HW)
        return gf_fail(ctx, GF_ERR_USAGE, "%s: bad size %zu planes x %zu", what, planes, HW);
    return GF_OK;
}

gf_status gf_mul_forward(gf_ctx *ctx, size_t planes, size_t HW, int gate, cl_mem x, cl_mem s, cl_mem y) {
    GF_TRY(mul_check(ctx, planes, HW, "multiply forward"));
    cl_kernel k;
    GF_TRY(gf_kernel(ctx, "merge", NULL, "mul_forward", &k));
    GF_TRY(gf_args(ctx, k, "mul_forward", "mmmuuu", x, s, y, (unsigned)(planes * HW), (unsigned)HW,
                   (unsigned)(gate != 0)));
    return gf_launch1(ctx, k, "mul_forward", planes * HW);
}

gf_status gf_mul_tangent(gf_ctx *ctx, size_t planes, size_t HW, int gate, cl_mem x, cl_mem s, cl_mem tx, cl_mem ts,
                         cl_mem t) {
    GF_TRY(mul_check(ctx, planes, HW, "multiply tangent"));
    if (!tx && !ts) return gf_fail(ctx, GF_ERR_INTERNAL, "multiply tangent: both input tangents are 0");
    cl_kernel k;
    GF_TRY(gf_kernel(ctx, "merge", NULL, "mul_tangent", &k));
    /* an unused argument still needs a valid buffer */
    GF_TRY(gf_args(ctx, k, "mul_tangent", "mmmmmuuuuu", x, s, tx ? tx : x, ts ? ts : s, t, (unsigned)(planes * HW),
                   (unsigned)HW, (unsigned)(gate != 0), (unsigned)(tx != NULL), (unsigned)(ts != NULL)));
    return gf_launch1(ctx, k, "mul_tangent", planes * HW);
}

gf_status gf_mul_backward(gf_ctx *ctx, size_t planes, size_t HW, int gate, cl_mem x, cl_mem s, cl_mem g, cl_mem gx,
                          cl_mem gs) {
    GF_TRY(mul_check(ctx, planes, HW, "multiply backward"));
    cl_kernel k;
    if (gx || (gs && !gate)) {
        GF_TRY(gf_kernel(ctx, "merge", NULL, "mul_backward", &k));
        GF_TRY(gf_args(ctx, k, "mul_backward", "mmmmmuuuuu", x, s, g, gx ? gx : g, gs ? gs : g,
                       (unsigned)(planes * HW), (unsigned)HW, (unsigned)(gate != 0), (unsigned)(gx != NULL),
                       (unsigned)(gs != NULL)));
        GF_TRY(gf_launch1(ctx, k, "mul_backward", planes * HW));
    }
    if (!gs || !gate) return GF_OK;
    if (HW <= 64) {
        GF_TRY(gf_kernel(ctx, "merge", NULL, "mul_gate_grad_small", &k));
        GF_TRY(gf_args(ctx, k, "mul_gate_grad_small", "mmmuu", x, g, gs, (unsigned)planes, (unsigned)HW));
        return gf_launch1(ctx, k, "mul_gate_grad_small", planes);
    }
    GF_TRY(gf_kernel(ctx, "merge", NULL, "mul_gate_grad", &k));
    size_t cap = 1, L;
    while (cap < HW && cap < 256) cap *= 2;
    GF_TRY(gf_pow2_local(ctx, k, cap, 0, &L));
    if ((HW + L - 1) / L > ctx->item_budget)
        return gf_fail(ctx, GF_ERR_USAGE, "multiply backward: a gate over %zu values per plane needs %zu loop steps "
                       "per work item with this device's %zu-lane groups (item budget %u)", HW, (HW + L - 1) / L, L,
                       ctx->item_budget);
    GF_TRY(gf_args(ctx, k, "mul_gate_grad", "mmmuuL", x, g, gs, (unsigned)planes, (unsigned)HW, L));
    size_t global = planes * L;
    return gf_launch(ctx, k, "mul_gate_grad", 1, &global, &L);
}

static gf_status concat_slice(gf_ctx *ctx, size_t N, size_t HW, int C, cl_mem src, int src_C, int src_off, cl_mem dst,
                              int dst_C, int dst_off, int mode) {
    size_t total = N * (size_t)C * HW;
    if (!total) return GF_OK;
    if (total > UINT_MAX || N * (size_t)(src_C > dst_C ? src_C : dst_C) * HW > UINT_MAX)
        return gf_fail(ctx, GF_ERR_USAGE, "concat: %zu x %d x %zu values exceed the 32-bit index range", N, C, HW);
    cl_kernel k;
    GF_TRY(gf_kernel(ctx, "merge", NULL, "concat_slice", &k));
    GF_TRY(gf_args(ctx, k, "concat_slice", "mmuuuuuuuu", src ? src : dst, dst, (unsigned)total, (unsigned)C,
                   (unsigned)HW, (unsigned)src_C, (unsigned)src_off, (unsigned)dst_C, (unsigned)dst_off,
                   (unsigned)mode));
    return gf_launch1(ctx, k, "concat_slice", total);
}

gf_status gf_concat_forward(gf_ctx *ctx, size_t N, size_t HW, int n, const int *C, const cl_mem *x, cl_mem y) {
    if (n < 1 || n > GF_CONCAT_MAX_INPUTS)
        return gf_fail(ctx, GF_ERR_USAGE, "concat: %d inputs (1..%d)", n, GF_CONCAT_MAX_INPUTS);
    int total = 0;
    for (int k = 0; k < n; k++) {
        if (C[k] < 1 || C[k] > INT_MAX - total) return gf_fail(ctx, GF_ERR_USAGE, "concat: input %d has %d channels", k, C[k]);
        total += C[k];
    }
    for (int k = 0, off = 0; k < n; off += C[k], k++)
        GF_TRY(concat_slice(ctx, N, HW, C[k], x[k], C[k], 0, y, total, off, x[k] ? 0 : 2));
    return GF_OK;
}

gf_status gf_concat_backward(gf_ctx *ctx, size_t N, size_t HW, int C_total, int off, int Ck, cl_mem g, cl_mem gk,
                             int accumulate) {
    if (Ck < 1 || off < 0 || off > C_total - Ck)
        return gf_fail(ctx, GF_ERR_USAGE, "concat backward: channels %d..%d outside 0..%d", off, off + Ck, C_total);
    return concat_slice(ctx, N, HW, Ck, g, C_total, off, gk, Ck, 0, accumulate ? 1 : 0);
}

gf_status gf_slice_forward(gf_ctx *ctx, size_t N, size_t HW, int C_in, int off, int Ck, cl_mem x, cl_mem y) {
    if (Ck < 1 || off < 0 || off > C_in - Ck)
        return gf_fail(ctx, GF_ERR_USAGE, "channel slice: channels %d..%d outside 0..%d", off, off + Ck, C_in);
    return concat_slice(ctx, N, HW, Ck, x, C_in, off, y, Ck, 0, 0);
}

gf_status gf_slice_backward(gf_ctx *ctx, size_t N, size_t HW, int C_in, int off, int Ck, cl_mem g, cl_mem gx,
                            int accumulate) {
    if (Ck < 1 || off < 0 || off > C_in - Ck)
        return gf_fail(ctx, GF_ERR_USAGE, "channel slice backward: channels %d..%d outside 0..%d", off, off + Ck, C_in);
    if (!accumulate && Ck < C_in) {
        if (N * (size_t)C_in * HW > UINT_MAX)
            return gf_fail(ctx, GF_ERR_USAGE, "channel slice: %zu x %d x %zu values exceed the 32-bit index range", N,
                           C_in, HW);
        if (off > 0) GF_TRY(concat_slice(ctx, N, HW, off, NULL, 0, 0, gx, C_in, 0, 2));
        if (off + Ck < C_in) GF_TRY(concat_slice(ctx, N, HW, C_in - off - Ck, NULL, 0, 0, gx, C_in, off + Ck, 2));
    }
    return concat_slice(ctx, N, HW, Ck, g, Ck, 0, gx, C_in, off, accumulate ? 1 : 0);
}

static gf_status shuffle(gf_ctx *ctx, size_t N, int C, size_t HW, int G, cl_mem src, cl_mem dst, int inverse,
                         int accumulate) {
    if (N == 0 || HW == 0 || C < 1 || G < 1 || C % G)
        return gf_fail(ctx, GF_ERR_USAGE, "channel shuffle: %d channels in %d groups (N %zu, HW %zu)", C, G, N, HW);
    if (N * (size_t)C > UINT_MAX / HW)
        return gf_fail(ctx, GF_ERR_USAGE, "channel shuffle: %zu x %d x %zu values exceed the 32-bit index range", N, C,
                       HW);
    if (src == dst) return gf_fail(ctx, GF_ERR_INTERNAL, "channel shuffle: output aliases the input");
    size_t total = N * (size_t)C * HW;
    cl_kernel k;
    GF_TRY(gf_kernel(ctx, "merge", NULL, "channel_shuffle", &k));
    GF_TRY(gf_args(ctx, k, "channel_shuffle", "mmuuuuuu", src, dst, (unsigned)total, (unsigned)C, (unsigned)HW,
                   (unsigned)G, (unsigned)(inverse != 0), (unsigned)(accumulate != 0)));
    return gf_launch1(ctx, k, "channel_shuffle", total);
}

gf_status gf_shuffle_forward(gf_ctx *ctx, size_t N, int C, size_t HW, int G, cl_mem x, cl_mem y) {
    return shuffle(ctx, N, C, HW, G, x, y, 0, 0);
}

gf_status gf_shuffle_backward(gf_ctx *ctx, size_t N, int C, size_t HW, int G, cl_mem g, cl_mem gx, int accumulate) {
    return shuffle(ctx, N, C, HW, G, g, gx, 1, accumulate);
}
