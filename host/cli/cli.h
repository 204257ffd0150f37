/* CLI-only helpers and the subcommand entry points (host/cli/cmd_*.c).
 * Exit codes are the gf_status values (0 ok, 2 usage, 3 no device, 4 memory,
 * 5 bad input, 6 numeric, 7 kernel build, 8 check failed, 9 write failed). */
#ifndef GF_CLI_H
#define GF_CLI_H
#include <signal.h>
#include <stdio.h>
#include "gradfeat.h"
#include "settings.h"

/* Subcommands: argv[0] is the subcommand name. Return the exit code. */
int cmd_devices(int argc, char **argv);
int cmd_selftest(int argc, char **argv);
int cmd_cache(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_pretrain(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_tune(int argc, char **argv);

/* Shared by subcommands. */
extern const char *cli_prog;            /* "gradfeat" */
/* hostblas.c: the host BLAS and the kernels it runs ("OpenBLAS, kernels Haswell (forced: ...)"). */
void cli_host_blas_describe(char *out, size_t cap);
/* OpenBLAS asks it how long its idle threads spin (log2 cycles): 4 unless OPENBLAS_THREAD_TIMEOUT says */
int openblas_thread_timeout(void);
int cli_flush_denormals(void);
void cli_denormals_describe(char *out, size_t cap);
/* Create a context on --device (NULL: GRADFEAT_DEVICE, then the best device) with every other setting from
 * the environment (settings.h) and the CLI's log and progress printers (stderr); prints the error and
 * returns its exit code on failure, 0 on success. */
int cli_ctx_open(const char *device, int verbose, gf_ctx **ctx);
/* The same with a device-memory budget in bytes (0 = none): --max-device-mem. */
int cli_ctx_open_budget(const char *device, int verbose, uint64_t max_device_mem, gf_ctx **ctx);
/* The same without the CLBlast tuning file (gradfeat tune measures CLBlast's own parameters first). */
int cli_ctx_open_untuned(const char *device, int verbose, gf_ctx **ctx);
/* The same without checking the default device (devcheck.c): selftest and doctor report on it themselves. */
int cli_ctx_open_unchecked(const char *device, int verbose, gf_ctx **ctx);
/* devcheck.c: open (the caller's gf_ctx_create with its error report) the context of opt; when no device was
 * named and there is more than one, the chosen one must pass the selftest (its verdict kept per device, driver,
 * paths and build in the kernel-cache folder), else it is passed over (opt->avoid_devices) for the next. */
int cli_default_device_checked(gf_ctx_options *opt, gf_ctx **ctx, int (*open)(gf_ctx_options *, gf_ctx **));
/* The activation cache's default folder (~/.cache/gradfeat/activations); "" (with a note on stderr) when
 * there is none: train and eval keep the trunk outputs in host memory then. */
const char *cli_activation_cache_dir(void);
/* "512M", "4G", "1.5G", "1000000" -> bytes; -1 when malformed. */
int cli_parse_size(const char *s, uint64_t *out);
/* Training commands: "device: ..." and the kernel-compilation phase on stderr (unless quiet). */
gf_status cli_announce_and_warmup(gf_ctx *ctx, int quiet);
/* SIGINT/SIGTERM/SIGHUP/SIGPIPE set the returned flag while training runs (it checks it between steps, writes
 * a checkpoint and stops); SA_RESETHAND: a second signal kills at once. _end restores the
 * handlers that were there before. */
typedef struct { struct sigaction old_int, old_term, old_hup, old_pipe; } cli_stop_signals;
volatile sig_atomic_t *cli_stop_signals_begin(cli_stop_signals *s);
void cli_stop_signals_end(const cli_stop_signals *s);
const char *cli_signal_name(int sig);   /* "SIGINT" / "SIGTERM" / "SIGHUP" / "SIGPIPE" */
/* Print "gradfeat: error: <msg>" to stderr and return st as exit code. */
int cli_fail(gf_ctx *ctx, gf_status st);
int cli_usage_error(const char *cmd, const char *fmt, ...);
/* Value of --opt or env GRADFEAT_<NAME> (flag wins). */
const char *cli_env_or(const char *flag_value, const char *env_name);
/* --config FILE (host/cli/config.c has the format): calls set(user, key, value) per line, in file order;
 * key is normalised (no "--", lower case, '_' -> '-'); value is "" for a bare key and is only valid during
 * the call (copy it). set returns 0, -1 for an unknown key, or an exit code for a bad value. Returns 0,
 * GF_ERR_INPUT (unreadable file), GF_ERR_USAGE (syntax, unknown key, bad value) with "FILE:LINE: ..." in err. */
int cli_config_load(const char *path, int (*set)(void *user, const char *key, const char *value), void *user,
                    char *err, size_t n);
/* Table-driven options (host/cli/options.c): every subcommand describes its options once; the table
 * gives getopt_long (GNU long options, optional short letters), --config FILE keys, the environment
 * twins GRADFEAT_<NAME> and the --help list. Precedence: flags > --config FILE > environment > defaults. */
typedef enum { CLI_STR, CLI_INT, CLI_POS, CLI_FLOAT, CLI_U64, CLI_FLAG, CLI_SIZE, CLI_CHOICE } cli_type;
typedef struct {
    const char *name;      /* long option without "--" */
    char short_opt;        /* 0: none */
    cli_type type;         /* target: const char ** | int * (INT >= 0, POS >= 1, FLAG, CHOICE index) |
                            * float * (>= 0) | uint64_t * (U64, SIZE "512M"/"4G") */
    void *target;
    const char *arg;       /* placeholder in --help ("N", "FILE"); NULL for switches */
    const char *help;      /* CLI_DEFAULT in it becomes the target's value before parsing (the defaults struct's) */
    const char *env;       /* NULL: GRADFEAT_<NAME> ('-' -> '_'); else this name */
    const char *choices;   /* CLI_CHOICE: "a|b|c". INT/POS/FLOAT: the allowed interval, "[0,1)", "(0,1000]",
                            * checked at parse time (exit 2); NULL: the type's own (INT 0..1e9, POS 1..1e9,
                            * FLOAT finite >= 0) */
    int env_elsewhere;     /* the twin is read by the library (GRADFEAT_DEVICE): listed, not parsed here */
} cli_opt;
#define CLI_DEFAULT "{default}"   /* "batch size (default {default})" -> "batch size (default 64)" in --help */
#define CLI_MAX_OPTS 64
#define CLI_HELP (-1)      /* cli_opts_parse printed --help: exit 0 */
typedef struct { const char *usage, *about, *examples; } cli_doc;   /* usage without "usage: " */
typedef struct {
    const char *cmd;
    const cli_opt *defs;
    int n, first_arg;                  /* first_arg: argv index of the first positional argument */
    unsigned char src[CLI_MAX_OPTS];   /* where each value came from: default, flag, config, env */
    char *owned[CLI_MAX_OPTS];         /* config-file strings the targets point into */
    char env[CLI_MAX_OPTS][48];
    char def[CLI_MAX_OPTS][40];        /* each target's value before parsing, as text: "64", "1e-3", "on" */
    char config_env[48];               /* GRADFEAT_CONFIG for train, GRADFEAT_<CMD>_CONFIG otherwise */
} cli_opts;
/* Returns 0 (positional arguments are argv[o->first_arg..argc)), CLI_HELP, or an exit code (message
 * printed). Call cli_opts_free afterwards in every case: string targets may point into o. */
int cli_opts_parse(cli_opts *o, const char *cmd, const cli_opt *defs, int n, const cli_doc *doc, int argc, char **argv);
void cli_opts_free(cli_opts *o);
/* Option i's help text, CLI_DEFAULT replaced by its default (in buf when replaced). */
const char *cli_opt_help(const cli_opts *o, int i, char *buf, size_t n);
int cli_opts_given(const cli_opts *o, const char *name);            /* by flag, file or environment */
const char *cli_opts_origin(const cli_opts *o, const char *name, char *buf, size_t n);
/* Usage error about option name, prefixed by where its value came from ("environment GRADFEAT_X: --x"). */
int cli_opts_fail(const cli_opts *o, const char *name, const char *fmt, ...);
/* --resume RUN_DIR alone: each option in names[0..n_names) that was not given (flag, file or
 * environment) takes its value from saved, a struct of the same type as dst into which the
 * options' targets point (the options read back from a checkpoint). */
void cli_opts_take_unset(const cli_opts *o, const char *const *names, int n_names, void *dst, const void *saved);
/* The man page and the bash completion (host/cli/gendoc.c), generated from the option tables: while
 * cli_doc_hook is set, cli_opts_parse hands it the table (environment twins filled in) and returns
 * CLI_HELP without parsing. cli_gendoc runs every command with "--help" that way and writes
 * `gradfeat help --man` (what = "--man") or `--bash-completion` to stdout; usage prints the
 * top-level --help. */
typedef struct { const char *name; int (*fn)(int, char **); const char *help; } cli_command;
extern void (*cli_doc_hook)(const cli_opts *o, const cli_doc *doc);
int cli_gendoc(const char *what, const cli_command *cmds, int n, void (*usage)(FILE *));
#endif
