/* gradfeat convert MODEL.onnx OUT.safetensors: the ONNX front door of tools/convert_onnx.py, in C
 * (host/graph/onnx_import.c): writes the model file `--model MODEL.onnx` reads as. Needs no device. */
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "gradfeat_model.h"

static const cli_doc doc = {
    "gradfeat convert MODEL.onnx OUT.safetensors",
    "Convert an ONNX CNN (NCHW, one image input) into a gradfeat model file: the same file\n"
    "tools/convert_onnx.py writes (ImageNet preprocessing by default, no class names), written\n"
    "atomically (temp file + rename). Every command also reads MODEL.onnx directly (--model\n"
    "model.onnx); convert only saves the result. Needs a build with protobuf-c (libprotobuf-c-dev);\n"
    "tools/convert_onnx.py writes the same model and also takes --classes and --preprocess.\n"
    "No OpenCL device is needed.\n",
    "  gradfeat convert resnet18.onnx resnet18.safetensors\n"
    "  gradfeat info resnet18.onnx\n"};

int cmd_convert(int argc, char **argv) {
    cli_opts o;
    int rc = cli_opts_parse(&o, "convert", NULL, 0, &doc, argc, argv);
    cli_opts_free(&o);
    if (rc) return rc == CLI_HELP ? 0 : rc;
    if (o.first_arg != argc - 2) return cli_usage_error("convert", "expected MODEL.onnx and OUT.safetensors");
    const char *in = argv[o.first_arg], *out = argv[o.first_arg + 1];
    if (!strcmp(in, out)) return cli_usage_error("convert", "the output would overwrite the input %s", in);
    char err[1024];
    gf_status st = gf_model_convert_onnx(in, out, err, sizeof err);
    if (st != GF_OK) {
        fprintf(stderr, "%s: error: %s\n", cli_prog, err);
        return (int)st;
    }
    gf_model *m = NULL;   /* what was written must load: check it as every command will read it */
    st = gf_model_load(NULL, out, &m);
    if (st != GF_OK) {
        fprintf(stderr, "%s: error: %s\n", cli_prog, gf_model_error(m));
        gf_model_free(m);
        return (int)st;
    }
    gf_model_info in_;
    gf_model_get_info(m, &in_);
    printf("wrote %s: %d nodes, %d tensors, %llu parameters, feature %s\n", out, in_.n_nodes, in_.n_tensors,
           (unsigned long long)in_.n_params, in_.feature ? in_.feature : "(none)");
    gf_model_free(m);
    return 0;
}
