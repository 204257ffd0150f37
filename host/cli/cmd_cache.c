/* gradfeat cache info|clear */
#include <stdio.h>
#include <string.h>
#include "cli.h"

static const cli_doc doc = {
    "gradfeat cache info|clear [--device SEL]",
    "The compiled-kernel (program binary) cache lives in $GRADFEAT_CACHE_DIR, else\n"
    "$XDG_CACHE_HOME/gradfeat, else ~/.cache/gradfeat. It is off by default on NVIDIA,\n"
    "whose driver caches compiled kernels itself; GRADFEAT_CACHE=1 forces it on,\n"
    "GRADFEAT_CACHE=0 off.\n\n"
    "  info    directory, entries, size, whether it is used for the device\n"
    "  clear   delete every entry\n",
    "  gradfeat cache info\n"
    "  GRADFEAT_CACHE=1 GRADFEAT_DEVICE=gpu gradfeat cache clear\n"};

int cmd_cache(int argc, char **argv) {
    const char *device = NULL;
    const cli_opt defs[] = {
        {"device", 'd', CLI_STR, &device, "SEL", "OpenCL device: index, P:D, cpu, gpu or part of a name", NULL, NULL, 1},
    };
    cli_opts o;
    int rc = cli_opts_parse(&o, "cache", defs, sizeof defs / sizeof defs[0], &doc, argc, argv);
    if (rc) { cli_opts_free(&o); return rc == CLI_HELP ? 0 : rc; }
    const char *action = o.first_arg < argc ? argv[o.first_arg] : NULL;
    if (!action) rc = cli_usage_error("cache", "missing action: info or clear");
    else if (strcmp(action, "info") && strcmp(action, "clear")) rc = cli_usage_error("cache", "unknown action '%s'", action);
    else if (o.first_arg + 1 < argc) rc = cli_usage_error("cache", "unexpected argument '%s'", argv[o.first_arg + 1]);
    gf_ctx *ctx = NULL;
    if (!rc) rc = cli_ctx_open(device, 0, &ctx);
    if (rc) { cli_opts_free(&o); return rc; }
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
    cli_opts_free(&o);
    return rc;
}
