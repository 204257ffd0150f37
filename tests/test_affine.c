/* Affine family (host/ops/ops_affine.c, cl/conv.cl): conv2d and linear forward,
 * tangent and backward on the device vs a plain-C double reference written
 * here; tangents vs central finite differences of that reference; backward vs
 * the adjoint identity on the device; accumulate flag; determinism; chunked
 * batches; BatchNorm folding; descriptor validation.
 *
 * Tolerance (device vs reference): |got - ref| <= 1e-5 * (1 + S), where S is
 * the same sum with every term replaced by its absolute value (computed by the
 * reference on |inputs|). fp32 accumulation error is a few eps * S; a missing
 * or wrong term costs about S / terms, far above 1e-5 * S here.
 * Adjoint identity: |<J v, u> - <v, J^T u>| / max(|.|, |.|) <= 1e-4, both
 * sides from device outputs, summed in double.
 *
 * `test_affine --small` runs one small case of each kind, with both kernel variants, at the default item
 * budget and at 16 (tests/cli_oclgrind_affine.sh: every kernel of cl/conv.cl under oclgrind). */
#include <stdint.h>
#include "ops_affine.h"
#include "testutil.h"

#define TOL 1e-5
#define ADJ_TOL 1e-4

/* ---------------- the op under test, as data ---------------- */

typedef struct tcase {
    const char *name;
    int linear;              /* 0: conv (d), 1: linear (n, in, out) */
    gf_conv_desc d;
    int n, in, out;
    size_t nx, ny, nw, nb;   /* floats in x, y, W, b */
} tcase;

static void finish_case(tcase *c) {
    if (c->linear) {
        c->nx = (size_t)c->n * c->in; c->ny = (size_t)c->n * c->out;
        c->nw = (size_t)c->out * c->in; c->nb = (size_t)c->out;
    } else {
        const gf_conv_desc *d = &c->d;
        c->nx = (size_t)d->n * d->c_in * d->h_in * d->w_in;
        c->ny = (size_t)d->n * d->c_out * d->h_out * d->w_out;
        c->nw = (size_t)d->c_out * (d->c_in / d->groups) * d->kh * d->kw;
        c->nb = (size_t)d->c_out;
    }
}

/* ---------------- double reference ---------------- */

/* y = W * x (+ b). b may be NULL. */
static void ref_forward(const tcase *c, const double *x, const double *W, const double *b, double *y) {
    if (c->linear) {
        for (int i = 0; i < c->n; i++)
            for (int o = 0; o < c->out; o++) {
                double s = b ? b[o] : 0.0;
                for (int k = 0; k < c->in; k++) s += W[(size_t)o * c->in + k] * x[(size_t)i * c->in + k];
                y[(size_t)i * c->out + o] = s;
            }
        return;
    }
    const gf_conv_desc *d = &c->d;
    int cig = d->c_in / d->groups, cog = d->c_out / d->groups;
    for (int n = 0; n < d->n; n++)
        for (int co = 0; co < d->c_out; co++)
            for (int oh = 0; oh < d->h_out; oh++)
                for (int ow = 0; ow < d->w_out; ow++) {
                    double s = b ? b[co] : 0.0;
                    int ci0 = (co / cog) * cig;
                    for (int ci = 0; ci < cig; ci++)
                        for (int i = 0; i < d->kh; i++) {
                            int ih = oh * d->stride_h - d->pad_top + i * d->dil_h;
                            if (ih < 0 || ih >= d->h_in) continue;
                            for (int j = 0; j < d->kw; j++) {
                                int iw = ow * d->stride_w - d->pad_left + j * d->dil_w;
                                if (iw < 0 || iw >= d->w_in) continue;
                                s += W[(((size_t)co * cig + ci) * d->kh + i) * d->kw + j] *
                                     x[(((size_t)n * d->c_in + ci0 + ci) * d->h_in + ih) * d->w_in + iw];
                            }
                        }
                    y[(((size_t)n * d->c_out + co) * d->h_out + oh) * d->w_out + ow] = s;
                }
}

/* gx = W^T g, gW = g (x) x, gb = sum g: the transposed loops of ref_forward. */
static void ref_backward(const tcase *c, const double *x, const double *W, const double *g,
                         double *gx, double *gW, double *gb) {
    memset(gx, 0, c->nx * sizeof *gx);
    memset(gW, 0, c->nw * sizeof *gW);
    memset(gb, 0, c->nb * sizeof *gb);
    if (c->linear) {
        for (int i = 0; i < c->n; i++)
            for (int o = 0; o < c->out; o++) {
                double gv = g[(size_t)i * c->out + o];
                gb[o] += gv;
                for (int k = 0; k < c->in; k++) {
                    gW[(size_t)o * c->in + k] += gv * x[(size_t)i * c->in + k];
                    gx[(size_t)i * c->in + k] += gv * W[(size_t)o * c->in + k];
                }
            }
        return;
    }
    const gf_conv_desc *d = &c->d;
    int cig = d->c_in / d->groups, cog = d->c_out / d->groups;
    for (int n = 0; n < d->n; n++)
        for (int co = 0; co < d->c_out; co++)
            for (int oh = 0; oh < d->h_out; oh++)
                for (int ow = 0; ow < d->w_out; ow++) {
                    double gv = g[(((size_t)n * d->c_out + co) * d->h_out + oh) * d->w_out + ow];
                    gb[co] += gv;
                    int ci0 = (co / cog) * cig;
                    for (int ci = 0; ci < cig; ci++)
                        for (int i = 0; i < d->kh; i++) {
                            int ih = oh * d->stride_h - d->pad_top + i * d->dil_h;
                            if (ih < 0 || ih >= d->h_in) continue;
                            for (int j = 0; j < d->kw; j++) {
                                int iw = ow * d->stride_w - d->pad_left + j * d->dil_w;
                                if (iw < 0 || iw >= d->w_in) continue;
                                size_t wi = (((size_t)co * cig + ci) * d->kh + i) * d->kw + j;
                                size_t xi = (((size_t)n * d->c_in + ci0 + ci) * d->h_in + ih) * d->w_in + iw;
                                gW[wi] += gv * x[xi];
                                gx[xi] += gv * W[wi];
                            }
                        }
                }
}

/* ---------------- device calls ---------------- */

static gf_status dev_forward(gf_ctx *ctx, const tcase *c, cl_mem x, cl_mem W, cl_mem b, cl_mem y) {
    return c->linear ? gf_linear_forward(ctx, c->n, c->in, c->out, x, W, b, y)
                     : gf_conv2d_forward(ctx, &c->d, x, W, b, y);
}
static gf_status dev_tangent(gf_ctx *ctx, const tcase *c, cl_mem x, cl_mem Wt, cl_mem bt, cl_mem W, cl_mem t, cl_mem out) {
    return c->linear ? gf_linear_tangent(ctx, c->n, c->in, c->out, x, Wt, bt, W, t, out)
                     : gf_conv2d_tangent(ctx, &c->d, x, Wt, bt, W, t, out);
}
static gf_status dev_backward(gf_ctx *ctx, const tcase *c, cl_mem x, cl_mem W, cl_mem g,
                              cl_mem gx, cl_mem gW, cl_mem gb, int acc) {
    return c->linear ? gf_linear_backward(ctx, c->n, c->in, c->out, x, W, g, gx, gW, gb, acc)
                     : gf_conv2d_backward(ctx, &c->d, x, W, g, gx, gW, gb, acc);
}

/* ---------------- helpers ---------------- */

static double *to_d(const float *a, size_t n) {
    double *r = malloc((n ? n : 1) * sizeof *r);
    for (size_t i = 0; i < n; i++) r[i] = a[i];
    return r;
}
static double *to_abs(const float *a, size_t n) {
    double *r = malloc((n ? n : 1) * sizeof *r);
    for (size_t i = 0; i < n; i++) r[i] = fabs((double)a[i]);
    return r;
}
static float *fresh(test_rng *r, size_t n) {
    float *a = malloc((n ? n : 1) * sizeof *a);
    test_fill(r, a, n, -1.0, 1.0);
    return a;
}
static float *dl(gf_ctx *ctx, cl_mem m, size_t n) {
    float *a = malloc((n ? n : 1) * sizeof *a);
    test_download(ctx, m, a, n);
    return a;
}

/* |got - ref| <= TOL * (1 + S) element-wise. */
static void check_close(const char *cname, const char *what, const float *got, const double *ref,
                        const double *S, size_t n) {
    double worst = 0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - ref[i]) / (TOL * (1.0 + S[i]));
        if (!(e <= worst)) { worst = e; wi = i; }
    }
    CHECK(worst <= 1.0, "%s: %s index %zu got %.9g want %.9g (S %.3g, err %.3g x tolerance)",
          cname, what, wi, n ? got[wi] : 0.0, n ? ref[wi] : 0.0, n ? S[wi] : 0.0, worst);
}

static double dot_ff(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* ---------------- one case, every check ---------------- */

typedef struct host_data {
    float *x, *W, *b, *Wt, *bt, *t, *g;
} host_data;

/* Central finite difference of the reference along (Wt?, bt?, t?) at (x, W, b):
 * (f(p + e v) - f(p - e v)) / 2e, all in double. f is bilinear, so this is the
 * exact JVP up to rounding. The b term is present in both evaluations. */
static void fd_tangent(const tcase *c, const host_data *h, int use_wt, int use_bt, int use_t, double *out) {
    const double e = 1e-3;
    double *xp = to_d(h->x, c->nx), *xm = to_d(h->x, c->nx);
    double *Wp = to_d(h->W, c->nw), *Wm = to_d(h->W, c->nw);
    double *bp = to_d(h->b, c->nb), *bm = to_d(h->b, c->nb);
    double *yp = malloc(c->ny * sizeof *yp), *ym = malloc(c->ny * sizeof *ym);
    for (size_t i = 0; i < c->nx && use_t; i++) { xp[i] += e * h->t[i]; xm[i] -= e * h->t[i]; }
    for (size_t i = 0; i < c->nw && use_wt; i++) { Wp[i] += e * h->Wt[i]; Wm[i] -= e * h->Wt[i]; }
    for (size_t i = 0; i < c->nb && use_bt; i++) { bp[i] += e * h->bt[i]; bm[i] -= e * h->bt[i]; }
    ref_forward(c, xp, Wp, bp, yp);
    ref_forward(c, xm, Wm, bm, ym);
    for (size_t i = 0; i < c->ny; i++) out[i] = (yp[i] - ym[i]) / (2 * e);
    free(xp); free(xm); free(Wp); free(Wm); free(bp); free(bm); free(yp); free(ym);
}

/* S for the tangent: |Wt| |x| + |bt| + |W| |t| (only the terms in use). */
static void abs_tangent(const tcase *c, const host_data *h, int use_wt, int use_bt, int use_t, double *S) {
    double *ax = to_abs(h->x, c->nx), *at = to_abs(h->t, c->nx), *aW = to_abs(h->W, c->nw);
    double *aWt = to_abs(h->Wt, c->nw), *abt = to_abs(h->bt, c->nb);
    double *tmp = malloc(c->ny * sizeof *tmp);
    memset(S, 0, c->ny * sizeof *S);
    if (use_wt || use_bt) {
        double *z = calloc(c->nw, sizeof *z);
        ref_forward(c, ax, use_wt ? aWt : z, use_bt ? abt : NULL, tmp);
        for (size_t i = 0; i < c->ny; i++) S[i] += tmp[i];
        free(z);
    }
    if (use_t) {
        ref_forward(c, at, aW, NULL, tmp);
        for (size_t i = 0; i < c->ny; i++) S[i] += tmp[i];
    }
    free(ax); free(at); free(aW); free(aWt); free(abt); free(tmp);
}

static void run_case(gf_ctx *ctx, tcase *c, uint64_t seed) {
    finish_case(c);
    test_rng r;
    test_rng_seed(&r, seed);
    host_data h = {fresh(&r, c->nx), fresh(&r, c->nw), fresh(&r, c->nb), fresh(&r, c->nw),
                   fresh(&r, c->nb), fresh(&r, c->nx), fresh(&r, c->ny)};
    cl_mem x = test_upload(ctx, h.x, c->nx), W = test_upload(ctx, h.W, c->nw), b = test_upload(ctx, h.b, c->nb);
    cl_mem Wt = test_upload(ctx, h.Wt, c->nw), bt = test_upload(ctx, h.bt, c->nb), t = test_upload(ctx, h.t, c->nx);
    cl_mem g = test_upload(ctx, h.g, c->ny);
    cl_mem y = test_alloc(ctx, c->ny), gx = test_alloc(ctx, c->nx), gW = test_alloc(ctx, c->nw), gb = test_alloc(ctx, c->nb);
    double *xd = to_d(h.x, c->nx), *Wd = to_d(h.W, c->nw), *bd = to_d(h.b, c->nb), *gd = to_d(h.g, c->ny);
    double *ax = to_abs(h.x, c->nx), *aW = to_abs(h.W, c->nw), *ab = to_abs(h.b, c->nb), *ag = to_abs(h.g, c->ny);
    double *ref = malloc(c->ny * sizeof *ref), *S = malloc(c->ny * sizeof *S);

    /* forward, with and without bias; twice for determinism */
    REQUIRE_OK(ctx, dev_forward(ctx, c, x, W, b, y));
    float *y1 = dl(ctx, y, c->ny);
    ref_forward(c, xd, Wd, bd, ref);
    ref_forward(c, ax, aW, ab, S);
    check_close(c->name, "forward", y1, ref, S, c->ny);
    REQUIRE_OK(ctx, dev_forward(ctx, c, x, W, b, y));
    float *y2 = dl(ctx, y, c->ny);
    CHECK(!memcmp(y1, y2, c->ny * sizeof *y1), "%s: forward not bitwise reproducible", c->name);
    free(y2);
    REQUIRE_OK(ctx, dev_forward(ctx, c, x, W, NULL, y));
    y2 = dl(ctx, y, c->ny);
    ref_forward(c, xd, Wd, NULL, ref);
    ref_forward(c, ax, aW, NULL, S);
    check_close(c->name, "forward (no bias)", y2, ref, S, c->ny);
    free(y1); free(y2);

    /* tangent variants vs finite differences: full, first linearized layer
     * (no t_in), non-linearized layer (only W*t_in), weight only, bias only */
    static const struct { int wt, bt, t; const char *what; } tv[] = {
        {1, 1, 1, "tangent Wt*x+bt+W*t"}, {1, 1, 0, "tangent Wt*x+bt"}, {0, 0, 1, "tangent W*t"},
        {1, 0, 0, "tangent Wt*x"}, {0, 1, 0, "tangent bt"}};
    float *tfull = NULL;
    for (size_t v = 0; v < sizeof tv / sizeof tv[0]; v++) {
        REQUIRE_OK(ctx, gf_buf_write(ctx, y, 0, c->ny * sizeof(float), h.g));   /* garbage to overwrite */
        REQUIRE_OK(ctx, dev_tangent(ctx, c, tv[v].wt ? x : NULL, tv[v].wt ? Wt : NULL, tv[v].bt ? bt : NULL,
                                    tv[v].t ? W : NULL, tv[v].t ? t : NULL, y));
        float *got = dl(ctx, y, c->ny);
        fd_tangent(c, &h, tv[v].wt, tv[v].bt, tv[v].t, ref);
        abs_tangent(c, &h, tv[v].wt, tv[v].bt, tv[v].t, S);
        check_close(c->name, tv[v].what, got, ref, S, c->ny);
        if (v == 0) tfull = got; else free(got);
    }
    /* the full tangent twice: bitwise equal */
    REQUIRE_OK(ctx, dev_tangent(ctx, c, x, Wt, bt, W, t, y));
    float *t2 = dl(ctx, y, c->ny);
    CHECK(!memcmp(tfull, t2, c->ny * sizeof *t2), "%s: tangent not bitwise reproducible", c->name);
    free(t2);

    /* backward vs reference */
    double *rgx = malloc(c->nx * sizeof *rgx), *rgW = malloc(c->nw * sizeof *rgW), *rgb = malloc(c->nb * sizeof *rgb);
    double *sgx = malloc(c->nx * sizeof *sgx), *sgW = malloc(c->nw * sizeof *sgW), *sgb = malloc(c->nb * sizeof *sgb);
    ref_backward(c, xd, Wd, gd, rgx, rgW, rgb);
    ref_backward(c, ax, aW, ag, sgx, sgW, sgb);
    REQUIRE_OK(ctx, gf_buf_write(ctx, gx, 0, c->nx * sizeof(float), h.t));       /* garbage: acc=0 overwrites */
    REQUIRE_OK(ctx, gf_buf_write(ctx, gW, 0, c->nw * sizeof(float), h.Wt));
    REQUIRE_OK(ctx, gf_buf_write(ctx, gb, 0, c->nb * sizeof(float), h.bt));
    REQUIRE_OK(ctx, dev_backward(ctx, c, x, W, g, gx, gW, gb, 0));
    float *dgx = dl(ctx, gx, c->nx), *dgW = dl(ctx, gW, c->nw), *dgb = dl(ctx, gb, c->nb);
    check_close(c->name, "backward gx", dgx, rgx, sgx, c->nx);
    check_close(c->name, "backward gW", dgW, rgW, sgW, c->nw);
    check_close(c->name, "backward gb", dgb, rgb, sgb, c->nb);

    /* adjoint identity on device outputs: <J v, u> = <v, J^T u>, u = g */
    double lhs = dot_ff(tfull, h.g, c->ny);
    double rhs = dot_ff(h.Wt, dgW, c->nw) + dot_ff(h.bt, dgb, c->nb) + dot_ff(h.t, dgx, c->nx);
    /* scale: the larger side, or the sum of |terms| of <J v, u> when the sums cancel
     * (fp32 rounding grows with it: the large-plane cases sum 10^5 terms) */
    double absdot = 0;
    for (size_t i = 0; i < c->ny; i++) absdot += fabs((double)tfull[i] * h.g[i]);
    double den = fmax(fmax(fabs(lhs), fabs(rhs)), absdot);
    double rel = den > 0 ? fabs(lhs - rhs) / den : 0.0;
    CHECK(rel <= ADJ_TOL && den > 0, "%s: adjoint identity <Jv,u> %.12g vs <v,J^T u> %.12g (rel %.3g)", c->name, lhs, rhs, rel);

    /* determinism of the backward */
    REQUIRE_OK(ctx, dev_backward(ctx, c, x, W, g, gx, gW, gb, 0));
    float *egx = dl(ctx, gx, c->nx), *egW = dl(ctx, gW, c->nw), *egb = dl(ctx, gb, c->nb);
    CHECK(!memcmp(dgx, egx, c->nx * 4) && !memcmp(dgW, egW, c->nw * 4) && !memcmp(dgb, egb, c->nb * 4),
          "%s: backward not bitwise reproducible", c->name);
    free(egx); free(egW); free(egb);

    /* accumulate = 1 adds to what is there (start: x, W, b values as offsets) */
    REQUIRE_OK(ctx, gf_buf_write(ctx, gx, 0, c->nx * sizeof(float), h.x));
    REQUIRE_OK(ctx, gf_buf_write(ctx, gW, 0, c->nw * sizeof(float), h.W));
    REQUIRE_OK(ctx, gf_buf_write(ctx, gb, 0, c->nb * sizeof(float), h.b));
    REQUIRE_OK(ctx, dev_backward(ctx, c, x, W, g, gx, gW, gb, 1));
    free(dgx); free(dgW); free(dgb);
    dgx = dl(ctx, gx, c->nx); dgW = dl(ctx, gW, c->nw); dgb = dl(ctx, gb, c->nb);
    for (size_t i = 0; i < c->nx; i++) { rgx[i] += h.x[i]; sgx[i] += fabs(h.x[i]); }
    for (size_t i = 0; i < c->nw; i++) { rgW[i] += h.W[i]; sgW[i] += fabs(h.W[i]); }
    for (size_t i = 0; i < c->nb; i++) { rgb[i] += h.b[i]; sgb[i] += fabs(h.b[i]); }
    check_close(c->name, "backward gx (accumulate)", dgx, rgx, sgx, c->nx);
    check_close(c->name, "backward gW (accumulate)", dgW, rgW, sgW, c->nw);
    check_close(c->name, "backward gb (accumulate)", dgb, rgb, sgb, c->nb);

    /* each output alone; gx needs no x, gW needs no W */
    REQUIRE_OK(ctx, dev_backward(ctx, c, NULL, W, g, gx, NULL, NULL, 0));
    REQUIRE_OK(ctx, dev_backward(ctx, c, x, NULL, g, NULL, gW, NULL, 0));
    free(dgx); free(dgW);
    dgx = dl(ctx, gx, c->nx); dgW = dl(ctx, gW, c->nw);
    ref_backward(c, xd, Wd, gd, rgx, rgW, rgb);
    ref_backward(c, ax, aW, ag, sgx, sgW, sgb);
    check_close(c->name, "backward gx only", dgx, rgx, sgx, c->nx);
    check_close(c->name, "backward gW only", dgW, rgW, sgW, c->nw);

    free(dgx); free(dgW); free(dgb); free(rgx); free(rgW); free(rgb); free(sgx); free(sgW); free(sgb);
    free(tfull); free(ref); free(S);
    free(xd); free(Wd); free(bd); free(gd); free(ax); free(aW); free(ab); free(ag);
    free(h.x); free(h.W); free(h.b); free(h.Wt); free(h.bt); free(h.t); free(h.g);
    cl_mem all[] = {x, W, b, Wt, bt, t, g, y, gx, gW, gb};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) gf_buf_release(&all[i]);
}

/* ---------------- case builders ---------------- */

static tcase conv_case(gf_ctx *ctx, const char *name, int n, int cin, int h, int w, int cout, int kh, int kw,
                       int sh, int sw, int pt, int pb, int pl, int pr, int dil, int groups) {
    tcase c;
    memset(&c, 0, sizeof c);
    c.name = name;
    REQUIRE_OK(ctx, gf_conv_desc_init(ctx, &c.d, n, cin, h, w, cout, kh, kw, sh, sw, pt, pb, pl, pr, dil, dil, groups));
    return c;
}

/* TF SAME padding on both axes. */
static tcase same_case(gf_ctx *ctx, const char *name, int n, int cin, int h, int w, int cout, int k, int s,
                       int dil, int groups) {
    int pt, pb, pl, pr;
    gf_conv_same_pads(h, k, s, dil, &pt, &pb);
    gf_conv_same_pads(w, k, s, dil, &pl, &pr);
    tcase c = conv_case(ctx, name, n, cin, h, w, cout, k, k, s, s, pt, pb, pl, pr, dil, groups);
    CHECK(c.d.h_out == (h + s - 1) / s && c.d.w_out == (w + s - 1) / s, "%s: SAME output %dx%d, want %dx%d",
          name, c.d.h_out, c.d.w_out, (h + s - 1) / s, (w + s - 1) / s);
    return c;
}

static tcase linear_case(const char *name, int n, int in, int out) {
    tcase c;
    memset(&c, 0, sizeof c);
    c.name = name; c.linear = 1; c.n = n; c.in = in; c.out = out;
    return c;
}

/* ---------------- BatchNorm folding ---------------- */

static void test_bn_fold(gf_ctx *ctx) {
    test_rng r;
    test_rng_seed(&r, 99);
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        tcase c = conv_case(ctx, "bn fold", 3, 5, 7, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
        finish_case(&c);
        int co = c.d.c_out;
        size_t per = c.nw / (size_t)co, P = (size_t)c.d.h_out * c.d.w_out;
        float *x = fresh(&r, c.nx), *W = fresh(&r, c.nw), *b = fresh(&r, c.nb);
        float gamma[16], beta[16], mean[16], var[16], bf[16];
        const float eps = 1e-5f;
        for (int o = 0; o < co; o++) {
            gamma[o] = (float)test_uniform(&r, 0.5, 2.0) * (o % 2 ? -1.0f : 1.0f);
            beta[o] = (float)test_uniform(&r, -1, 1);
            mean[o] = (float)test_uniform(&r, -1, 1);
            var[o] = (float)test_uniform(&r, 0.1, 3.0);
        }
        /* reference: conv then BN, in double */
        double *xd = to_d(x, c.nx), *Wd = to_d(W, c.nw), *bd = to_d(b, c.nb);
        double *y = malloc(c.ny * sizeof *y), *S = malloc(c.ny * sizeof *S);
        ref_forward(&c, xd, Wd, with_bias ? bd : NULL, y);
        for (int n = 0; n < c.d.n; n++)
            for (int o = 0; o < co; o++)
                for (size_t p = 0; p < P; p++) {
                    double *v = &y[((size_t)n * co + o) * P + p];
                    *v = (*v - mean[o]) / sqrt((double)var[o] + eps) * gamma[o] + beta[o];
                }
        /* fold, then conv with folded weights: host reference and device */
        REQUIRE_OK(ctx, gf_bn_fold(ctx, W, with_bias ? b : NULL, bf, co, per, gamma, beta, mean, var, eps));
        double *Wf = to_d(W, c.nw), *bfd = to_d(bf, c.nb), *yf = malloc(c.ny * sizeof *yf);
        double *ax = to_abs(x, c.nx), *aW = to_abs(W, c.nw), *ab = to_abs(bf, c.nb);
        ref_forward(&c, xd, Wf, bfd, yf);
        ref_forward(&c, ax, aW, ab, S);
        double worst = 0;
        for (size_t i = 0; i < c.ny; i++) worst = fmax(worst, fabs(yf[i] - y[i]) / (TOL * (1 + S[i])));
        CHECK(worst <= 1.0, "bn fold (bias %d): folded conv vs conv+BN, err %.3g x tolerance", with_bias, worst);
        cl_mem dx = test_upload(ctx, x, c.nx), dW = test_upload(ctx, W, c.nw), db = test_upload(ctx, bf, c.nb);
        cl_mem dy = test_alloc(ctx, c.ny);
        REQUIRE_OK(ctx, gf_conv2d_forward(ctx, &c.d, dx, dW, db, dy));
        float *got = dl(ctx, dy, c.ny);
        check_close("bn fold", "device conv with folded weights vs conv+BN", got, y, S, c.ny);
        /* in place: b_out == b_in */
        if (with_bias) {
            float b2[16];
            memcpy(b2, b, (size_t)co * sizeof *b2);
            float *W2 = fresh(&r, c.nw);
            REQUIRE_OK(ctx, gf_bn_fold(ctx, W2, b2, b2, co, per, gamma, beta, mean, var, eps));
            CHECK(!memcmp(b2, bf, (size_t)co * sizeof *b2), "bn fold: in-place bias differs");
            free(W2);
        }
        free(got); free(x); free(W); free(b); free(xd); free(Wd); free(bd); free(y); free(S);
        free(Wf); free(bfd); free(yf); free(ax); free(aW); free(ab);
        gf_buf_release(&dx); gf_buf_release(&dW); gf_buf_release(&db); gf_buf_release(&dy);
    }
    float W[4] = {1, 2, 3, 4}, bo[1], g1[1] = {1}, be[1] = {0}, mu[1] = {0}, v[1] = {-1};
    CHECK(gf_bn_fold(ctx, W, NULL, bo, 1, 4, g1, be, mu, v, 1e-5f) == GF_ERR_INPUT, "bn fold: negative var accepted");
}

/* ---------------- descriptor validation ---------------- */

static void test_desc(gf_ctx *ctx) {
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
    /* a too small output buffer is an error naming the tensor, not a crash */
    cl_mem x = test_alloc(ctx, 2 * 3 * 9 * 8), W = test_alloc(ctx, 4 * 3 * 9), y = test_alloc(ctx, 10);
    CHECK(gf_conv2d_forward(ctx, &d, x, W, NULL, y) == GF_ERR_USAGE && strstr(gf_ctx_last_error(ctx), "y "),
          "small y accepted or message unclear: %s", gf_ctx_last_error(ctx));
    gf_buf_release(&x); gf_buf_release(&W); gf_buf_release(&y);
}

int main(int argc, char **argv) {
    int small = argc > 1 && !strcmp(argv[1], "--small");
    gf_ctx *ctx = test_ctx();
    uint64_t seed = 1;
    if (small) {
        printf("device: %s (%s)\n", gf_ctx_device(ctx)->name, gf_ctx_device(ctx)->platform_name);
        tcase cs[] = {
            conv_case(ctx, "small 3x3 s2 pad1", 2, 3, 7, 6, 5, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1),
            same_case(ctx, "small depthwise x2 SAME", 2, 3, 6, 5, 6, 3, 2, 1, 3),
            linear_case("small linear", 3, 7, 5),
        };
        cs[0].d.max_workspace = 1;   /* one image per chunk */
        /* pass 1: a tiny item budget (16): plane kernels in row tiles, reductions in slices or tiles
         * whose partial sums sum_partials adds up */
        for (int pass = 0; pass < 2; pass++) {
            if (pass == 1) {
                gf_ctx_free(ctx);
                setenv("GRADFEAT_ITEM_BUDGET", "16", 1);
                ctx = test_ctx();
                unsetenv("GRADFEAT_ITEM_BUDGET");
                printf("kernel paths: %s\n", gf_ctx_paths(ctx));
            }
            for (int v = GF_CONV_VARIANT_ELEMENT; v <= GF_CONV_VARIANT_PLANE; v++)
                for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
                    cs[i].d.variant = v;
                    run_case(ctx, &cs[i], seed++);
                }
        }
        gf_ctx_free(ctx);
        return test_finish("test_affine --small");
    }
    test_desc(ctx);
    tcase cs[] = {
        conv_case(ctx, "1x1", 1, 3, 5, 7, 5, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1),
        conv_case(ctx, "1x1 pad 1 (border of zeros)", 2, 4, 3, 4, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1),
        conv_case(ctx, "1x1 stride 2 batch 7", 7, 6, 9, 7, 3, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1),
        conv_case(ctx, "3x3 pad 1 batch 7", 7, 5, 9, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1),
        conv_case(ctx, "3x3 stride 2 odd", 2, 3, 11, 8, 7, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1),
        conv_case(ctx, "3x3 no pad", 1, 9, 8, 9, 10, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1),
        conv_case(ctx, "5x5 pad 2", 1, 2, 9, 10, 3, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1),
        conv_case(ctx, "5x5 stride 2 asymmetric pads", 2, 3, 10, 9, 5, 5, 5, 2, 2, 0, 2, 1, 3, 1, 1),
        same_case(ctx, "SAME 3x3 stride 2", 3, 4, 10, 7, 5, 3, 2, 1, 1),
        same_case(ctx, "SAME 5x5 stride 2", 1, 3, 8, 9, 6, 5, 2, 1, 1),
        conv_case(ctx, "dilation 2", 2, 3, 9, 9, 4, 3, 3, 1, 1, 2, 2, 2, 2, 2, 1),
        conv_case(ctx, "dilation 2 stride 2", 1, 5, 11, 10, 3, 3, 3, 2, 2, 1, 1, 1, 1, 2, 1),
        conv_case(ctx, "rectangular 1x3 stride (2,1)", 2, 3, 7, 6, 5, 1, 3, 2, 1, 0, 0, 1, 1, 1, 1),
        conv_case(ctx, "groups 2", 2, 6, 7, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 2),
        conv_case(ctx, "groups 3 stride 2", 7, 9, 8, 7, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1, 3),
        conv_case(ctx, "depthwise 3x3 batch 7", 7, 5, 8, 7, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 5),
        same_case(ctx, "depthwise x2 SAME stride 2", 2, 3, 9, 8, 6, 3, 2, 1, 3),
        conv_case(ctx, "depthwise 5x5 dilation 2", 1, 6, 12, 11, 6, 5, 5, 1, 1, 4, 4, 4, 4, 2, 6),
        conv_case(ctx, "chunked 3x3 batch 7", 7, 5, 9, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1),
        conv_case(ctx, "chunked groups 2 stride 2", 5, 4, 7, 8, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1, 2),
        /* planes whose whole-plane loops pass 65,535 iterations per work item (im2col_plane
         * 9*260*260, dw_backward_weight_serial 2*200*200): Mesa's llvmpipe silently cut such
         * loops short before the plane kernels were tiled */
        conv_case(ctx, "large plane 3x3 260x260", 1, 2, 260, 260, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1),
        conv_case(ctx, "large plane depthwise 3x3 200x200", 2, 2, 200, 200, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 2),
        linear_case("linear 1x1x1", 1, 1, 1),
        linear_case("linear batch 7", 7, 13, 5),
        linear_case("linear 64 -> 10", 3, 64, 10),
        linear_case("linear 100 -> 33 batch 16", 16, 100, 33),
    };
    size_t nc = sizeof cs / sizeof cs[0];
    /* chunking: a workspace for 2 images (3x3 case: 45 x 54 floats per image), and 1 image */
    for (size_t i = 0; i < nc; i++) {
        if (!strcmp(cs[i].name, "chunked 3x3 batch 7")) cs[i].d.max_workspace = 2 * 45 * 54 * sizeof(float) + 100;
        if (!strcmp(cs[i].name, "chunked groups 2 stride 2")) cs[i].d.max_workspace = 1;
    }
    test_bn_fold(ctx);
    /* Passes 0 and 1: the context's GEMM path (host BLAS on CPU devices sharing
     * host memory) with each im2col/col2im kernel variant; pass 2: CLBlast
     * forced (GRADFEAT_GEMM=clblast) with the automatic variant; pass 3: plane
     * kernels with a tiny item budget (GRADFEAT_ITEM_BUDGET=150: a few rows per
     * work item, so tile edges fall inside every plane); pass 4: element kernels
     * with that budget (reductions split in slices). So both GEMM paths, both
     * kernel variants and the tiling see every shape. */
    static const char *pass_name[5] = {"element", "plane", "CLBlast", "tiles", "slices"};
    static const int pass_variant[5] = {GF_CONV_VARIANT_ELEMENT, GF_CONV_VARIANT_PLANE, GF_CONV_VARIANT_AUTO,
                                        GF_CONV_VARIANT_PLANE, GF_CONV_VARIANT_ELEMENT};
    for (int pass = 0; pass < 5; pass++) {
        if (pass == 2) {
            gf_ctx_free(ctx);
            setenv("GRADFEAT_GEMM", "clblast", 1);
            ctx = test_ctx();
            unsetenv("GRADFEAT_GEMM");
        }
        if (pass == 3) {
            gf_ctx_free(ctx);
            setenv("GRADFEAT_ITEM_BUDGET", "150", 1);
            ctx = test_ctx();
            unsetenv("GRADFEAT_ITEM_BUDGET");
            printf("kernel paths: %s\n", gf_ctx_paths(ctx));
        }
        for (size_t i = 0; i < nc; i++) {
            int before = gf_test_failures;
            cs[i].d.variant = pass_variant[pass];
            run_case(ctx, &cs[i], seed++);
            printf("%-34s %-8s %s\n", cs[i].name, pass_name[pass], gf_test_failures == before ? "ok" : "FAILED");
        }
    }
    gf_ctx_free(ctx);
    return test_finish("test_affine");
}
