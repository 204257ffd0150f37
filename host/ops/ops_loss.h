/* Losses on logits [B, K] (row-major): the mean loss and the top-1 / per-label
 * correct count are reduced ON THE DEVICE into out[off], out[off+1], and the
 * gradient of the mean loss w.r.t. the logits is written in the same launch.
 * Training reads back only those floats (once per step, or once per epoch
 * with accumulate = 1, which adds to out instead of overwriting). Counts are
 * floats: exact up to 2^24. Deterministic (one work-group, fixed tree order).
 *
 * Softmax cross-entropy (multi-class): loss = (1/B) sum_r [lse(z_r) - z_r,y_r],
 * stable log-sum-exp. A label outside [0, K) (e.g. -1) ignores its row (zero
 * loss and gradient) but the mean still divides by B.
 *
 * Per-class sigmoid BCE (multi-label; the paper does not state its loss, this
 * is the usual VOC/COCO choice): element loss softplus(z) - t*z written as
 * max(z,0) - z*t + log1p(exp(-|z|)); targets 0/1 floats (soft targets in
 * [0,1] work too), a negative target ignores that element. The mean divides by
 * B*K (per_sample = 0: PyTorch BCEWithLogitsLoss default) or by B (per_sample
 * = 1: sum over classes, mean over the batch). out[off+1] counts elements
 * with (z > 0) == (t > 0.5). */
#ifndef GF_OPS_LOSS_H
#define GF_OPS_LOSS_H
#include "gf_internal.h"

/* labels: int32 [B]. grad: [B, K] or NULL (evaluation); it may be the logits
 * buffer itself (each row is read completely before it is overwritten).
 * out: >= off+2 floats. */
gf_status gf_softmax_xent(gf_ctx *ctx, int B, int K, cl_mem logits, cl_mem labels, cl_mem grad,
                          cl_mem out, size_t off, int accumulate);
/* targets: float [B, K]. grad: [B, K] or NULL, may be the logits buffer. out: >= off+2 floats. */
gf_status gf_sigmoid_bce(gf_ctx *ctx, int B, int K, cl_mem logits, cl_mem targets, cl_mem grad,
                         cl_mem out, size_t off, int accumulate, int per_sample);
/* The same with the mean over mean_over rows instead of B (0 = B): a data-parallel shard of a larger
 * batch, whose shards' losses and gradients then add up to the whole batch's mean. */
gf_status gf_softmax_xent_over(gf_ctx *ctx, int B, int K, cl_mem logits, cl_mem labels, cl_mem grad,
                               cl_mem out, size_t off, int accumulate, int mean_over);
gf_status gf_sigmoid_bce_over(gf_ctx *ctx, int B, int K, cl_mem logits, cl_mem targets, cl_mem grad,
                              cl_mem out, size_t off, int accumulate, int per_sample, int mean_over);
/* out[off] (+)= number of rows whose first arg-max equals the label. */
gf_status gf_top1_count(gf_ctx *ctx, int B, int K, cl_mem logits, cl_mem labels,
                        cl_mem out, size_t off, int accumulate);

#endif
