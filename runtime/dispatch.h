/* Tuned dispatch without kernels: the same table as snapmla_dispatch_create
 * built from variants alone, so that the CPU tests and `snapmla tune pick`
 * can see which candidate each bucket gets without a GPU. */
#ifndef SNAPMLA_RUNTIME_DISPATCH_H
#define SNAPMLA_RUNTIME_DISPATCH_H

#include "snapmla.h"

/* variants[0..count) are the candidates (copied); kernels[i] is variants[i]
 * loaded, or kernels is NULL (then snapmla_decode_tuned refuses). log gets
 * the dispatch lines when the database (or, without one, $SNAPMLA_LOG now)
 * asks for them. */
snapmla_status snapmla_dispatch_build(const snapmla_tuning_db *db,
                                      const snapmla_variant *const *variants,
                                      snapmla_kernel *const *kernels, int count,
                                      const char *device, snapmla_log_fn log, void *log_user,
                                      snapmla_dispatch **out, snapmla_error *err);

/* The candidate index for a call, its split count and where it came from
 * (logs the first use of a bucket like snapmla_dispatch_select). */
int snapmla_dispatch_pick(snapmla_dispatch *dispatch, int batch, int64_t context,
                          int *num_splits, snapmla_dispatch_source *source);

/* One line on the choice for (batch, context): buckets, variant, split
 * count and why (the text of the dispatch log). */
void snapmla_dispatch_describe(const snapmla_dispatch *dispatch, int batch, int64_t context,
                               char *out, size_t size);

#endif
