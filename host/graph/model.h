/* Internal model structures shared by host/graph/safetensors.c, host/model*.c and
 * host/graph*.c, and the device-level executor calls that training code uses
 * (device buffers of any node, the trunk up to a cut). */
#ifndef GF_MODEL_INTERNAL_H
#define GF_MODEL_INTERNAL_H

#include <cjson/cJSON.h>
#include "gf_internal.h"
#include "gradfeat_model.h"
#include "block.h"

/* ---- safetensors container (host/graph/safetensors.c) ---- */
enum { GF_ST_F32 = 0, GF_ST_F16 = 1, GF_ST_MAX_DIMS = 8 };
#define GF_ST_MAX_HEADER ((uint64_t)64 << 20)  /* 64 MiB of JSON header at most */

typedef struct gf_st_tensor {
    char *name;
    int dtype;                        /* GF_ST_F32 / GF_ST_F16 */
    int ndim;
    int64_t shape[GF_ST_MAX_DIMS];
    uint64_t numel;
    uint64_t begin, end;              /* byte offsets inside the data area */
} gf_st_tensor;

typedef struct gf_st_file {
    char *path;
    uint64_t file_size, header_len, data_off;   /* data area = [data_off, file_size) */
    gf_st_tensor *t;
    int n;
    cJSON *header;                    /* parsed header (owns __metadata__) */
    const cJSON *meta;                /* __metadata__ object or NULL */
} gf_st_file;

/* Reads and checks the header (length bound, JSON, each tensor's dtype, shape,
 * offsets inside the data area). Reads only 8 + header_len bytes. */
gf_status gf_st_open(const char *path, gf_st_file *f, char *err, size_t err_size);
/* The same on a whole safetensors file image in memory (buf, n; kept by the caller while f is open);
 * path names it in messages. */
gf_status gf_st_open_mem(const void *buf, size_t n, const char *path, gf_st_file *f, char *err, size_t err_size);
void gf_st_close(gf_st_file *f);
int gf_st_find(const gf_st_file *f, const char *name);
/* String value of __metadata__[key]; NULL when absent or not a string. */
const char *gf_st_meta(const gf_st_file *f, const char *key);
/* Reads tensor i as float32 (F16 widened) into dst (numel floats). */
gf_status gf_st_read_f32(const gf_st_file *f, FILE *fp, int i, float *dst, char *err, size_t err_size);
/* Writing: gf_st_add_f32 appends a float32 tensor's values to data and its
 * entry (dtype, shape, data_offsets) to the JSON header hdr; gf_st_write
 * writes hdr (padded with spaces to a multiple of 8) and data to path
 * atomically (temp file + fsync + rename); file_xxh3 (may be NULL): the XXH3 64 of the whole file written. */
void gf_st_add_f32(cJSON *hdr, gf_sink *data, const char *name, const float *v, int ndim, const int64_t *shape);
gf_status gf_st_write(gf_ctx *ctx, const char *path, const cJSON *hdr, const gf_sink *data, uint64_t *file_xxh3);
/* The file image gf_st_write writes (8-byte length, padded header, data) into out, with the data checksum
 * in __metadata__ when hash (an image that never leaves memory needs none); GF_ERR_MEMORY when out of memory. */
gf_status gf_st_serialize(const cJSON *hdr, const gf_sink *data, gf_sink *out, int hash);

/* ---- ONNX (host/graph/onnx_import.c, protobuf-c) ---- */
/* Reads the ONNX model at path and gives the gradfeat model tools/convert_onnx.py writes for it: the
 * safetensors header *hdr (tensor entries + __metadata__: graph, preprocess, classes) and the data area
 * appended to data. GF_ERR_INPUT with the file / node / op named in err for a bad or unsupported model
 * (and always when built without protobuf-c: gf_onnx_supported() == 0). */
gf_status gf_onnx_import(const char *path, cJSON **hdr, gf_sink *data, char *err, size_t err_size);
int gf_onnx_supported(void);
/* 1 when path names an ONNX file (ends in .onnx, any case) */
int gf_onnx_path(const char *path);

/* ---- the model: its nodes are the IR's (ir.h), in topological order ---- */
typedef struct gf_mblock {
    char *name;
    int input;                        /* cut node index (GF_NODE_INPUT possible) */
    int output;
    int *nodes, n_nodes;              /* node indices inside, topological order (folded BN excluded) */
    uint64_t params;
    double macs;
    int span;                         /* 1: blocks i..0 joined (after the discovered blocks in the array) */
} gf_mblock;

struct gf_model {
    char err[1024];
    char *path;
    char *input_name;
    int in_c, in_h, in_w;
    gf_node *nodes;
    int n_nodes;
    int *outputs, n_outputs;
    int feature;                      /* node index or -2 when none */
    char **classes;
    int n_classes;
    gf_preprocess pre;
    gf_mblock *blocks;
    int n_blocks;
    int n_tensors;
    uint64_t n_params;
    double macs;
};

/* ---- model internals (host/graph/model.c) ---- */
/* Computes the blocks (host/graph/model_blocks.c) before any tensor is read; the
 * costs (params, MACs after folding) once the weights are in. */
gf_status gf_model_find_blocks(gf_model *m, const cJSON *explicit_blocks, char *err, size_t err_size);
void gf_model_block_costs(gf_model *m);
/* 1 when batchnorm node i folds into its producer (conv/linear with one consumer,
 * not itself an output or the feature node). */
int gf_model_bn_foldable(const gf_model *m, int i);

/* ---- executor, device level (host/graph/graph_exec.c) ---- */
/* Buffer holding node i's output for the executor's batch ([max_batch, c, h, w]);
 * GF_NODE_INPUT gives the input buffer. Softmax nodes give their logits. */
cl_mem gf_exec_buffer(const gf_exec *e, int node);
/* gf_exec_run of only the nodes that `node` depends on (and node itself): the trunk up to a block's cut
 * (gf_model_block_cut), without side branches or the top; GF_NODE_INPUT: the upload alone. */
gf_status gf_exec_run_to(gf_exec *e, const float *x, int n, int node);
/* An executor for gf_exec_run_to(e, x, n, node) alone (the trunk pass: node = a block's cut): only what node
 * depends on gets buffers, shared along the pass (gf_block_create_forward_to); gf_exec_run and other nodes'
 * buffers and reads are refused. */
gf_status gf_exec_create_to(gf_ctx *ctx, const gf_model *m, int max_batch, int node, gf_exec **out);

/* ---- top blocks as sub-graphs (host/graph/model_blocks.c) ---- */
/* Block bi (gf_model_block order: 0 = closest to the feature) on the device: the sub-graph of the model's
 * nodes b->nodes whose input is its cut (gf_block_create_sub). The trunk is everything up to the cut: run it
 * with gf_exec_run_to(e, x, n, cut) and take gf_exec_buffer(e, cut) as the block input, of per-sample
 * shape *c x *h x *w (gf_model_block_input; c, h, w may be NULL). */
gf_status gf_model_block_create(gf_ctx *ctx, const gf_model *m, int bi, int max_batch, gf_block **out);
void gf_model_block_input(const gf_model *m, int bi, int *c, int *h, int *w);
/* θ̄ of that block (folded weights) written into a host vector of
 * gf_block_param_count(blk) floats in blk's layout (w_off/b_off). */
gf_status gf_model_block_theta(gf_ctx *ctx, const gf_model *m, int bi, const gf_block *blk, float *theta);
/* Node index of block bi's cut (input), GF_NODE_INPUT for the graph input; after
 * alias resolution (a folded BatchNorm gives its conv). */
int gf_model_block_cut(const gf_model *m, int bi);
/* The paper's random-θ ablation: shuffle every parameter tensor (folded
 * weights and biases) of the trunk up to block bi's cut (trunk) and/or of the
 * block itself (block), seeded: same values per tensor, nothing learned. */
gf_status gf_model_randomize(gf_ctx *ctx, gf_model *m, int bi, int trunk, int block, uint64_t seed);

#endif
