/* The paper's four models on top of a block (block.h) and a linear head:
 *   linear    logits = w1ᵀ f(x) + b1                          (activation baseline / probe)
 *   gradient  logits = ω̄ᵀ J(x) w2 + b1                        (gradient features only)
 *   full      logits = w1ᵀ f(x) + b1 + ω̄ᵀ J(x) w2             (paper Eq. 2)
 *   finetune  logits = wᵀ f_θ(x) + b, θ and w trained by ordinary backprop
 * J(x) w2 is the block's tangent along w2 (never J itself); ω̄ is a frozen COPY
 * of the probe's weights; w1 starts at ω̄, b1 at the probe's bias, w2 at 0, so
 * at step 0 `full` equals the probe exactly. `gradient` keeps a trainable bias
 * b1 (started at the probe's) and no w1 term. */
#ifndef GF_LINEARIZED_H
#define GF_LINEARIZED_H
#include "block.h"
#include "ops_optim.h"

/* Method i is bit 1 << i of the GF_JOB_* masks (gradfeat_train.h). */
typedef enum gf_method { GF_METHOD_LINEAR, GF_METHOD_GRADIENT, GF_METHOD_FULL, GF_METHOD_FINETUNE } gf_method;
#define GF_METHOD_COUNT 4
const char *gf_method_name(gf_method m);      /* "linear", "gradient", "full", "finetune"; "?" out of range */
int gf_method_parse(const char *s);           /* -1 when unknown */

typedef enum gf_loss_kind { GF_LOSS_SOFTMAX = 0, GF_LOSS_SIGMOID_BCE = 1 } gf_loss_kind;

typedef struct gf_optim {
    int adam;                 /* 1 Adam, 0 SGD with momentum */
    float lr, beta1, beta2, eps, momentum, weight_decay, clip_norm;   /* clip_norm 0 = off */
} gf_optim;
/* Paper §4 defaults: Adam β=(0.5, 0.999), lr 1e-3, weight decay 1e-6. */
gf_optim gf_optim_paper_defaults(void);

typedef struct gf_lin gf_lin;

/* theta_bar: host values of the block's parameter vector (gf_block_param_count
 * floats, layout of gf_block_nodes' w_off/b_off); omega/bias: the probe [K, d]
 * and [K] (ω̄ is copied; w1 and b1 start from them). */
gf_status gf_lin_create(gf_ctx *ctx, gf_block *block, gf_method method, int classes, gf_loss_kind loss,
                        const float *theta_bar, const float *omega, const float *bias, gf_lin **out);
void gf_lin_free(gf_lin *m);

/* NTK parametrisation (official code's option; gradient/full only): the model
 * uses tangent weights sqrt(1/C_out)·w2, tangent biases sqrt(0.1)·b̃ and head
 * weights sqrt(1/K)·w1 of the stored values. Same model class, different
 * effective learning rates per tensor. Off by default. */
gf_status gf_lin_set_ntk(gf_ctx *ctx, gf_lin *m, int on);
/* Replace the frozen ω̄ of the gradient term (K x d host floats; w1 keeps its
 * start): the paper's random-ω ablation. */
gf_status gf_lin_set_omega_bar(gf_ctx *ctx, gf_lin *m, const float *omega);
/* Take the primal values of the next batches from pc, rows = the device ints
 * in idx (the batch's sample indices), instead of running the forward at θ̄.
 * Only for gradient/full (θ̄ is fixed); pc = NULL goes back to the forward. */
void gf_lin_use_primal_cache(gf_lin *m, const gf_primal_cache *pc, cl_mem idx);

/* Logits of n samples of block input x [n, ...] into the model's logits
 * buffer (gf_lin_logits_buffer); no host read. */
gf_status gf_lin_forward(gf_ctx *ctx, gf_lin *m, int n, cl_mem x);
cl_mem gf_lin_logits_buffer(gf_lin *m);
/* One training step on a batch: forward, loss (+ correct count) accumulated
 * into the device stats buffer, backward, optimiser update. labels: int32 [n]
 * (softmax) or float [n, K] targets (BCE). */
gf_status gf_lin_train_step(gf_ctx *ctx, gf_lin *m, int n, cl_mem x, cl_mem labels, const gf_optim *o);
/* Gradients only (no update): for tests. After this, gf_lin_read_grads reads
 * the gradient of the trained parameters: head [K*d + K] then block vector. */
gf_status gf_lin_gradients(gf_ctx *ctx, gf_lin *m, int n, cl_mem x, cl_mem labels);
gf_status gf_lin_read_grads(gf_ctx *ctx, gf_lin *m, float *head, float *block);
/* Data-parallel steps (train.c over several processes): each rank runs gf_lin_gradients on its shard of
 * the batch with the loss's mean over the whole batch (gf_lin_set_mean_over: the shards' gradients and
 * losses then add up to the batch's), sums the gradient vector over ranks (gf_lin_grads_get/_set:
 * gf_lin_grad_floats floats, the trained parameters only) and takes the same optimiser step
 * (gf_lin_apply_step). gf_lin_train_step = gf_lin_gradients + gf_lin_apply_step. n = 0 is an empty
 * shard: zero gradient, no loss. */
void gf_lin_set_mean_over(gf_lin *m, int rows);     /* 0: the mean over each call's own n */
size_t gf_lin_grad_floats(const gf_lin *m);
gf_status gf_lin_grads_get(gf_ctx *ctx, gf_lin *m, float *v);
gf_status gf_lin_grads_set(gf_ctx *ctx, gf_lin *m, const float *v);
gf_status gf_lin_apply_step(gf_ctx *ctx, gf_lin *m, const gf_optim *o);
/* Evaluation: forward + loss/correct accumulated (no gradient). */
gf_status gf_lin_eval_batch(gf_ctx *ctx, gf_lin *m, int n, cl_mem x, cl_mem labels);
/* The same without resetting (progress lines; one small read). */
gf_status gf_lin_peek_stats(gf_ctx *ctx, gf_lin *m, double *loss_sum, double *correct);
/* Read and reset the accumulated (sum of batch-mean losses, correct count, batches). */
gf_status gf_lin_take_stats(gf_ctx *ctx, gf_lin *m, double *loss_sum, double *correct, int *batches);

/* Host access to the trained tensors: w2 (or θ for finetune) as a block
 * vector, and the head (w1 [K, d], b1 [K]). Any may be NULL. */
gf_status gf_lin_read_params(gf_ctx *ctx, gf_lin *m, float *block_vec, float *w1, float *b1);
gf_status gf_lin_write_params(gf_ctx *ctx, gf_lin *m, const float *block_vec, const float *w1, const float *b1);

/* Checkpoints (host/method/train.c): the whole trainable state.
 * Raw device buffers in this order: head, optimiser m and v of the head
 * (padding included), then, for methods that train the block, the block
 * vector and its m and v. With the step count and the stats buffer this is
 * everything a training step reads, so set_state resumes bit for bit. */
size_t gf_lin_state_floats(const gf_lin *m);
long gf_lin_step_count(const gf_lin *m);
enum { GF_LIN_STATS = 4 };
gf_status gf_lin_get_state(gf_ctx *ctx, gf_lin *m, float *state, long *step, float stats[GF_LIN_STATS]);
gf_status gf_lin_set_state(gf_ctx *ctx, gf_lin *m, const float *state, long step, const float stats[GF_LIN_STATS]);
#endif
