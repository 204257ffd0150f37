/* gradfeat data inspect|bench PATH: look at a dataset (counts per class, image
 * sizes, skipped inputs, a contact sheet) and time the loading pipeline. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include "cli.h"
#include "gradfeat_data.h"

static const cli_doc doc = {
    "gradfeat data inspect PATH [options]\n"
    "       gradfeat data bench PATH [options]",
    "PATH: an ImageFolder root (PATH/<class>/<image>), a CSV manifest (path,labels[,split];\n"
    "labels ';'-separated), or IDX files (MNIST/Fashion-MNIST images file, or their folder).\n\n"
    "inspect  counts per class, image size summary, skipped inputs with reasons;\n"
    "         exit 5 when the dataset cannot be used at all\n"
    "bench    decode + preprocess throughput of the threaded batch loader (images/s)\n",
    "  gradfeat data inspect /usr/share/datasets/fashion-mnist --split test --grid sheet.png\n"
    "  gradfeat data bench photos/ --size 224 --resize crop --threads 2\n"
    "  GRADFEAT_SPLIT=train GRADFEAT_THREADS=1 gradfeat data bench /usr/share/datasets/fashion-mnist\n"};

static int fail_msg(gf_status st, const char *msg) {
    fprintf(stderr, "%s: error: %s\n", cli_prog, msg);
    return (int)st;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double cpu_s(void) {   /* user + system time of all threads */
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + 1e-6 * u.ru_utime.tv_usec + (double)u.ru_stime.tv_sec + 1e-6 * u.ru_stime.tv_usec;
}

static int cmp_pair(const void *a, const void *b) {
    const int *x = a, *y = b;
    return x[0] != y[0] ? (x[0] < y[0] ? -1 : 1) : (x[1] < y[1] ? -1 : x[1] > y[1]);
}

static void print_sizes(const gf_dataset *ds, int *all_w, int *all_h) {
    int n = gf_dataset_count(ds), known = 0;
    int *pairs = malloc(sizeof(int) * 2 * (size_t)(n + 1));
    long long sw = 0, sh = 0;
    int minw = 0, maxw = 0, minh = 0, maxh = 0;
    for (int i = 0; i < n && pairs; i++) {
        int w, h;
        gf_dataset_image_size(ds, i, &w, &h);
        if (w <= 0) continue;
        if (!known || w < minw) minw = w;
        if (!known || w > maxw) maxw = w;
        if (!known || h < minh) minh = h;
        if (!known || h > maxh) maxh = h;
        sw += w; sh += h;
        pairs[2 * known] = w; pairs[2 * known + 1] = h;
        known++;
    }
    *all_w = *all_h = 0;
    if (!known) {
        printf("image sizes: not known (not checked; drop --verify none)\n");
        free(pairs);
        return;
    }
    qsort(pairs, (size_t)known, 2 * sizeof(int), cmp_pair);
    int best = 0, bestc = 0, distinct = 0;
    for (int i = 0; i < known;) {
        int j = i;
        while (j < known && pairs[2 * j] == pairs[2 * i] && pairs[2 * j + 1] == pairs[2 * i + 1]) j++;
        if (j - i > bestc) { bestc = j - i; best = i; }
        distinct++;
        i = j;
    }
    printf("image sizes (%d of %d known): width %d..%d (mean %.1f), height %d..%d (mean %.1f); "
           "%d distinct, most common %dx%d (%d)\n", known, n, minw, maxw, (double)sw / known, minh, maxh,
           (double)sh / known, distinct, pairs[2 * best], pairs[2 * best + 1], bestc);
    if (distinct == 1 && known == n) { *all_w = minw; *all_h = minh; }
    free(pairs);
}

static int data_main(int argc, char **argv, cli_opts *opts);

int cmd_data(int argc, char **argv) {
    cli_opts opts;
    int rc = data_main(argc, argv, &opts);
    cli_opts_free(&opts);
    return rc == CLI_HELP ? 0 : rc;
}

static int data_main(int argc, char **argv, cli_opts *opts) {
    gf_dataset_options o;
    gf_dataset_options_init(&o);
    o.threads = 0;
    const char *grid = NULL, *save = NULL, *size = NULL;
    int report = 20, grid_n = 64, W = 0, H = 0, C = 3, crop = 0, shorter = 0, augment = 0, batch = 64, batches = 0;
    int threads = -1, format = GF_DATA_AUTO, full = 0, verify = -1;
    uint64_t seed = 0, max_pixels = 0;
    const cli_opt defs[] = {
        {"format", 0, CLI_CHOICE, &format, "F", "auto|folder|idx|csv (default auto)", NULL, "auto|folder|idx|csv", 0},
        {"split", 0, CLI_STR, &o.split, "S", "folder: PATH/S; idx: train|test; csv: rows whose split is S", NULL, NULL, 0},
        {"classes", 0, CLI_STR, &o.class_names, "FILE", "class names, one per line (csv, idx)", NULL, NULL, 0},
        {"num-classes", 0, CLI_INT, &o.num_classes, "K", "integer labels >= K are skipped (csv, idx)", NULL, NULL, 0},
        {"full", 0, CLI_FLAG, &full, NULL, "decode every image while checking (= --verify decode; default: headers only)", NULL, NULL, 0},
        {"verify", 0, CLI_CHOICE, &verify, "V", "none|header|decode: how much of each image to check (default header)", NULL, "none|header|decode", 0},
        {"max-pixels", 0, CLI_U64, &max_pixels, "N", "skip images with more pixels (default 64 Mpx)", NULL, NULL, 0},
        {"threads", 0, CLI_INT, &threads, "N", "threads for checking / loading (default: online CPUs)", NULL, NULL, 0},
        {"report", 0, CLI_INT, &report, "N", "list at most N skipped inputs (default 20)", NULL, NULL, 0},
        {"save-classes", 0, CLI_STR, &save, "F", "write the class map (index<TAB>name) to F", NULL, NULL, 0},
        {"grid", 0, CLI_STR, &grid, "OUT.png", "contact sheet of preprocessed samples (inspect)", NULL, NULL, 0},
        {"grid-n", 0, CLI_POS, &grid_n, "N", "samples on the sheet (default 64)", NULL, NULL, 0},
        {"size", 0, CLI_STR, &size, "W[xH]", "preprocessed size (default: inspect 96 or the images' own size when all are equal and <= 128; bench 224)", NULL, NULL, 0},
        {"channels", 0, CLI_POS, &C, "C", "1 or 3 (default 3)", NULL, NULL, 0},
        {"resize", 0, CLI_CHOICE, &crop, "R", "stretch | crop (shorter side to --shorter, then centre crop)", NULL, "stretch|crop", 0},
        {"shorter", 0, CLI_INT, &shorter, "S", "shorter side before the crop (default: max(W,H))", NULL, NULL, 0},
        {"augment", 0, CLI_FLAG, &augment, NULL, "random resized crop + horizontal flip", NULL, NULL, 0},
        {"seed", 0, CLI_U64, &seed, "N", "augmentation / shuffle seed (default 0)", NULL, NULL, 0},
        {"batch", 0, CLI_POS, &batch, "N", "bench: batch size (default 64)", NULL, NULL, 0},
        {"batches", 0, CLI_INT, &batches, "N", "bench: batches to time (default: one epoch, at most 50)", NULL, NULL, 0},
    };
    int rc = cli_opts_parse(opts, "data", defs, sizeof defs / sizeof defs[0], &doc, argc, argv);
    if (rc) return rc;
    if (C != 1 && C != 3) return cli_opts_fail(opts, "channels", "must be 1 or 3");
    if (size) {
        char *end = NULL;
        W = (int)strtol(size, &end, 10);
        H = (end && (*end == 'x' || *end == 'X')) ? (int)strtol(end + 1, &end, 10) : W;
        if (*end || W < 1 || H < 1 || W > 4096 || H > 4096) return cli_opts_fail(opts, "size", "must be W or WxH within 1..4096, got '%s'", size);
    }
    o.format = format;
    if (full) o.verify = GF_VERIFY_DECODE;
    if (verify >= 0) o.verify = verify == 0 ? GF_VERIFY_NONE : verify == 1 ? GF_VERIFY_HEADER : GF_VERIFY_DECODE;
    o.max_pixels = (int64_t)max_pixels;
    if (threads >= 0) o.threads = threads;
    int first = opts->first_arg;
    if (first >= argc) return cli_usage_error("data", "missing action: inspect or bench");
    const char *action = argv[first];
    int bench = !strcmp(action, "bench");
    if (!bench && strcmp(action, "inspect")) return cli_usage_error("data", "unknown action '%s'", action);
    if (first + 1 >= argc) return cli_usage_error("data", "missing dataset PATH");
    if (first + 2 < argc) return cli_usage_error("data", "unexpected argument '%s'", argv[first + 2]);
    const char *path = argv[first + 1];

    char err[2048];
    gf_dataset *ds = NULL;
    double t0 = now_s();
    gf_status st = gf_dataset_open(path, &o, &ds, err, sizeof err);
    if (st != GF_OK) return fail_msg(st, err);
    double t_open = now_s() - t0;
    const char *fmt[] = {"auto", "folder", "idx", "csv"};
    int n = gf_dataset_count(ds), K = gf_dataset_num_classes(ds);
    printf("dataset: %s\nformat: %s, %d samples, %d classes, %s (opened in %.2f s)\n", path,
           fmt[gf_dataset_get_format(ds)], n, K, gf_dataset_is_multi_label(ds) ? "multi-label" : "single-label", t_open);
    int aw = 0, ah = 0;
    if (!bench) {
        printf("classes:\n");
        for (int k = 0; k < K; k++) printf("  %4d  %-24s %d\n", k, gf_dataset_class_name(ds, k), gf_dataset_class_count(ds, k));
    }
    print_sizes(ds, &aw, &ah);
    if (gf_dataset_problem_count(ds)) gf_dataset_report(ds, stdout, report);
    else printf("skipped inputs: none\n");
    if (save) {
        st = gf_dataset_write_class_map(ds, save, err, sizeof err);
        if (st != GF_OK) { gf_dataset_free(ds); return fail_msg(st, err); }
        printf("class map: %s\n", save);
    }
    if (!W) {
        if (bench) W = H = 224;
        else if (aw && aw <= 128 && ah <= 128) { W = aw; H = ah; }
        else W = H = 96;
    }
    gf_preprocess pp;
    gf_preprocess_init(&pp, W, H, C);
    pp.resize = crop ? GF_RESIZE_SHORTER_CROP : GF_RESIZE_STRETCH;
    pp.resize_shorter = shorter;
    pp.random_resized_crop = augment;
    pp.hflip = augment;
    if (grid && !bench) {
        st = gf_dataset_write_grid(ds, &pp, grid_n, seed, grid, err, sizeof err);
        if (st != GF_OK) { gf_dataset_free(ds); return fail_msg(st, err); }
        printf("grid: %s (%d samples at %dx%d)\n", grid, grid_n < n ? grid_n : n, W, H);
    }
    if (bench) {
        gf_loader_options lo = {0};
        lo.batch_size = batch;
        lo.shuffle = 1;
        lo.seed = seed;
        lo.threads = threads;
        lo.epochs = 1;
        gf_loader *l = NULL;
        st = gf_loader_create(ds, &pp, &lo, &l, err, sizeof err);
        if (st != GF_OK) { gf_dataset_free(ds); return fail_msg(st, err); }
        int nb = gf_loader_batches_per_epoch(l);
        if (batches <= 0) batches = nb < 50 ? nb : 50;
        if (batches > nb) batches = nb;
        long long imgs = 0;
        double c0 = cpu_s();
        t0 = now_s();
        for (int b = 0; b < batches; b++) {
            const gf_batch *bt;
            st = gf_loader_next(l, &bt, err, sizeof err);
            if (st != GF_OK || !bt) break;
            imgs += bt->count;
        }
        double dt = now_s() - t0;
        gf_loader_free(l);
        double dc = cpu_s() - c0;
        if (st != GF_OK) { gf_dataset_free(ds); return fail_msg(st, err); }
        char tdesc[32];
        if (threads < 0) snprintf(tdesc, sizeof tdesc, "all CPUs");
        else if (threads == 0) snprintf(tdesc, sizeof tdesc, "none (in the caller)");
        else snprintf(tdesc, sizeof tdesc, "%d", threads);
        printf("bench: %lld images (%d batches of %d) at %dx%dx%d%s in %.3f s: %.0f images/s, threads %s; "
               "cpu %.3f s = %.0f images per cpu-second\n", imgs, batches, batch, W, H, C, augment ? " augmented" : "", dt,
               dt > 0 ? imgs / dt : 0.0, tdesc, dc, dc > 0 ? imgs / dc : 0.0);
    }
    gf_dataset_free(ds);
    return 0;
}
