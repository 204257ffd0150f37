/* Pointwise nonlinearities on the device; kernels in cl/act.cl. */
#include "ops_act.h"
#include <limits.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static gf_status act_check(gf_ctx *ctx, gf_act a, size_t n, const char *what) {
    if ((unsigned)a.kind >= GF_ACT_COUNT)
        return gf_fail(ctx, GF_ERR_USAGE, "%s: unknown activation kind %d", what, (int)a.kind);
    if (n > UINT_MAX)
        return gf_fail(ctx, GF_ERR_USAGE, "%s: %zu elements exceed the 32-bit index range", what, n);
    return GF_OK;
}

/* Elements per work item of the CPU-style kernels (act_*_rows): the item budget, a multiple of 8 */
static unsigned run_len(const gf_ctx *ctx) {
    size_t len = ctx->item_budget / 8 * 8;
    return len < 8 ? 8u : len > (1u << 30) ? 1u << 30 : (unsigned)len;
}

gf_status gf_act_forward(gf_ctx *ctx, gf_act a, size_t n, cl_mem z, cl_mem y) {
    GF_TRY(act_check(ctx, a, n, "activation forward"));
    if (n == 0) return GF_OK;
    cl_kernel k;
    if (ctx->conv_plane) {   /* CPU-style paths: runs of elements, the piecewise-linear kinds in vectors */
        unsigned len = run_len(ctx);
        GF_TRY(gf_kernel(ctx, "act", NULL, "act_forward_rows", &k));
        GF_TRY(gf_args(ctx, k, "act_forward_rows", "mmuifu", z, y, (unsigned)n, (int)a.kind, (double)a.slope, len));
        return gf_launch1(ctx, k, "act_forward_rows", (n + len - 1) / len);
    }
    GF_TRY(gf_kernel(ctx, "act", NULL, "act_forward", &k));
    GF_TRY(gf_args(ctx, k, "act_forward", "mmuif", z, y, (unsigned)n, (int)a.kind, (double)a.slope));
    return gf_launch1(ctx, k, "act_forward", n);
}

static gf_status act_jac(gf_ctx *ctx, gf_act a, size_t n, cl_mem z, cl_mem in, cl_mem out,
                         const char *what) {
    GF_TRY(act_check(ctx, a, n, what));
    if (n == 0) return GF_OK;
    cl_kernel k;
    if (ctx->conv_plane) {
        unsigned len = run_len(ctx);
        GF_TRY(gf_kernel(ctx, "act", NULL, "act_jacobian_rows", &k));
        GF_TRY(gf_args(ctx, k, "act_jacobian_rows", "mmmuifu", z, in, out, (unsigned)n, (int)a.kind,
                       (double)a.slope, len));
        return gf_launch1(ctx, k, "act_jacobian_rows", (n + len - 1) / len);
    }
    GF_TRY(gf_kernel(ctx, "act", NULL, "act_jacobian", &k));
    GF_TRY(gf_args(ctx, k, "act_jacobian", "mmmuif", z, in, out, (unsigned)n, (int)a.kind,
                   (double)a.slope));
    return gf_launch1(ctx, k, "act_jacobian", n);
}

gf_status gf_act_tangent(gf_ctx *ctx, gf_act a, size_t n, cl_mem z_pre, cl_mem t_in, cl_mem t_out) {
    return act_jac(ctx, a, n, z_pre, t_in, t_out, "activation tangent");
}

gf_status gf_act_backward(gf_ctx *ctx, gf_act a, size_t n, cl_mem z_pre, cl_mem g_out, cl_mem g_in) {
    return act_jac(ctx, a, n, z_pre, g_out, g_in, "activation backward");
}

int gf_act_smooth(gf_act_kind k) { return k != GF_ACT_RELU && k != GF_ACT_LEAKY && k != GF_ACT_RELU6; }

int gf_act_parse(const char *name) {
    if (!name) return -1;
    if (!strcmp(name, "relu")) return GF_ACT_RELU;
    if (!strcmp(name, "relu6")) return GF_ACT_RELU6;
    if (!strcmp(name, "leaky") || !strcmp(name, "leakyrelu") || !strcmp(name, "leaky_relu"))
        return GF_ACT_LEAKY;
    if (!strcmp(name, "sigmoid")) return GF_ACT_SIGMOID;
    if (!strcmp(name, "silu") || !strcmp(name, "swish")) return GF_ACT_SILU;
    if (!strcmp(name, "hardsigmoid")) return GF_ACT_HSIGMOID;
    if (!strcmp(name, "hardswish")) return GF_ACT_HSWISH;
    if (!strcmp(name, "gelu")) return GF_ACT_GELU;
    if (!strcmp(name, "gelu_tanh")) return GF_ACT_GELU_TANH;
    return -1;
}

const char *gf_act_name(gf_act_kind k) {
    switch (k) {
    case GF_ACT_RELU: return "relu";
    case GF_ACT_LEAKY: return "leaky_relu";
    case GF_ACT_RELU6: return "relu6";
    case GF_ACT_SIGMOID: return "sigmoid";
    case GF_ACT_SILU: return "silu";
    case GF_ACT_HSIGMOID: return "hardsigmoid";
    case GF_ACT_HSWISH: return "hardswish";
    case GF_ACT_GELU: return "gelu";
    case GF_ACT_GELU_TANH: return "gelu_tanh";
    case GF_ACT_COUNT: break;
    }
    return "?";
}
