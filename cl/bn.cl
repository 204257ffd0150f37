/* BatchNorm, NCHW: channel c of sample i is the plane x[(i*C + c)*hw ...].
 * The statistics kernels run one work-group of L lanes (a power of two) per
 * channel: each lane sums its share of the channel's values in a fixed order
 * (WALK_BEGIN) and the lanes' partial sums meet in wg_sum's fixed tree
 * (cl/common.cl), so the result is bitwise reproducible for a given L and walk. */

/* The lane's walk over its values of channel c, m = i*hw + s in increasing
 * order, in runs of consecutive floats within one (sample, channel) plane.
 * blocked (CPU devices): lane l takes the contiguous chunk [l*chunk,
 * (l+1)*chunk), so each work-item streams through memory in long runs that
 * vectorise; strided (GPUs): lane l takes l, l+L, ... (runs of 1), so
 * neighbouring lanes read neighbouring floats. No division per value.
 * Needs l, L, n, hw, C, c and blocked in scope; the body sees `at`. */
#define WALK_BEGIN WALK_RANGE_BEGIN(0u, n * hw)
/* The same walk over the values m0 .. m0 + count - 1 of the channel (a segment, bn_seg_sums). */
#define WALK_RANGE_BEGIN(m0, count) { \
    const uint M_ = (count), chunk_ = (M_ + L - 1) / L, end_ = (m0) + M_; \
    const uint m_ = (m0) + (blocked ? l * chunk_ : l); \
    uint left_ = m_ >= end_ ? 0u : (blocked ? min(chunk_, end_ - m_) : (end_ - m_ + L - 1) / L); \
    const uint q_ = L / hw, r_ = L % hw; \
    uint i_ = m_ / hw, s_ = m_ % hw; \
    while (left_ > 0) { \
        const uint run_ = blocked ? min(left_, hw - s_) : 1u; \
        const size_t base_ = ((size_t)i_ * C + c) * hw; \
        for (size_t at = base_ + s_; at < base_ + s_ + run_; at++) {
#define WALK_END } \
        left_ -= run_; \
        if (blocked) { s_ += run_; if (s_ == hw) { s_ = 0; i_++; } } \
        else { s_ += r_; i_ += q_; if (s_ >= hw) { s_ -= hw; i_++; } } \
    } }

/* Training forward for channel c = group id. Two passes for the variance
 * (mean first, then squared deviations: no E[x^2] - E[x]^2 cancellation).
 * Values are taken relative to the channel's first value x0, so that a large
 * common offset costs no precision: (x - x0) is exact for nearby values and
 * x - mean = (x - x0) - dmean. unbias = M/(M-1) for the running variance. */
kernel void bn_train_forward(global const float *x, global const float *gamma, global const float *beta,
                             global float *rmean, global float *rvar, global float *y,
                             global float *smean, global float *sinvstd,
                             uint n, uint C, uint hw, float eps, float momentum, float unbias,
                             int update_running, int save, int blocked, local float *red)
{
    uint c = (uint)get_group_id(0);
    uint l = (uint)get_local_id(0), L = (uint)get_local_size(0);
    float invM = 1.0f / ((float)n * (float)hw);
    float x0 = x[(size_t)c * hw];
    float acc = 0.0f;
    WALK_BEGIN acc += x[at] - x0; WALK_END
    float dmean = wg_sum(red, acc) * invM;
    acc = 0.0f;
    WALK_BEGIN float d = (x[at] - x0) - dmean; acc += d * d; WALK_END
    float var = wg_sum(red, acc) * invM;
    float invstd = 1.0f / sqrt(var + eps);
    float a = invstd * gamma[c], b = beta[c];
    WALK_BEGIN y[at] = ((x[at] - x0) - dmean) * a + b; WALK_END
    if (l == 0) {
        float mean = x0 + dmean;
        if (save) {
            smean[c] = mean;
            sinvstd[c] = invstd;
        }
        if (update_running) {
            rmean[c] = (1.0f - momentum) * rmean[c] + momentum * mean;
            rvar[c] = (1.0f - momentum) * rvar[c] + momentum * (var * unbias);
        }
    }
}

/* Eval forward: elementwise with the running statistics; y may alias x. */
kernel void bn_eval_forward(global const float *x, global const float *gamma, global const float *beta,
                            global const float *rmean, global const float *rvar, global float *y,
                            uint total, uint C, uint hw, float eps)
{
    size_t k = get_global_id(0);
    if (k >= total) return;
    uint c = (uint)((k / hw) % C);
    float a = gamma[c] / sqrt(rvar[c] + eps);
    y[k] = (x[k] - rmean[c]) * a + beta[c];
}

/* Backward for channel c = group id. train = 1: stat = saved invstd, mean =
 * saved batch mean, dx through the batch statistics; train = 0: mean/stat =
 * running mean/var, dx = dy * gamma * invstd. dgamma = sum(dy * xhat), dbeta =
 * sum(dy) (added to the old values when accumulate). */
kernel void bn_backward(global const float *x, global const float *dy, global const float *gamma,
                        global const float *mean_in, global const float *stat, global float *dx,
                        global float *dgamma, global float *dbeta,
                        uint n, uint C, uint hw, int train, float eps, int has_dx, int has_dparams,
                        int accumulate, int blocked, local float *ra, local float *rb)
{
    uint c = (uint)get_group_id(0);
    uint l = (uint)get_local_id(0), L = (uint)get_local_size(0);
    float mean = mean_in[c];
    float invstd = train ? stat[c] : 1.0f / sqrt(stat[c] + eps);
    float k = gamma[c] * invstd;
    /* The reduction runs even when only an eval-mode dx is wanted: barriers
     * stay outside branches (with the barrier inside a uniform branch, PoCL 3.1
     * wrote dx out of bounds). */
    float sdy = 0.0f, sdyx = 0.0f;
    WALK_BEGIN float g = dy[at]; sdy += g; sdyx += g * ((x[at] - mean) * invstd); WALK_END
    float2 t = wg_sum2(ra, rb, sdy, sdyx);
    if (has_dparams && l == 0) {
        store_acc(dgamma + c, accumulate, t.y);
        store_acc(dbeta + c, accumulate, t.x);
    }
    if (has_dx) {
        float invM = 1.0f / ((float)n * (float)hw);
        float mdy = t.x * invM, mdyx = t.y * invM;
        if (train) {
            WALK_BEGIN dx[at] = k * (dy[at] - mdy - (x[at] - mean) * invstd * mdyx); WALK_END
        } else {
            WALK_BEGIN dx[at] = k * dy[at]; WALK_END
        }
    }
}

/* Several processes (host/graph/block.c, gf_block_set_bn_sync): the batch statistics of a batch split
 * over ranks come from per-channel partial sums that the host adds over the ranks. The mean is kept as
 * a float pair hi + lo (hi the float nearest the mean), so that x - hi is exact for values near the mean
 * and a large common offset costs no precision (as x0 in bn_train_forward).
 * bn_sums: out[c] = sum(x - s), out[C + c] = sum((x - s)^2) over this shard's values of channel c, with
 * s = shift[c], or (own) the shard's first value of the channel, then written to out[2C + c]. */
kernel void bn_sums(global const float *x, global const float *shift, global float *out,
                    uint n, uint C, uint hw, int own, int blocked, local float *ra, local float *rb)
{
    uint c = (uint)get_group_id(0);
    uint l = (uint)get_local_id(0), L = (uint)get_local_size(0);
    float s = own ? x[(size_t)c * hw] : shift[c], a = 0.0f, b = 0.0f;
    WALK_BEGIN float d = x[at] - s; a += d; b += d * d; WALK_END
    float2 t = wg_sum2(ra, rb, a, b);
    if (l == 0) {
        out[c] = t.x;
        out[C + c] = t.y;
        if (own) out[2 * C + c] = s;
    }
}

/* y = ((x - hi[c]) - lo[c]) * invstd[c] * gamma[c] + beta[c]: the training forward with given statistics. */
kernel void bn_apply(global const float *x, global const float *gamma, global const float *beta,
                     global const float *hi, global const float *lo, global const float *invstd, global float *y,
                     uint total, uint C, uint hw)
{
    size_t k = get_global_id(0);
    if (k >= total) return;
    uint c = (uint)((k / hw) % C);
    y[k] = ((x[k] - hi[c]) - lo[c]) * (invstd[c] * gamma[c]) + beta[c];
}

/* The training backward's dx with given sums over the whole batch of M values per channel:
 * sums[c] = sum(dy), sums[C + c] = sum(dy * xhat), xhat = ((x - hi) - lo) * invstd. */
kernel void bn_backward_dx(global const float *x, global const float *dy, global const float *gamma,
                           global const float *hi, global const float *lo, global const float *invstd,
                           global const float *sums, global float *dx, uint total, uint C, uint hw, float invM,
                           int train)
{
    size_t k = get_global_id(0);
    if (k >= total) return;
    uint c = (uint)((k / hw) % C);
    float is = invstd[c];
    dx[k] = train ? gamma[c] * is * (dy[k] - sums[c] * invM - ((x[k] - hi[c]) - lo[c]) * is * (sums[C + c] * invM))
                  : gamma[c] * is * dy[k];    /* eval mode: the statistics are constants */
}

/* Two levels, for channels too large for one work-group (host/ops/ops_bn.c, bn_plan): on a device whose
 * work-group limit is low (llvmpipe: 32) a lane of the one-group kernels above would walk more values than
 * the item budget allows. The channel's M = n*hw values are cut into S segments of seg values; work-group
 * g = c*S + s walks segment s of channel c like the kernels above and writes its pair of sums to
 * part[2g], part[2g + 1]; a finishing kernel adds a channel's S pairs in segment order (fixed order:
 * bitwise reproducible), then bn_apply / bn_backward_dx do the element-wise part.
 * mode 0: sum(x - x0), x0 the channel's first value; 1: sum(((x - x0) - u[c])^2), u the mean's offset
 * from x0; 2: sum(dy) and sum(dy * (x - u[c]) * invstd), invstd = v[c] (train) or 1/sqrt(v[c] + eps);
 * 3: sum(x - s) and sum((x - s)^2), s = u[c] or (own) x0 (bn_sums' two sums). */
kernel void bn_seg_sums(global const float *x, global const float *dy, global const float *u,
                        global const float *v, global float *part, uint n, uint C, uint hw, uint S, uint seg,
                        int mode, int train, float eps, int own, int blocked, local float *ra, local float *rb)
{
    uint g = (uint)get_group_id(0), c = g / S, s = g % S;
    uint l = (uint)get_local_id(0), L = (uint)get_local_size(0);
    uint M = n * hw, m0 = min(M, s * seg), count = min(seg, M - m0);
    float x0 = x[(size_t)c * hw], a = 0.0f, b = 0.0f;
    if (mode == 0) {
        WALK_RANGE_BEGIN(m0, count) a += x[at] - x0; WALK_END
    } else if (mode == 1) {
        float dm = u[c];
        WALK_RANGE_BEGIN(m0, count) float d = (x[at] - x0) - dm; a += d * d; WALK_END
    } else if (mode == 2) {
        float mean = u[c], is = train ? v[c] : 1.0f / sqrt(v[c] + eps);
        WALK_RANGE_BEGIN(m0, count) float q = dy[at]; a += q; b += q * ((x[at] - mean) * is); WALK_END
    } else {
        float sh = own ? x0 : u[c];
        WALK_RANGE_BEGIN(m0, count) float d = x[at] - sh; a += d; b += d * d; WALK_END
    }
    float2 t = wg_sum2(ra, rb, a, b);
    if (l == 0) {
        part[2 * (size_t)g] = t.x;
        part[2 * (size_t)g + 1] = t.y;
    }
}

/* Channel c's S pairs of part, added in segment order: a pair of sums. */
float2 seg_total(global const float *part, uint c, uint S)
{
    float a = 0.0f, b = 0.0f;
    for (uint s = 0; s < S; s++) {
        a += part[2 * ((size_t)c * S + s)];
        b += part[2 * ((size_t)c * S + s) + 1];
    }
    return (float2)(a, b);
}

/* After mode 0, one item per channel: x0[c] = the first value, dmean[c] = the mean's offset from it. */
kernel void bn_seg_mean(global const float *x, global const float *part, global float *x0, global float *dmean,
                        uint C, uint hw, uint S, float invM)
{
    uint c = (uint)get_global_id(0);
    if (c >= C) return;
    x0[c] = x[(size_t)c * hw];
    dmean[c] = seg_total(part, c, S).x * invM;
}

/* After mode 1: invstd[c], and the saved / running statistics as bn_train_forward writes them. */
kernel void bn_seg_var(global const float *part, global const float *x0, global const float *dmean,
                       global float *invstd, global float *rmean, global float *rvar, global float *smean,
                       global float *sinvstd, uint C, uint S, float invM, float eps, float momentum, float unbias,
                       int update_running, int save)
{
    uint c = (uint)get_global_id(0);
    if (c >= C) return;
    float var = seg_total(part, c, S).x * invM, is = 1.0f / sqrt(var + eps), mean = x0[c] + dmean[c];
    invstd[c] = is;
    if (save) {
        smean[c] = mean;
        sinvstd[c] = is;
    }
    if (update_running) {
        rmean[c] = (1.0f - momentum) * rmean[c] + momentum * mean;
        rvar[c] = (1.0f - momentum) * rvar[c] + momentum * (var * unbias);
    }
}

/* After mode 2: dgamma, dbeta as bn_backward writes them; for bn_backward_dx the sums (train), lo = 0 and
 * invstd (eval: from the running variance). */
kernel void bn_seg_grad(global const float *part, global const float *stat, global float *dgamma,
                        global float *dbeta, global float *sums, global float *lo, global float *invstd,
                        uint C, uint S, int train, float eps, int has_dparams, int accumulate)
{
    uint c = (uint)get_global_id(0);
    if (c >= C) return;
    float2 t = seg_total(part, c, S);
    if (has_dparams) {
        store_acc(dgamma + c, accumulate, t.y);
        store_acc(dbeta + c, accumulate, t.x);
    }
    sums[c] = t.x;
    sums[C + c] = t.y;
    lo[c] = 0.0f;
    invstd[c] = train ? stat[c] : 1.0f / sqrt(stat[c] + eps);
}

/* After mode 3: bn_sums' output, out[c], out[C + c] and (own) the shift out[2C + c]. */
kernel void bn_seg_pair(global const float *x, global const float *part, global float *out, uint C, uint hw,
                        uint S, int own)
{
    uint c = (uint)get_global_id(0);
    if (c >= C) return;
    float2 t = seg_total(part, c, S);
    out[c] = t.x;
    out[C + c] = t.y;
    if (own) out[2 * C + c] = x[(size_t)c * hw];
}
