/* The activation cache: the trunk pass over a split (the frozen trunk run once per sample) and its
 * outputs, kept in a memory-mapped cache file named by the content key of the pass (or in host memory),
 * then compacted into the gf_cached_set gf_train reads. See job_internal.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "gradfeat_data.h"
#include "gradfeat_train.h"
#include "model.h"
#include "train.h"
#include "gf_file.h"
#include "gf_dist.h"
#include "job_internal.h"

/* Content key of a trunk pass: model bytes (model_hash: their hash, NULL: read and hashed here), cut,
 * preprocessing, the samples. */
static gf_status cache_key(gf_ctx *ctx, const gf_job *job, const uint64_t *model_hash, const char *cut,
                           const gf_preprocess *pp, gf_dataset *ds, const int *idx, int n, uint64_t *key) {
    uint64_t h;
    if (model_hash) {
        h = *model_hash;
    } else {
        void *data; size_t len;
        GF_TRY(gf_read_file(ctx, job->model_path, &data, &len));
        h = gf_fnv1a(GF_FNV_INIT, data, len);
        free(data);
    }
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
void gf_job_report_dataset(gf_ctx *ctx, const gf_dataset *ds) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return;
    gf_dataset_report(ds, f, 5);
    if (fclose(f) == 0) gf_progress_lines(ctx, text);
    free(text);
}

/* the cache file's layout: job_internal.h, gf_act_store */
static size_t act_z0_offset(int n) { return ((size_t)32 + (size_t)n + 63) & ~(size_t)63; }
static size_t act_file_bytes(int n, int S) { return act_z0_offset(n) + (size_t)n * S * sizeof(float); }

void gf_act_store_free(gf_act_store *as) {
    if (as->map) munmap(as->map, as->map_bytes);
    else free(as->z0);
    memset(as, 0, sizeof *as);
}

static gf_status act_alloc_host(gf_ctx *ctx, gf_act_store *as, int n, int S) {
    gf_act_store_free(as);
    if (!(as->z0 = malloc((size_t)(n ? n : 1) * S * sizeof(float))))
        return gf_fail(ctx, GF_ERR_MEMORY, "out of host memory for the activation cache (%d x %d floats): drop "
                       "--no-cache so that it is kept in a memory-mapped file", n, S);
    return GF_OK;
}

/* Map a complete cache file privately (copy-on-write: compacting over failed
 * samples must not change the file). 1 on success; anything off is a miss. */
static int act_map_file(const char *path, uint64_t key, int n, int S, gf_act_store *as, unsigned char *ok) {
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
    gf_act_store_free(as);
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
static gf_status act_create_file(gf_ctx *ctx, const char *tmp, int n, int S, gf_act_store *as) {
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
    gf_act_store_free(as);
    as->map = map; as->map_bytes = bytes;
    as->z0 = (float *)((char *)map + act_z0_offset(n));
    return GF_OK;
}

/* Header and ok[] into the new file, flush, rename into place, then map the
 * finished file privately. */
static gf_status act_finish_file(gf_ctx *ctx, const char *tmp, const char *path, uint64_t key, int n, int S,
                                 gf_act_store *as, const unsigned char *ok) {
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

/* Run the frozen trunk over the samples idx[0..n) and keep the cut's output.
 * Several processes (gf_dist_size() > 1): each rank runs the trunk over its contiguous share of the
 * samples (whole batches: gf_dist_share_units), the shares are gathered so that every rank holds all
 * outputs, and rank 0 alone writes the cache file (temp file + rename, as with one process). The file does not depend on the number
 * of ranks, so a later run with any number reuses it. A file found by rank 0 but not by another rank (a
 * cache directory per host) is sent to that rank by rank 0; found by all, it is read by all. */
gf_status gf_trunk_pass(gf_ctx *ctx, const gf_job *job, const uint64_t *model_hash, const gf_model *m, int bi,
                        const char *what, gf_dataset *ds, const int *idx, int n, int S, gf_act_store *as,
                        unsigned char *ok, int refresh, gf_job_result *res) {
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
    int hit = 0, P = gf_dist_size(), me = gf_dist_rank();
    if (use_cache) {
        GF_TRY(cache_key(ctx, job, model_hash, bin.input, pp, ds, idx, n, &key));
        snprintf(path, sizeof path, "%s/%016llx.bin", dir, (unsigned long long)key);
        hit = !refresh && act_map_file(path, key, n, S, as, ok);
    }
    if (P > 1) {   /* agree: found by all ranks, found by rank 0 only, or computed */
        double v[2] = {hit, me == 0 && hit};
        GF_TRY(gf_dist_sum_f64(ctx, v, 2));
        if (v[0] < P && v[1] > 0) {
            if (!hit) GF_TRY(act_alloc_host(ctx, as, n, S));
            GF_TRY(gf_dist_bcast(ctx, as->z0, (size_t)n * S * sizeof(float), 0));
            GF_TRY(gf_dist_bcast(ctx, ok, (size_t)n, 0));
            hit = 1;
        } else if (v[0] < P && hit) {
            gf_act_store_free(as);   /* rank 0 computes it anew: so do we, our share */
            hit = 0;
        }
    }
    if (hit) {
        if (!job->quiet) gf_progress(ctx, GF_PROGRESS_LINE, "%s: trunk outputs reused from the activation cache %s", what, path);
        res->cache_reused = 1;
        return GF_OK;
    }
    if (me != 0) use_cache = 0;   /* rank 0 writes the file */
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
    /* this rank's share: whole batches of the one-process pass (the loader batches idx in order), so that
     * every image is in a batch of the same images as with one process: the trunk's outputs are then the
     * same bits (GEMM kernels and their summation order depend on the batch size) */
    int s_lo = 0, s_hi = n;
    gf_dist_share_units(n, job->batch, me, P, &s_lo, &s_hi);
    gf_loader_options lo = {0};
    lo.batch_size = job->batch; lo.threads = job->threads ? job->threads : -1; lo.epochs = 1;
    lo.indices = idx + s_lo; lo.n_indices = s_hi - s_lo; lo.seed = job->seed;
    /* the pass to the block's cut alone: the executor holds its few largest activations, not all (first touch
     * of fresh memory, and a laptop's RAM) */
    gf_status st = from_input ? GF_OK : gf_exec_create_to(ctx, m, job->batch, gf_model_block_cut(m, bi), &e);
    if (st == GF_OK && !from_input && gf_exec_node_size(e, bin.input) != (size_t)S)
        st = gf_fail(ctx, GF_ERR_INTERNAL, "trunk output %s has %zu floats per image, the top block wants %d", bin.input,
                     gf_exec_node_size(e, bin.input), S);
    if (st == GF_OK && s_hi > s_lo) {
        gf_status ls = gf_loader_create(ds, pp, &lo, &ld, err, sizeof err);
        if (ls != GF_OK) st = gf_fail(ctx, ls, "%s", err);
    }
    if (st == GF_OK && !(tmp = malloc((size_t)job->batch * S * sizeof(float)))) st = gf_fail(ctx, GF_ERR_MEMORY, "out of memory");
    double t0 = gf_now(), last = t0;
    int done = 0, share = s_hi - s_lo;
    while (st == GF_OK && share > 0) {
        /* nothing to checkpoint yet; several ranks finish their shares and agree below */
        if (P == 1 && job->stop && *job->stop) { res->stopped = 1; break; }
        const gf_batch *b;
        gf_status ls = gf_loader_next(ld, &b, err, sizeof err);
        if (ls != GF_OK) { st = gf_fail(ctx, ls, "%s", err); break; }
        if (!b) break;
        if (b->count > 0) {
            const float *src = b->x;
            if (!from_input) {
                int cut = gf_model_block_cut(m, bi);
                st = gf_exec_run_to(e, b->x, b->count, cut);
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
        if (!job->quiet && (now - last > 2 || done == share)) {
            double rate = done / (now - t0);
            if (P > 1)   /* rank 0's share; the ranks run alike, so the job's rate is about P times it */
                gf_progress(ctx, GF_PROGRESS_LINE, "%s: trunk %d/%d images (rank 0's share of %d, %d ranks), %.0f img/s "
                            "per rank, ETA %.0f s", what, done, share, n, P, rate, (share - done) / rate);
            else
                gf_progress(ctx, GF_PROGRESS_LINE, "%s: trunk %d/%d images, %.0f img/s, ETA %.0f s", what, done, n, rate,
                            (n - done) / rate);
            last = now;
        }
    }
    if (P > 1 && st == GF_OK) {   /* every rank gets every share; a stop asked of any rank stops all */
        st = gf_dist_allgather_rows(ctx, z0, n, job->batch, (size_t)S * sizeof(float));
        if (st == GF_OK) st = gf_dist_allgather_rows(ctx, ok, n, job->batch, 1);
        double stop = job->stop && *job->stop;
        if (st == GF_OK) st = gf_dist_sum_f64(ctx, &stop, 1);
        if (st == GF_OK && stop > 0) res->stopped = 1;
    }
    res->trunk_seconds += gf_now() - t0;
    if (in_file) {
        if (st == GF_OK && !res->stopped) st = act_finish_file(ctx, tmp_path, path, key, n, S, as, ok);
        else { gf_act_store_free(as); unlink(tmp_path); }
    }
    free(tmp);
    free(row);
    gf_loader_free(ld);
    gf_exec_free(e);
    return st;
}

/* Labels / targets of the usable samples, compacting z0 over failed ones. */
gf_status gf_make_cached_set(gf_ctx *ctx, gf_dataset *ds, const int *idx, int n, int S, float *z0, const unsigned char *ok,
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
