/* libFuzzer: the training-checkpoint reader (gf_ckpt_read, host/method/checkpoint.c).
 * A checkpoint carries a checksum, so random bytes would stop at the
 * checksum: byte 0 bit 0 = 0 builds the file around the input (u32 LE json
 * length n, then json and data; the harness writes magic, lengths and the
 * right checksum: bit 1 = 0 a version "02" frame, XXH3, bit 1 = 1 a version
 * "01" one, FNV-1a) so mutations reach the JSON and array layout; bit 0 = 1
 * writes the rest of the input as the file itself (magic, length, checksum
 * checks). A file is either read completely or rejected with a message. */
#include "fuzz_common.h"
#include "gf_internal.h"
#include "train.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int raw = data[0] & 1, legacy = data[0] >> 1 & 1;
    data++; size--;
    const char *path;
    if (raw) {
        path = gf_fuzz_write("ckpt", data, size);
    } else {
        if (size < 4) return 0;
        uint64_t jl = gf_fuzz_u32(data, size);
        data += 4; size -= 4;
        if (jl > size) jl = size;
        uint64_t dl = size - jl;
        uint8_t *f = malloc(32 + size);
        memcpy(f, legacy ? "GFCKPT01" : "GFCKPT02", 8);
        memcpy(f + 8, &jl, 8);
        memcpy(f + 16, &dl, 8);
        uint64_t h = legacy ? gf_fnv1a(GF_FNV_INIT, data, size) : gf_xxh3(data, size);
        memcpy(f + 24, &h, 8);
        memcpy(f + 32, data, size);
        path = gf_fuzz_write("ckpt", f, 32 + size);
        free(f);
    }
    gf_ckpt c;
    gf_status st = gf_ckpt_read(NULL, path, &c);
    if (st != GF_OK) {
        for (int i = 0; i < 4; i++)
            if (c.w1[i] || c.b1[i] || c.block[i]) abort();   /* freed and cleared on failure */
        if (c.state || c.meta) abort();
        return 0;
    }
    /* everything the header promises is there: touch it all (ASan checks the sizes) */
    volatile float acc = 0;
    for (int i = 0; i < 4; i++) {
        if (!c.done[i]) continue;
        if (!c.w1[i] || !c.b1[i]) abort();
        for (size_t k = 0; k < (size_t)c.K * (size_t)c.d; k++) acc += c.w1[i][k];
        for (int k = 0; k < c.K; k++) acc += c.b1[i][k];
        if (c.block[i]) for (size_t k = 0; k < c.block_count; k++) acc += c.block[i][k];
    }
    if (c.active) for (size_t k = 0; k < c.state_count; k++) acc += c.state[k];
    if (c.meta) (void)strlen(c.meta);
    (void)acc;
    gf_ckpt_free(&c);
    return 0;
}
