/* One table of op rows (like ggml's test-backend-ops), every row checked by the same driver (run_row):
 *  - forward vs the double reference (tests/ref/), into a buffer filled with NaN first (every output
 *    value must be written), and a second run bitwise equal (determinism);
 *  - tangent with all differentiable inputs moving and, with two or more, each one alone: vs the
 *    reference tangent where there is one, vs central finite differences of the reference forward, the
 *    partial tangents summing to the full one (linearity); the full tangent twice, bitwise;
 *  - backward into NaN-filled buffers vs the reference, the adjoint identity <J v, u> = sum_k <v_k, g_k>
 *    against the device tangent or, for ops without one (losses, training BN), each gradient element vs
 *    central differences of <f(x), u>; twice, bitwise; accumulate mode (the same gradient added: twice it);
 *    each gradient alone bitwise equal to it computed with the others;
 *  - the op's own checks (in place, argmax, offsets, ...) and, once per op, checks that are not rows
 *    (references against their definitions, special values, refusals).
 * Every row runs under each kernel-path variant its op's kernels have (variants[]).
 * Tolerances: |got - ref| <= atol + rtol |ref| + stol S, S the same sums over |inputs| or the op's own
 * scale (each op's comment says why its tolerances are what they are). tests/README.md: adding a row or an op.
 * Usage: test_ops [--device D|all] [--variant NAME] [--filter OP[,OP...]] [--small] [--list]
 *   --device: as the CLI's (default GRADFEAT_DEVICE, else the best device), or all: each device in turn;
 *   --variant: one kernel-path variant of the context (default: every variant each op's kernels have);
 *   --filter: only the ops named (exact op names, comma-separated);
 *   --small: the small rows (tests/cli_oclgrind_*.sh run them under oclgrind); --list: the rows, no device. */
#include <stdint.h>
#include "testutil.h"
#include "ref/ref_ops.h"
#include "ops_act.h"
#include "ops_bn.h"
#include "ops_ln.h"
#include "ops_loss.h"
#include "ops_merge.h"
#include "ops_optim.h"
#include "ops_pool.h"
#include "ops_util.h"

enum { MAX_IN = 5, NA = 20 };

typedef struct op_def op_def;
typedef struct row {
    const op_def *op;
    int a[NA];          /* shape and integer attributes; their meaning is the op's (its describe()) */
    float f[2];         /* float attributes */
    const char *note;   /* what the row is for, when its numbers do not say it */
    uint64_t seed;      /* of its random data; 0: the row's place in the table */
    int full, small;    /* in the default run; in the --small run */
} row;

enum { MAX_ROWS = 512 };
static row rows[MAX_ROWS];   /* the table (make_rows) */
static int n_rows;

typedef struct tol { double atol, rtol, stol; } tol;
typedef struct tols {
    tol fwd, tan, fd, lin, bwd[MAX_IN], bwd_fd;
    double h;           /* finite-difference step */
    size_t fd_all;      /* OP_BWD_FD: every element of an input up to this size, else about 1000 (default 2000) */
    double adj;         /* adjoint identity, relative to max(|<Jv,u>|, |<v,J^T u>|) */
} tols;

/* One row's tensors: the op's shape() sets the sizes, which inputs are differentiable and its state. */
typedef struct tensors {
    int n_in;
    size_t n[MAX_IN], n_out;
    int diff[MAX_IN];
    float *x[MAX_IN];
    double *xd[MAX_IN];
    cl_mem bx[MAX_IN];
    void *state;
} tensors;

/* What the driver computed, for the op's own checks. */
typedef struct results {
    const float *y, *jv, *u, *v[MAX_IN], *g[MAX_IN];
} results;

enum {
    OP_ACC = 1,         /* backward takes an accumulate flag */
    OP_GRAD_ALONE = 2,  /* backward may leave out any gradient */
    OP_LOSS = 4,        /* a loss: backward is d out[0] / d x (u = e_0) */
    OP_ADJ_ABS = 8,     /* adjoint relative to sum |Jv_i u_i| too (long float sums that cancel), and not 0 */
    OP_BWD_FD = 16,     /* no device tangent: each gradient vs central differences of <f(x), u> per element */
    OP_IS_LINEAR = 32,  /* linear in its inputs: the tangent is the op on the tangents (tan and ref_tan may be
                           NULL: fwd and ref, a NULL input for one that does not move) */
};

struct op_def {
    const char *name;
    unsigned variants;  /* the kernel-path variants the op's kernels depend on (bits of variants[]) */
    unsigned flags;
    void (*describe)(const row *, char *, size_t);
    void (*shape)(gf_ctx *, const row *, tensors *);
    void (*fill)(gf_ctx *, const row *, tensors *, test_rng *);   /* NULL: uniform in [-1, 1] */
    void (*tols)(const row *, tols *);
    void (*ref)(const row *, const tensors *, const double *const *in, double *out);
    gf_status (*fwd)(gf_ctx *, const row *, const tensors *, const cl_mem *in, cl_mem out);
    /* tin[k] NULL: input k does not move */
    gf_status (*tan)(gf_ctx *, const row *, const tensors *, const cl_mem *in, const cl_mem *tin, cl_mem out);
    void (*ref_tan)(const row *, const tensors *, const double *const *in, const double *const *tin, double *out);
    /* gin[k] NULL: gradient k not wanted */
    gf_status (*bwd)(gf_ctx *, const row *, const tensors *, const cl_mem *in, cl_mem u, const cl_mem *gin, int acc);
    void (*ref_bwd)(const row *, const tensors *, const double *const *in, const double *u, double *const *gin);
    int (*fd_skip)(const row *, size_t i);                        /* output i has no valid central difference */
    void (*extra)(gf_ctx *, const row *, const tensors *, const results *, const char *name);
    void (*once)(gf_ctx *);
    void (*release)(tensors *);
    /* the tolerance scales S when not the reference on |inputs| (NULL: that) */
    void (*scale_fwd)(const row *, const tensors *, double *S);
    void (*scale_bwd)(const row *, const tensors *, const double *u, double *const *S);
    void (*fill_u)(const row *, const tensors *, float *u);   /* the backward's u when not random */
};

/* ---------------- shared helpers ---------------- */

static const tol EXACT = {0, 0, 0};

static float *falloc(size_t n) { return malloc((n ? n : 1) * sizeof(float)); }
static double *dalloc(size_t n) { return calloc(n ? n : 1, sizeof(double)); }

static double dot_f(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* |got - ref| <= atol + rtol |ref| + stol S (S may be NULL: 0); NaN fails. */
static int check_tol(const char *name, const char *what, const float *got, const double *ref, const double *S,
                     size_t n, tol t) {
    double worst = 0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - ref[i]), lim = t.atol + t.rtol * fabs(ref[i]) + (S ? t.stol * S[i] : 0);
        double e = err == 0 ? 0 : err / lim;   /* exact tolerance: any difference is infinitely bad */
        if (!(e <= worst)) { worst = e; wi = i; }
    }
    gf_test_checks++;
    if (worst <= 1.0) return 1;
    gf_test_failures++;
    fprintf(stderr, "FAIL %s: %s: index %zu got %.9g want %.9g (err %.3g x tolerance; atol %g rtol %g stol %g S %.3g)\n",
            name, what, wi, got[wi], ref[wi], worst, t.atol, t.rtol, t.stol, S ? S[wi] : 0.0);
    return 0;
}

/* The same rule for a double (a reference checked against its finite differences). */
static int check_tol_d(const char *name, const char *what, const double *got, const double *ref, const double *S,
                       size_t n, tol t) {
    double worst = 0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        double err = fabs(got[i] - ref[i]), lim = t.atol + t.rtol * fabs(ref[i]) + (S ? t.stol * S[i] : 0);
        double e = err == 0 ? 0 : err / lim;
        if (!(e <= worst)) { worst = e; wi = i; }
    }
    gf_test_checks++;
    if (worst <= 1.0) return 1;
    gf_test_failures++;
    fprintf(stderr, "FAIL %s: %s: index %zu got %.12g want %.12g (err %.3g x tolerance)\n", name, what, wi, got[wi],
            ref[wi], worst);
    return 0;
}

static cl_mem nan_buffer(gf_ctx *ctx, size_t n) {
    cl_mem m = test_alloc(ctx, n);
    if (n) REQUIRE_OK(ctx, gf_fill(ctx, n, NAN, m));
    return m;
}

static float *download(gf_ctx *ctx, cl_mem m, size_t n) {
    float *a = falloc(n);
    test_download(ctx, m, a, n);
    return a;
}

static void uniform(test_rng *r, float *x, size_t n, double lo, double hi) { test_fill(r, x, n, lo, hi); }

/* ---------------- kernel-path variants: context options that change which kernels an op runs ---------------- */

typedef struct variant {
    const char *name;
    const char *gemm, *bn_walk;   /* NULL: the context's choice */
    unsigned item_budget;         /* 0: the context's */
    int conv_variant;             /* im2col/col2im/layout kernels of the affine ops (GF_CONV_VARIANT_*) */
    int full, small;              /* in the default run; in the --small run */
    const char *conv_algo;        /* gf_ctx_options.conv_algo; NULL: auto */
} variant;
enum { V_DEFAULT, V_ELEMENT, V_PLANE, V_CLBLAST, V_TILES, V_SLICES, V_TILES16, V_SLICES16, V_DIRECT, V_WINOGRAD,
       V_WINO_CLBLAST, V_BLOCKED, V_STRIDED, V_BLOCKED200, N_VARIANTS };
static const variant variants[N_VARIANTS] = {
    [V_DEFAULT] = {"default", NULL, NULL, 0, 0, 1, 1},
    /* the affine ops: the context's GEMM (host BLAS on CPU devices sharing host memory) with each kernel
     * variant; CLBlast forced; a tiny item budget (150: a few rows per work item, so tile edges fall inside
     * every plane; --small: 16, where split reductions add partial sums in sum_partials) with plane kernels
     * (tiles) and element kernels (reductions split in slices) */
    [V_ELEMENT] = {"element", NULL, NULL, 0, GF_CONV_VARIANT_ELEMENT, 1, 1},
    [V_PLANE] = {"plane", NULL, NULL, 0, GF_CONV_VARIANT_PLANE, 1, 1},
    [V_CLBLAST] = {"clblast", "clblast", NULL, 0, GF_CONV_VARIANT_AUTO, 1, 0},
    [V_TILES] = {"tiles", NULL, NULL, 150, GF_CONV_VARIANT_PLANE, 1, 0},
    [V_SLICES] = {"slices", NULL, NULL, 150, GF_CONV_VARIANT_ELEMENT, 1, 0},
    [V_TILES16] = {"tiles16", NULL, NULL, 16, GF_CONV_VARIANT_PLANE, 0, 1},
    [V_SLICES16] = {"slices16", NULL, NULL, 16, GF_CONV_VARIANT_ELEMENT, 0, 1},
    /* the algorithm of 3x3 stride-1 convs (GRADFEAT_CONV_ALGO): direct forced, Winograd F(2x2, 3x3) forced with the
     * CPU-style transform kernels (rows of tiles) and the context's GEMM (host BLAS on PoCL), and Winograd with the
     * per-tile transform kernels and CLBlast's strided batched GEMM */
    [V_DIRECT] = {"direct", NULL, NULL, 0, GF_CONV_VARIANT_AUTO, 1, 1, "direct"},
    [V_WINOGRAD] = {"winograd", NULL, NULL, 0, GF_CONV_VARIANT_PLANE, 1, 1, "winograd"},
    [V_WINO_CLBLAST] = {"wino-clblast", "clblast", NULL, 0, GF_CONV_VARIANT_ELEMENT, 1, 1, "winograd"},
    /* batch norm: both lane walks (CPU: blocked, GPU: strided), and the blocked walk with a small item budget
     * (more lanes per channel than 16) */
    [V_BLOCKED] = {"blocked", NULL, "blocked", 0, 0, 1, 1},
    [V_STRIDED] = {"strided", NULL, "strided", 0, 0, 1, 1},
    [V_BLOCKED200] = {"blocked200", NULL, "blocked", 200, 0, 1, 1},
};
#define VARIANTS_AFFINE (1u << V_ELEMENT | 1u << V_PLANE | 1u << V_CLBLAST | 1u << V_TILES | 1u << V_SLICES | \
                         1u << V_TILES16 | 1u << V_SLICES16 | 1u << V_DIRECT | 1u << V_WINOGRAD | 1u << V_WINO_CLBLAST)
#define VARIANTS_BN (1u << V_BLOCKED | 1u << V_STRIDED | 1u << V_BLOCKED200)
static const variant *current_variant = &variants[V_DEFAULT];

static void apply_variant(gf_ctx_options *o, const void *user) {
    const variant *v = user;
    if (v->gemm) o->gemm = v->gemm;
    if (v->bn_walk) o->bn_walk = v->bn_walk;
    if (v->item_budget) o->item_budget = v->item_budget;
    if (v->conv_algo) o->conv_algo = v->conv_algo;
}

/* ---------------- the driver: every row the same way ---------------- */

static gf_status run_tangent(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *tin, cl_mem out) {
    return rw->op->tan ? rw->op->tan(ctx, rw, T, T->bx, tin, out) : rw->op->fwd(ctx, rw, T, tin, out);
}
static void ref_tangent(const row *rw, const tensors *T, const double *const *in, const double *const *tin, double *out) {
    if (rw->op->ref_tan) rw->op->ref_tan(rw, T, in, tin, out);
    else rw->op->ref(rw, T, tin, out);
}

static void run_row(gf_ctx *ctx, const row *rw, uint64_t seed) {
    const op_def *op = rw->op;
    char name[200];
    op->describe(rw, name, sizeof name);
    tensors T;
    memset(&T, 0, sizeof T);
    op->shape(ctx, rw, &T);
    test_rng r;
    test_rng_seed(&r, rw->seed ? rw->seed : seed);
    for (int k = 0; k < T.n_in; k++) T.x[k] = falloc(T.n[k]);
    if (op->fill) op->fill(ctx, rw, &T, &r);
    else for (int k = 0; k < T.n_in; k++) uniform(&r, T.x[k], T.n[k], -1, 1);
    for (int k = 0; k < T.n_in; k++) {
        T.xd[k] = dalloc(T.n[k]);
        for (size_t i = 0; i < T.n[k]; i++) T.xd[k][i] = T.x[k][i];
        T.bx[k] = test_upload(ctx, T.x[k], T.n[k]);
    }
    tols tl;
    memset(&tl, 0, sizeof tl);
    tl.h = 1e-3;
    tl.fd_all = 2000;
    op->tols(rw, &tl);
    const double *xin[MAX_IN];
    for (int k = 0; k < T.n_in; k++) xin[k] = T.xd[k];
    results res;
    memset(&res, 0, sizeof res);
    const size_t no = T.n_out;

    /* forward */
    double *yref = dalloc(no), *S = NULL;
    op->ref(rw, &T, xin, yref);
    if (tl.fwd.stol > 0 && op->scale_fwd) {
        S = dalloc(no);
        op->scale_fwd(rw, &T, S);
    } else if (tl.fwd.stol > 0) {   /* the same sums over |inputs| */
        double *ax[MAX_IN];
        S = dalloc(no);
        for (int k = 0; k < T.n_in; k++) {
            ax[k] = dalloc(T.n[k]);
            for (size_t i = 0; i < T.n[k]; i++) ax[k][i] = fabs(T.xd[k][i]);
        }
        op->ref(rw, &T, (const double *const *)ax, S);
        for (int k = 0; k < T.n_in; k++) free(ax[k]);
    }
    cl_mem by = nan_buffer(ctx, no), by2 = nan_buffer(ctx, no);
    REQUIRE_OK(ctx, op->fwd(ctx, rw, &T, T.bx, by));
    REQUIRE_OK(ctx, op->fwd(ctx, rw, &T, T.bx, by2));
    float *y = download(ctx, by, no), *y2 = download(ctx, by2, no);
    check_tol(name, "forward", y, yref, S, no, tl.fwd);
    CHECK(memcmp(y, y2, no * sizeof *y) == 0, "%s: forward not bitwise reproducible", name);
    res.y = y;

    /* tangent: all differentiable inputs moving, then each alone */
    float *v[MAX_IN] = {0}, *jv = NULL;
    double *vd[MAX_IN] = {0};
    cl_mem bv[MAX_IN] = {0};
    int ndiff = 0;
    for (int k = 0; k < T.n_in; k++)
        if (T.diff[k]) {
            ndiff++;
            v[k] = falloc(T.n[k]);
            uniform(&r, v[k], T.n[k], -1, 1);
            vd[k] = dalloc(T.n[k]);
            for (size_t i = 0; i < T.n[k]; i++) vd[k][i] = v[k][i];
            bv[k] = test_upload(ctx, v[k], T.n[k]);
            res.v[k] = v[k];
        }
    if (op->tan || (op->flags & OP_IS_LINEAR)) {
        double *ref = dalloc(no), *yp = dalloc(no), *ym = dalloc(no), *partial_sum = dalloc(no), *St = NULL;
        double *St_full = NULL, *xp[MAX_IN], *xm[MAX_IN];
        double *ax[MAX_IN] = {0}, *av[MAX_IN] = {0};   /* |inputs| and |tangents|: the tangent's S */
        const int has_ref_tan = op->ref_tan || (op->flags & OP_IS_LINEAR);
        const int need_st = has_ref_tan && (tl.tan.stol > 0 || tl.fd.stol > 0);
        for (int k = 0; k < T.n_in && need_st; k++) {
            ax[k] = dalloc(T.n[k]);
            for (size_t i = 0; i < T.n[k]; i++) ax[k][i] = fabs(T.xd[k][i]);
            if (vd[k]) {
                av[k] = dalloc(T.n[k]);
                for (size_t i = 0; i < T.n[k]; i++) av[k][i] = fabs(vd[k][i]);
            }
        }
        cl_mem bt = nan_buffer(ctx, no);
        for (int k = 0; k < T.n_in; k++) { xp[k] = dalloc(T.n[k]); xm[k] = dalloc(T.n[k]); }
        for (int which = -1; which < T.n_in; which++) {   /* -1: every input moving */
            if (which >= 0 && (!T.diff[which] || ndiff < 2)) continue;
            cl_mem tin[MAX_IN] = {0};
            const double *tind[MAX_IN] = {0};
            char what[96];
            for (int k = 0; k < T.n_in; k++)
                if (T.diff[k] && (which < 0 || which == k)) { tin[k] = bv[k]; tind[k] = vd[k]; }
            if (which < 0) snprintf(what, sizeof what, "tangent");
            else snprintf(what, sizeof what, "tangent (input %d moving)", which);
            REQUIRE_OK(ctx, gf_fill(ctx, no, NAN, bt));
            REQUIRE_OK(ctx, run_tangent(ctx, rw, &T, tin, bt));
            float *got = download(ctx, bt, no);
            if (need_st) {
                const double *atin[MAX_IN] = {0};
                for (int k = 0; k < T.n_in; k++) atin[k] = tind[k] ? av[k] : NULL;
                St = dalloc(no);
                ref_tangent(rw, &T, (const double *const *)ax, atin, St);
            }
            if (has_ref_tan) {
                ref_tangent(rw, &T, xin, tind, ref);
                check_tol(name, what, got, ref, St, no, tl.tan);
            }
            for (int k = 0; k < T.n_in; k++)
                for (size_t i = 0; i < T.n[k]; i++) {
                    double d = tind[k] ? tl.h * tind[k][i] : 0;
                    xp[k][i] = T.xd[k][i] + d;
                    xm[k][i] = T.xd[k][i] - d;
                }
            op->ref(rw, &T, (const double *const *)xp, yp);
            op->ref(rw, &T, (const double *const *)xm, ym);
            for (size_t i = 0; i < no; i++)
                ref[i] = op->fd_skip && op->fd_skip(rw, i) ? got[i] : (yp[i] - ym[i]) / (2 * tl.h);
            char w2[128];
            snprintf(w2, sizeof w2, "%s vs central differences", what);
            check_tol(name, w2, got, ref, St, no, tl.fd);
            if (which < 0) { jv = got; St_full = St; }
            else {
                for (size_t i = 0; i < no; i++) partial_sum[i] += got[i];
                free(got); free(St);
            }
            St = NULL;
        }
        if (ndiff >= 2)
            check_tol(name, "the partial tangents sum to the full one", jv, partial_sum, St_full, no, tl.lin);
        cl_mem tin[MAX_IN] = {0};
        for (int k = 0; k < T.n_in; k++) tin[k] = T.diff[k] ? bv[k] : NULL;
        REQUIRE_OK(ctx, run_tangent(ctx, rw, &T, tin, bt));
        float *again = download(ctx, bt, no);
        CHECK(memcmp(jv, again, no * sizeof *jv) == 0, "%s: tangent not bitwise reproducible", name);
        free(again);
        for (int k = 0; k < T.n_in; k++) { free(xp[k]); free(xm[k]); free(ax[k]); free(av[k]); }
        free(ref); free(yp); free(ym); free(partial_sum); free(St_full);
        gf_buf_release(&bt);
        res.jv = jv;
    }

    /* backward */
    float *u = NULL, *g[MAX_IN] = {0};
    if (op->bwd) {
        u = falloc(no);
        if (op->fill_u) op->fill_u(rw, &T, u);
        else if (op->flags & OP_LOSS) { for (size_t i = 0; i < no; i++) u[i] = i == 0; }
        else uniform(&r, u, no, -1, 1);
        double *ud = dalloc(no);
        for (size_t i = 0; i < no; i++) ud[i] = u[i];
        cl_mem bu = test_upload(ctx, u, no), bg[MAX_IN] = {0}, bg2[MAX_IN] = {0};
        for (int k = 0; k < T.n_in; k++)
            if (T.diff[k]) { bg[k] = nan_buffer(ctx, T.n[k]); bg2[k] = nan_buffer(ctx, T.n[k]); }
        REQUIRE_OK(ctx, op->bwd(ctx, rw, &T, T.bx, bu, bg, 0));
        REQUIRE_OK(ctx, op->bwd(ctx, rw, &T, T.bx, bu, bg2, 0));
        for (int k = 0; k < T.n_in; k++)
            if (T.diff[k]) {
                g[k] = download(ctx, bg[k], T.n[k]);
                float *again = download(ctx, bg2[k], T.n[k]);
                CHECK(memcmp(g[k], again, T.n[k] * sizeof *again) == 0, "%s: gradient %d not bitwise reproducible",
                      name, k);
                free(again);
                res.g[k] = g[k];
            }
        double *sg[MAX_IN] = {0}, *rgrad[MAX_IN] = {0};   /* the gradients' S, when their tolerance has one */
        if (op->ref_bwd) {
            double *rg[MAX_IN] = {0}, *ax[MAX_IN] = {0}, *au = dalloc(no);
            int need_s = 0;
            for (int k = 0; k < T.n_in; k++) {
                if (T.diff[k]) { rg[k] = dalloc(T.n[k]); sg[k] = dalloc(T.n[k]); need_s |= tl.bwd[k].stol > 0; }
                ax[k] = dalloc(T.n[k]);
                for (size_t i = 0; i < T.n[k]; i++) ax[k][i] = fabs(T.xd[k][i]);
            }
            for (size_t i = 0; i < no; i++) au[i] = fabs(ud[i]);
            op->ref_bwd(rw, &T, xin, ud, rg);
            if (need_s && op->scale_bwd) op->scale_bwd(rw, &T, ud, sg);
            else if (need_s) op->ref_bwd(rw, &T, (const double *const *)ax, au, sg);
            for (int k = 0; k < T.n_in; k++)
                if (T.diff[k]) {
                    char what[64];
                    snprintf(what, sizeof what, "backward gradient %d", k);
                    check_tol(name, what, g[k], rg[k], sg[k], T.n[k], tl.bwd[k]);
                }
            for (int k = 0; k < T.n_in; k++) { free(ax[k]); rgrad[k] = rg[k]; }
            free(au);
        }
        if (jv) {   /* <J v, u> = sum_k <v_k, J_k^T u>, both sides from the device */
            double lhs = dot_f(jv, u, no), rhs = 0, den, absdot = 0;
            for (int k = 0; k < T.n_in; k++) if (T.diff[k]) rhs += dot_f(v[k], g[k], T.n[k]);
            den = fmax(fabs(lhs), fabs(rhs));
            for (size_t i = 0; i < no; i++) absdot += fabs((double)jv[i] * u[i]);
            if (op->flags & OP_ADJ_ABS) den = fmax(den, absdot);
            double rel = fabs(lhs - rhs) / fmax(1e-30, den);
            CHECK(rel <= tl.adj && (den > 0 || !(op->flags & OP_ADJ_ABS)),
                  "%s: adjoint <Jv,u> %.12g vs <v,J^T u> %.12g (rel %.3g, tolerance %g)", name, lhs, rhs, rel, tl.adj);
        }
        if (op->flags & OP_BWD_FD) {   /* d <f(x), u> / d x_k[i] by central differences (a subset when large) */
            double *yo = dalloc(no);
            for (int k = 0; k < T.n_in; k++) {
                if (!T.diff[k]) continue;
                size_t n = T.n[k], stride = n > tl.fd_all ? n / 997 : 1, m = 0;
                double *fd = dalloc(n), *xk = T.xd[k], *Sm = sg[k] ? dalloc(n) : NULL, *rm = rgrad[k] ? dalloc(n) : NULL;
                float *gs = falloc(n);
                for (size_t i = 0; i < n; i += stride, m++) {
                    double keep = xk[i];
                    xk[i] = keep + 1e-4;
                    op->ref(rw, &T, xin, yo);
                    double lp = ref_dot(yo, ud, no);
                    xk[i] = keep - 1e-4;
                    op->ref(rw, &T, xin, yo);
                    double lm = ref_dot(yo, ud, no);
                    xk[i] = keep;
                    fd[m] = (lp - lm) / 2e-4;
                    gs[m] = g[k][i];
                    if (Sm) Sm[m] = sg[k][i];
                    if (rm) rm[m] = rgrad[k][i];
                }
                char what[96];
                snprintf(what, sizeof what, "gradient %d vs central differences", k);
                check_tol(name, what, gs, fd, Sm, m, tl.bwd_fd);
                if (rm) {   /* the reference itself against its finite differences */
                    snprintf(what, sizeof what, "reference gradient %d vs central differences", k);
                    check_tol_d(name, what, rm, fd, Sm, m, tl.bwd_fd);
                }
                free(fd); free(gs); free(Sm); free(rm);
            }
            free(yo);
        }
        if (op->flags & OP_ACC) {   /* the same gradient added to itself: twice it (exactly, for the exact ops) */
            REQUIRE_OK(ctx, op->bwd(ctx, rw, &T, T.bx, bu, bg, 1));
            for (int k = 0; k < T.n_in; k++)
                if (T.diff[k]) {
                    float *got = download(ctx, bg[k], T.n[k]);
                    double *twice = dalloc(T.n[k]), *S2 = sg[k] ? dalloc(T.n[k]) : NULL;
                    for (size_t i = 0; i < T.n[k]; i++) {
                        twice[i] = 2.0 * g[k][i];
                        if (S2) S2[i] = 2 * sg[k][i];
                    }
                    char what[64];
                    snprintf(what, sizeof what, "backward gradient %d accumulated", k);
                    check_tol(name, what, got, twice, S2, T.n[k], tl.bwd[k]);
                    free(got); free(twice); free(S2);
                }
        }
        if ((op->flags & OP_GRAD_ALONE) && ndiff >= 2)
            for (int k = 0; k < T.n_in; k++) {
                if (!T.diff[k]) continue;
                cl_mem only[MAX_IN] = {0};
                only[k] = bg2[k];
                REQUIRE_OK(ctx, gf_fill(ctx, T.n[k], NAN, bg2[k]));
                REQUIRE_OK(ctx, op->bwd(ctx, rw, &T, T.bx, bu, only, 0));
                float *got = download(ctx, bg2[k], T.n[k]);
                CHECK(memcmp(got, g[k], T.n[k] * sizeof *got) == 0, "%s: gradient %d alone differs", name, k);
                free(got);
            }
        res.u = u;
        for (int k = 0; k < T.n_in; k++) { gf_buf_release(&bg[k]); gf_buf_release(&bg2[k]); free(sg[k]); free(rgrad[k]); }
        gf_buf_release(&bu);
        free(ud);
    }
    if (op->extra) op->extra(ctx, rw, &T, &res, name);

    if (op->release) op->release(&T);
    for (int k = 0; k < T.n_in; k++) {
        free(T.x[k]); free(T.xd[k]); free(v[k]); free(vd[k]); free(g[k]);
        gf_buf_release(&T.bx[k]); gf_buf_release(&bv[k]);
    }
    gf_buf_release(&by); gf_buf_release(&by2);
    free(yref); free(S); free(y); free(y2); free(jv); free(u);
}


/* ---------------- act: activations (cl/act.cl); a = {kind, n}, f = {slope} ----------------
 * ReLU and ReLU6 are selections: exact; LeakyReLU one float product: 1e-30 + 1.2e-7 |ref| (half an ulp is
 * 6e-8); the smooth kinds go through exp/erfc/tanh of a few ulp (erfc up to 16): 1e-7 + 2e-6 |ref|;
 * hard-sigmoid/hard-swish (two or three float ops): 1e-7 + 5e-7 |ref|. FD (h = 1e-3): 1e-6 + 1e-6 |ref| for
 * the piecewise-linear/quadratic kinds, 2e-6 + 2e-6 |ref| for the smooth ones (h^2 max|f'''| / 6 <= 4e-7);
 * inputs stay >= 0.05 from every kink, so the step (at most 1e-3) never crosses one. Adjoint 1e-4. */

static gf_act act_of(const row *rw) { return (gf_act){(gf_act_kind)rw->a[0], rw->f[0]}; }

static void act_describe(const row *rw, char *b, size_t n) {
    snprintf(b, n, "act %s(%g) n=%d", gf_act_name((gf_act_kind)rw->a[0]), rw->f[0], rw->a[1]);
}
static void act_shape(gf_ctx *ctx, const row *rw, tensors *T) {
    (void)ctx;
    T->n_in = 1; T->n[0] = T->n_out = (size_t)rw->a[1]; T->diff[0] = 1;
}
/* Kinks of each kind, where the FD probe must not go. */
static int near_kink(gf_act a, double v) {
    const double w = 0.05;
    switch (a.kind) {
    case GF_ACT_RELU: case GF_ACT_LEAKY: return fabs(v) < w;
    case GF_ACT_RELU6: return fabs(v) < w || fabs(v - 6) < w;
    case GF_ACT_HSWISH: return fabs(v + 3) < w || fabs(v - 3) < w;
    case GF_ACT_HSIGMOID: return fabs(a.slope * v + 0.5) < w * a.slope || fabs(a.slope * v + 0.5 - 1) < w * a.slope;
    default: return 0;
    }
}
static void act_fill(gf_ctx *ctx, const row *rw, tensors *T, test_rng *r) {
    (void)ctx;
    for (size_t i = 0; i < T->n[0]; i++) {
        double v;
        do v = test_uniform(r, -9, 9); while (near_kink(act_of(rw), v));
        T->x[0][i] = (float)v;
    }
}
static void act_tols(const row *rw, tols *t) {
    const gf_act_kind k = (gf_act_kind)rw->a[0];
    const int smooth = k == GF_ACT_SIGMOID || k == GF_ACT_SILU || k == GF_ACT_GELU || k == GF_ACT_GELU_TANH;
    const int hard = k == GF_ACT_HSIGMOID || k == GF_ACT_HSWISH;
    tol e = {smooth || hard ? 1e-7 : 0, smooth ? 2e-6 : hard ? 5e-7 : k == GF_ACT_LEAKY ? 1.2e-7 : 0, 0};
    double fd = smooth ? 2e-6 : 1e-6;
    t->fwd = t->tan = t->bwd[0] = e;
    t->fd = (tol){fd, fd, 0};
    t->adj = 1e-4;
}
static void act_ref(const row *rw, const tensors *T, const double *const *in, double *out) {
    for (size_t i = 0; i < T->n_out; i++) out[i] = gf_act_ref(act_of(rw), in[0][i]);
}
static void act_ref_tan(const row *rw, const tensors *T, const double *const *in, const double *const *tin, double *out) {
    for (size_t i = 0; i < T->n_out; i++) out[i] = tin[0][i] * gf_act_dref(act_of(rw), in[0][i]);
}
static void act_ref_bwd(const row *rw, const tensors *T, const double *const *in, const double *u, double *const *g) {
    for (size_t i = 0; i < T->n_out; i++) g[0][i] = u[i] * gf_act_dref(act_of(rw), in[0][i]);
}
static gf_status act_fwd(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, cl_mem out) {
    return gf_act_forward(ctx, act_of(rw), T->n_out, in[0], out);
}
static gf_status act_tan(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, const cl_mem *tin, cl_mem out) {
    return gf_act_tangent(ctx, act_of(rw), T->n_out, in[0], tin[0], out);
}
static gf_status act_bwd(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, cl_mem u, const cl_mem *g, int acc) {
    (void)acc;
    return gf_act_backward(ctx, act_of(rw), T->n_out, in[0], u, g[0]);
}
/* In place: z <- act(z), then the mask taken from the output (valid for the non-smooth kinds with slope >= 0),
 * tangent and backward in place on their inputs: the same bits as out of place. */
static void act_extra(gf_ctx *ctx, const row *rw, const tensors *T, const results *res, const char *name) {
    const gf_act a = act_of(rw);
    if (gf_act_smooth(a.kind) || (a.kind == GF_ACT_LEAKY && a.slope < 0)) return;
    const size_t n = T->n_out;
    float *out = falloc(n);
    cl_mem bz = test_upload(ctx, T->x[0], n), bt = test_upload(ctx, res->v[0], n), bu = test_upload(ctx, res->u, n);
    REQUIRE_OK(ctx, gf_act_forward(ctx, a, n, bz, bz));
    REQUIRE_OK(ctx, gf_act_tangent(ctx, a, n, bz, bt, bt));
    REQUIRE_OK(ctx, gf_act_backward(ctx, a, n, bz, bu, bu));
    test_download(ctx, bt, out, n);
    CHECK(memcmp(res->jv, out, n * 4) == 0, "%s: in-place tangent with the output mask differs", name);
    test_download(ctx, bu, out, n);
    CHECK(memcmp(res->g[0], out, n * 4) == 0, "%s: in-place backward with the output mask differs", name);
    gf_buf_release(&bz); gf_buf_release(&bt); gf_buf_release(&bu);
    free(out);
}
/* gf_act_ref / gf_act_dref against formulas written another way (PyTorch's definitions: hardsigmoid =
 * relu6(x + 3) / 6, hardswish = x hardsigmoid(x), GELU = x (1 + erf(x / sqrt 2)) / 2, SiLU = x sigmoid(x))
 * and the derivative against a central difference of the reference, on a grid away from kinks. */
static void act_reference_crosscheck(void) {
    double worst = 0, worst_d = 0;
    for (int i = -800; i <= 800; i++) {
        double z = i / 100.0 + 0.00371;
        double s = 1 / (1 + exp(-z)), r6 = fmin(fmax(z + 3, 0), 6);
        double e[6] = {
            gf_act_ref((gf_act){GF_ACT_SIGMOID, 0}, z) - s,
            gf_act_ref((gf_act){GF_ACT_SILU, 0}, z) - z * s,
            (gf_act_ref(GF_ACT_HSIGMOID_TORCH, z) - r6 / 6) * 1e-5,   /* slope is float(1/6): 5e-9 z */
            gf_act_ref((gf_act){GF_ACT_HSWISH, 0}, z) - z * r6 / 6,
            gf_act_ref((gf_act){GF_ACT_GELU, 0}, z) - 0.5 * z * (1 + erf(z / sqrt(2.0))),
            gf_act_ref((gf_act){GF_ACT_GELU_TANH, 0}, z) - 0.5 * z * (1 + tanh(sqrt(2 / M_PI) * (z + 0.044715 * z * z * z)))};
        for (int k = 0; k < 6; k++) if (fabs(e[k]) > worst) worst = fabs(e[k]);
        for (int k = GF_ACT_SIGMOID; k < GF_ACT_COUNT; k++) {
            gf_act a = {(gf_act_kind)k, 0};
            if (k == GF_ACT_HSIGMOID) a = GF_ACT_HSIGMOID_TORCH;
            const double h = 1e-5;
            double fd = (gf_act_ref(a, z + h) - gf_act_ref(a, z - h)) / (2 * h);
            double d = fabs(fd - gf_act_dref(a, z));
            if (d > worst_d) worst_d = d;
        }
    }
    CHECK(worst < 1e-12, "act references vs independent formulas: %.3g", worst);
    CHECK(worst_d < 1e-8, "act reference derivatives vs central differences: %.3g", worst_d);
}
/* Special values: NaN propagates through the forward; an infinite gradient behind a closed mask gives 0
 * (select, not multiply); exact kinks follow the documented convention (mask 1[z > 0], ReLU6 open at 6);
 * the smooth and hard kinds: NaN propagates (also through the clamps), +inf saturates, the hard kinks
 * follow PyTorch (hardswish' = -1/2 at -3 and 3/2 at 3; hardsigmoid' = 0 at +-3); names and refusals. */
static void act_once(gf_ctx *ctx) {
    act_reference_crosscheck();
    const float z[6] = {NAN, 0.0f, -0.0f, 6.0f, -3.0f, 7.0f};
    const float g[6] = {1.0f, 2.0f, 3.0f, 4.0f, INFINITY, 5.0f};
    float y[6], gi[6];
    cl_mem bz = test_upload(ctx, z, 6), bg = test_upload(ctx, g, 6), bo = test_alloc(ctx, 6);
    gf_act relu6 = {GF_ACT_RELU6, 0}, relu = {GF_ACT_RELU, 0};
    REQUIRE_OK(ctx, gf_act_forward(ctx, relu6, 6, bz, bo));
    test_download(ctx, bo, y, 6);
    CHECK(isnan(y[0]) && y[1] == 0 && y[2] == 0 && y[3] == 6 && y[4] == 0 && y[5] == 6,
          "relu6 special forward: %g %g %g %g %g %g", y[0], y[1], y[2], y[3], y[4], y[5]);
    REQUIRE_OK(ctx, gf_act_backward(ctx, relu6, 6, bz, bg, bo));
    test_download(ctx, bo, gi, 6);
    CHECK(gi[1] == 0 && gi[2] == 0 && gi[3] == 0 && gi[4] == 0 && gi[5] == 0,
          "relu6 special backward: %g %g %g %g %g", gi[1], gi[2], gi[3], gi[4], gi[5]);
    REQUIRE_OK(ctx, gf_act_forward(ctx, relu, 6, bz, bo));
    test_download(ctx, bo, y, 6);
    CHECK(isnan(y[0]) && y[3] == 6 && y[5] == 7, "relu special forward");
    gf_act bad = {GF_ACT_COUNT, 0};
    CHECK(gf_act_forward(ctx, bad, 6, bz, bo) == GF_ERR_USAGE, "unknown kind accepted");
    CHECK(gf_act_parse("relu6") == GF_ACT_RELU6 && gf_act_parse("leaky_relu") == GF_ACT_LEAKY &&
          gf_act_parse("tanh") == -1, "gf_act_parse");
    gf_buf_release(&bz); gf_buf_release(&bg); gf_buf_release(&bo);

    const float zs[5] = {NAN, INFINITY, -INFINITY, -3.0f, 3.0f};
    const float ones[5] = {1, 1, 1, 1, 1};
    float d[5];
    bz = test_upload(ctx, zs, 5); bg = test_upload(ctx, ones, 5); bo = test_alloc(ctx, 5);
    for (int k = GF_ACT_SIGMOID; k < GF_ACT_COUNT; k++) {
        gf_act a = {(gf_act_kind)k, 0};
        if (k == GF_ACT_HSIGMOID) a = GF_ACT_HSIGMOID_TORCH;
        REQUIRE_OK(ctx, gf_act_forward(ctx, a, 5, bz, bo));
        test_download(ctx, bo, y, 5);
        REQUIRE_OK(ctx, gf_act_backward(ctx, a, 5, bz, bg, bo));
        test_download(ctx, bo, d, 5);
        const char *nm = gf_act_name(a.kind);
        CHECK(isnan(y[0]), "%s(NaN) = %g, not NaN", nm, y[0]);
        int bounded = k == GF_ACT_SIGMOID || k == GF_ACT_HSIGMOID;
        CHECK(bounded ? y[1] == 1.0f : y[1] == INFINITY, "%s(+inf) = %g", nm, y[1]);
        if (k == GF_ACT_SIGMOID || k == GF_ACT_HSIGMOID) CHECK(y[2] == 0.0f, "%s(-inf) = %g", nm, y[2]);
        if (k == GF_ACT_HSWISH)
            CHECK(d[3] == -0.5f && d[4] == 1.5f, "hardswish' at -3, 3: %g %g (PyTorch: -0.5, 1.5)", d[3], d[4]);
        if (k == GF_ACT_HSIGMOID) CHECK(d[3] == 0 && d[4] == 0, "hardsigmoid' at -3, 3: %g %g", d[3], d[4]);
    }
    CHECK(gf_act_parse("silu") == GF_ACT_SILU && gf_act_parse("swish") == GF_ACT_SILU &&
          gf_act_parse("gelu_tanh") == GF_ACT_GELU_TANH && gf_act_parse("hardswish") == GF_ACT_HSWISH,
          "gf_act_parse of the new kinds");
    for (int k = 0; k < GF_ACT_COUNT; k++)
        CHECK(gf_act_parse(gf_act_name((gf_act_kind)k)) == k, "name/parse round trip of kind %d", k);
    gf_buf_release(&bz); gf_buf_release(&bg); gf_buf_release(&bo);
}
static const op_def OP_ACT = {.name = "act", .describe = act_describe, .shape = act_shape, .fill = act_fill,
    .tols = act_tols, .ref = act_ref, .fwd = act_fwd, .tan = act_tan, .ref_tan = act_ref_tan, .bwd = act_bwd,
    .ref_bwd = act_ref_bwd, .extra = act_extra, .once = act_once};

/* ---------------- ln: layer norm over channels (cl/ln.cl); a = {N, C, H, W, constant pixel}, f = {eps} ----------------
 * 2e-6 + 2e-6 |ref| (float sums over C; the 1/s of a pixel with variance ~1); FD (h = 1e-3, error
 * h^2 |y'''| / 6): 1e-5 + 1e-5 |ref|; adjoint 1e-5. A constant pixel (variance 0: only eps) has s = sqrt(eps):
 * the FD step would leave the linear regime, so its outputs are left out of the FD check only. */

static void ln_describe(const row *rw, char *b, size_t n) {
    snprintf(b, n, "ln %dx%dx%dx%d eps %g%s", rw->a[0], rw->a[1], rw->a[2], rw->a[3], rw->f[0],
             rw->a[4] ? " (a constant pixel)" : "");
}
static void ln_shape(gf_ctx *ctx, const row *rw, tensors *T) {
    (void)ctx;
    T->n_in = 1; T->n[0] = T->n_out = (size_t)rw->a[0] * rw->a[1] * rw->a[2] * rw->a[3]; T->diff[0] = 1;
}
static void ln_fill(gf_ctx *ctx, const row *rw, tensors *T, test_rng *r) {
    (void)ctx;
    const size_t HW = (size_t)rw->a[2] * rw->a[3];
    uniform(r, T->x[0], T->n[0], -2, 2);
    for (size_t i = 0; i < T->n[0]; i++) T->x[0][i] += (float)(0.3 * ((i / HW) % 5));   /* a non-zero mean */
    if (rw->a[4]) for (int c = 0; c < rw->a[1]; c++) T->x[0][(size_t)c * HW] = 0.75f;
}
static void ln_tols(const row *rw, tols *t) {
    (void)rw;
    t->fwd = t->tan = t->bwd[0] = (tol){2e-6, 2e-6, 0};
    t->fd = (tol){1e-5, 1e-5, 0};
    t->adj = 1e-5;
}
static int ln_fd_skip(const row *rw, size_t i) {
    return rw->a[4] && i % ((size_t)rw->a[2] * rw->a[3]) == 0 && i < (size_t)rw->a[1] * rw->a[2] * rw->a[3];
}
#define LN_EACH_PIXEL(rw) \
    const int N = (rw)->a[0], C = (rw)->a[1]; const size_t HW = (size_t)(rw)->a[2] * (rw)->a[3]; \
    for (int n = 0; n < N; n++) for (size_t p = 0; p < HW; p++)
#define LN_AT(c) ((size_t)n * C * HW + p + (size_t)(c) * HW)
enum { LN_MAX_C = 1024 };
static void ln_ref(const row *rw, const tensors *T, const double *const *in, double *out) {
    (void)T;
    double xs[LN_MAX_C], ys[LN_MAX_C];
    LN_EACH_PIXEL(rw) {
        for (int c = 0; c < C; c++) xs[c] = in[0][LN_AT(c)];
        ref_ln(xs, C, rw->f[0], ys);
        for (int c = 0; c < C; c++) out[LN_AT(c)] = ys[c];
    }
}
/* The Jacobian-vector product of gf_ln_ref (symmetric: also the backward's), on float copies (exact: the
 * inputs are floats). */
static void ln_ref_jac(const row *rw, const double *x, const double *t, double *out) {
    float xs[LN_MAX_C], ts[LN_MAX_C];
    double js[LN_MAX_C];
    LN_EACH_PIXEL(rw) {
        for (int c = 0; c < C; c++) { xs[c] = (float)x[LN_AT(c)]; ts[c] = (float)t[LN_AT(c)]; }
        gf_ln_ref(xs, ts, C, 1, rw->f[0], NULL, js);
        for (int c = 0; c < C; c++) out[LN_AT(c)] = js[c];
    }
}
static void ln_ref_tan(const row *rw, const tensors *T, const double *const *in, const double *const *tin, double *out) {
    (void)T;
    ln_ref_jac(rw, in[0], tin[0], out);
}
static void ln_ref_bwd(const row *rw, const tensors *T, const double *const *in, const double *u, double *const *g) {
    (void)T;
    ln_ref_jac(rw, in[0], u, g[0]);
}
static gf_status ln_fwd(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, cl_mem out) {
    (void)T;
    return gf_ln_forward(ctx, rw->a[0], rw->a[1], (size_t)rw->a[2] * rw->a[3], rw->f[0], in[0], out);
}
static gf_status ln_tan(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, const cl_mem *tin, cl_mem out) {
    (void)T;
    return gf_ln_tangent(ctx, rw->a[0], rw->a[1], (size_t)rw->a[2] * rw->a[3], rw->f[0], in[0], tin[0], out);
}
static gf_status ln_bwd(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, cl_mem u, const cl_mem *g, int acc) {
    (void)T; (void)acc;
    return gf_ln_backward(ctx, rw->a[0], rw->a[1], (size_t)rw->a[2] * rw->a[3], rw->f[0], in[0], u, g[0]);
}
/* gf_ln_ref against the definition written directly; refusals. */
static void ln_once(gf_ctx *ctx) {
    const float x[5] = {1.0f, -2.0f, 0.5f, 3.0f, 0.25f};
    double y[5], mu = 0.55, v = 0;
    for (int c = 0; c < 5; c++) v += (x[c] - mu) * (x[c] - mu);
    v /= 5;
    gf_ln_ref(x, NULL, 5, 1, 1e-5, y, NULL);
    double worst = 0;
    for (int c = 0; c < 5; c++) worst = fmax(worst, fabs(y[c] - (x[c] - mu) / sqrt(v + 1e-5)));
    CHECK(worst < 1e-12, "gf_ln_ref vs the definition: %.3g", worst);
    cl_mem b = test_alloc(ctx, 4);
    CHECK(gf_ln_forward(ctx, 1, 100000, 1, 1e-6f, b, b) == GF_ERR_USAGE, "layernorm past the item budget accepted");
    CHECK(gf_ln_forward(ctx, 1, 4, 1, -1.0f, b, b) == GF_ERR_USAGE, "negative eps accepted");
    gf_buf_release(&b);
}
static const op_def OP_LN = {.name = "ln", .describe = ln_describe, .shape = ln_shape, .fill = ln_fill,
    .tols = ln_tols, .ref = ln_ref, .fwd = ln_fwd, .tan = ln_tan, .ref_tan = ln_ref_tan, .bwd = ln_bwd,
    .ref_bwd = ln_ref_bwd, .fd_skip = ln_fd_skip, .once = ln_once};

/* ---------------- mul: y = x * s (cl/merge.cl); a = {N, C, H, W, gate} ----------------
 * Elementwise, or with a per-channel gate s [N, C, 1, 1] broadcast over H x W (squeeze-excitation): the first
 * op whose tangent has two moving inputs (both, x only, s only; linearity). One float product:
 * 1e-30 + 1.2e-7 |ref|; the product rule (two products and a sum) and the FD (bilinear: exact up to
 * rounding): 1e-6 + 1e-6 |ref|; the gate gradient is a float sum of HW products (up to 3136 terms of
 * |u x| <= 2): 1e-5 of the sum of |u x|; adjoint 1e-5. Planes of 1, 7x7 and 8x8 (one work item per plane),
 * 9x9 and 56x56 (a work-group per plane). */

static size_t mul_planes(const row *rw) { return (size_t)rw->a[0] * rw->a[1]; }
static size_t mul_hw(const row *rw) { return (size_t)rw->a[2] * rw->a[3]; }
static void mul_describe(const row *rw, char *b, size_t n) {
    snprintf(b, n, "mul %s %dx%dx%dx%d", rw->a[4] ? "gate" : "elementwise", rw->a[0], rw->a[1], rw->a[2], rw->a[3]);
}
static void mul_shape(gf_ctx *ctx, const row *rw, tensors *T) {
    (void)ctx;
    T->n_in = 2;
    T->n[0] = T->n_out = mul_planes(rw) * mul_hw(rw);
    T->n[1] = rw->a[4] ? mul_planes(rw) : T->n[0];
    T->diff[0] = T->diff[1] = 1;
}
static void mul_fill(gf_ctx *ctx, const row *rw, tensors *T, test_rng *r) {
    (void)ctx; (void)rw;
    uniform(r, T->x[0], T->n[0], -2, 2);
    uniform(r, T->x[1], T->n[1], -1.5, 1.5);
}
static void mul_tols(const row *rw, tols *t) {
    t->fwd = (tol){1e-30, 1.2e-7, 0};
    t->tan = t->fd = t->lin = (tol){1e-6, 1e-6, 0};
    t->bwd[0] = (tol){1e-30, 1.2e-7, 0};
    t->bwd[1] = rw->a[4] ? (tol){1e-30, 0, 1e-5} : (tol){1e-30, 1.2e-7, 0};
    t->adj = 1e-5;
}
static void mul_ref(const row *rw, const tensors *T, const double *const *in, double *out) {
    (void)T;
    ref_mul(mul_planes(rw), mul_hw(rw), rw->a[4], in[0], in[1], out);
}
static void mul_ref_tan(const row *rw, const tensors *T, const double *const *in, const double *const *tin, double *out) {
    const size_t HW = mul_hw(rw);
    for (size_t i = 0; i < T->n_out; i++) {
        size_t si = rw->a[4] ? i / HW : i;
        out[i] = (tin[0] ? tin[0][i] * in[1][si] : 0) + (tin[1] ? in[0][i] * tin[1][si] : 0);
    }
}
static void mul_ref_bwd(const row *rw, const tensors *T, const double *const *in, const double *u, double *const *g) {
    (void)T;
    ref_mul_backward(mul_planes(rw), mul_hw(rw), rw->a[4], in[0], in[1], u, g[0], g[1]);
}
static gf_status mul_fwd(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, cl_mem out) {
    (void)T;
    return gf_mul_forward(ctx, mul_planes(rw), mul_hw(rw), rw->a[4], in[0], in[1], out);
}
static gf_status mul_tan(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, const cl_mem *tin, cl_mem out) {
    (void)T;
    return gf_mul_tangent(ctx, mul_planes(rw), mul_hw(rw), rw->a[4], in[0], in[1], tin[0], tin[1], out);
}
static gf_status mul_bwd(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, cl_mem u, const cl_mem *g, int acc) {
    (void)T; (void)acc;
    return gf_mul_backward(ctx, mul_planes(rw), mul_hw(rw), rw->a[4], in[0], in[1], u, g[0], g[1]);
}
/* In place: y aliasing x gives the same bits. */
static void mul_extra(gf_ctx *ctx, const row *rw, const tensors *T, const results *res, const char *name) {
    cl_mem bxx = test_upload(ctx, T->x[0], T->n[0]);
    REQUIRE_OK(ctx, gf_mul_forward(ctx, mul_planes(rw), mul_hw(rw), rw->a[4], bxx, T->bx[1], bxx));
    float *got = download(ctx, bxx, T->n_out);
    CHECK(memcmp(got, res->y, T->n_out * 4) == 0, "%s: in place differs", name);
    free(got);
    gf_buf_release(&bxx);
}
/* The merge family's refusals. */
static void mul_once(gf_ctx *ctx) {
    cl_mem b = test_alloc(ctx, 16), b2 = test_alloc(ctx, 16);
    CHECK(gf_mul_tangent(ctx, 4, 4, 0, b, b, NULL, NULL, b) != GF_OK, "mul tangent with no moving input accepted");
    CHECK(gf_mul_forward(ctx, 0, 4, 0, b, b, b) == GF_ERR_USAGE, "mul of 0 planes accepted");
    CHECK(gf_concat_backward(ctx, 1, 4, 4, 3, 2, b, b, 0) == GF_ERR_USAGE, "concat slice past the end accepted");
    int C[2] = {2, 0};
    cl_mem in[2] = {b, b};
    CHECK(gf_concat_forward(ctx, 1, 4, 2, C, in, b) == GF_ERR_USAGE, "concat of a 0-channel input accepted");
    CHECK(gf_concat_forward(ctx, 1, 4, 0, C, in, b) == GF_ERR_USAGE, "concat of no inputs accepted");
    CHECK(gf_shuffle_forward(ctx, 1, 6, 2, 4, b, b2) == GF_ERR_USAGE, "shuffle of 6 channels in 4 groups accepted");
    CHECK(gf_shuffle_forward(ctx, 1, 4, 2, 0, b, b2) == GF_ERR_USAGE, "shuffle in 0 groups accepted");
    CHECK(gf_shuffle_forward(ctx, 1, 4, 2, 2, b, b) != GF_OK, "shuffle in place accepted");
    CHECK(gf_slice_forward(ctx, 1, 4, 4, 3, 2, b, b2) == GF_ERR_USAGE, "slice past the end accepted");
    CHECK(gf_slice_backward(ctx, 1, 4, 4, -1, 2, b, b2, 0) == GF_ERR_USAGE, "slice at a negative offset accepted");
    gf_buf_release(&b2);
    gf_buf_release(&b);
}
static const op_def OP_MUL = {.name = "mul", .flags = OP_GRAD_ALONE, .describe = mul_describe, .shape = mul_shape,
    .fill = mul_fill, .tols = mul_tols, .ref = mul_ref, .fwd = mul_fwd, .tan = mul_tan, .ref_tan = mul_ref_tan,
    .bwd = mul_bwd, .ref_bwd = mul_ref_bwd, .extra = mul_extra, .once = mul_once};

/* Copies (concat, slice, shuffle): forward, tangent and backward exact (every value written: the outputs
 * start as NaN); FD of a linear map 1e-6 + 1e-6 |ref|; adjoint 1e-12 (the same products on both sides). */
static void copy_tols(const row *rw, tols *t) {
    (void)rw;
    t->fwd = t->tan = t->lin = EXACT;
    for (int k = 0; k < MAX_IN; k++) t->bwd[k] = EXACT;
    t->fd = (tol){1e-6, 1e-6, 0};
    t->adj = 1e-12;
}

/* ---------------- concat along channels (cl/merge.cl); a = {N, n, H, W, C0, C1, C2, C3} ---------------- */

static int concat_total(const row *rw) {
    int Ct = 0;
    for (int k = 0; k < rw->a[1]; k++) Ct += rw->a[4 + k];
    return Ct;
}
static void concat_describe(const row *rw, char *b, size_t n) {
    int o = snprintf(b, n, "concat N%d %dx%d of C", rw->a[0], rw->a[2], rw->a[3]);
    for (int k = 0; k < rw->a[1] && o > 0 && (size_t)o < n; k++) o += snprintf(b + o, n - o, "%s%d", k ? "+" : " ", rw->a[4 + k]);
}
static void concat_shape(gf_ctx *ctx, const row *rw, tensors *T) {
    (void)ctx;
    const size_t NHW = (size_t)rw->a[0] * rw->a[2] * rw->a[3];
    T->n_in = rw->a[1];
    for (int k = 0; k < T->n_in; k++) { T->n[k] = NHW * rw->a[4 + k]; T->diff[k] = 1; }
    T->n_out = NHW * concat_total(rw);
}
static void concat_ref(const row *rw, const tensors *T, const double *const *in, double *out) {
    (void)T;
    ref_concat(rw->a[0], (size_t)rw->a[2] * rw->a[3], rw->a[1], &rw->a[4], in, out);
}
static void concat_ref_bwd(const row *rw, const tensors *T, const double *const *in, const double *u, double *const *g) {
    (void)T; (void)in;
    for (int k = 0, off = 0; k < rw->a[1]; off += rw->a[4 + k], k++)
        ref_slice(rw->a[0], (size_t)rw->a[2] * rw->a[3], concat_total(rw), off, rw->a[4 + k], u, g[k]);
}
static gf_status concat_fwd(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, cl_mem out) {
    (void)T;
    return gf_concat_forward(ctx, rw->a[0], (size_t)rw->a[2] * rw->a[3], rw->a[1], &rw->a[4], in, out);
}
static gf_status concat_bwd(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, cl_mem u, const cl_mem *g, int acc) {
    (void)T; (void)in;
    for (int k = 0, off = 0; k < rw->a[1]; off += rw->a[4 + k], k++) {
        if (!g[k]) continue;
        gf_status st = gf_concat_backward(ctx, rw->a[0], (size_t)rw->a[2] * rw->a[3], concat_total(rw), off,
                                          rw->a[4 + k], u, g[k], acc);
        if (st != GF_OK) return st;
    }
    return GF_OK;
}
static const op_def OP_CONCAT = {.name = "concat", .flags = OP_ACC | OP_GRAD_ALONE | OP_IS_LINEAR,
    .describe = concat_describe, .shape = concat_shape, .tols = copy_tols, .ref = concat_ref, .fwd = concat_fwd,
    .bwd = concat_bwd, .ref_bwd = concat_ref_bwd};

/* ---------------- shuffle: channel shuffle in G groups (ShuffleNet; cl/merge.cl); a = {N, C, H, W, G} ---------------- */

static void shuffle_describe(const row *rw, char *b, size_t n) {
    snprintf(b, n, "shuffle %dx%dx%dx%d G %d", rw->a[0], rw->a[1], rw->a[2], rw->a[3], rw->a[4]);
}
static void shuffle_shape(gf_ctx *ctx, const row *rw, tensors *T) {
    (void)ctx;
    T->n_in = 1; T->n[0] = T->n_out = (size_t)rw->a[0] * rw->a[1] * rw->a[2] * rw->a[3]; T->diff[0] = 1;
}
static void shuffle_ref(const row *rw, const tensors *T, const double *const *in, double *out) {
    (void)T;
    ref_shuffle(rw->a[0], rw->a[1], (size_t)rw->a[2] * rw->a[3], rw->a[4], in[0], out);
}
static void shuffle_ref_bwd(const row *rw, const tensors *T, const double *const *in, const double *u, double *const *g) {
    (void)T; (void)in;
    ref_shuffle_backward(rw->a[0], rw->a[1], (size_t)rw->a[2] * rw->a[3], rw->a[4], u, g[0]);
}
static gf_status shuffle_fwd(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, cl_mem out) {
    (void)T;
    return gf_shuffle_forward(ctx, rw->a[0], rw->a[1], (size_t)rw->a[2] * rw->a[3], rw->a[4], in[0], out);
}
static gf_status shuffle_bwd(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, cl_mem u, const cl_mem *g, int acc) {
    (void)T; (void)in;
    return gf_shuffle_backward(ctx, rw->a[0], rw->a[1], (size_t)rw->a[2] * rw->a[3], rw->a[4], u, g[0], acc);
}
/* The backward undoes the forward: shuffle(x) then its inverse is x, bitwise. */
static void shuffle_extra(gf_ctx *ctx, const row *rw, const tensors *T, const results *res, const char *name) {
    cl_mem by = test_upload(ctx, res->y, T->n_out), bg = nan_buffer(ctx, T->n[0]);
    REQUIRE_OK(ctx, gf_shuffle_backward(ctx, rw->a[0], rw->a[1], (size_t)rw->a[2] * rw->a[3], rw->a[4], by, bg, 0));
    float *back = download(ctx, bg, T->n[0]);
    CHECK(memcmp(back, T->x[0], T->n[0] * 4) == 0, "%s: inverse(shuffle(x)) != x", name);
    free(back);
    gf_buf_release(&by); gf_buf_release(&bg);
}
static const op_def OP_SHUFFLE = {.name = "shuffle", .flags = OP_ACC | OP_IS_LINEAR, .describe = shuffle_describe,
    .shape = shuffle_shape, .tols = copy_tols, .ref = shuffle_ref, .fwd = shuffle_fwd, .bwd = shuffle_bwd,
    .ref_bwd = shuffle_ref_bwd, .extra = shuffle_extra};

/* ---------------- slice of channels off .. off+Ck (torch.chunk; cl/merge.cl); a = {N, C, H, W, off, Ck} ---------------- */

static void slice_describe(const row *rw, char *b, size_t n) {
    snprintf(b, n, "slice %d..%d of %dx%dx%dx%d", rw->a[4], rw->a[4] + rw->a[5], rw->a[0], rw->a[1], rw->a[2], rw->a[3]);
}
static void slice_shape(gf_ctx *ctx, const row *rw, tensors *T) {
    (void)ctx;
    const size_t HW = (size_t)rw->a[2] * rw->a[3];
    T->n_in = 1; T->n[0] = (size_t)rw->a[0] * rw->a[1] * HW; T->diff[0] = 1;
    T->n_out = (size_t)rw->a[0] * rw->a[5] * HW;
}
static void slice_ref(const row *rw, const tensors *T, const double *const *in, double *out) {
    (void)T;
    ref_slice(rw->a[0], (size_t)rw->a[2] * rw->a[3], rw->a[1], rw->a[4], rw->a[5], in[0], out);
}
static void slice_ref_bwd(const row *rw, const tensors *T, const double *const *in, const double *u, double *const *g) {
    (void)T; (void)in;
    ref_slice_backward(rw->a[0], (size_t)rw->a[2] * rw->a[3], rw->a[1], rw->a[4], rw->a[5], u, g[0]);
}
static gf_status slice_fwd(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, cl_mem out) {
    (void)T;
    return gf_slice_forward(ctx, rw->a[0], (size_t)rw->a[2] * rw->a[3], rw->a[1], rw->a[4], rw->a[5], in[0], out);
}
static gf_status slice_bwd(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, cl_mem u, const cl_mem *g, int acc) {
    (void)T; (void)in;
    return gf_slice_backward(ctx, rw->a[0], (size_t)rw->a[2] * rw->a[3], rw->a[1], rw->a[4], rw->a[5], u, g[0], acc);
}
static const op_def OP_SLICE = {.name = "slice", .flags = OP_ACC | OP_IS_LINEAR, .describe = slice_describe,
    .shape = slice_shape, .tols = copy_tols, .ref = slice_ref, .fwd = slice_fwd, .bwd = slice_bwd,
    .ref_bwd = slice_ref_bwd};

/* ---------------- maxpool / avgpool (cl/pool.cl); a = {N, C, H, W, kh, kw, sh, sw, ph, pw, tf_same} ----------------
 * Inputs are a shuffled grid of distinct values 0.01 apart and the FD step moves each by at most 1e-3, so no
 * window's arg-max changes along the probe: the max is linear there and central differences are valid.
 * Max pool: output, argmax and tangent (a gather) exact; backward 1e-6 + 1e-6 |ref|. Average pool (both
 * divisor rules): 1e-6 + 1e-5 |ref|. FD 1e-5 + 1e-5 |ref|; adjoint 1e-4. */

typedef struct pool_state {
    gf_pool2d p;
    cl_mem arg, arg2;   /* argmax of the forward; of the argmax-only path */
} pool_state;

static void pool_describe_as(const char *what, const row *rw, char *b, size_t n) {
    const int *a = rw->a;
    if (a[10]) snprintf(b, n, "%s N%d C%d %dx%d k%dx%d s%dx%d TF SAME", what, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]);
    else snprintf(b, n, "%s N%d C%d %dx%d k%dx%d s%dx%d pad %dx%d", what, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7],
                  a[8], a[9]);
}
static void maxpool_describe(const row *rw, char *b, size_t n) { pool_describe_as("maxpool", rw, b, n); }
static void avgpool_describe(const row *rw, char *b, size_t n) {
    pool_describe_as(rw->a[11] ? "avgpool include_pad" : "avgpool exclude_pad", rw, b, n);
}
static void pool_shape(gf_ctx *ctx, const row *rw, tensors *T) {
    const int *a = rw->a;
    pool_state *s = calloc(1, sizeof *s);
    if (a[10]) REQUIRE_OK(ctx, gf_pool2d_init_tf(ctx, &s->p, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], 1));
    else REQUIRE_OK(ctx, gf_pool2d_init(ctx, &s->p, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9]));
    s->p.count_include_pad = a[11];
    T->n_in = 1; T->n[0] = gf_pool2d_in_count(&s->p); T->n_out = gf_pool2d_out_count(&s->p); T->diff[0] = 1;
    s->arg = test_alloc(ctx, T->n_out);
    s->arg2 = test_alloc(ctx, T->n_out);
    T->state = s;
}
static void pool_release(tensors *T) {
    pool_state *s = T->state;
    gf_buf_release(&s->arg); gf_buf_release(&s->arg2);
    free(s);
}
/* distinct values: a shuffled grid k * 0.01 - offset */
static void pool_fill(gf_ctx *ctx, const row *rw, tensors *T, test_rng *r) {
    (void)ctx; (void)rw;
    const size_t ni = T->n[0];
    float *x = T->x[0];
    for (size_t i = 0; i < ni; i++) x[i] = (float)((double)i * 0.01 - (double)ni * 0.005);
    for (size_t i = ni; i > 1; i--) {
        size_t j = (size_t)test_uniform(r, 0, (double)i);
        float tmp = x[i - 1]; x[i - 1] = x[j]; x[j] = tmp;
    }
}
static void maxpool_tols(const row *rw, tols *t) {
    (void)rw;
    t->fwd = t->tan = EXACT;
    t->bwd[0] = (tol){1e-6, 1e-6, 0};
    t->fd = (tol){1e-5, 1e-5, 0};
    t->adj = 1e-4;
}
static void avgpool_tols(const row *rw, tols *t) {
    (void)rw;
    t->fwd = t->tan = t->bwd[0] = (tol){1e-6, 1e-5, 0};
    t->fd = (tol){1e-5, 1e-5, 0};
    t->adj = 1e-4;
}
static const gf_pool2d *pool_of(const tensors *T) { return &((const pool_state *)T->state)->p; }
static void maxpool_ref(const row *rw, const tensors *T, const double *const *in, double *out) {
    (void)rw;
    ref_pool(pool_of(T), in[0], 1, out, NULL);
}
static void avgpool_ref(const row *rw, const tensors *T, const double *const *in, double *out) {
    (void)rw;
    ref_pool(pool_of(T), in[0], 0, out, NULL);
}
/* the tangent gathers t at the reference's argmax */
static void maxpool_ref_tan(const row *rw, const tensors *T, const double *const *in, const double *const *tin, double *out) {
    (void)rw;
    const gf_pool2d *p = pool_of(T);
    int *arg = malloc(T->n_out * sizeof *arg);
    ref_pool(p, in[0], 1, out, arg);
    for (size_t o = 0; o < T->n_out; o++) out[o] = tin[0][(o / ((size_t)p->OH * p->OW)) * p->H * p->W + arg[o]];
    free(arg);
}
static void maxpool_ref_bwd(const row *rw, const tensors *T, const double *const *in, const double *u, double *const *g) {
    (void)rw;
    double *y = dalloc(T->n_out);
    int *arg = malloc(T->n_out * sizeof *arg);
    ref_pool(pool_of(T), in[0], 1, y, arg);
    ref_maxpool_backward(pool_of(T), arg, u, g[0]);
    free(y); free(arg);
}
static void avgpool_ref_bwd(const row *rw, const tensors *T, const double *const *in, const double *u, double *const *g) {
    (void)rw; (void)in;
    ref_avgpool_backward(pool_of(T), u, g[0]);
}
static gf_status maxpool_fwd(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, cl_mem out) {
    (void)rw;
    const pool_state *s = T->state;
    return gf_maxpool_forward(ctx, &s->p, in[0], out, s->arg);
}
/* the argmax alone (the recompute path), then the gather */
static gf_status maxpool_tan(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, const cl_mem *tin, cl_mem out) {
    (void)rw;
    const pool_state *s = T->state;
    gf_status st = gf_maxpool_forward(ctx, &s->p, in[0], NULL, s->arg2);
    return st != GF_OK ? st : gf_maxpool_tangent(ctx, &s->p, s->arg2, tin[0], out);
}
static gf_status maxpool_bwd(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, cl_mem u, const cl_mem *g, int acc) {
    (void)rw; (void)acc;
    const pool_state *s = T->state;
    gf_status st = gf_maxpool_forward(ctx, &s->p, in[0], NULL, s->arg2);
    return st != GF_OK ? st : gf_maxpool_backward(ctx, &s->p, s->arg2, u, g[0]);
}
static gf_status avgpool_fwd(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, cl_mem out) {
    (void)rw;
    return gf_avgpool_forward(ctx, pool_of(T), in[0], out);
}
static gf_status avgpool_tan(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, const cl_mem *tin, cl_mem out) {
    (void)rw; (void)in;
    return gf_avgpool_tangent(ctx, pool_of(T), tin[0], out);
}
static gf_status avgpool_bwd(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, cl_mem u, const cl_mem *g, int acc) {
    (void)rw; (void)in; (void)acc;
    return gf_avgpool_backward(ctx, pool_of(T), u, g[0]);
}
/* The argmax equals the reference's (the first maximum in row-major window order); the argmax-only path
 * gives the same argmax and the output-only path (inference) the same output. */
static void maxpool_extra(gf_ctx *ctx, const row *rw, const tensors *T, const results *res, const char *name) {
    (void)rw;
    const pool_state *s = T->state;
    const size_t no = T->n_out;
    int *arg = malloc(no * sizeof *arg), *darg = malloc(no * sizeof *darg), *darg2 = malloc(no * sizeof *darg2);
    double *y = dalloc(no);
    ref_pool(&s->p, T->xd[0], 1, y, arg);
    REQUIRE_OK(ctx, gf_buf_read(ctx, s->arg, 0, no * sizeof(int), darg));   /* the driver's forward wrote it */
    CHECK(memcmp(arg, darg, no * sizeof(int)) == 0, "%s: argmax differs from the reference", name);
    REQUIRE_OK(ctx, gf_maxpool_forward(ctx, &s->p, T->bx[0], NULL, s->arg2));
    REQUIRE_OK(ctx, gf_buf_read(ctx, s->arg2, 0, no * sizeof(int), darg2));
    CHECK(memcmp(darg, darg2, no * sizeof(int)) == 0, "%s: argmax-only path differs", name);
    cl_mem by = nan_buffer(ctx, no);
    REQUIRE_OK(ctx, gf_maxpool_forward(ctx, &s->p, T->bx[0], by, NULL));
    float *y2 = download(ctx, by, no);
    CHECK(memcmp(res->y, y2, no * 4) == 0, "%s: output-only path differs", name);
    free(arg); free(darg); free(darg2); free(y); free(y2);
    gf_buf_release(&by);
}
/* Ties (FD is invalid there, so only the convention is checked): a constant map and a map of few distinct
 * values; the first maximum in row-major window order must win, and the gradient must go to that element
 * only. Geometry: PyTorch and TF SAME/VALID output sizes and pads, refusals. */
static void maxpool_once(gf_ctx *ctx) {
    gf_pool2d p;
    REQUIRE_OK(ctx, gf_pool2d_init(ctx, &p, 2, 3, 7, 8, 3, 3, 2, 2, 1, 1));
    size_t ni = gf_pool2d_in_count(&p), no = gf_pool2d_out_count(&p);
    float *x = falloc(ni), *g = falloc(no), *gi = falloc(ni), *y = falloc(no);
    double *xd = dalloc(ni), *ref = dalloc(ni), *yr = dalloc(no), *gd = dalloc(no);
    int *arg = malloc(no * sizeof(int)), *darg = malloc(no * sizeof(int));
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < ni; i++) x[i] = pass == 0 ? 1.5f : (float)((i * 7) % 3);
        for (size_t i = 0; i < ni; i++) xd[i] = x[i];
        for (size_t o = 0; o < no; o++) { g[o] = (float)(o % 5) + 1; gd[o] = g[o]; }
        ref_pool(&p, xd, 1, yr, arg);
        cl_mem bx = test_upload(ctx, x, ni), by = test_alloc(ctx, no), ba = test_alloc(ctx, no);
        cl_mem bg = test_upload(ctx, g, no), bgi = test_alloc(ctx, ni);
        REQUIRE_OK(ctx, gf_maxpool_forward(ctx, &p, bx, by, ba));
        REQUIRE_OK(ctx, gf_maxpool_backward(ctx, &p, ba, bg, bgi));
        REQUIRE_OK(ctx, gf_buf_read(ctx, ba, 0, no * sizeof(int), darg));
        test_download(ctx, by, y, no);
        test_download(ctx, bgi, gi, ni);
        CHECK(memcmp(arg, darg, no * sizeof(int)) == 0, "ties pass %d: argmax is not the first maximum", pass);
        check_tol("maxpool ties", pass ? "forward (3 values)" : "forward (constant)", y, yr, NULL, no, EXACT);
        ref_maxpool_backward(&p, arg, gd, ref);
        check_tol("maxpool ties", pass ? "backward (3 values)" : "backward (constant)", gi, ref, NULL, ni, EXACT);
        gf_buf_release(&bx); gf_buf_release(&by); gf_buf_release(&ba); gf_buf_release(&bg); gf_buf_release(&bgi);
    }
    free(x); free(g); free(gi); free(y); free(xd); free(ref); free(yr); free(gd); free(arg); free(darg);
    /* TF SAME, 64 -> 32 with 3x3 stride 2 (the mini-Xception's pool): 1 pixel after only. */
    REQUIRE_OK(ctx, gf_pool2d_init_tf(ctx, &p, 1, 1, 64, 64, 3, 3, 2, 2, 1));
    CHECK(p.OH == 32 && p.OW == 32 && p.pt == 0 && p.pb == 1 && p.pl == 0 && p.pr == 1 && !p.count_include_pad,
          "TF SAME 64/3/2: OH %d pads %d %d", p.OH, p.pt, p.pb);
    REQUIRE_OK(ctx, gf_pool2d_init_tf(ctx, &p, 1, 1, 9, 9, 3, 3, 2, 2, 1));
    CHECK(p.OH == 5 && p.pt == 1 && p.pb == 1, "TF SAME 9/3/2: OH %d pads %d %d", p.OH, p.pt, p.pb);
    REQUIRE_OK(ctx, gf_pool2d_init_tf(ctx, &p, 1, 1, 9, 9, 3, 3, 2, 2, 0));
    CHECK(p.OH == 4 && p.pt == 0 && p.pb == 0, "TF VALID 9/3/2: OH %d", p.OH);
    REQUIRE_OK(ctx, gf_pool2d_init(ctx, &p, 1, 1, 7, 7, 3, 3, 2, 2, 1, 1));
    CHECK(p.OH == 4 && p.count_include_pad, "PyTorch 7/3/2/1: OH %d", p.OH);
    CHECK(gf_pool2d_init(ctx, &p, 1, 1, 7, 7, 3, 3, 2, 2, 3, 3) == GF_ERR_USAGE, "pad >= kernel accepted");
    CHECK(gf_pool2d_init(ctx, &p, 1, 1, 2, 2, 3, 3, 1, 1, 0, 0) == GF_ERR_USAGE, "window larger than input accepted");
    CHECK(gf_pool2d_init_tf(ctx, &p, 1, 1, 2, 2, 3, 3, 1, 1, 0) == GF_ERR_USAGE, "TF VALID empty output accepted");
}
static const op_def OP_MAXPOOL = {.name = "maxpool", .describe = maxpool_describe, .shape = pool_shape,
    .fill = pool_fill, .tols = maxpool_tols, .ref = maxpool_ref, .fwd = maxpool_fwd, .tan = maxpool_tan,
    .ref_tan = maxpool_ref_tan, .bwd = maxpool_bwd, .ref_bwd = maxpool_ref_bwd, .extra = maxpool_extra,
    .once = maxpool_once, .release = pool_release};
static const op_def OP_AVGPOOL = {.name = "avgpool", .flags = OP_IS_LINEAR, .describe = avgpool_describe,
    .shape = pool_shape, .fill = pool_fill, .tols = avgpool_tols, .ref = avgpool_ref, .fwd = avgpool_fwd,
    .tan = avgpool_tan, .bwd = avgpool_bwd, .ref_bwd = avgpool_ref_bwd, .release = pool_release};

/* ---------------- gap: global average pool (cl/pool.cl); a = {NC, HW} ----------------
 * Forward and tangent (the same op: linear) 1e-6 + 1e-5 |ref|; backward 1e-7 + 1e-6 |ref|; FD 1e-5 + 1e-5;
 * adjoint 1e-4. Planes of 1, 7x7 (gap_forward_small), 300, 64, 4099 and 9x9 (a work-group tree per plane). */

static void gap_describe(const row *rw, char *b, size_t n) { snprintf(b, n, "gap NC=%d HW=%d", rw->a[0], rw->a[1]); }
static void gap_shape(gf_ctx *ctx, const row *rw, tensors *T) {
    (void)ctx;
    T->n_in = 1; T->n[0] = (size_t)rw->a[0] * rw->a[1]; T->n_out = (size_t)rw->a[0]; T->diff[0] = 1;
}
static void gap_fill(gf_ctx *ctx, const row *rw, tensors *T, test_rng *r) {
    (void)ctx; (void)rw;
    uniform(r, T->x[0], T->n[0], -2, 2);
}
static void gap_tols(const row *rw, tols *t) {
    (void)rw;
    t->fwd = t->tan = (tol){1e-6, 1e-5, 0};
    t->bwd[0] = (tol){1e-7, 1e-6, 0};
    t->fd = (tol){1e-5, 1e-5, 0};
    t->adj = 1e-4;
}
static void gap_ref(const row *rw, const tensors *T, const double *const *in, double *out) {
    (void)T;
    ref_gap((size_t)rw->a[0], (size_t)rw->a[1], in[0], out);
}
static void gap_ref_bwd(const row *rw, const tensors *T, const double *const *in, const double *u, double *const *g) {
    (void)T; (void)in;
    ref_gap_backward((size_t)rw->a[0], (size_t)rw->a[1], u, g[0]);
}
static gf_status gap_fwd(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, cl_mem out) {
    (void)T;
    return gf_gap_forward(ctx, (size_t)rw->a[0], (size_t)rw->a[1], in[0], out);
}
static gf_status gap_tan(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, const cl_mem *tin, cl_mem out) {
    (void)T; (void)in;
    return gf_gap_tangent(ctx, (size_t)rw->a[0], (size_t)rw->a[1], tin[0], out);
}
static gf_status gap_bwd(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, cl_mem u, const cl_mem *g, int acc) {
    (void)T; (void)in; (void)acc;
    return gf_gap_backward(ctx, (size_t)rw->a[0], (size_t)rw->a[1], u, g[0]);
}
static const op_def OP_GAP = {.name = "gap", .flags = OP_IS_LINEAR, .describe = gap_describe, .shape = gap_shape,
    .fill = gap_fill, .tols = gap_tols, .ref = gap_ref, .fwd = gap_fwd, .tan = gap_tan, .bwd = gap_bwd,
    .ref_bwd = gap_ref_bwd};

/* ---------------- xent / bce: losses (cl/loss.cl) ----------------
 * The output is {mean loss, correct count} reduced on the device; the gradient w.r.t. the logits comes with
 * it (backward: d loss / d z, u = e_0). Loss 1e-6 + 2e-6 |ref| (which also holds a count below 10^5 exact);
 * gradient 1e-7 + 1e-5 |ref| vs the reference and 1e-6 + 1e-4 |ref| vs central differences of the
 * reference loss (step 1e-4 in double: truncation ~1e-8 relative; every entry, or about 1000 of a large
 * one). xent: a = {B, K, ignored rows}, f = {logit scale}; bce: a = {B, K, per_sample}, f = {scale}. */

typedef struct loss_state {
    int *labels;   /* xent */
    cl_mem blabels;
} loss_state;

static void loss_tols(const row *rw, tols *t) {
    (void)rw;
    t->fwd = (tol){1e-6, 2e-6, 0};
    t->bwd[0] = (tol){1e-7, 1e-5, 0};
    t->bwd_fd = (tol){1e-6, 1e-4, 0};
}
static void loss_release(tensors *T) {
    loss_state *s = T->state;
    free(s->labels);
    gf_buf_release(&s->blabels);
    free(s);
}
static void xent_describe(const row *rw, char *b, size_t n) {
    snprintf(b, n, "xent B=%d K=%d scale %g%s", rw->a[0], rw->a[1], rw->f[0], rw->a[2] ? " (ignored rows)" : "");
}
static void xent_shape(gf_ctx *ctx, const row *rw, tensors *T) {
    (void)ctx;
    T->n_in = 1; T->n[0] = (size_t)rw->a[0] * rw->a[1]; T->diff[0] = 1; T->n_out = 2;
    T->state = calloc(1, sizeof(loss_state));
}
/* logits in [-scale, scale]; every third row ignored (label -1) when asked; the label's logit pushed up
 * in every other row, so that some rows are right */
static void xent_fill(gf_ctx *ctx, const row *rw, tensors *T, test_rng *r) {
    const int B = rw->a[0], K = rw->a[1];
    const double scale = rw->f[0];
    loss_state *s = T->state;
    float *z = T->x[0];
    s->labels = malloc((size_t)B * sizeof(int));
    uniform(r, z, T->n[0], -scale, scale);
    for (int i = 0; i < B; i++) {
        s->labels[i] = (int)test_uniform(r, 0, K);
        if (rw->a[2] && i % 3 == 1) s->labels[i] = -1;
        if (i % 2 == 0 && s->labels[i] >= 0) z[(size_t)i * K + s->labels[i]] += (float)scale;
    }
    REQUIRE_OK(ctx, gf_buf_create_from(ctx, (size_t)B * sizeof(int), s->labels, "labels", &s->blabels));
}
static void xent_ref(const row *rw, const tensors *T, const double *const *in, double *out) {
    out[0] = ref_xent(rw->a[0], rw->a[1], in[0], ((loss_state *)T->state)->labels, NULL, &out[1]);
}
static void xent_ref_bwd(const row *rw, const tensors *T, const double *const *in, const double *u, double *const *g) {
    ref_xent(rw->a[0], rw->a[1], in[0], ((loss_state *)T->state)->labels, g[0], NULL);
    for (size_t i = 0; i < T->n[0]; i++) g[0][i] *= u[0];
}
static gf_status xent_fwd(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, cl_mem out) {
    return gf_softmax_xent(ctx, rw->a[0], rw->a[1], in[0], ((loss_state *)T->state)->blabels, NULL, out, 0, 0);
}
static gf_status xent_bwd(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, cl_mem u, const cl_mem *g, int acc) {
    (void)u; (void)acc;
    cl_mem out = test_alloc(ctx, 2);
    gf_status st = gf_softmax_xent(ctx, rw->a[0], rw->a[1], in[0], ((loss_state *)T->state)->blabels, g[0], out, 0, 0);
    gf_buf_release(&out);
    return st;
}
/* At an offset (out[1..2]: out[0] and out[3] untouched); accumulate adds loss and count; the gradient
 * written over the logits (in place); the top-1 count alone. */
static void xent_extra(gf_ctx *ctx, const row *rw, const tensors *T, const results *res, const char *name) {
    const int B = rw->a[0], K = rw->a[1];
    const size_t n = T->n[0];
    const loss_state *s = T->state;
    float out[4], init[4] = {11, 22, 33, 44};
    cl_mem bo = test_upload(ctx, init, 4), bg = test_alloc(ctx, n);
    REQUIRE_OK(ctx, gf_softmax_xent(ctx, B, K, T->bx[0], s->blabels, bg, bo, 1, 0));
    test_download(ctx, bo, out, 4);
    CHECK(out[1] == res->y[0] && out[2] == res->y[1], "%s: at offset 1: %g %g, at 0: %g %g", name, out[1], out[2],
          res->y[0], res->y[1]);
    CHECK(out[0] == 11 && out[3] == 44, "%s: wrote outside out[off..off+1]", name);
    REQUIRE_OK(ctx, gf_softmax_xent(ctx, B, K, T->bx[0], s->blabels, NULL, bo, 1, 1));
    test_download(ctx, bo, out, 4);
    CHECK(out[1] == res->y[0] + res->y[0] && out[2] == 2 * res->y[1], "%s: accumulate gives %g %g", name, out[1], out[2]);
    cl_mem bzz = test_upload(ctx, T->x[0], n);
    REQUIRE_OK(ctx, gf_softmax_xent(ctx, B, K, bzz, s->blabels, bzz, bo, 1, 0));
    float *g2 = download(ctx, bzz, n);
    CHECK(memcmp(res->g[0], g2, n * 4) == 0, "%s: in-place gradient differs", name);
    REQUIRE_OK(ctx, gf_top1_count(ctx, B, K, T->bx[0], s->blabels, bo, 3, 0));
    test_download(ctx, bo, out, 4);
    CHECK(out[3] == res->y[1], "%s: top1_count %g want %g", name, out[3], res->y[1]);
    free(g2);
    gf_buf_release(&bo); gf_buf_release(&bg); gf_buf_release(&bzz);
}
/* Huge logits: the naive forms overflow exp() in float (exp(89) = inf); the stable ones must give finite,
 * exact-looking answers. B = 0 is refused. */
static void loss_once(gf_ctx *ctx) {
    const float z[6] = {1000.0f, -1000.0f, 0.0f, 100.0f, 99.0f, -50.0f};
    const int y[2] = {1, 0};
    cl_mem bz = test_upload(ctx, z, 6), bg = test_alloc(ctx, 6), bo = test_alloc(ctx, 2), by;
    REQUIRE_OK(ctx, gf_buf_create_from(ctx, sizeof y, y, "labels", &by));
    float out[2], g[6];
    REQUIRE_OK(ctx, gf_softmax_xent(ctx, 2, 3, bz, by, bg, bo, 0, 0));
    test_download(ctx, bo, out, 2);
    test_download(ctx, bg, g, 6);
    double zd[6], rg[6], rc, td[6];
    for (int i = 0; i < 6; i++) zd[i] = z[i];
    double rl = ref_xent(2, 3, zd, y, rg, &rc);
    const tol loss = {1e-6, 1e-6, 0}, grad = {1e-7, 1e-5, 0};
    check_tol("xent huge logits", "loss", out, &rl, NULL, 1, loss);
    check_tol("xent huge logits", "gradient", g, rg, NULL, 6, grad);
    CHECK(out[1] == (float)rc && rc == 1, "xent huge logits: correct %g want %g", out[1], rc);
    const float t[6] = {0, 1, 1, 0, 1, 0};
    for (int i = 0; i < 6; i++) td[i] = t[i];
    cl_mem bt = test_upload(ctx, t, 6);
    REQUIRE_OK(ctx, gf_sigmoid_bce(ctx, 1, 6, bz, bt, bg, bo, 0, 0, 1));
    test_download(ctx, bo, out, 2);
    test_download(ctx, bg, g, 6);
    double rl2 = ref_bce(1, 6, zd, td, 1, rg, &rc);
    check_tol("bce huge logits", "loss", out, &rl2, NULL, 1, loss);
    check_tol("bce huge logits", "gradient", g, rg, NULL, 6, grad);
    CHECK(out[1] == (float)rc, "bce huge logits correct %g want %g", out[1], rc);
    CHECK(gf_softmax_xent(ctx, 0, 3, bz, by, bg, bo, 0, 0) == GF_ERR_USAGE, "B = 0 accepted");
    gf_buf_release(&bz); gf_buf_release(&bg); gf_buf_release(&bo); gf_buf_release(&by); gf_buf_release(&bt);
}
static const op_def OP_XENT = {.name = "xent", .flags = OP_LOSS | OP_BWD_FD, .describe = xent_describe,
    .shape = xent_shape, .fill = xent_fill, .tols = loss_tols, .ref = xent_ref, .fwd = xent_fwd, .bwd = xent_bwd,
    .ref_bwd = xent_ref_bwd, .extra = xent_extra, .once = loss_once, .release = loss_release};

static void bce_describe(const row *rw, char *b, size_t n) {
    snprintf(b, n, "bce B=%d K=%d scale %g per_sample %d", rw->a[0], rw->a[1], rw->f[0], rw->a[2]);
}
/* inputs: the logits and the targets (not differentiated) */
static void bce_shape(gf_ctx *ctx, const row *rw, tensors *T) {
    (void)ctx;
    T->n_in = 2; T->n[0] = T->n[1] = (size_t)rw->a[0] * rw->a[1]; T->diff[0] = 1; T->n_out = 2;
    T->state = calloc(1, sizeof(loss_state));
}
/* targets 1 and 0, about 10% ignored (-1) */
static void bce_fill(gf_ctx *ctx, const row *rw, tensors *T, test_rng *r) {
    (void)ctx;
    uniform(r, T->x[0], T->n[0], -rw->f[0], rw->f[0]);
    for (size_t i = 0; i < T->n[1]; i++) {
        double v = test_uniform(r, 0, 1);
        T->x[1][i] = v < 0.1 ? -1.0f : (v < 0.55 ? 1.0f : 0.0f);
    }
}
static void bce_ref(const row *rw, const tensors *T, const double *const *in, double *out) {
    (void)T;
    out[0] = ref_bce(rw->a[0], rw->a[1], in[0], in[1], rw->a[2], NULL, &out[1]);
}
static void bce_ref_bwd(const row *rw, const tensors *T, const double *const *in, const double *u, double *const *g) {
    ref_bce(rw->a[0], rw->a[1], in[0], in[1], rw->a[2], g[0], NULL);
    for (size_t i = 0; i < T->n[0]; i++) g[0][i] *= u[0];
}
static gf_status bce_fwd(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, cl_mem out) {
    (void)T;
    return gf_sigmoid_bce(ctx, rw->a[0], rw->a[1], in[0], in[1], NULL, out, 0, 0, rw->a[2]);
}
static gf_status bce_bwd(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, cl_mem u, const cl_mem *g, int acc) {
    (void)T; (void)u; (void)acc;
    cl_mem out = test_alloc(ctx, 2);
    gf_status st = gf_sigmoid_bce(ctx, rw->a[0], rw->a[1], in[0], in[1], g[0], out, 0, 0, rw->a[2]);
    gf_buf_release(&out);
    return st;
}
/* the gradient written over the logits (in place); accumulate adds loss and count */
static void bce_extra(gf_ctx *ctx, const row *rw, const tensors *T, const results *res, const char *name) {
    const size_t n = T->n[0];
    float out[2];
    cl_mem bzz = test_upload(ctx, T->x[0], n), bo = test_alloc(ctx, 2);
    REQUIRE_OK(ctx, gf_sigmoid_bce(ctx, rw->a[0], rw->a[1], bzz, T->bx[1], bzz, bo, 0, 0, rw->a[2]));
    float *g2 = download(ctx, bzz, n);
    CHECK(memcmp(res->g[0], g2, n * 4) == 0, "%s: in-place gradient differs", name);
    REQUIRE_OK(ctx, gf_sigmoid_bce(ctx, rw->a[0], rw->a[1], T->bx[0], T->bx[1], NULL, bo, 0, 1, rw->a[2]));
    test_download(ctx, bo, out, 2);
    CHECK(out[0] == res->y[0] + res->y[0] && out[1] == 2 * res->y[1], "%s: accumulate gives %g %g", name, out[0], out[1]);
    free(g2);
    gf_buf_release(&bzz); gf_buf_release(&bo);
}
static const op_def OP_BCE = {.name = "bce", .flags = OP_LOSS | OP_BWD_FD, .describe = bce_describe,
    .shape = bce_shape, .fill = bce_fill, .tols = loss_tols, .ref = bce_ref, .fwd = bce_fwd, .bwd = bce_bwd,
    .ref_bwd = bce_ref_bwd, .extra = bce_extra, .release = loss_release};

/* ---------------- conv / linear: the affine family (cl/conv.cl, GEMMs) ----------------
 * conv: a = {n, c_in, h, w, c_out, kh, kw, sh, sw, pt, pb, pl, pr, dil, groups, same, max_workspace}
 * (same: TF SAME pads from kh and sh on both axes; max_workspace: bytes per scratch slot, to force chunked
 * batches); linear: a = {n, in, out}. Inputs x, W, b; every check runs under each kernel-path variant.
 * Tolerance: |got - ref| <= 1e-5 (1 + S), S the same sum over |terms| (the reference on |inputs|): fp32
 * accumulation error is a few eps S, a missing or wrong term costs about S / terms, far above 1e-5 S here.
 * Adjoint 1e-4 of max(|<Jv,u>|, |<v,J^T u>|, sum |Jv_i u_i|) (the large planes sum 10^5 terms). */

typedef struct affine_state { gf_conv_desc d; } affine_state;

static int is_linear(const row *rw);
static void conv_describe(const row *rw, char *b, size_t n) {
    const int *a = rw->a;
    if (is_linear(rw)) { snprintf(b, n, "linear %s: n %d, %d -> %d", rw->note, a[0], a[1], a[2]); return; }
    snprintf(b, n, "conv %s: %dx%dx%dx%d -> %d, k%dx%d s%dx%d%s, dil %d, groups %d", rw->note, a[0], a[1], a[2], a[3],
             a[4], a[5], a[6], a[7], a[8], a[15] ? " SAME" : "", a[13], a[14]);
}
static void conv_shape(gf_ctx *ctx, const row *rw, tensors *T) {
    const int *a = rw->a;
    affine_state *s = calloc(1, sizeof *s);
    gf_conv_desc *d = &s->d;
    if (is_linear(rw)) {   /* the reference's view: a 1x1 convolution of 1x1 images */
        REQUIRE_OK(ctx, gf_conv_desc_init(ctx, d, a[0], a[1], 1, 1, a[2], 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1));
    } else {
        int pt = a[9], pb = a[10], pl = a[11], pr = a[12];
        if (a[15]) {
            gf_conv_same_pads(a[2], a[5], a[7], a[13], &pt, &pb);
            gf_conv_same_pads(a[3], a[6], a[8], a[13], &pl, &pr);
        }
        REQUIRE_OK(ctx, gf_conv_desc_init(ctx, d, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], pt, pb, pl, pr,
                                          a[13], a[13], a[14]));
        d->max_workspace = (size_t)a[16];
        d->variant = current_variant->conv_variant;
    }
    T->n_in = 3;
    T->n[0] = (size_t)d->n * d->c_in * d->h_in * d->w_in;
    T->n[1] = (size_t)d->c_out * (d->c_in / d->groups) * d->kh * d->kw;
    T->n[2] = (size_t)d->c_out;
    T->diff[0] = T->diff[1] = T->diff[2] = 1;
    T->n_out = (size_t)d->n * d->c_out * d->h_out * d->w_out;
    T->state = s;
}
static void conv_release(tensors *T) { free(T->state); }
static void conv_tols(const row *rw, tols *t) {
    (void)rw;
    const tol s = {1e-5, 0, 1e-5};
    t->fwd = t->tan = t->fd = t->lin = t->bwd[0] = t->bwd[1] = t->bwd[2] = s;
    t->adj = 1e-4;
}
static const gf_conv_desc *desc_of(const tensors *T) { return &((const affine_state *)T->state)->d; }
static void conv_ref(const row *rw, const tensors *T, const double *const *in, double *out) {
    (void)rw;
    ref_conv(desc_of(T), in[0], in[1], in[2], out);
}
/* t = Wt x + bt + W t_x, the terms of the moving inputs (bilinear: exact) */
static void conv_ref_tan(const row *rw, const tensors *T, const double *const *in, const double *const *tin, double *out) {
    (void)rw;
    const gf_conv_desc *d = desc_of(T);
    double *part = dalloc(T->n_out), *zero = dalloc(T->n[1] > T->n[0] ? T->n[1] : T->n[0]);
    ref_conv(d, in[0], tin[1] ? tin[1] : zero, tin[2], out);
    if (tin[0]) {
        ref_conv(d, tin[0], in[1], NULL, part);
        for (size_t i = 0; i < T->n_out; i++) out[i] += part[i];
    }
    free(part); free(zero);
}
static void conv_ref_bwd(const row *rw, const tensors *T, const double *const *in, const double *u, double *const *g) {
    (void)rw;
    ref_conv_backward(desc_of(T), in[0], in[1], u, g[0], g[1], g[2]);
}
static gf_status affine_fwd_b(gf_ctx *ctx, const row *rw, const tensors *T, cl_mem x, cl_mem W, cl_mem b, cl_mem y) {
    const int *a = rw->a;
    return is_linear(rw) ? gf_linear_forward(ctx, a[0], a[1], a[2], x, W, b, y) : gf_conv2d_forward(ctx, desc_of(T), x, W, b, y);
}
static gf_status conv_fwd(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, cl_mem out) {
    return affine_fwd_b(ctx, rw, T, in[0], in[1], in[2], out);
}
/* the API's terms: Wt x needs x, W t_x needs W */
static gf_status conv_tan(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, const cl_mem *tin, cl_mem out) {
    const int *a = rw->a;
    cl_mem x = tin[1] ? in[0] : NULL, W = tin[0] ? in[1] : NULL;
    return is_linear(rw) ? gf_linear_tangent(ctx, a[0], a[1], a[2], x, tin[1], tin[2], W, tin[0], out)
                         : gf_conv2d_tangent(ctx, desc_of(T), x, tin[1], tin[2], W, tin[0], out);
}
/* gx needs no x, gW needs no W: each is passed only for the gradient that reads it */
static gf_status conv_bwd(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, cl_mem u, const cl_mem *g, int acc) {
    const int *a = rw->a;
    cl_mem x = g[1] ? in[0] : NULL, W = g[0] ? in[1] : NULL;
    return is_linear(rw) ? gf_linear_backward(ctx, a[0], a[1], a[2], x, W, u, g[0], g[1], g[2], acc)
                         : gf_conv2d_backward(ctx, desc_of(T), x, W, u, g[0], g[1], g[2], acc);
}
/* The forward without bias; the tangent of the first linearized layer (Wt x + bt: no input tangent). */
static void conv_extra(gf_ctx *ctx, const row *rw, const tensors *T, const results *res, const char *name) {
    const size_t no = T->n_out;
    const tol t = {1e-5, 0, 1e-5};
    double *ref = dalloc(no), *S = dalloc(no), *ax = dalloc(T->n[0]), *aW = dalloc(T->n[1]);
    double *ab = dalloc(T->n[2]), *avW = dalloc(T->n[1]), *avb = dalloc(T->n[2]), *vW = dalloc(T->n[1]), *vb = dalloc(T->n[2]);
    for (size_t i = 0; i < T->n[0]; i++) ax[i] = fabs(T->xd[0][i]);
    for (size_t i = 0; i < T->n[1]; i++) { aW[i] = fabs(T->xd[1][i]); vW[i] = res->v[1][i]; avW[i] = fabs(vW[i]); }
    for (size_t i = 0; i < T->n[2]; i++) { ab[i] = fabs(T->xd[2][i]); vb[i] = res->v[2][i]; avb[i] = fabs(vb[i]); }
    cl_mem by = nan_buffer(ctx, no);
    REQUIRE_OK(ctx, affine_fwd_b(ctx, rw, T, T->bx[0], T->bx[1], NULL, by));
    float *got = download(ctx, by, no);
    ref_conv(desc_of(T), T->xd[0], T->xd[1], NULL, ref);
    ref_conv(desc_of(T), ax, aW, NULL, S);
    check_tol(name, "forward (no bias)", got, ref, S, no, t);
    free(got);
    cl_mem bvW = test_upload(ctx, res->v[1], T->n[1]), bvb = test_upload(ctx, res->v[2], T->n[2]);
    const cl_mem in3[3] = {T->bx[0], T->bx[1], T->bx[2]}, tin[3] = {NULL, bvW, bvb};
    REQUIRE_OK(ctx, gf_fill(ctx, no, NAN, by));
    REQUIRE_OK(ctx, conv_tan(ctx, rw, T, in3, tin, by));
    got = download(ctx, by, no);
    ref_conv(desc_of(T), T->xd[0], vW, vb, ref);
    ref_conv(desc_of(T), ax, avW, avb, S);
    check_tol(name, "tangent Wt x + bt", got, ref, S, no, t);
    free(got);
    gf_buf_release(&by); gf_buf_release(&bvW); gf_buf_release(&bvb);
    free(ref); free(S); free(ax); free(aW); free(ab); free(avW); free(avb); free(vW); free(vb);
}

/* BatchNorm folding: conv with the folded weights (host reference and device) vs conv then BN in double;
 * in place (b_out == b_in); a negative variance refused. */
static void conv_bn_fold(gf_ctx *ctx) {
    test_rng r;
    test_rng_seed(&r, 99);
    const tol t = {1e-5, 0, 1e-5};
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        gf_conv_desc d;
        REQUIRE_OK(ctx, gf_conv_desc_init(ctx, &d, 3, 5, 7, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1));
        const int co = d.c_out;
        const size_t nx = (size_t)d.n * d.c_in * d.h_in * d.w_in, nw = (size_t)co * d.c_in * 9, per = nw / co;
        const size_t ny = (size_t)d.n * co * d.h_out * d.w_out, P = (size_t)d.h_out * d.w_out;
        float *x = falloc(nx), *W = falloc(nw), b[16], bf[16], gamma[16], beta[16], mean[16], var[16];
        const float eps = 1e-5f;
        uniform(&r, x, nx, -1, 1);
        uniform(&r, W, nw, -1, 1);
        uniform(&r, b, co, -1, 1);
        for (int o = 0; o < co; o++) {
            gamma[o] = (float)test_uniform(&r, 0.5, 2.0) * (o % 2 ? -1.0f : 1.0f);
            beta[o] = (float)test_uniform(&r, -1, 1);
            mean[o] = (float)test_uniform(&r, -1, 1);
            var[o] = (float)test_uniform(&r, 0.1, 3.0);
        }
        double *xd = dalloc(nx), *Wd = dalloc(nw), bd[16], *y = dalloc(ny), *S = dalloc(ny), *yf = dalloc(ny);
        double *ax = dalloc(nx), *aW = dalloc(nw), ab[16], bfd[16];
        for (size_t i = 0; i < nx; i++) { xd[i] = x[i]; ax[i] = fabs(x[i]); }
        for (size_t i = 0; i < nw; i++) Wd[i] = W[i];
        for (int o = 0; o < co; o++) bd[o] = b[o];
        ref_conv(&d, xd, Wd, with_bias ? bd : NULL, y);
        for (size_t i = 0; i < ny; i++) {
            const int o = (int)((i / P) % co);
            y[i] = (y[i] - mean[o]) / sqrt((double)var[o] + eps) * gamma[o] + beta[o];
        }
        REQUIRE_OK(ctx, gf_bn_fold(ctx, W, with_bias ? b : NULL, bf, co, per, gamma, beta, mean, var, eps));
        for (size_t i = 0; i < nw; i++) { Wd[i] = W[i]; aW[i] = fabs(W[i]); }
        for (int o = 0; o < co; o++) { bfd[o] = bf[o]; ab[o] = fabs(bf[o]); }
        ref_conv(&d, xd, Wd, bfd, yf);
        ref_conv(&d, ax, aW, ab, S);
        double worst = 0;
        for (size_t i = 0; i < ny; i++) worst = fmax(worst, fabs(yf[i] - y[i]) / (1e-5 * (1 + S[i])));
        CHECK(worst <= 1.0, "bn fold (bias %d): folded conv vs conv+BN, err %.3g x tolerance", with_bias, worst);
        char name[64];
        snprintf(name, sizeof name, "bn fold (bias %d)", with_bias);
        cl_mem dx = test_upload(ctx, x, nx), dW = test_upload(ctx, W, nw), db = test_upload(ctx, bf, co);
        cl_mem dy = nan_buffer(ctx, ny);
        REQUIRE_OK(ctx, gf_conv2d_forward(ctx, &d, dx, dW, db, dy));
        float *got = download(ctx, dy, ny);
        check_tol(name, "device conv with folded weights vs conv+BN", got, y, S, ny, t);
        if (with_bias) {
            float b2[16], *W2 = falloc(nw);
            memcpy(b2, b, (size_t)co * sizeof *b2);
            uniform(&r, W2, nw, -1, 1);
            REQUIRE_OK(ctx, gf_bn_fold(ctx, W2, b2, b2, co, per, gamma, beta, mean, var, eps));
            CHECK(!memcmp(b2, bf, (size_t)co * sizeof *b2), "bn fold: in-place bias differs");
            free(W2);
        }
        free(x); free(W); free(xd); free(Wd); free(y); free(S); free(yf); free(ax); free(aW); free(got);
        gf_buf_release(&dx); gf_buf_release(&dW); gf_buf_release(&db); gf_buf_release(&dy);
    }
    float W[4] = {1, 2, 3, 4}, bo[1], g1[1] = {1}, be[1] = {0}, mu[1] = {0}, v[1] = {-1};
    CHECK(gf_bn_fold(ctx, W, NULL, bo, 1, 4, g1, be, mu, v, 1e-5f) == GF_ERR_INPUT, "bn fold: negative var accepted");
}
/* Descriptor validation, TF SAME pads and SAME output sizes, a too small output buffer; BN folding. */
static void conv_once(gf_ctx *ctx) {
    gf_conv_desc d;
    CHECK(gf_conv_desc_simple(ctx, &d, 1, 6, 5, 5, 4, 3, 1, 1, 1, 4) == GF_ERR_USAGE, "groups 4 with c_in 6 accepted");
    CHECK(strstr(gf_ctx_last_error(ctx), "groups") != NULL, "message does not name groups: %s", gf_ctx_last_error(ctx));
    CHECK(gf_conv_desc_simple(ctx, &d, 1, 3, 4, 4, 4, 7, 1, 0, 1, 1) == GF_ERR_USAGE, "kernel larger than input accepted");
    CHECK(gf_conv_desc_simple(ctx, &d, 1, 3, 4, 4, 4, 3, 0, 1, 1, 1) == GF_ERR_USAGE, "stride 0 accepted");
    CHECK(gf_conv_desc_simple(ctx, &d, 0, 3, 4, 4, 4, 3, 1, 1, 1, 1) == GF_ERR_USAGE, "batch 0 accepted");
    CHECK(gf_conv_desc_simple(ctx, &d, 1, 3, 4, 4, 4, 3, 1, -1, 1, 1) == GF_ERR_USAGE, "negative pad accepted");
    CHECK(gf_conv_desc_simple(NULL, &d, 1, 3, 4, 4, 4, 3, 1, -1, 1, 1) == GF_ERR_USAGE, "NULL ctx: negative pad accepted");
    REQUIRE_OK(ctx, gf_conv_desc_simple(ctx, &d, 1, 3, 4, 4, 4, 3, 1, 1, 1, 1));
    d.variant = 7;
    CHECK(gf_conv_desc_check(ctx, &d) == GF_ERR_USAGE, "unknown kernel variant accepted");
    REQUIRE_OK(ctx, gf_conv_desc_simple(ctx, &d, 2, 3, 9, 8, 4, 3, 2, 1, 2, 1));
    CHECK(d.h_out == 4 && d.w_out == 3, "dilated strided output %dx%d, want 4x3", d.h_out, d.w_out);
    /* TF SAME pads: total = max((ceil(in/s)-1)*s + (k-1)*d + 1 - in, 0), extra at the end */
    static const int same[][6] = {{10, 3, 2, 1, 0, 1}, {7, 3, 2, 1, 1, 1}, {8, 5, 2, 1, 1, 2}, {5, 1, 1, 1, 0, 0},
                                  {64, 3, 2, 1, 0, 1}, {9, 3, 1, 2, 2, 2}, {6, 4, 1, 1, 1, 2}, {5, 3, 4, 1, 1, 1}};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        int a, b;
        gf_conv_same_pads(same[i][0], same[i][1], same[i][2], same[i][3], &a, &b);
        CHECK(a == same[i][4] && b == same[i][5], "SAME pads in %d k %d s %d d %d: got (%d, %d) want (%d, %d)",
              same[i][0], same[i][1], same[i][2], same[i][3], a, b, same[i][4], same[i][5]);
    }
    /* the SAME rows of the table: output ceil(in / stride) */
    for (int i = 0; i < n_rows; i++) {
        const row *rw = &rows[i];
        if (strcmp(rw->op->name, "conv") || !rw->a[15]) continue;
        const int *a = rw->a;
        int pt, pb, pl, pr;
        gf_conv_same_pads(a[2], a[5], a[7], a[13], &pt, &pb);
        gf_conv_same_pads(a[3], a[6], a[8], a[13], &pl, &pr);
        gf_conv_desc e;
        REQUIRE_OK(ctx, gf_conv_desc_init(ctx, &e, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], pt, pb, pl, pr,
                                          a[13], a[13], a[14]));
        CHECK(e.h_out == (a[2] + a[7] - 1) / a[7] && e.w_out == (a[3] + a[8] - 1) / a[8],
              "conv %s: SAME output %dx%d, want %dx%d", rw->note, e.h_out, e.w_out, (a[2] + a[7] - 1) / a[7],
              (a[3] + a[8] - 1) / a[8]);
    }
    /* a too small output buffer is an error naming the tensor, not a crash */
    REQUIRE_OK(ctx, gf_conv_desc_simple(ctx, &d, 2, 3, 9, 8, 4, 3, 2, 1, 2, 1));
    cl_mem x = test_alloc(ctx, 2 * 3 * 9 * 8), W = test_alloc(ctx, 4 * 3 * 9), y = test_alloc(ctx, 10);
    CHECK(gf_conv2d_forward(ctx, &d, x, W, NULL, y) == GF_ERR_USAGE && strstr(gf_ctx_last_error(ctx), "y "),
          "small y accepted or message unclear: %s", gf_ctx_last_error(ctx));
    gf_buf_release(&x); gf_buf_release(&W); gf_buf_release(&y);
    /* the algorithm auto picks (GF_CONV_ALGO_*): Winograd only for 3x3 stride-1 dilation-1 ungrouped convs with
     * both channel counts >= GF_WINO_MIN_CHANNELS and >= GF_WINO_MIN_TILES 2x2 output tiles */
    static const struct { int n, c, hw, k, stride, dil, groups, algo, want; } auto_cases[] = {
        {64, 512, 7, 3, 1, 1, 1, 0, 1},    /* W1: 64 x 16 tiles */
        {32, 512, 7, 3, 1, 1, 1, 0, 1},    /* 512 tiles */
        {16, 512, 7, 3, 1, 1, 1, 0, 0},    /* 256 tiles */
        {64, 128, 28, 3, 1, 1, 1, 0, 0},   /* 128 channels */
        {64, 512, 7, 3, 2, 1, 1, 0, 0},    /* stride 2 */
        {64, 512, 9, 3, 1, 2, 1, 0, 0},    /* dilation 2 */
        {64, 512, 7, 3, 1, 1, 2, 0, 0},    /* groups 2 */
        {64, 512, 7, 1, 1, 1, 1, 0, 0},    /* 1x1 */
        {1, 4, 5, 3, 1, 1, 1, GF_CONV_ALGO_WINOGRAD, 1},
        {64, 512, 7, 3, 1, 1, 1, GF_CONV_ALGO_DIRECT, 0},
        {64, 512, 7, 3, 2, 1, 1, GF_CONV_ALGO_WINOGRAD, 0},   /* forced, but not a Winograd shape */
    };
    for (size_t i = 0; i < sizeof auto_cases / sizeof auto_cases[0]; i++) {
        REQUIRE_OK(ctx, gf_conv_desc_simple(ctx, &d, auto_cases[i].n, auto_cases[i].c, auto_cases[i].hw,
                                            auto_cases[i].hw, auto_cases[i].c, auto_cases[i].k, auto_cases[i].stride,
                                            auto_cases[i].k / 2 * auto_cases[i].dil, auto_cases[i].dil,
                                            auto_cases[i].groups));
        d.algo = auto_cases[i].algo;
        int want = auto_cases[i].want;
        if (!d.algo && current_variant->conv_algo) want = want && strcmp(current_variant->conv_algo, "direct");
        if (!d.algo && current_variant->conv_algo && !strcmp(current_variant->conv_algo, "winograd"))
            want = auto_cases[i].k == 3 && auto_cases[i].stride == 1 && auto_cases[i].dil == 1 && auto_cases[i].groups == 1;
        CHECK(gf_conv_uses_winograd(ctx, &d) == want, "conv algorithm case %zu: Winograd %d, want %d", i,
              gf_conv_uses_winograd(ctx, &d), want);
    }
    conv_bn_fold(ctx);
}
static const op_def OP_CONV = {.name = "conv", .variants = VARIANTS_AFFINE,
    .flags = OP_ACC | OP_GRAD_ALONE | OP_ADJ_ABS, .describe = conv_describe, .shape = conv_shape, .tols = conv_tols,
    .ref = conv_ref, .fwd = conv_fwd, .tan = conv_tan, .ref_tan = conv_ref_tan, .bwd = conv_bwd,
    .ref_bwd = conv_ref_bwd, .extra = conv_extra, .once = conv_once, .release = conv_release};
static const op_def OP_LINEAR = {.name = "linear", .variants = VARIANTS_AFFINE,
    .flags = OP_ACC | OP_GRAD_ALONE | OP_ADJ_ABS, .describe = conv_describe, .shape = conv_shape, .tols = conv_tols,
    .ref = conv_ref, .fwd = conv_fwd, .tan = conv_tan, .ref_tan = conv_ref_tan, .bwd = conv_bwd,
    .ref_bwd = conv_ref_bwd, .extra = conv_extra, .release = conv_release};
static int is_linear(const row *rw) { return rw->op == &OP_LINEAR; }

/* ---------------- bn_train / bn_eval: batch norm (cl/bn.cl); a = {n, c, hw, offset}, f = {eps, momentum} ----------------
 * Inputs x (a different mean and spread per channel, plus a common offset: E[x^2] - E[x]^2 would lose the
 * variance), gamma, beta; the running statistics are the row's state. Every check runs under each lane walk.
 * Tolerance: |got - ref| <= 1e-5 scale, scale = 1 + the magnitudes of the terms that make the value
 * (y: 1 + |gamma| (1 + |xhat|) + |beta|; dgamma: 1 + sum |dy xhat|; ...): fp32 rounding is a few 1e-7 scale,
 * a wrong or missing term costs far more. Training has no device tangent: its backward is checked against
 * central differences of <y, u> of the double reference (step 1e-4, exact to ~1e-9), every x, gamma and
 * beta (the batch statistics move with x). Eval mode is linear in x and in (gamma, beta): its tangent is
 * composed of eval forwards (x part: mean 0, beta 0; parameter part: gamma and beta moving). Every output
 * is also written into a buffer with 64 guard floats after it that must stay as they were. */

enum { BN_GUARD = 64 };
static const float BN_SENTINEL = 1234.5f;

typedef struct bn_state {
    float *dy;                 /* the backward's u */
    float *rm, *rv;            /* running statistics the row starts from */
    double *rmd, *rvd;
    cl_mem brm, brv, zero_c;   /* zero_c: c zeros (mean 0, beta 0) */
} bn_state;

static int bn_train_of(const row *rw);
static void bn_describe(const row *rw, char *b, size_t n) {
    snprintf(b, n, "bn_%s n=%d c=%d hw=%d offset=%d eps=%g momentum=%g", bn_train_of(rw) ? "train" : "eval", rw->a[0],
             rw->a[1], rw->a[2], rw->a[3], rw->f[0], rw->f[1]);
}
static void bn_shape(gf_ctx *ctx, const row *rw, tensors *T) {
    const int C = rw->a[1];
    bn_state *s = calloc(1, sizeof *s);
    T->n_in = 3;
    T->n[0] = T->n_out = (size_t)rw->a[0] * C * rw->a[2];
    T->n[1] = T->n[2] = (size_t)C;
    T->diff[0] = T->diff[1] = T->diff[2] = 1;
    s->zero_c = test_alloc(ctx, (size_t)C);
    T->state = s;
}
static void bn_release(tensors *T) {
    bn_state *s = T->state;
    free(s->dy); free(s->rm); free(s->rv); free(s->rmd); free(s->rvd);
    gf_buf_release(&s->brm); gf_buf_release(&s->brv); gf_buf_release(&s->zero_c);
    free(s);
}
static void bn_fill(gf_ctx *ctx, const row *rw, tensors *T, test_rng *r) {
    const int n = rw->a[0], C = rw->a[1], hw = rw->a[2];
    bn_state *s = T->state;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < C; k++)
            for (int j = 0; j < hw; j++)
                T->x[0][((size_t)i * C + k) * hw + j] = (float)(rw->a[3] + 0.3 * k + (0.5 + 0.2 * k) * test_uniform(r, -1, 1));
    s->dy = falloc(T->n_out);
    uniform(r, s->dy, T->n_out, -1, 1);
    uniform(r, T->x[1], (size_t)C, -1.5, 1.5);
    uniform(r, T->x[2], (size_t)C, -1, 1);
    s->rm = falloc((size_t)C); s->rv = falloc((size_t)C);
    s->rmd = dalloc((size_t)C); s->rvd = dalloc((size_t)C);
    uniform(r, s->rm, (size_t)C, -0.5, 0.5);
    uniform(r, s->rv, (size_t)C, 0.5, 2);
    for (int k = 0; k < C; k++) { s->rmd[k] = s->rm[k]; s->rvd[k] = s->rv[k]; }
    s->brm = test_upload(ctx, s->rm, (size_t)C);
    s->brv = test_upload(ctx, s->rv, (size_t)C);
}
static void bn_fill_u(const row *rw, const tensors *T, float *u) {
    (void)rw;
    memcpy(u, ((const bn_state *)T->state)->dy, T->n_out * sizeof *u);
}
static void bn_tols(const row *rw, tols *t) {
    (void)rw;
    const tol s = {0, 0, 1e-5};   /* S is the scale, 1 included */
    t->fwd = t->bwd[0] = t->bwd[1] = t->bwd[2] = t->bwd_fd = s;
    t->tan = t->fd = t->lin = (tol){1e-5, 1e-5, 0};
    t->adj = 1e-5;
    t->fd_all = 20000;
}
/* the statistics the op normalises with: the batch's (train) or the running ones (eval) */
static void bn_stats(const row *rw, const tensors *T, const double *x, double *mean, double *var) {
    const bn_state *s = T->state;
    if (bn_train_of(rw)) ref_bn_stats(rw->a[0], rw->a[1], rw->a[2], x, mean, var);
    else { memcpy(mean, s->rmd, (size_t)rw->a[1] * sizeof *mean); memcpy(var, s->rvd, (size_t)rw->a[1] * sizeof *var); }
}
static void bn_ref(const row *rw, const tensors *T, const double *const *in, double *out) {
    double *mean = dalloc((size_t)rw->a[1]), *var = dalloc((size_t)rw->a[1]);
    bn_stats(rw, T, in[0], mean, var);
    ref_bn_affine(rw->a[0], rw->a[1], rw->a[2], in[0], in[1], in[2], mean, var, rw->f[0], out);
    free(mean); free(var);
}
static void bn_scale_fwd(const row *rw, const tensors *T, double *S) {
    const int n = rw->a[0], C = rw->a[1], hw = rw->a[2];
    double *mean = dalloc((size_t)C), *var = dalloc((size_t)C);
    bn_stats(rw, T, T->xd[0], mean, var);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < C; k++)
            for (int j = 0; j < hw; j++) {
                size_t t = ((size_t)i * C + k) * hw + j;
                S[t] = 1 + fabs(T->xd[1][k]) * (1 + fabs((T->xd[0][t] - mean[k]) / sqrt(var[k] + rw->f[0]))) + fabs(T->xd[2][k]);
            }
    free(mean); free(var);
}
static void bn_ref_bwd_all(const row *rw, const tensors *T, const double *const *in, const double *u, double *const *g,
                           double *const *S) {
    const int C = rw->a[1];
    double *mean = dalloc((size_t)C), *var = dalloc((size_t)C), *scratch[3];
    for (int k = 0; k < 3; k++) scratch[k] = dalloc(T->n[k]);
    bn_stats(rw, T, in[0], mean, var);
    ref_bn_backward(rw->a[0], C, rw->a[2], in[0], u, in[1], mean, var, rw->f[0], bn_train_of(rw), g ? g[0] : scratch[0],
                    g ? g[1] : scratch[1], g ? g[2] : scratch[2], S ? S[0] : scratch[0], S ? S[1] : scratch[1],
                    S ? S[2] : scratch[2]);
    for (int k = 0; k < 3; k++) free(scratch[k]);
    free(mean); free(var);
}
static void bn_ref_bwd(const row *rw, const tensors *T, const double *const *in, const double *u, double *const *g) {
    bn_ref_bwd_all(rw, T, in, u, g, NULL);
}
static void bn_scale_bwd(const row *rw, const tensors *T, const double *u, double *const *S) {
    bn_ref_bwd_all(rw, T, (const double *const *)T->xd, u, NULL, S);
}
static gf_status bn_fwd(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, cl_mem out) {
    const bn_state *s = T->state;
    if (bn_train_of(rw))   /* no running or saved statistics: the op's output alone */
        return gf_bn_train_forward(ctx, rw->a[0], rw->a[1], rw->a[2], in[0], in[1], in[2], rw->f[0], rw->f[1], NULL, NULL,
                                   out, NULL, NULL);
    return gf_bn_eval_forward(ctx, rw->a[0], rw->a[1], rw->a[2], in[0], in[1], in[2], rw->f[0], s->brm, s->brv, out);
}
static gf_status bn_eval_tan(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, const cl_mem *tin, cl_mem out) {
    const bn_state *s = T->state;
    const int n = rw->a[0], C = rw->a[1], hw = rw->a[2];
    gf_status st = GF_OK;
    cl_mem part = test_alloc(ctx, T->n_out);
    if (tin[0]) st = gf_bn_eval_forward(ctx, n, C, hw, tin[0], in[1], s->zero_c, rw->f[0], s->zero_c, s->brv, out);
    else st = gf_fill(ctx, T->n_out, 0, out);
    if (st == GF_OK && (tin[1] || tin[2])) {
        st = gf_bn_eval_forward(ctx, n, C, hw, in[0], tin[1] ? tin[1] : s->zero_c, tin[2] ? tin[2] : s->zero_c, rw->f[0],
                                s->brm, s->brv, part);
        if (st == GF_OK) st = gf_add(ctx, T->n_out, out, part, out);
    }
    gf_buf_release(&part);
    return st;
}
static gf_status bn_bwd(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, cl_mem u, const cl_mem *g, int acc) {
    const bn_state *s = T->state;
    const int n = rw->a[0], C = rw->a[1], hw = rw->a[2];
    if (!bn_train_of(rw))
        return gf_bn_eval_backward(ctx, n, C, hw, in[0], u, in[1], rw->f[0], s->brm, s->brv, g[0], g[1], g[2], acc);
    cl_mem y = test_alloc(ctx, T->n_out), sm = test_alloc(ctx, (size_t)C), si = test_alloc(ctx, (size_t)C);
    gf_status st = gf_bn_train_forward(ctx, n, C, hw, in[0], in[1], in[2], rw->f[0], rw->f[1], NULL, NULL, y, sm, si);
    if (st == GF_OK) st = gf_bn_train_backward(ctx, n, C, hw, in[0], u, in[1], sm, si, g[0], g[1], g[2], acc);
    gf_buf_release(&y); gf_buf_release(&sm); gf_buf_release(&si);
    return st;
}

static cl_mem bn_guarded(gf_ctx *ctx, const float *v, size_t n) {
    float *h = falloc(n + BN_GUARD);
    for (size_t i = 0; i < n + BN_GUARD; i++) h[i] = i < n ? (v ? v[i] : 0) : BN_SENTINEL;
    cl_mem m = test_upload(ctx, h, n + BN_GUARD);
    free(h);
    return m;
}
static void bn_check_guard(gf_ctx *ctx, cl_mem m, size_t n, const char *name, const char *what) {
    float g[BN_GUARD];
    REQUIRE_OK(ctx, gf_buf_read(ctx, m, n * sizeof(float), sizeof g, g));
    int ok = 1;
    for (int i = 0; i < BN_GUARD; i++) ok &= g[i] == BN_SENTINEL;
    CHECK(ok, "%s: %s written past its %zu floats", name, what, n);
}
static int bn_same(gf_ctx *ctx, cl_mem m, const float *v, size_t n) {
    float *got = download(ctx, m, n);
    int same = memcmp(got, v, n * sizeof *got) == 0;
    free(got);
    return same;
}
static void bn_check_scaled(const char *name, const char *what, const float *got, const double *ref, const double *S, size_t n) {
    check_tol(name, what, got, ref, S, n, (tol){0, 0, 1e-5});
}

/* Training: saved mean and invstd, the running statistics after 3 updates (PyTorch's: unbiased variance),
 * bitwise reproducible; y with the statistics equals y without; the backward's optional outputs (dx alone,
 * the parameter gradients without dx) bitwise equal, accumulate adds to dgamma/dbeta and overwrites dx;
 * the split path's kernels (bn_sums, bn_apply, bn_backward_dx) against double sums and the one-kernel
 * results; every output inside its guard band. */
static void bn_train_extra(gf_ctx *ctx, const row *rw, const tensors *T, const results *res, const char *name) {
    const int n = rw->a[0], C = rw->a[1], hw = rw->a[2];
    const size_t N = T->n_out;
    const double eps = rw->f[0], mom = rw->f[1], M = (double)n * hw;
    const bn_state *s = T->state;
    double *mean = dalloc((size_t)C), *var = dalloc((size_t)C), *ref = dalloc((size_t)C), *sc = dalloc((size_t)C);
    ref_bn_stats(n, C, hw, T->xd[0], mean, var);
    cl_mem brm = bn_guarded(ctx, s->rm, C), brv = bn_guarded(ctx, s->rv, C), by = bn_guarded(ctx, NULL, N);
    cl_mem bsm = bn_guarded(ctx, NULL, C), bsi = bn_guarded(ctx, NULL, C);
    for (int rep = 0; rep < 3; rep++)
        REQUIRE_OK(ctx, gf_bn_train_forward(ctx, n, C, hw, T->bx[0], T->bx[1], T->bx[2], eps, mom, brm, brv, by, bsm, bsi));
    CHECK(bn_same(ctx, by, res->y, N), "%s: y with running and saved statistics differs from y without", name);
    float *o = download(ctx, bsi, C);
    for (int k = 0; k < C; k++) { ref[k] = 1 / sqrt(var[k] + eps); sc[k] = ref[k]; }
    bn_check_scaled(name, "saved invstd", o, ref, sc, C);
    free(o);
    o = download(ctx, bsm, C);
    for (int k = 0; k < C; k++) sc[k] = 1 + fabs(mean[k]);
    bn_check_scaled(name, "saved mean", o, mean, sc, C);
    free(o);
    double *rv3 = dalloc((size_t)C);
    for (int k = 0; k < C; k++) {
        ref[k] = s->rm[k]; rv3[k] = s->rv[k];
        for (int rep = 0; rep < 3; rep++) {
            ref[k] = (1 - mom) * ref[k] + mom * mean[k];
            rv3[k] = (1 - mom) * rv3[k] + mom * var[k] * M / (M - 1);   /* unbiased */
        }
    }
    o = download(ctx, brm, C);
    for (int k = 0; k < C; k++) sc[k] = 1 + fabs(ref[k]);
    bn_check_scaled(name, "running mean after 3 updates", o, ref, sc, C);
    free(o);
    o = download(ctx, brv, C);
    for (int k = 0; k < C; k++) sc[k] = 1 + fabs(rv3[k]);
    bn_check_scaled(name, "running var after 3 updates (unbiased)", o, rv3, sc, C);
    free(o);
    {   /* a fresh run: the same bits */
        float *rm1 = download(ctx, brm, C), *rv1 = download(ctx, brv, C), *m1 = download(ctx, bsm, C), *i1 = download(ctx, bsi, C);
        cl_mem rm2 = test_upload(ctx, s->rm, C), rv2 = test_upload(ctx, s->rv, C), y2 = test_alloc(ctx, N);
        cl_mem m2 = test_alloc(ctx, C), i2 = test_alloc(ctx, C);
        for (int rep = 0; rep < 3; rep++)
            REQUIRE_OK(ctx, gf_bn_train_forward(ctx, n, C, hw, T->bx[0], T->bx[1], T->bx[2], eps, mom, rm2, rv2, y2, m2, i2));
        CHECK(bn_same(ctx, m2, m1, C) && bn_same(ctx, i2, i1, C), "%s: saved statistics not bitwise reproducible", name);
        CHECK(bn_same(ctx, rm2, rm1, C) && bn_same(ctx, rv2, rv1, C), "%s: running stats not bitwise reproducible", name);
        free(rm1); free(rv1); free(m1); free(i1);
        gf_buf_release(&rm2); gf_buf_release(&rv2); gf_buf_release(&y2); gf_buf_release(&m2); gf_buf_release(&i2);
    }
    /* backward into guarded buffers; its optional outputs; accumulate */
    cl_mem bu = test_upload(ctx, res->u, N), bdx = bn_guarded(ctx, NULL, N), bdg = bn_guarded(ctx, NULL, C);
    cl_mem bdb = bn_guarded(ctx, NULL, C);
    REQUIRE_OK(ctx, gf_bn_train_backward(ctx, n, C, hw, T->bx[0], bu, T->bx[1], bsm, bsi, bdx, bdg, bdb, 0));
    CHECK(bn_same(ctx, bdx, res->g[0], N) && bn_same(ctx, bdg, res->g[1], C) && bn_same(ctx, bdb, res->g[2], C),
          "%s: backward with the forward's saved statistics differs", name);
    cl_mem dx2 = test_alloc(ctx, N), dg2 = test_alloc(ctx, C), db2 = test_alloc(ctx, C);
    REQUIRE_OK(ctx, gf_bn_train_backward(ctx, n, C, hw, T->bx[0], bu, T->bx[1], bsm, bsi, dx2, NULL, NULL, 1));
    CHECK(bn_same(ctx, dx2, res->g[0], N), "%s: dx alone differs from dx with the parameter gradients", name);
    REQUIRE_OK(ctx, gf_bn_train_backward(ctx, n, C, hw, T->bx[0], bu, T->bx[1], bsm, bsi, NULL, dg2, db2, 0));
    CHECK(bn_same(ctx, dg2, res->g[1], C) && bn_same(ctx, db2, res->g[2], C), "%s: parameter gradients without dx differ", name);
    REQUIRE_OK(ctx, gf_buf_write(ctx, dx2, 0, N * sizeof(float), T->x[0]));
    REQUIRE_OK(ctx, gf_bn_train_backward(ctx, n, C, hw, T->bx[0], bu, T->bx[1], bsm, bsi, dx2, dg2, db2, 1));
    {
        double *ud = dalloc(N), *gr[3], *sg[3];
        for (size_t i = 0; i < N; i++) ud[i] = res->u[i];
        for (int k = 0; k < 3; k++) { gr[k] = dalloc(T->n[k]); sg[k] = dalloc(T->n[k]); }
        bn_ref_bwd_all(rw, T, (const double *const *)T->xd, ud, gr, sg);
        for (int k = 1; k < 3; k++)
            for (int c = 0; c < C; c++) { gr[k][c] *= 2; sg[k][c] *= 2; }
        float *a = download(ctx, dg2, C), *b = download(ctx, db2, C);
        bn_check_scaled(name, "accumulated dgamma", a, gr[1], sg[1], C);
        bn_check_scaled(name, "accumulated dbeta", b, gr[2], sg[2], C);
        CHECK(bn_same(ctx, dx2, res->g[0], N), "%s: dx with accumulate = 1 is not overwritten", name);
        free(a); free(b); free(ud);
        for (int k = 0; k < 3; k++) { free(gr[k]); free(sg[k]); }
    }
    {   /* the split path of several processes (host/graph/block.c, gf_block_set_bn_sync): the partial sums
         * around each channel's first value (written out too) and around the saved mean against double sums;
         * y from the mean as the float pair saved mean + lo (bn_apply) against the double reference (the
         * offset rows: no precision lost to the offset); dx from the backward's own dbeta/dgamma sums with
         * lo = 0 (bn_backward_dx) against the one-kernel dx */
        float *m = download(ctx, bsm, C), *lo = falloc((size_t)C);
        double *r2 = dalloc(3 * (size_t)C), *s2 = dalloc(3 * (size_t)C);
        cl_mem bz = test_alloc(ctx, C), bl = test_alloc(ctx, C), bs = bn_guarded(ctx, NULL, 3 * (size_t)C);
        cl_mem y3 = bn_guarded(ctx, NULL, N);
        REQUIRE_OK(ctx, gf_buf_zero(ctx, bz, 0, (size_t)C * sizeof(float)));
        for (int pass = 0; pass < 2; pass++) {
            REQUIRE_OK(ctx, gf_bn_sums(ctx, n, C, hw, T->bx[0], pass ? bsm : NULL, bs));
            for (int c = 0; c < C; c++) {
                double sh = pass ? m[c] : T->x[0][(size_t)c * hw], a = 0, q = 0, sa = 0;
                for (int i = 0; i < n; i++)
                    for (int j = 0; j < hw; j++) {
                        double d = T->xd[0][((size_t)i * C + c) * hw + j] - sh;
                        a += d; q += d * d; sa += fabs(d);
                    }
                r2[c] = a; r2[C + c] = q; r2[2 * C + c] = sh;
                s2[c] = 1 + sa; s2[C + c] = 1 + q; s2[2 * C + c] = 1 + fabs(sh);
            }
            float *o2 = download(ctx, bs, 3 * (size_t)C);
            bn_check_scaled(name, pass ? "partial sums around the mean (split path)" : "partial sums and shifts (split path)",
                            o2, r2, s2, (pass ? 2 : 3) * (size_t)C);
            free(o2);
        }
        for (int c = 0; c < C; c++) lo[c] = (float)(mean[c] - (double)m[c]);
        REQUIRE_OK(ctx, gf_buf_write(ctx, bl, 0, (size_t)C * sizeof(float), lo));
        REQUIRE_OK(ctx, gf_bn_apply(ctx, n, C, hw, T->bx[0], T->bx[1], T->bx[2], bsm, bl, bsi, y3));
        double *yr = dalloc(N), *ys = dalloc(N);
        for (size_t i = 0; i < N; i++) {
            int c = (int)((i / hw) % C);
            yr[i] = (T->xd[0][i] - mean[c]) / sqrt(var[c] + eps) * T->x[1][c] + T->x[2][c];
            ys[i] = 1 + fabs(yr[i]);
        }
        float *o3 = download(ctx, y3, N);
        bn_check_scaled(name, "y from the statistics as hi + lo (split path)", o3, yr, ys, N);
        free(o3);
        float *dgs = download(ctx, bdg, C), *dbs = download(ctx, bdb, C), *sums = falloc(2 * (size_t)C);
        for (int c = 0; c < C; c++) { sums[c] = dbs[c]; sums[C + c] = dgs[c]; }
        REQUIRE_OK(ctx, gf_buf_write(ctx, bs, 0, 2 * (size_t)C * sizeof(float), sums));
        REQUIRE_OK(ctx, gf_bn_backward_dx(ctx, n, C, hw, T->bx[0], bu, T->bx[1], bsm, bz, bsi, bs, M, y3));
        for (size_t i = 0; i < N; i++) { yr[i] = res->g[0][i]; ys[i] = 1 + fabs(res->g[0][i]); }
        o3 = download(ctx, y3, N);
        bn_check_scaled(name, "dx from the summed dbeta/dgamma (split path)", o3, yr, ys, N);
        bn_check_guard(ctx, bs, 3 * (size_t)C, name, "partial sums");
        bn_check_guard(ctx, y3, N, name, "split path y / dx");
        free(o3); free(dgs); free(dbs); free(sums); free(m); free(lo); free(r2); free(s2); free(yr); free(ys);
        gf_buf_release(&bz); gf_buf_release(&bl); gf_buf_release(&bs); gf_buf_release(&y3);
    }
    bn_check_guard(ctx, by, N, name, "y");
    bn_check_guard(ctx, bsm, C, name, "saved mean");
    bn_check_guard(ctx, bsi, C, name, "saved invstd");
    bn_check_guard(ctx, brm, C, name, "running mean");
    bn_check_guard(ctx, brv, C, name, "running var");
    bn_check_guard(ctx, bdx, N, name, "dx");
    bn_check_guard(ctx, bdg, C, name, "dgamma");
    bn_check_guard(ctx, bdb, C, name, "dbeta");
    cl_mem *bufs[] = {&brm, &brv, &by, &bsm, &bsi, &bu, &bdx, &bdg, &bdb, &dx2, &dg2, &db2};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) gf_buf_release(bufs[i]);
    free(mean); free(var); free(ref); free(sc); free(rv3);
}
/* Eval: in place; dx alone bitwise; every output inside its guard band. */
static void bn_eval_extra(gf_ctx *ctx, const row *rw, const tensors *T, const results *res, const char *name) {
    const int n = rw->a[0], C = rw->a[1], hw = rw->a[2];
    const size_t N = T->n_out;
    const bn_state *s = T->state;
    cl_mem inplace = test_upload(ctx, T->x[0], N);
    REQUIRE_OK(ctx, gf_bn_eval_forward(ctx, n, C, hw, inplace, T->bx[1], T->bx[2], rw->f[0], s->brm, s->brv, inplace));
    CHECK(bn_same(ctx, inplace, res->y, N), "%s: in-place eval forward differs", name);
    cl_mem by = bn_guarded(ctx, NULL, N), bu = test_upload(ctx, res->u, N), bdx = bn_guarded(ctx, NULL, N);
    cl_mem bdg = bn_guarded(ctx, NULL, C), bdb = bn_guarded(ctx, NULL, C);
    REQUIRE_OK(ctx, gf_bn_eval_forward(ctx, n, C, hw, T->bx[0], T->bx[1], T->bx[2], rw->f[0], s->brm, s->brv, by));
    REQUIRE_OK(ctx, gf_bn_eval_backward(ctx, n, C, hw, T->bx[0], bu, T->bx[1], rw->f[0], s->brm, s->brv, bdx, bdg, bdb, 0));
    CHECK(bn_same(ctx, by, res->y, N) && bn_same(ctx, bdx, res->g[0], N) && bn_same(ctx, bdg, res->g[1], C) &&
          bn_same(ctx, bdb, res->g[2], C), "%s: guarded outputs differ", name);
    REQUIRE_OK(ctx, gf_buf_zero(ctx, inplace, 0, N * sizeof(float)));
    REQUIRE_OK(ctx, gf_bn_eval_backward(ctx, n, C, hw, T->bx[0], bu, T->bx[1], rw->f[0], s->brm, s->brv, inplace, NULL,
                                        NULL, 0));
    CHECK(bn_same(ctx, inplace, res->g[0], N), "%s: eval dx alone differs", name);
    bn_check_guard(ctx, by, N, name, "eval y");
    bn_check_guard(ctx, bdx, N, name, "eval dx");
    bn_check_guard(ctx, bdg, C, name, "eval dgamma");
    bn_check_guard(ctx, bdb, C, name, "eval dbeta");
    gf_buf_release(&inplace); gf_buf_release(&by); gf_buf_release(&bu); gf_buf_release(&bdx); gf_buf_release(&bdg);
    gf_buf_release(&bdb);
}
/* Bad arguments are refused with GF_ERR_USAGE before anything is enqueued. */
static void bn_once(gf_ctx *ctx) {
    float v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    cl_mem b = test_upload(ctx, v, 8), o = test_alloc(ctx, 8);
    CHECK(gf_bn_train_forward(ctx, 1, 2, 1, b, b, b, 1e-5f, 0.1f, NULL, NULL, o, NULL, NULL) == GF_ERR_USAGE,
          "training with one value per channel accepted");
    CHECK(strstr(gf_ctx_last_error(ctx), "more than one value") != NULL, "message: %s", gf_ctx_last_error(ctx));
    CHECK(gf_bn_train_forward(ctx, 2, 2, 1, b, b, b, 0.0f, 0.1f, NULL, NULL, o, NULL, NULL) == GF_ERR_USAGE,
          "eps 0 accepted");
    CHECK(gf_bn_train_forward(ctx, 2, 2, 1, b, b, b, 1e-5f, 1.5f, NULL, NULL, o, NULL, NULL) == GF_ERR_USAGE,
          "momentum 1.5 accepted");
    CHECK(gf_bn_train_forward(ctx, 2, 2, 1, b, b, b, 1e-5f, 0.1f, b, NULL, o, NULL, NULL) == GF_ERR_USAGE,
          "running mean without running var accepted");
    CHECK(gf_bn_train_backward(ctx, 2, 2, 1, b, b, b, b, b, o, o, NULL, 0) == GF_ERR_USAGE,
          "dgamma without dbeta accepted");
    CHECK(gf_bn_eval_forward(ctx, 0, 2, 1, b, b, b, 1e-5f, b, b, o) == GF_ERR_USAGE, "n = 0 accepted");
    gf_buf_release(&b); gf_buf_release(&o);
}
static const op_def OP_BN_TRAIN = {.name = "bn_train", .variants = VARIANTS_BN, .flags = OP_BWD_FD,
    .fill_u = bn_fill_u, .describe = bn_describe, .shape = bn_shape, .fill = bn_fill, .tols = bn_tols, .ref = bn_ref,
    .fwd = bn_fwd, .bwd = bn_bwd, .ref_bwd = bn_ref_bwd, .extra = bn_train_extra, .once = bn_once,
    .release = bn_release, .scale_fwd = bn_scale_fwd, .scale_bwd = bn_scale_bwd};
static const op_def OP_BN_EVAL = {.name = "bn_eval", .variants = VARIANTS_BN, .flags = OP_ADJ_ABS,
    .fill_u = bn_fill_u, .describe = bn_describe, .shape = bn_shape, .fill = bn_fill, .tols = bn_tols, .ref = bn_ref,
    .fwd = bn_fwd, .tan = bn_eval_tan, .bwd = bn_bwd, .ref_bwd = bn_ref_bwd, .extra = bn_eval_extra,
    .release = bn_release, .scale_fwd = bn_scale_fwd, .scale_bwd = bn_scale_bwd};
static int bn_train_of(const row *rw) { return rw->op == &OP_BN_TRAIN; }

/* ---------------- sgd / adam: optimiser updates (cl/optim.cl); a = {case, n} ----------------
 * Seven steps with a new gradient each step (scale growing, so that clipping switches on mid-run), from the
 * case's options (optim_cases). The output is the parameters after the seven steps followed by the state
 * (SGD momentum; Adam's first and second moments). The reference runs the same steps in double. Tolerance:
 * parameters 1e-6 + 1e-5 |ref| (7 float updates); a state element can be a small difference of large terms
 * (mom v + g + wd p): rounded step by step (no FMA contraction, as on Mesa llvmpipe) its error is a few ulp
 * of the largest terms, so its absolute tolerance is max(1e-7, 2e-6 max |state|), plus 1e-5 |ref|. The op's
 * own check repeats the run on two copies and compares them, bitwise, and with the reference after every
 * step, so that an error in one step cannot hide in a later one. */

enum { OPTIM_STEPS = 7 };
typedef struct optim_case {
    int adam, use_ref, use_clip;
    float lr, mom, wd, b1, b2, eps;
} optim_case;
static const optim_case optim_cases[] = {
    /* adam use_ref use_clip lr mom wd b1 b2 eps */
    {0, 0, 0, 0.1f, 0.9f, 5e-5f, 0, 0, 0},           /* official config: SGD 0.9, wd 5e-5 */
    {0, 1, 1, 0.1f, 0.9f, 0.01f, 0, 0, 0},           /* + decay toward ref, clip */
    {0, 0, 1, 0.05f, 0.0f, 0.0f, 0, 0, 0},           /* plain SGD, no momentum buffer */
    {1, 0, 0, 1e-3f, 0, 1e-6f, 0.5f, 0.999f, 1e-8f}, /* paper: Adam (0.5, 0.999), wd 1e-6 */
    {1, 1, 1, 1e-2f, 0, 0.05f, 0.9f, 0.999f, 1e-8f},
    {1, 0, 1, 1e-2f, 0, 0.0f, 0.9f, 0.99f, 1e-6f},
};

static const optim_case *optim_of(const row *rw) { return &optim_cases[rw->a[0]]; }
/* max_norm ~ the mid-run norm: clipping is active in some steps only */
static float optim_max_norm(const row *rw) { return (float)(0.3 * 4 * sqrt((double)rw->a[1] / 3.0)); }
static size_t optim_state_count(const row *rw) {
    const optim_case *oc = optim_of(rw);
    return oc->adam ? 2 : oc->mom != 0 ? 1 : 0;
}
static void optim_describe(const row *rw, char *b, size_t n) {
    const optim_case *oc = optim_of(rw);
    snprintf(b, n, "%s n=%d lr %g mom %g wd %g b1 %g b2 %g ref %d clip %d", oc->adam ? "adam" : "sgd", rw->a[1], oc->lr,
             oc->mom, oc->wd, oc->b1, oc->b2, oc->use_ref, oc->use_clip);
}
/* inputs: p0, the decay target, the seven gradients */
static void optim_shape(gf_ctx *ctx, const row *rw, tensors *T) {
    (void)ctx;
    const size_t n = (size_t)rw->a[1];
    T->n_in = 3; T->n[0] = T->n[1] = n; T->n[2] = OPTIM_STEPS * n;
    T->n_out = n * (1 + optim_state_count(rw));
}
static void optim_fill(gf_ctx *ctx, const row *rw, tensors *T, test_rng *r) {
    (void)ctx;
    const size_t n = (size_t)rw->a[1];
    uniform(r, T->x[0], n, -1, 1);
    uniform(r, T->x[1], n, -0.5, 0.5);
    for (int s = 0; s < OPTIM_STEPS; s++) uniform(r, T->x[2] + s * n, n, -0.3 * (s + 1), 0.3 * (s + 1));
}
static void optim_tols(const row *rw, tols *t) {
    (void)rw;
    t->fwd = (tol){0, 1e-5, 1};   /* S: the absolute tolerance of each value (optim_scale) */
}
/* The reference after `steps` steps: out = p, then the state; returns in how many steps clipping acted. */
static int optim_ref_steps(const row *rw, const double *const *in, int steps, double *out) {
    const optim_case *oc = optim_of(rw);
    const size_t n = (size_t)rw->a[1];
    double *p = out, *m = dalloc(n), *v = dalloc(n);
    const ref_optim ro = {oc->adam, oc->lr, oc->mom, oc->wd, oc->b1, oc->b2, oc->eps};
    int clipped = 0;
    memcpy(p, in[0], n * sizeof *p);
    for (int s = 0; s < steps; s++) {
        const double *g = in[2] + s * n;
        double sq = 0;
        for (size_t i = 0; i < n; i++) sq += g[i] * g[i];
        double c = oc->use_clip ? fmin(1.0, optim_max_norm(rw) / (sqrt(sq) + 1e-6)) : 1.0;
        clipped += c < 1;
        ref_optim_step(&ro, s + 1, n, g, c, oc->use_ref ? in[1] : NULL, p, m, v);
    }
    if (oc->adam) { memcpy(out + n, m, n * sizeof *m); memcpy(out + 2 * n, v, n * sizeof *v); }
    else if (oc->mom != 0) memcpy(out + n, v, n * sizeof *v);
    free(m); free(v);
    return clipped;
}
static void optim_ref(const row *rw, const tensors *T, const double *const *in, double *out) {
    (void)T;
    optim_ref_steps(rw, in, OPTIM_STEPS, out);
}
static void optim_scale_steps(const row *rw, const tensors *T, int steps, double *S) {
    const size_t n = (size_t)rw->a[1], ns = optim_state_count(rw);
    double *ref = dalloc(T->n_out);
    optim_ref_steps(rw, (const double *const *)T->xd, steps, ref);
    for (size_t i = 0; i < n; i++) S[i] = 1e-6;
    for (size_t k = 0; k < ns; k++) {
        double mx = 0;
        for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs(ref[(1 + k) * n + i]));
        for (size_t i = 0; i < n; i++) S[(1 + k) * n + i] = fmax(1e-7, 2e-6 * mx);
    }
    free(ref);
}
static void optim_scale(const row *rw, const tensors *T, double *S) { optim_scale_steps(rw, T, OPTIM_STEPS, S); }
/* `steps` steps on the device from p0 (in[0]); out as the reference's. */
typedef struct optim_dev { cl_mem p, m, v, g, norm; } optim_dev;
static void optim_dev_init(gf_ctx *ctx, const row *rw, const tensors *T, optim_dev *d) {
    const size_t n = (size_t)rw->a[1];
    d->p = test_upload(ctx, T->x[0], n);
    d->m = test_alloc(ctx, n); d->v = test_alloc(ctx, n); d->g = test_alloc(ctx, n); d->norm = test_alloc(ctx, 1);
}
static void optim_dev_release(optim_dev *d) {
    gf_buf_release(&d->p); gf_buf_release(&d->m); gf_buf_release(&d->v); gf_buf_release(&d->g); gf_buf_release(&d->norm);
}
static gf_status optim_dev_step(gf_ctx *ctx, const row *rw, const tensors *T, cl_mem ref, optim_dev *d, int s) {
    const optim_case *oc = optim_of(rw);
    const size_t n = (size_t)rw->a[1];
    gf_clip clip = {d->norm, optim_max_norm(rw)};
    gf_sgd_opts so = {oc->lr, oc->mom, oc->wd};
    gf_adam_opts ao = {oc->lr, oc->b1, oc->b2, oc->eps, oc->wd};
    gf_status st = gf_buf_write(ctx, d->g, 0, n * sizeof(float), T->x[2] + (size_t)s * n);
    if (st == GF_OK && oc->use_clip) st = gf_grad_sqnorm(ctx, n, d->g, d->norm, 0, 0);
    if (st != GF_OK) return st;
    if (oc->adam)
        return gf_adam_step(ctx, &ao, s + 1, n, d->p, d->g, d->m, d->v, oc->use_ref ? ref : NULL, oc->use_clip ? &clip : NULL);
    return gf_sgd_step(ctx, &so, n, d->p, d->g, oc->mom != 0 ? d->v : NULL, oc->use_ref ? ref : NULL,
                       oc->use_clip ? &clip : NULL);
}
static float *optim_dev_result(gf_ctx *ctx, const row *rw, const optim_dev *d) {
    const optim_case *oc = optim_of(rw);
    const size_t n = (size_t)rw->a[1];
    float *out = falloc(n * (1 + optim_state_count(rw)));
    test_download(ctx, d->p, out, n);
    if (oc->adam) { test_download(ctx, d->m, out + n, n); test_download(ctx, d->v, out + 2 * n, n); }
    else if (oc->mom != 0) test_download(ctx, d->v, out + n, n);
    return out;
}
static gf_status optim_fwd(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, cl_mem out) {
    optim_dev d;
    optim_dev_init(ctx, rw, T, &d);
    gf_status st = GF_OK;
    for (int s = 0; s < OPTIM_STEPS && st == GF_OK; s++) st = optim_dev_step(ctx, rw, T, in[1], &d, s);
    if (st == GF_OK) {
        float *res = optim_dev_result(ctx, rw, &d);
        st = gf_buf_write(ctx, out, 0, T->n_out * sizeof(float), res);
        free(res);
    }
    optim_dev_release(&d);
    return st;
}
/* Two copies step by step: bitwise equal and within the tolerance of the reference after every step;
 * clipping active in some steps and not in others. */
static void optim_extra(gf_ctx *ctx, const row *rw, const tensors *T, const results *res, const char *name) {
    (void)res;
    optim_dev d[2];
    optim_dev_init(ctx, rw, T, &d[0]);
    optim_dev_init(ctx, rw, T, &d[1]);
    double *ref = dalloc(T->n_out), *S = dalloc(T->n_out);
    for (int s = 0; s < OPTIM_STEPS; s++) {
        REQUIRE_OK(ctx, optim_dev_step(ctx, rw, T, T->bx[1], &d[0], s));
        REQUIRE_OK(ctx, optim_dev_step(ctx, rw, T, T->bx[1], &d[1], s));
        float *a = optim_dev_result(ctx, rw, &d[0]), *b = optim_dev_result(ctx, rw, &d[1]);
        optim_ref_steps(rw, (const double *const *)T->xd, s + 1, ref);
        optim_scale_steps(rw, T, s + 1, S);
        char what[64];
        snprintf(what, sizeof what, "parameters and state after step %d", s + 1);
        check_tol(name, what, a, ref, S, T->n_out, (tol){0, 1e-5, 1});
        CHECK(memcmp(a, b, T->n_out * sizeof *a) == 0, "%s: step %d not bitwise reproducible", name, s + 1);
        free(a); free(b);
    }
    if (optim_of(rw)->use_clip && rw->a[1] > 1) {
        int clipped = optim_ref_steps(rw, (const double *const *)T->xd, OPTIM_STEPS, ref);
        CHECK(clipped > 0 && clipped < OPTIM_STEPS, "%s: clipping active in %d of %d steps (the case should cover both)",
              name, clipped, OPTIM_STEPS);
    }
    optim_dev_release(&d[0]); optim_dev_release(&d[1]);
    free(ref); free(S);
}
static void optim_once(gf_ctx *ctx) {
    cl_mem b = test_alloc(ctx, 4);
    gf_sgd_opts so = {0.1f, 0.9f, 0};
    CHECK(gf_sgd_step(ctx, &so, 4, b, b, NULL, NULL, NULL) == GF_ERR_USAGE, "momentum without a buffer accepted");
    gf_adam_opts ao = {0.1f, 0.9f, 0.999f, 1e-8f, 0};
    CHECK(gf_adam_step(ctx, &ao, 0, 4, b, b, b, b, NULL, NULL) == GF_ERR_USAGE, "Adam step 0 accepted");
    gf_buf_release(&b);
}
static const op_def OP_SGD = {.name = "sgd", .describe = optim_describe, .shape = optim_shape, .fill = optim_fill,
    .tols = optim_tols, .ref = optim_ref, .fwd = optim_fwd, .extra = optim_extra, .once = optim_once,
    .scale_fwd = optim_scale};
static const op_def OP_ADAM = {.name = "adam", .describe = optim_describe, .shape = optim_shape, .fill = optim_fill,
    .tols = optim_tols, .ref = optim_ref, .fwd = optim_fwd, .extra = optim_extra, .once = optim_once,
    .scale_fwd = optim_scale};

/* ---------------- sqnorm: squared gradient norm, reduced on the device (cl/optim.cl); a = {n} ----------------
 * out = {||a||^2, ||b||^2} (float partial sums of up to 1M terms: 1e-5 relative). The op's own checks: at an
 * offset (the value before it untouched), two tensors accumulated (the float sum of the parts), the clip
 * applied in place (scale min(1, max / (norm + 1e-6)), max half the norm of a: 1e-7 + 1e-5 |ref|). */

static void sqnorm_describe(const row *rw, char *b, size_t n) { snprintf(b, n, "sqnorm n=%d", rw->a[0]); }
static void sqnorm_shape(gf_ctx *ctx, const row *rw, tensors *T) {
    (void)ctx;
    T->n_in = 2; T->n[0] = T->n[1] = (size_t)rw->a[0]; T->n_out = 2;
}
static void sqnorm_fill(gf_ctx *ctx, const row *rw, tensors *T, test_rng *r) {
    (void)ctx; (void)rw;
    uniform(r, T->x[0], T->n[0], -2, 2);
    uniform(r, T->x[1], T->n[1], -1, 1);
}
static void sqnorm_tols(const row *rw, tols *t) {
    (void)rw;
    t->fwd = (tol){1e-30, 1e-5, 0};
}
static void sqnorm_ref(const row *rw, const tensors *T, const double *const *in, double *out) {
    (void)rw;
    out[0] = ref_dot(in[0], in[0], T->n[0]);
    out[1] = ref_dot(in[1], in[1], T->n[1]);
}
static gf_status sqnorm_fwd(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, cl_mem out) {
    (void)T;
    gf_status st = gf_grad_sqnorm(ctx, (size_t)rw->a[0], in[0], out, 0, 0);
    return st != GF_OK ? st : gf_grad_sqnorm(ctx, (size_t)rw->a[0], in[1], out, 1, 0);
}
static void sqnorm_extra(gf_ctx *ctx, const row *rw, const tensors *T, const results *res, const char *name) {
    const size_t n = (size_t)rw->a[0];
    const float init[3] = {5, 6, 7};
    float out[3];
    cl_mem bo = test_upload(ctx, init, 3), ba = test_upload(ctx, T->x[0], n);
    REQUIRE_OK(ctx, gf_grad_sqnorm(ctx, n, T->bx[0], bo, 1, 0));
    REQUIRE_OK(ctx, gf_grad_sqnorm(ctx, n, T->bx[1], bo, 2, 0));
    test_download(ctx, bo, out, 3);
    CHECK(out[0] == 5 && out[1] == res->y[0] && out[2] == res->y[1], "%s: at offsets 1, 2: %g %g %g", name, out[0],
          out[1], out[2]);
    REQUIRE_OK(ctx, gf_grad_sqnorm(ctx, n, T->bx[0], bo, 0, 0));
    REQUIRE_OK(ctx, gf_grad_sqnorm(ctx, n, T->bx[1], bo, 0, 1));
    test_download(ctx, bo, out, 3);
    double both = ref_dot(T->xd[0], T->xd[0], n) + ref_dot(T->xd[1], T->xd[1], n);
    check_tol(name, "two tensors accumulated", out, &both, NULL, 1, (tol){1e-30, 1e-5, 0});
    CHECK(out[0] == res->y[0] + res->y[1], "%s: accumulate is not the float sum of the parts", name);
    const double sa = ref_dot(T->xd[0], T->xd[0], n);
    gf_clip clip = {bo, (float)(0.5 * sqrt(sa))};
    REQUIRE_OK(ctx, gf_grad_sqnorm(ctx, n, ba, bo, 0, 0));
    REQUIRE_OK(ctx, gf_grad_clip(ctx, n, ba, &clip));
    float *clipped = download(ctx, ba, n);
    double c = fmin(1.0, clip.max_norm / (sqrt(sa) + 1e-6)), *rc = dalloc(n);
    for (size_t i = 0; i < n; i++) rc[i] = c * T->x[0][i];
    check_tol(name, "grad clip", clipped, rc, NULL, n, (tol){1e-7, 1e-5, 0});
    free(clipped); free(rc);
    gf_buf_release(&bo); gf_buf_release(&ba);
}
static const op_def OP_SQNORM = {.name = "sqnorm", .describe = sqnorm_describe, .shape = sqnorm_shape,
    .fill = sqnorm_fill, .tols = sqnorm_tols, .ref = sqnorm_ref, .fwd = sqnorm_fwd, .extra = sqnorm_extra};

/* ---------------- the table ---------------- */


/* R(op, in the default run, in the --small run, f0, a0, a1, ...); RN with a note */
#define R(op, full, small, f0, ...) add_row(&(op), full, small, NULL, f0, 0, (int[NA]){__VA_ARGS__})
#define RN(op, full, small, note, ...) add_row(&(op), full, small, note, 0, 0, (int[NA]){__VA_ARGS__})
#define RF(op, full, small, f0, f1, ...) add_row(&(op), full, small, NULL, f0, f1, (int[NA]){__VA_ARGS__})
static void add_row(const op_def *op, int full, int small, const char *note, float f0, float f1, const int *a) {
    if (n_rows == MAX_ROWS) { fprintf(stderr, "FATAL: more than %d rows\n", MAX_ROWS); exit(1); }
    row *r = &rows[n_rows++];
    r->op = op; r->full = full; r->small = small; r->note = note; r->f[0] = f0; r->f[1] = f1;
    memcpy(r->a, a, sizeof r->a);
}

static void make_rows(void) {
    /* act: every kind; sizes 1, odd, 7 x 13 channels x 5 x 3, a larger map; --small: 1, 7 and 130 (a
     * partial last work-group) */
    static const struct { gf_act_kind k; float slope; } kinds[] = {
        {GF_ACT_RELU, 0}, {GF_ACT_LEAKY, 0.01f}, {GF_ACT_LEAKY, 0.2f}, {GF_ACT_LEAKY, -0.3f}, {GF_ACT_RELU6, 0},
        {GF_ACT_SIGMOID, 0}, {GF_ACT_SILU, 0}, {GF_ACT_HSIGMOID, 1.0f / 6.0f}, {GF_ACT_HSIGMOID, 0.2f},
        {GF_ACT_HSWISH, 0}, {GF_ACT_GELU, 0}, {GF_ACT_GELU_TANH, 0}};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        R(OP_ACT, 1, 1, kinds[k].slope, kinds[k].k, 1);
        R(OP_ACT, 1, 1, kinds[k].slope, kinds[k].k, 7);
        R(OP_ACT, 0, 1, kinds[k].slope, kinds[k].k, 130);
        R(OP_ACT, 1, 0, kinds[k].slope, kinds[k].k, 1365);
        R(OP_ACT, 1, 0, kinds[k].slope, kinds[k].k, 64 * 49 * 3 + 5);
    }
    /* ln: one pixel of one channel to ConvNeXt-tiny's 768 channels, each at eps 1e-6 and 1e-5 */
    for (int e = 0; e < 2; e++) {
        const float eps = e ? 1e-5f : 1e-6f;
        R(OP_LN, 1, 1, eps, 1, 1, 1, 1);
        R(OP_LN, 1, 1, eps, 1, 5, 1, 1);
        R(OP_LN, 1, 1, eps, 2, 24, 5, 3, 1);
        R(OP_LN, 1, 0, eps, 3, 96, 4, 4);
        R(OP_LN, 1, 0, eps, 1, 768, 2, 2);
    }
    /* mul: planes of 1 (the SE gate itself), 7x7 and 8x8 (one item per plane), 9x9 and 56x56 (work-groups) */
    static const int mul_shapes[][4] = {{1, 1, 1, 1}, {2, 3, 7, 7}, {3, 5, 9, 9}, {2, 4, 8, 8}, {2, 16, 56, 56}, {4, 24, 1, 1}};
    for (int k = 0; k < 6; k++)
        for (int gate = 0; gate < 2; gate++)
            R(OP_MUL, 1, k < 3, 0, mul_shapes[k][0], mul_shapes[k][1], mul_shapes[k][2], mul_shapes[k][3], gate);
    /* concat of 2, 3 and 4 inputs; a = {N, n, H, W, C0, C1, C2, C3} */
    R(OP_CONCAT, 1, 0, 0, 2, 2, 5, 5, 3, 5);
    R(OP_CONCAT, 1, 1, 0, 3, 3, 7, 9, 1, 4, 2);
    R(OP_CONCAT, 1, 0, 0, 2, 4, 13, 13, 16, 16, 8, 24);
    R(OP_CONCAT, 1, 0, 0, 5, 2, 1, 1, 3, 5);
    /* shuffle: ShuffleNetV2's G = 2 (its 24/48/96/116 channels at small maps), G = 1 and G = C (the
     * identity), odd groups */
    static const int sh[][5] = {{2, 24, 7, 7, 2}, {1, 48, 4, 4, 2}, {3, 6, 5, 3, 3}, {2, 12, 1, 1, 4}, {1, 5, 3, 3, 1},
                                {1, 5, 3, 3, 5}, {2, 116, 14, 14, 2}};
    for (int k = 0; k < 7; k++) R(OP_SHUFFLE, 1, k == 2 || k == 5, 0, sh[k][0], sh[k][1], sh[k][2], sh[k][3], sh[k][4]);
    /* slice: every chunk of torch.chunk(x, chunks, dim=1), sizes ceil(C / chunks) and a smaller last one */
    static const int sl[][5] = {{2, 24, 7, 7, 2}, {3, 7, 5, 5, 3}, {1, 4, 1, 1, 4}};
    for (int k = 0; k < 3; k++) {
        const int C = sl[k][1], step = (C + sl[k][4] - 1) / sl[k][4];
        for (int off = 0; off < C; off += step)
            R(OP_SLICE, 1, k == 1, 0, sl[k][0], C, sl[k][2], sl[k][3], off, off + step <= C ? step : C - off);
    }
    /* pools: a = {N, C, H, W, kh, kw, sh, sw, ph, pw, tf_same}; each as max pool and as average pool with
     * both divisor rules; --small: one TF SAME case with an asymmetric pad */
    static const int pools[][11] = {
        {2, 3, 7, 6, 3, 3, 2, 2, 0, 0, 1},            /* TF SAME, asymmetric pad (the --small case) */
        {1, 3, 7, 9, 3, 3, 2, 2, 1, 1, 0},            /* batch 1, odd, stride 2, pad 1 */
        {7, 5, 8, 8, 2, 2, 2, 2, 0, 0, 0},            /* batch 7, 2x2 s2 */
        {2, 6, 11, 10, 5, 5, 1, 1, 2, 2, 0},          /* 5x5 s1 p2, heavy overlap */
        {2, 5, 13, 12, 5, 5, 2, 2, 2, 1, 0},          /* 5x5 s2, different h/w pads */
        {7, 3, 5, 6, 3, 3, 1, 1, 1, 1, 0},            /* 3x3 s1 p1 */
        {1, 7, 9, 10, 2, 3, 1, 2, 1, 1, 0},           /* rectangular window and stride */
        {2, 3, 9, 8, 3, 3, 2, 2, 0, 0, 1},            /* TF SAME, 1 before 1 after / 0 before 1 after */
        {1, 5, 10, 7, 3, 3, 2, 2, 0, 0, 1},           /* TF SAME, asymmetric */
        {2, 3, 11, 11, 2, 2, 2, 2, 0, 0, 1},          /* TF SAME 2x2 s2 on odd size */
        {3, 2, 12, 9, 5, 5, 3, 3, 0, 0, 1},           /* TF SAME 5x5 s3 */
    };
    for (int k = 0; k < 11; k++) {
        const int *q = pools[k];
        R(OP_MAXPOOL, k > 0, k == 0, 0, q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7], q[8], q[9], q[10]);
        for (int inc = 0; inc < 2; inc++)
            R(OP_AVGPOOL, k > 0, k == 0, 0, q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7], q[8], q[9], q[10], inc);
    }
    /* gap: planes of 1, 7x7 (one item per plane), 300, 64 (7 x 13 planes), 4099; --small: 7x7 and 9x9 (a
     * work-group tree per plane) */
    static const int gap[][3] = {{1, 1, 1}, {7, 49, 1}, {35, 300, 1}, {7 * 13, 64, 1}, {3, 4096 + 3, 1}, {6, 49, 2}, {5, 81, 2}};
    for (int k = 0; k < 7; k++) R(OP_GAP, gap[k][2] == 1, gap[k][2] == 2, 0, gap[k][0], gap[k][1]);
    /* xent: batch 1 and 7, class counts 1, 5, 10, 20, 1000; more rows than lanes (300); logits at scale 4,
     * and at 30 with ignored rows; --small: 7 x 5 */
    static const int xs[][2] = {{1, 10}, {7, 5}, {7, 1}, {64, 20}, {300, 3}, {3, 1000}};
    for (int k = 0; k < 6; k++) {
        R(OP_XENT, 1, 0, 4.0f, xs[k][0], xs[k][1], 0);
        R(OP_XENT, 1, 0, 30.0f, xs[k][0], xs[k][1], 1);
    }
    R(OP_XENT, 0, 1, 4.0f, 7, 5, 1);
    /* bce: mean per sample and over all, logits at scale 5 and 40 */
    static const int bs[][2] = {{1, 1}, {7, 5}, {64, 20}, {3, 301}};
    for (int k = 0; k < 4; k++)
        for (int ps = 0; ps < 2; ps++) {
            R(OP_BCE, 1, 0, 5.0f, bs[k][0], bs[k][1], ps);
            R(OP_BCE, 1, 0, 40.0f, bs[k][0], bs[k][1], ps);
        }
    R(OP_BCE, 0, 1, 5.0f, 7, 5, 0);
    /* conv: a = {n, c_in, h, w, c_out, kh, kw, sh, sw, pt, pb, pl, pr, dil, groups, same, max_workspace} */
    RN(OP_CONV, 1, 0, "1x1", 1, 3, 5, 7, 5, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1);
    RN(OP_CONV, 1, 0, "1x1 pad 1 (border of zeros)", 2, 4, 3, 4, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1);
    RN(OP_CONV, 1, 0, "1x1 stride 2 batch 7", 7, 6, 9, 7, 3, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1);
    RN(OP_CONV, 1, 0, "3x3 pad 1 batch 7", 7, 5, 9, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
    RN(OP_CONV, 1, 0, "3x3 stride 2 odd", 2, 3, 11, 8, 7, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1);
    RN(OP_CONV, 1, 0, "3x3 no pad", 1, 9, 8, 9, 10, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1);
    RN(OP_CONV, 1, 0, "5x5 pad 2", 1, 2, 9, 10, 3, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1);
    RN(OP_CONV, 1, 0, "5x5 stride 2 asymmetric pads", 2, 3, 10, 9, 5, 5, 5, 2, 2, 0, 2, 1, 3, 1, 1);
    RN(OP_CONV, 1, 0, "SAME 3x3 stride 2", 3, 4, 10, 7, 5, 3, 3, 2, 2, 0, 0, 0, 0, 1, 1, 1);
    RN(OP_CONV, 1, 0, "SAME 5x5 stride 2", 1, 3, 8, 9, 6, 5, 5, 2, 2, 0, 0, 0, 0, 1, 1, 1);
    RN(OP_CONV, 1, 0, "dilation 2", 2, 3, 9, 9, 4, 3, 3, 1, 1, 2, 2, 2, 2, 2, 1);
    RN(OP_CONV, 1, 0, "dilation 2 stride 2", 1, 5, 11, 10, 3, 3, 3, 2, 2, 1, 1, 1, 1, 2, 1);
    /* Winograd F(2x2, 3x3) shapes (3x3 stride 1; forced by the winograd variants; auto's choice: conv_once):
     * odd sizes (partial 2x2 tiles), pads 0, 1, 2 and asymmetric, batch > 1, one image per chunk */
    RN(OP_CONV, 1, 1, "3x3 pad 1 odd 7x9 batch 3", 3, 4, 7, 9, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
    RN(OP_CONV, 1, 0, "3x3 pad 0 odd 9x7 batch 2", 2, 6, 9, 7, 3, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1);
    RN(OP_CONV, 1, 0, "3x3 pad 2 5x6", 2, 3, 5, 6, 4, 3, 3, 1, 1, 2, 2, 2, 2, 1, 1);
    RN(OP_CONV, 1, 0, "3x3 asymmetric pads 8x5", 2, 3, 8, 5, 4, 3, 3, 1, 1, 0, 2, 1, 0, 1, 1);
    RN(OP_CONV, 1, 0, "3x3 pad 1 3x3 image", 4, 5, 3, 3, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
    RN(OP_CONV, 1, 0, "3x3 pad 1 one image per chunk", 3, 4, 7, 6, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1);
    RN(OP_CONV, 1, 0, "3x3 pad 1 256 -> 256 5x4 batch 2", 2, 256, 5, 4, 256, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
    RN(OP_CONV, 1, 0, "rectangular 1x3 stride (2,1)", 2, 3, 7, 6, 5, 1, 3, 2, 1, 0, 0, 1, 1, 1, 1);
    RN(OP_CONV, 1, 0, "groups 2", 2, 6, 7, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 2);
    RN(OP_CONV, 1, 0, "groups 3 stride 2", 7, 9, 8, 7, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1, 3);
    RN(OP_CONV, 1, 0, "depthwise 3x3 batch 7", 7, 5, 8, 7, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 5);
    RN(OP_CONV, 1, 0, "depthwise x2 SAME stride 2", 2, 3, 9, 8, 6, 3, 3, 2, 2, 0, 0, 0, 0, 1, 3, 1);
    RN(OP_CONV, 1, 0, "depthwise 5x5 dilation 2", 1, 6, 12, 11, 6, 5, 5, 1, 1, 4, 4, 4, 4, 2, 6);
    /* chunking: a workspace for 2 images (45 x 54 floats per image), and for 1 */
    RN(OP_CONV, 1, 0, "chunked 3x3 batch 7", 7, 5, 9, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 2 * 45 * 54 * 4 + 100);
    RN(OP_CONV, 1, 0, "chunked groups 2 stride 2", 5, 4, 7, 8, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1, 2, 0, 1);
    /* planes whose whole-plane loops pass 65,535 iterations per work item (im2col_plane 9*260*260,
     * dw_backward_weight_serial 2*200*200): Mesa's llvmpipe silently cut such loops short before the plane
     * kernels were tiled */
    RN(OP_CONV, 1, 0, "large plane 3x3 260x260", 1, 2, 260, 260, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
    RN(OP_CONV, 1, 0, "large plane depthwise 3x3 200x200", 2, 2, 200, 200, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 2);
    RN(OP_CONV, 0, 1, "small 3x3 s2 pad1, one image per chunk", 2, 3, 7, 6, 5, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0, 1);
    RN(OP_CONV, 0, 1, "small depthwise x2 SAME", 2, 3, 6, 5, 6, 3, 3, 2, 2, 0, 0, 0, 0, 1, 3, 1);
    /* linear: a = {n, in, out} */
    RN(OP_LINEAR, 1, 0, "1x1x1", 1, 1, 1);
    RN(OP_LINEAR, 1, 0, "batch 7", 7, 13, 5);
    RN(OP_LINEAR, 1, 0, "64 -> 10", 3, 64, 10);
    RN(OP_LINEAR, 1, 0, "100 -> 33 batch 16", 16, 100, 33);
    RN(OP_LINEAR, 0, 1, "small", 3, 7, 5);
    /* batch norm, training and eval: a = {n, c, hw, offset}, f = {eps, momentum}; the seeds of the old test_bn's
     * cases (the offset-1000 case's dgamma is within 1.0x its tolerance there, 1.4x with other data: the
     * saved mean, a float near 1000, is off by up to 3e-5, which the scale 1 + sum |dy xhat| leaves out) */
    static const struct { int n, c, hw, offset, full, small; float eps, mom; uint64_t seed; } bns[] = {
        {4, 3, 5, 0, 1, 1, 1e-5f, 0.1f, 11},
        {1, 2, 9, 0, 1, 0, 1e-5f, 0.1f, 12},      /* n = 1, hw > 1 */
        {6, 4, 1, 0, 1, 0, 1e-5f, 0.1f, 13},      /* hw = 1 (BatchNorm1d) */
        {2, 1, 1, 0, 1, 0, 1e-3f, 0.3f, 14},      /* the smallest training batch, c = 1 */
        {3, 1, 13, 0, 1, 0, 1e-5f, 0.1f, 15},     /* c = 1 */
        {5, 3, 300, 0, 1, 0, 1e-5f, 0.1f, 16},    /* n*hw = 1500 > 256 lanes */
        {64, 2, 49, 0, 1, 0, 1e-4f, 0.05f, 17},   /* batch 64, 7x7 maps */
        {300, 2, 1, 0, 1, 0, 1e-5f, 0.1f, 18},    /* hw = 1 with n > 256 */
        {7, 3, 37, 1000, 1, 0, 1e-5f, 0.1f, 19},  /* 259 values: more than the 256 strided lanes; large common offset */
        {2, 1, 1, 0, 0, 1, 1e-3f, 0.3f, 12},
        {7, 3, 37, 1000, 0, 1, 1e-5f, 0.1f, 13},
        {4, 2, 250, 0, 0, 1, 1e-5f, 0.1f, 14},    /* 1000 values: 32 blocked lanes with the item budget of 200 */
    };
    /* optimisers: every case at n = 1, 1000 and 4099; --small: 1000 for an SGD and an Adam case with decay toward
     * a reference and clipping */
    for (int c = 0; c < 6; c++)
        for (int k = 0; k < 3; k++) {
            static const int sizes[] = {1, 1000, 4099};
            const int small = sizes[k] == 1000 && (c == 1 || c == 4);
            if (optim_cases[c].adam) R(OP_ADAM, 1, small, 0, c, sizes[k]);
            else R(OP_SGD, 1, small, 0, c, sizes[k]);
        }
    /* the squared norm: 1 .. 1M+3 values; --small: 4099 */
    static const int ns[] = {1, 5, 1000, 4099, (1 << 20) + 3};
    for (int k = 0; k < 5; k++) R(OP_SQNORM, 1, ns[k] == 4099, 0, ns[k]);
    for (size_t k = 0; k < sizeof bns / sizeof bns[0]; k++) {
        RF(OP_BN_TRAIN, bns[k].full, bns[k].small, bns[k].eps, bns[k].mom, bns[k].n, bns[k].c, bns[k].hw, bns[k].offset);
        rows[n_rows - 1].seed = bns[k].seed;
        RF(OP_BN_EVAL, bns[k].full, bns[k].small, bns[k].eps, bns[k].mom, bns[k].n, bns[k].c, bns[k].hw, bns[k].offset);
        rows[n_rows - 1].seed = bns[k].seed;
    }
}

static int selected(const char *filter, const char *name) {
    if (!filter) return 1;
    size_t n = strlen(name);
    for (const char *p = filter; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, name, n)) return 1;
        p += len + (e != NULL);
    }
    return 0;
}

static void usage(void) {
    fprintf(stderr, "usage: test_ops [--device D|all] [--variant NAME] [--filter OP[,OP...]] [--small] [--list]\n"
                    "variants:");
    for (int v = 0; v < N_VARIANTS; v++) fprintf(stderr, " %s", variants[v].name);
    fprintf(stderr, "\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *device = NULL, *filter = NULL, *only_variant = NULL;
    int small = 0, list = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--small")) small = 1;
        else if (!strcmp(argv[i], "--list")) list = 1;
        else if (i + 1 < argc && !strcmp(argv[i], "--device")) device = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--filter")) filter = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--variant")) only_variant = argv[++i];
        else usage();
    }
    int vsel = -1;
    if (only_variant) {
        for (int v = 0; v < N_VARIANTS; v++) if (!strcmp(variants[v].name, only_variant)) vsel = v;
        if (vsel < 0) usage();
    }
    make_rows();
    /* every name of a filter must be an op: a misspelt one must not pass by running nothing */
    for (const char *p = filter; p && *p;) {
        const char *e = strchr(p, ',');
        char one[64];
        snprintf(one, sizeof one, "%.*s", (int)(e ? e - p : (long)strlen(p)), p);
        int found = 0;
        for (int i = 0; i < n_rows; i++) found |= !strcmp(rows[i].op->name, one);
        if (!found) {
            fprintf(stderr, "test_ops: --filter names no op '%s'\n", one);
            return 2;
        }
        p = e ? e + 1 : p + strlen(p);
    }
    if (list) {
        for (int i = 0; i < n_rows; i++) {
            if (!selected(filter, rows[i].op->name)) continue;
            char name[200];
            rows[i].op->describe(&rows[i], name, sizeof name);
            printf("%-60s %s%s\n", name, rows[i].full ? "full" : "", rows[i].small ? " small" : "");
        }
        return 0;
    }
    /* --device all: every device of every platform, one after the other */
    enum { MAX_DEVICES = 16 };
    char devs[MAX_DEVICES][16];
    const char *dev_sel[MAX_DEVICES] = {device};
    int n_dev = 1;
    if (device && !strcmp(device, "all")) {
        gf_device_info *d = NULL;
        char msg[2048];
        gf_status st = gf_devices_list(&d, &n_dev, msg, sizeof msg);
        if (st != GF_OK) {
            fprintf(stderr, "FATAL: no OpenCL device: %s\n", msg[0] ? msg : gf_status_name(st));
            return 1;
        }
        if (n_dev > MAX_DEVICES) n_dev = MAX_DEVICES;
        for (int i = 0; i < n_dev; i++) {
            snprintf(devs[i], sizeof devs[i], "%d:%d", d[i].platform_index, d[i].device_index);
            dev_sel[i] = devs[i];
        }
        free(d);
    }
    for (int dv = 0; dv < n_dev; dv++) {
        const op_def *done_once[64];
        int n_once = 0;
        for (int v = 0; v < N_VARIANTS; v++) {
            if (vsel >= 0 && v != vsel) continue;
            /* an op runs under the variants its kernels depend on, or the default when they depend on none; an
             * explicit --variant runs every selected op under it */
            if (vsel < 0 && !(small ? variants[v].small : variants[v].full)) continue;
            int wanted = 0;
            for (int i = 0; i < n_rows; i++) {
                const unsigned vs = rows[i].op->variants ? rows[i].op->variants : 1u << V_DEFAULT;
                if (selected(filter, rows[i].op->name) && (small ? rows[i].small : rows[i].full) && (vs >> v & 1)) wanted = 1;
            }
            if (!wanted && vsel < 0) continue;
            current_variant = &variants[v];
            gf_ctx *ctx = test_ctx_for(dev_sel[dv], apply_variant, &variants[v]);
            printf("device: %s (%s); variant %s: kernel paths %s\n", gf_ctx_device(ctx)->name,
                   gf_ctx_device(ctx)->platform_name, variants[v].name, gf_ctx_paths(ctx));
            for (int i = 0; i < n_rows; i++) {
                const row *rw = &rows[i];
                if (!selected(filter, rw->op->name) || !(small ? rw->small : rw->full)) continue;
                const unsigned vs = rw->op->variants ? rw->op->variants : 1u << V_DEFAULT;
                if (vsel < 0 && !(vs >> v & 1)) continue;
                int seen = 0;
                for (int k = 0; k < n_once; k++) seen |= done_once[k] == rw->op;
                if (!seen && rw->op->once) rw->op->once(ctx);
                if (!seen) done_once[n_once++] = rw->op;
                int before = gf_test_failures;
                run_row(ctx, rw, (uint64_t)i + 1);   /* by its place in the table: --filter reproduces a row */
                char name[200];
                rw->op->describe(rw, name, sizeof name);
                printf("%-60s %-8s %s\n", name, variants[v].name, gf_test_failures == before ? "ok" : "FAILED");
            }
            /* GRADFEAT_MAX_WORK_GROUP (README "Kernel paths"): no launch of these rows went above the cap */
            if (ctx->wg_cap)
                CHECK(ctx->wg_launched_max >= 1 && ctx->wg_launched_max <= ctx->wg_cap,
                      "variant %s: largest work-group launched %zu, cap %zu", variants[v].name, ctx->wg_launched_max,
                      ctx->wg_cap);
            printf("variant %s: largest work-group launched %zu\n", variants[v].name, ctx->wg_launched_max);
            gf_ctx_free(ctx);
        }
    }
    return test_finish("test_ops");
}
