/* Layer normalization over channels (kernels and formulas in cl/ln.cl):
 * y = (x - mean_c x) / sqrt(var_c x + eps) at every pixel of [N, C, H, W],
 * without a learnable affine part (a depthwise 1x1 conv after it carries
 * that). Forward, tangent (JVP) and backward (VJP) side by side; the tangent
 * and the backward apply the same symmetric Jacobian at the PRIMAL input x.
 * Each work item loops 3 C times (C <= item budget / 3). Out may not alias in. */
#ifndef GF_OPS_LN_H
#define GF_OPS_LN_H
#include "gf_internal.h"

gf_status gf_ln_forward(gf_ctx *ctx, size_t N, int C, size_t HW, float eps, cl_mem x, cl_mem y);
/* t_out = J(x) t_in */
gf_status gf_ln_tangent(gf_ctx *ctx, size_t N, int C, size_t HW, float eps, cl_mem x, cl_mem t_in, cl_mem t_out);
/* g_in = J(x)^T g_out (= J(x) g_out) */
gf_status gf_ln_backward(gf_ctx *ctx, size_t N, int C, size_t HW, float eps, cl_mem x, cl_mem g_out, cl_mem g_in);
#endif
