/* The method on a small residual top block (conv s2 + ReLU + conv, 1x1
 * downsample shortcut, add, ReLU, max pool, depthwise conv, leaky ReLU):
 *  - step 0: `full` logits equal the probe's bit for bit;
 *  - block JVP vs central finite differences of the forward along a random
 *    parameter direction;
 *  - adjoint identity <J v, u> = <v, Jᵀ u> for the block;
 *  - gradients of the loss w.r.t. w2, w1, b1 (full), b1 (gradient) and θ
 *    (finetune) vs finite differences of the loss;
 *  - a few Adam steps reduce the training loss for every method. */
#include "linearized.h"
#include "testutil.h"

enum { C_IN = 5, H_IN = 9, N = 7, K = 4 };

static int build_nodes(gf_node *nd) {
    memset(nd, 0, 9 * sizeof *nd);
    int i = 0;
    gf_conv_desc d;
    gf_conv_desc_simple(NULL, &d, 1, C_IN, H_IN, H_IN, 6, 3, 2, 1, 1, 1);
    nd[i] = (gf_node){.kind = GF_K_CONV, .name = "conv1", .in = {GF_NODE_INPUT}, .conv = d, .has_bias = 1}; i++;
    nd[i] = (gf_node){.kind = GF_K_ACT, .name = "relu1", .in = {0}, .act = {GF_ACT_RELU, 0}}; i++;
    gf_conv_desc_simple(NULL, &d, 1, 6, 5, 5, 6, 3, 1, 1, 1, 1);
    nd[i] = (gf_node){.kind = GF_K_CONV, .name = "conv2", .in = {1}, .conv = d, .has_bias = 1}; i++;
    gf_conv_desc_simple(NULL, &d, 1, C_IN, H_IN, H_IN, 6, 1, 2, 0, 1, 1);
    nd[i] = (gf_node){.kind = GF_K_CONV, .name = "downsample", .in = {GF_NODE_INPUT}, .conv = d, .has_bias = 0}; i++;
    nd[i] = (gf_node){.kind = GF_K_ADD, .name = "add", .in = {2, 3}}; i++;
    nd[i] = (gf_node){.kind = GF_K_ACT, .name = "relu2", .in = {4}, .act = {GF_ACT_RELU, 0}}; i++;
    nd[i] = (gf_node){.kind = GF_K_MAXPOOL, .name = "pool", .in = {5}, .kernel = {2, 2}, .stride = {1, 1}}; i++;
    gf_conv_desc_simple(NULL, &d, 1, 6, 4, 4, 6, 3, 1, 1, 1, 6);
    nd[i] = (gf_node){.kind = GF_K_CONV, .name = "dwconv", .in = {6}, .conv = d, .has_bias = 1}; i++;
    nd[i] = (gf_node){.kind = GF_K_ACT, .name = "leaky", .in = {7}, .act = {GF_ACT_LEAKY, 0.1f}}; i++;
    return i;
}

static double dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* Activation pattern of the last forward: for each activation node the
 * region of its pre-activation (ReLU/leaky: z > 0; ReLU6: 0 < z < 6). A
 * central difference of a sample's features is only valid when that sample's
 * pattern at θ±εv equals θ's (samples are independent: GAP is per sample). */
static unsigned short pat_sample[1 << 16];   /* sample index of each pattern entry */
static void flipped_samples(const unsigned char *a, const unsigned char *b, const unsigned char *c, size_t len,
                            int *bad) {
    for (size_t j = 0; j < len; j++)
        if (a[j] != b[j] || a[j] != c[j]) bad[pat_sample[j]] = 1;
}
static void pattern(gf_ctx *ctx, gf_block *blk, int n, unsigned char *pat, size_t *len) {
    int nn; const gf_node *nd = gf_block_nodes(blk, &nn);
    size_t k = 0;
    for (int i = 0; i < nn; i++) {
        if (nd[i].kind != GF_K_ACT) continue;
        const gf_node *src = &nd[nd[i].in[0]];
        size_t cnt = (size_t)n * src->c * src->h * src->w;
        float *z = malloc(cnt * 4);
        test_download(ctx, gf_block_node_output(blk, nd[i].in[0]), z, cnt);
        for (size_t j = 0; j < cnt; j++, k++) pat_sample[k] = (unsigned short)(j / (cnt / n));
        k -= cnt;
        for (size_t j = 0; j < cnt; j++)
            pat[k++] = nd[i].act.kind == GF_ACT_RELU6 ? (z[j] > 0) + (z[j] >= 6) : z[j] > 0;
        free(z);
    }
    *len = k;
}

static double rel(double a, double b) { return fabs(a - b) / (fabs(b) + 1e-12); }

int main(void) {
    gf_ctx *ctx = test_ctx();
    gf_node nodes[16];
    int nn = build_nodes(nodes);
    gf_block *blk;
    REQUIRE_OK(ctx, gf_block_create(ctx, C_IN, H_IN, H_IN, nodes, nn, N, &blk));
    size_t P = gf_block_param_count(blk);
    int d = gf_block_feature_dim(blk);
    CHECK(d == 6, "feature dim %d", d);
    test_rng r; test_rng_seed(&r, 7);
    size_t nx = (size_t)N * C_IN * H_IN * H_IN;
    float *x = malloc(nx * 4), *theta = calloc(P, 4), *v = calloc(P, 4), *tmp = calloc(P, 4);
    const gf_node *bn; int cnt;
    bn = gf_block_nodes(blk, &cnt);
    for (int i = 0; i < cnt; i++) {   /* values only inside tensors; padding stays 0 */
        if (bn[i].w_off >= 0) { test_fill(&r, theta + bn[i].w_off, bn[i].w_count, -0.4, 0.4); test_fill(&r, v + bn[i].w_off, bn[i].w_count, -1, 1); }
        if (bn[i].b_off >= 0) { test_fill(&r, theta + bn[i].b_off, bn[i].b_count, -0.2, 0.2); test_fill(&r, v + bn[i].b_off, bn[i].b_count, -1, 1); }
    }
    test_fill(&r, x, nx, -1, 1);
    float omega[K * 6], bias[K];
    test_fill(&r, omega, K * 6, -1, 1); test_fill(&r, bias, K, -0.5, 0.5);
    int labels[N];
    for (int i = 0; i < N; i++) labels[i] = i % K;
    cl_mem dx = test_upload(ctx, x, nx), dl = test_alloc(ctx, N);
    REQUIRE_OK(ctx, gf_buf_write(ctx, dl, 0, sizeof labels, labels));

    /* ---- step 0: full == probe, bitwise ---- */
    gf_lin *probe, *full;
    REQUIRE_OK(ctx, gf_lin_create(ctx, blk, GF_METHOD_LINEAR, K, GF_LOSS_SOFTMAX, theta, omega, bias, &probe));
    REQUIRE_OK(ctx, gf_lin_create(ctx, blk, GF_METHOD_FULL, K, GF_LOSS_SOFTMAX, theta, omega, bias, &full));
    float lp[N * K], lf[N * K];
    REQUIRE_OK(ctx, gf_lin_forward(ctx, probe, N, dx));
    test_download(ctx, gf_lin_logits_buffer(probe), lp, N * K);
    REQUIRE_OK(ctx, gf_lin_forward(ctx, full, N, dx));
    test_download(ctx, gf_lin_logits_buffer(full), lf, N * K);
    CHECK(memcmp(lp, lf, sizeof lp) == 0, "step-0 logits of full differ from the probe's");

    /* ---- block JVP vs central finite differences ---- */
    gf_params th, w2, gr;
    REQUIRE_OK(ctx, gf_params_create(ctx, blk, "theta", &th));
    REQUIRE_OK(ctx, gf_params_create(ctx, blk, "w2", &w2));
    REQUIRE_OK(ctx, gf_params_create(ctx, blk, "grad", &gr));
    cl_mem f = test_alloc(ctx, N * d), tf = test_alloc(ctx, N * d);
    float fp[N * 6], fm[N * 6], tang[N * 6];
    /* Piecewise-linear activations: a kink crossed inside [θ-εv, θ+εv] spoils a
     * central difference and tiny steps drown in float32 rounding, so the check
     * takes the best of three step sizes; without a crossing the error is O(ε²). */
    static const double steps[4] = {1e-3, 3e-4, 1e-4, 3e-5};
    unsigned char *pat0 = malloc(1 << 16), *patp = malloc(1 << 16), *patm = malloc(1 << 16);
    size_t plen, plen2;
    REQUIRE_OK(ctx, gf_buf_write(ctx, th.all, 0, P * 4, theta));
    REQUIRE_OK(ctx, gf_buf_write(ctx, w2.all, 0, P * 4, v));
    REQUIRE_OK(ctx, gf_block_forward(ctx, blk, N, dx, &th, f));
    REQUIRE_OK(ctx, gf_block_tangent(ctx, blk, N, dx, &th, &w2, tf));
    test_download(ctx, tf, tang, N * d);
    pattern(ctx, blk, N, pat0, &plen);
    double jvp_err = INFINITY;
    int valid = 0;
    for (int si = 0; si < 4; si++) {
        double eps = steps[si];
        for (size_t i = 0; i < P; i++) tmp[i] = (float)(theta[i] + eps * v[i]);
        REQUIRE_OK(ctx, gf_buf_write(ctx, th.all, 0, P * 4, tmp));
        REQUIRE_OK(ctx, gf_block_forward(ctx, blk, N, dx, &th, f));
        test_download(ctx, f, fp, N * d);
        pattern(ctx, blk, N, patp, &plen2);
        for (size_t i = 0; i < P; i++) tmp[i] = (float)(theta[i] - eps * v[i]);
        REQUIRE_OK(ctx, gf_buf_write(ctx, th.all, 0, P * 4, tmp));
        REQUIRE_OK(ctx, gf_block_forward(ctx, blk, N, dx, &th, f));
        test_download(ctx, f, fm, N * d);
        pattern(ctx, blk, N, patm, &plen2);
        int bad[N] = {0}, nvalid = 0;
        flipped_samples(pat0, patp, patm, plen, bad);
        double num = 0, den = 0;
        for (int i = 0; i < N * d; i++) {
            if (bad[i / d]) continue;
            double fd = (fp[i] - (double)fm[i]) / (2 * eps);
            num += (fd - tang[i]) * (fd - tang[i]);
            den += fd * fd;
        }
        for (int i = 0; i < N; i++) nvalid += !bad[i];
        if (!nvalid) { printf("block JVP (eps %.0e): every sample crosses a kink\n", eps); continue; }
        valid++;
        printf("block JVP vs central FD (eps %.0e, %d of %d samples cross no kink): relative L2 error %.3e\n",
               eps, nvalid, N, sqrt(num / den));
        if (sqrt(num / den) < jvp_err) jvp_err = sqrt(num / den);
    }
    REQUIRE_OK(ctx, gf_buf_write(ctx, th.all, 0, P * 4, theta));
    REQUIRE_OK(ctx, gf_block_forward(ctx, blk, N, dx, &th, f));
    CHECK(valid > 0, "no step size without a kink crossing");
    CHECK(jvp_err < 1e-3, "JVP vs FD relative error %.3e", jvp_err);

    /* ---- adjoint identity on the block ---- */
    float u[N * 6], *gv = calloc(P, 4);
    test_fill(&r, u, N * d, -1, 1);
    cl_mem du = test_upload(ctx, u, N * d);
    REQUIRE_OK(ctx, gf_block_backward(ctx, blk, N, dx, &th, du, &gr, NULL));
    test_download(ctx, gr.all, gv, P);
    double lhs = dot(tang, u, N * d), rhs = dot(v, gv, P);
    printf("adjoint: <Jv,u> = %.9g  <v,J^T u> = %.9g  rel %.2e\n", lhs, rhs, rel(lhs, rhs));
    CHECK(rel(lhs, rhs) < 1e-4, "adjoint identity: %.9g vs %.9g", lhs, rhs);
    /* input gradient adjoint: <d f/dx · e, u> vs <e, gx> via FD on x */
    cl_mem gx = test_alloc(ctx, nx);
    REQUIRE_OK(ctx, gf_block_backward(ctx, blk, N, dx, &th, du, NULL, gx));
    float *gxh = malloc(nx * 4), *e = malloc(nx * 4), *xp = malloc(nx * 4);
    test_download(ctx, gx, gxh, nx);
    test_fill(&r, e, nx, -1, 1);
    double gxe = dot(e, gxh, nx), gx_err = INFINITY;
    valid = 0;
    cl_mem dxp = test_alloc(ctx, nx);
    for (int si = 0; si < 4; si++) {
        double eps = steps[si];
        for (size_t i = 0; i < nx; i++) xp[i] = (float)(x[i] + eps * e[i]);
        REQUIRE_OK(ctx, gf_buf_write(ctx, dxp, 0, nx * 4, xp));
        REQUIRE_OK(ctx, gf_block_forward(ctx, blk, N, dxp, &th, f));
        test_download(ctx, f, fp, N * d);
        pattern(ctx, blk, N, patp, &plen2);
        for (size_t i = 0; i < nx; i++) xp[i] = (float)(x[i] - eps * e[i]);
        REQUIRE_OK(ctx, gf_buf_write(ctx, dxp, 0, nx * 4, xp));
        REQUIRE_OK(ctx, gf_block_forward(ctx, blk, N, dxp, &th, f));
        test_download(ctx, f, fm, N * d);
        pattern(ctx, blk, N, patm, &plen2);
        int bad[N] = {0};
        flipped_samples(pat0, patp, patm, plen, bad);
        /* compare per valid sample: FD of <f_s, u_s> vs <e_s, gx_s> */
        double fdx = 0, gsum = 0;
        size_t per = nx / N;
        int nvalid = 0;
        for (int sm = 0; sm < N; sm++) {
            if (bad[sm]) continue;
            nvalid++;
            for (int i = sm * d; i < (sm + 1) * d; i++) fdx += (fp[i] - (double)fm[i]) / (2 * eps) * u[i];
            gsum += dot(e + sm * per, gxh + sm * per, per);
        }
        if (!nvalid) continue;
        valid++;
        gxe = gsum;
        printf("input gradient (eps %.0e): FD %.9g  backward %.9g  rel %.2e\n", eps, fdx, gxe, rel(gxe, fdx));
        if (rel(gxe, fdx) < gx_err) gx_err = rel(gxe, fdx);
    }
    CHECK(valid > 0, "input gradient: every step size crosses a kink");
    CHECK(gx_err < 1e-3, "input gradient vs FD: best relative error %.3e", gx_err);

    /* ---- loss gradients vs finite differences, per method ---- */
    for (int mth = 0; mth < 4; mth++) {
        gf_lin *m;
        REQUIRE_OK(ctx, gf_lin_create(ctx, blk, (gf_method)mth, K, GF_LOSS_SOFTMAX, theta, omega, bias, &m));
        /* move away from the start so every term matters */
        float *bv = calloc(P, 4), w1[K * 6], b1[K];
        for (size_t i = 0; i < P; i++) bv[i] = (mth == GF_METHOD_FINETUNE ? theta[i] : 0) + 0.05f * v[i];
        for (int i = 0; i < K * 6; i++) w1[i] = omega[i] + 0.1f * (float)test_uniform(&r, -1, 1);
        for (int i = 0; i < K; i++) b1[i] = bias[i] + 0.1f * (float)test_uniform(&r, -1, 1);
        REQUIRE_OK(ctx, gf_lin_write_params(ctx, m, bv, w1, b1));
        float *gb = calloc(P, 4), gh[K * 6 + K];
        REQUIRE_OK(ctx, gf_lin_gradients(ctx, m, N, dx, dl));
        REQUIRE_OK(ctx, gf_lin_read_grads(ctx, m, gh, gb));
        REQUIRE_OK(ctx, gf_lin_take_stats(ctx, m, NULL, NULL, NULL));
        /* direction in block params (zero for linear) and head */
        float *ub = calloc(P, 4), uh[K * 6 + K];
        for (size_t i = 0; i < P; i++) ub[i] = mth == GF_METHOD_LINEAR ? 0 : v[i] * (float)test_uniform(&r, 0.5, 1);
        for (int i = 0; i < K * 6 + K; i++) uh[i] = (float)test_uniform(&r, -1, 1);
        if (mth == GF_METHOD_GRADIENT) for (int i = 0; i < K * 6; i++) uh[i] = 0;   /* no w1 term */
        double an = dot(ub, gb, P) + dot(uh, gh, K * 6 + K), best = INFINITY, fd = 0;
        for (int si = 0; si < 3; si++) {
        double L[2];
        const double h = steps[si] * 3;
        for (int s = 0; s < 2; s++) {
            double sg = s ? -h : h;
            float *bq = calloc(P, 4), w1q[K * 6], b1q[K];
            for (size_t i = 0; i < P; i++) bq[i] = (float)(bv[i] + sg * ub[i]);
            for (int i = 0; i < K * 6; i++) w1q[i] = (float)(w1[i] + sg * uh[i]);
            for (int i = 0; i < K; i++) b1q[i] = (float)(b1[i] + sg * uh[K * 6 + i]);
            REQUIRE_OK(ctx, gf_lin_write_params(ctx, m, bq, w1q, b1q));
            REQUIRE_OK(ctx, gf_lin_eval_batch(ctx, m, N, dx, dl));
            REQUIRE_OK(ctx, gf_lin_take_stats(ctx, m, &L[s], NULL, NULL));
            free(bq);
        }
        fd = (L[0] - L[1]) / (2 * h);
        if (rel(an, fd) < best) best = rel(an, fd);
        }
        printf("%-9s loss gradient: FD %.7g  analytic %.7g  best rel %.2e\n", gf_method_name((gf_method)mth), fd, an, best);
        CHECK(best < 2e-3, "%s: loss gradient vs FD: best relative error %.3e", gf_method_name((gf_method)mth), best);

        /* a few Adam steps from the start lower the loss */
        float *start = mth == GF_METHOD_FINETUNE ? theta : calloc(P, 4);
        REQUIRE_OK(ctx, gf_lin_write_params(ctx, m, start, omega, bias));
        if (start != theta) free(start);
        gf_optim o = gf_optim_paper_defaults();
        o.lr = 1e-2f;
        double l0, l1;
        REQUIRE_OK(ctx, gf_lin_eval_batch(ctx, m, N, dx, dl));
        REQUIRE_OK(ctx, gf_lin_take_stats(ctx, m, &l0, NULL, NULL));
        for (int s = 0; s < 20; s++) REQUIRE_OK(ctx, gf_lin_train_step(ctx, m, N, dx, dl, &o));
        REQUIRE_OK(ctx, gf_lin_take_stats(ctx, m, NULL, NULL, NULL));
        REQUIRE_OK(ctx, gf_lin_eval_batch(ctx, m, N, dx, dl));
        REQUIRE_OK(ctx, gf_lin_take_stats(ctx, m, &l1, NULL, NULL));
        printf("%-9s 20 Adam steps: loss %.5f -> %.5f\n", gf_method_name((gf_method)mth), l0, l1);
        CHECK(l1 < l0, "%s: loss did not decrease (%.5f -> %.5f)", gf_method_name((gf_method)mth), l0, l1);
        free(bv); free(gb); free(ub);
        gf_lin_free(m);
    }
    /* ---- NTK parametrisation: stored (v, w1) under NTK == plain model with the scaled values,
     * and the stored gradients are the plain gradients times the same scales ---- */
    {
        gf_lin *ntk, *plain;
        REQUIRE_OK(ctx, gf_lin_create(ctx, blk, GF_METHOD_FULL, K, GF_LOSS_SOFTMAX, theta, omega, bias, &ntk));
        REQUIRE_OK(ctx, gf_lin_create(ctx, blk, GF_METHOD_FULL, K, GF_LOSS_SOFTMAX, theta, omega, bias, &plain));
        REQUIRE_OK(ctx, gf_lin_set_ntk(ctx, ntk, 1));
        float *sv = calloc(P, 4), *scale = calloc(P, 4), w1s[K * 6];
        for (int i = 0; i < cnt; i++) {
            double sw = sqrt(1.0 / bn[i].c), sb = sqrt(0.1);
            for (size_t j = 0; bn[i].w_off >= 0 && j < bn[i].w_count; j++) scale[bn[i].w_off + j] = (float)sw;
            for (size_t j = 0; bn[i].b_off >= 0 && j < bn[i].b_count; j++) scale[bn[i].b_off + j] = (float)sb;
        }
        for (size_t i = 0; i < P; i++) sv[i] = scale[i] * v[i];
        double sh = sqrt(1.0 / K);
        for (int i = 0; i < K * 6; i++) w1s[i] = (float)(sh * omega[i]);
        REQUIRE_OK(ctx, gf_lin_write_params(ctx, ntk, v, omega, bias));
        REQUIRE_OK(ctx, gf_lin_write_params(ctx, plain, sv, w1s, bias));
        float ln[N * K], lpl[N * K];
        REQUIRE_OK(ctx, gf_lin_forward(ctx, ntk, N, dx));
        test_download(ctx, gf_lin_logits_buffer(ntk), ln, N * K);
        REQUIRE_OK(ctx, gf_lin_forward(ctx, plain, N, dx));
        test_download(ctx, gf_lin_logits_buffer(plain), lpl, N * K);
        double ref[N * K];
        for (int i = 0; i < N * K; i++) ref[i] = lpl[i];
        test_close("NTK logits vs plain model with scaled parameters", ln, ref, N * K, 1e-5, 1e-5);
        float *gn = calloc(P, 4), *gp = calloc(P, 4), hn[K * 6 + K], hp[K * 6 + K];
        REQUIRE_OK(ctx, gf_lin_gradients(ctx, ntk, N, dx, dl));
        REQUIRE_OK(ctx, gf_lin_read_grads(ctx, ntk, hn, gn));
        REQUIRE_OK(ctx, gf_lin_gradients(ctx, plain, N, dx, dl));
        REQUIRE_OK(ctx, gf_lin_read_grads(ctx, plain, hp, gp));
        double *gref = malloc(P * sizeof(double)), href[K * 6 + K];
        for (size_t i = 0; i < P; i++) gref[i] = (double)scale[i] * gp[i];
        for (int i = 0; i < K * 6 + K; i++) href[i] = i < K * 6 ? sh * hp[i] : hp[i];
        test_close("NTK block gradient = scale x plain gradient", gn, gref, P, 1e-6, 1e-4);
        test_close("NTK head gradient = scale x plain gradient", hn, href, K * 6 + K, 1e-6, 1e-4);
        free(sv); free(scale); free(gn); free(gp); free(gref);
        gf_lin_free(ntk); gf_lin_free(plain);
    }
    gf_lin_free(probe); gf_lin_free(full);
    gf_params_free(&th); gf_params_free(&w2); gf_params_free(&gr);
    cl_mem bufs[] = {dx, dl, f, tf, du, gx, dxp};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) gf_buf_release(&bufs[i]);
    free(x); free(theta); free(v); free(tmp); free(pat0); free(patp); free(patm); free(gv);
    free(gxh); free(e); free(xp);
    gf_block_free(blk);
    gf_ctx_free(ctx);
    return test_finish("test_linearized");
}
