/* safetensors container: 8-byte little-endian header length N, N bytes of
 * JSON header {"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
 * "__metadata__": {str: str}}, then the data area. Everything in the header is
 * checked against the real file size before the caller allocates anything for
 * the tensors; reads are bounded (never trust N or an offset). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "model.h"
#include "gf_file.h"

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

static int by_begin(const void *a, const void *b) {
    const gf_st_tensor *x = *(const gf_st_tensor *const *)a, *y = *(const gf_st_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* The data area must be covered exactly once: no overlap, no gap, nothing after the last tensor. */
static gf_status check_coverage(gf_st_file *f, uint64_t data_size, char *err, size_t err_size) {
    const gf_st_tensor **o = malloc((f->n ? (size_t)f->n : 1) * sizeof *o);
    if (!o) return GF_ERR_MEMORY;
    for (int i = 0; i < f->n; i++) o[i] = &f->t[i];
    qsort(o, (size_t)f->n, sizeof *o, by_begin);
    gf_status st = GF_OK;
    uint64_t at = 0;
    for (int i = 0; i < f->n && st == GF_OK; i++) {   /* overlaps first: they explain the gaps they leave */
        if (o[i]->begin < at)
            st = gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: tensor '%s' (data_offsets [%llu, %llu]) overlaps tensor '%s': corrupt file",
                        f->path, o[i]->name, (unsigned long long)o[i]->begin, (unsigned long long)o[i]->end,
                        o[i - 1]->name);
        if (o[i]->end > at) at = o[i]->end;
    }
    at = 0;
    for (int i = 0; i < f->n && st == GF_OK; i++) {
        if (o[i]->begin > at)
            st = gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: %llu bytes of the data area before tensor '%s' belong to no tensor: corrupt "
                        "file", f->path, (unsigned long long)(o[i]->begin - at), o[i]->name);
        if (o[i]->end > at) at = o[i]->end;
    }
    if (st == GF_OK && at != data_size)
        st = gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: %llu bytes after the last tensor's data: corrupt or appended-to file", f->path,
                    (unsigned long long)(data_size - at));
    free(o);
    return st;
}

/* Models gradfeat writes carry a checksum of their data area in __metadata__: "gradfeat.data_xxh3_64" (XXH3 64;
 * "gradfeat.data_fnv1a64", FNV-1a 64, in files written before, and by converters that add one): a flipped weight
 * byte is caught at load. */
static gf_status check_data_hash(const gf_st_file *f, FILE *fp, char *err, size_t err_size) {
    const char *key = "gradfeat.data_xxh3_64", *want = gf_st_meta(f, key);
    int xxh = want != NULL;
    if (!xxh) want = gf_st_meta(f, key = "gradfeat.data_fnv1a64");
    if (!want) return GF_OK;
    if (fseeko(fp, (off_t)f->data_off, SEEK_SET) != 0)
        return gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: seek failed", f->path);
    uint64_t h = GF_FNV_INIT;
    gf_xxh3_stream *x = xxh ? gf_xxh3_begin() : NULL;
    if (xxh && !x) return gf_fail_msg(err, err_size, GF_ERR_MEMORY, "out of memory");
    unsigned char buf[1 << 16];
    size_t r;
    while ((r = fread(buf, 1, sizeof buf, fp)) > 0) {
        if (xxh) gf_xxh3_update(x, buf, r);
        else h = gf_fnv1a(h, buf, r);
    }
    if (xxh) h = gf_xxh3_end(x);
    char got[32];
    snprintf(got, sizeof got, "%016llx", (unsigned long long)h);
    if (strcmp(got, want))
        return gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: tensor data checksum mismatch (%s says %.20s, the data "
                      "hashes to %s): the file was damaged or edited after it was written", f->path, key, want, got);
    return GF_OK;
}

/* Reads and checks the header of the file open as fp (size bytes); closes fp. */
static gf_status st_parse(FILE *fp, uint64_t size, const char *path, gf_st_file *f, char *err, size_t err_size) {
    unsigned char lenb[8];
    if (size < 8 || fread(lenb, 1, 8, fp) != 8) {
        fclose(fp);
        return gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: file too short (%llu bytes) to be a safetensors model", path,
                      (unsigned long long)size);
    }
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | lenb[i];
    if (hl > GF_ST_MAX_HEADER) {
        fclose(fp);
        return gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: header length %llu exceeds the limit of %llu bytes (not a safetensors file?)",
                      path, (unsigned long long)hl, (unsigned long long)GF_ST_MAX_HEADER);
    }
    if (hl < 2 || hl > size - 8) {
        fclose(fp);
        return gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: header length %llu does not fit in the file (%llu bytes): truncated?",
                      path, (unsigned long long)hl, (unsigned long long)size);
    }
    char *h = malloc(hl + 1);
    if (!h) {
        fclose(fp);
        gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: out of memory for the header", path);
        return GF_ERR_MEMORY;
    }
    size_t got = fread(h, 1, hl, fp);
    if (got != hl) { fclose(fp); free(h); return gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: short read of the header", path); }
    h[hl] = 0;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(h, hl, &end, 0);
    if (!root || !cJSON_IsObject(root)) {
        long at = end ? (long)(end - h) : -1;
        fclose(fp);
        free(h);
        cJSON_Delete(root);
        return gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: header is not a JSON object (parse error near byte %ld)", path, at);
    }
    /* the format pads the header with spaces only: NUL or anything else after the object is corruption */
    for (const char *q = end; q < h + hl; q++) {
        if (*q == ' ') continue;
        long at = (long)(q - h);
        int nul = *q == 0;
        fclose(fp);
        free(h);
        cJSON_Delete(root);
        return gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: header has %s at byte %ld after its JSON object (only space padding is "
                      "allowed): corrupt file", path, nul ? "a NUL byte" : "garbage", at);
    }
    free(h);
    f->path = strdup(path);
    f->header = root;
    f->file_size = size;
    f->header_len = hl;
    f->data_off = 8 + hl;
    uint64_t data_size = size - f->data_off;
    int count = 0;
    for (const cJSON *it = root->child; it; it = it->next) count++;
    f->t = calloc(count ? (size_t)count : 1, sizeof *f->t);
    if (!f->t || !f->path) { fclose(fp); gf_st_close(f); return GF_ERR_MEMORY; }
    for (const cJSON *it = root->child; it; it = it->next) {
        const char *name = it->string ? it->string : "";
        if (!strcmp(name, "__metadata__")) {
            if (!cJSON_IsObject(it)) { fclose(fp); gf_st_close(f); return gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: __metadata__ is not an object", path); }
            f->meta = it;
            continue;
        }
        gf_st_tensor *t = &f->t[f->n];
        gf_status st = GF_OK;
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(it, "shape");
        const cJSON *off = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        if (!cJSON_IsObject(it) || !cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(off)) {
            st = gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: tensor '%s': entry needs dtype, shape and data_offsets", path, name);
        } else if (!strcmp(dt->valuestring, "F32")) {
            t->dtype = GF_ST_F32;
        } else if (!strcmp(dt->valuestring, "F16")) {
            t->dtype = GF_ST_F16;
        } else {
            st = gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: tensor '%s': dtype %s not supported (F32 or F16)", path, name,
                        dt->valuestring);
        }
        if (st == GF_OK) {
            int nd = cJSON_GetArraySize(sh);
            if (nd > GF_ST_MAX_DIMS)
                st = gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: tensor '%s': %d dimensions (at most %d)", path, name, nd, GF_ST_MAX_DIMS);
            uint64_t numel = 1;
            for (int d = 0; st == GF_OK && d < nd; d++) {
                uint64_t v;
                if (!json_u64(cJSON_GetArrayItem(sh, d), (uint64_t)1 << 40, &v)) {
                    st = gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: tensor '%s': shape[%d] is not a non-negative integer", path, name, d);
                    break;
                }
                t->shape[d] = (int64_t)v;
                if (v && numel > ((uint64_t)1 << 40) / v)
                    st = gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: tensor '%s': shape too large", path, name);
                numel *= v;
            }
            t->ndim = nd;
            t->numel = numel;
        }
        uint64_t b = 0, e = 0;
        if (st == GF_OK && (cJSON_GetArraySize(off) != 2 || !json_u64(cJSON_GetArrayItem(off, 0), UINT64_MAX >> 12, &b) ||
                            !json_u64(cJSON_GetArrayItem(off, 1), UINT64_MAX >> 12, &e) || e < b))
            st = gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: tensor '%s': data_offsets must be [begin, end] with begin <= end", path, name);
        if (st == GF_OK && e > data_size)
            st = gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: tensor '%s': data_offsets [%llu, %llu] outside the data area (%llu bytes): truncated file?",
                        path, name, (unsigned long long)b, (unsigned long long)e, (unsigned long long)data_size);
        if (st == GF_OK && e - b != t->numel * (t->dtype == GF_ST_F32 ? 4u : 2u))
            st = gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: tensor '%s': %llu bytes for %llu elements of %s", path, name,
                        (unsigned long long)(e - b), (unsigned long long)t->numel, t->dtype == GF_ST_F32 ? "F32" : "F16");
        if (st == GF_OK && name[gf_utf8_valid_prefix(name)])
            st = gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: a tensor name is not valid UTF-8 (byte %zu): corrupt header", path,
                        gf_utf8_valid_prefix(name));
        if (st == GF_OK && gf_st_find(f, name) >= 0)
            st = gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: tensor '%s' is named twice in the header", path, name);
        if (st != GF_OK) { fclose(fp); gf_st_close(f); return st; }
        t->begin = b;
        t->end = e;
        t->name = strdup(name);
        if (!t->name) { fclose(fp); gf_st_close(f); return GF_ERR_MEMORY; }
        f->n++;
    }
    gf_status st = check_coverage(f, data_size, err, err_size);
    if (st == GF_OK) st = check_data_hash(f, fp, err, err_size);
    fclose(fp);
    if (st != GF_OK) gf_st_close(f);
    return st;
}

gf_status gf_st_open(const char *path, gf_st_file *f, char *err, size_t err_size) {
    memset(f, 0, sizeof *f);
    char why[256];
    FILE *fp = gf_fopen_regular(path, why, sizeof why);
    if (!fp) return gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: %s", path, why);
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0) {
        fclose(fp);
        return gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: cannot stat: %s", path, strerror(errno));
    }
    return st_parse(fp, (uint64_t)sb.st_size, path, f, err, err_size);
}

gf_status gf_st_open_mem(const void *buf, size_t n, const char *path, gf_st_file *f, char *err, size_t err_size) {
    memset(f, 0, sizeof *f);
    if (n < 8) return gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: file too short (%zu bytes) to be a safetensors model", path, n);
    FILE *fp = fmemopen((void *)(uintptr_t)buf, n, "rb");   /* read-only: the cast only satisfies the prototype */
    if (!fp) return gf_fail_msg(err, err_size, GF_ERR_MEMORY, "%s: cannot open the model in memory: %s", path, strerror(errno));
    return st_parse(fp, (uint64_t)n, path, f, err, err_size);
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

/* A weight that is NaN or infinite makes every output NaN: refuse the file, naming the tensor. */
static gf_status check_finite(const gf_st_file *f, const gf_st_tensor *t, const float *v, char *err, size_t err_size) {
    for (uint64_t k = 0; k < t->numel; k++)
        if (!isfinite(v[k]))
            return gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: tensor '%s' holds a non-finite value (%s) at element %llu: the weights "
                          "are corrupt or came from a diverged training", f->path, t->name, isnan(v[k]) ? "NaN" : "Inf",
                          (unsigned long long)k);
    return GF_OK;
}

gf_status gf_st_read_f32(const gf_st_file *f, FILE *fp, int i, float *dst, char *err, size_t err_size) {
    const gf_st_tensor *t = &f->t[i];
    if (fseeko(fp, (off_t)(f->data_off + t->begin), SEEK_SET) != 0)
        return gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: tensor '%s': seek failed", f->path, t->name);
    if (t->dtype == GF_ST_F32) {
        if (fread(dst, 4, t->numel, fp) != t->numel)
            return gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: tensor '%s': short read", f->path, t->name);
        unsigned char *p = (unsigned char *)dst;  /* file is little-endian */
        for (uint64_t k = 0; k < t->numel; k++) {
            uint32_t v = (uint32_t)p[4 * k] | (uint32_t)p[4 * k + 1] << 8 | (uint32_t)p[4 * k + 2] << 16 |
                         (uint32_t)p[4 * k + 3] << 24;
            memcpy(&dst[k], &v, 4);
        }
        return check_finite(f, t, dst, err, err_size);
    }
    enum { CH = 4096 };
    unsigned char buf[2 * CH];
    for (uint64_t k = 0; k < t->numel;) {
        size_t m = (size_t)((t->numel - k) < CH ? (t->numel - k) : CH);
        if (fread(buf, 2, m, fp) != m)
            return gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: tensor '%s': short read", f->path, t->name);
        for (size_t j = 0; j < m; j++) dst[k + j] = half_to_float((uint16_t)(buf[2 * j] | buf[2 * j + 1] << 8));
        k += m;
    }
    return check_finite(f, t, dst, err, err_size);
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

gf_status gf_st_serialize(const cJSON *hdr, const gf_sink *data, gf_sink *file, int hash) {
    char *json = NULL;
    /* the data area's checksum goes into the metadata (checked by gf_st_open) */
    cJSON *h2 = data->oom ? NULL : cJSON_Duplicate(hdr, 1);
    cJSON *meta = h2 ? cJSON_GetObjectItemCaseSensitive(h2, "__metadata__") : NULL;
    if (h2 && !meta) { meta = cJSON_CreateObject(); cJSON_AddItemToObject(h2, "__metadata__", meta); }
    if (meta && !hash) json = cJSON_PrintUnformatted(h2);
    else if (meta) {
        char hex[32];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)gf_xxh3(data->p, data->n));
        cJSON_DeleteItemFromObjectCaseSensitive(meta, "gradfeat.data_fnv1a64");   /* a base model's own, if any */
        cJSON_DeleteItemFromObjectCaseSensitive(meta, "gradfeat.data_xxh3_64");
        cJSON_AddStringToObject(meta, "gradfeat.data_xxh3_64", hex);
        json = cJSON_PrintUnformatted(h2);
    }
    cJSON_Delete(h2);
    if (json && !data->oom) {
        uint64_t hl = strlen(json), padded = (hl + 7) / 8 * 8;   /* safetensors' convention */
        unsigned char lenb[8];
        for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)(padded >> (8 * i));   /* little-endian on any host */
        gf_sink_put(file, lenb, 8);
        gf_sink_put(file, json, hl);
        gf_sink_put(file, "        ", padded - hl);
        gf_sink_put(file, data->p, data->n);
    }
    gf_status st = !json || data->oom || file->oom ? GF_ERR_MEMORY : GF_OK;
    free(json);
    return st;
}

gf_status gf_st_write(gf_ctx *ctx, const char *path, const cJSON *hdr, const gf_sink *data, uint64_t *file_xxh3) {
    gf_sink file = {0};
    gf_status st = gf_st_serialize(hdr, data, &file, 1);
    st = st != GF_OK ? gf_fail(ctx, GF_ERR_MEMORY, "out of memory writing %s", path)
                     : gf_write_file_atomic(ctx, path, file.p, file.n);
    if (st == GF_OK && file_xxh3) *file_xxh3 = gf_xxh3(file.p, file.n);
    free(file.p);
    return st;
}
