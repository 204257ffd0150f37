/* Plain-C double references of the ops, once each (the op table, optable.c, checks the device against them:
 * tests/test_ops.c and `gradfeat selftest`).
 * Every reference takes double inputs, so that central finite differences (x +- h v) carry no float
 * rounding. tests/test_ops.c checks the activation and layer-norm references against independent formulas. */
#ifndef GF_REF_OPS_H
#define GF_REF_OPS_H
#include <stddef.h>
#include "ops_act.h"
#include "ops_affine.h"
#include "ops_pool.h"

double ref_dot(const double *a, const double *b, size_t n);

/* Convolution y = W * x (+ b; b may be NULL) with d's shape, padding, dilation and groups (a linear layer
 * is the 1x1 convolution of 1x1 images); its adjoint gx = W^T g, gW = g (x) x, gb = sum g (the transposed
 * loops). */
void ref_conv(const gf_conv_desc *d, const double *x, const double *W, const double *b, double *y);
void ref_conv_backward(const gf_conv_desc *d, const double *x, const double *W, const double *g, double *gx,
                       double *gW, double *gb);

/* One optimiser step on n parameters p with gradient g scaled by clip (the norm clipping's factor) plus
 * weight decay wd (p - target; target NULL: toward 0): SGD with momentum mom (v, unused when mom = 0) or Adam
 * (b1, b2, eps; m, v; step counts from 1, with bias correction). */
typedef struct ref_optim { int adam; double lr, mom, wd, b1, b2, eps; } ref_optim;
void ref_optim_step(const ref_optim *o, int step, size_t n, const double *g, double clip, const double *target,
                    double *p, double *m, double *v);

/* Batch norm over [n, c, hw]: the batch statistics (biased variance); y = (x - mean) / sqrt(var + eps) gamma
 * + beta with given statistics; the closed-form backward with given statistics (train: also the terms
 * through the batch statistics) and the tolerance scale of each value: 1 + the magnitudes of its terms. */
void ref_bn_stats(int n, int c, int hw, const double *x, double *mean, double *var);
void ref_bn_affine(int n, int c, int hw, const double *x, const double *g, const double *b, const double *mean,
                   const double *var, double eps, double *y);
void ref_bn_backward(int n, int c, int hw, const double *x, const double *dy, const double *g, const double *mean,
                     const double *var, double eps, int train, double *dx, double *dg, double *db, double *sdx,
                     double *sdg, double *sdb);

/* Layer norm over C channels of one pixel (values C apart by stride 1), and its Jacobian times t (symmetric:
 * also the backward's). */
void ref_ln(const double *x, int C, double eps, double *y);
void ref_ln_jvp(const double *x, const double *t, int C, double eps, double *jt);

/* The activation of kind a.kind (slope a.slope) at z, and its derivative (at the kinks: the kernels'
 * convention, mask 1[z > 0], ReLU6 open at 6, hard-swish PyTorch's). */
double ref_act(gf_act a, double z);
double ref_act_d(gf_act a, double z);

/* Product y = x * s; gate: s holds one value per plane of HW (squeeze-excitation), else per element. */
void ref_mul(size_t P, size_t HW, int gate, const double *x, const double *s, double *y);
/* gx = u * s, gs = u * x (summed over the plane with gate); either may be NULL. */
void ref_mul_backward(size_t P, size_t HW, int gate, const double *x, const double *s, const double *u,
                      double *gx, double *gs);

/* Concat along channels of n inputs of C[k] channels (NULL input: zeros, a tangent that does not move). */
void ref_concat(int N, size_t HW, int n, const int *C, const double *const *in, double *y);
/* The slice of channels off .. off+Ck of x [N, C, HW]. */
void ref_slice(int N, size_t HW, int C, int off, int Ck, const double *x, double *y);
/* Its adjoint: g [N, Ck, HW] into [N, C, HW], zeros elsewhere. */
void ref_slice_backward(int N, size_t HW, int C, int off, int Ck, const double *g, double *gx);
/* Channel shuffle in G groups: y[n, k*G + g] = x[n, g*(C/G) + k]
 * (torch: x.view(N, G, C/G, HW).transpose(1, 2).reshape(N, C, HW)); and its inverse. */
void ref_shuffle(int N, int C, size_t HW, int G, const double *x, double *y);
void ref_shuffle_backward(int N, int C, size_t HW, int G, const double *g, double *gx);

/* Max pool (y and arg: flat h*W+w, the first maximum in row-major window order wins) or average pool with
 * the divisor rule of p->count_include_pad; arg may be NULL. */
void ref_pool(const gf_pool2d *p, const double *x, int is_max, double *y, int *arg);
/* Adjoints: the max pool scatters g to arg, the average pool g / divisor over each window. */
void ref_maxpool_backward(const gf_pool2d *p, const int *arg, const double *g, double *gi);
void ref_avgpool_backward(const gf_pool2d *p, const double *g, double *gi);
/* Global average pool over planes of HW, and its adjoint. */
void ref_gap(size_t NC, size_t HW, const double *x, double *y);
void ref_gap_backward(size_t NC, size_t HW, const double *g, double *gi);

/* Softmax cross-entropy, mean over B rows; labels outside [0, K) are ignored rows. Returns the loss;
 * grad (may be NULL) d loss / d z; correct (may be NULL): rows whose first arg-max is the label. */
double ref_xent(int B, int K, const double *z, const int *y, double *grad, double *correct);
/* Sigmoid binary cross-entropy over B x K logits, targets < 0 ignored; mean over B (per_sample) or all. */
double ref_bce(int B, int K, const double *z, const double *t, int per_sample, double *grad, double *correct);
#endif
