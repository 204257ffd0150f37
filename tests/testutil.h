/* Test helpers: a context on the default (or GRADFEAT_DEVICE) device, a
 * deterministic RNG, checks that count failures, and the comparison rule. */
#ifndef GF_TESTUTIL_H
#define GF_TESTUTIL_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gf_internal.h"
#include "ot_rng.h"

extern int gf_test_failures;
extern int gf_test_checks;

/* Fail the test (and keep going) when cond is false. */
#define CHECK(cond, ...) do { gf_test_checks++; if (!(cond)) { gf_test_failures++; \
    fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)
/* Abort the test on a library error, printing the context's message. */
#define REQUIRE_OK(ctx, expr) do { gf_status s__ = (expr); if (s__ != GF_OK) { \
    fprintf(stderr, "FATAL %s:%d: %s -> %s: %s\n", __FILE__, __LINE__, #expr, gf_status_name(s__), \
            (ctx) ? gf_ctx_last_error(ctx) : ""); exit(1); } } while (0)

/* Context on the test device; exits non-zero (never skips) when there is none. */
gf_ctx *test_ctx(void);
/* The same with device (NULL = GRADFEAT_DEVICE, as the --device flag of the CLI) and edit, when not NULL,
 * changing the options before the context is made (tests/test_ops.c: its kernel-path variants). */
gf_ctx *test_ctx_for(const char *device, void (*edit)(gf_ctx_options *, const void *), const void *user);
/* Summary line + exit code: 0 when every CHECK passed and at least one ran. */
int test_finish(const char *name);

/* Deterministic uniform floats in [lo, hi): the op table's generator (host/ops/ot_rng.h). */
typedef ot_rng test_rng;
#define test_rng_seed ot_rng_seed
#define test_uniform ot_uniform
#define test_fill ot_fill

/* Max over i of |got-ref| / (atol + rtol*|ref|) <= 1 ?  Prints the worst index on failure. */
int test_close(const char *what, const float *got, const double *ref, size_t n, double atol, double rtol);

/* Upload / download helpers. */
cl_mem test_upload(gf_ctx *ctx, const float *x, size_t n);
cl_mem test_alloc(gf_ctx *ctx, size_t n);
void test_download(gf_ctx *ctx, cl_mem m, float *x, size_t n);
#endif
