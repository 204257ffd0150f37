/* The default device passes the selftest (README "Choosing a device"). Where there is a choice (two or more
 * OpenCL devices) and none was named, the device the library chose is checked once per device, driver, kernel
 * paths and gradfeat build by the quick selftest, and the verdict is kept in the kernel-cache folder; a device
 * that failed is passed over (gf_ctx_options.avoid_devices) and the next best one is checked the same way.
 * A broken GPU driver then costs a warning, not wrong numbers. A named device (--device, GRADFEAT_DEVICE) is
 * used as asked; `gradfeat selftest` and `doctor` show a device's own result. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "cli.h"
#include "gf_internal.h"

/* The verdict file of the context's device: <cache>/selftest-<key>.txt, "" when verdicts are not kept (no
 * cache folder, GRADFEAT_CACHE=0, kernels read from GRADFEAT_KERNEL_DIR, or a folder the kernel cache would not
 * trust either). */
static void verdict_path(gf_ctx *ctx, const gf_ctx_options *opt, char *out, size_t n) {
    *out = 0;
    if (!opt->cache_dir || !*opt->cache_dir || opt->cache < 0) return;
    if (opt->kernel_dir && *opt->kernel_dir) return;   /* kernels from a folder may change between runs */
    if (gf_mkdirs(opt->cache_dir) != 0 || gf_cache_dir_untrusted(opt->cache_dir)) return;
    const gf_device_info *d = gf_ctx_device(ctx);
    char key[1024];
    snprintf(key, sizeof key, "%s\n%s\n%s\n%s\n%s\n%s %s\n%s\n", d->platform_name, d->platform_version, d->name,
             d->driver_version, d->version, gf_version(), gf_git_hash(), gf_ctx_paths(ctx));
    snprintf(out, n, "%s/selftest-%016llx.txt", opt->cache_dir,
             (unsigned long long)gf_fnv1a(GF_FNV_INIT, key, strlen(key)));
}

/* 1 passed, 0 failed (*why: "F of N rows failed"), from the kept verdict or a selftest run now. */
static int device_passes(gf_ctx *ctx, const gf_ctx_options *opt, char *why, size_t whyn) {
    char path[1200], line[128] = "";
    verdict_path(ctx, opt, path, sizeof path);
    FILE *f = path[0] ? fopen(path, "r") : NULL;
    if (f) {
        int ok = fgets(line, sizeof line, f) != NULL;
        fclose(f);
        line[strcspn(line, "\n")] = 0;
        if (ok && !strncmp(line, "pass", 4)) return 1;
        if (ok && !strncmp(line, "fail ", 5)) {
            snprintf(why, whyn, "%s, when first checked; the verdict is kept in %s (`gradfeat cache clear` forgets "
                     "it)", line + 5, path);
            return 0;
        }
    }
    const gf_device_info *d = gf_ctx_device(ctx);
    fprintf(stderr, "%s: checking the default device %s with the selftest (once per device, driver and build)\n",
            cli_prog, d->name);
    gf_check_row *rows = NULL;
    int count = 0, failed = 0;
    gf_status st = gf_selftest(ctx, &rows, &count);
    for (int i = 0; i < count; i++) failed += !rows[i].pass;
    free(rows);
    if (st != GF_OK && st != GF_ERR_CHECK) failed = failed ? failed : 1;   /* a build or launch failure fails too */
    if (failed) snprintf(line, sizeof line, "fail %d of %d rows failed%s%s", failed, count, st != GF_OK && st != GF_ERR_CHECK ? ": " : "",
                         st != GF_OK && st != GF_ERR_CHECK ? gf_status_name(st) : "");
    else snprintf(line, sizeof line, "pass %d rows", count);
    if (path[0]) {
        char buf[160], err[256];
        int len = snprintf(buf, sizeof buf, "%s\n", line);
        if (gf_write_file_atomic_msg(path, buf, (size_t)len, err, sizeof err) != GF_OK)
            fprintf(stderr, "%s: warning: the selftest verdict was not kept: %s\n", cli_prog, err);
    }
    if (!failed) return 1;
    snprintf(why, whyn, "%s", line + 5);
    return 0;
}

int cli_default_device_checked(gf_ctx_options *opt, gf_ctx **ctx, int (*open)(gf_ctx_options *, gf_ctx **)) {
    int rc = open(opt, ctx);
    if (rc || (opt->device && *opt->device && strcasecmp(opt->device, "auto"))) return rc;
    gf_device_info *list = NULL;
    int n = 0;
    if (gf_devices_list_opt(opt, &list, &n, NULL, 0) != GF_OK) n = 0;
    free(list);
    if (n < 2) return 0;   /* no choice: `gradfeat selftest` is the check */
    for (int tries = 0; tries < n && tries < 64; tries++) {
        char why[1400];
        if (device_passes(*ctx, opt, why, sizeof why)) return 0;
        const gf_device_info *d = gf_ctx_device(*ctx);
        fprintf(stderr, "%s: warning: device %d (%d:%d) %s failed the selftest: %s. Passing it over; "
                "`gradfeat selftest --device %d:%d` shows which checks, --device %d:%d uses it anyway\n", cli_prog,
                d->global_index, d->platform_index, d->device_index, d->name, why, d->platform_index,
                d->device_index, d->platform_index, d->device_index);
        if (d->global_index < 64) opt->avoid_devices |= 1ull << d->global_index;
        gf_ctx_free(*ctx);
        *ctx = NULL;
        if ((rc = open(opt, ctx))) return rc;
    }
    return 0;
}
