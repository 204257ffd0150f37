/* What the files of a training job share (host/method/): job.c (the driver, gf_job_run), actcache.c (the
 * trunk pass and the activation cache), rundir.c (results, the job configuration and --resume checks),
 * adapted.c (adapted-model files). Internal to method/; the public API is gradfeat_train.h. */
#ifndef GF_JOB_INTERNAL_H
#define GF_JOB_INTERNAL_H
#include <stdint.h>
#include <stdio.h>
#include <cjson/cJSON.h>
#include "gradfeat_data.h"
#include "gradfeat_train.h"
#include "model.h"
#include "train.h"

/* ---- actcache.c ---- */
/* Trunk outputs of one split (activation caching). With the cache on they
 * live in the cache file, memory-mapped: pages are written back and read in
 * by the kernel, so a dataset whose trunk outputs exceed host RAM still
 * trains (the device tier, when it fits, uploads once). With --no-cache they
 * are in plain host memory.
 * File: "GFACT002" | u64 key | i32 n | i32 S | 8 zero bytes | u8 ok[n] |
 * zero pad to a multiple of 64 | f32 z0[n*S] (aligned for direct use). */
typedef struct gf_act_store {
    float *z0;
    void *map;                  /* non-NULL: z0 points into this mapping */
    size_t map_bytes;
} gf_act_store;
void gf_act_store_free(gf_act_store *as);
/* Run the frozen trunk of block bi over the samples idx[0..n) of ds and keep the cut's output (S floats per
 * sample) in *as, ok[i] = 1 for each sample that loaded; reuses or writes the cache file under
 * job->cache_dir. what: "train", "val", "eval" (progress lines). Adds to res->trunk_seconds; sets
 * res->cache_reused, and res->stopped when *job->stop was raised. model_hash: the FNV-1a 64 of the model file's
 * bytes when the caller has it (the cache key starts from it; NULL: the file is read and hashed here). refresh: run
 * the trunk even when the cache has a file for the pass, and replace that file. */
gf_status gf_trunk_pass(gf_ctx *ctx, const gf_job *job, const uint64_t *model_hash, const gf_model *m, int bi,
                        const char *what, gf_dataset *ds, const int *idx, int n, int S, gf_act_store *as,
                        unsigned char *ok, int refresh, gf_job_result *res);
/* Labels / targets of the usable samples, compacting z0 over failed ones (*labels, *targets: malloc'ed). */
gf_status gf_make_cached_set(gf_ctx *ctx, gf_dataset *ds, const int *idx, int n, int S, float *z0,
                             const unsigned char *ok, int K, int multi, gf_cached_set *set, int **labels,
                             float **targets);
/* The dataset's skipped inputs (gf_dataset_report), as progress lines. */
void gf_job_report_dataset(gf_ctx *ctx, const gf_dataset *ds);

/* ---- the state gf_train's callbacks share (job.c builds it) ---- */
typedef struct {
    const gf_job *job; FILE *log; int multi;
    /* checkpoints and saved models */
    gf_ctx *ctx;
    cJSON *config;              /* the job's configuration (compared on resume) */
    char *meta;                 /* last checkpoint_meta text */
    gf_block *blk;
    const char *top, *loss;
    gf_dataset *ds;
    const gf_cached_set *val;   /* for the confusion matrix / per-class AP of the final evaluation */
    FILE *json;                 /* --log-json */
    /* what checkpoints vouch for in the run directory (gf_job_check_resume_files): the files this run wrote,
     * name -> FNV-1a 64 of their bytes, and the FNV-1a 64 of metrics.jsonl as written so far */
    cJSON *files;
    uint64_t metrics_hash;
} epoch_ctx;

/* ---- rundir.c ---- */
/* RUN_DIR/classes.txt and RUN_DIR/results.json (atomically); config: the job configuration, as "settings";
 * rank_devices: each rank's device name (an array, or NULL). */
gf_status gf_job_write_results(gf_ctx *ctx, const gf_job *job, const gf_job_result *r, gf_dataset *ds,
                               const cJSON *config, const cJSON *rank_devices);
/* The job configuration a checkpoint must match (model hash as hex; "data_fnv1a64" is added by the driver). */
cJSON *gf_job_config_json(const gf_job *job, const char *top, uint64_t model_hash);
/* gf_train's checkpoint_meta: the configuration, metrics.jsonl's length and hash, the run's files (user: epoch_ctx). */
const char *gf_job_checkpoint_meta(void *user);
/* --resume: the checkpoint was written for this model file (path, bytes). */
gf_status gf_job_check_resume_model(gf_ctx *ctx, const char *path, const gf_ckpt *c, const char *model_path,
                                    uint64_t model_hash);
/* --resume: same configuration; *metrics_bytes: metrics.jsonl's length at the checkpoint (-1: none). */
gf_status gf_job_check_resume(gf_ctx *ctx, const char *path, const gf_ckpt *c, const cJSON *config,
                              long *metrics_bytes);
/* --resume: the run directory holds the files the checkpoint vouches for; hands back the metrics hash and
 * the list of files (*files: new object) for the checkpoints to come. */
gf_status gf_job_check_resume_files(gf_ctx *ctx, const char *run_dir, const char *ck_path, const gf_ckpt *c,
                                    long metrics_bytes, uint64_t *metrics_hash, cJSON **files);
/* Records a file of the run directory the run has just written (see gf_job_check_resume_files). */
gf_status gf_job_record_file(epoch_ctx *ec, const char *name);
gf_status gf_job_record_hash(epoch_ctx *ec, const char *name, uint64_t xxh3);   /* its XXH3 64 already known */
/* RUN_DIR/confusion_<method>.json or ap_<method>.json from the final evaluation's logits. */
gf_status gf_job_write_eval_detail(epoch_ctx *ec, gf_method m, const gf_method_result *r);

/* ---- adapted.c ---- */
/* gf_train's on_method: the method's evaluation files, then its adapted model RUN_DIR/<method>.safetensors. */
gf_status gf_job_save_model(void *user, gf_method m, const gf_method_result *r, const gf_method_result *probe);
#endif
