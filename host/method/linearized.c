/* The four models (linear / gradient / full / finetune) over a block + head:
 * forward, loss, backward, optimiser step — all enqueued, stats read back only
 * when asked. See linearized.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "linearized.h"
#include "ops_loss.h"
#include "ops_util.h"

struct gf_lin {
    gf_block *block;
    gf_method method;
    gf_loss_kind loss;
    int K, d, max_batch;
    gf_params theta_bar;            /* frozen θ̄ */
    gf_params theta;                /* finetune: trainable θ (starts at θ̄) */
    gf_params w2;                   /* gradient/full: tangent parameters (start at 0) */
    gf_params gblock, mblock, vblock;
    cl_mem head, ghead, mhead, vhead; /* [w1 (K*d) | pad | b1 (K)] */
    cl_mem w1, b1, gw1, gb1;        /* sub-buffers of head / ghead */
    cl_mem mb1, vb1;                /* b1's slices of the optimiser state (gradient trains b1 only) */
    size_t head_count, b1_off;
    cl_mem omega_bar;               /* frozen copy of the probe's weights */
    cl_mem f, tf, logits, glogits, gfeat, stats, sqnorm;
    long step;
    int batches;
    int mean_over;                  /* the loss's mean divides by this many rows (0: the batch's own) */
    /* NTK parametrisation (official code's option): the model uses
     * s ⊙ stored parameters; gradients are scaled back the same way. */
    int ntk;
    float ntk_head;                 /* sqrt(1/K) on w1 */
    gf_params w2_eff;               /* s ⊙ w2, rebuilt each forward */
    cl_mem w1_eff;
    /* primal cache: rows primal_idx of the batch replace the forward at θ̄ */
    const gf_primal_cache *primal;
    cl_mem primal_idx;
};

/* The one table of the methods' names (gf_job_method_name, checkpoints, run files and reports use it). */
const char *gf_method_name(gf_method m) {
    static const char *const names[GF_METHOD_COUNT] = {"linear", "gradient", "full", "finetune"};
    return (unsigned)m < GF_METHOD_COUNT ? names[m] : "?";
}

int gf_method_parse(const char *s) {
    for (int i = 0; i < GF_METHOD_COUNT; i++) if (!strcasecmp(s, gf_method_name((gf_method)i))) return i;
    return -1;
}

gf_optim gf_optim_paper_defaults(void) {
    gf_optim o = {1, 1e-3f, 0.5f, 0.999f, 1e-8f, 0.9f, 1e-6f, 0.0f};
    return o;
}

static gf_status sub(gf_ctx *ctx, cl_mem all, size_t off, size_t count, cl_mem *out) {
    cl_buffer_region r = { off * sizeof(float), count * sizeof(float) };
    cl_int e;
    *out = clCreateSubBuffer(all, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION, &r, &e);
    if (e != CL_SUCCESS) return gf_cl_fail(ctx, e, "clCreateSubBuffer (head)");
    return GF_OK;
}

static int trains_block(const gf_lin *m) { return m->method != GF_METHOD_LINEAR; }

gf_status gf_lin_create(gf_ctx *ctx, gf_block *block, gf_method method, int K, gf_loss_kind loss,
                        const float *theta_bar, const float *omega, const float *bias, gf_lin **out) {
    *out = NULL;
    gf_lin *m = calloc(1, sizeof *m);
    if (!m) return gf_fail(ctx, GF_ERR_MEMORY, "out of memory");
    m->block = block; m->method = method; m->loss = loss; m->K = K;
    m->d = gf_block_feature_dim(block);
    m->max_batch = gf_block_max_batch(block);
    /* b1 is a sub-buffer of the head: its offset must meet the device's base-address alignment */
    cl_uint align_bits = 4096;
    clGetDeviceInfo(ctx->device, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof align_bits, &align_bits, NULL);
    size_t align = align_bits / 8 / sizeof(float) > 64 ? align_bits / 8 / sizeof(float) : 64;
    m->b1_off = ((size_t)K * m->d + align - 1) / align * align;
    m->head_count = m->b1_off + (size_t)K;
    size_t pb = gf_block_param_count(block), nb = (size_t)m->max_batch;
    gf_status st = gf_params_create(ctx, block, "theta_bar (frozen top block)", &m->theta_bar);
    if (st == GF_OK) st = gf_buf_write(ctx, m->theta_bar.all, 0, pb * sizeof(float), theta_bar);
    /* never written again: its convs keep their weights' Winograd transforms across steps */
    if (st == GF_OK) st = gf_params_freeze(ctx, &m->theta_bar);
    if (st == GF_OK && method == GF_METHOD_FINETUNE) {
        st = gf_params_create(ctx, block, "theta (fine-tuned top block)", &m->theta);
        if (st == GF_OK) st = gf_buf_copy(ctx, m->theta_bar.all, 0, m->theta.all, 0, pb * sizeof(float));
    }
    if (st == GF_OK && (method == GF_METHOD_GRADIENT || method == GF_METHOD_FULL))
        st = gf_params_create(ctx, block, "w2 (tangent parameters)", &m->w2);
    if (st == GF_OK && trains_block(m)) {
        st = gf_params_create(ctx, block, "top-block gradient", &m->gblock);
        if (st == GF_OK) st = gf_params_create(ctx, block, "optimiser state m", &m->mblock);
        if (st == GF_OK) st = gf_params_create(ctx, block, "optimiser state v", &m->vblock);
    }
    cl_mem *heads[] = {&m->head, &m->ghead, &m->mhead, &m->vhead};
    for (int i = 0; i < 4 && st == GF_OK; i++) {
        st = gf_buf_create(ctx, m->head_count * sizeof(float), "linear head", heads[i]);
        if (st == GF_OK) st = gf_buf_zero(ctx, *heads[i], 0, m->head_count * sizeof(float));
    }
    if (st == GF_OK) st = gf_buf_write(ctx, m->head, 0, (size_t)K * m->d * sizeof(float), omega);
    if (st == GF_OK) st = gf_buf_write(ctx, m->head, m->b1_off * sizeof(float), (size_t)K * sizeof(float), bias);
    if (st == GF_OK) st = sub(ctx, m->head, 0, (size_t)K * m->d, &m->w1);
    if (st == GF_OK) st = sub(ctx, m->head, m->b1_off, (size_t)K, &m->b1);
    if (st == GF_OK) st = sub(ctx, m->ghead, 0, (size_t)K * m->d, &m->gw1);
    if (st == GF_OK) st = sub(ctx, m->ghead, m->b1_off, (size_t)K, &m->gb1);
    if (st == GF_OK) st = sub(ctx, m->mhead, m->b1_off, (size_t)K, &m->mb1);
    if (st == GF_OK) st = sub(ctx, m->vhead, m->b1_off, (size_t)K, &m->vb1);
    if (st == GF_OK) st = gf_buf_create_from(ctx, (size_t)K * m->d * sizeof(float), omega, "omega_bar (frozen probe)",
                                             &m->omega_bar);
    struct { cl_mem *b; size_t n; const char *what; } bufs[] = {
        {&m->f, nb * m->d, "features"}, {&m->tf, nb * m->d, "feature tangents"}, {&m->gfeat, nb * m->d, "feature gradient"},
        {&m->logits, nb * K, "logits"}, {&m->glogits, nb * K, "logit gradient"}, {&m->stats, 4, "loss stats"},
        {&m->sqnorm, 1, "gradient norm"}};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0] && st == GF_OK; i++) {
        st = gf_buf_create(ctx, bufs[i].n * sizeof(float), bufs[i].what, bufs[i].b);
        if (st == GF_OK) st = gf_buf_zero(ctx, *bufs[i].b, 0, bufs[i].n * sizeof(float));
    }
    if (st != GF_OK) { gf_lin_free(m); return st; }
    *out = m;
    return GF_OK;
}

void gf_lin_free(gf_lin *m) {
    if (!m) return;
    gf_params *ps[] = {&m->theta_bar, &m->theta, &m->w2, &m->gblock, &m->mblock, &m->vblock, &m->w2_eff};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) gf_params_free(ps[i]);
    cl_mem *ms[] = {&m->w1, &m->b1, &m->gw1, &m->gb1, &m->mb1, &m->vb1, &m->head, &m->ghead, &m->mhead, &m->vhead, &m->omega_bar,
                    &m->f, &m->tf, &m->logits, &m->glogits, &m->gfeat, &m->stats, &m->sqnorm, &m->w1_eff};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) gf_buf_release(ms[i]);
    free(m);
}

cl_mem gf_lin_logits_buffer(gf_lin *m) { return m->logits; }

/* NTK scales: tangent weight sqrt(1/C_out), tangent bias sqrt(0.1). */
static float ntk_w(const gf_node *nd) { return sqrtf(1.0f / (float)nd->c); }
static const float NTK_BIAS = 0.316227766f;

/* dst_i = s_i * src_i per parameter tensor of the block vector (s = 1/s with inverse). */
static gf_status scale_block(gf_ctx *ctx, gf_lin *m, gf_params *src, gf_params *dst) {
    int nn;
    const gf_node *nd = gf_block_nodes(m->block, &nn);
    for (int i = 0; i < nn; i++) {
        if (nd[i].w_off >= 0) GF_TRY(gf_axpby(ctx, nd[i].w_count, ntk_w(&nd[i]), src->w[i], 0.0f, dst->w[i]));
        if (nd[i].b_off >= 0) GF_TRY(gf_axpby(ctx, nd[i].b_count, NTK_BIAS, src->b[i], 0.0f, dst->b[i]));
    }
    return GF_OK;
}

gf_status gf_lin_set_ntk(gf_ctx *ctx, gf_lin *m, int on) {
    m->ntk = on && (m->method == GF_METHOD_GRADIENT || m->method == GF_METHOD_FULL);
    if (!m->ntk || m->w1_eff) return GF_OK;
    m->ntk_head = sqrtf(1.0f / (float)m->K);
    GF_TRY(gf_params_create(ctx, m->block, "w2 (NTK-scaled)", &m->w2_eff));
    return gf_buf_create(ctx, (size_t)m->K * m->d * sizeof(float), "w1 (NTK-scaled)", &m->w1_eff);
}

gf_status gf_lin_set_omega_bar(gf_ctx *ctx, gf_lin *m, const float *omega) {
    return gf_buf_write(ctx, m->omega_bar, 0, (size_t)m->K * m->d * sizeof(float), omega);
}

void gf_lin_use_primal_cache(gf_lin *m, const gf_primal_cache *pc, cl_mem idx) {
    int at_theta_bar = m->method == GF_METHOD_GRADIENT || m->method == GF_METHOD_FULL;
    m->primal = at_theta_bar && idx ? pc : NULL;
    m->primal_idx = m->primal ? idx : NULL;
}

gf_status gf_lin_forward(gf_ctx *ctx, gf_lin *m, int n, cl_mem x) {
    const gf_params *th = m->method == GF_METHOD_FINETUNE ? &m->theta : &m->theta_bar;
    if (m->primal) GF_TRY(gf_primal_cache_load(ctx, m->block, m->primal, n, m->primal_idx, x, m->f));
    else GF_TRY(gf_block_forward(ctx, m->block, n, x, th, m->f));
    const gf_params *w2 = &m->w2;
    cl_mem w1 = m->w1;
    if (m->ntk) {
        GF_TRY(scale_block(ctx, m, &m->w2, &m->w2_eff));
        GF_TRY(gf_axpby(ctx, (size_t)m->K * m->d, m->ntk_head, m->w1, 0.0f, m->w1_eff));
        w2 = &m->w2_eff;
        w1 = m->w1_eff;
    }
    if (m->method == GF_METHOD_GRADIENT || m->method == GF_METHOD_FULL)
        GF_TRY(gf_block_tangent(ctx, m->block, n, x, th, w2, m->tf));
    switch (m->method) {
    case GF_METHOD_GRADIENT:
        return gf_linear_forward(ctx, n, m->d, m->K, m->tf, m->omega_bar, m->b1, m->logits);
    case GF_METHOD_FULL:
        GF_TRY(gf_linear_forward(ctx, n, m->d, m->K, m->f, w1, m->b1, m->logits));
        /* logits += tf ω̄ᵀ  (no bias on the ω̄ term) */
        return gf_gemm(ctx, 0, 1, (size_t)n, (size_t)m->K, (size_t)m->d, 1.0f, m->tf, 0, (size_t)m->d,
                       m->omega_bar, 0, (size_t)m->d, 1.0f, m->logits, 0, (size_t)m->K);
    default:
        return gf_linear_forward(ctx, n, m->d, m->K, m->f, m->w1, m->b1, m->logits);
    }
}

static gf_status loss_and_grad(gf_ctx *ctx, gf_lin *m, int n, cl_mem labels, cl_mem grad) {
    m->batches++;
    if (m->loss == GF_LOSS_SOFTMAX)
        return gf_softmax_xent_over(ctx, n, m->K, m->logits, labels, grad, m->stats, 0, 1, m->mean_over);
    return gf_sigmoid_bce_over(ctx, n, m->K, m->logits, labels, grad, m->stats, 0, 1, 0, m->mean_over);
}

void gf_lin_set_mean_over(gf_lin *m, int rows) { m->mean_over = rows > 0 ? rows : 0; }

gf_status gf_lin_gradients(gf_ctx *ctx, gf_lin *m, int n, cl_mem x, cl_mem labels) {
    if (n == 0) {   /* an empty shard of a data-parallel batch: it adds nothing */
        GF_TRY(gf_buf_zero(ctx, m->ghead, 0, m->head_count * sizeof(float)));
        if (trains_block(m)) GF_TRY(gf_buf_zero(ctx, m->gblock.all, 0, m->gblock.count * sizeof(float)));
        return GF_OK;
    }
    GF_TRY(gf_lin_forward(ctx, m, n, x));
    GF_TRY(loss_and_grad(ctx, m, n, labels, m->glogits));
    GF_TRY(gf_buf_zero(ctx, m->ghead, 0, m->head_count * sizeof(float)));
    switch (m->method) {
    case GF_METHOD_LINEAR:
        return gf_linear_backward(ctx, n, m->d, m->K, m->f, m->w1, m->glogits, NULL, m->gw1, m->gb1, 0);
    case GF_METHOD_GRADIENT: case GF_METHOD_FULL:
        if (m->method == GF_METHOD_FULL)
            GF_TRY(gf_linear_backward(ctx, n, m->d, m->K, m->f, m->w1, m->glogits, NULL, m->gw1, m->gb1, 0));
        else
            GF_TRY(gf_linear_backward(ctx, n, m->d, m->K, m->tf, m->omega_bar, m->glogits, NULL, NULL, m->gb1, 0));
        /* gradient of the feature tangent: g ω̄ ; then Jᵀ through the tangent graph */
        GF_TRY(gf_gemm(ctx, 0, 0, (size_t)n, (size_t)m->d, (size_t)m->K, 1.0f, m->glogits, 0, (size_t)m->K,
                       m->omega_bar, 0, (size_t)m->d, 0.0f, m->gfeat, 0, (size_t)m->d));
        GF_TRY(gf_block_backward(ctx, m->block, n, x, &m->theta_bar, m->gfeat, &m->gblock, NULL));
        if (m->ntk) {   /* d loss / d stored = s * d loss / d effective */
            GF_TRY(scale_block(ctx, m, &m->gblock, &m->gblock));
            GF_TRY(gf_axpby(ctx, (size_t)m->K * m->d, m->ntk_head, m->gw1, 0.0f, m->gw1));
        }
        return GF_OK;
    case GF_METHOD_FINETUNE:
        GF_TRY(gf_linear_backward(ctx, n, m->d, m->K, m->f, m->w1, m->glogits, m->gfeat, m->gw1, m->gb1, 0));
        return gf_block_backward(ctx, m->block, n, x, &m->theta, m->gfeat, &m->gblock, NULL);
    }
    return GF_OK;
}

gf_status gf_lin_train_step(gf_ctx *ctx, gf_lin *m, int n, cl_mem x, cl_mem labels, const gf_optim *o) {
    GF_TRY(gf_lin_gradients(ctx, m, n, x, labels));
    return gf_lin_apply_step(ctx, m, o);
}

/* The trained parameters' gradient as one host vector: the head's w1 (not for `gradient`, which trains b1
 * only), b1, then the block vector (methods that train it). */
size_t gf_lin_grad_floats(const gf_lin *m) {
    size_t head = (m->method == GF_METHOD_GRADIENT ? 0 : (size_t)m->K * m->d) + (size_t)m->K;
    return head + (trains_block(m) ? m->gblock.count : 0);
}

static gf_status grads_io(gf_ctx *ctx, gf_lin *m, float *v, int write) {
    size_t kd = m->method == GF_METHOD_GRADIENT ? 0 : (size_t)m->K * m->d, off = 0;
    struct { cl_mem b; size_t at, n; } parts[3] = {{m->ghead, 0, kd}, {m->ghead, m->b1_off, (size_t)m->K},
                                                   {trains_block(m) ? m->gblock.all : NULL, 0, m->gblock.count}};
    for (int i = 0; i < 3; i++) {
        if (!parts[i].b || !parts[i].n) continue;
        size_t at = parts[i].at * sizeof(float), bytes = parts[i].n * sizeof(float);
        GF_TRY(write ? gf_buf_write(ctx, parts[i].b, at, bytes, v + off) : gf_buf_read(ctx, parts[i].b, at, bytes, v + off));
        off += parts[i].n;
    }
    return GF_OK;
}

gf_status gf_lin_grads_get(gf_ctx *ctx, gf_lin *m, float *v) { return grads_io(ctx, m, v, 0); }
gf_status gf_lin_grads_set(gf_ctx *ctx, gf_lin *m, const float *v) { return grads_io(ctx, m, (float *)v, 1); }

gf_status gf_lin_apply_step(gf_ctx *ctx, gf_lin *m, const gf_optim *o) {
    m->step++;
    gf_clip clip = { m->sqnorm, o->clip_norm };
    const gf_clip *cp = NULL;
    if (o->clip_norm > 0) {
        GF_TRY(gf_grad_sqnorm(ctx, m->head_count, m->ghead, m->sqnorm, 0, 0));
        if (trains_block(m)) GF_TRY(gf_grad_sqnorm(ctx, m->gblock.count, m->gblock.all, m->sqnorm, 0, 1));
        cp = &clip;
    }
    gf_params *blk = m->method == GF_METHOD_FINETUNE ? &m->theta : &m->w2;
    /* w2 = θ2 − θ̄2 decays toward 0; fine-tuned θ2 decays toward θ̄2 (same model class). */
    cl_mem ref = m->method == GF_METHOD_FINETUNE ? m->theta_bar.all : NULL;
    if (o->adam) {
        gf_adam_opts a = {o->lr, o->beta1, o->beta2, o->eps, o->weight_decay};
        /* `gradient` has no w1 term: only b1 of the head is trained (weight decay would move the unused w1) */
        if (m->method == GF_METHOD_GRADIENT)
            GF_TRY(gf_adam_step(ctx, &a, m->step, (size_t)m->K, m->b1, m->gb1, m->mb1, m->vb1, NULL, cp));
        else
            GF_TRY(gf_adam_step(ctx, &a, m->step, m->head_count, m->head, m->ghead, m->mhead, m->vhead, NULL, cp));
        if (trains_block(m))
            GF_TRY(gf_adam_step(ctx, &a, m->step, blk->count, blk->all, m->gblock.all, m->mblock.all, m->vblock.all,
                                ref, cp));
    } else {
        gf_sgd_opts s = {o->lr, o->momentum, o->weight_decay};
        if (m->method == GF_METHOD_GRADIENT)
            GF_TRY(gf_sgd_step(ctx, &s, (size_t)m->K, m->b1, m->gb1, m->mb1, NULL, cp));
        else
            GF_TRY(gf_sgd_step(ctx, &s, m->head_count, m->head, m->ghead, m->mhead, NULL, cp));
        if (trains_block(m))
            GF_TRY(gf_sgd_step(ctx, &s, blk->count, blk->all, m->gblock.all, m->mblock.all, ref, cp));
    }
    return GF_OK;
}

gf_status gf_lin_eval_batch(gf_ctx *ctx, gf_lin *m, int n, cl_mem x, cl_mem labels) {
    GF_TRY(gf_lin_forward(ctx, m, n, x));
    return loss_and_grad(ctx, m, n, labels, NULL);
}

gf_status gf_lin_take_stats(gf_ctx *ctx, gf_lin *m, double *loss_sum, double *correct, int *batches) {
    float s[2];
    GF_TRY(gf_buf_read(ctx, m->stats, 0, sizeof s, s));
    GF_TRY(gf_buf_zero(ctx, m->stats, 0, sizeof s));
    if (loss_sum) *loss_sum = s[0];
    if (correct) *correct = s[1];
    if (batches) *batches = m->batches;
    m->batches = 0;
    return GF_OK;
}

gf_status gf_lin_read_grads(gf_ctx *ctx, gf_lin *m, float *head, float *block) {
    if (head) {
        GF_TRY(gf_buf_read(ctx, m->ghead, 0, (size_t)m->K * m->d * sizeof(float), head));
        GF_TRY(gf_buf_read(ctx, m->ghead, m->b1_off * sizeof(float), (size_t)m->K * sizeof(float), head + (size_t)m->K * m->d));
    }
    if (block && trains_block(m)) GF_TRY(gf_buf_read(ctx, m->gblock.all, 0, m->gblock.count * sizeof(float), block));
    return GF_OK;
}

gf_status gf_lin_read_params(gf_ctx *ctx, gf_lin *m, float *block_vec, float *w1, float *b1) {
    gf_params *blk = m->method == GF_METHOD_FINETUNE ? &m->theta : &m->w2;
    if (block_vec && trains_block(m)) GF_TRY(gf_buf_read(ctx, blk->all, 0, blk->count * sizeof(float), block_vec));
    if (w1) GF_TRY(gf_buf_read(ctx, m->head, 0, (size_t)m->K * m->d * sizeof(float), w1));
    if (b1) GF_TRY(gf_buf_read(ctx, m->head, m->b1_off * sizeof(float), (size_t)m->K * sizeof(float), b1));
    return GF_OK;
}

gf_status gf_lin_write_params(gf_ctx *ctx, gf_lin *m, const float *block_vec, const float *w1, const float *b1) {
    gf_params *blk = m->method == GF_METHOD_FINETUNE ? &m->theta : &m->w2;
    if (block_vec && trains_block(m)) GF_TRY(gf_buf_write(ctx, blk->all, 0, blk->count * sizeof(float), block_vec));
    if (w1) GF_TRY(gf_buf_write(ctx, m->head, 0, (size_t)m->K * m->d * sizeof(float), w1));
    if (b1) GF_TRY(gf_buf_write(ctx, m->head, m->b1_off * sizeof(float), (size_t)m->K * sizeof(float), b1));
    return GF_OK;
}

/* ---- checkpoints (appended): see linearized.h ---- */
size_t gf_lin_state_floats(const gf_lin *m) {
    return 3 * m->head_count + (trains_block(m) ? 3 * gf_block_param_count(m->block) : 0);
}

long gf_lin_step_count(const gf_lin *m) { return m->step; }

static gf_status state_io(gf_ctx *ctx, gf_lin *m, float *state, int write) {
    gf_params *blk = m->method == GF_METHOD_FINETUNE ? &m->theta : &m->w2;
    cl_mem bufs[6] = {m->head, m->mhead, m->vhead, trains_block(m) ? blk->all : NULL, m->mblock.all, m->vblock.all};
    size_t pb = gf_block_param_count(m->block), off = 0;
    for (int i = 0; i < (trains_block(m) ? 6 : 3); i++) {
        size_t n = i < 3 ? m->head_count : pb;
        GF_TRY(write ? gf_buf_write(ctx, bufs[i], 0, n * sizeof(float), state + off)
                     : gf_buf_read(ctx, bufs[i], 0, n * sizeof(float), state + off));
        off += n;
    }
    return GF_OK;
}

gf_status gf_lin_get_state(gf_ctx *ctx, gf_lin *m, float *state, long *step, float stats[GF_LIN_STATS]) {
    GF_TRY(state_io(ctx, m, state, 0));
    *step = m->step;
    return gf_buf_read(ctx, m->stats, 0, GF_LIN_STATS * sizeof(float), stats);
}

gf_status gf_lin_set_state(gf_ctx *ctx, gf_lin *m, const float *state, long step, const float stats[GF_LIN_STATS]) {
    GF_TRY(state_io(ctx, m, (float *)state, 1));
    m->step = step;
    return gf_buf_write(ctx, m->stats, 0, GF_LIN_STATS * sizeof(float), stats);
}

/* Running (sum of batch-mean losses, correct count) without resetting: progress lines. */
gf_status gf_lin_peek_stats(gf_ctx *ctx, gf_lin *m, double *loss_sum, double *correct) {
    float v[2];
    GF_TRY(gf_buf_read(ctx, m->stats, 0, sizeof v, v));
    *loss_sum = v[0];
    *correct = v[1];
    return GF_OK;
}
