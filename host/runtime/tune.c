/* CLBlast SGEMM tuning: `gradfeat tune` (gf_tune_run) and the file it leaves in the cache folder, read
 * and applied when a context is made (gf_tune_load).
 *
 * CLBlast 1.5.3's C API has no tuner (its tuners are C++ programs in clblast-utils that tune one shape
 * at a time), so this is a small search of its own: candidate parameter sets of the Xgemm kernel (large
 * GEMMs, with CLBlast's pre-processing of the operands) and the XgemmDirect kernel (small GEMMs), each
 * valid by the constraints of CLBlast's own tuners (src/tuning/kernels/xgemm.hpp, xgemm_direct.hpp),
 * handed to CLBlast with CLBlastOverrideParameters and timed with gf_gemm on gradfeat's GEMM shapes:
 * a handful of seeds, then a hill climb from the best (one parameter one step), with random restarts,
 * until the budget is spent. A candidate whose result differs from CLBlast's defaults beyond fp32
 * rounding is rejected. Then the size from which the indirect kernel is used (CLBlast's GemmRoutine
 * XGEMM_MIN_INDIRECT_SIZE) is chosen from the two winners' times.
 *
 * File: text lines, the last one a checksum of the others; the device, vendor, driver, platform and
 * CLBlast version it was made for; one "kernel NAME P=V ..." line per kernel ("kernel NAME default" =
 * CLBlast's own parameters won). Named by a hash of the same facts, so a driver update starts untuned. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <clblast_c.h>
#include "gf_file.h"
#include "gf_internal.h"

/* host/runtime/gemm.c: fd 1 points at stderr during a CLBlast call (CLBlast prints build logs to stdout) */
int gf_clblast_quiet_begin(void);
void gf_clblast_quiet_end(int saved);

#define TUNE_FORMAT 1
#define CLBLAST_VERSION "1.5.3"

/* ---------------- kernels and their parameters ---------------- */

enum { GEMMK, KREG, KWG, KWI, MDIMA, MDIMC, MWG, NDIMB, NDIMC, NWG, SA, SB, STRM, STRN, VWM, VWN, XG_N };
static const char *const xg_names[XG_N] = {"GEMMK", "KREG", "KWG", "KWI", "MDIMA", "MDIMC", "MWG", "NDIMB",
                                           "NDIMC", "NWG", "SA", "SB", "STRM", "STRN", "VWM", "VWN"};
/* the search space (CLBlast's extensive Xgemm tuner space, GEMMK 0) */
static const size_t xg_vals[XG_N][4] = {
    {0}, {1}, {16, 32}, {2, 8}, {8, 16, 32}, {8, 16, 32}, {16, 32, 64, 128}, {8, 16, 32}, {8, 16, 32},
    {16, 32, 64, 128}, {0, 1}, {0, 1}, {0, 1}, {0, 1}, {1, 2, 4, 8}, {1, 2, 4, 8}};
static const int xg_nvals[XG_N] = {1, 1, 2, 2, 3, 3, 4, 3, 3, 4, 2, 2, 2, 2, 4, 4};

enum { KWID, MDIMAD, MDIMCD, NDIMBD, NDIMCD, PADA, PADB, VWMD, VWND, WGD, XD_N };
static const char *const xd_names[XD_N] = {"KWID", "MDIMAD", "MDIMCD", "NDIMBD", "NDIMCD",
                                           "PADA", "PADB", "VWMD", "VWND", "WGD"};
static const size_t xd_vals[XD_N][4] = {
    {2, 8, 16}, {8, 16, 32}, {8, 16, 32}, {8, 16, 32}, {8, 16, 32}, {0, 1}, {0, 1}, {1, 2, 4, 8}, {1, 2, 4, 8},
    {8, 16, 32, 64}};
static const int xd_nvals[XD_N] = {3, 3, 3, 3, 3, 2, 2, 4, 4, 4};

static const char *const gr_names[1] = {"XGEMM_MIN_INDIRECT_SIZE"};

enum { K_XGEMM, K_DIRECT, K_ROUTINE, K_COUNT };
static const struct { const char *name; int n; const char *const *names; } kinfo[K_COUNT] = {
    {"Xgemm", XG_N, xg_names}, {"XgemmDirect", XD_N, xd_names}, {"GemmRoutine", 1, gr_names}};

static int mult(size_t a, size_t b) { return b != 0 && a % b == 0; }

/* CLBlast's constraints, the device's work-group and local-memory limits; why = the first one broken. */
static int xgemm_valid(const size_t *v, const gf_device_info *d, const char **why) {
    const char *w = NULL;
    for (int i = 0; i < XG_N && !w; i++) if (v[i] > 1024) w = "a value above 1024";
    if (w) {}
    else if (v[GEMMK] != 0 || v[KREG] != 1) w = "GEMMK must be 0 and KREG 1";
    else if (v[STRM] > 1 || v[STRN] > 1 || v[SA] > 1 || v[SB] > 1) w = "STRM, STRN, SA and SB are 0 or 1";
    else if (!v[MDIMA] || !v[NDIMB] || !v[MDIMC] || !v[NDIMC] || !v[VWM] || !v[VWN] || !v[KWI] || !v[KWG])
        w = "a size of 0";
    else if (!mult(v[KWG], v[KWI])) w = "KWG is not a multiple of KWI";
    else if (!mult(v[MWG], v[MDIMC] * v[VWM]) || !mult(v[NWG], v[NDIMC] * v[VWN])) w = "MWG/NWG vs MDIMC*VWM/NDIMC*VWN";
    else if (!mult(v[MWG], v[MDIMA] * v[VWM]) || !mult(v[NWG], v[NDIMB] * v[VWN])) w = "MWG/NWG vs MDIMA*VWM/NDIMB*VWN";
    else if (!mult(v[MDIMC] * v[NDIMC], v[MDIMA]) || !mult(v[MDIMC] * v[NDIMC], v[NDIMB]) ||
             !mult(v[KWG], v[MDIMC] * v[NDIMC] / v[MDIMA]) || !mult(v[KWG], v[MDIMC] * v[NDIMC] / v[NDIMB]))
        w = "KWG is not a multiple of KDIMA/KDIMB";
    else if (v[MDIMC] * v[NDIMC] > d->max_work_group) w = "work-group MDIMC*NDIMC above the device's limit";
    else if ((v[SA] * v[KWG] * v[MWG] + v[SB] * v[KWG] * v[NWG]) * sizeof(float) > d->local_mem)
        w = "more local memory than the device has";
    if (why) *why = w;
    return !w;
}

static int direct_valid(const size_t *v, const gf_device_info *d, const char **why) {
    const char *w = NULL;
    for (int i = 0; i < XD_N && !w; i++) if (v[i] > 1024) w = "a value above 1024";
    if (w) {}
    else if (v[PADA] > 1 || v[PADB] > 1) w = "PADA and PADB are 0 or 1";
    else if (!v[WGD] || !v[KWID] || !v[MDIMCD] || !v[NDIMCD] || !v[MDIMAD] || !v[NDIMBD] || !v[VWMD] || !v[VWND])
        w = "a size of 0";
    else if (!mult(v[WGD], v[KWID])) w = "WGD is not a multiple of KWID";
    else if (!mult(v[WGD], v[MDIMCD] * v[VWMD]) || !mult(v[WGD], v[NDIMCD] * v[VWND])) w = "WGD vs MDIMCD*VWMD/NDIMCD*VWND";
    else if (!mult(v[WGD], v[MDIMAD] * v[VWMD]) || !mult(v[WGD], v[NDIMBD] * v[VWND])) w = "WGD vs MDIMAD*VWMD/NDIMBD*VWND";
    else if (!mult(v[MDIMCD] * v[NDIMCD], v[MDIMAD]) || !mult(v[MDIMCD] * v[NDIMCD], v[NDIMBD]) ||
             !mult(v[WGD], v[MDIMCD] * v[NDIMCD] / v[MDIMAD]) || !mult(v[WGD], v[MDIMCD] * v[NDIMCD] / v[NDIMBD]))
        w = "WGD is not a multiple of KDIMAD/KDIMBD";
    else if (v[MDIMCD] * v[NDIMCD] > d->max_work_group) w = "work-group MDIMCD*NDIMCD above the device's limit";
    else if ((v[WGD] * (v[WGD] + v[PADA]) + v[WGD] * (v[WGD] + v[PADB])) * sizeof(float) > d->local_mem)
        w = "more local memory than the device has";
    if (why) *why = w;
    return !w;
}

static int kernel_valid(int k, const size_t *v, const gf_device_info *d, const char **why) {
    if (k == K_XGEMM) return xgemm_valid(v, d, why);
    if (k == K_DIRECT) return direct_valid(v, d, why);
    int ok = v[0] >= 1 && v[0] <= 1u << 20;
    if (why) *why = ok ? NULL : "XGEMM_MIN_INDIRECT_SIZE is not in 1..2^20";
    return ok;
}

static void kernel_line(int k, const size_t *v, char *out, size_t n) {
    size_t used = (size_t)snprintf(out, n, "%s", kinfo[k].name);
    for (int i = 0; i < kinfo[k].n && used < n; i++)
        used += (size_t)snprintf(out + used, n - used, " %s=%zu", kinfo[k].names[i], v[i]);
}

static CLBlastStatusCode override(gf_ctx *ctx, int k, const size_t *v) {
    int quiet = gf_clblast_quiet_begin();
    CLBlastStatusCode s = CLBlastOverrideParameters(ctx->device, kinfo[k].name, CLBlastPrecisionSingle,
                                                    (size_t)kinfo[k].n, (const char **)kinfo[k].names, v);
    gf_clblast_quiet_end(quiet);
    return s;
}

/* ---------------- the file ---------------- */

static void tune_path(const gf_ctx *ctx, char *out, size_t n) {
    char key[1024];
    snprintf(key, sizeof key, "device=%s\nvendor=%s\ndriver=%s\nplatform=%s\nclblast=%s\n", ctx->info.name,
             ctx->info.vendor, ctx->info.driver_version, ctx->info.platform_version, CLBLAST_VERSION);
    uint64_t h = gf_fnv1a(GF_FNV_INIT, key, strlen(key));
    snprintf(out, n, "%s/clblast-tune-%016" PRIx64 ".txt", ctx->cache_dir, h);
}

typedef struct tune_file {
    int has[K_COUNT], is_default[K_COUNT];
    size_t v[K_COUNT][XG_N];
    double gf_default, gf_tuned;
} tune_file;

/* Parse and check text (n bytes) against this device; 0 and why on failure. */
static int tune_parse(const gf_ctx *ctx, char *text, size_t n, tune_file *f, char *why, size_t wn) {
    memset(f, 0, sizeof *f);
    if (n == 0) { snprintf(why, wn, "the file is empty"); return 0; }
    if (memchr(text, 0, n)) { snprintf(why, wn, "the file is not text"); return 0; }
    text[n] = 0;
    /* the checksum line covers every byte before it */
    char *last = NULL;
    for (char *p = text; (p = strstr(p, "checksum ")); p++) if (p == text || p[-1] == '\n') last = p;
    uint64_t want;
    char tail;
    if (!last || sscanf(last, "checksum %16" SCNx64 "%c", &want, &tail) != 2 || tail != '\n' ||
        last + 26 != text + n) {
        snprintf(why, wn, "no checksum line at its end (truncated or edited)");
        return 0;
    }
    if (gf_fnv1a(GF_FNV_INIT, text, (size_t)(last - text)) != want) {
        snprintf(why, wn, "its checksum does not match its contents (corrupt or edited)");
        return 0;
    }
    *last = 0;
    int format = 0, seen_dev = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#' || !line[0]) continue;
        char *sp = strchr(line, ' ');
        const char *val = sp ? sp + 1 : "";
        if (sp) *sp = 0;
        struct { const char *key, *want; } facts[] = {
            {"device", ctx->info.name}, {"vendor", ctx->info.vendor}, {"driver", ctx->info.driver_version},
            {"platform", ctx->info.platform_version}, {"clblast", CLBLAST_VERSION}};
        int fact = -1;
        for (int i = 0; i < 5; i++) if (!strcmp(line, facts[i].key)) fact = i;
        if (!strcmp(line, "format")) {
            format = atoi(val);
        } else if (fact >= 0) {
            if (strcmp(val, facts[fact].want)) {
                snprintf(why, wn, "it was made for %s '%s', this is '%s'", facts[fact].key, val, facts[fact].want);
                return 0;
            }
            seen_dev |= 1 << fact;
        } else if (!strcmp(line, "sgemm_gflops")) {
            if (sscanf(val, "%lf %lf", &f->gf_default, &f->gf_tuned) != 2) f->gf_default = f->gf_tuned = 0;
        } else if (!strcmp(line, "kernel")) {
            char name[64];
            int used = 0;
            if (sscanf(val, "%63s%n", name, &used) != 1) { snprintf(why, wn, "a kernel line without a name"); return 0; }
            int k = -1;
            for (int i = 0; i < K_COUNT; i++) if (!strcmp(name, kinfo[i].name)) k = i;
            if (k < 0) { snprintf(why, wn, "unknown kernel '%s'", name); return 0; }
            if (f->has[k]) { snprintf(why, wn, "kernel %s twice", name); return 0; }
            f->has[k] = 1;
            const char *p = val + used;
            while (*p == ' ') p++;
            if (!strcmp(p, "default")) { f->is_default[k] = 1; continue; }
            int got = 0;
            while (*p) {
                char pn[64]; unsigned long long pv; int m = 0;
                if (sscanf(p, "%63[A-Z_]=%llu%n", pn, &pv, &m) != 2) {
                    snprintf(why, wn, "kernel %s: cannot read '%.40s'", name, p);
                    return 0;
                }
                int idx = -1;
                for (int i = 0; i < kinfo[k].n; i++) if (!strcmp(pn, kinfo[k].names[i])) idx = i;
                if (idx < 0 || (got >> idx) & 1) { snprintf(why, wn, "kernel %s: unknown or repeated parameter %s", name, pn); return 0; }
                got |= 1 << idx;
                f->v[k][idx] = (size_t)(pv > 1u << 20 ? 1u << 20 : pv);
                p += m;
                while (*p == ' ') p++;
            }
            if (got != (1 << kinfo[k].n) - 1) { snprintf(why, wn, "kernel %s: parameters missing", name); return 0; }
            const char *bad;
            if (!kernel_valid(k, f->v[k], &ctx->info, &bad)) {
                snprintf(why, wn, "kernel %s: invalid parameters (%s)", name, bad);
                return 0;
            }
        } else if (strcmp(line, "made")) {
            snprintf(why, wn, "unknown line '%.40s'", line);
            return 0;
        }
    }
    if (format != TUNE_FORMAT) { snprintf(why, wn, "format %d, this gradfeat reads %d", format, TUNE_FORMAT); return 0; }
    if (seen_dev != 31) { snprintf(why, wn, "it does not name the device, vendor, driver, platform and CLBlast version"); return 0; }
    return 1;
}

void gf_tune_load(gf_ctx *ctx, const gf_ctx_options *opt) {
    gf_tune_info *t = &ctx->tune;
    memset(t, 0, sizeof *t);
    if (!ctx->cache_dir[0]) { snprintf(t->note, sizeof t->note, "no cache folder (GRADFEAT_CACHE_DIR, XDG_CACHE_HOME, HOME)"); return; }
    tune_path(ctx, t->path, sizeof t->path);
    const char *bad = gf_cache_dir_untrusted(ctx->cache_dir);
    int use = opt->tuning >= 0 && !ctx->host_blas;
    int level = use ? GF_LOG_WARN : GF_LOG_INFO;
    if (bad) {
        t->state = GF_TUNE_IGNORED;
        snprintf(t->note, sizeof t->note, "not read: the cache folder %.400s cannot be trusted (%s)", ctx->cache_dir, bad);
        return;
    }
    struct stat sb;
    if (stat(t->path, &sb) != 0 && errno == ENOENT) {
        snprintf(t->note, sizeof t->note, "not tuned: run `gradfeat tune`");
        return;
    }
    FILE *fp = NULL;
    char why0[128];
    int fd = gf_open_regular(t->path, why0, sizeof why0);
    if (fd >= 0 && !(fp = fdopen(fd, "rb"))) close(fd);
    if (!fp) {
        t->state = GF_TUNE_IGNORED;
        snprintf(t->note, sizeof t->note, "%s", fd >= 0 ? strerror(errno) : why0);
        gf_log(ctx, level, "ignoring the CLBlast tuning file %s: %s; CLBlast's default parameters are used", t->path, t->note);
        return;
    }
    enum { MAX = 16384 };
    char *text = malloc(MAX + 1);
    size_t n = text ? fread(text, 1, MAX + 1, fp) : 0;
    fclose(fp);
    tune_file f;
    char why[512];
    int ok = 0;
    if (!text) snprintf(why, sizeof why, "out of memory");
    else if (n > MAX) snprintf(why, sizeof why, "larger than %d bytes", MAX);
    else ok = tune_parse(ctx, text, n, &f, why, sizeof why);
    free(text);
    if (!ok) {
        t->state = GF_TUNE_IGNORED;
        snprintf(t->note, sizeof t->note, "%s; ignored, run `gradfeat tune` to make it again", why);
        gf_log(ctx, level, "ignoring the CLBlast tuning file %s: %s; CLBlast's default parameters are used", t->path, why);
        return;
    }
    t->gflops_default = f.gf_default;
    t->gflops_tuned = f.gf_tuned;
    if (!use) {
        t->state = GF_TUNE_UNUSED;
        snprintf(t->note, sizeof t->note, "tuned, not applied: %s", opt->tuning < 0 ? "tuning is off (GRADFEAT_TUNING=0)"
                 : "GEMMs run in the host BLAS on this device (GRADFEAT_GEMM=clblast uses CLBlast)");
        return;
    }
    size_t used = (size_t)snprintf(t->note, sizeof t->note, "applied:");
    for (int k = 0; k < K_COUNT; k++) {
        if (!f.has[k]) continue;
        if (f.is_default[k]) {
            used += (size_t)snprintf(t->note + used, used < sizeof t->note ? sizeof t->note - used : 0, " %s default;", kinfo[k].name);
            continue;
        }
        CLBlastStatusCode s = override(ctx, k, f.v[k]);
        if (s != CLBlastSuccess) {
            t->state = GF_TUNE_IGNORED;
            snprintf(t->note, sizeof t->note, "CLBlast refused its %s parameters (status %d); run `gradfeat tune` again",
                     kinfo[k].name, (int)s);
            gf_log(ctx, GF_LOG_WARN, "CLBlast tuning file %s: %s", t->path, t->note);
            return;
        }
        char line[512];
        kernel_line(k, f.v[k], line, sizeof line);
        used += (size_t)snprintf(t->note + used, used < sizeof t->note ? sizeof t->note - used : 0, " %s;", line);
    }
    t->state = GF_TUNE_APPLIED;
    gf_log(ctx, GF_LOG_INFO, "CLBlast tuning %s %s", t->path, t->note);
}

void gf_tune_get_info(const gf_ctx *ctx, gf_tune_info *info) { *info = ctx->tune; }

/* CLBlast compiles its work-group sizes into its kernels: 8 x 8 = 64 work-items with its default parameters,
 * more in some tuned entries. Where the device's limit or the work-group cap (--max-work-group, which
 * imitates a smaller device) is lower, every CLBlast GEMM fails with CL_INVALID_WORK_GROUP_SIZE. So under a
 * cap, or below 64, every kernel an SGEMM runs (the two GEMM kernels and the operand copy, pad and transpose
 * kernels) gets parameters of d x d work-items, d the largest power of two with d * d <= the limit (at most
 * 16): valid by CLBlast's constraints, no local memory in Xgemm, slower than tuned ones but correct. */
gf_status gf_tune_fit_limit(gf_ctx *ctx) {
    size_t limit = ctx->info.max_work_group;
    if (ctx->wg_cap && ctx->wg_cap < limit) limit = ctx->wg_cap;
    /* a tuning file's parameters were checked against the device's limit when it was made */
    if (ctx->host_blas || (!ctx->wg_cap && (limit >= 64 || ctx->tune.state == GF_TUNE_APPLIED))) return GF_OK;
    size_t d = 1;
    while (d < 16 && (2 * d) * (2 * d) <= limit) d *= 2;
    /* Xgemm: GEMMK KREG KWG KWI MDIMA MDIMC MWG NDIMB NDIMC NWG SA SB STRM STRN VWM VWN */
    const size_t xg[XG_N] = {0, 1, 16, 2, d, d, 16, d, d, 16, 0, 0, 0, 0, 1, 1};
    /* XgemmDirect: KWID MDIMAD MDIMCD NDIMBD NDIMCD PADA PADB VWMD VWND WGD */
    const size_t xd[XD_N] = {2, d, d, d, d, 1, 1, 1, 1, 16};
    static const char *const copy_n[] = {"COPY_DIMX", "COPY_DIMY", "COPY_VW", "COPY_WPT"};
    static const char *const pad_n[] = {"PAD_DIMX", "PAD_DIMY", "PAD_WPTX", "PAD_WPTY"};
    static const char *const tra_n[] = {"TRA_DIM", "TRA_PAD", "TRA_SHUFFLE", "TRA_WPT"};
    static const char *const padtra_n[] = {"PADTRA_PAD", "PADTRA_TILE", "PADTRA_WPT"};
    const size_t copy_v[] = {d, d, 1, 1}, pad_v[] = {d, d, 1, 1}, tra_v[] = {d, 0, 0, 1}, padtra_v[] = {0, d, 1};
    const struct { const char *kernel; size_t n; const char *const *names; const size_t *v; } set[] = {
        {"Xgemm", XG_N, xg_names, xg}, {"XgemmDirect", XD_N, xd_names, xd}, {"Copy", 4, copy_n, copy_v},
        {"Pad", 4, pad_n, pad_v}, {"Transpose", 4, tra_n, tra_v}, {"Padtranspose", 3, padtra_n, padtra_v}};
    for (size_t i = 0; i < sizeof set / sizeof *set; i++) {
        int quiet = gf_clblast_quiet_begin();
        CLBlastStatusCode s = CLBlastOverrideParameters(ctx->device, set[i].kernel, CLBlastPrecisionSingle, set[i].n,
                                                        (const char **)set[i].names, set[i].v);
        gf_clblast_quiet_end(quiet);
        if (s != CLBlastSuccess) {
            char what[96];
            snprintf(what, sizeof what, "CLBlastOverrideParameters (%s, %zu x %zu work-items)", set[i].kernel, d, d);
            return gf_clblast_fail(ctx, s, what);
        }
    }
    if (ctx->tune.state == GF_TUNE_APPLIED) {   /* the tuned sizes may not fit: the small ones replace them */
        ctx->tune.state = GF_TUNE_UNUSED;
        snprintf(ctx->tune.note, sizeof ctx->tune.note, "tuned, not applied: CLBlast's kernels run %zu x %zu "
                 "work-items to fit the work-group limit %zu", d, d, limit);
    }
    gf_log(ctx, GF_LOG_INFO, "CLBlast: %zu x %zu work-items per work-group to fit the limit of %zu", d, d, limit);
    return GF_OK;
}

/* ---------------- the search ---------------- */

typedef struct shape {
    int ta, tb;
    size_t M, N, K;
    const char *what;
    cl_mem A, B, C;
    float *ref;           /* CLBlast's result with its default parameters */
    double t_ind, t_dir;  /* best times of the winners, indirect / direct */
} shape;

enum { S_LARGE = 3, S_MID = 3, S_SMALL = 3, S_ALL = 9 };

typedef struct tuner {
    gf_ctx *ctx;
    shape s[S_ALL];
    int reps;
    uint64_t rng;
    int tried, failed;
    double t0;
} tuner;

static uint64_t rnd(tuner *T) {
    T->rng = T->rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return T->rng >> 33;
}

static double flops(const shape *s) { return 2.0 * (double)s->M * (double)s->N * (double)s->K; }

static gf_status upload(gf_ctx *ctx, size_t n, uint64_t seed, const char *what, cl_mem *out) {
    float *h = malloc(n * sizeof(float));
    if (!h) return gf_fail(ctx, GF_ERR_MEMORY, "tune: out of host memory for %s", what);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        h[i] = (float)((double)(seed >> 40) / 8388608.0 - 1.0);
    }
    gf_status st = gf_buf_create_from(ctx, n * sizeof(float), h, what, out);
    free(h);
    return st;
}

static void shape_set(shape *s, int ta, int tb, size_t M, size_t N, size_t K, const char *what) {
    s->ta = ta; s->tb = tb; s->M = M; s->N = N; s->K = K; s->what = what;
}

static gf_status run1(gf_ctx *ctx, shape *s) {
    size_t lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N;
    return gf_gemm(ctx, s->ta, s->tb, s->M, s->N, s->K, 1.0f, s->A, 0, lda, s->B, 0, ldb, 0.0f, s->C, 0, s->N);
}

/* 1: C matches the reference within fp32 rounding (|d| <= 1e-4 * (1 + max |ref|), sums of up to 4608
 * products of values in [-1, 1]); 0: wrong; the read itself may fail. */
static gf_status check1(gf_ctx *ctx, shape *s, int *ok) {
    size_t n = s->M * s->N;
    float *h = malloc(n * sizeof(float));
    if (!h) return gf_fail(ctx, GF_ERR_MEMORY, "tune: out of host memory");
    gf_status st = gf_buf_read(ctx, s->C, 0, n * sizeof(float), h);
    if (st == GF_OK) {
        double mx = 0, md = 0;
        for (size_t i = 0; i < n; i++) {
            double r = fabs((double)s->ref[i]), d = fabs((double)h[i] - (double)s->ref[i]);
            if (r > mx) mx = r;
            if (!(d <= md)) md = d;   /* NaN counts */
        }
        *ok = md <= 1e-4 * (1.0 + mx);
    }
    free(h);
    return st;
}

/* Time shapes [from, to) with the parameters in force: a warm-up launch (builds the program) checked
 * against the reference, then reps timed launches, the fastest counts. *total = the sum; NAN when a
 * launch fails or gives wrong numbers (rejected); INFINITY once the sum so far is 30 % above that of
 * cut (the best so far, per shape; NULL = no cut). times[i] per shape. */
static gf_status time_shapes(tuner *T, int from, int to, const double *cut, int check, double *total, double *times) {
    gf_ctx *ctx = T->ctx;
    double ref = 0;
    *total = 0;
    for (int i = from; i < to; i++) {
        shape *s = &T->s[i];
        char saved[sizeof ctx->err];
        memcpy(saved, ctx->err, sizeof saved);
        gf_status st = run1(ctx, s);
        if (st == GF_OK) st = gf_ctx_finish(ctx);
        if (st == GF_ERR_MEMORY && !strstr(ctx->err, "CLBlast")) return st;
        if (st != GF_OK) {
            gf_log(ctx, GF_LOG_INFO, "tune: candidate rejected at %s: %s", s->what, ctx->err);
            memcpy(ctx->err, saved, sizeof saved);
            *total = NAN;
            return GF_OK;
        }
        if (check) {
            int ok = 0;
            GF_TRY(check1(ctx, s, &ok));
            if (!ok) {
                gf_log(ctx, GF_LOG_INFO, "tune: candidate rejected at %s: results differ from CLBlast's defaults", s->what);
                *total = NAN;
                return GF_OK;
            }
        }
        double best = INFINITY;
        for (int r = 0; r < T->reps; r++) {
            double t0 = gf_now();
            GF_TRY(run1(ctx, s));
            GF_TRY(gf_ctx_finish(ctx));
            double dt = gf_now() - t0;
            if (dt < best) best = dt;
        }
        if (times) times[i] = best;
        *total += best;
        if (cut) ref += cut[i];
        if (cut && isfinite(ref) && *total > 1.3 * ref) { *total = INFINITY; return GF_OK; }
    }
    return GF_OK;
}

static double gflops_of(const tuner *T, int from, int to, double secs) {
    double f = 0;
    for (int i = from; i < to; i++) f += flops(&T->s[i]);
    return secs > 0 && isfinite(secs) ? f / secs * 1e-9 : 0;
}

static gf_status set_routine(gf_ctx *ctx, size_t min_indirect) {
    CLBlastStatusCode s = override(ctx, K_ROUTINE, &min_indirect);
    return s == CLBlastSuccess ? GF_OK : gf_clblast_fail(ctx, s, "CLBlastOverrideParameters (GemmRoutine)");
}

/* Hand-picked starting points (validated like the rest; invalid ones are skipped). */
static const size_t xg_seeds[][XG_N] = {
    {0, 1, 32, 2, 16, 16, 64, 16, 16, 64, 0, 0, 0, 0, 4, 4},
    {0, 1, 32, 2, 8, 8, 64, 8, 8, 64, 0, 0, 0, 0, 8, 8},
    {0, 1, 32, 2, 16, 8, 128, 16, 8, 128, 0, 0, 1, 1, 8, 8},
    {0, 1, 16, 2, 8, 8, 32, 8, 8, 32, 0, 0, 0, 0, 4, 4},
    {0, 1, 32, 8, 16, 16, 128, 16, 16, 128, 0, 0, 0, 0, 8, 8},
    {0, 1, 32, 2, 8, 16, 64, 8, 16, 64, 0, 0, 0, 0, 8, 4},
    {0, 1, 32, 2, 8, 8, 32, 8, 8, 32, 1, 1, 0, 0, 4, 4},
    {0, 1, 16, 8, 8, 8, 64, 8, 8, 64, 0, 0, 0, 0, 8, 8},
};
static const size_t xd_seeds[][XD_N] = {
    {2, 8, 8, 8, 8, 1, 1, 2, 2, 32},
    {8, 16, 16, 16, 16, 0, 0, 2, 2, 64},
    {2, 8, 8, 8, 8, 0, 0, 4, 4, 32},
    {8, 16, 16, 16, 16, 1, 1, 4, 4, 64},
    {16, 8, 8, 8, 8, 0, 0, 1, 1, 16},
};

typedef struct search {
    int k, np;
    const size_t (*vals)[4];
    const int *nvals;
    size_t best[XG_N];
    double best_times[S_ALL];   /* per shape */
    int best_is_default;
    double best_t, default_t;
    size_t (*tried)[XG_N];
    int ntried, cap;
} search;

static int was_tried(const search *S, const size_t *v) {
    for (int i = 0; i < S->ntried; i++)
        if (!memcmp(S->tried[i], v, sizeof(size_t) * (size_t)S->np)) return 1;
    return 0;
}

static int value_index(const search *S, int p, size_t v) {
    for (int j = 0; j < S->nvals[p]; j++) if (S->vals[p][j] == v) return j;
    return -1;
}

/* The next candidate: seeds first, then a neighbour of the best (one parameter one step in its list),
 * else a random valid point. 0 when none could be found. */
static int next_candidate(tuner *T, search *S, int *seed_i, int nseeds, const size_t *seeds, size_t *out) {
    const gf_device_info *d = &T->ctx->info;
    while (*seed_i < nseeds) {
        const size_t *v = seeds + (size_t)(*seed_i)++ * (size_t)S->np;
        if (kernel_valid(S->k, v, d, NULL) && !was_tried(S, v)) { memcpy(out, v, sizeof(size_t) * (size_t)S->np); return 1; }
    }
    if (!S->best_is_default) {
        for (int a = 0; a < 200; a++) {
            memcpy(out, S->best, sizeof(size_t) * (size_t)S->np);
            int p = (int)(rnd(T) % (uint64_t)S->np);
            if (S->nvals[p] < 2) continue;
            int j = value_index(S, p, out[p]);
            int step = rnd(T) & 1 ? 1 : -1;
            if (j < 0) j = 0;
            j += step;
            if (j < 0 || j >= S->nvals[p]) j -= 2 * step;
            if (j < 0 || j >= S->nvals[p]) continue;
            out[p] = S->vals[p][j];
            /* a second parameter now and then: pairs like MWG/MDIMC move together */
            if (rnd(T) % 3 == 0) {
                int q = (int)(rnd(T) % (uint64_t)S->np);
                if (S->nvals[q] > 1) out[q] = S->vals[q][rnd(T) % (uint64_t)S->nvals[q]];
            }
            if (kernel_valid(S->k, out, d, NULL) && !was_tried(S, out)) return 1;
        }
    }
    for (int a = 0; a < 20000; a++) {
        for (int p = 0; p < S->np; p++) out[p] = S->vals[p][rnd(T) % (uint64_t)S->nvals[p]];
        if (kernel_valid(S->k, out, d, NULL) && !was_tried(S, out)) return 1;
    }
    return 0;
}

static void progress_line(tuner *T, const search *S, double deadline, int from, int to) {
    double now = gf_now(), left = deadline - now;
    char eta[32];
    gf_fmt_secs(eta, sizeof eta, left > 0 ? left : 0);
    gf_progress(T->ctx, GF_PROGRESS_STEP, "tune %s: %d tried (%d rejected), best %.1f GFLOP/s (default %.1f), ETA %s",
                kinfo[S->k].name, T->tried, T->failed, gflops_of(T, from, to, S->best_t),
                gflops_of(T, from, to, S->default_t), eta);
}

/* Search kernel k on shapes [from, to) until deadline (at least one candidate besides the default). */
static gf_status run_search(tuner *T, search *S, double deadline, int from, int to, int nseeds, const size_t *seeds) {
    int seed_i = 0, n = 0;
    size_t cand[XG_N];
    double last_report = 0;
    while (n == 0 || gf_now() < deadline) {
        if (!next_candidate(T, S, &seed_i, nseeds, seeds, cand)) break;
        if (S->ntried == S->cap) {
            int cap = S->cap ? 2 * S->cap : 256;
            void *p = realloc(S->tried, sizeof *S->tried * (size_t)cap);
            if (!p) return gf_fail(T->ctx, GF_ERR_MEMORY, "tune: out of host memory");
            S->tried = p; S->cap = cap;
        }
        memcpy(S->tried[S->ntried++], cand, sizeof(size_t) * (size_t)S->np);
        n++;
        T->tried++;
        CLBlastStatusCode cs = override(T->ctx, S->k, cand);
        double t = NAN, c0 = gf_now();
        double times[S_ALL];
        if (cs == CLBlastSuccess) GF_TRY(time_shapes(T, from, to, S->best_times, 1, &t, times));
        /* drop the programs built for this candidate */
        CLBlastClearCache();
        if (isnan(t)) T->failed++;
        char line[512];
        kernel_line(S->k, cand, line, sizeof line);
        gf_log(T->ctx, GF_LOG_INFO, "tune: %s in %.1f s: %s", isnan(t) ? "rejected" : !isfinite(t) ? "slower, cut short"
               : "timed", gf_now() - c0, line);
        if (isfinite(t)) gf_log(T->ctx, GF_LOG_INFO, "tune:   %.1f GFLOP/s", gflops_of(T, from, to, t));
        if (t < S->best_t) {
            S->best_t = t;
            memcpy(S->best_times, times, sizeof times);
            memcpy(S->best, cand, sizeof(size_t) * (size_t)S->np);
            S->best_is_default = 0;
            gf_log(T->ctx, GF_LOG_INFO, "tune: new best");
        }
        if (gf_now() - last_report > 2 || gf_now() >= deadline) {
            progress_line(T, S, deadline, from, to);
            last_report = gf_now();
        }
    }
    return GF_OK;
}

static gf_status tuner_setup(tuner *T, int batch) {
    gf_ctx *ctx = T->ctx;
    size_t cols = (size_t)batch * 49;        /* ResNet-18 layer4: 512 -> 512 channels, 3x3, 7x7 maps */
    shape_set(&T->s[0], 0, 0, 512, cols, 4608, "conv forward (NN)");
    shape_set(&T->s[1], 0, 1, 512, 4608, cols, "conv weight gradient (NT)");
    shape_set(&T->s[2], 1, 0, 4608, cols, 512, "conv input gradient (TN)");
    /* a small conv: 64 -> 64 channels, 3x3, 16x16 maps, batch 4 */
    shape_set(&T->s[3], 0, 0, 64, 1024, 576, "small conv forward (NN)");
    shape_set(&T->s[4], 0, 1, 64, 576, 1024, "small conv weight gradient (NT)");
    shape_set(&T->s[5], 1, 0, 576, 1024, 64, "small conv input gradient (TN)");
    /* the linear head: batch 64, 512 features, 10 classes */
    shape_set(&T->s[6], 0, 1, 64, 10, 512, "head forward (NT)");
    shape_set(&T->s[7], 0, 0, 64, 512, 10, "head input gradient (NN)");
    shape_set(&T->s[8], 1, 0, 10, 512, 64, "head weight gradient (TN)");
    for (int i = 0; i < S_ALL; i++) {
        shape *s = &T->s[i];
        GF_TRY(upload(ctx, s->M * s->K, 11 + (uint64_t)i, "tune GEMM A", &s->A));
        GF_TRY(upload(ctx, s->K * s->N, 101 + (uint64_t)i, "tune GEMM B", &s->B));
        GF_TRY(gf_buf_create(ctx, s->M * s->N * sizeof(float), "tune GEMM C", &s->C));
        s->ref = malloc(s->M * s->N * sizeof(float));
        if (!s->ref) return gf_fail(ctx, GF_ERR_MEMORY, "tune: out of host memory");
    }
    return GF_OK;
}

static void tuner_free(tuner *T) {
    for (int i = 0; i < S_ALL; i++) {
        gf_buf_release(&T->s[i].A);
        gf_buf_release(&T->s[i].B);
        gf_buf_release(&T->s[i].C);
        free(T->s[i].ref);
    }
}

/* The file's text, with its checksum line. */
static char *tune_text(const gf_ctx *ctx, const gf_tune_options *o, const gf_tune_result *r, size_t *n) {
    char made[64];
    time_t now = time(NULL);
    struct tm tm;
    strftime(made, sizeof made, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    gf_sink s = {0};
    char buf[2048];
    int m = snprintf(buf, sizeof buf,
                     "# gradfeat tune: CLBlast SGEMM parameters for this device and driver (README \"Tuning CLBlast\")\n"
                     "format %d\ndevice %s\nvendor %s\ndriver %s\nplatform %s\nclblast %s\n"
                     "made %s budget %.0f batch %d\nsgemm_gflops %.2f %.2f\n",
                     TUNE_FORMAT, ctx->info.name, ctx->info.vendor, ctx->info.driver_version,
                     ctx->info.platform_version, CLBLAST_VERSION, made, o->budget, o->batch, r->gflops_default,
                     r->gflops_tuned);
    gf_sink_put(&s, buf, (size_t)m);
    const char *lines[3] = {r->xgemm, r->direct, r->routine};
    for (int i = 0; i < 3; i++) {
        m = snprintf(buf, sizeof buf, "kernel %s\n", lines[i]);
        gf_sink_put(&s, buf, (size_t)m);
    }
    if (s.oom) { free(s.p); return NULL; }
    m = snprintf(buf, sizeof buf, "checksum %016" PRIx64 "\n", gf_fnv1a(GF_FNV_INIT, s.p, s.n));
    gf_sink_put(&s, buf, (size_t)m);
    if (s.oom) { free(s.p); return NULL; }
    *n = s.n;
    return s.p;
}

static gf_status tune_body(tuner *T, gf_tune_options *o, gf_tune_result *res, search *X, search *D) {
    gf_ctx *ctx = T->ctx;
    GF_TRY(tuner_setup(T, o->batch));
    double t_all;
    double tb[S_ALL], td[S_ALL], ti[S_ALL], xdef[S_ALL], ddef[S_ALL], unused;
    /* 1. CLBlast as it is: the "before" figure and the reference results */
    gf_progress(ctx, GF_PROGRESS_LINE, "tune: timing CLBlast's default parameters on %d GEMM shapes", S_ALL);
    GF_TRY(time_shapes(T, 0, S_ALL, NULL, 0, &t_all, tb));
    if (!isfinite(t_all)) return gf_fail(ctx, GF_ERR_INTERNAL, "tune: CLBlast's SGEMM fails on this device with its "
                                         "default parameters; nothing to tune (see gradfeat selftest)");
    for (int i = 0; i < S_ALL; i++) {
        shape *s = &T->s[i];
        GF_TRY(run1(ctx, s));
        GF_TRY(gf_buf_read(ctx, s->C, 0, s->M * s->N * sizeof(float), s->ref));
    }
    double t_large = tb[0] + tb[1] + tb[2];
    res->gflops_default = gflops_of(T, 0, S_LARGE, t_large);
    res->all_default = gflops_of(T, 0, S_ALL, t_all);
    gf_progress(ctx, GF_PROGRESS_LINE, "tune: default %.1f GFLOP/s at the large shapes, %.1f on all", res->gflops_default,
                res->all_default);
    /* 2. the default kernels by route: indirect (Xgemm) on the large and mid shapes, direct on mid and small */
    int mid = S_LARGE, small = S_LARGE + S_MID;
    for (int i = 0; i < S_ALL; i++) xdef[i] = ddef[i] = INFINITY;
    GF_TRY(set_routine(ctx, 1));
    GF_TRY(time_shapes(T, 0, S_ALL, NULL, 1, &unused, xdef));
    X->default_t = xdef[0] + xdef[1] + xdef[2] + xdef[3] + xdef[4] + xdef[5];
    GF_TRY(set_routine(ctx, 1u << 20));
    GF_TRY(time_shapes(T, mid, S_ALL, NULL, 1, &unused, ddef));
    D->default_t = ddef[3] + ddef[4] + ddef[5] + ddef[6] + ddef[7] + ddef[8];
    /* a default that fails (NAN, INFINITY) loses to any candidate that works */
    X->best_t = isfinite(X->default_t) ? X->default_t : INFINITY; X->best_is_default = 1;
    D->best_t = isfinite(D->default_t) ? D->default_t : INFINITY; D->best_is_default = 1;
    for (int i = 0; i < S_ALL; i++) {
        X->best_times[i] = isfinite(X->default_t) ? xdef[i] : INFINITY;
        D->best_times[i] = isfinite(D->default_t) ? ddef[i] : INFINITY;
    }
    /* 3. the searches: three quarters of the budget for Xgemm, which carries the large GEMMs */
    double start = gf_now();
    GF_TRY(set_routine(ctx, 1));
    GF_TRY(run_search(T, X, start + 0.75 * o->budget, 0, small, (int)(sizeof xg_seeds / sizeof xg_seeds[0]),
                      &xg_seeds[0][0]));
    GF_TRY(set_routine(ctx, 1u << 20));
    GF_TRY(run_search(T, D, start + o->budget, mid, S_ALL, (int)(sizeof xd_seeds / sizeof xd_seeds[0]),
                      &xd_seeds[0][0]));
    /* 4. the winners (CLBlast's defaults cannot be restored once overridden: a default winner keeps its
     * timing from step 2) on every shape by route, then the switch-over size */
    memcpy(ti, xdef, sizeof ti);
    memcpy(td, ddef, sizeof td);
    if (!X->best_is_default) {
        for (int i = 0; i < S_ALL; i++) ti[i] = INFINITY;
        GF_TRY(set_routine(ctx, 1));
        if (override(ctx, K_XGEMM, X->best) == CLBlastSuccess) GF_TRY(time_shapes(T, 0, S_ALL, NULL, 1, &unused, ti));
    }
    if (!D->best_is_default) {
        for (int i = 0; i < S_ALL; i++) td[i] = INFINITY;
        GF_TRY(set_routine(ctx, 1u << 20));
        if (override(ctx, K_DIRECT, D->best) == CLBlastSuccess) GF_TRY(time_shapes(T, mid, S_ALL, NULL, 1, &unused, td));
    }
    /* sizes are compared as cube roots of M*N*K; candidates between and around the shapes */
    static const size_t sizes[] = {16, 32, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536};
    size_t best_size = 0;
    double best_sum = INFINITY;
    for (size_t c = 0; c < sizeof sizes / sizeof sizes[0]; c++) {
        double sum = 0, lim = (double)sizes[c] * (double)sizes[c] * (double)sizes[c];
        for (int i = 0; i < S_ALL; i++) {
            double mnk = (double)T->s[i].M * (double)T->s[i].N * (double)T->s[i].K;
            double ts = mnk < lim ? td[i] : ti[i];
            sum += ts == ts ? ts : INFINITY;
        }
        if (sum < best_sum * 0.999) { best_sum = sum; best_size = sizes[c]; }
    }
    if (!isfinite(best_sum)) return gf_fail(ctx, GF_ERR_INTERNAL, "tune: the chosen parameters failed their final "
                                            "check (%s)", gf_ctx_last_error(ctx));
    double large = ti[0] + ti[1] + ti[2];
    res->gflops_tuned = gflops_of(T, 0, S_LARGE, large);
    res->all_tuned = gflops_of(T, 0, S_ALL, best_sum);
    if (X->best_is_default) snprintf(res->xgemm, sizeof res->xgemm, "Xgemm default");
    else kernel_line(K_XGEMM, X->best, res->xgemm, sizeof res->xgemm);
    if (D->best_is_default) snprintf(res->direct, sizeof res->direct, "XgemmDirect default");
    else kernel_line(K_DIRECT, D->best, res->direct, sizeof res->direct);
    kernel_line(K_ROUTINE, &best_size, res->routine, sizeof res->routine);
    res->tried = T->tried;
    res->failed = T->failed;
    return GF_OK;
}

gf_status gf_tune_run(gf_ctx *ctx, const gf_tune_options *opt, gf_tune_result *res) {
    memset(res, 0, sizeof *res);
    gf_tune_options o = opt ? *opt : (gf_tune_options){0};
    if (o.budget < 0 || o.batch < 0 || o.reps < 0)
        return gf_fail(ctx, GF_ERR_USAGE, "tune: budget, batch and reps must not be negative");
    if (!o.budget) o.budget = 120;
    if (!o.batch) o.batch = 8;
    if (!o.reps) o.reps = 2;
    if (o.batch > 256) return gf_fail(ctx, GF_ERR_USAGE, "tune: batch %d is above 256", o.batch);
    char path[1100] = "";
    if (!o.dry_run) {
        const char *bad;
        if (!ctx->cache_dir[0])
            return gf_fail(ctx, GF_ERR_IO, "tune: no cache folder to keep the parameters in: set GRADFEAT_CACHE_DIR, "
                           "XDG_CACHE_HOME or HOME (or use --dry-run)");
        if ((bad = gf_cache_dir_untrusted(ctx->cache_dir)))
            return gf_fail(ctx, GF_ERR_IO, "tune: the cache folder %s cannot be trusted (%s): fix it or set "
                           "GRADFEAT_CACHE_DIR", ctx->cache_dir, bad);
        if (gf_mkdirs(ctx->cache_dir) != 0)
            return gf_fail(ctx, GF_ERR_IO, "tune: cannot create the cache folder %s: %s; set GRADFEAT_CACHE_DIR to a "
                           "writable folder", ctx->cache_dir, strerror(errno));
        tune_path(ctx, path, sizeof path);
    }
    tuner T = {0};
    T.ctx = ctx;
    T.reps = o.reps;
    T.rng = o.seed * 0x9E3779B97F4A7C15ULL + 1;
    T.t0 = gf_now();
    search X = {.k = K_XGEMM, .np = XG_N, .vals = xg_vals, .nvals = xg_nvals};
    search D = {.k = K_DIRECT, .np = XD_N, .vals = xd_vals, .nvals = xd_nvals};
    int host = ctx->host_blas;
    ctx->host_blas = 0;                      /* time CLBlast whatever this context's GEMM path */
    gf_status st = tune_body(&T, &o, res, &X, &D);
    ctx->host_blas = host;
    CLBlastClearCache();
    tuner_free(&T);
    free(X.tried);
    free(D.tried);
    res->seconds = gf_now() - T.t0;
    if (st != GF_OK || o.dry_run) return st;
    size_t n = 0;
    char *text = tune_text(ctx, &o, res, &n);
    if (!text) return gf_fail(ctx, GF_ERR_MEMORY, "tune: out of host memory");
    st = gf_write_file_atomic(ctx, path, text, n);
    free(text);
    if (st != GF_OK) return st;
    snprintf(res->path, sizeof res->path, "%s", path);
    return GF_OK;
}
