/* Graph executor: the model's forward pass as one enqueue sequence on the
 * device. Every node output has its own buffer sized for max_batch images
 * (allocated once), so any named node can be read back; flatten, softmax and
 * folded BatchNorm nodes alias their input's buffer. Softmax (inference only,
 * always a leaf) is applied on read-back, so the device keeps the logits. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "model.h"
#include "ops_act.h"
#include "ops_affine.h"
#include "ops_ln.h"
#include "ops_merge.h"
#include "ops_pool.h"
#include "ops_util.h"

typedef struct gf_exec_impl {
    gf_ctx *ctx;
    const gf_model *m;
    int max_batch, n;
    cl_mem input;
    cl_mem *out;                      /* per node (aliases point at the owner's buffer) */
    cl_mem *W, *b;
} gf_exec_impl;
struct gf_exec { gf_exec_impl s; };

void gf_exec_free(gf_exec *e) {
    if (!e) return;
    const gf_model *m = e->s.m;
    for (int i = 0; e->s.out && i < m->n_nodes; i++)
        if (m->nodes[i].alias == i) gf_buf_release(&e->s.out[i]);
    for (int i = 0; e->s.W && i < m->n_nodes; i++) { gf_buf_release(&e->s.W[i]); gf_buf_release(&e->s.b[i]); }
    gf_buf_release(&e->s.input);
    free(e->s.out); free(e->s.W); free(e->s.b);
    free(e);
}

static size_t node_numel(const gf_mnode *nd) { return (size_t)nd->c * (size_t)nd->h * (size_t)nd->w; }

static gf_status alloc_checked(gf_ctx *ctx, size_t bytes, const char *what, const char *name, int batch, cl_mem *out) {
    if (bytes > ctx->info.max_alloc)
        return gf_fail(ctx, GF_ERR_MEMORY, "%s '%s': %zu bytes for batch %d exceed the device's largest allocation "
                       "(%llu bytes); use a smaller batch", what, name, bytes, batch,
                       (unsigned long long)ctx->info.max_alloc);
    return gf_buf_create(ctx, bytes, name, out);
}

gf_status gf_exec_create(gf_ctx *ctx, const gf_model *m, int max_batch, gf_exec **out) {
    *out = NULL;
    if (!m || !m->n_nodes || m->err[0]) return gf_fail(ctx, GF_ERR_USAGE, "executor: no loaded model");
    if (max_batch < 1) return gf_fail(ctx, GF_ERR_USAGE, "executor: batch %d < 1", max_batch);
    gf_exec *e = calloc(1, sizeof *e);
    if (!e) return gf_fail(ctx, GF_ERR_MEMORY, "executor: out of host memory");
    gf_exec_impl *s = &e->s;
    s->ctx = ctx;
    s->m = m;
    s->max_batch = max_batch;
    s->out = calloc((size_t)m->n_nodes, sizeof *s->out);
    s->W = calloc((size_t)m->n_nodes, sizeof *s->W);
    s->b = calloc((size_t)m->n_nodes, sizeof *s->b);
    gf_status st = GF_OK;
    if (!s->out || !s->W || !s->b) st = gf_fail(ctx, GF_ERR_MEMORY, "executor: out of host memory");
    size_t in_n = (size_t)m->in_c * m->in_h * m->in_w;
    if (st == GF_OK) st = alloc_checked(ctx, (size_t)max_batch * in_n * sizeof(float), "input", m->input_name, max_batch, &s->input);
    for (int i = 0; i < m->n_nodes && st == GF_OK; i++) {
        const gf_mnode *nd = &m->nodes[i];
        if (nd->alias == i)
            st = alloc_checked(ctx, (size_t)max_batch * node_numel(nd) * sizeof(float), "node", nd->name, max_batch, &s->out[i]);
        if (st == GF_OK && nd->W && !nd->folded) {
            if (nd->w_count * sizeof(float) > ctx->info.max_alloc)
                st = gf_fail(ctx, GF_ERR_MEMORY, "node '%s': weights of %zu bytes exceed the device's largest allocation "
                             "(%llu bytes)", nd->name, nd->w_count * sizeof(float), (unsigned long long)ctx->info.max_alloc);
            else
                st = gf_buf_create_from(ctx, nd->w_count * sizeof(float), nd->W, nd->name, &s->W[i]);
            if (st == GF_OK && nd->b) st = gf_buf_create_from(ctx, (size_t)nd->c * sizeof(float), nd->b, nd->name, &s->b[i]);
        }
    }
    for (int i = 0; i < m->n_nodes && st == GF_OK; i++)
        if (m->nodes[i].alias != i) s->out[i] = s->out[m->nodes[i].alias];
    if (st != GF_OK) { gf_exec_free(e); return st; }
    *out = e;
    return GF_OK;
}

cl_mem gf_exec_buffer(const gf_exec *e, int node) {
    if (node == GF_NODE_INPUT) return e->s.input;
    return node >= 0 && node < e->s.m->n_nodes ? e->s.out[node] : NULL;
}

void gf_exec_weights(const gf_exec *e, int node, cl_mem *W, cl_mem *b) {
    *W = *b = NULL;
    if (node >= 0 && node < e->s.m->n_nodes) { *W = e->s.W[node]; *b = e->s.b[node]; }
}

static cl_mem in_buf(const gf_exec_impl *s, const gf_mnode *nd, int a) {
    return nd->in[a] == GF_NODE_INPUT ? s->input : s->out[nd->in[a]];
}

static gf_status run_node(gf_exec_impl *s, int i, int n) {
    gf_ctx *ctx = s->ctx;
    const gf_mnode *nd = &s->m->nodes[i];
    cl_mem x = in_buf(s, nd, 0), y = s->out[i];
    size_t cnt = (size_t)n * node_numel(nd);
    switch (nd->op) {
    case GF_OP_CONV:
    case GF_OP_BATCHNORM: {
        if (nd->op == GF_OP_BATCHNORM && !nd->as_conv) return GF_OK;  /* folded */
        gf_conv_desc d;
        if (nd->op == GF_OP_CONV)
            GF_TRY(gf_conv_desc_init(ctx, &d, n, nd->in_c, nd->in_h, nd->in_w, nd->c, nd->kernel[0], nd->kernel[1],
                                     nd->stride[0], nd->stride[1], nd->pad[0], nd->pad[2], nd->pad[1], nd->pad[3],
                                     nd->dil[0], nd->dil[1], nd->groups));
        else
            GF_TRY(gf_conv_desc_init(ctx, &d, n, nd->in_c, nd->in_h, nd->in_w, nd->c, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, nd->c));
        return gf_conv2d_forward(ctx, &d, x, s->W[i], s->b[i], y);
    }
    case GF_OP_LINEAR:
        return gf_linear_forward(ctx, n, nd->in_c * nd->in_h * nd->in_w, nd->c, x, s->W[i], s->b[i], y);
    case GF_OP_RELU: case GF_OP_RELU6: case GF_OP_LEAKY: case GF_OP_SIGMOID: case GF_OP_SILU:
    case GF_OP_HSIGMOID: case GF_OP_HSWISH: case GF_OP_GELU: {
        gf_act a;
        gf_op_act(nd, &a);
        return gf_act_forward(ctx, a, cnt, x, y);
    }
    case GF_OP_LAYERNORM:
        return gf_ln_forward(ctx, (size_t)n, nd->c, (size_t)nd->h * nd->w, nd->eps, x, y);
    case GF_OP_MUL:
        return gf_mul_forward(ctx, (size_t)n * nd->c, (size_t)nd->h * nd->w, nd->gate, x, in_buf(s, nd, 1), y);
    case GF_OP_CONCAT: {
        int C[GF_MAX_INPUTS];
        cl_mem xs[GF_MAX_INPUTS];
        for (int a = 0; a < nd->n_in; a++) {
            int o = nd->in[a];
            C[a] = o == GF_NODE_INPUT ? s->m->in_c : s->m->nodes[o].c;
            xs[a] = in_buf(s, nd, a);
        }
        return gf_concat_forward(ctx, (size_t)n, (size_t)nd->h * nd->w, nd->n_in, C, xs, y);
    }
    case GF_OP_SHUFFLE:
        return gf_shuffle_forward(ctx, (size_t)n, nd->c, (size_t)nd->h * nd->w, nd->groups, x, y);
    case GF_OP_SLICE:
        return gf_slice_forward(ctx, (size_t)n, (size_t)nd->h * nd->w, nd->in_c, nd->slice_start, nd->c, x, y);
    case GF_OP_MAXPOOL:
    case GF_OP_AVGPOOL: {
        gf_pool2d p = {.N = n, .C = nd->in_c, .H = nd->in_h, .W = nd->in_w, .OH = nd->h, .OW = nd->w,
                       .kh = nd->kernel[0], .kw = nd->kernel[1], .sh = nd->stride[0], .sw = nd->stride[1],
                       .pt = nd->pad[0], .pb = nd->pad[2], .pl = nd->pad[1], .pr = nd->pad[3],
                       .count_include_pad = nd->count_include_pad};
        return nd->op == GF_OP_MAXPOOL ? gf_maxpool_forward(ctx, &p, x, y, NULL) : gf_avgpool_forward(ctx, &p, x, y);
    }
    case GF_OP_GAP:
        return gf_gap_forward(ctx, (size_t)n * nd->in_c, (size_t)nd->in_h * nd->in_w, x, y);
    case GF_OP_ADD:
        return gf_add(ctx, cnt, x, in_buf(s, nd, 1), y);
    case GF_OP_FLATTEN:
    case GF_OP_SOFTMAX:
        return GF_OK;  /* aliases; softmax is applied on read-back */
    default:
        return gf_fail(ctx, GF_ERR_INTERNAL, "node '%s': op %d has no executor", nd->name, (int)nd->op);
    }
}

gf_status gf_exec_enqueue_range(gf_exec *e, int n, int first, int last) {
    gf_exec_impl *s = &e->s;
    if (n < 1 || n > s->max_batch)
        return gf_fail(s->ctx, GF_ERR_USAGE, "executor: %d images for a batch of at most %d", n, s->max_batch);
    if (first < 0) first = 0;
    if (last >= s->m->n_nodes) last = s->m->n_nodes - 1;
    for (int i = first; i <= last; i++) GF_TRY(run_node(s, i, n));
    s->n = n;
    return GF_OK;
}

gf_status gf_exec_enqueue_to(gf_exec *e, int n, int node) {
    gf_exec_impl *s = &e->s;
    const gf_model *m = s->m;
    if (node == GF_NODE_INPUT) return GF_OK;
    if (node < 0 || node >= m->n_nodes) return gf_fail(s->ctx, GF_ERR_USAGE, "executor: no node %d", node);
    if (n < 1 || n > s->max_batch)
        return gf_fail(s->ctx, GF_ERR_USAGE, "executor: %d images for a batch of at most %d", n, s->max_batch);
    char *need = calloc((size_t)m->n_nodes, 1);
    if (!need) return gf_fail(s->ctx, GF_ERR_MEMORY, "executor: out of host memory");
    need[node] = 1;
    for (int i = node; i >= 0; i--)
        if (need[i])
            for (int a = 0; a < m->nodes[i].n_in; a++)
                if (m->nodes[i].in[a] >= 0) need[m->nodes[i].in[a]] = 1;
    gf_status st = GF_OK;
    for (int i = 0; i <= node && st == GF_OK; i++)
        if (need[i]) st = run_node(s, i, n);
    free(need);
    if (st == GF_OK) s->n = n;
    return st;
}

gf_status gf_exec_enqueue(gf_exec *e, int n) { return gf_exec_enqueue_range(e, n, 0, e->s.m->n_nodes - 1); }

gf_status gf_exec_run(gf_exec *e, const float *x, int n) {
    gf_exec_impl *s = &e->s;
    if (n < 1 || n > s->max_batch)
        return gf_fail(s->ctx, GF_ERR_USAGE, "executor: %d images for a batch of at most %d", n, s->max_batch);
    size_t in_n = (size_t)s->m->in_c * s->m->in_h * s->m->in_w;
    GF_TRY(gf_buf_write(s->ctx, s->input, 0, (size_t)n * in_n * sizeof(float), x));
    return gf_exec_enqueue(e, n);
}

size_t gf_exec_node_size(const gf_exec *e, const char *name) {
    int i = gf_model_find_node(e->s.m, name);
    if (i >= 0) return node_numel(&e->s.m->nodes[i]);
    if (name && !strcmp(name, e->s.m->input_name)) return (size_t)e->s.m->in_c * e->s.m->in_h * e->s.m->in_w;
    return 0;
}

gf_status gf_exec_read(gf_exec *e, const char *name, float *out, size_t count) {
    gf_exec_impl *s = &e->s;
    int i = gf_model_find_node(s->m, name);
    int is_input = i < 0 && name && !strcmp(name, s->m->input_name);
    if (i < 0 && !is_input) return gf_fail(s->ctx, GF_ERR_USAGE, "executor: no node named '%s'", name ? name : "(null)");
    if (s->n < 1) return gf_fail(s->ctx, GF_ERR_USAGE, "executor: nothing has run yet");
    size_t per = gf_exec_node_size(e, name), need = (size_t)s->n * per;
    if (count < need)
        return gf_fail(s->ctx, GF_ERR_USAGE, "executor: node '%s' needs %zu floats for %d images, buffer holds %zu",
                       name, need, s->n, count);
    GF_TRY(gf_buf_read(s->ctx, is_input ? s->input : s->out[i], 0, need * sizeof(float), out));
    if (!is_input && s->m->nodes[i].op == GF_OP_SOFTMAX) {
        for (int r = 0; r < s->n; r++) {
            float *z = out + (size_t)r * per;
            double mx = z[0], sum = 0;
            for (size_t k = 1; k < per; k++) if (z[k] > mx) mx = z[k];
            for (size_t k = 0; k < per; k++) sum += exp((double)z[k] - mx);
            for (size_t k = 0; k < per; k++) z[k] = (float)(exp((double)z[k] - mx) / sum);
        }
    }
    return GF_OK;
}
