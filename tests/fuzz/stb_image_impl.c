/* stb_image compiled into fuzz_image with coverage + ASan (build.sh), so the
 * decoder gradfeat uses runs instrumented under the fuzzer: the same file the
 * library compiles (host/data/stb_image.c, Debian's header with zeroing
 * allocations), here without UBSan. Linked ahead of libgradfeat.a, so the
 * archive's uninstrumented copy is not pulled in. */
#include "../../host/data/stb_image.c"
