/* `gradfeat bench trunk`: images/s of a model's forward pass (the trunk pass of train runs the
 * same executor, up to the cut) on random preprocessed input at the model's own input size.
 * One warm-up batch (kernel builds, GEMM tuning), then reps timed batches, each
 * gf_exec_run (upload + enqueue) and gf_ctx_finish: what a feature extraction loop pays,
 * minus image decoding. tools/bench_trunk.sh runs the PyTorch peer beside it.
 * Several processes (mpirun): every rank runs its own batches at once, as the trunk pass of train does
 * (whole batches per rank), between barriers; then rank 0 runs the same alone while the others sleep
 * (gf_dist_barrier_idle), which gives the 1-rank figure of the parallel efficiency on the same machine. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"
#include "gf_dist.h"
#include "gf_internal.h"
#include "gradfeat_model.h"
#include "model.h"

gf_status gf_bench_trunk(gf_ctx *ctx, const char *model_path, int batch, int reps, FILE *out) {
    gf_model *m = NULL;
    gf_status st = gf_model_load(NULL, model_path, &m);
    if (st != GF_OK) {
        st = gf_fail(ctx, st, "%s", m ? gf_model_error(m) : "cannot load the model");
        gf_model_free(m);
        return st;
    }
    gf_model_info in;
    gf_model_get_info(m, &in);
    size_t per = (size_t)in.in_c * in.in_h * in.in_w;
    float *x = malloc((size_t)batch * per * sizeof *x);
    gf_exec *e = NULL;
    if (!x) st = gf_fail(ctx, GF_ERR_MEMORY, "out of host memory for %d input images", batch);
    uint64_t s = 777;
    for (size_t i = 0; x && i < (size_t)batch * per; i++) {   /* roughly the scale of normalised pixels */
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 4 - 2);
    }
    uint64_t mem0 = 0, mem1 = 0, mem2 = 0, mem3 = 0, peak = 0;   /* device memory around each executor's creation */
    gf_ctx_memory(ctx, &mem0, &peak);
    if (st == GF_OK) st = gf_exec_create(ctx, m, batch, &e);
    if (st == GF_OK) st = gf_exec_run(e, x, batch);             /* warm-up (kept transforms are made here) */
    if (st == GF_OK) st = gf_ctx_finish(ctx);
    gf_ctx_memory(ctx, &mem1, &peak);
    if (st == GF_OK) st = gf_ctx_finish(ctx);
    if (st == GF_OK) st = gf_dist_barrier(ctx);
    double t0 = gf_now();
    for (int r = 0; r < reps && st == GF_OK; r++) {
        st = gf_exec_run(e, x, batch);
        if (st == GF_OK) st = gf_ctx_finish(ctx);
    }
    if (st == GF_OK) st = gf_dist_barrier(ctx);
    double sec = (gf_now() - t0) / reps;
    /* the trunk pass of train: input upload + the nodes the default top block's cut depends on, by an executor
     * made for it as train makes it (gf_exec_create_to: activations shared along the pass) */
    int cut = in.n_blocks ? gf_model_block_cut(m, 0) : GF_NODE_INPUT;
    gf_exec *et = NULL;
    double trunk_sec = 0, trunk_macs = 0;
    gf_block_info bi;
    memset(&bi, 0, sizeof bi);
    if (cut != GF_NODE_INPUT) {
        gf_model_block(m, 0, &bi);
        for (int i = 0; i <= cut; i++) {   /* topological order: nodes before the cut (CNN trunks have no side exits) */
            gf_node_info ni;
            gf_model_node(m, i, &ni);
            trunk_macs += ni.macs;
        }
        gf_ctx_memory(ctx, &mem2, &peak);
        if (st == GF_OK) st = gf_exec_create_to(ctx, m, batch, cut, &et);
        if (st == GF_OK) st = gf_exec_run_to(et, x, batch, cut);
        if (st == GF_OK) st = gf_ctx_finish(ctx);
        gf_ctx_memory(ctx, &mem3, &peak);
        if (st == GF_OK) st = gf_dist_barrier(ctx);
        double t1 = gf_now();
        for (int r = 0; r < reps && st == GF_OK; r++) {
            st = gf_exec_run_to(et, x, batch, cut);
            if (st == GF_OK) st = gf_ctx_finish(ctx);
        }
        if (st == GF_OK) st = gf_dist_barrier(ctx);
        trunk_sec = (gf_now() - t1) / reps;
    }
    /* several processes: rank 0 alone, the others asleep (the same pass as the table's last line) */
    int P = gf_dist_size();
    double solo_sec = 0;
    if (st == GF_OK && P > 1 && gf_dist_rank() == 0) {
        double t2 = gf_now();
        for (int r = 0; r < reps && st == GF_OK; r++) {
            st = cut != GF_NODE_INPUT ? gf_exec_run_to(et, x, batch, cut) : gf_exec_run(e, x, batch);
            if (st == GF_OK) st = gf_ctx_finish(ctx);
        }
        solo_sec = (gf_now() - t2) / reps;
    }
    if (st == GF_OK) st = gf_dist_barrier_idle(ctx);
    /* the output must be finite: a broken kernel that runs fast must not look like a win */
    const char *oname = gf_model_output_name(m, 0);
    size_t on = st == GF_OK ? gf_exec_node_size(e, oname) * (size_t)batch : 0;
    float *y = st == GF_OK && on ? malloc(on * sizeof *y) : NULL;
    if (st == GF_OK && on && !y) st = gf_fail(ctx, GF_ERR_MEMORY, "out of host memory");
    if (st == GF_OK && y) st = gf_exec_read(e, oname, y, on);
    for (size_t i = 0; st == GF_OK && y && i < on; i++)
        if (!isfinite(y[i])) st = gf_fail(ctx, GF_ERR_NUMERIC, "bench trunk: output %s[%zu] is not finite", oname, i);
    gf_roofline roof;   /* the device's limits */
    if (st == GF_OK) st = gf_bench_roofline(ctx, &roof);
    if (st == GF_OK) {
        const gf_device_info *dev = gf_ctx_device(ctx);
        double gf = 2 * in.macs * batch / sec * 1e-9, tgf = trunk_sec > 0 ? 2 * trunk_macs * batch / trunk_sec * 1e-9 : 0;
        fprintf(out, "trunk: %s, input %dx%dx%d, %.3f GFLOP per image (BN folded), batch %d, device %s\n", model_path,
                in.in_c, in.in_h, in.in_w, 2 * in.macs * 1e-9, batch, dev->name);
        gf_bench_roofline_print(&roof, out);
        fprintf(out, "%-22s %10s %10s %10s %7s\n", "pass", "ms/batch", "images/s", "GFLOP/s", "peak %");
        fprintf(out, "%-22s %10.1f %10.1f %10.1f %7.1f\n", "forward", sec * 1e3, batch / sec, gf, gf_bench_peak_pct(&roof, gf));
        if (cut != GF_NODE_INPUT)
            fprintf(out, "%-22s %10.1f %10.1f %10.1f %7.1f   (to %s, the input of top block %s)\n", "trunk", trunk_sec * 1e3,
                    batch / trunk_sec, tgf, gf_bench_peak_pct(&roof, tgf), bi.input, bi.name);
        fprintf(out, "peak %% = GFLOP/s / the SGEMM peak above\n");
        fprintf(out, "device memory of the whole-net executor %.1f MiB", (double)(mem1 - mem0) / 1048576);
        if (cut != GF_NODE_INPUT)
            fprintf(out, ", of the trunk pass's (activations shared along the pass) %.1f MiB", (double)(mem3 - mem2) / 1048576);
        fprintf(out, " (weights, kept transforms, activations, scratch)\n");
        if (P > 1) {   /* the rows above are rank 0's, run while every rank ran its own batches */
            double all = P * batch / (cut != GF_NODE_INPUT ? trunk_sec : sec), one = batch / solo_sec;
            fprintf(out, "%d ranks, %s: %.1f images/s in all (%d batches of %d at once); 1 rank alone (rank 0, the "
                    "others idle) %.1f images/s; parallel efficiency %.2f (in all / (%d x alone))\n", P,
                    cut != GF_NODE_INPUT ? "trunk" : "forward", all, P, batch, one, all / (P * one), P);
        }
    }
    free(y);
    free(x);
    gf_exec_free(et);
    gf_exec_free(e);
    gf_model_free(m);
    return st;
}
