/* Checkpoint files (host/method/checkpoint.c): the framing shared by every checkpoint kind. */
#ifndef GF_CHECKPOINT_H
#define GF_CHECKPOINT_H
#include <cjson/cJSON.h>
#include "gf_internal.h"

/* The framing every gradfeat checkpoint kind shares (train's gf_ckpt in train.h, pretraining's):
 * magic | u64 json_len | u64 data_len | u64 FNV-1a 64 of json+data | json | data,
 * written atomically. Reading checks magic, sizes and checksum (GF_ERR_INPUT
 * naming the file as "<what> <path>"); *buf owns json and data. */
gf_status gf_frame_write(gf_ctx *ctx, const char *path, const char magic[8], const char *json, const void *data,
                         size_t data_len);
gf_status gf_frame_read(gf_ctx *ctx, const char *path, const char magic[8], const char *what, void **buf,
                        const char **json, size_t *json_len, const char **data, size_t *data_len);
/* The data area as named arrays: put appends count elements of elem bytes to data and records
 * [byte offset, count, elem] under name in the JSON object layout (src NULL: nothing); take
 * copies the array back into dst, or a fresh malloc'ed buffer when fresh is given, after
 * checking that it has exactly count elements of elem bytes inside the dl data bytes (0 if not). */
void gf_frame_put_array(gf_sink *data, cJSON *layout, const char *name, const void *src, size_t count, size_t elem);
int gf_frame_take_array(const cJSON *layout, const char *name, const char *data, size_t dl, size_t count, size_t elem,
                        void **fresh, void *dst);
#endif
