/* gradfeat — public C API.
 * Gradients as features (Mu, Li, Liang, ICLR 2020) on any OpenCL device.
 * Every fallible call returns gf_status; the message (what failed, the OpenCL
 * error by name, the device) is kept in the context: gf_ctx_last_error(). */
#ifndef GRADFEAT_H
#define GRADFEAT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GF_VERSION_STRING "0.1.0"

/* Status codes double as the CLI's exit codes (README "Exit codes"). */
typedef enum gf_status {
    GF_OK = 0,
    GF_ERR_INTERNAL = 1,   /* a bug or an OpenCL failure we did not anticipate */
    GF_ERR_USAGE = 2,      /* bad argument / option */
    GF_ERR_NO_DEVICE = 3,  /* no OpenCL platform or no matching device */
    GF_ERR_MEMORY = 4,     /* out of host or device memory */
    GF_ERR_INPUT = 5,      /* bad input file (model, dataset, image, checkpoint) */
    GF_ERR_NUMERIC = 6,    /* NaN / Inf during training */
    GF_ERR_BUILD = 7,      /* OpenCL kernel build failed */
    GF_ERR_CHECK = 8,      /* a selftest / verification check failed */
    GF_ERR_IO = 9          /* writing an output failed (disk full, read-only or unwritable path) */
} gf_status;

const char *gf_status_name(gf_status s);

typedef struct gf_ctx gf_ctx;

/* The library never prints and never reads the environment: messages and progress reach the
 * caller through these callbacks (NULL: none), settings come in gf_ctx_options. */
typedef void (*gf_log_fn)(void *user, int level, const char *msg);
enum { GF_LOG_ERROR = 0, GF_LOG_WARN = 1, GF_LOG_INFO = 2, GF_LOG_DEBUG = 3 };
/* Progress of the long calls (gf_job_run, gf_adapted_eval, gf_pretrain_run): one line of text, no
 * newline. GF_PROGRESS_STEP: a report inside an epoch (a terminal may draw the next one over it);
 * GF_PROGRESS_LINE: a line to keep (epoch summaries, the trunk pass, resume notes, skipped inputs). */
typedef void (*gf_progress_fn)(void *user, int kind, const char *line);
enum { GF_PROGRESS_LINE = 0, GF_PROGRESS_STEP = 1 };

/* Facts about one OpenCL device. */
typedef struct gf_device_info {
    int platform_index, device_index, global_index;
    char platform_name[128], platform_version[128];
    char name[128], vendor[128], driver_version[128], version[128], c_version[128];
    int is_gpu, is_cpu;
    uint64_t global_mem, max_alloc, local_mem;
    size_t max_work_group;
    unsigned compute_units;
    int fp64, fp16, unified_memory;
} gf_device_info;

/* Enumerate every device of every platform. *out is malloc'ed (free()).
 * Returns GF_ERR_NO_DEVICE with advice in msg (may be NULL) when there is none. */
gf_status gf_devices_list(gf_device_info **out, int *count, char *msg, size_t msg_size);
/* The same with the checks of opt (its pocl_cache); opt may be NULL. */
struct gf_ctx_options;
gf_status gf_devices_list_opt(const struct gf_ctx_options *opt, gf_device_info **out, int *count, char *msg,
                              size_t msg_size);

/* What the process's limits allow the OpenCL driver (checked by gf_ctx_create and
 * gf_devices_list before any platform is enumerated; gradfeat doctor prints it). */
typedef struct gf_env_report {
    uint64_t as_limit, data_limit;  /* RLIMIT_AS / RLIMIT_DATA soft limits in bytes; 0 = none */
    uint64_t cgroup_limit;          /* the own cgroup's memory.max / memory.limit_in_bytes; 0 = none */
    char cgroup_file[512];
    uint64_t host_limit;            /* the smallest of the three; 0 = none */
    uint64_t min_address_space;     /* what PoCL and the host BLAS need to start (measured) */
    uint64_t min_data_segment;      /* the same for RLIMIT_DATA */
    char mem_problem[512];          /* "" = fine; else the limit is too small (GF_ERR_MEMORY) */
    char pocl_cache[1024];          /* PoCL's kernel-cache folder and where it comes from (as given; "" = not checked) */
    char pocl_cache_from[32];
    uint64_t pocl_cache_free;       /* bytes free there */
    char pocl_problem[1400];        /* "" = usable; else why not (GF_ERR_IO when PoCL is used) */
    uint64_t ram;                   /* physical memory (sysconf); 0 = unknown */
} gf_env_report;
/* pocl_cache: the folder PoCL will compile kernels into, by PoCL's rule (POCL_CACHE_DIR, else
 * $XDG_CACHE_HOME/pocl, else $HOME/.cache/pocl, else /tmp/pocl: the caller reads the environment),
 * from: the variable it came from; NULL = not checked. */
void gf_env_check(const char *pocl_cache, const char *pocl_cache_from, gf_env_report *r);

/* Every setting of a context. {0} is a working default; the library reads no environment
 * variable: [NAME] is the twin the CLI fills the field from (host/cli/settings.c). */
typedef struct gf_ctx_options {
    const char *device;     /* "P:D", global index, "cpu", "gpu", or a name substring; NULL/"" = best [GRADFEAT_DEVICE] */
    const char *device_from;/* how device was given, for messages and the reason ("--device", "GRADFEAT_DEVICE=");
                               NULL = "device" */
    uint64_t avoid_devices; /* the default choice (device NULL/"", "auto") passes over the devices whose global index
                               i has bit i set: the CLI's fallback from a device that failed its selftest */
    gf_log_fn log;          /* warnings and notes (GF_LOG_*); NULL = none */
    void *log_user;
    int verbose;            /* also hand INFO lines to log */
    gf_progress_fn progress;/* progress of training, pretraining and evaluation; NULL = none */
    void *progress_user;
    int progress_live;      /* progress draws GF_PROGRESS_STEP lines over each other (a terminal): a report every
                               0.5 s instead of every log_every steps */
    uint64_t max_device_mem;/* device memory budget in bytes for gradfeat's buffers; 0 = the device's */
    /* Kernel paths (README "Kernel paths"). NULL/"" = "auto" (chosen by device type). */
    const char *paths;      /* "auto", "cpu" or "gpu": every path below at once [GRADFEAT_PATHS] */
    const char *conv_kernels;/* "plane" (CPU style) or "element" (GPU style) [GRADFEAT_CONV_KERNELS] */
    const char *bn_walk;    /* "blocked" (CPU) or "strided" (GPU) [GRADFEAT_BN_WALK] */
    const char *conv_algo;  /* 3x3 stride-1 convolutions: "auto" (Winograd F(4x4,3x3) for frozen weights when both channel
                               counts are at least 256 and the batch has at least 512 2x2 output tiles, else direct),
                               "direct" (im2col + GEMM), "winograd" (F(2x2,3x3)) or "winograd4" (F(4x4,3x3)); not part of
                               paths (a choice by shape, not by device type) [GRADFEAT_CONV_ALGO] */
    const char *gemm;       /* "host" (host BLAS, CPU devices sharing memory) or "clblast"
                               [GRADFEAT_GEMM; GRADFEAT_HOST_BLAS=0 means clblast] */
    const char *host_mem;   /* the activation and primal caches: "map" (CL_MEM_ALLOC_HOST_PTR, filled through a
                               mapping: no staging copy; only on devices with CL_DEVICE_HOST_UNIFIED_MEMORY) or
                               "copy" (plain device buffers, written with clEnqueueWriteBuffer) [GRADFEAT_HOST_MEM];
                               auto = map where the device shares host memory */
    unsigned item_budget;   /* most loop iterations per work item in tiled kernels; 0 = 16384 [GRADFEAT_ITEM_BUDGET] */
    size_t max_work_group;  /* cap on the work-group size of every gradfeat kernel launch, below the device's and each
                               kernel's own limits (GPU-like sizes on a device that allows more, e.g. oclgrind);
                               0 = none [GRADFEAT_MAX_WORK_GROUP]. CLBlast's GEMM kernels get small sizes within it */
    int zero_by_write;      /* 1: buffers are zeroed by writing zeros from the host instead of clEnqueueFillBuffer,
                               which oclgrind's --uninitialized check does not see (it then reports every read of
                               a zeroed buffer); for that check, slower [GRADFEAT_ZERO=write] */
    /* Programs */
    const char *kernel_dir; /* read cl/<family>.cl from this folder instead of the built-in sources
                               [GRADFEAT_KERNEL_DIR]; NULL/"" = built in */
    const char *cache_dir;  /* compiled-kernel (program binary) cache folder [GRADFEAT_CACHE_DIR, else
                               $XDG_CACHE_HOME/gradfeat, ~/.cache/gradfeat, $XDG_RUNTIME_DIR/gradfeat];
                               NULL/"" = no cache */
    int cache;              /* 0 auto: on with a cache_dir, except on drivers that cache compiled kernels
                               themselves (NVIDIA); 1 on; -1 off [GRADFEAT_CACHE=1|0] */
    const char *cache_from; /* why cache is what it is, shown by gf_cache_get_info ("GRADFEAT_CACHE=1"); NULL =
                               "set by the caller" */
    /* PoCL's kernel-cache folder, checked before the driver starts (gf_env_check); NULL = not checked */
    const char *pocl_cache, *pocl_cache_from;
    int tuning;             /* CLBlast SGEMM parameters of `gradfeat tune` (gf_tune_run), read from cache_dir:
                               0 = apply them when GEMMs run in CLBlast, -1 = ignore the file [GRADFEAT_TUNING=0] */
} gf_ctx_options;

/* Creates the context. On failure *out is still a context (or NULL on out-of-memory)
 * so that the caller can read gf_ctx_last_error(); free it with gf_ctx_free. */
gf_status gf_ctx_create(const gf_ctx_options *opt, gf_ctx **out);
void gf_ctx_free(gf_ctx *ctx);
const char *gf_ctx_last_error(const gf_ctx *ctx);
const gf_device_info *gf_ctx_device(const gf_ctx *ctx);
/* Why this device was chosen ("best GPU", "--device cpu", ...). */
const char *gf_ctx_device_reason(const gf_ctx *ctx);
/* The kernel paths in use, e.g. "conv kernels plane, BN walk blocked, GEMM host BLAS, caches mapped,
 * conv algo auto, item budget 16384 (auto: CPU device)". */
const char *gf_ctx_paths(const gf_ctx *ctx);
/* Device memory held by gradfeat's buffers now and at the peak (bytes). */
void gf_ctx_memory(const gf_ctx *ctx, uint64_t *now, uint64_t *peak);
/* Waits for all queued work; reports asynchronous errors. */
gf_status gf_ctx_finish(gf_ctx *ctx);
/* Builds every kernel family now (so that start-up cost shows as one phase). */
gf_status gf_ctx_warmup(gf_ctx *ctx, double *seconds);

/* On-disk program-binary cache. */
typedef struct gf_cache_info {
    char dir[1024];
    int enabled;            /* for the context's device */
    const char *why;        /* why enabled / disabled */
    int entries;
    uint64_t bytes;
} gf_cache_info;
gf_status gf_cache_get_info(gf_ctx *ctx, gf_cache_info *info);
gf_status gf_cache_clear(gf_ctx *ctx, int *removed);
/* Counters for tests and `doctor`: program builds from source / loads from the cache. */
void gf_cache_counters(const gf_ctx *ctx, int *source_builds, int *cache_hits, int *cache_saves);

/* CLBlast SGEMM tuning (`gradfeat tune`). The parameters found for a device and driver are kept in one
 * text file in cache_dir (clblast-tune-<hash>.txt); gf_ctx_create reads it and hands them to CLBlast
 * (CLBlastOverrideParameters) when GEMMs run in CLBlast. A corrupt file, or one made for another device,
 * driver or CLBlast version, is ignored with a warning. CLBlast keeps overrides per device for the rest
 * of the process. */
enum {
    GF_TUNE_NONE = 0,       /* no tuning file for this device and driver (or no cache folder) */
    GF_TUNE_APPLIED = 1,    /* the file's parameters are in use */
    GF_TUNE_IGNORED = 2,    /* a file is there but corrupt, foreign or unusable: ignored (note says why) */
    GF_TUNE_UNUSED = 3      /* a valid file, not applied: GEMMs run in the host BLAS, or tuning is off */
};
typedef struct gf_tune_info {
    char path[1100];        /* this device's tuning file ("" = no cache folder) */
    int state;              /* GF_TUNE_* */
    char note[1024];        /* what was applied, or why not */
    double gflops_default, gflops_tuned;   /* SGEMM at the tuning shapes, as `gradfeat tune` measured them */
} gf_tune_info;
void gf_tune_get_info(const gf_ctx *ctx, gf_tune_info *info);
typedef struct gf_tune_options {
    double budget;          /* seconds of candidate search (the baseline and final checks come on top); 0 = 120 */
    int batch;              /* batch of the ResNet-18 layer4 conv whose three GEMMs are the large shapes; 0 = 8 */
    int reps;               /* timed launches per shape and candidate, the fastest counts; 0 = 2 */
    uint64_t seed;          /* order of the random part of the search */
    int dry_run;            /* search and report, do not write the file */
} gf_tune_options;
typedef struct gf_tune_result {
    double gflops_default, gflops_tuned;   /* the large shapes (W1's conv GEMMs) */
    double all_default, all_tuned;         /* every tuning shape */
    int tried, failed;                     /* candidates timed / rejected (build, launch or wrong numbers) */
    double seconds;
    char path[1100];                       /* the file written ("" with dry_run) */
    char xgemm[512], direct[512], routine[128];   /* the kernel lines chosen ("default" = CLBlast's own) */
} gf_tune_result;
/* Search CLBlast's Xgemm and XgemmDirect parameters (and the size at which the indirect kernel takes
 * over) at gradfeat's GEMM shapes, timing each candidate with CLBlast on the device whatever the context's
 * GEMM path; progress and ETA through the progress callback. Measure the baseline in a context made with
 * tuning = -1 (else the old file's parameters are the baseline). Writes the file (temp + rename). */
gf_status gf_tune_run(gf_ctx *ctx, const gf_tune_options *opt, gf_tune_result *res);

/* Self-test: each kernel family + CLBlast GEMM vs a plain-C reference. */
typedef struct gf_check_row {
    char name[64];
    double max_abs, max_rel, tol;
    int pass;
} gf_check_row;
/* rows is malloc'ed (free()). Returns GF_ERR_CHECK if any row failed. */
gf_status gf_selftest(gf_ctx *ctx, gf_check_row **rows, int *count);

/* Library and dependency versions, for --version and doctor. */
const char *gf_version(void);
const char *gf_git_hash(void);
/* The date (YYYY-MM-DD) of that commit; "" when unknown. */
const char *gf_git_date(void);
void gf_clblast_version(int *major, int *minor, int *patch);
/* The host BLAS kernels gradfeat replaced, or NULL: OpenBLAS 0.3.21 falls back to its Prescott (SSE3) kernels on a
 * CPU it does not know (any newer than Sapphire Rapids); on one with AVX the first call (or the first context
 * with host BLAS) makes it choose again as if OPENBLAS_CORETYPE named the newest kernels the CPU runs (SkylakeX,
 * Haswell or Sandybridge), unless OPENBLAS_CORETYPE is set. Returns the name of the kernels it left. A program that
 * runs OpenBLAS on other threads of its own makes its first context (or this call) before they start. */
const char *gf_host_blas_replaced(void);

#ifdef __cplusplus
}
#endif

/* The rest of the public API: gradfeat_data.h (datasets), gradfeat_model.h
 * (model files, executor), gradfeat_train.h (training jobs). */
#endif
