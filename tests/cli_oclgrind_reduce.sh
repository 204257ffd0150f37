#!/usr/bin/env bash
# The kernels with work-group reductions in local memory and barriers — cl/loss.cl (softmax cross-entropy,
# sigmoid BCE, top-1 count) and cl/optim.cl (SGD, Adam, two-stage squared norm, clip) — under oclgrind on
# small cases (`test_ops --small --filter xent,bce,sgd,adam,sqnorm`): fails on an out-of-bounds access, a
# data race (e.g. a missing barrier in a tree), an API error, a failed check, a kernel of those files that
# did not run, or oclgrind missing (tests/testlib.sh oclgrind_small).
. "$(dirname "$0")/testlib.sh"
oclgrind_caps test_ops --filter xent,bce,sgd,adam,sqnorm
oclgrind_uninit test_ops --filter xent,bce,sgd,adam,sqnorm
oclgrind_covers cl/loss.cl cl/optim.cl
finish
