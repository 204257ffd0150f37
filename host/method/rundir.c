/* The run directory: results.json and the results table, the job configuration checkpoints carry and
 * the checks of a --resume against it and against the run directory's files, the per-method evaluation
 * files. See job_internal.h. */
#include <errno.h>
#include <math.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cjson/cJSON.h>
#include "gradfeat_data.h"
#include "gradfeat_train.h"
#include "model.h"
#include "train.h"
#include "gf_file.h"
#include "gf_dist.h"
#include "runrecord.h"
#include "job_internal.h"

static const char *const SELECT_NAMES[] = {"last", "loss", "metric"};

gf_status gf_job_write_results(gf_ctx *ctx, const gf_job *job, const gf_job_result *r, gf_dataset *ds,
                               const cJSON *config, const cJSON *rank_devices) {
    if (gf_mkdirs(job->run_dir) != 0)
        return gf_fail(ctx, GF_ERR_IO, "cannot create run directory %s: %s", job->run_dir, strerror(errno));
    char path[1200], err[512];
    snprintf(path, sizeof path, "%s/classes.txt", job->run_dir);
    gf_status st = gf_dataset_write_class_map(ds, path, err, sizeof err);
    if (st != GF_OK) return gf_fail(ctx, st, "%s", err);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", job->model_path);
    cJSON_AddStringToObject(o, "data", job->data_path);
    if (job->val_path) cJSON_AddStringToObject(o, "val", job->val_path);
    cJSON_AddStringToObject(o, "top", r->top);
    cJSON_AddStringToObject(o, "device", ctx->info.name);
    cJSON_AddStringToObject(o, "driver", ctx->info.driver_version);
    cJSON_AddStringToObject(o, "gradfeat", gf_version());
    cJSON_AddStringToObject(o, "git", gf_git_hash());
    cJSON_AddStringToObject(o, "platform", ctx->info.platform_name);
    cJSON_AddNumberToObject(o, "ranks", gf_dist_size());   /* processes of the run (mpirun -n; 1 without MPI) */
    if (rank_devices) cJSON_AddItemToObject(o, "rank_devices", cJSON_Duplicate(rank_devices, 1));
    cJSON_AddNumberToObject(o, "seed", (double)job->seed);
    cJSON_AddNumberToObject(o, "epochs", job->epochs);
    cJSON_AddNumberToObject(o, "batch", job->batch);
    cJSON_AddNumberToObject(o, "lr", job->lr);
    cJSON_AddStringToObject(o, "optimizer", job->sgd ? "sgd" : "adam");
    cJSON_AddStringToObject(o, "metric", r->multi_label ? "mAP" : "accuracy");
    cJSON_AddNumberToObject(o, "n_train", r->n_train);
    cJSON_AddNumberToObject(o, "n_val", r->n_val);
    cJSON_AddNumberToObject(o, "n_holdout", r->n_hold);
    cJSON_AddNumberToObject(o, "holdout", job->holdout);
    cJSON_AddStringToObject(o, "select", SELECT_NAMES[job->select]);
    cJSON_AddBoolToObject(o, "ntk", job->ntk);
    cJSON_AddStringToObject(o, "probe", job->probe_sgd ? "sgd" : "lbfgs");
    if (!isnan(r->probe_l2)) cJSON_AddNumberToObject(o, "probe_l2", r->probe_l2);
    cJSON_AddNumberToObject(o, "trunk_seconds", r->trunk_seconds);
    /* the other phases before training: caches onto the device, the top block's pass at θ̄ (probe features) */
    cJSON_AddNumberToObject(o, "cache_seconds", r->cache_seconds);
    cJSON_AddNumberToObject(o, "features_seconds", r->features_seconds);
    /* device memory of the two caches (--cache-dtype f16 halves what it stores) */
    cJSON *mem = cJSON_AddObjectToObject(o, "cache_memory");
    cJSON_AddStringToObject(mem, "dtype", job->cache_f16 ? "f16" : "f32");
    cJSON_AddNumberToObject(mem, "activation_bytes", (double)r->cache_bytes);
    cJSON_AddNumberToObject(mem, "primal_bytes", (double)r->primal_cache_bytes);
    cJSON *ms = cJSON_AddObjectToObject(o, "methods");
    for (int i = 0; i < 4; i++) {
        if (!r->ran[i]) continue;
        cJSON *x = cJSON_AddObjectToObject(ms, gf_job_method_name(i));
        cJSON_AddNumberToObject(x, "train_loss", r->train_loss[i]);
        if (!isnan(r->train_metric[i])) cJSON_AddNumberToObject(x, "train_metric", r->train_metric[i]);
        if (!isnan(r->val_loss[i])) cJSON_AddNumberToObject(x, "val_loss", r->val_loss[i]);
        if (!isnan(r->val_metric[i])) cJSON_AddNumberToObject(x, "val_metric", r->val_metric[i]);
        if (!isnan(r->hold_loss[i])) cJSON_AddNumberToObject(x, "holdout_loss", r->hold_loss[i]);
        if (!isnan(r->hold_metric[i])) cJSON_AddNumberToObject(x, "holdout_metric", r->hold_metric[i]);
        if (!isnan(r->lr[i])) cJSON_AddNumberToObject(x, "lr", r->lr[i]);
        cJSON_AddNumberToObject(x, "best_epoch", r->best_epoch[i]);
        cJSON_AddNumberToObject(x, "epochs_run", r->epochs_run[i]);
        cJSON_AddBoolToObject(x, "diverged", r->diverged[i]);
        cJSON_AddNumberToObject(x, "seconds", r->seconds[i]);
    }
    /* every setting that shaped the result: the job configuration checkpoints are compared on (one place,
     * gf_job_config_json), and the environment; float settings as their exact decimals ("lr": 0.001) */
    if (config) cJSON_AddItemToObject(o, "settings", cJSON_Duplicate(config, 1));
    cJSON_AddItemToObject(o, "environment", gf_run_environment(ctx));
    static const char *const measured[] = {"methods", NULL};
    gf_json_exact_floats(o, measured);
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    if (!text) return gf_fail(ctx, GF_ERR_MEMORY, "out of memory");
    snprintf(path, sizeof path, "%s/results.json", job->run_dir);
    st = gf_write_file_atomic(ctx, path, text, strlen(text));
    free(text);
    return st;
}

static const char *fmt_num(char *buf, double v, int percent) {
    if (isnan(v)) return "-";
    snprintf(buf, 32, percent ? "%.2f%%" : "%.4f", percent ? 100 * v : v);
    return buf;
}

void gf_job_print_table(const gf_job_result *r, FILE *out) {
    fprintf(out, "top block %s; %d training / %d evaluation samples, %d classes; metric: %s\n", r->top, r->n_train,
            r->n_val, r->classes, r->multi_label ? "mAP" : "top-1 accuracy");
    int hold = r->n_hold > 0;
    if (hold && r->select == GF_JOB_SELECT_LAST)
        fprintf(out, "model selection: the last epoch; %d held-out training samples chose the probe's L2 and watch for "
                "divergence\n", r->n_hold);
    else if (hold)
        fprintf(out, "model selection: the %s on %d held-out training samples (epoch 0 = the start)\n",
                r->select == GF_JOB_SELECT_METRIC ? "best held-out metric" : "lowest held-out loss", r->n_hold);
    fprintf(out, "%-10s %11s %11s %11s %11s", "method", "train loss", "train", "val loss", "val");
    if (hold) fprintf(out, " %11s %11s %6s", "hold loss", "holdout", "epoch");
    fprintf(out, " %9s\n", "seconds");
    for (int i = 0; i < 4; i++) {
        if (!r->ran[i]) continue;
        char a[32], b[32], c[32], d[32], e[32], f[32];
        fprintf(out, "%-10s %11s %11s %11s %11s", gf_job_method_name(i), fmt_num(f, r->train_loss[i], 0),
                fmt_num(a, r->train_metric[i], 1), fmt_num(b, r->val_loss[i], 0), fmt_num(c, r->val_metric[i], 1));
        if (hold) {
            char ep[24];
            if (i == 0) snprintf(ep, sizeof ep, "-");
            else snprintf(ep, sizeof ep, "%d%s", r->best_epoch[i], r->diverged[i] ? "!" : "");
            fprintf(out, " %11s %11s %6s", fmt_num(d, r->hold_loss[i], 0), fmt_num(e, r->hold_metric[i], 1), ep);
        }
        fprintf(out, " %9.1f\n", r->seconds[i]);
    }
    for (int i = 1; i < 4; i++)
        if (r->ran[i] && r->lr_auto_used)
            fprintf(out, "%s: learning rate %g (chosen on the holdout)\n", gf_job_method_name(i), r->lr[i]);
    for (int i = 1; i < 4; i++)
        if (r->ran[i] && r->diverged[i])
            fprintf(out, r->n_hold > 0 ? "%s: stopped after epoch %d: its held-out loss stayed far above where it started "
                                         "(kept epoch %d; try a smaller --lr)\n"
                                       : "%s: stopped after epoch %d: its training loss stayed far above that of guessing "
                                         "(try a smaller --lr)\n", gf_job_method_name(i), r->epochs_run[i], r->best_epoch[i]);
}

/* ---------------- the job configuration and --resume ---------------- */

/* ---- the job configuration: one row per field, in the order of its JSON ----
 * Written by gf_job_config_json into every checkpoint ("config") and into results.json ("settings"); a
 * --resume must match every key of it (gf_job_check_resume); gf_job_load_resume_config reads it back for
 * `train --resume RUN_DIR` alone. A new field of the configuration is one row here.
 *   REQ(key, field, kind)            every checkpoint has it: one without it holds no usable configuration
 *   OPT(key, field, kind, if_older)  added later: a checkpoint written before it lacks the key, and its run
 *                                    did what if_older says (an expression; fields above are read already)
 * field: the gf_job member written and read back. kind: how the JSON holds it, the put_* and get_* below. */
#define GF_JOB_CONFIG(REQ, OPT)                                                                              \
    REQ("model",          model_path,     STR)                                                               \
    REQ("model_fnv1a64",  model_path,     HASH)     /* checked first, by gf_job_check_resume_model */        \
    REQ("data",           data_path,      STR)                                                               \
    REQ("split",          data_split,     OPT_STR)                                                           \
    REQ("val",            val_path,       OPT_STR)                                                           \
    REQ("val_split",      val_split,      OPT_STR)                                                           \
    REQ("limit",          limit_train,    INT)                                                               \
    REQ("val_limit",      limit_val,      INT)                                                               \
    REQ("top",            top,            STR)      /* the block found, not the option */                    \
    REQ("methods",        methods,        UINT)                                                              \
    REQ("epochs",         epochs,         INT)                                                               \
    REQ("probe_epochs",   probe_epochs,   INT)      /* 0 (10 x epochs) written as what it means */           \
    REQ("batch",          batch,          INT)                                                               \
    REQ("optimizer",      sgd,            OPTIMIZER)                                                         \
    REQ("lr",             lr,             FLOAT)                                                             \
    REQ("momentum",       momentum,       FLOAT)                                                             \
    REQ("beta1",          beta1,          FLOAT)                                                             \
    REQ("beta2",          beta2,          FLOAT)                                                             \
    REQ("weight_decay",   weight_decay,   FLOAT)                                                             \
    REQ("clip_norm",      clip_norm,      FLOAT)                                                             \
    REQ("lr_halve_every", lr_halve_every, INT)                                                               \
    OPT("lr_cosine",      lr_cosine,      INT,      0)           /* the step schedule */                     \
    OPT("ntk",            ntk,            INT,      0)                                                       \
    OPT("eval_every",     eval_every,     INT,      0)                                                       \
    OPT("holdout",        holdout,        FLOAT,    0)                                                       \
    OPT("select",         select,         SELECT,   GF_JOB_SELECT_LAST)                                      \
    OPT("probe_sgd",      probe_sgd,      BOOL,     1)                                                       \
    OPT("probe_l2",       probe_l2,       FLOAT,    -1)                                                      \
    OPT("probe_lr",       probe_lr,       FLOAT,    0)                                                       \
    OPT("finetune_lr",    finetune_lr,    FLOAT,    j.lr)        /* finetune trained at lr */                \
    OPT("lr_auto",        lr_auto,        BOOL,     0)                                                       \
    OPT("random",         random,         RANDOM,   0)                                                       \
    OPT("cache_dtype",    cache_f16,      DTYPE,    0)           /* f32 */                                   \
    OPT("grad_chunk",     grad_chunk,     INT,      0)           /* one gradient per batch */                \
    REQ("seed",           seed,           SEED)

/* put_KIND: write the field under key. get_KIND: read it back; 0 when the key is missing or malformed. */
typedef struct { cJSON *o; uint64_t model_hash; } config_out;
static void put_STR(config_out *w, const char *k, const char *const *v) { cJSON_AddStringToObject(w->o, k, *v); }
static void put_OPT_STR(config_out *w, const char *k, const char *const *v) { cJSON_AddStringToObject(w->o, k, *v ? *v : ""); }
static void put_INT(config_out *w, const char *k, const int *v) { cJSON_AddNumberToObject(w->o, k, *v); }
static void put_UINT(config_out *w, const char *k, const unsigned *v) { cJSON_AddNumberToObject(w->o, k, *v); }
static void put_FLOAT(config_out *w, const char *k, const float *v) { cJSON_AddNumberToObject(w->o, k, *v); }
#define put_BOOL put_INT                                             /* 0 / 1 */
#define put_SELECT put_INT                                           /* GF_JOB_SELECT_* */
#define put_RANDOM put_UINT                                          /* GF_JOB_RANDOM_* bits */
static void put_OPTIMIZER(config_out *w, const char *k, const int *sgd) { cJSON_AddStringToObject(w->o, k, *sgd ? "sgd" : "adam"); }
static void put_DTYPE(config_out *w, const char *k, const int *f16) { cJSON_AddStringToObject(w->o, k, *f16 ? "f16" : "f32"); }
static void put_SEED(config_out *w, const char *k, const uint64_t *v) {   /* decimal string: a double rounds it */
    char s[32];
    snprintf(s, sizeof s, "%llu", (unsigned long long)*v);
    cJSON_AddStringToObject(w->o, k, s);
}
static void put_HASH(config_out *w, const char *k, const char *const *model_path) {   /* FNV-1a 64 of the file, hex */
    char s[32];
    snprintf(s, sizeof s, "%016llx", (unsigned long long)w->model_hash);
    cJSON_AddStringToObject(w->o, k, s);
}

static const cJSON *config_num(const cJSON *c, const char *k) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(c, k);
    return cJSON_IsNumber(x) ? x : NULL;
}
static const char *config_str(const cJSON *c, const char *k) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(c, k);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}
static int get_STR(const cJSON *c, const char *k, const char **v) { return (*v = config_str(c, k)) != NULL; }
static int get_OPT_STR(const cJSON *c, const char *k, const char **v) {   /* "" -> NULL */
    const char *s = config_str(c, k);
    if (s) *v = *s ? s : NULL;
    return s != NULL;
}
static int get_INT(const cJSON *c, const char *k, int *v) {
    const cJSON *x = config_num(c, k);
    if (x) *v = (int)x->valuedouble;
    return x != NULL;
}
static int get_UINT(const cJSON *c, const char *k, unsigned *v) {
    const cJSON *x = config_num(c, k);
    if (x) *v = (unsigned)x->valuedouble;
    return x != NULL;
}
static int get_FLOAT(const cJSON *c, const char *k, float *v) {
    const cJSON *x = config_num(c, k);
    if (x) *v = (float)x->valuedouble;
    return x != NULL;
}
static int get_BOOL(const cJSON *c, const char *k, int *v) {
    const cJSON *x = config_num(c, k);
    if (x) *v = x->valuedouble != 0;
    return x != NULL;
}
static int get_SELECT(const cJSON *c, const char *k, int *v) {
    const cJSON *x = config_num(c, k);
    int ok = x && x->valuedouble >= GF_JOB_SELECT_LAST && x->valuedouble <= GF_JOB_SELECT_METRIC;
    if (ok) *v = (int)x->valuedouble;
    return ok;
}
static int get_RANDOM(const cJSON *c, const char *k, unsigned *v) {
    const cJSON *x = config_num(c, k);
    int ok = x && x->valuedouble >= 0 && x->valuedouble < 8;         /* theta1 | theta2 | omega */
    if (ok) *v = (unsigned)x->valuedouble;
    return ok;
}
static int get_OPTIMIZER(const cJSON *c, const char *k, int *sgd) {
    const char *s = config_str(c, k);
    if (s) *sgd = !strcmp(s, "sgd");
    return s != NULL;
}
static int get_DTYPE(const cJSON *c, const char *k, int *f16) {
    const char *s = config_str(c, k);
    if (s) *f16 = !strcmp(s, "f16");
    return s != NULL;
}
static int get_SEED(const cJSON *c, const char *k, uint64_t *v) {
    const char *s = config_str(c, k);
    if (s) *v = strtoull(s, NULL, 10);
    return s != NULL;
}
static int get_HASH(const cJSON *c, const char *k, const char **model_path) { return 1; }   /* not read back */

cJSON *gf_job_config_json(const gf_job *job, const char *top, uint64_t model_hash) {
    gf_job r = *job;                     /* what the run uses: the block found, the probe's epochs */
    r.top = top;
    if (!r.probe_epochs) r.probe_epochs = 10 * r.epochs;
    config_out w = {cJSON_CreateObject(), model_hash};
#define PUT_REQ(key, field, kind) put_##kind(&w, key, &r.field);
#define PUT_OPT(key, field, kind, if_older) put_##kind(&w, key, &r.field);
    GF_JOB_CONFIG(PUT_REQ, PUT_OPT)
#undef PUT_REQ
#undef PUT_OPT
    return w.o;
}

const char *gf_job_checkpoint_meta(void *user) {
    epoch_ctx *ec = user;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "config", cJSON_Duplicate(ec->config, 1));
    if (ec->log) {
        char hex[32];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)ec->metrics_hash);
        fflush(ec->log);
        cJSON_AddNumberToObject(o, "metrics_bytes", (double)ftell(ec->log));
        cJSON_AddStringToObject(o, "metrics_fnv1a64", hex);
    }
    if (ec->files) cJSON_AddItemToObject(o, "files_xxh3", cJSON_Duplicate(ec->files, 1));
    cJSON_AddStringToObject(o, "device", ec->ctx->info.name);
    cJSON_AddNumberToObject(o, "checkpoint_every", ec->job->checkpoint_every);   /* for --resume alone; not compared */
    free(ec->meta);
    ec->meta = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return ec->meta;
}

/* The model first: a checkpoint written for another model file (another architecture, other weights) says
 * so, instead of failing on a block name that model does not have. */
gf_status gf_job_check_resume_model(gf_ctx *ctx, const char *path, const gf_ckpt *c, const char *model_path,
                                    uint64_t model_hash) {
    cJSON *meta = c->meta ? cJSON_Parse(c->meta) : NULL;
    const cJSON *saved = cJSON_GetObjectItemCaseSensitive(meta, "config");
    const cJSON *mp = cJSON_GetObjectItemCaseSensitive(saved, "model"), *mh = cJSON_GetObjectItemCaseSensitive(saved, "model_fnv1a64");
    char hex[32];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)model_hash);
    gf_status st = GF_OK;
    if (!cJSON_IsString(mp) || !cJSON_IsString(mh))
        st = gf_fail(ctx, GF_ERR_INPUT, "checkpoint %s holds no job configuration", path);
    else if (strcmp(mp->valuestring, model_path))
        st = gf_fail(ctx, GF_ERR_USAGE, "--resume: checkpoint %s was written for the model %s, this run has the model %s%s; "
                     "resume with --model %s (or leave --model out)", path, mp->valuestring, model_path,
                     strcmp(mh->valuestring, hex) ? " (another model: other architecture or weights)" : "",
                     mp->valuestring);
    else if (strcmp(mh->valuestring, hex))
        st = gf_fail(ctx, GF_ERR_INPUT, "--resume: the model file changed since checkpoint %s was written", path);
    cJSON_Delete(meta);
    return st;
}

/* The checkpoint must come from the same job: same configuration, same model bytes. */
gf_status gf_job_check_resume(gf_ctx *ctx, const char *path, const gf_ckpt *c, const cJSON *config, long *metrics_bytes) {
    cJSON *meta = c->meta ? cJSON_Parse(c->meta) : NULL;
    const cJSON *saved = meta ? cJSON_GetObjectItemCaseSensitive(meta, "config") : NULL;
    gf_status st = GF_OK;
    if (!cJSON_IsObject(saved)) st = gf_fail(ctx, GF_ERR_INPUT, "checkpoint %s holds no job configuration", path);
    for (const cJSON *it = config->child; it && st == GF_OK; it = it->next) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(saved, it->string);
        char *a = cJSON_PrintUnformatted(it), *b = o ? cJSON_PrintUnformatted(o) : NULL;
        if (!b || strcmp(a, b))
            st = !strcmp(it->string, "model_fnv1a64")
                     ? gf_fail(ctx, GF_ERR_INPUT, "--resume: the model file changed since checkpoint %s was written", path)
                     : gf_fail(ctx, GF_ERR_USAGE, "--resume: checkpoint %s was written with %s = %s, this run has %s; "
                               "resume with the same options", path, it->string, b ? b : "(none)", a);
        free(a); free(b);
    }
    const cJSON *mb = meta ? cJSON_GetObjectItemCaseSensitive(meta, "metrics_bytes") : NULL;
    *metrics_bytes = cJSON_IsNumber(mb) ? (long)mb->valuedouble : -1;
    cJSON_Delete(meta);
    return st;
}

/* FNV-1a 64 (fnv, may be NULL) and XXH3 64 (xxh, may be NULL) of a whole file (or of its first `len` bytes,
 * len >= 0; *short_file set when it has fewer) */
static gf_status file_hash(gf_ctx *ctx, const char *path, long len, uint64_t *fnv, uint64_t *xxh, int *short_file) {
    void *bytes = NULL; size_t n = 0;
    GF_TRY(gf_read_file(ctx, path, &bytes, &n));
    if (short_file) *short_file = len >= 0 && n < (size_t)len;
    size_t m = len >= 0 && (size_t)len < n ? (size_t)len : n;
    if (fnv) *fnv = gf_fnv1a(GF_FNV_INIT, bytes, m);
    if (xxh) *xxh = gf_xxh3(bytes, m);
    free(bytes);
    return GF_OK;
}

/* A checkpoint vouches for the run directory it was written in: metrics.jsonl up to metrics_bytes (FNV-1a 64),
 * and every file the run had written by then ("files_xxh3": name -> XXH3 64; "files", FNV-1a 64, in checkpoints
 * written before). A checkpoint copied in from another run, or files replaced beside it, would make the finished
 * run a mix of two (one run's linear.safetensors, the other's results.json): refuse. Hands back the metrics hash
 * and the file list (XXH3) for the checkpoints to come. */
gf_status gf_job_check_resume_files(gf_ctx *ctx, const char *run_dir, const char *ck_path, const gf_ckpt *c,
                                    long metrics_bytes, uint64_t *metrics_hash, cJSON **files) {
    cJSON *meta = c->meta ? cJSON_Parse(c->meta) : NULL;
    const cJSON *mh = cJSON_GetObjectItemCaseSensitive(meta, "metrics_fnv1a64");
    const cJSON *fl = cJSON_GetObjectItemCaseSensitive(meta, "files_xxh3");
    int legacy = !fl;   /* written before XXH3: the names with their FNV-1a */
    if (legacy) fl = cJSON_GetObjectItemCaseSensitive(meta, "files");
    const char *fix = "the checkpoint comes from another run, or the file was replaced since; start a new run in an "
                      "empty --run-dir, or put back the run's own files";
    char path[1400], hex[32];
    struct stat sb;
    gf_status st = GF_OK;
    *metrics_hash = GF_FNV_INIT;
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    int have = stat(path, &sb) == 0, short_file = 0;
    if (have && metrics_bytes >= 0) st = file_hash(ctx, path, metrics_bytes, metrics_hash, NULL, &short_file);
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)*metrics_hash);
    if (st == GF_OK && cJSON_IsString(mh) && metrics_bytes > 0 && !have)
        st = gf_fail(ctx, GF_ERR_INPUT, "--resume: %s, which the run of checkpoint %s wrote (%ld bytes), is missing; %s",
                     path, ck_path, metrics_bytes, fix);
    else if (st == GF_OK && cJSON_IsString(mh) && (short_file || strcmp(mh->valuestring, hex)))
        st = gf_fail(ctx, GF_ERR_INPUT, "--resume: %s is not the one the run of checkpoint %s wrote (%s); %s", path,
                     ck_path, short_file ? "it is shorter" : "its first bytes differ", fix);
    *files = cJSON_CreateObject();
    for (const cJSON *it = cJSON_IsObject(fl) ? fl->child : NULL; it && st == GF_OK; it = it->next) {
        uint64_t h = 0, hx = 0;
        if (!cJSON_IsString(it) || !it->string[0] || strchr(it->string, '/') || !strcmp(it->string, "..")) {
            st = gf_fail(ctx, GF_ERR_INPUT, "checkpoint %s: bad entry in its list of files", ck_path);
            break;
        }
        snprintf(path, sizeof path, "%s/%s", run_dir, it->string);
        if (stat(path, &sb) != 0)
            st = gf_fail(ctx, GF_ERR_INPUT, "--resume: %s, which the run of checkpoint %s wrote, is missing; %s", path,
                         ck_path, fix);
        if (st == GF_OK) st = file_hash(ctx, path, -1, legacy ? &h : NULL, &hx, NULL);
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)(legacy ? h : hx));
        if (st == GF_OK && strcmp(hex, it->valuestring))
            st = gf_fail(ctx, GF_ERR_INPUT, "--resume: %s is not the file the run of checkpoint %s wrote (%s %s, the "
                         "checkpoint has %s); %s", path, ck_path, legacy ? "FNV-1a" : "XXH3", hex, it->valuestring, fix);
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)hx);
        if (st == GF_OK) cJSON_AddStringToObject(*files, it->string, hex);
    }
    cJSON_Delete(meta);
    return st;
}

/* Records a file of the run directory the run has just written (see gf_job_check_resume_files). */
gf_status gf_job_record_file(epoch_ctx *ec, const char *name) {
    char path[1400];
    uint64_t h;
    snprintf(path, sizeof path, "%s/%s", ec->job->run_dir, name);
    GF_TRY(file_hash(ec->ctx, path, -1, NULL, &h, NULL));
    return gf_job_record_hash(ec, name, h);
}

gf_status gf_job_record_hash(epoch_ctx *ec, const char *name, uint64_t xxh3) {
    char hex[32];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)xxh3);
    cJSON_DeleteItemFromObjectCaseSensitive(ec->files, name);
    if (!cJSON_AddStringToObject(ec->files, name, hex)) return gf_fail(ec->ctx, GF_ERR_MEMORY, "out of memory");
    return GF_OK;
}

gf_status gf_job_load_resume_config(gf_ctx *ctx, const char *run_dir, gf_job *job, void **owner) {
    *owner = NULL;
    char path[1200];
    snprintf(path, sizeof path, "%s/checkpoint.gfckpt", run_dir);
    /* under MPI rank 0 alone locks the run directory (job.c), and it may already hold the lock when another rank
     * gets here: that is this job, not another run */
    if (gf_dist_rank() == 0) GF_TRY(gf_run_dir_check_free(ctx, run_dir));
    struct stat sb;
    if (stat(path, &sb) != 0)
        return gf_fail(ctx, GF_ERR_INPUT, "--resume: no checkpoint %s (the run finished, or never reached its first step)",
                       path);
    gf_ckpt ck;
    GF_TRY(gf_ckpt_read(ctx, path, &ck));
    cJSON *meta = ck.meta ? cJSON_Parse(ck.meta) : NULL;
    gf_ckpt_free(&ck);
    cJSON *c = meta ? cJSON_GetObjectItemCaseSensitive(meta, "config") : NULL;
    const cJSON *every = meta ? cJSON_GetObjectItemCaseSensitive(meta, "checkpoint_every") : NULL;
    if (cJSON_IsNumber(every) && every->valuedouble >= 0 && every->valuedouble <= INT_MAX)
        job->checkpoint_every = (int)every->valuedouble;
    gf_job j = *job;
    int ok = cJSON_IsObject(c);
#define GET_REQ(key, field, kind) ok = ok && get_##kind(c, key, &j.field);
#define GET_OPT(key, field, kind, if_older) if (ok && !get_##kind(c, key, &j.field)) j.field = (if_older);
    GF_JOB_CONFIG(GET_REQ, GET_OPT)
#undef GET_REQ
#undef GET_OPT
    if (!ok) { cJSON_Delete(meta); return gf_fail(ctx, GF_ERR_INPUT, "checkpoint %s holds no usable job configuration", path); }
    *job = j;
    *owner = meta;
    return GF_OK;
}

void gf_job_config_free(void *owner) { cJSON_Delete(owner); }

/* RUN_DIR/confusion_<method>.json (single-label) or ap_<method>.json (multi-label)
 * from the final evaluation's logits, for `gradfeat report`. */
gf_status gf_job_write_eval_detail(epoch_ctx *ec, gf_method m, const gf_method_result *r) {
    const gf_cached_set *v = ec->val;
    if (!v || !r->val_scores) return GF_OK;
    char name[64];
    gf_status st;
    if (v->multi_label) {
        double *ap = malloc((size_t)v->classes * sizeof(double));
        if (!ap) return gf_fail(ec->ctx, GF_ERR_MEMORY, "out of memory");
        gf_mean_ap(r->val_scores, v->targets, v->n, v->classes, ap);
        st = gf_report_write_ap(ec->ctx, ec->job->run_dir, gf_method_name(m), "val", ap, v->classes);
        free(ap);
        snprintf(name, sizeof name, "ap_%s.json", gf_method_name(m));
    } else {
        uint64_t *counts = calloc((size_t)v->classes * v->classes, sizeof(uint64_t));
        if (!counts) return gf_fail(ec->ctx, GF_ERR_MEMORY, "out of memory");
        gf_confusion_matrix(r->val_scores, v->labels, v->n, v->classes, counts);
        st = gf_report_write_confusion(ec->ctx, ec->job->run_dir, gf_method_name(m), "val", counts, v->classes);
        free(counts);
        snprintf(name, sizeof name, "confusion_%s.json", gf_method_name(m));
    }
    return st == GF_OK ? gf_job_record_file(ec, name) : st;
}
