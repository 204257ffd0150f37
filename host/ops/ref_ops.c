#include "ref_ops.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

double ref_dot(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* Calls visit(wi, xi, oi) for every product W[wi] * x[xi] that output oi sums. */
#define CONV_EACH_TERM(d, visit)                                                                                \
    do {                                                                                                        \
        const int cig_ = (d)->c_in / (d)->groups, cog_ = (d)->c_out / (d)->groups;                              \
        for (int n_ = 0; n_ < (d)->n; n_++)                                                                     \
            for (int co_ = 0; co_ < (d)->c_out; co_++)                                                          \
                for (int oh_ = 0; oh_ < (d)->h_out; oh_++)                                                      \
                    for (int ow_ = 0; ow_ < (d)->w_out; ow_++) {                                                \
                        const size_t oi = (((size_t)n_ * (d)->c_out + co_) * (d)->h_out + oh_) * (d)->w_out + ow_; \
                        const int ci0_ = (co_ / cog_) * cig_;                                                   \
                        for (int ci_ = 0; ci_ < cig_; ci_++)                                                    \
                            for (int i_ = 0; i_ < (d)->kh; i_++) {                                              \
                                int ih_ = oh_ * (d)->stride_h - (d)->pad_top + i_ * (d)->dil_h;                 \
                                if (ih_ < 0 || ih_ >= (d)->h_in) continue;                                      \
                                for (int j_ = 0; j_ < (d)->kw; j_++) {                                          \
                                    int iw_ = ow_ * (d)->stride_w - (d)->pad_left + j_ * (d)->dil_w;            \
                                    if (iw_ < 0 || iw_ >= (d)->w_in) continue;                                  \
                                    const size_t wi = (((size_t)co_ * cig_ + ci_) * (d)->kh + i_) * (d)->kw + j_; \
                                    const size_t xi =                                                           \
                                        (((size_t)n_ * (d)->c_in + ci0_ + ci_) * (d)->h_in + ih_) * (d)->w_in + iw_; \
                                    visit;                                                                      \
                                }                                                                               \
                            }                                                                                   \
                    }                                                                                           \
    } while (0)

static size_t conv_out_count(const gf_conv_desc *d) { return (size_t)d->n * d->c_out * d->h_out * d->w_out; }

void ref_conv(const gf_conv_desc *d, const double *x, const double *W, const double *b, double *y) {
    const size_t plane = (size_t)d->h_out * d->w_out;
    for (size_t oi = 0; oi < conv_out_count(d); oi++) y[oi] = b ? b[(oi / plane) % d->c_out] : 0.0;
    CONV_EACH_TERM(d, y[oi] += W[wi] * x[xi]);
}

void ref_conv_backward(const gf_conv_desc *d, const double *x, const double *W, const double *g, double *gx,
                       double *gW, double *gb) {
    const size_t plane = (size_t)d->h_out * d->w_out;
    memset(gx, 0, (size_t)d->n * d->c_in * d->h_in * d->w_in * sizeof *gx);
    memset(gW, 0, (size_t)d->c_out * (d->c_in / d->groups) * d->kh * d->kw * sizeof *gW);
    memset(gb, 0, (size_t)d->c_out * sizeof *gb);
    for (size_t oi = 0; oi < conv_out_count(d); oi++) gb[(oi / plane) % d->c_out] += g[oi];
    CONV_EACH_TERM(d, { gW[wi] += g[oi] * x[xi]; gx[xi] += g[oi] * W[wi]; });
}

void ref_optim_step(const ref_optim *o, int step, size_t n, const double *g, double clip, const double *target,
                    double *p, double *m, double *v) {
    for (size_t i = 0; i < n; i++) {
        double gi = clip * g[i] + o->wd * (p[i] - (target ? target[i] : 0.0));
        if (!o->adam) {
            if (o->mom != 0) { v[i] = o->mom * v[i] + gi; gi = v[i]; }
            p[i] -= o->lr * gi;
        } else {
            double bc1 = 1 - pow(o->b1, step), bc2 = 1 - pow(o->b2, step);
            m[i] = o->b1 * m[i] + (1 - o->b1) * gi;
            v[i] = o->b2 * v[i] + (1 - o->b2) * gi * gi;
            p[i] -= o->lr / bc1 * m[i] / (sqrt(v[i]) / sqrt(bc2) + o->eps);
        }
    }
}

#define BN_AT(i, k, j) (((size_t)(i) * c + (k)) * hw + (j))

void ref_bn_stats(int n, int c, int hw, const double *x, double *mean, double *var) {
    const double M = (double)n * hw;
    for (int k = 0; k < c; k++) {
        double sum = 0, q = 0;
        for (int i = 0; i < n; i++) for (int j = 0; j < hw; j++) sum += x[BN_AT(i, k, j)];
        mean[k] = sum / M;
        for (int i = 0; i < n; i++) for (int j = 0; j < hw; j++) {
            double d = x[BN_AT(i, k, j)] - mean[k];
            q += d * d;
        }
        var[k] = q / M;
    }
}

void ref_bn_affine(int n, int c, int hw, const double *x, const double *g, const double *b, const double *mean,
                   const double *var, double eps, double *y) {
    for (int i = 0; i < n; i++)
        for (int k = 0; k < c; k++)
            for (int j = 0; j < hw; j++) y[BN_AT(i, k, j)] = (x[BN_AT(i, k, j)] - mean[k]) / sqrt(var[k] + eps) * g[k] + b[k];
}

void ref_bn_backward(int n, int c, int hw, const double *x, const double *dy, const double *g, const double *mean,
                     const double *var, double eps, int train, double *dx, double *dg, double *db, double *sdx,
                     double *sdg, double *sdb) {
    const double M = (double)n * hw;
    for (int k = 0; k < c; k++) {
        double is = 1 / sqrt(var[k] + eps), a = 0, b = 0, aa = 0, ab = 0;
        for (int i = 0; i < n; i++) for (int j = 0; j < hw; j++) {
            size_t t = BN_AT(i, k, j);
            double xh = (x[t] - mean[k]) * is;
            a += dy[t] * xh; b += dy[t];
            aa += fabs(dy[t] * xh); ab += fabs(dy[t]);
        }
        dg[k] = a; db[k] = b; sdg[k] = 1 + aa; sdb[k] = 1 + ab;
        for (int i = 0; i < n; i++) for (int j = 0; j < hw; j++) {
            size_t t = BN_AT(i, k, j);
            double xh = (x[t] - mean[k]) * is;
            if (train) {
                dx[t] = g[k] * is / M * (M * dy[t] - b - xh * a);
                sdx[t] = 1 + fabs(g[k]) * is * (fabs(dy[t]) + ab / M + fabs(xh) * aa / M);
            } else {
                dx[t] = g[k] * is * dy[t];
                sdx[t] = 1 + fabs(dx[t]);
            }
        }
    }
}

void ref_ln(const double *x, int C, double eps, double *y) {
    double mu = 0, v = 0;
    for (int c = 0; c < C; c++) mu += x[c];
    mu /= C;
    for (int c = 0; c < C; c++) v += (x[c] - mu) * (x[c] - mu);
    double s = sqrt(v / C + eps);
    for (int c = 0; c < C; c++) y[c] = (x[c] - mu) / s;
}

void ref_ln_jvp(const double *x, const double *t, int C, double eps, double *jt) {
    double mu = 0, v = 0, a = 0, b = 0;
    for (int c = 0; c < C; c++) mu += x[c];
    mu /= C;
    for (int c = 0; c < C; c++) v += (x[c] - mu) * (x[c] - mu);
    double s = sqrt(v / C + eps);
    for (int c = 0; c < C; c++) { a += t[c]; b += (x[c] - mu) / s * t[c]; }
    a /= C;
    b /= C;
    for (int c = 0; c < C; c++) jt[c] = (t[c] - a - (x[c] - mu) / s * b) / s;
}

double ref_act(gf_act a, double z) {
    const double k = 0.7978845608028654, c = 0.044715;
    double s;
    switch (a.kind) {
    case GF_ACT_RELU: return z > 0 ? z : 0;
    case GF_ACT_LEAKY: return z > 0 ? z : (double)a.slope * z;
    case GF_ACT_RELU6: return z <= 0 ? 0 : (z >= 6 ? 6 : z);
    case GF_ACT_SIGMOID: return 1.0 / (1.0 + exp(-z));
    case GF_ACT_SILU: return z / (1.0 + exp(-z));
    case GF_ACT_HSIGMOID: s = (double)a.slope * z + 0.5; return s <= 0 ? 0 : (s >= 1 ? 1 : s);
    case GF_ACT_HSWISH: s = z + 3; return z * (s <= 0 ? 0 : (s >= 6 ? 6 : s)) / 6;
    case GF_ACT_GELU: return 0.5 * z * erfc(-z / sqrt(2.0));
    case GF_ACT_GELU_TANH: return 0.5 * z * (1 + tanh(k * (z + c * z * z * z)));
    case GF_ACT_COUNT: break;
    }
    return NAN;
}

double ref_act_d(gf_act a, double z) {
    const double k = 0.7978845608028654, c = 0.044715;
    double s, t;
    switch (a.kind) {
    case GF_ACT_RELU: return z > 0;
    case GF_ACT_LEAKY: return z > 0 ? 1.0 : (double)a.slope;
    case GF_ACT_RELU6: return z > 0 && z < 6;
    case GF_ACT_SIGMOID: s = 1.0 / (1.0 + exp(-z)); return s * (1 - s);
    case GF_ACT_SILU: s = 1.0 / (1.0 + exp(-z)); return s * (1 + z * (1 - s));
    case GF_ACT_HSIGMOID: s = (double)a.slope * z + 0.5; return s > 0 && s < 1 ? (double)a.slope : 0;
    case GF_ACT_HSWISH: return z < -3 ? 0 : (z <= 3 ? z / 3 + 0.5 : 1);
    case GF_ACT_GELU: return 0.5 * erfc(-z / sqrt(2.0)) + z * exp(-0.5 * z * z) / sqrt(2 * M_PI);
    case GF_ACT_GELU_TANH:
        t = tanh(k * (z + c * z * z * z));
        return 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * k * (1 + 3 * c * z * z);
    case GF_ACT_COUNT: break;
    }
    return NAN;
}

void ref_mul(size_t P, size_t HW, int gate, const double *x, const double *s, double *y) {
    for (size_t i = 0; i < P * HW; i++) y[i] = x[i] * s[gate ? i / HW : i];
}

void ref_mul_backward(size_t P, size_t HW, int gate, const double *x, const double *s, const double *u,
                      double *gx, double *gs) {
    if (gs) memset(gs, 0, (gate ? P : P * HW) * sizeof *gs);
    for (size_t i = 0; i < P * HW; i++) {
        size_t si = gate ? i / HW : i;
        if (gx) gx[i] = u[i] * s[si];
        if (gs) gs[si] += u[i] * x[i];
    }
}

void ref_concat(int N, size_t HW, int n, const int *C, const double *const *in, double *y) {
    int Ct = 0;
    for (int k = 0; k < n; k++) Ct += C[k];
    for (int b = 0; b < N; b++)
        for (int k = 0, off = 0; k < n; off += C[k], k++)
            for (int c = 0; c < C[k]; c++)
                for (size_t j = 0; j < HW; j++)
                    y[((size_t)b * Ct + off + c) * HW + j] = in[k] ? in[k][((size_t)b * C[k] + c) * HW + j] : 0.0;
}

void ref_slice(int N, size_t HW, int C, int off, int Ck, const double *x, double *y) {
    for (int n = 0; n < N; n++)
        for (int c = 0; c < Ck; c++)
            for (size_t j = 0; j < HW; j++) y[((size_t)n * Ck + c) * HW + j] = x[((size_t)n * C + off + c) * HW + j];
}

void ref_slice_backward(int N, size_t HW, int C, int off, int Ck, const double *g, double *gx) {
    memset(gx, 0, (size_t)N * C * HW * sizeof *gx);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < Ck; c++)
            for (size_t j = 0; j < HW; j++) gx[((size_t)n * C + off + c) * HW + j] = g[((size_t)n * Ck + c) * HW + j];
}

static size_t shuffle_src(int C, int G, int c) { return (size_t)(c % G) * (C / G) + (size_t)(c / G); }

void ref_shuffle(int N, int C, size_t HW, int G, const double *x, double *y) {
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (size_t j = 0; j < HW; j++)
                y[((size_t)n * C + c) * HW + j] = x[((size_t)n * C + shuffle_src(C, G, c)) * HW + j];
}

void ref_shuffle_backward(int N, int C, size_t HW, int G, const double *g, double *gx) {
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (size_t j = 0; j < HW; j++)
                gx[((size_t)n * C + shuffle_src(C, G, c)) * HW + j] = g[((size_t)n * C + c) * HW + j];
}

void ref_pool(const gf_pool2d *p, const double *x, int is_max, double *y, int *arg) {
    for (int nc = 0; nc < p->N * p->C; nc++)
        for (int oh = 0; oh < p->OH; oh++)
            for (int ow = 0; ow < p->OW; ow++) {
                int h0 = oh * p->sh - p->pt, w0 = ow * p->sw - p->pl, bi = -1, cnt = 0, cnt_pad = 0;
                double best = 0, sum = 0;
                for (int h = h0; h < h0 + p->kh; h++)
                    for (int w = w0; w < w0 + p->kw; w++) {
                        if (h < p->H + p->pb && w < p->W + p->pr) cnt_pad++;   /* h, w >= -pad always */
                        if (h < 0 || h >= p->H || w < 0 || w >= p->W) continue;
                        double v = x[(size_t)nc * p->H * p->W + h * p->W + w];
                        if (bi < 0 || v > best) { best = v; bi = h * p->W + w; }
                        sum += v;
                        cnt++;
                    }
                size_t o = ((size_t)nc * p->OH + oh) * p->OW + ow;
                if (is_max) y[o] = best;
                else y[o] = sum / (p->count_include_pad ? cnt_pad : cnt);
                if (arg) arg[o] = bi;
            }
}

void ref_maxpool_backward(const gf_pool2d *p, const int *arg, const double *g, double *gi) {
    size_t ni = gf_pool2d_in_count(p), no = gf_pool2d_out_count(p), plane = (size_t)p->OH * p->OW;
    memset(gi, 0, ni * sizeof *gi);
    for (size_t o = 0; o < no; o++) gi[(o / plane) * p->H * p->W + arg[o]] += g[o];
}

void ref_avgpool_backward(const gf_pool2d *p, const double *g, double *gi) {
    memset(gi, 0, gf_pool2d_in_count(p) * sizeof *gi);
    for (int nc = 0; nc < p->N * p->C; nc++)
        for (int oh = 0; oh < p->OH; oh++)
            for (int ow = 0; ow < p->OW; ow++) {
                int h0 = oh * p->sh - p->pt, w0 = ow * p->sw - p->pl, cnt = 0, cnt_pad = 0;
                for (int h = h0; h < h0 + p->kh; h++)
                    for (int w = w0; w < w0 + p->kw; w++) {
                        if (h < p->H + p->pb && w < p->W + p->pr) cnt_pad++;
                        if (h >= 0 && h < p->H && w >= 0 && w < p->W) cnt++;
                    }
                double share = g[((size_t)nc * p->OH + oh) * p->OW + ow] / (p->count_include_pad ? cnt_pad : cnt);
                for (int h = h0; h < h0 + p->kh; h++)
                    for (int w = w0; w < w0 + p->kw; w++)
                        if (h >= 0 && h < p->H && w >= 0 && w < p->W) gi[(size_t)nc * p->H * p->W + h * p->W + w] += share;
            }
}

void ref_gap(size_t NC, size_t HW, const double *x, double *y) {
    for (size_t c = 0; c < NC; c++) {
        double s = 0;
        for (size_t j = 0; j < HW; j++) s += x[c * HW + j];
        y[c] = s / (double)HW;
    }
}

void ref_gap_backward(size_t NC, size_t HW, const double *g, double *gi) {
    for (size_t i = 0; i < NC * HW; i++) gi[i] = g[i / HW] / (double)HW;
}

double ref_xent(int B, int K, const double *z, const int *y, double *grad, double *correct) {
    double loss = 0, c = 0;
    for (int r = 0; r < B; r++) {
        const double *zr = z + (size_t)r * K;
        double m = zr[0];
        int am = 0;
        for (int k = 1; k < K; k++)
            if (zr[k] > m) { m = zr[k]; am = k; }
        double s = 0;
        for (int k = 0; k < K; k++) s += exp(zr[k] - m);
        int valid = y[r] >= 0 && y[r] < K;
        if (valid) {
            loss += log(s) + m - zr[y[r]];
            c += am == y[r];
        }
        if (grad)
            for (int k = 0; k < K; k++) grad[(size_t)r * K + k] = valid ? (exp(zr[k] - m) / s - (k == y[r])) / B : 0;
    }
    if (correct) *correct = c;
    return loss / B;
}

static double softplus(double z) { return fmax(z, 0) + log1p(exp(-fabs(z))); }

double ref_bce(int B, int K, const double *z, const double *t, int per_sample, double *grad, double *correct) {
    size_t n = (size_t)B * K;
    double denom = per_sample ? B : (double)n, loss = 0, c = 0;
    for (size_t i = 0; i < n; i++) {
        int valid = t[i] >= 0;
        if (valid) {
            loss += softplus(z[i]) - z[i] * t[i];
            c += (z[i] > 0) == (t[i] > 0.5);
        }
        if (grad) grad[i] = valid ? (1 / (1 + exp(-z[i])) - t[i]) / denom : 0;
    }
    if (correct) *correct = c;
    return loss / denom;
}
