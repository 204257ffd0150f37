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
#include "runrecord.h"
#include "job_internal.h"

static const char *const SELECT_NAMES[] = {"last", "loss", "metric"};

gf_status gf_job_write_results(gf_ctx *ctx, const gf_job *job, const gf_job_result *r, gf_dataset *ds,
                               const cJSON *config) {
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
    if (hold) fprintf(out, "model selection: the best evaluation on %d held-out training samples (epoch 0 = the start)\n", r->n_hold);
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

cJSON *gf_job_config_json(const gf_job *job, const char *top, uint64_t model_hash) {
    cJSON *o = cJSON_CreateObject();
    char hex[32];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)model_hash);
    cJSON_AddStringToObject(o, "model", job->model_path);
    cJSON_AddStringToObject(o, "model_fnv1a64", hex);
    cJSON_AddStringToObject(o, "data", job->data_path);
    cJSON_AddStringToObject(o, "split", job->data_split ? job->data_split : "");
    cJSON_AddStringToObject(o, "val", job->val_path ? job->val_path : "");
    cJSON_AddStringToObject(o, "val_split", job->val_split ? job->val_split : "");
    cJSON_AddNumberToObject(o, "limit", job->limit_train);
    cJSON_AddNumberToObject(o, "val_limit", job->limit_val);
    cJSON_AddStringToObject(o, "top", top);
    cJSON_AddNumberToObject(o, "methods", job->methods);
    cJSON_AddNumberToObject(o, "epochs", job->epochs);
    cJSON_AddNumberToObject(o, "probe_epochs", job->probe_epochs ? job->probe_epochs : 10 * job->epochs);
    cJSON_AddNumberToObject(o, "batch", job->batch);
    cJSON_AddStringToObject(o, "optimizer", job->sgd ? "sgd" : "adam");
    cJSON_AddNumberToObject(o, "lr", job->lr);
    cJSON_AddNumberToObject(o, "momentum", job->momentum);
    cJSON_AddNumberToObject(o, "beta1", job->beta1);
    cJSON_AddNumberToObject(o, "beta2", job->beta2);
    cJSON_AddNumberToObject(o, "weight_decay", job->weight_decay);
    cJSON_AddNumberToObject(o, "clip_norm", job->clip_norm);
    cJSON_AddNumberToObject(o, "lr_halve_every", job->lr_halve_every);
    cJSON_AddNumberToObject(o, "lr_cosine", job->lr_cosine);
    cJSON_AddNumberToObject(o, "ntk", job->ntk);
    cJSON_AddNumberToObject(o, "eval_every", job->eval_every);
    cJSON_AddNumberToObject(o, "holdout", job->holdout);
    cJSON_AddNumberToObject(o, "select", job->select);
    cJSON_AddNumberToObject(o, "probe_sgd", job->probe_sgd);
    cJSON_AddNumberToObject(o, "probe_l2", job->probe_l2);
    cJSON_AddNumberToObject(o, "probe_lr", job->probe_lr);
    cJSON_AddNumberToObject(o, "finetune_lr", job->finetune_lr);
    cJSON_AddNumberToObject(o, "lr_auto", job->lr_auto);
    cJSON_AddNumberToObject(o, "random", job->random);
    cJSON_AddStringToObject(o, "cache_dtype", job->cache_f16 ? "f16" : "f32");
    snprintf(hex, sizeof hex, "%llu", (unsigned long long)job->seed);
    cJSON_AddStringToObject(o, "seed", hex);
    return o;
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
    if (ec->files) cJSON_AddItemToObject(o, "files", cJSON_Duplicate(ec->files, 1));
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

/* FNV-1a 64 of a whole file (or of its first `len` bytes, len >= 0; *short_file set when it has fewer) */
static gf_status file_fnv(gf_ctx *ctx, const char *path, long len, uint64_t *h, int *short_file) {
    void *bytes = NULL; size_t n = 0;
    GF_TRY(gf_read_file(ctx, path, &bytes, &n));
    if (short_file) *short_file = len >= 0 && n < (size_t)len;
    *h = gf_fnv1a(GF_FNV_INIT, bytes, len >= 0 && (size_t)len < n ? (size_t)len : n);
    free(bytes);
    return GF_OK;
}

/* A checkpoint vouches for the run directory it was written in: metrics.jsonl up to metrics_bytes, and every
 * file the run had written by then (name -> FNV-1a 64). A checkpoint copied in from another run, or files
 * replaced beside it, would make the finished run a mix of two (one run's linear.safetensors, the other's
 * results.json): refuse. Hands back the metrics hash and the file list for the checkpoints to come. */
gf_status gf_job_check_resume_files(gf_ctx *ctx, const char *run_dir, const char *ck_path, const gf_ckpt *c,
                                    long metrics_bytes, uint64_t *metrics_hash, cJSON **files) {
    cJSON *meta = c->meta ? cJSON_Parse(c->meta) : NULL;
    const cJSON *mh = cJSON_GetObjectItemCaseSensitive(meta, "metrics_fnv1a64");
    const cJSON *fl = cJSON_GetObjectItemCaseSensitive(meta, "files");
    const char *fix = "the checkpoint comes from another run, or the file was replaced since; start a new run in an "
                      "empty --run-dir, or put back the run's own files";
    char path[1400], hex[32];
    struct stat sb;
    gf_status st = GF_OK;
    *metrics_hash = GF_FNV_INIT;
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    int have = stat(path, &sb) == 0, short_file = 0;
    if (have && metrics_bytes >= 0) st = file_fnv(ctx, path, metrics_bytes, metrics_hash, &short_file);
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)*metrics_hash);
    if (st == GF_OK && cJSON_IsString(mh) && metrics_bytes > 0 && !have)
        st = gf_fail(ctx, GF_ERR_INPUT, "--resume: %s, which the run of checkpoint %s wrote (%ld bytes), is missing; %s",
                     path, ck_path, metrics_bytes, fix);
    else if (st == GF_OK && cJSON_IsString(mh) && (short_file || strcmp(mh->valuestring, hex)))
        st = gf_fail(ctx, GF_ERR_INPUT, "--resume: %s is not the one the run of checkpoint %s wrote (%s); %s", path,
                     ck_path, short_file ? "it is shorter" : "its first bytes differ", fix);
    *files = cJSON_CreateObject();
    for (const cJSON *it = cJSON_IsObject(fl) ? fl->child : NULL; it && st == GF_OK; it = it->next) {
        uint64_t h = 0;
        if (!cJSON_IsString(it) || !it->string[0] || strchr(it->string, '/') || !strcmp(it->string, "..")) {
            st = gf_fail(ctx, GF_ERR_INPUT, "checkpoint %s: bad entry in its list of files", ck_path);
            break;
        }
        snprintf(path, sizeof path, "%s/%s", run_dir, it->string);
        if (stat(path, &sb) != 0)
            st = gf_fail(ctx, GF_ERR_INPUT, "--resume: %s, which the run of checkpoint %s wrote, is missing; %s", path,
                         ck_path, fix);
        if (st == GF_OK) st = file_fnv(ctx, path, -1, &h, NULL);
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
        if (st == GF_OK && strcmp(hex, it->valuestring))
            st = gf_fail(ctx, GF_ERR_INPUT, "--resume: %s is not the file the run of checkpoint %s wrote (FNV-1a %s, the "
                         "checkpoint has %s); %s", path, ck_path, hex, it->valuestring, fix);
        if (st == GF_OK) cJSON_AddStringToObject(*files, it->string, it->valuestring);
    }
    cJSON_Delete(meta);
    return st;
}

/* Records a file of the run directory the run has just written (see gf_job_check_resume_files). */
gf_status gf_job_record_file(epoch_ctx *ec, const char *name) {
    char path[1400], hex[32];
    uint64_t h;
    snprintf(path, sizeof path, "%s/%s", ec->job->run_dir, name);
    GF_TRY(file_fnv(ec->ctx, path, -1, &h, NULL));
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
    cJSON_DeleteItemFromObjectCaseSensitive(ec->files, name);
    if (!cJSON_AddStringToObject(ec->files, name, hex)) return gf_fail(ec->ctx, GF_ERR_MEMORY, "out of memory");
    return GF_OK;
}

gf_status gf_job_load_resume_config(gf_ctx *ctx, const char *run_dir, gf_job *job, void **owner) {
    *owner = NULL;
    char path[1200];
    snprintf(path, sizeof path, "%s/checkpoint.gfckpt", run_dir);
    GF_TRY(gf_run_dir_check_free(ctx, run_dir));
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
    const char *need_s[] = {"model", "data", "split", "val", "val_split", "top", "optimizer", "seed"};
    const char *need_n[] = {"limit", "val_limit", "methods", "epochs", "probe_epochs", "batch", "lr", "momentum",
                            "beta1", "beta2", "weight_decay", "clip_norm", "lr_halve_every"};
    int ok = cJSON_IsObject(c);
    for (size_t i = 0; ok && i < sizeof need_s / sizeof *need_s; i++) ok = cJSON_IsString(cJSON_GetObjectItemCaseSensitive(c, need_s[i]));
    for (size_t i = 0; ok && i < sizeof need_n / sizeof *need_n; i++) ok = cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(c, need_n[i]));
    if (!ok) { cJSON_Delete(meta); return gf_fail(ctx, GF_ERR_INPUT, "checkpoint %s holds no usable job configuration", path); }
#define S_(k) (cJSON_GetObjectItemCaseSensitive(c, k)->valuestring)
#define N_(k) (cJSON_GetObjectItemCaseSensitive(c, k)->valuedouble)
#define OPT_(k) (*S_(k) ? S_(k) : NULL)
    job->model_path = S_("model"); job->data_path = S_("data"); job->data_split = OPT_("split");
    job->val_path = OPT_("val"); job->val_split = OPT_("val_split"); job->top = S_("top");
    job->sgd = !strcmp(S_("optimizer"), "sgd");
    job->seed = strtoull(S_("seed"), NULL, 10);
    job->limit_train = (int)N_("limit"); job->limit_val = (int)N_("val_limit"); job->methods = (unsigned)N_("methods");
    job->epochs = (int)N_("epochs"); job->probe_epochs = (int)N_("probe_epochs"); job->batch = (int)N_("batch");
    job->lr = (float)N_("lr"); job->momentum = (float)N_("momentum"); job->beta1 = (float)N_("beta1");
    job->beta2 = (float)N_("beta2"); job->weight_decay = (float)N_("weight_decay"); job->clip_norm = (float)N_("clip_norm");
    job->lr_halve_every = (int)N_("lr_halve_every");
    const cJSON *jcos = cJSON_GetObjectItemCaseSensitive(c, "lr_cosine");
    job->lr_cosine = cJSON_IsNumber(jcos) ? (int)jcos->valuedouble : 0;   /* before the option: the step schedule */
    const cJSON *jn = cJSON_GetObjectItemCaseSensitive(c, "ntk"), *je = cJSON_GetObjectItemCaseSensitive(c, "eval_every");
    job->ntk = cJSON_IsNumber(jn) ? (int)jn->valuedouble : 0;
    job->eval_every = cJSON_IsNumber(je) ? (int)je->valuedouble : 0;
    const cJSON *jh = cJSON_GetObjectItemCaseSensitive(c, "holdout"), *js = cJSON_GetObjectItemCaseSensitive(c, "select");
    const cJSON *jp = cJSON_GetObjectItemCaseSensitive(c, "probe_sgd"), *jl = cJSON_GetObjectItemCaseSensitive(c, "probe_l2");
    const cJSON *jr = cJSON_GetObjectItemCaseSensitive(c, "probe_lr");
    /* checkpoints from before these options: what those runs did */
    job->holdout = cJSON_IsNumber(jh) ? (float)jh->valuedouble : 0;
    job->select = cJSON_IsNumber(js) && js->valuedouble >= 0 && js->valuedouble <= 2 ? (int)js->valuedouble : 0;
    job->probe_sgd = cJSON_IsNumber(jp) ? jp->valuedouble != 0 : 1;
    job->probe_l2 = cJSON_IsNumber(jl) ? (float)jl->valuedouble : -1;
    job->probe_lr = cJSON_IsNumber(jr) ? (float)jr->valuedouble : 0;
    const cJSON *jfl = cJSON_GetObjectItemCaseSensitive(c, "finetune_lr");
    job->finetune_lr = cJSON_IsNumber(jfl) ? (float)jfl->valuedouble : job->lr;   /* before the option: at lr */
    const cJSON *ja = cJSON_GetObjectItemCaseSensitive(c, "lr_auto");
    job->lr_auto = cJSON_IsNumber(ja) && ja->valuedouble != 0;
    const cJSON *jz = cJSON_GetObjectItemCaseSensitive(c, "random");
    job->random = cJSON_IsNumber(jz) && jz->valuedouble >= 0 && jz->valuedouble < 8 ? (unsigned)jz->valuedouble : 0;
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(c, "cache_dtype");
    job->cache_f16 = cJSON_IsString(jd) && !strcmp(jd->valuestring, "f16");   /* before the option: f32 */
#undef S_
#undef N_
#undef OPT_
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
