/* Training jobs: model + data -> trunk pass (cached on disk by content) ->
 * gf_train over the cached trunk outputs -> table and run directory. */
#include <errno.h>
#include <math.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "gradfeat_data.h"
#include "gradfeat_train.h"
#include "model.h"
#include "train.h"
#include "gf_file.h"
#include "runrecord.h"

static const char *METHOD_NAMES[4] = {"linear", "gradient", "full", "finetune"};
const char *gf_job_method_name(int i) { return i >= 0 && i < 4 ? METHOD_NAMES[i] : "?"; }

unsigned gf_job_parse_methods(const char *s) {
    unsigned mask = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (!strcasecmp(tok, "all")) { mask |= GF_JOB_ALL; continue; }
        int found = 0;
        for (int i = 0; i < 4; i++) if (!strcasecmp(tok, METHOD_NAMES[i])) { mask |= 1u << i; found = 1; }
        if (!found) return 0;
    }
    return mask;
}

static const char *const SELECT_NAMES[] = {"last", "loss", "metric"};

int gf_job_parse_random(const char *s) {
    static const char *names[3] = {"theta1", "theta2", "omega"};
    int mask = 0;
    if (!s || !*s || !strcmp(s, "none")) return 0;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int k = 0;
        while (k < 3 && strcmp(t, names[k])) k++;
        if (k == 3) return -1;
        mask |= 1 << k;
    }
    return mask;
}

void gf_job_defaults(gf_job *j) {
    memset(j, 0, sizeof *j);
    j->methods = GF_JOB_ALL;
    j->epochs = 10;
    j->batch = 64;
    j->lr = 1e-3f; j->beta1 = 0.5f; j->beta2 = 0.999f; j->weight_decay = 1e-6f; j->momentum = 0.9f;
    j->lr_halve_every = 20;
    j->lr_cosine = 1;
    j->seed = 1;
    j->checkpoint_every = 500;
    j->ntk = 1;
    j->holdout = 0.1f;
    j->select = GF_JOB_SELECT_LOSS;
    j->probe_l2 = -1;
    j->log_every_secs = 30;
}

/* Content key of a trunk pass: model bytes, cut, preprocessing, the samples. */
static gf_status cache_key(gf_ctx *ctx, const gf_job *job, const char *cut, const gf_preprocess *pp, gf_dataset *ds,
                           const int *idx, int n, uint64_t *key) {
    void *data; size_t len;
    GF_TRY(gf_read_file(ctx, job->model_path, &data, &len));
    uint64_t h = gf_fnv1a(GF_FNV_INIT, data, len);
    free(data);
    h = gf_fnv1a(h, cut, strlen(cut) + 1);
    h = gf_fnv1a(h, pp, sizeof *pp);
    if (job->random & GF_JOB_RANDOM_THETA1) {   /* a shuffled trunk is another trunk */
        uint64_t r[2] = {0x52414E44ULL, job->seed};
        h = gf_fnv1a(h, r, sizeof r);
    }
    for (int i = 0; i < n; i++) {   /* each sample by content (IDX: its pixels; files: path, size, times) */
        uint64_t v[2] = {(uint64_t)idx[i], gf_dataset_sample_key(ds, idx[i])};
        h = gf_fnv1a(h, v, sizeof v);
    }
    *key = h;
    return GF_OK;
}

/* The dataset's skipped inputs (gf_dataset_report), as progress lines. */
static void report_dataset(gf_ctx *ctx, const gf_dataset *ds) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return;
    gf_dataset_report(ds, f, 5);
    if (fclose(f) == 0) gf_progress_lines(ctx, text);
    free(text);
}

/* Trunk outputs of one split (activation caching). With the cache on they
 * live in the cache file, memory-mapped: pages are written back and read in
 * by the kernel, so a dataset whose trunk outputs exceed host RAM still
 * trains (the device tier, when it fits, uploads once). With --no-cache they
 * are in plain host memory.
 * File: "GFACT002" | u64 key | i32 n | i32 S | 8 zero bytes | u8 ok[n] |
 * zero pad to a multiple of 64 | f32 z0[n*S] (aligned for direct use). */
typedef struct act_store {
    float *z0;
    void *map;                  /* non-NULL: z0 points into this mapping */
    size_t map_bytes;
} act_store;

static size_t act_z0_offset(int n) { return ((size_t)32 + (size_t)n + 63) & ~(size_t)63; }
static size_t act_file_bytes(int n, int S) { return act_z0_offset(n) + (size_t)n * S * sizeof(float); }

static void act_free(act_store *as) {
    if (as->map) munmap(as->map, as->map_bytes);
    else free(as->z0);
    memset(as, 0, sizeof *as);
}

static gf_status act_alloc_host(gf_ctx *ctx, act_store *as, int n, int S) {
    act_free(as);
    if (!(as->z0 = malloc((size_t)(n ? n : 1) * S * sizeof(float))))
        return gf_fail(ctx, GF_ERR_MEMORY, "out of host memory for the activation cache (%d x %d floats): drop "
                       "--no-cache so that it is kept in a memory-mapped file", n, S);
    return GF_OK;
}

/* Map a complete cache file privately (copy-on-write: compacting over failed
 * samples must not change the file). 1 on success; anything off is a miss. */
static int act_map_file(const char *path, uint64_t key, int n, int S, act_store *as, unsigned char *ok) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    struct stat sb;
    size_t bytes = act_file_bytes(n, S);
    char hdr[24];
    uint64_t k; int32_t nn, ss;
    int good = fstat(fd, &sb) == 0 && (size_t)sb.st_size == bytes && pread(fd, hdr, 24, 0) == 24;
    if (good) { memcpy(&k, hdr + 8, 8); memcpy(&nn, hdr + 16, 4); memcpy(&ss, hdr + 20, 4); }
    good = good && !memcmp(hdr, "GFACT002", 8) && k == key && nn == n && ss == S;
    void *map = good ? mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    close(fd);
    if (map == MAP_FAILED) return 0;
    act_free(as);
    as->map = map; as->map_bytes = bytes;
    as->z0 = (float *)((char *)map + act_z0_offset(n));
    memcpy(ok, (char *)map + 32, (size_t)n);
    return 1;
}

/* Temp files <key>.bin.tmp.<pid> left in DIR by runs that were killed while
 * writing (SIGKILL, power cut): removed when their process no longer exists.
 * A live pid (or one reused since) keeps its file; it is only disk space. */
static void act_sweep_stale(gf_ctx *ctx, const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        char hex[17];
        long pid = 0;
        int end = 0;
        if (sscanf(e->d_name, "%16[0-9a-f].bin.tmp.%ld%n", hex, &pid, &end) != 2 || e->d_name[end] || pid <= 0 ||
            strlen(hex) != 16 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char p[1400];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (unlink(p) == 0) gf_log(ctx, GF_LOG_INFO, "removed %s, left by a run (pid %ld) that did not finish", p, pid);
    }
    closedir(d);
}

/* A new cache file <path>.tmp.<pid>, space reserved up front (a full disk
 * fails here, not as SIGBUS while writing through the mapping). */
static gf_status act_create_file(gf_ctx *ctx, const char *tmp, int n, int S, act_store *as) {
    size_t bytes = act_file_bytes(n, S);
    int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return gf_fail(ctx, GF_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
    int err = posix_fallocate(fd, 0, (off_t)bytes);
    void *map = err ? MAP_FAILED : mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (!err && map == MAP_FAILED) err = errno;
    close(fd);
    if (err) {
        unlink(tmp);
        return gf_fail(ctx, err == ENOMEM ? GF_ERR_MEMORY : GF_ERR_IO, "cannot reserve %.1f MiB for the activation cache %s: %s", bytes / 1048576.0,
                       tmp, strerror(err));
    }
    act_free(as);
    as->map = map; as->map_bytes = bytes;
    as->z0 = (float *)((char *)map + act_z0_offset(n));
    return GF_OK;
}

/* Header and ok[] into the new file, flush, rename into place, then map the
 * finished file privately. */
static gf_status act_finish_file(gf_ctx *ctx, const char *tmp, const char *path, uint64_t key, int n, int S,
                                 act_store *as, const unsigned char *ok) {
    char *b = as->map;
    int32_t nn = n, ss = S;
    memcpy(b, "GFACT002", 8); memcpy(b + 8, &key, 8); memcpy(b + 16, &nn, 4); memcpy(b + 20, &ss, 4);
    memcpy(b + 32, ok, (size_t)n);
    int fd = -1;
    if (msync(as->map, as->map_bytes, MS_SYNC) != 0 || (fd = open(tmp, O_RDONLY)) < 0 || fsync(fd) != 0 ||
        rename(tmp, path) != 0) {
        int err = errno;
        if (fd >= 0) close(fd);
        unlink(tmp);   /* the mapping stays valid: this run goes on, the next one recomputes */
        gf_log(ctx, GF_LOG_WARN, "could not keep the activation cache %s: %s; continuing", path, strerror(err));
        return GF_OK;
    }
    close(fd);
    unsigned char *okcopy = malloc((size_t)n + 1);
    if (okcopy && act_map_file(path, key, n, S, as, okcopy)) { free(okcopy); return GF_OK; }
    free(okcopy);
    unlink(path);   /* compacting through the shared mapping would change the file: don't keep it */
    return GF_OK;
}

/* Enqueue the trunk for n preprocessed images: the nodes the cut depends on,
 * not the top block or the head (the cut's output is gf_exec_buffer(e, cut)). */
static gf_status run_trunk(gf_ctx *ctx, gf_exec *e, const gf_model *m, const float *x, int n, int cut) {
    gf_model_info mi;
    gf_model_get_info(m, &mi);
    size_t in_n = (size_t)mi.in_c * mi.in_h * mi.in_w;
    GF_TRY(gf_buf_write(ctx, gf_exec_buffer(e, GF_NODE_INPUT), 0, (size_t)n * in_n * sizeof(float), x));
    return gf_exec_enqueue_to(e, n, cut);
}

/* Run the frozen trunk over the samples idx[0..n) and keep the cut's output. */
static gf_status trunk_pass(gf_ctx *ctx, const gf_job *job, const gf_model *m, int bi, const char *what,
                            gf_dataset *ds, const int *idx, int n, int S, act_store *as, unsigned char *ok,
                            gf_job_result *res) {
    gf_block_info bin;
    GF_TRY(gf_model_block(m, bi, &bin));
    int from_input = gf_model_block_cut(m, bi) == GF_NODE_INPUT;
    const gf_preprocess *pp = gf_model_preprocess(m);
    char dir[1024], path[1200];
    uint64_t key = 0;
    int use_cache = job->cache_dir && *job->cache_dir;
    if (use_cache) {
        snprintf(dir, sizeof dir, "%s", job->cache_dir);
        const char *bad = gf_cache_dir_untrusted(dir);
        if (bad) {   /* like ssh: a cache others can write could feed us someone else's trunk outputs */
            gf_log(ctx, GF_LOG_WARN, "not using the activation cache %s: %s; keeping the trunk outputs in host memory",
                   dir, bad);
            use_cache = 0;
        }
    }
    if (use_cache) {
        GF_TRY(cache_key(ctx, job, bin.input, pp, ds, idx, n, &key));
        snprintf(path, sizeof path, "%s/%016llx.bin", dir, (unsigned long long)key);
        if (act_map_file(path, key, n, S, as, ok)) {
            if (!job->quiet) gf_progress(ctx, GF_PROGRESS_LINE, "%s: trunk outputs reused from the activation cache %s", what, path);
            res->cache_reused = 1;
            return GF_OK;
        }
    }
    memset(ok, 0, (size_t)n);
    char tmp_path[1300];
    int in_file = 0;
    if (use_cache && gf_mkdirs(dir) != 0)
        gf_log(ctx, GF_LOG_WARN, "cannot create the activation cache directory %s: %s; keeping the trunk outputs in "
               "host memory", dir, strerror(errno));
    else if (use_cache) {
        act_sweep_stale(ctx, dir);
        snprintf(tmp_path, sizeof tmp_path, "%s.tmp.%ld", path, (long)getpid());
        char saved[sizeof ctx->err];
        memcpy(saved, ctx->err, sizeof saved);
        if (act_create_file(ctx, tmp_path, n, S, as) == GF_OK) in_file = 1;
        else gf_log(ctx, GF_LOG_WARN, "%s; keeping the trunk outputs in host memory", ctx->err);
        memcpy(ctx->err, saved, sizeof saved);
    }
    if (!in_file) GF_TRY(act_alloc_host(ctx, as, n, S));
    float *z0 = as->z0;
    int *row = malloc((size_t)gf_dataset_count(ds) * sizeof(int));
    if (!row) return gf_fail(ctx, GF_ERR_MEMORY, "out of memory");
    for (int i = 0; i < gf_dataset_count(ds); i++) row[i] = -1;
    for (int i = 0; i < n; i++) row[idx[i]] = i;
    gf_exec *e = NULL;
    gf_loader *ld = NULL;
    float *tmp = NULL;
    char err[1024];
    gf_loader_options lo = {0};
    lo.batch_size = job->batch; lo.threads = job->threads ? job->threads : -1; lo.epochs = 1;
    lo.indices = idx; lo.n_indices = n; lo.seed = job->seed;
    gf_status st = from_input ? GF_OK : gf_exec_create(ctx, m, job->batch, &e);
    if (st == GF_OK && !from_input && gf_exec_node_size(e, bin.input) != (size_t)S)
        st = gf_fail(ctx, GF_ERR_INTERNAL, "trunk output %s has %zu floats per image, the top block wants %d", bin.input,
                     gf_exec_node_size(e, bin.input), S);
    if (st == GF_OK) {
        gf_status ls = gf_loader_create(ds, pp, &lo, &ld, err, sizeof err);
        if (ls != GF_OK) st = gf_fail(ctx, ls, "%s", err);
    }
    if (st == GF_OK && !(tmp = malloc((size_t)job->batch * S * sizeof(float)))) st = gf_fail(ctx, GF_ERR_MEMORY, "out of memory");
    double t0 = gf_now(), last = t0;
    int done = 0;
    while (st == GF_OK) {
        if (job->stop && *job->stop) { res->stopped = 1; break; }   /* nothing to checkpoint yet */
        const gf_batch *b;
        gf_status ls = gf_loader_next(ld, &b, err, sizeof err);
        if (ls != GF_OK) { st = gf_fail(ctx, ls, "%s", err); break; }
        if (!b) break;
        if (b->count > 0) {
            const float *src = b->x;
            if (!from_input) {
                int cut = gf_model_block_cut(m, bi);
                st = run_trunk(ctx, e, m, b->x, b->count, cut);
                if (st == GF_OK)
                    st = gf_buf_read(ctx, gf_exec_buffer(e, cut), 0, (size_t)b->count * S * sizeof(float), tmp);
                src = tmp;
            }
            for (int j = 0; j < b->count && st == GF_OK; j++) {
                int r = row[b->index[j]];
                memcpy(z0 + (size_t)r * S, src + (size_t)j * S, (size_t)S * sizeof(float));
                ok[r] = 1;
            }
        }
        done += b->count + b->dropped;
        double now = gf_now();
        if (!job->quiet && (now - last > 2 || done == n)) {
            double rate = done / (now - t0);
            gf_progress(ctx, GF_PROGRESS_LINE, "%s: trunk %d/%d images, %.0f img/s, ETA %.0f s", what, done, n, rate,
                        (n - done) / rate);
            last = now;
        }
    }
    res->trunk_seconds += gf_now() - t0;
    if (in_file) {
        if (st == GF_OK && !res->stopped) st = act_finish_file(ctx, tmp_path, path, key, n, S, as, ok);
        else { act_free(as); unlink(tmp_path); }
    }
    free(tmp);
    free(row);
    gf_loader_free(ld);
    gf_exec_free(e);
    return st;
}

/* Labels / targets of the usable samples, compacting z0 over failed ones. */
static gf_status make_set(gf_ctx *ctx, gf_dataset *ds, const int *idx, int n, int S, float *z0, const unsigned char *ok,
                          int K, int multi, gf_cached_set *set, int **labels, float **targets) {
    *labels = malloc((size_t)(n ? n : 1) * sizeof(int));
    *targets = multi ? malloc((size_t)(n ? n : 1) * K * sizeof(float)) : NULL;
    if (!*labels || (multi && !*targets)) return gf_fail(ctx, GF_ERR_MEMORY, "out of memory");
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (!ok[i]) continue;
        if (k != i) memmove(z0 + (size_t)k * S, z0 + (size_t)i * S, (size_t)S * sizeof(float));
        (*labels)[k] = gf_dataset_label(ds, idx[i]);
        if (multi) gf_dataset_targets(ds, idx[i], *targets + (size_t)k * K);
        k++;
    }
    if (k == 0) return gf_fail(ctx, GF_ERR_INPUT, "no usable samples in the dataset (every image failed to load)");
    set->n = k; set->sample_floats = S; set->classes = K; set->multi_label = multi;
    set->z0 = z0; set->labels = *labels; set->targets = multi ? *targets : NULL;
    return GF_OK;
}

typedef struct {
    const gf_job *job; FILE *log; int multi;
    /* checkpoints and saved models */
    gf_ctx *ctx;
    cJSON *config;              /* the job's configuration (compared on resume) */
    char *meta;                 /* last checkpoint_meta text */
    gf_block *blk;
    const char *top, *loss;
    gf_dataset *ds;
    const gf_cached_set *val;   /* for the confusion matrix / per-class AP of the final evaluation */
    FILE *json;                 /* --log-json */
    /* what checkpoints vouch for in the run directory (check_resume_files): the files this run wrote,
     * name -> FNV-1a 64 of their bytes, and the FNV-1a 64 of metrics.jsonl as written so far */
    cJSON *files;
    uint64_t metrics_hash;
} epoch_ctx;

/* Progress inside an epoch (GF_PROGRESS_STEP): every 0.5 s when the caller draws them over each other
 * (a terminal), else every --log-every steps; --log-json gets one object per report. */
static void on_step(void *user, gf_method m, int epoch, int epochs, int step, int steps, double loss, double acc,
                    double ips, double secs) {
    epoch_ctx *ec = user;
    if (!ec->job->quiet) {
        char el[16], eta[16], bar[21];
        int fill = steps ? 20 * step / steps : 20;
        for (int i = 0; i < 20; i++) bar[i] = i < fill ? '#' : '.';
        bar[20] = 0;
        gf_fmt_secs(el, sizeof el, secs);
        gf_fmt_secs(eta, sizeof eta, step ? secs / step * (steps - step) + secs / step * steps * (epochs - epoch) : 0);
        char a[32] = "";
        if (!isnan(acc)) snprintf(a, sizeof a, " acc %.1f%%", 100 * acc);
        gf_progress(ec->ctx, GF_PROGRESS_STEP, "[%-8s] epoch %d/%d [%s] step %d/%d loss %.4f%s %.0f img/s %s ETA %s",
                    gf_method_name(m), epoch, epochs, bar, step, steps, loss, a, ips, el, eta);
    }
    if (ec->json) {
        fprintf(ec->json, "{\"type\":\"step\",\"method\":\"%s\",\"epoch\":%d,\"step\":%d,\"steps\":%d,\"loss\":%.6g,"
                "\"accuracy\":%.6g,\"images_per_s\":%.4g,\"seconds\":%.4g}\n", gf_method_name(m), epoch, step, steps, loss,
                isnan(acc) ? -1.0 : acc, ips, secs);
        fflush(ec->json);
    }
}

static void on_epoch(void *user, gf_method m, int epoch, int epochs, double tl, double tm, double vl, double vm,
                     double hl, double hm, double secs) {
    epoch_ctx *ec = user;
    const char *mn = ec->multi ? "mAP" : "acc";
    if (ec->json) {
        fprintf(ec->json, "{\"type\":\"epoch\",\"method\":\"%s\",\"epoch\":%d,\"epochs\":%d,\"train_loss\":%.6g,"
                "\"train_metric\":%.6g,\"val_loss\":%.6g,\"val_metric\":%.6g,\"holdout_loss\":%.6g,\"holdout_metric\":%.6g,"
                "\"seconds\":%.4g}\n", gf_method_name(m), epoch, epochs, tl, isnan(tm) ? -1.0 : tm, isnan(vl) ? -1.0 : vl,
                isnan(vm) ? -1.0 : vm, isnan(hl) ? -1.0 : hl, isnan(hm) ? -1.0 : hm, secs);
        fflush(ec->json);
    }
    if (!ec->job->quiet) {
        char t[32] = "", h[64] = "", v[64] = "";
        if (!isnan(tm)) snprintf(t, sizeof t, " %s %.4f", mn, tm);
        if (!isnan(hl)) snprintf(h, sizeof h, " | holdout loss %.4f %s %.4f", hl, mn, hm);
        if (!isnan(vl)) snprintf(v, sizeof v, " | val loss %.4f %s %.4f", vl, mn, vm);
        gf_progress(ec->ctx, GF_PROGRESS_LINE, "[%-8s] epoch %3d/%-3d train loss %.4f%s%s%s  (%.1f s, ETA %.0f s)",
                    gf_method_name(m), epoch, epochs, tl, t, h, v, secs, secs * (epochs - epoch));
    }
    if (ec->log) {
        char line[1024];
        int n = snprintf(line, sizeof line, "{\"method\":\"%s\",\"epoch\":%d,\"epochs\":%d,\"train_loss\":%.6g,"
                         "\"train_metric\":%.6g,\"val_loss\":%.6g,\"val_metric\":%.6g,\"holdout_loss\":%.6g,"
                         "\"holdout_metric\":%.6g,\"seconds\":%.4g}\n", gf_method_name(m), epoch, epochs, tl,
                         isnan(tm) ? -1.0 : tm, isnan(vl) ? -1.0 : vl, isnan(vm) ? -1.0 : vm, isnan(hl) ? -1.0 : hl,
                         isnan(hm) ? -1.0 : hm, secs);
        if (n > 0 && (size_t)n < sizeof line) {
            fputs(line, ec->log);
            ec->metrics_hash = gf_fnv1a(ec->metrics_hash, line, (size_t)n);
        }
        fflush(ec->log);
    }
}

static gf_status write_results(gf_ctx *ctx, const gf_job *job, const gf_job_result *r, gf_dataset *ds,
                               const cJSON *config) {
    if (gf_mkdirs(job->run_dir) != 0)
        return gf_fail(ctx, GF_ERR_IO, "cannot create run directory %s: %s", job->run_dir, strerror(errno));
    char path[1200], err[512];
    snprintf(path, sizeof path, "%s/classes.txt", job->run_dir);
    gf_status st = gf_dataset_write_class_map(ds, path, err, sizeof err);
    if (st != GF_OK) return gf_fail(ctx, st, "%s", err);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", job->model_path);
    cJSON_AddStringToObject(o, "data", job->data_path);
    if (job->val_path) cJSON_AddStringToObject(o, "val", job->val_path);
    cJSON_AddStringToObject(o, "top", r->top);
    cJSON_AddStringToObject(o, "device", ctx->info.name);
    cJSON_AddStringToObject(o, "driver", ctx->info.driver_version);
    cJSON_AddStringToObject(o, "gradfeat", gf_version());
    cJSON_AddStringToObject(o, "git", gf_git_hash());
    cJSON_AddStringToObject(o, "platform", ctx->info.platform_name);
    cJSON_AddNumberToObject(o, "seed", (double)job->seed);
    cJSON_AddNumberToObject(o, "epochs", job->epochs);
    cJSON_AddNumberToObject(o, "batch", job->batch);
    cJSON_AddNumberToObject(o, "lr", job->lr);
    cJSON_AddStringToObject(o, "optimizer", job->sgd ? "sgd" : "adam");
    cJSON_AddStringToObject(o, "metric", r->multi_label ? "mAP" : "accuracy");
    cJSON_AddNumberToObject(o, "n_train", r->n_train);
    cJSON_AddNumberToObject(o, "n_val", r->n_val);
    cJSON_AddNumberToObject(o, "n_holdout", r->n_hold);
    cJSON_AddNumberToObject(o, "holdout", job->holdout);
    cJSON_AddStringToObject(o, "select", SELECT_NAMES[job->select]);
    cJSON_AddBoolToObject(o, "ntk", job->ntk);
    cJSON_AddStringToObject(o, "probe", job->probe_sgd ? "sgd" : "lbfgs");
    if (!isnan(r->probe_l2)) cJSON_AddNumberToObject(o, "probe_l2", r->probe_l2);
    cJSON_AddNumberToObject(o, "trunk_seconds", r->trunk_seconds);
    /* device memory of the two caches (--cache-dtype f16 halves what it stores) */
    cJSON *mem = cJSON_AddObjectToObject(o, "cache_memory");
    cJSON_AddStringToObject(mem, "dtype", job->cache_f16 ? "f16" : "f32");
    cJSON_AddNumberToObject(mem, "activation_bytes", (double)r->cache_bytes);
    cJSON_AddNumberToObject(mem, "primal_bytes", (double)r->primal_cache_bytes);
    cJSON *ms = cJSON_AddObjectToObject(o, "methods");
    for (int i = 0; i < 4; i++) {
        if (!r->ran[i]) continue;
        cJSON *x = cJSON_AddObjectToObject(ms, METHOD_NAMES[i]);
        cJSON_AddNumberToObject(x, "train_loss", r->train_loss[i]);
        if (!isnan(r->train_metric[i])) cJSON_AddNumberToObject(x, "train_metric", r->train_metric[i]);
        if (!isnan(r->val_loss[i])) cJSON_AddNumberToObject(x, "val_loss", r->val_loss[i]);
        if (!isnan(r->val_metric[i])) cJSON_AddNumberToObject(x, "val_metric", r->val_metric[i]);
        if (!isnan(r->hold_loss[i])) cJSON_AddNumberToObject(x, "holdout_loss", r->hold_loss[i]);
        if (!isnan(r->hold_metric[i])) cJSON_AddNumberToObject(x, "holdout_metric", r->hold_metric[i]);
        if (!isnan(r->lr[i])) cJSON_AddNumberToObject(x, "lr", r->lr[i]);
        cJSON_AddNumberToObject(x, "best_epoch", r->best_epoch[i]);
        cJSON_AddNumberToObject(x, "epochs_run", r->epochs_run[i]);
        cJSON_AddBoolToObject(x, "diverged", r->diverged[i]);
        cJSON_AddNumberToObject(x, "seconds", r->seconds[i]);
    }
    /* every setting that shaped the result: the job configuration checkpoints are compared on (one place,
     * job_config), and the environment; float settings as their exact decimals ("lr": 0.001) */
    if (config) cJSON_AddItemToObject(o, "settings", cJSON_Duplicate(config, 1));
    cJSON_AddItemToObject(o, "environment", gf_run_environment(ctx));
    static const char *const measured[] = {"methods", NULL};
    gf_json_exact_floats(o, measured);
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    if (!text) return gf_fail(ctx, GF_ERR_MEMORY, "out of memory");
    snprintf(path, sizeof path, "%s/results.json", job->run_dir);
    st = gf_write_file_atomic(ctx, path, text, strlen(text));
    free(text);
    return st;
}

static const char *fmt_num(char *buf, double v, int percent) {
    if (isnan(v)) return "-";
    snprintf(buf, 32, percent ? "%.2f%%" : "%.4f", percent ? 100 * v : v);
    return buf;
}

void gf_job_print_table(const gf_job_result *r, FILE *out) {
    fprintf(out, "top block %s; %d training / %d evaluation samples, %d classes; metric: %s\n", r->top, r->n_train,
            r->n_val, r->classes, r->multi_label ? "mAP" : "top-1 accuracy");
    int hold = r->n_hold > 0;
    if (hold) fprintf(out, "model selection: the best evaluation on %d held-out training samples (epoch 0 = the start)\n", r->n_hold);
    fprintf(out, "%-10s %11s %11s %11s %11s", "method", "train loss", "train", "val loss", "val");
    if (hold) fprintf(out, " %11s %11s %6s", "hold loss", "holdout", "epoch");
    fprintf(out, " %9s\n", "seconds");
    for (int i = 0; i < 4; i++) {
        if (!r->ran[i]) continue;
        char a[32], b[32], c[32], d[32], e[32], f[32];
        fprintf(out, "%-10s %11s %11s %11s %11s", METHOD_NAMES[i], fmt_num(f, r->train_loss[i], 0),
                fmt_num(a, r->train_metric[i], 1), fmt_num(b, r->val_loss[i], 0), fmt_num(c, r->val_metric[i], 1));
        if (hold) {
            char ep[24];
            if (i == 0) snprintf(ep, sizeof ep, "-");
            else snprintf(ep, sizeof ep, "%d%s", r->best_epoch[i], r->diverged[i] ? "!" : "");
            fprintf(out, " %11s %11s %6s", fmt_num(d, r->hold_loss[i], 0), fmt_num(e, r->hold_metric[i], 1), ep);
        }
        fprintf(out, " %9.1f\n", r->seconds[i]);
    }
    for (int i = 1; i < 4; i++)
        if (r->ran[i] && r->lr_auto_used)
            fprintf(out, "%s: learning rate %g (chosen on the holdout)\n", METHOD_NAMES[i], r->lr[i]);
    for (int i = 1; i < 4; i++)
        if (r->ran[i] && r->diverged[i])
            fprintf(out, r->n_hold > 0 ? "%s: stopped after epoch %d: its held-out loss stayed far above where it started "
                                         "(kept epoch %d; try a smaller --lr)\n"
                                       : "%s: stopped after epoch %d: its training loss stayed far above that of guessing "
                                         "(try a smaller --lr)\n", METHOD_NAMES[i], r->epochs_run[i], r->best_epoch[i]);
}

/* ---------------- checkpoints and saved models ---------------- */

static cJSON *job_config(const gf_job *job, const char *top, uint64_t model_hash) {
    cJSON *o = cJSON_CreateObject();
    char hex[32];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)model_hash);
    cJSON_AddStringToObject(o, "model", job->model_path);
    cJSON_AddStringToObject(o, "model_fnv1a64", hex);
    cJSON_AddStringToObject(o, "data", job->data_path);
    cJSON_AddStringToObject(o, "split", job->data_split ? job->data_split : "");
    cJSON_AddStringToObject(o, "val", job->val_path ? job->val_path : "");
    cJSON_AddStringToObject(o, "val_split", job->val_split ? job->val_split : "");
    cJSON_AddNumberToObject(o, "limit", job->limit_train);
    cJSON_AddNumberToObject(o, "val_limit", job->limit_val);
    cJSON_AddStringToObject(o, "top", top);
    cJSON_AddNumberToObject(o, "methods", job->methods);
    cJSON_AddNumberToObject(o, "epochs", job->epochs);
    cJSON_AddNumberToObject(o, "probe_epochs", job->probe_epochs ? job->probe_epochs : 10 * job->epochs);
    cJSON_AddNumberToObject(o, "batch", job->batch);
    cJSON_AddStringToObject(o, "optimizer", job->sgd ? "sgd" : "adam");
    cJSON_AddNumberToObject(o, "lr", job->lr);
    cJSON_AddNumberToObject(o, "momentum", job->momentum);
    cJSON_AddNumberToObject(o, "beta1", job->beta1);
    cJSON_AddNumberToObject(o, "beta2", job->beta2);
    cJSON_AddNumberToObject(o, "weight_decay", job->weight_decay);
    cJSON_AddNumberToObject(o, "clip_norm", job->clip_norm);
    cJSON_AddNumberToObject(o, "lr_halve_every", job->lr_halve_every);
    cJSON_AddNumberToObject(o, "lr_cosine", job->lr_cosine);
    cJSON_AddNumberToObject(o, "ntk", job->ntk);
    cJSON_AddNumberToObject(o, "eval_every", job->eval_every);
    cJSON_AddNumberToObject(o, "holdout", job->holdout);
    cJSON_AddNumberToObject(o, "select", job->select);
    cJSON_AddNumberToObject(o, "probe_sgd", job->probe_sgd);
    cJSON_AddNumberToObject(o, "probe_l2", job->probe_l2);
    cJSON_AddNumberToObject(o, "probe_lr", job->probe_lr);
    cJSON_AddNumberToObject(o, "finetune_lr", job->finetune_lr);
    cJSON_AddNumberToObject(o, "lr_auto", job->lr_auto);
    cJSON_AddNumberToObject(o, "random", job->random);
    cJSON_AddStringToObject(o, "cache_dtype", job->cache_f16 ? "f16" : "f32");
    snprintf(hex, sizeof hex, "%llu", (unsigned long long)job->seed);
    cJSON_AddStringToObject(o, "seed", hex);
    return o;
}

static const char *checkpoint_meta(void *user) {
    epoch_ctx *ec = user;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "config", cJSON_Duplicate(ec->config, 1));
    if (ec->log) {
        char hex[32];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)ec->metrics_hash);
        fflush(ec->log);
        cJSON_AddNumberToObject(o, "metrics_bytes", (double)ftell(ec->log));
        cJSON_AddStringToObject(o, "metrics_fnv1a64", hex);
    }
    if (ec->files) cJSON_AddItemToObject(o, "files", cJSON_Duplicate(ec->files, 1));
    cJSON_AddStringToObject(o, "device", ec->ctx->info.name);
    cJSON_AddNumberToObject(o, "checkpoint_every", ec->job->checkpoint_every);   /* for --resume alone; not compared */
    free(ec->meta);
    ec->meta = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return ec->meta;
}

/* The model first: a checkpoint written for another model file (another architecture, other weights) says
 * so, instead of failing on a block name that model does not have. */
static gf_status check_resume_model(gf_ctx *ctx, const char *path, const gf_ckpt *c, const char *model_path,
                                    uint64_t model_hash) {
    cJSON *meta = c->meta ? cJSON_Parse(c->meta) : NULL;
    const cJSON *saved = cJSON_GetObjectItemCaseSensitive(meta, "config");
    const cJSON *mp = cJSON_GetObjectItemCaseSensitive(saved, "model"), *mh = cJSON_GetObjectItemCaseSensitive(saved, "model_fnv1a64");
    char hex[32];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)model_hash);
    gf_status st = GF_OK;
    if (!cJSON_IsString(mp) || !cJSON_IsString(mh))
        st = gf_fail(ctx, GF_ERR_INPUT, "checkpoint %s holds no job configuration", path);
    else if (strcmp(mp->valuestring, model_path))
        st = gf_fail(ctx, GF_ERR_USAGE, "--resume: checkpoint %s was written for the model %s, this run has the model %s%s; "
                     "resume with --model %s (or leave --model out)", path, mp->valuestring, model_path,
                     strcmp(mh->valuestring, hex) ? " (another model: other architecture or weights)" : "",
                     mp->valuestring);
    else if (strcmp(mh->valuestring, hex))
        st = gf_fail(ctx, GF_ERR_INPUT, "--resume: the model file changed since checkpoint %s was written", path);
    cJSON_Delete(meta);
    return st;
}

/* The checkpoint must come from the same job: same configuration, same model bytes. */
static gf_status check_resume(gf_ctx *ctx, const char *path, const gf_ckpt *c, const cJSON *config, long *metrics_bytes) {
    cJSON *meta = c->meta ? cJSON_Parse(c->meta) : NULL;
    const cJSON *saved = meta ? cJSON_GetObjectItemCaseSensitive(meta, "config") : NULL;
    gf_status st = GF_OK;
    if (!cJSON_IsObject(saved)) st = gf_fail(ctx, GF_ERR_INPUT, "checkpoint %s holds no job configuration", path);
    for (const cJSON *it = config->child; it && st == GF_OK; it = it->next) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(saved, it->string);
        char *a = cJSON_PrintUnformatted(it), *b = o ? cJSON_PrintUnformatted(o) : NULL;
        if (!b || strcmp(a, b))
            st = !strcmp(it->string, "model_fnv1a64")
                     ? gf_fail(ctx, GF_ERR_INPUT, "--resume: the model file changed since checkpoint %s was written", path)
                     : gf_fail(ctx, GF_ERR_USAGE, "--resume: checkpoint %s was written with %s = %s, this run has %s; "
                               "resume with the same options", path, it->string, b ? b : "(none)", a);
        free(a); free(b);
    }
    const cJSON *mb = meta ? cJSON_GetObjectItemCaseSensitive(meta, "metrics_bytes") : NULL;
    *metrics_bytes = cJSON_IsNumber(mb) ? (long)mb->valuedouble : -1;
    cJSON_Delete(meta);
    return st;
}

/* FNV-1a 64 of a whole file (or of its first `len` bytes, len >= 0; *short_file set when it has fewer) */
static gf_status file_fnv(gf_ctx *ctx, const char *path, long len, uint64_t *h, int *short_file) {
    void *bytes = NULL; size_t n = 0;
    GF_TRY(gf_read_file(ctx, path, &bytes, &n));
    if (short_file) *short_file = len >= 0 && n < (size_t)len;
    *h = gf_fnv1a(GF_FNV_INIT, bytes, len >= 0 && (size_t)len < n ? (size_t)len : n);
    free(bytes);
    return GF_OK;
}

/* A checkpoint vouches for the run directory it was written in: metrics.jsonl up to metrics_bytes, and every
 * file the run had written by then (name -> FNV-1a 64). A checkpoint copied in from another run, or files
 * replaced beside it, would make the finished run a mix of two (one run's linear.safetensors, the other's
 * results.json): refuse. Hands back the metrics hash and the file list for the checkpoints to come. */
static gf_status check_resume_files(gf_ctx *ctx, const char *run_dir, const char *ck_path, const gf_ckpt *c,
                                    long metrics_bytes, uint64_t *metrics_hash, cJSON **files) {
    cJSON *meta = c->meta ? cJSON_Parse(c->meta) : NULL;
    const cJSON *mh = cJSON_GetObjectItemCaseSensitive(meta, "metrics_fnv1a64");
    const cJSON *fl = cJSON_GetObjectItemCaseSensitive(meta, "files");
    const char *fix = "the checkpoint comes from another run, or the file was replaced since; start a new run in an "
                      "empty --run-dir, or put back the run's own files";
    char path[1400], hex[32];
    struct stat sb;
    gf_status st = GF_OK;
    *metrics_hash = GF_FNV_INIT;
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    int have = stat(path, &sb) == 0, short_file = 0;
    if (have && metrics_bytes >= 0) st = file_fnv(ctx, path, metrics_bytes, metrics_hash, &short_file);
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)*metrics_hash);
    if (st == GF_OK && cJSON_IsString(mh) && metrics_bytes > 0 && !have)
        st = gf_fail(ctx, GF_ERR_INPUT, "--resume: %s, which the run of checkpoint %s wrote (%ld bytes), is missing; %s",
                     path, ck_path, metrics_bytes, fix);
    else if (st == GF_OK && cJSON_IsString(mh) && (short_file || strcmp(mh->valuestring, hex)))
        st = gf_fail(ctx, GF_ERR_INPUT, "--resume: %s is not the one the run of checkpoint %s wrote (%s); %s", path,
                     ck_path, short_file ? "it is shorter" : "its first bytes differ", fix);
    *files = cJSON_CreateObject();
    for (const cJSON *it = cJSON_IsObject(fl) ? fl->child : NULL; it && st == GF_OK; it = it->next) {
        uint64_t h = 0;
        if (!cJSON_IsString(it) || !it->string[0] || strchr(it->string, '/') || !strcmp(it->string, "..")) {
            st = gf_fail(ctx, GF_ERR_INPUT, "checkpoint %s: bad entry in its list of files", ck_path);
            break;
        }
        snprintf(path, sizeof path, "%s/%s", run_dir, it->string);
        if (stat(path, &sb) != 0)
            st = gf_fail(ctx, GF_ERR_INPUT, "--resume: %s, which the run of checkpoint %s wrote, is missing; %s", path,
                         ck_path, fix);
        if (st == GF_OK) st = file_fnv(ctx, path, -1, &h, NULL);
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
        if (st == GF_OK && strcmp(hex, it->valuestring))
            st = gf_fail(ctx, GF_ERR_INPUT, "--resume: %s is not the file the run of checkpoint %s wrote (FNV-1a %s, the "
                         "checkpoint has %s); %s", path, ck_path, hex, it->valuestring, fix);
        if (st == GF_OK) cJSON_AddStringToObject(*files, it->string, it->valuestring);
    }
    cJSON_Delete(meta);
    return st;
}

/* Records a file of the run directory the run has just written (see check_resume_files). */
static gf_status record_file(epoch_ctx *ec, const char *name) {
    char path[1400], hex[32];
    uint64_t h;
    snprintf(path, sizeof path, "%s/%s", ec->job->run_dir, name);
    GF_TRY(file_fnv(ec->ctx, path, -1, &h, NULL));
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
    cJSON_DeleteItemFromObjectCaseSensitive(ec->files, name);
    if (!cJSON_AddStringToObject(ec->files, name, hex)) return gf_fail(ec->ctx, GF_ERR_MEMORY, "out of memory");
    return GF_OK;
}

gf_status gf_job_load_resume_config(gf_ctx *ctx, const char *run_dir, gf_job *job, void **owner) {
    *owner = NULL;
    char path[1200];
    snprintf(path, sizeof path, "%s/checkpoint.gfckpt", run_dir);
    GF_TRY(gf_run_dir_check_free(ctx, run_dir));
    struct stat sb;
    if (stat(path, &sb) != 0)
        return gf_fail(ctx, GF_ERR_INPUT, "--resume: no checkpoint %s (the run finished, or never reached its first step)",
                       path);
    gf_ckpt ck;
    GF_TRY(gf_ckpt_read(ctx, path, &ck));
    cJSON *meta = ck.meta ? cJSON_Parse(ck.meta) : NULL;
    gf_ckpt_free(&ck);
    cJSON *c = meta ? cJSON_GetObjectItemCaseSensitive(meta, "config") : NULL;
    const cJSON *every = meta ? cJSON_GetObjectItemCaseSensitive(meta, "checkpoint_every") : NULL;
    if (cJSON_IsNumber(every) && every->valuedouble >= 0 && every->valuedouble <= INT_MAX)
        job->checkpoint_every = (int)every->valuedouble;
    const char *need_s[] = {"model", "data", "split", "val", "val_split", "top", "optimizer", "seed"};
    const char *need_n[] = {"limit", "val_limit", "methods", "epochs", "probe_epochs", "batch", "lr", "momentum",
                            "beta1", "beta2", "weight_decay", "clip_norm", "lr_halve_every"};
    int ok = cJSON_IsObject(c);
    for (size_t i = 0; ok && i < sizeof need_s / sizeof *need_s; i++) ok = cJSON_IsString(cJSON_GetObjectItemCaseSensitive(c, need_s[i]));
    for (size_t i = 0; ok && i < sizeof need_n / sizeof *need_n; i++) ok = cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(c, need_n[i]));
    if (!ok) { cJSON_Delete(meta); return gf_fail(ctx, GF_ERR_INPUT, "checkpoint %s holds no usable job configuration", path); }
#define S_(k) (cJSON_GetObjectItemCaseSensitive(c, k)->valuestring)
#define N_(k) (cJSON_GetObjectItemCaseSensitive(c, k)->valuedouble)
#define OPT_(k) (*S_(k) ? S_(k) : NULL)
    job->model_path = S_("model"); job->data_path = S_("data"); job->data_split = OPT_("split");
    job->val_path = OPT_("val"); job->val_split = OPT_("val_split"); job->top = S_("top");
    job->sgd = !strcmp(S_("optimizer"), "sgd");
    job->seed = strtoull(S_("seed"), NULL, 10);
    job->limit_train = (int)N_("limit"); job->limit_val = (int)N_("val_limit"); job->methods = (unsigned)N_("methods");
    job->epochs = (int)N_("epochs"); job->probe_epochs = (int)N_("probe_epochs"); job->batch = (int)N_("batch");
    job->lr = (float)N_("lr"); job->momentum = (float)N_("momentum"); job->beta1 = (float)N_("beta1");
    job->beta2 = (float)N_("beta2"); job->weight_decay = (float)N_("weight_decay"); job->clip_norm = (float)N_("clip_norm");
    job->lr_halve_every = (int)N_("lr_halve_every");
    const cJSON *jcos = cJSON_GetObjectItemCaseSensitive(c, "lr_cosine");
    job->lr_cosine = cJSON_IsNumber(jcos) ? (int)jcos->valuedouble : 0;   /* before the option: the step schedule */
    const cJSON *jn = cJSON_GetObjectItemCaseSensitive(c, "ntk"), *je = cJSON_GetObjectItemCaseSensitive(c, "eval_every");
    job->ntk = cJSON_IsNumber(jn) ? (int)jn->valuedouble : 0;
    job->eval_every = cJSON_IsNumber(je) ? (int)je->valuedouble : 0;
    const cJSON *jh = cJSON_GetObjectItemCaseSensitive(c, "holdout"), *js = cJSON_GetObjectItemCaseSensitive(c, "select");
    const cJSON *jp = cJSON_GetObjectItemCaseSensitive(c, "probe_sgd"), *jl = cJSON_GetObjectItemCaseSensitive(c, "probe_l2");
    const cJSON *jr = cJSON_GetObjectItemCaseSensitive(c, "probe_lr");
    /* checkpoints from before these options: what those runs did */
    job->holdout = cJSON_IsNumber(jh) ? (float)jh->valuedouble : 0;
    job->select = cJSON_IsNumber(js) && js->valuedouble >= 0 && js->valuedouble <= 2 ? (int)js->valuedouble : 0;
    job->probe_sgd = cJSON_IsNumber(jp) ? jp->valuedouble != 0 : 1;
    job->probe_l2 = cJSON_IsNumber(jl) ? (float)jl->valuedouble : -1;
    job->probe_lr = cJSON_IsNumber(jr) ? (float)jr->valuedouble : 0;
    const cJSON *jfl = cJSON_GetObjectItemCaseSensitive(c, "finetune_lr");
    job->finetune_lr = cJSON_IsNumber(jfl) ? (float)jfl->valuedouble : job->lr;   /* before the option: at lr */
    const cJSON *ja = cJSON_GetObjectItemCaseSensitive(c, "lr_auto");
    job->lr_auto = cJSON_IsNumber(ja) && ja->valuedouble != 0;
    const cJSON *jz = cJSON_GetObjectItemCaseSensitive(c, "random");
    job->random = cJSON_IsNumber(jz) && jz->valuedouble >= 0 && jz->valuedouble < 8 ? (unsigned)jz->valuedouble : 0;
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(c, "cache_dtype");
    job->cache_f16 = cJSON_IsString(jd) && !strcmp(jd->valuestring, "f16");   /* before the option: f32 */
#undef S_
#undef N_
#undef OPT_
    *owner = meta;
    return GF_OK;
}

void gf_job_config_free(void *owner) { cJSON_Delete(owner); }

/* RUN_DIR/confusion_<method>.json (single-label) or ap_<method>.json (multi-label)
 * from the final evaluation's logits, for `gradfeat report`. */
static gf_status write_eval_detail(epoch_ctx *ec, gf_method m, const gf_method_result *r) {
    const gf_cached_set *v = ec->val;
    if (!v || !r->val_scores) return GF_OK;
    char name[64];
    gf_status st;
    if (v->multi_label) {
        double *ap = malloc((size_t)v->classes * sizeof(double));
        if (!ap) return gf_fail(ec->ctx, GF_ERR_MEMORY, "out of memory");
        gf_mean_ap(r->val_scores, v->targets, v->n, v->classes, ap);
        st = gf_report_write_ap(ec->ctx, ec->job->run_dir, gf_method_name(m), "val", ap, v->classes);
        free(ap);
        snprintf(name, sizeof name, "ap_%s.json", gf_method_name(m));
    } else {
        uint64_t *counts = calloc((size_t)v->classes * v->classes, sizeof(uint64_t));
        if (!counts) return gf_fail(ec->ctx, GF_ERR_MEMORY, "out of memory");
        gf_confusion_matrix(r->val_scores, v->labels, v->n, v->classes, counts);
        st = gf_report_write_confusion(ec->ctx, ec->job->run_dir, gf_method_name(m), "val", counts, v->classes);
        free(counts);
        snprintf(name, sizeof name, "confusion_%s.json", gf_method_name(m));
    }
    return st == GF_OK ? record_file(ec, name) : st;
}

static gf_status save_model(void *user, gf_method m, const gf_method_result *r, const gf_method_result *probe) {
    epoch_ctx *ec = user;
    const gf_job *job = ec->job;
    if (!job->run_dir || !(job->methods & (1u << m))) return GF_OK;
    GF_TRY(write_eval_detail(ec, m, r));
    /* an ablation's model is not the file's model (shuffled weights / ω̄): no adapted model to predict with */
    if (job->random) return GF_OK;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "format_version", "1");
    cJSON_AddStringToObject(o, "method", gf_method_name(m));
    cJSON_AddStringToObject(o, "top", ec->top);
    cJSON_AddStringToObject(o, "loss", ec->loss);
    cJSON_AddBoolToObject(o, "ntk", ec->job->ntk && (m == GF_METHOD_GRADIENT || m == GF_METHOD_FULL));
    cJSON *cl = cJSON_AddArrayToObject(o, "classes");
    for (int k = 0; k < gf_dataset_num_classes(ec->ds); k++) {
        const char *n = gf_dataset_class_name(ec->ds, k);
        char buf[16];
        if (!n) { snprintf(buf, sizeof buf, "%d", k); n = buf; }
        cJSON_AddItemToArray(cl, cJSON_CreateString(n));
    }
    cJSON_AddItemToObject(o, "trained_with", cJSON_Duplicate(ec->config, 1));
    gf_json_exact_floats(cJSON_GetObjectItemCaseSensitive(o, "trained_with"), NULL);
    if (!isnan(r->val_metric)) cJSON_AddNumberToObject(o, "val_metric", r->val_metric);
    if (!isnan(r->val_loss)) cJSON_AddNumberToObject(o, "val_loss", r->val_loss);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!text) return gf_fail(ec->ctx, GF_ERR_MEMORY, "out of memory");
    char path[1200];
    snprintf(path, sizeof path, "%s/%s.safetensors", job->run_dir, gf_method_name(m));
    gf_saved_model sm = {job->model_path, text, gf_dataset_num_classes(ec->ds), gf_block_feature_dim(ec->blk),
                         r->w1, r->b1, probe->w1, ec->blk, r->block_params};
    gf_status st = gf_saved_model_write(ec->ctx, path, &sm);
    free(text);
    snprintf(path, sizeof path, "%s.safetensors", gf_method_name(m));
    return st == GF_OK ? record_file(ec, path) : st;
}

gf_status gf_job_run(gf_ctx *ctx, const gf_job *job, gf_job_result *res) {
    memset(res, 0, sizeof *res);
    for (int i = 0; i < 4; i++)
        res->train_metric[i] = res->val_loss[i] = res->val_metric[i] = res->hold_loss[i] = res->hold_metric[i] = NAN;
    res->probe_l2 = NAN;
    for (int i = 0; i < 4; i++) res->lr[i] = NAN;
    if (!job->model_path || !job->data_path) return gf_fail(ctx, GF_ERR_USAGE, "a model (--model) and data (--data) are needed");
    if (job->batch < 1 || job->epochs < 1) return gf_fail(ctx, GF_ERR_USAGE, "--batch and --epochs must be at least 1");
    if (!job->methods) return gf_fail(ctx, GF_ERR_USAGE, "no method selected");
    gf_model *m = NULL;
    gf_block *blk = NULL;
    gf_dataset *dtr = NULL, *dva = NULL;
    float *theta = NULL, *ttr = NULL, *tva = NULL;
    act_store atr = {0}, ava = {0};
    int *itr = NULL, *iva = NULL, *ltr = NULL, *lva = NULL;
    unsigned char *oktr = NULL, *okva = NULL;
    FILE *log = NULL;
    gf_train_result tres = {0};
    char err[1024];
    int lock_fd = -1;   /* the run directory, locked and checked writable before any work */
    gf_status st = job->run_dir ? gf_run_dir_lock(ctx, job->run_dir, &lock_fd) : GF_OK;
    if (st == GF_OK) st = gf_model_load(ctx, job->model_path, &m);
    /* the checkpoint, on --resume, and the model's bytes: a resume must name the model the checkpoint was
     * written for before anything else is looked up in it (another architecture has other blocks) */
    gf_ckpt ck = {0};
    int have_ck = 0;
    char ck_path[1200] = "";
    uint64_t model_hash = 0;
    if (job->run_dir) snprintf(ck_path, sizeof ck_path, "%s/checkpoint.gfckpt", job->run_dir);
    if (st == GF_OK) {
        void *bytes; size_t len;
        st = gf_read_file(ctx, job->model_path, &bytes, &len);
        if (st == GF_OK) { model_hash = gf_fnv1a(GF_FNV_INIT, bytes, len); free(bytes); }
    }
    if (st == GF_OK && job->resume) {
        struct stat sb;
        if (!job->run_dir) st = gf_fail(ctx, GF_ERR_USAGE, "--resume needs the run directory");
        else if (stat(ck_path, &sb) != 0)
            st = gf_fail(ctx, GF_ERR_INPUT, "--resume: no checkpoint %s (the run finished, or never reached its first "
                         "step)", ck_path);
        if (st == GF_OK) st = gf_ckpt_read(ctx, ck_path, &ck);
        have_ck = st == GF_OK;
        if (st == GF_OK) st = check_resume_model(ctx, ck_path, &ck, job->model_path, model_hash);
    }
    gf_model_info mi;
    int bi = 0;
    if (st == GF_OK) {
        gf_model_get_info(m, &mi);
        if (mi.n_blocks == 0) st = gf_fail(ctx, GF_ERR_INPUT, "%s has no linearizable top block", job->model_path);
        else if (job->top_blocks > 0 && (bi = gf_model_top_blocks(m, job->top_blocks)) < 0)
            st = gf_fail(ctx, GF_ERR_USAGE, "--top-blocks %d: %s has only %d blocks (gradfeat info lists them)",
                         job->top_blocks, job->model_path, mi.n_blocks);
        else if (job->top_blocks <= 0 && job->top && (bi = gf_model_find_block(m, job->top)) < 0) {
            char list[512] = "";
            for (int i = 0; i < mi.n_blocks; i++) {
                gf_block_info b;
                gf_model_block(m, i, &b);
                strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
                strncat(list, b.name, sizeof list - strlen(list) - 1);
            }
            st = gf_fail(ctx, GF_ERR_USAGE, "--top %s: no such block in %s (blocks: %s; a lower block trains every block "
                         "above it too, and A..B must end at the top block)", job->top, job->model_path, list);
        }
    }
    gf_bnode nodes[GF_BLOCK_MAX_NODES];
    int nn = 0, c = 0, h = 0, w = 0;
    if (st == GF_OK) st = gf_model_block_nodes(ctx, m, bi, nodes, &nn, &c, &h, &w);
    if (st == GF_OK) {
        gf_block_info b;
        gf_model_block(m, bi, &b);
        snprintf(res->top, sizeof res->top, "%s", b.name);
    }
    /* the configuration a checkpoint must match */
    cJSON *config = NULL;
    long metrics_bytes = -1;
    uint64_t metrics_hash = GF_FNV_INIT;
    cJSON *files = NULL;
    if (st == GF_OK) config = job_config(job, res->top, model_hash);
    if (st == GF_OK && have_ck) {
        st = check_resume(ctx, ck_path, &ck, config, &metrics_bytes);
        if (st == GF_OK) st = check_resume_files(ctx, job->run_dir, ck_path, &ck, metrics_bytes, &metrics_hash, &files);
        if (st == GF_OK && !job->quiet)
        {
            if (ck.active)
                gf_progress(ctx, GF_PROGRESS_LINE, "resuming from %s: %s, epoch %d, step %d of the epoch", ck_path,
                            gf_method_name((gf_method)ck.method), ck.epoch + 1, ck.steps);
            else
                gf_progress(ctx, GF_PROGRESS_LINE, "resuming from %s: between methods", ck_path);
        }
    }
    /* data */
    gf_dataset_options dopt;
    gf_dataset_options_init(&dopt);
    dopt.split = job->data_split;
    if (st == GF_OK) {
        gf_status ds = gf_dataset_open(job->data_path, &dopt, &dtr, err, sizeof err);
        if (ds != GF_OK) st = gf_fail(ctx, ds, "%s", err);
    }
    if (st == GF_OK && job->val_path) {
        dopt.split = job->val_split;
        gf_status ds = gf_dataset_open(job->val_path, &dopt, &dva, err, sizeof err);
        if (ds != GF_OK) st = gf_fail(ctx, ds, "%s", err);
    }
    int K = st == GF_OK ? gf_dataset_num_classes(dtr) : 0, multi = st == GF_OK && gf_dataset_is_multi_label(dtr);
    for (int k = 0; st == GF_OK && dva && k < K && k < gf_dataset_num_classes(dva); k++) {
        const char *a = gf_dataset_class_name(dtr, k), *b = gf_dataset_class_name(dva, k);
        if (a && b && strcmp(a, b))
            st = gf_fail(ctx, GF_ERR_INPUT, "class %d is '%s' in the training data but '%s' in the evaluation data %s: "
                         "both must have the same classes (every class present in each split)", k, a, b, job->val_path);
    }
    if (st == GF_OK && dva && gf_dataset_num_classes(dva) != K)
        st = gf_fail(ctx, GF_ERR_INPUT, "training data has %d classes but evaluation data %s has %d", K, job->val_path,
                     gf_dataset_num_classes(dva));
    int ntr = 0, nva = 0, S = c * h * w;
    if (st == GF_OK) {
        itr = gf_seeded_subset(gf_dataset_count(dtr), job->limit_train, job->seed, &ntr);
        if (dva) iva = gf_seeded_subset(gf_dataset_count(dva), job->limit_val, job->seed + 1, &nva);
        oktr = malloc((size_t)ntr + 1);
        if (dva) okva = malloc((size_t)nva + 1);
        if (!itr || !oktr || (dva && (!iva || !okva))) st = gf_fail(ctx, GF_ERR_MEMORY, "out of host memory");
    }
    /* a batch larger than the data buys nothing and would size the block's and the trunk pass's buffers for
     * it (--batch 1000000 on 6 images took 8 GB): clamp it, results are unchanged */
    gf_job clamped;
    if (st == GF_OK && job->batch > (ntr > nva ? ntr : nva) && (ntr > 0 || nva > 0)) {
        clamped = *job;
        clamped.batch = ntr > nva ? ntr : nva;
        job = &clamped;
    }
    if (st == GF_OK) st = gf_block_create(ctx, c, h, w, nodes, nn, job->batch, &blk);
    if (st == GF_OK && !(theta = malloc(gf_block_param_count(blk) * sizeof(float)))) st = gf_fail(ctx, GF_ERR_MEMORY, "out of memory");
    if (st == GF_OK && (job->random & (GF_JOB_RANDOM_THETA1 | GF_JOB_RANDOM_THETA2)))
        st = gf_model_randomize(ctx, m, bi, (job->random & GF_JOB_RANDOM_THETA1) != 0,
                                (job->random & GF_JOB_RANDOM_THETA2) != 0, job->seed);
    if (st == GF_OK) st = gf_model_block_theta(ctx, m, bi, blk, theta);
    /* a classifier needs two classes: one class trains to loss 0 and 100 % and means nothing */
    if (st == GF_OK && !multi && ntr > 0) {
        int first = gf_dataset_label(dtr, itr[0]), other = 0;
        for (int i = 1; i < ntr && !other; i++) other = gf_dataset_label(dtr, itr[i]) != first;
        if (!other)
            st = gf_fail(ctx, GF_ERR_INPUT, "training data %s: all %d samples%s are of one class ('%s'): a classifier "
                         "needs at least two classes", job->data_path, ntr, job->limit_train ? " of the --limit subset" : "",
                         gf_dataset_class_name(dtr, first) ? gf_dataset_class_name(dtr, first) : "?");
    } else if (st == GF_OK && multi && ntr > 0) {
        float *a = malloc((size_t)K * sizeof(float)), *b = malloc((size_t)K * sizeof(float));
        int varies = 0;
        if (!a || !b) st = gf_fail(ctx, GF_ERR_MEMORY, "out of host memory");
        else gf_dataset_targets(dtr, itr[0], a);
        for (int i = 1; st == GF_OK && i < ntr && !varies; i++) {
            gf_dataset_targets(dtr, itr[i], b);
            varies = memcmp(a, b, (size_t)K * sizeof(float)) != 0;
        }
        if (st == GF_OK && !varies)
            st = gf_fail(ctx, GF_ERR_INPUT, "training data %s: all %d samples carry the same labels: a multi-label "
                         "classifier needs at least one label that is on some rows and not on others", job->data_path, ntr);
        free(a); free(b);
    }
    /* the samples' content belongs to the job: a resume on changed data would mix two trainings */
    if (st == GF_OK) {
        uint64_t dk = GF_FNV_INIT;
        for (int i = 0; i < ntr; i++) { uint64_t k = gf_dataset_sample_key(dtr, itr[i]); dk = gf_fnv1a(dk, &k, sizeof k); }
        for (int i = 0; dva && i < nva; i++) { uint64_t k = gf_dataset_sample_key(dva, iva[i]); dk = gf_fnv1a(dk, &k, sizeof k); }
        char hex[32];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)dk);
        if (config) cJSON_AddStringToObject(config, "data_fnv1a64", hex);
        cJSON *meta = have_ck && ck.meta ? cJSON_Parse(ck.meta) : NULL;
        const cJSON *was = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(meta, "config"), "data_fnv1a64");
        if (have_ck && (!cJSON_IsString(was) || strcmp(was->valuestring, hex)))
            st = gf_fail(ctx, GF_ERR_INPUT, "--resume: the training or evaluation data changed since checkpoint %s was "
                         "written (contents, or file sizes and times); start a new run", ck_path);
        cJSON_Delete(meta);
    }
    if (st == GF_OK) st = trunk_pass(ctx, job, m, bi, "train", dtr, itr, ntr, S, &atr, oktr, res);
    if (st == GF_OK && dva && !res->stopped) st = trunk_pass(ctx, job, m, bi, "val", dva, iva, nva, S, &ava, okva, res);
    if (!job->quiet && dtr) report_dataset(ctx, dtr);
    if (!job->quiet && dva) report_dataset(ctx, dva);
    gf_cached_set str = {0}, sva = {0};
    if (st == GF_OK && !res->stopped) st = make_set(ctx, dtr, itr, ntr, S, atr.z0, oktr, K, multi, &str, &ltr, &ttr);
    if (st == GF_OK && dva && !res->stopped) st = make_set(ctx, dva, iva, nva, S, ava.z0, okva, K, multi, &sva, &lva, &tva);
    gf_cached_set sho = {0};
    if (st == GF_OK && !res->stopped && job->holdout > 0)
        st = gf_holdout_split(ctx, &str, atr.z0, ltr, ttr, job->holdout, job->seed, &sho);
    res->n_hold = sho.n;
    res->n_train = str.n; res->n_val = dva ? sva.n : 0; res->classes = K; res->multi_label = multi;
    if (st == GF_OK && job->run_dir && !res->stopped) {
        char path[1200];
        if (gf_mkdirs(job->run_dir) != 0) st = gf_fail(ctx, GF_ERR_IO, "cannot create run directory %s: %s", job->run_dir, strerror(errno));
        snprintf(path, sizeof path, "%s/metrics.jsonl", job->run_dir);
        /* on resume: drop lines logged after the checkpoint, then append */
        if (st == GF_OK && have_ck && metrics_bytes >= 0 && truncate(path, metrics_bytes) != 0 && errno != ENOENT)
            st = gf_fail(ctx, GF_ERR_IO, "cannot truncate %s: %s", path, strerror(errno));
        if (st == GF_OK && !(log = fopen(path, have_ck ? "a" : "w")))
            st = gf_fail(ctx, GF_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    }
    epoch_ctx ec = {job, log, multi, ctx, config, NULL, blk, res->top, multi ? "sigmoid_bce" : "softmax", dtr,
                    dva ? &sva : NULL, NULL, files ? files : cJSON_CreateObject(), metrics_hash};
    files = NULL;
    gf_train_options o;
    gf_train_options_default(&o);
    o.epochs = job->epochs; o.probe_epochs = job->probe_epochs ? job->probe_epochs : 10 * job->epochs; o.batch = job->batch; o.seed = job->seed;
    o.lr_halve_every = job->lr_halve_every; o.lr_cosine = job->lr_cosine; o.max_device_mem = job->max_device_mem;
    o.cache_half = job->cache_f16; o.quiet = job->quiet;
    o.optim.adam = !job->sgd; o.optim.lr = job->lr; o.optim.beta1 = job->beta1; o.optim.beta2 = job->beta2;
    o.optim.momentum = job->momentum; o.optim.weight_decay = job->weight_decay; o.optim.clip_norm = job->clip_norm;
    o.ntk = job->ntk; o.eval_every = job->eval_every;
    o.holdout = sho.n > 0 ? &sho : NULL;
    o.select = job->select;
    o.probe_solver = job->probe_sgd ? GF_PROBE_SGD : GF_PROBE_LBFGS;
    o.probe_l2 = job->probe_l2;
    o.probe_lr = job->probe_lr;
    o.finetune_lr = job->finetune_lr > 0 ? job->finetune_lr : job->lr / 10;
    o.lr_auto = job->lr_auto;
    o.random_omega = (job->random & GF_JOB_RANDOM_OMEGA) != 0;
    o.on_epoch = on_epoch; o.user = &ec;
    o.on_step = on_step;
    o.report_seconds = ctx->progress_live ? 0.5 : job->log_every_secs > 0 ? job->log_every_secs : 0;
    o.report_steps = ctx->progress_live ? 0 : (job->log_every > 0 ? job->log_every : 50);
    if (st == GF_OK && job->log_json && !(ec.json = fopen(job->log_json, "w")))
        st = gf_fail(ctx, GF_ERR_IO, "cannot write --log-json %s: %s", job->log_json, strerror(errno));
    o.on_method = save_model;
    o.checkpoint_path = job->run_dir ? ck_path : NULL;
    o.checkpoint_every = job->checkpoint_every;
    o.stop = job->stop;
    o.checkpoint_meta = checkpoint_meta;
    o.resume = have_ck ? &ck : NULL;
    if (st == GF_OK && !res->stopped) st = gf_train(ctx, blk, theta, &str, dva ? &sva : NULL, job->methods, &o, &tres);
    if (st == GF_OK) {
        res->cache_on_device = tres.cache_on_device;
        res->cache_bytes = tres.cache_bytes; res->primal_cache_bytes = tres.primal_cache_bytes;
        for (int i = 0; i < 4; i++) {
            if (i == 0 && !(job->methods & 1u)) continue;   /* trained for ω̄ but not asked for */
            res->ran[i] = tres.m[i].ran;
            res->train_loss[i] = tres.m[i].train_loss; res->train_metric[i] = tres.m[i].train_metric;
            res->val_loss[i] = tres.m[i].val_loss; res->val_metric[i] = tres.m[i].val_metric;
            res->seconds[i] = tres.m[i].seconds;
            res->hold_loss[i] = tres.m[i].hold_loss; res->hold_metric[i] = tres.m[i].hold_metric;
            res->best_epoch[i] = tres.m[i].best_epoch; res->epochs_run[i] = tres.m[i].epochs_run;
            res->diverged[i] = tres.m[i].diverged;
            res->lr[i] = i ? tres.m[i].lr : NAN;
        }
        res->probe_l2 = tres.m[0].probe_l2;
        res->lr_auto_used = job->lr_auto && res->n_hold > 0;
    }
    res->checkpoints = tres.checkpoints;
    if (st == GF_OK && tres.stopped) {
        res->stopped = 1;
        if (job->run_dir) snprintf(res->checkpoint, sizeof res->checkpoint, "%s", ck_path);
    }
    if (st == GF_OK && !res->stopped && job->run_dir) {
        st = write_results(ctx, job, res, dtr, config);
        if (st == GF_OK) unlink(ck_path);   /* finished: the saved models and results are the outputs */
    }
    if (log) fclose(log);
    if (ec.json) fclose(ec.json);
    cJSON_Delete(config);
    cJSON_Delete(ec.files);
    cJSON_Delete(files);
    free(ec.meta);
    gf_ckpt_free(&ck);
    gf_train_result_free(&tres);
    act_free(&atr); act_free(&ava);
    free(theta); free(ttr); free(tva); free(itr); free(iva); free(ltr); free(lva);
    free(oktr); free(okva);
    gf_dataset_free(dtr); gf_dataset_free(dva);
    gf_block_free(blk);
    gf_model_free(m);
    if (lock_fd >= 0) close(lock_fd);
    return st;
}

/* ---------------- adapted models: load, predict, evaluate ---------------- */

struct gf_adapted {
    gf_ctx *ctx;
    char *path;
    gf_model *model;
    int bi, K, d, multi, max_batch;
    size_t S;                   /* floats per image at the cut */
    gf_method method;
    char top[128];
    char **classes;
    gf_block *blk;
    float *theta;
    gf_lin *lin;
    gf_exec *exec;              /* trunk, created on the first predict */
    cl_mem x;                   /* block input */
};

int gf_adapted_detect(const char *path) {
    gf_st_file f;
    char err[256];
    if (gf_st_open(path, &f, err, sizeof err) != GF_OK) return 0;
    int yes = gf_st_meta(&f, "gradfeat.adapted") != NULL;
    gf_st_close(&f);
    return yes;
}

void gf_adapted_free(gf_adapted *a) {
    if (!a) return;
    for (int k = 0; a->classes && k < a->K; k++) free(a->classes[k]);
    free(a->classes);
    gf_lin_free(a->lin);
    gf_exec_free(a->exec);
    gf_block_free(a->blk);
    gf_model_free(a->model);
    gf_buf_release(&a->x);
    free(a->theta); free(a->path);
    free(a);
}

const gf_model *gf_adapted_base(const gf_adapted *a) { return a->model; }
int gf_adapted_classes(const gf_adapted *a) { return a->K; }
const char *gf_adapted_class_name(const gf_adapted *a, int k) { return k >= 0 && k < a->K ? a->classes[k] : NULL; }
const char *gf_adapted_method(const gf_adapted *a) { return gf_method_name(a->method); }
const char *gf_adapted_top(const gf_adapted *a) { return a->top; }
int gf_adapted_multi_label(const gf_adapted *a) { return a->multi; }

/* Tensor `name` of the file into dst (count floats), shape checked by size. */
static gf_status read_tensor(gf_ctx *ctx, const gf_st_file *f, FILE *fp, const char *name, size_t count, float *dst) {
    int i = gf_st_find(f, name);
    char err[512];
    if (i < 0) return gf_fail(ctx, GF_ERR_INPUT, "%s: adapted model lacks tensor %s", f->path, name);
    if (f->t[i].numel != count)
        return gf_fail(ctx, GF_ERR_INPUT, "%s: tensor %s has %llu values, the model needs %zu", f->path, name,
                       (unsigned long long)f->t[i].numel, count);
    gf_status st = gf_st_read_f32(f, fp, i, dst, err, sizeof err);
    return st == GF_OK ? GF_OK : gf_fail(ctx, st, "%s", err);
}

gf_status gf_adapted_load(gf_ctx *ctx, const char *path, int max_batch, gf_adapted **out) {
    *out = NULL;
    gf_adapted *a = calloc(1, sizeof *a);
    if (!a) return gf_fail(ctx, GF_ERR_MEMORY, "out of memory");
    a->ctx = ctx;
    a->max_batch = max_batch < 1 ? 1 : max_batch;
    a->path = strdup(path);
    gf_st_file f = {0};
    FILE *fp = NULL;
    cJSON *meta = NULL;
    float *w1 = NULL, *b1 = NULL, *omega = NULL, *vec = NULL;
    char err[512];
    gf_status st = gf_st_open(path, &f, err, sizeof err);
    if (st != GF_OK) st = gf_fail(ctx, st, "%s", err);
    const char *text = st == GF_OK ? gf_st_meta(&f, "gradfeat.adapted") : NULL;
    if (st == GF_OK && !text)
        st = gf_fail(ctx, GF_ERR_INPUT, "%s is a plain model, not an adapted one (no gradfeat.adapted metadata; "
                     "`gradfeat train --run-dir DIR` writes DIR/<method>.safetensors)", path);
    if (st == GF_OK && !(meta = cJSON_Parse(text))) st = gf_fail(ctx, GF_ERR_INPUT, "%s: gradfeat.adapted is not JSON", path);
    const cJSON *jm = meta ? cJSON_GetObjectItemCaseSensitive(meta, "method") : NULL;
    const cJSON *jt = meta ? cJSON_GetObjectItemCaseSensitive(meta, "top") : NULL;
    const cJSON *jl = meta ? cJSON_GetObjectItemCaseSensitive(meta, "loss") : NULL;
    const cJSON *jc = meta ? cJSON_GetObjectItemCaseSensitive(meta, "classes") : NULL;
    const cJSON *jv = meta ? cJSON_GetObjectItemCaseSensitive(meta, "format_version") : NULL;
    int mi = cJSON_IsString(jm) ? gf_method_parse(jm->valuestring) : -1;
    if (st == GF_OK && (!cJSON_IsString(jv) || strcmp(jv->valuestring, "1")))
        st = gf_fail(ctx, GF_ERR_INPUT, "%s: gradfeat.adapted format_version must be \"1\"", path);
    if (st == GF_OK && (mi < 0 || !cJSON_IsString(jt) || !cJSON_IsString(jl) || !cJSON_IsArray(jc) ||
                        cJSON_GetArraySize(jc) < 1))
        st = gf_fail(ctx, GF_ERR_INPUT, "%s: gradfeat.adapted needs method, top, loss and classes", path);
    if (st == GF_OK) {
        a->method = (gf_method)mi;
        snprintf(a->top, sizeof a->top, "%s", jt->valuestring);
        a->multi = !strcmp(jl->valuestring, "sigmoid_bce");
        a->K = cJSON_GetArraySize(jc);
        a->classes = calloc((size_t)a->K, sizeof *a->classes);
        for (int k = 0; a->classes && k < a->K; k++) {
            const cJSON *c = cJSON_GetArrayItem(jc, k);
            a->classes[k] = strdup(cJSON_IsString(c) ? c->valuestring : "?");
        }
        if (!a->classes) st = gf_fail(ctx, GF_ERR_MEMORY, "out of memory");
    }
    if (st == GF_OK) st = gf_model_load(ctx, path, &a->model);
    if (st == GF_OK && (a->bi = gf_model_find_block(a->model, a->top)) < 0)
        st = gf_fail(ctx, GF_ERR_INPUT, "%s: top block %s is not in the model's graph", path, a->top);
    gf_bnode nodes[GF_BLOCK_MAX_NODES];
    int nn = 0, c = 0, h = 0, w = 0;
    if (st == GF_OK) st = gf_model_block_nodes(ctx, a->model, a->bi, nodes, &nn, &c, &h, &w);
    if (st == GF_OK) st = gf_block_create(ctx, c, h, w, nodes, nn, a->max_batch, &a->blk);
    size_t pc = a->blk ? gf_block_param_count(a->blk) : 0;
    if (st == GF_OK) {
        a->S = (size_t)c * h * w;
        a->d = gf_block_feature_dim(a->blk);
        a->theta = malloc((pc + 1) * sizeof(float));
        vec = calloc(pc + 1, sizeof(float));
        w1 = malloc((size_t)a->K * a->d * sizeof(float));
        omega = malloc((size_t)a->K * a->d * sizeof(float));
        b1 = malloc((size_t)a->K * sizeof(float));
        if (!a->theta || !vec || !w1 || !omega || !b1) st = gf_fail(ctx, GF_ERR_MEMORY, "out of memory");
    }
    if (st == GF_OK) st = gf_model_block_theta(ctx, a->model, a->bi, a->blk, a->theta);
    if (st == GF_OK && !(fp = gf_fopen_regular(path, err, sizeof err))) st = gf_fail(ctx, GF_ERR_INPUT, "%s: %s", path, err);
    size_t kd = (size_t)a->K * a->d;
    if (st == GF_OK) st = read_tensor(ctx, &f, fp, "gradfeat.head.w1", kd, w1);
    if (st == GF_OK) st = read_tensor(ctx, &f, fp, "gradfeat.head.b1", (size_t)a->K, b1);
    if (st == GF_OK) st = read_tensor(ctx, &f, fp, "gradfeat.head.omega_bar", kd, omega);
    if (st == GF_OK && a->method != GF_METHOD_LINEAR) {
        /* the block vector per node (finetune: θ, else w2); the layout is this device's */
        const gf_bnode *bn = gf_block_nodes(a->blk, &nn);
        if (a->method == GF_METHOD_FINETUNE) memcpy(vec, a->theta, pc * sizeof(float));
        for (int i = 0; i < nn && st == GF_OK; i++) {
            char name[160];
            if (bn[i].w_off >= 0 && bn[i].w_count) {
                snprintf(name, sizeof name, "gradfeat.block.%s.weight", bn[i].name);
                st = read_tensor(ctx, &f, fp, name, bn[i].w_count, vec + bn[i].w_off);
            }
            if (st == GF_OK && bn[i].b_off >= 0 && bn[i].b_count) {
                snprintf(name, sizeof name, "gradfeat.block.%s.bias", bn[i].name);
                st = read_tensor(ctx, &f, fp, name, bn[i].b_count, vec + bn[i].b_off);
            }
        }
    }
    if (st == GF_OK)
        st = gf_lin_create(ctx, a->blk, a->method, a->K, a->multi ? GF_LOSS_SIGMOID_BCE : GF_LOSS_SOFTMAX, a->theta,
                           omega, b1, &a->lin);
    if (st == GF_OK && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(meta, "ntk"))) st = gf_lin_set_ntk(ctx, a->lin, 1);
    if (st == GF_OK) st = gf_lin_write_params(ctx, a->lin, a->method != GF_METHOD_LINEAR ? vec : NULL, w1, b1);
    if (st == GF_OK) st = gf_buf_create(ctx, (size_t)a->max_batch * a->S * sizeof(float), "block input", &a->x);
    if (fp) fclose(fp);
    gf_st_close(&f);
    cJSON_Delete(meta);
    free(w1); free(b1); free(omega); free(vec);
    if (st != GF_OK) { gf_adapted_free(a); return st; }
    *out = a;
    return GF_OK;
}

gf_status gf_adapted_predict(gf_adapted *a, const float *x, int n, float *logits) {
    gf_ctx *ctx = a->ctx;
    if (n < 1 || n > a->max_batch) return gf_fail(ctx, GF_ERR_USAGE, "predict: %d images, at most %d per call", n, a->max_batch);
    int cut = gf_model_block_cut(a->model, a->bi);
    size_t bytes = (size_t)n * a->S * sizeof(float);
    if (cut != GF_NODE_INPUT) {     /* trunk on the device, its output copied into the block input */
        if (!a->exec) GF_TRY(gf_exec_create(ctx, a->model, a->max_batch, &a->exec));
        GF_TRY(run_trunk(ctx, a->exec, a->model, x, n, cut));
        GF_TRY(gf_buf_copy(ctx, gf_exec_buffer(a->exec, cut), 0, a->x, 0, bytes));
    } else {
        GF_TRY(gf_buf_write(ctx, a->x, 0, bytes, x));
    }
    GF_TRY(gf_lin_forward(ctx, a->lin, n, a->x));
    return gf_buf_read(ctx, gf_lin_logits_buffer(a->lin), 0, (size_t)n * a->K * sizeof(float), logits);
}

gf_status gf_adapted_eval(gf_adapted *a, const gf_eval_options *eo, gf_eval_result *r) {
    gf_ctx *ctx = a->ctx;
    memset(r, 0, sizeof *r);
    int batch = eo->batch > 0 ? eo->batch : 64;
    if (batch > a->max_batch) return gf_fail(ctx, GF_ERR_USAGE, "eval: batch %d exceeds the model's %d", batch, a->max_batch);
    gf_job job;
    gf_job_defaults(&job);
    job.model_path = a->path; job.data_path = eo->data_path; job.data_split = eo->split; job.batch = batch;
    job.seed = eo->seed; job.threads = eo->threads; job.quiet = eo->quiet; job.cache_dir = eo->cache_dir;
    gf_dataset *ds = NULL;
    gf_dataset_options dopt;
    gf_dataset_options_init(&dopt);
    dopt.split = eo->split;
    char err[1024];
    gf_status st = gf_dataset_open(eo->data_path, &dopt, &ds, err, sizeof err);
    if (st != GF_OK) return gf_fail(ctx, st, "%s", err);
    int K = gf_dataset_num_classes(ds), multi = gf_dataset_is_multi_label(ds);
    if (K != a->K || multi != a->multi)
        st = gf_fail(ctx, GF_ERR_INPUT, "%s has %d classes%s, the model %s was trained on %d%s", eo->data_path, K,
                     multi ? " (multi-label)" : "", a->path, a->K, a->multi ? " (multi-label)" : "");
    for (int k = 0; k < K && st == GF_OK; k++) {
        const char *n = gf_dataset_class_name(ds, k);
        char buf[16];
        if (!n) { snprintf(buf, sizeof buf, "%d", k); n = buf; }
        if (strcmp(n, a->classes[k]))
            st = gf_fail(ctx, GF_ERR_INPUT, "%s: class %d is '%s', the model %s calls it '%s'", eo->data_path, k, n,
                         a->path, a->classes[k]);
    }
    int n = 0, *idx = NULL, *labels = NULL;
    float *targets = NULL;
    act_store az = {0};
    unsigned char *ok = NULL;
    gf_job_result jr;
    memset(&jr, 0, sizeof jr);
    if (st == GF_OK) {
        /* seed + 1: the subset `train --val-limit N --seed S` evaluated */
        idx = gf_seeded_subset(gf_dataset_count(ds), eo->limit, eo->seed + 1, &n);
        ok = malloc((size_t)n + 1);
        if (!idx || !ok) st = gf_fail(ctx, GF_ERR_MEMORY, "out of host memory for %d samples", n);
    }
    if (st == GF_OK) st = trunk_pass(ctx, &job, a->model, a->bi, "eval", ds, idx, n, (int)a->S, &az, ok, &jr);
    if (!eo->quiet && ds) report_dataset(ctx, ds);
    gf_cached_set set = {0};
    if (st == GF_OK) st = make_set(ctx, ds, idx, n, (int)a->S, az.z0, ok, K, multi, &set, &labels, &targets);
    if (st == GF_OK) st = gf_train_evaluate(ctx, a->lin, &set, batch, &r->loss, &r->metric);
    r->n = set.n; r->classes = K; r->multi_label = multi;
    act_free(&az);
    free(idx); free(ok); free(labels); free(targets);
    gf_dataset_free(ds);
    return st;
}
