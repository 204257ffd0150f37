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
#include "gf_dist.h"
#include "job_internal.h"

const char *gf_job_method_name(int i) { return gf_method_name((gf_method)i); }

unsigned gf_job_parse_methods(const char *s) {
    unsigned mask = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (!strcasecmp(tok, "all")) { mask |= GF_JOB_ALL; continue; }
        int i = gf_method_parse(tok);
        if (i < 0) return 0;
        mask |= 1u << i;
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
    j->lr = 1e-2f; j->beta1 = 0.5f; j->beta2 = 0.999f; j->weight_decay = 1e-6f; j->momentum = 0.9f;
    j->lr_halve_every = 20;
    j->lr_cosine = 1;
    j->seed = 1;
    j->checkpoint_every = 500;
    j->ntk = 1;
    j->holdout = 0.1f;
    j->select = GF_JOB_SELECT_LAST;
    j->finetune_lr = 1e-4f;
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


/* ---------------- the driver: gf_job_run, in named steps ---------------- */

/* Everything one gf_job_run holds. Each step fills its part; a step runs only while all before it succeeded
 * (but the few lines gf_job_run runs regardless), and job_run_free releases whatever was made. */
typedef struct job_run {
    gf_ctx *ctx;
    const gf_job *job;          /* the caller's job, or `clamped` once the batch is clamped to the data */
    gf_job clamped;
    gf_job_result *res;
    int lock_fd;                /* the run directory, locked and checked writable before any work */
    gf_model *m;
    uint64_t model_hash;        /* FNV-1a 64 of the model file's bytes */
    gf_ckpt ck;                 /* --resume: the checkpoint (have_ck), at ck_path */
    int have_ck;
    char ck_path[1200];
    int bi;                     /* the top block and its input shape (S floats per sample) */
    int c, h, w, S;
    cJSON *config;              /* the configuration a checkpoint must match */
    long metrics_bytes;         /* --resume: metrics.jsonl's length at the checkpoint (-1: none) */
    uint64_t metrics_hash;
    cJSON *files;               /* --resume: the run's files the checkpoint vouches for */
    gf_dataset *dtr, *dva;      /* training and evaluation data, the subsets itr / iva */
    int K, multi, ntr, nva;
    int *itr, *iva;
    unsigned char *oktr, *okva; /* per sample of the subsets: the trunk pass got it */
    gf_block *blk;
    float *theta;
    gf_act_store atr, ava;      /* the trunk outputs */
    int *ltr, *lva;
    float *ttr, *tva;
    gf_cached_set str, sva, sho;   /* training, evaluation and held-out sets */
    FILE *log;                  /* RUN_DIR/metrics.jsonl */
    epoch_ctx ec;
    gf_train_result tres;
} job_run;

/* The run directory's lock, the model and its bytes' hash, and on --resume the checkpoint: a resume must
 * name the model the checkpoint was written for before anything else is looked up in it (another
 * architecture has other blocks). */
static gf_status open_model(job_run *J) {
    gf_ctx *ctx = J->ctx;
    const gf_job *job = J->job;
    /* several processes: rank 0 owns the run directory (the others only read a checkpoint from it) */
    gf_status st = job->run_dir && gf_dist_rank() == 0 ? gf_run_dir_lock(ctx, job->run_dir, &J->lock_fd) : GF_OK;
    if (st == GF_OK) st = gf_model_load(ctx, job->model_path, &J->m);
    if (job->run_dir) snprintf(J->ck_path, sizeof J->ck_path, "%s/checkpoint.gfckpt", job->run_dir);
    if (st == GF_OK) {
        void *bytes; size_t len;
        st = gf_read_file(ctx, job->model_path, &bytes, &len);
        if (st == GF_OK) { J->model_hash = gf_fnv1a(GF_FNV_INIT, bytes, len); free(bytes); }
    }
    if (st == GF_OK && job->resume) {
        struct stat sb;
        if (!job->run_dir) st = gf_fail(ctx, GF_ERR_USAGE, "--resume needs the run directory");
        else if (stat(J->ck_path, &sb) != 0)
            st = gf_fail(ctx, GF_ERR_INPUT, "--resume: no checkpoint %s (the run finished, or never reached its first "
                         "step)", J->ck_path);
        if (st == GF_OK) st = gf_ckpt_read(ctx, J->ck_path, &J->ck);
        J->have_ck = st == GF_OK;
        if (st == GF_OK) st = gf_job_check_resume_model(ctx, J->ck_path, &J->ck, job->model_path, J->model_hash);
    }
    return st;
}

/* The top block (--top-blocks, --top, or the model's last), its nodes and input shape; res->top. */
static gf_status find_top_block(job_run *J) {
    gf_ctx *ctx = J->ctx;
    const gf_job *job = J->job;
    gf_model *m = J->m;
    gf_model_info mi;
    gf_status st = GF_OK;
    gf_model_get_info(m, &mi);
    if (mi.n_blocks == 0) st = gf_fail(ctx, GF_ERR_INPUT, "%s has no linearizable top block", job->model_path);
    else if (job->top_blocks > 0 && (J->bi = gf_model_top_blocks(m, job->top_blocks)) < 0)
        st = gf_fail(ctx, GF_ERR_USAGE, "--top-blocks %d: %s has only %d blocks (gradfeat info lists them)",
                     job->top_blocks, job->model_path, mi.n_blocks);
    else if (job->top_blocks <= 0 && job->top && (J->bi = gf_model_find_block(m, job->top)) < 0) {
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
    if (st == GF_OK) {
        gf_model_block_input(m, J->bi, &J->c, &J->h, &J->w);
        gf_block_info b;
        gf_model_block(m, J->bi, &b);
        snprintf(J->res->top, sizeof J->res->top, "%s", b.name);
    }
    return st;
}

/* The configuration a checkpoint must match; on --resume, the checkpoint's against it and the run
 * directory's files against those the checkpoint vouches for. */
static gf_status check_resume_config(job_run *J) {
    gf_ctx *ctx = J->ctx;
    const gf_job *job = J->job;
    gf_status st = GF_OK;
    J->config = gf_job_config_json(job, J->res->top, J->model_hash);
    if (J->have_ck) {
        st = gf_job_check_resume(ctx, J->ck_path, &J->ck, J->config, &J->metrics_bytes);
        if (st == GF_OK)
            st = gf_job_check_resume_files(ctx, job->run_dir, J->ck_path, &J->ck, J->metrics_bytes, &J->metrics_hash,
                                           &J->files);
        if (st == GF_OK && !job->quiet) {
            if (J->ck.active)
                gf_progress(ctx, GF_PROGRESS_LINE, "resuming from %s: %s, epoch %d, step %d of the epoch", J->ck_path,
                            gf_method_name((gf_method)J->ck.method), J->ck.epoch + 1, J->ck.steps);
            else
                gf_progress(ctx, GF_PROGRESS_LINE, "resuming from %s: between methods", J->ck_path);
        }
    }
    return st;
}

/* The training and evaluation data (same classes), and their seeded subsets. */
static gf_status open_data(job_run *J) {
    gf_ctx *ctx = J->ctx;
    const gf_job *job = J->job;
    char err[1024];
    gf_dataset_options dopt;
    gf_dataset_options_init(&dopt);
    dopt.split = job->data_split;
    gf_status st = gf_dataset_open(job->data_path, &dopt, &J->dtr, err, sizeof err);
    if (st != GF_OK) st = gf_fail(ctx, st, "%s", err);
    if (st == GF_OK && job->val_path) {
        dopt.split = job->val_split;
        gf_status ds = gf_dataset_open(job->val_path, &dopt, &J->dva, err, sizeof err);
        if (ds != GF_OK) st = gf_fail(ctx, ds, "%s", err);
    }
    gf_dataset *dtr = J->dtr, *dva = J->dva;
    int K = J->K = st == GF_OK ? gf_dataset_num_classes(dtr) : 0;
    J->multi = st == GF_OK && gf_dataset_is_multi_label(dtr);
    for (int k = 0; st == GF_OK && dva && k < K && k < gf_dataset_num_classes(dva); k++) {
        const char *a = gf_dataset_class_name(dtr, k), *b = gf_dataset_class_name(dva, k);
        if (a && b && strcmp(a, b))
            st = gf_fail(ctx, GF_ERR_INPUT, "class %d is '%s' in the training data but '%s' in the evaluation data %s: "
                         "both must have the same classes (every class present in each split)", k, a, b, job->val_path);
    }
    if (st == GF_OK && dva && gf_dataset_num_classes(dva) != K)
        st = gf_fail(ctx, GF_ERR_INPUT, "training data has %d classes but evaluation data %s has %d", K, job->val_path,
                     gf_dataset_num_classes(dva));
    if (st == GF_OK) {
        J->itr = gf_seeded_subset(gf_dataset_count(dtr), job->limit_train, job->seed, &J->ntr);
        if (dva) J->iva = gf_seeded_subset(gf_dataset_count(dva), job->limit_val, job->seed + 1, &J->nva);
        J->oktr = malloc((size_t)J->ntr + 1);
        if (dva) J->okva = malloc((size_t)J->nva + 1);
        if (!J->itr || !J->oktr || (dva && (!J->iva || !J->okva)))
            st = gf_fail(ctx, GF_ERR_MEMORY, "out of host memory");
    }
    return st;
}

/* A batch larger than the data buys nothing and would size the block's and the trunk pass's buffers for
 * it (--batch 1000000 on 6 images took 8 GB): clamp it, results are unchanged. */
static void clamp_batch(job_run *J) {
    int most = J->ntr > J->nva ? J->ntr : J->nva;
    if (J->job->batch > most && (J->ntr > 0 || J->nva > 0)) {
        J->clamped = *J->job;
        J->clamped.batch = most;
        J->job = &J->clamped;
    }
}

/* The top block on the device and θ̄, its pre-trained parameters (shuffled first for --random theta1/theta2). */
static gf_status make_block(job_run *J) {
    gf_ctx *ctx = J->ctx;
    const gf_job *job = J->job;
    gf_status st = gf_model_block_create(ctx, J->m, J->bi, job->batch, &J->blk);
    if (st == GF_OK && !(J->theta = malloc(gf_block_param_count(J->blk) * sizeof(float))))
        st = gf_fail(ctx, GF_ERR_MEMORY, "out of memory");
    if (st == GF_OK && (job->random & (GF_JOB_RANDOM_THETA1 | GF_JOB_RANDOM_THETA2)))
        st = gf_model_randomize(ctx, J->m, J->bi, (job->random & GF_JOB_RANDOM_THETA1) != 0,
                                (job->random & GF_JOB_RANDOM_THETA2) != 0, job->seed);
    if (st == GF_OK) st = gf_model_block_theta(ctx, J->m, J->bi, J->blk, J->theta);
    return st;
}

/* A classifier needs two classes: one class trains to loss 0 and 100 % and means nothing (multi-label: one
 * label that is on some rows and not on others). */
static gf_status check_labels(job_run *J) {
    gf_ctx *ctx = J->ctx;
    const gf_job *job = J->job;
    gf_dataset *dtr = J->dtr;
    const int *itr = J->itr;
    int ntr = J->ntr, K = J->K;
    gf_status st = GF_OK;
    if (!J->multi && ntr > 0) {
        int first = gf_dataset_label(dtr, itr[0]), other = 0;
        for (int i = 1; i < ntr && !other; i++) other = gf_dataset_label(dtr, itr[i]) != first;
        if (!other)
            st = gf_fail(ctx, GF_ERR_INPUT, "training data %s: all %d samples%s are of one class ('%s'): a classifier "
                         "needs at least two classes", job->data_path, ntr, job->limit_train ? " of the --limit subset" : "",
                         gf_dataset_class_name(dtr, first) ? gf_dataset_class_name(dtr, first) : "?");
    } else if (J->multi && ntr > 0) {
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
    return st;
}

/* The samples' content belongs to the job (config's data_fnv1a64): a resume on changed data would mix two
 * trainings. */
static gf_status check_data_key(job_run *J) {
    gf_status st = GF_OK;
    uint64_t dk = GF_FNV_INIT;
    for (int i = 0; i < J->ntr; i++) {
        uint64_t k = gf_dataset_sample_key(J->dtr, J->itr[i]);
        dk = gf_fnv1a(dk, &k, sizeof k);
    }
    for (int i = 0; J->dva && i < J->nva; i++) {
        uint64_t k = gf_dataset_sample_key(J->dva, J->iva[i]);
        dk = gf_fnv1a(dk, &k, sizeof k);
    }
    char hex[32];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)dk);
    if (J->config) cJSON_AddStringToObject(J->config, "data_fnv1a64", hex);
    cJSON *meta = J->have_ck && J->ck.meta ? cJSON_Parse(J->ck.meta) : NULL;
    const cJSON *was = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(meta, "config"), "data_fnv1a64");
    if (J->have_ck && (!cJSON_IsString(was) || strcmp(was->valuestring, hex)))
        st = gf_fail(J->ctx, GF_ERR_INPUT, "--resume: the training or evaluation data changed since checkpoint %s was "
                     "written (contents, or file sizes and times); start a new run", J->ck_path);
    cJSON_Delete(meta);
    return st;
}

/* The trunk over the training, then the evaluation subset (actcache.c); refresh: past the activation cache. */
static gf_status trunk_passes(job_run *J, int refresh) {
    const gf_job *job = J->job;
    gf_job_result *res = J->res;
    /* the cache keys start from the model's hash taken when it was opened: the file is not read again */
    gf_status st = gf_trunk_pass(J->ctx, job, &J->model_hash, J->m, J->bi, "train", J->dtr, J->itr, J->ntr, J->S,
                                 &J->atr, J->oktr, refresh, res);
    if (st == GF_OK && J->dva && !res->stopped)
        st = gf_trunk_pass(J->ctx, job, &J->model_hash, J->m, J->bi, "val", J->dva, J->iva, J->nva, J->S, &J->ava,
                           J->okva, refresh, res);
    return st;
}

/* XXH3 64 of the trunk outputs and which samples loaded, training then evaluation subset, in hex. */
static void trunk_digest(const job_run *J, char hex[32]) {
    uint64_t h[4] = {gf_xxh3(J->atr.z0, (size_t)J->ntr * J->S * sizeof(float)), gf_xxh3(J->oktr, (size_t)J->ntr), 0, 0};
    if (J->dva) {
        h[2] = gf_xxh3(J->ava.z0, (size_t)J->nva * J->S * sizeof(float));
        h[3] = gf_xxh3(J->okva, (size_t)J->nva);
    }
    snprintf(hex, 32, "%016llx", (unsigned long long)gf_xxh3(h, sizeof h));
}

/* The trunk outputs belong to the run (config's trunk_xxh3). Their last bits depend on what computed them (the
 * device, its driver, the host BLAS's kernels), and the activation cache hands back whichever bits were written
 * first, by any run on this machine (another device; another build; another --cache-dir than the run began
 * with). A resume on other bits trains on from the checkpoint but cannot end bit-identical to an uninterrupted
 * run: when the cache gave other bits than the checkpoint's, the trunk is run again (the cache file replaced),
 * and when those differ too (another device or machine), the resume says so and goes on. */
static gf_status check_trunk_digest(job_run *J) {
    if (!J->job->run_dir) return GF_OK;   /* no checkpoint, no results.json: nothing to record it in */
    char hex[32];
    trunk_digest(J, hex);
    cJSON *meta = J->have_ck && J->ck.meta ? cJSON_Parse(J->ck.meta) : NULL;
    const cJSON *was = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(meta, "config"), "trunk_xxh3");
    gf_status st = GF_OK;
    /* a checkpoint written before the digest existed has none: nothing to compare */
    if (cJSON_IsString(was) && strcmp(was->valuestring, hex) && J->res->cache_reused) {
        if (!J->job->quiet)
            gf_progress(J->ctx, GF_PROGRESS_LINE, "the activation cache holds other trunk outputs than checkpoint %s "
                        "was trained on (last bits: computed on another device or by another build): running the trunk "
                        "again", J->ck_path);
        J->res->cache_reused = 0;
        st = trunk_passes(J, 1);
        if (st == GF_OK && !J->res->stopped) trunk_digest(J, hex);
    }
    if (st == GF_OK && !J->res->stopped && cJSON_IsString(was) && strcmp(was->valuestring, hex))
        gf_log(J->ctx, GF_LOG_WARN, "the trunk outputs differ in their last bits from those checkpoint %s was trained on "
               "(it was written on another device, driver or host BLAS): the run goes on from the checkpoint, but its "
               "results will not be bit-identical to an uninterrupted run's", J->ck_path);
    if (J->config) {
        cJSON_DeleteItemFromObjectCaseSensitive(J->config, "trunk_xxh3");
        cJSON_AddStringToObject(J->config, "trunk_xxh3", hex);
    }
    cJSON_Delete(meta);
    return st;
}

/* The cached sets gf_train reads, and the held-out part of the training set (--holdout). */
static gf_status make_sets(job_run *J) {
    gf_ctx *ctx = J->ctx;
    const gf_job *job = J->job;
    gf_status st = gf_make_cached_set(ctx, J->dtr, J->itr, J->ntr, J->S, J->atr.z0, J->oktr, J->K, J->multi, &J->str,
                                      &J->ltr, &J->ttr);
    if (st == GF_OK && J->dva)
        st = gf_make_cached_set(ctx, J->dva, J->iva, J->nva, J->S, J->ava.z0, J->okva, J->K, J->multi, &J->sva, &J->lva,
                                &J->tva);
    if (st == GF_OK && job->holdout > 0)
        st = gf_holdout_split(ctx, &J->str, J->atr.z0, J->ltr, J->ttr, job->holdout, job->seed, &J->sho);
    return st;
}

/* RUN_DIR/metrics.jsonl: new, or on resume cut back to the checkpoint's length and appended to. */
static gf_status open_metrics_log(job_run *J) {
    gf_ctx *ctx = J->ctx;
    const gf_job *job = J->job;
    gf_status st = GF_OK;
    char path[1200];
    if (gf_mkdirs(job->run_dir) != 0)
        st = gf_fail(ctx, GF_ERR_IO, "cannot create run directory %s: %s", job->run_dir, strerror(errno));
    snprintf(path, sizeof path, "%s/metrics.jsonl", job->run_dir);
    /* on resume: drop lines logged after the checkpoint, then append */
    if (st == GF_OK && J->have_ck && J->metrics_bytes >= 0 && truncate(path, J->metrics_bytes) != 0 && errno != ENOENT)
        st = gf_fail(ctx, GF_ERR_IO, "cannot truncate %s: %s", path, strerror(errno));
    if (st == GF_OK && !(J->log = fopen(path, J->have_ck ? "a" : "w")))
        st = gf_fail(ctx, GF_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    return st;
}

/* gf_train's options from the job; its callbacks get J->ec. */
static void train_options(job_run *J, gf_train_options *o) {
    const gf_job *job = J->job;
    gf_ctx *ctx = J->ctx;
    gf_train_options_default(o);
    o->epochs = job->epochs; o->probe_epochs = job->probe_epochs ? job->probe_epochs : 10 * job->epochs;
    o->batch = job->batch; o->seed = job->seed;
    o->lr_halve_every = job->lr_halve_every; o->lr_cosine = job->lr_cosine; o->max_device_mem = job->max_device_mem;
    o->cache_half = job->cache_f16; o->quiet = job->quiet;
    o->optim.adam = !job->sgd; o->optim.lr = job->lr; o->optim.beta1 = job->beta1; o->optim.beta2 = job->beta2;
    o->optim.momentum = job->momentum; o->optim.weight_decay = job->weight_decay; o->optim.clip_norm = job->clip_norm;
    o->ntk = job->ntk; o->eval_every = job->eval_every; o->grad_chunk = job->grad_chunk;
    o->holdout = J->sho.n > 0 ? &J->sho : NULL;
    o->select = job->select;
    o->probe_solver = job->probe_sgd ? GF_PROBE_SGD : GF_PROBE_LBFGS;
    o->probe_l2 = job->probe_l2;
    o->probe_lr = job->probe_lr;
    o->finetune_lr = job->finetune_lr > 0 ? job->finetune_lr : job->lr / 10;
    o->lr_auto = job->lr_auto;
    o->random_omega = (job->random & GF_JOB_RANDOM_OMEGA) != 0;
    o->on_epoch = on_epoch; o->user = &J->ec;
    o->on_step = on_step;
    o->report_seconds = ctx->progress_live ? 0.5 : job->log_every_secs > 0 ? job->log_every_secs : 0;
    o->report_steps = ctx->progress_live ? 0 : (job->log_every > 0 ? job->log_every : 50);
    o->on_method = gf_job_save_model;
    o->checkpoint_path = job->run_dir ? J->ck_path : NULL;
    o->checkpoint_every = job->checkpoint_every;
    o->stop = job->stop;
    o->checkpoint_meta = gf_job_checkpoint_meta;
    o->resume = J->have_ck ? &J->ck : NULL;
}

/* Each rank's device name, gathered to every rank (a collective), as a JSON array for results.json. */
static gf_status rank_devices(gf_ctx *ctx, cJSON **out) {
    enum { W = 256 };
    int P = gf_dist_size();
    char *names = calloc((size_t)P, W);
    if (!names) return gf_fail(ctx, GF_ERR_MEMORY, "out of memory");
    snprintf(names + (size_t)gf_dist_rank() * W, W, "%s", ctx->info.name);
    gf_status st = gf_dist_allgather_rows(ctx, names, P, 1, W);
    *out = st == GF_OK ? cJSON_CreateArray() : NULL;
    for (int r = 0; *out && r < P; r++) cJSON_AddItemToArray(*out, cJSON_CreateString(names + (size_t)r * W));
    free(names);
    return st;
}

/* gf_train's per-method results into the job's. */
static void copy_results(job_run *J) {
    const gf_job *job = J->job;
    gf_job_result *res = J->res;
    const gf_train_result *tres = &J->tres;
    res->cache_on_device = tres->cache_on_device;
    res->cache_bytes = tres->cache_bytes; res->primal_cache_bytes = tres->primal_cache_bytes;
    res->cache_seconds = tres->cache_seconds; res->features_seconds = tres->features_seconds;
    for (int i = 0; i < 4; i++) {
        if (i == 0 && !(job->methods & 1u)) continue;   /* trained for ω̄ but not asked for */
        res->ran[i] = tres->m[i].ran;
        res->train_loss[i] = tres->m[i].train_loss; res->train_metric[i] = tres->m[i].train_metric;
        res->val_loss[i] = tres->m[i].val_loss; res->val_metric[i] = tres->m[i].val_metric;
        res->seconds[i] = tres->m[i].seconds;
        res->hold_loss[i] = tres->m[i].hold_loss; res->hold_metric[i] = tres->m[i].hold_metric;
        res->best_epoch[i] = tres->m[i].best_epoch; res->epochs_run[i] = tres->m[i].epochs_run;
        res->diverged[i] = tres->m[i].diverged;
        res->lr[i] = i ? tres->m[i].lr : NAN;
    }
    res->probe_l2 = tres->m[0].probe_l2;
    res->lr_auto_used = job->lr_auto && res->n_hold > 0;
    res->select = job->select;
}

static void job_run_free(job_run *J) {
    if (J->log) fclose(J->log);
    if (J->ec.json) fclose(J->ec.json);
    cJSON_Delete(J->config);
    cJSON_Delete(J->ec.files);
    cJSON_Delete(J->files);
    free(J->ec.meta);
    gf_ckpt_free(&J->ck);
    gf_train_result_free(&J->tres);
    gf_act_store_free(&J->atr); gf_act_store_free(&J->ava);
    free(J->theta); free(J->ttr); free(J->tva); free(J->itr); free(J->iva); free(J->ltr); free(J->lva);
    free(J->oktr); free(J->okva);
    gf_dataset_free(J->dtr); gf_dataset_free(J->dva);
    gf_block_free(J->blk);
    gf_model_free(J->m);
    if (J->lock_fd >= 0) close(J->lock_fd);
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
    job_run run, *J = &run;
    memset(J, 0, sizeof *J);
    J->ctx = ctx; J->job = job; J->res = res;
    J->lock_fd = -1; J->metrics_bytes = -1; J->metrics_hash = GF_FNV_INIT;
    gf_status st = open_model(J);
    if (st == GF_OK) st = find_top_block(J);
    if (st == GF_OK) st = check_resume_config(J);
    if (st == GF_OK) st = open_data(J);
    J->S = J->c * J->h * J->w;
    if (st == GF_OK) clamp_batch(J);
    job = J->job;
    if (st == GF_OK) st = make_block(J);
    if (st == GF_OK) st = check_labels(J);
    if (st == GF_OK) st = check_data_key(J);
    if (st == GF_OK) st = trunk_passes(J, 0);
    if (st == GF_OK && !res->stopped) st = check_trunk_digest(J);
    if (!job->quiet && J->dtr) gf_job_report_dataset(ctx, J->dtr);
    if (!job->quiet && J->dva) gf_job_report_dataset(ctx, J->dva);
    if (st == GF_OK && !res->stopped) st = make_sets(J);
    res->n_hold = J->sho.n;
    res->n_train = J->str.n; res->n_val = J->dva ? J->sva.n : 0; res->classes = J->K; res->multi_label = J->multi;
    int writer = gf_dist_rank() == 0;   /* several processes: only rank 0 writes files */
    if (st == GF_OK && job->run_dir && !res->stopped && writer) st = open_metrics_log(J);
    J->ec = (epoch_ctx){job, J->log, J->multi, ctx, J->config, NULL, J->blk, res->top,
                        J->multi ? "sigmoid_bce" : "softmax", J->dtr, J->dva ? &J->sva : NULL, NULL,
                        J->files ? J->files : cJSON_CreateObject(), J->metrics_hash};
    J->files = NULL;
    gf_train_options o;
    train_options(J, &o);
    if (!writer) o.on_method = NULL;   /* the models and per-method records */
    if (st == GF_OK && writer && job->log_json && !(J->ec.json = fopen(job->log_json, "w")))
        st = gf_fail(ctx, GF_ERR_IO, "cannot write --log-json %s: %s", job->log_json, strerror(errno));
    if (st == GF_OK && !res->stopped)
        st = gf_train(ctx, J->blk, J->theta, &J->str, J->dva ? &J->sva : NULL, job->methods, &o, &J->tres);
    if (st == GF_OK) copy_results(J);
    res->checkpoints = J->tres.checkpoints;
    if (st == GF_OK && J->tres.stopped) {
        res->stopped = 1;
        /* run., not J->: so that -Wformat-truncation knows ck_path's size */
        if (job->run_dir) snprintf(res->checkpoint, sizeof res->checkpoint, "%s", run.ck_path);
    }
    cJSON *devices = NULL;   /* every rank takes part (the same condition on all) */
    if (st == GF_OK && !res->stopped && job->run_dir) st = rank_devices(ctx, &devices);
    if (st == GF_OK && !res->stopped && job->run_dir && writer) {
        st = gf_job_write_results(ctx, job, res, J->dtr, J->config, devices);
        if (st == GF_OK) unlink(J->ck_path);   /* finished: the saved models and results are the outputs */
    }
    cJSON_Delete(devices);
    job_run_free(J);
    return st;
}
