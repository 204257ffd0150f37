/* TF.js layers model (Keras topology, NHWC) with uint8-quantised, float16 and
 * float32 weights, converted by tools/convert_tfjs.py: our probabilities vs a
 * PyTorch reference built from the dequantised weights with the layout and
 * TF SAME padding handled independently in tests/model_parity.py. */
#include "model_parity_common.h"

int main(void) {
    gf_ctx *ctx = test_ctx();
    parity_case pc;
    parity_prepare("tfjs_layers", 4, &pc);
    CHECK(pc.ref != NULL, "no reference");
    float *got = calloc((size_t)pc.n * pc.k, sizeof *got);
    gf_model *m = parity_run(ctx, &pc, NULL, got, (size_t)pc.k, "tfjs layers");
    if (pc.ref) {
        double ref[64];
        for (int i = 0; i < pc.n * pc.k && i < 64; i++) ref[i] = pc.ref[i];
        test_close("tfjs layers probabilities", got, ref, (size_t)pc.n * pc.k, 1e-6, 1e-4);
    }
    gf_model_info in;
    gf_model_get_info(m, &in);
    CHECK(in.feature && in.feature_dim == 36, "feature = the dense layer's input [36] (got %s %d)",
          in.feature ? in.feature : "-", in.feature_dim);
    gf_model_free(m);
    free(got);
    parity_cleanup(&pc);
    gf_ctx_free(ctx);
    return test_finish("test_model_parity_tfjs");
}
