/* Optimiser updates on flat parameter vectors, PyTorch semantics, and the
 * gradient's squared norm for norm clipping. Clipping needs no host read:
 * the update kernels read the squared norm from a device buffer and scale the
 * gradient by min(1, max_norm / (norm + 1e-6)) (torch.nn.utils.clip_grad_norm_).
 * Weight decay is L2 added to the gradient, optionally toward a reference:
 * g += wd * (p - ref) (ref = 0 when has_ref == 0). */

float clip_scale(global const float *sqn, int has_clip, float max_norm)
{
    if (!has_clip) return 1.0f;
    float c = max_norm / (sqrt(sqn[0]) + 1e-6f);
    return c < 1.0f ? c : 1.0f;
}

/* SGD with momentum (dampening 0, no Nesterov): v = mu*v + g; p -= lr*v.
 * Without momentum (has_v == 0): p -= lr*g. */
kernel void sgd_step(global float *p, global const float *g, global float *v, global const float *ref,
                     global const float *sqn, uint n, int has_v, int has_ref, int has_clip,
                     float lr, float mu, float wd, float max_norm)
{
    size_t i = get_global_id(0);
    if (i >= n) return;
    float pi = p[i];
    float gi = g[i] * clip_scale(sqn, has_clip, max_norm);
    if (wd != 0.0f) gi += wd * (has_ref ? pi - ref[i] : pi);
    if (has_v) {
        gi = mu * v[i] + gi;
        v[i] = gi;
    }
    p[i] = pi - lr * gi;
}

/* Adam (torch.optim.Adam, amsgrad off): m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2;
 * p -= step_size * m / (sqrt(v) / bc2_sqrt + eps), step_size = lr / (1 - b1^t),
 * bc2_sqrt = sqrt(1 - b2^t), both computed on the host in double. */
kernel void adam_step(global float *p, global const float *g, global float *m, global float *v,
                      global const float *ref, global const float *sqn, uint n, int has_ref,
                      int has_clip, float step_size, float b1, float b2, float eps, float wd,
                      float bc2_sqrt, float max_norm)
{
    size_t i = get_global_id(0);
    if (i >= n) return;
    float pi = p[i];
    float gi = g[i] * clip_scale(sqn, has_clip, max_norm);
    if (wd != 0.0f) gi += wd * (has_ref ? pi - ref[i] : pi);
    float mi = b1 * m[i] + (1.0f - b1) * gi;
    float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = pi - step_size * (mi / (sqrt(vi) / bc2_sqrt + eps));
}

/* Sum of squares, stage 1: work-group j of G reduces the contiguous chunk
 * [j*chunk, min(n, (j+1)*chunk)) into part[j]; fixed lane order and tree (wg_sum). */
kernel void sqnorm_partial(global const float *g, global float *part, uint n, uint chunk,
                           local float *red)
{
    uint l = (uint)get_local_id(0), L = (uint)get_local_size(0);
    size_t j = get_group_id(0);
    size_t lo = j * (size_t)chunk, hi = lo + chunk;
    if (hi > n) hi = n;
    float acc = 0.0f;
    for (size_t i = lo + l; i < hi; i += L) acc += g[i] * g[i];
    float s = wg_sum(red, acc);
    if (l == 0) part[j] = s;
}

/* Stage 2 (one work-group): out[off] (+)= sum of the G partials. */
kernel void sqnorm_final(global const float *part, global float *out, uint G, uint off,
                         int accumulate, local float *red)
{
    uint l = (uint)get_local_id(0), L = (uint)get_local_size(0);
    float acc = 0.0f;
    for (uint i = l; i < G; i += L) acc += part[i];
    float s = wg_sum(red, acc);
    if (l == 0) store_acc(out + off, accumulate, s);
}

/* g *= min(1, max_norm / (sqrt(sqn[0]) + 1e-6)), for callers that clip
 * before something other than these update kernels. */
kernel void clip_apply(global float *g, global const float *sqn, uint n, float max_norm)
{
    size_t i = get_global_id(0);
    if (i >= n) return;
    g[i] *= clip_scale(sqn, 1, max_norm);
}
