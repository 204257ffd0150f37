/* gradfeat cache info|clear */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include "cli.h"

static void help(void) {
    printf("usage: %s cache info|clear [--device SEL]\n\n"
           "The compiled-kernel (program binary) cache lives in $GRADFEAT_CACHE_DIR, else\n"
           "$XDG_CACHE_HOME/gradfeat, else ~/.cache/gradfeat. It is off by default on PoCL and\n"
           "NVIDIA, whose drivers cache compiled kernels themselves; GRADFEAT_CACHE=1 forces it on,\n"
           "GRADFEAT_CACHE=0 off.\n\n"
           "  info    directory, entries, size, whether it is used for the device\n"
           "  clear   delete every entry\n"
           "  -d, --device SEL   device (env GRADFEAT_DEVICE)\n  -h, --help\n", cli_prog);
}

int cmd_cache(int argc, char **argv) {
    static const struct option opts[] = {{"device", required_argument, 0, 'd'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *device = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:h", opts, NULL)) != -1) {
        if (c == 'd') device = optarg;
        else if (c == 'h') { help(); return 0; }
        else return cli_usage_error("cache", "unknown option");
    }
    if (optind >= argc) return cli_usage_error("cache", "missing action: info or clear");
    const char *action = argv[optind];
    if (strcmp(action, "info") && strcmp(action, "clear")) return cli_usage_error("cache", "unknown action '%s'", action);
    gf_ctx *ctx;
    int rc = cli_ctx_open(device, 0, &ctx);
    if (rc) return rc;
    gf_cache_info info;
    gf_status st = gf_cache_get_info(ctx, &info);
    if (st == GF_OK && !strcmp(action, "info")) {
        printf("cache dir: %s\nused for this device: %s (%s)\nentries: %d\nsize: %.1f KiB\n", info.dir,
               info.enabled ? "yes" : "no", info.why, info.entries, info.bytes / 1024.0);
    } else if (st == GF_OK) {
        int removed = 0;
        st = gf_cache_clear(ctx, &removed);
        if (st == GF_OK) printf("removed %d entries from %s\n", removed, info.dir);
    }
    rc = st == GF_OK ? 0 : cli_fail(ctx, st);
    gf_ctx_free(ctx);
    return rc;
}
