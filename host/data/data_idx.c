/* IDX files (MNIST, Fashion-MNIST): unsigned-byte images N x H x W [x C] and
 * labels N, gzip or plain (zlib reads both). Everything is read into memory. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <unistd.h>
#include "data_internal.h"
#include "gf_file.h"

/* Reads exactly n bytes; returns bytes read, sets *zerr on a zlib error. */
static size_t gz_read_all(gzFile g, uint8_t *dst, size_t n, const char **zerr) {
    size_t got = 0;
    *zerr = NULL;
    while (got < n) {
        size_t chunk = n - got > (1u << 30) ? (1u << 30) : n - got;
        int r = gzread(g, dst + got, (unsigned)chunk);
        if (r < 0) { int e; *zerr = gzerror(g, &e); break; }
        if (r == 0) break;
        got += (size_t)r;
    }
    return got;
}

/* Opens an IDX file and reads its header. dims[0..ndim). */
static gf_status idx_header(const char *path, gzFile *out, int *ndim, uint32_t dims[4], char *err, size_t err_size) {
    *out = NULL;
    char why[256];
    int fd = gf_open_regular(path, why, sizeof why);
    if (fd < 0) return gf_fail_msg(err, err_size, GF_ERR_INPUT, "IDX file %s: %s", path, why);
    gzFile g = gzdopen(fd, "rb");
    if (!g) { close(fd); return gf_fail_msg(err, err_size, GF_ERR_MEMORY, "IDX file %s: out of memory", path); }
    uint8_t m[4];
    const char *zerr;
    if (gz_read_all(g, m, 4, &zerr) != 4) {
        /* zerr lives in g: format the message before closing */
        gf_status st = gf_fail_msg(err, err_size, GF_ERR_INPUT, "IDX file %s: too short for a header%s%s", path,
                                zerr ? ": " : "", zerr ? zerr : "");
        gzclose(g);
        return st;
    }
    if (m[0] != 0 || m[1] != 0 || m[3] < 1 || m[3] > 4) {
        gzclose(g);
        return gf_fail_msg(err, err_size, GF_ERR_INPUT, "IDX file %s: bad magic %02x %02x %02x %02x", path, m[0], m[1], m[2], m[3]);
    }
    if (m[2] != 0x08) {
        gzclose(g);
        return gf_fail_msg(err, err_size, GF_ERR_INPUT, "IDX file %s: element type 0x%02x not supported (only unsigned bytes, 0x08)",
                        path, m[2]);
    }
    *ndim = m[3];
    uint8_t d[16];
    if (gz_read_all(g, d, (size_t)4 * *ndim, &zerr) != (size_t)4 * *ndim) {
        gzclose(g);
        return gf_fail_msg(err, err_size, GF_ERR_INPUT, "IDX file %s: truncated header", path);
    }
    for (int i = 0; i < *ndim; i++)
        dims[i] = (uint32_t)d[4 * i] << 24 | (uint32_t)d[4 * i + 1] << 16 | (uint32_t)d[4 * i + 2] << 8 | d[4 * i + 3];
    *out = g;
    return GF_OK;
}

/* The header's size is only a claim: the buffer grows with the data actually
 * read (64 MiB steps, doubling), so a 20-byte file that claims a terabyte is
 * reported as truncated instead of allocating it. */
static gf_status idx_body(gzFile g, const char *path, size_t n, uint8_t **data, char *err, size_t err_size) {
    size_t cap = n < ((size_t)64 << 20) ? n : ((size_t)64 << 20), got = 0;
    const char *zerr = NULL;
    *data = malloc(cap ? cap : 1);
    if (!*data) return gf_fail_msg(err, err_size, GF_ERR_MEMORY, "IDX file %s: out of memory for %zu bytes", path, cap);
    for (;;) {
        size_t r = gz_read_all(g, *data + got, cap - got, &zerr);
        got += r;
        if (got < cap || cap == n) break;
        size_t next = cap > n / 2 ? n : 2 * cap;
        uint8_t *b = realloc(*data, next);
        if (!b) {
            free(*data);
            *data = NULL;
            return gf_fail_msg(err, err_size, GF_ERR_MEMORY, "IDX file %s: out of memory for %zu bytes", path, next);
        }
        *data = b;
        cap = next;
    }
    if (got != n) {
        free(*data);
        *data = NULL;
        if (zerr) return gf_fail_msg(err, err_size, GF_ERR_INPUT, "IDX file %s: corrupt compressed data (%s)", path, zerr);
        return gf_fail_msg(err, err_size, GF_ERR_INPUT, "IDX file %s: truncated, expected %zu data bytes, got %zu", path, n, got);
    }
    return GF_OK;
}

/* Finds "<prefix>...<kind>..." in dir (e.g. "train", "-images-idx3-ubyte"). */
static char *find_in_dir(const char *dir, const char *prefix, const char *kind) {
    DIR *d = opendir(dir);
    if (!d) return NULL;
    struct dirent *e;
    char *best = NULL;
    size_t pl = strlen(prefix);
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, prefix, pl) != 0 || !strstr(e->d_name, kind)) continue;
        /* prefer the name that sorts first so that the choice is stable */
        if (!best || strcmp(e->d_name, best) < 0) { free(best); best = gfd_strdup(e->d_name); }
    }
    closedir(d);
    char *full = best ? gfd_join(dir, best) : NULL;
    free(best);
    return full;
}

/* images file name -> labels file name ("images-idx3" -> "labels-idx1"; also with/without .gz). */
static char *labels_for(const char *images) {
    const char *base = strrchr(images, '/');
    base = base ? base + 1 : images;
    const char *p = strstr(base, "images-idx3");
    if (!p) return NULL;
    size_t n = strlen(images);
    char *l = malloc(n + 4);
    if (!l) return NULL;
    size_t pre = (size_t)(p - images);
    memcpy(l, images, pre);
    memcpy(l + pre, "labels-idx1", 11);
    strcpy(l + pre + 11, p + 11);
    if (gfd_is_file(l)) return l;
    size_t ln = strlen(l);
    if (ln > 3 && strcmp(l + ln - 3, ".gz") == 0) l[ln - 3] = 0;
    else strcat(l, ".gz");
    if (gfd_is_file(l)) return l;
    free(l);
    return NULL;
}

gf_status gfd_open_idx(const char *path, const gf_dataset_options *o, gf_dataset **out, char *err, size_t err_size) {
    char *images = NULL, *labels = NULL;
    if (gfd_is_dir(path)) {
        const char *split = o->split && *o->split ? o->split : "train";
        const char *prefix = strcmp(split, "test") == 0 ? "t10k" : split;
        images = find_in_dir(path, prefix, "-images-idx3-ubyte");
        if (!images)
            return gf_fail_msg(err, err_size, GF_ERR_INPUT, "IDX folder %s has no %s-images-idx3-ubyte[.gz] file (split %s)",
                            path, prefix, split);
    } else {
        images = gfd_strdup(path);
        if (!images) return gf_fail_msg(err, err_size, GF_ERR_MEMORY, "out of memory");
    }
    labels = o->labels_path ? gfd_strdup(o->labels_path) : labels_for(images);
    if (!labels) {
        gf_status st = gf_fail_msg(err, err_size, GF_ERR_INPUT,
                                "IDX images %s: no labels file found (expected the name with labels-idx1 in place of "
                                "images-idx3, or give labels_path)", images);
        free(images);
        return st;
    }
    gf_dataset *ds = gfd_new(GF_DATA_IDX, images);
    gzFile g = NULL;
    uint8_t *lab = NULL;
    int ndim = 0;
    uint32_t dims[4] = {0, 0, 0, 0};
    gf_status st = ds ? GF_OK : gf_fail_msg(err, err_size, GF_ERR_MEMORY, "out of memory");
    size_t N = 0;
    if (st == GF_OK) st = idx_header(images, &g, &ndim, dims, err, err_size);
    if (st == GF_OK) {
        if (ndim < 3 || (ndim == 4 && (dims[3] < 1 || dims[3] > 4)) || dims[1] < 1 || dims[2] < 1 || dims[1] > 65535 ||
            dims[2] > 65535)
            st = gf_fail_msg(err, err_size, GF_ERR_INPUT, "IDX images %s: expected N x H x W [x C<=4] dimensions, got %d dims",
                          images, ndim);
    }
    if (st == GF_OK) {
        N = dims[0];
        ds->idx_h = (int)dims[1];
        ds->idx_w = (int)dims[2];
        ds->idx_c = ndim == 4 ? (int)dims[3] : 1;
        size_t per = (size_t)ds->idx_w * ds->idx_h * ds->idx_c;
        if (N > (size_t)INT32_MAX || (N && per > ((size_t)1 << 40) / N))
            st = gf_fail_msg(err, err_size, GF_ERR_INPUT, "IDX images %s: %zu images of %zu bytes is too large", images, N, per);
        else st = idx_body(g, images, N * per, &ds->pixels, err, err_size);
    }
    if (g) gzclose(g);
    g = NULL;
    if (st == GF_OK) {
        int lnd;
        uint32_t ld[4];
        st = idx_header(labels, &g, &lnd, ld, err, err_size);
        if (st == GF_OK && lnd != 1)
            st = gf_fail_msg(err, err_size, GF_ERR_INPUT, "IDX labels %s: has %d dimensions, a labels file has 1 (is it "
                          "an images file?)", labels, lnd);
        if (st == GF_OK && ld[0] != N)
            st = gf_fail_msg(err, err_size, GF_ERR_INPUT, "IDX labels %s: %u labels for %zu images in %s", labels,
                          lnd >= 1 ? ld[0] : 0, N, images);
        if (st == GF_OK) st = idx_body(g, labels, N, &lab, err, err_size);
        if (g) gzclose(g);
    }
    /* classes */
    if (st == GF_OK && o->class_names) {
        st = gfd_read_class_names(o->class_names, &ds->class_names, &ds->num_classes, err, err_size);
        if (st == GF_OK && o->num_classes > 0 && o->num_classes != ds->num_classes)
            st = gf_fail_msg(err, err_size, GF_ERR_USAGE, "%d class names in %s but num_classes is %d", ds->num_classes,
                          o->class_names, o->num_classes);
    }
    if (st == GF_OK && !ds->class_names) {
        int K = o->num_classes;
        if (K <= 0) for (size_t i = 0; i < N; i++) if (lab[i] + 1 > K) K = lab[i] + 1;
        ds->class_names = calloc((size_t)K + 1, sizeof(char *));
        if (!ds->class_names) st = gf_fail_msg(err, err_size, GF_ERR_MEMORY, "out of memory");
        for (int k = 0; st == GF_OK && k < K; k++) {
            char b[16];
            snprintf(b, sizeof b, "%d", k);
            if (!(ds->class_names[k] = gfd_strdup(b))) st = gf_fail_msg(err, err_size, GF_ERR_MEMORY, "out of memory");
            else ds->num_classes = k + 1;
        }
    }
    if (st == GF_OK) {
        ds->label = malloc(sizeof(int) * (N ? N : 1));
        ds->idx_row = malloc(sizeof(int) * (N ? N : 1));
        if (!ds->label || !ds->idx_row) st = gf_fail_msg(err, err_size, GF_ERR_MEMORY, "out of memory");
    }
    if (st == GF_OK) {
        for (size_t i = 0; i < N; i++) {
            if (lab[i] >= ds->num_classes) {
                char where[64];
                snprintf(where, sizeof where, "#%zu", i);
                char *p = malloc(strlen(labels) + sizeof where);
                if (p) { strcpy(p, labels); strcat(p, where); }
                gfd_problem_add(ds, p ? p : labels, "label %d out of range [0,%d)", lab[i], ds->num_classes);
                free(p);
                continue;
            }
            ds->label[ds->n] = lab[i];
            ds->idx_row[ds->n] = (int)i;
            ds->n++;
        }
        st = gfd_finish(ds, err, err_size);
    }
    free(lab);
    free(images);
    free(labels);
    if (st != GF_OK) { gf_dataset_free(ds); return st; }
    *out = ds;
    return GF_OK;
}
