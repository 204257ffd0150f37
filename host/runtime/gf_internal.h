/* Internal declarations shared by the host units: the context, error helpers,
 * kernel/program access, buffers, GEMM. Not installed; the CLI uses gradfeat.h
 * plus the small CLI-only headers. */
#ifndef GF_INTERNAL_H
#define GF_INTERNAL_H

#include <CL/cl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include "gradfeat.h"
#include "gf_msg.h"

typedef struct gf_kernel_entry gf_kernel_entry;
/* Device-memory accounting shared by the context and every live buffer's
 * destructor callback; freed by whoever drops the last reference. */
typedef struct gf_memcount { _Atomic uint64_t now, peak; _Atomic long refs; } gf_memcount;
gf_memcount *gf_memcount_new(void);
void gf_memcount_unref(gf_memcount *m);
typedef struct gf_program_entry gf_program_entry;

enum { GF_SCRATCH_SLOTS = 10 };

struct gf_ctx {
    cl_platform_id platform;
    cl_device_id device;
    cl_context context;
    cl_command_queue queue;
    gf_device_info info;
    char reason[256];

    gf_log_fn log;
    void *log_user;
    int verbose;
    gf_progress_fn progress;         /* gf_progress */
    void *progress_user;
    int progress_live;
    char kernel_dir[1024];           /* "" = the built-in sources */
    char err[4096];

    gf_program_entry *programs;
    gf_kernel_entry *kernels;

    int cache_enabled;               /* program-binary cache for this device */
    char cache_why[160];
    char cache_dir[1024];
    int n_source_builds, n_cache_hits, n_cache_saves;

    cl_mem scratch[GF_SCRATCH_SLOTS]; /* growable work buffers owned by the context */
    size_t scratch_bytes[GF_SCRATCH_SLOTS];
    cl_mem gemm_tmp;                 /* CLBlast's temp buffer, owned by us */
    size_t gemm_tmp_bytes;
    int host_blas;                   /* CPU device sharing host memory: GEMMs run in host BLAS */
    int blas_split;                  /* host BLAS: a batch of GEMMs split over this many threads, each GEMM on one
                                        (OpenBLAS's thread count at creation; < 2: one after another) */
    size_t blas_splits;              /* batches run split so far (test_runtime checks the split ran) */
    int conv_plane;                  /* conv.cl CPU-style plane kernels (else per element) */
    int conv_algo;                   /* 3x3 stride-1 convs: 0 auto, 1 direct, 2 Winograd (GF_CONV_ALGO_*, ops_affine.h) */
    int map_caches;                  /* caches in host-visible memory, filled through a mapping (gf_buf_create_host) */
    int bn_blocked;                  /* bn.cl blocked lane walk (else strided) */
    unsigned item_budget;            /* loop iterations per work item in tiled kernels */
    int zero_by_write;               /* gf_ctx_options.zero_by_write: zero buffers by host writes, not fills */
    size_t wg_cap;                   /* gf_ctx_options.max_work_group; 0 = none */
    size_t wg_launched_max;          /* largest work-group gf_launch enqueued (tests check it against wg_cap) */
    int conv_red_wg;                 /* RED_WG of cl/conv.cl's reductions, 0 = not yet found */
    char paths[256];                 /* gf_ctx_paths */
    uint64_t mem_budget;             /* 0 = none beyond the device's own limits */
    uint64_t as_limit;               /* the process's address-space / data limit when the device's buffers are
                                        host memory (PoCL): checked before each buffer; 0 = none */
    char as_limit_name[48];
    gf_memcount *mem;                /* bytes in gradfeat's buffers (see buffers.c) */
    gf_tune_info tune;               /* CLBlast tuning file of this device (host/runtime/tune.c) */
};

/* ---- errors (host/runtime/errors.c) ---- */
const char *gf_cl_error_name(cl_int err);
/* Record a message in the context (formatted by gf_vformat, gf_msg.h) and return the status; with no
 * context, just the status. */
gf_status gf_fail(gf_ctx *ctx, gf_status st, const char *fmt, ...) GF_PRINTF(3, 4);
/* Record an OpenCL failure: "<what>: CL_NAME (code) on <device>" + advice; maps
 * allocation failures to GF_ERR_MEMORY. */
gf_status gf_cl_fail(gf_ctx *ctx, cl_int err, const char *what);
gf_status gf_clblast_fail(gf_ctx *ctx, int status, const char *what);
void gf_log(gf_ctx *ctx, int level, const char *fmt, ...) GF_PRINTF(3, 4);
/* A progress line (GF_PROGRESS_*) to the context's progress callback; nothing without one. */
void gf_progress(gf_ctx *ctx, int kind, const char *fmt, ...) GF_PRINTF(3, 4);
/* Each line of text (a report written to a memory stream) as a GF_PROGRESS_LINE. */
void gf_progress_lines(gf_ctx *ctx, const char *text);

#define GF_TRY(expr) do { gf_status gf_s_ = (expr); if (gf_s_ != GF_OK) return gf_s_; } while (0)
#define GF_CL(ctx, call, what) do { cl_int gf_e_ = (call); \
    if (gf_e_ != CL_SUCCESS) return gf_cl_fail((ctx), gf_e_, (what)); } while (0)

/* ---- kernels (host/runtime/program.c) ---- */
/* Kernel `name` from the program built from cl/<family>.cl with extra build
 * options `defines` (may be NULL). Programs and kernels are cached in the
 * context; the returned kernel is owned by it. */
gf_status gf_kernel(gf_ctx *ctx, const char *family, const char *defines,
                    const char *name, cl_kernel *out);
/* Set all arguments from a format string: m = cl_mem, i = int, u = unsigned,
 * z = ulong (pass a size_t), f = float (pass a double), L = local float buffer (pass size_t floats). */
gf_status gf_args(gf_ctx *ctx, cl_kernel k, const char *kname, const char *fmt, ...);
/* Enqueue; global sizes are rounded up to a multiple of local when local is
 * given (kernels check bounds). local may be NULL only without a work-group cap (the driver would choose);
 * a work-group above the cap is GF_ERR_INTERNAL: a launch that bypassed gf_wg_limit. */
gf_status gf_launch(gf_ctx *ctx, cl_kernel k, const char *kname, cl_uint dims,
                    const size_t *global, const size_t *local);
/* Largest work-group size allowed for kernel k: min(cap, the context's max_work_group, device limit, kernel
 * limit). Every launch takes its local size from here (or gf_pow2_local), so kernels that size local memory
 * from it get the capped value. */
gf_status gf_wg_limit(gf_ctx *ctx, cl_kernel k, size_t cap, size_t *lim);
/* Power-of-two local size within gf_wg_limit(cap); when work > 0 no larger than
 * needed to cover `work` items. Fixed per (kernel, device, work): reductions
 * that use it keep one summation order. */
gf_status gf_pow2_local(gf_ctx *ctx, cl_kernel k, size_t cap, size_t work, size_t *out);
/* 1-D launch helper: n work items (global rounded up to a multiple of the local
 * size), local size 64 or less when the device or the kernel allows less. */
gf_status gf_launch1(gf_ctx *ctx, cl_kernel k, const char *kname, size_t n);
/* Program text of a kernel family: the prelude cl/common.cl, then cl/<family>.cl
 * (embedded, or from GRADFEAT_KERNEL_DIR); malloc'ed. */
gf_status gf_kernel_source(gf_ctx *ctx, const char *family, char **src, size_t *len);
/* Names of the embedded kernel families (file stems in cl/, the prelude left out). */
int gf_kernel_families(const char *const **names);

/* ---- buffers (host/runtime/buffers.c) ---- */
gf_status gf_buf_create(gf_ctx *ctx, size_t bytes, const char *what, cl_mem *out);
gf_status gf_buf_create_from(gf_ctx *ctx, size_t bytes, const void *src, const char *what, cl_mem *out);
/* A buffer for a cache (activation, primal): with ctx->map_caches (devices sharing host memory) allocated by the
 * driver in host memory (CL_MEM_ALLOC_HOST_PTR), so the host fills it through a mapping and the device reads it
 * in place; else gf_buf_create. Zeroed either way. */
gf_status gf_buf_create_host(gf_ctx *ctx, size_t bytes, const char *what, cl_mem *out);
/* Map bytes of m for writing (the old contents are not kept) / unmap it: the host fills a buffer in place. */
gf_status gf_buf_map_write(gf_ctx *ctx, cl_mem m, size_t bytes, void **ptr);
gf_status gf_buf_unmap(gf_ctx *ctx, cl_mem m, void *ptr);
gf_status gf_buf_write(gf_ctx *ctx, cl_mem m, size_t off_bytes, size_t bytes, const void *src);
gf_status gf_buf_read(gf_ctx *ctx, cl_mem m, size_t off_bytes, size_t bytes, void *dst);
gf_status gf_buf_zero(gf_ctx *ctx, cl_mem m, size_t off_bytes, size_t bytes);
gf_status gf_buf_copy(gf_ctx *ctx, cl_mem src, size_t src_off, cl_mem dst, size_t dst_off, size_t bytes);
/* Context-owned growable work buffer `slot` of at least `bytes`. Valid until the
 * next gf_scratch call on the same slot (in-order queue keeps earlier uses safe). */
gf_status gf_scratch(gf_ctx *ctx, int slot, size_t bytes, cl_mem *out);
void gf_buf_release(cl_mem *m);

/* ---- GEMM (host/runtime/gemm.c): row-major, offsets and leading dims in floats ----
 * C = alpha * op(A) * op(B) + beta * C, op(A) is M x K, op(B) is K x N. */
#ifdef GF_HAVE_CBLAS
void gf_host_blas_reserve(void);   /* the host BLAS's work buffer, made now (gemm.c: why) */
int gf_host_blas_threads(void);    /* OpenBLAS's threads now; 1 for a CBLAS that does not say */
#endif
gf_status gf_gemm(gf_ctx *ctx, int trans_a, int trans_b, size_t M, size_t N, size_t K,
                  float alpha, cl_mem A, size_t off_a, size_t lda,
                  cl_mem B, size_t off_b, size_t ldb,
                  float beta, cl_mem C, size_t off_c, size_t ldc);
gf_status gf_gemm_batched(gf_ctx *ctx, int trans_a, int trans_b, size_t M, size_t N, size_t K,
                          float alpha, cl_mem A, size_t off_a, size_t lda, size_t stride_a,
                          cl_mem B, size_t off_b, size_t ldb, size_t stride_b,
                          float beta, cl_mem C, size_t off_c, size_t ldc, size_t stride_c,
                          size_t batch);

/* ---- CLBlast tuning (host/runtime/tune.c) ---- */
/* Read this device's tuning file and, unless opt->tuning < 0 or GEMMs run in the host BLAS, apply it;
 * a bad file is a warning, never an error. */
void gf_tune_load(gf_ctx *ctx, const gf_ctx_options *opt);
gf_status gf_tune_fit_limit(gf_ctx *ctx);   /* CLBlast's work-groups within the device's limit and the cap */

/* ---- small utilities (host/runtime/util.c) ---- */
/* FNV-1a 64 (byte-serial, ~0.7 GB/s): keys and small texts, and the checksums of files written before XXH3 */
uint64_t gf_fnv1a(uint64_t h, const void *data, size_t n);
/* XXH3 64 (xxHash, ~20x FNV-1a's speed): the checksums of the large files a run writes (models, checkpoints) */
uint64_t gf_xxh3(const void *data, size_t n);
typedef struct gf_xxh3_stream gf_xxh3_stream;
gf_xxh3_stream *gf_xxh3_begin(void);   /* NULL when out of memory */
void gf_xxh3_update(gf_xxh3_stream *x, const void *data, size_t n);
uint64_t gf_xxh3_end(gf_xxh3_stream *x);   /* frees x */
/* host/runtime/envcheck.c: the device memory to plan with on a device whose buffers are host memory,
 * under the process's memory limits */
uint64_t gf_env_cap_device_mem(const gf_env_report *r, uint64_t mem);
#define GF_FNV_INIT 1469598103934665603ULL
double gf_now(void);               /* monotonic seconds */
/* Write a file atomically: temp file in the same folder, fsync, rename. GF_ERR_IO (or GF_ERR_MEMORY)
 * with the reason in the context's message, or, for the _msg form, in err (may be NULL). */
gf_status gf_write_file_atomic(gf_ctx *ctx, const char *path, const void *data, size_t n);
gf_status gf_write_file_atomic_msg(const char *path, const void *data, size_t n, char *err, size_t err_size);
/* Read a whole file; *data malloc'ed. */
gf_status gf_read_file(gf_ctx *ctx, const char *path, void **data, size_t *n);
int gf_mkdirs(const char *path);   /* mkdir -p; 0 on success */
/* A run directory for the lifetime of one run: created (mkdir -p) and checked writable before any work,
 * then locked exclusively (flock on DIR/.gradfeat.lock, which holds the owner's pid): a second run on
 * the same directory fails at once with GF_ERR_USAGE naming that pid. Temp files "*.tmp.<pid>" left
 * there by dead processes (SIGKILL during an atomic write) are removed. *fd: close it (or exit) to unlock. */
gf_status gf_run_dir_lock(gf_ctx *ctx, const char *dir, int *fd);
/* GF_ERR_USAGE naming the pid when a live run holds DIR's lock (for --resume, before reading its files). */
gf_status gf_run_dir_check_free(gf_ctx *ctx, const char *dir);
/* Cache folders, like ssh's: NULL when DIR is missing or a folder owned by this user that others cannot
 * write; else why it must not be trusted (a static string). */
const char *gf_cache_dir_untrusted(const char *dir);
/* A growing byte buffer for writing files in memory; oom is set (and later
 * puts are ignored) when an allocation fails. */
typedef struct gf_sink { char *p; size_t n, cap; int oom; } gf_sink;
void gf_sink_put(gf_sink *s, const void *src, size_t n);
/* A seeded subset of `limit` of the indices 0..n-1 (all when limit is 0 or
 * >= n), in ascending order; the same for train, eval and pretrain. */
int *gf_seeded_subset(int n, int limit, uint64_t seed, int *count);
/* Durations for progress lines: "42s", "3m07s", "2h05m". */
void gf_fmt_secs(char *buf, size_t n, double seconds);

#endif
