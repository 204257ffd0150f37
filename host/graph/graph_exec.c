/* gf_exec, the whole network's forward (include/gradfeat_model.h, model.h): a forward-only graph of the
 * model's nodes run by the block executor (block.c), its parameters one buffer per tensor, and an input
 * buffer for max_batch images. Softmax (inference only, always a leaf) is applied on read-back, so the device
 * keeps the logits. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "model.h"

struct gf_exec {
    gf_ctx *ctx;
    const gf_model *m;
    gf_block *blk;
    gf_params p;
    cl_mem input;
    int max_batch, n;                 /* n: images of the last run */
    int only;                         /* gf_exec_create_to's node, else -1 */
};

void gf_exec_free(gf_exec *e) {
    if (!e) return;
    gf_params_free(&e->p);
    gf_block_free(e->blk);
    gf_buf_release(&e->input);
    free(e);
}

static gf_status exec_create(gf_ctx *ctx, const gf_model *m, int max_batch, int only, gf_exec **out) {
    *out = NULL;
    if (!m || !m->n_nodes || m->err[0]) return gf_fail(ctx, GF_ERR_USAGE, "executor: no loaded model");
    if (max_batch < 1) return gf_fail(ctx, GF_ERR_USAGE, "executor: batch %d < 1", max_batch);
    gf_exec *e = calloc(1, sizeof *e);
    if (!e) return gf_fail(ctx, GF_ERR_MEMORY, "executor: out of host memory");
    e->ctx = ctx; e->m = m; e->max_batch = max_batch; e->only = only;
    size_t in_n = (size_t)m->in_c * m->in_h * m->in_w;
    gf_status st = gf_buf_create_checked(ctx, (size_t)max_batch * in_n * sizeof(float), "input", m->input_name, 1,
                                         &e->input);
    if (st == GF_OK && only >= 0)
        st = gf_block_create_forward_to(ctx, m->in_c, m->in_h, m->in_w, m->nodes, m->n_nodes, max_batch, only, &e->blk);
    else if (st == GF_OK)
        st = gf_block_create_forward(ctx, m->in_c, m->in_h, m->in_w, m->nodes, m->n_nodes, max_batch, &e->blk);
    if (st == GF_OK) st = gf_params_create_each(ctx, e->blk, &e->p);
    if (st == GF_OK) st = gf_params_freeze(ctx, &e->p);   /* never changed: convs may keep their Winograd transforms */
    if (st != GF_OK) { gf_exec_free(e); return st; }
    *out = e;
    return GF_OK;
}

gf_status gf_exec_create(gf_ctx *ctx, const gf_model *m, int max_batch, gf_exec **out) {
    return exec_create(ctx, m, max_batch, -1, out);
}

gf_status gf_exec_create_to(gf_ctx *ctx, const gf_model *m, int max_batch, int node, gf_exec **out) {
    *out = NULL;
    if (m && (node < 0 || node >= m->n_nodes)) return gf_fail(ctx, GF_ERR_USAGE, "executor: no node %d", node);
    return exec_create(ctx, m, max_batch, node, out);
}

cl_mem gf_exec_buffer(const gf_exec *e, int node) {
    return node == GF_NODE_INPUT ? e->input : gf_block_node_output(e->blk, node);
}

/* Upload n images, then run every node (all) or those `node` depends on (GF_NODE_INPUT: none). */
static gf_status run(gf_exec *e, const float *x, int n, int all, int node) {
    if (e->only >= 0 && (all || node != e->only))
        return gf_fail(e->ctx, GF_ERR_USAGE, "executor: made to run to node '%s' only, asked for %s", e->m->nodes[e->only].name,
                       all ? "the whole model" : node == GF_NODE_INPUT ? "the input" : e->m->nodes[node].name);
    if (n < 1 || n > e->max_batch)
        return gf_fail(e->ctx, GF_ERR_USAGE, "executor: %d images for a batch of at most %d", n, e->max_batch);
    size_t in_n = (size_t)e->m->in_c * e->m->in_h * e->m->in_w;
    GF_TRY(gf_buf_write(e->ctx, e->input, 0, (size_t)n * in_n * sizeof(float), x));
    if (all) GF_TRY(gf_block_forward(e->ctx, e->blk, n, e->input, &e->p, NULL));
    else if (node != GF_NODE_INPUT) GF_TRY(gf_block_forward_to(e->ctx, e->blk, n, e->input, &e->p, node));
    e->n = n;
    return GF_OK;
}

gf_status gf_exec_run(gf_exec *e, const float *x, int n) { return run(e, x, n, 1, 0); }
gf_status gf_exec_run_to(gf_exec *e, const float *x, int n, int node) { return run(e, x, n, 0, node); }

size_t gf_exec_node_size(const gf_exec *e, const char *name) {
    int i = gf_model_find_node(e->m, name);
    if (i >= 0) return (size_t)e->m->nodes[i].c * e->m->nodes[i].h * e->m->nodes[i].w;
    if (name && !strcmp(name, e->m->input_name)) return (size_t)e->m->in_c * e->m->in_h * e->m->in_w;
    return 0;
}

gf_status gf_exec_read(gf_exec *e, const char *name, float *out, size_t count) {
    int i = gf_model_find_node(e->m, name);
    int is_input = i < 0 && name && !strcmp(name, e->m->input_name);
    if (i < 0 && !is_input) return gf_fail(e->ctx, GF_ERR_USAGE, "executor: no node named '%s'", name ? name : "(null)");
    if (e->n < 1) return gf_fail(e->ctx, GF_ERR_USAGE, "executor: nothing has run yet");
    if (e->only >= 0 && !is_input && i != e->only)
        return gf_fail(e->ctx, GF_ERR_USAGE, "executor: made to run to node '%s' only, which keeps no other node's "
                       "values ('%s')", e->m->nodes[e->only].name, name);
    size_t per = gf_exec_node_size(e, name), need = (size_t)e->n * per;
    if (count < need)
        return gf_fail(e->ctx, GF_ERR_USAGE, "executor: node '%s' needs %zu floats for %d images, buffer holds %zu",
                       name, need, e->n, count);
    GF_TRY(gf_buf_read(e->ctx, gf_exec_buffer(e, is_input ? GF_NODE_INPUT : i), 0, need * sizeof(float), out));
    if (!is_input && e->m->nodes[i].op == GF_OP_SOFTMAX) {
        for (int r = 0; r < e->n; r++) {
            float *z = out + (size_t)r * per;
            double mx = z[0], sum = 0;
            for (size_t k = 1; k < per; k++) if (z[k] > mx) mx = z[k];
            for (size_t k = 0; k < per; k++) sum += exp((double)z[k] - mx);
            for (size_t k = 0; k < per; k++) z[k] = (float)(exp((double)z[k] - mx) / sum);
        }
    }
    return GF_OK;
}
