/* `gradfeat selftest`: the op table's quick rows (optable.c: every kernel family, the runtime's GEMM with
 * CLBlast forced, small shapes) on the context as it is, each checked by the same driver and references as
 * tests/test_ops.c. One result row per table row: max abs is the largest |got - ref| of its comparisons,
 * max rel the worst error as a multiple of its tolerance (atol + rtol |ref| + stol S; infinite when an exact
 * check, e.g. bitwise reproducibility, failed); a row passes when every check passed (max rel <= tol = 1). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "optable.h"

typedef struct row_result { double max_abs, max_ratio; int failed; } row_result;

static void sink_check(ot_sink *s, int pass, double ratio, double abs_err, const char *msg) {
    (void)msg;
    row_result *r = s->user;
    if (!(abs_err <= r->max_abs)) r->max_abs = abs_err;   /* NaN propagates */
    if (!(ratio <= r->max_ratio)) r->max_ratio = ratio;
    r->failed |= !pass;
}
static void sink_error(ot_sink *s, gf_ctx *ctx, gf_status st, const char *what) {
    (void)ctx; (void)st; (void)what;   /* the context keeps the message */
    row_result *r = s->user;
    r->failed = 1;
    r->max_abs = r->max_ratio = INFINITY;
}

gf_status gf_selftest(gf_ctx *ctx, gf_check_row **rows_out, int *count) {
    const row *rows;
    const int n = gf_ot_rows(&rows);
    int quick = 0;
    for (int i = 0; i < n; i++) quick += rows[i].quick;
    *rows_out = NULL;
    *count = 0;
    gf_check_row *out = calloc(quick ? (size_t)quick : 1, sizeof *out);
    if (!out) return gf_fail(ctx, GF_ERR_MEMORY, "selftest: out of host memory");
    gf_status first_error = GF_OK;
    int k = 0, failed = -1;
    for (int i = 0; i < n; i++) {
        if (!rows[i].quick) continue;
        row_result r = {0, 0, 0};
        ot_sink sink = {sink_check, sink_error, &r};
        /* the seed as test_ops gives it: the row's place in the table */
        gf_status st = gf_ot_run_row(ctx, &rows[i], (uint64_t)i + 1, GF_CONV_VARIANT_AUTO, &sink, NULL);
        if (st != GF_OK && first_error == GF_OK) first_error = st;
        gf_check_row *c = &out[k++];
        if (rows[i].note) snprintf(c->name, sizeof c->name, "%s %s", rows[i].op->name, rows[i].note);   /* shorter */
        else rows[i].op->describe(&rows[i], c->name, sizeof c->name);
        c->max_abs = r.max_abs;
        c->max_rel = r.max_ratio;
        c->tol = 1;
        c->pass = !r.failed;
        if (r.failed && failed < 0) failed = k - 1;
    }
    *rows_out = out;
    *count = k;
    if (failed >= 0 && first_error == GF_OK)
        return gf_fail(ctx, GF_ERR_CHECK, "selftest row '%s' failed", out[failed].name);
    return first_error;
}
