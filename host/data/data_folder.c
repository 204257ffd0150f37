/* ImageFolder: root/<class>/<image>. Classes are the sub-folders in byte
 * order; files in each class in byte order, so the sample order (and hence
 * every seeded run) does not depend on the file system's listing order. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "data_internal.h"

static const char *const image_ext[] = {"jpg", "jpeg", "png", "bmp", "gif", "tga", "ppm", "pgm", "pnm", NULL};

static int has_image_ext(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name) return 0;
    for (int i = 0; image_ext[i]; i++) {
        const char *a = dot + 1, *b = image_ext[i];
        while (*a && *b && tolower((unsigned char)*a) == *b) { a++; b++; }
        if (!*a && !*b) return 1;
    }
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted names of the entries of dir (dot-files skipped). */
static gf_status list_dir(const char *dir, char ***out, int *n, char *err, size_t err_size) {
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return gf_fail_msg(err, err_size, GF_ERR_INPUT, "cannot list %s: %s", dir, strerror(errno));
    int cap = 0;
    struct dirent *e;
    gf_status st = GF_OK;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(*out, sizeof(char *) * (size_t)cap);
            if (!nn) { st = GF_ERR_MEMORY; break; }
            *out = nn;
        }
        if (!((*out)[*n] = gfd_strdup(e->d_name))) { st = GF_ERR_MEMORY; break; }
        (*n)++;
    }
    closedir(d);
    if (st != GF_OK) {
        for (int i = 0; i < *n; i++) free((*out)[i]);
        free(*out);
        *out = NULL;
        *n = 0;
        return gf_fail_msg(err, err_size, st, "listing %s: out of memory", dir);
    }
    if (*n > 1) qsort(*out, (size_t)*n, sizeof(char *), cmp_str);
    return GF_OK;
}

static void free_list(char **v, int n) {
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

static gf_status push_sample(gf_dataset *ds, int *cap, char *path, int label) {
    if (ds->n == *cap) {
        int nc = *cap ? *cap * 2 : 256;
        char **p = realloc(ds->paths, sizeof(char *) * (size_t)nc);
        if (p) ds->paths = p;
        int *l = realloc(ds->label, sizeof(int) * (size_t)nc);
        if (l) ds->label = l;
        if (!p || !l) { free(path); return GF_ERR_MEMORY; }
        *cap = nc;
    }
    ds->paths[ds->n] = path;
    ds->label[ds->n] = label;
    ds->n++;
    return GF_OK;
}

gf_status gfd_open_folder(const char *path, const gf_dataset_options *o, gf_dataset **out, char *err, size_t err_size) {
    char *root = (o->split && *o->split) ? gfd_join(path, o->split) : gfd_strdup(path);
    if (!root) return gf_fail_msg(err, err_size, GF_ERR_MEMORY, "out of memory");
    if (!gfd_is_dir(root)) {
        gf_status st = gf_fail_msg(err, err_size, GF_ERR_INPUT, "dataset folder %s does not exist or is not a folder", root);
        free(root);
        return st;
    }
    gf_dataset *ds = gfd_new(GF_DATA_FOLDER, root);
    free(root);
    if (!ds) return gf_fail_msg(err, err_size, GF_ERR_MEMORY, "out of memory");
    ds->max_pixels = o->max_pixels;
    ds->max_file_bytes = o->max_file_bytes;

    char **entries = NULL;
    int ne = 0, cap = 0;
    gf_status st = list_dir(ds->root, &entries, &ne, err, err_size);
    if (st != GF_OK) { gf_dataset_free(ds); return st; }
    /* classes = sub-folders */
    ds->class_names = calloc((size_t)ne + 1, sizeof(char *));
    if (!ds->class_names) st = gf_fail_msg(err, err_size, GF_ERR_MEMORY, "out of memory");
    for (int i = 0; st == GF_OK && i < ne; i++) {
        char *cdir = gfd_join(ds->root, entries[i]);
        if (!cdir) { st = gf_fail_msg(err, err_size, GF_ERR_MEMORY, "out of memory"); break; }
        if (gfd_is_dir(cdir)) { ds->class_names[ds->num_classes++] = entries[i]; entries[i] = NULL; }
        free(cdir);
    }
    free_list(entries, ne);
    if (st == GF_OK && ds->num_classes == 0)
        st = gf_fail_msg(err, err_size, GF_ERR_INPUT,
                      "dataset folder %s has no class folders (expected %s/<class>/<image>)", ds->root, ds->root);

    for (int k = 0; st == GF_OK && k < ds->num_classes; k++) {
        char *cdir = gfd_join(ds->root, ds->class_names[k]);
        char **files = NULL;
        int nf = 0;
        char why[600];
        if (!cdir) { st = gf_fail_msg(err, err_size, GF_ERR_MEMORY, "out of memory"); break; }
        if (list_dir(cdir, &files, &nf, why, sizeof why) != GF_OK) {
            gfd_problem_add(ds, cdir, "%s", why);   /* unreadable class folder: skip it */
            free(cdir);
            continue;
        }
        for (int i = 0; st == GF_OK && i < nf; i++) {
            char *fp = gfd_join(cdir, files[i]);
            if (!fp) { st = gf_fail_msg(err, err_size, GF_ERR_MEMORY, "out of memory"); break; }
            if (gfd_is_dir(fp)) { gfd_problem_add(ds, fp, "folder inside a class folder (ignored)"); free(fp); continue; }
            if (!has_image_ext(files[i])) {
                gfd_problem_add(ds, fp, "not an image file (expected .jpg .jpeg .png .bmp .gif .tga .ppm .pgm)");
                free(fp);
                continue;
            }
            if (push_sample(ds, &cap, fp, k) != GF_OK) st = gf_fail_msg(err, err_size, GF_ERR_MEMORY, "out of memory");
        }
        free_list(files, nf);
        free(cdir);
    }
    if (st == GF_OK) st = gfd_verify_and_compact(ds, o->verify, o->threads, err, err_size);
    if (st == GF_OK) st = gfd_finish(ds, err, err_size);
    if (st == GF_OK)
        for (int k = 0; k < ds->num_classes; k++)
            if (ds->class_count[k] == 0) {
                char *cdir = gfd_join(ds->root, ds->class_names[k]);
                gfd_problem_add(ds, cdir ? cdir : ds->class_names[k], "empty class folder (no usable images)");
                free(cdir);
            }
    if (st != GF_OK) { gf_dataset_free(ds); return st; }
    *out = ds;
    return GF_OK;
}
