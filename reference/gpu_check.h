/* Runs a loaded kernel on fresh random data on the GPU and compares it with
 * the float64 host reference. Shared by `snapmla run` and tests/test_gpu.c. */
#ifndef SNAPMLA_REFERENCE_GPU_CHECK_H
#define SNAPMLA_REFERENCE_GPU_CHECK_H

#include <stdint.h>

#include "snapmla.h"

/* Tolerances, from the numerics. The kernel's arithmetic is fp32 on values
 * that are exact (BF16 inputs, e4m3 codes, per-token scales applied in fp32),
 * so its only large error is the final rounding to BF16: 2^-8 relative at
 * most, about 1.6e-3 relative L2 on random data. The check therefore
 * compares with the float64 reference rounded to BF16 as well: what remains
 * is the fp32 error showing through at rounding ties, well under 1e-3 (any
 * wrong token, row or split is far above). The LSE is fp32 throughout. */
#define SNAPMLA_CHECK_REL_L2 1e-3
#define SNAPMLA_CHECK_LSE_ABS 1e-4
/* The tensor-core engines' BF16 products (tile.engine mma_sync, and wgmma
 * with target.compute bf16) round P to BF16 before the PV product (2^-9
 * relative per weight, about 1e-3 on the output, up to 2.6e-3 measured with
 * a handful of tokens where nothing averages out) on top of the output's
 * own rounding: it is judged against the unrounded reference, at 5e-3. */
#define SNAPMLA_CHECK_REL_L2_BF16_P 5e-3
/* The FP8 path (target.compute fp8) quantizes Q per row and P' = P * v_scale
 * * r per row to e4m3; products are exact. The reference quantizes Q the
 * same way (reference/attention_ref.c), so what is left:
 * - the output: P's rounding, 2^-4 relative per weight at most (3 mantissa
 *   bits, round to nearest), about 2.6% RMS per weight; averaged over the
 *   tokens a row attends to, the output sees less (0.2-1.5% measured). The
 *   bound is the per-weight RMS, 3e-2.
 * - the LSE, which P's rounding does not touch: the tensor cores sum e4m3
 *   products in accumulators of fewer bits than fp32, so a score's error
 *   scales with the sum of |q_c k_c| behind it (up to 2^-12.2 of it
 *   measured on the H100). Each row is judged at 2e-3 + 2^-9 * scale * max
 *   over tokens of sum_c |q_c k_c| (reference/attention_ref.c).
 * Measured errors: docs/fidelity.md ("FP8 products"). */
#define SNAPMLA_CHECK_REL_L2_FP8 3e-2
#define SNAPMLA_CHECK_LSE_ABS_FP8 2e-3
#define SNAPMLA_CHECK_LSE_REL_FP8 (1.0 / 512)

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
    /* Optional (no graph rounds): snapmla_decode_plan once, then this many
     * decodes with plan_ready, as the layers of one step run; outputs are
     * poisoned before each, so a decode that found no work fails. */
    int plan_reuse_calls;
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
