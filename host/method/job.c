/* Training jobs: model + data -> trunk pass (cached on disk by content; actcache.c) ->
 * gf_train over the cached trunk outputs -> table and run directory (rundir.c, adapted.c).
 * This file: the job's options and the driver, gf_job_run. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "gradfeat_data.h"
#include "gradfeat_train.h"
#include "model.h"
#include "train.h"
#include "gf_file.h"
#include "job_internal.h"

static const char *METHOD_NAMES[4] = {"linear", "gradient", "full", "finetune"};
const char *gf_job_method_name(int i) { return i >= 0 && i < 4 ? METHOD_NAMES[i] : "?"; }

unsigned gf_job_parse_methods(const char *s) {
    unsigned mask = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (!strcasecmp(tok, "all")) { mask |= GF_JOB_ALL; continue; }
        int found = 0;
        for (int i = 0; i < 4; i++) if (!strcasecmp(tok, METHOD_NAMES[i])) { mask |= 1u << i; found = 1; }
        if (!found) return 0;
    }
    return mask;
}

int gf_job_parse_random(const char *s) {
    static const char *names[3] = {"theta1", "theta2", "omega"};
    int mask = 0;
    if (!s || !*s || !strcmp(s, "none")) return 0;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int k = 0;
        while (k < 3 && strcmp(t, names[k])) k++;
        if (k == 3) return -1;
        mask |= 1 << k;
    }
    return mask;
}

void gf_job_defaults(gf_job *j) {
    memset(j, 0, sizeof *j);
    j->methods = GF_JOB_ALL;
    j->epochs = 10;
    j->batch = 64;
    j->lr = 1e-3f; j->beta1 = 0.5f; j->beta2 = 0.999f; j->weight_decay = 1e-6f; j->momentum = 0.9f;
    j->lr_halve_every = 20;
    j->lr_cosine = 1;
    j->seed = 1;
    j->checkpoint_every = 500;
    j->ntk = 1;
    j->holdout = 0.1f;
    j->select = GF_JOB_SELECT_LOSS;
    j->probe_l2 = -1;
    j->log_every_secs = 30;
}

/* Progress inside an epoch (GF_PROGRESS_STEP): every 0.5 s when the caller draws them over each other
 * (a terminal), else every --log-every steps; --log-json gets one object per report. */
static void on_step(void *user, gf_method m, int epoch, int epochs, int step, int steps, double loss, double acc,
                    double ips, double secs) {
    epoch_ctx *ec = user;
    if (!ec->job->quiet) {
        char el[16], eta[16], bar[21];
        int fill = steps ? 20 * step / steps : 20;
        for (int i = 0; i < 20; i++) bar[i] = i < fill ? '#' : '.';
        bar[20] = 0;
        gf_fmt_secs(el, sizeof el, secs);
        gf_fmt_secs(eta, sizeof eta, step ? secs / step * (steps - step) + secs / step * steps * (epochs - epoch) : 0);
        char a[32] = "";
        if (!isnan(acc)) snprintf(a, sizeof a, " acc %.1f%%", 100 * acc);
        gf_progress(ec->ctx, GF_PROGRESS_STEP, "[%-8s] epoch %d/%d [%s] step %d/%d loss %.4f%s %.0f img/s %s ETA %s",
                    gf_method_name(m), epoch, epochs, bar, step, steps, loss, a, ips, el, eta);
    }
    if (ec->json) {
        fprintf(ec->json, "{\"type\":\"step\",\"method\":\"%s\",\"epoch\":%d,\"step\":%d,\"steps\":%d,\"loss\":%.6g,"
                "\"accuracy\":%.6g,\"images_per_s\":%.4g,\"seconds\":%.4g}\n", gf_method_name(m), epoch, step, steps, loss,
                isnan(acc) ? -1.0 : acc, ips, secs);
        fflush(ec->json);
    }
}

static void on_epoch(void *user, gf_method m, int epoch, int epochs, double tl, double tm, double vl, double vm,
                     double hl, double hm, double secs) {
    epoch_ctx *ec = user;
    const char *mn = ec->multi ? "mAP" : "acc";
    if (ec->json) {
        fprintf(ec->json, "{\"type\":\"epoch\",\"method\":\"%s\",\"epoch\":%d,\"epochs\":%d,\"train_loss\":%.6g,"
                "\"train_metric\":%.6g,\"val_loss\":%.6g,\"val_metric\":%.6g,\"holdout_loss\":%.6g,\"holdout_metric\":%.6g,"
                "\"seconds\":%.4g}\n", gf_method_name(m), epoch, epochs, tl, isnan(tm) ? -1.0 : tm, isnan(vl) ? -1.0 : vl,
                isnan(vm) ? -1.0 : vm, isnan(hl) ? -1.0 : hl, isnan(hm) ? -1.0 : hm, secs);
        fflush(ec->json);
    }
    if (!ec->job->quiet) {
        char t[32] = "", h[64] = "", v[64] = "";
        if (!isnan(tm)) snprintf(t, sizeof t, " %s %.4f", mn, tm);
        if (!isnan(hl)) snprintf(h, sizeof h, " | holdout loss %.4f %s %.4f", hl, mn, hm);
        if (!isnan(vl)) snprintf(v, sizeof v, " | val loss %.4f %s %.4f", vl, mn, vm);
        gf_progress(ec->ctx, GF_PROGRESS_LINE, "[%-8s] epoch %3d/%-3d train loss %.4f%s%s%s  (%.1f s, ETA %.0f s)",
                    gf_method_name(m), epoch, epochs, tl, t, h, v, secs, secs * (epochs - epoch));
    }
    if (ec->log) {
        char line[1024];
        int n = snprintf(line, sizeof line, "{\"method\":\"%s\",\"epoch\":%d,\"epochs\":%d,\"train_loss\":%.6g,"
                         "\"train_metric\":%.6g,\"val_loss\":%.6g,\"val_metric\":%.6g,\"holdout_loss\":%.6g,"
                         "\"holdout_metric\":%.6g,\"seconds\":%.4g}\n", gf_method_name(m), epoch, epochs, tl,
                         isnan(tm) ? -1.0 : tm, isnan(vl) ? -1.0 : vl, isnan(vm) ? -1.0 : vm, isnan(hl) ? -1.0 : hl,
                         isnan(hm) ? -1.0 : hm, secs);
        if (n > 0 && (size_t)n < sizeof line) {
            fputs(line, ec->log);
            ec->metrics_hash = gf_fnv1a(ec->metrics_hash, line, (size_t)n);
        }
        fflush(ec->log);
    }
}


gf_status gf_job_run(gf_ctx *ctx, const gf_job *job, gf_job_result *res) {
    memset(res, 0, sizeof *res);
    for (int i = 0; i < 4; i++)
        res->train_metric[i] = res->val_loss[i] = res->val_metric[i] = res->hold_loss[i] = res->hold_metric[i] = NAN;
    res->probe_l2 = NAN;
    for (int i = 0; i < 4; i++) res->lr[i] = NAN;
    if (!job->model_path || !job->data_path) return gf_fail(ctx, GF_ERR_USAGE, "a model (--model) and data (--data) are needed");
    if (job->batch < 1 || job->epochs < 1) return gf_fail(ctx, GF_ERR_USAGE, "--batch and --epochs must be at least 1");
    if (!job->methods) return gf_fail(ctx, GF_ERR_USAGE, "no method selected");
    gf_model *m = NULL;
    gf_block *blk = NULL;
    gf_dataset *dtr = NULL, *dva = NULL;
    float *theta = NULL, *ttr = NULL, *tva = NULL;
    gf_act_store atr = {0}, ava = {0};
    int *itr = NULL, *iva = NULL, *ltr = NULL, *lva = NULL;
    unsigned char *oktr = NULL, *okva = NULL;
    FILE *log = NULL;
    gf_train_result tres = {0};
    char err[1024];
    int lock_fd = -1;   /* the run directory, locked and checked writable before any work */
    gf_status st = job->run_dir ? gf_run_dir_lock(ctx, job->run_dir, &lock_fd) : GF_OK;
    if (st == GF_OK) st = gf_model_load(ctx, job->model_path, &m);
    /* the checkpoint, on --resume, and the model's bytes: a resume must name the model the checkpoint was
     * written for before anything else is looked up in it (another architecture has other blocks) */
    gf_ckpt ck = {0};
    int have_ck = 0;
    char ck_path[1200] = "";
    uint64_t model_hash = 0;
    if (job->run_dir) snprintf(ck_path, sizeof ck_path, "%s/checkpoint.gfckpt", job->run_dir);
    if (st == GF_OK) {
        void *bytes; size_t len;
        st = gf_read_file(ctx, job->model_path, &bytes, &len);
        if (st == GF_OK) { model_hash = gf_fnv1a(GF_FNV_INIT, bytes, len); free(bytes); }
    }
    if (st == GF_OK && job->resume) {
        struct stat sb;
        if (!job->run_dir) st = gf_fail(ctx, GF_ERR_USAGE, "--resume needs the run directory");
        else if (stat(ck_path, &sb) != 0)
            st = gf_fail(ctx, GF_ERR_INPUT, "--resume: no checkpoint %s (the run finished, or never reached its first "
                         "step)", ck_path);
        if (st == GF_OK) st = gf_ckpt_read(ctx, ck_path, &ck);
        have_ck = st == GF_OK;
        if (st == GF_OK) st = gf_job_check_resume_model(ctx, ck_path, &ck, job->model_path, model_hash);
    }
    gf_model_info mi;
    int bi = 0;
    if (st == GF_OK) {
        gf_model_get_info(m, &mi);
        if (mi.n_blocks == 0) st = gf_fail(ctx, GF_ERR_INPUT, "%s has no linearizable top block", job->model_path);
        else if (job->top_blocks > 0 && (bi = gf_model_top_blocks(m, job->top_blocks)) < 0)
            st = gf_fail(ctx, GF_ERR_USAGE, "--top-blocks %d: %s has only %d blocks (gradfeat info lists them)",
                         job->top_blocks, job->model_path, mi.n_blocks);
        else if (job->top_blocks <= 0 && job->top && (bi = gf_model_find_block(m, job->top)) < 0) {
            char list[512] = "";
            for (int i = 0; i < mi.n_blocks; i++) {
                gf_block_info b;
                gf_model_block(m, i, &b);
                strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
                strncat(list, b.name, sizeof list - strlen(list) - 1);
            }
            st = gf_fail(ctx, GF_ERR_USAGE, "--top %s: no such block in %s (blocks: %s; a lower block trains every block "
                         "above it too, and A..B must end at the top block)", job->top, job->model_path, list);
        }
    }
    gf_bnode nodes[GF_BLOCK_MAX_NODES];
    int nn = 0, c = 0, h = 0, w = 0;
    if (st == GF_OK) st = gf_model_block_nodes(ctx, m, bi, nodes, &nn, &c, &h, &w);
    if (st == GF_OK) {
        gf_block_info b;
        gf_model_block(m, bi, &b);
        snprintf(res->top, sizeof res->top, "%s", b.name);
    }
    /* the configuration a checkpoint must match */
    cJSON *config = NULL;
    long metrics_bytes = -1;
    uint64_t metrics_hash = GF_FNV_INIT;
    cJSON *files = NULL;
    if (st == GF_OK) config = gf_job_config_json(job, res->top, model_hash);
    if (st == GF_OK && have_ck) {
        st = gf_job_check_resume(ctx, ck_path, &ck, config, &metrics_bytes);
        if (st == GF_OK) st = gf_job_check_resume_files(ctx, job->run_dir, ck_path, &ck, metrics_bytes, &metrics_hash, &files);
        if (st == GF_OK && !job->quiet)
        {
            if (ck.active)
                gf_progress(ctx, GF_PROGRESS_LINE, "resuming from %s: %s, epoch %d, step %d of the epoch", ck_path,
                            gf_method_name((gf_method)ck.method), ck.epoch + 1, ck.steps);
            else
                gf_progress(ctx, GF_PROGRESS_LINE, "resuming from %s: between methods", ck_path);
        }
    }
    /* data */
    gf_dataset_options dopt;
    gf_dataset_options_init(&dopt);
    dopt.split = job->data_split;
    if (st == GF_OK) {
        gf_status ds = gf_dataset_open(job->data_path, &dopt, &dtr, err, sizeof err);
        if (ds != GF_OK) st = gf_fail(ctx, ds, "%s", err);
    }
    if (st == GF_OK && job->val_path) {
        dopt.split = job->val_split;
        gf_status ds = gf_dataset_open(job->val_path, &dopt, &dva, err, sizeof err);
        if (ds != GF_OK) st = gf_fail(ctx, ds, "%s", err);
    }
    int K = st == GF_OK ? gf_dataset_num_classes(dtr) : 0, multi = st == GF_OK && gf_dataset_is_multi_label(dtr);
    for (int k = 0; st == GF_OK && dva && k < K && k < gf_dataset_num_classes(dva); k++) {
        const char *a = gf_dataset_class_name(dtr, k), *b = gf_dataset_class_name(dva, k);
        if (a && b && strcmp(a, b))
            st = gf_fail(ctx, GF_ERR_INPUT, "class %d is '%s' in the training data but '%s' in the evaluation data %s: "
                         "both must have the same classes (every class present in each split)", k, a, b, job->val_path);
    }
    if (st == GF_OK && dva && gf_dataset_num_classes(dva) != K)
        st = gf_fail(ctx, GF_ERR_INPUT, "training data has %d classes but evaluation data %s has %d", K, job->val_path,
                     gf_dataset_num_classes(dva));
    int ntr = 0, nva = 0, S = c * h * w;
    if (st == GF_OK) {
        itr = gf_seeded_subset(gf_dataset_count(dtr), job->limit_train, job->seed, &ntr);
        if (dva) iva = gf_seeded_subset(gf_dataset_count(dva), job->limit_val, job->seed + 1, &nva);
        oktr = malloc((size_t)ntr + 1);
        if (dva) okva = malloc((size_t)nva + 1);
        if (!itr || !oktr || (dva && (!iva || !okva))) st = gf_fail(ctx, GF_ERR_MEMORY, "out of host memory");
    }
    /* a batch larger than the data buys nothing and would size the block's and the trunk pass's buffers for
     * it (--batch 1000000 on 6 images took 8 GB): clamp it, results are unchanged */
    gf_job clamped;
    if (st == GF_OK && job->batch > (ntr > nva ? ntr : nva) && (ntr > 0 || nva > 0)) {
        clamped = *job;
        clamped.batch = ntr > nva ? ntr : nva;
        job = &clamped;
    }
    if (st == GF_OK) st = gf_block_create(ctx, c, h, w, nodes, nn, job->batch, &blk);
    if (st == GF_OK && !(theta = malloc(gf_block_param_count(blk) * sizeof(float)))) st = gf_fail(ctx, GF_ERR_MEMORY, "out of memory");
    if (st == GF_OK && (job->random & (GF_JOB_RANDOM_THETA1 | GF_JOB_RANDOM_THETA2)))
        st = gf_model_randomize(ctx, m, bi, (job->random & GF_JOB_RANDOM_THETA1) != 0,
                                (job->random & GF_JOB_RANDOM_THETA2) != 0, job->seed);
    if (st == GF_OK) st = gf_model_block_theta(ctx, m, bi, blk, theta);
    /* a classifier needs two classes: one class trains to loss 0 and 100 % and means nothing */
    if (st == GF_OK && !multi && ntr > 0) {
        int first = gf_dataset_label(dtr, itr[0]), other = 0;
        for (int i = 1; i < ntr && !other; i++) other = gf_dataset_label(dtr, itr[i]) != first;
        if (!other)
            st = gf_fail(ctx, GF_ERR_INPUT, "training data %s: all %d samples%s are of one class ('%s'): a classifier "
                         "needs at least two classes", job->data_path, ntr, job->limit_train ? " of the --limit subset" : "",
                         gf_dataset_class_name(dtr, first) ? gf_dataset_class_name(dtr, first) : "?");
    } else if (st == GF_OK && multi && ntr > 0) {
        float *a = malloc((size_t)K * sizeof(float)), *b = malloc((size_t)K * sizeof(float));
        int varies = 0;
        if (!a || !b) st = gf_fail(ctx, GF_ERR_MEMORY, "out of host memory");
        else gf_dataset_targets(dtr, itr[0], a);
        for (int i = 1; st == GF_OK && i < ntr && !varies; i++) {
            gf_dataset_targets(dtr, itr[i], b);
            varies = memcmp(a, b, (size_t)K * sizeof(float)) != 0;
        }
        if (st == GF_OK && !varies)
            st = gf_fail(ctx, GF_ERR_INPUT, "training data %s: all %d samples carry the same labels: a multi-label "
                         "classifier needs at least one label that is on some rows and not on others", job->data_path, ntr);
        free(a); free(b);
    }
    /* the samples' content belongs to the job: a resume on changed data would mix two trainings */
    if (st == GF_OK) {
        uint64_t dk = GF_FNV_INIT;
        for (int i = 0; i < ntr; i++) { uint64_t k = gf_dataset_sample_key(dtr, itr[i]); dk = gf_fnv1a(dk, &k, sizeof k); }
        for (int i = 0; dva && i < nva; i++) { uint64_t k = gf_dataset_sample_key(dva, iva[i]); dk = gf_fnv1a(dk, &k, sizeof k); }
        char hex[32];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)dk);
        if (config) cJSON_AddStringToObject(config, "data_fnv1a64", hex);
        cJSON *meta = have_ck && ck.meta ? cJSON_Parse(ck.meta) : NULL;
        const cJSON *was = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(meta, "config"), "data_fnv1a64");
        if (have_ck && (!cJSON_IsString(was) || strcmp(was->valuestring, hex)))
            st = gf_fail(ctx, GF_ERR_INPUT, "--resume: the training or evaluation data changed since checkpoint %s was "
                         "written (contents, or file sizes and times); start a new run", ck_path);
        cJSON_Delete(meta);
    }
    if (st == GF_OK) st = gf_trunk_pass(ctx, job, m, bi, "train", dtr, itr, ntr, S, &atr, oktr, res);
    if (st == GF_OK && dva && !res->stopped) st = gf_trunk_pass(ctx, job, m, bi, "val", dva, iva, nva, S, &ava, okva, res);
    if (!job->quiet && dtr) gf_job_report_dataset(ctx, dtr);
    if (!job->quiet && dva) gf_job_report_dataset(ctx, dva);
    gf_cached_set str = {0}, sva = {0};
    if (st == GF_OK && !res->stopped) st = gf_make_cached_set(ctx, dtr, itr, ntr, S, atr.z0, oktr, K, multi, &str, &ltr, &ttr);
    if (st == GF_OK && dva && !res->stopped) st = gf_make_cached_set(ctx, dva, iva, nva, S, ava.z0, okva, K, multi, &sva, &lva, &tva);
    gf_cached_set sho = {0};
    if (st == GF_OK && !res->stopped && job->holdout > 0)
        st = gf_holdout_split(ctx, &str, atr.z0, ltr, ttr, job->holdout, job->seed, &sho);
    res->n_hold = sho.n;
    res->n_train = str.n; res->n_val = dva ? sva.n : 0; res->classes = K; res->multi_label = multi;
    if (st == GF_OK && job->run_dir && !res->stopped) {
        char path[1200];
        if (gf_mkdirs(job->run_dir) != 0) st = gf_fail(ctx, GF_ERR_IO, "cannot create run directory %s: %s", job->run_dir, strerror(errno));
        snprintf(path, sizeof path, "%s/metrics.jsonl", job->run_dir);
        /* on resume: drop lines logged after the checkpoint, then append */
        if (st == GF_OK && have_ck && metrics_bytes >= 0 && truncate(path, metrics_bytes) != 0 && errno != ENOENT)
            st = gf_fail(ctx, GF_ERR_IO, "cannot truncate %s: %s", path, strerror(errno));
        if (st == GF_OK && !(log = fopen(path, have_ck ? "a" : "w")))
            st = gf_fail(ctx, GF_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    }
    epoch_ctx ec = {job, log, multi, ctx, config, NULL, blk, res->top, multi ? "sigmoid_bce" : "softmax", dtr,
                    dva ? &sva : NULL, NULL, files ? files : cJSON_CreateObject(), metrics_hash};
    files = NULL;
    gf_train_options o;
    gf_train_options_default(&o);
    o.epochs = job->epochs; o.probe_epochs = job->probe_epochs ? job->probe_epochs : 10 * job->epochs; o.batch = job->batch; o.seed = job->seed;
    o.lr_halve_every = job->lr_halve_every; o.lr_cosine = job->lr_cosine; o.max_device_mem = job->max_device_mem;
    o.cache_half = job->cache_f16; o.quiet = job->quiet;
    o.optim.adam = !job->sgd; o.optim.lr = job->lr; o.optim.beta1 = job->beta1; o.optim.beta2 = job->beta2;
    o.optim.momentum = job->momentum; o.optim.weight_decay = job->weight_decay; o.optim.clip_norm = job->clip_norm;
    o.ntk = job->ntk; o.eval_every = job->eval_every;
    o.holdout = sho.n > 0 ? &sho : NULL;
    o.select = job->select;
    o.probe_solver = job->probe_sgd ? GF_PROBE_SGD : GF_PROBE_LBFGS;
    o.probe_l2 = job->probe_l2;
    o.probe_lr = job->probe_lr;
    o.finetune_lr = job->finetune_lr > 0 ? job->finetune_lr : job->lr / 10;
    o.lr_auto = job->lr_auto;
    o.random_omega = (job->random & GF_JOB_RANDOM_OMEGA) != 0;
    o.on_epoch = on_epoch; o.user = &ec;
    o.on_step = on_step;
    o.report_seconds = ctx->progress_live ? 0.5 : job->log_every_secs > 0 ? job->log_every_secs : 0;
    o.report_steps = ctx->progress_live ? 0 : (job->log_every > 0 ? job->log_every : 50);
    if (st == GF_OK && job->log_json && !(ec.json = fopen(job->log_json, "w")))
        st = gf_fail(ctx, GF_ERR_IO, "cannot write --log-json %s: %s", job->log_json, strerror(errno));
    o.on_method = gf_job_save_model;
    o.checkpoint_path = job->run_dir ? ck_path : NULL;
    o.checkpoint_every = job->checkpoint_every;
    o.stop = job->stop;
    o.checkpoint_meta = gf_job_checkpoint_meta;
    o.resume = have_ck ? &ck : NULL;
    if (st == GF_OK && !res->stopped) st = gf_train(ctx, blk, theta, &str, dva ? &sva : NULL, job->methods, &o, &tres);
    if (st == GF_OK) {
        res->cache_on_device = tres.cache_on_device;
        res->cache_bytes = tres.cache_bytes; res->primal_cache_bytes = tres.primal_cache_bytes;
        for (int i = 0; i < 4; i++) {
            if (i == 0 && !(job->methods & 1u)) continue;   /* trained for ω̄ but not asked for */
            res->ran[i] = tres.m[i].ran;
            res->train_loss[i] = tres.m[i].train_loss; res->train_metric[i] = tres.m[i].train_metric;
            res->val_loss[i] = tres.m[i].val_loss; res->val_metric[i] = tres.m[i].val_metric;
            res->seconds[i] = tres.m[i].seconds;
            res->hold_loss[i] = tres.m[i].hold_loss; res->hold_metric[i] = tres.m[i].hold_metric;
            res->best_epoch[i] = tres.m[i].best_epoch; res->epochs_run[i] = tres.m[i].epochs_run;
            res->diverged[i] = tres.m[i].diverged;
            res->lr[i] = i ? tres.m[i].lr : NAN;
        }
        res->probe_l2 = tres.m[0].probe_l2;
        res->lr_auto_used = job->lr_auto && res->n_hold > 0;
    }
    res->checkpoints = tres.checkpoints;
    if (st == GF_OK && tres.stopped) {
        res->stopped = 1;
        if (job->run_dir) snprintf(res->checkpoint, sizeof res->checkpoint, "%s", ck_path);
    }
    if (st == GF_OK && !res->stopped && job->run_dir) {
        st = gf_job_write_results(ctx, job, res, dtr, config);
        if (st == GF_OK) unlink(ck_path);   /* finished: the saved models and results are the outputs */
    }
    if (log) fclose(log);
    if (ec.json) fclose(ec.json);
    cJSON_Delete(config);
    cJSON_Delete(ec.files);
    cJSON_Delete(files);
    free(ec.meta);
    gf_ckpt_free(&ck);
    gf_train_result_free(&tres);
    gf_act_store_free(&atr); gf_act_store_free(&ava);
    free(theta); free(ttr); free(tva); free(itr); free(iva); free(ltr); free(lva);
    free(oktr); free(okva);
    gf_dataset_free(dtr); gf_dataset_free(dva);
    gf_block_free(blk);
    gf_model_free(m);
    if (lock_fd >= 0) close(lock_fd);
    return st;
}

