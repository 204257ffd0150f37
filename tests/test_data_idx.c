/* IDX datasets: Fashion-MNIST from Debian's dataset-fashion-mnist loads with
 * the labels and pixels of the files (read here independently with zlib), and
 * broken IDX files (truncated, bad magic, wrong label count, labels out of
 * range, corrupt gzip, no labels file) are reported, never crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include "testutil.h"
#include "gradfeat_data.h"

#define FM "/usr/share/datasets/fashion-mnist"

/* Whole decompressed file. */
static uint8_t *read_gz(const char *path, size_t *n) {
    gzFile g = gzopen(path, "rb");
    if (!g) { fprintf(stderr, "FATAL: cannot open %s\n", path); exit(1); }
    size_t cap = 1 << 20, len = 0;
    uint8_t *b = malloc(cap);
    int r;
    while ((r = gzread(g, b + len, (unsigned)(cap - len))) > 0) {
        len += (size_t)r;
        if (len == cap) { cap *= 2; b = realloc(b, cap); }
    }
    gzclose(g);
    *n = len;
    return b;
}

static void check_split(const char *split, const char *prefix, int expect_n) {
    char err[512] = "", lp[256], ip[256];
    gf_dataset_options o;
    gf_dataset_options_init(&o);
    o.split = split;
    gf_dataset *ds = NULL;
    gf_status st = gf_dataset_open(FM, &o, &ds, err, sizeof err);
    CHECK(st == GF_OK, "open %s split %s: %s", FM, split, err);
    if (st != GF_OK) return;
    snprintf(lp, sizeof lp, FM "/%s-labels-idx1-ubyte.gz", prefix);
    snprintf(ip, sizeof ip, FM "/%s-images-idx3-ubyte.gz", prefix);
    size_t nl, ni;
    uint8_t *lab = read_gz(lp, &nl), *img = read_gz(ip, &ni);
    CHECK(nl == (size_t)expect_n + 8 && ni == (size_t)expect_n * 784 + 16, "independent read sizes %zu %zu", nl, ni);
    CHECK(gf_dataset_count(ds) == expect_n, "%s: %d samples, want %d", split, gf_dataset_count(ds), expect_n);
    CHECK(gf_dataset_num_classes(ds) == 10, "%d classes", gf_dataset_num_classes(ds));
    CHECK(gf_dataset_get_format(ds) == GF_DATA_IDX, "format");
    CHECK(gf_dataset_problem_count(ds) == 0, "no problems expected");
    int mism = 0, counts[10] = {0};
    for (int i = 0; i < expect_n && (size_t)i + 8 < nl; i++) {
        if (gf_dataset_label(ds, i) != lab[8 + i]) mism++;
        if (lab[8 + i] < 10) counts[lab[8 + i]]++;
    }
    CHECK(mism == 0, "%s: %d labels differ from the file", split, mism);
    for (int k = 0; k < 10; k++)
        CHECK(gf_dataset_class_count(ds, k) == counts[k], "class %d count %d want %d", k, gf_dataset_class_count(ds, k), counts[k]);
    float t[10];
    gf_dataset_targets(ds, 5, t);
    for (int k = 0; k < 10; k++) CHECK(t[k] == (k == lab[8 + 5] ? 1.0f : 0.0f), "one-hot target");
    /* pixels and the identity preprocessing (28x28 gray, /255) */
    gf_preprocess pp;
    gf_preprocess_init(&pp, 28, 28, 1);
    float out[784];
    double ref[784];
    int idx[3] = {0, 123, expect_n - 1};
    for (int j = 0; j < 3; j++) {
        int i = idx[j];
        gf_image im;
        st = gf_dataset_load_image(ds, i, &im, err, sizeof err);
        CHECK(st == GF_OK && im.w == 28 && im.h == 28 && im.c == 1, "load image %d: %s", i, err);
        if (st == GF_OK) CHECK(memcmp(im.data, img + 16 + (size_t)i * 784, 784) == 0, "pixels of image %d", i);
        gf_image_free(&im);
        st = gf_dataset_sample(ds, i, &pp, 0, out, err, sizeof err);
        CHECK(st == GF_OK, "sample %d: %s", i, err);
        for (int p = 0; p < 784; p++) ref[p] = img[16 + (size_t)i * 784 + p] / 255.0;
        test_close("fashion-mnist /255", out, ref, 784, 1e-7, 1e-6);
    }
    free(lab); free(img);
    gf_dataset_free(ds);
}

static void put32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }

/* Writes an IDX file: magic type 0x08, dims, then `data_len` bytes of data. */
static void write_idx(const char *path, int gz, int ndim, const uint32_t *dims, const uint8_t *data, size_t data_len) {
    uint8_t h[4 + 16] = {0, 0, 8, (uint8_t)ndim};
    for (int i = 0; i < ndim; i++) put32(h + 4 + 4 * i, dims[i]);
    if (gz) {
        gzFile g = gzopen(path, "wb");
        gzwrite(g, h, 4 + 4 * (unsigned)ndim);
        if (data_len) gzwrite(g, data, (unsigned)data_len);
        gzclose(g);
    } else {
        FILE *f = fopen(path, "wb");
        fwrite(h, 1, 4 + 4 * (size_t)ndim, f);
        if (data_len) fwrite(data, 1, data_len, f);
        fclose(f);
    }
}

static gf_status open_path(const char *path, int num_classes, gf_dataset **ds, char *err, size_t n) {
    gf_dataset_options o;
    gf_dataset_options_init(&o);
    o.num_classes = num_classes;
    return gf_dataset_open(path, &o, ds, err, n);
}

static void check_bad_files(void) {
    char tmpl[] = "/tmp/gf_idx_XXXXXX";
    char *dir = mkdtemp(tmpl);
    if (!dir) { CHECK(0, "mkdtemp"); return; }
    char ip[512], lp[512], err[512];
    uint8_t px[5 * 12], lab[5] = {0, 1, 2, 7, 1};
    for (int i = 0; i < 60; i++) px[i] = (uint8_t)(i * 4);
    uint32_t di[3] = {5, 3, 4}, dl[1] = {5};
    snprintf(ip, sizeof ip, "%s/a-images-idx3-ubyte", dir);
    snprintf(lp, sizeof lp, "%s/a-labels-idx1-ubyte", dir);
    write_idx(ip, 0, 3, di, px, sizeof px);
    write_idx(lp, 0, 1, dl, lab, 5);
    gf_dataset *ds = NULL;
    /* plain IDX, labels beyond num_classes: skipped and reported */
    gf_status st = open_path(ip, 3, &ds, err, sizeof err);
    CHECK(st == GF_OK, "plain IDX with a bad label should open: %s", err);
    if (ds) {
        CHECK(gf_dataset_count(ds) == 4, "4 of 5 samples usable, got %d", gf_dataset_count(ds));
        CHECK(gf_dataset_problem_count(ds) == 1, "1 problem, got %lld", (long long)gf_dataset_problem_count(ds));
        const char *why = NULL, *p = gf_dataset_problem(ds, 0, &why);
        CHECK(p && strstr(p, "#3") && why && strstr(why, "out of range"), "problem names sample #3 and the reason: %s: %s",
              p ? p : "-", why ? why : "-");
        CHECK(gf_dataset_label(ds, 3) == 1, "sample after the skipped one keeps its label");
        gf_image im;
        CHECK(gf_dataset_load_image(ds, 3, &im, err, sizeof err) == GF_OK && im.w == 4 && im.h == 3 &&
              im.data[0] == px[4 * 12], "sample 3 is file row 4 (the bad one skipped)");
        gf_image_free(&im);
        gf_dataset_free(ds);
        ds = NULL;
    }
    /* labels inferred: 8 classes, nothing skipped */
    st = open_path(ip, 0, &ds, err, sizeof err);
    CHECK(st == GF_OK && ds && gf_dataset_count(ds) == 5 && gf_dataset_num_classes(ds) == 8, "inferred classes: %s", err);
    gf_dataset_free(ds);
    ds = NULL;
    /* same as gzip */
    char gp[512], glp[512];
    snprintf(gp, sizeof gp, "%s/b-images-idx3-ubyte.gz", dir);
    snprintf(glp, sizeof glp, "%s/b-labels-idx1-ubyte.gz", dir);
    write_idx(gp, 1, 3, di, px, sizeof px);
    write_idx(glp, 1, 1, dl, lab, 5);
    st = open_path(gp, 0, &ds, err, sizeof err);
    CHECK(st == GF_OK && ds && gf_dataset_count(ds) == 5, "gzip IDX: %s", err);
    gf_dataset_free(ds);
    ds = NULL;

    struct { const char *what, *expect; } cases[] = {
        {"truncated images", "truncated"}, {"bad magic", "magic"}, {"label count", "labels for"},
        {"no labels file", "no labels file"}, {"corrupt gzip", "IDX"}, {"empty", "no usable samples"},
        {"zero-byte", "too short"}, {"float type", "not supported"},
    };
    for (int c = 0; c < 8; c++) {
        char p[512], l[512];
        snprintf(p, sizeof p, "%s/c%d-images-idx3-ubyte", dir, c);
        snprintf(l, sizeof l, "%s/c%d-labels-idx1-ubyte", dir, c);
        write_idx(l, 0, 1, dl, lab, 5);
        switch (c) {
        case 0: write_idx(p, 0, 3, di, px, 30); break;
        case 1: { FILE *f = fopen(p, "wb"); fwrite("\x12\x34\x08\x03", 1, 4, f); fwrite(px, 1, 60, f); fclose(f); } break;
        case 2: { uint32_t d2[1] = {4}; write_idx(p, 0, 3, di, px, sizeof px); write_idx(l, 0, 1, d2, lab, 4); } break;
        case 3: write_idx(p, 0, 3, di, px, sizeof px); unlink(l); break;
        case 4: { FILE *f = fopen(p, "wb"); fwrite("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage-garbage-garbage", 1, 33, f); fclose(f); } break;
        case 5: { uint32_t d0[3] = {0, 3, 4}, l0[1] = {0}; write_idx(p, 0, 3, d0, px, 0); write_idx(l, 0, 1, l0, lab, 0); } break;
        case 6: { FILE *f = fopen(p, "wb"); fclose(f); } break;
        case 7: { FILE *f = fopen(p, "wb"); fwrite("\x00\x00\x0d\x03", 1, 4, f); fwrite(px, 1, 60, f); fclose(f); } break;
        }
        err[0] = 0;
        gf_dataset_options o;
        gf_dataset_options_init(&o);
        o.format = GF_DATA_IDX;
        st = gf_dataset_open(p, &o, &ds, err, sizeof err);
        CHECK(st == GF_ERR_INPUT && ds == NULL, "%s: want GF_ERR_INPUT, got %s (%s)", cases[c].what, gf_status_name(st), err);
        CHECK(strstr(err, cases[c].expect) != NULL, "%s: message '%s' should mention '%s'", cases[c].what, err, cases[c].expect);
        gf_dataset_free(ds);
        ds = NULL;
        unlink(p); unlink(l);
    }
    unlink(ip); unlink(lp); unlink(gp); unlink(glp);
    rmdir(dir);
}

int main(void) {
    check_split(NULL, "train", 60000);
    check_split("test", "t10k", 10000);
    /* the images file itself as the path */
    char err[512];
    gf_dataset *ds = NULL;
    gf_status st = gf_dataset_open(FM "/t10k-images-idx3-ubyte.gz", NULL, &ds, err, sizeof err);
    CHECK(st == GF_OK && ds && gf_dataset_count(ds) == 10000, "open by images file: %s", err);
    gf_dataset_free(ds);
    check_bad_files();
    return test_finish("test_data_idx");
}
