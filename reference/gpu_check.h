/* Runs a loaded kernel on fresh random data on the GPU and compares it with
 * the float64 host reference. Shared by `snapmla run` and tests/test_gpu.c. */
#ifndef SNAPMLA_REFERENCE_GPU_CHECK_H
#define SNAPMLA_REFERENCE_GPU_CHECK_H

#include <stdint.h>

#include "snapmla.h"

/* Tolerances, from the numerics: BF16 inputs are exact in fp32, the kernel
 * accumulates in fp32, and the output is rounded once to BF16 (at most 2^-9
 * relative per element, about 4e-4 relative L2 on random data; 3e-4 to 7e-4
 * measured on an H100). 2e-3 leaves room for fp32 summation over long
 * contexts while still catching any wrong token, row or split. The LSE is
 * fp32 throughout: 1e-4 absolute. */
#define SNAPMLA_CHECK_REL_L2 2e-3
#define SNAPMLA_CHECK_LSE_ABS 1e-4

typedef struct snapmla_check_report {
    int passed;
    char summary[512];   /* one line: sizes, errors, tolerances */
} snapmla_check_report;

typedef struct snapmla_decode_check {
    int batch;
    const int32_t *seqlens;   /* [batch] */
    int num_splits;           /* 0: the variant's policy */
    int64_t page_stride;      /* 0: natural */
    uint64_t seed;
    /* Optional: capture the call in a CUDA graph once, then for each round
     * write these cache lengths (each <= seqlens) and replay the graph. */
    const int32_t *const *graph_rounds;
    int graph_round_count;
} snapmla_decode_check;

/* Decode (split + combine) vs reference; outputs poisoned before the run. */
snapmla_status snapmla_check_decode(snapmla_context *ctx, snapmla_kernel *kernel,
                                    const snapmla_decode_check *check,
                                    snapmla_check_report *report, snapmla_error *err);

/* Append: the cache after the kernel must equal, byte for byte, the
 * reference's; out-of-range slots counted, not written. */
snapmla_status snapmla_check_append(snapmla_context *ctx, snapmla_kernel *kernel,
                                    int64_t num_tokens, uint64_t seed,
                                    snapmla_check_report *report, snapmla_error *err);

/* Combine of random partials vs the float64 merge. */
snapmla_status snapmla_check_combine(snapmla_context *ctx, snapmla_kernel *kernel, int batch,
                                     int splits, uint64_t seed, snapmla_check_report *report,
                                     snapmla_error *err);

#endif
