/* The prelude: host/runtime/program.c puts this file in front of every other
 * kernel program it builds (embedded, or from GRADFEAT_KERNEL_DIR), so these
 * helpers exist in every program. It holds no kernels. OpenCL C 1.2, fp32.
 *
 * Work-group sums. Every lane of the work-group must call them (they hold
 * barriers), each with its partial value; the sum comes back to every lane and
 * the local buffers (get_local_size(0) floats each) are free again on return.
 * The tree is fixed: while n > 1 lanes hold values, lane l < n - h adds in lane
 * l + h's, h = ceil(n / 2). For a power-of-two size L that is the halving tree
 * red[l] += red[l + L/2], red[l] += red[l + L/4], ...; any L works. So a sum is
 * bitwise reproducible for a given L, with no float atomics. */
float wg_sum(local float *red, float v)
{
    uint l = (uint)get_local_id(0);
    red[l] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint n = (uint)get_local_size(0), h; n > 1; n = h) {
        h = (n + 1) / 2;
        if (l < n - h) red[l] += red[l + h];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float r = red[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

/* Two sums in one tree: (sum of a, sum of b). */
float2 wg_sum2(local float *ra, local float *rb, float a, float b)
{
    uint l = (uint)get_local_id(0);
    ra[l] = a;
    rb[l] = b;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint n = (uint)get_local_size(0), h; n > 1; n = h) {
        h = (n + 1) / 2;
        if (l < n - h) {
            ra[l] += ra[l + h];
            rb[l] += rb[l + h];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float2 r = (float2)(ra[0], rb[0]);
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

/* *p (+)= v: adds to the old value when accumulate, else overwrites it. */
void store_acc(global float *p, int accumulate, float v)
{
    *p = accumulate ? *p + v : v;
}
