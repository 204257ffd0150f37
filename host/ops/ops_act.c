/* Pointwise nonlinearities on the device; kernels in cl/act.cl. */
#include "ops_act.h"
#include "selftest.h"
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static gf_status act_check(gf_ctx *ctx, gf_act a, size_t n, const char *what) {
    if (a.kind != GF_ACT_RELU && a.kind != GF_ACT_LEAKY && a.kind != GF_ACT_RELU6)
        return gf_fail(ctx, GF_ERR_USAGE, "%s: unknown activation kind %d", what, (int)a.kind);
    if (n > UINT_MAX)
        return gf_fail(ctx, GF_ERR_USAGE, "%s: %zu elements exceed the 32-bit index range", what, n);
    return GF_OK;
}

gf_status gf_act_forward(gf_ctx *ctx, gf_act a, size_t n, cl_mem z, cl_mem y) {
    GF_TRY(act_check(ctx, a, n, "activation forward"));
    if (n == 0) return GF_OK;
    cl_kernel k;
    GF_TRY(gf_kernel(ctx, "act", NULL, "act_forward", &k));
    GF_TRY(gf_args(ctx, k, "act_forward", "mmuif", z, y, (unsigned)n, (int)a.kind, (double)a.slope));
    return gf_launch1(ctx, k, "act_forward", n);
}

static gf_status act_jac(gf_ctx *ctx, gf_act a, size_t n, cl_mem z, cl_mem in, cl_mem out,
                         const char *what) {
    GF_TRY(act_check(ctx, a, n, what));
    if (n == 0) return GF_OK;
    cl_kernel k;
    GF_TRY(gf_kernel(ctx, "act", NULL, "act_jacobian", &k));
    GF_TRY(gf_args(ctx, k, "act_jacobian", "mmmuif", z, in, out, (unsigned)n, (int)a.kind,
                   (double)a.slope));
    return gf_launch1(ctx, k, "act_jacobian", n);
}

gf_status gf_act_tangent(gf_ctx *ctx, gf_act a, size_t n, cl_mem z_pre, cl_mem t_in, cl_mem t_out) {
    return act_jac(ctx, a, n, z_pre, t_in, t_out, "activation tangent");
}

gf_status gf_act_backward(gf_ctx *ctx, gf_act a, size_t n, cl_mem z_pre, cl_mem g_out, cl_mem g_in) {
    return act_jac(ctx, a, n, z_pre, g_out, g_in, "activation backward");
}

int gf_act_parse(const char *name) {
    if (!name) return -1;
    if (!strcmp(name, "relu")) return GF_ACT_RELU;
    if (!strcmp(name, "relu6")) return GF_ACT_RELU6;
    if (!strcmp(name, "leaky") || !strcmp(name, "leakyrelu") || !strcmp(name, "leaky_relu"))
        return GF_ACT_LEAKY;
    return -1;
}

const char *gf_act_name(gf_act_kind k) {
    switch (k) {
    case GF_ACT_RELU: return "relu";
    case GF_ACT_LEAKY: return "leaky_relu";
    case GF_ACT_RELU6: return "relu6";
    }
    return "?";
}

/* ---- self-test: all three kinds on one vector, inputs kept off the kinks ---- */

static double ref_act(gf_act a, double z) {
    if (a.kind == GF_ACT_RELU) return z > 0 ? z : 0;
    if (a.kind == GF_ACT_LEAKY) return z > 0 ? z : a.slope * z;
    return z <= 0 ? 0 : (z >= 6 ? 6 : z);
}

static double ref_dact(gf_act a, double z) {
    if (a.kind == GF_ACT_RELU) return z > 0 ? 1 : 0;
    if (a.kind == GF_ACT_LEAKY) return z > 0 ? 1 : a.slope;
    return (z > 0 && z < 6) ? 1 : 0;
}

static gf_status selftest_act(gf_ctx *ctx, gf_check_list *l) {
    enum { N = 1003 };
    float *h = malloc(sizeof(float) * 3 * N);
    double *ref = malloc(sizeof(double) * 2 * N);
    if (!h || !ref) { free(h); free(ref); return gf_fail(ctx, GF_ERR_MEMORY, "act selftest: out of host memory"); }
    float *z = h, *t = h + N, *out = h + 2 * N;
    uint64_t s = 12345;
    for (int i = 0; i < N; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        double u = (double)(s >> 11) / 9007199254740992.0;
        double v = -8.0 + 16.0 * u;
        if (fabs(v) < 0.01 || fabs(v - 6) < 0.01) v += 0.05;  /* off the kinks */
        z[i] = (float)v;
        t[i] = (float)(1.0 - 2.0 * u * u);
    }
    cl_mem bz = NULL, bt = NULL, bo = NULL;
    gf_status st = gf_buf_create_from(ctx, sizeof(float) * N, z, "act selftest z", &bz);
    if (!st) st = gf_buf_create_from(ctx, sizeof(float) * N, t, "act selftest t", &bt);
    if (!st) st = gf_buf_create(ctx, sizeof(float) * N, "act selftest out", &bo);
    const gf_act kinds[3] = {{GF_ACT_RELU, 0}, {GF_ACT_LEAKY, 0.1f}, {GF_ACT_RELU6, 0}};
    double fa = 0, fr = 0, ta = 0, tr = 0, ba = 0, br = 0;
    for (int kk = 0; kk < 3 && !st; kk++) {
        gf_act a = kinds[kk];
        double ma, mr;
        for (int i = 0; i < N; i++) ref[i] = ref_act(a, z[i]);
        st = gf_act_forward(ctx, a, N, bz, bo);
        if (!st) st = gf_buf_read(ctx, bo, 0, sizeof(float) * N, out);
        if (st) break;
        gf_compare(out, ref, N, &ma, &mr);
        if (ma > fa) fa = ma;
        if (mr > fr) fr = mr;
        for (int i = 0; i < N; i++) ref[i] = t[i] * ref_dact(a, z[i]);
        st = gf_act_tangent(ctx, a, N, bz, bt, bo);
        if (!st) st = gf_buf_read(ctx, bo, 0, sizeof(float) * N, out);
        if (st) break;
        gf_compare(out, ref, N, &ma, &mr);
        if (ma > ta) ta = ma;
        if (mr > tr) tr = mr;
        st = gf_act_backward(ctx, a, N, bz, bt, bo);
        if (!st) st = gf_buf_read(ctx, bo, 0, sizeof(float) * N, out);
        if (st) break;
        gf_compare(out, ref, N, &ma, &mr);
        if (ma > ba) ba = ma;
        if (mr > br) br = mr;
    }
    gf_buf_release(&bz);
    gf_buf_release(&bt);
    gf_buf_release(&bo);
    free(h);
    free(ref);
    if (st) return st;
    gf_check_add(l, "act forward", fa, fr, 1e-6);
    gf_check_add(l, "act tangent", ta, tr, 1e-6);
    gf_check_add(l, "act backward", ba, br, 1e-6);
    return GF_OK;
}

void gf_selftest_act(gf_ctx *ctx, gf_check_list *l) {
    /* A failure to run shows as a failed row; the context keeps the message. */
    if (selftest_act(ctx, l) != GF_OK) gf_check_add(l, "act (could not run)", INFINITY, INFINITY, 0);
}
