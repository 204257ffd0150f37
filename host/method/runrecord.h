/* Run records (results.json, checkpoints' job configuration): exact decimals for float settings and
 * the environment a run ran in; the per-method evaluation files of a run directory, which `gradfeat
 * report` reads (formats: host/report/report.h). */
#ifndef GF_RUNRECORD_H
#define GF_RUNRECORD_H
#include <cjson/cJSON.h>
#include <stdint.h>
#include "gradfeat.h"

/* Shortest decimal that reads back as the same float: 0.001f -> "0.001" (not 0.0010000000474974513).
 * buf: at least 32 bytes. Returns buf. */
const char *gf_float_repr(char *buf, float v);
/* Rewrites, recursively, every non-integer number of `node` that is exactly a float (a setting held in a
 * float field) as its shortest float decimal, so JSON readers see "lr": 0.001. Objects under a key listed
 * in `skip` (NULL-terminated; may be NULL) are left alone (measured values kept at double precision). */
void gf_json_exact_floats(cJSON *node, const char *const *skip);
/* {"gradfeat", "git", "device", "device_version", "driver", "platform", "platform_version", "host"} */
cJSON *gf_run_environment(const gf_ctx *ctx);

/* counts[K*K] = 0, then counts[label*K + argmax(scores row)]++ for each of the n
 * samples (scores: n x K logits, row major; ties go to the lower class index, as
 * gf_accuracy does). Labels outside [0, K) are not counted. Pure. */
void gf_confusion_matrix(const float *scores, const int *labels, int n, int K, uint64_t *counts);

/* Write RUN_DIR/confusion_<method>.json / RUN_DIR/ap_<method>.json (atomically);
 * split is "val" or "train". ap: K values, NaN = no positives (written as null). */
gf_status gf_report_write_confusion(gf_ctx *ctx, const char *run_dir, const char *method, const char *split,
                                    const uint64_t *counts, int K);
gf_status gf_report_write_ap(gf_ctx *ctx, const char *run_dir, const char *method, const char *split, const double *ap,
                             int K);
#endif
