/* Training driver: metrics on hand-worked examples; gf_train runs the probe
 * and the three other methods, learns (train accuracy above chance), is
 * deterministic for a seed, and the device-resident and host-resident
 * activation caches give bitwise-identical models. */
#include "train.h"
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

static int nodes(gf_bnode *nd) {
    gf_conv_desc d;
    memset(nd, 0, 4 * sizeof *nd);
    gf_conv_desc_simple(NULL, &d, 1, C_IN, H, H, 8, 3, 1, 1, 1, 1);
    nd[0] = (gf_bnode){.kind = GF_BN_CONV, .name = "conv", .in = {GF_BLOCK_INPUT}, .conv = d, .has_bias = 1};
    nd[1] = (gf_bnode){.kind = GF_BN_ACT, .name = "relu", .in = {0}, .act = {GF_ACT_RELU, 0}};
    /* a max pool: its routing is part of the primal cache */
    nd[2] = (gf_bnode){.kind = GF_BN_MAXPOOL, .name = "pool", .in = {1}, .pool_k = {2, 2}, .pool_s = {2, 2}};
    gf_conv_desc_simple(NULL, &d, 1, 8, H / 2, H / 2, 8, 3, 1, 1, 1, 1);
    nd[3] = (gf_bnode){.kind = GF_BN_CONV, .name = "conv2", .in = {2}, .conv = d, .has_bias = 1};
    return 4;
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
    REQUIRE_OK(ctx, gf_primal_cache_create(ctx, blk, NTR, &pc));
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
            REQUIRE_OK(ctx, gf_primal_cache_load(ctx, blk, pc, B, idx, f));
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

int main(void) {
    metrics();
    gf_ctx *ctx = test_ctx();
    gf_bnode nd[4];
    gf_block *blk;
    REQUIRE_OK(ctx, gf_block_create(ctx, C_IN, H, H, nd, nodes(nd), B, &blk));
    size_t P = gf_block_param_count(blk), S = C_IN * H * H;
    int d = gf_block_feature_dim(blk);
    test_rng r; test_rng_seed(&r, 11);
    float *theta = calloc(P, 4);
    int nn; const gf_bnode *bn = gf_block_nodes(blk, &nn);
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
    /* kept per sample: conv and pool outputs (relu and conv2 read them), pool routing, features */
    size_t pb = (size_t)(8 * H * H + 2 * 8 * (H / 2) * (H / 2) + d) * 4;
    CHECK(gf_block_primal_bytes(blk) == pb, "primal bytes per sample %zu, expected %zu", gf_block_primal_bytes(blk), pb);
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
    gf_block_free(blk);
    gf_ctx_free(ctx);
    free(theta); free(z); free(lab);
    return test_finish("test_train");
}
