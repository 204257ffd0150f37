/* Several processes over MPI (Open MPI), or one process without it: see gf_dist.h. The only file that
 * includes mpi.h; GF_HAVE_MPI comes from CMake (-DGF_MPI=ON, the default when MPI is found). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "gf_dist.h"
#ifdef GF_HAVE_MPI
#include <mpi.h>
#endif

static int g_rank = 0, g_size = 1, g_local = 0;

void gf_dist_share(int n, int r, int size, int *lo, int *hi) {
    int q = n / size, rem = n % size;
    *lo = r * q + (r < rem ? r : rem);
    *hi = *lo + q + (r < rem);
}

void gf_dist_share_units(int n, int unit, int r, int size, int *lo, int *hi) {
    int units = unit > 0 ? (int)(((long long)n + unit - 1) / unit) : 0;
    gf_dist_share(units, r, size, lo, hi);
    long long l = (long long)*lo * unit, h = (long long)*hi * unit;
    *lo = (int)(l < n ? l : n);
    *hi = (int)(h < n ? h : n);
}

int gf_dist_rank(void) { return g_rank; }
int gf_dist_size(void) { return g_size; }
int gf_dist_local_rank(void) { return g_local; }

#ifdef GF_HAVE_MPI
int gf_dist_compiled(void) { return 1; }

static int g_started;

int gf_dist_init(int *argc, char ***argv) {
    int on = 0;
    MPI_Initialized(&on);
    if (!on && MPI_Init(argc, argv) != MPI_SUCCESS) return 1;
    g_started = !on;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    /* the rank among this host's processes: it picks the device (ranks on one host share its devices) */
    MPI_Comm local;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_rank, MPI_INFO_NULL, &local) == MPI_SUCCESS) {
        MPI_Comm_rank(local, &g_local);
        MPI_Comm_free(&local);
    }
    return 0;
}

void gf_dist_finalize(void) {
    int done = 0;
    MPI_Finalized(&done);
    if (g_started && !done) MPI_Finalize();
    g_started = 0;
}

void gf_dist_abort(int code) {
    if (g_size > 1) MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
}

/* MPI counts are ints: move at most this many elements per call */
enum { CHUNK = 1 << 20 };

/* Every collective here is started non-blocking and waited for by polling with short sleeps: a blocking
 * Open MPI collective spins on its core while it waits, and a rank waiting for another (a BatchNorm sum in
 * pretrain, rank 0 adding the gradients) then takes a core from the rank that computes (PoCL's threads)
 * whenever ranks share cores: pretrain of small28 with 2 ranks on 2 cores ran at 82-102 images/s spinning
 * against 169 with Open MPI's yield_when_idle. A few quick polls first, then 50 us sleeps. */
static void wait_req(MPI_Request *rq) {
    int done = 0;
    const struct timespec pause = {0, 50000};
    for (int k = 0; MPI_Test(rq, &done, MPI_STATUS_IGNORE) == MPI_SUCCESS && !done; k++)
        if (k >= 100) nanosleep(&pause, NULL);
}

static void bcast(void *buf, int n, MPI_Datatype t, int root) {
    MPI_Request rq;
    MPI_Ibcast(buf, n, t, root, MPI_COMM_WORLD, &rq);
    wait_req(&rq);
}

gf_status gf_dist_bcast(gf_ctx *ctx, void *buf, size_t bytes, int root) {
    if (g_size == 1) return GF_OK;
    for (size_t off = 0; off < bytes; off += (size_t)INT_MAX / 2) {
        size_t n = bytes - off < (size_t)INT_MAX / 2 ? bytes - off : (size_t)INT_MAX / 2;
        bcast((char *)buf + off, (int)n, MPI_BYTE, root);
    }
    return GF_OK;
}

/* Gather each rank's chunk on rank 0, add in rank order in double, broadcast the rounded sums. A plain
 * MPI_Allreduce may add in another order on each rank (or from run to run): the ranks' models would drift
 * apart in the last bits and their model selection could then disagree. */
static gf_status sum_chunks(gf_ctx *ctx, void *buf, size_t n, int dbl) {
    if (g_size == 1 || n == 0) return GF_OK;
    size_t es = dbl ? sizeof(double) : sizeof(float);
    size_t chunk = n < CHUNK ? n : CHUNK;
    void *all = g_rank == 0 ? malloc(chunk * es * (size_t)g_size) : NULL;
    double *acc = g_rank == 0 ? malloc(chunk * sizeof(double)) : NULL;
    int okm = g_rank != 0 || (all && acc);
    /* every rank learns whether rank 0 could allocate, so none waits in a gather that never comes */
    bcast(&okm, 1, MPI_INT, 0);
    if (!okm) { free(all); free(acc); return gf_fail(ctx, GF_ERR_MEMORY, "out of host memory for the gradient sum over ranks"); }
    MPI_Datatype t = dbl ? MPI_DOUBLE : MPI_FLOAT;
    for (size_t off = 0; off < n; off += chunk) {
        int c = (int)(n - off < chunk ? n - off : chunk);
        char *mine = (char *)buf + off * es;
        MPI_Request rq;
        MPI_Igather(mine, c, t, all, c, t, 0, MPI_COMM_WORLD, &rq);
        wait_req(&rq);
        if (g_rank == 0) {
            for (int i = 0; i < c; i++) acc[i] = 0;
            for (int r = 0; r < g_size; r++) {
                if (dbl) { const double *p = (const double *)all + (size_t)r * c; for (int i = 0; i < c; i++) acc[i] += p[i]; }
                else { const float *p = (const float *)all + (size_t)r * c; for (int i = 0; i < c; i++) acc[i] += p[i]; }
            }
            for (int i = 0; i < c; i++) {
                if (dbl) ((double *)mine)[i] = acc[i];
                else ((float *)mine)[i] = (float)acc[i];
            }
        }
        bcast(mine, c, t, 0);
    }
    free(all);
    free(acc);
    return GF_OK;
}

gf_status gf_dist_sum_f32(gf_ctx *ctx, float *buf, size_t n) { return sum_chunks(ctx, buf, n, 0); }
gf_status gf_dist_sum_f64(gf_ctx *ctx, double *buf, size_t n) { return sum_chunks(ctx, buf, n, 1); }

gf_status gf_dist_allgather_rows(gf_ctx *ctx, void *buf, int n, int unit, size_t row_bytes) {
    for (int r = 0; r < g_size && g_size > 1; r++) {
        int lo, hi;
        gf_dist_share_units(n, unit, r, g_size, &lo, &hi);
        GF_TRY(gf_dist_bcast(ctx, (char *)buf + (size_t)lo * row_bytes, (size_t)(hi - lo) * row_bytes, r));
    }
    return GF_OK;
}

gf_status gf_dist_barrier(gf_ctx *ctx) {
    if (g_size == 1) return GF_OK;
    MPI_Request rq;
    MPI_Ibarrier(MPI_COMM_WORLD, &rq);
    wait_req(&rq);
    return GF_OK;
}

gf_status gf_dist_barrier_idle(gf_ctx *ctx) {
    if (g_size == 1) return GF_OK;
    MPI_Request rq;
    int done = 0;
    MPI_Ibarrier(MPI_COMM_WORLD, &rq);
    const struct timespec ms = {0, 1000000};
    while (MPI_Test(&rq, &done, MPI_STATUS_IGNORE) == MPI_SUCCESS && !done) nanosleep(&ms, NULL);
    return GF_OK;
}

#else   /* one process */
int gf_dist_compiled(void) { return 0; }
int gf_dist_init(int *argc, char ***argv) { (void)argc; (void)argv; return 0; }
void gf_dist_finalize(void) {}
void gf_dist_abort(int code) { (void)code; }
gf_status gf_dist_sum_f32(gf_ctx *ctx, float *buf, size_t n) { return GF_OK; }
gf_status gf_dist_sum_f64(gf_ctx *ctx, double *buf, size_t n) { return GF_OK; }
gf_status gf_dist_bcast(gf_ctx *ctx, void *buf, size_t bytes, int root) { return GF_OK; }
gf_status gf_dist_allgather_rows(gf_ctx *ctx, void *buf, int n, int unit, size_t row_bytes) { return GF_OK; }
gf_status gf_dist_barrier(gf_ctx *ctx) { return GF_OK; }
gf_status gf_dist_barrier_idle(gf_ctx *ctx) { return GF_OK; }
#endif
