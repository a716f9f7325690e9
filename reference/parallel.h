/* The host reference's one form of parallelism: a loop over [0, count)
 * cut into one contiguous chunk per thread. Callers make each index's work
 * independent of the others, so results do not depend on the thread count. */
#ifndef SNAPMLA_REFERENCE_PARALLEL_H
#define SNAPMLA_REFERENCE_PARALLEL_H

#include <stddef.h>

/* Runs body(context, begin, end) over chunks that cover [0, count) once,
 * on up to the CPU count of threads (capped at 32) and on one when the loop
 * is smaller than `min_per_thread` indices a thread; chunks whose thread
 * cannot be started run on the caller's. Returns when all are done. */
void snapmla_parallel_for(size_t count, size_t min_per_thread,
                          void (*body)(void *context, size_t begin, size_t end), void *context);

#endif
