/* `gradfeat selftest`: every kernel family and a CLBlast GEMM at small shapes
 * vs plain-C double references. A row passes when
 *   max_i |got_i - ref_i| / (1 + |ref_i|) <= tol   (reported as max_rel). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "selftest.h"

typedef void (*gf_selftest_fn)(gf_ctx *ctx, gf_check_list *l);

/* One line per family; the family adds its own rows. */
static const gf_selftest_fn families[] = {
    gf_selftest_util,
    gf_selftest_gemm,
    gf_selftest_affine,
    gf_selftest_act,
    gf_selftest_merge,
    gf_selftest_ln,
    gf_selftest_pool,
    gf_selftest_loss,
    gf_selftest_optim,
    gf_selftest_bn,
};

void gf_compare(const float *got, const double *ref, size_t n, double *max_abs, double *max_rel) {
    double ma = 0, mr = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        if (!(d <= ma)) ma = d;                      /* NaN propagates */
        double r = d / (1.0 + fabs(ref[i]));
        if (!(r <= mr)) mr = r;
    }
    *max_abs = ma; *max_rel = mr;
}

void gf_check_add(gf_check_list *l, const char *name, double max_abs, double max_rel, double tol) {
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 16;
        gf_check_row *r = realloc(l->rows, (size_t)cap * sizeof *r);
        if (!r) return;
        l->rows = r; l->cap = cap;
    }
    gf_check_row *row = &l->rows[l->n++];
    memset(row, 0, sizeof *row);
    snprintf(row->name, sizeof row->name, "%s", name);
    row->max_abs = max_abs; row->max_rel = max_rel; row->tol = tol;
    row->pass = max_rel <= tol;   /* false for NaN */
}

/* C = A*B with all four transpose combinations and offsets, vs a double
 * reference; on a host-BLAS device both paths are checked. */
static void gemm_rows(gf_ctx *ctx, gf_check_list *l);
void gf_selftest_gemm(gf_ctx *ctx, gf_check_list *l) {
    gemm_rows(ctx, l);
    if (ctx->host_blas) {
        ctx->host_blas = 0;
        gemm_rows(ctx, l);
        ctx->host_blas = 1;
    }
}

static void gemm_rows(gf_ctx *ctx, gf_check_list *l) {
    const size_t M = 37, N = 29, K = 23, off = 5;
    float *A = malloc((off + M * K) * sizeof(float)), *B = malloc((off + K * N) * sizeof(float));
    float *C = malloc((off + M * N) * sizeof(float)), *got = malloc(M * N * sizeof(float));
    double *ref = malloc(M * N * sizeof(double));
    if (!A || !B || !C || !got || !ref) goto done;
    for (size_t i = 0; i < off + M * K; i++) A[i] = (float)((i * 7919 % 211) / 105.5 - 1.0);
    for (size_t i = 0; i < off + K * N; i++) B[i] = (float)((i * 104729 % 197) / 98.5 - 1.0);
    for (size_t i = 0; i < off + M * N; i++) C[i] = (float)((i * 31 % 17) / 8.5 - 1.0);
    for (int t = 0; t < 4; t++) {
        int ta = t & 1, tb = t >> 1;
        size_t lda = ta ? M : K, ldb = tb ? K : N;
        for (size_t i = 0; i < M; i++)
            for (size_t j = 0; j < N; j++) {
                double s = 0;
                for (size_t k = 0; k < K; k++)
                    s += (double)A[off + (ta ? k * lda + i : i * lda + k)] * B[off + (tb ? j * ldb + k : k * ldb + j)];
                ref[i * N + j] = 1.5 * s + 0.5 * C[off + i * N + j];
            }
        cl_mem dA = NULL, dB = NULL, dC = NULL;
        double ma = INFINITY, mr = INFINITY;
        if (gf_buf_create_from(ctx, (off + M * K) * 4, A, "selftest A", &dA) == GF_OK &&
            gf_buf_create_from(ctx, (off + K * N) * 4, B, "selftest B", &dB) == GF_OK &&
            gf_buf_create_from(ctx, (off + M * N) * 4, C, "selftest C", &dC) == GF_OK &&
            gf_gemm(ctx, ta, tb, M, N, K, 1.5f, dA, off, lda, dB, off, ldb, 0.5f, dC, off, N) == GF_OK &&
            gf_buf_read(ctx, dC, off * 4, M * N * 4, got) == GF_OK)
            gf_compare(got, ref, M * N, &ma, &mr);
        char name[64];
        snprintf(name, sizeof name, "gemm %s%s (%s)", ta ? "T" : "N", tb ? "T" : "N",
                 ctx->host_blas ? "host BLAS" : "CLBlast");
        gf_check_add(l, name, ma, mr, 1e-5);
        gf_buf_release(&dA); gf_buf_release(&dB); gf_buf_release(&dC);
    }
done:
    free(A); free(B); free(C); free(got); free(ref);
}

gf_status gf_selftest(gf_ctx *ctx, gf_check_row **rows, int *count) {
    gf_check_list l = {0};
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
        int before = l.n;
        families[i](ctx, &l);
        /* A family that could not even run reports why in the context error. */
        if (l.n == before) gf_check_add(&l, "family produced no rows", INFINITY, INFINITY, 0);
    }
    *rows = l.rows;
    *count = l.n;
    for (int i = 0; i < l.n; i++)
        if (!l.rows[i].pass) return gf_fail(ctx, GF_ERR_CHECK, "selftest row '%s' failed", l.rows[i].name);
    return GF_OK;
}
