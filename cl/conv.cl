/* Affine family kernels (host/ops/ops_affine.c): im2col / col2im around CLBlast
 * GEMM, layout transposes between NCHW and [C, N*P], bias and reductions,
 * and direct depthwise convolution. OpenCL C 1.2, fp32. Every kernel checks
 * its global id (global sizes are rounded up). No atomics: every output is
 * written by one work item (or one work-group) with a fixed summation order,
 * so results are bitwise reproducible.
 *
 * Geometry arguments (always in this order: GEOM below, G_FMT / G_ARGS on the host):
 *   C, H, W      input channels (per chunk: all), height, width
 *   OH, OW       output height, width
 *   KH, KW       kernel size
 *   SH, SW       stride
 *   PT, PL       padding top, left (bottom/right follow from OH/OW)
 *   DH, DW       dilation */
#define GEOM int C, int H, int W, int OH, int OW, int KH, int KW, int SH, int SW, int PT, int PL, int DH, int DW

#ifndef RED_WG
#define RED_WG 64
#endif

/* col[r][q], r = (c*KH + i)*KW + j, q = nl*P + p (P = OH*OW), for images
 * n0..n0+nb-1 of x (x_off = n0*C*H*W). Zero outside the input. */
kernel void im2col(global const float *x, int x_off, global float *col, int nb, GEOM)
{
    int q = (int)get_global_id(0);
    int r = (int)get_global_id(1);
    int P = OH * OW;
    int cols = nb * P;
    if (q >= cols || r >= C * KH * KW) return;
    int nl = q / P, p = q - nl * P;
    int oh = p / OW, ow = p - oh * OW;
    int j = r % KW, t = r / KW;
    int i = t % KH, c = t / KH;
    int ih = oh * SH - PT + i * DH;
    int iw = ow * SW - PL + j * DW;
    float v = 0.0f;
    if (ih >= 0 && ih < H && iw >= 0 && iw < W)
        v = x[x_off + ((nl * C + c) * H + ih) * W + iw];
    col[r * cols + q] = v;
}

/* The output o whose window reads input x at tap offset kd (o*S - P + kd == x), within
 * [0, O): o, or -1 if there is none; -2 once x + P - kd < 0 (no larger tap reaches x). */
int tap_out(int x, int P, int kd, int S, int O)
{
    int t = x + P - kd;
    return t < 0 ? -2 : (t % S || t / S >= O) ? -1 : t / S;
}

/* Adjoint of im2col: gx[n0+nl, c, ih, iw] (+)= sum of the col entries that
 * read this pixel. One work item per input pixel (a gather, no races). */
kernel void col2im(global const float *col, global float *gx, int gx_off, int accumulate, int nb, GEOM)
{
    int q = (int)get_global_id(0);
    if (q >= nb * C * H * W) return;
    int iw = q % W, t = q / W;
    int ih = t % H; t /= H;
    int c = t % C, nl = t / C;
    int P = OH * OW;
    int cols = nb * P;
    float s = 0.0f;
    for (int i = 0, oh; i < KH && (oh = tap_out(ih, PT, i * DH, SH, OH)) != -2; i++) {
        if (oh < 0) continue;
        for (int j = 0, ow; j < KW && (ow = tap_out(iw, PL, j * DW, SW, OW)) != -2; j++) {
            if (ow < 0) continue;
            s += col[((c * KH + i) * KW + j) * cols + nl * P + oh * OW + ow];
        }
    }
    store_acc(gx + gx_off + q, accumulate, s);
}

/* y[n0+nl, c, p] = src[c, nl*P + p] (+ b[c]). */
kernel void cnp_to_ncp(global const float *src, global float *y, int y_off, global const float *b, int has_b,
                       int nb, int C, int P)
{
    int q = (int)get_global_id(0);
    if (q >= nb * C * P) return;
    int p = q % P, t = q / P;
    int c = t % C, nl = t / C;
    float v = src[c * (nb * P) + nl * P + p];
    if (has_b) v += b[c];
    y[y_off + q] = v;
}

/* dst[c, nl*P + p] = g[n0+nl, c, p]. */
kernel void ncp_to_cnp(global const float *g, int g_off, global float *dst, int nb, int C, int P)
{
    int q = (int)get_global_id(0);
    if (q >= nb * C * P) return;
    int cols = nb * P;
    int c = q / cols, r = q - c * cols;
    int nl = r / P, p = r - nl * P;
    dst[q] = g[g_off + (nl * C + c) * P + p];
}

/* ---- CPU variants: one work item per tile of rows of one (channel, image)
 * plane, loops without integer division (vector units have no integer divide,
 * so the per-element kernels above cost ~20 ns per float on PoCL). Same
 * results up to the summation order of col2im_plane (fixed, so still
 * reproducible).
 *
 * Bounded work per work item: the host picks `rows` (rows of the plane per
 * work item) so that the loop iterations of one item stay under the context's
 * item budget (gf_item_rows, host/ops/ops_affine.c). A whole plane per item broke
 * Mesa's llvmpipe, which silently ends a work item's loops after 65,535
 * iterations in all; GPU watchdogs kill long items too. Grid: items
 * q = plane * tiles + t, tiles = ceil(rows of the plane / rows) (tile_of). ---- */

/* Output columns ow with 0 <= ow*SW + b < W (b = j*DW - PL): [*lo, *hi). Splitting each row into
 * zero / copy / zero runs takes the bounds test out of the inner loop, which then vectorises. */
void valid_cols(int b, int W, int SW, int OW, int *lo, int *hi)
{
    int l = b >= 0 ? 0 : (SW - 1 - b) / SW;
    int h = W - b > 0 ? (W - b + SW - 1) / SW : 0;
    l = min(l, OW);
    *lo = l;
    *hi = clamp(h, l, OW);
}

/* This work item's tile: the grid is `planes` planes of `len` rows, each cut into
 * tiles of `rows` rows, item q = plane * tiles + t. Its plane and rows [*r0, *r1);
 * 0 for an item past the grid. */
int tile_of(int planes, int len, int rows, int *plane, int *r0, int *r1)
{
    int tiles = (len + rows - 1) / rows, q = (int)get_global_id(0);
    if (q >= planes * tiles) return 0;
    *plane = q / tiles;
    *r0 = (q - *plane * tiles) * rows;
    *r1 = min(len, *r0 + rows);
    return 1;
}

/* ceil(a / s) for s > 0 and any sign of a. */
int cdiv(int a, int s) { return a >= 0 ? (a + s - 1) / s : -((-a) / s); }

/* Output rows oh whose input row oh*SH + base lies in [ih0, ih1): [*lo, *hi) within [0, OH). */
void rows_reading(int base, int ih0, int ih1, int SH, int OH, int *lo, int *hi)
{
    int l = max(cdiv(ih0 - base, SH), 0);
    int h = min(cdiv(ih1 - base, SH), OH);
    *lo = l;
    *hi = max(h, l);
}

/* Tiles over output rows of each (c, nl) plane (image fastest between planes). */
kernel void im2col_plane(global const float *restrict x, int x_off, global float *restrict col, int nb, GEOM, int rows)
{
    int pl, oh0, oh1;
    if (!tile_of(nb * C, OH, rows, &pl, &oh0, &oh1)) return;
    int c = pl / nb, nl = pl - c * nb;
    int P = OH * OW;
    int cols = nb * P;
    int xb = x_off + (nl * C + c) * H * W;
    for (int i = 0; i < KH; i++)
        for (int j = 0; j < KW; j++) {
            int db = ((c * KH + i) * KW + j) * cols + nl * P;
            int b = j * DW - PL, lo, hi;
            valid_cols(b, W, SW, OW, &lo, &hi);
            for (int oh = oh0; oh < oh1; oh++) {
                int ih = oh * SH - PT + i * DH;
                int d0 = db + oh * OW;
                if (ih < 0 || ih >= H) {
                    for (int ow = 0; ow < OW; ow++) col[d0 + ow] = 0.0f;
                    continue;
                }
                int s0 = xb + ih * W + b;
                for (int ow = 0; ow < lo; ow++) col[d0 + ow] = 0.0f;
                if (SW == 1) {
                    for (int ow = lo; ow < hi; ow++) col[d0 + ow] = x[s0 + ow];
                } else if (SW == 2) {   /* eight at a time from 16 loaded (PoCL left the strided loop scalar) */
                    int ow = lo;
                    for (; ow + 8 < hi; ow += 8) vstore8(vload16(0, x + s0 + 2 * ow).even, 0, col + d0 + ow);
                    for (; ow < hi; ow++) col[d0 + ow] = x[s0 + 2 * ow];
                } else {
                    for (int ow = lo; ow < hi; ow++) col[d0 + ow] = x[s0 + ow * SW];
                }
                for (int ow = hi; ow < OW; ow++) col[d0 + ow] = 0.0f;
            }
        }
}

/* Tiles over input rows [ih0, ih1) of each gx plane (nl, c): (gx if accumulate,
 * else 0) + contributions in (i, j, oh, ow) order (each gx element sums its
 * terms in (i, j) order, as in col2im). */
kernel void col2im_plane(global const float *restrict col, global float *restrict gx, int gx_off, int accumulate,
                         int nb, GEOM, int rows)
{
    int pl, ih0, ih1;
    if (!tile_of(nb * C, H, rows, &pl, &ih0, &ih1)) return;
    int c = pl / nb, nl = pl - c * nb;
    int P = OH * OW;
    int cols = nb * P;
    int gb = gx_off + (nl * C + c) * H * W;
    if (!accumulate)
        for (int k = ih0 * W; k < ih1 * W; k++) gx[gb + k] = 0.0f;
    for (int i = 0; i < KH; i++) {
        int ohlo, ohhi;
        rows_reading(i * DH - PT, ih0, ih1, SH, OH, &ohlo, &ohhi);
        for (int j = 0; j < KW; j++) {
            int sb = ((c * KH + i) * KW + j) * cols + nl * P;
            int b = j * DW - PL, lo, hi;
            valid_cols(b, W, SW, OW, &lo, &hi);
            for (int oh = ohlo; oh < ohhi; oh++) {
                int ih = oh * SH - PT + i * DH;
                int g0 = gb + ih * W + b, s0 = sb + oh * OW;
                if (SW == 1)
                    for (int ow = lo; ow < hi; ow++) gx[g0 + ow] += col[s0 + ow];
                else
                    for (int ow = lo; ow < hi; ow++) gx[g0 + ow * SW] += col[s0 + ow];
            }
        }
    }
}

/* Row copies for the layout changes: items per (nl, c) row of P floats, `rows`
 * floats per item. */
/* The forward's fused epilogue (gf_conv2d_forward_post): after the bias, + the residual r (laid out as y), then
 * the activation `post`: 0 none, 1 ReLU, 2 ReLU6. The same operations as the unfused gf_add and act_forward_rows
 * (a NaN passes through): the same bits. */
float conv_post(float v, int post)
{
    if (post == 1) return v <= 0.0f ? 0.0f : v;
    if (post == 2) return v <= 0.0f ? 0.0f : (v >= 6.0f ? 6.0f : v);
    return v;
}
float16 conv_post16(float16 v, int post)
{
    float16 zero = (float16)(0.0f), six = (float16)(6.0f);
    if (post == 1) return select(v, zero, v <= zero);
    if (post == 2) return select(select(v, six, v >= six), zero, v <= zero);
    return v;
}

kernel void cnp_to_ncp_rows(global const float *restrict src, global float *restrict y, int y_off,
                            global const float *restrict b, int has_b, int nb, int C, int P, int rows,
                            global const float *restrict r, int has_r, int post)
{
    int pl, p0, p1;
    if (!tile_of(nb * C, P, rows, &pl, &p0, &p1)) return;
    int nl = pl / C, c = pl - nl * C;
    float bias = has_b ? b[c] : 0.0f;
    int s0 = c * (nb * P) + nl * P, d0 = y_off + pl * P, p = p0;
    /* 16 at a time, then the rest (PoCL left the loop scalar) */
    if (!has_r && !post) {
        for (; p + 16 <= p1; p += 16) vstore16(vload16(0, src + s0 + p) + bias, 0, y + d0 + p);
        for (; p < p1; p++) y[d0 + p] = src[s0 + p] + bias;
        return;
    }
    for (; p + 16 <= p1; p += 16) {
        float16 v = vload16(0, src + s0 + p) + bias;
        if (has_r) v += vload16(0, r + d0 + p);
        vstore16(conv_post16(v, post), 0, y + d0 + p);
    }
    for (; p < p1; p++) {
        float v = src[s0 + p] + bias;
        if (has_r) v += r[d0 + p];
        y[d0 + p] = conv_post(v, post);
    }
}

kernel void ncp_to_cnp_rows(global const float *restrict g, int g_off, global float *restrict dst, int nb, int C,
                            int P, int rows)
{
    int pl, p0, p1;
    if (!tile_of(nb * C, P, rows, &pl, &p0, &p1)) return;
    int nl = pl / C, c = pl - nl * C;
    int s0 = g_off + pl * P, d0 = c * (nb * P) + nl * P, p = p0;
    for (; p + 16 <= p1; p += 16) vstore16(vload16(0, g + s0 + p), 0, dst + d0 + p);
    for (; p < p1; p++) dst[d0 + p] = g[s0 + p];
}

/* y[n, c, p] = b[c] or 0 (tangent with no weight term). */
kernel void fill_bias(global float *y, global const float *b, int has_b, int N, int C, int P)
{
    int q = (int)get_global_id(0);
    if (q >= N * C * P) return;
    int c = (q / P) % C;
    y[q] = has_b ? b[c] : 0.0f;
}

/* gb[c] (+)= sum over n, p of g[n, c, p]. One work-group of RED_WG items per
 * (channel, slice); strided partial sums over the slice's part of the N*P
 * values, then wg_sum's fixed tree in local memory. With one slice the sum goes
 * to gb; with more (the host bounds each item's loop, see "Bounded work per
 * work item") to part[c * slices + s], added up by sum_partials. */
kernel void reduce_nc(global const float *g, global float *gb, int accumulate, int N, int C, int P, int slices,
                      global float *part)
{
    local float part_l[RED_WG];
    int grp = (int)get_group_id(0);
    int c = grp / slices, sl = grp - c * slices;
    int l = (int)get_local_id(0);
    float s = 0.0f;
    if (c < C) {
        int total = N * P;
        int len = (total + slices - 1) / slices;
        int k0 = sl * len, k1 = min(total, k0 + len);
        for (int k = k0 + l; k < k1; k += RED_WG) {
            int n = k / P, p = k - n * P;
            s += g[(n * C + c) * P + p];
        }
    }
    s = wg_sum(part_l, s);
    if (l == 0 && c < C) {
        if (slices > 1) part[grp] = s;
        else store_acc(gb + c, accumulate, s);
    }
}

/* reduce_nc on CPU-style paths: one work item per (channel, slice) walks its slice of the N*P values in runs
 * of one plane, eight partial sums taken with vector loads and the rest one by one, added in a fixed order
 * (reduce_nc's lanes stride across planes with a division per value and stay scalar on PoCL). */
kernel void reduce_nc_rows(global const float *g, global float *gb, int accumulate, int N, int C, int P,
                           int slices, global float *part)
{
    int q = (int)get_global_id(0);
    if (q >= C * slices) return;
    int c = q / slices, sl = q - c * slices;
    int total = N * P, len = (total + slices - 1) / slices;
    int k = sl * len, k1 = min(total, k + len);
    float s = 0.0f;
    float8 s8 = (float8)(0.0f);
    int n = k / P, p = k - n * P;
    while (k < k1) {
        int run = min(P - p, k1 - k);
        global const float *gp = g + ((size_t)n * C + c) * P + p;
        int r8 = run / 8 * 8;
        for (int i = 0; i < r8; i += 8) s8 += vload8(0, gp + i);
        for (int i = r8; i < run; i++) s += gp[i];
        k += run;
        p = 0;
        n++;
    }
    s += ((s8.s0 + s8.s1) + (s8.s2 + s8.s3)) + ((s8.s4 + s8.s5) + (s8.s6 + s8.s7));
    if (slices > 1) part[q] = s;
    else store_acc(gb + c, accumulate, s);
}

/* Depthwise (groups == C, channel multiplier M, Cout = C*M), direct:
 * y = Wa * xa (if has_a) + Wb * xb (if has_b) + bias (if has_bias).
 * Forward: a = (x, W). Tangent: a = (x, Wt), b = (t_in, W), bias = bt. */
kernel void dw_conv(global const float *xa, global const float *Wa, int has_a,
                    global const float *xb, global const float *Wb, int has_b,
                    global const float *bias, int has_bias, global float *y, int N, int M, GEOM)
{
    int q = (int)get_global_id(0);
    int CO = C * M;
    if (q >= N * CO * OH * OW) return;
    int ow = q % OW, t = q / OW;
    int oh = t % OH; t /= OH;
    int co = t % CO, n = t / CO;
    int ci = co / M;
    int base = (n * C + ci) * H * W;
    float sa = 0.0f, sb = 0.0f;
    for (int i = 0; i < KH; i++) {
        int ih = oh * SH - PT + i * DH;
        if (ih < 0 || ih >= H) continue;
        for (int j = 0; j < KW; j++) {
            int iw = ow * SW - PL + j * DW;
            if (iw < 0 || iw >= W) continue;
            int wi = (co * KH + i) * KW + j;
            int xi = base + ih * W + iw;
            if (has_a) sa += Wa[wi] * xa[xi];
            if (has_b) sb += Wb[wi] * xb[xi];
        }
    }
    float v = sa + sb;
    if (has_bias) v += bias[co];
    y[q] = v;
}

/* Depthwise input gradient: gx[n, ci, ih, iw] (+)= sum over m, i, j of
 * W[ci*M+m, i, j] * g[n, ci*M+m, oh, ow] for the (oh, ow) reading this pixel. */
kernel void dw_backward_input(global const float *Wt, global const float *g, global float *gx, int accumulate,
                              int N, int M, GEOM)
{
    int q = (int)get_global_id(0);
    if (q >= N * C * H * W) return;
    int iw = q % W, t = q / W;
    int ih = t % H; t /= H;
    int ci = t % C, n = t / C;
    float s = 0.0f;
    for (int m = 0; m < M; m++) {
        int co = ci * M + m;
        int gbase = (n * C * M + co) * OH * OW;
        for (int i = 0, oh; i < KH && (oh = tap_out(ih, PT, i * DH, SH, OH)) != -2; i++) {
            if (oh < 0) continue;
            for (int j = 0, ow; j < KW && (ow = tap_out(iw, PL, j * DW, SW, OW)) != -2; j++) {
                if (ow < 0) continue;
                s += Wt[(co * KH + i) * KW + j] * g[gbase + oh * OW + ow];
            }
        }
    }
    store_acc(gx + q, accumulate, s);
}

/* Depthwise weight gradient: gW[co, i, j] (+)= sum over n, oh, ow of
 * g[n, co, oh, ow] * x[n, co/M, ih, iw]. One work-group per (weight, slice of
 * the N*OH output rows); slices as in reduce_nc. */
kernel void dw_backward_weight(global const float *x, global const float *g, global float *gW, int accumulate,
                               int N, int M, GEOM, int slices, global float *part)
{
    local float part_l[RED_WG];
    int grp = (int)get_group_id(0);
    int widx = grp / slices, sl = grp - widx * slices;
    int l = (int)get_local_id(0);
    int CO = C * M;
    float s = 0.0f;
    if (widx < CO * KH * KW) {
        int j = widx % KW, t = widx / KW;
        int i = t % KH, co = t / KH;
        int ci = co / M;
        int len = (N * OH + slices - 1) / slices;
        int r0 = sl * len, r1 = min(N * OH, r0 + len);
        /* work items split the slice's output rows; a row is a division-free loop */
        for (int r = r0 + l; r < r1; r += RED_WG) {
            int n = r / OH, oh = r - n * OH;
            int ih = oh * SH - PT + i * DH;
            if (ih < 0 || ih >= H) continue;
            int gb = ((n * CO + co) * OH + oh) * OW;
            int xb = ((n * C + ci) * H + ih) * W;
            for (int ow = 0; ow < OW; ow++) {
                int iw = ow * SW - PL + j * DW;
                if (iw >= 0 && iw < W) s += g[gb + ow] * x[xb + iw];
            }
        }
    }
    s = wg_sum(part_l, s);
    if (l == 0 && widx < CO * KH * KW) {
        if (slices > 1) part[grp] = s;
        else store_acc(gW + widx, accumulate, s);
    }
}

/* Depthwise CPU variants: one work item per tile of `rows` rows of one plane
 * (output rows for the forward, input rows for the input gradient, (n, oh)
 * rows for the weight gradient), division-free inner loops; see "Bounded
 * work per work item" above. */
kernel void dw_conv_plane(global const float *xa, global const float *Wa, int has_a,
                          global const float *xb, global const float *Wb, int has_b,
                          global const float *bias, int has_bias, global float *y, int N, int M, GEOM, int rows)
{
    int CO = C * M, q, oh0, oh1;   /* q = n * CO + co */
    if (!tile_of(N * CO, OH, rows, &q, &oh0, &oh1)) return;
    int n = q / CO, co = q - n * CO;
    int ci = co / M;
    int base = (n * C + ci) * H * W;
    float b0 = has_bias ? bias[co] : 0.0f;
    global float *yp = y + (size_t)q * OH * OW;
    for (int k = oh0 * OW; k < oh1 * OW; k++) yp[k] = b0;
    /* One tap (i, j) at a time over the output columns whose input column is
     * inside the image: the inner loop has no branches (vectorises on CPUs).
     * Summation order per output: term a taps, then term b taps. */
    for (int term = 0; term < 2; term++) {
        if (term == 0 ? !has_a : !has_b) continue;
        global const float *xp = (term == 0 ? xa : xb) + base;
        global const float *wp = (term == 0 ? Wa : Wb) + co * KH * KW;
        for (int oh = oh0; oh < oh1; oh++) {
            global float *yr = yp + oh * OW;
            for (int i = 0; i < KH; i++) {
                int ih = oh * SH - PT + i * DH;
                if (ih < 0 || ih >= H) continue;
                global const float *xr = xp + ih * W;
                for (int j = 0; j < KW; j++) {
                    int off = j * DW - PL, lo, hi;      /* iw = ow * SW + off */
                    valid_cols(off, W, SW, OW, &lo, &hi);
                    float w = wp[i * KW + j];
                    for (int ow = lo; ow < hi; ow++) yr[ow] += w * xr[ow * SW + off];
                }
            }
        }
    }
}

/* dw_conv_plane for 3x3 taps at stride 1, dilation 1 (separable and MobileNet-style blocks): the columns whose
 * three taps are all inside the image go row of taps by row of taps, one straight pass over the output row per
 * input row inside the image and term (no tests in the loop, which vectorises; the row stays in cache), the edge
 * columns tap by tap as in dw_conv_plane. Each output gets bias, then term a's taps, then term b's, in (i, j)
 * order: dw_conv_plane's sums. The nine weights of each term are read once, into registers. */
kernel void dw_conv3_plane(global const float *restrict xa, global const float *restrict Wa, int has_a,
                           global const float *restrict xb, global const float *restrict Wb, int has_b,
                           global const float *restrict bias, int has_bias, global float *restrict y, int N, int M,
                           int C, int H, int W, int OH, int OW, int PT, int PL, int rows)
{
    int CO = C * M, q, oh0, oh1;   /* q = n * CO + co */
    if (!tile_of(N * CO, OH, rows, &q, &oh0, &oh1)) return;
    int n = q / CO, co = q - n * CO;
    size_t base = ((size_t)n * C + co / M) * H * W;
    float b0 = has_bias ? bias[co] : 0.0f;
    global float *yp = y + (size_t)q * OH * OW;
    float wt[2][9];
    for (int k = 0; k < 9; k++) {
        wt[0][k] = has_a ? Wa[co * 9 + k] : 0.0f;
        wt[1][k] = has_b ? Wb[co * 9 + k] : 0.0f;
    }
    /* "same" 3x3 (pads 1, output the input's size) on a whole plane of rows at least 8 wide: rows 1 .. H-2 as one
     * run of the flattened plane, eight outputs at a time across row ends, the taps that would fall outside the
     * row (column 0's left, column W-1's right) left out by selects. The run is [W + 1, (H - 1) W - 1): every load
     * stays inside the plane; the two outputs it leaves, (1, 0) and (H-2, W-1), go with the edge columns. */
    int flat = PT == 1 && PL == 1 && OH == H && OW == W && W >= 8 && H >= 3 && oh0 == 0 && oh1 == OH;
    if (flat) {
        int k = W + 1, k1 = (H - 1) * W - 1, col = 1;   /* col: the column of output k */
        for (; k + 8 <= k1; k += 8) {
            int8 c = (int8)(col) + (int8)(0, 1, 2, 3, 4, 5, 6, 7);
            c = c >= (int8)(W) ? c - (int8)(W) : c;   /* W >= 8: one row end at most */
            int8 left = c != (int8)(0), right = c != (int8)(W - 1);
            float8 v = (float8)(b0);
            for (int term = 0; term < 2; term++) {
                if (term == 0 ? !has_a : !has_b) continue;
                global const float *xp = (term == 0 ? xa : xb) + base + k;
                for (int i = 0; i < 3; i++) {
                    global const float *xr = xp + (i - 1) * W;
                    v = select(v, v + wt[term][3 * i] * vload8(0, xr - 1), left);
                    v = v + wt[term][3 * i + 1] * vload8(0, xr);
                    v = select(v, v + wt[term][3 * i + 2] * vload8(0, xr + 1), right);
                }
            }
            vstore8(v, 0, yp + k);
            col += 8;
            if (col >= W) col -= W;
        }
        for (; k < k1; k++) {
            float v = b0;
            for (int term = 0; term < 2; term++) {
                if (term == 0 ? !has_a : !has_b) continue;
                global const float *xr = (term == 0 ? xa : xb) + base + k;
                for (int i = 0; i < 3; i++) {
                    if (col > 0) v = v + wt[term][3 * i] * xr[(i - 1) * W - 1];
                    v = v + wt[term][3 * i + 1] * xr[(i - 1) * W];
                    if (col < W - 1) v = v + wt[term][3 * i + 2] * xr[(i - 1) * W + 1];
                }
            }
            yp[k] = v;
            if (++col == W) col = 0;
        }
    }
    /* interior columns: iw = ow - PL + j inside [0, W) for j = 0, 1, 2 */
    int lo = max(PL, 0), hi = min(OW, W - 2 + PL);
    hi = max(hi, lo);
    for (int oh = oh0; oh < oh1; oh++) {
        global float *yr = yp + oh * OW;
        int ih = oh - PT;   /* input rows ih, ih + 1, ih + 2 */
        int done = flat && oh > 0 && oh < OH - 1;   /* in the flattened run but for (1, 0) and (H-2, W-1) */
        for (int ow = lo; ow < hi && !done; ow++) yr[ow] = b0;
        for (int term = 0; term < 2 && !done; term++) {
            if (term == 0 ? !has_a : !has_b) continue;
            global const float *xp = (term == 0 ? xa : xb) + base;
            for (int i = 0; i < 3; i++) {
                if (ih + i < 0 || ih + i >= H) continue;
                global const float *xr = xp + (ih + i) * W - PL + 1;   /* xr[ow] is column ow - PL + 1 */
                float w0 = wt[term][3 * i], w1 = wt[term][3 * i + 1], w2 = wt[term][3 * i + 2];
                for (int ow = lo; ow < hi; ow++) {
                    float v = yr[ow];
                    v += w0 * xr[ow - 1]; v += w1 * xr[ow]; v += w2 * xr[ow + 1];
                    yr[ow] = v;
                }
            }
        }
        /* edge columns, tap by tap */
        for (int ow = 0; ow < OW; ow++) {
            if (ow == lo && hi > lo) ow = hi;
            if (ow >= OW) break;
            if (done && !(oh == 1 && ow == 0) && !(oh == OH - 2 && ow == OW - 1)) continue;
            float v = b0;
            for (int term = 0; term < 2; term++) {
                if (term == 0 ? !has_a : !has_b) continue;
                global const float *xp = (term == 0 ? xa : xb) + base;
                for (int i = 0; i < 3; i++) {
                    int r = ih + i;
                    if (r < 0 || r >= H) continue;
                    for (int j = 0; j < 3; j++) {
                        int c = ow - PL + j;
                        if (c >= 0 && c < W) v += wt[term][i * 3 + j] * xp[r * W + c];
                    }
                }
            }
            yr[ow] = v;
        }
    }
}

/* gx rows [ih0, ih1) of plane (n, ci) = (gx if accumulate, else 0) + contributions
 * in (m, i, j, oh, ow) order. */
kernel void dw_backward_input_plane(global const float *Wt, global const float *g, global float *gx, int accumulate,
                                    int N, int M, GEOM, int rows)
{
    int q, ih0, ih1;   /* q = n * C + ci */
    if (!tile_of(N * C, H, rows, &q, &ih0, &ih1)) return;
    int n = q / C, ci = q - n * C;
    global float *gp = gx + (size_t)q * H * W;
    if (!accumulate)
        for (int k = ih0 * W; k < ih1 * W; k++) gp[k] = 0.0f;
    for (int m = 0; m < M; m++) {
        int co = ci * M + m;
        global const float *gr0 = g + (size_t)(n * C * M + co) * OH * OW;
        for (int i = 0; i < KH; i++) {
            int ohlo, ohhi;
            rows_reading(i * DH - PT, ih0, ih1, SH, OH, &ohlo, &ohhi);
            for (int j = 0; j < KW; j++) {
                float w = Wt[(co * KH + i) * KW + j];
                int off = j * DW - PL, lo, hi;  /* iw = ow * SW + off */
                valid_cols(off, W, SW, OW, &lo, &hi);
                for (int oh = ohlo; oh < ohhi; oh++) {
                    int ih = oh * SH - PT + i * DH;
                    global float *gxr = gp + ih * W + off;
                    global const float *gr = gr0 + oh * OW;
                    for (int ow = lo; ow < hi; ow++) gxr[ow * SW] += w * gr[ow];
                }
            }
        }
    }
}

/* dw_backward_input_plane for a "same" 3x3 depthwise conv (stride 1, pads 1, output the input's size) on whole
 * planes of rows at least 8 wide: as dw_conv3_plane's flattened run, rows 1 .. H-2 of gx eight elements at a time
 * (tap (i, j) reads g at k + (1 - i) W + 1 - j; j = 0 left out at column W-1, j = 2 at column 0), the rest
 * element by element; each element's terms in dw_backward_input_plane's (m, i, j) order after the same start
 * (gx or 0): the same sums. An item per (n, ci) plane. */
float dw3_grad_point(global const float *Wt, global const float *g, int ci, int M, int n, int C, int H, int W,
                     int ih, int iw, float v)
{
    for (int m = 0; m < M; m++) {
        int co = ci * M + m;
        global const float *gm = g + (size_t)(n * C * M + co) * H * W;
        for (int i = 0; i < 3; i++) {
            int oh = ih + 1 - i;
            if (oh < 0 || oh >= H) continue;
            for (int j = 0; j < 3; j++) {
                int ow = iw + 1 - j;
                if (ow >= 0 && ow < W) v += Wt[co * 9 + 3 * i + j] * gm[oh * W + ow];
            }
        }
    }
    return v;
}

kernel void dw3_backward_input_flat(global const float *Wt, global const float *g, global float *gx, int accumulate,
                                    int N, int M, int C, int H, int W)
{
    int q = (int)get_global_id(0);   /* q = n * C + ci */
    if (q >= N * C) return;
    int n = q / C, ci = q - n * C;
    global float *gp = gx + (size_t)q * H * W;
    int k = W + 1, k1 = (H - 1) * W - 1, col = 1;
    for (; k + 8 <= k1; k += 8) {
        int8 c = (int8)(col) + (int8)(0, 1, 2, 3, 4, 5, 6, 7);
        c = c >= (int8)(W) ? c - (int8)(W) : c;
        int8 left = c != (int8)(W - 1), right = c != (int8)(0);   /* taps j = 0 and j = 2 inside the row */
        float8 v = accumulate ? vload8(0, gp + k) : (float8)(0.0f);
        for (int m = 0; m < M; m++) {
            int co = ci * M + m;
            global const float *gr = g + (size_t)(n * C * M + co) * H * W + k;
            for (int i = 0; i < 3; i++) {
                global const float *r = gr + (1 - i) * W;
                v = select(v, v + Wt[co * 9 + 3 * i] * vload8(0, r + 1), left);
                v = v + Wt[co * 9 + 3 * i + 1] * vload8(0, r);
                v = select(v, v + Wt[co * 9 + 3 * i + 2] * vload8(0, r - 1), right);
            }
        }
        vstore8(v, 0, gp + k);
        col += 8;
        if (col >= W) col -= W;
    }
    for (; k < k1; k++) {
        gp[k] = dw3_grad_point(Wt, g, ci, M, n, C, H, W, k / W, col, accumulate ? gp[k] : 0.0f);
        if (++col == W) col = 0;
    }
    /* rows 0 and H-1, and the run's two left-out elements */
    for (int iw = 0; iw < W; iw++) {
        gp[iw] = dw3_grad_point(Wt, g, ci, M, n, C, H, W, 0, iw, accumulate ? gp[iw] : 0.0f);
        int e = (H - 1) * W + iw;
        gp[e] = dw3_grad_point(Wt, g, ci, M, n, C, H, W, H - 1, iw, accumulate ? gp[e] : 0.0f);
    }
    gp[W] = dw3_grad_point(Wt, g, ci, M, n, C, H, W, 1, 0, accumulate ? gp[W] : 0.0f);
    gp[k1] = dw3_grad_point(Wt, g, ci, M, n, C, H, W, H - 2, W - 1, accumulate ? gp[k1] : 0.0f);
}

/* Depthwise weight gradient, CPU variant: one work item per (weight, tile of
 * `rows` of the N*OH output rows), a serial loop over them (no barriers, which
 * split work-item loops on CPUs). With one tile (tiles == 1) the sum goes to
 * gW (accumulate as asked); else to part[widx * tiles + t], which
 * sum_partials adds up in t order. */
kernel void dw_backward_weight_serial(global const float *x, global const float *g, global float *gW,
                                      int accumulate, int N, int M, GEOM, int rows, global float *part)
{
    int CO = C * M, widx, r0, r1;
    if (!tile_of(CO * KH * KW, N * OH, rows, &widx, &r0, &r1)) return;
    int j = widx % KW, t = widx / KW;
    int i = t % KH, co = t / KH;
    int ci = co / M;
    int off = j * DW - PL, lo, hi;          /* iw = ow * SW + off */
    valid_cols(off, W, SW, OW, &lo, &hi);
    int n = r0 / OH, oh = r0 - n * OH;
    float s = 0.0f;
    /* stride 1: eight partial sums, lane k taking the columns lo + 8m + k of every row (vector loads), then the
     * columns past the last whole eight one by one into s; the lanes are added to s in order at the end */
    float8 s8 = (float8)(0.0f);
    int lo8 = SW == 1 ? lo + (hi - lo) / 8 * 8 : lo;
    for (int r = r0; r < r1; r++) {
        int ih = oh * SH - PT + i * DH;
        if (ih >= 0 && ih < H) {
            global const float *gr = g + ((size_t)(n * CO + co) * OH + oh) * OW;
            global const float *xr = x + ((size_t)(n * C + ci) * H + ih) * W + off;
            for (int ow = lo; ow < lo8; ow += 8) s8 += vload8(0, gr + ow) * vload8(0, xr + ow);
            for (int ow = lo8; ow < hi; ow++) s += gr[ow] * xr[ow * SW];
        }
        if (++oh == OH) { oh = 0; n++; }
    }
    s += ((s8.s0 + s8.s1) + (s8.s2 + s8.s3)) + ((s8.s4 + s8.s5) + (s8.s6 + s8.s7));
    if (N * OH <= rows) store_acc(gW + widx, accumulate, s);   /* one tile */
    else part[get_global_id(0)] = s;
}

/* dw_backward_weight_serial for 3x3 taps at stride 1, dilation 1: an item per (channel, tile of rows) takes the
 * channel's nine weights together, each output-gradient row read once for all nine and each input row once for
 * three. The tiles and every weight's sum are dw_backward_weight_serial's, operation for operation (eight lanes
 * over the columns lo + 8m + k, the rest one by one, lanes added in order at the end): the same bits. */
kernel void dw3_backward_weight_rows(global const float *x, global const float *g, global float *gW, int accumulate,
                                     int N, int M, int C, int H, int W, int OH, int OW, int PT, int PL, int rows,
                                     global float *part)
{
    int CO = C * M, co, r0, r1;
    if (!tile_of(CO, N * OH, rows, &co, &r0, &r1)) return;
    int ci = co / M, tiles = (N * OH + rows - 1) / rows, t = r0 / rows;
    int lo[3], hi[3], lo8[3];
    for (int j = 0; j < 3; j++) {
        valid_cols(j - PL, W, 1, OW, &lo[j], &hi[j]);
        lo8[j] = lo[j] + (hi[j] - lo[j]) / 8 * 8;
    }
    float s[9];
    float8 s8[9];
    for (int k = 0; k < 9; k++) { s[k] = 0.0f; s8[k] = (float8)(0.0f); }
    int n = r0 / OH, oh = r0 - n * OH;
    for (int r = r0; r < r1; r++) {
        global const float *gr = g + ((size_t)(n * CO + co) * OH + oh) * OW;
        for (int i = 0; i < 3; i++) {
            int ih = oh - PT + i;
            if (ih < 0 || ih >= H) continue;
            global const float *xrow = x + ((size_t)(n * C + ci) * H + ih) * W;
            for (int j = 0; j < 3; j++) {
                global const float *xr = xrow + j - PL;
                for (int ow = lo[j]; ow < lo8[j]; ow += 8) s8[3 * i + j] += vload8(0, gr + ow) * vload8(0, xr + ow);
                for (int ow = lo8[j]; ow < hi[j]; ow++) s[3 * i + j] += gr[ow] * xr[ow];
            }
        }
        if (++oh == OH) { oh = 0; n++; }
    }
    for (int k = 0; k < 9; k++) {
        float8 v = s8[k];
        float sk = s[k] + (((v.s0 + v.s1) + (v.s2 + v.s3)) + ((v.s4 + v.s5) + (v.s6 + v.s7)));
        if (tiles == 1) store_acc(gW + co * 9 + k, accumulate, sk);
        else part[(co * 9 + k) * tiles + t] = sk;
    }
}

/* out[k] (+)= sum over t < tiles of part[k * tiles + t], in t order. */
kernel void sum_partials(global const float *part, global float *out, int accumulate, int count, int tiles)
{
    int k = (int)get_global_id(0);
    if (k >= count) return;
    float s = 0.0f;
    for (int t = 0; t < tiles; t++) s += part[k * tiles + t];
    store_acc(out + k, accumulate, s);
}

/* ---- Winograd F(2x2, 3x3) for 3x3, stride-1, dilation-1, ungrouped convolutions (host: ops_affine.c,
 * "Winograd"). The output is cut into 2x2 tiles, TH = ceil(OH/2) by TW = ceil(OW/2) per image; a chunk of
 * nb images has T = nb*TH*TW tiles, t = (nl*TH + th)*TW + tw. Tile (th, tw) reads the 4x4 input patch at
 * rows 2*th - PT + 0..3, columns 2*tw - PL + 0..3 (zero outside the image), so any padding works and the
 * partial tiles of odd sizes just drop the outputs past OH, OW.
 *   V[xi][c][t] = (B^T d B)[xi]    (wino_input, 16 planes of [C, T])
 *   U[xi][o][i] = (G g G^T)[xi]    (wino_filter, 16 planes of [CO, CI])
 *   M[xi][o][t] = sum_i U V        (16 GEMMs on the host: gf_gemm_batched)
 *   y tile      = A^T M A          (wino_output)
 * with B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1],
 * A^T = [1 1 1 0; 0 1 -1 -1]. Every value is written by one work item in a fixed order. ---- */

/* The per-tile kernels' work item q = c*T + t, t = (nl*TH + th)*TW + tw (c: the channel, or k of the output),
 * as (c, nl, th, tw) */
int4 wino_tile_item(int q, int nb, int TH, int TW)
{
    int tpi = TH * TW, T = nb * tpi;
    int c = q / T, t = q - c * T;
    int nl = t / tpi, r = t - nl * tpi;
    int th = r / TW;
    return (int4)(c, nl, th, r - th * TW);
}

/* The rows kernels' work item q = (c*nb + nl)*TH + th, a row of tiles, as (c, nl, th) */
int4 wino_row_item(int q, int nb, int TH)
{
    int c = q / (nb * TH), r = q - c * (nb * TH);
    int nl = r / TH;
    return (int4)(c, nl, r - nl * TH, 0);
}

/* V for images n0.. of x (x_off = n0*C*H*W): one work item per (c, t), q = c*T + t. */
kernel void wino_input(global const float *restrict x, int x_off, global float *restrict V, int nb, int C, int H,
                       int W, int PT, int PL, int TH, int TW)
{
    int tpi = TH * TW, T = nb * tpi;
    int q = (int)get_global_id(0);
    if (q >= C * T) return;
    int4 it = wino_tile_item(q, nb, TH, TW);
    int c = it.x, nl = it.y, th = it.z, tw = it.w;
    int h0 = 2 * th - PT, w0 = 2 * tw - PL;
    global const float *xp = x + x_off + (nl * C + c) * H * W;
    float d[4][4];
    for (int i = 0; i < 4; i++) {
        int ih = h0 + i;
        for (int j = 0; j < 4; j++) {
            int iw = w0 + j;
            d[i][j] = ih >= 0 && ih < H && iw >= 0 && iw < W ? xp[ih * W + iw] : 0.0f;
        }
    }
    float b[4][4];
    for (int j = 0; j < 4; j++) {
        b[0][j] = d[0][j] - d[2][j];
        b[1][j] = d[1][j] + d[2][j];
        b[2][j] = d[2][j] - d[1][j];
        b[3][j] = d[1][j] - d[3][j];
    }
    int plane = C * T;
    global float *v = V + q;
    for (int i = 0; i < 4; i++) {
        v[(i * 4 + 0) * plane] = b[i][0] - b[i][2];
        v[(i * 4 + 1) * plane] = b[i][1] + b[i][2];
        v[(i * 4 + 2) * plane] = b[i][2] - b[i][1];
        v[(i * 4 + 3) * plane] = b[i][1] - b[i][3];
    }
}

/* U (from u_off) of a conv with CO outputs and CI inputs, one work item per (o, i), q = o*CI + i. flip = 0: the filter is
 * W[o, i, 3, 3]; flip = 1: the transposed, rotated filter of the input gradient, W[i, o, 2 - r, 2 - s] (W is
 * then the forward weight [CI, CO, 3, 3]). */
/* G g G^T of one 3x3 filter (o, i) into u[0], u[plane], ..., u[15 plane]; flip as in wino_filter. */
void wino_filter_one(global const float *restrict Wt, int o, int i, int CO, int CI, int flip, global float *u, int plane)
{
    float g[3][3];
    if (flip) {
        global const float *w = Wt + (i * CO + o) * 9;
        for (int r = 0; r < 3; r++)
            for (int s = 0; s < 3; s++) g[r][s] = w[(2 - r) * 3 + (2 - s)];
    } else {
        global const float *w = Wt + (o * CI + i) * 9;
        for (int r = 0; r < 3; r++)
            for (int s = 0; s < 3; s++) g[r][s] = w[r * 3 + s];
    }
    float a[4][3];
    for (int s = 0; s < 3; s++) {
        a[0][s] = g[0][s];
        a[1][s] = 0.5f * (g[0][s] + g[1][s] + g[2][s]);
        a[2][s] = 0.5f * (g[0][s] - g[1][s] + g[2][s]);
        a[3][s] = g[2][s];
    }
    for (int r = 0; r < 4; r++) {
        u[(r * 4 + 0) * plane] = a[r][0];
        u[(r * 4 + 1) * plane] = 0.5f * (a[r][0] + a[r][1] + a[r][2]);
        u[(r * 4 + 2) * plane] = 0.5f * (a[r][0] - a[r][1] + a[r][2]);
        u[(r * 4 + 3) * plane] = a[r][2];
    }
}

kernel void wino_filter(global const float *restrict Wt, global float *restrict U, int u_off, int CO, int CI, int flip)
{
    int q = (int)get_global_id(0);
    if (q >= CO * CI) return;
    int o = q / CI, i = q - o * CI;
    wino_filter_one(Wt, o, i, CO, CI, flip, U + u_off + q, CO * CI);
}

/* y[n0+nl, k, 2th + i, 2tw + j] (+)= (A^T M A)[i][j] (+ b[k]) inside OH x OW; one work item per (k, t),
 * q = k*T + t. accumulate adds to y (the input gradient's accumulate). */
kernel void wino_output(global const float *restrict M, global float *restrict y, int y_off,
                        global const float *restrict b, int has_b, int accumulate, int nb, int K, int OH, int OW,
                        int TH, int TW)
{
    int tpi = TH * TW, T = nb * tpi;
    int q = (int)get_global_id(0);
    if (q >= K * T) return;
    int4 it = wino_tile_item(q, nb, TH, TW);
    int k = it.x, nl = it.y, th = it.z, tw = it.w;
    int plane = K * T;
    float m[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) m[i][j] = M[(i * 4 + j) * plane + q];
    float a[2][4];
    for (int j = 0; j < 4; j++) {
        a[0][j] = m[0][j] + m[1][j] + m[2][j];
        a[1][j] = m[1][j] - m[2][j] - m[3][j];
    }
    float bias = has_b ? b[k] : 0.0f;
    global float *yp = y + y_off + (nl * K + k) * OH * OW;
    for (int i = 0; i < 2; i++) {
        int oh = 2 * th + i;
        if (oh >= OH) break;
        float v0 = a[i][0] + a[i][1] + a[i][2] + bias;
        float v1 = a[i][1] - a[i][2] - a[i][3] + bias;
        int ow = 2 * tw;
        store_acc(yp + oh * OW + ow, accumulate, v0);
        if (ow + 1 < OW) store_acc(yp + oh * OW + ow + 1, accumulate, v1);
    }
}

/* CPU variants of wino_input / wino_output: one work item per row of tiles (c or k, nl, th), a loop over tw
 * without integer division; the same values in the same places (each output is written once, the same
 * arithmetic). The host takes them when an item's TW tiles (about 64 loop iterations each) fit the item budget,
 * else the per-tile kernels ("Bounded work per work item"). */
kernel void wino_input_rows(global const float *restrict x, int x_off, global float *restrict V, int nb, int C,
                            int H, int W, int PT, int PL, int TH, int TW)
{
    int q = (int)get_global_id(0);
    if (q >= C * nb * TH) return;
    int4 it = wino_row_item(q, nb, TH);
    int c = it.x, nl = it.y, th = it.z;
    int T = nb * TH * TW, plane = C * T;
    global const float *xp = x + x_off + (nl * C + c) * H * W;
    global float *v = V + c * T + (nl * TH + th) * TW;
    int h0 = 2 * th - PT;
    int ok[4], all = 1;
    for (int i = 0; i < 4; i++) all &= ok[i] = h0 + i >= 0 && h0 + i < H;
    /* tiles [lo, hi) read columns inside the image (2tw - PL >= 0, 2tw - PL + 3 < W): no tests there */
    int lo = min((PL + 1) / 2, TW), hi = clamp((W - 4 + PL) / 2 + 1, lo, TW);
    if (W - 4 + PL < 0) hi = lo;
    for (int tw = 0; tw < TW; tw++) {
        int w0 = 2 * tw - PL;
        float d[4][4];
        if (all && tw >= lo && tw < hi) {
            global const float *xr = xp + h0 * W + w0;
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) d[i][j] = xr[i * W + j];
        } else {
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) {
                    int iw = w0 + j;
                    d[i][j] = ok[i] && iw >= 0 && iw < W ? xp[(h0 + i) * W + iw] : 0.0f;
                }
        }
        float b[4][4];
        for (int j = 0; j < 4; j++) {
            b[0][j] = d[0][j] - d[2][j];
            b[1][j] = d[1][j] + d[2][j];
            b[2][j] = d[2][j] - d[1][j];
            b[3][j] = d[1][j] - d[3][j];
        }
        for (int i = 0; i < 4; i++) {
            v[(i * 4 + 0) * plane + tw] = b[i][0] - b[i][2];
            v[(i * 4 + 1) * plane + tw] = b[i][1] + b[i][2];
            v[(i * 4 + 2) * plane + tw] = b[i][2] - b[i][1];
            v[(i * 4 + 3) * plane + tw] = b[i][1] - b[i][3];
        }
    }
}

kernel void wino_output_rows(global const float *restrict M, global float *restrict y, int y_off,
                             global const float *restrict b, int has_b, int accumulate, int nb, int K, int OH,
                             int OW, int TH, int TW)
{
    int q = (int)get_global_id(0);
    if (q >= K * nb * TH) return;
    int4 it = wino_row_item(q, nb, TH);
    int k = it.x, nl = it.y, th = it.z;
    int T = nb * TH * TW, plane = K * T;
    global const float *mp = M + k * T + (nl * TH + th) * TW;
    float bias = has_b ? b[k] : 0.0f;
    global float *yp = y + y_off + (nl * K + k) * OH * OW;
    int rows = min(2, OH - 2 * th);
    for (int tw = 0; tw < TW; tw++) {
        float m[4][4];
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) m[i][j] = mp[(i * 4 + j) * plane + tw];
        float a[2][4];
        for (int j = 0; j < 4; j++) {
            a[0][j] = m[0][j] + m[1][j] + m[2][j];
            a[1][j] = m[1][j] - m[2][j] - m[3][j];
        }
        int ow = 2 * tw;
        for (int i = 0; i < rows; i++) {
            global float *yr = yp + (2 * th + i) * OW + ow;
            store_acc(yr, accumulate, a[i][0] + a[i][1] + a[i][2] + bias);
            if (ow + 1 < OW) store_acc(yr + 1, accumulate, a[i][1] - a[i][2] - a[i][3] + bias);
        }
    }
}

/* CPU variant of wino_filter: one work item per (o, block of `blk` inputs i), a division-free loop. */
kernel void wino_filter_rows(global const float *restrict Wt, global float *restrict U, int u_off, int CO, int CI,
                             int flip, int blk)
{
    int nblk = (CI + blk - 1) / blk, q = (int)get_global_id(0);
    if (q >= CO * nblk) return;
    int o = q / nblk, i0 = (q - o * nblk) * blk, i1 = min(CI, i0 + blk);
    global float *u = U + u_off + o * CI;
    for (int i = i0; i < i1; i++) wino_filter_one(Wt, o, i, CO, CI, flip, u + i, CO * CI);
}

/* ---- Winograd F(4x4, 3x3): the layout above with 4x4 output tiles, TH = ceil(OH/4) by TW = ceil(OW/4) per
 * image; tile (th, tw) reads the 6x6 input patch at rows 4*th - PT + 0..5, columns 4*tw - PL + 0..5, and V, U
 * and M have 36 planes. Fewer products than F(2x2, 3x3) (36 per 16 outputs against 16 per 4; the direct conv
 * has 9 per output) for larger transforms and rounding errors a few times larger (entries up to 8 and 1/24):
 *   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1],
 *   G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1],
 *   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]   (the points 0, 1, -1, 2, -2 and infinity).
 * The one-dimensional transforms are applied to the columns, then to the rows of a tile. They are macros, not
 * functions: PoCL left such helpers as calls with the tiles in memory (2-3x slower); inline, the compiler keeps
 * a tile in registers and vectorises across work items. ---- */

/* The one-dimensional transforms on six (three, four) values of any float type: scalars in the tile kernels,
 * float8 / float4 rows of a tile in the row kernels below. */
/* (r0, ..., r5) = B^T (d0, ..., d5) */
#define WINO4_BT6(d0, d1, d2, d3, d4, d5, r0, r1, r2, r3, r4, r5) do { \
        r0 = 4.0f * (d0 - d2) + (d4 - d2); \
        r1 = (d3 + d4) - 4.0f * (d1 + d2); \
        r2 = 4.0f * (d1 - d2) + (d4 - d3); \
        r3 = 2.0f * (d3 - d1) + (d4 - d2); \
        r4 = 2.0f * (d1 - d3) + (d4 - d2); \
        r5 = 4.0f * (d1 - d3) + (d5 - d3); \
    } while (0)

/* (r0, ..., r3) = A^T (m0, ..., m5); T: their type */
#define WINO4_AT6(T, m0, m1, m2, m3, m4, m5, r0, r1, r2, r3) do { \
        T s12_ = m1 + m2, d12_ = m1 - m2, s34_ = m3 + m4, d34_ = m3 - m4; \
        r0 = m0 + s12_ + s34_; \
        r1 = d12_ + 2.0f * d34_; \
        r2 = s12_ + 4.0f * s34_; \
        r3 = d12_ + 8.0f * d34_ + m5; \
    } while (0)

/* (r0, ..., r5) = G (g0, g1, g2) (products by the rounded constants, not divisions: the same bits on every
 * device) */
#define WINO4_G3(T, g0, g1, g2, r0, r1, r2, r3, r4, r5) do { \
        T g02_ = g0 + g2, g04_ = g0 + 4.0f * g2; \
        r0 = 0.25f * g0; \
        r1 = -(1.0f / 6.0f) * (g02_ + g1); \
        r2 = -(1.0f / 6.0f) * (g02_ - g1); \
        r3 = (1.0f / 24.0f) * (g04_ + 2.0f * g1); \
        r4 = (1.0f / 24.0f) * (g04_ - 2.0f * g1); \
        r5 = g2; \
    } while (0)

/* r[0], r[rs], ..., r[5 rs] = B^T (d[0], d[s], ..., d[5 s]) */
#define WINO4_BT(d, s, r, rs) do { \
        float d0_ = (d)[0], d1_ = (d)[s], d2_ = (d)[2 * (s)], d3_ = (d)[3 * (s)], d4_ = (d)[4 * (s)]; \
        float d5_ = (d)[5 * (s)]; \
        WINO4_BT6(d0_, d1_, d2_, d3_, d4_, d5_, (r)[0], (r)[rs], (r)[2 * (rs)], (r)[3 * (rs)], (r)[4 * (rs)], \
                  (r)[5 * (rs)]); \
    } while (0)

/* r[0], r[rs], ..., r[3 rs] = A^T (m[0], m[s], ..., m[5 s]) */
#define WINO4_AT(m, s, r, rs) \
    WINO4_AT6(float, (m)[0], (m)[s], (m)[2 * (s)], (m)[3 * (s)], (m)[4 * (s)], (m)[5 * (s)], (r)[0], (r)[rs], \
              (r)[2 * (rs)], (r)[3 * (rs)])

/* r[0], r[rs], ..., r[5 rs] = G (g[0], g[s], g[2 s]) */
#define WINO4_G(g, s, r, rs) do { \
        float g0_ = (g)[0], g1_ = (g)[s], g2_ = (g)[2 * (s)]; \
        WINO4_G3(float, g0_, g1_, g2_, (r)[0], (r)[rs], (r)[2 * (rs)], (r)[3 * (rs)], (r)[4 * (rs)], \
                 (r)[5 * (rs)]); \
    } while (0)

/* the 36 values B^T d B of the 6x6 patch d (float[36], row-major) into v[xi * plane], xi = 6i + j */
#define WINO4_INPUT_TILE(d, v, plane) do { \
        float b_[36], o_[36]; \
        for (int j_ = 0; j_ < 6; j_++) WINO4_BT(d + j_, 6, b_ + j_, 6); \
        for (int i_ = 0; i_ < 6; i_++) WINO4_BT(b_ + 6 * i_, 1, o_ + 6 * i_, 1); \
        for (int x_ = 0; x_ < 36; x_++) (v)[x_ * (plane)] = o_[x_]; \
    } while (0)

/* y[i * OW + j] (+)= (A^T m A)[i][j] + bias, i < rows, j < cols, of the 36 values mp[xi * plane] */
#define WINO4_OUTPUT_TILE(mp, plane, y, OW, rows, cols, accumulate, bias) do { \
        float m_[36], a_[24], o_[16]; \
        for (int x_ = 0; x_ < 36; x_++) m_[x_] = (mp)[x_ * (plane)]; \
        for (int j_ = 0; j_ < 6; j_++) WINO4_AT(m_ + j_, 6, a_ + j_, 6); \
        for (int i_ = 0; i_ < 4; i_++) WINO4_AT(a_ + 6 * i_, 1, o_ + 4 * i_, 1); \
        for (int i_ = 0; i_ < (rows); i_++) \
            for (int j_ = 0; j_ < (cols); j_++) store_acc((y) + i_ * (OW) + j_, accumulate, o_[4 * i_ + j_] + (bias)); \
    } while (0)

/* G g G^T of the 3x3 filter (o, i) of Wt into u[0], u[plane], ..., u[35 plane]; flip as in wino_filter */
#define WINO4_FILTER(Wt, o, i, CO, CI, flip, u, plane) do { \
        float g_[9], a_[18], r_[36]; \
        global const float *w_ = (flip) ? (Wt) + ((i) * (CO) + (o)) * 9 : (Wt) + ((o) * (CI) + (i)) * 9; \
        for (int k_ = 0; k_ < 9; k_++) g_[k_] = w_[(flip) ? 8 - k_ : k_]; \
        for (int s_ = 0; s_ < 3; s_++) WINO4_G(g_ + s_, 3, a_ + s_, 3); \
        for (int k_ = 0; k_ < 6; k_++) WINO4_G(a_ + 3 * k_, 1, r_ + 6 * k_, 1); \
        for (int x_ = 0; x_ < 36; x_++) (u)[x_ * (plane)] = r_[x_]; \
    } while (0)

/* V for images n0.. of x, one work item per (c, t), q = c*T + t (as wino_input) */
kernel void wino4_input(global const float *restrict x, int x_off, global float *restrict V, int nb, int C, int H,
                        int W, int PT, int PL, int TH, int TW)
{
    int tpi = TH * TW, T = nb * tpi;
    int q = (int)get_global_id(0);
    if (q >= C * T) return;
    int4 it = wino_tile_item(q, nb, TH, TW);
    int c = it.x, nl = it.y, th = it.z, tw = it.w;
    int h0 = 4 * th - PT, w0 = 4 * tw - PL;
    global const float *xp = x + x_off + (nl * C + c) * H * W;
    float d[36];
    for (int i = 0; i < 6; i++) {
        int ih = h0 + i;
        for (int j = 0; j < 6; j++) {
            int iw = w0 + j;
            d[6 * i + j] = ih >= 0 && ih < H && iw >= 0 && iw < W ? xp[ih * W + iw] : 0.0f;
        }
    }
    WINO4_INPUT_TILE(d, V + q, C * T);
}

kernel void wino4_filter(global const float *restrict Wt, global float *restrict U, int u_off, int CO, int CI, int flip)
{
    int q = (int)get_global_id(0);
    if (q >= CO * CI) return;
    int o = q / CI, i = q - o * CI;
    WINO4_FILTER(Wt, o, i, CO, CI, flip, U + u_off + q, CO * CI);
}

/* y tiles of images n0.. (+)= A^T M A (+ b[k]) inside OH x OW, one work item per (k, t), q = k*T + t */
kernel void wino4_output(global const float *restrict M, global float *restrict y, int y_off,
                         global const float *restrict b, int has_b, int accumulate, int nb, int K, int OH, int OW,
                         int TH, int TW)
{
    int tpi = TH * TW, T = nb * tpi;
    int q = (int)get_global_id(0);
    if (q >= K * T) return;
    int4 it = wino_tile_item(q, nb, TH, TW);
    int k = it.x, nl = it.y, th = it.z, tw = it.w;
    global float *yp = y + y_off + (nl * K + k) * OH * OW + 4 * th * OW + 4 * tw;
    float bias = has_b ? b[k] : 0.0f;
    WINO4_OUTPUT_TILE(M + q, K * T, yp, OW, min(4, OH - 4 * th), min(4, OW - 4 * tw), accumulate, bias);
}

/* CPU variants: one work item per row of tiles, as wino_input_rows / wino_output_rows / wino_filter_rows, in
 * vectors and no private arrays. With the array forms above PoCL kept a tile in stack memory inside the loop over
 * tiles and read it back as vectors right after scalar stores: that stall took 68 % of wino4_input_rows' time
 * (64 channels at 56x56). Input and output take four tiles side by side: the column pass on rows of 16 + 2 input
 * columns (float16, float2), the row pass on float4s of the four tiles' values, one vector store per plane
 * (input) or per output row (output; 64 channels at 56x56, batch 16: 27 -> 12 ms against the direct conv's
 * 28). The filter transform takes four filters side by side, a float4 lane each, one vector store per plane for
 * the four (512 x 512 filters: 2.3x faster than a filter's rows as float4, whose 36 scalar stores per filter took
 * 9 % of W1's steps once fine-tuning's moving weights ran F(4x4)); the output gradient one tile's rows as float4.
 * The same operations in the same order as the tile kernels: the same bits (test_ops). */

/* Four tiles side by side: their six rows as 18 columns (float16 r, float2 rr), one row of the column pass;
 * the row pass on the four tiles' lanes at once (columns 4t + j), into v[(6k + j) * plane + t], t < n */
#define WINO4_ST4(o, p, n) do { \
        if ((n) >= 4) vstore4(o, 0, p); \
        else { \
            (p)[0] = (o).s0; \
            if ((n) > 1) (p)[1] = (o).s1; \
            if ((n) > 2) (p)[2] = (o).s2; \
        } \
    } while (0)
#define WINO4_BT_ROW4(r, rr, k, v, plane, n) do { \
        float4 c0_ = (r).s048c, c1_ = (r).s159d, c2_ = (r).s26ae, c3_ = (r).s37bf; \
        float4 c4_ = (float4)((r).s48c, (rr).s0), c5_ = (float4)((r).s59d, (rr).s1); \
        float4 o0_, o1_, o2_, o3_, o4_, o5_; \
        WINO4_BT6(c0_, c1_, c2_, c3_, c4_, c5_, o0_, o1_, o2_, o3_, o4_, o5_); \
        WINO4_ST4(o0_, (v) + (6 * (k)) * (plane), n); \
        WINO4_ST4(o1_, (v) + (6 * (k) + 1) * (plane), n); \
        WINO4_ST4(o2_, (v) + (6 * (k) + 2) * (plane), n); \
        WINO4_ST4(o3_, (v) + (6 * (k) + 3) * (plane), n); \
        WINO4_ST4(o4_, (v) + (6 * (k) + 4) * (plane), n); \
        WINO4_ST4(o5_, (v) + (6 * (k) + 5) * (plane), n); \
    } while (0)
/* columns w0 .. w0 + 15 (d) and w0 + 16, w0 + 17 (e) of input row p, zero outside the image (ok: the row is
 * inside; p then points at a row of the plane all the same): every load inside the plane, the zeros by
 * select. Written as sixteen `inside ? p[w] : 0` on row pointers that could lie outside the plane, the same
 * columns came out wrong on Mesa's llvmpipe (test_ops winograd4: 170 failed checks; right on PoCL). The clamp's
 * bounds are vectors: oclgrind got clamp(int16, int, int) wrong (invalid reads, 101 failed checks). */
/* columns w0 + 16, w0 + 17 (e) the same way */
#define WINO4_EDGE_TAIL(p, ok, w0, W, e) do { \
        int2 u_ = (int2)((w0) + 16, (w0) + 17); \
        int2 cu_ = clamp(u_, (int2)(0), (int2)((W) - 1)); \
        e = select((float2)(0.0f), (float2)((p)[cu_.s0], (p)[cu_.s1]), \
                   (u_ >= 0) & (u_ < (W)) & (int2)((ok) ? -1 : 0)); \
    } while (0)
#define WINO4_EDGE_ROW(p, ok, w0, W, d, e) do { \
        int16 w_ = (int16)(w0) + (int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); \
        int16 c_ = clamp(w_, (int16)(0), (int16)((W) - 1)); \
        float16 v_ = (float16)((p)[c_.s0], (p)[c_.s1], (p)[c_.s2], (p)[c_.s3], (p)[c_.s4], (p)[c_.s5], \
                               (p)[c_.s6], (p)[c_.s7], (p)[c_.s8], (p)[c_.s9], (p)[c_.sa], (p)[c_.sb], \
                               (p)[c_.sc], (p)[c_.sd], (p)[c_.se], (p)[c_.sf]); \
        d = select((float16)(0.0f), v_, (w_ >= 0) & (w_ < (W)) & (int16)((ok) ? -1 : 0)); \
        WINO4_EDGE_TAIL(p, ok, w0, W, e); \
    } while (0)

/* Columns w0 .. w0 + 15 of a row inside the image, zero outside [0, W), when W >= 16 and the 16 columns cross at
 * most one edge of the row (wino4_row16_fits): one vload16 of the row's first or last 16 columns moved by whole
 * lanes, the shift in at most four constant moves picked by its bits. The values the gather of WINO4_EDGE_ROW
 * reads, without its 16 scalar loads: the first and last groups of tiles of every row take this path (with
 * 28 x 28 maps and pads 1, every group). */
int wino4_row16_fits(int w0, int W)
{
    return W >= 16 && w0 >= -15 && w0 < W && (w0 >= 0 || w0 + 16 <= W);
}
float16 wino4_row16(global const float *p, int w0, int W)
{
    if (w0 >= 0 && w0 + 16 <= W) return vload16(0, p + w0);
    float16 a;
    if (w0 >= 0) {   /* past the right edge: the last 16 columns, moved down s lanes */
        a = vload16(0, p + W - 16);
        int s = w0 + 16 - W;
        if (s & 8) a = (float16)(a.s89abcdef, (float8)(0.0f));
        if (s & 4) a = (float16)(a.s4567, a.s89ab, a.scdef, (float4)(0.0f));
        if (s & 2) a = (float16)(a.s2345, a.s6789, a.sabcd, a.sef, (float2)(0.0f));
        if (s & 1) a = (float16)(a.s1234, a.s5678, a.s9abc, a.sdef, 0.0f);
    } else {         /* before the left edge: the first 16 columns, moved up -w0 lanes */
        a = vload16(0, p);
        int s = -w0;
        if (s & 8) a = (float16)((float8)(0.0f), a.s01234567);
        if (s & 4) a = (float16)((float4)(0.0f), a.s0123, a.s4567, a.s89ab);
        if (s & 2) a = (float16)((float2)(0.0f), a.s0123, a.s4567, a.s89ab, a.scd);
        if (s & 1) a = (float16)(0.0f, a.s0123, a.s4567, a.s89ab, a.scde);
    }
    return a;
}
/* one of the six rows of a group whose columns are not all inside: as WINO4_EDGE_ROW, the 16 first columns by
 * wino4_row16 where they fit */
#define WINO4_ROW18(p, ok, w0, W, d, e) do { \
        if (!(ok)) { \
            d = (float16)(0.0f); \
            e = (float2)(0.0f); \
        } else if (wino4_row16_fits(w0, W)) { \
            d = wino4_row16(p, w0, W); \
            WINO4_EDGE_TAIL(p, 1, w0, W, e); \
        } else { \
            WINO4_EDGE_ROW(p, ok, w0, W, d, e); \
        } \
    } while (0)

kernel void wino4_input_rows(global const float *restrict x, int x_off, global float *restrict V, int nb, int C,
                             int H, int W, int PT, int PL, int TH, int TW)
{
    int q = (int)get_global_id(0);
    if (q >= C * nb * TH) return;
    int4 it = wino_row_item(q, nb, TH);
    int c = it.x, nl = it.y, th = it.z;
    int T = nb * TH * TW, plane = C * T;
    global const float *xp = x + x_off + (nl * C + c) * H * W;
    global float *v = V + c * T + (nl * TH + th) * TW;
    int h0 = 4 * th - PT;
    int ok0 = h0 >= 0 && h0 < H, ok1 = h0 + 1 >= 0 && h0 + 1 < H, ok2 = h0 + 2 >= 0 && h0 + 2 < H;
    int ok3 = h0 + 3 >= 0 && h0 + 3 < H, ok4 = h0 + 4 >= 0 && h0 + 4 < H, ok5 = h0 + 5 >= 0 && h0 + 5 < H;
    int all = ok0 && ok1 && ok2 && ok3 && ok4 && ok5;
    /* the six rows (outside the image: row 0, read but zeroed) */
    global const float *x0 = xp + (ok0 ? h0 : 0) * W, *x1 = xp + (ok1 ? h0 + 1 : 0) * W;
    global const float *x2 = xp + (ok2 ? h0 + 2 : 0) * W, *x3 = xp + (ok3 ? h0 + 3 : 0) * W;
    global const float *x4 = xp + (ok4 ? h0 + 4 : 0) * W, *x5 = xp + (ok5 ? h0 + 5 : 0) * W;
    for (int tw = 0; tw < TW; tw += 4) {   /* tiles tw .. tw + n - 1: columns w0 .. w0 + 4n + 1 */
        int w0 = 4 * tw - PL, n = min(4, TW - tw);
        float16 d0, d1, d2, d3, d4, d5, r0, r1, r2, r3, r4, r5;
        float2 e0, e1, e2, e3, e4, e5, s0, s1, s2, s3, s4, s5;
        if (all && w0 >= 0 && w0 + 18 <= W) {
            d0 = vload16(0, x0 + w0); e0 = vload2(0, x0 + w0 + 16);
            d1 = vload16(0, x1 + w0); e1 = vload2(0, x1 + w0 + 16);
            d2 = vload16(0, x2 + w0); e2 = vload2(0, x2 + w0 + 16);
            d3 = vload16(0, x3 + w0); e3 = vload2(0, x3 + w0 + 16);
            d4 = vload16(0, x4 + w0); e4 = vload2(0, x4 + w0 + 16);
            d5 = vload16(0, x5 + w0); e5 = vload2(0, x5 + w0 + 16);
        } else {
            WINO4_ROW18(x0, ok0, w0, W, d0, e0);
            WINO4_ROW18(x1, ok1, w0, W, d1, e1);
            WINO4_ROW18(x2, ok2, w0, W, d2, e2);
            WINO4_ROW18(x3, ok3, w0, W, d3, e3);
            WINO4_ROW18(x4, ok4, w0, W, d4, e4);
            WINO4_ROW18(x5, ok5, w0, W, d5, e5);
        }
        WINO4_BT6(d0, d1, d2, d3, d4, d5, r0, r1, r2, r3, r4, r5);   /* the columns */
        WINO4_BT6(e0, e1, e2, e3, e4, e5, s0, s1, s2, s3, s4, s5);
        WINO4_BT_ROW4(r0, s0, 0, v + tw, plane, n);
        WINO4_BT_ROW4(r1, s1, 1, v + tw, plane, n);
        WINO4_BT_ROW4(r2, s2, 2, v + tw, plane, n);
        WINO4_BT_ROW4(r3, s3, 3, v + tw, plane, n);
        WINO4_BT_ROW4(r4, s4, 4, v + tw, plane, n);
        WINO4_BT_ROW4(r5, s5, 5, v + tw, plane, n);
    }
}

/* four tiles' values of plane xi (tiles past n: zero, not read) */
#define WINO4_LD4(p, n) ((n) >= 4 ? vload4(0, p) : \
    (float4)((p)[0], (n) > 1 ? (p)[1] : 0.0f, (n) > 2 ? (p)[2] : 0.0f, 0.0f))
/* column j of four tiles: the column pass (A^T over the six rows k of planes 6k + j) into a0..a3 */
#define WINO4_AT_COL(mp, plane, n, j, a0, a1, a2, a3) do { \
        float4 m0_ = WINO4_LD4((mp) + (j) * (plane), n), m1_ = WINO4_LD4((mp) + (6 + (j)) * (plane), n); \
        float4 m2_ = WINO4_LD4((mp) + (12 + (j)) * (plane), n), m3_ = WINO4_LD4((mp) + (18 + (j)) * (plane), n); \
        float4 m4_ = WINO4_LD4((mp) + (24 + (j)) * (plane), n), m5_ = WINO4_LD4((mp) + (30 + (j)) * (plane), n); \
        WINO4_AT6(float4, m0_, m1_, m2_, m3_, m4_, m5_, a0, a1, a2, a3); \
    } while (0)
#define WINO4_ST1(yr, cols, c, accumulate, v) do { if ((c) < (cols)) store_acc((yr) + (c), accumulate, v); } while (0)
/* the fused epilogue of an output row (cnp_to_ncp_rows' conv_post): (+ the old value), + the residual row rr, the
 * activation; the first `cols` of the 16 columns */
#define WINO4_POST1(yr, cols, c, accumulate, rr, has_r, post, v) do { \
        if ((c) < (cols)) { \
            float s_ = (accumulate) ? (yr)[c] + (v) : (v); \
            if (has_r) s_ += (rr)[c]; \
            (yr)[c] = conv_post(s_, post); \
        } \
    } while (0)
#define WINO4_POST_ROW(y_, yr, cols, accumulate, rr, has_r, post) do { \
        if ((cols) >= 16) { \
            float16 s_ = (accumulate) ? vload16(0, yr) + (y_) : (y_); \
            if (has_r) s_ += vload16(0, rr); \
            vstore16(conv_post16(s_, post), 0, yr); \
        } else { \
            WINO4_POST1(yr, cols, 0, accumulate, rr, has_r, post, (y_).s0); \
            WINO4_POST1(yr, cols, 1, accumulate, rr, has_r, post, (y_).s1); \
            WINO4_POST1(yr, cols, 2, accumulate, rr, has_r, post, (y_).s2); \
            WINO4_POST1(yr, cols, 3, accumulate, rr, has_r, post, (y_).s3); \
            WINO4_POST1(yr, cols, 4, accumulate, rr, has_r, post, (y_).s4); \
            WINO4_POST1(yr, cols, 5, accumulate, rr, has_r, post, (y_).s5); \
            WINO4_POST1(yr, cols, 6, accumulate, rr, has_r, post, (y_).s6); \
            WINO4_POST1(yr, cols, 7, accumulate, rr, has_r, post, (y_).s7); \
            WINO4_POST1(yr, cols, 8, accumulate, rr, has_r, post, (y_).s8); \
            WINO4_POST1(yr, cols, 9, accumulate, rr, has_r, post, (y_).s9); \
            WINO4_POST1(yr, cols, 10, accumulate, rr, has_r, post, (y_).sa); \
            WINO4_POST1(yr, cols, 11, accumulate, rr, has_r, post, (y_).sb); \
            WINO4_POST1(yr, cols, 12, accumulate, rr, has_r, post, (y_).sc); \
            WINO4_POST1(yr, cols, 13, accumulate, rr, has_r, post, (y_).sd); \
            WINO4_POST1(yr, cols, 14, accumulate, rr, has_r, post, (y_).se); \
        } \
    } while (0)
/* output row i of four tiles: the row pass on the tiles' lanes (a_0 .. a_5: columns 0..5), + bias, the first
 * `cols` of its 16 columns into yr (+)= */
#define WINO4_OUT_ROW4(a_0, a_1, a_2, a_3, a_4, a_5, yr, cols, accumulate, bias, rr, has_r, post) do { \
        float4 o0_, o1_, o2_, o3_; \
        WINO4_AT6(float4, a_0, a_1, a_2, a_3, a_4, a_5, o0_, o1_, o2_, o3_); \
        float16 y_ = (float16)(o0_.s0, o1_.s0, o2_.s0, o3_.s0, o0_.s1, o1_.s1, o2_.s1, o3_.s1, \
                               o0_.s2, o1_.s2, o2_.s2, o3_.s2, o0_.s3, o1_.s3, o2_.s3, o3_.s3) + (bias); \
        if ((has_r) || (post)) { \
            WINO4_POST_ROW(y_, yr, cols, accumulate, rr, has_r, post); \
        } else if ((cols) >= 16) { \
            vstore16((accumulate) ? vload16(0, yr) + y_ : y_, 0, yr); \
        } else { \
            WINO4_ST1(yr, cols, 0, accumulate, y_.s0); WINO4_ST1(yr, cols, 1, accumulate, y_.s1); \
            WINO4_ST1(yr, cols, 2, accumulate, y_.s2); WINO4_ST1(yr, cols, 3, accumulate, y_.s3); \
            WINO4_ST1(yr, cols, 4, accumulate, y_.s4); WINO4_ST1(yr, cols, 5, accumulate, y_.s5); \
            WINO4_ST1(yr, cols, 6, accumulate, y_.s6); WINO4_ST1(yr, cols, 7, accumulate, y_.s7); \
            WINO4_ST1(yr, cols, 8, accumulate, y_.s8); WINO4_ST1(yr, cols, 9, accumulate, y_.s9); \
            WINO4_ST1(yr, cols, 10, accumulate, y_.sa); WINO4_ST1(yr, cols, 11, accumulate, y_.sb); \
            WINO4_ST1(yr, cols, 12, accumulate, y_.sc); WINO4_ST1(yr, cols, 13, accumulate, y_.sd); \
            WINO4_ST1(yr, cols, 14, accumulate, y_.se); \
        } \
    } while (0)

kernel void wino4_output_rows(global const float *restrict M, global float *restrict y, int y_off,
                              global const float *restrict b, int has_b, int accumulate, int nb, int K, int OH,
                              int OW, int TH, int TW, global const float *restrict r, int has_r, int post)
{
    int q = (int)get_global_id(0);
    if (q >= K * nb * TH) return;
    int4 it = wino_row_item(q, nb, TH);
    int k = it.x, nl = it.y, th = it.z;
    int T = nb * TH * TW, plane = K * T;
    global const float *mp = M + k * T + (nl * TH + th) * TW;
    global float *yp = y + y_off + (nl * K + k) * OH * OW + 4 * th * OW;
    global const float *rp = r + y_off + (nl * K + k) * OH * OW + 4 * th * OW;   /* r: laid out as y */
    float bias = has_b ? b[k] : 0.0f;
    int rows = min(4, OH - 4 * th);
    for (int tw = 0; tw < TW; tw += 4) {   /* tiles tw .. tw + n - 1: output columns 4tw .. 4tw + cols - 1 */
        int n = min(4, TW - tw), cols = min(16, OW - 4 * tw);
        float4 a00, a01, a02, a03, a04, a05, a10, a11, a12, a13, a14, a15;
        float4 a20, a21, a22, a23, a24, a25, a30, a31, a32, a33, a34, a35;
        WINO4_AT_COL(mp + tw, plane, n, 0, a00, a10, a20, a30);
        WINO4_AT_COL(mp + tw, plane, n, 1, a01, a11, a21, a31);
        WINO4_AT_COL(mp + tw, plane, n, 2, a02, a12, a22, a32);
        WINO4_AT_COL(mp + tw, plane, n, 3, a03, a13, a23, a33);
        WINO4_AT_COL(mp + tw, plane, n, 4, a04, a14, a24, a34);
        WINO4_AT_COL(mp + tw, plane, n, 5, a05, a15, a25, a35);
        global float *yr = yp + 4 * tw;
        global const float *rr = rp + 4 * tw;
        WINO4_OUT_ROW4(a00, a01, a02, a03, a04, a05, yr, cols, accumulate, bias, rr, has_r, post);
        if (rows > 1)
            WINO4_OUT_ROW4(a10, a11, a12, a13, a14, a15, yr + OW, cols, accumulate, bias, rr + OW, has_r, post);
        if (rows > 2)
            WINO4_OUT_ROW4(a20, a21, a22, a23, a24, a25, yr + 2 * OW, cols, accumulate, bias, rr + 2 * OW, has_r, post);
        if (rows > 3)
            WINO4_OUT_ROW4(a30, a31, a32, a33, a34, a35, yr + 3 * OW, cols, accumulate, bias, rr + 3 * OW, has_r, post);
    }
}

/* row k of a filter's transform, G of the three lanes of a, into u[(6k + j) * plane] */
/* six values into row k of 36 planes: v[(6k + j) * plane] = o_j */
#define WINO4_STORE6(v, k, plane, o0, o1, o2, o3, o4, o5) do { \
        (v)[(6 * (k)) * (plane)] = o0; \
        (v)[(6 * (k) + 1) * (plane)] = o1; \
        (v)[(6 * (k) + 2) * (plane)] = o2; \
        (v)[(6 * (k) + 3) * (plane)] = o3; \
        (v)[(6 * (k) + 4) * (plane)] = o4; \
        (v)[(6 * (k) + 5) * (plane)] = o5; \
    } while (0)
#define WINO4_G_ROW(a, k, u, plane) do { \
        float o0_, o1_, o2_, o3_, o4_, o5_; \
        WINO4_G3(float, (a).s0, (a).s1, (a).s2, o0_, o1_, o2_, o3_, o4_, o5_); \
        WINO4_STORE6(u, k, plane, o0_, o1_, o2_, o3_, o4_, o5_); \
    } while (0)

kernel void wino4_filter_rows(global const float *restrict Wt, global float *restrict U, int u_off, int CO, int CI,
                              int flip, int blk)
{
    int nblk = (CI + blk - 1) / blk, q = (int)get_global_id(0);
    if (q >= CO * nblk) return;
    int o = q / nblk, i0 = (q - o * nblk) * blk, i1 = min(CI, i0 + blk);
    global float *u = U + u_off + o * CI;
    int i = i0;
    /* four filters (i .. i + 3) side by side, a lane each: one vector store per plane for the four */
    int fs = flip ? CO * 9 : 9;   /* from one filter to the next (flip: the rotated filter of (i, o)) */
    for (; i + 4 <= i1; i += 4) {
        global const float *w = flip ? Wt + (i * CO + o) * 9 : Wt + (o * CI + i) * 9;
#define WINO4_TAP4(k) (flip ? (float4)(w[8 - (k)], w[fs + 8 - (k)], w[2 * fs + 8 - (k)], w[3 * fs + 8 - (k)]) \
                            : (float4)(w[k], w[fs + (k)], w[2 * fs + (k)], w[3 * fs + (k)]))
        float4 a[6][3];
        for (int s = 0; s < 3; s++)   /* the columns */
            WINO4_G3(float4, WINO4_TAP4(s), WINO4_TAP4(3 + s), WINO4_TAP4(6 + s), a[0][s], a[1][s], a[2][s],
                     a[3][s], a[4][s], a[5][s]);
#undef WINO4_TAP4
        for (int k = 0; k < 6; k++) {   /* the rows */
            float4 r0, r1, r2, r3, r4, r5;
            WINO4_G3(float4, a[k][0], a[k][1], a[k][2], r0, r1, r2, r3, r4, r5);
            vstore4(r0, 0, u + (6 * k) * CO * CI + i);
            vstore4(r1, 0, u + (6 * k + 1) * CO * CI + i);
            vstore4(r2, 0, u + (6 * k + 2) * CO * CI + i);
            vstore4(r3, 0, u + (6 * k + 3) * CO * CI + i);
            vstore4(r4, 0, u + (6 * k + 4) * CO * CI + i);
            vstore4(r5, 0, u + (6 * k + 5) * CO * CI + i);
        }
    }
    for (; i < i1; i++) {
        /* the filter's rows (flip: the rotated filter of (i, o), as wino_filter) */
        global const float *w = flip ? Wt + (i * CO + o) * 9 : Wt + (o * CI + i) * 9;
        float4 g0 = flip ? (float4)(w[8], w[7], w[6], 0.0f) : (float4)(w[0], w[1], w[2], 0.0f);
        float4 g1 = flip ? (float4)(w[5], w[4], w[3], 0.0f) : (float4)(w[3], w[4], w[5], 0.0f);
        float4 g2 = flip ? (float4)(w[2], w[1], w[0], 0.0f) : (float4)(w[6], w[7], w[8], 0.0f);
        float4 a0, a1, a2, a3, a4, a5;
        WINO4_G3(float4, g0, g1, g2, a0, a1, a2, a3, a4, a5);   /* the columns */
        WINO4_G_ROW(a0, 0, u + i, CO * CI);
        WINO4_G_ROW(a1, 1, u + i, CO * CI);
        WINO4_G_ROW(a2, 2, u + i, CO * CI);
        WINO4_G_ROW(a3, 3, u + i, CO * CI);
        WINO4_G_ROW(a4, 4, u + i, CO * CI);
        WINO4_G_ROW(a5, 5, u + i, CO * CI);
    }
}

/* ---- The weight gradient by F(4x4, 3x3): with V = B^T d B of the input tiles (wino4_input*) and
 * dM = A dY A^T of the output gradient's 4x4 tiles (zero past OH, OW: wino4_grad_output*), the GEMMs
 * dU[xi] = sum over tiles dM[xi] V[xi]^T (the host), then gW = G^T dU G (wino4_filter_grad): the adjoint of
 * the forward's y = A^T (U V) A, U = G g G^T. ---- */

/* (r0, ..., r5) = A (v0, ..., v3) (A = the transpose of A^T above); T: their type */
#define WINO4_A4(T, v0, v1, v2, v3, r0, r1, r2, r3, r4, r5) do { \
        T s02_ = v0 + v2, s13_ = v1 + v3, t02_ = v0 + 4.0f * v2, t13_ = 2.0f * v1 + 8.0f * v3; \
        r0 = v0; \
        r1 = s02_ + s13_; \
        r2 = s02_ - s13_; \
        r3 = t02_ + t13_; \
        r4 = t02_ - t13_; \
        r5 = v3; \
    } while (0)

/* r[0], r[rs], ..., r[5 rs] = A (v[0], v[s], v[2 s], v[3 s]) */
#define WINO4_A(v, s, r, rs) do { \
        float v0_ = (v)[0], v1_ = (v)[s], v2_ = (v)[2 * (s)], v3_ = (v)[3 * (s)]; \
        WINO4_A4(float, v0_, v1_, v2_, v3_, (r)[0], (r)[rs], (r)[2 * (rs)], (r)[3 * (rs)], (r)[4 * (rs)], \
                 (r)[5 * (rs)]); \
    } while (0)

/* r[0], r[rs], r[2 rs] = G^T (v[0], v[s], ..., v[5 s]) */
#define WINO4_GT(v, s, r, rs) do { \
        float v0_ = (v)[0], v5_ = (v)[5 * (s)], p12_ = (v)[s] + (v)[2 * (s)], m21_ = (v)[2 * (s)] - (v)[s]; \
        float p34_ = (v)[3 * (s)] + (v)[4 * (s)], m34_ = (v)[3 * (s)] - (v)[4 * (s)]; \
        (r)[0] = 0.25f * v0_ - (1.0f / 6.0f) * p12_ + (1.0f / 24.0f) * p34_; \
        (r)[rs] = (1.0f / 6.0f) * m21_ + (1.0f / 12.0f) * m34_; \
        (r)[2 * (rs)] = (1.0f / 6.0f) * (p34_ - p12_) + v5_; \
    } while (0)

/* the 36 values A e A^T of the 4x4 tile e (float[16], row-major) into v[xi * plane] */
#define WINO4_GRAD_TILE(e, v, plane) do { \
        float c_[24], o_[36]; \
        for (int j_ = 0; j_ < 4; j_++) WINO4_A(e + j_, 4, c_ + j_, 4); \
        for (int p_ = 0; p_ < 6; p_++) WINO4_A(c_ + 4 * p_, 1, o_ + 6 * p_, 1); \
        for (int x_ = 0; x_ < 36; x_++) (v)[x_ * (plane)] = o_[x_]; \
    } while (0)

/* dM of images n0.. of the output gradient g (g_off = n0*K*OH*OW), one work item per (k, t), q = k*T + t */
kernel void wino4_grad_output(global const float *restrict g, int g_off, global float *restrict dM, int nb, int K,
                              int OH, int OW, int TH, int TW)
{
    int tpi = TH * TW, T = nb * tpi;
    int q = (int)get_global_id(0);
    if (q >= K * T) return;
    int4 it = wino_tile_item(q, nb, TH, TW);
    int k = it.x, nl = it.y, th = it.z, tw = it.w;
    global const float *gp = g + g_off + (nl * K + k) * OH * OW;
    float e[16];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            int oh = 4 * th + i, ow = 4 * tw + j;
            e[4 * i + j] = oh < OH && ow < OW ? gp[oh * OW + ow] : 0.0f;
        }
    WINO4_GRAD_TILE(e, dM + q, K * T);
}

/* CPU variant: one work item per row of tiles (k, nl, th); a tile's rows as float4, as wino4_input_rows */
#define WINO4_A_ROW(c, p, v, plane) do { \
        float o0_, o1_, o2_, o3_, o4_, o5_; \
        WINO4_A4(float, (c).s0, (c).s1, (c).s2, (c).s3, o0_, o1_, o2_, o3_, o4_, o5_); \
        WINO4_STORE6(v, p, plane, o0_, o1_, o2_, o3_, o4_, o5_); \
    } while (0)
#define WINO4_G_IN(p, ok, j, cols) ((ok) && (j) < (cols) ? (p)[j] : 0.0f)
#define WINO4_GROW_EDGE(p, ok, cols) (float4)(WINO4_G_IN(p, ok, 0, cols), WINO4_G_IN(p, ok, 1, cols), \
    WINO4_G_IN(p, ok, 2, cols), WINO4_G_IN(p, ok, 3, cols))

kernel void wino4_grad_output_rows(global const float *restrict g, int g_off, global float *restrict dM, int nb,
                                   int K, int OH, int OW, int TH, int TW)
{
    int q = (int)get_global_id(0);
    if (q >= K * nb * TH) return;
    int4 it = wino_row_item(q, nb, TH);
    int k = it.x, nl = it.y, th = it.z;
    int T = nb * TH * TW, plane = K * T;
    global const float *gp = g + g_off + (nl * K + k) * OH * OW + 4 * th * OW;
    global float *v = dM + k * T + (nl * TH + th) * TW;
    int rows = min(4, OH - 4 * th), full = OW / 4;   /* tiles [0, full) have four columns */
    for (int tw = 0; tw < TW; tw++) {
        global const float *gr = gp + 4 * tw;
        float4 e0, e1, e2, e3, c0, c1, c2, c3, c4, c5;
        if (rows == 4 && tw < full) {
            e0 = vload4(0, gr);
            e1 = vload4(0, gr + OW);
            e2 = vload4(0, gr + 2 * OW);
            e3 = vload4(0, gr + 3 * OW);
        } else {   /* zero past OH, OW; rows past OH are not addressed */
            int cols = OW - 4 * tw;
            e0 = WINO4_GROW_EDGE(gr, 1, cols);
            e1 = WINO4_GROW_EDGE(gr + OW, rows > 1, cols);
            e2 = WINO4_GROW_EDGE(gr + 2 * OW, rows > 2, cols);
            e3 = WINO4_GROW_EDGE(gr + 3 * OW, rows > 3, cols);
        }
        WINO4_A4(float4, e0, e1, e2, e3, c0, c1, c2, c3, c4, c5);   /* the columns */
        WINO4_A_ROW(c0, 0, v + tw, plane);
        WINO4_A_ROW(c1, 1, v + tw, plane);
        WINO4_A_ROW(c2, 2, v + tw, plane);
        WINO4_A_ROW(c3, 3, v + tw, plane);
        WINO4_A_ROW(c4, 4, v + tw, plane);
        WINO4_A_ROW(c5, 5, v + tw, plane);
    }
}

/* gW[o, i] (+)= G^T dU G of the 36 planes dU [36, CO, CI], one work item per (o, i), q = o*CI + i */
kernel void wino4_filter_grad(global const float *restrict dU, global float *restrict gW, int accumulate, int CO,
                              int CI)
{
    int q = (int)get_global_id(0);
    if (q >= CO * CI) return;
    int plane = CO * CI;
    float m[36], h[18], o[9];
    for (int x = 0; x < 36; x++) m[x] = dU[q + x * plane];
    for (int c = 0; c < 6; c++) WINO4_GT(m + c, 6, h + c, 6);
    for (int r = 0; r < 3; r++) WINO4_GT(h + 6 * r, 1, o + 3 * r, 1);
    for (int k = 0; k < 9; k++) store_acc(gW + q * 9 + k, accumulate, o[k]);
}
