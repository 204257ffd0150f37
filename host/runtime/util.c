/* Small host utilities: hashing, time, atomic file writes, mkdir -p. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "gf_internal.h"
#include "gf_file.h"
/* xxHash (Debian libxxhash-dev) compiled in from its header: no library to link or ship */
#define XXH_INLINE_ALL
#include <xxhash.h>

uint64_t gf_fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 1099511628211ULL; }
    return h;
}

uint64_t gf_xxh3(const void *data, size_t n) { return XXH3_64bits(data, n); }

/* gf_xxh3_stream is xxHash's state, from its own allocator (it wants 64-byte alignment, more than malloc promises) */
gf_xxh3_stream *gf_xxh3_begin(void) {
    XXH3_state_t *s = XXH3_createState();
    if (s) XXH3_64bits_reset(s);
    return (gf_xxh3_stream *)s;
}
void gf_xxh3_update(gf_xxh3_stream *x, const void *data, size_t n) { XXH3_64bits_update((XXH3_state_t *)x, data, n); }
uint64_t gf_xxh3_end(gf_xxh3_stream *x) {
    uint64_t h = XXH3_64bits_digest((XXH3_state_t *)x);
    XXH3_freeState((XXH3_state_t *)x);
    return h;
}

double gf_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

gf_status gf_write_file_atomic_msg(const char *path, const void *data, size_t n, char *err, size_t err_size) {
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 32);
    if (!tmp) return gf_fail_msg(err, err_size, GF_ERR_MEMORY, "out of memory");
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        gf_fail_msg(err, err_size, GF_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        return GF_ERR_IO;
    }
    const char *p = data;
    size_t left = n;
    int e = 0;
    while (left && !e) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) { e = w < 0 ? errno : EIO; break; }
        p += w; left -= (size_t)w;
    }
    if (!e && fsync(fd) != 0) e = errno;
    if (close(fd) != 0 && !e) e = errno;
    if (!e && rename(tmp, path) != 0) e = errno;
    if (e) unlink(tmp);
    free(tmp);
    if (!e) return GF_OK;
    return gf_fail_msg(err, err_size, GF_ERR_IO, "writing %s failed: %s", path, strerror(e));
}

gf_status gf_write_file_atomic(gf_ctx *ctx, const char *path, const void *data, size_t n) {
    return gf_write_file_atomic_msg(path, data, n, ctx ? ctx->err : NULL, ctx ? sizeof ctx->err : 0);
}

static const char *file_kind(mode_t m) {
    return S_ISFIFO(m) ? "a FIFO" : S_ISDIR(m) ? "a directory" : S_ISCHR(m) ? "a character device"
         : S_ISBLK(m) ? "a block device" : S_ISSOCK(m) ? "a socket" : "not a plain file";
}

int gf_open_regular(const char *path, char *why, size_t why_size) {
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; cleared again for a regular file */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) { if (why && why_size) snprintf(why, why_size, "cannot open: %s", strerror(errno)); return -1; }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        if (why && why_size) snprintf(why, why_size, "cannot open: %s", strerror(e));
        return -1;
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        if (why && why_size) snprintf(why, why_size, "not a regular file (%s)", file_kind(sb.st_mode));
        errno = EINVAL;
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl != -1) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}

FILE *gf_fopen_regular(const char *path, char *why, size_t why_size) {
    int fd = gf_open_regular(path, why, why_size);
    if (fd < 0) return NULL;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        if (why && why_size) snprintf(why, why_size, "cannot open: %s", strerror(errno));
        close(fd);
    }
    return f;
}

/* length of the valid UTF-8 sequence at p (1-4), 0 when invalid (overlongs, surrogates, > U+10FFFF) */
static int utf8_seq(const unsigned char *p) {
    unsigned c = p[0];
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if ((p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
        if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F)) return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if ((p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) return 0;
        if ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] > 0x8F)) return 0;
        return 4;
    }
    return 0;
}

size_t gf_utf8_valid_prefix(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    for (int l; p[i] && (l = utf8_seq(p + i)) > 0;) i += (size_t)l;
    return i;
}

char *gf_utf8_fix(const char *s) {
    size_t n = strlen(s);
    char *out = malloc(3 * n + 1), *o = out;
    if (!out) return NULL;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int l = utf8_seq(p);
        if (l > 0) { memcpy(o, p, (size_t)l); o += l; p += l; }
        else { memcpy(o, "\xEF\xBF\xBD", 3); o += 3; p++; }
    }
    *o = 0;
    return out;
}

gf_status gf_read_file(gf_ctx *ctx, const char *path, void **data, size_t *n) {
    *data = NULL; *n = 0;
    char why[256];
    FILE *f = gf_fopen_regular(path, why, sizeof why);
    if (!f) return gf_fail(ctx, GF_ERR_INPUT, "%s: %s", path, why);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t r = fread(buf + len, 1, cap - len, f);
        len += r;
        if (r == 0) break;
        if (len == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb; cap *= 2;
        }
    }
    int err = ferror(f);
    fclose(f);
    if (!buf) return gf_fail(ctx, GF_ERR_MEMORY, "out of memory reading %s", path);
    if (err) { free(buf); return gf_fail(ctx, GF_ERR_INPUT, "read error on %s", path); }
    *data = buf; *n = len;
    return GF_OK;
}

int gf_mkdirs(const char *path) {
    char tmp[1024];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof tmp) return -1;
    memcpy(tmp, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] == '/' || tmp[i] == 0) {
            char c = tmp[i];
            tmp[i] = 0;
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
            tmp[i] = c;
        }
    }
    return 0;
}

static void sweep_stale_tmp(gf_ctx *ctx, const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *t = strstr(e->d_name, ".tmp.");
        while (t && strstr(t + 1, ".tmp.")) t = strstr(t + 1, ".tmp.");
        if (!t || t == e->d_name) continue;
        char *end;
        long pid = strtol(t + 5, &end, 10);
        if (*end || end == t + 5 || pid <= 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char p[2300];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (unlink(p) == 0) gf_log(ctx, GF_LOG_INFO, "removed %s, left by a run (pid %ld) that did not finish", p, pid);
    }
    closedir(d);
}

static gf_status busy(gf_ctx *ctx, const char *dir, long pid) {
    return gf_fail(ctx, GF_ERR_USAGE, "run directory %s is in use by another gradfeat run (pid %ld); wait for it to "
                   "finish or stop it, or choose another --run-dir", dir, pid);
}

gf_status gf_run_dir_check_free(gf_ctx *ctx, const char *dir) {
    char path[2100];
    snprintf(path, sizeof path, "%s/.gradfeat.lock", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) return GF_OK;
    gf_status st = GF_OK;
    if (flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
        char buf[32] = "";
        ssize_t r = pread(fd, buf, sizeof buf - 1, 0);
        buf[r > 0 ? r : 0] = 0;
        st = busy(ctx, dir, strtol(buf, NULL, 10));
    }
    close(fd);
    return st;
}

gf_status gf_run_dir_lock(gf_ctx *ctx, const char *dir, int *fd_out) {
    *fd_out = -1;
    struct stat sb;
    if (stat(dir, &sb) == 0 && !S_ISDIR(sb.st_mode))
        return gf_fail(ctx, GF_ERR_USAGE, "run directory %s is not a directory", dir);
    if (gf_mkdirs(dir) != 0)
        return gf_fail(ctx, GF_ERR_IO, "cannot create run directory %s: %s", dir, strerror(errno));
    char path[2100];
    snprintf(path, sizeof path, "%s/.gradfeat.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return gf_fail(ctx, GF_ERR_IO, "run directory %s is not writable (%s: %s); choose another --run-dir", dir,
                       path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char buf[32] = "";
        ssize_t r = pread(fd, buf, sizeof buf - 1, 0);
        buf[r > 0 ? r : 0] = 0;
        close(fd);
        long pid = strtol(buf, NULL, 10);
        if (e == EWOULDBLOCK) return busy(ctx, dir, pid);
        return gf_fail(ctx, GF_ERR_IO, "cannot lock %s: %s", path, strerror(e));
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        int e = errno;
        close(fd);
        return gf_fail(ctx, GF_ERR_IO, "run directory %s is not writable (%s: %s); choose another --run-dir", dir,
                       path, strerror(e));
    }
    sweep_stale_tmp(ctx, dir);
    *fd_out = fd;
    return GF_OK;
}

const char *gf_cache_dir_untrusted(const char *dir) {
    struct stat sb;
    if (lstat(dir, &sb) != 0) return NULL;
    if (!S_ISDIR(sb.st_mode)) return "it is not a directory";
    if (sb.st_uid != geteuid()) return "it is owned by another user";
    if (sb.st_mode & (S_IWGRP | S_IWOTH)) return "others can write to it";
    return NULL;
}

void gf_sink_put(gf_sink *s, const void *src, size_t n) {
    if (s->oom || !n) return;
    if (s->n + n > s->cap) {
        size_t cap = s->cap ? s->cap : 1 << 16;
        while (cap < s->n + n) cap *= 2;
        char *q = realloc(s->p, cap);
        if (!q) { s->oom = 1; return; }
        s->p = q; s->cap = cap;
    }
    memcpy(s->p + s->n, src, n);
    s->n += n;
}

void gf_fmt_secs(char *b, size_t n, double s) {
    if (s < 60) snprintf(b, n, "%.0fs", s);
    else if (s < 3600) snprintf(b, n, "%dm%02ds", (int)s / 60, (int)s % 60);
    else snprintf(b, n, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
}

static int cmp_int(const void *a, const void *b) { int x = *(const int *)a, y = *(const int *)b; return (x > y) - (x < y); }

int *gf_seeded_subset(int n, int limit, uint64_t seed, int *count) {
    int *p = malloc((size_t)(n ? n : 1) * sizeof(int));
    if (!p) return NULL;
    for (int i = 0; i < n; i++) p[i] = i;
    if (limit > 0 && limit < n) {
        uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 0xD1B54A32D192ED03ULL;
        for (int i = 0; i < limit; i++) {
            s ^= s >> 12; s ^= s << 25; s ^= s >> 27;
            int j = i + (int)((s * 0x2545F4914F6CDD1DULL) % (uint64_t)(n - i));
            int t = p[i]; p[i] = p[j]; p[j] = t;
        }
        n = limit;
        qsort(p, (size_t)n, sizeof(int), cmp_int);   /* dataset order keeps file reads sequential */
    }
    *count = n;
    return p;
}
