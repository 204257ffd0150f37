/* Losses on the device vs a double C reference: mean loss and correct count
 * (reduced on the device), the gradient w.r.t. the logits vs the reference
 * and vs central finite differences of the reference loss, accumulate mode,
 * ignored rows/elements, numerical stability at huge logits, determinism.
 * Tolerances: loss |got-ref| <= 1e-6 + 2e-6 |ref|; gradient 1e-7 + 1e-5 |ref|
 * vs the analytic reference and 1e-6 + 1e-4 |ref| vs FD (step 1e-4 on a
 * double reference: truncation error ~1e-8 relative); counts exact.
 * `test_loss --small` runs a few small cases (tests/cli_oclgrind_reduce.sh). */
#include "testutil.h"
#include "ops_loss.h"

/* Reference softmax cross-entropy (mean over B) in double; counts first arg-max hits. */
static double ref_xent(int B, int K, const double *z, const int *y, double *grad, double *correct) {
    double loss = 0, c = 0;
    for (int r = 0; r < B; r++) {
        const double *zr = z + (size_t)r * K;
        double m = zr[0];
        int am = 0;
        for (int k = 1; k < K; k++)
            if (zr[k] > m) { m = zr[k]; am = k; }
        double s = 0;
        for (int k = 0; k < K; k++) s += exp(zr[k] - m);
        int valid = y[r] >= 0 && y[r] < K;
        if (valid) {
            loss += log(s) + m - zr[y[r]];
            c += am == y[r];
        }
        if (grad)
            for (int k = 0; k < K; k++)
                grad[(size_t)r * K + k] = valid ? (exp(zr[k] - m) / s - (k == y[r])) / B : 0;
    }
    if (correct) *correct = c;
    return loss / B;
}

static double softplus(double z) { return fmax(z, 0) + log1p(exp(-fabs(z))); }

static double ref_bce(int B, int K, const double *z, const float *t, int per_sample, double *grad, double *correct) {
    size_t n = (size_t)B * K;
    double denom = per_sample ? B : (double)n, loss = 0, c = 0;
    for (size_t i = 0; i < n; i++) {
        int valid = t[i] >= 0;
        if (valid) {
            loss += softplus(z[i]) - z[i] * t[i];
            c += (z[i] > 0) == (t[i] > 0.5);
        }
        if (grad) grad[i] = valid ? (1 / (1 + exp(-z[i])) - t[i]) / denom : 0;
    }
    if (correct) *correct = c;
    return loss / denom;
}

static void run_xent(gf_ctx *ctx, int B, int K, double scale, int ignore, uint64_t seed) {
    size_t n = (size_t)B * K;
    test_rng r;
    test_rng_seed(&r, seed);
    float *z = malloc(n * 4), *g = malloc(n * 4), *g2 = malloc(n * 4), out[4], out2[4];
    double *zd = malloc(n * 8), *rg = malloc(n * 8), rl[1], rc[1];
    int *y = malloc(B * sizeof(int));
    test_fill(&r, z, n, -scale, scale);
    for (int i = 0; i < B; i++) {
        y[i] = (int)test_uniform(&r, 0, K);
        if (ignore && i % 3 == 1) y[i] = -1;
        /* make some rows correct: push the label's logit up */
        if (i % 2 == 0 && y[i] >= 0) z[(size_t)i * K + y[i]] += (float)scale;
    }
    for (size_t i = 0; i < n; i++) zd[i] = z[i];
    cl_mem bz = test_upload(ctx, z, n), bg = test_alloc(ctx, n), bo = test_alloc(ctx, 4), by;
    REQUIRE_OK(ctx, gf_buf_create_from(ctx, B * sizeof(int), y, "labels", &by));
    char what[128];
    snprintf(what, sizeof what, "xent B=%d K=%d scale %g%s", B, K, scale, ignore ? " (ignored rows)" : "");
    rl[0] = ref_xent(B, K, zd, y, rg, rc);
    /* off = 1 checks the offset; out[0] and out[3] must stay untouched */
    float init[4] = {11, 22, 33, 44};
    REQUIRE_OK(ctx, gf_buf_write(ctx, bo, 0, sizeof init, init));
    REQUIRE_OK(ctx, gf_softmax_xent(ctx, B, K, bz, by, bg, bo, 1, 0));
    test_download(ctx, bo, out, 4);
    test_download(ctx, bg, g, n);
    test_close(what, &out[1], rl, 1, 1e-6, 2e-6);
    CHECK(out[2] == (float)rc[0], "%s: correct %g want %g", what, out[2], rc[0]);
    CHECK(out[0] == 11 && out[3] == 44, "%s: wrote outside out[off..off+1]", what);
    test_close(what, g, rg, n, 1e-7, 1e-5);
    /* gradient vs central differences of the reference loss (a subset of entries for big shapes) */
    const double h = 1e-4;
    size_t stride = n > 2000 ? n / 997 : 1, m = 0;
    float *gs = malloc(n * 4);
    double *fd = malloc(n * 8);
    for (size_t i = 0; i < n; i += stride, m++) {
        double keep = zd[i];
        zd[i] = keep + h;
        double lp = ref_xent(B, K, zd, y, NULL, NULL);
        zd[i] = keep - h;
        double lm = ref_xent(B, K, zd, y, NULL, NULL);
        zd[i] = keep;
        fd[m] = (lp - lm) / (2 * h);
        gs[m] = g[i];
    }
    char w2[160];
    snprintf(w2, sizeof w2, "%s gradient vs FD", what);
    test_close(w2, gs, fd, m, 1e-6, 1e-4);
    /* determinism, accumulate, no-grad evaluation path, top-1 count */
    REQUIRE_OK(ctx, gf_softmax_xent(ctx, B, K, bz, by, bg, bo, 1, 0));
    test_download(ctx, bo, out2, 4);
    test_download(ctx, bg, g2, n);
    CHECK(memcmp(out, out2, sizeof out) == 0 && memcmp(g, g2, n * 4) == 0, "%s: not bitwise reproducible", what);
    REQUIRE_OK(ctx, gf_softmax_xent(ctx, B, K, bz, by, NULL, bo, 1, 1));
    test_download(ctx, bo, out2, 4);
    CHECK(out2[1] == out[1] + out[1] && out2[2] == 2 * out[2], "%s: accumulate gives %g %g", what, out2[1], out2[2]);
    /* gradient written over the logits (in place) */
    cl_mem bzz = test_upload(ctx, z, n);
    REQUIRE_OK(ctx, gf_softmax_xent(ctx, B, K, bzz, by, bzz, bo, 1, 0));
    test_download(ctx, bzz, g2, n);
    CHECK(memcmp(g, g2, n * 4) == 0, "%s: in-place gradient differs", what);
    gf_buf_release(&bzz);
    REQUIRE_OK(ctx, gf_top1_count(ctx, B, K, bz, by, bo, 3, 0));
    test_download(ctx, bo, out2, 4);
    CHECK(out2[3] == (float)rc[0], "%s: top1_count %g want %g", what, out2[3], rc[0]);
    gf_buf_release(&bz); gf_buf_release(&bg); gf_buf_release(&bo); gf_buf_release(&by);
    free(z); free(g); free(g2); free(zd); free(rg); free(y); free(gs); free(fd);
}

static void run_bce(gf_ctx *ctx, int B, int K, double scale, int per_sample, uint64_t seed) {
    size_t n = (size_t)B * K;
    test_rng r;
    test_rng_seed(&r, seed);
    float *z = malloc(n * 4), *t = malloc(n * 4), *g = malloc(n * 4), *g2 = malloc(n * 4), out[2], out2[2];
    double *zd = malloc(n * 8), *rg = malloc(n * 8), rl[1], rc[1];
    test_fill(&r, z, n, -scale, scale);
    for (size_t i = 0; i < n; i++) {
        double v = test_uniform(&r, 0, 1);
        t[i] = v < 0.1 ? -1.0f : (v < 0.55 ? 1.0f : 0.0f);   /* ~10% ignored */
        zd[i] = z[i];
    }
    cl_mem bz = test_upload(ctx, z, n), bt = test_upload(ctx, t, n), bg = test_alloc(ctx, n), bo = test_alloc(ctx, 2);
    char what[128];
    snprintf(what, sizeof what, "bce B=%d K=%d scale %g per_sample %d", B, K, scale, per_sample);
    rl[0] = ref_bce(B, K, zd, t, per_sample, rg, rc);
    REQUIRE_OK(ctx, gf_sigmoid_bce(ctx, B, K, bz, bt, bg, bo, 0, 0, per_sample));
    test_download(ctx, bo, out, 2);
    test_download(ctx, bg, g, n);
    test_close(what, out, rl, 1, 1e-6, 2e-6);
    CHECK(out[1] == (float)rc[0], "%s: correct %g want %g", what, out[1], rc[0]);
    test_close(what, g, rg, n, 1e-7, 1e-5);
    const double h = 1e-4;
    size_t stride = n > 2000 ? n / 997 : 1, m = 0;
    float *gs = malloc(n * 4);
    double *fd = malloc(n * 8);
    for (size_t i = 0; i < n; i += stride, m++) {
        double keep = zd[i];
        zd[i] = keep + h;
        double lp = ref_bce(B, K, zd, t, per_sample, NULL, NULL);
        zd[i] = keep - h;
        double lm = ref_bce(B, K, zd, t, per_sample, NULL, NULL);
        zd[i] = keep;
        fd[m] = (lp - lm) / (2 * h);
        gs[m] = g[i];
    }
    char w2[160];
    snprintf(w2, sizeof w2, "%s gradient vs FD", what);
    test_close(w2, gs, fd, m, 1e-6, 1e-4);
    REQUIRE_OK(ctx, gf_sigmoid_bce(ctx, B, K, bz, bt, bg, bo, 0, 0, per_sample));
    test_download(ctx, bo, out2, 2);
    test_download(ctx, bg, g2, n);
    CHECK(memcmp(out, out2, sizeof out) == 0 && memcmp(g, g2, n * 4) == 0, "%s: not bitwise reproducible", what);
    cl_mem bzz = test_upload(ctx, z, n);
    REQUIRE_OK(ctx, gf_sigmoid_bce(ctx, B, K, bzz, bt, bzz, bo, 0, 0, per_sample));
    test_download(ctx, bzz, g2, n);
    CHECK(memcmp(g, g2, n * 4) == 0, "%s: in-place gradient differs", what);
    gf_buf_release(&bzz);
    REQUIRE_OK(ctx, gf_sigmoid_bce(ctx, B, K, bz, bt, NULL, bo, 0, 1, per_sample));
    test_download(ctx, bo, out2, 2);
    CHECK(out2[0] == out[0] + out[0] && out2[1] == 2 * out[1], "%s: accumulate", what);
    gf_buf_release(&bz); gf_buf_release(&bt); gf_buf_release(&bg); gf_buf_release(&bo);
    free(z); free(t); free(g); free(g2); free(zd); free(rg); free(gs); free(fd);
}

/* Huge logits: the naive forms overflow exp() in float (exp(89) = inf); the
 * stable ones must give finite, exact-looking answers. */
static void stability(gf_ctx *ctx) {
    const float z[6] = {1000.0f, -1000.0f, 0.0f, 100.0f, 99.0f, -50.0f};
    const int y[2] = {1, 0};
    cl_mem bz = test_upload(ctx, z, 6), bg = test_alloc(ctx, 6), bo = test_alloc(ctx, 2), by;
    REQUIRE_OK(ctx, gf_buf_create_from(ctx, sizeof y, y, "labels", &by));
    float out[2], g[6];
    REQUIRE_OK(ctx, gf_softmax_xent(ctx, 2, 3, bz, by, bg, bo, 0, 0));
    test_download(ctx, bo, out, 2);
    test_download(ctx, bg, g, 6);
    double zd[6];
    for (int i = 0; i < 6; i++) zd[i] = z[i];
    double rg[6], rc, rl = ref_xent(2, 3, zd, y, rg, &rc);
    test_close("xent huge logits loss", out, &rl, 1, 1e-6, 1e-6);
    test_close("xent huge logits grad", g, rg, 6, 1e-7, 1e-5);
    CHECK(out[1] == (float)rc && rc == 1, "xent huge logits: correct %g want %g", out[1], rc);
    const float t[6] = {0, 1, 1, 0, 1, 0};
    cl_mem bt = test_upload(ctx, t, 6);
    REQUIRE_OK(ctx, gf_sigmoid_bce(ctx, 1, 6, bz, bt, bg, bo, 0, 0, 1));
    test_download(ctx, bo, out, 2);
    test_download(ctx, bg, g, 6);
    double rl2 = ref_bce(1, 6, zd, t, 1, rg, &rc);
    test_close("bce huge logits loss", out, &rl2, 1, 1e-6, 1e-6);
    test_close("bce huge logits grad", g, rg, 6, 1e-7, 1e-5);
    CHECK(out[1] == (float)rc, "bce huge logits correct %g want %g", out[1], rc);
    CHECK(gf_softmax_xent(ctx, 0, 3, bz, by, bg, bo, 0, 0) == GF_ERR_USAGE, "B = 0 accepted");
    gf_buf_release(&bz); gf_buf_release(&bg); gf_buf_release(&bo); gf_buf_release(&by); gf_buf_release(&bt);
}

int main(int argc, char **argv) {
    gf_ctx *ctx = test_ctx();
    printf("device: %s\n", gf_ctx_device(ctx)->name);
    uint64_t seed = 7;
    if (argc > 1 && !strcmp(argv[1], "--small")) {   /* tests/cli_oclgrind_reduce.sh */
        run_xent(ctx, 7, 5, 4.0, 1, seed);
        run_bce(ctx, 7, 5, 5.0, 0, seed + 1);
        stability(ctx);
        gf_ctx_free(ctx);
        return test_finish("test_loss");
    }
    /* batch 1 and 7, class counts 1, 5, 10, 20, 1000; more rows than lanes (300) */
    const int xs[][2] = {{1, 10}, {7, 5}, {7, 1}, {64, 20}, {300, 3}, {3, 1000}};
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) {
        run_xent(ctx, xs[i][0], xs[i][1], 4.0, 0, seed++);
        run_xent(ctx, xs[i][0], xs[i][1], 30.0, 1, seed++);
    }
    const int bs[][2] = {{1, 1}, {7, 5}, {64, 20}, {3, 301}};
    for (size_t i = 0; i < sizeof bs / sizeof bs[0]; i++)
        for (int ps = 0; ps < 2; ps++) {
            run_bce(ctx, bs[i][0], bs[i][1], 5.0, ps, seed++);
            run_bce(ctx, bs[i][0], bs[i][1], 40.0, ps, seed++);
        }
    stability(ctx);
    gf_ctx_free(ctx);
    return test_finish("test_loss");
}
