/* Several processes (MPI): the one module that knows about MPI (dist.c). Every other file calls these
 * gf_dist_* functions and never tests for MPI itself. Built without MPI (-DGF_MPI=OFF, or Open MPI not
 * installed) the same API is one process: rank 0 of 1, every collective a no-op.
 *
 * The process group is global (MPI_COMM_WORLD), so these take no handle. Collectives must be called by
 * every rank in the same order with the same sizes; an MPI error aborts the whole job (MPI's default
 * handler), so a failing rank never leaves the others waiting. */
#ifndef GF_DIST_H
#define GF_DIST_H
#include <stddef.h>
#include "gf_internal.h"

/* Start MPI when the program was started by mpirun (or always; a single process is a world of 1).
 * Call once, first thing in main. 0 on success. */
int gf_dist_init(int *argc, char ***argv);
void gf_dist_finalize(void);
int gf_dist_compiled(void);       /* 1 when built with MPI */
int gf_dist_rank(void);           /* 0 .. size-1 */
int gf_dist_size(void);           /* 1 without MPI or under no mpirun */
int gf_dist_local_rank(void);     /* rank among the processes on this host (device choice) */
/* Stop every rank of the job with exit code `code` (after the caller printed why). Returns only without
 * MPI or with a single rank. */
void gf_dist_abort(int code);

/* The contiguous share [*lo, *hi) of n items of rank r out of size: the first n % size ranks one more. */
void gf_dist_share(int n, int r, int size, int *lo, int *hi);

/* buf[0..n) = the sum over ranks of each rank's buf, summed in rank order (0, 1, ...) in double and
 * rounded once, so every rank gets the same bits and the result does not depend on MPI's algorithm. */
gf_status gf_dist_sum_f32(gf_ctx *ctx, float *buf, size_t n);
gf_status gf_dist_sum_f64(gf_ctx *ctx, double *buf, size_t n);
/* bytes of buf from rank root to every rank. */
gf_status gf_dist_bcast(gf_ctx *ctx, void *buf, size_t bytes, int root);
/* The same in whole units of `unit` items (the last unit may be short): rank r's share is units
 * gf_dist_share(ceil(n / unit)), i.e. items [*lo, *hi). unit = 1 is gf_dist_share. */
void gf_dist_share_units(int n, int unit, int r, int size, int *lo, int *hi);
/* Every rank r owns rows [lo, hi) of buf (gf_dist_share_units of n rows of row_bytes each); afterwards
 * every rank holds all n rows. */
gf_status gf_dist_allgather_rows(gf_ctx *ctx, void *buf, int n, int unit, size_t row_bytes);
gf_status gf_dist_barrier(gf_ctx *ctx);
/* A barrier whose waiting ranks sleep (1 ms polls) instead of spinning in MPI: for a rank that waits while
 * another measures something alone on the same host (bench: the 1-rank figure of the parallel efficiency). */
gf_status gf_dist_barrier_idle(gf_ctx *ctx);
#endif
