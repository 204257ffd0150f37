/* Deterministic uniform numbers (xorshift64*) of the op table (optable.c: a row's data comes from its seed),
 * also the tests' (tests/testutil.h test_rng). */
#ifndef GF_OT_RNG_H
#define GF_OT_RNG_H
#include <stddef.h>
#include <stdint.h>

typedef struct ot_rng { uint64_t s; } ot_rng;
void ot_rng_seed(ot_rng *r, uint64_t seed);
double ot_uniform(ot_rng *r, double lo, double hi);   /* in [lo, hi) */
void ot_fill(ot_rng *r, float *x, size_t n, double lo, double hi);
#endif
