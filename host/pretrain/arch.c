/* Pretraining's networks: the architectures (small28, bigan, resnet18c) as one block of nodes, their
 * initialisation, the network being trained (block + head, BN statistics) and its export to a gradfeat
 * model file. See pretrain.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "data_internal.h"
#include "model.h"
#include "pretrain.h"
#include "gradfeat_train.h"

static const char *ARCH_NAMES[GF_ARCH_COUNT] = {"small28", "bigan", "resnet18c"};
/* the top block of each architecture: its name, its first node, and its cut */
static const char *ARCH_TOP[GF_ARCH_COUNT] = {"conv3", "conv5", "layer4.1"};
static const char *ARCH_TOP_FIRST[GF_ARCH_COUNT] = {"conv3", "conv5", "layer4.1.conv1"};
static const float LEAKY = 0.2f;

const char *gf_arch_name(gf_arch a) { return (unsigned)a < GF_ARCH_COUNT ? ARCH_NAMES[a] : "?"; }
int gf_arch_parse(const char *s) {
    for (int i = 0; s && i < GF_ARCH_COUNT; i++) if (!strcmp(s, ARCH_NAMES[i])) return i;
    return -1;
}
int gf_pretrain_arch_known(const char *name) { return gf_arch_parse(name) >= 0; }

/* ------------------------------------------------------------ architectures */
typedef struct { gf_node *nd; int n; int div; } builder;

static int node(builder *b, gf_node_kind kind, const char *name, int in0, int in1) {
    gf_node *nd = &b->nd[b->n];
    memset(nd, 0, sizeof *nd);
    nd->kind = kind;
    snprintf(nd->name, sizeof nd->name, "%s", name);
    nd->in[0] = in0; nd->in[1] = in1;
    return b->n++;
}

static int ch(const builder *b, int c) { return c / b->div > 0 ? c / b->div : 1; }

static int conv(builder *b, const char *name, int in, int c_out, int k, int stride, int pad, int bias) {
    int i = node(b, GF_K_CONV, name, in, 0);
    gf_conv_desc *d = &b->nd[i].conv;
    d->n = 1; d->c_out = c_out; d->kh = d->kw = k; d->stride_h = d->stride_w = stride;
    d->pad_top = d->pad_bottom = d->pad_left = d->pad_right = pad;
    d->dil_h = d->dil_w = 1; d->groups = 1;
    b->nd[i].has_bias = bias;
    return i;
}

static int bnorm(builder *b, const char *name, int in) { return node(b, GF_K_BATCHNORM, name, in, 0); }

static int act(builder *b, const char *name, int in, int leaky) {
    int i = node(b, GF_K_ACT, name, in, 0);
    b->nd[i].act.kind = leaky ? GF_ACT_LEAKY : GF_ACT_RELU;
    b->nd[i].act.slope = leaky ? LEAKY : 0.0f;
    return i;
}

static int maxpool(builder *b, const char *name, int in) {
    int i = node(b, GF_K_MAXPOOL, name, in, 0);
    b->nd[i].kernel[0] = b->nd[i].kernel[1] = 2;
    b->nd[i].stride[0] = b->nd[i].stride[1] = 2;
    return i;
}

/* torchvision BasicBlock: conv1 (stride s) bn1 relu conv2 bn2 (+ downsample) add relu */
static int basic_block(builder *b, const char *p, int in, int c_in, int c_out, int stride) {
    char n[64];
    snprintf(n, sizeof n, "%s.conv1", p); int x = conv(b, n, in, c_out, 3, stride, 1, 0);
    snprintf(n, sizeof n, "%s.bn1", p); x = bnorm(b, n, x);
    snprintf(n, sizeof n, "%s.relu", p); x = act(b, n, x, 0);
    snprintf(n, sizeof n, "%s.conv2", p); x = conv(b, n, x, c_out, 3, 1, 1, 0);
    snprintf(n, sizeof n, "%s.bn2", p); x = bnorm(b, n, x);
    int sc = in;
    if (stride != 1 || c_in != c_out) {
        snprintf(n, sizeof n, "%s.downsample.0", p); sc = conv(b, n, in, c_out, 1, stride, 0, 0);
        snprintf(n, sizeof n, "%s.downsample.1", p); sc = bnorm(b, n, sc);
    }
    snprintf(n, sizeof n, "%s.add", p); x = node(b, GF_K_ADD, n, x, sc);
    snprintf(n, sizeof n, "%s.relu_1", p);
    return act(b, n, x, 0);
}

gf_status gf_arch_nodes(gf_ctx *ctx, gf_arch a, int c_in, int width_div, gf_node *nodes, int *n_nodes) {
    builder b = {nodes, 0, width_div > 1 ? width_div : 1};
    (void)c_in;
    int x = GF_NODE_INPUT;
    switch (a) {
    case GF_ARCH_SMALL28:
        x = conv(&b, "conv1", x, ch(&b, 32), 3, 1, 1, 0); x = bnorm(&b, "bn1", x); x = act(&b, "relu1", x, 0);
        x = maxpool(&b, "pool1", x);
        x = conv(&b, "conv2", x, ch(&b, 64), 3, 1, 1, 0); x = bnorm(&b, "bn2", x); x = act(&b, "relu2", x, 0);
        x = maxpool(&b, "pool2", x);
        x = conv(&b, "conv3", x, ch(&b, 128), 3, 1, 1, 0); x = bnorm(&b, "bn3", x); act(&b, "relu3", x, 0);
        break;
    case GF_ARCH_BIGAN:
        x = conv(&b, "conv1", x, ch(&b, 64), 3, 1, 1, 1); x = act(&b, "lrelu1", x, 1);
        x = conv(&b, "conv2", x, ch(&b, 128), 4, 2, 1, 0); x = bnorm(&b, "bn2", x); x = act(&b, "lrelu2", x, 1);
        x = conv(&b, "conv3", x, ch(&b, 256), 4, 2, 1, 0); x = bnorm(&b, "bn3", x); x = act(&b, "lrelu3", x, 1);
        x = conv(&b, "conv4", x, ch(&b, 512), 4, 2, 1, 0); x = bnorm(&b, "bn4", x); x = act(&b, "lrelu4", x, 1);
        x = conv(&b, "conv5", x, ch(&b, 512), 3, 1, 1, 0); x = bnorm(&b, "bn5", x); act(&b, "lrelu5", x, 1);
        break;
    case GF_ARCH_RESNET18C: {
        x = conv(&b, "conv1", x, ch(&b, 64), 3, 1, 1, 0); x = bnorm(&b, "bn1", x); x = act(&b, "relu", x, 0);
        int c = ch(&b, 64);
        static const int widths[4] = {64, 128, 256, 512};
        for (int l = 0; l < 4; l++)
            for (int k = 0; k < 2; k++) {
                char p[32];
                snprintf(p, sizeof p, "layer%d.%d", l + 1, k);
                int w = ch(&b, widths[l]);
                x = basic_block(&b, p, x, c, w, k == 0 && l > 0 ? 2 : 1);
                c = w;
            }
        break;
    }
    default:
        return gf_fail(ctx, GF_ERR_USAGE, "unknown architecture %d", (int)a);
    }
    *n_nodes = b.n;
    return GF_OK;
}

/* ------------------------------------------------------------ initialisation */
/* uniform in [0, 1) with 53 bits */
/* (not gfd_uniform, which mixes without the second increment: the initialisation must not change) */
double gf_pt_unif(uint64_t *s) { *s += 0x9E3779B97F4A7C15ULL; return (double)(gfd_mix64(*s) >> 11) * 0x1.0p-53; }
static double gauss(uint64_t *s) {
    double u1 = 1.0 - gf_pt_unif(s), u2 = gf_pt_unif(s);   /* u1 in (0, 1] */
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void gf_pt_init_params(const gf_block *blk, gf_arch arch, int K, uint64_t seed, float *theta, float *w1, float *b1) {
    int nn;
    const gf_node *nd = gf_block_nodes(blk, &nn);
    memset(theta, 0, gf_block_param_count(blk) * sizeof(float));
    uint64_t s = gfd_mix64(seed ^ 0x5EED1A17ULL);
    /* kaiming_normal_(mode='fan_out', nonlinearity='relu' / 'leaky_relu' with a = 0.2) */
    double gain2 = arch == GF_ARCH_BIGAN ? 2.0 / (1.0 + (double)LEAKY * LEAKY) : 2.0;
    for (int i = 0; i < nn; i++) {
        const gf_node *n = &nd[i];
        if (n->kind == GF_K_CONV) {
            const gf_conv_desc *d = &n->conv;
            double std = sqrt(gain2 / ((double)d->c_out * d->kh * d->kw));
            for (size_t k = 0; k < n->w_count; k++) theta[n->w_off + (long)k] = (float)(std * gauss(&s));
            double bound = 1.0 / sqrt((double)(d->c_in / d->groups) * d->kh * d->kw);   /* PyTorch's Conv2d bias */
            for (size_t k = 0; n->b_off >= 0 && k < n->b_count; k++)
                theta[n->b_off + (long)k] = (float)(bound * (2.0 * gf_pt_unif(&s) - 1.0));
        } else if (n->kind == GF_K_BATCHNORM) {
            for (size_t k = 0; k < n->w_count; k++) theta[n->w_off + (long)k] = 1.0f;
        }
    }
    int d = gf_block_feature_dim(blk);
    double bound = 1.0 / sqrt((double)d);                 /* nn.Linear's default */
    for (size_t k = 0; k < (size_t)K * d; k++) w1[k] = (float)(bound * (2.0 * gf_pt_unif(&s) - 1.0));
    for (int k = 0; k < K; k++) b1[k] = (float)(bound * (2.0 * gf_pt_unif(&s) - 1.0));
}

gf_status gf_pt_net_create(gf_ctx *ctx, gf_arch arch, int width_div, int C, int H, int W, int K, int max_batch,
                           uint64_t seed, gf_pt_net **out) {
    *out = NULL;
    gf_pt_net *n = calloc(1, sizeof *n);
    gf_node *nodes = calloc(GF_ARCH_MAX_NODES, sizeof *nodes);
    if (!n || !nodes) { free(n); free(nodes); return gf_fail(ctx, GF_ERR_MEMORY, "out of memory"); }
    n->arch = arch; n->width_div = width_div > 1 ? width_div : 1;
    n->C = C; n->H = H; n->W = W; n->K = K; n->max_batch = max_batch;
    int nn = 0;
    gf_status st = gf_arch_nodes(ctx, arch, C, n->width_div, nodes, &nn);
    if (st == GF_OK) st = gf_block_create(ctx, C, H, W, nodes, nn, max_batch, &n->blk);
    free(nodes);
    if (st != GF_OK) { free(n); return st; }
    n->d = gf_block_feature_dim(n->blk);
    size_t pc = gf_block_param_count(n->blk);
    float *theta = malloc(pc * sizeof(float)), *zero = calloc(pc, sizeof(float));
    float *w1 = malloc((size_t)K * n->d * sizeof(float)), *b1 = malloc((size_t)K * sizeof(float));
    if (!theta || !zero || !w1 || !b1) st = gf_fail(ctx, GF_ERR_MEMORY, "out of memory for %zu parameters", pc);
    if (st == GF_OK) {
        gf_pt_init_params(n->blk, arch, K, seed, theta, w1, b1);
        /* θ̄ = 0: finetune's weight decay toward θ̄ becomes plain decay toward 0 */
        st = gf_lin_create(ctx, n->blk, GF_METHOD_FINETUNE, K, GF_LOSS_SOFTMAX, zero, w1, b1, &n->lin);
    }
    if (st == GF_OK) st = gf_lin_write_params(ctx, n->lin, theta, NULL, NULL);
    free(theta); free(zero); free(w1); free(b1);
    if (st != GF_OK) { gf_pt_net_free(n); return st; }
    gf_block_set_training(n->blk, 1);
    *out = n;
    return GF_OK;
}

void gf_pt_net_free(gf_pt_net *n) {
    if (!n) return;
    gf_lin_free(n->lin);
    gf_block_free(n->blk);
    free(n);
}

size_t gf_pt_bn_floats(const gf_pt_net *n) {
    int nn;
    const gf_node *nd = gf_block_nodes(n->blk, &nn);
    size_t t = 0;
    for (int i = 0; i < nn; i++) if (nd[i].kind == GF_K_BATCHNORM) t += 2 * (size_t)nd[i].c;
    return t;
}

static gf_status bn_io(gf_ctx *ctx, gf_pt_net *n, float *v, int write) {
    int nn;
    const gf_node *nd = gf_block_nodes(n->blk, &nn);
    for (int i = 0; i < nn; i++) {
        if (nd[i].kind != GF_K_BATCHNORM) continue;
        cl_mem m[2];
        if (gf_block_bn_running(n->blk, i, &m[0], &m[1]) != GF_OK)
            return gf_fail(ctx, GF_ERR_INTERNAL, "no running statistics for batchnorm node '%s'", nd[i].name);
        size_t bytes = (size_t)nd[i].c * sizeof(float);
        for (int k = 0; k < 2; k++) {
            GF_TRY(write ? gf_buf_write(ctx, m[k], 0, bytes, v) : gf_buf_read(ctx, m[k], 0, bytes, v));
            v += nd[i].c;
        }
    }
    return GF_OK;
}
gf_status gf_pt_bn_read(gf_ctx *ctx, gf_pt_net *n, float *out) { return bn_io(ctx, n, out, 0); }
gf_status gf_pt_bn_write(gf_ctx *ctx, gf_pt_net *n, const float *in) { return bn_io(ctx, n, (float *)in, 1); }

/* ------------------------------------------------------------ model export */
static cJSON *int_array(const int *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

static void add_str_meta(cJSON *meta, const char *key, cJSON *value) {
    char *s = cJSON_PrintUnformatted(value);
    cJSON_AddStringToObject(meta, key, s ? s : "");
    free(s);
    cJSON_Delete(value);
}

static cJSON *preprocess_json(const gf_preprocess *pp) {
    static const char *interp[] = {"bilinear", "bilinear_noaa", "bilinear_tf_legacy", "nearest"};
    cJSON *j = cJSON_CreateObject();
    int size[2] = {pp->height, pp->width};
    cJSON_AddItemToObject(j, "input_size", int_array(size, 2));
    cJSON_AddNumberToObject(j, "channels", pp->channels);
    cJSON_AddStringToObject(j, "color_order", pp->channels == 1 ? "GRAY" : pp->bgr ? "BGR" : "RGB");
    cJSON_AddStringToObject(j, "resize", pp->resize == GF_RESIZE_SHORTER_CROP ? "shorter_center_crop" : "stretch");
    if (pp->resize == GF_RESIZE_SHORTER_CROP && pp->resize_shorter) cJSON_AddNumberToObject(j, "resize_shorter", pp->resize_shorter);
    cJSON_AddStringToObject(j, "interpolation", (unsigned)pp->interp < 4 ? interp[pp->interp] : "bilinear");
    cJSON *mean = cJSON_AddArrayToObject(j, "mean"), *std = cJSON_AddArrayToObject(j, "std");
    for (int c = 0; c < pp->channels; c++) {
        cJSON_AddItemToArray(mean, cJSON_CreateNumber(pp->mean[c]));
        cJSON_AddItemToArray(std, cJSON_CreateNumber(pp->std[c]));
    }
    return j;
}

static const char *in_name(const gf_node *nd, int k) { return nd->in[k] == GF_NODE_INPUT ? "input" : NULL; }

gf_status gf_pt_net_export(gf_ctx *ctx, gf_pt_net *n, const char *path, const gf_preprocess *pp,
                           const char *const *classes, const char *extra_json) {
    int nn;
    const gf_node *nd = gf_block_nodes(n->blk, &nn);
    size_t pc = gf_block_param_count(n->blk), nbn = gf_pt_bn_floats(n);
    float *theta = malloc(pc * sizeof(float)), *bn = malloc((nbn ? nbn : 1) * sizeof(float));
    float *w1 = malloc((size_t)n->K * n->d * sizeof(float)), *b1 = malloc((size_t)n->K * sizeof(float));
    gf_status st = theta && bn && w1 && b1 ? GF_OK : gf_fail(ctx, GF_ERR_MEMORY, "out of memory writing %s", path);
    if (st == GF_OK) st = gf_lin_read_params(ctx, n->lin, theta, w1, b1);
    if (st == GF_OK) st = gf_pt_bn_read(ctx, n, bn);
    cJSON *hdr = cJSON_CreateObject(), *graph = cJSON_CreateObject(), *nodes = cJSON_CreateArray();
    gf_sink data = {0};
    char tn[160];
    const float *bnp = bn;
    int top_first = -1;
    for (int i = 0; i < nn && st == GF_OK; i++) {
        const gf_node *d = &nd[i];
        if (!strcmp(d->name, ARCH_TOP_FIRST[n->arch])) top_first = i;
        cJSON *o = cJSON_CreateObject(), *ins = cJSON_CreateArray(), *params = NULL, *attrs = NULL;
        int arity = d->kind == GF_K_ADD ? 2 : 1;
        for (int k = 0; k < arity; k++)
            cJSON_AddItemToArray(ins, cJSON_CreateString(in_name(d, k) ? in_name(d, k) : nd[d->in[k]].name));
        cJSON_AddStringToObject(o, "name", d->name);
        const char *op = "?";
        switch (d->kind) {
        case GF_K_CONV: {
            const gf_conv_desc *c = &d->conv;
            const int64_t shape[4] = {c->c_out, c->c_in / c->groups, c->kh, c->kw};
            int stride[2] = {c->stride_h, c->stride_w}, pad[4] = {c->pad_top, c->pad_left, c->pad_bottom, c->pad_right};
            int dil[2] = {c->dil_h, c->dil_w};
            op = "conv2d";
            params = cJSON_CreateObject();
            snprintf(tn, sizeof tn, "%s.weight", d->name);
            cJSON_AddStringToObject(params, "weight", tn);
            gf_st_add_f32(hdr, &data, tn, theta + d->w_off, 4, shape);
            if (d->b_off >= 0) {
                snprintf(tn, sizeof tn, "%s.bias", d->name);
                cJSON_AddStringToObject(params, "bias", tn);
                gf_st_add_f32(hdr, &data, tn, theta + d->b_off, 1, shape);
            }
            attrs = cJSON_CreateObject();
            cJSON_AddItemToObject(attrs, "stride", int_array(stride, 2));
            cJSON_AddItemToObject(attrs, "pad", int_array(pad, 4));
            cJSON_AddItemToObject(attrs, "dilation", int_array(dil, 2));
            cJSON_AddNumberToObject(attrs, "groups", c->groups);
            break;
        }
        case GF_K_BATCHNORM: {
            static const char *keys[4] = {"weight", "bias", "running_mean", "running_var"};
            const float *src[4] = {theta + d->w_off, theta + d->b_off, bnp, bnp + d->c};
            op = "batchnorm";
            params = cJSON_CreateObject();
            for (int k = 0; k < 4; k++) {
                snprintf(tn, sizeof tn, "%s.%s", d->name, keys[k]);
                cJSON_AddStringToObject(params, keys[k], tn);
                const int64_t c = d->c;
                gf_st_add_f32(hdr, &data, tn, src[k], 1, &c);
            }
            bnp += 2 * (size_t)d->c;
            attrs = cJSON_CreateObject();
            cJSON_AddNumberToObject(attrs, "eps", d->eps);
            break;
        }
        case GF_K_ACT:
            op = d->act.kind == GF_ACT_LEAKY ? "leaky_relu" : d->act.kind == GF_ACT_RELU6 ? "relu6" : "relu";
            if (d->act.kind == GF_ACT_LEAKY) {
                attrs = cJSON_CreateObject();
                cJSON_AddNumberToObject(attrs, "alpha", d->act.slope);
            }
            break;
        case GF_K_MAXPOOL: {
            op = "maxpool";
            attrs = cJSON_CreateObject();
            cJSON_AddItemToObject(attrs, "kernel", int_array(d->kernel, 2));
            cJSON_AddItemToObject(attrs, "stride", int_array(d->stride, 2));
            cJSON_AddItemToObject(attrs, "pad", int_array(d->pad, 4));
            break;
        }
        case GF_K_ADD: op = "add"; break;
        default:
            st = gf_fail(ctx, GF_ERR_INTERNAL, "export: node '%s' has a kind the pretrained nets do not use", d->name);
        }
        cJSON_AddStringToObject(o, "op", op);
        cJSON_AddItemToObject(o, "inputs", ins);
        if (params) cJSON_AddItemToObject(o, "params", params);
        if (attrs) cJSON_AddItemToObject(o, "attrs", attrs);
        cJSON_AddItemToArray(nodes, o);
    }
    if (st == GF_OK && top_first < 1)
        st = gf_fail(ctx, GF_ERR_INTERNAL, "export: top block '%s' not found", ARCH_TOP[n->arch]);
    if (st == GF_OK) {
        const char *last = nd[nn - 1].name;
        cJSON *gap = cJSON_CreateObject(), *fc = cJSON_CreateObject(), *p = cJSON_CreateObject();
        cJSON_AddStringToObject(gap, "name", "avgpool");
        cJSON_AddStringToObject(gap, "op", "global_avgpool");
        cJSON_AddItemToObject(gap, "inputs", cJSON_CreateStringArray(&last, 1));
        cJSON_AddItemToArray(nodes, gap);
        const char *gname = "avgpool";
        cJSON_AddStringToObject(fc, "name", "fc");
        cJSON_AddStringToObject(fc, "op", "linear");
        cJSON_AddItemToObject(fc, "inputs", cJSON_CreateStringArray(&gname, 1));
        cJSON_AddStringToObject(p, "weight", "fc.weight");
        cJSON_AddStringToObject(p, "bias", "fc.bias");
        cJSON_AddItemToObject(fc, "params", p);
        cJSON_AddItemToArray(nodes, fc);
        const int64_t ws[2] = {n->K, n->d};
        gf_st_add_f32(hdr, &data, "fc.weight", w1, 2, ws);
        gf_st_add_f32(hdr, &data, "fc.bias", b1, 1, ws);

        cJSON *input = cJSON_AddObjectToObject(graph, "input");
        int shape[3] = {n->C, n->H, n->W};
        cJSON_AddStringToObject(input, "name", "input");
        cJSON_AddItemToObject(input, "shape", int_array(shape, 3));
        const char *fcn = "fc";
        cJSON_AddItemToObject(graph, "outputs", cJSON_CreateStringArray(&fcn, 1));
        cJSON_AddStringToObject(graph, "feature", "avgpool");
        cJSON_AddItemToObject(graph, "nodes", nodes);
        nodes = NULL;
        cJSON *blocks = cJSON_AddArrayToObject(graph, "blocks"), *blk = cJSON_CreateObject();
        cJSON_AddStringToObject(blk, "name", ARCH_TOP[n->arch]);
        cJSON_AddStringToObject(blk, "input", nd[top_first - 1].name);
        cJSON_AddStringToObject(blk, "output", last);
        cJSON_AddItemToArray(blocks, blk);

        cJSON *meta = cJSON_AddObjectToObject(hdr, "__metadata__");
        cJSON_AddStringToObject(meta, "gradfeat.format_version", "1");
        add_str_meta(meta, "gradfeat.graph", graph);
        graph = NULL;
        add_str_meta(meta, "gradfeat.preprocess", preprocess_json(pp));
        cJSON *cls = cJSON_CreateArray();
        for (int k = 0; k < n->K; k++) cJSON_AddItemToArray(cls, cJSON_CreateString(classes && classes[k] ? classes[k] : ""));
        add_str_meta(meta, "gradfeat.classes", cls);
        if (extra_json) cJSON_AddStringToObject(meta, "gradfeat.pretrained", extra_json);
        st = gf_st_write(ctx, path, hdr, &data, NULL);
    }
    cJSON_Delete(nodes); cJSON_Delete(graph); cJSON_Delete(hdr);
    free(data.p);
    free(theta); free(bn); free(w1); free(b1);
    return st;
}
