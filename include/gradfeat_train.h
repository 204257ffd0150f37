/* gradfeat — training jobs (public C API): the paper's method end to end.
 *
 *   model file -> frozen trunk (run once over the data; its output cached)
 *              -> top block θ2 (default: the model's first listed block, the
 *                 last residual block / conv stage)
 *   methods:  linear   probe w1ᵀ f(x) + b1 (always trained first: it gives ω̄)
 *             gradient ω̄ᵀ J(x) w2 + b1
 *             full     w1ᵀ f(x) + b1 + ω̄ᵀ J(x) w2      (w1 = ω̄, w2 = 0 at step 0)
 *             finetune ordinary backprop of θ2 and the head from θ̄, ω̄
 * Multi-class data: softmax cross-entropy, top-1 accuracy. Multi-label data
 * (CSV with several labels per row): per-class sigmoid BCE, mAP. */
#ifndef GRADFEAT_TRAIN_H
#define GRADFEAT_TRAIN_H
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include "gradfeat.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { GF_JOB_LINEAR = 1, GF_JOB_GRADIENT = 2, GF_JOB_FULL = 4, GF_JOB_FINETUNE = 8, GF_JOB_ALL = 15 };
/* "linear", "gradient", "full", "finetune", "all" or a comma list -> mask; 0 if unknown. */
unsigned gf_job_parse_methods(const char *s);
const char *gf_job_method_name(int i);       /* i = 0..3 */

typedef struct gf_job {
    const char *model_path;
    const char *data_path, *data_split;      /* training data (split: "train"/"test" for IDX, a folder/CSV split) */
    const char *val_path, *val_split;        /* evaluation data; NULL: none */
    int limit_train, limit_val;              /* use a seeded random subset of this many samples; 0 = all */
    const char *top;                         /* top block by name; NULL = the model's default */
    unsigned methods;                        /* GF_JOB_* mask */
    int epochs, probe_epochs, batch;         /* probe_epochs 0 = 10 x epochs (the probe is cheap) */
    int sgd;                                 /* 1: SGD + momentum (official configs); 0: Adam (paper §4) */
    float lr, momentum, weight_decay, clip_norm, beta1, beta2;
    int ntk;                                 /* NTK parametrisation of gradient/full (official code's option) */
    int eval_every;                          /* evaluate every N epochs and after the last; 0/1 = every epoch */
    const char *log_json;                    /* one JSON object per progress report and per epoch; NULL = none */
    int log_every;                           /* progress line every N steps when stderr is not a terminal (0 = 50) */
    int lr_halve_every;                      /* epochs; 0 = never */
    uint64_t seed;
    uint64_t max_device_mem;                 /* bytes for the activation cache on the device; 0 = half the device */
    const char *run_dir;                     /* outputs (metrics.jsonl, results.json, classes.txt); NULL = none */
    const char *cache_dir;                   /* activation cache files; NULL = default, "" = do not keep */
    int threads;                             /* image decoding threads; 0 = online CPUs */
    int quiet;                               /* no progress lines on stderr */
    /* durability (needs run_dir): RUN_DIR/checkpoint.gfckpt every checkpoint_every
     * optimiser steps (0 = only when a method ends or on stop), and when *stop
     * becomes nonzero (a signal handler sets it; checked between steps): the
     * run then writes the checkpoint and returns GF_OK with result.stopped set.
     * resume: continue from RUN_DIR's checkpoint; the job must be the same
     * (checked: configuration, model bytes) and the device the same for a
     * bit-identical result. At the end of each method RUN_DIR/<method>.safetensors
     * is written (an adapted model: gf_adapted_load, `gradfeat eval/predict`). */
    int checkpoint_every;
    int resume;
    volatile sig_atomic_t *stop;
} gf_job;
/* Paper §4 defaults: Adam β=(0.5, 0.999), lr 1e-3, wd 1e-6, batch 64, lr halved every 20 epochs. */
void gf_job_defaults(gf_job *job);

typedef struct gf_job_result {
    int ran[4];
    double train_loss[4], train_metric[4], val_loss[4], val_metric[4], seconds[4];
    int multi_label, n_train, n_val, classes;
    char top[128];
    double trunk_seconds;                    /* the one trunk pass (0 when the cache was reused) */
    int cache_reused, cache_on_device;
    int stopped;                             /* *job->stop was seen; checkpoint says where it is (or "") */
    int checkpoints;                         /* checkpoints written */
    char checkpoint[1200];
} gf_job_result;

gf_status gf_job_run(gf_ctx *ctx, const gf_job *job, gf_job_result *res);
/* The job configuration stored in RUN_DIR's checkpoint (what `train --resume
 * RUN_DIR` continues when the options are not repeated): fills the
 * training-relevant fields of *job; its strings live in *owner until
 * gf_job_config_free(*owner). A missing or corrupt checkpoint is GF_ERR_INPUT. */
gf_status gf_job_load_resume_config(gf_ctx *ctx, const char *run_dir, gf_job *job, void **owner);
void gf_job_config_free(void *owner);
/* The comparison table (stdout of `gradfeat train`). */
void gf_job_print_table(const gf_job_result *res, FILE *out);

/* ---------------------------------------------------------------- adapted models
 * RUN_DIR/<method>.safetensors: the base model file (graph and tensors, copied
 * verbatim, so it is itself a valid model file) plus the trained head and top
 * block and a gradfeat.adapted metadata entry (models/README.md). Prediction:
 * trunk -> top block -> linear / gradient / full / finetune logits. */
typedef struct gf_adapted gf_adapted;
/* 1 when path is a model file carrying gradfeat.adapted metadata. */
int gf_adapted_detect(const char *path);
/* max_batch: images per gf_adapted_predict call. */
gf_status gf_adapted_load(gf_ctx *ctx, const char *path, int max_batch, gf_adapted **out);
void gf_adapted_free(gf_adapted *a);
const struct gf_model *gf_adapted_base(const gf_adapted *a);    /* preprocessing, image loading */
int gf_adapted_classes(const gf_adapted *a);
const char *gf_adapted_class_name(const gf_adapted *a, int k);
const char *gf_adapted_method(const gf_adapted *a);
const char *gf_adapted_top(const gf_adapted *a);
int gf_adapted_multi_label(const gf_adapted *a);
/* Logits [n, classes] of n <= max_batch preprocessed images x [n, C, H, W]. */
gf_status gf_adapted_predict(gf_adapted *a, const float *x, int n, float *logits);

typedef struct gf_eval_options {
    const char *data_path, *split;
    int limit;                               /* the subset `train --val-limit N --seed S` evaluates; 0 = all */
    uint64_t seed;
    int batch, threads, quiet;               /* batch: as in training for identical numbers (default 64) */
    const char *cache_dir;                   /* activation cache, as gf_job.cache_dir */
} gf_eval_options;
typedef struct gf_eval_result {
    int n, classes, multi_label;
    double loss, metric;                     /* mean loss; top-1 accuracy or mAP */
} gf_eval_result;
/* Loss and metric on a dataset, computed as `gradfeat train` computes its val columns. */
gf_status gf_adapted_eval(gf_adapted *a, const gf_eval_options *o, gf_eval_result *r);

#ifdef __cplusplus
}
#endif
#endif
