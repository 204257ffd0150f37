/* The seeded resnet18 exported by torch.onnx and converted by
 * tools/convert_onnx.py: our logits vs PyTorch's on 4 inputs at 224 px. */
#include "model_parity_common.h"

int main(void) {
    gf_ctx *ctx = test_ctx();
    parity_case pc;
    parity_prepare("onnx_resnet18", 4, &pc);
    CHECK(pc.ref != NULL, "onnx: no reference");
    float *got = calloc((size_t)pc.n * pc.k, sizeof *got);
    gf_model *m = parity_run(ctx, &pc, NULL, got, (size_t)pc.k, "onnx resnet18");
    if (pc.ref) parity_check_logits("onnx resnet18", got, pc.ref, (size_t)pc.n * pc.k, 1e-3);
    gf_model_free(m);
    free(got);
    parity_cleanup(&pc);
    gf_ctx_free(ctx);
    return test_finish("test_model_parity_onnx");
}
