/* Model loader: safetensors + gradfeat.* metadata (models/README.md).
 * Order of work: header (safetensors.c) -> metadata -> graph parse -> names
 * resolved -> topological sort (cycle check) -> shape inference with every
 * parameter's shape checked -> outputs/feature/blocks -> ONLY THEN the tensor
 * data is read and BatchNorm folded (gf_bn_fold). Every failure names the
 * node or tensor and returns GF_ERR_INPUT. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data_internal.h"
#include "model.h"
#include "gf_file.h"
#include "ops_affine.h"

/* each op's name in the file and the kind the executor runs it as (ir.h; a standalone batchnorm: a conv) */
static const struct { const char *name; gf_node_kind kind; } ops[GF_OP_COUNT] = {
    {"conv2d", GF_K_CONV}, {"linear", GF_K_LINEAR}, {"batchnorm", GF_K_NONE}, {"relu", GF_K_ACT}, {"relu6", GF_K_ACT},
    {"leaky_relu", GF_K_ACT}, {"maxpool", GF_K_MAXPOOL}, {"avgpool", GF_K_AVGPOOL}, {"global_avgpool", GF_K_GAP},
    {"add", GF_K_ADD}, {"flatten", GF_K_FLATTEN}, {"softmax", GF_K_NONE}, {"sigmoid", GF_K_ACT}, {"silu", GF_K_ACT},
    {"hardsigmoid", GF_K_ACT}, {"hardswish", GF_K_ACT}, {"gelu", GF_K_ACT}, {"mul", GF_K_MUL}, {"concat", GF_K_CONCAT},
    {"layernorm", GF_K_LAYERNORM}, {"shuffle", GF_K_SHUFFLE}, {"slice", GF_K_SLICE}};

const char *gf_op_name(gf_op op) { return (unsigned)op < GF_OP_COUNT ? ops[op].name : "?"; }

int gf_op_act(const gf_node *nd, gf_act *a) {
    a->slope = 0;
    switch (nd->op) {
    case GF_OP_RELU: a->kind = GF_ACT_RELU; return 1;
    case GF_OP_RELU6: a->kind = GF_ACT_RELU6; return 1;
    case GF_OP_LEAKY: a->kind = GF_ACT_LEAKY; a->slope = nd->alpha; return 1;
    case GF_OP_SIGMOID: a->kind = GF_ACT_SIGMOID; return 1;
    case GF_OP_SILU: a->kind = GF_ACT_SILU; return 1;
    case GF_OP_HSIGMOID: a->kind = GF_ACT_HSIGMOID; a->slope = nd->alpha; return 1;
    case GF_OP_HSWISH: a->kind = GF_ACT_HSWISH; return 1;
    case GF_OP_GELU: a->kind = nd->approx_tanh ? GF_ACT_GELU_TANH : GF_ACT_GELU; return 1;
    default: return 0;
    }
}

static const char *const pnames[GF_P_COUNT] = {"weight", "bias", "running_mean", "running_var"};
enum { MAX_ACT = 1 << 28 };  /* floats per image of one activation */

typedef struct {
    gf_model *m;
    gf_st_file f;
    char *err;
    size_t errsz;
    const char *path;
    const void *mem;                  /* an imported model's file image (ONNX), else NULL: read path */
    size_t mem_n;
} loader;

static gf_status lfail(loader *L, const char *fmt, ...) GF_PRINTF(2, 3);
static gf_status lfail(loader *L, const char *fmt, ...) {
    char msg[sizeof L->m->err];
    va_list ap;
    va_start(ap, fmt);
    gf_vformat(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return gf_fail_msg(L->err, L->errsz, GF_ERR_INPUT, "%s: %s", L->path, msg);
}

/* ---------------------------------------------------------------- attrs */

/* Integer array attribute of exactly n entries (a single number is repeated). */
static gf_status attr_ints(loader *L, const cJSON *attrs, const char *node, const char *key, int n, int lo, int hi,
                           int *out, int required) {
    const cJSON *v = attrs ? cJSON_GetObjectItemCaseSensitive(attrs, key) : NULL;
    if (!v) {
        if (required) return lfail(L, "node '%s': attribute '%s' missing", node, key);
        return GF_OK;
    }
    if (cJSON_IsNumber(v)) {
        for (int i = 0; i < n; i++) out[i] = v->valueint;
        if (v->valuedouble != (double)v->valueint || v->valueint < lo || v->valueint > hi)
            return lfail(L, "node '%s': attribute '%s' = %g out of range %d..%d", node, key, v->valuedouble, lo, hi);
        return GF_OK;
    }
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != n)
        return lfail(L, "node '%s': attribute '%s' must be an array of %d integers", node, key, n);
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(v, i);
        /* range first: casting a double outside int's range (1e89) is undefined */
        if (!cJSON_IsNumber(e) || !(e->valuedouble >= lo && e->valuedouble <= hi) ||
            e->valuedouble != (double)(int)e->valuedouble)
            return lfail(L, "node '%s': attribute '%s'[%d] is not an integer in %d..%d", node, key, i, lo, hi);
        out[i] = (int)e->valuedouble;
    }
    return GF_OK;
}

static gf_status attr_float(loader *L, const cJSON *attrs, const char *node, const char *key, float *out) {
    const cJSON *v = attrs ? cJSON_GetObjectItemCaseSensitive(attrs, key) : NULL;
    if (!v) return GF_OK;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return lfail(L, "node '%s': attribute '%s' is not a finite number", node, key);
    *out = (float)v->valuedouble;
    return GF_OK;
}

/* --------------------------------------------------------------- parsing */

typedef struct {
    const cJSON *json;
    const char *in_names[GF_MAX_INPUTS];
} rawnode;

static gf_status parse_node(loader *L, const cJSON *j, gf_node *nd, rawnode *raw) {
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(j, "name");
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(j, "op");
    const cJSON *ins = cJSON_GetObjectItemCaseSensitive(j, "inputs");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(j, "params");
    const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(j, "attrs");
    if (!cJSON_IsObject(j) || !cJSON_IsString(name) || !name->valuestring[0])
        return lfail(L, "graph: a node has no name");
    const char *nm = name->valuestring;
    if (strlen(nm) > 255) return lfail(L, "graph: node name '%.40s...' longer than 255 bytes", nm);
    if (!cJSON_IsString(op)) return lfail(L, "node '%s': no op", nm);
    nd->op = GF_OP_COUNT;
    for (int k = 0; k < GF_OP_COUNT; k++)
        if (!strcmp(op->valuestring, ops[k].name)) nd->op = (gf_op)k;
    if (nd->op == GF_OP_COUNT) return lfail(L, "node '%s': unsupported op '%s'", nm, op->valuestring);
    snprintf(nd->name, sizeof nd->name, "%s", nm);
    int want = nd->op == GF_OP_ADD || nd->op == GF_OP_MUL ? 2 : 1;
    if (nd->op == GF_OP_CONCAT) {
        want = cJSON_IsArray(ins) ? cJSON_GetArraySize(ins) : 0;
        if (want < 2 || want > GF_MAX_INPUTS)
            return lfail(L, "node '%s': op concat needs 2 to %d inputs (got %d)", nm, GF_MAX_INPUTS, want);
    }
    if (!cJSON_IsArray(ins) || cJSON_GetArraySize(ins) != want)
        return lfail(L, "node '%s': op %s needs %d input%s", nm, ops[nd->op].name, want, want > 1 ? "s" : "");
    nd->n_in = want;
    for (int i = 0; i < want; i++) {
        const cJSON *s = cJSON_GetArrayItem(ins, i);
        if (!cJSON_IsString(s)) return lfail(L, "node '%s': input %d is not a name", nm, i);
        raw->in_names[i] = s->valuestring;
    }
    if (attrs && !cJSON_IsObject(attrs)) return lfail(L, "node '%s': attrs is not an object", nm);
    if (params && !cJSON_IsObject(params)) return lfail(L, "node '%s': params is not an object", nm);
    for (int p = 0; p < GF_P_COUNT; p++) nd->param[p] = -1;
    if (params) {
        for (const cJSON *it = params->child; it; it = it->next) {
            int slot = -1;
            for (int p = 0; p < GF_P_COUNT; p++)
                if (!strcmp(it->string, pnames[p])) slot = p;
            int allowed = (nd->op == GF_OP_CONV || nd->op == GF_OP_LINEAR) ? (slot == GF_P_WEIGHT || slot == GF_P_BIAS)
                          : nd->op == GF_OP_BATCHNORM ? slot >= 0 : 0;
            if (!allowed) return lfail(L, "node '%s': unexpected parameter '%s' for op %s", nm, it->string, ops[nd->op].name);
            if (!cJSON_IsString(it)) return lfail(L, "node '%s': parameter '%s' is not a tensor name", nm, it->string);
            int t = gf_st_find(&L->f, it->valuestring);
            if (t < 0)
                return lfail(L, "node '%s': parameter '%s' names tensor '%s', which is not in the file", nm, it->string,
                             it->valuestring);
            nd->param[slot] = t;
        }
    }
    if ((nd->op == GF_OP_CONV || nd->op == GF_OP_LINEAR) && nd->param[GF_P_WEIGHT] < 0)
        return lfail(L, "node '%s': missing parameter 'weight'", nm);
    if (nd->op == GF_OP_BATCHNORM && (nd->param[GF_P_MEAN] < 0 || nd->param[GF_P_VAR] < 0))
        return lfail(L, "node '%s': batchnorm needs 'running_mean' and 'running_var'", nm);
    /* attributes with defaults */
    nd->stride[0] = nd->stride[1] = 1;
    nd->dil[0] = nd->dil[1] = 1;
    nd->groups = 1;
    nd->count_include_pad = 1;
    nd->alpha = 0.01f;
    nd->eps = 1e-5f;
    if (nd->op == GF_OP_CONV) {
        GF_TRY(attr_ints(L, attrs, nm, "stride", 2, 1, 65536, nd->stride, 0));
        GF_TRY(attr_ints(L, attrs, nm, "pad", 4, 0, 65536, nd->pad, 0));
        GF_TRY(attr_ints(L, attrs, nm, "dilation", 2, 1, 65536, nd->dil, 0));
        GF_TRY(attr_ints(L, attrs, nm, "groups", 1, 1, 1 << 24, &nd->groups, 0));
    } else if (nd->op == GF_OP_MAXPOOL || nd->op == GF_OP_AVGPOOL) {
        GF_TRY(attr_ints(L, attrs, nm, "kernel", 2, 1, 65536, nd->kernel, 1));
        nd->stride[0] = nd->kernel[0];
        nd->stride[1] = nd->kernel[1];
        GF_TRY(attr_ints(L, attrs, nm, "stride", 2, 1, 65536, nd->stride, 0));
        GF_TRY(attr_ints(L, attrs, nm, "pad", 4, 0, 65536, nd->pad, 0));
        const cJSON *cip = attrs ? cJSON_GetObjectItemCaseSensitive(attrs, "count_include_pad") : NULL;
        if (cip) {
            if (!cJSON_IsBool(cip)) return lfail(L, "node '%s': count_include_pad must be true or false", nm);
            nd->count_include_pad = cJSON_IsTrue(cip);
        }
    } else if (nd->op == GF_OP_LEAKY) {
        GF_TRY(attr_float(L, attrs, nm, "alpha", &nd->alpha));
    } else if (nd->op == GF_OP_HSIGMOID) {
        nd->alpha = 1.0f / 6.0f;   /* PyTorch: relu6(x + 3) / 6 */
        GF_TRY(attr_float(L, attrs, nm, "alpha", &nd->alpha));
        float beta = 0.5f;
        GF_TRY(attr_float(L, attrs, nm, "beta", &beta));
        if (beta != 0.5f) return lfail(L, "node '%s': hardsigmoid beta %g (only 0.5 is supported)", nm, (double)beta);
        if (!(nd->alpha > 0)) return lfail(L, "node '%s': hardsigmoid alpha %g must be positive", nm, (double)nd->alpha);
    } else if (nd->op == GF_OP_LAYERNORM) {
        nd->eps = 1e-5f;
        GF_TRY(attr_float(L, attrs, nm, "eps", &nd->eps));
        if (!(nd->eps >= 0)) return lfail(L, "node '%s': eps %g is negative", nm, (double)nd->eps);
    } else if (nd->op == GF_OP_GELU) {
        const cJSON *ap = attrs ? cJSON_GetObjectItemCaseSensitive(attrs, "approximate") : NULL;
        if (ap && (!cJSON_IsString(ap) || (strcmp(ap->valuestring, "none") && strcmp(ap->valuestring, "tanh"))))
            return lfail(L, "node '%s': gelu attribute 'approximate' must be \"none\" or \"tanh\"", nm);
        nd->approx_tanh = ap && !strcmp(ap->valuestring, "tanh");
    } else if (nd->op == GF_OP_SHUFFLE) {
        GF_TRY(attr_ints(L, attrs, nm, "groups", 1, 1, 1 << 24, &nd->groups, 1));
    } else if (nd->op == GF_OP_SLICE) {
        GF_TRY(attr_ints(L, attrs, nm, "start", 1, 0, 1 << 24, &nd->slice_start, 1));
        GF_TRY(attr_ints(L, attrs, nm, "end", 1, 1, 1 << 24, &nd->slice_end, 1));
        if (nd->slice_end <= nd->slice_start)
            return lfail(L, "node '%s': slice end %d must be past start %d", nm, nd->slice_end, nd->slice_start);
    } else if (nd->op == GF_OP_BATCHNORM) {
        GF_TRY(attr_float(L, attrs, nm, "eps", &nd->eps));
        if (!(nd->eps >= 0)) return lfail(L, "node '%s': eps %g is negative", nm, (double)nd->eps);
    }
    return GF_OK;
}

/* tensor t must have exactly the given dims */
static gf_status want_shape(loader *L, const gf_node *nd, int slot, int ndim, const int64_t *dims) {
    const gf_st_tensor *t = &L->f.t[nd->param[slot]];
    int ok = t->ndim == ndim;  /* dims[d] < 0: any size */
    for (int d = 0; ok && d < ndim; d++) ok = dims[d] < 0 || t->shape[d] == dims[d];
    if (ok) return GF_OK;
    char got[128] = "", exp[128] = "";
    size_t g = 0, e = 0;
    for (int d = 0; d < t->ndim && g < sizeof got - 24; d++)
        g += (size_t)snprintf(got + g, sizeof got - g, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    for (int d = 0; d < ndim && e < sizeof exp - 24; d++)
        e += dims[d] < 0 ? (size_t)snprintf(exp + e, sizeof exp - e, "%s*", d ? ", " : "")
                         : (size_t)snprintf(exp + e, sizeof exp - e, "%s%lld", d ? ", " : "", (long long)dims[d]);
    return lfail(L, "node '%s': tensor '%s' (%s) has shape [%s], the graph needs [%s]", nd->name, t->name,
                 pnames[slot], got, exp);
}

static gf_status infer_shape(loader *L, gf_model *m, int i) {
    gf_node *nd = &m->nodes[i];
    int src = nd->in[0];
    int c, h, w;
    if (src == GF_NODE_INPUT) { c = m->in_c; h = m->in_h; w = m->in_w; }
    else { c = m->nodes[src].c; h = m->nodes[src].h; w = m->nodes[src].w; }
    nd->in_c = c; nd->in_h = h; nd->in_w = w;
    nd->c = c; nd->h = h; nd->w = w;
    nd->flat = src == GF_NODE_INPUT ? 0 : m->nodes[src].flat;
    const gf_st_tensor *W = nd->param[GF_P_WEIGHT] >= 0 ? &L->f.t[nd->param[GF_P_WEIGHT]] : NULL;
    switch (nd->op) {
    case GF_OP_CONV: {
        if (W->ndim != 4) return lfail(L, "node '%s': conv weight '%s' must have 4 dimensions [out, in/groups, kh, kw]", nd->name, W->name);
        int64_t o = W->shape[0], kh = W->shape[2], kw = W->shape[3], g = nd->groups;
        if (o < 1 || kh < 1 || kw < 1 || o > (1 << 24) || kh > 65536 || kw > 65536)
            return lfail(L, "node '%s': conv weight '%s' has shape [%lld, *, %lld, %lld]: output channels must be 1 to "
                         "16777216 and kernel sizes 1 to 65536", nd->name, W->name, (long long)o, (long long)kh,
                         (long long)kw);
        if (c % g || o % g)
            return lfail(L, "node '%s': groups %lld must divide input channels %d and output channels %lld", nd->name,
                         (long long)g, c, (long long)o);
        int64_t dims[4] = {-1, c / g, -1, -1};
        GF_TRY(want_shape(L, nd, GF_P_WEIGHT, 4, dims));
        if (nd->param[GF_P_BIAS] >= 0) GF_TRY(want_shape(L, nd, GF_P_BIAS, 1, &o));
        nd->kernel[0] = (int)kh; nd->kernel[1] = (int)kw;
        int64_t eh = (int64_t)nd->dil[0] * (kh - 1) + 1, ew = (int64_t)nd->dil[1] * (kw - 1) + 1;
        int64_t ph = (int64_t)h + nd->pad[0] + nd->pad[2], pw = (int64_t)w + nd->pad[1] + nd->pad[3];
        if (ph < eh || pw < ew)
            return lfail(L, "node '%s': %lldx%lld kernel larger than the padded %lldx%lld input", nd->name,
                         (long long)eh, (long long)ew, (long long)ph, (long long)pw);
        nd->c = (int)o;
        nd->h = (int)((ph - eh) / nd->stride[0] + 1);
        nd->w = (int)((pw - ew) / nd->stride[1] + 1);
        nd->flat = 0;
        nd->macs = (double)o * nd->h * nd->w * (double)(c / g) * (double)(kh * kw);
        break;
    }
    case GF_OP_LINEAR: {
        int64_t in = (int64_t)c * h * w;
        if (W->ndim != 2) return lfail(L, "node '%s': linear weight '%s' must have 2 dimensions [out, in]", nd->name, W->name);
        int64_t o = W->shape[0];
        if (o < 1 || o > (1 << 26)) return lfail(L, "node '%s': %lld outputs out of range", nd->name, (long long)o);
        int64_t dims[2] = {-1, in};
        GF_TRY(want_shape(L, nd, GF_P_WEIGHT, 2, dims));
        if (nd->param[GF_P_BIAS] >= 0) GF_TRY(want_shape(L, nd, GF_P_BIAS, 1, &o));
        nd->c = (int)o; nd->h = nd->w = 1; nd->flat = 1;
        nd->macs = (double)o * (double)in;
        break;
    }
    case GF_OP_BATCHNORM: {
        int64_t cc = c;
        for (int p = 0; p < GF_P_COUNT; p++)
            if (nd->param[p] >= 0) GF_TRY(want_shape(L, nd, p, 1, &cc));
        break;
    }
    case GF_OP_MAXPOOL:
    case GF_OP_AVGPOOL: {
        if (nd->flat) return lfail(L, "node '%s': pooling needs a spatial input", nd->name);
        for (int a = 0; a < 2; a++)
            if (nd->pad[a] >= nd->kernel[a] || nd->pad[a + 2] >= nd->kernel[a])
                return lfail(L, "node '%s': padding must be smaller than the %dx%d window", nd->name, nd->kernel[0], nd->kernel[1]);
        int64_t ph = (int64_t)h + nd->pad[0] + nd->pad[2], pw = (int64_t)w + nd->pad[1] + nd->pad[3];
        if (ph < nd->kernel[0] || pw < nd->kernel[1])
            return lfail(L, "node '%s': %dx%d window larger than the padded %lldx%lld input", nd->name, nd->kernel[0],
                         nd->kernel[1], (long long)ph, (long long)pw);
        nd->h = (int)((ph - nd->kernel[0]) / nd->stride[0] + 1);
        nd->w = (int)((pw - nd->kernel[1]) / nd->stride[1] + 1);
        break;
    }
    case GF_OP_GAP:
        nd->h = nd->w = 1; nd->flat = 1;
        break;
    case GF_OP_FLATTEN:
        if ((int64_t)c * h * w > MAX_ACT) return lfail(L, "node '%s': output too large", nd->name);
        nd->c = c * h * w; nd->h = nd->w = 1; nd->flat = 1;
        break;
    case GF_OP_ADD: {
        int o = nd->in[1];
        int c2 = o == GF_NODE_INPUT ? m->in_c : m->nodes[o].c, h2 = o == GF_NODE_INPUT ? m->in_h : m->nodes[o].h,
            w2 = o == GF_NODE_INPUT ? m->in_w : m->nodes[o].w;
        if (c2 != c || h2 != h || w2 != w)
            return lfail(L, "node '%s': add of shapes [%d, %d, %d] and [%d, %d, %d]", nd->name, c, h, w, c2, h2, w2);
        break;
    }
    case GF_OP_LAYERNORM:
        if (nd->flat && (h != 1 || w != 1)) return lfail(L, "node '%s': layernorm needs a [C, H, W] input", nd->name);
        break;
    case GF_OP_MUL: {
        int o = nd->in[1];
        int c2 = o == GF_NODE_INPUT ? m->in_c : m->nodes[o].c, h2 = o == GF_NODE_INPUT ? m->in_h : m->nodes[o].h,
            w2 = o == GF_NODE_INPUT ? m->in_w : m->nodes[o].w;
        if (c2 == c && h2 == h && w2 == w) break;                 /* elementwise */
        if (c2 == c && h2 == 1 && w2 == 1) { nd->gate = 1; break; }   /* x * gate */
        if (c2 == c && h == 1 && w == 1) {                         /* gate * x: swap (the product commutes) */
            int t = nd->in[0]; nd->in[0] = nd->in[1]; nd->in[1] = t;
            nd->gate = 1;
            nd->in_c = c2; nd->in_h = h2; nd->in_w = w2;
            nd->c = c2; nd->h = h2; nd->w = w2;
            nd->flat = o == GF_NODE_INPUT ? 0 : m->nodes[o].flat;
            break;
        }
        return lfail(L, "node '%s': mul of shapes [%d, %d, %d] and [%d, %d, %d] (needs equal shapes, or one a "
                     "per-channel gate [C, 1, 1] of the other)", nd->name, c, h, w, c2, h2, w2);
    }
    case GF_OP_CONCAT: {
        int64_t total = 0;
        for (int a = 0; a < nd->n_in; a++) {
            int o = nd->in[a];
            int c2 = o == GF_NODE_INPUT ? m->in_c : m->nodes[o].c, h2 = o == GF_NODE_INPUT ? m->in_h : m->nodes[o].h,
                w2 = o == GF_NODE_INPUT ? m->in_w : m->nodes[o].w;
            if (h2 != h || w2 != w)
                return lfail(L, "node '%s': concat input %d is %dx%d, input 0 is %dx%d (they must match)", nd->name, a,
                             h2, w2, h, w);
            total += c2;
        }
        if (total * h * w > MAX_ACT) return lfail(L, "node '%s': output too large", nd->name);
        nd->c = (int)total;
        break;
    }
    case GF_OP_SHUFFLE:
        if (c % nd->groups)
            return lfail(L, "node '%s': shuffle of %d channels in %d groups (groups must divide the channels)", nd->name,
                         c, nd->groups);
        break;
    case GF_OP_SLICE:
        if (nd->slice_end > c)
            return lfail(L, "node '%s': slice of channels %d..%d of a %d-channel input", nd->name, nd->slice_start,
                         nd->slice_end, c);
        nd->c = nd->slice_end - nd->slice_start;
        break;
    case GF_OP_SOFTMAX:
        if (h != 1 || w != 1) return lfail(L, "node '%s': softmax needs a flat input (got [%d, %d, %d])", nd->name, c, h, w);
        nd->flat = 1;
        break;
    default:
        break;
    }
    if (nd->c < 1 || nd->h < 1 || nd->w < 1 || (int64_t)nd->c * nd->h * nd->w > MAX_ACT)
        return lfail(L, "node '%s': output shape [%d, %d, %d] out of range", nd->name, nd->c, nd->h, nd->w);
    return GF_OK;
}

/* name -> node index (topological), GF_NODE_INPUT for the input, -2 if none */
static int lookup(const gf_model *m, const char *name) {
    if (m->input_name && !strcmp(name, m->input_name)) return GF_NODE_INPUT;
    for (int i = 0; i < m->n_nodes; i++)
        if (!strcmp(m->nodes[i].name, name)) return i;
    return -2;
}

static gf_status parse_graph(loader *L, gf_model *m, const char *gjson, cJSON **groot) {
    cJSON *g = cJSON_Parse(gjson);
    *groot = g;
    if (!g) return lfail(L, "gradfeat.graph is not valid JSON");
    if (!cJSON_IsObject(g)) return lfail(L, "gradfeat.graph is valid JSON but not an object (it must be {\"input\": ..., \"nodes\": [...]})");
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(g, "input");
    const cJSON *iname = in ? cJSON_GetObjectItemCaseSensitive(in, "name") : NULL;
    const cJSON *ishape = in ? cJSON_GetObjectItemCaseSensitive(in, "shape") : NULL;
    if (!cJSON_IsString(iname) || !cJSON_IsArray(ishape) || cJSON_GetArraySize(ishape) != 3)
        return lfail(L, "gradfeat.graph: input needs a name and a shape [C, H, W]");
    int sh[3];
    for (int k = 0; k < 3; k++) {
        const cJSON *v = cJSON_GetArrayItem(ishape, k);
        if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 65536 || v->valuedouble != (int)v->valuedouble)
            return lfail(L, "gradfeat.graph: input shape[%d] is not a positive integer", k);
        sh[k] = (int)v->valuedouble;
    }
    if ((int64_t)sh[0] * sh[1] * sh[2] > MAX_ACT) return lfail(L, "gradfeat.graph: input shape too large");
    m->in_c = sh[0]; m->in_h = sh[1]; m->in_w = sh[2];
    m->input_name = strdup(iname->valuestring);
    if (!m->input_name) return GF_ERR_MEMORY;

    const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(g, "nodes");
    if (!cJSON_IsArray(nodes) || cJSON_GetArraySize(nodes) < 1) return lfail(L, "gradfeat.graph: no nodes");
    int n = cJSON_GetArraySize(nodes);
    if (n > 100000) return lfail(L, "gradfeat.graph: %d nodes (limit 100000)", n);
    gf_node *tmp = calloc((size_t)n, sizeof *tmp);
    rawnode *raw = calloc((size_t)n, sizeof *raw);
    int *order = malloc((size_t)n * sizeof *order), *indeg = calloc((size_t)n, sizeof *indeg);
    int *rin = malloc((size_t)n * GF_MAX_INPUTS * sizeof *rin), *pos = malloc((size_t)n * sizeof *pos);
    gf_status st = GF_OK;
    if (!tmp || !raw || !order || !indeg || !rin || !pos) { st = GF_ERR_MEMORY; goto done; }
    m->nodes = tmp;
    int k = 0;
    for (const cJSON *j = nodes->child; j; j = j->next, k++) {
        m->n_nodes = k + 1;
        if ((st = parse_node(L, j, &tmp[k], &raw[k])) != GF_OK) goto done;
        if (!strcmp(tmp[k].name, m->input_name)) { st = lfail(L, "node '%s': name clashes with the graph input", tmp[k].name); goto done; }
        for (int q = 0; q < k; q++)
            if (!strcmp(tmp[q].name, tmp[k].name)) { st = lfail(L, "node '%s': name used twice", tmp[k].name); goto done; }
    }
    /* resolve inputs to file-order indices */
    for (int i = 0; i < n; i++) {
        for (int a = 0; a < tmp[i].n_in; a++) {
            int r = lookup(m, raw[i].in_names[a]);
            if (r == -2) { st = lfail(L, "node '%s': input '%s' is not defined", tmp[i].name, raw[i].in_names[a]); goto done; }
            if (r == i) { st = lfail(L, "node '%s': consumes its own output (cycle)", tmp[i].name); goto done; }
            rin[GF_MAX_INPUTS * i + a] = r;
            if (r >= 0) indeg[i]++;
        }
    }
    /* Kahn's algorithm; the file order breaks ties (stable) */
    int done_n = 0;
    for (int i = 0; i < n; i++) pos[i] = -1;
    for (int pass = 0; done_n < n; pass++) {
        int progressed = 0;
        for (int i = 0; i < n; i++) {
            if (pos[i] >= 0 || indeg[i]) continue;
            pos[i] = done_n;
            order[done_n++] = i;
            progressed = 1;
            for (int j = 0; j < n; j++)
                for (int a = 0; a < tmp[j].n_in; a++)
                    if (rin[GF_MAX_INPUTS * j + a] == i) indeg[j]--;
        }
        if (!progressed) {
            /* every node left has an unplaced input: walking inputs n steps lands on a cycle */
            int v = 0;
            while (pos[v] >= 0) v++;
            for (int step = 0; step < n; step++)
                for (int a = 0; a < tmp[v].n_in; a++)
                    if (rin[GF_MAX_INPUTS * v + a] >= 0 && pos[rin[GF_MAX_INPUTS * v + a]] < 0) { v = rin[GF_MAX_INPUTS * v + a]; break; }
            char path[512];
            size_t pl = 0;
            int u = v;
            do {
                pl += (size_t)snprintf(path + pl, sizeof path - pl, "'%s' <- ", tmp[u].name);
                for (int a = 0; a < tmp[u].n_in; a++)
                    if (rin[GF_MAX_INPUTS * u + a] >= 0 && pos[rin[GF_MAX_INPUTS * u + a]] < 0) { u = rin[GF_MAX_INPUTS * u + a]; break; }
            } while (u != v && pl < sizeof path - 80);
            snprintf(path + pl, sizeof path - pl, "'%s'", tmp[v].name);
            st = lfail(L, "graph has a cycle: %s", path);
            goto done;
        }
    }
    /* permute into topological order */
    gf_node *sorted = calloc((size_t)n, sizeof *sorted);
    if (!sorted) { st = GF_ERR_MEMORY; goto done; }
    for (int t = 0; t < n; t++) {
        int i = order[t];
        sorted[t] = tmp[i];
        for (int a = 0; a < tmp[i].n_in; a++) sorted[t].in[a] = rin[GF_MAX_INPUTS * i + a] >= 0 ? pos[rin[GF_MAX_INPUTS * i + a]] : GF_NODE_INPUT;
    }
    free(tmp);
    tmp = NULL;
    m->nodes = sorted;
    for (int i = 0; i < n; i++) {
        sorted[i].alias = i;
        for (int a = 0; a < sorted[i].n_in; a++)
            if (sorted[i].in[a] >= 0) sorted[sorted[i].in[a]].n_consumers++;
    }
    for (int i = 0; i < n; i++)
        if ((st = infer_shape(L, m, i)) != GF_OK) goto done;
done:  /* on failure m->nodes (tmp or sorted) is freed by gf_model_free */
    free(raw); free(order); free(indeg); free(rin); free(pos);
    if (st == GF_ERR_MEMORY) lfail(L, "out of memory while reading the graph");
    return st;
}

static gf_status parse_outputs(loader *L, gf_model *m, const cJSON *g) {
    const cJSON *outs = cJSON_GetObjectItemCaseSensitive(g, "outputs");
    if (!cJSON_IsArray(outs) || cJSON_GetArraySize(outs) < 1) return lfail(L, "gradfeat.graph: 'outputs' must name at least one node");
    int n = cJSON_GetArraySize(outs);
    m->outputs = calloc((size_t)n, sizeof *m->outputs);
    if (!m->outputs) return GF_ERR_MEMORY;
    for (int i = 0; i < n; i++) {
        const cJSON *s = cJSON_GetArrayItem(outs, i);
        int r = cJSON_IsString(s) ? lookup(m, s->valuestring) : -2;
        if (r < 0) return lfail(L, "gradfeat.graph: output '%s' is not a node", cJSON_IsString(s) ? s->valuestring : "?");
        m->outputs[m->n_outputs++] = r;
    }
    m->feature = -2;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(g, "feature");
    if (f && !cJSON_IsNull(f)) {
        int r = cJSON_IsString(f) ? lookup(m, f->valuestring) : -2;
        if (r < 0) return lfail(L, "gradfeat.graph: feature '%s' is not a node", cJSON_IsString(f) ? f->valuestring : "?");
        m->feature = r;
    }
    for (int i = 0; i < m->n_nodes; i++)
        if (m->nodes[i].op == GF_OP_SOFTMAX && m->nodes[i].n_consumers)
            return lfail(L, "node '%s': softmax is inference-only and must not feed other nodes", m->nodes[i].name);
    return GF_OK;
}

static gf_status parse_preprocess(loader *L, gf_model *m, const char *s) {
    gf_preprocess *p = &m->pre;
    gf_preprocess_init(p, m->in_w, m->in_h, m->in_c == 1 ? 1 : 3);
    if (!s) return GF_OK;
    cJSON *j = cJSON_Parse(s);
    gf_status st = GF_OK;
    if (!cJSON_IsObject(j)) { st = lfail(L, "gradfeat.preprocess is not a JSON object"); goto out; }
    const cJSON *v;
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "input_size"))) {
        if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2 || !cJSON_IsNumber(cJSON_GetArrayItem(v, 0)) ||
            !cJSON_IsNumber(cJSON_GetArrayItem(v, 1))) { st = lfail(L, "gradfeat.preprocess: input_size must be [H, W]"); goto out; }
        p->height = cJSON_GetArrayItem(v, 0)->valueint;
        p->width = cJSON_GetArrayItem(v, 1)->valueint;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "channels")) && cJSON_IsNumber(v)) p->channels = v->valueint;
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "color_order")) && cJSON_IsString(v)) {
        if (!strcmp(v->valuestring, "BGR")) p->bgr = 1;
        else if (!strcmp(v->valuestring, "GRAY")) p->channels = 1;
        else if (strcmp(v->valuestring, "RGB")) { st = lfail(L, "gradfeat.preprocess: color_order '%s' (RGB, BGR or GRAY)", v->valuestring); goto out; }
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "resize")) && cJSON_IsString(v)) {
        if (!strcmp(v->valuestring, "stretch")) p->resize = GF_RESIZE_STRETCH;
        else if (!strcmp(v->valuestring, "shorter_center_crop")) p->resize = GF_RESIZE_SHORTER_CROP;
        else { st = lfail(L, "gradfeat.preprocess: resize '%s' (stretch or shorter_center_crop)", v->valuestring); goto out; }
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "resize_shorter")) && cJSON_IsNumber(v)) p->resize_shorter = v->valueint;
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "interpolation")) && cJSON_IsString(v)) {
        if (!strcmp(v->valuestring, "bilinear")) p->interp = GF_INTERP_BILINEAR;
        else if (!strcmp(v->valuestring, "bilinear_noaa")) p->interp = GF_INTERP_BILINEAR_NOAA;
        else if (!strcmp(v->valuestring, "bilinear_tf_legacy")) p->interp = GF_INTERP_BILINEAR_TF_LEGACY;
        else if (!strcmp(v->valuestring, "nearest")) p->interp = GF_INTERP_NEAREST;
        else { st = lfail(L, "gradfeat.preprocess: interpolation '%s' unknown", v->valuestring); goto out; }
    }
    const cJSON *mean = cJSON_GetObjectItemCaseSensitive(j, "mean"), *std = cJSON_GetObjectItemCaseSensitive(j, "std");
    const cJSON *scale = cJSON_GetObjectItemCaseSensitive(j, "scale"), *off = cJSON_GetObjectItemCaseSensitive(j, "offset");
    /* file: x in [0,1] then (x-mean)/std or x*scale+offset; struct: pixel 0..255 */
    if (mean || std) {
        for (int c = 0; c < p->channels; c++) {
            const cJSON *a = cJSON_GetArrayItem(mean, c), *b = cJSON_GetArrayItem(std, c);
            if (!cJSON_IsNumber(a) || !cJSON_IsNumber(b)) { st = lfail(L, "gradfeat.preprocess: mean/std need %d numbers each", p->channels); goto out; }
            p->mean[c] = (float)a->valuedouble;
            p->std[c] = (float)b->valuedouble;
        }
    }
    if (scale || off) {
        if ((scale && !cJSON_IsNumber(scale)) || (off && !cJSON_IsNumber(off))) { st = lfail(L, "gradfeat.preprocess: scale/offset must be numbers"); goto out; }
        p->scale = (float)((scale ? scale->valuedouble : 1.0) / 255.0);
        p->offset = off ? (float)off->valuedouble : 0.0f;
    }
    if (p->channels != m->in_c || p->height != m->in_h || p->width != m->in_w) {
        st = lfail(L, "gradfeat.preprocess: gives %dx%dx%d images but the graph input is [%d, %d, %d]", p->channels,
                   p->height, p->width, m->in_c, m->in_h, m->in_w);
        goto out;
    }
    char e[256];
    if (gf_preprocess_check(p, e, sizeof e) != GF_OK) st = lfail(L, "gradfeat.preprocess: %s", e);
out:
    cJSON_Delete(j);
    return st;
}

static gf_status parse_classes(loader *L, gf_model *m, const char *s) {
    if (!s) return GF_OK;
    cJSON *j = cJSON_Parse(s);
    gf_status st = GF_OK;
    if (!cJSON_IsArray(j)) { st = lfail(L, "gradfeat.classes is not a JSON array"); goto out; }
    int n = cJSON_GetArraySize(j);
    if (n) {
        const gf_node *o = &m->nodes[m->outputs[0]];
        if (n != o->c * o->h * o->w) { st = lfail(L, "gradfeat.classes has %d names but output '%s' has %d units", n, o->name, o->c * o->h * o->w); goto out; }
        m->classes = calloc((size_t)n, sizeof *m->classes);
        if (!m->classes) { st = GF_ERR_MEMORY; goto out; }
        for (int i = 0; i < n; i++) {
            const cJSON *c = cJSON_GetArrayItem(j, i);
            if (!cJSON_IsString(c)) { st = lfail(L, "gradfeat.classes[%d] is not a string", i); goto out; }
            if (!(m->classes[i] = strdup(c->valuestring))) { st = GF_ERR_MEMORY; goto out; }
            m->n_classes = i + 1;
        }
    }
out:
    cJSON_Delete(j);
    return st;
}

/* ---------------------------------------------------- data + BN folding */

static gf_status read_tensor(loader *L, FILE *fp, int t, float **out) {
    if (t < 0) { *out = NULL; return GF_OK; }
    const gf_st_tensor *T = &L->f.t[t];
    *out = malloc(T->numel ? (size_t)T->numel * sizeof(float) : sizeof(float));
    if (!*out) return GF_ERR_MEMORY;
    return gf_st_read_f32(&L->f, fp, t, *out, L->err, L->errsz);
}

static int referenced_elsewhere(const gf_model *m, int node) {
    for (int i = 0; i < m->n_outputs; i++)
        if (m->outputs[i] == node) return 1;
    return m->feature == node;
}

int gf_model_bn_foldable(const gf_model *m, int i) {
    const gf_node *nd = &m->nodes[i];
    int p = nd->in[0];
    return nd->op == GF_OP_BATCHNORM && p >= 0 && (m->nodes[p].op == GF_OP_CONV || m->nodes[p].op == GF_OP_LINEAR) &&
           m->nodes[p].n_consumers == 1 && !referenced_elsewhere(m, p);
}

static gf_status load_data(loader *L, gf_model *m) {
    FILE *fp = L->mem ? fmemopen((void *)(uintptr_t)L->mem, L->mem_n, "rb") : gf_fopen_regular(L->path, NULL, 0);
    if (!fp) return lfail(L, "cannot reopen to read tensors");
    gf_status st = GF_OK;
    for (int i = 0; i < m->n_nodes && st == GF_OK; i++) {
        gf_node *nd = &m->nodes[i];
        if (nd->op == GF_OP_CONV || nd->op == GF_OP_LINEAR) {
            st = read_tensor(L, fp, nd->param[GF_P_WEIGHT], &nd->W);
            if (st == GF_OK) st = read_tensor(L, fp, nd->param[GF_P_BIAS], &nd->b);
            nd->w_count = (size_t)L->f.t[nd->param[GF_P_WEIGHT]].numel;
        } else if (nd->op == GF_OP_BATCHNORM) {
            float *v[GF_P_COUNT] = {0};
            for (int p = 0; p < GF_P_COUNT && st == GF_OK; p++) st = read_tensor(L, fp, nd->param[p], &v[p]);
            int C = nd->c;
            float *ones = NULL, *zeros = NULL;
            if (st == GF_OK && (!v[GF_P_WEIGHT] || !v[GF_P_BIAS])) {
                ones = malloc((size_t)C * sizeof *ones);
                zeros = calloc((size_t)C, sizeof *zeros);
                if (!ones || !zeros) st = GF_ERR_MEMORY;
                else for (int c = 0; c < C; c++) ones[c] = 1.0f;
            }
            const float *gamma = v[GF_P_WEIGHT] ? v[GF_P_WEIGHT] : ones, *beta = v[GF_P_BIAS] ? v[GF_P_BIAS] : zeros;
            int p = nd->in[0];
            if (st == GF_OK && gf_model_bn_foldable(m, i)) {
                gf_node *pr = &m->nodes[p];
                if (!pr->b && !(pr->b = calloc((size_t)pr->c, sizeof(float)))) st = GF_ERR_MEMORY;
                else if (gf_bn_fold(NULL, pr->W, pr->b, pr->b, pr->c, pr->w_count / (size_t)pr->c, gamma, beta,
                                    v[GF_P_MEAN], v[GF_P_VAR], nd->eps) != GF_OK)
                    st = lfail(L, "node '%s': cannot fold batchnorm (running_var + eps not positive or a value not finite)", nd->name);
                nd->folded = 1;
                nd->alias = pr->alias;
            } else if (st == GF_OK) {  /* standalone: per-channel 1x1 depthwise conv */
                nd->as_conv = 1;
                nd->W = malloc((size_t)C * sizeof(float));
                nd->b = malloc((size_t)C * sizeof(float));
                nd->w_count = (size_t)C;
                if (!nd->W || !nd->b) st = GF_ERR_MEMORY;
                else {
                    for (int c = 0; c < C; c++) nd->W[c] = 1.0f;
                    if (gf_bn_fold(NULL, nd->W, NULL, nd->b, C, 1, gamma, beta, v[GF_P_MEAN], v[GF_P_VAR], nd->eps) != GF_OK)
                        st = lfail(L, "node '%s': batchnorm running_var + eps not positive or a value not finite", nd->name);
                }
                nd->macs = (double)C * nd->h * nd->w;
            }
            for (int q = 0; q < GF_P_COUNT; q++) free(v[q]);
            free(ones);
            free(zeros);
        }
    }
    fclose(fp);
    if (st == GF_ERR_MEMORY) lfail(L, "out of memory reading the tensors");
    return st;
}

/* Each node's kind and executable fields (ir.h), once its parameters are in: what the executor runs. A conv's
 * geometry is checked where it runs (gf_conv_desc_check); a standalone batchnorm is a per-channel 1x1 depthwise
 * conv (stride, pad and dilation at their defaults), a folded one is not run, nor is softmax (read-back). */
static void lower(gf_node *nd) {
    int bn = nd->op == GF_OP_BATCHNORM;
    nd->kind = bn && nd->as_conv ? GF_K_CONV : ops[nd->op].kind;
    nd->has_bias = nd->b != NULL;
    gf_op_act(nd, &nd->act);
    nd->lin_in = nd->in_c * nd->in_h * nd->in_w;
    nd->lin_out = nd->c;
    if (nd->kind == GF_K_CONV)
        (void)gf_conv_desc_init(NULL, &nd->conv, 1, nd->in_c, nd->in_h, nd->in_w, nd->c, bn ? 1 : nd->kernel[0],
                                bn ? 1 : nd->kernel[1], nd->stride[0], nd->stride[1], nd->pad[0], nd->pad[2], nd->pad[1],
                                nd->pad[3], nd->dil[0], nd->dil[1], bn ? nd->c : nd->groups);
}

/* ------------------------------------------------------------ public API */

void gf_model_free(gf_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_nodes; i++) {
        free(m->nodes[i].W);
        free(m->nodes[i].b);
    }
    free(m->nodes);
    for (int i = 0; i < m->n_classes; i++) free(m->classes[i]);
    free(m->classes);
    for (int i = 0; i < m->n_blocks; i++) { free(m->blocks[i].name); free(m->blocks[i].nodes); }
    free(m->blocks);
    free(m->outputs);
    free(m->input_name);
    free(m->path);
    free(m);
}

const char *gf_model_error(const gf_model *m) { return m ? m->err : "out of memory"; }

gf_status gf_model_load(gf_ctx *ctx, const char *path, gf_model **out) {
    *out = NULL;
    gf_model *m = calloc(1, sizeof *m);
    if (!m) return ctx ? gf_fail(ctx, GF_ERR_MEMORY, "%s: out of memory", path) : GF_ERR_MEMORY;
    *out = m;
    m->feature = -2;
    loader L = {.m = m, .err = m->err, .errsz = sizeof m->err, .path = path};
    cJSON *g = NULL;
    gf_sink image = {0};
    gf_status st;
    if (gf_onnx_path(path)) {   /* ONNX: the file image of the model tools/convert_onnx.py would write, read from memory */
        cJSON *hdr = NULL;
        gf_sink data = {0};
        st = gf_onnx_import(path, &hdr, &data, m->err, sizeof m->err);
        if (st == GF_OK && gf_st_serialize(hdr, &data, &image, 0) != GF_OK) st = lfail(&L, "out of memory importing the model");
        cJSON_Delete(hdr);
        free(data.p);
        L.mem = image.p;
        L.mem_n = image.n;
        if (st == GF_OK) st = gf_st_open_mem(image.p, image.n, path, &L.f, m->err, sizeof m->err);
    } else {
        st = gf_st_open(path, &L.f, m->err, sizeof m->err);
    }
    if (st == GF_OK) {
        m->n_tensors = L.f.n;
        const char *ver = gf_st_meta(&L.f, "gradfeat.format_version");
        const char *graph = gf_st_meta(&L.f, "gradfeat.graph");
        if (!L.f.meta) st = lfail(&L, "no __metadata__: a plain safetensors file, not a gradfeat model (see models/README.md)");
        else if (!ver) st = lfail(&L, "__metadata__ lacks gradfeat.format_version");
        else if (strcmp(ver, "1")) st = lfail(&L, "gradfeat.format_version '%s' not supported (this build reads 1)", ver);
        else if (!graph) st = lfail(&L, "__metadata__ lacks gradfeat.graph");
        if (st == GF_OK) st = parse_graph(&L, m, graph, &g);
        if (st == GF_OK) st = parse_outputs(&L, m, g);
        if (st == GF_OK) st = parse_preprocess(&L, m, gf_st_meta(&L.f, "gradfeat.preprocess"));
        if (st == GF_OK) st = parse_classes(&L, m, gf_st_meta(&L.f, "gradfeat.classes"));
        if (st == GF_OK) {
            char berr[512] = "";
            st = gf_model_find_blocks(m, cJSON_GetObjectItemCaseSensitive(g, "blocks"), berr, sizeof berr);
            if (st != GF_OK) lfail(&L, "%s", berr);
        }
        if (st == GF_OK) {  /* file-side parameter count (each referenced tensor once) */
            char *seen = calloc((size_t)L.f.n + 1, 1);
            if (!seen) st = GF_ERR_MEMORY;
            for (int i = 0; seen && i < m->n_nodes; i++)
                for (int p = 0; p < GF_P_COUNT; p++) {
                    int t = m->nodes[i].param[p];
                    if (t < 0) continue;
                    m->nodes[i].file_params += L.f.t[t].numel;
                    if (!seen[t]) { seen[t] = 1; m->n_params += L.f.t[t].numel; }
                }
            free(seen);
        }
        if (st == GF_OK) st = load_data(&L, m);  /* first allocation sized by the file */
        if (st == GF_OK) {
            for (int i = 0; i < m->n_nodes; i++) lower(&m->nodes[i]);
            for (int i = 0; i < m->n_nodes; i++) m->macs += m->nodes[i].folded ? 0 : m->nodes[i].macs;
            gf_model_block_costs(m);
            m->path = strdup(path);
        }
    }
    cJSON_Delete(g);
    gf_st_close(&L.f);
    free(image.p);
    if (st != GF_OK) {
        if (!m->err[0]) snprintf(m->err, sizeof m->err, "%s: %s", path, gf_status_name(st));
        if (ctx) gf_fail(ctx, st, "%s", m->err);
        /* keep only the message */
        char keep[sizeof m->err];
        memcpy(keep, m->err, sizeof keep);
        gf_model_free(m);
        m = calloc(1, sizeof *m);
        if (m) memcpy(m->err, keep, sizeof keep);
        *out = m;
        return st;
    }
    m->err[0] = 0;
    return GF_OK;
}

void gf_model_get_info(const gf_model *m, gf_model_info *info) {
    memset(info, 0, sizeof *info);
    if (!m) return;
    info->path = m->path;
    info->in_c = m->in_c; info->in_h = m->in_h; info->in_w = m->in_w;
    info->n_nodes = m->n_nodes;
    info->n_tensors = m->n_tensors;
    info->n_params = m->n_params;
    info->macs = m->macs;
    info->n_outputs = m->n_outputs;
    info->n_classes = m->n_classes;
    info->n_blocks = 0;
    for (int i = 0; i < m->n_blocks; i++) info->n_blocks += !m->blocks[i].span;
    info->n_spans = m->n_blocks - info->n_blocks;
    if (m->feature >= 0) {
        const gf_node *f = &m->nodes[m->feature];
        info->feature = f->name;
        info->feature_dim = f->c * f->h * f->w;
    }
    if (m->n_outputs) {
        const gf_node *o = &m->nodes[m->outputs[0]];
        info->out_dim = o->c * o->h * o->w;
    }
}

gf_status gf_model_node(const gf_model *m, int i, gf_node_info *ni) {
    memset(ni, 0, sizeof *ni);
    if (!m || i < 0 || i >= m->n_nodes) return GF_ERR_USAGE;
    const gf_node *nd = &m->nodes[i];
    ni->name = nd->name;
    ni->op = gf_op_name(nd->op);
    ni->n_inputs = nd->n_in;
    for (int a = 0; a < nd->n_in; a++) ni->inputs[a] = nd->in[a] >= 0 ? m->nodes[nd->in[a]].name : m->input_name;
    ni->c = nd->c; ni->h = nd->h; ni->w = nd->w; ni->flat = nd->flat;
    ni->params = nd->file_params;
    ni->macs = nd->folded ? 0 : nd->macs;
    ni->folded = nd->folded;
    switch (nd->op) {
    case GF_OP_CONV:
        snprintf(ni->detail, sizeof ni->detail, "%dx%d s%d,%d p[%d,%d,%d,%d]%s%s g%d %d->%d%s", nd->kernel[0], nd->kernel[1],
                 nd->stride[0], nd->stride[1], nd->pad[0], nd->pad[1], nd->pad[2], nd->pad[3],
                 nd->dil[0] > 1 || nd->dil[1] > 1 ? " dil" : "", "", nd->groups, nd->in_c, nd->c, nd->b ? " +b" : "");
        break;
    case GF_OP_LINEAR:
        snprintf(ni->detail, sizeof ni->detail, "%d->%d", nd->in_c * nd->in_h * nd->in_w, nd->c);
        break;
    case GF_OP_MAXPOOL:
    case GF_OP_AVGPOOL:
        snprintf(ni->detail, sizeof ni->detail, "%dx%d s%d,%d p[%d,%d,%d,%d]%s", nd->kernel[0], nd->kernel[1], nd->stride[0],
                 nd->stride[1], nd->pad[0], nd->pad[1], nd->pad[2], nd->pad[3],
                 nd->op == GF_OP_AVGPOOL && !nd->count_include_pad ? " excl-pad" : "");
        break;
    case GF_OP_LAYERNORM:
        snprintf(ni->detail, sizeof ni->detail, "over channels, eps %g", (double)nd->eps);
        break;
    case GF_OP_BATCHNORM:
        snprintf(ni->detail, sizeof ni->detail, "eps %g%s", (double)nd->eps,
                 nd->folded ? " (folded)" : nd->as_conv ? " (as 1x1 dw conv)" : "");
        break;
    case GF_OP_LEAKY:
    case GF_OP_HSIGMOID:
        snprintf(ni->detail, sizeof ni->detail, "alpha %g", (double)nd->alpha);
        break;
    case GF_OP_SHUFFLE:
        snprintf(ni->detail, sizeof ni->detail, "%d groups", nd->groups);
        break;
    case GF_OP_SLICE:
        snprintf(ni->detail, sizeof ni->detail, "channels %d..%d", nd->slice_start, nd->slice_end - 1);
        break;
    case GF_OP_GELU:
        snprintf(ni->detail, sizeof ni->detail, "%s", nd->approx_tanh ? "tanh approximation" : "erf");
        break;
    case GF_OP_MUL:
        snprintf(ni->detail, sizeof ni->detail, "%s", nd->gate ? "per-channel gate" : "elementwise");
        break;
    default:
        break;
    }
    return GF_OK;
}

int gf_model_find_node(const gf_model *m, const char *name) {
    if (!m || !name) return -1;
    for (int i = 0; i < m->n_nodes; i++)
        if (!strcmp(m->nodes[i].name, name)) return i;
    return -1;
}

const char *gf_model_output_name(const gf_model *m, int i) {
    return m && i >= 0 && i < m->n_outputs ? m->nodes[m->outputs[i]].name : NULL;
}

const char *gf_model_class_name(const gf_model *m, int k) {
    return m && k >= 0 && k < m->n_classes ? m->classes[k] : NULL;
}

const gf_preprocess *gf_model_preprocess(const gf_model *m) { return m ? &m->pre : NULL; }

gf_status gf_model_block(const gf_model *m, int i, gf_block_info *bi) {
    memset(bi, 0, sizeof *bi);
    if (!m || i < 0 || i >= m->n_blocks) return GF_ERR_USAGE;
    const gf_mblock *b = &m->blocks[i];
    bi->name = b->name;
    bi->input = b->input >= 0 ? m->nodes[b->input].name : m->input_name;
    bi->output = m->nodes[b->output].name;
    bi->n_nodes = b->n_nodes;
    bi->params = b->params;
    bi->macs = b->macs;
    return GF_OK;
}

int gf_model_find_block(const gf_model *m, const char *name) {
    if (!m || !name) return -1;
    int nb = 0;
    while (nb < m->n_blocks && !m->blocks[nb].span) nb++;
    for (int i = 0; i < m->n_blocks; i++)
        if (!strcmp(m->blocks[i].name, name)) {
            /* a lower block means it and every block above it (its span) */
            if (i > 0 && i < nb)
                for (int k = nb; k < m->n_blocks; k++)
                    if (m->blocks[k].input == m->blocks[i].input) return k;
            return i;
        }
    return -1;
}

int gf_model_top_blocks(const gf_model *m, int n) {
    if (!m || n < 1) return -1;
    int nb = 0;
    while (nb < m->n_blocks && !m->blocks[nb].span) nb++;
    if (n > nb) return -1;
    return gf_model_find_block(m, m->blocks[n - 1].name);
}

/* Same reader as the datasets (gfd_decode_file): size limits (256 MiB file,
 * 64 Mpx) and the truncated-JPEG/PNG and PNG-chunk checks stb_image lacks. */
gf_status gf_model_load_image(const gf_model *m, const char *path, float *out, char *err, size_t err_size) {
    gf_image img;
    char why[256];
    gf_status st = gfd_decode_file(path, 0, 0, &img, why, sizeof why);
    if (st != GF_OK) return gf_fail_msg(err, err_size, st, "%s: %s", path, why);
    st = gf_preprocess_u8(&m->pre, img.data, img.w, img.h, img.c, 0, out, err, err_size);
    gf_image_free(&img);
    return st;
}
