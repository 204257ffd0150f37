/* gradfeat — model files and the graph executor (public C API).
 *
 * A model is one .safetensors file whose __metadata__ holds the graph, the
 * preprocessing and the class names (format: models/README.md). Loading
 * validates the whole file BEFORE allocating anything for the tensors: header
 * length bounded and inside the file, every tensor's dtype (F32, or F16 widened
 * on load), shape and data_offsets inside the data area, metadata present, every
 * node's op supported and attributes sane, inputs defined, names unique, no
 * cycles, every parameter tensor present with the shape the graph implies. The
 * first problem is reported with the tensor or node name (GF_ERR_INPUT).
 * BatchNorm is folded into the preceding conv/linear at load (a BatchNorm that
 * cannot be folded becomes a per-channel 1x1 depthwise conv); the file stays
 * faithful to its source.
 *
 * The executor runs the whole forward pass on the device as one enqueue
 * sequence (no host round trips); every node's output stays in its own buffer,
 * allocated once per batch size, so any named node (the feature node, the
 * split points of the top blocks) can be read back. Flatten and folded
 * BatchNorm nodes share their input's buffer (reading a conv that has a folded
 * BatchNorm gives the normalised values). Softmax is inference-only and must be
 * a leaf: the device keeps its input (the logits) and the softmax is applied on
 * read-back. */
#ifndef GRADFEAT_MODEL_H
#define GRADFEAT_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include "gradfeat.h"
#include "gradfeat_data.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gf_model gf_model;

/* Load and validate a model file. ctx may be NULL (no device needed: loading
 * never touches OpenCL). On success *out is the model. On failure the status
 * is returned (GF_ERR_INPUT for anything wrong with the file, GF_ERR_MEMORY),
 * the message is recorded in ctx (when given) AND *out is a model that holds
 * only that message (gf_model_error; NULL when even that could not be
 * allocated); free it with gf_model_free. */
gf_status gf_model_load(gf_ctx *ctx, const char *path, gf_model **out);
void gf_model_free(gf_model *m);
/* Writes the gradfeat model file (.safetensors, atomically: temp file + rename) that an ONNX model
 * reads as: the same file tools/convert_onnx.py writes, with its default preprocessing. gf_model_load
 * reads a path ending in .onnx the same way, in memory. GF_ERR_INPUT (message in err) for a bad or
 * unsupported ONNX model, or when this build has no ONNX support (protobuf-c); GF_ERR_IO when writing fails. */
gf_status gf_model_convert_onnx(const char *onnx_path, const char *out_path, char *err, size_t err_size);
/* Message of a failed load ("" after a successful one). */
const char *gf_model_error(const gf_model *m);

typedef struct gf_model_info {
    const char *path;
    int in_c, in_h, in_w;         /* one image, NCHW */
    int n_nodes;                  /* as in the file (BatchNorm counted) */
    int n_tensors;                /* in the file */
    uint64_t n_params;            /* floats referenced by the graph, as in the file */
    double macs;                  /* multiply-adds per image of conv/linear after BN folding */
    int n_outputs, n_classes, n_blocks, n_spans;
    const char *feature;          /* feature node (NULL if the file names none) */
    int feature_dim;
    int out_dim;                  /* size of the first output */
} gf_model_info;
void gf_model_get_info(const gf_model *m, gf_model_info *info);

typedef struct gf_node_info {
    const char *name;
    const char *op;               /* "conv2d", "linear", "batchnorm", ... as in the file */
    int n_inputs;
    const char *inputs[64];       /* node names or the graph input's name (concat: up to 64) */
    int c, h, w;                  /* output shape per image; flat outputs have h = w = 1 */
    int flat;                     /* 1 when the output is a vector (linear, GAP, flatten, softmax) */
    uint64_t params;              /* floats in the file for this node */
    double macs;
    int folded;                   /* batchnorm folded into its producer */
    char detail[128];             /* "3x3 s2 p[1,1,1,1] g1 64->128" etc. */
} gf_node_info;
/* Nodes in topological order, 0 <= i < info.n_nodes. */
gf_status gf_model_node(const gf_model *m, int i, gf_node_info *info);
/* Index of a node by name; -1 if none (the input's name gives -1 as well). */
int gf_model_find_node(const gf_model *m, const char *name);
const char *gf_model_output_name(const gf_model *m, int i);
const char *gf_model_class_name(const gf_model *m, int k);   /* NULL when out of range */
/* Preprocessing from the file's gradfeat.preprocess (defaults where absent). */
const gf_preprocess *gf_model_preprocess(const gf_model *m);

/* Linearizable top blocks: the parts of the graph between consecutive single-
 * tensor cut points on the way from the input to the feature node that hold
 * parameters (a residual block, a conv stage), or the blocks the file names.
 * Index 0 is the block closest to the feature node (the paper's default θ2). */
typedef struct gf_block_info {
    const char *name;             /* "layer4.1", "add_2", "features.28", ... */
    const char *input;            /* cut point feeding the block (node or graph input name) */
    const char *output;           /* last node of the block */
    int n_nodes;                  /* nodes inside (after BN folding: folded BN not counted) */
    uint64_t params;              /* floats after BN folding */
    double macs;
} gf_block_info;
gf_status gf_model_block(const gf_model *m, int i, gf_block_info *info);
/* Block index by name; -1 if none. A block below the top one means that block
 * AND every block above it up to the feature node (multi-block θ2: the index
 * of the span "<name>..<top>", also accepted by that name); the top block is
 * itself. Spans follow the n_blocks discovered blocks (gf_model_block works on
 * both; gf_model_info.n_spans counts them). */
int gf_model_find_block(const gf_model *m, const char *name);
/* The span of the top n blocks (n = 1: the top block); -1 if the model has fewer. */
int gf_model_top_blocks(const gf_model *m, int n);

/* ---------------------------------------------------------------- executor */
typedef struct gf_exec gf_exec;

/* Uploads the (folded) weights and allocates every node's output for up to
 * max_batch images. The model must outlive the executor. */
gf_status gf_exec_create(gf_ctx *ctx, const gf_model *m, int max_batch, gf_exec **out);
void gf_exec_free(gf_exec *e);
/* Upload n <= max_batch images (n x C x H x W floats, already preprocessed)
 * and enqueue the whole forward pass. Returns without waiting. */
gf_status gf_exec_run(gf_exec *e, const float *x, int n);
/* Read the output of node `name` for the n images of the last run:
 * n x (c*h*w) floats (blocking). A softmax node gives probabilities. */
gf_status gf_exec_read(gf_exec *e, const char *name, float *out, size_t count);
/* Floats per image of a node's output; 0 if unknown. */
size_t gf_exec_node_size(const gf_exec *e, const char *name);

/* Load an image file (any format stb_image reads) and preprocess it for the
 * model: gf_preprocess_numel floats. err may be NULL. */
gf_status gf_model_load_image(const gf_model *m, const char *path, float *out, char *err, size_t err_size);

#ifdef __cplusplus
}
#endif
#endif
