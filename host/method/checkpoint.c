/* Training checkpoints: one file, written atomically, checksummed (see
 * train.h for the layout). Everything numeric travels as raw float32/float64
 * so a resumed run continues bit for bit. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "train.h"
#include "checkpoint.h"

static const char MAGIC[8] = {'G', 'F', 'C', 'K', 'P', 'T', '0', '2'};
enum { HDR = 32 };

/* The framing every gradfeat checkpoint kind shares (train's gf_ckpt, pretrain's):
 * magic | u64 json_len | u64 data_len | u64 checksum of json+data | json | data,
 * written atomically (gf_write_file_atomic: temp file, fsync, rename). The magic's last two characters are
 * the frame's version: "02" checksums with XXH3 64, "01" (files written before) with FNV-1a 64, still read. */
static int legacy_magic(const char *p, const char magic[8]) {
    return !memcmp(p, magic, 6) && magic[6] == '0' && magic[7] == '2' && p[6] == '0' && p[7] == '1';
}

gf_status gf_frame_write(gf_ctx *ctx, const char *path, const char magic[8], const char *json, const void *data,
                         size_t data_len) {
    uint64_t jl = strlen(json), dl = data_len;
    char *file = malloc(HDR + jl + dl);
    if (!file) return gf_fail(ctx, GF_ERR_MEMORY, "out of memory writing checkpoint %s", path);
    memcpy(file + HDR, json, jl);
    if (dl) memcpy(file + HDR + jl, data, dl);
    uint64_t h = gf_xxh3(file + HDR, jl + dl);
    memcpy(file, magic, 8); memcpy(file + 8, &jl, 8); memcpy(file + 16, &dl, 8); memcpy(file + 24, &h, 8);
    gf_status st = gf_write_file_atomic(ctx, path, file, HDR + jl + dl);
    free(file);
    return st;
}

gf_status gf_frame_read(gf_ctx *ctx, const char *path, const char magic[8], const char *what, void **buf,
                        const char **json, size_t *json_len, const char **data, size_t *data_len) {
    size_t n;
    *buf = NULL;
    GF_TRY(gf_read_file(ctx, path, buf, &n));
    const char *p = *buf;
    uint64_t jl = 0, dl = 0, h = 0;
    if (n >= HDR) { memcpy(&jl, p + 8, 8); memcpy(&dl, p + 16, 8); memcpy(&h, p + 24, 8); }
    gf_status st = GF_OK;
    int legacy = n >= HDR && legacy_magic(p, magic);
    if (n < HDR || (memcmp(p, magic, 8) && !legacy))
        st = gf_fail(ctx, GF_ERR_INPUT, "%s is not a gradfeat %s (bad magic)", path, what);
    else if (jl > n || dl > n || HDR + jl + dl != n)
        st = gf_fail(ctx, GF_ERR_INPUT, "%s %s is truncated or corrupt: %zu bytes, the header says %llu",
                     what, path, n, (unsigned long long)(HDR + jl + dl));
    else if ((legacy ? gf_fnv1a(GF_FNV_INIT, p + HDR, jl + dl) : gf_xxh3(p + HDR, jl + dl)) != h)
        st = gf_fail(ctx, GF_ERR_INPUT, "%s %s is corrupt: checksum mismatch (the file changed after it was "
                     "written); delete it to start over", what, path);
    if (st != GF_OK) { free(*buf); *buf = NULL; return st; }
    *json = p + HDR; *json_len = jl;
    *data = p + HDR + jl; *data_len = dl;
    return GF_OK;
}

void gf_frame_put_array(gf_sink *data, cJSON *layout, const char *name, const void *src, size_t count, size_t elem) {
    if (!src) return;
    cJSON *e = cJSON_CreateArray();
    cJSON_AddItemToArray(e, cJSON_CreateNumber((double)data->n));
    cJSON_AddItemToArray(e, cJSON_CreateNumber((double)count));
    cJSON_AddItemToArray(e, cJSON_CreateNumber((double)elem));
    cJSON_AddItemToObject(layout, name, e);
    gf_sink_put(data, src, count * elem);
}

gf_status gf_ckpt_write(gf_ctx *ctx, const char *path, const gf_ckpt *c) {
    cJSON *o = cJSON_CreateObject(), *layout = cJSON_CreateObject();
    gf_sink data = {0};
    if (c->meta) cJSON_AddStringToObject(o, "meta", c->meta);
    cJSON_AddNumberToObject(o, "K", c->K);
    cJSON_AddNumberToObject(o, "d", c->d);
    cJSON_AddNumberToObject(o, "n_train", c->n_train);
    cJSON_AddNumberToObject(o, "n_val", c->n_val);
    cJSON_AddNumberToObject(o, "block_count", (double)c->block_count);
    cJSON_AddNumberToObject(o, "methods", c->methods);
    cJSON_AddNumberToObject(o, "active", c->active);
    cJSON_AddNumberToObject(o, "method", c->method);
    cJSON_AddNumberToObject(o, "epoch", c->epoch);
    cJSON_AddNumberToObject(o, "b0", c->b0);
    cJSON_AddNumberToObject(o, "steps", c->steps);
    cJSON_AddNumberToObject(o, "step", (double)c->step);
    if (c->primal_cache >= 0) cJSON_AddNumberToObject(o, "primal_cache", c->primal_cache);
    cJSON *done = cJSON_AddArrayToObject(o, "done");
    for (int i = 0; i < 4; i++) cJSON_AddItemToArray(done, cJSON_CreateNumber(c->done[i]));
    char name[64];
    gf_frame_put_array(&data, layout, "scal", c->scal, 4 * GF_CKPT_SCAL, sizeof(double));
    gf_frame_put_array(&data, layout, "lr", &c->lr, 1, sizeof(float));
    gf_frame_put_array(&data, layout, "stats", c->stats, GF_LIN_STATS, sizeof(float));
    for (int i = 0; i < 4; i++) {
        if (!c->done[i]) continue;
        snprintf(name, sizeof name, "w1.%s", gf_method_name((gf_method)i)); gf_frame_put_array(&data, layout, name, c->w1[i], (size_t)c->K * c->d, sizeof(float));
        snprintf(name, sizeof name, "b1.%s", gf_method_name((gf_method)i)); gf_frame_put_array(&data, layout, name, c->b1[i], (size_t)c->K, sizeof(float));
        snprintf(name, sizeof name, "block.%s", gf_method_name((gf_method)i)); gf_frame_put_array(&data, layout, name, c->block[i], c->block_count, sizeof(float));
    }
    if (c->active) gf_frame_put_array(&data, layout, "state", c->state, c->state_count, sizeof(float));
    if (c->active && c->sel_have) {
        int sel[3] = {c->sel_have, c->sel_epoch, c->sel_bad};
        gf_frame_put_array(&data, layout, "sel", sel, 3, sizeof(int));
        gf_frame_put_array(&data, layout, "sel_scal", c->sel_scal, 5, sizeof(double));
        gf_frame_put_array(&data, layout, "sel_min", &c->sel_min, 1, sizeof(double));
        gf_frame_put_array(&data, layout, "sel_fb", c->sel_fb, 4, sizeof(double));
        gf_frame_put_array(&data, layout, "sel_w1", c->sel_w1, (size_t)c->K * c->d, sizeof(float));
        gf_frame_put_array(&data, layout, "sel_b1", c->sel_b1, (size_t)c->K, sizeof(float));
        gf_frame_put_array(&data, layout, "sel_block", c->sel_block, c->block_count, sizeof(float));
    }
    cJSON_AddItemToObject(o, "arrays", layout);
    char *json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    gf_status st = GF_OK;
    if (!json || data.oom) st = gf_fail(ctx, GF_ERR_MEMORY, "out of memory writing checkpoint %s", path);
    if (st == GF_OK) st = gf_frame_write(ctx, path, MAGIC, json, data.p, data.n);
    free(json); free(data.p);
    return st;
}

void gf_ckpt_free(gf_ckpt *c) {
    free(c->meta); free(c->state);
    free(c->sel_w1); free(c->sel_b1); free(c->sel_block);
    for (int i = 0; i < 4; i++) { free(c->w1[i]); free(c->b1[i]); free(c->block[i]); }
    memset(c, 0, sizeof *c);
}

static int get_int(const cJSON *o, const char *k, double *v) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(x)) return 0;
    *v = x->valuedouble;
    return 1;
}

int gf_frame_take_array(const cJSON *layout, const char *name, const char *data, size_t dl, size_t count, size_t elem,
                        void **fresh, void *dst) {
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(layout, name);
    if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) != 3) return 0;
    double off = cJSON_GetArrayItem(e, 0)->valuedouble, n = cJSON_GetArrayItem(e, 1)->valuedouble,
           sz = cJSON_GetArrayItem(e, 2)->valuedouble;
    if (n != (double)count || sz != (double)elem || off < 0 || off + n * sz > (double)dl) return 0;
    if (fresh) {
        *fresh = malloc(count > 0 ? count * elem : 1);
        if (!*fresh) return 0;
        dst = *fresh;
    }
    memcpy(dst, data + (size_t)off, count * elem);
    return 1;
}

gf_status gf_ckpt_read(gf_ctx *ctx, const char *path, gf_ckpt *c) {
    memset(c, 0, sizeof *c);
    void *buf = NULL;
    const char *js = NULL, *data = NULL;
    size_t jl = 0, dl = 0;
    gf_status st = gf_frame_read(ctx, path, MAGIC, "checkpoint", &buf, &js, &jl, &data, &dl);
    cJSON *o = st == GF_OK ? cJSON_ParseWithLength(js, jl) : NULL;
    if (st == GF_OK && !o) st = gf_fail(ctx, GF_ERR_INPUT, "checkpoint %s: unreadable header", path);
    if (st == GF_OK) {
        const cJSON *layout = cJSON_GetObjectItemCaseSensitive(o, "arrays"), *done = cJSON_GetObjectItemCaseSensitive(o, "done");
        const cJSON *meta = cJSON_GetObjectItemCaseSensitive(o, "meta");
        double v[12];
        static const char *keys[12] = {"K", "d", "n_train", "n_val", "block_count", "methods", "active", "method",
                                       "epoch", "b0", "steps", "step"};
        int ok = cJSON_IsObject(layout) && cJSON_IsArray(done) && cJSON_GetArraySize(done) == 4;
        /* int fields must fit an int (block_count and step are size_t/long): the casts below are UB otherwise */
        for (int i = 0; i < 12 && ok; i++)
            ok = get_int(o, keys[i], &v[i]) && v[i] >= 0 && v[i] < (i == 4 || i == 11 ? 1e15 : 2147483647.0);
        if (ok) {
            c->K = (int)v[0]; c->d = (int)v[1]; c->n_train = (int)v[2]; c->n_val = (int)v[3];
            c->block_count = (size_t)v[4]; c->methods = (unsigned)v[5]; c->active = (int)v[6]; c->method = (int)v[7];
            c->epoch = (int)v[8]; c->b0 = (int)v[9]; c->steps = (int)v[10]; c->step = (long)v[11];
            ok = c->method < 4 && (!meta || cJSON_IsString(meta));
        }
        if (ok && meta && !(c->meta = strdup(meta->valuestring))) ok = 0;
        const cJSON *pc = cJSON_GetObjectItemCaseSensitive(o, "primal_cache");
        c->primal_cache = -1;
        if (ok && pc) ok = cJSON_IsNumber(pc) && (pc->valuedouble == 0 || pc->valuedouble == 1);
        if (ok && pc) c->primal_cache = (int)pc->valuedouble;
        ok = ok && gf_frame_take_array(layout, "scal", data, dl, 4 * GF_CKPT_SCAL, sizeof(double), NULL, c->scal) &&
             gf_frame_take_array(layout, "lr", data, dl, 1, sizeof(float), NULL, &c->lr) &&
             gf_frame_take_array(layout, "stats", data, dl, GF_LIN_STATS, sizeof(float), NULL, c->stats);
        for (int i = 0; i < 4 && ok; i++) {
            c->done[i] = cJSON_GetArrayItem(done, i)->valueint != 0;
            if (!c->done[i]) continue;
            char name[64];
            snprintf(name, sizeof name, "w1.%s", gf_method_name((gf_method)i));
            ok = gf_frame_take_array(layout, name, data, dl, (size_t)c->K * c->d, sizeof(float), (void **)&c->w1[i], NULL);
            snprintf(name, sizeof name, "b1.%s", gf_method_name((gf_method)i));
            ok = ok && gf_frame_take_array(layout, name, data, dl, (size_t)c->K, sizeof(float), (void **)&c->b1[i], NULL);
            snprintf(name, sizeof name, "block.%s", gf_method_name((gf_method)i));
            if (ok && cJSON_GetObjectItemCaseSensitive(layout, name))
                ok = gf_frame_take_array(layout, name, data, dl, c->block_count, sizeof(float), (void **)&c->block[i], NULL);
        }
        if (ok && c->active) {
            const cJSON *e = cJSON_GetObjectItemCaseSensitive(layout, "state");
            ok = cJSON_IsArray(e) && cJSON_GetArraySize(e) == 3;
            double sc = ok ? cJSON_GetArrayItem(e, 1)->valuedouble : 0;
            ok = ok && sc >= 0 && sc < 1e15;   /* (size_t) of a negative or huge double is UB */
            if (ok) c->state_count = (size_t)sc;
            ok = ok && gf_frame_take_array(layout, "state", data, dl, c->state_count, sizeof(float), (void **)&c->state, NULL);
        }
        if (ok && c->active && cJSON_GetObjectItemCaseSensitive(layout, "sel")) {
            int sel[3];
            ok = gf_frame_take_array(layout, "sel", data, dl, 3, sizeof(int), NULL, sel) &&
                 gf_frame_take_array(layout, "sel_scal", data, dl, 5, sizeof(double), NULL, c->sel_scal);
            /* --select last: older checkpoints have no copy of the parameters, the scalars only */
            if (ok && cJSON_GetObjectItemCaseSensitive(layout, "sel_w1"))
                ok = gf_frame_take_array(layout, "sel_w1", data, dl, (size_t)c->K * c->d, sizeof(float), (void **)&c->sel_w1, NULL) &&
                     gf_frame_take_array(layout, "sel_b1", data, dl, (size_t)c->K, sizeof(float), (void **)&c->sel_b1, NULL);
            if (ok && cJSON_GetObjectItemCaseSensitive(layout, "sel_block"))
                ok = gf_frame_take_array(layout, "sel_block", data, dl, c->block_count, sizeof(float), (void **)&c->sel_block, NULL);
            c->sel_min = NAN;   /* written since the divergence test compares with the lowest loss so far */
            if (ok && cJSON_GetObjectItemCaseSensitive(layout, "sel_min"))
                ok = gf_frame_take_array(layout, "sel_min", data, dl, 1, sizeof(double), NULL, &c->sel_min);
            for (int i = 0; i < 4; i++) c->sel_fb[i] = NAN;   /* written since a diverged --select last falls back */
            if (ok && cJSON_GetObjectItemCaseSensitive(layout, "sel_fb"))
                ok = gf_frame_take_array(layout, "sel_fb", data, dl, 4, sizeof(double), NULL, c->sel_fb);
            c->sel_have = ok && sel[0] != 0; c->sel_epoch = sel[1]; c->sel_bad = sel[2];
            ok = ok && sel[1] >= 0 && sel[2] >= 0;
        }
        if (!ok) st = gf_fail(ctx, GF_ERR_INPUT, "checkpoint %s: header fields or arrays missing or out of range", path);
    }
    cJSON_Delete(o);
    free(buf);
    if (st != GF_OK) gf_ckpt_free(c);
    return st;
}
