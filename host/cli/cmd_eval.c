/* gradfeat eval MODEL --data D [--split S] [--limit N] [--seed S] [--batch B]
 * [--json]: loss and accuracy (or mAP) of an adapted model
 * (RUN_DIR/<method>.safetensors from `gradfeat train --run-dir`) on a dataset,
 * computed as train computes its val columns. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "cli.h"
#include "gradfeat_train.h"

static const cli_doc doc = {
    "gradfeat eval MODEL --data PATH [--split NAME] [--limit N] [--seed S] [--batch B] [--json]",
    "Evaluate an adapted model (RUN_DIR/<method>.safetensors written by `gradfeat train --run-dir`)\n"
    "on a dataset: mean loss and top-1 accuracy (mAP for multi-label data). With the same\n"
    "--limit/--seed/--batch as train's --val-limit/--seed/--batch it reproduces train's val columns.\n",
    "  gradfeat eval runs/a/full.safetensors --data /usr/share/datasets/fashion-mnist --split test --limit 1000\n"
    "  GRADFEAT_DATA=/usr/share/datasets/fashion-mnist GRADFEAT_SPLIT=test gradfeat eval runs/a/linear.safetensors --json\n"};

static int eval_main(int argc, char **argv, cli_opts *o);

int cmd_eval(int argc, char **argv) {
    cli_opts o;
    int rc = eval_main(argc, argv, &o);
    cli_opts_free(&o);
    return rc == CLI_HELP ? 0 : rc;
}

static int eval_main(int argc, char **argv, cli_opts *o) {
    gf_eval_options eo;
    memset(&eo, 0, sizeof eo);
    eo.seed = 1; eo.batch = 64;
    int json = 0, verbose = 0, no_cache = 0;
    const char *device = NULL;
    const cli_opt defs[] = {
        {"data", 0, CLI_STR, &eo.data_path, "PATH", "ImageFolder, IDX file or folder, or CSV manifest", NULL, NULL, 0},
        {"split", 0, CLI_STR, &eo.split, "NAME", "split (IDX: train/test; folder/CSV: a split name)", NULL, NULL, 0},
        {"limit", 0, CLI_INT, &eo.limit, "N", "the seeded subset `train --val-limit N` uses (default: all)", NULL, NULL, 0},
        {"seed", 0, CLI_U64, &eo.seed, "S", "seed of that subset (default 1, as train)", NULL, NULL, 0},
        {"batch", 0, CLI_POS, &eo.batch, "B", "evaluation batch (default 64, as train)", NULL, NULL, 0},
        {"threads", 0, CLI_INT, &eo.threads, "N", "image decoding threads", NULL, NULL, 0},
        {"cache-dir", 0, CLI_STR, &eo.cache_dir, "DIR", "activation cache folder (default as train)", "GRADFEAT_ACTIVATION_CACHE_DIR", NULL, 0},
        {"no-cache", 0, CLI_FLAG, &no_cache, NULL, "do not keep or reuse trunk outputs on disk", NULL, NULL, 0},
        {"json", 0, CLI_FLAG, &json, NULL, "machine-readable output", NULL, NULL, 0},
        {"device", 0, CLI_STR, &device, "SEL", "OpenCL device: index, P:D, cpu, gpu or part of a name", NULL, NULL, 1},
        {"quiet", 0, CLI_FLAG, &eo.quiet, NULL, "no progress on stderr", NULL, NULL, 0},
        {"verbose", 'v', CLI_FLAG, &verbose, NULL, "more messages", NULL, NULL, 0},
    };
    int rc = cli_opts_parse(o, "eval", defs, sizeof defs / sizeof defs[0], &doc, argc, argv);
    if (rc) return rc;
    if (no_cache) eo.cache_dir = "";
    else if (!eo.cache_dir) eo.cache_dir = cli_activation_cache_dir();
    int first = o->first_arg;
    if (argc - first != 1) return cli_usage_error("eval", "expected one MODEL (an adapted model from train --run-dir)");
    if (!eo.data_path) return cli_usage_error("eval", "--data is required");
    const char *path = argv[first];
    gf_ctx *ctx;
    rc = cli_ctx_open(device, verbose, &ctx);
    if (rc) return rc;
    gf_adapted *a = NULL;
    gf_eval_result r;
    gf_status st = gf_adapted_load(ctx, path, eo.batch, &a);
    if (st == GF_OK) st = gf_adapted_eval(a, &eo, &r);
    if (st == GF_OK) {
        const char *metric = r.multi_label ? "mAP" : "accuracy";
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "model", path);
            cJSON_AddStringToObject(o, "method", gf_adapted_method(a));
            cJSON_AddStringToObject(o, "top", gf_adapted_top(a));
            cJSON_AddStringToObject(o, "data", eo.data_path);
            cJSON_AddNumberToObject(o, "n", r.n);
            cJSON_AddNumberToObject(o, "classes", r.classes);
            cJSON_AddStringToObject(o, "metric", metric);
            cJSON_AddNumberToObject(o, "loss", r.loss);
            cJSON_AddNumberToObject(o, "value", r.metric);
            char *s = cJSON_Print(o);
            if (s) printf("%s\n", s);
            free(s);
            cJSON_Delete(o);
        } else {
            printf("model %s (method %s, top block %s); %d samples, %d classes\n", path, gf_adapted_method(a),
                   gf_adapted_top(a), r.n, r.classes);
            printf("loss %.6f  %s %.6f (%.2f%%)\n", r.loss, metric, r.metric, 100 * r.metric);
        }
    }
    rc = st == GF_OK ? 0 : cli_fail(ctx, st);
    gf_adapted_free(a);
    gf_ctx_free(ctx);
    return rc;
}
