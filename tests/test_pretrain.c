/* gradfeat pretrain (host/pretrain/arch.c, pretrain.c):
 *  - initialisation: Kaiming-normal conv weights (fan_out; leaky gain for bigan) with the right
 *    spread, BN gamma 1 / beta 0, fc and conv biases inside PyTorch's uniform bounds, seeded;
 *  - export: every architecture (reduced width), trained a few steps so BN running statistics
 *    and weights are not at their start, written as a model file, reloaded by the ordinary
 *    loader (BN folded into the convs) and run by the graph executor: its logits equal the
 *    block's eval-mode logits; graph, feature node, top block, classes and preprocessing as
 *    specified;
 *  - overfitting: small28 at a quarter width learns 64 real Fashion-MNIST images to 100 %
 *    training accuracy with a loss below 0.05, and the model file it writes, loaded and run
 *    like any model (its preprocessing, BN folded), classifies all 64 right;
 *  - resume: a run cut by --steps (mid-epoch) or by the stop flag (before its first step) and
 *    resumed writes a model file byte-identical to the uninterrupted run's. */
#include <unistd.h>
#include "pretrain.h"
#include "model.h"
#include "gradfeat_train.h"
#include "testutil.h"

static const char *FMNIST = "/usr/share/datasets/fashion-mnist";

static void init_stats(gf_ctx *ctx) {
    for (int a = 0; a < GF_ARCH_COUNT; a++) {
        gf_pt_net *n;
        REQUIRE_OK(ctx, gf_pt_net_create(ctx, (gf_arch)a, 1, 3, 32, 32, 10, 2, 7, &n));
        int nn;
        const gf_node *nd = gf_block_nodes(n->blk, &nn);
        size_t P = gf_block_param_count(n->blk);
        float *th = malloc(P * 4), *w1 = malloc((size_t)10 * n->d * 4), *b1 = malloc(40);
        REQUIRE_OK(ctx, gf_lin_read_params(ctx, n->lin, th, w1, b1));
        double gain2 = a == GF_ARCH_BIGAN ? 2.0 / (1.0 + 0.04) : 2.0;
        int convs = 0;
        for (int i = 0; i < nn; i++) {
            const gf_node *x = &nd[i];
            if (x->kind == GF_K_CONV && x->w_count >= 20000) {   /* enough draws for a 3 % check */
                double s = 0, s2 = 0;
                for (size_t k = 0; k < x->w_count; k++) { s += th[x->w_off + k]; s2 += (double)th[x->w_off + k] * th[x->w_off + k]; }
                double mean = s / x->w_count, sd = sqrt(s2 / x->w_count - mean * mean);
                double want = sqrt(gain2 / ((double)x->conv.c_out * x->conv.kh * x->conv.kw));
                CHECK(fabs(sd / want - 1) < 0.03 && fabs(mean) < 0.05 * want, "%s %s: std %g (want %g), mean %g",
                      gf_arch_name((gf_arch)a), x->name, sd, want, mean);
                convs++;
            }
            if (x->kind == GF_K_CONV && x->b_off >= 0) {
                double bound = 1.0 / sqrt((double)x->conv.c_in * x->conv.kh * x->conv.kw), mx = 0;
                for (size_t k = 0; k < x->b_count; k++) mx = fmax(mx, fabs(th[x->b_off + k]));
                CHECK(mx <= bound && mx > 0.5 * bound, "%s bias max %g, bound %g", x->name, mx, bound);
            }
            if (x->kind == GF_K_BATCHNORM)
                for (size_t k = 0; k < x->w_count; k++)
                    if (th[x->w_off + k] != 1.0f || th[x->b_off + k] != 0.0f) { CHECK(0, "%s gamma/beta not 1/0", x->name); break; }
        }
        CHECK(convs > 0, "%s: no conv big enough to check", gf_arch_name((gf_arch)a));
        double bound = 1.0 / sqrt((double)n->d), mx = 0;
        for (int k = 0; k < 10 * n->d; k++) mx = fmax(mx, fabs(w1[k]));
        CHECK(mx <= bound && mx > 0.9 * bound, "fc weight max %g, bound %g", mx, bound);
        /* seeded: same seed same values, another seed others */
        float *t2 = malloc(P * 4), *w2 = malloc((size_t)10 * n->d * 4), *c2 = malloc(40);
        gf_pt_init_params(n->blk, (gf_arch)a, 10, 7, t2, w2, c2);
        CHECK(!memcmp(t2, th, P * 4) && !memcmp(w2, w1, (size_t)10 * n->d * 4), "init not a function of the seed");
        gf_pt_init_params(n->blk, (gf_arch)a, 10, 8, t2, w2, c2);
        CHECK(memcmp(t2, th, P * 4) != 0, "seed 8 gives the same weights as seed 7");
        free(t2); free(w2); free(c2);
        free(th); free(w1); free(b1);
        gf_pt_net_free(n);
    }
}

/* Train a few steps on random data (BN statistics move), then compare the
 * block's eval-mode logits with the exported file's through the graph executor. */
static void export_roundtrip(gf_ctx *ctx, gf_arch arch, int div, int C, int S) {
    enum { NB = 8, K = 5 };
    const char *an = gf_arch_name(arch);
    gf_pt_net *n;
    REQUIRE_OK(ctx, gf_pt_net_create(ctx, arch, div, C, S, S, K, NB, 3, &n));
    size_t numel = (size_t)C * S * S;
    float *x = malloc(NB * numel * 4);
    int lab[NB];
    test_rng r; test_rng_seed(&r, 5);
    cl_mem xd = test_alloc(ctx, NB * numel), ld = test_alloc(ctx, NB);
    gf_optim o = {0, 0.05f, 0.9f, 0.999f, 1e-8f, 0.9f, 5e-4f, 0};
    for (int s = 0; s < 3; s++) {
        test_fill(&r, x, NB * numel, -1, 2);
        for (int i = 0; i < NB; i++) lab[i] = (i + s) % K;
        REQUIRE_OK(ctx, gf_buf_write(ctx, xd, 0, NB * numel * 4, x));
        REQUIRE_OK(ctx, gf_buf_write(ctx, ld, 0, sizeof lab, lab));
        REQUIRE_OK(ctx, gf_lin_train_step(ctx, n->lin, NB, xd, ld, &o));
    }
    test_fill(&r, x, NB * numel, -1, 2);
    REQUIRE_OK(ctx, gf_buf_write(ctx, xd, 0, NB * numel * 4, x));
    float ref_train[NB * K], ref[NB * K], got[NB * K];
    REQUIRE_OK(ctx, gf_lin_forward(ctx, n->lin, NB, xd));   /* training mode: batch statistics */
    test_download(ctx, gf_lin_logits_buffer(n->lin), ref_train, NB * K);
    gf_block_set_training(n->blk, 0);
    REQUIRE_OK(ctx, gf_lin_forward(ctx, n->lin, NB, xd));
    test_download(ctx, gf_lin_logits_buffer(n->lin), ref, NB * K);

    char path[256];
    snprintf(path, sizeof path, "/tmp/gf_test_pretrain_%d_%s.safetensors", (int)getpid(), an);
    gf_preprocess pp;
    gf_preprocess_init(&pp, S, S, C);
    pp.mean[0] = 0.25f; pp.std[0] = 0.5f;
    const char *cls[K] = {"a", "b", "c", "d", "e"};
    REQUIRE_OK(ctx, gf_pt_net_export(ctx, n, path, &pp, cls, "{\"test\":1}"));
    gf_model *m;
    REQUIRE_OK(ctx, gf_model_load(ctx, path, &m));
    gf_model_info info;
    gf_model_get_info(m, &info);
    CHECK(info.in_c == C && info.in_h == S && info.in_w == S, "%s: input shape", an);
    CHECK(info.feature && !strcmp(info.feature, "avgpool") && info.feature_dim == n->d, "%s: feature node", an);
    CHECK(info.n_outputs == 1 && !strcmp(gf_model_output_name(m, 0), "fc") && info.out_dim == K, "%s: outputs", an);
    CHECK(info.n_classes == K && !strcmp(gf_model_class_name(m, 4), "e"), "%s: classes", an);
    const char *top = arch == GF_ARCH_SMALL28 ? "conv3" : arch == GF_ARCH_BIGAN ? "conv5" : "layer4.1";
    gf_block_info bi;
    CHECK(info.n_blocks >= 1 && gf_model_block(m, 0, &bi) == GF_OK && !strcmp(bi.name, top), "%s: top block %s", an,
          info.n_blocks ? bi.name : "(none)");
    const gf_preprocess *mp = gf_model_preprocess(m);
    CHECK(mp->mean[0] == 0.25f && mp->std[0] == 0.5f && mp->channels == C && mp->width == S, "%s: preprocess", an);
    /* a tensor named as PyTorch names it */
    gf_st_file f;
    char err[256];
    REQUIRE_OK(ctx, gf_st_open(path, &f, err, sizeof err));
    const char *names[] = {"conv1.weight", "fc.weight", "fc.bias",
                           arch == GF_ARCH_SMALL28 ? "bn3.running_var" : arch == GF_ARCH_BIGAN ? "conv1.bias"
                                                                                      : "layer2.0.downsample.1.running_mean"};
    for (int i = 0; i < 4; i++) CHECK(gf_st_find(&f, names[i]) >= 0, "%s: tensor %s missing", an, names[i]);
    CHECK(gf_st_meta(&f, "gradfeat.pretrained") && !strcmp(gf_st_meta(&f, "gradfeat.pretrained"), "{\"test\":1}"),
          "%s: gradfeat.pretrained metadata", an);
    gf_st_close(&f);

    gf_exec *e;
    REQUIRE_OK(ctx, gf_exec_create(ctx, m, NB, &e));
    REQUIRE_OK(ctx, gf_exec_run(e, x, NB));
    REQUIRE_OK(ctx, gf_exec_read(e, "fc", got, NB * K));
    double refd[NB * K], diff_train = 0, scale = 0;
    for (int i = 0; i < NB * K; i++) {
        refd[i] = ref[i];
        diff_train = fmax(diff_train, fabs(ref_train[i] - ref[i]));
        scale = fmax(scale, fabs(ref[i]));
    }
    char what[64];
    snprintf(what, sizeof what, "%s exported logits vs block eval mode", an);
    CHECK(test_close(what, got, refd, NB * K, 1e-4 * scale + 1e-6, 1e-4), "%s", what);
    /* the comparison can fail: training-mode logits (batch statistics) are far from eval mode */
    CHECK(diff_train > 1e-2 * scale, "%s: training and eval mode logits agree (%g): running stats never moved?", an,
          diff_train);
    gf_exec_free(e);
    gf_model_free(m);
    unlink(path);
    free(x);
    gf_buf_release(&xd); gf_buf_release(&ld);
    gf_pt_net_free(n);
}

static void overfit(gf_ctx *ctx) {
    gf_pretrain_options o;
    gf_pretrain_defaults(&o);
    char out[256];
    snprintf(out, sizeof out, "/tmp/gf_test_pretrain_%d_overfit.safetensors", (int)getpid());
    o.arch = "small28"; o.width_div = 4;
    o.data_path = FMNIST; o.data_split = "train"; o.limit_train = 64;
    o.batch = 32; o.epochs = 100; o.augment = 0; o.lr = 0.2f; o.weight_decay = 0;   /* SGD momentum 0.9, cosine */
    o.seed = 3; o.out_path = out; o.quiet = 1; o.threads = 1;
    gf_pretrain_result r;
    REQUIRE_OK(ctx, gf_pretrain_run(ctx, &o, &r));
    CHECK(r.n_train == 64 && r.classes == 10 && r.epochs_done == 100 && r.steps == 200, "run shape %d %d %d %ld",
          r.n_train, r.classes, r.epochs_done, r.steps);
    CHECK(r.train_acc == 1.0 && r.train_loss < 0.05, "overfit: train acc %.4f loss %.4f", r.train_acc, r.train_loss);
    /* the written model (BN folded with its running statistics, the stored mean/std) on the same
     * 64 images through the ordinary loader, preprocessing and graph executor */
    gf_model *m;
    REQUIRE_OK(ctx, gf_model_load(ctx, out, &m));
    gf_dataset_options dop;
    gf_dataset_options_init(&dop);
    dop.split = "train";
    gf_dataset *ds;
    char err[512];
    REQUIRE_OK(ctx, gf_dataset_open(FMNIST, &dop, &ds, err, sizeof err));
    int n;
    int *idx = gf_seeded_subset(gf_dataset_count(ds), 64, o.seed, &n);
    float *x = malloc((size_t)n * 784 * 4), logits[64 * 10];
    for (int i = 0; i < n; i++)
        REQUIRE_OK(ctx, gf_dataset_sample(ds, idx[i], gf_model_preprocess(m), 0, x + (size_t)i * 784, err, sizeof err));
    gf_exec *e;
    REQUIRE_OK(ctx, gf_exec_create(ctx, m, n, &e));
    REQUIRE_OK(ctx, gf_exec_run(e, x, n));
    REQUIRE_OK(ctx, gf_exec_read(e, "fc", logits, (size_t)n * 10));
    int correct = 0;
    for (int i = 0; i < n; i++) {
        int best = 0;
        for (int k = 1; k < 10; k++) if (logits[i * 10 + k] > logits[i * 10 + best]) best = k;
        correct += best == gf_dataset_label(ds, idx[i]);
    }
    CHECK(n == 64 && correct == 64, "overfit: the exported model gets %d of %d training images right", correct, n);
    fprintf(stderr, "overfit: train loss %.4f acc %.4f; exported model %d/%d right\n", r.train_loss, r.train_acc,
            correct, n);
    gf_exec_free(e);
    gf_model_free(m);
    gf_dataset_free(ds);
    free(idx); free(x);
    unlink(out);
}

static int read_all(const char *p, char **buf, size_t *n) {
    FILE *f = fopen(p, "rb");
    if (!f) return 0;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc(*n + 1);
    size_t got = fread(*buf, 1, *n, f);
    fclose(f);
    return got == *n;
}

static int same_file(const char *a, const char *b) {
    char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    int ok = read_all(a, &x, &nx) && read_all(b, &y, &ny) && nx == ny && !memcmp(x, y, nx);
    free(x); free(y);
    return ok;
}

static void resume(gf_ctx *ctx) {
    char dir[256], ra[300], rb[300], rc[300], fa[300], fb[300], fc[300], ck[400];
    snprintf(dir, sizeof dir, "/tmp/gf_test_pretrain_%d", (int)getpid());
    snprintf(ra, sizeof ra, "%s/a", dir); snprintf(rb, sizeof rb, "%s/b", dir); snprintf(rc, sizeof rc, "%s/c", dir);
    snprintf(fa, sizeof fa, "%s/a.safetensors", dir); snprintf(fb, sizeof fb, "%s/b.safetensors", dir);
    snprintf(fc, sizeof fc, "%s/c.safetensors", dir);
    gf_pretrain_options o;
    gf_pretrain_defaults(&o);
    o.arch = "small28"; o.width_div = 8;
    o.data_path = FMNIST; o.data_split = "train"; o.limit_train = 150;   /* 150 = 4 x 32 + 22: a partial last batch */
    o.batch = 32; o.epochs = 2; o.checkpoint_every = 3; o.seed = 9; o.quiet = 1; o.threads = 2;  /* augmentation on */
    gf_pretrain_result r;
    /* uninterrupted */
    o.run_dir = ra; o.out_path = fa;
    REQUIRE_OK(ctx, gf_pretrain_run(ctx, &o, &r));
    CHECK(r.steps == 10 && !r.limited && !r.stopped && r.checkpoints >= 3, "run a: %ld steps, %d checkpoints", r.steps,
          r.checkpoints);
    snprintf(ck, sizeof ck, "%s/checkpoint.gfptck", ra);
    CHECK(access(ck, F_OK) != 0, "a finished run removes its checkpoint");
    /* cut after 7 steps (epoch 2, batch 3), then resumed */
    o.run_dir = rb; o.out_path = fb; o.max_steps = 7;
    REQUIRE_OK(ctx, gf_pretrain_run(ctx, &o, &r));
    CHECK(r.limited && r.steps == 7 && r.checkpoint[0], "run b: limited %d at %ld", r.limited, r.steps);
    CHECK(!same_file(fa, fb), "a model after 7 of 10 steps equals the finished one");
    o.max_steps = 0; o.resume = 1; o.threads = 1;   /* the thread count must not matter */
    REQUIRE_OK(ctx, gf_pretrain_run(ctx, &o, &r));
    CHECK(r.steps == 10 && !r.limited, "run b resumed: %ld steps", r.steps);
    CHECK(same_file(fa, fb), "resumed (--steps 7) model file differs from the uninterrupted run's");
    /* stop flag set before the first step: checkpoint at the start; a changed option is refused
     * (naming it), the same options resume */
    volatile sig_atomic_t stop = 1;
    o.run_dir = rc; o.out_path = fc; o.resume = 0; o.stop = &stop;
    REQUIRE_OK(ctx, gf_pretrain_run(ctx, &o, &r));
    CHECK(r.stopped && r.steps == 0 && r.checkpoint[0] && !r.out_path[0], "run c: stopped %d steps %ld", r.stopped, r.steps);
    stop = 0;
    o.resume = 1; o.lr = 0.1f;
    gf_status st = gf_pretrain_run(ctx, &o, &r);
    CHECK(st == GF_ERR_USAGE && strstr(gf_ctx_last_error(ctx), "'lr'"), "changed lr on resume: %s: %s",
          gf_status_name(st), gf_ctx_last_error(ctx));
    o.lr = 0.05f;
    REQUIRE_OK(ctx, gf_pretrain_run(ctx, &o, &r));
    CHECK(same_file(fa, fc), "resumed (stopped at step 0) model file differs from the uninterrupted run's");
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "cleanup");
}

int main(void) {
    gf_ctx *ctx = test_ctx();
    init_stats(ctx);
    export_roundtrip(ctx, GF_ARCH_SMALL28, 4, 1, 12);
    export_roundtrip(ctx, GF_ARCH_BIGAN, 16, 3, 16);
    export_roundtrip(ctx, GF_ARCH_RESNET18C, 16, 3, 16);
    overfit(ctx);
    resume(ctx);
    gf_ctx_free(ctx);
    return test_finish("test_pretrain");
}
