/* Training driver over cached trunk outputs (activation caching): the probe,
 * then gradient / full / finetune from it, with per-epoch evaluation.
 * The cache (z0 for every sample) lives on the device when it fits the
 * memory budget, else in host memory with one upload per batch. */
#ifndef GF_TRAIN_H
#define GF_TRAIN_H
#include "linearized.h"

typedef struct gf_cached_set {
    int n, sample_floats, classes, multi_label;
    const float *z0;            /* host: n x sample_floats trunk outputs */
    const int *labels;          /* single-label: n class indices */
    const float *targets;       /* multi-label: n x classes 0/1 */
} gf_cached_set;

typedef struct gf_train_options {
    int epochs, batch;
    gf_optim optim;
    int lr_halve_every;         /* epochs; 0 = never */
    uint64_t seed;
    uint64_t max_device_mem;    /* bytes the cache may take on the device; 0 = planner decides */
    int probe_epochs;           /* 0 = epochs */
    int verbose;
    /* progress: called after each epoch of each method (may be NULL) */
    void (*on_epoch)(void *user, gf_method m, int epoch, int epochs, double train_loss, double train_metric,
                     double val_loss, double val_metric, double seconds);
    void *user;
} gf_train_options;
void gf_train_options_default(gf_train_options *o);

typedef struct gf_method_result {
    int ran;
    double train_loss, train_metric, val_loss, val_metric, seconds;   /* metric: accuracy or mAP */
    float *block_params;        /* w2 (gradient/full) or θ (finetune), gf_block_param_count floats */
    float *w1, *b1;             /* head [K, d], [K] */
} gf_method_result;

typedef struct gf_train_result {
    gf_method_result m[4];      /* indexed by gf_method */
    int cache_on_device;
    double cache_seconds;
} gf_train_result;
void gf_train_result_free(gf_train_result *r);

/* Runs the methods in `methods` (bitmask of 1 << gf_method). The probe is
 * always trained first when any method needs it (ω̄ for gradient/full; the
 * starting head for finetune). val may be NULL. */
gf_status gf_train(gf_ctx *ctx, gf_block *block, const float *theta_bar, const gf_cached_set *train,
                   const gf_cached_set *val, unsigned methods, const gf_train_options *o, gf_train_result *res);

/* Metrics on host logits: top-1 accuracy, and mAP (mean over classes with at
 * least one positive of average precision = mean of precision at each positive,
 * ranks by descending score, ties counted pessimistically). */
double gf_accuracy(const float *logits, const int *labels, int n, int K);
double gf_mean_ap(const float *scores, const float *targets, int n, int K, double *ap_per_class);
#endif
