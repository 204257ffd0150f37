/* Self-test registry (host/ops/selftest.c, `gradfeat selftest`): one function per kernel family, each
 * adding rows that compare the device with a plain-C reference at small shapes. */
#ifndef GF_SELFTEST_H
#define GF_SELFTEST_H
#include "gf_internal.h"

typedef struct gf_check_list { gf_check_row *rows; int n, cap; } gf_check_list;
void gf_check_add(gf_check_list *l, const char *name, double max_abs, double max_rel, double tol);
/* Compare device output (float) with a reference (double): combined error
 * |a-b| / (atol + rtol*|b|) style; returns max abs and max rel. */
void gf_compare(const float *got, const double *ref, size_t n, double *max_abs, double *max_rel);

void gf_selftest_util(gf_ctx *ctx, gf_check_list *l);     /* host/ops/ops_util.c */
void gf_selftest_gemm(gf_ctx *ctx, gf_check_list *l);     /* host/ops/selftest.c (runtime's GEMM) */
/* Rows "bn train forward", "bn running stats", "bn train backward", "bn eval forward",
 * "bn eval backward" (host/ops/ops_bn.c). */
void gf_selftest_bn(gf_ctx *ctx, gf_check_list *l);
/* Non-affine op families (host/ops/ops_act.c, ops_pool.c, ops_loss.c, ops_optim.c). */
void gf_selftest_act(gf_ctx *ctx, gf_check_list *l);
/* Rows "mul gate/elementwise forward/tangent/backward", "concat ...", "channel shuffle ...", "channel slice ..."
 * (host/ops/ops_merge.c). */
void gf_selftest_merge(gf_ctx *ctx, gf_check_list *l);
/* Rows "layernorm forward", "layernorm tangent/backward" (host/ops/ops_ln.c). */
void gf_selftest_ln(gf_ctx *ctx, gf_check_list *l);
void gf_selftest_pool(gf_ctx *ctx, gf_check_list *l);
void gf_selftest_loss(gf_ctx *ctx, gf_check_list *l);
void gf_selftest_optim(gf_ctx *ctx, gf_check_list *l);
/* Rows "conv forward/tangent/backward", "dwconv ...", "linear ...": small cases vs a double C
 * reference; |got-ref| <= tol*(1+|ref|) (host/ops/ops_affine.c). */
void gf_selftest_affine(gf_ctx *ctx, gf_check_list *l);
#endif
