/*
 * tests/examples/cases.h - the sweep cases defined outside
 * test_examples_sweep.c: the README's task bodies (readme_tasks.c), the
 * server toolkit's handler (toolkit_tasks.c) and examples/hello.c's tasks
 * (hello_tasks.c). Each runs its case by abort and
 * by token (sweep.h) and returns 0 when every check held.
 */
#ifndef WEFT_TESTS_EXAMPLES_CASES_H
#define WEFT_TESTS_EXAMPLES_CASES_H

#include <stdbool.h>
#include <stdint.h>

#include <weft/weft.h>

int sweep_readme_first_child(void);
int sweep_readme_first_parent(void);
int sweep_readme_conn(void);
int sweep_readme_token(void);
int sweep_readme_blocking(unsigned *deadlocks);
int check_readme_blocking_real(void);
int sweep_readme_select(void);
int sweep_readme_join_timeout(bool safe_child);
int sweep_readme_group(bool all_wait);

int sweep_toolkit_line_conn(void);

int sweep_hello_child(void);
int sweep_hello_parent(bool *known_bug_seen);

/* The check the README's parent and hello's parent share: every handle
 * joined, the sum that of the joined children, 276 when not cancelled. */
int sweep_check_parent(const weft_join *kids, int64_t sum, int rc, bool cancelled,
                       const weft_outcome *out);

#endif /* WEFT_TESTS_EXAMPLES_CASES_H */
