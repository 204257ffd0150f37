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
    const char *top;                         /* top block by name (a lower block: it and every block above it);
                                                NULL = the model's default */
    int top_blocks;                          /* > 0: θ2 = the top N blocks (instead of top) */
    unsigned methods;                        /* GF_JOB_* mask */
    int epochs, probe_epochs, batch;         /* probe_epochs 0 = 10 x epochs (the probe is cheap) */
    int sgd;                                 /* 1: SGD + momentum (official configs); 0: Adam (paper §4) */
    float lr, momentum, weight_decay, clip_norm, beta1, beta2;
    int ntk;                                 /* NTK parametrisation of gradient/full (the paper's and official code's;
                                                on by default: see README "Why the defaults") */
    /* model selection on held-out TRAINING data (the val set stays a pure test set):
     * holdout = fraction split off the training samples (seeded, stratified; 0 = none);
     * select  = GF_JOB_SELECT_*: which evaluation's parameters each method keeps. */
    float holdout;
    int select;
    int probe_sgd;                           /* 0: probe by L-BFGS to convergence (default); 1: trained like the
                                                other methods for probe_epochs at probe_lr */
    float probe_l2;                          /* L-BFGS probe's L2 strength; < 0 = chosen on the holdout (default) */
    float probe_lr;                          /* SGD/Adam probe's learning rate; 0 = lr */
    float finetune_lr;                       /* finetune's learning rate (default 1e-4); 0 = lr / 10 (pre-trained
                                                weights need smaller steps than the linear parts: at lr it diverged on
                                                every dev task) */
    unsigned random;                         /* the paper's ablation, GF_JOB_RANDOM_* bits: shuffle (seeded, per
                                                tensor) the trunk's / top block's pre-trained weights, or use a
                                                shuffled ω̄ in the gradient term; 0 = none */
    int lr_auto;                             /* gradient/full/finetune each train at lr, 10 lr and lr/10 and keep
                                                the rate with the lowest held-out loss */
    int eval_every;                          /* evaluate every N epochs and after the last; 0/1 = every epoch */
    int grad_chunk;                          /* > 0: each step's gradient is the sum, in double and in order, of the
                                                gradients of chunks of this many samples, so that a run under
                                                mpirun gives the same bits as one process (README "Several
                                                processes"); 0: one gradient per batch (or rank share) */
    const char *log_json;                    /* one JSON object per progress report and per epoch; NULL = none */
    int log_every;                           /* progress line every N steps unless the context's progress_live (0 = 50) */
    int log_every_secs;                      /* ... and at least every N seconds then (defaults: 30; 0 = by steps only) */
    int lr_halve_every;                      /* epochs; 0 = never (step schedule) */
    int lr_cosine;                           /* 1: gradient/full/finetune's lr falls from lr to 0 over each method's
                                                run, a cosine of the step (default); 0: step schedule */
    uint64_t seed;
    uint64_t max_device_mem;                 /* bytes for the activation cache on the device; 0 = half the device */
    int cache_f16;                           /* 1: the activation and primal caches stored as IEEE halves (half the
                                                memory and bandwidth; every op still computes in float); 0: float */
    const char *run_dir;                     /* outputs (metrics.jsonl, results.json, classes.txt); NULL = none */
    const char *cache_dir;                   /* activation cache files; NULL or "" = do not keep (the CLI's default:
                                                ~/.cache/gradfeat/activations) */
    int threads;                             /* image decoding threads; 0 = online CPUs */
    int quiet;                               /* no progress lines (the context's progress callback) */
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
enum { GF_JOB_RANDOM_THETA1 = 1, GF_JOB_RANDOM_THETA2 = 2, GF_JOB_RANDOM_OMEGA = 4 };
/* "theta1", "theta2", "omega" or a comma list -> GF_JOB_RANDOM_* mask; -1 if unknown ("" / "none" -> 0). */
int gf_job_parse_random(const char *s);
enum { GF_JOB_SELECT_LAST = 0, GF_JOB_SELECT_LOSS = 1, GF_JOB_SELECT_METRIC = 2 };
/* Defaults: the paper's (§4) Adam β=(0.5, 0.999), wd 1e-6, batch 64 and NTK parametrisation; chosen on our
 * dev tasks (README): lr 1e-2 falling to 0 by a cosine over 10 epochs, the last epoch kept, finetune at 1e-4;
 * a 10 % holdout for the probe's L2 (L-BFGS) and the divergence stop. */
void gf_job_defaults(gf_job *job);

typedef struct gf_job_result {
    int ran[4];
    double train_loss[4], train_metric[4], val_loss[4], val_metric[4], seconds[4];
    double hold_loss[4], hold_metric[4];     /* on the holdout (NAN without one) */
    int best_epoch[4], epochs_run[4], diverged[4];   /* the kept epoch (0 = the start), epochs trained, early stop */
    double probe_l2;                         /* the L-BFGS probe's L2 strength (NAN for the SGD probe) */
    double lr[4];                            /* learning rate each method trained with */
    int lr_auto_used;                        /* lr[] were chosen on the holdout */
    int select;                              /* GF_JOB_SELECT_*: which evaluation each method kept */
    int multi_label, n_train, n_val, n_hold, classes;
    char top[128];
    double trunk_seconds;                    /* the one trunk pass (0 when the cache was reused) */
    double cache_seconds;                    /* the activation and primal caches set up on the device */
    double features_seconds;                 /* the top block at θ̄ over the trunk outputs (the probe's features,
                                                the primal cache's values); not in seconds[0] */
    int cache_reused, cache_on_device;
    uint64_t cache_bytes, primal_cache_bytes; /* device bytes of the activation cache (0: kept in host memory) and
                                                of the primal cache (0: not used) */
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


/* ---------------------------------------------------------------- pretraining
 * `gradfeat pretrain`: train every layer of a network from scratch and write a
 * gradfeat model file (models/README.md) that train/info/predict load.
 * Architectures (BN eps 1e-5, momentum 0.1; head: global average pool -> fc):
 *   small28    3x conv3x3+BN+ReLU (32, 64, 128; 2x2 max pools after the first
 *              two), top block conv3                         (28x28 inputs)
 *   bigan      BiGAN encoder: conv1 3x3 64 (bias, no BN), conv2-4 4x4 s2
 *              (128, 256, 512) + BN, conv5 3x3 512 + BN, leaky ReLU 0.2, top
 *              block conv5                                   (32x32 inputs)
 *   resnet18c  CIFAR ResNet-18 (3x3 stem, no max pool), top block layer4.1
 * Tasks: labels (the dataset's classes) or rotation (self-supervised: every
 * image of a batch enters it four times, turned by 0/90/180/270 degrees, and
 * the label is the turn; a batch of B images is 4B samples; square inputs).
 * Training: softmax cross-entropy; SGD with momentum (default) or Adam; weight
 * decay toward 0 on every parameter; learning rate cosine over the run's
 * epochs x batches (per step) or halved every lr_step epochs; augmentation
 * (training only): zero-pad P pixels + random crop back, and horizontal flip.
 * Inputs: pixels / 255, then per-channel mean/std measured on (up to 10000 of)
 * the training images; stored as the model's gradfeat.preprocess. */
typedef struct gf_pretrain_options {
    const char *arch;                        /* "small28", "bigan", "resnet18c" */
    const char *task;                        /* "labels" (default) or "rotation" */
    const char *data_path, *data_split;      /* training data (as gf_job) */
    const char *val_path, *val_split;        /* evaluation after each epoch (BN in eval mode); NULL = none */
    int limit_train, limit_val;              /* seeded subsets (the same subset `train --limit` picks); 0 = all */
    int size;                                /* input side in pixels (square); 0 = the first training image's */
    int epochs, batch;                       /* batch: images per step (rotation: 4x samples) */
    long max_steps;                          /* stop after this many optimiser steps in all (benchmarks, tests);
                                                0 = none. The schedule still spans all epochs; the run stops as if
                                                interrupted (checkpoint with run_dir, result.stopped = 0, .limited = 1) */
    int adam;                                /* 0: SGD + momentum; 1: Adam */
    float lr, momentum, weight_decay, beta1, beta2;
    int lr_step;                             /* halve the learning rate every N epochs; 0 = cosine (default) */
    int augment;                             /* pad-and-random-crop + horizontal flip on the training data */
    int no_flip;                             /* augment without the flip (digits, text: a mirrored digit is no digit) */
    int pad;                                 /* crop padding; 0 = 4 for inputs >= 32 px, else 2 */
    int width_div;                           /* divide every channel count (tests); 0/1 = as specified */
    uint64_t seed;                           /* initialisation, subsets, shuffling, augmentation */
    const char *out_path;                    /* model file; NULL = "<arch>-<task>.safetensors" */
    const char *run_dir;                     /* metrics.jsonl, checkpoint.gfptck; NULL = none */
    int checkpoint_every;                    /* optimiser steps (needs run_dir); 0 = only epoch ends and stops */
    int resume;                              /* continue from run_dir's checkpoint: same options, same device
                                                = bit-identical final parameters and model file */
    volatile sig_atomic_t *stop;             /* nonzero: checkpoint and return (result.stopped) */
    const char *log_json;                    /* one JSON object per progress report and per epoch */
    int log_every;                           /* progress line every N steps unless the context's progress_live (0 = 50) */
    int log_every_secs;                      /* ... and at least every N seconds then (defaults: 30; 0 = by steps only) */
    int init_only;                           /* write the initialised, untrained model (no step; `--steps 0`): the
                                                random-init control */
    int threads;                             /* image decoding threads; 0 = online CPUs */
    int quiet;                               /* no progress lines (the context's progress callback) */
    int grad_chunk;                          /* > 0: each step runs chunks of this many images one after another,
                                                batchnorm statistics per chunk (ghost batchnorm), the gradient and
                                                the running statistics' update summed over the chunks in double,
                                                in order: any number of processes gives the same bits as one.
                                                0 (default): statistics over the whole batch (over the ranks) */
} gf_pretrain_options;
/* lr 0.05, momentum 0.9, weight decay 5e-4, batch 128, Adam betas (0.9, 0.999),
 * 10 epochs, cosine, augmentation on, seed 1, checkpoint every 500 steps. */
void gf_pretrain_defaults(gf_pretrain_options *o);
/* 1 when name is a known architecture / task. */
int gf_pretrain_arch_known(const char *name);
int gf_pretrain_task_known(const char *name);

typedef struct gf_pretrain_result {
    int n_train, n_val, classes;             /* images; classes = outputs (4 for rotation) */
    int epochs_done;                         /* complete epochs */
    long steps;                              /* optimiser steps in all */
    double train_loss, train_acc;            /* last complete epoch (training mode, augmented) */
    double val_loss, val_acc;                /* last evaluation; NAN when none */
    double seconds, images_per_s;            /* this process's training time; source images/s (rotation:
                                              * an image and its three turns count once) */
    double samples_per_s;                    /* samples/s through the network (rotation: 4 x images_per_s) */
    int stopped, limited;                    /* *stop seen / max_steps reached: checkpoint holds the position */
    int checkpoints;
    char checkpoint[1200];                   /* the checkpoint written at a stop ("" when none) */
    char out_path[1200];                     /* the model file written ("" when stopped or limited) */
} gf_pretrain_result;
gf_status gf_pretrain_run(gf_ctx *ctx, const gf_pretrain_options *o, gf_pretrain_result *r);
/* The training configuration stored in RUN_DIR's checkpoint (what `pretrain
 * --resume RUN_DIR` continues when the options are not repeated): fills arch,
 * task, data/val paths, splits and limits, size, epochs, batch, optimiser
 * fields, lr_step, augment/no_flip/pad, width_div, seed and out_path of *o; its strings
 * live in *owner until gf_pretrain_config_free(*owner). GF_ERR_INPUT for a
 * missing or corrupt checkpoint. */
gf_status gf_pretrain_load_resume_config(gf_ctx *ctx, const char *run_dir, gf_pretrain_options *o, void **owner);
void gf_pretrain_config_free(void *owner);

#ifdef __cplusplus
}
#endif
#endif
