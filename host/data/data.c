/* Datasets: opening (format dispatch), image file checks and decoding with
 * stb_image, problem records, accessors, class map and manifest writers. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <stb_image.h>
#include <stb_image_write.h>
#include "data_internal.h"
#include "gf_file.h"

char *gfd_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

char *gfd_join(const char *dir, const char *name) {
    if (!dir || !*dir || name[0] == '/') return gfd_strdup(name);
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t k = a;
    if (a && dir[a - 1] != '/') p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}

int gfd_is_dir(const char *path) { struct stat st; return stat(path, &st) == 0 && S_ISDIR(st.st_mode); }
int gfd_is_file(const char *path) { struct stat st; return stat(path, &st) == 0 && S_ISREG(st.st_mode); }

int gfd_online_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

void gfd_problem_add(gf_dataset *ds, const char *path, const char *fmt, ...) {
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    gf_vformat(why, sizeof why, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&ds->mu);
    ds->n_problems++;
    if (ds->kept < GFD_PROBLEMS_KEPT) {
        gfd_problem *p = &ds->problems[ds->kept];
        p->path = gfd_strdup(path ? path : "");
        p->reason = gfd_strdup(why);
        if (p->path && p->reason) ds->kept++;
        else { free(p->path); free(p->reason); p->path = p->reason = NULL; }
    }
    pthread_mutex_unlock(&ds->mu);
}

gf_dataset *gfd_new(gf_dataset_format f, const char *root) {
    gf_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return NULL;
    ds->format = f;
    pthread_mutex_init(&ds->mu, NULL);
    ds->root = gfd_strdup(root);
    if (!ds->root) { pthread_mutex_destroy(&ds->mu); free(ds); return NULL; }
    return ds;
}

void gf_dataset_options_init(gf_dataset_options *o) {
    memset(o, 0, sizeof *o);
    o->verify = GF_VERIFY_HEADER;
    o->multi_label = -1;
}

void gf_dataset_free(gf_dataset *ds) {
    if (!ds) return;
    for (int i = 0; i < ds->n; i++) {
        if (ds->paths) free(ds->paths[i]);
        if (ds->splits) free(ds->splits[i]);
    }
    free(ds->paths); free(ds->splits);
    for (int k = 0; k < ds->num_classes; k++) if (ds->class_names) free(ds->class_names[k]);
    free(ds->class_names); free(ds->class_count);
    free(ds->label); free(ds->multi); free(ds->w); free(ds->h);
    free(ds->pixels); free(ds->idx_row); free(ds->failed);
    for (int i = 0; i < ds->kept; i++) { free(ds->problems[i].path); free(ds->problems[i].reason); }
    free(ds->root);
    pthread_mutex_destroy(&ds->mu);
    free(ds);
}

gf_status gfd_finish(gf_dataset *ds, char *err, size_t err_size) {
    if (ds->n == 0) {
        const char *why = ds->kept ? ds->problems[0].reason : "no image files found";
        return gf_fail_msg(err, err_size, GF_ERR_INPUT, "dataset %s has no usable samples (%lld inputs skipped%s%s%s%s)",
                        ds->root, (long long)ds->n_problems, ds->kept ? "; first: " : "",
                        ds->kept ? ds->problems[0].path : "", ds->kept ? ": " : "", ds->kept ? why : "");
    }
    for (int k = 0; ds->class_names && k < ds->num_classes; k++) {
        const char *c = ds->class_names[k];
        if (c && c[gf_utf8_valid_prefix(c)])
            return gf_fail_msg(err, err_size, GF_ERR_INPUT, "dataset %s: class name '%.*s...' is not valid UTF-8 at byte %zu "
                            "(latin-1?): re-encode the labels or folder names as UTF-8", ds->root,
                            (int)gf_utf8_valid_prefix(c), c, gf_utf8_valid_prefix(c));
    }
    ds->class_count = calloc((size_t)ds->num_classes + 1, sizeof(int));
    ds->failed = calloc((size_t)ds->n, 1);
    if (!ds->class_count || !ds->failed) return gf_fail_msg(err, err_size, GF_ERR_MEMORY, "dataset: out of memory");
    for (int i = 0; i < ds->n; i++) {
        if (ds->multi) {
            for (int k = 0; k < ds->num_classes; k++) ds->class_count[k] += ds->multi[(size_t)i * ds->num_classes + k];
        } else if (ds->label[i] >= 0 && ds->label[i] < ds->num_classes) {
            ds->class_count[ds->label[i]]++;
        }
    }
    return GF_OK;
}

/* ---- image files ---- */

static const char *stb_reason(void) {
    const char *r = stbi_failure_reason();
    return r ? r : "unknown";
}

/* Reads the file (whole, or head + tail when head_only) after the size checks. */
static gf_status read_file(const char *path, int64_t max_bytes, int head_only, uint8_t **buf, size_t *len,
                           uint8_t *tail, size_t *tail_len, char *why, size_t why_size) {
    struct stat st;
    *buf = NULL;
    *len = 0;
    *tail_len = 0;
    if (stat(path, &st) != 0) return gf_fail_msg(why, why_size, GF_ERR_INPUT, "cannot open: %s", strerror(errno));
    if (!S_ISREG(st.st_mode)) return gf_fail_msg(why, why_size, GF_ERR_INPUT, "not a regular file");
    if (st.st_size == 0) return gf_fail_msg(why, why_size, GF_ERR_INPUT, "empty file (0 bytes)");
    if (max_bytes <= 0 || max_bytes > INT_MAX) max_bytes = max_bytes <= 0 ? ((int64_t)256 << 20) : INT_MAX;
    if ((int64_t)st.st_size > max_bytes)
        return gf_fail_msg(why, why_size, GF_ERR_INPUT, "file of %lld bytes is over the limit of %lld bytes",
                        (long long)st.st_size, (long long)max_bytes);
    FILE *f = gf_fopen_regular(path, why, why_size);
    if (!f) return GF_ERR_INPUT;
    size_t size = (size_t)st.st_size, want = size;
    if (head_only && want > (256u << 10)) want = 256u << 10;
    uint8_t *b = malloc(want);
    if (!b) { fclose(f); return gf_fail_msg(why, why_size, GF_ERR_MEMORY, "out of memory for %zu bytes", want); }
    size_t got = fread(b, 1, want, f);
    if (got != want) {
        int e = ferror(f);
        fclose(f); free(b);
        return gf_fail_msg(why, why_size, GF_ERR_INPUT, "read error%s%s", e ? ": " : " (file shrank)", e ? strerror(errno) : "");
    }
    size_t tl = size < 4096 ? size : 4096;
    if (want == size) memcpy(tail, b + size - tl, tl);
    else if (fseek(f, (long)(size - tl), SEEK_SET) != 0 || fread(tail, 1, tl, f) != tl) {
        fclose(f); free(b);
        return gf_fail_msg(why, why_size, GF_ERR_INPUT, "read error at the end of the file");
    }
    fclose(f);
    *buf = b;
    *len = want;
    *tail_len = tl;
    return GF_OK;
}

/* Format checks stb_image is lenient about: truncated JPEG and PNG files. */
static gf_status check_ends(const uint8_t *b, size_t len, const uint8_t *tail, size_t tl, char *why, size_t why_size) {
    if (len >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) {
        for (size_t i = tl; i >= 2; i--)
            if (tail[i - 2] == 0xFF && tail[i - 1] == 0xD9) return GF_OK;
        return gf_fail_msg(why, why_size, GF_ERR_INPUT, "truncated JPEG (no end-of-image marker)");
    }
    if (len >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0) {
        for (size_t i = tl; i >= 4; i--)
            if (memcmp(tail + i - 4, "IEND", 4) == 0) return GF_OK;
        return gf_fail_msg(why, why_size, GF_ERR_INPUT, "truncated PNG (no IEND chunk)");
    }
    return GF_OK;
}

static gf_status check_header(const uint8_t *b, size_t len, int64_t max_pixels, int *w, int *h, int *c,
                              char *why, size_t why_size) {
    if (!stbi_info_from_memory(b, (int)len, w, h, c))
        return gf_fail_msg(why, why_size, GF_ERR_INPUT, "not a readable image (stb_image: %s)", stb_reason());
    if (max_pixels <= 0) max_pixels = (int64_t)64 << 20;
    if (*w < 1 || *h < 1 || (int64_t)*w * *h > max_pixels)
        return gf_fail_msg(why, why_size, GF_ERR_INPUT, "image %dx%d is over the size limit of %lld pixels", *w, *h,
                        (long long)max_pixels);
    return GF_OK;
}

/* PNG chunks must lie inside the file: stb_image grows its IDAT buffer to a
 * chunk's declared length before reading it, so one bogus length in a tiny
 * file would otherwise cost a multi-GiB allocation (found by fuzz_image). */
static gf_status check_png_chunks(const uint8_t *b, size_t len, char *why, size_t why_size) {
    if (len < 8 || memcmp(b, "\x89PNG\r\n\x1a\n", 8) != 0) return GF_OK;
    for (size_t at = 8; at + 8 <= len;) {
        uint32_t n = (uint32_t)b[at] << 24 | (uint32_t)b[at + 1] << 16 | (uint32_t)b[at + 2] << 8 | b[at + 3];
        if ((uint64_t)n + 12 > len - at)
            return gf_fail_msg(why, why_size, GF_ERR_INPUT, "corrupt PNG (chunk at byte %zu of length %u runs past the end)",
                            at, n);
        if (memcmp(b + at + 4, "IEND", 4) == 0) break;
        at += (size_t)n + 12;
    }
    return GF_OK;
}

gf_status gfd_decode_file(const char *path, int64_t max_bytes, int64_t max_pixels, gf_image *img,
                          char *why, size_t why_size) {
    uint8_t *b, tail[4096];
    size_t len, tl;
    int w, h, c;
    memset(img, 0, sizeof *img);
    GF_TRY(read_file(path, max_bytes, 0, &b, &len, tail, &tl, why, why_size));
    gf_status st = check_header(b, len, max_pixels, &w, &h, &c, why, why_size);
    if (st == GF_OK) st = check_ends(b, len, tail, tl, why, why_size);
    if (st == GF_OK) st = check_png_chunks(b, len, why, why_size);
    if (st == GF_OK) {
        int dw, dh, dc;
        uint8_t *p = stbi_load_from_memory(b, (int)len, &dw, &dh, &dc, 0);
        if (!p) st = gf_fail_msg(why, why_size, GF_ERR_INPUT, "corrupt image (stb_image: %s)", stb_reason());
        else if (dw != w || dh != h || dc < 1 || dc > 4) {
            stbi_image_free(p);
            st = gf_fail_msg(why, why_size, GF_ERR_INPUT, "corrupt image (header %dx%d, decoded %dx%dx%d)", w, h, dw, dh, dc);
        } else {
            img->data = p; img->w = dw; img->h = dh; img->c = dc; img->from_stb = 1;
        }
    }
    free(b);
    return st;
}

gf_status gfd_check_image_file(const char *path, int64_t max_bytes, int64_t max_pixels, int full_decode,
                               int *w, int *h, char *why, size_t why_size) {
    *w = *h = 0;
    if (full_decode) {
        gf_image img;
        GF_TRY(gfd_decode_file(path, max_bytes, max_pixels, &img, why, why_size));
        *w = img.w; *h = img.h;
        gf_image_free(&img);
        return GF_OK;
    }
    uint8_t *b, tail[4096];
    size_t len, tl;
    int c;
    GF_TRY(read_file(path, max_bytes, 1, &b, &len, tail, &tl, why, why_size));
    gf_status st = check_header(b, len, max_pixels, w, h, &c, why, why_size);
    if (st == GF_OK) st = check_ends(b, len, tail, tl, why, why_size);
    free(b);
    return st;
}

void gf_image_free(gf_image *img) {
    if (!img) return;
    if (img->from_stb) stbi_image_free(img->data);
    else free(img->data);
    memset(img, 0, sizeof *img);
}

/* ---- parallel verification ---- */
typedef struct verify_job {
    char **paths;
    int n, level;
    int64_t max_bytes, max_pixels;
    uint8_t *ok;
    int32_t *w, *h;
    char **why;
    int next;
    pthread_mutex_t mu;
} verify_job;

static void *verify_worker(void *arg) {
    verify_job *j = arg;
    for (;;) {
        pthread_mutex_lock(&j->mu);
        int i = j->next++;
        pthread_mutex_unlock(&j->mu);
        if (i >= j->n) break;
        char why[512] = "";
        int w = 0, h = 0;
        gf_status st = j->level > GF_VERIFY_NONE
            ? gfd_check_image_file(j->paths[i], j->max_bytes, j->max_pixels, j->level >= GF_VERIFY_DECODE, &w, &h,
                                   why, sizeof why)
            : GF_OK;
        j->ok[i] = st == GF_OK;
        j->w[i] = w; j->h[i] = h;
        j->why[i] = st == GF_OK ? NULL : gfd_strdup(why);
    }
    return NULL;
}

/* Fills ok/w/h and why (malloc'ed reasons for the failures; caller frees). */
static void verify_paths(char **paths, int n, int level, int threads, int64_t max_bytes, int64_t max_pixels,
                         uint8_t *ok, int32_t *w, int32_t *h, char **why) {
    verify_job j = {paths, n, level, max_bytes, max_pixels, ok, w, h, why, 0, PTHREAD_MUTEX_INITIALIZER};
    if (threads <= 0) threads = gfd_online_cpus();
    if (level == GF_VERIFY_NONE || n < 32) threads = 1;
    pthread_t tid[64];
    int started = 0;
    for (int t = 1; t < threads && t < 64; t++)
        if (pthread_create(&tid[started], NULL, verify_worker, &j) == 0) started++;
    verify_worker(&j);
    for (int t = 0; t < started; t++) pthread_join(tid[t], NULL);
    pthread_mutex_destroy(&j.mu);
}

/* Shared by folder and csv: verify ds->paths[0..n), drop the bad ones (with a
 * problem record each, in path order), compact the per-sample arrays. */
gf_status gfd_verify_and_compact(gf_dataset *ds, int level, int threads, char *err, size_t err_size) {
    int n = ds->n;
    if (n == 0) return GF_OK;
    uint8_t *ok = malloc((size_t)n);
    char **why = calloc((size_t)n, sizeof(char *));
    ds->w = calloc((size_t)n, sizeof(int32_t));
    ds->h = calloc((size_t)n, sizeof(int32_t));
    if (!ok || !why || !ds->w || !ds->h) {
        free(ok); free(why);
        return gf_fail_msg(err, err_size, GF_ERR_MEMORY, "dataset: out of memory verifying %d files", n);
    }
    verify_paths(ds->paths, n, level, threads, ds->max_file_bytes, ds->max_pixels, ok, ds->w, ds->h, why);
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (!ok[i]) {
            gfd_problem_add(ds, ds->paths[i], "%s", why[i] ? why[i] : "out of memory");
            free(why[i]);
            free(ds->paths[i]);
            if (ds->splits) free(ds->splits[i]);
            continue;
        }
        ds->paths[m] = ds->paths[i];
        if (ds->splits) ds->splits[m] = ds->splits[i];
        ds->label[m] = ds->label[i];
        if (ds->multi && m != i)
            memcpy(ds->multi + (size_t)m * ds->num_classes, ds->multi + (size_t)i * ds->num_classes, (size_t)ds->num_classes);
        ds->w[m] = ds->w[i];
        ds->h[m] = ds->h[i];
        m++;
    }
    ds->n = m;
    free(ok); free(why);
    return GF_OK;
}

gf_status gfd_read_class_names(const char *path, char ***names, int *n, char *err, size_t err_size) {
    *names = NULL;
    *n = 0;
    char why[256];
    FILE *f = gf_fopen_regular(path, why, sizeof why);
    if (!f) return gf_fail_msg(err, err_size, GF_ERR_INPUT, "class names file %s: %s", path, why);
    char line[1024];
    int cap = 0;
    gf_status st = GF_OK;
    while (fgets(line, sizeof line, f)) {
        size_t l = strlen(line);
        while (l && (line[l - 1] == '\n' || line[l - 1] == '\r' || line[l - 1] == ' ' || line[l - 1] == '\t')) line[--l] = 0;
        if (!l) continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(*names, sizeof(char *) * (size_t)cap);
            if (!nn) { st = GF_ERR_MEMORY; break; }
            *names = nn;
        }
        if (!((*names)[*n] = gfd_strdup(line))) { st = GF_ERR_MEMORY; break; }
        (*n)++;
    }
    fclose(f);
    if (st == GF_OK && *n == 0) st = gf_fail_msg(err, err_size, GF_ERR_INPUT, "class names file %s is empty", path);
    else if (st != GF_OK) gf_fail_msg(err, err_size, st, "class names file %s: out of memory", path);
    if (st != GF_OK) {
        for (int i = 0; i < *n; i++) free((*names)[i]);
        free(*names);
        *names = NULL;
        *n = 0;
    }
    return st;
}

/* ---- open ---- */

static int ends_with_ci(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    if (a < b) return 0;
    for (size_t i = 0; i < b; i++)
        if (tolower((unsigned char)s[a - b + i]) != tolower((unsigned char)suf[i])) return 0;
    return 1;
}

static int dir_has_idx(const char *path) {
    DIR *d = opendir(path);
    if (!d) return 0;
    struct dirent *e;
    int found = 0;
    while (!found && (e = readdir(d))) found = strstr(e->d_name, "-idx3-ubyte") != NULL;
    closedir(d);
    return found;
}

static int file_is_idx(const char *path) {
    int fd = gf_open_regular(path, NULL, 0);
    gzFile g = fd >= 0 ? gzdopen(fd, "rb") : NULL;
    if (!g) { if (fd >= 0) close(fd); return 0; }
    unsigned char m[4];
    int n = gzread(g, m, 4);
    gzclose(g);
    return n == 4 && m[0] == 0 && m[1] == 0 && m[2] == 8 && (m[3] == 1 || m[3] == 3 || m[3] == 4);
}

gf_status gf_dataset_open(const char *path, const gf_dataset_options *opt, gf_dataset **out,
                          char *err, size_t err_size) {
    gf_dataset_options def;
    if (!out) return gf_fail_msg(err, err_size, GF_ERR_USAGE, "gf_dataset_open: no output handle");
    *out = NULL;
    if (!opt) { gf_dataset_options_init(&def); opt = &def; }
    if (!path || !*path) return gf_fail_msg(err, err_size, GF_ERR_USAGE, "no dataset path given");
    struct stat st;
    if (stat(path, &st) != 0)
        return gf_fail_msg(err, err_size, GF_ERR_INPUT, "dataset %s: %s", path, strerror(errno));
    gf_dataset_format f = opt->format;
    if (f == GF_DATA_AUTO) {
        if (S_ISDIR(st.st_mode)) f = dir_has_idx(path) ? GF_DATA_IDX : GF_DATA_FOLDER;
        else if (ends_with_ci(path, ".csv")) f = GF_DATA_CSV;
        else if (file_is_idx(path)) f = GF_DATA_IDX;
        else
            return gf_fail_msg(err, err_size, GF_ERR_INPUT,
                            "dataset %s: not a folder, a .csv manifest or an IDX file", path);
    }
    switch (f) {
    case GF_DATA_FOLDER: return gfd_open_folder(path, opt, out, err, err_size);
    case GF_DATA_IDX: return gfd_open_idx(path, opt, out, err, err_size);
    case GF_DATA_CSV: return gfd_open_csv(path, opt, out, err, err_size);
    default: return gf_fail_msg(err, err_size, GF_ERR_USAGE, "unknown dataset format %d", (int)f);
    }
}

/* ---- accessors ---- */

gf_dataset_format gf_dataset_get_format(const gf_dataset *ds) { return ds->format; }
int gf_dataset_count(const gf_dataset *ds) { return ds->n; }
int gf_dataset_num_classes(const gf_dataset *ds) { return ds->num_classes; }
const char *gf_dataset_class_name(const gf_dataset *ds, int k) {
    return (k >= 0 && k < ds->num_classes) ? ds->class_names[k] : NULL;
}
int gf_dataset_is_multi_label(const gf_dataset *ds) { return ds->multi != NULL; }
int gf_dataset_class_count(const gf_dataset *ds, int k) {
    return (k >= 0 && k < ds->num_classes && ds->class_count) ? ds->class_count[k] : 0;
}
int gf_dataset_label(const gf_dataset *ds, int i) {
    return (i >= 0 && i < ds->n && !ds->multi) ? ds->label[i] : -1;
}
void gf_dataset_targets(const gf_dataset *ds, int i, float *out) {
    for (int k = 0; k < ds->num_classes; k++) out[k] = 0.0f;
    if (i < 0 || i >= ds->n) return;
    if (ds->multi) {
        for (int k = 0; k < ds->num_classes; k++) out[k] = ds->multi[(size_t)i * ds->num_classes + k];
    } else if (ds->label[i] >= 0 && ds->label[i] < ds->num_classes) {
        out[ds->label[i]] = 1.0f;
    }
}
const char *gf_dataset_path(const gf_dataset *ds, int i) {
    return (ds->paths && i >= 0 && i < ds->n) ? ds->paths[i] : NULL;
}
uint64_t gf_dataset_sample_key(const gf_dataset *ds, int i) {
    if (i < 0 || i >= ds->n) return 0;
    uint64_t h = 1469598103934665603ULL;
#define MIX_(p, len) do { const unsigned char *q_ = (const unsigned char *)(p); \
        for (size_t k_ = 0; k_ < (size_t)(len); k_++) { h ^= q_[k_]; h *= 1099511628211ULL; } } while (0)
    if (ds->pixels && ds->idx_row) {
        size_t per = (size_t)ds->idx_w * ds->idx_h * (ds->idx_c > 0 ? ds->idx_c : 1);
        MIX_(ds->pixels + (size_t)ds->idx_row[i] * per, per);
    } else if (ds->paths) {
        struct stat sb;
        if (stat(ds->paths[i], &sb) != 0) return 0;
        int64_t v[8] = {(int64_t)sb.st_size, (int64_t)sb.st_ino, (int64_t)sb.st_dev, (int64_t)sb.st_mtim.tv_sec,
                        (int64_t)sb.st_mtim.tv_nsec, (int64_t)sb.st_ctim.tv_sec, (int64_t)sb.st_ctim.tv_nsec, 0};
        MIX_(ds->paths[i], strlen(ds->paths[i]));
        MIX_(v, sizeof v);
    }
#undef MIX_
    return h ? h : 1;
}

void gf_dataset_image_size(const gf_dataset *ds, int i, int *w, int *h) {
    *w = *h = 0;
    if (i < 0 || i >= ds->n) return;
    if (ds->pixels) { *w = ds->idx_w; *h = ds->idx_h; }
    else if (ds->w) { *w = ds->w[i]; *h = ds->h[i]; }
}

gf_status gf_dataset_load_image(gf_dataset *ds, int i, gf_image *img, char *err, size_t err_size) {
    memset(img, 0, sizeof *img);
    if (i < 0 || i >= ds->n) return gf_fail_msg(err, err_size, GF_ERR_USAGE, "sample %d out of range [0,%d)", i, ds->n);
    if (ds->pixels) {
        size_t sz = (size_t)ds->idx_w * ds->idx_h * ds->idx_c;
        img->data = malloc(sz);
        if (!img->data) return gf_fail_msg(err, err_size, GF_ERR_MEMORY, "out of memory");
        memcpy(img->data, ds->pixels + (size_t)ds->idx_row[i] * sz, sz);
        img->w = ds->idx_w; img->h = ds->idx_h; img->c = ds->idx_c;
        return GF_OK;
    }
    char why[512];
    gf_status st = gfd_decode_file(ds->paths[i], ds->max_file_bytes, ds->max_pixels, img, why, sizeof why);
    if (st != GF_OK) {
        int first;
        pthread_mutex_lock(&ds->mu);
        first = !ds->failed[i];
        ds->failed[i] = 1;
        pthread_mutex_unlock(&ds->mu);
        if (first) gfd_problem_add(ds, ds->paths[i], "%s", why);
        return gf_fail_msg(err, err_size, st, "%s: %s", ds->paths[i], why);
    }
    return GF_OK;
}

gf_status gfd_dataset_sample(gf_dataset *ds, int i, const gf_preprocess *pp, uint64_t seed, float *out, gfd_ws *ws,
                             char *err, size_t err_size) {
    gf_image img;
    GF_TRY(gf_preprocess_check(pp, err, err_size));
    if (ds->pixels && i >= 0 && i < ds->n)   /* idx: straight from memory, no copy */
        return gfd_preprocess(pp, ds->pixels + (size_t)ds->idx_row[i] * ds->idx_w * ds->idx_h * ds->idx_c, ds->idx_w,
                              ds->idx_h, ds->idx_c, seed, out, ws, err, err_size);
    GF_TRY(gf_dataset_load_image(ds, i, &img, err, err_size));
    gf_status st = gfd_preprocess(pp, img.data, img.w, img.h, img.c, seed, out, ws, err, err_size);
    gf_image_free(&img);
    return st;
}

gf_status gf_dataset_sample(gf_dataset *ds, int i, const gf_preprocess *pp, uint64_t seed, float *out,
                            char *err, size_t err_size) {
    gfd_ws ws = {{NULL, NULL, NULL}, {0, 0, 0}};
    gf_status st = gfd_dataset_sample(ds, i, pp, seed, out, &ws, err, err_size);
    gfd_ws_free(&ws);
    return st;
}

int64_t gf_dataset_problem_count(const gf_dataset *ds) { return ds->n_problems; }
int gf_dataset_problems_kept(const gf_dataset *ds) { return ds->kept; }
const char *gf_dataset_problem(const gf_dataset *ds, int i, const char **reason) {
    if (i < 0 || i >= ds->kept) { if (reason) *reason = NULL; return NULL; }
    if (reason) *reason = ds->problems[i].reason;
    return ds->problems[i].path;
}

void gf_dataset_report(const gf_dataset *ds, FILE *f, int max_lines) {
    if (!ds->n_problems) return;
    fprintf(f, "skipped %lld input%s:\n", (long long)ds->n_problems, ds->n_problems == 1 ? "" : "s");
    int n = ds->kept < max_lines ? ds->kept : max_lines;
    for (int i = 0; i < n; i++) fprintf(f, "  %s: %s\n", ds->problems[i].path, ds->problems[i].reason);
    if (ds->n_problems > n) fprintf(f, "  ... and %lld more\n", (long long)(ds->n_problems - n));
}

gf_status gf_dataset_write_class_map(const gf_dataset *ds, const char *path, char *err, size_t err_size) {
    FILE *f = fopen(path, "w");
    if (!f) return gf_fail_msg(err, err_size, GF_ERR_IO, "class map %s: %s", path, strerror(errno));
    for (int k = 0; k < ds->num_classes; k++) fprintf(f, "%d\t%s\n", k, ds->class_names[k]);
    if (fclose(f) != 0) return gf_fail_msg(err, err_size, GF_ERR_IO, "class map %s: write failed", path);
    return GF_OK;
}

static void csv_field(FILE *f, const char *s) {
    if (!strpbrk(s, ",\"\r\n") && s[0] != ' ' && (!*s || s[strlen(s) - 1] != ' ')) { fputs(s, f); return; }
    fputc('"', f);
    for (; *s; s++) { if (*s == '"') fputc('"', f); fputc(*s, f); }
    fputc('"', f);
}

gf_status gf_dataset_write_csv(const gf_dataset *ds, const char *path, char *err, size_t err_size) {
    if (!ds->paths) return gf_fail_msg(err, err_size, GF_ERR_USAGE, "dataset %s has no file paths to write", ds->root);
    char *dir = gfd_strdup(path);
    if (!dir) return gf_fail_msg(err, err_size, GF_ERR_MEMORY, "out of memory");
    char *slash = strrchr(dir, '/');
    if (slash) slash[1] = 0; else dir[0] = 0;
    size_t dl = strlen(dir);
    FILE *f = fopen(path, "w");
    if (!f) { free(dir); return gf_fail_msg(err, err_size, GF_ERR_IO, "manifest %s: %s", path, strerror(errno)); }
    fputs(ds->splits ? "path,labels,split\n" : "path,labels\n", f);
    size_t cap = 1;
    for (int k = 0; k < ds->num_classes; k++) cap += strlen(ds->class_names[k]) + 1;
    char *lab = malloc(cap);
    for (int i = 0; i < ds->n && lab; i++) {
        const char *p = ds->paths[i];
        if (dl && strncmp(p, dir, dl) == 0) p += dl;
        csv_field(f, p);
        fputc(',', f);
        size_t L = 0;
        lab[0] = 0;
        for (int k = 0; k < ds->num_classes; k++) {
            int on = ds->multi ? ds->multi[(size_t)i * ds->num_classes + k] : ds->label[i] == k;
            if (!on) continue;
            L += (size_t)snprintf(lab + L, cap - L, "%s%s", L ? ";" : "", ds->class_names[k]);
        }
        csv_field(f, lab);
        if (ds->splits) { fputc(',', f); csv_field(f, ds->splits[i] ? ds->splits[i] : ""); }
        fputc('\n', f);
    }
    int bad = !lab;
    free(lab);
    free(dir);
    if (fclose(f) != 0 || bad) return gf_fail_msg(err, err_size, GF_ERR_IO, "manifest %s: write failed", path);
    return GF_OK;
}

gf_status gf_dataset_write_grid(gf_dataset *ds, const gf_preprocess *pp, int n, uint64_t seed, const char *png_path,
                                char *err, size_t err_size) {
    GF_TRY(gf_preprocess_check(pp, err, err_size));
    if (n < 1) n = 1;
    if (n > ds->n) n = ds->n;
    const int W = pp->width, H = pp->height, gap = 2;
    int cols = (int)ceil(sqrt((double)n)), rows = (n + cols - 1) / cols;
    int GW = cols * (W + gap) + gap, GH = rows * (H + gap) + gap;
    if ((int64_t)GW * GH > ((int64_t)1 << 28))
        return gf_fail_msg(err, err_size, GF_ERR_USAGE, "grid of %d samples at %dx%d is too large", n, W, H);
    uint8_t *img = malloc((size_t)GW * GH * 3), *tile = malloc((size_t)W * H * 3);
    float *x = malloc(sizeof(float) * gf_preprocess_numel(pp));
    if (!img || !tile || !x) {
        free(img); free(tile); free(x);
        return gf_fail_msg(err, err_size, GF_ERR_MEMORY, "grid: out of memory");
    }
    memset(img, 48, (size_t)GW * GH * 3);
    for (int k = 0; k < n; k++) {
        int i = (int)((int64_t)k * ds->n / n);
        char why[512];
        if (gf_dataset_sample(ds, i, pp, gfd_mix64(seed ^ (uint64_t)i), x, why, sizeof why) == GF_OK)
            gf_preprocess_to_rgb8(pp, x, tile);
        else
            memset(tile, 16, (size_t)W * H * 3);
        int ox = gap + (k % cols) * (W + gap), oy = gap + (k / cols) * (H + gap);
        for (int y = 0; y < H; y++) memcpy(img + ((size_t)(oy + y) * GW + ox) * 3, tile + (size_t)y * W * 3, (size_t)W * 3);
    }
    int ok = stbi_write_png(png_path, GW, GH, 3, img, GW * 3);
    free(img); free(tile); free(x);
    if (!ok) return gf_fail_msg(err, err_size, GF_ERR_IO, "cannot write %s", png_path);
    return GF_OK;
}
