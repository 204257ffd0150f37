/* gradfeat info MODEL [--nodes] [--json]: graph summary, parameters, MACs per
 * image, feature node and the linearizable top blocks. Needs no device. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "cli.h"
#include "gradfeat_model.h"

static const cli_doc doc = {
    "gradfeat info MODEL [--nodes] [--json]",
    "Validate a gradfeat model file (.safetensors, see models/README.md, or an .onnx model) and summarise it:\n"
    "input and preprocessing, nodes, parameters, multiply-adds per image, outputs and classes,\n"
    "the feature node, and the linearizable top blocks (last block first: the paper's default\n"
    "top block is the first one listed). No OpenCL device is needed.\n",
    "  gradfeat info models/emotion/emotion.safetensors\n"
    "  GRADFEAT_JSON=1 gradfeat info resnet18.safetensors --nodes\n"};

static const char *si(double v, char *buf, size_t n) {
    if (v >= 1e9) snprintf(buf, n, "%.2f G", v / 1e9);
    else if (v >= 1e6) snprintf(buf, n, "%.2f M", v / 1e6);
    else if (v >= 1e3) snprintf(buf, n, "%.1f k", v / 1e3);
    else snprintf(buf, n, "%.0f ", v);
    return buf;
}

static const char *interp_name(gf_interp i) {
    switch (i) {
    case GF_INTERP_BILINEAR: return "bilinear";
    case GF_INTERP_BILINEAR_NOAA: return "bilinear_noaa";
    case GF_INTERP_BILINEAR_TF_LEGACY: return "bilinear_tf_legacy";
    case GF_INTERP_NEAREST: return "nearest";
    }
    return "?";
}

static void shape_str(const gf_node_info *ni, char *buf, size_t n) {
    if (ni->flat) snprintf(buf, n, "[%d]", ni->c);
    else snprintf(buf, n, "[%d, %d, %d]", ni->c, ni->h, ni->w);
}

int cmd_info(int argc, char **argv) {
    int json = 0, nodes = 0;
    const cli_opt defs[] = {
        {"nodes", 0, CLI_FLAG, &nodes, NULL, "list every node (op, shape, parameters, details)", NULL, NULL, 0},
        {"json", 0, CLI_FLAG, &json, NULL, "machine-readable output", NULL, NULL, 0},
    };
    cli_opts o;
    int rc = cli_opts_parse(&o, "info", defs, sizeof defs / sizeof defs[0], &doc, argc, argv);
    cli_opts_free(&o);                                   /* only switches: nothing points into o */
    if (rc) return rc == CLI_HELP ? 0 : rc;
    if (o.first_arg != argc - 1) return cli_usage_error("info", "expected one MODEL file");
    gf_model *m = NULL;
    gf_status st = gf_model_load(NULL, argv[o.first_arg], &m);
    if (st != GF_OK) {
        fprintf(stderr, "%s: error: %s\n", cli_prog, gf_model_error(m));
        gf_model_free(m);
        return (int)st;
    }
    gf_model_info in;
    gf_model_get_info(m, &in);
    const gf_preprocess *pp = gf_model_preprocess(m);
    int folded = 0;
    gf_node_info ni;
    for (int i = 0; i < in.n_nodes; i++) { gf_model_node(m, i, &ni); folded += ni.folded; }
    char b1[32], b2[32], sh[64];
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "path", in.path);
        cJSON *is = cJSON_AddArrayToObject(o, "input_shape");
        cJSON_AddItemToArray(is, cJSON_CreateNumber(in.in_c));
        cJSON_AddItemToArray(is, cJSON_CreateNumber(in.in_h));
        cJSON_AddItemToArray(is, cJSON_CreateNumber(in.in_w));
        cJSON_AddNumberToObject(o, "nodes", in.n_nodes);
        cJSON_AddNumberToObject(o, "batchnorm_folded", folded);
        cJSON_AddNumberToObject(o, "tensors", in.n_tensors);
        cJSON_AddNumberToObject(o, "parameters", (double)in.n_params);
        cJSON_AddNumberToObject(o, "macs_per_image", in.macs);
        cJSON_AddNumberToObject(o, "flops_per_image", 2 * in.macs);
        cJSON *outs = cJSON_AddArrayToObject(o, "outputs");
        for (int i = 0; i < in.n_outputs; i++) cJSON_AddItemToArray(outs, cJSON_CreateString(gf_model_output_name(m, i)));
        cJSON_AddNumberToObject(o, "output_dim", in.out_dim);
        cJSON *cl = cJSON_AddArrayToObject(o, "classes");
        for (int k = 0; k < in.n_classes; k++) cJSON_AddItemToArray(cl, cJSON_CreateString(gf_model_class_name(m, k)));
        if (in.feature) { cJSON_AddStringToObject(o, "feature", in.feature); cJSON_AddNumberToObject(o, "feature_dim", in.feature_dim); }
        else cJSON_AddNullToObject(o, "feature");
        cJSON *p = cJSON_AddObjectToObject(o, "preprocess");
        cJSON_AddNumberToObject(p, "width", pp->width);
        cJSON_AddNumberToObject(p, "height", pp->height);
        cJSON_AddNumberToObject(p, "channels", pp->channels);
        cJSON_AddStringToObject(p, "resize", pp->resize == GF_RESIZE_SHORTER_CROP ? "shorter_center_crop" : "stretch");
        cJSON_AddNumberToObject(p, "resize_shorter", pp->resize_shorter);
        cJSON_AddStringToObject(p, "interpolation", interp_name(pp->interp));
        cJSON_AddNumberToObject(p, "scale_per_255", pp->scale * 255.0);
        cJSON_AddNumberToObject(p, "offset", pp->offset);
        cJSON *bl = cJSON_AddArrayToObject(o, "blocks");
        for (int i = 0; i < in.n_blocks; i++) {
            gf_block_info bi;
            gf_model_block(m, i, &bi);
            cJSON *b = cJSON_CreateObject();
            cJSON_AddStringToObject(b, "name", bi.name);
            cJSON_AddStringToObject(b, "input", bi.input);
            cJSON_AddStringToObject(b, "output", bi.output);
            cJSON_AddNumberToObject(b, "nodes", bi.n_nodes);
            cJSON_AddNumberToObject(b, "parameters", (double)bi.params);
            cJSON_AddNumberToObject(b, "macs_per_image", bi.macs);
            cJSON_AddItemToArray(bl, b);
        }
        if (nodes) {
            cJSON *na = cJSON_AddArrayToObject(o, "graph");
            for (int i = 0; i < in.n_nodes; i++) {
                gf_model_node(m, i, &ni);
                cJSON *n = cJSON_CreateObject();
                cJSON_AddStringToObject(n, "name", ni.name);
                cJSON_AddStringToObject(n, "op", ni.op);
                cJSON *ia = cJSON_AddArrayToObject(n, "inputs");
                for (int a = 0; a < ni.n_inputs; a++) cJSON_AddItemToArray(ia, cJSON_CreateString(ni.inputs[a]));
                cJSON *s = cJSON_AddArrayToObject(n, "shape");
                cJSON_AddItemToArray(s, cJSON_CreateNumber(ni.c));
                if (!ni.flat) { cJSON_AddItemToArray(s, cJSON_CreateNumber(ni.h)); cJSON_AddItemToArray(s, cJSON_CreateNumber(ni.w)); }
                cJSON_AddNumberToObject(n, "parameters", (double)ni.params);
                cJSON_AddNumberToObject(n, "macs", ni.macs);
                cJSON_AddBoolToObject(n, "folded", ni.folded);
                cJSON_AddStringToObject(n, "detail", ni.detail);
                cJSON_AddItemToArray(na, n);
            }
        }
        char *s = cJSON_Print(o);
        if (s) printf("%s\n", s);
        free(s);
        cJSON_Delete(o);
        gf_model_free(m);
        return 0;
    }
    printf("model:      %s\n", in.path);
    printf("input:      [%d, %d, %d] (C, H, W)\n", in.in_c, in.in_h, in.in_w);
    printf("preprocess: %s", pp->resize == GF_RESIZE_SHORTER_CROP ? "shorter side to " : "stretch to ");
    if (pp->resize == GF_RESIZE_SHORTER_CROP) printf("%d, centre crop %dx%d", pp->resize_shorter, pp->width, pp->height);
    else printf("%dx%d", pp->width, pp->height);
    printf(", %s, %s, value = (pixel*%g + %g - mean) / std", interp_name(pp->interp),
           pp->channels == 1 ? "gray" : pp->bgr ? "BGR" : "RGB", (double)pp->scale, (double)pp->offset);
    printf(", mean");
    for (int k = 0; k < pp->channels; k++) printf(" %g", (double)pp->mean[k]);
    printf(", std");
    for (int k = 0; k < pp->channels; k++) printf(" %g", (double)pp->std[k]);
    printf("\n");
    printf("nodes:      %d (%d BatchNorm folded at load), %d tensors in the file\n", in.n_nodes, folded, in.n_tensors);
    printf("parameters: %sfloats (%.1f MB as float32)\n", si((double)in.n_params, b1, sizeof b1), in.n_params * 4.0 / 1e6);
    printf("compute:    %sMAC = %sFLOP per image (conv + linear, BN folded)\n", si(in.macs, b1, sizeof b1),
           si(2 * in.macs, b2, sizeof b2));
    printf("outputs:   ");
    for (int i = 0; i < in.n_outputs; i++) {
        int k = gf_model_find_node(m, gf_model_output_name(m, i));
        gf_model_node(m, k, &ni);
        shape_str(&ni, sh, sizeof sh);
        printf(" %s %s (%s)", ni.name, sh, ni.op);
    }
    printf("\nclasses:    %d", in.n_classes);
    for (int k = 0; k < in.n_classes && k < 10; k++) printf("%s%s", k ? ", " : ": ", gf_model_class_name(m, k));
    printf("%s\n", in.n_classes > 10 ? ", ..." : "");
    if (in.feature) printf("feature:    %s [%d]\n", in.feature, in.feature_dim);
    else printf("feature:    (none named in the file)\n");
    printf("top blocks (linearizable, last first; the first is the default top block):\n");
    if (!in.n_blocks) printf("  (none)\n");
    printf("  %-28s %-28s %-28s %6s %12s %12s\n", "name", "input (cut)", "output", "nodes", "params", "MAC/image");
    for (int i = 0; i < in.n_blocks; i++) {
        gf_block_info bi;
        gf_model_block(m, i, &bi);
        printf("  %-28s %-28s %-28s %6d %12s %12s\n", bi.name, bi.input, bi.output, bi.n_nodes,
               si((double)bi.params, b1, sizeof b1), si(bi.macs, b2, sizeof b2));
    }
    if (in.n_spans) {
        printf("multi-block spans (train --top BLOCK or --top-blocks N: that block and every block above it):\n");
        for (int i = in.n_blocks; i < in.n_blocks + in.n_spans; i++) {
            gf_block_info bi;
            gf_model_block(m, i, &bi);
            printf("  %-28s %-28s %-28s %6d %12s %12s\n", bi.name, bi.input, bi.output, bi.n_nodes,
                   si((double)bi.params, b1, sizeof b1), si(bi.macs, b2, sizeof b2));
        }
    }
    if (nodes) {
        printf("graph (topological order):\n");
        printf("  %-4s %-32s %-15s %-18s %10s  %s\n", "#", "name", "op", "output", "params", "inputs / detail");
        for (int i = 0; i < in.n_nodes; i++) {
            gf_model_node(m, i, &ni);
            shape_str(&ni, sh, sizeof sh);
            char ins[512];
            size_t len = 0;
            ins[0] = 0;
            for (int a = 0; a < ni.n_inputs && len < sizeof ins - 1; a++) {
                int k = snprintf(ins + len, sizeof ins - len, "%s%s", a ? ", " : "", ni.inputs[a]);
                if (k < 0) break;
                len += (size_t)k;
            }
            printf("  %-4d %-32s %-15s %-18s %10llu  %s  %s\n", i, ni.name, ni.op, sh, (unsigned long long)ni.params,
                   ins, ni.detail);
        }
    }
    gf_model_free(m);
    return 0;
}
