/* gradfeat predict MODEL IMAGE... [--top-k K] [--json] [--batch B] [--device SEL]:
 * preprocess each image as the model file says, run the graph executor on the
 * device, print the top-k classes. Scores are probabilities: the output's
 * softmax when the graph ends in one, else a softmax of the logits (also shown).
 * An adapted model (RUN_DIR/<method>.safetensors from train) runs the trunk,
 * then its top block and head (gf_adapted_predict); multi-label models give
 * per-class sigmoids. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "cli.h"
#include "gf_file.h"
#include "gradfeat_model.h"
#include "gradfeat_train.h"

static const cli_doc doc = {
    "gradfeat predict MODEL IMAGE... [--top-k K] [--json] [--batch B] [--device SEL]",
    "Classify images with a gradfeat model (.safetensors): each image is loaded (any format\n"
    "stb_image reads: PNG, JPEG, BMP, GIF, TGA, PNM), preprocessed as the model file says,\n"
    "and run through the whole network on the OpenCL device. MODEL may be an adapted model\n"
    "(RUN_DIR/<method>.safetensors from `gradfeat train --run-dir`): its classes and head are used.\n",
    "  gradfeat predict models/emotion/emotion.safetensors face1.png face2.jpg\n"
    "  GRADFEAT_TOP_K=1 gradfeat predict runs/a/full.safetensors photos/*.jpg --json\n"};

static int predict_main(int argc, char **argv, cli_opts *o);

int cmd_predict(int argc, char **argv) {
    cli_opts o;
    int rc = predict_main(argc, argv, &o);
    cli_opts_free(&o);
    return rc == CLI_HELP ? 0 : rc;
}

static int predict_main(int argc, char **argv, cli_opts *o) {
    int json = 0, topk = 5, batch = 16, verbose = 0;
    const char *device = NULL;
    const cli_opt defs[] = {
        {"top-k", 'k', CLI_POS, &topk, "K", "classes to show per image (default 5)", NULL, NULL, 0},
        {"json", 0, CLI_FLAG, &json, NULL, "machine-readable output", NULL, NULL, 0},
        {"batch", 'b', CLI_POS, &batch, "B", "images per device run, 1..4096 (default 16)", NULL, NULL, 0},
        {"device", 'd', CLI_STR, &device, "SEL", "OpenCL device: index, P:D, cpu, gpu or part of a name", NULL, NULL, 1},
        {"verbose", 'v', CLI_FLAG, &verbose, NULL, "more messages (device choice)", NULL, NULL, 0},
    };
    int rc = cli_opts_parse(o, "predict", defs, sizeof defs / sizeof defs[0], &doc, argc, argv);
    if (rc) return rc;
    if (batch > 4096) return cli_opts_fail(o, "batch", "must be 1..4096, got %d", batch);
    int first = o->first_arg;
    if (argc - first < 2) return cli_usage_error("predict", "expected MODEL and at least one IMAGE");
    const char *path = argv[first];
    int n_img = argc - first - 1;
    char **imgs = argv + first + 1;
    gf_model *own = NULL;
    gf_adapted *ad = NULL;
    gf_ctx *ctx = NULL;
    gf_status st = GF_OK;
    rc = 0;
    if (batch > n_img) batch = n_img;
    if (gf_adapted_detect(path)) {
        if ((rc = cli_ctx_open(device, verbose, &ctx))) return rc;
        if ((st = gf_adapted_load(ctx, path, batch, &ad)) != GF_OK) {
            rc = cli_fail(ctx, st);
            gf_ctx_free(ctx);
            return rc;
        }
    } else {
        st = gf_model_load(NULL, path, &own);
        if (st != GF_OK) {
            fprintf(stderr, "%s: error: %s\n", cli_prog, gf_model_error(own));
            gf_model_free(own);
            return (int)st;
        }
        if ((rc = cli_ctx_open(device, verbose, &ctx))) { gf_model_free(own); return rc; }
    }
    const gf_model *m = ad ? gf_adapted_base(ad) : own;
    gf_model_info in;
    gf_model_get_info(m, &in);
    const char *oname = gf_model_output_name(m, 0);
    gf_node_info oi;
    gf_model_node(m, gf_model_find_node(m, oname), &oi);
    int is_prob = !ad && !strcmp(oi.op, "softmax");
    int sigmoid = ad && gf_adapted_multi_label(ad);
    int K = ad ? gf_adapted_classes(ad) : in.out_dim;
    if (topk > K) topk = K;
    size_t per = (size_t)in.in_c * in.in_h * in.in_w;
    float *x = malloc((size_t)batch * per * sizeof *x), *out = malloc((size_t)batch * K * sizeof *out);
    int *order = malloc((size_t)K * sizeof *order);
    double *prob = malloc((size_t)K * sizeof *prob);
    gf_exec *e = NULL;
    cJSON *arr = json ? cJSON_CreateArray() : NULL;
    if (!x || !out || !order || !prob) { st = GF_ERR_MEMORY; fprintf(stderr, "%s: error: out of memory\n", cli_prog); goto done; }
    if (!ad && (st = gf_exec_create(ctx, m, batch, &e)) != GF_OK) { rc = cli_fail(ctx, st); goto done; }
    int bad = 0;
    for (int b0 = 0; b0 < n_img; b0 += batch) {
        int nb = 0, idx[4096];
        for (int i = b0; i < n_img && i < b0 + batch; i++) {
            char err[512];
            if (gf_model_load_image(m, imgs[i], x + (size_t)nb * per, err, sizeof err) != GF_OK) {
                fprintf(stderr, "%s: error: %s\n", cli_prog, err);
                bad++;
                continue;
            }
            idx[nb++] = i;
        }
        if (!nb) continue;
        if (ad) st = gf_adapted_predict(ad, x, nb, out);
        else if ((st = gf_exec_run(e, x, nb)) == GF_OK) st = gf_exec_read(e, oname, out, (size_t)nb * K);
        if (st != GF_OK) {
            rc = cli_fail(ctx, st);
            goto done;
        }
        for (int r = 0; r < nb; r++) {
            const float *z = out + (size_t)r * K;
            double mx = z[0], sum = 0;
            for (int k = 0; k < K; k++) { order[k] = k; if (z[k] > mx) mx = z[k]; }
            for (int k = 0; k < K; k++) { prob[k] = is_prob ? z[k] : exp(z[k] - mx); sum += prob[k]; }
            if (!is_prob) for (int k = 0; k < K; k++) prob[k] /= sum;
            if (sigmoid) for (int k = 0; k < K; k++) prob[k] = 1.0 / (1.0 + exp(-(double)z[k]));
            for (int a = 0; a < topk; a++)  /* partial selection sort: stable for ties */
                for (int b = a + 1; b < K; b++)
                    if (z[order[b]] > z[order[a]]) { int t = order[a]; order[a] = order[b]; order[b] = t; }
            if (json) {
                cJSON *o = cJSON_CreateObject();
                char *fixed = gf_utf8_fix(imgs[idx[r]]);   /* JSON is UTF-8: a latin-1 file name gets U+FFFD */
                cJSON_AddStringToObject(o, "image", fixed ? fixed : "?");
                free(fixed);
                cJSON *t = cJSON_AddArrayToObject(o, "top");
                for (int a = 0; a < topk; a++) {
                    cJSON *p = cJSON_CreateObject();
                    const char *cn = ad ? gf_adapted_class_name(ad, order[a]) : gf_model_class_name(m, order[a]);
                    cJSON_AddNumberToObject(p, "index", order[a]);
                    char *fc = cn ? gf_utf8_fix(cn) : NULL;
                    if (fc) cJSON_AddStringToObject(p, "class", fc); else cJSON_AddNullToObject(p, "class");
                    free(fc);
                    cJSON_AddNumberToObject(p, "probability", prob[order[a]]);
                    if (!is_prob) cJSON_AddNumberToObject(p, "logit", z[order[a]]);
                    cJSON_AddItemToArray(t, p);
                }
                cJSON_AddItemToArray(arr, o);
            } else {
                printf("%s\n", imgs[idx[r]]);
                for (int a = 0; a < topk; a++) {
                    const char *cn = ad ? gf_adapted_class_name(ad, order[a]) : gf_model_class_name(m, order[a]);
                    char lbl[32];
                    if (!cn) { snprintf(lbl, sizeof lbl, "class %d", order[a]); cn = lbl; }
                    printf("  %2d. %-24s %.5f", a + 1, cn, prob[order[a]]);
                    if (!is_prob) printf("  (logit %.4f)", (double)z[order[a]]);
                    printf("\n");
                }
            }
        }
    }
    if (json) {
        char *s = cJSON_Print(arr);
        if (s) printf("%s\n", s);
        free(s);
    }
    if (bad) { st = GF_ERR_INPUT; rc = GF_ERR_INPUT; }
done:
    cJSON_Delete(arr);
    gf_exec_free(e);
    free(x); free(out); free(order); free(prob);
    gf_adapted_free(ad);
    gf_ctx_free(ctx);
    gf_model_free(own);
    return rc ? rc : (int)st;
}
