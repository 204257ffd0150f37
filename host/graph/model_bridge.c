/* Bridge from a loaded model to the top-block executor (block.h): a block of
 * the model (gf_model_block) as gf_bnode's plus its θ̄ in gf_block's layout.
 * Folded BatchNorm nodes are already inside their conv, so references to them
 * resolve to the conv (their alias); a BatchNorm that could not be folded is a
 * per-channel 1x1 depthwise conv, as in the graph executor. */
#include <string.h>
#include "model.h"

static int resolve(const gf_model *m, int i) {
    return i >= 0 && m->nodes[i].op == GF_OP_BATCHNORM && m->nodes[i].folded ? m->nodes[i].alias : i;
}

gf_status gf_model_block_nodes(gf_ctx *ctx, const gf_model *m, int bi, gf_bnode *nodes, int *n_nodes,
                               int *c_in, int *h_in, int *w_in) {
    if (!m || bi < 0 || bi >= m->n_blocks) return gf_fail(ctx, GF_ERR_USAGE, "model has no block %d", bi);
    const gf_mblock *b = &m->blocks[bi];
    if (b->n_nodes > GF_BLOCK_MAX_NODES)
        return gf_fail(ctx, GF_ERR_INPUT, "block '%s' has %d nodes (at most %d)", b->name, b->n_nodes, GF_BLOCK_MAX_NODES);
    int cut = resolve(m, b->input);
    if (cut == GF_NODE_INPUT) { *c_in = m->in_c; *h_in = m->in_h; *w_in = m->in_w; }
    else { *c_in = m->nodes[cut].c; *h_in = m->nodes[cut].h; *w_in = m->nodes[cut].w; }
    for (int k = 0; k < b->n_nodes; k++) {
        const gf_mnode *nd = &m->nodes[b->nodes[k]];
        gf_bnode *o = &nodes[k];
        memset(o, 0, sizeof *o);
        snprintf(o->name, sizeof o->name, "%s", nd->name);
        for (int a = 0; a < nd->n_in; a++) {
            int src = resolve(m, nd->in[a]);
            if (src == cut) { o->in[a] = GF_BLOCK_INPUT; continue; }
            o->in[a] = -2;
            for (int q = 0; q < k; q++)
                if (b->nodes[q] == src) o->in[a] = q;
            if (o->in[a] == -2)
                return gf_fail(ctx, GF_ERR_INPUT, "block '%s': node '%s' reads '%s' from outside the block", b->name,
                               nd->name, src >= 0 ? m->nodes[src].name : m->input_name);
        }
        o->in[1] = nd->n_in > 1 ? o->in[1] : GF_BLOCK_INPUT;
        o->has_bias = nd->b != NULL;
        switch (nd->op) {
        case GF_OP_CONV:
        case GF_OP_BATCHNORM:  /* only unfolded ones are listed */
            o->kind = GF_BN_CONV;
            if (nd->op == GF_OP_CONV)
                GF_TRY(gf_conv_desc_init(ctx, &o->conv, 1, nd->in_c, nd->in_h, nd->in_w, nd->c, nd->kernel[0], nd->kernel[1],
                                         nd->stride[0], nd->stride[1], nd->pad[0], nd->pad[2], nd->pad[1], nd->pad[3],
                                         nd->dil[0], nd->dil[1], nd->groups));
            else
                GF_TRY(gf_conv_desc_init(ctx, &o->conv, 1, nd->in_c, nd->in_h, nd->in_w, nd->c, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1,
                                         nd->c));
            break;
        case GF_OP_LINEAR:
            o->kind = GF_BN_LINEAR;
            o->lin_in = nd->in_c * nd->in_h * nd->in_w;
            o->lin_out = nd->c;
            break;
        case GF_OP_RELU: case GF_OP_RELU6: case GF_OP_LEAKY: case GF_OP_SIGMOID: case GF_OP_SILU:
        case GF_OP_HSIGMOID: case GF_OP_HSWISH: case GF_OP_GELU:
            o->kind = GF_BN_ACT;
            gf_op_act(nd, &o->act);
            break;
        case GF_OP_MUL: o->kind = GF_BN_MUL; break;   /* the loader put a gate second */
        case GF_OP_CONCAT: o->kind = GF_BN_CONCAT; o->n_in = nd->n_in; break;
        case GF_OP_LAYERNORM: o->kind = GF_BN_LAYERNORM; o->bn_eps = nd->eps; break;
        case GF_OP_SHUFFLE: o->kind = GF_BN_SHUFFLE; o->groups = nd->groups; break;
        case GF_OP_SLICE: o->kind = GF_BN_SLICE; o->slice_off = nd->slice_start; o->c = nd->c; break;
        case GF_OP_MAXPOOL: case GF_OP_AVGPOOL:
            o->kind = nd->op == GF_OP_MAXPOOL ? GF_BN_MAXPOOL : GF_BN_AVGPOOL;
            o->pool_k[0] = nd->kernel[0]; o->pool_k[1] = nd->kernel[1];
            o->pool_s[0] = nd->stride[0]; o->pool_s[1] = nd->stride[1];
            /* block.h order: top, bottom, left, right; ours: top, left, bottom, right */
            o->pool_pad[0] = nd->pad[0]; o->pool_pad[1] = nd->pad[2]; o->pool_pad[2] = nd->pad[1]; o->pool_pad[3] = nd->pad[3];
            o->count_include_pad = nd->count_include_pad;
            break;
        case GF_OP_GAP: o->kind = GF_BN_GAP; break;
        case GF_OP_ADD: o->kind = GF_BN_ADD; break;
        case GF_OP_FLATTEN: o->kind = GF_BN_FLATTEN; break;
        default:
            return gf_fail(ctx, GF_ERR_INPUT, "block '%s': node '%s' (%s) cannot be part of a top block", b->name, nd->name,
                           gf_op_name(nd->op));
        }
    }
    *n_nodes = b->n_nodes;
    return GF_OK;
}

gf_status gf_model_block_theta(gf_ctx *ctx, const gf_model *m, int bi, const gf_block *blk, float *theta) {
    if (!m || bi < 0 || bi >= m->n_blocks) return gf_fail(ctx, GF_ERR_USAGE, "model has no block %d", bi);
    const gf_mblock *b = &m->blocks[bi];
    int n = 0;
    const gf_bnode *bn = gf_block_nodes(blk, &n);
    if (n != b->n_nodes) return gf_fail(ctx, GF_ERR_USAGE, "block '%s': %d nodes vs %d in the executor", b->name, b->n_nodes, n);
    memset(theta, 0, gf_block_param_count(blk) * sizeof *theta);
    for (int k = 0; k < n; k++) {
        const gf_mnode *nd = &m->nodes[b->nodes[k]];
        if (bn[k].w_off >= 0) {
            if (!nd->W || bn[k].w_count != nd->w_count)
                return gf_fail(ctx, GF_ERR_USAGE, "block '%s': node '%s' weight size mismatch", b->name, nd->name);
            memcpy(theta + bn[k].w_off, nd->W, nd->w_count * sizeof *theta);
        }
        if (bn[k].b_off >= 0 && nd->b) memcpy(theta + bn[k].b_off, nd->b, bn[k].b_count * sizeof *theta);
    }
    return GF_OK;
}

int gf_model_block_cut(const gf_model *m, int bi) {
    if (!m || bi < 0 || bi >= m->n_blocks) return -2;
    return resolve(m, m->blocks[bi].input);
}

/* Shuffles one tensor in place (Fisher-Yates, xorshift64*): the same values,
 * so the same distribution per tensor, and nothing learned. */
static void shuffle_floats(float *v, size_t n, uint64_t *s) {
    for (size_t i = n; i > 1; i--) {
        *s ^= *s >> 12; *s ^= *s << 25; *s ^= *s >> 27;
        size_t j = (size_t)((*s * 0x2545F4914F6CDD1DULL) % i);
        float t = v[i - 1]; v[i - 1] = v[j]; v[j] = t;
    }
}

gf_status gf_model_randomize(gf_ctx *ctx, gf_model *m, int bi, int trunk, int block, uint64_t seed) {
    if (!m || bi < 0 || bi >= m->n_blocks) return gf_fail(ctx, GF_ERR_USAGE, "model has no block %d", bi);
    const gf_mblock *b = &m->blocks[bi];
    char *in_block = calloc((size_t)m->n_nodes + 1, 1);
    if (!in_block) return gf_fail(ctx, GF_ERR_MEMORY, "out of memory");
    for (int k = 0; k < b->n_nodes; k++) in_block[b->nodes[k]] = 1;
    int cut = resolve(m, b->input);
    uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 0xB5AD4ECEDA1CE2A9ULL;
    for (int i = 0; i < m->n_nodes; i++) {
        gf_mnode *nd = &m->nodes[i];
        int mine = in_block[i] ? block : (i <= cut && trunk);
        if (!mine || !nd->W) continue;
        shuffle_floats(nd->W, nd->w_count, &s);
        if (nd->b) shuffle_floats(nd->b, (size_t)nd->c, &s);
    }
    free(in_block);
    return GF_OK;
}
