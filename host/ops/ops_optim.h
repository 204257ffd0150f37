/* Optimiser updates on the device (PyTorch semantics) over flat float vectors
 * of n parameters, with state buffers owned by the caller (zero-initialised):
 *
 * SGD:  g' = c*g + wd*(p - ref);  v = mu*v + g';  p -= lr*v   (dampening 0,
 *       no Nesterov; mu = 0 or v = NULL: p -= lr*g').
 * Adam: g' = c*g + wd*(p - ref);  m = b1*m + (1-b1)*g';  v = b2*v + (1-b2)*g'^2;
 *       p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)     (torch.optim.Adam,
 *       L2 weight decay added to the gradient; t = 1, 2, ... counted by the caller).
 *
 * ref: "decay toward a reference tensor" — NULL means zero (plain L2). The
 * method's w2 = θ2 − θ̄2 decays toward 0; a fine-tuned θ2 can decay toward θ̄2.
 * c: the clip factor min(1, max_norm / (||g|| + 1e-6)) (clip_grad_norm_), read
 * on the device from clip->sqnorm (the squared global norm accumulated by
 * gf_grad_sqnorm over every parameter tensor of the step), so clipping needs
 * no host read; clip = NULL means c = 1.
 *
 * gf_grad_sqnorm uses scratch slot GF_OPTIM_SLOT for its partial sums. */
#ifndef GF_OPS_OPTIM_H
#define GF_OPS_OPTIM_H
#include "gf_internal.h"

#define GF_OPTIM_SLOT (GF_SCRATCH_SLOTS - 1)

typedef struct gf_clip {
    cl_mem sqnorm;       /* device float: sum of squares of the whole gradient */
    float max_norm;
} gf_clip;

typedef struct gf_sgd_opts {
    float lr, momentum, weight_decay;
} gf_sgd_opts;

typedef struct gf_adam_opts {
    float lr, beta1, beta2, eps, weight_decay;
} gf_adam_opts;

/* v: momentum buffer [n] (may be NULL when momentum == 0). ref, clip may be NULL. */
gf_status gf_sgd_step(gf_ctx *ctx, const gf_sgd_opts *o, size_t n, cl_mem p, cl_mem g, cl_mem v,
                      cl_mem ref, const gf_clip *clip);
/* m, v: moment buffers [n]. step: 1 for the first update. ref, clip may be NULL. */
gf_status gf_adam_step(gf_ctx *ctx, const gf_adam_opts *o, long step, size_t n, cl_mem p, cl_mem g,
                       cl_mem m, cl_mem v, cl_mem ref, const gf_clip *clip);

/* out[off] = sum g[i]^2 (accumulate = 1: out[off] += ...), deterministic
 * two-stage reduction. Call once per parameter tensor, the first with
 * accumulate = 0, to get the squared global norm. */
gf_status gf_grad_sqnorm(gf_ctx *ctx, size_t n, cl_mem g, cl_mem out, size_t off, int accumulate);
/* g *= min(1, max_norm / (sqrt(*clip->sqnorm) + 1e-6)) in place. */
gf_status gf_grad_clip(gf_ctx *ctx, size_t n, cl_mem g, const gf_clip *clip);

#endif
