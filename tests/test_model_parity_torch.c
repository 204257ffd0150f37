/* torchvision resnet18 (tests/test_model_parity_mobilenet.c reuses this file
 * for mobilenet_v2) with seeded random weights, eval mode, BN with non-trivial running
 * statistics, converted by tools/convert_torchvision.py: our logits on the
 * device vs PyTorch's on 4 inputs at 224 px, max |diff| <= 1e-3 * max |logit|. */
#include "model_parity_common.h"

int main(void) {
    gf_ctx *ctx = test_ctx();
#ifndef PARITY_ARCH
#define PARITY_ARCH "resnet18"
#endif
    const char *cases[] = {PARITY_ARCH};
    for (int i = 0; i < 1; i++) {
        parity_case pc;
        parity_prepare(cases[i], 4, &pc);
        CHECK(pc.ref != NULL, "%s: no reference", cases[i]);
        float *got = calloc((size_t)pc.n * pc.k, sizeof *got);
        gf_model *m = parity_run(ctx, &pc, NULL, got, (size_t)pc.k, cases[i]);
        if (pc.ref) {
            parity_check_logits(cases[i], got, pc.ref, (size_t)pc.n * pc.k, 1e-3);
            /* the check can fail only if the logits depend on the input: the reference's
             * spread across the images must be well above the tolerance */
            double mx = 0, spread = 0;
            for (size_t j = 0; j < (size_t)pc.n * pc.k; j++) mx = fmax(mx, fabs(pc.ref[j]));
            for (int c = 0; c < pc.k; c++)
                for (int a = 1; a < pc.n; a++)
                    spread = fmax(spread, fabs(pc.ref[(size_t)a * pc.k + c] - pc.ref[c]));
            printf("%s: reference logits spread across inputs %.3g (max |logit| %.3g)\n", cases[i], spread, mx);
            CHECK(spread >= 0.02 * mx, "%s: reference logits barely depend on the input (spread %.3g, max |logit| "
                  "%.3g): the parity check could not fail", cases[i], spread, mx);
        }
        gf_model_info in;
        gf_model_get_info(m, &in);
        CHECK(in.feature && (!strcmp(in.feature, "avgpool") || !strcmp(in.feature, "adaptive_avg_pool2d")),
              "%s: feature node %s", cases[i], in.feature ? in.feature : "-");
        if (!strcmp(cases[i], "resnet18")) {  /* the default top block is the last residual block */
            gf_block_info bi;
            CHECK(in.n_blocks >= 9 && gf_model_block(m, 0, &bi) == GF_OK && !strcmp(bi.name, "layer4.1") &&
                  gf_model_block(m, 1, &bi) == GF_OK && !strcmp(bi.name, "layer4.0"),
                  "resnet18 blocks: %d, first %s", in.n_blocks, in.n_blocks ? bi.name : "-");
        }
        gf_model_free(m);
        free(got);
        parity_cleanup(&pc);
    }
    gf_ctx_free(ctx);
    return test_finish("test_model_parity_" PARITY_ARCH);
}
