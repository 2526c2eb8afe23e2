/*
 * tests/harness/main_order.c - WEFT_HARNESS_MAIN as a user writes it: one
 * scenario, one line, a program that takes --seeds, --pct, --replay and the
 * rest. Built twice: on the buggy two-task ordering program (must exit 1,
 * having printed a replay command and a minimised schedule) and on its fix
 * (must exit 0).
 */
#include "programs.h"

#ifdef WEFT_EXAMPLE_FIXED
WEFT_HARNESS_MAIN(programs[7].fixed)
#else
WEFT_HARNESS_MAIN(programs[7].buggy)
#endif
