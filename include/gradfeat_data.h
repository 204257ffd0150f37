/* gradfeat — datasets and preprocessing (public C API).
 *
 * Datasets need no OpenCL context, so every fallible call here takes
 * `char *err, size_t err_size` (either may be NULL/0) and returns a gf_status;
 * the message names the file and what is wrong with it. Bad *samples* never
 * stop a run: they are skipped, counted and kept as "problems" (path + reason)
 * that gf_dataset_report() prints. Only a dataset that cannot be used at all
 * (missing root, unreadable manifest, bad IDX header, zero usable samples)
 * fails with GF_ERR_INPUT.
 *
 * Formats (gf_dataset_open picks one from the path unless told):
 *   folder  ImageFolder root/<class>/<image>.{jpg,jpeg,png,bmp,gif,tga,ppm,pgm,pnm}
 *           classes = sub-folders sorted by byte order; an empty class folder
 *           keeps its index (class map stays stable) and is reported.
 *   idx     MNIST / Fashion-MNIST IDX files, gzip or plain. PATH is the images
 *           file (labels file found by replacing "images-idx3" with
 *           "labels-idx1") or a folder holding *-images-idx3-ubyte[.gz] files
 *           (split "train" = train-*, "test" = t10k-*).
 *   csv     manifest lines `path,labels[,split]`; labels ';'-separated (multi-
 *           label) as class names or integers; optional header line starting
 *           with "path"; paths relative to the manifest's folder; fields may be
 *           double-quoted. */
#ifndef GRADFEAT_DATA_H
#define GRADFEAT_DATA_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "gradfeat.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- preprocess */

/* How the decoded image becomes width x height (applied before normalising). */
typedef enum gf_resize_mode {
    GF_RESIZE_STRETCH = 0,      /* resize the whole image to width x height (aspect not kept) */
    GF_RESIZE_SHORTER_CROP = 1  /* torchvision Resize(resize_shorter) + CenterCrop(height, width):
                                   shorter side -> resize_shorter (longer side floor(long*s/short)),
                                   then a centred crop (zero padding if the image is smaller) */
} gf_resize_mode;

typedef enum gf_interp {
    GF_INTERP_BILINEAR = 0,     /* triangle filter, antialiased when shrinking (PIL / torchvision
                                   Resize on images); equals plain half-pixel bilinear when enlarging */
    GF_INTERP_BILINEAR_NOAA = 1,/* point-sampled bilinear, half-pixel centres, no antialiasing
                                   (torch F.interpolate align_corners=False; TF half_pixel_centers) */
    GF_INTERP_BILINEAR_TF_LEGACY = 2, /* TF resize_bilinear align_corners=false, half_pixel=false:
                                   src = dst * in/out */
    GF_INTERP_NEAREST = 3       /* nearest, src = floor((dst + 0.5) * in/out) */
} gf_interp;

/* Everything that turns a decoded 8-bit image into the network's input tensor.
 * The model loader fills it from the model file's metadata; gf_preprocess_init
 * gives the plain defaults. Per output element (channel c, after the geometry):
 *     out = (pixel * scale + offset - mean[c]) / std[c]        pixel in 0..255
 * Output is float NCHW (one sample: channels x height x width), kept in float
 * throughout (no rounding back to 8 bits after resizing). */
typedef struct gf_preprocess {
    int width, height;          /* output (crop) size in pixels, >= 1 */
    int channels;               /* 1 (gray) or 3 (colour) */
    int bgr;                    /* channels == 3: 0 = RGB order, 1 = BGR (Caffe-style models) */
    gf_resize_mode resize;      /* geometry when not augmenting */
    int resize_shorter;         /* GF_RESIZE_SHORTER_CROP: target of the shorter side;
                                   0 = max(width, height) (crop only the longer side) */
    gf_interp interp;
    float scale, offset;        /* pixel (0..255) -> value; defaults 1/255 and 0 */
    float mean[3], std[3];      /* per output channel; defaults 0 and 1 */
    /* Augmentation (training). Both are deterministic functions of the
     * per-sample seed, so a run is reproducible for a loader seed. */
    int random_resized_crop;    /* 1: torchvision RandomResizedCrop replaces `resize`: crop area
                                   fraction in [area_min, area_max], aspect ratio (w/h) log-uniform
                                   in [ratio_min, ratio_max], 10 tries then a centre crop */
    float area_min, area_max;   /* defaults 0.08, 1 */
    float ratio_min, ratio_max; /* defaults 3/4, 4/3 */
    int hflip;                  /* 1: horizontal flip with probability 1/2 */
    int pad_crop;               /* P > 0: CIFAR-style random crop (torchvision RandomCrop(size,
                                   padding=P)): the width x height image from the steps above is
                                   zero-padded (pixel value 0) by P on each side and a width x height
                                   window at offsets ox, oy uniform in [0, 2P] is kept, i.e.
                                   out(y, x) = in(y + oy - P, x + ox - P), 0 outside; then the flip.
                                   0 = off. Offsets are drawn after the flip decision. */
} gf_preprocess;

/* Defaults: stretch, bilinear, RGB, scale 1/255, offset 0, mean 0, std 1,
 * no augmentation (area 0.08..1, ratio 3/4..4/3 ready for when it is enabled). */
void gf_preprocess_init(gf_preprocess *pp, int width, int height, int channels);
/* ImageNet statistics (mean 0.485 0.456 0.406, std 0.229 0.224 0.225) on an RGB pp. */
void gf_preprocess_imagenet(gf_preprocess *pp);
gf_status gf_preprocess_check(const gf_preprocess *pp, char *err, size_t err_size);
/* Number of floats of one preprocessed sample: channels * height * width. */
size_t gf_preprocess_numel(const gf_preprocess *pp);
/* src: 8-bit interleaved (HWC) image, src_c in 1..4 channels (1 gray, 2 gray+alpha,
 * 3 RGB, 4 RGBA; alpha is dropped; RGB -> gray uses 0.299 R + 0.587 G + 0.114 B,
 * gray -> RGB replicates). seed drives the augmentation only. out: numel floats. */
gf_status gf_preprocess_u8(const gf_preprocess *pp, const uint8_t *src, int src_w, int src_h,
                           int src_c, uint64_t seed, float *out, char *err, size_t err_size);
/* Same for a float HWC source whose values play the role of the 0..255 pixels
 * (e.g. lfw_subset's [0,1] faces with scale 1 or after multiplying by 255). */
gf_status gf_preprocess_f32(const gf_preprocess *pp, const float *src, int src_w, int src_h, int src_c,
                            uint64_t seed, float *out, char *err, size_t err_size);
/* Rotates a float CHW image by k quarter turns counter-clockwise (as seen with
 * row 0 at the top), exactly torch.rot90(x, k, dims=(1, 2)) / numpy.rot90(x, k,
 * axes=(1, 2)): k = 1 maps in(y, x) to out(w-1-x, y). k is taken modulo 4
 * (negative k turns clockwise). Output is c x w x h for odd k, c x h x w for even
 * k (batching rotations needs square images). dst must not overlap src. */
void gf_image_rotate90(const float *src, int c, int h, int w, int k, float *dst);
/* Inverse of the value mapping, for looking at samples: out (CHW) -> 8-bit
 * interleaved RGB (3 channels always; gray replicated; BGR swapped back). */
void gf_preprocess_to_rgb8(const gf_preprocess *pp, const float *in, uint8_t *rgb);

/* ------------------------------------------------------------------ datasets */

typedef enum gf_dataset_format {
    GF_DATA_AUTO = 0,           /* folder with class sub-folders -> folder; *.csv -> csv;
                                   IDX magic or a folder of *-idx3-ubyte files -> idx */
    GF_DATA_FOLDER = 1,
    GF_DATA_IDX = 2,
    GF_DATA_CSV = 3
} gf_dataset_format;

/* How much is checked when opening (image formats only; IDX is always read whole). */
enum {
    GF_VERIFY_NONE = 0,         /* list files only; bad ones are found (and dropped) when loaded */
    GF_VERIFY_HEADER = 1,       /* default: size, image header, size limit, JPEG end marker */
    GF_VERIFY_DECODE = 2        /* decode every image once (slow; `data inspect --full`) */
};

typedef struct gf_dataset_options {
    gf_dataset_format format;
    const char *split;          /* folder: use root/<split>; idx: "train" (default) or "test";
                                   csv: keep rows whose 3rd column equals it; NULL = all */
    const char *labels_path;    /* idx: labels file; NULL = derived from the images file name */
    const char *class_names;    /* optional text file, one class name per line (csv, idx) */
    int num_classes;            /* csv/idx integer labels: 0 = max label + 1; labels >= it are skipped */
    int multi_label;            /* csv: -1/0 = auto (multi when any row has != 1 labels),
                                   1 = force multi-label targets; folder/idx are single-label */
    int verify;                 /* GF_VERIFY_*; 0 is NONE, so set it (gf_dataset_options_init does) */
    int threads;                /* verify with this many threads; 0 = online CPUs */
    int64_t max_pixels;         /* images with width*height above this are skipped; 0 = 64 Mpx */
    int64_t max_file_bytes;     /* files above this are skipped; 0 = 256 MiB */
} gf_dataset_options;

void gf_dataset_options_init(gf_dataset_options *o);

typedef struct gf_dataset gf_dataset;

/* Opens a dataset. On failure *out is NULL and err says why (GF_ERR_INPUT for
 * anything about the files, GF_ERR_MEMORY, GF_ERR_USAGE for bad options). */
gf_status gf_dataset_open(const char *path, const gf_dataset_options *opt, gf_dataset **out,
                          char *err, size_t err_size);
void gf_dataset_free(gf_dataset *ds);

gf_dataset_format gf_dataset_get_format(const gf_dataset *ds);
int gf_dataset_count(const gf_dataset *ds);          /* usable samples */
int gf_dataset_num_classes(const gf_dataset *ds);
const char *gf_dataset_class_name(const gf_dataset *ds, int k);
int gf_dataset_is_multi_label(const gf_dataset *ds);
/* Samples whose label (or any of whose labels) is class k. */
int gf_dataset_class_count(const gf_dataset *ds, int k);
/* Single-label class of sample i; -1 for a multi-label dataset. */
int gf_dataset_label(const gf_dataset *ds, int i);
/* Targets of sample i: num_classes floats, one-hot (single-label) or multi-hot. */
void gf_dataset_targets(const gf_dataset *ds, int i, float *out);
/* Path of sample i (folder/csv), or NULL (idx). */
const char *gf_dataset_path(const gf_dataset *ds, int i);
/* Identity of sample i's content, for caches and resumes: IDX, a hash of its pixels; a file, its path,
 * size, inode and modification and change times to the nanosecond (any write or `touch`/`cp -p` moves
 * the change time). 0 when i is out of range or the file is gone. */
uint64_t gf_dataset_sample_key(const gf_dataset *ds, int i);
/* Size of sample i as known so far (0 x 0 when not verified yet). */
void gf_dataset_image_size(const gf_dataset *ds, int i, int *w, int *h);

/* Decoded 8-bit interleaved image of sample i. Free with gf_image_free. A
 * bad file gives GF_ERR_INPUT (and is recorded as a problem once). */
typedef struct gf_image { uint8_t *data; int w, h, c; int from_stb; } gf_image;
gf_status gf_dataset_load_image(gf_dataset *ds, int i, gf_image *img, char *err, size_t err_size);
void gf_image_free(gf_image *img);
/* Load + preprocess sample i into out (gf_preprocess_numel floats). */
gf_status gf_dataset_sample(gf_dataset *ds, int i, const gf_preprocess *pp, uint64_t seed,
                            float *out, char *err, size_t err_size);

/* Skipped inputs: count of all, and the first ones kept (path + reason). */
int64_t gf_dataset_problem_count(const gf_dataset *ds);
int gf_dataset_problems_kept(const gf_dataset *ds);
/* i < gf_dataset_problems_kept; returns the path, *reason set. */
const char *gf_dataset_problem(const gf_dataset *ds, int i, const char **reason);
/* "skipped N inputs" + the first max_lines problems, to f (e.g. stderr). Nothing if none. */
void gf_dataset_report(const gf_dataset *ds, FILE *f, int max_lines);

/* Class map: one line per class, "index<TAB>name". GF_ERR_IO when path cannot be written (also below). */
gf_status gf_dataset_write_class_map(const gf_dataset *ds, const char *path, char *err, size_t err_size);
/* Manifest of the usable samples `path,labels[,split]` (labels by class name,
 * ';'-separated); relative paths are written relative to the manifest's
 * folder when they lie under it, absolute otherwise. Not for idx. */
gf_status gf_dataset_write_csv(const gf_dataset *ds, const char *path, char *err, size_t err_size);

/* Contact sheet of n preprocessed samples (spread evenly over the dataset,
 * augmentation seeded by seed) as a PNG, for a person to look at. Samples that
 * fail to load show as dark tiles. */
gf_status gf_dataset_write_grid(gf_dataset *ds, const gf_preprocess *pp, int n, uint64_t seed, const char *png_path,
                                char *err, size_t err_size);

/* ------------------------------------------------------------- batch loader */

typedef struct gf_loader_options {
    int batch_size;             /* >= 1 */
    int shuffle;                /* new permutation every epoch from (seed, epoch) */
    uint64_t seed;              /* shuffling and augmentation */
    int threads;                /* decoding threads; 0 = decode in gf_loader_next (no threads);
                                   < 0 = online CPUs */
    int prefetch;               /* batches prepared ahead of the one being used; 0 = 2 */
    int drop_last;              /* drop an epoch's last partial batch */
    int epochs;                 /* stop after this many epochs (next gives NULL); 0 = endless */
    const int *indices;         /* optional subset of sample indices (copied); NULL = all */
    int n_indices;
} gf_loader_options;

/* One batch; valid until the next gf_loader_next / gf_loader_free. Samples that
 * fail to load are dropped (count shrinks, possibly to 0) and recorded as
 * dataset problems; the result does not depend on the number of threads.
 * Sample j of a batch was preprocessed with seed
 * gf_loader_sample_seed(opt.seed, batch->epoch, batch->index[j]). */
typedef struct gf_batch {
    int count;                  /* samples present */
    int channels, height, width;
    int num_classes;
    float *x;                   /* count x channels x height x width */
    int *labels;                /* count; -1 for multi-label datasets */
    float *targets;             /* count x num_classes (one-hot / multi-hot) */
    int *index;                 /* count dataset sample indices */
    int epoch;                  /* 0-based */
    int64_t step;               /* 0-based over the whole stream */
    int end_of_epoch;           /* last batch of its epoch */
    int dropped;                /* samples of this batch that failed to load */
} gf_batch;

typedef struct gf_loader gf_loader;
gf_status gf_loader_create(gf_dataset *ds, const gf_preprocess *pp, const gf_loader_options *opt,
                           gf_loader **out, char *err, size_t err_size);
/* Next batch (the following ones are already being prepared by the workers).
 * *batch is NULL after the last epoch. */
gf_status gf_loader_next(gf_loader *l, const gf_batch **batch, char *err, size_t err_size);
int gf_loader_batches_per_epoch(const gf_loader *l);
/* Per-sample augmentation seed used by the loader (exposed for tests/tools). */
uint64_t gf_loader_sample_seed(uint64_t seed, int epoch, int index);
void gf_loader_free(gf_loader *l);

#ifdef __cplusplus
}
#endif
#endif
