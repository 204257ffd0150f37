/* Preprocessing vs a plain-C double-precision reference written here:
 * channel conversion, each interpolation (the antialiased triangle filter
 * as a weight matrix with clamped edges and normalised rows; half-pixel and
 * TF-legacy bilinear; nearest), stretch and shorter-side + centre crop
 * (torchvision rounding, zero padding), mean/std and scale/offset, BGR;
 * random resized crop + flip are deterministic for a seed; pad-and-random-crop
 * is a zero-padded shift by (ox - P, oy - P), ox, oy covering [0, 2P], checked
 * pixel-exactly on real Fashion-MNIST digits and composed with centre crop. */
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#include "gradfeat_data.h"

static double tri(double x) { x = fabs(x); return x < 1 ? 1 - x : 0; }

/* out x in weights of one axis. */
static double *weights(gf_interp mode, int in, int out) {
    double *M = calloc((size_t)in * out, sizeof(double));
    double s = (double)in / out;
    for (int i = 0; i < out; i++) {
        double *row = M + (size_t)i * in;
        if (in == out) { row[i] = 1; continue; }
        if (mode == GF_INTERP_BILINEAR) {
            double c = (i + 0.5) * s, sup = s > 1 ? s : 1, tot = 0;
            for (int j = (int)floor(c - sup) - 2; j <= (int)ceil(c + sup) + 2; j++) {
                double w = tri((c - (j + 0.5)) / sup);
                int jj = j < 0 ? 0 : j >= in ? in - 1 : j;
                row[jj] += w;
                tot += w;
            }
            for (int j = 0; j < in; j++) row[j] /= tot;
        } else if (mode == GF_INTERP_NEAREST) {
            int j = (int)floor((i + 0.5) * s);
            row[j < in ? j : in - 1] = 1;
        } else {
            double x = mode == GF_INTERP_BILINEAR_TF_LEGACY ? i * s : (i + 0.5) * s - 0.5;
            if (x < 0) x = 0;
            int j0 = (int)floor(x);
            if (j0 > in - 1) j0 = in - 1;
            int j1 = j0 + 1 < in ? j0 + 1 : in - 1;
            double l = x - j0;
            row[j0] += 1 - l;
            row[j1] += l;
        }
    }
    return M;
}

/* Reference: src (HWC, sc) -> float RGB/gray -> region crop (x0,y0,cw,ch) -> resize rw x rh
 * -> crop/pad at (px,py) to W x H -> flip -> normalise -> CHW. */
static void reference(const gf_preprocess *pp, const uint8_t *src, int sw, int sh, int sc, int x0, int y0, int cw, int ch,
                      int rw, int rh, int px, int py, int flip, double *out) {
    int C = pp->channels, W = pp->width, H = pp->height;
    double *f = malloc(sizeof(double) * (size_t)cw * ch * C);
    for (int y = 0; y < ch; y++)
        for (int x = 0; x < cw; x++) {
            const uint8_t *p = src + ((size_t)(y0 + y) * sw + x0 + x) * sc;
            double *o = f + ((size_t)y * cw + x) * C;
            if (C == 3) for (int k = 0; k < 3; k++) o[k] = sc >= 3 ? p[k] : p[0];
            else o[0] = sc >= 3 ? 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2] : p[0];
        }
    double *Mx = weights(pp->interp, cw, rw), *My = weights(pp->interp, ch, rh);
    double *r = calloc((size_t)rw * rh * C, sizeof(double));
    for (int y = 0; y < rh; y++)
        for (int x = 0; x < rw; x++)
            for (int k = 0; k < C; k++) {
                double acc = 0;
                for (int j = 0; j < ch; j++) {
                    double wy = My[(size_t)y * ch + j];
                    if (wy == 0) continue;
                    for (int i = 0; i < cw; i++) acc += wy * Mx[(size_t)x * cw + i] * f[((size_t)j * cw + i) * C + k];
                }
                r[((size_t)y * rw + x) * C + k] = acc;
            }
    for (int oc = 0; oc < C; oc++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int sx = (flip ? W - 1 - x : x) + px, sy = y + py;
                int k = (C == 3 && pp->bgr) ? 2 - oc : oc;
                double v = (sx >= 0 && sx < rw && sy >= 0 && sy < rh) ? r[((size_t)sy * rw + sx) * C + k] : 0.0;
                out[((size_t)oc * H + y) * W + x] = (v * pp->scale + pp->offset - pp->mean[oc]) / pp->std[oc];
            }
    free(f); free(Mx); free(My); free(r);
}

#define FM "/usr/share/datasets/fashion-mnist"

/* Pad-and-crop reference: geo is the W x H x C image (CHW, already normalised)
 * that the geometry step gives; out(y, x) = geo(y + oy - P, x' + ox - P) with
 * x' = W-1-x when flipped, pad[c] outside. */
static void shift_ref(const double *geo, int C, int W, int H, int P, int ox, int oy, int flip, const double *pad,
                      double *out) {
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int gx = (flip ? W - 1 - x : x) + ox - P, gy = y + oy - P;
                out[((size_t)c * H + y) * W + x] =
                    (gx >= 0 && gx < W && gy >= 0 && gy < H) ? geo[((size_t)c * H + gy) * W + gx] : pad[c];
            }
}

/* For seeds 0..nseeds-1: the output must match exactly one (ox, oy, flip)
 * candidate within tol (and every other candidate must be off by > 100 tol);
 * counts of each ox / oy / flip seen go to hist_x / hist_y / flips. */
static void pad_crop_seeds(const char *what, const gf_preprocess *pp, const uint8_t *src, int sw, int sh, int sc,
                           const double *geo, int nseeds, double tol, int *hist_x, int *hist_y, int *flips,
                           int *flip_of_seed) {
    const int C = pp->channels, W = pp->width, H = pp->height, P = pp->pad_crop;
    size_t n = gf_preprocess_numel(pp);
    float *got = malloc(sizeof(float) * n);
    double *cand = malloc(sizeof(double) * n), pad[3];
    char err[256];
    for (int c = 0; c < C; c++) pad[c] = (pp->offset - pp->mean[c]) / pp->std[c];
    int bad = 0;
    for (int seed = 0; seed < nseeds; seed++) {
        gf_status st = gf_preprocess_u8(pp, src, sw, sh, sc, (uint64_t)seed * 7919u + 3u, got, err, sizeof err);
        CHECK(st == GF_OK, "%s: %s", what, err);
        if (st != GF_OK) break;
        int matches = 0, near = 0, mx = -1, my = -1, mf = -1;
        for (int f = 0; f < 2; f++)
            for (int oy = 0; oy <= 2 * P; oy++)
                for (int ox = 0; ox <= 2 * P; ox++) {
                    shift_ref(geo, C, W, H, P, ox, oy, f, pad, cand);
                    double e = 0;
                    for (size_t i = 0; i < n; i++) e = fmax(e, fabs(got[i] - cand[i]));
                    if (e <= tol) { matches++; mx = ox; my = oy; mf = f; }
                    else if (e <= 100 * tol) near++;
                }
        if (matches != 1 || near) {
            if (bad++ < 3) CHECK(0, "%s seed %d: %d exact candidates, %d near ones (want 1, 0)", what, seed, matches, near);
            continue;
        }
        hist_x[mx]++; hist_y[my]++; flips[mf]++;
        if (flip_of_seed) flip_of_seed[seed] = mf;
    }
    CHECK(!bad, "%s: %d of %d seeds are not a unique padded shift", what, bad, nseeds);
    free(got); free(cand);
}

static void pad_crop_tests(const uint8_t *rgb, int sw, int sh) {
    char err[256];
    /* real digits, identity geometry and scale 1: outputs are the pixel values, compared exactly */
    gf_dataset_options o;
    gf_dataset_options_init(&o);
    o.split = "test";
    gf_dataset *ds = NULL;
    gf_status st = gf_dataset_open(FM, &o, &ds, err, sizeof err);
    CHECK(st == GF_OK, "open %s: %s", FM, err);
    if (st != GF_OK) return;
    const int P = 4, samples[] = {0, 1, 17};
    int hx[9] = {0}, hy[9] = {0}, fl[2] = {0};
    for (int s = 0; s < 3; s++) {
        gf_image img;
        st = gf_dataset_load_image(ds, samples[s], &img, err, sizeof err);
        CHECK(st == GF_OK && img.w == 28 && img.h == 28 && img.c == 1, "load sample %d: %s", samples[s], err);
        if (st != GF_OK) continue;
        gf_preprocess pp;
        gf_preprocess_init(&pp, 28, 28, 1);
        pp.scale = 1.0f;
        pp.pad_crop = P;
        pp.hflip = 1;
        double geo[28 * 28];
        for (int i = 0; i < 28 * 28; i++) geo[i] = img.data[i];
        char what[64];
        snprintf(what, sizeof what, "pad-crop 4, Fashion-MNIST test #%d", samples[s]);
        int fos[150];
        pad_crop_seeds(what, &pp, img.data, 28, 28, 1, geo, 150, 0.0, hx, hy, fl, fos);
        /* offsets are drawn after the flip: each seed flips as it does without pad-crop */
        pp.pad_crop = 0;
        int agree = 0;
        float out[28 * 28];
        for (int seed = 0; seed < 150; seed++) {
            CHECK(gf_preprocess_u8(&pp, img.data, 28, 28, 1, (uint64_t)seed * 7919u + 3u, out, err, sizeof err) == GF_OK,
                  "no pad-crop: %s", err);
            int mirrored = 1;
            for (int i = 0; i < 28 * 28 && mirrored; i++) mirrored = out[i] == (float)geo[(i / 28) * 28 + 27 - i % 28];
            agree += mirrored == fos[seed];
        }
        CHECK(agree == 150, "%s: flip decisions equal to those without pad-crop for %d of 150 seeds", what, agree);
        gf_image_free(&img);
    }
    gf_dataset_free(ds);
    for (int k = 0; k <= 2 * P; k++)
        CHECK(hx[k] > 0 && hy[k] > 0, "offset %d drawn (x %d times, y %d times of 450)", k, hx[k], hy[k]);
    CHECK(fl[0] > 150 && fl[1] > 150, "pad-crop keeps the flip at about 1/2 (%d plain, %d flipped)", fl[0], fl[1]);

    /* composed with shorter side + centre crop (cropped-away columns are padding, not image) and
     * with a centre crop larger than the image, RGB + ImageNet normalisation */
    const int crops[2][4] = {{20, 16, 5, 4}, {36, 26, -3, -1}};   /* W, H, px, py for 37x29 -> 30x24 */
    for (int t = 0; t < 2; t++) {
        gf_preprocess pp;
        gf_preprocess_init(&pp, crops[t][0], crops[t][1], 3);
        gf_preprocess_imagenet(&pp);
        pp.resize = GF_RESIZE_SHORTER_CROP;
        pp.resize_shorter = 24;
        size_t n = gf_preprocess_numel(&pp);
        double *geo = malloc(sizeof(double) * n);
        reference(&pp, rgb, sw, sh, 3, 0, 0, sw, sh, 30, 24, crops[t][2], crops[t][3], 0, geo);
        pp.pad_crop = 3;
        pp.hflip = 1;
        int gx[7] = {0}, gy[7] = {0}, gf[2] = {0};
        char what[64];
        snprintf(what, sizeof what, "pad-crop 3 after shorter 24 + crop %dx%d", crops[t][0], crops[t][1]);
        pad_crop_seeds(what, &pp, rgb, sw, sh, 3, geo, 120, 2e-5, gx, gy, gf, NULL);
        for (int k = 0; k <= 6; k++) CHECK(gx[k] > 0 && gy[k] > 0, "%s: offset %d drawn", what, k);
        free(geo);
    }

    /* P = 0 is off (same output as without), a negative P is a usage error */
    gf_preprocess pp;
    gf_preprocess_init(&pp, 12, 10, 3);
    pp.hflip = 1;
    float a[360], b[360];
    CHECK(gf_preprocess_u8(&pp, rgb, sw, sh, 3, 9, a, err, sizeof err) == GF_OK, "no pad-crop: %s", err);
    pp.pad_crop = -1;
    CHECK(gf_preprocess_u8(&pp, rgb, sw, sh, 3, 9, b, err, sizeof err) == GF_ERR_USAGE && strstr(err, "pad_crop"),
          "negative pad_crop rejected: %s", err);
    pp.pad_crop = 2;
    CHECK(gf_preprocess_u8(&pp, rgb, sw, sh, 3, 9, b, err, sizeof err) == GF_OK, "pad-crop 2: %s", err);
    CHECK(memcmp(a, b, sizeof a) != 0, "pad-crop 2 changes the output for seed 9");
    pp.pad_crop = 0;
    CHECK(gf_preprocess_u8(&pp, rgb, sw, sh, 3, 9, b, err, sizeof err) == GF_OK && !memcmp(a, b, sizeof a),
          "pad_crop 0 is off");
}

static uint8_t *random_image(test_rng *r, int w, int h, int c) {
    uint8_t *p = malloc((size_t)w * h * c);
    for (size_t i = 0; i < (size_t)w * h * c; i++) p[i] = (uint8_t)test_uniform(r, 0, 256);
    return p;
}

static void run(const char *what, const gf_preprocess *pp, const uint8_t *src, int sw, int sh, int sc, int rw, int rh,
                int px, int py) {
    size_t n = gf_preprocess_numel(pp);
    float *got = malloc(sizeof(float) * n);
    double *ref = malloc(sizeof(double) * n);
    char err[256];
    gf_status st = gf_preprocess_u8(pp, src, sw, sh, sc, 1, got, err, sizeof err);
    CHECK(st == GF_OK, "%s: %s", what, err);
    reference(pp, src, sw, sh, sc, 0, 0, sw, sh, rw, rh, px, py, 0, ref);
    /* values are O(1..10) after normalisation; float resampling error ~1e-6 relative */
    if (st == GF_OK) test_close(what, got, ref, n, 2e-5, 2e-5);
    free(got); free(ref);
}

int main(void) {
    test_rng r;
    test_rng_seed(&r, 1234);
    const int sw = 37, sh = 29;
    uint8_t *rgb = random_image(&r, sw, sh, 3), *gray = random_image(&r, sw, sh, 1), *rgba = random_image(&r, sw, sh, 4);
    uint8_t *ga = random_image(&r, sw, sh, 2);
    const char *mode_name[] = {"bilinear(aa)", "bilinear-noaa", "bilinear-tf-legacy", "nearest"};
    char what[128];

    /* stretch, every interpolation, shrinking / enlarging / mixed, 1 and 3 channels */
    const int sizes[][2] = {{16, 12}, {80, 61}, {50, 20}, {37, 29}, {5, 3}};
    for (int m = 0; m < 4; m++)
        for (int s = 0; s < 5; s++)
            for (int C = 1; C <= 3; C += 2) {
                gf_preprocess pp;
                gf_preprocess_init(&pp, sizes[s][0], sizes[s][1], C);
                pp.interp = (gf_interp)m;
                snprintf(what, sizeof what, "stretch %s %dx%d C=%d", mode_name[m], sizes[s][0], sizes[s][1], C);
                run(what, &pp, rgb, sw, sh, 3, sizes[s][0], sizes[s][1], 0, 0);
            }

    /* channel conversions + mean/std + BGR */
    {
        gf_preprocess pp;
        gf_preprocess_init(&pp, 24, 20, 3);
        gf_preprocess_imagenet(&pp);
        run("gray -> RGB, imagenet", &pp, gray, sw, sh, 1, 24, 20, 0, 0);
        run("gray+alpha -> RGB", &pp, ga, sw, sh, 2, 24, 20, 0, 0);
        run("RGBA -> RGB (alpha dropped)", &pp, rgba, sw, sh, 4, 24, 20, 0, 0);
        pp.bgr = 1;
        run("RGB -> BGR, imagenet", &pp, rgb, sw, sh, 3, 24, 20, 0, 0);
        gf_preprocess g;
        gf_preprocess_init(&g, 24, 20, 1);
        g.scale = 2.0f / 255.0f; g.offset = -1.0f;   /* (g - 0.5) * 2 */
        run("RGB -> gray, scale/offset", &g, rgb, sw, sh, 3, 24, 20, 0, 0);
        run("RGBA -> gray", &g, rgba, sw, sh, 4, 24, 20, 0, 0);
        g.mean[0] = 0.3f; g.std[0] = 0.7f;
        run("gray, scale/offset + mean/std", &g, gray, sw, sh, 1, 24, 20, 0, 0);
    }

    /* shorter side + centre crop (torchvision Resize(S) + CenterCrop) */
    for (int m = 0; m < 4; m++) {
        gf_preprocess pp;
        gf_preprocess_init(&pp, 20, 16, 3);
        pp.interp = (gf_interp)m;
        pp.resize = GF_RESIZE_SHORTER_CROP;
        pp.resize_shorter = 24;   /* 37x29 -> 30x24 (floor(24*37/29) = 30) */
        snprintf(what, sizeof what, "shorter 24 + crop 20x16 %s", mode_name[m]);
        run(what, &pp, rgb, sw, sh, 3, 30, 24, 5, 4);
        /* portrait source (transpose: 29x37 -> 24x30), crop 21x17: offsets round half to even */
        pp.width = 21; pp.height = 17;
        snprintf(what, sizeof what, "portrait shorter 24 + crop 21x17 %s", mode_name[m]);
        run(what, &pp, rgb, 29, 37, 3, 24, 30, 2, 6);
        /* crop larger than the resized image: zero padding (normalised) */
        pp.width = 36; pp.height = 26;
        gf_preprocess_imagenet(&pp);
        snprintf(what, sizeof what, "crop 36x26 > 30x24 pads %s", mode_name[m]);
        run(what, &pp, rgb, sw, sh, 3, 30, 24, -3, -1);
        /* resize_shorter 0: shorter side to max(width, height) */
        gf_preprocess_init(&pp, 16, 16, 1);
        pp.interp = (gf_interp)m;
        pp.resize = GF_RESIZE_SHORTER_CROP;
        snprintf(what, sizeof what, "shorter = crop 16x16 %s", mode_name[m]);
        run(what, &pp, rgb, sw, sh, 3, 20, 16, 2, 0);
    }

    /* augmentation: deterministic for a seed, different across seeds, flip = mirror */
    {
        gf_preprocess pp;
        gf_preprocess_init(&pp, 16, 14, 3);
        pp.random_resized_crop = 1;
        pp.hflip = 1;
        size_t n = gf_preprocess_numel(&pp);
        float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
        char err[256];
        int differ = 0;
        for (uint64_t seed = 0; seed < 20; seed++) {
            CHECK(gf_preprocess_u8(&pp, rgb, sw, sh, 3, seed, a, err, sizeof err) == GF_OK, "rrc: %s", err);
            CHECK(gf_preprocess_u8(&pp, rgb, sw, sh, 3, seed, b, err, sizeof err) == GF_OK, "rrc: %s", err);
            CHECK(!memcmp(a, b, sizeof(float) * n), "same seed %llu, same output", (unsigned long long)seed);
            CHECK(gf_preprocess_u8(&pp, rgb, sw, sh, 3, seed + 1000, b, err, sizeof err) == GF_OK, "rrc: %s", err);
            differ += memcmp(a, b, sizeof(float) * n) != 0;
        }
        CHECK(differ >= 18, "different seeds give different crops (%d of 20)", differ);
        /* area 1 and the image's own aspect ratio: the crop is the whole image (= stretch) */
        pp.area_min = pp.area_max = 1.0f;
        pp.ratio_min = pp.ratio_max = (float)sw / sh;
        pp.hflip = 1;
        double *ref = malloc(sizeof(double) * n), *refm = malloc(sizeof(double) * n);
        reference(&pp, rgb, sw, sh, 3, 0, 0, sw, sh, 16, 14, 0, 0, 0, ref);
        reference(&pp, rgb, sw, sh, 3, 0, 0, sw, sh, 16, 14, 0, 0, 1, refm);
        int flipped = 0, plain = 0;
        for (uint64_t seed = 0; seed < 24; seed++) {
            CHECK(gf_preprocess_u8(&pp, rgb, sw, sh, 3, seed, a, err, sizeof err) == GF_OK, "rrc full: %s", err);
            double e0 = 0, e1 = 0;
            for (size_t i = 0; i < n; i++) {
                e0 = fmax(e0, fabs(a[i] - ref[i]));
                e1 = fmax(e1, fabs(a[i] - refm[i]));
            }
            CHECK(e0 < 2e-5 || e1 < 2e-5, "full-image crop is the stretch (maybe mirrored): err %g / %g", e0, e1);
            plain += e0 < 2e-5;
            flipped += e1 < 2e-5;
        }
        CHECK(plain >= 4 && flipped >= 4, "flip happens about half the time (%d plain, %d flipped of 24)", plain, flipped);
        free(a); free(b); free(ref); free(refm);
    }

    /* float sources: integer values give the 8-bit results exactly; fractional
     * values (lfw_subset-like faces, 25x25 in [0,1]) through TF-legacy bilinear to 64x64 */
    {
        gf_preprocess pp;
        gf_preprocess_init(&pp, 24, 20, 3);
        gf_preprocess_imagenet(&pp);
        size_t n = gf_preprocess_numel(&pp);
        float *src = malloc(sizeof(float) * sw * sh * 3), *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
        char err[256];
        for (int i = 0; i < sw * sh * 3; i++) src[i] = rgb[i];
        CHECK(gf_preprocess_u8(&pp, rgb, sw, sh, 3, 5, a, err, sizeof err) == GF_OK &&
              gf_preprocess_f32(&pp, src, sw, sh, 3, 5, b, err, sizeof err) == GF_OK && !memcmp(a, b, sizeof(float) * n),
              "float source with 8-bit values = 8-bit source");
        free(src); free(a); free(b);
        const int fs = 25, fo = 64;
        float *face = malloc(sizeof(float) * fs * fs), *got = malloc(sizeof(float) * fo * fo);
        double *ref = calloc((size_t)fo * fo, sizeof(double));
        for (int i = 0; i < fs * fs; i++) face[i] = (float)test_uniform(&r, 0, 1);
        gf_preprocess_init(&pp, fo, fo, 1);
        pp.interp = GF_INTERP_BILINEAR_TF_LEGACY;
        pp.scale = 2.0f; pp.offset = -1.0f;   /* (g - 0.5) * 2 */
        double *M = weights(GF_INTERP_BILINEAR_TF_LEGACY, fs, fo);
        for (int y = 0; y < fo; y++)
            for (int x = 0; x < fo; x++) {
                double acc = 0;
                for (int j = 0; j < fs; j++)
                    for (int i = 0; i < fs; i++) acc += M[(size_t)y * fs + j] * M[(size_t)x * fs + i] * face[j * fs + i];
                ref[y * fo + x] = acc * 2 - 1;
            }
        CHECK(gf_preprocess_f32(&pp, face, fs, fs, 1, 0, got, err, sizeof err) == GF_OK, "float face: %s", err);
        test_close("float face 25 -> 64 TF-legacy bilinear, (g-0.5)*2", got, ref, (size_t)fo * fo, 1e-6, 1e-5);
        free(face); free(got); free(ref); free(M);
    }

    /* bad settings and inputs are errors, not crashes */
    {
        gf_preprocess pp;
        float out[64];
        char err[256];
        gf_preprocess_init(&pp, 4, 4, 2);
        CHECK(gf_preprocess_u8(&pp, rgb, sw, sh, 3, 0, out, err, sizeof err) == GF_ERR_USAGE, "2 channels rejected");
        gf_preprocess_init(&pp, 4, 4, 3);
        pp.std[1] = 0;
        CHECK(gf_preprocess_u8(&pp, rgb, sw, sh, 3, 0, out, err, sizeof err) == GF_ERR_USAGE, "std 0 rejected");
        gf_preprocess_init(&pp, 4, 4, 1);
        CHECK(gf_preprocess_u8(&pp, rgb, 0, sh, 3, 0, out, err, sizeof err) == GF_ERR_INPUT, "empty image rejected");
        CHECK(gf_preprocess_u8(&pp, rgb, sw, sh, 5, 0, out, err, sizeof err) == GF_ERR_INPUT, "5 channels rejected");
        /* 1x1 source enlarged */
        uint8_t one[3] = {10, 20, 30};
        gf_preprocess_init(&pp, 4, 4, 3);
        CHECK(gf_preprocess_u8(&pp, one, 1, 1, 3, 0, out, err, sizeof err) == GF_OK && fabsf(out[0] - 10 / 255.0f) < 1e-6f &&
              fabsf(out[47] - 30 / 255.0f) < 1e-6f, "1x1 source");
    }
    pad_crop_tests(rgb, sw, sh);
    free(rgb); free(gray); free(rgba); free(ga);
    return test_finish("test_data_preprocess");
}
