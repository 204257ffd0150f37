/* Internal declarations shared by the dataset units (data*.c, preprocess.c). */
#ifndef GF_DATA_INTERNAL_H
#define GF_DATA_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include "gradfeat_data.h"
#include "gf_msg.h"   /* gf_fail_msg: every failure here is a status plus a message in the caller's buffer */

#ifndef GF_TRY
#define GF_TRY(expr) do { gf_status gf_s_ = (expr); if (gf_s_ != GF_OK) return gf_s_; } while (0)
#endif

enum { GFD_PROBLEMS_KEPT = 200 };
/* Most classes a manifest's numeric labels may imply (ImageNet-21k has 21,841). */
enum { GFD_MAX_NUMERIC_CLASSES = 100000 };

typedef struct gfd_problem { char *path, *reason; } gfd_problem;

struct gf_dataset {
    gf_dataset_format format;
    char *root;                 /* folder root / manifest folder / idx images file */
    int n;                      /* usable samples */
    char **paths;               /* folder/csv: n file paths (as opened) */
    char **splits;              /* csv: n split names or NULL entries; NULL array otherwise */
    int *label;                 /* n single labels (-1 when multi-label) */
    uint8_t *multi;             /* multi-label: n x num_classes 0/1; NULL otherwise */
    int multi_label;
    int num_classes;
    char **class_names;
    int *class_count;
    int32_t *w, *h;             /* n image sizes, 0 when unknown */
    /* idx: all images in memory */
    uint8_t *pixels;
    int idx_w, idx_h, idx_c;
    int *idx_row;               /* n rows into pixels (samples skipped for bad labels are absent) */
    /* limits */
    int64_t max_pixels, max_file_bytes;
    /* problems, appended by open and by loader threads */
    pthread_mutex_t mu;
    gfd_problem problems[GFD_PROBLEMS_KEPT];
    int kept;
    int64_t n_problems;
    uint8_t *failed;            /* n flags: load failure already recorded */
};

void gfd_problem_add(gf_dataset *ds, const char *path, const char *fmt, ...) GF_PRINTF(3, 4);
char *gfd_strdup(const char *s);
char *gfd_join(const char *dir, const char *name);
int gfd_is_dir(const char *path);
int gfd_is_file(const char *path);
gf_dataset *gfd_new(gf_dataset_format f, const char *root);
/* Sets the class names (copied) and counts per class from label/multi. */
gf_status gfd_finish(gf_dataset *ds, char *err, size_t err_size);
int gfd_online_cpus(void);

/* Image files: read + check + decode. `want_decode` 0 = header checks only. */
gf_status gfd_check_image_file(const char *path, int64_t max_bytes, int64_t max_pixels, int full_decode,
                               int *w, int *h, char *why, size_t why_size);
gf_status gfd_decode_file(const char *path, int64_t max_bytes, int64_t max_pixels, gf_image *img,
                          char *why, size_t why_size);
/* Verify ds->paths in parallel (GF_VERIFY_* level), drop the bad samples (one
 * problem record each, in path order) and compact paths/splits/label/multi;
 * fills ds->w/h. */
gf_status gfd_verify_and_compact(gf_dataset *ds, int level, int threads, char *err, size_t err_size);

gf_status gfd_open_folder(const char *path, const gf_dataset_options *o, gf_dataset **out, char *err, size_t err_size);
gf_status gfd_open_idx(const char *path, const gf_dataset_options *o, gf_dataset **out, char *err, size_t err_size);
gf_status gfd_open_csv(const char *path, const gf_dataset_options *o, gf_dataset **out, char *err, size_t err_size);
/* Reads a class-name file (one per line, blank lines ignored). */
gf_status gfd_read_class_names(const char *path, char ***names, int *n, char *err, size_t err_size);

/* Preprocessing with reusable buffers (gf_preprocess_u8 uses a temporary one). */
typedef struct gfd_ws { float *buf[3]; size_t cap[3]; } gfd_ws;
void gfd_ws_free(gfd_ws *ws);
gf_status gfd_preprocess(const gf_preprocess *pp, const uint8_t *src, int sw, int sh, int sc, uint64_t seed,
                         float *out, gfd_ws *ws, char *err, size_t err_size);
gf_status gfd_dataset_sample(gf_dataset *ds, int i, const gf_preprocess *pp, uint64_t seed, float *out, gfd_ws *ws,
                             char *err, size_t err_size);

uint64_t gfd_mix64(uint64_t x);
double gfd_uniform(uint64_t *s);
void gfd_random_crop(const gf_preprocess *pp, int sw, int sh, uint64_t *rng, int *x0, int *y0, int *cw, int *ch);

#endif
