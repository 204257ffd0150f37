/* libFuzzer: the IDX reader (MNIST / Fashion-MNIST, gzip or plain).
 * Input layout: u32 little-endian n, then n bytes of the images file, then the
 * rest is the labels file (n is clamped to what is there). A dataset either
 * opens or fails with a message; an opened one must serve every sample. */
#include "fuzz_common.h"
#include "gradfeat_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 4) return 0;
    size_t n = gf_fuzz_u32(data, size);
    data += 4; size -= 4;
    if (n > size) n = size;
    const char *img = gf_fuzz_write("f-images-idx3-ubyte", data, n);
    const char *lab = gf_fuzz_write("f-labels-idx1-ubyte", data + n, size - n);
    gf_dataset_options o;
    gf_dataset_options_init(&o);
    o.format = GF_DATA_IDX;
    o.labels_path = lab;
    o.threads = 1;
    gf_dataset *ds = NULL;
    char err[512] = "";
    gf_status st = gf_dataset_open(img, &o, &ds, err, sizeof err);
    if (st != GF_OK) {
        if (ds || !err[0]) abort();
        return 0;
    }
    int count = gf_dataset_count(ds), K = gf_dataset_num_classes(ds);
    if (count < 1 || K < 1) abort();
    gf_preprocess pp;
    gf_preprocess_init(&pp, 5, 4, 3);
    float *x = malloc(gf_preprocess_numel(&pp) * sizeof(float));
    float *t = malloc((size_t)K * sizeof(float));
    for (int i = 0; i < count && i < 8; i++) {
        int y = gf_dataset_label(ds, i);
        if (y < 0 || y >= K) abort();
        gf_dataset_targets(ds, i, t);
        if (gf_dataset_sample(ds, i, &pp, (uint64_t)i, x, err, sizeof err) != GF_OK) abort();
    }
    for (int k = 0; k < K; k++) (void)strlen(gf_dataset_class_name(ds, k));
    free(x);
    free(t);
    gf_dataset_free(ds);
    return 0;
}
