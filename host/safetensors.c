/* safetensors container: 8-byte little-endian header length N, N bytes of
 * JSON header {"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
 * "__metadata__": {str: str}}, then the data area. Everything in the header is
 * checked against the real file size before the caller allocates anything for
 * the tensors; reads are bounded (never trust N or an offset). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "model.h"
#include "gf_file.h"

static gf_status st_err(char *err, size_t n, const char *fmt, ...) GF_PRINTF(3, 4);
static gf_status st_err(char *err, size_t n, const char *fmt, ...) {
    if (err && n) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, n, fmt, ap);
        va_end(ap);
    }
    return GF_ERR_INPUT;
}

static char *dupstr(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

void gf_st_close(gf_st_file *f) {
    if (!f) return;
    for (int i = 0; i < f->n; i++) free(f->t[i].name);
    free(f->t);
    free(f->path);
    cJSON_Delete(f->header);
    memset(f, 0, sizeof *f);
}

/* A JSON number that is an exact non-negative integer <= max. */
static int json_u64(const cJSON *v, uint64_t max, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0) || d > (double)max || d != (double)(uint64_t)d) return 0;
    *out = (uint64_t)d;
    return 1;
}

gf_status gf_st_open(const char *path, gf_st_file *f, char *err, size_t err_size) {
    memset(f, 0, sizeof *f);
    char why[256];
    FILE *fp = gf_fopen_regular(path, why, sizeof why);
    if (!fp) return st_err(err, err_size, "%s: %s", path, why);
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0) {
        fclose(fp);
        return st_err(err, err_size, "%s: cannot stat: %s", path, strerror(errno));
    }
    uint64_t size = (uint64_t)sb.st_size;
    unsigned char lenb[8];
    if (size < 8 || fread(lenb, 1, 8, fp) != 8) {
        fclose(fp);
        return st_err(err, err_size, "%s: file too short (%llu bytes) to be a safetensors model", path,
                      (unsigned long long)size);
    }
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | lenb[i];
    if (hl > GF_ST_MAX_HEADER) {
        fclose(fp);
        return st_err(err, err_size, "%s: header length %llu exceeds the limit of %llu bytes (not a safetensors file?)",
                      path, (unsigned long long)hl, (unsigned long long)GF_ST_MAX_HEADER);
    }
    if (hl < 2 || hl > size - 8) {
        fclose(fp);
        return st_err(err, err_size, "%s: header length %llu does not fit in the file (%llu bytes): truncated?",
                      path, (unsigned long long)hl, (unsigned long long)size);
    }
    char *h = malloc(hl + 1);
    if (!h) {
        fclose(fp);
        st_err(err, err_size, "%s: out of memory for the header", path);
        return GF_ERR_MEMORY;
    }
    size_t got = fread(h, 1, hl, fp);
    fclose(fp);
    if (got != hl) { free(h); return st_err(err, err_size, "%s: short read of the header", path); }
    h[hl] = 0;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(h, hl, &end, 0);
    if (!root || !cJSON_IsObject(root)) {
        long at = end ? (long)(end - h) : -1;
        free(h);
        cJSON_Delete(root);
        return st_err(err, err_size, "%s: header is not a JSON object (parse error near byte %ld)", path, at);
    }
    free(h);
    f->path = dupstr(path);
    f->header = root;
    f->file_size = size;
    f->header_len = hl;
    f->data_off = 8 + hl;
    uint64_t data_size = size - f->data_off;
    int count = 0;
    for (const cJSON *it = root->child; it; it = it->next) count++;
    f->t = calloc(count ? (size_t)count : 1, sizeof *f->t);
    if (!f->t || !f->path) { gf_st_close(f); return GF_ERR_MEMORY; }
    for (const cJSON *it = root->child; it; it = it->next) {
        const char *name = it->string ? it->string : "";
        if (!strcmp(name, "__metadata__")) {
            if (!cJSON_IsObject(it)) { gf_st_close(f); return st_err(err, err_size, "%s: __metadata__ is not an object", path); }
            f->meta = it;
            continue;
        }
        gf_st_tensor *t = &f->t[f->n];
        gf_status st = GF_OK;
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(it, "shape");
        const cJSON *off = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        if (!cJSON_IsObject(it) || !cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(off)) {
            st = st_err(err, err_size, "%s: tensor '%s': entry needs dtype, shape and data_offsets", path, name);
        } else if (!strcmp(dt->valuestring, "F32")) {
            t->dtype = GF_ST_F32;
        } else if (!strcmp(dt->valuestring, "F16")) {
            t->dtype = GF_ST_F16;
        } else {
            st = st_err(err, err_size, "%s: tensor '%s': dtype %s not supported (F32 or F16)", path, name,
                        dt->valuestring);
        }
        if (st == GF_OK) {
            int nd = cJSON_GetArraySize(sh);
            if (nd > GF_ST_MAX_DIMS)
                st = st_err(err, err_size, "%s: tensor '%s': %d dimensions (at most %d)", path, name, nd, GF_ST_MAX_DIMS);
            uint64_t numel = 1;
            for (int d = 0; st == GF_OK && d < nd; d++) {
                uint64_t v;
                if (!json_u64(cJSON_GetArrayItem(sh, d), (uint64_t)1 << 40, &v)) {
                    st = st_err(err, err_size, "%s: tensor '%s': shape[%d] is not a non-negative integer", path, name, d);
                    break;
                }
                t->shape[d] = (int64_t)v;
                if (v && numel > ((uint64_t)1 << 40) / v)
                    st = st_err(err, err_size, "%s: tensor '%s': shape too large", path, name);
                numel *= v;
            }
            t->ndim = nd;
            t->numel = numel;
        }
        uint64_t b = 0, e = 0;
        if (st == GF_OK && (cJSON_GetArraySize(off) != 2 || !json_u64(cJSON_GetArrayItem(off, 0), UINT64_MAX >> 12, &b) ||
                            !json_u64(cJSON_GetArrayItem(off, 1), UINT64_MAX >> 12, &e) || e < b))
            st = st_err(err, err_size, "%s: tensor '%s': data_offsets must be [begin, end] with begin <= end", path, name);
        if (st == GF_OK && e > data_size)
            st = st_err(err, err_size, "%s: tensor '%s': data_offsets [%llu, %llu] outside the data area (%llu bytes): truncated file?",
                        path, name, (unsigned long long)b, (unsigned long long)e, (unsigned long long)data_size);
        if (st == GF_OK && e - b != t->numel * (t->dtype == GF_ST_F32 ? 4u : 2u))
            st = st_err(err, err_size, "%s: tensor '%s': %llu bytes for %llu elements of %s", path, name,
                        (unsigned long long)(e - b), (unsigned long long)t->numel, t->dtype == GF_ST_F32 ? "F32" : "F16");
        if (st != GF_OK) { gf_st_close(f); return st; }
        t->begin = b;
        t->end = e;
        t->name = dupstr(name);
        if (!t->name) { gf_st_close(f); return GF_ERR_MEMORY; }
        f->n++;
    }
    return GF_OK;
}

int gf_st_find(const gf_st_file *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->t[i].name, name)) return i;
    return -1;
}

const char *gf_st_meta(const gf_st_file *f, const char *key) {
    if (!f->meta) return NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(f->meta, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) bits = sign;
        else {  /* subnormal: normalise */
            int e = -1;
            do { e++; man <<= 1; } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

gf_status gf_st_read_f32(const gf_st_file *f, FILE *fp, int i, float *dst, char *err, size_t err_size) {
    const gf_st_tensor *t = &f->t[i];
    if (fseeko(fp, (off_t)(f->data_off + t->begin), SEEK_SET) != 0)
        return st_err(err, err_size, "%s: tensor '%s': seek failed", f->path, t->name);
    if (t->dtype == GF_ST_F32) {
        if (fread(dst, 4, t->numel, fp) != t->numel)
            return st_err(err, err_size, "%s: tensor '%s': short read", f->path, t->name);
        unsigned char *p = (unsigned char *)dst;  /* file is little-endian */
        for (uint64_t k = 0; k < t->numel; k++) {
            uint32_t v = (uint32_t)p[4 * k] | (uint32_t)p[4 * k + 1] << 8 | (uint32_t)p[4 * k + 2] << 16 |
                         (uint32_t)p[4 * k + 3] << 24;
            memcpy(&dst[k], &v, 4);
        }
        return GF_OK;
    }
    enum { CH = 4096 };
    unsigned char buf[2 * CH];
    for (uint64_t k = 0; k < t->numel;) {
        size_t m = (size_t)((t->numel - k) < CH ? (t->numel - k) : CH);
        if (fread(buf, 2, m, fp) != m)
            return st_err(err, err_size, "%s: tensor '%s': short read", f->path, t->name);
        for (size_t j = 0; j < m; j++) dst[k + j] = half_to_float((uint16_t)(buf[2 * j] | buf[2 * j + 1] << 8));
        k += m;
    }
    return GF_OK;
}

/* ---- writing ---- */
void gf_st_add_f32(cJSON *hdr, gf_sink *data, const char *name, const float *v, int ndim, const int64_t *shape) {
    size_t count = 1;
    cJSON *t = cJSON_CreateObject(), *sh = cJSON_CreateArray(), *off = cJSON_CreateArray();
    for (int i = 0; i < ndim; i++) { count *= (size_t)shape[i]; cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)shape[i])); }
    cJSON_AddStringToObject(t, "dtype", "F32");
    cJSON_AddItemToObject(t, "shape", sh);
    cJSON_AddItemToArray(off, cJSON_CreateNumber((double)data->n));
    gf_sink_put(data, v, count * sizeof(float));
    cJSON_AddItemToArray(off, cJSON_CreateNumber((double)data->n));
    cJSON_AddItemToObject(t, "data_offsets", off);
    cJSON_AddItemToObject(hdr, name, t);
}

gf_status gf_st_write(gf_ctx *ctx, const char *path, const cJSON *hdr, const gf_sink *data) {
    char *json = cJSON_PrintUnformatted(hdr);
    gf_sink file = {0};
    gf_status st;
    if (!json || data->oom) st = gf_fail(ctx, GF_ERR_MEMORY, "out of memory writing %s", path);
    else {
        uint64_t hl = strlen(json), padded = (hl + 7) / 8 * 8;   /* safetensors' convention */
        gf_sink_put(&file, &padded, 8);
        gf_sink_put(&file, json, hl);
        gf_sink_put(&file, "        ", padded - hl);
        gf_sink_put(&file, data->p, data->n);
        st = file.oom ? gf_fail(ctx, GF_ERR_MEMORY, "out of memory writing %s", path)
                      : gf_write_file_atomic(ctx, path, file.p, file.n);
    }
    free(json);
    free(file.p);
    return st;
}
