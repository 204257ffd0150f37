/* Benchmarks behind `gradfeat bench` (host/report/bench_ops.c). Only the public types,
 * so that the CLI can include it. */
#ifndef GF_BENCH_H
#define GF_BENCH_H
#include <stdio.h>
#include "gradfeat.h"

/* `gradfeat bench ops`: conv forward, tangent (both terms) and backward
 * (gx+gW+gb) at ResNet-18 layer4 shapes (batch, 512->512, 7x7, 3x3, pad 1)
 * next to plain gf_gemm at the same GEMM sizes; prints a table to out. */
gf_status gf_bench_ops(gf_ctx *ctx, int batch, int reps, FILE *out);
/* `gradfeat bench linearized`: workload W1 (ResNet-18 layer4, cached features of
 * a size x size image, batch, classes): ms and GFLOP/s of one linearized
 * (`full`) training step and one fine-tuning step (host/report/bench_linearized.c). */
gf_status gf_bench_linearized(gf_ctx *ctx, int batch, int size, int classes, int reps, FILE *out);
/* `gradfeat bench trunk`: ms per batch, images/s and GFLOP/s of the forward pass of the model in
 * model_path at its input size, on random input (host/report/bench_trunk.c). */
gf_status gf_bench_trunk(gf_ctx *ctx, const char *model_path, int batch, int reps, FILE *out);
/* The device's limits, measured once per bench run (host/report/bench_roofline.c): the SGEMM peak through
 * gf_gemm (square, n = 1024 doubling until one launch takes 50 ms, at most 8192) and the bandwidth of a stream
 * kernel (y = a x + y) or the buffer copy, whichever is faster, over 2 x 64 MiB. What does not fit the device or the budget is NAN, not an error. */
typedef struct gf_roofline {
    double gemm_gflops;         /* best GFLOP/s of one gf_gemm launch (NAN: not measured) */
    int gemm_n;                 /* at this n x n x n */
    double bw_gbs;              /* GB/s (1e9 bytes) of the stream kernel (NAN: not measured) */
    int bw_mib;                 /* MiB per buffer */
    int bw_copy;                /* the driver's buffer copy was faster than the stream kernel */
} gf_roofline;
gf_status gf_bench_roofline(gf_ctx *ctx, gf_roofline *r);
/* "roofline: SGEMM peak ... GFLOP/s (...), memory bandwidth ... GB/s (...); ridge ... FLOP/byte" */
void gf_bench_roofline_print(const gf_roofline *r, FILE *out);
/* 100 x gflops / the SGEMM peak (NAN when not measured) */
double gf_bench_peak_pct(const gf_roofline *r, double gflops);
#endif
