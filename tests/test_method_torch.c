/* The linearized models (`full`, `gradient`) on REAL top blocks against an
 * independent PyTorch reference (tools/torch_linearized_reference.py: the
 * block rebuilt from the node list exported here, J(x)w2 by forward-mode AD,
 * float64, torch.optim.Adam):
 *  - a synthetic block with every node kind and what the real blocks lack
 *    (asymmetric pads, dilation, groups, leaky ReLU, ReLU6, avg pools with and
 *    without counting the padding, flatten, linear, GAP) on random inputs;
 *  - the emotion net's default top block add_2 (separable convs, SAME pads,
 *    max pool with asymmetric padding, 1x1 stride-2 shortcut, add) on trunk
 *    outputs z0 of real Fashion-MNIST images;
 *  - ResNet-18 layer4.0 (torchvision init, seed 0, 64 px: stride-2 3x3 conv,
 *    1x1 downsample, ReLUs, add) on trunk outputs of the same images;
 *  - issue 17's ops: a synthetic block with SiLU, GELU (both forms), sigmoid,
 *    hard-sigmoid, hard-swish, a squeeze-excitation gate product, an
 *    elementwise product of two moving tensors, a three-way concat, and ShuffleNetV2's unit (two channel
 *    slices of one map, a branch on one, concat, channel shuffle); and
 *    MobileNetV3-small's last inverted residual (SE, hard-swish) through its
 *    classifier's first linear layer (seeded random weights, calibrated BN, 64 px).
 * Two start points: the paper's (w1 = ω̄, w2 = 0) and a moved one (w2 != 0,
 * w1 != ω̄, b1 moved) where every term of the model matters and an ω̄ aliased
 * to w1 would show. One gf_lin_train_step (Adam β (0.5, 0.999), lr 1e-3,
 * wd 1e-6) from identical values; compared: logits, loss, gradients of w1, b1,
 * w2 and the Adam update.
 *
 * Norm: for logits and each gradient TENSOR (w1, b1, each node's weight and
 * bias slice of w2) the relative max norm ||c - r||∞ / ||r||∞ <= 1e-4 (per
 * tensor, so a small bias is not hidden behind a large weight). */
#include <unistd.h>
#include "gradfeat_data.h"
#include "linearized.h"
#include "model.h"
#include "testutil.h"

enum { N = 8, K = 10, CASES = 2, METHODS = 2 };
static const char *case_name[CASES] = {"init", "moved"};
static const gf_method method_id[METHODS] = {GF_METHOD_FULL, GF_METHOD_GRADIENT};
static const double TOL = 1e-4;

typedef struct {
    const char *label;
    int first_case;          /* cases first_case..CASES-1 run */
    char dir[300];
    gf_block *blk;
    int c_in, h_in, w_in, d;
    size_t P;
    float *x, *theta, *omega, *bias;
    int labels[N];
    float *w1[CASES], *b1[CASES], *w2[CASES];
} problem;

static void write_raw(const problem *p, const char *name, const void *v, size_t bytes) {
    char path[400];
    snprintf(path, sizeof path, "%s/%s.bin", p->dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(v, 1, bytes, f) != bytes || fclose(f) != 0) { fprintf(stderr, "FATAL: cannot write %s\n", path); exit(1); }
}

static double *read_ref(const problem *p, const char *tag, const char *what, size_t n) {
    char path[400];
    snprintf(path, sizeof path, "%s/out/%s.%s.f64", p->dir, tag, what);
    FILE *f = fopen(path, "rb");
    double *v = malloc(n * sizeof *v + 8);
    if (!f || !v || fread(v, sizeof *v, n + 1, f) != n) { fprintf(stderr, "FATAL: %s missing or not %zu doubles\n", path, n); exit(1); }
    fclose(f);
    return v;
}

static const char *kind_name(gf_node_kind k) {
    static const char *s[] = {"conv", "linear", "act", "maxpool", "avgpool", "gap", "add", "flatten", "batchnorm",
                              "mul", "concat", "layernorm", "shuffle", "slice"};
    return s[k];
}

/* spec.json for the python side: the block's node list with parameter offsets,
 * the files, the optimiser and the cases. */
static void write_spec(const problem *p, const gf_optim *o) {
    char path[400];
    snprintf(path, sizeof path, "%s/spec.json", p->dir);
    FILE *f = fopen(path, "w");
    if (!f) { fprintf(stderr, "FATAL: cannot write %s\n", path); exit(1); }
    int nn;
    const gf_node *nd = gf_block_nodes(p->blk, &nn);
    fprintf(f, "{\"n\": %d, \"K\": %d, \"c_in\": %d, \"h_in\": %d, \"w_in\": %d, \"param_count\": %zu,\n\"nodes\": [\n",
            N, K, p->c_in, p->h_in, p->w_in, p->P);
    for (int i = 0; i < nn; i++) {
        const gf_node *b = &nd[i];
        int ar = b->kind == GF_K_CONCAT ? b->n_in : 2;
        fprintf(f, " {\"kind\": \"%s\", \"name\": \"%s\", \"in\": [", kind_name(b->kind), b->name);
        for (int k = 0; k < ar; k++) fprintf(f, "%s%d", k ? ", " : "", b->in[k] < 0 ? -1 : b->in[k]);
        fprintf(f, "], \"c\": %d, \"h\": %d, \"w\": %d", b->c, b->h, b->w);
        if (b->kind == GF_K_CONV || b->kind == GF_K_LINEAR)
            fprintf(f, ", \"w_off\": %ld, \"w_count\": %zu, \"b_off\": %ld, \"b_count\": %zu", b->w_off, b->w_count,
                    b->b_off, b->b_count);
        if (b->kind == GF_K_CONV) {
            const gf_conv_desc *c = &b->conv;
            fprintf(f, ", \"c_out\": %d, \"kh\": %d, \"kw\": %d, \"stride\": [%d, %d], \"pad\": [%d, %d, %d, %d], "
                       "\"dil\": [%d, %d], \"groups\": %d", c->c_out, c->kh, c->kw, c->stride_h, c->stride_w, c->pad_top,
                    c->pad_bottom, c->pad_left, c->pad_right, c->dil_h, c->dil_w, c->groups);
        }
        if (b->kind == GF_K_LINEAR) fprintf(f, ", \"lin_in\": %d, \"lin_out\": %d", b->lin_in, b->lin_out);
        if (b->kind == GF_K_LAYERNORM) fprintf(f, ", \"eps\": %.9g", b->eps);
        if (b->kind == GF_K_SHUFFLE) fprintf(f, ", \"groups\": %d", b->groups);
        if (b->kind == GF_K_SLICE) fprintf(f, ", \"slice_off\": %d", b->slice_start);
        if (b->kind == GF_K_ACT)
            fprintf(f, ", \"act\": \"%s\", \"slope\": %.9g",
                    b->act.kind == GF_ACT_LEAKY ? "leaky" : gf_act_name(b->act.kind), b->act.slope);
        if (b->kind == GF_K_MAXPOOL || b->kind == GF_K_AVGPOOL)
            fprintf(f, ", \"k\": [%d, %d], \"s\": [%d, %d], \"pad\": [%d, %d, %d, %d], \"count_include_pad\": %d",
                    b->kernel[0], b->kernel[1], b->stride[0], b->stride[1], b->pad[0], b->pad[2],
                    b->pad[1], b->pad[3], b->count_include_pad);   /* the spec's order: top, bottom, left, right */
        fprintf(f, "}%s\n", i + 1 < nn ? "," : "");
    }
    fprintf(f, "],\n\"files\": {\"x\": {\"path\": \"x.bin\", \"shape\": [%d, %d, %d, %d]}, "
               "\"labels\": {\"path\": \"labels.bin\", \"shape\": [%d]}, \"theta\": {\"path\": \"theta.bin\", \"shape\": [%zu]}, "
               "\"omega\": {\"path\": \"omega.bin\", \"shape\": [%d, %d]}",
            N, p->c_in, p->h_in, p->w_in, N, p->P, K, p->d);
    for (int c = p->first_case; c < CASES; c++)
        fprintf(f, ", \"w1_%s\": {\"path\": \"w1_%s.bin\", \"shape\": [%d, %d]}, \"b1_%s\": {\"path\": \"b1_%s.bin\", "
                   "\"shape\": [%d]}, \"w2_%s\": {\"path\": \"w2_%s.bin\", \"shape\": [%zu]}",
                case_name[c], case_name[c], K, p->d, case_name[c], case_name[c], K, case_name[c], case_name[c], p->P);
    fprintf(f, "},\n\"optim\": {\"lr\": %.9g, \"beta1\": %.9g, \"beta2\": %.9g, \"eps\": %.9g, \"weight_decay\": %.9g},\n",
            o->lr, o->beta1, o->beta2, o->eps, o->weight_decay);
    fprintf(f, "\"cases\": [");
    for (int c = p->first_case; c < CASES; c++)
        fprintf(f, "%s{\"name\": \"%s\", \"w1\": \"w1_%s\", \"b1\": \"b1_%s\", \"w2\": \"w2_%s\"}",
                c > p->first_case ? ", " : "",
                case_name[c], case_name[c], case_name[c], case_name[c]);
    fprintf(f, "],\n\"methods\": [\"full\", \"gradient\"]}\n");
    if (fclose(f) != 0) { fprintf(stderr, "FATAL: cannot write %s\n", path); exit(1); }
}

/* ||c - r||∞ / ||r||∞ (a zero reference demands an exactly zero result). */
static double rel_inf(const float *c, const double *r, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)c[i] - r[i]);
        if (!(e <= num)) num = e;          /* NaN wins */
        if (fabs(r[i]) > den) den = fabs(r[i]);
    }
    return den > 0 ? num / den : (num == 0 ? 0 : INFINITY);
}

/* Worst per-tensor rel_inf over the block vector's tensors; padding between
 * tensors must stay exactly 0. */
static double rel_inf_block(const problem *p, const float *c, const double *r, int *pad_ok) {
    int nn;
    const gf_node *nd = gf_block_nodes(p->blk, &nn);
    unsigned char *used = calloc(p->P, 1);
    double worst = 0;
    for (int i = 0; i < nn; i++) {
        long off[2] = {nd[i].w_off, nd[i].b_off};
        size_t cnt[2] = {nd[i].w_count, nd[i].b_count};
        for (int k = 0; k < 2; k++) {
            if (off[k] < 0) continue;
            double e = rel_inf(c + off[k], r + off[k], cnt[k]);
            if (!(e <= worst)) worst = e;
            memset(used + off[k], 1, cnt[k]);
        }
    }
    *pad_ok = 1;
    for (size_t i = 0; i < p->P; i++)
        if (!used[i] && (c[i] != 0 || r[i] != 0)) *pad_ok = 0;
    free(used);
    return worst;
}

/* The Adam update Δ = new - start, elementwise. Adam's first step is
 * Δ = -lr·g'/(|g'| + eps) with g' = g + wd·p (m̂ = g', √v̂ = |g'|): about
 * -lr·sign(g') wherever |g'| >> eps, so comparing the updated parameters to a
 * relative 1e-4 of their size would say nothing, and Δ is insensitive to g's
 * relative error except near g' = 0, where a sign can flip. Its slope is
 * lr·eps/(|g'| + eps)², and the gradient check above allows an error of
 * TOL·G (G = ||g'||∞ of the tensor), so Δ is pinned to TOL·lr wherever
 * (|g'| + eps)² >= eps·G. There: |Δc - Δr| <= TOL·lr + 2^-23·|p| (the float32
 * rounding of the stored parameter). Below that ("tiny" g', counted): only
 * |Δc| <= lr (+ rounding), the bound of any first Adam step; *zero counts
 * those whose reference g is exactly 0 (units dead for every sample, e.g.
 * ResNet conv2 behind the final ReLU: half its w2 entries). Returns the worst
 * |Δc - Δr| / lr over the pinned elements; *bad counts violations. */
static double check_update(const float *start, const float *newc, const double *newr, const double *g, size_t n,
                           const gf_optim *o, size_t *tiny, size_t *zero, size_t *bad) {
    double G = 0, worst = 0;
    for (size_t i = 0; i < n; i++) {
        double gp = fabs(g[i] + o->weight_decay * (double)start[i]);
        if (gp > G) G = gp;
    }
    for (size_t i = 0; i < n; i++) {
        double gp = fabs(g[i] + o->weight_decay * (double)start[i]);
        double dc = (double)newc[i] - start[i], dr = newr[i] - start[i];
        double round = ldexp(fabs((double)start[i]) + o->lr, -23);
        if ((gp + o->eps) * (gp + o->eps) >= o->eps * G) {
            double e = fabs(dc - dr);
            if (!(e <= TOL * o->lr + round)) (*bad)++;
            if (!(e / o->lr <= worst)) worst = e / o->lr;
        } else {
            (*tiny)++;
            *zero += g[i] == 0;
            if (!(fabs(dc) <= o->lr * (1 + TOL) + round)) (*bad)++;
        }
    }
    return worst;
}

/* Per-tensor check_update over the block vector. */
static double check_update_block(const problem *p, const float *start, const float *newc, const double *newr,
                                 const double *g, const gf_optim *o, size_t *tiny, size_t *zero, size_t *bad,
                                 size_t *total) {
    int nn;
    const gf_node *nd = gf_block_nodes(p->blk, &nn);
    double worst = 0;
    for (int i = 0; i < nn; i++) {
        long off[2] = {nd[i].w_off, nd[i].b_off};
        size_t cnt[2] = {nd[i].w_count, nd[i].b_count};
        for (int k = 0; k < 2; k++) {
            if (off[k] < 0) continue;
            double e = check_update(start + off[k], newc + off[k], newr + off[k], g + off[k], cnt[k], o, tiny, zero, bad);
            if (e > worst) worst = e;
            *total += cnt[k];
        }
    }
    return worst;
}

static void fill_scaled(test_rng *r, float *dst, const float *like, size_t n, double frac) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)like[i] * like[i];
    double rms = n ? sqrt(s / n) : 0;
    test_fill(r, dst, n, -1, 1);
    for (size_t i = 0; i < n; i++) dst[i] = (float)(dst[i] * frac * (rms > 0 ? rms : 0.1));
}

/* Head: random ω̄ scaled so that the logits are O(1); the two start points. */
static void init_head(problem *p, test_rng *rr) {
    test_rng r = *rr;
    size_t zs = (size_t)p->c_in * p->h_in * p->w_in;
    p->omega = malloc((size_t)K * p->d * sizeof(float));
    p->bias = malloc(K * sizeof(float));
    test_fill(&r, p->omega, (size_t)K * p->d, -1, 1);
    test_fill(&r, p->bias, K, -0.5, 0.5);
    {   /* ω̄ scaled by 1 / (RMS of the block input · sqrt(d)): the features at θ̄ would need
           the code under test, the input's scale is a fair stand-in */
        double s = 0;
        for (size_t i = 0; i < N * zs; i++) s += (double)p->x[i] * p->x[i];
        double rms = sqrt(s / (N * zs));
        for (size_t i = 0; i < (size_t)K * p->d; i++) p->omega[i] = (float)(p->omega[i] * 3.0 / (rms * sqrt(p->d) + 1e-6));
    }
    int cnt;
    const gf_node *bn = gf_block_nodes(p->blk, &cnt);
    for (int c = 0; c < CASES; c++) {
        p->w1[c] = malloc((size_t)K * p->d * sizeof(float));
        p->b1[c] = malloc(K * sizeof(float));
        p->w2[c] = calloc(p->P, sizeof(float));
        memcpy(p->w1[c], p->omega, (size_t)K * p->d * sizeof(float));
        memcpy(p->b1[c], p->bias, K * sizeof(float));
        if (c == 0) continue;   /* "init": the paper's start (w1 = ω̄, w2 = 0) */
        for (size_t i = 0; i < (size_t)K * p->d; i++) p->w1[c][i] += (float)(p->omega[i] * test_uniform(&r, -0.5, 0.5));
        for (int k = 0; k < K; k++) p->b1[c][k] += (float)test_uniform(&r, -0.3, 0.3);
        for (int i = 0; i < cnt; i++) {   /* w2 ~ 5% of each θ̄ tensor's RMS; padding stays 0 */
            if (bn[i].w_off >= 0) fill_scaled(&r, p->w2[c] + bn[i].w_off, p->theta + bn[i].w_off, bn[i].w_count, 0.05);
            if (bn[i].b_off >= 0) fill_scaled(&r, p->w2[c] + bn[i].b_off, p->theta + bn[i].b_off, bn[i].b_count, 0.05);
        }
    }
}

/* Trunk of `m` up to block bi's cut on N Fashion-MNIST images, block nodes and
 * θ̄, a random head and the two start points. */
static void setup(gf_ctx *ctx, problem *p, const char *model_path, const char *block_name, uint64_t seed) {
    gf_model *m = NULL;
    REQUIRE_OK(ctx, gf_model_load(ctx, model_path, &m));
    int bi = gf_model_find_block(m, block_name);
    if (bi < 0) { fprintf(stderr, "FATAL: %s has no block %s\n", model_path, block_name); exit(1); }
    gf_block_info info;
    REQUIRE_OK(ctx, gf_model_block(m, bi, &info));
    gf_model_block_input(m, bi, &p->c_in, &p->h_in, &p->w_in);
    REQUIRE_OK(ctx, gf_model_block_create(ctx, m, bi, N, &p->blk));
    p->P = gf_block_param_count(p->blk);
    p->d = gf_block_feature_dim(p->blk);
    p->theta = malloc(p->P * sizeof(float));
    REQUIRE_OK(ctx, gf_model_block_theta(ctx, m, bi, p->blk, p->theta));

    /* real images through the real trunk */
    gf_dataset_options dop;
    gf_dataset_options_init(&dop);
    dop.split = "train";
    gf_dataset *ds = NULL;
    char err[512];
    if (gf_dataset_open("/usr/share/datasets/fashion-mnist", &dop, &ds, err, sizeof err) != GF_OK) {
        fprintf(stderr, "FATAL: Fashion-MNIST: %s\n", err);
        exit(1);
    }
    gf_model_info mi;
    gf_model_get_info(m, &mi);
    size_t img = (size_t)mi.in_c * mi.in_h * mi.in_w, zs = (size_t)p->c_in * p->h_in * p->w_in;
    float *imgs = malloc(N * img * sizeof(float));
    for (int i = 0; i < N; i++) {
        if (gf_dataset_sample(ds, i, gf_model_preprocess(m), 1, imgs + i * img, err, sizeof err) != GF_OK) {
            fprintf(stderr, "FATAL: sample %d: %s\n", i, err);
            exit(1);
        }
        p->labels[i] = gf_dataset_label(ds, i);
    }
    gf_dataset_free(ds);
    gf_exec *e = NULL;
    REQUIRE_OK(ctx, gf_exec_create(ctx, m, N, &e));
    REQUIRE_OK(ctx, gf_exec_run(e, imgs, N));
    CHECK(gf_exec_node_size(e, info.input) == zs, "%s: cut %s has %zu floats per image, block wants %zu", p->label,
          info.input, gf_exec_node_size(e, info.input), zs);
    p->x = malloc(N * zs * sizeof(float));
    REQUIRE_OK(ctx, gf_exec_read(e, info.input, p->x, N * zs));
    gf_exec_free(e);
    free(imgs);
    printf("%s: block %s (%d nodes, %zu floats in the parameter vector), input %s %dx%dx%d, d = %d\n", p->label,
           info.name, info.n_nodes, p->P, info.input, p->c_in, p->h_in, p->w_in, p->d);

    test_rng r;
    test_rng_seed(&r, seed);
    init_head(p, &r);
    gf_model_free(m);
}

/* Every node kind the python side rebuilds, with what the real blocks lack:
 * asymmetric conv and pool padding, dilation, groups, leaky ReLU, ReLU6, avg
 * pool with and without counting the padding, flatten, linear, GAP. */
static void setup_synthetic(gf_ctx *ctx, problem *p) {
    enum { C = 6, H = 9 };
    gf_node nd[12];
    memset(nd, 0, sizeof nd);
    gf_conv_desc d;
    int i = 0;
    REQUIRE_OK(ctx, gf_conv_desc_init(ctx, &d, 1, C, H, H, 8, 3, 3, 2, 2, 0, 1, 0, 1, 1, 1, 1));   /* 9 -> 4, TF SAME */
    nd[i] = (gf_node){.kind = GF_K_CONV, .name = "conv_asym", .in = {GF_NODE_INPUT}, .conv = d, .has_bias = 1}; i++;
    nd[i] = (gf_node){.kind = GF_K_ACT, .name = "leaky", .in = {0}, .act = {GF_ACT_LEAKY, 0.1f}}; i++;
    REQUIRE_OK(ctx, gf_conv_desc_init(ctx, &d, 1, 8, 4, 4, 8, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 2));   /* dilated, grouped */
    nd[i] = (gf_node){.kind = GF_K_CONV, .name = "conv_dil_g2", .in = {1}, .conv = d, .has_bias = 0}; i++;
    nd[i] = (gf_node){.kind = GF_K_ACT, .name = "relu6", .in = {2}, .act = {GF_ACT_RELU6, 0}}; i++;
    nd[i] = (gf_node){.kind = GF_K_MAXPOOL, .name = "maxpool_asym", .in = {3}, .kernel = {2, 2}, .stride = {1, 1},
                       .pad = {0, 0, 1, 1}}; i++;
    nd[i] = (gf_node){.kind = GF_K_ADD, .name = "add", .in = {4, 1}}; i++;
    nd[i] = (gf_node){.kind = GF_K_AVGPOOL, .name = "avg_nopad", .in = {5}, .kernel = {3, 3}, .stride = {1, 1},
                       .pad = {1, 1, 1, 1}, .count_include_pad = 0}; i++;
    nd[i] = (gf_node){.kind = GF_K_AVGPOOL, .name = "avg_pad", .in = {6}, .kernel = {2, 2}, .stride = {2, 2},
                       .pad = {1, 1, 0, 0}, .count_include_pad = 1}; i++;
    nd[i] = (gf_node){.kind = GF_K_FLATTEN, .name = "flatten", .in = {7}}; i++;
    nd[i] = (gf_node){.kind = GF_K_LINEAR, .name = "fc", .in = {8}, .lin_out = 12, .has_bias = 1}; i++;
    nd[i] = (gf_node){.kind = GF_K_ACT, .name = "relu", .in = {9}, .act = {GF_ACT_RELU, 0}}; i++;
    nd[i] = (gf_node){.kind = GF_K_GAP, .name = "gap", .in = {10}}; i++;
    p->c_in = C; p->h_in = p->w_in = H;
    REQUIRE_OK(ctx, gf_block_create(ctx, C, H, H, nd, i, N, &p->blk));
    p->P = gf_block_param_count(p->blk);
    p->d = gf_block_feature_dim(p->blk);
    test_rng r;
    test_rng_seed(&r, 23);
    p->theta = calloc(p->P, sizeof(float));
    int cnt;
    const gf_node *bn = gf_block_nodes(p->blk, &cnt);
    for (int k = 0; k < cnt; k++) {   /* large enough that some ReLU6 inputs pass 6 */
        if (bn[k].w_off >= 0) test_fill(&r, p->theta + bn[k].w_off, bn[k].w_count, -1.5, 1.5);
        if (bn[k].b_off >= 0) test_fill(&r, p->theta + bn[k].b_off, bn[k].b_count, -0.5, 0.5);
    }
    size_t xs = (size_t)N * C * H * H;
    p->x = malloc(xs * sizeof(float));
    test_fill(&r, p->x, xs, -1, 1);
    for (int k = 0; k < N; k++) p->labels[k] = (k * 3) % K;
    printf("%s: block of %d nodes (%zu floats in the parameter vector), input %dx%dx%d, d = %d\n", p->label, cnt, p->P,
           C, H, H, p->d);
    init_head(p, &r);
}

/* Issue 17's node kinds in one block, as in EfficientNet/MobileNetV3: SiLU
 * and GELU around a depthwise conv, a squeeze-excitation gate (GAP -> 1x1
 * conv -> GELU-tanh -> 1x1 conv -> hard-sigmoid) multiplied onto the map (a
 * product with BOTH factors moving), an elementwise product of two moving
 * tensors (the map and its sigmoid), hard-swish, a three-way concat whose
 * inputs have different tangents, and a layer norm over channels with its
 * affine part as a depthwise 1x1 conv (ConvNeXt). */
static void setup_synthetic_se(gf_ctx *ctx, problem *p) {
    enum { C = 6, H = 7 };
    gf_node nd[24];
    memset(nd, 0, sizeof nd);
    gf_conv_desc d;
    int i = 0;
#define CONV(nm, src, ci, co, k, pad, g, bias) do { \
        REQUIRE_OK(ctx, gf_conv_desc_init(ctx, &d, 1, ci, H, H, co, k, k, 1, 1, pad, pad, pad, pad, 1, 1, g)); \
        nd[i] = (gf_node){.kind = GF_K_CONV, .name = nm, .in = {src}, .conv = d, .has_bias = bias}; i++; } while (0)
#define ACT(nm, src, kd, sl) do { nd[i] = (gf_node){.kind = GF_K_ACT, .name = nm, .in = {src}, .act = {kd, sl}}; i++; } while (0)
    CONV("expand", GF_NODE_INPUT, C, 12, 1, 0, 1, 1);                         /* 0 */
    ACT("silu", 0, GF_ACT_SILU, 0);                                             /* 1 */
    CONV("dw", 1, 12, 12, 3, 1, 12, 0);                                         /* 2 */
    ACT("gelu", 2, GF_ACT_GELU, 0);                                             /* 3 */
    nd[i] = (gf_node){.kind = GF_K_GAP, .name = "se.pool", .in = {3}}; i++;  /* 4 */
    REQUIRE_OK(ctx, gf_conv_desc_init(ctx, &d, 1, 12, 1, 1, 4, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1));
    nd[i] = (gf_node){.kind = GF_K_CONV, .name = "se.fc1", .in = {4}, .conv = d, .has_bias = 1}; i++;   /* 5 */
    ACT("se.act", 5, GF_ACT_GELU_TANH, 0);                                      /* 6 */
    REQUIRE_OK(ctx, gf_conv_desc_init(ctx, &d, 1, 4, 1, 1, 12, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1));
    nd[i] = (gf_node){.kind = GF_K_CONV, .name = "se.fc2", .in = {6}, .conv = d, .has_bias = 1}; i++;   /* 7 */
    ACT("se.gate", 7, GF_ACT_HSIGMOID, 1.0f / 6.0f);                            /* 8 */
    nd[i] = (gf_node){.kind = GF_K_MUL, .name = "se.mul", .in = {3, 8}}; i++; /* 9: gate */
    ACT("sig", 3, GF_ACT_SIGMOID, 0);                                           /* 10 */
    nd[i] = (gf_node){.kind = GF_K_MUL, .name = "mul", .in = {9, 10}}; i++;   /* 11: elementwise */
    CONV("side", 1, 12, 6, 1, 0, 1, 1);                                         /* 12 */
    ACT("hswish", 12, GF_ACT_HSWISH, 0);                                        /* 13 */
    nd[i] = (gf_node){.kind = GF_K_CONCAT, .name = "cat", .in = {11, 13, 3}, .n_in = 3}; i++;   /* 14: 30 ch */
    /* ShuffleNetV2's unit: chunk in two (both halves read: the second slice's gradient adds), a branch, cat, shuffle */
    nd[i] = (gf_node){.kind = GF_K_SLICE, .name = "lo", .in = {14}, .slice_start = 0, .c = 12}; i++;    /* 15 */
    nd[i] = (gf_node){.kind = GF_K_SLICE, .name = "hi", .in = {14}, .slice_start = 12, .c = 18}; i++;   /* 16 */
    CONV("branch", 16, 18, 18, 1, 0, 1, 1);                                     /* 17 */
    nd[i] = (gf_node){.kind = GF_K_CONCAT, .name = "cat2", .in = {15, 17}, .n_in = 2}; i++;           /* 18 */
    nd[i] = (gf_node){.kind = GF_K_SHUFFLE, .name = "shuffle", .in = {18}, .groups = 3}; i++;        /* 19 */
    nd[i] = (gf_node){.kind = GF_K_LAYERNORM, .name = "ln", .in = {19}, .eps = 1e-6f}; i++;  /* 20 */
    CONV("ln.affine", 20, 30, 30, 1, 0, 30, 1);                                 /* 21: its scale and shift */
    CONV("project", 21, 30, 8, 1, 0, 1, 1);                                     /* 22 */
    ACT("out", 22, GF_ACT_SILU, 0);                                             /* 23 */
#undef CONV
#undef ACT
    p->c_in = C; p->h_in = p->w_in = H;
    REQUIRE_OK(ctx, gf_block_create(ctx, C, H, H, nd, i, N, &p->blk));
    p->P = gf_block_param_count(p->blk);
    p->d = gf_block_feature_dim(p->blk);
    int cnt;
    const gf_node *bn = gf_block_nodes(p->blk, &cnt);
    CHECK(bn[9].gate == 1 && bn[11].gate == 0 && bn[14].c == 30 && bn[15].c == 12 && bn[16].c == 18 &&
          bn[19].c == 30, "synthetic_se: gate flags %d %d, concat %d, slices %d %d, shuffle %d channels", bn[9].gate,
          bn[11].gate, bn[14].c, bn[15].c, bn[16].c, bn[19].c);
    test_rng r;
    test_rng_seed(&r, 29);
    p->theta = calloc(p->P, sizeof(float));
    for (int k = 0; k < cnt; k++) {   /* large enough that hard-sigmoid/hard-swish reach both flat parts */
        if (bn[k].w_off >= 0) test_fill(&r, p->theta + bn[k].w_off, bn[k].w_count, -1.2, 1.2);
        if (bn[k].b_off >= 0) test_fill(&r, p->theta + bn[k].b_off, bn[k].b_count, -1.0, 1.0);
    }
    size_t xs = (size_t)N * C * H * H;
    p->x = malloc(xs * sizeof(float));
    test_fill(&r, p->x, xs, -1.5, 1.5);
    for (int k = 0; k < N; k++) p->labels[k] = (k * 7) % K;
    printf("%s: block of %d nodes (%zu floats in the parameter vector), input %dx%dx%d, d = %d\n", p->label, cnt, p->P,
           C, H, H, p->d);
    init_head(p, &r);
}

static void run_reference(problem *p, const gf_optim *o) {
    write_raw(p, "x", p->x, (size_t)N * p->c_in * p->h_in * p->w_in * sizeof(float));
    write_raw(p, "labels", p->labels, sizeof p->labels);
    write_raw(p, "theta", p->theta, p->P * sizeof(float));
    write_raw(p, "omega", p->omega, (size_t)K * p->d * sizeof(float));
    for (int c = p->first_case; c < CASES; c++) {
        char nm[32];
        snprintf(nm, sizeof nm, "w1_%s", case_name[c]); write_raw(p, nm, p->w1[c], (size_t)K * p->d * sizeof(float));
        snprintf(nm, sizeof nm, "b1_%s", case_name[c]); write_raw(p, nm, p->b1[c], K * sizeof(float));
        snprintf(nm, sizeof nm, "w2_%s", case_name[c]); write_raw(p, nm, p->w2[c], p->P * sizeof(float));
    }
    write_spec(p, o);
    const char *src = getenv("GF_SRC");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tools/torch_linearized_reference.py %s > %s/reference.log 2>&1",
             src ? src : ".", p->dir, p->dir);
    double t0 = gf_now();
    if (system(cmd) != 0) {
        snprintf(cmd, sizeof cmd, "cat %s/reference.log >&2", p->dir);
        if (system(cmd) != 0) {}
        fprintf(stderr, "FATAL: the PyTorch reference failed (%s)\n", p->dir);
        exit(1);
    }
    printf("%s: PyTorch reference in %.1f s\n", p->label, gf_now() - t0);
}

static void compare(gf_ctx *ctx, problem *p, const gf_optim *o) {
    size_t Kd = (size_t)K * p->d, xs = (size_t)N * p->c_in * p->h_in * p->w_in;
    cl_mem dx = test_upload(ctx, p->x, xs), dl = test_alloc(ctx, N);
    REQUIRE_OK(ctx, gf_buf_write(ctx, dl, 0, sizeof p->labels, p->labels));
    float *gh = malloc((Kd + K) * sizeof(float)), *gb = malloc(p->P * sizeof(float));
    float *nw2 = malloc(p->P * sizeof(float)), *nw1 = malloc(Kd * sizeof(float)), nb1[K], lg[N * K];
    double *ref_logits_full_moved = NULL, *ref_logits_grad_moved = NULL;
    for (int c = p->first_case; c < CASES; c++)
        for (int mi = 0; mi < METHODS; mi++) {
            gf_method meth = method_id[mi];
            char tag[64];
            snprintf(tag, sizeof tag, "%s.%s", case_name[c], gf_method_name(meth));
            gf_lin *m;
            REQUIRE_OK(ctx, gf_lin_create(ctx, p->blk, meth, K, GF_LOSS_SOFTMAX, p->theta, p->omega, p->bias, &m));
            REQUIRE_OK(ctx, gf_lin_write_params(ctx, m, p->w2[c], p->w1[c], p->b1[c]));
            REQUIRE_OK(ctx, gf_lin_train_step(ctx, m, N, dx, dl, o));
            double loss;
            REQUIRE_OK(ctx, gf_lin_take_stats(ctx, m, &loss, NULL, NULL));
            test_download(ctx, gf_lin_logits_buffer(m), lg, N * K);   /* the step's forward (before the update) */
            REQUIRE_OK(ctx, gf_lin_read_grads(ctx, m, gh, gb));
            REQUIRE_OK(ctx, gf_lin_read_params(ctx, m, nw2, nw1, nb1));
            gf_lin_free(m);

            double *rl = read_ref(p, tag, "logits", N * K), *rloss = read_ref(p, tag, "loss", 1);
            double *rgw1 = read_ref(p, tag, "grad_w1", Kd), *rgb1 = read_ref(p, tag, "grad_b1", K);
            double *rgw2 = read_ref(p, tag, "grad_w2", p->P), *rnw2 = read_ref(p, tag, "new_w2", p->P);
            double *rnb1 = read_ref(p, tag, "new_b1", K), *rnw1 = meth == GF_METHOD_FULL ? read_ref(p, tag, "new_w1", Kd) : NULL;
            int pad_ok;
            double e_logits = rel_inf(lg, rl, N * K), e_loss = fabs(loss - rloss[0]) / fabs(rloss[0]);
            double e_gw1 = rel_inf(gh, rgw1, Kd), e_gb1 = rel_inf(gh + Kd, rgb1, K);
            double e_gw2 = rel_inf_block(p, gb, rgw2, &pad_ok);
            size_t tiny = 0, zero = 0, bad = 0, total = 0;
            double e_uw2 = check_update_block(p, p->w2[c], nw2, rnw2, rgw2, o, &tiny, &zero, &bad, &total);
            double e_ub1 = check_update(p->b1[c], nb1, rnb1, rgb1, K, o, &tiny, &zero, &bad);
            total += K;
            double e_uw1 = 0;
            if (rnw1) { e_uw1 = check_update(p->w1[c], nw1, rnw1, rgw1, Kd, o, &tiny, &zero, &bad); total += Kd; }
            printf("%s %-14s rel max-norm: logits %.2e loss %.2e | grad w1 %.2e b1 %.2e w2 %.2e (worst tensor) | "
                   "Adam update |dc-dr|/lr: w2 %.2e b1 %.2e w1 %.2e (%zu of %zu elements with tiny g', %zu of them 0)\n",
                   p->label, tag, e_logits, e_loss, e_gw1, e_gb1, e_gw2, e_uw2, e_ub1, e_uw1, tiny, total, zero);
            CHECK(e_logits <= TOL, "%s %s: logits rel %.3e", p->label, tag, e_logits);
            CHECK(e_loss <= TOL, "%s %s: loss %.9g vs %.9g", p->label, tag, loss, rloss[0]);
            CHECK(e_gw1 <= TOL, "%s %s: grad w1 rel %.3e", p->label, tag, e_gw1);
            CHECK(e_gb1 <= TOL, "%s %s: grad b1 rel %.3e", p->label, tag, e_gb1);
            CHECK(e_gw2 <= TOL, "%s %s: grad w2 rel %.3e (worst tensor)", p->label, tag, e_gw2);
            CHECK(pad_ok, "%s %s: padding of the w2 gradient is not zero", p->label, tag);
            CHECK(bad == 0, "%s %s: %zu Adam updates outside tolerance (worst pinned %.3e lr)", p->label, tag, bad,
                  e_uw2 > e_ub1 ? (e_uw2 > e_uw1 ? e_uw2 : e_uw1) : (e_ub1 > e_uw1 ? e_ub1 : e_uw1));
            CHECK(tiny - zero < (total - zero) / 4, "%s %s: %zu of %zu updates with g' != 0 are not pinned by the "
                  "gradient check", p->label, tag, tiny - zero, total - zero);
            if (c == 1 && meth == GF_METHOD_FULL) ref_logits_full_moved = rl;
            else if (c == 1) ref_logits_grad_moved = rl;
            else free(rl);
            free(rloss); free(rgw1); free(rgb1); free(rgw2); free(rnw2); free(rnb1); free(rnw1);
        }
    /* the comparison discriminates: in the moved case the w1ᵀf term (full -
     * gradient) and the ω̄ᵀJw2 term (gradient - b1) each move the logits far
     * beyond the tolerance */
    float fm[N * K], b1m[N * K];
    for (int i = 0; i < N * K; i++) { fm[i] = (float)ref_logits_full_moved[i]; b1m[i] = p->b1[CASES - 1][i % K]; }
    double d_w1 = rel_inf(fm, ref_logits_grad_moved, N * K), d_jw2 = rel_inf(b1m, ref_logits_grad_moved, N * K);
    printf("%s: moved reference logits: the w1'f term changes them by %.3g, the w_bar'J w2 term by %.3g (rel max-norm)\n",
           p->label, d_w1, d_jw2);
    CHECK(d_w1 > 100 * TOL && d_jw2 > 100 * TOL, "%s: the cases do not exercise every term (%.3g, %.3g)", p->label,
          d_w1, d_jw2);
    free(ref_logits_full_moved); free(ref_logits_grad_moved);
    free(gh); free(gb); free(nw2); free(nw1);
    gf_buf_release(&dx); gf_buf_release(&dl);
}

static void cleanup(problem *p) {
    gf_block_free(p->blk);
    free(p->x); free(p->theta); free(p->omega); free(p->bias);
    for (int c = 0; c < CASES; c++) { free(p->w1[c]); free(p->b1[c]); free(p->w2[c]); }
}

/* The temp folder goes on every exit, FATAL ones included (GF_TEST_KEEP keeps it). */
static char root[] = "/tmp/gf_method_torch_XXXXXX";
static void remove_root(void) {
    char cmd[128];
    if (getenv("GF_TEST_KEEP")) { printf("kept %s (GF_TEST_KEEP)\n", root); return; }
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", root);
}

int main(void) {
    gf_ctx *ctx = test_ctx();
    const char *src = getenv("GF_SRC");
    if (!src) src = ".";
    if (!mkdtemp(root)) { perror("mkdtemp"); return 1; }
    atexit(remove_root);
    char cmd[1200];
    gf_optim o = gf_optim_paper_defaults();

    problem syn = {.label = "synthetic"};
    snprintf(syn.dir, sizeof syn.dir, "%s/synthetic", root);
    snprintf(cmd, sizeof cmd, "mkdir -p %s", syn.dir);
    if (system(cmd) != 0) { fprintf(stderr, "FATAL: %s\n", cmd); return 1; }
    setup_synthetic(ctx, &syn);
    run_reference(&syn, &o);
    compare(ctx, &syn, &o);
    cleanup(&syn);

    problem se = {.label = "synthetic_se"};
    snprintf(se.dir, sizeof se.dir, "%s/synthetic_se", root);
    snprintf(cmd, sizeof cmd, "mkdir -p %s", se.dir);
    if (system(cmd) != 0) { fprintf(stderr, "FATAL: %s\n", cmd); return 1; }
    setup_synthetic_se(ctx, &se);
    run_reference(&se, &o);
    compare(ctx, &se, &o);
    cleanup(&se);

    /* the emotion net (sha256-pinned, cached by fetch.sh) */
    problem emo = {.label = "emotion"};
    snprintf(emo.dir, sizeof emo.dir, "%s/emotion", root);
    snprintf(cmd, sizeof cmd, "mkdir -p %s && bash %s/models/emotion/fetch.sh %s/emotion.safetensors > /dev/null 2> %s/fetch.log"
             " || { cat %s/fetch.log >&2; exit 1; }", emo.dir, src, root, root, root);
    if (system(cmd) != 0) { fprintf(stderr, "FATAL: models/emotion/fetch.sh failed\n"); return 1; }
    char path[400];
    snprintf(path, sizeof path, "%s/emotion.safetensors", root);
    setup(ctx, &emo, path, "add_2", 21);
    run_reference(&emo, &o);
    compare(ctx, &emo, &o);
    cleanup(&emo);

    /* ResNet-18 (torchvision init, seed 0) at 64 px: layer4.0 has the stride-2
     * conv and the 1x1 downsample shortcut */
    problem rn = {.label = "resnet18", .first_case = 1};   /* 3.7 M parameters: the moved case only */
    snprintf(rn.dir, sizeof rn.dir, "%s/resnet18", root);
    snprintf(cmd, sizeof cmd, "mkdir -p %s && /usr/bin/python3 %s/tools/convert_torchvision.py --arch resnet18 "
             "--random-seed 0 --input-size 64 --num-classes 10 %s/resnet18.safetensors > %s/convert.log 2>&1"
             " || { cat %s/convert.log >&2; exit 1; }", rn.dir, src, root, root, root);
    if (system(cmd) != 0) { fprintf(stderr, "FATAL: tools/convert_torchvision.py failed\n"); return 1; }
    snprintf(path, sizeof path, "%s/resnet18.safetensors", root);
    setup(ctx, &rn, path, "layer4.0", 22);
    run_reference(&rn, &o);
    compare(ctx, &rn, &o);
    cleanup(&rn);

    /* MobileNetV3-small (seeded, BN statistics randomised and calibrated: tests/model_parity.py) at 64 px: the span from the last
     * inverted residual (hard-swish, depthwise 5x5, squeeze-excitation with ReLU and
     * hard-sigmoid: a gate product with both factors moving, skip add) through the
     * last 1x1 conv, GAP, the 576 -> 1024 linear and its hard-swish (the feature) */
    problem mb = {.label = "mobilenet_v3_small", .first_case = 1};
    snprintf(mb.dir, sizeof mb.dir, "%s/mobilenet_v3_small", root);
    snprintf(cmd, sizeof cmd, "mkdir -p %s && /usr/bin/python3 %s/tests/model_parity.py convert mobilenet_v3_small 64 "
             "%s/mbv3.safetensors > %s/convert.log 2>&1 || { cat %s/convert.log >&2; exit 1; }", mb.dir, src, root, root,
             root);
    if (system(cmd) != 0) { fprintf(stderr, "FATAL: tools/convert_torchvision.py failed\n"); return 1; }
    snprintf(path, sizeof path, "%s/mbv3.safetensors", root);
    setup(ctx, &mb, path, "features.11.block", 24);
    {
        int nn, kinds[GF_K_SLICE + 1] = {0};
        const gf_node *bn = gf_block_nodes(mb.blk, &nn);
        for (int k = 0; k < nn; k++) kinds[bn[k].kind]++;
        int hsw = 0, hsig = 0, gate = 0;
        for (int k = 0; k < nn; k++) {
            hsw += bn[k].kind == GF_K_ACT && bn[k].act.kind == GF_ACT_HSWISH;
            hsig += bn[k].kind == GF_K_ACT && bn[k].act.kind == GF_ACT_HSIGMOID;
            gate += bn[k].kind == GF_K_MUL && bn[k].gate;
        }
        CHECK(gate == 1 && hsw >= 3 && hsig == 1 && kinds[GF_K_ADD] == 1 && kinds[GF_K_LINEAR] == 1,
              "mobilenet_v3_small span: %d gate products, %d hard-swish, %d hard-sigmoid, %d adds, %d linear", gate,
              hsw, hsig, kinds[GF_K_ADD], kinds[GF_K_LINEAR]);
    }
    run_reference(&mb, &o);
    compare(ctx, &mb, &o);
    cleanup(&mb);

    /* GF_METHOD_TORCH_EXTRA=1 (not in CI: a few minutes more): EfficientNet-B0 at 64 px, the span from the last
     * MBConv (expand, depthwise, squeeze-excitation with SiLU and a sigmoid gate, projection; one block since it has no
     * skip) through the 1280-channel head conv */
    if (getenv("GF_METHOD_TORCH_EXTRA")) {
        problem ef = {.label = "efficientnet_b0", .first_case = 1};
        snprintf(ef.dir, sizeof ef.dir, "%s/efficientnet_b0", root);
        snprintf(cmd, sizeof cmd, "mkdir -p %s && /usr/bin/python3 %s/tests/model_parity.py convert efficientnet_b0 64 "
                 "%s/effb0.safetensors > %s/convert.log 2>&1 || { cat %s/convert.log >&2; exit 1; }", ef.dir, src, root,
                 root, root);
        if (system(cmd) != 0) { fprintf(stderr, "FATAL: tests/model_parity.py convert failed\n"); return 1; }
        snprintf(path, sizeof path, "%s/effb0.safetensors", root);
        setup(ctx, &ef, path, "features.7.0", 25);
        run_reference(&ef, &o);
        compare(ctx, &ef, &o);
        cleanup(&ef);

        /* ConvNeXt-tiny at 64 px (LayerNorm affine and layer_scale randomised: tests/model_parity.py), the span
         * from the last ConvNeXt block (depthwise 7x7, LayerNorm over channels, 1x1 expand, GELU, 1x1 project,
         * layer_scale, skip add) through the classifier's LayerNorm */
        problem cx = {.label = "convnext_tiny", .first_case = 1};
        snprintf(cx.dir, sizeof cx.dir, "%s/convnext_tiny", root);
        snprintf(cmd, sizeof cmd, "mkdir -p %s && /usr/bin/python3 %s/tests/model_parity.py convert convnext_tiny 64 "
                 "%s/convnext.safetensors > %s/convert.log 2>&1 || { cat %s/convert.log >&2; exit 1; }", cx.dir, src,
                 root, root, root);
        if (system(cmd) != 0) { fprintf(stderr, "FATAL: tests/model_parity.py convert failed\n"); return 1; }
        snprintf(path, sizeof path, "%s/convnext.safetensors", root);
        setup(ctx, &cx, path, "features.7.2", 26);
        run_reference(&cx, &o);
        compare(ctx, &cx, &o);
        cleanup(&cx);
    }

    gf_ctx_free(ctx);
    return test_finish("test_method_torch");
}
