/* `gradfeat report RUN_DIR`: one self-contained HTML page (inline SVG and CSS,
 * no scripts, no network) from the files `gradfeat train --run-dir` leaves:
 *
 *   results.json      run metadata + final numbers per method (host/method/rundir.c)
 *   metrics.jsonl     one object per epoch and method (host/method/job.c); -1 = not measured
 *   classes.txt       "index<TAB>name" per class (optional: names for the matrices)
 *   confusion_<method>.json   optional, single-label runs, evaluation split:
 *       {"method": "full", "split": "val", "classes": K,
 *        "counts": [[c00, c01, ...], ...]}    K x K, row = true class,
 *                                             column = predicted class (argmax)
 *   ap_<method>.json          optional, multi-label runs, evaluation split:
 *       {"method": "full", "split": "val", "ap": [ap0, ap1, ..., null, ...]}
 *                                             K values; null = class without positives
 * gf_confusion_matrix / gf_report_write_confusion / gf_report_write_ap (host/method/runrecord.h)
 * produce exactly these files; the page reads them back and checks their shape. */
#ifndef GF_REPORT_H
#define GF_REPORT_H
#include <stddef.h>
#include "gradfeat.h"

/* Render RUN_DIR into out_path (NULL: RUN_DIR/report.html; "-": stdout), written
 * atomically (temp file + rename). On failure err names the file and the problem:
 * GF_ERR_INPUT for a missing/malformed run file, GF_ERR_IO for an output that cannot be written. */
gf_status gf_report_render(const char *run_dir, const char *out_path, char *err, size_t err_size);
/* Several run directories side by side in one page written to out_path ("-": stdout; required): the final
 * metric of each method per run, and every scalar of each results.json (settings, environment) with the
 * rows that differ highlighted. GF_ERR_INPUT when a run has no readable results.json. */
gf_status gf_report_compare(const char *const *dirs, int n, const char *out_path, char *err, size_t err_size);
#endif
