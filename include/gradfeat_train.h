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
    int lr_halve_every;                      /* epochs; 0 = never */
    uint64_t seed;
    uint64_t max_device_mem;                 /* bytes for the activation cache on the device; 0 = half the device */
    const char *run_dir;                     /* outputs (metrics.jsonl, results.json, classes.txt); NULL = none */
    const char *cache_dir;                   /* activation cache files; NULL = default, "" = do not keep */
    int threads;                             /* image decoding threads; 0 = online CPUs */
    int quiet;                               /* no progress lines on stderr */
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
} gf_job_result;

gf_status gf_job_run(gf_ctx *ctx, const gf_job *job, gf_job_result *res);
/* The comparison table (stdout of `gradfeat train`). */
void gf_job_print_table(const gf_job_result *res, FILE *out);

#ifdef __cplusplus
}
#endif
#endif
