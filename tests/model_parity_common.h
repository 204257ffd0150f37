/* Shared by tests/test_model_parity_*.c: run tests/model_parity.py CASE into a
 * temp dir (Debian /usr/bin/python3 with torch/onnx), load the converted model,
 * run the executor on the device, time it, and hand back outputs. */
#ifndef GF_MODEL_PARITY_COMMON_H
#define GF_MODEL_PARITY_COMMON_H
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "gradfeat_model.h"
#include "testutil.h"

typedef struct {
    char dir[256];
    int n, c, h, w, k;
    float *x, *ref;          /* ref NULL when the case has none */
} parity_case;

static inline float *parity_read(const char *dir, const char *name, size_t count) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    float *v = malloc(count * sizeof *v);
    size_t got = fread(v, sizeof *v, count, f);
    fclose(f);
    if (got != count) { free(v); return NULL; }
    return v;
}

/* Exits non-zero (never skips) when the helper cannot produce the case. */
static inline void parity_prepare(const char *cse, int n, parity_case *pc) {
    memset(pc, 0, sizeof *pc);
    const char *src = getenv("GF_SRC");
    snprintf(pc->dir, sizeof pc->dir, "/tmp/gf_parity_%s_%d", cse, (int)getpid());
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/model_parity.py %s %s %d", src ? src : ".", cse, pc->dir, n);
    if (system(cmd) != 0) { fprintf(stderr, "FATAL: '%s' failed\n", cmd); exit(1); }
    char p[512];
    snprintf(p, sizeof p, "%s/meta.txt", pc->dir);
    FILE *f = fopen(p, "r");
    if (!f || fscanf(f, "%d %d %d %d %d", &pc->n, &pc->c, &pc->h, &pc->w, &pc->k) != 5) {
        fprintf(stderr, "FATAL: bad %s\n", p);
        exit(1);
    }
    fclose(f);
    pc->x = parity_read(pc->dir, "x.f32", (size_t)pc->n * pc->c * pc->h * pc->w);
    pc->ref = parity_read(pc->dir, "ref.f32", (size_t)pc->n * pc->k);
    if (!pc->x) { fprintf(stderr, "FATAL: no inputs in %s\n", pc->dir); exit(1); }
}

static inline void parity_cleanup(parity_case *pc) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", pc->dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", pc->dir);
    free(pc->x);
    free(pc->ref);
}

/* Loads dir/model.safetensors, runs all n images, reads `node` (NULL = first
 * output) into out (n x size floats). Prints the forward throughput. */
static inline gf_model *parity_run(gf_ctx *ctx, parity_case *pc, const char *node, float *out, size_t size, const char *label) {
    char p[512];
    snprintf(p, sizeof p, "%s/model.safetensors", pc->dir);
    gf_model *m = NULL;
    REQUIRE_OK(ctx, gf_model_load(ctx, p, &m));
    gf_exec *e = NULL;
    REQUIRE_OK(ctx, gf_exec_create(ctx, m, pc->n, &e));
    REQUIRE_OK(ctx, gf_exec_run(e, pc->x, pc->n));  /* first run: kernel builds */
    REQUIRE_OK(ctx, gf_ctx_finish(ctx));
    double t0 = gf_now();
    REQUIRE_OK(ctx, gf_exec_run(e, pc->x, pc->n));
    REQUIRE_OK(ctx, gf_ctx_finish(ctx));
    double dt = gf_now() - t0;
    printf("%s: forward of %d images in %.3f s = %.2f images/s on %s\n", label, pc->n, dt, pc->n / dt,
           gf_ctx_device(ctx)->name);
    REQUIRE_OK(ctx, gf_exec_read(e, node ? node : gf_model_output_name(m, 0), out, (size_t)pc->n * size));
    gf_exec_free(e);
    return m;
}

/* max |got - ref| <= rel * max |ref| over all outputs */
static inline void parity_check_logits(const char *label, const float *got, const float *ref, size_t n, double rel) {
    double md = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        if (!(d <= md)) md = d;
        if (fabs(ref[i]) > mx) mx = fabs(ref[i]);
    }
    printf("%s: max |diff| %.3g, max |logit| %.3g, ratio %.3g (limit %g)\n", label, md, mx, mx > 0 ? md / mx : md, rel);
    CHECK(mx > 0 && md <= rel * mx, "%s: max abs diff %.3g > %g x max |logit| %.3g", label, md, rel, mx);
}
#endif
