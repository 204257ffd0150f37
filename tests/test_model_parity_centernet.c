/* CenterNet's MobileNetV3 trunk (npm @vladmandic/human@3.3.6, fetched and sha256-checked by
 * models/centernet/fetch.sh, detection head dropped by tools/convert_tfjs.py --output) at 224 px against
 * TensorFlow.js 4.22's own output (tests/data/centernet_tfjs_224.txt, written by
 * models/centernet/tfjs_reference.cjs): the 480 pooled features and the sum of the 7x7x480 map for skimage's
 * astronaut, coffee and chelsea photos (TF1 legacy bilinear resize, RGB 0..255).
 * Two references: 'exact' is TF.js with the model's float16 1/6 constants set to 1/6 (what gradfeat's
 * hardswish / hardsigmoid compute): tight; 'shipped' is the model as served: looser, by the measured effect of
 * that rounding (2.4e-4 per activation, 28 activations). */
#include "model.h"
#include "model_parity_common.h"

#define NI 3
#define NF 480

static int read_golden(const char *variant, double sum[NI], double f[NI][NF]) {
    const char *src = getenv("GF_SRC");
    char p[512];
    snprintf(p, sizeof p, "%s/tests/data/centernet_tfjs_224.txt", src ? src : ".");
    FILE *fp = fopen(p, "r");
    if (!fp) return -1;
    static char line[65536];
    int got = 0;
    while (got < NI && fgets(line, sizeof line, fp)) {
        char var[32], name[64];
        int off = 0;
        if (line[0] == '#' || sscanf(line, "%31s %63s %lf%n", var, name, &sum[got], &off) != 3 || strcmp(var, variant))
            continue;
        char *s = line + off;
        for (int k = 0; k < NF; k++) {
            char *e;
            f[got][k] = strtod(s, &e);
            if (e == s) { fclose(fp); return -1; }
            s = e;
        }
        got++;
    }
    fclose(fp);
    return got == NI ? 0 : -1;
}

static void compare(const char *variant, const float *feat, const double *msum, double tol_f, double tol_sum) {
    static double gs[NI], gf[NI][NF];
    CHECK(read_golden(variant, gs, gf) == 0, "read tests/data/centernet_tfjs_224.txt '%s'", variant);
    for (int i = 0; i < NI; i++) {
        double md = 0, dot = 0, na = 0, nb = 0;
        for (int k = 0; k < NF; k++) {
            double a = feat[i * NF + k], b = gf[i][k];
            double d = fabs(a - b);
            if (!(d <= md)) md = d; /* NaN too */
            dot += a * b; na += a * a; nb += b * b;
        }
        double cosv = dot / sqrt(na * nb);
        printf("%-7s image %d: max |feature - TF.js| = %.2e (tol %.0e), cosine %.8f, sum(map) %.3f vs %.3f\n", variant,
               i, md, tol_f, cosv, msum[i], gs[i]);
        CHECK(md <= tol_f, "%s image %d: features differ from TF.js by %.3e", variant, i, md);
        CHECK(fabs(msum[i] - gs[i]) <= tol_sum * fabs(gs[i]), "%s image %d: sum(map) %.4f vs TF.js %.4f", variant, i,
              msum[i], gs[i]);
    }
}

int main(void) {
    gf_ctx *ctx = test_ctx();
    parity_case pc;
    parity_prepare("centernet", NI, &pc);
    CHECK(pc.n == NI && pc.c == 3 && pc.h == 224 && pc.w == 224 && pc.k == NF, "case %d x %dx%dx%d, %d features", pc.n,
          pc.c, pc.h, pc.w, pc.k);
    static float feat[NI * NF];
    gf_model *m = parity_run(ctx, &pc, "extern1.hard_swish.gap", feat, NF, "centernet trunk 224");
    gf_exec *e = NULL;
    REQUIRE_OK(ctx, gf_exec_create(ctx, m, NI, &e));
    REQUIRE_OK(ctx, gf_exec_run(e, pc.x, NI));
    float *map = malloc((size_t)NI * NF * 49 * sizeof *map);
    REQUIRE_OK(ctx, gf_exec_read(e, "extern1.hard_swish", map, (size_t)NI * NF * 49));
    double msum[NI];
    for (int i = 0; i < NI; i++) {
        msum[i] = 0;
        for (int k = 0; k < NF * 49; k++) msum[i] += map[(size_t)i * NF * 49 + k];
    }
    compare("exact", feat, msum, 2e-5, 1e-5);
    compare("shipped", feat, msum, 1e-2, 1e-2);
    gf_model_info in;
    gf_model_get_info(m, &in);
    CHECK(in.feature && !strcmp(in.feature, "extern1.hard_swish.gap") && in.feature_dim == NF, "feature node %s [%d]",
          in.feature ? in.feature : "(none)", in.feature_dim);
    gf_block_info bi;
    CHECK(in.n_blocks >= 1 && gf_model_block(m, 0, &bi) == GF_OK && !strcmp(bi.output, "extern1.hard_swish") &&
              !strcmp(bi.input, "MobilenetV3.expanded_conv_14.add"),
          "default top block MobilenetV3.expanded_conv_14.add -> extern1.hard_swish");
    /* an inverted residual without a skip (expand, depthwise, squeeze-excitation, project) is one block */
    int b12 = -1;
    for (int i = 0; i < in.n_blocks && b12 < 0; i++)
        if (gf_model_block(m, i, &bi) == GF_OK && !strcmp(bi.name, "MobilenetV3.expanded_conv_12")) b12 = i;
    CHECK(b12 > 0 && gf_model_block(m, b12, &bi) == GF_OK && !strcmp(bi.input, "MobilenetV3.expanded_conv_11.add") &&
              !strcmp(bi.output, "MobilenetV3.expanded_conv_12.project"),
          "block MobilenetV3.expanded_conv_12: %s -> %s", b12 > 0 ? bi.input : "-", b12 > 0 ? bi.output : "-");
    free(map);
    gf_exec_free(e);
    gf_model_free(m);
    parity_cleanup(&pc);
    gf_ctx_free(ctx);
    return test_finish("test_model_parity_centernet");
}
