/* The context: platform/device enumeration and selection, OpenCL context and
 * queue, device facts, teardown. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <clblast_c.h>
#include "gf_internal.h"

void gf_program_cache_free(gf_ctx *ctx);   /* program.c */
void gf_cache_init(gf_ctx *ctx, const gf_ctx_options *opt);   /* program.c */

static const char *NO_PLATFORM_ADVICE =
    "no OpenCL platform found. Install an OpenCL driver (ICD): on Debian/Ubuntu "
    "`apt-get install pocl-opencl-icd` runs on any CPU; for a GPU install the vendor's OpenCL "
    "driver (mesa-opencl-icd / intel-opencl-icd / ROCm / NVIDIA). The ICD loader reads "
    "/etc/OpenCL/vendors/*.icd, or the folder named by OCL_ICD_VENDORS if set. `clinfo -l` "
    "lists what the loader sees.";

static void info_str(cl_device_id d, cl_device_info what, char *out, size_t n) {
    out[0] = 0;
    if (clGetDeviceInfo(d, what, n, out, NULL) != CL_SUCCESS) out[0] = 0;
    out[n - 1] = 0;
}

static void fill_info(cl_platform_id p, cl_device_id d, gf_device_info *f) {
    clGetPlatformInfo(p, CL_PLATFORM_NAME, sizeof f->platform_name, f->platform_name, NULL);
    clGetPlatformInfo(p, CL_PLATFORM_VERSION, sizeof f->platform_version, f->platform_version, NULL);
    f->platform_name[sizeof f->platform_name - 1] = 0;
    f->platform_version[sizeof f->platform_version - 1] = 0;
    info_str(d, CL_DEVICE_NAME, f->name, sizeof f->name);
    info_str(d, CL_DEVICE_VENDOR, f->vendor, sizeof f->vendor);
    info_str(d, CL_DRIVER_VERSION, f->driver_version, sizeof f->driver_version);
    info_str(d, CL_DEVICE_VERSION, f->version, sizeof f->version);
    info_str(d, CL_DEVICE_OPENCL_C_VERSION, f->c_version, sizeof f->c_version);
    cl_device_type t = 0;
    clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof t, &t, NULL);
    f->is_gpu = (t & CL_DEVICE_TYPE_GPU) != 0;
    f->is_cpu = (t & CL_DEVICE_TYPE_CPU) != 0;
    cl_ulong u = 0;
    clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof u, &u, NULL); f->global_mem = u;
    u = 0; clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof u, &u, NULL); f->max_alloc = u;
    u = 0; clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof u, &u, NULL); f->local_mem = u;
    size_t wg = 0; clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof wg, &wg, NULL);
    f->max_work_group = wg ? wg : 1;
    cl_uint cu = 0; clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
    f->compute_units = cu;
    cl_bool um = 0; clGetDeviceInfo(d, CL_DEVICE_HOST_UNIFIED_MEMORY, sizeof um, &um, NULL);
    f->unified_memory = um != 0;
    char ext[8192];
    info_str(d, CL_DEVICE_EXTENSIONS, ext, sizeof ext);
    f->fp64 = strstr(ext, "cl_khr_fp64") != NULL;
    f->fp16 = strstr(ext, "cl_khr_fp16") != NULL;
}

/* Enumerate every device of every platform (handles kept for selection). */
typedef struct { cl_platform_id p; cl_device_id d; gf_device_info info; } dev_entry;

static int icontains(const char *hay, const char *needle);
static int is_pocl(const gf_device_info *f) {
    return icontains(f->platform_name, "Portable Computing Language") || icontains(f->platform_name, "pocl");
}

/* Devices whose buffers are host memory (PoCL, llvmpipe) plan with what the process's memory limits leave */
static void cap_memory(gf_device_info *f, const gf_env_report *env) {
    if (!f->is_cpu && !f->unified_memory) return;
    f->global_mem = gf_env_cap_device_mem(env, f->global_mem);
    /* device memory there is system RAM (an iGPU reports a share of it as its own), and the host side holds the
     * trunk outputs too: plan the device's buffers within half of RAM */
    if (f->unified_memory && env->ram && f->global_mem > env->ram / 2) f->global_mem = env->ram / 2;
    if (f->max_alloc > f->global_mem) f->max_alloc = f->global_mem;
}

/* Before any platform starts: a memory limit below what the driver needs (it would crash or hang inside
 * itself) is GF_ERR_MEMORY; afterwards, no platform while PoCL's kernel cache is unusable (PoCL then
 * drops its platform) is GF_ERR_IO naming the folder. */
static gf_status env_gate(const gf_env_report *env, char *msg, size_t n) {
    if (!env->mem_problem[0]) return GF_OK;
    snprintf(msg, n, "%s", env->mem_problem);
    return GF_ERR_MEMORY;
}

static gf_status no_platform(const gf_env_report *env, cl_int e, char *msg, size_t n) {
    if (env->pocl_problem[0]) {
        snprintf(msg, n, "no OpenCL platform could start: PoCL's kernel cache cannot be used: %s", env->pocl_problem);
        return GF_ERR_IO;
    }
    snprintf(msg, n, "%s (clGetPlatformIDs: %s)", NO_PLATFORM_ADVICE, gf_cl_error_name(e));
    return GF_ERR_NO_DEVICE;
}

static gf_status enumerate(dev_entry **out, int *count, cl_int *cl_err) {
    *out = NULL; *count = 0; *cl_err = CL_SUCCESS;
    cl_uint np = 0;
    cl_int e = clGetPlatformIDs(0, NULL, &np);
    if (e != CL_SUCCESS || np == 0) { *cl_err = e; return GF_ERR_NO_DEVICE; }
    cl_platform_id *ps = calloc(np, sizeof *ps);
    if (!ps) return GF_ERR_MEMORY;
    clGetPlatformIDs(np, ps, NULL);
    int n = 0, cap = 8;
    dev_entry *v = calloc(cap, sizeof *v);
    if (!v) { free(ps); return GF_ERR_MEMORY; }
    for (cl_uint i = 0; i < np; i++) {
        cl_uint nd = 0;
        if (clGetDeviceIDs(ps[i], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS || nd == 0) continue;
        cl_device_id *ds = calloc(nd, sizeof *ds);
        if (!ds) continue;
        clGetDeviceIDs(ps[i], CL_DEVICE_TYPE_ALL, nd, ds, NULL);
        for (cl_uint j = 0; j < nd; j++) {
            if (n == cap) {
                dev_entry *nv = realloc(v, 2 * cap * sizeof *v);
                if (!nv) break;
                v = nv; cap *= 2;
            }
            memset(&v[n], 0, sizeof v[n]);
            v[n].p = ps[i]; v[n].d = ds[j];
            fill_info(ps[i], ds[j], &v[n].info);
            v[n].info.platform_index = (int)i;
            v[n].info.device_index = (int)j;
            v[n].info.global_index = n;
            n++;
        }
        free(ds);
    }
    free(ps);
    if (n == 0) { free(v); return GF_ERR_NO_DEVICE; }
    *out = v; *count = n;
    return GF_OK;
}

gf_status gf_devices_list(gf_device_info **out, int *count, char *msg, size_t msg_size) {
    return gf_devices_list_opt(NULL, out, count, msg, msg_size);
}

gf_status gf_devices_list_opt(const gf_ctx_options *opt, gf_device_info **out, int *count, char *msg, size_t msg_size) {
    dev_entry *v; int n; cl_int e;
    *out = NULL; *count = 0;
    gf_env_report env;
    char buf[2048];
    gf_env_check(opt ? opt->pocl_cache : NULL, opt ? opt->pocl_cache_from : NULL, &env);
    gf_status st = env_gate(&env, buf, sizeof buf);
    if (st == GF_OK) st = enumerate(&v, &n, &e);
    if (st == GF_ERR_NO_DEVICE) st = no_platform(&env, e, buf, sizeof buf);
    if (st != GF_OK) {
        gf_format(msg, msg_size, "%s", st == GF_ERR_MEMORY && !env.mem_problem[0] ? "out of host memory" : buf);
        return st;
    }
    for (int i = 0; i < n; i++) cap_memory(&v[i].info, &env);
    gf_device_info *r = calloc(n > 0 ? (size_t)n : 1, sizeof *r);   /* n >= 1 after enumerate() */
    if (!r) { free(v); return GF_ERR_MEMORY; }
    for (int i = 0; i < n; i++) r[i] = v[i].info;
    free(v);
    *out = r; *count = n;
    return GF_OK;
}

/* Rank of a CPU implementation for the default choice (README "Choosing a
 * device"): PoCL first (native CPU compiler, host BLAS, measured 7x faster
 * than llvmpipe on the linearized step here), then any other CPU platform,
 * then Mesa's llvmpipe (rusticl or Clover: a software rasteriser's compute
 * path). */
static int cpu_rank(const gf_device_info *f) {
    if (is_pocl(f)) return 2;
    if (icontains(f->name, "llvmpipe")) return 0;
    return 1;
}

/* Score for the default choice: any GPU beats any CPU; among GPUs the larger
 * (compute units x global memory) wins; among CPU devices the rank above, then
 * compute units; ties keep enumeration order. */
static double device_score(const gf_device_info *f) {
    double s = (double)f->compute_units * 1e3 + (double)(f->global_mem >> 20) * 1e-3;
    return (f->is_gpu ? 1e12 : (double)cpu_rank(f) * 1e10) + s;
}

/* ", over N other CPU devices (order: PoCL, other CPU platforms, Mesa llvmpipe)" when the
 * choice among CPU devices was by that order. */
static void cpu_order_note(const dev_entry *v, int n, int best, char *out, size_t size) {
    int others = 0;
    *out = 0;
    if (v[best].info.is_gpu) return;
    for (int i = 0; i < n; i++)
        if (i != best && v[i].info.is_cpu && !v[i].info.is_gpu) others++;
    if (others)
        snprintf(out, size, "; chosen over %d other CPU device%s by the order PoCL, other CPU platforms, Mesa llvmpipe",
                 others, others > 1 ? "s" : "");
}

static int icontains(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (const char *h = hay; *h; h++)
        if (strncasecmp(h, needle, n) == 0) return 1;
    return 0;
}

static void list_devices(char *buf, size_t size, const dev_entry *v, int n) {
    size_t used = strlen(buf);
    for (int i = 0; i < n && used + 1 < size; i++) {
        int w = snprintf(buf + used, size - used, "\n  %d (%d:%d) %s [%s] — %s", v[i].info.global_index,
                         v[i].info.platform_index, v[i].info.device_index, v[i].info.name,
                         v[i].info.is_gpu ? "GPU" : v[i].info.is_cpu ? "CPU" : "other", v[i].info.platform_name);
        if (w < 0) break;
        used += (size_t)w;
    }
}

/* Pick a device by selector; writes the reason. Returns index or -1. The default choice passes over the
 * devices in avoid (bit i: global index i). */
static int select_device(const dev_entry *v, int n, const char *sel, const char *origin, uint64_t avoid, char *reason,
                         size_t rsz) {
    int best = -1, avoided = 0;
    if (!sel || !*sel || !strcasecmp(sel, "auto")) {
        for (int i = 0; i < n; i++) {
            if (i < 64 && (avoid >> i & 1)) { avoided++; continue; }
            if (best < 0 || device_score(&v[i].info) > device_score(&v[best].info)) best = i;
        }
        if (best < 0) return -1;
        char note[160], skip[96] = "";
        cpu_order_note(v, n, best, note, sizeof note);
        if (avoided) snprintf(skip, sizeof skip, "; passed over %d device%s that failed the selftest", avoided,
                              avoided > 1 ? "s" : "");
        snprintf(reason, rsz, "%s%s%s", v[best].info.is_gpu ? "default: the largest GPU"
                                                           : "default: no GPU found, using the CPU device", note, skip);
        return best;
    }
    if (!strcasecmp(sel, "gpu") || !strcasecmp(sel, "cpu")) {
        int want_gpu = !strcasecmp(sel, "gpu");
        for (int i = 0; i < n; i++) {
            if (want_gpu ? !v[i].info.is_gpu : !v[i].info.is_cpu) continue;
            if (best < 0 || device_score(&v[i].info) > device_score(&v[best].info)) best = i;
        }
        if (best >= 0) {
            char note[160];
            cpu_order_note(v, n, best, note, sizeof note);
            snprintf(reason, rsz, "%s %s%s", origin, sel, want_gpu ? "" : note);
        }
        return best;
    }
    int p, d; char tail;
    if (sscanf(sel, "%d:%d%c", &p, &d, &tail) == 2) {
        for (int i = 0; i < n; i++)
            if (v[i].info.platform_index == p && v[i].info.device_index == d) best = i;
        if (best >= 0) snprintf(reason, rsz, "%s %s (platform:device)", origin, sel);
        return best;
    }
    char *end;
    long idx = strtol(sel, &end, 10);
    if (*end == 0 && end != sel) {
        if (idx >= 0 && idx < n) { snprintf(reason, rsz, "%s %s (index)", origin, sel); return (int)idx; }
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (icontains(v[i].info.name, sel) || icontains(v[i].info.platform_name, sel) ||
            icontains(v[i].info.vendor, sel)) { best = i; break; }
    if (best >= 0) snprintf(reason, rsz, "%s '%s' (name match)", origin, sel);
    return best;
}

/* One two-way choice (the gf_ctx_options field named name; NULL/"" = "auto"); what: the noun for what it chooses ("kernel
 * path", "host-memory mode"), for the message on a bad value.
 * Writes 1 for the CPU-style value, 0 for the GPU-style one, -1 for auto. */
static gf_status path_choice(gf_ctx *ctx, const char *v, const char *name, const char *what, const char *cpu,
                             const char *gpu, int *out) {
    *out = -1;
    if (!v || !*v || !strcasecmp(v, "auto")) return GF_OK;
    if (!strcasecmp(v, cpu)) { *out = 1; return GF_OK; }
    if (!strcasecmp(v, gpu)) { *out = 0; return GF_OK; }
    return gf_fail(ctx, GF_ERR_USAGE, "%s '%s' is not a %s: use auto, %s or %s", name, v, what, cpu, gpu);
}

/* Kernel paths (README "Kernel paths"): each auto choice follows the device type
 * (CPU-style paths on CPU devices); opt->paths sets all at once, the single ones override it. */
static gf_status choose_paths(gf_ctx *ctx, const gf_ctx_options *opt) {
    int all, conv, walk, gemm, map;
    GF_TRY(path_choice(ctx, opt->paths, "paths", "kernel path", "cpu", "gpu", &all));
    GF_TRY(path_choice(ctx, opt->host_mem, "host_mem", "host-memory mode", "map", "copy", &map));
    GF_TRY(path_choice(ctx, opt->conv_kernels, "conv_kernels", "kernel path", "plane", "element", &conv));
    GF_TRY(path_choice(ctx, opt->bn_walk, "bn_walk", "kernel path", "blocked", "strided", &walk));
    GF_TRY(path_choice(ctx, opt->gemm, "gemm", "kernel path", "host", "clblast", &gemm));
    int cpu = ctx->info.is_cpu;
    if (all >= 0) cpu = all;
    ctx->conv_plane = conv >= 0 ? conv : cpu;
    ctx->bn_blocked = walk >= 0 ? walk : cpu;
    int want_host = gemm >= 0 ? gemm : cpu;
#ifdef GF_HAVE_CBLAS
    /* CLBlast on CPU OpenCL runs 4-16x below a tuned host BLAS: on a CPU device
     * whose buffers live in host memory, GEMMs map the buffers and call CBLAS. */
    ctx->host_blas = want_host && ctx->info.is_cpu && ctx->info.unified_memory;
    if (gemm == 1 && !ctx->host_blas)
        gf_log(ctx, GF_LOG_WARN, "GEMM host: this device is not a CPU device sharing host memory; using CLBlast");
    if (ctx->host_blas) {
        gf_host_blas_reserve();
        ctx->blas_split = gf_host_blas_threads();
    }
#else
    if (gemm == 1) gf_log(ctx, GF_LOG_WARN, "GEMM host: built without CBLAS; using CLBlast");
    (void)want_host;
#endif
    /* not a CPU/GPU choice but a memory one: mapping pays off wherever device buffers are host memory (iGPUs,
     * CPU devices), so GRADFEAT_PATHS leaves it alone */
    ctx->map_caches = (map >= 0 ? map : 1) && ctx->info.unified_memory;
    if (map == 1 && !ctx->info.unified_memory)
        gf_log(ctx, GF_LOG_WARN, "host memory map: this device does not share host memory; copying the caches");
    /* by shape, not by device type: GRADFEAT_PATHS leaves it alone too */
    const char *ca = opt->conv_algo;
    if (!ca || !*ca || !strcasecmp(ca, "auto")) ctx->conv_algo = 0;
    else if (!strcasecmp(ca, "direct")) ctx->conv_algo = 1;
    else if (!strcasecmp(ca, "winograd")) ctx->conv_algo = 2;
    else if (!strcasecmp(ca, "winograd4")) ctx->conv_algo = 3;
    else return gf_fail(ctx, GF_ERR_USAGE, "conv_algo '%s' is not a conv algorithm: use auto, direct, winograd or "
                        "winograd4", ca);
    if (opt->item_budget > 1u << 30)
        return gf_fail(ctx, GF_ERR_USAGE, "item budget %u is not in 1..2^30", opt->item_budget);
    ctx->item_budget = opt->item_budget ? opt->item_budget : 16384;
    if (opt->max_work_group > 1u << 20)
        return gf_fail(ctx, GF_ERR_USAGE, "max work-group %zu is not in 1..2^20 (0 = no cap)", opt->max_work_group);
    ctx->wg_cap = opt->max_work_group;
    ctx->zero_by_write = opt->zero_by_write;
    char wg[48] = "";
    if (ctx->wg_cap) snprintf(wg, sizeof wg, ", work-group cap %zu", ctx->wg_cap);
    static const char *const algo[4] = {"auto", "direct", "winograd", "winograd4"};
    snprintf(ctx->paths, sizeof ctx->paths, "conv kernels %s, BN walk %s, GEMM %s, caches %s, conv algo %s, item budget %u%s (%s)",
             ctx->conv_plane ? "plane" : "element", ctx->bn_blocked ? "blocked" : "strided",
             ctx->host_blas ? "host BLAS" : "CLBlast", ctx->map_caches ? "mapped" : "copied", algo[ctx->conv_algo], ctx->item_budget, wg,
             all < 0 && conv < 0 && walk < 0 && gemm < 0 && map < 0 ? (ctx->info.is_cpu ? "auto: CPU device" : "auto: not a CPU device")
                                                       : "set by option");
    return GF_OK;
}

gf_status gf_ctx_create(const gf_ctx_options *opt, gf_ctx **out) {
    gf_ctx_options none = {0};
    if (!opt) opt = &none;
    *out = NULL;
    gf_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return GF_ERR_MEMORY;
    *out = ctx;
    ctx->log = opt->log;
    ctx->log_user = opt->log_user;
    ctx->verbose = opt->verbose;
    ctx->progress = opt->progress;
    ctx->progress_user = opt->progress_user;
    ctx->progress_live = opt->progress_live;
    if (opt->kernel_dir) snprintf(ctx->kernel_dir, sizeof ctx->kernel_dir, "%s", opt->kernel_dir);
    ctx->mem_budget = opt->max_device_mem;
    ctx->mem = gf_memcount_new();

    const char *sel = opt->device, *origin = opt->device_from ? opt->device_from : "device";

    dev_entry *v; int n; cl_int e = CL_SUCCESS;
    gf_env_report env;
    char buf[2048];
    gf_env_check(opt->pocl_cache, opt->pocl_cache_from, &env);
    gf_status st = env_gate(&env, buf, sizeof buf);
    if (st != GF_OK) return gf_fail(ctx, st, "%s", buf);
    st = enumerate(&v, &n, &e);
    if (st == GF_ERR_MEMORY) return gf_fail(ctx, st, "out of host memory while listing OpenCL devices");
    if (st != GF_OK) {
        st = no_platform(&env, e, buf, sizeof buf);
        return gf_fail(ctx, st, "%s", buf);
    }
    for (int i = 0; i < n; i++) cap_memory(&v[i].info, &env);
    int pick = select_device(v, n, sel, origin, opt->avoid_devices, ctx->reason, sizeof ctx->reason);
    if (pick < 0 && (!sel || !*sel || !strcasecmp(sel, "auto"))) {
        snprintf(ctx->err, sizeof ctx->err, "every OpenCL device failed the selftest (`gradfeat selftest --device N` "
                 "shows which checks); choose one with --device to use it anyway. Devices:");
        list_devices(ctx->err, sizeof ctx->err, v, n);
        free(v);
        return GF_ERR_NO_DEVICE;
    }
    if (pick < 0) {
        snprintf(ctx->err, sizeof ctx->err,
                 "no OpenCL device matches %s%s'%s'. Use an index, P:D, cpu, gpu or part of a name. Devices:",
                 origin, *origin && origin[strlen(origin) - 1] == '=' ? "" : " ", sel);
        list_devices(ctx->err, sizeof ctx->err, v, n);
        free(v);
        return GF_ERR_NO_DEVICE;
    }
    ctx->platform = v[pick].p;
    ctx->device = v[pick].d;
    ctx->info = v[pick].info;
    free(v);
    /* PoCL writes its compiled kernels there; a file in the way or a full disk ends in an LLVM abort */
    if (is_pocl(&ctx->info) && env.pocl_problem[0])
        return gf_fail(ctx, GF_ERR_IO, "PoCL's kernel cache cannot be used: %s", env.pocl_problem);
    if ((ctx->info.is_cpu || ctx->info.unified_memory) && (env.as_limit || env.data_limit)) {
        int data = env.data_limit && (!env.as_limit || env.data_limit < env.as_limit);
        ctx->as_limit = data ? env.data_limit : env.as_limit;
        snprintf(ctx->as_limit_name, sizeof ctx->as_limit_name, "%s", data ? "data limit (ulimit -d)" : "address-space limit (ulimit -v)");
    }
    if (env.host_limit)
        gf_log(ctx, GF_LOG_INFO, "memory limit %llu MiB: planning with %llu MiB of device memory",
               (unsigned long long)(env.host_limit >> 20), (unsigned long long)(ctx->info.global_mem >> 20));

    cl_context_properties props[] = { CL_CONTEXT_PLATFORM, (cl_context_properties)ctx->platform, 0 };
    ctx->context = clCreateContext(props, 1, &ctx->device, NULL, NULL, &e);
    if (e != CL_SUCCESS) return gf_cl_fail(ctx, e, "clCreateContext");
    ctx->queue = clCreateCommandQueue(ctx->context, ctx->device, 0, &e);
    if (e != CL_SUCCESS) return gf_cl_fail(ctx, e, "clCreateCommandQueue");
    gf_cache_init(ctx, opt);
    GF_TRY(choose_paths(ctx, opt));
    gf_tune_load(ctx, opt);
    GF_TRY(gf_tune_fit_limit(ctx));
    gf_log(ctx, GF_LOG_INFO, "device: %s (%s) — %s", ctx->info.name, ctx->info.platform_name, ctx->reason);
    gf_log(ctx, GF_LOG_INFO, "kernel paths: %s", ctx->paths);
    return GF_OK;
}

void gf_ctx_free(gf_ctx *ctx) {
    if (!ctx) return;
    if (ctx->queue) clFinish(ctx->queue);
    /* CLBlast keeps compiled programs per context; drop them before the context goes. */
    if (ctx->context) CLBlastClearCache();
    for (int i = 0; i < GF_SCRATCH_SLOTS; i++) gf_buf_release(&ctx->scratch[i]);
    gf_buf_release(&ctx->gemm_tmp);
    gf_program_cache_free(ctx);
    if (ctx->queue) clReleaseCommandQueue(ctx->queue);
    if (ctx->context) clReleaseContext(ctx->context);
    gf_memcount_unref(ctx->mem);
    free(ctx);
}

const char *gf_ctx_last_error(const gf_ctx *ctx) { return ctx ? ctx->err : "out of memory"; }
const gf_device_info *gf_ctx_device(const gf_ctx *ctx) { return &ctx->info; }
const char *gf_ctx_device_reason(const gf_ctx *ctx) { return ctx->reason; }
const char *gf_ctx_paths(const gf_ctx *ctx) { return ctx->paths; }

gf_status gf_ctx_finish(gf_ctx *ctx) {
    GF_CL(ctx, clFinish(ctx->queue), "clFinish (waiting for queued kernels)");
    return GF_OK;
}

const char *gf_version(void) { return GF_VERSION_STRING; }
#ifdef GF_GIT_HASH_GENERATED
extern const char gf_git_hash_generated[];   /* BUILD/gf_git_hash.c, rewritten at build time (cmake/GitHash.cmake) */
extern const char gf_git_date_generated[];
#endif
const char *gf_git_hash(void) {
#ifdef GF_GIT_HASH_GENERATED
    return gf_git_hash_generated;
#else
    return "unknown";
#endif
}
const char *gf_git_date(void) {
#ifdef GF_GIT_HASH_GENERATED
    return gf_git_date_generated;
#else
    return "";
#endif
}
void gf_clblast_version(int *major, int *minor, int *patch) {
    /* The Debian package ships no version macro; this is the version we build against. */
    *major = 1; *minor = 5; *patch = 3;
}
