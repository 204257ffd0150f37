#!/usr/bin/env bash
# The batch-norm kernels under oclgrind (`test_ops --small --filter bn_train,bn_eval`): bn_train_forward
# (running and saved statistics or not), bn_eval_forward (in place too) and bn_backward (training and
# eval, dx and the parameter gradients together and apart, accumulate) of cl/bn.cl, with the blocked walk,
# the strided walk (more values than its 256 lanes) and the blocked walk widened by a small item budget:
# the local-memory trees of wg_sum / wg_sum2 (cl/common.cl) with their barriers. Fails on an out-of-bounds
# access, a data race, an API error, a failed check, a kernel of cl/bn.cl that did not run, or oclgrind
# missing (tests/testlib.sh oclgrind_small).
. "$(dirname "$0")/testlib.sh"
oclgrind_caps test_ops --filter bn_train,bn_eval
oclgrind_uninit test_ops --filter bn_train,bn_eval
oclgrind_covers cl/bn.cl
finish
