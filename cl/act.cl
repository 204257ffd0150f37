/* Pointwise nonlinearities: forward, and the diagonal Jacobian sigma'(z_pre)
 * applied to a tangent (JVP) or a gradient (VJP) — the same operation, since
 * the Jacobian is diagonal. sigma' is always evaluated at the PRIMAL
 * pre-activation z (for ReLU/leaky (slope >= 0)/ReLU6 the output y gives the
 * same mask; for the smooth kinds it does not: pass z).
 * NaN propagates through the forward (NaN in, NaN out, as in PyTorch).
 * Elementwise: out may alias in. fp32, no fast-math.
 *
 *   sigmoid    1 / (1 + e^-z)                      s (1 - s)
 *   silu       z s(z)                              s (1 + z (1 - s))
 *   hsigmoid   clamp(a z + 1/2, 0, 1)              a on 0 < a z + 1/2 < 1, else 0
 *              (a = slope: PyTorch 1/6, ONNX's and old Keras's default 0.2)
 *   hswish     z clamp(z + 3, 0, 6) / 6            0 (z < -3), z/3 + 1/2 (-3 <= z <= 3), 1 (z > 3)
 *              (PyTorch's formula and its one-sided choices at the kinks)
 *   gelu       z Phi(z), Phi(z) = erfc(-z/sqrt2)/2 Phi(z) + z phi(z)   (erfc: no cancellation for z << 0)
 *   gelu_tanh  z (1 + tanh(k (z + c z^3))) / 2     (1 + t)/2 + z (1 - t^2) k (1 + 3 c z^2) / 2,
 *              k = sqrt(2/pi), c = 0.044715; computed as z sigmoid(2u), u = k (z + c z^3), since
 *              1 + tanh u cancels for z << 0 (a one-ulp tanh gave -2.4e-7 instead of -1e-28 at z = -9) */

#define ACT_RELU 0
#define ACT_LEAKY 1
#define ACT_RELU6 2
#define ACT_SIGMOID 3
#define ACT_SILU 4
#define ACT_HSIGMOID 5
#define ACT_HSWISH 6
#define ACT_GELU 7
#define ACT_GELU_TANH 8

#define GELU_K 0.7978845608028654f   /* sqrt(2/pi) */
#define GELU_C 0.044715f
#define INV_SQRT2 0.7071067811865476f
#define INV_SQRT_2PI 0.3989422804014327f

float sigm(float v) { return 1.0f / (1.0f + exp(-v)); }

/* sigma(v) of one element */
float act_value(float v, int kind, float slope)
{
    float r;
    if (kind == ACT_RELU) r = (v <= 0.0f) ? 0.0f : v;
    else if (kind == ACT_LEAKY) r = (v <= 0.0f) ? slope * v : v;
    else if (kind == ACT_RELU6) r = (v <= 0.0f) ? 0.0f : ((v >= 6.0f) ? 6.0f : v);
    else if (kind == ACT_SIGMOID) r = sigm(v);
    else if (kind == ACT_SILU) r = v * sigm(v);
    else if (kind == ACT_HSIGMOID) r = fmin(fmax(slope * v + 0.5f, 0.0f), 1.0f);
    else if (kind == ACT_HSWISH) r = v * fmin(fmax(v + 3.0f, 0.0f), 6.0f) / 6.0f;
    else if (kind == ACT_GELU) r = v * (0.5f * erfc(-v * INV_SQRT2));
    else r = v * sigm(2.0f * GELU_K * (v + GELU_C * v * v * v));   /* (1 + tanh u)/2 = sigmoid(2u) */
    if (kind >= ACT_SIGMOID && isnan(v)) r = v;
    return r;
}

kernel void act_forward(global const float *z, global float *y, uint n, int kind, float slope)
{
    size_t i = get_global_id(0);
    if (i >= n) return;
    y[i] = act_value(z[i], kind, slope);
}

/* act_forward on CPU devices: an item per run of `len` elements (a multiple of 8); the piecewise-linear kinds
 * eight at a time in selects (the kind tested once per run, not per element: PoCL left the per-element kernel
 * scalar), the same values as act_value; the other kinds element by element. In place is fine: each vector is
 * loaded before it is stored. */
kernel void act_forward_rows(global const float *z, global float *y, uint n, int kind, float slope, uint len)
{
    size_t i = get_global_id(0) * (size_t)len, i1 = min((size_t)n, i + len);
    if (i >= n) return;
    float8 zero = (float8)(0.0f), six = (float8)(6.0f);
    if (kind == ACT_RELU)
        for (; i + 8 <= i1; i += 8) { float8 v = vload8(0, z + i); vstore8(select(v, zero, v <= zero), 0, y + i); }
    else if (kind == ACT_LEAKY)
        for (; i + 8 <= i1; i += 8) { float8 v = vload8(0, z + i); vstore8(select(v, slope * v, v <= zero), 0, y + i); }
    else if (kind == ACT_RELU6)
        for (; i + 8 <= i1; i += 8) {
            float8 v = vload8(0, z + i);
            vstore8(select(select(v, six, v >= six), zero, v <= zero), 0, y + i);
        }
    for (; i < i1; i++) y[i] = act_value(z[i], kind, slope);
}

/* out = in * sigma'(z). For the piecewise-linear kinds a select, not a product
 * with the mask, so that an infinite gradient behind a closed mask gives 0
 * (PyTorch's threshold_backward). */
/* sigma'(v) g of one element */
float act_deriv(float v, float g, int kind, float slope)
{
    float r;
    if (kind == ACT_RELU) r = (v > 0.0f) ? g : 0.0f;
    else if (kind == ACT_LEAKY) r = (v > 0.0f) ? g : slope * g;
    else if (kind == ACT_RELU6) r = (v > 0.0f && v < 6.0f) ? g : 0.0f;
    else if (kind == ACT_SIGMOID) { float s = sigm(v); r = g * (s * (1.0f - s)); }
    else if (kind == ACT_SILU) { float s = sigm(v); r = g * (s * (1.0f + v * (1.0f - s))); }
    else if (kind == ACT_HSIGMOID) { float u = slope * v + 0.5f; r = (u > 0.0f && u < 1.0f) ? g * slope : 0.0f; }
    else if (kind == ACT_HSWISH) r = (v < -3.0f) ? 0.0f : ((v <= 3.0f) ? g * (v / 3.0f + 0.5f) : g);
    else if (kind == ACT_GELU)
        r = g * (0.5f * erfc(-v * INV_SQRT2) + v * (INV_SQRT_2PI * exp(-0.5f * v * v)));
    else {   /* s = sigmoid(2u) = (1 + tanh u)/2, 1 - tanh^2 u = 4 s (1 - s) */
        float v2 = v * v;
        float s = sigm(2.0f * GELU_K * (v + GELU_C * v2 * v));
        r = g * (s + 2.0f * v * (s * (1.0f - s)) * GELU_K * (1.0f + 3.0f * GELU_C * v2));
    }
    return r;
}

kernel void act_jacobian(global const float *z, global const float *in, global float *out,
                         uint n, int kind, float slope)
{
    size_t i = get_global_id(0);
    if (i >= n) return;
    out[i] = act_deriv(z[i], in[i], kind, slope);
}

/* act_jacobian on CPU devices, as act_forward_rows */
kernel void act_jacobian_rows(global const float *z, global const float *in, global float *out, uint n, int kind,
                              float slope, uint len)
{
    size_t i = get_global_id(0) * (size_t)len, i1 = min((size_t)n, i + len);
    if (i >= n) return;
    float8 zero = (float8)(0.0f), six = (float8)(6.0f);
    if (kind == ACT_RELU)
        for (; i + 8 <= i1; i += 8) {
            float8 v = vload8(0, z + i), g = vload8(0, in + i);
            vstore8(select(zero, g, v > zero), 0, out + i);
        }
    else if (kind == ACT_LEAKY)
        for (; i + 8 <= i1; i += 8) {
            float8 v = vload8(0, z + i), g = vload8(0, in + i);
            vstore8(select(slope * g, g, v > zero), 0, out + i);
        }
    else if (kind == ACT_RELU6)
        for (; i + 8 <= i1; i += 8) {
            float8 v = vload8(0, z + i), g = vload8(0, in + i);
            vstore8(select(zero, g, (v > zero) & (v < six)), 0, out + i);
        }
    for (; i < i1; i++) out[i] = act_deriv(z[i], in[i], kind, slope);
}
