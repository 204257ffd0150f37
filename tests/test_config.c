/* CLI helpers without a device: the --config parser (host/cli/config.c, built
 * into this test directly since the CLI is not a library) and the report's
 * confusion-matrix helpers (host/report/report.c, host/method/runrecord.c),
 * against hand-written expectations. */
#include <unistd.h>
#include "testutil.h"
#include "report.h"
#include "runrecord.h"
#include "cli/config.c"

typedef struct { int n; char key[16][64], value[16][256]; const char *reject; int reject_code; } calls;

static int record(void *user, const char *key, const char *value) {
    calls *c = user;
    if (!strcmp(key, "unknown-thing")) return -1;
    if (c->reject && !strcmp(key, c->reject)) return c->reject_code;
    if (c->n < 16) {
        snprintf(c->key[c->n], sizeof c->key[0], "%s", key);
        snprintf(c->value[c->n], sizeof c->value[0], "%s", value);
    }
    c->n++;
    return 0;
}

static char dir[256];

static const char *write_cfg(const char *name, const char *text) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(1); }
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_parse(void) {
    const char *p = write_cfg("ok.conf",
                              "\xef\xbb\xbf# gradfeat train options\n"
                              "\n"
                              "epochs 5\n"
                              "  lr = 0.01   \n"
                              "batch=32\r\n"
                              "--seed\t7 # trailing comment\n"
                              "Max_Device_Mem 4G\n"
                              "run-dir \"runs/with space # not a comment\"   # comment\n"
                              "data 'it''s'\n"
                              "quiet\n"
                              "split a#b\n"
                              "epochs 6\n"
                              "esc \"a\\\"b\\\\c\"\n"
                              "    # indented comment\n"
                              "last-line-no-newline yes");
    calls c = {0};
    char err[512];
    int rc = cli_config_load(p, record, &c, err, sizeof err);
    /* 'it''s' is not one quoted string: text after the closing quote is an error */
    CHECK(rc == GF_ERR_USAGE && strstr(err, "ok.conf:9:") && strstr(err, "data"), "rc %d err '%s'", rc, err);
    CHECK(c.n == 6, "%d calls before the bad line", c.n);
    static const char *const want[][2] = {{"epochs", "5"}, {"lr", "0.01"}, {"batch", "32"}, {"seed", "7"},
                                          {"max-device-mem", "4G"}, {"run-dir", "runs/with space # not a comment"}};
    for (int i = 0; i < 6 && i < c.n; i++)
        CHECK(!strcmp(c.key[i], want[i][0]) && !strcmp(c.value[i], want[i][1]), "call %d: '%s' '%s', want '%s' '%s'",
              i, c.key[i], c.value[i], want[i][0], want[i][1]);

    p = write_cfg("ok2.conf", "quiet\nsplit a#b\nepochs 6\nesc \"a\\\"b\\\\c\"\nx ''\nlast-line-no-newline yes");
    memset(&c, 0, sizeof c);
    rc = cli_config_load(p, record, &c, err, sizeof err);
    CHECK(rc == 0, "rc %d err '%s'", rc, err);
    static const char *const want2[][2] = {{"quiet", ""}, {"split", "a#b"}, {"epochs", "6"}, {"esc", "a\"b\\c"},
                                           {"x", ""}, {"last-line-no-newline", "yes"}};
    CHECK(c.n == 6, "%d calls", c.n);
    for (int i = 0; i < 6 && i < c.n; i++)
        CHECK(!strcmp(c.key[i], want2[i][0]) && !strcmp(c.value[i], want2[i][1]), "call %d: '%s' '%s', want '%s' '%s'",
              i, c.key[i], c.value[i], want2[i][0], want2[i][1]);

    p = write_cfg("empty.conf", "# nothing\n\n   \n");
    memset(&c, 0, sizeof c);
    CHECK(cli_config_load(p, record, &c, err, sizeof err) == 0 && c.n == 0, "empty file: %d calls", c.n);
}

static void test_errors(void) {
    char err[512], path[600];
    calls c = {0};
    snprintf(path, sizeof path, "%s/missing.conf", dir);
    int rc = cli_config_load(path, record, &c, err, sizeof err);
    CHECK(rc == GF_ERR_INPUT && strstr(err, "missing.conf") && strstr(err, "No such file"), "missing: %d '%s'", rc, err);

    const char *p = write_cfg("unknown.conf", "epochs 2\n\nunknown_thing 3\nlr 1\n");
    memset(&c, 0, sizeof c);
    rc = cli_config_load(p, record, &c, err, sizeof err);
    CHECK(rc == GF_ERR_USAGE && strstr(err, "unknown.conf:3: unknown option 'unknown-thing'") && c.n == 1,
          "unknown key: %d '%s' after %d calls", rc, err, c.n);

    p = write_cfg("bad.conf", "epochs x\n");
    memset(&c, 0, sizeof c);
    c.reject = "epochs"; c.reject_code = GF_ERR_USAGE;
    rc = cli_config_load(p, record, &c, err, sizeof err);
    CHECK(rc == GF_ERR_USAGE && strstr(err, "bad.conf:1: bad value 'x' for 'epochs'"), "bad value: %d '%s'", rc, err);
    c.reject_code = GF_ERR_INPUT;          /* the callback's exit code is passed on */
    rc = cli_config_load(p, record, &c, err, sizeof err);
    CHECK(rc == GF_ERR_INPUT, "callback code: %d", rc);

    static const char *const bad[] = {"ep@chs 3\n", "= 5\n", "run-dir \"open\n", "run-dir \"a\" b\n", "\"quoted\" key\n"};
    for (int i = 0; i < 5; i++) {
        p = write_cfg("syntax.conf", bad[i]);
        memset(&c, 0, sizeof c);
        rc = cli_config_load(p, record, &c, err, sizeof err);
        CHECK(rc == GF_ERR_USAGE && strstr(err, "syntax.conf:1:") && c.n == 0, "syntax '%s': %d '%s' %d calls", bad[i], rc, err, c.n);
    }

    char *big = malloc(LINE_MAX_BYTES + 64);
    memset(big, 'a', LINE_MAX_BYTES + 10);
    memcpy(big, "data ", 5);
    big[LINE_MAX_BYTES + 10] = 0;
    p = write_cfg("long.conf", big);
    memset(&c, 0, sizeof c);
    rc = cli_config_load(p, record, &c, err, sizeof err);
    CHECK(rc == GF_ERR_INPUT && strstr(err, "long.conf:1: line longer"), "long line: %d '%s'", rc, err);
    big[LINE_MAX_BYTES] = '\n';            /* exactly LINE_MAX_BYTES bytes + newline is fine */
    big[LINE_MAX_BYTES + 1] = 0;
    p = write_cfg("long.conf", big);
    memset(&c, 0, sizeof c);
    rc = cli_config_load(p, record, &c, err, sizeof err);
    CHECK(rc == 0 && c.n == 1, "max-length line: %d '%s'", rc, err);
    free(big);
}

static void test_confusion(void) {
    /* 5 samples, 3 classes; sample 3 ties classes 0 and 2 -> class 0 (lower index, as gf_accuracy) */
    const float scores[] = {0.9f, 0.1f, 0.0f,   0.2f, 0.7f, 0.1f,   0.1f, 0.8f, 0.1f,   0.5f, 0.0f, 0.5f,
                            -1.f, -2.f, -0.5f};
    const int labels[] = {0, 1, 2, 2, 7};  /* label 7 is out of range: not counted */
    uint64_t m[9];
    gf_confusion_matrix(scores, labels, 5, 3, m);
    const uint64_t want[9] = {1, 0, 0, 0, 1, 0, 1, 1, 0};
    CHECK(!memcmp(m, want, sizeof want), "confusion %llu %llu %llu / %llu %llu %llu / %llu %llu %llu",
          (unsigned long long)m[0], (unsigned long long)m[1], (unsigned long long)m[2], (unsigned long long)m[3],
          (unsigned long long)m[4], (unsigned long long)m[5], (unsigned long long)m[6], (unsigned long long)m[7],
          (unsigned long long)m[8]);
    char err[512], path[600];
    CHECK(gf_report_write_confusion(NULL, dir, "full", "val", m, 3) == GF_OK, "write confusion_full.json");
    snprintf(path, sizeof path, "%s/confusion_full.json", dir);
    FILE *f = fopen(path, "r");
    char text[512] = "";
    if (f) { size_t r = fread(text, 1, sizeof text - 1, f); text[r] = 0; fclose(f); }
    CHECK(!strcmp(text, "{\"method\":\"full\",\"split\":\"val\",\"classes\":3,\"counts\":[[1,0,0],[0,1,0],[1,1,0]]}"),
          "confusion file: %s", text);
    const double ap[3] = {0.5, NAN, 1};
    CHECK(gf_report_write_ap(NULL, dir, "full", "val", ap, 3) == GF_OK, "write ap_full.json");
    snprintf(path, sizeof path, "%s/ap_full.json", dir);
    f = fopen(path, "r");
    text[0] = 0;
    if (f) { size_t r = fread(text, 1, sizeof text - 1, f); text[r] = 0; fclose(f); }
    CHECK(!strcmp(text, "{\"method\":\"full\",\"split\":\"val\",\"ap\":[0.5,null,1]}"), "ap file: %s", text);
    /* the report reads them back (a run dir with only these files + one metrics line) */
    write_cfg("metrics.jsonl", "{\"method\":\"full\",\"epoch\":1,\"epochs\":1,\"train_loss\":1.5,\"train_metric\":0.5,"
                               "\"val_loss\":-1,\"val_metric\":-1,\"seconds\":1}\n");
    snprintf(path, sizeof path, "%s/r.html", dir);
    gf_status st = gf_report_render(dir, path, err, sizeof err);
    CHECK(st == GF_OK, "render: %s", err);
    f = fopen(path, "r");
    static char html[1 << 17];
    size_t r = f ? fread(html, 1, sizeof html - 1, f) : 0;
    html[r] = 0;
    if (f) fclose(f);
    CHECK(strstr(html, "full &mdash; 50.00% of 4 correct") != NULL, "confusion caption missing");
    CHECK(strstr(html, "75.0%") != NULL && strstr(html, "(no positives)") != NULL, "AP table: mean 75.0%% missing");
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/gf_test_config_XXXXXX");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    test_parse();
    test_errors();
    test_confusion();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_finish("test_config");
}
