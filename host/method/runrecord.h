/* Run records (results.json, checkpoints' job configuration): exact decimals for float settings and
 * the environment a run ran in. */
#ifndef GF_RUNRECORD_H
#define GF_RUNRECORD_H
#include <cjson/cJSON.h>
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
#endif
