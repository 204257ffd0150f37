/* The op table (host/ops/optable.c, like ggml's test-backend-ops): every row, under every kernel-path variant
 * its op's kernels have (variants[]), checked by the table's driver gf_ot_run_row against the double
 * references of host/ops/ref_ops.c (optable.c says what it checks; `gradfeat selftest` runs the rows flagged
 * quick the same way). Here, too: each op's own checks (in place, argmax, offsets, ...) after each of its
 * rows and, once per op, checks that are not rows (references against their definitions, special values,
 * refusals): hooks[]. tests/README.md: adding a row or an op.
 * Usage: test_ops [--device D|all] [--variant NAME] [--filter OP[,OP...]] [--winograd-rows] [--small|--quick] [--list]
 *   --device: as the CLI's (default GRADFEAT_DEVICE, else the best device), or all: each device in turn;
 *   --variant: one kernel-path variant of the context (default: every variant each op's kernels have);
 *   --filter: only the ops named (exact op names, comma-separated);
 *   --winograd-rows: only the conv rows whose convolution takes the Winograd path in the variant's context (the
 *   oclgrind runs of the Winograd variants: the other rows run the variant's kernel style and GEMM alone, which
 *   that style's own oclgrind run checks);
 *   --small: the small rows (tests/cli_oclgrind_*.sh run them under oclgrind); --quick: `gradfeat selftest`'s
 *   rows, under the default variant; --list: the rows, no device; --verbose: a line for each row that passed too
 *   (by default only the rows that failed are named, with their FAIL lines, so that a CI log that keeps only the
 *   head and the tail of the suite's output still shows them; they are listed again at the end). */
#include "testutil.h"
#include "optable.h"
#include "ref_ops.h"
#include "ops_act.h"
#include "ops_bn.h"
#include "ops_ln.h"
#include "ops_loss.h"
#include "ops_merge.h"
#include "ops_optim.h"
#include "ops_pool.h"
#include "ops_util.h"

/* The table's checks: counted and, when they fail, printed (testutil's CHECK rule). */
static void sink_check(ot_sink *s, int pass, double ratio, double abs_err, const char *msg) {
    (void)s; (void)ratio; (void)abs_err;
    gf_test_checks++;
    if (pass) return;
    gf_test_failures++;
    fprintf(stderr, "FAIL %s\n", msg);
}
static void sink_error(ot_sink *s, gf_ctx *ctx, gf_status st, const char *what) {
    (void)s;
    fprintf(stderr, "FATAL %s -> %s: %s\n", what, gf_status_name(st), gf_ctx_last_error(ctx));
    exit(1);
}
static ot_sink test_sink = {sink_check, sink_error, NULL};
#define check_tol(...) ot_check_tol(&test_sink, __VA_ARGS__)
#define check_tol_d(...) ot_check_tol_d(&test_sink, __VA_ARGS__)

static const float BN_SENTINEL = 1234.5f;
static float *falloc(size_t n) { return malloc((n ? n : 1) * sizeof(float)); }
static double *dalloc(size_t n) { return calloc(n ? n : 1, sizeof(double)); }
static cl_mem nan_buffer(gf_ctx *ctx, size_t n) {
    cl_mem m = test_alloc(ctx, n);
    if (n) REQUIRE_OK(ctx, gf_fill(ctx, n, NAN, m));
    return m;
}
static float *download(gf_ctx *ctx, cl_mem m, size_t n) {
    float *a = falloc(n);
    test_download(ctx, m, a, n);
    return a;
}
static void uniform(test_rng *r, float *x, size_t n, double lo, double hi) { test_fill(r, x, n, lo, hi); }
static const row *rows;   /* the table (gf_ot_rows) */
static int n_rows;
static int full_run;   /* neither --small nor --quick: the checks too large for oclgrind run */

/* ---------------- kernel-path variants: context options that change which kernels an op runs ---------------- */

typedef struct variant {
    const char *name;
    const char *gemm, *bn_walk;   /* NULL: the context's choice */
    unsigned item_budget;         /* 0: the context's */
    int conv_variant;             /* im2col/col2im/layout kernels of the affine ops (GF_CONV_VARIANT_*) */
    int full, small;              /* in the default run; in the --small run */
    const char *conv_algo;        /* gf_ctx_options.conv_algo; NULL: auto */
    size_t max_wg;                /* gf_ctx_options.max_work_group; 0: the context's */
} variant;
static const variant variants[N_VARIANTS] = {
    [V_DEFAULT] = {"default", NULL, NULL, 0, 0, 1, 1},
    /* the affine ops: the context's GEMM (host BLAS on CPU devices sharing host memory) with each kernel
     * variant; CLBlast forced; a tiny item budget (150: a few rows per work item, so tile edges fall inside
     * every plane; --small: 16, where split reductions add partial sums in sum_partials) with plane kernels
     * (tiles) and element kernels (reductions split in slices) */
    [V_ELEMENT] = {"element", NULL, NULL, 0, GF_CONV_VARIANT_ELEMENT, 1, 1},
    [V_PLANE] = {"plane", NULL, NULL, 0, GF_CONV_VARIANT_PLANE, 1, 1},
    [V_CLBLAST] = {"clblast", "clblast", NULL, 0, GF_CONV_VARIANT_AUTO, 1, 0},
    [V_TILES] = {"tiles", NULL, NULL, 150, GF_CONV_VARIANT_PLANE, 1, 0},
    [V_SLICES] = {"slices", NULL, NULL, 150, GF_CONV_VARIANT_ELEMENT, 1, 0},
    [V_TILES16] = {"tiles16", NULL, NULL, 16, GF_CONV_VARIANT_PLANE, 0, 1},
    [V_SLICES16] = {"slices16", NULL, NULL, 16, GF_CONV_VARIANT_ELEMENT, 0, 1},
    /* the algorithm of 3x3 stride-1 convs (GRADFEAT_CONV_ALGO): direct forced, Winograd F(2x2, 3x3) forced with the
     * CPU-style transform kernels (rows of tiles) and the context's GEMM (host BLAS on PoCL), and Winograd with the
     * per-tile transform kernels and CLBlast's strided batched GEMM; the same two for F(4x4, 3x3) */
    [V_DIRECT] = {"direct", NULL, NULL, 0, GF_CONV_VARIANT_AUTO, 1, 1, "direct"},
    [V_WINOGRAD] = {"winograd", NULL, NULL, 0, GF_CONV_VARIANT_PLANE, 1, 1, "winograd"},
    [V_WINO_CLBLAST] = {"wino-clblast", "clblast", NULL, 0, GF_CONV_VARIANT_ELEMENT, 1, 1, "winograd"},
    /* the same two for F(4x4, 3x3) */
    [V_WINOGRAD4] = {"winograd4", NULL, NULL, 0, GF_CONV_VARIANT_PLANE, 1, 1, "winograd4"},
    [V_WINO4_CLBLAST] = {"wino4-clblast", "clblast", NULL, 0, GF_CONV_VARIANT_ELEMENT, 1, 1, "winograd4"},
    /* batch norm: both lane walks (CPU: blocked, GPU: strided), the blocked walk with a small item budget
     * (more lanes per channel than 16), and both walks in segments (two levels: work-groups capped at 32 lanes
     * with 4 values per lane, as on llvmpipe with a large channel; rows of more than 128 values per channel) */
    [V_BLOCKED] = {"blocked", NULL, "blocked", 0, 0, 1, 1},
    [V_STRIDED] = {"strided", NULL, "strided", 0, 0, 1, 1},
    [V_BLOCKED200] = {"blocked200", NULL, "blocked", 200, 0, 1, 1},
    [V_SEGMENTS] = {"segments", NULL, "blocked", 30, 0, 1, 1, NULL, 32},
    [V_SEGMENTS_STRIDED] = {"segments-strided", NULL, "strided", 30, 0, 1, 1, NULL, 32},
};
static const variant *current_variant = &variants[V_DEFAULT];
static void apply_variant(gf_ctx_options *o, const void *user) {
    const variant *v = user;
    if (v->gemm) o->gemm = v->gemm;
    if (v->bn_walk) o->bn_walk = v->bn_walk;
    if (v->item_budget) o->item_budget = v->item_budget;
    if (v->conv_algo) o->conv_algo = v->conv_algo;
    if (v->max_wg) o->max_work_group = v->max_wg;
    /* the context's kernel style follows the variant's (the pool ops pick theirs from the context) */
    if (v->conv_variant) o->conv_kernels = v->conv_variant == GF_CONV_VARIANT_PLANE ? "plane" : "element";
}
/* In place: z <- act(z), then the mask taken from the output (valid for the non-smooth kinds with slope >= 0),
 * tangent and backward in place on their inputs: the same bits as out of place. */
static void act_extra(gf_ctx *ctx, const row *rw, const tensors *T, const results *res, const char *name) {
    const gf_act a = ot_act_of(rw);
    if (gf_act_smooth(a.kind) || (a.kind == GF_ACT_LEAKY && a.slope < 0)) return;
    const size_t n = T->n_out;
    float *out = falloc(n);
    cl_mem bz = test_upload(ctx, T->x[0], n), bt = test_upload(ctx, res->v[0], n), bu = test_upload(ctx, res->u, n);
    REQUIRE_OK(ctx, gf_act_forward(ctx, a, n, bz, bz));
    REQUIRE_OK(ctx, gf_act_tangent(ctx, a, n, bz, bt, bt));
    REQUIRE_OK(ctx, gf_act_backward(ctx, a, n, bz, bu, bu));
    test_download(ctx, bt, out, n);
    CHECK(memcmp(res->jv, out, n * 4) == 0, "%s: in-place tangent with the output mask differs", name);
    test_download(ctx, bu, out, n);
    CHECK(memcmp(res->g[0], out, n * 4) == 0, "%s: in-place backward with the output mask differs", name);
    gf_buf_release(&bz); gf_buf_release(&bt); gf_buf_release(&bu);
    free(out);
}
/* ref_act / ref_act_d against formulas written another way (PyTorch's definitions: hardsigmoid =
 * relu6(x + 3) / 6, hardswish = x hardsigmoid(x), GELU = x (1 + erf(x / sqrt 2)) / 2, SiLU = x sigmoid(x))
 * and the derivative against a central difference of the reference, on a grid away from kinks. */
static void act_reference_crosscheck(void) {
    double worst = 0, worst_d = 0;
    for (int i = -800; i <= 800; i++) {
        double z = i / 100.0 + 0.00371;
        double s = 1 / (1 + exp(-z)), r6 = fmin(fmax(z + 3, 0), 6);
        double e[6] = {
            ref_act((gf_act){GF_ACT_SIGMOID, 0}, z) - s,
            ref_act((gf_act){GF_ACT_SILU, 0}, z) - z * s,
            (ref_act(GF_ACT_HSIGMOID_TORCH, z) - r6 / 6) * 1e-5,   /* slope is float(1/6): 5e-9 z */
            ref_act((gf_act){GF_ACT_HSWISH, 0}, z) - z * r6 / 6,
            ref_act((gf_act){GF_ACT_GELU, 0}, z) - 0.5 * z * (1 + erf(z / sqrt(2.0))),
            ref_act((gf_act){GF_ACT_GELU_TANH, 0}, z) - 0.5 * z * (1 + tanh(sqrt(2 / M_PI) * (z + 0.044715 * z * z * z)))};
        for (int k = 0; k < 6; k++) if (fabs(e[k]) > worst) worst = fabs(e[k]);
        for (int k = GF_ACT_SIGMOID; k < GF_ACT_COUNT; k++) {
            gf_act a = {(gf_act_kind)k, 0};
            if (k == GF_ACT_HSIGMOID) a = GF_ACT_HSIGMOID_TORCH;
            const double h = 1e-5;
            double fd = (ref_act(a, z + h) - ref_act(a, z - h)) / (2 * h);
            double d = fabs(fd - ref_act_d(a, z));
            if (d > worst_d) worst_d = d;
        }
    }
    CHECK(worst < 1e-12, "act references vs independent formulas: %.3g", worst);
    CHECK(worst_d < 1e-8, "act reference derivatives vs central differences: %.3g", worst_d);
}
/* Special values: NaN propagates through the forward; an infinite gradient behind a closed mask gives 0
 * (select, not multiply); exact kinks follow the documented convention (mask 1[z > 0], ReLU6 open at 6);
 * the smooth and hard kinds: NaN propagates (also through the clamps), +inf saturates, the hard kinks
 * follow PyTorch (hardswish' = -1/2 at -3 and 3/2 at 3; hardsigmoid' = 0 at +-3); names and refusals. */
static void act_once(gf_ctx *ctx) {
    act_reference_crosscheck();
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

    const float zs[5] = {NAN, INFINITY, -INFINITY, -3.0f, 3.0f};
    const float ones[5] = {1, 1, 1, 1, 1};
    float d[5];
    bz = test_upload(ctx, zs, 5); bg = test_upload(ctx, ones, 5); bo = test_alloc(ctx, 5);
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
/* ref_ln against the definition written directly, ref_ln_jvp against central differences of ref_ln; refusals. */
static void ln_once(gf_ctx *ctx) {
    const double x[5] = {1.0, -2.0, 0.5, 3.0, 0.25}, t[5] = {0.3, -1.0, 0.7, 0.2, -0.4}, h = 1e-6;
    double y[5], jt[5], xp[5], xm[5], yp[5], ym[5], mu = 0.55, v = 0;
    for (int c = 0; c < 5; c++) v += (x[c] - mu) * (x[c] - mu);
    v /= 5;
    ref_ln(x, 5, 1e-5, y);
    ref_ln_jvp(x, t, 5, 1e-5, jt);
    for (int c = 0; c < 5; c++) { xp[c] = x[c] + h * t[c]; xm[c] = x[c] - h * t[c]; }
    ref_ln(xp, 5, 1e-5, yp);
    ref_ln(xm, 5, 1e-5, ym);
    double worst = 0, worst_d = 0;
    for (int c = 0; c < 5; c++) {
        worst = fmax(worst, fabs(y[c] - (x[c] - mu) / sqrt(v + 1e-5)));
        worst_d = fmax(worst_d, fabs(jt[c] - (yp[c] - ym[c]) / (2 * h)));
    }
    CHECK(worst < 1e-12, "ref_ln vs the definition: %.3g", worst);
    CHECK(worst_d < 1e-8, "ref_ln_jvp vs central differences of ref_ln: %.3g", worst_d);
    cl_mem b = test_alloc(ctx, 4);
    CHECK(gf_ln_forward(ctx, 1, 100000, 1, 1e-6f, b, b) == GF_ERR_USAGE, "layernorm past the item budget accepted");
    CHECK(gf_ln_forward(ctx, 1, 4, 1, -1.0f, b, b) == GF_ERR_USAGE, "negative eps accepted");
    gf_buf_release(&b);
}
/* In place: y aliasing x gives the same bits. */
static void mul_extra(gf_ctx *ctx, const row *rw, const tensors *T, const results *res, const char *name) {
    cl_mem bxx = test_upload(ctx, T->x[0], T->n[0]);
    REQUIRE_OK(ctx, gf_mul_forward(ctx, ot_mul_planes(rw), ot_mul_hw(rw), rw->a[4], bxx, T->bx[1], bxx));
    float *got = download(ctx, bxx, T->n_out);
    CHECK(memcmp(got, res->y, T->n_out * 4) == 0, "%s: in place differs", name);
    free(got);
    gf_buf_release(&bxx);
}
/* The merge family's refusals. */
static void mul_once(gf_ctx *ctx) {
    cl_mem b = test_alloc(ctx, 16), b2 = test_alloc(ctx, 16);
    CHECK(gf_mul_tangent(ctx, 4, 4, 0, b, b, NULL, NULL, b) != GF_OK, "mul tangent with no moving input accepted");
    CHECK(gf_mul_forward(ctx, 0, 4, 0, b, b, b) == GF_ERR_USAGE, "mul of 0 planes accepted");
    CHECK(gf_concat_backward(ctx, 1, 4, 4, 3, 2, b, b, 0) == GF_ERR_USAGE, "concat slice past the end accepted");
    int C[2] = {2, 0};
    cl_mem in[2] = {b, b};
    CHECK(gf_concat_forward(ctx, 1, 4, 2, C, in, b) == GF_ERR_USAGE, "concat of a 0-channel input accepted");
    CHECK(gf_concat_forward(ctx, 1, 4, 0, C, in, b) == GF_ERR_USAGE, "concat of no inputs accepted");
    CHECK(gf_shuffle_forward(ctx, 1, 6, 2, 4, b, b2) == GF_ERR_USAGE, "shuffle of 6 channels in 4 groups accepted");
    CHECK(gf_shuffle_forward(ctx, 1, 4, 2, 0, b, b2) == GF_ERR_USAGE, "shuffle in 0 groups accepted");
    CHECK(gf_shuffle_forward(ctx, 1, 4, 2, 2, b, b) != GF_OK, "shuffle in place accepted");
    CHECK(gf_slice_forward(ctx, 1, 4, 4, 3, 2, b, b2) == GF_ERR_USAGE, "slice past the end accepted");
    CHECK(gf_slice_backward(ctx, 1, 4, 4, -1, 2, b, b2, 0) == GF_ERR_USAGE, "slice at a negative offset accepted");
    gf_buf_release(&b2);
    gf_buf_release(&b);
}
/* The backward undoes the forward: shuffle(x) then its inverse is x, bitwise. */
static void shuffle_extra(gf_ctx *ctx, const row *rw, const tensors *T, const results *res, const char *name) {
    cl_mem by = test_upload(ctx, res->y, T->n_out), bg = nan_buffer(ctx, T->n[0]);
    REQUIRE_OK(ctx, gf_shuffle_backward(ctx, rw->a[0], rw->a[1], (size_t)rw->a[2] * rw->a[3], rw->a[4], by, bg, 0));
    float *back = download(ctx, bg, T->n[0]);
    CHECK(memcmp(back, T->x[0], T->n[0] * 4) == 0, "%s: inverse(shuffle(x)) != x", name);
    free(back);
    gf_buf_release(&by); gf_buf_release(&bg);
}
/* The argmax equals the reference's (the first maximum in row-major window order); the argmax-only path
 * gives the same argmax and the output-only path (inference) the same output. */
static void maxpool_extra(gf_ctx *ctx, const row *rw, const tensors *T, const results *res, const char *name) {
    (void)rw;
    const pool_state *s = T->state;
    const size_t no = T->n_out;
    int *arg = malloc(no * sizeof *arg), *darg = malloc(no * sizeof *darg), *darg2 = malloc(no * sizeof *darg2);
    double *y = dalloc(no);
    ref_pool(&s->p, T->xd[0], 1, y, arg);
    REQUIRE_OK(ctx, gf_buf_read(ctx, s->arg, 0, no * sizeof(int), darg));   /* the driver's forward wrote it */
    CHECK(memcmp(arg, darg, no * sizeof(int)) == 0, "%s: argmax differs from the reference", name);
    REQUIRE_OK(ctx, gf_maxpool_forward(ctx, &s->p, T->bx[0], NULL, s->arg2));
    REQUIRE_OK(ctx, gf_buf_read(ctx, s->arg2, 0, no * sizeof(int), darg2));
    CHECK(memcmp(darg, darg2, no * sizeof(int)) == 0, "%s: argmax-only path differs", name);
    cl_mem by = nan_buffer(ctx, no);
    REQUIRE_OK(ctx, gf_maxpool_forward(ctx, &s->p, T->bx[0], by, NULL));
    float *y2 = download(ctx, by, no);
    CHECK(memcmp(res->y, y2, no * 4) == 0, "%s: output-only path differs", name);
    free(arg); free(darg); free(darg2); free(y); free(y2);
    gf_buf_release(&by);
}
/* Ties (FD is invalid there, so only the convention is checked): a constant map and a map of few distinct
 * values; the first maximum in row-major window order must win, and the gradient must go to that element
 * only. Geometry: PyTorch and TF SAME/VALID output sizes and pads, refusals. */
static void maxpool_once(gf_ctx *ctx) {
    gf_pool2d p;
    REQUIRE_OK(ctx, gf_pool2d_init(ctx, &p, 2, 3, 7, 8, 3, 3, 2, 2, 1, 1));
    size_t ni = gf_pool2d_in_count(&p), no = gf_pool2d_out_count(&p);
    float *x = falloc(ni), *g = falloc(no), *gi = falloc(ni), *y = falloc(no);
    double *xd = dalloc(ni), *ref = dalloc(ni), *yr = dalloc(no), *gd = dalloc(no);
    int *arg = malloc(no * sizeof(int)), *darg = malloc(no * sizeof(int));
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < ni; i++) x[i] = pass == 0 ? 1.5f : (float)((i * 7) % 3);
        for (size_t i = 0; i < ni; i++) xd[i] = x[i];
        for (size_t o = 0; o < no; o++) { g[o] = (float)(o % 5) + 1; gd[o] = g[o]; }
        ref_pool(&p, xd, 1, yr, arg);
        cl_mem bx = test_upload(ctx, x, ni), by = test_alloc(ctx, no), ba = test_alloc(ctx, no);
        cl_mem bg = test_upload(ctx, g, no), bgi = test_alloc(ctx, ni);
        REQUIRE_OK(ctx, gf_maxpool_forward(ctx, &p, bx, by, ba));
        REQUIRE_OK(ctx, gf_maxpool_backward(ctx, &p, ba, bg, bgi));
        REQUIRE_OK(ctx, gf_buf_read(ctx, ba, 0, no * sizeof(int), darg));
        test_download(ctx, by, y, no);
        test_download(ctx, bgi, gi, ni);
        CHECK(memcmp(arg, darg, no * sizeof(int)) == 0, "ties pass %d: argmax is not the first maximum", pass);
        check_tol("maxpool ties", pass ? "forward (3 values)" : "forward (constant)", y, yr, NULL, no, EXACT);
        ref_maxpool_backward(&p, arg, gd, ref);
        check_tol("maxpool ties", pass ? "backward (3 values)" : "backward (constant)", gi, ref, NULL, ni, EXACT);
        gf_buf_release(&bx); gf_buf_release(&by); gf_buf_release(&ba); gf_buf_release(&bg); gf_buf_release(&bgi);
    }
    free(x); free(g); free(gi); free(y); free(xd); free(ref); free(yr); free(gd); free(arg); free(darg);
    /* wide rows (OW 75) with ties and NaNs: values and argmax as the per-output rule says (row-major taps, the
     * first maximum kept, a NaN taken, as PyTorch), bit for bit; ref_pool has no NaN rule */
    REQUIRE_OK(ctx, gf_pool2d_init(ctx, &p, 2, 3, 5, 150, 3, 3, 2, 2, 1, 1));
    ni = gf_pool2d_in_count(&p); no = gf_pool2d_out_count(&p);
    x = falloc(ni); y = falloc(no);
    float *yw = falloc(no);
    arg = malloc(no * sizeof(int)); darg = malloc(no * sizeof(int));
    for (size_t i = 0; i < ni; i++) x[i] = i % 97 == 5 ? NAN : (float)((i * 7) % 4) - 1.5f;
    for (int nc = 0; nc < p.N * p.C; nc++)
        for (int oh = 0; oh < p.OH; oh++)
            for (int ow = 0; ow < p.OW; ow++) {
                float best = 0.0f;
                int bi = -1;
                for (int h = oh * p.sh - p.pt; h < oh * p.sh - p.pt + p.kh; h++)
                    for (int w = ow * p.sw - p.pl; w < ow * p.sw - p.pl + p.kw; w++) {
                        if (h < 0 || h >= p.H || w < 0 || w >= p.W) continue;
                        float v = x[(size_t)nc * p.H * p.W + (size_t)h * p.W + w];
                        if (bi < 0 || v > best || isnan(v)) { best = v; bi = h * p.W + w; }
                    }
                size_t o = ((size_t)nc * p.OH + oh) * p.OW + ow;
                yw[o] = best; arg[o] = bi;
            }
    cl_mem wx = test_upload(ctx, x, ni), wy = test_alloc(ctx, no), wa = test_alloc(ctx, no);
    REQUIRE_OK(ctx, gf_maxpool_forward(ctx, &p, wx, wy, wa));
    REQUIRE_OK(ctx, gf_buf_read(ctx, wa, 0, no * sizeof(int), darg));
    test_download(ctx, wy, y, no);
    CHECK(memcmp(arg, darg, no * sizeof(int)) == 0, "wide rows with NaNs: argmax differs from the rule");
    CHECK(memcmp(yw, y, no * sizeof(float)) == 0, "wide rows with NaNs: values differ from the rule");
    gf_buf_release(&wx); gf_buf_release(&wy); gf_buf_release(&wa);
    free(x); free(y); free(yw); free(arg); free(darg);
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
/* At an offset (out[1..2]: out[0] and out[3] untouched); accumulate adds loss and count; the gradient
 * written over the logits (in place); the top-1 count alone. */
static void xent_extra(gf_ctx *ctx, const row *rw, const tensors *T, const results *res, const char *name) {
    const int B = rw->a[0], K = rw->a[1];
    const size_t n = T->n[0];
    const loss_state *s = T->state;
    float out[4], init[4] = {11, 22, 33, 44};
    cl_mem bo = test_upload(ctx, init, 4), bg = test_alloc(ctx, n);
    REQUIRE_OK(ctx, gf_softmax_xent(ctx, B, K, T->bx[0], s->blabels, bg, bo, 1, 0));
    test_download(ctx, bo, out, 4);
    CHECK(out[1] == res->y[0] && out[2] == res->y[1], "%s: at offset 1: %g %g, at 0: %g %g", name, out[1], out[2],
          res->y[0], res->y[1]);
    CHECK(out[0] == 11 && out[3] == 44, "%s: wrote outside out[off..off+1]", name);
    REQUIRE_OK(ctx, gf_softmax_xent(ctx, B, K, T->bx[0], s->blabels, NULL, bo, 1, 1));
    test_download(ctx, bo, out, 4);
    CHECK(out[1] == res->y[0] + res->y[0] && out[2] == 2 * res->y[1], "%s: accumulate gives %g %g", name, out[1], out[2]);
    cl_mem bzz = test_upload(ctx, T->x[0], n);
    REQUIRE_OK(ctx, gf_softmax_xent(ctx, B, K, bzz, s->blabels, bzz, bo, 1, 0));
    float *g2 = download(ctx, bzz, n);
    CHECK(memcmp(res->g[0], g2, n * 4) == 0, "%s: in-place gradient differs", name);
    REQUIRE_OK(ctx, gf_top1_count(ctx, B, K, T->bx[0], s->blabels, bo, 3, 0));
    test_download(ctx, bo, out, 4);
    CHECK(out[3] == res->y[1], "%s: top1_count %g want %g", name, out[3], res->y[1]);
    free(g2);
    gf_buf_release(&bo); gf_buf_release(&bg); gf_buf_release(&bzz);
}
/* Huge logits: the naive forms overflow exp() in float (exp(89) = inf); the stable ones must give finite,
 * exact-looking answers. B = 0 is refused. */
static void loss_once(gf_ctx *ctx) {
    const float z[6] = {1000.0f, -1000.0f, 0.0f, 100.0f, 99.0f, -50.0f};
    const int y[2] = {1, 0};
    cl_mem bz = test_upload(ctx, z, 6), bg = test_alloc(ctx, 6), bo = test_alloc(ctx, 2), by;
    REQUIRE_OK(ctx, gf_buf_create_from(ctx, sizeof y, y, "labels", &by));
    float out[2], g[6];
    REQUIRE_OK(ctx, gf_softmax_xent(ctx, 2, 3, bz, by, bg, bo, 0, 0));
    test_download(ctx, bo, out, 2);
    test_download(ctx, bg, g, 6);
    double zd[6], rg[6], rc, td[6];
    for (int i = 0; i < 6; i++) zd[i] = z[i];
    double rl = ref_xent(2, 3, zd, y, rg, &rc);
    const tol loss = {1e-6, 1e-6, 0}, grad = {1e-7, 1e-5, 0};
    check_tol("xent huge logits", "loss", out, &rl, NULL, 1, loss);
    check_tol("xent huge logits", "gradient", g, rg, NULL, 6, grad);
    CHECK(out[1] == (float)rc && rc == 1, "xent huge logits: correct %g want %g", out[1], rc);
    const float t[6] = {0, 1, 1, 0, 1, 0};
    for (int i = 0; i < 6; i++) td[i] = t[i];
    cl_mem bt = test_upload(ctx, t, 6);
    REQUIRE_OK(ctx, gf_sigmoid_bce(ctx, 1, 6, bz, bt, bg, bo, 0, 0, 1));
    test_download(ctx, bo, out, 2);
    test_download(ctx, bg, g, 6);
    double rl2 = ref_bce(1, 6, zd, td, 1, rg, &rc);
    check_tol("bce huge logits", "loss", out, &rl2, NULL, 1, loss);
    check_tol("bce huge logits", "gradient", g, rg, NULL, 6, grad);
    CHECK(out[1] == (float)rc, "bce huge logits correct %g want %g", out[1], rc);
    CHECK(gf_softmax_xent(ctx, 0, 3, bz, by, bg, bo, 0, 0) == GF_ERR_USAGE, "B = 0 accepted");
    gf_buf_release(&bz); gf_buf_release(&bg); gf_buf_release(&bo); gf_buf_release(&by); gf_buf_release(&bt);
}
/* the gradient written over the logits (in place); accumulate adds loss and count */
static void bce_extra(gf_ctx *ctx, const row *rw, const tensors *T, const results *res, const char *name) {
    const size_t n = T->n[0];
    float out[2];
    cl_mem bzz = test_upload(ctx, T->x[0], n), bo = test_alloc(ctx, 2);
    REQUIRE_OK(ctx, gf_sigmoid_bce(ctx, rw->a[0], rw->a[1], bzz, T->bx[1], bzz, bo, 0, 0, rw->a[2]));
    float *g2 = download(ctx, bzz, n);
    CHECK(memcmp(res->g[0], g2, n * 4) == 0, "%s: in-place gradient differs", name);
    REQUIRE_OK(ctx, gf_sigmoid_bce(ctx, rw->a[0], rw->a[1], T->bx[0], T->bx[1], NULL, bo, 0, 1, rw->a[2]));
    test_download(ctx, bo, out, 2);
    CHECK(out[0] == res->y[0] + res->y[0] && out[1] == 2 * res->y[1], "%s: accumulate gives %g %g", name, out[0], out[1]);
    free(g2);
    gf_buf_release(&bzz); gf_buf_release(&bo);
}
static void conv_fixed(gf_ctx *ctx, const tensors *T, const char *name);
static void conv_post_same_bits(gf_ctx *ctx, const tensors *T, const char *name);
static void conv_keep_same_bits(gf_ctx *ctx, const tensors *T, const char *name);
/* The forward without bias; the tangent of the first linearized layer (Wt x + bt: no input tangent). */
static void conv_extra(gf_ctx *ctx, const row *rw, const tensors *T, const results *res, const char *name) {
    const size_t no = T->n_out;
    const tol t = {1e-5, 0, 1e-5};
    double *ref = dalloc(no), *S = dalloc(no), *ax = dalloc(T->n[0]), *aW = dalloc(T->n[1]);
    double *ab = dalloc(T->n[2]), *avW = dalloc(T->n[1]), *avb = dalloc(T->n[2]), *vW = dalloc(T->n[1]), *vb = dalloc(T->n[2]);
    for (size_t i = 0; i < T->n[0]; i++) ax[i] = fabs(T->xd[0][i]);
    for (size_t i = 0; i < T->n[1]; i++) { aW[i] = fabs(T->xd[1][i]); vW[i] = res->v[1][i]; avW[i] = fabs(vW[i]); }
    for (size_t i = 0; i < T->n[2]; i++) { ab[i] = fabs(T->xd[2][i]); vb[i] = res->v[2][i]; avb[i] = fabs(vb[i]); }
    cl_mem by = nan_buffer(ctx, no);
    REQUIRE_OK(ctx, ot_affine_fwd_b(ctx, rw, T, T->bx[0], T->bx[1], NULL, by));
    float *got = download(ctx, by, no);
    ref_conv(ot_desc_of(T), T->xd[0], T->xd[1], NULL, ref);
    ref_conv(ot_desc_of(T), ax, aW, NULL, S);
    check_tol(name, "forward (no bias)", got, ref, S, no, t);
    free(got);
    cl_mem bvW = test_upload(ctx, res->v[1], T->n[1]), bvb = test_upload(ctx, res->v[2], T->n[2]);
    const cl_mem in3[3] = {T->bx[0], T->bx[1], T->bx[2]}, tin[3] = {NULL, bvW, bvb};
    REQUIRE_OK(ctx, gf_fill(ctx, no, NAN, by));
    REQUIRE_OK(ctx, ot_conv_tan(ctx, rw, T, in3, tin, by));
    got = download(ctx, by, no);
    ref_conv(ot_desc_of(T), T->xd[0], vW, vb, ref);
    ref_conv(ot_desc_of(T), ax, avW, avb, S);
    check_tol(name, "tangent Wt x + bt", got, ref, S, no, t);
    free(got);
    gf_buf_release(&by); gf_buf_release(&bvW); gf_buf_release(&bvb);
    free(ref); free(S); free(ax); free(aW); free(ab); free(avW); free(avb); free(vW); free(vb);
    if (!strcmp(rw->op->name, "conv")) {
        conv_fixed(ctx, T, name);
        /* not under --small: the oclgrind runs are near their time limits, and the residual's indices are the
         * output's (a residual read out of bounds would be a store out of bounds there already) */
        if (full_run) conv_post_same_bits(ctx, T, name);
        if (full_run) conv_keep_same_bits(ctx, T, name);
    }
}
/* Weights declared fixed (desc.fixed, as θ̄'s in gradient/full): the forward, both tangent terms and the input
 * gradient give the bits they give without it, when the kept transforms are made (pass 0) and when reused
 * (pass 1); another W buffer (pass 2) makes them again; with no room for them under the device budget (pass 3)
 * they are made in the scratch, as without, and nothing is kept. */
static void conv_fixed(gf_ctx *ctx, const tensors *T, const char *name) {
    const size_t nx = T->n[0], nw = T->n[1], no = T->n_out;
    gf_conv_desc d = *ot_desc_of(T);
    gf_conv_fixed fx = {0}, none = {0};
    test_rng r;
    test_rng_seed(&r, 7);
    float *h = falloc(nx > nw ? (nx > no ? nx : no) : (nw > no ? nw : no));
    uniform(&r, h, nw, -1, 1);
    cl_mem Wt = test_upload(ctx, h, nw), W2 = test_upload(ctx, h, nw);   /* W2: another W, Wt's values */
    uniform(&r, h, nx, -1, 1);
    cl_mem t = test_upload(ctx, h, nx);
    uniform(&r, h, no, -1, 1);
    cl_mem g = test_upload(ctx, h, no);
    cl_mem y[2] = {test_alloc(ctx, no), test_alloc(ctx, no)}, gx[2] = {test_alloc(ctx, nx), test_alloc(ctx, nx)};
    for (int pass = 0; pass < 4; pass++) {
        cl_mem W = pass < 2 ? T->bx[1] : W2;
        float *got[3][2];
        uint64_t budget = ctx->mem_budget;
        for (int k = 0; k < 2; k++) {   /* k = 0: without, 1: with the kept transforms */
            d.fixed = k ? pass == 3 ? &none : &fx : NULL;
            if (k && pass == 3) ctx->mem_budget = atomic_load(&ctx->mem->now) + 1;   /* the scratch has grown (k = 0) */
            REQUIRE_OK(ctx, gf_conv2d_forward(ctx, &d, T->bx[0], W, T->bx[2], y[k]));
            got[0][k] = download(ctx, y[k], no);
            REQUIRE_OK(ctx, gf_conv2d_tangent(ctx, &d, T->bx[0], Wt, NULL, W, t, y[k]));
            got[1][k] = download(ctx, y[k], no);
            REQUIRE_OK(ctx, gf_conv2d_backward(ctx, &d, T->bx[0], W, g, gx[k], NULL, NULL, 0));
            got[2][k] = download(ctx, gx[k], nx);
            ctx->mem_budget = budget;
        }
        static const char *const what[3] = {"forward", "tangent", "input gradient"};
        for (int i = 0; i < 3; i++) {
            CHECK(memcmp(got[i][0], got[i][1], (i == 2 ? nx : no) * sizeof(float)) == 0,
                  "%s: %s with fixed weights (pass %d) differs from without", name, what[i], pass);
            free(got[i][0]); free(got[i][1]);
        }
    }
    CHECK(gf_conv_is_depthwise(&d) || !gf_conv_uses_winograd(ctx, &d) || (fx.W == W2 && fx.U[0] && fx.U[1]),
          "%s: a Winograd conv kept no transforms of the fixed weights", name);
    CHECK(!none.U[0] && !none.U[1], "%s: transforms kept beyond the device budget", name);
    gf_conv_fixed_release(&fx);
    gf_conv_fixed_release(&none);
    gf_buf_release(&Wt); gf_buf_release(&W2); gf_buf_release(&t); gf_buf_release(&g);
    for (int k = 0; k < 2; k++) { gf_buf_release(&y[k]); gf_buf_release(&gx[k]); }
    free(h);
}
/* The forward with a fused epilogue (gf_conv2d_forward_post, the trunk pass's conv -> add -> activation) gives the
 * bits of the conv, gf_add and gf_act_forward run one after the other: with and without a residual, ReLU and
 * ReLU6 (applied by the CPU-style output kernels of the direct and F(4x4) paths), leaky and sigmoid (run after
 * the conv), into an output first filled with NaN. The residual, of the conv's own scale and both signs, moves
 * values across 0 and 6. */
static void conv_post_same_bits(gf_ctx *ctx, const tensors *T, const char *name) {
    const size_t no = T->n_out;
    const gf_conv_desc *d = ot_desc_of(T);
    cl_mem yc = test_alloc(ctx, no), z = test_alloc(ctx, no), ref = test_alloc(ctx, no);
    REQUIRE_OK(ctx, gf_conv2d_forward(ctx, d, T->bx[0], T->bx[1], T->bx[2], yc));
    float *h = download(ctx, yc, no);
    double scale = 0;
    for (size_t i = 0; i < no; i++) scale = fmax(scale, fabs(h[i]));
    test_rng rg;
    test_rng_seed(&rg, 11);
    uniform(&rg, h, no, -2 * scale - 1, 2 * scale + 1);
    for (size_t i = 0; i < no; i += 7) h[i] += 6.0f;   /* some sums past ReLU6's top */
    cl_mem r = test_upload(ctx, h, no);
    free(h);
    static const struct { int res; int act; gf_act a; } cases[] = {
        {1, 1, {GF_ACT_RELU, 0}}, {0, 1, {GF_ACT_RELU, 0}}, {1, 1, {GF_ACT_RELU6, 0}}, {0, 1, {GF_ACT_RELU6, 0}},
        {1, 0, {GF_ACT_RELU, 0}}, {1, 1, {GF_ACT_LEAKY, 0.1f}}, {0, 1, {GF_ACT_SIGMOID, 0}}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        cl_mem rr = cases[c].res ? r : NULL;
        const gf_act *a = cases[c].act ? &cases[c].a : NULL;
        REQUIRE_OK(ctx, gf_buf_copy(ctx, yc, 0, ref, 0, no * sizeof(float)));
        if (rr) REQUIRE_OK(ctx, gf_add(ctx, no, rr, yc, ref));   /* the add node may have the conv second */
        if (a) REQUIRE_OK(ctx, gf_act_forward(ctx, *a, no, ref, ref));
        REQUIRE_OK(ctx, gf_fill(ctx, no, NAN, z));
        REQUIRE_OK(ctx, gf_conv2d_forward_post(ctx, d, T->bx[0], T->bx[1], T->bx[2], rr, a, z));
        float *want = download(ctx, ref, no), *got = download(ctx, z, no);
        size_t bad = 0;
        while (bad < no && !memcmp(&want[bad], &got[bad], sizeof(float))) bad++;
        CHECK(bad == no, "%s: forward with epilogue (residual %d, %s) differs from conv, add, activation at %zu: "
              "%.9g, want %.9g", name, cases[c].res, a ? gf_act_name(a->kind) : "no activation", bad,
              bad < no ? got[bad] : 0.0, bad < no ? want[bad] : 0.0);
        free(want);
        free(got);
    }
    CHECK(gf_conv2d_forward_post(ctx, d, T->bx[0], T->bx[1], T->bx[2], z, NULL, z) == GF_ERR_INTERNAL,
          "%s: a residual in the output buffer was accepted", name);
    gf_buf_release(&yc); gf_buf_release(&z); gf_buf_release(&ref); gf_buf_release(&r);
}

/* A kept im2col (desc.keep: made by the forward or the tangent's W̃ x term, read by a later call on the same x) gives
 * the bits without it: forward then backward, tangent then backward, forward then tangent. A conv that keeps
 * (gf_conv_keeps) says so in keep.n, one that does not leaves it alone; a keep whose n claims x while its buffer
 * holds zeros changes the weight gradient (it is read, not made again). */
static void conv_keep_same_bits(gf_ctx *ctx, const tensors *T, const char *name) {
    const size_t nx = T->n[0], nw = T->n[1], no = T->n_out;
    gf_conv_desc d = *ot_desc_of(T);
    test_rng r;
    test_rng_seed(&r, 13);
    float *h = falloc(nx > nw ? (nx > no ? nx : no) : (nw > no ? nw : no));
    uniform(&r, h, nw, -1, 1);
    cl_mem Wt = test_upload(ctx, h, nw);
    uniform(&r, h, nx, -1, 1);
    cl_mem t = test_upload(ctx, h, nx);
    uniform(&r, h, no, -1, 1);
    cl_mem g = test_upload(ctx, h, no);
    free(h);
    cl_mem y = test_alloc(ctx, no), gx = test_alloc(ctx, nx), gW = test_alloc(ctx, nw);
    float *want[4], *got;
    /* without a keep: forward, tangent, input and weight gradients */
    REQUIRE_OK(ctx, gf_conv2d_forward(ctx, &d, T->bx[0], T->bx[1], T->bx[2], y));
    want[0] = download(ctx, y, no);
    REQUIRE_OK(ctx, gf_conv2d_tangent(ctx, &d, T->bx[0], Wt, NULL, T->bx[1], t, y));
    want[1] = download(ctx, y, no);
    REQUIRE_OK(ctx, gf_conv2d_backward(ctx, &d, T->bx[0], T->bx[1], g, gx, gW, NULL, 0));
    want[2] = download(ctx, gx, nx);
    want[3] = download(ctx, gW, nw);
    gf_conv_keep k = {NULL, gf_conv_keep_bytes(&d), 0};
    k.buf = test_alloc(ctx, k.bytes / sizeof(float));
    d.keep = &k;
    const int keeps = gf_conv_keeps(ctx, &d);
    CHECK(keeps || gf_conv_is_depthwise(&d) || gf_conv_uses_winograd(ctx, &d) || d.max_workspace,
          "%s: a direct conv of one chunk keeps no im2col", name);
    static const char *const what[4] = {"forward", "tangent", "input gradient", "weight gradient"};
    /* first: 0 forward, 1 tangent; then 2 backward or 1 tangent */
    static const int runs[3][2] = {{0, 2}, {1, 2}, {0, 1}};
    for (int c = 0; c < 3; c++) {
        k.n = 0;
        for (int s = 0; s < 2; s++) {
            int op = runs[c][s];
            if (op == 0) REQUIRE_OK(ctx, gf_conv2d_forward(ctx, &d, T->bx[0], T->bx[1], T->bx[2], y));
            if (op == 1) REQUIRE_OK(ctx, gf_conv2d_tangent(ctx, &d, T->bx[0], Wt, NULL, T->bx[1], t, y));
            if (op == 2) REQUIRE_OK(ctx, gf_conv2d_backward(ctx, &d, T->bx[0], T->bx[1], g, gx, gW, NULL, 0));
            for (int o = op; o < (op == 2 ? 4 : op + 1); o++) {
                size_t cnt = o == 2 ? nx : o == 3 ? nw : no;
                got = download(ctx, o == 2 ? gx : o == 3 ? gW : y, cnt);
                CHECK(memcmp(got, want[o], cnt * sizeof(float)) == 0, "%s: %s with a kept im2col (%s then %s) "
                      "differs from without", name, what[o], what[runs[c][0]], what[runs[c][1]]);
                free(got);
            }
            CHECK(k.n == (keeps ? d.n : 0), "%s: keep.n %d after the %s (keeps: %d)", name, k.n, what[op], keeps);
        }
    }
    if (keeps) {   /* a keep that claims x but holds zeros: read, so the weight gradient changes */
        REQUIRE_OK(ctx, gf_fill(ctx, k.bytes / sizeof(float), 0.0f, k.buf));
        k.n = d.n;
        REQUIRE_OK(ctx, gf_conv2d_backward(ctx, &d, T->bx[0], T->bx[1], g, NULL, gW, NULL, 0));
        got = download(ctx, gW, nw);
        int all_zero = 1;
        for (size_t i = 0; i < nw; i++) all_zero &= got[i] == 0.0f;
        CHECK(all_zero, "%s: the weight gradient did not read the kept im2col", name);
        free(got);
    }
    for (int o = 0; o < 4; o++) free(want[o]);
    gf_buf_release(&k.buf); gf_buf_release(&Wt); gf_buf_release(&t); gf_buf_release(&g);
    gf_buf_release(&y); gf_buf_release(&gx); gf_buf_release(&gW);
}

/* BatchNorm folding: conv with the folded weights (host reference and device) vs conv then BN in double;
 * in place (b_out == b_in); a negative variance refused. */
static void conv_bn_fold(gf_ctx *ctx) {
    test_rng r;
    test_rng_seed(&r, 99);
    const tol t = {1e-5, 0, 1e-5};
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        gf_conv_desc d;
        REQUIRE_OK(ctx, gf_conv_desc_init(ctx, &d, 3, 5, 7, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1));
        const int co = d.c_out;
        const size_t nx = (size_t)d.n * d.c_in * d.h_in * d.w_in, nw = (size_t)co * d.c_in * 9, per = nw / co;
        const size_t ny = (size_t)d.n * co * d.h_out * d.w_out, P = (size_t)d.h_out * d.w_out;
        float *x = falloc(nx), *W = falloc(nw), b[16], bf[16], gamma[16], beta[16], mean[16], var[16];
        const float eps = 1e-5f;
        uniform(&r, x, nx, -1, 1);
        uniform(&r, W, nw, -1, 1);
        uniform(&r, b, co, -1, 1);
        for (int o = 0; o < co; o++) {
            gamma[o] = (float)test_uniform(&r, 0.5, 2.0) * (o % 2 ? -1.0f : 1.0f);
            beta[o] = (float)test_uniform(&r, -1, 1);
            mean[o] = (float)test_uniform(&r, -1, 1);
            var[o] = (float)test_uniform(&r, 0.1, 3.0);
        }
        double *xd = dalloc(nx), *Wd = dalloc(nw), bd[16], *y = dalloc(ny), *S = dalloc(ny), *yf = dalloc(ny);
        double *ax = dalloc(nx), *aW = dalloc(nw), ab[16], bfd[16];
        for (size_t i = 0; i < nx; i++) { xd[i] = x[i]; ax[i] = fabs(x[i]); }
        for (size_t i = 0; i < nw; i++) Wd[i] = W[i];
        for (int o = 0; o < co; o++) bd[o] = b[o];
        ref_conv(&d, xd, Wd, with_bias ? bd : NULL, y);
        for (size_t i = 0; i < ny; i++) {
            const int o = (int)((i / P) % co);
            y[i] = (y[i] - mean[o]) / sqrt((double)var[o] + eps) * gamma[o] + beta[o];
        }
        REQUIRE_OK(ctx, gf_bn_fold(ctx, W, with_bias ? b : NULL, bf, co, per, gamma, beta, mean, var, eps));
        for (size_t i = 0; i < nw; i++) { Wd[i] = W[i]; aW[i] = fabs(W[i]); }
        for (int o = 0; o < co; o++) { bfd[o] = bf[o]; ab[o] = fabs(bf[o]); }
        ref_conv(&d, xd, Wd, bfd, yf);
        ref_conv(&d, ax, aW, ab, S);
        double worst = 0;
        for (size_t i = 0; i < ny; i++) worst = fmax(worst, fabs(yf[i] - y[i]) / (1e-5 * (1 + S[i])));
        CHECK(worst <= 1.0, "bn fold (bias %d): folded conv vs conv+BN, err %.3g x tolerance", with_bias, worst);
        char name[64];
        snprintf(name, sizeof name, "bn fold (bias %d)", with_bias);
        cl_mem dx = test_upload(ctx, x, nx), dW = test_upload(ctx, W, nw), db = test_upload(ctx, bf, co);
        cl_mem dy = nan_buffer(ctx, ny);
        REQUIRE_OK(ctx, gf_conv2d_forward(ctx, &d, dx, dW, db, dy));
        float *got = download(ctx, dy, ny);
        check_tol(name, "device conv with folded weights vs conv+BN", got, y, S, ny, t);
        if (with_bias) {
            float b2[16], *W2 = falloc(nw);
            memcpy(b2, b, (size_t)co * sizeof *b2);
            uniform(&r, W2, nw, -1, 1);
            REQUIRE_OK(ctx, gf_bn_fold(ctx, W2, b2, b2, co, per, gamma, beta, mean, var, eps));
            CHECK(!memcmp(b2, bf, (size_t)co * sizeof *b2), "bn fold: in-place bias differs");
            free(W2);
        }
        free(x); free(W); free(xd); free(Wd); free(y); free(S); free(yf); free(ax); free(aW); free(got);
        gf_buf_release(&dx); gf_buf_release(&dW); gf_buf_release(&db); gf_buf_release(&dy);
    }
    float W[4] = {1, 2, 3, 4}, bo[1], g1[1] = {1}, be[1] = {0}, mu[1] = {0}, v[1] = {-1};
    CHECK(gf_bn_fold(ctx, W, NULL, bo, 1, 4, g1, be, mu, v, 1e-5f) == GF_ERR_INPUT, "bn fold: negative var accepted");
}
/* Winograd F(4x4, 3x3)'s two kernel styles compute the same terms in the same order: the CPU-style row kernels
 * (four tiles or four filters side by side in vectors) and the GPU-style tile kernels give the same bits for the
 * forward, both tangent terms, the input gradient (the rotated filters) and the weight gradient. Shapes with
 * channel counts that are and are not multiples of four, tile rows that end inside the image, pads 0 to 2. Once per
 * device, in the full run only (under oclgrind's --small runs it took the 900 s limit). */
static void conv_wino4_styles_same_bits(gf_ctx *ctx) {
    static const int shapes[][6] = {   /* n, c_in, c_out, h, w, pad */
        {2, 5, 7, 13, 17, 1}, {3, 8, 6, 32, 33, 1}, {2, 9, 4, 9, 7, 0}, {2, 3, 4, 5, 6, 2},
        {4, 16, 16, 7, 7, 1}, {2, 6, 5, 14, 14, 1}, {1, 64, 64, 56, 56, 1},
        /* rows of 16 to 31 columns, pads 0 to 2: the edge groups' shifted row loads (wino4_row16), every shift bit */
        {2, 4, 3, 20, 19, 2}, {2, 4, 3, 18, 21, 0}, {1, 3, 2, 9, 16, 1}, {1, 3, 2, 6, 18, 1}, {1, 3, 2, 5, 31, 1},
        {1, 3, 2, 7, 23, 2}, {1, 3, 2, 6, 30, 0}};
    static const char *what[4] = {"forward", "tangent", "input gradient", "weight gradient"};
    int count = (int)(sizeof shapes / sizeof shapes[0]);
    for (int s = 0; s < count; s++) {
        const int *sh = shapes[s];
        gf_conv_desc d;
        REQUIRE_OK(ctx, gf_conv_desc_simple(ctx, &d, sh[0], sh[1], sh[3], sh[4], sh[2], 3, 1, sh[5], 1, 1));
        d.algo = GF_CONV_ALGO_WINOGRAD4;
        size_t n[4] = {(size_t)sh[0] * sh[2] * d.h_out * d.w_out, 0, (size_t)sh[0] * sh[1] * sh[3] * sh[4],
                       (size_t)sh[2] * sh[1] * 9};
        n[1] = n[0];
        test_rng r;
        test_rng_seed(&r, 77 + s);
        float *h[6];
        size_t hn[6] = {n[2], n[3], (size_t)sh[2], n[0], n[2], n[3]};   /* x, W, b, g, t, Wt */
        cl_mem in[6];
        for (int k = 0; k < 6; k++) {
            h[k] = falloc(hn[k]);
            test_fill(&r, h[k], hn[k], -0.5, 0.5);
            in[k] = test_upload(ctx, h[k], hn[k]);
        }
        float *got[2][4];
        for (int v = 0; v < 2; v++) {
            d.variant = v ? GF_CONV_VARIANT_ELEMENT : GF_CONV_VARIANT_PLANE;
            cl_mem out[4];
            for (int k = 0; k < 4; k++) out[k] = test_alloc(ctx, n[k]);
            REQUIRE_OK(ctx, gf_conv2d_forward(ctx, &d, in[0], in[1], in[2], out[0]));
            REQUIRE_OK(ctx, gf_conv2d_tangent(ctx, &d, in[0], in[5], NULL, in[1], in[4], out[1]));
            REQUIRE_OK(ctx, gf_conv2d_backward(ctx, &d, in[0], in[1], in[3], out[2], out[3], NULL, 0));
            for (int k = 0; k < 4; k++) {
                got[v][k] = falloc(n[k]);
                test_download(ctx, out[k], got[v][k], n[k]);
                gf_buf_release(&out[k]);
            }
        }
        for (int k = 0; k < 4; k++) {
            CHECK(memcmp(got[0][k], got[1][k], n[k] * 4) == 0, "F(4x4) %s of %dx%dx%dx%d -> %d, pad %d: row and tile "
                  "kernels differ", what[k], sh[0], sh[1], sh[3], sh[4], sh[2], sh[5]);
            free(got[0][k]);
            free(got[1][k]);
        }
        for (int k = 0; k < 6; k++) {
            gf_buf_release(&in[k]);
            free(h[k]);
        }
    }
}

/* Descriptor validation, TF SAME pads and SAME output sizes, a too small output buffer; BN folding. */
static void conv_once(gf_ctx *ctx) {
    gf_conv_desc d;
    CHECK(gf_conv_desc_simple(ctx, &d, 1, 6, 5, 5, 4, 3, 1, 1, 1, 4) == GF_ERR_USAGE, "groups 4 with c_in 6 accepted");
    CHECK(strstr(gf_ctx_last_error(ctx), "groups") != NULL, "message does not name groups: %s", gf_ctx_last_error(ctx));
    CHECK(gf_conv_desc_simple(ctx, &d, 1, 3, 4, 4, 4, 7, 1, 0, 1, 1) == GF_ERR_USAGE, "kernel larger than input accepted");
    CHECK(gf_conv_desc_simple(ctx, &d, 1, 3, 4, 4, 4, 3, 0, 1, 1, 1) == GF_ERR_USAGE, "stride 0 accepted");
    CHECK(gf_conv_desc_simple(ctx, &d, 0, 3, 4, 4, 4, 3, 1, 1, 1, 1) == GF_ERR_USAGE, "batch 0 accepted");
    CHECK(gf_conv_desc_simple(ctx, &d, 1, 3, 4, 4, 4, 3, 1, -1, 1, 1) == GF_ERR_USAGE, "negative pad accepted");
    CHECK(gf_conv_desc_simple(NULL, &d, 1, 3, 4, 4, 4, 3, 1, -1, 1, 1) == GF_ERR_USAGE, "NULL ctx: negative pad accepted");
    REQUIRE_OK(ctx, gf_conv_desc_simple(ctx, &d, 1, 3, 4, 4, 4, 3, 1, 1, 1, 1));
    d.variant = 7;
    CHECK(gf_conv_desc_check(ctx, &d) == GF_ERR_USAGE, "unknown kernel variant accepted");
    REQUIRE_OK(ctx, gf_conv_desc_simple(ctx, &d, 2, 3, 9, 8, 4, 3, 2, 1, 2, 1));
    CHECK(d.h_out == 4 && d.w_out == 3, "dilated strided output %dx%d, want 4x3", d.h_out, d.w_out);
    /* TF SAME pads: total = max((ceil(in/s)-1)*s + (k-1)*d + 1 - in, 0), extra at the end */
    static const int same[][6] = {{10, 3, 2, 1, 0, 1}, {7, 3, 2, 1, 1, 1}, {8, 5, 2, 1, 1, 2}, {5, 1, 1, 1, 0, 0},
                                  {64, 3, 2, 1, 0, 1}, {9, 3, 1, 2, 2, 2}, {6, 4, 1, 1, 1, 2}, {5, 3, 4, 1, 1, 1}};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        int a, b;
        gf_conv_same_pads(same[i][0], same[i][1], same[i][2], same[i][3], &a, &b);
        CHECK(a == same[i][4] && b == same[i][5], "SAME pads in %d k %d s %d d %d: got (%d, %d) want (%d, %d)",
              same[i][0], same[i][1], same[i][2], same[i][3], a, b, same[i][4], same[i][5]);
    }
    /* the SAME rows of the table: output ceil(in / stride) */
    for (int i = 0; i < n_rows; i++) {
        const row *rw = &rows[i];
        if (strcmp(rw->op->name, "conv") || !rw->a[15]) continue;
        const int *a = rw->a;
        int pt, pb, pl, pr;
        gf_conv_same_pads(a[2], a[5], a[7], a[13], &pt, &pb);
        gf_conv_same_pads(a[3], a[6], a[8], a[13], &pl, &pr);
        gf_conv_desc e;
        REQUIRE_OK(ctx, gf_conv_desc_init(ctx, &e, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], pt, pb, pl, pr,
                                          a[13], a[13], a[14]));
        CHECK(e.h_out == (a[2] + a[7] - 1) / a[7] && e.w_out == (a[3] + a[8] - 1) / a[8],
              "conv %s: SAME output %dx%d, want %dx%d", rw->note, e.h_out, e.w_out, (a[2] + a[7] - 1) / a[7],
              (a[3] + a[8] - 1) / a[8]);
    }
    /* a too small output buffer is an error naming the tensor, not a crash */
    REQUIRE_OK(ctx, gf_conv_desc_simple(ctx, &d, 2, 3, 9, 8, 4, 3, 2, 1, 2, 1));
    cl_mem x = test_alloc(ctx, 2 * 3 * 9 * 8), W = test_alloc(ctx, 4 * 3 * 9), y = test_alloc(ctx, 10);
    CHECK(gf_conv2d_forward(ctx, &d, x, W, NULL, y) == GF_ERR_USAGE && strstr(gf_ctx_last_error(ctx), "y "),
          "small y accepted or message unclear: %s", gf_ctx_last_error(ctx));
    gf_buf_release(&x); gf_buf_release(&W); gf_buf_release(&y);
    /* the algorithm auto picks (GF_CONV_ALGO_*): Winograd F(4x4, 3x3) only for 3x3 stride-1 dilation-1 ungrouped
     * convs; of frozen weights (desc.fixed) with the CPU-style kernels (ctx->conv_plane) from GF_WINO_CPU_MIN_IN
     * inputs, GF_WINO_CPU_MIN_OUT outputs and GF_WINO_CPU_MIN_TILES 2x2 output tiles, with the GPU-style ones
     * from GF_WINO_MIN_CHANNELS channels and GF_WINO_MIN_TILES tiles; weights that move only with the CPU-style
     * ones, from GF_WINO_CPU_MOVING_MIN_CHANNELS channels and GF_WINO_CPU_MOVING_MIN_TILES4 4x4 output tiles.
     * want: {GPU-style, CPU-style} */
    static const struct { int n, c, hw, k, stride, dil, groups, fixed, algo, want[2]; } auto_cases[] = {
        {64, 512, 7, 3, 1, 1, 1, 1, 0, {4, 4}},    /* W1: 64 x 16 tiles, θ̄ frozen: F(4x4, 3x3) */
        {64, 512, 7, 3, 1, 1, 1, 0, 0, {0, 4}},    /* the same with weights that move (fine-tuning): 256 4x4 tiles */
        {32, 512, 7, 3, 1, 1, 1, 0, 0, {0, 0}},    /* moving, 128 4x4 tiles */
        {16, 256, 14, 3, 1, 1, 1, 0, 0, {0, 4}},   /* moving, 256 4x4 tiles */
        {15, 256, 14, 3, 1, 1, 1, 0, 0, {0, 0}},   /* moving, 240 4x4 tiles */
        {64, 128, 15, 3, 1, 1, 1, 0, 0, {0, 4}},   /* moving, 128 channels (4x4 tiles rounded up: 1024) */
        {64, 64, 56, 3, 1, 1, 1, 0, 0, {0, 0}},    /* moving, 64 channels */
        {32, 512, 7, 3, 1, 1, 1, 1, 0, {4, 4}},    /* 512 tiles */
        {16, 512, 7, 3, 1, 1, 1, 1, 0, {0, 4}},    /* 256 tiles */
        {64, 128, 28, 3, 1, 1, 1, 1, 0, {0, 4}},   /* 128 channels */
        {4, 64, 7, 3, 1, 1, 1, 1, 0, {0, 4}},      /* 64 channels, 64 tiles: the CPU-style least */
        {3, 64, 7, 3, 1, 1, 1, 1, 0, {0, 0}},      /* 48 tiles */
        {16, 32, 14, 3, 1, 1, 1, 1, 0, {0, 0}},    /* 32 channels */
        {64, 512, 7, 3, 2, 1, 1, 1, 0, {0, 0}},    /* stride 2 */
        {64, 512, 9, 3, 1, 2, 1, 1, 0, {0, 0}},    /* dilation 2 */
        {64, 512, 7, 3, 1, 1, 2, 1, 0, {0, 0}},    /* groups 2 */
        {64, 512, 7, 1, 1, 1, 1, 1, 0, {0, 0}},    /* 1x1 */
        {1, 4, 5, 3, 1, 1, 1, 0, GF_CONV_ALGO_WINOGRAD, {2, 2}},
        {1, 4, 5, 3, 1, 1, 1, 0, GF_CONV_ALGO_WINOGRAD4, {4, 4}},
        {64, 512, 7, 3, 1, 1, 1, 1, GF_CONV_ALGO_DIRECT, {0, 0}},
        {64, 512, 7, 3, 2, 1, 1, 0, GF_CONV_ALGO_WINOGRAD, {0, 0}},   /* forced, but not a Winograd shape */
        {64, 512, 7, 3, 1, 2, 1, 0, GF_CONV_ALGO_WINOGRAD4, {0, 0}},
    };
    gf_conv_fixed kept = {0};   /* never used: gf_conv_uses_winograd only looks whether there is one */
    for (size_t i = 0; i < sizeof auto_cases / sizeof auto_cases[0]; i++) {
        REQUIRE_OK(ctx, gf_conv_desc_simple(ctx, &d, auto_cases[i].n, auto_cases[i].c, auto_cases[i].hw,
                                            auto_cases[i].hw, auto_cases[i].c, auto_cases[i].k, auto_cases[i].stride,
                                            auto_cases[i].k / 2 * auto_cases[i].dil, auto_cases[i].dil,
                                            auto_cases[i].groups));
        d.algo = auto_cases[i].algo;
        d.fixed = auto_cases[i].fixed ? &kept : NULL;
        for (int style = 0; style < 2; style++) {   /* the descriptor's kernel variant picks the style */
            d.variant = style ? GF_CONV_VARIANT_PLANE : GF_CONV_VARIANT_ELEMENT;
            int want = auto_cases[i].want[style];
            const char *forced = d.algo ? NULL : current_variant->conv_algo;   /* the variant's GRADFEAT_CONV_ALGO */
            int shape = auto_cases[i].k == 3 && auto_cases[i].stride == 1 && auto_cases[i].dil == 1 &&
                        auto_cases[i].groups == 1;
            if (forced) want = !strcmp(forced, "winograd") ? 2 * shape : !strcmp(forced, "winograd4") ? 4 * shape : 0;
            CHECK(gf_conv_uses_winograd(ctx, &d) == want, "conv algorithm case %zu, %s-style kernels: Winograd tile "
                  "%d, want %d", i, style ? "CPU" : "GPU", gf_conv_uses_winograd(ctx, &d), want);
        }
    }
    d.variant = 0;
    d.fixed = NULL;   /* `kept` goes with this scope */
    if (full_run) conv_wino4_styles_same_bits(ctx);   /* not under oclgrind (--small): 900 s limits there */
    conv_bn_fold(ctx);
}
static cl_mem bn_guarded(gf_ctx *ctx, const float *v, size_t n) {
    float *h = falloc(n + BN_GUARD);
    for (size_t i = 0; i < n + BN_GUARD; i++) h[i] = i < n ? (v ? v[i] : 0) : BN_SENTINEL;
    cl_mem m = test_upload(ctx, h, n + BN_GUARD);
    free(h);
    return m;
}
static void bn_check_guard(gf_ctx *ctx, cl_mem m, size_t n, const char *name, const char *what) {
    float g[BN_GUARD];
    REQUIRE_OK(ctx, gf_buf_read(ctx, m, n * sizeof(float), sizeof g, g));
    int ok = 1;
    for (int i = 0; i < BN_GUARD; i++) ok &= g[i] == BN_SENTINEL;
    CHECK(ok, "%s: %s written past its %zu floats", name, what, n);
}
static int bn_same(gf_ctx *ctx, cl_mem m, const float *v, size_t n) {
    float *got = download(ctx, m, n);
    int same = memcmp(got, v, n * sizeof *got) == 0;
    free(got);
    return same;
}
static void bn_check_scaled(const char *name, const char *what, const float *got, const double *ref, const double *S, size_t n) {
    check_tol(name, what, got, ref, S, n, (tol){0, 0, 1e-5});
}
/* The statistics in m vs ref at the scale 1 + |ref|. */
static void bn_check_stat(gf_ctx *ctx, const char *name, const char *what, cl_mem m, const double *ref, int C) {
    float *o = download(ctx, m, (size_t)C);
    double *sc = dalloc((size_t)C);
    for (int k = 0; k < C; k++) sc[k] = 1 + fabs(ref[k]);
    bn_check_scaled(name, what, o, ref, sc, (size_t)C);
    free(o); free(sc);
}
/* Training: saved mean and invstd, the running statistics after 3 updates (PyTorch's: unbiased variance),
 * bitwise reproducible; y with the statistics equals y without; the backward's optional outputs (dx alone,
 * the parameter gradients without dx) bitwise equal, accumulate adds to dgamma/dbeta and overwrites dx;
 * the split path's kernels (bn_sums, bn_apply, bn_backward_dx) against double sums and the one-kernel
 * results; every output inside its guard band. */
static void bn_train_extra(gf_ctx *ctx, const row *rw, const tensors *T, const results *res, const char *name) {
    const int n = rw->a[0], C = rw->a[1], hw = rw->a[2];
    const size_t N = T->n_out;
    const double eps = rw->f[0], mom = rw->f[1], M = (double)n * hw;
    const bn_state *s = T->state;
    double *mean = dalloc((size_t)C), *var = dalloc((size_t)C), *ref = dalloc((size_t)C), *sc = dalloc((size_t)C);
    ref_bn_stats(n, C, hw, T->xd[0], mean, var);
    cl_mem brm = bn_guarded(ctx, s->rm, C), brv = bn_guarded(ctx, s->rv, C), by = bn_guarded(ctx, NULL, N);
    cl_mem bsm = bn_guarded(ctx, NULL, C), bsi = bn_guarded(ctx, NULL, C);
    for (int rep = 0; rep < 3; rep++)
        REQUIRE_OK(ctx, gf_bn_train_forward(ctx, n, C, hw, T->bx[0], T->bx[1], T->bx[2], eps, mom, brm, brv, by, bsm, bsi));
    CHECK(bn_same(ctx, by, res->y, N), "%s: y with running and saved statistics differs from y without", name);
    float *o = download(ctx, bsi, C);
    for (int k = 0; k < C; k++) { ref[k] = 1 / sqrt(var[k] + eps); sc[k] = ref[k]; }
    bn_check_scaled(name, "saved invstd", o, ref, sc, C);
    free(o);
    bn_check_stat(ctx, name, "saved mean", bsm, mean, C);
    double *rv3 = dalloc((size_t)C);
    for (int k = 0; k < C; k++) {
        ref[k] = s->rm[k]; rv3[k] = s->rv[k];
        for (int rep = 0; rep < 3; rep++) {
            ref[k] = (1 - mom) * ref[k] + mom * mean[k];
            rv3[k] = (1 - mom) * rv3[k] + mom * var[k] * M / (M - 1);   /* unbiased */
        }
    }
    bn_check_stat(ctx, name, "running mean after 3 updates", brm, ref, C);
    bn_check_stat(ctx, name, "running var after 3 updates (unbiased)", brv, rv3, C);
    {   /* a fresh run: the same bits */
        float *rm1 = download(ctx, brm, C), *rv1 = download(ctx, brv, C), *m1 = download(ctx, bsm, C), *i1 = download(ctx, bsi, C);
        cl_mem rm2 = test_upload(ctx, s->rm, C), rv2 = test_upload(ctx, s->rv, C), y2 = test_alloc(ctx, N);
        cl_mem m2 = test_alloc(ctx, C), i2 = test_alloc(ctx, C);
        for (int rep = 0; rep < 3; rep++)
            REQUIRE_OK(ctx, gf_bn_train_forward(ctx, n, C, hw, T->bx[0], T->bx[1], T->bx[2], eps, mom, rm2, rv2, y2, m2, i2));
        CHECK(bn_same(ctx, m2, m1, C) && bn_same(ctx, i2, i1, C), "%s: saved statistics not bitwise reproducible", name);
        CHECK(bn_same(ctx, rm2, rm1, C) && bn_same(ctx, rv2, rv1, C), "%s: running stats not bitwise reproducible", name);
        free(rm1); free(rv1); free(m1); free(i1);
        gf_buf_release(&rm2); gf_buf_release(&rv2); gf_buf_release(&y2); gf_buf_release(&m2); gf_buf_release(&i2);
    }
    /* backward into guarded buffers; its optional outputs; accumulate */
    cl_mem bu = test_upload(ctx, res->u, N), bdx = bn_guarded(ctx, NULL, N), bdg = bn_guarded(ctx, NULL, C);
    cl_mem bdb = bn_guarded(ctx, NULL, C);
    REQUIRE_OK(ctx, gf_bn_train_backward(ctx, n, C, hw, T->bx[0], bu, T->bx[1], bsm, bsi, bdx, bdg, bdb, 0));
    CHECK(bn_same(ctx, bdx, res->g[0], N) && bn_same(ctx, bdg, res->g[1], C) && bn_same(ctx, bdb, res->g[2], C),
          "%s: backward with the forward's saved statistics differs", name);
    cl_mem dx2 = test_alloc(ctx, N), dg2 = test_alloc(ctx, C), db2 = test_alloc(ctx, C);
    REQUIRE_OK(ctx, gf_bn_train_backward(ctx, n, C, hw, T->bx[0], bu, T->bx[1], bsm, bsi, dx2, NULL, NULL, 1));
    CHECK(bn_same(ctx, dx2, res->g[0], N), "%s: dx alone differs from dx with the parameter gradients", name);
    REQUIRE_OK(ctx, gf_bn_train_backward(ctx, n, C, hw, T->bx[0], bu, T->bx[1], bsm, bsi, NULL, dg2, db2, 0));
    CHECK(bn_same(ctx, dg2, res->g[1], C) && bn_same(ctx, db2, res->g[2], C), "%s: parameter gradients without dx differ", name);
    REQUIRE_OK(ctx, gf_buf_write(ctx, dx2, 0, N * sizeof(float), T->x[0]));
    REQUIRE_OK(ctx, gf_bn_train_backward(ctx, n, C, hw, T->bx[0], bu, T->bx[1], bsm, bsi, dx2, dg2, db2, 1));
    {
        double *ud = dalloc(N), *gr[3], *sg[3];
        for (size_t i = 0; i < N; i++) ud[i] = res->u[i];
        for (int k = 0; k < 3; k++) { gr[k] = dalloc(T->n[k]); sg[k] = dalloc(T->n[k]); }
        ot_bn_ref_bwd_all(rw, T, (const double *const *)T->xd, ud, gr, sg);
        for (int k = 1; k < 3; k++)
            for (int c = 0; c < C; c++) { gr[k][c] *= 2; sg[k][c] *= 2; }
        float *a = download(ctx, dg2, C), *b = download(ctx, db2, C);
        bn_check_scaled(name, "accumulated dgamma", a, gr[1], sg[1], C);
        bn_check_scaled(name, "accumulated dbeta", b, gr[2], sg[2], C);
        CHECK(bn_same(ctx, dx2, res->g[0], N), "%s: dx with accumulate = 1 is not overwritten", name);
        free(a); free(b); free(ud);
        for (int k = 0; k < 3; k++) { free(gr[k]); free(sg[k]); }
    }
    {   /* the split path of several processes (host/graph/block.c, gf_block_set_bn_sync): the partial sums
         * around each channel's first value (written out too) and around the saved mean against double sums;
         * y from the mean as the float pair saved mean + lo (bn_apply) against the double reference (the
         * offset rows: no precision lost to the offset); dx from the backward's own dbeta/dgamma sums with
         * lo = 0 (bn_backward_dx) against the one-kernel dx */
        float *m = download(ctx, bsm, C), *lo = falloc((size_t)C);
        double *r2 = dalloc(3 * (size_t)C), *s2 = dalloc(3 * (size_t)C);
        cl_mem bz = test_alloc(ctx, C), bl = test_alloc(ctx, C), bs = bn_guarded(ctx, NULL, 3 * (size_t)C);
        cl_mem y3 = bn_guarded(ctx, NULL, N);
        REQUIRE_OK(ctx, gf_buf_zero(ctx, bz, 0, (size_t)C * sizeof(float)));
        for (int pass = 0; pass < 2; pass++) {
            REQUIRE_OK(ctx, gf_bn_sums(ctx, n, C, hw, T->bx[0], pass ? bsm : NULL, bs));
            for (int c = 0; c < C; c++) {
                double sh = pass ? m[c] : T->x[0][(size_t)c * hw], a = 0, q = 0, sa = 0;
                for (int i = 0; i < n; i++)
                    for (int j = 0; j < hw; j++) {
                        double d = T->xd[0][((size_t)i * C + c) * hw + j] - sh;
                        a += d; q += d * d; sa += fabs(d);
                    }
                r2[c] = a; r2[C + c] = q; r2[2 * C + c] = sh;
                s2[c] = 1 + sa; s2[C + c] = 1 + q; s2[2 * C + c] = 1 + fabs(sh);
            }
            float *o2 = download(ctx, bs, 3 * (size_t)C);
            bn_check_scaled(name, pass ? "partial sums around the mean (split path)" : "partial sums and shifts (split path)",
                            o2, r2, s2, (pass ? 2 : 3) * (size_t)C);
            free(o2);
        }
        for (int c = 0; c < C; c++) lo[c] = (float)(mean[c] - (double)m[c]);
        REQUIRE_OK(ctx, gf_buf_write(ctx, bl, 0, (size_t)C * sizeof(float), lo));
        REQUIRE_OK(ctx, gf_bn_apply(ctx, n, C, hw, T->bx[0], T->bx[1], T->bx[2], bsm, bl, bsi, y3));
        double *yr = dalloc(N), *ys = dalloc(N);
        for (size_t i = 0; i < N; i++) {
            int c = (int)((i / hw) % C);
            yr[i] = (T->xd[0][i] - mean[c]) / sqrt(var[c] + eps) * T->x[1][c] + T->x[2][c];
            ys[i] = 1 + fabs(yr[i]);
        }
        float *o3 = download(ctx, y3, N);
        bn_check_scaled(name, "y from the statistics as hi + lo (split path)", o3, yr, ys, N);
        free(o3);
        float *dgs = download(ctx, bdg, C), *dbs = download(ctx, bdb, C), *sums = falloc(2 * (size_t)C);
        for (int c = 0; c < C; c++) { sums[c] = dbs[c]; sums[C + c] = dgs[c]; }
        REQUIRE_OK(ctx, gf_buf_write(ctx, bs, 0, 2 * (size_t)C * sizeof(float), sums));
        REQUIRE_OK(ctx, gf_bn_backward_dx(ctx, n, C, hw, T->bx[0], bu, T->bx[1], bsm, bz, bsi, bs, M, y3));
        for (size_t i = 0; i < N; i++) { yr[i] = res->g[0][i]; ys[i] = 1 + fabs(res->g[0][i]); }
        o3 = download(ctx, y3, N);
        bn_check_scaled(name, "dx from the summed dbeta/dgamma (split path)", o3, yr, ys, N);
        bn_check_guard(ctx, bs, 3 * (size_t)C, name, "partial sums");
        bn_check_guard(ctx, y3, N, name, "split path y / dx");
        free(o3); free(dgs); free(dbs); free(sums); free(m); free(lo); free(r2); free(s2); free(yr); free(ys);
        gf_buf_release(&bz); gf_buf_release(&bl); gf_buf_release(&bs); gf_buf_release(&y3);
    }
    bn_check_guard(ctx, by, N, name, "y");
    bn_check_guard(ctx, bsm, C, name, "saved mean");
    bn_check_guard(ctx, bsi, C, name, "saved invstd");
    bn_check_guard(ctx, brm, C, name, "running mean");
    bn_check_guard(ctx, brv, C, name, "running var");
    bn_check_guard(ctx, bdx, N, name, "dx");
    bn_check_guard(ctx, bdg, C, name, "dgamma");
    bn_check_guard(ctx, bdb, C, name, "dbeta");
    cl_mem *bufs[] = {&brm, &brv, &by, &bsm, &bsi, &bu, &bdx, &bdg, &bdb, &dx2, &dg2, &db2};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) gf_buf_release(bufs[i]);
    free(mean); free(var); free(ref); free(sc); free(rv3);
}
/* Eval: in place; dx alone bitwise; every output inside its guard band. */
static void bn_eval_extra(gf_ctx *ctx, const row *rw, const tensors *T, const results *res, const char *name) {
    const int n = rw->a[0], C = rw->a[1], hw = rw->a[2];
    const size_t N = T->n_out;
    const bn_state *s = T->state;
    cl_mem inplace = test_upload(ctx, T->x[0], N);
    REQUIRE_OK(ctx, gf_bn_eval_forward(ctx, n, C, hw, inplace, T->bx[1], T->bx[2], rw->f[0], s->brm, s->brv, inplace));
    CHECK(bn_same(ctx, inplace, res->y, N), "%s: in-place eval forward differs", name);
    cl_mem by = bn_guarded(ctx, NULL, N), bu = test_upload(ctx, res->u, N), bdx = bn_guarded(ctx, NULL, N);
    cl_mem bdg = bn_guarded(ctx, NULL, C), bdb = bn_guarded(ctx, NULL, C);
    REQUIRE_OK(ctx, gf_bn_eval_forward(ctx, n, C, hw, T->bx[0], T->bx[1], T->bx[2], rw->f[0], s->brm, s->brv, by));
    REQUIRE_OK(ctx, gf_bn_eval_backward(ctx, n, C, hw, T->bx[0], bu, T->bx[1], rw->f[0], s->brm, s->brv, bdx, bdg, bdb, 0));
    CHECK(bn_same(ctx, by, res->y, N) && bn_same(ctx, bdx, res->g[0], N) && bn_same(ctx, bdg, res->g[1], C) &&
          bn_same(ctx, bdb, res->g[2], C), "%s: guarded outputs differ", name);
    REQUIRE_OK(ctx, gf_buf_zero(ctx, inplace, 0, N * sizeof(float)));
    REQUIRE_OK(ctx, gf_bn_eval_backward(ctx, n, C, hw, T->bx[0], bu, T->bx[1], rw->f[0], s->brm, s->brv, inplace, NULL,
                                        NULL, 0));
    CHECK(bn_same(ctx, inplace, res->g[0], N), "%s: eval dx alone differs", name);
    bn_check_guard(ctx, by, N, name, "eval y");
    bn_check_guard(ctx, bdx, N, name, "eval dx");
    bn_check_guard(ctx, bdg, C, name, "eval dgamma");
    bn_check_guard(ctx, bdb, C, name, "eval dbeta");
    gf_buf_release(&inplace); gf_buf_release(&by); gf_buf_release(&bu); gf_buf_release(&bdx); gf_buf_release(&bdg);
    gf_buf_release(&bdb);
}
/* A channel of 1,179,648 values (batch 8 at 384x384) against the double reference, once per context: on a
 * device with 32-lane work-groups (llvmpipe) one group per channel walked 36,864 values a lane, and llvmpipe
 * silently ends a work item's loops after 65,535 iterations: before the two-level path its training forward
 * and backward were wrong there. Training forward (y, saved mean and invstd), training and eval backward. */
static void bn_large_channel(gf_ctx *ctx) {
    const int n = 8, C = 1, hw = 384 * 384;
    const size_t N = (size_t)n * hw;
    const double eps = 1e-5;
    test_rng r;
    test_rng_seed(&r, 21);
    float *h = falloc(N), g1 = 1.25f, b1 = -0.5f;
    double *x = dalloc(N), *dy = dalloc(N), *y = dalloc(N), *dx = dalloc(N), *sdx = dalloc(N), *sc = dalloc(N);
    double mean, var, g = g1, b = b1, dg, db, sdg, sdb;
    uniform(&r, h, N, 2, 5);
    for (size_t i = 0; i < N; i++) x[i] = h[i];
    cl_mem bx = test_upload(ctx, h, N), bg = test_upload(ctx, &g1, 1), bb = test_upload(ctx, &b1, 1);
    uniform(&r, h, N, -1, 1);
    for (size_t i = 0; i < N; i++) dy[i] = h[i];
    cl_mem bdy = test_upload(ctx, h, N), by = test_alloc(ctx, N), bdx = test_alloc(ctx, N);
    cl_mem bsm = test_alloc(ctx, 1), bsi = test_alloc(ctx, 1), bdg = test_alloc(ctx, 1), bdb = test_alloc(ctx, 1);
    ref_bn_stats(n, C, hw, x, &mean, &var);
    ref_bn_affine(n, C, hw, x, &g, &b, &mean, &var, eps, y);
    REQUIRE_OK(ctx, gf_bn_train_forward(ctx, n, C, hw, bx, bg, bb, (float)eps, 0.1f, NULL, NULL, by, bsm, bsi));
    float *got = download(ctx, by, N);
    for (size_t i = 0; i < N; i++) sc[i] = 1 + fabs(y[i]);
    bn_check_scaled("bn large channel", "training forward y", got, y, sc, N);
    free(got);
    bn_check_stat(ctx, "bn large channel", "saved mean", bsm, &mean, 1);
    double invstd = 1 / sqrt(var + eps);
    got = download(ctx, bsi, 1);
    bn_check_scaled("bn large channel", "saved invstd", got, &invstd, &invstd, 1);
    free(got);
    for (int train = 1; train >= 0; train--) {
        const char *what = train ? "training backward" : "eval backward";
        ref_bn_backward(n, C, hw, x, dy, &g, &mean, &var, eps, train, dx, &dg, &db, sdx, &sdg, &sdb);
        if (train) {
            REQUIRE_OK(ctx, gf_bn_train_backward(ctx, n, C, hw, bx, bdy, bg, bsm, bsi, bdx, bdg, bdb, 0));
        } else {
            float fv = (float)var, fm = (float)mean;
            cl_mem brm = test_upload(ctx, &fm, 1), brv = test_upload(ctx, &fv, 1);
            REQUIRE_OK(ctx, gf_bn_eval_backward(ctx, n, C, hw, bx, bdy, bg, (float)eps, brm, brv, bdx, bdg, bdb, 0));
            gf_buf_release(&brm); gf_buf_release(&brv);
        }
        char w[64];
        got = download(ctx, bdx, N);
        snprintf(w, sizeof w, "%s dx", what);
        bn_check_scaled("bn large channel", w, got, dx, sdx, N);
        free(got);
        got = download(ctx, bdg, 1);
        snprintf(w, sizeof w, "%s dgamma", what);
        bn_check_scaled("bn large channel", w, got, &dg, &sdg, 1);
        free(got);
        got = download(ctx, bdb, 1);
        snprintf(w, sizeof w, "%s dbeta", what);
        bn_check_scaled("bn large channel", w, got, &db, &sdb, 1);
        free(got);
    }
    cl_mem *bufs[] = {&bx, &bg, &bb, &bdy, &by, &bdx, &bsm, &bsi, &bdg, &bdb};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) gf_buf_release(bufs[i]);
    free(h); free(x); free(dy); free(y); free(dx); free(sdx); free(sc);
}
/* Bad arguments are refused with GF_ERR_USAGE before anything is enqueued; a large channel (above; not in
 * the --small runs that oclgrind simulates). */
static void bn_once(gf_ctx *ctx) {
    if (full_run) bn_large_channel(ctx);
    float v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    cl_mem b = test_upload(ctx, v, 8), o = test_alloc(ctx, 8);
    CHECK(gf_bn_train_forward(ctx, 1, 2, 1, b, b, b, 1e-5f, 0.1f, NULL, NULL, o, NULL, NULL) == GF_ERR_USAGE,
          "training with one value per channel accepted");
    CHECK(strstr(gf_ctx_last_error(ctx), "more than one value") != NULL, "message: %s", gf_ctx_last_error(ctx));
    CHECK(gf_bn_train_forward(ctx, 2, 2, 1, b, b, b, 0.0f, 0.1f, NULL, NULL, o, NULL, NULL) == GF_ERR_USAGE,
          "eps 0 accepted");
    CHECK(gf_bn_train_forward(ctx, 2, 2, 1, b, b, b, 1e-5f, 1.5f, NULL, NULL, o, NULL, NULL) == GF_ERR_USAGE,
          "momentum 1.5 accepted");
    CHECK(gf_bn_train_forward(ctx, 2, 2, 1, b, b, b, 1e-5f, 0.1f, b, NULL, o, NULL, NULL) == GF_ERR_USAGE,
          "running mean without running var accepted");
    CHECK(gf_bn_train_backward(ctx, 2, 2, 1, b, b, b, b, b, o, o, NULL, 0) == GF_ERR_USAGE,
          "dgamma without dbeta accepted");
    CHECK(gf_bn_eval_forward(ctx, 0, 2, 1, b, b, b, 1e-5f, b, b, o) == GF_ERR_USAGE, "n = 0 accepted");
    gf_buf_release(&b); gf_buf_release(&o);
}
/* Two copies step by step: bitwise equal and within the tolerance of the reference after every step;
 * clipping active in some steps and not in others. */
static void optim_extra(gf_ctx *ctx, const row *rw, const tensors *T, const results *res, const char *name) {
    (void)res;
    ot_optim_dev d[2];
    REQUIRE_OK(ctx, ot_optim_dev_init(ctx, rw, T, &d[0]));
    REQUIRE_OK(ctx, ot_optim_dev_init(ctx, rw, T, &d[1]));
    double *ref = dalloc(T->n_out), *S = dalloc(T->n_out);
    for (int s = 0; s < OPTIM_STEPS; s++) {
        REQUIRE_OK(ctx, ot_optim_dev_step(ctx, rw, T, T->bx[1], &d[0], s));
        REQUIRE_OK(ctx, ot_optim_dev_step(ctx, rw, T, T->bx[1], &d[1], s));
        float *a = falloc(T->n_out), *b = falloc(T->n_out);
        REQUIRE_OK(ctx, ot_optim_dev_result(ctx, rw, &d[0], a));
        REQUIRE_OK(ctx, ot_optim_dev_result(ctx, rw, &d[1], b));
        ot_optim_ref_steps(rw, (const double *const *)T->xd, s + 1, ref);
        ot_optim_scale_steps(rw, T, s + 1, S);
        char what[64];
        snprintf(what, sizeof what, "parameters and state after step %d", s + 1);
        check_tol(name, what, a, ref, S, T->n_out, (tol){0, 1e-5, 1});
        CHECK(memcmp(a, b, T->n_out * sizeof *a) == 0, "%s: step %d not bitwise reproducible", name, s + 1);
        free(a); free(b);
    }
    if (ot_optim_of(rw)->use_clip && rw->a[1] > 1) {
        int clipped = ot_optim_ref_steps(rw, (const double *const *)T->xd, OPTIM_STEPS, ref);
        CHECK(clipped > 0 && clipped < OPTIM_STEPS, "%s: clipping active in %d of %d steps (the case should cover both)",
              name, clipped, OPTIM_STEPS);
    }
    ot_optim_dev_release(&d[0]); ot_optim_dev_release(&d[1]);
    free(ref); free(S);
}
static void optim_once(gf_ctx *ctx) {
    cl_mem b = test_alloc(ctx, 4);
    gf_sgd_opts so = {0.1f, 0.9f, 0};
    CHECK(gf_sgd_step(ctx, &so, 4, b, b, NULL, NULL, NULL) == GF_ERR_USAGE, "momentum without a buffer accepted");
    gf_adam_opts ao = {0.1f, 0.9f, 0.999f, 1e-8f, 0};
    CHECK(gf_adam_step(ctx, &ao, 0, 4, b, b, b, b, NULL, NULL) == GF_ERR_USAGE, "Adam step 0 accepted");
    gf_buf_release(&b);
}
static void sqnorm_extra(gf_ctx *ctx, const row *rw, const tensors *T, const results *res, const char *name) {
    const size_t n = (size_t)rw->a[0];
    const float init[3] = {5, 6, 7};
    float out[3];
    cl_mem bo = test_upload(ctx, init, 3), ba = test_upload(ctx, T->x[0], n);
    REQUIRE_OK(ctx, gf_grad_sqnorm(ctx, n, T->bx[0], bo, 1, 0));
    REQUIRE_OK(ctx, gf_grad_sqnorm(ctx, n, T->bx[1], bo, 2, 0));
    test_download(ctx, bo, out, 3);
    CHECK(out[0] == 5 && out[1] == res->y[0] && out[2] == res->y[1], "%s: at offsets 1, 2: %g %g %g", name, out[0],
          out[1], out[2]);
    REQUIRE_OK(ctx, gf_grad_sqnorm(ctx, n, T->bx[0], bo, 0, 0));
    REQUIRE_OK(ctx, gf_grad_sqnorm(ctx, n, T->bx[1], bo, 0, 1));
    test_download(ctx, bo, out, 3);
    double both = ref_dot(T->xd[0], T->xd[0], n) + ref_dot(T->xd[1], T->xd[1], n);
    check_tol(name, "two tensors accumulated", out, &both, NULL, 1, (tol){1e-30, 1e-5, 0});
    CHECK(out[0] == res->y[0] + res->y[1], "%s: accumulate is not the float sum of the parts", name);
    const double sa = ref_dot(T->xd[0], T->xd[0], n);
    gf_clip clip = {bo, (float)(0.5 * sqrt(sa))};
    REQUIRE_OK(ctx, gf_grad_sqnorm(ctx, n, ba, bo, 0, 0));
    REQUIRE_OK(ctx, gf_grad_clip(ctx, n, ba, &clip));
    float *clipped = download(ctx, ba, n);
    double c = fmin(1.0, clip.max_norm / (sqrt(sa) + 1e-6)), *rc = dalloc(n);
    for (size_t i = 0; i < n; i++) rc[i] = c * T->x[0][i];
    check_tol(name, "grad clip", clipped, rc, NULL, n, (tol){1e-7, 1e-5, 0});
    free(clipped); free(rc);
    gf_buf_release(&bo); gf_buf_release(&ba);
}

/* The ops' own checks: extra after each row (on what the driver computed), once per op and context. */
typedef struct op_hooks { const char *name; ot_extra_fn extra; void (*once)(gf_ctx *); } op_hooks;
static const op_hooks hooks[] = {
    {"act", act_extra, act_once}, {"ln", NULL, ln_once}, {"mul", mul_extra, mul_once}, {"shuffle", shuffle_extra, NULL},
    {"maxpool", maxpool_extra, maxpool_once}, {"xent", xent_extra, loss_once}, {"bce", bce_extra, NULL},
    {"conv", conv_extra, conv_once}, {"linear", conv_extra, NULL}, {"bn_train", bn_train_extra, bn_once},
    {"bn_eval", bn_eval_extra, NULL}, {"sgd", optim_extra, optim_once}, {"adam", optim_extra, optim_once},
    {"sqnorm", sqnorm_extra, NULL},
};
static const op_hooks *hooks_of(const op_def *op) {
    static const op_hooks none = {NULL, NULL, NULL};
    for (size_t i = 0; i < sizeof hooks / sizeof hooks[0]; i++) if (!strcmp(hooks[i].name, op->name)) return &hooks[i];
    return &none;
}

static int selected(const char *filter, const char *name) {
    if (!filter) return 1;
    size_t n = strlen(name);
    for (const char *p = filter; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, name, n)) return 1;
        p += len + (e != NULL);
    }
    return 0;
}
/* A conv row whose convolution takes the Winograd path in ctx (--winograd-rows): its shape made and dropped. */
static int takes_winograd(gf_ctx *ctx, const row *rw, int conv_variant) {
    if (strcmp(rw->op->name, "conv")) return 0;
    tensors T;
    memset(&T, 0, sizeof T);
    T.conv_variant = conv_variant;
    int yes = rw->op->shape(ctx, rw, &T) == GF_OK && gf_conv_uses_winograd(ctx, ot_desc_of(&T));
    if (rw->op->release && T.state) rw->op->release(&T);
    return yes;
}
/* the rows of this run: --quick `gradfeat selftest`'s, --small the small ones, else the default run's */
static int in_run(const row *rw, int small, int quick) { return quick ? rw->quick : small ? rw->small : rw->full; }

static void usage(void) {
    fprintf(stderr, "usage: test_ops [--device D|all] [--variant NAME] [--filter OP[,OP...]] [--winograd-rows] [--small|--quick] [--list]"
                    " [--verbose]\n"
                    "variants:");
    for (int v = 0; v < N_VARIANTS; v++) fprintf(stderr, " %s", variants[v].name);
    fprintf(stderr, "\n");
    exit(2);
}
int main(int argc, char **argv) {
    const char *device = NULL, *filter = NULL, *only_variant = NULL;
    int small = 0, quick = 0, list = 0, verbose = 0, winograd_rows = 0;
    /* line-buffered: the FAIL lines (stderr) land next to their row's line in a log that takes both */
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--small")) small = 1;
        else if (!strcmp(argv[i], "--verbose")) verbose = 1;
        else if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--list")) list = 1;
        else if (!strcmp(argv[i], "--winograd-rows")) winograd_rows = 1;
        else if (i + 1 < argc && !strcmp(argv[i], "--device")) device = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--filter")) filter = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--variant")) only_variant = argv[++i];
        else usage();
    }
    full_run = !small && !quick;
    int vsel = -1;
    if (only_variant) {
        for (int v = 0; v < N_VARIANTS; v++) if (!strcmp(variants[v].name, only_variant)) vsel = v;
        if (vsel < 0) usage();
    }
    n_rows = gf_ot_rows(&rows);
    /* every name of a filter must be an op: a misspelt one must not pass by running nothing */
    for (const char *p = filter; p && *p;) {
        const char *e = strchr(p, ',');
        char one[64];
        snprintf(one, sizeof one, "%.*s", (int)(e ? e - p : (long)strlen(p)), p);
        int found = 0;
        for (int i = 0; i < n_rows; i++) found |= !strcmp(rows[i].op->name, one);
        if (!found) {
            fprintf(stderr, "test_ops: --filter names no op '%s'\n", one);
            return 2;
        }
        p = e ? e + 1 : p + strlen(p);
    }
    if (list) {
        for (int i = 0; i < n_rows; i++) {
            if (!selected(filter, rows[i].op->name)) continue;
            char name[200];
            rows[i].op->describe(&rows[i], name, sizeof name);
            printf("%-60s %s%s%s\n", name, rows[i].full ? "full" : "", rows[i].small ? " small" : "",
                   rows[i].quick ? " quick" : "");
        }
        return 0;
    }
    /* --device all: every device of every platform, one after the other */
    enum { MAX_DEVICES = 16, MAX_FAILED_SHOWN = 40 };
    char failed_rows[MAX_FAILED_SHOWN][240];
    int n_failed_rows = 0, n_rows_run = 0;
    char devs[MAX_DEVICES][16];
    const char *dev_sel[MAX_DEVICES] = {device};
    int n_dev = 1;
    if (device && !strcmp(device, "all")) {
        gf_device_info *d = NULL;
        char msg[2048];
        gf_status st = gf_devices_list(&d, &n_dev, msg, sizeof msg);
        if (st != GF_OK) {
            fprintf(stderr, "FATAL: no OpenCL device: %s\n", msg[0] ? msg : gf_status_name(st));
            return 1;
        }
        if (n_dev > MAX_DEVICES) n_dev = MAX_DEVICES;
        for (int i = 0; i < n_dev; i++) {
            snprintf(devs[i], sizeof devs[i], "%d:%d", d[i].platform_index, d[i].device_index);
            dev_sel[i] = devs[i];
        }
        free(d);
    }
    for (int dv = 0; dv < n_dev; dv++) {
        const op_def *done_once[64];
        int n_once = 0;
        for (int v = 0; v < N_VARIANTS; v++) {
            if (vsel >= 0 && v != vsel) continue;
            /* an op runs under the variants its kernels depend on, or the default when they depend on none; an
             * explicit --variant runs every selected op under it */
            if (vsel < 0 && !(quick ? v == V_DEFAULT : small ? variants[v].small : variants[v].full)) continue;
            int wanted = 0;
            for (int i = 0; i < n_rows; i++) {
                const unsigned vs = rows[i].op->variants ? rows[i].op->variants : 1u << V_DEFAULT;
                if (selected(filter, rows[i].op->name) && in_run(&rows[i], small, quick) && (quick || (vs >> v & 1))) wanted = 1;
            }
            if (!wanted && vsel < 0) continue;
            current_variant = &variants[v];
            gf_ctx *ctx = test_ctx_for(dev_sel[dv], apply_variant, &variants[v]);
            printf("device: %s (%s); variant %s: kernel paths %s\n", gf_ctx_device(ctx)->name,
                   gf_ctx_device(ctx)->platform_name, variants[v].name, gf_ctx_paths(ctx));
            for (int i = 0; i < n_rows; i++) {
                const row *rw = &rows[i];
                if (!selected(filter, rw->op->name) || !in_run(rw, small, quick)) continue;
                const unsigned vs = rw->op->variants ? rw->op->variants : 1u << V_DEFAULT;
                if (vsel < 0 && !quick && !(vs >> v & 1)) continue;
                if (winograd_rows && !takes_winograd(ctx, rw, variants[v].conv_variant)) continue;
                int seen = 0;
                for (int k = 0; k < n_once; k++) seen |= done_once[k] == rw->op;
                if (!seen && hooks_of(rw->op)->once) hooks_of(rw->op)->once(ctx);
                if (!seen) done_once[n_once++] = rw->op;
                int before = gf_test_failures;
                gf_ot_run_row(ctx, rw, (uint64_t)i + 1, variants[v].conv_variant, &test_sink, hooks_of(rw->op)->extra);   /* by its place in the table: --filter reproduces a row */
                char name[200];
                rw->op->describe(rw, name, sizeof name);
                n_rows_run++;
                if (gf_test_failures == before) {
                    if (verbose) printf("%-60s %-8s ok\n", name, variants[v].name);
                    continue;
                }
                printf("%-60s %-8s FAILED\n", name, variants[v].name);
                if (n_failed_rows < MAX_FAILED_SHOWN)
                    snprintf(failed_rows[n_failed_rows], sizeof failed_rows[0], "%s (variant %s)", name,
                             variants[v].name);
                n_failed_rows++;
            }
            /* GRADFEAT_MAX_WORK_GROUP (README "Kernel paths"): no launch of these rows went above the cap */
            if (ctx->wg_cap)
                CHECK(ctx->wg_launched_max >= 1 && ctx->wg_launched_max <= ctx->wg_cap,
                      "variant %s: largest work-group launched %zu, cap %zu", variants[v].name, ctx->wg_launched_max,
                      ctx->wg_cap);
            printf("variant %s: largest work-group launched %zu\n", variants[v].name, ctx->wg_launched_max);
            gf_ctx_free(ctx);
        }
    }
    /* a change to the algorithm's choice that left no row on the Winograd path must not pass by running nothing */
    if (winograd_rows) CHECK(n_rows_run > 0, "--winograd-rows: no selected row takes the Winograd path");
    printf("test_ops: %d rows run (--verbose names each), %d failed\n", n_rows_run, n_failed_rows);
    for (int k = 0; k < n_failed_rows && k < MAX_FAILED_SHOWN; k++) printf("  failed: %s\n", failed_rows[k]);
    return test_finish("test_ops");
}