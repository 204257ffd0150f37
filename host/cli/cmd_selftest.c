/* gradfeat selftest [--device SEL] */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include "cli.h"

static void help(void) {
    printf("usage: %s selftest [--device SEL] [--verbose]\n\n"
           "Run every kernel family and a CLBlast GEMM at small shapes on the device and compare with\n"
           "plain-C double references. A row passes when max |got-ref|/(1+|ref|) <= tol.\n"
           "Exit code 8 when any row fails.\n\n"
           "  -d, --device SEL   device (env GRADFEAT_DEVICE)\n  -v, --verbose\n  -h, --help\n", cli_prog);
}

int cmd_selftest(int argc, char **argv) {
    static const struct option opts[] = {{"device", required_argument, 0, 'd'}, {"verbose", no_argument, 0, 'v'},
                                         {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *device = NULL;
    int verbose = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:vh", opts, NULL)) != -1) {
        if (c == 'd') device = optarg;
        else if (c == 'v') verbose = 1;
        else if (c == 'h') { help(); return 0; }
        else return cli_usage_error("selftest", "unknown option");
    }
    if (optind < argc) return cli_usage_error("selftest", "unexpected argument '%s'", argv[optind]);
    gf_ctx *ctx;
    int rc = cli_ctx_open(device, verbose, &ctx);
    if (rc) return rc;
    const gf_device_info *d = gf_ctx_device(ctx);
    printf("device: %s (%s, %s) — %s\n", d->name, d->platform_name, d->driver_version, gf_ctx_device_reason(ctx));
    fprintf(stderr, "compiling OpenCL kernels (first run on this device can take a while)...\n");
    double secs = 0;
    gf_status st = gf_ctx_warmup(ctx, &secs);
    if (st != GF_OK) { rc = cli_fail(ctx, st); gf_ctx_free(ctx); return rc; }
    fprintf(stderr, "kernels ready in %.2f s\n", secs);
    gf_check_row *rows; int n;
    st = gf_selftest(ctx, &rows, &n);
    printf("%-32s %12s %12s %10s  %s\n", "check", "max abs", "max rel", "tol", "result");
    int failed = 0;
    for (int i = 0; i < n; i++) {
        printf("%-32s %12.3e %12.3e %10.1e  %s\n", rows[i].name, rows[i].max_abs, rows[i].max_rel, rows[i].tol,
               rows[i].pass ? "ok" : "FAIL");
        failed += !rows[i].pass;
    }
    printf("%d passed, %d failed\n", n - failed, failed);
    if (st != GF_OK && failed) fprintf(stderr, "%s: error: %s\n", cli_prog, gf_ctx_last_error(ctx));
    free(rows);
    gf_ctx_free(ctx);
    return failed ? GF_ERR_CHECK : (st != GF_OK ? (int)st : 0);
}
