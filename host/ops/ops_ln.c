/* Layer normalization over channels on the device; kernels in cl/ln.cl. */
#include "ops_ln.h"
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
