/* Losses on logits [B, K] with the gradient and the batch statistics reduced
 * on the device, so that training reads back only out[0..1].
 * One work-group of L lanes (a power of two) does the whole batch: lane l
 * handles rows (elements) l, l+L, ... in order and the partial sums meet in
 * wg_sum's fixed tree (cl/common.cl) — deterministic for a given L, no float
 * atomics. One launch. */

/* Index of the first maximum of row z[0..K) (*m: the maximum). */
int row_argmax(global const float *z, int K, float *m)
{
    int am = 0;
    *m = z[0];
    for (int k = 1; k < K; k++)
        if (z[k] > *m) { *m = z[k]; am = k; }
    return am;
}

/* Softmax cross-entropy with integer labels. Row loss = log(sum_k exp(z_k - m))
 * - (z_y - m), m = max_k z_k (stable log-sum-exp). Rows whose label is outside
 * [0, K) are ignored (no loss, zero gradient). out[off] (+)= sum of row losses
 * * inv_denom; out[off+1] (+)= number of rows whose first arg-max equals the
 * label. grad (if has_grad) = (softmax(z) - onehot(y)) * inv_denom. */
kernel void softmax_xent(global const float *logits, global const int *labels, global float *grad,
                         global float *out, int B, int K, int has_grad, int accumulate,
                         float inv_denom, uint off, local float *ra, local float *rb)
{
    uint l = (uint)get_local_id(0), L = (uint)get_local_size(0);
    float loss = 0.0f, correct = 0.0f;
    for (int r = (int)l; r < B; r += (int)L) {
        global const float *z = logits + (size_t)r * (size_t)K;
        int y = labels[r];
        int valid = y >= 0 && y < K;
        float m;
        int am = row_argmax(z, K, &m);
        /* s = sum of all exp(z_k - m); so = the same without the label's term,
         * so that the label's gradient p_y - 1 = -so / s has no cancellation
         * when the prediction is confident (p_y near 1). */
        float s = 0.0f, so = 0.0f;
        for (int k = 0; k < K; k++) {
            float e = exp(z[k] - m);
            s += e;
            so += (k == y) ? 0.0f : e;
        }
        if (valid) {
            /* label = arg-max: z_y = m, s = 1 + so, and log1p keeps tiny losses */
            loss += (am == y) ? log1p(so) : log(s) - (z[y] - m);
            correct += (am == y) ? 1.0f : 0.0f;
        }
        if (has_grad) {
            global float *g = grad + (size_t)r * (size_t)K;
            float inv_s = 1.0f / s;
            for (int k = 0; k < K; k++) {
                float d = (k == y) ? -so * inv_s : exp(z[k] - m) * inv_s;
                g[k] = valid ? d * inv_denom : 0.0f;
            }
        }
    }
    float2 sum = wg_sum2(ra, rb, loss, correct);
    if (l == 0) {
        store_acc(out + off, accumulate, sum.x * inv_denom);
        store_acc(out + off + 1, accumulate, sum.y);
    }
}

/* Per-class sigmoid binary cross-entropy, n = B*K elements, targets in [0, 1]
 * (a negative target marks an element to ignore, e.g. VOC "difficult").
 * Element loss = max(z, 0) - z*t + log1p(exp(-|z|)) (softplus form, stable).
 * out[off] (+)= sum * inv_denom; out[off+1] (+)= number of elements with
 * (z > 0) == (t > 0.5). grad = (sigmoid(z) - t) * inv_denom. */
kernel void sigmoid_bce(global const float *logits, global const float *targets, global float *grad,
                        global float *out, uint n, int has_grad, int accumulate, float inv_denom,
                        uint off, local float *ra, local float *rb)
{
    uint l = (uint)get_local_id(0), L = (uint)get_local_size(0);
    float loss = 0.0f, correct = 0.0f;
    for (uint i = l; i < n; i += L) {
        float z = logits[i], t = targets[i];
        int valid = t >= 0.0f;
        if (valid) {
            loss += fmax(z, 0.0f) - z * t + log1p(exp(-fabs(z)));
            correct += ((z > 0.0f) == (t > 0.5f)) ? 1.0f : 0.0f;
        }
        if (has_grad) {
            float e = exp(-fabs(z));          /* in (0, 1]: no overflow */
            float sg = z >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
            grad[i] = valid ? (sg - t) * inv_denom : 0.0f;
        }
    }
    float2 sum = wg_sum2(ra, rb, loss, correct);
    if (l == 0) {
        store_acc(out + off, accumulate, sum.x * inv_denom);
        store_acc(out + off + 1, accumulate, sum.y);
    }
}

/* Number of rows whose first arg-max equals the label: out[off] (+)= count. */
kernel void top1_count(global const float *logits, global const int *labels, global float *out,
                       int B, int K, int accumulate, uint off, local float *ra, local float *rb)
{
    uint l = (uint)get_local_id(0), L = (uint)get_local_size(0);
    float correct = 0.0f;
    for (int r = (int)l; r < B; r += (int)L) {
        float m;
        correct += (row_argmax(logits + (size_t)r * (size_t)K, K, &m) == labels[r]) ? 1.0f : 0.0f;
    }
    /* one sum: rb is not used */
    float s = wg_sum(ra, correct);
    if (l == 0) store_acc(out + off, accumulate, s);
}
