/* Integer shape arithmetic (convert_onnx._eval_shape_op): torch writes it for x.size() and a symbolic batch
 * (read as 1); evaluated on the way on constant inputs, its results are int64 constants. */
#include <stdlib.h>
#include <string.h>
#include "onnx_imp.h"

#ifdef GF_HAVE_PROTOBUF_C

enum { MAX_FOLD = 1 << 16 };

/* an int64 constant of shape (nd, d) taking ownership of v */
static gf_status set_int(imp *I, const char *name, int nd, const int64_t *d, int64_t *v, size_t n) {
    int k = gfo_new_val(I, name, V_CONST);
    if (k < 0) { free(v); return gfo_oom(I); }
    val *x = &I->v[k];
    x->is_int = 1; x->i = v; x->n = n; x->nd = nd;
    memcpy(x->d, d, (size_t)nd * sizeof *d);
    return GF_OK;
}

/* one op of the shape arithmetic on its inputs in[0..4]: *done = 1 with the output set, or 0 when it is not
 * that (the node is then translated as a network op) */
typedef gf_status (*fold_fn)(imp *I, const Onnx__NodeProto *n, val **in, int *done);

static gf_status fold_shape(imp *I, const Onnx__NodeProto *n, val **in, int *done) {
    const char *out = n->output[0];
    if (!in[0] || (in[0]->kind != V_ACT && in[0]->kind != V_CONST)) return GF_OK;
    int64_t s, e;
    gf_status st;
    if ((st = gfo_a_int(I, n, "start", 0, &s)) || (st = gfo_a_int(I, n, "end", in[0]->nd, &e))) return st;
    int r = in[0]->nd;
    s = clampi(s < 0 ? s + r : s, 0, r);
    e = clampi(e < 0 ? e + r : e, 0, r);
    size_t cnt = e > s ? (size_t)(e - s) : 0;
    int64_t *v = malloc(cnt ? cnt * sizeof *v : 1);
    if (!v) return gfo_oom(I);
    for (size_t k = 0; k < cnt; k++) v[k] = in[0]->d[s + (int64_t)k];
    int64_t dd = (int64_t)cnt;
    *done = 1;
    return set_int(I, out, 1, &dd, v, cnt);
}

static gf_status fold_copy(imp *I, const Onnx__NodeProto *n, val **in, int *done) {   /* Cast to an int type, Identity */
    const char *op = str0(n->op_type), *out = n->output[0];
    val *a = in[0];
    if (!strcmp(op, "Cast")) {
        int64_t to;
        gf_status st = gfo_a_int(I, n, "to", 0, &to);
        if (st) return st;
        static const int ints[] = {2, 3, 4, 5, 6, 7, 9, 12, 13};   /* uint8 ... int64, bool, uint32, uint64 */
        int ok = 0;
        for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++) ok |= to == ints[k];
        if (!ok) return GF_OK;
    }
    int64_t *v = malloc(a->n ? a->n * sizeof *v : 1);
    if (!v) return gfo_oom(I);
    memcpy(v, a->i, a->n * sizeof *v);
    *done = 1;
    return set_int(I, out, a->nd, a->d, v, a->n);
}

static gf_status fold_arith(imp *I, const Onnx__NodeProto *n, val **in, int *done) {   /* Add, Sub, Mul, Div */
    const char *op = str0(n->op_type), *nm = str0(n->name), *out = n->output[0];
    val *a = in[0], *b = in[1];
    if (!b || n->n_input != 2) return GF_OK;
    const val *big = a->n >= b->n ? a : b;
    if (!(a->n == b->n || a->n == 1 || b->n == 1)) return GF_OK;
    int64_t *v = malloc(big->n ? big->n * sizeof *v : 1);
    if (!v) return gfo_oom(I);
    for (size_t k = 0; k < big->n; k++) {
        int64_t x = a->i[a->n == 1 ? 0 : k], y = b->i[b->n == 1 ? 0 : k];
        if (op[0] == 'D' && (y == 0 || (x == INT64_MIN && y == -1))) {
            free(v);
            return gfo_ifail(I, "node %s: integer Div by %lld in the shape arithmetic", nm, (long long)y);
        }
        /* shape values are small: keep the maths in range instead of wrapping */
        if (x > (int64_t)MAX_NUMEL || x < -(int64_t)MAX_NUMEL || y > (int64_t)MAX_NUMEL || y < -(int64_t)MAX_NUMEL) {
            free(v);
            return gfo_ifail(I, "node %s: shape arithmetic on %lld and %lld out of range", nm, (long long)x, (long long)y);
        }
        v[k] = op[0] == 'A' ? x + y : op[0] == 'S' ? x - y : op[0] == 'M' ? x * y : x / y;   /* C truncates like ONNX */
    }
    *done = 1;
    return set_int(I, out, big->nd, big->d, v, big->n);
}

static gf_status fold_gather(imp *I, const Onnx__NodeProto *n, val **in, int *done) {
    const char *nm = str0(n->name), *out = n->output[0];
    val *a = in[0], *b = in[1];
    int64_t ax;
    gf_status st = gfo_a_int(I, n, "axis", 0, &ax);
    if (st) return st;
    if (!b || a->nd != 1 || (ax != 0 && ax != -1) || b->nd > 1) return GF_OK;
    int64_t *v = malloc(b->n ? b->n * sizeof *v : 1);
    if (!v) return gfo_oom(I);
    for (size_t k = 0; k < b->n; k++) {
        int64_t j = b->i[k] < 0 ? b->i[k] + (int64_t)a->n : b->i[k];
        if (j < 0 || j >= (int64_t)a->n) { free(v); return gfo_ifail(I, "node %s: Gather index %lld out of range", nm, (long long)b->i[k]); }
        v[k] = a->i[j];
    }
    *done = 1;
    return set_int(I, out, b->nd, b->d, v, b->n);
}

static gf_status fold_squeeze(imp *I, const Onnx__NodeProto *n, val **in, int *done) {   /* Unsqueeze, Squeeze */
    const char *op = str0(n->op_type), *nm = str0(n->name), *out = n->output[0];
    val *a = in[0], *b = in[1];
    int64_t axes[GF_ST_MAX_DIMS];
    int na = 0, present = 0;
    gf_status st = gfo_a_ints(I, n, "axes", -1, axes, &na, &present);
    if (st) return st;
    if (!present && b) {
        if (b->n > GF_ST_MAX_DIMS) return GF_OK;
        na = (int)b->n;
        memcpy(axes, b->i, b->n * sizeof *axes);
    }
    int64_t d[GF_ST_MAX_DIMS];
    int nd = 0;
    if (op[0] == 'U') {
        if (!na && !present && !b) return GF_OK;
        int r = a->nd + na;
        if (r > GF_ST_MAX_DIMS) return GF_OK;
        char is1[GF_ST_MAX_DIMS] = {0};
        for (int k = 0; k < na; k++) {
            int64_t x = axes[k] < 0 ? axes[k] + r : axes[k];
            if (x < 0 || x >= r || is1[x]) return gfo_ifail(I, "node %s: Unsqueeze axes out of range", nm);
            is1[x] = 1;
        }
        for (int k = 0, s = 0; k < r; k++) d[nd++] = is1[k] ? 1 : a->d[s++];
    } else {
        char drop[GF_ST_MAX_DIMS] = {0};
        for (int k = 0; k < na; k++) {
            int64_t x = axes[k] < 0 ? axes[k] + a->nd : axes[k];
            if (x < 0 || x >= a->nd || a->d[x] != 1) return gfo_ifail(I, "node %s: Squeeze axes out of range", nm);
            drop[x] = 1;
        }
        for (int k = 0; k < a->nd; k++)
            if (!(na ? drop[k] : a->d[k] == 1)) d[nd++] = a->d[k];
    }
    int64_t *v = malloc(a->n ? a->n * sizeof *v : 1);
    if (!v) return gfo_oom(I);
    memcpy(v, a->i, a->n * sizeof *v);
    *done = 1;
    return set_int(I, out, nd, d, v, a->n);
}

static gf_status fold_concat(imp *I, const Onnx__NodeProto *n, val **in, int *done) {   /* of vectors */
    const char *nm = str0(n->name), *out = n->output[0];
    size_t tot = 0;
    for (size_t k = 0; k < n->n_input; k++) {
        if (!in[k] || in[k]->nd != 1) return GF_OK;
        tot += in[k]->n;
    }
    if (tot > MAX_FOLD) return gfo_ifail(I, "node %s: shape arithmetic on %zu values", nm, tot);
    int64_t *v = malloc(tot ? tot * sizeof *v : 1), d = (int64_t)tot;
    if (!v) return gfo_oom(I);
    size_t at = 0;
    for (size_t k = 0; k < n->n_input; k++) { memcpy(v + at, in[k]->i, in[k]->n * sizeof *v); at += in[k]->n; }
    *done = 1;
    return set_int(I, out, 1, &d, v, tot);
}

static gf_status fold_slice(imp *I, const Onnx__NodeProto *n, val **in, int *done) {   /* of a vector */
    const char *nm = str0(n->name), *out = n->output[0];
    val *a = in[0];
    if (a->nd != 1) return GF_OK;
    int64_t st0, en0, step = 1;
    if (n->n_input >= 3) {
        if (!in[1] || !in[2] || in[1]->n != 1 || in[2]->n != 1) return GF_OK;
        if (n->n_input > 3 && in[3] && (in[3]->n != 1 || (in[3]->i[0] != 0 && in[3]->i[0] != -1))) return GF_OK;
        if (n->n_input > 4 && in[4]) { if (in[4]->n != 1) return GF_OK; step = in[4]->i[0]; }
        st0 = in[1]->i[0]; en0 = in[2]->i[0];
    } else {
        int64_t s[1], e[1];
        int c1 = 0, c2 = 0;
        gf_status st;
        if ((st = gfo_a_ints_lim(I, n, "starts", 1, s, &c1, NULL, INT64_MAX)) || (st = gfo_a_ints_lim(I, n, "ends", 1, e, &c2, NULL, INT64_MAX)))
            return st;
        if (c1 != 1 || c2 != 1) return GF_OK;
        st0 = s[0]; en0 = e[0];
    }
    if (!step) return gfo_ifail(I, "node %s: Slice step 0", nm);
    int64_t L = (int64_t)a->n;   /* Python slice semantics */
    if (step > L) step = L + 1;  /* one element either way; keeps j += step in range */
    if (step < -L) step = -L - 1;
    if (st0 < 0) st0 += L;
    if (en0 < 0) en0 += L;
    st0 = step > 0 ? clampi(st0, 0, L) : clampi(st0, -1, L - 1);
    en0 = step > 0 ? clampi(en0, 0, L) : clampi(en0, -1, L - 1);
    size_t cnt = 0;
    int64_t *v = malloc(a->n ? a->n * sizeof *v : 1);
    if (!v) return gfo_oom(I);
    for (int64_t j = st0; step > 0 ? j < en0 : j > en0; j += step) v[cnt++] = a->i[j];
    int64_t d = (int64_t)cnt;
    *done = 1;
    return set_int(I, out, 1, &d, v, cnt);
}

/* the ops of the shape arithmetic; of_shape: reads its input's shape (of any value), the others fold only
 * when every input is an int constant */
static const struct { const char *op; fold_fn fn; int of_shape; } FOLDS[] = {
    {"Shape", fold_shape, 1}, {"Gather", fold_gather, 0}, {"Unsqueeze", fold_squeeze, 0}, {"Squeeze", fold_squeeze, 0},
    {"Concat", fold_concat, 0}, {"Cast", fold_copy, 0}, {"Add", fold_arith, 0}, {"Sub", fold_arith, 0},
    {"Mul", fold_arith, 0}, {"Div", fold_arith, 0}, {"Slice", fold_slice, 0}, {"Identity", fold_copy, 0}};

/* Evaluates integer shape arithmetic on constant inputs (a node of one output). *done = 0 when the node is
 * not that (it is then translated as a network op). */
gf_status gfo_fold(imp *I, const Onnx__NodeProto *n, int *done) {
    const char *op = str0(n->op_type);
    *done = 0;
    size_t f = 0, nf = sizeof FOLDS / sizeof FOLDS[0];
    while (f < nf && strcmp(op, FOLDS[f].op)) f++;
    if (f == nf || n->n_output != 1) return GF_OK;
    val *in[5] = {0};
    if (n->n_input > 5) return GF_OK;
    for (size_t k = 0; k < n->n_input; k++) in[k] = gfo_get(I, n->input[k]);
    if (!FOLDS[f].of_shape) {
        int any = 0;
        for (size_t k = 0; k < n->n_input; k++) {
            if (!n->input[k][0]) continue;
            if (!in[k] || in[k]->kind != V_CONST || !in[k]->is_int) return GF_OK;   /* float maths is not folded */
            any = 1;
        }
        if (!any || !in[0]) return GF_OK;
    }
    return FOLDS[f].fn(I, n, in, done);
}

#endif
