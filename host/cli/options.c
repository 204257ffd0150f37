/* Table-driven options shared by every subcommand (see cli.h, cli_opt).
 *
 * One table per subcommand gives each option its long name, optional short
 * letter, type, target and help. From it come: the getopt_long table, the
 * "--config FILE" keys (host/cli/config.c), the environment twins
 * (GRADFEAT_<NAME>, '-' -> '_', upper case, unless the entry names another)
 * and the option list of --help. Precedence: flags > --config FILE >
 * GRADFEAT_* > defaults. Values that fail to parse exit 2 and name where they
 * came from (the flag, FILE:LINE, or the variable). */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "gf_dist.h"
#include "gf_msg.h"

enum { SRC_DEFAULT = 0, SRC_FLAG, SRC_CONFIG, SRC_ENV };

void (*cli_doc_hook)(const cli_opts *o, const cli_doc *doc);   /* gendoc.c; NULL: parse */


static void env_name(const cli_opt *d, char *out, size_t n) {
    if (d->env) { snprintf(out, n, "%s", d->env); return; }
    snprintf(out, n, "GRADFEAT_");
    for (const char *p = d->name; *p; p++) {
        size_t l = strlen(out);
        if (l + 1 >= n) break;
        out[l] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
        out[l + 1] = 0;
    }
}

/* "--batch", "config file: batch", "environment GRADFEAT_BATCH: --batch" */
const char *cli_opts_origin(const cli_opts *o, const char *name, char *buf, size_t n) {
    for (int i = 0; i < o->n; i++) {
        if (strcmp(o->defs[i].name, name)) continue;
        if (o->src[i] == SRC_ENV) snprintf(buf, n, "environment %s: --%s", o->env[i], name);
        else if (o->src[i] == SRC_CONFIG) snprintf(buf, n, "config file: %s", name);
        else snprintf(buf, n, "--%s", name);
        return buf;
    }
    snprintf(buf, n, "--%s", name);
    return buf;
}

int cli_opts_given(const cli_opts *o, const char *name) {
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->defs[i].name, name)) return o->src[i] != SRC_DEFAULT;
    return 0;
}

void cli_opts_take_unset(const cli_opts *o, const char *const *names, int n_names, void *dst, const void *saved) {
    for (int i = 0; i < o->n; i++) {
        if (o->src[i] != SRC_DEFAULT) continue;
        const cli_opt *d = &o->defs[i];
        for (int k = 0; k < n_names; k++) {
            if (strcmp(d->name, names[k])) continue;
            size_t off = (size_t)((char *)d->target - (char *)dst);
            size_t sz = d->type == CLI_STR ? sizeof(const char *) : d->type == CLI_U64 || d->type == CLI_SIZE
                      ? sizeof(uint64_t) : d->type == CLI_FLOAT ? sizeof(float) : sizeof(int);
            memcpy((char *)dst + off, (const char *)saved + off, sz);
        }
    }
}

int cli_opts_fail(const cli_opts *o, const char *name, const char *fmt, ...) {
    char origin[128], msg[1024];
    va_list ap;
    va_start(ap, fmt);
    gf_vformat(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cli_usage_error(o->cmd, "%s %s", cli_opts_origin(o, name, origin, sizeof origin), msg);
}

static int parse_bool(const char *v, int *out) {
    if (!*v || !strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "on")) { *out = 1; return 0; }
    if (!strcmp(v, "0") || !strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "off")) { *out = 0; return 0; }
    return -1;
}

/* v inside d->choices ("[lo,hi]", brackets open or closed)? 1 when there is no range. */
static int in_range(const cli_opt *d, double v) {
    char a, b;
    double lo, hi;
    if (!d->choices || sscanf(d->choices, " %c %lf , %lf %c", &a, &lo, &hi, &b) != 4) return 1;
    return (a == '(' ? v > lo : v >= lo) && (b == ')' ? v < hi : v <= hi);
}

/* Parse val into option i; on a bad value print the usage error (naming src) and return 2. */
static int set_value(cli_opts *o, int i, const char *val, int src) {
    const cli_opt *d = &o->defs[i];
    o->src[i] = (unsigned char)src;
    char *end;
    switch (d->type) {
    case CLI_STR: *(const char **)d->target = val; return 0;
    case CLI_FLAG: {
        int on = 1;                                      /* a bare --switch; --switch=no turns it off */
        if (val && parse_bool(val, &on)) return cli_opts_fail(o, d->name, "takes yes/no (1/0), got '%s'", val);
        *(int *)d->target = on;
        return 0;
    }
    case CLI_INT:
    case CLI_POS: {
        errno = 0;
        long v = strtol(val, &end, 10);
        long lo = d->type == CLI_POS ? 1 : 0;
        if (!*val || *end)
            return cli_opts_fail(o, d->name, "must be a %s integer, got '%s'", lo ? "positive" : "non-negative", val);
        if (errno == ERANGE || v < lo || v > 1000000000)
            return d->choices ? cli_opts_fail(o, d->name, "must be an integer in %s, got '%s'", d->choices, val)
                              : cli_opts_fail(o, d->name, "must be an integer from %ld to 1000000000, got '%s'", lo, val);
        if (!in_range(d, (double)v)) return cli_opts_fail(o, d->name, "must be an integer in %s, got '%s'", d->choices, val);
        *(int *)d->target = (int)v;
        return 0;
    }
    case CLI_U64: {
        errno = 0;
        unsigned long long v = strtoull(val, &end, 10);
        const char *p = val;
        while (isspace((unsigned char)*p)) p++;
        if (!*val || *end || *p == '-' || errno == ERANGE)
            return cli_opts_fail(o, d->name, "must be an integer from 0 to 18446744073709551615, got '%s'", val);
        *(uint64_t *)d->target = v;
        return 0;
    }
    case CLI_FLOAT: {
        errno = 0;
        float v = strtof(val, &end);
        if (!*val || *end || isnan(v)) return cli_opts_fail(o, d->name, "must be a number, got '%s'", val);
        if (!isfinite(v) || (errno == ERANGE && fabsf(v) > 1))
            return cli_opts_fail(o, d->name, "must be a finite number (a float holds up to 3.4e38), got '%s'", val);
        if (d->choices ? !in_range(d, v) : !(v >= 0))
            return d->choices ? cli_opts_fail(o, d->name, "must be in %s, got '%s'", d->choices, val)
                            : cli_opts_fail(o, d->name, "must be a non-negative number, got '%s'", val);
        *(float *)d->target = v;
        return 0;
    }
    case CLI_SIZE:
        if (cli_parse_size(val, (uint64_t *)d->target))
            return cli_opts_fail(o, d->name, "must be a size like 512M or 4G, got '%s'", val);
        return 0;
    case CLI_CHOICE: {
        size_t l = strlen(val);
        int k = 0;
        for (const char *c = d->choices; c && *c; k++) {
            const char *e = strchr(c, '|');
            size_t cl = e ? (size_t)(e - c) : strlen(c);
            if (cl == l && !strncmp(c, val, l)) { *(int *)d->target = k; return 0; }
            c = e ? e + 1 : c + cl;
        }
        return cli_opts_fail(o, d->name, "must be one of %s, got '%s'", d->choices, val);
    }
    }
    return 0;
}

/* "1e-06" -> "1e-6", "1e+30" -> "1e30" */
static void compact_exponent(char *t) {
    char *e = strchr(t, 'e');
    if (!e) return;
    char *to = e[1] == '-' ? e + 2 : e + 1, *from = to;
    if (*from == '+') from++;
    while (*from == '0' && from[1]) from++;
    memmove(to, from, strlen(from) + 1);
}

/* A float as a person writes it: the fewest digits that read back as the same float, in the exponent form
 * when that is shorter (1e-3, 1e-6, 0.1, 0.999, 1e30). */
static void float_text(float v, char *out, size_t n) {
    char plain[32], expo[32];
    int digits = 1;
    while (snprintf(plain, sizeof plain, "%.*g", digits, v), digits < 9 && strtof(plain, NULL) != v) digits++;
    snprintf(expo, sizeof expo, "%.*e", digits - 1, v);
    compact_exponent(plain);
    compact_exponent(expo);
    snprintf(out, n, "%s", strlen(expo) < strlen(plain) ? expo : plain);
}

/* What the option's target holds before any flag, file or variable: the defaults struct's value. */
static void default_text(const cli_opt *d, char *out, size_t n) {
    switch (d->type) {
    case CLI_STR: snprintf(out, n, "%s", *(const char *const *)d->target ? *(const char *const *)d->target : "none"); break;
    case CLI_INT:
    case CLI_POS: snprintf(out, n, "%d", *(const int *)d->target); break;
    case CLI_FLAG: snprintf(out, n, "%s", *(const int *)d->target ? "on" : "off"); break;
    case CLI_FLOAT: float_text(*(const float *)d->target, out, n); break;
    case CLI_U64:
    case CLI_SIZE: snprintf(out, n, "%llu", (unsigned long long)*(const uint64_t *)d->target); break;
    case CLI_CHOICE: {                                   /* the k-th name of "a|b|c" */
        const char *c = d->choices ? d->choices : "";
        for (int k = *(const int *)d->target; k > 0 && strchr(c, '|'); k--) c = strchr(c, '|') + 1;
        snprintf(out, n, "%.*s", (int)strcspn(c, "|"), c);
        break;
    }
    }
}

const char *cli_opt_help(const cli_opts *o, int i, char *buf, size_t n) {
    const char *h = o->defs[i].help ? o->defs[i].help : "", *mark = strstr(h, CLI_DEFAULT);
    if (!mark) return h;
    snprintf(buf, n, "%.*s%s%s", (int)(mark - h), h, o->def[i], mark + strlen(CLI_DEFAULT));
    return buf;
}

static void print_help(const cli_opts *o, const cli_doc *doc) {
    printf("usage: %s\n\n%s\n", doc->usage, doc->about);
    printf("options (flags > --config FILE > environment > defaults; each one's environment twin is in [];\n"
           "a switch is turned off with --switch=no or TWIN=0):\n");
    for (int i = 0; i < o->n; i++) {
        const cli_opt *d = &o->defs[i];
        char left[64];
        snprintf(left, sizeof left, "%c%c%c --%s%s%s", d->short_opt ? '-' : ' ', d->short_opt ? d->short_opt : ' ',
                 d->short_opt ? ',' : ' ', d->name, d->arg ? " " : d->type == CLI_FLAG ? "[=no]" : "",
                 d->arg ? d->arg : "");
        char help[1024];
        printf("  %-28s %s  [%s]\n", left, cli_opt_help(o, i, help, sizeof help), o->env[i]);
    }
    printf("  %-28s %s  [%s]\n", "    --config FILE", "options from FILE: 'key value' lines, # comments", o->config_env);
    printf("  %-28s %s\n", "-h, --help", "this text");
    if (doc->examples && *doc->examples) printf("\nexamples:\n%s", doc->examples);
}

/* --config FILE: each key is a long option; flags given on the command line win. */
static int config_set(void *user, const char *key, const char *value) {
    cli_opts *o = user;
    for (int i = 0; i < o->n; i++) {
        if (strcmp(o->defs[i].name, key)) continue;
        if (o->src[i] == SRC_FLAG) return 0;                     /* the flag overrides the file */
        char *copy = strdup(value);                              /* value lives only during the call */
        if (!copy) return GF_ERR_MEMORY;
        free(o->owned[i]);
        o->owned[i] = copy;
        return set_value(o, i, copy, SRC_CONFIG);
    }
    return -1;
}

void cli_opts_free(cli_opts *o) {
    for (int i = 0; i < CLI_MAX_OPTS; i++) { free(o->owned[i]); o->owned[i] = NULL; }
}

int cli_opts_parse(cli_opts *o, const char *cmd, const cli_opt *defs, int n, const cli_doc *doc, int argc, char **argv) {
    memset(o, 0, sizeof *o);
    o->cmd = cmd;
    o->defs = defs;
    o->n = n;
    if (n > CLI_MAX_OPTS) return cli_usage_error(cmd, "internal: too many options");
    /* train keeps the plain GRADFEAT_CONFIG it always had; a config file rarely fits two commands */
    if (!strcmp(cmd, "train")) snprintf(o->config_env, sizeof o->config_env, "GRADFEAT_CONFIG");
    else {
        snprintf(o->config_env, sizeof o->config_env, "GRADFEAT_%s_CONFIG", cmd);
        for (char *p = o->config_env; *p; p++) *p = (char)toupper((unsigned char)*p);
    }
    struct option lopts[CLI_MAX_OPTS + 3];
    char shorts[2 * CLI_MAX_OPTS + 2] = "h";
    for (int i = 0; i < n; i++) {
        env_name(&defs[i], o->env[i], sizeof o->env[i]);
        default_text(&defs[i], o->def[i], sizeof o->def[i]);   /* before any value is parsed into the target */
        lopts[i] = (struct option){defs[i].name, defs[i].type == CLI_FLAG ? optional_argument : required_argument, 0, 1000 + i};
        if (defs[i].short_opt) {
            size_t l = strlen(shorts);
            shorts[l] = defs[i].short_opt;
            shorts[l + 1] = defs[i].type == CLI_FLAG ? 0 : ':';
            shorts[l + 2] = 0;
        }
    }
    if (cli_doc_hook) { cli_doc_hook(o, doc); return CLI_HELP; }
    const char *config_path = NULL;
    lopts[n] = (struct option){"help", no_argument, 0, 'h'};
    lopts[n + 1] = (struct option){"config", required_argument, 0, 999};
    lopts[n + 2] = (struct option){0, 0, 0, 0};
    int c, rc;
    optind = 1;
    opterr = gf_dist_rank() == 0;   /* several processes: getopt's own message once, from rank 0 */
    while ((c = getopt_long(argc, argv, shorts, lopts, NULL)) != -1) {
        if (c == 'h') { print_help(o, doc); return CLI_HELP; }
        if (c == 999) { config_path = optarg; continue; }
        int i = c >= 1000 && c < 1000 + n ? c - 1000 : -1;
        for (int k = 0; i < 0 && k < n; k++)
            if (c != '?' && c == defs[k].short_opt) i = k;
        if (i < 0) return cli_usage_error(cmd, "unknown option");
        if ((rc = set_value(o, i, optarg, SRC_FLAG))) return rc;
    }
    o->first_arg = optind;
    if (!config_path) config_path = cli_env_or(NULL, o->config_env);
    if (config_path) {
        char err[1200];
        if ((rc = cli_config_load(config_path, config_set, o, err, sizeof err))) {
            fprintf(stderr, "%s %s: %s\n", cli_prog, cmd, err);   /* a file: each rank reads its own */
            return rc;
        }
    }
    /* environment twins fill what flags and the file left */
    for (int i = 0; i < n; i++) {
        if (o->src[i] != SRC_DEFAULT || defs[i].env_elsewhere) continue;
        const char *v = getenv(o->env[i]);
        if (v && *v && (rc = set_value(o, i, v, SRC_ENV))) return rc;
    }
    return 0;
}
