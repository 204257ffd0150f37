/* gradfeat tune [--budget SECS] [--batch B] [--reps N] [--seed N] [--dry-run] [--device SEL] */
#include <stdio.h>
#include <string.h>
#include "cli.h"

static const cli_doc doc = {
    "gradfeat tune [--budget SECS] [--batch B] [--reps N] [--seed N] [--dry-run] [--device SEL] [--verbose]",
    "Tune CLBlast's SGEMM for the device at the GEMM shapes gradfeat launches: the three GEMMs of\n"
    "ResNet-18 layer4's 3x3 conv (forward, weight and input gradient; W1's shapes at --batch B), a\n"
    "small conv's and a linear head's. Candidate parameter sets of CLBlast's Xgemm and XgemmDirect\n"
    "kernels (valid by CLBlast's constraints and the device's limits) are timed on them until the\n"
    "budget is spent; results that differ from CLBlast's defaults beyond fp32 rounding are rejected.\n"
    "The best are kept in the cache folder (`gradfeat doctor` shows the file), one file per device,\n"
    "driver and CLBlast version, and applied whenever GEMMs run in CLBlast on that device: GPUs, or\n"
    "GRADFEAT_GEMM=clblast / GRADFEAT_PATHS=gpu on a CPU device (which uses the host BLAS by default).\n"
    "GRADFEAT_TUNING=0 ignores the file; a corrupt or foreign file is ignored with a warning.\n"
    "Progress and the time left go to stderr; stdout has the result.\n",
    "  gradfeat tune\n"
    "  GRADFEAT_GEMM=clblast gradfeat tune --budget 600 && GRADFEAT_GEMM=clblast gradfeat bench ops\n"
    "  gradfeat tune --device gpu --budget 60 --dry-run\n"};

int cmd_tune(int argc, char **argv) {
    const char *device = NULL;
    int verbose = 0, batch = 8, reps = 2, seed = 1, dry_run = 0;
    float budget = 120;
    const cli_opt defs[] = {
        {"budget", 't', CLI_FLOAT, &budget, "SECS", "seconds of candidate search (default 120; the baseline and final checks come on top)",
         "GRADFEAT_TUNE_BUDGET", "(0,1e6]", 0},
        {"batch", 'b', CLI_POS, &batch, "B", "batch of the layer4 conv whose GEMMs are the large shapes (default 8; W1 is 64)",
         "GRADFEAT_TUNE_BATCH", "[1,256]", 0},
        {"reps", 'r', CLI_POS, &reps, "N", "timed launches per shape and candidate, the fastest counts (default 2)",
         "GRADFEAT_TUNE_REPS", "[1,100]", 0},
        {"seed", 's', CLI_INT, &seed, "N", "order of the random part of the search (default 1)", "GRADFEAT_TUNE_SEED", NULL, 0},
        {"dry-run", 'n', CLI_FLAG, &dry_run, NULL, "search and print, keep no file", "GRADFEAT_TUNE_DRY_RUN", NULL, 0},
        {"device", 'd', CLI_STR, &device, "SEL", "OpenCL device: index, P:D, cpu, gpu or part of a name", NULL, NULL, 1},
        {"verbose", 'v', CLI_FLAG, &verbose, NULL, "more messages (each new best, each rejected candidate)", NULL, NULL, 0},
    };
    cli_opts o;
    int rc = cli_opts_parse(&o, "tune", defs, sizeof defs / sizeof defs[0], &doc, argc, argv);
    if (!rc && o.first_arg < argc) rc = cli_usage_error("tune", "unexpected argument '%s'", argv[o.first_arg]);
    if (rc) { cli_opts_free(&o); return rc == CLI_HELP ? 0 : rc; }
    gf_ctx *ctx;
    rc = cli_ctx_open_untuned(device, verbose, &ctx);   /* the baseline is CLBlast's own parameters */
    cli_opts_free(&o);
    if (rc) return rc;
    const gf_device_info *d = gf_ctx_device(ctx);
    printf("device: %s (%s, driver %s) — %s\n", d->name, d->platform_name, d->driver_version, gf_ctx_device_reason(ctx));
    gf_tune_info before;
    gf_tune_get_info(ctx, &before);
    if (before.state == GF_TUNE_UNUSED || before.state == GF_TUNE_IGNORED)
        fprintf(stderr, "%s tune: replacing %s\n", cli_prog, before.path);
    if (strstr(gf_ctx_paths(ctx), "GEMM host BLAS"))
        fprintf(stderr, "%s tune: this device runs GEMMs in the host BLAS; the tuning is used only with "
                "GRADFEAT_GEMM=clblast (or GRADFEAT_PATHS=gpu)\n", cli_prog);
    fprintf(stderr, "%s tune: searching for %.0f s (ETA on the progress lines); Ctrl-C keeps the old file\n", cli_prog,
            (double)budget);
    gf_tune_options opt = {.budget = budget, .batch = batch, .reps = reps, .seed = (uint64_t)seed, .dry_run = dry_run};
    gf_tune_result r;
    gf_status st = gf_tune_run(ctx, &opt, &r);
    if (st != GF_OK) {
        rc = cli_fail(ctx, st);
        gf_ctx_free(ctx);
        return rc;
    }
    printf("SGEMM at the layer4 conv GEMMs (batch %d): default %.1f GFLOP/s, tuned %.1f GFLOP/s (%.2fx)\n", batch,
           r.gflops_default, r.gflops_tuned, r.gflops_default > 0 ? r.gflops_tuned / r.gflops_default : 0.0);
    printf("SGEMM on all 9 tuning shapes: default %.1f GFLOP/s, tuned %.1f GFLOP/s\n", r.all_default, r.all_tuned);
    printf("candidates: %d timed, %d rejected, %.0f s in all\n", r.tried, r.failed, r.seconds);
    printf("kernel %s\nkernel %s\nkernel %s\n", r.xgemm, r.direct, r.routine);
    if (dry_run) printf("dry run: no file written\n");
    else printf("written: %s\n", r.path);
    gf_ctx_free(ctx);
    return 0;
}
