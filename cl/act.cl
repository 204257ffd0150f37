/* Pointwise nonlinearities: forward, and the diagonal Jacobian sigma'(z_pre)
 * applied to a tangent (JVP) or a gradient (VJP) — the same operation, since
 * the Jacobian is diagonal. The mask always comes from the PRIMAL
 * pre-activation z (or, equivalently for slope >= 0, from the output y).
 * NaN propagates through the forward (NaN in, NaN out, as in PyTorch).
 * Elementwise: out may alias in. */

#define ACT_RELU 0
#define ACT_LEAKY 1
#define ACT_RELU6 2

kernel void act_forward(global const float *z, global float *y, uint n, int kind, float slope)
{
    size_t i = get_global_id(0);
    if (i >= n) return;
    float v = z[i];
    float r;
    if (kind == ACT_RELU) r = (v <= 0.0f) ? 0.0f : v;
    else if (kind == ACT_LEAKY) r = (v <= 0.0f) ? slope * v : v;
    else r = (v <= 0.0f) ? 0.0f : ((v >= 6.0f) ? 6.0f : v);
    y[i] = r;
}

/* out = in * sigma'(z). A select, not a product with the mask, so that an
 * infinite gradient behind a closed mask gives 0 (PyTorch's threshold_backward). */
kernel void act_jacobian(global const float *z, global const float *in, global float *out,
                         uint n, int kind, float slope)
{
    size_t i = get_global_id(0);
    if (i >= n) return;
    float v = z[i];
    float g = in[i];
    float r;
    if (kind == ACT_RELU) r = (v > 0.0f) ? g : 0.0f;
    else if (kind == ACT_LEAKY) r = (v > 0.0f) ? g : slope * g;
    else r = (v > 0.0f && v < 6.0f) ? g : 0.0f;
    out[i] = r;
}
