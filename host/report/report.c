/* HTML report of a run directory (see report.h). Everything is inlined: the
 * page opens from a file:// URL or an e-mail attachment with no network and no
 * JavaScript. Numbers are read back from the run files, never recomputed. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "gf_internal.h"
#include "gradfeat_train.h"
#include "report.h"
#include "gf_file.h"

#define MAX_METHODS 8
#define MAX_CLASSES 4096

static const char *const DESCR[4] = {"probe w1\xe1\xb5\x80 f(x) + b1 (activation baseline)",
                                     "gradient features \xcf\x89\xcc\x84\xe1\xb5\x80 J(x) w2 + b1",
                                     "paper Eq. 2: w1\xe1\xb5\x80 f(x) + b1 + \xcf\x89\xcc\x84\xe1\xb5\x80 J(x) w2",
                                     "backprop of the top block and the head"};
static const char *const COLORS[MAX_METHODS] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                                "#9467bd", "#8c564b", "#e377c2", "#17becf"};

/* ---------------- small helpers ---------------- */

typedef struct { char *s; size_t len, cap; int oom; } sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) { b->oom = 1; return; }
        b->s = p; b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void sb_printf(sbuf *b, const char *fmt, ...) {
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    if ((size_t)k < sizeof tmp) { sb_put(b, tmp, (size_t)k); return; }
    char *big = malloc((size_t)k + 1);
    if (!big) { b->oom = 1; return; }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)k + 1, fmt, ap);
    va_end(ap);
    sb_put(b, big, (size_t)k);
    free(big);
}

/* HTML-escape (also fine inside attributes and SVG text). */
static void sb_esc(sbuf *b, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '<': sb_put(b, "&lt;", 4); break;
        case '>': sb_put(b, "&gt;", 4); break;
        case '&': sb_put(b, "&amp;", 5); break;
        case '"': sb_put(b, "&quot;", 6); break;
        case '\'': sb_put(b, "&#39;", 5); break;
        default: sb_put(b, s, 1);
        }
    }
}

/* Escaped, at most max characters (bytes; cut before a UTF-8 continuation), "..." when cut. */
static void sb_esc_n(sbuf *b, const char *s, size_t max) {
    size_t n = strlen(s);
    if (n <= max) { sb_esc(b, s); return; }
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80) max--;
    char tmp[64];
    if (max >= sizeof tmp) max = sizeof tmp - 1;
    memcpy(tmp, s, max);
    tmp[max] = 0;
    sb_esc(b, tmp);
    sb_put(b, "\xe2\x80\xa6", 3);
}

static char *read_text(const char *path, size_t *len_out) {
    FILE *f = gf_fopen_regular(path, NULL, 0);
    if (!f) return NULL;
    size_t cap = 1 << 14, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t r = fread(buf + len, 1, cap - len - 1, f);
        len += r;
        if (r == 0) break;
        if (len + 1 == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb; cap *= 2;
        }
    }
    fclose(f);
    if (!buf) { errno = ENOMEM; return NULL; }
    buf[len] = 0;
    if (len_out) *len_out = len;
    return buf;
}

/* ---------------- the run files ---------------- */

typedef struct {
    char name[64];
    int n, cap, epochs;
    double *epoch, *y[4];       /* train loss, train metric, val loss, val metric; NAN = not measured */
    double seconds;             /* sum over epochs */
} series;

typedef struct {
    const char *dir;
    cJSON *results;             /* NULL when results.json is missing */
    int multi;                  /* metric is mAP */
    series m[MAX_METHODS];
    int nm;
    int have_metrics;
    char **classes;             /* from classes.txt; NULL when absent */
    int nclasses;
    char notes[4][1400];         /* warnings shown on the page */
    int nnotes;
} run;

static int method_slot(run *r, const char *name) {
    for (int i = 0; i < r->nm; i++)
        if (!strcmp(r->m[i].name, name)) return i;
    if (r->nm == MAX_METHODS) return -1;
    series *s = &r->m[r->nm];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    return r->nm++;
}

/* Known methods first, in the paper's order, then any others as they came. */
static void sort_methods(run *r) {
    series tmp[MAX_METHODS];
    int k = 0;
    unsigned used = 0;
    for (int j = 0; j < 4; j++)
        for (int i = 0; i < r->nm; i++)
            if (!strcmp(r->m[i].name, gf_job_method_name(j))) { tmp[k++] = r->m[i]; used |= 1u << i; }
    for (int i = 0; i < r->nm; i++)
        if (!(used & (1u << i))) tmp[k++] = r->m[i];
    memcpy(r->m, tmp, sizeof(series) * (size_t)r->nm);
}

static double num_or_nan(const cJSON *o, const char *key, int negative_is_missing) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v)) return NAN;
    double d = v->valuedouble;
    return (negative_is_missing && d < 0) || !isfinite(d) ? NAN : d;
}

static gf_status load_metrics(run *r, const char *path, char *err, size_t en) {
    size_t len;
    char *text = read_text(path, &len);
    if (!text) {
        if (errno == ENOENT) return GF_OK;
        return gf_fail_msg(err, en, GF_ERR_INPUT, "cannot read %s: %s", path, strerror(errno));
    }
    r->have_metrics = 1;
    gf_status st = GF_OK;
    int line = 0;
    for (char *p = text; *p && st == GF_OK;) {
        char *nl = strchr(p, '\n');
        int complete = nl != NULL;
        if (nl) *nl = 0;
        line++;
        char *q = p;
        while (*q == ' ' || *q == '\t' || *q == '\r') q++;
        if (*q) {
            cJSON *o = cJSON_Parse(q);
            const cJSON *mn = o ? cJSON_GetObjectItemCaseSensitive(o, "method") : NULL;
            const cJSON *ep = o ? cJSON_GetObjectItemCaseSensitive(o, "epoch") : NULL;
            if (!o || !cJSON_IsString(mn) || !cJSON_IsNumber(ep)) {
                /* a run killed mid-write leaves a partial last line: note it, keep the rest */
                if (!complete && r->nnotes < 4)
                    snprintf(r->notes[r->nnotes++], sizeof r->notes[0], "%s: incomplete last line %d ignored", path, line);
                else
                    st = gf_fail_msg(err, en, GF_ERR_INPUT, "%s:%d: not a metrics object (need \"method\" and \"epoch\")", path, line);
            } else {
                int k = method_slot(r, mn->valuestring);
                if (k >= 0) {
                    series *s = &r->m[k];
                    if (s->n == s->cap) {
                        int cap = s->cap ? 2 * s->cap : 32;
                        double *e = realloc(s->epoch, (size_t)cap * sizeof(double));
                        if (e) s->epoch = e;
                        for (int j = 0; j < 4 && e; j++) {
                            double *y = realloc(s->y[j], (size_t)cap * sizeof(double));
                            if (!y) { e = NULL; break; }
                            s->y[j] = y;
                        }
                        if (!e) st = gf_fail_msg(err, en, GF_ERR_MEMORY, "out of memory reading %s", path);
                        else s->cap = cap;
                    }
                    if (st == GF_OK) {
                        s->epoch[s->n] = ep->valuedouble;
                        s->y[0][s->n] = num_or_nan(o, "train_loss", 1);
                        s->y[1][s->n] = num_or_nan(o, "train_metric", 1);
                        s->y[2][s->n] = num_or_nan(o, "val_loss", 1);
                        s->y[3][s->n] = num_or_nan(o, "val_metric", 1);
                        double sec = num_or_nan(o, "seconds", 1), eps = num_or_nan(o, "epochs", 1);
                        if (!isnan(sec)) s->seconds += sec;
                        if (!isnan(eps)) s->epochs = (int)eps;
                        s->n++;
                    }
                }
            }
            cJSON_Delete(o);
        }
        p = complete ? nl + 1 : p + strlen(p);
    }
    free(text);
    return st;
}

static gf_status load_classes(run *r, const char *path, char *err, size_t en) {
    char *text = read_text(path, NULL);
    if (!text) return errno == ENOENT ? GF_OK : gf_fail_msg(err, en, GF_ERR_INPUT, "cannot read %s: %s", path, strerror(errno));
    int cap = 0;
    gf_status st = GF_OK;
    int line = 0;
    for (char *p = text; *p && st == GF_OK;) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = 0;
        line++;
        char *tab = strchr(p, '\t');
        if (*p) {
            long idx = strtol(p, NULL, 10);
            if (!tab || idx < 0 || idx >= MAX_CLASSES) {
                st = gf_fail_msg(err, en, GF_ERR_INPUT, "%s:%d: expected \"index<TAB>name\"", path, line);
            } else {
                if (idx >= cap) {
                    int nc = cap ? cap : 16;
                    while (nc <= idx) nc *= 2;
                    char **c = realloc(r->classes, (size_t)nc * sizeof(char *));
                    if (!c) { st = gf_fail_msg(err, en, GF_ERR_MEMORY, "out of memory"); break; }
                    for (int i = cap; i < nc; i++) c[i] = NULL;
                    r->classes = c; cap = nc;
                }
                char *cr = strchr(tab + 1, '\r');
                if (cr) *cr = 0;
                free(r->classes[idx]);
                r->classes[idx] = strdup(tab + 1);
                if (idx + 1 > r->nclasses) r->nclasses = (int)idx + 1;
            }
        }
        p = nl ? nl + 1 : p + strlen(p);
    }
    free(text);
    return st;
}

static void run_free(run *r) {
    cJSON_Delete(r->results);
    for (int i = 0; i < r->nm; i++) {
        free(r->m[i].epoch);
        for (int j = 0; j < 4; j++) free(r->m[i].y[j]);
    }
    for (int i = 0; i < r->nclasses; i++) free(r->classes[i]);
    free(r->classes);
}

static const char *class_name(const run *r, int k, char *buf, size_t n) {
    if (k < r->nclasses && r->classes[k]) return r->classes[k];
    snprintf(buf, n, "%d", k);
    return buf;
}

/* ---------------- formatting ---------------- */

static const char *fmt_metric(char *buf, double v) {
    if (isnan(v)) return "&ndash;";
    snprintf(buf, 32, "%.2f%%", 100 * v);
    return buf;
}

static const char *fmt_loss(char *buf, double v) {
    if (isnan(v)) return "&ndash;";
    snprintf(buf, 32, "%.4f", v);
    return buf;
}

static const char *method_color(int i) { return COLORS[i % MAX_METHODS]; }

static const char *method_descr(const char *name) {
    for (int j = 0; j < 4; j++)
        if (!strcmp(name, gf_job_method_name(j))) return DESCR[j];
    return "";
}

/* Round a range out to "nice" ticks (1, 2, 5 x 10^k). */
static double nice_step(double span, int ticks) {
    double raw = span / ticks, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

static void nice_range(double *lo, double *hi, double *step) {
    if (!(*hi > *lo)) {
        double pad = fabs(*lo) > 0 ? fabs(*lo) * 0.1 : 0.5;
        *lo -= pad; *hi += pad;
    }
    *step = nice_step(*hi - *lo, 4);
    *lo = floor(*lo / *step + 1e-9) * *step;
    *hi = ceil(*hi / *step - 1e-9) * *step;
}

/* One small line chart: train solid, validation dashed, shared y range per row. */
static void svg_panel(sbuf *b, const series *s, int which, double lo, double hi, double step, int percent,
                      const char *color, const char *ylabel) {
    const double W = 260, H = 180, L = 48, R = 10, T = 22, B = 30;
    const double pw = W - L - R, ph = H - T - B;
    double x0 = 1, x1 = 1;
    for (int i = 0; i < s->n; i++) { if (s->epoch[i] > x1) x1 = s->epoch[i]; if (s->epoch[i] < x0) x0 = s->epoch[i]; }
    if (s->epochs > x1) x1 = s->epochs;
    if (x1 <= x0) x1 = x0 + 1;
    sb_printf(b, "<svg class=\"chart\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\">", W, H, W, H);
    sb_printf(b, "<title>");
    sb_esc(b, s->name);
    sb_printf(b, " %s per epoch</title>", ylabel);
    sb_printf(b, "<text x=\"%.0f\" y=\"14\" class=\"ptitle\" fill=\"%s\">", L, color);
    sb_esc(b, s->name);
    sb_printf(b, "</text><text x=\"%.0f\" y=\"14\" class=\"axis\" text-anchor=\"end\">%s</text>", W - R, ylabel);
    /* y grid + labels */
    for (double v = lo; v <= hi + step * 1e-6; v += step) {
        double y = T + ph * (1 - (v - lo) / (hi - lo));
        sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>", L, y, L + pw, y);
        if (percent) sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"axis\" text-anchor=\"end\">%g%%</text>", L - 4, y + 3.5, 100 * v);
        else sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"axis\" text-anchor=\"end\">%.3g</text>", L - 4, y + 3.5, v);
    }
    /* x ticks: integers, at most ~6 labels */
    double xs = nice_step(x1 - x0 > 1 ? x1 - x0 : 1, 5);
    if (xs < 1) xs = 1;
    double first = ceil(x0 / xs) * xs;
    if (first - x0 >= xs / 2) first -= xs;                 /* label the first epoch too: 1, 5, 10, ... */
    for (double u = first; u <= x1 + 1e-9; u += xs) {
        double v = u < x0 ? x0 : u;
        double x = L + pw * (v - x0) / (x1 - x0);
        sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"tick\"/>", x, T + ph, x, T + ph + 4);
        sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"axis\" text-anchor=\"middle\">%g</text>", x, T + ph + 15, v);
    }
    sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"axis\" text-anchor=\"middle\">epoch</text>", L + pw / 2, H - 2);
    sb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" class=\"frame\"/>", L, (double)T, pw, ph);
    for (int pass = 0; pass < 2; pass++) {      /* 0: train, 1: validation */
        const double *y = s->y[which + 2 * pass];
        int any = 0;
        sbuf pts = {0};
        for (int i = 0; i < s->n; i++) {
            if (isnan(y[i])) continue;
            double px = L + pw * (s->epoch[i] - x0) / (x1 - x0), py = T + ph * (1 - (y[i] - lo) / (hi - lo));
            sb_printf(&pts, "%s%.1f,%.1f", any ? " " : "", px, py);
            any++;
        }
        if (any && !pts.oom) {
            sb_printf(b, "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s/>", pts.s, color,
                      pass ? " stroke-dasharray=\"5,3\"" : "");
            if (any <= 40)
                for (int i = 0; i < s->n; i++) {
                    if (isnan(y[i])) continue;
                    double px = L + pw * (s->epoch[i] - x0) / (x1 - x0), py = T + ph * (1 - (y[i] - lo) / (hi - lo));
                    sb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.6\" fill=\"%s\" stroke=\"%s\"/>", px, py,
                              pass ? "#fff" : color, color);
                }
        }
        free(pts.s);
    }
    sb_put(b, "</svg>", 6);
}

/* ---------------- page sections ---------------- */

static const char *CSS =
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;color:#1b1f24;"
    "background:#fff;margin:0}main{max-width:1120px;margin:0 auto;padding:24px 28px 48px}"
    "h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 10px;border-bottom:1px solid #d8dee4;"
    "padding-bottom:4px}.sub{color:#57606a;margin:0 0 8px}code,.mono{font-family:'DejaVu Sans Mono',monospace;"
    "font-size:13px}table{border-collapse:collapse}th,td{padding:5px 10px;border-bottom:1px solid #e4e8ec;"
    "text-align:right;vertical-align:middle}th{background:#f3f5f7;font-weight:600}td.l,th.l{text-align:left}"
    "tr.best td{font-weight:700}.sw{display:inline-block;width:11px;height:11px;border-radius:2px;"
    "margin-right:6px;vertical-align:-1px}.descr{color:#57606a;font-size:12px}"
    ".bar{display:inline-block;height:10px;border-radius:2px;vertical-align:middle}"
    ".charts{display:flex;flex-wrap:wrap;gap:6px}.chart text{font-size:11px;fill:#1b1f24}"
    ".chart .axis{fill:#57606a;font-size:10px}.chart .ptitle{font-weight:700;font-size:12px}"
    ".grid{stroke:#e4e8ec;stroke-width:1}.tick{stroke:#8c959f}.frame{fill:none;stroke:#8c959f}"
    ".legend{color:#57606a;margin:4px 0 8px}.note{background:#fff8c5;border:1px solid #d4a72c;padding:6px 10px;"
    "border-radius:4px;margin:8px 0}.meta td{text-align:left}.meta td:first-child{color:#57606a;"
    "font-family:'DejaVu Sans Mono',monospace;font-size:13px}.mats{display:flex;flex-wrap:wrap;gap:18px}"
    ".mats figure{margin:0}.mats figcaption{font-weight:600;margin-bottom:4px}footer{color:#8c959f;"
    "margin-top:32px;font-size:12px}";

static const cJSON *result_method(const run *r, const char *name) {
    const cJSON *ms = r->results ? cJSON_GetObjectItemCaseSensitive(r->results, "methods") : NULL;
    return cJSON_IsObject(ms) ? cJSON_GetObjectItemCaseSensitive(ms, name) : NULL;
}

static const char *result_str(const run *r, const char *key) {
    const cJSON *v = r->results ? cJSON_GetObjectItemCaseSensitive(r->results, key) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void section_table(sbuf *b, const run *r) {
    const char *mname = r->multi ? "mAP" : "accuracy";
    sb_printf(b, "<h2>Comparison of the methods</h2>\n<table id=\"comparison\"><thead><tr><th class=\"l\">method</th>"
                 "<th class=\"l\">model</th><th>train loss</th><th>train %s</th><th>val loss</th><th>val %s</th>"
                 "<th>seconds</th><th class=\"l\"></th></tr></thead><tbody>\n", mname, mname);
    double best = -1;
    int use_val = 0;
    for (int i = 0; i < r->nm; i++) {
        double v = num_or_nan(result_method(r, r->m[i].name), "val_metric", 0);
        if (!isnan(v)) use_val = 1;
    }
    for (int i = 0; i < r->nm; i++) {
        double v = num_or_nan(result_method(r, r->m[i].name), use_val ? "val_metric" : "train_metric", 0);
        if (!isnan(v) && v > best) best = v;
    }
    for (int i = 0; i < r->nm; i++) {
        const cJSON *x = result_method(r, r->m[i].name);
        if (!x) continue;
        char a[32], c[32], d[32], e[32], f[32];
        double tl = num_or_nan(x, "train_loss", 0), tm = num_or_nan(x, "train_metric", 0);
        double vl = num_or_nan(x, "val_loss", 0), vm = num_or_nan(x, "val_metric", 0);
        double sec = num_or_nan(x, "seconds", 0), shown = use_val ? vm : tm;
        sb_printf(b, "<tr%s><td class=\"l\"><span class=\"sw\" style=\"background:%s\"></span>",
                  !isnan(shown) && shown == best ? " class=\"best\"" : "", method_color(i));
        sb_esc(b, r->m[i].name);
        sb_printf(b, "</td><td class=\"l descr\">");
        sb_esc(b, method_descr(r->m[i].name));
        sb_printf(b, "</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td class=\"l\">", fmt_loss(a, tl),
                  fmt_metric(c, tm), fmt_loss(d, vl), fmt_metric(e, vm), isnan(sec) ? "&ndash;" : (snprintf(f, sizeof f, "%.1f", sec), f));
        if (!isnan(shown))
            sb_printf(b, "<span class=\"bar\" style=\"width:%.0fpx;background:%s\"></span>", 160 * fmin(fmax(shown, 0), 1),
                      method_color(i));
        sb_printf(b, "</td></tr>\n");
    }
    sb_printf(b, "</tbody></table>\n<p class=\"legend\">Final epoch of each method; bold: best %s %s. "
                 "Bars: %s %s on a 0&ndash;100%% scale.</p>\n", use_val ? "validation" : "training", mname,
              use_val ? "validation" : "training", mname);
}

static void section_curves(sbuf *b, const run *r) {
    sb_printf(b, "<h2>Training curves</h2>\n");
    if (!r->have_metrics) { sb_printf(b, "<p class=\"note\">No metrics.jsonl in the run directory: no curves.</p>\n"); return; }
    sb_printf(b, "<p class=\"legend\">One panel per method (the probe trains for more epochs: it runs on cached "
                 "features). Solid: training set, dashed with open markers: validation set. Each row shares its "
                 "y axis.</p>\n");
    for (int which = 0; which < 2; which++) {
        double lo = INFINITY, hi = -INFINITY, step;
        for (int i = 0; i < r->nm; i++)
            for (int j = 0; j < r->m[i].n; j++)
                for (int p = 0; p < 2; p++) {
                    double v = r->m[i].y[which + 2 * p][j];
                    if (!isnan(v)) { lo = fmin(lo, v); hi = fmax(hi, v); }
                }
        if (!(hi >= lo)) continue;                 /* nothing measured in this row */
        if (which == 1) { lo = fmax(lo, 0); hi = fmin(hi, 1); }
        nice_range(&lo, &hi, &step);
        if (which == 1) { lo = fmax(lo, 0); hi = fmin(hi, 1); if (hi <= lo) hi = lo + step; }
        sb_printf(b, "<div class=\"charts\" id=\"%s-curves\">", which ? "metric" : "loss");
        for (int i = 0; i < r->nm; i++)
            if (r->m[i].n)
                svg_panel(b, &r->m[i], which, lo, hi, step, which == 1, method_color(i),
                          which ? (r->multi ? "mAP" : "accuracy") : "loss");
        sb_printf(b, "</div>\n");
    }
}

static void meta_row(sbuf *b, const char *key, const char *val) {
    sb_printf(b, "<tr><td>");
    sb_esc(b, key);
    sb_printf(b, "</td><td>");
    sb_esc(b, val);
    sb_printf(b, "</td></tr>\n");
}

/* A scalar JSON value as text: numbers with the fewest digits that read back the same ("lr": 0.001 stays
 * 0.001), keys ending in _seconds as "1.23 s". Returns NULL for non-scalars. */
static const char *scalar_text(const cJSON *it, char *v, size_t n) {
    if (cJSON_IsString(it)) return it->valuestring;
    if (cJSON_IsBool(it)) return cJSON_IsTrue(it) ? "yes" : "no";
    if (cJSON_IsNull(it)) return "null";
    if (!cJSON_IsNumber(it)) return NULL;
    double d = it->valuedouble;
    size_t kl = it->string ? strlen(it->string) : 0;
    if (kl > 8 && !strcmp(it->string + kl - 8, "_seconds")) snprintf(v, n, "%.2f s", d);
    else if (d == floor(d) && fabs(d) < 1e15) snprintf(v, n, "%.0f", d);
    else
        for (int p = 1; p <= 17; p++) {
            snprintf(v, n, "%.*g", p, d);
            if (strtod(v, NULL) == d) break;
        }
    return v;
}

/* Every scalar of results.json as (key, value) rows in file order, objects other than "methods"
 * flattened with a dotted prefix ("settings.lr", "environment.platform"): new fields show up without a
 * change here. */
typedef void (*scalar_fn)(void *user, const char *key, const char *val);
static void each_scalar(const cJSON *o, const char *prefix, scalar_fn fn, void *user) {
    const cJSON *it;
    char v[64], key[256];
    cJSON_ArrayForEach(it, o) {
        if (!it->string) continue;
        snprintf(key, sizeof key, "%s%s", prefix, it->string);
        if (cJSON_IsObject(it)) {
            if (!*prefix && !strcmp(it->string, "methods")) continue;
            char sub[260];
            snprintf(sub, sizeof sub, "%s.", key);
            each_scalar(it, sub, fn, user);
            continue;
        }
        const char *t = scalar_text(it, v, sizeof v);
        if (t) fn(user, key, t);
    }
}

static void meta_row_cb(void *user, const char *key, const char *val) { meta_row(user, key, val); }

static void section_meta(sbuf *b, const run *r, const char *results_path) {
    sb_printf(b, "<h2>Run</h2>\n<table class=\"meta\" id=\"metadata\"><tbody>\n");
    char v[256];
    each_scalar(r->results, "", meta_row_cb, b);
    double total = 0;
    int any = 0;
    for (int i = 0; i < r->nm; i++) {
        double s = num_or_nan(result_method(r, r->m[i].name), "seconds", 0);
        if (isnan(s) && r->m[i].n) s = r->m[i].seconds;
        if (!isnan(s)) { total += s; any = 1; }
    }
    if (any) { snprintf(v, sizeof v, "%.2f s", total); meta_row(b, "training time (all methods)", v); }
    struct stat stt;
    if (r->results && stat(results_path, &stt) == 0) {
        struct tm tmv;
        gmtime_r(&stt.st_mtime, &tmv);
        strftime(v, sizeof v, "%Y-%m-%d %H:%M:%S UTC", &tmv);
        meta_row(b, "results.json written", v);
    }
    meta_row(b, "run directory", r->dir);
    sb_printf(b, "</tbody></table>\n");
}

/* Confusion matrix of one method: cells shaded by the row-normalised count
 * (recall per true class), counts printed when the matrix is small enough. */
static void svg_confusion(sbuf *b, const run *r, const char *method, int color_idx, const double *c, int K) {
    double cell = K <= 10 ? 34 : K <= 20 ? 22 : fmax(4, 440.0 / K);
    size_t longest = 1;
    char nb[32];
    for (int k = 0; k < K; k++) { size_t l = strlen(class_name(r, k, nb, sizeof nb)); if (l > longest) longest = l; }
    if (longest > 24) longest = 24;
    /* room for the rotated column labels (~0.5 em per character at 45 degrees) and the two captions */
    const double L = 14 + 6.2 * (double)longest, T = 8, B = 40 + 4.6 * (double)longest;
    double W = L + cell * K + 8, H = T + cell * K + B, total = 0, diag = 0;
    for (int i = 0; i < K; i++)
        for (int j = 0; j < K; j++) { total += c[(size_t)i * K + j]; if (i == j) diag += c[(size_t)i * K + j]; }
    sb_printf(b, "<figure><figcaption><span class=\"sw\" style=\"background:%s\"></span>", method_color(color_idx));
    sb_esc(b, method);
    sb_printf(b, " &mdash; %.2f%% of %.0f correct</figcaption>", total > 0 ? 100 * diag / total : 0.0, total);
    sb_printf(b, "<svg class=\"chart\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\"><title>"
                 "confusion matrix ", W, H, W, H);
    sb_esc(b, method);
    sb_printf(b, "</title>");
    for (int i = 0; i < K; i++) {
        double rs = 0;
        for (int j = 0; j < K; j++) rs += c[(size_t)i * K + j];
        for (int j = 0; j < K; j++) {
            double v = c[(size_t)i * K + j], f = rs > 0 ? v / rs : 0;
            /* white -> dark blue */
            int R = (int)(255 - f * (255 - 8)), G = (int)(255 - f * (255 - 48)), Bc = (int)(255 - f * (255 - 107));
            sb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"rgb(%d,%d,%d)\" "
                         "stroke=\"%s\" stroke-width=\"%s\"/>", L + j * cell, T + i * cell, cell, cell, R, G, Bc,
                      i == j ? "#1b1f24" : "#e4e8ec", i == j ? "1.2" : "0.5");
            if (K <= 20 && v > 0)
                sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" style=\"font-size:%dpx;fill:%s\">%.0f</text>",
                          L + (j + 0.5) * cell, T + (i + 0.5) * cell + 4, K <= 10 ? 11 : 9, f > 0.5 ? "#fff" : "#1b1f24", v);
        }
    }
    int fs = cell >= 10 ? 11 : 8;
    for (int k = 0; k < K && cell >= 8; k++) {
        const char *nm = class_name(r, k, nb, sizeof nb);
        sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" style=\"font-size:%dpx\">", L - 4, T + (k + 0.5) * cell + 4, fs);
        sb_esc_n(b, nm, 24);
        sb_printf(b, "</text><text transform=\"translate(%.1f,%.1f) rotate(-45)\" text-anchor=\"end\" style=\"font-size:%dpx\">",
                  L + (k + 0.5) * cell + 3, T + K * cell + 8, fs);
        sb_esc_n(b, nm, 24);
        sb_printf(b, "</text>");
    }
    sb_printf(b, "<text x=\"4\" y=\"%.1f\" class=\"axis\">rows: true class</text><text x=\"4\" y=\"%.1f\" class=\"axis\">"
                 "columns: predicted</text></svg></figure>\n", H - 20, H - 6);
}

static gf_status read_json_file(const char *path, cJSON **out, char *err, size_t en) {
    *out = NULL;
    char *text = read_text(path, NULL);
    if (!text) return errno == ENOENT ? GF_OK : gf_fail_msg(err, en, GF_ERR_INPUT, "cannot read %s: %s", path, strerror(errno));
    *out = cJSON_Parse(text);
    free(text);
    return *out ? GF_OK : gf_fail_msg(err, en, GF_ERR_INPUT, "%s: not valid JSON", path);
}

static gf_status section_confusion(sbuf *b, const run *r, char *err, size_t en) {
    int shown = 0;
    gf_status st = GF_OK;
    for (int i = 0; i < r->nm && st == GF_OK; i++) {
        char path[1400];
        snprintf(path, sizeof path, "%s/confusion_%s.json", r->dir, r->m[i].name);
        cJSON *o;
        if ((st = read_json_file(path, &o, err, en)) != GF_OK || !o) continue;
        const cJSON *counts = cJSON_GetObjectItemCaseSensitive(o, "counts");
        int K = cJSON_GetArraySize(counts);
        double *c = NULL;
        if (!cJSON_IsArray(counts) || K < 1 || K > MAX_CLASSES)
            st = gf_fail_msg(err, en, GF_ERR_INPUT, "%s: \"counts\" must be a K x K array of counts", path);
        else if (r->nclasses && K != r->nclasses)
            st = gf_fail_msg(err, en, GF_ERR_INPUT, "%s: %d classes but classes.txt has %d", path, K, r->nclasses);
        else if (!(c = calloc((size_t)K * K, sizeof(double))))
            st = gf_fail_msg(err, en, GF_ERR_MEMORY, "out of memory");
        for (int row = 0; row < K && st == GF_OK; row++) {
            const cJSON *rv = cJSON_GetArrayItem(counts, row);
            if (!cJSON_IsArray(rv) || cJSON_GetArraySize(rv) != K) {
                st = gf_fail_msg(err, en, GF_ERR_INPUT, "%s: row %d of \"counts\" does not have %d entries", path, row, K);
                break;
            }
            for (int col = 0; col < K; col++) {
                const cJSON *x = cJSON_GetArrayItem(rv, col);
                if (!cJSON_IsNumber(x) || x->valuedouble < 0) {
                    st = gf_fail_msg(err, en, GF_ERR_INPUT, "%s: counts[%d][%d] is not a non-negative number", path, row, col);
                    break;
                }
                c[(size_t)row * K + col] = x->valuedouble;
            }
        }
        if (st == GF_OK) {
            if (!shown++) {
                const cJSON *sp = cJSON_GetObjectItemCaseSensitive(o, "split");
                sb_printf(b, "<h2>Confusion matrices</h2>\n<p class=\"legend\">%s set; shading: fraction of each true "
                             "class (row); outlined: the diagonal.</p>\n<div class=\"mats\" id=\"confusion\">\n",
                          cJSON_IsString(sp) && !strcmp(sp->valuestring, "train") ? "Training" : "Evaluation");
            }
            svg_confusion(b, r, r->m[i].name, i, c, K);
        }
        free(c);
        cJSON_Delete(o);
    }
    if (shown) sb_printf(b, "</div>\n");
    return st;
}

static gf_status section_ap(sbuf *b, const run *r, char *err, size_t en) {
    double *ap[MAX_METHODS] = {0};
    int K = 0, any = 0;
    gf_status st = GF_OK;
    for (int i = 0; i < r->nm && st == GF_OK; i++) {
        char path[1400];
        snprintf(path, sizeof path, "%s/ap_%s.json", r->dir, r->m[i].name);
        cJSON *o;
        if ((st = read_json_file(path, &o, err, en)) != GF_OK || !o) continue;
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "ap");
        int k = cJSON_GetArraySize(a);
        if (!cJSON_IsArray(a) || k < 1 || k > MAX_CLASSES) st = gf_fail_msg(err, en, GF_ERR_INPUT, "%s: \"ap\" must be an array of K values", path);
        else if (K && k != K) st = gf_fail_msg(err, en, GF_ERR_INPUT, "%s: %d classes, other ap_*.json files have %d", path, k, K);
        else if (r->nclasses && k != r->nclasses) st = gf_fail_msg(err, en, GF_ERR_INPUT, "%s: %d classes but classes.txt has %d", path, k, r->nclasses);
        else if (!(ap[i] = malloc((size_t)k * sizeof(double)))) st = gf_fail_msg(err, en, GF_ERR_MEMORY, "out of memory");
        for (int j = 0; j < k && st == GF_OK; j++) {
            const cJSON *x = cJSON_GetArrayItem(a, j);
            if (cJSON_IsNull(x)) ap[i][j] = NAN;
            else if (cJSON_IsNumber(x) && x->valuedouble >= 0 && x->valuedouble <= 1) ap[i][j] = x->valuedouble;
            else st = gf_fail_msg(err, en, GF_ERR_INPUT, "%s: ap[%d] must be a number in [0, 1] or null", path, j);
        }
        if (st == GF_OK) { K = k; any = 1; }
        cJSON_Delete(o);
    }
    if (st == GF_OK && any) {
        sb_printf(b, "<h2>Average precision per class</h2>\n<table id=\"per-class-ap\"><thead><tr><th class=\"l\">class</th>");
        for (int i = 0; i < r->nm; i++)
            if (ap[i]) { sb_printf(b, "<th class=\"l\"><span class=\"sw\" style=\"background:%s\"></span>", method_color(i)); sb_esc(b, r->m[i].name); sb_printf(b, "</th>"); }
        sb_printf(b, "</tr></thead><tbody>\n");
        char nb[32];
        for (int k = 0; k <= K; k++) {
            sb_printf(b, k == K ? "<tr class=\"best\"><td class=\"l\">mean (mAP)" : "<tr><td class=\"l\">");
            if (k < K) sb_esc(b, class_name(r, k, nb, sizeof nb));
            sb_printf(b, "</td>");
            for (int i = 0; i < r->nm; i++) {
                if (!ap[i]) continue;
                double v = 0;
                if (k < K) v = ap[i][k];
                else {
                    int c = 0;
                    for (int j = 0; j < K; j++) if (!isnan(ap[i][j])) { v += ap[i][j]; c++; }
                    v = c ? v / c : NAN;
                }
                if (isnan(v)) { sb_printf(b, "<td class=\"l\">&ndash; (no positives)</td>"); continue; }
                sb_printf(b, "<td class=\"l\"><span class=\"bar\" style=\"width:%.0fpx;background:%s\"></span> %.1f%%</td>",
                          90 * v, method_color(i), 100 * v);
            }
            sb_printf(b, "</tr>\n");
        }
        sb_printf(b, "</tbody></table>\n");
    }
    for (int i = 0; i < MAX_METHODS; i++) free(ap[i]);
    return st;
}

/* ---------------- entry points ---------------- */

gf_status gf_report_render(const char *run_dir, const char *out_path, char *err, size_t en) {
    run r;
    memset(&r, 0, sizeof r);
    r.dir = run_dir;
    char rpath[1200], mpath[1200], cpath[1200], opath[1200];
    snprintf(rpath, sizeof rpath, "%s/results.json", run_dir);
    snprintf(mpath, sizeof mpath, "%s/metrics.jsonl", run_dir);
    snprintf(cpath, sizeof cpath, "%s/classes.txt", run_dir);
    if (!out_path) { snprintf(opath, sizeof opath, "%s/report.html", run_dir); out_path = opath; }
    struct stat sd;
    if (stat(run_dir, &sd) != 0 || !S_ISDIR(sd.st_mode))
        return gf_fail_msg(err, en, GF_ERR_INPUT, "%s: not a run directory (%s)", run_dir, stat(run_dir, &sd) ? strerror(errno) : "not a folder");
    gf_status st = read_json_file(rpath, &r.results, err, en);
    if (st == GF_OK && r.results && !cJSON_IsObject(r.results))
        st = gf_fail_msg(err, en, GF_ERR_INPUT, "%s: expected a JSON object", rpath);
    if (st == GF_OK) st = load_metrics(&r, mpath, err, en);
    if (st == GF_OK) st = load_classes(&r, cpath, err, en);
    if (st == GF_OK && !r.results && !r.have_metrics)
        st = gf_fail_msg(err, en, GF_ERR_INPUT, "%s: neither results.json nor metrics.jsonl (written by `gradfeat train --run-dir`)", run_dir);
    if (st != GF_OK) { run_free(&r); return st; }
    if (!r.results && r.nnotes < 4)
        snprintf(r.notes[r.nnotes++], sizeof r.notes[0], "no results.json: the run has not finished (or failed); curves only");
    const char *metric = result_str(&r, "metric");
    r.multi = metric && !strcmp(metric, "mAP");
    /* methods of results.json that metrics.jsonl did not mention still get a table row */
    const cJSON *ms = r.results ? cJSON_GetObjectItemCaseSensitive(r.results, "methods") : NULL, *it;
    cJSON_ArrayForEach(it, ms) if (it->string) method_slot(&r, it->string);
    sort_methods(&r);

    sbuf b = {0};
    const char *base = strrchr(run_dir, '/');
    base = base && base[1] ? base + 1 : run_dir;
    sb_printf(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
                  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>gradfeat report: ");
    sb_esc(&b, base);
    sb_printf(&b, "</title>\n<style>%s</style></head>\n<body><main>\n<h1>gradfeat report: ", CSS);
    sb_esc(&b, base);
    sb_printf(&b, "</h1>\n<p class=\"sub\">");
    const char *model = result_str(&r, "model"), *data = result_str(&r, "data"), *top = result_str(&r, "top");
    if (model) { sb_printf(&b, "model <code>"); sb_esc(&b, model); sb_printf(&b, "</code>"); }
    if (top) { sb_printf(&b, ", top block <code>"); sb_esc(&b, top); sb_printf(&b, "</code>"); }
    if (data) { sb_printf(&b, " adapted to <code>"); sb_esc(&b, data); sb_printf(&b, "</code>"); }
    if (r.results) {
        double ntr = num_or_nan(r.results, "n_train", 0), nva = num_or_nan(r.results, "n_val", 0);
        if (!isnan(ntr)) sb_printf(&b, "; %.0f training", ntr);
        if (!isnan(nva)) sb_printf(&b, " / %.0f evaluation samples", nva);
        if (r.nclasses) sb_printf(&b, ", %d classes", r.nclasses);
        sb_printf(&b, "; metric: %s", r.multi ? "mAP (multi-label)" : "top-1 accuracy");
    }
    sb_printf(&b, "</p>\n");
    for (int i = 0; i < r.nnotes; i++) { sb_printf(&b, "<p class=\"note\">"); sb_esc(&b, r.notes[i]); sb_printf(&b, "</p>\n"); }
    if (r.results) section_table(&b, &r);
    section_curves(&b, &r);
    st = section_confusion(&b, &r, err, en);
    if (st == GF_OK) st = section_ap(&b, &r, err, en);
    if (st == GF_OK) {
        if (r.results) section_meta(&b, &r, rpath);
        time_t now = time(NULL);
        struct tm tmv;
        char ts[64];
        gmtime_r(&now, &tmv);
        strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S UTC", &tmv);
        sb_printf(&b, "<footer>Generated by gradfeat %s (git %s) on %s from <code>", gf_version(), gf_git_hash(), ts);
        sb_esc(&b, run_dir);
        sb_printf(&b, "</code>. Gradients as features: Mu, Li, Liang, ICLR 2020.</footer>\n</main></body></html>\n");
        if (b.oom) st = gf_fail_msg(err, en, GF_ERR_MEMORY, "out of memory building the report");
    }
    if (st == GF_OK) {
        if (!strcmp(out_path, "-")) {
            if (fwrite(b.s, 1, b.len, stdout) != b.len || fflush(stdout) != 0)
                st = gf_fail_msg(err, en, GF_ERR_IO, "writing the report to stdout failed: %s", strerror(errno));
        } else {
            st = gf_write_file_atomic_msg(out_path, b.s, b.len, err, en);
        }
    }
    free(b.s);
    run_free(&r);
    return st;
}

/* ---------------- several runs side by side ---------------- */

typedef struct { char **key, **val; int n, cap, oom; } kvlist;

static void kv_add(void *user, const char *key, const char *val) {
    kvlist *l = user;
    if (l->oom) return;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        char **k = realloc(l->key, (size_t)cap * sizeof *k), **v = k ? realloc(l->val, (size_t)cap * sizeof *v) : NULL;
        if (k) l->key = k;
        if (v) l->val = v;
        if (!k || !v) { l->oom = 1; return; }
        l->cap = cap;
    }
    l->key[l->n] = strdup(key);
    l->val[l->n] = strdup(val);
    if (!l->key[l->n] || !l->val[l->n]) { free(l->key[l->n]); free(l->val[l->n]); l->oom = 1; return; }
    l->n++;
}

static const char *kv_get(const kvlist *l, const char *key) {
    for (int i = 0; i < l->n; i++) if (!strcmp(l->key[i], key)) return l->val[i];
    return NULL;
}

static void kv_free(kvlist *l) {
    for (int i = 0; i < l->n; i++) { free(l->key[i]); free(l->val[i]); }
    free(l->key); free(l->val);
}

gf_status gf_report_compare(const char *const *dirs, int n, const char *out_path, char *err, size_t en) {
    if (n < 1) return gf_fail_msg(err, en, GF_ERR_USAGE, "no run directories");
    if (!out_path) return gf_fail_msg(err, en, GF_ERR_USAGE, "several run directories: say where the page goes with -o FILE ('-' = stdout)");
    cJSON **res = calloc((size_t)n, sizeof *res);
    kvlist *kv = calloc((size_t)n, sizeof *kv), all = {0};
    if (!res || !kv) { free(res); free(kv); return gf_fail_msg(err, en, GF_ERR_MEMORY, "out of memory"); }
    gf_status st = GF_OK;
    for (int i = 0; i < n && st == GF_OK; i++) {
        char rpath[1200];
        snprintf(rpath, sizeof rpath, "%s/results.json", dirs[i]);
        st = read_json_file(rpath, &res[i], err, en);
        if (st == GF_OK && !cJSON_IsObject(res[i]))
            st = gf_fail_msg(err, en, GF_ERR_INPUT, "%s: %s", rpath, res[i] ? "expected a JSON object" :
                      "missing (the run has not finished; `gradfeat report RUN_DIR` shows its curves)");
        if (st == GF_OK) {
            each_scalar(res[i], "", kv_add, &kv[i]);
            for (int k = 0; k < kv[i].n; k++) if (!kv_get(&all, kv[i].key[k])) kv_add(&all, kv[i].key[k], "");
            if (kv[i].oom || all.oom) st = gf_fail_msg(err, en, GF_ERR_MEMORY, "out of memory");
        }
    }
    sbuf b = {0};
    if (st == GF_OK) {
        sb_printf(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
                      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                      "<title>gradfeat: %d runs side by side</title>\n<style>%s tr.diff td{background:#fff8c5}</style>"
                      "</head>\n<body><main>\n<h1>gradfeat: %d runs side by side</h1>\n", n, CSS, n);
        /* methods: the final metric of each run (validation when the run had validation data) */
        sb_printf(&b, "<h2>Methods</h2>\n<table id=\"compare-methods\"><thead><tr><th class=\"l\">method</th>");
        for (int i = 0; i < n; i++) { sb_printf(&b, "<th>"); sb_esc(&b, dirs[i]); sb_printf(&b, "</th>"); }
        sb_printf(&b, "</tr></thead><tbody>\n");
        for (int m = 0; m < 4; m++) {
            int any = 0;
            for (int i = 0; i < n; i++) {
                const cJSON *ms = cJSON_GetObjectItemCaseSensitive(res[i], "methods");
                any |= cJSON_GetObjectItemCaseSensitive(ms, gf_job_method_name(m)) != NULL;
            }
            if (!any) continue;
            sb_printf(&b, "<tr><td class=\"l\">%s</td>", gf_job_method_name(m));
            for (int i = 0; i < n; i++) {
                const cJSON *ms = cJSON_GetObjectItemCaseSensitive(res[i], "methods");
                const cJSON *x = cJSON_GetObjectItemCaseSensitive(ms, gf_job_method_name(m));
                const cJSON *mt = cJSON_GetObjectItemCaseSensitive(res[i], "metric");
                double vm = num_or_nan(x, "val_metric", 0), tm = num_or_nan(x, "train_metric", 0);
                double vl = num_or_nan(x, "val_loss", 0);
                if (!x) sb_printf(&b, "<td>&ndash;</td>");
                else if (!isnan(vm))
                    sb_printf(&b, "<td>val %s %.2f%% (loss %.4f)</td>", cJSON_IsString(mt) ? mt->valuestring : "",
                              100 * vm, vl);
                else if (!isnan(tm))
                    sb_printf(&b, "<td>train %s %.2f%%</td>", cJSON_IsString(mt) ? mt->valuestring : "", 100 * tm);
                else sb_printf(&b, "<td>&ndash;</td>");
            }
            sb_printf(&b, "</tr>\n");
        }
        sb_printf(&b, "</tbody></table>\n<h2>Settings and environment</h2>\n<p class=\"legend\">Every scalar of each "
                      "results.json; highlighted rows differ between the runs.</p>\n"
                      "<table class=\"meta\" id=\"compare-settings\"><thead><tr><th class=\"l\">setting</th>");
        for (int i = 0; i < n; i++) { sb_printf(&b, "<th class=\"l\">"); sb_esc(&b, dirs[i]); sb_printf(&b, "</th>"); }
        sb_printf(&b, "</tr></thead><tbody>\n");
        for (int k = 0; k < all.n; k++) {
            const char *first = kv_get(&kv[0], all.key[k]);
            int differ = 0;
            for (int i = 1; i < n; i++) {
                const char *v = kv_get(&kv[i], all.key[k]);
                if (!v != !first || (v && strcmp(v, first))) differ = 1;
            }
            sb_printf(&b, "<tr%s><td>", differ ? " class=\"diff\"" : "");
            sb_esc(&b, all.key[k]);
            sb_printf(&b, "</td>");
            for (int i = 0; i < n; i++) {
                const char *v = kv_get(&kv[i], all.key[k]);
                sb_printf(&b, "<td>");
                if (v) sb_esc(&b, v); else sb_printf(&b, "&ndash;");
                sb_printf(&b, "</td>");
            }
            sb_printf(&b, "</tr>\n");
        }
        sb_printf(&b, "</tbody></table>\n<footer>Generated by gradfeat %s (git %s).</footer>\n</main></body></html>\n",
                  gf_version(), gf_git_hash());
        if (b.oom) st = gf_fail_msg(err, en, GF_ERR_MEMORY, "out of memory building the report");
    }
    if (st == GF_OK) {
        if (!strcmp(out_path, "-")) {
            if (fwrite(b.s, 1, b.len, stdout) != b.len || fflush(stdout) != 0)
                st = gf_fail_msg(err, en, GF_ERR_IO, "writing the report to stdout failed: %s", strerror(errno));
        } else {
            st = gf_write_file_atomic_msg(out_path, b.s, b.len, err, en);
        }
    }
    free(b.s);
    for (int i = 0; i < n; i++) { cJSON_Delete(res[i]); kv_free(&kv[i]); }
    kv_free(&all);
    free(res); free(kv);
    return st;
}
