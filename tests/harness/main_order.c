/*
 * tests/harness/main_order.c - WEFT_HARNESS_MAIN as a user writes it: one
 * scenario, one line, a program that takes --seeds, --pct, --replay and the
 * rest. Built twice: on the fixed two-task ordering program, where it must
 * exit 0, and on the buggy one, where weft_harness_main must return 1 (a
 * check failed, a replay command and a minimised schedule printed), which
 * this program turns into its own exit 0 so that a crash cannot pass for
 * the expected failure.
 */
#include "programs.h"

#ifdef WEFT_EXAMPLE_FIXED
WEFT_HARNESS_MAIN(programs[7].fixed)
#else
int main(int argc, char **argv)
{
    return weft_harness_main(&programs[7].buggy, argc, argv) == 1 ? 0 : 1;
}
#endif
