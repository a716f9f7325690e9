/* A decode call's inputs on the host: fresh random data, a random block
 * table, and every byte that does not belong to a valid token poisoned with
 * NaN, so that a kernel reading what it must not shows it. */
#ifndef SNAPMLA_REFERENCE_DECODE_PROBLEM_H
#define SNAPMLA_REFERENCE_DECODE_PROBLEM_H

#include <stdint.h>

#include "snapmla.h"

/* Deterministic generator (splitmix64): a seed replays a problem. */
typedef struct snapmla_rng {
    uint64_t state;
} snapmla_rng;
uint64_t snapmla_rng_next(snapmla_rng *rng);
double snapmla_rng_normal(snapmla_rng *rng);
/* Uniform integer in [0, n). */
uint64_t snapmla_rng_below(snapmla_rng *rng, uint64_t n);

typedef struct snapmla_problem {
    snapmla_variant variant;       /* dims, format, page size, causal */
    int batch;
    uint16_t *q;                   /* [batch, q_len, q_heads, latent+rope] BF16 */
    unsigned char *cache;          /* num_pages * page_stride bytes */
    int64_t num_pages;
    int64_t page_stride;
    int32_t *block_table;          /* [batch, block_table_stride] */
    int block_table_stride;
    int32_t *seqlens;              /* [batch] */
    float softmax_scale;
    uint64_t seed;
} snapmla_problem;

/* page_stride 0: the format's natural page size. Owned by out; free with
 * snapmla_problem_free. */
snapmla_status snapmla_problem_make(const snapmla_variant *variant, int batch,
                                    const int32_t *seqlens, int64_t page_stride, uint64_t seed,
                                    snapmla_problem *out, snapmla_error *err);
void snapmla_problem_free(snapmla_problem *problem);

/* Float64 attention over the problem's (dequantized) cache: out [batch,
 * q_len, q_heads, latent], lse [batch, q_len, q_heads] (natural log; +inf
 * and out 0 for a row that sees no token). */
snapmla_status snapmla_ref_decode(const snapmla_problem *problem, double *out, double *lse,
                                  snapmla_error *err);
/* The same, and per row the largest sum of |q_c k_c| over the tokens it
 * sees, times the softmax scale (0 for a row that sees none): the size an
 * error of the score products is relative to. */
snapmla_status snapmla_ref_decode_magnitude(const snapmla_problem *problem, double *out,
                                            double *lse, double *magnitude, snapmla_error *err);

/* Float64 merge of split partials, the combine kernel's contract:
 * o_part [batch, splits, rows, latent], lse_part [batch, splits, rows]
 * (-inf: a split with no mass), split_counts [batch]. */
void snapmla_ref_combine(int batch, int splits, int rows, int latent, const float *o_part,
                         const float *lse_part, const int32_t *split_counts, double *out,
                         double *lse);
#endif
