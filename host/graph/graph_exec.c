/* Graph executor: the model's forward pass as one enqueue sequence on the
 * device. Every node output has its own buffer sized for max_batch images
 * (allocated once), so any named node can be read back; flatten, softmax and
 * folded BatchNorm nodes alias their input's buffer. Softmax (inference only,
 * always a leaf) is applied on read-back, so the device keeps the logits. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "model.h"
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

static size_t node_numel(const gf_node *nd) { return (size_t)nd->c * (size_t)nd->h * (size_t)nd->w; }

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
        const gf_node *nd = &m->nodes[i];
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

static cl_mem in_buf(const gf_exec_impl *s, const gf_node *nd, int a) {
    return nd->in[a] == GF_NODE_INPUT ? s->input : s->out[nd->in[a]];
}

/* Node i through the IR's forward (block.c): a folded BatchNorm, flatten and softmax alias their input's buffer
 * (softmax applied on read-back). */
static gf_status run_node(gf_exec_impl *s, int i, int n) {
    const gf_node *nd = &s->m->nodes[i];
    cl_mem xs[GF_MAX_INPUTS];
    int cs[GF_MAX_INPUTS];
    for (int a = 0; a < nd->n_in; a++) {
        xs[a] = in_buf(s, nd, a);
        cs[a] = nd->in[a] == GF_NODE_INPUT ? s->m->in_c : s->m->nodes[nd->in[a]].c;
    }
    return gf_node_forward(s->ctx, nd, n, xs, cs, s->W[i], s->b[i], s->out[i], NULL);
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
