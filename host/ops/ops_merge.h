/* Ops that merge tensors (kernels in cl/merge.cl): the product of two tensors
 * — elementwise, or a per-channel gate [N, C, 1, 1] broadcast over H x W
 * (squeeze-excitation) — and channel concatenation. Forward, tangent (JVP)
 * and backward (VJP) side by side; every launcher only enqueues work.
 *
 * Product y = x * s. Both inputs may move, so its tangent is the product rule
 *   t = tx * s + x * ts        (either term left out when its tangent is 0)
 * and its backward gives gradients to both inputs:
 *   gx = g * s,   gs = g * x (elementwise)  or  gs[n, c] = sum_hw g * x (gate).
 * Sizes: `planes` = N * C, `HW` values per plane; `gate` = 1 when s has one
 * value per plane.
 *
 * Concat along channels of inputs k = 0..n-1 with C_k channels each, same
 * N and HW: y[:, off_k : off_k + C_k] = x_k (off_k = C_0 + ... + C_{k-1}).
 * Its tangent is the concat of the tangents (a zero slice for an input whose
 * tangent is 0), its backward hands each input its slice of the gradient.
 *
 * Channel slice y = x[:, off : off + Ck] (torch.chunk / split over channels):
 * forward and tangent are the slice, its backward writes the gradient into
 * the slice and zeros elsewhere (or adds it into the slice).
 *
 * Channel shuffle with G groups (ShuffleNet: reshape [N, G, C/G, HW],
 * transpose(1, 2), reshape [N, C, HW]): y[:, k*G + g] = x[:, g*(C/G) + k].
 * A permutation: its tangent is the same permutation, its backward the
 * inverse one. */
#ifndef GF_OPS_MERGE_H
#define GF_OPS_MERGE_H
#include "gf_internal.h"

enum { GF_CONCAT_MAX_INPUTS = 64 };

/* y = x * s. y may alias x (not s when gate). */
gf_status gf_mul_forward(gf_ctx *ctx, size_t planes, size_t HW, int gate, cl_mem x, cl_mem s, cl_mem y);
/* t = tx * s + x * ts at the primal (x, s); tx or ts NULL = that tangent is 0 (not both). */
gf_status gf_mul_tangent(gf_ctx *ctx, size_t planes, size_t HW, int gate, cl_mem x, cl_mem s, cl_mem tx, cl_mem ts,
                         cl_mem t);
/* gx = g * s and gs = g * x (summed over each plane when gate); gx or gs NULL = not wanted.
 * Both overwrite their output. */
gf_status gf_mul_backward(gf_ctx *ctx, size_t planes, size_t HW, int gate, cl_mem x, cl_mem s, cl_mem g, cl_mem gx,
                          cl_mem gs);

/* y = concat(x_0..x_{n-1}) over channels; x[k] NULL writes zeros into its slice
 * (the tangent of an input known to be 0). Forward and tangent are this call. */
gf_status gf_concat_forward(gf_ctx *ctx, size_t N, size_t HW, int n, const int *C, const cl_mem *x, cl_mem y);
/* Input k's slice of the output gradient g ([N, C_total, HW]): gk = g[:, off : off + Ck]
 * (accumulate: gk += that slice). */
gf_status gf_concat_backward(gf_ctx *ctx, size_t N, size_t HW, int C_total, int off, int Ck, cl_mem g, cl_mem gk,
                             int accumulate);

/* y = x[:, off : off + Ck] of x [N, C_in, HW]; forward and tangent are this call. */
gf_status gf_slice_forward(gf_ctx *ctx, size_t N, size_t HW, int C_in, int off, int Ck, cl_mem x, cl_mem y);
/* gx [N, C_in, HW]: the slice gets g [N, Ck, HW]; accumulate = 0 zeroes the rest of gx
 * first, accumulate = 1 adds g into the slice and leaves the rest. */
gf_status gf_slice_backward(gf_ctx *ctx, size_t N, size_t HW, int C_in, int off, int Ck, cl_mem g, cl_mem gx,
                            int accumulate);

/* y = channel_shuffle(x, G) of x [N, C, HW], C a multiple of G; y must not alias x.
 * Forward and tangent are this call. */
gf_status gf_shuffle_forward(gf_ctx *ctx, size_t N, int C, size_t HW, int G, cl_mem x, cl_mem y);
/* gx (=, += when accumulate) the inverse permutation of g; gx must not alias g. */
gf_status gf_shuffle_backward(gf_ctx *ctx, size_t N, int C, size_t HW, int G, cl_mem g, cl_mem gx, int accumulate);
#endif
