/* Training driver: activation cache, probe, then the linearized models and
 * fine-tuning, with per-epoch evaluation. See train.h. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gf_dist.h"
#include "ops_util.h"
#include "train.h"

void gf_train_options_default(gf_train_options *o) {
    memset(o, 0, sizeof *o);
    o->epochs = 10;
    o->batch = 64;
    o->optim = gf_optim_paper_defaults();
    o->lr_halve_every = 20;
    o->lr_cosine = 1;
    o->seed = 1;
    o->select = GF_SELECT_LOSS;
    o->diverge_factor = 3;
    o->diverge_patience = 3;
    o->probe_solver = GF_PROBE_LBFGS;
    o->probe_l2 = -1;
}

void gf_train_result_free(gf_train_result *r) {
    for (int i = 0; i < 4; i++) { free(r->m[i].block_params); free(r->m[i].w1); free(r->m[i].b1); free(r->m[i].val_scores); }
    memset(r, 0, sizeof *r);
}

/* ---------------- metrics ---------------- */

double gf_accuracy(const float *logits, const int *labels, int n, int K) {
    int ok = 0;
    for (int i = 0; i < n; i++) {
        int best = 0;
        for (int k = 1; k < K; k++) if (logits[(size_t)i * K + k] > logits[(size_t)i * K + best]) best = k;
        ok += best == labels[i];
    }
    return n ? (double)ok / n : 0;
}

typedef struct { float s; float t; } scored;
static int by_score_desc(const void *a, const void *b) {
    const scored *x = a, *y = b;
    if (x->s != y->s) return x->s < y->s ? 1 : -1;
    return x->t < y->t ? -1 : x->t > y->t;   /* ties: negatives first (pessimistic) */
}

double gf_mean_ap(const float *scores, const float *targets, int n, int K, double *ap_per_class) {
    scored *v = malloc((size_t)n * sizeof *v);
    if (!v) return NAN;
    double sum = 0;
    int classes = 0;
    for (int k = 0; k < K; k++) {
        int pos = 0;
        for (int i = 0; i < n; i++) { v[i].s = scores[(size_t)i * K + k]; v[i].t = targets[(size_t)i * K + k]; pos += v[i].t > 0.5f; }
        if (!pos) { if (ap_per_class) ap_per_class[k] = NAN; continue; }
        qsort(v, (size_t)n, sizeof *v, by_score_desc);
        double ap = 0;
        int hits = 0;
        for (int i = 0; i < n; i++)
            if (v[i].t > 0.5f) { hits++; ap += (double)hits / (i + 1); }
        ap /= pos;
        if (ap_per_class) ap_per_class[k] = ap;
        sum += ap;
        classes++;
    }
    free(v);
    return classes ? sum / classes : NAN;
}

static void shuffle(int *p, int n, uint64_t seed);
static uint64_t rng_next(uint64_t *s);

void gf_random_omega(const float *omega, size_t n, uint64_t seed, float *out) {
    memcpy(out, omega, n * sizeof(float));
    uint64_t s = seed * 0xA24BAED4963EE407ULL + 0x9FB21C651E98DF25ULL;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(rng_next(&s) % i);
        float t = out[i - 1]; out[i - 1] = out[j]; out[j] = t;
    }
}

/* ---------------- the holdout ---------------- */

gf_status gf_holdout_split(gf_ctx *ctx, gf_cached_set *set, float *z0, int *labels, float *targets, double frac,
                           uint64_t seed, gf_cached_set *hold) {
    int n = set->n, K = set->classes;
    size_t S = (size_t)set->sample_floats;
    memset(hold, 0, sizeof *hold);
    if (frac <= 0 || n < 2) return GF_OK;
    int *perm = malloc((size_t)n * sizeof(int)), *count = calloc((size_t)K + 1, sizeof(int));
    int *taken = calloc((size_t)K + 1, sizeof(int));
    unsigned char *out = calloc((size_t)n, 1);
    if (!perm || !count || !taken || !out) { free(perm); free(count); free(taken); free(out); return gf_fail(ctx, GF_ERR_MEMORY, "out of memory"); }
    shuffle(perm, n, seed * 0xD1B54A32D192ED03ULL + 17);
    int nh = 0;
    if (set->multi_label) {
        int want = (int)(frac * n + 0.5);
        if (want >= n) want = n - 1;
        for (int i = 0; i < want; i++) out[perm[i]] = 1;
        nh = want;
    } else {    /* per class: round(frac x its count), leaving at least one training row */
        for (int i = 0; i < n; i++) count[labels[i] >= 0 && labels[i] < K ? labels[i] : K]++;
        for (int i = 0; i < n; i++) {
            int c = labels[perm[i]] >= 0 && labels[perm[i]] < K ? labels[perm[i]] : K;
            int want = (int)(frac * count[c] + 0.5);
            if (want > count[c] - 1) want = count[c] - 1;
            if (taken[c] < want) { taken[c]++; out[perm[i]] = 1; nh++; }
        }
    }
    float *tmp = nh ? malloc((size_t)nh * S * sizeof(float)) : NULL;
    int *tl = nh ? malloc((size_t)nh * sizeof(int)) : NULL;
    float *tt = nh && targets ? malloc((size_t)nh * K * sizeof(float)) : NULL;
    gf_status st = GF_OK;
    if (nh && (!tmp || !tl || (targets && !tt))) st = gf_fail(ctx, GF_ERR_MEMORY, "out of memory for the holdout split");
    if (st == GF_OK && nh) {   /* stable partition: training rows first, held-out rows after, each in set order */
        int k = 0, h = 0;
        for (int i = 0; i < n; i++) {
            if (out[i]) {
                memcpy(tmp + (size_t)h * S, z0 + (size_t)i * S, S * sizeof(float));
                tl[h] = labels[i];
                if (targets) memcpy(tt + (size_t)h * K, targets + (size_t)i * K, (size_t)K * sizeof(float));
                h++;
                continue;
            }
            if (k != i) {
                memmove(z0 + (size_t)k * S, z0 + (size_t)i * S, S * sizeof(float));
                labels[k] = labels[i];
                if (targets) memmove(targets + (size_t)k * K, targets + (size_t)i * K, (size_t)K * sizeof(float));
            }
            k++;
        }
        memcpy(z0 + (size_t)k * S, tmp, (size_t)nh * S * sizeof(float));
        memcpy(labels + k, tl, (size_t)nh * sizeof(int));
        if (targets) memcpy(targets + (size_t)k * K, tt, (size_t)nh * K * sizeof(float));
        *hold = *set;
        hold->n = nh;
        hold->z0 = z0 + (size_t)k * S;
        hold->labels = labels + k;
        hold->targets = targets ? targets + (size_t)k * K : NULL;
        set->n = k;
    }
    free(tmp); free(tl); free(tt); free(perm); free(count); free(taken); free(out);
    return st;
}

/* ---------------- the cache ---------------- */

typedef struct {
    const gf_cached_set *set;
    int half;                   /* values rounded to IEEE halves (--cache-dtype f16), on both tiers */
    cl_mem dev;                 /* whole set on the device (halves when half), or NULL */
    size_t dev_bytes;
    cl_mem x, labels, idx;      /* per-batch buffers */
    float *stage;               /* host staging for the host-resident path */
    int *lab_stage;
    float *tgt_stage;
    gf_primal_cache *primal;    /* the block's primal values per sample, or NULL */
} cache;

static void cache_close(cache *c) {
    gf_buf_release(&c->dev); gf_buf_release(&c->x); gf_buf_release(&c->labels); gf_buf_release(&c->idx);
    free(c->stage); free(c->lab_stage); free(c->tgt_stage);
    gf_primal_cache_free(c->primal);
    memset(c, 0, sizeof *c);
}

/* Converts the set to halves on the device a batch of rows at a time, through the batch input buffer. */
static gf_status upload_half(gf_ctx *ctx, cache *c, int batch) {
    const gf_cached_set *s = c->set;
    size_t row = (size_t)s->sample_floats;
    for (int b0 = 0; b0 < s->n; b0 += batch) {
        int nb = s->n - b0 < batch ? s->n - b0 : batch;
        GF_TRY(gf_buf_write(ctx, c->x, 0, (size_t)nb * row * sizeof(float), s->z0 + (size_t)b0 * row));
        GF_TRY(gf_store_half(ctx, c->x, (size_t)nb * row, c->dev, (size_t)b0 * row));
    }
    return GF_OK;
}

/* Devices sharing host memory: the cache in driver-allocated host memory, written in place through a mapping
 * (halves by the C reference of vstore_half_rte: the same bits as upload_half). */
static gf_status fill_mapped(gf_ctx *ctx, cache *c, size_t bytes) {
    const gf_cached_set *s = c->set;
    GF_TRY(gf_buf_create_host(ctx, bytes, "activation cache", &c->dev));
    void *p;
    GF_TRY(gf_buf_map_write(ctx, c->dev, bytes, &p));
    size_t n = (size_t)s->n * s->sample_floats;
    if (c->half)
        for (size_t i = 0; i < n; i++) ((uint16_t *)p)[i] = gf_f32_to_f16(s->z0[i]);
    else memcpy(p, s->z0, bytes);
    return gf_buf_unmap(ctx, c->dev, p);
}

static gf_status cache_open(gf_ctx *ctx, const gf_cached_set *s, int batch, int half, uint64_t *budget, cache *c) {
    memset(c, 0, sizeof *c);
    c->set = s;
    c->half = half;
    size_t bytes = (size_t)s->n * s->sample_floats * (half ? 2 : sizeof(float));
    gf_status st = GF_OK;
    if (bytes <= ctx->info.max_alloc && bytes <= *budget) {
        if (ctx->map_caches) st = fill_mapped(ctx, c, bytes);
        else st = half ? gf_buf_create(ctx, bytes, "activation cache", &c->dev)
                       : gf_buf_create_from(ctx, bytes, s->z0, "activation cache", &c->dev);
        if (st == GF_OK) { *budget -= bytes; c->dev_bytes = bytes; }
        else { gf_buf_release(&c->dev); st = GF_OK; }      /* fall back to host memory */
    }
    size_t lab = s->multi_label ? (size_t)batch * s->classes * sizeof(float) : (size_t)batch * sizeof(int);
    if (st == GF_OK) st = gf_buf_create(ctx, (size_t)batch * s->sample_floats * sizeof(float), "batch input", &c->x);
    if (st == GF_OK && c->dev && half && !ctx->map_caches) st = upload_half(ctx, c, batch);
    if (st == GF_OK) st = gf_buf_create(ctx, lab, "batch labels", &c->labels);
    if (st == GF_OK) st = gf_buf_create(ctx, (size_t)batch * sizeof(int), "batch indices", &c->idx);
    c->stage = c->dev ? NULL : malloc((size_t)batch * s->sample_floats * sizeof(float));
    c->lab_stage = malloc((size_t)batch * sizeof(int));
    c->tgt_stage = s->multi_label ? malloc(lab) : NULL;
    if (st == GF_OK && ((!c->dev && !c->stage) || !c->lab_stage || (s->multi_label && !c->tgt_stage)))
        st = gf_fail(ctx, GF_ERR_MEMORY, "out of host memory for the batch staging buffers");
    if (st != GF_OK) cache_close(c);
    return st;
}

/* Put samples idx[0..nb) into c->x and their labels into c->labels. */
static gf_status cache_batch(gf_ctx *ctx, cache *c, const int *idx, int nb) {
    const gf_cached_set *s = c->set;
    size_t row = (size_t)s->sample_floats;
    if (c->dev || c->primal) GF_TRY(gf_buf_write(ctx, c->idx, 0, (size_t)nb * sizeof(int), idx));
    if (c->dev) {
        GF_TRY((c->half ? gf_gather_rows_half : gf_gather_rows)(ctx, c->dev, c->idx, (int)row, nb, c->x));
    } else {
        for (int i = 0; i < nb; i++) memcpy(c->stage + i * row, s->z0 + (size_t)idx[i] * row, row * sizeof(float));
        /* the same rounding as the device tier (gf_f32_to_f16 is vstore_half_rte's reference), so a run gives the
         * same numbers wherever its cache fits */
        if (c->half)
            for (size_t i = 0; i < (size_t)nb * row; i++) c->stage[i] = gf_f16_to_f32(gf_f32_to_f16(c->stage[i]));
        GF_TRY(gf_buf_write(ctx, c->x, 0, (size_t)nb * row * sizeof(float), c->stage));
    }
    if (s->multi_label) {
        for (int i = 0; i < nb; i++)
            memcpy(c->tgt_stage + (size_t)i * s->classes, s->targets + (size_t)idx[i] * s->classes, (size_t)s->classes * sizeof(float));
        return gf_buf_write(ctx, c->labels, 0, (size_t)nb * s->classes * sizeof(float), c->tgt_stage);
    }
    for (int i = 0; i < nb; i++) c->lab_stage[i] = s->labels[idx[i]];
    return gf_buf_write(ctx, c->labels, 0, (size_t)nb * sizeof(int), c->lab_stage);
}

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s >> 12; *s ^= *s << 25; *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

static void shuffle(int *p, int n, uint64_t seed) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 0x632BE59BD9B4E019ULL;
    for (int i = 0; i < n; i++) p[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(rng_next(&s) % (uint64_t)(i + 1));
        int t = p[i]; p[i] = p[j]; p[j] = t;
    }
}

/* Evaluate on a whole set: mean loss and accuracy / mAP. Reads back one
 * loss/count pair per batch (and the logits for mAP). */
static gf_status evaluate(gf_ctx *ctx, gf_lin *m, cache *c, int batch, double *loss, double *metric, float **scores_out) {
    const gf_cached_set *s = c->set;
    int *idx = malloc((size_t)batch * sizeof(int));
    /* logits are read back when needed: mAP, or the caller's confusion matrix / per-class AP */
    int keep = s->multi_label || scores_out;
    float *scores = keep ? malloc((size_t)s->n * s->classes * sizeof(float)) : NULL;
    if (!idx || (keep && !scores)) { free(idx); free(scores); return gf_fail(ctx, GF_ERR_MEMORY, "out of memory"); }
    gf_status st = gf_lin_take_stats(ctx, m, NULL, NULL, NULL);
    gf_lin_use_primal_cache(m, c->primal, c->idx);
    double loss_sum = 0, correct = 0;
    for (int b0 = 0; b0 < s->n && st == GF_OK; b0 += batch) {
        int nb = s->n - b0 < batch ? s->n - b0 : batch;
        for (int i = 0; i < nb; i++) idx[i] = b0 + i;
        double l = 0, cor = 0;
        st = cache_batch(ctx, c, idx, nb);
        if (st == GF_OK) st = gf_lin_eval_batch(ctx, m, nb, c->x, c->labels);
        if (st == GF_OK) st = gf_lin_take_stats(ctx, m, &l, &cor, NULL);
        loss_sum += l * nb;
        correct += cor;
        if (st == GF_OK && keep)
            st = gf_buf_read(ctx, gf_lin_logits_buffer(m), 0, (size_t)nb * s->classes * sizeof(float),
                             scores + (size_t)b0 * s->classes);
    }
    *loss = loss_sum / s->n;
    *metric = s->multi_label ? gf_mean_ap(scores, s->targets, s->n, s->classes, NULL) : correct / s->n;
    free(idx);
    if (scores_out && st == GF_OK) { free(*scores_out); *scores_out = scores; }
    else free(scores);
    return st;
}

gf_status gf_train_evaluate(gf_ctx *ctx, gf_lin *m, const gf_cached_set *set, int batch, double *loss, double *metric) {
    uint64_t budget = ctx->info.global_mem / 4;
    cache c;
    GF_TRY(cache_open(ctx, set, batch, 0, &budget, &c));
    gf_status st = evaluate(ctx, m, &c, batch, loss, metric, NULL);
    cache_close(&c);
    return st;
}

/* Test hook (builds with -DGF_TEST_HOOKS=ON only: tools/setup.sh --tests; testhook.h says how it is set):
 * the process SIGKILLs itself the n-th time it reaches the kill point. */
#ifdef GF_TEST_HOOKS
#include "testhook.h"
static char kill_at[32];
static int kill_target, kill_count;
void gf_test_kill_at(const char *spec) {
    if (!spec || sscanf(spec, "%31[^:]:%d", kill_at, &kill_target) != 2) kill_at[0] = 0;
}
static void test_kill_point(const char *point) {
    if (kill_at[0] && !strcmp(point, kill_at) && ++kill_count == kill_target) raise(SIGKILL);
}
#else
static void test_kill_point(const char *point) { (void)point; }
#endif

/* Model selection of the method being fitted: its best held-out evaluation
 * so far and that evaluation's parameters (host copies). */
typedef struct selection {
    int have, epoch, bad;
    double loss0;               /* held-out loss before training (epoch 0) */
    double loss, metric, train_loss, train_metric;
    double min_loss;            /* the lowest held-out loss so far, whatever is kept (the divergence test's) */
    /* --select last: the copy below is that lowest-loss evaluation's, the model a diverged method ends with */
    int min_epoch;
    double min_metric, min_train_loss, min_train_metric;
    float *w1, *b1, *block;
} selection;

static void selection_free(selection *s) { free(s->w1); free(s->b1); free(s->block); memset(s, 0, sizeof *s); }

/* One gf_train call: what checkpoints need besides the model being fitted. */
typedef struct run {
    gf_ctx *ctx;
    const gf_train_options *o;
    gf_train_result *res;
    const gf_ckpt *resume;      /* consumed by the fit it belongs to */
    int K, d, n_train, n_val;
    size_t block_count;
    unsigned methods;
    float *state;               /* scratch for gf_lin_get_state */
    size_t state_cap;
    cache *ho;                  /* held-out training data, or NULL */
    const gf_cached_set *train; /* the training samples (labels for gradient's starting bias) */
    selection sel;              /* the active method's best evaluation */
    int primal;                 /* the primal cache is in use (recorded in checkpoints) */
} run;

static void to_scal(const gf_method_result *r, double *v) {
    double x[GF_CKPT_SCAL] = {r->train_loss, r->train_metric, r->val_loss, r->val_metric, r->seconds, r->best_epoch,
                              r->epochs_run, r->diverged, r->hold_loss, r->hold_metric, r->probe_l2, r->lr};
    memcpy(v, x, sizeof x);
}

static void from_scal(const double *v, gf_method_result *r) {
    r->train_loss = v[0]; r->train_metric = v[1]; r->val_loss = v[2]; r->val_metric = v[3]; r->seconds = v[4];
    r->best_epoch = (int)v[5]; r->epochs_run = (int)v[6]; r->diverged = (int)v[7];
    r->hold_loss = v[8]; r->hold_metric = v[9]; r->probe_l2 = v[10]; r->lr = (float)v[11];
}

static void fill_done(run *R, gf_ckpt *c) {
    for (int i = 0; i < 4; i++) {
        const gf_method_result *r = &R->res->m[i];
        to_scal(r, c->scal[i]);
        if (!r->w1) continue;           /* finished methods keep their parameters */
        c->done[i] = 1;
        c->w1[i] = r->w1; c->b1[i] = r->b1; c->block[i] = r->block_params;
    }
}

static gf_status sum_stats(gf_ctx *ctx, double *loss, double *correct);

/* Write the checkpoint: finished methods, and (m != NULL) method `method`
 * in progress at epoch ep, next batch b0, `steps` steps into the epoch. */
static gf_status checkpoint(run *R, gf_lin *m, gf_method method, int ep, int b0, int steps, float lr,
                            const gf_method_result *cur) {
    const gf_train_options *o = R->o;
    if (!o->checkpoint_path) return GF_OK;
    /* several processes: each rank's stats hold its shares' loss and count; the checkpoint holds their sums
     * (a resumed rank 0 starts from them, the others from 0), so any number of ranks can resume it */
    double sums[2] = {0, 0};
    if (m && gf_dist_size() > 1) {
        GF_TRY(gf_lin_peek_stats(R->ctx, m, &sums[0], &sums[1]));
        GF_TRY(sum_stats(R->ctx, &sums[0], &sums[1]));
    }
    if (gf_dist_rank() != 0) return GF_OK;   /* rank 0 writes */
    gf_ckpt c = {0};
    c.meta = o->checkpoint_meta ? (char *)o->checkpoint_meta(o->user) : NULL;
    c.K = R->K; c.d = R->d; c.n_train = R->n_train; c.n_val = R->n_val;
    c.block_count = R->block_count; c.methods = R->methods;
    c.primal_cache = R->primal;
    fill_done(R, &c);
    if (m) {
        c.active = 1; c.method = method; c.epoch = ep; c.b0 = b0; c.steps = steps; c.lr = lr;
        to_scal(cur, c.scal[method]);
        c.state_count = gf_lin_state_floats(m);
        if (c.state_count > R->state_cap) {
            float *p = realloc(R->state, c.state_count * sizeof(float));
            if (!p) return gf_fail(R->ctx, GF_ERR_MEMORY, "out of memory for the checkpoint");
            R->state = p; R->state_cap = c.state_count;
        }
        c.state = R->state;
        GF_TRY(gf_lin_get_state(R->ctx, m, c.state, &c.step, c.stats));
        if (gf_dist_size() > 1) { c.stats[0] = (float)sums[0]; c.stats[1] = (float)sums[1]; }
        const selection *sl = &R->sel;
        if (sl->have) {
            c.sel_have = 1; c.sel_epoch = sl->epoch; c.sel_bad = sl->bad; c.sel_min = sl->min_loss;
            double v[5] = {sl->loss0, sl->loss, sl->metric, sl->train_loss, sl->train_metric};
            memcpy(c.sel_scal, v, sizeof v);
            c.sel_w1 = sl->w1; c.sel_b1 = sl->b1; c.sel_block = sl->block;
            double fb[4] = {sl->min_epoch, sl->min_metric, sl->min_train_loss, sl->min_train_metric};
            memcpy(c.sel_fb, fb, sizeof fb);
        }
    }
    gf_status st = gf_ckpt_write(R->ctx, o->checkpoint_path, &c);
    if (st == GF_OK) R->res->checkpoints++;
    if (st == GF_OK) test_kill_point("checkpoint");
    return st;
}

static int stop_requested(const run *R) { return R->o->stop && *R->o->stop; }

/* A stop asked of any rank, agreed by all (a collective: every rank calls it at the same point), so that
 * no rank goes on into a step the others never take. */
static gf_status stop_agreed(run *R, int *stop) {
    double v = stop_requested(R);
    GF_TRY(gf_dist_sum_f64(R->ctx, &v, 1));
    *stop = v > 0;
    return GF_OK;
}

/* Running loss and correct count summed over ranks (each holds its shards'). */
static gf_status sum_stats(gf_ctx *ctx, double *loss, double *correct) {
    if (gf_dist_size() == 1) return GF_OK;
    double v[2] = {*loss, *correct};
    GF_TRY(gf_dist_sum_f64(ctx, v, 2));
    *loss = v[0]; *correct = v[1];
    return GF_OK;
}

/* Model selection: an evaluation of the method on the holdout at epoch ep
 * (0 = before training). Keeps the parameters when they are the best so far
 * under o->select (GF_SELECT_LAST: always the newest; the copy is then the lowest held-out loss's, which a
 * diverged method falls back on) and counts evaluations far above the start (divergence). */
static gf_status consider(run *R, gf_lin *m, gf_method method, int ep, double train_loss, double train_metric,
                          double *hold_loss, double *hold_metric) {
    const gf_train_options *o = R->o;
    selection *sl = &R->sel;
    GF_TRY(evaluate(R->ctx, m, R->ho, o->batch, hold_loss, hold_metric, NULL));
    if (gf_dist_size() > 1) {   /* every rank evaluated the same model; rank 0's figures decide for all */
        double v[2] = {*hold_loss, *hold_metric};
        GF_TRY(gf_dist_bcast(R->ctx, v, sizeof v, 0));
        *hold_loss = v[0]; *hold_metric = v[1];
    }
    double hl = *hold_loss, hm = *hold_metric;
    if (ep == 0) sl->loss0 = hl;
    int better = !sl->have || o->select == GF_SELECT_LAST ||
                 (o->select == GF_SELECT_METRIC ? (hm > sl->metric || (hm == sl->metric && hl < sl->loss)) : hl < sl->loss);
    if (isnan(hl)) better = 0;
    /* far above the start and above the best so far (not the kept one: --select last keeps the newest) */
    if (sl->have && o->diverge_factor > 0 && (isnan(hl) || (hl > o->diverge_factor * sl->loss0 && hl > sl->min_loss)))
        sl->bad++;
    else sl->bad = 0;
    int lowest = !isnan(hl) && (!sl->have || hl < sl->min_loss);
    if (lowest) sl->min_loss = hl;
    /* the copy: the kept evaluation's, or under --select last the lowest-loss one's (to fall back on) */
    if (o->select == GF_SELECT_LAST ? lowest : better) {
        size_t kd = (size_t)R->K * R->d;
        if (!sl->w1) {
            sl->w1 = malloc(kd * sizeof(float));
            sl->b1 = malloc((size_t)R->K * sizeof(float));
            if (method != GF_METHOD_LINEAR) sl->block = malloc(R->block_count * sizeof(float));
            if (!sl->w1 || !sl->b1 || (method != GF_METHOD_LINEAR && !sl->block))
                return gf_fail(R->ctx, GF_ERR_MEMORY, "out of memory for the best model so far");
        }
        GF_TRY(gf_lin_read_params(R->ctx, m, sl->block, sl->w1, sl->b1));
        if (lowest) { sl->min_epoch = ep; sl->min_metric = hm; sl->min_train_loss = train_loss; sl->min_train_metric = train_metric; }
    }
    if (!better) return GF_OK;
    sl->have = 1; sl->epoch = ep; sl->loss = hl; sl->metric = hm;
    sl->train_loss = train_loss; sl->train_metric = train_metric;
    return GF_OK;
}

/* The cosine schedule's factor at step t of T: 1 at the first step, falling to
 * near 0 at the last. A function of the step alone, so a resumed run gets the
 * same rate. Without it the full model's accuracy swung by up to 9 points from
 * epoch to epoch at a constant rate on the dev tasks (README, issue 16). */
static float cosine_factor(int64_t t, int64_t T) {
    return T > 0 ? (float)(0.5 * (1.0 + cos(3.14159265358979323846 * (double)t / (double)T))) : 1.0f;
}

/* Train one model for `epochs` on the train cache; resumes from R->resume
 * when it holds this method in progress. start_loss/start_metric: the
 * training figures of the starting point (the probe's for full and finetune,
 * which start equal to it; NAN when unknown). */
static gf_status fit(run *R, gf_lin *m, gf_method method, cache *tr, cache *va, int epochs, double start_loss,
                     double start_metric, gf_method_result *r) {
    gf_ctx *ctx = R->ctx;
    const gf_train_options *o = R->o;
    const gf_cached_set *s = tr->set;
    int *perm = malloc((size_t)s->n * sizeof(int));
    if (!perm) return gf_fail(ctx, GF_ERR_MEMORY, "out of memory");
    /* Several processes: every rank shuffles alike, takes its contiguous share of each batch and adds its
     * share's gradient (of the whole batch's mean loss) into the sum over ranks; two more floats carry a
     * stop asked of any rank and rank 0's wish for a progress line, so that all ranks agree on both. */
    int P = gf_dist_size(), dist_stop = 0, CH = o->grad_chunk > 0 ? o->grad_chunk : 0;
    size_t G = P > 1 || CH ? gf_lin_grad_floats(m) : 0;
    float *gsum = P > 1 || CH ? malloc((G + 2) * sizeof(float)) : NULL;
    /* --grad-chunk: the batch's gradient as the sum, in double and in chunk order, of the gradients of chunks
     * of CH samples; each rank holds whole chunks (gf_dist_share_units) and adds its own in order, and the
     * ranks' sums meet in rank order, so 1 process and K ranks add the same float vectors in the same order
     * (up to the association of double additions, which the final rounding to float hides) */
    double *acc = CH ? malloc((G + 2) * sizeof(double)) : NULL;
    if ((P > 1 || CH) && (!gsum || (CH && !acc))) {
        free(perm); free(gsum); free(acc);
        return gf_fail(ctx, GF_ERR_MEMORY, "out of memory for the gradient vector");
    }
    if (P > 1 && !o->quiet)   /* what limits scaling: this many bytes through rank 0 every step */
        gf_progress(ctx, GF_PROGRESS_LINE, "[%-8s] %d ranks: each step sums %zu gradient floats (%.2f MiB) over them",
                    gf_method_name(method), P, G, (double)G * sizeof(float) / 1048576.0);
    gf_optim opt = o->optim;
    gf_status st = GF_OK;
    int ep0 = 0, b0_start = 0, steps0 = 0, resumed = 0;
    double secs0 = 0;
    selection_free(&R->sel);
    r->hold_loss = r->hold_metric = r->probe_l2 = NAN;
    const gf_ckpt *c = R->resume;
    if (c && c->active && c->method == (int)method) {
        if (c->state_count != gf_lin_state_floats(m))
            st = gf_fail(ctx, GF_ERR_INPUT, "checkpoint %s: %s state has %zu floats, this model %zu (different device "
                         "or model?)", o->checkpoint_path, gf_method_name(method), c->state_count, gf_lin_state_floats(m));
        if (st == GF_OK) st = gf_lin_set_state(ctx, m, c->state, c->step, c->stats);
        /* the checkpoint's stats are the sums over the ranks that wrote it: rank 0 carries them on */
        if (st == GF_OK && gf_dist_rank() != 0) st = gf_lin_take_stats(ctx, m, NULL, NULL, NULL);
        ep0 = c->epoch; b0_start = c->b0; steps0 = c->steps; opt.lr = c->lr; resumed = 1;
        from_scal(c->scal[method], r);
        secs0 = r->seconds;
        selection *sl = &R->sel;
        if (c->sel_have) {
            sl->have = 1; sl->epoch = c->sel_epoch; sl->bad = c->sel_bad;
            sl->loss0 = c->sel_scal[0]; sl->loss = c->sel_scal[1]; sl->metric = c->sel_scal[2];
            sl->train_loss = c->sel_scal[3]; sl->train_metric = c->sel_scal[4];
            sl->min_loss = isnan(c->sel_min) ? sl->loss : c->sel_min;   /* older checkpoints: the kept loss */
            sl->min_epoch = isnan(c->sel_fb[0]) ? -1 : (int)c->sel_fb[0]; sl->min_metric = c->sel_fb[1];
            sl->min_train_loss = c->sel_fb[2]; sl->min_train_metric = c->sel_fb[3];
        }
        if (c->sel_have && c->sel_w1) {   /* --select last: none in older checkpoints */
            size_t kd = (size_t)R->K * R->d;
            sl->w1 = malloc(kd * sizeof(float));
            sl->b1 = malloc((size_t)R->K * sizeof(float));
            sl->block = c->sel_block ? malloc(R->block_count * sizeof(float)) : NULL;
            if (!sl->w1 || !sl->b1 || (c->sel_block && !sl->block))
                st = gf_fail(ctx, GF_ERR_MEMORY, "out of memory for the best model so far");
            else {
                memcpy(sl->w1, c->sel_w1, kd * sizeof(float));
                memcpy(sl->b1, c->sel_b1, (size_t)R->K * sizeof(float));
                if (c->sel_block) memcpy(sl->block, c->sel_block, R->block_count * sizeof(float));
            }
        }
        R->resume = NULL;
    }
    double t0 = gf_now() - secs0;
    int last_eval = resumed ? r->epochs_run : 0;
    if (st == GF_OK && R->ho && !resumed) {
        st = consider(R, m, method, 0, start_loss, start_metric, &r->hold_loss, &r->hold_metric);
        r->train_loss = start_loss; r->train_metric = start_metric;
    }
    int ep, train_bad = 0;
    for (ep = ep0; ep < epochs && st == GF_OK; ep++) {
        int first = resumed && ep == ep0;   /* lr, stats and position come from the checkpoint */
        if (!first && !o->lr_cosine && o->lr_halve_every > 0 && ep > 0 && ep % o->lr_halve_every == 0) opt.lr *= 0.5f;
        shuffle(perm, s->n, o->seed * 1000003ULL + (uint64_t)method * 7919ULL + (uint64_t)ep);
        double te = gf_now();
        if (!first) st = gf_lin_take_stats(ctx, m, NULL, NULL, NULL);
        int steps = first ? steps0 : 0, steps_total = (s->n + o->batch - 1) / o->batch;
        double last_report = gf_now();
        for (int b0 = first ? b0_start : 0; b0 + 1 <= s->n && st == GF_OK; b0 += o->batch) {
            if (P > 1 ? dist_stop : stop_requested(R)) {
                r->seconds = gf_now() - t0;
                st = checkpoint(R, m, method, ep, b0, steps, opt.lr, r);
                if (st == GF_OK) R->res->stopped = 1;
                free(perm);
                free(gsum);
                free(acc);
                return st;
            }
            int nb = s->n - b0 < o->batch ? s->n - b0 : o->batch;
            gf_optim step_opt = opt;
            if (o->lr_cosine) step_opt.lr = opt.lr * cosine_factor((int64_t)ep * steps_total + steps, (int64_t)epochs * steps_total);
            double now = gf_now();
            int wants_line = o->report_seconds > 0 && now - last_report >= o->report_seconds;
            if (CH) {
                int lo, hi;
                gf_dist_share_units(nb, CH, gf_dist_rank(), P, &lo, &hi);
                for (size_t i = 0; i < G; i++) acc[i] = 0;
                gf_lin_set_mean_over(m, nb);
                for (int c0 = lo; c0 < hi && st == GF_OK; c0 += CH) {
                    int cn = hi - c0 < CH ? hi - c0 : CH;
                    st = cache_batch(ctx, tr, perm + b0 + c0, cn);
                    gf_lin_use_primal_cache(m, tr->primal, tr->idx);
                    if (st == GF_OK) st = gf_lin_gradients(ctx, m, cn, tr->x, tr->labels);
                    if (st == GF_OK) st = gf_lin_grads_get(ctx, m, gsum);
                    for (size_t i = 0; i < G && st == GF_OK; i++) acc[i] += gsum[i];
                }
                gf_lin_set_mean_over(m, 0);
                acc[G] = stop_requested(R);
                acc[G + 1] = gf_dist_rank() == 0 && wants_line;
                if (st == GF_OK && P > 1) st = gf_dist_sum_f64(ctx, acc, G + 2);
                for (size_t i = 0; i < G; i++) gsum[i] = (float)acc[i];
                if (st == GF_OK) st = gf_lin_grads_set(ctx, m, gsum);
                if (st == GF_OK) st = gf_lin_apply_step(ctx, m, &step_opt);
                if (P > 1) { dist_stop = acc[G] > 0; wants_line = acc[G + 1] > 0; }
            } else if (P == 1) {
                st = cache_batch(ctx, tr, perm + b0, nb);
                gf_lin_use_primal_cache(m, tr->primal, tr->idx);   /* evaluate() may have switched it */
                if (st == GF_OK) st = gf_lin_train_step(ctx, m, nb, tr->x, tr->labels, &step_opt);
            } else {
                int lo, hi;
                gf_dist_share(nb, gf_dist_rank(), P, &lo, &hi);
                if (hi > lo) st = cache_batch(ctx, tr, perm + b0 + lo, hi - lo);
                gf_lin_use_primal_cache(m, tr->primal, tr->idx);
                gf_lin_set_mean_over(m, nb);
                if (st == GF_OK) st = gf_lin_gradients(ctx, m, hi - lo, tr->x, tr->labels);
                gf_lin_set_mean_over(m, 0);
                if (st == GF_OK) st = gf_lin_grads_get(ctx, m, gsum);
                gsum[G] = (float)stop_requested(R);
                gsum[G + 1] = (float)(gf_dist_rank() == 0 && wants_line);
                if (st == GF_OK) st = gf_dist_sum_f32(ctx, gsum, G + 2);
                if (st == GF_OK) st = gf_lin_grads_set(ctx, m, gsum);
                if (st == GF_OK) st = gf_lin_apply_step(ctx, m, &step_opt);
                dist_stop = gsum[G] > 0;
                wants_line = gsum[G + 1] > 0;
            }
            steps++;
            test_kill_point(gf_method_name(method));
            now = gf_now();
            if (P == 1) wants_line = o->report_seconds > 0 && now - last_report >= o->report_seconds;
            if (st == GF_OK && o->on_step &&
                (wants_line || (o->report_steps > 0 && steps % o->report_steps == 0) || b0 + nb >= s->n)) {
                double ls, cor;
                int seen = b0 + nb;
                st = gf_lin_peek_stats(ctx, m, &ls, &cor);
                if (st == GF_OK) st = sum_stats(ctx, &ls, &cor);
                if (st == GF_OK)
                    o->on_step(o->user, method, ep + 1, epochs, steps, steps_total, ls / steps,
                               s->multi_label ? NAN : cor / seen, seen / (now - te), now - te);
                last_report = now;
            }
            if (st == GF_OK && o->checkpoint_every > 0 && gf_lin_step_count(m) % o->checkpoint_every == 0) {
                r->seconds = gf_now() - t0;
                st = checkpoint(R, m, method, ep, b0 + o->batch, steps, opt.lr, r);
            }
        }
        double loss_sum = 0, correct = 0;
        if (st == GF_OK) st = gf_lin_take_stats(ctx, m, &loss_sum, &correct, NULL);
        if (st == GF_OK) st = sum_stats(ctx, &loss_sum, &correct);
        if (st != GF_OK) break;
        double train_loss = loss_sum / steps;
        if (!isfinite(train_loss)) {
            st = gf_fail(ctx, GF_ERR_NUMERIC, "%s: the training loss became %s in epoch %d (step %ld of the method); "
                         "try a smaller learning rate or --clip-norm", gf_method_name(method),
                         isnan(train_loss) ? "NaN" : "infinite", ep + 1, gf_lin_step_count(m));
            break;
        }
        r->train_loss = train_loss;
        r->train_metric = s->multi_label ? NAN : correct / s->n;
        r->val_loss = r->val_metric = NAN;
        r->epochs_run = ep + 1;
        int eval_now = o->eval_every <= 1 || (ep + 1) % o->eval_every == 0 || ep + 1 == epochs;
        if (eval_now && R->ho) {
            st = consider(R, m, method, ep + 1, r->train_loss, r->train_metric, &r->hold_loss, &r->hold_metric);
            last_eval = ep + 1;
        }
        if (st == GF_OK && va && eval_now) st = evaluate(ctx, m, va, o->batch, &r->val_loss, &r->val_metric, &r->val_scores);
        if (st == GF_OK && o->on_epoch)
            o->on_epoch(o->user, method, ep + 1, epochs, r->train_loss, r->train_metric, r->val_loss, r->val_metric,
                        r->hold_loss, r->hold_metric, gf_now() - te);
        if (st == GF_OK && R->ho && o->diverge_patience > 0 && R->sel.bad >= o->diverge_patience) {
            r->diverged = 1;
            break;
        }
        /* without a holdout, divergence shows in the training loss: far above that of guessing (ln K; ln 2 per
         * label for multi-label) for as many epochs in a row */
        if (st == GF_OK && !R->ho && o->diverge_factor > 0 && o->diverge_patience > 0) {
            double chance = s->multi_label ? log(2.0) : log((double)R->K);
            train_bad = r->train_loss > o->diverge_factor * chance ? train_bad + 1 : 0;
            if (train_bad >= o->diverge_patience) {
                r->diverged = 1;
                break;
            }
        }
    }
    /* keep the best evaluation's parameters (and report its figures) */
    if (st == GF_OK && R->ho && R->sel.have) {
        selection *sl = &R->sel;
        r->best_epoch = sl->epoch;
        r->hold_loss = sl->loss; r->hold_metric = sl->metric;
        if (o->select != GF_SELECT_LAST && sl->epoch != last_eval) {
            st = gf_lin_write_params(ctx, m, sl->block, sl->w1, sl->b1);
            r->train_loss = sl->train_loss; r->train_metric = sl->train_metric;
            if (st == GF_OK && va) st = evaluate(ctx, m, va, o->batch, &r->val_loss, &r->val_metric, &r->val_scores);
        } else if (o->select == GF_SELECT_LAST && r->diverged && sl->w1 && sl->min_epoch >= 0 &&
                   sl->min_epoch != last_eval) {
            /* a diverged method ends with its lowest held-out loss so far, not where it ran away to */
            r->best_epoch = sl->min_epoch;
            r->hold_loss = sl->min_loss; r->hold_metric = sl->min_metric;
            st = gf_lin_write_params(ctx, m, sl->block, sl->w1, sl->b1);
            r->train_loss = sl->min_train_loss; r->train_metric = sl->min_train_metric;
            if (st == GF_OK && va) st = evaluate(ctx, m, va, o->batch, &r->val_loss, &r->val_metric, &r->val_scores);
        }
    } else if (st == GF_OK) {
        r->best_epoch = r->epochs_run;
    }
    selection_free(&R->sel);
    r->seconds = gf_now() - t0;
    r->ran = st == GF_OK;
    free(perm);
    free(gsum);
    free(acc);
    return st;
}

/* A finished method from the checkpoint: results and parameters. */
static gf_status restore_done(gf_ctx *ctx, const gf_ckpt *c, int i, gf_method_result *r) {
    size_t kd = (size_t)c->K * c->d;
    r->ran = 1;
    from_scal(c->scal[i], r);
    r->w1 = malloc(kd * sizeof(float));
    r->b1 = malloc((size_t)c->K * sizeof(float));
    if (c->block[i]) r->block_params = malloc(c->block_count * sizeof(float));
    if (!r->w1 || !r->b1 || (c->block[i] && !r->block_params)) return gf_fail(ctx, GF_ERR_MEMORY, "out of memory");
    memcpy(r->w1, c->w1[i], kd * sizeof(float));
    memcpy(r->b1, c->b1[i], (size_t)c->K * sizeof(float));
    if (c->block[i]) memcpy(r->block_params, c->block[i], c->block_count * sizeof(float));
    return GF_OK;
}

static gf_status keep_params(gf_ctx *ctx, gf_lin *m, gf_block *blk, int K, int d, gf_method method,
                             gf_method_result *r) {
    r->w1 = malloc((size_t)K * d * sizeof(float));
    r->b1 = malloc((size_t)K * sizeof(float));
    if (method != GF_METHOD_LINEAR) r->block_params = malloc(gf_block_param_count(blk) * sizeof(float));
    if (!r->w1 || !r->b1 || (method != GF_METHOD_LINEAR && !r->block_params))
        return gf_fail(ctx, GF_ERR_MEMORY, "out of memory");
    return gf_lin_read_params(ctx, m, r->block_params, r->w1, r->b1);
}

/* Features f = GAP(block(z0)) at θ̄ for a whole set (the probe's input; out
 * may be NULL), filling the set's primal cache on the way when it has one. */
static gf_status features(gf_ctx *ctx, gf_block *blk, gf_params *th, cache *c, int batch, float *out) {
    const gf_cached_set *s = c->set;
    int d = gf_block_feature_dim(blk);
    cl_mem f;
    GF_TRY(gf_buf_create(ctx, (size_t)batch * d * sizeof(float), "features", &f));
    int *idx = malloc((size_t)batch * sizeof(int));
    gf_status st = idx ? GF_OK : gf_fail(ctx, GF_ERR_MEMORY, "out of memory");
    for (int b0 = 0; b0 < s->n && st == GF_OK; b0 += batch) {
        int nb = s->n - b0 < batch ? s->n - b0 : batch;
        for (int i = 0; i < nb; i++) idx[i] = b0 + i;
        st = cache_batch(ctx, c, idx, nb);
        if (st == GF_OK) st = gf_block_forward(ctx, blk, nb, c->x, th, f);
        if (st == GF_OK && c->primal) st = gf_primal_cache_store(ctx, blk, c->primal, b0, nb, f);
        if (st == GF_OK && out) st = gf_buf_read(ctx, f, 0, (size_t)nb * d * sizeof(float), out + (size_t)b0 * d);
        test_kill_point("features");
    }
    free(idx);
    gf_buf_release(&f);
    return st;
}

/* θ̄ on the device for the feature passes, frozen (it never changes there): its convs keep their Winograd
 * transforms over the batches and take the algorithm the linearized methods take at θ̄ (gf_conv_uses_winograd),
 * so the probe's features and the primal cache have the rounding of the f(x) those methods compute, and a run
 * resumed after the probe refills the primal cache with the same bits. */
static gf_status theta_bar_params(gf_ctx *ctx, gf_block *blk, const float *theta_bar, gf_params *th) {
    gf_status st = gf_params_create(ctx, blk, "theta_bar", th);
    if (st == GF_OK) st = gf_buf_write(ctx, th->all, 0, gf_block_param_count(blk) * sizeof(float), theta_bar);
    if (st == GF_OK) st = gf_params_freeze(ctx, th);
    return st;
}

/* A method has finished: tell the caller, record it in a checkpoint, and see
 * whether a stop was asked for meanwhile. */
static gf_status method_done(run *R, gf_method mth) {
    const gf_train_options *o = R->o;
    if (o->on_method) GF_TRY(o->on_method(o->user, mth, &R->res->m[mth], &R->res->m[GF_METHOD_LINEAR]));
    test_kill_point("saved");
    GF_TRY(checkpoint(R, NULL, mth, 0, 0, 0, 0, NULL));
    int stop;
    GF_TRY(stop_agreed(R, &stop));
    if (stop) R->res->stopped = 1;
    return GF_OK;
}

/* 1. The probe, on features computed once (θ̄ never changes): L-BFGS with the
 * L2 strength chosen on the holdout (default), or trained like the other
 * methods (GF_PROBE_SGD). Its result is res->m[GF_METHOD_LINEAR]. */
static gf_status train_probe(run *R, gf_block *blk, const float *theta_bar, cache *tr, cache *va, const float *zeros,
                             gf_loss_kind loss) {
    gf_ctx *ctx = R->ctx;
    const gf_train_options *o = R->o;
    const gf_cached_set *train = tr->set, *val = va ? va->set : NULL, *hold = R->ho ? R->ho->set : NULL;
    int K = R->K, d = R->d;
    gf_method_result *r = &R->res->m[GF_METHOD_LINEAR];
    float *ftr = NULL, *fva = NULL, *fho = NULL;
    gf_params th = {0};
    gf_block *head_blk = NULL;
    gf_status st = theta_bar_params(ctx, blk, theta_bar, &th);
    ftr = malloc((size_t)train->n * d * sizeof(float));
    if (val) fva = malloc((size_t)val->n * d * sizeof(float));
    if (hold) fho = malloc((size_t)hold->n * d * sizeof(float));
    if (st == GF_OK && (!ftr || (val && !fva) || (hold && !fho))) st = gf_fail(ctx, GF_ERR_MEMORY, "out of memory for features");
    double tf0 = gf_now();
    if (st == GF_OK) st = features(ctx, blk, &th, tr, o->batch, ftr);
    if (st == GF_OK && val) st = features(ctx, blk, &th, va, o->batch, fva);
    if (st == GF_OK && hold) st = features(ctx, blk, &th, R->ho, o->batch, fho);
    R->res->features_seconds = gf_now() - tf0;
    gf_cached_set ftrain = *train, fval = val ? *val : *train, fhold = hold ? *hold : *train;
    ftrain.z0 = ftr; ftrain.sample_floats = d;
    fval.z0 = fva; fval.sample_floats = d;
    fhold.z0 = fho; fhold.sample_floats = d;
    /* the probe's "block" is one GAP over a d x 1 x 1 input: logits = w1ᵀf + b1 */
    gf_node gap = {.kind = GF_K_GAP, .name = "features", .in = {GF_NODE_INPUT}};
    if (st == GF_OK) st = gf_block_create(ctx, d, 1, 1, &gap, 1, o->batch, &head_blk);
    cache ptr = {0}, pva = {0}, pho = {0};
    uint64_t fb = ~0ULL;
    /* the features stay float (small; the probe is solved on the float values, and full starts at it) */
    if (st == GF_OK) st = cache_open(ctx, &ftrain, o->batch, 0, &fb, &ptr);
    if (st == GF_OK && val) st = cache_open(ctx, &fval, o->batch, 0, &fb, &pva);
    if (st == GF_OK && hold) st = cache_open(ctx, &fhold, o->batch, 0, &fb, &pho);
    gf_lin *probe = NULL;
    float *none = head_blk ? calloc(gf_block_param_count(head_blk) + 1, sizeof(float)) : NULL;   /* GAP has no parameters */
    if (st == GF_OK && !none) st = gf_fail(ctx, GF_ERR_MEMORY, "out of memory");
    if (st == GF_OK)
        st = gf_lin_create(ctx, head_blk, GF_METHOD_LINEAR, K, loss, none, zeros, zeros + (size_t)K * d, &probe);
    free(none);
    cache *feature_ho = R->ho;
    R->ho = hold ? &pho : NULL;         /* the probe's holdout is its features */
    if (st == GF_OK && o->probe_solver == GF_PROBE_SGD) {
        gf_train_options po = *o;       /* its own learning rate */
        if (o->probe_lr > 0) po.optim.lr = o->probe_lr;
        R->o = &po;
        st = fit(R, probe, GF_METHOD_LINEAR, &ptr, val ? &pva : NULL, o->probe_epochs ? o->probe_epochs : o->epochs,
                 NAN, NAN, r);
        R->o = o;
    } else if (st == GF_OK) {
        double t0 = gf_now();
        float *w = malloc(((size_t)K * d + K) * sizeof(float));
        gf_probe_data pt = {ftr, train->n, train->labels, train->targets};
        gf_probe_data ph = {fho, hold ? hold->n : 0, hold ? hold->labels : NULL, hold ? hold->targets : NULL};
        if (!w) st = gf_fail(ctx, GF_ERR_MEMORY, "out of memory");
        if (st == GF_OK)
            st = gf_probe_fit(ctx, &pt, hold ? &ph : NULL, K, d, train->multi_label, o->probe_l2, o->select, w,
                              w + (size_t)K * d, &r->probe_l2, NULL);
        /* every rank solved the same problem; rank 0's solution is everyone's (devices may differ in the
         * last bits of the features) */
        if (st == GF_OK) st = gf_dist_bcast(ctx, w, ((size_t)K * d + K) * sizeof(float), 0);
        if (st == GF_OK) st = gf_dist_bcast(ctx, &r->probe_l2, sizeof r->probe_l2, 0);
        if (st == GF_OK) st = gf_lin_write_params(ctx, probe, NULL, w, w + (size_t)K * d);
        free(w);
        /* its figures as every method's: on the device, full sets */
        r->hold_loss = r->hold_metric = r->val_loss = r->val_metric = NAN;
        if (st == GF_OK) st = evaluate(ctx, probe, &ptr, o->batch, &r->train_loss, &r->train_metric, NULL);
        if (st == GF_OK && hold) st = evaluate(ctx, probe, &pho, o->batch, &r->hold_loss, &r->hold_metric, NULL);
        if (st == GF_OK && val) st = evaluate(ctx, probe, &pva, o->batch, &r->val_loss, &r->val_metric, &r->val_scores);
        r->best_epoch = r->epochs_run = 1;
        r->seconds = gf_now() - t0;
        r->ran = st == GF_OK;
        if (st == GF_OK && o->on_epoch)
            o->on_epoch(o->user, GF_METHOD_LINEAR, 1, 1, r->train_loss, r->train_metric, r->val_loss, r->val_metric,
                        r->hold_loss, r->hold_metric, r->seconds);
    }
    R->ho = feature_ho;
    if (st == GF_OK && !R->res->stopped) st = keep_params(ctx, probe, head_blk, K, d, GF_METHOD_LINEAR, r);
    gf_lin_free(probe);
    cache_close(&ptr); cache_close(&pva); cache_close(&pho);
    gf_block_free(head_blk);
    free(ftr); free(fva); free(fho);
    gf_params_free(&th);
    if (st == GF_OK && !R->res->stopped) st = method_done(R, GF_METHOD_LINEAR);
    return st;
}

/* A gradient/full/finetune model at its start: ω̄, b1 and θ̄ from the probe and
 * the block (NTK: full's stored head is sqrt(K) ω̄, so it starts at the probe). */
void gf_prior_bias(const gf_cached_set *s, float *b) {
    int K = s->classes;
    for (int k = 0; k < K; k++) {
        double pos = 0;
        for (int i = 0; i < s->n; i++)
            pos += s->multi_label ? s->targets[(size_t)i * K + k] > 0.5f : s->labels[i] == k;
        /* add-half smoothing: a class absent from the data gets a finite bias */
        b[k] = (float)(s->multi_label ? log((pos + 0.5) / (s->n - pos + 0.5)) : log((pos + 0.5) / (s->n + 0.5 * K)));
    }
}

static gf_status make_model(run *R, gf_block *blk, const float *theta_bar, gf_method mth, gf_loss_kind loss,
                            gf_lin **out) {
    gf_ctx *ctx = R->ctx;
    const gf_method_result *pr = &R->res->m[GF_METHOD_LINEAR];
    gf_lin *m;
    GF_TRY(gf_lin_create(ctx, blk, mth, R->K, loss, theta_bar, pr->w1, pr->b1, &m));
    gf_status st = GF_OK;
    if (R->o->ntk && (st = gf_lin_set_ntk(ctx, m, 1)) == GF_OK && mth == GF_METHOD_FULL) {
        size_t kd = (size_t)R->K * R->d;
        float *w = malloc(kd * sizeof(float));
        if (!w) st = gf_fail(ctx, GF_ERR_MEMORY, "out of memory");
        for (size_t i = 0; w && i < kd; i++) w[i] = pr->w1[i] * sqrtf((float)R->K);
        if (st == GF_OK) st = gf_lin_write_params(ctx, m, NULL, w, NULL);
        free(w);
    }
    /* `gradient` has no w1 term, so the probe's bias means nothing without it (it offsets w1'f, which can be
     * large: logits = b1 alone were 4x worse than guessing on MobileNetV2's features). It starts as the best
     * bias-only model instead: log class frequencies (softmax), log odds per label (multi-label). */
    if (st == GF_OK && mth == GF_METHOD_GRADIENT && R->train) {
        float *b = malloc((size_t)R->K * sizeof(float));
        if (!b) st = gf_fail(ctx, GF_ERR_MEMORY, "out of memory");
        else {
            gf_prior_bias(R->train, b);
            st = gf_lin_write_params(ctx, m, NULL, NULL, b);
        }
        free(b);
    }
    if (st == GF_OK && R->o->random_omega && (mth == GF_METHOD_GRADIENT || mth == GF_METHOD_FULL)) {
        size_t kd = (size_t)R->K * R->d;
        float *w = malloc(kd * sizeof(float));
        if (!w) st = gf_fail(ctx, GF_ERR_MEMORY, "out of memory");
        if (w) {
            gf_random_omega(pr->w1, kd, R->o->seed, w);
            st = gf_lin_set_omega_bar(ctx, m, w);
        }
        free(w);
    }
    if (st != GF_OK) { gf_lin_free(m); return st; }
    *out = m;
    return GF_OK;
}

/* --lr-auto: the method trained for its full epochs at lr, 10 lr and lr/10, each
 * kept at its best held-out evaluation (or last, --select last); the lowest
 * held-out loss wins, ties to lr. Whole runs, not a first epoch: the rate that
 * is best after one epoch is often not the best at the end (README, "--lr-auto").
 * Not checkpointed: a resumed run repeats the trials, which are deterministic. */
static gf_status choose_lr(run *R, gf_block *blk, const float *theta_bar, gf_method mth, gf_loss_kind loss, cache *tr,
                           double start_loss, double start_metric, float *lr) {
    const gf_train_options *o = R->o;
    static const float scale[] = {1.0f, 10.0f, 0.1f};
    double best = INFINITY;
    float base = *lr, chosen = base;
    gf_status st = GF_OK;
    for (int i = 0; i < 3 && st == GF_OK && !R->res->stopped; i++) {
        gf_train_options t = *o;
        t.optim.lr = base * scale[i];
        t.on_epoch = NULL;
        t.checkpoint_path = NULL;
        t.diverge_factor = 0;
        gf_method_result r = {0};
        gf_lin *m = NULL;
        st = make_model(R, blk, theta_bar, mth, loss, &m);
        R->o = &t;
        if (st == GF_OK) st = fit(R, m, mth, tr, NULL, o->epochs, start_loss, start_metric, &r);
        R->o = o;
        gf_lin_free(m);
        free(r.val_scores);
        if (st == GF_OK && r.hold_loss < best) { best = r.hold_loss; chosen = t.optim.lr; }
    }
    *lr = chosen;
    return st;
}

gf_status gf_train(gf_ctx *ctx, gf_block *blk, const float *theta_bar, const gf_cached_set *train,
                   const gf_cached_set *val, unsigned methods, const gf_train_options *o, gf_train_result *res) {
    memset(res, 0, sizeof *res);
    int K = train->classes, d = gf_block_feature_dim(blk);
    gf_loss_kind loss = train->multi_label ? GF_LOSS_SIGMOID_BCE : GF_LOSS_SOFTMAX;
    const gf_ckpt *ck = o->resume;
    run R = {ctx, o, res, ck && ck->active ? ck : NULL, K, d, train->n, val ? val->n : 0, gf_block_param_count(blk),
             methods, NULL, 0, NULL, train, {0}, 0};
    if (ck && (ck->K != K || ck->d != d || ck->n_train != train->n || ck->n_val != R.n_val ||
               ck->block_count != R.block_count || ck->methods != methods))
        return gf_fail(ctx, GF_ERR_INPUT, "checkpoint %s does not match this run (classes %d/%d, feature dim %d/%d, "
                       "samples %d/%d + %d/%d, block floats %zu/%zu, methods %u/%u)",
                       o->checkpoint_path ? o->checkpoint_path : "", ck->K, K, ck->d, d, ck->n_train, train->n,
                       ck->n_val, R.n_val, ck->block_count, R.block_count, ck->methods, methods);
    const uint64_t budget0 = o->max_device_mem ? o->max_device_mem : ctx->info.global_mem / 2;
    uint64_t budget = budget0;
    double t0 = gf_now();
    cache tr = {0}, va = {0}, ho = {0};
    const gf_cached_set *hold = o->holdout && o->holdout->n > 0 ? o->holdout : NULL;
    gf_status st = cache_open(ctx, train, o->batch, o->cache_half, &budget, &tr);
    if (st == GF_OK && val) st = cache_open(ctx, val, o->batch, o->cache_half, &budget, &va);
    if (st == GF_OK && hold) st = cache_open(ctx, hold, o->batch, o->cache_half, &budget, &ho);
    R.ho = hold ? &ho : NULL;
    res->cache_on_device = tr.dev != NULL;
    res->cache_bytes = tr.dev_bytes + va.dev_bytes + ho.dev_bytes;
    /* the primal cache, for gradient/full, when it fits what the activation cache left. Cached primal values
     * and recomputed ones differ in the last bits, so a resume keeps the choice its checkpoint recorded
     * (whatever budget it is given) or refuses */
    unsigned at_theta_bar = (1u << GF_METHOD_GRADIENT) | (1u << GF_METHOD_FULL);
    size_t pbytes = gf_block_primal_bytes(blk, o->cache_half) * (size_t)train->n;
    int recorded = ck ? ck->primal_cache : -1;
    int want = recorded >= 0 ? recorded : !o->no_primal_cache && (methods & at_theta_bar) && pbytes <= budget;
    if (st == GF_OK && want) {
        char saved[sizeof ctx->err];
        memcpy(saved, ctx->err, sizeof saved);
        if (pbytes <= budget && gf_primal_cache_create(ctx, blk, train->n, o->cache_half, &tr.primal) == GF_OK) {
            budget -= pbytes;
            res->primal_cache_bytes = pbytes;
        }
        memcpy(ctx->err, saved, sizeof saved);   /* not fitting is not an error: recompute instead */
        if (!tr.primal && recorded == 1) {
            uint64_t act = 0;
            const gf_cached_set *sets[3] = {train, val, hold};
            for (int i = 0; i < 3; i++)
                if (sets[i]) act += (uint64_t)sets[i]->n * sets[i]->sample_floats * (o->cache_half ? 2 : sizeof(float));
            st = gf_fail(ctx, GF_ERR_MEMORY, "--resume: checkpoint %s was written with the primal cache on the device "
                         "(%.1f MiB), which does not fit the device-memory budget of this run (%.1f MiB, %.1f MiB left "
                         "after the activation cache); without it the resumed run would not be bit-identical: resume "
                         "with --max-device-mem %lluM or more (or start a new run)",
                         o->checkpoint_path ? o->checkpoint_path : "", pbytes / 1048576.0,
                         budget0 / 1048576.0,
                         budget / 1048576.0, (unsigned long long)((act + pbytes + 1048575) >> 20));
        }
    }
    R.primal = tr.primal != NULL;
    res->cache_seconds = gf_now() - t0;
    if (st == GF_OK && !o->quiet) {
        const char *dt = o->cache_half ? "f16" : "f32";
        char a[96], p[96];
        if (res->cache_bytes) snprintf(a, sizeof a, "activation cache %.2f MiB on the device (%s)", res->cache_bytes / 1048576.0, dt);
        else snprintf(a, sizeof a, "activation cache in host memory (%s; over the device budget)", dt);
        if (res->primal_cache_bytes) snprintf(p, sizeof p, ", primal cache %.2f MiB (%s)", res->primal_cache_bytes / 1048576.0, dt);
        else snprintf(p, sizeof p, ", no primal cache");
        gf_progress(ctx, GF_PROGRESS_LINE, "%s%s", a, p);
    }

    /* 1. the probe, on features computed once (θ̄ never changes) */
    float *zeros = calloc((size_t)K * d + K, sizeof(float));
    if (st == GF_OK && !zeros) st = gf_fail(ctx, GF_ERR_MEMORY, "out of memory");
    if (st == GF_OK && ck && ck->done[GF_METHOD_LINEAR]) {
        st = restore_done(ctx, ck, GF_METHOD_LINEAR, &res->m[GF_METHOD_LINEAR]);
        if (st == GF_OK && tr.primal) {   /* resumed after the probe: its feature pass did not run */
            gf_params th = {0};
            st = theta_bar_params(ctx, blk, theta_bar, &th);
            if (st == GF_OK) st = features(ctx, blk, &th, &tr, o->batch, NULL);
            gf_params_free(&th);
        }
    } else if (st == GF_OK) {
        st = train_probe(&R, blk, theta_bar, &tr, val ? &va : NULL, zeros, loss);
    }

    /* 2. gradient / full / finetune from the probe: w1 = ω̄, b1 = probe bias, w2 = 0 */
    for (int mth = GF_METHOD_GRADIENT; mth <= GF_METHOD_FINETUNE && st == GF_OK && !res->stopped; mth++) {
        if (!(methods & (1u << mth))) continue;
        if (ck && ck->done[mth]) { st = restore_done(ctx, ck, mth, &res->m[mth]); continue; }
        const gf_method_result *pr = &res->m[GF_METHOD_LINEAR];
        int resuming = R.resume && R.resume->method == mth;
        float lr = mth == GF_METHOD_FINETUNE && o->finetune_lr > 0 ? o->finetune_lr : o->optim.lr;
        if (resuming) lr = (float)R.resume->scal[mth][11];
        int from_probe = mth != GF_METHOD_GRADIENT;    /* full and finetune start equal to the probe */
        if (o->lr_auto && R.ho && !resuming)
            st = choose_lr(&R, blk, theta_bar, (gf_method)mth, loss, &tr, from_probe ? pr->train_loss : NAN,
                           from_probe ? pr->train_metric : NAN, &lr);
        gf_lin *m = NULL;
        if (st == GF_OK) st = make_model(&R, blk, theta_bar, (gf_method)mth, loss, &m);
        if (st != GF_OK) break;
        gf_train_options mo = *o;
        mo.optim.lr = lr;
        res->m[mth].lr = lr;
        R.o = &mo;
        st = fit(&R, m, (gf_method)mth, &tr, val ? &va : NULL, o->epochs, from_probe ? pr->train_loss : NAN,
                 from_probe ? pr->train_metric : NAN, &res->m[mth]);
        R.o = o;
        if (st == GF_OK && !res->stopped) st = keep_params(ctx, m, blk, K, d, (gf_method)mth, &res->m[mth]);
        gf_lin_free(m);
        if (st == GF_OK && !res->stopped) st = method_done(&R, (gf_method)mth);
    }
    /* a checkpoint of a method this run does not reach would be silently dropped */
    if (st == GF_OK && R.resume)
        st = gf_fail(ctx, GF_ERR_INPUT, "checkpoint %s holds %s in progress, which this run does not train",
                     o->checkpoint_path ? o->checkpoint_path : "", gf_method_name((gf_method)R.resume->method));
    free(R.state);
    selection_free(&R.sel);
    free(zeros);
    cache_close(&tr);
    cache_close(&va);
    cache_close(&ho);
    return st;
}
