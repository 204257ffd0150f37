#include "testutil.h"
#include "settings.h"

int gf_test_failures = 0;
int gf_test_checks = 0;

static void test_log(void *user, int level, const char *msg) {
    (void)user; (void)level;
    fprintf(stderr, "gradfeat: %s\n", msg);
}

/* The CLI's settings (host/cli/settings.c): GRADFEAT_DEVICE, the kernel paths, the caches, ... from the
 * environment, so that the test binaries run on what the scripts and the CI matrix ask for. */
gf_ctx *test_ctx(void) { return test_ctx_for(NULL, NULL, NULL); }

gf_ctx *test_ctx_for(const char *device, void (*edit)(gf_ctx_options *, const void *), const void *user) {
    cli_settings s;
    char err[1400];
    if (cli_settings_load(&s, device, err, sizeof err)) {
        fprintf(stderr, "FATAL: %s\n", err);
        exit(1);
    }
    gf_ctx_options opt = s.opt;
    if (edit) edit(&opt, user);
    opt.log = test_log;
    gf_ctx *ctx = NULL;
    gf_status st = gf_ctx_create(&opt, &ctx);
    if (st != GF_OK) {
        fprintf(stderr, "FATAL: no OpenCL context: %s\n", ctx ? gf_ctx_last_error(ctx) : gf_status_name(st));
        exit(1);
    }
    return ctx;
}

int test_finish(const char *name) {
    if (gf_test_checks == 0) {
        fprintf(stderr, "%s: no checks ran\n", name);
        return 1;
    }
    printf("%s: %d checks, %d failed\n", name, gf_test_checks, gf_test_failures);
    return gf_test_failures ? 1 : 0;
}

int test_close(const char *what, const float *got, const double *ref, size_t n, double atol, double rtol) {
    double worst = 0; size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - ref[i]) / (atol + rtol * fabs(ref[i]));
        if (!(e <= worst)) { worst = e; wi = i; }   /* NaN counts as worst */
    }
    gf_test_checks++;
    if (!(worst <= 1.0)) {
        gf_test_failures++;
        fprintf(stderr, "FAIL %s: index %zu got %.9g want %.9g (err %.3g x tolerance; atol %g rtol %g)\n",
                what, wi, n ? got[wi] : 0.0, n ? ref[wi] : 0.0, worst, atol, rtol);
        return 0;
    }
    return 1;
}

/* Exactly n floats (one for n = 0: OpenCL has no empty buffers), so that a kernel reading or writing
 * one past the end is an out-of-bounds access that oclgrind reports (tests/cli_oclgrind_*.sh). */
cl_mem test_alloc(gf_ctx *ctx, size_t n) {
    cl_mem m = NULL;
    const size_t bytes = (n ? n : 1) * sizeof(float);
    REQUIRE_OK(ctx, gf_buf_create(ctx, bytes, "test buffer", &m));
    REQUIRE_OK(ctx, gf_buf_zero(ctx, m, 0, bytes));
    return m;
}

cl_mem test_upload(gf_ctx *ctx, const float *x, size_t n) {
    cl_mem m = test_alloc(ctx, n);
    if (n) REQUIRE_OK(ctx, gf_buf_write(ctx, m, 0, n * sizeof(float), x));
    return m;
}

void test_download(gf_ctx *ctx, cl_mem m, float *x, size_t n) {
    if (n) REQUIRE_OK(ctx, gf_buf_read(ctx, m, 0, n * sizeof(float), x));
}
