/* The correctness gate of `snapmla tune`: before a config is timed it runs
 * one decode step against the float64 host reference (reference/gpu_check.c,
 * as `snapmla run` does), so that a wrong variant is never a winner. */
#include <stdio.h>

#include "error.h"
#include "gpu_check.h"
#include "tune.h"

enum { CHECK_BATCH = 8, CHECK_SEQLEN = 1500 };

snapmla_status tune_check(snapmla_context *ctx, snapmla_kernel *kernel, int splits,
                          uint64_t seed, int *passed, char *reason, size_t size,
                          snapmla_error *err)
{
    const snapmla_variant *v = snapmla_kernel_variant(kernel);
    /* Ragged: empty, one token, the page edges and long requests. */
    int32_t seqlens[CHECK_BATCH] = {CHECK_SEQLEN, 0, 1, v->page_size - 1, v->page_size,
                                    v->page_size + 1, CHECK_SEQLEN / 3 + 7, CHECK_SEQLEN - 5};
    for (int b = 0; b < CHECK_BATCH; ++b)
        if (seqlens[b] < 0)
            seqlens[b] = 0;
    snapmla_decode_check check = {.batch = CHECK_BATCH, .seqlens = seqlens, .num_splits = splits,
                                  .seed = seed};
    snapmla_check_report report = {0};
    snapmla_status s = snapmla_check_decode(ctx, kernel, &check, &report, err);
    if (s != SNAPMLA_OK)
        return s;
    *passed = report.passed;
    snprintf(reason, size, "%s", report.summary);
    return snapmla_ok(err);
}
