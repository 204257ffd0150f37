/* ONNX -> the gradfeat model the Python converter (tools/convert_onnx.py) writes: the same graph JSON,
 * tensor names and float32 values, as an in-memory safetensors header + data area that the model loader
 * (model.c) then reads like a file. One pass over the nodes in file order (ONNX requires topological
 * order, onnx_ops.c) with static shapes tracked per tensor, integer shape arithmetic evaluated on the way
 * (onnx_fold.c: torch writes it for x.size() and a symbolic batch, read as 1); torch's erf-GELU and LayerNorm
 * subgraphs are found first (onnx_patterns.c), channels-last blocks (Transpose to NHWC and back) are views of
 * our NCHW nodes. Every size comes from the file and is checked before use; a failure names the node or tensor.
 * Here: the entry points, the read of the file (the wire-format depth check first) and the driver; without
 * protobuf-c only the entry points, and the import says what to install. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "onnx_imp.h"
#include "gf_file.h"

int gf_onnx_path(const char *path) {
    size_t n = strlen(path);
    if (n < 5) return 0;
    const char *e = path + n - 5;
    char low[6];
    for (int k = 0; k < 5; k++) low[k] = (char)(e[k] >= 'A' && e[k] <= 'Z' ? e[k] - 'A' + 'a' : e[k]);
    low[5] = 0;
    return !strcmp(low, ".onnx");
}

gf_status gf_model_convert_onnx(const char *onnx_path, const char *out_path, char *err, size_t err_size) {
    cJSON *hdr = NULL;
    gf_sink data = {0}, file = {0};
    gf_status st = gf_onnx_import(onnx_path, &hdr, &data, err, err_size);
    if (st == GF_OK && gf_st_serialize(hdr, &data, &file, 1) != GF_OK)
        st = gf_fail_msg(err, err_size, GF_ERR_MEMORY, "%s: out of memory writing the model", out_path);
    if (st == GF_OK) st = gf_write_file_atomic_msg(out_path, file.p, file.n, err, err_size);
    cJSON_Delete(hdr);
    free(data.p);
    free(file.p);
    return st;
}

#ifndef GF_HAVE_PROTOBUF_C

int gf_onnx_supported(void) { return 0; }

gf_status gf_onnx_import(const char *path, cJSON **hdr, gf_sink *data, char *err, size_t err_size) {
    (void)data;
    *hdr = NULL;
    return gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: this gradfeat was built without ONNX support (protobuf-c was not "
                       "found at build time): install libprotobuf-c-dev and protobuf-c-compiler and rebuild, or convert "
                       "the model with tools/convert_onnx.py", path);
}

#else

enum { MAX_NODES = 100000, MAX_DEPTH = 64, INPUT_NAME = 1 << 30 };
#define MAX_FILE ((uint64_t)2 << 30)   /* protobuf's own limit on one message */

int gf_onnx_supported(void) { return 1; }

/* ------------------------------------------------------------ wire-format depth check */

/* protobuf-c unpacks nested messages recursively: a crafted file of a few MB could nest them deep enough
 * to exhaust the stack, so the nesting is walked (iteration per level, recursion bounded) first. */
static int walk(const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t n, int depth) {
    if (depth > MAX_DEPTH) return 0;
    size_t at = 0;
    while (at < n) {
        uint64_t key = 0;
        int sh = 0;
        do { if (at >= n || sh > 63) return 1; key |= (uint64_t)(p[at] & 0x7f) << sh; sh += 7; } while (p[at++] & 0x80);
        unsigned wt = key & 7;
        uint64_t tag = key >> 3;
        if (wt == 0) { while (at < n && (p[at] & 0x80)) at++; at++; }
        else if (wt == 1) at += 8;
        else if (wt == 5) at += 4;
        else if (wt == 2) {
            uint64_t len = 0;
            sh = 0;
            do { if (at >= n || sh > 63) return 1; len |= (uint64_t)(p[at] & 0x7f) << sh; sh += 7; } while (p[at++] & 0x80);
            if (len > n - at) return 1;   /* malformed: protobuf-c refuses it */
            const ProtobufCFieldDescriptor *fd = tag <= 0x1fffffff ? protobuf_c_message_descriptor_get_field(desc, (unsigned)tag) : NULL;
            if (fd && fd->type == PROTOBUF_C_TYPE_MESSAGE &&
                !walk((const ProtobufCMessageDescriptor *)fd->descriptor, p + at, (size_t)len, depth + 1))
                return 0;
            at += (size_t)len;
        } else return 1;
    }
    return 1;
}


/* ------------------------------------------------------------ the model */

static int by_op(const void *a, const void *b) { return strcmp(((const badop *)a)->op, ((const badop *)b)->op); }

static gf_status import_graph(imp *I) {
    Onnx__GraphProto *g = I->g;
    gf_status st;
    if (g->n_node > MAX_NODES) return gfo_ifail(I, "%zu nodes (limit %d)", g->n_node, MAX_NODES);
    size_t cap = g->n_initializer + 1;   /* every value: an initializer, the input or a node's output */
    for (size_t k = 0; k < g->n_node; k++) cap += g->node[k]->n_output;
    if (cap > INT32_MAX / 2 || !(I->v = calloc(cap, sizeof *I->v))) return gfo_oom(I);
    I->capv = (int)cap;
    for (size_t k = 0; k < g->n_initializer; k++) {
        Onnx__TensorProto *t = g->initializer[k];
        if (!t->name || !t->name[0]) return gfo_ifail(I, "initializer %zu has no name", k);
        if (gfo_get(I, t->name)) return gfo_ifail(I, "initializer %s is defined twice", t->name);
        int j = gfo_new_val(I, t->name, V_CONST);
        if (j < 0) return gfo_oom(I);
        if ((st = gfo_load_tensor(I, t, "initializer", &I->v[j]))) return st;
        /* the values are in v now: give the message's copy back (protobuf_c_message_free_unpacked skips NULL) */
        if (t->has_raw_data) { free(t->raw_data.data); t->raw_data.data = NULL; t->raw_data.len = 0; t->has_raw_data = 0; }
        free(t->float_data); t->float_data = NULL; t->n_float_data = 0;
    }
    if (g->n_sparse_initializer) return gfo_ifail(I, "sparse initializers are not supported");
    /* the one image input (graph inputs that are not initializers) */
    const Onnx__ValueInfoProto *in = NULL;
    int n_in = 0;
    for (size_t k = 0; k < g->n_input; k++)
        if (!gfo_get(I, str0(g->input[k]->name))) { in = g->input[k]; n_in++; }
    if (n_in != 1) return gfo_ifail(I, "need exactly one image input, found %d", n_in);
    const char *iname = str0(in->name);
    const Onnx__TensorShapeProto *sh = in->type && in->type->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE &&
                                       in->type->tensor_type ? in->type->tensor_type->shape : NULL;
    int64_t d[4];
    if (!sh || sh->n_dim != 4) return gfo_ifail(I, "input %s: need a static NCHW shape (4 dimensions)", iname);
    for (int k = 0; k < 4; k++) {
        const Onnx__TensorShapeProto__Dimension *dm = sh->dim[k];
        int has = dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        d[k] = has ? dm->dim_value : k == 0 ? 1 : -1;   /* a symbolic batch is 1: our graph is per image */
        if (d[k] < 1 || d[k] > 65536) return gfo_ifail(I, "input %s: need a static NCHW shape, dimension %d is not", iname, k);
    }
    if ((st = gfo_find_patterns(I))) return st;
    I->batch = d[0];
    if ((st = gfo_set_act(I, iname, -1, 4, d))) return st;
    gfo_smap_put(&I->names, "input", INPUT_NAME);
    for (size_t k = 0; k < g->n_node; k++)
        if ((st = gfo_node(I, g->node[k]))) return st;
    if (I->nbad) {
        char list[700];
        size_t at = 0;
        qsort(I->bad, (size_t)I->nbad, sizeof I->bad[0], by_op);
        list[0] = 0;
        for (int k = 0; k < I->nbad && at < sizeof list - 1; k++)
            at += (size_t)snprintf(list + at, sizeof list - at, "%s%.60s (%d nodes, e.g. %.80s)", k ? "; " : "",
                                   I->bad[k].op, I->bad[k].count, I->bad[k].who);
        return gfo_ifail(I, "unsupported ops (gradfeat has no equivalent): %s", list);
    }
    if (!I->non) return gfo_ifail(I, "the graph computes nothing from its input");
    cJSON *outs = cJSON_CreateArray();
    for (size_t k = 0; k < g->n_output; k++) {
        const val *v = gfo_get(I, str0(g->output[k]->name));
        if (!v || v->kind != V_ACT || v->ours < 0) { cJSON_Delete(outs); return gfo_ifail(I, "graph output %s is not computed from the input", str0(g->output[k]->name)); }
        cJSON_AddItemToArray(outs, cJSON_CreateString(I->on[v->ours].name));
    }
    cJSON *gj = cJSON_CreateObject(), *ij = cJSON_CreateObject();
    cJSON_AddStringToObject(ij, "name", "input");
    int ishape[3] = {(int)d[1], (int)d[2], (int)d[3]};
    cJSON_AddItemToObject(ij, "shape", gfo_ints_json(ishape, 3));
    cJSON_AddItemToObject(gj, "input", ij);
    cJSON_AddItemToObject(gj, "outputs", outs);
    cJSON_AddItemToObject(gj, "nodes", I->nodes);
    I->nodes = NULL;
    /* the feature: the last linear's input, before a flatten of a global pool */
    for (int k = I->non - 1; k >= 0; k--) {
        if (I->on[k].op != GF_OP_LINEAR) continue;
        const cJSON *ins = cJSON_GetObjectItemCaseSensitive(I->on[k].json, "inputs");
        const char *f = cJSON_GetArrayItem(ins, 0)->valuestring;
        for (;;) {
            int j = gfo_smap_get(&I->names, f);
            if (j < 0 || j >= I->non || I->on[j].op != GF_OP_FLATTEN) break;
            const char *p = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(I->on[j].json, "inputs"), 0)->valuestring;
            int q = gfo_smap_get(&I->names, p);
            if (q < 0 || q >= I->non || I->on[q].op != GF_OP_GAP) break;
            f = p;
        }
        cJSON_AddStringToObject(gj, "feature", f);
        break;
    }
    char *gs = cJSON_PrintUnformatted(gj);
    cJSON_Delete(gj);
    /* the converter's default preprocessing: ImageNet mean/std, shorter side to size*256/224, centre crop */
    cJSON *pre = cJSON_CreateObject();
    int hw[2] = {(int)d[2], (int)d[3]};
    cJSON_AddItemToObject(pre, "input_size", gfo_ints_json(hw, 2));
    cJSON_AddNumberToObject(pre, "channels", (double)d[1]);
    cJSON_AddStringToObject(pre, "color_order", d[1] == 3 ? "RGB" : "GRAY");
    cJSON_AddStringToObject(pre, "resize", "shorter_center_crop");
    cJSON_AddNumberToObject(pre, "resize_shorter", (double)lround((double)d[2] * 256 / 224));
    cJSON_AddStringToObject(pre, "interpolation", "bilinear");
    static const double mean3[3] = {0.485, 0.456, 0.406}, std3[3] = {0.229, 0.224, 0.225}, half[1] = {0.5};
    cJSON_AddItemToObject(pre, "mean", cJSON_CreateDoubleArray(d[1] == 3 ? mean3 : half, d[1] == 3 ? 3 : 1));
    cJSON_AddItemToObject(pre, "std", cJSON_CreateDoubleArray(d[1] == 3 ? std3 : half, d[1] == 3 ? 3 : 1));
    char *ps = cJSON_PrintUnformatted(pre);
    cJSON_Delete(pre);
    cJSON *meta = cJSON_CreateObject();
    cJSON_AddStringToObject(meta, "gradfeat.format_version", "1");
    if (gs) cJSON_AddStringToObject(meta, "gradfeat.graph", gs);
    if (ps) cJSON_AddStringToObject(meta, "gradfeat.preprocess", ps);
    cJSON_AddStringToObject(meta, "gradfeat.classes", "[]");
    cJSON_AddItemToObject(I->hdr, "__metadata__", meta);
    free(gs);
    free(ps);
    return gs && ps ? GF_OK : gfo_oom(I);
}

gf_status gf_onnx_import(const char *path, cJSON **hdr, gf_sink *data, char *err, size_t err_size) {
    *hdr = NULL;
    char why[256];
    FILE *fp = gf_fopen_regular(path, why, sizeof why);
    if (!fp) return gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: %s", path, why);
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    gf_status st = GF_OK;
    for (;;) {   /* read to the end (bounded): the size on disk is not trusted */
        if (n == cap) {
            if (cap >= MAX_FILE) { st = gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: larger than 2 GiB, the limit of one ONNX (protobuf) file", path); break; }
            cap = cap ? 2 * cap : 1 << 16;
            uint8_t *p = realloc(buf, cap);
            if (!p) { st = gf_fail_msg(err, err_size, GF_ERR_MEMORY, "%s: out of memory reading the file", path); break; }
            buf = p;
        }
        size_t r = fread(buf + n, 1, cap - n, fp);
        n += r;
        if (r == 0) {
            if (ferror(fp)) st = gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: read error", path);
            break;
        }
    }
    fclose(fp);
    Onnx__ModelProto *mp = NULL;
    if (st == GF_OK && n == 0) st = gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: empty file, not an ONNX model", path);
    if (st == GF_OK && !walk(&onnx__model_proto__descriptor, buf, n, 0))
        st = gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: not an ONNX model (messages nested deeper than %d levels)", path, MAX_DEPTH);
    if (st == GF_OK && !(mp = onnx__model_proto__unpack(NULL, n, buf)))
        st = gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: not an ONNX model (protobuf parse error: truncated or not a "
                         "ModelProto)", path);
    free(buf);
    if (st == GF_OK && !mp->graph)
        st = gf_fail_msg(err, err_size, GF_ERR_INPUT, "%s: not an ONNX model (no graph)", path);
    if (st != GF_OK) {
        if (mp) onnx__model_proto__free_unpacked(mp, NULL);
        return st;
    }
    imp I = {.err = err, .errsz = err_size, .path = path, .g = mp->graph, .data = data};
    I.hdr = cJSON_CreateObject();
    I.nodes = cJSON_CreateArray();
    if (!I.hdr || !I.nodes) st = gfo_oom(&I);
    else st = import_graph(&I);
    if (st == GF_OK && (data->oom || I.vals.oom || I.names.oom || I.tnames.oom)) st = gfo_oom(&I);
    for (int k = 0; k < I.nv; k++) { free(I.v[k].f); free(I.v[k].i); }
    free(I.v);
    for (int k = 0; k < I.nstrs; k++) free(I.strs[k]);
    free(I.strs);
    free(I.on);
    gfo_smap_free(&I.vals); gfo_smap_free(&I.names); gfo_smap_free(&I.tnames); gfo_smap_free(&I.next_k);
    gfo_smap_free(&I.prod); gfo_smap_free(&I.uslot); gfo_smap_free(&I.absorbed); gfo_smap_free(&I.gelu); gfo_smap_free(&I.lnorm);
    free(I.uoff); free(I.ulist); free(I.pat);
    cJSON_Delete(I.nodes);
    onnx__model_proto__free_unpacked(mp, NULL);
    if (st != GF_OK) { cJSON_Delete(I.hdr); return st; }
    *hdr = I.hdr;
    return GF_OK;
}
#endif
