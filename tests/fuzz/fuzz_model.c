/* libFuzzer: the model loader (safetensors header, graph JSON, preprocessing,
 * classes, blocks, BatchNorm folding) on a file holding the fuzz input. A
 * file either loads or fails with a message; then every query of the public
 * API on the loaded model must be safe. */
#include "fuzz_model_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = gf_fuzz_write("model.safetensors", data, size);
    gf_model *m = NULL;
    gf_status st = gf_model_load(NULL, path, &m);
    if (st != GF_OK) {
        if (m && strlen(gf_model_error(m)) == 0) abort();   /* a failure must say why */
        gf_model_free(m);
        return 0;
    }
    gf_fuzz_check_model(m);
    gf_model_free(m);
    return 0;
}
