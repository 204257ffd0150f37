/* Pooling on the device vs a double C reference.
 * - max pool: output and argmax exact; tangent = gather (exact) vs the
 *   reference and vs central finite differences of the reference forward;
 *   backward vs the reference scatter and the adjoint identity on the device.
 *   Inputs are a shuffled grid of distinct values 0.01 apart and the FD probe
 *   moves each by at most 1e-3, so no window's arg-max changes along the probe:
 *   the max is linear there and central differences are valid.
 * - average pool (count_include_pad on and off) and global average pool:
 *   forward vs reference; tangent (= forward, linear) vs FD; backward vs
 *   reference and adjoint.
 * Tolerances: max pool exact (0); averages |got-ref| <= 1e-6 + 1e-5 |ref|;
 * FD 1e-5 + 1e-5 |ref|; adjoint relative error <= 1e-4 (sums in double).
 * Every output is computed twice and compared bitwise (determinism).
 * `test_pool --small` runs one small pool case and a global average pool over 7x7 and 9x9 planes
 * (tests/cli_oclgrind_pool.sh: every kernel of cl/pool.cl under oclgrind). */
#include "testutil.h"
#include "ops_pool.h"

static double dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static void adjoint(const char *what, const float *jv, const float *u, size_t nu,
                    const float *v, const float *jtu, size_t nv) {
    double lhs = dot(jv, u, nu), rhs = dot(v, jtu, nv);
    double rel = fabs(lhs - rhs) / fmax(1e-30, fmax(fabs(lhs), fabs(rhs)));
    CHECK(rel <= 1e-4, "%s adjoint: <Jv,u> %.9g vs <v,J^T u> %.9g (rel %.3g)", what, lhs, rhs, rel);
}

/* Reference pools in double. is_max: y and arg (flat h*W+w, first max wins);
 * otherwise the average with the divisor rule of p->count_include_pad. */
static void ref_pool(const gf_pool2d *p, const double *x, int is_max, double *y, int *arg) {
    for (int nc = 0; nc < p->N * p->C; nc++)
        for (int oh = 0; oh < p->OH; oh++)
            for (int ow = 0; ow < p->OW; ow++) {
                int h0 = oh * p->sh - p->pt, w0 = ow * p->sw - p->pl, bi = -1, cnt = 0, cnt_pad = 0;
                double best = 0, sum = 0;
                for (int h = h0; h < h0 + p->kh; h++)
                    for (int w = w0; w < w0 + p->kw; w++) {
                        if (h < p->H + p->pb && w < p->W + p->pr) cnt_pad++;   /* h, w >= -pad always */
                        if (h < 0 || h >= p->H || w < 0 || w >= p->W) continue;
                        double v = x[(size_t)nc * p->H * p->W + h * p->W + w];
                        if (bi < 0 || v > best) { best = v; bi = h * p->W + w; }
                        sum += v;
                        cnt++;
                    }
                size_t o = ((size_t)nc * p->OH + oh) * p->OW + ow;
                if (is_max) { y[o] = best; arg[o] = bi; }
                else y[o] = sum / (p->count_include_pad ? cnt_pad : cnt);
            }
}

/* Adjoint of the average pool in double: scatter g / divisor over each window. */
static void ref_avg_backward(const gf_pool2d *p, const float *g, double *gi) {
    size_t ni = gf_pool2d_in_count(p), no = gf_pool2d_out_count(p);
    double *div = malloc(no * 8);
    for (size_t i = 0; i < ni; i++) gi[i] = 0;
    for (int nc = 0; nc < p->N * p->C; nc++)
        for (int oh = 0; oh < p->OH; oh++)
            for (int ow = 0; ow < p->OW; ow++) {
                int h0 = oh * p->sh - p->pt, w0 = ow * p->sw - p->pl, cnt = 0, cnt_pad = 0;
                for (int h = h0; h < h0 + p->kh; h++)
                    for (int w = w0; w < w0 + p->kw; w++) {
                        if (h < p->H + p->pb && w < p->W + p->pr) cnt_pad++;
                        if (h >= 0 && h < p->H && w >= 0 && w < p->W) cnt++;
                    }
                size_t o = ((size_t)nc * p->OH + oh) * p->OW + ow;
                div[o] = p->count_include_pad ? cnt_pad : cnt;
                for (int h = h0; h < h0 + p->kh; h++)
                    for (int w = w0; w < w0 + p->kw; w++)
                        if (h >= 0 && h < p->H && w >= 0 && w < p->W)
                            gi[(size_t)nc * p->H * p->W + h * p->W + w] += g[o] / div[o];
            }
    free(div);
}

typedef struct { int N, C, H, W, kh, kw, sh, sw, ph, pw, tf_same; } pool_case;

static void run_pool(gf_ctx *ctx, const pool_case *pc, uint64_t seed) {
    gf_pool2d p;
    if (pc->tf_same)
        REQUIRE_OK(ctx, gf_pool2d_init_tf(ctx, &p, pc->N, pc->C, pc->H, pc->W, pc->kh, pc->kw, pc->sh, pc->sw, 1));
    else
        REQUIRE_OK(ctx, gf_pool2d_init(ctx, &p, pc->N, pc->C, pc->H, pc->W, pc->kh, pc->kw, pc->sh, pc->sw, pc->ph, pc->pw));
    char tag[160];
    snprintf(tag, sizeof tag, "N%d C%d %dx%d k%dx%d s%dx%d pad t%d b%d l%d r%d%s -> %dx%d", p.N, p.C, p.H, p.W,
             p.kh, p.kw, p.sh, p.sw, p.pt, p.pb, p.pl, p.pr, pc->tf_same ? " (TF SAME)" : "", p.OH, p.OW);
    size_t ni = gf_pool2d_in_count(&p), no = gf_pool2d_out_count(&p);
    test_rng r;
    test_rng_seed(&r, seed);
    /* Distinct values: a shuffled grid k * 0.01 - offset. */
    float *x = malloc(ni * 4), *t = malloc(ni * 4), *u = malloc(no * 4);
    float *y = malloc(no * 4), *y2 = malloc(no * 4), *tout = malloc(no * 4), *gi = malloc(ni * 4), *gi2 = malloc(ni * 4);
    double *xd = malloc(ni * 8), *ref = malloc((ni > no ? ni : no) * 8), *yp = malloc(no * 8), *ym = malloc(no * 8);
    int *arg = malloc(no * sizeof(int)), *darg = malloc(no * sizeof(int)), *darg2 = malloc(no * sizeof(int));
    for (size_t i = 0; i < ni; i++) x[i] = (float)((double)i * 0.01 - (double)ni * 0.005);
    for (size_t i = ni; i > 1; i--) {
        size_t j = (size_t)test_uniform(&r, 0, (double)i);
        float tmp = x[i - 1]; x[i - 1] = x[j]; x[j] = tmp;
    }
    for (size_t i = 0; i < ni; i++) xd[i] = x[i];
    test_fill(&r, t, ni, -1, 1);
    test_fill(&r, u, no, -1, 1);
    cl_mem bx = test_upload(ctx, x, ni), bt = test_upload(ctx, t, ni), bu = test_upload(ctx, u, no);
    cl_mem by = test_alloc(ctx, no), bto = test_alloc(ctx, no), bgi = test_alloc(ctx, ni);
    cl_mem barg = test_alloc(ctx, no), barg2 = test_alloc(ctx, no);
    char what[256];
    const double h = 1e-3;

    /* ---- max pool ---- */
    ref_pool(&p, xd, 1, ref, arg);
    REQUIRE_OK(ctx, gf_maxpool_forward(ctx, &p, bx, by, barg));
    test_download(ctx, by, y, no);
    REQUIRE_OK(ctx, gf_buf_read(ctx, barg, 0, no * sizeof(int), darg));
    snprintf(what, sizeof what, "maxpool forward %s", tag);
    test_close(what, y, ref, no, 1e-30, 0);   /* exact */
    CHECK(memcmp(arg, darg, no * sizeof(int)) == 0, "%s: argmax differs from the reference", what);
    /* argmax only (recompute path) and output only (inference) give the same */
    REQUIRE_OK(ctx, gf_maxpool_forward(ctx, &p, bx, NULL, barg2));
    REQUIRE_OK(ctx, gf_buf_read(ctx, barg2, 0, no * sizeof(int), darg2));
    CHECK(memcmp(darg, darg2, no * sizeof(int)) == 0, "%s: argmax-only path differs", what);
    REQUIRE_OK(ctx, gf_maxpool_forward(ctx, &p, bx, bto, NULL));
    test_download(ctx, bto, y2, no);
    CHECK(memcmp(y, y2, no * 4) == 0, "%s: output-only path differs", what);

    /* tangent: reference gather and central differences of the reference */
    REQUIRE_OK(ctx, gf_maxpool_tangent(ctx, &p, barg, bt, bto));
    test_download(ctx, bto, tout, no);
    for (size_t o = 0; o < no; o++) ref[o] = t[(o / ((size_t)p.OH * p.OW)) * p.H * p.W + arg[o]];
    snprintf(what, sizeof what, "maxpool tangent %s", tag);
    test_close(what, tout, ref, no, 1e-30, 0);   /* exact */
    int *scratch_arg = malloc(no * sizeof(int));
    for (size_t i = 0; i < ni; i++) xd[i] = x[i] + h * t[i];
    ref_pool(&p, xd, 1, yp, scratch_arg);
    for (size_t i = 0; i < ni; i++) xd[i] = x[i] - h * t[i];
    ref_pool(&p, xd, 1, ym, scratch_arg);
    for (size_t i = 0; i < ni; i++) xd[i] = x[i];
    for (size_t o = 0; o < no; o++) ref[o] = (yp[o] - ym[o]) / (2 * h);
    snprintf(what, sizeof what, "maxpool tangent vs FD %s", tag);
    test_close(what, tout, ref, no, 1e-5, 1e-5);
    REQUIRE_OK(ctx, gf_maxpool_tangent(ctx, &p, barg, bt, bto));
    test_download(ctx, bto, y2, no);
    CHECK(memcmp(tout, y2, no * 4) == 0, "%s: tangent not bitwise reproducible", what);

    /* backward: reference scatter and adjoint */
    REQUIRE_OK(ctx, gf_maxpool_backward(ctx, &p, barg, bu, bgi));
    test_download(ctx, bgi, gi, ni);
    for (size_t i = 0; i < ni; i++) ref[i] = 0;
    for (size_t o = 0; o < no; o++) ref[(o / ((size_t)p.OH * p.OW)) * p.H * p.W + arg[o]] += u[o];
    snprintf(what, sizeof what, "maxpool backward %s", tag);
    test_close(what, gi, ref, ni, 1e-6, 1e-6);
    adjoint(what, tout, u, no, t, gi, ni);
    REQUIRE_OK(ctx, gf_maxpool_backward(ctx, &p, barg, bu, bgi));
    test_download(ctx, bgi, gi2, ni);
    CHECK(memcmp(gi, gi2, ni * 4) == 0, "%s: backward not bitwise reproducible", what);

    /* ---- average pool, both divisor rules ---- */
    for (int inc = 0; inc < 2; inc++) {
        p.count_include_pad = inc;
        const char *rule = inc ? "include_pad" : "exclude_pad";
        ref_pool(&p, xd, 0, ref, NULL);
        REQUIRE_OK(ctx, gf_avgpool_forward(ctx, &p, bx, by));
        test_download(ctx, by, y, no);
        snprintf(what, sizeof what, "avgpool forward %s %s", rule, tag);
        test_close(what, y, ref, no, 1e-6, 1e-5);
        REQUIRE_OK(ctx, gf_avgpool_tangent(ctx, &p, bt, bto));
        test_download(ctx, bto, tout, no);
        for (size_t i = 0; i < ni; i++) xd[i] = x[i] + h * t[i];
        ref_pool(&p, xd, 0, yp, NULL);
        for (size_t i = 0; i < ni; i++) xd[i] = x[i] - h * t[i];
        ref_pool(&p, xd, 0, ym, NULL);
        for (size_t i = 0; i < ni; i++) xd[i] = x[i];
        for (size_t o = 0; o < no; o++) ref[o] = (yp[o] - ym[o]) / (2 * h);
        snprintf(what, sizeof what, "avgpool tangent vs FD %s %s", rule, tag);
        test_close(what, tout, ref, no, 1e-5, 1e-5);
        REQUIRE_OK(ctx, gf_avgpool_backward(ctx, &p, bu, bgi));
        test_download(ctx, bgi, gi, ni);
        ref_avg_backward(&p, u, ref);
        snprintf(what, sizeof what, "avgpool backward %s %s", rule, tag);
        test_close(what, gi, ref, ni, 1e-6, 1e-5);
        adjoint(what, tout, u, no, t, gi, ni);
        REQUIRE_OK(ctx, gf_avgpool_forward(ctx, &p, bx, bto));
        test_download(ctx, bto, y2, no);
        CHECK(memcmp(y, y2, no * 4) == 0, "%s: forward not bitwise reproducible", what);
        REQUIRE_OK(ctx, gf_avgpool_backward(ctx, &p, bu, bgi));
        test_download(ctx, bgi, gi2, ni);
        CHECK(memcmp(gi, gi2, ni * 4) == 0, "%s: backward not bitwise reproducible", what);
    }

    gf_buf_release(&bx); gf_buf_release(&bt); gf_buf_release(&bu); gf_buf_release(&by);
    gf_buf_release(&bto); gf_buf_release(&bgi); gf_buf_release(&barg); gf_buf_release(&barg2);
    free(x); free(t); free(u); free(y); free(y2); free(tout); free(gi); free(gi2);
    free(xd); free(ref); free(yp); free(ym); free(arg); free(darg); free(darg2); free(scratch_arg);
}

static void run_gap(gf_ctx *ctx, size_t NC, size_t HW, uint64_t seed) {
    size_t ni = NC * HW;
    test_rng r;
    test_rng_seed(&r, seed);
    float *x = malloc(ni * 4), *t = malloc(ni * 4), *u = malloc(NC * 4), *y = malloc(NC * 4), *y2 = malloc(NC * 4);
    float *gi = malloc(ni * 4), *gi2 = malloc(ni * 4);
    double *ref = malloc(ni * 8);
    test_fill(&r, x, ni, -2, 2);
    test_fill(&r, t, ni, -1, 1);
    test_fill(&r, u, NC, -1, 1);
    cl_mem bx = test_upload(ctx, x, ni), bt = test_upload(ctx, t, ni), bu = test_upload(ctx, u, NC);
    cl_mem by = test_alloc(ctx, NC), bgi = test_alloc(ctx, ni);
    char what[128];
    for (size_t c = 0; c < NC; c++) {
        double s = 0;
        for (size_t j = 0; j < HW; j++) s += x[c * HW + j];
        ref[c] = s / (double)HW;
    }
    REQUIRE_OK(ctx, gf_gap_forward(ctx, NC, HW, bx, by));
    test_download(ctx, by, y, NC);
    snprintf(what, sizeof what, "gap forward NC=%zu HW=%zu", NC, HW);
    test_close(what, y, ref, NC, 1e-6, 1e-5);
    REQUIRE_OK(ctx, gf_gap_forward(ctx, NC, HW, bx, by));
    test_download(ctx, by, y2, NC);
    CHECK(memcmp(y, y2, NC * 4) == 0, "%s: not bitwise reproducible", what);
    /* tangent = forward on t; FD of the reference (linear) */
    REQUIRE_OK(ctx, gf_gap_tangent(ctx, NC, HW, bt, by));
    test_download(ctx, by, y, NC);
    const double h = 1e-3;
    for (size_t c = 0; c < NC; c++) {
        double sp = 0, sm = 0;
        for (size_t j = 0; j < HW; j++) {
            sp += x[c * HW + j] + h * t[c * HW + j];
            sm += x[c * HW + j] - h * t[c * HW + j];
        }
        ref[c] = (sp / (double)HW - sm / (double)HW) / (2 * h);
    }
    snprintf(what, sizeof what, "gap tangent vs FD NC=%zu HW=%zu", NC, HW);
    test_close(what, y, ref, NC, 1e-5, 1e-5);
    REQUIRE_OK(ctx, gf_gap_backward(ctx, NC, HW, bu, bgi));
    test_download(ctx, bgi, gi, ni);
    for (size_t i = 0; i < ni; i++) ref[i] = u[i / HW] / (double)HW;
    snprintf(what, sizeof what, "gap backward NC=%zu HW=%zu", NC, HW);
    test_close(what, gi, ref, ni, 1e-7, 1e-6);
    adjoint(what, y, u, NC, t, gi, ni);
    REQUIRE_OK(ctx, gf_gap_backward(ctx, NC, HW, bu, bgi));
    test_download(ctx, bgi, gi2, ni);
    CHECK(memcmp(gi, gi2, ni * 4) == 0, "%s: not bitwise reproducible", what);
    gf_buf_release(&bx); gf_buf_release(&bt); gf_buf_release(&bu); gf_buf_release(&by); gf_buf_release(&bgi);
    free(x); free(t); free(u); free(y); free(y2); free(gi); free(gi2); free(ref);
}

/* Ties (FD is invalid there, so only the convention is checked): a constant
 * map and a map of few distinct values; the first maximum in row-major window
 * order must win, and the gradient must go to that element only. */
static void ties(gf_ctx *ctx) {
    gf_pool2d p;
    REQUIRE_OK(ctx, gf_pool2d_init(ctx, &p, 2, 3, 7, 8, 3, 3, 2, 2, 1, 1));
    size_t ni = gf_pool2d_in_count(&p), no = gf_pool2d_out_count(&p);
    float *x = malloc(ni * 4), *g = malloc(no * 4), *gi = malloc(ni * 4), *y = malloc(no * 4);
    double *xd = malloc(ni * 8), *ref = malloc(ni * 8), *yr = malloc(no * 8);
    int *arg = malloc(no * sizeof(int)), *darg = malloc(no * sizeof(int));
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < ni; i++) x[i] = pass == 0 ? 1.5f : (float)((i * 7) % 3);
        for (size_t i = 0; i < ni; i++) xd[i] = x[i];
        for (size_t o = 0; o < no; o++) g[o] = (float)(o % 5) + 1;
        ref_pool(&p, xd, 1, yr, arg);
        cl_mem bx = test_upload(ctx, x, ni), by = test_alloc(ctx, no), ba = test_alloc(ctx, no);
        cl_mem bg = test_upload(ctx, g, no), bgi = test_alloc(ctx, ni);
        REQUIRE_OK(ctx, gf_maxpool_forward(ctx, &p, bx, by, ba));
        REQUIRE_OK(ctx, gf_maxpool_backward(ctx, &p, ba, bg, bgi));
        REQUIRE_OK(ctx, gf_buf_read(ctx, ba, 0, no * sizeof(int), darg));
        test_download(ctx, by, y, no);
        test_download(ctx, bgi, gi, ni);
        CHECK(memcmp(arg, darg, no * sizeof(int)) == 0, "ties pass %d: argmax is not the first maximum", pass);
        test_close(pass ? "ties forward (3 values)" : "ties forward (constant)", y, yr, no, 1e-30, 0);
        for (size_t i = 0; i < ni; i++) ref[i] = 0;
        for (size_t o = 0; o < no; o++) ref[(o / ((size_t)p.OH * p.OW)) * p.H * p.W + arg[o]] += g[o];
        test_close(pass ? "ties backward (3 values)" : "ties backward (constant)", gi, ref, ni, 1e-30, 0);
        gf_buf_release(&bx); gf_buf_release(&by); gf_buf_release(&ba); gf_buf_release(&bg); gf_buf_release(&bgi);
    }
    free(x); free(g); free(gi); free(y); free(xd); free(ref); free(yr); free(arg); free(darg);
}

static void geometry(gf_ctx *ctx) {
    gf_pool2d p;
    /* TF SAME, 64 -> 32 with 3x3 stride 2 (the mini-Xception's pool): 1 pixel after only. */
    REQUIRE_OK(ctx, gf_pool2d_init_tf(ctx, &p, 1, 1, 64, 64, 3, 3, 2, 2, 1));
    CHECK(p.OH == 32 && p.OW == 32 && p.pt == 0 && p.pb == 1 && p.pl == 0 && p.pr == 1 && !p.count_include_pad,
          "TF SAME 64/3/2: OH %d pads %d %d", p.OH, p.pt, p.pb);
    REQUIRE_OK(ctx, gf_pool2d_init_tf(ctx, &p, 1, 1, 9, 9, 3, 3, 2, 2, 1));
    CHECK(p.OH == 5 && p.pt == 1 && p.pb == 1, "TF SAME 9/3/2: OH %d pads %d %d", p.OH, p.pt, p.pb);
    REQUIRE_OK(ctx, gf_pool2d_init_tf(ctx, &p, 1, 1, 9, 9, 3, 3, 2, 2, 0));
    CHECK(p.OH == 4 && p.pt == 0 && p.pb == 0, "TF VALID 9/3/2: OH %d", p.OH);
    REQUIRE_OK(ctx, gf_pool2d_init(ctx, &p, 1, 1, 7, 7, 3, 3, 2, 2, 1, 1));
    CHECK(p.OH == 4 && p.count_include_pad, "PyTorch 7/3/2/1: OH %d", p.OH);
    CHECK(gf_pool2d_init(ctx, &p, 1, 1, 7, 7, 3, 3, 2, 2, 3, 3) == GF_ERR_USAGE, "pad >= kernel accepted");
    CHECK(gf_pool2d_init(ctx, &p, 1, 1, 2, 2, 3, 3, 1, 1, 0, 0) == GF_ERR_USAGE, "window larger than input accepted");
    CHECK(gf_pool2d_init_tf(ctx, &p, 1, 1, 2, 2, 3, 3, 1, 1, 0) == GF_ERR_USAGE, "TF VALID empty output accepted");
}

int main(int argc, char **argv) {
    gf_ctx *ctx = test_ctx();
    printf("device: %s\n", gf_ctx_device(ctx)->name);
    static const pool_case small[] = {
        {2, 3, 7, 6, 3, 3, 2, 2, 0, 0, 1},            /* TF SAME, asymmetric pad */
    };
    static const pool_case cases[] = {
        {1, 3, 7, 9, 3, 3, 2, 2, 1, 1, 0},            /* batch 1, odd, stride 2, pad 1 */
        {7, 5, 8, 8, 2, 2, 2, 2, 0, 0, 0},            /* batch 7, 2x2 s2 */
        {2, 6, 11, 10, 5, 5, 1, 1, 2, 2, 0},          /* 5x5 s1 p2, heavy overlap */
        {2, 5, 13, 12, 5, 5, 2, 2, 2, 1, 0},          /* 5x5 s2, different h/w pads */
        {7, 3, 5, 6, 3, 3, 1, 1, 1, 1, 0},            /* 3x3 s1 p1 */
        {1, 7, 9, 10, 2, 3, 1, 2, 1, 1, 0},           /* rectangular window and stride */
        {2, 3, 9, 8, 3, 3, 2, 2, 0, 0, 1},            /* TF SAME, 1 before 1 after / 0 before 1 after */
        {1, 5, 10, 7, 3, 3, 2, 2, 0, 0, 1},           /* TF SAME, asymmetric */
        {2, 3, 11, 11, 2, 2, 2, 2, 0, 0, 1},          /* TF SAME 2x2 s2 on odd size */
        {3, 2, 12, 9, 5, 5, 3, 3, 0, 0, 1},           /* TF SAME 5x5 s3 */
    };
    uint64_t seed = 100;
    if (argc > 1 && !strcmp(argv[1], "--small")) {
        run_pool(ctx, &small[0], seed);
        run_gap(ctx, 6, 49, seed + 1);   /* gap_forward_small */
        run_gap(ctx, 5, 81, seed + 2);   /* gap_forward: a work-group tree per plane */
    } else {
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_pool(ctx, &cases[i], seed++);
        const size_t gap[][2] = {{1, 1}, {7, 49}, {35, 300}, {7 * 13, 64}, {3, 4096 + 3}};
        for (size_t i = 0; i < sizeof gap / sizeof gap[0]; i++) run_gap(ctx, gap[i][0], gap[i][1], seed++);
        geometry(ctx);
        ties(ctx);
    }
    gf_ctx_free(ctx);
    return test_finish("test_pool");
}
