/* OpenCL programs: embedded cl/ sources (or gf_ctx_options.kernel_dir), each
 * behind the prelude cl/common.cl, build with -cl-std=CL1.2 + per-program
 * defines, on-disk binary cache, kernel objects cached per context. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include "gf_internal.h"

typedef struct { const char *name; const char *src; size_t len; } gf_embedded_source;
extern const gf_embedded_source gf_embedded_sources[];
extern const int gf_embedded_count;

#define GF_CACHE_FORMAT 1
static const char CACHE_MAGIC[8] = {'G', 'F', 'P', 'B', 'I', 'N', '0', '1'};

struct gf_program_entry {
    char *family, *defines;
    cl_program prog;
    gf_program_entry *next;
};
struct gf_kernel_entry {
    gf_program_entry *prog;
    char *name;
    cl_kernel k;
    gf_kernel_entry *next;
};

/* cl/common.cl is the prelude of every program, not a family of its own. */
#define PRELUDE "common"

int gf_kernel_families(const char *const **names) {
    static const char *list[64];
    int n = 0;
    for (int i = 0; i < gf_embedded_count && n < 64; i++)
        if (strcmp(gf_embedded_sources[i].name, PRELUDE)) list[n++] = gf_embedded_sources[i].name;
    *names = list;
    return n;
}

/* One kernel file, embedded or from gf_ctx_options.kernel_dir; malloc'ed, NUL-terminated. */
static gf_status read_source(gf_ctx *ctx, const char *file, char **src, size_t *len) {
    const char *dir = ctx->kernel_dir;
    if (*dir) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s.cl", dir, file);
        void *data; size_t n;
        gf_status st = gf_read_file(ctx, path, &data, &n);
        if (st != GF_OK)
            return gf_fail(ctx, GF_ERR_INPUT, "kernel folder %s is set but kernel file %s cannot be read (%s); "
                           "unset it (GRADFEAT_KERNEL_DIR) to use the kernels built into gradfeat", dir, path, strerror(errno));
        char *s = realloc(data, n + 1);
        if (!s) { free(data); return gf_fail(ctx, GF_ERR_MEMORY, "out of memory reading %s", path); }
        s[n] = 0;
        *src = s; *len = n;
        return GF_OK;
    }
    for (int i = 0; i < gf_embedded_count; i++) {
        if (strcmp(gf_embedded_sources[i].name, file) == 0) {
            size_t n = gf_embedded_sources[i].len;
            char *s = malloc(n + 1);
            if (!s) return gf_fail(ctx, GF_ERR_MEMORY, "out of memory");
            memcpy(s, gf_embedded_sources[i].src, n);
            s[n] = 0;
            *src = s; *len = n;
            return GF_OK;
        }
    }
    return gf_fail(ctx, GF_ERR_INTERNAL, "no kernel file cl/%s.cl is built into gradfeat", file);
}

/* The program text of a family: the prelude, then "#line 1" so that build logs
 * give the family file's own line numbers, then the family's file. */
gf_status gf_kernel_source(gf_ctx *ctx, const char *family, char **src, size_t *len) {
    char *pre, *fam; size_t npre, nfam;
    GF_TRY(read_source(ctx, PRELUDE, &pre, &npre));
    gf_status st = read_source(ctx, family, &fam, &nfam);
    if (st != GF_OK) { free(pre); return st; }
    char line[160];
    int nl = snprintf(line, sizeof line, "\n#line 1 \"%s.cl\"\n", family);
    size_t n = npre + (size_t)nl + nfam;
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, pre, npre);
        memcpy(s + npre, line, (size_t)nl);
        memcpy(s + npre + (size_t)nl, fam, nfam + 1);
    }
    free(pre); free(fam);
    if (!s) return gf_fail(ctx, GF_ERR_MEMORY, "out of memory");
    *src = s; *len = n;
    return GF_OK;
}

/* ---------------- binary cache ---------------- */

#define WHY(...) snprintf(ctx->cache_why, sizeof ctx->cache_why, __VA_ARGS__)
void gf_cache_init(gf_ctx *ctx, const gf_ctx_options *opt) {
    if (opt->cache_dir) snprintf(ctx->cache_dir, sizeof ctx->cache_dir, "%s", opt->cache_dir);
    const char *from = opt->cache_from ? opt->cache_from : "set by the caller";
    /* NVIDIA keeps its own compiled-kernel cache; a second one only costs disk. PoCL
     * caches too, but still runs clang's preprocessor on every source at each
     * start (about 1 s for ours on 2 cores); loading our binaries takes 0.09 s. */
    int driver_caches = strncasecmp(ctx->info.platform_name, "NVIDIA", 6) == 0;
    if (opt->cache > 0) { ctx->cache_enabled = 1; WHY("%s", from); }
    else if (opt->cache < 0) { ctx->cache_enabled = 0; WHY("%s", from); }
    else if (driver_caches) { ctx->cache_enabled = 0; WHY("off by default: this driver caches compiled kernels itself"); }
    else { ctx->cache_enabled = 1; WHY("on by default"); }
    const char *bad;
    if (ctx->cache_enabled && !ctx->cache_dir[0]) {
        ctx->cache_enabled = 0;
        WHY("off: no cache folder (GRADFEAT_CACHE_DIR, XDG_CACHE_HOME, HOME or XDG_RUNTIME_DIR)");
    } else if (ctx->cache_enabled && (bad = gf_cache_dir_untrusted(ctx->cache_dir))) {
        ctx->cache_enabled = 0;
        WHY("%s", !strcmp(bad, "it is owned by another user") ? "off: the cache folder is owned by another user"
                  : !strcmp(bad, "others can write to it") ? "off: others can write to the cache folder"
                  : "off: the cache folder is not a directory");
        gf_log(ctx, GF_LOG_WARN, "not using the kernel cache %s: %s", ctx->cache_dir, bad);
    }
}
#undef WHY

/* The key covers everything that makes a binary invalid. */
static void cache_key(gf_ctx *ctx, const char *src, size_t len, const char *options, char *key, size_t ksz,
                      uint64_t *hash) {
    snprintf(key, ksz, "format=%d\ndevice=%s\nvendor=%s\ndriver=%s\nplatform=%s\noptions=%s\n", GF_CACHE_FORMAT,
             ctx->info.name, ctx->info.vendor, ctx->info.driver_version, ctx->info.platform_version, options);
    uint64_t h = gf_fnv1a(GF_FNV_INIT, key, strlen(key));
    h = gf_fnv1a(h, src, len);
    *hash = h;
}

static void cache_path(gf_ctx *ctx, const char *family, uint64_t hash, char *path, size_t n) {
    snprintf(path, n, "%s/%s-%016llx.bin", ctx->cache_dir, family, (unsigned long long)hash);
}

/* File layout: magic[8] | u32 key_len | key | u64 bin_len | u64 fnv(bin) | bin */
static cl_program cache_load(gf_ctx *ctx, const char *path, const char *key) {
    void *data; size_t n;
    char saved_err[sizeof ctx->err];
    memcpy(saved_err, ctx->err, sizeof saved_err);
    gf_status st = gf_read_file(ctx, path, &data, &n);
    memcpy(ctx->err, saved_err, sizeof saved_err);
    if (st != GF_OK) return NULL;
    const unsigned char *p = data;
    size_t klen = strlen(key);
    cl_program prog = NULL;
    uint32_t kl; uint64_t bl, bh;
    if (n < 8 + 4 || memcmp(p, CACHE_MAGIC, 8) != 0) goto bad;
    memcpy(&kl, p + 8, 4);
    if (kl != klen || n < 12 + (size_t)kl + 16 || memcmp(p + 12, key, klen) != 0) goto bad;
    memcpy(&bl, p + 12 + kl, 8);
    memcpy(&bh, p + 20 + kl, 8);
    if (bl != n - 28 - kl) goto bad;
    const unsigned char *bin = p + 28 + kl;
    if (gf_fnv1a(GF_FNV_INIT, bin, (size_t)bl) != bh) goto bad;
    size_t blen = (size_t)bl;
    cl_int e, bs;
    prog = clCreateProgramWithBinary(ctx->context, 1, &ctx->device, &blen, &bin, &bs, &e);
    if (e != CL_SUCCESS || bs != CL_SUCCESS) { if (prog) clReleaseProgram(prog); prog = NULL; goto bad; }
    if (clBuildProgram(prog, 1, &ctx->device, NULL, NULL, NULL) != CL_SUCCESS) {
        clReleaseProgram(prog); prog = NULL; goto bad;
    }
    free(data);
    return prog;
bad:
    gf_log(ctx, GF_LOG_INFO, "kernel cache entry %s is stale or corrupt; rebuilding from source", path);
    free(data);
    return NULL;
}

static void cache_save(gf_ctx *ctx, const char *path, const char *key, cl_program prog) {
    size_t blen = 0;
    if (clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof blen, &blen, NULL) != CL_SUCCESS || blen == 0) return;
    size_t klen = strlen(key);
    size_t total = 28 + klen + blen;
    unsigned char *buf = malloc(total);
    if (!buf) return;
    unsigned char *bin = buf + 28 + klen;
    if (clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bin, &bin, NULL) != CL_SUCCESS) { free(buf); return; }
    uint32_t kl = (uint32_t)klen; uint64_t bl = blen, bh = gf_fnv1a(GF_FNV_INIT, bin, blen);
    memcpy(buf, CACHE_MAGIC, 8);
    memcpy(buf + 8, &kl, 4);
    memcpy(buf + 12, key, klen);
    memcpy(buf + 12 + klen, &bl, 8);
    memcpy(buf + 20 + klen, &bh, 8);
    char saved_err[sizeof ctx->err];
    memcpy(saved_err, ctx->err, sizeof saved_err);
    if (gf_mkdirs(ctx->cache_dir) == 0 && gf_write_file_atomic(ctx, path, buf, total) == GF_OK) ctx->n_cache_saves++;
    else gf_log(ctx, GF_LOG_INFO, "could not write kernel cache entry %s (continuing without it)", path);
    memcpy(ctx->err, saved_err, sizeof saved_err);
    free(buf);
}

/* ---------------- build ---------------- */

static gf_status build_program(gf_ctx *ctx, const char *family, const char *defines, cl_program *out) {
    char *src; size_t len;
    GF_TRY(gf_kernel_source(ctx, family, &src, &len));
    char options[1024];
    snprintf(options, sizeof options, "-cl-std=CL1.2%s%s", defines && *defines ? " " : "", defines ? defines : "");
    char key[2048]; uint64_t hash; char path[1400];
    cache_key(ctx, src, len, options, key, sizeof key, &hash);
    cache_path(ctx, family, hash, path, sizeof path);
    if (ctx->cache_enabled) {
        cl_program p = cache_load(ctx, path, key);
        if (p) { ctx->n_cache_hits++; free(src); *out = p; return GF_OK; }
    }
    cl_int e;
    const char *s = src;
    cl_program prog = clCreateProgramWithSource(ctx->context, 1, &s, &len, &e);
    free(src);
    if (e != CL_SUCCESS) return gf_cl_fail(ctx, e, "clCreateProgramWithSource");
    e = clBuildProgram(prog, 1, &ctx->device, options, NULL, NULL);
    ctx->n_source_builds++;
    if (e != CL_SUCCESS) {
        size_t n = 0;
        clGetProgramBuildInfo(prog, ctx->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &n);
        char *log = malloc(n + 1);
        if (log) {
            log[0] = 0;
            clGetProgramBuildInfo(prog, ctx->device, CL_PROGRAM_BUILD_LOG, n, log, NULL);
            log[n] = 0;
        }
        snprintf(ctx->err, sizeof ctx->err, "building kernel file cl/%s.cl (options \"%s\") failed: %s (%d) on "
                 "device '%s'. Build log:\n%s", family, options, gf_cl_error_name(e), (int)e, ctx->info.name,
                 log ? log : "(unavailable)");
        free(log);
        clReleaseProgram(prog);
        return e == CL_BUILD_PROGRAM_FAILURE || e == CL_INVALID_BUILD_OPTIONS ? GF_ERR_BUILD : gf_cl_fail(ctx, e, "clBuildProgram");
    }
    if (ctx->cache_enabled) cache_save(ctx, path, key, prog);
    *out = prog;
    return GF_OK;
}

static gf_status get_program(gf_ctx *ctx, const char *family, const char *defines, gf_program_entry **out) {
    if (!defines) defines = "";
    for (gf_program_entry *p = ctx->programs; p; p = p->next)
        if (!strcmp(p->family, family) && !strcmp(p->defines, defines)) { *out = p; return GF_OK; }
    gf_program_entry *p = calloc(1, sizeof *p);
    if (!p) return gf_fail(ctx, GF_ERR_MEMORY, "out of memory");
    p->family = strdup(family);
    p->defines = strdup(defines);
    gf_status st = p->family && p->defines ? build_program(ctx, family, defines, &p->prog)
                                            : gf_fail(ctx, GF_ERR_MEMORY, "out of memory");
    if (st != GF_OK) { free(p->family); free(p->defines); free(p); return st; }
    p->next = ctx->programs;
    ctx->programs = p;
    *out = p;
    return GF_OK;
}

gf_status gf_kernel(gf_ctx *ctx, const char *family, const char *defines, const char *name, cl_kernel *out) {
    gf_program_entry *p;
    GF_TRY(get_program(ctx, family, defines, &p));
    for (gf_kernel_entry *k = ctx->kernels; k; k = k->next)
        if (k->prog == p && !strcmp(k->name, name)) { *out = k->k; return GF_OK; }
    cl_int e;
    cl_kernel k = clCreateKernel(p->prog, name, &e);
    if (e != CL_SUCCESS) {
        char what[256];
        snprintf(what, sizeof what, "clCreateKernel(%s from cl/%s.cl)", name, family);
        return gf_cl_fail(ctx, e, what);
    }
    gf_kernel_entry *ke = calloc(1, sizeof *ke);
    if (!ke || !(ke->name = strdup(name))) { free(ke); clReleaseKernel(k); return gf_fail(ctx, GF_ERR_MEMORY, "out of memory"); }
    ke->prog = p; ke->k = k;
    ke->next = ctx->kernels;
    ctx->kernels = ke;
    *out = k;
    return GF_OK;
}

void gf_program_cache_free(gf_ctx *ctx) {
    for (gf_kernel_entry *k = ctx->kernels, *n; k; k = n) { n = k->next; clReleaseKernel(k->k); free(k->name); free(k); }
    for (gf_program_entry *p = ctx->programs, *n; p; p = n) {
        n = p->next; clReleaseProgram(p->prog); free(p->family); free(p->defines); free(p);
    }
    ctx->kernels = NULL; ctx->programs = NULL;
}

gf_status gf_ctx_warmup(gf_ctx *ctx, double *seconds) {
    double t0 = gf_now();
    const char *const *names;
    int n = gf_kernel_families(&names);
    for (int i = 0; i < n; i++) {
        gf_program_entry *p;
        GF_TRY(get_program(ctx, names[i], "", &p));
    }
    if (seconds) *seconds = gf_now() - t0;
    return GF_OK;
}

/* ---------------- args and launches ---------------- */

gf_status gf_args(gf_ctx *ctx, cl_kernel k, const char *kname, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    cl_int e = CL_SUCCESS;
    cl_uint i = 0;
    for (const char *f = fmt; *f && e == CL_SUCCESS; f++, i++) {
        switch (*f) {
        case 'm': { cl_mem m = va_arg(ap, cl_mem); e = clSetKernelArg(k, i, sizeof m, &m); break; }
        case 'i': { cl_int v = va_arg(ap, int); e = clSetKernelArg(k, i, sizeof v, &v); break; }
        case 'u': { cl_uint v = va_arg(ap, unsigned); e = clSetKernelArg(k, i, sizeof v, &v); break; }
        case 'z': { cl_ulong v = (cl_ulong)va_arg(ap, size_t); e = clSetKernelArg(k, i, sizeof v, &v); break; }
        case 'f': { cl_float v = (cl_float)va_arg(ap, double); e = clSetKernelArg(k, i, sizeof v, &v); break; }
        case 'L': { size_t n = va_arg(ap, size_t); e = clSetKernelArg(k, i, n * sizeof(cl_float), NULL); break; }
        default: va_end(ap); return gf_fail(ctx, GF_ERR_INTERNAL, "gf_args(%s): bad format char '%c'", kname, *f);
        }
    }
    va_end(ap);
    if (e != CL_SUCCESS) {
        char what[256];
        snprintf(what, sizeof what, "clSetKernelArg(%s, arg %u)", kname, i - 1);
        return gf_cl_fail(ctx, e, what);
    }
    return GF_OK;
}

gf_status gf_launch(gf_ctx *ctx, cl_kernel k, const char *kname, cl_uint dims, const size_t *global, const size_t *local) {
    size_t g[3], wg = 1;
    if (dims < 1 || dims > 3) return gf_fail(ctx, GF_ERR_INTERNAL, "launch of %s: %u dimensions", kname, dims);
    if (!local && ctx->wg_cap)
        return gf_fail(ctx, GF_ERR_INTERNAL, "launch of %s without a local size cannot keep the work-group cap %zu",
                       kname, ctx->wg_cap);
    for (cl_uint d = 0; d < dims; d++) {
        g[d] = global[d] ? global[d] : 1;
        if (local && local[d]) g[d] = (g[d] + local[d] - 1) / local[d] * local[d];
        if (local) wg *= local[d] ? local[d] : 1;
    }
    /* a local size that did not come from gf_wg_limit: fail here rather than test at the wrong size */
    if (ctx->wg_cap && wg > ctx->wg_cap)
        return gf_fail(ctx, GF_ERR_INTERNAL, "launch of %s: work-group %zu above the cap %zu (max_work_group)", kname,
                       wg, ctx->wg_cap);
    if (local && wg > ctx->wg_launched_max) ctx->wg_launched_max = wg;
    cl_int e = clEnqueueNDRangeKernel(ctx->queue, k, dims, NULL, g, local, 0, NULL, NULL);
    if (e != CL_SUCCESS) {
        char what[256];
        snprintf(what, sizeof what, "clEnqueueNDRangeKernel(%s)", kname);
        return gf_cl_fail(ctx, e, what);
    }
    return GF_OK;
}

gf_status gf_wg_limit(gf_ctx *ctx, cl_kernel k, size_t cap, size_t *lim) {
    size_t kmax = 0;
    GF_CL(ctx, clGetKernelWorkGroupInfo(k, ctx->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof kmax, &kmax, NULL),
          "clGetKernelWorkGroupInfo(CL_KERNEL_WORK_GROUP_SIZE)");
    size_t l = cap;
    if (ctx->wg_cap && ctx->wg_cap < l) l = ctx->wg_cap;
    if (ctx->info.max_work_group && ctx->info.max_work_group < l) l = ctx->info.max_work_group;
    if (kmax && kmax < l) l = kmax;
    *lim = l ? l : 1;
    return GF_OK;
}

gf_status gf_pow2_local(gf_ctx *ctx, cl_kernel k, size_t cap, size_t work, size_t *out) {
    size_t lim = 1, L = 1;
    GF_TRY(gf_wg_limit(ctx, k, cap, &lim));
    while (L * 2 <= lim && (work == 0 || L < work)) L *= 2;
    *out = L;
    return GF_OK;
}

gf_status gf_launch1(gf_ctx *ctx, cl_kernel k, const char *kname, size_t n) {
    size_t local = 1;
    GF_TRY(gf_wg_limit(ctx, k, 64, &local));
    size_t global = n ? n : 1;
    return gf_launch(ctx, k, kname, 1, &global, &local);
}

/* ---------------- cache info / clear ---------------- */

/* Only gradfeat's own files: "<family>-<16 hex>.bin" that start with the cache magic, and the temp files
 * "<that>.tmp.<pid>" of a write that did not finish (of a process that is gone). A user's own *.bin in
 * GRADFEAT_CACHE_DIR is never counted or deleted. */
static int is_cache_file(const char *dir, const char *name) {
    const char *dash = strrchr(name, '-');
    if (!dash || dash == name) return 0;
    for (const char *q = name; q < dash; q++)
        if (!(islower((unsigned char)*q) || isdigit((unsigned char)*q) || *q == '_')) return 0;
    for (int i = 1; i <= 16; i++)
        if (!isxdigit((unsigned char)dash[i]) || isupper((unsigned char)dash[i])) return 0;
    const char *rest = dash + 17;
    if (!strncmp(rest, ".bin.tmp.", 9)) {
        char *end;
        long pid = strtol(rest + 9, &end, 10);
        return !*end && end != rest + 9 && pid > 0 && pid != (long)getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
    }
    /* the CLI's selftest verdicts (host/cli/devcheck.c): selftest-<hash>.txt, "pass ..." or "fail ..." */
    int verdict = !strncmp(name, "selftest-", 9) && dash == name + 8 && !strcmp(rest, ".txt");
    if (strcmp(rest, ".bin") && !verdict) return 0;
    char p[1400], magic[8];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int fd = open(p, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return 0;
    struct stat sb;
    int ok = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && read(fd, magic, verdict ? 5 : 8) == (verdict ? 5 : 8) &&
             (verdict ? !memcmp(magic, "pass ", 5) || !memcmp(magic, "fail ", 5) : !memcmp(magic, CACHE_MAGIC, 8));
    close(fd);
    return ok;
}

gf_status gf_cache_get_info(gf_ctx *ctx, gf_cache_info *info) {
    memset(info, 0, sizeof *info);
    snprintf(info->dir, sizeof info->dir, "%s", ctx->cache_dir);
    info->enabled = ctx->cache_enabled;
    info->why = ctx->cache_why;
    DIR *d = opendir(ctx->cache_dir);
    if (!d) return GF_OK;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!is_cache_file(ctx->cache_dir, de->d_name)) continue;
        char p[1400]; struct stat sb;
        snprintf(p, sizeof p, "%s/%s", ctx->cache_dir, de->d_name);
        if (stat(p, &sb) == 0) { info->entries++; info->bytes += (uint64_t)sb.st_size; }
    }
    closedir(d);
    return GF_OK;
}

gf_status gf_cache_clear(gf_ctx *ctx, int *removed) {
    *removed = 0;
    DIR *d = opendir(ctx->cache_dir);
    if (!d) return GF_OK;
    struct dirent *de;
    gf_status st = GF_OK;
    while ((de = readdir(d))) {
        if (!is_cache_file(ctx->cache_dir, de->d_name)) continue;
        char p[1400];
        snprintf(p, sizeof p, "%s/%s", ctx->cache_dir, de->d_name);
        if (unlink(p) == 0) (*removed)++;
        else st = gf_fail(ctx, GF_ERR_IO, "cannot remove %s: %s", p, strerror(errno));
    }
    closedir(d);
    return st;
}

void gf_cache_counters(const gf_ctx *ctx, int *source_builds, int *cache_hits, int *cache_saves) {
    if (source_builds) *source_builds = ctx->n_source_builds;
    if (cache_hits) *cache_hits = ctx->n_cache_hits;
    if (cache_saves) *cache_saves = ctx->n_cache_saves;
}
