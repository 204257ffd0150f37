/* The graph executor: forward, tangent (JVP) and backward over a graph, every op enqueued on the device; no
 * host reads. The one loop that runs nodes forward (forward()) serves the top block and, forward-only, the
 * whole network (graph_exec.c). See block.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "block.h"
#include "gf_dist.h"
#include "ops_util.h"

/* One node's device state. t, g, argmax: only in a block that is not forward-only. */
typedef struct gf_bnode {
    int own;                             /* the node whose y this is: itself, or the owner it aliases */
    int own_buf;                         /* y was created for this node: gf_block_free releases it here */
    int linearized, tzero, gwritten;     /* gf_block_set_linearized; tangent known to be 0; gradient written */
    cl_mem y, t, g, argmax;              /* primal output (kept for tangent/backward), tangent, gradient, routing */
    cl_mem bn_mean, bn_var;              /* BATCHNORM running statistics [C] */
    cl_mem bn_save_mean, bn_save_invstd; /* ... and the batch statistics of the last forward [C] */
    /* gf_block_set_bn_sync: training-mode BN statistics summed over the ranks (made on the first forward) */
    double bn_M;                         /* values per channel over all ranks in the last forward */
    cl_mem bn_lo;                        /* the batch mean is bn_save_mean + bn_lo (a float pair) [C] */
    float *h_stat;                       /* host copies of bn_lo and the saved invstd [2C] */
    /* a graph run forward to a node (fuse_epilogues): a conv that also computes the residual add and the
     * activation that follow it (gf_conv2d_forward_post), those two then having nothing to do */
    int post_by;                         /* 1 + the conv that computes this node's values, else 0 */
    int has_res, res_node;               /* a conv: adds node res_node's values (GF_NODE_INPUT: the input) */
    int has_act;                         /* a conv: then applies act */
    gf_act act;
    /* a training graph's 1x1 conv (not on the block input): its im2col of the input kept from the forward or the
     * tangent to the weight gradient of the same step (gf_conv_keep; .n set to 0 whenever the node values change) */
    gf_conv_keep keep;
} gf_bnode;

struct gf_block {
    int c_in, h_in, w_in;
    int n_nodes, max_batch, fwd_only;
    gf_node *nodes;                      /* [n_nodes] */
    gf_bnode *s;                         /* [n_nodes + 1]: s[n_nodes].gwritten is the block input's */
    size_t param_count, align;           /* align: sub-buffer alignment in floats */
    cl_mem tmp;                          /* for accumulating gradients from ops that overwrite */
    int training;                        /* BatchNorm mode for the next forward */
    int fwd_training;                    /* ... and the mode of the last forward (for the backward) */
    int bn_sync, sync_c;
    cl_mem s_sums, s_pa, s_pb;           /* [3 sync_c], [sync_c] x 2 */
    double *h_d;                         /* host [3 sync_c + 1] */
    float *h_f;                          /* host [3 sync_c] */
};

static size_t node_size(const gf_node *n) { return (size_t)n->c * n->h * n->w; }

static gf_status pool_desc(gf_ctx *ctx, const gf_node *nd, int N, int C, int H, int W, gf_pool2d *p) {
    memset(p, 0, sizeof *p);
    p->N = N; p->C = C; p->H = H; p->W = W;
    p->kh = nd->kernel[0]; p->kw = nd->kernel[1]; p->sh = nd->stride[0]; p->sw = nd->stride[1];
    p->pt = nd->pad[0]; p->pl = nd->pad[1]; p->pb = nd->pad[2]; p->pr = nd->pad[3];
    p->count_include_pad = nd->count_include_pad;
    if (p->kh < 1 || p->kw < 1 || p->sh < 1 || p->sw < 1)
        return gf_fail(ctx, GF_ERR_INPUT, "pool node '%s': kernel and stride must be positive", nd->name);
    p->OH = (H + p->pt + p->pb - p->kh) / p->sh + 1;
    p->OW = (W + p->pl + p->pr - p->kw) / p->sw + 1;
    if (p->OH < 1 || p->OW < 1)
        return gf_fail(ctx, GF_ERR_INPUT, "pool node '%s': window larger than its %dx%d input", nd->name, H, W);
    return GF_OK;
}

static int arity(const gf_node *nd) {
    return nd->kind == GF_K_ADD || nd->kind == GF_K_MUL ? 2 : nd->kind == GF_K_CONCAT ? nd->n_in : 1;
}

static void in_shape(const gf_block *b, const gf_node *nd, int k, int *c, int *h, int *w) {
    const gf_node *s = nd->in[k] == GF_NODE_INPUT ? NULL : &b->nodes[nd->in[k]];
    if (s) { *c = s->c; *h = s->h; *w = s->w; }
    else { *c = b->c_in; *h = b->h_in; *w = b->w_in; }
}

static size_t align_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

/* Node k of the sub-graph: g's node idx[k] with its inputs renumbered inside the sub-graph. */
static gf_status sub_node(gf_ctx *ctx, const gf_node *g, const int *idx, int k, int cut, gf_node *o) {
    *o = g[idx[k]];
    o->W = o->b = NULL;   /* the model's host parameters stay the model's (gf_model_block_theta) */
    for (int a = 0; a < arity(o); a++) {
        int src = o->in[a], q = k - 1;
        if (src >= 0 && g[src].folded) src = g[src].alias;
        while (q >= 0 && idx[q] != src) q--;
        if (src == cut) o->in[a] = GF_NODE_INPUT;
        else if (q >= 0) o->in[a] = q;
        else return gf_fail(ctx, GF_ERR_INPUT, "top-block node '%s' reads '%s' from outside the block", o->name,
                            src >= 0 ? g[src].name : "the input");
    }
    if (arity(o) < 2) o->in[1] = GF_NODE_INPUT;
    return GF_OK;
}

gf_status gf_buf_create_checked(gf_ctx *ctx, size_t bytes, const char *what, const char *name, int per_batch,
                               cl_mem *out) {
    char label[320];
    snprintf(label, sizeof label, "%s of '%s'", what, name);
    if (bytes > ctx->info.max_alloc)
        return gf_fail(ctx, GF_ERR_MEMORY, "%s: %zu bytes exceed the device's largest allocation (%llu bytes)%s", label,
                       bytes, (unsigned long long)ctx->info.max_alloc, per_batch ? "; use a smaller batch" : "");
    return gf_buf_create(ctx, bytes, label, out);
}

/* A buffer of share_buffers' pool: its size and the node whose output it holds now */
typedef struct shared_buf { cl_mem m; size_t bytes; int owner; } shared_buf;

/* mark[node] and mark[i] of every node it reads, back to the input (topological order: one backward pass) */
static void mark_deps(const gf_block *b, int node, char *mark) {
    mark[node] = 1;
    for (int i = node; i >= 0; i--)
        for (int k = 0; mark[i] && k < arity(&b->nodes[i]); k++)
            if (b->nodes[i].in[k] >= 0) mark[b->nodes[i].in[k]] = 1;
}

static int renames(const gf_node *nd) { return nd->kind == GF_K_NONE || nd->kind == GF_K_FLATTEN; }

/* The epilogues a conv of a graph run to node `keep` takes over (need: the nodes run; own: storage roots): a
 * conv whose values only an add reads, with the add's other input computed before the conv, adds that input as
 * its residual; a conv (or such an add) whose values only an activation reads applies it. keep, run last, has
 * no reader: its values are what its node computes. Saves the add's and the activation's passes over memory
 * (ReLU and the residual add: 5 % of ResNet-18's trunk pass). Nothing is fused when host memory runs out. */
static void fuse_epilogues(gf_block *b, const char *need) {
    int n = b->n_nodes;
    int *readers = calloc((size_t)n, sizeof *readers), *reader = malloc((size_t)n * sizeof *reader);
    for (int i = 0; readers && reader && i < n; i++) {   /* readers of each storage root among the nodes run */
        const gf_node *nd = &b->nodes[i];
        if (!need[i] || renames(nd)) continue;
        for (int k = 0; k < arity(nd); k++)
            if (nd->in[k] >= 0) {
                readers[b->s[nd->in[k]].own]++;
                reader[b->s[nd->in[k]].own] = i;
            }
    }
    for (int a = 0; readers && reader && a < n; a++) {
        gf_bnode *v = &b->s[a];
        if (!need[a] || b->nodes[a].kind != GF_K_CONV || readers[a] != 1) continue;
        int j = reader[a];
        const gf_node *nj = &b->nodes[j];
        if (nj->kind == GF_K_ADD) {
            int mine0 = nj->in[0] >= 0 && b->s[nj->in[0]].own == a, mine1 = nj->in[1] >= 0 && b->s[nj->in[1]].own == a;
            int o = mine0 ? nj->in[1] : nj->in[0];
            if (mine0 + mine1 != 1 || (o >= 0 && b->s[o].own >= a)) continue;   /* the other is not ready yet */
            v->has_res = 1;
            v->res_node = o;
            b->s[j].post_by = a + 1;
            if (readers[j] != 1) continue;
            j = reader[j];
            nj = &b->nodes[j];
        }
        if (nj->kind == GF_K_ACT) {
            v->has_act = 1;
            v->act = nj->act;
            b->s[j].post_by = a + 1;
        }
    }
    free(readers);
    free(reader);
}

/* The activations of a forward-only graph run only up to node `keep`: the nodes keep depends on get buffers,
 * a buffer handed on to a later node once no later one of them reads it (last[], by storage root), the
 * smallest free one that is big enough, else a new one. keep comes last, so its buffer is never handed on. */
static gf_status share_buffers(gf_ctx *ctx, gf_block *b, int keep, size_t nb) {
    int n = b->n_nodes;
    char *need = calloc((size_t)n, 1);
    int *last = malloc((size_t)n * sizeof *last);
    shared_buf *pool = calloc((size_t)n, sizeof *pool);
    gf_status st = need && last && pool ? GF_OK : gf_fail(ctx, GF_ERR_MEMORY, "out of host memory");
    int np = 0;
    if (st == GF_OK) {
        mark_deps(b, keep, need);
        for (int i = 0; i < n; i++) last[i] = -1;
    }
    for (int i = 0; st == GF_OK && i < n; i++) {   /* storage roots (aliases: their input's) */
        const gf_node *nd = &b->nodes[i];
        b->s[i].own = need[i] && nd->in[0] >= 0 && renames(nd) ? b->s[nd->in[0]].own : i;
    }
    if (st == GF_OK) fuse_epilogues(b, need);
    for (int i = 0; st == GF_OK && i < n; i++) {   /* again with the fused nodes' (their conv's), and last readers */
        const gf_node *nd = &b->nodes[i];
        gf_bnode *v = &b->s[i];
        v->own = !need[i] ? i : v->post_by ? b->s[v->post_by - 1].own : nd->in[0] >= 0 && renames(nd)
                 ? b->s[nd->in[0]].own : i;
        for (int k = 0; need[i] && k < arity(nd); k++)
            if (nd->in[k] >= 0) last[b->s[nd->in[k]].own] = i;
    }
    for (int i = 0; st == GF_OK && i <= keep; i++) {
        gf_bnode *v = &b->s[i];
        if (!need[i]) continue;
        if (v->own != i) { v->y = b->s[v->own].y; continue; }
        size_t bytes = nb * node_size(&b->nodes[i]) * sizeof(float);
        int pick = -1;
        for (int p = 0; p < np; p++)   /* free: its current node is read by none from node i on */
            if (last[pool[p].owner] < i && pool[p].bytes >= bytes && (pick < 0 || pool[p].bytes < pool[pick].bytes))
                pick = p;
        if (pick < 0) {
            pick = np++;
            st = gf_buf_create_checked(ctx, bytes, "activations", b->nodes[i].name, 1, &pool[pick].m);
            pool[pick].bytes = bytes;
            v->own_buf = 1;   /* gf_block_free releases it here */
        }
        pool[pick].owner = i;
        v->y = pool[pick].m;
    }
    free(need); free(last); free(pool);
    return st;
}

static gf_status create(gf_ctx *ctx, const gf_node *g, const int *idx, int n_nodes, int cut, int c_in, int h_in,
                        int w_in, int max_batch, int fwd_only, int keep, gf_block **out) {
    *out = NULL;
    if (n_nodes < 1) return gf_fail(ctx, GF_ERR_INPUT, "a graph of %d nodes", n_nodes);
    gf_block *b = calloc(1, sizeof *b);
    if (b) {
        b->nodes = calloc((size_t)n_nodes, sizeof *b->nodes);
        b->s = calloc((size_t)n_nodes + 1, sizeof *b->s);
    }
    if (!b || !b->nodes || !b->s) { gf_block_free(b); return gf_fail(ctx, GF_ERR_MEMORY, "out of memory"); }
    b->c_in = c_in; b->h_in = h_in; b->w_in = w_in;
    b->n_nodes = n_nodes; b->max_batch = max_batch; b->fwd_only = fwd_only;
    if (!idx) memcpy(b->nodes, g, (size_t)n_nodes * sizeof *g);
    for (int k = 0; idx && k < n_nodes; k++) {
        gf_status st = sub_node(ctx, g, idx, k, cut, &b->nodes[k]);
        if (st != GF_OK) { gf_block_free(b); return st; }
    }
    cl_uint align_bits = 1024;
    clGetDeviceInfo(ctx->device, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof align_bits, &align_bits, NULL);
    b->align = align_bits / 8 / sizeof(float);
    if (b->align < 1) b->align = 1;

    gf_status st = GF_OK;
    size_t off = 0, biggest = 0;
    for (int i = 0; i < n_nodes && st == GF_OK; i++) {
        gf_node *nd = &b->nodes[i];
        b->s[i].linearized = 1;
        nd->w_off = nd->b_off = -1; nd->w_count = nd->b_count = 0;
        if (nd->kind == GF_K_CONCAT && (nd->n_in < 2 || nd->n_in > GF_MAX_INPUTS)) {
            st = gf_fail(ctx, GF_ERR_INPUT, "concat node '%s' has %d inputs (2..%d)", nd->name, nd->n_in, GF_MAX_INPUTS);
            break;
        }
        for (int k = 0; k < arity(nd); k++)
            if (nd->in[k] != GF_NODE_INPUT && (nd->in[k] < 0 || nd->in[k] >= i)) {
                st = gf_fail(ctx, GF_ERR_INPUT, "top-block node '%s' reads node %d, which does not come before it",
                             nd->name, nd->in[k]);
                break;
            }
        if (st != GF_OK) break;
        int c, h, w;
        in_shape(b, nd, 0, &c, &h, &w);
        nd->in_c = c; nd->in_h = h; nd->in_w = w;
        switch (nd->kind) {
        case GF_K_CONV: {
            gf_conv_desc *d = &nd->conv;
            d->n = 1; d->c_in = c; d->h_in = h; d->w_in = w;
            st = gf_conv_desc_check(ctx, d);
            if (st != GF_OK) break;
            nd->c = d->c_out; nd->h = d->h_out; nd->w = d->w_out;
            nd->w_count = (size_t)d->c_out * (d->c_in / d->groups) * d->kh * d->kw;
            nd->b_count = nd->has_bias ? (size_t)d->c_out : 0;
            break;
        }
        case GF_K_LINEAR:
            nd->lin_in = c * h * w;
            nd->c = nd->lin_out; nd->h = nd->w = 1;
            nd->w_count = (size_t)nd->lin_out * nd->lin_in;
            nd->b_count = nd->has_bias ? (size_t)nd->lin_out : 0;
            break;
        case GF_K_ACT:
            nd->c = c; nd->h = h; nd->w = w;
            break;
        case GF_K_MAXPOOL: case GF_K_AVGPOOL: {
            gf_pool2d p;
            st = pool_desc(ctx, nd, 1, c, h, w, &p);
            nd->c = c; nd->h = p.OH; nd->w = p.OW;
            break;
        }
        case GF_K_GAP:
            nd->c = c; nd->h = nd->w = 1;
            break;
        case GF_K_FLATTEN:
            nd->c = c * h * w; nd->h = nd->w = 1;
            break;
        case GF_K_BATCHNORM:
            nd->c = c; nd->h = h; nd->w = w;
            nd->w_count = nd->b_count = (size_t)c;   /* gamma, beta */
            if (nd->eps == 0.0f) nd->eps = 1e-5f;
            if (nd->momentum == 0.0f) nd->momentum = 0.1f;
            if (!(nd->eps > 0.0f) || !(nd->momentum > 0.0f && nd->momentum <= 1.0f))
                st = gf_fail(ctx, GF_ERR_INPUT, "batchnorm node '%s': eps %g must be positive and momentum %g in "
                             "(0, 1]", nd->name, (double)nd->eps, (double)nd->momentum);
            break;
        case GF_K_ADD: {
            int c2, h2, w2;
            in_shape(b, nd, 1, &c2, &h2, &w2);
            if (c != c2 || h != h2 || w != w2)
                st = gf_fail(ctx, GF_ERR_INPUT, "add node '%s': inputs %dx%dx%d and %dx%dx%d differ", nd->name,
                             c, h, w, c2, h2, w2);
            nd->c = c; nd->h = h; nd->w = w;
            break;
        }
        case GF_K_MUL: {
            int c2, h2, w2;
            in_shape(b, nd, 1, &c2, &h2, &w2);
            nd->gate = c2 == c && h2 == 1 && w2 == 1 && (h != 1 || w != 1);
            if (c != c2 || (!nd->gate && (h != h2 || w != w2)))
                st = gf_fail(ctx, GF_ERR_INPUT, "mul node '%s': inputs %dx%dx%d and %dx%dx%d (the second must have the "
                             "first's shape or be a per-channel gate %dx1x1)", nd->name, c, h, w, c2, h2, w2, c);
            nd->c = c; nd->h = h; nd->w = w;
            break;
        }
        case GF_K_LAYERNORM:
            nd->c = c; nd->h = h; nd->w = w;
            if (!(nd->eps >= 0)) st = gf_fail(ctx, GF_ERR_INPUT, "layernorm node '%s': eps %g", nd->name, (double)nd->eps);
            break;
        case GF_K_SHUFFLE:
            if (nd->groups < 1 || c % nd->groups)
                st = gf_fail(ctx, GF_ERR_INPUT, "shuffle node '%s': %d channels in %d groups", nd->name, c, nd->groups);
            nd->c = c; nd->h = h; nd->w = w;
            break;
        case GF_K_SLICE:
            if (nd->slice_start < 0 || nd->c < 1 || nd->slice_start > c - nd->c)
                st = gf_fail(ctx, GF_ERR_INPUT, "slice node '%s': channels %d..%d of a %d-channel input", nd->name,
                             nd->slice_start, nd->slice_start + nd->c, c);
            nd->h = h; nd->w = w;
            break;
        case GF_K_CONCAT: {
            int total = 0;
            for (int k = 0; k < nd->n_in && st == GF_OK; k++) {
                int c2, h2, w2;
                in_shape(b, nd, k, &c2, &h2, &w2);
                if (h2 != h || w2 != w)
                    st = gf_fail(ctx, GF_ERR_INPUT, "concat node '%s': input %d is %dx%d, input 0 %dx%d", nd->name, k,
                                 h2, w2, h, w);
                total += c2;
            }
            nd->c = total; nd->h = h; nd->w = w;
            break;
        }
        case GF_K_NONE:   /* a folded BatchNorm, softmax: the input's values (forward-only graphs) */
            if (!fwd_only)
                st = gf_fail(ctx, GF_ERR_INPUT, "node '%s' (%s) cannot be part of a top block", nd->name,
                             gf_op_name(nd->op));
            nd->c = c; nd->h = h; nd->w = w;
            break;
        default:
            st = gf_fail(ctx, GF_ERR_INPUT, "top-block node '%s' has an unknown kind %d", nd->name, (int)nd->kind);
        }
        if (st != GF_OK) break;
        if (nd->w_count) { nd->w_off = (long)off; off = align_up(off + nd->w_count, b->align); }
        if (nd->b_count) { nd->b_off = (long)off; off = align_up(off + nd->b_count, b->align); }
        if (node_size(nd) > biggest) biggest = node_size(nd);
    }
    b->param_count = off ? off : b->align;
    size_t nb = (size_t)max_batch;
    if (st == GF_OK && keep >= 0) st = share_buffers(ctx, b, keep, nb);
    for (int i = 0; i < n_nodes && st == GF_OK; i++) {
        const gf_node *nd = &b->nodes[i];
        gf_bnode *v = &b->s[i];
        if (keep >= 0) {   /* activations by share_buffers; batchnorm statistics below */
            if (nd->kind != GF_K_BATCHNORM || i > keep) continue;
        } else {
            /* in a forward-only graph, a node that only renames its input (flatten, softmax, folded BN) keeps no
             * copy */
            int a = nd->in[0], alias = fwd_only && a >= 0 && renames(nd);
            v->own = alias ? b->s[a].own : i;
            if (alias) { v->y = b->s[v->own].y; continue; }
            v->own_buf = 1;
        }
        size_t bytes = nb * node_size(nd) * sizeof(float);
        if (keep < 0) st = gf_buf_create_checked(ctx, bytes, "activations", nd->name, 1, &v->y);
        if (st == GF_OK && !fwd_only) st = gf_buf_create_checked(ctx, bytes, "tangents", nd->name, 1, &v->t);
        if (st == GF_OK && !fwd_only) st = gf_buf_create_checked(ctx, bytes, "gradients", nd->name, 1, &v->g);
        if (st == GF_OK && !fwd_only && nd->kind == GF_K_CONV && nd->conv.kh == 1 && nd->conv.kw == 1 &&
            nd->conv.groups == 1 && nd->in[0] != GF_NODE_INPUT) {
            gf_conv_desc d = nd->conv;
            d.n = max_batch;
            v->keep.bytes = gf_conv_keep_bytes(&d);
            st = gf_buf_create_checked(ctx, v->keep.bytes, "kept im2col", nd->name, 1, &v->keep.buf);
        }
        if (st == GF_OK && !fwd_only && nd->kind == GF_K_MAXPOOL)
            st = gf_buf_create_checked(ctx, nb * node_size(nd) * sizeof(cl_int), "max-pool routing", nd->name, 1,
                                       &v->argmax);
        if (st == GF_OK && nd->kind == GF_K_BATCHNORM) {
            size_t cb = (size_t)nd->c * sizeof(float);
            char what[320];
            snprintf(what, sizeof what, "batchnorm statistics of '%s'", nd->name);
            st = gf_buf_create(ctx, cb, what, &v->bn_mean);   /* new buffers start at 0 */
            if (st == GF_OK) st = gf_buf_create(ctx, cb, what, &v->bn_var);
            if (st == GF_OK) st = gf_fill(ctx, (size_t)nd->c, 1.0f, v->bn_var);
            if (st == GF_OK) st = gf_buf_create(ctx, cb, what, &v->bn_save_mean);
            if (st == GF_OK) st = gf_buf_create(ctx, cb, what, &v->bn_save_invstd);
        }
    }
    size_t in_size = (size_t)c_in * h_in * w_in;
    if (st == GF_OK && !fwd_only)
        st = gf_buf_create(ctx, nb * (biggest > in_size ? biggest : in_size) * sizeof(float), "gradient accumulator",
                           &b->tmp);
    if (st != GF_OK) { gf_block_free(b); return st; }
    *out = b;
    return GF_OK;
}

gf_status gf_block_create(gf_ctx *ctx, int c_in, int h_in, int w_in, const gf_node *nodes, int n_nodes,
                          int max_batch, gf_block **out) {
    return create(ctx, nodes, NULL, n_nodes, GF_NODE_INPUT, c_in, h_in, w_in, max_batch, 0, -1, out);
}

gf_status gf_block_create_sub(gf_ctx *ctx, const gf_node *g, const int *idx, int n_nodes, int cut, int c_in, int h_in,
                              int w_in, int max_batch, gf_block **out) {
    return create(ctx, g, idx, n_nodes, cut, c_in, h_in, w_in, max_batch, 0, -1, out);
}

gf_status gf_block_create_forward(gf_ctx *ctx, int c_in, int h_in, int w_in, const gf_node *nodes, int n_nodes,
                                  int max_batch, gf_block **out) {
    return create(ctx, nodes, NULL, n_nodes, GF_NODE_INPUT, c_in, h_in, w_in, max_batch, 1, -1, out);
}

gf_status gf_block_create_forward_to(gf_ctx *ctx, int c_in, int h_in, int w_in, const gf_node *nodes, int n_nodes,
                                     int max_batch, int keep, gf_block **out) {
    if (keep < 0 || keep >= n_nodes) return gf_fail(ctx, GF_ERR_USAGE, "executor: no node %d", keep);
    return create(ctx, nodes, NULL, n_nodes, GF_NODE_INPUT, c_in, h_in, w_in, max_batch, 1, keep, out);
}

void gf_block_free(gf_block *b) {
    if (!b) return;
    for (int i = 0; b->s && i < b->n_nodes; i++) {
        gf_bnode *v = &b->s[i];
        if (v->own_buf) gf_buf_release(&v->y);
        gf_buf_release(&v->t); gf_buf_release(&v->g); gf_buf_release(&v->argmax); gf_buf_release(&v->keep.buf);
        gf_buf_release(&v->bn_mean); gf_buf_release(&v->bn_var);
        gf_buf_release(&v->bn_save_mean); gf_buf_release(&v->bn_save_invstd);
        gf_buf_release(&v->bn_lo); free(v->h_stat);
    }
    gf_buf_release(&b->tmp);
    gf_buf_release(&b->s_sums); gf_buf_release(&b->s_pa); gf_buf_release(&b->s_pb);
    free(b->h_d); free(b->h_f);
    free(b->nodes); free(b->s);
    free(b);
}

size_t gf_block_param_count(const gf_block *b) { return b->param_count; }
int gf_block_feature_dim(const gf_block *b) { return b->nodes[b->n_nodes - 1].c; }
int gf_block_input_size(const gf_block *b) { return b->c_in * b->h_in * b->w_in; }
int gf_block_max_batch(const gf_block *b) { return b->max_batch; }
cl_mem gf_block_node_output(const gf_block *b, int i) { return i >= 0 && i < b->n_nodes ? b->s[i].y : NULL; }
const gf_node *gf_block_nodes(const gf_block *b, int *n) { *n = b->n_nodes; return b->nodes; }
void gf_block_set_linearized(gf_block *b, int node, int on) {
    if (node >= 0 && node < b->n_nodes) b->s[node].linearized = on;
}
void gf_block_set_training(gf_block *b, int on) { b->training = on != 0; }
void gf_block_set_bn_sync(gf_block *b, int on) { b->bn_sync = on != 0; }
int gf_block_training(const gf_block *b) { return b->training; }
gf_status gf_block_bn_running(gf_block *b, int node, cl_mem *mean, cl_mem *var) {
    if (node < 0 || node >= b->n_nodes || b->nodes[node].kind != GF_K_BATCHNORM) return GF_ERR_USAGE;
    if (mean) *mean = b->s[node].bn_mean;
    if (var) *var = b->s[node].bn_var;
    return GF_OK;
}

static gf_status params_slots(gf_ctx *ctx, const gf_block *b, gf_params *p) {
    memset(p, 0, sizeof *p);
    p->n = b->n_nodes;
    if (!(p->w = calloc(2 * (size_t)p->n, sizeof *p->w))) return gf_fail(ctx, GF_ERR_MEMORY, "out of host memory");
    p->b = p->w + p->n;
    return GF_OK;
}

gf_status gf_params_create(gf_ctx *ctx, const gf_block *b, const char *what, gf_params *p) {
    GF_TRY(params_slots(ctx, b, p));
    p->count = b->param_count;
    gf_status st = gf_buf_create(ctx, p->count * sizeof(float), what, &p->all);
    if (st == GF_OK) st = gf_buf_zero(ctx, p->all, 0, p->count * sizeof(float));
    for (int i = 0; i < b->n_nodes && st == GF_OK; i++) {
        const gf_node *nd = &b->nodes[i];
        for (int k = 0; k < 2 && st == GF_OK; k++) {
            long o = k ? nd->b_off : nd->w_off;
            size_t cnt = k ? nd->b_count : nd->w_count;
            if (o < 0) continue;
            cl_buffer_region r = { (size_t)o * sizeof(float), cnt * sizeof(float) };
            cl_int e;
            cl_mem m = clCreateSubBuffer(p->all, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION, &r, &e);
            if (e != CL_SUCCESS) { st = gf_cl_fail(ctx, e, "clCreateSubBuffer (parameter slice)"); break; }
            if (k) p->b[i] = m; else p->w[i] = m;
        }
    }
    if (st != GF_OK) gf_params_free(p);
    return st;
}

gf_status gf_params_create_each(gf_ctx *ctx, const gf_block *b, gf_params *p) {
    GF_TRY(params_slots(ctx, b, p));
    gf_status st = GF_OK;
    for (int i = 0; i < b->n_nodes && st == GF_OK; i++) {
        const gf_node *nd = &b->nodes[i];
        size_t wb = nd->w_count * sizeof(float), bb = nd->b_count * sizeof(float);
        if (nd->W && wb) st = gf_buf_create_checked(ctx, wb, "weights", nd->name, 0, &p->w[i]);
        if (st == GF_OK && p->w[i]) st = gf_buf_write(ctx, p->w[i], 0, wb, nd->W);
        if (st == GF_OK && nd->b && bb) st = gf_buf_create_from(ctx, bb, nd->b, nd->name, &p->b[i]);
    }
    if (st != GF_OK) gf_params_free(p);
    return st;
}

gf_status gf_params_freeze(gf_ctx *ctx, gf_params *p) {
    if (p->fixed || p->n < 1) return GF_OK;
    p->fixed = calloc((size_t)p->n, sizeof *p->fixed);
    return p->fixed ? GF_OK : gf_fail(ctx, GF_ERR_MEMORY, "params: out of host memory");
}

void gf_params_free(gf_params *p) {
    for (int i = 0; p->fixed && i < p->n; i++) gf_conv_fixed_release(&p->fixed[i]);
    free(p->fixed);
    p->fixed = NULL;
    for (int i = 0; i < p->n; i++) { gf_buf_release(&p->w[i]); gf_buf_release(&p->b[i]); }
    free(p->w);
    p->w = p->b = NULL;
    p->n = 0;
    gf_buf_release(&p->all);
}

static cl_mem in_buf(const gf_block *b, const gf_node *nd, int k, cl_mem x) {
    return nd->in[k] == GF_NODE_INPUT ? x : b->s[nd->in[k]].y;
}

/* Node i's conv for n samples with the weights th: th's kept transforms when th is frozen, the node's kept im2col. */
static gf_status conv_for(gf_ctx *ctx, gf_block *b, int i, int n, const gf_params *th, gf_conv_desc *d) {
    *d = b->nodes[i].conv;
    d->n = n;
    d->fixed = th->fixed ? &th->fixed[i] : NULL;
    d->keep = b->s[i].keep.buf ? &b->s[i].keep : NULL;
    return gf_conv_desc_check(ctx, d);
}

/* The node values are about to change: no kept im2col holds them any more. */
static void keeps_stale(gf_block *b) {
    for (int i = 0; i < b->n_nodes; i++) b->s[i].keep.n = 0;
}

/* ---- BatchNorm over a batch split between ranks (gf_block_set_bn_sync) ----
 * Each rank holds a share of the batch. Two passes as in the one-process kernel: the per-channel sums of
 * x - x0 (x0 the rank's first value of the channel) give the mean, held as a float pair hi + lo; the sums
 * of x - hi and (x - hi)^2 then give the biased variance and the mean's last correction. Each pass adds
 * the ranks' float partial sums in double in rank order (gf_dist_sum_f64), so every rank gets the same
 * statistics, and the running statistics are updated alike everywhere. The backward adds sum(dy) and
 * sum(dy * xhat) over the ranks the same way; dgamma and dbeta stay this rank's share (the caller sums
 * the whole gradient vector). Every rank runs the same graph, so the collectives meet. */
static gf_status sync_buffers(gf_ctx *ctx, gf_block *b) {
    if (b->s_sums) return GF_OK;
    int C = 1;
    for (int i = 0; i < b->n_nodes; i++) {
        if (b->nodes[i].kind != GF_K_BATCHNORM) continue;
        int c = b->nodes[i].c;
        if (c > C) C = c;
        if (!(b->s[i].h_stat = calloc(2 * (size_t)c, sizeof(float))))
            return gf_fail(ctx, GF_ERR_MEMORY, "out of host memory for the batchnorm sums");
        GF_TRY(gf_buf_create(ctx, (size_t)c * sizeof(float), "batchnorm statistics", &b->s[i].bn_lo));
    }
    b->sync_c = C;
    size_t cb = (size_t)C * sizeof(float);
    b->h_d = malloc((3 * (size_t)C + 1) * sizeof(double));
    b->h_f = malloc(3 * cb);
    if (!b->h_d || !b->h_f) return gf_fail(ctx, GF_ERR_MEMORY, "out of host memory for the batchnorm sums");
    GF_TRY(gf_buf_create(ctx, 3 * cb, "batchnorm sums over ranks", &b->s_sums));
    GF_TRY(gf_buf_create(ctx, cb, "batchnorm sums over ranks", &b->s_pa));
    return gf_buf_create(ctx, cb, "batchnorm sums over ranks", &b->s_pb);
}

static gf_status bn_sync_forward(gf_ctx *ctx, gf_block *b, int i, int n, int c, int hw, cl_mem xin,
                                 const gf_params *th) {
    const gf_node *nd = &b->nodes[i];
    GF_TRY(sync_buffers(ctx, b));
    double *v = b->h_d, Mr = (double)n * hw;
    float *f = b->h_f, *lo = b->s[i].h_stat, *is = b->s[i].h_stat + c;
    size_t cb = (size_t)c * sizeof(float);
    /* pass 1: sum(x - x0) + M_r x0 per rank, and the number of values */
    GF_TRY(gf_bn_sums(ctx, n, c, hw, xin, NULL, b->s_sums));
    GF_TRY(gf_buf_read(ctx, b->s_sums, 0, 3 * cb, f));
    for (int k = 0; k < c; k++) v[k] = (double)f[k] + Mr * (double)f[2 * c + k];
    v[c] = Mr;
    GF_TRY(gf_dist_sum_f64(ctx, v, (size_t)c + 1));
    double M = v[c];
    if (M < 2)
        return gf_fail(ctx, GF_ERR_USAGE, "batchnorm node '%s' in training mode needs more than one value per channel "
                       "(the batch over all ranks has %.0f)", nd->name, M);
    b->s[i].bn_M = M;
    double *mean = malloc(2 * (size_t)c * sizeof(double)), *var = mean ? mean + c : NULL;
    if (!mean) return gf_fail(ctx, GF_ERR_MEMORY, "out of host memory for the batchnorm sums");
    for (int k = 0; k < c; k++) {
        mean[k] = v[k] / M;
        f[k] = (float)mean[k];                       /* hi */
    }
    /* pass 2: sum(x - hi) and sum((x - hi)^2); with d = x - hi - lo: sum(d) = S1 - M lo, sum(d^2) = S2 - 2 lo S1
     * + M lo^2, and the mean's correction sum(d) / M */
    gf_status st = gf_buf_write(ctx, b->s[i].bn_save_mean, 0, cb, f);
    if (st == GF_OK) st = gf_bn_sums(ctx, n, c, hw, xin, b->s[i].bn_save_mean, b->s_sums);
    if (st == GF_OK) st = gf_buf_read(ctx, b->s_sums, 0, 2 * cb, f);
    if (st == GF_OK) {
        for (int k = 0; k < 2 * c; k++) v[k] = f[k];
        st = gf_dist_sum_f64(ctx, v, 2 * (size_t)c);
    }
    if (st == GF_OK) {
        for (int k = 0; k < c; k++) {
            double hi = (float)mean[k], l = mean[k] - hi, S1 = v[k], S2 = v[c + k];
            double s1 = S1 - M * l, s2 = S2 - 2 * l * S1 + M * l * l, q = s2 / M - (s1 / M) * (s1 / M);
            mean[k] += s1 / M;
            var[k] = q > 0 ? q : 0;
            f[k] = (float)mean[k];
            lo[k] = (float)(mean[k] - (double)f[k]);
            is[k] = (float)(1.0 / sqrt(var[k] + (double)nd->eps));
        }
        st = gf_buf_write(ctx, b->s[i].bn_save_mean, 0, cb, f);
    }
    if (st == GF_OK) st = gf_buf_write(ctx, b->s[i].bn_lo, 0, cb, lo);
    if (st == GF_OK) st = gf_buf_write(ctx, b->s[i].bn_save_invstd, 0, cb, is);
    if (st == GF_OK) st = gf_bn_apply(ctx, n, c, hw, xin, th->w[i], th->b[i], b->s[i].bn_save_mean, b->s[i].bn_lo,
                                      b->s[i].bn_save_invstd, b->s[i].y);
    /* the running statistics as the one-process kernel updates them (in float) */
    float mom = nd->momentum, unbias = (float)(M / (M - 1.0));
    if (st == GF_OK) st = gf_buf_read(ctx, b->s[i].bn_mean, 0, cb, f);
    if (st == GF_OK) st = gf_buf_read(ctx, b->s[i].bn_var, 0, cb, f + c);
    if (st == GF_OK) {
        for (int k = 0; k < c; k++) {
            f[k] = (1.0f - mom) * f[k] + mom * (float)mean[k];
            f[c + k] = (1.0f - mom) * f[c + k] + mom * ((float)var[k] * unbias);
        }
        st = gf_buf_write(ctx, b->s[i].bn_mean, 0, cb, f);
    }
    if (st == GF_OK) st = gf_buf_write(ctx, b->s[i].bn_var, 0, cb, f + c);
    free(mean);
    return st;
}

/* The backward of a synchronised BN node: this rank's sum(dy) and sum(dy * xhat) (bn_backward's reduction
 * reads the mean as hi alone: sum(dy * xhat) takes - lo * invstd * sum(dy)), which are its dbeta and dgamma
 * shares; then dx with the sums over all ranks. */
static gf_status bn_sync_backward(gf_ctx *ctx, gf_block *b, int i, int n, int c, int hw, cl_mem xin,
                                  const gf_params *th, cl_mem dg, cl_mem db, cl_mem dx) {
    size_t cb = (size_t)c * sizeof(float);
    const float *lo = b->s[i].h_stat, *is = b->s[i].h_stat + c;
    double *v = b->h_d;
    float *f = b->h_f;
    int params = dg != NULL;
    if (!params) { dg = b->s_pa; db = b->s_pb; }
    GF_TRY(gf_bn_train_backward(ctx, n, c, hw, xin, b->s[i].g, th->w[i], b->s[i].bn_save_mean, b->s[i].bn_save_invstd,
                                NULL, dg, db, 0));
    GF_TRY(gf_buf_read(ctx, db, 0, cb, f));
    GF_TRY(gf_buf_read(ctx, dg, 0, cb, f + c));
    for (int k = 0; k < c; k++) {
        v[k] = f[k];
        v[c + k] = (double)f[c + k] - (double)lo[k] * is[k] * f[k];
        f[c + k] = (float)v[c + k];
    }
    if (params) GF_TRY(gf_buf_write(ctx, dg, 0, cb, f + c));
    if (!dx) return GF_OK;
    GF_TRY(gf_dist_sum_f64(ctx, v, 2 * (size_t)c));
    for (int k = 0; k < 2 * c; k++) f[k] = (float)v[k];
    GF_TRY(gf_buf_write(ctx, b->s_sums, 0, 2 * cb, f));
    return gf_bn_backward_dx(ctx, n, c, hw, xin, b->s[i].g, th->w[i], b->s[i].bn_save_mean, b->s[i].bn_lo,
                             b->s[i].bn_save_invstd, b->s_sums, b->s[i].bn_M, dx);
}

/* Node i's forward for n samples, the block input x: the one per-node forward (a flatten, softmax or folded
 * BatchNorm sharing its input's buffer has nothing to do). */
static gf_status node_forward(gf_ctx *ctx, gf_block *b, int i, int n, cl_mem x, const gf_params *th) {
    const gf_node *nd = &b->nodes[i];
    const gf_bnode *v = &b->s[i];
    cl_mem xs[GF_MAX_INPUTS], W = th->w[i], B = th->b[i], y = v->y;
    int cs[GF_MAX_INPUTS], c = nd->in_c, h = nd->in_h, w = nd->in_w, hh, ww;
    for (int k = 0; k < arity(nd); k++) {
        xs[k] = in_buf(b, nd, k, x);
        in_shape(b, nd, k, &cs[k], &hh, &ww);
    }
    size_t cnt = (size_t)n * node_size(nd), HW = (size_t)h * w;
    if (v->post_by) return GF_OK;   /* its conv computed it */
    switch (nd->kind) {
    case GF_K_CONV: {
        gf_conv_desc d;
        GF_TRY(conv_for(ctx, b, i, n, th, &d));
        cl_mem r = !v->has_res ? NULL : v->res_node == GF_NODE_INPUT ? x : b->s[v->res_node].y;
        return gf_conv2d_forward_post(ctx, &d, xs[0], W, B, r, v->has_act ? &v->act : NULL, y);
    }
    case GF_K_LINEAR: return gf_linear_forward(ctx, n, nd->lin_in, nd->lin_out, xs[0], W, B, y);
    case GF_K_ACT: return gf_act_forward(ctx, nd->act, cnt, xs[0], y);
    case GF_K_MAXPOOL: case GF_K_AVGPOOL: {
        gf_pool2d p;
        GF_TRY(pool_desc(ctx, nd, n, c, h, w, &p));
        return nd->kind == GF_K_MAXPOOL ? gf_maxpool_forward(ctx, &p, xs[0], y, v->argmax)
                                        : gf_avgpool_forward(ctx, &p, xs[0], y);
    }
    case GF_K_GAP: return gf_gap_forward(ctx, (size_t)n * c, HW, xs[0], y);
    case GF_K_FLATTEN: return xs[0] == y ? GF_OK : gf_buf_copy(ctx, xs[0], 0, y, 0, cnt * sizeof(float));
    case GF_K_ADD: return gf_add(ctx, cnt, xs[0], xs[1], y);
    case GF_K_LAYERNORM: return gf_ln_forward(ctx, (size_t)n, c, HW, nd->eps, xs[0], y);
    case GF_K_MUL: return gf_mul_forward(ctx, (size_t)n * c, HW, nd->gate, xs[0], xs[1], y);
    case GF_K_SHUFFLE: return gf_shuffle_forward(ctx, (size_t)n, c, HW, nd->groups, xs[0], y);
    case GF_K_SLICE: return gf_slice_forward(ctx, (size_t)n, HW, c, nd->slice_start, nd->c, xs[0], y);
    case GF_K_CONCAT: return gf_concat_forward(ctx, (size_t)n, HW, nd->n_in, cs, xs, y);
    case GF_K_BATCHNORM:
        if (!b->training)
            return gf_bn_eval_forward(ctx, n, c, h * w, xs[0], W, B, nd->eps, v->bn_mean, v->bn_var, y);
        if (b->bn_sync) return bn_sync_forward(ctx, b, i, n, c, h * w, xs[0], th);
        if ((size_t)n * h * w < 2)
            return gf_fail(ctx, GF_ERR_USAGE, "batchnorm node '%s' in training mode needs more than one value per "
                           "channel (batch %d of %dx%d maps); use a batch of at least 2", nd->name, n, h, w);
        return gf_bn_train_forward(ctx, n, c, h * w, xs[0], W, B, nd->eps, nd->momentum, v->bn_mean, v->bn_var, y,
                                   v->bn_save_mean, v->bn_save_invstd);
    case GF_K_NONE: return GF_OK;
    default: return gf_fail(ctx, GF_ERR_INTERNAL, "node '%s': kind %d has no forward", nd->name, (int)nd->kind);
    }
}

/* The executor's one forward loop: the nodes marked in run (NULL: all) in topological order, then f = the last
 * node's output pooled, when f is given. */
static gf_status forward(gf_ctx *ctx, gf_block *b, int n, cl_mem x, const gf_params *th, const char *run, cl_mem f) {
    if (n < 1 || n > b->max_batch) return gf_fail(ctx, GF_ERR_INTERNAL, "block batch %d outside 1..%d", n, b->max_batch);
    b->fwd_training = b->training;
    keeps_stale(b);
    for (int i = 0; i < b->n_nodes; i++)
        if (!run || run[i]) GF_TRY(node_forward(ctx, b, i, n, x, th));
    if (!f) return GF_OK;
    const gf_node *last = &b->nodes[b->n_nodes - 1];
    return gf_gap_forward(ctx, (size_t)n * last->c, (size_t)last->h * last->w, b->s[b->n_nodes - 1].y, f);
}

gf_status gf_block_forward(gf_ctx *ctx, gf_block *b, int n, cl_mem x, const gf_params *th, cl_mem f) {
    return forward(ctx, b, n, x, th, NULL, f);
}

gf_status gf_block_forward_to(gf_ctx *ctx, gf_block *b, int n, cl_mem x, const gf_params *th, int node) {
    if (node < 0 || node >= b->n_nodes) return gf_fail(ctx, GF_ERR_USAGE, "executor: no node %d", node);
    char *run = calloc((size_t)b->n_nodes, 1);
    if (!run) return gf_fail(ctx, GF_ERR_MEMORY, "executor: out of host memory");
    mark_deps(b, node, run);   /* node and what it reads, back to the input */
    gf_status st = forward(ctx, b, n, x, th, run, NULL);
    free(run);
    return st;
}

gf_status gf_block_tangent(gf_ctx *ctx, gf_block *b, int n, cl_mem x, const gf_params *th, const gf_params *w2,
                           cl_mem tf) {
    if (b->fwd_only) return gf_fail(ctx, GF_ERR_USAGE, "a forward-only graph has no tangent");
    for (int i = 0; i < b->n_nodes; i++)
        if (b->nodes[i].kind == GF_K_BATCHNORM)
            return gf_fail(ctx, GF_ERR_USAGE, "top-block node '%s': batchnorm has no tangent in a block; model files "
                           "fold BN into the preceding conv at load, so use a folded model for the linearized methods "
                           "(or train this block with finetune)", b->nodes[i].name);
    for (int i = 0; i < b->n_nodes; i++) {
        const gf_node *nd = &b->nodes[i];
        int c = nd->in_c, h = nd->in_h, w = nd->in_w;
        size_t cnt = (size_t)n * node_size(nd);
        int z0 = nd->in[0] == GF_NODE_INPUT || b->s[nd->in[0]].tzero;   /* incoming tangent is exactly 0 */
        cl_mem tin = z0 ? NULL : b->s[nd->in[0]].t;
        cl_mem xin = in_buf(b, nd, 0, x);
        b->s[i].tzero = 0;
        switch (nd->kind) {
        case GF_K_CONV: case GF_K_LINEAR: {
            int lin = b->s[i].linearized;
            if (!lin && z0) { b->s[i].tzero = 1; break; }
            if (nd->kind == GF_K_CONV) {
                gf_conv_desc d;
                GF_TRY(conv_for(ctx, b, i, n, th, &d));
                GF_TRY(gf_conv2d_tangent(ctx, &d, xin, lin ? w2->w[i] : NULL, lin ? w2->b[i] : NULL,
                                         tin ? th->w[i] : NULL, tin, b->s[i].t));
            } else {
                GF_TRY(gf_linear_tangent(ctx, n, nd->lin_in, nd->lin_out, xin, lin ? w2->w[i] : NULL,
                                         lin ? w2->b[i] : NULL, tin ? th->w[i] : NULL, tin, b->s[i].t));
            }
            break;
        }
        case GF_K_ACT:
            if (z0) { b->s[i].tzero = 1; break; }
            GF_TRY(gf_act_tangent(ctx, nd->act, cnt, xin, tin, b->s[i].t));
            break;
        case GF_K_MAXPOOL: case GF_K_AVGPOOL: {
            if (z0) { b->s[i].tzero = 1; break; }
            gf_pool2d p;
            GF_TRY(pool_desc(ctx, nd, n, c, h, w, &p));
            if (nd->kind == GF_K_MAXPOOL) GF_TRY(gf_maxpool_tangent(ctx, &p, b->s[i].argmax, tin, b->s[i].t));
            else GF_TRY(gf_avgpool_tangent(ctx, &p, tin, b->s[i].t));
            break;
        }
        case GF_K_GAP:
            if (z0) { b->s[i].tzero = 1; break; }
            GF_TRY(gf_gap_tangent(ctx, (size_t)n * c, (size_t)h * w, tin, b->s[i].t));
            break;
        case GF_K_FLATTEN:
            if (z0) { b->s[i].tzero = 1; break; }
            GF_TRY(gf_buf_copy(ctx, tin, 0, b->s[i].t, 0, cnt * sizeof(float)));
            break;
        case GF_K_ADD: {
            int z1 = nd->in[1] == GF_NODE_INPUT || b->s[nd->in[1]].tzero;
            if (z0 && z1) b->s[i].tzero = 1;
            else if (z1) GF_TRY(gf_buf_copy(ctx, tin, 0, b->s[i].t, 0, cnt * sizeof(float)));
            else if (z0) GF_TRY(gf_buf_copy(ctx, b->s[nd->in[1]].t, 0, b->s[i].t, 0, cnt * sizeof(float)));
            else GF_TRY(gf_add(ctx, cnt, tin, b->s[nd->in[1]].t, b->s[i].t));
            break;
        }
        case GF_K_LAYERNORM:
            if (z0) { b->s[i].tzero = 1; break; }
            GF_TRY(gf_ln_tangent(ctx, (size_t)n, c, (size_t)h * w, nd->eps, xin, tin, b->s[i].t));
            break;
        case GF_K_MUL: {
            int z1 = nd->in[1] == GF_NODE_INPUT || b->s[nd->in[1]].tzero;
            if (z0 && z1) { b->s[i].tzero = 1; break; }
            GF_TRY(gf_mul_tangent(ctx, (size_t)n * c, (size_t)h * w, nd->gate, xin, in_buf(b, nd, 1, x), tin,
                                  z1 ? NULL : b->s[nd->in[1]].t, b->s[i].t));
            break;
        }
        case GF_K_SHUFFLE:
            if (z0) { b->s[i].tzero = 1; break; }
            GF_TRY(gf_shuffle_forward(ctx, (size_t)n, c, (size_t)h * w, nd->groups, tin, b->s[i].t));
            break;
        case GF_K_SLICE:
            if (z0) { b->s[i].tzero = 1; break; }
            GF_TRY(gf_slice_forward(ctx, (size_t)n, (size_t)h * w, c, nd->slice_start, nd->c, tin, b->s[i].t));
            break;
        case GF_K_CONCAT: {
            int C[GF_MAX_INPUTS], all_zero = 1;
            cl_mem ts[GF_MAX_INPUTS];
            for (int k = 0; k < nd->n_in; k++) {
                int hh, ww;
                in_shape(b, nd, k, &C[k], &hh, &ww);
                int zk = nd->in[k] == GF_NODE_INPUT || b->s[nd->in[k]].tzero;
                ts[k] = zk ? NULL : b->s[nd->in[k]].t;
                all_zero &= zk;
            }
            if (all_zero) { b->s[i].tzero = 1; break; }
            GF_TRY(gf_concat_forward(ctx, (size_t)n, (size_t)h * w, nd->n_in, C, ts, b->s[i].t));
            break;
        }
        case GF_K_BATCHNORM: case GF_K_NONE: break;   /* refused above, and by gf_block_create */
        }
    }
    const gf_node *last = &b->nodes[b->n_nodes - 1];
    if (b->s[b->n_nodes - 1].tzero) return gf_fill(ctx, (size_t)n * last->c, 0.0f, tf);
    return gf_gap_tangent(ctx, (size_t)n * last->c, (size_t)last->h * last->w, b->s[b->n_nodes - 1].t, tf);
}

/* Where a node's input gradient goes: straight into g[in] on the first write,
 * else into tmp, to be added afterwards (finish_grad). */
typedef struct { cl_mem dst, target; size_t count; int accumulate; } grad_slot;

static int grad_slot_for(gf_block *b, const gf_node *nd, int k, cl_mem gx, size_t count, grad_slot *s) {
    int src = nd->in[k];
    int idx = src == GF_NODE_INPUT ? b->n_nodes : src;
    cl_mem target = src == GF_NODE_INPUT ? gx : b->s[src].g;
    if (!target) return 0;
    s->target = target; s->count = count;
    s->accumulate = b->s[idx].gwritten;
    s->dst = s->accumulate ? b->tmp : target;
    b->s[idx].gwritten = 1;
    return 1;
}

static gf_status finish_grad(gf_ctx *ctx, const grad_slot *s) {
    if (!s->accumulate) return GF_OK;
    return gf_axpby(ctx, s->count, 1.0f, s->dst, 1.0f, s->target);
}

gf_status gf_block_backward(gf_ctx *ctx, gf_block *b, int n, cl_mem x, const gf_params *th, cl_mem gfeat,
                            gf_params *grad, cl_mem gx) {
    if (b->fwd_only) return gf_fail(ctx, GF_ERR_USAGE, "a forward-only graph has no backward");
    for (int i = 0; i <= b->n_nodes; i++) b->s[i].gwritten = 0;
    int L = b->n_nodes - 1;
    const gf_node *last = &b->nodes[L];
    GF_TRY(gf_gap_backward(ctx, (size_t)n * last->c, (size_t)last->h * last->w, gfeat, b->s[L].g));
    b->s[L].gwritten = 1;
    if (grad) GF_TRY(gf_buf_zero(ctx, grad->all, 0, grad->count * sizeof(float)));
    for (int i = L; i >= 0; i--) {
        if (!b->s[i].gwritten) continue;
        const gf_node *nd = &b->nodes[i];
        cl_mem xin = in_buf(b, nd, 0, x);
        int c = nd->in_c, h = nd->in_h, w = nd->in_w;
        size_t in_cnt = (size_t)n * c * h * w, cnt = (size_t)n * node_size(nd);
        grad_slot s;
        switch (nd->kind) {
        case GF_K_CONV: case GF_K_LINEAR: {
            gf_conv_desc d;
            if (nd->kind == GF_K_CONV) GF_TRY(conv_for(ctx, b, i, n, th, &d));
            int wgrad = grad && b->s[i].linearized, igrad = grad_slot_for(b, nd, 0, gx, in_cnt, &s);
            /* both gradients in one call when neither adds to what its buffer holds (one layout pass over g);
             * an input gradient that adds (accumulate) goes in a call of its own, the weights' never add */
            int both = wgrad && igrad && !s.accumulate;
            cl_mem gW = wgrad ? grad->w[i] : NULL, gB = wgrad ? grad->b[i] : NULL;
            if (wgrad && !both) {
                if (nd->kind == GF_K_CONV)
                    GF_TRY(gf_conv2d_backward(ctx, &d, xin, th->w[i], b->s[i].g, NULL, gW, gB, 0));
                else
                    GF_TRY(gf_linear_backward(ctx, n, nd->lin_in, nd->lin_out, xin, th->w[i], b->s[i].g, NULL, gW,
                                              gB, 0));
            }
            if (igrad) {
                if (!both) gW = gB = NULL;
                if (nd->kind == GF_K_CONV)
                    GF_TRY(gf_conv2d_backward(ctx, &d, xin, th->w[i], b->s[i].g, s.target, gW, gB, s.accumulate));
                else
                    GF_TRY(gf_linear_backward(ctx, n, nd->lin_in, nd->lin_out, xin, th->w[i], b->s[i].g, s.target,
                                              gW, gB, s.accumulate));
            }
            break;
        }
        case GF_K_ACT:
            if (grad_slot_for(b, nd, 0, gx, in_cnt, &s)) {
                GF_TRY(gf_act_backward(ctx, nd->act, cnt, xin, b->s[i].g, s.dst));
                GF_TRY(finish_grad(ctx, &s));
            }
            break;
        case GF_K_MAXPOOL: case GF_K_AVGPOOL:
            if (grad_slot_for(b, nd, 0, gx, in_cnt, &s)) {
                gf_pool2d p;
                GF_TRY(pool_desc(ctx, nd, n, c, h, w, &p));
                if (nd->kind == GF_K_MAXPOOL) GF_TRY(gf_maxpool_backward(ctx, &p, b->s[i].argmax, b->s[i].g, s.dst));
                else GF_TRY(gf_avgpool_backward(ctx, &p, b->s[i].g, s.dst));
                GF_TRY(finish_grad(ctx, &s));
            }
            break;
        case GF_K_GAP:
            if (grad_slot_for(b, nd, 0, gx, in_cnt, &s)) {
                GF_TRY(gf_gap_backward(ctx, (size_t)n * c, (size_t)h * w, b->s[i].g, s.dst));
                GF_TRY(finish_grad(ctx, &s));
            }
            break;
        case GF_K_BATCHNORM: {
            int params = grad && b->s[i].linearized;
            int to_in = grad_slot_for(b, nd, 0, gx, in_cnt, &s);
            if (!params && !to_in) break;
            cl_mem dg = params ? grad->w[i] : NULL, db = params ? grad->b[i] : NULL, dx = to_in ? s.dst : NULL;
            if (b->fwd_training && b->bn_sync)   /* sums over the ranks, then dx with them */
                GF_TRY(bn_sync_backward(ctx, b, i, n, c, h * w, xin, th, dg, db, dx));
            else if (b->fwd_training)
                GF_TRY(gf_bn_train_backward(ctx, n, c, h * w, xin, b->s[i].g, th->w[i], b->s[i].bn_save_mean,
                                            b->s[i].bn_save_invstd, dx, dg, db, 0));
            else
                GF_TRY(gf_bn_eval_backward(ctx, n, c, h * w, xin, b->s[i].g, th->w[i], nd->eps, b->s[i].bn_mean,
                                           b->s[i].bn_var, dx, dg, db, 0));
            if (to_in) GF_TRY(finish_grad(ctx, &s));
            break;
        }
        case GF_K_LAYERNORM:
            if (grad_slot_for(b, nd, 0, gx, in_cnt, &s)) {
                GF_TRY(gf_ln_backward(ctx, (size_t)n, c, (size_t)h * w, nd->eps, xin, b->s[i].g, s.dst));
                GF_TRY(finish_grad(ctx, &s));
            }
            break;
        case GF_K_MUL: {
            /* one input at a time: both may be the same node, and both slots may need tmp */
            cl_mem s_in = in_buf(b, nd, 1, x);
            size_t planes = (size_t)n * c, HW = (size_t)h * w;
            if (grad_slot_for(b, nd, 0, gx, in_cnt, &s)) {
                GF_TRY(gf_mul_backward(ctx, planes, HW, nd->gate, xin, s_in, b->s[i].g, s.dst, NULL));
                GF_TRY(finish_grad(ctx, &s));
            }
            if (grad_slot_for(b, nd, 1, gx, nd->gate ? planes : in_cnt, &s)) {
                GF_TRY(gf_mul_backward(ctx, planes, HW, nd->gate, xin, s_in, b->s[i].g, NULL, s.dst));
                GF_TRY(finish_grad(ctx, &s));
            }
            break;
        }
        case GF_K_CONCAT:
            for (int k = 0, off = 0; k < nd->n_in; k++) {
                int ck, hh, ww;
                in_shape(b, nd, k, &ck, &hh, &ww);
                if (grad_slot_for(b, nd, k, gx, (size_t)n * ck * h * w, &s))
                    GF_TRY(gf_concat_backward(ctx, (size_t)n, (size_t)h * w, nd->c, off, ck, b->s[i].g, s.target,
                                              s.accumulate));
                off += ck;
            }
            break;
        case GF_K_SHUFFLE:
            if (grad_slot_for(b, nd, 0, gx, in_cnt, &s))
                GF_TRY(gf_shuffle_backward(ctx, (size_t)n, c, (size_t)h * w, nd->groups, b->s[i].g, s.target,
                                           s.accumulate));
            break;
        case GF_K_SLICE:
            if (grad_slot_for(b, nd, 0, gx, in_cnt, &s))
                GF_TRY(gf_slice_backward(ctx, (size_t)n, (size_t)h * w, c, nd->slice_start, nd->c, b->s[i].g, s.target,
                                         s.accumulate));
            break;
        case GF_K_FLATTEN: case GF_K_ADD:
            for (int k = 0; k < (nd->kind == GF_K_ADD ? 2 : 1); k++)
                if (grad_slot_for(b, nd, k, gx, cnt, &s)) {
                    if (s.accumulate) GF_TRY(gf_axpby(ctx, cnt, 1.0f, b->s[i].g, 1.0f, s.target));
                    else GF_TRY(gf_buf_copy(ctx, b->s[i].g, 0, s.target, 0, cnt * sizeof(float)));
                }
            break;
        case GF_K_NONE: break;   /* refused by gf_block_create */
        }
    }
    if (gx && !b->s[b->n_nodes].gwritten) GF_TRY(gf_buf_zero(ctx, gx, 0, (size_t)n * gf_block_input_size(b) * sizeof(float)));
    return GF_OK;
}

/* ---------------- primal cache ---------------- */

struct gf_primal_cache {
    int n_samples, n_nodes;
    int half;                            /* y[] as IEEE halves (--cache-dtype f16) */
    cl_mem *y;                           /* [n_nodes]: [n_samples, node size] for the nodes the tangent/backward read */
    cl_mem *argmax;                      /* [n_nodes]: max-pool routing, same rows */
    cl_mem f;                            /* pooled features [n_samples, d] */
};

/* Node j's primal output is read after the forward iff a conv, linear,
 * activation, batchnorm or layernorm node takes it as input, or a product takes it as
 * either factor (their tangent/backward use the primal inputs); add, concat,
 * pools and GAP read only tangents and gradients. */
static int primal_needed(const gf_block *b, int j) {
    for (int i = j + 1; i < b->n_nodes; i++) {
        gf_node_kind k = b->nodes[i].kind;
        if (b->nodes[i].in[0] == j && (k == GF_K_CONV || k == GF_K_LINEAR || k == GF_K_ACT || k == GF_K_BATCHNORM ||
                                       k == GF_K_LAYERNORM))
            return 1;
        if (k == GF_K_MUL && (b->nodes[i].in[0] == j || b->nodes[i].in[1] == j)) return 1;
    }
    return 0;
}

/* An activation's values are not kept but made again at the load from its input's (kept, since the activation reads
 * them, or the block input), by the forward's own op on the same values: the same bits, and less to keep and to
 * gather (the emotion net's block: 35 % less, its two ReLUs' outputs). */
static int primal_kept(const gf_block *b, int j) { return primal_needed(b, j) && b->nodes[j].kind != GF_K_ACT; }

size_t gf_block_primal_bytes(const gf_block *b, int half) {
    size_t s = (size_t)gf_block_feature_dim(b) * sizeof(float);   /* f stays float: full starts at the probe */
    for (int j = 0; j < b->n_nodes; j++) {
        if (primal_kept(b, j)) s += node_size(&b->nodes[j]) * (half ? 2 : sizeof(float));
        if (b->nodes[j].kind == GF_K_MAXPOOL) s += node_size(&b->nodes[j]) * sizeof(int);   /* routing: ints */
    }
    return s;
}

void gf_primal_cache_free(gf_primal_cache *pc) {
    if (!pc) return;
    for (int j = 0; j < pc->n_nodes; j++) { gf_buf_release(&pc->y[j]); gf_buf_release(&pc->argmax[j]); }
    gf_buf_release(&pc->f);
    free(pc->y);
    free(pc);
}

gf_status gf_primal_cache_create(gf_ctx *ctx, const gf_block *b, int n_samples, int half, gf_primal_cache **out) {
    *out = NULL;
    if (n_samples < 1) return gf_fail(ctx, GF_ERR_INTERNAL, "primal cache for %d samples", n_samples);
    gf_primal_cache *pc = calloc(1, sizeof *pc);
    if (pc && !(pc->y = calloc(2 * (size_t)b->n_nodes, sizeof *pc->y))) { free(pc); pc = NULL; }
    if (!pc) return gf_fail(ctx, GF_ERR_MEMORY, "out of memory");
    pc->argmax = pc->y + b->n_nodes;
    pc->n_nodes = b->n_nodes;
    pc->n_samples = n_samples;
    pc->half = half;
    /* in host-visible memory on devices that share it (gf_buf_create_host); filled and read by the device */
    gf_status st = gf_buf_create_host(ctx, (size_t)n_samples * gf_block_feature_dim(b) * sizeof(float),
                                      "primal cache (features)", &pc->f);
    for (int j = 0; j < b->n_nodes && st == GF_OK; j++) {
        size_t bytes = (size_t)n_samples * node_size(&b->nodes[j]) * sizeof(float);
        char what[320];
        snprintf(what, sizeof what, "primal cache of top-block node '%s'", b->nodes[j].name);
        if (primal_kept(b, j)) st = gf_buf_create_host(ctx, half ? bytes / 2 : bytes, what, &pc->y[j]);
        if (st == GF_OK && b->nodes[j].kind == GF_K_MAXPOOL) st = gf_buf_create_host(ctx, bytes, what, &pc->argmax[j]);
    }
    if (st != GF_OK) { gf_primal_cache_free(pc); return st; }
    *out = pc;
    return GF_OK;
}

gf_status gf_primal_cache_store(gf_ctx *ctx, const gf_block *b, gf_primal_cache *pc, int first, int n, cl_mem f) {
    if (first < 0 || n < 1 || first + n > pc->n_samples)
        return gf_fail(ctx, GF_ERR_INTERNAL, "primal cache rows %d..%d outside 0..%d", first, first + n, pc->n_samples);
    size_t d = (size_t)gf_block_feature_dim(b) * sizeof(float);
    GF_TRY(gf_buf_copy(ctx, f, 0, pc->f, (size_t)first * d, (size_t)n * d));
    for (int j = 0; j < b->n_nodes; j++) {
        size_t row = node_size(&b->nodes[j]) * sizeof(float);
        if (pc->y[j] && pc->half)
            GF_TRY(gf_store_half(ctx, b->s[j].y, (size_t)n * node_size(&b->nodes[j]), pc->y[j], (size_t)first * node_size(&b->nodes[j])));
        else if (pc->y[j]) GF_TRY(gf_buf_copy(ctx, b->s[j].y, 0, pc->y[j], (size_t)first * row, (size_t)n * row));
        if (pc->argmax[j]) GF_TRY(gf_buf_copy(ctx, b->s[j].argmax, 0, pc->argmax[j], (size_t)first * row, (size_t)n * row));
    }
    return GF_OK;
}

gf_status gf_primal_cache_load(gf_ctx *ctx, gf_block *b, const gf_primal_cache *pc, int n, cl_mem idx, cl_mem x,
                               cl_mem f) {
    if (n < 1 || n > b->max_batch) return gf_fail(ctx, GF_ERR_INTERNAL, "block batch %d outside 1..%d", n, b->max_batch);
    b->fwd_training = 0;   /* the cache holds a forward at θ̄ in evaluation mode */
    keeps_stale(b);
    GF_TRY(gf_gather_rows(ctx, pc->f, idx, gf_block_feature_dim(b), n, f));
    for (int j = 0; j < b->n_nodes; j++) {
        int row = (int)node_size(&b->nodes[j]);
        if (pc->y[j]) GF_TRY((pc->half ? gf_gather_rows_half : gf_gather_rows)(ctx, pc->y[j], idx, row, n, b->s[j].y));
        if (pc->argmax[j]) GF_TRY(gf_gather_rows(ctx, pc->argmax[j], idx, row, n, b->s[j].argmax));
    }
    for (int j = 0; j < b->n_nodes; j++) {   /* the activations' values from their inputs', in node order */
        const gf_node *nd = &b->nodes[j];
        if (!primal_needed(b, j) || primal_kept(b, j)) continue;
        GF_TRY(gf_act_forward(ctx, nd->act, (size_t)n * node_size(nd), in_buf(b, nd, 0, x), b->s[j].y));
    }
    return GF_OK;
}
