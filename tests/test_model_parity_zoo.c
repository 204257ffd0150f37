/* Converters without an allow-list (issue 17/21/22): torchvision models beyond the classic ones, with
 * seeded random weights and randomised BN statistics, converted by tools/convert_torchvision.py
 * (torch.fx) and by torch.onnx.export -> tools/convert_onnx.py, at small input sizes to keep CI cheap:
 * vgg11_bn at 32 px (1x1 map before its 7x7 adaptive pool, folded into the first Linear), mnasnet0_5 and
 * regnet_x_400mf at 64 px both ways, and a freshly initialised resnet18 through ONNX (torch dedups the
 * equal BatchNorm initializers behind Identity nodes); issue 17's ops: squeezenet1_1 (torch.cat, ceil-mode
 * pools), efficientnet_b0 (SiLU, squeeze-excitation with sigmoid, stochastic depth) and mobilenet_v3_small
 * (hard-swish, SE with hard-sigmoid) at 64 px and a small net of every new op (GELU erf/tanh, SiLU,
 * sigmoid, hard-sigmoid/-swish, gate and elementwise products, a three-way concat, pools with ceil mode and
 * counted padding) at 16 px, both ways; ShuffleNetV2 at 64 px: shufflenet_v2_x0_5 through torchvision
 * (channel_shuffle traced as one node -> shuffle, x.chunk(2, dim=1) -> two slices, torch.cat) and through ONNX
 * exported with a symbolic batch size (limit 3e-5 both), shufflenet_v2_x1_0 both ways (torchvision limit 2e-5:
 * see TOL there; ONNX: the Shape/Gather/Add/Div/Mul arithmetic folded, Slice -> slice, Reshape/Transpose/
 * Reshape -> shuffle)
 * (ONNX: Sigmoid+Mul for SiLU, HardSigmoid+Mul for hard-swish, torch's Erf subgraph for GELU, a Pad folded
 * into the average pool; the ops net also at opset 17: LayerNormalization, HardSwish as single ops), against
 * PyTorch in float64. Our logits on the device vs PyTorch's: max |diff| <= 1e-5 x max |logit| (per-case
 * limits up to 1e-4 in meta.txt).
 * tests/model_parity.py (case zoo) lists the cases. */
#include "model_parity_common.h"

int main(void) {
    gf_ctx *ctx = test_ctx();
    const char *src = getenv("GF_SRC");
    char root[96], cmd[1024], p[512];
    snprintf(root, sizeof root, "/tmp/gf_parity_zoo_%d", (int)getpid());
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/model_parity.py zoo %s 2", src ? src : ".", root);
    if (system(cmd) != 0) { fprintf(stderr, "FATAL: '%s' failed\n", cmd); return 1; }
    snprintf(p, sizeof p, "%s/cases.txt", root);
    FILE *lf = fopen(p, "r");
    if (!lf) { fprintf(stderr, "FATAL: no %s\n", p); return 1; }
    char name[64];
    int ncases = 0;
    while (fscanf(lf, "%63s", name) == 1) {
        parity_case pc;
        memset(&pc, 0, sizeof pc);
        snprintf(pc.dir, sizeof pc.dir, "%s/%s", root, name);
        snprintf(p, sizeof p, "%s/meta.txt", pc.dir);
        FILE *f = fopen(p, "r");
        double tol = 1e-5;   /* the case's limit (tests/model_parity.py TOL), 1e-5 unless stated */
        int ok = f && fscanf(f, "%d %d %d %d %d %lf", &pc.n, &pc.c, &pc.h, &pc.w, &pc.k, &tol) == 6 && tol <= 1e-4;
        if (f) fclose(f);
        CHECK(ok, "%s: bad meta.txt", name);
        if (!ok) continue;
        pc.x = parity_read(pc.dir, "x.f32", (size_t)pc.n * pc.c * pc.h * pc.w);
        pc.ref = parity_read(pc.dir, "ref.f32", (size_t)pc.n * pc.k);
        CHECK(pc.x && pc.ref, "%s: inputs or reference missing", name);
        if (pc.x && pc.ref) {
            float *got = calloc((size_t)pc.n * pc.k, sizeof *got);
            gf_model *m = parity_run(ctx, &pc, NULL, got, (size_t)pc.k, name);
            parity_check_logits(name, got, pc.ref, (size_t)pc.n * pc.k, tol);
            gf_model_free(m);
            free(got);
        }
        free(pc.x);
        free(pc.ref);
        ncases++;
    }
    fclose(lf);
    if (getenv("GF_PARITY_ZOO_ONLY")) CHECK(ncases >= 1, "GF_PARITY_ZOO_ONLY matched no case");
    else CHECK(ncases >= 19, "expected 19 cases (more with GF_PARITY_ZOO_EXTRA=1), ran %d", ncases);
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", root);
    gf_ctx_free(ctx);
    return test_finish("test_model_parity_zoo");
}
