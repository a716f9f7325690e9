/* The end of every test program: run the suite, report, exit status. */
#ifndef SNAPMLA_TESTS_RUN_SUITE_H
#define SNAPMLA_TESTS_RUN_SUITE_H

#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

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

/* The run's random seed: SNAPMLA_TEST_SEED (a decimal, to replay a run) or
 * the clock. A value that is not a whole decimal number is an error (0),
 * not a silent seed 0. */
static inline int test_seed(const char *program, uint64_t *seed)
{
    const char *text = getenv("SNAPMLA_TEST_SEED");
    if (!text) {
        *seed = (uint64_t)time(NULL);
        return 1;
    }
    char *end;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || *end != '\0' || errno != 0) {
        fprintf(stderr, "%s: SNAPMLA_TEST_SEED: '%s' is not allowed; allowed: a decimal "
                        "0..18446744073709551615\n", program, text);
        return 0;
    }
    *seed = value;
    return 1;
}

#endif
