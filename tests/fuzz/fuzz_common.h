/* Shared by the libFuzzer harnesses: the parsers under test read files, so
 * each input is written to a per-process scratch folder (tmpfs when there is
 * one) and the real entry point opens it. */
#ifndef GF_FUZZ_COMMON_H
#define GF_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char gf_fuzz_dir[512];

/* Scratch folder, created on first use and kept for the whole fuzzing run
 * (removed at exit: atexit runs when libFuzzer returns normally). */
static void gf_fuzz_cleanup(void) {
    char cmd[600];
    if (!gf_fuzz_dir[0]) return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", gf_fuzz_dir);
    if (system(cmd) != 0) { /* best effort */ }
}

static const char *gf_fuzz_scratch(void) {
    if (gf_fuzz_dir[0]) return gf_fuzz_dir;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    snprintf(gf_fuzz_dir, sizeof gf_fuzz_dir, "%s/gf_fuzz_XXXXXX", base);
    if (!mkdtemp(gf_fuzz_dir)) { perror("mkdtemp"); abort(); }
    atexit(gf_fuzz_cleanup);
    return gf_fuzz_dir;
}

/* Writes data to <scratch>/<name>; returns the path (static buffer per slot). */
static const char *gf_fuzz_write(const char *name, const uint8_t *data, size_t size) {
    static char paths[4][640];
    static int slot;
    char *p = paths[slot++ & 3];
    snprintf(p, 640, "%s/%s", gf_fuzz_scratch(), name);
    FILE *f = fopen(p, "wb");
    if (!f) { perror(p); abort(); }
    if (size && fwrite(data, 1, size, f) != size) { perror(p); abort(); }
    if (fclose(f) != 0) { perror(p); abort(); }
    return p;
}

/* Little-endian u32 from the first bytes of the input (0 when too short). */
static uint32_t gf_fuzz_u32(const uint8_t *d, size_t n) {
    uint32_t v = 0;
    for (size_t i = 0; i < 4 && i < n; i++) v |= (uint32_t)d[i] << (8 * i);
    return v;
}

#endif
