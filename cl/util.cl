/* Elementwise helpers shared by every op family: residual add, scaling, fill. */

/* y = a*x + b*y   (residual add: a = b = 1; tangent adds are the same op).
 * With b == 0, y is not read (as in BLAS), so it may hold garbage (NaN). */
__kernel void gf_axpby(const int n, const float a, __global const float *x, const float b, __global float *y) {
    int i = get_global_id(0);
    if (i < n) y[i] = b == 0.0f ? a * x[i] : a * x[i] + b * y[i];
}

/* z = x + y, out of place */
__kernel void gf_add(const int n, __global const float *x, __global const float *y, __global float *z) {
    int i = get_global_id(0);
    if (i < n) z[i] = x[i] + y[i];
}

__kernel void gf_fill(const int n, const float v, __global float *y) {
    int i = get_global_id(0);
    if (i < n) y[i] = v;
}

/* dst[i, :] = src[idx[i], :] for rows of `row` floats (batch gather from a
 * device-resident cache); one work item per output float. */
/* uint, not float: a bit-exact copy, so int rows (max-pool routing) survive
 * devices that flush denormals on float moves. */
__kernel void gf_gather_rows(__global const uint *src, __global const int *idx, const int row, const int n,
                             __global uint *dst) {
    size_t g = get_global_id(0);
    if (g >= (size_t)n * (size_t)row) return;
    size_t i = g / (size_t)row, j = g % (size_t)row;
    dst[g] = src[(size_t)idx[i] * (size_t)row + j];
}
