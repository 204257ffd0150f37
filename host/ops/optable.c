/* The op table: rows {op, shape, attributes} and the one driver that checks them (optable.h; tests/test_ops.c
 * runs every row under every kernel-path variant, `gradfeat selftest` the quick rows). For every row:
 *  - forward vs the double reference (ref_ops.c), into a buffer filled with NaN first (every output value
 *    must be written), and a second run bitwise equal (determinism);
 *  - tangent with all differentiable inputs moving and, with two or more, each one alone: vs the
 *    reference tangent where there is one, vs central finite differences of the reference forward, the
 *    partial tangents summing to the full one (linearity); the full tangent twice, bitwise;
 *  - backward into NaN-filled buffers vs the reference, the adjoint identity <J v, u> = sum_k <v_k, g_k>
 *    against the device tangent or, for ops without one (losses, training BN), each gradient element vs
 *    central differences of <f(x), u>; twice, bitwise; accumulate mode (the same gradient added: twice it);
 *    each gradient alone bitwise equal to it computed with the others.
 * Tolerances: |got - ref| <= atol + rtol |ref| + stol S, S the same sums over |inputs| or the op's own
 * scale (each op's comment says why its tolerances are what they are). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "optable.h"
#include "ref_ops.h"
#include "ops_act.h"
#include "ops_bn.h"
#include "ops_ln.h"
#include "ops_loss.h"
#include "ops_merge.h"
#include "ops_optim.h"
#include "ops_util.h"

/* ---------------- shared helpers ---------------- */

void ot_rng_seed(ot_rng *r, uint64_t seed) { r->s = seed * 0x9E3779B97F4A7C15ULL + 1; }
double ot_uniform(ot_rng *r, double lo, double hi) {
    /* xorshift64* */
    r->s ^= r->s >> 12; r->s ^= r->s << 25; r->s ^= r->s >> 27;
    uint64_t v = r->s * 0x2545F4914F6CDD1DULL;
    return lo + (hi - lo) * ((double)(v >> 11) / 9007199254740992.0);
}
void ot_fill(ot_rng *r, float *x, size_t n, double lo, double hi) {
    for (size_t i = 0; i < n; i++) x[i] = (float)ot_uniform(r, lo, hi);
}
static void uniform(ot_rng *r, float *x, size_t n, double lo, double hi) { ot_fill(r, x, n, lo, hi); }

static float *falloc(size_t n) { return calloc(n ? n : 1, sizeof(float)); }
static double *dalloc(size_t n) { return calloc(n ? n : 1, sizeof(double)); }

static double dot_f(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static void checkf(ot_sink *sink, int pass, double ratio, double abs_err, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sink->check(sink, pass, ratio, abs_err, msg);
}

/* |got - ref| <= atol + rtol |ref| + stol S (S may be NULL: 0); NaN fails. */
int ot_check_tol(ot_sink *sink, const char *name, const char *what, const float *got, const double *ref,
                 const double *S, size_t n, tol t) {
    double worst = 0, abs_err = 0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - ref[i]), lim = t.atol + t.rtol * fabs(ref[i]) + (S ? t.stol * S[i] : 0);
        double e = err == 0 ? 0 : err / lim;   /* exact tolerance: any difference is infinitely bad */
        if (!(e <= worst)) { worst = e; wi = i; }
        if (!(err <= abs_err)) abs_err = err;
    }
    const int pass = worst <= 1.0;
    if (pass) checkf(sink, 1, worst, abs_err, "%s: %s", name, what);
    else checkf(sink, 0, worst, abs_err, "%s: %s: index %zu got %.9g want %.9g (err %.3g x tolerance; atol %g rtol %g stol %g S %.3g)",
                name, what, wi, got[wi], ref[wi], worst, t.atol, t.rtol, t.stol, S ? S[wi] : 0.0);
    return pass;
}

/* The same rule for a double (a reference checked against its finite differences). */
int ot_check_tol_d(ot_sink *sink, const char *name, const char *what, const double *got, const double *ref,
                   const double *S, size_t n, tol t) {
    double worst = 0, abs_err = 0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        double err = fabs(got[i] - ref[i]), lim = t.atol + t.rtol * fabs(ref[i]) + (S ? t.stol * S[i] : 0);
        double e = err == 0 ? 0 : err / lim;
        if (!(e <= worst)) { worst = e; wi = i; }
        if (!(err <= abs_err)) abs_err = err;
    }
    const int pass = worst <= 1.0;
    if (pass) checkf(sink, 1, worst, abs_err, "%s: %s", name, what);
    else checkf(sink, 0, worst, abs_err, "%s: %s: index %zu got %.12g want %.12g (err %.3g x tolerance)", name, what,
                wi, got[wi], ref[wi], worst);
    return pass;
}

/* Exactly n floats (one for n = 0: OpenCL has no empty buffers), so that a kernel reading or writing one past
 * the end is an out-of-bounds access that oclgrind reports (tests/cli_oclgrind_*.sh). */
gf_status ot_alloc(gf_ctx *ctx, size_t n, cl_mem *m) {
    const size_t bytes = (n ? n : 1) * sizeof(float);
    *m = NULL;
    gf_status st = gf_buf_create(ctx, bytes, "op table buffer", m);
    if (st == GF_OK) st = gf_buf_zero(ctx, *m, 0, bytes);
    if (st != GF_OK) gf_buf_release(m);
    return st;
}
gf_status ot_upload(gf_ctx *ctx, const float *x, size_t n, cl_mem *m) {
    GF_TRY(ot_alloc(ctx, n, m));
    gf_status st = n ? gf_buf_write(ctx, *m, 0, n * sizeof(float), x) : GF_OK;
    if (st != GF_OK) gf_buf_release(m);
    return st;
}
gf_status ot_download(gf_ctx *ctx, cl_mem m, float *x, size_t n) {
    return n ? gf_buf_read(ctx, m, 0, n * sizeof(float), x) : GF_OK;
}

/* A row's run: after the first failed library call (sent to the sink) no device call is made; the host
 * side goes on with NaN data, so its checks fail and nothing is left allocated. */
typedef struct run { gf_ctx *ctx; ot_sink *sink; gf_status st; } run;
#define DEV(R, expr) do { if ((R)->st == GF_OK) { gf_status dev_s_ = (expr); \
    if (dev_s_ != GF_OK) { (R)->st = dev_s_; (R)->sink->error((R)->sink, (R)->ctx, dev_s_, #expr); } } } while (0)
static cl_mem nan_buffer(run *R, size_t n) {
    cl_mem m = NULL;
    DEV(R, ot_alloc(R->ctx, n, &m));
    if (n) DEV(R, gf_fill(R->ctx, n, NAN, m));
    return m;
}
static cl_mem upload(run *R, const float *x, size_t n) {
    cl_mem m = NULL;
    DEV(R, ot_upload(R->ctx, x, n, &m));
    return m;
}
static float *download(run *R, cl_mem m, size_t n) {
    float *a = falloc(n);
    if (R->st == GF_OK) DEV(R, ot_download(R->ctx, m, a, n));
    if (R->st != GF_OK) for (size_t i = 0; i < n; i++) a[i] = NAN;
    return a;
}

/* ---------------- the driver: every row the same way ---------------- */

/* An exact check: two results bitwise the same; k >= 0: of gradient k. */
static void bitwise(ot_sink *sink, const void *a, const void *b, size_t bytes, const char *name, const char *what, int k) {
    const int same = memcmp(a, b, bytes) == 0;
    char w[64];
    if (k >= 0) snprintf(w, sizeof w, what, k);
    checkf(sink, same, same ? 0 : INFINITY, 0, "%s: %s%s", name, k >= 0 ? w : what, same ? "" : ": differs");
}

static gf_status run_tangent(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *tin, cl_mem out) {
    return rw->op->tan ? rw->op->tan(ctx, rw, T, T->bx, tin, out) : rw->op->fwd(ctx, rw, T, tin, out);
}
static void ref_tangent(const row *rw, const tensors *T, const double *const *in, const double *const *tin, double *out) {
    if (rw->op->ref_tan) rw->op->ref_tan(rw, T, in, tin, out);
    else rw->op->ref(rw, T, tin, out);
}

gf_status gf_ot_run_row(gf_ctx *ctx, const row *rw, uint64_t seed, int conv_variant, ot_sink *sink, ot_extra_fn extra) {
    run R0 = {ctx, sink, GF_OK}, *R = &R0;
    const op_def *op = rw->op;
    char name[200];
    op->describe(rw, name, sizeof name);
    tensors T;
    memset(&T, 0, sizeof T);
    T.conv_variant = conv_variant;
    DEV(R, op->shape(ctx, rw, &T));
    ot_rng r;
    ot_rng_seed(&r, rw->seed ? rw->seed : seed);
    for (int k = 0; k < T.n_in; k++) T.x[k] = falloc(T.n[k]);
    if (op->fill) DEV(R, op->fill(ctx, rw, &T, &r));
    else for (int k = 0; k < T.n_in; k++) uniform(&r, T.x[k], T.n[k], -1, 1);
    for (int k = 0; k < T.n_in; k++) {
        T.xd[k] = dalloc(T.n[k]);
        for (size_t i = 0; i < T.n[k]; i++) T.xd[k][i] = T.x[k][i];
        T.bx[k] = upload(R, T.x[k], T.n[k]);
    }
    if (R->st != GF_OK) {   /* no state to compute references on */
        if (op->release && T.state) op->release(&T);
        for (int k = 0; k < T.n_in; k++) { free(T.x[k]); free(T.xd[k]); gf_buf_release(&T.bx[k]); }
        return R->st;
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
    cl_mem by = nan_buffer(R, no), by2 = nan_buffer(R, no);
    DEV(R, op->fwd(ctx, rw, &T, T.bx, by));
    DEV(R, op->fwd(ctx, rw, &T, T.bx, by2));
    float *y = download(R, by, no), *y2 = download(R, by2, no);
    ot_check_tol(sink, name, "forward", y, yref, S, no, tl.fwd);
    bitwise(sink, y, y2, no * sizeof *y, name, "forward twice, bitwise", -1);
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
            bv[k] = upload(R, v[k], T.n[k]);
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
        cl_mem bt = nan_buffer(R, no);
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
            DEV(R, gf_fill(ctx, no, NAN, bt));
            DEV(R, run_tangent(ctx, rw, &T, tin, bt));
            float *got = download(R, bt, no);
            if (need_st) {
                const double *atin[MAX_IN] = {0};
                for (int k = 0; k < T.n_in; k++) atin[k] = tind[k] ? av[k] : NULL;
                St = dalloc(no);
                ref_tangent(rw, &T, (const double *const *)ax, atin, St);
            }
            if (has_ref_tan) {
                ref_tangent(rw, &T, xin, tind, ref);
                ot_check_tol(sink, name, what, got, ref, St, no, tl.tan);
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
            ot_check_tol(sink, name, w2, got, ref, St, no, tl.fd);
            if (which < 0) { jv = got; St_full = St; }
            else {
                for (size_t i = 0; i < no; i++) partial_sum[i] += got[i];
                free(got); free(St);
            }
            St = NULL;
        }
        if (ndiff >= 2)
            ot_check_tol(sink, name, "the partial tangents sum to the full one", jv, partial_sum, St_full, no, tl.lin);
        cl_mem tin[MAX_IN] = {0};
        for (int k = 0; k < T.n_in; k++) tin[k] = T.diff[k] ? bv[k] : NULL;
        DEV(R, run_tangent(ctx, rw, &T, tin, bt));
        float *again = download(R, bt, no);
        bitwise(sink, jv, again, no * sizeof *jv, name, "tangent twice, bitwise", -1);
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
        cl_mem bu = upload(R, u, no), bg[MAX_IN] = {0}, bg2[MAX_IN] = {0};
        for (int k = 0; k < T.n_in; k++)
            if (T.diff[k]) { bg[k] = nan_buffer(R, T.n[k]); bg2[k] = nan_buffer(R, T.n[k]); }
        DEV(R, op->bwd(ctx, rw, &T, T.bx, bu, bg, 0));
        DEV(R, op->bwd(ctx, rw, &T, T.bx, bu, bg2, 0));
        for (int k = 0; k < T.n_in; k++)
            if (T.diff[k]) {
                g[k] = download(R, bg[k], T.n[k]);
                float *again = download(R, bg2[k], T.n[k]);
                bitwise(sink, g[k], again, T.n[k] * sizeof *again, name, "gradient %d twice, bitwise", k);
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
                    ot_check_tol(sink, name, what, g[k], rg[k], sg[k], T.n[k], tl.bwd[k]);
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
            const int pass = rel <= tl.adj && (den > 0 || !(op->flags & OP_ADJ_ABS));
            checkf(sink, pass, pass ? rel / tl.adj : fmax(rel / tl.adj, 1.0 + 1e-9), fabs(lhs - rhs),
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
                ot_check_tol(sink, name, what, gs, fd, Sm, m, tl.bwd_fd);
                if (rm) {   /* the reference itself against its finite differences */
                    snprintf(what, sizeof what, "reference gradient %d vs central differences", k);
                    ot_check_tol_d(sink, name, what, rm, fd, Sm, m, tl.bwd_fd);
                }
                free(fd); free(gs); free(Sm); free(rm);
            }
            free(yo);
        }
        if (op->flags & OP_ACC) {   /* the same gradient added to itself: twice it (exactly, for the exact ops) */
            DEV(R, op->bwd(ctx, rw, &T, T.bx, bu, bg, 1));
            for (int k = 0; k < T.n_in; k++)
                if (T.diff[k]) {
                    float *got = download(R, bg[k], T.n[k]);
                    double *twice = dalloc(T.n[k]), *S2 = sg[k] ? dalloc(T.n[k]) : NULL;
                    for (size_t i = 0; i < T.n[k]; i++) {
                        twice[i] = 2.0 * g[k][i];
                        if (S2) S2[i] = 2 * sg[k][i];
                    }
                    char what[64];
                    snprintf(what, sizeof what, "backward gradient %d accumulated", k);
                    ot_check_tol(sink, name, what, got, twice, S2, T.n[k], tl.bwd[k]);
                    free(got); free(twice); free(S2);
                }
        }
        if ((op->flags & OP_GRAD_ALONE) && ndiff >= 2)
            for (int k = 0; k < T.n_in; k++) {
                if (!T.diff[k]) continue;
                cl_mem only[MAX_IN] = {0};
                only[k] = bg2[k];
                DEV(R, gf_fill(ctx, T.n[k], NAN, bg2[k]));
                DEV(R, op->bwd(ctx, rw, &T, T.bx, bu, only, 0));
                float *got = download(R, bg2[k], T.n[k]);
                bitwise(sink, got, g[k], T.n[k] * sizeof *got, name, "gradient %d alone, bitwise the same", k);
                free(got);
            }
        res.u = u;
        for (int k = 0; k < T.n_in; k++) { gf_buf_release(&bg[k]); gf_buf_release(&bg2[k]); free(sg[k]); free(rgrad[k]); }
        gf_buf_release(&bu);
        free(ud);
    }
    if (extra && R->st == GF_OK) extra(ctx, rw, &T, &res, name);

    if (op->release && T.state) op->release(&T);
    for (int k = 0; k < T.n_in; k++) {
        free(T.x[k]); free(T.xd[k]); free(v[k]); free(vd[k]); free(g[k]);
        gf_buf_release(&T.bx[k]); gf_buf_release(&bv[k]);
    }
    gf_buf_release(&by); gf_buf_release(&by2);
    free(yref); free(S); free(y); free(y2); free(jv); free(u);
    return R->st;
}


/* ---------------- act: activations (cl/act.cl); a = {kind, n}, f = {slope} ----------------
 * ReLU and ReLU6 are selections: exact; LeakyReLU one float product: 1e-30 + 1.2e-7 |ref| (half an ulp is
 * 6e-8); the smooth kinds go through exp/erfc/tanh of a few ulp (erfc up to 16): 1e-7 + 2e-6 |ref|;
 * hard-sigmoid/hard-swish (two or three float ops): 1e-7 + 5e-7 |ref|. FD (h = 1e-3): 1e-6 + 1e-6 |ref| for
 * the piecewise-linear/quadratic kinds, 2e-6 + 2e-6 |ref| for the smooth ones (h^2 max|f'''| / 6 <= 4e-7);
 * inputs stay >= 0.05 from every kink, so the step (at most 1e-3) never crosses one. Adjoint 1e-4. */

gf_act ot_act_of(const row *rw) { return (gf_act){(gf_act_kind)rw->a[0], rw->f[0]}; }

static void act_describe(const row *rw, char *b, size_t n) {
    snprintf(b, n, "act %s(%g) n=%d", gf_act_name((gf_act_kind)rw->a[0]), rw->f[0], rw->a[1]);
}
static gf_status act_shape(gf_ctx *ctx, const row *rw, tensors *T) {
    (void)ctx;
    T->n_in = 1; T->n[0] = T->n_out = (size_t)rw->a[1]; T->diff[0] = 1;
    return GF_OK;
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
static gf_status act_fill(gf_ctx *ctx, const row *rw, tensors *T, ot_rng *r) {
    (void)ctx;
    for (size_t i = 0; i < T->n[0]; i++) {
        double v;
        do v = ot_uniform(r, -9, 9); while (near_kink(ot_act_of(rw), v));
        T->x[0][i] = (float)v;
    }
    return GF_OK;
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
    for (size_t i = 0; i < T->n_out; i++) out[i] = ref_act(ot_act_of(rw), in[0][i]);
}
static void act_ref_tan(const row *rw, const tensors *T, const double *const *in, const double *const *tin, double *out) {
    for (size_t i = 0; i < T->n_out; i++) out[i] = tin[0][i] * ref_act_d(ot_act_of(rw), in[0][i]);
}
static void act_ref_bwd(const row *rw, const tensors *T, const double *const *in, const double *u, double *const *g) {
    for (size_t i = 0; i < T->n_out; i++) g[0][i] = u[i] * ref_act_d(ot_act_of(rw), in[0][i]);
}
static gf_status act_fwd(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, cl_mem out) {
    return gf_act_forward(ctx, ot_act_of(rw), T->n_out, in[0], out);
}
static gf_status act_tan(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, const cl_mem *tin, cl_mem out) {
    return gf_act_tangent(ctx, ot_act_of(rw), T->n_out, in[0], tin[0], out);
}
static gf_status act_bwd(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, cl_mem u, const cl_mem *g, int acc) {
    (void)acc;
    return gf_act_backward(ctx, ot_act_of(rw), T->n_out, in[0], u, g[0]);
}
static const op_def OP_ACT = {.name = "act", .variants = 1u << V_DEFAULT | 1u << V_ELEMENT, .describe = act_describe, .shape = act_shape, .fill = act_fill,
    .tols = act_tols, .ref = act_ref, .fwd = act_fwd, .tan = act_tan, .ref_tan = act_ref_tan, .bwd = act_bwd,
    .ref_bwd = act_ref_bwd};

/* ---------------- ln: layer norm over channels (cl/ln.cl); a = {N, C, H, W, constant pixel}, f = {eps} ----------------
 * 2e-6 + 2e-6 |ref| (float sums over C; the 1/s of a pixel with variance ~1); FD (h = 1e-3, error
 * h^2 |y'''| / 6): 1e-5 + 1e-5 |ref|; adjoint 1e-5. A constant pixel (variance 0: only eps) has s = sqrt(eps):
 * the FD step would leave the linear regime, so its outputs are left out of the FD check only. */

static void ln_describe(const row *rw, char *b, size_t n) {
    snprintf(b, n, "ln %dx%dx%dx%d eps %g%s", rw->a[0], rw->a[1], rw->a[2], rw->a[3], rw->f[0],
             rw->a[4] ? " (a constant pixel)" : "");
}
static gf_status ln_shape(gf_ctx *ctx, const row *rw, tensors *T) {
    (void)ctx;
    T->n_in = 1; T->n[0] = T->n_out = (size_t)rw->a[0] * rw->a[1] * rw->a[2] * rw->a[3]; T->diff[0] = 1;
    return GF_OK;
}
static gf_status ln_fill(gf_ctx *ctx, const row *rw, tensors *T, ot_rng *r) {
    (void)ctx;
    const size_t HW = (size_t)rw->a[2] * rw->a[3];
    uniform(r, T->x[0], T->n[0], -2, 2);
    for (size_t i = 0; i < T->n[0]; i++) T->x[0][i] += (float)(0.3 * ((i / HW) % 5));   /* a non-zero mean */
    if (rw->a[4]) for (int c = 0; c < rw->a[1]; c++) T->x[0][(size_t)c * HW] = 0.75f;
    return GF_OK;
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
/* The Jacobian-vector product (symmetric: also the backward's), pixel by pixel. */
static void ln_ref_jac(const row *rw, const double *x, const double *t, double *out) {
    double xs[LN_MAX_C], ts[LN_MAX_C], js[LN_MAX_C];
    LN_EACH_PIXEL(rw) {
        for (int c = 0; c < C; c++) { xs[c] = x[LN_AT(c)]; ts[c] = t[LN_AT(c)]; }
        ref_ln_jvp(xs, ts, C, rw->f[0], js);
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
static const op_def OP_LN = {.name = "ln", .describe = ln_describe, .shape = ln_shape, .fill = ln_fill,
    .tols = ln_tols, .ref = ln_ref, .fwd = ln_fwd, .tan = ln_tan, .ref_tan = ln_ref_tan, .bwd = ln_bwd,
    .ref_bwd = ln_ref_bwd, .fd_skip = ln_fd_skip};

/* ---------------- mul: y = x * s (cl/merge.cl); a = {N, C, H, W, gate} ----------------
 * Elementwise, or with a per-channel gate s [N, C, 1, 1] broadcast over H x W (squeeze-excitation): the first
 * op whose tangent has two moving inputs (both, x only, s only; linearity). One float product:
 * 1e-30 + 1.2e-7 |ref|; the product rule (two products and a sum) and the FD (bilinear: exact up to
 * rounding): 1e-6 + 1e-6 |ref|; the gate gradient is a float sum of HW products (up to 3136 terms of
 * |u x| <= 2): 1e-5 of the sum of |u x|; adjoint 1e-5. Planes of 1, 7x7 and 8x8 (one work item per plane),
 * 9x9 and 56x56 (a work-group per plane). */

size_t ot_mul_planes(const row *rw) { return (size_t)rw->a[0] * rw->a[1]; }
size_t ot_mul_hw(const row *rw) { return (size_t)rw->a[2] * rw->a[3]; }
static void mul_describe(const row *rw, char *b, size_t n) {
    snprintf(b, n, "mul %s %dx%dx%dx%d", rw->a[4] ? "gate" : "elementwise", rw->a[0], rw->a[1], rw->a[2], rw->a[3]);
}
static gf_status mul_shape(gf_ctx *ctx, const row *rw, tensors *T) {
    (void)ctx;
    T->n_in = 2;
    T->n[0] = T->n_out = ot_mul_planes(rw) * ot_mul_hw(rw);
    T->n[1] = rw->a[4] ? ot_mul_planes(rw) : T->n[0];
    T->diff[0] = T->diff[1] = 1;
    return GF_OK;
}
static gf_status mul_fill(gf_ctx *ctx, const row *rw, tensors *T, ot_rng *r) {
    (void)ctx; (void)rw;
    uniform(r, T->x[0], T->n[0], -2, 2);
    uniform(r, T->x[1], T->n[1], -1.5, 1.5);
    return GF_OK;
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
    ref_mul(ot_mul_planes(rw), ot_mul_hw(rw), rw->a[4], in[0], in[1], out);
}
static void mul_ref_tan(const row *rw, const tensors *T, const double *const *in, const double *const *tin, double *out) {
    const size_t HW = ot_mul_hw(rw);
    for (size_t i = 0; i < T->n_out; i++) {
        size_t si = rw->a[4] ? i / HW : i;
        out[i] = (tin[0] ? tin[0][i] * in[1][si] : 0) + (tin[1] ? in[0][i] * tin[1][si] : 0);
    }
}
static void mul_ref_bwd(const row *rw, const tensors *T, const double *const *in, const double *u, double *const *g) {
    (void)T;
    ref_mul_backward(ot_mul_planes(rw), ot_mul_hw(rw), rw->a[4], in[0], in[1], u, g[0], g[1]);
}
static gf_status mul_fwd(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, cl_mem out) {
    (void)T;
    return gf_mul_forward(ctx, ot_mul_planes(rw), ot_mul_hw(rw), rw->a[4], in[0], in[1], out);
}
static gf_status mul_tan(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, const cl_mem *tin, cl_mem out) {
    (void)T;
    return gf_mul_tangent(ctx, ot_mul_planes(rw), ot_mul_hw(rw), rw->a[4], in[0], in[1], tin[0], tin[1], out);
}
static gf_status mul_bwd(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, cl_mem u, const cl_mem *g, int acc) {
    (void)T; (void)acc;
    return gf_mul_backward(ctx, ot_mul_planes(rw), ot_mul_hw(rw), rw->a[4], in[0], in[1], u, g[0], g[1]);
}
static const op_def OP_MUL = {.name = "mul", .flags = OP_GRAD_ALONE, .describe = mul_describe, .shape = mul_shape,
    .fill = mul_fill, .tols = mul_tols, .ref = mul_ref, .fwd = mul_fwd, .tan = mul_tan, .ref_tan = mul_ref_tan,
    .bwd = mul_bwd, .ref_bwd = mul_ref_bwd};

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
static gf_status concat_shape(gf_ctx *ctx, const row *rw, tensors *T) {
    (void)ctx;
    const size_t NHW = (size_t)rw->a[0] * rw->a[2] * rw->a[3];
    T->n_in = rw->a[1];
    for (int k = 0; k < T->n_in; k++) { T->n[k] = NHW * rw->a[4 + k]; T->diff[k] = 1; }
    T->n_out = NHW * concat_total(rw);
    return GF_OK;
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
static gf_status shuffle_shape(gf_ctx *ctx, const row *rw, tensors *T) {
    (void)ctx;
    T->n_in = 1; T->n[0] = T->n_out = (size_t)rw->a[0] * rw->a[1] * rw->a[2] * rw->a[3]; T->diff[0] = 1;
    return GF_OK;
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
static const op_def OP_SHUFFLE = {.name = "shuffle", .flags = OP_ACC | OP_IS_LINEAR, .describe = shuffle_describe,
    .shape = shuffle_shape, .tols = copy_tols, .ref = shuffle_ref, .fwd = shuffle_fwd, .bwd = shuffle_bwd,
    .ref_bwd = shuffle_ref_bwd};

/* ---------------- slice of channels off .. off+Ck (torch.chunk; cl/merge.cl); a = {N, C, H, W, off, Ck} ---------------- */

static void slice_describe(const row *rw, char *b, size_t n) {
    snprintf(b, n, "slice %d..%d of %dx%dx%dx%d", rw->a[4], rw->a[4] + rw->a[5], rw->a[0], rw->a[1], rw->a[2], rw->a[3]);
}
static gf_status slice_shape(gf_ctx *ctx, const row *rw, tensors *T) {
    (void)ctx;
    const size_t HW = (size_t)rw->a[2] * rw->a[3];
    T->n_in = 1; T->n[0] = (size_t)rw->a[0] * rw->a[1] * HW; T->diff[0] = 1;
    T->n_out = (size_t)rw->a[0] * rw->a[5] * HW;
    return GF_OK;
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
static gf_status pool_shape(gf_ctx *ctx, const row *rw, tensors *T) {
    const int *a = rw->a;
    pool_state *s = calloc(1, sizeof *s);
    if (!s) return GF_ERR_MEMORY;
    T->state = s;
    if (a[10]) GF_TRY( gf_pool2d_init_tf(ctx, &s->p, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], 1));
    else GF_TRY(gf_pool2d_init(ctx, &s->p, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9]));
    s->p.count_include_pad = a[11];
    T->n_in = 1; T->n[0] = gf_pool2d_in_count(&s->p); T->n_out = gf_pool2d_out_count(&s->p); T->diff[0] = 1;
    GF_TRY(ot_alloc(ctx, T->n_out, &s->arg));
    GF_TRY(ot_alloc(ctx, T->n_out, &s->arg2));
    return GF_OK;
}
static void pool_release(tensors *T) {
    pool_state *s = T->state;
    gf_buf_release(&s->arg); gf_buf_release(&s->arg2);
    free(s);
}
/* distinct values: a shuffled grid k * 0.01 - offset */
static gf_status pool_fill(gf_ctx *ctx, const row *rw, tensors *T, ot_rng *r) {
    (void)ctx; (void)rw;
    const size_t ni = T->n[0];
    float *x = T->x[0];
    for (size_t i = 0; i < ni; i++) x[i] = (float)((double)i * 0.01 - (double)ni * 0.005);
    for (size_t i = ni; i > 1; i--) {
        size_t j = (size_t)ot_uniform(r, 0, (double)i);
        float tmp = x[i - 1]; x[i - 1] = x[j]; x[j] = tmp;
    }
    return GF_OK;
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
static const op_def OP_MAXPOOL = {.name = "maxpool", .variants = 1u << V_DEFAULT | 1u << V_ELEMENT, .describe = maxpool_describe, .shape = pool_shape,
    .fill = pool_fill, .tols = maxpool_tols, .ref = maxpool_ref, .fwd = maxpool_fwd, .tan = maxpool_tan,
    .ref_tan = maxpool_ref_tan, .bwd = maxpool_bwd, .ref_bwd = maxpool_ref_bwd, .release = pool_release};
static const op_def OP_AVGPOOL = {.name = "avgpool", .flags = OP_IS_LINEAR, .describe = avgpool_describe,
    .shape = pool_shape, .fill = pool_fill, .tols = avgpool_tols, .ref = avgpool_ref, .fwd = avgpool_fwd,
    .tan = avgpool_tan, .bwd = avgpool_bwd, .ref_bwd = avgpool_ref_bwd, .release = pool_release};

/* ---------------- gap: global average pool (cl/pool.cl); a = {NC, HW} ----------------
 * Forward and tangent (the same op: linear) 1e-6 + 1e-5 |ref|; backward 1e-7 + 1e-6 |ref|; FD 1e-5 + 1e-5;
 * adjoint 1e-4. Planes of 1, 7x7 (gap_forward_small), 300, 64, 4099 and 9x9 (a work-group tree per plane). */

static void gap_describe(const row *rw, char *b, size_t n) { snprintf(b, n, "gap NC=%d HW=%d", rw->a[0], rw->a[1]); }
static gf_status gap_shape(gf_ctx *ctx, const row *rw, tensors *T) {
    (void)ctx;
    T->n_in = 1; T->n[0] = (size_t)rw->a[0] * rw->a[1]; T->n_out = (size_t)rw->a[0]; T->diff[0] = 1;
    return GF_OK;
}
static gf_status gap_fill(gf_ctx *ctx, const row *rw, tensors *T, ot_rng *r) {
    (void)ctx; (void)rw;
    uniform(r, T->x[0], T->n[0], -2, 2);
    return GF_OK;
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
static gf_status xent_shape(gf_ctx *ctx, const row *rw, tensors *T) {
    (void)ctx;
    T->n_in = 1; T->n[0] = (size_t)rw->a[0] * rw->a[1]; T->diff[0] = 1; T->n_out = 2;
    T->state = calloc(1, sizeof(loss_state));
    return T->state ? GF_OK : GF_ERR_MEMORY;
}
/* logits in [-scale, scale]; every third row ignored (label -1) when asked; the label's logit pushed up
 * in every other row, so that some rows are right */
static gf_status xent_fill(gf_ctx *ctx, const row *rw, tensors *T, ot_rng *r) {
    const int B = rw->a[0], K = rw->a[1];
    const double scale = rw->f[0];
    loss_state *s = T->state;
    float *z = T->x[0];
    s->labels = malloc((size_t)B * sizeof(int));
    if (!s->labels) return GF_ERR_MEMORY;
    uniform(r, z, T->n[0], -scale, scale);
    for (int i = 0; i < B; i++) {
        s->labels[i] = (int)ot_uniform(r, 0, K);
        if (rw->a[2] && i % 3 == 1) s->labels[i] = -1;
        if (i % 2 == 0 && s->labels[i] >= 0) z[(size_t)i * K + s->labels[i]] += (float)scale;
    }
    GF_TRY(gf_buf_create_from(ctx, (size_t)B * sizeof(int), s->labels, "labels", &s->blabels));
    return GF_OK;
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
    cl_mem out = NULL;
    GF_TRY(ot_alloc(ctx, 2, &out));
    gf_status st = gf_softmax_xent(ctx, rw->a[0], rw->a[1], in[0], ((loss_state *)T->state)->blabels, g[0], out, 0, 0);
    gf_buf_release(&out);
    return st;
}
static const op_def OP_XENT = {.name = "xent", .flags = OP_LOSS | OP_BWD_FD, .describe = xent_describe,
    .shape = xent_shape, .fill = xent_fill, .tols = loss_tols, .ref = xent_ref, .fwd = xent_fwd, .bwd = xent_bwd,
    .ref_bwd = xent_ref_bwd, .release = loss_release};

static void bce_describe(const row *rw, char *b, size_t n) {
    snprintf(b, n, "bce B=%d K=%d scale %g per_sample %d", rw->a[0], rw->a[1], rw->f[0], rw->a[2]);
}
/* inputs: the logits and the targets (not differentiated) */
static gf_status bce_shape(gf_ctx *ctx, const row *rw, tensors *T) {
    (void)ctx;
    T->n_in = 2; T->n[0] = T->n[1] = (size_t)rw->a[0] * rw->a[1]; T->diff[0] = 1; T->n_out = 2;
    T->state = calloc(1, sizeof(loss_state));
    return T->state ? GF_OK : GF_ERR_MEMORY;
}
/* targets 1 and 0, about 10% ignored (-1) */
static gf_status bce_fill(gf_ctx *ctx, const row *rw, tensors *T, ot_rng *r) {
    (void)ctx;
    uniform(r, T->x[0], T->n[0], -rw->f[0], rw->f[0]);
    for (size_t i = 0; i < T->n[1]; i++) {
        double v = ot_uniform(r, 0, 1);
        T->x[1][i] = v < 0.1 ? -1.0f : (v < 0.55 ? 1.0f : 0.0f);
    }
    return GF_OK;
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
    cl_mem out = NULL;
    GF_TRY(ot_alloc(ctx, 2, &out));
    gf_status st = gf_sigmoid_bce(ctx, rw->a[0], rw->a[1], in[0], in[1], g[0], out, 0, 0, rw->a[2]);
    gf_buf_release(&out);
    return st;
}
static const op_def OP_BCE = {.name = "bce", .flags = OP_LOSS | OP_BWD_FD, .describe = bce_describe,
    .shape = bce_shape, .fill = bce_fill, .tols = loss_tols, .ref = bce_ref, .fwd = bce_fwd, .bwd = bce_bwd,
    .ref_bwd = bce_ref_bwd, .release = loss_release};

/* ---------------- conv / linear: the affine family (cl/conv.cl, GEMMs) ----------------
 * conv: a = {n, c_in, h, w, c_out, kh, kw, sh, sw, pt, pb, pl, pr, dil, groups, same, max_workspace}
 * (same: TF SAME pads from kh and sh on both axes; max_workspace: bytes per scratch slot, to force chunked
 * batches); linear: a = {n, in, out}. Inputs x, W, b; every check runs under each kernel-path variant.
 * Tolerance: |got - ref| <= 1e-5 (1 + S), S the same sum over |terms| (the reference on |inputs|): fp32
 * accumulation error is a few eps S, a missing or wrong term costs about S / terms, far above 1e-5 S here.
 * Adjoint 1e-4 of max(|<Jv,u>|, |<v,J^T u>|, sum |Jv_i u_i|) (the large planes sum 10^5 terms). */


static int is_linear(const row *rw);
static void conv_describe(const row *rw, char *b, size_t n) {
    const int *a = rw->a;
    if (is_linear(rw)) { snprintf(b, n, "linear %s: n %d, %d -> %d", rw->note, a[0], a[1], a[2]); return; }
    snprintf(b, n, "conv %s: %dx%dx%dx%d -> %d, k%dx%d s%dx%d%s, dil %d, groups %d", rw->note, a[0], a[1], a[2], a[3],
             a[4], a[5], a[6], a[7], a[8], a[15] ? " SAME" : "", a[13], a[14]);
}
static gf_status conv_shape(gf_ctx *ctx, const row *rw, tensors *T) {
    const int *a = rw->a;
    affine_state *s = calloc(1, sizeof *s);
    if (!s) return GF_ERR_MEMORY;
    T->state = s;
    gf_conv_desc *d = &s->d;
    if (is_linear(rw)) {   /* the reference's view: a 1x1 convolution of 1x1 images */
        GF_TRY(gf_conv_desc_init(ctx, d, a[0], a[1], 1, 1, a[2], 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1));
    } else {
        int pt = a[9], pb = a[10], pl = a[11], pr = a[12];
        if (a[15]) {
            gf_conv_same_pads(a[2], a[5], a[7], a[13], &pt, &pb);
            gf_conv_same_pads(a[3], a[6], a[8], a[13], &pl, &pr);
        }
        GF_TRY(gf_conv_desc_init(ctx, d, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], pt, pb, pl, pr,
                                 a[13], a[13], a[14]));
        d->max_workspace = (size_t)a[16];
        d->variant = T->conv_variant;
    }
    T->n_in = 3;
    T->n[0] = (size_t)d->n * d->c_in * d->h_in * d->w_in;
    T->n[1] = (size_t)d->c_out * (d->c_in / d->groups) * d->kh * d->kw;
    T->n[2] = (size_t)d->c_out;
    T->diff[0] = T->diff[1] = T->diff[2] = 1;
    T->n_out = (size_t)d->n * d->c_out * d->h_out * d->w_out;
    return GF_OK;
}
static void conv_release(tensors *T) { free(T->state); }
static void conv_tols(const row *rw, tols *t) {
    (void)rw;
    const tol s = {1e-5, 0, 1e-5};
    t->fwd = t->tan = t->fd = t->lin = t->bwd[0] = t->bwd[1] = t->bwd[2] = s;
    t->adj = 1e-4;
}
const gf_conv_desc *ot_desc_of(const tensors *T) { return &((const affine_state *)T->state)->d; }
static void conv_ref(const row *rw, const tensors *T, const double *const *in, double *out) {
    (void)rw;
    ref_conv(ot_desc_of(T), in[0], in[1], in[2], out);
}
/* t = Wt x + bt + W t_x, the terms of the moving inputs (bilinear: exact) */
static void conv_ref_tan(const row *rw, const tensors *T, const double *const *in, const double *const *tin, double *out) {
    (void)rw;
    const gf_conv_desc *d = ot_desc_of(T);
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
    ref_conv_backward(ot_desc_of(T), in[0], in[1], u, g[0], g[1], g[2]);
}
gf_status ot_affine_fwd_b(gf_ctx *ctx, const row *rw, const tensors *T, cl_mem x, cl_mem W, cl_mem b, cl_mem y) {
    const int *a = rw->a;
    return is_linear(rw) ? gf_linear_forward(ctx, a[0], a[1], a[2], x, W, b, y) : gf_conv2d_forward(ctx, ot_desc_of(T), x, W, b, y);
}
static gf_status conv_fwd(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, cl_mem out) {
    return ot_affine_fwd_b(ctx, rw, T, in[0], in[1], in[2], out);
}
/* the API's terms: Wt x needs x, W t_x needs W */
gf_status ot_conv_tan(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, const cl_mem *tin, cl_mem out) {
    const int *a = rw->a;
    cl_mem x = tin[1] ? in[0] : NULL, W = tin[0] ? in[1] : NULL;
    return is_linear(rw) ? gf_linear_tangent(ctx, a[0], a[1], a[2], x, tin[1], tin[2], W, tin[0], out)
                         : gf_conv2d_tangent(ctx, ot_desc_of(T), x, tin[1], tin[2], W, tin[0], out);
}
/* gx needs no x, gW needs no W: each is passed only for the gradient that reads it */
static gf_status conv_bwd(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, cl_mem u, const cl_mem *g, int acc) {
    const int *a = rw->a;
    cl_mem x = g[1] ? in[0] : NULL, W = g[0] ? in[1] : NULL;
    return is_linear(rw) ? gf_linear_backward(ctx, a[0], a[1], a[2], x, W, u, g[0], g[1], g[2], acc)
                         : gf_conv2d_backward(ctx, ot_desc_of(T), x, W, u, g[0], g[1], g[2], acc);
}

static const op_def OP_CONV = {.name = "conv", .variants = VARIANTS_AFFINE,
    .flags = OP_ACC | OP_GRAD_ALONE | OP_ADJ_ABS, .describe = conv_describe, .shape = conv_shape, .tols = conv_tols,
    .ref = conv_ref, .fwd = conv_fwd, .tan = ot_conv_tan, .ref_tan = conv_ref_tan, .bwd = conv_bwd,
    .ref_bwd = conv_ref_bwd, .release = conv_release};
static const op_def OP_LINEAR = {.name = "linear", .variants = VARIANTS_AFFINE,
    .flags = OP_ACC | OP_GRAD_ALONE | OP_ADJ_ABS, .describe = conv_describe, .shape = conv_shape, .tols = conv_tols,
    .ref = conv_ref, .fwd = conv_fwd, .tan = ot_conv_tan, .ref_tan = conv_ref_tan, .bwd = conv_bwd,
    .ref_bwd = conv_ref_bwd, .release = conv_release};
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



static int bn_train_of(const row *rw);
static void bn_describe(const row *rw, char *b, size_t n) {
    snprintf(b, n, "bn_%s n=%d c=%d hw=%d offset=%d eps=%g momentum=%g", bn_train_of(rw) ? "train" : "eval", rw->a[0],
             rw->a[1], rw->a[2], rw->a[3], rw->f[0], rw->f[1]);
}
static gf_status bn_shape(gf_ctx *ctx, const row *rw, tensors *T) {
    const int C = rw->a[1];
    bn_state *s = calloc(1, sizeof *s);
    if (!s) return GF_ERR_MEMORY;
    T->n_in = 3;
    T->n[0] = T->n_out = (size_t)rw->a[0] * C * rw->a[2];
    T->n[1] = T->n[2] = (size_t)C;
    T->diff[0] = T->diff[1] = T->diff[2] = 1;
    T->state = s;
    GF_TRY(ot_alloc(ctx, (size_t)C, &s->zero_c));
    return GF_OK;
}
static void bn_release(tensors *T) {
    bn_state *s = T->state;
    free(s->dy); free(s->rm); free(s->rv); free(s->rmd); free(s->rvd);
    gf_buf_release(&s->brm); gf_buf_release(&s->brv); gf_buf_release(&s->zero_c);
    free(s);
}
static gf_status bn_fill(gf_ctx *ctx, const row *rw, tensors *T, ot_rng *r) {
    const int n = rw->a[0], C = rw->a[1], hw = rw->a[2];
    bn_state *s = T->state;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < C; k++)
            for (int j = 0; j < hw; j++)
                T->x[0][((size_t)i * C + k) * hw + j] = (float)(rw->a[3] + 0.3 * k + (0.5 + 0.2 * k) * ot_uniform(r, -1, 1));
    s->dy = falloc(T->n_out);
    if (!s->dy) return GF_ERR_MEMORY;
    uniform(r, s->dy, T->n_out, -1, 1);
    uniform(r, T->x[1], (size_t)C, -1.5, 1.5);
    uniform(r, T->x[2], (size_t)C, -1, 1);
    s->rm = falloc((size_t)C); s->rv = falloc((size_t)C);
    s->rmd = dalloc((size_t)C); s->rvd = dalloc((size_t)C);
    if (!s->rm || !s->rv || !s->rmd || !s->rvd) return GF_ERR_MEMORY;
    uniform(r, s->rm, (size_t)C, -0.5, 0.5);
    uniform(r, s->rv, (size_t)C, 0.5, 2);
    for (int k = 0; k < C; k++) { s->rmd[k] = s->rm[k]; s->rvd[k] = s->rv[k]; }
    GF_TRY(ot_upload(ctx, s->rm, (size_t)C, &s->brm));
    GF_TRY(ot_upload(ctx, s->rv, (size_t)C, &s->brv));
    return GF_OK;
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
void ot_bn_ref_bwd_all(const row *rw, const tensors *T, const double *const *in, const double *u, double *const *g,
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
    ot_bn_ref_bwd_all(rw, T, in, u, g, NULL);
}
static void bn_scale_bwd(const row *rw, const tensors *T, const double *u, double *const *S) {
    ot_bn_ref_bwd_all(rw, T, (const double *const *)T->xd, u, NULL, S);
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
    cl_mem part = NULL;
    GF_TRY(ot_alloc(ctx, T->n_out, &part));
    gf_status st;
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
    cl_mem y = NULL, sm = NULL, si = NULL;
    gf_status st = ot_alloc(ctx, T->n_out, &y);
    if (st == GF_OK) st = ot_alloc(ctx, (size_t)C, &sm);
    if (st == GF_OK) st = ot_alloc(ctx, (size_t)C, &si);
    if (st == GF_OK) st = gf_bn_train_forward(ctx, n, C, hw, in[0], in[1], in[2], rw->f[0], rw->f[1], NULL, NULL, y, sm, si);
    if (st == GF_OK) st = gf_bn_train_backward(ctx, n, C, hw, in[0], u, in[1], sm, si, g[0], g[1], g[2], acc);
    gf_buf_release(&y); gf_buf_release(&sm); gf_buf_release(&si);
    return st;
}


static const op_def OP_BN_TRAIN = {.name = "bn_train", .variants = VARIANTS_BN, .flags = OP_BWD_FD,
    .fill_u = bn_fill_u, .describe = bn_describe, .shape = bn_shape, .fill = bn_fill, .tols = bn_tols, .ref = bn_ref,
    .fwd = bn_fwd, .bwd = bn_bwd, .ref_bwd = bn_ref_bwd,
    .release = bn_release, .scale_fwd = bn_scale_fwd, .scale_bwd = bn_scale_bwd};
static const op_def OP_BN_EVAL = {.name = "bn_eval", .variants = VARIANTS_BN, .flags = OP_ADJ_ABS,
    .fill_u = bn_fill_u, .describe = bn_describe, .shape = bn_shape, .fill = bn_fill, .tols = bn_tols, .ref = bn_ref,
    .fwd = bn_fwd, .tan = bn_eval_tan, .bwd = bn_bwd, .ref_bwd = bn_ref_bwd, .release = bn_release, .scale_fwd = bn_scale_fwd, .scale_bwd = bn_scale_bwd};
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

static const optim_case optim_cases[] = {
    /* adam use_ref use_clip lr mom wd b1 b2 eps */
    {0, 0, 0, 0.1f, 0.9f, 5e-5f, 0, 0, 0},           /* official config: SGD 0.9, wd 5e-5 */
    {0, 1, 1, 0.1f, 0.9f, 0.01f, 0, 0, 0},           /* + decay toward ref, clip */
    {0, 0, 1, 0.05f, 0.0f, 0.0f, 0, 0, 0},           /* plain SGD, no momentum buffer */
    {1, 0, 0, 1e-3f, 0, 1e-6f, 0.5f, 0.999f, 1e-8f}, /* paper: Adam (0.5, 0.999), wd 1e-6 */
    {1, 1, 1, 1e-2f, 0, 0.05f, 0.9f, 0.999f, 1e-8f},
    {1, 0, 1, 1e-2f, 0, 0.0f, 0.9f, 0.99f, 1e-6f},
};

const optim_case *ot_optim_of(const row *rw) { return &optim_cases[rw->a[0]]; }
/* max_norm ~ the mid-run norm: clipping is active in some steps only */
static float optim_max_norm(const row *rw) { return (float)(0.3 * 4 * sqrt((double)rw->a[1] / 3.0)); }
static size_t optim_state_count(const row *rw) {
    const optim_case *oc = ot_optim_of(rw);
    return oc->adam ? 2 : oc->mom != 0 ? 1 : 0;
}
static void optim_describe(const row *rw, char *b, size_t n) {
    const optim_case *oc = ot_optim_of(rw);
    snprintf(b, n, "%s n=%d lr %g mom %g wd %g b1 %g b2 %g ref %d clip %d", oc->adam ? "adam" : "sgd", rw->a[1], oc->lr,
             oc->mom, oc->wd, oc->b1, oc->b2, oc->use_ref, oc->use_clip);
}
/* inputs: p0, the decay target, the seven gradients */
static gf_status optim_shape(gf_ctx *ctx, const row *rw, tensors *T) {
    (void)ctx;
    const size_t n = (size_t)rw->a[1];
    T->n_in = 3; T->n[0] = T->n[1] = n; T->n[2] = OPTIM_STEPS * n;
    T->n_out = n * (1 + optim_state_count(rw));
    return GF_OK;
}
static gf_status optim_fill(gf_ctx *ctx, const row *rw, tensors *T, ot_rng *r) {
    (void)ctx;
    const size_t n = (size_t)rw->a[1];
    uniform(r, T->x[0], n, -1, 1);
    uniform(r, T->x[1], n, -0.5, 0.5);
    for (int s = 0; s < OPTIM_STEPS; s++) uniform(r, T->x[2] + s * n, n, -0.3 * (s + 1), 0.3 * (s + 1));
    return GF_OK;
}
static void optim_tols(const row *rw, tols *t) {
    (void)rw;
    t->fwd = (tol){0, 1e-5, 1};   /* S: the absolute tolerance of each value (optim_scale) */
}
/* The reference after `steps` steps: out = p, then the state; returns in how many steps clipping acted. */
int ot_optim_ref_steps(const row *rw, const double *const *in, int steps, double *out) {
    const optim_case *oc = ot_optim_of(rw);
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
    ot_optim_ref_steps(rw, in, OPTIM_STEPS, out);
}
void ot_optim_scale_steps(const row *rw, const tensors *T, int steps, double *S) {
    const size_t n = (size_t)rw->a[1], ns = optim_state_count(rw);
    double *ref = dalloc(T->n_out);
    ot_optim_ref_steps(rw, (const double *const *)T->xd, steps, ref);
    for (size_t i = 0; i < n; i++) S[i] = 1e-6;
    for (size_t k = 0; k < ns; k++) {
        double mx = 0;
        for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs(ref[(1 + k) * n + i]));
        for (size_t i = 0; i < n; i++) S[(1 + k) * n + i] = fmax(1e-7, 2e-6 * mx);
    }
    free(ref);
}
static void optim_scale(const row *rw, const tensors *T, double *S) { ot_optim_scale_steps(rw, T, OPTIM_STEPS, S); }
/* `steps` steps on the device from p0 (in[0]); out as the reference's. */
gf_status ot_optim_dev_init(gf_ctx *ctx, const row *rw, const tensors *T, ot_optim_dev *d) {
    const size_t n = (size_t)rw->a[1];
    memset(d, 0, sizeof *d);
    GF_TRY(ot_upload(ctx, T->x[0], n, &d->p));
    GF_TRY(ot_alloc(ctx, n, &d->m));
    GF_TRY(ot_alloc(ctx, n, &d->v));
    GF_TRY(ot_alloc(ctx, n, &d->g));
    return ot_alloc(ctx, 1, &d->norm);
}
void ot_optim_dev_release(ot_optim_dev *d) {
    gf_buf_release(&d->p); gf_buf_release(&d->m); gf_buf_release(&d->v); gf_buf_release(&d->g); gf_buf_release(&d->norm);
}
gf_status ot_optim_dev_step(gf_ctx *ctx, const row *rw, const tensors *T, cl_mem ref, ot_optim_dev *d, int s) {
    const optim_case *oc = ot_optim_of(rw);
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
gf_status ot_optim_dev_result(gf_ctx *ctx, const row *rw, const ot_optim_dev *d, float *out) {
    const optim_case *oc = ot_optim_of(rw);
    const size_t n = (size_t)rw->a[1];
    GF_TRY(ot_download(ctx, d->p, out, n));
    if (oc->adam) {
        GF_TRY(ot_download(ctx, d->m, out + n, n));
        return ot_download(ctx, d->v, out + 2 * n, n);
    }
    return oc->mom != 0 ? ot_download(ctx, d->v, out + n, n) : GF_OK;
}
static gf_status optim_fwd(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, cl_mem out) {
    ot_optim_dev d;
    gf_status st = ot_optim_dev_init(ctx, rw, T, &d);
    for (int s = 0; s < OPTIM_STEPS && st == GF_OK; s++) st = ot_optim_dev_step(ctx, rw, T, in[1], &d, s);
    if (st == GF_OK) {
        float *res = falloc(T->n_out);
        st = res ? ot_optim_dev_result(ctx, rw, &d, res) : GF_ERR_MEMORY;
        if (st == GF_OK) st = gf_buf_write(ctx, out, 0, T->n_out * sizeof(float), res);
        free(res);
    }
    ot_optim_dev_release(&d);
    return st;
}
static const op_def OP_SGD = {.name = "sgd", .describe = optim_describe, .shape = optim_shape, .fill = optim_fill,
    .tols = optim_tols, .ref = optim_ref, .fwd = optim_fwd,
    .scale_fwd = optim_scale};
static const op_def OP_ADAM = {.name = "adam", .describe = optim_describe, .shape = optim_shape, .fill = optim_fill,
    .tols = optim_tols, .ref = optim_ref, .fwd = optim_fwd,
    .scale_fwd = optim_scale};

/* ---------------- sqnorm: squared gradient norm, reduced on the device (cl/optim.cl); a = {n} ----------------
 * out = {||a||^2, ||b||^2} (float partial sums of up to 1M terms: 1e-5 relative). The op's own checks: at an
 * offset (the value before it untouched), two tensors accumulated (the float sum of the parts), the clip
 * applied in place (scale min(1, max / (norm + 1e-6)), max half the norm of a: 1e-7 + 1e-5 |ref|). */

static void sqnorm_describe(const row *rw, char *b, size_t n) { snprintf(b, n, "sqnorm n=%d", rw->a[0]); }
static gf_status sqnorm_shape(gf_ctx *ctx, const row *rw, tensors *T) {
    (void)ctx;
    T->n_in = 2; T->n[0] = T->n[1] = (size_t)rw->a[0]; T->n_out = 2;
    return GF_OK;
}
static gf_status sqnorm_fill(gf_ctx *ctx, const row *rw, tensors *T, ot_rng *r) {
    (void)ctx; (void)rw;
    uniform(r, T->x[0], T->n[0], -2, 2);
    uniform(r, T->x[1], T->n[1], -1, 1);
    return GF_OK;
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
static const op_def OP_SQNORM = {.name = "sqnorm", .describe = sqnorm_describe, .shape = sqnorm_shape,
    .fill = sqnorm_fill, .tols = sqnorm_tols, .ref = sqnorm_ref, .fwd = sqnorm_fwd};

/* ---------------- gemm: the runtime's GEMM (host BLAS or CLBlast), C = alpha A B + beta C ----------------
 * a = {trans_a, trans_b, M, N, K, offset, CLBlast forced}, f = {alpha, beta}; every matrix starts at the offset
 * (the values before it are not read). Inputs are not differentiable: forward only. Tolerance 2e-6 S, S =
 * |alpha| sum |A||B| + |beta||C| (a float dot product of K terms: at most about K 6e-8 S, 1.4e-6 S at K 23). */

static void gemm_describe(const row *rw, char *b, size_t n) {
    snprintf(b, n, "gemm %s%s (%s) M=%d N=%d K=%d off=%d", rw->a[0] ? "T" : "N", rw->a[1] ? "T" : "N",
             rw->a[6] ? "CLBlast" : "context's", rw->a[2], rw->a[3], rw->a[4], rw->a[5]);
}
static gf_status gemm_shape(gf_ctx *ctx, const row *rw, tensors *T) {
    (void)ctx;
    const size_t M = (size_t)rw->a[2], N = (size_t)rw->a[3], K = (size_t)rw->a[4], off = (size_t)rw->a[5];
    T->n_in = 3; T->n[0] = off + M * K; T->n[1] = off + K * N; T->n[2] = off + M * N; T->n_out = M * N;
    return GF_OK;
}
static void gemm_tols(const row *rw, tols *t) {
    (void)rw;
    t->fwd = (tol){0, 0, 2e-6};
}
/* out = alpha A B + beta C; with abs: |alpha| |A||B| + |beta| |C| (the tolerance's S) */
static void gemm_eval(const row *rw, const double *const *in, int abs, double *out) {
    const int ta = rw->a[0], tb = rw->a[1];
    const size_t M = (size_t)rw->a[2], N = (size_t)rw->a[3], K = (size_t)rw->a[4], off = (size_t)rw->a[5];
    const size_t lda = ta ? M : K, ldb = tb ? K : N;
    const double *A = in[0] + off, *B = in[1] + off, *C = in[2] + off;
    const double alpha = abs ? fabs(rw->f[0]) : rw->f[0], beta = abs ? fabs(rw->f[1]) : rw->f[1];
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            double s = 0;
            for (size_t k = 0; k < K; k++) {
                double p = A[ta ? k * lda + i : i * lda + k] * B[tb ? j * ldb + k : k * ldb + j];
                s += abs ? fabs(p) : p;
            }
            out[i * N + j] = alpha * s + beta * (abs ? fabs(C[i * N + j]) : C[i * N + j]);
        }
}
static void gemm_ref(const row *rw, const tensors *T, const double *const *in, double *out) {
    (void)T;
    gemm_eval(rw, in, 0, out);
}
static void gemm_scale(const row *rw, const tensors *T, double *S) { gemm_eval(rw, (const double *const *)T->xd, 1, S); }
static gf_status gemm_fwd(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, cl_mem out) {
    const int ta = rw->a[0], tb = rw->a[1];
    const size_t M = (size_t)rw->a[2], N = (size_t)rw->a[3], K = (size_t)rw->a[4], off = (size_t)rw->a[5];
    cl_mem C = NULL;
    GF_TRY(ot_alloc(ctx, T->n[2], &C));
    const int host_blas = ctx->host_blas;
    if (rw->a[6]) ctx->host_blas = 0;
    gf_status st = gf_buf_copy(ctx, in[2], 0, C, 0, T->n[2] * sizeof(float));
    if (st == GF_OK)
        st = gf_gemm(ctx, ta, tb, M, N, K, rw->f[0], in[0], off, ta ? M : K, in[1], off, tb ? K : N, rw->f[1], C, off, N);
    ctx->host_blas = host_blas;
    if (st == GF_OK) st = gf_buf_copy(ctx, C, off * sizeof(float), out, 0, M * N * sizeof(float));
    gf_buf_release(&C);
    return st;
}
static const op_def OP_GEMM = {.name = "gemm", .describe = gemm_describe, .shape = gemm_shape, .tols = gemm_tols,
    .ref = gemm_ref, .fwd = gemm_fwd, .scale_fwd = gemm_scale};

/* ---------------- axpby: y = a x + b y (cl/util.cl); a = {n}, f = {a, b} ----------------
 * Two float products and a sum: 1.2e-7 (|a x| + |b y|) (half an ulp each, and of the sum). */

static void axpby_describe(const row *rw, char *b, size_t n) {
    snprintf(b, n, "util axpby n=%d a=%g b=%g", rw->a[0], rw->f[0], rw->f[1]);
}
static gf_status axpby_shape(gf_ctx *ctx, const row *rw, tensors *T) {
    (void)ctx;
    T->n_in = 2; T->n[0] = T->n[1] = T->n_out = (size_t)rw->a[0];
    return GF_OK;
}
static void axpby_tols(const row *rw, tols *t) {
    (void)rw;
    t->fwd = (tol){0, 0, 1.2e-7};
}
static void axpby_ref(const row *rw, const tensors *T, const double *const *in, double *out) {
    for (size_t i = 0; i < T->n_out; i++) out[i] = (double)rw->f[0] * in[0][i] + (double)rw->f[1] * in[1][i];
}
static void axpby_scale(const row *rw, const tensors *T, double *S) {
    for (size_t i = 0; i < T->n_out; i++) S[i] = fabs((double)rw->f[0] * T->xd[0][i]) + fabs((double)rw->f[1] * T->xd[1][i]);
}
static gf_status axpby_fwd(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, cl_mem out) {
    GF_TRY(gf_buf_copy(ctx, in[1], 0, out, 0, T->n_out * sizeof(float)));
    return gf_axpby(ctx, T->n_out, rw->f[0], in[0], rw->f[1], out);
}
static const op_def OP_AXPBY = {.name = "axpby", .describe = axpby_describe, .shape = axpby_shape,
    .tols = axpby_tols, .ref = axpby_ref, .fwd = axpby_fwd, .scale_fwd = axpby_scale};

/* ---------------- the table ---------------- */


/* R(op, in the default run, in the --small run, f0, a0, a1, ...); RN with a note */
#define R(op, full, small, f0, ...) add_row(&(op), full, small, NULL, f0, 0, (int[NA]){__VA_ARGS__})
#define RN(op, full, small, note, ...) add_row(&(op), full, small, note, 0, 0, (int[NA]){__VA_ARGS__})
#define RF(op, full, small, f0, f1, ...) add_row(&(op), full, small, NULL, f0, f1, (int[NA]){__VA_ARGS__})
/* after a row: it is one of `gradfeat selftest`'s (every op family, small shapes: a few seconds in all) */
#define QUICK (rows[n_rows - 1].quick = 1)
enum { MAX_ROWS = 512 };
static row rows[MAX_ROWS];   /* the table (make_rows) */
static int n_rows;

static void add_row(const op_def *op, int full, int small, const char *note, float f0, float f1, const int *a) {
    if (n_rows == MAX_ROWS) return;   /* not reached: the table has fewer rows */
    row *r = &rows[n_rows++];
    r->op = op; r->full = full; r->small = small; r->note = note; r->f[0] = f0; r->f[1] = f1;
    memcpy(r->a, a, sizeof r->a);
}

static void make_rows(void) {
    /* act: every kind; sizes 1, odd, 7 x 13 channels x 5 x 3, a larger map, one over two default runs of the
     * CPU-style kernels; --small: 1, 7 and 130 (a partial last work-group) */
    static const struct { gf_act_kind k; float slope; } kinds[] = {
        {GF_ACT_RELU, 0}, {GF_ACT_LEAKY, 0.01f}, {GF_ACT_LEAKY, 0.2f}, {GF_ACT_LEAKY, -0.3f}, {GF_ACT_RELU6, 0},
        {GF_ACT_SIGMOID, 0}, {GF_ACT_SILU, 0}, {GF_ACT_HSIGMOID, 1.0f / 6.0f}, {GF_ACT_HSIGMOID, 0.2f},
        {GF_ACT_HSWISH, 0}, {GF_ACT_GELU, 0}, {GF_ACT_GELU_TANH, 0}};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        R(OP_ACT, 1, 1, kinds[k].slope, kinds[k].k, 1);
        R(OP_ACT, 1, 1, kinds[k].slope, kinds[k].k, 7);
        R(OP_ACT, 1, 1, kinds[k].slope, kinds[k].k, 130); QUICK;
        R(OP_ACT, 1, 0, kinds[k].slope, kinds[k].k, 1365);
        R(OP_ACT, 1, 0, kinds[k].slope, kinds[k].k, 64 * 49 * 3 + 5);
        R(OP_ACT, 1, 0, kinds[k].slope, kinds[k].k, 2 * 16384 + 13);   /* three runs of act_*_rows */
    }
    /* ln: one pixel of one channel to ConvNeXt-tiny's 768 channels, each at eps 1e-6 and 1e-5 */
    for (int e = 0; e < 2; e++) {
        const float eps = e ? 1e-5f : 1e-6f;
        R(OP_LN, 1, 1, eps, 1, 1, 1, 1);
        R(OP_LN, 1, 1, eps, 1, 5, 1, 1);
        R(OP_LN, 1, 1, eps, 2, 24, 5, 3, 1); if (!e) QUICK;
        R(OP_LN, 1, 0, eps, 3, 96, 4, 4);
        R(OP_LN, 1, 0, eps, 1, 768, 2, 2);
    }
    /* mul: planes of 1 (the SE gate itself), 7x7 and 8x8 (one item per plane), 9x9 and 56x56 (work-groups) */
    static const int mul_shapes[][4] = {{1, 1, 1, 1}, {2, 3, 7, 7}, {3, 5, 9, 9}, {2, 4, 8, 8}, {2, 16, 56, 56}, {4, 24, 1, 1}};
    for (int k = 0; k < 6; k++)
        for (int gate = 0; gate < 2; gate++)
{
            R(OP_MUL, 1, k < 3, 0, mul_shapes[k][0], mul_shapes[k][1], mul_shapes[k][2], mul_shapes[k][3], gate);
            if (k == 1) QUICK;
        }
    /* concat of 2, 3 and 4 inputs; a = {N, n, H, W, C0, C1, C2, C3} */
    R(OP_CONCAT, 1, 0, 0, 2, 2, 5, 5, 3, 5);
    R(OP_CONCAT, 1, 1, 0, 3, 3, 7, 9, 1, 4, 2); QUICK;
    R(OP_CONCAT, 1, 0, 0, 2, 4, 13, 13, 16, 16, 8, 24);
    R(OP_CONCAT, 1, 0, 0, 5, 2, 1, 1, 3, 5);
    /* shuffle: ShuffleNetV2's G = 2 (its 24/48/96/116 channels at small maps), G = 1 and G = C (the
     * identity), odd groups */
    static const int sh[][5] = {{2, 24, 7, 7, 2}, {1, 48, 4, 4, 2}, {3, 6, 5, 3, 3}, {2, 12, 1, 1, 4}, {1, 5, 3, 3, 1},
                                {1, 5, 3, 3, 5}, {2, 116, 14, 14, 2}};
    for (int k = 0; k < 7; k++) {
        R(OP_SHUFFLE, 1, k == 2 || k == 5, 0, sh[k][0], sh[k][1], sh[k][2], sh[k][3], sh[k][4]);
        if (k == 2) QUICK;
    }
    /* slice: every chunk of torch.chunk(x, chunks, dim=1), sizes ceil(C / chunks) and a smaller last one */
    static const int sl[][5] = {{2, 24, 7, 7, 2}, {3, 7, 5, 5, 3}, {1, 4, 1, 1, 4}};
    for (int k = 0; k < 3; k++) {
        const int C = sl[k][1], step = (C + sl[k][4] - 1) / sl[k][4];
        for (int off = 0; off < C; off += step) {
            R(OP_SLICE, 1, k == 1, 0, sl[k][0], C, sl[k][2], sl[k][3], off, off + step <= C ? step : C - off);
            if (k == 1 && off > 0 && off + step >= C) QUICK;   /* the smaller last chunk */
        }
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
        {2, 3, 6, 20, 3, 3, 1, 1, 0, 0, 0},           /* 3x3 s1 no pad, wide rows (maxpool3_rows' interior) */
        {2, 3, 7, 37, 3, 3, 2, 2, 1, 1, 0},           /* 3x3 s2 p1 (ResNet's), two groups of 8 interior outputs */
        {3, 4, 15, 15, 3, 3, 2, 2, 1, 1, 0},          /* the emotion net's 15x15 -> 8x8: 6 interior columns, no
                                                         float8 group (maxpool3_rows' masked lanes only) */
    };
    for (int k = 0; k < 14; k++) {
        const int *q = pools[k];
        /* --small also runs a 2x2 max pool: maxpool_forward (3x3 windows take maxpool3_rows on CPU-style paths),
         * the 3x3 s2 row (maxpool3_rows' float8 groups) and the 15x15 one (its masked lanes alone) */
        R(OP_MAXPOOL, 1, k == 0 || k == 2 || k == 12 || k == 13, 0, q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7],
          q[8], q[9], q[10]);
        if (k == 0) QUICK;
        for (int inc = 0; inc < 2; inc++) {
            R(OP_AVGPOOL, 1, k == 0, 0, q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7], q[8], q[9], q[10], inc);
            if (k == 0) QUICK;
        }
    }
    /* gap: planes of 1, 7x7 (one item per plane), 300, 64 (7 x 13 planes), 4099; --small: 7x7 and 9x9 (a
     * work-group tree per plane) */
    static const int gap[][3] = {{1, 1, 1}, {7, 49, 1}, {35, 300, 1}, {7 * 13, 64, 1}, {3, 4096 + 3, 1}, {6, 49, 2}, {5, 81, 2}};
    for (int k = 0; k < 7; k++) {
        R(OP_GAP, gap[k][2] == 1, gap[k][2] == 2, 0, gap[k][0], gap[k][1]);
        if (k == 1) QUICK;
    }
    /* xent: batch 1 and 7, class counts 1, 5, 10, 20, 1000; more rows than lanes (300); logits at scale 4,
     * and at 30 with ignored rows; --small: 7 x 5 */
    static const int xs[][2] = {{1, 10}, {7, 5}, {7, 1}, {64, 20}, {300, 3}, {3, 1000}};
    for (int k = 0; k < 6; k++) {
        R(OP_XENT, 1, 0, 4.0f, xs[k][0], xs[k][1], 0);
        R(OP_XENT, 1, 0, 30.0f, xs[k][0], xs[k][1], 1);
        if (k == 1) QUICK;
    }
    R(OP_XENT, 0, 1, 4.0f, 7, 5, 1);
    /* bce: mean per sample and over all, logits at scale 5 and 40 */
    static const int bs[][2] = {{1, 1}, {7, 5}, {64, 20}, {3, 301}};
    for (int k = 0; k < 4; k++)
        for (int ps = 0; ps < 2; ps++) {
            R(OP_BCE, 1, 0, 5.0f, bs[k][0], bs[k][1], ps);
            if (k == 1 && !ps) QUICK;
            R(OP_BCE, 1, 0, 40.0f, bs[k][0], bs[k][1], ps);
        }
    R(OP_BCE, 0, 1, 5.0f, 7, 5, 0);
    /* conv: a = {n, c_in, h, w, c_out, kh, kw, sh, sw, pt, pb, pl, pr, dil, groups, same, max_workspace} */
    RN(OP_CONV, 1, 0, "1x1", 1, 3, 5, 7, 5, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1);
    RN(OP_CONV, 1, 1, "1x1 batch 5", 5, 6, 9, 9, 4, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1); QUICK;
    RN(OP_CONV, 1, 0, "1x1 128 -> 256 15x15 batch 3 (emotion net)", 3, 128, 15, 15, 256, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1);
    RN(OP_CONV, 1, 0, "1x1 pad 1 (border of zeros)", 2, 4, 3, 4, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1);
    RN(OP_CONV, 1, 0, "1x1 stride 2 batch 7", 7, 6, 9, 7, 3, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1);
    RN(OP_CONV, 1, 0, "1x1 one image per chunk", 3, 4, 5, 6, 3, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 500);
    RN(OP_CONV, 1, 0, "3x3 pad 1 batch 7", 7, 5, 9, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
    RN(OP_CONV, 1, 0, "3x3 stride 2 odd", 2, 3, 11, 8, 7, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1); QUICK;
    RN(OP_CONV, 1, 0, "3x3 no pad", 1, 9, 8, 9, 10, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1);
    RN(OP_CONV, 1, 0, "5x5 pad 2", 1, 2, 9, 10, 3, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1);
    RN(OP_CONV, 1, 0, "5x5 stride 2 asymmetric pads", 2, 3, 10, 9, 5, 5, 5, 2, 2, 0, 2, 1, 3, 1, 1);
    RN(OP_CONV, 1, 0, "SAME 3x3 stride 2", 3, 4, 10, 7, 5, 3, 3, 2, 2, 0, 0, 0, 0, 1, 1, 1);
    RN(OP_CONV, 1, 0, "SAME 5x5 stride 2", 1, 3, 8, 9, 6, 5, 5, 2, 2, 0, 0, 0, 0, 1, 1, 1);
    RN(OP_CONV, 1, 0, "dilation 2", 2, 3, 9, 9, 4, 3, 3, 1, 1, 2, 2, 2, 2, 2, 1);
    RN(OP_CONV, 1, 0, "dilation 2 stride 2", 1, 5, 11, 10, 3, 3, 3, 2, 2, 1, 1, 1, 1, 2, 1);
    /* stride 2 over rows of 9+ output columns: im2col_plane's eight-at-a-time copies, up to the row's end */
    RN(OP_CONV, 1, 0, "7x7 stride 2 pad 3 (ResNet stem)", 1, 3, 8, 24, 4, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1);
    RN(OP_CONV, 1, 1, "1x1 stride 2 31 wide (the last copy ends at the buffer's end)", 1, 3, 5, 31, 2, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1);
    /* Winograd F(2x2, 3x3) shapes (3x3 stride 1; forced by the winograd variants; auto's choice: conv_once):
     * odd sizes (partial 2x2 tiles), pads 0, 1, 2 and asymmetric, batch > 1, one image per chunk */
    RN(OP_CONV, 1, 1, "3x3 pad 1 odd 7x9 batch 3", 3, 4, 7, 9, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1); QUICK;
    RN(OP_CONV, 1, 0, "3x3 pad 0 odd 9x7 batch 2", 2, 6, 9, 7, 3, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1);
    RN(OP_CONV, 1, 0, "3x3 pad 2 5x6", 2, 3, 5, 6, 4, 3, 3, 1, 1, 2, 2, 2, 2, 1, 1);
    RN(OP_CONV, 1, 0, "3x3 asymmetric pads 8x5", 2, 3, 8, 5, 4, 3, 3, 1, 1, 0, 2, 1, 0, 1, 1);
    RN(OP_CONV, 1, 0, "3x3 pad 1 3x3 image", 4, 5, 3, 3, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
    RN(OP_CONV, 1, 0, "3x3 pad 1 one image per chunk", 3, 4, 7, 6, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1);
    RN(OP_CONV, 1, 0, "3x3 pad 1 256 -> 256 5x4 batch 2", 2, 256, 5, 4, 256, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
    /* F(4x4, 3x3) row kernels (four tiles per vector, interior groups loaded whole): a group one column short of
     * the right edge (zero-filled), one reading the last column then a group of one tile, a last group of 15
     * output columns, one of three tiles */
    RN(OP_CONV, 1, 0, "3x3 pad 1 10x32 (a four-tile group short of the edge)", 2, 3, 10, 32, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
    RN(OP_CONV, 1, 1, "3x3 pad 1 9x33 (a four-tile group at the edge)", 1, 2, 9, 33, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
    RN(OP_CONV, 1, 0, "3x3 pad 1 7x31 batch 2 (15 columns in the last group)", 2, 3, 7, 31, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
    RN(OP_CONV, 1, 1, "3x3 pad 1 5x27 (three tiles in the last group)", 1, 2, 5, 27, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
    RN(OP_CONV, 1, 0, "rectangular 1x3 stride (2,1)", 2, 3, 7, 6, 5, 1, 3, 2, 1, 0, 0, 1, 1, 1, 1);
    RN(OP_CONV, 1, 0, "groups 2", 2, 6, 7, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 2);
    RN(OP_CONV, 1, 0, "groups 3 stride 2", 7, 9, 8, 7, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1, 3);
    RN(OP_CONV, 1, 0, "depthwise 3x3 batch 7", 7, 5, 8, 7, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 5); QUICK;
    /* depthwise 3x3 stride 1 (dw_conv3_plane on CPU devices: interior columns in one pass, edges tap by tap):
     * pads 0 and 2, asymmetric, channel multiplier 2, images narrower than the taps (no interior column) */
    RN(OP_CONV, 1, 0, "depthwise 3x3 pad 0 batch 2", 2, 4, 9, 10, 4, 3, 3, 1, 1, 0, 0, 0, 0, 1, 4);
    RN(OP_CONV, 1, 1, "depthwise 3x3 pad 2 x2", 2, 3, 6, 7, 6, 3, 3, 1, 1, 2, 2, 2, 2, 1, 3);
    RN(OP_CONV, 1, 0, "depthwise 3x3 asymmetric pads", 3, 2, 7, 8, 2, 3, 3, 1, 1, 0, 2, 1, 0, 1, 2);
    RN(OP_CONV, 1, 1, "depthwise 3x3 pad 1 2-wide 1-high", 2, 3, 1, 2, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 3);
    RN(OP_CONV, 1, 0, "depthwise 3x3 pad 1 15x15 batch 4 (emotion net)", 4, 8, 15, 15, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 8);
    /* dw_conv3_plane's flattened run of rows (pads 1, rows at least 8 wide, a whole plane per item): a depth
     * multiplier of 2 on 9 x 8, a single row in the run (3 x 11), rows of exactly two vectors (16 x 16) */
    RN(OP_CONV, 1, 1, "depthwise 3x3 pad 1 9x8 x2 (a plane as one run)", 2, 3, 9, 8, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 3);
    RN(OP_CONV, 1, 0, "depthwise 3x3 pad 1 3x11 (a one-row run)", 2, 2, 3, 11, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 2);
    RN(OP_CONV, 1, 0, "depthwise 3x3 pad 1 16x16 batch 2", 2, 4, 16, 16, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 4);
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
    RN(OP_LINEAR, 1, 0, "batch 7", 7, 13, 5); QUICK;
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
            if (small) QUICK;
        }
    /* the squared norm: 1 .. 1M+3 values; --small: 4099 */
    static const int ns[] = {1, 5, 1000, 4099, (1 << 20) + 3};
    for (int k = 0; k < 5; k++) {
        R(OP_SQNORM, 1, ns[k] == 4099, 0, ns[k]);
        if (ns[k] == 4099) QUICK;
    }
    for (size_t k = 0; k < sizeof bns / sizeof bns[0]; k++) {
        RF(OP_BN_TRAIN, bns[k].full, bns[k].small, bns[k].eps, bns[k].mom, bns[k].n, bns[k].c, bns[k].hw, bns[k].offset);
        rows[n_rows - 1].seed = bns[k].seed;
        if (k == 0) QUICK;
        RF(OP_BN_EVAL, bns[k].full, bns[k].small, bns[k].eps, bns[k].mom, bns[k].n, bns[k].c, bns[k].hw, bns[k].offset);
        rows[n_rows - 1].seed = bns[k].seed;
        if (k == 0) QUICK;
    }
    /* the runtime's GEMM: every transpose pair at an offset, with the context's GEMM and with CLBlast forced
     * (the same on a device without host BLAS) */
    for (int t = 0; t < 4; t++)
        for (int clb = 0; clb < 2; clb++) {
            RF(OP_GEMM, 1, 1, 1.5f, 0.5f, t & 1, t >> 1, 37, 29, 23, 5, clb);
            QUICK;
        }
    RF(OP_AXPBY, 1, 1, 0.75f, -1.25f, 1000);
    QUICK;
}

int gf_ot_rows(const row **out) {
    if (!n_rows) make_rows();
    *out = rows;
    return n_rows;
}
