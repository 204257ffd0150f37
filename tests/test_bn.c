/* BatchNorm (host/ops_bn.c, cl/bn.cl) on the device vs a double C reference
 * written here, and a top block with BN nodes (host/block.c) trained by
 * backprop.
 *
 * Ops, per shape (c = 1, hw = 1, n = 1 with hw > 1, n*hw above the 256-lane
 * work-group, a large common offset): training forward (y, saved mean/invstd,
 * PyTorch-style running-stat update, three updates in a row), training backward
 * vs the closed form and vs central finite differences of the double reference
 * forward of <y, u> w.r.t. every x, gamma and beta (the batch statistics move
 * with x), eval forward/backward vs the reference and the adjoint identity
 * (eval mode is linear in x), accumulate flag, optional outputs, in-place eval,
 * bitwise determinism, and 64 guard floats after every output (no write out of
 * bounds). One training forward+backward against PyTorch 1.13
 * (tools/torch_bn_reference.py, F.batch_norm in float64).
 *
 * Tolerances: |got - ref| <= 1e-5 * scale, scale = 1 + the sum of the
 * magnitudes of the terms that make the value (e.g. y: 1 + |gamma|(1 + |xhat|)
 * + |beta|; dgamma: 1 + sum |dy xhat|). fp32 rounding is a few 1e-7 * scale; a
 * wrong or missing term costs far more. FD in double with step 1e-4 on a
 * smooth function is exact to ~1e-9, so it gets the same tolerance.
 *
 * Block: conv3x3 -> BN -> relu -> conv3x3 -> BN -> add(input) -> relu (-> GAP
 * by the block) in training mode: every parameter gradient (conv weights and
 * biases, gammas, betas) and the input gradient of gf_block_backward vs central
 * differences of <features, u> from gf_block_forward in training mode (float,
 * step 1e-2 on inputs kept off the ReLU kinks; tolerance 2e-3 relative to the
 * largest gradient of that tensor); eval mode after a few training forwards
 * uses the running statistics (vs a double reference of the block with the
 * running statistics read back); gf_block_tangent refuses BN. */
#include <stdint.h>
#include <unistd.h>
#include "block.h"
#include "ops_bn.h"
#include "testutil.h"

#define TOL 1e-5
enum { GUARD = 64 };
static const float SENTINEL = 1234.5f;

typedef struct shape { int n, c, hw; } shape;

static size_t count(const shape *s) { return (size_t)s->n * s->c * s->hw; }
static size_t idx(const shape *s, int i, int k, int j) { return ((size_t)i * s->c + k) * s->hw + j; }

/* ---------------- double reference ---------------- */

static void ref_stats(const shape *s, const double *x, double *mean, double *var) {
    double M = (double)s->n * s->hw;
    for (int k = 0; k < s->c; k++) {
        double sum = 0, q = 0;
        for (int i = 0; i < s->n; i++) for (int j = 0; j < s->hw; j++) sum += x[idx(s, i, k, j)];
        mean[k] = sum / M;
        for (int i = 0; i < s->n; i++) for (int j = 0; j < s->hw; j++) {
            double d = x[idx(s, i, k, j)] - mean[k];
            q += d * d;
        }
        var[k] = q / M;
    }
}

/* y = (x - mean) / sqrt(var + eps) * gamma + beta with the given statistics. */
static void ref_affine(const shape *s, const double *x, const double *g, const double *b, const double *mean,
                       const double *var, double eps, double *y) {
    for (int i = 0; i < s->n; i++)
        for (int k = 0; k < s->c; k++)
            for (int j = 0; j < s->hw; j++) {
                size_t t = idx(s, i, k, j);
                y[t] = (x[t] - mean[k]) / sqrt(var[k] + eps) * g[k] + b[k];
            }
}

static double ref_train_loss(const shape *s, const double *x, const double *g, const double *b, double eps,
                             const double *u, double *y, double *mean, double *var) {
    ref_stats(s, x, mean, var);
    ref_affine(s, x, g, b, mean, var, eps, y);
    double L = 0;
    for (size_t t = 0; t < count(s); t++) L += y[t] * u[t];
    return L;
}

/* Closed-form backward with the given statistics; train adds the terms through
 * the batch statistics. Also the tolerance scales of each output. */
static void ref_backward(const shape *s, const double *x, const double *dy, const double *g, const double *mean,
                         const double *var, double eps, int train, double *dx, double *dg, double *db,
                         double *sdx, double *sdg, double *sdb) {
    double M = (double)s->n * s->hw;
    for (int k = 0; k < s->c; k++) {
        double is = 1 / sqrt(var[k] + eps), a = 0, b = 0, aa = 0, ab = 0;
        for (int i = 0; i < s->n; i++) for (int j = 0; j < s->hw; j++) {
            size_t t = idx(s, i, k, j);
            double xh = (x[t] - mean[k]) * is;
            a += dy[t] * xh; b += dy[t];
            aa += fabs(dy[t] * xh); ab += fabs(dy[t]);
        }
        dg[k] = a; db[k] = b; sdg[k] = 1 + aa; sdb[k] = 1 + ab;
        for (int i = 0; i < s->n; i++) for (int j = 0; j < s->hw; j++) {
            size_t t = idx(s, i, k, j);
            double xh = (x[t] - mean[k]) * is;
            if (train) {
                dx[t] = g[k] * is / M * (M * dy[t] - b - xh * a);
                sdx[t] = 1 + fabs(g[k]) * is * (fabs(dy[t]) + ab / M + fabs(xh) * aa / M);
            } else {
                dx[t] = g[k] * is * dy[t];
                sdx[t] = 1 + fabs(dx[t]);
            }
        }
    }
}

/* ---------------- helpers ---------------- */

static double *to_d(const float *a, size_t n) {
    double *r = malloc((n ? n : 1) * sizeof *r);
    for (size_t i = 0; i < n; i++) r[i] = a[i];
    return r;
}

/* An output buffer of n floats followed by GUARD sentinels. */
static cl_mem guarded(gf_ctx *ctx, size_t n) {
    float *h = malloc((n + GUARD) * sizeof *h);
    for (size_t i = 0; i < n; i++) h[i] = 0;
    for (size_t i = n; i < n + GUARD; i++) h[i] = SENTINEL;
    cl_mem m = test_upload(ctx, h, n + GUARD);
    free(h);
    return m;
}

static cl_mem guarded_from(gf_ctx *ctx, const float *v, size_t n) {
    cl_mem m = guarded(ctx, n);
    REQUIRE_OK(ctx, gf_buf_write(ctx, m, 0, n * sizeof(float), v));
    return m;
}

static void check_guard(gf_ctx *ctx, cl_mem m, size_t n, const char *what) {
    float g[GUARD];
    REQUIRE_OK(ctx, gf_buf_read(ctx, m, n * sizeof(float), sizeof g, g));
    int ok = 1;
    for (int i = 0; i < GUARD; i++) ok &= g[i] == SENTINEL;
    CHECK(ok, "%s: written past its %zu floats", what, n);
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

static void check_scaled_d(const char *what, const double *got, const double *ref, const double *scale, size_t n) {
    double worst = 0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(got[i] - ref[i]) / (TOL * scale[i]);
        if (!(e <= worst)) { worst = e; wi = i; }
    }
    CHECK(worst <= 1.0, "%s: index %zu got %.12g want %.12g (scale %.3g, err %.3g x tolerance)", what, wi,
          n ? got[wi] : 0.0, n ? ref[wi] : 0.0, n ? scale[wi] : 0.0, worst);
}

static int same_bits(gf_ctx *ctx, cl_mem a, cl_mem b, size_t n) {
    float *x = dl(ctx, a, n), *y = dl(ctx, b, n);
    int same = memcmp(x, y, n * sizeof *x) == 0;
    free(x); free(y);
    return same;
}

/* ---------------- one shape, every op check ---------------- */

typedef struct opcase {
    shape s;
    double offset;         /* common offset added to x (two-pass variance check) */
    float eps, momentum;
} opcase;

static void run_ops(gf_ctx *ctx, const opcase *oc, uint64_t seed) {
    const shape *s = &oc->s;
    const int C = s->c;
    const size_t T = count(s);
    const double eps = oc->eps, mom = oc->momentum, M = (double)s->n * s->hw;
    char tag[128], what[192];
    snprintf(tag, sizeof tag, "bn n=%d c=%d hw=%d offset=%g eps=%g momentum=%g", s->n, C, s->hw, oc->offset,
             (double)oc->eps, (double)oc->momentum);
    test_rng r;
    test_rng_seed(&r, seed);
    float *x = malloc(T * sizeof *x), *dy = malloc(T * sizeof *dy);
    float *ga = malloc(C * sizeof *ga), *be = malloc(C * sizeof *be), *rm = malloc(C * sizeof *rm),
          *rv = malloc(C * sizeof *rv);
    for (int i = 0; i < s->n; i++)
        for (int k = 0; k < C; k++)
            for (int j = 0; j < s->hw; j++)   /* a different mean and spread per channel */
                x[idx(s, i, k, j)] = (float)(oc->offset + 0.3 * k + (0.5 + 0.2 * k) * test_uniform(&r, -1, 1));
    test_fill(&r, dy, T, -1, 1);
    test_fill(&r, ga, C, -1.5, 1.5);
    test_fill(&r, be, C, -1, 1);
    test_fill(&r, rm, C, -0.5, 0.5);
    test_fill(&r, rv, C, 0.5, 2);
    double *xd = to_d(x, T), *dyd = to_d(dy, T), *gd = to_d(ga, C), *bd = to_d(be, C);
    double *mean = malloc(C * sizeof *mean), *var = malloc(C * sizeof *var);
    double *yr = malloc(T * sizeof *yr), *sy = malloc(T * sizeof *sy), *sc = malloc(C * sizeof *sc);
    double *rc = malloc(C * sizeof *rc), *rc2 = malloc(C * sizeof *rc2);
    ref_stats(s, xd, mean, var);
    ref_affine(s, xd, gd, bd, mean, var, eps, yr);
    for (int i = 0; i < s->n; i++)
        for (int k = 0; k < C; k++)
            for (int j = 0; j < s->hw; j++) {
                size_t t = idx(s, i, k, j);
                sy[t] = 1 + fabs(ga[k]) * (1 + fabs((xd[t] - mean[k]) / sqrt(var[k] + eps))) + fabs(be[k]);
            }

    cl_mem bx = test_upload(ctx, x, T), bdy = test_upload(ctx, dy, T), bg = test_upload(ctx, ga, C),
           bb = test_upload(ctx, be, C);
    cl_mem brm = guarded_from(ctx, rm, C), brv = guarded_from(ctx, rv, C), by = guarded(ctx, T),
           bsm = guarded(ctx, C), bsi = guarded(ctx, C);

    /* training forward: y, saved statistics, one running update */
    REQUIRE_OK(ctx, gf_bn_train_forward(ctx, s->n, C, s->hw, bx, bg, bb, oc->eps, oc->momentum, brm, brv, by, bsm, bsi));
    float *y = dl(ctx, by, T), *o1 = dl(ctx, bsm, C), *o2 = dl(ctx, bsi, C);
    snprintf(what, sizeof what, "%s: train forward y", tag);
    check_scaled(what, y, yr, sy, T);
    for (int k = 0; k < C; k++) { rc[k] = 1 / sqrt(var[k] + eps); sc[k] = rc[k]; }
    snprintf(what, sizeof what, "%s: saved invstd", tag);
    check_scaled(what, o2, rc, sc, C);
    for (int k = 0; k < C; k++) sc[k] = 1 + fabs(mean[k]);
    snprintf(what, sizeof what, "%s: saved mean", tag);
    check_scaled(what, o1, mean, sc, C);
    free(o1); free(o2);
    /* running statistics after 3 updates with the same batch */
    REQUIRE_OK(ctx, gf_bn_train_forward(ctx, s->n, C, s->hw, bx, bg, bb, oc->eps, oc->momentum, brm, brv, by, bsm, bsi));
    REQUIRE_OK(ctx, gf_bn_train_forward(ctx, s->n, C, s->hw, bx, bg, bb, oc->eps, oc->momentum, brm, brv, by, bsm, bsi));
    for (int k = 0; k < C; k++) {
        rc[k] = rm[k]; rc2[k] = rv[k];
        for (int rep = 0; rep < 3; rep++) {
            rc[k] = (1 - mom) * rc[k] + mom * mean[k];
            rc2[k] = (1 - mom) * rc2[k] + mom * var[k] * M / (M - 1);   /* unbiased */
        }
    }
    o1 = dl(ctx, brm, C); o2 = dl(ctx, brv, C);
    for (int k = 0; k < C; k++) sc[k] = 1 + fabs(rc[k]);
    snprintf(what, sizeof what, "%s: running mean after 3 updates", tag);
    check_scaled(what, o1, rc, sc, C);
    for (int k = 0; k < C; k++) sc[k] = 1 + fabs(rc2[k]);
    snprintf(what, sizeof what, "%s: running var after 3 updates (unbiased)", tag);
    check_scaled(what, o2, rc2, sc, C);
    free(o1); free(o2);
    /* determinism: a fresh run gives the same bits; no running stats = same y */
    {
        cl_mem rm2 = test_upload(ctx, rm, C), rv2 = test_upload(ctx, rv, C), y2 = test_alloc(ctx, T),
               m2 = test_alloc(ctx, C), i2 = test_alloc(ctx, C), rm3 = test_upload(ctx, rm, C),
               rv3 = test_upload(ctx, rv, C);
        REQUIRE_OK(ctx, gf_bn_train_forward(ctx, s->n, C, s->hw, bx, bg, bb, oc->eps, oc->momentum, rm2, rv2, y2, m2, i2));
        CHECK(same_bits(ctx, by, y2, T) && same_bits(ctx, bsm, m2, C) && same_bits(ctx, bsi, i2, C),
              "%s: training forward not bitwise reproducible", tag);
        for (int rep = 0; rep < 3; rep++)
            REQUIRE_OK(ctx, gf_bn_train_forward(ctx, s->n, C, s->hw, bx, bg, bb, oc->eps, oc->momentum, rm3, rv3, y2,
                                                m2, i2));
        CHECK(same_bits(ctx, brm, rm3, C) && same_bits(ctx, brv, rv3, C), "%s: running stats not bitwise reproducible", tag);
        REQUIRE_OK(ctx, gf_bn_train_forward(ctx, s->n, C, s->hw, bx, bg, bb, oc->eps, oc->momentum, NULL, NULL, y2, NULL, NULL));
        CHECK(same_bits(ctx, by, y2, T), "%s: training forward without running/saved stats differs", tag);
        gf_buf_release(&rm2); gf_buf_release(&rv2); gf_buf_release(&y2); gf_buf_release(&m2); gf_buf_release(&i2);
        gf_buf_release(&rm3); gf_buf_release(&rv3);
    }

    /* training backward vs the closed form */
    double *dxr = malloc(T * sizeof *dxr), *sdx = malloc(T * sizeof *sdx), *dgr = malloc(C * sizeof *dgr),
           *dbr = malloc(C * sizeof *dbr), *sdg = malloc(C * sizeof *sdg), *sdb = malloc(C * sizeof *sdb);
    ref_backward(s, xd, dyd, gd, mean, var, eps, 1, dxr, dgr, dbr, sdx, sdg, sdb);
    cl_mem bdx = guarded(ctx, T), bdg = guarded(ctx, C), bdb = guarded(ctx, C);
    REQUIRE_OK(ctx, gf_bn_train_backward(ctx, s->n, C, s->hw, bx, bdy, bg, bsm, bsi, bdx, bdg, bdb, 0));
    float *dx = dl(ctx, bdx, T), *dg = dl(ctx, bdg, C), *db = dl(ctx, bdb, C);
    snprintf(what, sizeof what, "%s: train backward dx", tag);
    check_scaled(what, dx, dxr, sdx, T);
    snprintf(what, sizeof what, "%s: train backward dgamma", tag);
    check_scaled(what, dg, dgr, sdg, C);
    snprintf(what, sizeof what, "%s: train backward dbeta", tag);
    check_scaled(what, db, dbr, sdb, C);

    /* vs central differences of the double reference of <y, u>, u = dy: every
     * x (through the batch statistics), every gamma and beta */
    {
        const double h = 1e-4;
        double *xp = to_d(x, T), *gp = to_d(ga, C), *bp = to_d(be, C), *yt = malloc(T * sizeof *yt);
        double *mt = malloc(C * sizeof *mt), *vt = malloc(C * sizeof *vt), *fdx = malloc(T * sizeof *fdx);
        double fdg[64], fdb[64];
        for (size_t t = 0; t < T; t++) {
            xp[t] = xd[t] + h;
            double Lp = ref_train_loss(s, xp, gp, bp, eps, dyd, yt, mt, vt);
            xp[t] = xd[t] - h;
            double Lm = ref_train_loss(s, xp, gp, bp, eps, dyd, yt, mt, vt);
            xp[t] = xd[t];
            fdx[t] = (Lp - Lm) / (2 * h);
        }
        for (int k = 0; k < C && k < 64; k++) {
            gp[k] = gd[k] + h;
            double Lp = ref_train_loss(s, xp, gp, bp, eps, dyd, yt, mt, vt);
            gp[k] = gd[k] - h;
            double Lm = ref_train_loss(s, xp, gp, bp, eps, dyd, yt, mt, vt);
            gp[k] = gd[k];
            fdg[k] = (Lp - Lm) / (2 * h);
            bp[k] = bd[k] + h;
            Lp = ref_train_loss(s, xp, gp, bp, eps, dyd, yt, mt, vt);
            bp[k] = bd[k] - h;
            Lm = ref_train_loss(s, xp, gp, bp, eps, dyd, yt, mt, vt);
            bp[k] = bd[k];
            fdb[k] = (Lp - Lm) / (2 * h);
        }
        snprintf(what, sizeof what, "%s: train backward dx vs FD", tag);
        check_scaled(what, dx, fdx, sdx, T);
        snprintf(what, sizeof what, "%s: FD dx vs closed form (reference)", tag);
        check_scaled_d(what, fdx, dxr, sdx, T);
        snprintf(what, sizeof what, "%s: train backward dgamma vs FD", tag);
        check_scaled(what, dg, fdg, sdg, C < 64 ? C : 64);
        snprintf(what, sizeof what, "%s: train backward dbeta vs FD", tag);
        check_scaled(what, db, fdb, sdb, C < 64 ? C : 64);
        free(xp); free(gp); free(bp); free(yt); free(mt); free(vt); free(fdx);
    }
    /* determinism, optional outputs, accumulate */
    {
        cl_mem dx2 = test_alloc(ctx, T), dg2 = test_alloc(ctx, C), db2 = test_alloc(ctx, C);
        REQUIRE_OK(ctx, gf_bn_train_backward(ctx, s->n, C, s->hw, bx, bdy, bg, bsm, bsi, dx2, dg2, db2, 0));
        CHECK(same_bits(ctx, bdx, dx2, T) && same_bits(ctx, bdg, dg2, C) && same_bits(ctx, bdb, db2, C),
              "%s: training backward not bitwise reproducible", tag);
        REQUIRE_OK(ctx, gf_buf_zero(ctx, dx2, 0, T * sizeof(float)));
        REQUIRE_OK(ctx, gf_bn_train_backward(ctx, s->n, C, s->hw, bx, bdy, bg, bsm, bsi, dx2, NULL, NULL, 1));
        CHECK(same_bits(ctx, bdx, dx2, T), "%s: dx alone differs from dx with the parameter gradients", tag);
        REQUIRE_OK(ctx, gf_buf_zero(ctx, dg2, 0, C * sizeof(float)));
        REQUIRE_OK(ctx, gf_buf_zero(ctx, db2, 0, C * sizeof(float)));
        REQUIRE_OK(ctx, gf_bn_train_backward(ctx, s->n, C, s->hw, bx, bdy, bg, bsm, bsi, NULL, dg2, db2, 0));
        CHECK(same_bits(ctx, bdg, dg2, C) && same_bits(ctx, bdb, db2, C),
              "%s: parameter gradients without dx differ", tag);
        /* accumulate adds to dgamma/dbeta (old values: the gradients themselves) and overwrites dx */
        REQUIRE_OK(ctx, gf_buf_write(ctx, dx2, 0, T * sizeof(float), x));
        REQUIRE_OK(ctx, gf_bn_train_backward(ctx, s->n, C, s->hw, bx, bdy, bg, bsm, bsi, dx2, dg2, db2, 1));
        float *a = dl(ctx, dg2, C), *b = dl(ctx, db2, C);
        for (int k = 0; k < C; k++) { rc[k] = 2 * dgr[k]; rc2[k] = 2 * dbr[k]; sc[k] = 2 * sdg[k]; }
        snprintf(what, sizeof what, "%s: accumulated dgamma", tag);
        check_scaled(what, a, rc, sc, C);
        for (int k = 0; k < C; k++) sc[k] = 2 * sdb[k];
        snprintf(what, sizeof what, "%s: accumulated dbeta", tag);
        check_scaled(what, b, rc2, sc, C);
        CHECK(same_bits(ctx, bdx, dx2, T), "%s: dx with accumulate = 1 is not overwritten", tag);
        free(a); free(b);
        gf_buf_release(&dx2); gf_buf_release(&dg2); gf_buf_release(&db2);
    }
    check_guard(ctx, by, T, "y");
    check_guard(ctx, bsm, C, "saved mean");
    check_guard(ctx, bsi, C, "saved invstd");
    check_guard(ctx, brm, C, "running mean");
    check_guard(ctx, brv, C, "running var");
    check_guard(ctx, bdx, T, "dx");
    check_guard(ctx, bdg, C, "dgamma");
    check_guard(ctx, bdb, C, "dbeta");
    free(y); free(dx); free(dg); free(db);

    /* eval mode with the initial running statistics */
    {
        double *rmd = to_d(rm, C), *rvd = to_d(rv, C);
        REQUIRE_OK(ctx, gf_buf_write(ctx, brm, 0, C * sizeof(float), rm));
        REQUIRE_OK(ctx, gf_buf_write(ctx, brv, 0, C * sizeof(float), rv));
        ref_affine(s, xd, gd, bd, rmd, rvd, eps, yr);
        for (int i = 0; i < s->n; i++)
            for (int k = 0; k < C; k++)
                for (int j = 0; j < s->hw; j++) {
                    size_t t = idx(s, i, k, j);
                    sy[t] = 1 + fabs(ga[k]) * (1 + fabs((xd[t] - rmd[k]) / sqrt(rvd[k] + eps))) + fabs(be[k]);
                }
        REQUIRE_OK(ctx, gf_bn_eval_forward(ctx, s->n, C, s->hw, bx, bg, bb, oc->eps, brm, brv, by));
        y = dl(ctx, by, T);
        snprintf(what, sizeof what, "%s: eval forward", tag);
        check_scaled(what, y, yr, sy, T);
        cl_mem inplace = test_upload(ctx, x, T);
        REQUIRE_OK(ctx, gf_bn_eval_forward(ctx, s->n, C, s->hw, inplace, bg, bb, oc->eps, brm, brv, inplace));
        CHECK(same_bits(ctx, by, inplace, T), "%s: in-place eval forward differs", tag);
        gf_buf_release(&inplace);
        ref_backward(s, xd, dyd, gd, rmd, rvd, eps, 0, dxr, dgr, dbr, sdx, sdg, sdb);
        REQUIRE_OK(ctx, gf_bn_eval_backward(ctx, s->n, C, s->hw, bx, bdy, bg, oc->eps, brm, brv, bdx, bdg, bdb, 0));
        dx = dl(ctx, bdx, T); dg = dl(ctx, bdg, C); db = dl(ctx, bdb, C);
        snprintf(what, sizeof what, "%s: eval backward dx", tag);
        check_scaled(what, dx, dxr, sdx, T);
        snprintf(what, sizeof what, "%s: eval backward dgamma", tag);
        check_scaled(what, dg, dgr, sdg, C);
        snprintf(what, sizeof what, "%s: eval backward dbeta", tag);
        check_scaled(what, db, dbr, sdb, C);
        /* adjoint identity on the device: J v = eval forward of v with mean 0 and
         * beta 0 (the linear part); <J v, u> = <v, J^T u>, u = dy */
        float *v = malloc(T * sizeof *v);
        test_fill(&r, v, T, -1, 1);
        cl_mem bv = test_upload(ctx, v, T), zero = test_alloc(ctx, C), jv = test_alloc(ctx, T);
        REQUIRE_OK(ctx, gf_bn_eval_forward(ctx, s->n, C, s->hw, bv, bg, zero, oc->eps, zero, brv, jv));
        float *jvh = dl(ctx, jv, T);
        double lhs = 0, rhs = 0, mag = 0;
        for (size_t t = 0; t < T; t++) {
            lhs += (double)jvh[t] * dy[t];
            rhs += (double)v[t] * dx[t];
            mag += fabs((double)v[t] * dx[t]);
        }
        CHECK(fabs(lhs - rhs) <= TOL * (1 + mag), "%s: eval adjoint <Jv,u> %.9g vs <v,J^T u> %.9g", tag, lhs, rhs);
        REQUIRE_OK(ctx, gf_bn_eval_backward(ctx, s->n, C, s->hw, bx, bdy, bg, oc->eps, brm, brv, jv, NULL, NULL, 0));
        CHECK(same_bits(ctx, bdx, jv, T), "%s: eval dx alone differs", tag);
        check_guard(ctx, by, T, "eval y");
        check_guard(ctx, bdx, T, "eval dx");
        check_guard(ctx, bdg, C, "eval dgamma");
        free(v); free(jvh); free(rmd); free(rvd); free(y); free(dx); free(dg); free(db);
        gf_buf_release(&bv); gf_buf_release(&zero); gf_buf_release(&jv);
    }

    cl_mem *bufs[] = {&bx, &bdy, &bg, &bb, &brm, &brv, &by, &bsm, &bsi, &bdx, &bdg, &bdb};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) gf_buf_release(bufs[i]);
    free(x); free(dy); free(ga); free(be); free(rm); free(rv); free(xd); free(dyd); free(gd); free(bd);
    free(mean); free(var); free(yr); free(sy); free(sc); free(rc); free(rc2);
    free(dxr); free(sdx); free(dgr); free(dbr); free(sdg); free(sdb);
}

/* Bad arguments are refused with GF_ERR_USAGE before anything is enqueued. */
static void usage_errors(gf_ctx *ctx) {
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

int main(void) {
    gf_ctx *ctx = test_ctx();
    const opcase cases[] = {
        {{4, 3, 5}, 0, 1e-5f, 0.1f},
        {{1, 2, 9}, 0, 1e-5f, 0.1f},      /* n = 1, hw > 1 */
        {{6, 4, 1}, 0, 1e-5f, 0.1f},      /* hw = 1 (BatchNorm1d) */
        {{2, 1, 1}, 0, 1e-3f, 0.3f},      /* the smallest training batch, c = 1 */
        {{3, 1, 13}, 0, 1e-5f, 0.1f},     /* c = 1 */
        {{5, 3, 300}, 0, 1e-5f, 0.1f},    /* n*hw = 1500 > 256 lanes */
        {{64, 2, 49}, 0, 1e-4f, 0.05f},   /* batch 64, 7x7 maps */
        {{300, 2, 1}, 0, 1e-5f, 0.1f},    /* hw = 1 with n > 256 */
        {{7, 3, 37}, 1000, 1e-5f, 0.1f},  /* large common offset: E[x^2]-E[x]^2 would lose the variance */
    };
    uint64_t seed = 11;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_ops(ctx, &cases[i], seed++);
    usage_errors(ctx);
    torch_compare(ctx);
    gf_ctx_free(ctx);
    return test_finish("test_bn");
}
