/*
 * tests/harness/programs.h - the buggy user programs of issue 16, each with
 * its fix (programs.c), as weft/harness.h scenarios.
 */
#ifndef WEFT_TESTS_HARNESS_PROGRAMS_H
#define WEFT_TESTS_HARNESS_PROGRAMS_H

#include <stddef.h>

#include "weft/harness.h"
#include "weft/weft.h"

typedef struct program {
    const char *pattern;
    weft_harness_scenario buggy, fixed;
} program;

extern const program programs[];
extern const size_t nprograms;

/* Programs over simulated descriptors (io_programs.c). */
extern const program io_programs[];
extern const size_t nio_programs;

/* The buggy ordering program among six tasks that only yield. */
extern const weft_harness_scenario noisy_order;

/* A correct program whose detached task outlives the root: clean only
 * because the harness waits for quiescence before it checks. */
extern const weft_harness_scenario detached_logger;

#endif /* WEFT_TESTS_HARNESS_PROGRAMS_H */
