/* Run records: exact float decimals in JSON, the environment of a run (host/runrecord.h). */
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
