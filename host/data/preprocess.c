/* Preprocessing: 8-bit HWC image -> float CHW network input.
 * Steps: pick a source region (whole image, or the random resized crop), turn
 * it into float with the wanted channels, resample it (separable weight
 * tables: antialiased triangle filter, 2-tap bilinear, nearest), centre-crop
 * or pad, optionally pad-and-random-crop (shift) and flip, then
 * out = (v*scale + offset - mean) / std.
 * Not stb_image_resize: its triangle filter (0.97, Debian's libstb) aborts on
 * an assertion for common shrink ratios such as 300 -> 224 and 29 -> 20. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "data_internal.h"

void gf_preprocess_init(gf_preprocess *pp, int width, int height, int channels) {
    memset(pp, 0, sizeof *pp);
    pp->width = width;
    pp->height = height;
    pp->channels = channels;
    pp->resize = GF_RESIZE_STRETCH;
    pp->interp = GF_INTERP_BILINEAR;
    pp->scale = 1.0f / 255.0f;
    pp->offset = 0.0f;
    for (int c = 0; c < 3; c++) { pp->mean[c] = 0.0f; pp->std[c] = 1.0f; }
    pp->area_min = 0.08f; pp->area_max = 1.0f;
    pp->ratio_min = 3.0f / 4.0f; pp->ratio_max = 4.0f / 3.0f;
}

void gf_preprocess_imagenet(gf_preprocess *pp) {
    static const float m[3] = {0.485f, 0.456f, 0.406f}, s[3] = {0.229f, 0.224f, 0.225f};
    pp->scale = 1.0f / 255.0f;
    pp->offset = 0.0f;
    for (int c = 0; c < 3; c++) { pp->mean[c] = m[c]; pp->std[c] = s[c]; }
}

size_t gf_preprocess_numel(const gf_preprocess *pp) {
    return (size_t)pp->channels * (size_t)pp->height * (size_t)pp->width;
}

gf_status gf_preprocess_check(const gf_preprocess *pp, char *err, size_t err_size) {
    if (!pp) return gf_fail_msg(err, err_size, GF_ERR_USAGE, "preprocess: no settings given");
    if (pp->width < 1 || pp->height < 1 || pp->width > 16384 || pp->height > 16384)
        return gf_fail_msg(err, err_size, GF_ERR_USAGE, "preprocess: output size %dx%d out of range 1..16384",
                        pp->width, pp->height);
    if (pp->channels != 1 && pp->channels != 3)
        return gf_fail_msg(err, err_size, GF_ERR_USAGE, "preprocess: channels must be 1 or 3, not %d", pp->channels);
    if (pp->resize != GF_RESIZE_STRETCH && pp->resize != GF_RESIZE_SHORTER_CROP)
        return gf_fail_msg(err, err_size, GF_ERR_USAGE, "preprocess: unknown resize mode %d", (int)pp->resize);
    if ((int)pp->interp < 0 || pp->interp > GF_INTERP_NEAREST)
        return gf_fail_msg(err, err_size, GF_ERR_USAGE, "preprocess: unknown interpolation %d", (int)pp->interp);
    if (pp->resize_shorter < 0 || pp->resize_shorter > 65536)
        return gf_fail_msg(err, err_size, GF_ERR_USAGE, "preprocess: resize_shorter %d out of range", pp->resize_shorter);
    if (!isfinite(pp->scale) || !isfinite(pp->offset))
        return gf_fail_msg(err, err_size, GF_ERR_USAGE, "preprocess: scale/offset not finite");
    for (int c = 0; c < pp->channels; c++)
        if (!isfinite(pp->mean[c]) || !isfinite(pp->std[c]) || pp->std[c] == 0.0f)
            return gf_fail_msg(err, err_size, GF_ERR_USAGE, "preprocess: mean/std of channel %d invalid (std %g)",
                            c, (double)pp->std[c]);
    if (pp->pad_crop < 0 || pp->pad_crop > 16384)
        return gf_fail_msg(err, err_size, GF_ERR_USAGE, "preprocess: pad_crop %d out of range 0..16384", pp->pad_crop);
    if (pp->random_resized_crop &&
        !(pp->area_min > 0 && pp->area_min <= pp->area_max && pp->area_max <= 1 &&
          pp->ratio_min > 0 && pp->ratio_min <= pp->ratio_max && isfinite(pp->ratio_max)))
        return gf_fail_msg(err, err_size, GF_ERR_USAGE,
                        "preprocess: random crop needs 0 < area_min <= area_max <= 1 and 0 < ratio_min <= ratio_max");
    return GF_OK;
}

/* ---- deterministic RNG (splitmix64) ---- */
uint64_t gfd_mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}
double gfd_uniform(uint64_t *s) {
    *s += 0x9E3779B97F4A7C15ULL;
    uint64_t z = *s;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}
/* Integer in [lo, hi]. */
static int rand_int(uint64_t *s, int lo, int hi) {
    int v = lo + (int)floor(gfd_uniform(s) * (double)(hi - lo + 1));
    return v > hi ? hi : v;
}

/* torchvision RandomResizedCrop.get_params with our RNG. */
void gfd_random_crop(const gf_preprocess *pp, int sw, int sh, uint64_t *rng, int *x0, int *y0, int *cw, int *ch) {
    double area = (double)sw * sh;
    double lr0 = log(pp->ratio_min), lr1 = log(pp->ratio_max);
    for (int t = 0; t < 10; t++) {
        double target = area * (pp->area_min + (pp->area_max - pp->area_min) * gfd_uniform(rng));
        double ar = exp(lr0 + (lr1 - lr0) * gfd_uniform(rng));
        int w = (int)lround(sqrt(target * ar)), h = (int)lround(sqrt(target / ar));
        if (w > 0 && h > 0 && w <= sw && h <= sh) {
            *y0 = rand_int(rng, 0, sh - h);
            *x0 = rand_int(rng, 0, sw - w);
            *cw = w; *ch = h;
            return;
        }
    }
    double in_ratio = (double)sw / sh;
    int w = sw, h = sh;
    if (in_ratio < pp->ratio_min) { w = sw; h = (int)lround(w / pp->ratio_min); }
    else if (in_ratio > pp->ratio_max) { h = sh; w = (int)lround(h * pp->ratio_max); }
    if (w < 1) w = 1;
    if (h < 1) h = 1;
    if (w > sw) w = sw;
    if (h > sh) h = sh;
    *cw = w; *ch = h;
    *x0 = (sw - w) / 2;
    *y0 = (sh - h) / 2;
}

/* Region of the source -> float interleaved with C channels (RGB order). */
/* Region of the source -> float interleaved with C channels (RGB order).
 * T is the source element type (uint8_t or float). */
#define GFD_TO_FLOAT(NAME, T)                                                                        \
    static void NAME(const T *src, int sw, int sc, int x0, int y0, int cw, int ch, int C, float *f) { \
        for (int y = 0; y < ch; y++) {                                                               \
            const T *row = src + ((size_t)(y0 + y) * sw + x0) * sc;                                  \
            float *o = f + (size_t)y * cw * C;                                                       \
            for (int x = 0; x < cw; x++, row += sc, o += C) {                                        \
                if (C == 3) {                                                                        \
                    if (sc >= 3) { o[0] = row[0]; o[1] = row[1]; o[2] = row[2]; }                    \
                    else { o[0] = o[1] = o[2] = row[0]; }                                            \
                } else {                                                                             \
                    if (sc >= 3) o[0] = (float)(0.299 * row[0] + 0.587 * row[1] + 0.114 * row[2]);  \
                    else o[0] = row[0];                                                              \
                }                                                                                    \
            }                                                                                        \
        }                                                                                            \
    }
GFD_TO_FLOAT(to_float_u8, uint8_t)
GFD_TO_FLOAT(to_float_f32, float)

/* Reusable float buffers: the loader keeps one per thread so that big
 * images do not cost fresh (page-faulting) allocations every time. */
void gfd_ws_free(gfd_ws *ws) {
    for (int i = 0; i < 3; i++) { free(ws->buf[i]); ws->buf[i] = NULL; ws->cap[i] = 0; }
}

static float *ws_get(gfd_ws *ws, int i, size_t n) {
    if (ws->cap[i] < n) {
        free(ws->buf[i]);
        ws->buf[i] = malloc(sizeof(float) * n);
        ws->cap[i] = ws->buf[i] ? n : 0;
    }
    return ws->buf[i];
}

/* One axis of a separable resampler, for the outputs [o0, o1) only (a crop
 * reads a window of a possibly huge resized axis): output i reads n[i-o0]
 * inputs from first[i-o0] with weights w[(i-o0)*maxn ...] (clamped edges,
 * weights sum to 1). */
typedef struct axis { int *first, *n; float *w; int maxn; } axis;

static double tri(double x) { x = fabs(x); return x < 1.0 ? 1.0 - x : 0.0; }

static int axis_make(axis *a, gf_interp mode, int in, int out, int o0, int o1) {
    double s = (double)in / out, sup = (mode == GF_INTERP_BILINEAR && s > 1.0) ? s : 1.0;
    a->maxn = mode == GF_INTERP_BILINEAR ? (int)ceil(2 * sup) + 3 : 2;
    if (a->maxn > in) a->maxn = in;
    if (a->maxn < 1) a->maxn = 1;
    const size_t cnt = (size_t)(o1 - o0);
    a->first = malloc(sizeof(int) * cnt);
    a->n = malloc(sizeof(int) * cnt);
    a->w = calloc(cnt * a->maxn, sizeof(float));
    if (!a->first || !a->n || !a->w) return 0;
    for (int i = o0; i < o1; i++) {
        const int ia = i - o0;
        float *w = a->w + (size_t)ia * a->maxn;
        if (mode == GF_INTERP_BILINEAR) {
            /* triangle filter stretched by the shrink factor (antialiasing), PIL style */
            double c = (i + 0.5) * s, tot = 0;
            int lo = (int)floor(c - sup) - 1, hi = (int)ceil(c + sup) + 1;
            int f0 = lo < 0 ? 0 : lo > in - 1 ? in - 1 : lo;
            int f1 = hi < 0 ? 0 : hi > in - 1 ? in - 1 : hi;
            if (f1 - f0 + 1 > a->maxn) {   /* keep only taps with weight */
                int l2 = (int)floor(c - sup), h2 = (int)ceil(c + sup);
                f0 = l2 < 0 ? 0 : l2 > in - 1 ? in - 1 : l2;
                f1 = h2 < 0 ? 0 : h2 > in - 1 ? in - 1 : h2;
                if (f1 - f0 + 1 > a->maxn) f1 = f0 + a->maxn - 1;
            }
            double acc[64 + 8];
            double *ac = (f1 - f0 + 1) <= 72 ? acc : malloc(sizeof(double) * (size_t)(f1 - f0 + 1));
            if (!ac) return 0;
            for (int k = 0; k <= f1 - f0; k++) ac[k] = 0;
            for (int j = lo; j <= hi; j++) {
                double wt = tri((c - (j + 0.5)) / sup);
                if (wt == 0.0) continue;
                int jj = j < 0 ? 0 : j > in - 1 ? in - 1 : j;
                if (jj < f0) jj = f0;
                if (jj > f1) jj = f1;
                ac[jj - f0] += wt;
                tot += wt;
            }
            int k0 = 0, k1 = f1 - f0;   /* trim zero taps (enlarging needs 2 of 5) */
            while (k0 < k1 && ac[k0] == 0.0) k0++;
            while (k1 > k0 && ac[k1] == 0.0) k1--;
            a->first[ia] = f0 + k0;
            a->n[ia] = k1 - k0 + 1;
            for (int k = k0; k <= k1; k++) w[k - k0] = (float)(ac[k] / tot);
            if (ac != acc) free(ac);
            continue;
        }
        double x;
        if (mode == GF_INTERP_NEAREST) {
            int j = (int)floor((i + 0.5) * s);
            a->first[ia] = j > in - 1 ? in - 1 : j;
            a->n[ia] = 1;
            w[0] = 1.0f;
            continue;
        }
        x = mode == GF_INTERP_BILINEAR_TF_LEGACY ? i * s : (i + 0.5) * s - 0.5;
        if (x < 0) x = 0;
        int x0 = (int)floor(x);
        if (x0 > in - 1) x0 = in - 1;
        double l = x - x0;
        a->first[ia] = x0;
        if (x0 + 1 < in) { a->n[ia] = 2; w[0] = (float)(1 - l); w[1] = (float)l; }
        else { a->n[ia] = 1; w[0] = 1.0f; }
    }
    return 1;
}

static void axis_free(axis *a) { free(a->first); free(a->n); free(a->w); }

/* Resamples f (iw x ih) to r (ow x oh, row stride ow), computing only the
 * window of columns [x0, x1) and rows [y0, y1) that the crop will read. */
static gf_status resample(const gf_preprocess *pp, const float *f, int iw, int ih, int C, float *r, int ow, int oh,
                          int x0, int x1, int y0, int y1, gfd_ws *ws, char *err, size_t err_size) {
    axis ax = {0}, ay = {0};
    if (x1 <= x0 || y1 <= y0) return GF_OK;
    const int wn = x1 - x0;
    float *tmp = ws_get(ws, 2, (size_t)ih * wn * C);
    if (!tmp || !axis_make(&ax, pp->interp, iw, ow, x0, x1) || !axis_make(&ay, pp->interp, ih, oh, y0, y1)) {
        axis_free(&ax); axis_free(&ay);
        return gf_fail_msg(err, err_size, GF_ERR_MEMORY, "resize %dx%d -> %dx%d: out of memory", iw, ih, ow, oh);
    }
    /* input rows the window's output rows read */
    int ra = ih, rb = 0;
    for (int y = y0; y < y1; y++) {
        const int yi = y - y0;
        if (ay.first[yi] < ra) ra = ay.first[yi];
        if (ay.first[yi] + ay.n[yi] > rb) rb = ay.first[yi] + ay.n[yi];
    }
    /* horizontal: those rows, iw -> the window's wn columns (tmp row stride wn) */
    for (int y = ra; y < rb; y++) {
        const float *src = f + (size_t)y * iw * C;
        float *dst = tmp + (size_t)y * wn * C;
        for (int x = x0; x < x1; x++) {
            const int xi = x - x0;
            const float *w = ax.w + (size_t)xi * ax.maxn;
            const float *s0 = src + (size_t)ax.first[xi] * C;
            const int nk = ax.n[xi], o = xi * C;
            if (C == 3) {
                float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f;
                for (int k = 0; k < nk; k++, s0 += 3) { a0 += w[k] * s0[0]; a1 += w[k] * s0[1]; a2 += w[k] * s0[2]; }
                dst[o] = a0; dst[o + 1] = a1; dst[o + 2] = a2;
            } else {
                float a0 = 0.0f;
                for (int k = 0; k < nk; k++) a0 += w[k] * s0[k];
                dst[o] = a0;
            }
        }
    }
    /* vertical: each window row is a weighted sum of tmp rows */
    const size_t row = (size_t)wn * C;
    for (int y = y0; y < y1; y++) {
        const int yi = y - y0;
        const float *w = ay.w + (size_t)yi * ay.maxn;
        float *dst = r + (size_t)yi * row;
        const float *s0 = tmp + (size_t)ay.first[yi] * row;
        if (ay.n[yi] == 2) {
            const float *s1 = s0 + row, w0 = w[0], w1 = w[1];
            for (size_t i = 0; i < row; i++) dst[i] = w0 * s0[i] + w1 * s1[i];
            continue;
        }
        for (size_t i = 0; i < row; i++) dst[i] = w[0] * s0[i];
        for (int k = 1; k < ay.n[yi]; k++) {
            const float *sk = s0 + (size_t)k * row;
            for (size_t i = 0; i < row; i++) dst[i] += w[k] * sk[i];
        }
    }
    axis_free(&ax); axis_free(&ay);
    return GF_OK;
}

gf_status gf_preprocess_u8(const gf_preprocess *pp, const uint8_t *src, int sw, int sh, int sc, uint64_t seed,
                           float *out, char *err, size_t err_size) {
    gfd_ws ws = {{NULL, NULL, NULL}, {0, 0, 0}};
    gf_status st = gfd_preprocess(pp, src, sw, sh, sc, seed, out, &ws, err, err_size);
    gfd_ws_free(&ws);
    return st;
}

static gf_status preprocess_any(const gf_preprocess *pp, const uint8_t *src, const float *srcf, int sw, int sh, int sc,
                                uint64_t seed, float *out, gfd_ws *ws, char *err, size_t err_size);

gf_status gfd_preprocess(const gf_preprocess *pp, const uint8_t *src, int sw, int sh, int sc, uint64_t seed,
                         float *out, gfd_ws *ws, char *err, size_t err_size) {
    return preprocess_any(pp, src, NULL, sw, sh, sc, seed, out, ws, err, err_size);
}

gf_status gf_preprocess_f32(const gf_preprocess *pp, const float *src, int sw, int sh, int sc, uint64_t seed,
                            float *out, char *err, size_t err_size) {
    gfd_ws ws = {{NULL, NULL, NULL}, {0, 0, 0}};
    gf_status st = preprocess_any(pp, NULL, src, sw, sh, sc, seed, out, &ws, err, err_size);
    gfd_ws_free(&ws);
    return st;
}

static gf_status preprocess_any(const gf_preprocess *pp, const uint8_t *src, const float *srcf, int sw, int sh, int sc,
                                uint64_t seed, float *out, gfd_ws *ws, char *err, size_t err_size) {
    GF_TRY(gf_preprocess_check(pp, err, err_size));
    if ((!src && !srcf) || sw < 1 || sh < 1 || sc < 1 || sc > 4)
        return gf_fail_msg(err, err_size, GF_ERR_INPUT, "preprocess: bad source image %dx%dx%d", sw, sh, sc);
    const int C = pp->channels, W = pp->width, H = pp->height;
    uint64_t rng = gfd_mix64(seed ^ 0x5EEDF00DULL);
    int x0 = 0, y0 = 0, cw = sw, ch = sh, rw = W, rh = H, px = 0, py = 0;
    if (pp->random_resized_crop) {
        gfd_random_crop(pp, sw, sh, &rng, &x0, &y0, &cw, &ch);
    } else if (pp->resize == GF_RESIZE_SHORTER_CROP) {
        int S = pp->resize_shorter ? pp->resize_shorter : (W > H ? W : H);
        if (sw <= sh) { rw = S; rh = (int)((int64_t)S * sh / sw); }
        else { rh = S; rw = (int)((int64_t)S * sw / sh); }
        if (rw < 1) rw = 1;
        if (rh < 1) rh = 1;
        /* torchvision center_crop: round-half-even offset, or pad with zeros */
        px = rw >= W ? (int)rint((rw - W) / 2.0) : -((W - rw) / 2);
        py = rh >= H ? (int)rint((rh - H) / 2.0) : -((H - rh) / 2);
    }
    int flip = pp->hflip ? (gfd_uniform(&rng) < 0.5) : 0;
    /* pad-and-crop shift of the W x H geometry output; drawn after the flip so
     * that settings without it keep their earlier random streams */
    int dx = 0, dy = 0;
    if (pp->pad_crop > 0) {
        dx = rand_int(&rng, 0, 2 * pp->pad_crop) - pp->pad_crop;
        dy = rand_int(&rng, 0, 2 * pp->pad_crop) - pp->pad_crop;
    }

    /* cropped column x is geometry column x + dx, which is resized column
     * x + dx + px (the output mirrors x when flipping); columns outside the
     * geometry's [0, W) or the resized [0, rw), and rows likewise, are the zero
     * padding: [xa, xb) x [ya, yb) is what reads the resized image */
    const int sx = px + dx, sy0 = py + dy;
    int xa = 0, xb = W, ya = 0, yb = H;
    if (-dx > xa) xa = -dx;
    if (-sx > xa) xa = -sx;
    if (W - dx < xb) xb = W - dx;
    if (rw - sx < xb) xb = rw - sx;
    if (xb < xa) xb = xa;
    if (-dy > ya) ya = -dy;
    if (-sy0 > ya) ya = -sy0;
    if (H - dy < yb) yb = H - dy;
    if (rh - sy0 < yb) yb = rh - sy0;
    if (yb < ya) yb = ya;
    /* r holds only that window of the resized image (row stride rs): all of it
     * could be huge (1 x 201128 to shorter side 40: 40 x 8045120 x 3 floats) */
    const int resize = !(rw == cw && rh == ch);
    const size_t rs = resize ? (size_t)(xb - xa) : (size_t)rw;
    float *f = ws_get(ws, 0, (size_t)cw * ch * C);
    float *r = resize ? ws_get(ws, 1, (size_t)(xb - xa) * (yb - ya) * C + 1) : f;
    if (!f || !r) return gf_fail_msg(err, err_size, GF_ERR_MEMORY, "preprocess: out of memory for a %dx%d image", sw, sh);
    if (src) to_float_u8(src, sw, sc, x0, y0, cw, ch, C, f);
    else to_float_f32(srcf, sw, sc, x0, y0, cw, ch, C, f);
    if (resize) GF_TRY(resample(pp, f, cw, ch, C, r, rw, rh, xa + sx, xb + sx, ya + sy0, yb + sy0, ws, err, err_size));
    for (int oc = 0; oc < C; oc++) {
        int sc_ = (C == 3 && pp->bgr) ? 2 - oc : oc;
        float a = pp->scale / pp->std[oc], b = (pp->offset - pp->mean[oc]) / pp->std[oc];
        float *o = out + (size_t)oc * H * W;
        for (int y = 0; y < H; y++, o += W) {
            if (y < ya || y >= yb) { for (int x = 0; x < W; x++) o[x] = b; continue; }
            /* column x reads r's column x + xo: window-relative when resized */
            const int xo = resize ? -xa : sx;
            const float *row = r + (size_t)(resize ? y - ya : y + sy0) * rs * C + sc_;
            for (int x = 0; x < xa; x++) o[flip ? W - 1 - x : x] = b;
            for (int x = xb; x < W; x++) o[flip ? W - 1 - x : x] = b;
            if (flip) for (int x = xa; x < xb; x++) o[W - 1 - x] = row[(size_t)(x + xo) * C] * a + b;
            else for (int x = xa; x < xb; x++) o[x] = row[(size_t)(x + xo) * C] * a + b;
        }
    }
    return GF_OK;
}

void gf_image_rotate90(const float *src, int c, int h, int w, int k, float *dst) {
    k = ((k % 4) + 4) % 4;
    for (int ch = 0; ch < c; ch++) {
        const float *s = src + (size_t)ch * h * w;
        float *d = dst + (size_t)ch * h * w;
        if (k == 0) { memcpy(d, s, sizeof(float) * (size_t)h * w); continue; }
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                float v = s[(size_t)y * w + x];
                if (k == 1) d[(size_t)(w - 1 - x) * h + y] = v;                  /* out w x h */
                else if (k == 2) d[(size_t)(h - 1 - y) * w + (w - 1 - x)] = v;   /* out h x w */
                else d[(size_t)x * h + (h - 1 - y)] = v;                        /* out w x h */
            }
    }
}

void gf_preprocess_to_rgb8(const gf_preprocess *pp, const float *in, uint8_t *rgb) {
    const int C = pp->channels, W = pp->width, H = pp->height;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int k = 0; k < 3; k++) {
                int oc = C == 1 ? 0 : (pp->bgr ? 2 - k : k);
                double v = in[((size_t)oc * H + y) * W + x] * (double)pp->std[oc] + pp->mean[oc];
                double p = pp->scale != 0.0f ? (v - pp->offset) / pp->scale : 0.0;
                p = p < 0 ? 0 : p > 255 ? 255 : p;
                rgb[((size_t)y * W + x) * 3 + k] = (uint8_t)lrint(p);
            }
}
