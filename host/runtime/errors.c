/* Error messages, OpenCL/CLBlast error names, the log and progress callbacks (the library never prints). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <clblast_c.h>
#include "gf_internal.h"

const char *gf_status_name(gf_status s) {
    switch (s) {
    case GF_OK: return "ok";
    case GF_ERR_INTERNAL: return "internal error";
    case GF_ERR_USAGE: return "usage error";
    case GF_ERR_NO_DEVICE: return "no OpenCL device";
    case GF_ERR_MEMORY: return "out of memory";
    case GF_ERR_INPUT: return "bad input";
    case GF_ERR_NUMERIC: return "numeric failure";
    case GF_ERR_BUILD: return "kernel build failed";
    case GF_ERR_CHECK: return "check failed";
    case GF_ERR_IO: return "write failed";
    }
    return "unknown status";
}

const char *gf_cl_error_name(cl_int err) {
    switch (err) {
#define E(x) case x: return #x;
    E(CL_SUCCESS) E(CL_DEVICE_NOT_FOUND) E(CL_DEVICE_NOT_AVAILABLE) E(CL_COMPILER_NOT_AVAILABLE)
    E(CL_MEM_OBJECT_ALLOCATION_FAILURE) E(CL_OUT_OF_RESOURCES) E(CL_OUT_OF_HOST_MEMORY)
    E(CL_PROFILING_INFO_NOT_AVAILABLE) E(CL_MEM_COPY_OVERLAP) E(CL_IMAGE_FORMAT_MISMATCH)
    E(CL_IMAGE_FORMAT_NOT_SUPPORTED) E(CL_BUILD_PROGRAM_FAILURE) E(CL_MAP_FAILURE)
    E(CL_MISALIGNED_SUB_BUFFER_OFFSET) E(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
    E(CL_COMPILE_PROGRAM_FAILURE) E(CL_LINKER_NOT_AVAILABLE) E(CL_LINK_PROGRAM_FAILURE)
    E(CL_DEVICE_PARTITION_FAILED) E(CL_KERNEL_ARG_INFO_NOT_AVAILABLE)
    E(CL_INVALID_VALUE) E(CL_INVALID_DEVICE_TYPE) E(CL_INVALID_PLATFORM) E(CL_INVALID_DEVICE)
    E(CL_INVALID_CONTEXT) E(CL_INVALID_QUEUE_PROPERTIES) E(CL_INVALID_COMMAND_QUEUE)
    E(CL_INVALID_HOST_PTR) E(CL_INVALID_MEM_OBJECT) E(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR)
    E(CL_INVALID_IMAGE_SIZE) E(CL_INVALID_SAMPLER) E(CL_INVALID_BINARY) E(CL_INVALID_BUILD_OPTIONS)
    E(CL_INVALID_PROGRAM) E(CL_INVALID_PROGRAM_EXECUTABLE) E(CL_INVALID_KERNEL_NAME)
    E(CL_INVALID_KERNEL_DEFINITION) E(CL_INVALID_KERNEL) E(CL_INVALID_ARG_INDEX)
    E(CL_INVALID_ARG_VALUE) E(CL_INVALID_ARG_SIZE) E(CL_INVALID_KERNEL_ARGS)
    E(CL_INVALID_WORK_DIMENSION) E(CL_INVALID_WORK_GROUP_SIZE) E(CL_INVALID_WORK_ITEM_SIZE)
    E(CL_INVALID_GLOBAL_OFFSET) E(CL_INVALID_EVENT_WAIT_LIST) E(CL_INVALID_EVENT)
    E(CL_INVALID_OPERATION) E(CL_INVALID_GL_OBJECT) E(CL_INVALID_BUFFER_SIZE)
    E(CL_INVALID_MIP_LEVEL) E(CL_INVALID_GLOBAL_WORK_SIZE) E(CL_INVALID_PROPERTY)
    E(CL_INVALID_IMAGE_DESCRIPTOR) E(CL_INVALID_COMPILER_OPTIONS) E(CL_INVALID_LINKER_OPTIONS)
    E(CL_INVALID_DEVICE_PARTITION_COUNT)
#undef E
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
    default: return "unknown OpenCL error";
    }
}

static const char *clblast_name(int s) {
    switch (s) {
#define E(x) case x: return #x;
    E(CLBlastNotImplemented) E(CLBlastInvalidMatrixA) E(CLBlastInvalidMatrixB) E(CLBlastInvalidMatrixC)
    E(CLBlastInvalidVectorX) E(CLBlastInvalidVectorY) E(CLBlastInvalidDimension)
    E(CLBlastInvalidLeadDimA) E(CLBlastInvalidLeadDimB) E(CLBlastInvalidLeadDimC)
    E(CLBlastInvalidIncrementX) E(CLBlastInvalidIncrementY) E(CLBlastInsufficientMemoryA)
    E(CLBlastInsufficientMemoryB) E(CLBlastInsufficientMemoryC) E(CLBlastInsufficientMemoryX)
    E(CLBlastInsufficientMemoryY) E(CLBlastInsufficientMemoryTemp) E(CLBlastInvalidBatchCount)
    E(CLBlastInvalidOverrideKernel) E(CLBlastMissingOverrideParameter) E(CLBlastInvalidLocalMemUsage)
    E(CLBlastNoHalfPrecision) E(CLBlastNoDoublePrecision) E(CLBlastInvalidVectorScalar)
    E(CLBlastInsufficientMemoryScalar) E(CLBlastDatabaseError) E(CLBlastUnknownError)
    E(CLBlastUnexpectedError)
#undef E
    default: return NULL;
    }
}

void gf_vformat(char *buf, size_t n, const char *fmt, va_list ap) {
    if (buf && n) vsnprintf(buf, n, fmt, ap);
}

void gf_format(char *buf, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    gf_vformat(buf, n, fmt, ap);
    va_end(ap);
}

gf_status gf_fail_msg(char *err, size_t err_size, gf_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    gf_vformat(err, err_size, fmt, ap);
    va_end(ap);
    return st;
}

void gf_log(gf_ctx *ctx, int level, const char *fmt, ...) {
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    gf_vformat(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (ctx && ctx->log && (level <= GF_LOG_WARN || (ctx->verbose && level <= GF_LOG_INFO)))
        ctx->log(ctx->log_user, level, buf);
}

void gf_progress(gf_ctx *ctx, int kind, const char *fmt, ...) {
    if (!ctx || !ctx->progress) return;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    gf_vformat(buf, sizeof buf, fmt, ap);
    va_end(ap);
    ctx->progress(ctx->progress_user, kind, buf);
}

void gf_progress_lines(gf_ctx *ctx, const char *text) {
    if (!ctx || !ctx->progress || !text) return;
    while (*text) {
        size_t n = strcspn(text, "\n");
        gf_progress(ctx, GF_PROGRESS_LINE, "%.*s", (int)n, text);
        text += n + (text[n] == '\n');
    }
}

gf_status gf_fail(gf_ctx *ctx, gf_status st, const char *fmt, ...) {
    if (!ctx) return st;
    va_list ap;
    va_start(ap, fmt);
    gf_vformat(ctx->err, sizeof ctx->err, fmt, ap);
    va_end(ap);
    return st;
}

static gf_status status_for_cl(cl_int err) {
    switch (err) {
    case CL_MEM_OBJECT_ALLOCATION_FAILURE: case CL_OUT_OF_HOST_MEMORY:
    case CL_INVALID_BUFFER_SIZE: case CL_OUT_OF_RESOURCES:
        return GF_ERR_MEMORY;
    case CL_BUILD_PROGRAM_FAILURE: case CL_COMPILER_NOT_AVAILABLE: case CL_INVALID_BUILD_OPTIONS:
        return GF_ERR_BUILD;
    case -1001: case CL_DEVICE_NOT_FOUND: case CL_DEVICE_NOT_AVAILABLE:
        return GF_ERR_NO_DEVICE;
    default:
        return GF_ERR_INTERNAL;
    }
}

static const char *advice_for_cl(cl_int err) {
    switch (status_for_cl(err)) {
    case GF_ERR_MEMORY:
        return " — the device ran out of memory: try a smaller --batch or a lower --max-device-mem";
    case GF_ERR_NO_DEVICE:
        return " — no usable OpenCL device: install an ICD (Debian: pocl-opencl-icd for CPUs, or your GPU "
               "vendor's OpenCL driver) and check OCL_ICD_VENDORS / /etc/OpenCL/vendors";
    default:
        return "";
    }
}

gf_status gf_cl_fail(gf_ctx *ctx, cl_int err, const char *what) {
    return gf_fail(ctx, status_for_cl(err), "%s failed: %s (%d) on device '%s'%s", what, gf_cl_error_name(err),
                   (int)err, ctx && ctx->info.name[0] ? ctx->info.name : "?", advice_for_cl(err));
}

gf_status gf_clblast_fail(gf_ctx *ctx, int status, const char *what) {
    const char *n = clblast_name(status);
    if (!n) return gf_cl_fail(ctx, status, what);   /* codes shared with OpenCL */
    return gf_fail(ctx, status == CLBlastTempBufferAllocFailure ? GF_ERR_MEMORY : GF_ERR_INTERNAL,
                   "%s failed: %s (%d) on device '%s'", what, n, status, ctx && ctx->info.name[0] ? ctx->info.name : "?");
}
