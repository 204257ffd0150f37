/* Affine operator family: conv2d and linear, each three ways (forward,
 * tangent/JVP, backward/VJP), plus BatchNorm folding on host arrays.
 *
 * Layouts: activations NCHW float32; conv weights [c_out, c_in/groups, kh, kw],
 * linear weights [out, in] (both as PyTorch), x of linear is [n, in].
 *
 * Device work: general convolutions go through im2col (cl/conv.cl) + one
 * row-major gf_gemm per chunk of images and group ([Cout_g, K_g] x [K_g, nb*P]:
 * the whole chunk is one big GEMM, which measured faster than one GEMM per image
 * with a shared stride-0 weight and than CLBlast Sconvgemm, see bench ops),
 * then a transpose back to NCHW; gW = g_mat x col^T; gx through W^T GEMM +
 * col2im. Depthwise (groups == c_in > 1) uses direct kernels. Every launcher
 * only enqueues (gf_gemm's host-BLAS path on CPU devices maps buffers, which
 * waits for the queue; nothing else synchronises), and is deterministic: no
 * atomics, fixed summation order. Linear is gf_gemm plus a bias fill / column
 * reduction.
 *
 * Winograd F(2x2, 3x3) (3x3 stride-1 convs, see GF_CONV_ALGO_*): input, filter and output transforms in
 * cl/conv.cl around 16 GEMMs per chunk (gf_gemm_batched); the tangent adds both terms in the transformed
 * domain (one output transform), the input gradient is the Winograd conv of g with the rotated, transposed
 * filter.
 *
 * Scratch slots used (gf_scratch): 0 = im2col workspace [Cin*kh*kw, nb*P] (Winograd: the transformed input),
 * 1 = GEMM output / gradient in [Cout, nb*P] order (Winograd: the GEMMs' output), 3 = Winograd filter
 * transforms (of the weights not kept in desc.fixed). All are reused by the
 * next call of any op that uses these slots; the in-order queue keeps that safe.
 * When a whole batch's workspace would exceed the limit (min(max_alloc,
 * 256 MiB) or desc.max_workspace), the batch is processed in chunks of images. */
#ifndef GF_OPS_AFFINE_H
#define GF_OPS_AFFINE_H

#include "gf_internal.h"
#include "ops_act.h"

/* PART: partial sums of split reductions; WINO_U: the Winograd filter transforms */
enum { GF_AFFINE_SLOT_COL = 0, GF_AFFINE_SLOT_OUT = 1, GF_AFFINE_SLOT_PART = 2, GF_AFFINE_SLOT_WINO_U = 3 };

/* What a conv keeps of a weight W that does not change while this lives (a frozen parameter set's, e.g. θ̄ of
 * gradient/full): W's Winograd filter transforms, U[0] for the forward and the tangent's W ṫ term, U[1] (the
 * rotated, transposed filter) for the input gradient, each made on its first use and reused bit for bit. Owned
 * by whoever owns W (gf_params_freeze): release it when W's values change or W goes. Under GF_CONV_ALGO_AUTO a
 * fixed W also picks the algorithm: F(4x4, 3x3) pays from fewer channels and tiles with kept transforms
 * (gf_conv_uses_winograd), so some convs give F(4x4)'s rounding with a fixed W and the direct conv's without; a
 * forced algorithm gives the same bits either way. */
typedef struct gf_conv_fixed {
    cl_mem W;       /* the buffer the transforms were made from (another one: they are made again) */
    cl_mem U[2];    /* [P, c_out, c_in] and [P, c_in, c_out], or NULL until used (P = 16 or 36 planes) */
    int m;          /* their output tile (2 or 4: F(2x2, 3x3) or F(4x4, 3x3)); another one: made again */
} gf_conv_fixed;
void gf_conv_fixed_release(gf_conv_fixed *f);

/* im2col(x) of a whole batch kept between the calls of one step on the same x (gf_conv_desc.keep): the forward, or the
 * tangent's W̃ x term, makes it into buf as usual, and a later call on the same x (the tangent after the forward,
 * the weight gradient after either) reads it instead of making it again (the same bits). buf holds at least
 * gf_conv_keep_bytes; n is the batch it holds, 0: nothing, and the caller sets n = 0 whenever x's values change.
 * Only a direct (im2col) conv whose whole batch is one chunk of the workspace keeps (gf_conv_keeps); the other
 * paths leave it alone. A 1x1 conv's im2col is x in [c_in, n*P] order: keeping it costs x's size. */
typedef struct gf_conv_keep { cl_mem buf; size_t bytes; int n; } gf_conv_keep;

typedef struct gf_conv_desc {
    int n, c_in, h_in, w_in;
    int c_out, h_out, w_out;          /* h_out, w_out: computed by gf_conv_desc_init */
    int kh, kw;
    int stride_h, stride_w;
    int pad_top, pad_bottom, pad_left, pad_right;
    int dil_h, dil_w;
    int groups;
    size_t max_workspace;             /* bytes per scratch slot; 0 = default. Tests set it small to force chunking */
    int variant;                      /* im2col/col2im/layout kernels: GF_CONV_VARIANT_* (0 = auto) */
    int algo;                         /* GF_CONV_ALGO_* (0 = the context's conv_algo) */
    gf_conv_fixed *fixed;             /* non-NULL: the W argument is fixed while this lives (see gf_conv_fixed) */
    gf_conv_keep *keep;               /* non-NULL: im2col(x) kept between calls on the same x (see gf_conv_keep) */
} gf_conv_desc;

/* Algorithm of the ungrouped 3x3 stride-1 dilation-1 convolutions (the others are always direct):
 * AUTO: Winograd F(4x4, 3x3) at the shapes below (fewer for weights that move than for frozen ones,
 * gf_conv_desc.fixed), else direct (im2col + GEMM). WINOGRAD: Winograd F(2x2, 3x3) for every such conv
 * (forward, both tangent terms, input gradient; the weight gradient stays direct); WINOGRAD4: F(4x4, 3x3) for
 * every such conv. The input gradient also needs pad_top, pad_left <= 2. */
enum { GF_CONV_ALGO_AUTO = 0, GF_CONV_ALGO_DIRECT = 1, GF_CONV_ALGO_WINOGRAD = 2, GF_CONV_ALGO_WINOGRAD4 = 3 };
/* AUTO's shapes, measured on PoCL (README "Kernel paths"; tiles: n * ceil(h_out/2) * ceil(w_out/2)). The
 * CPU-style row kernels: faster from 64 input channels and 64 tiles (0.4-0.97x the direct conv's time at 64 to
 * 512 channels, 64 -> 16 0.6x); slower or even with fewer inputs than outputs (3, 16 and 32 -> 64: 1.9, 1.3 and
 * 1.04x) and at 512 channels 7x7 one image (16 tiles: 1.9x). The GPU-style tile kernels,
 * as measured on PoCL before the row kernels: 64 and 128 channels slower, 256 and 512 faster; at 512 channels
 * 7x7, batch 4 and 16 (64 and 256 tiles) slower, 32 even, 64 faster */
#define GF_WINO_CPU_MIN_IN 64
#define GF_WINO_CPU_MIN_OUT 16
#define GF_WINO_CPU_MIN_TILES 64
#define GF_WINO_MIN_CHANNELS 256
#define GF_WINO_MIN_TILES 512
/* Weights that move (no gf_conv_fixed), CPU-style row kernels only, forward + backward (gx, gW, gb) against the
 * direct conv on the 2-core Intel VM (2026-12-06): faster at 128 ch 28x28 batch 16 (784 4x4 tiles: 0.78x), 256 ch
 * 14x14 batch 16 and 32 (256, 512 tiles: 0.94x, 0.71x), 512 ch 7x7 batch 64 (256 tiles: 0.69x); about even or
 * slower at 512 ch 7x7 batch 32 and 16 (128, 64 tiles: 0.94x, 1.50x), 256 ch 14x14 batch 8 (1.5x), 128 ch 28x28
 * batch 4 (196 tiles: 1.2x) and 64 ch 56x56 batch 4 (784 tiles: 1.2x, the transforms outweigh 64-channel GEMMs) */
#define GF_WINO_CPU_MOVING_MIN_CHANNELS 128
#define GF_WINO_CPU_MOVING_MIN_TILES4 256

/* AUTO: PLANE on CPU devices, ELEMENT elsewhere. ELEMENT: one work item per
 * float (coalesced on GPUs, but integer div/mod per float, which CPU vector
 * units lack). PLANE: one work item per (channel, image) plane with
 * division-free loops (PoCL, batch 64, 512 ch, 7x7, 3x3: im2col 62 -> 14 ms,
 * col2im 35 -> 16 ms). Both compute the same sums (col2im and the depthwise
 * input gradient in another fixed order). */
enum { GF_CONV_VARIANT_AUTO = 0, GF_CONV_VARIANT_ELEMENT = 1, GF_CONV_VARIANT_PLANE = 2 };

/* Fill d from the arguments (pads as given: top, bottom, left, right), compute
 * h_out/w_out and validate. ctx may be NULL (then no message is recorded).
 * Returns GF_ERR_USAGE on nonsense (non-positive sizes, groups not dividing the
 * channels, kernel larger than the padded input, sizes beyond int range). */
gf_status gf_conv_desc_init(gf_ctx *ctx, gf_conv_desc *d, int n, int c_in, int h_in, int w_in,
                            int c_out, int kh, int kw, int stride_h, int stride_w,
                            int pad_top, int pad_bottom, int pad_left, int pad_right,
                            int dil_h, int dil_w, int groups);
/* Square shorthand: k x k kernel, symmetric padding pad, stride, dilation. */
gf_status gf_conv_desc_simple(gf_ctx *ctx, gf_conv_desc *d, int n, int c_in, int h, int w,
                              int c_out, int k, int stride, int pad, int dil, int groups);
/* Validate an already filled descriptor and (re)compute h_out/w_out. */
gf_status gf_conv_desc_check(gf_ctx *ctx, gf_conv_desc *d);
/* TensorFlow "SAME" padding along one axis: out = ceil(in/stride), the total
 * padding split with the extra pixel at the end (bottom/right). */
void gf_conv_same_pads(int in, int k, int stride, int dil, int *pad_before, int *pad_after);
/* 1 when the descriptor is handled by the direct depthwise kernels. */
int gf_conv_is_depthwise(const gf_conv_desc *d);
/* The output tile of the Winograd algorithm this conv's forward and tangent run with on this context: 2 (F(2x2, 3x3)),
 * 4 (F(4x4, 3x3)), or 0 when it runs direct (GF_CONV_ALGO_*). */
int gf_conv_uses_winograd(const gf_ctx *ctx, const gf_conv_desc *d);
/* The bytes of d's im2col for its whole batch (gf_conv_keep.buf), and whether d's forward, tangent and weight
 * gradient would keep it in desc.keep (a direct conv, the whole batch in one chunk, a buffer that large) */
size_t gf_conv_keep_bytes(const gf_conv_desc *d);
int gf_conv_keeps(gf_ctx *ctx, const gf_conv_desc *d);

/* y = W * x + b.  b may be NULL. */
gf_status gf_conv2d_forward(gf_ctx *ctx, const gf_conv_desc *d, cl_mem x, cl_mem W, cl_mem b, cl_mem y);
/* y = act(W * x + b + r): the forward with the epilogue of a residual add and an activation that follow it in
 * a forward-only graph (block.c). r (NULL: none) is laid out as y and is not y; act NULL: none. The
 * CPU-style output kernels of the direct and the F(4x4) paths apply r and ReLU / ReLU6 as they store y; the
 * rest runs after the conv as gf_add and gf_act_forward in place. The same bits as the conv, gf_add(y, r) and
 * gf_act_forward run one after the other. */
gf_status gf_conv2d_forward_post(gf_ctx *ctx, const gf_conv_desc *d, cl_mem x, cl_mem W, cl_mem b, cl_mem r,
                                 const gf_act *act, cl_mem y);
/* t_out = Wt * x + bt + W * t_in; each term optional (Wt/bt/W/t_in may be NULL;
 * the W * t_in term needs both). With no term at all t_out is set to 0. */
gf_status gf_conv2d_tangent(gf_ctx *ctx, const gf_conv_desc *d, cl_mem x, cl_mem Wt, cl_mem bt,
                            cl_mem W, cl_mem t_in, cl_mem t_out);
/* gx = W^T * g, gW = g (x) x, gb = sum of g over n, h, w; each output optional.
 * accumulate = 1 adds into the existing gx/gW/gb, 0 overwrites them. */
gf_status gf_conv2d_backward(gf_ctx *ctx, const gf_conv_desc *d, cl_mem x, cl_mem W, cl_mem g,
                             cl_mem gx, cl_mem gW, cl_mem gb, int accumulate);

/* Linear: x [n, in], W [out, in], b [out], y [n, out]: y = x W^T + b. */
gf_status gf_linear_forward(gf_ctx *ctx, int n, int in, int out, cl_mem x, cl_mem W, cl_mem b, cl_mem y);
/* t_out = x Wt^T + bt + t_in W^T (each term optional, as for conv). */
gf_status gf_linear_tangent(gf_ctx *ctx, int n, int in, int out, cl_mem x, cl_mem Wt, cl_mem bt,
                            cl_mem W, cl_mem t_in, cl_mem t_out);
/* gx = g W, gW = g^T x, gb = column sums of g (each optional; accumulate as for conv). */
gf_status gf_linear_backward(gf_ctx *ctx, int n, int in, int out, cl_mem x, cl_mem W, cl_mem g,
                             cl_mem gx, cl_mem gW, cl_mem gb, int accumulate);

/* BatchNorm folding on host arrays (running statistics):
 *   W'[o, :] = W[o, :] * gamma[o] / sqrt(var[o] + eps)
 *   b'[o]    = (b[o] - mean[o]) * gamma[o] / sqrt(var[o] + eps) + beta[o]
 * W is [c_out, per_out] and is updated in place. b_in may be NULL (no bias =
 * 0); b_out receives the folded bias (may equal b_in). ctx may be NULL.
 * Returns GF_ERR_INPUT when var + eps is not positive or a value is not finite. */
gf_status gf_bn_fold(gf_ctx *ctx, float *W, const float *b_in, float *b_out, int c_out, size_t per_out,
                     const float *gamma, const float *beta, const float *mean, const float *var, float eps);
#endif
