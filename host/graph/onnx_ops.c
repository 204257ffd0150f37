/* The network ops of the main pass (gfo_node): each ONNX node becomes nodes of ours (as tools/convert_onnx.py
 * maps it), a view of its input (Identity, a zero Pad, NHWC and channel-shuffle views), or nothing (inside
 * a GELU / LayerNorm subgraph). OPS below is the list of the ops gradfeat reads, with their lowering. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "onnx_imp.h"

#ifdef GF_HAVE_PROTOBUF_C

static uint64_t numel_of(int nd, const int64_t *d) {
    uint64_t n = 1;
    for (int k = 0; k < nd; k++) n *= (uint64_t)d[k];
    return n;
}

/* a float constant input (a weight) of node n */
static gf_status weight(imp *I, const Onnx__NodeProto *n, size_t k, val **out) {
    val *x = k < n->n_input ? gfo_get(I, n->input[k]) : NULL;
    if (!x || x->kind != V_CONST || x->is_int)
        return gfo_ifail(I, "node %s (%s): input %s is computed, not a constant weight", n->name && n->name[0] ? n->name : n->output[0],
                         str0(n->op_type), k < n->n_input ? n->input[k] : "(absent)");
    *out = x;
    return GF_OK;
}

gf_status gfo_set_act(imp *I, const char *name, int ours, int nd, const int64_t *d) {
    for (int k = 0; k < nd; k++)
        if (d[k] < 1 || d[k] > MAX_DIM) return gfo_ifail(I, "tensor %s: dimension %d is %lld", name, k, (long long)d[k]);
    int k = gfo_new_val(I, name, V_ACT);
    if (k < 0) return gfo_oom(I);
    I->v[k].ours = ours;
    I->v[k].nd = nd;
    memcpy(I->v[k].d, d, (size_t)nd * sizeof *d);
    return GF_OK;
}

/* the same with the NHWC-view flag of the result */
static gf_status set_act_nhwc(imp *I, const char *name, int ours, int nd, const int64_t *d, int nhwc) {
    gf_status st = gfo_set_act(I, name, ours, nd, d);
    if (st == GF_OK) gfo_get(I, name)->nhwc = nhwc;
    return st;
}

static gf_status alias(imp *I, const char *name, const val *x) {
    int k = gfo_new_val(I, name, x->kind);
    if (k < 0) return gfo_oom(I);
    val *y = &I->v[k];
    *y = *x;
    y->f = NULL; y->i = NULL;   /* constants are aliased by index elsewhere; activations share `ours` */
    if (x->kind == V_CONST) {
        size_t bytes = x->n * (x->is_int ? sizeof(int64_t) : sizeof(float));
        void *p = malloc(bytes ? bytes : 1);
        if (!p) return gfo_oom(I);
        memcpy(p, x->is_int ? (void *)x->i : (void *)x->f, bytes);
        if (x->is_int) y->i = p; else y->f = p;
    }
    return GF_OK;
}

/* auto_pad SAME_UPPER/SAME_LOWER/VALID -> pads [t, l, b, r]; 0 when NOTSET */
static int auto_pads(const char *ap, const int64_t *hw, const int *k, const int *s, const int *d, int *pads) {
    if (!ap[0] || !strcmp(ap, "NOTSET")) return 0;
    if (!strcmp(ap, "VALID")) { memset(pads, 0, 4 * sizeof *pads); return 1; }
    for (int ax = 0; ax < 2; ax++) {
        int64_t o = (hw[ax] + s[ax] - 1) / s[ax];
        int64_t tot = (o - 1) * s[ax] + (int64_t)(k[ax] - 1) * d[ax] + 1 - hw[ax];
        if (tot < 0) tot = 0;
        int64_t small = tot / 2, big = tot - small;
        int upper = !strcmp(ap, "SAME_UPPER");
        pads[ax] = (int)(upper ? small : big);
        pads[ax + 2] = (int)(upper ? big : small);
    }
    return 1;
}

static int64_t floordiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/* extra bottom/right padding that gives floor-mode pooling ceil_mode's output size (convert_onnx._ceil_pad) */
static void ceil_pad(const int64_t *hw, const int *k, const int *s, int *pads) {
    for (int ax = 0; ax < 2; ax++) {
        int64_t span = hw[ax] + pads[ax] + pads[ax + 2];
        int64_t o = -floordiv(-(span - k[ax]), s[ax]) + 1;
        if ((o - 1) * s[ax] >= hw[ax] + pads[ax]) o--;
        int64_t extra = (o - 1) * s[ax] + k[ax] - span;
        if (extra > 0) pads[ax + 2] += (int)extra;
    }
}

static gf_status int_list(imp *I, const Onnx__NodeProto *n, const char *key, int want, int *out, int def) {
    int64_t v[GF_ST_MAX_DIMS];
    int present = 0;
    gf_status st = gfo_a_ints(I, n, key, want, v, NULL, &present);
    for (int k = 0; k < want; k++) out[k] = present ? (int)v[k] : def;
    return st;
}

/* every reader of tensor `name` is a Conv or an AveragePool (a zero Pad folds into those) */
static int read_only_by_conv_pool(imp *I, const char *name) {
    for (int j = 0, nu = gfo_n_users(I, name); j < nu; j++) {
        const Onnx__NodeProto *m = gfo_user(I, name, j);
        if (strcmp(str0(m->op_type), "Conv") && strcmp(str0(m->op_type), "AveragePool")) return 0;
    }
    return 1;
}

/* an op gradfeat has no equivalent for: counted per op type, reported all at once (sorted, as the converter) */
static gf_status note_bad(imp *I, const char *op, const char *who) {
    for (int k = 0; k < I->nbad; k++)
        if (!strcmp(I->bad[k].op, op)) { I->bad[k].count++; return GF_OK; }
    if (I->nbad == (int)(sizeof I->bad / sizeof I->bad[0])) return GF_OK;
    I->bad[I->nbad++] = (badop){op, who, 1};
    return GF_OK;
}

/* every output of n: unusable (an unsupported op, or one reading its outputs) */
static gf_status poison(imp *I, const Onnx__NodeProto *n) {
    for (size_t k = 0; k < n->n_output; k++)
        if (n->output[k][0] && !gfo_get(I, n->output[k]) && gfo_new_val(I, n->output[k], V_POISON) < 0) return gfo_oom(I);
    return GF_OK;
}

/* a GELU or LayerNorm subgraph (onnx_patterns.c) ending at node n: pk / lk its index into I->pat, or -1 */
static gf_status lower_pattern(imp *I, const Onnx__NodeProto *n, const char *who, int pk, int lk) {
    const char *out = n->output[0];
    const pattern *p = &I->pat[pk >= 0 ? pk : lk];
    val *x = gfo_get(I, p->x);
    if (x && x->kind == V_POISON) return poison(I, n);
    if (!x || x->kind != V_ACT) return gfo_ifail(I, "node %s: %s of %s, which is not computed from the image", who,
                                                 pk >= 0 ? "GELU" : "LayerNorm", p->x);
    char *nm = gfo_clean_name(I, n);
    if (!(nm = nm ? gfo_unique(I, nm) : NULL)) return gfo_oom(I);
    cJSON *at = cJSON_CreateObject();
    if (pk >= 0) {
        cJSON_AddStringToObject(at, "approximate", "none");
        int o = gfo_add_node(I, nm, GF_OP_GELU, &x->ours, 1, NULL, at);
        return o < 0 ? gfo_oom(I) : set_act_nhwc(I, out, o, x->nd, x->d, x->nhwc);
    }
    /* over channels: the last axis of an NHWC view, axis 1 of an NCHW map, or a flat vector */
    int64_t C = x->nhwc ? x->d[x->nd - 1] : x->nd > 1 ? x->d[1] : -1;
    int ax = p->axis;
    int over_c = (x->nhwc && (ax == -1 || ax == 3)) || (!x->nhwc && x->nd == 4 && (ax == 1 || ax == -3)) ||
                 (x->nd == 2 && (ax == 1 || ax == -1));
    const val *ga = p->gamma ? gfo_get(I, p->gamma) : NULL, *be = p->beta ? gfo_get(I, p->beta) : NULL;
    if ((p->gamma && (!ga || ga->kind != V_CONST || ga->is_int)) || (p->beta && (!be || be->kind != V_CONST || be->is_int))) {
        cJSON_Delete(at);
        return gfo_ifail(I, "node %s: LayerNorm scale/bias are not float constants", who);
    }
    if ((ga && ga->nd > 1) || (be && be->nd > 1) || (ga && (int64_t)ga->n != C) || (be && (int64_t)be->n != C)) over_c = 0;
    if (!over_c) {
        cJSON_Delete(at);
        return gfo_ifail(I, "node %s: LayerNorm over axis %d of a %d-D %s tensor (only over channels)", who, ax, x->nd,
                         x->nhwc ? "NHWC" : "NCHW");
    }
    gfo_add_real(at, "eps", p->eps);
    int y = gfo_add_node(I, nm, GF_OP_LAYERNORM, &x->ours, 1, NULL, at);
    if (y < 0) return gfo_oom(I);
    if (ga || be) {   /* the affine part: a depthwise 1x1 conv */
        float *w = malloc((size_t)C * sizeof *w);
        if (!w) return gfo_oom(I);
        for (int64_t c = 0; c < C; c++) w[c] = ga ? ga->f[c] : 1.0f;
        int64_t wd[4] = {C, 1, 1, 1};
        cJSON *params = cJSON_CreateObject();
        const char *tw = gfo_add_tensor(I, nm, "weight", w, 4, wd);
        free(w);
        const char *tb = tw && be ? gfo_add_tensor(I, nm, "bias", be->f, 1, &C) : NULL;
        if (!tw || (be && !tb)) { cJSON_Delete(params); return gfo_ifail(I, "node %s: tensor name clash", who); }
        cJSON_AddStringToObject(params, "weight", tw);
        if (tb) cJSON_AddStringToObject(params, "bias", tb);
        cJSON *cat = cJSON_CreateObject();
        cJSON_AddNumberToObject(cat, "groups", (double)C);
        char *an = gfo_own_fmt(I, "%s.affine", nm);
        if (!an) { cJSON_Delete(params); cJSON_Delete(cat); return gfo_oom(I); }
        if ((y = gfo_add_node(I, an, GF_OP_CONV, &y, 1, params, cat)) < 0) return gfo_oom(I);
    }
    return set_act_nhwc(I, out, y, x->nd, x->d, x->nhwc);
}

/* one node to lower: the node, and (for the ops of OPS that get a name) our node's name and its input 0 */
typedef struct {
    const Onnx__NodeProto *n;
    const char *op, *who, *out;     /* op type, the node as messages name it, its output */
    const char *name;               /* our node's name */
    val *x;                         /* input 0 (past a folded Pad: its source) */
    int src;                        /* x's node of ours */
    const int64_t *xs;              /* x's shape */
    int xnd;
    int extra[4];                   /* a folded Pad's padding [t, l, b, r] */
} lower;

typedef gf_status (*lower_fn)(imp *I, const lower *L);

static gf_status op_constant(imp *I, const lower *L) {
    const Onnx__NodeProto *n = L->n;
    const char *who = L->who;
    const Onnx__AttributeProto *a = gfo_attr(n, "value");
    if (!a || !a->t) return gfo_ifail(I, "node %s: Constant without a tensor 'value' not supported", who);
    int k = gfo_new_val(I, L->out, V_CONST);
    if (k < 0) return gfo_oom(I);
    return gfo_load_tensor(I, a->t, "Constant", &I->v[k]);
}

/* a zero Pad: an alias; around H,W: a view its readers (Conv, AveragePool) fold in as padding */
static gf_status op_pad(imp *I, const lower *L) {
    const Onnx__NodeProto *n = L->n;
    const char *who = L->who;
    gf_status st;
    char sbuf[64];
    const char *mode = gfo_a_str(n, "mode", "constant", sbuf, sizeof sbuf);
    int64_t p[8] = {0};
    int np = 0, present = 0;
    if ((st = gfo_a_ints(I, n, "pads", -1, p, &np, &present))) return st;
    if (!present && n->n_input > 1) {
        val *pv = gfo_get(I, n->input[1]);
        if (!pv || pv->kind != V_CONST || !pv->is_int) return gfo_ifail(I, "node %s (Pad): input %s is computed, not a constant", who, n->input[1]);
        np = pv->n <= 8 ? (int)pv->n : 9;
        for (int k = 0; k < np && k < 8; k++) p[k] = pv->i[k];
    }
    double value = 0;
    if ((st = gfo_a_float(I, n, "value", 0, &value))) return st;
    if (n->n_input > 2 && n->input[2][0]) {
        val *vv = gfo_get(I, n->input[2]);
        if (!vv || vv->kind != V_CONST || vv->n < 1) return gfo_ifail(I, "node %s (Pad): input %s is computed, not a constant", who, n->input[2]);
        value = vv->is_int ? (double)vv->i[0] : vv->f[0];
    }
    int bad = strcmp(mode, "constant") || value != 0 || np != 8 || p[0] || p[1] || p[4] || p[5];
    for (int k = 0; k < 8; k++) bad |= p[k] < 0 || p[k] > MAX_DIM;
    if (bad) return gfo_ifail(I, "node %s: Pad %s (value %g, %d pads) not supported (only zeros around H,W)", who, mode, value, np);
    int tlbr[4] = {(int)p[2], (int)p[3], (int)p[6], (int)p[7]};
    if (!tlbr[0] && !tlbr[1] && !tlbr[2] && !tlbr[3]) return alias(I, L->out, L->x);
    if (L->x->kind != V_ACT || L->x->nd != 4) return gfo_ifail(I, "node %s: Pad of a non-map tensor", who);
    if (!read_only_by_conv_pool(I, L->out))
        return gfo_ifail(I, "node %s: a non-zero Pad read by something other than Conv or AveragePool (it folds only into those)", who);
    int src = gfo_smap_get(&I->vals, n->input[0]);
    int k = gfo_new_val(I, L->out, V_PADDED);
    if (k < 0) return gfo_oom(I);
    I->v[k].src = src;
    memcpy(I->v[k].pads, tlbr, sizeof tlbr);
    return GF_OK;
}

static gf_status op_conv(imp *I, const lower *L) {
    const Onnx__NodeProto *n = L->n;
    const char *who = L->who;
    gf_status st;
    val *w = NULL;
    if ((st = weight(I, n, 1, &w))) return st;
    if (w->nd != 4 || L->xnd != 4) return gfo_ifail(I, "node %s: Conv needs a 4-D weight and NCHW input (got %d-D, %d-D)", who, w->nd, L->xnd);
    int k[2] = {(int)w->d[2], (int)w->d[3]}, s[2], d[2], pads[4];
    int64_t grp;
    if ((st = int_list(I, n, "kernel_shape", 2, k, 0)) || (st = int_list(I, n, "strides", 2, s, 1)) ||
        (st = int_list(I, n, "dilations", 2, d, 1)) || (st = gfo_a_int(I, n, "group", 1, &grp)))
        return st;
    if (!gfo_attr(n, "kernel_shape")) { k[0] = (int)w->d[2]; k[1] = (int)w->d[3]; }
    if (s[0] < 1 || s[1] < 1 || d[0] < 1 || d[1] < 1 || grp < 1 || k[0] < 1 || k[1] < 1)
        return gfo_ifail(I, "node %s: Conv strides, dilations, group and kernel must be positive", who);
    char apb[32];
    if (!auto_pads(gfo_a_str(n, "auto_pad", "NOTSET", apb, sizeof apb), L->xs + 2, k, s, d, pads)) {
        if ((st = int_list(I, n, "pads", 4, pads, 0))) return st;
    }
    for (int q = 0; q < 4; q++) pads[q] += L->extra[q];
    cJSON *params = cJSON_CreateObject();
    const char *tw = gfo_add_tensor(I, L->name, "weight", w->f, w->nd, w->d);
    if (!tw) { cJSON_Delete(params); return gfo_ifail(I, "node %s: tensor name clash", who); }
    cJSON_AddStringToObject(params, "weight", tw);
    if (n->n_input > 2 && n->input[2][0]) {
        val *b = NULL;
        if ((st = weight(I, n, 2, &b))) { cJSON_Delete(params); return st; }
        const char *tb = gfo_add_tensor(I, L->name, "bias", b->f, b->nd, b->d);
        if (!tb) { cJSON_Delete(params); return gfo_ifail(I, "node %s: tensor name clash", who); }
        cJSON_AddStringToObject(params, "bias", tb);
    }
    cJSON *at = cJSON_CreateObject();
    cJSON_AddItemToObject(at, "stride", gfo_ints_json(s, 2));
    cJSON_AddItemToObject(at, "pad", gfo_ints_json(pads, 4));
    cJSON_AddItemToObject(at, "dilation", gfo_ints_json(d, 2));
    cJSON_AddNumberToObject(at, "groups", (double)grp);
    int o = gfo_add_node(I, L->name, GF_OP_CONV, &L->src, 1, params, at);
    if (o < 0) return gfo_oom(I);
    int64_t od[4] = {L->xs[0], w->d[0], 0, 0};
    for (int ax = 0; ax < 2; ax++) {
        int64_t span = L->xs[2 + ax] + pads[ax] + pads[ax + 2] - (int64_t)d[ax] * (k[ax] - 1) - 1;
        if (span < 0) return gfo_ifail(I, "node %s: Conv kernel larger than its padded input", who);
        od[2 + ax] = span / s[ax] + 1;
    }
    return gfo_set_act(I, L->out, o, 4, od);
}

static gf_status op_linear(imp *I, const lower *L) {   /* Gemm, MatMul */
    const Onnx__NodeProto *n = L->n;
    const char *who = L->who;
    gf_status st;
    val *w = NULL;
    int64_t ta = 0, tb = 0;
    double alpha = 1, beta = 1;
    if (!strcmp(L->op, "Gemm") && ((st = gfo_a_int(I, n, "transA", 0, &ta)) || (st = gfo_a_int(I, n, "transB", 0, &tb)) ||
                                (st = gfo_a_float(I, n, "alpha", 1, &alpha)) || (st = gfo_a_float(I, n, "beta", 1, &beta))))
        return st;
    if (ta) return gfo_ifail(I, "node %s: Gemm transA=1 not supported", who);
    val *wv = n->n_input > 1 ? gfo_get(I, n->input[1]) : NULL;
    if (!strcmp(L->op, "MatMul") && (!wv || wv->kind != V_CONST))
        return gfo_ifail(I, "node %s: MatMul of two activations not supported", who);
    if ((st = weight(I, n, 1, &w))) return st;
    if (w->nd != 2) return gfo_ifail(I, "node %s: %s weight is %d-D (2-D expected)", who, L->op, w->nd);
    if (L->x->nhwc) {   /* a Linear on an NHWC view: a 1x1 conv, its weight [out, in, 1, 1] */
        if (L->op[0] == 'G') return gfo_ifail(I, "node %s: Gemm on an NHWC view not supported", who);
        int64_t Ci = w->d[0], Co = w->d[1], wd[4] = {Co, Ci, 1, 1};
        if (L->xnd != 4 || L->xs[3] != Ci)
            return gfo_ifail(I, "node %s: MatMul of an NHWC view of %lld channels by a [%lld, %lld] weight", who,
                             (long long)L->xs[L->xnd - 1], (long long)Ci, (long long)Co);
        float *wt = malloc(w->n ? w->n * sizeof *wt : 1);
        if (!wt) return gfo_oom(I);
        for (int64_t o = 0; o < Co; o++)
            for (int64_t i = 0; i < Ci; i++) wt[o * Ci + i] = w->f[i * Co + o];
        const char *tw = gfo_add_tensor(I, L->name, "weight", wt, 4, wd);
        free(wt);
        if (!tw) return gfo_ifail(I, "node %s: tensor name clash", who);
        cJSON *params = cJSON_CreateObject();
        cJSON_AddStringToObject(params, "weight", tw);
        int o = gfo_add_node(I, L->name, GF_OP_CONV, &L->src, 1, params, NULL);
        int64_t od[4] = {L->xs[0], L->xs[1], L->xs[2], Co};
        return o < 0 ? gfo_oom(I) : set_act_nhwc(I, L->out, o, 4, od, 1);
    }
    int64_t O = tb ? w->d[0] : w->d[1], In = tb ? w->d[1] : w->d[0];
    float *wt = malloc(w->n ? w->n * sizeof *wt : 1);
    if (!wt) return gfo_oom(I);
    for (int64_t o = 0; o < O; o++)   /* [out, in], times alpha (float32, as numpy) */
        for (int64_t i = 0; i < In; i++) wt[o * In + i] = (tb ? w->f[o * In + i] : w->f[i * O + o]) * (float)alpha;
    int64_t wd[2] = {O, In};
    cJSON *params = cJSON_CreateObject();
    const char *tw = gfo_add_tensor(I, L->name, "weight", wt, 2, wd);
    free(wt);
    if (!tw) { cJSON_Delete(params); return gfo_ifail(I, "node %s: tensor name clash", who); }
    cJSON_AddStringToObject(params, "weight", tw);
    if (!strcmp(L->op, "Gemm") && n->n_input > 2 && n->input[2][0]) {
        val *b = NULL;
        if ((st = weight(I, n, 2, &b))) { cJSON_Delete(params); return st; }
        if (b->n != 1 && (int64_t)b->n != O) { cJSON_Delete(params); return gfo_ifail(I, "node %s: Gemm bias of %zu values for %lld outputs", who, b->n, (long long)O); }
        float *bv = malloc((size_t)O * sizeof *bv);
        if (!bv) { cJSON_Delete(params); return gfo_oom(I); }
        for (int64_t o = 0; o < O; o++) bv[o] = b->f[b->n == 1 ? 0 : o] * (float)beta;
        const char *tbn = gfo_add_tensor(I, L->name, "bias", bv, 1, &O);
        free(bv);
        if (!tbn) { cJSON_Delete(params); return gfo_ifail(I, "node %s: tensor name clash", who); }
        cJSON_AddStringToObject(params, "bias", tbn);
    }
    int o = gfo_add_node(I, L->name, GF_OP_LINEAR, &L->src, 1, params, NULL);
    if (o < 0) return gfo_oom(I);
    int64_t od[2] = {L->xs[0], O};
    return gfo_set_act(I, L->out, o, 2, od);
}

static gf_status op_batchnorm(imp *I, const lower *L) {
    const Onnx__NodeProto *n = L->n;
    const char *who = L->who;
    gf_status st;
    static const char *const keys[4] = {"weight", "bias", "running_mean", "running_var"};
    cJSON *params = cJSON_CreateObject();
    for (int q = 0; q < 4; q++) {
        val *p = NULL;
        if ((st = weight(I, n, 1 + (size_t)q, &p))) { cJSON_Delete(params); return st; }
        const char *t = gfo_add_tensor(I, L->name, keys[q], p->f, p->nd, p->d);
        if (!t) { cJSON_Delete(params); return gfo_ifail(I, "node %s: tensor name clash", who); }
        cJSON_AddStringToObject(params, keys[q], t);
    }
    double eps;
    if ((st = gfo_a_float(I, n, "epsilon", 1e-5, &eps))) { cJSON_Delete(params); return st; }
    cJSON *at = cJSON_CreateObject();
    gfo_add_real(at, "eps", eps);
    int o = gfo_add_node(I, L->name, GF_OP_BATCHNORM, &L->src, 1, params, at);
    return o < 0 ? gfo_oom(I) : gfo_set_act(I, L->out, o, L->xnd, L->xs);
}

/* LayerNormalization is lowered with the subgraphs (lower_pattern): a node of it never gets here */
static gf_status op_unhandled(imp *I, const lower *L) { return gfo_ifail(I, "node %s: op %s not handled", L->who, L->op); }

/* one-input ops that keep the shape */
static gf_status op_activation(imp *I, const lower *L) {
    const Onnx__NodeProto *n = L->n;
    const char *who = L->who;
    gf_status st;
    char sbuf[64];
    gf_op simple = GF_OP_COUNT;
    cJSON *at = NULL;
    if (!strcmp(L->op, "Relu")) simple = GF_OP_RELU;
    else if (!strcmp(L->op, "Sigmoid")) simple = GF_OP_SIGMOID;
    else if (!strcmp(L->op, "HardSwish")) simple = GF_OP_HSWISH;
    else if (!strcmp(L->op, "LeakyRelu")) {
        double a;
        if ((st = gfo_a_float(I, n, "alpha", 0.01, &a))) return st;
        simple = GF_OP_LEAKY;
        at = cJSON_CreateObject();
        gfo_add_real(at, "alpha", a);
    } else if (!strcmp(L->op, "HardSigmoid")) {
        double a, b;
        if ((st = gfo_a_float(I, n, "alpha", 0.2, &a)) || (st = gfo_a_float(I, n, "beta", 0.5, &b))) return st;
        if (fabs(b - 0.5) > 1e-7) return gfo_ifail(I, "node %s: HardSigmoid beta %g not supported (only 0.5)", who, b);
        simple = GF_OP_HSIGMOID;
        at = cJSON_CreateObject();
        gfo_add_real(at, "alpha", a);
    } else if (!strcmp(L->op, "Gelu")) {
        const char *ap = gfo_a_str(n, "approximate", "none", sbuf, sizeof sbuf);
        simple = GF_OP_GELU;
        at = cJSON_CreateObject();
        cJSON_AddStringToObject(at, "approximate", ap);
    } else if (!strcmp(L->op, "Clip")) {
        double lo = NAN, hi = NAN;
        const Onnx__AttributeProto *amin = gfo_attr(n, "min"), *amax = gfo_attr(n, "max");
        for (int q = 0; q < 2; q++) {
            const Onnx__AttributeProto *a = q ? amax : amin;
            double *dst = q ? &hi : &lo;
            if (a) { if (!a->has_f) return gfo_ifail(I, "node %s: Clip %s is not a float", who, q ? "max" : "min"); *dst = a->f; }
            else if (n->n_input > 1 + (size_t)q && n->input[1 + q][0]) {
                val *c = gfo_get(I, n->input[1 + q]);
                if (!c || c->kind != V_CONST || c->n != 1) return gfo_ifail(I, "node %s (Clip): input %s is computed, not a constant weight", who, n->input[1 + q]);
                *dst = c->is_int ? (double)c->i[0] : c->f[0];
            }
        }
        if (lo == 0 && hi == 6) simple = GF_OP_RELU6;
        else if (lo == 0 && isnan(hi)) simple = GF_OP_RELU;
        else return gfo_ifail(I, "node %s: Clip(%g, %g) not supported (only relu/relu6)", who, lo, hi);
    } else if (!strcmp(L->op, "Softmax")) {
        int64_t ax;
        if ((st = gfo_a_int(I, n, "axis", -1, &ax))) return st;
        if (ax != 1 && ax != -1) return gfo_ifail(I, "node %s: Softmax axis %lld not supported", who, (long long)ax);
        simple = GF_OP_SOFTMAX;
    }
    if (simple == GF_OP_COUNT) return op_unhandled(I, L);   /* an op of OPS this list lacks */
    int o = gfo_add_node(I, L->name, simple, &L->src, 1, NULL, at);
    return o < 0 ? gfo_oom(I) : set_act_nhwc(I, L->out, o, L->xnd, L->xs, L->x->nhwc);
}

static gf_status op_alias(imp *I, const lower *L) { return alias(I, L->out, L->x); }   /* Identity, Dropout */

static gf_status op_pool(imp *I, const lower *L) {   /* MaxPool, AveragePool */
    const Onnx__NodeProto *n = L->n;
    const char *who = L->who;
    gf_status st;
    int k[2], s[2], d[2], pads[4];
    int64_t cip, ceil;
    if (!gfo_attr(n, "kernel_shape")) return gfo_ifail(I, "node %s: %s without kernel_shape", who, L->op);
    if ((st = int_list(I, n, "kernel_shape", 2, k, 1)) || (st = int_list(I, n, "strides", 2, s, 1)) ||
        (st = int_list(I, n, "dilations", 2, d, 1)) || (st = gfo_a_int(I, n, "count_include_pad", 0, &cip)) ||
        (st = gfo_a_int(I, n, "ceil_mode", 0, &ceil)))
        return st;
    if (d[0] != 1 || d[1] != 1) return gfo_ifail(I, "node %s: pooling dilation not supported", who);
    if (k[0] < 1 || k[1] < 1 || s[0] < 1 || s[1] < 1 || L->xnd != 4) return gfo_ifail(I, "node %s: %s needs a positive kernel and stride on an NCHW map", who, L->op);
    int include = cip != 0;
    char apb[32];
    if (!auto_pads(gfo_a_str(n, "auto_pad", "NOTSET", apb, sizeof apb), L->xs + 2, k, s, d, pads)) {
        if ((st = int_list(I, n, "pads", 4, pads, 0))) return st;
    } else if (L->op[0] == 'A') include = 0;
    if (L->extra[0] || L->extra[1] || L->extra[2] || L->extra[3]) {   /* a folded zero Pad: padding the mean counts */
        for (int q = 0; q < 4; q++) pads[q] += L->extra[q];
        include = 1;
    }
    for (int q = 0; q < 4; q++) if (pads[q] < 0) return gfo_ifail(I, "node %s: negative padding", who);
    if (ceil) {
        if (L->op[0] == 'A' && include) return gfo_ifail(I, "node %s: AveragePool ceil_mode=1 with count_include_pad=1 not supported", who);
        ceil_pad(L->xs + 2, k, s, pads);
    }
    cJSON *at = cJSON_CreateObject();
    cJSON_AddItemToObject(at, "kernel", gfo_ints_json(k, 2));
    cJSON_AddItemToObject(at, "stride", gfo_ints_json(s, 2));
    cJSON_AddItemToObject(at, "pad", gfo_ints_json(pads, 4));
    if (L->op[0] == 'A') cJSON_AddBoolToObject(at, "count_include_pad", include);
    int o = gfo_add_node(I, L->name, L->op[0] == 'M' ? GF_OP_MAXPOOL : GF_OP_AVGPOOL, &L->src, 1, NULL, at);
    if (o < 0) return gfo_oom(I);
    int64_t od[4] = {L->xs[0], L->xs[1], 0, 0};
    for (int ax = 0; ax < 2; ax++) {
        int64_t span = L->xs[2 + ax] + pads[ax] + pads[ax + 2] - k[ax];
        if (span < 0) return gfo_ifail(I, "node %s: pooling window larger than its padded input", who);
        od[2 + ax] = span / s[ax] + 1;
    }
    return gfo_set_act(I, L->out, o, 4, od);
}

static gf_status op_mean(imp *I, const lower *L) {   /* GlobalAveragePool, ReduceMean over H,W */
    const Onnx__NodeProto *n = L->n;
    const char *who = L->who;
    gf_status st;
    int64_t keep = 1;
    if (L->xnd != 4) return gfo_ifail(I, "node %s: %s of a %d-D tensor (an NCHW map expected)", who, L->op, L->xnd);
    if (L->op[0] == 'R') {
        int64_t axes[GF_ST_MAX_DIMS];
        int na = 0, present = 0;
        if ((st = gfo_a_ints(I, n, "axes", -1, axes, &na, &present)) || (st = gfo_a_int(I, n, "keepdims", 1, &keep))) return st;
        if (!present && n->n_input > 1) {
            val *av = gfo_get(I, n->input[1]);
            if (!av || av->kind != V_CONST || !av->is_int || av->n > GF_ST_MAX_DIMS) return gfo_ifail(I, "node %s (ReduceMean): axes are computed, not a constant", who);
            na = (int)av->n;
            memcpy(axes, av->i, av->n * sizeof *axes);
        }
        int m2 = 0, m3 = 0;
        for (int q = 0; q < na; q++) { int64_t a = ((axes[q] % 4) + 4) % 4; m2 += a == 2; m3 += a == 3; }
        if (na != 2 || m2 != 1 || m3 != 1) return gfo_ifail(I, "node %s: ReduceMean over %d axes not supported (only H,W)", who, na);
    }
    int o = gfo_add_node(I, L->name, GF_OP_GAP, &L->src, 1, NULL, NULL);
    int64_t od[4] = {L->xs[0], L->xs[1], 1, 1};
    return o < 0 ? gfo_oom(I) : gfo_set_act(I, L->out, o, keep ? 4 : 2, od);
}

static gf_status op_add_mul(imp *I, const lower *L) {
    const Onnx__NodeProto *n = L->n;
    const char *who = L->who;
    val *a = n->n_input == 2 ? gfo_get(I, n->input[0]) : NULL, *b = n->n_input == 2 ? gfo_get(I, n->input[1]) : NULL;
    if (!a || !b) return gfo_ifail(I, "node %s: %s needs 2 inputs", who, L->op);   /* "" names an absent input */
    int ca = a->kind == V_CONST, cb = b->kind == V_CONST;
    if (a->kind == V_PADDED || b->kind == V_PADDED || a->kind == V_VIEW5 || b->kind == V_VIEW5 || a->kind == V_VIEWT || b->kind == V_VIEWT)
        return gfo_ifail(I, "node %s: %s of a padded or reshaped view not supported", who, L->op);
    if (ca && cb) return gfo_ifail(I, "node %s: %s of two float constants not supported", who, L->op);
    if (L->op[0] == 'A' && (ca || cb)) {   /* a MatMul's bias */
        val *c = ca ? a : b, *xi = ca ? b : a;
        onode *prev = xi->ours >= 0 ? &I->on[xi->ours] : NULL;
        cJSON *pp = prev ? cJSON_GetObjectItemCaseSensitive(prev->json, "params") : NULL;
        int conv_nhwc = prev && prev->op == GF_OP_CONV && xi->nhwc;   /* the bias of a Linear on NHWC */
        if (!prev || (prev->op != GF_OP_LINEAR && !conv_nhwc) || cJSON_GetObjectItemCaseSensitive(pp, "bias") || c->is_int)
            return gfo_ifail(I, "node %s: Add of a constant only supported as a MatMul bias", who);
        int64_t nb = (int64_t)c->n;
        const char *tb = gfo_add_tensor(I, prev->name, "bias", c->f, 1, &nb);
        if (!tb) return gfo_ifail(I, "node %s: tensor name clash", who);
        cJSON_AddStringToObject(pp, "bias", tb);
        return alias(I, L->out, xi);
    }
    if (ca || cb) {   /* Mul by a [C, 1, 1] constant: ConvNeXt's layer scale, a depthwise 1x1 conv */
        val *c = ca ? a : b, *xi = ca ? b : a;
        int ok = !c->is_int && xi->nd == 4 && (int64_t)c->n == xi->d[1] &&
                 ((c->nd == 3 && c->d[0] == xi->d[1] && c->d[1] == 1 && c->d[2] == 1) ||
                  (c->nd == 4 && c->d[0] == 1 && c->d[1] == xi->d[1] && c->d[2] == 1 && c->d[3] == 1));
        if (!ok) return gfo_ifail(I, "node %s: Mul by a constant not supported (only products of two tensors or a "
                                  "per-channel scale [C, 1, 1] of a map)", who);
        int64_t wd[4] = {xi->d[1], 1, 1, 1};
        const char *tw = gfo_add_tensor(I, L->name, "weight", c->f, 4, wd);
        if (!tw) return gfo_ifail(I, "node %s: tensor name clash", who);
        cJSON *params = cJSON_CreateObject();
        cJSON_AddStringToObject(params, "weight", tw);
        cJSON *at = cJSON_CreateObject();
        cJSON_AddNumberToObject(at, "groups", (double)xi->d[1]);
        int o = gfo_add_node(I, L->name, GF_OP_CONV, &xi->ours, 1, params, at);
        return o < 0 ? gfo_oom(I) : gfo_set_act(I, L->out, o, 4, xi->d);
    }
    int same = a->nd == b->nd;
    for (int q = 0; same && q < a->nd; q++) same = a->d[q] == b->d[q];
    const val *big = a;
    if (L->op[0] == 'M' && !same) {
        int g1 = a->nd == 4 && b->nd == 4 && a->d[0] == b->d[0] && a->d[1] == b->d[1];
        if (g1 && b->d[2] == 1 && b->d[3] == 1) big = a;
        else if (g1 && a->d[2] == 1 && a->d[3] == 1) big = b;
        else return gfo_ifail(I, "node %s: Mul of a %d-D and a %d-D tensor of other shapes (equal shapes or a per-channel gate only)", who, a->nd, b->nd);
    }
    if (a->nhwc != b->nhwc) return gfo_ifail(I, "node %s: %s of an NHWC view and an NCHW map", who, L->op);
    int ins[2] = {a->ours, b->ours};
    int o = gfo_add_node(I, L->name, L->op[0] == 'A' ? GF_OP_ADD : GF_OP_MUL, ins, 2, NULL, NULL);
    return o < 0 ? gfo_oom(I) : set_act_nhwc(I, L->out, o, big->nd, big->d, a->nhwc);
}

static gf_status op_flatten(imp *I, const lower *L) {   /* Flatten, Reshape to [N, -1] (or a channel-shuffle view) */
    const Onnx__NodeProto *n = L->n;
    const char *who = L->who;
    gf_status st;
    if (L->op[0] == 'F') {
        int64_t ax;
        if ((st = gfo_a_int(I, n, "axis", 1, &ax))) return st;
        if (ax != 1) return gfo_ifail(I, "node %s: Flatten axis %lld not supported", who, (long long)ax);
    } else {
        val *t = n->n_input > 1 ? gfo_get(I, n->input[1]) : NULL;
        if (!t || t->kind != V_CONST || !t->is_int)
            return gfo_ifail(I, "node %s (Reshape): input %s is computed, not a constant weight", who, n->n_input > 1 ? n->input[1] : "(absent)");
        if (t->n == 5 && L->xnd == 4) {   /* maybe the first step of a channel shuffle: resolved by its readers */
            int64_t d5[5];
            int ok = 1, neg = -1;
            uint64_t known = 1;
            for (int q = 0; q < 5 && ok; q++) {
                d5[q] = t->i[q] == 0 && q < 4 ? L->xs[q] : t->i[q];
                if (d5[q] == -1 && neg < 0) neg = q;
                else if (d5[q] < 1 || d5[q] > MAX_DIM) ok = 0;
                else known *= (uint64_t)d5[q];
            }
            if (ok && neg >= 0) d5[neg] = known ? (int64_t)(numel_of(4, L->xs) / known) : 0;
            ok = ok && d5[0] == L->xs[0] && d5[3] == L->xs[2] && d5[4] == L->xs[3] && d5[1] * d5[2] == L->xs[1];
            if (ok) {
                int k = gfo_new_val(I, L->out, V_VIEW5);
                if (k < 0) return gfo_oom(I);
                I->v[k].src = gfo_smap_get(&I->vals, n->input[0]);
                I->v[k].groups = (int)d5[1];
                return GF_OK;
            }
        }
        if (t->n != 2 || !(t->i[0] == 0 || t->i[0] == 1 || t->i[0] == -1 || t->i[0] == I->batch))
            return gfo_ifail(I, "node %s: Reshape to %zu dims not supported (only [N,-1])", who, t->n);
    }
    int o = gfo_add_node(I, L->name, GF_OP_FLATTEN, &L->src, 1, NULL, NULL);
    int64_t od[2] = {L->xs[0], L->xnd ? (int64_t)(numel_of(L->xnd, L->xs) / (uint64_t)L->xs[0]) : 1};
    return o < 0 ? gfo_oom(I) : gfo_set_act(I, L->out, o, 2, od);
}

static gf_status op_concat(imp *I, const lower *L) {
    const Onnx__NodeProto *n = L->n;
    const char *who = L->who;
    gf_status st;
    if (n->n_input == 1) return alias(I, L->out, L->x);   /* torch.cat of a one-map list */
    int64_t ax;
    if ((st = gfo_a_int(I, n, "axis", 0, &ax))) return st;
    if (!gfo_attr(n, "axis") || (ax != 1 && ax != -3) || n->n_input > GF_MAX_INPUTS)
        return gfo_ifail(I, "node %s: Concat axis %lld of %zu inputs not supported (channels of 2..%d NCHW maps)", who,
                         (long long)ax, n->n_input, GF_MAX_INPUTS);
    int ins[GF_MAX_INPUTS];
    int64_t od[4] = {0, 0, 0, 0};
    for (size_t q = 0; q < n->n_input; q++) {
        val *c = gfo_get(I, n->input[q]);
        if (!c || c->kind != V_ACT || c->nd != 4)
            return gfo_ifail(I, "node %s: Concat axis 1 of inputs that are not all NCHW maps not supported", who);
        if (!q) memcpy(od, c->d, sizeof od);
        else if (c->d[0] != od[0] || c->d[2] != od[2] || c->d[3] != od[3]) return gfo_ifail(I, "node %s: Concat of maps of other sizes", who);
        else od[1] += c->d[1];
        ins[q] = c->ours;
    }
    int o = gfo_add_node(I, L->name, GF_OP_CONCAT, ins, (int)n->n_input, NULL, NULL);
    return o < 0 ? gfo_oom(I) : gfo_set_act(I, L->out, o, 4, od);
}

static gf_status op_slice(imp *I, const lower *L) {   /* a range of channels */
    const Onnx__NodeProto *n = L->n;
    const char *who = L->who;
    gf_status st;
    if (L->xnd != 4) return gfo_ifail(I, "node %s: Slice of a %d-D tensor not supported (only channels of a static NCHW map)", who, L->xnd);
    int64_t sv[4][GF_ST_MAX_DIMS];
    int cnt[4] = {0, 0, 0, 0};
    static const char *const keys[4] = {"starts", "ends", "axes", "steps"};
    for (int q = 0; q < 4; q++) {
        if (n->n_input > 1 + (size_t)q && n->input[1 + q][0]) {
            val *c = gfo_get(I, n->input[1 + q]);
            if (!c || c->kind != V_CONST || !c->is_int)
                return gfo_ifail(I, "node %s: Slice %s is computed from the activations, not a constant", who, keys[q]);
            if (c->n > GF_ST_MAX_DIMS) return gfo_ifail(I, "node %s: Slice %s has %zu values", who, keys[q], c->n);
            cnt[q] = (int)c->n;
            memcpy(sv[q], c->i, c->n * sizeof(int64_t));
        } else if ((st = gfo_a_ints_lim(I, n, keys[q], -1, sv[q], &cnt[q], NULL, INT64_MAX))) return st;
    }
    if (!cnt[2]) { cnt[2] = cnt[0]; for (int q = 0; q < cnt[0]; q++) sv[2][q] = q; }
    if (!cnt[3]) { cnt[3] = cnt[0]; for (int q = 0; q < cnt[0]; q++) sv[3][q] = 1; }
    if (cnt[1] != cnt[0] || cnt[2] != cnt[0] || cnt[3] != cnt[0]) return gfo_ifail(I, "node %s: Slice starts/ends/axes/steps of different lengths", who);
    int64_t lo[4] = {0, 0, 0, 0}, hi[4] = {L->xs[0], L->xs[1], L->xs[2], L->xs[3]};
    for (int q = 0; q < cnt[0]; q++) {
        int64_t ax = ((sv[2][q] % 4) + 4) % 4, d = L->xs[ax], s0 = sv[0][q], e0 = sv[1][q];
        if (s0 < 0) s0 += d;
        if (e0 < 0) e0 += d;
        lo[ax] = clampi(s0, 0, d);
        hi[ax] = clampi(e0, 0, d);
        if (sv[3][q] != 1) return gfo_ifail(I, "node %s: Slice with step %lld not supported (only channels, step 1)", who, (long long)sv[3][q]);
    }
    if (lo[0] || lo[2] || lo[3] || hi[0] != L->xs[0] || hi[2] != L->xs[2] || hi[3] != L->xs[3] || hi[1] <= lo[1])
        return gfo_ifail(I, "node %s: Slice [%lld:%lld, %lld:%lld, %lld:%lld, %lld:%lld] of a [%lld, %lld, %lld, %lld] map not supported "
                         "(only a range of channels)", who, (long long)lo[0], (long long)hi[0], (long long)lo[1], (long long)hi[1],
                         (long long)lo[2], (long long)hi[2], (long long)lo[3], (long long)hi[3], (long long)L->xs[0], (long long)L->xs[1],
                         (long long)L->xs[2], (long long)L->xs[3]);
    if (lo[1] == 0 && hi[1] == L->xs[1]) return alias(I, L->out, L->x);
    cJSON *at = cJSON_CreateObject();
    cJSON_AddNumberToObject(at, "start", (double)lo[1]);
    cJSON_AddNumberToObject(at, "end", (double)hi[1]);
    int o = gfo_add_node(I, L->name, GF_OP_SLICE, &L->src, 1, NULL, at);
    int64_t od[4] = {L->xs[0], hi[1] - lo[1], L->xs[2], L->xs[3]};
    return o < 0 ? gfo_oom(I) : gfo_set_act(I, L->out, o, 4, od);
}

static gf_status op_transpose(imp *I, const lower *L) {   /* to NHWC and back around a channels-last block (ConvNeXt): a view */
    const Onnx__NodeProto *n = L->n;
    const char *who = L->who;
    gf_status st;
    int64_t perm[GF_ST_MAX_DIMS];
    int np = 0;
    if ((st = gfo_a_ints(I, n, "perm", -1, perm, &np, NULL))) return st;
    int to = np == 4 && perm[0] == 0 && perm[1] == 2 && perm[2] == 3 && perm[3] == 1;
    int back = np == 4 && perm[0] == 0 && perm[1] == 3 && perm[2] == 1 && perm[3] == 2;
    if ((to && !L->x->nhwc && L->xnd == 4) || (back && L->x->nhwc)) {
        int64_t od[4];
        for (int q = 0; q < 4; q++) od[q] = L->xs[perm[q]];
        return set_act_nhwc(I, L->out, L->src, 4, od, to);
    }
    char pb[96];
    size_t pl = 0;
    pb[0] = 0;
    for (int q = 0; q < np && pl < sizeof pb - 24; q++) pl += (size_t)snprintf(pb + pl, sizeof pb - pl, "%s%lld", q ? ", " : "", (long long)perm[q]);
    return gfo_ifail(I, "node %s: Transpose [%s] not supported (only NCHW <-> NHWC around a channels-last block, or "
                     "ShuffleNet's channel shuffle)", who, pb);
}

/* the channel-shuffle views (Reshape [N, G, C/G, H, W], Transpose [0, 2, 1, 3, 4], Reshape back) */
static gf_status shuffle_view(imp *I, const lower *L) {
    const Onnx__NodeProto *n = L->n;
    const char *who = L->who;
    gf_status st;
    val *s = &I->v[L->x->src];
    int64_t perm[5];
    int np = 0;
    if (!strcmp(L->op, "Transpose") && L->x->kind == V_VIEW5) {
        if ((st = gfo_a_ints(I, n, "perm", -1, perm, &np, NULL))) return st;
        if (np == 5 && perm[0] == 0 && perm[1] == 2 && perm[2] == 1 && perm[3] == 3 && perm[4] == 4) {
            int k = gfo_new_val(I, L->out, V_VIEWT);
            if (k < 0) return gfo_oom(I);
            I->v[k].src = L->x->src; I->v[k].groups = L->x->groups;
            return GF_OK;
        }
    } else if (!strcmp(L->op, "Reshape") && L->x->kind == V_VIEWT && n->n_input > 1) {
        val *t = gfo_get(I, n->input[1]);
        int ok = t && t->kind == V_CONST && t->is_int && t->n == 4, minus = 0;
        for (int k = 0; ok && k < 4; k++) {
            minus += t->i[k] == -1;
            ok = t->i[k] == s->d[k] || (k == 0 && t->i[k] == 0) || (t->i[k] == -1 && minus == 1);
        }
        if (ok) {
            cJSON *at = cJSON_CreateObject();
            cJSON_AddNumberToObject(at, "groups", L->x->groups);
            int in0 = s->ours;
            int o = gfo_add_node(I, L->name, GF_OP_SHUFFLE, &in0, 1, NULL, at);
            return o < 0 ? gfo_oom(I) : gfo_set_act(I, L->out, o, s->nd, s->d);
        }
    }
    return gfo_ifail(I, "node %s: %s of a channel-shuffle view not supported (only Reshape [N, G, C/G, H, W] -> "
                     "Transpose [0, 2, 1, 3, 4] -> Reshape back)", who, L->op);
}

/* The ops gradfeat reads (an op not here is reported as unsupported), how each is lowered, and when:
 * NAMED: with our node's name and input 0 resolved; NO_INPUT: Constant, at once; NO_NAME: Pad, a view that
 * makes no node. nhwc: also on an NHWC view of a map. */
enum { NAMED, NO_INPUT, NO_NAME };
static const struct { const char *op; lower_fn fn; int when, nhwc; } OPS[] = {
    {"Conv", op_conv, NAMED, 0}, {"Gemm", op_linear, NAMED, 0}, {"MatMul", op_linear, NAMED, 1},
    {"BatchNormalization", op_batchnorm, NAMED, 0}, {"Relu", op_activation, NAMED, 1},
    {"LeakyRelu", op_activation, NAMED, 0}, {"Clip", op_activation, NAMED, 0}, {"MaxPool", op_pool, NAMED, 0},
    {"AveragePool", op_pool, NAMED, 0}, {"GlobalAveragePool", op_mean, NAMED, 0}, {"ReduceMean", op_mean, NAMED, 0},
    {"Add", op_add_mul, NAMED, 1}, {"Flatten", op_flatten, NAMED, 0}, {"Reshape", op_flatten, NAMED, 0},
    {"Softmax", op_activation, NAMED, 0}, {"Identity", op_alias, NAMED, 1}, {"Dropout", op_alias, NAMED, 1},
    {"Constant", op_constant, NO_INPUT, 0}, {"Sigmoid", op_activation, NAMED, 1},
    {"HardSigmoid", op_activation, NAMED, 0}, {"HardSwish", op_activation, NAMED, 0}, {"Mul", op_add_mul, NAMED, 0},
    {"Concat", op_concat, NAMED, 0}, {"Gelu", op_activation, NAMED, 0}, {"Pad", op_pad, NO_NAME, 0},
    {"Transpose", op_transpose, NAMED, 1}, {"Slice", op_slice, NAMED, 0}, {"LayerNormalization", op_unhandled, NAMED, 0}};

/* One node of the main pass: its outputs checked, then a subgraph's last node, the inputs (defined, past an
 * unsupported op, NHWC views), the shape arithmetic, and the op's entry of OPS. */
gf_status gfo_node(imp *I, const Onnx__NodeProto *n) {
    const char *op = str0(n->op_type);
    const char *who = n->name && n->name[0] ? n->name : n->n_output ? n->output[0] : "?";
    gf_status st = GF_OK;
    if (!n->n_output || !n->output[0][0]) return gfo_ifail(I, "node %s (%s): no output", who, op);
    for (size_t k = 0; k < n->n_output; k++)
        if (n->output[k][0] && gfo_get(I, n->output[k])) return gfo_ifail(I, "node %s: output %s is defined twice", who, n->output[k]);
    const char *out = n->output[0];
    if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx")) {
        note_bad(I, op, who);
        return poison(I, n);
    }
    if (gfo_smap_get(&I->absorbed, out) >= 0) return GF_OK;   /* inside a GELU / LayerNorm subgraph */
    int pk = gfo_smap_get(&I->gelu, out), lk = gfo_smap_get(&I->lnorm, out);
    if (pk >= 0 || lk >= 0) return lower_pattern(I, n, who, pk, lk);
    size_t h = 0, nops = sizeof OPS / sizeof OPS[0];
    while (h < nops && strcmp(op, OPS[h].op)) h++;
    int supported = h < nops;
    for (size_t k = 0; k < n->n_input; k++) {
        const val *x = n->input[k][0] ? gfo_get(I, n->input[k]) : NULL;
        if (n->input[k][0] && !x) return gfo_ifail(I, "node %s: input %s is not defined before it (ONNX nodes must be in "
                                                   "topological order)", who, n->input[k]);
        if (x && x->kind == V_POISON) {   /* downstream of an unsupported op: still list its own op if unsupported */
            if (!supported && (st = note_bad(I, op, who))) return st;
            return poison(I, n);
        }
    }
    for (size_t k = 0; k < n->n_input; k++) {
        const val *x = n->input[k][0] ? gfo_get(I, n->input[k]) : NULL;
        if (x && x->kind == V_ACT && x->nhwc && !(supported && OPS[h].nhwc))
            return gfo_ifail(I, "node %s: %s on an NHWC view of a map (after a Transpose) not supported", who, op);
    }
    lower L = {.n = n, .op = op, .who = who, .out = out};
    if (supported && OPS[h].when == NO_INPUT) return OPS[h].fn(I, &L);
    val *x0 = n->n_input ? gfo_get(I, n->input[0]) : NULL;
    if (!strcmp(op, "Identity") && x0 && x0->kind == V_CONST) return alias(I, out, x0);   /* torch shares equal initializers */
    int done = 0;
    if ((st = gfo_fold(I, n, &done)) || done) return st;
    if (!supported) {
        if ((st = note_bad(I, op, who))) return st;
        return poison(I, n);
    }
    if (!n->n_input || !x0) return gfo_ifail(I, "node %s (%s): no input", who, op);
    L.x = x0;
    if (OPS[h].when == NO_NAME) return OPS[h].fn(I, &L);
    char *cname = gfo_clean_name(I, n);
    if (!(L.name = cname ? gfo_unique(I, cname) : NULL)) return gfo_oom(I);
    if (x0->kind == V_PADDED) {   /* a folded Pad: its source and extra padding */
        char apb[32];
        const char *ap = gfo_a_str(n, "auto_pad", "NOTSET", apb, sizeof apb);
        if (strcmp(ap, "NOTSET") && ap[0]) return gfo_ifail(I, "node %s: a Pad before an auto_pad %s", who, op);
        if (!strcmp(op, "AveragePool")) {
            int64_t pp[4] = {0}, cip;
            if ((st = gfo_a_ints(I, n, "pads", 4, pp, NULL, NULL)) || (st = gfo_a_int(I, n, "count_include_pad", 0, &cip))) return st;
            if ((pp[0] || pp[1] || pp[2] || pp[3]) && !cip) return gfo_ifail(I, "node %s: a Pad before an AveragePool that pads without counting", who);
        }
        memcpy(L.extra, x0->pads, sizeof L.extra);
        L.x = &I->v[x0->src];
    }
    L.src = L.x->ours;
    L.xs = L.x->d;
    L.xnd = L.x->nd;
    if (L.x->kind == V_VIEW5 || L.x->kind == V_VIEWT) return shuffle_view(I, &L);
    if (L.x->kind == V_CONST && strcmp(op, "Add") && strcmp(op, "Mul"))
        return gfo_ifail(I, "node %s (%s): its input %s is a constant, not computed from the image", who, op, n->input[0]);
    return OPS[h].fn(I, &L);
}

#endif
