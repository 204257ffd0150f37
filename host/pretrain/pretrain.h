/* Pretraining from scratch (internal: arch.c, pretrain.c; the public API is gf_pretrain_run in
 * gradfeat_train.h). A network of /tmp/archs.txt's shapes (small28, bigan,
 * resnet18c) is ONE gf_block holding every layer (conv, BatchNorm in training
 * mode, activations, pools, residual adds); the block's global average pool is
 * the feature f and a linear head `fc` gives the logits. Training reuses the
 * finetune machinery of host/method/linearized.c (forward, softmax CE, backward of
 * block + head, SGD/Adam step); its θ̄ is a vector of zeros so that finetune's
 * weight decay "toward θ̄" is the ordinary decay toward 0. */
#ifndef GF_PRETRAIN_H
#define GF_PRETRAIN_H
#include <cjson/cJSON.h>
#include "linearized.h"
#include "checkpoint.h"             /* the checkpoint framing pretrain.c writes its checkpoints with */
#include "gradfeat_data.h"

typedef enum gf_arch { GF_ARCH_SMALL28 = 0, GF_ARCH_BIGAN = 1, GF_ARCH_RESNET18C = 2, GF_ARCH_COUNT } gf_arch;
const char *gf_arch_name(gf_arch a);
int gf_arch_parse(const char *s);                 /* -1 when unknown */

enum { GF_ARCH_MAX_NODES = 128 };   /* nodes of the largest architecture (resnet18c: 65), with room */
/* The network minus the head as block nodes (nodes: GF_ARCH_MAX_NODES
 * entries). Node names are the PyTorch module names, so tensor names are
 * "<node>.weight", "<node>.bias", "<node>.running_mean", ... width_div > 1
 * divides every channel count (tests: the same graph, smaller). */
gf_status gf_arch_nodes(gf_ctx *ctx, gf_arch a, int c_in, int width_div, gf_node *nodes, int *n_nodes);

/* A network being trained: the block (every layer) and the head. */
typedef struct gf_pt_net {
    gf_arch arch;
    int width_div, C, H, W, K, d, max_batch;
    gf_block *blk;
    gf_lin *lin;                 /* finetune model over blk: θ, head, optimiser state */
} gf_pt_net;

/* Creates the block for max_batch samples of C x H x W and initialises it with
 * seed: conv weights kaiming_normal_(mode='fan_out', relu gain; leaky-ReLU nets
 * sqrt(2/(1+a²))), conv biases (bigan's conv1) and fc uniform(±1/sqrt(fan_in))
 * (PyTorch's Conv2d / Linear defaults), BN gamma 1, beta 0, running mean 0,
 * var 1 (as tools/torch_pretrain_bench.py). BN starts in training mode. */
gf_status gf_pt_net_create(gf_ctx *ctx, gf_arch arch, int width_div, int C, int H, int W, int K, int max_batch,
                           uint64_t seed, gf_pt_net **out);
void gf_pt_net_free(gf_pt_net *n);
/* Host initial values (the layout of gf_block_param_count): what
 * gf_pt_net_create writes. theta: block vector, w1 [K, d], b1 [K]. */
void gf_pt_init_params(const gf_block *blk, gf_arch arch, int K, uint64_t seed, float *theta, float *w1, float *b1);
/* Uniform in [0, 1) with 53 bits, stepping the state *s: the generator of the initialisation and of
 * the epochs' sample order. */
double gf_pt_unif(uint64_t *s);

/* Running statistics of every BN node, concatenated in node order (mean then
 * var per node): the count, and host copies in and out. */
size_t gf_pt_bn_floats(const gf_pt_net *n);
gf_status gf_pt_bn_read(gf_ctx *ctx, gf_pt_net *n, float *out);
gf_status gf_pt_bn_write(gf_ctx *ctx, gf_pt_net *n, const float *in);

/* Writes the network as a gradfeat model file (models/README.md): conv2d /
 * batchnorm / relu / leaky_relu / maxpool / add / global_avgpool / linear
 * nodes, PyTorch tensor names, feature = the global average pool, outputs =
 * fc, the top block, pp as gradfeat.preprocess, class names, and
 * extra_json (may be NULL) as __metadata__["gradfeat.pretrained"]. Temp file +
 * rename. */
gf_status gf_pt_net_export(gf_ctx *ctx, gf_pt_net *n, const char *path, const gf_preprocess *pp,
                           const char *const *classes, const char *extra_json);
#endif
