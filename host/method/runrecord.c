/* Run records: exact float decimals in JSON, the environment of a run, the per-method evaluation
 * files of a run directory (host/method/runrecord.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "gf_internal.h"
#include "runrecord.h"

const char *gf_float_repr(char *buf, float v) {
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, 32, "%.*g", p, (double)v);
        if (strtof(buf, NULL) == v) return buf;
    }
    snprintf(buf, 32, "%.9g", (double)v);
    return buf;
}

static int skipped(const char *key, const char *const *skip) {
    for (; key && skip && *skip; skip++)
        if (!strcmp(key, *skip)) return 1;
    return 0;
}

void gf_json_exact_floats(cJSON *node, const char *const *skip) {
    for (cJSON *it = node ? node->child : NULL, *next; it; it = next) {
        next = it->next;
        if (skipped(it->string, skip)) continue;
        if (cJSON_IsObject(it) || cJSON_IsArray(it)) { gf_json_exact_floats(it, skip); continue; }
        if (!cJSON_IsNumber(it)) continue;
        double d = it->valuedouble;
        if (!isfinite(d) || d == floor(d) || fabs(d) > 3e38 || (double)(float)d != d) continue;
        char buf[32];
        cJSON *raw = cJSON_CreateRaw(gf_float_repr(buf, (float)d));
        if (!raw) continue;
        if (it->string && !(raw->string = strdup(it->string))) { cJSON_Delete(raw); continue; }
        cJSON_ReplaceItemViaPointer(node, it, raw);
    }
}

cJSON *gf_run_environment(const gf_ctx *ctx) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "gradfeat", gf_version());
    cJSON_AddStringToObject(o, "git", gf_git_hash());
    if (ctx) {
        cJSON_AddStringToObject(o, "device", ctx->info.name);
        cJSON_AddStringToObject(o, "device_version", ctx->info.version);
        cJSON_AddStringToObject(o, "driver", ctx->info.driver_version);
        cJSON_AddStringToObject(o, "platform", ctx->info.platform_name);
        cJSON_AddStringToObject(o, "platform_version", ctx->info.platform_version);
    }
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) == 0) cJSON_AddStringToObject(o, "host", host);
    return o;
}

/* ---- the run directory's per-method evaluation files (formats: host/report/report.h) ---- */

void gf_confusion_matrix(const float *scores, const int *labels, int n, int K, uint64_t *counts) {
    memset(counts, 0, (size_t)K * K * sizeof *counts);
    for (int i = 0; i < n; i++) {
        if (labels[i] < 0 || labels[i] >= K) continue;
        const float *s = scores + (size_t)i * K;
        int best = 0;
        for (int k = 1; k < K; k++) if (s[k] > s[best]) best = k;
        counts[(size_t)labels[i] * K + best]++;
    }
}

static gf_status write_json(gf_ctx *ctx, const char *run_dir, const char *prefix, const char *method, cJSON *o) {
    char path[1400];
    snprintf(path, sizeof path, "%s/%s_%s.json", run_dir, prefix, method);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!text) return gf_fail(ctx, GF_ERR_MEMORY, "out of memory");
    gf_status st = gf_write_file_atomic(ctx, path, text, strlen(text));
    free(text);
    return st;
}

gf_status gf_report_write_confusion(gf_ctx *ctx, const char *run_dir, const char *method, const char *split,
                                    const uint64_t *counts, int K) {
    cJSON *o = cJSON_CreateObject(), *rows = NULL;
    if (o) {
        cJSON_AddStringToObject(o, "method", method);
        cJSON_AddStringToObject(o, "split", split);
        cJSON_AddNumberToObject(o, "classes", K);
        rows = cJSON_AddArrayToObject(o, "counts");
    }
    for (int i = 0; rows && i < K; i++) {
        cJSON *row = cJSON_CreateArray();
        if (!row) { rows = NULL; break; }
        for (int j = 0; j < K; j++) cJSON_AddItemToArray(row, cJSON_CreateNumber((double)counts[(size_t)i * K + j]));
        cJSON_AddItemToArray(rows, row);
    }
    if (!rows) { cJSON_Delete(o); return gf_fail(ctx, GF_ERR_MEMORY, "out of memory"); }
    return write_json(ctx, run_dir, "confusion", method, o);
}

gf_status gf_report_write_ap(gf_ctx *ctx, const char *run_dir, const char *method, const char *split, const double *ap,
                             int K) {
    cJSON *o = cJSON_CreateObject(), *a = NULL;
    if (o) {
        cJSON_AddStringToObject(o, "method", method);
        cJSON_AddStringToObject(o, "split", split);
        a = cJSON_AddArrayToObject(o, "ap");
    }
    if (!a) { cJSON_Delete(o); return gf_fail(ctx, GF_ERR_MEMORY, "out of memory"); }
    for (int k = 0; k < K; k++) cJSON_AddItemToArray(a, isnan(ap[k]) ? cJSON_CreateNull() : cJSON_CreateNumber(ap[k]));
    return write_json(ctx, run_dir, "ap", method, o);
}
