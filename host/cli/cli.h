/* CLI-only helpers and the subcommand entry points (host/cli/cmd_*.c).
 * Exit codes are the gf_status values (0 ok, 2 usage, 3 no device, 4 memory,
 * 5 bad input, 6 numeric, 7 kernel build, 8 check failed). */
#ifndef GF_CLI_H
#define GF_CLI_H
#include "gradfeat.h"

/* Subcommands: argv[0] is the subcommand name. Return the exit code. */
int cmd_devices(int argc, char **argv);
int cmd_selftest(int argc, char **argv);
int cmd_cache(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_doctor(int argc, char **argv);

/* Shared by subcommands. */
extern const char *cli_prog;            /* "gradfeat" */
/* Create a context on --device (NULL: GRADFEAT_DEVICE, then the best device); prints the error and
 * returns its exit code on failure, 0 on success. */
int cli_ctx_open(const char *device, int verbose, gf_ctx **ctx);
/* The same with a device-memory budget in bytes (0 = none): --max-device-mem. */
int cli_ctx_open_budget(const char *device, int verbose, uint64_t max_device_mem, gf_ctx **ctx);
/* "512M", "4G", "1.5G", "1000000" -> bytes; -1 when malformed. */
int cli_parse_size(const char *s, uint64_t *out);
/* Print "gradfeat: error: <msg>" to stderr and return st as exit code. */
int cli_fail(gf_ctx *ctx, gf_status st);
int cli_usage_error(const char *cmd, const char *fmt, ...);
/* Value of --opt or env GRADFEAT_<NAME> (flag wins). */
const char *cli_env_or(const char *flag_value, const char *env_name);
#endif
