/* Optimiser updates on the device vs a double C reference over 7 steps with a
 * different gradient each step: SGD (momentum on/off, weight decay toward 0
 * or toward a reference tensor, norm clipping from a device buffer) and Adam
 * (two beta settings, same options); the squared gradient norm reduced on the
 * device (sizes 1 .. 1M+3, accumulation over tensors); determinism.
 * Tolerances: parameters and state |got-ref| <= 1e-6 + 1e-5 |ref| (7 float
 * updates); squared norm 1e-5 relative (float partial sums of up to 1M terms).
 * `test_optim --small` runs a few small cases (tests/cli_oclgrind_reduce.sh). */
#include "testutil.h"
#include "ops_optim.h"

enum { STEPS = 7 };

typedef struct {
    int adam, use_ref, use_clip;
    float lr, mom, wd, b1, b2, eps, max_norm;
} optim_case;

static void run_case(gf_ctx *ctx, const optim_case *oc, size_t n, uint64_t seed) {
    test_rng r;
    test_rng_seed(&r, seed);
    float *p0 = malloc(n * 4), *ref = malloc(n * 4), *g = malloc(n * 4), *got = malloc(n * 4), *got2 = malloc(n * 4);
    double *rp = malloc(n * 8), *rm = malloc(n * 8), *rv = malloc(n * 8);
    test_fill(&r, p0, n, -1, 1);
    test_fill(&r, ref, n, -0.5, 0.5);
    cl_mem bp = test_upload(ctx, p0, n), bp2 = test_upload(ctx, p0, n), bg = test_alloc(ctx, n);
    cl_mem bm = test_alloc(ctx, n), bv = test_alloc(ctx, n), bm2 = test_alloc(ctx, n), bv2 = test_alloc(ctx, n);
    cl_mem bref = test_upload(ctx, ref, n), bn = test_alloc(ctx, 1);
    for (size_t i = 0; i < n; i++) { rp[i] = p0[i]; rm[i] = rv[i] = 0; }
    char what[200];
    snprintf(what, sizeof what, "%s n=%zu lr %g mom %g wd %g b1 %g b2 %g ref %d clip %d (max %g)",
             oc->adam ? "adam" : "sgd", n, oc->lr, oc->mom, oc->wd, oc->b1, oc->b2, oc->use_ref,
             oc->use_clip, oc->max_norm);
    gf_clip clip = {bn, oc->max_norm};
    gf_sgd_opts so = {oc->lr, oc->mom, oc->wd};
    gf_adam_opts ao = {oc->lr, oc->b1, oc->b2, oc->eps, oc->wd};
    int clipped = 0;
    for (int s = 0; s < STEPS; s++) {
        /* a new gradient each step, with a growing scale so that clipping switches on */
        test_fill(&r, g, n, -0.3 * (s + 1), 0.3 * (s + 1));
        double sq = 0;
        for (size_t i = 0; i < n; i++) sq += (double)g[i] * g[i];
        double c = oc->use_clip ? fmin(1.0, oc->max_norm / (sqrt(sq) + 1e-6)) : 1.0;
        clipped += c < 1;
        for (size_t i = 0; i < n; i++) {
            double gi = c * g[i] + (double)oc->wd * (rp[i] - (oc->use_ref ? ref[i] : 0.0));
            if (!oc->adam) {
                if (oc->mom != 0) { rv[i] = oc->mom * rv[i] + gi; gi = rv[i]; }
                rp[i] -= oc->lr * gi;
            } else {
                double bc1 = 1 - pow(oc->b1, s + 1), bc2 = 1 - pow(oc->b2, s + 1);
                rm[i] = oc->b1 * rm[i] + (1 - oc->b1) * gi;
                rv[i] = oc->b2 * rv[i] + (1 - oc->b2) * gi * gi;
                rp[i] -= oc->lr / bc1 * rm[i] / (sqrt(rv[i]) / sqrt(bc2) + oc->eps);
            }
        }
        REQUIRE_OK(ctx, gf_buf_write(ctx, bg, 0, n * 4, g));
        if (oc->use_clip) REQUIRE_OK(ctx, gf_grad_sqnorm(ctx, n, bg, bn, 0, 0));
        for (int rep = 0; rep < 2; rep++) {   /* two independent copies: determinism */
            cl_mem P = rep ? bp2 : bp, M = rep ? bm2 : bm, V = rep ? bv2 : bv;
            if (oc->adam)
                REQUIRE_OK(ctx, gf_adam_step(ctx, &ao, s + 1, n, P, bg, M, V, oc->use_ref ? bref : NULL,
                                             oc->use_clip ? &clip : NULL));
            else
                REQUIRE_OK(ctx, gf_sgd_step(ctx, &so, n, P, bg, oc->mom != 0 ? V : NULL,
                                            oc->use_ref ? bref : NULL, oc->use_clip ? &clip : NULL));
        }
        /* check after every step, so an error in one step cannot hide in a later one */
        test_download(ctx, bp, got, n);
        char w2[260];
        snprintf(w2, sizeof w2, "%s step %d params", what, s + 1);
        test_close(w2, got, rp, n, 1e-6, 1e-5);
        test_download(ctx, bp2, got2, n);
        CHECK(memcmp(got, got2, n * 4) == 0, "%s: not bitwise reproducible", w2);
    }
    if (oc->use_clip && n > 1) CHECK(clipped > 0 && clipped < STEPS, "%s: clipping active in %d of %d steps "
                                     "(the case should cover both)", what, clipped, STEPS);
    if (oc->adam || oc->mom != 0) {
        test_download(ctx, oc->adam ? bv : bv, got, n);
        char w2[260];
        snprintf(w2, sizeof w2, "%s %s state", what, oc->adam ? "second moment" : "momentum");
        /* a state element can be a small difference of large terms (mom*v + g + wd*p):
         * rounded step by step (no FMA contraction, as on Mesa llvmpipe) its error is a
         * few ulp of the largest terms, so the absolute tolerance scales with max |state| */
        double vmax = 0, mmax = 0;
        for (size_t i = 0; i < n; i++) { vmax = fmax(vmax, fabs(rv[i])); mmax = fmax(mmax, fabs(rm[i])); }
        test_close(w2, got, rv, n, fmax(1e-7, 2e-6 * vmax), 1e-5);
        if (oc->adam) {
            test_download(ctx, bm, got, n);
            snprintf(w2, sizeof w2, "%s first moment state", what);
            test_close(w2, got, rm, n, fmax(1e-7, 2e-6 * mmax), 1e-5);
        }
    }
    gf_buf_release(&bp); gf_buf_release(&bp2); gf_buf_release(&bg); gf_buf_release(&bm); gf_buf_release(&bv);
    gf_buf_release(&bm2); gf_buf_release(&bv2); gf_buf_release(&bref); gf_buf_release(&bn);
    free(p0); free(ref); free(g); free(got); free(got2); free(rp); free(rm); free(rv);
}

static void run_norm(gf_ctx *ctx, size_t n, uint64_t seed) {
    test_rng r;
    test_rng_seed(&r, seed);
    float *a = malloc(n * 4), *b = malloc(n * 4), out[3], out2[3];
    test_fill(&r, a, n, -2, 2);
    test_fill(&r, b, n, -1, 1);
    double sa = 0, sb = 0;
    for (size_t i = 0; i < n; i++) { sa += (double)a[i] * a[i]; sb += (double)b[i] * b[i]; }
    cl_mem ba = test_upload(ctx, a, n), bb = test_upload(ctx, b, n), bo = test_alloc(ctx, 3);
    const float init[3] = {5, 6, 7};
    REQUIRE_OK(ctx, gf_buf_write(ctx, bo, 0, sizeof init, init));
    REQUIRE_OK(ctx, gf_grad_sqnorm(ctx, n, ba, bo, 1, 0));
    REQUIRE_OK(ctx, gf_grad_sqnorm(ctx, n, bb, bo, 2, 0));
    test_download(ctx, bo, out, 3);
    char what[96];
    snprintf(what, sizeof what, "sqnorm n=%zu", n);
    double ref[2] = {sa, sb};
    test_close(what, &out[1], ref, 2, 1e-30, 1e-5);
    CHECK(out[0] == 5, "%s: wrote outside out[off]", what);
    /* two tensors accumulated: ||a||^2 + ||b||^2 */
    REQUIRE_OK(ctx, gf_grad_sqnorm(ctx, n, ba, bo, 0, 0));
    REQUIRE_OK(ctx, gf_grad_sqnorm(ctx, n, bb, bo, 0, 1));
    test_download(ctx, bo, out2, 3);
    double both = sa + sb;
    snprintf(what, sizeof what, "sqnorm accumulated n=%zu", n);
    test_close(what, out2, &both, 1, 1e-30, 1e-5);
    CHECK(out2[0] == out[1] + out[2], "%s: accumulate is not the float sum of the parts", what);
    REQUIRE_OK(ctx, gf_grad_sqnorm(ctx, n, ba, bo, 1, 0));
    test_download(ctx, bo, out2, 3);
    CHECK(out2[1] == out[1], "sqnorm n=%zu: not bitwise reproducible", n);
    /* clip applied in place: scale min(1, max/(norm+1e-6)) with max = half the norm of a */
    gf_clip clip = {bo, (float)(0.5 * sqrt(sa))};
    REQUIRE_OK(ctx, gf_grad_sqnorm(ctx, n, ba, bo, 0, 0));
    REQUIRE_OK(ctx, gf_grad_clip(ctx, n, ba, &clip));
    test_download(ctx, ba, b, n);
    double c = fmin(1.0, clip.max_norm / (sqrt(sa) + 1e-6));
    double *rc = malloc(n * 8);
    for (size_t i = 0; i < n; i++) rc[i] = c * a[i];
    snprintf(what, sizeof what, "grad clip n=%zu", n);
    test_close(what, b, rc, n, 1e-7, 1e-5);
    gf_buf_release(&ba); gf_buf_release(&bb); gf_buf_release(&bo);
    free(a); free(b); free(rc);
}

static void errors(gf_ctx *ctx) {
    cl_mem b = test_alloc(ctx, 4);
    gf_sgd_opts so = {0.1f, 0.9f, 0};
    CHECK(gf_sgd_step(ctx, &so, 4, b, b, NULL, NULL, NULL) == GF_ERR_USAGE, "momentum without a buffer accepted");
    gf_adam_opts ao = {0.1f, 0.9f, 0.999f, 1e-8f, 0};
    CHECK(gf_adam_step(ctx, &ao, 0, 4, b, b, b, b, NULL, NULL) == GF_ERR_USAGE, "Adam step 0 accepted");
    gf_buf_release(&b);
}

int main(int argc, char **argv) {
    gf_ctx *ctx = test_ctx();
    printf("device: %s\n", gf_ctx_device(ctx)->name);
    int small = argc > 1 && !strcmp(argv[1], "--small");   /* tests/cli_oclgrind_reduce.sh */
    const optim_case cases[] = {
        /* adam use_ref use_clip lr mom wd b1 b2 eps max_norm */
        {0, 0, 0, 0.1f, 0.9f, 5e-5f, 0, 0, 0, 0},         /* official config: SGD 0.9, wd 5e-5 */
        {0, 1, 1, 0.1f, 0.9f, 0.01f, 0, 0, 0, 10.0f},     /* + decay toward ref, clip 10 */
        {0, 0, 1, 0.05f, 0.0f, 0.0f, 0, 0, 0, 10.0f},     /* plain SGD, no momentum buffer */
        {1, 0, 0, 1e-3f, 0, 1e-6f, 0.5f, 0.999f, 1e-8f, 0},  /* paper: Adam (0.5, 0.999), wd 1e-6 */
        {1, 1, 1, 1e-2f, 0, 0.05f, 0.9f, 0.999f, 1e-8f, 10.0f},
        {1, 0, 1, 1e-2f, 0, 0.0f, 0.9f, 0.99f, 1e-6f, 10.0f},
    };
    const size_t sizes[] = {1, 1000, 4099};
    uint64_t seed = 3;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            if (small && (sizes[s] != 1000 || (c != 1 && c != 4))) continue;
            optim_case oc = cases[c];
            /* keep clipping active in some steps only: max_norm ~ the mid-run norm */
            if (oc.use_clip) oc.max_norm = (float)(0.3 * 4 * sqrt((double)sizes[s] / 3.0));
            run_case(ctx, &oc, sizes[s], seed++);
        }
    const size_t ns[] = {1, 5, 1000, 4099, (1u << 20) + 3};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
        if (!small || ns[i] == 4099) run_norm(ctx, ns[i], seed++);
    errors(ctx);
    gf_ctx_free(ctx);
    return test_finish("test_optim");
}
