/* Every setting of a context from the --device flag and the environment: the CLI's side of "the
 * library never reads the environment" (README "Environment variables"). gradfeat doctor lists the
 * rows with where each value came from. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "gf_msg.h"
#include "settings.h"

static const char *env(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* A row for doctor; var: the environment variable the value came from (NULL: from = "default" or the flag). */
static void row(cli_settings *s, const char *name, const char *value, const char *var, const char *from) {
    if (s->n >= CLI_SETTINGS_ROWS) return;
    s->row[s->n].name = name;
    snprintf(s->row[s->n].value, sizeof s->row[s->n].value, "%s", value);
    if (var) snprintf(s->row[s->n].from, sizeof s->row[s->n].from, "env %s", var);
    else snprintf(s->row[s->n].from, sizeof s->row[s->n].from, "%s", from ? from : "default");
    s->n++;
}

int cli_cache_dir_default(const char *sub, char *out, size_t n, const char **from) {
    static const char *const vars[] = {"XDG_CACHE_HOME", "HOME", "XDG_RUNTIME_DIR"};
    for (int i = 0; i < 3; i++) {
        const char *d = env(vars[i]);
        if (!d) continue;
        snprintf(out, n, i == 1 ? "%s/.cache/%s" : "%s/%s", d, sub);
        if (from) *from = vars[i];
        return 1;
    }
    if (n) out[0] = 0;
    if (from) *from = "none of XDG_CACHE_HOME, HOME, XDG_RUNTIME_DIR";
    return 0;
}

/* A choice: GRADFEAT_<...> = auto or one of vals (NULL-terminated; for the kernel paths the CPU-style, then the
 * GPU-style value); what: the noun for what the variable chooses ("kernel path", "host-memory mode"), for the
 * message on a bad value ("use auto, cpu or gpu"). */
static int choice_env(cli_settings *s, const char *name, const char *var, const char *what,
                      const char *const *vals, const char **out, char *err, size_t n) {
    const char *v = env(var);
    *out = v;
    int ok = !v || !strcasecmp(v, "auto");
    for (int i = 0; !ok && vals[i]; i++) ok = !strcasecmp(v, vals[i]);
    if (!ok) {
        char list[128] = "auto";
        for (int i = 0; vals[i]; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", vals[i + 1] ? ", " : " or ", vals[i]);
        return gf_fail_msg(err, n, GF_ERR_USAGE, "%s='%s' is not a %s: use %s", var, v, what, list);
    }
    row(s, name, v ? v : "auto", v ? var : NULL, NULL);
    return 0;
}
#define CHOICES(...) ((const char *const[]){__VA_ARGS__, NULL})

/* PoCL's rule for its kernel-cache folder (lib/CL/pocl_cache.c), checked before the driver starts */
static void pocl_rule(cli_settings *s) {
    const char *v;
    if ((v = env("POCL_CACHE_DIR"))) {
        snprintf(s->pocl_cache, sizeof s->pocl_cache, "%s", v);
        snprintf(s->pocl_from, sizeof s->pocl_from, "POCL_CACHE_DIR");
    } else if ((v = env("XDG_CACHE_HOME"))) {
        snprintf(s->pocl_cache, sizeof s->pocl_cache, "%s/pocl", v);
        snprintf(s->pocl_from, sizeof s->pocl_from, "XDG_CACHE_HOME");
    } else if ((v = getenv("HOME"))) {
        snprintf(s->pocl_cache, sizeof s->pocl_cache, "%s/.cache/pocl", v);
        snprintf(s->pocl_from, sizeof s->pocl_from, "HOME");
    } else {
        snprintf(s->pocl_cache, sizeof s->pocl_cache, "/tmp/pocl");
        snprintf(s->pocl_from, sizeof s->pocl_from, "no HOME");
    }
    s->opt.pocl_cache = s->pocl_cache;
    s->opt.pocl_cache_from = s->pocl_from;
}

int cli_settings_load(cli_settings *s, const char *device, char *err, size_t n) {
    memset(s, 0, sizeof *s);
    pocl_rule(s);   /* first: a bad setting below still leaves it filled in (gradfeat devices) */
    gf_ctx_options *o = &s->opt;
    char from[80];
    /* device */
    if (device && *device) { o->device = device; o->device_from = "--device"; }
    else if ((o->device = env("GRADFEAT_DEVICE"))) o->device_from = "GRADFEAT_DEVICE=";
    row(s, "device", o->device ? o->device : "auto (the largest GPU, else the CPU)",
        o->device && !(device && *device) ? "GRADFEAT_DEVICE" : NULL, o->device ? "flag --device" : NULL);
    /* kernel paths */
    int rc;
    if ((rc = choice_env(s, "paths", "GRADFEAT_PATHS", "kernel path", CHOICES("cpu", "gpu"), &o->paths, err, n))) return rc;
    if ((rc = choice_env(s, "conv kernels", "GRADFEAT_CONV_KERNELS", "kernel path", CHOICES("plane", "element"), &o->conv_kernels, err, n))) return rc;
    if ((rc = choice_env(s, "BN walk", "GRADFEAT_BN_WALK", "kernel path", CHOICES("blocked", "strided"), &o->bn_walk, err, n))) return rc;
    if ((rc = choice_env(s, "conv algorithm", "GRADFEAT_CONV_ALGO", "conv algorithm",
                         CHOICES("direct", "winograd", "winograd4"), &o->conv_algo, err, n))) return rc;
    const char *hb = env("GRADFEAT_HOST_BLAS");   /* the older twin of GRADFEAT_GEMM: 0 = CLBlast */
    if (!env("GRADFEAT_GEMM") && hb && !strcmp(hb, "0")) { o->gemm = "clblast"; row(s, "GEMM", "clblast", "GRADFEAT_HOST_BLAS=0", NULL); }
    else if ((rc = choice_env(s, "GEMM", "GRADFEAT_GEMM", "kernel path", CHOICES("host", "clblast"), &o->gemm, err, n))) return rc;
    if ((rc = choice_env(s, "host memory", "GRADFEAT_HOST_MEM", "host-memory mode", CHOICES("map", "copy"), &o->host_mem, err, n))) return rc;
    const char *tu = env("GRADFEAT_TUNING");
    if (tu && strcmp(tu, "0") && strcmp(tu, "1"))
        return gf_fail_msg(err, n, GF_ERR_USAGE, "GRADFEAT_TUNING='%s' is not 0 or 1", tu);
    o->tuning = tu && !strcmp(tu, "0") ? -1 : 0;
    row(s, "GEMM tuning", o->tuning < 0 ? "off" : "on (when GEMMs run in CLBlast)", tu ? "GRADFEAT_TUNING" : NULL, NULL);
    const char *b = env("GRADFEAT_ITEM_BUDGET");
    if (b) {
        char *end;
        long v = strtol(b, &end, 10);
        if (*end || v < 1 || v > 1 << 30)
            return gf_fail_msg(err, n, GF_ERR_USAGE, "GRADFEAT_ITEM_BUDGET='%s' is not an integer in 1..2^30", b);
        o->item_budget = (unsigned)v;
    }
    row(s, "item budget", b ? b : "16384", b ? "GRADFEAT_ITEM_BUDGET" : NULL, NULL);
    const char *wg = env("GRADFEAT_MAX_WORK_GROUP");
    if (wg) {
        char *end;
        long v = strtol(wg, &end, 10);
        if (*end || v < 0 || v > 1 << 20)
            return gf_fail_msg(err, n, GF_ERR_USAGE, "GRADFEAT_MAX_WORK_GROUP='%s' is not an integer in 0..2^20 "
                               "(0 = no cap)", wg);
        o->max_work_group = (size_t)v;
    }
    row(s, "max work-group", o->max_work_group ? wg : "no cap (the device's and each kernel's limits)",
        wg ? "GRADFEAT_MAX_WORK_GROUP" : NULL, NULL);
    const char *z = env("GRADFEAT_ZERO");
    if (z && strcmp(z, "fill") && strcmp(z, "write"))
        return gf_fail_msg(err, n, GF_ERR_USAGE, "GRADFEAT_ZERO='%s' is not a zeroing mode: use fill or write", z);
    o->zero_by_write = z && !strcmp(z, "write");
    row(s, "zeroing", o->zero_by_write ? "write (host zeros, for oclgrind --uninitialized)" : "fill",
        z ? "GRADFEAT_ZERO" : NULL, NULL);
    /* programs: kernel sources and the compiled-kernel cache */
    o->kernel_dir = env("GRADFEAT_KERNEL_DIR");
    row(s, "kernel dir", o->kernel_dir ? o->kernel_dir : "(the sources built into gradfeat)",
        o->kernel_dir ? "GRADFEAT_KERNEL_DIR" : NULL, NULL);
    const char *c = env("GRADFEAT_CACHE");
    if (c && !strcmp(c, "1")) o->cache = 1;
    else if (c && !strcmp(c, "0")) o->cache = -1;
    if (o->cache) {
        snprintf(s->cache_from, sizeof s->cache_from, "GRADFEAT_CACHE=%s", c);
        o->cache_from = s->cache_from;
    }
    row(s, "kernel cache", o->cache > 0 ? "on" : o->cache < 0 ? "off" : "auto (off on NVIDIA, whose driver caches)",
        o->cache ? "GRADFEAT_CACHE" : NULL, NULL);
    const char *cd = env("GRADFEAT_CACHE_DIR"), *why = "GRADFEAT_CACHE_DIR";
    if (cd) snprintf(s->cache_dir, sizeof s->cache_dir, "%s", cd);
    else cli_cache_dir_default("gradfeat", s->cache_dir, sizeof s->cache_dir, &why);
    o->cache_dir = s->cache_dir[0] ? s->cache_dir : NULL;
    snprintf(from, sizeof from, "default via %s", why);
    row(s, "kernel cache dir", s->cache_dir[0] ? s->cache_dir : "(none: no cache)", cd ? why : NULL, from);
    const char *ad = env("GRADFEAT_ACTIVATION_CACHE_DIR");
    if (ad) snprintf(s->act_cache_dir, sizeof s->act_cache_dir, "%s", ad), why = "GRADFEAT_ACTIVATION_CACHE_DIR";
    else cli_cache_dir_default("gradfeat/activations", s->act_cache_dir, sizeof s->act_cache_dir, &why);
    snprintf(from, sizeof from, "default via %s", why);
    row(s, "activation cache", s->act_cache_dir[0] ? s->act_cache_dir : "(none: kept in host memory)", ad ? why : NULL,
        from);
    snprintf(from, sizeof from, "PoCL's rule via %s", s->pocl_from);
    row(s, "PoCL cache", s->pocl_cache, NULL, from);
    return 0;
}
