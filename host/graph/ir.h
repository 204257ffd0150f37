/* The graph IR: one node type, gf_node, for the whole network (the loaded model's nodes, model.h) and for the
 * graphs the executor runs forward + tangent + backward (a top block: a sub-graph of the model, block.h; or a
 * graph built in code: pretraining's architectures, tests). A node's `op` is what the model file says (the
 * loader sets it; info and top-block discovery read it); its `kind` and the fields below it are how the
 * executor runs it: the loader lowers every node to them at load (a convolution's gf_conv_desc, an
 * activation's gf_act, a BatchNorm that could not be folded as a per-channel 1x1 depthwise conv), code that
 * builds a graph sets them directly. */
#ifndef GF_IR_H
#define GF_IR_H
#include "gf_internal.h"
#include "ops_act.h"
#include "ops_affine.h"
#include "ops_merge.h"

typedef enum gf_op {
    GF_OP_CONV = 0, GF_OP_LINEAR, GF_OP_BATCHNORM, GF_OP_RELU, GF_OP_RELU6, GF_OP_LEAKY,
    GF_OP_MAXPOOL, GF_OP_AVGPOOL, GF_OP_GAP, GF_OP_ADD, GF_OP_FLATTEN, GF_OP_SOFTMAX,
    GF_OP_SIGMOID, GF_OP_SILU, GF_OP_HSIGMOID, GF_OP_HSWISH, GF_OP_GELU, GF_OP_MUL, GF_OP_CONCAT, GF_OP_LAYERNORM,
    GF_OP_SHUFFLE, GF_OP_SLICE,
    GF_OP_COUNT
} gf_op;
const char *gf_op_name(gf_op op);

typedef enum gf_node_kind {
    GF_K_CONV, GF_K_LINEAR, GF_K_ACT, GF_K_MAXPOOL, GF_K_AVGPOOL, GF_K_GAP, GF_K_ADD, GF_K_FLATTEN,
    GF_K_BATCHNORM,  /* per-channel BatchNorm: gamma in the w slot, beta in the b slot, [C] each */
    GF_K_MUL,        /* in[0] * in[1]; in[1] of in[0]'s shape, or [C, 1, 1]: a per-channel gate */
    GF_K_CONCAT,     /* in[0..n_in-1] along channels (same H x W) */
    GF_K_LAYERNORM,  /* normalisation over channels at each pixel, eps (no parameters) */
    GF_K_SHUFFLE,    /* channel shuffle in `groups` groups (ShuffleNet): a permutation of channels */
    GF_K_SLICE,      /* channels slice_start .. slice_start + c - 1 of in[0] (c given, torch.chunk) */
    GF_K_NONE        /* not run: a folded BatchNorm (its conv holds it), softmax (applied on read-back) */
} gf_node_kind;

enum { GF_MAX_INPUTS = GF_CONCAT_MAX_INPUTS };   /* inputs of one node (concat) */
enum { GF_NODE_INPUT = -1 };                     /* "the graph's input" as a node index */
enum { GF_P_WEIGHT = 0, GF_P_BIAS, GF_P_MEAN, GF_P_VAR, GF_P_COUNT };

typedef struct gf_node {
    char name[256];
    gf_op op;                         /* the model file's op (loaded models only) */
    gf_node_kind kind;                /* how the executor runs it */
    int n_in, in[GF_MAX_INPUTS];      /* node indices (topological order), GF_NODE_INPUT; CONCAT: n_in 2.. */
    /* attributes */
    int stride[2], pad[4];            /* conv (file) and pools: pad top, left, bottom, right */
    int dil[2], kernel[2], groups, count_include_pad;  /* groups: conv (file), SHUFFLE */
    float alpha, eps, momentum;       /* alpha: leaky_relu / hardsigmoid slope (file); eps: BN, LN; BN momentum */
    int approx_tanh;                  /* gelu: the tanh approximation (file) */
    int gate;                         /* MUL: in[1] is a per-channel gate [C, 1, 1] over in[0] */
    int slice_start, slice_end;       /* SLICE: channels slice_start .. c - 1 (slice_end: the file's) */
    gf_conv_desc conv;                /* CONV: geometry with n = 0 (set per call) */
    int lin_in, lin_out;              /* LINEAR: in/out features */
    gf_act act;                       /* ACT */
    int has_bias;                     /* CONV, LINEAR */
    /* shapes per sample */
    int in_c, in_h, in_w;             /* of input 0 */
    int c, h, w, flat;
    /* a block's parameters: offsets (floats) into its parameter vector; -1 = none (gf_block_create) */
    long w_off, b_off;
    size_t w_count, b_count;          /* w_count: also the loaded model's W */
    /* loaded models: the file's tensors and the folded float32 parameters (conv/linear, or BN run as a conv) */
    int param[GF_P_COUNT];            /* tensor indices in the file, -1 = none */
    float *W, *b;                     /* b may be NULL (no bias) */
    int as_conv;                      /* a batchnorm executed as a depthwise 1x1 conv */
    int folded;                       /* a batchnorm folded into its producer: skipped */
    int alias;                        /* folded: the conv/linear that holds it (itself otherwise) */
    int n_consumers;
    uint64_t file_params;
    double macs;
} gf_node;

/* The activation of an activation op (relu ... gelu) into *a: 1, else 0. */
int gf_op_act(const gf_node *nd, gf_act *a);
#endif
