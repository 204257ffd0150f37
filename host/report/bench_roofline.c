/* The device's limits, measured once per `gradfeat bench` run, so that each bench can print how far from
 * them its ops are: the SGEMM peak through the project's GEMM entry (gf_gemm: CLBlast, or the host BLAS on
 * CPU devices) on square matrices, grown from 1024 until one launch takes 100 ms (or 8192), best of 3 after a
 * warm-up; and the memory bandwidth: the better of a stream kernel (gf_axpby, y = a x + y: 12 bytes per element)
 * and the driver's buffer copy (8 bytes per element), over two buffers of 64 MiB each (halved while the device
 * or the --max-device-mem budget refuses them), best of 5 launches each after a warm-up.
 * Not fitting is not an error: the bench then prints "not measured" and its own figures. */
#include <math.h>
#include <string.h>
#include "bench.h"
#include "gf_internal.h"
#include "ops_util.h"

static gf_status time_gemm(gf_ctx *ctx, size_t n, cl_mem a, cl_mem b, cl_mem c, double *sec) {
    GF_TRY(gf_ctx_finish(ctx));
    double t0 = gf_now();
    GF_TRY(gf_gemm(ctx, 0, 0, n, n, n, 1.0f, a, 0, n, b, 0, n, 0.0f, c, 0, n));
    GF_TRY(gf_ctx_finish(ctx));
    *sec = gf_now() - t0;
    return GF_OK;
}

static gf_status gemm_peak(gf_ctx *ctx, gf_roofline *r) {
    gf_status st = GF_OK;
    for (size_t n = 1024; n <= 8192 && st == GF_OK; n *= 2) {
        cl_mem a = NULL, b = NULL, c = NULL;
        size_t bytes = n * n * sizeof(float);
        st = gf_buf_create(ctx, bytes, "roofline GEMM A", &a);
        if (st == GF_OK) st = gf_buf_create(ctx, bytes, "roofline GEMM B", &b);
        if (st == GF_OK) st = gf_buf_create(ctx, bytes, "roofline GEMM C", &c);
        if (st == GF_OK) st = gf_fill(ctx, n * n, 0.5f, a);
        if (st == GF_OK) st = gf_fill(ctx, n * n, 0.25f, b);
        double sec = 0, best = INFINITY;
        if (st == GF_OK) st = time_gemm(ctx, n, a, b, c, &sec);     /* warm-up: kernel build, tuning */
        for (int rep = 0; rep < 3 && st == GF_OK; rep++) {
            st = time_gemm(ctx, n, a, b, c, &sec);
            if (sec < best) best = sec;
        }
        gf_buf_release(&a); gf_buf_release(&b); gf_buf_release(&c);
        if (st != GF_OK) break;
        double gf = 2.0 * (double)n * n * n / best * 1e-9;
        if (gf > r->gemm_gflops) { r->gemm_gflops = gf; r->gemm_n = (int)n; }
        if (best >= 0.1) break;
    }
    return r->gemm_gflops > 0 ? GF_OK : st;
}

static gf_status stream_bw(gf_ctx *ctx, gf_roofline *r) {
    gf_status st = GF_ERR_MEMORY;
    for (size_t n = (size_t)16 << 20; n >= ((size_t)1 << 20); n /= 2) {
        cl_mem x = NULL, y = NULL;
        st = gf_buf_create(ctx, n * sizeof(float), "roofline stream x", &x);
        if (st == GF_OK) st = gf_buf_create(ctx, n * sizeof(float), "roofline stream y", &y);
        if (st == GF_OK) st = gf_fill(ctx, n, 1.0f, x);
        if (st == GF_OK) st = gf_fill(ctx, n, 0.0f, y);
        double best[2] = {INFINITY, INFINITY};
        for (int rep = 0; rep < 12 && st == GF_OK; rep++) {   /* axpby and copy alternate; the first of each warms up */
            st = gf_ctx_finish(ctx);
            double t0 = gf_now();
            if (st == GF_OK) st = rep % 2 ? gf_buf_copy(ctx, x, 0, y, 0, n * sizeof(float)) : gf_axpby(ctx, n, 1e-3f, x, 1.0f, y);
            if (st == GF_OK) st = gf_ctx_finish(ctx);
            double sec = gf_now() - t0;
            if (rep > 1 && sec < best[rep % 2]) best[rep % 2] = sec;
        }
        gf_buf_release(&x); gf_buf_release(&y);
        if (st == GF_OK) {
            double axpby = 3.0 * n * sizeof(float) / best[0] * 1e-9, copy = 2.0 * n * sizeof(float) / best[1] * 1e-9;
            r->bw_gbs = axpby > copy ? axpby : copy;
            r->bw_copy = copy > axpby;
            r->bw_mib = (int)(n * sizeof(float) >> 20);
            return GF_OK;
        }
        if (st != GF_ERR_MEMORY) return st;
    }
    return st;
}

gf_status gf_bench_roofline(gf_ctx *ctx, gf_roofline *r) {
    memset(r, 0, sizeof *r);
    char saved[sizeof ctx->err];
    memcpy(saved, ctx->err, sizeof saved);
    gf_status st = gemm_peak(ctx, r);
    if (st == GF_OK || st == GF_ERR_MEMORY) st = stream_bw(ctx, r);
    if (st == GF_ERR_MEMORY) st = GF_OK;                  /* a budget too small: print what was measured */
    if (st == GF_OK) memcpy(ctx->err, saved, sizeof saved);
    if (!(r->gemm_gflops > 0)) r->gemm_gflops = NAN;
    if (!(r->bw_gbs > 0)) r->bw_gbs = NAN;
    return st;
}

void gf_bench_roofline_print(const gf_roofline *r, FILE *out) {
    char g[96], b[96];
    if (isnan(r->gemm_gflops)) snprintf(g, sizeof g, "SGEMM peak not measured (no room)");
    else snprintf(g, sizeof g, "SGEMM peak %.1f GFLOP/s (gf_gemm %dx%dx%d)", r->gemm_gflops, r->gemm_n, r->gemm_n, r->gemm_n);
    if (isnan(r->bw_gbs)) snprintf(b, sizeof b, "memory bandwidth not measured (no room)");
    else snprintf(b, sizeof b, "memory bandwidth %.1f GB/s (%s, 2 x %d MiB)", r->bw_gbs,
                  r->bw_copy ? "buffer copy" : "y = a x + y", r->bw_mib);
    fprintf(out, "roofline: %s, %s", g, b);
    if (!isnan(r->gemm_gflops) && !isnan(r->bw_gbs))
        fprintf(out, "; ridge %.1f FLOP/byte", r->gemm_gflops / r->bw_gbs);
    fprintf(out, "\n");
}

double gf_bench_peak_pct(const gf_roofline *r, double gflops) {
    return r && r->gemm_gflops > 0 ? 100.0 * gflops / r->gemm_gflops : NAN;
}
