/* stb_image compiled into fuzz_image with coverage + ASan (build.sh), so the
 * decoder gradfeat links from libstb runs instrumented under the fuzzer: these
 * definitions take precedence over the shared library's. */
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>
