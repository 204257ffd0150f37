/* Test hooks, compiled only with -DGF_TEST_HOOKS=ON (the tests' build: tools/setup.sh --tests, .ci/run).
 * The CLI hands GRADFEAT_TEST_KILL_AT=<point>:<n> to gf_test_kill_at: the process then SIGKILLs itself
 * the n-th time (counted in this process) it reaches <point>: "features" (a batch of the probe's feature
 * pass), a method name ("linear", "gradient", "full", "finetune": a training step of it), "checkpoint"
 * (a checkpoint file was just written) or "saved" (a method's model file was just saved, before its
 * checkpoint). Kill points are then deterministic; SIGKILL runs no handler, like a power cut or the OOM
 * killer (tests/cli_killresume.sh). */
#ifndef GF_TESTHOOK_H
#define GF_TESTHOOK_H
#ifdef GF_TEST_HOOKS
void gf_test_kill_at(const char *spec);   /* NULL or malformed: no kill point */
#endif
#endif
