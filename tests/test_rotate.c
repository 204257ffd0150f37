/* gf_image_rotate90 against hand-written rotations of a 2x3 image (the
 * torch.rot90(x, k, dims=(1, 2)) / numpy.rot90 results, counter-clockwise),
 * a 2x2 square and a 2-channel case; then on real Fashion-MNIST digits
 * (square 28x28 and a non-square 3-channel 28x19 crop): rot90^4 = identity,
 * rot90(k) then rot90(4-k) = identity, rot90(1) twice = rot90(2), and
 * negative / large k taken modulo 4. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#include "gradfeat_data.h"

#define FM "/usr/share/datasets/fashion-mnist"

static int equal(const float *a, const float *b, size_t n) { return memcmp(a, b, sizeof(float) * n) == 0; }

int main(void) {
    /* 2 x 3 image    0 1 2
     *                3 4 5   (values = index) */
    const float img[6] = {0, 1, 2, 3, 4, 5};
    /* expected, row-major, shapes 2x3, 3x2, 2x3, 3x2 */
    const float want[4][6] = {
        {0, 1, 2, 3, 4, 5},
        {2, 5, 1, 4, 0, 3},   /* k=1: 2 5 / 1 4 / 0 3 */
        {5, 4, 3, 2, 1, 0},   /* k=2: 5 4 3 / 2 1 0 */
        {3, 0, 4, 1, 5, 2},   /* k=3: 3 0 / 4 1 / 5 2 */
    };
    float out[12];
    for (int k = 0; k < 4; k++) {
        memset(out, 0xff, sizeof out);
        gf_image_rotate90(img, 1, 2, 3, k, out);
        CHECK(equal(out, want[k], 6), "2x3 rot90 k=%d: %g %g %g %g %g %g", k, out[0], out[1], out[2], out[3], out[4],
              out[5]);
        gf_image_rotate90(img, 1, 2, 3, k - 4, out);
        CHECK(equal(out, want[k], 6), "2x3 rot90 k=%d (negative) = k=%d", k - 4, k);
        gf_image_rotate90(img, 1, 2, 3, k + 8, out);
        CHECK(equal(out, want[k], 6), "2x3 rot90 k=%d = k=%d", k + 8, k);
    }
    /* 2 channels: each rotated on its own (second channel = first + 10) */
    {
        float two[12], w2[12];
        for (int i = 0; i < 6; i++) { two[i] = img[i]; two[6 + i] = img[i] + 10; }
        for (int k = 0; k < 4; k++) {
            for (int i = 0; i < 6; i++) { w2[i] = want[k][i]; w2[6 + i] = want[k][i] + 10; }
            gf_image_rotate90(two, 2, 2, 3, k, out);
            CHECK(equal(out, w2, 12), "2-channel 2x3 rot90 k=%d", k);
        }
    }
    /* square 2x2:  a b / c d  ->  k=1: b d / a c, k=2: d c / b a, k=3: c a / d b */
    {
        const float sq[4] = {1, 2, 3, 4};
        const float ws[4][4] = {{1, 2, 3, 4}, {2, 4, 1, 3}, {4, 3, 2, 1}, {3, 1, 4, 2}};
        for (int k = 0; k < 4; k++) {
            gf_image_rotate90(sq, 1, 2, 2, k, out);
            CHECK(equal(out, ws[k], 4), "2x2 rot90 k=%d", k);
        }
    }

    /* real digits */
    gf_dataset_options o;
    gf_dataset_options_init(&o);
    o.split = "test";
    gf_dataset *ds = NULL;
    char err[256];
    gf_status st = gf_dataset_open(FM, &o, &ds, err, sizeof err);
    CHECK(st == GF_OK, "open %s: %s", FM, err);
    if (st != GF_OK) return test_finish("test_rotate");
    gf_image im[3];
    for (int i = 0; i < 3; i++) {
        st = gf_dataset_load_image(ds, 5 + 11 * i, &im[i], err, sizeof err);
        CHECK(st == GF_OK && im[i].w == 28 && im[i].h == 28 && im[i].c == 1, "load sample: %s", err);
        if (st != GF_OK) return test_finish("test_rotate");
    }
    /* square 1x28x28 and non-square 3x28x19 (three digits as channels, columns 4..22) */
    const int shapes[2][3] = {{1, 28, 28}, {3, 28, 19}};
    for (int s = 0; s < 2; s++) {
        const int C = shapes[s][0], H = shapes[s][1], W = shapes[s][2];
        const size_t n = (size_t)C * H * W;
        float *x = malloc(sizeof(float) * n), *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
        float *r1 = malloc(sizeof(float) * n), *r2 = malloc(sizeof(float) * n);
        const int x0 = (28 - W) / 2;
        for (int c = 0; c < C; c++)
            for (int y = 0; y < H; y++)
                for (int xx = 0; xx < W; xx++) x[((size_t)c * H + y) * W + xx] = im[c].data[y * 28 + x0 + xx];
        for (int k = 0; k < 4; k++) {
            /* shape after k quarter turns */
            int h1 = (k & 1) ? W : H, w1 = (k & 1) ? H : W;
            gf_image_rotate90(x, C, H, W, k, a);
            gf_image_rotate90(a, C, h1, w1, 4 - k, b);
            CHECK(equal(b, x, n), "%dx%dx%d: rot90(%d) then rot90(%d) = identity", C, H, W, k, 4 - k);
            /* four times k */
            memcpy(b, x, sizeof(float) * n);
            int hh = H, ww = W;
            for (int t = 0; t < 4; t++) {
                gf_image_rotate90(b, C, hh, ww, k, a);
                if (k & 1) { int tmp = hh; hh = ww; ww = tmp; }
                memcpy(b, a, sizeof(float) * n);
            }
            CHECK(equal(b, x, n) && hh == H && ww == W, "%dx%dx%d: rot90(%d)^4 = identity", C, H, W, k);
            /* pixel rule of k = 1: in(y, x) -> out(w-1-x, y) */
            if (k == 1) {
                gf_image_rotate90(x, C, H, W, 1, a);
                int bad = 0;
                for (int c = 0; c < C; c++)
                    for (int y = 0; y < H; y++)
                        for (int xx = 0; xx < W; xx++)
                            bad += a[((size_t)c * W + (W - 1 - xx)) * H + y] != x[((size_t)c * H + y) * W + xx];
                CHECK(bad == 0, "%dx%dx%d: rot90(1) maps (y, x) to (w-1-x, y): %d pixels differ", C, H, W, bad);
            }
        }
        /* rot90(1) twice = rot90(2), and the digit is not rotation-symmetric (the checks can fail) */
        gf_image_rotate90(x, C, H, W, 1, r1);
        gf_image_rotate90(r1, C, W, H, 1, r2);
        gf_image_rotate90(x, C, H, W, 2, a);
        CHECK(equal(r2, a, n), "%dx%dx%d: rot90(1) twice = rot90(2)", C, H, W);
        CHECK(!equal(a, x, n), "%dx%dx%d: rot90(2) changes the image", C, H, W);
        free(x); free(a); free(b); free(r1); free(r2);
    }
    for (int i = 0; i < 3; i++) gf_image_free(&im[i]);
    gf_dataset_free(ds);
    return test_finish("test_rotate");
}
