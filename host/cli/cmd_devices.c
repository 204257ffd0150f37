/* gradfeat devices [--json] */
#include <stdio.h>
#include <stdlib.h>
#include <cjson/cJSON.h>
#include "cli.h"

static const cli_doc doc = {
    "gradfeat devices [--json]",
    "List every OpenCL device of every platform, with the facts gradfeat uses.\n"
    "Select one elsewhere with --device SEL or GRADFEAT_DEVICE=SEL, where SEL is the\n"
    "index (first column), P:D (platform:device), cpu, gpu, or part of a name.\n",
    "  gradfeat devices\n"
    "  GRADFEAT_JSON=1 gradfeat devices | python3 -m json.tool\n"};

int cmd_devices(int argc, char **argv) {
    int json = 0;
    const cli_opt defs[] = {
        {"json", 0, CLI_FLAG, &json, NULL, "machine-readable output", NULL, NULL, 0},
    };
    cli_opts o;
    int rc = cli_opts_parse(&o, "devices", defs, sizeof defs / sizeof defs[0], &doc, argc, argv);
    cli_opts_free(&o);
    if (rc) return rc == CLI_HELP ? 0 : rc;
    if (o.first_arg < argc) return cli_usage_error("devices", "unexpected argument '%s'", argv[o.first_arg]);
    gf_device_info *d; int n;
    char msg[2048];
    cli_settings cs;   /* for PoCL's kernel-cache folder; a bad kernel-path setting does not matter here */
    (void)cli_settings_load(&cs, NULL, msg, sizeof msg);
    gf_status st = gf_devices_list_opt(&cs.opt, &d, &n, msg, sizeof msg);
    if (st != GF_OK) {
        fprintf(stderr, "%s: error: %s\n", cli_prog, msg[0] ? msg : gf_status_name(st));
        return st;
    }
    if (json) {
        cJSON *arr = cJSON_CreateArray();
        for (int i = 0; i < n; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "index", d[i].global_index);
            cJSON_AddNumberToObject(o, "platform_index", d[i].platform_index);
            cJSON_AddNumberToObject(o, "device_index", d[i].device_index);
            cJSON_AddStringToObject(o, "platform", d[i].platform_name);
            cJSON_AddStringToObject(o, "platform_version", d[i].platform_version);
            cJSON_AddStringToObject(o, "name", d[i].name);
            cJSON_AddStringToObject(o, "vendor", d[i].vendor);
            cJSON_AddStringToObject(o, "driver_version", d[i].driver_version);
            cJSON_AddStringToObject(o, "version", d[i].version);
            cJSON_AddStringToObject(o, "opencl_c_version", d[i].c_version);
            cJSON_AddStringToObject(o, "type", d[i].is_gpu ? "gpu" : d[i].is_cpu ? "cpu" : "other");
            cJSON_AddNumberToObject(o, "compute_units", d[i].compute_units);
            cJSON_AddNumberToObject(o, "global_mem_bytes", (double)d[i].global_mem);
            cJSON_AddNumberToObject(o, "max_alloc_bytes", (double)d[i].max_alloc);
            cJSON_AddNumberToObject(o, "local_mem_bytes", (double)d[i].local_mem);
            cJSON_AddNumberToObject(o, "max_work_group_size", (double)d[i].max_work_group);
            cJSON_AddBoolToObject(o, "fp64", d[i].fp64);
            cJSON_AddBoolToObject(o, "fp16", d[i].fp16);
            cJSON_AddBoolToObject(o, "unified_memory", d[i].unified_memory);
            cJSON_AddItemToArray(arr, o);
        }
        char *s = cJSON_Print(arr);
        if (s) printf("%s\n", s);
        free(s);
        cJSON_Delete(arr);
    } else {
        printf("%-4s %-5s %-5s %-40s %-28s %9s %9s %5s %4s %4s %s\n", "idx", "P:D", "type", "device", "platform",
               "mem MiB", "alloc MiB", "wg", "fp64", "fp16", "OpenCL C / driver");
        for (int i = 0; i < n; i++) {
            char pd[16];
            snprintf(pd, sizeof pd, "%d:%d", d[i].platform_index, d[i].device_index);
            printf("%-4d %-5s %-5s %-40.40s %-28.28s %9llu %9llu %5zu %4s %4s %s / %s\n", d[i].global_index, pd,
                   d[i].is_gpu ? "gpu" : d[i].is_cpu ? "cpu" : "other", d[i].name, d[i].platform_name,
                   (unsigned long long)(d[i].global_mem >> 20), (unsigned long long)(d[i].max_alloc >> 20),
                   d[i].max_work_group, d[i].fp64 ? "yes" : "no", d[i].fp16 ? "yes" : "no", d[i].c_version,
                   d[i].driver_version);
        }
    }
    free(d);
    return 0;
}
