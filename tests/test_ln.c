/* Layer normalization over channels (host/ops/ops_ln.c) on the device vs the
 * double C reference gf_ln_ref (itself checked against a direct formula):
 * forward; tangent vs the reference and vs central finite differences of the
 * reference forward; backward vs the reference and the adjoint identity
 * <J v, u> = <v, J^T u>; shapes from one pixel to ConvNeXt-tiny's 768
 * channels, eps 1e-6 and 1e-5, a constant pixel (variance 0: only eps).
 * Tolerances: 2e-6 + 2e-6 |ref| (float sums over C; the 1/s of a pixel with
 * variance ~1); FD (h = 1e-3, error h^2 |d3y| / 6): 1e-5 + 1e-5 |ref|; adjoint
 * 1e-5 relative.
 * `test_ln --small`: one pixel, one channel; 5 channels; 2x24x5x3 with a constant pixel; each at both eps
 * (tests/cli_oclgrind_ln.sh: ln_forward and ln_jacobian of cl/ln.cl under oclgrind). */
#include "testutil.h"
#include "ops_ln.h"

/* The forward in double on double inputs (for the finite differences: x +- h t without float rounding). */
static void ln_d(const double *x, int C, double eps, double *y) {
    double mu = 0, v = 0;
    for (int c = 0; c < C; c++) mu += x[c];
    mu /= C;
    for (int c = 0; c < C; c++) v += (x[c] - mu) * (x[c] - mu);
    double s = sqrt(v / C + eps);
    for (int c = 0; c < C; c++) y[c] = (x[c] - mu) / s;
}

static double dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static void run_case(gf_ctx *ctx, int N, int C, int H, int W, float eps, int constant_pixel, uint64_t seed) {
    char what[160];
    const size_t HW = (size_t)H * W, T = (size_t)N * C * HW;
    test_rng r;
    test_rng_seed(&r, seed);
    float *x = malloc(T * 4), *t = malloc(T * 4), *u = malloc(T * 4), *out = malloc(T * 4), *jv = malloc(T * 4);
    double *xp = malloc((size_t)C * 8), *xm = malloc((size_t)C * 8);
    double *ref = malloc(T * 8), *y = malloc((size_t)C * 8), *jt = malloc((size_t)C * 8), *yp = malloc((size_t)C * 8),
           *ym = malloc((size_t)C * 8);
    test_fill(&r, x, T, -2, 2);
    for (size_t i = 0; i < T; i++) x[i] += (float)(0.3 * ((i / HW) % 5));   /* channel offsets: a non-zero mean */
    if (constant_pixel) for (int c = 0; c < C; c++) x[(size_t)c * HW] = 0.75f;
    test_fill(&r, t, T, -1, 1);
    test_fill(&r, u, T, -1, 1);
    cl_mem bx = test_upload(ctx, x, T), bt = test_upload(ctx, t, T), bu = test_upload(ctx, u, T), bo = test_alloc(ctx, T);
#define EACH_PIXEL for (int n = 0; n < N; n++) for (size_t p = 0; p < HW; p++)
#define BASE ((size_t)n * C * HW + p)
    EACH_PIXEL {
        gf_ln_ref(x + BASE, NULL, C, HW, eps, y, NULL);
        for (int c = 0; c < C; c++) ref[BASE + c * HW] = y[c];
    }
    REQUIRE_OK(ctx, gf_ln_forward(ctx, N, C, HW, eps, bx, bo));
    test_download(ctx, bo, out, T);
    snprintf(what, sizeof what, "layernorm forward %dx%dx%dx%d eps %g", N, C, H, W, eps);
    test_close(what, out, ref, T, 2e-6, 2e-6);

    EACH_PIXEL {
        gf_ln_ref(x + BASE, t + BASE, C, HW, eps, NULL, jt);
        for (int c = 0; c < C; c++) ref[BASE + c * HW] = jt[c];
    }
    REQUIRE_OK(ctx, gf_ln_tangent(ctx, N, C, HW, eps, bx, bt, bo));
    test_download(ctx, bo, jv, T);
    snprintf(what, sizeof what, "layernorm tangent %dx%dx%dx%d eps %g", N, C, H, W, eps);
    test_close(what, jv, ref, T, 2e-6, 2e-6);
    const double h = 1e-3;
    EACH_PIXEL {
        for (int c = 0; c < C; c++) {
            size_t i = BASE + c * HW;
            xp[c] = x[i] + h * t[i];
            xm[c] = x[i] - h * t[i];
        }
        ln_d(xp, C, eps, yp);
        ln_d(xm, C, eps, ym);
        /* a constant pixel has s = sqrt(eps): the step would leave the linear regime, so it is left out */
        int skip = constant_pixel && n == 0 && p == 0;
        for (int c = 0; c < C; c++) ref[BASE + c * HW] = skip ? jv[BASE + c * HW] : (yp[c] - ym[c]) / (2 * h);
    }
    snprintf(what, sizeof what, "layernorm tangent vs FD %dx%dx%dx%d eps %g", N, C, H, W, eps);
    test_close(what, jv, ref, T, 1e-5, 1e-5);

    EACH_PIXEL {
        gf_ln_ref(x + BASE, u + BASE, C, HW, eps, NULL, jt);
        for (int c = 0; c < C; c++) ref[BASE + c * HW] = jt[c];
    }
    REQUIRE_OK(ctx, gf_ln_backward(ctx, N, C, HW, eps, bx, bu, bo));
    test_download(ctx, bo, out, T);
    snprintf(what, sizeof what, "layernorm backward %dx%dx%dx%d eps %g", N, C, H, W, eps);
    test_close(what, out, ref, T, 2e-6, 2e-6);
    double lhs = dot(jv, u, T), rhs = dot(t, out, T);
    double rel = fabs(lhs - rhs) / fmax(1e-30, fmax(fabs(lhs), fabs(rhs)));
    CHECK(rel <= 1e-5 || C == 1, "%s adjoint: %.9g vs %.9g (rel %.3g)", what, lhs, rhs, rel);
#undef EACH_PIXEL
#undef BASE
    gf_buf_release(&bx); gf_buf_release(&bt); gf_buf_release(&bu); gf_buf_release(&bo);
    free(x); free(t); free(u); free(out); free(jv); free(xp); free(xm); free(ref); free(y); free(jt); free(yp); free(ym);
}

/* gf_ln_ref against the definition, written directly. */
static void reference_check(void) {
    const float x[5] = {1.0f, -2.0f, 0.5f, 3.0f, 0.25f};
    double y[5], mu = 0.55, v = 0;
    for (int c = 0; c < 5; c++) v += (x[c] - mu) * (x[c] - mu);
    v /= 5;
    gf_ln_ref(x, NULL, 5, 1, 1e-5, y, NULL);
    double worst = 0;
    for (int c = 0; c < 5; c++) worst = fmax(worst, fabs(y[c] - (x[c] - mu) / sqrt(v + 1e-5)));
    CHECK(worst < 1e-12, "gf_ln_ref vs the definition: %.3g", worst);
}

int main(int argc, char **argv) {
    const int small = argc > 1 && !strcmp(argv[1], "--small");   /* tests/cli_oclgrind_ln.sh */
    gf_ctx *ctx = test_ctx();
    printf("device: %s\n", gf_ctx_device(ctx)->name);
    reference_check();
    const int shapes[][4] = {{1, 1, 1, 1}, {1, 5, 1, 1}, {2, 24, 5, 3}, {3, 96, 4, 4}, {1, 768, 2, 2}};
    uint64_t seed = 1;
    for (size_t k = 0; k < (small ? 3 : sizeof shapes / sizeof shapes[0]); k++)
        for (int e = 0; e < 2; e++)
            run_case(ctx, shapes[k][0], shapes[k][1], shapes[k][2], shapes[k][3], e ? 1e-5f : 1e-6f, k == 2, seed++);
    cl_mem b = test_alloc(ctx, 4);
    CHECK(gf_ln_forward(ctx, 1, 100000, 1, 1e-6f, b, b) == GF_ERR_USAGE, "layernorm past the item budget accepted");
    CHECK(gf_ln_forward(ctx, 1, 4, 1, -1.0f, b, b) == GF_ERR_USAGE, "negative eps accepted");
    gf_buf_release(&b);
    gf_ctx_free(ctx);
    return test_finish("test_ln");
}
