/* stb_image's decoder, compiled here rather than taken from Debian's libstb.so.
 *
 * Why: stb_image 2.27 (Debian 12) takes its JPEG decoder state from malloc and
 * never clears the Huffman tables. A progressive scan may name an AC or DC
 * table that the file never defines; the decoder then indexes with garbage
 * from the heap and reads far out of bounds (fuzz_image found this; the
 * reproducers are tests/data/jpeg-undefined-huffman-*.jpg). stb 2.28 fixed it
 * by clearing the state; we get the same effect with zeroing allocations: an
 * undefined table is all zeros, every code maps to symbol 0, and the decode
 * ends in stb's own "Corrupt JPEG" checks or in a (meaningless) image.
 *
 * Only the allocator changes; the code is Debian's header, unmodified.
 * stb_image_write still comes from libstb. */
#include <stdlib.h>

#define STBI_MALLOC(size) calloc(1, (size))
#define STBI_REALLOC(p, size) realloc((p), (size))
#define STBI_FREE(p) free(p)
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>
