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
    if (!f) {
        if (err) snprintf(err, n, "config file %s: %s", path, why);
        return GF_ERR_INPUT;
    }
    char *line = malloc(LINE_MAX_BYTES + 2);
    if (!line) { fclose(f); if (err) snprintf(err, n, "out of memory reading %s", path); return GF_ERR_MEMORY; }
    int lineno = 0, rc = 0;
    while (!rc && fgets(line, LINE_MAX_BYTES + 2, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len == LINE_MAX_BYTES + 1 && line[len - 1] != '\n') {
            if (err) snprintf(err, n, "%s:%d: line longer than %d bytes", path, lineno, LINE_MAX_BYTES);
            rc = GF_ERR_INPUT;
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
            if (err) snprintf(err, n, "%s:%d: expected \"key value\", got '%.60s'", path, lineno, key);
            rc = GF_ERR_USAGE;
            break;
        }
        *key_end = 0;
        char *value = parse_value(p);
        if (!value) {
            if (err) snprintf(err, n, "%s:%d: unterminated quote or text after the closing quote in the value of '%s'", path, lineno, key);
            rc = GF_ERR_USAGE;
            break;
        }
        int r = set(user, key, value);
        if (r == -1) {
            if (err) snprintf(err, n, "%s:%d: unknown option '%s'", path, lineno, key);
            rc = GF_ERR_USAGE;
        } else if (r) {
            if (err) snprintf(err, n, "%s:%d: bad value '%.200s' for '%s'", path, lineno, value, key);
            rc = r > 0 && r <= GF_ERR_CHECK ? r : GF_ERR_USAGE;
        }
    }
    if (!rc && ferror(f)) {
        if (err) snprintf(err, n, "read error on config file %s", path);
        rc = GF_ERR_INPUT;
    }
    free(line);
    fclose(f);
    return rc;
}
