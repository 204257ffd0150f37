/* Pointwise nonlinearities (ReLU, LeakyReLU, ReLU6): forward, tangent (JVP)
 * and backward (VJP) side by side. The tangent and the backward use the mask
 * sigma'(z_pre) of the PRIMAL pre-activation, constant in the linearized
 * model (no second-order terms):
 *   ReLU   1[z > 0]
 *   Leaky  1 for z > 0, slope otherwise
 *   ReLU6  1[0 < z < 6]
 * For slope >= 0 the output y = sigma(z) gives the same mask as z (y > 0 iff
 * z > 0; 0 < y < 6 iff 0 < z < 6), so after an in-place forward the caller
 * may pass y as `z_pre`. All launchers work in place (out may equal in) and
 * only enqueue work. */
#ifndef GF_OPS_ACT_H
#define GF_OPS_ACT_H
#include "gf_internal.h"

typedef enum gf_act_kind { GF_ACT_RELU = 0, GF_ACT_LEAKY = 1, GF_ACT_RELU6 = 2 } gf_act_kind;

typedef struct gf_act {
    gf_act_kind kind;
    float slope;        /* LeakyReLU only: slope on negatives (PyTorch default 0.01) */
} gf_act;

/* y = sigma(z), n floats. y may be z. */
gf_status gf_act_forward(gf_ctx *ctx, gf_act a, size_t n, cl_mem z, cl_mem y);
/* t_out = t_in * sigma'(z_pre). t_out may be t_in. */
gf_status gf_act_tangent(gf_ctx *ctx, gf_act a, size_t n, cl_mem z_pre, cl_mem t_in, cl_mem t_out);
/* g_in = g_out * sigma'(z_pre) (the Jacobian is diagonal, so the same mask). g_in may be g_out. */
gf_status gf_act_backward(gf_ctx *ctx, gf_act a, size_t n, cl_mem z_pre, cl_mem g_out, cl_mem g_in);

/* "relu", "relu6", "leaky"/"leakyrelu" -> kind; -1 if unknown. */
int gf_act_parse(const char *name);
const char *gf_act_name(gf_act_kind k);


#endif
