/* Layer normalization over channels at every pixel (ConvNeXt's channels-last
 * LayerNorm, without its affine part: converters write that as a depthwise
 * 1x1 conv after it, so its scale and shift are ordinary tangent parameters).
 * Layout [N, C, HW]; one work-item per (n, pixel), loops over C (three passes:
 * the mean, the variance around it, the output), so 3 C loop steps per item.
 *   y = (x - mu) / s,   mu = mean_c x,   s = sqrt(mean_c (x - mu)^2 + eps)
 * Its Jacobian J = (I - 1 1^T / C - y y^T / C) / s is symmetric, so the tangent
 * and the backward are the same kernel:
 *   out = (in - mean_c(in) - y mean_c(y in)) / s   (statistics of the PRIMAL x). */

void ln_stats(global const float *x, size_t base, uint C, uint HW, float eps, float *mu, float *s)
{
    float acc = 0.0f;
    for (uint c = 0; c < C; c++) acc += x[base + (size_t)c * HW];
    float m = acc / (float)C;
    float v = 0.0f;
    for (uint c = 0; c < C; c++) { float d = x[base + (size_t)c * HW] - m; v += d * d; }
    *mu = m;
    *s = sqrt(v / (float)C + eps);
}

kernel void ln_forward(global const float *x, global float *y, uint N, uint C, uint HW, float eps)
{
    size_t g = get_global_id(0);
    if (g >= (size_t)N * HW) return;
    size_t n = g / HW, p = g % HW, base = n * (size_t)C * HW + p;
    float mu, s;
    ln_stats(x, base, C, HW, eps, &mu, &s);
    for (uint c = 0; c < C; c++) y[base + (size_t)c * HW] = (x[base + (size_t)c * HW] - mu) / s;
}

kernel void ln_jacobian(global const float *x, global const float *in, global float *out, uint N, uint C, uint HW,
                        float eps)
{
    size_t g = get_global_id(0);
    if (g >= (size_t)N * HW) return;
    size_t n = g / HW, p = g % HW, base = n * (size_t)C * HW + p;
    float mu, s;
    ln_stats(x, base, C, HW, eps, &mu, &s);
    float a = 0.0f, b = 0.0f;
    for (uint c = 0; c < C; c++) {
        size_t i = base + (size_t)c * HW;
        float v = in[i];
        a += v;
        b += (x[i] - mu) / s * v;
    }
    a /= (float)C;
    b /= (float)C;
    for (uint c = 0; c < C; c++) {
        size_t i = base + (size_t)c * HW;
        out[i] = (in[i] - a - (x[i] - mu) / s * b) / s;
    }
}
