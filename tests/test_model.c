/* Model files: a small graph touching every op (asymmetric pads, depthwise,
 * dilation, folded and standalone BatchNorm, pools with padding, add, GAP,
 * flatten, linear, softmax) written as a safetensors file here, loaded, run by
 * the executor on the device and compared with a plain-C double reference of
 * the UNFOLDED graph; the file stored as F16 loads too. Then malformed files:
 * each must fail with GF_ERR_INPUT and a message naming the problem. Blocks
 * found by the cut-point rule are checked by name. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "gradfeat_model.h"
#include "model.h"   /* gf_exec_run_to, gf_exec_create_to */
#include "testutil.h"

/* ------------------------------------------------------------ file writer */
typedef struct { const char *name; int ndim; int64_t shape[4]; float *data; size_t n; } tens;
enum { MAXT = 48 };
static tens T[MAXT];
static int nT;
static test_rng R;

static float *add_t(const char *name, int ndim, int64_t a, int64_t b, int64_t c, int64_t d, double lo, double hi) {
    if (nT >= MAXT) { fprintf(stderr, "test_model: more than %d tensors (MAXT)\n", MAXT); exit(1); }
    tens *t = &T[nT++];
    t->name = name; t->ndim = ndim;
    int64_t s[4] = {a, b, c, d};
    t->n = 1;
    for (int i = 0; i < ndim; i++) { t->shape[i] = s[i]; t->n *= (size_t)s[i]; }
    t->data = malloc(t->n * sizeof(float));
    test_fill(&R, t->data, t->n, lo, hi);
    return t->data;
}
static const tens *get_t(const char *name) {
    for (int i = 0; i < nT; i++) if (!strcmp(T[i].name, name)) return &T[i];
    fprintf(stderr, "no tensor %s\n", name); exit(1);
}

typedef struct {
    int f16;                    /* store everything as F16 */
    const char *bad_dtype_of;   /* this tensor gets dtype I64 */
    const char *bad_offset_of;  /* this tensor's end offset goes past the file */
    const char *skip_tensor;    /* leave this tensor out */
    int swap_fc;                /* declare fc.weight as [6, 5] instead of [5, 6] (same bytes) */
    long truncate;              /* cut this many bytes off the end */
    uint64_t header_len;        /* != 0: write this header length */
    const char *graph;          /* override gradfeat.graph */
    const char *version;        /* override format version */
    int no_meta;
    int no_preprocess;          /* leave gradfeat.preprocess and gradfeat.classes out (a graph of no classifier) */
    int first_tensor;           /* write T[first_tensor..nT-1] only */
} fopts;

static uint16_t to_half(float f) {  /* round-to-nearest-even, normal range only (test data) */
    uint32_t x; memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000; int e = (int)((x >> 23) & 0xff) - 127 + 15; uint32_t man = x & 0x7fffff;
    if (e <= 0) return (uint16_t)sign;
    uint32_t h = sign | ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (uint16_t)h;
}
static float from_half(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, man = h & 0x3ff;
    uint32_t x = e ? sign | ((e + 112) << 23) | (man << 13) : sign;
    float f; memcpy(&f, &x, 4); return f;
}

static const char *GRAPH;

static void write_model(const char *path, const fopts *o) {
    cJSON *h = cJSON_CreateObject();
    size_t off = 0;
    unsigned char *data = NULL;
    for (int i = o->first_tensor; i < nT; i++) {
        if (o->skip_tensor && !strcmp(o->skip_tensor, T[i].name)) continue;
        size_t es = o->f16 ? 2 : 4, bytes = T[i].n * es;
        cJSON *e = cJSON_AddObjectToObject(h, T[i].name);
        cJSON_AddStringToObject(e, "dtype", o->bad_dtype_of && !strcmp(o->bad_dtype_of, T[i].name) ? "I64" : o->f16 ? "F16" : "F32");
        cJSON *sh = cJSON_AddArrayToObject(e, "shape");
        for (int d = 0; d < T[i].ndim; d++) {
            int64_t v = T[i].shape[d];
            if (o->swap_fc && !strcmp(T[i].name, "fc.weight")) v = T[i].shape[1 - d];
            cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)v));
        }
        size_t end = off + bytes;
        if (o->bad_offset_of && !strcmp(o->bad_offset_of, T[i].name)) end = off + 1000000;
        cJSON *of = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)end));
        data = realloc(data, off + bytes);
        for (size_t k = 0; k < T[i].n; k++) {
            if (o->f16) { uint16_t v = to_half(T[i].data[k]); memcpy(data + off + 2 * k, &v, 2); }
            else memcpy(data + off + 4 * k, &T[i].data[k], 4);
        }
        off += bytes;
    }
    if (!o->no_meta) {
        cJSON *m = cJSON_AddObjectToObject(h, "__metadata__");
        cJSON_AddStringToObject(m, "gradfeat.format_version", o->version ? o->version : "1");
        cJSON_AddStringToObject(m, "gradfeat.graph", o->graph ? o->graph : GRAPH);
        if (!o->no_preprocess)
            cJSON_AddStringToObject(m, "gradfeat.preprocess",
                                    "{\"input_size\":[9,9],\"channels\":3,\"color_order\":\"RGB\",\"resize\":\"stretch\","
                                    "\"interpolation\":\"bilinear\",\"mean\":[0.5,0.5,0.5],\"std\":[0.25,0.25,0.25]}");
        if (!o->no_preprocess) cJSON_AddStringToObject(m, "gradfeat.classes", "[\"a\",\"b\",\"c\",\"d\",\"e\"]");
    }
    char *js = cJSON_PrintUnformatted(h);
    uint64_t hl = strlen(js);
    FILE *f = fopen(path, "wb");
    uint64_t wl = o->header_len ? o->header_len : hl;
    unsigned char lb[8];
    for (int i = 0; i < 8; i++) lb[i] = (unsigned char)(wl >> (8 * i));
    fwrite(lb, 1, 8, f);
    fwrite(js, 1, hl, f);
    size_t keep = off;
    if (o->truncate) keep = off > (size_t)o->truncate ? off - (size_t)o->truncate : 0;
    fwrite(data, 1, keep, f);
    fclose(f);
    free(js); free(data); cJSON_Delete(h);
}

/* ---------------------------------------------------------- C reference */
typedef struct { int c, h, w; double *v; } act;  /* one image */

static act conv_ref(act x, const char *wn, const char *bn, int sh, int sw, int pt, int pl, int pb, int pr, int dh, int dw, int g) {
    const tens *W = get_t(wn);
    int O = (int)W->shape[0], cg = (int)W->shape[1], kh = (int)W->shape[2], kw = (int)W->shape[3];
    act y = {O, (x.h + pt + pb - dh * (kh - 1) - 1) / sh + 1, (x.w + pl + pr - dw * (kw - 1) - 1) / sw + 1, NULL};
    y.v = calloc((size_t)O * y.h * y.w, sizeof(double));
    int og = O / g;
    for (int o = 0; o < O; o++)
        for (int i = 0; i < y.h; i++)
            for (int j = 0; j < y.w; j++) {
                double s = bn ? get_t(bn)->data[o] : 0;
                for (int ci = 0; ci < cg; ci++)
                    for (int a = 0; a < kh; a++)
                        for (int b = 0; b < kw; b++) {
                            int hi = i * sh - pt + a * dh, wi = j * sw - pl + b * dw;
                            if (hi < 0 || hi >= x.h || wi < 0 || wi >= x.w) continue;
                            s += W->data[((size_t)o * cg + ci) * kh * kw + a * kw + b] *
                                 x.v[((size_t)(o / og * cg + ci) * x.h + hi) * x.w + wi];
                        }
                y.v[((size_t)o * y.h + i) * y.w + j] = s;
            }
    return y;
}
static void bn_ref(act x, const char *p, double eps) {
    char k[64];
    snprintf(k, sizeof k, "%s.weight", p); const float *g = get_t(k)->data;
    snprintf(k, sizeof k, "%s.bias", p); const float *b = get_t(k)->data;
    snprintf(k, sizeof k, "%s.running_mean", p); const float *mu = get_t(k)->data;
    snprintf(k, sizeof k, "%s.running_var", p); const float *var = get_t(k)->data;
    for (int c = 0; c < x.c; c++)
        for (int i = 0; i < x.h * x.w; i++) {
            double *v = &x.v[(size_t)c * x.h * x.w + i];
            *v = (*v - mu[c]) / sqrt((double)var[c] + eps) * g[c] + b[c];
        }
}
static act pool_ref(act x, int max, int kh, int kw, int sh, int sw, int pt, int pl, int pb, int pr, int incl) {
    act y = {x.c, (x.h + pt + pb - kh) / sh + 1, (x.w + pl + pr - kw) / sw + 1, NULL};
    y.v = calloc((size_t)y.c * y.h * y.w, sizeof(double));
    for (int c = 0; c < x.c; c++)
        for (int i = 0; i < y.h; i++)
            for (int j = 0; j < y.w; j++) {
                double s = max ? -INFINITY : 0; int cnt = 0;
                for (int a = 0; a < kh; a++)
                    for (int b = 0; b < kw; b++) {
                        int hi = i * sh - pt + a, wi = j * sw - pl + b;
                        if (hi < 0 || hi >= x.h || wi < 0 || wi >= x.w) continue;
                        double v = x.v[((size_t)c * x.h + hi) * x.w + wi];
                        if (max) s = v > s ? v : s; else s += v;
                        cnt++;
                    }
                if (!max) s /= incl ? kh * kw : cnt;
                y.v[((size_t)c * y.h + i) * y.w + j] = s;
            }
    return y;
}
static act copy_act(act x) {
    act y = x;
    y.v = malloc((size_t)x.c * x.h * x.w * sizeof(double));
    memcpy(y.v, x.v, (size_t)x.c * x.h * x.w * sizeof(double));
    return y;
}

/* reference forward of one image; fills logits[5], probs[5], gap[6] */
static void ref_forward(const float *img, double *logits, double *probs, double *gapv, double *addv) {
    act x = {3, 9, 9, malloc(243 * sizeof(double))};
    for (int i = 0; i < 243; i++) x.v[i] = img[i];
    act c1 = conv_ref(x, "c1.weight", "c1.bias", 1, 1, 1, 0, 2, 1, 1, 1, 1);
    bn_ref(c1, "bn1", 1e-3);
    for (int i = 0; i < c1.c * c1.h * c1.w; i++) c1.v[i] = c1.v[i] > 0 ? c1.v[i] : 0;
    act dw = conv_ref(c1, "dw.weight", NULL, 2, 2, 0, 0, 1, 1, 1, 1, 8);
    act mp = pool_ref(c1, 1, 3, 3, 2, 2, 1, 1, 1, 1, 1);
    act ad = copy_act(dw);
    for (int i = 0; i < ad.c * ad.h * ad.w; i++) ad.v[i] += mp.v[i];
    memcpy(addv, ad.v, (size_t)ad.c * ad.h * ad.w * sizeof(double));
    bn_ref(ad, "bn2", 1e-5);
    for (int i = 0; i < ad.c * ad.h * ad.w; i++) ad.v[i] = ad.v[i] > 0 ? ad.v[i] : 0.1 * ad.v[i];
    act ap = pool_ref(ad, 0, 2, 2, 1, 1, 1, 1, 0, 0, 0);
    for (int i = 0; i < ap.c * ap.h * ap.w; i++) ap.v[i] = ap.v[i] < 0 ? 0 : ap.v[i] > 6 ? 6 : ap.v[i];
    act c2 = conv_ref(ap, "c2.weight", "c2.bias", 1, 1, 1, 1, 1, 1, 2, 2, 1);
    bn_ref(c2, "bn3", 1e-5);
    for (int c = 0; c < 6; c++) {
        double s = 0;
        for (int i = 0; i < c2.h * c2.w; i++) s += c2.v[(size_t)c * c2.h * c2.w + i];
        gapv[c] = s / (c2.h * c2.w);
    }
    const float *W = get_t("fc.weight")->data, *b = get_t("fc.bias")->data;
    double mx = -INFINITY, sum = 0;
    for (int o = 0; o < 5; o++) {
        double s = b[o];
        for (int i = 0; i < 6; i++) s += W[o * 6 + i] * gapv[i];
        logits[o] = s;
        mx = s > mx ? s : mx;
    }
    for (int o = 0; o < 5; o++) sum += exp(logits[o] - mx);
    for (int o = 0; o < 5; o++) probs[o] = exp(logits[o] - mx) / sum;
    free(x.v); free(c1.v); free(dw.v); free(mp.v); free(ad.v); free(ap.v); free(c2.v);
}

/* node order deliberately not topological: the loader sorts */
static const char *GRAPH_OK =
    "{\"input\":{\"name\":\"x\",\"shape\":[3,9,9]},\"outputs\":[\"prob\"],\"feature\":\"gap\",\"nodes\":["
    "{\"name\":\"fc\",\"op\":\"linear\",\"inputs\":[\"flat\"],\"params\":{\"weight\":\"fc.weight\",\"bias\":\"fc.bias\"}},"
    "{\"name\":\"c1\",\"op\":\"conv2d\",\"inputs\":[\"x\"],\"params\":{\"weight\":\"c1.weight\",\"bias\":\"c1.bias\"},"
    " \"attrs\":{\"stride\":[1,1],\"pad\":[1,0,2,1]}},"
    "{\"name\":\"bn1\",\"op\":\"batchnorm\",\"inputs\":[\"c1\"],\"params\":{\"weight\":\"bn1.weight\",\"bias\":\"bn1.bias\","
    " \"running_mean\":\"bn1.running_mean\",\"running_var\":\"bn1.running_var\"},\"attrs\":{\"eps\":0.001}},"
    "{\"name\":\"r1\",\"op\":\"relu\",\"inputs\":[\"bn1\"]},"
    "{\"name\":\"dw\",\"op\":\"conv2d\",\"inputs\":[\"r1\"],\"params\":{\"weight\":\"dw.weight\"},"
    " \"attrs\":{\"stride\":[2,2],\"pad\":[0,0,1,1],\"groups\":8}},"
    "{\"name\":\"mp\",\"op\":\"maxpool\",\"inputs\":[\"r1\"],\"attrs\":{\"kernel\":[3,3],\"stride\":[2,2],\"pad\":[1,1,1,1]}},"
    "{\"name\":\"add\",\"op\":\"add\",\"inputs\":[\"dw\",\"mp\"]},"
    "{\"name\":\"bn2\",\"op\":\"batchnorm\",\"inputs\":[\"add\"],\"params\":{\"weight\":\"bn2.weight\",\"bias\":\"bn2.bias\","
    " \"running_mean\":\"bn2.running_mean\",\"running_var\":\"bn2.running_var\"}},"
    "{\"name\":\"lr\",\"op\":\"leaky_relu\",\"inputs\":[\"bn2\"],\"attrs\":{\"alpha\":0.1}},"
    "{\"name\":\"ap\",\"op\":\"avgpool\",\"inputs\":[\"lr\"],\"attrs\":{\"kernel\":[2,2],\"stride\":[1,1],\"pad\":[1,1,0,0],"
    " \"count_include_pad\":false}},"
    "{\"name\":\"r6\",\"op\":\"relu6\",\"inputs\":[\"ap\"]},"
    "{\"name\":\"c2\",\"op\":\"conv2d\",\"inputs\":[\"r6\"],\"params\":{\"weight\":\"c2.weight\",\"bias\":\"c2.bias\"},"
    " \"attrs\":{\"pad\":[1,1,1,1],\"dilation\":[2,2]}},"
    "{\"name\":\"bn3\",\"op\":\"batchnorm\",\"inputs\":[\"c2\"],\"params\":{\"weight\":\"bn3.weight\",\"bias\":\"bn3.bias\","
    " \"running_mean\":\"bn3.running_mean\",\"running_var\":\"bn3.running_var\"}},"
    "{\"name\":\"gap\",\"op\":\"global_avgpool\",\"inputs\":[\"bn3\"]},"
    "{\"name\":\"flat\",\"op\":\"flatten\",\"inputs\":[\"gap\"]},"
    "{\"name\":\"prob\",\"op\":\"softmax\",\"inputs\":[\"fc\"]}]}";

static void make_tensors(void) {
    test_rng_seed(&R, 42);
    add_t("c1.weight", 4, 8, 3, 3, 3, -0.5, 0.5); add_t("c1.bias", 1, 8, 0, 0, 0, -0.2, 0.2);
    add_t("bn1.weight", 1, 8, 0, 0, 0, 0.5, 1.5); add_t("bn1.bias", 1, 8, 0, 0, 0, -0.3, 0.3);
    add_t("bn1.running_mean", 1, 8, 0, 0, 0, -0.3, 0.3); add_t("bn1.running_var", 1, 8, 0, 0, 0, 0.5, 2.0);
    add_t("dw.weight", 4, 8, 1, 3, 3, -0.6, 0.6);
    add_t("bn2.weight", 1, 8, 0, 0, 0, 0.5, 1.5); add_t("bn2.bias", 1, 8, 0, 0, 0, -0.3, 0.3);
    add_t("bn2.running_mean", 1, 8, 0, 0, 0, -0.3, 0.3); add_t("bn2.running_var", 1, 8, 0, 0, 0, 0.5, 2.0);
    add_t("c2.weight", 4, 6, 8, 2, 2, -0.4, 0.4); add_t("c2.bias", 1, 6, 0, 0, 0, -0.2, 0.2);
    add_t("bn3.weight", 1, 6, 0, 0, 0, 0.5, 1.5); add_t("bn3.bias", 1, 6, 0, 0, 0, -0.3, 0.3);
    add_t("bn3.running_mean", 1, 6, 0, 0, 0, -0.3, 0.3); add_t("bn3.running_var", 1, 6, 0, 0, 0, 0.5, 2.0);
    add_t("fc.weight", 2, 5, 6, 0, 0, -1, 1); add_t("fc.bias", 1, 5, 0, 0, 0, -0.5, 0.5);
    add_t("unused.num_batches_tracked", 1, 1, 0, 0, 0, 0, 1);
}

static char dir[256];
static char *p_(const char *name) {
    static char buf[4][512]; static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void expect_bad(const char *what, const fopts *o, const char *needle) {
    char *path = p_("bad.safetensors");
    write_model(path, o);
    gf_model *m = NULL;
    gf_status st = gf_model_load(NULL, path, &m);
    const char *msg = gf_model_error(m);
    CHECK(st == GF_ERR_INPUT, "%s: status %s, want GF_ERR_INPUT (%s)", what, gf_status_name(st), msg);
    CHECK(strstr(msg, needle) != NULL, "%s: message '%s' lacks '%s'", what, msg, needle);
    printf("  %-22s -> %s\n", what, msg);
    gf_model_free(m);
}

static void run_exec(gf_ctx *ctx, const char *path, double tol, const char *label) {
    gf_model *m = NULL;
    gf_status st = gf_model_load(ctx, path, &m);
    if (st != GF_OK) { CHECK(0, "%s: load failed: %s", label, gf_model_error(m)); gf_model_free(m); return; }
    /* F16 file: the reference must use the rounded values */
    enum { N = 3 };
    float *x = malloc(N * 243 * sizeof(float));
    test_fill(&R, x, N * 243, -1, 1);
    gf_exec *e = NULL;
    REQUIRE_OK(ctx, gf_exec_create(ctx, m, 4, &e));
    REQUIRE_OK(ctx, gf_exec_run(e, x, N));
    float probs[N * 5], logits[N * 5], gapv[N * 6], addv[N * 160];
    REQUIRE_OK(ctx, gf_exec_read(e, "prob", probs, N * 5));
    REQUIRE_OK(ctx, gf_exec_read(e, "fc", logits, N * 5));
    REQUIRE_OK(ctx, gf_exec_read(e, "gap", gapv, N * 6));
    REQUIRE_OK(ctx, gf_exec_read(e, "add", addv, N * 160));
    CHECK(gf_exec_read(e, "nope", probs, 5) == GF_ERR_USAGE, "read of an unknown node must fail");
    double rl[N * 5], rp[N * 5], rg[N * 6], ra[N * 160];
    for (int i = 0; i < N; i++) ref_forward(x + i * 243, rl + i * 5, rp + i * 5, rg + i * 6, ra + i * 160);
    char w[64];
    snprintf(w, sizeof w, "%s logits", label); test_close(w, logits, rl, N * 5, tol, tol);
    snprintf(w, sizeof w, "%s probs", label); test_close(w, probs, rp, N * 5, tol, tol);
    snprintf(w, sizeof w, "%s gap", label); test_close(w, gapv, rg, N * 6, tol, tol);
    snprintf(w, sizeof w, "%s add", label); test_close(w, addv, ra, N * 160, tol, tol);
    /* the trunk pass's executor (gf_exec_create_to): to node "add" alone, its activations shared along the pass;
     * the same bits as the whole-net executor's, less device memory, every other use refused */
    int add = gf_model_find_node(m, "add");
    uint64_t m0, m1, m2, pk;
    gf_exec *et = NULL;
    gf_ctx_memory(ctx, &m0, &pk);
    gf_exec *ef = NULL;
    REQUIRE_OK(ctx, gf_exec_create(ctx, m, 4, &ef));
    gf_ctx_memory(ctx, &m1, &pk);
    REQUIRE_OK(ctx, gf_exec_create_to(ctx, m, 4, add, &et));
    gf_ctx_memory(ctx, &m2, &pk);
    CHECK(m2 - m1 < m1 - m0, "%s: the trunk executor holds %llu bytes, the whole-net one %llu", label,
          (unsigned long long)(m2 - m1), (unsigned long long)(m1 - m0));
    float addt[N * 160], dummy[N * 5];
    REQUIRE_OK(ctx, gf_exec_run_to(et, x, N, add));
    REQUIRE_OK(ctx, gf_exec_read(et, "add", addt, N * 160));
    CHECK(!memcmp(addt, addv, sizeof addt), "%s: the trunk executor's add differs from the whole-net one's", label);
    REQUIRE_OK(ctx, gf_exec_run_to(et, x + 243, 1, add));   /* another batch size into the same shared buffers */
    REQUIRE_OK(ctx, gf_exec_read(et, "add", addt, 160));
    CHECK(!memcmp(addt, addv + 160, 160 * sizeof(float)), "%s: one image through the trunk executor differs", label);
    CHECK(gf_exec_run(et, x, N) == GF_ERR_USAGE && strstr(gf_ctx_last_error(ctx), "'add' only"),
          "%s: a whole-net run of the trunk executor must be refused (%s)", label, gf_ctx_last_error(ctx));
    CHECK(gf_exec_run_to(et, x, N, gf_model_find_node(m, "gap")) == GF_ERR_USAGE, "%s: a run to another node must be refused", label);
    CHECK(gf_exec_read(et, "fc", dummy, N * 5) == GF_ERR_USAGE && strstr(gf_ctx_last_error(ctx), "keeps no other"),
          "%s: reading another node must be refused (%s)", label, gf_ctx_last_error(ctx));
    gf_exec_free(ef);
    ef = NULL;
    CHECK(gf_exec_create_to(ctx, m, 4, 99, &ef) == GF_ERR_USAGE && !ef, "%s: a node out of range must be refused", label);
    gf_exec_free(et);
    gf_exec_free(e);
    free(x);
    gf_model_free(m);
}

/* A residual graph for the trunk executor's fused epilogues (block.c fuse_epilogues): c2 -> add1 <- sc, where
 * the shortcut conv sc comes after c2 (sc takes c2 as its residual), add1 -> relu6; add2 = r2 + c3 where c3 reads
 * r2 too (its residual is its own input); leaky after add2 (applied after the conv); c4 read twice (not fused).
 * 64 channels at 8x8, batch 4: Winograd F(4x4) by default. */
static const char *GRAPH_RES =
    "{\"input\":{\"name\":\"x\",\"shape\":[64,8,8]},\"outputs\":[\"add3\"],\"nodes\":["
    "{\"name\":\"c1\",\"op\":\"conv2d\",\"inputs\":[\"x\"],\"params\":{\"weight\":\"c1.weight\",\"bias\":\"c1.bias\"},"
    " \"attrs\":{\"pad\":[1,1,1,1]}},"
    "{\"name\":\"bn1\",\"op\":\"batchnorm\",\"inputs\":[\"c1\"],\"params\":{\"weight\":\"bn1.weight\",\"bias\":\"bn1.bias\","
    " \"running_mean\":\"bn1.running_mean\",\"running_var\":\"bn1.running_var\"}},"
    "{\"name\":\"r1\",\"op\":\"relu\",\"inputs\":[\"bn1\"]},"
    "{\"name\":\"c2\",\"op\":\"conv2d\",\"inputs\":[\"r1\"],\"params\":{\"weight\":\"c2.weight\"},\"attrs\":{\"pad\":[1,1,1,1]}},"
    "{\"name\":\"sc\",\"op\":\"conv2d\",\"inputs\":[\"x\"],\"params\":{\"weight\":\"sc.weight\",\"bias\":\"sc.bias\"}},"
    "{\"name\":\"add1\",\"op\":\"add\",\"inputs\":[\"c2\",\"sc\"]},"
    "{\"name\":\"r2\",\"op\":\"relu6\",\"inputs\":[\"add1\"]},"
    "{\"name\":\"c3\",\"op\":\"conv2d\",\"inputs\":[\"r2\"],\"params\":{\"weight\":\"c3.weight\"},\"attrs\":{\"pad\":[1,1,1,1]}},"
    "{\"name\":\"add2\",\"op\":\"add\",\"inputs\":[\"r2\",\"c3\"]},"
    "{\"name\":\"r3\",\"op\":\"leaky_relu\",\"inputs\":[\"add2\"],\"attrs\":{\"alpha\":0.1}},"
    "{\"name\":\"c4\",\"op\":\"conv2d\",\"inputs\":[\"r3\"],\"params\":{\"weight\":\"c4.weight\"},\"attrs\":{\"pad\":[1,1,1,1]}},"
    "{\"name\":\"r4\",\"op\":\"relu\",\"inputs\":[\"c4\"]},"
    "{\"name\":\"add3\",\"op\":\"add\",\"inputs\":[\"c4\",\"r4\"]}]}";

typedef struct { const char *algo, *kernels; } res_variant;
static void res_edit(gf_ctx_options *o, const void *user) {
    const res_variant *v = user;
    o->conv_algo = v->algo;
    o->conv_kernels = v->kernels;
}

/* The trunk executor (activations shared, epilogues fused) to add2 (a fused node), r3 and add3 gives the bits of
 * the whole-net executor's nodes (nothing fused there), with every conv path: the default (F(4x4) rows),
 * direct, F(2x2) and the GPU-style kernels (epilogues run after the conv). */
static void fused_trunk(void) {
    int saved = nT;
    add_t("c1.weight", 4, 64, 64, 3, 3, -0.06, 0.06); add_t("c1.bias", 1, 64, 0, 0, 0, -0.2, 0.2);
    add_t("bn1.weight", 1, 64, 0, 0, 0, 0.5, 1.5); add_t("bn1.bias", 1, 64, 0, 0, 0, -0.3, 0.3);
    add_t("bn1.running_mean", 1, 64, 0, 0, 0, -0.3, 0.3); add_t("bn1.running_var", 1, 64, 0, 0, 0, 0.5, 2.0);
    add_t("c2.weight", 4, 64, 64, 3, 3, -0.06, 0.06);
    add_t("sc.weight", 4, 64, 64, 1, 1, -0.2, 0.2); add_t("sc.bias", 1, 64, 0, 0, 0, -0.2, 0.2);
    add_t("c3.weight", 4, 64, 64, 3, 3, -0.06, 0.06);
    add_t("c4.weight", 4, 64, 64, 3, 3, -0.06, 0.06);
    fopts o = {0};
    o.graph = GRAPH_RES;
    o.no_preprocess = 1;
    o.first_tensor = saved;   /* the file holds this graph's tensors only */
    write_model(p_("res.safetensors"), &o);
    static const res_variant vars[] = {{NULL, NULL}, {"direct", NULL}, {"winograd", NULL}, {"winograd4", "element"},
                                       {"direct", "element"}};
    enum { N = 4, PER = 64 * 8 * 8 };
    float *x = malloc(N * PER * sizeof(float)), *want = malloc(N * PER * sizeof(float));
    float *got = malloc(N * PER * sizeof(float));
    test_fill(&R, x, N * PER, -1, 1);
    for (size_t v = 0; v < sizeof vars / sizeof vars[0]; v++) {
        gf_ctx *ctx = test_ctx_for(NULL, res_edit, &vars[v]);
        gf_model *m = NULL;
        if (gf_model_load(ctx, p_("res.safetensors"), &m) != GF_OK) {
            CHECK(0, "residual graph: load failed: %s", gf_model_error(m));
            gf_model_free(m);
            gf_ctx_free(ctx);
            break;
        }
        gf_exec *e = NULL;
        REQUIRE_OK(ctx, gf_exec_create(ctx, m, N, &e));
        REQUIRE_OK(ctx, gf_exec_run(e, x, N));
        static const char *const keeps[] = {"add2", "r3", "add3"};
        for (int k = 0; k < 3; k++) {
            REQUIRE_OK(ctx, gf_exec_read(e, keeps[k], want, N * PER));
            gf_exec *et = NULL;
            int node = gf_model_find_node(m, keeps[k]);
            REQUIRE_OK(ctx, gf_exec_create_to(ctx, m, N, node, &et));
            REQUIRE_OK(ctx, gf_exec_run_to(et, x, N, node));
            REQUIRE_OK(ctx, gf_exec_read(et, keeps[k], got, N * PER));
            size_t i = 0;
            while (i < (size_t)N * PER && !memcmp(&got[i], &want[i], sizeof(float))) i++;
            CHECK(i == (size_t)N * PER, "residual graph (conv algo %s, kernels %s): the trunk executor's %s differs "
                  "from the whole-net one's at %zu: %.9g, want %.9g", vars[v].algo ? vars[v].algo : "auto",
                  vars[v].kernels ? vars[v].kernels : "auto", keeps[k], i, i < (size_t)N * PER ? got[i] : 0.0,
                  i < (size_t)N * PER ? want[i] : 0.0);
            gf_exec_free(et);
        }
        size_t neg = 0, six = 0;   /* the activations did clamp */
        REQUIRE_OK(ctx, gf_exec_read(e, "r2", want, N * PER));
        for (size_t i = 0; i < (size_t)N * PER; i++) { neg += want[i] == 0.0f; six += want[i] == 6.0f; }
        CHECK(neg > 100 && six == 0, "residual graph: relu6 output has %zu zeros, %zu sixes", neg, six);
        gf_exec_free(e);
        gf_model_free(m);
        gf_ctx_free(ctx);
    }
    for (int i = saved; i < nT; i++) free(T[i].data);
    nT = saved;
    free(x); free(want); free(got);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/gf_test_model_%d", (int)getpid());
    char cmd[300];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    if (system(cmd) != 0) return 1;
    make_tensors();
    GRAPH = GRAPH_OK;
    fopts ok = {0};
    write_model(p_("ok.safetensors"), &ok);

    /* load without a device: info, nodes, blocks */
    gf_model *m = NULL;
    gf_status st = gf_model_load(NULL, p_("ok.safetensors"), &m);
    CHECK(st == GF_OK, "valid model: %s", gf_model_error(m));
    if (st == GF_OK) {
        gf_model_info in;
        gf_model_get_info(m, &in);
        CHECK(in.n_nodes == 16 && in.in_c == 3 && in.in_h == 9 && in.feature && !strcmp(in.feature, "gap") &&
              in.feature_dim == 6 && in.out_dim == 5 && in.n_classes == 5, "info: nodes %d feature %s dim %d out %d",
              in.n_nodes, in.feature ? in.feature : "-", in.feature_dim, in.out_dim);
        gf_node_info ni;
        CHECK(gf_model_node(m, 0, &ni) == GF_OK && !strcmp(ni.name, "c1") && ni.c == 8 && ni.h == 10 && ni.w == 8,
              "node 0 is c1 [8,10,8] (got %s [%d,%d,%d])", ni.name, ni.c, ni.h, ni.w);
        int k = gf_model_find_node(m, "bn1");
        CHECK(k >= 0 && gf_model_node(m, k, &ni) == GF_OK && ni.folded, "bn1 folded");
        k = gf_model_find_node(m, "bn2");
        CHECK(k >= 0 && gf_model_node(m, k, &ni) == GF_OK && !ni.folded, "bn2 standalone");
        /* macs: c1 8*10*8*27 + dw 8*5*4*9 + bn2 160 + c2 6*5*4*32 + fc 30 */
        double macs = 8.0 * 10 * 8 * 27 + 8.0 * 5 * 4 * 9 + 160 + 6.0 * 5 * 4 * 32 + 30;
        CHECK(fabs(in.macs - macs) < 0.5, "macs %.0f want %.0f", in.macs, macs);
        /* bn2 (after an add: not foldable) is a per-channel affine, not a layer: it joins the dw block instead of
         * being a top block of its own */
        const char *want[] = {"c2", "dw", "c1"};
        CHECK(in.n_blocks == 3, "3 blocks, got %d", in.n_blocks);
        for (int i = 0; i < in.n_blocks && i < 3; i++) {
            gf_block_info bi;
            gf_model_block(m, i, &bi);
            CHECK(!strcmp(bi.name, want[i]), "block %d is %s (got %s: %s -> %s)", i, want[i], bi.name, bi.input, bi.output);
        }
        gf_block_info bi;
        gf_model_block(m, 1, &bi);
        CHECK(!strcmp(bi.input, "r1") && !strcmp(bi.output, "r6") && bi.n_nodes == 7, "block dw: r1 -> r6, 7 nodes (%s -> %s, %d)",
              bi.input, bi.output, bi.n_nodes);
        {   /* multi-block θ2: a lower block means it and every block above it */
            gf_block_info top, sp;
            gf_model_block(m, 0, &top);
            int nodes_dw_up = 0;
            for (int i = 0; i <= 1; i++) { gf_block_info x; gf_model_block(m, i, &x); nodes_dw_up += x.n_nodes; }
            int k = gf_model_find_block(m, "dw");
            CHECK(in.n_spans == 2 && k >= in.n_blocks, "dw resolves to a span after the %d blocks (n_spans %d, index %d)",
                  in.n_blocks, in.n_spans, k);
            CHECK(k >= 0 && gf_model_block(m, k, &sp) == GF_OK && !strcmp(sp.name, "dw..c2") && !strcmp(sp.input, "r1") &&
                  !strcmp(sp.output, top.output) && sp.n_nodes == nodes_dw_up,
                  "span dw..c2: r1 -> %s, %d nodes (got %s: %s -> %s, %d)", top.output, nodes_dw_up, sp.name, sp.input,
                  sp.output, sp.n_nodes);
            CHECK(gf_model_find_block(m, "dw..c2") == k && gf_model_top_blocks(m, 2) == k, "span by name and by count");
            CHECK(gf_model_find_block(m, "c2") == 0 && gf_model_top_blocks(m, 1) == 0, "the top block is itself");
            CHECK(gf_model_top_blocks(m, 4) == -1 && gf_model_find_block(m, "dw..lr") == -1,
                  "no span past the blocks, none that stops below the top");
        }
        CHECK(!strcmp(gf_model_class_name(m, 4), "e") && !gf_model_class_name(m, 5), "class names");
        const gf_preprocess *pp = gf_model_preprocess(m);
        CHECK(pp->width == 9 && pp->channels == 3 && fabs(pp->mean[1] - 0.5) < 1e-7 && fabs(pp->std[2] - 0.25) < 1e-7,
              "preprocess parsed");
    }
    gf_model_free(m);

    /* malformed files: each a clear GF_ERR_INPUT, never a crash */
    fopts o;
    o = ok; o.truncate = 100; expect_bad("truncated", &o, "outside the data area");
    o = ok; o.header_len = (uint64_t)1 << 60; expect_bad("huge header length", &o, "exceeds the limit");
    o = ok; o.header_len = 1 << 20; expect_bad("header past the end", &o, "does not fit");
    o = ok; o.bad_offset_of = "c2.weight"; expect_bad("offset out of range", &o, "'c2.weight'");
    o = ok; o.bad_dtype_of = "bn1.bias"; expect_bad("wrong dtype", &o, "tensor 'bn1.bias': dtype I64");
    o = ok; o.swap_fc = 1; expect_bad("shape mismatch", &o, "tensor 'fc.weight' (weight) has shape [6, 5], the graph needs [*, 6]");
    o = ok; o.skip_tensor = "bn2.running_var"; expect_bad("missing tensor", &o, "bn2.running_var");
    o = ok; o.version = "9"; expect_bad("format version", &o, "format_version");
    o = ok; o.no_meta = 1; expect_bad("no metadata", &o, "__metadata__");
    {
        /* graph-level problems, made by editing the valid graph text */
        struct { const char *what, *from, *to, *needle; } ed[] = {
            {"unknown op", "\"op\":\"relu6\"", "\"op\":\"erf\"", "node 'r6': unsupported op 'erf'"},
            {"cycle", "\"name\":\"r1\",\"op\":\"relu\",\"inputs\":[\"bn1\"]", "\"name\":\"r1\",\"op\":\"relu\",\"inputs\":[\"add\"]", "cycle: 'dw' <- 'r1' <- 'add' <- 'dw'"},
            {"undefined input", "\"inputs\":[\"ap\"]", "\"inputs\":[\"apx\"]", "input 'apx' is not defined"},
            {"duplicate name", "\"name\":\"lr\"", "\"name\":\"ap\"", "used twice"},
            {"bad groups", "\"groups\":8", "\"groups\":3", "groups 3"},
            {"bad attr", "\"dilation\":[2,2]", "\"dilation\":[2,\"x\"]", "'dilation'"},
            {"add shapes", "\"inputs\":[\"dw\",\"mp\"]", "\"inputs\":[\"dw\",\"r1\"]", "node 'add': add of shapes"},
            {"missing output", "\"outputs\":[\"prob\"]", "\"outputs\":[\"prb\"]", "output 'prb'"},
            {"not json", "{\"input\"", "{input", "not valid JSON"},
            /* issue 17's ops: shapes and attributes */
            {"mul shapes", "\"op\":\"add\",\"inputs\":[\"dw\",\"mp\"]", "\"op\":\"mul\",\"inputs\":[\"dw\",\"r1\"]",
             "node 'add': mul of shapes [8, 5, 4] and [8, 10, 8]"},
            {"mul arity", "\"op\":\"add\",\"inputs\":[\"dw\",\"mp\"]", "\"op\":\"mul\",\"inputs\":[\"dw\"]",
             "op mul needs 2 inputs"},
            {"concat sizes", "\"op\":\"add\",\"inputs\":[\"dw\",\"mp\"]", "\"op\":\"concat\",\"inputs\":[\"dw\",\"r1\"]",
             "concat input 1 is 10x8, input 0 is 5x4"},
            {"concat one input", "\"op\":\"add\",\"inputs\":[\"dw\",\"mp\"]", "\"op\":\"concat\",\"inputs\":[\"dw\"]",
             "op concat needs 2 to 64 inputs (got 1)"},
            {"shuffle groups", "\"op\":\"relu6\",\"inputs\":[\"ap\"]",
             "\"op\":\"shuffle\",\"inputs\":[\"ap\"],\"attrs\":{\"groups\":3}", "shuffle of 8 channels in 3 groups"},
            {"shuffle no groups", "\"op\":\"relu6\",\"inputs\":[\"ap\"]", "\"op\":\"shuffle\",\"inputs\":[\"ap\"]",
             "attribute 'groups' missing"},
            {"slice range", "\"op\":\"relu6\",\"inputs\":[\"ap\"]",
             "\"op\":\"slice\",\"inputs\":[\"ap\"],\"attrs\":{\"start\":4,\"end\":9}", "slice of channels 4..9 of a 8-channel"},
            {"slice empty", "\"op\":\"relu6\",\"inputs\":[\"ap\"]",
             "\"op\":\"slice\",\"inputs\":[\"ap\"],\"attrs\":{\"start\":4,\"end\":4}", "slice end 4 must be past start 4"},
            {"gelu approximate", "\"op\":\"relu6\",\"inputs\":[\"ap\"]",
             "\"op\":\"gelu\",\"inputs\":[\"ap\"],\"attrs\":{\"approximate\":\"fast\"}", "must be \"none\" or \"tanh\""},
            {"layernorm eps", "\"op\":\"relu6\",\"inputs\":[\"ap\"]",
             "\"op\":\"layernorm\",\"inputs\":[\"ap\"],\"attrs\":{\"eps\":-1}", "node 'r6': eps -1 is negative"},
            {"hardsigmoid beta", "\"op\":\"relu6\",\"inputs\":[\"ap\"]",
             "\"op\":\"hardsigmoid\",\"inputs\":[\"ap\"],\"attrs\":{\"beta\":0.3}", "hardsigmoid beta 0.3 (only 0.5"},
        };
        for (size_t i = 0; i < sizeof ed / sizeof ed[0]; i++) {
            const char *at = strstr(GRAPH_OK, ed[i].from);
            if (!at) { CHECK(0, "test bug: '%s' not in graph", ed[i].from); continue; }
            size_t pre = (size_t)(at - GRAPH_OK), n = strlen(GRAPH_OK) + strlen(ed[i].to) + 1;
            char *g = malloc(n);
            snprintf(g, n, "%.*s%s%s", (int)pre, GRAPH_OK, ed[i].to, at + strlen(ed[i].from));
            o = ok; o.graph = g;
            expect_bad(ed[i].what, &o, ed[i].needle);
            free(g);
        }
    }
    {   /* explicit blocks in the graph: used as given; one whose input is not a cut is refused */
        const char *tail = "\"feature\":\"gap\",";
        const char *at = strstr(GRAPH_OK, tail);
        size_t pre = (size_t)(at - GRAPH_OK) + strlen(tail), n = strlen(GRAPH_OK) + 200;
        char *g = malloc(n);
        snprintf(g, n, "%.*s\"blocks\":[{\"name\":\"tail\",\"input\":\"add\",\"output\":\"bn3\"}],%s", (int)pre, GRAPH_OK,
                 at + strlen(tail));
        o = ok; o.graph = g;
        write_model(p_("blocks.safetensors"), &o);
        gf_model *b = NULL;
        st = gf_model_load(NULL, p_("blocks.safetensors"), &b);
        gf_block_info bi;
        CHECK(st == GF_OK && gf_model_block(b, 0, &bi) == GF_OK && !strcmp(bi.name, "tail") && bi.n_nodes == 5 &&
              !strcmp(bi.input, "add") && gf_model_find_block(b, "tail") == 0, "explicit block 'tail' (%s)", gf_model_error(b));
        gf_model_free(b);
        snprintf(g, n, "%.*s\"blocks\":[{\"name\":\"bad\",\"input\":\"dw\",\"output\":\"add\"}],%s", (int)pre, GRAPH_OK,
                 at + strlen(tail));
        expect_bad("block not a cut", &o, "block 'bad': node 'mp' reads 'r1' from outside the block");
        free(g);
    }
    {   /* not a file / empty file / garbage */
        gf_model *b = NULL;
        CHECK(gf_model_load(NULL, p_("does-not-exist"), &b) == GF_ERR_INPUT, "missing file");
        gf_model_free(b);
        FILE *f = fopen(p_("empty"), "wb"); fclose(f);
        CHECK(gf_model_load(NULL, p_("empty"), &b) == GF_ERR_INPUT && strstr(gf_model_error(b), "too short"), "empty file");
        gf_model_free(b);
    }

    /* the executor on the device vs the double reference; then the same as F16 */
    gf_ctx *ctx = test_ctx();
    run_exec(ctx, p_("ok.safetensors"), 1e-4, "f32");
    fopts h = ok; h.f16 = 1;
    write_model(p_("f16.safetensors"), &h);
    for (int i = 0; i < nT; i++)
        for (size_t k = 0; k < T[i].n; k++) T[i].data[k] = from_half(to_half(T[i].data[k]));
    run_exec(ctx, p_("f16.safetensors"), 1e-4, "f16");
    gf_ctx_free(ctx);
    fused_trunk();
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
    for (int i = 0; i < nT; i++) free(T[i].data);
    return test_finish("test_model");
}
