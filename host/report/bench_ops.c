/* `gradfeat bench ops`: throughput of the conv launchers at ResNet-18 layer4
 * shapes (batch B, 512 -> 512 channels, 7x7, 3x3 kernel, pad 1) next to plain
 * gf_gemm at the same GEMM sizes on the same device. Each case is launched once
 * to warm up, then `reps` times, interleaved with the other cases, each launch
 * between two gf_ctx_finish calls; best and mean per launch are reported. The conv launchers also run with
 * each algorithm forced (direct, Winograd F(2x2, 3x3), F(4x4, 3x3)), and both Winograd tilings with W declared fixed
 * (its filter transforms kept between launches, as θ̄'s in gradient/full), interleaved the same way. */
#include <clblast_c.h>
#include <math.h>
#include <stdlib.h>
#include "bench.h"
#include "ops_affine.h"

/* host/runtime/gemm.c: fd 1 points at stderr during a CLBlast call (CLBlast prints build logs to stdout).
 * Declared here to keep the shared gf_internal.h untouched; move there when convenient. */
int gf_clblast_quiet_begin(void);
void gf_clblast_quiet_end(int saved);

typedef struct bench_bufs {
    cl_mem x, W, b, Wt, bt, t, y, g, gx, gW, gb;
    cl_mem A, B, C;        /* plain-GEMM operands (own buffers, not the conv scratch) */
    cl_mem Ot, Ob;         /* outputs of the NT and TN GEMMs, so that A, B, C keep their values */
} bench_bufs;

enum { B_FWD, B_TAN, B_BWD, B_NN, B_NT, B_TN, B_BATCHED, B_CONVGEMM,
       B_FWD_D, B_TAN_D, B_BWD_D, B_FWD_W, B_TAN_W, B_BWD_W, B_FWD_K, B_TAN_K, B_BWD_K,
       B_FWD_4, B_TAN_4, B_BWD_4, B_FWD_K4, B_TAN_K4, B_BWD_K4,
       B_COUNT };   /* _D, _W, _4: direct, Winograd F(2x2, 3x3), F(4x4, 3x3) forced; _K, _K4: Winograd with W's
                       transforms kept */

typedef struct bench_run {
    gf_ctx *ctx;
    gf_conv_desc d;
    bench_bufs m;
    size_t M, N, K;        /* forward GEMM: M = c_out, N = batch*P, K = c_in*kh*kw */
    gf_conv_fixed fixed[2];   /* W's kept transforms (the _K and _K4 cases) */
} bench_run;

static gf_status bench_once(bench_run *r, int what) {
    gf_ctx *ctx = r->ctx;
    bench_bufs *m = &r->m;
    const gf_conv_desc *d = &r->d;
    if (what >= B_FWD_D) {   /* the conv launchers with the algorithm forced (gf_conv_desc.algo) */
        gf_conv_desc f = r->d;
        int op = (what - B_FWD_D) % 3, group = (what - B_FWD_D) / 3;   /* D, W, K, 4, K4 */
        f.algo = group == 0 ? GF_CONV_ALGO_DIRECT : group < 3 ? GF_CONV_ALGO_WINOGRAD : GF_CONV_ALGO_WINOGRAD4;
        if (group == 2 || group == 4) f.fixed = &r->fixed[group == 4];   /* made by the warm-up, reused after */
        if (op == 0) return gf_conv2d_forward(ctx, &f, m->x, m->W, m->b, m->y);
        if (op == 1) return gf_conv2d_tangent(ctx, &f, m->x, m->Wt, m->bt, m->W, m->t, m->y);
        return gf_conv2d_backward(ctx, &f, m->x, m->W, m->g, m->gx, m->gW, m->gb, 0);
    }
    size_t M = r->M, N = r->N, K = r->K;
    switch (what) {
    case B_FWD: return gf_conv2d_forward(ctx, d, m->x, m->W, m->b, m->y);
    case B_TAN: return gf_conv2d_tangent(ctx, d, m->x, m->Wt, m->bt, m->W, m->t, m->y);
    case B_BWD: return gf_conv2d_backward(ctx, d, m->x, m->W, m->g, m->gx, m->gW, m->gb, 0);
    case B_NN: return gf_gemm(ctx, 0, 0, M, N, K, 1.0f, m->A, 0, K, m->B, 0, N, 0.0f, m->C, 0, N);
    case B_NT:   /* weight gradient shape: [M, N] x [K, N]^T */
        return gf_gemm(ctx, 0, 1, M, K, N, 1.0f, m->C, 0, N, m->B, 0, N, 0.0f, m->Ot, 0, K);
    case B_TN:   /* input gradient shape: [M, K]^T x [M, N] */
        return gf_gemm(ctx, 1, 0, K, N, M, 1.0f, m->A, 0, K, m->C, 0, N, 0.0f, m->Ob, 0, N);
    case B_BATCHED: {   /* alternative: one GEMM per image with a shared (stride 0) weight */
        size_t P = (size_t)d->h_out * d->w_out;
        return gf_gemm_batched(ctx, 0, 0, M, P, K, 1.0f, m->A, 0, K, 0, m->B, 0, P, K * P,
                               0.0f, m->Ob, 0, P, M * P, (size_t)d->n);
    }
    case B_CONVGEMM: {
        int quiet = gf_clblast_quiet_begin();
        CLBlastStatusCode s = CLBlastSconvgemm(CLBlastKernelModeCrossCorrelation, (size_t)d->c_in, (size_t)d->h_in,
                                               (size_t)d->w_in, (size_t)d->kh, (size_t)d->kw, (size_t)d->pad_top,
                                               (size_t)d->pad_left, (size_t)d->stride_h, (size_t)d->stride_w,
                                               (size_t)d->dil_h, (size_t)d->dil_w, (size_t)d->c_out, (size_t)d->n,
                                               m->x, 0, m->W, 0, m->y, 0, &ctx->queue, NULL);
        gf_clblast_quiet_end(quiet);
        return s == CLBlastSuccess ? GF_OK : gf_clblast_fail(ctx, s, "CLBlastSconvgemm");
    }
    }
    return gf_fail(ctx, GF_ERR_INTERNAL, "bench: unknown case %d", what);
}

/* One timed launch: gf_ctx_finish before and after. */
static gf_status bench_time1(bench_run *r, int what, double *sec) {
    GF_TRY(gf_ctx_finish(r->ctx));
    double t0 = gf_now();
    GF_TRY(bench_once(r, what));
    GF_TRY(gf_ctx_finish(r->ctx));
    *sec = gf_now() - t0;
    return GF_OK;
}

static gf_status upload_random(gf_ctx *ctx, size_t n, unsigned seed, const char *what, cl_mem *out) {
    float *h = malloc(n * sizeof(float));
    if (!h) return gf_fail(ctx, GF_ERR_MEMORY, "bench: out of host memory for %s", what);
    uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 3;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        h[i] = (float)((double)(s >> 40) / 8388608.0 - 1.0) * 0.1f;
    }
    gf_status st = gf_buf_create_from(ctx, n * sizeof(float), h, what, out);
    free(h);
    return st;
}

static gf_status bench_setup(bench_run *r) {
    gf_ctx *ctx = r->ctx;
    const gf_conv_desc *d = &r->d;
    size_t nx = (size_t)d->n * d->c_in * d->h_in * d->w_in;
    size_t ny = (size_t)d->n * d->c_out * d->h_out * d->w_out;
    size_t nw = r->M * r->K, nc = (size_t)d->c_out;
    bench_bufs *m = &r->m;
    GF_TRY(upload_random(ctx, nx, 1, "bench x", &m->x));
    GF_TRY(upload_random(ctx, nx, 2, "bench t_in", &m->t));
    GF_TRY(upload_random(ctx, nw, 3, "bench W", &m->W));
    GF_TRY(upload_random(ctx, nw, 4, "bench Wt", &m->Wt));
    GF_TRY(upload_random(ctx, nc, 5, "bench b", &m->b));
    GF_TRY(upload_random(ctx, nc, 6, "bench bt", &m->bt));
    GF_TRY(upload_random(ctx, ny, 7, "bench g", &m->g));
    GF_TRY(gf_buf_create(ctx, ny * sizeof(float), "bench y", &m->y));
    GF_TRY(gf_buf_create(ctx, nx * sizeof(float), "bench gx", &m->gx));
    GF_TRY(gf_buf_create(ctx, nw * sizeof(float), "bench gW", &m->gW));
    GF_TRY(gf_buf_create(ctx, nc * sizeof(float), "bench gb", &m->gb));
    GF_TRY(upload_random(ctx, r->M * r->K, 8, "bench GEMM A", &m->A));
    GF_TRY(upload_random(ctx, r->K * r->N, 9, "bench GEMM B", &m->B));
    GF_TRY(upload_random(ctx, r->M * r->N, 10, "bench GEMM C", &m->C));
    GF_TRY(gf_buf_create(ctx, r->M * r->K * sizeof(float), "bench GEMM NT output", &m->Ot));
    GF_TRY(gf_buf_create(ctx, r->K * r->N * sizeof(float), "bench GEMM TN output", &m->Ob));
    return GF_OK;
}

static void bench_free(bench_bufs *m) {
    cl_mem *all[] = {&m->x, &m->W, &m->b, &m->Wt, &m->bt, &m->t, &m->y, &m->g, &m->gx, &m->gW, &m->gb,
                     &m->A, &m->B, &m->C, &m->Ot, &m->Ob};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) gf_buf_release(all[i]);
}

static gf_status bench_body(bench_run *r, int reps, FILE *out) {
    gf_ctx *ctx = r->ctx;
    GF_TRY(bench_setup(r));
    /* One warm-up launch of each, then the cases interleaved rep by rep so that
     * load from other processes hits the conv and the plain GEMM alike; the
     * best (min) and mean time per launch are reported. */
    double t[B_COUNT], mean[B_COUNT];
    int ok[B_COUNT];
    for (int i = 0; i < B_COUNT; i++) {
        double sec;
        gf_status st = bench_time1(r, i, &sec);
        ok[i] = st == GF_OK;
        t[i] = INFINITY;
        mean[i] = 0;
        if (!ok[i]) {
            /* Sconvgemm is informational only: CLBlast supports it for some configurations */
            if (i != B_CONVGEMM) return st;
            fprintf(out, "note: CLBlast Sconvgemm failed here: %s\n", gf_ctx_last_error(ctx));
            t[i] = mean[i] = NAN;
        }
    }
    for (int rep = 0; rep < reps; rep++)
        for (int i = 0; i < B_COUNT; i++) {
            if (!ok[i]) continue;
            double sec;
            GF_TRY(bench_time1(r, i, &sec));
            if (sec < t[i]) t[i] = sec;
            mean[i] += sec / reps;
        }
    gf_roofline roof;   /* the device's limits, after the timed cases (their buffers stay allocated) */
    GF_TRY(gf_bench_roofline(ctx, &roof));
    double f1 = 2.0 * (double)r->M * (double)r->N * (double)r->K;   /* one GEMM of the conv */
    struct { const char *name; double flop, sec, gemm_sec; const char *gemm; } rows[] = {
        {"conv forward", f1, t[B_FWD], t[B_NN], "NN"},
        {"conv tangent (Wt*x + bt + W*t)", 2 * f1, t[B_TAN], 2 * t[B_NN], "2x NN"},
        {"conv backward (gx + gW + gb)", 2 * f1, t[B_BWD], t[B_NT] + t[B_TN], "NT + TN"},
    };
    gf_bench_roofline_print(&roof, out);
    fprintf(out, "%-32s %10s %10s %10s %10s %8s %7s\n", "op (best of reps)", "ms", "GFLOP/s", "GEMM ms", "GEMM GF/s", "ratio",
            "peak %");
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        fprintf(out, "%-32s %10.2f %10.2f %10.2f %10.2f %8.2f %7.1f   (GEMM: %s)\n", rows[i].name, rows[i].sec * 1e3,
                rows[i].flop / rows[i].sec * 1e-9, rows[i].gemm_sec * 1e3, rows[i].flop / rows[i].gemm_sec * 1e-9,
                rows[i].gemm_sec / rows[i].sec, gf_bench_peak_pct(&roof, rows[i].flop / rows[i].sec * 1e-9), rows[i].gemm);
    fprintf(out, "peak %% = GFLOP/s / the SGEMM peak above\n");
    fprintf(out, "mean ms per launch: forward %.2f, tangent %.2f, backward %.2f; GEMM NN %.2f, NT %.2f, TN %.2f\n",
            mean[B_FWD] * 1e3, mean[B_TAN] * 1e3, mean[B_BWD] * 1e3, mean[B_NN] * 1e3, mean[B_NT] * 1e3,
            mean[B_TN] * 1e3);
    fprintf(out, "\nplain gf_gemm (row-major) at the conv's GEMM sizes:\n");
    fprintf(out, "  NN %zux%zux%zu (forward)          %8.2f ms %10.2f GFLOP/s %6.1f %% of peak\n", r->M, r->N, r->K,
            t[B_NN] * 1e3, f1 / t[B_NN] * 1e-9, gf_bench_peak_pct(&roof, f1 / t[B_NN] * 1e-9));
    fprintf(out, "  NT %zux%zux%zu (weight gradient)  %8.2f ms %10.2f GFLOP/s %6.1f %% of peak\n", r->M, r->K, r->N,
            t[B_NT] * 1e3, f1 / t[B_NT] * 1e-9, gf_bench_peak_pct(&roof, f1 / t[B_NT] * 1e-9));
    fprintf(out, "  TN %zux%zux%zu (input gradient)   %8.2f ms %10.2f GFLOP/s %6.1f %% of peak\n", r->K, r->N, r->M,
            t[B_TN] * 1e3, f1 / t[B_TN] * 1e-9, gf_bench_peak_pct(&roof, f1 / t[B_TN] * 1e-9));
    static const char *const algo[4] = {"auto", "direct", "winograd", "winograd4"};
    int tile = gf_conv_uses_winograd(ctx, &r->d);
    fprintf(out, "\nconv algorithm (GRADFEAT_CONV_ALGO=%s; the rows above ran %s): direct (im2col + GEMM) vs\n"
            "Winograd F(2x2, 3x3) (W2) and F(4x4, 3x3) (W4), each forced, interleaved with the rest (best of reps);\n"
            "kept: Winograd with W's filter transforms kept between launches (W fixed, as θ̄ in gradient/full; Wt's\n"
            "still made each time):\n",
            algo[ctx->conv_algo], tile == 4 ? "Winograd F(4x4, 3x3)" : tile ? "Winograd F(2x2, 3x3)" : "direct");
    fprintf(out, "  %-34s %10s %8s %7s %8s %8s %7s %8s\n", "op", "direct ms", "W2 ms", "W2 / D", "W2 kept", "W4 ms",
            "W4 / D", "W4 kept");
    static const char *const ops[3] = {"conv forward", "conv tangent (both terms)", "conv backward (gx by Winograd)"};
    for (int i = 0; i < 3; i++)
        fprintf(out, "  %-34s %10.2f %8.2f %7.2f %8.2f %8.2f %7.2f %8.2f\n", ops[i], t[B_FWD_D + i] * 1e3,
                t[B_FWD_W + i] * 1e3, t[B_FWD_W + i] / t[B_FWD_D + i], t[B_FWD_K + i] * 1e3, t[B_FWD_4 + i] * 1e3,
                t[B_FWD_4 + i] / t[B_FWD_D + i], t[B_FWD_K4 + i] * 1e3);
    fprintf(out, "alternatives for the forward (not used; for the record):\n");
    fprintf(out, "  strided-batched GEMM, one per image, shared W (stride 0): %8.2f ms %10.2f GFLOP/s\n",
            t[B_BATCHED] * 1e3, f1 / t[B_BATCHED] * 1e-9);
    fprintf(out, "  CLBlast Sconvgemm (whole conv):                            %8.2f ms %10.2f GFLOP/s\n",
            t[B_CONVGEMM] * 1e3, f1 / t[B_CONVGEMM] * 1e-9);
    return GF_OK;
}

gf_status gf_bench_ops(gf_ctx *ctx, int batch, int reps, FILE *out) {
    if (batch < 1 || reps < 1)
        return gf_fail(ctx, GF_ERR_USAGE, "bench ops: --batch (%d) and --reps (%d) must be >= 1", batch, reps);
    bench_run r = {0};
    r.ctx = ctx;
    GF_TRY(gf_conv_desc_simple(ctx, &r.d, batch, 512, 7, 7, 512, 3, 1, 1, 1, 1));
    r.M = (size_t)r.d.c_out;
    r.N = (size_t)batch * r.d.h_out * r.d.w_out;
    r.K = (size_t)r.d.c_in * r.d.kh * r.d.kw;
    const gf_device_info *di = gf_ctx_device(ctx);
    fprintf(out, "bench ops on %s (%s)\n", di->name, di->platform_name);
    fprintf(out, "conv 3x3, %d -> %d channels, %dx%d, pad 1, stride 1, batch %d (ResNet-18 layer4); %d reps after 1 warm-up\n",
            r.d.c_in, r.d.c_out, r.d.h_in, r.d.w_in, batch, reps);
#ifdef GF_HAVE_CBLAS
    int host = ctx->host_blas;
#else
    int host = 0;
#endif
    fprintf(out, "GEMM path (conv and plain alike): %s\n", host ? "host CBLAS on mapped buffers (GRADFEAT_HOST_BLAS=0 for CLBlast)"
                                                                : "CLBlast on the device");
    fprintf(out, "ratio = GEMM time / op time for the same FLOPs (goal >= 0.7)\n\n");
    gf_status st = bench_body(&r, reps, out);
    bench_free(&r.m);
    gf_conv_fixed_release(&r.fixed[0]);
    gf_conv_fixed_release(&r.fixed[1]);
    return st;
}
