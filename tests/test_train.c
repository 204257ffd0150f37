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
    memset(nd, 0, 3 * sizeof *nd);
    gf_conv_desc_simple(NULL, &d, 1, C_IN, H, H, 8, 3, 1, 1, 1, 1);
    nd[0] = (gf_bnode){.kind = GF_BN_CONV, .name = "conv", .in = {GF_BLOCK_INPUT}, .conv = d, .has_bias = 1};
    nd[1] = (gf_bnode){.kind = GF_BN_ACT, .name = "relu", .in = {0}, .act = {GF_ACT_RELU, 0}};
    gf_conv_desc_simple(NULL, &d, 1, 8, H, H, 8, 3, 2, 1, 1, 1);
    nd[2] = (gf_bnode){.kind = GF_BN_CONV, .name = "conv2", .in = {1}, .conv = d, .has_bias = 1};
    return 3;
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
    for (int m = 0; m < 4; m++) {
        printf("%-9s train loss %.4f acc %.3f  val loss %.4f acc %.3f\n", gf_method_name((gf_method)m), a.m[m].train_loss,
               a.m[m].train_metric, a.m[m].val_loss, a.m[m].val_metric);
        CHECK(a.m[m].ran, "%s ran", gf_method_name((gf_method)m));
        CHECK(a.m[m].train_metric > 0.5, "%s train accuracy %.3f above chance", gf_method_name((gf_method)m), a.m[m].train_metric);
        CHECK(isfinite(a.m[m].val_loss), "val loss finite");
    }
    REQUIRE_OK(ctx, gf_train(ctx, blk, theta, &tr, &va, all, &o, &b));
    CHECK(same(&a, &b, P, d), "same seed, same device: results differ");
    o.max_device_mem = 1;   /* forces the host-resident cache */
    REQUIRE_OK(ctx, gf_train(ctx, blk, theta, &tr, &va, all, &o, &c));
    CHECK(!c.cache_on_device, "cache should be in host memory");
    CHECK(same(&a, &c, P, d), "host-resident cache gives a different model");
    gf_train_result_free(&a); gf_train_result_free(&b); gf_train_result_free(&c);
    gf_block_free(blk);
    gf_ctx_free(ctx);
    free(theta); free(z); free(lab);
    return test_finish("test_train");
}
