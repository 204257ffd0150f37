/* gradfeat train: the method end to end (see gradfeat_train.h). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "gradfeat_train.h"

static const cli_doc doc = {
    "gradfeat train --model MODEL.safetensors --data DATA [options]",
    "Adapt a pre-trained CNN with gradients as features: run the frozen trunk once over the data\n"
    "(its outputs are cached), train the linear probe, then the linearized model and the\n"
    "comparison methods, and print one table. DATA is an ImageFolder, an IDX file or folder\n"
    "(MNIST / Fashion-MNIST), or a CSV manifest (several labels per row = multi-label, mAP).\n\n"
    "methods: linear (probe w1'f + b1), gradient (w_bar' J w2 + b1), full (paper Eq. 2:\n"
    "w1'f + b1 + w_bar' J w2), finetune (backprop of the top block and head); all = the four.\n",
    "  gradfeat train --model models/emotion/emotion.safetensors \\\n"
    "      --data /usr/share/datasets/fashion-mnist --split train --limit 2000 \\\n"
    "      --val /usr/share/datasets/fashion-mnist --val-split test --method all --epochs 5\n"
    "  gradfeat train --model resnet18.safetensors --data photos/ --method full --top layer4.1 \\\n"
    "      --optimizer sgd --lr 0.1 --clip-norm 10 --run-dir runs/photos\n"
    "  GRADFEAT_EPOCHS=5 GRADFEAT_MAX_DEVICE_MEM=4G gradfeat train --config photos.conf --seed 2\n"
    "      (photos.conf: 'model resnet18.safetensors' / 'data photos/' lines)\n"};

static int bail(gf_ctx *ctx, void *cfg, int rc) {
    gf_job_config_free(cfg);
    gf_ctx_free(ctx);
    return rc;
}

static int train_main(int argc, char **argv, cli_opts *o);

int cmd_train(int argc, char **argv) {
    cli_opts o;                                                  /* config-file strings the job points into */
    int rc = train_main(argc, argv, &o);
    cli_opts_free(&o);
    return rc == CLI_HELP ? 0 : rc;
}

static int train_main(int argc, char **argv, cli_opts *o) {
    gf_job job;
    gf_job_defaults(&job);
    const char *device = NULL, *method = "all", *optimizer = "adam";
    int verbose = 0, no_cache = 0;
    const char *resume_dir = NULL, *probe_l2 = NULL, *random_parts = NULL;
    const cli_opt defs[] = {
        {"model", 0, CLI_STR, &job.model_path, "FILE", "model file (.safetensors; see tools/convert_*.py)", NULL, NULL, 0},
        {"data", 0, CLI_STR, &job.data_path, "PATH", "training data", NULL, NULL, 0},
        {"split", 0, CLI_STR, &job.data_split, "NAME", "split of the training data (IDX: train/test; folder: a sub-folder)", NULL, NULL, 0},
        {"val", 0, CLI_STR, &job.val_path, "PATH", "evaluation data (default: none)", NULL, NULL, 0},
        {"val-split", 0, CLI_STR, &job.val_split, "NAME", "split of the evaluation data", NULL, NULL, 0},
        {"limit", 0, CLI_INT, &job.limit_train, "N", "use a seeded random subset of N training samples", NULL, NULL, 0},
        {"val-limit", 0, CLI_INT, &job.limit_val, "N", "use a seeded random subset of N evaluation samples", NULL, NULL, 0},
        {"method", 0, CLI_STR, &method, "M", "linear|gradient|full|finetune|all or a comma list (default all)", NULL, NULL, 0},
        {"top", 0, CLI_STR, &job.top, "BLOCK", "theta2: this block and every block above it, or A..B ending at the top block (default: the top block; `gradfeat info` lists them)", NULL, NULL, 0},
        {"top-blocks", 0, CLI_INT, &job.top_blocks, "N", "theta2 = the top N blocks (overrides --top)", NULL, NULL, 0},
        {"epochs", 0, CLI_INT, &job.epochs, "N", "epochs per method (default " CLI_DEFAULT ")", NULL, "[1,1000000]", 0},
        {"probe", 0, CLI_CHOICE, &job.probe_sgd, "S", "lbfgs: the probe solved to convergence, its L2 chosen on the holdout (default); sgd: trained with --optimizer for --probe-epochs", NULL, "lbfgs|sgd", 0},
        {"probe-l2", 0, CLI_STR, &probe_l2, "X|auto", "L2 strength of the L-BFGS probe (default auto: the best of 1e-1..1e-6 on the holdout)", NULL, NULL, 0},
        {"probe-epochs", 0, CLI_INT, &job.probe_epochs, "N", "epochs of the --probe sgd probe (default 10 x --epochs: it trains on cached features, so it is cheap)", NULL, "[0,10000000]", 0},
        {"probe-lr", 0, CLI_FLOAT, &job.probe_lr, "X", "learning rate of the --probe sgd probe (default: --lr)", NULL, "[0,1000]", 0},
        {"holdout", 0, CLI_FLOAT, &job.holdout, "F", "fraction of the training data held out (seeded, per class) to choose each method's epoch and the probe's L2 (default " CLI_DEFAULT "; 0 = none)", NULL, "[0,0.5]", 0},
        {"select", 0, CLI_CHOICE, &job.select, "R", "which evaluation each method keeps: last = the last epoch (default: the rate has decayed to 0 by then), loss = lowest held-out loss, metric = best held-out accuracy/mAP", NULL, "last|loss|metric", 0},
        {"batch", 0, CLI_INT, &job.batch, "N", "batch size (default " CLI_DEFAULT ")", NULL, "[1,1000000000]", 0},
        {"optimizer", 0, CLI_STR, &optimizer, "adam|sgd", "Adam (paper: beta 0.5, 0.999) or SGD with momentum (default adam)", NULL, NULL, 0},
        {"lr", 0, CLI_FLOAT, &job.lr, "X", "learning rate (default " CLI_DEFAULT ")", NULL, "(0,1000]", 0},
        {"random", 0, CLI_STR, &random_parts, "LIST", "the paper's ablation: theta1, theta2, omega or a comma list: shuffle (seeded, per tensor) the trunk's / top block's pre-trained weights, or use a shuffled w_bar in the gradient term (no model files are written)", NULL, NULL, 0},
        {"finetune-lr", 0, CLI_FLOAT, &job.finetune_lr, "X", "learning rate of finetune (default " CLI_DEFAULT ": pre-trained weights need smaller steps than the linear parts; 0 = --lr / 10)", NULL, "[0,1000]", 0},
        {"lr-auto", 0, CLI_FLAG, &job.lr_auto, NULL, "gradient, full and finetune each train at their learning rate (--lr; finetune: --finetune-lr), ten times and a tenth of it, and keep the rate whose best held-out loss is lowest (needs --holdout; about four times the training time)", NULL, NULL, 0},
        {"momentum", 0, CLI_FLOAT, &job.momentum, "X", "SGD momentum (default " CLI_DEFAULT ")", NULL, "[0,1)", 0},
        {"beta1", 0, CLI_FLOAT, &job.beta1, "X", "Adam beta1 (default " CLI_DEFAULT ")", NULL, "[0,1)", 0},
        {"beta2", 0, CLI_FLOAT, &job.beta2, "X", "Adam beta2 (default " CLI_DEFAULT ")", NULL, "[0,1)", 0},
        {"weight-decay", 0, CLI_FLOAT, &job.weight_decay, "X", "L2 weight decay; pulls w2 toward 0 = theta2 toward theta_bar (default " CLI_DEFAULT ")", NULL, "[0,1000]", 0},
        {"clip-norm", 0, CLI_FLOAT, &job.clip_norm, "X", "clip the global gradient norm (default " CLI_DEFAULT " = off)", NULL, "[0,1e30]", 0},
        {"ntk", 0, CLI_FLAG, &job.ntk, NULL, "NTK parametrisation of gradient/full, the paper's: tangent weights x sqrt(1/C_out), biases x sqrt(0.1), head x sqrt(1/K) (default on; --ntk=no: the standard one)", NULL, NULL, 0},
        {"eval-every", 0, CLI_INT, &job.eval_every, "N", "evaluate every N epochs and after the last (default 1)", NULL, NULL, 0},
        {"grad-chunk", 0, CLI_INT, &job.grad_chunk, "N", "sum each step's gradient over chunks of N samples, in double and in order: a run under mpirun gives the same bits as one process, for any number of ranks (slower; default 0 = one gradient per batch)", NULL, "[0,1000000]", 0},
        {"log-json", 0, CLI_STR, &job.log_json, "FILE", "write one JSON object per progress report and per epoch", NULL, NULL, 0},
        {"log-every", 0, CLI_INT, &job.log_every, "N", "progress line every N steps when stderr is not a terminal (default 50)", NULL, NULL, 0},
        {"log-every-secs", 0, CLI_INT, &job.log_every_secs, "N", "... and at least every N seconds then (default " CLI_DEFAULT "; 0 = by steps only)", NULL, NULL, 0},
        {"lr-schedule", 0, CLI_CHOICE, &job.lr_cosine, "S", "learning rate of gradient, full and finetune over each one's run: cosine = from --lr down to 0, a cosine of the step (default); step = constant, halved every --lr-halve-every epochs", NULL, "step|cosine", 0},
        {"lr-halve-every", 0, CLI_INT, &job.lr_halve_every, "N", "with --lr-schedule step: halve the learning rate every N epochs (default " CLI_DEFAULT "; 0 = never)", NULL, NULL, 0},
        {"seed", 0, CLI_U64, &job.seed, "N", "seed of the subset, shuffling and initialisation (default " CLI_DEFAULT ")", NULL, NULL, 0},
        {"max-device-mem", 0, CLI_SIZE, &job.max_device_mem, "SIZE", "device memory the activation cache may use, e.g. 4G", NULL, NULL, 0},
        {"cache-dtype", 0, CLI_CHOICE, &job.cache_f16, "T", "storage of the trunk outputs and the primal cache: f32 (default) or f16 (IEEE halves: half the device memory and bandwidth, computed in f32)", NULL, "f32|f16", 0},
        {"run-dir", 0, CLI_STR, &job.run_dir, "DIR", "write results.json, metrics.jsonl, classes.txt, <method>.safetensors and checkpoints here", NULL, NULL, 0},
        {"checkpoint-every", 0, CLI_INT, &job.checkpoint_every, "N", "checkpoint every N optimiser steps (default " CLI_DEFAULT "; 0 = only at method ends and on SIGINT/SIGTERM)", NULL, NULL, 0},
        {"resume", 0, CLI_STR, &resume_dir, "RUN_DIR", "continue the interrupted run in RUN_DIR (give the same options; the result is bit-identical on the same device)", NULL, NULL, 0},
        {"cache-dir", 0, CLI_STR, &job.cache_dir, "DIR", "activation cache folder (default ~/.cache/gradfeat/activations)", "GRADFEAT_ACTIVATION_CACHE_DIR", NULL, 0},
        {"no-cache", 0, CLI_FLAG, &no_cache, NULL, "do not keep or reuse trunk outputs on disk", NULL, NULL, 0},
        {"threads", 0, CLI_INT, &job.threads, "N", "image decoding threads (default: all CPUs)", NULL, NULL, 0},
        {"quiet", 0, CLI_FLAG, &job.quiet, NULL, "no progress on stderr", NULL, NULL, 0},
        {"device", 0, CLI_STR, &device, "SEL", "OpenCL device: index, P:D, cpu, gpu or part of a name; A,B,...: under mpirun each rank takes one by its rank on its host (round-robin)", NULL, NULL, 1},
        {"verbose", 0, CLI_FLAG, &verbose, NULL, "more messages", NULL, NULL, 0},
    };
    enum { N = sizeof defs / sizeof defs[0] };
    int rc = cli_opts_parse(o, "train", defs, N, &doc, argc, argv);
    if (rc) return rc;
    if (o->first_arg < argc) return cli_usage_error("train", "unexpected argument '%s'", argv[o->first_arg]);
    /* --resume RUN_DIR alone: options not given come from the checkpoint (given
     * ones must match it: gf_job_run checks and names a difference) */
    gf_ctx *ctx = NULL;
    void *saved_cfg = NULL;
    unsigned saved_random = 0;
    if (resume_dir) {
        if ((rc = cli_ctx_open(device, verbose, &ctx))) return rc;
        gf_job saved = job;
        gf_status st = gf_job_load_resume_config(ctx, resume_dir, &saved, &saved_cfg);
        if (st != GF_OK) { rc = cli_fail(ctx, st); gf_ctx_free(ctx); return rc; }
        static const char *from_ckpt[] = {"model", "data", "split", "val", "val-split", "limit", "val-limit", "top",
                                          "epochs", "probe-epochs", "batch", "lr", "momentum", "beta1", "beta2",
                                            "weight-decay", "clip-norm", "lr-schedule", "lr-halve-every", "seed", "ntk", "eval-every",
                                            "checkpoint-every", "top-blocks", "holdout", "select", "probe", "probe-lr", "finetune-lr", "lr-auto",
                                            "cache-dtype", "grad-chunk"};
        cli_opts_take_unset(o, from_ckpt, (int)(sizeof from_ckpt / sizeof *from_ckpt), &job, &saved);
        if (!cli_opts_given(o, "method")) { job.methods = saved.methods; method = NULL; }
        if (!cli_opts_given(o, "optimizer")) { job.sgd = saved.sgd; optimizer = NULL; }
        if (!cli_opts_given(o, "probe-l2")) { job.probe_l2 = saved.probe_l2; probe_l2 = NULL; }
        saved_random = saved.random;
    }
    if (!job.model_path) return bail(ctx, saved_cfg, cli_usage_error("train", "--model is required"));
    if (!job.data_path) return bail(ctx, saved_cfg, cli_usage_error("train", "--data is required"));
    if (method && !(job.methods = gf_job_parse_methods(method))) return bail(ctx, saved_cfg, cli_usage_error("train", "unknown --method '%s'", method));
    if (optimizer && !strcmp(optimizer, "sgd")) { job.sgd = 1; }
    else if (optimizer && strcmp(optimizer, "adam")) return bail(ctx, saved_cfg, cli_usage_error("train", "--optimizer must be adam or sgd"));
    if (no_cache) job.cache_dir = "";
    else if (!job.cache_dir) job.cache_dir = cli_activation_cache_dir();
    if (random_parts) {
        int r = gf_job_parse_random(random_parts);
        if (r < 0) return bail(ctx, saved_cfg, cli_usage_error("train", "--random takes theta1, theta2, omega or a comma list of them, got '%s'", random_parts));
        job.random = (unsigned)r;
    } else if (resume_dir) job.random = saved_random;
    if (probe_l2 && strcmp(probe_l2, "auto")) {
        char *end;
        double v = strtod(probe_l2, &end);
        if (*end || end == probe_l2 || !(v >= 0 && v < 1e6))
            return bail(ctx, saved_cfg, cli_usage_error("train", "--probe-l2 must be auto or a number in [0, 1e6), got '%s'", probe_l2));
        job.probe_l2 = (float)v;
    } else if (probe_l2) job.probe_l2 = -1;
    if (!(job.holdout >= 0 && job.holdout <= 0.5f))
        return bail(ctx, saved_cfg, cli_usage_error("train", "--holdout must be a fraction in [0, 0.5], got %g", job.holdout));
    if (resume_dir) {
        if (job.run_dir && strcmp(job.run_dir, resume_dir))
            return bail(ctx, saved_cfg, cli_usage_error("train", "--resume %s and --run-dir %s differ (the run continues in its own directory)",
                                   resume_dir, job.run_dir));
        job.run_dir = resume_dir;
        job.resume = 1;
    }
    if (job.batch < 1 || job.epochs < 1) return bail(ctx, saved_cfg, cli_usage_error("train", "--batch and --epochs must be at least 1"));

    if (!ctx && (rc = cli_ctx_open(device, verbose, &ctx))) return rc;
    cli_stop_signals sigs;
    job.stop = cli_stop_signals_begin(&sigs);
    gf_job_result res;
    /* kernel compilation as its own visible phase (seconds on a first run, then the driver's cache) */
    gf_status st = cli_announce_and_warmup(ctx, job.quiet);
    if (st == GF_OK) st = gf_job_run(ctx, &job, &res);
    cli_stop_signals_end(&sigs);
    if (st == GF_OK && res.stopped) {
        /* 128 + signal, the shell's convention: 130 for SIGINT, 143 for SIGTERM */
        int sig = *job.stop ? (int)*job.stop : SIGINT;
        if (res.checkpoint[0])
            fprintf(stderr, "%s: interrupted (%s): checkpoint written to %s; continue with --resume %s and the same "
                    "options\n", cli_prog, cli_signal_name(sig), res.checkpoint, job.run_dir);
        else
            fprintf(stderr, "%s: interrupted (%s) %s; nothing to resume\n", cli_prog, cli_signal_name(sig),
                    job.run_dir ? "before training started" : "without --run-dir, so nothing was saved");
        return bail(ctx, saved_cfg, 128 + sig);
    }
    if (st == GF_OK) gf_job_print_table(&res, stdout);
    rc = st == GF_OK ? 0 : cli_fail(ctx, st);
    /* a diverged method is a failed training, even though its best model and the results were written */
    for (int i = 1; rc == 0 && i < 4; i++)
        if (res.ran[i] && res.diverged[i]) {
            fprintf(stderr, "%s: error: %s diverged (see the note under the table)%s\n", cli_prog, gf_job_method_name(i),
                    job.run_dir ? "; the results and the kept models are in the run directory" : "");
            rc = GF_ERR_NUMERIC;
        }
    return bail(ctx, saved_cfg, rc);
}
