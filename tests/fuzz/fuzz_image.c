/* libFuzzer: image decode (the same header/size/truncation checks and stb_image
 * decode the datasets use) + preprocessing. The first 4 bytes pick the
 * preprocessing (output size 1..32, channels, BGR, resize mode, interpolation,
 * random resized crop, flip, shorter side, seed); the rest is the image file.
 * stb_image is compiled into the harness (stb_image_impl.c, ASan + coverage,
 * not UBSan: its benign shifts are upstream's business) so the decoder the
 * datasets call runs instrumented too. */
#include "fuzz_common.h"
#include "gradfeat_data.h"
#include "data_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 4) return 0;
    uint8_t b0 = data[0], b1 = data[1], b2 = data[2], b3 = data[3];
    const char *path = gf_fuzz_write("image", data + 4, size - 4);
    gf_image img = {0};
    char why[512] = "";
    /* 1 Mpx cap keeps one decode fast; the default (64 Mpx) is a policy, not a parser property */
    gf_status st = gfd_decode_file(path, 0, (int64_t)1 << 20, &img, why, sizeof why);
    if (st != GF_OK) {
        if (!why[0]) abort();
        return 0;
    }
    if (!img.data || img.w < 1 || img.h < 1 || img.c < 1 || img.c > 4) abort();
    gf_preprocess pp;
    gf_preprocess_init(&pp, 1 + b0 % 32, 1 + b1 % 32, (b2 & 1) ? 3 : 1);
    pp.bgr = pp.channels == 3 && (b2 & 2);
    pp.resize = (b2 & 4) ? GF_RESIZE_SHORTER_CROP : GF_RESIZE_STRETCH;
    pp.interp = (gf_interp)((b2 >> 3) & 3);
    pp.random_resized_crop = (b2 >> 5) & 1;
    pp.hflip = (b2 >> 6) & 1;
    pp.resize_shorter = b3 % 64;
    if (b2 & 0x80) gf_preprocess_imagenet(&pp);
    if (gf_preprocess_check(&pp, why, sizeof why) != GF_OK) { gf_image_free(&img); return 0; }
    size_t n = gf_preprocess_numel(&pp);
    float *out = malloc(n * sizeof(float));
    uint8_t *rgb = malloc((size_t)pp.width * pp.height * 3);
    if (gf_preprocess_u8(&pp, img.data, img.w, img.h, img.c, b3, out, why, sizeof why) != GF_OK) abort();
    for (size_t i = 0; i < n; i++)
        if (out[i] != out[i]) abort();   /* NaN from finite pixels */
    gf_preprocess_to_rgb8(&pp, out, rgb);
    free(rgb);
    free(out);
    gf_image_free(&img);
    return 0;
}
