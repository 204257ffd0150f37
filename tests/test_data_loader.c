/* Batch loader: with worker threads and prefetch it returns exactly the
 * batches of the single-threaded loader and of a plain per-sample reference
 * (gf_dataset_sample with the documented per-sample seed), with augmentation
 * on; every epoch is a permutation, epochs differ, subsets and drop_last
 * work, and a file that fails at load time is dropped from its batch the
 * same way with any thread count and reported once. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <stb/stb_image_write.h>
#include "testutil.h"
#include "gradfeat_data.h"

static void put32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }

static void write_idx(const char *path, int ndim, const uint32_t *dims, const uint8_t *data, size_t len) {
    uint8_t h[20] = {0, 0, 8, (uint8_t)ndim};
    for (int i = 0; i < ndim; i++) put32(h + 4 + 4 * i, dims[i]);
    gzFile g = gzopen(path, "wb");
    gzwrite(g, h, 4 + 4 * (unsigned)ndim);
    gzwrite(g, data, (unsigned)len);
    gzclose(g);
}

typedef struct { int count, epoch, end; float *x, *t; int *lab, *idx; } saved;

/* Runs the loader, returns all batches. */
static saved *run(gf_dataset *ds, const gf_preprocess *pp, gf_loader_options o, int *nb) {
    gf_loader *l = NULL;
    char err[512];
    gf_status st = gf_loader_create(ds, pp, &o, &l, err, sizeof err);
    CHECK(st == GF_OK, "loader create: %s", err);
    if (st != GF_OK) { *nb = 0; return NULL; }
    int cap = 64, n = 0, K = gf_dataset_num_classes(ds);
    size_t numel = gf_preprocess_numel(pp);
    saved *v = malloc(sizeof(saved) * (size_t)cap);
    for (;;) {
        const gf_batch *b;
        st = gf_loader_next(l, &b, err, sizeof err);
        CHECK(st == GF_OK, "loader next: %s", err);
        if (st != GF_OK || !b) break;
        if (n == cap) { cap *= 2; v = realloc(v, sizeof(saved) * (size_t)cap); }
        saved *s = &v[n++];
        s->count = b->count; s->epoch = b->epoch; s->end = b->end_of_epoch;
        s->x = malloc(sizeof(float) * numel * (size_t)(b->count + 1));
        s->t = malloc(sizeof(float) * (size_t)K * (size_t)(b->count + 1));
        s->lab = malloc(sizeof(int) * (size_t)(b->count + 1));
        s->idx = malloc(sizeof(int) * (size_t)(b->count + 1));
        memcpy(s->x, b->x, sizeof(float) * numel * (size_t)b->count);
        memcpy(s->t, b->targets, sizeof(float) * (size_t)K * (size_t)b->count);
        memcpy(s->lab, b->labels, sizeof(int) * (size_t)b->count);
        memcpy(s->idx, b->index, sizeof(int) * (size_t)b->count);
        CHECK(b->step == n - 1, "step numbering");
        CHECK(b->channels == pp->channels && b->height == pp->height && b->width == pp->width && b->num_classes == K, "shape");
    }
    gf_loader_free(l);
    *nb = n;
    return v;
}

static void free_saved(saved *v, int n) {
    for (int i = 0; i < n; i++) { free(v[i].x); free(v[i].t); free(v[i].lab); free(v[i].idx); }
    free(v);
}

static int same(const saved *a, int na, const saved *b, int nb, size_t numel, int K) {
    if (na != nb) return 0;
    for (int i = 0; i < na; i++) {
        if (a[i].count != b[i].count || a[i].epoch != b[i].epoch || a[i].end != b[i].end) return 0;
        size_t c = (size_t)a[i].count;
        if (memcmp(a[i].x, b[i].x, sizeof(float) * numel * c) || memcmp(a[i].t, b[i].t, sizeof(float) * K * c) ||
            memcmp(a[i].lab, b[i].lab, sizeof(int) * c) || memcmp(a[i].idx, b[i].idx, sizeof(int) * c))
            return 0;
    }
    return 1;
}

int main(void) {
    char dir[] = "/tmp/gf_loader_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char ip[256], lp[256], err[512];
    const int N = 203, H = 10, W = 12, K = 7;
    uint8_t *px = malloc((size_t)N * H * W), lab[203];
    test_rng r;
    test_rng_seed(&r, 99);
    for (size_t i = 0; i < (size_t)N * H * W; i++) px[i] = (uint8_t)test_uniform(&r, 0, 256);
    for (int i = 0; i < N; i++) lab[i] = (uint8_t)(i % K);
    snprintf(ip, sizeof ip, "%s/x-images-idx3-ubyte.gz", dir);
    snprintf(lp, sizeof lp, "%s/x-labels-idx1-ubyte.gz", dir);
    uint32_t di[3] = {(uint32_t)N, (uint32_t)H, (uint32_t)W}, dl[1] = {(uint32_t)N};
    write_idx(ip, 3, di, px, (size_t)N * H * W);
    write_idx(lp, 1, dl, lab, (size_t)N);
    gf_dataset *ds = NULL;
    gf_status st = gf_dataset_open(ip, NULL, &ds, err, sizeof err);
    CHECK(st == GF_OK, "open: %s", err);
    if (st != GF_OK) return test_finish("test_data_loader");

    gf_preprocess pp;
    gf_preprocess_init(&pp, 8, 8, 3);
    gf_preprocess_imagenet(&pp);
    pp.random_resized_crop = 1;
    pp.hflip = 1;
    pp.pad_crop = 2;
    size_t numel = gf_preprocess_numel(&pp);
    gf_loader_options o = {0};
    o.batch_size = 16;
    o.shuffle = 1;
    o.seed = 42;
    o.epochs = 3;

    int n0, n2, n1;
    o.threads = 0;
    saved *single = run(ds, &pp, o, &n0);
    o.threads = 3; o.prefetch = 2;
    saved *multi = run(ds, &pp, o, &n2);
    o.threads = 1; o.prefetch = 5;
    saved *one = run(ds, &pp, o, &n1);
    int bpe = (N + 15) / 16;
    CHECK(n0 == 3 * bpe, "%d batches for 3 epochs, want %d", n0, 3 * bpe);
    CHECK(same(single, n0, multi, n2, numel, K), "3 threads + prefetch give the single-threaded batches");
    CHECK(same(single, n0, one, n1, numel, K), "1 thread + prefetch 5 gives the single-threaded batches");

    /* reference: every sample = gf_dataset_sample with the documented seed; epochs are permutations */
    float *ref = malloc(sizeof(float) * numel);
    float *tref = malloc(sizeof(float) * K);
    int mism = 0;
    for (int e = 0; e < 3; e++) {
        int *seen = calloc((size_t)N, sizeof(int)), total = 0;
        for (int b = e * bpe; b < (e + 1) * bpe && b < n0; b++) {
            saved *s = &single[b];
            CHECK(s->epoch == e && s->end == (b == (e + 1) * bpe - 1), "epoch tags");
            CHECK(s->count == (b % bpe == bpe - 1 ? N - 16 * (bpe - 1) : 16), "batch size");
            for (int j = 0; j < s->count; j++) {
                int i = s->idx[j];
                if (i < 0 || i >= N) { mism++; continue; }
                seen[i]++;
                total++;
                gf_dataset_sample(ds, i, &pp, gf_loader_sample_seed(o.seed, e, i), ref, err, sizeof err);
                if (memcmp(ref, s->x + (size_t)j * numel, sizeof(float) * numel)) mism++;
                gf_dataset_targets(ds, i, tref);
                if (memcmp(tref, s->t + (size_t)j * K, sizeof(float) * K) || s->lab[j] != lab[i] || tref[lab[i]] != 1.0f) mism++;
            }
        }
        int perm = total == N;
        for (int i = 0; i < N; i++) perm &= seen[i] == 1;
        CHECK(perm, "epoch %d visits every sample once", e);
        free(seen);
    }
    CHECK(mism == 0, "%d samples differ from the per-sample reference", mism);
    CHECK(n0 > bpe && memcmp(single[0].idx, single[bpe].idx, sizeof(int) * 16) != 0, "epochs are shuffled differently");
    free_saved(multi, n2);
    free_saved(one, n1);

    /* no shuffle, subset, drop_last */
    int sub[40];
    for (int i = 0; i < 40; i++) sub[i] = (i * 37) % N;
    o.shuffle = 0; o.indices = sub; o.n_indices = 40; o.drop_last = 1; o.epochs = 1; o.threads = 2; o.batch_size = 16;
    pp.random_resized_crop = 0; pp.hflip = 0; pp.pad_crop = 0;
    saved *s = run(ds, &pp, o, &n2);
    CHECK(n2 == 2 && s && s[0].count == 16 && s[1].count == 16 && s[1].end, "subset of 40, batch 16, drop_last: 2 full batches");
    int order = 1;
    for (int b = 0; b < n2; b++)
        for (int j = 0; j < s[b].count; j++) order &= s[b].idx[j] == sub[b * 16 + j];
    CHECK(order, "no shuffle keeps the subset order");
    free_saved(s, n2);
    o.indices = NULL; o.n_indices = 0; o.batch_size = 500;
    gf_loader *l = NULL;
    CHECK(gf_loader_create(ds, &pp, &o, &l, err, sizeof err) == GF_ERR_INPUT && !l, "drop_last with fewer samples than a batch");
    o.batch_size = 0;
    CHECK(gf_loader_create(ds, &pp, &o, &l, err, sizeof err) == GF_ERR_USAGE && !l, "batch size 0 rejected");
    /* endless stream: stop early, free while workers are busy */
    o.batch_size = 8; o.epochs = 0; o.threads = 2; o.drop_last = 0;
    CHECK(gf_loader_create(ds, &pp, &o, &l, err, sizeof err) == GF_OK, "endless loader");
    const gf_batch *b = NULL;
    for (int i = 0; l && i < 30; i++) CHECK(gf_loader_next(l, &b, err, sizeof err) == GF_OK && b, "endless next");
    CHECK(b && b->epoch == 1, "30 batches of 8 over 203 samples reach epoch 1");
    gf_loader_free(l);
    gf_dataset_free(ds);

    /* a folder whose bad file is only found at load time (no verification) */
    char cdir[300], path[400];
    snprintf(cdir, sizeof cdir, "%s/f", dir);
    mkdir(cdir, 0755);
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/f/c%d", dir, k);
        mkdir(path, 0755);
        for (int i = 0; i < 9; i++) {
            snprintf(path, sizeof path, "%s/f/c%d/%d.png", dir, k, i);
            if (k == 1 && i == 4) { FILE *f = fopen(path, "wb"); fputs("broken", f); fclose(f); continue; }
            CHECK(stbi_write_png(path, W, H, 1, px + (size_t)(k * 9 + i) * H * W, W), "write png");
        }
    }
    gf_dataset_options dopt;
    gf_dataset_options_init(&dopt);
    dopt.verify = GF_VERIFY_NONE;
    saved *res[2];
    int nr[2];
    for (int t = 0; t < 2; t++) {
        ds = NULL;
        st = gf_dataset_open(cdir, &dopt, &ds, err, sizeof err);
        CHECK(st == GF_OK && gf_dataset_count(ds) == 18, "folder of 18 files (1 bad, unverified): %s", err);
        if (st != GF_OK) return test_finish("test_data_loader");
        gf_loader_options fo = {0};
        fo.batch_size = 5; fo.shuffle = 1; fo.seed = 7; fo.epochs = 2; fo.threads = t ? 2 : 0;
        res[t] = run(ds, &pp, fo, &nr[t]);
        int got = 0;
        for (int i = 0; i < nr[t]; i++) got += res[t][i].count;
        CHECK(got == 2 * 17, "the bad file is dropped in both epochs (%d samples delivered)", got);
        CHECK(gf_dataset_problem_count(ds) == 1, "reported once, got %lld", (long long)gf_dataset_problem_count(ds));
        const char *why, *p = gf_dataset_problem(ds, 0, &why);
        CHECK(p && strstr(p, "c1/4.png") && why && strstr(why, "not a readable image"), "problem names the file and reason");
        gf_dataset_free(ds);
    }
    CHECK(same(res[0], nr[0], res[1], nr[1], numel, 2), "dropping is the same with and without threads");
    free_saved(res[0], nr[0]);
    free_saved(res[1], nr[1]);
    free_saved(single, n0);
    free(ref); free(tref); free(px);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_finish("test_data_loader");
}
