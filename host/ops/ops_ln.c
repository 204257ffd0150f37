/* Layer normalization over channels on the device; kernels in cl/ln.cl. */
#include "ops_ln.h"
#include "selftest.h"
#include <limits.h>
#include <math.h>
#include <stdlib.h>

static gf_status ln_check(gf_ctx *ctx, size_t N, int C, size_t HW, float eps, const char *what) {
    if (N == 0 || C < 1 || HW == 0 || N * HW > UINT_MAX / (size_t)C)
        return gf_fail(ctx, GF_ERR_USAGE, "%s: bad size %zu x %d x %zu", what, N, C, HW);
    if (!(eps >= 0) || !isfinite(eps)) return gf_fail(ctx, GF_ERR_USAGE, "%s: eps %g", what, (double)eps);
    if (3 * (size_t)C > ctx->item_budget)
        return gf_fail(ctx, GF_ERR_USAGE, "%s: %d channels need %d loop steps per work item (item budget %u)", what, C,
                       3 * C, ctx->item_budget);
    return GF_OK;
}

gf_status gf_ln_forward(gf_ctx *ctx, size_t N, int C, size_t HW, float eps, cl_mem x, cl_mem y) {
    GF_TRY(ln_check(ctx, N, C, HW, eps, "layernorm forward"));
    cl_kernel k;
    GF_TRY(gf_kernel(ctx, "ln", NULL, "ln_forward", &k));
    GF_TRY(gf_args(ctx, k, "ln_forward", "mmuuuf", x, y, (unsigned)N, (unsigned)C, (unsigned)HW, (double)eps));
    return gf_launch1(ctx, k, "ln_forward", N * HW);
}

static gf_status ln_jac(gf_ctx *ctx, size_t N, int C, size_t HW, float eps, cl_mem x, cl_mem in, cl_mem out,
                        const char *what) {
    GF_TRY(ln_check(ctx, N, C, HW, eps, what));
    cl_kernel k;
    GF_TRY(gf_kernel(ctx, "ln", NULL, "ln_jacobian", &k));
    GF_TRY(gf_args(ctx, k, "ln_jacobian", "mmmuuuf", x, in, out, (unsigned)N, (unsigned)C, (unsigned)HW, (double)eps));
    return gf_launch1(ctx, k, "ln_jacobian", N * HW);
}

gf_status gf_ln_tangent(gf_ctx *ctx, size_t N, int C, size_t HW, float eps, cl_mem x, cl_mem t_in, cl_mem t_out) {
    return ln_jac(ctx, N, C, HW, eps, x, t_in, t_out, "layernorm tangent");
}

gf_status gf_ln_backward(gf_ctx *ctx, size_t N, int C, size_t HW, float eps, cl_mem x, cl_mem g_out, cl_mem g_in) {
    return ln_jac(ctx, N, C, HW, eps, x, g_out, g_in, "layernorm backward");
}

void gf_ln_ref(const float *x, const float *t, int C, size_t stride, double eps, double *y, double *jt) {
    double mu = 0, v = 0, a = 0, b = 0;
    for (int c = 0; c < C; c++) mu += x[c * stride];
    mu /= C;
    for (int c = 0; c < C; c++) v += (x[c * stride] - mu) * (x[c * stride] - mu);
    double s = sqrt(v / C + eps);
    for (int c = 0; c < C; c++) {
        double yc = (x[c * stride] - mu) / s;
        if (y) y[c] = yc;
        if (t) { a += t[c * stride]; b += yc * t[c * stride]; }
    }
    if (!jt || !t) return;
    a /= C;
    b /= C;
    for (int c = 0; c < C; c++) jt[c] = (t[c * stride] - a - (x[c * stride] - mu) / s * b) / s;
}

/* ---- self-test: [2, 24, 5x3] ---- */
void gf_selftest_ln(gf_ctx *ctx, gf_check_list *l) {
    enum { N = 2, C = 24, HW = 15, T = N * C * HW };
    float x[T], t[T], out[T];
    double ref[T], yy[C], jj[C];
    uint64_t s = 99;
    for (int i = 0; i < T; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        double u = (double)(s >> 11) / 9007199254740992.0;
        x[i] = (float)(3.0 * u - 1.0 + 0.5 * (i % 7));
        t[i] = (float)(1.0 - 2.0 * u * u);
    }
    cl_mem bx = NULL, bt = NULL, bo = NULL;
    double fa = INFINITY, fr = INFINITY, ja = INFINITY, jr = INFINITY;
    if (gf_buf_create_from(ctx, sizeof x, x, "ln selftest x", &bx) == GF_OK &&
        gf_buf_create_from(ctx, sizeof t, t, "ln selftest t", &bt) == GF_OK &&
        gf_buf_create(ctx, sizeof out, "ln selftest out", &bo) == GF_OK) {
        for (int n = 0; n < N; n++)
            for (int p = 0; p < HW; p++) {
                size_t base = (size_t)n * C * HW + p;
                gf_ln_ref(x + base, t + base, C, HW, 1e-6, yy, jj);
                for (int c = 0; c < C; c++) { ref[base + c * HW] = yy[c]; }
            }
        if (gf_ln_forward(ctx, N, C, HW, 1e-6f, bx, bo) == GF_OK && gf_buf_read(ctx, bo, 0, sizeof out, out) == GF_OK)
            gf_compare(out, ref, T, &fa, &fr);
        for (int n = 0; n < N; n++)
            for (int p = 0; p < HW; p++) {
                size_t base = (size_t)n * C * HW + p;
                gf_ln_ref(x + base, t + base, C, HW, 1e-6, yy, jj);
                for (int c = 0; c < C; c++) ref[base + c * HW] = jj[c];
            }
        if (gf_ln_tangent(ctx, N, C, HW, 1e-6f, bx, bt, bo) == GF_OK && gf_buf_read(ctx, bo, 0, sizeof out, out) == GF_OK)
            gf_compare(out, ref, T, &ja, &jr);
    }
    gf_check_add(l, "layernorm forward", fa, fr, 1e-5);
    gf_check_add(l, "layernorm tangent/backward", ja, jr, 1e-5);
    gf_buf_release(&bx); gf_buf_release(&bt); gf_buf_release(&bo);
}
