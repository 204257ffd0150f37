/* The merge ops (host/ops/ops_merge.c) on the device vs double C references.
 *
 * Product y = x * s, elementwise and with a per-channel gate [N, C, 1, 1]
 * broadcast over H x W (squeeze-excitation); the first op whose tangent has
 * two moving inputs, so it is tested hardest:
 *  - forward vs the reference; in place (y aliasing x);
 *  - tangent with BOTH inputs moving, with only x moving, only s moving, each
 *    vs the reference product rule and vs central finite differences of the
 *    reference forward along (tx, ts) (bilinear: the central difference is
 *    exact up to rounding); linearity: t(tx, ts) = t(tx, 0) + t(0, ts);
 *  - backward vs the reference (the gate gradient is a sum over H x W: planes
 *    of 1, 7x7 (one work item per plane), 9x9 and 56x56 (a work-group per plane)
 *    and the adjoint identity <J (tx, ts), u> = <tx, gx> + <ts, gs>;
 *  - bitwise determinism of the gate reduction, and the refusals.
 * Concat along channels of 2..4 inputs: forward/tangent (with a zero slice for
 * an input whose tangent is 0) vs the reference, backward slices (overwrite
 * and accumulate), adjoint <concat(v), u> = sum_k <v_k, u_k>.
 * Tolerances: one float product |err| <= 1e-30 + 1.2e-7 |ref|; the product
 * rule (two products and a sum) and the FD: 1e-6 + 1e-6 |ref|; gate sums of
 * HW products: 1e-6 + 2e-6 |ref| (float accumulation of up to 3136 terms of
 * |g x| <= 1; checked at 1e-5 of the sum's magnitude of terms); adjoint 1e-5
 * relative; concat is a copy: exact.
 * Channel shuffle (ShuffleNet, G groups) and channel slice (torch.chunk):
 * forward vs the reference permutation / slice (exact, every value written),
 * tangent = the forward of the tangent vs central finite differences of the
 * reference (linear: exact up to rounding, 1e-6), backward (overwrite and
 * accumulate) vs the reference inverse permutation / zero-padded slice,
 * the adjoint identity <Jv, u> = <v, J^T u> (1e-12 relative: a permutation
 * pairs the same products), shuffle then its backward is the identity, and
 * bitwise determinism of repeated calls.
 * `test_merge --small`: the product on 1x1x1x1, 2x3x7x7 and 3x5x9x9 (both modes: the 7x7 gate gradient
 * is one item per plane, the 9x9 one a work-group tree), concat of 3 inputs, two shuffles (G = 3 and
 * G = C), an uneven slice and the refusals (tests/cli_oclgrind_merge.sh: every kernel of cl/merge.cl,
 * and gf_fill of cl/util.cl, under oclgrind). */
#include "testutil.h"
#include "ops_merge.h"
#include "ops_util.h"

static double dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static void mul_case(gf_ctx *ctx, int N, int C, int H, int W, int gate, uint64_t seed) {
    char what[160];
    const size_t HW = (size_t)H * W, P = (size_t)N * C, T = P * HW, S = gate ? P : T;
    test_rng r;
    test_rng_seed(&r, seed);
    float *x = malloc(T * 4), *s = malloc(S * 4), *tx = malloc(T * 4), *ts = malloc(S * 4), *u = malloc(T * 4);
    float *out = malloc(T * 4), *out2 = malloc(T * 4), *jv = malloc(T * 4), *gx = malloc(T * 4), *gs = malloc(S * 4);
    double *ref = malloc(T * 8);
    test_fill(&r, x, T, -2, 2);
    test_fill(&r, s, S, -1.5, 1.5);
    test_fill(&r, tx, T, -1, 1);
    test_fill(&r, ts, S, -1, 1);
    test_fill(&r, u, T, -1, 1);
    cl_mem bx = test_upload(ctx, x, T), bs = test_upload(ctx, s, S), btx = test_upload(ctx, tx, T);
    cl_mem bts = test_upload(ctx, ts, S), bu = test_upload(ctx, u, T), bo = test_alloc(ctx, T), bo2 = test_alloc(ctx, T);
    cl_mem bgs = test_alloc(ctx, S);
    const char *mode = gate ? "gate" : "elementwise";
#define SI(i) (gate ? (i) / HW : (i))

    /* forward, and in place */
    for (size_t i = 0; i < T; i++) ref[i] = (double)x[i] * s[SI(i)];
    REQUIRE_OK(ctx, gf_mul_forward(ctx, P, HW, gate, bx, bs, bo));
    test_download(ctx, bo, out, T);
    snprintf(what, sizeof what, "mul %s forward %dx%dx%dx%d", mode, N, C, H, W);
    test_close(what, out, ref, T, 1e-30, 1.2e-7);
    cl_mem bxx = test_upload(ctx, x, T);
    REQUIRE_OK(ctx, gf_mul_forward(ctx, P, HW, gate, bxx, bs, bxx));
    test_download(ctx, bxx, out2, T);
    CHECK(memcmp(out, out2, T * 4) == 0, "%s: in place differs", what);
    gf_buf_release(&bxx);

    /* tangent: both moving, x only, s only */
    const double h = 1e-3;
    for (int which = 0; which < 3; which++) {
        int mx = which != 2, ms = which != 1;
        static const char *wn[3] = {"both inputs moving", "x moving", "s moving"};
        for (size_t i = 0; i < T; i++) ref[i] = (mx ? (double)tx[i] * s[SI(i)] : 0) + (ms ? (double)x[i] * ts[SI(i)] : 0);
        REQUIRE_OK(ctx, gf_mul_tangent(ctx, P, HW, gate, bx, bs, mx ? btx : NULL, ms ? bts : NULL, bo));
        test_download(ctx, bo, out, T);
        snprintf(what, sizeof what, "mul %s tangent (%s) %dx%dx%dx%d", mode, wn[which], N, C, H, W);
        test_close(what, out, ref, T, 1e-6, 1e-6);
        for (size_t i = 0; i < T; i++) {   /* central differences of the reference forward */
            double xp = x[i] + (mx ? h * tx[i] : 0), xm = x[i] - (mx ? h * tx[i] : 0);
            double sp = s[SI(i)] + (ms ? h * ts[SI(i)] : 0), sm = s[SI(i)] - (ms ? h * ts[SI(i)] : 0);
            ref[i] = (xp * sp - xm * sm) / (2 * h);
        }
        snprintf(what, sizeof what, "mul %s tangent vs FD (%s) %dx%dx%dx%d", mode, wn[which], N, C, H, W);
        test_close(what, out, ref, T, 1e-6, 1e-6);
        if (which == 0) memcpy(jv, out, T * 4);
        else for (size_t i = 0; i < T; i++) out2[i] = which == 1 ? out[i] : out2[i] + out[i];
    }
    /* product rule: the two partial tangents add up to the full one */
    for (size_t i = 0; i < T; i++) ref[i] = jv[i];
    snprintf(what, sizeof what, "mul %s t(tx,ts) = t(tx,0) + t(0,ts) %dx%dx%dx%d", mode, N, C, H, W);
    test_close(what, out2, ref, T, 1e-6, 1e-6);

    /* backward vs the reference, then the adjoint identity */
    REQUIRE_OK(ctx, gf_mul_backward(ctx, P, HW, gate, bx, bs, bu, bo, bgs));
    test_download(ctx, bo, gx, T);
    test_download(ctx, bgs, gs, S);
    for (size_t i = 0; i < T; i++) ref[i] = (double)u[i] * s[SI(i)];
    snprintf(what, sizeof what, "mul %s backward gx %dx%dx%dx%d", mode, N, C, H, W);
    test_close(what, gx, ref, T, 1e-30, 1.2e-7);
    if (gate) {
        double worst = 0;
        for (size_t p = 0; p < P; p++) {
            double acc = 0, mag = 0;
            for (size_t j = 0; j < HW; j++) {
                acc += (double)u[p * HW + j] * x[p * HW + j];
                mag += fabs((double)u[p * HW + j] * x[p * HW + j]);
            }
            double e = fabs(gs[p] - acc) / (1e-30 + mag);
            if (!(e <= worst)) worst = e;
        }
        CHECK(worst <= 1e-5, "mul gate backward gs %dx%dx%dx%d: error %.3g of sum |g x|", N, C, H, W, worst);
    } else {
        for (size_t i = 0; i < T; i++) ref[i] = (double)u[i] * x[i];
        snprintf(what, sizeof what, "mul elementwise backward gs %dx%dx%dx%d", N, C, H, W);
        test_close(what, gs, ref, T, 1e-30, 1.2e-7);
    }
    double lhs = dot(jv, u, T), rhs = dot(tx, gx, T) + dot(ts, gs, S);
    double rel = fabs(lhs - rhs) / fmax(1e-30, fmax(fabs(lhs), fabs(rhs)));
    CHECK(rel <= 1e-5, "mul %s adjoint %dx%dx%dx%d: <Jv,u> %.9g vs <v,J^T u> %.9g (rel %.3g)", mode, N, C, H, W, lhs,
          rhs, rel);
    /* only one of the two gradients; the same values, bitwise (deterministic) */
    REQUIRE_OK(ctx, gf_mul_backward(ctx, P, HW, gate, bx, bs, bu, NULL, bgs));
    test_download(ctx, bgs, out2, S);
    CHECK(memcmp(out2, gs, S * 4) == 0, "mul %s %dx%dx%dx%d: gs alone differs (not deterministic)", mode, N, C, H, W);
    REQUIRE_OK(ctx, gf_mul_backward(ctx, P, HW, gate, bx, bs, bu, bo2, NULL));
    test_download(ctx, bo2, out2, T);
    CHECK(memcmp(out2, gx, T * 4) == 0, "mul %s %dx%dx%dx%d: gx alone differs", mode, N, C, H, W);
#undef SI
    gf_buf_release(&bx); gf_buf_release(&bs); gf_buf_release(&btx); gf_buf_release(&bts); gf_buf_release(&bu);
    gf_buf_release(&bo); gf_buf_release(&bo2); gf_buf_release(&bgs);
    free(x); free(s); free(tx); free(ts); free(u); free(out); free(out2); free(jv); free(gx); free(gs); free(ref);
}

static void concat_case(gf_ctx *ctx, int N, int n, const int *C, int H, int W, uint64_t seed) {
    char what[160];
    const size_t HW = (size_t)H * W;
    int Ct = 0;
    for (int k = 0; k < n; k++) Ct += C[k];
    const size_t T = (size_t)N * Ct * HW;
    test_rng r;
    test_rng_seed(&r, seed);
    float *v[GF_CONCAT_MAX_INPUTS], *u = malloc(T * 4), *out = malloc(T * 4), *gk = malloc(T * 4);
    double *ref = malloc(T * 8);
    cl_mem bv[GF_CONCAT_MAX_INPUTS], by = test_alloc(ctx, T), bu, bg = test_alloc(ctx, T);
    for (int k = 0; k < n; k++) {
        size_t m = (size_t)N * C[k] * HW;
        v[k] = malloc(m * 4);
        test_fill(&r, v[k], m, -1, 1);
        bv[k] = test_upload(ctx, v[k], m);
    }
    test_fill(&r, u, T, -1, 1);
    bu = test_upload(ctx, u, T);
    for (int zero = 0; zero < 2; zero++) {   /* zero = 1: input 1's tangent is 0 (a zero slice) */
        cl_mem in[GF_CONCAT_MAX_INPUTS];
        for (int k = 0; k < n; k++) in[k] = zero && k == 1 ? NULL : bv[k];
        REQUIRE_OK(ctx, gf_fill(ctx, T, NAN, by));   /* every value must be written */
        REQUIRE_OK(ctx, gf_concat_forward(ctx, N, HW, n, C, in, by));
        test_download(ctx, by, out, T);
        for (int b = 0; b < N; b++)
            for (int k = 0, off = 0; k < n; off += C[k], k++)
                for (int c = 0; c < C[k]; c++)
                    for (size_t j = 0; j < HW; j++)
                        ref[((size_t)b * Ct + off + c) * HW + j] = zero && k == 1 ? 0.0 : v[k][((size_t)b * C[k] + c) * HW + j];
        snprintf(what, sizeof what, "concat %s of %d inputs (Ct %d) %dx%d", zero ? "tangent, a zero slice," : "forward",
                 n, Ct, H, W);
        test_close(what, out, ref, T, 1e-30, 0);
    }
    /* backward: each slice, overwrite then accumulate; adjoint */
    double rhs = 0;
    for (int k = 0, off = 0; k < n; off += C[k], k++) {
        size_t m = (size_t)N * C[k] * HW;
        REQUIRE_OK(ctx, gf_concat_backward(ctx, N, HW, Ct, off, C[k], bu, bg, 0));
        test_download(ctx, bg, gk, m);
        for (int b = 0; b < N; b++)
            for (int c = 0; c < C[k]; c++)
                for (size_t j = 0; j < HW; j++)
                    ref[((size_t)b * C[k] + c) * HW + j] = u[((size_t)b * Ct + off + c) * HW + j];
        snprintf(what, sizeof what, "concat backward slice %d of %d (Ct %d)", k, n, Ct);
        test_close(what, gk, ref, m, 1e-30, 0);
        rhs += dot(v[k], gk, m);
        REQUIRE_OK(ctx, gf_concat_backward(ctx, N, HW, Ct, off, C[k], bu, bg, 1));
        test_download(ctx, bg, gk, m);
        for (size_t i = 0; i < m; i++) ref[i] *= 2;
        snprintf(what, sizeof what, "concat backward slice %d of %d accumulated", k, n);
        test_close(what, gk, ref, m, 1e-30, 0);
    }
    cl_mem in[GF_CONCAT_MAX_INPUTS];
    for (int k = 0; k < n; k++) in[k] = bv[k];
    REQUIRE_OK(ctx, gf_concat_forward(ctx, N, HW, n, C, in, by));
    test_download(ctx, by, out, T);
    double lhs = dot(out, u, T), rel = fabs(lhs - rhs) / fmax(1e-30, fabs(lhs));
    CHECK(rel <= 1e-12, "concat adjoint: %.12g vs %.12g", lhs, rhs);
    for (int k = 0; k < n; k++) { gf_buf_release(&bv[k]); free(v[k]); }
    gf_buf_release(&by); gf_buf_release(&bu); gf_buf_release(&bg);
    free(u); free(out); free(gk); free(ref);
}

/* reference: y[n, k*G + g] = x[n, g*(C/G) + k] (torch: x.view(N, G, C/G, HW).transpose(1, 2).reshape(N, C, HW)) */
static size_t shuffle_src(int C, int G, int c) { return (size_t)(c % G) * (C / G) + (size_t)(c / G); }

static void shuffle_case(gf_ctx *ctx, int N, int C, int H, int W, int G, uint64_t seed) {
    char what[160];
    const size_t HW = (size_t)H * W, T = (size_t)N * C * HW;
    test_rng r;
    test_rng_seed(&r, seed);
    float *x = malloc(T * 4), *v = malloc(T * 4), *u = malloc(T * 4), *out = malloc(T * 4), *out2 = malloc(T * 4);
    float *gx = malloc(T * 4);
    double *ref = malloc(T * 8);
    test_fill(&r, x, T, -2, 2);
    test_fill(&r, v, T, -1, 1);
    test_fill(&r, u, T, -1, 1);
    cl_mem bx = test_upload(ctx, x, T), bv = test_upload(ctx, v, T), bu = test_upload(ctx, u, T);
    cl_mem by = test_alloc(ctx, T), bg = test_alloc(ctx, T);
    /* forward: every value written */
    REQUIRE_OK(ctx, gf_fill(ctx, T, NAN, by));
    REQUIRE_OK(ctx, gf_shuffle_forward(ctx, N, C, HW, G, bx, by));
    test_download(ctx, by, out, T);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (size_t j = 0; j < HW; j++)
                ref[((size_t)n * C + c) * HW + j] = x[((size_t)n * C + shuffle_src(C, G, c)) * HW + j];
    snprintf(what, sizeof what, "shuffle forward %dx%dx%dx%d G %d", N, C, H, W, G);
    test_close(what, out, ref, T, 1e-30, 0);
    /* tangent: the same call on v, vs central differences of the reference forward along v */
    const double h = 1e-3;
    REQUIRE_OK(ctx, gf_shuffle_forward(ctx, N, C, HW, G, bv, by));
    test_download(ctx, by, out, T);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (size_t j = 0; j < HW; j++) {
                size_t si = ((size_t)n * C + shuffle_src(C, G, c)) * HW + j;
                ref[((size_t)n * C + c) * HW + j] = (((double)x[si] + h * v[si]) - ((double)x[si] - h * v[si])) / (2 * h);
            }
    snprintf(what, sizeof what, "shuffle tangent vs FD %dx%dx%dx%d G %d", N, C, H, W, G);
    test_close(what, out, ref, T, 1e-6, 1e-6);
    /* backward vs the reference inverse permutation; adjoint; accumulate; determinism */
    REQUIRE_OK(ctx, gf_fill(ctx, T, NAN, bg));
    REQUIRE_OK(ctx, gf_shuffle_backward(ctx, N, C, HW, G, bu, bg, 0));
    test_download(ctx, bg, gx, T);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (size_t j = 0; j < HW; j++)
                ref[((size_t)n * C + shuffle_src(C, G, c)) * HW + j] = u[((size_t)n * C + c) * HW + j];
    snprintf(what, sizeof what, "shuffle backward %dx%dx%dx%d G %d", N, C, H, W, G);
    test_close(what, gx, ref, T, 1e-30, 0);
    double lhs = dot(out, u, T), rhs = dot(v, gx, T), rel = fabs(lhs - rhs) / fmax(1e-30, fabs(lhs));
    CHECK(rel <= 1e-12, "shuffle adjoint %dx%dx%dx%d G %d: <Jv,u> %.12g vs <v,J^T u> %.12g", N, C, H, W, G, lhs, rhs);
    REQUIRE_OK(ctx, gf_shuffle_backward(ctx, N, C, HW, G, bu, bg, 1));
    test_download(ctx, bg, out2, T);
    for (size_t i = 0; i < T; i++) ref[i] *= 2;
    snprintf(what, sizeof what, "shuffle backward accumulated %dx%dx%dx%d G %d", N, C, H, W, G);
    test_close(what, out2, ref, T, 1e-30, 0);
    REQUIRE_OK(ctx, gf_shuffle_backward(ctx, N, C, HW, G, bu, bg, 0));
    test_download(ctx, bg, out2, T);
    CHECK(memcmp(out2, gx, T * 4) == 0, "shuffle backward %dx%dx%dx%d G %d: repeat differs", N, C, H, W, G);
    /* the backward undoes the forward: shuffle(x) then its inverse is x, bitwise */
    REQUIRE_OK(ctx, gf_shuffle_forward(ctx, N, C, HW, G, bx, by));
    REQUIRE_OK(ctx, gf_shuffle_backward(ctx, N, C, HW, G, by, bg, 0));
    test_download(ctx, bg, out2, T);
    CHECK(memcmp(out2, x, T * 4) == 0, "shuffle %dx%dx%dx%d G %d: inverse(shuffle(x)) != x", N, C, H, W, G);
    gf_buf_release(&bx); gf_buf_release(&bv); gf_buf_release(&bu); gf_buf_release(&by); gf_buf_release(&bg);
    free(x); free(v); free(u); free(out); free(out2); free(gx); free(ref);
}

/* torch.chunk(x, n, dim=1): n slices; each forward/tangent, backward (overwrite, accumulate), adjoint */
static void slice_case(gf_ctx *ctx, int N, int C, int H, int W, int chunks, uint64_t seed) {
    char what[160];
    const size_t HW = (size_t)H * W, T = (size_t)N * C * HW;
    test_rng r;
    test_rng_seed(&r, seed);
    float *x = malloc(T * 4), *u = malloc(T * 4), *out = malloc(T * 4), *gx = malloc(T * 4);
    double *ref = malloc(T * 8);
    test_fill(&r, x, T, -2, 2);
    test_fill(&r, u, T, -1, 1);
    cl_mem bx = test_upload(ctx, x, T), by = test_alloc(ctx, T), bu = test_upload(ctx, u, T), bg = test_alloc(ctx, T);
    int step = (C + chunks - 1) / chunks;   /* torch.chunk's sizes: ceil(C / chunks), the last one smaller */
    double lhs = 0, rhs = 0;
    for (int off = 0; off < C; off += step) {
        int Ck = off + step <= C ? step : C - off;
        size_t m = (size_t)N * Ck * HW;
        REQUIRE_OK(ctx, gf_fill(ctx, T, NAN, by));
        REQUIRE_OK(ctx, gf_slice_forward(ctx, N, HW, C, off, Ck, bx, by));
        test_download(ctx, by, out, m);
        for (int n = 0; n < N; n++)
            for (int c = 0; c < Ck; c++)
                for (size_t j = 0; j < HW; j++)
                    ref[((size_t)n * Ck + c) * HW + j] = x[((size_t)n * C + off + c) * HW + j];
        snprintf(what, sizeof what, "slice forward/tangent %d..%d of %dx%dx%dx%d", off, off + Ck, N, C, H, W);
        test_close(what, out, ref, m, 1e-30, 0);
        lhs += dot(out, u, m);   /* u's leading m values as the slice's output gradient */
        REQUIRE_OK(ctx, gf_fill(ctx, T, NAN, bg));
        REQUIRE_OK(ctx, gf_slice_backward(ctx, N, HW, C, off, Ck, bu, bg, 0));
        test_download(ctx, bg, gx, T);
        for (size_t i = 0; i < T; i++) ref[i] = 0;
        for (int n = 0; n < N; n++)
            for (int c = 0; c < Ck; c++)
                for (size_t j = 0; j < HW; j++)
                    ref[((size_t)n * C + off + c) * HW + j] = u[((size_t)n * Ck + c) * HW + j];
        snprintf(what, sizeof what, "slice backward %d..%d of %dx%dx%dx%d", off, off + Ck, N, C, H, W);
        test_close(what, gx, ref, T, 1e-30, 0);
        rhs += dot(x, gx, T);
        REQUIRE_OK(ctx, gf_slice_backward(ctx, N, HW, C, off, Ck, bu, bg, 1));
        test_download(ctx, bg, gx, T);
        for (size_t i = 0; i < T; i++) ref[i] *= 2;
        snprintf(what, sizeof what, "slice backward accumulated %d..%d of %dx%dx%dx%d", off, off + Ck, N, C, H, W);
        test_close(what, gx, ref, T, 1e-30, 0);
    }
    double rel = fabs(lhs - rhs) / fmax(1e-30, fabs(lhs));
    CHECK(rel <= 1e-12, "slice adjoint %dx%dx%dx%d in %d chunks: %.12g vs %.12g", N, C, H, W, chunks, lhs, rhs);
    gf_buf_release(&bx); gf_buf_release(&by); gf_buf_release(&bu); gf_buf_release(&bg);
    free(x); free(u); free(out); free(gx); free(ref);
}

static void refusals(gf_ctx *ctx) {
    cl_mem b = test_alloc(ctx, 16);
    CHECK(gf_mul_tangent(ctx, 4, 4, 0, b, b, NULL, NULL, b) != GF_OK, "mul tangent with no moving input accepted");
    CHECK(gf_mul_forward(ctx, 0, 4, 0, b, b, b) == GF_ERR_USAGE, "mul of 0 planes accepted");
    CHECK(gf_concat_backward(ctx, 1, 4, 4, 3, 2, b, b, 0) == GF_ERR_USAGE, "concat slice past the end accepted");
    int C[2] = {2, 0};
    cl_mem in[2] = {b, b};
    CHECK(gf_concat_forward(ctx, 1, 4, 2, C, in, b) == GF_ERR_USAGE, "concat of a 0-channel input accepted");
    CHECK(gf_concat_forward(ctx, 1, 4, 0, C, in, b) == GF_ERR_USAGE, "concat of no inputs accepted");
    cl_mem b2 = test_alloc(ctx, 16);
    CHECK(gf_shuffle_forward(ctx, 1, 6, 2, 4, b, b2) == GF_ERR_USAGE, "shuffle of 6 channels in 4 groups accepted");
    CHECK(gf_shuffle_forward(ctx, 1, 4, 2, 0, b, b2) == GF_ERR_USAGE, "shuffle in 0 groups accepted");
    CHECK(gf_shuffle_forward(ctx, 1, 4, 2, 2, b, b) != GF_OK, "shuffle in place accepted");
    CHECK(gf_slice_forward(ctx, 1, 4, 4, 3, 2, b, b2) == GF_ERR_USAGE, "slice past the end accepted");
    CHECK(gf_slice_backward(ctx, 1, 4, 4, -1, 2, b, b2, 0) == GF_ERR_USAGE, "slice at a negative offset accepted");
    gf_buf_release(&b2);
    gf_buf_release(&b);
}

int main(int argc, char **argv) {
    const int small = argc > 1 && !strcmp(argv[1], "--small");   /* tests/cli_oclgrind_merge.sh */
    gf_ctx *ctx = test_ctx();
    printf("device: %s\n", gf_ctx_device(ctx)->name);
    /* planes of 1 (the SE gate itself), 7x7 and 8x8 (one item per plane), 9x9 and 56x56 (work-groups) */
    const int shapes[][4] = {{1, 1, 1, 1}, {2, 3, 7, 7}, {3, 5, 9, 9}, {2, 4, 8, 8}, {2, 16, 56, 56}, {4, 24, 1, 1}};
    uint64_t seed = 1;
    for (size_t k = 0; k < (small ? 3 : sizeof shapes / sizeof shapes[0]); k++)
        for (int gate = 0; gate < 2; gate++)
            mul_case(ctx, shapes[k][0], shapes[k][1], shapes[k][2], shapes[k][3], gate, seed++);
    const int c2[] = {3, 5}, c3[] = {1, 4, 2}, c4[] = {16, 16, 8, 24};
    if (small) {
        concat_case(ctx, 3, 3, c3, 7, 9, seed++);
        shuffle_case(ctx, 3, 6, 5, 3, 3, seed++);
        shuffle_case(ctx, 1, 5, 3, 3, 5, seed++);
        slice_case(ctx, 3, 7, 5, 5, 3, seed++);    /* uneven: 3, 3, 1 */
        refusals(ctx);
        gf_ctx_free(ctx);
        return test_finish("test_merge --small");
    }
    concat_case(ctx, 2, 2, c2, 5, 5, seed++);
    concat_case(ctx, 3, 3, c3, 7, 9, seed++);
    concat_case(ctx, 2, 4, c4, 13, 13, seed++);
    concat_case(ctx, 5, 2, c2, 1, 1, seed++);
    /* ShuffleNetV2's G = 2 (its 24/48/96 channels at small maps), G = 1 and G = C (identity), odd groups */
    const int sh[][5] = {{2, 24, 7, 7, 2}, {1, 48, 4, 4, 2}, {3, 6, 5, 3, 3}, {2, 12, 1, 1, 4}, {1, 5, 3, 3, 1},
                         {1, 5, 3, 3, 5}, {2, 116, 14, 14, 2}};
    for (size_t k = 0; k < sizeof sh / sizeof sh[0]; k++)
        shuffle_case(ctx, sh[k][0], sh[k][1], sh[k][2], sh[k][3], sh[k][4], seed++);
    slice_case(ctx, 2, 24, 7, 7, 2, seed++);   /* x.chunk(2, dim=1) */
    slice_case(ctx, 3, 7, 5, 5, 3, seed++);    /* uneven: 3, 3, 1 */
    slice_case(ctx, 1, 4, 1, 1, 4, seed++);
    refusals(ctx);
    gf_ctx_free(ctx);
    return test_finish("test_merge");
}
