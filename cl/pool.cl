/* Pooling, NCHW float32: max pool (argmax-routed tangent and gradient),
 * average pool, global average pool. Geometry: input H x W, output OH x OW,
 * window kh x kw, stride sh x sw, padding pt/pl before (the padding after is
 * implied by OH/OW; hlim = H + pad_bottom and wlim = W + pad_right bound the
 * padded frame for count_include_pad). Backward kernels gather per input
 * element over the outputs whose window covers it, in a fixed order: no
 * atomics, no races, deterministic. Window kernels run on a 3-D range
 * (w, h, n*c): no integer divisions to recover coordinates, and adjacent
 * work-items touch adjacent columns. */

/* First output index o with o*s - p + k - 1 >= i, i.e. whose window reaches i. */
int pool_first(int i, int p, int k, int s)
{
    int num = i + p - k + 1;
    return num <= 0 ? 0 : (num + s - 1) / s;
}

/* x: N*C planes of H*W. y (if has_y) and argmax (if has_arg): N*C planes of
 * OH*OW. argmax is the flat index h*W + w inside the input plane, -1 if the
 * window holds no input element (cannot happen when pads < kernel). Ties: the
 * first maximum in row-major window order wins; NaN wins (as PyTorch). */
kernel void maxpool_forward(global const float *x, global float *y, global int *argmax,
                            int has_y, int has_arg, uint NC,
                            int H, int W, int OH, int OW, int kh, int kw, int sh, int sw,
                            int pt, int pl)
{
    int ow = (int)get_global_id(0), oh = (int)get_global_id(1);
    size_t nc = get_global_id(2);
    if (ow >= OW || oh >= OH || nc >= NC) return;
    size_t i = (nc * (size_t)OH + (size_t)oh) * (size_t)OW + (size_t)ow;
    global const float *xp = x + nc * (size_t)H * (size_t)W;
    /* the window clipped to the input: no per-element bounds tests */
    int h0 = oh * sh - pt, w0 = ow * sw - pl;
    int hs = max(h0, 0), he = min(h0 + kh, H), ws = max(w0, 0), we = min(w0 + kw, W);
    float best = 0.0f;
    int bi = -1;
    for (int h = hs; h < he; h++)
        for (int w = ws; w < we; w++) {
            float v = xp[h * W + w];
            if (bi < 0 || v > best || isnan(v)) { best = v; bi = h * W + w; }
        }
    if (has_y) y[i] = best;
    if (has_arg) argmax[i] = bi;
}

/* maxpool_forward for 3x3 windows on CPU devices: one output row per work item (range: oh, n*c); the
 * columns whose window lies inside the image take their nine taps in one straight pass (three input rows
 * side by side), at strides 1 and 2 eight outputs at a time in float8 selects (PoCL left the one-output loop
 * scalar, a compare and branch per tap: ResNet-18's 112x112 stem pool was 8 % of its trunk pass), the other
 * columns eight at a time through masked gathers. The same rule and order as maxpool_forward: taps in
 * row-major window order, the first maximum wins, NaN wins. */
/* Eight outputs ow.. at once (stride sw 1 or 2): the row's three taps of each as float8 (stride 2: the even and
 * odd columns of 16, and the even ones shifted by one), each tap taken lane by lane by the same rule; the first
 * valid row (index `first`) starts them. */
#define MP3_TAP8(v, k, r, j) { \
    int8 c_ = (k) == first * 3 ? (int8)(-1) : isgreater(v, best) | isnan(v); \
    best = select(best, v, c_); bi = select(bi, (int)(r - xp) + w0 + (j) + lane, c_); }
#define MP3_ROW8(r, ok, i) if (ok) { \
    float8 t0_, t1_, t2_; \
    if (sw == 2) { \
        float16 v_ = vload16(0, r + w0); \
        t0_ = v_.even; t1_ = v_.odd; t2_ = (float8)(v_.s2468, v_.sace, r[w0 + 16]); \
    } else { \
        t0_ = vload8(0, r + w0); t1_ = vload8(0, r + w0 + 1); t2_ = vload8(0, r + w0 + 2); \
    } \
    MP3_TAP8(t0_, 3 * (i), r, 0) MP3_TAP8(t1_, 3 * (i) + 1, r, 1) MP3_TAP8(t2_, 3 * (i) + 2, r, 2) }
/* one lane's output (column c0 + k) when the lane is active */
#define MP3_ST1(a, v, b, k) if (a) { \
    if (has_y) y[o + c0 + (k)] = v; \
    if (has_arg) argmax[o + c0 + (k)] = b; }
kernel void maxpool3_rows(global const float *x, global float *y, global int *argmax, int has_y, int has_arg,
                          uint NC, int H, int W, int OH, int OW, int sh, int sw, int pt, int pl)
{
    int oh = (int)get_global_id(0);
    size_t nc = get_global_id(1);
    if (oh >= OH || nc >= NC) return;
    global const float *xp = x + nc * (size_t)H * (size_t)W;
    size_t o = (nc * (size_t)OH + (size_t)oh) * (size_t)OW;
    int h0 = oh * sh - pt;
    int ok0 = h0 >= 0 && h0 < H, ok1 = h0 + 1 >= 0 && h0 + 1 < H, ok2 = h0 + 2 >= 0 && h0 + 2 < H;
    global const float *r0 = xp + (ok0 ? h0 : 0) * W, *r1 = xp + (ok1 ? h0 + 1 : 0) * W,
                       *r2 = xp + (ok2 ? h0 + 2 : 0) * W;
    /* interior columns: ow * sw - pl >= 0 and ow * sw - pl + 2 < W */
    int lo = (pl + sw - 1) / sw, hi = W - 3 + pl >= 0 ? min(OW, (W - 3 + pl) / sw + 1) : 0;
    hi = max(hi, lo);
    int ow = lo;
    if (sw <= 2) {   /* eight outputs at a time, their taps as float8 vectors (MP3_TAP8) */
        int first = ok0 ? 0 : ok1 ? 1 : 2;
        int8 lane = (int8)(0, 1, 2, 3, 4, 5, 6, 7) * sw;
        for (; ow + 8 <= hi; ow += 8) {
            int w0 = ow * sw - pl;
            float8 best = (float8)(0.0f);
            int8 bi = (int8)(-1);
            MP3_ROW8(r0, ok0, 0) MP3_ROW8(r1, ok1, 1) MP3_ROW8(r2, ok2, 2)
            if (has_y) vstore8(best, 0, y + o + ow);
            if (has_arg) vstore8(bi, 0, argmax + o + ow);
        }
    }
    /* the rest (the edge columns, and rows too short for the loop above: 15x15 -> 8x8 has 6 interior columns):
     * eight columns at a time, lanes already done or past OW idle, each tap gathered lane by lane inside the
     * image (clamped index, masked) by the same rule, rows in order; branch-free where the window search per
     * output mispredicted (the emotion net's 15x15 pools were 15 % of its fine-tuning) */
    for (int c0 = 0; c0 < OW; c0 += 8) {
        int8 col = (int8)(c0) + (int8)(0, 1, 2, 3, 4, 5, 6, 7);
        int8 act = (col < (int8)(OW)) & ((col < (int8)(lo)) | (col >= (int8)(ow)));
        if (!any(act)) continue;
        float8 best = (float8)(0.0f);
        int8 bi = (int8)(-1);
        for (int i = 0; i < 3; i++) {
            int h = h0 + i;
            if (h < 0 || h >= H) continue;
            global const float *r = xp + h * W;
            for (int j = 0; j < 3; j++) {
                int8 w = col * (int8)(sw) - (int8)(pl - j);
                int8 wc = clamp(w, (int8)(0), (int8)(W - 1));
                float8 v = (float8)(r[wc.s0], r[wc.s1], r[wc.s2], r[wc.s3], r[wc.s4], r[wc.s5], r[wc.s6], r[wc.s7]);
                int8 c = act & (w >= (int8)(0)) & (w < (int8)(W)) & ((bi < (int8)(0)) | isgreater(v, best) | isnan(v));
                best = select(best, v, c);
                bi = select(bi, (int8)(h * W) + w, c);
            }
        }
        if (all(act) && c0 + 8 <= OW) {
            if (has_y) vstore8(best, 0, y + o + c0);
            if (has_arg) vstore8(bi, 0, argmax + o + c0);
        } else {
            MP3_ST1(act.s0, best.s0, bi.s0, 0) MP3_ST1(act.s1, best.s1, bi.s1, 1)
            MP3_ST1(act.s2, best.s2, bi.s2, 2) MP3_ST1(act.s3, best.s3, bi.s3, 3)
            MP3_ST1(act.s4, best.s4, bi.s4, 4) MP3_ST1(act.s5, best.s5, bi.s5, 5)
            MP3_ST1(act.s6, best.s6, bi.s6, 6) MP3_ST1(act.s7, best.s7, bi.s7, 7)
        }
    }
}

/* Tangent through the primal argmax: t_out[o] = t_in[argmax[o]]. */
kernel void maxpool_tangent(global const float *t_in, global const int *argmax, global float *t_out,
                            uint total, int HW, int OHW)
{
    size_t i = get_global_id(0);
    if (i >= total) return;
    size_t nc = i / (size_t)OHW;
    int a = argmax[i];
    t_out[i] = a >= 0 ? t_in[nc * (size_t)HW + (size_t)a] : 0.0f;
}

/* maxpool_tangent on CPU devices: an item per plane (no division per element) */
kernel void maxpool_tangent_planes(global const float *t_in, global const int *argmax, global float *t_out,
                                   uint NC, int HW, int OHW)
{
    size_t nc = get_global_id(0);
    if (nc >= NC) return;
    global const float *ti = t_in + nc * (size_t)HW;
    global const int *am = argmax + nc * (size_t)OHW;
    global float *to = t_out + nc * (size_t)OHW;
    for (int o = 0; o < OHW; o++) {
        int a = am[o];
        to[o] = a >= 0 ? ti[a] : 0.0f;
    }
}

/* Gradient: g_in[e] = sum of g_out[o] over outputs o covering e with argmax[o] == e. */
kernel void maxpool_backward(global const float *g_out, global const int *argmax, global float *g_in,
                             uint NC, int H, int W, int OH, int OW, int kh, int kw, int sh, int sw,
                             int pt, int pl)
{
    int w = (int)get_global_id(0), h = (int)get_global_id(1);
    size_t nc = get_global_id(2);
    if (w >= W || h >= H || nc >= NC) return;
    size_t i = (nc * (size_t)H + (size_t)h) * (size_t)W + (size_t)w;
    int e = h * W + w;
    int oh0 = pool_first(h, pt, kh, sh), oh1 = min((h + pt) / sh, OH - 1);
    int ow0 = pool_first(w, pl, kw, sw), ow1 = min((w + pl) / sw, OW - 1);
    size_t base = nc * (size_t)OH * (size_t)OW;
    float acc = 0.0f;
    for (int oh = oh0; oh <= oh1; oh++)
        for (int ow = ow0; ow <= ow1; ow++) {
            size_t o = base + (size_t)(oh * OW + ow);
            if (argmax[o] == e) acc += g_out[o];
        }
    g_in[i] = acc;
}

/* maxpool_backward on CPU devices: an item per plane zeroes its gradient and adds each output's gradient at the
 * output's argmax, the outputs in row-major order: every element gets the terms maxpool_backward gathers for it,
 * in the same order, so the same sums; no division and no window search per element. */
kernel void maxpool_backward_planes(global const float *g_out, global const int *argmax, global float *g_in,
                                    uint NC, int HW, int OHW)
{
    size_t nc = get_global_id(0);
    if (nc >= NC) return;
    global float *gi = g_in + nc * (size_t)HW;
    global const float *go = g_out + nc * (size_t)OHW;
    global const int *am = argmax + nc * (size_t)OHW;
    for (int e = 0; e < HW; e++) gi[e] = 0.0f;
    for (int o = 0; o < OHW; o++) {
        int a = am[o];
        if (a >= 0) gi[a] += go[o];
    }
}

/* Divisor of output (oh, ow): the window clipped to the padded frame
 * (count_include_pad, PyTorch's rule) or to the real input (pads excluded,
 * TF SAME's rule). */
float avg_div(int oh, int ow, int H, int W, int kh, int kw, int sh, int sw,
              int pt, int pl, int include_pad, int hlim, int wlim)
{
    int h0 = oh * sh - pt, w0 = ow * sw - pl;
    int h1 = h0 + kh, w1 = w0 + kw;
    if (include_pad) {
        h1 = min(h1, hlim);
        w1 = min(w1, wlim);
    } else {
        h0 = max(h0, 0);
        w0 = max(w0, 0);
        h1 = min(h1, H);
        w1 = min(w1, W);
    }
    return (float)((h1 - h0) * (w1 - w0));
}

/* Average pool forward; it is linear, so the tangent is this same kernel. */
kernel void avgpool_forward(global const float *x, global float *y, uint NC,
                            int H, int W, int OH, int OW, int kh, int kw, int sh, int sw,
                            int pt, int pl, int include_pad, int hlim, int wlim)
{
    int ow = (int)get_global_id(0), oh = (int)get_global_id(1);
    size_t nc = get_global_id(2);
    if (ow >= OW || oh >= OH || nc >= NC) return;
    size_t i = (nc * (size_t)OH + (size_t)oh) * (size_t)OW + (size_t)ow;
    global const float *xp = x + nc * (size_t)H * (size_t)W;
    int h0 = oh * sh - pt, w0 = ow * sw - pl;
    int hs = max(h0, 0), he = min(h0 + kh, H), ws = max(w0, 0), we = min(w0 + kw, W);
    float acc = 0.0f;
    for (int h = hs; h < he; h++)
        for (int w = ws; w < we; w++) acc += xp[h * W + w];
    y[i] = acc / avg_div(oh, ow, H, W, kh, kw, sh, sw, pt, pl, include_pad, hlim, wlim);
}

/* Average pool gradient, gathered per input element. */
kernel void avgpool_backward(global const float *g_out, global float *g_in, uint NC,
                             int H, int W, int OH, int OW, int kh, int kw, int sh, int sw,
                             int pt, int pl, int include_pad, int hlim, int wlim)
{
    int w = (int)get_global_id(0), h = (int)get_global_id(1);
    size_t nc = get_global_id(2);
    if (w >= W || h >= H || nc >= NC) return;
    size_t i = (nc * (size_t)H + (size_t)h) * (size_t)W + (size_t)w;
    int oh0 = pool_first(h, pt, kh, sh), oh1 = min((h + pt) / sh, OH - 1);
    int ow0 = pool_first(w, pl, kw, sw), ow1 = min((w + pl) / sw, OW - 1);
    size_t base = nc * (size_t)OH * (size_t)OW;
    float acc = 0.0f;
    for (int oh = oh0; oh <= oh1; oh++)
        for (int ow = ow0; ow <= ow1; ow++)
            acc += g_out[base + (size_t)(oh * OW + ow)] /
                   avg_div(oh, ow, H, W, kh, kw, sh, sw, pt, pl, include_pad, hlim, wlim);
    g_in[i] = acc;
}

/* Global average pool: one work-group per (n, c) plane; lane l sums elements
 * l, l+L, ... then wg_sum's fixed tree (deterministic for a given local size
 * L). Linear: the tangent is this same kernel. */
kernel void gap_forward(global const float *x, global float *y, uint planes, uint HW,
                        local float *red)
{
    size_t p = get_group_id(0);
    uint l = (uint)get_local_id(0), L = (uint)get_local_size(0);
    float acc = 0.0f;
    if (p < planes) {
        global const float *xp = x + p * (size_t)HW;
        for (uint j = l; j < HW; j += L) acc += xp[j];
    }
    float s = wg_sum(red, acc);
    if (l == 0 && p < planes) y[p] = s / (float)HW;
}

/* Small planes (HW <= 64, e.g. 7x7): one work-item per plane, sequential sum.
 * Cheaper than a work-group per plane on CPU devices and enough on GPUs. */
kernel void gap_forward_small(global const float *x, global float *y, uint planes, uint HW)
{
    size_t p = get_global_id(0);
    if (p >= planes) return;
    global const float *xp = x + p * (size_t)HW;
    float acc = 0.0f;
    for (uint j = 0; j < HW; j++) acc += xp[j];
    y[p] = acc / (float)HW;
}

/* g_in[n, c, h, w] = g_out[n, c] / HW. */
kernel void gap_backward(global const float *g_out, global float *g_in, uint total, uint HW)
{
    size_t i = get_global_id(0);
    if (i >= total) return;
    g_in[i] = g_out[i / HW] / (float)HW;
}
