/* Half-precision cache storage (--cache-dtype f16; host/ops/ops_util.c, cl/util.cl):
 *  - the C reference itself, independently of the device: gf_f16_to_f32 of all 65,536 half patterns vs
 *    the binary16 formula (±(1024·[e>0] + m)·2^(max(e,1)-25), inf, NaN); gf_f32_to_f16 of ~200,000 floats
 *    (every exponent, ties, near-ties, the overflow and subnormal edges, ±0, inf, NaN) is the nearest half,
 *    ties to the even one, judged against its decoded neighbours in double;
 *  - gf_store_half on the device (vstore_half_rte) gives the reference's bits exactly, at an offset, without
 *    touching the halves around it;
 *  - gf_gather_rows_half (vload_half) of every half pattern, rows in a shuffled order, equals the reference
 *    bit for bit (NaN as NaN); a store then a gather is the reference round trip;
 *  - gf_gather_rows, the f32 cache's gather (a uint copy), returns every row bit for bit: denormal and
 *    NaN-payload float patterns, int max-pool routing, repeated and shuffled rows.
 * `test_half --small` is the same test (about 4 s under oclgrind; tests/cli_oclgrind_util.sh: gf_store_half,
 * gf_gather_rows_half and gf_gather_rows of cl/util.cl under oclgrind). */
#include <stdint.h>
#include "testutil.h"
#include "ops_util.h"

static float bits_f(uint32_t x) { float f; memcpy(&f, &x, sizeof f); return f; }
static uint32_t f_bits(float f) { uint32_t x; memcpy(&x, &f, sizeof x); return x; }

/* binary16 by its definition, in double */
static double half_value(uint16_t h) {
    int e = (h >> 10) & 31, m = h & 0x3ff;
    double s = (h & 0x8000) ? -1 : 1;
    if (e == 31) return m ? NAN : s * INFINITY;
    return s * ldexp((double)(m + (e ? 1024 : 0)), (e ? e : 1) - 25);
}

/* x rounds to h iff no other half is nearer, and at a tie h is even; beyond 65504 + 16 (half an ulp)
 * the nearest is inf. Neighbours by magnitude: the patterns h-1 and h+1 of the same sign. */
static int nearest_ok(float x, uint16_t h) {
    if (isnan(x)) return ((h >> 10) & 31) == 31 && (h & 0x3ff);
    if (!!signbit(x) != !!(h & 0x8000)) return 0;
    double ax = fabs((double)x);
    uint16_t mag = h & 0x7fff;
    if (mag == 0x7c00) return ax >= 65520.0;
    if (mag > 0x7c00) return 0;
    double v = half_value(mag), d = fabs(ax - v);
    double below = mag ? half_value((uint16_t)(mag - 1)) : -1;
    double above = mag < 0x7bff ? half_value((uint16_t)(mag + 1)) : 65536.0;   /* 65536: where inf begins */
    if (mag && ax - below < d) return 0;
    if (above - ax < d) return 0;
    if ((mag && ax - below == d) || above - ax == d) return (mag & 1) == 0;     /* a tie: the even one */
    return 1;
}

/* 6. gf_gather_rows: rows of 29 words (odd, not a multiple of a vector width) of bit patterns a float move
 * could change (denormals, NaN payloads, -0) and ints, gathered in a shuffled order with repeats; the words after
 * the last row untouched (the 2-D range is rounded up to whole work-groups along the row). */
static void gather_rows_u32(gf_ctx *ctx) {
    enum { ROW = 29, ROWS = 37, NB = 45, GUARD = 64 };
    uint32_t src[ROWS * ROW], got[NB * ROW + GUARD];
    int idx[NB];
    test_rng r;
    test_rng_seed(&r, 6);
    static const uint32_t special[] = {0x00000001u, 0x807fffffu, 0x7fc00001u, 0xffbfffffu, 0x7f800001u, 0x80000000u};
    for (size_t i = 0; i < ROWS * ROW; i++)
        src[i] = i % 5 == 0 ? special[(i / 5) % 6]
               : i % 5 == 1 ? (uint32_t)(int32_t)(i % 97) - 40u   /* ints, some negative */
               : (uint32_t)test_uniform(&r, 0, 4294967296.0);
    for (int i = 0; i < NB; i++) idx[i] = (i * 11 + 3) % ROWS;
    cl_mem dsrc, didx, ddst;
    REQUIRE_OK(ctx, gf_buf_create_from(ctx, sizeof src, src, "rows", &dsrc));
    REQUIRE_OK(ctx, gf_buf_create_from(ctx, sizeof idx, idx, "idx", &didx));
    for (size_t i = 0; i < NB * ROW + GUARD; i++) got[i] = 0xdeadbeefu;
    REQUIRE_OK(ctx, gf_buf_create_from(ctx, sizeof got, got, "gathered", &ddst));
    REQUIRE_OK(ctx, gf_gather_rows(ctx, dsrc, didx, ROW, NB, ddst));
    REQUIRE_OK(ctx, gf_buf_read(ctx, ddst, 0, sizeof got, got));
    int past = 0;
    for (size_t i = NB * ROW; i < NB * ROW + GUARD; i++) past += got[i] != 0xdeadbeefu;
    CHECK(past == 0, "gf_gather_rows: %d of the %d words after the last row written", past, (int)GUARD);
    int bad = 0;
    for (int i = 0; i < NB; i++)
        for (int j = 0; j < ROW; j++)
            if (got[i * ROW + j] != src[idx[i] * ROW + j] && bad++ < 5)
                fprintf(stderr, "  gather row %d (source row %d) word %d: %08x, want %08x\n", i, idx[i], j,
                        got[i * ROW + j], src[idx[i] * ROW + j]);
    CHECK(bad == 0, "gf_gather_rows: %d of %d words differ from the source rows", bad, NB * ROW);
    gf_buf_release(&dsrc); gf_buf_release(&didx); gf_buf_release(&ddst);
}

int main(void) {
    /* 1. decoding, all patterns */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float got = gf_f16_to_f32((uint16_t)h);
        double want = half_value((uint16_t)h);
        int ok = isnan(want) ? isnan(got) : (double)got == want && !!signbit(got) == !!(h & 0x8000);
        if (!ok && bad++ < 5) fprintf(stderr, "  f16 %04x -> %g, want %g\n", h, (double)got, want);
    }
    CHECK(bad == 0, "gf_f16_to_f32: %d of 65536 patterns wrong", bad);

    /* 2. encoding: a test set of floats */
    enum { NR = 160000 };
    size_t cap = NR + 65536 * 3 + 64, n = 0;
    float *xs = malloc(cap * sizeof *xs);
    if (!xs) return 1;
    test_rng r;
    test_rng_seed(&r, 18);
    static const uint32_t edges[] = {0x00000000u, 0x80000000u, 0x7f800000u, 0xff800000u, 0x7fc00000u, 0xffc00001u,
                                     0x477fe000u, 0x477fefffu, 0x477ff000u, 0x477ff001u, 0x47800000u, 0x7f7fffffu,
                                     0x38800000u, 0x387fffffu, 0x387fe000u, 0x387ff000u, 0x33000000u, 0x33000001u,
                                     0x32ffffffu, 0x33800000u, 0x33c00000u, 0x00000001u, 0x00800000u, 0x3f800000u,
                                     0x3f801000u, 0x3f803000u, 0x3f800fffu, 0x3f801001u, 0xbf801000u, 0xc77ff000u};
    for (size_t i = 0; i < sizeof edges / sizeof *edges; i++) xs[n++] = bits_f(edges[i]);
    /* every half, the midpoint to the next one (a tie) and a float just past it */
    for (uint32_t h = 0; h < 0x7c00; h++) {
        double v = half_value((uint16_t)h), next = h < 0x7bff ? half_value((uint16_t)(h + 1)) : 65536.0;
        float mid = (float)((v + next) / 2);       /* exact: halves have 11 significant bits */
        xs[n++] = (float)v * ((h & 1) ? -1.0f : 1.0f);
        xs[n++] = mid;
        xs[n++] = bits_f(f_bits(mid) + 1);
    }
    for (int i = 0; i < NR; i++) {   /* random bit patterns over every exponent around half's range */
        uint32_t e = 90 + (uint32_t)test_uniform(&r, 0, 60), m = (uint32_t)test_uniform(&r, 0, 8388608.0);
        uint32_t sgn = test_uniform(&r, 0, 1) < 0.5 ? 0x80000000u : 0;
        xs[n++] = bits_f(sgn | (e << 23) | m);
    }
    uint16_t *ref = malloc(n * sizeof *ref);
    if (!ref) return 1;
    bad = 0;
    for (size_t i = 0; i < n; i++) {
        ref[i] = gf_f32_to_f16(xs[i]);
        if (!nearest_ok(xs[i], ref[i]) && bad++ < 5)
            fprintf(stderr, "  f32 %08x (%.9g) -> f16 %04x (%g): not the nearest half, ties to even\n", f_bits(xs[i]),
                    (double)xs[i], ref[i], half_value(ref[i]));
    }
    CHECK(bad == 0, "gf_f32_to_f16: %d of %zu floats not rounded to nearest even", bad, n);

    /* 3. the device: vstore_half_rte at an offset, between two guard bands */
    gf_ctx *ctx = test_ctx();
    printf("device: %s\n", gf_ctx_device(ctx)->name);
    const size_t off = 37, tail = 11, nh = off + n + tail;
    cl_mem src = test_upload(ctx, xs, n), dst;
    REQUIRE_OK(ctx, gf_buf_create(ctx, nh * 2, "halves", &dst));
    uint16_t *got = malloc(nh * sizeof *got);
    if (!got) return 1;
    for (size_t i = 0; i < nh; i++) got[i] = 0xA5A5;
    REQUIRE_OK(ctx, gf_buf_write(ctx, dst, 0, nh * 2, got));
    REQUIRE_OK(ctx, gf_store_half(ctx, src, n, dst, off));
    REQUIRE_OK(ctx, gf_buf_read(ctx, dst, 0, nh * 2, got));
    bad = 0;
    int guard = 0;
    for (size_t i = 0; i < n; i++) {
        uint16_t g = got[off + i], w = ref[i];
        int nan_both = ((g & 0x7c00) == 0x7c00 && (g & 0x3ff)) && ((w & 0x7c00) == 0x7c00 && (w & 0x3ff));
        /* a float input below float's normal range may be flushed to zero by the device (allowed in
         * OpenCL 1.2): its half is ±0 either way, only the sign may differ */
        int denorm = (f_bits(xs[i]) & 0x7f800000u) == 0 && (g & 0x7fff) == 0 && (w & 0x7fff) == 0;
        if (g != w && !nan_both && !denorm && bad++ < 5)
            fprintf(stderr, "  device f32 %08x (%.9g) -> %04x, reference %04x\n", f_bits(xs[i]), (double)xs[i], g, w);
    }
    for (size_t i = 0; i < off; i++) guard += got[i] != 0xA5A5;
    for (size_t i = off + n; i < nh; i++) guard += got[i] != 0xA5A5;
    CHECK(bad == 0, "gf_store_half: %d of %zu values differ from the C reference", bad, n);
    CHECK(guard == 0, "gf_store_half wrote %d halves outside [off, off + n)", guard);

    /* 4. vload_half of every pattern, gathered as 256 rows of 256 in a shuffled order */
    enum { ROW = 256, ROWS = 256, NB = 200 };
    uint16_t *all = malloc(65536 * sizeof *all);
    float *out = malloc((size_t)NB * ROW * sizeof *out);
    int idx[NB];
    if (!all || !out) return 1;
    for (uint32_t h = 0; h < 65536; h++) all[h] = (uint16_t)h;
    for (int i = 0; i < NB; i++) idx[i] = (i * 97 + 13) % ROWS;
    cl_mem dall, didx, dout = test_alloc(ctx, (size_t)NB * ROW);
    REQUIRE_OK(ctx, gf_buf_create_from(ctx, 65536 * 2, all, "all halves", &dall));
    REQUIRE_OK(ctx, gf_buf_create_from(ctx, sizeof idx, idx, "rows", &didx));
    REQUIRE_OK(ctx, gf_gather_rows_half(ctx, dall, didx, ROW, NB, dout));
    test_download(ctx, dout, out, (size_t)NB * ROW);
    bad = 0;
    for (int i = 0; i < NB; i++)
        for (int j = 0; j < ROW; j++) {
            uint16_t h = (uint16_t)(idx[i] * ROW + j);
            float g = out[(size_t)i * ROW + j], w = gf_f16_to_f32(h);
            int ok = isnan(w) ? isnan(g) : f_bits(g) == f_bits(w);
            if (!ok && bad++ < 5) fprintf(stderr, "  device f16 %04x -> %.9g, reference %.9g\n", h, (double)g, (double)w);
        }
    CHECK(bad == 0, "gf_gather_rows_half: %d of %d values differ from the C reference", bad, NB * ROW);

    /* 5. round trip: the stored halves (from 3), gathered back, are the reference's f16 -> f32 */
    enum { RT = 1000 };
    int ridx[4] = {3, 0, 2, 1};
    float rt[4 * RT];
    cl_mem dr;
    REQUIRE_OK(ctx, gf_buf_create_from(ctx, sizeof ridx, ridx, "rows", &dr));
    cl_mem drt = test_alloc(ctx, 4 * RT);
    REQUIRE_OK(ctx, gf_gather_rows_half(ctx, dst, dr, RT, 4, drt));   /* rows of dst from index 0: guard + values */
    test_download(ctx, drt, rt, 4 * RT);
    bad = 0;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < RT; j++) {
            size_t p = (size_t)ridx[i] * RT + j;
            float w = p < off ? gf_f16_to_f32(0xA5A5) : gf_f16_to_f32(ref[p - off]);
            float g = rt[i * RT + j];
            int ok = isnan(w) ? isnan(g) : (f_bits(g) == f_bits(w) || (g == 0 && w == 0));
            if (!ok && bad++ < 5) fprintf(stderr, "  round trip %zu: %.9g, reference %.9g\n", p, (double)g, (double)w);
        }
    CHECK(bad == 0, "store then gather: %d of %d values differ from the C reference round trip", bad, 4 * RT);

    gather_rows_u32(ctx);

    gf_buf_release(&src); gf_buf_release(&dst); gf_buf_release(&dall); gf_buf_release(&didx);
    gf_buf_release(&dout); gf_buf_release(&dr); gf_buf_release(&drt);
    free(xs); free(ref); free(got); free(all); free(out);
    gf_ctx_free(ctx);
    return test_finish("test_half");
}
