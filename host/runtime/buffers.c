/* Device buffers: creation within the device's limits, transfers, scratch. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include "gf_internal.h"

#define GF_AS_RESERVE (32ull << 20)

typedef struct { gf_memcount *mc; size_t bytes; } mem_note;

gf_memcount *gf_memcount_new(void) {
    gf_memcount *m = calloc(1, sizeof *m);
    if (m) atomic_store(&m->refs, 1);
    return m;
}

void gf_memcount_unref(gf_memcount *m) {
    if (m && atomic_fetch_sub(&m->refs, 1) == 1) free(m);
}

/* Runs when OpenCL frees the buffer (after its last use, possibly after the
 * context is gone: hence the separately counted gf_memcount). */
static void CL_CALLBACK on_release(cl_mem m, void *user) {
    mem_note *n = user;
    atomic_fetch_sub(&n->mc->now, n->bytes);
    gf_memcount_unref(n->mc);
    free(n);
    (void)m;
}

void gf_ctx_memory(const gf_ctx *ctx, uint64_t *now, uint64_t *peak) {
    if (now) *now = ctx->mem ? atomic_load(&ctx->mem->now) : 0;
    if (peak) *peak = ctx->mem ? atomic_load(&ctx->mem->peak) : 0;
}

/* Zero bytes [off, off + bytes) of m: one fill, or (zero_by_write, for oclgrind --uninitialized) blocking
 * writes from a block of host zeros. */
static cl_int zero_fill(gf_ctx *ctx, cl_mem m, size_t off, size_t bytes) {
    if (!ctx->zero_by_write) {
        const cl_uchar zero = 0;
        return clEnqueueFillBuffer(ctx->queue, m, &zero, 1, off, bytes, 0, NULL, NULL);
    }
    static const unsigned char zeros[1 << 16];
    cl_int e = CL_SUCCESS;
    for (size_t done = 0; done < bytes && e == CL_SUCCESS; done += sizeof zeros) {
        size_t k = bytes - done < sizeof zeros ? bytes - done : sizeof zeros;
        e = clEnqueueWriteBuffer(ctx->queue, m, CL_TRUE, off + done, k, zeros, 0, NULL, NULL);
    }
    return e;
}

static gf_status buf_create(gf_ctx *ctx, size_t bytes, const char *what, cl_mem_flags flags, cl_mem *out) {
    *out = NULL;
    if (bytes == 0) bytes = 4;   /* zero-size buffers are invalid in OpenCL */
    uint64_t now = ctx->mem ? atomic_load(&ctx->mem->now) : 0;
    if (ctx->mem_budget && now + bytes > ctx->mem_budget)
        return gf_fail(ctx, GF_ERR_MEMORY,
                       "%s needs %.1f MiB but gradfeat already holds %.1f MiB of the %.1f MiB device budget "
                       "(--max-device-mem); try a smaller --batch or a larger budget",
                       what, bytes / 1048576.0, now / 1048576.0, ctx->mem_budget / 1048576.0);
    if (ctx->info.max_alloc && bytes > ctx->info.max_alloc)
        return gf_fail(ctx, GF_ERR_MEMORY,
                       "%s needs %.1f MiB in one buffer but device '%s' allows at most %.1f MiB per allocation "
                       "(CL_DEVICE_MAX_MEM_ALLOC_SIZE); try a smaller --batch",
                       what, bytes / 1048576.0, ctx->info.name, ctx->info.max_alloc / 1048576.0);
    /* PoCL asserts (SIGABRT) when the host memory behind a buffer cannot be had: under an address-space limit,
     * stop first, keeping room for what the driver and the host BLAS map lazily (OpenBLAS: 128 MiB per thread) */
    if (ctx->as_limit) {
        unsigned long long pages = 0, sz, res, shr, text, lib, data;   /* the address space, or the data segment */
        FILE *f = fopen("/proc/self/statm", "r");
        if (f && fscanf(f, "%llu %llu %llu %llu %llu %llu", &sz, &res, &shr, &text, &lib, &data) == 6)
            pages = ctx->as_limit_name[0] == 'd' ? data : sz;
        if (f) fclose(f);
        uint64_t used = (uint64_t)pages * (uint64_t)sysconf(_SC_PAGESIZE);
        if (used + bytes + GF_AS_RESERVE > ctx->as_limit)
            return gf_fail(ctx, GF_ERR_MEMORY, "%s needs %.1f MiB but the %s is %.0f MiB and %.0f MiB of it are in use "
                           "(%.0f MiB kept for the OpenCL driver and host BLAS); raise the limit, or try a smaller --batch",
                           what, bytes / 1048576.0, ctx->as_limit_name, ctx->as_limit / 1048576.0, used / 1048576.0,
                           GF_AS_RESERVE / 1048576.0);
    }
    cl_int e;
    cl_mem m = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE | flags, bytes, NULL, &e);
    if (e != CL_SUCCESS) {
        char call[256];
        snprintf(call, sizeof call, "clCreateBuffer(%s, %.1f MiB)", what, bytes / 1048576.0);
        return gf_cl_fail(ctx, e, call);
    }
    /* Start every buffer at zero: fresh device memory may hold NaN bit patterns,
     * and a GEMM with beta = 0 in some BLAS (or an op's accumulate pass) would
     * otherwise read them. Allocations happen at set-up, not per step. */
    e = zero_fill(ctx, m, 0, bytes);
    if (e != CL_SUCCESS) {
        clReleaseMemObject(m);
        return gf_cl_fail(ctx, e, ctx->zero_by_write ? "clEnqueueWriteBuffer (zeroing a new buffer)"
                                                     : "clEnqueueFillBuffer (zeroing a new buffer)");
    }
    mem_note *n = ctx->mem ? malloc(sizeof *n) : NULL;
    if (n) {
        n->mc = ctx->mem; n->bytes = bytes;
        atomic_fetch_add(&ctx->mem->refs, 1);
        if (clSetMemObjectDestructorCallback(m, on_release, n) == CL_SUCCESS) {
            uint64_t cur = atomic_fetch_add(&ctx->mem->now, bytes) + bytes, peak = atomic_load(&ctx->mem->peak);
            while (cur > peak && !atomic_compare_exchange_weak(&ctx->mem->peak, &peak, cur)) {}
        } else { gf_memcount_unref(ctx->mem); free(n); }
    }
    *out = m;
    return GF_OK;
}

gf_status gf_buf_create(gf_ctx *ctx, size_t bytes, const char *what, cl_mem *out) {
    return buf_create(ctx, bytes, what, 0, out);
}

gf_status gf_buf_create_host(gf_ctx *ctx, size_t bytes, const char *what, cl_mem *out) {
    return buf_create(ctx, bytes, what, ctx->map_caches ? CL_MEM_ALLOC_HOST_PTR : 0, out);
}

gf_status gf_buf_map_write(gf_ctx *ctx, cl_mem m, size_t bytes, void **ptr) {
    cl_int e;
    *ptr = clEnqueueMapBuffer(ctx->queue, m, CL_TRUE, CL_MAP_WRITE_INVALIDATE_REGION, 0, bytes, 0, NULL, NULL, &e);
    if (e != CL_SUCCESS || !*ptr) {
        *ptr = NULL;
        return gf_cl_fail(ctx, e != CL_SUCCESS ? e : CL_MAP_FAILURE, "clEnqueueMapBuffer (filling a cache)");
    }
    return GF_OK;
}

gf_status gf_buf_unmap(gf_ctx *ctx, cl_mem m, void *ptr) {
    GF_CL(ctx, clEnqueueUnmapMemObject(ctx->queue, m, ptr, 0, NULL, NULL), "clEnqueueUnmapMemObject");
    return GF_OK;
}

gf_status gf_buf_create_from(gf_ctx *ctx, size_t bytes, const void *src, const char *what, cl_mem *out) {
    GF_TRY(gf_buf_create(ctx, bytes, what, out));
    gf_status st = gf_buf_write(ctx, *out, 0, bytes, src);
    if (st != GF_OK) gf_buf_release(out);
    return st;
}

/* Writes block: the caller's host memory may be reused right after. */
gf_status gf_buf_write(gf_ctx *ctx, cl_mem m, size_t off, size_t bytes, const void *src) {
    if (!bytes) return GF_OK;
    GF_CL(ctx, clEnqueueWriteBuffer(ctx->queue, m, CL_TRUE, off, bytes, src, 0, NULL, NULL), "clEnqueueWriteBuffer");
    return GF_OK;
}

gf_status gf_buf_read(gf_ctx *ctx, cl_mem m, size_t off, size_t bytes, void *dst) {
    if (!bytes) return GF_OK;
    GF_CL(ctx, clEnqueueReadBuffer(ctx->queue, m, CL_TRUE, off, bytes, dst, 0, NULL, NULL), "clEnqueueReadBuffer");
    return GF_OK;
}

gf_status gf_buf_zero(gf_ctx *ctx, cl_mem m, size_t off, size_t bytes) {
    if (!bytes) return GF_OK;
    GF_CL(ctx, zero_fill(ctx, m, off, bytes), ctx->zero_by_write ? "clEnqueueWriteBuffer (zeroing)" : "clEnqueueFillBuffer");
    return GF_OK;
}

gf_status gf_buf_copy(gf_ctx *ctx, cl_mem src, size_t src_off, cl_mem dst, size_t dst_off, size_t bytes) {
    if (!bytes) return GF_OK;
    GF_CL(ctx, clEnqueueCopyBuffer(ctx->queue, src, dst, src_off, dst_off, bytes, 0, NULL, NULL), "clEnqueueCopyBuffer");
    return GF_OK;
}

gf_status gf_scratch(gf_ctx *ctx, int slot, size_t bytes, cl_mem *out) {
    if (slot < 0 || slot >= GF_SCRATCH_SLOTS) return gf_fail(ctx, GF_ERR_INTERNAL, "scratch slot %d out of range", slot);
    if (ctx->scratch[slot] && ctx->scratch_bytes[slot] >= bytes) { *out = ctx->scratch[slot]; return GF_OK; }
    /* Releasing while earlier kernels still use it is safe: OpenCL defers the free. */
    gf_buf_release(&ctx->scratch[slot]);
    ctx->scratch_bytes[slot] = 0;
    char what[64];
    snprintf(what, sizeof what, "work buffer %d", slot);
    GF_TRY(gf_buf_create(ctx, bytes, what, &ctx->scratch[slot]));
    ctx->scratch_bytes[slot] = bytes;
    *out = ctx->scratch[slot];
    return GF_OK;
}

void gf_buf_release(cl_mem *m) {
    if (m && *m) { clReleaseMemObject(*m); *m = NULL; }
}
