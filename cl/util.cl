/* Elementwise helpers shared by every op family: residual add, scaling, fill. */

/* y = a*x + b*y   (residual add: a = b = 1; tangent adds are the same op).
 * With b == 0, y is not read (as in BLAS), so it may hold garbage (NaN). */
kernel void gf_axpby(int n, float a, global const float *x, float b, global float *y)
{
    size_t i = get_global_id(0);
    if (i < (size_t)n) y[i] = b == 0.0f ? a * x[i] : a * x[i] + b * y[i];
}

/* z = x + y, out of place */
kernel void gf_add(int n, global const float *x, global const float *y, global float *z)
{
    size_t i = get_global_id(0);
    if (i < (size_t)n) z[i] = x[i] + y[i];
}

kernel void gf_fill(int n, float v, global float *y)
{
    size_t i = get_global_id(0);
    if (i < (size_t)n) y[i] = v;
}

/* dst[i, :] = src[idx[i], :] for rows of `row` floats (batch gather from a
 * device-resident cache); one work item per output float, on a 2-D range
 * (column j, row i): a 1-D range's g / row and g % row were two 64-bit
 * divisions per float, which PoCL cannot vectorise (8 % of the emotion net's
 * job). uint, not float: a bit-exact copy, so int rows (max-pool routing)
 * survive devices that flush denormals on float moves. */
kernel void gf_gather_rows(global const uint *src, global const int *idx, int row, int n, global uint *dst)
{
    size_t j = get_global_id(0), i = get_global_id(1);
    if (j >= (size_t)row || i >= (size_t)n) return;
    global const uint *s = src + (size_t)idx[i] * (size_t)row;   /* j, the work-group's fastest index, is the column: */
    dst[i * (size_t)row + j] = s[j];                             /* contiguous loads and stores */
}

/* Half-precision storage of the caches (--cache-dtype f16): vstore_half /
 * vload_half are core OpenCL 1.2 (no cl_khr_fp16: half is only a storage
 * format here, all arithmetic stays float). _rte spells out the rounding the
 * host reference (gf_f32_to_f16) does: to nearest, ties to even. */
kernel void gf_store_half(int n, global const float *src, ulong off, global half *dst)
{
    size_t i = get_global_id(0);
    if (i < (size_t)n) vstore_half_rte(src[i], (size_t)off + i, dst);
}

/* dst[i, :] = float(src[idx[i], :]): gf_gather_rows from a half cache */
kernel void gf_gather_rows_half(global const half *src, global const int *idx, int row, int n, global float *dst)
{
    size_t j = get_global_id(0), i = get_global_id(1);
    if (j >= (size_t)row || i >= (size_t)n) return;
    dst[i * (size_t)row + j] = vload_half(j, src + (size_t)idx[i] * (size_t)row);
}
