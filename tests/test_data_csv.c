/* CSV manifests: multi-label rows (names and integers), quoted paths, split
 * filter, bad rows (wrong column count, missing file, unknown / out-of-range
 * label) skipped and reported with the line, and a write -> read round trip
 * that keeps paths, targets, class names and splits. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stb/stb_image_write.h>
#include "testutil.h"
#include "gradfeat_data.h"

static char root[64];

static char *pth(const char *rel) {
    static char b[4][512];
    static int k = 0;
    k = (k + 1) % 4;
    snprintf(b[k], sizeof b[k], "%s/%s", root, rel);
    return b[k];
}

static void write_text(const char *path, const char *s) {
    FILE *f = fopen(path, "wb");
    fputs(s, f);
    fclose(f);
}

static int find_problem(const gf_dataset *ds, const char *path_part, const char *reason_part) {
    for (int i = 0; i < gf_dataset_problems_kept(ds); i++) {
        const char *why, *p = gf_dataset_problem(ds, i, &why);
        if (strstr(p, path_part) && strstr(why, reason_part)) return 1;
    }
    return 0;
}

static int find_sample(const gf_dataset *ds, const char *tail) {
    for (int i = 0; i < gf_dataset_count(ds); i++) {
        const char *p = gf_dataset_path(ds, i);
        size_t a = strlen(p), b = strlen(tail);
        if (a >= b && !strcmp(p + a - b, tail)) return i;
    }
    return -1;
}

static gf_dataset *open_csv(const char *path, const char *split, const char *names, int num_classes, gf_status want,
                            const char *what) {
    gf_dataset_options o;
    gf_dataset_options_init(&o);
    o.split = split;
    o.class_names = names;
    o.num_classes = num_classes;
    char err[1024] = "";
    gf_dataset *ds = NULL;
    gf_status st = gf_dataset_open(path, &o, &ds, err, sizeof err);
    CHECK(st == want, "%s: want %s, got %s (%s)", what, gf_status_name(want), gf_status_name(st), err);
    if (want != GF_OK) { CHECK(!ds && err[0], "%s: message", what); printf("%s -> %s\n", what, err); }
    return ds;
}

/* targets of the sample whose path ends with tail, as a string of 0/1 */
static void check_targets(const gf_dataset *ds, const char *tail, const char *want) {
    int i = find_sample(ds, tail);
    CHECK(i >= 0, "sample %s present", tail);
    if (i < 0) return;
    float t[16];
    char got[17] = "";
    int K = gf_dataset_num_classes(ds);
    gf_dataset_targets(ds, i, t);
    for (int k = 0; k < K && k < 16; k++) got[k] = t[k] == 1.0f ? '1' : t[k] == 0.0f ? '0' : '?';
    CHECK(!strcmp(got, want), "targets of %s: %s want %s", tail, got, want);
}

int main(void) {
    strcpy(root, "/tmp/gf_csv_XXXXXX");
    if (!mkdtemp(root)) return 1;
    mkdir(pth("img"), 0755);
    uint8_t px[8 * 6 * 3];
    for (int i = 0; i < (int)sizeof px; i++) px[i] = (uint8_t)(i * 5);
    const char *imgs[] = {"img/a.png", "img/b,c.png", "img/c.png", "img/d.png", "img/e.png", "img/f.png", "img/g.png"};
    for (int i = 0; i < 7; i++) CHECK(stbi_write_png(pth(imgs[i]), 8, 6, 3, px, 8 * 3), "write %s", imgs[i]);

    write_text(pth("m.csv"),
               "\xEF\xBB\xBFpath,labels,split\r\n"
               "img/a.png,dog;person,train\r\n"
               "\"img/b,c.png\",cat,train\n"
               "img/c.png,,val\n"
               "img/d.png,person; dog ;dog,val\n"
               "img/missing.png,cat,train\n"
               "img/e.png,cat,train,extra\n"
               "img/f.png\n"
               "# a comment\n"
               "\n"
               "img/g.png, bird ,test\n");
    gf_dataset *ds = open_csv(pth("m.csv"), NULL, NULL, 0, GF_OK, "multi-label manifest");
    if (ds) {
        gf_dataset_report(ds, stdout, 10);
        CHECK(gf_dataset_is_multi_label(ds), "multi-label");
        CHECK(gf_dataset_count(ds) == 5, "5 usable rows, got %d", gf_dataset_count(ds));
        CHECK(gf_dataset_num_classes(ds) == 4, "4 classes, got %d", gf_dataset_num_classes(ds));
        const char *names[] = {"bird", "cat", "dog", "person"};
        for (int k = 0; k < 4 && k < gf_dataset_num_classes(ds); k++)
            CHECK(!strcmp(gf_dataset_class_name(ds, k), names[k]), "class %d is %s", k, names[k]);
        check_targets(ds, "img/a.png", "0011");
        check_targets(ds, "img/b,c.png", "0100");
        check_targets(ds, "img/c.png", "0000");
        check_targets(ds, "img/d.png", "0011");
        check_targets(ds, "img/g.png", "1000");
        CHECK(gf_dataset_label(ds, 0) == -1, "no single label in a multi-label set");
        CHECK(gf_dataset_class_count(ds, 2) == 2 && gf_dataset_class_count(ds, 1) == 1, "class counts");
        CHECK(find_problem(ds, "m.csv:6", "cannot open") || find_problem(ds, "missing.png", "cannot open"),
              "missing file reported");
        CHECK(find_problem(ds, "m.csv:7", "got 4"), "4 columns reported with the line number");
        CHECK(find_problem(ds, "m.csv:8", "got 1"), "1 column reported with the line number");
        CHECK(gf_dataset_problem_count(ds) == 3, "3 problems, got %lld", (long long)gf_dataset_problem_count(ds));
        char err[512];
        gf_image im;
        int i = find_sample(ds, "img/b,c.png");
        CHECK(i >= 0 && gf_dataset_load_image(ds, i, &im, err, sizeof err) == GF_OK && im.w == 8 && !memcmp(im.data, px, sizeof px),
              "quoted path loads");
        if (i >= 0) gf_image_free(&im);

        /* round trip */
        gf_status st = gf_dataset_write_csv(ds, pth("out.csv"), err, sizeof err);
        CHECK(st == GF_OK, "write manifest: %s", err);
        gf_dataset *rt = open_csv(pth("out.csv"), NULL, NULL, 0, GF_OK, "round trip");
        if (rt) {
            CHECK(gf_dataset_count(rt) == gf_dataset_count(ds) && gf_dataset_num_classes(rt) == gf_dataset_num_classes(ds) &&
                  gf_dataset_is_multi_label(rt) && gf_dataset_problem_count(rt) == 0, "round trip counts");
            for (int k = 0; k < gf_dataset_num_classes(rt); k++)
                CHECK(!strcmp(gf_dataset_class_name(rt, k), gf_dataset_class_name(ds, k)), "round trip class %d", k);
            for (int s = 0; s < gf_dataset_count(rt) && s < gf_dataset_count(ds); s++) {
                CHECK(!strcmp(gf_dataset_path(rt, s), gf_dataset_path(ds, s)), "round trip path %s vs %s", gf_dataset_path(rt, s),
                      gf_dataset_path(ds, s));
                float a[8], b[8];
                gf_dataset_targets(rt, s, a);
                gf_dataset_targets(ds, s, b);
                CHECK(!memcmp(a, b, sizeof(float) * 4), "round trip targets of sample %d", s);
            }
            gf_dataset_free(rt);
        }
        /* the round-tripped file keeps the split column */
        gf_dataset *val = open_csv(pth("out.csv"), "val", NULL, 0, GF_OK, "round trip, split val");
        CHECK(val && gf_dataset_count(val) == 2, "2 val rows after the round trip");
        gf_dataset_free(val);
        gf_dataset_free(ds);
    }
    ds = open_csv(pth("m.csv"), "val", NULL, 0, GF_OK, "split val");
    if (ds) {
        CHECK(gf_dataset_count(ds) == 2 && find_sample(ds, "img/c.png") >= 0 && find_sample(ds, "img/d.png") >= 0, "split filter");
        gf_dataset_free(ds);
    }

    /* integer labels with a class count: out-of-range rows are skipped */
    write_text(pth("n.csv"), "img/a.png,0;2\nimg/c.png,5\nimg/d.png,1\n");
    ds = open_csv(pth("n.csv"), NULL, NULL, 3, GF_OK, "integer labels");
    if (ds) {
        CHECK(gf_dataset_count(ds) == 2 && gf_dataset_num_classes(ds) == 3, "2 rows, 3 classes");
        CHECK(find_problem(ds, "n.csv:2", "out of range"), "label 5 out of range reported");
        check_targets(ds, "img/a.png", "101");
        check_targets(ds, "img/d.png", "010");
        gf_dataset_free(ds);
    }
    /* single-label names with a class-name file; an unknown name is reported */
    write_text(pth("classes.txt"), "zebra\ncat\n\ndog\n");
    write_text(pth("s.csv"), "img/a.png,dog\nimg/c.png,cat\nimg/d.png,horse\nimg/e.png,zebra\n");
    ds = open_csv(pth("s.csv"), NULL, pth("classes.txt"), 0, GF_OK, "single-label with class names");
    if (ds) {
        CHECK(!gf_dataset_is_multi_label(ds) && gf_dataset_count(ds) == 3 && gf_dataset_num_classes(ds) == 3, "single-label");
        CHECK(gf_dataset_label(ds, find_sample(ds, "img/a.png")) == 2 && gf_dataset_label(ds, find_sample(ds, "img/c.png")) == 1 &&
              gf_dataset_label(ds, find_sample(ds, "img/e.png")) == 0, "labels follow the class-name file order");
        CHECK(find_problem(ds, "s.csv:3", "unknown label 'horse'"), "unknown label reported");
        gf_dataset_free(ds);
    }
    /* unusable manifests */
    open_csv(pth("none.csv"), NULL, NULL, 0, GF_ERR_INPUT, "missing manifest");
    write_text(pth("bad.csv"), "img/missing1.png,cat\nimg/a.png\nimg/c.png,a,b,c\n");
    open_csv(pth("bad.csv"), NULL, NULL, 0, GF_ERR_INPUT, "no usable rows");
    write_text(pth("empty.csv"), "path,labels\n");
    open_csv(pth("empty.csv"), NULL, NULL, 0, GF_ERR_INPUT, "header only");
    FILE *f = fopen(pth("bin.csv"), "wb");
    fwrite("a\0b,c\n", 1, 6, f);
    fclose(f);
    open_csv(pth("bin.csv"), NULL, NULL, 0, GF_ERR_INPUT, "binary manifest");
    open_csv(pth("m.csv"), "nosuchsplit", NULL, 0, GF_ERR_INPUT, "split with no rows");

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
    return test_finish("test_data_csv");
}
