/* Linearizable top blocks. On the way from the input to the feature node
 * (GAP/flatten stripped: the block's output is what gets pooled) a node v is a
 * single-tensor cut point when no edge jumps over it in topological order:
 * then every path passes through v (paths have increasing positions). The
 * pieces between consecutive cuts that hold parameters are the blocks (a
 * residual block, a conv + its activation/pool); parameter-free pieces join
 * the block before them. Named by the one parametrised node, else the common
 * dotted prefix of those nodes ("layer4.1"), else the block's output node.
 * A block without a skip has a cut after each of its layers: consecutive
 * pieces without a skip whose names put them in one named module that holds nothing
 * else ("block_16_expand", "block_16_depthwise", "block_16_project";
 * "features.17.conv.0.0" .. "features.17.conv.2"; "block1_conv1", "block1_conv2")
 * become one block named after the module ("block_16", "features.17", "block1";
 * SqueezeNet's fire module "features.12": its squeeze conv and its two expand
 * convs with their concat; EfficientNet's MBConv without a skip "features.7.0":
 * expand, depthwise, squeeze-excitation, projection).
 * Bare numbers are not modules: "features.0", "features.3" are layers of one
 * container, "conv2d_1", "conv2d_2" auto-numbered names; those stay apart,
 * except as a stage: consecutive one-layer pieces of one container ending at
 * a pooling layer ("features.8" conv, "features.11" conv + max pool
 * "features.14": a torchvision VGG stage, the paper's conv4 / conv5) are one
 * block named after its first layer and last node in the container
 * ("features.8-14"). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include "model.h"

static int has_params(const gf_model *m, int i) {
    gf_op op = m->nodes[i].op;
    return op == GF_OP_CONV || op == GF_OP_LINEAR || (op == GF_OP_BATCHNORM && !gf_model_bn_foldable(m, i));
}

/* A per-channel scale and shift: a BatchNorm that cannot be folded (it follows a concat or the input), a
 * LayerNorm's affine part or a layer_scale (depthwise 1x1 convs). Such a node holds parameters but is not a
 * layer of its own: it joins the piece before it, so that no top block is a lone norm (DenseNet's norm5,
 * ConvNeXt's classifier LayerNorm). */
static int channel_affine(const gf_model *m, int i) {
    const gf_node *nd = &m->nodes[i];
    if (nd->op == GF_OP_BATCHNORM) return 1;
    return nd->op == GF_OP_CONV && nd->kernel[0] == 1 && nd->kernel[1] == 1 && nd->groups == nd->in_c &&
           nd->c == nd->in_c;
}

/* a parametrised node that counts as a layer when the graph is cut into pieces */
static int is_layer(const gf_model *m, int i) { return has_params(m, i) && !channel_affine(m, i); }

static int skipped(const gf_model *m, int i) {
    return m->nodes[i].op == GF_OP_BATCHNORM && gf_model_bn_foldable(m, i);
}

static int is_sep(char c) { return c == '.' || c == '_' || c == '/'; }

/* the name component starting at s is a bare number ("0" in "0.conv", "16" in "16_expand") */
static int bare_number(const char *s) {
    size_t k = 0;
    while (isdigit((unsigned char)s[k])) k++;
    return k > 0 && (s[k] == 0 || is_sep(s[k]));
}

/* Length of the named module holding both a and b (a prefix ending at a separator, with a non-empty rest in
 * each), 0 if none. Where the names part at a bare number they are two layers of a container: after a '.'
 * (torch's Sequential index: "features.17.conv.0.0" / "features.17.conv.2") the module is looked for further
 * up ("features.17"); after '_' or '/' (Keras's auto-numbering: "conv2d_1" / "conv2d_2") there is none. */
static size_t module_prefix(const char *a, const char *b) {
    size_t j = 0;
    while (a[j] && a[j] == b[j]) j++;
    while (j > 0) {
        j--;
        if (!is_sep(a[j])) continue;   /* a[j] == b[j] below the first difference */
        if (!bare_number(a + j + 1) && !bare_number(b + j + 1)) return a[j + 1] && b[j + 1] ? j : 0;
        if (a[j] != '.') return 0;
    }
    return 0;
}

static void unique_block_name(const gf_model *m, char *buf, size_t bufsz) {
    for (int i = 0; i < m->n_blocks; i++)
        if (!strcmp(m->blocks[i].name, buf)) {
            size_t l = strlen(buf);
            snprintf(buf + l, bufsz - l, "#%d", m->n_blocks);
            break;
        }
}

static char *block_name(const gf_model *m, const int *nodes, int n, int output) {
    const char *first = NULL;
    size_t len = 0;
    int count = 0, end = 0;
    /* per-channel affines after the block's last layer or join came from the next module (a classifier's
     * LayerNorm): they do not name the block */
    for (int k = 0; k < n; k++) {
        gf_op op = m->nodes[nodes[k]].op;
        if (is_layer(m, nodes[k]) || op == GF_OP_ADD || op == GF_OP_MUL || op == GF_OP_CONCAT) end = k + 1;
    }
    for (int k = 0; k < end; k++) {
        if (!has_params(m, nodes[k])) continue;
        const char *nm = m->nodes[nodes[k]].name;
        if (!first) { first = nm; len = strlen(nm); }
        else {
            size_t j = 0;
            while (j < len && nm[j] && nm[j] == first[j]) j++;
            len = j;
        }
        count++;
    }
    char buf[300];
    if (count == 1) snprintf(buf, sizeof buf, "%s", first);
    else {
        /* cut back to a '.' boundary that is a whole component in every name */
        while (len > 0 && first[len] != '.' && first[len] != 0) len--;
        if (len == 0) snprintf(buf, sizeof buf, "%s", m->nodes[output].name);
        else snprintf(buf, sizeof buf, "%.*s", (int)len, first);
    }
    unique_block_name(m, buf, sizeof buf);
    char *s = malloc(strlen(buf) + 1);
    if (s) strcpy(s, buf);
    return s;
}

static gf_status add_block(gf_model *m, int input, int output, const int *nodes, int n, const char *name) {
    gf_mblock *nb = realloc(m->blocks, (size_t)(m->n_blocks + 1) * sizeof *nb);
    if (!nb) return GF_ERR_MEMORY;
    m->blocks = nb;
    gf_mblock *b = &m->blocks[m->n_blocks];
    memset(b, 0, sizeof *b);
    b->input = input;
    b->output = output;
    b->nodes = malloc((size_t)(n ? n : 1) * sizeof *b->nodes);
    if (!b->nodes) return GF_ERR_MEMORY;
    for (int k = 0; k < n; k++)
        if (!skipped(m, nodes[k])) b->nodes[b->n_nodes++] = nodes[k];
    b->name = name ? malloc(strlen(name) + 1) : block_name(m, nodes, n, output);
    if (!b->name) { free(b->nodes); return GF_ERR_MEMORY; }
    if (name) strcpy(b->name, name);
    m->n_blocks++;
    return GF_OK;
}

/* A discovered piece: nodes nodes[off .. off + len) between cuts in and out. */
typedef struct { int in, out, off, len; } gf_piece;

/* The name of the one parametrised node of piece p, NULL when it has none or several. */
static const char *piece_layer(const gf_model *m, const int *nodes, const gf_piece *p) {
    const char *nm = NULL;
    for (int k = p->off; k < p->off + p->len; k++)
        if (is_layer(m, nodes[k])) {
            if (nm) return NULL;
            nm = m->nodes[nodes[k]].name;
        }
    return nm;
}

/* The first parametrised node's name of a piece that may be part of a module's block, NULL for a piece with a
 * skip (an add: a residual block is a block of its own) or without parameters; *layers = its parametrised nodes. */
static const char *piece_unit(const gf_model *m, const int *nodes, const gf_piece *p, int *layers) {
    const char *nm = NULL;
    *layers = 0;
    for (int k = p->off; k < p->off + p->len; k++) {
        if (m->nodes[nodes[k]].op == GF_OP_ADD) return NULL;
        if (is_layer(m, nodes[k])) {
            if (!nm) nm = m->nodes[nodes[k]].name;
            (*layers)++;
        }
    }
    return nm;
}

/* Do all parametrised nodes of piece p sit in the module named by the first len characters of mod? */
static int piece_all_in_module(const gf_model *m, const int *nodes, const gf_piece *p, const char *mod, size_t len) {
    for (int k = p->off; k < p->off + p->len; k++) {
        const char *nm = m->nodes[nodes[k]].name;
        if (is_layer(m, nodes[k]) && (strncmp(nm, mod, len) || !is_sep(nm[len]))) return 0;
    }
    return 1;
}

/* Does a parametrised node of piece p sit in the module named by the first len characters of mod? */
static int piece_in_module(const gf_model *m, const int *nodes, const gf_piece *p, const char *mod, size_t len) {
    for (int k = p->off; k < p->off + p->len; k++) {
        const char *nm = m->nodes[nodes[k]].name;
        if (is_layer(m, nodes[k]) && !strncmp(nm, mod, len) && is_sep(nm[len])) return 1;
    }
    return 0;
}

/* Length of the container of a layer whose last name component is a bare number ("features" of "features.8"),
 * 0 otherwise. */
static size_t container_len(const char *nm) {
    const char *dot = strrchr(nm, '.');
    return dot && dot > nm && bare_number(dot + 1) && !strchr(dot + 1, '_') ? (size_t)(dot - nm) : 0;
}

/* a pooling layer after the piece's layer (parameter-free nodes join the piece before them) */
static int piece_ends_in_pool(const gf_model *m, const int *nodes, const gf_piece *p) {
    for (int k = p->off; k < p->off + p->len; k++)
        if (m->nodes[nodes[k]].op == GF_OP_MAXPOOL || m->nodes[nodes[k]].op == GF_OP_AVGPOOL) return 1;
    return 0;
}

/* The last piece of the stage that starts at piece i: the first piece from i on that ends at a pooling layer,
 * every piece up to it a one-layer piece of the same container as piece i; i when there is none. */
static int stage_end(const gf_model *m, const int *nodes, const gf_piece *pc, int np, int i) {
    const char *a = piece_layer(m, nodes, &pc[i]);
    size_t len = a ? container_len(a) : 0;
    if (!len) return i;
    for (int j = i; j < np; j++) {
        const char *c = piece_layer(m, nodes, &pc[j]);
        if (!c || container_len(c) != len || strncmp(a, c, len)) return i;
        if (piece_ends_in_pool(m, nodes, &pc[j])) return j;
    }
    return i;
}

/* Adds the pieces as blocks, input to feature; runs of one-layer pieces of one named module, and stages of one
 * container, as one block. */
static gf_status add_pieces(gf_model *m, const int *nodes, const gf_piece *pc, int np, int *tmp) {
    for (int i = 0; i < np;) {
        int j = i;
        size_t len = 0;
        int la = 0, lb = 0, lc = 0;
        const char *a = piece_unit(m, nodes, &pc[i], &la);
        const char *b = i + 1 < np ? piece_unit(m, nodes, &pc[i + 1], &lb) : NULL;
        if (a && b && (len = module_prefix(a, b)) > 0 && piece_all_in_module(m, nodes, &pc[i], a, len) &&
            piece_all_in_module(m, nodes, &pc[i + 1], a, len)) {
            int several = (la > 1) + (lb > 1);
            j = i + 1;
            while (j + 1 < np && piece_unit(m, nodes, &pc[j + 1], &lc) && piece_all_in_module(m, nodes, &pc[j + 1], a, len)) {
                several += lc > 1;
                j++;
            }
            /* the module must hold nothing but the run. A block's pieces are single layers around at most one
             * branching piece (a fire module's expands, an MBConv's squeeze-excitation): pieces of several layers
             * that are numbered children of the module are units of a stage ("stage2.0", "stage2.1" of
             * ShuffleNet), and several such pieces are a whole stage or trunk (DenseNet's "features": dense
             * blocks and transitions), not one block */
            if ((i > 0 && piece_in_module(m, nodes, &pc[i - 1], a, len)) ||
                (j + 1 < np && piece_in_module(m, nodes, &pc[j + 1], a, len)) || several > 1 ||
                (several && is_sep(a[len]) && bare_number(a + len + 1)))
                j = i;
        }
        int stage = 0;
        if (j == i && (j = stage_end(m, nodes, pc, np, i)) > i) stage = 1;
        if (j == i) GF_TRY(add_block(m, pc[i].in, pc[i].out, nodes + pc[i].off, pc[i].len, NULL));
        else {
            int n = 0;
            for (int k = i; k <= j; k++)
                for (int q = 0; q < pc[k].len; q++) tmp[n++] = nodes[pc[k].off + q];
            char buf[300];
            if (stage) {
                /* the stage's last node in the container (the top stage's piece may end at a flatten after it) */
                size_t cl = container_len(a);
                const char *last = a + cl + 1;
                for (int q = 0; q < pc[j].len; q++) {
                    const char *nm = m->nodes[nodes[pc[j].off + q]].name;
                    if (!strncmp(nm, a, cl) && nm[cl] == '.') last = nm + cl + 1;
                }
                snprintf(buf, sizeof buf, "%.200s-%.60s", a, last);
            } else
                snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf - 8 ? len : sizeof buf - 8), a);
            unique_block_name(m, buf, sizeof buf);
            GF_TRY(add_block(m, pc[i].in, pc[j].out, tmp, n, buf));
        }
        i = j + 1;
    }
    return GF_OK;
}

/* anc[i] = 1 when node i is an ancestor of (or is) t */
static void ancestors(const gf_model *m, int t, char *anc) {
    memset(anc, 0, (size_t)m->n_nodes);
    anc[t] = 1;
    for (int i = t; i >= 0; i--) {
        if (!anc[i]) continue;
        for (int a = 0; a < m->nodes[i].n_in; a++)
            if (m->nodes[i].in[a] >= 0) anc[m->nodes[i].in[a]] = 1;
    }
}

static gf_status explicit_blocks(gf_model *m, const cJSON *arr, char *err, size_t errsz, char *anc, int *tmp) {
    if (!cJSON_IsArray(arr)) return gf_fail_msg(err, errsz, GF_ERR_INPUT, "gradfeat.graph: 'blocks' is not an array");
    for (const cJSON *b = arr->child; b; b = b->next) {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(b, "name");
        const cJSON *in = cJSON_GetObjectItemCaseSensitive(b, "input");
        const cJSON *out = cJSON_GetObjectItemCaseSensitive(b, "output");
        if (!cJSON_IsString(nm) || !cJSON_IsString(in) || !cJSON_IsString(out))
            return gf_fail_msg(err, errsz, GF_ERR_INPUT, "gradfeat.graph: each block needs name, input and output");
        int i_in = !strcmp(in->valuestring, m->input_name) ? GF_NODE_INPUT : -2, i_out = -2;
        for (int i = 0; i < m->n_nodes; i++) {
            if (!strcmp(m->nodes[i].name, in->valuestring)) i_in = i;
            if (!strcmp(m->nodes[i].name, out->valuestring)) i_out = i;
        }
        if (i_in == -2 || i_out < 0 || i_in >= i_out)
            return gf_fail_msg(err, errsz, GF_ERR_INPUT, "block '%s': input '%s' / output '%s' are not nodes in that order",
                               nm->valuestring, in->valuestring, out->valuestring);
        ancestors(m, i_out, anc);
        int n = 0;
        for (int i = i_in + 1; i <= i_out; i++) {
            if (!anc[i]) continue;
            for (int a = 0; a < m->nodes[i].n_in; a++) {
                int s = m->nodes[i].in[a];
                if (s != i_in && (s <= i_in))
                    return gf_fail_msg(err, errsz, GF_ERR_INPUT,
                                       "block '%s': node '%s' reads '%s' from outside the block (input '%s' is not a cut)",
                                       nm->valuestring, m->nodes[i].name, s >= 0 ? m->nodes[s].name : m->input_name,
                                       in->valuestring);
            }
            tmp[n++] = i;
        }
        GF_TRY(add_block(m, i_in, i_out, tmp, n, nm->valuestring));
    }
    /* closest to the feature first */
    for (int i = 1; i < m->n_blocks; i++)
        for (int j = i; j > 0 && m->blocks[j].output > m->blocks[j - 1].output; j--) {
            gf_mblock t = m->blocks[j]; m->blocks[j] = m->blocks[j - 1]; m->blocks[j - 1] = t;
        }
    return GF_OK;
}

/* Multi-block θ2: for each block i >= 1, the span "<block i>..<block 0>" —
 * every node from block i's cut to the feature node — appended after the
 * discovered blocks (span = 1), so that choosing a lower block never drops
 * the blocks above it. Needs consecutive blocks (discovered ones are; named
 * ones must join up, else that span is left out). */
static gf_status add_spans(gf_model *m) {
    int nb = m->n_blocks;
    for (int i = 1; i < nb; i++) {
        int ok = 1, n = 0;
        for (int j = i; j > 0 && ok; j--) ok = m->blocks[j].output == m->blocks[j - 1].input;
        if (!ok) continue;
        for (int j = i; j >= 0; j--) n += m->blocks[j].n_nodes;
        gf_mblock *grown = realloc(m->blocks, (size_t)(m->n_blocks + 1) * sizeof *grown);
        if (!grown) return GF_ERR_MEMORY;
        m->blocks = grown;
        const gf_mblock *lo = &m->blocks[i], *hi = &m->blocks[0];
        gf_mblock b = {0};
        b.input = lo->input; b.output = hi->output; b.span = 1;
        b.nodes = malloc((size_t)(n ? n : 1) * sizeof *b.nodes);
        size_t len = strlen(lo->name) + strlen(hi->name) + 3;
        b.name = malloc(len);
        if (!b.nodes || !b.name) { free(b.nodes); free(b.name); return GF_ERR_MEMORY; }
        snprintf(b.name, len, "%s..%s", lo->name, hi->name);
        for (int j = i; j >= 0; j--)
            for (int k = 0; k < m->blocks[j].n_nodes; k++) b.nodes[b.n_nodes++] = m->blocks[j].nodes[k];
        m->blocks[m->n_blocks++] = b;
    }
    return GF_OK;
}

gf_status gf_model_find_blocks(gf_model *m, const cJSON *explicit_arr, char *err, size_t errsz) {
    int n = m->n_nodes;
    int t = m->feature >= 0 ? m->feature : m->outputs[0];
    while (t >= 0 && (m->nodes[t].op == GF_OP_GAP || m->nodes[t].op == GF_OP_FLATTEN || m->nodes[t].op == GF_OP_SOFTMAX))
        t = m->nodes[t].in[0];
    if (t < 0) return GF_OK;
    char *anc = malloc((size_t)n);
    int *tmp = malloc((size_t)n * sizeof *tmp), *cuts = malloc(((size_t)n + 1) * sizeof *cuts);
    gf_status st = GF_OK;
    if (!anc || !tmp || !cuts) { st = GF_ERR_MEMORY; goto out; }
    if (explicit_arr) {
        st = explicit_blocks(m, explicit_arr, err, errsz, anc, tmp);
        if (st == GF_OK) st = add_spans(m);
        goto out;
    }
    ancestors(m, t, anc);
    /* edges a->b inside the ancestor set: mark positions strictly between */
    int *diff = tmp;  /* reuse as a difference array over positions 0..n-1 */
    memset(diff, 0, (size_t)n * sizeof *diff);
    for (int b = 0; b <= t; b++) {
        if (!anc[b]) continue;
        for (int k = 0; k < m->nodes[b].n_in; k++) {
            int a = m->nodes[b].in[k];  /* -1 = input */
            if (b - a > 1) { diff[a + 1]++; if (b < n) diff[b]--; }
        }
    }
    int run = 0, nc = 0;
    cuts[nc++] = GF_NODE_INPUT;
    for (int v = 0; v <= t; v++) {
        run += diff[v];
        if (anc[v] && run == 0) cuts[nc++] = v;
    }
    /* segments (cuts[i-1], cuts[i]], merged forward until they hold parameters: the pieces */
    int *seg = malloc((size_t)n * sizeof *seg);
    gf_piece *pc = malloc((size_t)n * sizeof *pc);
    if (!seg || !pc) { free(seg); free(pc); st = GF_ERR_MEMORY; goto out; }
    int start = 0;  /* index into cuts of the current block's input */
    int have = 0, ns = 0, np = 0, off = 0;
    for (int i = 1; i < nc; i++) {
        for (int v = cuts[i - 1] + 1; v <= cuts[i]; v++)
            if (anc[v]) { seg[off + ns++] = v; if (is_layer(m, v)) have = 1; }
        int next_has = 0;  /* does the next segment hold parameters? then close here */
        if (i + 1 < nc)
            for (int v = cuts[i] + 1; v <= cuts[i + 1]; v++) if (anc[v] && is_layer(m, v)) next_has = 1;
        if (have && (next_has || i + 1 == nc)) {
            pc[np++] = (gf_piece){cuts[start], cuts[i], off, ns};
            off += ns; ns = 0; have = 0; start = i;
        } else if (!have) {
            ns = 0; start = i;  /* parameter-free lead-in: not a block */
        }
    }
    st = add_pieces(m, seg, pc, np, tmp);
    free(seg);
    free(pc);
    if (st != GF_OK) goto out;
    for (int i = 0; i < m->n_blocks / 2; i++) {  /* closest to the feature first */
        gf_mblock x = m->blocks[i]; m->blocks[i] = m->blocks[m->n_blocks - 1 - i]; m->blocks[m->n_blocks - 1 - i] = x;
    }
    if (st == GF_OK) st = add_spans(m);
out:
    free(anc); free(tmp); free(cuts);
    if (st == GF_ERR_MEMORY) gf_fail_msg(err, errsz, st, "out of memory computing blocks");
    return st;
}

void gf_model_block_costs(gf_model *m) {
    for (int i = 0; i < m->n_blocks; i++) {
        gf_mblock *b = &m->blocks[i];
        b->params = 0;
        b->macs = 0;
        for (int k = 0; k < b->n_nodes; k++) {
            const gf_node *nd = &m->nodes[b->nodes[k]];
            if (nd->W) b->params += nd->w_count + (nd->b ? (uint64_t)nd->c : 0);
            b->macs += nd->macs;
        }
    }
}

/* ---------------------------------------------------------------- top blocks as sub-graphs of the model */

static int resolve(const gf_model *m, int i) { return i >= 0 && m->nodes[i].folded ? m->nodes[i].alias : i; }

void gf_model_block_input(const gf_model *m, int bi, int *c, int *h, int *w) {
    int cut = gf_model_block_cut(m, bi);
    const gf_node *nd = cut >= 0 ? &m->nodes[cut] : NULL;
    if (c) *c = nd ? nd->c : m->in_c;
    if (h) *h = nd ? nd->h : m->in_h;
    if (w) *w = nd ? nd->w : m->in_w;
}

gf_status gf_model_block_create(gf_ctx *ctx, const gf_model *m, int bi, int max_batch, gf_block **out) {
    *out = NULL;
    if (!m || bi < 0 || bi >= m->n_blocks) return gf_fail(ctx, GF_ERR_USAGE, "model has no block %d", bi);
    int c, h, w;
    gf_model_block_input(m, bi, &c, &h, &w);
    const gf_mblock *b = &m->blocks[bi];
    return gf_block_create_sub(ctx, m->nodes, b->nodes, b->n_nodes, gf_model_block_cut(m, bi), c, h, w, max_batch, out);
}

gf_status gf_model_block_theta(gf_ctx *ctx, const gf_model *m, int bi, const gf_block *blk, float *theta) {
    if (!m || bi < 0 || bi >= m->n_blocks) return gf_fail(ctx, GF_ERR_USAGE, "model has no block %d", bi);
    const gf_mblock *b = &m->blocks[bi];
    int n = 0;
    const gf_node *bn = gf_block_nodes(blk, &n);
    if (n != b->n_nodes) return gf_fail(ctx, GF_ERR_USAGE, "block '%s': %d nodes vs %d in the executor", b->name, b->n_nodes, n);
    memset(theta, 0, gf_block_param_count(blk) * sizeof *theta);
    for (int k = 0; k < n; k++) {
        const gf_node *nd = &m->nodes[b->nodes[k]];
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
        gf_node *nd = &m->nodes[i];
        int mine = in_block[i] ? block : (i <= cut && trunk);
        if (!mine || !nd->W) continue;
        shuffle_floats(nd->W, nd->w_count, &s);
        if (nd->b) shuffle_floats(nd->b, (size_t)nd->c, &s);
    }
    free(in_block);
    return GF_OK;
}
