/* gradfeat report RUN_DIR [-o FILE]: the HTML page of a training run (host/report/report.h). */
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "report.h"

static const cli_doc doc = {
    "gradfeat report RUN_DIR [-o FILE]\n       gradfeat report RUN_DIR RUN_DIR... -o FILE",
    "Write one self-contained HTML page (inline SVG, no scripts, no network) for a run directory\n"
    "of `gradfeat train --run-dir RUN_DIR`: the comparison table of the methods, loss and accuracy (or mAP)\n"
    "curves per method, the run's metadata (device, driver, versions, seed, times) and, when the run\n"
    "directory has them, confusion matrices (confusion_<method>.json) and per-class average\n"
    "precision (ap_<method>.json). The file is written atomically.\n"
    "With several run directories, one page puts them side by side: each method's final metric per run and\n"
    "every setting and environment field of each results.json, rows that differ highlighted (-o needed).\n",
    "  gradfeat train --model emotion.safetensors --data fmnist --val fmnist --val-split test --run-dir runs/a\n"
    "  gradfeat report runs/a && xdg-open runs/a/report.html\n"
    "  gradfeat report runs/a -o - > a.html\n"
    "  gradfeat report runs/a runs/b -o compare.html\n"};

int cmd_report(int argc, char **argv) {
    const char *out = NULL;
    const cli_opt defs[] = {
        {"output", 'o', CLI_STR, &out, "FILE", "where to write (default RUN_DIR/report.html; '-' = stdout)", "GRADFEAT_REPORT_OUTPUT", NULL, 0},
    };
    cli_opts o;
    int rc = cli_opts_parse(&o, "report", defs, sizeof defs / sizeof defs[0], &doc, argc, argv);
    if (!rc && o.first_arg >= argc) rc = cli_usage_error("report", "missing RUN_DIR (the --run-dir of a training run)");
    if (!rc && o.first_arg + 1 < argc && !out)
        rc = cli_usage_error("report", "several run directories: say where the page goes with -o FILE ('-' = stdout)");
    if (rc) { cli_opts_free(&o); return rc == CLI_HELP ? 0 : rc; }
    if (o.first_arg + 1 < argc) {
        char cerr[2048];
        gf_status cst = gf_report_compare((const char *const *)argv + o.first_arg, argc - o.first_arg, out, cerr, sizeof cerr);
        if (cst != GF_OK) fprintf(stderr, "%s: error: %s\n", cli_prog, cerr);
        else if (strcmp(out, "-")) printf("%s\n", out);
        cli_opts_free(&o);
        return (int)cst;
    }
    const char *dir = argv[o.first_arg];
    char err[2048];
    gf_status st = gf_report_render(dir, out, err, sizeof err);
    if (st != GF_OK) {
        fprintf(stderr, "%s: error: %s\n", cli_prog, err);
        cli_opts_free(&o);
        return (int)st;
    }
    if (!out || (out[0] != '-' || out[1])) printf("%s%s\n", out ? out : dir, out ? "" : "/report.html");
    cli_opts_free(&o);
    return 0;
}
