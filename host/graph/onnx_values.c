/* The ONNX import's building blocks (onnx_imp.h): a string -> int map, the values of the ONNX graph,
 * node attributes, initializer / Constant tensors, and our graph (names as the converter makes them, nodes,
 * tensors of the model file). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "onnx_imp.h"

#ifdef GF_HAVE_PROTOBUF_C

/* ------------------------------------------------------------ string -> int map */

static uint64_t shash(const char *s) { return gf_fnv1a(GF_FNV_INIT, s, strlen(s)); }

int gfo_smap_get(const smap *m, const char *k) {
    if (!m->cap) return -1;
    for (size_t i = shash(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->k[i]) return -1;
        if (!strcmp(m->k[i], k)) return m->v[i];
    }
}

void gfo_smap_put(smap *m, const char *k, int v) {
    if (2 * (m->n + 1) > m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 64;
        const char **nk = calloc(cap, sizeof *nk);
        int *nv = calloc(cap, sizeof *nv);
        if (!nk || !nv) { free(nk); free(nv); m->oom = 1; return; }
        for (size_t i = 0; i < m->cap; i++)
            if (m->k[i]) {
                size_t j = shash(m->k[i]) & (cap - 1);
                while (nk[j]) j = (j + 1) & (cap - 1);
                nk[j] = m->k[i];
                nv[j] = m->v[i];
            }
        free(m->k); free(m->v);
        m->k = nk; m->v = nv; m->cap = cap;
    }
    size_t i = shash(k) & (m->cap - 1);
    while (m->k[i] && strcmp(m->k[i], k)) i = (i + 1) & (m->cap - 1);
    if (!m->k[i]) m->n++;
    m->k[i] = k;
    m->v[i] = v;
}

void gfo_smap_free(smap *m) { free(m->k); free(m->v); memset(m, 0, sizeof *m); }

/* ------------------------------------------------------------ values of the ONNX graph */

gf_status gfo_ifail(imp *I, const char *fmt, ...) {
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    gf_vformat(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return gf_fail_msg(I->err, I->errsz, GF_ERR_INPUT, "%s: %s", I->path, msg);
}

gf_status gfo_oom(imp *I) {
    gf_fail_msg(I->err, I->errsz, GF_ERR_MEMORY, "%s: out of memory importing the ONNX model", I->path);
    return GF_ERR_MEMORY;
}

static char *own(imp *I, char *s) {
    if (!s) return NULL;
    if (I->nstrs == I->capstrs) {
        int cap = I->capstrs ? 2 * I->capstrs : 64;
        char **p = realloc(I->strs, (size_t)cap * sizeof *p);
        if (!p) { free(s); return NULL; }
        I->strs = p; I->capstrs = cap;
    }
    return I->strs[I->nstrs++] = s;
}

char *gfo_own_fmt(imp *I, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return own(I, s);
}

int gfo_new_val(imp *I, const char *name, int kind) {
    if (I->nv == I->capv) return -1;   /* sized up front: pointers into v stay valid */
    val *x = &I->v[I->nv];
    memset(x, 0, sizeof *x);
    x->kind = kind;
    x->ours = -1;
    gfo_smap_put(&I->vals, name, I->nv);
    if (I->vals.oom) return -1;
    return I->nv++;
}

val *gfo_get(imp *I, const char *name) {
    int k = name && name[0] ? gfo_smap_get(&I->vals, name) : -1;
    return k >= 0 ? &I->v[k] : NULL;
}

/* ------------------------------------------------------------ attributes */

const Onnx__AttributeProto *gfo_attr(const Onnx__NodeProto *n, const char *key) {
    for (size_t k = 0; k < n->n_attribute; k++)
        if (!strcmp(str0(n->attribute[k]->name), key)) return n->attribute[k];
    return NULL;
}

/* an int attribute (bounded: every size and index gradfeat takes from a file fits MAX_DIM) */
gf_status gfo_a_int(imp *I, const Onnx__NodeProto *n, const char *key, int64_t def, int64_t *out) {
    const Onnx__AttributeProto *a = gfo_attr(n, key);
    *out = def;
    if (!a) return GF_OK;
    if (!a->has_i) return gfo_ifail(I, "node %s: attribute %s is not an integer", str0(n->name), key);
    if (a->i < -MAX_DIM || a->i > MAX_DIM) return gfo_ifail(I, "node %s: attribute %s = %lld out of range", str0(n->name), key, (long long)a->i);
    *out = a->i;
    return GF_OK;
}

gf_status gfo_a_float(imp *I, const Onnx__NodeProto *n, const char *key, double def, double *out) {
    const Onnx__AttributeProto *a = gfo_attr(n, key);
    *out = def;
    if (!a) return GF_OK;
    if (!a->has_f || !isfinite(a->f)) return gfo_ifail(I, "node %s: attribute %s is not a finite float", str0(n->name), key);
    *out = a->f;
    return GF_OK;
}

/* an ints attribute of exactly `want` entries (want < 0: 1..8 entries, count in *cnt) */
gf_status gfo_a_ints_lim(imp *I, const Onnx__NodeProto *n, const char *key, int want, int64_t *out, int *cnt, int *present,
                         int64_t lim) {
    const Onnx__AttributeProto *a = gfo_attr(n, key);
    if (present) *present = a != NULL;
    if (!a) return GF_OK;
    if ((want >= 0 && a->n_ints != (size_t)want) || (want < 0 && (a->n_ints < 1 || a->n_ints > GF_ST_MAX_DIMS)))
        return gfo_ifail(I, "node %s: attribute %s has %zu values (expected %d)", str0(n->name), key, a->n_ints, want < 0 ? 1 : want);
    for (size_t k = 0; k < a->n_ints; k++) {
        if (a->ints[k] < -lim || a->ints[k] > lim)
            return gfo_ifail(I, "node %s: attribute %s[%zu] out of range", str0(n->name), key, k);
        out[k] = a->ints[k];
    }
    if (cnt) *cnt = (int)a->n_ints;
    return GF_OK;
}

gf_status gfo_a_ints(imp *I, const Onnx__NodeProto *n, const char *key, int want, int64_t *out, int *cnt, int *present) {
    return gfo_a_ints_lim(I, n, key, want, out, cnt, present, MAX_DIM);
}

const char *gfo_a_str(const Onnx__NodeProto *n, const char *key, const char *def, char *buf, size_t bufsz) {
    const Onnx__AttributeProto *a = gfo_attr(n, key);
    if (!a || !a->has_s) return def;
    size_t len = a->s.len < bufsz - 1 ? a->s.len : bufsz - 1;
    memcpy(buf, a->s.data, len);
    buf[len] = 0;
    return buf;
}

/* ------------------------------------------------------------ tensors */

static float half_f(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, bits;
    if (e == 0) {
        if (!m) bits = sign;
        else { int s = -1; do { s++; m <<= 1; } while (!(m & 0x400)); bits = sign | ((uint32_t)(112 - s) << 23) | ((m & 0x3ff) << 13); }
    } else if (e == 31) bits = sign | 0x7f800000u | (m << 13);
    else bits = sign | ((e + 112) << 23) | (m << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static uint64_t le(const uint8_t *p, int nb) {
    uint64_t v = 0;
    for (int k = nb - 1; k >= 0; k--) v = v << 8 | p[k];
    return v;
}

/* A TensorProto into value x: float32 (FLOAT, FLOAT16, DOUBLE) or int64 (INT64, INT32, ...); the data is
 * raw_data or the typed field, and its length must match the dims exactly. */
gf_status gfo_load_tensor(imp *I, const Onnx__TensorProto *t, const char *what, val *x) {
    const char *nm = str0(t->name);
    if ((t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) || t->n_external_data)
        return gfo_ifail(I, "%s %s: stored as external data (a separate file), which gradfeat does not read: save the "
                         "model with every tensor inside the .onnx (onnx.save(..., save_as_external_data=False))", what, nm);
    if (t->segment) return gfo_ifail(I, "%s %s: a segmented tensor is not supported", what, nm);
    if (t->n_dims > GF_ST_MAX_DIMS) return gfo_ifail(I, "%s %s: %zu dimensions (at most %d)", what, nm, t->n_dims, GF_ST_MAX_DIMS);
    x->nd = (int)t->n_dims;
    for (int k = 0; k < x->nd; k++) {
        if (t->dims[k] < 0 || t->dims[k] > ((int64_t)1 << 31)) return gfo_ifail(I, "%s %s: dims[%d] = %lld", what, nm, k, (long long)t->dims[k]);
        x->d[k] = t->dims[k];
    }
    uint64_t n = 1;
    for (int k = 0; k < x->nd; k++) {
        if (x->d[k] && n > MAX_NUMEL / (uint64_t)x->d[k]) return gfo_ifail(I, "%s %s: too many elements", what, nm);
        n *= (uint64_t)x->d[k];
    }
    int dt = t->has_data_type ? t->data_type : 0, nb;
    int is_int = 0;
    size_t typed;
    switch (dt) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: nb = 4; typed = t->n_float_data; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: nb = 2; typed = t->n_int32_data; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: nb = 8; typed = t->n_double_data; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: nb = 8; typed = t->n_int64_data; is_int = 1; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: nb = 4; typed = t->n_int32_data; is_int = 1; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: nb = 1; typed = t->n_int32_data; is_int = 1; break;
    default: return gfo_ifail(I, "%s %s: data type %d not supported (float, float16, double or an integer type)", what, nm, dt);
    }
    int raw = t->has_raw_data;
    if (raw ? t->raw_data.len != n * (uint64_t)nb : typed != n)
        return gfo_ifail(I, "%s %s: holds %llu %s for %llu elements", what, nm,
                         (unsigned long long)(raw ? t->raw_data.len : typed), raw ? "bytes" : "values", (unsigned long long)n);
    x->kind = V_CONST;
    x->is_int = is_int;
    x->n = (size_t)n;
    if (is_int) {
        if (!(x->i = malloc(n ? n * sizeof *x->i : 1))) return gfo_oom(I);
        for (size_t k = 0; k < n; k++) {
            if (raw) {
                uint64_t u = le(t->raw_data.data + k * (size_t)nb, nb);
                x->i[k] = nb == 8 ? (int64_t)u : nb == 4 ? (int64_t)(int32_t)(uint32_t)u
                        : dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT8 ? (int64_t)(int8_t)(uint8_t)u : (int64_t)u;
            } else x->i[k] = nb == 8 ? t->int64_data[k] : t->int32_data[k];
        }
        return GF_OK;
    }
    if (!(x->f = malloc(n ? n * sizeof *x->f : 1))) return gfo_oom(I);
    for (size_t k = 0; k < n; k++) {
        float f;
        if (nb == 4) {
            if (raw) { uint32_t u = (uint32_t)le(t->raw_data.data + 4 * k, 4); memcpy(&f, &u, 4); }
            else f = t->float_data[k];
        } else if (nb == 2) f = half_f((uint16_t)(raw ? le(t->raw_data.data + 2 * k, 2) : (uint32_t)t->int32_data[k]));
        else {
            double d;
            if (raw) { uint64_t u = le(t->raw_data.data + 8 * k, 8); memcpy(&d, &u, 8); }
            else d = t->double_data[k];
            f = isfinite(d) && fabs(d) > 3.4028234663852886e38 ? (d > 0 ? INFINITY : -INFINITY) : (float)d;
        }
        x->f[k] = f;
    }
    return GF_OK;
}

/* ------------------------------------------------------------ our graph */

/* '/layer1/layer1.0/conv1/Conv' -> 'layer1.0.conv1' (as convert_onnx.clean_name) */
char *gfo_clean_name(imp *I, const Onnx__NodeProto *n) {
    const char *nm = str0(n->name), *op = str0(n->op_type);
    size_t L = strlen(nm);
    char *res = calloc(L + 2, 1);
    if (!res) return NULL;
    /* split on '/', drop empty components */
    const char *comp[512];
    size_t clen[512];
    int nc = 0;
    for (const char *p = nm; *p && nc < 512;) {
        while (*p == '/') p++;
        if (!*p) break;
        const char *q = p;
        while (*q && *q != '/') q++;
        comp[nc] = p; clen[nc] = (size_t)(q - p); nc++;
        p = q;
    }
    if (nc > 1) nc--;
    else if (nc == 1 && clen[0] >= strlen(op) && !strncmp(comp[0], op, strlen(op))) nc = 0;
    size_t rl = 0;
    const char *last = NULL;
    size_t lastl = 0;
    for (int k = 0; k < nc; k++) {
        if (!rl) { memcpy(res, comp[k], clen[k]); rl = clen[k]; }
        else if (clen[k] > lastl && !strncmp(comp[k], last, lastl) && comp[k][lastl] == '.') {
            memcpy(res + rl, comp[k] + lastl, clen[k] - lastl); rl += clen[k] - lastl;
        } else {
            res[rl++] = '.';
            memcpy(res + rl, comp[k], clen[k]); rl += clen[k];
        }
        last = comp[k]; lastl = clen[k];
    }
    res[rl] = 0;
    if (!rl) {
        free(res);
        res = strdup(op);
        if (!res) return NULL;
        for (char *p = res; *p; p++) if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
    }
    return own(I, res);
}

/* name, or name_1, name_2, ... the first not in use (gfmodel.Graph.unique). Names are only ever added, so
 * the search for a base resumes where the last one stopped (1000s of unnamed "relu" nodes stay linear). */
char *gfo_unique(imp *I, const char *name) {
    if (gfo_smap_get(&I->names, name) < 0) return gfo_own_fmt(I, "%s", name);
    int from = gfo_smap_get(&I->next_k, name);
    for (int k = from > 0 ? from : 1;; k++) {
        char *s = gfo_own_fmt(I, "%s_%d", name, k);
        if (!s || gfo_smap_get(&I->names, s) < 0) {
            char *key = s ? gfo_own_fmt(I, "%s", name) : NULL;
            if (key) gfo_smap_put(&I->next_k, key, k);
            return s;
        }
    }
}

/* a float32 tensor of the model file named `name.key` (or a unique variant), from values v */
const char *gfo_add_tensor(imp *I, const char *name, const char *key, const float *v, int nd, const int64_t *d) {
    char *tn = gfo_own_fmt(I, "%s.%s", name, key);
    if (tn && gfo_smap_get(&I->tnames, tn) >= 0) {
        char *u = gfo_unique(I, name);
        tn = u ? gfo_own_fmt(I, "%s.%s", u, key) : NULL;
        if (tn && gfo_smap_get(&I->tnames, tn) >= 0) return NULL;   /* the converter refuses it too */
    }
    if (!tn) return NULL;
    gfo_smap_put(&I->tnames, tn, 1);
    gf_st_add_f32(I->hdr, I->data, tn, v, nd, d);
    return tn;
}

/* appends node {name, op, inputs, params?, attrs?}; takes attrs (may be NULL) */
int gfo_add_node(imp *I, const char *name, gf_op op, const int *in, int n_in, cJSON *params, cJSON *attrs) {
    if (I->non == I->capon) {
        int cap = I->capon ? 2 * I->capon : 256;
        onode *p = realloc(I->on, (size_t)cap * sizeof *p);
        if (!p) { cJSON_Delete(params); cJSON_Delete(attrs); return -1; }
        I->on = p; I->capon = cap;
    }
    char *nm = gfo_unique(I, name);
    cJSON *j = cJSON_CreateObject(), *ins = cJSON_CreateArray();
    if (!nm || !j || !ins) { cJSON_Delete(j); cJSON_Delete(ins); cJSON_Delete(params); cJSON_Delete(attrs); return -1; }
    gfo_smap_put(&I->names, nm, I->non);
    cJSON_AddStringToObject(j, "name", nm);
    cJSON_AddStringToObject(j, "op", gf_op_name(op));
    for (int k = 0; k < n_in; k++) cJSON_AddItemToArray(ins, cJSON_CreateString(in[k] < 0 ? "input" : I->on[in[k]].name));
    cJSON_AddItemToObject(j, "inputs", ins);
    if (params && params->child) cJSON_AddItemToObject(j, "params", params);
    else cJSON_Delete(params);
    if (attrs && attrs->child) cJSON_AddItemToObject(j, "attrs", attrs);
    else cJSON_Delete(attrs);
    cJSON_AddItemToArray(I->nodes, j);
    I->on[I->non] = (onode){nm, op, j};
    return I->non++;
}

/* a float attribute as the shortest decimal that reads back as the same double, as Python's json writes it
 * (cJSON's own printing may drop the 16th-17th digit) */
void gfo_add_real(cJSON *o, const char *key, double v) {
    char buf[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, v);
        if (strtod(buf, NULL) == v) break;
    }
    if (!isfinite(v)) snprintf(buf, sizeof buf, "0");   /* attributes are checked finite before */
    cJSON_AddRawToObject(o, key, buf);
}

cJSON *gfo_ints_json(const int *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int k = 0; k < n; k++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[k]));
    return a;
}

#endif
