/* Every setting of a context, from the flags and the environment (the library reads no environment
 * variable: host/cli/settings.c fills gf_ctx_options). Also linked into the C tests (tests/testutil.c),
 * which take the same GRADFEAT_* variables. */
#ifndef GF_CLI_SETTINGS_H
#define GF_CLI_SETTINGS_H
#include <stddef.h>
#include "gradfeat.h"

enum { CLI_SETTINGS_ROWS = 20 };
typedef struct cli_settings {
    gf_ctx_options opt;                /* its strings point into this struct and the environment */
    char cache_dir[1024];              /* compiled-kernel cache folder ("" = none) */
    char act_cache_dir[1024];          /* the activation cache's default folder ("" = none) */
    char pocl_cache[1024], pocl_from[32], cache_from[64];
    int n;                             /* rows for `gradfeat doctor`: name, value, where it came from */
    struct { const char *name; char value[1100], from[80]; } row[CLI_SETTINGS_ROWS];
} cli_settings;
/* device: the --device flag (NULL = GRADFEAT_DEVICE, else the best device). Returns 0, or GF_ERR_USAGE with
 * the message in err ("GRADFEAT_PATHS='fast' is not a kernel path: use auto, cpu or gpu"). */
int cli_settings_load(cli_settings *s, const char *device, char *err, size_t n);
/* <XDG_CACHE_HOME>/<sub>, ~/.cache/<sub>, else <XDG_RUNTIME_DIR>/<sub> (private to the user); "" and 0 when
 * none of them is set (no cache rather than a shared /tmp path), else 1. from: the variable used. */
int cli_cache_dir_default(const char *sub, char *out, size_t n, const char **from);
#endif
