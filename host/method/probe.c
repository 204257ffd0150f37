/* The linear probe solved to convergence: L-BFGS on the L2-regularised
 * training loss over cached features (the probe is both the baseline and the
 * frozen ω̄ of gradient/full, so an under-trained probe weakens both), and the
 * L2 strength chosen on held-out training data from a log grid, as careful
 * linear-probe evaluations do. Host code in double precision (the problem is
 * K x d parameters over n x d features); the two products per evaluation go
 * through the host BLAS when there is one. See train.h (gf_probe_fit). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "train.h"
#ifdef GF_HAVE_CBLAS
#include <cblas.h>
#endif

typedef struct {
    const float *f;             /* n x d features */
    const int *labels;          /* softmax: class indices */
    const float *targets;       /* multi-label: n x K 0/1 */
    int n, d, K, multi;
    double l2;
    float *wf, *z;              /* scratch: W as float (K x d), logits / their gradient (n x K) */
    double *gz;
} problem;

/* Z = F Wᵀ + b, as floats (the device computes logits in float too). */
static void logits(problem *p, const double *x) {
    size_t kd = (size_t)p->K * p->d;
    for (size_t i = 0; i < kd; i++) p->wf[i] = (float)x[i];
#ifdef GF_HAVE_CBLAS
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, p->n, p->K, p->d, 1.0f, p->f, p->d, p->wf, p->d, 0.0f, p->z, p->K);
#else
    for (int i = 0; i < p->n; i++)
        for (int k = 0; k < p->K; k++) {
            double s = 0;
            const float *fi = p->f + (size_t)i * p->d, *wk = p->wf + (size_t)k * p->d;
            for (int j = 0; j < p->d; j++) s += (double)fi[j] * wk[j];
            p->z[(size_t)i * p->K + k] = (float)s;
        }
#endif
    const double *b = x + kd;
    for (int i = 0; i < p->n; i++)
        for (int k = 0; k < p->K; k++) p->z[(size_t)i * p->K + k] += (float)b[k];
}

/* Mean data loss of logits z (n x K); with gz != NULL also d loss / d z. */
static double data_loss(const problem *p, const float *z, int n, const int *labels, const float *targets, double *gz) {
    double L = 0;
    int K = p->K;
    for (int i = 0; i < n; i++) {
        const float *zi = z + (size_t)i * K;
        if (!p->multi) {
            double mx = zi[0], s = 0;
            for (int k = 1; k < K; k++) if (zi[k] > mx) mx = zi[k];
            for (int k = 0; k < K; k++) s += exp(zi[k] - mx);
            int y = labels[i];
            if (y < 0 || y >= K) { if (gz) for (int k = 0; k < K; k++) gz[(size_t)i * K + k] = 0; continue; }
            L += mx + log(s) - zi[y];
            if (gz) for (int k = 0; k < K; k++) gz[(size_t)i * K + k] = (exp(zi[k] - mx) / s - (k == y)) / n;
        } else {
            for (int k = 0; k < K; k++) {
                double v = zi[k], t = targets[(size_t)i * K + k];
                if (t < 0) { if (gz) gz[(size_t)i * K + k] = 0; continue; }
                L += (v > 0 ? v : 0) - v * t + log1p(exp(-fabs(v)));
                if (gz) gz[(size_t)i * K + k] = (1 / (1 + exp(-v)) - t) / ((double)n * K);
            }
        }
    }
    return p->multi ? L / ((double)n * K) : L / n;
}

/* f(x) and its gradient g. */
static double objective(problem *p, const double *x, double *g) {
    size_t kd = (size_t)p->K * p->d;
    logits(p, x);
    double L = data_loss(p, p->z, p->n, p->labels, p->targets, p->gz);
    double reg = 0;
    for (size_t i = 0; i < kd; i++) reg += x[i] * x[i];
    L += 0.5 * p->l2 * reg;
    /* gW = gZᵀ F + l2 W, gb = column sums of gZ */
    memset(g, 0, (kd + p->K) * sizeof *g);
#ifdef GF_HAVE_CBLAS
    for (size_t i = 0; i < (size_t)p->n * p->K; i++) p->z[i] = (float)p->gz[i];
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, p->K, p->d, p->n, 1.0f, p->z, p->K, p->f, p->d, 0.0f, p->wf, p->d);
    for (size_t i = 0; i < kd; i++) g[i] = p->wf[i];
#else
    for (int i = 0; i < p->n; i++)
        for (int k = 0; k < p->K; k++) {
            double gzk = p->gz[(size_t)i * p->K + k];
            if (gzk == 0) continue;
            const float *fi = p->f + (size_t)i * p->d;
            double *gk = g + (size_t)k * p->d;
            for (int j = 0; j < p->d; j++) gk[j] += gzk * fi[j];
        }
#endif
    for (int i = 0; i < p->n; i++)
        for (int k = 0; k < p->K; k++) g[kd + k] += p->gz[(size_t)i * p->K + k];
    for (size_t i = 0; i < kd; i++) g[i] += p->l2 * x[i];
    return L;
}

static double dot(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

enum { HISTORY = 10 };

/* L-BFGS (two-loop recursion, backtracking Armijo line search) from x;
 * stops when the gradient's largest component is below tol or after
 * max_iter iterations. Returns the iterations, -1 when out of memory. */
static int lbfgs(problem *p, double *x, int max_iter, double tol) {
    size_t N = (size_t)p->K * p->d + p->K;
    double *mem = malloc((size_t)(2 * HISTORY + 4) * N * sizeof(double));
    if (!mem) return -1;
    double *S = mem, *Y = mem + HISTORY * N, *g = Y + HISTORY * N, *dir = g + N, *xn = dir + N, *gn = xn + N;
    double rho[HISTORY], alpha[HISTORY];
    int len = 0, head = 0, it;
    double f = objective(p, x, g);
    for (it = 0; it < max_iter; it++) {
        double gmax = 0;
        for (size_t i = 0; i < N; i++) if (fabs(g[i]) > gmax) gmax = fabs(g[i]);
        if (gmax < tol) break;
        /* dir = -H g */
        for (size_t i = 0; i < N; i++) dir[i] = -g[i];
        for (int j = 0; j < len; j++) {
            int k = (head - 1 - j + HISTORY) % HISTORY;
            alpha[k] = rho[k] * dot(S + k * N, dir, N);
            for (size_t i = 0; i < N; i++) dir[i] -= alpha[k] * Y[k * N + i];
        }
        if (len) {
            int k = (head - 1 + HISTORY) % HISTORY;
            double gamma = dot(S + k * N, Y + k * N, N) / dot(Y + k * N, Y + k * N, N);
            for (size_t i = 0; i < N; i++) dir[i] *= gamma;
        } else {
            double gn2 = sqrt(dot(g, g, N));
            for (size_t i = 0; i < N; i++) dir[i] /= gn2 > 1 ? gn2 : 1;
        }
        for (int j = len - 1; j >= 0; j--) {
            int k = (head - 1 - j + HISTORY) % HISTORY;
            double beta = rho[k] * dot(Y + k * N, dir, N);
            for (size_t i = 0; i < N; i++) dir[i] += (alpha[k] - beta) * S[k * N + i];
        }
        double slope = dot(g, dir, N);
        if (slope >= 0) {   /* not a descent direction (rounding): restart from steepest descent */
            len = 0;
            for (size_t i = 0; i < N; i++) dir[i] = -g[i];
            slope = -dot(g, g, N);
        }
        double step = 1, fn = f;
        int ok = 0;
        for (int ls = 0; ls < 40; ls++, step *= 0.5) {
            for (size_t i = 0; i < N; i++) xn[i] = x[i] + step * dir[i];
            fn = objective(p, xn, gn);
            if (fn <= f + 1e-4 * step * slope) { ok = 1; break; }
        }
        if (!ok) break;     /* no decrease possible at this precision: converged */
        double *s = S + head * N, *y = Y + head * N;
        for (size_t i = 0; i < N; i++) { s[i] = xn[i] - x[i]; y[i] = gn[i] - g[i]; }
        double sy = dot(s, y, N);
        if (sy > 1e-12) { rho[head] = 1 / sy; head = (head + 1) % HISTORY; if (len < HISTORY) len++; }
        double df = f - fn;
        memcpy(x, xn, N * sizeof *x);
        memcpy(g, gn, N * sizeof *g);
        f = fn;
        if (df <= 1e-12 * (fabs(f) > 1 ? fabs(f) : 1)) { it++; break; }
    }
    free(mem);
    return it;
}

/* Held-out loss and metric of the probe x on a feature set (host, float logits). */
static void score(problem *p, const double *x, const float *f, int n, const int *labels, const float *targets,
                  double *loss, double *metric) {
    problem q = *p;
    q.f = f; q.n = n;
    float *z = malloc((size_t)n * p->K * sizeof(float));
    if (!z) { *loss = *metric = NAN; return; }
    q.z = z;
    logits(&q, x);
    *loss = data_loss(p, z, n, labels, targets, NULL);
    *metric = p->multi ? gf_mean_ap(z, targets, n, p->K, NULL) : gf_accuracy(z, labels, n, p->K);
    free(z);
}

gf_status gf_probe_fit(gf_ctx *ctx, const gf_probe_data *tr, const gf_probe_data *ho, int K, int d, int multi,
                       double l2, int select, float *w, float *b, double *l2_used, int *l2_tried) {
    static const double grid[] = {1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6};
    enum { NG = sizeof grid / sizeof grid[0] };
    size_t kd = (size_t)K * d, N = kd + K;
    problem p = {tr->f, tr->labels, tr->targets, tr->n, d, K, multi, 0, NULL, NULL, NULL};
    p.wf = malloc(kd * sizeof(float));
    p.z = malloc((size_t)tr->n * K * sizeof(float));
    p.gz = malloc((size_t)tr->n * K * sizeof(double));
    double *x = calloc(N, sizeof(double)), *best = malloc(N * sizeof(double));
    gf_status st = GF_OK;
    if (!p.wf || !p.z || !p.gz || !x || !best) st = gf_fail(ctx, GF_ERR_MEMORY, "out of memory for the probe solver");
    int search = l2 < 0 && ho && ho->n > 0;
    double best_l2 = l2 < 0 ? 1e-4 : l2, best_loss = INFINITY, best_metric = -INFINITY, prev_loss = INFINITY;
    int rises = 0, gi;    /* rises: consecutive grid steps whose held-out loss rose, none of them the best */
    for (gi = 0; st == GF_OK && gi < (search ? NG : 1) && rises < 2; gi++) {
        p.l2 = search ? grid[gi] : best_l2;
        if (lbfgs(&p, x, 500, 1e-6) < 0) { st = gf_fail(ctx, GF_ERR_MEMORY, "out of memory for the probe solver"); break; }
        int take = !search;
        if (search) {   /* warm-started from the stronger L2 before it */
            double hl, hm;
            score(&p, x, ho->f, ho->n, ho->labels, ho->targets, &hl, &hm);
            take = select == GF_SELECT_METRIC ? (hm > best_metric || (hm == best_metric && hl < best_loss))
                                               : hl < best_loss;
            if (take) { best_loss = hl; best_metric = hm; best_l2 = p.l2; }
            /* The weak-L2 end costs the most iterations; once the held-out loss has risen twice in a
             * row past the best, weaker L2 only overfits more: stop the path there. */
            rises = !take && hl > prev_loss ? rises + 1 : 0;
            prev_loss = hl;
        }
        if (take) memcpy(best, x, N * sizeof(double));
    }
    if (st == GF_OK) {
        for (size_t i = 0; i < kd; i++) w[i] = (float)best[i];
        for (int k = 0; k < K; k++) b[k] = (float)best[kd + k];
        if (l2_used) *l2_used = best_l2;
        if (l2_tried) *l2_tried = gi;
    }
    free(p.wf); free(p.z); free(p.gz); free(x); free(best);
    return st;
}
