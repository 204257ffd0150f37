/* Elementwise helpers (cl/util.cl): used by every op family for residual adds
 * (the tangent of an add is the add of the tangents), scaling and fills. */
#ifndef GF_OPS_UTIL_H
#define GF_OPS_UTIL_H
#include "gf_internal.h"

/* y = a*x + b*y over n floats; b == 0 does not read y (it may be uninitialised). */
gf_status gf_axpby(gf_ctx *ctx, size_t n, float a, cl_mem x, float b, cl_mem y);
/* z = x + y over n floats (z may alias x or y). */
gf_status gf_add(gf_ctx *ctx, size_t n, cl_mem x, cl_mem y, cl_mem z);
/* y[i] = v over n floats. */
gf_status gf_fill(gf_ctx *ctx, size_t n, float v, cl_mem y);
/* dst[i, :] = src[idx[i], :], n rows of `row` floats; idx int32 on the device. */
gf_status gf_gather_rows(gf_ctx *ctx, cl_mem src, cl_mem idx, int row, int n, cl_mem dst);
/* Half-precision cache storage (--cache-dtype f16). dst[off .. off+n) = src[0 .. n) rounded to IEEE half
 * (to nearest, ties to even); dst holds 2-byte halves, off and n count halves. */
gf_status gf_store_half(gf_ctx *ctx, cl_mem src, size_t n, cl_mem dst, size_t off);
/* gf_gather_rows from a half buffer: dst[i, :] = float(src[idx[i], :]), rows of `row` halves. */
gf_status gf_gather_rows_half(gf_ctx *ctx, cl_mem src, cl_mem idx, int row, int n, cl_mem dst);
/* The plain-C reference of both kernels (IEEE 754 binary16; NaN stays NaN, overflow gives inf): also
 * what the host-resident tier of an f16 activation cache rounds with, so both tiers give the same values. */
uint16_t gf_f32_to_f16(float x);
float gf_f16_to_f32(uint16_t h);
#endif
