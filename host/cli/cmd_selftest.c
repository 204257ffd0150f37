/* gradfeat selftest [--device SEL] */
#include <stdio.h>
#include <stdlib.h>
#include "cli.h"

static const cli_doc doc = {
    "gradfeat selftest [--device SEL] [--verbose]",
    "Run the quick rows of the op table (the rows tests/test_ops checks: every kernel family and the\n"
    "GEMM, host BLAS and CLBlast, at small shapes) on the device, each checked against plain-C double\n"
    "references: forward, tangent and backward, finite differences, the adjoint identity, bitwise\n"
    "repeatability. max abs is a row's largest |got-ref|, max rel its worst error as a multiple of\n"
    "the tolerance (atol + rtol|ref| + stol S); a row passes when every check does (max rel <= tol 1).\n"
    "Exit code 8 when any row fails. stdout has the table only; progress goes to stderr.\n",
    "  gradfeat selftest\n"
    "  GRADFEAT_DEVICE=gpu gradfeat selftest --verbose\n"};

int cmd_selftest(int argc, char **argv) {
    const char *device = NULL;
    int verbose = 0;
    const cli_opt defs[] = {
        {"device", 'd', CLI_STR, &device, "SEL", "OpenCL device: index, P:D, cpu, gpu or part of a name", NULL, NULL, 1},
        {"verbose", 'v', CLI_FLAG, &verbose, NULL, "more messages", NULL, NULL, 0},
    };
    cli_opts o;
    int rc = cli_opts_parse(&o, "selftest", defs, sizeof defs / sizeof defs[0], &doc, argc, argv);
    if (!rc && o.first_arg < argc) rc = cli_usage_error("selftest", "unexpected argument '%s'", argv[o.first_arg]);
    if (rc) { cli_opts_free(&o); return rc == CLI_HELP ? 0 : rc; }
    gf_ctx *ctx;
    rc = cli_ctx_open_unchecked(device, verbose, &ctx);
    cli_opts_free(&o);                                   /* the context does not keep the device string */
    if (rc) return rc;
    const gf_device_info *d = gf_ctx_device(ctx);
    printf("device: %s (%s, %s) — %s\n", d->name, d->platform_name, d->driver_version, gf_ctx_device_reason(ctx));
    printf("kernel paths: %s\n", gf_ctx_paths(ctx));
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
