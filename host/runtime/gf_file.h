/* The one opener for files gradfeat reads (models, checkpoints, --config, CSV manifests, IDX files,
 * class-name files): anything but a regular file is refused before a read can block on it (a FIFO
 * blocks open() and read() until a writer comes, possibly forever) or run without end (a device). */
#ifndef GF_FILE_H
#define GF_FILE_H
#include <stddef.h>
#include <stdio.h>

/* Open path read-only; -1 on failure with a reason in why ("cannot open: <strerror>", or
 * "not a regular file (a FIFO)" and the like). The descriptor is blocking and close-on-exec. */
int gf_open_regular(const char *path, char *why, size_t why_size);
/* The same as a FILE * ("rb"). */
FILE *gf_fopen_regular(const char *path, char *why, size_t why_size);

/* UTF-8 (JSON text must be): length of the valid prefix == strlen when s is valid. */
size_t gf_utf8_valid_prefix(const char *s);
/* A malloc'ed copy of s with each byte that is not valid UTF-8 replaced by U+FFFD; NULL when out of memory. */
char *gf_utf8_fix(const char *s);

#endif
