/* gradfeat train: the method end to end (see gradfeat_train.h). */
#include <ctype.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "gradfeat_train.h"

typedef enum { T_STR, T_INT, T_FLOAT, T_U64, T_FLAG, T_SIZE } opt_type;
typedef struct { const char *name; opt_type type; void *target; const char *arg, *help; } opt_def;

static void help(const opt_def *defs, int n) {
    printf("usage: %s train --model MODEL.safetensors --data DATA [options]\n\n"
           "Adapt a pre-trained CNN with gradients as features: run the frozen trunk once over the data\n"
           "(its outputs are cached), train the linear probe, then the linearized model and the\n"
           "comparison methods, and print one table. DATA is an ImageFolder, an IDX file or folder\n"
           "(MNIST / Fashion-MNIST), or a CSV manifest (several labels per row = multi-label, mAP).\n\n"
           "options (each also read from the environment as GRADFEAT_<NAME>, e.g. GRADFEAT_EPOCHS=5):\n", cli_prog);
    for (int i = 0; i < n; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", defs[i].name, defs[i].arg ? " " : "", defs[i].arg ? defs[i].arg : "");
        printf("  %-26s %s\n", left, defs[i].help);
    }
    printf("\nmethods: linear (probe w1'f + b1), gradient (w_bar' J w2 + b1), full (paper Eq. 2:\n"
           "w1'f + b1 + w_bar' J w2), finetune (backprop of the top block and head); all = the four.\n\n"
           "examples:\n"
           "  %s train --model models/emotion/emotion.safetensors \\\n"
           "      --data /usr/share/datasets/fashion-mnist --split train --limit 2000 \\\n"
           "      --val /usr/share/datasets/fashion-mnist --val-split test --method all --epochs 5\n"
           "  %s train --model resnet18.safetensors --data photos/ --method full --top layer4.1 \\\n"
           "      --optimizer sgd --lr 0.1 --clip-norm 10 --run-dir runs/photos\n", cli_prog, cli_prog);
}

static int set_opt(const opt_def *d, const char *val, const char *origin) {
    char *end;
    switch (d->type) {
    case T_STR: *(const char **)d->target = val; return 0;
    case T_FLAG: *(int *)d->target = val ? (strcmp(val, "0") != 0) : 1; return 0;
    case T_INT: {
        long v = strtol(val, &end, 10);
        if (!*val || *end || v < 0 || v > 1000000000) return cli_usage_error("train", "%s%s must be a non-negative integer, got '%s'", origin, d->name, val);
        *(int *)d->target = (int)v; return 0;
    }
    case T_U64: {
        unsigned long long v = strtoull(val, &end, 10);
        if (!*val || *end) return cli_usage_error("train", "%s%s must be an integer, got '%s'", origin, d->name, val);
        *(uint64_t *)d->target = v; return 0;
    }
    case T_FLOAT: {
        float v = strtof(val, &end);
        if (!*val || *end || !(v >= 0)) return cli_usage_error("train", "%s%s must be a non-negative number, got '%s'", origin, d->name, val);
        *(float *)d->target = v; return 0;
    }
    case T_SIZE:
        if (cli_parse_size(val, (uint64_t *)d->target)) return cli_usage_error("train", "%s%s must be a size like 512M or 4G, got '%s'", origin, d->name, val);
        return 0;
    }
    return 0;
}

/* Set by SIGINT/SIGTERM: training checks it between steps, writes a
 * checkpoint and stops. SA_RESETHAND: a second signal kills at once. */
static volatile sig_atomic_t stop_signal;
static void on_signal(int sig) { stop_signal = sig; }

static int bail(gf_ctx *ctx, void *cfg, int rc) {
    gf_job_config_free(cfg);
    gf_ctx_free(ctx);
    return rc;
}

/* --config FILE: each key is a long option of train; flags given on the command line win. */
typedef struct { const opt_def *defs; int n; const int *given; int *from_config; char **owned; } config_ctx;

static int config_set(void *user, const char *key, const char *value) {
    config_ctx *cc = user;
    for (int i = 0; i < cc->n; i++) {
        if (strcmp(cc->defs[i].name, key) || !strcmp(key, "config")) continue;
        if (cc->given[i]) return 0;                              /* the flag overrides the file */
        if (cc->defs[i].type == T_FLAG) {                        /* "quiet", "quiet yes", "quiet 0" */
            int on = !*value || !strcmp(value, "1") || !strcmp(value, "yes") || !strcmp(value, "true") || !strcmp(value, "on");
            int off = !strcmp(value, "0") || !strcmp(value, "no") || !strcmp(value, "false") || !strcmp(value, "off");
            if (!on && !off) return cli_usage_error("train", "config file: %s takes yes/no, got '%s'", key, value);
            *(int *)cc->defs[i].target = on;
        } else {
            char *copy = strdup(value);                          /* value lives only during the call */
            if (!copy) return GF_ERR_MEMORY;
            free(cc->owned[i]);
            cc->owned[i] = copy;
            int rc = set_opt(&cc->defs[i], copy, "config file: ");
            if (rc) return rc;
        }
        cc->from_config[i] = 1;
        return 0;
    }
    return -1;
}

static int train_main(int argc, char **argv, char **owned);

int cmd_train(int argc, char **argv) {
    char *owned[64] = {0};                                       /* config-file strings the job points into */
    int rc = train_main(argc, argv, owned);
    for (int i = 0; i < 64; i++) free(owned[i]);
    return rc;
}

static int train_main(int argc, char **argv, char **owned) {
    gf_job job;
    gf_job_defaults(&job);
    const char *device = NULL, *method = "all", *optimizer = "adam";
    int verbose = 0, no_cache = 0;
    const char *resume_dir = NULL, *config_path = NULL;
    const opt_def defs[] = {
        {"model", T_STR, &job.model_path, "FILE", "model file (.safetensors; see tools/convert_*.py)"},
        {"data", T_STR, &job.data_path, "PATH", "training data"},
        {"split", T_STR, &job.data_split, "NAME", "split of the training data (IDX: train/test; folder: a sub-folder)"},
        {"val", T_STR, &job.val_path, "PATH", "evaluation data (default: none)"},
        {"val-split", T_STR, &job.val_split, "NAME", "split of the evaluation data"},
        {"limit", T_INT, &job.limit_train, "N", "use a seeded random subset of N training samples"},
        {"val-limit", T_INT, &job.limit_val, "N", "use a seeded random subset of N evaluation samples"},
        {"method", T_STR, &method, "M", "linear|gradient|full|finetune|all or a comma list (default all)"},
        {"top", T_STR, &job.top, "BLOCK", "top block to linearize (default: the model's first, see `gradfeat info`)"},
        {"epochs", T_INT, &job.epochs, "N", "epochs per method (default 10)"},
        {"probe-epochs", T_INT, &job.probe_epochs, "N", "epochs of the probe (default 10 x --epochs: it trains on cached features, so it is cheap)"},
        {"batch", T_INT, &job.batch, "N", "batch size (default 64)"},
        {"optimizer", T_STR, &optimizer, "adam|sgd", "Adam (paper: beta 0.5, 0.999) or SGD with momentum (default adam)"},
        {"lr", T_FLOAT, &job.lr, "X", "learning rate (default 1e-3)"},
        {"momentum", T_FLOAT, &job.momentum, "X", "SGD momentum (default 0.9)"},
        {"beta1", T_FLOAT, &job.beta1, "X", "Adam beta1 (default 0.5)"},
        {"beta2", T_FLOAT, &job.beta2, "X", "Adam beta2 (default 0.999)"},
        {"weight-decay", T_FLOAT, &job.weight_decay, "X", "L2 weight decay; pulls w2 toward 0 = theta2 toward theta_bar (default 1e-6)"},
        {"clip-norm", T_FLOAT, &job.clip_norm, "X", "clip the global gradient norm (default 0 = off)"},
        {"ntk", T_FLAG, &job.ntk, NULL, "NTK parametrisation of gradient/full: tangent weights x sqrt(1/C_out), biases x sqrt(0.1), head x sqrt(1/K)"},
        {"eval-every", T_INT, &job.eval_every, "N", "evaluate every N epochs and after the last (default 1)"},
        {"log-json", T_STR, &job.log_json, "FILE", "write one JSON object per progress report and per epoch"},
        {"log-every", T_INT, &job.log_every, "N", "progress line every N steps when stderr is not a terminal (default 50)"},
        {"lr-halve-every", T_INT, &job.lr_halve_every, "N", "halve the learning rate every N epochs (default 20; 0 = never)"},
        {"seed", T_U64, &job.seed, "N", "seed of the subset, shuffling and initialisation (default 1)"},
        {"max-device-mem", T_SIZE, &job.max_device_mem, "SIZE", "device memory the activation cache may use, e.g. 4G"},
        {"run-dir", T_STR, &job.run_dir, "DIR", "write results.json, metrics.jsonl, classes.txt, <method>.safetensors and checkpoints here"},
        {"checkpoint-every", T_INT, &job.checkpoint_every, "N", "checkpoint every N optimiser steps (default 500; 0 = only at method ends and on SIGINT/SIGTERM)"},
        {"resume", T_STR, &resume_dir, "RUN_DIR", "continue the interrupted run in RUN_DIR (give the same options; the result is bit-identical on the same device)"},
        {"cache-dir", T_STR, &job.cache_dir, "DIR", "activation cache folder (default ~/.cache/gradfeat/activations)"},
        {"no-cache", T_FLAG, &no_cache, NULL, "do not keep or reuse trunk outputs on disk"},
        {"threads", T_INT, &job.threads, "N", "image decoding threads (default: all CPUs)"},
        {"quiet", T_FLAG, &job.quiet, NULL, "no progress on stderr"},
        {"device", T_STR, &device, "SEL", "OpenCL device: index, P:D, cpu, gpu or part of a name"},
        {"verbose", T_FLAG, &verbose, NULL, "more messages"},
        {"config", T_STR, &config_path, "FILE", "options from FILE: 'key value' lines, # comments (flags > FILE > GRADFEAT_* > defaults)"},
    };
    enum { N = sizeof defs / sizeof defs[0] };
    _Static_assert(N <= 64, "owned[] in cmd_train holds one string per option");
    struct option lopts[N + 2];
    int given[N] = {0};
    for (int i = 0; i < N; i++) lopts[i] = (struct option){defs[i].name, defs[i].type == T_FLAG ? no_argument : required_argument, 0, 1000 + i};
    lopts[N] = (struct option){"help", no_argument, 0, 'h'};
    lopts[N + 1] = (struct option){0, 0, 0, 0};
    int c, rc;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
        if (c == 'h') { help(defs, N); return 0; }
        if (c < 1000) return cli_usage_error("train", "unknown option");
        if ((rc = set_opt(&defs[c - 1000], optarg, "--"))) return rc;
        given[c - 1000] = 1;
    }
    if (optind < argc) return cli_usage_error("train", "unexpected argument '%s'", argv[optind]);
    if (!config_path) config_path = cli_env_or(NULL, "GRADFEAT_CONFIG");
    if (config_path) {
        int from_config[N] = {0};
        config_ctx cc = {defs, N, given, from_config, owned};
        char err[1200];
        if ((rc = cli_config_load(config_path, config_set, &cc, err, sizeof err))) {
            fprintf(stderr, "%s train: %s\n", cli_prog, err);
            return rc;
        }
        for (int i = 0; i < N; i++) given[i] |= from_config[i];    /* GRADFEAT_* only fills the rest */
    }
    /* environment twins: GRADFEAT_<NAME> for every option not given */
    for (int i = 0; i < N; i++) {
        if (given[i] || !strcmp(defs[i].name, "device")) continue;   /* GRADFEAT_DEVICE is read by the context */
        char env[64] = "GRADFEAT_";
        for (const char *p = defs[i].name; *p && strlen(env) < sizeof env - 1; p++) {
            size_t l = strlen(env);
            env[l] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
            env[l + 1] = 0;
        }
        const char *v = getenv(env);
        char origin[96];   /* names the variable: "environment GRADFEAT_EPOCHS: --epochs must be ..." */
        snprintf(origin, sizeof origin, "environment %s: --", env);
        if (v && *v && (rc = set_opt(&defs[i], v, origin))) return rc;
        if (v && *v) given[i] = 1;
    }
    /* --resume RUN_DIR alone: options not given come from the checkpoint (given
     * ones must match it: gf_job_run checks and names a difference) */
    gf_ctx *ctx = NULL;
    void *saved_cfg = NULL;
    if (resume_dir) {
        if ((rc = cli_ctx_open(device, verbose, &ctx))) return rc;
        gf_job saved = job;
        gf_status st = gf_job_load_resume_config(ctx, resume_dir, &saved, &saved_cfg);
        if (st != GF_OK) { rc = cli_fail(ctx, st); gf_ctx_free(ctx); return rc; }
        static const char *from_ckpt[] = {"model", "data", "split", "val", "val-split", "limit", "val-limit", "top",
                                          "epochs", "probe-epochs", "batch", "lr", "momentum", "beta1", "beta2",
                                            "weight-decay", "clip-norm", "lr-halve-every", "seed", "ntk", "eval-every"};
        for (int i = 0; i < N; i++) {
            if (given[i]) continue;
            if (!strcmp(defs[i].name, "method")) { job.methods = saved.methods; method = NULL; continue; }
            if (!strcmp(defs[i].name, "optimizer")) { job.sgd = saved.sgd; optimizer = NULL; continue; }
            for (size_t k = 0; k < sizeof from_ckpt / sizeof *from_ckpt; k++) {
                if (strcmp(defs[i].name, from_ckpt[k])) continue;
                size_t off = (size_t)((char *)defs[i].target - (char *)&job);
                size_t sz = defs[i].type == T_STR ? sizeof(const char *) : defs[i].type == T_U64 ? sizeof(uint64_t)
                          : defs[i].type == T_FLOAT ? sizeof(float) : sizeof(int);
                memcpy((char *)&job + off, (char *)&saved + off, sz);
            }
        }
    }
    if (!job.model_path) return bail(ctx, saved_cfg, cli_usage_error("train", "--model is required"));
    if (!job.data_path) return bail(ctx, saved_cfg, cli_usage_error("train", "--data is required"));
    if (method && !(job.methods = gf_job_parse_methods(method))) return bail(ctx, saved_cfg, cli_usage_error("train", "unknown --method '%s'", method));
    if (optimizer && !strcmp(optimizer, "sgd")) { job.sgd = 1; }
    else if (optimizer && strcmp(optimizer, "adam")) return bail(ctx, saved_cfg, cli_usage_error("train", "--optimizer must be adam or sgd"));
    if (no_cache) job.cache_dir = "";
    if (resume_dir) {
        if (job.run_dir && strcmp(job.run_dir, resume_dir))
            return bail(ctx, saved_cfg, cli_usage_error("train", "--resume %s and --run-dir %s differ (the run continues in its own directory)",
                                   resume_dir, job.run_dir));
        job.run_dir = resume_dir;
        job.resume = 1;
    }
    if (job.batch < 1 || job.epochs < 1) return bail(ctx, saved_cfg, cli_usage_error("train", "--batch and --epochs must be at least 1"));

    if (!ctx && (rc = cli_ctx_open(device, verbose, &ctx))) return rc;
    if (!job.quiet) {
        const gf_device_info *d = gf_ctx_device(ctx);
        fprintf(stderr, "device: %s (%s) — %s\n", d->name, d->platform_name, gf_ctx_device_reason(ctx));
    }
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    stop_signal = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    job.stop = &stop_signal;
    gf_job_result res;
    /* kernel compilation as its own visible phase (seconds on a first run, then the driver's cache) */
    if (!job.quiet) fprintf(stderr, "compiling OpenCL kernels (slow only on the first run on this device)...");
    double compile_s = 0;
    gf_status st = gf_ctx_warmup(ctx, &compile_s);
    if (!job.quiet) fprintf(stderr, " %.2f s\n", compile_s);
    if (st == GF_OK) st = gf_job_run(ctx, &job, &res);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (st == GF_OK && res.stopped) {
        /* 128 + signal, the shell's convention: 130 for SIGINT, 143 for SIGTERM */
        int sig = stop_signal ? (int)stop_signal : SIGINT;
        if (res.checkpoint[0])
            fprintf(stderr, "%s: interrupted (%s): checkpoint written to %s; continue with --resume %s and the same "
                    "options\n", cli_prog, sig == SIGTERM ? "SIGTERM" : "SIGINT", res.checkpoint, job.run_dir);
        else
            fprintf(stderr, "%s: interrupted (%s) %s; nothing to resume\n", cli_prog, sig == SIGTERM ? "SIGTERM" : "SIGINT",
                    job.run_dir ? "before training started" : "without --run-dir, so nothing was saved");
        return bail(ctx, saved_cfg, 128 + sig);
    }
    if (st == GF_OK) gf_job_print_table(&res, stdout);
    rc = st == GF_OK ? 0 : cli_fail(ctx, st);
    return bail(ctx, saved_cfg, rc);
}
