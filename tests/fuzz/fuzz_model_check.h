/* The checks every model-loading harness (fuzz_model, fuzz_onnx) runs on a model that loaded: every
 * query of the public API must be safe and consistent, and the preprocessing usable. Aborts otherwise. */
#ifndef GF_FUZZ_MODEL_CHECK_H
#define GF_FUZZ_MODEL_CHECK_H

#include "fuzz_common.h"
#include "gradfeat_model.h"

static void gf_fuzz_check_model(const gf_model *m) {
    gf_model_info info;
    gf_model_get_info(m, &info);
    size_t acc = 0;
    for (int i = 0; i < info.n_nodes; i++) {
        gf_node_info ni;
        if (gf_model_node(m, i, &ni) != GF_OK) abort();
        acc += strlen(ni.name) + strlen(ni.op) + strlen(ni.detail);
        for (int k = 0; k < ni.n_inputs; k++) acc += strlen(ni.inputs[k]);
        if (gf_model_find_node(m, ni.name) < 0) abort();
    }
    for (int i = 0; i < info.n_blocks + info.n_spans; i++) {
        gf_block_info bi, hit;
        if (gf_model_block(m, i, &bi) != GF_OK) abort();
        acc += strlen(bi.name) + strlen(bi.input) + strlen(bi.output);
        /* a block's name finds it, or (a lower block) its span: same cut, up to the top block */
        int k = gf_model_find_block(m, bi.name);
        if (k < 0 || gf_model_block(m, k, &hit) != GF_OK) abort();
        if (k != i && (i >= info.n_blocks || k < info.n_blocks || strcmp(hit.input, bi.input))) abort();
    }
    if (info.n_blocks && gf_model_top_blocks(m, 1) != 0) abort();
    if (gf_model_top_blocks(m, info.n_blocks + 1) != -1) abort();
    for (int i = 0; i < info.n_outputs; i++) acc += strlen(gf_model_output_name(m, i));
    for (int k = 0; k < info.n_classes; k++) {
        const char *c = gf_model_class_name(m, k);
        if (c) acc += strlen(c);
    }
    if (gf_model_class_name(m, info.n_classes) != NULL || gf_model_class_name(m, -1) != NULL) abort();
    /* a model that loaded must carry usable preprocessing */
    char err[256];
    if (gf_preprocess_check(gf_model_preprocess(m), err, sizeof err) != GF_OK) {
        fprintf(stderr, "loaded model has bad preprocessing: %s\n", err);
        abort();
    }
    (void)acc;
}

#endif
