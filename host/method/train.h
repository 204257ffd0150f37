/* Training driver over cached trunk outputs (activation caching): the probe,
 * then gradient / full / finetune from it, with per-epoch evaluation.
 * The cache (z0 for every sample) lives on the device when it fits the
 * memory budget, else on the host (z0 is then usually the memory-mapped cache
 * file, see actcache.c) with one upload per batch. */
#ifndef GF_TRAIN_H
#define GF_TRAIN_H
#include <signal.h>
#include "gradfeat_train.h"
#include "linearized.h"

typedef struct gf_cached_set {
    int n, sample_floats, classes, multi_label;
    const float *z0;            /* host: n x sample_floats trunk outputs */
    const int *labels;          /* single-label: n class indices */
    const float *targets;       /* multi-label: n x classes 0/1 */
} gf_cached_set;

/* The best bias-only model of a training set, `gradient`'s starting b1: log class frequencies
 * (softmax), log odds per label (multi-label); add-half smoothed. b: classes floats. */
void gf_prior_bias(const gf_cached_set *s, float *b);

struct gf_method_result;
struct gf_ckpt;
typedef struct gf_train_options {
    int epochs, batch;
    gf_optim optim;
    int lr_halve_every;         /* epochs; 0 = never (step schedule only) */
    int lr_cosine;              /* 1: each method's lr falls from lr to 0 over its run, a cosine of the step
                                   (per step, so a resumed run computes the same rates); 0: constant, halved
                                   every lr_halve_every epochs */
    uint64_t seed;
    uint64_t max_device_mem;    /* bytes the cache may take on the device; 0 = planner decides */
    int probe_epochs;           /* 0 = epochs */
    int eval_every;             /* evaluate every N epochs (and after the last); 0 or 1 = every epoch */
    int grad_chunk;             /* > 0: the step's gradient summed over chunks of this many samples in double, in
                                   order (the same for any number of ranks: bit-identical runs); 0: whole */
    int ntk;                    /* NTK parametrisation for gradient/full (linearized.h) */
    /* model selection on held-out training data (never the val/test set):
     * holdout NULL = none. With one, every method's held-out loss and metric are
     * measured before training (epoch 0: for full and finetune that is the probe
     * itself) and at every evaluation, and the method keeps the parameters of its
     * best evaluation under `select`; a method whose held-out loss stays above
     * diverge_factor x its epoch-0 value (and above the best) for
     * diverge_patience evaluations in a row is stopped (result.diverged). */
    const gf_cached_set *holdout;
    int select;                 /* GF_SELECT_*; ignored without a holdout */
    double diverge_factor;      /* 0 = never stop early */
    int diverge_patience;
    /* the probe: GF_PROBE_LBFGS solves the L2-regularised problem to convergence
     * on the cached features (host, double precision), with the L2 strength
     * probe_l2, or (probe_l2 < 0) the best of a log grid on the holdout (without
     * a holdout: 1e-4); GF_PROBE_SGD trains it like the other methods for
     * probe_epochs with learning rate probe_lr (0 = optim.lr). */
    int probe_solver;
    double probe_l2;
    float probe_lr;
    float finetune_lr;        /* finetune's learning rate; 0 = optim.lr */
    /* with a holdout: gradient/full/finetune each train at optim.lr, x10 and /10 and keep the rate
     * with the lowest held-out loss (result.lr) */
    int lr_auto;
    /* the random-ω ablation: the gradient term of gradient/full uses a seeded
     * shuffle of the probe's weights as ω̄ (w1 still starts at the probe) */
    int random_omega;
    int no_primal_cache;        /* 1: rerun the block's primal forward every step even when the
                                   primal cache (block.h) fits the device budget */
    int quiet;                  /* no progress line about where the caches went */
    int cache_half;             /* 1: the activation cache (both tiers) and the primal cache's node values
                                   stored as IEEE halves (--cache-dtype f16), computed in float */
    /* progress within an epoch: on_step is called after a step when report_seconds
     * have passed since the last call, or every report_steps steps (either 0 = off),
     * and after the epoch's last step. Each call reads two floats from the device. */
    void (*on_step)(void *user, gf_method m, int epoch, int epochs, int step, int steps, double loss,
                    double accuracy, double images_per_s, double seconds);
    double report_seconds;
    int report_steps;
    int verbose;
    /* progress: called after each epoch of each method (may be NULL) */
    void (*on_epoch)(void *user, gf_method m, int epoch, int epochs, double train_loss, double train_metric,
                     double val_loss, double val_metric, double hold_loss, double hold_metric, double seconds);
    /* called when a method has finished and its parameters are in r; probe =
     * the linear probe's result (ω̄ = probe->w1). May be NULL. */
    gf_status (*on_method)(void *user, gf_method m, const struct gf_method_result *r,
                           const struct gf_method_result *probe);
    void *user;
    /* durability: checkpoint_path NULL = none. A checkpoint is written every
     * checkpoint_every optimiser steps (0 = never periodically), when a method
     * finishes, and when *stop becomes nonzero (checked between steps; gf_train
     * then returns GF_OK with res->stopped set). checkpoint_meta (JSON text, may
     * be NULL) is stored with it; resume (may be NULL) continues a run exactly. */
    const char *checkpoint_path;
    int checkpoint_every;
    volatile sig_atomic_t *stop;
    const char *(*checkpoint_meta)(void *user);
    const struct gf_ckpt *resume;
} gf_train_options;
void gf_train_options_default(gf_train_options *o);
enum { GF_SELECT_LAST = 0, GF_SELECT_LOSS = 1, GF_SELECT_METRIC = 2 };
enum { GF_PROBE_LBFGS = 0, GF_PROBE_SGD = 1 };

typedef struct gf_method_result {
    int ran;
    double train_loss, train_metric, val_loss, val_metric, seconds;   /* metric: accuracy or mAP */
    float *block_params;        /* w2 (gradient/full) or θ (finetune), gf_block_param_count floats */
    float *w1, *b1;             /* head [K, d], [K] */
    float *val_scores;          /* logits of the last evaluation [n_val, K], or NULL */
    /* model selection (with a holdout; else best_epoch = epochs, hold_* NAN) */
    int best_epoch;             /* the epoch whose parameters were kept; 0 = the starting point */
    int epochs_run;             /* < epochs when stopped for divergence */
    int diverged;               /* stopped early: held-out loss ran away */
    double hold_loss, hold_metric;
    double probe_l2;            /* linear with the L-BFGS solver: the L2 strength used; else NAN */
    float lr;                   /* the learning rate it trained with (--lr-auto's choice) */
} gf_method_result;

typedef struct gf_train_result {
    gf_method_result m[4];      /* indexed by gf_method */
    int cache_on_device;
    double cache_seconds;       /* the caches put on the device */
    double features_seconds;    /* the top block at θ̄ over the trunk outputs: the probe's features (and the
                                   primal cache's values) */
    size_t primal_cache_bytes;  /* device bytes of the primal cache; 0 = not used */
    size_t cache_bytes;         /* device bytes of the activation cache (train, val, holdout); 0 = host tier */
    int stopped;                /* *o->stop was seen: the run stopped after writing a checkpoint */
    int checkpoints;            /* checkpoints written */
} gf_train_result;
void gf_train_result_free(gf_train_result *r);

/* Runs the methods in `methods` (bitmask of 1 << gf_method). The probe is
 * always trained first when any method needs it (ω̄ for gradient/full; the
 * starting head for finetune). val may be NULL. */
gf_status gf_train(gf_ctx *ctx, gf_block *block, const float *theta_bar, const gf_cached_set *train,
                   const gf_cached_set *val, unsigned methods, const gf_train_options *o, gf_train_result *res);

/* The linear probe by L-BFGS (host/method/probe.c): minimises the mean training loss
 * (softmax cross-entropy, or per-class sigmoid BCE averaged over n x K, as the
 * device losses) + l2/2 ||w||² (no penalty on b) over features f [n, d] to
 * convergence. l2 < 0 with a holdout ho: the best of a log grid 1e-1..1e-6 by
 * held-out loss (select = GF_SELECT_METRIC: by metric, ties by loss), each
 * solve warm-started from the previous one, the path stopped once the held-out
 * loss has risen twice in a row past the best (weaker L2 costs the most
 * iterations and only overfits more); l2 < 0 without: 1e-4. Writes w [K, d],
 * b [K], the L2 used and (l2_tried, may be NULL) how many L2 values were solved. */
typedef struct gf_probe_data {
    const float *f;
    int n;
    const int *labels;          /* single-label */
    const float *targets;       /* multi-label [n, K] */
} gf_probe_data;
gf_status gf_probe_fit(gf_ctx *ctx, const gf_probe_data *train, const gf_probe_data *ho, int K, int d, int multi,
                       double l2, int select, float *w, float *b, double *l2_used, int *l2_tried);

/* The random ω̄ of random_omega: a seeded shuffle of the probe's n weights. */
void gf_random_omega(const float *omega, size_t n, uint64_t seed, float *out);

/* Splits off a held-out part of a cached set, in place: a seeded, stratified
 * (per class; multi-label: plain random) fraction `frac` of the rows moves to
 * the end of z0/labels/targets; *set keeps the rest and *hold describes the
 * moved rows (same arrays). Each class keeps at least one training row. */
gf_status gf_holdout_split(gf_ctx *ctx, gf_cached_set *set, float *z0, int *labels, float *targets, double frac,
                           uint64_t seed, gf_cached_set *hold);

/* Mean loss and metric of model m over a whole set (as the per-epoch
 * evaluation computes them), batches of `batch` in set order. */
gf_status gf_train_evaluate(gf_ctx *ctx, gf_lin *m, const gf_cached_set *set, int batch, double *loss, double *metric);

/* ---- checkpoints (host/method/checkpoint.c) ----
 * File: "GFCKPT02" | u64 json_len | u64 data_len | u64 XXH3 64 of json+data ("GFCKPT01": FNV-1a 64, still read) |
 * json | data. The JSON holds the integers and the layout of the data area
 * (named float32/float64 arrays); doubles and floats stay binary so that a
 * resumed run is bit for bit the uninterrupted one. */
enum { GF_CKPT_SCAL = 12 };
typedef struct gf_ckpt {
    char *meta;                 /* job JSON text (configuration, data keys); may be NULL */
    int K, d, n_train, n_val;   /* checked on resume */
    size_t block_count;         /* gf_block_param_count (device layout) */
    unsigned methods;
    int done[4];                /* finished methods: their results below */
    double scal[4][GF_CKPT_SCAL]; /* per method: train_loss, train_metric, val_loss, val_metric, seconds,
                                     best_epoch, epochs_run, diverged, hold_loss, hold_metric, probe_l2, lr */
    float *w1[4], *b1[4], *block[4];
    /* the method in progress; active 0 = none (start the next one afresh) */
    int active, method, epoch, b0, steps;
    long step;
    float lr, stats[GF_LIN_STATS];
    float *state;
    size_t state_count;
    /* the active method's model selection: sel_have 0 = nothing kept yet */
    int sel_have, sel_epoch, sel_bad;
    double sel_scal[5];         /* loss0, loss, metric, train_loss, train_metric */
    double sel_min;             /* the lowest held-out loss so far (NAN in older checkpoints) */
    double sel_fb[4];           /* --select last: the lowest-loss evaluation's epoch, metric, train loss and metric
                                   (sel_w1.. hold its parameters; NAN in older checkpoints) */
    float *sel_w1, *sel_b1, *sel_block;
    /* choices the device-memory budget made that change the arithmetic, kept so that a resume under
     * another --max-device-mem computes the same floats: the primal cache (1 on, 0 off; -1 = not
     * recorded, a checkpoint from before this field) */
    int primal_cache;
} gf_ckpt;
gf_status gf_ckpt_write(gf_ctx *ctx, const char *path, const gf_ckpt *c);
/* Rejects a truncated or corrupt file (GF_ERR_INPUT naming it). */
gf_status gf_ckpt_read(gf_ctx *ctx, const char *path, gf_ckpt *c);
void gf_ckpt_free(gf_ckpt *c);

/* Metrics on host logits: top-1 accuracy, and mAP (mean over classes with at
 * least one positive of average precision = mean of precision at each positive,
 * ranks by descending score, ties counted pessimistically). */
double gf_accuracy(const float *logits, const int *labels, int n, int K);
double gf_mean_ap(const float *scores, const float *targets, int n, int K, double *ap_per_class);

/* ---- adapted model files (host/method/adapted.c; format: models/README.md) ----
 * Copies the base model file's tensors and metadata verbatim and adds
 * gradfeat.head.{w1,b1,omega_bar}, gradfeat.block.<node>.{weight,bias} (the
 * block vector per node, so the file does not depend on the device's layout)
 * and __metadata__["gradfeat.adapted"] = adapted_json. */
typedef struct gf_saved_model {
    const char *base_path;
    const char *adapted_json;
    int K, d;
    const float *w1, *b1, *omega_bar;
    const gf_block *blk;
    const float *block_vec;     /* NULL: none (linear) */
} gf_saved_model;
/* file_xxh3 (may be NULL): the XXH3 64 of the file written (gf_st_write) */
gf_status gf_saved_model_write(gf_ctx *ctx, const char *path, const gf_saved_model *s, uint64_t *file_xxh3);
#endif
