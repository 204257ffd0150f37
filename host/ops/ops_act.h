/* Pointwise nonlinearities: forward, tangent (JVP) and backward (VJP) side by
 * side (kernels and formulas in cl/act.cl). The tangent and the backward use
 * sigma'(z_pre) at the PRIMAL pre-activation, constant in the linearized model
 * (no second-order terms):
 *   ReLU      1[z > 0]
 *   Leaky     1 for z > 0, slope otherwise
 *   ReLU6     1[0 < z < 6]
 *   sigmoid   s(1 - s);  SiLU  s(1 + z(1 - s))        (s = sigmoid(z))
 *   hsigmoid  slope on 0 < slope z + 1/2 < 1         (clamp(slope z + 1/2, 0, 1))
 *   hswish    0 / z/3 + 1/2 / 1 below -3 / on [-3, 3] / above 3   (z relu6(z + 3)/6)
 *   GELU      Phi(z) + z phi(z);  GELU-tanh: the derivative of its tanh formula
 * For ReLU, ReLU6 and Leaky with slope >= 0 the output y = sigma(z) gives the
 * same mask as z (y > 0 iff z > 0; 0 < y < 6 iff 0 < z < 6), so after an
 * in-place forward the caller may pass y as `z_pre`; the smooth and hard
 * kinds (gf_act_smooth) need the real pre-activation. All launchers work in
 * place (out may equal in) and only enqueue work. */
#ifndef GF_OPS_ACT_H
#define GF_OPS_ACT_H
#include "gf_internal.h"

typedef enum gf_act_kind {
    GF_ACT_RELU = 0, GF_ACT_LEAKY = 1, GF_ACT_RELU6 = 2, GF_ACT_SIGMOID = 3, GF_ACT_SILU = 4,
    GF_ACT_HSIGMOID = 5, GF_ACT_HSWISH = 6, GF_ACT_GELU = 7, GF_ACT_GELU_TANH = 8, GF_ACT_COUNT
} gf_act_kind;

typedef struct gf_act {
    gf_act_kind kind;
    float slope;        /* LeakyReLU: slope on negatives (PyTorch default 0.01); hsigmoid: alpha in
                           clamp(alpha z + 1/2, 0, 1) (PyTorch 1/6, ONNX's default 0.2) */
} gf_act;

/* The hard sigmoid of PyTorch (nn.Hardsigmoid): relu6(z + 3) / 6. */
#define GF_ACT_HSIGMOID_TORCH ((gf_act){GF_ACT_HSIGMOID, 1.0f / 6.0f})
/* 1 for kinds whose derivative cannot be read off the output (everything but ReLU, ReLU6, Leaky). */
int gf_act_smooth(gf_act_kind k);

/* y = sigma(z), n floats. y may be z. */
gf_status gf_act_forward(gf_ctx *ctx, gf_act a, size_t n, cl_mem z, cl_mem y);
/* t_out = t_in * sigma'(z_pre). t_out may be t_in. */
gf_status gf_act_tangent(gf_ctx *ctx, gf_act a, size_t n, cl_mem z_pre, cl_mem t_in, cl_mem t_out);
/* g_in = g_out * sigma'(z_pre) (the Jacobian is diagonal, so the same mask). g_in may be g_out. */
gf_status gf_act_backward(gf_ctx *ctx, gf_act a, size_t n, cl_mem z_pre, cl_mem g_out, cl_mem g_in);

/* "relu", "relu6", "leaky"/"leakyrelu"/"leaky_relu", "sigmoid", "silu"/"swish", "hardsigmoid",
 * "hardswish", "gelu", "gelu_tanh" -> kind; -1 if unknown. gf_act_name gives the first spelling
 * (the model format's op name; "leaky_relu" for Leaky). */
int gf_act_parse(const char *name);
const char *gf_act_name(gf_act_kind k);


#endif
