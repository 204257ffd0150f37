/* The real emotion net (npm @vladmandic/human@3.3.6, fetched and sha256-checked
 * by models/emotion/fetch.sh, converted by tools/convert_tfjs.py) reproduces
 * the TF.js 4.22 golden values (models/emotion/README.md): probabilities to 1e-4 and
 * sum(add_2) for skimage lfw_subset[1] and [3] (resized 25->64 with the TF1
 * legacy bilinear rule, (g - 0.5) * 2). */
#include "model.h"
#include "model_parity_common.h"

int main(void) {
    static const double golden[2][7] = {
        {0.01436, 0.00000, 0.00200, 0.97840, 0.00211, 0.00028, 0.00285},
        {0.24044, 0.00000, 0.00869, 0.00015, 0.66590, 0.00325, 0.08157}};
    static const double golden_sum[2] = {239.305, 931.771};
    gf_ctx *ctx = test_ctx();
    parity_case pc;
    parity_prepare("emotion", 2, &pc);
    float prob[2 * 7];
    gf_model *m = parity_run(ctx, &pc, "predictions", prob, 7, "emotion");
    for (int i = 0; i < 2; i++) {
        printf("lfw_subset[%d]:", 2 * i + 1);
        for (int k = 0; k < 7; k++) printf(" %.5f", prob[i * 7 + k]);
        printf("\n");
        for (int k = 0; k < 7; k++)
            CHECK(fabs(prob[i * 7 + k] - golden[i][k]) <= 1e-4, "image %d class %s: %.6f vs TF.js %.5f", 2 * i + 1,
                  gf_model_class_name(m, k), prob[i * 7 + k], golden[i][k]);
    }
    /* add_2 (8x8x256) per image, summed */
    gf_exec *e = NULL;
    REQUIRE_OK(ctx, gf_exec_create(ctx, m, 2, &e));
    REQUIRE_OK(ctx, gf_exec_run(e, pc.x, 2));
    float *a = malloc(2 * 256 * 64 * sizeof *a), feat[2 * 256];
    REQUIRE_OK(ctx, gf_exec_read(e, "add_2", a, 2 * 256 * 64));
    REQUIRE_OK(ctx, gf_exec_read(e, "add_2.gap", feat, 2 * 256));
    for (int i = 0; i < 2; i++) {
        double s = 0, fs = 0;
        for (int k = 0; k < 256 * 64; k++) s += a[i * 256 * 64 + k];
        for (int k = 0; k < 256; k++) fs += feat[i * 256 + k];
        printf("sum(add_2)[%d] = %.3f (TF.js %.3f), sum(feature) = %.4f\n", 2 * i + 1, s, golden_sum[i], fs);
        CHECK(fabs(s - golden_sum[i]) <= 5e-3 + 1e-5 * golden_sum[i], "sum(add_2) %.4f vs %.3f", s, golden_sum[i]);
        CHECK(fabs(fs * 64 - s) <= 1e-4 * fabs(s) + 1e-3, "feature = GAP(add_2): %.4f*64 vs %.4f", fs, s);
    }
    gf_model_info in;
    gf_model_get_info(m, &in);
    gf_block_info bi;
    CHECK(in.feature && !strcmp(in.feature, "add_2.gap") && in.feature_dim == 256, "feature node add_2.gap [256]");
    CHECK(in.n_blocks >= 1 && gf_model_block(m, 0, &bi) == GF_OK && !strcmp(bi.output, "add_2") && !strcmp(bi.input, "add_1"),
          "top block add_1 -> add_2");
    /* the top block as a sub-graph of the model's nodes: block add_2 fed with the executor's
     * add_1 must give the same features as the executor's add_2.gap */
    int nb = 0, c_in, h_in, w_in;
    gf_model_block_input(m, 0, &c_in, &h_in, &w_in);
    gf_block *blk = NULL;
    REQUIRE_OK(ctx, gf_model_block_create(ctx, m, 0, 2, &blk));
    gf_block_nodes(blk, &nb);
    CHECK(nb == 9 && c_in == 128 && h_in == 15 && w_in == 15, "block add_2: %d nodes, input %dx%dx%d", nb, c_in, h_in, w_in);
    CHECK(gf_block_feature_dim(blk) == 256, "block feature dim %d", gf_block_feature_dim(blk));
    float *theta = malloc(gf_block_param_count(blk) * sizeof *theta);
    REQUIRE_OK(ctx, gf_model_block_theta(ctx, m, 0, blk, theta));
    gf_params P;
    REQUIRE_OK(ctx, gf_params_create(ctx, blk, "theta", &P));
    REQUIRE_OK(ctx, gf_buf_write(ctx, P.all, 0, gf_block_param_count(blk) * sizeof *theta, theta));
    cl_mem fdev = test_alloc(ctx, 2 * 256);
    int cut = gf_model_block_cut(m, 0);
    CHECK(cut == gf_model_find_node(m, "add_1"), "cut is add_1");
    /* trunk only (ancestors of the cut) into a fresh executor, then the block */
    gf_exec *e2 = NULL;
    REQUIRE_OK(ctx, gf_exec_create(ctx, m, 2, &e2));
    REQUIRE_OK(ctx, gf_exec_run_to(e2, pc.x, 2, cut));
    REQUIRE_OK(ctx, gf_block_forward(ctx, blk, 2, gf_exec_buffer(e2, cut), &P, fdev));
    float fblk[2 * 256];
    test_download(ctx, fdev, fblk, 2 * 256);
    double fref[2 * 256];
    for (int k = 0; k < 2 * 256; k++) fref[k] = feat[k];
    test_close("block add_2 features vs executor", fblk, fref, 2 * 256, 1e-5, 1e-5);
    gf_buf_release(&fdev);
    gf_exec_free(e2);
    gf_params_free(&P);
    gf_block_free(blk);
    free(theta);
    free(a);
    gf_exec_free(e);
    gf_model_free(m);
    parity_cleanup(&pc);
    gf_ctx_free(ctx);
    return test_finish("test_model_parity_emotion");
}
