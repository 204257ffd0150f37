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
#define WALK_BEGIN { \
    const uint M_ = n * hw, chunk_ = (M_ + L - 1) / L, m_ = blocked ? l * chunk_ : l; \
    uint left_ = m_ >= M_ ? 0u : (blocked ? min(chunk_, M_ - m_) : (M_ - m_ + L - 1) / L); \
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
                           global const float *sums, global float *dx, uint total, uint C, uint hw, float invM)
{
    size_t k = get_global_id(0);
    if (k >= total) return;
    uint c = (uint)((k / hw) % C);
    float is = invstd[c];
    dx[k] = gamma[c] * is * (dy[k] - sums[c] * invM - ((x[k] - hi[c]) - lo[c]) * is * (sums[C + c] * invM));
}
