/* A build without protobuf-c (no libprotobuf-c-dev, or -DGF_ONNX=OFF) still builds, and `--model x.onnx`
 * says what to install: this test links the fallback of host/graph/onnx_import.c (compiled here without
 * GF_HAVE_PROTOBUF_C, ahead of the library's own copy) and loads and converts an .onnx path through the
 * public API. A build without protobuf-c runs the same code for real; tests/cli_onnx.sh covers the rest. */
#undef GF_HAVE_PROTOBUF_C
#include "onnx_import.c"
#include "testutil.h"

int main(void) {
    gf_model *m = NULL;
    gf_status st = gf_model_load(NULL, "some/model.ONNX", &m);
    const char *e = gf_model_error(m);
    CHECK(st == GF_ERR_INPUT, "load: status %d, want GF_ERR_INPUT (exit 5 like a bad .safetensors)", (int)st);
    CHECK(strstr(e, "some/model.ONNX: ") == e, "the message names the file: %s", e);
    CHECK(strstr(e, "built without ONNX support") && strstr(e, "libprotobuf-c-dev") && strstr(e, "tools/convert_onnx.py"),
          "the message says what to do: %s", e);
    gf_model_free(m);
    char err[512];
    st = gf_model_convert_onnx("x.onnx", "x.safetensors", err, sizeof err);
    CHECK(st == GF_ERR_INPUT && strstr(err, "libprotobuf-c-dev"), "convert: status %d, %s", (int)st, err);
    CHECK(!gf_onnx_supported(), "gf_onnx_supported() is 0 without protobuf-c");
    CHECK(gf_onnx_path("a.onnx") && gf_onnx_path("b.OnNx") && !gf_onnx_path("c.safetensors") && !gf_onnx_path(".onn"),
          "gf_onnx_path by extension");
    return test_finish("test_onnx_fallback");
}
