/* The end of every test program: run the suite, report, exit status. */
#ifndef SNAPMLA_TESTS_RUN_SUITE_H
#define SNAPMLA_TESTS_RUN_SUITE_H

#include <check.h>
#include <stdlib.h>

/* fork: CK_FORK (each test in its own process) or CK_NOFORK. */
static inline int run_suite(Suite *suite, enum fork_status fork)
{
    SRunner *runner = srunner_create(suite);
    srunner_set_fork_status(runner, fork);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
