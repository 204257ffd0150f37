/* TF.js layers model (Keras topology, NHWC) with uint8-quantised, float16 and
 * float32 weights, converted by tools/convert_tfjs.py: our probabilities vs a
 * PyTorch reference built from the dequantised weights with the layout and
 * TF SAME padding handled independently in tests/model_parity.py. */
#include "model_parity_common.h"

int main(void) {
    gf_ctx *ctx = test_ctx();
    /* tfjs_minjs: the same network written with ZeroPadding2D + VALID conv and packaged as JavaScript
     * modules (model.min.js, group1-shard1of1.min.js), as nsfwjs ships its models */
    /* tfjs_graph_pad: a graph model whose explicit Pad (TF's ZeroPadding2D) folds into the conv's pads */
    const char *cases[] = {"tfjs_layers", "tfjs_minjs", "tfjs_graph_pad"};
    for (int c = 0; c < 3; c++) {
    parity_case pc;
    parity_prepare(cases[c], 4, &pc);
    CHECK(pc.ref != NULL, "no reference");
    float *got = calloc((size_t)pc.n * pc.k, sizeof *got);
    gf_model *m = parity_run(ctx, &pc, NULL, got, (size_t)pc.k, cases[c]);
    if (pc.ref) {
        double ref[64];
        for (int i = 0; i < pc.n * pc.k && i < 64; i++) ref[i] = pc.ref[i];
        test_close(cases[c], got, ref, (size_t)pc.n * pc.k, 1e-6, 1e-4);
    }
    gf_model_info in;
    gf_model_get_info(m, &in);
    /* default feature: the last conv map before the head (pool, 4x3x3), global-average-pooled */
    CHECK(in.feature && (c == 2 || !strcmp(in.feature, "pool.gap")) && in.feature_dim == 4,
          "%s: feature = GAP of the last conv map [4] (got %s %d)", cases[c], in.feature ? in.feature : "-",
          in.feature_dim);
    gf_model_free(m);
    free(got);
    parity_cleanup(&pc);
    }
    gf_ctx_free(ctx);
    return test_finish("test_model_parity_tfjs");
}
