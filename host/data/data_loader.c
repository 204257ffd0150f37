/* Batch loader: worker threads decode + preprocess the samples of the next
 * batches while the caller computes on the current one. Work is handed out
 * per sample (all threads help with the oldest unfinished batch), each sample
 * goes to a fixed position and its augmentation seed depends only on
 * (seed, epoch, sample index), so the batches do not depend on the thread
 * count or timing. A ring of prefetch+1 slots: the caller holds one, the
 * workers fill the others. */
#include <stdlib.h>
#include <string.h>
#include "data_internal.h"

typedef struct slot {
    int64_t seq;                /* batch number in the stream; -1 = unassigned */
    int n, done;                /* samples in the batch, samples finished */
    uint8_t *ok;
    float *x, *targets;
    int *labels, *index;
    gf_batch batch;
} slot;

struct gf_loader {
    gf_dataset *ds;
    gf_preprocess pp;
    gf_loader_options opt;
    int *base;                  /* sample indices iterated (all or the subset) */
    int nbase, bpe, B, K;
    size_t numel;
    int64_t total;              /* batches in the stream (INT64_MAX = endless) */
    int *perm;                  /* permutation of base for perm_epoch */
    int perm_epoch;
    int nslots;
    slot *slots;
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done;
    int64_t fill_seq;           /* next batch to hand out to workers */
    int fill_pos;
    int64_t handed;             /* batches returned to the caller */
    int stop, nthreads;
    pthread_t *tid;
    gfd_ws ws;                  /* buffers of the no-thread path */
    gf_status fatal;            /* out of memory in a worker */
    char fatal_msg[512];
};

uint64_t gf_loader_sample_seed(uint64_t seed, int epoch, int index) {
    return gfd_mix64(seed ^ gfd_mix64(((uint64_t)(uint32_t)epoch << 32) ^ (uint32_t)index));
}

int gf_loader_batches_per_epoch(const gf_loader *l) { return l->bpe; }

static void make_perm(gf_loader *l, int epoch) {
    if (l->perm_epoch == epoch) return;
    memcpy(l->perm, l->base, sizeof(int) * (size_t)l->nbase);
    if (l->opt.shuffle) {
        uint64_t rng = gfd_mix64(l->opt.seed ^ gfd_mix64(0xE90C0000ULL + (uint64_t)epoch));
        for (int i = l->nbase - 1; i > 0; i--) {
            int j = (int)(gfd_uniform(&rng) * (i + 1));
            if (j > i) j = i;
            int t = l->perm[i]; l->perm[i] = l->perm[j]; l->perm[j] = t;
        }
    }
    l->perm_epoch = epoch;
}

/* Assign batch `seq` to its slot (called with the lock held, or single-threaded). */
static void assign(gf_loader *l, int64_t seq) {
    slot *s = &l->slots[seq % l->nslots];
    int epoch = (int)(seq / l->bpe), b = (int)(seq % l->bpe);
    make_perm(l, epoch);
    int start = b * l->B, n = l->nbase - start < l->B ? l->nbase - start : l->B;
    s->seq = seq;
    s->n = n;
    s->done = 0;
    memcpy(s->index, l->perm + start, sizeof(int) * (size_t)n);
    s->batch.epoch = epoch;
    s->batch.step = seq;
    s->batch.end_of_epoch = b == l->bpe - 1;
}

static void work(gf_loader *l, slot *s, int pos, gfd_ws *ws) {
    int i = s->index[pos];
    char err[512];
    uint64_t seed = gf_loader_sample_seed(l->opt.seed, s->batch.epoch, i);
    gf_status st = gfd_dataset_sample(l->ds, i, &l->pp, seed, s->x + (size_t)pos * l->numel, ws, err, sizeof err);
    s->ok[pos] = st == GF_OK;
    if (st != GF_OK && st != GF_ERR_INPUT) {
        pthread_mutex_lock(&l->mu);
        if (l->fatal == GF_OK) { l->fatal = st; snprintf(l->fatal_msg, sizeof l->fatal_msg, "%s", err); }
        pthread_mutex_unlock(&l->mu);
    }
    gf_dataset_targets(l->ds, i, s->targets + (size_t)pos * l->K);
    s->labels[pos] = gf_dataset_label(l->ds, i);
}

static void *worker(void *arg) {
    gf_loader *l = arg;
    gfd_ws ws = {{NULL, NULL, NULL}, {0, 0, 0}};
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->stop && !(l->fill_seq < l->total && l->fill_seq < l->handed + l->nslots - 1))
            pthread_cond_wait(&l->cv_work, &l->mu);
        if (l->stop) break;
        if (l->fill_pos == 0) assign(l, l->fill_seq);
        slot *s = &l->slots[l->fill_seq % l->nslots];
        int pos = l->fill_pos++;
        if (l->fill_pos == s->n) { l->fill_seq++; l->fill_pos = 0; }
        pthread_mutex_unlock(&l->mu);
        work(l, s, pos, &ws);
        pthread_mutex_lock(&l->mu);
        if (++s->done == s->n) pthread_cond_broadcast(&l->cv_done);
    }
    pthread_mutex_unlock(&l->mu);
    gfd_ws_free(&ws);
    return NULL;
}

void gf_loader_free(gf_loader *l) {
    if (!l) return;
    if (l->tid) {
        pthread_mutex_lock(&l->mu);
        l->stop = 1;
        pthread_cond_broadcast(&l->cv_work);
        pthread_mutex_unlock(&l->mu);
        for (int t = 0; t < l->nthreads; t++) pthread_join(l->tid[t], NULL);
    }
    for (int i = 0; l->slots && i < l->nslots; i++) {
        slot *s = &l->slots[i];
        free(s->ok); free(s->x); free(s->targets); free(s->labels); free(s->index);
    }
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv_work);
    pthread_cond_destroy(&l->cv_done);
    gfd_ws_free(&l->ws);
    free(l->slots); free(l->tid); free(l->base); free(l->perm);
    free(l);
}

gf_status gf_loader_create(gf_dataset *ds, const gf_preprocess *pp, const gf_loader_options *opt, gf_loader **out,
                           char *err, size_t err_size) {
    if (!out) return gf_fail_msg(err, err_size, GF_ERR_USAGE, "gf_loader_create: no output handle");
    *out = NULL;
    if (!ds || !opt) return gf_fail_msg(err, err_size, GF_ERR_USAGE, "gf_loader_create: no dataset or options");
    GF_TRY(gf_preprocess_check(pp, err, err_size));
    if (opt->batch_size < 1 || opt->batch_size > (1 << 20))
        return gf_fail_msg(err, err_size, GF_ERR_USAGE, "batch size %d out of range", opt->batch_size);
    if (opt->epochs < 0) return gf_fail_msg(err, err_size, GF_ERR_USAGE, "epochs %d < 0", opt->epochs);
    int n = opt->indices ? opt->n_indices : ds->n;
    if (n <= 0) return gf_fail_msg(err, err_size, GF_ERR_INPUT, "dataset %s: no samples to load", ds->root);
    if (opt->indices)
        for (int i = 0; i < n; i++)
            if (opt->indices[i] < 0 || opt->indices[i] >= ds->n)
                return gf_fail_msg(err, err_size, GF_ERR_USAGE, "subset index %d out of range [0,%d)", opt->indices[i], ds->n);
    int bpe = opt->drop_last ? n / opt->batch_size : (n + opt->batch_size - 1) / opt->batch_size;
    if (bpe == 0)
        return gf_fail_msg(err, err_size, GF_ERR_INPUT, "dataset %s: %d samples, fewer than one batch of %d (drop_last)",
                        ds->root, n, opt->batch_size);

    gf_loader *l = calloc(1, sizeof *l);
    if (!l) return gf_fail_msg(err, err_size, GF_ERR_MEMORY, "loader: out of memory");
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv_work, NULL);
    pthread_cond_init(&l->cv_done, NULL);
    l->ds = ds;
    l->pp = *pp;
    l->opt = *opt;
    l->opt.indices = NULL;
    l->nbase = n;
    l->B = opt->batch_size;
    l->K = ds->num_classes;
    l->bpe = bpe;
    l->numel = gf_preprocess_numel(pp);
    l->total = opt->epochs ? (int64_t)opt->epochs * bpe : INT64_MAX;
    l->perm_epoch = -1;
    l->nthreads = opt->threads < 0 ? gfd_online_cpus() : opt->threads > 64 ? 64 : opt->threads;
    int prefetch = opt->prefetch > 0 ? opt->prefetch : 2;
    l->nslots = l->nthreads ? prefetch + 1 : 1;
    l->base = malloc(sizeof(int) * (size_t)n);
    l->perm = malloc(sizeof(int) * (size_t)n);
    l->slots = calloc((size_t)l->nslots, sizeof(slot));
    int ok = l->base && l->perm && l->slots;
    for (int i = 0; ok && i < n; i++) l->base[i] = opt->indices ? opt->indices[i] : i;
    for (int i = 0; ok && i < l->nslots; i++) {
        slot *s = &l->slots[i];
        s->seq = -1;
        s->ok = malloc((size_t)l->B);
        s->x = malloc(sizeof(float) * l->numel * (size_t)l->B);
        s->targets = malloc(sizeof(float) * ((size_t)l->K * l->B + 1));
        s->labels = malloc(sizeof(int) * (size_t)l->B);
        s->index = malloc(sizeof(int) * (size_t)l->B);
        ok = s->ok && s->x && s->targets && s->labels && s->index;
    }
    if (!ok) {
        gf_loader_free(l);
        return gf_fail_msg(err, err_size, GF_ERR_MEMORY, "loader: out of memory for %d slots of %d samples", prefetch + 1,
                        opt->batch_size);
    }
    if (l->nthreads) {
        l->tid = calloc((size_t)l->nthreads, sizeof(pthread_t));
        int started = 0;
        for (int t = 0; l->tid && t < l->nthreads; t++)
            if (pthread_create(&l->tid[t], NULL, worker, l) == 0) started++;
            else break;
        l->nthreads = started;
        if (!started) {
            free(l->tid);
            l->tid = NULL;
            gf_loader_free(l);
            return gf_fail_msg(err, err_size, GF_ERR_INTERNAL, "loader: cannot start worker threads");
        }
    }
    *out = l;
    return GF_OK;
}

static void compact(gf_loader *l, slot *s) {
    int j = 0;
    for (int p = 0; p < s->n; p++) {
        if (!s->ok[p]) continue;
        if (j != p) {
            memcpy(s->x + (size_t)j * l->numel, s->x + (size_t)p * l->numel, sizeof(float) * l->numel);
            memcpy(s->targets + (size_t)j * l->K, s->targets + (size_t)p * l->K, sizeof(float) * (size_t)l->K);
            s->labels[j] = s->labels[p];
            s->index[j] = s->index[p];
        }
        j++;
    }
    gf_batch *b = &s->batch;
    b->count = j;
    b->dropped = s->n - j;
    b->channels = l->pp.channels;
    b->height = l->pp.height;
    b->width = l->pp.width;
    b->num_classes = l->K;
    b->x = s->x;
    b->labels = s->labels;
    b->targets = s->targets;
    b->index = s->index;
}

gf_status gf_loader_next(gf_loader *l, const gf_batch **batch, char *err, size_t err_size) {
    *batch = NULL;
    if (l->handed >= l->total) return GF_OK;
    int64_t seq = l->handed;
    slot *s = &l->slots[seq % l->nslots];
    if (!l->tid) {
        assign(l, seq);
        for (int p = 0; p < s->n; p++) work(l, s, p, &l->ws);
    } else {
        pthread_mutex_lock(&l->mu);
        while (!(s->seq == seq && s->done == s->n) && l->fatal == GF_OK) pthread_cond_wait(&l->cv_done, &l->mu);
        pthread_mutex_unlock(&l->mu);
    }
    if (l->fatal != GF_OK) return gf_fail_msg(err, err_size, l->fatal, "loader: %s", l->fatal_msg);
    compact(l, s);
    pthread_mutex_lock(&l->mu);
    l->handed = seq + 1;
    pthread_cond_broadcast(&l->cv_work);   /* the previous batch's slot is free again */
    pthread_mutex_unlock(&l->mu);
    *batch = &s->batch;
    return GF_OK;
}
