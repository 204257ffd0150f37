/* ONNX -> the gradfeat model the Python converter (tools/convert_onnx.py) writes: the same graph JSON,
 * tensor names and float32 values, as an in-memory safetensors header + data area that the model loader
 * (model.c) then reads like a file. One pass over the nodes in file order (ONNX requires topological
 * order) with static shapes tracked per tensor, integer shape arithmetic evaluated on the way (torch writes
 * it for x.size() and a symbolic batch, read as 1); torch's erf-GELU and LayerNorm subgraphs are found first
 * (find_patterns), channels-last blocks (Transpose to NHWC and back) are views of our NCHW nodes.
 * Every size comes from the file and is checked before use; a failure names the node or tensor. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model.h"
#include "gf_file.h"

int gf_onnx_path(const char *path) {
    size_t n = strlen(path);
    if (n < 5) return 0;
    const char *e = path + n - 5;
    char low[6];
    for (int k = 0; k < 5; k++) low[k] = (char)(e[k] >= 'A' && e[k] <= 'Z' ? e[k] - 'A' + 'a' : e[k]);
    low[5] = 0;
    return !strcmp(low, ".onnx");
}

gf_status gf_model_convert_onnx(const char *onnx_path, const char *out_path, char *err, size_t err_size) {
    cJSON *hdr = NULL;
    gf_sink data = {0}, file = {0};
    gf_status st = gf_onnx_import(onnx_path, &hdr, &data, err, err_size);
    if (st == GF_OK && gf_st_serialize(hdr, &data, &file, 1) != GF_OK)
        st = gf_fail_msg(err, err_size, GF_ERR_MEMORY, "%s: out of memory writing the model", out_path);
    if (st == GF_OK) st = gf_write_file_atomic_msg(out_path, file.p, file.n, err, err_size);
    cJSON_Delete(hdr);
    free(data.p);
    free(file.p);
    return st;
}

#ifndef GF_HAVE_PROTOBUF_C

int gf_onnx_supported(void) { return 0; }

gf_status gf_onnx_import(const char *path, cJSON **hdr, gf_sink *data, char *err, size_t err_size) {
    (void)data;
    *hdr = NULL;
    return gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: this gradfeat was built without ONNX support (protobuf-c was not "
                       "found at build time): install libprotobuf-c-dev and protobuf-c-compiler and rebuild, or convert "
                       "the model with tools/convert_onnx.py", path);
}

#else
#include <onnx.pb-c.h>

enum { MAX_NODES = 100000, MAX_DEPTH = 64, MAX_FOLD = 1 << 16, MAX_DIM = 1 << 24, INPUT_NAME = 1 << 30 };
#define MAX_FILE ((uint64_t)2 << 30)   /* protobuf's own limit on one message */
#define MAX_NUMEL ((uint64_t)1 << 31)

int gf_onnx_supported(void) { return 1; }

/* ------------------------------------------------------------ string -> int map */

typedef struct { const char **k; int *v; size_t cap, n; int oom; } smap;

static uint64_t shash(const char *s) { return gf_fnv1a(GF_FNV_INIT, s, strlen(s)); }

static int smap_get(const smap *m, const char *k) {
    if (!m->cap) return -1;
    for (size_t i = shash(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->k[i]) return -1;
        if (!strcmp(m->k[i], k)) return m->v[i];
    }
}

/* k is not copied: it must outlive the map (protobuf strings or our own) */
static void smap_put(smap *m, const char *k, int v) {
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

static void smap_free(smap *m) { free(m->k); free(m->v); memset(m, 0, sizeof *m); }

/* ------------------------------------------------------------ values of the ONNX graph */

enum { V_ACT = 1, V_CONST, V_POISON, V_PADDED, V_VIEW5, V_VIEWT };

typedef struct {
    int kind;
    int nd;
    int64_t d[GF_ST_MAX_DIMS];      /* static shape (batch included, a symbolic batch is 1) */
    int ours;                       /* V_ACT: our node index, -1 = the graph input */
    int is_int;                     /* V_CONST: int64 values in i, else float32 in f */
    float *f;
    int64_t *i;
    size_t n;
    int src, pads[4], groups;       /* V_PADDED: source value + [t, l, b, r]; V_VIEW5/T: source + groups */
    int nhwc;                       /* V_ACT: an NHWC view (Transpose [0, 2, 3, 1]) of our NCHW node; d is NHWC */
} val;

typedef struct {                    /* one node of our graph */
    char *name;
    int op;                         /* gf_op */
    cJSON *json;
} onode;

typedef struct { const char *op, *who; int count; } badop;
typedef struct { const char *x, *gamma, *beta; int axis; double eps; } pattern;   /* GELU: x only */

typedef struct {
    char *err;
    size_t errsz;
    const char *path;
    Onnx__GraphProto *g;
    val *v;
    int nv, capv;
    smap vals;                      /* ONNX tensor name -> v index */
    smap names;                     /* our node / input names in use */
    smap next_k;                    /* base name -> the suffix unique() last gave it */
    smap tnames;                    /* tensor names in use */
    onode *on;
    int non, capon;
    char **strs;                    /* strings we own (names) */
    int nstrs, capstrs;
    cJSON *nodes, *hdr;
    gf_sink *data;
    badop bad[64];                  /* unsupported op types: the first node of each, how many */
    int nbad;
    /* torch's GELU and LayerNorm subgraphs (found before the main pass, as the converter does) */
    smap prod;                      /* tensor -> index of the node writing it */
    smap uslot;                     /* tensor -> slot in uoff */
    int *uoff, *ulist;              /* the nodes reading slot k: ulist[uoff[k] .. uoff[k + 1]) */
    smap absorbed;                  /* outputs of nodes inside a recognised subgraph */
    smap gelu;                      /* output of a GELU subgraph -> index into pat */
    smap lnorm;                     /* output of a LayerNorm (subgraph or op) -> index into pat */
    pattern *pat;
    int npat, cappat;
    int64_t batch;
} imp;

static gf_status ifail(imp *I, const char *fmt, ...) GF_PRINTF(2, 3);
static gf_status ifail(imp *I, const char *fmt, ...) {
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    gf_vformat(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return gf_fail_msg(I->err, I->errsz, GF_ERR_INPUT, "%s: %s", I->path, msg);
}

static gf_status oom(imp *I) {
    gf_fail_msg(I->err, I->errsz, GF_ERR_MEMORY, "%s: out of memory importing the ONNX model", I->path);
    return GF_ERR_MEMORY;
}

static const char *str0(const char *s) { return s ? s : ""; }

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

static char *own_fmt(imp *I, const char *fmt, ...) GF_PRINTF(2, 3);
static char *own_fmt(imp *I, const char *fmt, ...) {
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

static int new_val(imp *I, const char *name, int kind) {
    if (I->nv == I->capv) return -1;   /* sized up front: pointers into v stay valid */
    val *x = &I->v[I->nv];
    memset(x, 0, sizeof *x);
    x->kind = kind;
    x->ours = -1;
    smap_put(&I->vals, name, I->nv);
    if (I->vals.oom) return -1;
    return I->nv++;
}

static val *get(imp *I, const char *name) {
    int k = name && name[0] ? smap_get(&I->vals, name) : -1;
    return k >= 0 ? &I->v[k] : NULL;
}

static uint64_t numel_of(int nd, const int64_t *d) {
    uint64_t n = 1;
    for (int k = 0; k < nd; k++) n *= (uint64_t)d[k];
    return n;
}

/* ------------------------------------------------------------ attributes */

static const Onnx__AttributeProto *attr(const Onnx__NodeProto *n, const char *key) {
    for (size_t k = 0; k < n->n_attribute; k++)
        if (!strcmp(str0(n->attribute[k]->name), key)) return n->attribute[k];
    return NULL;
}

/* an int attribute (bounded: every size and index gradfeat takes from a file fits MAX_DIM) */
static gf_status a_int(imp *I, const Onnx__NodeProto *n, const char *key, int64_t def, int64_t *out) {
    const Onnx__AttributeProto *a = attr(n, key);
    *out = def;
    if (!a) return GF_OK;
    if (!a->has_i) return ifail(I, "node %s: attribute %s is not an integer", str0(n->name), key);
    if (a->i < -MAX_DIM || a->i > MAX_DIM) return ifail(I, "node %s: attribute %s = %lld out of range", str0(n->name), key, (long long)a->i);
    *out = a->i;
    return GF_OK;
}

static gf_status a_float(imp *I, const Onnx__NodeProto *n, const char *key, double def, double *out) {
    const Onnx__AttributeProto *a = attr(n, key);
    *out = def;
    if (!a) return GF_OK;
    if (!a->has_f || !isfinite(a->f)) return ifail(I, "node %s: attribute %s is not a finite float", str0(n->name), key);
    *out = a->f;
    return GF_OK;
}

/* an ints attribute of exactly `want` entries (want < 0: 1..8 entries, count in *cnt) */
static gf_status a_ints_lim(imp *I, const Onnx__NodeProto *n, const char *key, int want, int64_t *out, int *cnt, int *present,
                            int64_t lim) {
    const Onnx__AttributeProto *a = attr(n, key);
    if (present) *present = a != NULL;
    if (!a) return GF_OK;
    if ((want >= 0 && a->n_ints != (size_t)want) || (want < 0 && (a->n_ints < 1 || a->n_ints > GF_ST_MAX_DIMS)))
        return ifail(I, "node %s: attribute %s has %zu values (expected %d)", str0(n->name), key, a->n_ints, want < 0 ? 1 : want);
    for (size_t k = 0; k < a->n_ints; k++) {
        if (a->ints[k] < -lim || a->ints[k] > lim)
            return ifail(I, "node %s: attribute %s[%zu] out of range", str0(n->name), key, k);
        out[k] = a->ints[k];
    }
    if (cnt) *cnt = (int)a->n_ints;
    return GF_OK;
}

static gf_status a_ints(imp *I, const Onnx__NodeProto *n, const char *key, int want, int64_t *out, int *cnt, int *present) {
    return a_ints_lim(I, n, key, want, out, cnt, present, MAX_DIM);
}

static const char *a_str(const Onnx__NodeProto *n, const char *key, const char *def, char *buf, size_t bufsz) {
    const Onnx__AttributeProto *a = attr(n, key);
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
static gf_status load_tensor(imp *I, const Onnx__TensorProto *t, const char *what, val *x) {
    const char *nm = str0(t->name);
    if ((t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) || t->n_external_data)
        return ifail(I, "%s %s: stored as external data (a separate file), which gradfeat does not read: save the "
                     "model with every tensor inside the .onnx (onnx.save(..., save_as_external_data=False))", what, nm);
    if (t->segment) return ifail(I, "%s %s: a segmented tensor is not supported", what, nm);
    if (t->n_dims > GF_ST_MAX_DIMS) return ifail(I, "%s %s: %zu dimensions (at most %d)", what, nm, t->n_dims, GF_ST_MAX_DIMS);
    x->nd = (int)t->n_dims;
    for (int k = 0; k < x->nd; k++) {
        if (t->dims[k] < 0 || t->dims[k] > ((int64_t)1 << 31)) return ifail(I, "%s %s: dims[%d] = %lld", what, nm, k, (long long)t->dims[k]);
        x->d[k] = t->dims[k];
    }
    uint64_t n = 1;
    for (int k = 0; k < x->nd; k++) {
        if (x->d[k] && n > MAX_NUMEL / (uint64_t)x->d[k]) return ifail(I, "%s %s: too many elements", what, nm);
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
    default: return ifail(I, "%s %s: data type %d not supported (float, float16, double or an integer type)", what, nm, dt);
    }
    int raw = t->has_raw_data;
    if (raw ? t->raw_data.len != n * (uint64_t)nb : typed != n)
        return ifail(I, "%s %s: holds %llu %s for %llu elements", what, nm,
                     (unsigned long long)(raw ? t->raw_data.len : typed), raw ? "bytes" : "values", (unsigned long long)n);
    x->kind = V_CONST;
    x->is_int = is_int;
    x->n = (size_t)n;
    if (is_int) {
        if (!(x->i = malloc(n ? n * sizeof *x->i : 1))) return oom(I);
        for (size_t k = 0; k < n; k++) {
            if (raw) {
                uint64_t u = le(t->raw_data.data + k * (size_t)nb, nb);
                x->i[k] = nb == 8 ? (int64_t)u : nb == 4 ? (int64_t)(int32_t)(uint32_t)u
                        : dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT8 ? (int64_t)(int8_t)(uint8_t)u : (int64_t)u;
            } else x->i[k] = nb == 8 ? t->int64_data[k] : t->int32_data[k];
        }
        return GF_OK;
    }
    if (!(x->f = malloc(n ? n * sizeof *x->f : 1))) return oom(I);
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
static char *clean_name(imp *I, const Onnx__NodeProto *n) {
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
static char *unique(imp *I, const char *name) {
    if (smap_get(&I->names, name) < 0) return own_fmt(I, "%s", name);
    int from = smap_get(&I->next_k, name);
    for (int k = from > 0 ? from : 1;; k++) {
        char *s = own_fmt(I, "%s_%d", name, k);
        if (!s || smap_get(&I->names, s) < 0) {
            char *key = s ? own_fmt(I, "%s", name) : NULL;
            if (key) smap_put(&I->next_k, key, k);
            return s;
        }
    }
}

/* a float32 tensor of the model file named `name.key` (or a unique variant), from values v */
static const char *add_tensor(imp *I, const char *name, const char *key, const float *v, int nd, const int64_t *d) {
    char *tn = own_fmt(I, "%s.%s", name, key);
    if (tn && smap_get(&I->tnames, tn) >= 0) {
        char *u = unique(I, name);
        tn = u ? own_fmt(I, "%s.%s", u, key) : NULL;
        if (tn && smap_get(&I->tnames, tn) >= 0) return NULL;   /* the converter refuses it too */
    }
    if (!tn) return NULL;
    smap_put(&I->tnames, tn, 1);
    gf_st_add_f32(I->hdr, I->data, tn, v, nd, d);
    return tn;
}

/* appends node {name, op, inputs, params?, attrs?}; takes attrs (may be NULL) */
static int add_node(imp *I, const char *name, gf_op op, const int *in, int n_in, cJSON *params, cJSON *attrs) {
    if (I->non == I->capon) {
        int cap = I->capon ? 2 * I->capon : 256;
        onode *p = realloc(I->on, (size_t)cap * sizeof *p);
        if (!p) { cJSON_Delete(params); cJSON_Delete(attrs); return -1; }
        I->on = p; I->capon = cap;
    }
    char *nm = unique(I, name);
    cJSON *j = cJSON_CreateObject(), *ins = cJSON_CreateArray();
    if (!nm || !j || !ins) { cJSON_Delete(j); cJSON_Delete(ins); cJSON_Delete(params); cJSON_Delete(attrs); return -1; }
    smap_put(&I->names, nm, I->non);
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
static void add_real(cJSON *o, const char *key, double v) {
    char buf[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, v);
        if (strtod(buf, NULL) == v) break;
    }
    if (!isfinite(v)) snprintf(buf, sizeof buf, "0");   /* attributes are checked finite before */
    cJSON_AddRawToObject(o, key, buf);
}

static cJSON *ints_json(const int *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int k = 0; k < n; k++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[k]));
    return a;
}

/* ------------------------------------------------------------ wire-format depth check */

/* protobuf-c unpacks nested messages recursively: a crafted file of a few MB could nest them deep enough
 * to exhaust the stack, so the nesting is walked (iteration per level, recursion bounded) first. */
static int walk(const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t n, int depth) {
    if (depth > MAX_DEPTH) return 0;
    size_t at = 0;
    while (at < n) {
        uint64_t key = 0;
        int sh = 0;
        do { if (at >= n || sh > 63) return 1; key |= (uint64_t)(p[at] & 0x7f) << sh; sh += 7; } while (p[at++] & 0x80);
        unsigned wt = key & 7;
        uint64_t tag = key >> 3;
        if (wt == 0) { while (at < n && (p[at] & 0x80)) at++; at++; }
        else if (wt == 1) at += 8;
        else if (wt == 5) at += 4;
        else if (wt == 2) {
            uint64_t len = 0;
            sh = 0;
            do { if (at >= n || sh > 63) return 1; len |= (uint64_t)(p[at] & 0x7f) << sh; sh += 7; } while (p[at++] & 0x80);
            if (len > n - at) return 1;   /* malformed: protobuf-c refuses it */
            const ProtobufCFieldDescriptor *fd = tag <= 0x1fffffff ? protobuf_c_message_descriptor_get_field(desc, (unsigned)tag) : NULL;
            if (fd && fd->type == PROTOBUF_C_TYPE_MESSAGE &&
                !walk((const ProtobufCMessageDescriptor *)fd->descriptor, p + at, (size_t)len, depth + 1))
                return 0;
            at += (size_t)len;
        } else return 1;
    }
    return 1;
}

/* ------------------------------------------------------------ shape arithmetic */

static int is_shape_op(const char *op) {
    static const char *const ops[] = {"Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast", "Add", "Sub", "Mul",
                                      "Div", "Slice", "Identity"};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++)
        if (!strcmp(op, ops[k])) return 1;
    return 0;
}

/* an int64 constant of shape (nd, d) taking ownership of v */
static gf_status set_int(imp *I, const char *name, int nd, const int64_t *d, int64_t *v, size_t n) {
    int k = new_val(I, name, V_CONST);
    if (k < 0) { free(v); return oom(I); }
    val *x = &I->v[k];
    x->is_int = 1; x->i = v; x->n = n; x->nd = nd;
    memcpy(x->d, d, (size_t)nd * sizeof *d);
    return GF_OK;
}

static int64_t clampi(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Evaluates integer shape arithmetic (convert_onnx._eval_shape_op) on constant inputs. *done = 0 when the
 * node is not that (it is then translated as a network op). */
static gf_status fold(imp *I, const Onnx__NodeProto *n, int *done) {
    const char *op = str0(n->op_type), *nm = str0(n->name), *out = n->output[0];
    *done = 0;
    val *in[5] = {0};
    if (n->n_input > 5) return GF_OK;
    for (size_t k = 0; k < n->n_input; k++) in[k] = get(I, n->input[k]);
    if (!strcmp(op, "Shape")) {
        if (!in[0] || (in[0]->kind != V_ACT && in[0]->kind != V_CONST)) return GF_OK;
        int64_t s, e;
        gf_status st;
        if ((st = a_int(I, n, "start", 0, &s)) || (st = a_int(I, n, "end", in[0]->nd, &e))) return st;
        int r = in[0]->nd;
        s = clampi(s < 0 ? s + r : s, 0, r);
        e = clampi(e < 0 ? e + r : e, 0, r);
        size_t cnt = e > s ? (size_t)(e - s) : 0;
        int64_t *v = malloc(cnt ? cnt * sizeof *v : 1);
        if (!v) return oom(I);
        for (size_t k = 0; k < cnt; k++) v[k] = in[0]->d[s + (int64_t)k];
        int64_t dd = (int64_t)cnt;
        *done = 1;
        return set_int(I, out, 1, &dd, v, cnt);
    }
    int any = 0;
    for (size_t k = 0; k < n->n_input; k++) {
        if (!n->input[k][0]) continue;
        if (!in[k] || in[k]->kind != V_CONST || !in[k]->is_int) return GF_OK;   /* float maths is not folded */
        any = 1;
    }
    if (!any) return GF_OK;
    val *a = in[0], *b = in[1];
    if (!a) return GF_OK;
    if (!strcmp(op, "Cast") || !strcmp(op, "Identity")) {
        if (!strcmp(op, "Cast")) {
            int64_t to;
            gf_status st = a_int(I, n, "to", 0, &to);
            if (st) return st;
            static const int ints[] = {2, 3, 4, 5, 6, 7, 9, 12, 13};   /* uint8 ... int64, bool, uint32, uint64 */
            int ok = 0;
            for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++) ok |= to == ints[k];
            if (!ok) return GF_OK;
        }
        int64_t *v = malloc(a->n ? a->n * sizeof *v : 1);
        if (!v) return oom(I);
        memcpy(v, a->i, a->n * sizeof *v);
        *done = 1;
        return set_int(I, out, a->nd, a->d, v, a->n);
    }
    if (!strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul") || !strcmp(op, "Div")) {
        if (!b || n->n_input != 2) return GF_OK;
        const val *big = a->n >= b->n ? a : b;
        if (!(a->n == b->n || a->n == 1 || b->n == 1)) return GF_OK;
        int64_t *v = malloc(big->n ? big->n * sizeof *v : 1);
        if (!v) return oom(I);
        for (size_t k = 0; k < big->n; k++) {
            int64_t x = a->i[a->n == 1 ? 0 : k], y = b->i[b->n == 1 ? 0 : k];
            if (op[0] == 'D' && (y == 0 || (x == INT64_MIN && y == -1))) {
                free(v);
                return ifail(I, "node %s: integer Div by %lld in the shape arithmetic", nm, (long long)y);
            }
            /* shape values are small: keep the maths in range instead of wrapping */
            if (x > (int64_t)MAX_NUMEL || x < -(int64_t)MAX_NUMEL || y > (int64_t)MAX_NUMEL || y < -(int64_t)MAX_NUMEL) {
                free(v);
                return ifail(I, "node %s: shape arithmetic on %lld and %lld out of range", nm, (long long)x, (long long)y);
            }
            v[k] = op[0] == 'A' ? x + y : op[0] == 'S' ? x - y : op[0] == 'M' ? x * y : x / y;   /* C truncates like ONNX */
        }
        *done = 1;
        return set_int(I, out, big->nd, big->d, v, big->n);
    }
    if (!strcmp(op, "Gather")) {
        int64_t ax;
        gf_status st = a_int(I, n, "axis", 0, &ax);
        if (st) return st;
        if (!b || a->nd != 1 || (ax != 0 && ax != -1) || b->nd > 1) return GF_OK;
        int64_t *v = malloc(b->n ? b->n * sizeof *v : 1);
        if (!v) return oom(I);
        for (size_t k = 0; k < b->n; k++) {
            int64_t j = b->i[k] < 0 ? b->i[k] + (int64_t)a->n : b->i[k];
            if (j < 0 || j >= (int64_t)a->n) { free(v); return ifail(I, "node %s: Gather index %lld out of range", nm, (long long)b->i[k]); }
            v[k] = a->i[j];
        }
        *done = 1;
        return set_int(I, out, b->nd, b->d, v, b->n);
    }
    if (!strcmp(op, "Unsqueeze") || !strcmp(op, "Squeeze")) {
        int64_t axes[GF_ST_MAX_DIMS];
        int na = 0, present = 0;
        gf_status st = a_ints(I, n, "axes", -1, axes, &na, &present);
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
                if (x < 0 || x >= r || is1[x]) return ifail(I, "node %s: Unsqueeze axes out of range", nm);
                is1[x] = 1;
            }
            for (int k = 0, s = 0; k < r; k++) d[nd++] = is1[k] ? 1 : a->d[s++];
        } else {
            char drop[GF_ST_MAX_DIMS] = {0};
            for (int k = 0; k < na; k++) {
                int64_t x = axes[k] < 0 ? axes[k] + a->nd : axes[k];
                if (x < 0 || x >= a->nd || a->d[x] != 1) return ifail(I, "node %s: Squeeze axes out of range", nm);
                drop[x] = 1;
            }
            for (int k = 0; k < a->nd; k++)
                if (!(na ? drop[k] : a->d[k] == 1)) d[nd++] = a->d[k];
        }
        int64_t *v = malloc(a->n ? a->n * sizeof *v : 1);
        if (!v) return oom(I);
        memcpy(v, a->i, a->n * sizeof *v);
        *done = 1;
        return set_int(I, out, nd, d, v, a->n);
    }
    if (!strcmp(op, "Concat")) {   /* of vectors */
        size_t tot = 0;
        for (size_t k = 0; k < n->n_input; k++) {
            if (!in[k] || in[k]->nd != 1) return GF_OK;
            tot += in[k]->n;
        }
        if (tot > MAX_FOLD) return ifail(I, "node %s: shape arithmetic on %zu values", nm, tot);
        int64_t *v = malloc(tot ? tot * sizeof *v : 1), d = (int64_t)tot;
        if (!v) return oom(I);
        size_t at = 0;
        for (size_t k = 0; k < n->n_input; k++) { memcpy(v + at, in[k]->i, in[k]->n * sizeof *v); at += in[k]->n; }
        *done = 1;
        return set_int(I, out, 1, &d, v, tot);
    }
    if (!strcmp(op, "Slice")) {   /* of a vector */
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
            if ((st = a_ints_lim(I, n, "starts", 1, s, &c1, NULL, INT64_MAX)) || (st = a_ints_lim(I, n, "ends", 1, e, &c2, NULL, INT64_MAX)))
                return st;
            if (c1 != 1 || c2 != 1) return GF_OK;
            st0 = s[0]; en0 = e[0];
        }
        if (!step) return ifail(I, "node %s: Slice step 0", nm);
        int64_t L = (int64_t)a->n;   /* Python slice semantics */
        if (step > L) step = L + 1;  /* one element either way; keeps j += step in range */
        if (step < -L) step = -L - 1;
        if (st0 < 0) st0 += L;
        if (en0 < 0) en0 += L;
        st0 = step > 0 ? clampi(st0, 0, L) : clampi(st0, -1, L - 1);
        en0 = step > 0 ? clampi(en0, 0, L) : clampi(en0, -1, L - 1);
        size_t cnt = 0;
        int64_t *v = malloc(a->n ? a->n * sizeof *v : 1);
        if (!v) return oom(I);
        for (int64_t j = st0; step > 0 ? j < en0 : j > en0; j += step) v[cnt++] = a->i[j];
        int64_t d = (int64_t)cnt;
        *done = 1;
        return set_int(I, out, 1, &d, v, cnt);
    }
    return GF_OK;
}

/* ------------------------------------------------------------ GELU and LayerNorm subgraphs */

/* The value of a constant tensor before the main pass: an initializer, or a Constant node (through Identity
 * nodes): its element count and first value (*ndim: its rank). 0 when it is not a float/int constant. */
static int pconst(imp *I, const char *name, size_t *n, int *ndim, double *first) {
    for (int hops = 0; hops < 16 && name && name[0]; hops++) {
        const val *v = get(I, name);
        if (v && v->kind == V_CONST) {
            *n = v->n; *ndim = v->nd;
            *first = !v->n ? 0 : v->is_int ? (double)v->i[0] : v->f[0];
            return 1;
        }
        int k = smap_get(&I->prod, name);
        if (k < 0) return 0;
        const Onnx__NodeProto *p = I->g->node[k];
        if (!strcmp(str0(p->op_type), "Identity") && p->n_input == 1) { name = p->input[0]; continue; }
        const Onnx__AttributeProto *a = strcmp(str0(p->op_type), "Constant") ? NULL : attr(p, "value");
        if (!a || !a->t) return 0;
        val t = {0};
        char e[8];
        imp J = *I;   /* a failed parse here is not an error: the main pass reports it */
        J.err = e; J.errsz = sizeof e;
        int ok = load_tensor(&J, a->t, "Constant", &t) == GF_OK;
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
    int k = name ? smap_get(&I->prod, name) : -1;
    return k >= 0 ? I->g->node[k] : NULL;
}

static int n_users(imp *I, const char *name) {
    int s = smap_get(&I->uslot, name);
    return s < 0 ? 0 : I->uoff[s + 1] - I->uoff[s];
}

static const Onnx__NodeProto *user(imp *I, const char *name, int j) {
    int s = smap_get(&I->uslot, name);
    return I->g->node[I->ulist[I->uoff[s] + j]];
}

/* the only reader of name when it is one node of op type op */
static const Onnx__NodeProto *only_user(imp *I, const char *name, const char *op) {
    if (n_users(I, name) != 1) return NULL;
    const Onnx__NodeProto *u = user(I, name, 0);
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
        if (!q) return oom(I);
        I->pat = q; I->cappat = cap;
    }
    I->pat[I->npat] = p;
    smap_put(m, out, I->npat++);
    return m->oom ? oom(I) : GF_OK;
}

static void absorb(imp *I, const Onnx__NodeProto *n) { smap_put(&I->absorbed, n->output[0], 1); }

/* ReduceMean's axes (attribute or constant input 1): count in *na, 0 when computed */
static int reduce_axes(imp *I, const Onnx__NodeProto *n, int64_t *axes, int *na) {
    const Onnx__AttributeProto *a = attr(n, "axes");
    if (a) {
        if (a->n_ints > GF_ST_MAX_DIMS) return 0;
        for (size_t k = 0; k < a->n_ints; k++) axes[k] = a->ints[k];
        *na = (int)a->n_ints;
        return 1;
    }
    const val *v = n->n_input > 1 ? get(I, n->input[1]) : NULL;
    if (!v || v->kind != V_CONST || !v->is_int || v->n > GF_ST_MAX_DIMS) return 0;
    for (size_t k = 0; k < v->n; k++) axes[k] = v->i[k];
    *na = (int)v->n;
    return 1;
}

/* torch.onnx's erf GELU: Mul(Mul(x, Add(Erf(Div(x, sqrt 2)), 1)), 0.5), either operand order (or Mul by
 * 1/sqrt 2), and its LayerNorm over one axis: d = Sub(x, ReduceMean(x)); Div(d, Sqrt(Add(ReduceMean(Pow(d, 2)),
 * eps))), then optionally Mul by gamma and Add of beta ([C] constants). convert_onnx.gelu_patterns and
 * layernorm_patterns: the last node of each becomes one gelu / layernorm node, the others are skipped. */
static gf_status find_patterns(imp *I) {
    Onnx__GraphProto *g = I->g;
    gf_status st;
    size_t nslots = 0;
    for (size_t k = 0; k < g->n_node; k++) {
        const Onnx__NodeProto *n = g->node[k];
        for (size_t j = 0; j < n->n_output; j++)
            if (n->output[j][0]) smap_put(&I->prod, n->output[j], (int)k);
        for (size_t j = 0; j < n->n_input; j++)
            if (n->input[j][0] && smap_get(&I->uslot, n->input[j]) < 0) smap_put(&I->uslot, n->input[j], (int)nslots++);
    }
    if (I->prod.oom || I->uslot.oom || !(I->uoff = calloc(nslots + 2, sizeof *I->uoff))) return oom(I);
    size_t total = 0;
    for (size_t k = 0; k < g->n_node; k++)
        for (size_t j = 0; j < g->node[k]->n_input; j++)
            if (g->node[k]->input[j][0]) { I->uoff[smap_get(&I->uslot, g->node[k]->input[j]) + 2]++; total++; }
    for (size_t k = 2; k < nslots + 2; k++) I->uoff[k] += I->uoff[k - 1];
    if (!(I->ulist = malloc((total ? total : 1) * sizeof *I->ulist))) return oom(I);
    for (size_t k = 0; k < g->n_node; k++)
        for (size_t j = 0; j < g->node[k]->n_input; j++)
            if (g->node[k]->input[j][0]) I->ulist[I->uoff[smap_get(&I->uslot, g->node[k]->input[j]) + 1]++] = (int)k;
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
        const Onnx__AttributeProto *kd = rm ? attr(rm, "keepdims") : NULL;
        if (kd && kd->has_i) keep = kd->i;
        if (!rm || strcmp(str0(rm->op_type), "ReduceMean") || !rm->n_input || strcmp(rm->input[0], sub->input[0]) ||
            !reduce_axes(I, rm, ax1, &na1) || na1 != 1 || !keep)
            continue;
        const char *x = sub->input[0], *d = sub->output[0];
        const Onnx__NodeProto *pw = NULL, *dv = NULL;
        if (n_users(I, d) != 2) continue;
        for (int j = 0; j < 2; j++) {
            const Onnx__NodeProto *u = user(I, d, j);
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
            return ifail(I, "node %s: LayerNormalization with computed scale/bias or statistics outputs not supported", who);
        int64_t axis;
        double eps;
        if ((st = a_int(I, n, "axis", -1, &axis)) || (st = a_float(I, n, "epsilon", 1e-5, &eps))) return st;
        pattern p = {n->input[0], n->n_input > 1 && n->input[1][0] ? n->input[1] : NULL,
                     n->n_input > 2 && n->input[2][0] ? n->input[2] : NULL, (int)axis, eps};
        if ((st = add_pattern(I, &I->lnorm, n->output[0], p))) return st;
    }
    return I->absorbed.oom ? oom(I) : GF_OK;
}

/* ------------------------------------------------------------ the network ops */

static const char *const SUPPORTED[] = {"Conv", "Gemm", "MatMul", "BatchNormalization", "Relu", "LeakyRelu", "Clip",
    "MaxPool", "AveragePool", "GlobalAveragePool", "ReduceMean", "Add", "Flatten", "Reshape", "Softmax", "Identity",
    "Dropout", "Constant", "Sigmoid", "HardSigmoid", "HardSwish", "Mul", "Concat", "Gelu", "Pad", "Transpose", "Slice",
    "LayerNormalization"};

static int supported(const char *op) {
    for (size_t k = 0; k < sizeof SUPPORTED / sizeof SUPPORTED[0]; k++)
        if (!strcmp(op, SUPPORTED[k])) return 1;
    return 0;
}

/* a float constant input (a weight) of node n */
static gf_status weight(imp *I, const Onnx__NodeProto *n, size_t k, val **out) {
    val *x = k < n->n_input ? get(I, n->input[k]) : NULL;
    if (!x || x->kind != V_CONST || x->is_int)
        return ifail(I, "node %s (%s): input %s is computed, not a constant weight", n->name && n->name[0] ? n->name : n->output[0],
                     str0(n->op_type), k < n->n_input ? n->input[k] : "(absent)");
    *out = x;
    return GF_OK;
}

/* an activation output of shape (nd, d) held by our node `ours` */
static gf_status set_act(imp *I, const char *name, int ours, int nd, const int64_t *d) {
    for (int k = 0; k < nd; k++)
        if (d[k] < 1 || d[k] > MAX_DIM) return ifail(I, "tensor %s: dimension %d is %lld", name, k, (long long)d[k]);
    int k = new_val(I, name, V_ACT);
    if (k < 0) return oom(I);
    I->v[k].ours = ours;
    I->v[k].nd = nd;
    memcpy(I->v[k].d, d, (size_t)nd * sizeof *d);
    return GF_OK;
}

/* the same with the NHWC-view flag of the result */
static gf_status set_act_nhwc(imp *I, const char *name, int ours, int nd, const int64_t *d, int nhwc) {
    gf_status st = set_act(I, name, ours, nd, d);
    if (st == GF_OK) get(I, name)->nhwc = nhwc;
    return st;
}

static gf_status alias(imp *I, const char *name, const val *x) {
    int k = new_val(I, name, x->kind);
    if (k < 0) return oom(I);
    val *y = &I->v[k];
    *y = *x;
    y->f = NULL; y->i = NULL;   /* constants are aliased by index elsewhere; activations share `ours` */
    if (x->kind == V_CONST) {
        size_t bytes = x->n * (x->is_int ? sizeof(int64_t) : sizeof(float));
        void *p = malloc(bytes ? bytes : 1);
        if (!p) return oom(I);
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
    gf_status st = a_ints(I, n, key, want, v, NULL, &present);
    for (int k = 0; k < want; k++) out[k] = present ? (int)v[k] : def;
    return st;
}


/* every reader of tensor `name` is a Conv or an AveragePool (a zero Pad folds into those) */
static int read_only_by_conv_pool(imp *I, const char *name) {
    for (int j = 0, nu = n_users(I, name); j < nu; j++) {
        const Onnx__NodeProto *m = user(I, name, j);
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

static int by_op(const void *a, const void *b) { return strcmp(((const badop *)a)->op, ((const badop *)b)->op); }

/* every output of n: unusable (an unsupported op, or one reading its outputs) */
static gf_status poison(imp *I, const Onnx__NodeProto *n) {
    for (size_t k = 0; k < n->n_output; k++)
        if (n->output[k][0] && !get(I, n->output[k]) && new_val(I, n->output[k], V_POISON) < 0) return oom(I);
    return GF_OK;
}

static gf_status node(imp *I, const Onnx__NodeProto *n) {
    const char *op = str0(n->op_type);
    const char *who = n->name && n->name[0] ? n->name : n->n_output ? n->output[0] : "?";
    gf_status st = GF_OK;
    if (!n->n_output || !n->output[0][0]) return ifail(I, "node %s (%s): no output", who, op);
    for (size_t k = 0; k < n->n_output; k++)
        if (n->output[k][0] && get(I, n->output[k])) return ifail(I, "node %s: output %s is defined twice", who, n->output[k]);
    const char *out = n->output[0];
    if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx")) {
        note_bad(I, op, who);
        return poison(I, n);
    }
    if (smap_get(&I->absorbed, out) >= 0) return GF_OK;   /* inside a GELU / LayerNorm subgraph */
    int pk = smap_get(&I->gelu, out), lk = smap_get(&I->lnorm, out);
    if (pk >= 0 || lk >= 0) {
        const pattern *p = &I->pat[pk >= 0 ? pk : lk];
        val *x = get(I, p->x);
        if (x && x->kind == V_POISON) return poison(I, n);
        if (!x || x->kind != V_ACT) return ifail(I, "node %s: %s of %s, which is not computed from the image", who,
                                                 pk >= 0 ? "GELU" : "LayerNorm", p->x);
        char *nm = clean_name(I, n);
        if (!(nm = nm ? unique(I, nm) : NULL)) return oom(I);
        cJSON *at = cJSON_CreateObject();
        if (pk >= 0) {
            cJSON_AddStringToObject(at, "approximate", "none");
            int o = add_node(I, nm, GF_OP_GELU, &x->ours, 1, NULL, at);
            return o < 0 ? oom(I) : set_act_nhwc(I, out, o, x->nd, x->d, x->nhwc);
        }
        /* over channels: the last axis of an NHWC view, axis 1 of an NCHW map, or a flat vector */
        int64_t C = x->nhwc ? x->d[x->nd - 1] : x->nd > 1 ? x->d[1] : -1;
        int ax = p->axis;
        int over_c = (x->nhwc && (ax == -1 || ax == 3)) || (!x->nhwc && x->nd == 4 && (ax == 1 || ax == -3)) ||
                     (x->nd == 2 && (ax == 1 || ax == -1));
        const val *ga = p->gamma ? get(I, p->gamma) : NULL, *be = p->beta ? get(I, p->beta) : NULL;
        if ((p->gamma && (!ga || ga->kind != V_CONST || ga->is_int)) || (p->beta && (!be || be->kind != V_CONST || be->is_int))) {
            cJSON_Delete(at);
            return ifail(I, "node %s: LayerNorm scale/bias are not float constants", who);
        }
        if ((ga && ga->nd > 1) || (be && be->nd > 1) || (ga && (int64_t)ga->n != C) || (be && (int64_t)be->n != C)) over_c = 0;
        if (!over_c) {
            cJSON_Delete(at);
            return ifail(I, "node %s: LayerNorm over axis %d of a %d-D %s tensor (only over channels)", who, ax, x->nd,
                         x->nhwc ? "NHWC" : "NCHW");
        }
        add_real(at, "eps", p->eps);
        int y = add_node(I, nm, GF_OP_LAYERNORM, &x->ours, 1, NULL, at);
        if (y < 0) return oom(I);
        if (ga || be) {   /* the affine part: a depthwise 1x1 conv */
            float *w = malloc((size_t)C * sizeof *w);
            if (!w) return oom(I);
            for (int64_t c = 0; c < C; c++) w[c] = ga ? ga->f[c] : 1.0f;
            int64_t wd[4] = {C, 1, 1, 1};
            cJSON *params = cJSON_CreateObject();
            const char *tw = add_tensor(I, nm, "weight", w, 4, wd);
            free(w);
            const char *tb = tw && be ? add_tensor(I, nm, "bias", be->f, 1, &C) : NULL;
            if (!tw || (be && !tb)) { cJSON_Delete(params); return ifail(I, "node %s: tensor name clash", who); }
            cJSON_AddStringToObject(params, "weight", tw);
            if (tb) cJSON_AddStringToObject(params, "bias", tb);
            cJSON *cat = cJSON_CreateObject();
            cJSON_AddNumberToObject(cat, "groups", (double)C);
            char *an = own_fmt(I, "%s.affine", nm);
            if (!an) { cJSON_Delete(params); cJSON_Delete(cat); return oom(I); }
            if ((y = add_node(I, an, GF_OP_CONV, &y, 1, params, cat)) < 0) return oom(I);
        }
        return set_act_nhwc(I, out, y, x->nd, x->d, x->nhwc);
    }
    for (size_t k = 0; k < n->n_input; k++) {
        const val *x = n->input[k][0] ? get(I, n->input[k]) : NULL;
        if (n->input[k][0] && !x) return ifail(I, "node %s: input %s is not defined before it (ONNX nodes must be in "
                                                "topological order)", who, n->input[k]);
        if (x && x->kind == V_POISON) {   /* downstream of an unsupported op: still list its own op if unsupported */
            if (!supported(op) && (st = note_bad(I, op, who))) return st;
            return poison(I, n);
        }
    }
    for (size_t k = 0; k < n->n_input; k++) {
        const val *x = n->input[k][0] ? get(I, n->input[k]) : NULL;
        static const char *const ok_nhwc[] = {"Transpose", "MatMul", "Add", "Relu", "Sigmoid", "Identity", "Dropout"};
        int ok = 0;
        for (size_t j = 0; j < sizeof ok_nhwc / sizeof ok_nhwc[0]; j++) ok |= !strcmp(op, ok_nhwc[j]);
        if (x && x->kind == V_ACT && x->nhwc && !ok)
            return ifail(I, "node %s: %s on an NHWC view of a map (after a Transpose) not supported", who, op);
    }
    if (!strcmp(op, "Constant")) {
        const Onnx__AttributeProto *a = attr(n, "value");
        if (!a || !a->t) return ifail(I, "node %s: Constant without a tensor 'value' not supported", who);
        int k = new_val(I, out, V_CONST);
        if (k < 0) return oom(I);
        return load_tensor(I, a->t, "Constant", &I->v[k]);
    }
    val *x0 = n->n_input ? get(I, n->input[0]) : NULL;
    if (!strcmp(op, "Identity") && x0 && x0->kind == V_CONST) return alias(I, out, x0);   /* torch shares equal initializers */
    if (is_shape_op(op) && n->n_output == 1) {
        int done = 0;
        if ((st = fold(I, n, &done)) || done) return st;
    }
    if (!supported(op)) {
        if ((st = note_bad(I, op, who))) return st;
        return poison(I, n);
    }
    if (!n->n_input || !x0) return ifail(I, "node %s (%s): no input", who, op);
    char sbuf[64];
    if (!strcmp(op, "Pad")) {
        const char *mode = a_str(n, "mode", "constant", sbuf, sizeof sbuf);
        int64_t p[8] = {0};
        int np = 0, present = 0;
        if ((st = a_ints(I, n, "pads", -1, p, &np, &present))) return st;
        if (!present && n->n_input > 1) {
            val *pv = get(I, n->input[1]);
            if (!pv || pv->kind != V_CONST || !pv->is_int) return ifail(I, "node %s (Pad): input %s is computed, not a constant", who, n->input[1]);
            np = pv->n <= 8 ? (int)pv->n : 9;
            for (int k = 0; k < np && k < 8; k++) p[k] = pv->i[k];
        }
        double value = 0;
        if ((st = a_float(I, n, "value", 0, &value))) return st;
        if (n->n_input > 2 && n->input[2][0]) {
            val *vv = get(I, n->input[2]);
            if (!vv || vv->kind != V_CONST || vv->n < 1) return ifail(I, "node %s (Pad): input %s is computed, not a constant", who, n->input[2]);
            value = vv->is_int ? (double)vv->i[0] : vv->f[0];
        }
        int bad = strcmp(mode, "constant") || value != 0 || np != 8 || p[0] || p[1] || p[4] || p[5];
        for (int k = 0; k < 8; k++) bad |= p[k] < 0 || p[k] > MAX_DIM;
        if (bad) return ifail(I, "node %s: Pad %s (value %g, %d pads) not supported (only zeros around H,W)", who, mode, value, np);
        int tlbr[4] = {(int)p[2], (int)p[3], (int)p[6], (int)p[7]};
        if (!tlbr[0] && !tlbr[1] && !tlbr[2] && !tlbr[3]) return alias(I, out, x0);
        if (x0->kind != V_ACT || x0->nd != 4) return ifail(I, "node %s: Pad of a non-map tensor", who);
        if (!read_only_by_conv_pool(I, out))
            return ifail(I, "node %s: a non-zero Pad read by something other than Conv or AveragePool (it folds only into those)", who);
        int src = smap_get(&I->vals, n->input[0]);
        int k = new_val(I, out, V_PADDED);
        if (k < 0) return oom(I);
        I->v[k].src = src;
        memcpy(I->v[k].pads, tlbr, sizeof tlbr);
        return GF_OK;
    }
    char *cname = clean_name(I, n);
    char *name = cname ? unique(I, cname) : NULL;
    if (!name) return oom(I);
    /* a folded Pad: its source and extra padding */
    int extra[4] = {0, 0, 0, 0};
    val *x = x0;
    if (x0->kind == V_PADDED) {
        char apb[32];
        const char *ap = a_str(n, "auto_pad", "NOTSET", apb, sizeof apb);
        if (strcmp(ap, "NOTSET") && ap[0]) return ifail(I, "node %s: a Pad before an auto_pad %s", who, op);
        if (!strcmp(op, "AveragePool")) {
            int64_t pp[4] = {0}, cip;
            if ((st = a_ints(I, n, "pads", 4, pp, NULL, NULL)) || (st = a_int(I, n, "count_include_pad", 0, &cip))) return st;
            if ((pp[0] || pp[1] || pp[2] || pp[3]) && !cip) return ifail(I, "node %s: a Pad before an AveragePool that pads without counting", who);
        }
        memcpy(extra, x0->pads, sizeof extra);
        x = &I->v[x0->src];
    }
    int src = x->ours;
    const int64_t *xs = x->d;
    int xnd = x->nd;
    /* the channel-shuffle views (Reshape [N, G, C/G, H, W], Transpose [0, 2, 1, 3, 4], Reshape back) */
    if (x->kind == V_VIEW5 || x->kind == V_VIEWT) {
        val *s = &I->v[x->src];
        int64_t perm[5];
        int np = 0;
        if (!strcmp(op, "Transpose") && x->kind == V_VIEW5) {
            if ((st = a_ints(I, n, "perm", -1, perm, &np, NULL))) return st;
            if (np == 5 && perm[0] == 0 && perm[1] == 2 && perm[2] == 1 && perm[3] == 3 && perm[4] == 4) {
                int k = new_val(I, out, V_VIEWT);
                if (k < 0) return oom(I);
                I->v[k].src = x->src; I->v[k].groups = x->groups;
                return GF_OK;
            }
        } else if (!strcmp(op, "Reshape") && x->kind == V_VIEWT && n->n_input > 1) {
            val *t = get(I, n->input[1]);
            int ok = t && t->kind == V_CONST && t->is_int && t->n == 4, minus = 0;
            for (int k = 0; ok && k < 4; k++) {
                minus += t->i[k] == -1;
                ok = t->i[k] == s->d[k] || (k == 0 && t->i[k] == 0) || (t->i[k] == -1 && minus == 1);
            }
            if (ok) {
                cJSON *at = cJSON_CreateObject();
                cJSON_AddNumberToObject(at, "groups", x->groups);
                int in0 = s->ours;
                int o = add_node(I, name, GF_OP_SHUFFLE, &in0, 1, NULL, at);
                return o < 0 ? oom(I) : set_act(I, out, o, s->nd, s->d);
            }
        }
        return ifail(I, "node %s: %s of a channel-shuffle view not supported (only Reshape [N, G, C/G, H, W] -> "
                     "Transpose [0, 2, 1, 3, 4] -> Reshape back)", who, op);
    }
    if (x->kind == V_CONST && strcmp(op, "Add") && strcmp(op, "Mul"))
        return ifail(I, "node %s (%s): its input %s is a constant, not computed from the image", who, op, n->input[0]);
    if (!strcmp(op, "Conv")) {
        val *w;
        if ((st = weight(I, n, 1, &w))) return st;
        if (w->nd != 4 || xnd != 4) return ifail(I, "node %s: Conv needs a 4-D weight and NCHW input (got %d-D, %d-D)", who, w->nd, xnd);
        int k[2] = {(int)w->d[2], (int)w->d[3]}, s[2], d[2], pads[4];
        int64_t grp;
        if ((st = int_list(I, n, "kernel_shape", 2, k, 0)) || (st = int_list(I, n, "strides", 2, s, 1)) ||
            (st = int_list(I, n, "dilations", 2, d, 1)) || (st = a_int(I, n, "group", 1, &grp)))
            return st;
        if (!attr(n, "kernel_shape")) { k[0] = (int)w->d[2]; k[1] = (int)w->d[3]; }
        if (s[0] < 1 || s[1] < 1 || d[0] < 1 || d[1] < 1 || grp < 1 || k[0] < 1 || k[1] < 1)
            return ifail(I, "node %s: Conv strides, dilations, group and kernel must be positive", who);
        char apb[32];
        if (!auto_pads(a_str(n, "auto_pad", "NOTSET", apb, sizeof apb), xs + 2, k, s, d, pads)) {
            if ((st = int_list(I, n, "pads", 4, pads, 0))) return st;
        }
        for (int q = 0; q < 4; q++) pads[q] += extra[q];
        cJSON *params = cJSON_CreateObject();
        const char *tw = add_tensor(I, name, "weight", w->f, w->nd, w->d);
        if (!tw) { cJSON_Delete(params); return ifail(I, "node %s: tensor name clash", who); }
        cJSON_AddStringToObject(params, "weight", tw);
        if (n->n_input > 2 && n->input[2][0]) {
            val *b;
            if ((st = weight(I, n, 2, &b))) { cJSON_Delete(params); return st; }
            const char *tb = add_tensor(I, name, "bias", b->f, b->nd, b->d);
            if (!tb) { cJSON_Delete(params); return ifail(I, "node %s: tensor name clash", who); }
            cJSON_AddStringToObject(params, "bias", tb);
        }
        cJSON *at = cJSON_CreateObject();
        cJSON_AddItemToObject(at, "stride", ints_json(s, 2));
        cJSON_AddItemToObject(at, "pad", ints_json(pads, 4));
        cJSON_AddItemToObject(at, "dilation", ints_json(d, 2));
        cJSON_AddNumberToObject(at, "groups", (double)grp);
        int o = add_node(I, name, GF_OP_CONV, &src, 1, params, at);
        if (o < 0) return oom(I);
        int64_t od[4] = {xs[0], w->d[0], 0, 0};
        for (int ax = 0; ax < 2; ax++) {
            int64_t span = xs[2 + ax] + pads[ax] + pads[ax + 2] - (int64_t)d[ax] * (k[ax] - 1) - 1;
            if (span < 0) return ifail(I, "node %s: Conv kernel larger than its padded input", who);
            od[2 + ax] = span / s[ax] + 1;
        }
        return set_act(I, out, o, 4, od);
    }
    if (!strcmp(op, "Gemm") || !strcmp(op, "MatMul")) {
        val *w;
        int64_t ta = 0, tb = 0;
        double alpha = 1, beta = 1;
        if (!strcmp(op, "Gemm") && ((st = a_int(I, n, "transA", 0, &ta)) || (st = a_int(I, n, "transB", 0, &tb)) ||
                                    (st = a_float(I, n, "alpha", 1, &alpha)) || (st = a_float(I, n, "beta", 1, &beta))))
            return st;
        if (ta) return ifail(I, "node %s: Gemm transA=1 not supported", who);
        val *wv = n->n_input > 1 ? get(I, n->input[1]) : NULL;
        if (!strcmp(op, "MatMul") && (!wv || wv->kind != V_CONST))
            return ifail(I, "node %s: MatMul of two activations not supported", who);
        if ((st = weight(I, n, 1, &w))) return st;
        if (w->nd != 2) return ifail(I, "node %s: %s weight is %d-D (2-D expected)", who, op, w->nd);
        if (x->nhwc) {   /* a Linear on an NHWC view: a 1x1 conv, its weight [out, in, 1, 1] */
            if (op[0] == 'G') return ifail(I, "node %s: Gemm on an NHWC view not supported", who);
            int64_t Ci = w->d[0], Co = w->d[1], wd[4] = {Co, Ci, 1, 1};
            if (xnd != 4 || xs[3] != Ci)
                return ifail(I, "node %s: MatMul of an NHWC view of %lld channels by a [%lld, %lld] weight", who,
                             (long long)xs[xnd - 1], (long long)Ci, (long long)Co);
            float *wt = malloc(w->n ? w->n * sizeof *wt : 1);
            if (!wt) return oom(I);
            for (int64_t o = 0; o < Co; o++)
                for (int64_t i = 0; i < Ci; i++) wt[o * Ci + i] = w->f[i * Co + o];
            const char *tw = add_tensor(I, name, "weight", wt, 4, wd);
            free(wt);
            if (!tw) return ifail(I, "node %s: tensor name clash", who);
            cJSON *params = cJSON_CreateObject();
            cJSON_AddStringToObject(params, "weight", tw);
            int o = add_node(I, name, GF_OP_CONV, &src, 1, params, NULL);
            int64_t od[4] = {xs[0], xs[1], xs[2], Co};
            return o < 0 ? oom(I) : set_act_nhwc(I, out, o, 4, od, 1);
        }
        int64_t O = tb ? w->d[0] : w->d[1], In = tb ? w->d[1] : w->d[0];
        float *wt = malloc(w->n ? w->n * sizeof *wt : 1);
        if (!wt) return oom(I);
        for (int64_t o = 0; o < O; o++)   /* [out, in], times alpha (float32, as numpy) */
            for (int64_t i = 0; i < In; i++) wt[o * In + i] = (tb ? w->f[o * In + i] : w->f[i * O + o]) * (float)alpha;
        int64_t wd[2] = {O, In};
        cJSON *params = cJSON_CreateObject();
        const char *tw = add_tensor(I, name, "weight", wt, 2, wd);
        free(wt);
        if (!tw) { cJSON_Delete(params); return ifail(I, "node %s: tensor name clash", who); }
        cJSON_AddStringToObject(params, "weight", tw);
        if (!strcmp(op, "Gemm") && n->n_input > 2 && n->input[2][0]) {
            val *b;
            if ((st = weight(I, n, 2, &b))) { cJSON_Delete(params); return st; }
            if (b->n != 1 && (int64_t)b->n != O) { cJSON_Delete(params); return ifail(I, "node %s: Gemm bias of %zu values for %lld outputs", who, b->n, (long long)O); }
            float *bv = malloc((size_t)O * sizeof *bv);
            if (!bv) { cJSON_Delete(params); return oom(I); }
            for (int64_t o = 0; o < O; o++) bv[o] = b->f[b->n == 1 ? 0 : o] * (float)beta;
            const char *tbn = add_tensor(I, name, "bias", bv, 1, &O);
            free(bv);
            if (!tbn) { cJSON_Delete(params); return ifail(I, "node %s: tensor name clash", who); }
            cJSON_AddStringToObject(params, "bias", tbn);
        }
        int o = add_node(I, name, GF_OP_LINEAR, &src, 1, params, NULL);
        if (o < 0) return oom(I);
        int64_t od[2] = {xs[0], O};
        return set_act(I, out, o, 2, od);
    }
    if (!strcmp(op, "BatchNormalization")) {
        static const char *const keys[4] = {"weight", "bias", "running_mean", "running_var"};
        cJSON *params = cJSON_CreateObject();
        for (int q = 0; q < 4; q++) {
            val *p;
            if ((st = weight(I, n, 1 + (size_t)q, &p))) { cJSON_Delete(params); return st; }
            const char *t = add_tensor(I, name, keys[q], p->f, p->nd, p->d);
            if (!t) { cJSON_Delete(params); return ifail(I, "node %s: tensor name clash", who); }
            cJSON_AddStringToObject(params, keys[q], t);
        }
        double eps;
        if ((st = a_float(I, n, "epsilon", 1e-5, &eps))) { cJSON_Delete(params); return st; }
        cJSON *at = cJSON_CreateObject();
        add_real(at, "eps", eps);
        int o = add_node(I, name, GF_OP_BATCHNORM, &src, 1, params, at);
        return o < 0 ? oom(I) : set_act(I, out, o, xnd, xs);
    }
    /* one-input ops that keep the shape */
    gf_op simple = GF_OP_COUNT;
    cJSON *at = NULL;
    if (!strcmp(op, "Relu")) simple = GF_OP_RELU;
    else if (!strcmp(op, "Sigmoid")) simple = GF_OP_SIGMOID;
    else if (!strcmp(op, "HardSwish")) simple = GF_OP_HSWISH;
    else if (!strcmp(op, "LeakyRelu")) {
        double a;
        if ((st = a_float(I, n, "alpha", 0.01, &a))) return st;
        simple = GF_OP_LEAKY;
        at = cJSON_CreateObject();
        add_real(at, "alpha", a);
    } else if (!strcmp(op, "HardSigmoid")) {
        double a, b;
        if ((st = a_float(I, n, "alpha", 0.2, &a)) || (st = a_float(I, n, "beta", 0.5, &b))) return st;
        if (fabs(b - 0.5) > 1e-7) return ifail(I, "node %s: HardSigmoid beta %g not supported (only 0.5)", who, b);
        simple = GF_OP_HSIGMOID;
        at = cJSON_CreateObject();
        add_real(at, "alpha", a);
    } else if (!strcmp(op, "Gelu")) {
        const char *ap = a_str(n, "approximate", "none", sbuf, sizeof sbuf);
        simple = GF_OP_GELU;
        at = cJSON_CreateObject();
        cJSON_AddStringToObject(at, "approximate", ap);
    } else if (!strcmp(op, "Clip")) {
        double lo = NAN, hi = NAN;
        const Onnx__AttributeProto *amin = attr(n, "min"), *amax = attr(n, "max");
        for (int q = 0; q < 2; q++) {
            const Onnx__AttributeProto *a = q ? amax : amin;
            double *dst = q ? &hi : &lo;
            if (a) { if (!a->has_f) return ifail(I, "node %s: Clip %s is not a float", who, q ? "max" : "min"); *dst = a->f; }
            else if (n->n_input > 1 + (size_t)q && n->input[1 + q][0]) {
                val *c = get(I, n->input[1 + q]);
                if (!c || c->kind != V_CONST || c->n != 1) return ifail(I, "node %s (Clip): input %s is computed, not a constant weight", who, n->input[1 + q]);
                *dst = c->is_int ? (double)c->i[0] : c->f[0];
            }
        }
        if (lo == 0 && hi == 6) simple = GF_OP_RELU6;
        else if (lo == 0 && isnan(hi)) simple = GF_OP_RELU;
        else return ifail(I, "node %s: Clip(%g, %g) not supported (only relu/relu6)", who, lo, hi);
    } else if (!strcmp(op, "Softmax")) {
        int64_t ax;
        if ((st = a_int(I, n, "axis", -1, &ax))) return st;
        if (ax != 1 && ax != -1) return ifail(I, "node %s: Softmax axis %lld not supported", who, (long long)ax);
        simple = GF_OP_SOFTMAX;
    }
    if (simple != GF_OP_COUNT) {
        int o = add_node(I, name, simple, &src, 1, NULL, at);
        return o < 0 ? oom(I) : set_act_nhwc(I, out, o, xnd, xs, x->nhwc);
    }
    if (!strcmp(op, "Identity") || !strcmp(op, "Dropout")) return alias(I, out, x);
    if (!strcmp(op, "MaxPool") || !strcmp(op, "AveragePool")) {
        int k[2], s[2], d[2], pads[4];
        int64_t cip, ceil;
        if (!attr(n, "kernel_shape")) return ifail(I, "node %s: %s without kernel_shape", who, op);
        if ((st = int_list(I, n, "kernel_shape", 2, k, 1)) || (st = int_list(I, n, "strides", 2, s, 1)) ||
            (st = int_list(I, n, "dilations", 2, d, 1)) || (st = a_int(I, n, "count_include_pad", 0, &cip)) ||
            (st = a_int(I, n, "ceil_mode", 0, &ceil)))
            return st;
        if (d[0] != 1 || d[1] != 1) return ifail(I, "node %s: pooling dilation not supported", who);
        if (k[0] < 1 || k[1] < 1 || s[0] < 1 || s[1] < 1 || xnd != 4) return ifail(I, "node %s: %s needs a positive kernel and stride on an NCHW map", who, op);
        int include = cip != 0;
        char apb[32];
        if (!auto_pads(a_str(n, "auto_pad", "NOTSET", apb, sizeof apb), xs + 2, k, s, d, pads)) {
            if ((st = int_list(I, n, "pads", 4, pads, 0))) return st;
        } else if (op[0] == 'A') include = 0;
        if (extra[0] || extra[1] || extra[2] || extra[3]) {   /* a folded zero Pad: padding the mean counts */
            for (int q = 0; q < 4; q++) pads[q] += extra[q];
            include = 1;
        }
        for (int q = 0; q < 4; q++) if (pads[q] < 0) return ifail(I, "node %s: negative padding", who);
        if (ceil) {
            if (op[0] == 'A' && include) return ifail(I, "node %s: AveragePool ceil_mode=1 with count_include_pad=1 not supported", who);
            ceil_pad(xs + 2, k, s, pads);
        }
        at = cJSON_CreateObject();
        cJSON_AddItemToObject(at, "kernel", ints_json(k, 2));
        cJSON_AddItemToObject(at, "stride", ints_json(s, 2));
        cJSON_AddItemToObject(at, "pad", ints_json(pads, 4));
        if (op[0] == 'A') cJSON_AddBoolToObject(at, "count_include_pad", include);
        int o = add_node(I, name, op[0] == 'M' ? GF_OP_MAXPOOL : GF_OP_AVGPOOL, &src, 1, NULL, at);
        if (o < 0) return oom(I);
        int64_t od[4] = {xs[0], xs[1], 0, 0};
        for (int ax = 0; ax < 2; ax++) {
            int64_t span = xs[2 + ax] + pads[ax] + pads[ax + 2] - k[ax];
            if (span < 0) return ifail(I, "node %s: pooling window larger than its padded input", who);
            od[2 + ax] = span / s[ax] + 1;
        }
        return set_act(I, out, o, 4, od);
    }
    if (!strcmp(op, "GlobalAveragePool") || !strcmp(op, "ReduceMean")) {
        int64_t keep = 1;
        if (xnd != 4) return ifail(I, "node %s: %s of a %d-D tensor (an NCHW map expected)", who, op, xnd);
        if (op[0] == 'R') {
            int64_t axes[GF_ST_MAX_DIMS];
            int na = 0, present = 0;
            if ((st = a_ints(I, n, "axes", -1, axes, &na, &present)) || (st = a_int(I, n, "keepdims", 1, &keep))) return st;
            if (!present && n->n_input > 1) {
                val *av = get(I, n->input[1]);
                if (!av || av->kind != V_CONST || !av->is_int || av->n > GF_ST_MAX_DIMS) return ifail(I, "node %s (ReduceMean): axes are computed, not a constant", who);
                na = (int)av->n;
                memcpy(axes, av->i, av->n * sizeof *axes);
            }
            int m2 = 0, m3 = 0;
            for (int q = 0; q < na; q++) { int64_t a = ((axes[q] % 4) + 4) % 4; m2 += a == 2; m3 += a == 3; }
            if (na != 2 || m2 != 1 || m3 != 1) return ifail(I, "node %s: ReduceMean over %d axes not supported (only H,W)", who, na);
        }
        int o = add_node(I, name, GF_OP_GAP, &src, 1, NULL, NULL);
        int64_t od[4] = {xs[0], xs[1], 1, 1};
        return o < 0 ? oom(I) : set_act(I, out, o, keep ? 4 : 2, od);
    }
    if (!strcmp(op, "Add") || !strcmp(op, "Mul")) {
        val *a = n->n_input == 2 ? get(I, n->input[0]) : NULL, *b = n->n_input == 2 ? get(I, n->input[1]) : NULL;
        if (!a || !b) return ifail(I, "node %s: %s needs 2 inputs", who, op);   /* "" names an absent input */
        int ca = a->kind == V_CONST, cb = b->kind == V_CONST;
        if (a->kind == V_PADDED || b->kind == V_PADDED || a->kind == V_VIEW5 || b->kind == V_VIEW5 || a->kind == V_VIEWT || b->kind == V_VIEWT)
            return ifail(I, "node %s: %s of a padded or reshaped view not supported", who, op);
        if (ca && cb) return ifail(I, "node %s: %s of two float constants not supported", who, op);
        if (op[0] == 'A' && (ca || cb)) {   /* a MatMul's bias */
            val *c = ca ? a : b, *xi = ca ? b : a;
            onode *prev = xi->ours >= 0 ? &I->on[xi->ours] : NULL;
            cJSON *pp = prev ? cJSON_GetObjectItemCaseSensitive(prev->json, "params") : NULL;
            int conv_nhwc = prev && prev->op == GF_OP_CONV && xi->nhwc;   /* the bias of a Linear on NHWC */
            if (!prev || (prev->op != GF_OP_LINEAR && !conv_nhwc) || cJSON_GetObjectItemCaseSensitive(pp, "bias") || c->is_int)
                return ifail(I, "node %s: Add of a constant only supported as a MatMul bias", who);
            int64_t nb = (int64_t)c->n;
            const char *tb = add_tensor(I, prev->name, "bias", c->f, 1, &nb);
            if (!tb) return ifail(I, "node %s: tensor name clash", who);
            cJSON_AddStringToObject(pp, "bias", tb);
            return alias(I, out, xi);
        }
        if (ca || cb) {   /* Mul by a [C, 1, 1] constant: ConvNeXt's layer scale, a depthwise 1x1 conv */
            val *c = ca ? a : b, *xi = ca ? b : a;
            int ok = !c->is_int && xi->nd == 4 && (int64_t)c->n == xi->d[1] &&
                     ((c->nd == 3 && c->d[0] == xi->d[1] && c->d[1] == 1 && c->d[2] == 1) ||
                      (c->nd == 4 && c->d[0] == 1 && c->d[1] == xi->d[1] && c->d[2] == 1 && c->d[3] == 1));
            if (!ok) return ifail(I, "node %s: Mul by a constant not supported (only products of two tensors or a "
                                  "per-channel scale [C, 1, 1] of a map)", who);
            int64_t wd[4] = {xi->d[1], 1, 1, 1};
            const char *tw = add_tensor(I, name, "weight", c->f, 4, wd);
            if (!tw) return ifail(I, "node %s: tensor name clash", who);
            cJSON *params = cJSON_CreateObject();
            cJSON_AddStringToObject(params, "weight", tw);
            at = cJSON_CreateObject();
            cJSON_AddNumberToObject(at, "groups", (double)xi->d[1]);
            int o = add_node(I, name, GF_OP_CONV, &xi->ours, 1, params, at);
            return o < 0 ? oom(I) : set_act(I, out, o, 4, xi->d);
        }
        int same = a->nd == b->nd;
        for (int q = 0; same && q < a->nd; q++) same = a->d[q] == b->d[q];
        const val *big = a;
        if (op[0] == 'M' && !same) {
            int g1 = a->nd == 4 && b->nd == 4 && a->d[0] == b->d[0] && a->d[1] == b->d[1];
            if (g1 && b->d[2] == 1 && b->d[3] == 1) big = a;
            else if (g1 && a->d[2] == 1 && a->d[3] == 1) big = b;
            else return ifail(I, "node %s: Mul of a %d-D and a %d-D tensor of other shapes (equal shapes or a per-channel gate only)", who, a->nd, b->nd);
        }
        if (a->nhwc != b->nhwc) return ifail(I, "node %s: %s of an NHWC view and an NCHW map", who, op);
        int ins[2] = {a->ours, b->ours};
        int o = add_node(I, name, op[0] == 'A' ? GF_OP_ADD : GF_OP_MUL, ins, 2, NULL, NULL);
        return o < 0 ? oom(I) : set_act_nhwc(I, out, o, big->nd, big->d, a->nhwc);
    }
    if (!strcmp(op, "Flatten") || !strcmp(op, "Reshape")) {
        if (op[0] == 'F') {
            int64_t ax;
            if ((st = a_int(I, n, "axis", 1, &ax))) return st;
            if (ax != 1) return ifail(I, "node %s: Flatten axis %lld not supported", who, (long long)ax);
        } else {
            val *t = n->n_input > 1 ? get(I, n->input[1]) : NULL;
            if (!t || t->kind != V_CONST || !t->is_int)
                return ifail(I, "node %s (Reshape): input %s is computed, not a constant weight", who, n->n_input > 1 ? n->input[1] : "(absent)");
            if (t->n == 5 && xnd == 4) {   /* maybe the first step of a channel shuffle: resolved by its readers */
                int64_t d5[5];
                int ok = 1, neg = -1;
                uint64_t known = 1;
                for (int q = 0; q < 5 && ok; q++) {
                    d5[q] = t->i[q] == 0 && q < 4 ? xs[q] : t->i[q];
                    if (d5[q] == -1 && neg < 0) neg = q;
                    else if (d5[q] < 1 || d5[q] > MAX_DIM) ok = 0;
                    else known *= (uint64_t)d5[q];
                }
                if (ok && neg >= 0) d5[neg] = known ? (int64_t)(numel_of(4, xs) / known) : 0;
                ok = ok && d5[0] == xs[0] && d5[3] == xs[2] && d5[4] == xs[3] && d5[1] * d5[2] == xs[1];
                if (ok) {
                    int k = new_val(I, out, V_VIEW5);
                    if (k < 0) return oom(I);
                    I->v[k].src = smap_get(&I->vals, n->input[0]);
                    I->v[k].groups = (int)d5[1];
                    return GF_OK;
                }
            }
            if (t->n != 2 || !(t->i[0] == 0 || t->i[0] == 1 || t->i[0] == -1 || t->i[0] == I->batch))
                return ifail(I, "node %s: Reshape to %zu dims not supported (only [N,-1])", who, t->n);
        }
        int o = add_node(I, name, GF_OP_FLATTEN, &src, 1, NULL, NULL);
        int64_t od[2] = {xs[0], xnd ? (int64_t)(numel_of(xnd, xs) / (uint64_t)xs[0]) : 1};
        return o < 0 ? oom(I) : set_act(I, out, o, 2, od);
    }
    if (!strcmp(op, "Concat")) {
        if (n->n_input == 1) return alias(I, out, x);   /* torch.cat of a one-map list */
        int64_t ax;
        if ((st = a_int(I, n, "axis", 0, &ax))) return st;
        if (!attr(n, "axis") || (ax != 1 && ax != -3) || n->n_input > GF_MAX_INPUTS)
            return ifail(I, "node %s: Concat axis %lld of %zu inputs not supported (channels of 2..%d NCHW maps)", who,
                         (long long)ax, n->n_input, GF_MAX_INPUTS);
        int ins[GF_MAX_INPUTS];
        int64_t od[4] = {0, 0, 0, 0};
        for (size_t q = 0; q < n->n_input; q++) {
            val *c = get(I, n->input[q]);
            if (!c || c->kind != V_ACT || c->nd != 4)
                return ifail(I, "node %s: Concat axis 1 of inputs that are not all NCHW maps not supported", who);
            if (!q) memcpy(od, c->d, sizeof od);
            else if (c->d[0] != od[0] || c->d[2] != od[2] || c->d[3] != od[3]) return ifail(I, "node %s: Concat of maps of other sizes", who);
            else od[1] += c->d[1];
            ins[q] = c->ours;
        }
        int o = add_node(I, name, GF_OP_CONCAT, ins, (int)n->n_input, NULL, NULL);
        return o < 0 ? oom(I) : set_act(I, out, o, 4, od);
    }
    if (!strcmp(op, "Slice")) {   /* a range of channels */
        if (xnd != 4) return ifail(I, "node %s: Slice of a %d-D tensor not supported (only channels of a static NCHW map)", who, xnd);
        int64_t sv[4][GF_ST_MAX_DIMS];
        int cnt[4] = {0, 0, 0, 0};
        static const char *const keys[4] = {"starts", "ends", "axes", "steps"};
        for (int q = 0; q < 4; q++) {
            if (n->n_input > 1 + (size_t)q && n->input[1 + q][0]) {
                val *c = get(I, n->input[1 + q]);
                if (!c || c->kind != V_CONST || !c->is_int)
                    return ifail(I, "node %s: Slice %s is computed from the activations, not a constant", who, keys[q]);
                if (c->n > GF_ST_MAX_DIMS) return ifail(I, "node %s: Slice %s has %zu values", who, keys[q], c->n);
                cnt[q] = (int)c->n;
                memcpy(sv[q], c->i, c->n * sizeof(int64_t));
            } else if ((st = a_ints_lim(I, n, keys[q], -1, sv[q], &cnt[q], NULL, INT64_MAX))) return st;
        }
        if (!cnt[2]) { cnt[2] = cnt[0]; for (int q = 0; q < cnt[0]; q++) sv[2][q] = q; }
        if (!cnt[3]) { cnt[3] = cnt[0]; for (int q = 0; q < cnt[0]; q++) sv[3][q] = 1; }
        if (cnt[1] != cnt[0] || cnt[2] != cnt[0] || cnt[3] != cnt[0]) return ifail(I, "node %s: Slice starts/ends/axes/steps of different lengths", who);
        int64_t lo[4] = {0, 0, 0, 0}, hi[4] = {xs[0], xs[1], xs[2], xs[3]};
        for (int q = 0; q < cnt[0]; q++) {
            int64_t ax = ((sv[2][q] % 4) + 4) % 4, d = xs[ax], s0 = sv[0][q], e0 = sv[1][q];
            if (s0 < 0) s0 += d;
            if (e0 < 0) e0 += d;
            lo[ax] = clampi(s0, 0, d);
            hi[ax] = clampi(e0, 0, d);
            if (sv[3][q] != 1) return ifail(I, "node %s: Slice with step %lld not supported (only channels, step 1)", who, (long long)sv[3][q]);
        }
        if (lo[0] || lo[2] || lo[3] || hi[0] != xs[0] || hi[2] != xs[2] || hi[3] != xs[3] || hi[1] <= lo[1])
            return ifail(I, "node %s: Slice [%lld:%lld, %lld:%lld, %lld:%lld, %lld:%lld] of a [%lld, %lld, %lld, %lld] map not supported "
                         "(only a range of channels)", who, (long long)lo[0], (long long)hi[0], (long long)lo[1], (long long)hi[1],
                         (long long)lo[2], (long long)hi[2], (long long)lo[3], (long long)hi[3], (long long)xs[0], (long long)xs[1],
                         (long long)xs[2], (long long)xs[3]);
        if (lo[1] == 0 && hi[1] == xs[1]) return alias(I, out, x);
        at = cJSON_CreateObject();
        cJSON_AddNumberToObject(at, "start", (double)lo[1]);
        cJSON_AddNumberToObject(at, "end", (double)hi[1]);
        int o = add_node(I, name, GF_OP_SLICE, &src, 1, NULL, at);
        int64_t od[4] = {xs[0], hi[1] - lo[1], xs[2], xs[3]};
        return o < 0 ? oom(I) : set_act(I, out, o, 4, od);
    }
    if (!strcmp(op, "Transpose")) {   /* to NHWC and back around a channels-last block (ConvNeXt): a view */
        int64_t perm[GF_ST_MAX_DIMS];
        int np = 0;
        if ((st = a_ints(I, n, "perm", -1, perm, &np, NULL))) return st;
        int to = np == 4 && perm[0] == 0 && perm[1] == 2 && perm[2] == 3 && perm[3] == 1;
        int back = np == 4 && perm[0] == 0 && perm[1] == 3 && perm[2] == 1 && perm[3] == 2;
        if ((to && !x->nhwc && xnd == 4) || (back && x->nhwc)) {
            int64_t od[4];
            for (int q = 0; q < 4; q++) od[q] = xs[perm[q]];
            return set_act_nhwc(I, out, src, 4, od, to);
        }
        char pb[96];
        size_t pl = 0;
        pb[0] = 0;
        for (int q = 0; q < np && pl < sizeof pb - 24; q++) pl += (size_t)snprintf(pb + pl, sizeof pb - pl, "%s%lld", q ? ", " : "", (long long)perm[q]);
        return ifail(I, "node %s: Transpose [%s] not supported (only NCHW <-> NHWC around a channels-last block, or "
                     "ShuffleNet's channel shuffle)", who, pb);
    }
    return ifail(I, "node %s: op %s not handled", who, op);
}

/* ------------------------------------------------------------ the model */

static gf_status import_graph(imp *I) {
    Onnx__GraphProto *g = I->g;
    gf_status st;
    if (g->n_node > MAX_NODES) return ifail(I, "%zu nodes (limit %d)", g->n_node, MAX_NODES);
    size_t cap = g->n_initializer + 1;   /* every value: an initializer, the input or a node's output */
    for (size_t k = 0; k < g->n_node; k++) cap += g->node[k]->n_output;
    if (cap > INT32_MAX / 2 || !(I->v = calloc(cap, sizeof *I->v))) return oom(I);
    I->capv = (int)cap;
    for (size_t k = 0; k < g->n_initializer; k++) {
        Onnx__TensorProto *t = g->initializer[k];
        if (!t->name || !t->name[0]) return ifail(I, "initializer %zu has no name", k);
        if (get(I, t->name)) return ifail(I, "initializer %s is defined twice", t->name);
        int j = new_val(I, t->name, V_CONST);
        if (j < 0) return oom(I);
        if ((st = load_tensor(I, t, "initializer", &I->v[j]))) return st;
        /* the values are in v now: give the message's copy back (protobuf_c_message_free_unpacked skips NULL) */
        if (t->has_raw_data) { free(t->raw_data.data); t->raw_data.data = NULL; t->raw_data.len = 0; t->has_raw_data = 0; }
        free(t->float_data); t->float_data = NULL; t->n_float_data = 0;
    }
    if (g->n_sparse_initializer) return ifail(I, "sparse initializers are not supported");
    /* the one image input (graph inputs that are not initializers) */
    const Onnx__ValueInfoProto *in = NULL;
    int n_in = 0;
    for (size_t k = 0; k < g->n_input; k++)
        if (!get(I, str0(g->input[k]->name))) { in = g->input[k]; n_in++; }
    if (n_in != 1) return ifail(I, "need exactly one image input, found %d", n_in);
    const char *iname = str0(in->name);
    const Onnx__TensorShapeProto *sh = in->type && in->type->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE &&
                                       in->type->tensor_type ? in->type->tensor_type->shape : NULL;
    int64_t d[4];
    if (!sh || sh->n_dim != 4) return ifail(I, "input %s: need a static NCHW shape (4 dimensions)", iname);
    for (int k = 0; k < 4; k++) {
        const Onnx__TensorShapeProto__Dimension *dm = sh->dim[k];
        int has = dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        d[k] = has ? dm->dim_value : k == 0 ? 1 : -1;   /* a symbolic batch is 1: our graph is per image */
        if (d[k] < 1 || d[k] > 65536) return ifail(I, "input %s: need a static NCHW shape, dimension %d is not", iname, k);
    }
    if ((st = find_patterns(I))) return st;
    I->batch = d[0];
    if ((st = set_act(I, iname, -1, 4, d))) return st;
    smap_put(&I->names, "input", INPUT_NAME);
    for (size_t k = 0; k < g->n_node; k++)
        if ((st = node(I, g->node[k]))) return st;
    if (I->nbad) {
        char list[700];
        size_t at = 0;
        qsort(I->bad, (size_t)I->nbad, sizeof I->bad[0], by_op);
        list[0] = 0;
        for (int k = 0; k < I->nbad && at < sizeof list - 1; k++)
            at += (size_t)snprintf(list + at, sizeof list - at, "%s%.60s (%d nodes, e.g. %.80s)", k ? "; " : "",
                                   I->bad[k].op, I->bad[k].count, I->bad[k].who);
        return ifail(I, "unsupported ops (gradfeat has no equivalent): %s", list);
    }
    if (!I->non) return ifail(I, "the graph computes nothing from its input");
    cJSON *outs = cJSON_CreateArray();
    for (size_t k = 0; k < g->n_output; k++) {
        const val *v = get(I, str0(g->output[k]->name));
        if (!v || v->kind != V_ACT || v->ours < 0) { cJSON_Delete(outs); return ifail(I, "graph output %s is not computed from the input", str0(g->output[k]->name)); }
        cJSON_AddItemToArray(outs, cJSON_CreateString(I->on[v->ours].name));
    }
    cJSON *gj = cJSON_CreateObject(), *ij = cJSON_CreateObject();
    cJSON_AddStringToObject(ij, "name", "input");
    int ishape[3] = {(int)d[1], (int)d[2], (int)d[3]};
    cJSON_AddItemToObject(ij, "shape", ints_json(ishape, 3));
    cJSON_AddItemToObject(gj, "input", ij);
    cJSON_AddItemToObject(gj, "outputs", outs);
    cJSON_AddItemToObject(gj, "nodes", I->nodes);
    I->nodes = NULL;
    /* the feature: the last linear's input, before a flatten of a global pool */
    for (int k = I->non - 1; k >= 0; k--) {
        if (I->on[k].op != GF_OP_LINEAR) continue;
        const cJSON *ins = cJSON_GetObjectItemCaseSensitive(I->on[k].json, "inputs");
        const char *f = cJSON_GetArrayItem(ins, 0)->valuestring;
        for (;;) {
            int j = smap_get(&I->names, f);
            if (j < 0 || j >= I->non || I->on[j].op != GF_OP_FLATTEN) break;
            const char *p = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(I->on[j].json, "inputs"), 0)->valuestring;
            int q = smap_get(&I->names, p);
            if (q < 0 || q >= I->non || I->on[q].op != GF_OP_GAP) break;
            f = p;
        }
        cJSON_AddStringToObject(gj, "feature", f);
        break;
    }
    char *gs = cJSON_PrintUnformatted(gj);
    cJSON_Delete(gj);
    /* the converter's default preprocessing: ImageNet mean/std, shorter side to size*256/224, centre crop */
    cJSON *pre = cJSON_CreateObject();
    int hw[2] = {(int)d[2], (int)d[3]};
    cJSON_AddItemToObject(pre, "input_size", ints_json(hw, 2));
    cJSON_AddNumberToObject(pre, "channels", (double)d[1]);
    cJSON_AddStringToObject(pre, "color_order", d[1] == 3 ? "RGB" : "GRAY");
    cJSON_AddStringToObject(pre, "resize", "shorter_center_crop");
    cJSON_AddNumberToObject(pre, "resize_shorter", (double)lround((double)d[2] * 256 / 224));
    cJSON_AddStringToObject(pre, "interpolation", "bilinear");
    static const double mean3[3] = {0.485, 0.456, 0.406}, std3[3] = {0.229, 0.224, 0.225}, half[1] = {0.5};
    cJSON_AddItemToObject(pre, "mean", cJSON_CreateDoubleArray(d[1] == 3 ? mean3 : half, d[1] == 3 ? 3 : 1));
    cJSON_AddItemToObject(pre, "std", cJSON_CreateDoubleArray(d[1] == 3 ? std3 : half, d[1] == 3 ? 3 : 1));
    char *ps = cJSON_PrintUnformatted(pre);
    cJSON_Delete(pre);
    cJSON *meta = cJSON_CreateObject();
    cJSON_AddStringToObject(meta, "gradfeat.format_version", "1");
    if (gs) cJSON_AddStringToObject(meta, "gradfeat.graph", gs);
    if (ps) cJSON_AddStringToObject(meta, "gradfeat.preprocess", ps);
    cJSON_AddStringToObject(meta, "gradfeat.classes", "[]");
    cJSON_AddItemToObject(I->hdr, "__metadata__", meta);
    free(gs);
    free(ps);
    return gs && ps ? GF_OK : oom(I);
}

gf_status gf_onnx_import(const char *path, cJSON **hdr, gf_sink *data, char *err, size_t err_size) {
    *hdr = NULL;
    char why[256];
    FILE *fp = gf_fopen_regular(path, why, sizeof why);
    if (!fp) return gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: %s", path, why);
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    gf_status st = GF_OK;
    for (;;) {   /* read to the end (bounded): the size on disk is not trusted */
        if (n == cap) {
            if (cap >= MAX_FILE) { st = gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: larger than 2 GiB, the limit of one ONNX (protobuf) file", path); break; }
            cap = cap ? 2 * cap : 1 << 16;
            uint8_t *p = realloc(buf, cap);
            if (!p) { st = gf_fail_msg(err, err_size, GF_ERR_MEMORY, "%s: out of memory reading the file", path); break; }
            buf = p;
        }
        size_t r = fread(buf + n, 1, cap - n, fp);
        n += r;
        if (r == 0) {
            if (ferror(fp)) st = gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: read error", path);
            break;
        }
    }
    fclose(fp);
    Onnx__ModelProto *mp = NULL;
    if (st == GF_OK && n == 0) st = gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: empty file, not an ONNX model", path);
    if (st == GF_OK && !walk(&onnx__model_proto__descriptor, buf, n, 0))
        st = gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: not an ONNX model (messages nested deeper than %d levels)", path, MAX_DEPTH);
    if (st == GF_OK && !(mp = onnx__model_proto__unpack(NULL, n, buf)))
        st = gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: not an ONNX model (protobuf parse error: truncated or not a "
                         "ModelProto)", path);
    free(buf);
    if (st == GF_OK && !mp->graph)
        st = gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: not an ONNX model (no graph)", path);
    if (st != GF_OK) {
        if (mp) onnx__model_proto__free_unpacked(mp, NULL);
        return st;
    }
    imp I = {.err = err, .errsz = err_size, .path = path, .g = mp->graph, .data = data};
    I.hdr = cJSON_CreateObject();
    I.nodes = cJSON_CreateArray();
    if (!I.hdr || !I.nodes) st = oom(&I);
    else st = import_graph(&I);
    if (st == GF_OK && (data->oom || I.vals.oom || I.names.oom || I.tnames.oom)) st = oom(&I);
    for (int k = 0; k < I.nv; k++) { free(I.v[k].f); free(I.v[k].i); }
    free(I.v);
    for (int k = 0; k < I.nstrs; k++) free(I.strs[k]);
    free(I.strs);
    free(I.on);
    smap_free(&I.vals); smap_free(&I.names); smap_free(&I.tnames); smap_free(&I.next_k);
    smap_free(&I.prod); smap_free(&I.uslot); smap_free(&I.absorbed); smap_free(&I.gelu); smap_free(&I.lnorm);
    free(I.uoff); free(I.ulist); free(I.pat);
    cJSON_Delete(I.nodes);
    onnx__model_proto__free_unpacked(mp, NULL);
    if (st != GF_OK) { cJSON_Delete(I.hdr); return st; }
    *hdr = I.hdr;
    return GF_OK;
}
#endif
