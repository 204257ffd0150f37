/* gradfeat bench ops|linearized [--batch B] [--reps N] [--size S] [--classes C] [--device SEL] */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"
#include "cli.h"

static void help(void) {
    printf("usage: %s bench ops [--batch B] [--reps N] [--device SEL] [--verbose]\n"
           "       %s bench linearized [--batch B] [--size S] [--classes C] [--reps N] [--device SEL]\n\n"
           "ops: time the conv launchers at ResNet-18 layer4 shapes (B x 512 x 7 x 7, 3x3 kernel, pad 1):\n"
           "forward, tangent (both terms) and backward (gx + gW + gb), next to plain SGEMM (gf_gemm)\n"
           "at the same GEMM sizes on the same device, with the ratio GEMM time / op time.\n"
           "linearized: workload W1, one linearized (`full`) training step and one fine-tuning step of\n"
           "ResNet-18 layer4 on cached features of an S x S image.\n\n"
           "  -b, --batch B      images per launch (default 64)\n"
           "  -r, --reps N       timed launches after one warm-up (default 5)\n"
           "  -s, --size S       linearized: input image size (default 224: 7x7 layer4 maps)\n"
           "  -c, --classes C    linearized: classes (default 20)\n"
           "  --max-device-mem S device memory budget for gradfeat's buffers, e.g. 4G (allocations beyond it fail)\n"
           "  -d, --device SEL   device (env GRADFEAT_DEVICE)\n  -v, --verbose\n  -h, --help\n", cli_prog, cli_prog);
}

static int parse_pos(const char *s, const char *name, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 1 || v > 1000000) return cli_usage_error("bench", "%s must be a positive integer, got '%s'", name, s);
    *out = (int)v;
    return 0;
}

int cmd_bench(int argc, char **argv) {
    static const struct option opts[] = {{"batch", required_argument, 0, 'b'}, {"reps", required_argument, 0, 'r'},
                                         {"size", required_argument, 0, 's'}, {"classes", required_argument, 0, 'c'},
                                         {"device", required_argument, 0, 'd'}, {"verbose", no_argument, 0, 'v'},
                                         {"max-device-mem", required_argument, 0, 'm'},
                                         {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *device = NULL;
    int verbose = 0, batch = 64, reps = 5, size = 224, classes = 20, c, rc;
    uint64_t budget = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "b:r:s:c:d:vh", opts, NULL)) != -1) {
        if (c == 'b') { if ((rc = parse_pos(optarg, "--batch", &batch))) return rc; }
        else if (c == 's') { if ((rc = parse_pos(optarg, "--size", &size))) return rc; }
        else if (c == 'c') { if ((rc = parse_pos(optarg, "--classes", &classes))) return rc; }
        else if (c == 'r') { if ((rc = parse_pos(optarg, "--reps", &reps))) return rc; }
        else if (c == 'd') device = optarg;
        else if (c == 'm') { if (cli_parse_size(optarg, &budget)) return cli_usage_error("bench", "--max-device-mem must be a size like 4G, got '%s'", optarg); }
        else if (c == 'v') verbose = 1;
        else if (c == 'h') { help(); return 0; }
        else return cli_usage_error("bench", "unknown option");
    }
    if (optind >= argc) return cli_usage_error("bench", "missing what to bench (ops or linearized)");
    int linearized = !strcmp(argv[optind], "linearized");
    if (!linearized && strcmp(argv[optind], "ops"))
        return cli_usage_error("bench", "unknown benchmark '%s' (known: ops, linearized)", argv[optind]);
    if (linearized && size < 16) return cli_usage_error("bench", "--size must be at least 16 (the cached layer3 maps are size/16)");
    if (optind + 1 < argc) return cli_usage_error("bench", "unexpected argument '%s'", argv[optind + 1]);
    gf_ctx *ctx;
    rc = cli_ctx_open_budget(device, verbose, budget, &ctx);
    if (rc) return rc;
    gf_status st = linearized ? gf_bench_linearized(ctx, batch, size, classes, reps, stdout)
                              : gf_bench_ops(ctx, batch, reps, stdout);
    uint64_t peak;
    gf_ctx_memory(ctx, NULL, &peak);
    if (st == GF_OK)
        printf("peak device memory held by gradfeat: %.1f MiB%s\n", peak / 1048576.0,
               budget ? " (within the --max-device-mem budget)" : "");
    rc = st == GF_OK ? 0 : cli_fail(ctx, st);
    gf_ctx_free(ctx);
    return rc;
}
