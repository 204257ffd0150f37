/* Optimiser updates and gradient norms on the device; kernels in cl/optim.cl. */
#include "ops_optim.h"
#include "selftest.h"
#include <limits.h>
#include <math.h>
#include <stdlib.h>

static gf_status optim_n(gf_ctx *ctx, size_t n, const char *what) {
    if (n > UINT_MAX)
        return gf_fail(ctx, GF_ERR_USAGE, "%s: %zu parameters exceed the 32-bit index range", what, n);
    return GF_OK;
}

gf_status gf_sgd_step(gf_ctx *ctx, const gf_sgd_opts *o, size_t n, cl_mem p, cl_mem g, cl_mem v,
                      cl_mem ref, const gf_clip *clip) {
    GF_TRY(optim_n(ctx, n, "SGD step"));
    if (o->momentum != 0.0f && !v)
        return gf_fail(ctx, GF_ERR_USAGE, "SGD step: momentum %g needs a momentum buffer", o->momentum);
    if (n == 0) return GF_OK;
    cl_kernel k;
    GF_TRY(gf_kernel(ctx, "optim", NULL, "sgd_step", &k));
    int has_v = o->momentum != 0.0f;
    /* Unused buffer arguments get p: never read when their flag is 0. */
    GF_TRY(gf_args(ctx, k, "sgd_step", "mmmmmuiiiffff", p, g, has_v ? v : p, ref ? ref : p,
                   clip ? clip->sqnorm : p, (unsigned)n, has_v, ref != NULL, clip != NULL,
                   (double)o->lr, (double)o->momentum, (double)o->weight_decay,
                   clip ? (double)clip->max_norm : 0.0));
    return gf_launch1(ctx, k, "sgd_step", n);
}

gf_status gf_adam_step(gf_ctx *ctx, const gf_adam_opts *o, long step, size_t n, cl_mem p, cl_mem g,
                       cl_mem m, cl_mem v, cl_mem ref, const gf_clip *clip) {
    GF_TRY(optim_n(ctx, n, "Adam step"));
    if (step < 1) return gf_fail(ctx, GF_ERR_USAGE, "Adam step: step count %ld must start at 1", step);
    if (n == 0) return GF_OK;
    /* Bias corrections in double on the host, as PyTorch computes them in Python floats. */
    double bc1 = 1.0 - pow(o->beta1, (double)step), bc2 = 1.0 - pow(o->beta2, (double)step);
    cl_kernel k;
    GF_TRY(gf_kernel(ctx, "optim", NULL, "adam_step", &k));
    GF_TRY(gf_args(ctx, k, "adam_step", "mmmmmmuiifffffff", p, g, m, v, ref ? ref : p,
                   clip ? clip->sqnorm : p, (unsigned)n, ref != NULL, clip != NULL,
                   o->lr / bc1, (double)o->beta1, (double)o->beta2, (double)o->eps,
                   (double)o->weight_decay, sqrt(bc2), clip ? (double)clip->max_norm : 0.0));
    return gf_launch1(ctx, k, "adam_step", n);
}

gf_status gf_grad_sqnorm(gf_ctx *ctx, size_t n, cl_mem g, cl_mem out, size_t off, int accumulate) {
    GF_TRY(optim_n(ctx, n, "gradient norm"));
    if (off > UINT_MAX) return gf_fail(ctx, GF_ERR_USAGE, "gradient norm: offset %zu too large", off);
    cl_kernel kp, kf;
    size_t Lp, Lf;
    GF_TRY(gf_kernel(ctx, "optim", NULL, "sqnorm_partial", &kp));
    GF_TRY(gf_kernel(ctx, "optim", NULL, "sqnorm_final", &kf));
    GF_TRY(gf_pow2_local(ctx, kp, 256, 0, &Lp));
    GF_TRY(gf_pow2_local(ctx, kf, 256, 0, &Lf));
    /* G chunks of at least 4 elements per lane, at most 256 chunks: a function of
     * n and the device only, so the summation order is reproducible. */
    size_t G = (n + Lp * 4 - 1) / (Lp * 4);
    if (G > 256) G = 256;
    if (G < 1) G = 1;
    size_t chunk = (n + G - 1) / G;
    cl_mem part;
    GF_TRY(gf_scratch(ctx, GF_OPTIM_SLOT, G * sizeof(float), &part));
    GF_TRY(gf_args(ctx, kp, "sqnorm_partial", "mmuuL", g, part, (unsigned)n, (unsigned)chunk, Lp));
    size_t gl = G * Lp;
    GF_TRY(gf_launch(ctx, kp, "sqnorm_partial", 1, &gl, &Lp));
    GF_TRY(gf_args(ctx, kf, "sqnorm_final", "mmuuiL", part, out, (unsigned)G, (unsigned)off,
                   accumulate != 0, Lf));
    return gf_launch(ctx, kf, "sqnorm_final", 1, &Lf, &Lf);
}

gf_status gf_grad_clip(gf_ctx *ctx, size_t n, cl_mem g, const gf_clip *clip) {
    GF_TRY(optim_n(ctx, n, "gradient clip"));
    if (n == 0) return GF_OK;
    cl_kernel k;
    GF_TRY(gf_kernel(ctx, "optim", NULL, "clip_apply", &k));
    GF_TRY(gf_args(ctx, k, "clip_apply", "mmuf", g, clip->sqnorm, (unsigned)n, (double)clip->max_norm));
    return gf_launch1(ctx, k, "clip_apply", n);
}

/* ---- self-test: 5 steps of SGD and Adam (clipped, decaying toward ref) ---- */

static gf_status selftest_optim(gf_ctx *ctx, gf_check_list *l) {
    enum { N = 257, STEPS = 5 };
    float p0[N], g[STEPS][N], ref[N], got[N];
    double rp[N], rv[N], rm[N], gs[N];
    for (int i = 0; i < N; i++) {
        p0[i] = (float)(((i * 17) % 23) * 0.1 - 1.1);
        ref[i] = (float)(((i * 5) % 7) * 0.05);
        for (int s = 0; s < STEPS; s++) g[s][i] = (float)((((i + 3 * s) * 13) % 19) * 0.2 - 1.8);
    }
    cl_mem bp = NULL, bg = NULL, bm = NULL, bv = NULL, br = NULL, bn = NULL;
    gf_status st = gf_buf_create(ctx, sizeof p0, "optim selftest p", &bp);
    if (!st) st = gf_buf_create(ctx, sizeof p0, "optim selftest g", &bg);
    if (!st) st = gf_buf_create(ctx, sizeof p0, "optim selftest m", &bm);
    if (!st) st = gf_buf_create(ctx, sizeof p0, "optim selftest v", &bv);
    if (!st) st = gf_buf_create_from(ctx, sizeof ref, ref, "optim selftest ref", &br);
    if (!st) st = gf_buf_create(ctx, sizeof(float), "optim selftest norm", &bn);
    const double max_norm = 5.0;
    gf_clip clip = {bn, (float)max_norm};
    for (int opt = 0; opt < 2 && !st; opt++) {
        gf_sgd_opts so = {0.1f, 0.9f, 0.01f};
        gf_adam_opts ao = {0.01f, 0.5f, 0.999f, 1e-8f, 0.01f};
        st = gf_buf_write(ctx, bp, 0, sizeof p0, p0);
        if (!st) st = gf_buf_zero(ctx, bm, 0, sizeof p0);
        if (!st) st = gf_buf_zero(ctx, bv, 0, sizeof p0);
        for (int i = 0; i < N; i++) { rp[i] = p0[i]; rm[i] = rv[i] = 0; }
        for (int s = 0; s < STEPS && !st; s++) {
            double sq = 0;
            for (int i = 0; i < N; i++) sq += (double)g[s][i] * g[s][i];
            double c = fmin(1.0, max_norm / (sqrt(sq) + 1e-6));
            for (int i = 0; i < N; i++) gs[i] = c * g[s][i] + (opt ? ao.weight_decay : so.weight_decay) * (rp[i] - ref[i]);
            if (opt == 0) {
                for (int i = 0; i < N; i++) {
                    rv[i] = so.momentum * rv[i] + gs[i];
                    rp[i] -= so.lr * rv[i];
                }
            } else {
                double bc1 = 1 - pow(ao.beta1, s + 1), bc2 = 1 - pow(ao.beta2, s + 1);
                for (int i = 0; i < N; i++) {
                    rm[i] = ao.beta1 * rm[i] + (1 - ao.beta1) * gs[i];
                    rv[i] = ao.beta2 * rv[i] + (1 - ao.beta2) * gs[i] * gs[i];
                    rp[i] -= ao.lr / bc1 * rm[i] / (sqrt(rv[i]) / sqrt(bc2) + ao.eps);
                }
            }
            st = gf_buf_write(ctx, bg, 0, sizeof p0, g[s]);
            if (!st) st = gf_grad_sqnorm(ctx, N, bg, bn, 0, 0);
            if (!st) st = opt == 0 ? gf_sgd_step(ctx, &so, N, bp, bg, bv, br, &clip)
                                   : gf_adam_step(ctx, &ao, s + 1, N, bp, bg, bm, bv, br, &clip);
        }
        if (!st) st = gf_buf_read(ctx, bp, 0, sizeof got, got);
        if (!st) {
            double ma, mr;
            gf_compare(got, rp, N, &ma, &mr);
            gf_check_add(l, opt == 0 ? "optim sgd 5 steps"
                                     : "optim adam 5 steps", ma, mr, 1e-5);
        }
    }
    gf_buf_release(&bp);
    gf_buf_release(&bg);
    gf_buf_release(&bm);
    gf_buf_release(&bv);
    gf_buf_release(&br);
    gf_buf_release(&bn);
    return st;
}

void gf_selftest_optim(gf_ctx *ctx, gf_check_list *l) {
    if (selftest_optim(ctx, l) != GF_OK) gf_check_add(l, "optim (could not run)", INFINITY, INFINITY, 0);
}
