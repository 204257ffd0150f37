/* A top block with BatchNorm nodes (host/graph/block.c) trained by backprop, and one BatchNorm training
 * forward + backward against PyTorch 1.13 (tools/torch_bn_reference.py, F.batch_norm in float64). The BN ops
 * themselves (every shape, both lane walks, the references) are rows of tests/test_ops.c; this file checks
 * what is not an op row: BN inside a block, and a second implementation's numbers.
 *
 * Tolerance: |got - ref| <= 1e-5 * scale, scale = 1 + the sum of the magnitudes of the terms that make the
 * value.
 *
 * Block: conv3x3(+bias) -> BN -> relu -> conv3x3 -> BN -> add(input) -> relu
 * (-> GAP by the block). In training mode and in eval mode, every parameter
 * gradient of gf_block_backward (conv weights, the conv1 bias, which training
 * BN makes ~0, gammas, betas) and the input gradient vs central differences of
 * <features, u> from gf_block_forward in the same mode (float, step 2e-3; the
 * betas are chosen so that every ReLU input stays >= 0.03 from its kink;
 * tolerance 2e-3 x the largest gradient, measured worst 2.4e-4). Training-mode
 * features vs a double reference of the block (host/ops/ref_ops.c); running statistics after 3
 * training forwards vs the reference; eval-mode features vs the reference at
 * those statistics; the backward follows the mode of the forward;
 * gf_block_tangent refuses BN. A second block, BN on the input that the
 * residual add also reads, covers BN's input gradient accumulated on top of
 * another one. The split path of several processes (gf_block_set_bn_sync) agrees with the one-kernel
 * path in one process (sync_test). */
#include <stdint.h>
#include <unistd.h>
#include "block.h"
#include "ops_bn.h"
#include "testutil.h"
#include "ref_ops.h"

#define TOL 1e-5

typedef struct shape { int n, c, hw; } shape;

static size_t count(const shape *s) { return (size_t)s->n * s->c * s->hw; }

/* ---------------- helpers ---------------- */

static double *to_d(const float *a, size_t n) {
    double *r = malloc((n ? n : 1) * sizeof *r);
    for (size_t i = 0; i < n; i++) r[i] = a[i];
    return r;
}

static float *dl(gf_ctx *ctx, cl_mem m, size_t n) {
    float *a = malloc((n ? n : 1) * sizeof *a);
    test_download(ctx, m, a, n);
    return a;
}

/* |got - ref| <= TOL * scale element-wise. */
static void check_scaled(const char *what, const float *got, const double *ref, const double *scale, size_t n) {
    double worst = 0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - ref[i]) / (TOL * scale[i]);
        if (!(e <= worst)) { worst = e; wi = i; }
    }
    CHECK(worst <= 1.0, "%s: index %zu got %.9g want %.9g (scale %.3g, err %.3g x tolerance)", what, wi,
          n ? got[wi] : 0.0, n ? ref[wi] : 0.0, n ? scale[wi] : 0.0, worst);
}

/* ---------------- PyTorch: one training forward + backward ---------------- */

static void write_f32(const char *dir, const char *name, const float *v, size_t n) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s.f32", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f || fwrite(v, sizeof *v, n, f) != n) { fprintf(stderr, "FATAL: cannot write %s\n", p); exit(1); }
    fclose(f);
}

static double *read_f64(const char *dir, const char *name, size_t n) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s.f64", dir, name);
    FILE *f = fopen(p, "rb");
    double *v = malloc((n + 1) * sizeof *v);
    if (!f || fread(v, sizeof *v, n + 1, f) != n) { fprintf(stderr, "FATAL: %s missing or not %zu doubles\n", p, n); exit(1); }
    fclose(f);
    return v;
}

static void torch_compare(gf_ctx *ctx) {
    const shape s = {6, 3, 20};
    const float eps = 1e-3f, mom = 0.25f;
    const size_t T = count(&s);
    const int C = s.c;
    test_rng r;
    test_rng_seed(&r, 777);
    float x[360], dy[360], ga[3], be[3], rm[3], rv[3];
    test_fill(&r, x, T, -2, 3);
    test_fill(&r, dy, T, -1, 1);
    test_fill(&r, ga, C, 0.5, 1.5);
    test_fill(&r, be, C, -1, 1);
    test_fill(&r, rm, C, -0.5, 0.5);
    test_fill(&r, rv, C, 0.5, 2);
    char dir[] = "/tmp/gf_test_bn_XXXXXX";
    if (!mkdtemp(dir)) { fprintf(stderr, "FATAL: mkdtemp\n"); exit(1); }
    write_f32(dir, "x", x, T); write_f32(dir, "dy", dy, T); write_f32(dir, "gamma", ga, C);
    write_f32(dir, "beta", be, C); write_f32(dir, "running_mean", rm, C); write_f32(dir, "running_var", rv, C);
    const char *src = getenv("GF_SRC");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tools/torch_bn_reference.py %s %d %d %d %.9g %.9g > %s/log 2>&1",
             src ? src : ".", dir, s.n, C, s.hw, (double)eps, (double)mom, dir);
    if (system(cmd) != 0) {
        snprintf(cmd, sizeof cmd, "cat %s/log >&2", dir);
        if (system(cmd) != 0) {}
        fprintf(stderr, "FATAL: tools/torch_bn_reference.py failed (%s)\n", dir);
        exit(1);
    }
    double *ty = read_f64(dir, "y", T), *tdx = read_f64(dir, "dx", T), *tdg = read_f64(dir, "dgamma", C),
           *tdb = read_f64(dir, "dbeta", C), *trm = read_f64(dir, "running_mean", C),
           *trv = read_f64(dir, "running_var", C);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);

    cl_mem bx = test_upload(ctx, x, T), bdy = test_upload(ctx, dy, T), bg = test_upload(ctx, ga, C),
           bb = test_upload(ctx, be, C), brm = test_upload(ctx, rm, C), brv = test_upload(ctx, rv, C);
    cl_mem by = test_alloc(ctx, T), bsm = test_alloc(ctx, C), bsi = test_alloc(ctx, C), bdx = test_alloc(ctx, T),
           bdg = test_alloc(ctx, C), bdb = test_alloc(ctx, C);
    REQUIRE_OK(ctx, gf_bn_train_forward(ctx, s.n, C, s.hw, bx, bg, bb, eps, mom, brm, brv, by, bsm, bsi));
    REQUIRE_OK(ctx, gf_bn_train_backward(ctx, s.n, C, s.hw, bx, bdy, bg, bsm, bsi, bdx, bdg, bdb, 0));
    float y[360], dx[360], dg[3], db[3], om[3], ov[3];
    test_download(ctx, by, y, T); test_download(ctx, bdx, dx, T); test_download(ctx, bdg, dg, C);
    test_download(ctx, bdb, db, C); test_download(ctx, brm, om, C); test_download(ctx, brv, ov, C);
    /* scales: y and dx of order 1..3 here, the sums over 120 values of order 1 */
    double sT[360], sC[3];
    for (size_t t = 0; t < T; t++) sT[t] = 1 + fabs(ty[t]) + 3;
    for (int k = 0; k < C; k++) sC[k] = 1 + 120;
    check_scaled("torch: y", y, ty, sT, T);
    for (size_t t = 0; t < T; t++) sT[t] = 1 + fabs(tdx[t]) + 3;
    check_scaled("torch: dx", dx, tdx, sT, T);
    check_scaled("torch: dgamma", dg, tdg, sC, C);
    check_scaled("torch: dbeta", db, tdb, sC, C);
    for (int k = 0; k < C; k++) sC[k] = 1 + fabs(trm[k]);
    check_scaled("torch: running_mean", om, trm, sC, C);
    for (int k = 0; k < C; k++) sC[k] = 1 + fabs(trv[k]);
    check_scaled("torch: running_var", ov, trv, sC, C);
    /* the comparison discriminates: a biased variance in the running update
     * would be off by momentum * var / (M - 1), far above the tolerance */
    double M = (double)s.n * s.hw, unb_term = (trv[0] - (1 - mom) * rv[0]) / M;
    CHECK(unb_term > 100 * TOL * (1 + fabs(trv[0])), "torch: running var cannot tell biased from unbiased (%.3g)",
          unb_term);
    printf("torch: y[0] %.7f vs %.7f, dx[0] %.7f vs %.7f, running_var[0] %.7f vs %.7f\n", y[0], ty[0], dx[0], tdx[0],
           ov[0], trv[0]);
    cl_mem *bufs[] = {&bx, &bdy, &bg, &bb, &brm, &brv, &by, &bsm, &bsi, &bdx, &bdg, &bdb};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) gf_buf_release(bufs[i]);
    free(ty); free(tdx); free(tdg); free(tdb); free(trm); free(trv);
}

/* ---------------- a residual block with BN, trained by backprop ---------------- */

enum { BN_N = 4, BN_CI = 3, BN_CM = 4, BN_H = 5 };
enum { ND_CONV1, ND_BN1, ND_RELU1, ND_CONV2, ND_BN2, ND_ADD, ND_RELU2, ND_COUNT };

/* The block (BN_N images of BN_CI x BN_H x BN_H) and its nodes. */
static gf_block *bn_block_create(gf_ctx *ctx, const gf_node **nodes) {
    gf_node nd[ND_COUNT];
    gf_block *blk;
    gf_conv_desc d;
    memset(nd, 0, sizeof nd);
    gf_conv_desc_simple(NULL, &d, 1, BN_CI, BN_H, BN_H, BN_CM, 3, 1, 1, 1, 1);
    /* conv1 keeps a bias: in training mode BN removes it, so its gradient must be ~0 */
    nd[ND_CONV1] = (gf_node){.kind = GF_K_CONV, .name = "conv1", .in = {GF_NODE_INPUT}, .conv = d, .has_bias = 1};
    nd[ND_BN1] = (gf_node){.kind = GF_K_BATCHNORM, .name = "bn1", .in = {ND_CONV1}};
    nd[ND_RELU1] = (gf_node){.kind = GF_K_ACT, .name = "relu1", .in = {ND_BN1}, .act = {GF_ACT_RELU, 0}};
    gf_conv_desc_simple(NULL, &d, 1, BN_CM, BN_H, BN_H, BN_CI, 3, 1, 1, 1, 1);
    nd[ND_CONV2] = (gf_node){.kind = GF_K_CONV, .name = "conv2", .in = {ND_RELU1}, .conv = d, .has_bias = 0};
    nd[ND_BN2] = (gf_node){.kind = GF_K_BATCHNORM, .name = "bn2", .in = {ND_CONV2}, .eps = 1e-3f,
                            .momentum = 0.2f};
    nd[ND_ADD] = (gf_node){.kind = GF_K_ADD, .name = "add", .in = {ND_BN2, GF_NODE_INPUT}};
    nd[ND_RELU2] = (gf_node){.kind = GF_K_ACT, .name = "relu2", .in = {ND_ADD}, .act = {GF_ACT_RELU, 0}};
    REQUIRE_OK(ctx, gf_block_create(ctx, BN_CI, BN_H, BN_H, nd, ND_COUNT, BN_N, &blk));
    int nn;
    *nodes = gf_block_nodes(blk, &nn);
    return blk;
}

/* The block in double: train = batch statistics (returned in bmean/bvar per BN
 * node), else the running statistics rmean/rvar. theta in float. f [n, BN_CI]. */
static void ref_block(const gf_node *nd, const float *theta, const float *x, int train, double *const rmean[2],
                      double *const rvar[2], double *bmean[2], double *bvar[2], double *f) {
    const int HW = BN_H * BN_H, n = BN_N;
    size_t P1 = nd[ND_CONV1].w_count;
    double *W1 = to_d(theta + nd[ND_CONV1].w_off, P1), *b1 = to_d(theta + nd[ND_CONV1].b_off, BN_CM);
    double *W2 = to_d(theta + nd[ND_CONV2].w_off, nd[ND_CONV2].w_count);
    double *xd = to_d(x, (size_t)n * BN_CI * HW);
    double *z1 = malloc(sizeof(double) * n * BN_CM * HW), *a1 = malloc(sizeof(double) * n * BN_CM * HW);
    double *z2 = malloc(sizeof(double) * n * BN_CI * HW), *a2 = malloc(sizeof(double) * n * BN_CI * HW);
    gf_conv_desc d1, d2;
    REQUIRE_OK(NULL, gf_conv_desc_simple(NULL, &d1, n, BN_CI, BN_H, BN_H, BN_CM, 3, 1, 1, 1, 1));
    REQUIRE_OK(NULL, gf_conv_desc_simple(NULL, &d2, n, BN_CM, BN_H, BN_H, BN_CI, 3, 1, 1, 1, 1));
    ref_conv(&d1, xd, W1, b1, z1);
    const int bn_nodes[2] = {ND_BN1, ND_BN2};
    for (int k = 0; k < 2; k++) {
        const gf_node *b = &nd[bn_nodes[k]];
        double *z = k ? z2 : z1, *a = k ? a2 : a1;
        double *g = to_d(theta + b->w_off, b->c), *be = to_d(theta + b->b_off, b->c);
        if (train) {
            ref_bn_stats(n, b->c, HW, z, bmean[k], bvar[k]);
            ref_bn_affine(n, b->c, HW, z, g, be, bmean[k], bvar[k], b->eps, a);
        } else {
            ref_bn_affine(n, b->c, HW, z, g, be, rmean[k], rvar[k], b->eps, a);
        }
        free(g); free(be);
        if (k == 0) {
            for (size_t t = 0; t < (size_t)n * BN_CM * HW; t++) a1[t] = a1[t] > 0 ? a1[t] : 0;
            ref_conv(&d2, a1, W2, NULL, z2);
        }
    }
    for (int i = 0; i < n; i++)
        for (int c = 0; c < BN_CI; c++) {
            double acc = 0;
            for (int j = 0; j < HW; j++) {
                size_t t = (size_t)(i * BN_CI + c) * HW + j;
                double v = a2[t] + xd[t];
                acc += v > 0 ? v : 0;
            }
            f[i * BN_CI + c] = acc / HW;
        }
    free(W1); free(b1); free(W2); free(xd); free(z1); free(a1); free(z2); free(a2);
}

/* beta_k = minus the middle of the widest gap between consecutive values of
 * channel k of v (v = the BN output without beta, plus what is added before the
 * ReLU): the ReLU then splits the channel with the largest margin from its kink,
 * so that finite-difference steps do not cross it. Returns the margin. */
static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double split_channels(int n, int C, int HW, const double *v, float *beta) {
    double *col = malloc(sizeof(double) * n * HW), margin = INFINITY;
    for (int k = 0; k < C; k++) {
        for (int i = 0; i < n; i++) for (int j = 0; j < HW; j++) col[i * HW + j] = v[(size_t)(i * C + k) * HW + j];
        qsort(col, (size_t)n * HW, sizeof *col, cmp_d);
        /* keep at least a quarter of the channel on each side */
        int lo = n * HW / 4, best = lo;
        for (int t = lo; t < n * HW * 3 / 4; t++) if (col[t + 1] - col[t] > col[best + 1] - col[best]) best = t;
        beta[k] = (float)(-(col[best] + col[best + 1]) / 2);
        double m = (col[best + 1] - col[best]) / 2;
        if (m < margin) margin = m;
    }
    free(col);
    return margin;
}

static double feat_loss(gf_ctx *ctx, gf_block *blk, int n, cl_mem bx, const gf_params *th, cl_mem bf,
                        const float *u) {
    int D = gf_block_feature_dim(blk);
    float *f = malloc((size_t)n * D * sizeof *f);
    REQUIRE_OK(ctx, gf_block_forward(ctx, blk, n, bx, th, bf));
    test_download(ctx, bf, f, (size_t)n * D);
    double L = 0;
    for (int i = 0; i < n * D; i++) L += (double)f[i] * u[i];
    free(f);
    return L;
}

typedef struct fd_tensor {
    const char *name;
    long off;        /* into theta; -1 = the block input */
    size_t cnt;
    int vanish;      /* the gradient must be ~0 (else: must not be) */
} fd_tensor;

/* Backward (g, gx) vs central differences of <features, u> from
 * gf_block_forward in the block's current mode, element by element. The
 * tolerance is relative to the largest gradient over all tensors: fp32
 * features (~1e-7 relative) over a 4e-3 step give ~3e-5 absolute noise. */
static void fd_check(gf_ctx *ctx, gf_block *blk, int n, const gf_params *th, const float *theta, size_t P, cl_mem bx,
                     const float *x, size_t XS, cl_mem bf, const float *u, const float *g, const float *gx,
                     const fd_tensor *tens, size_t nt, const char *label) {
    const double h = 2e-3;
    float *tp = malloc(P * sizeof *tp), *xp = malloc(XS * sizeof *xp);
    memcpy(tp, theta, P * sizeof *tp);
    memcpy(xp, x, XS * sizeof *xp);
    double gmax = 0, worst_all = 0;
    for (size_t t = 0; t < P; t++) gmax = fmax(gmax, fabs(g[t]));
    for (size_t t = 0; t < XS; t++) gmax = fmax(gmax, fabs(gx[t]));
    size_t total = 0;
    for (size_t q = 0; q < nt; q++) {
        int is_x = tens[q].off < 0;
        float *base = is_x ? xp : tp + tens[q].off;
        const float *an = is_x ? gx : g + tens[q].off;
        double worst = 0, tmax = 0, fdw = 0;
        size_t wi = 0;
        for (size_t e = 0; e < tens[q].cnt; e++) {
            float keep = base[e];
            double Lv[2];
            for (int sgn = 0; sgn < 2; sgn++) {
                base[e] = keep + (float)(sgn ? -h : h);
                if (is_x) REQUIRE_OK(ctx, gf_buf_write(ctx, bx, 0, XS * sizeof(float), xp));
                else REQUIRE_OK(ctx, gf_buf_write(ctx, th->all, 0, P * sizeof(float), tp));
                Lv[sgn] = feat_loss(ctx, blk, n, bx, th, bf, u);
            }
            base[e] = keep;
            /* the steps the floats actually took */
            double hp = (double)(keep + (float)h) - keep, hm = keep - (double)(keep - (float)h);
            double fd = (Lv[0] - Lv[1]) / (hp + hm), err = fabs(fd - an[e]);
            tmax = fmax(tmax, fabs(an[e]));
            if (err > worst) { worst = err; wi = e; fdw = fd; }
        }
        total += tens[q].cnt;
        if (is_x) REQUIRE_OK(ctx, gf_buf_write(ctx, bx, 0, XS * sizeof(float), x));
        else REQUIRE_OK(ctx, gf_buf_write(ctx, th->all, 0, P * sizeof(float), theta));
        worst_all = fmax(worst_all, worst / gmax);
        CHECK(worst <= 2e-3 * gmax, "%s: d<f,u>/d%s[%zu] backward %.7g vs FD %.7g (max |g| %.3g)", label, tens[q].name,
              wi, an[wi], fdw, gmax);
        if (tens[q].vanish)
            CHECK(tmax <= 1e-4 * gmax, "%s: %s gradient %.3g should vanish (BN removes it)", label, tens[q].name, tmax);
        else
            CHECK(tmax > 1e-2 * gmax, "%s: %s gradient is (almost) zero (%.3g)", label, tens[q].name, tmax);
    }
    printf("%s: max |backward - FD| / max |g| = %.3g over %zu values\n", label, worst_all, total);
    free(tp); free(xp);
}

/* The running statistics of both BN nodes back to mean 0, variance 1. */
static void reset_running(gf_ctx *ctx, gf_block *blk) {
    static const float ones[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    for (int k = 0; k < 2; k++) {
        const size_t c = k ? BN_CI : BN_CM;
        cl_mem mm, vv;
        REQUIRE_OK(ctx, gf_block_bn_running(blk, k ? ND_BN2 : ND_BN1, &mm, &vv));
        REQUIRE_OK(ctx, gf_buf_zero(ctx, mm, 0, c * sizeof(float)));
        REQUIRE_OK(ctx, gf_buf_write(ctx, vv, 0, c * sizeof(float), ones));
    }
}

static void block_test(gf_ctx *ctx) {
    const gf_node *nd;
    gf_block *blk = bn_block_create(ctx, &nd);
    CHECK(nd[ND_BN1].eps == 1e-5f && nd[ND_BN1].momentum == 0.1f && nd[ND_BN2].eps == 1e-3f &&
          nd[ND_BN2].momentum == 0.2f, "BN defaults / given eps and momentum not kept");
    CHECK(nd[ND_BN1].w_count == BN_CM && nd[ND_BN1].b_count == BN_CM && nd[ND_BN1].w_off >= 0 && nd[ND_BN1].b_off >= 0,
          "bn1 gamma/beta layout");
    const size_t P = gf_block_param_count(blk), XS = (size_t)BN_N * BN_CI * BN_H * BN_H, HW = BN_H * BN_H;
    const int D = gf_block_feature_dim(blk);
    CHECK(D == BN_CI, "feature dim %d", D);
    test_rng r;
    test_rng_seed(&r, 99);
    float *theta = calloc(P, sizeof *theta), *x = malloc(XS * sizeof *x), u[BN_N * BN_CI];
    test_fill(&r, theta + nd[ND_CONV1].w_off, nd[ND_CONV1].w_count, -0.5, 0.5);
    test_fill(&r, theta + nd[ND_CONV1].b_off, BN_CM, -0.5, 0.5);
    test_fill(&r, theta + nd[ND_CONV2].w_off, nd[ND_CONV2].w_count, -0.5, 0.5);
    test_fill(&r, theta + nd[ND_BN1].w_off, BN_CM, 0.5, 1.5);
    test_fill(&r, theta + nd[ND_BN2].w_off, BN_CI, 0.5, 1.5);
    test_fill(&r, x, XS, -1, 1);
    test_fill(&r, u, BN_N * BN_CI, -1, 1);
    gf_params th, gr;
    REQUIRE_OK(ctx, gf_params_create(ctx, blk, "theta", &th));
    REQUIRE_OK(ctx, gf_params_create(ctx, blk, "gradient", &gr));
    CHECK(th.w[ND_BN1] && th.b[ND_BN1] && th.w[ND_BN2] && th.b[ND_BN2], "BN parameter slices missing");
    cl_mem bx = test_upload(ctx, x, XS), bf = test_alloc(ctx, BN_N * D), bg = test_alloc(ctx, BN_N * D),
           bgx = test_alloc(ctx, XS);

    /* betas that keep every ReLU input off its kink (see split_channels) */
    gf_block_set_training(blk, 1);
    CHECK(gf_block_training(blk) == 1, "training flag");
    double *v = malloc(XS * 2 * sizeof *v), m1, m2;
    float *hv = malloc(XS * 2 * sizeof *hv);
    REQUIRE_OK(ctx, gf_buf_write(ctx, th.all, 0, P * sizeof(float), theta));
    REQUIRE_OK(ctx, gf_block_forward(ctx, blk, BN_N, bx, &th, bf));   /* beta = 0: output = gamma xhat */
    test_download(ctx, gf_block_node_output(blk, ND_BN1), hv, (size_t)BN_N * BN_CM * HW);
    for (size_t t = 0; t < (size_t)BN_N * BN_CM * HW; t++) v[t] = hv[t];
    m1 = split_channels(BN_N, BN_CM, (int)HW, v, theta + nd[ND_BN1].b_off);
    REQUIRE_OK(ctx, gf_buf_write(ctx, th.all, 0, P * sizeof(float), theta));
    REQUIRE_OK(ctx, gf_block_forward(ctx, blk, BN_N, bx, &th, bf));
    test_download(ctx, gf_block_node_output(blk, ND_BN2), hv, XS);
    for (size_t t = 0; t < XS; t++) v[t] = (double)hv[t] + x[t];
    m2 = split_channels(BN_N, BN_CI, (int)HW, v, theta + nd[ND_BN2].b_off);
    REQUIRE_OK(ctx, gf_buf_write(ctx, th.all, 0, P * sizeof(float), theta));
    printf("block: ReLU margins from the kink %.3g (relu1), %.3g (relu2)\n", m1, m2);
    /* FD steps move a ReLU input by ~2e-3 x O(1): the margins must be wider */
    CHECK(m1 > 0.01 && m2 > 0.01, "block: ReLU margins %.3g, %.3g too narrow for the FD steps", m1, m2);
    free(v); free(hv);

    /* training-mode forward vs the double reference */
    double *rm[2], *rv[2], *bm[2], *bv[2], fr[BN_N * BN_CI], sf[BN_N * BN_CI];
    const int CB[2] = {BN_CM, BN_CI};
    for (int k = 0; k < 2; k++) {
        rm[k] = calloc(CB[k], sizeof(double)); rv[k] = malloc(CB[k] * sizeof(double));
        bm[k] = malloc(CB[k] * sizeof(double)); bv[k] = malloc(CB[k] * sizeof(double));
        for (int c = 0; c < CB[k]; c++) rv[k][c] = 1;
    }
    /* the two forwards above updated the running statistics: start over from 0 / 1 */
    reset_running(ctx, blk);
    CHECK(gf_block_bn_running(blk, ND_CONV1, NULL, NULL) == GF_ERR_USAGE, "running stats of a conv node");
    float f[BN_N * BN_CI];
    REQUIRE_OK(ctx, gf_block_forward(ctx, blk, BN_N, bx, &th, bf));
    test_download(ctx, bf, f, BN_N * D);
    ref_block(nd, theta, x, 1, rm, rv, bm, bv, fr);
    for (int i = 0; i < BN_N * D; i++) sf[i] = 1 + fabs(fr[i]) * 10;   /* through two convs of ~30 terms */
    check_scaled("block: training-mode features vs reference", f, fr, sf, (size_t)BN_N * D);

    /* gradients in training mode, then in eval mode, vs central differences of
     * <features, u> from gf_block_forward in the same mode */
    REQUIRE_OK(ctx, gf_buf_write(ctx, bg, 0, sizeof u, u));
    for (int mode = 1; mode >= 0; mode--) {
        const char *mname = mode ? "training" : "eval";
        gf_block_set_training(blk, mode);
        REQUIRE_OK(ctx, gf_block_forward(ctx, blk, BN_N, bx, &th, bf));
        REQUIRE_OK(ctx, gf_block_backward(ctx, blk, BN_N, bx, &th, bg, &gr, bgx));
        float *g = malloc(P * sizeof *g), *gx = malloc(XS * sizeof *gx);
        test_download(ctx, gr.all, g, P);
        test_download(ctx, bgx, gx, XS);
        if (mode) {   /* the backward uses the mode of the forward, not the current flag */
            gf_block_set_training(blk, 0);
            REQUIRE_OK(ctx, gf_block_backward(ctx, blk, BN_N, bx, &th, bg, &gr, NULL));
            gf_block_set_training(blk, 1);
            float *g3 = dl(ctx, gr.all, P);
            CHECK(memcmp(g, g3, P * sizeof *g) == 0, "block: backward after switching to eval differs from training");
            free(g3);
        }
        const fd_tensor tens[] = {
            {"conv1.weight", nd[ND_CONV1].w_off, nd[ND_CONV1].w_count, 0},
            {"conv1.bias", nd[ND_CONV1].b_off, BN_CM, mode},   /* BN removes it in training mode */
            {"bn1.gamma", nd[ND_BN1].w_off, BN_CM, 0}, {"bn1.beta", nd[ND_BN1].b_off, BN_CM, 0},
            {"conv2.weight", nd[ND_CONV2].w_off, nd[ND_CONV2].w_count, 0},
            {"bn2.gamma", nd[ND_BN2].w_off, BN_CI, 0}, {"bn2.beta", nd[ND_BN2].b_off, BN_CI, 0}, {"input", -1, XS, 0}};
        char label[64];
        snprintf(label, sizeof label, "block %s", mname);
        fd_check(ctx, blk, BN_N, &th, theta, P, bx, x, XS, bf, u, g, gx, tens, sizeof tens / sizeof tens[0], label);
        free(g); free(gx);
    }

    /* eval mode uses the running statistics: reset them, run 3 training
     * forwards on 3 batches, compare the running statistics with the reference,
     * then the eval-mode output with the reference at those statistics */
    reset_running(ctx, blk);
    for (int k = 0; k < 2; k++)
        for (int c = 0; c < CB[k]; c++) { rm[k][c] = 0; rv[k][c] = 1; }
    gf_block_set_training(blk, 1);
    float *xb = malloc(XS * sizeof *xb);
    const double M = (double)BN_N * HW;
    for (int rep = 0; rep < 3; rep++) {
        test_fill(&r, xb, XS, -1 + rep, 1 + rep);   /* batches with different statistics */
        REQUIRE_OK(ctx, gf_buf_write(ctx, bx, 0, XS * sizeof(float), xb));
        REQUIRE_OK(ctx, gf_block_forward(ctx, blk, BN_N, bx, &th, bf));
        ref_block(nd, theta, xb, 1, rm, rv, bm, bv, fr);
        for (int k = 0; k < 2; k++) {
            double mom = nd[k ? ND_BN2 : ND_BN1].momentum;
            for (int c = 0; c < CB[k]; c++) {
                rm[k][c] = (1 - mom) * rm[k][c] + mom * bm[k][c];
                rv[k][c] = (1 - mom) * rv[k][c] + mom * bv[k][c] * M / (M - 1);
            }
        }
    }
    double *dev_m[2], *dev_v[2];
    for (int k = 0; k < 2; k++) {
        cl_mem mm, vv;
        float hm[8], hvv[8];
        double sc[8];
        REQUIRE_OK(ctx, gf_block_bn_running(blk, k ? ND_BN2 : ND_BN1, &mm, &vv));
        test_download(ctx, mm, hm, CB[k]);
        test_download(ctx, vv, hvv, CB[k]);
        dev_m[k] = to_d(hm, CB[k]); dev_v[k] = to_d(hvv, CB[k]);
        char what[96];
        for (int c = 0; c < CB[k]; c++) sc[c] = 10 * (1 + fabs(rm[k][c]));
        snprintf(what, sizeof what, "block: %s running mean after 3 training forwards", k ? "bn2" : "bn1");
        check_scaled(what, hm, rm[k], sc, CB[k]);
        for (int c = 0; c < CB[k]; c++) sc[c] = 10 * (1 + fabs(rv[k][c]));
        snprintf(what, sizeof what, "block: %s running var after 3 training forwards", k ? "bn2" : "bn1");
        check_scaled(what, hvv, rv[k], sc, CB[k]);
    }
    gf_block_set_training(blk, 0);
    REQUIRE_OK(ctx, gf_buf_write(ctx, bx, 0, XS * sizeof(float), x));
    REQUIRE_OK(ctx, gf_block_forward(ctx, blk, BN_N, bx, &th, bf));
    test_download(ctx, bf, f, BN_N * D);
    ref_block(nd, theta, x, 0, dev_m, dev_v, bm, bv, fr);
    for (int i = 0; i < BN_N * D; i++) sf[i] = 1 + fabs(fr[i]) * 10;
    check_scaled("block: eval-mode features vs reference at the running statistics", f, fr, sf, (size_t)BN_N * D);
    /* ... and they differ from the training-mode output of the same batch */
    ref_block(nd, theta, x, 1, rm, rv, bm, bv, fr);
    double dmax = 0;
    for (int i = 0; i < BN_N * D; i++) dmax = fmax(dmax, fabs(f[i] - fr[i]));
    CHECK(dmax > 1e-2, "block: eval-mode output equals the training-mode one (%.3g): running stats unused?", dmax);

    /* no tangent through BN */
    gf_params w2;
    REQUIRE_OK(ctx, gf_params_create(ctx, blk, "w2", &w2));
    CHECK(gf_block_tangent(ctx, blk, BN_N, bx, &th, &w2, bf) == GF_ERR_USAGE, "tangent through BN accepted");
    CHECK(strstr(gf_ctx_last_error(ctx), "batchnorm has no tangent") != NULL, "tangent message: %s",
          gf_ctx_last_error(ctx));
    gf_params_free(&w2);

    for (int k = 0; k < 2; k++) { free(rm[k]); free(rv[k]); free(bm[k]); free(bv[k]); free(dev_m[k]); free(dev_v[k]); }
    free(xb); free(theta); free(x);
    gf_params_free(&th); gf_params_free(&gr);
    gf_buf_release(&bx); gf_buf_release(&bf); gf_buf_release(&bg); gf_buf_release(&bgx);
    gf_block_free(blk);
}

/* BN on the block input, which the residual add reads too: the add writes the
 * input gradient first, BN's part is accumulated on top of it. Training mode,
 * gamma/beta/input gradients vs FD. */
static void fanout_test(gf_ctx *ctx) {
    enum { N = 3, C = 2, H = 4 };
    gf_node nd0[3] = {
        {.kind = GF_K_BATCHNORM, .name = "bn_in", .in = {GF_NODE_INPUT}},
        {.kind = GF_K_ADD, .name = "add", .in = {0, GF_NODE_INPUT}},
        {.kind = GF_K_ACT, .name = "relu", .in = {1}, .act = {GF_ACT_RELU, 0}}};
    gf_block *blk;
    REQUIRE_OK(ctx, gf_block_create(ctx, C, H, H, nd0, 3, N, &blk));
    int nn;
    const gf_node *nd = gf_block_nodes(blk, &nn);
    const size_t P = gf_block_param_count(blk), XS = (size_t)N * C * H * H;
    test_rng r;
    test_rng_seed(&r, 5);
    float *theta = calloc(P, sizeof *theta), x[N * C * H * H], u[N * C], g[64 * 8], gx[N * C * H * H], hv[N * C * H * H];
    double v[N * C * H * H];
    test_fill(&r, theta + nd[0].w_off, C, 0.5, 1.5);
    for (size_t t = 0; t < XS; t++) x[t] = (float)test_uniform(&r, -1, 1) * (t % 3 ? 1.0f : 2.0f);
    test_fill(&r, u, N * C, -1, 1);
    gf_params th, gr;
    REQUIRE_OK(ctx, gf_params_create(ctx, blk, "theta", &th));
    REQUIRE_OK(ctx, gf_params_create(ctx, blk, "gradient", &gr));
    cl_mem bx = test_upload(ctx, x, XS), bf = test_alloc(ctx, N * C), bg = test_upload(ctx, u, N * C),
           bgx = test_alloc(ctx, XS);
    gf_block_set_training(blk, 1);
    REQUIRE_OK(ctx, gf_buf_write(ctx, th.all, 0, P * sizeof(float), theta));
    REQUIRE_OK(ctx, gf_block_forward(ctx, blk, N, bx, &th, bf));
    test_download(ctx, gf_block_node_output(blk, 0), hv, XS);
    for (size_t t = 0; t < XS; t++) v[t] = (double)hv[t] + x[t];
    double m = split_channels(N, C, H * H, v, theta + nd[0].b_off);
    REQUIRE_OK(ctx, gf_buf_write(ctx, th.all, 0, P * sizeof(float), theta));
    REQUIRE_OK(ctx, gf_block_forward(ctx, blk, N, bx, &th, bf));
    REQUIRE_OK(ctx, gf_block_backward(ctx, blk, N, bx, &th, bg, &gr, bgx));
    if (P > sizeof g / sizeof g[0]) { fprintf(stderr, "FATAL: parameter vector of %zu floats\n", P); exit(1); }
    test_download(ctx, gr.all, g, P);
    test_download(ctx, bgx, gx, XS);
    printf("fan-out block: ReLU margin %.3g\n", m);
    CHECK(m > 0.01, "fan-out block: ReLU margin %.3g too narrow for the FD steps", m);
    const fd_tensor tens[] = {{"bn_in.gamma", nd[0].w_off, C, 0}, {"bn_in.beta", nd[0].b_off, C, 0},
                              {"input", -1, XS, 0}};
    fd_check(ctx, blk, N, &th, theta, P, bx, x, XS, bf, u, g, gx, tens, 3, "fan-out block training");
    free(theta);
    gf_params_free(&th); gf_params_free(&gr);
    gf_buf_release(&bx); gf_buf_release(&bf); gf_buf_release(&bg); gf_buf_release(&bgx);
    gf_block_free(blk);
}

/* gf_block_set_bn_sync (several processes: the statistics from partial sums added over the ranks), in
 * one process: the training forward (features, running statistics) and the backward (every parameter
 * gradient, the input gradient) of the split path agree with the one-kernel path to 1e-5 (atol 1e-6);
 * the sums over ranks themselves are tests/cli_mpi_pretrain.sh's. */
static void sync_test(gf_ctx *ctx) {
    const gf_node *nd;
    gf_block *blk = bn_block_create(ctx, &nd);
    const size_t P = gf_block_param_count(blk), XS = (size_t)BN_N * BN_CI * BN_H * BN_H;
    const int D = gf_block_feature_dim(blk), BNS[2] = {ND_BN1, ND_BN2};
    test_rng r;
    test_rng_seed(&r, 7);
    float *theta = calloc(P, sizeof *theta), *x = malloc(XS * sizeof *x), u[BN_N * BN_CI];
    test_fill(&r, theta, P, -0.5, 0.5);
    for (int k = 0; k < 2; k++) test_fill(&r, theta + nd[BNS[k]].w_off, nd[BNS[k]].w_count, 0.5, 1.5);
    test_fill(&r, x, XS, -1, 3);   /* an offset: the mean matters */
    test_fill(&r, u, BN_N * BN_CI, -1, 1);
    gf_params th, gr;
    REQUIRE_OK(ctx, gf_params_create(ctx, blk, "theta", &th));
    REQUIRE_OK(ctx, gf_params_create(ctx, blk, "gradient", &gr));
    REQUIRE_OK(ctx, gf_buf_write(ctx, th.all, 0, P * sizeof(float), theta));
    cl_mem bx = test_upload(ctx, x, XS), bf = test_alloc(ctx, BN_N * D), bg = test_upload(ctx, u, BN_N * D),
           bgx = test_alloc(ctx, XS);
    gf_block_set_training(blk, 1);
    float *out[2];
    size_t nout = BN_N * D + P + XS + 4 * 8;
    for (int sync = 0; sync < 2; sync++) {
        for (int k = 0; k < 2; k++) {   /* running statistics from 0 / 1, then two steps' worth */
            cl_mem mm, vv;
            float ones[8] = {1, 1, 1, 1, 1, 1, 1, 1};
            REQUIRE_OK(ctx, gf_block_bn_running(blk, BNS[k], &mm, &vv));
            REQUIRE_OK(ctx, gf_buf_zero(ctx, mm, 0, nd[BNS[k]].c * sizeof(float)));
            REQUIRE_OK(ctx, gf_buf_write(ctx, vv, 0, nd[BNS[k]].c * sizeof(float), ones));
        }
        gf_block_set_bn_sync(blk, sync);
        float *o = out[sync] = calloc(nout, sizeof(float));
        for (int rep = 0; rep < 2; rep++) REQUIRE_OK(ctx, gf_block_forward(ctx, blk, BN_N, bx, &th, bf));
        REQUIRE_OK(ctx, gf_block_backward(ctx, blk, BN_N, bx, &th, bg, &gr, bgx));
        test_download(ctx, bf, o, BN_N * D);
        test_download(ctx, gr.all, o + BN_N * D, P);
        test_download(ctx, bgx, o + BN_N * D + P, XS);
        for (int k = 0; k < 2; k++) {
            cl_mem mm, vv;
            REQUIRE_OK(ctx, gf_block_bn_running(blk, BNS[k], &mm, &vv));
            test_download(ctx, mm, o + BN_N * D + P + XS + 16 * k, nd[BNS[k]].c);
            test_download(ctx, vv, o + BN_N * D + P + XS + 16 * k + 8, nd[BNS[k]].c);
        }
    }
    double *ref = to_d(out[0], nout);
    const char *what[4] = {"features", "parameter gradients", "input gradient", "running statistics"};
    size_t at[5] = {0, BN_N * D, BN_N * D + P, BN_N * D + P + XS, nout};
    for (int k = 0; k < 4; k++) {
        char label[96];
        snprintf(label, sizeof label, "bn sync path vs one kernel: %s", what[k]);
        CHECK(test_close(label, out[1] + at[k], ref + at[k], at[k + 1] - at[k], 1e-6, 1e-5), "%s", label);
    }
    free(ref); free(out[0]); free(out[1]); free(theta); free(x);
    gf_buf_release(&bx); gf_buf_release(&bf); gf_buf_release(&bg); gf_buf_release(&bgx);
    gf_params_free(&th); gf_params_free(&gr);
    gf_block_free(blk);
}

int main(void) {
    gf_ctx *ctx = test_ctx();
    printf("device: %s\n", gf_ctx_device(ctx)->name);
    torch_compare(ctx);
    block_test(ctx);
    fanout_test(ctx);
    sync_test(ctx);
    gf_ctx_free(ctx);
    return test_finish("test_bn_block");
}
