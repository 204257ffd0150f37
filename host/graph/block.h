/* The graph executor. A top block θ2 is a graph run three ways on the device —
 *   forward  y_i = op_i(y_in)                       (primal at θ̄, or at θ for fine-tuning)
 *   tangent  t_i = op_i'(y_in)[t_in] (+ W̃_i∗y_in + b̃_i for linearized affine nodes)
 *   backward the adjoint of either: gradients for the parameters and the block's input.
 * The block's output is global-average-pooled into the features f [n, d]. The whole loaded network is the
 * same kind of graph run forward only (gf_block_create_forward; graph_exec.c wraps it as gf_exec).
 *
 * Tangent rules: an affine node with tangent parameters (W̃, b̃)
 * gives t = W̃∗x + b̃ + W∗t_in; activations multiply by σ'(z_pre) of the primal;
 * max pool routes through the primal argmax; avg pool, GAP, add, concat and
 * flatten are linear and apply as-is; layer norm applies its Jacobian at the
 * primal input; a product y = x·s (elementwise, or s a
 * per-channel gate [C, 1, 1]) takes the product rule t = t_x·s + x·t_s at the
 * primal x, s. The tangent of the block input is 0.
 *
 * BatchNorm nodes (GF_K_BATCHNORM) serve plain training from scratch: in
 * training mode (gf_block_set_training) the forward normalises with the batch
 * statistics and updates the block's running statistics, the backward goes
 * through the batch statistics; in eval mode (the default) BN is the affine map
 * with the running statistics. The linearized model never sees BN (model files
 * fold it into the preceding conv at load), so gf_block_tangent refuses it.
 *
 * Backward of the tangent graph is the same adjoint as ordinary backprop with
 * the parameter gradient of an affine node = incoming gradient ⊗ PRIMAL input:
 * so one backward serves `gradient`/`full` (gradients land in w2's slices) and
 * `finetune` (gradients land in θ2's). */
#ifndef GF_BLOCK_H
#define GF_BLOCK_H
#include "ir.h"
#include "ops_bn.h"
#include "ops_ln.h"
#include "ops_pool.h"

typedef struct gf_block gf_block;

/* Build a block from nodes (shapes are inferred from c_in, h_in, w_in; inputs are indices into nodes). The
 * parameter vector layout is fixed here: each tensor starts at a multiple of
 * the device's sub-buffer alignment. */
gf_status gf_block_create(gf_ctx *ctx, int c_in, int h_in, int w_in, const gf_node *nodes, int n_nodes,
                          int max_batch, gf_block **out);
/* The same for the sub-graph of graph g made of nodes idx[0..n_nodes) (topological order) whose input is g's
 * node `cut` (GF_NODE_INPUT: g's input), of per-sample shape c_in x h_in x w_in: a folded node stands for its
 * alias (the conv that holds it); a node reading anything else outside the sub-graph is refused. */
gf_status gf_block_create_sub(gf_ctx *ctx, const gf_node *g, const int *idx, int n_nodes, int cut, int c_in, int h_in,
                              int w_in, int max_batch, gf_block **out);
/* A forward-only graph (the whole loaded network: graph_exec.c): no tangent, gradient or routing buffers
 * (gf_block_tangent/backward refuse it); node indices stay those of nodes; a node that computes nothing
 * (GF_K_NONE: a folded BatchNorm, softmax) or a flatten shares its input's buffer. */
gf_status gf_block_create_forward(gf_ctx *ctx, int c_in, int h_in, int w_in, const gf_node *nodes, int n_nodes,
                                  int max_batch, gf_block **out);
/* The same graph for gf_block_forward_to(..., keep) alone: only the nodes keep depends on get activations,
 * and a node's buffer passes to a later node once none of those after it reads it (keep's stays), so the
 * graph holds about its few largest activations instead of all of them (the trunk pass of ResNet-18 at 224 px
 * to layer4.0, batch 64: the job's process peak 2.38 -> 1.39 GB). Other nodes' outputs are NULL. */
gf_status gf_block_create_forward_to(gf_ctx *ctx, int c_in, int h_in, int w_in, const gf_node *nodes, int n_nodes,
                                     int max_batch, int keep, gf_block **out);
/* gf_buf_create of "<what> of '<name>'", GF_ERR_MEMORY naming it when bytes exceed the device's largest
 * allocation (per_batch: the message advises a smaller batch). */
gf_status gf_buf_create_checked(gf_ctx *ctx, size_t bytes, const char *what, const char *name, int per_batch,
                               cl_mem *out);
void gf_block_free(gf_block *b);
/* Size (floats) of the parameter vector and the feature dimension d. */
size_t gf_block_param_count(const gf_block *b);
int gf_block_feature_dim(const gf_block *b);
int gf_block_input_size(const gf_block *b);          /* floats per sample */
int gf_block_max_batch(const gf_block *b);
/* Output buffer of node i from the last forward (an aliasing node: its owner's). */
cl_mem gf_block_node_output(const gf_block *b, int i);
const gf_node *gf_block_nodes(const gf_block *b, int *n);


/* A parameter vector on the device (θ̄, θ, w2 or a gradient), split into
 * sub-buffers per tensor so that ops see plain cl_mem objects while optimisers
 * update the whole vector at once. w[i], b[i]: node i's tensors (NULL: none). */
typedef struct gf_params {
    cl_mem all;                       /* NULL from gf_params_create_each */
    size_t count;
    int n;                            /* nodes */
    cl_mem *w, *b;                    /* [n] each */
    gf_conv_fixed *fixed;             /* [n] after gf_params_freeze: what convs keep of the frozen weights, else NULL */
} gf_params;
gf_status gf_params_create(gf_ctx *ctx, const gf_block *b, const char *what, gf_params *p);
/* Parameters as one buffer per tensor (no vector: a whole network's could exceed the device's largest
 * allocation), filled from the host values the block's nodes point at (W, b: a forward-only graph of a loaded
 * model's nodes). */
gf_status gf_params_create_each(gf_ctx *ctx, const gf_block *b, gf_params *p);
void gf_params_free(gf_params *p);
/* Declare p's values fixed from now until gf_params_free (θ̄ of the linearized methods): its convs may then keep
 * transforms of their weights between calls (gf_conv_fixed). Writing p afterwards is a bug. */
gf_status gf_params_freeze(gf_ctx *ctx, gf_params *p);

/* Primal forward of n samples of x [n, c_in, h_in, w_in]: keeps every node's
 * output (needed for the tangent and backward) and writes features f [n, d] (f NULL: none). */
gf_status gf_block_forward(gf_ctx *ctx, gf_block *b, int n, cl_mem x, const gf_params *theta, cl_mem f);
/* The same for node `node` and the nodes it depends on only (the trunk up to a cut), no features. */
gf_status gf_block_forward_to(gf_ctx *ctx, gf_block *b, int n, cl_mem x, const gf_params *theta, int node);
/* Tangent along w2 (the linearized affine nodes' tangent parameters), after
 * gf_block_forward of the same batch x: writes the feature tangent tf [n, d].
 * GF_ERR_USAGE on a block with a BATCHNORM node. */
gf_status gf_block_tangent(gf_ctx *ctx, gf_block *b, int n, cl_mem x, const gf_params *theta,
                           const gf_params *w2, cl_mem tf);
/* Backward from the feature gradient gf [n, d] after gf_block_forward:
 * parameter gradients into grad (overwritten), and the input gradient into gx
 * when gx != NULL. BATCHNORM nodes use the mode of that forward (training:
 * through the batch statistics it saved; eval: the running statistics). */
gf_status gf_block_backward(gf_ctx *ctx, gf_block *b, int n, cl_mem x, const gf_params *theta, cl_mem gfeat,
                            gf_params *grad, cl_mem gx);

/* Tangent parameters exist for affine nodes whose `linearized` flag is set
 * (default: every affine node of the block). A node whose flag is off gets no
 * parameter gradient in gf_block_backward (frozen; BATCHNORM included). */
void gf_block_set_linearized(gf_block *b, int node, int on);

/* BatchNorm mode, default off (eval: running statistics). On: gf_block_forward
 * normalises with the batch statistics (needs n*h*w >= 2 per channel) and
 * updates the running statistics: running = (1 - momentum) running + momentum
 * batch, unbiased variance, as PyTorch. */
void gf_block_set_training(gf_block *b, int on);
/* Several processes (gf_dist.h), each holding a share of one batch: on, a training-mode forward takes
 * every BATCHNORM node's statistics over the whole batch (the ranks' per-channel sums added in rank
 * order in double; the running statistics are updated with them alike on every rank) and the backward
 * its sums of dy and dy * xhat likewise, so that the ranks' shares together compute the one-process
 * batch's forward and input gradients (to rounding). dgamma/dbeta remain the rank's share, to be summed
 * with the rest of the gradient. Every rank must make the same forward/backward calls. Off by default. */
void gf_block_set_bn_sync(gf_block *b, int on);
int gf_block_training(const gf_block *b);
/* The running statistics of BATCHNORM node `node`: device buffers [C] owned by
 * the block (created as mean 0, var 1), for reading, saving or loading.
 * GF_ERR_USAGE (no message: there is no context) when the node is not BN. */
gf_status gf_block_bn_running(gf_block *b, int node, cl_mem *mean, cl_mem *var);

/* Primal cache (README.md, "Two caches"): at θ̄ the primal values inside the
 * block never change for a given sample, so the linearized methods can run the
 * forward once per sample (during the probe's feature pass) and gather rows
 * per batch instead. Kept: the primal inputs of conv/linear/activation/BN
 * nodes, max-pool routing and the pooled features — what the tangent and the
 * backward read. Rows are sample indices of the cached set. */
typedef struct gf_primal_cache gf_primal_cache;
/* half: the node values stored as IEEE halves (gf_store_half; read back as floats, so every op still
 * computes in float); the routing stays int and the pooled features float. */
size_t gf_block_primal_bytes(const gf_block *b, int half);     /* device bytes per sample */
gf_status gf_primal_cache_create(gf_ctx *ctx, const gf_block *b, int n_samples, int half, gf_primal_cache **out);
void gf_primal_cache_free(gf_primal_cache *pc);
/* After gf_block_forward (evaluation mode) of samples first..first+n-1, whose
 * features are in f: copy what is kept into rows first..first+n-1. */
gf_status gf_primal_cache_store(gf_ctx *ctx, const gf_block *b, gf_primal_cache *pc, int first, int n, cl_mem f);
/* Put rows idx[0..n) (device ints) into the block's buffers and f, leaving the
 * block as gf_block_forward at θ̄ of those samples would for tangent/backward; x: the block input of those
 * samples (an activation of it is made again from it, not kept). */
gf_status gf_primal_cache_load(gf_ctx *ctx, gf_block *b, const gf_primal_cache *pc, int n, cl_mem idx, cl_mem x,
                               cl_mem f);
#endif
