/* `gradfeat bench linearized`: workload W1 (host/report/README.md) — ResNet-18 layer4
 * with BN folded, cached layer3 features (random), batch B, 20 classes: one
 * training step of the linearized model (`full`) and one fine-tuning step.
 * Several processes (mpirun): each step splits the batch over the ranks and sums the gradient as train
 * does; then rank 0 runs the whole batch alone while the others sleep (gf_dist_barrier_idle): the 1-rank
 * figure of the parallel efficiency, on the same machine in the same run. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"
#include "gf_dist.h"
#include "linearized.h"

/* One training step of batch rows; several processes (mpirun): this rank's n rows of them, the gradient
 * summed over ranks as in training (host/method/train.c), g: gf_lin_grad_floats floats of scratch. */
static gf_status step(gf_ctx *ctx, gf_lin *m, int batch, int n, cl_mem x, cl_mem labels, const gf_optim *o, float *g) {
    if (gf_dist_size() == 1) return gf_lin_train_step(ctx, m, n, x, labels, o);
    gf_lin_set_mean_over(m, batch);
    gf_status st = gf_lin_gradients(ctx, m, n, x, labels);
    gf_lin_set_mean_over(m, 0);
    if (st == GF_OK) st = gf_lin_grads_get(ctx, m, g);
    if (st == GF_OK) st = gf_dist_sum_f32(ctx, g, gf_lin_grad_floats(m));
    if (st == GF_OK) st = gf_lin_grads_set(ctx, m, g);
    if (st == GF_OK) st = gf_lin_apply_step(ctx, m, o);
    return st;
}

/* ResNet basic block: conv3x3(s) relu conv3x3 (+ 1x1 s downsample) add relu. */
static int basic_block(gf_node *nd, int i, int in, int cin, int cout, int stride, const char *name) {
    gf_conv_desc d;
    int first = i;
    memset(&nd[i], 0, 6 * sizeof *nd);
    gf_conv_desc_simple(NULL, &d, 1, cin, 8, 8, cout, 3, stride, 1, 1, 1);
    nd[i] = (gf_node){.kind = GF_K_CONV, .in = {in}, .conv = d, .has_bias = 1};
    snprintf(nd[i].name, sizeof nd[i].name, "%s.conv1", name); i++;
    nd[i] = (gf_node){.kind = GF_K_ACT, .in = {i - 1}, .act = {GF_ACT_RELU, 0}};
    snprintf(nd[i].name, sizeof nd[i].name, "%s.relu1", name); i++;
    gf_conv_desc_simple(NULL, &d, 1, cout, 8, 8, cout, 3, 1, 1, 1, 1);
    nd[i] = (gf_node){.kind = GF_K_CONV, .in = {i - 1}, .conv = d, .has_bias = 1};
    snprintf(nd[i].name, sizeof nd[i].name, "%s.conv2", name); i++;
    int shortcut = in;
    if (stride != 1 || cin != cout) {
        gf_conv_desc_simple(NULL, &d, 1, cin, 8, 8, cout, 1, stride, 0, 1, 1);
        nd[i] = (gf_node){.kind = GF_K_CONV, .in = {in}, .conv = d, .has_bias = 1};
        snprintf(nd[i].name, sizeof nd[i].name, "%s.downsample", name);
        shortcut = i++;
    }
    nd[i] = (gf_node){.kind = GF_K_ADD, .in = {first + 2, shortcut}};
    snprintf(nd[i].name, sizeof nd[i].name, "%s.add", name); i++;
    nd[i] = (gf_node){.kind = GF_K_ACT, .in = {i - 1}, .act = {GF_ACT_RELU, 0}};
    snprintf(nd[i].name, sizeof nd[i].name, "%s.relu2", name); i++;
    return i;
}

int gf_resnet_layer4_nodes(gf_node *nd) {
    int i = basic_block(nd, 0, GF_NODE_INPUT, 256, 512, 2, "layer4.0");
    return basic_block(nd, i, i - 1, 512, 512, 1, "layer4.1");
}

/* Multiply-adds of the block's forward per sample (convs only). */
static double conv_flops(const gf_node *nd, int n, int *first_convs) {
    double f = 0;
    *first_convs = 0;
    for (int i = 0; i < n; i++) {
        if (nd[i].kind != GF_K_CONV) continue;
        const gf_conv_desc *d = &nd[i].conv;
        f += 2.0 * d->c_out * (d->c_in / d->groups) * d->kh * d->kw * d->h_out * d->w_out;
    }
    return f;
}

gf_status gf_bench_linearized(gf_ctx *ctx, int batch, int size, int classes, int reps, FILE *out) {
    gf_node nd[16];
    int nn = gf_resnet_layer4_nodes(nd);
    int hw = size / 16;
    gf_block *blk;
    GF_TRY(gf_block_create(ctx, 256, hw, hw, nd, nn, batch, &blk));
    const gf_node *bn = gf_block_nodes(blk, &nn);
    int first;
    double fwd = conv_flops(bn, nn, &first) * batch;
    /* full step: forward + tangent (2 products, 1 for convs reading the block input) + weight grads + input grads
     * (none for convs reading the block input): fwd * 5 - 2 * (share of the input convs) ~ counted exactly below. */
    double in_convs = 0;
    for (int i = 0; i < nn; i++)
        if (bn[i].kind == GF_K_CONV && bn[i].in[0] == GF_NODE_INPUT) {
            const gf_conv_desc *d = &bn[i].conv;
            in_convs += 2.0 * d->c_out * (d->c_in / d->groups) * d->kh * d->kw * d->h_out * d->w_out * batch;
        }
    double lin_flops = 5 * fwd - 2 * in_convs, ft_flops = 3 * fwd - in_convs;
    size_t P = gf_block_param_count(blk), nx = (size_t)batch * 256 * hw * hw;
    int d = gf_block_feature_dim(blk);
    float *theta = calloc(P, sizeof(float)), *x = malloc(nx * sizeof(float));
    float *omega = malloc((size_t)classes * d * sizeof(float)), *bias = calloc((size_t)classes, sizeof(float));
    int *labels = malloc((size_t)batch * sizeof(int));
    gf_status st = theta && x && omega && bias && labels ? GF_OK : gf_fail(ctx, GF_ERR_MEMORY, "out of memory");
    uint64_t s = 12345;
#define RND() ((s = s * 6364136223846793005ULL + 1442695040888963407ULL), ((double)(s >> 11) / 9007199254740992.0) * 2 - 1)
    for (int i = 0; st == GF_OK && i < nn; i++) {
        if (bn[i].w_off < 0) continue;
        double scale = sqrt(3.0 / (bn[i].conv.c_in * bn[i].conv.kh * bn[i].conv.kw));
        for (size_t j = 0; j < bn[i].w_count; j++) theta[bn[i].w_off + j] = (float)(RND() * scale);
        for (size_t j = 0; bn[i].b_off >= 0 && j < bn[i].b_count; j++) theta[bn[i].b_off + j] = (float)(RND() * 0.1);
    }
    for (size_t j = 0; st == GF_OK && j < nx; j++) x[j] = (float)fabs(RND());
    for (size_t j = 0; st == GF_OK && j < (size_t)classes * d; j++) omega[j] = (float)(RND() * 0.05);
    for (int j = 0; st == GF_OK && j < batch; j++) labels[j] = j % classes;
#undef RND
    /* several processes: each rank holds its share of the batch (the batch's rows lo..hi) */
    int ranks = gf_dist_size(), lo = 0, hi = batch;
    gf_dist_share(batch, gf_dist_rank(), ranks, &lo, &hi);
    if (st == GF_OK && hi <= lo)
        st = gf_fail(ctx, GF_ERR_USAGE, "--batch %d is smaller than the %d ranks: every rank needs a sample", batch, ranks);
    size_t row = nx / (size_t)batch;
    cl_mem dx = NULL, dl = NULL, ax = NULL, al = NULL;   /* a: rank 0's whole batch, for the 1-rank figure */
    if (st == GF_OK)
        st = gf_buf_create_from(ctx, (size_t)(hi - lo) * row * sizeof(float), x + (size_t)lo * row, "W1 cached features", &dx);
    if (st == GF_OK) st = gf_buf_create_from(ctx, (size_t)(hi - lo) * sizeof(int), labels + lo, "W1 labels", &dl);
    int solo = ranks > 1 && gf_dist_rank() == 0;
    if (st == GF_OK && solo) st = gf_buf_create_from(ctx, nx * sizeof(float), x, "W1 cached features", &ax);
    if (st == GF_OK && solo) st = gf_buf_create_from(ctx, (size_t)batch * sizeof(int), labels, "W1 labels", &al);
    float *g = NULL;
    size_t gmax = 0;
    gf_optim o = gf_optim_paper_defaults();
    const gf_method methods[2] = {GF_METHOD_FULL, GF_METHOD_FINETUNE};
    double ms[2] = {0, 0}, ms1[2] = {0, 0};
    size_t gsize[2] = {0, 0};
    for (int k = 0; k < 2 && st == GF_OK; k++) {
        gf_lin *m;
        st = gf_lin_create(ctx, blk, methods[k], classes, GF_LOSS_SOFTMAX, theta, omega, bias, &m);
        if (st != GF_OK) break;
        if (ranks > 1 && gf_lin_grad_floats(m) > gmax) {
            free(g);
            gmax = gf_lin_grad_floats(m);
            if (!(g = malloc(gmax * sizeof(float)))) st = gf_fail(ctx, GF_ERR_MEMORY, "out of memory");
        }
        if (st == GF_OK) st = step(ctx, m, batch, hi - lo, dx, dl, &o, g);   /* warm-up: kernel builds, GEMM tuning */
        if (st == GF_OK) st = gf_ctx_finish(ctx);
        if (st == GF_OK) st = gf_dist_barrier(ctx);
        double t0 = gf_now();
        for (int r = 0; r < reps && st == GF_OK; r++) st = step(ctx, m, batch, hi - lo, dx, dl, &o, g);
        if (st == GF_OK) st = gf_ctx_finish(ctx);
        if (st == GF_OK) st = gf_dist_barrier(ctx);
        ms[k] = (gf_now() - t0) / reps * 1e3;
        if (st == GF_OK && solo) {   /* the whole batch on rank 0 alone: a warm-up (other shapes), then reps */
            st = gf_lin_train_step(ctx, m, batch, ax, al, &o);
            if (st == GF_OK) st = gf_ctx_finish(ctx);
            double t1 = gf_now();
            for (int r = 0; r < reps && st == GF_OK; r++) st = gf_lin_train_step(ctx, m, batch, ax, al, &o);
            if (st == GF_OK) st = gf_ctx_finish(ctx);
            ms1[k] = (gf_now() - t1) / reps * 1e3;
        }
        if (st == GF_OK) st = gf_dist_barrier_idle(ctx);
        gsize[k] = gf_lin_grad_floats(m);
        double loss, correct; int nb;
        if (st == GF_OK) st = gf_lin_take_stats(ctx, m, &loss, &correct, &nb);
        if (st == GF_OK && !isfinite(loss)) st = gf_fail(ctx, GF_ERR_NUMERIC, "W1 benchmark loss is not finite");
        gf_lin_free(m);
    }
    gf_roofline roof;   /* the device's limits; with several ranks the job's GFLOP/s is set against ranks x this peak */
    if (st == GF_OK) st = gf_bench_roofline(ctx, &roof);
    if (st == GF_OK) {
        const gf_device_info *dev = gf_ctx_device(ctx);
        double lin_gf = lin_flops / (ms[0] * 1e-3) * 1e-9, ft_gf = ft_flops / (ms[1] * 1e-3) * 1e-9;
        fprintf(out, "W1: ResNet-18 layer4 (BN folded), cached %dx%dx%d features, batch %d, %d classes, device %s\n",
                256, hw, hw, batch, classes, dev->name);
        gf_bench_roofline_print(&roof, out);
        fprintf(out, "%-22s %10s %10s %7s\n", "step", "ms", "GFLOP/s", "peak %");
        fprintf(out, "%-22s %10.1f %10.1f %7.1f\n", "linearized (full)", ms[0], lin_gf, gf_bench_peak_pct(&roof, lin_gf / ranks));
        fprintf(out, "%-22s %10.1f %10.1f %7.1f\n", "fine-tune", ms[1], ft_gf, gf_bench_peak_pct(&roof, ft_gf / ranks));
        fprintf(out, "peak %% = GFLOP/s / the SGEMM peak above%s\n", ranks > 1 ? " x the ranks" : "");
        fprintf(out, "ratio linearized / fine-tune: %.2f\n", ms[0] / ms[1]);
        if (ranks > 1)   /* the whole job's: each step is the batch over all ranks (the GFLOP/s above too) */
            for (int k = 0; k < 2; k++)
                fprintf(out, "%d ranks, %s: %.1f images/s in all; each step sums %zu gradient floats (%.1f MB) over "
                        "the ranks\n", ranks, k ? "fine-tune" : "linearized (full)", batch / (ms[k] * 1e-3), gsize[k],
                        gsize[k] * 4e-6);
        for (int k = 0; k < 2 && ranks > 1; k++)
            fprintf(out, "%d ranks, %s: 1 rank alone (rank 0, the others idle) %.1f images/s; parallel efficiency "
                    "%.2f (in all / (%d x alone))\n", ranks, k ? "fine-tune" : "linearized (full)", batch / (ms1[k] * 1e-3),
                    ms1[k] / (ranks * ms[k]), ranks);
    }
    gf_buf_release(&dx); gf_buf_release(&dl); gf_buf_release(&ax); gf_buf_release(&al);
    free(theta); free(x); free(omega); free(bias); free(labels); free(g);
    gf_block_free(blk);
    return st;
}
