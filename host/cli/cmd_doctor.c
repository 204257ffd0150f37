/* gradfeat doctor: everything a bug report needs, in one paste: versions, the
 * system, the environment that changes behaviour, the OpenCL loader's ICD files,
 * every platform and device with its limits, the chosen device and why, the
 * kernel cache, and a quick selftest. Exit 0 when all is well, else the first
 * problem's code (3 no device, 7 kernel build, 8 selftest check, ...). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <CL/cl.h>
#include "cli.h"

extern char **environ;

static const cli_doc doc = {
    "gradfeat doctor [--device SEL] [--no-selftest]",
    "Print what a bug report needs: gradfeat, CLBlast and OpenCL header versions, the system,\n"
    "GRADFEAT_* / OpenCL loader environment variables, the ICD files the loader reads, each\n"
    "setting (device, kernel paths, caches) with where it came from (flag, variable, default), every\n"
    "platform and device with its limits, the device gradfeat picks and why, the compiled-kernel\n"
    "cache, and a quick selftest (every kernel family against plain-C references).\n"
    "Exit code 0 when everything is fine; otherwise that of the first problem: 3 no OpenCL\n"
    "device, 7 a kernel failed to build, 8 a selftest check failed.\n",
    "  gradfeat doctor > doctor.txt; echo $?\n"
    "  GRADFEAT_NO_SELFTEST=1 gradfeat doctor --device gpu\n"};

static void section(const char *title) { printf("\n== %s\n", title); }

static void print_mib(const char *label, unsigned long long bytes) {
    if (bytes >= (1ull << 20)) printf("%s %llu MiB", label, bytes >> 20);
    else printf("%s %llu KiB", label, bytes >> 10);
}

/* Variables that change what gradfeat or the OpenCL stack does. */
static int env_matters(const char *kv) {
    static const char *const prefixes[] = {"GRADFEAT_", "OCL_ICD_", "OPENCL_", "POCL_", "CLBLAST_", "XDG_CACHE_HOME=",
                                           "CUDA_VISIBLE_DEVICES=", "ROCR_VISIBLE_DEVICES=", "GPU_DEVICE_ORDINAL=",
                                           "RUSTICL_", "OPENBLAS_NUM_THREADS=", "OPENBLAS_CORETYPE=", "OPENBLAS_THREAD_TIMEOUT="};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (!strncmp(kv, prefixes[i], strlen(prefixes[i]))) return 1;
    return 0;
}

/* The .icd files the ocl-icd loader reads: $OCL_ICD_VENDORS (a folder or one file), else /etc/OpenCL/vendors. */
static void print_icds(void) {
    const char *dir = getenv("OCL_ICD_VENDORS");
    if (!dir || !*dir) dir = "/etc/OpenCL/vendors";
    DIR *d = opendir(dir);
    if (!d) {
        FILE *f = fopen(dir, "r");
        if (f) {
            char line[512] = "";
            if (!fgets(line, sizeof line, f)) line[0] = 0;
            line[strcspn(line, "\r\n")] = 0;
            fclose(f);
            printf("ICD file        %s -> %s\n", dir, line);
        } else {
            printf("ICD folder      %s: missing (no OpenCL driver registered; Debian: apt-get install pocl-opencl-icd)\n", dir);
        }
        return;
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".icd")) continue;
        char path[1024], line[512] = "";
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "r");
        if (f) {
            if (!fgets(line, sizeof line, f)) line[0] = 0;
            fclose(f);
        }
        line[strcspn(line, "\r\n")] = 0;
        printf("ICD file        %s -> %s\n", path, line[0] ? line : "(unreadable or empty)");
        n++;
    }
    closedir(d);
    if (!n) printf("ICD folder      %s: no .icd files (no OpenCL driver registered)\n", dir);
}

/* The memory limits and PoCL's kernel-cache folder (gf_env_check): what the driver will run under. */
static void print_limits(const cli_settings *cs) {
    gf_env_report r;
    gf_env_check(cs->opt.pocl_cache, cs->opt.pocl_cache_from, &r);
    char a[32] = "none", b[32] = "none", c[64] = "none";
    if (r.as_limit) snprintf(a, sizeof a, "%llu MiB", (unsigned long long)(r.as_limit >> 20));
    if (r.data_limit) snprintf(b, sizeof b, "%llu MiB", (unsigned long long)(r.data_limit >> 20));
    if (r.cgroup_limit) snprintf(c, sizeof c, "%llu MiB", (unsigned long long)(r.cgroup_limit >> 20));
    printf("memory limits   address space (ulimit -v) %s, data (ulimit -d) %s, cgroup %s%s%s\n", a, b, c,
           r.cgroup_limit ? " in " : "", r.cgroup_limit ? r.cgroup_file : "");
    printf("                the OpenCL driver and host BLAS need an address space of %llu MiB or more: %s\n",
           (unsigned long long)(r.min_address_space >> 20), r.mem_problem[0] ? r.mem_problem : "ok");
    printf("RAM             %llu MiB: devices sharing host memory plan their buffers within half of it\n",
           (unsigned long long)(r.ram >> 20));
    printf("PoCL cache      %s (from %s), %.0f MiB free: %s\n", r.pocl_cache, r.pocl_cache_from,
           r.pocl_cache_free / 1048576.0, r.pocl_problem[0] ? r.pocl_problem : "ok");
}

static int doctor_main(int argc, char **argv, cli_opts *o);

int cmd_doctor(int argc, char **argv) {
    cli_opts o;
    int rc = doctor_main(argc, argv, &o);
    cli_opts_free(&o);
    return rc == CLI_HELP ? 0 : rc;
}

static int doctor_main(int argc, char **argv, cli_opts *o) {
    const char *device = NULL;
    int no_selftest = 0;
    const cli_opt defs[] = {
        {"device", 'd', CLI_STR, &device, "SEL", "device to check (default: the one train would use)", NULL, NULL, 1},
        {"no-selftest", 0, CLI_FLAG, &no_selftest, NULL, "skip the kernel build and selftest (fast)", NULL, NULL, 0},
    };
    int rc = cli_opts_parse(o, "doctor", defs, sizeof defs / sizeof defs[0], &doc, argc, argv);
    if (rc) return rc;
    if (o->first_arg < argc) return cli_usage_error("doctor", "unexpected argument '%s'", argv[o->first_arg]);
    /* the report goes to stdout in order, even when stderr is interleaved */
    setvbuf(stdout, NULL, _IOLBF, 0);

    printf("%s doctor: paste all of this into a bug report\n", cli_prog);
    section("gradfeat");
    int ma, mi, pa;
    gf_clblast_version(&ma, &mi, &pa);
    printf("gradfeat        %s (git %s)\n", gf_version(), gf_git_hash());
    printf("CLBlast         %d.%d.%d\n", ma, mi, pa);
    char blas[512];
    cli_host_blas_describe(blas, sizeof blas);
    printf("host BLAS       %s\n", blas);
    cli_denormals_describe(blas, sizeof blas);
    printf("subnormals      %s\n", blas);
    /* the headers only expose the API level they were asked for, not their own release */
    printf("OpenCL headers  API level %d.%d (CL_TARGET_OPENCL_VERSION %d)\n", CL_TARGET_OPENCL_VERSION / 100,
           CL_TARGET_OPENCL_VERSION / 10 % 10, CL_TARGET_OPENCL_VERSION);
#if defined(__clang__)
    printf("compiler        clang %s\n", __VERSION__);
#elif defined(__GNUC__)
    printf("compiler        gcc %s\n", __VERSION__);
#endif
    struct utsname u;
    if (uname(&u) == 0) printf("system          %s %s %s\n", u.sysname, u.release, u.machine);

    section("environment");
    int nenv = 0;
    for (char **e = environ; e && *e; e++)
        if (env_matters(*e)) { printf("%s\n", *e); nenv++; }
    if (!nenv) printf("(no GRADFEAT_*, OCL_ICD_*, POCL_* or other OpenCL variables set)\n");
    print_icds();
    /* what the library is handed (it reads no environment variable): each setting and where it came from */
    cli_settings cs;
    char serr[1400];
    int bad_setting = cli_settings_load(&cs, device, serr, sizeof serr);
    print_limits(&cs);

    section("settings");
    for (int i = 0; i < cs.n; i++) printf("%-17s %s  (from %s)\n", cs.row[i].name, cs.row[i].value, cs.row[i].from);
#ifdef GF_TEST_HOOKS
    printf("%-17s %s  (from %s)\n", "test hooks", "compiled in (GRADFEAT_TEST_KILL_AT)", "build option GF_TEST_HOOKS");
#endif
    if (bad_setting) printf("problem: %s\n", serr);

    section("OpenCL platforms and devices");
    gf_device_info *d = NULL;
    int n = 0;
    char msg[2048] = "";
    gf_status st = gf_devices_list_opt(&cs.opt, &d, &n, msg, sizeof msg);
    if (st != GF_OK) {
        printf("none: %s\n", msg[0] ? msg : gf_status_name(st));
        section("result");
        printf("problem: no OpenCL device (exit %d). See README \"Troubleshooting\".\n", (int)st);
        fprintf(stderr, "%s: error: %s\n", cli_prog, msg[0] ? msg : gf_status_name(st));
        free(d);
        return (int)st;
    }
    int last_platform = -1;
    for (int i = 0; i < n; i++) {
        if (d[i].platform_index != last_platform) {
            last_platform = d[i].platform_index;
            printf("platform %d: %s (%s)\n", d[i].platform_index, d[i].platform_name, d[i].platform_version);
        }
        printf("  device %d (%d:%d): %s\n", d[i].global_index, d[i].platform_index, d[i].device_index, d[i].name);
        printf("    type %s, vendor %s, driver %s, %s, %s\n", d[i].is_gpu ? "gpu" : d[i].is_cpu ? "cpu" : "other",
               d[i].vendor, d[i].driver_version, d[i].version, d[i].c_version);
        printf("    compute units %u,", d[i].compute_units);
        print_mib(" global memory", (unsigned long long)d[i].global_mem);
        print_mib(", max allocation", (unsigned long long)d[i].max_alloc);
        print_mib(", local memory", (unsigned long long)d[i].local_mem);
        printf(", max work-group %zu\n", d[i].max_work_group);
        printf("    fp64 %s, fp16 %s, unified host memory %s\n", d[i].fp64 ? "yes" : "no", d[i].fp16 ? "yes" : "no",
               d[i].unified_memory ? "yes" : "no");
    }
    free(d);

    section("chosen device");
    gf_ctx *ctx;
    rc = cli_ctx_open_unchecked(device, 0, &ctx);
    if (rc) {
        section("result");
        printf("problem: cannot open the device (exit %d)\n", rc);
        return rc;
    }
    const gf_device_info *cd = gf_ctx_device(ctx);
    printf("device %d (%d:%d) %s — %s\n", cd->global_index, cd->platform_index, cd->device_index, cd->name,
           gf_ctx_device_reason(ctx));
    printf("kernel paths: %s\n", gf_ctx_paths(ctx));

    section("kernel cache");
    gf_cache_info ci;
    st = gf_cache_get_info(ctx, &ci);
    if (st != GF_OK) {
        rc = cli_fail(ctx, st);
        gf_ctx_free(ctx);
        return rc;
    }
    printf("dir             %s\nused            %s (%s)\nentries         %d (%.1f KiB)\n", ci.dir,
           ci.enabled ? "yes" : "no", ci.why, ci.entries, ci.bytes / 1024.0);

    section("CLBlast tuning");
    gf_tune_info ti;
    gf_tune_get_info(ctx, &ti);
    static const char *const tune_state[] = {"not tuned", "tuned, applied", "tuning file IGNORED", "tuned, not applied"};
    printf("state           %s\nfile            %s\nnote            %s\n", tune_state[ti.state],
           ti.path[0] ? ti.path : "(none: no cache folder)", ti.note);
    if (ti.state == GF_TUNE_APPLIED || ti.state == GF_TUNE_UNUSED)
        printf("measured        SGEMM %.1f GFLOP/s with CLBlast's defaults, %.1f tuned (gradfeat tune)\n",
               ti.gflops_default, ti.gflops_tuned);

    section("selftest");
    int failed = 0, rows_n = 0;
    if (no_selftest) {
        printf("skipped (--no-selftest)\n");
    } else {
        double secs = 0;
        st = gf_ctx_warmup(ctx, &secs);
        int src = 0, hits = 0, saves = 0;
        gf_cache_counters(ctx, &src, &hits, &saves);
        if (st != GF_OK) {
            printf("kernel build FAILED after %.2f s\n", secs);
            section("result");
            printf("problem: %s (exit %d)\n", gf_status_name(st), (int)st);
            rc = cli_fail(ctx, st);
            gf_ctx_free(ctx);
            return rc;
        }
        printf("kernels ready in %.2f s (%d built from source, %d from the cache, %d saved to it)\n", secs, src, hits, saves);
        gf_check_row *rows = NULL;
        st = gf_selftest(ctx, &rows, &rows_n);
        printf("%-32s %12s %12s %10s  %s\n", "check", "max abs", "max rel", "tol", "result");
        for (int i = 0; i < rows_n; i++) {
            printf("%-32s %12.3e %12.3e %10.1e  %s\n", rows[i].name, rows[i].max_abs, rows[i].max_rel, rows[i].tol,
                   rows[i].pass ? "ok" : "FAIL");
            failed += !rows[i].pass;
        }
        printf("%d passed, %d failed\n", rows_n - failed, failed);
        free(rows);
        if (st != GF_OK && !failed) printf("selftest error: %s\n", gf_ctx_last_error(ctx));
    }

    section("result");
    rc = failed ? GF_ERR_CHECK : (st != GF_OK ? (int)st : 0);
    if (rc == 0) printf("all good%s\n", no_selftest ? " (selftest skipped)" : "");
    else printf("problem: %s (exit %d)\n", failed ? "selftest checks failed" : gf_status_name((gf_status)rc), rc);
    if (rc && !failed) fprintf(stderr, "%s: error: %s\n", cli_prog, gf_ctx_last_error(ctx));
    gf_ctx_free(ctx);
    return rc;
}
