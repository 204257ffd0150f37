/* gradfeat pretrain: train a network from scratch and write a model file (see gradfeat_train.h). */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "gf_dist.h"
#include "gradfeat_train.h"

static const cli_doc doc = {
    "gradfeat pretrain --arch small28|bigan|resnet18c --data DATA [options]",
    "Train every layer of a network from scratch (Kaiming init, BatchNorm, softmax cross-entropy)\n"
    "and write a gradfeat model file (.safetensors with the graph) that `gradfeat info`, `train\n"
    "--model` and `predict` load; its top block (small28: conv3, bigan: conv5, resnet18c: layer4.1)\n"
    "is the default block to linearize.\n\n"
    "tasks: labels (the dataset's classes) or rotation (self-supervised: each image enters the\n"
    "batch four times, turned by 0/90/180/270 degrees, label = the turn; a batch of B images is\n"
    "4B samples; classes rot0..rot270). Inputs: pixels/255, then the per-channel mean/std of the\n"
    "training images (stored in the model). Augmentation (training only, --no-augment turns it\n"
    "off): zero-pad P pixels (4 for >= 32 px, else 2) + random crop back, and horizontal flip\n"
    "(--no-flip keeps the crop only: digits).\n"
    "Schedule: cosine over all epochs (per step), or --lr-step N (halve every N epochs).\n"
    "SIGINT/SIGTERM write RUN_DIR/checkpoint.gfptck and exit 130/143; --resume RUN_DIR (alone, or\n"
    "with the same options) continues bit-identically on the same device.\n",
    "  gradfeat pretrain --arch small28 --data /usr/share/datasets/fashion-mnist --split train \\\n"
    "      --val /usr/share/datasets/fashion-mnist --val-split test --epochs 10 --out fmnist-small28.safetensors\n"
    "  gradfeat pretrain --arch resnet18c --data cifar/ --task rotation --run-dir runs/rot --epochs 30\n"
    "  gradfeat pretrain --arch small28 --data mnist/ --steps 100 --quiet      (throughput: img/s)\n"};

static int bail(gf_ctx *ctx, void *cfg, int rc) {
    gf_pretrain_config_free(cfg);
    gf_ctx_free(ctx);
    return rc;
}

static int pretrain_main(int argc, char **argv, cli_opts *o);

int cmd_pretrain(int argc, char **argv) {
    cli_opts o;
    int rc = pretrain_main(argc, argv, &o);
    cli_opts_free(&o);
    return rc == CLI_HELP ? 0 : rc;
}

static int pretrain_main(int argc, char **argv, cli_opts *o) {
    static const char *arch_names[] = {"small28", "bigan", "resnet18c"}, *task_names[] = {"labels", "rotation"};
    gf_pretrain_options p;
    gf_pretrain_defaults(&p);
    const char *device = NULL, *resume_dir = NULL;
    int arch = -1, task = 0, optimizer = 0, no_augment = 0, verbose = 0, steps = -1;
    const cli_opt defs[] = {
        {"arch", 0, CLI_CHOICE, &arch, "A", "small28 | bigan | resnet18c (required)", NULL, "small28|bigan|resnet18c", 0},
        {"data", 0, CLI_STR, &p.data_path, "PATH", "training data: ImageFolder, IDX file or folder, CSV manifest", NULL, NULL, 0},
        {"split", 0, CLI_STR, &p.data_split, "NAME", "split of the training data (IDX: train/test; folder: a sub-folder)", NULL, NULL, 0},
        {"task", 0, CLI_CHOICE, &task, "T", "labels (default) or rotation (self-supervised, 4 classes)", NULL, "labels|rotation", 0},
        {"val", 0, CLI_STR, &p.val_path, "PATH", "evaluate on this data after every epoch (BN in eval mode)", NULL, NULL, 0},
        {"val-split", 0, CLI_STR, &p.val_split, "NAME", "split of the evaluation data", NULL, NULL, 0},
        {"limit", 0, CLI_INT, &p.limit_train, "N", "use a seeded random subset of N training images", NULL, NULL, 0},
        {"val-limit", 0, CLI_INT, &p.limit_val, "N", "use a seeded random subset of N evaluation images", NULL, NULL, 0},
        {"size", 0, CLI_INT, &p.size, "N", "input N x N pixels (default: the first training image's size)", NULL, NULL, 0},
        {"epochs", 0, CLI_POS, &p.epochs, "N", "epochs (default " CLI_DEFAULT ")", NULL, "[1,1000000]", 0},
        {"batch", 0, CLI_POS, &p.batch, "N", "images per step (default " CLI_DEFAULT "; rotation: 4x samples)", NULL, NULL, 0},
        {"steps", 0, CLI_INT, &steps, "N", "stop after N optimiser steps (benchmarks; the schedule still spans --epochs; "
         "the model file and, with --run-dir, a checkpoint are written); 0: write the initialised, untrained model "
         "(the random-init control)", NULL, NULL, 0},
        {"optimizer", 0, CLI_CHOICE, &optimizer, "sgd|adam", "SGD with momentum (default) or Adam", NULL, "sgd|adam", 0},
        {"lr", 0, CLI_FLOAT, &p.lr, "X", "learning rate (default " CLI_DEFAULT ")", NULL, "(0,1000]", 0},
        {"momentum", 0, CLI_FLOAT, &p.momentum, "X", "SGD momentum (default " CLI_DEFAULT ")", NULL, "[0,1)", 0},
        {"weight-decay", 0, CLI_FLOAT, &p.weight_decay, "X", "L2 weight decay toward 0 on every parameter (default " CLI_DEFAULT ")", NULL, "[0,1000]", 0},
        {"beta1", 0, CLI_FLOAT, &p.beta1, "X", "Adam beta1 (default " CLI_DEFAULT ")", NULL, "[0,1)", 0},
        {"beta2", 0, CLI_FLOAT, &p.beta2, "X", "Adam beta2 (default " CLI_DEFAULT ")", NULL, "[0,1)", 0},
        {"lr-step", 0, CLI_INT, &p.lr_step, "N", "halve the learning rate every N epochs instead of the cosine schedule", NULL, NULL, 0},
        {"no-augment", 0, CLI_FLAG, &no_augment, NULL, "no random crop / flip", NULL, NULL, 0},
        {"no-flip", 0, CLI_FLAG, &p.no_flip, NULL, "random crop without the horizontal flip (digits, text)", NULL, NULL, 0},
        {"pad", 0, CLI_INT, &p.pad, "P", "random-crop padding (default 4 for inputs >= 32 px, else 2)", NULL, NULL, 0},
        {"seed", 0, CLI_U64, &p.seed, "N", "seed of the initialisation, subsets, shuffling and augmentation (default " CLI_DEFAULT ")", NULL, NULL, 0},
        {"out", 'o', CLI_STR, &p.out_path, "FILE", "model file to write (default <arch>-<task>.safetensors)", NULL, NULL, 0},
        {"run-dir", 0, CLI_STR, &p.run_dir, "DIR", "metrics.jsonl and checkpoints (checkpoint.gfptck) go here", NULL, NULL, 0},
        {"checkpoint-every", 0, CLI_INT, &p.checkpoint_every, "N", "checkpoint every N steps (default " CLI_DEFAULT "; 0 = only at epoch ends and on SIGINT/SIGTERM)", NULL, NULL, 0},
        {"resume", 0, CLI_STR, &resume_dir, "RUN_DIR", "continue the run in RUN_DIR bit-identically (same device); options not given come from its checkpoint", NULL, NULL, 0},
        {"log-json", 0, CLI_STR, &p.log_json, "FILE", "one JSON object per progress report and per epoch", NULL, NULL, 0},
        {"log-every", 0, CLI_INT, &p.log_every, "N", "progress line every N steps when stderr is not a terminal (default 50)", NULL, NULL, 0},
        {"log-every-secs", 0, CLI_INT, &p.log_every_secs, "N", "... and at least every N seconds then (default " CLI_DEFAULT "; 0 = by steps only)", NULL, NULL, 0},
        {"grad-chunk", 0, CLI_INT, &p.grad_chunk, "N", "run each step as chunks of N images, batchnorm statistics per chunk (ghost batchnorm), the gradient summed over them in double and in order: a run under mpirun gives the same bits as one process, for any number of ranks (default 0: statistics over the whole batch)", NULL, "[0,1000000]", 0},
        {"threads", 0, CLI_INT, &p.threads, "N", "image decoding threads (default: all CPUs)", NULL, NULL, 0},
        {"width-div", 0, CLI_POS, &p.width_div, "N", "(tests) divide every channel count by N", NULL, NULL, 0},
        {"quiet", 'q', CLI_FLAG, &p.quiet, NULL, "no progress on stderr", NULL, NULL, 0},
        {"device", 0, CLI_STR, &device, "SEL", "OpenCL device: index, P:D, cpu, gpu or part of a name", NULL, NULL, 1},
        {"verbose", 0, CLI_FLAG, &verbose, NULL, "more messages", NULL, NULL, 0},
    };
    enum { N = sizeof defs / sizeof defs[0] };
    int rc = cli_opts_parse(o, "pretrain", defs, N, &doc, argc, argv);
    if (rc) return rc;
    if (o->first_arg < argc) return cli_usage_error("pretrain", "unexpected argument '%s'", argv[o->first_arg]);
    /* --resume RUN_DIR alone: options not given come from the checkpoint (given
     * ones must match it: gf_pretrain_run names a difference) */
    gf_ctx *ctx = NULL;
    void *saved_cfg = NULL;
    if (resume_dir) {
        if ((rc = cli_ctx_open(device, verbose, &ctx))) return rc;
        gf_pretrain_options saved = p;
        gf_status st = gf_pretrain_load_resume_config(ctx, resume_dir, &saved, &saved_cfg);
        if (st != GF_OK) { rc = cli_fail(ctx, st); gf_ctx_free(ctx); return rc; }
        static const char *from_ckpt[] = {"data", "split", "val", "val-split", "limit", "val-limit", "size", "epochs",
                                          "batch", "lr", "momentum", "weight-decay", "beta1", "beta2", "lr-step",
                                          "pad", "seed", "width-div", "no-flip", "out", "checkpoint-every", "grad-chunk"};
        cli_opts_take_unset(o, from_ckpt, (int)(sizeof from_ckpt / sizeof *from_ckpt), &p, &saved);
        if (!cli_opts_given(o, "arch")) for (int k = 0; k < 3; k++) if (!strcmp(saved.arch, arch_names[k])) arch = k;
        if (!cli_opts_given(o, "task")) task = !strcmp(saved.task, "rotation");
        if (!cli_opts_given(o, "optimizer")) optimizer = saved.adam;
        if (!cli_opts_given(o, "no-augment")) no_augment = !saved.augment;
    }
    if (arch < 0) return bail(ctx, saved_cfg, cli_usage_error("pretrain", "--arch is required (small28, bigan or resnet18c)"));
    if (!p.data_path) return bail(ctx, saved_cfg, cli_usage_error("pretrain", "--data is required"));
    if (!(p.lr > 0)) return bail(ctx, saved_cfg, cli_opts_fail(o, "lr", "must be positive"));
    p.arch = arch_names[arch];
    p.task = task_names[task];
    p.adam = optimizer == 1;
    p.augment = !no_augment;
    if (steps < -1) return bail(ctx, saved_cfg, cli_opts_fail(o, "steps", "must be 0 or more"));
    if (p.log_every_secs < 0) return bail(ctx, saved_cfg, cli_opts_fail(o, "log-every-secs", "must be 0 or more"));
    p.max_steps = steps > 0 ? steps : 0;
    p.init_only = steps == 0;
    if (resume_dir) {
        if (p.run_dir && strcmp(p.run_dir, resume_dir))
            return bail(ctx, saved_cfg, cli_usage_error("pretrain", "--resume %s and --run-dir %s differ (the run "
                                                        "continues in its own directory)", resume_dir, p.run_dir));
        p.run_dir = resume_dir;
        p.resume = 1;
    }

    if (!ctx && (rc = cli_ctx_open(device, verbose, &ctx))) return bail(NULL, saved_cfg, rc);
    cli_stop_signals sigs;
    p.stop = cli_stop_signals_begin(&sigs);
    gf_status st = cli_announce_and_warmup(ctx, p.quiet);
    gf_pretrain_result r;
    if (st == GF_OK) st = gf_pretrain_run(ctx, &p, &r);
    cli_stop_signals_end(&sigs);
    if (st != GF_OK) return bail(ctx, saved_cfg, cli_fail(ctx, st));
    /* several processes: rank 0 reports the stop and exits with its code (which ends the job); the others
     * leave quietly, so that none ends the job before rank 0 has spoken */
    if (r.stopped && gf_dist_rank() != 0) return bail(ctx, saved_cfg, 0);
    if (r.stopped) {
        int sig = *p.stop ? (int)*p.stop : SIGINT;
        if (r.checkpoint[0])
            fprintf(stderr, "%s: interrupted (%s): checkpoint written to %s; continue with --resume %s and the same "
                    "options\n", cli_prog, cli_signal_name(sig), r.checkpoint, p.run_dir);
        else
            fprintf(stderr, "%s: interrupted (%s) without --run-dir, so nothing was saved\n", cli_prog,
                    cli_signal_name(sig));
        return bail(ctx, saved_cfg, 128 + sig);
    }
    printf("%s %s: %d epochs%s, %ld steps, %d training images, %.1f s, %.0f img/s", p.arch, p.task, r.epochs_done,
           r.limited ? " (stopped by --steps)" : p.init_only ? " (--steps 0: initialised, untrained)" : "", r.steps, r.n_train, r.seconds, r.images_per_s);
    if (r.samples_per_s != r.images_per_s) printf(" (%.0f rotated samples/s)", r.samples_per_s);
    printf("\n");
    if (!isnan(r.train_loss)) printf("train loss %.4f  acc %.2f%%\n", r.train_loss, 100 * r.train_acc);
    if (!isnan(r.val_loss)) printf("val   loss %.4f  acc %.2f%%\n", r.val_loss, 100 * r.val_acc);
    printf("model: %s\n", r.out_path);
    if (r.limited && r.checkpoint[0]) printf("checkpoint: %s (continue with --resume %s)\n", r.checkpoint, p.run_dir);
    return bail(ctx, saved_cfg, 0);
}
