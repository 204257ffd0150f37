#include <stdlib.h>
#include <string.h>
#include "ops_util.h"

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

/* The gathers' 2-D range: columns of a row along dimension 0 (a work-group of up to 64 of them), rows along 1 */
static gf_status launch_rows(gf_ctx *ctx, cl_kernel k, const char *kname, int row, int n) {
    size_t l0 = 1;
    GF_TRY(gf_pow2_local(ctx, k, 64, (size_t)row, &l0));
    size_t global[2] = {(size_t)row, (size_t)n}, local[2] = {l0, 1};
    return gf_launch(ctx, k, kname, 2, global, local);
}

gf_status gf_gather_rows(gf_ctx *ctx, cl_mem src, cl_mem idx, int row, int n, cl_mem dst) {
    if (n <= 0 || row <= 0) return GF_OK;
    cl_kernel k;
    GF_TRY(gf_kernel(ctx, "util", NULL, "gf_gather_rows", &k));
    GF_TRY(gf_args(ctx, k, "gf_gather_rows", "mmiim", src, idx, row, n, dst));
    return launch_rows(ctx, k, "gf_gather_rows", row, n);
}

gf_status gf_store_half(gf_ctx *ctx, cl_mem src, size_t n, cl_mem dst, size_t off) {
    cl_kernel k;
    GF_TRY(gf_kernel(ctx, "util", NULL, "gf_store_half", &k));
    /* n is an int in the kernel; callers store a batch at a time */
    if (n > (size_t)1 << 30) return gf_fail(ctx, GF_ERR_INTERNAL, "gf_store_half: %zu values in one call", n);
    if (!n) return GF_OK;
    GF_TRY(gf_args(ctx, k, "gf_store_half", "imzm", (int)n, src, off, dst));
    return gf_launch1(ctx, k, "gf_store_half", n);
}

gf_status gf_gather_rows_half(gf_ctx *ctx, cl_mem src, cl_mem idx, int row, int n, cl_mem dst) {
    if (n <= 0 || row <= 0) return GF_OK;
    cl_kernel k;
    GF_TRY(gf_kernel(ctx, "util", NULL, "gf_gather_rows_half", &k));
    GF_TRY(gf_args(ctx, k, "gf_gather_rows_half", "mmiim", src, idx, row, n, dst));
    return launch_rows(ctx, k, "gf_gather_rows_half", row, n);
}

uint16_t gf_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));   /* NaN, kept quiet */
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);  /* >= 65520 (65504 + half an ulp, a tie to even): inf */
    uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u;
    if (e >= 113) {                                            /* a normal half */
        uint32_t h = ((e - 112) << 10) | ((m >> 13) & 0x3ffu), rem = m & 0x1fffu;
        if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;   /* a carry into the exponent is right */
        return (uint16_t)(sign | h);
    }
    if (e < 102) return sign;                                  /* below 2^-25 (half the least subnormal): ±0 */
    int shift = 126 - (int)e;                                  /* 14..24: the value in units of 2^-24 is m >> shift */
    uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) q++;          /* 0x400 = the least normal: also right */
    return (uint16_t)(sign | q);
}

float gf_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, x;
    if (e == 31) x = sign | 0x7f800000u | (m << 13);
    else if (e) x = sign | ((e + 112) << 23) | (m << 13);
    else if (!m) x = sign;
    else {                                                      /* subnormal: normalise */
        e = 113;
        while (!(m & 0x400u)) { m <<= 1; e--; }
        x = sign | (e << 23) | ((m & 0x3ffu) << 13);
    }
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}
