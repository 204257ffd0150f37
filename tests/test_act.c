/* Activations on the device vs a double C reference (gf_act_ref / gf_act_dref,
 * cross-checked here against an independent formula per kind): forward,
 * tangent (also vs central finite differences of the reference) and backward
 * (also vs the adjoint identity <J v, u> = <v, J^T u> on the device), in place,
 * with the mask taken from the output (ReLU family only), and determinism.
 * Tolerances: ReLU and ReLU6 forward/tangent/backward are selections, so
 * exact; LeakyReLU has one float product: |got - ref| <= 1e-30 + 1.2e-7 |ref|
 * (half an ulp is 6e-8); the smooth kinds (sigmoid, SiLU, GELU, GELU-tanh) go
 * through exp/erfc/tanh of a few ulp (erfc up to 16): 1e-7 + 2e-6 |ref|, and
 * hard-sigmoid/hard-swish (two or three float ops): 1e-7 + 5e-7 |ref|.
 * FD: 1e-6 + 1e-6 |ref| for the piecewise-linear/quadratic kinds (exact up
 * to rounding), 2e-6 + 2e-6 |ref| for the smooth ones (h^2 max|d3f| / 6 <= 4e-7
 * at h = 1e-3); adjoint 1e-4 relative. FD inputs are kept >= 0.05 away from
 * every kink (0; 6 for ReLU6; +-3 for hard-sigmoid/hard-swish; +-2.5 for the
 * hard sigmoid with alpha 0.2) and the FD step moves them at most 1e-3.
 * `test_act --small`: every kind at sizes 1, 7 and 130 (a partial last work-group), and the special
 * values (tests/cli_oclgrind_act.sh: act_forward and act_jacobian of cl/act.cl under oclgrind). */
#include "testutil.h"
#include "ops_act.h"

static double ref_f(gf_act a, double z) { return gf_act_ref(a, z); }
static double ref_d(gf_act a, double z) { return gf_act_dref(a, z); }

/* Kinks of each kind (where the FD probe must not go). */
static int near_kink(gf_act a, double v) {
    const double w = 0.05;
    switch (a.kind) {
    case GF_ACT_RELU: case GF_ACT_LEAKY: return fabs(v) < w;
    case GF_ACT_RELU6: return fabs(v) < w || fabs(v - 6) < w;
    case GF_ACT_HSWISH: return fabs(v + 3) < w || fabs(v - 3) < w;
    case GF_ACT_HSIGMOID:
        return fabs(a.slope * v + 0.5) < w * a.slope || fabs(a.slope * v + 0.5 - 1) < w * a.slope;
    default: return 0;
    }
}

static double dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static void run_case(gf_ctx *ctx, gf_act a, size_t n, uint64_t seed) {
    char what[128];
    test_rng r;
    test_rng_seed(&r, seed);
    float *z = malloc(n * 4), *t = malloc(n * 4), *u = malloc(n * 4), *out = malloc(n * 4), *out2 = malloc(n * 4);
    double *ref = malloc(n * 8);
    for (size_t i = 0; i < n; i++) {
        double v;
        do v = test_uniform(&r, -9, 9); while (near_kink(a, v));
        z[i] = (float)v;
    }
    test_fill(&r, t, n, -1, 1);
    test_fill(&r, u, n, -1, 1);
    cl_mem bz = test_upload(ctx, z, n), bt = test_upload(ctx, t, n), bu = test_upload(ctx, u, n);
    cl_mem bo = test_alloc(ctx, n), bo2 = test_alloc(ctx, n);
    const char *name = gf_act_name(a.kind);
    const int smooth = a.kind == GF_ACT_SIGMOID || a.kind == GF_ACT_SILU || a.kind == GF_ACT_GELU ||
                       a.kind == GF_ACT_GELU_TANH;
    const int hard = a.kind == GF_ACT_HSIGMOID || a.kind == GF_ACT_HSWISH;
    const double rtol = smooth ? 2e-6 : hard ? 5e-7 : a.kind == GF_ACT_LEAKY ? 1.2e-7 : 0.0;
    const double atol = smooth || hard ? 1e-7 : 1e-30, fd_tol = smooth ? 2e-6 : 1e-6;

    /* forward */
    for (size_t i = 0; i < n; i++) ref[i] = ref_f(a, z[i]);
    REQUIRE_OK(ctx, gf_act_forward(ctx, a, n, bz, bo));
    test_download(ctx, bo, out, n);
    snprintf(what, sizeof what, "%s(%g) forward n=%zu", name, a.slope, n);
    test_close(what, out, ref, n, atol, rtol);
    REQUIRE_OK(ctx, gf_act_forward(ctx, a, n, bz, bo2));
    test_download(ctx, bo2, out2, n);
    CHECK(memcmp(out, out2, n * 4) == 0, "%s: forward not bitwise reproducible", what);

    /* tangent vs reference and vs central differences of the reference */
    for (size_t i = 0; i < n; i++) ref[i] = t[i] * ref_d(a, z[i]);
    REQUIRE_OK(ctx, gf_act_tangent(ctx, a, n, bz, bt, bo));
    test_download(ctx, bo, out, n);
    snprintf(what, sizeof what, "%s(%g) tangent n=%zu", name, a.slope, n);
    test_close(what, out, ref, n, atol, rtol);
    const double h = 1e-3;
    for (size_t i = 0; i < n; i++)
        ref[i] = (ref_f(a, z[i] + h * t[i]) - ref_f(a, z[i] - h * t[i])) / (2 * h);
    snprintf(what, sizeof what, "%s(%g) tangent vs FD n=%zu", name, a.slope, n);
    test_close(what, out, ref, n, fd_tol, fd_tol);
    float *jv = malloc(n * 4);
    memcpy(jv, out, n * 4);

    /* backward vs reference and adjoint identity */
    for (size_t i = 0; i < n; i++) ref[i] = u[i] * ref_d(a, z[i]);
    REQUIRE_OK(ctx, gf_act_backward(ctx, a, n, bz, bu, bo));
    test_download(ctx, bo, out, n);
    snprintf(what, sizeof what, "%s(%g) backward n=%zu", name, a.slope, n);
    test_close(what, out, ref, n, atol, rtol);
    double lhs = dot(jv, u, n), rhs = dot(t, out, n);
    double rel = fabs(lhs - rhs) / fmax(1e-30, fmax(fabs(lhs), fabs(rhs)));
    CHECK(rel <= 1e-4, "%s adjoint: <Jv,u> %.9g vs <v,J^T u> %.9g (rel %.3g)", what, lhs, rhs, rel);
    REQUIRE_OK(ctx, gf_act_backward(ctx, a, n, bz, bu, bo2));
    test_download(ctx, bo2, out2, n);
    CHECK(memcmp(out, out2, n * 4) == 0, "%s: backward not bitwise reproducible", what);

    /* In place: forward z <- sigma(z), then the mask from the output (valid for
     * slope >= 0), tangent and backward in place on their inputs. */
    if (!gf_act_smooth(a.kind) && (a.kind != GF_ACT_LEAKY || a.slope >= 0)) {
        cl_mem bzz = test_upload(ctx, z, n), btt = test_upload(ctx, t, n), buu = test_upload(ctx, u, n);
        REQUIRE_OK(ctx, gf_act_forward(ctx, a, n, bzz, bzz));
        REQUIRE_OK(ctx, gf_act_tangent(ctx, a, n, bzz, btt, btt));
        REQUIRE_OK(ctx, gf_act_backward(ctx, a, n, bzz, buu, buu));
        test_download(ctx, btt, out2, n);
        CHECK(memcmp(jv, out2, n * 4) == 0, "%s: in-place tangent with the output mask differs", what);
        test_download(ctx, buu, out2, n);
        CHECK(memcmp(out, out2, n * 4) == 0, "%s: in-place backward with the output mask differs", what);
        gf_buf_release(&bzz); gf_buf_release(&btt); gf_buf_release(&buu);
    }
    free(jv);
    gf_buf_release(&bz); gf_buf_release(&bt); gf_buf_release(&bu); gf_buf_release(&bo); gf_buf_release(&bo2);
    free(z); free(t); free(u); free(out); free(out2); free(ref);
}

/* Special values: NaN propagates through the forward; an infinite gradient
 * behind a closed mask gives 0 (select, not multiply); exact kinks follow the
 * documented convention (mask 1[z > 0], ReLU6 open at 6). */
static void special_values(gf_ctx *ctx) {
    const float z[6] = {NAN, 0.0f, -0.0f, 6.0f, -3.0f, 7.0f};
    const float g[6] = {1.0f, 2.0f, 3.0f, 4.0f, INFINITY, 5.0f};
    float y[6], gi[6];
    cl_mem bz = test_upload(ctx, z, 6), bg = test_upload(ctx, g, 6), bo = test_alloc(ctx, 6);
    gf_act relu6 = {GF_ACT_RELU6, 0}, relu = {GF_ACT_RELU, 0};
    REQUIRE_OK(ctx, gf_act_forward(ctx, relu6, 6, bz, bo));
    test_download(ctx, bo, y, 6);
    CHECK(isnan(y[0]) && y[1] == 0 && y[2] == 0 && y[3] == 6 && y[4] == 0 && y[5] == 6,
          "relu6 special forward: %g %g %g %g %g %g", y[0], y[1], y[2], y[3], y[4], y[5]);
    REQUIRE_OK(ctx, gf_act_backward(ctx, relu6, 6, bz, bg, bo));
    test_download(ctx, bo, gi, 6);
    CHECK(gi[1] == 0 && gi[2] == 0 && gi[3] == 0 && gi[4] == 0 && gi[5] == 0,
          "relu6 special backward: %g %g %g %g %g", gi[1], gi[2], gi[3], gi[4], gi[5]);
    REQUIRE_OK(ctx, gf_act_forward(ctx, relu, 6, bz, bo));
    test_download(ctx, bo, y, 6);
    CHECK(isnan(y[0]) && y[3] == 6 && y[5] == 7, "relu special forward");
    gf_act bad = {GF_ACT_COUNT, 0};
    CHECK(gf_act_forward(ctx, bad, 6, bz, bo) == GF_ERR_USAGE, "unknown kind accepted");
    CHECK(gf_act_parse("relu6") == GF_ACT_RELU6 && gf_act_parse("leaky_relu") == GF_ACT_LEAKY &&
          gf_act_parse("tanh") == -1, "gf_act_parse");
    gf_buf_release(&bz); gf_buf_release(&bg); gf_buf_release(&bo);
}

/* gf_act_ref / gf_act_dref against formulas written another way (PyTorch's
 * definitions: hardsigmoid = relu6(x + 3) / 6, hardswish = x hardsigmoid(x),
 * GELU = x (1 + erf(x / sqrt 2)) / 2, SiLU = x sigmoid(x)) and the derivative
 * against a central difference of the reference, on a grid away from kinks. */
static void reference_crosscheck(void) {
    double worst = 0, worst_d = 0;
    for (int i = -800; i <= 800; i++) {
        double z = i / 100.0 + 0.00371;
        double s = 1 / (1 + exp(-z)), r6 = fmin(fmax(z + 3, 0), 6);
        double e[6] = {
            gf_act_ref((gf_act){GF_ACT_SIGMOID, 0}, z) - s,
            gf_act_ref((gf_act){GF_ACT_SILU, 0}, z) - z * s,
            (gf_act_ref(GF_ACT_HSIGMOID_TORCH, z) - r6 / 6) * 1e-5,   /* slope is float(1/6): 5e-9 z */
            gf_act_ref((gf_act){GF_ACT_HSWISH, 0}, z) - z * r6 / 6,
            gf_act_ref((gf_act){GF_ACT_GELU, 0}, z) - 0.5 * z * (1 + erf(z / sqrt(2.0))),
            gf_act_ref((gf_act){GF_ACT_GELU_TANH, 0}, z) -
                0.5 * z * (1 + tanh(sqrt(2 / M_PI) * (z + 0.044715 * z * z * z)))};
        for (int k = 0; k < 6; k++) if (fabs(e[k]) > worst) worst = fabs(e[k]);
        for (int k = GF_ACT_SIGMOID; k < GF_ACT_COUNT; k++) {
            gf_act a = {(gf_act_kind)k, 0};
            if (k == GF_ACT_HSIGMOID) a = GF_ACT_HSIGMOID_TORCH;
            const double h = 1e-5;
            double fd = (gf_act_ref(a, z + h) - gf_act_ref(a, z - h)) / (2 * h);
            double d = fabs(fd - gf_act_dref(a, z));
            if (d > worst_d) worst_d = d;
        }
    }
    CHECK(worst < 1e-12, "references vs independent formulas: %.3g", worst);
    CHECK(worst_d < 1e-8, "reference derivatives vs central differences: %.3g", worst_d);
}

/* The new kinds at special inputs: NaN propagates (also through the clamps of
 * the hard kinds), +inf saturates, the hard kinks follow PyTorch's choices
 * (hardswish' = 1/2 - 1 = -1/2 at -3 and 3/2 at 3; hardsigmoid' = 0 at +-3). */
static void special_smooth(gf_ctx *ctx) {
    const float z[5] = {NAN, INFINITY, -INFINITY, -3.0f, 3.0f};
    const float g[5] = {1, 1, 1, 1, 1};
    float y[5], d[5];
    cl_mem bz = test_upload(ctx, z, 5), bg = test_upload(ctx, g, 5), bo = test_alloc(ctx, 5);
    for (int k = GF_ACT_SIGMOID; k < GF_ACT_COUNT; k++) {
        gf_act a = {(gf_act_kind)k, 0};
        if (k == GF_ACT_HSIGMOID) a = GF_ACT_HSIGMOID_TORCH;
        REQUIRE_OK(ctx, gf_act_forward(ctx, a, 5, bz, bo));
        test_download(ctx, bo, y, 5);
        REQUIRE_OK(ctx, gf_act_backward(ctx, a, 5, bz, bg, bo));
        test_download(ctx, bo, d, 5);
        const char *nm = gf_act_name(a.kind);
        CHECK(isnan(y[0]), "%s(NaN) = %g, not NaN", nm, y[0]);
        int bounded = k == GF_ACT_SIGMOID || k == GF_ACT_HSIGMOID;
        CHECK(bounded ? y[1] == 1.0f : y[1] == INFINITY, "%s(+inf) = %g", nm, y[1]);
        if (k == GF_ACT_SIGMOID || k == GF_ACT_HSIGMOID) CHECK(y[2] == 0.0f, "%s(-inf) = %g", nm, y[2]);
        if (k == GF_ACT_HSWISH)
            CHECK(d[3] == -0.5f && d[4] == 1.5f, "hardswish' at -3, 3: %g %g (PyTorch: -0.5, 1.5)", d[3], d[4]);
        if (k == GF_ACT_HSIGMOID) CHECK(d[3] == 0 && d[4] == 0, "hardsigmoid' at -3, 3: %g %g", d[3], d[4]);
    }
    CHECK(gf_act_parse("silu") == GF_ACT_SILU && gf_act_parse("swish") == GF_ACT_SILU &&
          gf_act_parse("gelu_tanh") == GF_ACT_GELU_TANH && gf_act_parse("hardswish") == GF_ACT_HSWISH,
          "gf_act_parse of the new kinds");
    for (int k = 0; k < GF_ACT_COUNT; k++)
        CHECK(gf_act_parse(gf_act_name((gf_act_kind)k)) == k, "name/parse round trip of kind %d", k);
    gf_buf_release(&bz); gf_buf_release(&bg); gf_buf_release(&bo);
}

int main(int argc, char **argv) {
    const int small = argc > 1 && !strcmp(argv[1], "--small");   /* tests/cli_oclgrind_act.sh */
    gf_ctx *ctx = test_ctx();
    printf("device: %s\n", gf_ctx_device(ctx)->name);
    const gf_act kinds[] = {{GF_ACT_RELU, 0}, {GF_ACT_LEAKY, 0.01f}, {GF_ACT_LEAKY, 0.2f},
                            {GF_ACT_LEAKY, -0.3f}, {GF_ACT_RELU6, 0}, {GF_ACT_SIGMOID, 0},
                            {GF_ACT_SILU, 0}, GF_ACT_HSIGMOID_TORCH, {GF_ACT_HSIGMOID, 0.2f},
                            {GF_ACT_HSWISH, 0}, {GF_ACT_GELU, 0}, {GF_ACT_GELU_TANH, 0}};
    reference_crosscheck();
    /* sizes: 1, odd, batch 7 x 13 channels x 5 x 3, a larger map */
    const size_t sizes[] = {1, 7, 1365, 64 * 49 * 3 + 5}, small_sizes[] = {1, 7, 130};
    const size_t *sz = small ? small_sizes : sizes;
    const size_t nsz = small ? sizeof small_sizes / sizeof *small_sizes : sizeof sizes / sizeof *sizes;
    uint64_t seed = 1;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        for (size_t s = 0; s < nsz; s++)
            run_case(ctx, kinds[k], sz[s], seed++);
    special_values(ctx);
    special_smooth(ctx);
    gf_ctx_free(ctx);
    return test_finish("test_act");
}
