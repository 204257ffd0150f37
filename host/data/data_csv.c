/* CSV manifests: `path,labels[,split]`, labels ';'-separated (multi-label,
 * VOC/COCO style) given as class names or integers. Rows that cannot be used
 * (wrong column count, unknown / out-of-range label, missing file) are skipped
 * and reported with the manifest line number. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include "data_internal.h"
#include "gf_file.h"

typedef struct csv_row { char *path, *split; int line, tok0, ntok; } csv_row;

typedef struct csv_state {
    csv_row *rows; int nrows, caprows;
    char **tok; int ntok, captok;
} csv_state;

/* Splits one line into fields (double quotes, "" escapes). Fields point into
 * line, which is modified. Returns the number of fields (<= maxf, more are counted). */
static int split_fields(char *line, char **f, int maxf) {
    int n = 0;
    char *p = line;
    for (;;) {
        while (*p == ' ' || *p == '\t') p++;
        char *start = p, *w = p;
        if (*p == '"') {
            p++;
            for (;;) {
                if (!*p) break;
                if (*p == '"') {
                    if (p[1] == '"') { *w++ = '"'; p += 2; continue; }
                    p++;
                    break;
                }
                *w++ = *p++;
            }
            while (*p && *p != ',') p++;   /* garbage after the closing quote is dropped */
        } else {
            while (*p && *p != ',') *w++ = *p++;
            while (w > start && (w[-1] == ' ' || w[-1] == '\t')) w--;
        }
        int more = *p == ',';
        if (more) p++;
        *w = 0;
        if (n < maxf) f[n] = start;
        n++;
        if (!more) break;
    }
    return n;
}

static int parse_int(const char *s, int *v) {
    if (!*s) return 0;
    long x = 0;
    for (const char *p = s; *p; p++) {
        if (!isdigit((unsigned char)*p)) return 0;
        x = x * 10 + (*p - '0');
        if (x > 1000000) return 0;
    }
    *v = (int)x;
    return 1;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int find_name(char **names, int n, const char *s) {
    char **hit = bsearch(&s, names, (size_t)n, sizeof(char *), cmp_str);
    return hit ? (int)(hit - names) : -1;
}

static void free_state(csv_state *cs) {
    for (int i = 0; i < cs->nrows; i++) { free(cs->rows[i].path); free(cs->rows[i].split); }
    for (int i = 0; i < cs->ntok; i++) free(cs->tok[i]);
    free(cs->rows);
    free(cs->tok);
}

static gf_status read_text(const char *path, char **text, char *err, size_t err_size) {
    *text = NULL;
    char why[256];
    FILE *f = gf_fopen_regular(path, why, sizeof why);
    if (!f) return gf_fail_msg(err, err_size, GF_ERR_INPUT, "manifest %s: %s", path, why);
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > ((off_t)1 << 30)) {
        fclose(f);
        return gf_fail_msg(err, err_size, GF_ERR_INPUT, "manifest %s: not a regular file of at most 1 GiB", path);
    }
    size_t n = (size_t)st.st_size;
    char *t = malloc(n + 1);
    if (!t) { fclose(f); return gf_fail_msg(err, err_size, GF_ERR_MEMORY, "manifest %s: out of memory", path); }
    if (fread(t, 1, n, f) != n) {
        fclose(f); free(t);
        return gf_fail_msg(err, err_size, GF_ERR_INPUT, "manifest %s: read error", path);
    }
    fclose(f);
    t[n] = 0;
    if (strlen(t) != n) {
        free(t);
        return gf_fail_msg(err, err_size, GF_ERR_INPUT, "manifest %s: contains NUL bytes (not a text file)", path);
    }
    *text = t;
    return GF_OK;
}

#define OOM() gf_fail_msg(err, err_size, GF_ERR_MEMORY, "manifest: out of memory")

gf_status gfd_open_csv(const char *path, const gf_dataset_options *o, gf_dataset **out, char *err, size_t err_size) {
    char *text;
    GF_TRY(read_text(path, &text, err, err_size));
    char *dir = gfd_strdup(path);
    if (!dir) { free(text); return OOM(); }
    char *slash = strrchr(dir, '/');
    if (slash) slash[1] = 0; else dir[0] = 0;
    gf_dataset *ds = gfd_new(GF_DATA_CSV, path);
    csv_state cs = {0};
    gf_status st = ds ? GF_OK : OOM();
    if (ds) { ds->max_pixels = o->max_pixels; ds->max_file_bytes = o->max_file_bytes; }
    int has_split = 0;

    /* ---- pass 1: rows and label tokens ---- */
    char *p = text;
    if ((unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB && (unsigned char)p[2] == 0xBF) p += 3;
    int line_no = 0, seen_data = 0;
    while (st == GF_OK && *p) {
        char *line = p;
        char *nl = strchr(p, '\n');
        if (nl) { *nl = 0; p = nl + 1; } else p += strlen(p);
        line_no++;
        size_t L = strlen(line);
        while (L && (line[L - 1] == '\r' || line[L - 1] == ' ' || line[L - 1] == '\t')) line[--L] = 0;
        char *q = line;
        while (*q == ' ' || *q == '\t') q++;
        if (!*q || *q == '#') continue;
        char *f[3];
        int nf = split_fields(line, f, 3);
        if (!seen_data++ && nf >= 1 && strcasecmp(f[0], "path") == 0) continue;   /* header */
        char where[64];
        snprintf(where, sizeof where, ":%d", line_no);
        char *loc = malloc(strlen(path) + sizeof where);
        if (!loc) { st = OOM(); break; }
        strcpy(loc, path); strcat(loc, where);
        if (nf < 2 || nf > 3) {
            gfd_problem_add(ds, loc, "expected 2 or 3 columns (path,labels[,split]), got %d", nf);
            free(loc);
            continue;
        }
        if (!*f[0]) { gfd_problem_add(ds, loc, "empty path"); free(loc); continue; }
        free(loc);
        if (nf == 3) has_split = 1;
        if (o->split && *o->split && (nf < 3 || strcmp(f[2], o->split) != 0)) continue;
        if (cs.nrows == cs.caprows) {
            int nc = cs.caprows ? cs.caprows * 2 : 256;
            csv_row *r = realloc(cs.rows, sizeof(csv_row) * (size_t)nc);
            if (!r) { st = OOM(); break; }
            cs.rows = r; cs.caprows = nc;
        }
        csv_row *r = &cs.rows[cs.nrows];
        memset(r, 0, sizeof *r);
        r->line = line_no;
        r->tok0 = cs.ntok;
        r->path = gfd_join(dir, f[0]);
        r->split = nf == 3 ? gfd_strdup(f[2]) : NULL;
        cs.nrows++;
        if (!r->path || (nf == 3 && !r->split)) { st = OOM(); break; }
        for (char *t = f[1]; st == GF_OK && t;) {
            char *semi = strchr(t, ';');
            if (semi) *semi = 0;
            while (*t == ' ' || *t == '\t') t++;
            size_t tl = strlen(t);
            while (tl && (t[tl - 1] == ' ' || t[tl - 1] == '\t')) t[--tl] = 0;
            if (tl) {
                if (cs.ntok == cs.captok) {
                    int nc = cs.captok ? cs.captok * 2 : 512;
                    char **nt = realloc(cs.tok, sizeof(char *) * (size_t)nc);
                    if (!nt) { st = OOM(); break; }
                    cs.tok = nt; cs.captok = nc;
                }
                if (!(cs.tok[cs.ntok] = gfd_strdup(t))) { st = OOM(); break; }
                cs.ntok++;
                r->ntok++;
            }
            t = semi ? semi + 1 : NULL;
        }
    }
    free(text);

    /* ---- classes ---- */
    int numeric = 1;
    for (int i = 0; i < cs.ntok; i++) { int v; if (!parse_int(cs.tok[i], &v)) { numeric = 0; break; } }
    char **sorted = NULL;   /* class names sorted, for lookup, with their indices */
    int *sorted_idx = NULL;
    if (st == GF_OK && o->class_names) {
        st = gfd_read_class_names(o->class_names, &ds->class_names, &ds->num_classes, err, err_size);
    } else if (st == GF_OK && numeric) {
        int K = o->num_classes;
        if (K <= 0) for (int i = 0; i < cs.ntok; i++) { int v = 0; parse_int(cs.tok[i], &v); if (v + 1 > K) K = v + 1; }
        /* numeric labels are class indices: one stray large number would make every
         * later step (class names, one-hot rows, the model's head) that many wide */
        if (K > GFD_MAX_NUMERIC_CLASSES)
            st = gf_fail_msg(err, err_size, GF_ERR_INPUT, "manifest %s: numeric labels up to %d mean %d classes, more than "
                          "the %d supported; check the labels, or name the classes (class_names file)", path, K - 1, K,
                          GFD_MAX_NUMERIC_CLASSES);
        if (st == GF_OK && !(ds->class_names = calloc((size_t)K + 1, sizeof(char *)))) st = OOM();
        for (int k = 0; st == GF_OK && k < K; k++) {
            char b[16];
            snprintf(b, sizeof b, "%d", k);
            if (!(ds->class_names[k] = gfd_strdup(b))) st = OOM();
            else ds->num_classes = k + 1;
        }
    } else if (st == GF_OK) {
        char **u = malloc(sizeof(char *) * ((size_t)cs.ntok + 1));
        if (!u) st = OOM();
        else {
            memcpy(u, cs.tok, sizeof(char *) * (size_t)cs.ntok);
            qsort(u, (size_t)cs.ntok, sizeof(char *), cmp_str);
            int K = 0;
            for (int i = 0; i < cs.ntok; i++) if (!K || strcmp(u[K - 1], u[i]) != 0) u[K++] = u[i];
            ds->class_names = calloc((size_t)K + 1, sizeof(char *));
            if (!ds->class_names) st = OOM();
            for (int k = 0; st == GF_OK && k < K; k++) {
                if (!(ds->class_names[k] = gfd_strdup(u[k]))) st = OOM();
                else ds->num_classes = k + 1;
            }
            free(u);
        }
    }
    const int K = ds ? ds->num_classes : 0;
    if (st == GF_OK && K == 0 && cs.nrows > 0)
        st = gf_fail_msg(err, err_size, GF_ERR_INPUT, "manifest %s: no labels at all", path);
    if (st == GF_OK) {
        sorted = malloc(sizeof(char *) * ((size_t)K + 1));
        sorted_idx = malloc(sizeof(int) * ((size_t)K + 1));
        if (!sorted || !sorted_idx) st = OOM();
        else {
            memcpy(sorted, ds->class_names, sizeof(char *) * (size_t)K);
            qsort(sorted, (size_t)K, sizeof(char *), cmp_str);
            for (int k = 0; k < K; k++) sorted_idx[k] = -1;
        }
    }
    if (st == GF_OK)   /* map sorted position -> class index */
        for (int k = 0; k < K; k++) {
            int pos = find_name(sorted, K, ds->class_names[k]);
            if (pos >= 0 && sorted_idx[pos] < 0) sorted_idx[pos] = k;
        }

    /* ---- pass 2: labels -> samples ---- */
    int multi = o->multi_label == 1;
    for (int i = 0; !multi && i < cs.nrows; i++) if (cs.rows[i].ntok != 1) multi = 1;
    if (st == GF_OK) {
        ds->paths = calloc((size_t)cs.nrows + 1, sizeof(char *));
        ds->splits = has_split ? calloc((size_t)cs.nrows + 1, sizeof(char *)) : NULL;
        ds->label = malloc(sizeof(int) * ((size_t)cs.nrows + 1));
        ds->multi = multi ? calloc((size_t)cs.nrows * K + 1, 1) : NULL;
        if (!ds->paths || (has_split && !ds->splits) || !ds->label || (multi && !ds->multi)) st = OOM();
    }
    for (int i = 0; st == GF_OK && i < cs.nrows; i++) {
        csv_row *r = &cs.rows[i];
        uint8_t *m = multi ? ds->multi + (size_t)ds->n * K : NULL;
        int bad = 0, single = -1;
        for (int t = 0; t < r->ntok && !bad; t++) {
            const char *tok = cs.tok[r->tok0 + t];
            int k = -1, v, pos = find_name(sorted, K, tok);
            if (pos >= 0) k = sorted_idx[pos];
            else if (parse_int(tok, &v) && (numeric || o->class_names)) k = v;
            if (k < 0 || k >= K) {
                char where[64];
                snprintf(where, sizeof where, ":%d", r->line);
                char *loc = malloc(strlen(path) + sizeof where);
                if (loc) { strcpy(loc, path); strcat(loc, where); }
                if (parse_int(tok, &v)) gfd_problem_add(ds, loc ? loc : path, "label %s out of range [0,%d)", tok, K);
                else gfd_problem_add(ds, loc ? loc : path, "unknown label '%s'", tok);
                free(loc);
                bad = 1;
                break;
            }
            if (m) m[k] = 1;
            single = k;
        }
        if (bad) { if (m) memset(m, 0, (size_t)K); continue; }
        ds->paths[ds->n] = r->path; r->path = NULL;
        if (ds->splits) { ds->splits[ds->n] = r->split; r->split = NULL; }
        ds->label[ds->n] = multi ? -1 : single;
        ds->n++;
    }
    free(sorted);
    free(sorted_idx);
    free_state(&cs);
    free(dir);
    if (st == GF_OK) st = gfd_verify_and_compact(ds, o->verify, o->threads, err, err_size);
    if (st == GF_OK) st = gfd_finish(ds, err, err_size);
    if (st != GF_OK) { gf_dataset_free(ds); return st; }
    *out = ds;
    return GF_OK;
}
