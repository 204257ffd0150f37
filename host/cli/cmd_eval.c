/* gradfeat eval MODEL --data D [--split S] [--limit N] [--seed S] [--batch B]
 * [--json]: loss and accuracy (or mAP) of an adapted model
 * (RUN_DIR/<method>.safetensors from `gradfeat train --run-dir`) on a dataset,
 * computed as train computes its val columns. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "cli.h"
#include "gradfeat_train.h"

static void help(void) {
    printf("usage: %s eval MODEL --data PATH [--split NAME] [--limit N] [--seed S] [--batch B] [--json]\n\n"
           "Evaluate an adapted model (RUN_DIR/<method>.safetensors written by `gradfeat train --run-dir`)\n"
           "on a dataset: mean loss and top-1 accuracy (mAP for multi-label data). With the same\n"
           "--limit/--seed/--batch as train's --val-limit/--seed/--batch it reproduces train's val columns.\n\n"
           "  --data PATH     ImageFolder, IDX file or folder, or CSV manifest\n"
           "  --split NAME    split (IDX: train/test; folder/CSV: a split name)\n"
           "  --limit N       the seeded subset `train --val-limit N` uses (default: all)\n"
           "  --seed S        seed of that subset (default 1, as train)\n"
           "  --batch B       evaluation batch (default 64, as train)\n"
           "  --threads N     image decoding threads\n"
           "  --cache-dir DIR activation cache folder (default as train); --no-cache: none\n"
           "  --json          machine-readable output\n"
           "  --device SEL    OpenCL device (env GRADFEAT_DEVICE)\n"
           "  --quiet, -v, -h\n", cli_prog);
}

int cmd_eval(int argc, char **argv) {
    enum { O_DATA = 1000, O_SPLIT, O_LIMIT, O_SEED, O_BATCH, O_THREADS, O_CACHE, O_NOCACHE, O_JSON, O_DEVICE, O_QUIET };
    static const struct option opts[] = {
        {"data", required_argument, 0, O_DATA}, {"split", required_argument, 0, O_SPLIT},
        {"limit", required_argument, 0, O_LIMIT}, {"seed", required_argument, 0, O_SEED},
        {"batch", required_argument, 0, O_BATCH}, {"threads", required_argument, 0, O_THREADS},
        {"cache-dir", required_argument, 0, O_CACHE}, {"no-cache", no_argument, 0, O_NOCACHE},
        {"json", no_argument, 0, O_JSON}, {"device", required_argument, 0, O_DEVICE}, {"quiet", no_argument, 0, O_QUIET},
        {"verbose", no_argument, 0, 'v'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    gf_eval_options eo;
    memset(&eo, 0, sizeof eo);
    eo.seed = 1; eo.batch = 64;
    int json = 0, verbose = 0, c;
    const char *device = NULL;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hv", opts, NULL)) != -1) {
        char *end = NULL;
        long v = 0;
        if (c == O_LIMIT || c == O_BATCH || c == O_THREADS) {
            v = strtol(optarg, &end, 10);
            if (*end || v < 0 || v > 1000000000 || (c == O_BATCH && v < 1))
                return cli_usage_error("eval", "--%s needs a %s integer, not '%s'", c == O_LIMIT ? "limit" : c == O_BATCH ? "batch" : "threads",
                                       c == O_BATCH ? "positive" : "non-negative", optarg);
        }
        switch (c) {
        case O_DATA: eo.data_path = optarg; break;
        case O_SPLIT: eo.split = optarg; break;
        case O_LIMIT: eo.limit = (int)v; break;
        case O_BATCH: eo.batch = (int)v; break;
        case O_THREADS: eo.threads = (int)v; break;
        case O_SEED:
            eo.seed = strtoull(optarg, &end, 10);
            if (!*optarg || *end) return cli_usage_error("eval", "--seed needs an integer, not '%s'", optarg);
            break;
        case O_CACHE: eo.cache_dir = optarg; break;
        case O_NOCACHE: eo.cache_dir = ""; break;
        case O_JSON: json = 1; break;
        case O_DEVICE: device = optarg; break;
        case O_QUIET: eo.quiet = 1; break;
        case 'v': verbose = 1; break;
        case 'h': help(); return 0;
        default: return cli_usage_error("eval", "unknown option");
        }
    }
    if (argc - optind != 1) return cli_usage_error("eval", "expected one MODEL (an adapted model from train --run-dir)");
    if (!eo.data_path) return cli_usage_error("eval", "--data is required");
    const char *path = argv[optind];
    gf_ctx *ctx;
    int rc = cli_ctx_open(cli_env_or(device, "GRADFEAT_DEVICE"), verbose, &ctx);
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
