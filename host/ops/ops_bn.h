/* BatchNorm over NCHW float32, per channel over the n*hw values of that channel
 * (BatchNorm2d; BatchNorm1d on [n, c] is hw = 1), kernels in cl/bn.cl.
 *
 * Training mode normalises with the batch statistics (mean and BIASED variance,
 * two-pass: the mean first, then the sum of squared deviations) and updates the
 * running statistics as PyTorch does:
 *   running_mean = (1 - momentum) * running_mean + momentum * mean
 *   running_var  = (1 - momentum) * running_var  + momentum * var * M / (M - 1)   (M = n*hw, unbiased)
 * It saves mean and invstd = 1/sqrt(var + eps) for the backward.
 * Eval mode is the per-channel affine map with the running statistics.
 *
 * One work-group per channel reduces in a fixed order (each lane sums its
 * share of the channel, contiguous chunks on CPU devices and every L-th value
 * on GPUs, then a fixed tree; L a power of two fixed per kernel, device and
 * n*hw), no float atomics: bitwise reproducible. A channel whose values would
 * make a lane walk past the item budget even at the kernel's work-group limit
 * is cut into segments, one work-group each, whose sums a second kernel adds in
 * segment order (two levels; also reproducible). GRADFEAT_BN_WALK=blocked|strided
 * overrides the device's walk (tests). Every launcher only enqueues. */
#ifndef GF_OPS_BN_H
#define GF_OPS_BN_H
#include "gf_internal.h"

/* Scratch slots of the two-level path (channels too large for one work-group, host/ops/ops_bn.c bn_plan). */
enum { GF_BN_SLOT_PART = 4, GF_BN_SLOT_HI, GF_BN_SLOT_LO, GF_BN_SLOT_INVSTD, GF_BN_SLOT_SUMS };

/* y = (x - mean_B) * invstd_B * gamma + beta with the batch statistics.
 * x, y [n, c, hw] (y may not alias x); gamma, beta [c].
 * running_mean/running_var [c] are updated in place (both NULL: no update).
 * save_mean/save_invstd [c] receive the batch mean and 1/sqrt(var + eps) (both
 * NULL: not saved). Needs n*hw >= 2 (GF_ERR_USAGE otherwise, as PyTorch);
 * eps > 0, 0 <= momentum <= 1. */
gf_status gf_bn_train_forward(gf_ctx *ctx, int n, int c, int hw, cl_mem x, cl_mem gamma, cl_mem beta, float eps,
                              float momentum, cl_mem running_mean, cl_mem running_var, cl_mem y,
                              cl_mem save_mean, cl_mem save_invstd);
/* y = (x - running_mean) / sqrt(running_var + eps) * gamma + beta. y may equal x. */
gf_status gf_bn_eval_forward(gf_ctx *ctx, int n, int c, int hw, cl_mem x, cl_mem gamma, cl_mem beta, float eps,
                             cl_mem running_mean, cl_mem running_var, cl_mem y);
/* Backward of gf_bn_train_forward (batch statistics depend on x), with
 * xhat = (x - save_mean) * save_invstd and M = n*hw:
 *   dx     = gamma * invstd / M * (M * dy - sum(dy) - xhat * sum(dy * xhat))
 *   dgamma = sum(dy * xhat),  dbeta = sum(dy)          (sums per channel)
 * dx may be NULL; dgamma and dbeta may be NULL (both or neither). accumulate = 1
 * adds into dgamma/dbeta, 0 overwrites them; dx is always overwritten (the
 * block accumulates input gradients itself). dx may not alias x or dy. */
gf_status gf_bn_train_backward(gf_ctx *ctx, int n, int c, int hw, cl_mem x, cl_mem dy, cl_mem gamma,
                               cl_mem save_mean, cl_mem save_invstd, cl_mem dx, cl_mem dgamma, cl_mem dbeta,
                               int accumulate);
/* Backward of gf_bn_eval_forward (a per-channel affine map, linear in x):
 *   dx = dy * gamma / sqrt(running_var + eps)
 *   dgamma = sum(dy * xhat), xhat = (x - running_mean) / sqrt(running_var + eps);  dbeta = sum(dy)
 * NULL / accumulate rules as for gf_bn_train_backward. */
gf_status gf_bn_eval_backward(gf_ctx *ctx, int n, int c, int hw, cl_mem x, cl_mem dy, cl_mem gamma, float eps,
                              cl_mem running_mean, cl_mem running_var, cl_mem dx, cl_mem dgamma, cl_mem dbeta,
                              int accumulate);

/* A batch split over several processes (host/graph/block.c, gf_block_set_bn_sync): the pieces of the
 * training forward and backward around the host's sums over ranks. The mean comes as a float pair
 * hi + lo (cl/bn.cl: no precision lost to a large common offset).
 * gf_bn_sums: out = per channel sum(x - s) [c], then sum((x - s)^2) [c] over this shard, s = shift [c];
 * shift NULL: s = the shard's first value of each channel, then also written to out [2c .. 3c).
 * gf_bn_apply: y = ((x - hi) - lo) * invstd * gamma + beta ([c] each; y may not alias x).
 * gf_bn_backward_dx: dx = gamma * invstd * (dy - sums[c] / M - xhat * sums[c + C] / M),
 * xhat = ((x - hi) - lo) * invstd, sums = (sum(dy), sum(dy * xhat)) over the whole batch of M values
 * per channel. */
gf_status gf_bn_sums(gf_ctx *ctx, int n, int c, int hw, cl_mem x, cl_mem shift, cl_mem out);
gf_status gf_bn_apply(gf_ctx *ctx, int n, int c, int hw, cl_mem x, cl_mem gamma, cl_mem beta, cl_mem hi, cl_mem lo,
                      cl_mem invstd, cl_mem y);
gf_status gf_bn_backward_dx(gf_ctx *ctx, int n, int c, int hw, cl_mem x, cl_mem dy, cl_mem gamma, cl_mem hi,
                            cl_mem lo, cl_mem invstd, cl_mem sums, double M, cl_mem dx);
#endif
