/* Adapted models: the file a finished method leaves in the run directory (written here, read back by
 * `gradfeat predict` / `eval`), and loading, predicting and evaluating with one. Format: models/README.md. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "gradfeat_data.h"
#include "gradfeat_train.h"
#include "model.h"
#include "train.h"
#include "gf_file.h"
#include "runrecord.h"
#include "job_internal.h"

/* ---------------- adapted model files: writing ---------------- */

gf_status gf_saved_model_write(gf_ctx *ctx, const char *path, const gf_saved_model *s, uint64_t *file_xxh3) {
    gf_st_file f = {0};
    char err[1024];
    void *raw = NULL; size_t n = 0;
    cJSON *hdr = NULL;
    gf_sink data = {0};
    gf_status st;
    if (gf_onnx_path(s->base_path)) {   /* an ONNX base model: the file it reads as (host/graph/onnx_import.c) */
        st = gf_onnx_import(s->base_path, &hdr, &data, err, sizeof err);
        if (st != GF_OK) st = gf_fail(ctx, st, "%s", err);
    } else {
        st = gf_st_open(s->base_path, &f, err, sizeof err);
        if (st != GF_OK) return gf_fail(ctx, st, "%s", err);
        st = gf_read_file(ctx, s->base_path, &raw, &n);
        if (st == GF_OK && n != f.file_size)
            st = gf_fail(ctx, GF_ERR_INPUT, "%s changed while it was being read", s->base_path);
        hdr = st == GF_OK ? cJSON_Duplicate(f.header, 1) : NULL;
        if (st == GF_OK && !hdr) st = gf_fail(ctx, GF_ERR_MEMORY, "out of memory");
        if (st == GF_OK) gf_sink_put(&data, (const char *)raw + f.data_off, n - f.data_off);
    }
    if (st == GF_OK) {
        cJSON *meta = cJSON_GetObjectItemCaseSensitive(hdr, "__metadata__");
        if (!meta) meta = cJSON_AddObjectToObject(hdr, "__metadata__");
        cJSON_DeleteItemFromObjectCaseSensitive(meta, "gradfeat.adapted");
        cJSON_AddStringToObject(meta, "gradfeat.adapted", s->adapted_json);
        int64_t kd[2] = {s->K, s->d}, k[1] = {s->K};
        gf_st_add_f32(hdr, &data, "gradfeat.head.w1", s->w1, 2, kd);
        gf_st_add_f32(hdr, &data, "gradfeat.head.b1", s->b1, 1, k);
        gf_st_add_f32(hdr, &data, "gradfeat.head.omega_bar", s->omega_bar, 2, kd);
        int nn = 0;
        const gf_node *nodes = gf_block_nodes(s->blk, &nn);
        for (int i = 0; s->block_vec && i < nn; i++) {
            char name[160];
            int64_t cnt[1];
            if (nodes[i].w_off >= 0 && nodes[i].w_count) {
                snprintf(name, sizeof name, "gradfeat.block.%s.weight", nodes[i].name);
                cnt[0] = (int64_t)nodes[i].w_count;
                gf_st_add_f32(hdr, &data, name, s->block_vec + nodes[i].w_off, 1, cnt);
            }
            if (nodes[i].b_off >= 0 && nodes[i].b_count) {
                snprintf(name, sizeof name, "gradfeat.block.%s.bias", nodes[i].name);
                cnt[0] = (int64_t)nodes[i].b_count;
                gf_st_add_f32(hdr, &data, name, s->block_vec + nodes[i].b_off, 1, cnt);
            }
        }
        st = gf_st_write(ctx, path, hdr, &data, file_xxh3);
    }
    cJSON_Delete(hdr);
    free(raw); free(data.p);
    gf_st_close(&f);
    return st;
}

gf_status gf_job_save_model(void *user, gf_method m, const gf_method_result *r, const gf_method_result *probe) {
    epoch_ctx *ec = user;
    const gf_job *job = ec->job;
    if (!job->run_dir || !(job->methods & (1u << m))) return GF_OK;
    GF_TRY(gf_job_write_eval_detail(ec, m, r));
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
    uint64_t h = 0;   /* the file's checksum from the bytes just written: no reading it back */
    gf_status st = gf_saved_model_write(ec->ctx, path, &sm, &h);
    free(text);
    snprintf(path, sizeof path, "%s.safetensors", gf_method_name(m));
    return st == GF_OK ? gf_job_record_hash(ec, path, h) : st;
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
    int nn = 0;
    if (st == GF_OK) st = gf_model_block_create(ctx, a->model, a->bi, a->max_batch, &a->blk);
    size_t pc = a->blk ? gf_block_param_count(a->blk) : 0;
    if (st == GF_OK) {
        a->S = (size_t)gf_block_input_size(a->blk);
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
        const gf_node *bn = gf_block_nodes(a->blk, &nn);
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
        GF_TRY(gf_exec_run_to(a->exec, x, n, cut));
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
    gf_act_store az = {0};
    unsigned char *ok = NULL;
    gf_job_result jr;
    memset(&jr, 0, sizeof jr);
    if (st == GF_OK) {
        /* seed + 1: the subset `train --val-limit N --seed S` evaluated */
        idx = gf_seeded_subset(gf_dataset_count(ds), eo->limit, eo->seed + 1, &n);
        ok = malloc((size_t)n + 1);
        if (!idx || !ok) st = gf_fail(ctx, GF_ERR_MEMORY, "out of host memory for %d samples", n);
    }
    if (st == GF_OK) st = gf_trunk_pass(ctx, &job, NULL, a->model, a->bi, "eval", ds, idx, n, (int)a->S, &az, ok, 0, &jr);
    if (!eo->quiet && ds) gf_job_report_dataset(ctx, ds);
    gf_cached_set set = {0};
    if (st == GF_OK) st = gf_make_cached_set(ctx, ds, idx, n, (int)a->S, az.z0, ok, K, multi, &set, &labels, &targets);
    if (st == GF_OK) st = gf_train_evaluate(ctx, a->lin, &set, batch, &r->loss, &r->metric);
    r->n = set.n; r->classes = K; r->multi_label = multi;
    gf_act_store_free(&az);
    free(idx); free(ok); free(labels); free(targets);
    gf_dataset_free(ds);
    return st;
}
