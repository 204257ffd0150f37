/* Self-test registry: one function per kernel family, each adding rows that
 * compare the device with a plain-C reference at small shapes. */
#ifndef GF_SELFTEST_H
#define GF_SELFTEST_H
#include "gf_internal.h"

void gf_selftest_util(gf_ctx *ctx, gf_check_list *l);
void gf_selftest_gemm(gf_ctx *ctx, gf_check_list *l);
/* Non-affine op families (host/ops_act.c, ops_pool.c, ops_loss.c, ops_optim.c). */
void gf_selftest_act(gf_ctx *ctx, gf_check_list *l);
void gf_selftest_pool(gf_ctx *ctx, gf_check_list *l);
void gf_selftest_loss(gf_ctx *ctx, gf_check_list *l);
void gf_selftest_optim(gf_ctx *ctx, gf_check_list *l);
void gf_selftest_affine(gf_ctx *ctx, gf_check_list *l);   /* host/ops_affine.c */
#endif
