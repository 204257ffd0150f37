/* --config FILE: option defaults from a file of "key value" lines (see cli.h).
 *
 *   # comment                         blank lines and lines starting with # are skipped
 *   epochs 5                          key, blanks, value
 *   lr = 0.01                         "key = value" and "key=value" too
 *   --batch 32                        a leading "--" is allowed (copy-paste from a command line)
 *   max_device_mem 4G                 '_' and '-' are the same; keys are case-insensitive
 *   run-dir "runs/with space" # why   quoted values keep blanks and '#'; " # ..." ends a line
 *   quiet                             a key alone is a switch: value ""
 *
 * Precedence (the caller's job, see cmd_train.c): command-line flags > config
 * file > GRADFEAT_* environment twins > built-in defaults. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "gf_file.h"
#include "gf_msg.h"

#define LINE_MAX_BYTES 8192

/* Unquote the value in place; NULL on an unterminated quote. Unquoted values stop at " #". */
static char *parse_value(char *v) {
    if (*v == '"' || *v == '\'') {
        char q = *v, *out = v, *in = v + 1;
        for (; *in && *in != q; in++) {
            if (q == '"' && *in == '\\' && (in[1] == '"' || in[1] == '\\')) in++;
            *out++ = *in;
        }
        if (*in != q) return NULL;
        in++;
        while (*in == ' ' || *in == '\t') in++;
        if (*in && *in != '#') return NULL;                     /* text after the closing quote */
        *out = 0;
        return v;
    }
    for (char *p = v; *p; p++)
        if (*p == '#' && (p == v || p[-1] == ' ' || p[-1] == '\t')) { *p = 0; break; }
    size_t n = strlen(v);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t')) v[--n] = 0;
    return v;
}

int cli_config_load(const char *path, int (*set)(void *user, const char *key, const char *value), void *user,
                    char *err, size_t n) {
    if (err && n) err[0] = 0;
    char why[256];
    FILE *f = gf_fopen_regular(path, why, sizeof why);
    if (!f) return gf_fail_msg(err, n, GF_ERR_INPUT, "config file %s: %s", path, why);
    char *line = malloc(LINE_MAX_BYTES + 2);
    if (!line) { fclose(f); return gf_fail_msg(err, n, GF_ERR_MEMORY, "out of memory reading %s", path); }
    int lineno = 0, rc = 0;
    while (!rc && fgets(line, LINE_MAX_BYTES + 2, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len == LINE_MAX_BYTES + 1 && line[len - 1] != '\n') {
            rc = gf_fail_msg(err, n, GF_ERR_INPUT, "%s:%d: line longer than %d bytes", path, lineno, LINE_MAX_BYTES);
            break;
        }
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        char *p = line;
        if (lineno == 1 && !strncmp(p, "\xef\xbb\xbf", 3)) p += 3;        /* UTF-8 byte-order mark */
        while (*p == ' ' || *p == '\t') p++;
        if (!*p || *p == '#') continue;
        if (p[0] == '-' && p[1] == '-') p += 2;
        char *key = p;
        while (isalnum((unsigned char)*p) || *p == '-' || *p == '_') {
            *p = *p == '_' ? '-' : (char)tolower((unsigned char)*p);
            p++;
        }
        char *key_end = p;
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '=') { p++; while (*p == ' ' || *p == '\t') p++; }
        else if (p == key_end && *p && *p != '#') key_end = key;            /* junk glued to the key */
        if (key_end == key) {
            rc = gf_fail_msg(err, n, GF_ERR_USAGE, "%s:%d: expected \"key value\", got '%.60s'", path, lineno, key);
            break;
        }
        *key_end = 0;
        char *value = parse_value(p);
        if (!value) {
            rc = gf_fail_msg(err, n, GF_ERR_USAGE, "%s:%d: unterminated quote or text after the closing quote in the value of '%s'", path, lineno, key);
            break;
        }
        int r = set(user, key, value);
        if (r == -1) {
            rc = gf_fail_msg(err, n, GF_ERR_USAGE, "%s:%d: unknown option '%s'", path, lineno, key);
        } else if (r) {
            rc = gf_fail_msg(err, n, r > 0 && r <= GF_ERR_CHECK ? (gf_status)r : GF_ERR_USAGE,
                             "%s:%d: bad value '%.200s' for '%s'", path, lineno, value, key);
        }
    }
    if (!rc && ferror(f)) {
        rc = gf_fail_msg(err, n, GF_ERR_INPUT, "read error on config file %s", path);
    }
    free(line);
    fclose(f);
    return rc;
}
