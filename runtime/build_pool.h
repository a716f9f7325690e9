/* Builds of many variants at once on a pool of threads, through the caches:
 * `snapmla build`, `snapmla tune` and the tests share it. */
#ifndef SNAPMLA_RUNTIME_BUILD_POOL_H
#define SNAPMLA_RUNTIME_BUILD_POOL_H

#include <stddef.h>

#include "snapmla.h"

/* snapmla_build of variants[i] into binaries[i] and errors[i] (each
 * variant's own status is errors[i].status) on up to `threads` threads
 * (1..64; fewer when threads cannot be started, at least the caller's).
 * Returns the wall time in seconds. */
double snapmla_build_pool(snapmla_context *ctx, const snapmla_variant *const *variants,
                          size_t count, int threads, snapmla_binary *binaries,
                          snapmla_error *errors);

#endif
