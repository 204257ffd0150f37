/* libFuzzer: the --config file parser (host/cli/config.c, compiled into the
 * harness: it is part of the CLI, not the library). The whole input is the
 * file. The parser either calls set() with a normalised key (lower case,
 * [a-z0-9-], one leading "--" dropped) and a value without line breaks, or fails with
 * "FILE:LINE: ..." in err. set() answers "unknown key" for keys starting with
 * 'u' and "bad value" for keys starting with 'b', so those error paths run too. */
#include "fuzz_common.h"
#include "cli/cli.h"

static int fuzz_set(void *user, const char *key, const char *value) {
    int *calls = user;
    (*calls)++;
    if (!key[0]) abort();   /* only one leading "--" is stripped: "----x" is the (unknown) key "--x" */
    for (const char *p = key; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-')) abort();
    if (strchr(value, '\n')) abort();   /* a lone CR inside a line is kept: only line ends are stripped */
    if (key[0] == 'u') return -1;
    if (key[0] == 'b') return GF_ERR_INPUT;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = gf_fuzz_write("config", data, size);
    char err[512] = "";
    int calls = 0;
    int rc = cli_config_load(path, fuzz_set, &calls, err, sizeof err);
    if (rc == 0 && err[0]) abort();
    if (rc != 0 && (!err[0] || !strstr(err, path))) abort();   /* every error names the file */
    if (rc != 0 && rc != GF_ERR_INPUT && rc != GF_ERR_USAGE) abort();
    return 0;
}
