/* What the process's environment allows the OpenCL driver, checked before any platform is
 * enumerated (PoCL aborts or crashes inside itself when it runs out of address space, and gives
 * up on a kernel-cache folder it cannot create, which looks like "no OpenCL platform"):
 * the memory limits (RLIMIT_AS, RLIMIT_DATA, the cgroup's memory limit) and PoCL's
 * kernel-cache folder. gradfeat doctor prints the report. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include "gf_internal.h"

/* Below this address-space limit PoCL and OpenBLAS cannot even start a small run: measured with
 * `ulimit -v` on PoCL 3.1 + OpenBLAS 0.3 (tests/README.md "Memory limits"). */
#define MIN_ADDRESS_SPACE (1280ull << 20)
/* ... and below this data-segment limit (ulimit -d: private writable mappings) */
#ifndef GF_MIN_DATA_SEGMENT
#define GF_MIN_DATA_SEGMENT (640ull << 20)
#endif
/* PoCL writes a few MB of compiled kernels on a cold cache (selftest: 1.9 MB); LLVM aborts when a write fails */
#define MIN_CACHE_FREE (16ull << 20)
/* snprintf that may cut a long path short (the return value used: no -Wformat-truncation) */
#define PUT(buf, ...) do { if (snprintf(buf, sizeof buf, __VA_ARGS__) < 0) (buf)[0] = 0; } while (0)

static uint64_t rlimit_bytes(int which) {
    struct rlimit r;
    if (getrlimit(which, &r) != 0 || r.rlim_cur == RLIM_INFINITY) return 0;
    return (uint64_t)r.rlim_cur;
}

/* The memory limit of the process's own cgroup: v2 memory.max, v1 memory.limit_in_bytes (a huge v1
 * value means none). /proc/self/cgroup names the path; inside a cgroup namespace it may be "/". */
static uint64_t cgroup_limit(char *file, size_t fn) {
    FILE *f = fopen("/proc/self/cgroup", "r");
    char line[1024];
    uint64_t best = 0;
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        *c2 = 0;
        const char *ctrl = c1 + 1, *path = c2 + 1;
        int v2 = !*ctrl, v1 = !strcmp(ctrl, "memory") || strstr(ctrl, "memory,") || strstr(ctrl, ",memory");
        if (!v1 && !v2) continue;
        const char *roots[2] = {v2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/memory", v2 ? "/sys/fs/cgroup/unified" : NULL};
        for (int r = 0; r < 2 && roots[r]; r++) {
            const char *paths[2] = {path, "/"};
            for (int p = 0; p < 2; p++) {
                char fp[1400], val[64] = "";
                snprintf(fp, sizeof fp, "%s%s/%s", roots[r], strcmp(paths[p], "/") ? paths[p] : "",
                         v2 ? "memory.max" : "memory.limit_in_bytes");
                FILE *g = fopen(fp, "r");
                if (!g) continue;
                if (!fgets(val, sizeof val, g)) val[0] = 0;
                fclose(g);
                char *end;
                unsigned long long x = strtoull(val, &end, 10);
                if (end == val || x == 0 || x >= (1ull << 60)) break;   /* "max" or v1's "none" */
                if (!best || x < best) { best = x; if (snprintf(file, fn, "%s", fp) < 0) file[0] = 0; }
                break;
            }
        }
    }
    if (f) fclose(f);
    return best;
}

/* PoCL's cache folder (found by the caller with PoCL's rule, lib/CL/pocl_cache.c: POCL_CACHE_DIR, else
 * $XDG_CACHE_HOME/pocl, else $HOME/.cache/pocl, else /tmp/pocl): the deepest part of it that exists must be
 * a writable folder with room. */
static void pocl_cache_check(gf_env_report *r, const char *path, const char *from) {
    if (!path || !*path) return;
    snprintf(r->pocl_cache, sizeof r->pocl_cache, "%s", path);
    snprintf(r->pocl_cache_from, sizeof r->pocl_cache_from, "%s", from ? from : "the caller");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", r->pocl_cache);
    struct stat sb;
    while (stat(dir, &sb) != 0) {   /* up to the deepest part that exists */
        char *s = strrchr(dir, '/');
        if (!s) { snprintf(dir, sizeof dir, "."); continue; }
        if (s == dir) { dir[1] = 0; continue; }
        *s = 0;
    }
    const char *fix = r->pocl_cache_from[0] == 'P' ? "point POCL_CACHE_DIR at a writable folder with free space"
                                                   : "point XDG_CACHE_HOME (or POCL_CACHE_DIR) at a writable folder with free space";
    struct statvfs fs;
    if (!S_ISDIR(sb.st_mode)) {
        PUT(r->pocl_problem, "%s is not a folder (PoCL's kernel cache %s comes from %s); %s",
                 dir, r->pocl_cache, r->pocl_cache_from, fix);
        return;
    }
    if (statvfs(dir, &fs) == 0) {
        r->pocl_cache_free = (uint64_t)fs.f_bavail * fs.f_frsize;
        if (fs.f_flag & ST_RDONLY) {
            PUT(r->pocl_problem, "%s is on a read-only file system (PoCL's kernel cache %s "
                     "comes from %s); %s", dir, r->pocl_cache, r->pocl_cache_from, fix);
            return;
        }
    }
    if (access(dir, W_OK | X_OK) != 0) {
        PUT(r->pocl_problem, "%s is not writable: %s (PoCL's kernel cache %s comes from %s); %s",
                 dir, strerror(errno), r->pocl_cache, r->pocl_cache_from, fix);
        return;
    }
    if (r->pocl_cache_free < MIN_CACHE_FREE)
        PUT(r->pocl_problem, "%s has only %.1f MiB free, PoCL needs up to %llu MiB there to "
                 "compile kernels (its kernel cache %s comes from %s); free some space or %s", dir,
                 r->pocl_cache_free / 1048576.0, MIN_CACHE_FREE >> 20, r->pocl_cache, r->pocl_cache_from, fix);
}

void gf_env_check(const char *pocl_cache, const char *pocl_cache_from, gf_env_report *r) {
    memset(r, 0, sizeof *r);
    r->as_limit = rlimit_bytes(RLIMIT_AS);
    r->data_limit = rlimit_bytes(RLIMIT_DATA);
    r->cgroup_limit = cgroup_limit(r->cgroup_file, sizeof r->cgroup_file);
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    r->ram = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : 0;
    r->min_address_space = MIN_ADDRESS_SPACE;
    r->min_data_segment = GF_MIN_DATA_SEGMENT;
    r->host_limit = r->as_limit;
    if (r->data_limit && (!r->host_limit || r->data_limit < r->host_limit)) r->host_limit = r->data_limit;
    if (r->cgroup_limit && (!r->host_limit || r->cgroup_limit < r->host_limit)) r->host_limit = r->cgroup_limit;
    int as = r->as_limit && r->as_limit < MIN_ADDRESS_SPACE;
    uint64_t lim = as ? r->as_limit : r->data_limit, min = as ? MIN_ADDRESS_SPACE : GF_MIN_DATA_SEGMENT;
    if (as || (r->data_limit && r->data_limit < GF_MIN_DATA_SEGMENT))
        snprintf(r->mem_problem, sizeof r->mem_problem, "the %s is %llu MiB, below the %llu MiB the OpenCL driver (PoCL) "
                 "and the host BLAS need to start here (below it they crash or hang inside themselves); raise it "
                 "(ulimit -%c %llu) or remove it (ulimit -%c unlimited)",
                 as ? "address-space limit (ulimit -v, RLIMIT_AS)" : "data-segment limit (ulimit -d, RLIMIT_DATA)",
                 (unsigned long long)(lim >> 20), (unsigned long long)(min >> 20), as ? 'v' : 'd',
                 (unsigned long long)(min >> 10), as ? 'v' : 'd');
    pocl_cache_check(r, pocl_cache, pocl_cache_from);
}

/* The device-memory figure gradfeat plans with on a device whose buffers live in host memory, under the
 * process's limits: what is left of an address-space / data limit after the driver's own needs (at least
 * 64 MiB), and half
 * of a cgroup limit (the rest for the process, the page cache and the driver). */
uint64_t gf_env_cap_device_mem(const gf_env_report *r, uint64_t mem) {
    const uint64_t orig = mem;
    const uint64_t lims[2] = {r->as_limit, r->data_limit}, mins[2] = {MIN_ADDRESS_SPACE, GF_MIN_DATA_SEGMENT};
    for (int i = 0; i < 2; i++)
        if (lims[i]) mem = lims[i] > mins[i] ? (lims[i] - mins[i] < mem ? lims[i] - mins[i] : mem) : 0;
    if (r->cgroup_limit && r->cgroup_limit / 2 < mem) mem = r->cgroup_limit / 2;
    /* at least a little to plan with: every buffer is checked against the limit itself (gf_buf_create) */
    const uint64_t floor = 64ull << 20;
    return mem < floor ? (orig < floor ? orig : floor) : mem;
}
