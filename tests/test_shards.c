/* The arithmetic of data-parallel steps (host/method/train.c over several processes), in one process:
 *  - gf_dist_share / gf_dist_share_units split n items into contiguous shares that cover them once
 *    (whole units, the last one short);
 *  - per method, the batch's gradient vector (gf_lin_grads_get) equals the sum of its shards' vectors,
 *    each computed with the loss's mean over the whole batch (gf_lin_set_mean_over), for 2, 3 and 9
 *    shards of 7 rows (9: two empty shards), to 1e-6 relative (norm); the shards' loss and correct
 *    count add up to the batch's;
 *  - writing the summed vector back (gf_lin_grads_set) and stepping (gf_lin_apply_step) gives the
 *    parameters of gf_lin_train_step on the whole batch, to the same tolerance. */
#include "gf_dist.h"
#include "linearized.h"
#include "testutil.h"

enum { C_IN = 3, H_IN = 7, N = 7, K = 4 };

static int build_nodes(gf_node *nd) {
    memset(nd, 0, 4 * sizeof *nd);
    int i = 0;
    gf_conv_desc d;
    gf_conv_desc_simple(NULL, &d, 1, C_IN, H_IN, H_IN, 5, 3, 2, 1, 1, 1);
    nd[i] = (gf_node){.kind = GF_K_CONV, .name = "conv1", .in = {GF_NODE_INPUT}, .conv = d, .has_bias = 1}; i++;
    nd[i] = (gf_node){.kind = GF_K_ACT, .name = "relu1", .in = {0}, .act = {GF_ACT_RELU, 0}}; i++;
    gf_conv_desc_simple(NULL, &d, 1, 5, 4, 4, 6, 3, 1, 1, 1, 1);
    nd[i] = (gf_node){.kind = GF_K_CONV, .name = "conv2", .in = {1}, .conv = d, .has_bias = 1}; i++;
    nd[i] = (gf_node){.kind = GF_K_ACT, .name = "leaky", .in = {2}, .act = {GF_ACT_LEAKY, 0.1f}}; i++;
    return i;
}

/* ||a - b|| / ||b|| */
static double rel_norm(const double *a, const float *b, size_t n) {
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) { d += (a[i] - b[i]) * (a[i] - b[i]); s += (double)b[i] * b[i]; }
    return s > 0 ? sqrt(d / s) : sqrt(d);
}

int main(void) {
    /* shares */
    for (int n = 0; n <= 40; n++)
        for (int size = 1; size <= 5; size++)
            for (int unit = 1; unit <= 9; unit += 4) {
                int next = 0, ok = 1;
                for (int r = 0; r < size; r++) {
                    int lo, hi;
                    gf_dist_share_units(n, unit, r, size, &lo, &hi);
                    ok &= lo == next && hi >= lo && (lo % unit == 0 || lo == n) && (hi % unit == 0 || hi == n);
                    next = hi;
                }
                CHECK(ok && next == n, "gf_dist_share_units(n %d, unit %d, size %d): not contiguous whole units", n, unit, size);
            }

    gf_ctx *ctx = test_ctx();
    gf_node nodes[8];
    int nn = build_nodes(nodes);
    gf_block *blk;
    REQUIRE_OK(ctx, gf_block_create(ctx, C_IN, H_IN, H_IN, nodes, nn, N, &blk));
    size_t P = gf_block_param_count(blk);
    int d = gf_block_feature_dim(blk);
    test_rng r; test_rng_seed(&r, 11);
    size_t row = (size_t)C_IN * H_IN * H_IN;
    float *x = malloc(N * row * sizeof(float)), *theta = calloc(P, sizeof(float));
    int cnt;
    const gf_node *bn = gf_block_nodes(blk, &cnt);
    for (int i = 0; i < cnt; i++) {
        if (bn[i].w_off >= 0) test_fill(&r, theta + bn[i].w_off, bn[i].w_count, -0.4, 0.4);
        if (bn[i].b_off >= 0) test_fill(&r, theta + bn[i].b_off, bn[i].b_count, -0.2, 0.2);
    }
    test_fill(&r, x, N * row, -1, 1);
    float *omega = malloc((size_t)K * d * sizeof(float)), bias[K];
    test_fill(&r, omega, (size_t)K * d, -1, 1);
    test_fill(&r, bias, K, -0.5, 0.5);
    int labels[N];
    for (int i = 0; i < N; i++) labels[i] = (i * 3) % K;
    gf_optim opt = gf_optim_paper_defaults();
    opt.adam = 0; opt.lr = 0.05f; opt.momentum = 0.9f;   /* SGD: the step is linear in the gradient */

    for (int mth = 0; mth < GF_METHOD_COUNT; mth++) {
        gf_lin *m, *ref;
        REQUIRE_OK(ctx, gf_lin_create(ctx, blk, (gf_method)mth, K, GF_LOSS_SOFTMAX, theta, omega, bias, &m));
        REQUIRE_OK(ctx, gf_lin_create(ctx, blk, (gf_method)mth, K, GF_LOSS_SOFTMAX, theta, omega, bias, &ref));
        size_t G = gf_lin_grad_floats(m);
        float *whole = malloc(G * sizeof(float)), *part = malloc(G * sizeof(float)), *fsum = malloc(G * sizeof(float));
        double *sum = malloc(G * sizeof(double));
        cl_mem dx = test_upload(ctx, x, N * row), dl = test_alloc(ctx, N);
        REQUIRE_OK(ctx, gf_buf_write(ctx, dl, 0, sizeof labels, labels));
        double loss_w, cor_w;
        REQUIRE_OK(ctx, gf_lin_take_stats(ctx, m, NULL, NULL, NULL));
        REQUIRE_OK(ctx, gf_lin_gradients(ctx, m, N, dx, dl));
        REQUIRE_OK(ctx, gf_lin_grads_get(ctx, m, whole));
        REQUIRE_OK(ctx, gf_lin_take_stats(ctx, m, &loss_w, &cor_w, NULL));
        static const int shard_counts[] = {2, 3, 9};
        for (int si = 0; si < 3; si++) {
            int S = shard_counts[si];
            double loss_s = 0, cor_s = 0;
            for (size_t i = 0; i < G; i++) sum[i] = 0;
            for (int s = 0; s < S; s++) {
                int lo, hi;
                gf_dist_share(N, s, S, &lo, &hi);
                cl_mem sx = hi > lo ? test_upload(ctx, x + (size_t)lo * row, (size_t)(hi - lo) * row) : NULL;
                cl_mem sl = hi > lo ? test_alloc(ctx, (size_t)(hi - lo)) : NULL;
                if (hi > lo) REQUIRE_OK(ctx, gf_buf_write(ctx, sl, 0, (size_t)(hi - lo) * sizeof(int), labels + lo));
                double l, c;
                gf_lin_set_mean_over(m, N);
                REQUIRE_OK(ctx, gf_lin_gradients(ctx, m, hi - lo, sx, sl));
                gf_lin_set_mean_over(m, 0);
                REQUIRE_OK(ctx, gf_lin_grads_get(ctx, m, part));
                REQUIRE_OK(ctx, gf_lin_take_stats(ctx, m, &l, &c, NULL));
                loss_s += l; cor_s += c;
                for (size_t i = 0; i < G; i++) sum[i] += part[i];
                gf_buf_release(&sx);
                gf_buf_release(&sl);
            }
            double e = rel_norm(sum, whole, G);
            printf("%-8s %d shards: gradient (%zu floats) rel %.2e, loss %.9g vs %.9g, correct %g vs %g\n",
                   gf_method_name((gf_method)mth), S, G, e, loss_s, loss_w, cor_s, cor_w);
            CHECK(e <= 1e-6, "%s, %d shards: summed gradient vs the batch's: rel %.3e", gf_method_name((gf_method)mth), S, e);
            CHECK(fabs(loss_s - loss_w) <= 1e-6 * fabs(loss_w), "%s, %d shards: loss %.9g vs %.9g",
                  gf_method_name((gf_method)mth), S, loss_s, loss_w);
            CHECK(cor_s == cor_w, "%s, %d shards: correct %g vs %g", gf_method_name((gf_method)mth), S, cor_s, cor_w);
        }
        /* the step from the summed vector vs the whole-batch step */
        for (size_t i = 0; i < G; i++) fsum[i] = (float)sum[i];
        REQUIRE_OK(ctx, gf_lin_grads_set(ctx, m, fsum));
        REQUIRE_OK(ctx, gf_lin_apply_step(ctx, m, &opt));
        REQUIRE_OK(ctx, gf_lin_train_step(ctx, ref, N, dx, dl, &opt));
        float *pb = malloc(P * sizeof(float)), *rb = malloc(P * sizeof(float));
        float *pw = malloc((size_t)K * d * sizeof(float)), *rw = malloc((size_t)K * d * sizeof(float)), p1[K], r1[K];
        REQUIRE_OK(ctx, gf_lin_read_params(ctx, m, pb, pw, p1));
        REQUIRE_OK(ctx, gf_lin_read_params(ctx, ref, rb, rw, r1));
        double md = 0, mx = 0;
        size_t nb = mth == GF_METHOD_LINEAR ? 0 : P;
        for (size_t i = 0; i < nb; i++) { md = fmax(md, fabs(pb[i] - rb[i])); mx = fmax(mx, fabs(rb[i])); }
        for (int i = 0; i < K * d; i++) { md = fmax(md, fabs(pw[i] - rw[i])); mx = fmax(mx, fabs(rw[i])); }
        for (int i = 0; i < K; i++) { md = fmax(md, fabs(p1[i] - r1[i])); mx = fmax(mx, fabs(r1[i])); }
        CHECK(md <= 1e-6 * mx, "%s: parameters after the summed step vs gf_lin_train_step: max diff %.3e of %.3e",
              gf_method_name((gf_method)mth), md, mx);
        CHECK(gf_lin_step_count(m) == 1 && gf_lin_step_count(ref) == 1, "step counts %ld %ld", gf_lin_step_count(m),
              gf_lin_step_count(ref));
        free(pb); free(rb); free(pw); free(rw);
        free(whole); free(part); free(fsum); free(sum);
        gf_buf_release(&dx); gf_buf_release(&dl);
        gf_lin_free(m); gf_lin_free(ref);
    }
    free(x); free(theta); free(omega);
    gf_block_free(blk);
    gf_ctx_free(ctx);
    return test_finish("test_shards");
}
