#include <stdlib.h>
#include "ops_util.h"
#include "selftest.h"

gf_status gf_axpby(gf_ctx *ctx, size_t n, float a, cl_mem x, float b, cl_mem y) {
    if (!n) return GF_OK;
    cl_kernel k;
    GF_TRY(gf_kernel(ctx, "util", NULL, "gf_axpby", &k));
    GF_TRY(gf_args(ctx, k, "gf_axpby", "ifmfm", (int)n, (double)a, x, (double)b, y));
    return gf_launch1(ctx, k, "gf_axpby", n);
}

gf_status gf_add(gf_ctx *ctx, size_t n, cl_mem x, cl_mem y, cl_mem z) {
    if (!n) return GF_OK;
    cl_kernel k;
    GF_TRY(gf_kernel(ctx, "util", NULL, "gf_add", &k));
    GF_TRY(gf_args(ctx, k, "gf_add", "immm", (int)n, x, y, z));
    return gf_launch1(ctx, k, "gf_add", n);
}

gf_status gf_fill(gf_ctx *ctx, size_t n, float v, cl_mem y) {
    if (!n) return GF_OK;
    cl_kernel k;
    GF_TRY(gf_kernel(ctx, "util", NULL, "gf_fill", &k));
    GF_TRY(gf_args(ctx, k, "gf_fill", "ifm", (int)n, (double)v, y));
    return gf_launch1(ctx, k, "gf_fill", n);
}

gf_status gf_gather_rows(gf_ctx *ctx, cl_mem src, cl_mem idx, int row, int n, cl_mem dst) {
    if (n <= 0 || row <= 0) return GF_OK;
    cl_kernel k;
    GF_TRY(gf_kernel(ctx, "util", NULL, "gf_gather_rows", &k));
    GF_TRY(gf_args(ctx, k, "gf_gather_rows", "mmiim", src, idx, row, n, dst));
    return gf_launch1(ctx, k, "gf_gather_rows", (size_t)n * (size_t)row);
}

void gf_selftest_util(gf_ctx *ctx, gf_check_list *l) {
    enum { N = 1000 };
    float x[N], y[N], got[N];
    double ref[N];
    for (int i = 0; i < N; i++) { x[i] = (float)((i * 37 % 101) - 50) / 7.0f; y[i] = (float)((i * 13 % 89) - 44) / 3.0f; }
    for (int i = 0; i < N; i++) ref[i] = 0.75 * x[i] + -1.25 * y[i];
    cl_mem dx = NULL, dy = NULL;
    double ma = 1e30, mr = 1e30;
    if (gf_buf_create_from(ctx, sizeof x, x, "selftest x", &dx) == GF_OK &&
        gf_buf_create_from(ctx, sizeof y, y, "selftest y", &dy) == GF_OK &&
        gf_axpby(ctx, N, 0.75f, dx, -1.25f, dy) == GF_OK &&
        gf_buf_read(ctx, dy, 0, sizeof got, got) == GF_OK)
        gf_compare(got, ref, N, &ma, &mr);
    gf_check_add(l, "util axpby", ma, mr, 1e-6);
    gf_buf_release(&dx);
    gf_buf_release(&dy);
}
