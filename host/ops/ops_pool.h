/* Pooling, NCHW float32: forward, tangent (JVP) and backward (VJP) side by side.
 *
 * Max pool: the tangent and the gradient are routed through the PRIMAL argmax.
 * The forward stores the argmax as an int32 buffer (one index per output, the
 * flat h*W + w inside its input plane) because the primal input of a layer in
 * θ2 is constant during training: the indices are computed once per image and
 * then every tangent is a gather and every backward a per-input gather, without
 * touching the primal input again. To recompute instead of storing, call
 * gf_maxpool_forward with y = NULL (argmax only) from the cached primal input.
 * Ties: the first maximum in row-major window order wins (as PyTorch); a test
 * comparing against finite differences must keep inputs away from ties.
 *
 * Average pool: linear, so the tangent is the forward. Divisor per output:
 * count_include_pad = 1 counts the window clipped to the padded frame
 * (PyTorch's default, count_include_pad=True); 0 counts only real input
 * elements (TF "SAME" average pooling, PyTorch count_include_pad=False).
 *
 * Global average pool: y[n, c] = mean over H*W; linear (tangent = forward).
 *
 * PyTorch ceil_mode = True: set OH/OW one larger and put the extra rows in
 * pb/pr by hand (exact for max pool; the average divisor then counts the
 * extra row as padding when count_include_pad, where PyTorch clips it).
 *
 * Flatten: NCHW contiguous [N, C, H, W] and [N, C*H*W] are the same bytes, so
 * flatten is a no-op reshape — no kernel, reuse the buffer with the new shape.
 *
 * Backward passes gather per input element (no atomics, deterministic) and
 * overwrite g_in; accumulate into a residual branch with gf_axpby. */
#ifndef GF_OPS_POOL_H
#define GF_OPS_POOL_H
#include "gf_internal.h"

typedef struct gf_pool2d {
    int N, C, H, W;          /* input */
    int OH, OW;              /* output */
    int kh, kw, sh, sw;      /* window, stride */
    int pt, pb, pl, pr;      /* padding top / bottom / left / right */
    int count_include_pad;   /* average pool divisor, see above */
} gf_pool2d;

/* Symmetric padding (PyTorch, floor mode): OH = (H + 2*ph - kh) / sh + 1.
 * Requires pad < kernel so that every window holds an input element. */
gf_status gf_pool2d_init(gf_ctx *ctx, gf_pool2d *p, int N, int C, int H, int W,
                         int kh, int kw, int sh, int sw, int ph, int pw);
/* TensorFlow padding: same = 1 gives "SAME" (OH = ceil(H / sh), total pad
 * max((OH-1)*sh + kh - H, 0), the smaller half before, the extra pixel after;
 * count_include_pad = 0 as TF does), same = 0 gives "VALID". */
gf_status gf_pool2d_init_tf(gf_ctx *ctx, gf_pool2d *p, int N, int C, int H, int W,
                            int kh, int kw, int sh, int sw, int same);
size_t gf_pool2d_in_count(const gf_pool2d *p);   /* N*C*H*W */
size_t gf_pool2d_out_count(const gf_pool2d *p);  /* N*C*OH*OW */

/* Max pool. y (may be NULL: argmax only) and argmax (int32, may be NULL when
 * only y is wanted, e.g. inference) hold out_count elements. */
gf_status gf_maxpool_forward(gf_ctx *ctx, const gf_pool2d *p, cl_mem x, cl_mem y, cl_mem argmax);
/* t_out[o] = t_in[argmax[o]]. */
gf_status gf_maxpool_tangent(gf_ctx *ctx, const gf_pool2d *p, cl_mem argmax, cl_mem t_in, cl_mem t_out);
/* g_in[e] = sum over outputs o with argmax[o] == e of g_out[o]. */
gf_status gf_maxpool_backward(gf_ctx *ctx, const gf_pool2d *p, cl_mem argmax, cl_mem g_out, cl_mem g_in);

/* Average pool; the tangent is the same op (gf_avgpool_tangent is an alias). */
gf_status gf_avgpool_forward(gf_ctx *ctx, const gf_pool2d *p, cl_mem x, cl_mem y);
gf_status gf_avgpool_tangent(gf_ctx *ctx, const gf_pool2d *p, cl_mem t_in, cl_mem t_out);
gf_status gf_avgpool_backward(gf_ctx *ctx, const gf_pool2d *p, cl_mem g_out, cl_mem g_in);

/* Global average pool: x [N, C, HW] -> y [N, C]. */
gf_status gf_gap_forward(gf_ctx *ctx, size_t NC, size_t HW, cl_mem x, cl_mem y);
gf_status gf_gap_tangent(gf_ctx *ctx, size_t NC, size_t HW, cl_mem t_in, cl_mem t_out);
gf_status gf_gap_backward(gf_ctx *ctx, size_t NC, size_t HW, cl_mem g_out, cl_mem g_in);


#endif
