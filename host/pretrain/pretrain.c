/* Pretraining from scratch: the training loop (data, augmentation, rotation task, schedule, evaluation,
 * progress) and its checkpoints; the networks and their export are arch.c's. See pretrain.h and
 * gradfeat_train.h. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "data_internal.h"
#include "gf_dist.h"
#include "model.h"
#include "pretrain.h"
#include "gradfeat_train.h"
#include "runrecord.h"

int gf_pretrain_task_known(const char *name) { return name && (!strcmp(name, "labels") || !strcmp(name, "rotation")); }

/* ------------------------------------------------------------ the training run */
void gf_pretrain_defaults(gf_pretrain_options *o) {
    memset(o, 0, sizeof *o);
    o->arch = "small28";
    o->task = "labels";
    o->epochs = 10;
    o->batch = 128;
    o->lr = 0.05f; o->momentum = 0.9f; o->weight_decay = 5e-4f; o->beta1 = 0.9f; o->beta2 = 0.999f;
    o->augment = 1;
    o->seed = 1;
    o->checkpoint_every = 500;
    o->log_every_secs = 30;
}

static const char CK_MAGIC[8] = {'G', 'F', 'P', 'R', 'E', 'T', '0', '2'};   /* gf_frame_write: "01" still read */

typedef struct run {
    gf_ctx *ctx;
    const gf_pretrain_options *o;
    gf_pretrain_result *r;
    gf_arch arch;
    int rotation, K, S, C, numel, B, max_n, bpe, drop_last, tty;   /* tty: gf_ctx_options.progress_live */
    int P, rank;                    /* several processes (gf_dist.h): each step's batch is split over P ranks */
    gf_dataset *dtr, *dva;
    int *itr, *iva, ntr, nva;
    gf_preprocess pp, pp_aug;
    gf_pt_net *net;
    cJSON *config;
    char ck_path[1100], metrics_path[1100];
    FILE *metrics, *json;
    /* host staging (two, alternating) and the device inputs */
    float *hx[2];
    int *hl[2];
    cl_event ev[2];
    cl_mem x, labels;
    cl_mem xc, lc;                  /* --grad-chunk: one chunk's samples and labels */
    int CH;                         /* --grad-chunk: images per chunk (0: none) */
    int flip;
    /* position */
    int epoch, b0, ep_steps;
    long step;
    double ep_samples, seconds, samples_total;
    double last[4];                 /* train loss, train acc, val loss, val acc of the last epoch */
    float *state;
} run;

static gf_status data_fail(gf_ctx *ctx, gf_status st, const char *err) { return gf_fail(ctx, st, "%s", err); }

/* lr of global step t (0-based) */
static float lr_at(const run *R, long t, int epoch) {
    const gf_pretrain_options *o = R->o;
    if (o->lr_step > 0) return (float)(o->lr * pow(0.5, epoch / o->lr_step));
    double T = (double)o->epochs * R->bpe;
    return (float)(0.5 * o->lr * (1.0 + cos(3.14159265358979323846 * (double)t / T)));
}

/* Per-channel mean and std of the preprocessed (scale 1/255) training images,
 * over up to 10000 of them: the model's normalisation. */
static gf_status measure_norm(run *R) {
    gf_preprocess pp = R->pp;
    for (int c = 0; c < 3; c++) { pp.mean[c] = 0.0f; pp.std[c] = 1.0f; }
    int m;   /* a seeded random subset: datasets stored in class order make evenly spaced picks biased */
    int *idx = gf_seeded_subset(R->ntr, 10000, R->o->seed, &m);
    if (!idx) return gf_fail(R->ctx, GF_ERR_MEMORY, "out of memory");
    for (int i = 0; i < m; i++) idx[i] = R->itr[idx[i]];
    gf_loader_options lo = {0};
    lo.batch_size = 256; lo.seed = R->o->seed; lo.threads = R->o->threads > 0 ? R->o->threads : -1;
    lo.epochs = 1; lo.indices = idx; lo.n_indices = m;
    gf_loader *l = NULL;
    char err[512];
    gf_status st = gf_loader_create(R->dtr, &pp, &lo, &l, err, sizeof err);
    free(idx);
    if (st != GF_OK) return data_fail(R->ctx, st, err);
    double sum[3] = {0}, sq[3] = {0}, cnt = 0;
    size_t hw = (size_t)R->S * R->S;
    for (;;) {
        const gf_batch *b;
        st = gf_loader_next(l, &b, err, sizeof err);
        if (st != GF_OK) { st = data_fail(R->ctx, st, err); break; }
        if (!b) break;
        for (int i = 0; i < b->count; i++)
            for (int c = 0; c < R->C; c++) {
                const float *p = b->x + ((size_t)i * R->C + c) * hw;
                for (size_t k = 0; k < hw; k++) { sum[c] += p[k]; sq[c] += (double)p[k] * p[k]; }
            }
        cnt += (double)b->count * hw;
    }
    gf_loader_free(l);
    if (st != GF_OK) return st;
    if (cnt == 0) return gf_fail(R->ctx, GF_ERR_INPUT, "%s: no training image could be loaded", R->o->data_path);
    for (int c = 0; c < R->C; c++) {
        double mu = sum[c] / cnt, var = sq[c] / cnt - mu * mu;
        R->pp.mean[c] = (float)mu;
        R->pp.std[c] = (float)(var > 1e-12 ? sqrt(var) : 1.0);   /* a constant channel: leave it unscaled */
    }
    return GF_OK;
}

static gf_status open_data(run *R, const char *path, const char *split, int limit, gf_dataset **ds, int **idx, int *n) {
    gf_dataset_options dop;
    gf_dataset_options_init(&dop);
    dop.split = split;
    dop.threads = R->o->threads;
    char err[1024];
    gf_status st = gf_dataset_open(path, &dop, ds, err, sizeof err);
    if (st != GF_OK) return data_fail(R->ctx, st, err);
    if (gf_dataset_is_multi_label(*ds))
        return gf_fail(R->ctx, GF_ERR_INPUT, "%s is multi-label; pretraining needs one class per image (or --task "
                       "rotation, which ignores the labels)", path);
    if (!(*idx = gf_seeded_subset(gf_dataset_count(*ds), limit, R->o->seed, n)))
        return gf_fail(R->ctx, GF_ERR_MEMORY, "out of memory");
    return GF_OK;
}

/* The configuration a checkpoint must match on resume (training-relevant only). */
static cJSON *make_config(const run *R) {
    const gf_pretrain_options *o = R->o;
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "arch", gf_arch_name(R->arch));
    cJSON_AddStringToObject(c, "task", R->rotation ? "rotation" : "labels");
    cJSON_AddNumberToObject(c, "width_div", o->width_div > 1 ? o->width_div : 1);
    cJSON_AddStringToObject(c, "data", o->data_path);
    cJSON_AddStringToObject(c, "split", o->data_split ? o->data_split : "");
    cJSON_AddNumberToObject(c, "limit", o->limit_train);
    cJSON_AddStringToObject(c, "val", o->val_path ? o->val_path : "");
    cJSON_AddStringToObject(c, "val_split", o->val_split ? o->val_split : "");
    cJSON_AddNumberToObject(c, "val_limit", o->limit_val);
    cJSON_AddNumberToObject(c, "size", R->S);
    cJSON_AddNumberToObject(c, "channels", R->C);
    cJSON_AddNumberToObject(c, "n_train", R->ntr);
    cJSON_AddNumberToObject(c, "classes", R->K);
    cJSON_AddNumberToObject(c, "epochs", o->epochs);
    cJSON_AddNumberToObject(c, "batch", o->batch);
    cJSON_AddStringToObject(c, "optimizer", o->adam ? "adam" : "sgd");
    cJSON_AddNumberToObject(c, "lr", o->lr);
    cJSON_AddNumberToObject(c, "momentum", o->momentum);
    cJSON_AddNumberToObject(c, "weight_decay", o->weight_decay);
    cJSON_AddNumberToObject(c, "beta1", o->beta1);
    cJSON_AddNumberToObject(c, "beta2", o->beta2);
    cJSON_AddStringToObject(c, "schedule", o->lr_step > 0 ? "step" : "cosine");
    cJSON_AddNumberToObject(c, "lr_step", o->lr_step);
    cJSON_AddNumberToObject(c, "augment", o->augment);
    cJSON_AddNumberToObject(c, "grad_chunk", o->grad_chunk);
    cJSON_AddNumberToObject(c, "pad", R->pp_aug.pad_crop);
    cJSON_AddNumberToObject(c, "flip", R->pp_aug.hflip);
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
    cJSON_AddStringToObject(c, "seed", seed);
    cJSON *mean = cJSON_AddArrayToObject(c, "mean"), *std = cJSON_AddArrayToObject(c, "std");
    for (int k = 0; k < R->C; k++) {
        cJSON_AddItemToArray(mean, cJSON_CreateNumber(R->pp.mean[k]));
        cJSON_AddItemToArray(std, cJSON_CreateNumber(R->pp.std[k]));
    }
    return c;
}

/* ---- checkpoints: position + every trainable buffer + BN running stats ----
 * No generator state needs saving: initialisation is a function of the seed, and
 * each epoch's order and augmentation are pure functions of (seed, epoch, sample
 * index) (epoch_order, gf_loader_sample_seed), so the position is the RNG state. */
static gf_status checkpoint(run *R, long metrics_bytes) {
    if (!R->o->run_dir) return GF_OK;
    gf_ctx *ctx = R->ctx;
    gf_lin *m = R->net->lin;
    /* several processes: each rank's stats hold its shares' loss and count; the checkpoint holds their
     * sums (a resumed rank 0 starts from them, the others from 0), and rank 0 writes it */
    double sums[2] = {0, 0};
    if (R->P > 1) {
        GF_TRY(gf_lin_peek_stats(ctx, m, &sums[0], &sums[1]));
        GF_TRY(gf_dist_sum_f64(ctx, sums, 2));
        if (R->rank != 0) return GF_OK;
    }
    size_t ns = gf_lin_state_floats(m), nbn = gf_pt_bn_floats(R->net);
    float stats[GF_LIN_STATS];
    long lstep;
    float *bn = malloc((nbn ? nbn : 1) * sizeof(float));
    if (!bn) return gf_fail(ctx, GF_ERR_MEMORY, "out of memory for the checkpoint");
    gf_status st = gf_lin_get_state(ctx, m, R->state, &lstep, stats);
    if (st == GF_OK) st = gf_pt_bn_read(ctx, R->net, bn);
    if (R->P > 1) { stats[0] = (float)sums[0]; stats[1] = (float)sums[1]; }
    cJSON *o = cJSON_CreateObject();
    gf_sink data = {0};
    cJSON *layout = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "config", cJSON_Duplicate(R->config, 1));
    if (R->o->out_path) cJSON_AddStringToObject(o, "out", R->o->out_path);   /* for --resume alone; not compared */
    cJSON_AddNumberToObject(o, "checkpoint_every", R->o->checkpoint_every);  /* same; it does not change results */
    cJSON_AddNumberToObject(o, "epoch", R->epoch);
    cJSON_AddNumberToObject(o, "b0", R->b0);
    cJSON_AddNumberToObject(o, "ep_steps", R->ep_steps);
    cJSON_AddNumberToObject(o, "step", (double)R->step);
    cJSON_AddNumberToObject(o, "metrics_bytes", (double)metrics_bytes);
    double scal[6] = {R->ep_samples, R->seconds, R->last[0], R->last[1], R->last[2], R->last[3]};
    gf_frame_put_array(&data, layout, "scal", scal, 6, sizeof(double));
    gf_frame_put_array(&data, layout, "stats", stats, GF_LIN_STATS, sizeof(float));
    gf_frame_put_array(&data, layout, "state", R->state, ns, sizeof(float));
    gf_frame_put_array(&data, layout, "bn", bn, nbn, sizeof(float));
    cJSON_AddItemToObject(o, "arrays", layout);
    char *json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (st == GF_OK && (!json || data.oom)) st = gf_fail(ctx, GF_ERR_MEMORY, "out of memory writing %s", R->ck_path);
    if (st == GF_OK) st = gf_frame_write(ctx, R->ck_path, CK_MAGIC, json, data.p, data.n);
    if (st == GF_OK) R->r->checkpoints++;
    free(json); free(data.p); free(bn);
    return st;
}

/* Restores a checkpoint into R (position, buffers); *metrics_bytes: how much
 * of metrics.jsonl it had seen. */
static gf_status restore(run *R, long *metrics_bytes) {
    gf_ctx *ctx = R->ctx;
    void *buf = NULL;
    const char *js, *data;
    size_t jl, dl;
    if (access(R->ck_path, F_OK) != 0)
        return gf_fail(ctx, GF_ERR_INPUT, "--resume: no checkpoint %s (was the run started with this --run-dir?)",
                       R->ck_path);
    GF_TRY(gf_frame_read(ctx, R->ck_path, CK_MAGIC, "pretraining checkpoint", &buf, &js, &jl, &data, &dl));
    cJSON *o = cJSON_ParseWithLength(js, jl);
    gf_status st = GF_OK;
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(o, "config"), *layout = cJSON_GetObjectItemCaseSensitive(o, "arrays");
    if (!cJSON_IsObject(cfg) || !cJSON_IsObject(layout))
        st = gf_fail(ctx, GF_ERR_INPUT, "pretraining checkpoint %s: unreadable header", R->ck_path);
    /* the same options: name the first that differs */
    for (const cJSON *it = cfg ? cfg->child : NULL; st == GF_OK && it; it = it->next) {
        const cJSON *mine = cJSON_GetObjectItemCaseSensitive(R->config, it->string);
        if (mine && cJSON_Compare(mine, it, 1)) continue;
        char *a = cJSON_PrintUnformatted(it), *b = mine ? cJSON_PrintUnformatted(mine) : NULL;
        st = gf_fail(ctx, GF_ERR_USAGE, "--resume: '%s' is %s in the checkpoint %s but %s now; resume with the same "
                     "options and data", it->string, a ? a : "?", R->ck_path, b ? b : "missing");
        free(a); free(b);
    }
    double v[5];
    static const char *keys[5] = {"epoch", "b0", "ep_steps", "step", "metrics_bytes"};
    for (int i = 0; i < 5 && st == GF_OK; i++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, keys[i]);
        if (!cJSON_IsNumber(x) || !(x->valuedouble >= 0 && x->valuedouble < 1e15))
            st = gf_fail(ctx, GF_ERR_INPUT, "pretraining checkpoint %s: field '%s' missing or out of range", R->ck_path, keys[i]);
        else v[i] = x->valuedouble;
    }
    size_t ns = gf_lin_state_floats(R->net->lin), nbn = gf_pt_bn_floats(R->net);
    float stats[GF_LIN_STATS];
    double scal[6];
    float *bn = malloc((nbn ? nbn : 1) * sizeof(float));
    if (st == GF_OK && !bn) st = gf_fail(ctx, GF_ERR_MEMORY, "out of memory");
    if (st == GF_OK && (v[0] > R->o->epochs || v[1] > R->bpe))
        st = gf_fail(ctx, GF_ERR_INPUT, "pretraining checkpoint %s: position epoch %.0f batch %.0f is outside the run",
                     R->ck_path, v[0], v[1]);
    if (st == GF_OK && !(gf_frame_take_array(layout, "scal", data, dl, 6, sizeof(double), NULL, scal) &&
                         gf_frame_take_array(layout, "stats", data, dl, GF_LIN_STATS, sizeof(float), NULL, stats) &&
                         gf_frame_take_array(layout, "state", data, dl, ns, sizeof(float), NULL, R->state) &&
                         gf_frame_take_array(layout, "bn", data, dl, nbn, sizeof(float), NULL, bn)))
        st = gf_fail(ctx, GF_ERR_INPUT, "pretraining checkpoint %s: arrays missing or of the wrong size (%zu state floats "
                     "expected: another device or network?)", R->ck_path, ns);
    if (st == GF_OK) {
        R->epoch = (int)v[0]; R->b0 = (int)v[1]; R->ep_steps = (int)v[2]; R->step = (long)v[3];
        *metrics_bytes = (long)v[4];
        R->ep_samples = scal[0]; R->seconds = scal[1];
        for (int i = 0; i < 4; i++) R->last[i] = scal[2 + i];
        if (R->rank != 0) stats[0] = stats[1] = 0;   /* the checkpoint's stats are the ranks' sums: rank 0 carries them */
        st = gf_lin_set_state(ctx, R->net->lin, R->state, R->step, stats);
    }
    if (st == GF_OK) st = gf_pt_bn_write(ctx, R->net, bn);
    free(bn);
    cJSON_Delete(o);
    free(buf);
    return st;
}

gf_status gf_pretrain_load_resume_config(gf_ctx *ctx, const char *run_dir, gf_pretrain_options *o, void **owner) {
    *owner = NULL;
    char path[1100];
    snprintf(path, sizeof path, "%s/checkpoint.gfptck", run_dir);
    if (gf_dist_rank() == 0) GF_TRY(gf_run_dir_check_free(ctx, run_dir));   /* rank 0 holds the lock of a K-rank run */
    if (access(path, F_OK) != 0)
        return gf_fail(ctx, GF_ERR_INPUT, "--resume: no checkpoint %s (finished runs remove theirs)", path);
    void *buf = NULL;
    const char *js, *data;
    size_t jl, dl;
    GF_TRY(gf_frame_read(ctx, path, CK_MAGIC, "pretraining checkpoint", &buf, &js, &jl, &data, &dl));
    cJSON *root = cJSON_ParseWithLength(js, jl);
    free(buf);
    cJSON *c = cJSON_DetachItemFromObjectCaseSensitive(root, "config");
    cJSON *out = cJSON_DetachItemFromObjectCaseSensitive(root, "out");
    const cJSON *every = cJSON_GetObjectItemCaseSensitive(root, "checkpoint_every");
    if (cJSON_IsNumber(every) && every->valuedouble >= 0 && every->valuedouble <= INT_MAX)
        o->checkpoint_every = (int)every->valuedouble;
    cJSON_Delete(root);
    if (cJSON_IsObject(c) && cJSON_IsString(out)) {
        cJSON_AddItemToObject(c, "_out", out);
        o->out_path = out->valuestring;
    } else cJSON_Delete(out);
    if (!cJSON_IsObject(c)) {
        cJSON_Delete(c);
        return gf_fail(ctx, GF_ERR_INPUT, "pretraining checkpoint %s: unreadable header", path);
    }
    /* strings point into c, which *owner keeps */
#define STR(k) (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(c, k)) ? cJSON_GetObjectItemCaseSensitive(c, k)->valuestring : NULL)
#define NUM(k, d) (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(c, k)) ? cJSON_GetObjectItemCaseSensitive(c, k)->valuedouble : (d))
    const char *opt_str = STR("optimizer"), *sched = STR("schedule"), *seed = STR("seed");
    o->arch = STR("arch"); o->task = STR("task");
    o->data_path = STR("data"); o->data_split = STR("split");
    o->val_path = STR("val"); o->val_split = STR("val_split");
    if (o->data_split && !*o->data_split) o->data_split = NULL;
    if (o->val_path && !*o->val_path) o->val_path = NULL;
    if (o->val_split && !*o->val_split) o->val_split = NULL;
    o->limit_train = (int)NUM("limit", 0); o->limit_val = (int)NUM("val_limit", 0);
    o->size = (int)NUM("size", 0); o->width_div = (int)NUM("width_div", 1);
    o->epochs = (int)NUM("epochs", 0); o->batch = (int)NUM("batch", 0);
    o->adam = opt_str && !strcmp(opt_str, "adam");
    o->lr = (float)NUM("lr", 0); o->momentum = (float)NUM("momentum", 0); o->weight_decay = (float)NUM("weight_decay", 0);
    o->beta1 = (float)NUM("beta1", 0); o->beta2 = (float)NUM("beta2", 0);
    o->lr_step = sched && !strcmp(sched, "step") ? (int)NUM("lr_step", 0) : 0;
    o->augment = (int)NUM("augment", 1); o->pad = (int)NUM("pad", 0); o->no_flip = !(int)NUM("flip", 1);
    o->grad_chunk = (int)NUM("grad_chunk", 0);
    if (seed) o->seed = strtoull(seed, NULL, 10);
#undef STR
#undef NUM
    if (!o->arch || !o->task || !o->data_path || o->epochs < 1 || o->batch < 1) {
        cJSON_Delete(c);
        return gf_fail(ctx, GF_ERR_INPUT, "pretraining checkpoint %s: configuration incomplete", path);
    }
    *owner = c;
    return GF_OK;
}

void gf_pretrain_config_free(void *owner) { cJSON_Delete(owner); }

/* Copy a loader batch into staging slot k (rotation: four turns per image)
 * and enqueue its upload without waiting; returns the samples. */
static gf_status stage(run *R, const gf_batch *b, int *n_out) {
    gf_ctx *ctx = R->ctx;
    int k = R->flip;
    R->flip ^= 1;
    if (R->ev[k]) {   /* the upload from this slot two steps ago must be done before we overwrite it */
        cl_int e = clWaitForEvents(1, &R->ev[k]);
        clReleaseEvent(R->ev[k]);
        R->ev[k] = NULL;
        if (e != CL_SUCCESS) return gf_cl_fail(ctx, e, "clWaitForEvents (batch upload)");
    }
    int n = b->count;
    if (R->rotation) {
        for (int i = 0; i < n; i++)
            for (int r = 0; r < 4; r++) {
                gf_image_rotate90(b->x + (size_t)i * R->numel, R->C, R->S, R->S, r,
                                  R->hx[k] + (size_t)(4 * i + r) * R->numel);
                R->hl[k][4 * i + r] = r;
            }
        n *= 4;
    } else {
        memcpy(R->hx[k], b->x, (size_t)n * R->numel * sizeof(float));
        memcpy(R->hl[k], b->labels, (size_t)n * sizeof(int));
    }
    cl_event ex;
    GF_CL(ctx, clEnqueueWriteBuffer(ctx->queue, R->x, CL_FALSE, 0, (size_t)n * R->numel * sizeof(float), R->hx[k], 0,
                                    NULL, &ex), "clEnqueueWriteBuffer (batch)");
    clReleaseEvent(ex);
    GF_CL(ctx, clEnqueueWriteBuffer(ctx->queue, R->labels, CL_FALSE, 0, (size_t)n * sizeof(int), R->hl[k], 0, NULL,
                                    &R->ev[k]), "clEnqueueWriteBuffer (labels)");
    *n_out = n;
    return GF_OK;
}

static gf_status drain(run *R) {
    gf_status st = GF_OK;
    for (int k = 0; k < 2; k++)
        if (R->ev[k]) {
            cl_int e = clWaitForEvents(1, &R->ev[k]);
            clReleaseEvent(R->ev[k]);
            R->ev[k] = NULL;
            if (e != CL_SUCCESS && st == GF_OK) st = gf_cl_fail(R->ctx, e, "clWaitForEvents (batch upload)");
        }
    return st;
}

/* Loss and accuracy on the evaluation set, BN in eval mode (running statistics). Several processes: each
 * rank evaluates its contiguous share of the set (in batches of --batch) and the sums meet over the ranks. */
static gf_status evaluate(run *R, double *loss, double *acc) {
    gf_ctx *ctx = R->ctx;
    int lo_i = 0, hi_i = R->nva;
    gf_dist_share(R->nva, R->rank, R->P, &lo_i, &hi_i);
    gf_loader_options lo = {0};
    lo.batch_size = R->o->batch; lo.seed = R->o->seed; lo.threads = R->o->threads > 0 ? R->o->threads : -1;
    lo.epochs = 1; lo.indices = R->iva + lo_i; lo.n_indices = hi_i - lo_i;
    gf_loader *l = NULL;
    char err[512];
    gf_status st = hi_i > lo_i ? gf_loader_create(R->dva, &R->pp, &lo, &l, err, sizeof err) : GF_OK;
    if (st != GF_OK) return data_fail(ctx, st, err);
    gf_block_set_training(R->net->blk, 0);
    double ls = 0, cor = 0, cnt = 0;
    for (; l;) {
        const gf_batch *b;
        st = gf_loader_next(l, &b, err, sizeof err);
        if (st != GF_OK) { st = data_fail(ctx, st, err); break; }
        if (!b) break;
        if (!b->count) continue;
        int n;
        double l1, c1;
        st = stage(R, b, &n);
        if (st == GF_OK) st = gf_lin_eval_batch(ctx, R->net->lin, n, R->x, R->labels);
        if (st == GF_OK) st = gf_lin_take_stats(ctx, R->net->lin, &l1, &c1, NULL);
        if (st != GF_OK) break;
        ls += l1 * n; cor += c1; cnt += n;
    }
    gf_loader_free(l);
    gf_block_set_training(R->net->blk, 1);
    if (st == GF_OK && R->P > 1) {   /* a failed rank stops the job (cli), so the others never wait here for it */
        double v[3] = {ls, cor, cnt};
        st = gf_dist_sum_f64(ctx, v, 3);
        ls = v[0]; cor = v[1]; cnt = v[2];
    }
    *loss = cnt ? ls / cnt : NAN;
    *acc = cnt ? cor / cnt : NAN;
    return st;
}

/* sps: samples/s through the network; the images/s shown count source images (rotation: a quarter of it) */
static void progress(run *R, int step, double loss, double acc, double sps, double secs) {
    const gf_pretrain_options *o = R->o;
    double ips = sps / (R->rotation ? 4 : 1);
    if (!o->quiet) {
        char el[16], eta[16], bar[21];
        int fill = 20 * step / R->bpe;
        for (int i = 0; i < 20; i++) bar[i] = i < fill ? '#' : '.';
        bar[20] = 0;
        gf_fmt_secs(el, sizeof el, secs);
        double per = step ? secs / step : 0;
        gf_fmt_secs(eta, sizeof eta, per * (R->bpe - step) + per * R->bpe * (o->epochs - R->epoch - 1));
        char rot[48] = "";
        if (R->rotation) snprintf(rot, sizeof rot, " (%.0f rotated samples/s)", sps);
        gf_progress(R->ctx, GF_PROGRESS_STEP, "[pretrain] epoch %d/%d [%s] step %d/%d loss %.4f acc %.1f%% %.0f img/s%s %s ETA %s",
                    R->epoch + 1, o->epochs, bar, step, R->bpe, loss, 100 * acc, ips, rot, el, eta);
    }
    if (R->json) {
        fprintf(R->json, "{\"type\":\"step\",\"epoch\":%d,\"step\":%d,\"steps\":%d,\"global_step\":%ld,\"loss\":%.6g,"
                "\"accuracy\":%.6g,\"images_per_s\":%.4g,\"samples_per_s\":%.4g,\"seconds\":%.4g}\n", R->epoch + 1,
                step, R->bpe, R->step, loss, acc, ips, sps, secs);
        fflush(R->json);
    }
}

static void epoch_line(run *R, double secs, double sps) {   /* sps as in progress() */
    const gf_pretrain_options *o = R->o;
    double ips = sps / (R->rotation ? 4 : 1);
    double *v = R->last;
    char line[512], vl[32] = "null", va[32] = "null";  /* no validation data: null, not a number */
    if (!isnan(v[2])) snprintf(vl, sizeof vl, "%.6g", v[2]);
    if (!isnan(v[3])) snprintf(va, sizeof va, "%.6g", v[3]);
    snprintf(line, sizeof line, "{\"epoch\":%d,\"epochs\":%d,\"steps\":%ld,\"train_loss\":%.6g,\"train_acc\":%.6g,"
             "\"val_loss\":%s,\"val_acc\":%s}", R->epoch + 1, o->epochs, R->step, v[0], v[1], vl, va);
    if (R->metrics) { fprintf(R->metrics, "%s\n", line); fflush(R->metrics); }
    if (R->json) {
        fprintf(R->json, "{\"type\":\"epoch\",%s,\"seconds\":%.4g,\"images_per_s\":%.4g,\"samples_per_s\":%.4g}\n",
                line + 1, secs, ips, sps);
        fflush(R->json);
    }
    if (!o->quiet) {
        char val[64] = "", rot[48] = "";
        if (!isnan(v[2])) snprintf(val, sizeof val, " | val loss %.4f acc %.2f%%", v[2], 100 * v[3]);
        if (R->rotation) snprintf(rot, sizeof rot, ", %.0f rotated samples/s", sps);
        gf_progress(R->ctx, GF_PROGRESS_LINE, "[pretrain] epoch %3d/%-3d train loss %.4f acc %.2f%%%s  (%.1f s, %.0f img/s%s)",
                    R->epoch + 1, o->epochs, v[0], 100 * v[1], val, secs, ips, rot);
    }
}

static gf_status write_model(run *R, const char *path) {
    const char *names[4] = {"rot0", "rot90", "rot180", "rot270"};
    const char **cls = R->rotation ? names : malloc((size_t)R->K * sizeof(char *));
    if (!cls) return gf_fail(R->ctx, GF_ERR_MEMORY, "out of memory");
    if (!R->rotation) for (int k = 0; k < R->K; k++) cls[k] = gf_dataset_class_name(R->dtr, k);
    cJSON *x = cJSON_CreateObject();
    cJSON_AddStringToObject(x, "format_version", "1");
    cJSON_AddNumberToObject(x, "epochs_done", R->r->epochs_done);
    cJSON_AddNumberToObject(x, "steps", (double)R->step);
    cJSON_AddNumberToObject(x, "train_loss", R->last[0]);
    cJSON_AddNumberToObject(x, "train_acc", R->last[1]);
    if (!isnan(R->last[2])) cJSON_AddNumberToObject(x, "val_loss", R->last[2]);
    if (!isnan(R->last[3])) cJSON_AddNumberToObject(x, "val_acc", R->last[3]);
    cJSON_AddItemToObject(x, "config", cJSON_Duplicate(R->config, 1));
    gf_json_exact_floats(cJSON_GetObjectItemCaseSensitive(x, "config"), NULL);  /* "lr": 0.1, not 0.100000001 */
    char *js = cJSON_PrintUnformatted(x);
    cJSON_Delete(x);
    gf_status st = js ? gf_pt_net_export(R->ctx, R->net, path, &R->pp, cls, js)
                      : gf_fail(R->ctx, GF_ERR_MEMORY, "out of memory");
    free(js);
    if (!R->rotation) free(cls);
    return st;
}

static gf_status setup(run *R) {
    gf_ctx *ctx = R->ctx;
    const gf_pretrain_options *o = R->o;
    int a = gf_arch_parse(o->arch);
    if (a < 0)
        return gf_fail(ctx, GF_ERR_USAGE, "unknown architecture '%s' (small28, bigan or resnet18c)", o->arch ? o->arch : "");
    if (!gf_pretrain_task_known(o->task))
        return gf_fail(ctx, GF_ERR_USAGE, "unknown task '%s' (labels or rotation)", o->task ? o->task : "");
    if (!o->data_path) return gf_fail(ctx, GF_ERR_USAGE, "no training data given");
    if (o->epochs < 1 || o->batch < 1 || o->batch > (1 << 20))
        return gf_fail(ctx, GF_ERR_USAGE, "epochs (%d) and batch (%d) must be at least 1", o->epochs, o->batch);
    if (!(o->lr > 0) || o->momentum < 0 || o->weight_decay < 0 || o->size < 0 || o->pad < 0)
        return gf_fail(ctx, GF_ERR_USAGE, "lr must be positive; momentum, weight decay, size and pad non-negative");
    if (o->resume && !o->run_dir) return gf_fail(ctx, GF_ERR_USAGE, "resuming needs the run directory");
    R->arch = (gf_arch)a;
    R->rotation = !strcmp(o->task, "rotation");
    GF_TRY(open_data(R, o->data_path, o->data_split, o->limit_train, &R->dtr, &R->itr, &R->ntr));
    if (o->val_path) GF_TRY(open_data(R, o->val_path, o->val_split, o->limit_val, &R->dva, &R->iva, &R->nva));
    R->K = R->rotation ? 4 : gf_dataset_num_classes(R->dtr);
    if (!R->rotation && R->dva && gf_dataset_num_classes(R->dva) != R->K)
        return gf_fail(ctx, GF_ERR_INPUT, "%s has %d classes but %s has %d", o->val_path, gf_dataset_num_classes(R->dva),
                       o->data_path, R->K);
    if (R->K < 2) return gf_fail(ctx, GF_ERR_INPUT, "%s has %d class; pretraining needs at least 2 (or --task rotation)",
                                 o->data_path, R->K);
    /* input geometry from the first loadable training image */
    gf_image img = {0};
    char err[512];
    gf_status st = GF_ERR_INPUT;
    for (int i = 0; i < R->ntr && st != GF_OK; i++) {
        st = gf_dataset_load_image(R->dtr, R->itr[i], &img, err, sizeof err);
        if (st != GF_OK && st != GF_ERR_INPUT) return data_fail(ctx, st, err);
    }
    if (st != GF_OK) return gf_fail(ctx, GF_ERR_INPUT, "%s: no training image could be loaded", o->data_path);
    int w = img.w, h = img.h;
    R->C = img.c <= 2 ? 1 : 3;
    gf_image_free(&img);
    if (o->size) R->S = o->size;
    else if (w == h) R->S = w;
    else return gf_fail(ctx, GF_ERR_USAGE, "%s: images are %dx%d; give --size N (the network's input is N x N)",
                        o->data_path, w, h);
    if (R->S < 4) return gf_fail(ctx, GF_ERR_USAGE, "input size %d: the networks need at least 4x4", R->S);
    gf_preprocess_init(&R->pp, R->S, R->S, R->C);
    R->numel = (int)gf_preprocess_numel(&R->pp);
    if (!o->quiet) gf_progress(ctx, GF_PROGRESS_LINE, "[pretrain] measuring the input mean and std on up to 10000 training images...");
    GF_TRY(measure_norm(R));
    R->pp_aug = R->pp;
    if (o->augment) {
        R->pp_aug.pad_crop = o->pad ? o->pad : R->S >= 32 ? 4 : 2;
        R->pp_aug.hflip = !o->no_flip;
    }
    R->B = o->batch;
    R->max_n = R->B * (R->rotation ? 4 : 1);
    R->drop_last = R->ntr % R->B == 1 && R->ntr > 1;   /* a lone last image: BN statistics of one sample */
    R->bpe = R->drop_last ? R->ntr / R->B : (R->ntr + R->B - 1) / R->B;
    R->CH = o->grad_chunk > 0 ? (o->grad_chunk < R->B ? o->grad_chunk : R->B) : 0;
    int last = R->ntr - (R->bpe - 1) * R->B, unit = R->CH ? R->CH : 1;
    if (R->CH && !R->rotation && (R->CH == 1 || R->B % R->CH == 1 || last % R->CH == 1))
        return gf_fail(ctx, GF_ERR_USAGE, "--grad-chunk %d leaves a chunk of one image (batch %d, the epoch's last "
                       "batch %d): its batchnorm statistics would be of one sample; choose another --grad-chunk",
                       R->CH, R->B, last);
    if (R->P > 1) {   /* every rank needs a share of every batch (the batchnorm sums meet in each forward) */
        int per = (R->B + unit - 1) / unit, per_last = (last + unit - 1) / unit;
        if (per < R->P || per_last < R->P)
            return gf_fail(ctx, GF_ERR_USAGE, "%d ranks need at least %d %s in every batch, but %s; use fewer "
                           "ranks, or a --batch%s or --limit that leaves each batch at least %d", R->P, R->P,
                           R->CH ? "chunks (--grad-chunk)" : "images", per < R->P ? "--batch is smaller" :
                           "the epoch's last batch has fewer", R->CH ? ", --grad-chunk" : "", R->P * unit);
    }
    R->config = make_config(R);
    if (!R->config) return gf_fail(ctx, GF_ERR_MEMORY, "out of memory");
    GF_TRY(gf_pt_net_create(ctx, R->arch, o->width_div, R->C, R->S, R->S, R->K, R->max_n, o->seed, &R->net));
    if (R->P > 1 && !R->CH) gf_block_set_bn_sync(R->net->blk, 1);   /* chunks: statistics per chunk */
    size_t ns = gf_lin_state_floats(R->net->lin);
    R->state = malloc(ns * sizeof(float));
    for (int k = 0; k < 2; k++) {
        R->hx[k] = malloc((size_t)R->max_n * R->numel * sizeof(float));
        R->hl[k] = malloc((size_t)R->max_n * sizeof(int));
        if (!R->hx[k] || !R->hl[k]) return gf_fail(ctx, GF_ERR_MEMORY, "out of memory for the batch buffers");
    }
    if (!R->state) return gf_fail(ctx, GF_ERR_MEMORY, "out of memory");
    GF_TRY(gf_buf_create(ctx, (size_t)R->max_n * R->numel * sizeof(float), "input batch", &R->x));
    GF_TRY(gf_buf_create(ctx, (size_t)R->max_n * sizeof(int), "batch labels", &R->labels));
    if (R->CH) {
        size_t cn = (size_t)R->CH * (R->rotation ? 4 : 1);
        GF_TRY(gf_buf_create(ctx, cn * R->numel * sizeof(float), "chunk of the batch (--grad-chunk)", &R->xc));
        GF_TRY(gf_buf_create(ctx, cn * sizeof(int), "chunk labels (--grad-chunk)", &R->lc));
    }
    R->r->n_train = R->ntr; R->r->n_val = R->nva; R->r->classes = R->K;
    if (!o->quiet) {
        char mean[256] = "", sd[256] = "";
        for (int c = 0; c < R->C && c < 16; c++) {
            size_t lm = strlen(mean), ls = strlen(sd);
            snprintf(mean + lm, sizeof mean - lm, " %.4f", R->pp.mean[c]);
            snprintf(sd + ls, sizeof sd - ls, " %.4f", R->pp.std[c]);
        }
        gf_progress(ctx, GF_PROGRESS_LINE, "[pretrain] %s, task %s: %d training images%s, %d classes, input %dx%dx%d "
                    "(mean%s, std%s), %zu parameters, %d steps per epoch", gf_arch_name(R->arch),
                    R->rotation ? "rotation (4 turns per image)" : "labels", R->ntr, R->dva ? "" : ", no evaluation set",
                    R->K, R->C, R->S, R->S, mean, sd, gf_block_param_count(R->net->blk), R->bpe);
    }
    return GF_OK;
}

/* A shuffled order of the training subset for epoch ep (a pure function of seed and epoch). */
static void epoch_order(const run *R, int ep, int *perm) {
    memcpy(perm, R->itr, (size_t)R->ntr * sizeof(int));
    uint64_t s = gfd_mix64(R->o->seed ^ gfd_mix64(0x9E7A0000ULL + (uint64_t)ep));
    for (int i = R->ntr - 1; i > 0; i--) {
        int j = (int)(gf_pt_unif(&s) * (i + 1));
        if (j > i) j = i;
        int t = perm[i]; perm[i] = perm[j]; perm[j] = t;
    }
}

/* On --resume, the checkpoint's state; then RUN_DIR/metrics.jsonl, new, or cut back to the length the
 * checkpoint saw and appended to. */
static gf_status start_or_resume(run *R) {
    gf_ctx *ctx = R->ctx;
    const gf_pretrain_options *o = R->o;
    long metrics_bytes = 0;
    if (o->resume) {
        GF_TRY(restore(R, &metrics_bytes));
        if (!o->quiet) gf_progress(ctx, GF_PROGRESS_LINE, "[pretrain] resuming at epoch %d, batch %d (step %ld)", R->epoch + 1, R->b0, R->step);
    }
    R->r->epochs_done = R->epoch;
    if (o->run_dir && R->rank == 0) {   /* several processes: rank 0 writes the files */
        if (gf_mkdirs(o->run_dir) != 0)
            return gf_fail(ctx, GF_ERR_IO, "cannot create run directory %s: %s", o->run_dir, strerror(errno));
        /* on resume: drop what was logged after the checkpoint, then append */
        if (o->resume && truncate(R->metrics_path, metrics_bytes) != 0 && errno != ENOENT)
            return gf_fail(ctx, GF_ERR_IO, "cannot truncate %s: %s", R->metrics_path, strerror(errno));
        if (!(R->metrics = fopen(R->metrics_path, o->resume ? "a" : "w")))
            return gf_fail(ctx, GF_ERR_IO, "cannot write %s: %s", R->metrics_path, strerror(errno));
        fseek(R->metrics, 0, SEEK_END);   /* ftell gives the bytes a checkpoint has seen */
    }
    return GF_OK;
}

/* Running loss and correct count summed over the ranks (each holds its shares'). */
static gf_status sum_stats(run *R, double *loss, double *correct) {
    if (R->P == 1) return GF_OK;
    double v[2] = {*loss, *correct};
    GF_TRY(gf_dist_sum_f64(R->ctx, v, 2));
    *loss = v[0]; *correct = v[1];
    return GF_OK;
}

/* Samples of batch j (0-based) of an epoch, and this rank's share [*lo, *hi) of them. */
static int batch_rows(const run *R, int j, int *lo, int *hi) {
    int nb = R->ntr - j * R->B < R->B ? R->ntr - j * R->B : R->B;
    if (R->CH) gf_dist_share_units(nb, R->CH, R->rank, R->P, lo, hi);   /* whole chunks */
    else gf_dist_share(nb, R->rank, R->P, lo, hi);
    return nb;
}

/* The end of a full epoch (te: when its batches began; seen0: its samples before this run resumed it): the
 * epoch's training loss and accuracy, the evaluation, the epoch line, and the checkpoint at the next
 * epoch's start. */
static gf_status end_epoch(run *R, double te, double seen0, double *t_run) {
    gf_ctx *ctx = R->ctx;
    const gf_pretrain_options *o = R->o;
    double loss_sum = 0, correct = 0;
    GF_TRY(gf_lin_take_stats(ctx, R->net->lin, &loss_sum, &correct, NULL));
    GF_TRY(sum_stats(R, &loss_sum, &correct));
    double tl = R->ep_steps ? loss_sum / R->ep_steps : NAN;
    if (!isfinite(tl))
        return gf_fail(ctx, GF_ERR_NUMERIC, "pretrain: the training loss became %s in epoch %d (step %ld); try a "
                       "smaller --lr", isnan(tl) ? "NaN" : "infinite", R->epoch + 1, R->step);
    double secs = gf_now() - te;
    R->last[0] = tl;
    R->last[1] = R->ep_samples ? correct / R->ep_samples : NAN;
    if (R->dva) GF_TRY(evaluate(R, &R->last[2], &R->last[3]));
    epoch_line(R, secs, (R->ep_samples - seen0) / (secs > 0 ? secs : 1));
    R->r->epochs_done = R->epoch + 1;
    gf_status st = GF_OK;
    if (R->epoch + 1 < o->epochs) {   /* epoch end: the next epoch's start */
        R->epoch++; R->b0 = 0; R->ep_steps = 0; R->ep_samples = 0;
        R->seconds += gf_now() - *t_run; *t_run = gf_now();
        st = checkpoint(R, R->metrics ? ftell(R->metrics) : 0);
        R->epoch--; R->b0 = R->bpe;
    }
    return st;
}

/* --grad-chunk: one step as chunks of CH images (4 CH samples under rotation) run one after another, each with
 * its own batchnorm statistics (ghost batchnorm). The gradient (of the whole batch's mean loss) and each chunk's
 * running-statistics update, made from the step's starting statistics, are added in double in chunk order; the
 * ranks hold whole chunks in order and their sums meet in rank order, so one process and K ranks add the same
 * float vectors in the same order and round once. The running statistics become the mean of the chunks'
 * updates: (1 - momentum) r + momentum mean_j(stat_j). n: this rank's staged samples; nb: the batch's images. */
static gf_status chunk_step(run *R, int n, int nb, float *gsum, double *acc, float *bn0, float *bnj,
                            const gf_optim *opt) {
    gf_ctx *ctx = R->ctx;
    gf_lin *m = R->net->lin;
    size_t G = gf_lin_grad_floats(m), NB = gf_pt_bn_floats(R->net);
    int rot = R->rotation ? 4 : 1, per = R->CH * rot;
    size_t row = (size_t)R->numel * sizeof(float);
    for (size_t i = 0; i < G + NB; i++) acc[i] = 0;
    GF_TRY(gf_pt_bn_read(ctx, R->net, bn0));
    gf_lin_set_mean_over(m, nb * rot);
    gf_status st = GF_OK;
    for (int c0 = 0; c0 < n && st == GF_OK; c0 += per) {
        int cn = n - c0 < per ? n - c0 : per;
        st = gf_buf_copy(ctx, R->x, (size_t)c0 * row, R->xc, 0, (size_t)cn * row);
        if (st == GF_OK) st = gf_buf_copy(ctx, R->labels, (size_t)c0 * sizeof(int), R->lc, 0, (size_t)cn * sizeof(int));
        if (st == GF_OK && c0 > 0) st = gf_pt_bn_write(ctx, R->net, bn0);
        if (st == GF_OK) st = gf_lin_gradients(ctx, m, cn, R->xc, R->lc);
        if (st == GF_OK) st = gf_lin_grads_get(ctx, m, gsum);
        if (st == GF_OK) st = gf_pt_bn_read(ctx, R->net, bnj);
        for (size_t i = 0; i < G && st == GF_OK; i++) acc[i] += gsum[i];
        for (size_t i = 0; i < NB && st == GF_OK; i++) acc[G + i] += bnj[i];
    }
    gf_lin_set_mean_over(m, 0);
    GF_TRY(st);
    if (R->P > 1) GF_TRY(gf_dist_sum_f64(ctx, acc, G + NB));
    double chunks = (nb + R->CH - 1) / R->CH;
    for (size_t i = 0; i < G; i++) gsum[i] = (float)acc[i];
    for (size_t i = 0; i < NB; i++) bnj[i] = (float)(acc[G + i] / chunks);
    GF_TRY(gf_lin_grads_set(ctx, m, gsum));
    GF_TRY(gf_pt_bn_write(ctx, R->net, bnj));
    return gf_lin_apply_step(ctx, m, opt);
}

static gf_status train(run *R) {
    gf_ctx *ctx = R->ctx;
    const gf_pretrain_options *o = R->o;
    gf_pretrain_result *r = R->r;
    R->last[0] = R->last[1] = R->last[2] = R->last[3] = NAN;
    GF_TRY(start_or_resume(R));
    int *perm = malloc((size_t)R->ntr * sizeof(int)), *mine = malloc((size_t)R->ntr * sizeof(int));
    /* several processes or chunks: the gradient vector summed over the ranks / chunks each step */
    int summed = R->P > 1 || R->CH;
    size_t G = summed ? gf_lin_grad_floats(R->net->lin) : 0, NB = R->CH ? gf_pt_bn_floats(R->net) : 0;
    float *gsum = summed ? malloc(G * sizeof(float)) : NULL;
    double *acc = R->CH ? malloc((G + NB) * sizeof(double)) : NULL;
    float *bn0 = R->CH ? malloc((NB + 1) * sizeof(float)) : NULL, *bnj = R->CH ? malloc((NB + 1) * sizeof(float)) : NULL;
    if (!perm || !mine || (summed && !gsum) || (R->CH && (!acc || !bn0 || !bnj))) {
        free(perm); free(mine); free(gsum); free(acc); free(bn0); free(bnj);
        return gf_fail(ctx, GF_ERR_MEMORY, "out of memory");
    }
    if (R->P > 1 && !o->quiet)   /* what limits scaling: this many bytes through rank 0 every step */
        gf_progress(ctx, GF_PROGRESS_LINE, "[pretrain] %d ranks: each step sums %zu gradient floats (%.2f MiB) and "
                    "the batchnorm statistics over them", R->P, G + NB, (double)(G + NB) * sizeof(float) / 1048576.0);
    gf_optim opt = {o->adam, o->lr, o->beta1, o->beta2, 1e-8f, o->momentum, o->weight_decay, 0.0f};
    gf_status st = GF_OK;
    double t_run = gf_now(), trained = 0, t_train = 0;
    for (; R->epoch < o->epochs && st == GF_OK; R->epoch++, R->b0 = 0) {
        if (R->b0 == 0) {   /* a fresh epoch (a resumed one keeps its stats and counters) */
            st = gf_lin_take_stats(ctx, R->net->lin, NULL, NULL, NULL);
            R->ep_steps = 0; R->ep_samples = 0;
        }
        epoch_order(R, R->epoch, perm);
        int start = R->b0 * R->B, left = R->ntr - start;
        if (R->drop_last) left -= R->ntr % R->B;
        gf_loader_options lo = {0};
        lo.batch_size = R->B; lo.seed = gfd_mix64(o->seed ^ (0xA06E0000ULL + (uint64_t)R->epoch));
        lo.threads = o->threads > 0 ? o->threads : -1;
        lo.epochs = 1; lo.indices = perm + start; lo.n_indices = left;
        if (R->P > 1) {   /* this rank's share of each batch, in batch order (augmentation is per sample index) */
            int k = 0, lo0, hi0;
            for (int j = R->b0; j < R->bpe; j++) {
                int a, b;
                batch_rows(R, j, &a, &b);
                for (int i = a; i < b; i++) mine[k++] = perm[j * R->B + i];
            }
            batch_rows(R, 0, &lo0, &hi0);
            lo.batch_size = hi0 - lo0; lo.indices = mine; lo.n_indices = left = k;
        }
        gf_loader *l = NULL;
        char err[512];
        if (st == GF_OK && left > 0) {
            st = gf_loader_create(R->dtr, &R->pp_aug, &lo, &l, err, sizeof err);
            if (st != GF_OK) st = data_fail(ctx, st, err);
        }
        double te = gf_now(), last_report = te, seen0 = R->ep_samples;
        while (st == GF_OK && R->b0 < R->bpe) {
            if (R->P == 1 && o->stop && *o->stop) { r->stopped = 1; break; }
            if (o->max_steps > 0 && R->step >= o->max_steps) { r->limited = 1; break; }
            const gf_batch *b;
            st = gf_loader_next(l, &b, err, sizeof err);
            if (st != GF_OK) { st = data_fail(ctx, st, err); break; }
            if (!b && R->P == 1) break;
            double tnow = gf_now();
            int n = 0, timed = (R->tty && tnow - last_report >= 0.5) ||
                              (!R->tty && o->log_every_secs > 0 && tnow - last_report >= o->log_every_secs);
            double nb = b ? b->count : 0;
            if (R->P > 1) {
                /* the ranks agree on the batch's size (a dropped image changes it), on a stop asked of any rank
                 * and on rank 0's clock for the progress line; a rank without samples stops the job */
                double v[4] = {nb, o->stop && *o->stop, R->rank == 0 && timed, nb == 0};
                st = gf_dist_sum_f64(ctx, v, 4);
                if (st != GF_OK) break;
                if (v[1] > 0) { r->stopped = 1; break; }
                if (v[3] > 0) {
                    st = gf_fail(ctx, GF_ERR_INPUT, "step %ld: a rank has no image of its share of the batch left "
                                 "(unreadable images?); run with fewer ranks", R->step + 1);
                    break;
                }
                nb = v[0]; timed = v[2] > 0;
            }
            if (b && b->count) {
                opt.lr = lr_at(R, R->step, R->epoch);
                st = stage(R, b, &n);
                if (st == GF_OK && R->CH) {
                    st = chunk_step(R, n, (int)nb, gsum, acc, bn0, bnj, &opt);
                    n = (int)nb * (R->rotation ? 4 : 1);
                } else if (st == GF_OK && R->P == 1) st = gf_lin_train_step(ctx, R->net->lin, n, R->x, R->labels, &opt);
                else if (st == GF_OK) {   /* this rank's share, the loss's mean over the whole batch */
                    gf_lin *m = R->net->lin;
                    gf_lin_set_mean_over(m, (int)nb * (R->rotation ? 4 : 1));
                    st = gf_lin_gradients(ctx, m, n, R->x, R->labels);
                    gf_lin_set_mean_over(m, 0);
                    if (st == GF_OK) st = gf_lin_grads_get(ctx, m, gsum);
                    if (st == GF_OK) st = gf_dist_sum_f32(ctx, gsum, G);
                    if (st == GF_OK) st = gf_lin_grads_set(ctx, m, gsum);
                    if (st == GF_OK) st = gf_lin_apply_step(ctx, m, &opt);
                    n = (int)nb * (R->rotation ? 4 : 1);
                }
                R->step++;
                R->ep_steps++;
                R->ep_samples += n;
                trained += n;
            }
            R->b0++;
            double now = gf_now();
            int last = R->b0 == R->bpe;
            if (R->P == 1)   /* one process: the clock after the step (several: rank 0's before it, agreed above) */
                timed = (R->tty && now - last_report >= 0.5) ||
                        (!R->tty && o->log_every_secs > 0 && now - last_report >= o->log_every_secs);
            if (st == GF_OK && (timed || (!R->tty && R->b0 % (o->log_every > 0 ? o->log_every : 50) == 0) || last)) {
                double ls, cor;
                st = gf_lin_peek_stats(ctx, R->net->lin, &ls, &cor);
                if (st == GF_OK) st = sum_stats(R, &ls, &cor);
                if (st == GF_OK)
                    progress(R, R->b0, R->ep_steps ? ls / R->ep_steps : 0, R->ep_samples ? cor / R->ep_samples : 0,
                             (R->ep_samples - seen0) / (now - te), now - te);
                last_report = now;
            }
            if (st == GF_OK && !last && o->checkpoint_every > 0 && R->step % o->checkpoint_every == 0 && n) {
                R->seconds += gf_now() - t_run; t_run = gf_now();
                st = checkpoint(R, R->metrics ? ftell(R->metrics) : 0);
            }
        }
        gf_loader_free(l);
        if (st == GF_OK) st = drain(R);
        t_train += gf_now() - te;
        if (st != GF_OK || r->stopped || r->limited) break;
        st = end_epoch(R, te, seen0, &t_run);
    }
    free(perm); free(mine); free(gsum); free(acc); free(bn0); free(bnj);
    R->seconds += gf_now() - t_run;
    r->steps = R->step;
    r->train_loss = R->last[0]; r->train_acc = R->last[1]; r->val_loss = R->last[2]; r->val_acc = R->last[3];
    r->seconds = t_train;
    r->samples_per_s = t_train > 0 ? trained / t_train : 0;
    r->images_per_s = r->samples_per_s / (R->rotation ? 4 : 1);   /* source images: four turns are one image */
    if (st == GF_OK && (r->stopped || r->limited)) {
        st = checkpoint(R, R->metrics ? ftell(R->metrics) : 0);
        if (st == GF_OK && o->run_dir) snprintf(r->checkpoint, sizeof r->checkpoint, "%s", R->ck_path);
    }
    return st;
}

gf_status gf_pretrain_run(gf_ctx *ctx, const gf_pretrain_options *o, gf_pretrain_result *res) {
    memset(res, 0, sizeof *res);
    res->train_loss = res->train_acc = res->val_loss = res->val_acc = NAN;
    run R;
    memset(&R, 0, sizeof R);
    R.ctx = ctx; R.o = o; R.r = res;
    R.tty = ctx->progress_live;
    R.P = gf_dist_size(); R.rank = gf_dist_rank();   /* the caller draws step lines over each other: report every 0.5 s */
    if (o->run_dir) {
        snprintf(R.ck_path, sizeof R.ck_path, "%s/checkpoint.gfptck", o->run_dir);
        snprintf(R.metrics_path, sizeof R.metrics_path, "%s/metrics.jsonl", o->run_dir);
    }
    int lock_fd = -1;   /* the run directory, locked and checked writable before any work */
    gf_status st = o->run_dir && R.rank == 0 ? gf_run_dir_lock(ctx, o->run_dir, &lock_fd) : GF_OK;
    if (st == GF_OK) st = setup(&R);
    if (st == GF_OK && o->log_json && R.rank == 0 && !(R.json = fopen(o->log_json, "w")))
        st = gf_fail(ctx, GF_ERR_IO, "cannot write --log-json %s: %s", o->log_json, strerror(errno));
    R.last[0] = R.last[1] = R.last[2] = R.last[3] = NAN;
    if (st == GF_OK && !o->init_only) st = train(&R);   /* init_only: the initialised net as it is */
    if (st == GF_OK && !res->stopped) {
        char def[256];
        snprintf(def, sizeof def, "%s-%s.safetensors", gf_arch_name(R.arch), R.rotation ? "rotation" : "labels");
        const char *path = o->out_path ? o->out_path : def;
        if (R.rank == 0) st = write_model(&R, path);   /* several processes: rank 0 writes */
        if (st == GF_OK) snprintf(res->out_path, sizeof res->out_path, "%s", path);
        /* a finished run needs no checkpoint; a --steps-limited one keeps it to be continued */
        if (st == GF_OK && !res->limited && o->run_dir && R.rank == 0) unlink(R.ck_path);
    }
    drain(&R);
    /* several processes: no rank leaves before rank 0 has written the model or the checkpoint (a rank that
     * ends early with an error stops the job, cli/main.c) */
    if (st == GF_OK && R.P > 1) st = gf_dist_barrier(ctx);
    if (R.metrics) fclose(R.metrics);
    if (R.json) fclose(R.json);
    for (int k = 0; k < 2; k++) { free(R.hx[k]); free(R.hl[k]); }
    gf_buf_release(&R.x);
    gf_buf_release(&R.labels);
    gf_buf_release(&R.xc);
    gf_buf_release(&R.lc);
    gf_pt_net_free(R.net);
    cJSON_Delete(R.config);
    free(R.state); free(R.itr); free(R.iva);
    gf_dataset_free(R.dtr);
    gf_dataset_free(R.dva);
    if (lock_fd >= 0) close(lock_fd);
    return st;
}
