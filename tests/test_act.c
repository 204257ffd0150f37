/* Activations on the device vs a double C reference: forward, tangent (also
 * vs central finite differences of the reference) and backward (also vs the
 * adjoint identity <J v, u> = <v, J^T u> on the device), in place, with the
 * mask taken from the output, and determinism.
 * Tolerances: ReLU and ReLU6 forward/tangent/backward are selections, so
 * exact; LeakyReLU has one float product: |got - ref| <= 1e-30 + 1.2e-7 |ref|
 * (half an ulp is 6e-8); FD: 1e-6 + 1e-6 |ref|; adjoint 1e-4 relative.
 * FD inputs are kept >= 0.05 away from the kinks (0, and 6 for ReLU6) and the
 * FD step moves them at most 1e-3, so the piecewise-linear reference is smooth
 * along the probe and central differences are exact up to rounding. */
#include "testutil.h"
#include "ops_act.h"

static double ref_f(gf_act a, double z) {
    if (a.kind == GF_ACT_RELU) return z > 0 ? z : 0;
    if (a.kind == GF_ACT_LEAKY) return z > 0 ? z : (double)a.slope * z;
    return z <= 0 ? 0 : (z >= 6 ? 6 : z);
}

static double ref_d(gf_act a, double z) {
    if (a.kind == GF_ACT_RELU) return z > 0;
    if (a.kind == GF_ACT_LEAKY) return z > 0 ? 1.0 : (double)a.slope;
    return z > 0 && z < 6;
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
        double v = test_uniform(&r, -9, 9);
        if (fabs(v) < 0.05) v = v < 0 ? -0.05 - fabs(v) : 0.05 + v;
        if (fabs(v - 6) < 0.05) v = 6.1;
        z[i] = (float)v;
    }
    test_fill(&r, t, n, -1, 1);
    test_fill(&r, u, n, -1, 1);
    cl_mem bz = test_upload(ctx, z, n), bt = test_upload(ctx, t, n), bu = test_upload(ctx, u, n);
    cl_mem bo = test_alloc(ctx, n), bo2 = test_alloc(ctx, n);
    const char *name = gf_act_name(a.kind);
    const double rtol = a.kind == GF_ACT_LEAKY ? 1.2e-7 : 0.0, atol = 1e-30;

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
    test_close(what, out, ref, n, 1e-6, 1e-6);
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
    if (a.kind != GF_ACT_LEAKY || a.slope >= 0) {
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
    gf_act bad = {(gf_act_kind)7, 0};
    CHECK(gf_act_forward(ctx, bad, 6, bz, bo) == GF_ERR_USAGE, "unknown kind accepted");
    CHECK(gf_act_parse("relu6") == GF_ACT_RELU6 && gf_act_parse("leaky_relu") == GF_ACT_LEAKY &&
          gf_act_parse("tanh") == -1, "gf_act_parse");
    gf_buf_release(&bz); gf_buf_release(&bg); gf_buf_release(&bo);
}

int main(void) {
    gf_ctx *ctx = test_ctx();
    const gf_act kinds[] = {{GF_ACT_RELU, 0}, {GF_ACT_LEAKY, 0.01f}, {GF_ACT_LEAKY, 0.2f},
                            {GF_ACT_LEAKY, -0.3f}, {GF_ACT_RELU6, 0}};
    /* sizes: 1, odd, batch 7 x 13 channels x 5 x 3, a larger map */
    const size_t sizes[] = {1, 7, 1365, 64 * 49 * 3 + 5};
    uint64_t seed = 1;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            run_case(ctx, kinds[k], sizes[s], seed++);
    special_values(ctx);
    gf_ctx_free(ctx);
    return test_finish("test_act");
}
