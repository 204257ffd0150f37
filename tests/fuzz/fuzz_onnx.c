/* libFuzzer: native ONNX loading (host/graph/onnx_*.c: protobuf-c parse with bounded nesting, initializers,
 * shape arithmetic, op mapping, then the model loader on the imported file image) on a file holding the fuzz
 * input. A file either loads or fails with a message; a model that loaded passes every query of the public API
 * (fuzz_model_check.h), and `gradfeat convert`'s file of it loads as the same model. */
#include "fuzz_model_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = gf_fuzz_write("model.onnx", data, size);
    gf_model *m = NULL;
    gf_status st = gf_model_load(NULL, path, &m);
    if (st != GF_OK) {
        if (m && strlen(gf_model_error(m)) == 0) abort();   /* a failure must say why */
        gf_model_free(m);
        return 0;
    }
    gf_fuzz_check_model(m);
    char out[700], err[1024];
    snprintf(out, sizeof out, "%s/converted.safetensors", gf_fuzz_scratch());
    if (gf_model_convert_onnx(path, out, err, sizeof err) != GF_OK) { fprintf(stderr, "convert failed: %s\n", err); abort(); }
    gf_model *c = NULL;
    if (gf_model_load(NULL, out, &c) != GF_OK) { fprintf(stderr, "converted file does not load: %s\n", gf_model_error(c)); abort(); }
    gf_model_info a, b;
    gf_model_get_info(m, &a);
    gf_model_get_info(c, &b);
    if (a.n_nodes != b.n_nodes || a.n_tensors != b.n_tensors || a.n_params != b.n_params || a.macs != b.macs) abort();
    gf_model_free(c);
    gf_model_free(m);
    return 0;
}
