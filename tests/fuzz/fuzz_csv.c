/* libFuzzer: the CSV manifest reader. Byte 0 picks the options (split,
 * forced multi-label, num_classes, class-name file, verify level); the rest is
 * the manifest, next to a few real image files (a.pgm, b.ppm, c.png) and a bad
 * one (bad.png) it may name. An opened dataset must answer every query and
 * write itself back as a manifest. */
#include "fuzz_common.h"
#include "gradfeat_data.h"

static void fixtures(void) {
    static int done;
    if (done++) return;
    static const uint8_t pgm[] = "P5\n2 2\n255\n\x01\x02\x03\x04";
    static const uint8_t ppm[] = "P6\n1 2\n255\n\x01\x02\x03\x04\x05\x06";
    /* 1x1 gray PNG */
    static const uint8_t png[] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 'I', 'H', 'D', 'R', 0, 0, 0, 1,
                                  0, 0, 0, 1, 8, 0, 0, 0, 0, 0x3a, 0x7e, 0x9b, 0x55, 0, 0, 0, 0x0a, 'I', 'D', 'A', 'T',
                                  0x78, 0x9c, 0x63, 0x60, 0, 0, 0, 2, 0, 1, 0x48, 0xaf, 0xa4, 0x71, 0, 0, 0, 0, 'I', 'E',
                                  'N', 'D', 0xae, 0x42, 0x60, 0x82};
    gf_fuzz_write("a.pgm", pgm, sizeof pgm - 1);
    gf_fuzz_write("b.ppm", ppm, sizeof ppm - 1);
    gf_fuzz_write("c.png", png, sizeof png);
    gf_fuzz_write("bad.png", (const uint8_t *)"not a png", 9);
    gf_fuzz_write("classes.txt", (const uint8_t *)"cat\ndog\n\nbird\n", 14);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    fixtures();
    uint8_t opt = data[0];
    const char *csv = gf_fuzz_write("m.csv", data + 1, size - 1);
    char classes[640];
    snprintf(classes, sizeof classes, "%s/classes.txt", gf_fuzz_scratch());
    gf_dataset_options o;
    gf_dataset_options_init(&o);
    o.format = GF_DATA_CSV;
    o.threads = 1;
    if (opt & 1) o.split = "train";
    if (opt & 2) o.multi_label = 1;
    if (opt & 4) o.num_classes = 3;
    if (opt & 8) o.class_names = classes;
    o.verify = (opt >> 4) % 3;   /* NONE, HEADER, DECODE */
    gf_dataset *ds = NULL;
    char err[512] = "";
    gf_status st = gf_dataset_open(csv, &o, &ds, err, sizeof err);
    if (st != GF_OK) {
        if (ds || !err[0]) abort();
        return 0;
    }
    int n = gf_dataset_count(ds), K = gf_dataset_num_classes(ds);
    if (n < 1 || K < 1) abort();
    float *t = malloc((size_t)K * sizeof(float));
    for (int i = 0; i < n; i++) {
        int y = gf_dataset_label(ds, i);
        if (gf_dataset_is_multi_label(ds) ? y != -1 : (y < 0 || y >= K)) abort();
        gf_dataset_targets(ds, i, t);
        if (!gf_dataset_path(ds, i)) abort();
        int w, h;
        gf_dataset_image_size(ds, i, &w, &h);
    }
    for (int k = 0; k < K; k++) {
        (void)strlen(gf_dataset_class_name(ds, k));
        (void)gf_dataset_class_count(ds, k);
    }
    gf_preprocess pp;
    gf_preprocess_init(&pp, 3, 3, 1);
    float x[9];
    for (int i = 0; i < n && i < 4; i++) (void)gf_dataset_sample(ds, i, &pp, 1, x, err, sizeof err);
    char out[640];
    snprintf(out, sizeof out, "%s/out.csv", gf_fuzz_scratch());
    (void)gf_dataset_write_csv(ds, out, err, sizeof err);
    FILE *null = fopen("/dev/null", "w");
    if (null) { gf_dataset_report(ds, null, 1000); fclose(null); }
    free(t);
    gf_dataset_free(ds);
    return 0;
}
