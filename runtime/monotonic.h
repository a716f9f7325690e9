/* Seconds on the monotonic clock: for durations (compile times, progress,
 * a sustained load), never for dates. */
#ifndef SNAPMLA_RUNTIME_MONOTONIC_H
#define SNAPMLA_RUNTIME_MONOTONIC_H

#include <time.h>

static inline double snapmla_seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#endif
