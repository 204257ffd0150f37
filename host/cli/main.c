/* gradfeat command line: dispatch to subcommands. */
#include <fcntl.h>
#include <malloc.h>
#include <sys/resource.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <CL/cl.h>
#include "cli.h"
#include "testhook.h"
#include "gf_dist.h"

const char *cli_prog = "gradfeat";

typedef cli_command command;

static const command commands[] = {
    {"train", cmd_train, "adapt a model to a dataset: probe, gradient, full (linearized), finetune"},
    {"pretrain", cmd_pretrain, "train a network from scratch (small28, bigan, resnet18c) and write a model file"},
    {"devices", cmd_devices, "list OpenCL platforms and devices (--json)"},
    {"selftest", cmd_selftest, "check every kernel family against plain-C references on a device"},
    {"doctor", cmd_doctor, "versions, platforms, devices, limits, cache, environment and a selftest for bug reports"},
    {"tune", cmd_tune, "tune CLBlast's SGEMM for the device at gradfeat's GEMM shapes (used when GEMMs run in CLBlast)"},
    {"cache", cmd_cache, "show or clear the compiled-kernel cache (cache info | cache clear)"},
    {"bench", cmd_bench, "time operators on the device (bench ops: conv vs plain GEMM GFLOP/s)"},
    {"data", cmd_data, "inspect a dataset (counts, sizes, skipped files, --grid contact sheet) or time loading"},
    {"info", cmd_info, "summarise a model file: graph, parameters, MACs, feature node, top blocks"},
    {"convert", cmd_convert, "convert an ONNX model into a gradfeat model file (.safetensors)"},
    {"report", cmd_report, "write the HTML report of a run directory (curves, table, metadata)"},
    {"predict", cmd_predict, "classify images with a model (top-k classes, --json)"},
    {"eval", cmd_eval, "loss and accuracy / mAP of an adapted model (train --run-dir) on a dataset"},
};
static const int n_commands = sizeof commands / sizeof commands[0];

static void usage(FILE *f) {
    fprintf(f, "usage: %s [--version] [--help] <command> [options]\n\n"
               "Adapt a pre-trained CNN to a new image task with gradients as features\n"
               "(Mu, Li, Liang, ICLR 2020) on any OpenCL device.\n\ncommands:\n", cli_prog);
    for (int i = 0; i < n_commands; i++) fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\nRun '%s <command> --help' for the options of a command.\n"
               "Common options: --device SEL (env GRADFEAT_DEVICE): index, P:D, cpu, gpu or part of a name.\n"
               "Every option has an environment twin (GRADFEAT_<NAME>, listed by --help) and may come from\n"
               "--config FILE ('key value' lines); flags > --config FILE > environment > defaults.\n"
               "Exit codes: 0 ok, 1 internal, 2 usage, 3 no OpenCL device, 4 out of memory (or a ulimit -v/-d\n"
               "            too small for the driver), 5 bad input, 6 numeric failure, 7 kernel build failed,\n"
               "            8 check failed, 9 write failed (disk full, unwritable path, unusable PoCL kernel\n"
               "            cache folder); 128 + signal for a run stopped by SIGINT/SIGTERM/SIGHUP/SIGPIPE.\n", cli_prog);
}

static int version(void) {
    int ma, mi, pa;
    gf_clblast_version(&ma, &mi, &pa);
    printf("gradfeat %s (git %s)\nCLBlast %d.%d.%d\nOpenCL headers: target %d (CL_TARGET_OPENCL_VERSION)\n",
           gf_version(), gf_git_hash(), ma, mi, pa, CL_TARGET_OPENCL_VERSION);
    return 0;
}

int cli_fail(gf_ctx *ctx, gf_status st) {
    if (gf_dist_size() > 1)   /* several processes: say which one failed */
        fprintf(stderr, "%s: rank %d of %d: error: %s\n", cli_prog, gf_dist_rank(), gf_dist_size(),
                ctx ? gf_ctx_last_error(ctx) : gf_status_name(st));
    else
        fprintf(stderr, "%s: error: %s\n", cli_prog, ctx ? gf_ctx_last_error(ctx) : gf_status_name(st));
    return (int)st;
}

/* ---- failures every rank meets alike (the options, a command that does not split) ----
 * Under mpirun rank 0 prints the message and the others keep it; all end together in MPI_Finalize, which
 * also waits until rank 0's message is out (an MPI_Abort from another rank killed rank 0 before it: seen in
 * CI). When the ranks were not alike after all (argv differing between ranks), the failed rank would wait
 * there for ranks that went on: after ALIKE_WAIT seconds it prints its kept message and leaves without
 * finalizing, and mpirun ends the job. */
enum { ALIKE_WAIT = 10 };
static char alike_msg[1400];
static volatile sig_atomic_t alike_rc;
static int failed_alike;

static int fail_alike(int rc, const char *msg) {
    failed_alike = 1;
    if (gf_dist_rank() == 0) fputs(msg, stderr);
    else snprintf(alike_msg, sizeof alike_msg, "%s", msg);
    return rc;
}

static void alike_timeout(int sig) {
    (void)sig;
    if (write(2, alike_msg, strlen(alike_msg)) < 0) { /* nothing more to do */ }
    _exit(alike_rc);
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    char body[1024], msg[sizeof alike_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    snprintf(msg, sizeof msg, "%s %s: %s\nRun '%s %s --help' for usage.\n", cli_prog, cmd, body, cli_prog, cmd);
    return fail_alike(GF_ERR_USAGE, msg);
}

const char *cli_activation_cache_dir(void) {
    static char dir[1024];
    const char *from;
    if (!cli_cache_dir_default("gradfeat/activations", dir, sizeof dir, &from))
        fprintf(stderr, "%s: not using the activation cache (none): no XDG_CACHE_HOME, HOME or XDG_RUNTIME_DIR; "
                "keeping the trunk outputs in host memory\n", cli_prog);
    return dir;
}

const char *cli_env_or(const char *flag_value, const char *env_name) {
    if (flag_value) return flag_value;
    const char *v = getenv(env_name);
    return v && *v ? v : NULL;
}

int cli_parse_size(const char *s, uint64_t *out) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || !(v >= 0)) return -1;
    double mul = 1;
    switch (*end) {
    case 'k': case 'K': mul = 1024.0; end++; break;
    case 'm': case 'M': mul = 1048576.0; end++; break;
    case 'g': case 'G': mul = 1073741824.0; end++; break;
    default: break;
    }
    if (*end == 'B' || *end == 'b') end++;
    if (*end) return -1;
    *out = (uint64_t)(v * mul);
    return 0;
}

gf_status cli_announce_and_warmup(gf_ctx *ctx, int quiet) {
    quiet = quiet || gf_dist_rank() != 0;   /* several processes: rank 0 speaks */
    if (!quiet) {
        const gf_device_info *d = gf_ctx_device(ctx);
        fprintf(stderr, "device: %s (%s) — %s\n", d->name, d->platform_name, gf_ctx_device_reason(ctx));
        if (gf_dist_size() > 1)
            fprintf(stderr, "ranks: %d processes (MPI); each takes a device of --device by its rank on its host\n",
                    gf_dist_size());
        fprintf(stderr, "compiling OpenCL kernels (slow only on the first run on this device)...");
    }
    double compile_s = 0;
    gf_status st = gf_ctx_warmup(ctx, &compile_s);
    if (!quiet) fprintf(stderr, " %.2f s\n", compile_s);
    return st;
}

static volatile sig_atomic_t stop_signal;
static void on_stop_signal(int sig) { if (!stop_signal || sig != SIGPIPE) stop_signal = sig; }

/* SIGINT, SIGTERM and SIGHUP (terminal closed) stop a run with a final checkpoint; SA_RESETHAND: a second
 * one kills at once. SIGPIPE (the reader of stderr went away) too, but it stays caught: every later
 * write to that pipe raises it again and must not kill the run before its checkpoint is written. */
volatile sig_atomic_t *cli_stop_signals_begin(cli_stop_signals *s) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    stop_signal = 0;
    sigaction(SIGINT, &sa, &s->old_int);
    sigaction(SIGTERM, &sa, &s->old_term);
    sigaction(SIGHUP, &sa, &s->old_hup);
    sa.sa_flags = 0;
    sigaction(SIGPIPE, &sa, &s->old_pipe);
    return &stop_signal;
}

void cli_stop_signals_end(const cli_stop_signals *s) {
    sigaction(SIGINT, &s->old_int, NULL);
    sigaction(SIGTERM, &s->old_term, NULL);
    sigaction(SIGHUP, &s->old_hup, NULL);
    sigaction(SIGPIPE, &s->old_pipe, NULL);
}

const char *cli_signal_name(int sig) {
    return sig == SIGTERM ? "SIGTERM" : sig == SIGHUP ? "SIGHUP" : sig == SIGPIPE ? "SIGPIPE" : "SIGINT";
}

int cli_ctx_open(const char *device, int verbose, gf_ctx **ctx) {
    return cli_ctx_open_budget(device, verbose, 0, ctx);
}

/* The library's warnings (and with --verbose its notes) and progress lines: the CLI prints them on stderr. */
static void cli_log(void *user, int level, const char *msg) {
    (void)user; (void)level;
    if (gf_dist_rank() != 0) return;   /* several processes: the ranks warn alike; rank 0 speaks */
    fprintf(stderr, "%s: %s\n", cli_prog, msg);
}

static int progress_drawn;   /* a step line is on the terminal, to be drawn over */
static void cli_progress(void *user, int kind, const char *line) {
    int tty = user != NULL;
    if (gf_dist_rank() != 0) return;
    if (tty && kind == GF_PROGRESS_STEP) { fprintf(stderr, "\r\033[K%s", line); progress_drawn = 1; }
    else { fprintf(stderr, "%s%s\n", progress_drawn ? "\r\033[K" : "", line); progress_drawn = 0; }
    fflush(stderr);
}

/* gf_ctx_create with the CLI's error report: 0 or the exit code. */
static int ctx_create(gf_ctx_options *opt, gf_ctx **ctx) {
    gf_status st = gf_ctx_create(opt, ctx);
    if (st == GF_OK) return 0;
    int rc = cli_fail(*ctx, st);
    gf_ctx_free(*ctx);
    *ctx = NULL;
    return rc;
}

static int ctx_open(const char *device, int verbose, uint64_t max_device_mem, int untuned, int check_default,
                    gf_ctx **ctx) {
    cli_settings s;
    char err[1400], pick[256];
    *ctx = NULL;
    /* several processes: --device A,B,... is taken round-robin by each rank's index on its host */
    if (device && strchr(device, ',')) {
        int n = 1, want;
        for (const char *c = device; *c; c++) n += *c == ',';
        want = gf_dist_local_rank() % n;
        const char *b = device;
        for (int i = 0; i < want; i++) b = strchr(b, ',') + 1;
        size_t len = strcspn(b, ",");
        snprintf(pick, sizeof pick, "%.*s", (int)(len < sizeof pick ? len : sizeof pick - 1), b);
        device = pick;
    }
    if (cli_settings_load(&s, device, err, sizeof err)) {
        fprintf(stderr, "%s: error: %s\n", cli_prog, err);
        return GF_ERR_USAGE;
    }
    gf_ctx_options opt = s.opt;
    opt.verbose = verbose;
    opt.max_device_mem = max_device_mem;
    if (untuned) opt.tuning = -1;
    opt.log = cli_log;
    opt.progress = cli_progress;
    opt.progress_live = isatty(fileno(stderr));
    opt.progress_user = opt.progress_live ? (void *)&progress_drawn : NULL;
    int rc = check_default ? cli_default_device_checked(&opt, ctx, ctx_create) : ctx_create(&opt, ctx);
    if (rc) return rc;
    if (verbose) {
        const gf_device_info *d = gf_ctx_device(*ctx);
        fprintf(stderr, "%s: device %d (%d:%d) %s — %s\n", cli_prog, d->global_index, d->platform_index,
                d->device_index, d->name, gf_ctx_device_reason(*ctx));
    }
    return 0;
}

int cli_ctx_open_budget(const char *device, int verbose, uint64_t max_device_mem, gf_ctx **ctx) {
    return ctx_open(device, verbose, max_device_mem, 0, 1, ctx);
}

int cli_ctx_open_untuned(const char *device, int verbose, gf_ctx **ctx) {
    return ctx_open(device, verbose, 0, 1, 1, ctx);
}

int cli_ctx_open_unchecked(const char *device, int verbose, gf_ctx **ctx) {
    return ctx_open(device, verbose, 0, 0, 0, ctx);
}

/* Descriptors 0-2 closed by the caller (`2>&-`) would be reused by the first files opened (metrics.jsonl
 * as fd 2 would receive the progress lines): hold each closed one open on /dev/null. */
static void open_std_fds(void) {
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) != -1) continue;
        int n = open("/dev/null", fd ? O_WRONLY : O_RDONLY);
        if (n >= 0 && n != fd) close(n);   /* open returns the lowest free fd: fd itself */
    }
}

/* Under an address-space or data limit (ulimit -v / -d), glibc's per-thread malloc arenas (64 MiB of
 * address space each, one per thread that allocates: PoCL's workers, the decoding threads) eat the limit
 * before the data does: the emotion net's train needed 1.6 GB of address space with them and ran under
 * 1.5 GB with two (tests/README.md "Memory limits"). */
static void fit_malloc_to_limits(void) {
    struct rlimit as, data;
    int limited = (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY) ||
                  (getrlimit(RLIMIT_DATA, &data) == 0 && data.rlim_cur != RLIM_INFINITY);
    if (limited) mallopt(M_ARENA_MAX, 2);
}

static int run_command(int argc, char **argv);

/* Started by mpirun (Open MPI, or a PMI launcher): one of several processes (gf_dist.h). Otherwise MPI
 * is never started, so a plain run is what it was without MPI. Ranks other than 0 print only their
 * errors (their stdout goes to /dev/null); a rank that fails stops the whole job (MPI_Abort) with its
 * exit code, so none waits forever for it. */
int main(int argc, char **argv) {
    cli_flush_denormals();   /* hostblas.c: before any thread starts */
    open_std_fds();
    fit_malloc_to_limits();
    int under_mpi = getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
    if (under_mpi && gf_dist_init(&argc, &argv) != 0) {
        fprintf(stderr, "%s: error: started by mpirun but MPI_Init failed\n", cli_prog);
        return GF_ERR_INTERNAL;
    }
    const char *np = getenv("OMPI_COMM_WORLD_SIZE");
    if (np && atoi(np) > 1 && !gf_dist_compiled()) {   /* K copies of one run would fight over its files */
        fprintf(stderr, "%s: error: started by mpirun with %s processes, but this gradfeat was built without MPI "
                "(-DGF_MPI=ON needs Debian's openmpi-bin libopenmpi-dev)\n", cli_prog, np);
        return GF_ERR_USAGE;
    }
    if (gf_dist_rank() != 0 && !freopen("/dev/null", "w", stdout)) return GF_ERR_IO;
    int rc = run_command(argc, argv);
    fflush(stdout);
    fflush(stderr);
    /* several processes: a failure met alike ends together (above), any other may be one rank's while the
     * others wait in a collective: abort them */
    if (rc != 0 && gf_dist_size() > 1 && !failed_alike) gf_dist_abort(rc);
    if (rc != 0 && failed_alike) {
        alike_rc = rc;
        signal(SIGALRM, alike_timeout);
        alarm(ALIKE_WAIT);
    }
    gf_dist_finalize();
    alarm(0);
    return rc;
}

static int run_command(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return GF_ERR_USAGE; }
#ifdef GF_TEST_HOOKS
    gf_test_kill_at(getenv("GRADFEAT_TEST_KILL_AT"));   /* host/method/testhook.h */
#endif
    const char *cmd = argv[1];
    /* several processes: only train, pretrain and two benchmarks split their work; any other command would
     * run K times over the same files */
    int split = !strcmp(cmd, "train") || !strcmp(cmd, "pretrain") ||
                (!strcmp(cmd, "bench") && argc > 2 && (!strcmp(argv[2], "linearized") || !strcmp(argv[2], "trunk")));
    if (gf_dist_size() > 1 && !split) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s: error: '%s' does not run over several processes (only train, pretrain, bench "
                 "linearized and bench trunk do); run it without mpirun\n", cli_prog, cmd);
        return fail_alike(GF_ERR_USAGE, msg);
    }
    /* gradfeat help --man | --bash-completion (host/cli/gendoc.c; the build writes gradfeat.1 and the completion) */
    if (!strcmp(cmd, "help") && argc == 3) return cli_gendoc(argv[2], commands, n_commands, usage);
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) { usage(stdout); return 0; }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V") || !strcmp(cmd, "version")) return version();
    for (int i = 0; i < n_commands; i++)
        if (!strcmp(cmd, commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "%s: unknown command '%s'\n\n", cli_prog, cmd);
    usage(stderr);
    return GF_ERR_USAGE;
}
