/* Product and channel concat on the device; kernels in cl/merge.cl. */
#include "ops_merge.h"
#include "selftest.h"
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static gf_status mul_check(gf_ctx *ctx, size_t planes, size_t HW, const char *what) {
    if (planes == 0 || HW == 0 || planes > UINT_MAX / HW)
        return gf_fail(ctx, GF_ERR_USAGE, "%s: bad size %zu planes x %zu", what, planes, HW);
    return GF_OK;
}

gf_status gf_mul_forward(gf_ctx *ctx, size_t planes, size_t HW, int gate, cl_mem x, cl_mem s, cl_mem y) {
    GF_TRY(mul_check(ctx, planes, HW, "multiply forward"));
    cl_kernel k;
    GF_TRY(gf_kernel(ctx, "merge", NULL, "mul_forward", &k));
    GF_TRY(gf_args(ctx, k, "mul_forward", "mmmuuu", x, s, y, (unsigned)(planes * HW), (unsigned)HW,
                   (unsigned)(gate != 0)));
    return gf_launch1(ctx, k, "mul_forward", planes * HW);
}

gf_status gf_mul_tangent(gf_ctx *ctx, size_t planes, size_t HW, int gate, cl_mem x, cl_mem s, cl_mem tx, cl_mem ts,
                         cl_mem t) {
    GF_TRY(mul_check(ctx, planes, HW, "multiply tangent"));
    if (!tx && !ts) return gf_fail(ctx, GF_ERR_INTERNAL, "multiply tangent: both input tangents are 0");
    cl_kernel k;
    GF_TRY(gf_kernel(ctx, "merge", NULL, "mul_tangent", &k));
    /* an unused argument still needs a valid buffer */
    GF_TRY(gf_args(ctx, k, "mul_tangent", "mmmmmuuuuu", x, s, tx ? tx : x, ts ? ts : s, t, (unsigned)(planes * HW),
                   (unsigned)HW, (unsigned)(gate != 0), (unsigned)(tx != NULL), (unsigned)(ts != NULL)));
    return gf_launch1(ctx, k, "mul_tangent", planes * HW);
}

gf_status gf_mul_backward(gf_ctx *ctx, size_t planes, size_t HW, int gate, cl_mem x, cl_mem s, cl_mem g, cl_mem gx,
                          cl_mem gs) {
    GF_TRY(mul_check(ctx, planes, HW, "multiply backward"));
    cl_kernel k;
    if (gx || (gs && !gate)) {
        GF_TRY(gf_kernel(ctx, "merge", NULL, "mul_backward", &k));
        GF_TRY(gf_args(ctx, k, "mul_backward", "mmmmmuuuuu", x, s, g, gx ? gx : g, gs ? gs : g,
                       (unsigned)(planes * HW), (unsigned)HW, (unsigned)(gate != 0), (unsigned)(gx != NULL),
                       (unsigned)(gs != NULL)));
        GF_TRY(gf_launch1(ctx, k, "mul_backward", planes * HW));
    }
    if (!gs || !gate) return GF_OK;
    if (HW <= 64) {
        GF_TRY(gf_kernel(ctx, "merge", NULL, "mul_gate_grad_small", &k));
        GF_TRY(gf_args(ctx, k, "mul_gate_grad_small", "mmmuu", x, g, gs, (unsigned)planes, (unsigned)HW));
        return gf_launch1(ctx, k, "mul_gate_grad_small", planes);
    }
    GF_TRY(gf_kernel(ctx, "merge", NULL, "mul_gate_grad", &k));
    size_t cap = 1, L;
    while (cap < HW && cap < 256) cap *= 2;
    GF_TRY(gf_pow2_local(ctx, k, cap, 0, &L));
    if ((HW + L - 1) / L > ctx->item_budget)
        return gf_fail(ctx, GF_ERR_USAGE, "multiply backward: a gate over %zu values per plane needs %zu loop steps "
                       "per work item with this device's %zu-lane groups (item budget %u)", HW, (HW + L - 1) / L, L,
                       ctx->item_budget);
    GF_TRY(gf_args(ctx, k, "mul_gate_grad", "mmmuuL", x, g, gs, (unsigned)planes, (unsigned)HW, L));
    size_t global = planes * L;
    return gf_launch(ctx, k, "mul_gate_grad", 1, &global, &L);
}

static gf_status concat_slice(gf_ctx *ctx, size_t N, size_t HW, int C, cl_mem src, int src_C, int src_off, cl_mem dst,
                              int dst_C, int dst_off, int mode) {
    size_t total = N * (size_t)C * HW;
    if (!total) return GF_OK;
    if (total > UINT_MAX || N * (size_t)(src_C > dst_C ? src_C : dst_C) * HW > UINT_MAX)
        return gf_fail(ctx, GF_ERR_USAGE, "concat: %zu x %d x %zu values exceed the 32-bit index range", N, C, HW);
    cl_kernel k;
    GF_TRY(gf_kernel(ctx, "merge", NULL, "concat_slice", &k));
    GF_TRY(gf_args(ctx, k, "concat_slice", "mmuuuuuuuu", src ? src : dst, dst, (unsigned)total, (unsigned)C,
                   (unsigned)HW, (unsigned)src_C, (unsigned)src_off, (unsigned)dst_C, (unsigned)dst_off,
                   (unsigned)mode));
    return gf_launch1(ctx, k, "concat_slice", total);
}

gf_status gf_concat_forward(gf_ctx *ctx, size_t N, size_t HW, int n, const int *C, const cl_mem *x, cl_mem y) {
    if (n < 1 || n > GF_CONCAT_MAX_INPUTS)
        return gf_fail(ctx, GF_ERR_USAGE, "concat: %d inputs (1..%d)", n, GF_CONCAT_MAX_INPUTS);
    int total = 0;
    for (int k = 0; k < n; k++) {
        if (C[k] < 1 || C[k] > INT_MAX - total) return gf_fail(ctx, GF_ERR_USAGE, "concat: input %d has %d channels", k, C[k]);
        total += C[k];
    }
    for (int k = 0, off = 0; k < n; off += C[k], k++)
        GF_TRY(concat_slice(ctx, N, HW, C[k], x[k], C[k], 0, y, total, off, x[k] ? 0 : 2));
    return GF_OK;
}

gf_status gf_concat_backward(gf_ctx *ctx, size_t N, size_t HW, int C_total, int off, int Ck, cl_mem g, cl_mem gk,
                             int accumulate) {
    if (Ck < 1 || off < 0 || off > C_total - Ck)
        return gf_fail(ctx, GF_ERR_USAGE, "concat backward: channels %d..%d outside 0..%d", off, off + Ck, C_total);
    return concat_slice(ctx, N, HW, Ck, g, C_total, off, gk, Ck, 0, accumulate ? 1 : 0);
}

gf_status gf_slice_forward(gf_ctx *ctx, size_t N, size_t HW, int C_in, int off, int Ck, cl_mem x, cl_mem y) {
    if (Ck < 1 || off < 0 || off > C_in - Ck)
        return gf_fail(ctx, GF_ERR_USAGE, "channel slice: channels %d..%d outside 0..%d", off, off + Ck, C_in);
    return concat_slice(ctx, N, HW, Ck, x, C_in, off, y, Ck, 0, 0);
}

gf_status gf_slice_backward(gf_ctx *ctx, size_t N, size_t HW, int C_in, int off, int Ck, cl_mem g, cl_mem gx,
                            int accumulate) {
    if (Ck < 1 || off < 0 || off > C_in - Ck)
        return gf_fail(ctx, GF_ERR_USAGE, "channel slice backward: channels %d..%d outside 0..%d", off, off + Ck, C_in);
    if (!accumulate && Ck < C_in) {
        if (N * (size_t)C_in * HW > UINT_MAX)
            return gf_fail(ctx, GF_ERR_USAGE, "channel slice: %zu x %d x %zu values exceed the 32-bit index range", N,
                           C_in, HW);
        if (off > 0) GF_TRY(concat_slice(ctx, N, HW, off, NULL, 0, 0, gx, C_in, 0, 2));
        if (off + Ck < C_in) GF_TRY(concat_slice(ctx, N, HW, C_in - off - Ck, NULL, 0, 0, gx, C_in, off + Ck, 2));
    }
    return concat_slice(ctx, N, HW, Ck, g, Ck, 0, gx, C_in, off, accumulate ? 1 : 0);
}

static gf_status shuffle(gf_ctx *ctx, size_t N, int C, size_t HW, int G, cl_mem src, cl_mem dst, int inverse,
                         int accumulate) {
    if (N == 0 || HW == 0 || C < 1 || G < 1 || C % G)
        return gf_fail(ctx, GF_ERR_USAGE, "channel shuffle: %d channels in %d groups (N %zu, HW %zu)", C, G, N, HW);
    if (N * (size_t)C > UINT_MAX / HW)
        return gf_fail(ctx, GF_ERR_USAGE, "channel shuffle: %zu x %d x %zu values exceed the 32-bit index range", N, C,
                       HW);
    if (src == dst) return gf_fail(ctx, GF_ERR_INTERNAL, "channel shuffle: output aliases the input");
    size_t total = N * (size_t)C * HW;
    cl_kernel k;
    GF_TRY(gf_kernel(ctx, "merge", NULL, "channel_shuffle", &k));
    GF_TRY(gf_args(ctx, k, "channel_shuffle", "mmuuuuuu", src, dst, (unsigned)total, (unsigned)C, (unsigned)HW,
                   (unsigned)G, (unsigned)(inverse != 0), (unsigned)(accumulate != 0)));
    return gf_launch1(ctx, k, "channel_shuffle", total);
}

gf_status gf_shuffle_forward(gf_ctx *ctx, size_t N, int C, size_t HW, int G, cl_mem x, cl_mem y) {
    return shuffle(ctx, N, C, HW, G, x, y, 0, 0);
}

gf_status gf_shuffle_backward(gf_ctx *ctx, size_t N, int C, size_t HW, int G, cl_mem g, cl_mem gx, int accumulate) {
    return shuffle(ctx, N, C, HW, G, g, gx, 1, accumulate);
}

/* ---- self-test: gated and elementwise product (both inputs moving), a three-way concat ---- */

static void fill(float *v, size_t n, uint64_t *s) {
    for (size_t i = 0; i < n; i++) {
        *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
        v[i] = (float)((double)(*s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    }
}

static gf_status selftest_merge(gf_ctx *ctx, gf_check_list *l) {
    enum { N = 3, C = 5, HW = 81, T = N * C * HW, P = N * C };
    size_t fl = 7 * (size_t)T + 2 * (size_t)P;
    float *h = malloc(fl * sizeof(float));
    double *ref = malloc((size_t)T * sizeof(double));
    cl_mem b[8] = {0};
    if (!h || !ref) { free(h); free(ref); return gf_fail(ctx, GF_ERR_MEMORY, "merge selftest: out of host memory"); }
    float *x = h, *s = x + T, *tx = s + T, *ts = tx + T, *g = ts + T, *sg = g + T, *tsg = sg + P, *out = tsg + P,
          *outg = out + T;   /* outg: the gradient of s (T or P values) */
    uint64_t seed = 777;
    fill(h, 5 * (size_t)T + 2 * (size_t)P, &seed);
    gf_status st = GF_OK;
    const float *host[6] = {x, s, tx, ts, g, sg};
    for (int i = 0; i < 6 && !st; i++) st = gf_buf_create_from(ctx, (size_t)T * 4, host[i], "merge selftest", &b[i]);
    if (!st) st = gf_buf_create_from(ctx, (size_t)P * 4, tsg, "merge selftest", &b[6]);
    if (!st) st = gf_buf_create(ctx, (size_t)T * 4, "merge selftest out", &b[7]);
    for (int gate = 0; gate < 2 && !st; gate++) {
        cl_mem bs = gate ? b[5] : b[1], bts = gate ? b[6] : b[3];
        const float *hs = gate ? sg : s, *hts = gate ? tsg : ts;
        double fa, fr, ta, tr, ga, gr, sa = 0, sr = 0;
        for (int i = 0; i < T; i++) ref[i] = (double)x[i] * hs[gate ? i / HW : i];
        st = gf_mul_forward(ctx, P, HW, gate, b[0], bs, b[7]);
        if (!st) st = gf_buf_read(ctx, b[7], 0, (size_t)T * 4, out);
        if (st) break;
        gf_compare(out, ref, T, &fa, &fr);
        for (int i = 0; i < T; i++) {
            int si = gate ? i / HW : i;
            ref[i] = (double)tx[i] * hs[si] + (double)x[i] * hts[si];
        }
        st = gf_mul_tangent(ctx, P, HW, gate, b[0], bs, b[2], bts, b[7]);
        if (!st) st = gf_buf_read(ctx, b[7], 0, (size_t)T * 4, out);
        if (st) break;
        gf_compare(out, ref, T, &ta, &tr);
        for (int i = 0; i < T; i++) ref[i] = (double)g[i] * hs[gate ? i / HW : i];
        cl_mem bgs = gate ? b[6] : b[3];   /* overwritten: the tangent inputs are no longer needed */
        st = gf_mul_backward(ctx, P, HW, gate, b[0], bs, b[4], b[7], bgs);
        if (!st) st = gf_buf_read(ctx, b[7], 0, (size_t)T * 4, out);
        if (!st) st = gf_buf_read(ctx, bgs, 0, (size_t)(gate ? P : T) * 4, outg);
        if (st) break;
        gf_compare(out, ref, T, &ga, &gr);
        if (gate) {
            for (int p = 0; p < P; p++) {
                double acc = 0;
                for (int j = 0; j < HW; j++) acc += (double)g[p * HW + j] * x[p * HW + j];
                ref[p] = acc;
            }
            gf_compare(outg, ref, P, &sa, &sr);
        } else {
            for (int i = 0; i < T; i++) ref[i] = (double)g[i] * x[i];
            gf_compare(outg, ref, T, &sa, &sr);
        }
        const char *mode = gate ? "gate" : "elementwise";
        char name[64];
        snprintf(name, sizeof name, "mul %s forward", mode);
        gf_check_add(l, name, fa, fr, 1e-6);
        snprintf(name, sizeof name, "mul %s tangent", mode);
        gf_check_add(l, name, ta, tr, 1e-6);
        snprintf(name, sizeof name, "mul %s backward", mode);
        gf_check_add(l, name, ga > sa ? ga : sa, gr > sr ? gr : sr, 1e-5);
    }
    if (!st) {   /* concat of x [N, 2, HW], s [N, 2, HW] (their leading values) and a zero slice: [N, C, HW] */
        const int Cs[3] = {2, 2, 1};
        cl_mem in[3] = {b[0], b[1], NULL};
        double fa, fr, ba, br;
        st = gf_concat_forward(ctx, N, HW, 3, Cs, in, b[7]);
        if (!st) st = gf_buf_read(ctx, b[7], 0, (size_t)T * 4, out);
        if (!st) {
            for (int n = 0; n < N; n++)
                for (int c = 0; c < C; c++)
                    for (int j = 0; j < HW; j++)
                        ref[(n * C + c) * HW + j] = c < 2 ? x[(n * 2 + c) * HW + j]
                                                  : c < 4 ? s[(n * 2 + c - 2) * HW + j] : 0.0;
            gf_compare(out, ref, T, &fa, &fr);
            gf_check_add(l, "concat forward/tangent", fa, fr, 0);
            /* backward: the middle input's slice of a [N, C, HW] gradient (g) */
            st = gf_concat_backward(ctx, N, HW, C, 2, 2, b[4], b[7], 0);
        }
        if (!st) st = gf_buf_read(ctx, b[7], 0, (size_t)N * 2 * HW * 4, out);
        if (!st) {
            for (int n = 0; n < N; n++)
                for (int c = 0; c < 2; c++)
                    for (int j = 0; j < HW; j++) ref[(n * 2 + c) * HW + j] = g[(n * C + 2 + c) * HW + j];
            gf_compare(out, ref, (size_t)N * 2 * HW, &ba, &br);
            gf_check_add(l, "concat backward", ba, br, 0);
        }
    }
    if (!st) {   /* channel shuffle of x viewed as [1, 15, 81] in 3 groups, its inverse; a slice of 2 channels */
        double fa, fr, ba, br, sa, sr;
        st = gf_shuffle_forward(ctx, 1, N * C, HW, 3, b[0], b[7]);
        if (!st) st = gf_buf_read(ctx, b[7], 0, (size_t)T * 4, out);
        if (!st) {
            for (int c = 0; c < N * C; c++)
                for (int j = 0; j < HW; j++) ref[c * HW + j] = x[((c % 3) * (N * C / 3) + c / 3) * HW + j];
            gf_compare(out, ref, T, &fa, &fr);
            gf_check_add(l, "channel shuffle forward/tangent", fa, fr, 0);
            st = gf_shuffle_backward(ctx, 1, N * C, HW, 3, b[7], b[4], 0);   /* the inverse gives x back */
        }
        if (!st) st = gf_buf_read(ctx, b[4], 0, (size_t)T * 4, out);
        if (!st) {
            for (int i = 0; i < T; i++) ref[i] = x[i];
            gf_compare(out, ref, T, &ba, &br);
            gf_check_add(l, "channel shuffle backward", ba, br, 0);
            st = gf_slice_forward(ctx, N, HW, C, 1, 2, b[0], b[7]);
        }
        if (!st) st = gf_buf_read(ctx, b[7], 0, (size_t)N * 2 * HW * 4, out);
        if (!st) {
            for (int n = 0; n < N; n++)
                for (int c = 0; c < 2; c++)
                    for (int j = 0; j < HW; j++) ref[(n * 2 + c) * HW + j] = x[(n * C + 1 + c) * HW + j];
            gf_compare(out, ref, (size_t)N * 2 * HW, &sa, &sr);
            gf_check_add(l, "channel slice forward/tangent", sa, sr, 0);
        }
    }
    for (int i = 0; i < 8; i++) gf_buf_release(&b[i]);
    free(h);
    free(ref);
    return st;
}

void gf_selftest_merge(gf_ctx *ctx, gf_check_list *l) {
    if (selftest_merge(ctx, l) != GF_OK) gf_check_add(l, "merge (could not run)", INFINITY, INFINITY, 0);
}
