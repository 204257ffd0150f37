/* Internal declarations shared by the units of the ONNX import (onnx_import.c: entry points and the driver;
 * onnx_values.c: values, attributes, tensors, names, our graph; onnx_fold.c: shape arithmetic;
 * onnx_patterns.c: GELU / LayerNorm subgraphs; onnx_ops.c: the network ops). Without protobuf-c
 * (GF_HAVE_PROTOBUF_C undefined) only onnx_import.c's fallback is compiled and the others are empty. */
#ifndef GF_ONNX_IMP_H
#define GF_ONNX_IMP_H

#include <stdint.h>
#include "model.h"

#ifdef GF_HAVE_PROTOBUF_C
#include <onnx.pb-c.h>

enum { MAX_DIM = 1 << 24 };
#define MAX_NUMEL ((uint64_t)1 << 31)

/* ------------------------------------------------------------ string -> int map (onnx_values.c) */

typedef struct { const char **k; int *v; size_t cap, n; int oom; } smap;

int gfo_smap_get(const smap *m, const char *k);   /* -1 when absent */
/* k is not copied: it must outlive the map (protobuf strings or our own) */
void gfo_smap_put(smap *m, const char *k, int v);
void gfo_smap_free(smap *m);

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

static inline const char *str0(const char *s) { return s ? s : ""; }
static inline int64_t clampi(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

/* GF_ERR_INPUT with "path: message" in I->err */
gf_status gfo_ifail(imp *I, const char *fmt, ...) GF_PRINTF(2, 3);
gf_status gfo_oom(imp *I);
/* a string we own until the import ends (NULL when out of memory) */
char *gfo_own_fmt(imp *I, const char *fmt, ...) GF_PRINTF(2, 3);
/* a new value named name (-1 when out of memory); the values are sized up front, pointers into v stay valid */
int gfo_new_val(imp *I, const char *name, int kind);
val *gfo_get(imp *I, const char *name);   /* NULL when not defined (or name is "") */

/* ------------------------------------------------------------ attributes */

const Onnx__AttributeProto *gfo_attr(const Onnx__NodeProto *n, const char *key);
/* an int attribute (bounded: every size and index gradfeat takes from a file fits MAX_DIM) */
gf_status gfo_a_int(imp *I, const Onnx__NodeProto *n, const char *key, int64_t def, int64_t *out);
gf_status gfo_a_float(imp *I, const Onnx__NodeProto *n, const char *key, double def, double *out);
/* an ints attribute of exactly `want` entries (want < 0: 1..8 entries, count in *cnt), each within +-lim */
gf_status gfo_a_ints_lim(imp *I, const Onnx__NodeProto *n, const char *key, int want, int64_t *out, int *cnt, int *present,
                         int64_t lim);
gf_status gfo_a_ints(imp *I, const Onnx__NodeProto *n, const char *key, int want, int64_t *out, int *cnt, int *present);
const char *gfo_a_str(const Onnx__NodeProto *n, const char *key, const char *def, char *buf, size_t bufsz);

/* ------------------------------------------------------------ tensors */

/* A TensorProto into value x: float32 (FLOAT, FLOAT16, DOUBLE) or int64 (INT64, INT32, ...) */
gf_status gfo_load_tensor(imp *I, const Onnx__TensorProto *t, const char *what, val *x);

/* ------------------------------------------------------------ our graph */

char *gfo_clean_name(imp *I, const Onnx__NodeProto *n);
char *gfo_unique(imp *I, const char *name);
/* a float32 tensor of the model file named `name.key` (or a unique variant); NULL on a clash */
const char *gfo_add_tensor(imp *I, const char *name, const char *key, const float *v, int nd, const int64_t *d);
/* appends node {name, op, inputs, params?, attrs?}; takes attrs (may be NULL); -1 when out of memory */
int gfo_add_node(imp *I, const char *name, gf_op op, const int *in, int n_in, cJSON *params, cJSON *attrs);
void gfo_add_real(cJSON *o, const char *key, double v);
cJSON *gfo_ints_json(const int *v, int n);

/* ------------------------------------------------------------ the passes */

/* onnx_fold.c: integer shape arithmetic on constant inputs; *done = 0 when the node is not that */
gf_status gfo_fold(imp *I, const Onnx__NodeProto *n, int *done);
/* onnx_patterns.c: the GELU / LayerNorm subgraphs (I->gelu, I->lnorm, I->absorbed) and the readers of each
 * tensor, before the main pass */
gf_status gfo_find_patterns(imp *I);
int gfo_n_users(imp *I, const char *name);
const Onnx__NodeProto *gfo_user(imp *I, const char *name, int j);
/* onnx_ops.c: one node of the main pass */
gf_status gfo_node(imp *I, const Onnx__NodeProto *n);
/* an activation output of shape (nd, d) held by our node `ours` */
gf_status gfo_set_act(imp *I, const char *name, int ours, int nd, const int64_t *d);

#endif /* GF_HAVE_PROTOBUF_C */
#endif
