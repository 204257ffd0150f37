/* Optimiser updates and gradient norms on the device; kernels in cl/optim.cl. */
#include "ops_optim.h"
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
