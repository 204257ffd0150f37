/* Foundation: a kernel from cl/ on the device vs its C reference, CLBlast GEMM
 * (all transposes, offsets, strided batched), the program-binary cache round
 * trip (miss -> save -> hit; corrupt entry -> rebuilt), device selection.
 * `test_runtime --small` runs the first part only, gf_axpby (b = 0 and not), gf_add and gf_fill of
 * cl/util.cl at 1, 342, 683 and 1024 values (tests/cli_oclgrind_util.sh, under oclgrind). */
#define _GNU_SOURCE   /* RTLD_DEFAULT */
#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include "ops_util.h"
#include "testutil.h"

static void test_axpby(gf_ctx *ctx) {
    test_rng r; test_rng_seed(&r, 1);
    for (size_t n = 1; n <= 1025; n += 341) {
        float *x = malloc(n * 4), *y = malloc(n * 4), *got = malloc(n * 4);
        double *ref = malloc(n * 8);
        test_fill(&r, x, n, -2, 2); test_fill(&r, y, n, -2, 2);
        for (size_t i = 0; i < n; i++) ref[i] = 0.5 * x[i] - 3.0 * y[i];
        cl_mem dx = test_upload(ctx, x, n), dy = test_upload(ctx, y, n);
        REQUIRE_OK(ctx, gf_axpby(ctx, n, 0.5f, dx, -3.0f, dy));
        test_download(ctx, dy, got, n);
        test_close("axpby", got, ref, n, 1e-6, 1e-6);
        REQUIRE_OK(ctx, gf_add(ctx, n, dx, dy, dy));
        for (size_t i = 0; i < n; i++) ref[i] = x[i] + (double)got[i];
        test_download(ctx, dy, got, n);
        test_close("add", got, ref, n, 1e-6, 1e-6);
        /* b == 0 must not read y: NaN garbage in y gives a*x, not NaN */
        REQUIRE_OK(ctx, gf_fill(ctx, n, NAN, dy));
        REQUIRE_OK(ctx, gf_axpby(ctx, n, 2.0f, dx, 0.0f, dy));
        test_download(ctx, dy, got, n);
        for (size_t i = 0; i < n; i++) ref[i] = 2.0 * x[i];
        test_close("axpby with b = 0 ignores y", got, ref, n, 1e-6, 1e-6);
        REQUIRE_OK(ctx, gf_fill(ctx, n, 2.5f, dy));
        test_download(ctx, dy, got, n);
        for (size_t i = 0; i < n; i++) ref[i] = 2.5;
        test_close("fill", got, ref, n, 0, 1e-7);
        gf_buf_release(&dx); gf_buf_release(&dy);
        free(x); free(y); free(got); free(ref);
    }
}

static void test_gemm_batched(gf_ctx *ctx) {
    const size_t M = 13, N = 11, K = 7, B = 3;
    test_rng r; test_rng_seed(&r, 2);
    float A[3 * 13 * 7], Bm[3 * 7 * 11], C[3 * 13 * 11], got[3 * 13 * 11];
    double ref[3 * 13 * 11];
    test_fill(&r, A, sizeof A / 4, -1, 1); test_fill(&r, Bm, sizeof Bm / 4, -1, 1); test_fill(&r, C, sizeof C / 4, -1, 1);
    for (size_t b = 0; b < B; b++)
        for (size_t i = 0; i < M; i++)
            for (size_t j = 0; j < N; j++) {
                double s = 0;
                for (size_t k = 0; k < K; k++) s += (double)A[b * M * K + i * K + k] * Bm[b * K * N + k * N + j];
                ref[b * M * N + i * N + j] = 2.0 * s + C[b * M * N + i * N + j];
            }
    cl_mem dA = test_upload(ctx, A, M * K * B), dB = test_upload(ctx, Bm, K * N * B), dC = test_upload(ctx, C, M * N * B);
    REQUIRE_OK(ctx, gf_gemm_batched(ctx, 0, 0, M, N, K, 2.0f, dA, 0, K, M * K, dB, 0, N, K * N, 1.0f, dC, 0, N, M * N, B));
    test_download(ctx, dC, got, M * N * B);
    test_close("gemm strided batched", got, ref, M * N * B, 1e-5, 1e-5);
    gf_buf_release(&dA); gf_buf_release(&dB); gf_buf_release(&dC);
}

/* The host BLAS's batch split over threads (gemm.c run_split: whole GEMMs, each on one BLAS thread) gives the bits
 * of the same GEMMs run one after another with the BLAS on one thread, at sizes OpenBLAS would run threaded
 * (M N K > 2^18), without and with transposes, beta != 0, 13 GEMMs over 2 and over 3 threads (uneven shares); all
 * within float rounding of a double reference, as is the batch on the BLAS's own threads (whose split of a GEMM may
 * round edge tiles differently: not the same bits with every kernel set). */
static int blas_threads(int n) {   /* OpenBLAS's threads set to n (> 0); returns how many it had */
    int (*get)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "openblas_get_num_threads");
    void (*set)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "openblas_set_num_threads");
    int had = get ? get() : 1;
    if (set && n > 0) set(n);
    return had;
}
static void gemm_batch_run(gf_ctx *ctx, int split, int tr, const float *A, const float *Bm, const float *C,
                           size_t M, size_t N, size_t K, size_t B, float *out) {
    cl_mem dA = test_upload(ctx, A, B * M * K), dB = test_upload(ctx, Bm, B * K * N), dC = test_upload(ctx, C, B * M * N);
    int keep = ctx->blas_split;
    ctx->blas_split = split;
    REQUIRE_OK(ctx, gf_gemm_batched(ctx, tr, tr, M, N, K, 1.5f, dA, 0, tr ? M : K, M * K, dB, 0, tr ? K : N, K * N,
                                    0.5f, dC, 0, N, M * N, B));
    ctx->blas_split = keep;
    test_download(ctx, dC, out, B * M * N);
    gf_buf_release(&dA); gf_buf_release(&dB); gf_buf_release(&dC);
}

/* One of two threads splitting the same batch 20 times on its own context (the last transposed run's `one` is
 * the one-thread bits). */
typedef struct split_job {
    gf_ctx *ctx;
    const float *A, *Bm, *C;
    size_t M, N, K, B;
    const float *one;
    size_t diff;
} split_job;
static void *split_worker(void *arg) {
    split_job *j = arg;
    float *got = malloc(j->B * j->M * j->N * 4);
    for (int r = 0; r < 20; r++) {
        gemm_batch_run(j->ctx, 2, 1, j->A, j->Bm, j->C, j->M, j->N, j->K, j->B, got);
        for (size_t i = 0; i < j->B * j->M * j->N; i++) j->diff += memcmp(&got[i], &j->one[i], 4) != 0;
    }
    free(got);
    return NULL;
}

static void test_gemm_split(gf_ctx *ctx) {
    const size_t M = 96, N = 130, K = 80, B = 13;   /* 4 GEMMs a thread or more: split (gemm.c host_gemm) */
    test_rng r; test_rng_seed(&r, 3);
    float *A = malloc(B * M * K * 4), *Bm = malloc(B * K * N * 4), *C = malloc(B * M * N * 4);
    float *one = malloc(B * M * N * 4), *got = malloc(B * M * N * 4);
    double *ref = malloc(B * M * N * 8);
    test_fill(&r, A, B * M * K, -1, 1); test_fill(&r, Bm, B * K * N, -1, 1); test_fill(&r, C, B * M * N, -1, 1);
    for (int tr = 0; tr < 2; tr++) {   /* op(A) = A^T, op(B) = B^T when tr */
        for (size_t b = 0; b < B; b++)
            for (size_t i = 0; i < M; i++)
                for (size_t j = 0; j < N; j++) {
                    double sum = 0;
                    for (size_t k = 0; k < K; k++)
                        sum += (double)A[b * M * K + (tr ? k * M + i : i * K + k)] *
                               Bm[b * K * N + (tr ? j * K + k : k * N + j)];
                    ref[b * M * N + i * N + j] = 1.5 * sum + 0.5 * C[b * M * N + i * N + j];
                }
        size_t before = ctx->blas_splits;
        gemm_batch_run(ctx, 0, tr, A, Bm, C, M, N, K, B, got);
        CHECK(ctx->blas_splits == before, "gemm batch with no split: one after another");
        test_close(tr ? "gemm batch one after another, transposed" : "gemm batch one after another", got, ref,
                   B * M * N, 1e-4, 1e-4);
        int threads = blas_threads(1);
        gemm_batch_run(ctx, 0, tr, A, Bm, C, M, N, K, B, one);
        blas_threads(threads);
        test_close("gemm batch one after another, one BLAS thread", one, ref, B * M * N, 1e-4, 1e-4);
        for (int split = 2; split <= 3; split++) {
            size_t before = ctx->blas_splits;
            gemm_batch_run(ctx, split, tr, A, Bm, C, M, N, K, B, got);
            CHECK(ctx->blas_splits == before + 1, "gemm batch of %zu over %d threads: run split", B, split);
            size_t diff = 0;
            for (size_t i = 0; i < B * M * N; i++) diff += memcmp(&got[i], &one[i], 4) != 0;
            CHECK(diff == 0, "gemm batch split over %d threads%s: %zu of %zu values not the bits of the batch one "
                  "after another on one BLAS thread", split, tr ? ", transposed" : "", diff, B * M * N);
            test_close("gemm batch split", got, ref, B * M * N, 1e-4, 1e-4);
        }
    }
    /* two contexts on two threads splitting at once (gemm.c split_lock): each gets the bits, and OpenBLAS's thread
     * count is what it was after, not the 1 a split sets meanwhile */
    {
        int threads = blas_threads(0);
        split_job jobs[2];
        pthread_t tid[2];
        int started[2];
        for (int j = 0; j < 2; j++) {
            jobs[j] = (split_job){j ? test_ctx() : ctx, A, Bm, C, M, N, K, B, one, 0};
            started[j] = pthread_create(&tid[j], NULL, split_worker, &jobs[j]) == 0;
            CHECK(started[j], "split worker %d started", j);
        }
        for (int j = 0; j < 2; j++) if (started[j]) pthread_join(tid[j], NULL);
        gf_ctx_free(jobs[1].ctx);
        CHECK(jobs[0].diff == 0 && jobs[1].diff == 0, "splits on two threads at once: %zu and %zu values not the "
              "bits of one BLAS thread", jobs[0].diff, jobs[1].diff);
        CHECK(blas_threads(0) == threads, "OpenBLAS on %d threads after splits on two threads at once, %d before",
              blas_threads(0), threads);
    }
    /* a batch summed into one C (stride_c 0) is never split: its GEMMs would race on C */
    const size_t Ms = 9, Ns = 7, Ks = 5, Bs = 12;
    float As[12 * 9 * 5], Bv[12 * 5 * 7], Cs[9 * 7], Cg[9 * 7];
    double Cr[9 * 7];
    test_fill(&r, As, sizeof As / 4, -1, 1); test_fill(&r, Bv, sizeof Bv / 4, -1, 1); test_fill(&r, Cs, sizeof Cs / 4, -1, 1);
    for (size_t i = 0; i < Ms * Ns; i++) Cr[i] = Cs[i];
    for (size_t b = 0; b < Bs; b++)
        for (size_t i = 0; i < Ms; i++)
            for (size_t j = 0; j < Ns; j++)
                for (size_t k = 0; k < Ks; k++) Cr[i * Ns + j] += (double)As[b * Ms * Ks + i * Ks + k] * Bv[b * Ks * Ns + k * Ns + j];
    cl_mem dA = test_upload(ctx, As, Bs * Ms * Ks), dB = test_upload(ctx, Bv, Bs * Ks * Ns), dC = test_upload(ctx, Cs, Ms * Ns);
    size_t before = ctx->blas_splits;
    int keep = ctx->blas_split;
    ctx->blas_split = 2;
    REQUIRE_OK(ctx, gf_gemm_batched(ctx, 0, 0, Ms, Ns, Ks, 1.0f, dA, 0, Ks, Ms * Ks, dB, 0, Ns, Ks * Ns, 1.0f, dC, 0, Ns,
                                    0, Bs));
    ctx->blas_split = keep;
    CHECK(ctx->blas_splits == before, "gemm batch summed into one C (stride_c 0): not split");
    test_download(ctx, dC, Cg, Ms * Ns);
    test_close("gemm batch summed into one C", Cg, Cr, Ms * Ns, 1e-5, 1e-5);
    gf_buf_release(&dA); gf_buf_release(&dB); gf_buf_release(&dC);
    free(one); free(got); free(ref); free(A); free(Bm); free(C);
}

/* OpenBLAS 0.3.21 falls back to its Prescott (SSE3) kernels on a CPU it does not know; gradfeat makes it choose
 * again on one with AVX (gemm.c choose_blas_kernels_once), unless OPENBLAS_CORETYPE is set. */
static void test_blas_kernels(void) {
    const char *(*corename)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT, "openblas_get_corename");
    if (!corename) return;   /* not OpenBLAS */
    const char *replaced = gf_host_blas_replaced(), *now = corename();
    printf("host BLAS kernels: %s%s%s\n", now, replaced ? ", replacing " : "", replaced ? replaced : "");
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (!getenv("OPENBLAS_CORETYPE") && __builtin_cpu_supports("avx"))
        CHECK(strcasecmp(now, "Prescott") != 0, "OpenBLAS runs its Prescott kernels on a CPU with AVX%s",
              replaced ? " after gradfeat's choice" : "");
#endif
    if (replaced) CHECK(strcasecmp(replaced, now) != 0, "replaced kernels %s are still in use", replaced);
}

static void test_selftest_rows(gf_ctx *ctx) {
    gf_check_row *rows; int n;
    gf_status st = gf_selftest(ctx, &rows, &n);
    CHECK(st == GF_OK, "selftest: %s", gf_ctx_last_error(ctx));
    CHECK(n >= 5, "selftest has %d rows", n);
    for (int i = 0; i < n; i++) CHECK(rows[i].pass, "selftest row %s", rows[i].name);
    free(rows);
}

static int count_entries(const char *dir, char *first, size_t fsz) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".bin")) { if (!n && first) snprintf(first, fsz, "%s/%s", dir, e->d_name); n++; }
    closedir(d);
    return n;
}

static void test_binary_cache(void) {
    char dir[] = "/tmp/gf-cache-test-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    setenv("GRADFEAT_CACHE", "1", 1);
    setenv("GRADFEAT_CACHE_DIR", dir, 1);
    int builds, hits, saves;
    float x[4] = {1, 2, 3, 4}, y[4] = {1, 1, 1, 1}, got[4];
    double ref[4] = {3, 5, 7, 9};

    /* 1: miss -> build from source -> save */
    gf_ctx *ctx = test_ctx();
    cl_mem dx = test_upload(ctx, x, 4), dy = test_upload(ctx, y, 4);
    REQUIRE_OK(ctx, gf_axpby(ctx, 4, 2.0f, dx, 1.0f, dy));
    test_download(ctx, dy, got, 4);
    test_close("cache miss run", got, ref, 4, 1e-6, 0);
    gf_cache_counters(ctx, &builds, &hits, &saves);
    CHECK(builds == 1 && hits == 0 && saves == 1, "first run: builds %d hits %d saves %d (want 1 0 1)", builds, hits, saves);
    gf_buf_release(&dx); gf_buf_release(&dy);
    gf_ctx_free(ctx);
    char entry[1400] = "";
    CHECK(count_entries(dir, entry, sizeof entry) == 1, "one cache entry after the first run");

    /* 2: hit */
    ctx = test_ctx();
    dx = test_upload(ctx, x, 4); dy = test_upload(ctx, y, 4);
    REQUIRE_OK(ctx, gf_axpby(ctx, 4, 2.0f, dx, 1.0f, dy));
    test_download(ctx, dy, got, 4);
    test_close("cache hit run", got, ref, 4, 1e-6, 0);
    gf_cache_counters(ctx, &builds, &hits, &saves);
    CHECK(builds == 0 && hits == 1, "second run: builds %d hits %d (want 0 1)", builds, hits);
    gf_buf_release(&dx); gf_buf_release(&dy);
    gf_ctx_free(ctx);

    /* 3: corrupt the binary payload -> rejected, rebuilt from source, entry replaced */
    FILE *f = fopen(entry, "r+b");
    CHECK(f != NULL, "open cache entry %s", entry);
    if (f) { fseek(f, -16, SEEK_END); fputs("garbage-garbage", f); fclose(f); }
    ctx = test_ctx();
    dx = test_upload(ctx, x, 4); dy = test_upload(ctx, y, 4);
    REQUIRE_OK(ctx, gf_axpby(ctx, 4, 2.0f, dx, 1.0f, dy));
    test_download(ctx, dy, got, 4);
    test_close("corrupt entry run", got, ref, 4, 1e-6, 0);
    gf_cache_counters(ctx, &builds, &hits, &saves);
    CHECK(builds == 1 && hits == 0 && saves == 1, "corrupt entry: builds %d hits %d saves %d (want 1 0 1)", builds, hits, saves);
    gf_buf_release(&dx); gf_buf_release(&dy);
    gf_ctx_free(ctx);

    /* 4: the replaced entry is good again */
    ctx = test_ctx();
    cl_kernel k;
    REQUIRE_OK(ctx, gf_kernel(ctx, "util", NULL, "gf_axpby", &k));
    gf_cache_counters(ctx, &builds, &hits, &saves);
    CHECK(builds == 0 && hits == 1, "after rebuild: builds %d hits %d (want 0 1)", builds, hits);
    /* a different define set is a different key */
    REQUIRE_OK(ctx, gf_kernel(ctx, "util", "-DGF_TEST_VARIANT=1", "gf_axpby", &k));
    gf_cache_counters(ctx, &builds, &hits, &saves);
    CHECK(builds == 1, "new defines are a cache miss (builds %d)", builds);
    int removed = 0;
    REQUIRE_OK(ctx, gf_cache_clear(ctx, &removed));
    CHECK(removed == 2, "cache clear removed %d (want 2)", removed);
    gf_ctx_free(ctx);
    rmdir(dir);
    unsetenv("GRADFEAT_CACHE");
    unsetenv("GRADFEAT_CACHE_DIR");
}

/* Device-memory accounting and the --max-device-mem budget. */
static void test_memory(void) {
    gf_ctx_options o = {0};
    o.max_device_mem = 3u << 20;
    gf_ctx *ctx;
    REQUIRE_OK(NULL, gf_ctx_create(&o, &ctx));
    uint64_t now0, now, peak;
    gf_ctx_memory(ctx, &now0, NULL);
    cl_mem a, b;
    REQUIRE_OK(ctx, gf_buf_create(ctx, 2u << 20, "tensor A", &a));
    gf_ctx_memory(ctx, &now, &peak);
    CHECK(now == now0 + (2u << 20) && peak >= now, "accounting after create: now %llu", (unsigned long long)now);
    gf_status st = gf_buf_create(ctx, 2u << 20, "tensor B", &b);
    CHECK(st == GF_ERR_MEMORY && strstr(gf_ctx_last_error(ctx), "tensor B") && strstr(gf_ctx_last_error(ctx), "budget"),
          "over budget: %s", gf_ctx_last_error(ctx));
    gf_buf_release(&a);
    REQUIRE_OK(ctx, gf_ctx_finish(ctx));
    gf_ctx_memory(ctx, &now, &peak);
    CHECK(now == now0 && peak >= now0 + (2u << 20), "accounting after release: now %llu peak %llu",
          (unsigned long long)now, (unsigned long long)peak);
    REQUIRE_OK(ctx, gf_buf_create(ctx, 2u << 20, "tensor B again", &b));
    gf_buf_release(&b);
    gf_ctx_free(ctx);
}

static void test_selection(void) {
    gf_device_info *d; int n;
    char msg[512];
    gf_status st = gf_devices_list(&d, &n, msg, sizeof msg);
    CHECK(st == GF_OK && n >= 1, "devices listed");
    if (st != GF_OK) return;
    char sel[160];
    const char *by[4];
    snprintf(sel, sizeof sel, "%d", d[0].global_index);
    char pd[32]; snprintf(pd, sizeof pd, "%d:%d", d[0].platform_index, d[0].device_index);
    char name[16]; snprintf(name, sizeof name, "%.6s", d[0].name);
    by[0] = sel; by[1] = pd; by[2] = name; by[3] = d[0].is_gpu ? "gpu" : "cpu";
    /* "cpu" / "gpu" take the device of that type that ranks first (README "Choosing a
     * device"): GPUs by compute units x memory; CPU devices PoCL, then other platforms,
     * then Mesa llvmpipe, then compute units; ties keep the enumeration order */
    int want = -1;
    for (int i = 0; i < n; i++) {
        if (d[i].is_gpu != d[0].is_gpu || (!d[i].is_gpu && !d[i].is_cpu)) continue;
        if (want < 0) { want = i; continue; }
        #define RANK(f) ((f).is_gpu ? 0 : strstr((f).platform_name, "Portable Computing Language") ? 2 : \
                         strstr((f).name, "llvmpipe") ? 0 : 1)
        double si = RANK(d[i]) * 1e10 + d[i].compute_units * 1e3 + (double)(d[i].global_mem >> 20) * 1e-3;
        double sw = RANK(d[want]) * 1e10 + d[want].compute_units * 1e3 + (double)(d[want].global_mem >> 20) * 1e-3;
        #undef RANK
        if (si > sw) want = i;
    }
    for (int i = 0; i < 4; i++) {
        gf_ctx_options o = {0};
        o.device = by[i];
        gf_ctx *ctx;
        st = gf_ctx_create(&o, &ctx);
        CHECK(st == GF_OK, "select by '%s': %s", by[i], ctx ? gf_ctx_last_error(ctx) : "");
        const char *exp = i == 3 && want >= 0 ? d[want].name : d[0].name;
        if (st == GF_OK) CHECK(!strcmp(gf_ctx_device(ctx)->name, exp), "'%s' selected %s, want %s", by[i],
                               gf_ctx_device(ctx)->name, exp);
        gf_ctx_free(ctx);
    }
    const char *bad[] = {"99", "7:7", "no-such-device-xyz"};
    for (int i = 0; i < 3; i++) {
        gf_ctx_options o = {0};
        o.device = bad[i];
        gf_ctx *ctx;
        st = gf_ctx_create(&o, &ctx);
        CHECK(st == GF_ERR_NO_DEVICE, "bad selector '%s' gives GF_ERR_NO_DEVICE (got %d)", bad[i], st);
        CHECK(ctx && strstr(gf_ctx_last_error(ctx), d[0].name), "error lists the devices: %s", ctx ? gf_ctx_last_error(ctx) : "");
        gf_ctx_free(ctx);
    }
    /* avoid_devices: the default choice passes over those devices (the CLI's selftest fallback); every one
     * avoided is GF_ERR_NO_DEVICE saying so; a named device ignores the list */
    {
        gf_ctx_options o = {0};
        o.avoid_devices = ~0ull;
        gf_ctx *ctx;
        st = gf_ctx_create(&o, &ctx);
        CHECK(st == GF_ERR_NO_DEVICE && ctx && strstr(gf_ctx_last_error(ctx), "every OpenCL device failed the selftest"),
              "every device avoided: %d %s", st, ctx ? gf_ctx_last_error(ctx) : "");
        gf_ctx_free(ctx);
        o.device = "0";
        st = gf_ctx_create(&o, &ctx);
        CHECK(st == GF_OK, "a named device ignores avoid_devices: %s", ctx ? gf_ctx_last_error(ctx) : "");
        gf_ctx_free(ctx);
        if (n > 1) {
            o.device = NULL;
            o.avoid_devices = 1;
            st = gf_ctx_create(&o, &ctx);
            CHECK(st == GF_OK && gf_ctx_device(ctx)->global_index != 0 &&
                  strstr(gf_ctx_device_reason(ctx), "passed over 1 device that failed the selftest"),
                  "device 0 avoided: %s", st == GF_OK ? gf_ctx_device_reason(ctx) : gf_ctx_last_error(ctx));
            gf_ctx_free(ctx);
        }
    }
    free(d);
}

/* A bad value of a two-way choice names the field, the value, what it chooses and the valid values. */
static void test_bad_choices(void) {
    static const struct { const char *field, *want; } c[] = {
        {"host_mem", "host_mem 'bogus' is not a host-memory mode: use auto, map or copy"},
        {"gemm", "gemm 'bogus' is not a kernel path: use auto, host or clblast"},
    };
    for (int i = 0; i < 2; i++) {
        gf_ctx_options o = {0};
        if (i == 0) o.host_mem = "bogus"; else o.gemm = "bogus";
        gf_ctx *ctx;
        gf_status st = gf_ctx_create(&o, &ctx);
        CHECK(st == GF_ERR_USAGE && ctx && strstr(gf_ctx_last_error(ctx), c[i].want), "%s=bogus: status %d, '%s'",
              c[i].field, st, ctx ? gf_ctx_last_error(ctx) : "");
        gf_ctx_free(ctx);
    }
}

static void set_cap(gf_ctx_options *o, const void *cap) { o->max_work_group = *(const size_t *)cap; }

/* max_work_group (GRADFEAT_MAX_WORK_GROUP): gf_wg_limit, gf_pow2_local and gf_launch1 stay within it, results stay
 * right, a launch above it is refused, a cap out of range is a usage error. */
static void test_wg_cap(gf_ctx *plain) {
    cl_kernel k;
    size_t free64 = 0, free256 = 0, lim = 0, p2 = 0;
    REQUIRE_OK(plain, gf_kernel(plain, "util", NULL, "gf_axpby", &k));
    REQUIRE_OK(plain, gf_wg_limit(plain, k, 64, &free64));
    REQUIRE_OK(plain, gf_wg_limit(plain, k, 256, &free256));
    const size_t caps[2] = {32, 48};
    for (int c = 0; c < 2; c++) {
        size_t cap = caps[c];
        gf_ctx *ctx = test_ctx_for(NULL, set_cap, &cap);
        CHECK(ctx->wg_cap == cap && strstr(gf_ctx_paths(ctx), "work-group cap"), "cap %zu in the paths: %s", cap,
              gf_ctx_paths(ctx));
        REQUIRE_OK(ctx, gf_kernel(ctx, "util", NULL, "gf_axpby", &k));
        REQUIRE_OK(ctx, gf_wg_limit(ctx, k, 256, &lim));
        REQUIRE_OK(ctx, gf_pow2_local(ctx, k, 256, 0, &p2));
        size_t want = free256 < cap ? free256 : cap, want2 = 1;
        while (want2 * 2 <= want) want2 *= 2;
        CHECK(lim == want, "cap %zu: gf_wg_limit(256) %zu, want %zu", cap, lim, want);
        CHECK(p2 == want2, "cap %zu: gf_pow2_local(256) %zu, want %zu", cap, p2, want2);
        size_t n = 1000;
        float *x = malloc(n * 4), *y = malloc(n * 4);
        double *ref = malloc(n * 8);
        for (size_t i = 0; i < n; i++) x[i] = (float)i, y[i] = 1, ref[i] = 2.0 * i + 1;
        cl_mem dx = test_upload(ctx, x, n), dy = test_upload(ctx, y, n);
        REQUIRE_OK(ctx, gf_axpby(ctx, n, 2.0f, dx, 1.0f, dy));
        test_download(ctx, dy, y, n);
        test_close("axpby under the cap", y, ref, n, 1e-6, 1e-6);
        size_t want1 = free64 < cap ? free64 : cap;
        CHECK(ctx->wg_launched_max == want1, "cap %zu: largest work-group launched %zu, want %zu", cap,
              ctx->wg_launched_max, want1);
        size_t g = 2 * cap, l = 2 * cap;   /* a local size that did not come from gf_wg_limit */
        gf_status st = gf_launch(ctx, k, "gf_axpby", 1, &g, &l);
        CHECK(st == GF_ERR_INTERNAL && strstr(gf_ctx_last_error(ctx), "above the cap"), "launch at %zu under cap %zu: %s",
              l, cap, gf_ctx_last_error(ctx));
        gf_buf_release(&dx); gf_buf_release(&dy);
        free(x); free(y); free(ref);
        gf_ctx_free(ctx);
    }
    gf_ctx_options o = {0};
    o.max_work_group = (size_t)1 << 21;
    gf_ctx *bad;
    gf_status st = gf_ctx_create(&o, &bad);
    CHECK(st == GF_ERR_USAGE && bad && strstr(gf_ctx_last_error(bad), "max work-group"), "cap 2^21: status %d, '%s'",
          st, bad ? gf_ctx_last_error(bad) : "");
    gf_ctx_free(bad);
}

static void test_errors(gf_ctx *ctx) {
    cl_kernel k;
    gf_status st = gf_kernel(ctx, "no_such_family", NULL, "x", &k);
    CHECK(st != GF_OK && strstr(gf_ctx_last_error(ctx), "no_such_family"), "missing family named: %s", gf_ctx_last_error(ctx));
    st = gf_kernel(ctx, "util", NULL, "no_such_kernel", &k);
    CHECK(st != GF_OK && strstr(gf_ctx_last_error(ctx), "CL_INVALID_KERNEL_NAME"), "OpenCL error by name: %s", gf_ctx_last_error(ctx));
    cl_mem m;
    st = gf_buf_create(ctx, (size_t)gf_ctx_device(ctx)->max_alloc + 4096, "huge test tensor", &m);
    CHECK(st == GF_ERR_MEMORY && strstr(gf_ctx_last_error(ctx), "huge test tensor"), "alloc over max_alloc: %s", gf_ctx_last_error(ctx));
}

int main(int argc, char **argv) {
    gf_ctx *ctx = test_ctx();
    printf("device: %s\n", gf_ctx_device(ctx)->name);
    test_axpby(ctx);
    if (argc > 1 && !strcmp(argv[1], "--small")) {   /* tests/cli_oclgrind_util.sh: the util kernels only */
        gf_ctx_free(ctx);
        return test_finish("test_runtime --small");
    }
    test_gemm_batched(ctx);
    if (ctx->host_blas) test_blas_kernels();
    if (ctx->host_blas) test_gemm_split(ctx);   /* the host BLAS's batch split (CPU devices) */
    if (ctx->host_blas) {           /* CPU device: check the CLBlast path too */
        ctx->host_blas = 0;
        test_gemm_batched(ctx);
        ctx->host_blas = 1;
    }
    test_selftest_rows(ctx);
    test_errors(ctx);
    if (!ctx->wg_cap) test_wg_cap(ctx);   /* measures the kernel's uncapped limits: not under a cap of the caller */
    gf_ctx_free(ctx);
    test_binary_cache();
    test_selection();
    test_bad_choices();
    test_memory();
    return test_finish("test_runtime");
}
