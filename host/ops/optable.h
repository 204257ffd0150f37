/* The op table (like ggml's test-backend-ops), shared by tests/test_ops.c (every row, under every kernel-path
 * variant) and `gradfeat selftest` (the rows flagged quick, on the context as it is): rows {op, shape,
 * attributes}, each checked by one driver (gf_ot_run_row) against the double references of ref_ops.c.
 * The driver never prints: every check goes to a sink (the test counts and prints, the selftest keeps the
 * worst per row). tests/README.md "The op table" says what a row checks and how to add rows and ops. */
#ifndef GF_OPTABLE_H
#define GF_OPTABLE_H
#include <stdint.h>
#include "gf_internal.h"
#include "ops_act.h"
#include "ops_affine.h"
#include "ops_pool.h"
#include "ot_rng.h"

enum { MAX_IN = 5, NA = 20 };


typedef struct op_def op_def;
typedef struct row {
    const op_def *op;
    int a[NA];          /* shape and integer attributes; their meaning is the op's (its describe()) */
    float f[2];         /* float attributes */
    const char *note;   /* what the row is for, when its numbers do not say it */
    uint64_t seed;      /* of its random data; 0: the row's place in the table */
    int full, small;    /* in the default run; in the --small run */
    int quick;          /* in `gradfeat selftest` */
} row;

typedef struct tol { double atol, rtol, stol; } tol;
typedef struct tols {
    tol fwd, tan, fd, lin, bwd[MAX_IN], bwd_fd;
    double h;           /* finite-difference step */
    size_t fd_all;      /* OP_BWD_FD: every element of an input up to this size, else about 1000 (default 2000) */
    double adj;         /* adjoint identity, relative to max(|<Jv,u>|, |<v,J^T u>|) */
} tols;

/* One row's tensors: the op's shape() sets the sizes, which inputs are differentiable and its state. */
typedef struct tensors {
    int n_in;
    size_t n[MAX_IN], n_out;
    int diff[MAX_IN];
    float *x[MAX_IN];
    double *xd[MAX_IN];
    cl_mem bx[MAX_IN];
    void *state;
    int conv_variant;   /* the affine ops' kernel variant (GF_CONV_VARIANT_*) */
} tensors;

/* What the driver computed, for the op's own checks. */
typedef struct results {
    const float *y, *jv, *u, *v[MAX_IN], *g[MAX_IN];
} results;

enum {
    OP_ACC = 1,         /* backward takes an accumulate flag */
    OP_GRAD_ALONE = 2,  /* backward may leave out any gradient */
    OP_LOSS = 4,        /* a loss: backward is d out[0] / d x (u = e_0) */
    OP_ADJ_ABS = 8,     /* adjoint relative to sum |Jv_i u_i| too (long float sums that cancel), and not 0 */
    OP_BWD_FD = 16,     /* no device tangent: each gradient vs central differences of <f(x), u> per element */
    OP_IS_LINEAR = 32,  /* linear in its inputs: the tangent is the op on the tangents (tan and ref_tan may be
                           NULL: fwd and ref, a NULL input for one that does not move) */
};

/* Kernel-path variants (tests/test_ops.c holds their context options): the bits of op_def.variants. */
enum { V_DEFAULT, V_ELEMENT, V_PLANE, V_CLBLAST, V_TILES, V_SLICES, V_TILES16, V_SLICES16, V_DIRECT, V_WINOGRAD,
       V_WINO_CLBLAST, V_WINOGRAD4, V_WINO4_CLBLAST, V_BLOCKED, V_STRIDED, V_BLOCKED200, V_SEGMENTS,
       V_SEGMENTS_STRIDED, N_VARIANTS };
#define VARIANTS_AFFINE (1u << V_ELEMENT | 1u << V_PLANE | 1u << V_CLBLAST | 1u << V_TILES | 1u << V_SLICES | \
                         1u << V_TILES16 | 1u << V_SLICES16 | 1u << V_DIRECT | 1u << V_WINOGRAD | 1u << V_WINO_CLBLAST | \
                         1u << V_WINOGRAD4 | 1u << V_WINO4_CLBLAST)
#define VARIANTS_BN (1u << V_BLOCKED | 1u << V_STRIDED | 1u << V_BLOCKED200 | 1u << V_SEGMENTS | 1u << V_SEGMENTS_STRIDED)

struct op_def {
    const char *name;
    unsigned variants;  /* the kernel-path variants the op's kernels depend on (bits of V_*) */
    unsigned flags;
    void (*describe)(const row *, char *, size_t);
    gf_status (*shape)(gf_ctx *, const row *, tensors *);
    gf_status (*fill)(gf_ctx *, const row *, tensors *, ot_rng *);   /* NULL: uniform in [-1, 1] */
    void (*tols)(const row *, tols *);
    void (*ref)(const row *, const tensors *, const double *const *in, double *out);
    gf_status (*fwd)(gf_ctx *, const row *, const tensors *, const cl_mem *in, cl_mem out);
    /* tin[k] NULL: input k does not move */
    gf_status (*tan)(gf_ctx *, const row *, const tensors *, const cl_mem *in, const cl_mem *tin, cl_mem out);
    void (*ref_tan)(const row *, const tensors *, const double *const *in, const double *const *tin, double *out);
    /* gin[k] NULL: gradient k not wanted */
    gf_status (*bwd)(gf_ctx *, const row *, const tensors *, const cl_mem *in, cl_mem u, const cl_mem *gin, int acc);
    void (*ref_bwd)(const row *, const tensors *, const double *const *in, const double *u, double *const *gin);
    int (*fd_skip)(const row *, size_t i);                        /* output i has no valid central difference */
    void (*release)(tensors *);
    /* the tolerance scales S when not the reference on |inputs| (NULL: that) */
    void (*scale_fwd)(const row *, const tensors *, double *S);
    void (*scale_bwd)(const row *, const tensors *, const double *u, double *const *S);
    void (*fill_u)(const row *, const tensors *, float *u);   /* the backward's u when not random */
};

/* Where the checks go. check: one comparison; ratio its worst error as a multiple of the tolerance (0: exact
 * agreement; INFINITY: an exact check, e.g. bitwise, that failed), abs_err the largest |got - ref| (0 where
 * none), msg what it compared and, when it failed, where. error: a library call failed, the row stops. */
typedef struct ot_sink ot_sink;
struct ot_sink {
    void (*check)(ot_sink *, int pass, double ratio, double abs_err, const char *msg);
    void (*error)(ot_sink *, gf_ctx *, gf_status, const char *what);
    void *user;
};

/* The table, made on first use; *rows points at it. */
int gf_ot_rows(const row **rows);
/* The op's own checks, run on what the driver computed (tests/test_ops.c `extra`). */
typedef void (*ot_extra_fn)(gf_ctx *, const row *, const tensors *, const results *, const char *name);
/* One row: forward, tangent, backward as optable.c's comment says; seed: its data's when the row has none;
 * conv_variant: the affine ops' kernel variant (GF_CONV_VARIANT_AUTO: the context's choice); extra (may be
 * NULL): run on the results when no library call failed. Returns GF_OK, or the status of the library call
 * that failed (also sent to the sink's error). */
gf_status gf_ot_run_row(gf_ctx *ctx, const row *rw, uint64_t seed, int conv_variant, ot_sink *sink, ot_extra_fn extra);

/* The comparison rule |got - ref| <= atol + rtol |ref| + stol S (S may be NULL: 0); NaN fails. Returns pass. */
int ot_check_tol(ot_sink *sink, const char *name, const char *what, const float *got, const double *ref,
                 const double *S, size_t n, tol t);
int ot_check_tol_d(ot_sink *sink, const char *name, const char *what, const double *got, const double *ref,
                   const double *S, size_t n, tol t);

/* For the ops' own checks (tests/test_ops.c): buffers, the ops' state and accessors. */
#define EXACT ((tol){0, 0, 0})
gf_status ot_alloc(gf_ctx *ctx, size_t n, cl_mem *m);   /* exactly n floats (1 for n = 0), zeroed */
gf_status ot_upload(gf_ctx *ctx, const float *x, size_t n, cl_mem *m);
gf_status ot_download(gf_ctx *ctx, cl_mem m, float *x, size_t n);
/* tensors.state of the pools, losses, conv/linear and BN rows */
typedef struct pool_state {
    gf_pool2d p;
    cl_mem arg, arg2;   /* argmax of the forward; of the argmax-only path */
} pool_state;
typedef struct loss_state {
    int *labels;   /* xent */
    cl_mem blabels;
} loss_state;
typedef struct affine_state { gf_conv_desc d; } affine_state;
enum { BN_GUARD = 64 };   /* bn rows: guard floats after every output */
typedef struct bn_state {
    float *dy;                 /* the backward's u */
    float *rm, *rv;            /* running statistics the row starts from */
    double *rmd, *rvd;
    cl_mem brm, brv, zero_c;   /* zero_c: c zeros (mean 0, beta 0) */
} bn_state;
/* sgd/adam rows: a = {case, n}; OPTIM_STEPS steps of the case's options */
enum { OPTIM_STEPS = 7 };
typedef struct optim_case {
    int adam, use_ref, use_clip;
    float lr, mom, wd, b1, b2, eps;
} optim_case;
typedef struct ot_optim_dev { cl_mem p, m, v, g, norm; } ot_optim_dev;   /* an optimiser on the device */
/* the rows' attributes as the ops take them, and pieces of the ops' references and device calls */
gf_act ot_act_of(const row *rw);
const gf_conv_desc *ot_desc_of(const tensors *T);
size_t ot_mul_planes(const row *rw);
size_t ot_mul_hw(const row *rw);
const optim_case *ot_optim_of(const row *rw);
int ot_optim_ref_steps(const row *rw, const double *const *in, int steps, double *out);
void ot_optim_scale_steps(const row *rw, const tensors *T, int steps, double *S);
gf_status ot_conv_tan(gf_ctx *ctx, const row *rw, const tensors *T, const cl_mem *in, const cl_mem *tin, cl_mem out);
gf_status ot_affine_fwd_b(gf_ctx *ctx, const row *rw, const tensors *T, cl_mem x, cl_mem W, cl_mem b, cl_mem y);
void ot_bn_ref_bwd_all(const row *rw, const tensors *T, const double *const *in, const double *u, double *const *g,
                       double *const *S);
/* `steps` steps of the row's optimiser on the device from p0 (T->x[0]); the result as the reference's. */
gf_status ot_optim_dev_init(gf_ctx *ctx, const row *rw, const tensors *T, ot_optim_dev *d);
gf_status ot_optim_dev_step(gf_ctx *ctx, const row *rw, const tensors *T, cl_mem ref, ot_optim_dev *d, int s);
gf_status ot_optim_dev_result(gf_ctx *ctx, const row *rw, const ot_optim_dev *d, float *out);
void ot_optim_dev_release(ot_optim_dev *d);
#endif
