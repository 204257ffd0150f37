/* Ops that merge two or more tensors (host/ops/ops_merge.c): the gated /
 * elementwise product and channel concatenation, each with its forward,
 * tangent and backward side by side. Layout [N, C, HW] row-major; a "plane"
 * is one (n, c) pair of HW values. fp32, no fast-math. */

/* ---- product y = x * s ----
 * s is either the same shape as x (S = HW: elementwise) or a per-channel gate
 * [N, C, 1, 1] broadcast over the plane (S = 1, squeeze-excitation). */

kernel void mul_forward(global const float *x, global const float *s, global float *y, uint total, uint HW,
                        uint gate)
{
    size_t i = get_global_id(0);
    if (i >= total) return;
    y[i] = x[i] * s[gate ? i / HW : i];
}

/* Product rule t = tx * s + x * ts; a term whose tangent is known to be 0 is
 * left out (has_tx / has_ts = 0; its buffer argument is then not read). */
kernel void mul_tangent(global const float *x, global const float *s, global const float *tx,
                        global const float *ts, global float *t, uint total, uint HW, uint gate,
                        uint has_tx, uint has_ts)
{
    size_t i = get_global_id(0);
    if (i >= total) return;
    size_t si = gate ? i / HW : i;
    float r = 0.0f;
    if (has_tx) r = tx[i] * s[si];
    if (has_ts) r += x[i] * ts[si];
    t[i] = r;
}

/* gx = g * s (elementwise in both modes); for s of x's shape also gs = g * x. */
kernel void mul_backward(global const float *x, global const float *s, global const float *g, global float *gx,
                         global float *gs, uint total, uint HW, uint gate, uint want_gx, uint want_gs)
{
    size_t i = get_global_id(0);
    if (i >= total) return;
    float gi = g[i];
    if (want_gx) gx[i] = gi * s[gate ? i / HW : i];
    if (want_gs && !gate) gs[i] = gi * x[i];
}

/* Gate gradient gs[p] = sum_j g[p, j] x[p, j]: one work-group per plane, each
 * lane a strided partial sum (HW / L iterations), then wg_sum's tree.
 * The host bounds HW / L by the item budget. */
kernel void mul_gate_grad(global const float *x, global const float *g, global float *gs, uint planes, uint HW,
                          local float *red)
{
    size_t p = get_group_id(0);
    uint l = (uint)get_local_id(0), L = (uint)get_local_size(0);
    float acc = 0.0f;
    if (p < planes) {
        global const float *xp = x + p * (size_t)HW, *gp = g + p * (size_t)HW;
        for (uint j = l; j < HW; j += L) acc += gp[j] * xp[j];
    }
    float s = wg_sum(red, acc);
    if (l == 0 && p < planes) gs[p] = s;
}

/* Small planes (HW <= 64, e.g. the 7x7 and 4x4 maps of SE blocks at small
 * inputs): one work-item per plane, sequential sum. */
kernel void mul_gate_grad_small(global const float *x, global const float *g, global float *gs, uint planes,
                                uint HW)
{
    size_t p = get_global_id(0);
    if (p >= planes) return;
    global const float *xp = x + p * (size_t)HW, *gp = g + p * (size_t)HW;
    float acc = 0.0f;
    for (uint j = 0; j < HW; j++) acc += gp[j] * xp[j];
    gs[p] = acc;
}

/* ---- channel concatenation ----
 * dst[n, dst_off + c, j] (=, +=, or = 0) src[n, src_off + c, j] for c < C:
 * the forward and tangent write each input's slice of the output (mode 2
 * zero-fills the slice of an input whose tangent is 0), the backward reads
 * each input's slice of the output gradient (mode 1 adds to a gradient that
 * another consumer already wrote). */
kernel void concat_slice(global const float *src, global float *dst, uint total, uint C, uint HW,
                         uint src_C, uint src_off, uint dst_C, uint dst_off, uint mode)
{
    size_t i = get_global_id(0);
    if (i >= total) return;
    size_t j = i % HW, r = i / HW;
    size_t c = r % C, n = r / C;
    size_t d = (n * dst_C + dst_off + c) * HW + j;
    if (mode == 2) { dst[d] = 0.0f; return; }
    float v = src[(n * src_C + src_off + c) * HW + j];
    if (mode == 1) dst[d] += v;
    else dst[d] = v;
}

/* ---- channel shuffle (ShuffleNet) ----
 * reshape [N, G, C/G, HW] -> transpose the two channel axes -> [N, C, HW]:
 * y[n, k*G + g, j] = x[n, g*(C/G) + k, j]. A permutation of channels, so the
 * tangent is the same gather and the backward the inverse one
 * (gx[n, g*(C/G) + k] (=, +=) g[n, k*G + g]). One work item per output value. */
kernel void channel_shuffle(global const float *src, global float *dst, uint total, uint C, uint HW, uint G,
                            uint inverse, uint accumulate)
{
    size_t i = get_global_id(0);
    if (i >= total) return;
    size_t j = i % HW, r = i / HW;
    size_t c = r % C, n = r / C, cpg = C / G;
    /* forward: c is an output channel k*G + g; inverse: c is an input channel g*cpg + k */
    size_t from = inverse ? (c % cpg) * G + c / cpg : (c % G) * cpg + c / G;
    float v = src[(n * C + from) * HW + j];
    if (accumulate) dst[i] += v;
    else dst[i] = v;
}
