/* gradfeat bench ops|linearized|trunk [--batch B] [--reps N] [--size S] [--classes C] [--model M] [--device SEL] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include "bench.h"
#include "cli.h"

static const cli_doc doc = {
    "gradfeat bench ops [--batch B] [--reps N] [--device SEL] [--verbose]\n"
    "       gradfeat bench linearized [--batch B] [--size S] [--classes C] [--reps N] [--max-device-mem SIZE]\n"
    "       gradfeat bench trunk --model MODEL.safetensors [--batch B] [--reps N]",
    "ops: time the conv launchers at ResNet-18 layer4 shapes (B x 512 x 7 x 7, 3x3 kernel, pad 1):\n"
    "forward, tangent (both terms) and backward (gx + gW + gb), next to plain SGEMM (gf_gemm)\n"
    "at the same GEMM sizes on the same device, with the ratio GEMM time / op time.\n"
    "linearized: workload W1, one linearized (`full`) training step and one fine-tuning step of\n"
    "ResNet-18 layer4 on cached features of an S x S image.\n"
    "trunk: images/s of the model's forward pass (the executor train's trunk pass uses) at the\n"
    "model's own input size, on random input; tools/bench_trunk.sh runs the PyTorch peer beside it.\n"
    "Each measures the device's limits once (a roofline line: the SGEMM peak of gf_gemm on\n"
    "square matrices and the memory bandwidth of a stream kernel or buffer copy) and prints each\n"
    "op's or pass's GFLOP/s as a % of that peak; then the peak device memory gradfeat held and the\n"
    "peak host memory (ru_maxrss).\n"
    "Under mpirun -n K, linearized splits each step's batch over the ranks (the gradient summed as\n"
    "train sums it) and trunk runs a batch on every rank at once; both then time rank 0 alone while\n"
    "the others sleep, and print the job's images/s, the 1-rank figure and the parallel efficiency\n"
    "(job / (K x 1 rank)). ops refuses to run under mpirun.\n"
    "The benchmark sizes have their own GRADFEAT_BENCH_* twins, so that GRADFEAT_BATCH set for\n"
    "train does not change a benchmark.\n",
    "  gradfeat bench ops\n"
    "  gradfeat bench linearized --batch 64 --max-device-mem 4G\n"
    "  GRADFEAT_BENCH_REPS=20 gradfeat bench linearized --device gpu\n"
    "  gradfeat bench trunk --model models/emotion/emotion.safetensors --batch 64\n"};

int cmd_bench(int argc, char **argv) {
    const char *device = NULL, *model = NULL;
    int verbose = 0, batch = 64, reps = 5, size = 224, classes = 20;
    uint64_t budget = 0;
    const cli_opt defs[] = {
        {"batch", 'b', CLI_POS, &batch, "B", "images per launch (default 64)", "GRADFEAT_BENCH_BATCH", NULL, 0},
        {"reps", 'r', CLI_POS, &reps, "N", "timed launches after one warm-up (default 5)", "GRADFEAT_BENCH_REPS", NULL, 0},
        {"size", 's', CLI_POS, &size, "S", "linearized: input image size (default 224: 7x7 layer4 maps)", "GRADFEAT_BENCH_SIZE", NULL, 0},
        {"classes", 'c', CLI_POS, &classes, "C", "linearized: classes (default 20)", "GRADFEAT_BENCH_CLASSES", NULL, 0},
        {"model", 'm', CLI_STR, &model, "FILE", "trunk: the model (.safetensors)", "GRADFEAT_BENCH_MODEL", NULL, 0},
        {"max-device-mem", 0, CLI_SIZE, &budget, "SIZE", "device memory budget for gradfeat's buffers, e.g. 4G (allocations beyond it fail)", NULL, NULL, 0},
        {"device", 'd', CLI_STR, &device, "SEL", "OpenCL device: index, P:D, cpu, gpu or part of a name", NULL, NULL, 1},
        {"verbose", 'v', CLI_FLAG, &verbose, NULL, "more messages", NULL, NULL, 0},
    };
    cli_opts o;
    int rc = cli_opts_parse(&o, "bench", defs, sizeof defs / sizeof defs[0], &doc, argc, argv);
    if (rc) { cli_opts_free(&o); return rc == CLI_HELP ? 0 : rc; }
    int a = o.first_arg;
    if (a >= argc) rc = cli_usage_error("bench", "missing what to bench (ops, linearized or trunk)");
    int linearized = !rc && !strcmp(argv[a], "linearized"), trunk = !rc && !strcmp(argv[a], "trunk");
    if (!rc && !linearized && !trunk && strcmp(argv[a], "ops"))
        rc = cli_usage_error("bench", "unknown benchmark '%s' (known: ops, linearized, trunk)", argv[a]);
    if (!rc && trunk && !model) rc = cli_usage_error("bench", "bench trunk needs --model MODEL.safetensors");
    if (!rc && linearized && size < 16) rc = cli_opts_fail(&o, "size", "must be at least 16 (the cached layer3 maps are size/16)");
    if (!rc && a + 1 < argc) rc = cli_usage_error("bench", "unexpected argument '%s'", argv[a + 1]);
    if (batch > 1000000 || reps > 1000000 || size > 100000 || classes > 1000000)
        rc = rc ? rc : cli_usage_error("bench", "--batch, --reps, --size or --classes is too large");
    gf_ctx *ctx = NULL;
    if (!rc) rc = cli_ctx_open_budget(device, verbose, budget, &ctx);
    if (rc) { cli_opts_free(&o); return rc; }
    gf_status st = linearized ? gf_bench_linearized(ctx, batch, size, classes, reps, stdout)
                 : trunk      ? gf_bench_trunk(ctx, model, batch, reps, stdout)
                              : gf_bench_ops(ctx, batch, reps, stdout);
    uint64_t peak;
    gf_ctx_memory(ctx, NULL, &peak);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    if (st == GF_OK) {
        printf("peak device memory held by gradfeat: %.1f MiB%s\n", peak / 1048576.0,
               budget ? " (within the --max-device-mem budget)" : "");
        /* ru_maxrss is in KiB on Linux; it includes the OpenCL driver's host memory (on PoCL the device buffers) */
        printf("peak host memory (max RSS): %.1f MiB\n", ru.ru_maxrss / 1024.0);
        char blas[512];   /* CPU devices run their GEMMs there: forced AVX2 kernels halve them on AVX-512 CPUs */
        cli_host_blas_describe(blas, sizeof blas);
        printf("host BLAS: %s\n", blas);
    }
    rc = st == GF_OK ? 0 : cli_fail(ctx, st);
    gf_ctx_free(ctx);
    cli_opts_free(&o);
    return rc;
}
