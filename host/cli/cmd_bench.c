/* gradfeat bench ops [--batch B] [--reps N] [--device SEL] */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"
#include "cli.h"

static void help(void) {
    printf("usage: %s bench ops [--batch B] [--reps N] [--device SEL] [--verbose]\n\n"
           "Time the conv launchers at ResNet-18 layer4 shapes (B x 512 x 7 x 7, 3x3 kernel, pad 1):\n"
           "forward, tangent (both terms) and backward (gx + gW + gb), next to plain CLBlast SGEMM\n"
           "at the same GEMM sizes on the same device, with the ratio GEMM time / op time.\n\n"
           "  -b, --batch B      images per launch (default 64)\n"
           "  -r, --reps N       timed launches after one warm-up (default 5)\n"
           "  -d, --device SEL   device (env GRADFEAT_DEVICE)\n  -v, --verbose\n  -h, --help\n", cli_prog);
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
                                         {"device", required_argument, 0, 'd'}, {"verbose", no_argument, 0, 'v'},
                                         {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *device = NULL;
    int verbose = 0, batch = 64, reps = 5, c, rc;
    optind = 1;
    while ((c = getopt_long(argc, argv, "b:r:d:vh", opts, NULL)) != -1) {
        if (c == 'b') { if ((rc = parse_pos(optarg, "--batch", &batch))) return rc; }
        else if (c == 'r') { if ((rc = parse_pos(optarg, "--reps", &reps))) return rc; }
        else if (c == 'd') device = optarg;
        else if (c == 'v') verbose = 1;
        else if (c == 'h') { help(); return 0; }
        else return cli_usage_error("bench", "unknown option");
    }
    if (optind >= argc) return cli_usage_error("bench", "missing what to bench (ops)");
    if (strcmp(argv[optind], "ops")) return cli_usage_error("bench", "unknown benchmark '%s' (known: ops)", argv[optind]);
    if (optind + 1 < argc) return cli_usage_error("bench", "unexpected argument '%s'", argv[optind + 1]);
    gf_ctx *ctx;
    rc = cli_ctx_open(cli_env_or(device, "GRADFEAT_DEVICE"), verbose, &ctx);
    if (rc) return rc;
    gf_status st = gf_bench_ops(ctx, batch, reps, stdout);
    rc = st == GF_OK ? 0 : cli_fail(ctx, st);
    gf_ctx_free(ctx);
    return rc;
}
