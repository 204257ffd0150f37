/* gradfeat report RUN_DIR [-o FILE]: the HTML page of a training run (host/report.h). */
#include <getopt.h>
#include <stdio.h>
#include "cli.h"
#include "report.h"

static void help(void) {
    printf("usage: %s report RUN_DIR [-o FILE]\n\n"
           "Write one self-contained HTML page (inline SVG, no scripts, no network) for a run directory\n"
           "of `%s train --run-dir RUN_DIR`: the comparison table of the methods, loss and accuracy (or mAP)\n"
           "curves per method, the run's metadata (device, driver, versions, seed, times) and, when the run\n"
           "directory has them, confusion matrices (confusion_<method>.json) and per-class average\n"
           "precision (ap_<method>.json). The file is written atomically.\n\n"
           "  -o, --output FILE   where to write (default RUN_DIR/report.html; '-' = stdout)\n"
           "  -h, --help\n\n"
           "example:\n"
           "  %s train --model emotion.safetensors --data fmnist --val fmnist --val-split test --run-dir runs/a\n"
           "  %s report runs/a && xdg-open runs/a/report.html\n", cli_prog, cli_prog, cli_prog, cli_prog);
}

int cmd_report(int argc, char **argv) {
    static const struct option opts[] = {{"output", required_argument, 0, 'o'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *out = cli_env_or(NULL, "GRADFEAT_REPORT_OUTPUT");
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        if (c == 'o') out = optarg;
        else if (c == 'h') { help(); return 0; }
        else return cli_usage_error("report", "unknown option");
    }
    if (optind >= argc) return cli_usage_error("report", "missing RUN_DIR (the --run-dir of a training run)");
    if (optind + 1 < argc) return cli_usage_error("report", "unexpected argument '%s'", argv[optind + 1]);
    char err[2048];
    gf_status st = gf_report_render(argv[optind], out, err, sizeof err);
    if (st != GF_OK) {
        fprintf(stderr, "%s: error: %s\n", cli_prog, err);
        return (int)st;
    }
    if (!out || (out[0] != '-' || out[1])) printf("%s%s\n", out ? out : argv[optind], out ? "" : "/report.html");
    return 0;
}
