/* Training driver: metrics on hand-worked examples; gf_train runs the probe
 * and the three other methods, learns (train accuracy above chance), is
 * deterministic for a seed, and the device-resident and host-resident
 * activation caches give bitwise-identical models. */
#include "train.h"
#include "ops_affine.h"
#include <signal.h>
#include <unistd.h>
#include "testutil.h"

enum { C_IN = 4, H = 6, K = 3, NTR = 90, NVA = 30, B = 16 };

static void metrics(void) {
    /* accuracy: 2 of 3 rows right */
    float lg[] = {0.1f, 0.9f, 0.0f,   2, 1, 0,   0, 0, 1};
    int lab[] = {1, 1, 2};
    CHECK(fabs(gf_accuracy(lg, lab, 3, 3) - 2.0 / 3) < 1e-12, "accuracy");
    /* AP by hand: class 0 scores .9(+) .8(-) .7(+) .1(-): precisions at positives 1/1, 2/3 -> 5/6.
     * class 1 scores .2(-) .6(+) .4(-) .5(-): ranking .6+ first -> AP 1. mAP = (5/6 + 1)/2 */
    float sc[] = {0.9f, 0.2f,  0.8f, 0.6f,  0.7f, 0.4f,  0.1f, 0.5f};
    float tg[] = {1, 0,  0, 1,  1, 0,  0, 0};
    double ap[2];
    double m = gf_mean_ap(sc, tg, 4, 2, ap);
    CHECK(fabs(ap[0] - 5.0 / 6) < 1e-12 && fabs(ap[1] - 1) < 1e-12, "AP per class %g %g", ap[0], ap[1]);
    CHECK(fabs(m - (5.0 / 6 + 1) / 2) < 1e-12, "mAP %g", m);
    /* ties are pessimistic: positive and negative with equal score -> negative first */
    float sc2[] = {0.5f, 0.5f}, tg2[] = {1, 0};
    CHECK(fabs(gf_mean_ap(sc2, tg2, 2, 1, NULL) - 0.5) < 1e-12, "tie handling");
}

static int nodes(gf_node *nd) {
    gf_conv_desc d;
    memset(nd, 0, 4 * sizeof *nd);
    gf_conv_desc_simple(NULL, &d, 1, C_IN, H, H, 8, 3, 1, 1, 1, 1);
    nd[0] = (gf_node){.kind = GF_K_CONV, .name = "conv", .in = {GF_NODE_INPUT}, .conv = d, .has_bias = 1};
    nd[1] = (gf_node){.kind = GF_K_ACT, .name = "relu", .in = {0}, .act = {GF_ACT_RELU, 0}};
    /* a max pool: its routing is part of the primal cache */
    nd[2] = (gf_node){.kind = GF_K_MAXPOOL, .name = "pool", .in = {1}, .kernel = {2, 2}, .stride = {2, 2}};
    gf_conv_desc_simple(NULL, &d, 1, 8, H / 2, H / 2, 8, 3, 1, 1, 1, 1);
    nd[3] = (gf_node){.kind = GF_K_CONV, .name = "conv2", .in = {2}, .conv = d, .has_bias = 1};
    return 4;
}

/* Issue 17's kinds: the primal cache must keep BOTH factors of a product (the
 * map and a squeeze-excitation gate; a map and its sigmoid) and the inputs of
 * the smooth activations, and nothing of a concat. */
static int nodes_gated(gf_node *nd) {
    gf_conv_desc d;
    memset(nd, 0, 10 * sizeof *nd);
    gf_conv_desc_simple(NULL, &d, 1, C_IN, H, H, 8, 3, 1, 1, 1, 1);
    nd[0] = (gf_node){.kind = GF_K_CONV, .name = "conv", .in = {GF_NODE_INPUT}, .conv = d, .has_bias = 1};
    nd[1] = (gf_node){.kind = GF_K_ACT, .name = "silu", .in = {0}, .act = {GF_ACT_SILU, 0}};
    nd[2] = (gf_node){.kind = GF_K_GAP, .name = "se.pool", .in = {1}};
    gf_conv_desc_simple(NULL, &d, 1, 8, 1, 1, 8, 1, 1, 0, 1, 1);
    nd[3] = (gf_node){.kind = GF_K_CONV, .name = "se.fc", .in = {2}, .conv = d, .has_bias = 1};
    nd[4] = (gf_node){.kind = GF_K_ACT, .name = "se.gate", .in = {3}, .act = GF_ACT_HSIGMOID_TORCH};
    nd[5] = (gf_node){.kind = GF_K_MUL, .name = "se.mul", .in = {1, 4}};
    nd[6] = (gf_node){.kind = GF_K_ACT, .name = "sig", .in = {5}, .act = {GF_ACT_SIGMOID, 0}};
    nd[7] = (gf_node){.kind = GF_K_MUL, .name = "prod", .in = {5, 6}};
    nd[8] = (gf_node){.kind = GF_K_CONCAT, .name = "cat", .in = {7, 1}, .n_in = 2};
    gf_conv_desc_simple(NULL, &d, 1, 16, H, H, 8, 3, 1, 1, 1, 1);
    nd[9] = (gf_node){.kind = GF_K_CONV, .name = "conv2", .in = {8}, .conv = d, .has_bias = 1};
    return 10;
}

static int same(const gf_train_result *a, const gf_train_result *b, size_t P, int d) {
    for (int m = 0; m < 4; m++) {
        if (a->m[m].ran != b->m[m].ran) return 0;
        if (!a->m[m].ran) continue;
        if (memcmp(a->m[m].w1, b->m[m].w1, (size_t)K * d * 4) || memcmp(a->m[m].b1, b->m[m].b1, K * 4)) return 0;
        if (m && memcmp(a->m[m].block_params, b->m[m].block_params, P * 4)) return 0;
        if (a->m[m].val_metric != b->m[m].val_metric) return 0;
    }
    return 1;
}

/* Largest |a-b| / (1 + |b|) over n floats. */
static double rel_diff(const float *a, const float *b, size_t n) {
    double w = 0;
    for (size_t i = 0; i < n; i++) w = fmax(w, fabs((double)a[i] - b[i]) / (1 + fabs((double)b[i])));
    return w;
}

/* The primal cache filled batch by batch in order, then loaded for a shuffled
 * batch, leaves the block as the forward of that batch does: same features,
 * same tangent (uses the cached conv inputs, relu masks and max-pool routing)
 * and same backward gradients. */
static void primal_roundtrip(gf_ctx *ctx, gf_block *blk, const float *theta, const float *z, size_t S) {
    size_t P = gf_block_param_count(blk);
    int d = gf_block_feature_dim(blk);
    gf_params th, w2, g1, g2;
    REQUIRE_OK(ctx, gf_params_create(ctx, blk, "theta", &th));
    REQUIRE_OK(ctx, gf_params_create(ctx, blk, "w2", &w2));
    REQUIRE_OK(ctx, gf_params_create(ctx, blk, "g1", &g1));
    REQUIRE_OK(ctx, gf_params_create(ctx, blk, "g2", &g2));
    test_rng r; test_rng_seed(&r, 77);
    float *w2h = malloc(P * 4), *xb = malloc((size_t)B * S * 4), *gfh = malloc((size_t)B * d * 4);
    test_fill(&r, w2h, P, -0.2, 0.2);
    test_fill(&r, gfh, (size_t)B * d, -1, 1);
    REQUIRE_OK(ctx, gf_buf_write(ctx, th.all, 0, P * 4, theta));
    REQUIRE_OK(ctx, gf_buf_write(ctx, w2.all, 0, P * 4, w2h));
    cl_mem x, f, tf, gfeat, idx;
    REQUIRE_OK(ctx, gf_buf_create(ctx, (size_t)B * S * 4, "x", &x));
    REQUIRE_OK(ctx, gf_buf_create(ctx, (size_t)B * d * 4, "f", &f));
    REQUIRE_OK(ctx, gf_buf_create(ctx, (size_t)B * d * 4, "tf", &tf));
    REQUIRE_OK(ctx, gf_buf_create_from(ctx, (size_t)B * d * 4, gfh, "gfeat", &gfeat));
    REQUIRE_OK(ctx, gf_buf_create(ctx, B * sizeof(int), "idx", &idx));
    gf_primal_cache *pc;
    REQUIRE_OK(ctx, gf_primal_cache_create(ctx, blk, NTR, 0, &pc));
    for (int b0 = 0; b0 < NTR; b0 += B) {
        int nb = NTR - b0 < B ? NTR - b0 : B;
        REQUIRE_OK(ctx, gf_buf_write(ctx, x, 0, (size_t)nb * S * 4, z + (size_t)b0 * S));
        REQUIRE_OK(ctx, gf_block_forward(ctx, blk, nb, x, &th, f));
        REQUIRE_OK(ctx, gf_primal_cache_store(ctx, blk, pc, b0, nb, f));
    }
    int rows[B];
    for (int i = 0; i < B; i++) rows[i] = (i * 37 + 11) % NTR;   /* distinct, out of order */
    for (int i = 0; i < B; i++) memcpy(xb + (size_t)i * S, z + (size_t)rows[i] * S, S * 4);
    REQUIRE_OK(ctx, gf_buf_write(ctx, x, 0, (size_t)B * S * 4, xb));
    REQUIRE_OK(ctx, gf_buf_write(ctx, idx, 0, sizeof rows, rows));
    float *out[2][3];
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0) REQUIRE_OK(ctx, gf_block_forward(ctx, blk, B, x, &th, f));
        else {
            REQUIRE_OK(ctx, gf_block_forward(ctx, blk, B, x, &th, tf));    /* scramble: other rows' forward first */
            for (int i = 0; i < B; i++) memcpy(xb + (size_t)i * S, z + (size_t)rows[i] * S, S * 4);
            REQUIRE_OK(ctx, gf_buf_write(ctx, x, 0, (size_t)B * S * 4, xb));   /* the batch input, as cache_batch */
            REQUIRE_OK(ctx, gf_buf_zero(ctx, f, 0, (size_t)B * d * 4));
            REQUIRE_OK(ctx, gf_primal_cache_load(ctx, blk, pc, B, idx, x, f));
        }
        REQUIRE_OK(ctx, gf_block_tangent(ctx, blk, B, x, &th, &w2, tf));
        REQUIRE_OK(ctx, gf_block_backward(ctx, blk, B, x, &th, gfeat, pass ? &g2 : &g1, NULL));
        for (int k = 0; k < 3; k++) out[pass][k] = malloc(k == 2 ? P * 4 : (size_t)B * d * 4);
        REQUIRE_OK(ctx, gf_buf_read(ctx, f, 0, (size_t)B * d * 4, out[pass][0]));
        REQUIRE_OK(ctx, gf_buf_read(ctx, tf, 0, (size_t)B * d * 4, out[pass][1]));
        REQUIRE_OK(ctx, gf_buf_read(ctx, pass ? g2.all : g1.all, 0, P * 4, out[pass][2]));
        if (pass == 0) {   /* next pass starts from the forward of other rows */
            for (int i = 0; i < B; i++) memcpy(xb + (size_t)i * S, z + (size_t)((rows[i] + 1) % NTR) * S, S * 4);
            REQUIRE_OK(ctx, gf_buf_write(ctx, x, 0, (size_t)B * S * 4, xb));
        }
    }
    const char *what[3] = {"features", "tangent", "gradient"};
    for (int k = 0; k < 3; k++) {
        size_t n = k == 2 ? P : (size_t)B * d;
        double e = rel_diff(out[1][k], out[0][k], n);
        CHECK(e < 1e-5, "primal cache load vs forward: %s differ by %.3g", what[k], e);
        free(out[0][k]);
        free(out[1][k]);
    }
    gf_primal_cache_free(pc);
    gf_buf_release(&x); gf_buf_release(&f); gf_buf_release(&tf); gf_buf_release(&gfeat); gf_buf_release(&idx);
    gf_params_free(&th); gf_params_free(&w2); gf_params_free(&g1); gf_params_free(&g2);
    free(w2h); free(xb); free(gfh);
}

/* A block of these nodes with random weights: its primal cache keeps `want` floats a sample besides the features,
 * and a load gives what the forward gives (primal_roundtrip). */
static void primal_block(gf_ctx *ctx, test_rng *r, const gf_node *nd, int n_nodes, size_t want, const char *name,
                         const float *z, size_t S) {
    gf_block *blk;
    REQUIRE_OK(ctx, gf_block_create(ctx, C_IN, H, H, nd, n_nodes, B, &blk));
    float *th = calloc(gf_block_param_count(blk), 4);
    int n;
    const gf_node *bn = gf_block_nodes(blk, &n);
    for (int i = 0; i < n; i++) {
        if (bn[i].w_off >= 0) test_fill(r, th + bn[i].w_off, bn[i].w_count, -0.5, 0.5);
        if (bn[i].b_off >= 0) test_fill(r, th + bn[i].b_off, bn[i].b_count, -0.3, 0.3);
    }
    want = (want + (size_t)gf_block_feature_dim(blk)) * 4;
    CHECK(gf_block_primal_bytes(blk, 0) == want, "%s: primal cache %zu bytes per sample, want %zu", name,
          gf_block_primal_bytes(blk, 0), want);
    primal_roundtrip(ctx, blk, th, z, S);
    free(th);
    gf_block_free(blk);
}

/* Gradient of the L2-regularised mean softmax cross-entropy (double, written
 * here independently of host/method/probe.c): largest |component|. */
/* Row i's logits z (k <= 8) in double; returns their maximum, *s = sum exp(z - max). */
static double row_logits(const float *f, int d, int k, const float *w, const float *b, int i, double *z, double *s) {
    double mx = -1e300;
    for (int c = 0; c < k; c++) {
        z[c] = b[c];
        for (int j = 0; j < d; j++) z[c] += (double)w[c * d + j] * f[i * d + j];
        mx = fmax(mx, z[c]);
    }
    *s = 0;
    for (int c = 0; c < k; c++) *s += exp(z[c] - mx);
    return mx;
}

static double probe_grad_max(const float *f, const int *lab, int n, int d, int k, double l2, const float *w, const float *b) {
    double *g = calloc((size_t)k * d + k, sizeof(double)), worst = 0;
    for (int i = 0; i < n; i++) {
        double z[8], s, mx = row_logits(f, d, k, w, b, i, z, &s);
        for (int c = 0; c < k; c++) {
            double gz = (exp(z[c] - mx) / s - (c == lab[i])) / n;
            for (int j = 0; j < d; j++) g[c * d + j] += gz * f[i * d + j];
            g[k * d + c] += gz;
        }
    }
    for (int i = 0; i < k * d; i++) g[i] += l2 * w[i];
    for (int i = 0; i < k * d + k; i++) worst = fmax(worst, fabs(g[i]));
    free(g);
    return worst;
}

static double probe_loss(const float *f, const int *lab, int n, int d, int k, const float *w, const float *b) {
    double L = 0;
    for (int i = 0; i < n; i++) {
        double z[8], s, mx = row_logits(f, d, k, w, b, i, z, &s);
        L += mx + log(s) - z[lab[i]];
    }
    return L / n;
}

/* The probe's L2 search on (f, lab): its choice is at least as good on the
 * holdout as every grid value solved alone (so stopping the path early never
 * lost the best), and at most two values were solved past the chosen one. */
static void probe_search_check(gf_ctx *ctx, const float *f, const int *lab, int N, int NH, int D, int KK, int *tried) {
    float *w = malloc(sizeof(float) * KK * D), *w2 = malloc(sizeof(float) * KK * D), b[8], b2[8];
    gf_probe_data tr = {f, N, lab, NULL}, ho = {f + (size_t)N * D, NH, lab + N, NULL};
    double used = 0;
    REQUIRE_OK(ctx, gf_probe_fit(ctx, &tr, &ho, KK, D, 0, -1, GF_SELECT_LOSS, w, b, &used, tried));
    double chosen = probe_loss(f + (size_t)N * D, lab + N, NH, D, KK, w, b);
    static const double grid[] = {1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6};
    int at = -1;
    for (int g = 0; g < (int)(sizeof grid / sizeof *grid); g++) {
        if (used == grid[g]) at = g;
        REQUIRE_OK(ctx, gf_probe_fit(ctx, &tr, NULL, KK, D, 0, grid[g], GF_SELECT_LOSS, w2, b2, NULL, NULL));
        double l = probe_loss(f + (size_t)N * D, lab + N, NH, D, KK, w2, b2);
        CHECK(chosen <= l + 1e-5, "probe L2 search chose %g (held-out loss %.6f) but %g gives %.6f", used, chosen, grid[g], l);
    }
    CHECK(at >= 0, "chosen L2 %g is not a grid value", used);
    CHECK(*tried >= at + 1 && *tried <= at + 3, "L2 path solved %d values, chose the %d-th", *tried, at + 1);
    printf("probe L2 chosen on the holdout: %g (held-out loss %.4f), %d of 11 values solved\n", used, chosen, *tried);
    free(w); free(w2);
}

/* gf_probe_fit: at a fixed L2 its answer is the optimum (gradient ~ 0); with
 * a holdout it picks the grid value whose held-out loss is lowest. */
static void probe_solver(gf_ctx *ctx) {
    enum { N = 150, NH = 60, D = 7, KK = 4 };
    test_rng r; test_rng_seed(&r, 3);
    float f[(N + NH) * D], w[KK * D], b[KK];
    int lab[N + NH];
    test_fill(&r, f, (N + NH) * D, -1, 1);
    for (int i = 0; i < N + NH; i++) {     /* overlapping classes: not separable, a finite optimum */
        lab[i] = i % KK;
        f[i * D + lab[i]] += 0.7f;
    }
    gf_probe_data tr = {f, N, lab, NULL};
    double used = 0;
    REQUIRE_OK(ctx, gf_probe_fit(ctx, &tr, NULL, KK, D, 0, 1e-2, GF_SELECT_LOSS, w, b, &used, NULL));
    double gm = probe_grad_max(f, lab, N, D, KK, 1e-2, w, b);
    printf("probe L-BFGS: max |gradient| at the answer %.3g (l2 %g)\n", gm, used);
    CHECK(gm < 1e-5 && used == 1e-2, "L-BFGS probe not at the optimum: max |gradient| %.3g", gm);
    REQUIRE_OK(ctx, gf_probe_fit(ctx, &tr, NULL, KK, D, 0, 1e-5, GF_SELECT_LOSS, w, b, &used, NULL));
    gm = probe_grad_max(f, lab, N, D, KK, 1e-5, w, b);
    printf("probe L-BFGS, l2 1e-5: max |gradient| %.3g\n", gm);
    CHECK(gm < 3e-5, "weakly regularised probe not at the optimum: %.3g", gm);   /* float logits: ~1e-4 of the start */
    int tried = 0;
    probe_search_check(ctx, f, lab, N, NH, D, KK, &tried);
    /* few samples, many noise features: the held-out loss rises as L2 weakens, so the path stops early */
    enum { N2 = 24, NH2 = 40, D2 = 40 };
    float *f2 = malloc(sizeof(float) * (N2 + NH2) * D2);
    int lab2[N2 + NH2];
    test_fill(&r, f2, (N2 + NH2) * D2, -1, 1);
    for (int i = 0; i < N2 + NH2; i++) { lab2[i] = i % KK; f2[i * D2 + lab2[i]] += 0.7f; }
    int tried2 = 0;
    probe_search_check(ctx, f2, lab2, N2, NH2, D2, KK, &tried2);
    CHECK(tried2 < 11, "overfitting probe: the L2 path solved all %d values instead of stopping after two rises", tried2);
    free(f2);
}

/* gf_holdout_split: every row ends up once in one part, with its label;
 * per class round(frac x count) rows are held out; the same seed, the same split. */
/* gf_prior_bias: `gradient`'s starting bias is the best bias-only model: softmax(b) = the (add-half
 * smoothed) class frequencies, sigmoid(b_k) = each label's smoothed frequency; the bias-only loss is then
 * the labels' entropy, never the probe's bias (meaningless without w1'f). */
static void prior_bias(void) {
    enum { N = 10, KK = 3 };
    int lab[N] = {0, 0, 0, 0, 0, 1, 1, 1, 2, 0};             /* 6 / 3 / 1 */
    gf_cached_set s = {N, 1, KK, 0, NULL, lab, NULL};
    float b[KK];
    gf_prior_bias(&s, b);
    double z = 0, want[KK] = {6.5 / 11.5, 3.5 / 11.5, 1.5 / 11.5};
    for (int k = 0; k < KK; k++) z += exp(b[k]);
    for (int k = 0; k < KK; k++)
        CHECK(fabs(exp(b[k]) / z - want[k]) < 1e-6, "softmax prior: class %d %.6f, want %.6f", k, exp(b[k]) / z, want[k]);
    float t[N * KK] = {0};
    for (int i = 0; i < N; i++) { t[i * KK] = i < 7; t[i * KK + 1] = 1; }   /* label 0 on 7, 1 on all, 2 on none */
    gf_cached_set m = {N, 1, KK, 1, NULL, NULL, t};
    gf_prior_bias(&m, b);
    double wm[KK] = {7.5 / 11, 10.5 / 11, 0.5 / 11};
    for (int k = 0; k < KK; k++)
        CHECK(fabs(1 / (1 + exp(-b[k])) - wm[k]) < 1e-6, "multi-label prior: label %d %.6f, want %.6f", k,
              1 / (1 + exp(-b[k])), wm[k]);
    printf("prior bias: softmax and per-label sigmoid reproduce the smoothed frequencies\n");
}

static void holdout_split(gf_ctx *ctx) {
    enum { N = 90, S = 3, KK = 3 };
    float z[N * S];
    int lab[N];
    for (int i = 0; i < N; i++) { lab[i] = (i * 7) % KK; for (int j = 0; j < S; j++) z[i * S + j] = (float)(i * 10 + j); }
    gf_cached_set set = {N, S, KK, 0, z, lab, NULL}, ho;
    REQUIRE_OK(ctx, gf_holdout_split(ctx, &set, z, lab, NULL, 0.1, 7, &ho));
    CHECK(set.n + ho.n == N && ho.n == 9, "split %d + %d", set.n, ho.n);
    CHECK(ho.z0 == z + (size_t)set.n * S && ho.labels == lab + set.n, "held-out rows at the end");
    int seen[N] = {0}, per_class[KK] = {0};
    for (int i = 0; i < N; i++) {
        int id = (int)z[i * S] / 10;
        CHECK(id >= 0 && id < N && z[i * S + 2] == z[i * S] + 2, "row %d moved whole", i);
        if (id < 0 || id >= N) continue;
        seen[id]++;
        CHECK(lab[i] == (id * 7) % KK, "row %d carries its label", i);
        if (i >= set.n) per_class[lab[i]]++;
    }
    for (int i = 0; i < N; i++) CHECK(seen[i] == 1, "row %d appears %d times", i, seen[i]);
    for (int k = 0; k < KK; k++) CHECK(per_class[k] == 3, "class %d: %d held out, expected 3", k, per_class[k]);
    float z2[N * S];
    int lab2[N];
    for (int i = 0; i < N; i++) { lab2[i] = (i * 7) % KK; for (int j = 0; j < S; j++) z2[i * S + j] = (float)(i * 10 + j); }
    gf_cached_set set2 = {N, S, KK, 0, z2, lab2, NULL}, ho2;
    REQUIRE_OK(ctx, gf_holdout_split(ctx, &set2, z2, lab2, NULL, 0.1, 7, &ho2));
    CHECK(!memcmp(z, z2, sizeof z), "same seed, different split");
}

/* The cosine schedule (o.lr_cosine): with the whole set as one batch, two epochs are two steps at lr and
 * lr/2 (cos(pi/2) = 0). gf_train's full model must match two steps taken here by hand at those rates, up to
 * the rounding of summing the batch in another order, and be far from two steps at a constant lr. */
static void cosine_schedule(gf_ctx *ctx, const float *theta, const float *z, const int *lab, gf_cached_set *tr) {
    gf_node nd[4];
    gf_block *blk;
    REQUIRE_OK(ctx, gf_block_create(ctx, C_IN, H, H, nd, nodes(nd), NTR, &blk));
    size_t P = gf_block_param_count(blk), S = C_IN * H * H;
    int d = gf_block_feature_dim(blk);
    gf_train_options o;
    gf_train_options_default(&o);
    /* SGD: its update is linear in the gradient, so summing the batch in another order (the trainer shuffles
     * it) moves the result by rounding only; Adam's first step divides by |g| and magnifies it on tiny g */
    o.epochs = 2; o.batch = NTR; o.optim.lr = 1e-1f; o.optim.adam = 0; o.seed = 3; o.lr_cosine = 1;
    gf_train_result a;
    REQUIRE_OK(ctx, gf_train(ctx, blk, theta, tr, NULL, (1u << GF_METHOD_LINEAR) | (1u << GF_METHOD_FULL), &o, &a));
    CHECK(a.m[GF_METHOD_FULL].epochs_run == 2, "full ran %d epochs", a.m[GF_METHOD_FULL].epochs_run);
    cl_mem x, lb;
    REQUIRE_OK(ctx, gf_buf_create_from(ctx, (size_t)NTR * S * 4, z, "x", &x));
    REQUIRE_OK(ctx, gf_buf_create_from(ctx, NTR * sizeof(int), lab, "labels", &lb));
    size_t n = P + (size_t)K * d + K;
    float *got = malloc(n * 4), *start = malloc(n * 4);
    memcpy(got, a.m[GF_METHOD_FULL].block_params, P * 4);
    memcpy(got + P, a.m[GF_METHOD_FULL].w1, (size_t)K * d * 4);
    memcpy(got + P + (size_t)K * d, a.m[GF_METHOD_FULL].b1, K * 4);
    double err[2];
    for (int constant = 0; constant < 2; constant++) {
        gf_lin *m;
        REQUIRE_OK(ctx, gf_lin_create(ctx, blk, GF_METHOD_FULL, K, GF_LOSS_SOFTMAX, theta, a.m[GF_METHOD_LINEAR].w1,
                                      a.m[GF_METHOD_LINEAR].b1, &m));
        if (!constant) REQUIRE_OK(ctx, gf_lin_read_params(ctx, m, start, start + P, start + P + (size_t)K * d));
        gf_optim step = o.optim;
        REQUIRE_OK(ctx, gf_lin_train_step(ctx, m, NTR, x, lb, &step));
        if (!constant) step.lr = o.optim.lr * 0.5f;
        REQUIRE_OK(ctx, gf_lin_train_step(ctx, m, NTR, x, lb, &step));
        float *mine = malloc(n * 4);
        REQUIRE_OK(ctx, gf_lin_read_params(ctx, m, mine, mine + P, mine + P + (size_t)K * d));
        double num = 0, den = 0;   /* |got - mine| / |mine - start|: the update's relative error */
        for (size_t i = 0; i < n; i++) {
            num += ((double)got[i] - mine[i]) * ((double)got[i] - mine[i]);
            den += ((double)mine[i] - start[i]) * ((double)mine[i] - start[i]);
        }
        err[constant] = sqrt(num / den);
        free(mine);
        gf_lin_free(m);
    }
    printf("cosine schedule: trained vs by hand at lr, lr/2: %.3g; vs at lr, lr: %.3g\n", err[0], err[1]);
    CHECK(err[0] < 1e-4, "the cosine schedule's two steps differ from lr, lr/2 by hand: %.3g", err[0]);
    CHECK(err[1] > 0.05, "a constant rate gives the same model as the cosine schedule (%.3g)", err[1]);
    free(got); free(start);
    gf_buf_release(&x); gf_buf_release(&lb);
    gf_train_result_free(&a);
    gf_block_free(blk);
}

/* A run stopped after the probe and resumed refills the primal cache with the feature pass's bits: with a conv
 * that takes Winograd F(4x4, 3x3) only for frozen weights (64 channels, 128 2x2 tiles a batch; 64 is below the
 * moving-weight rule's 128), the resumed `full` (which reads f(x) from that cache) equals the uninterrupted one bit
 * for bit only when both feature passes freeze θ̄ (train.c theta_bar_params). */
static volatile sig_atomic_t stop_flag;
static gf_status stop_after_probe(void *user, gf_method m, const gf_method_result *r, const gf_method_result *probe) {
    (void)user; (void)r; (void)probe;
    if (m == GF_METHOD_LINEAR) stop_flag = 1;
    return GF_OK;
}
static void resume_after_probe(gf_ctx *ctx) {
    enum { CW = 64, HW = 8, N = 24, NV = 8, BW = 8 };
    gf_node nd[3];
    gf_conv_desc cd;
    memset(nd, 0, sizeof nd);
    gf_conv_desc_simple(NULL, &cd, 1, CW, HW, HW, CW, 3, 1, 1, 1, 1);
    nd[0] = (gf_node){.kind = GF_K_CONV, .name = "conv", .in = {GF_NODE_INPUT}, .conv = cd, .has_bias = 1};
    nd[1] = (gf_node){.kind = GF_K_ACT, .name = "relu", .in = {0}, .act = {GF_ACT_RELU, 0}};
    nd[2] = (gf_node){.kind = GF_K_GAP, .name = "gap", .in = {1}};
    gf_block *blk;
    REQUIRE_OK(ctx, gf_block_create(ctx, CW, HW, HW, nd, 3, BW, &blk));
    size_t P = gf_block_param_count(blk), S = (size_t)CW * HW * HW;
    int d = gf_block_feature_dim(blk);
    test_rng r;
    test_rng_seed(&r, 31);
    float *theta = malloc(P * 4), *z = malloc((N + NV) * S * 4);
    int *lab = malloc((N + NV) * sizeof(int));
    test_fill(&r, theta, P, -0.05, 0.05);
    test_fill(&r, z, (N + NV) * S, -1, 1);
    for (int i = 0; i < N + NV; i++) lab[i] = i % K;
    gf_cached_set tr = {N, (int)S, K, 0, z, lab, NULL}, va = {NV, (int)S, K, 0, z + (size_t)N * S, lab + N, NULL};
    gf_conv_desc at = cd;
    at.n = BW;
    gf_conv_fixed kept = {0};
    at.fixed = &kept;
    int wino_fixed = gf_conv_uses_winograd(ctx, &at);
    at.fixed = NULL;
    printf("resume after the probe: Winograd tile %d for the frozen conv, %d for a moving one\n", wino_fixed,
           gf_conv_uses_winograd(ctx, &at));
    gf_train_options o;
    gf_train_options_default(&o);
    o.epochs = 2; o.batch = BW; o.optim.lr = 1e-2f; o.seed = 3;
    unsigned methods = 1u << GF_METHOD_LINEAR | 1u << GF_METHOD_FULL;   /* full reads f(x) from the primal cache */
    gf_train_result a, b, c;
    REQUIRE_OK(ctx, gf_train(ctx, blk, theta, &tr, &va, methods, &o, &a));
    CHECK(a.primal_cache_bytes > 0, "resume after the probe: no primal cache");
    char path[512];   /* gf_train writes it by temp file + rename */
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/gf_test_train_resume_%d.gfckpt", tmp && *tmp ? tmp : "/tmp", (int)getpid());
    gf_train_options so = o;
    so.checkpoint_path = path;
    so.stop = &stop_flag;
    so.on_method = stop_after_probe;
    stop_flag = 0;
    REQUIRE_OK(ctx, gf_train(ctx, blk, theta, &tr, &va, methods, &so, &b));
    CHECK(b.stopped && !b.m[GF_METHOD_FULL].ran, "the run did not stop after the probe");
    gf_ckpt ck;
    REQUIRE_OK(ctx, gf_ckpt_read(ctx, path, &ck));
    CHECK(ck.done[GF_METHOD_LINEAR] && !ck.done[GF_METHOD_FULL], "checkpoint: the probe done, full not");
    gf_train_options ro = o;
    ro.checkpoint_path = path;
    ro.resume = &ck;
    REQUIRE_OK(ctx, gf_train(ctx, blk, theta, &tr, &va, methods, &ro, &c));
    CHECK(c.m[GF_METHOD_FULL].ran && same(&a, &c, P, d), "stopped after the probe and resumed: the full model "
          "differs from the uninterrupted run's (Winograd tile %d for the frozen conv)", wino_fixed);
    gf_ckpt_free(&ck);
    unlink(path);
    gf_train_result_free(&a); gf_train_result_free(&b); gf_train_result_free(&c);
    gf_block_free(blk);
    free(theta); free(z); free(lab);
}

int main(void) {
    metrics();
    prior_bias();
    gf_ctx *ctx = test_ctx();
    gf_node nd[4];
    gf_block *blk;
    REQUIRE_OK(ctx, gf_block_create(ctx, C_IN, H, H, nd, nodes(nd), B, &blk));
    size_t P = gf_block_param_count(blk), S = C_IN * H * H;
    int d = gf_block_feature_dim(blk);
    test_rng r; test_rng_seed(&r, 11);
    float *theta = calloc(P, 4);
    int nn; const gf_node *bn = gf_block_nodes(blk, &nn);
    for (int i = 0; i < nn; i++) {
        if (bn[i].w_off >= 0) test_fill(&r, theta + bn[i].w_off, bn[i].w_count, -0.3, 0.3);
        if (bn[i].b_off >= 0) test_fill(&r, theta + bn[i].b_off, bn[i].b_count, -0.1, 0.1);
    }
    /* labels: which channel has the largest mean (learnable from pooled features) */
    float *z = malloc((NTR + NVA) * S * 4);
    int *lab = malloc((NTR + NVA) * sizeof(int));
    test_fill(&r, z, (NTR + NVA) * S, -1, 1);
    for (int i = 0; i < NTR + NVA; i++) {
        lab[i] = i % K;
        for (int j = 0; j < H * H; j++) z[(size_t)i * S + lab[i] * H * H + j] += 0.8f;
    }
    gf_cached_set tr = {NTR, (int)S, K, 0, z, lab, NULL}, va = {NVA, (int)S, K, 0, z + (size_t)NTR * S, lab + NTR, NULL};
    gf_train_options o;
    gf_train_options_default(&o);
    o.epochs = 4; o.batch = B; o.optim.lr = 1e-2f; o.seed = 5;
    unsigned all = 0xF;
    gf_train_result a, b, c;
    REQUIRE_OK(ctx, gf_train(ctx, blk, theta, &tr, &va, all, &o, &a));
    CHECK(a.cache_on_device, "small cache should be on the device");
    primal_roundtrip(ctx, blk, theta, z, S);
    {   /* the same with products, a gate, smooth activations and a concat. Kept: conv's input (the block input:
           not stored), silu's input, se.fc's, se.gate's, both factors of both products (silu, se.gate, se.mul,
           sig), conv2's input (cat); the activations' values (silu, se.gate, sig) are made again at the load */
        gf_node ng[10];
        primal_block(ctx, &r, ng, nodes_gated(ng), 8 * H * H /* conv */ + 8 /* se.pool */ + 8 /* se.fc */ +
                     8 * H * H /* se.mul */ + 16 * H * H /* cat */, "gated block", z, S);
    }
    {   /* an activation of the block input: made again from the input at the load (nothing kept for it) */
        gf_node ni[3];
        gf_conv_desc d;
        memset(ni, 0, sizeof ni);
        gf_conv_desc_simple(NULL, &d, 1, C_IN, H, H, 8, 3, 1, 1, 1, 1);
        ni[0] = (gf_node){.kind = GF_K_ACT, .name = "in.relu", .in = {GF_NODE_INPUT}, .act = {GF_ACT_RELU, 0}};
        ni[1] = (gf_node){.kind = GF_K_CONV, .name = "conv", .in = {0}, .conv = d, .has_bias = 1};
        ni[2] = (gf_node){.kind = GF_K_ACT, .name = "relu", .in = {1}, .act = {GF_ACT_LEAKY, 0.1f}};
        primal_block(ctx, &r, ni, 3, 8 * H * H /* conv, which the leaky ReLU reads */, "input ReLU block", z, S);
    }
    /* kept per sample: conv and pool outputs (relu and conv2 read them), pool routing, features */
    size_t pb = (size_t)(8 * H * H + 2 * 8 * (H / 2) * (H / 2) + d) * 4;
    CHECK(gf_block_primal_bytes(blk, 0) == pb, "primal bytes per sample %zu, expected %zu", gf_block_primal_bytes(blk, 0), pb);
    CHECK(a.primal_cache_bytes == pb * NTR, "primal cache used (%zu bytes)", a.primal_cache_bytes);
    for (int m = 0; m < 4; m++) {
        printf("%-9s train loss %.4f acc %.3f  val loss %.4f acc %.3f\n", gf_method_name((gf_method)m), a.m[m].train_loss,
               a.m[m].train_metric, a.m[m].val_loss, a.m[m].val_metric);
        CHECK(a.m[m].ran, "%s ran", gf_method_name((gf_method)m));
        CHECK(a.m[m].train_metric > 0.5, "%s train accuracy %.3f above chance", gf_method_name((gf_method)m), a.m[m].train_metric);
        CHECK(isfinite(a.m[m].val_loss), "val loss finite");
    }
    REQUIRE_OK(ctx, gf_train(ctx, blk, theta, &tr, &va, all, &o, &b));
    CHECK(same(&a, &b, P, d), "same seed, same device: results differ");
    gf_train_result_free(&b);
    o.no_primal_cache = 1;   /* the forward at θ̄ every step: the same models up to rounding */
    REQUIRE_OK(ctx, gf_train(ctx, blk, theta, &tr, &va, all, &o, &b));
    CHECK(b.primal_cache_bytes == 0, "primal cache off");
    {   /* a sample's forward can differ in the last bits with its position in a batch (GEMM edge tiles) */
        double worst = 0;
        for (int m = 1; m < 4; m++) {
            for (size_t i = 0; i < P; i++) worst = fmax(worst, fabs(a.m[m].block_params[i] - b.m[m].block_params[i]));
            for (int i = 0; i < K * d; i++) worst = fmax(worst, fabs(a.m[m].w1[i] - b.m[m].w1[i]));
        }
        printf("primal cache vs forward: max |param diff| %.3g\n", worst);
        CHECK(worst < 1e-4, "primal cache changes the trained models: max |diff| %.3g", worst);
    }
    o.no_primal_cache = 0;
    o.max_device_mem = 1;   /* forces the host-resident cache */
    REQUIRE_OK(ctx, gf_train(ctx, blk, theta, &tr, &va, all, &o, &c));
    CHECK(!c.cache_on_device, "cache should be in host memory");
    CHECK(c.primal_cache_bytes == 0, "no room for the primal cache either");
    CHECK(same(&b, &c, P, d), "host-resident cache gives a different model (both without primal cache)");
    gf_train_result_free(&a); gf_train_result_free(&b); gf_train_result_free(&c);

    resume_after_probe(ctx);
    cosine_schedule(ctx, theta, z, lab, &tr);
    probe_solver(ctx);
    holdout_split(ctx);
    {   /* model selection with a holdout, NTK on, on labels that are noise: the probe's L2 search
         * makes it near-uniform, and every epoch of fitting the noise at a large learning rate is
         * worse on the holdout than the start, so full and finetune must keep epoch 0: the probe */
        int *noise = malloc((NTR + NVA) * sizeof(int));
        test_rng nr; test_rng_seed(&nr, 99);
        for (int i = 0; i < NTR + NVA; i++) noise[i] = (int)test_uniform(&nr, 0, K) % K;
        tr.labels = noise; va.labels = noise + NTR;
        gf_cached_set ho = va;     /* held-out rows: the val rows (only their role differs here) */
        gf_train_options so = o;
        so.max_device_mem = 0;
        so.holdout = &ho;
        so.select = GF_SELECT_LOSS;
        so.ntk = 1;
        so.optim.lr = 3.0f;
        so.diverge_factor = 0;     /* keep training: selection alone must undo it */
        REQUIRE_OK(ctx, gf_train(ctx, blk, theta, &tr, &va, all, &so, &a));
        const gf_method_result *pr = &a.m[GF_METHOD_LINEAR];
        for (int m = 1; m < 4; m++)
            printf("selection: %-9s best epoch %d, held-out loss %.6f (probe %.6f), val acc %.3f (probe %.3f)\n",
                   gf_method_name((gf_method)m), a.m[m].best_epoch, a.m[m].hold_loss, pr->hold_loss, a.m[m].val_metric,
                   pr->val_metric);
        for (int m = GF_METHOD_FULL; m <= GF_METHOD_FINETUNE; m++) {
            CHECK(a.m[m].hold_loss <= pr->hold_loss * (1 + 1e-5) + 1e-6, "%s kept a model worse on the holdout than the "
                  "probe it starts from: %.6f > %.6f", gf_method_name((gf_method)m), a.m[m].hold_loss, pr->hold_loss);
            if (a.m[m].best_epoch == 0) {   /* the probe restored: same predictions (NTK head rescaling included) */
                CHECK(fabs(a.m[m].hold_loss - pr->hold_loss) <= 1e-5 * (1 + pr->hold_loss), "%s epoch 0 is not the probe: "
                      "held-out loss %.7f vs %.7f", gf_method_name((gf_method)m), a.m[m].hold_loss, pr->hold_loss);
                CHECK(fabs(a.m[m].val_loss - pr->val_loss) <= 1e-5 * (1 + pr->val_loss), "%s restored epoch 0 but its val "
                      "loss %.7f is not the probe's %.7f", gf_method_name((gf_method)m), a.m[m].val_loss, pr->val_loss);
            }
        }
        CHECK(a.m[GF_METHOD_FULL].best_epoch == 0, "full at lr 3 should keep epoch 0, kept %d", a.m[GF_METHOD_FULL].best_epoch);
        gf_train_result_free(&a);
        so.diverge_factor = 3;     /* and divergence stops it early */
        so.diverge_patience = 2;
        so.epochs = 8;
        REQUIRE_OK(ctx, gf_train(ctx, blk, theta, &tr, &va, all, &so, &a));
        printf("divergence: full ran %d of 8 epochs (diverged %d)\n", a.m[GF_METHOD_FULL].epochs_run, a.m[GF_METHOD_FULL].diverged);
        CHECK(!a.m[GF_METHOD_FULL].diverged || a.m[GF_METHOD_FULL].epochs_run < 8, "diverged but ran every epoch");
        gf_train_result_free(&a);
        free(noise);
    }
    gf_block_free(blk);
    gf_ctx_free(ctx);
    free(theta); free(z); free(lab);
    return test_finish("test_train");
}
