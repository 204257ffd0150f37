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
#endif
