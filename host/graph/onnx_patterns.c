/* torch's erf-GELU and LayerNorm subgraphs, found before the main pass as tools/convert_onnx.py does
 * (gelu_patterns, layernorm_patterns): the last node of each becomes one gelu / layernorm node of ours
 * (onnx_ops.c), the others are skipped. Also the readers of every tensor (gfo_n_users, gfo_user). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "onnx_imp.h"

#ifdef GF_HAVE_PROTOBUF_C

/* The value of a constant tensor before the main pass: an initializer, or a Constant node (through Identity
 * nodes): its element count and first value (*ndim: its rank). 0 when it is not a float/int constant. */
static int pconst(imp *I, const char *name, size_t *n, int *ndim, double *first) {
    for (int hops = 0; hops < 16 && name && name[0]; hops++) {
        const val *v = gfo_get(I, name);
        if (v && v->kind == V_CONST) {
            *n = v->n; *ndim = v->nd;
            *first = !v->n ? 0 : v->is_int ? (double)v->i[0] : v->f[0];
            return 1;
        }
        int k = gfo_smap_get(&I->prod, name);
        if (k < 0) return 0;
        const Onnx__NodeProto *p = I->g->node[k];
        if (!strcmp(str0(p->op_type), "Identity") && p->n_input == 1) { name = p->input[0]; continue; }
        const Onnx__AttributeProto *a = strcmp(str0(p->op_type), "Constant") ? NULL : gfo_attr(p, "value");
        if (!a || !a->t) return 0;
        val t = {0};
        char e[8];
        imp J = *I;   /* a failed parse here is not an error: the main pass reports it */
        J.err = e; J.errsz = sizeof e;
        int ok = gfo_load_tensor(&J, a->t, "Constant", &t) == GF_OK;
        if (ok) { *n = t.n; *ndim = t.nd; *first = !t.n ? 0 : t.is_int ? (double)t.i[0] : t.f[0]; }
        free(t.f); free(t.i);
        return ok;
    }
    return 0;
}

/* a scalar constant (any shape of one element) equal to value (convert_onnx._const) */
static int pscalar(imp *I, const char *name, double value, double tol) {
    size_t n; int nd; double v;
    return pconst(I, name, &n, &nd, &v) && n == 1 && fabs(v - value) <= tol * (fabs(value) > 1 ? fabs(value) : 1);
}

static int is_init(imp *I, const char *name) { size_t n; int nd; double v; return pconst(I, name, &n, &nd, &v); }

static const Onnx__NodeProto *producer(imp *I, const char *name) {
    int k = name ? gfo_smap_get(&I->prod, name) : -1;
    return k >= 0 ? I->g->node[k] : NULL;
}

int gfo_n_users(imp *I, const char *name) {
    int s = gfo_smap_get(&I->uslot, name);
    return s < 0 ? 0 : I->uoff[s + 1] - I->uoff[s];
}

const Onnx__NodeProto *gfo_user(imp *I, const char *name, int j) {
    int s = gfo_smap_get(&I->uslot, name);
    return I->g->node[I->ulist[I->uoff[s] + j]];
}

/* the only reader of name when it is one node of op type op */
static const Onnx__NodeProto *only_user(imp *I, const char *name, const char *op) {
    if (gfo_n_users(I, name) != 1) return NULL;
    const Onnx__NodeProto *u = gfo_user(I, name, 0);
    return !strcmp(str0(u->op_type), op) && u->n_output >= 1 && u->output[0][0] ? u : NULL;
}

static int is_op(const Onnx__NodeProto *n, const char *op, size_t n_in) {
    return n && !strcmp(str0(n->op_type), op) && n->n_input == n_in && n->n_output >= 1;
}

/* the input of a 2-input node that is not `known` (NULL when neither is) */
static const char *other(const Onnx__NodeProto *n, const char *known) {
    return !strcmp(n->input[0], known) ? n->input[1] : !strcmp(n->input[1], known) ? n->input[0] : NULL;
}

static gf_status add_pattern(imp *I, smap *m, const char *out, pattern p) {
    if (I->npat == I->cappat) {
        int cap = I->cappat ? 2 * I->cappat : 16;
        pattern *q = realloc(I->pat, (size_t)cap * sizeof *q);
        if (!q) return gfo_oom(I);
        I->pat = q; I->cappat = cap;
    }
    I->pat[I->npat] = p;
    gfo_smap_put(m, out, I->npat++);
    return m->oom ? gfo_oom(I) : GF_OK;
}

static void absorb(imp *I, const Onnx__NodeProto *n) { gfo_smap_put(&I->absorbed, n->output[0], 1); }

/* ReduceMean's axes (attribute or constant input 1): count in *na, 0 when computed */
static int reduce_axes(imp *I, const Onnx__NodeProto *n, int64_t *axes, int *na) {
    const Onnx__AttributeProto *a = gfo_attr(n, "axes");
    if (a) {
        if (a->n_ints > GF_ST_MAX_DIMS) return 0;
        for (size_t k = 0; k < a->n_ints; k++) axes[k] = a->ints[k];
        *na = (int)a->n_ints;
        return 1;
    }
    const val *v = n->n_input > 1 ? gfo_get(I, n->input[1]) : NULL;
    if (!v || v->kind != V_CONST || !v->is_int || v->n > GF_ST_MAX_DIMS) return 0;
    for (size_t k = 0; k < v->n; k++) axes[k] = v->i[k];
    *na = (int)v->n;
    return 1;
}

/* torch.onnx's erf GELU: Mul(Mul(x, Add(Erf(Div(x, sqrt 2)), 1)), 0.5), either operand order (or Mul by
 * 1/sqrt 2), and its LayerNorm over one axis: d = Sub(x, ReduceMean(x)); Div(d, Sqrt(Add(ReduceMean(Pow(d, 2)),
 * eps))), then optionally Mul by gamma and Add of beta ([C] constants). convert_onnx.gelu_patterns and
 * layernorm_patterns: the last node of each becomes one gelu / layernorm node, the others are skipped. */
gf_status gfo_find_patterns(imp *I) {
    Onnx__GraphProto *g = I->g;
    gf_status st;
    size_t nslots = 0;
    for (size_t k = 0; k < g->n_node; k++) {
        const Onnx__NodeProto *n = g->node[k];
        for (size_t j = 0; j < n->n_output; j++)
            if (n->output[j][0]) gfo_smap_put(&I->prod, n->output[j], (int)k);
        for (size_t j = 0; j < n->n_input; j++)
            if (n->input[j][0] && gfo_smap_get(&I->uslot, n->input[j]) < 0) gfo_smap_put(&I->uslot, n->input[j], (int)nslots++);
    }
    if (I->prod.oom || I->uslot.oom || !(I->uoff = calloc(nslots + 2, sizeof *I->uoff))) return gfo_oom(I);
    size_t total = 0;
    for (size_t k = 0; k < g->n_node; k++)
        for (size_t j = 0; j < g->node[k]->n_input; j++)
            if (g->node[k]->input[j][0]) { I->uoff[gfo_smap_get(&I->uslot, g->node[k]->input[j]) + 2]++; total++; }
    for (size_t k = 2; k < nslots + 2; k++) I->uoff[k] += I->uoff[k - 1];
    if (!(I->ulist = malloc((total ? total : 1) * sizeof *I->ulist))) return gfo_oom(I);
    for (size_t k = 0; k < g->n_node; k++)
        for (size_t j = 0; j < g->node[k]->n_input; j++)
            if (g->node[k]->input[j][0]) I->ulist[I->uoff[gfo_smap_get(&I->uslot, g->node[k]->input[j]) + 1]++] = (int)k;
    for (size_t k = 0; k < g->n_node; k++) {
        const Onnx__NodeProto *erf = g->node[k];
        if (!is_op(erf, "Erf", 1)) continue;
        const Onnx__NodeProto *div = producer(I, erf->input[0]);
        const char *x;
        if (!div || div->n_input != 2) continue;
        if (!strcmp(str0(div->op_type), "Div") && pscalar(I, div->input[1], sqrt(2.0), 1e-5)) x = div->input[0];
        else if (!strcmp(str0(div->op_type), "Mul") && (pscalar(I, div->input[1], 1 / sqrt(2.0), 1e-5) ||
                                                       pscalar(I, div->input[0], 1 / sqrt(2.0), 1e-5)))
            x = is_init(I, div->input[0]) ? div->input[1] : div->input[0];
        else continue;
        const Onnx__NodeProto *add = only_user(I, erf->output[0], "Add");
        const char *o;
        if (!add || add->n_input != 2 || !(o = other(add, erf->output[0])) || !pscalar(I, o, 1.0, 1e-6)) continue;
        const Onnx__NodeProto *m1 = only_user(I, add->output[0], "Mul");
        if (!m1 || m1->n_input != 2 || !(o = other(m1, add->output[0])) || strcmp(o, x)) continue;
        const Onnx__NodeProto *m2 = only_user(I, m1->output[0], "Mul");
        if (!m2 || m2->n_input != 2 || !(o = other(m2, m1->output[0])) || !pscalar(I, o, 0.5, 1e-6)) continue;
        if ((st = add_pattern(I, &I->gelu, m2->output[0], (pattern){x, NULL, NULL, 0, 0}))) return st;
        absorb(I, div); absorb(I, erf); absorb(I, add); absorb(I, m1);
    }
    for (size_t k = 0; k < g->n_node; k++) {
        const Onnx__NodeProto *sub = g->node[k];
        if (!is_op(sub, "Sub", 2)) continue;
        const Onnx__NodeProto *rm = producer(I, sub->input[1]);
        int64_t ax1[GF_ST_MAX_DIMS], ax2[GF_ST_MAX_DIMS], keep = 1;
        int na1 = 0, na2 = 0;
        const Onnx__AttributeProto *kd = rm ? gfo_attr(rm, "keepdims") : NULL;
        if (kd && kd->has_i) keep = kd->i;
        if (!rm || strcmp(str0(rm->op_type), "ReduceMean") || !rm->n_input || strcmp(rm->input[0], sub->input[0]) ||
            !reduce_axes(I, rm, ax1, &na1) || na1 != 1 || !keep)
            continue;
        const char *x = sub->input[0], *d = sub->output[0];
        const Onnx__NodeProto *pw = NULL, *dv = NULL;
        if (gfo_n_users(I, d) != 2) continue;
        for (int j = 0; j < 2; j++) {
            const Onnx__NodeProto *u = gfo_user(I, d, j);
            if (is_op(u, "Pow", 2) && pscalar(I, u->input[1], 2.0, 1e-6)) pw = u;
            else if (is_op(u, "Div", 2) && !strcmp(u->input[0], d)) dv = u;
        }
        if (!pw || !dv) continue;
        const Onnx__NodeProto *rm2 = only_user(I, pw->output[0], "ReduceMean");
        const Onnx__NodeProto *add = rm2 ? only_user(I, rm2->output[0], "Add") : NULL;
        const Onnx__NodeProto *sq = add ? only_user(I, add->output[0], "Sqrt") : NULL;
        if (!sq || add->n_input != 2 || !reduce_axes(I, rm2, ax2, &na2) || na2 != na1 || ax2[0] != ax1[0] ||
            strcmp(dv->input[1], sq->output[0]))
            continue;
        const char *epsname = other(add, rm2->output[0]);
        size_t ne; int nd; double eps;
        if (!epsname || !pconst(I, epsname, &ne, &nd, &eps) || ne != 1) continue;
        const Onnx__NodeProto *chain[8] = {rm, sub, pw, rm2, add, sq}, *last = dv;
        int nc = 6;
        pattern p = {x, NULL, NULL, (int)ax1[0], eps};
        const Onnx__NodeProto *m = only_user(I, dv->output[0], "Mul");
        const char *gname = m && m->n_input == 2 ? other(m, dv->output[0]) : NULL;
        size_t gn; int gd; double gv;
        if (gname && pconst(I, gname, &gn, &gd, &gv) && gd == 1) {
            chain[nc++] = last;
            last = m;
            p.gamma = gname;
            const Onnx__NodeProto *a = only_user(I, m->output[0], "Add");
            const char *bname = a && a->n_input == 2 ? other(a, m->output[0]) : NULL;
            if (bname && pconst(I, bname, &gn, &gd, &gv) && gd == 1) {
                chain[nc++] = last;
                last = a;
                p.beta = bname;
            }
        }
        if ((st = add_pattern(I, &I->lnorm, last->output[0], p))) return st;
        for (int j = 0; j < nc; j++) absorb(I, chain[j]);
    }
    for (size_t k = 0; k < g->n_node; k++) {   /* opset 17's single op: the same, scale and bias constants */
        const Onnx__NodeProto *n = g->node[k];
        if (strcmp(str0(n->op_type), "LayerNormalization") || !n->n_input || !n->n_output) continue;
        const char *who = n->name && n->name[0] ? n->name : n->output[0];
        int extra_out = 0;
        for (size_t j = 1; j < n->n_output; j++) extra_out |= n->output[j][0] != 0;
        for (size_t j = 1; j < n->n_input && j < 3; j++)
            if (n->input[j][0] && !is_init(I, n->input[j])) extra_out = 1;
        if (extra_out)
            return gfo_ifail(I, "node %s: LayerNormalization with computed scale/bias or statistics outputs not supported", who);
        int64_t axis;
        double eps;
        if ((st = gfo_a_int(I, n, "axis", -1, &axis)) || (st = gfo_a_float(I, n, "epsilon", 1e-5, &eps))) return st;
        pattern p = {n->input[0], n->n_input > 1 && n->input[1][0] ? n->input[1] : NULL,
                     n->n_input > 2 && n->input[2][0] ? n->input[2] : NULL, (int)axis, eps};
        if ((st = add_pattern(I, &I->lnorm, n->output[0], p))) return st;
    }
    return I->absorbed.oom ? gfo_oom(I) : GF_OK;
}

#endif
