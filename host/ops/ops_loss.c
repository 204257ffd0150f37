/* Losses with device-side reduction; kernels in cl/loss.cl. */
#include "ops_loss.h"
#include "selftest.h"
#include <limits.h>
#include <math.h>
#include <stdlib.h>

static gf_status loss_check(gf_ctx *ctx, int B, int K, size_t off, const char *what) {
    if (B <= 0 || K <= 0 || (size_t)B * (size_t)K > UINT_MAX || off > UINT_MAX - 2)
        return gf_fail(ctx, GF_ERR_USAGE, "%s: bad shape B=%d K=%d (offset %zu)", what, B, K, off);
    return GF_OK;
}

gf_status gf_softmax_xent_over(gf_ctx *ctx, int B, int K, cl_mem logits, cl_mem labels, cl_mem grad,
                               cl_mem out, size_t off, int accumulate, int mean_over) {
    GF_TRY(loss_check(ctx, B, K, off, "softmax cross-entropy"));
    cl_kernel k;
    size_t L;
    GF_TRY(gf_kernel(ctx, "loss", NULL, "softmax_xent", &k));
    GF_TRY(gf_pow2_local(ctx, k, 256, (size_t)B, &L));
    /* Without grad the argument still needs a valid buffer: logits, never written. */
    GF_TRY(gf_args(ctx, k, "softmax_xent", "mmmmiiiifuLL", logits, labels, grad ? grad : logits, out,
                   B, K, grad != NULL, accumulate != 0, 1.0 / (mean_over > 0 ? mean_over : B), (unsigned)off, L, L));
    return gf_launch(ctx, k, "softmax_xent", 1, &L, &L);
}

gf_status gf_softmax_xent(gf_ctx *ctx, int B, int K, cl_mem logits, cl_mem labels, cl_mem grad,
                          cl_mem out, size_t off, int accumulate) {
    return gf_softmax_xent_over(ctx, B, K, logits, labels, grad, out, off, accumulate, 0);
}

gf_status gf_sigmoid_bce_over(gf_ctx *ctx, int B, int K, cl_mem logits, cl_mem targets, cl_mem grad,
                              cl_mem out, size_t off, int accumulate, int per_sample, int mean_over) {
    GF_TRY(loss_check(ctx, B, K, off, "sigmoid BCE"));
    size_t n = (size_t)B * (size_t)K;
    cl_kernel k;
    size_t L;
    GF_TRY(gf_kernel(ctx, "loss", NULL, "sigmoid_bce", &k));
    GF_TRY(gf_pow2_local(ctx, k, 256, n, &L));
    int rows = mean_over > 0 ? mean_over : B;
    double inv = per_sample ? 1.0 / rows : 1.0 / ((double)rows * K);
    GF_TRY(gf_args(ctx, k, "sigmoid_bce", "mmmmuiifuLL", logits, targets, grad ? grad : logits, out,
                   (unsigned)n, grad != NULL, accumulate != 0, inv, (unsigned)off, L, L));
    return gf_launch(ctx, k, "sigmoid_bce", 1, &L, &L);
}

gf_status gf_sigmoid_bce(gf_ctx *ctx, int B, int K, cl_mem logits, cl_mem targets, cl_mem grad,
                         cl_mem out, size_t off, int accumulate, int per_sample) {
    return gf_sigmoid_bce_over(ctx, B, K, logits, targets, grad, out, off, accumulate, per_sample, 0);
}

gf_status gf_top1_count(gf_ctx *ctx, int B, int K, cl_mem logits, cl_mem labels,
                        cl_mem out, size_t off, int accumulate) {
    GF_TRY(loss_check(ctx, B, K, off, "top-1 count"));
    cl_kernel k;
    size_t L;
    GF_TRY(gf_kernel(ctx, "loss", NULL, "top1_count", &k));
    GF_TRY(gf_pow2_local(ctx, k, 256, (size_t)B, &L));
    GF_TRY(gf_args(ctx, k, "top1_count", "mmmiiiuLL", logits, labels, out, B, K, accumulate != 0,
                   (unsigned)off, L, L));
    return gf_launch(ctx, k, "top1_count", 1, &L, &L);
}

/* ---- self-test: both losses at B = 7, K = 5 vs double references ---- */

static gf_status selftest_loss(gf_ctx *ctx, gf_check_list *l) {
    enum { B = 7, K = 5, N = B * K };
    float z[N], t[N], g[N], o[2];
    int y[B];
    double rg[N], rl[2];
    for (int i = 0; i < N; i++) {
        z[i] = (float)(((i * 29) % 31) * 0.4 - 6.0);
        t[i] = (float)((i * 7) % 3 == 0);
    }
    for (int r = 0; r < B; r++) y[r] = (r * 3) % K;
    cl_mem bz = NULL, by = NULL, bt = NULL, bg = NULL, bo = NULL;
    gf_status st = gf_buf_create_from(ctx, sizeof z, z, "loss selftest logits", &bz);
    if (!st) st = gf_buf_create_from(ctx, sizeof y, y, "loss selftest labels", &by);
    if (!st) st = gf_buf_create_from(ctx, sizeof t, t, "loss selftest targets", &bt);
    if (!st) st = gf_buf_create(ctx, sizeof g, "loss selftest grad", &bg);
    if (!st) st = gf_buf_create(ctx, sizeof o, "loss selftest out", &bo);
    /* Softmax cross-entropy. */
    double loss = 0;
    for (int r = 0; r < B && !st; r++) {
        double m = z[r * K], s = 0;
        for (int k = 0; k < K; k++) m = fmax(m, z[r * K + k]);
        for (int k = 0; k < K; k++) s += exp(z[r * K + k] - m);
        loss += (m + log(s) - z[r * K + y[r]]) / B;
        for (int k = 0; k < K; k++) rg[r * K + k] = (exp(z[r * K + k] - m) / s - (k == y[r])) / B;
    }
    rl[0] = loss;
    double la, lr, ga, gr;
    if (!st) st = gf_softmax_xent(ctx, B, K, bz, by, bg, bo, 0, 0);
    if (!st) st = gf_buf_read(ctx, bo, 0, sizeof o, o);
    if (!st) st = gf_buf_read(ctx, bg, 0, sizeof g, g);
    if (!st) {
        gf_compare(o, rl, 1, &la, &lr);
        gf_compare(g, rg, N, &ga, &gr);
        gf_check_add(l, "softmax xent loss", la, lr, 1e-5);
        gf_check_add(l, "softmax xent gradient", ga, gr, 1e-6);
    }
    /* Sigmoid BCE, mean over all elements. */
    loss = 0;
    for (int i = 0; i < N; i++) {
        double zi = z[i];
        loss += (fmax(zi, 0) - zi * t[i] + log1p(exp(-fabs(zi)))) / N;
        rg[i] = (1 / (1 + exp(-zi)) - t[i]) / N;
    }
    rl[0] = loss;
    if (!st) st = gf_sigmoid_bce(ctx, B, K, bz, bt, bg, bo, 0, 0, 0);
    if (!st) st = gf_buf_read(ctx, bo, 0, sizeof o, o);
    if (!st) st = gf_buf_read(ctx, bg, 0, sizeof g, g);
    if (!st) {
        gf_compare(o, rl, 1, &la, &lr);
        gf_compare(g, rg, N, &ga, &gr);
        gf_check_add(l, "sigmoid bce loss", la, lr, 1e-5);
        gf_check_add(l, "sigmoid bce gradient", ga, gr, 1e-6);
    }
    gf_buf_release(&bz);
    gf_buf_release(&by);
    gf_buf_release(&bt);
    gf_buf_release(&bg);
    gf_buf_release(&bo);
    return st;
}

void gf_selftest_loss(gf_ctx *ctx, gf_check_list *l) {
    if (selftest_loss(ctx, l) != GF_OK) gf_check_add(l, "loss (could not run)", INFINITY, INFINITY, 0);
}
