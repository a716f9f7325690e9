/* The host reference in one include: BF16 conversions (bf16.h), cache
 * layouts (cache_layout.h), random problems and the float64 decode and
 * combine (decode_problem.h), plus the append reference and the comparison
 * of a device result with the float64 one, declared here. */
#ifndef SNAPMLA_REFERENCE_REFERENCE_H
#define SNAPMLA_REFERENCE_REFERENCE_H

#include <stddef.h>
#include <stdint.h>

#include "bf16.h"
#include "cache_layout.h"
#include "decode_problem.h"
#include "snapmla.h"

/* ---- append (append_ref.c) ----------------------------------------------- */

/* What the append kernel must do to the cache, byte for byte: token i's
 * latent (row i of latent, latent_stride elements apart; 0: dense) and RoPE
 * (likewise) go through snapmla_layout_store into slot slots[i] of cache
 * (num_pages pages of page_stride bytes). A negative slot is padding and
 * skipped; a slot >= num_pages * page_size writes nothing and is counted.
 * Returns that count. No other byte of cache changes. */
int64_t snapmla_ref_append(const snapmla_layout *layout, unsigned char *cache,
                           int64_t num_pages, int64_t page_stride, const uint16_t *latent,
                           int64_t latent_stride, const uint16_t *rope, int64_t rope_stride,
                           const int64_t *slots, int64_t n);

/* ---- comparison (compare.c) ---------------------------------------------- */

/* How a device decode (or combine) result departs from the float64
 * reference. The device poisons its outputs with 0xff bytes before a run, so
 * an output still holding that pattern was never written. */
typedef struct snapmla_comparison {
    size_t values;           /* rows * width output values compared */
    size_t rows;
    double rel_l2;           /* vs the reference rounded to BF16, as the output is */
    double rel_l2_exact;     /* vs the float64 reference itself */
    double max_abs;          /* largest |got - reference| over finite outputs */
    double lse_max_abs;      /* over rows where both LSEs are finite */
    long nan_count;          /* NaN or Inf out/LSE where the reference is finite */
    long unwritten;          /* out values or LSEs still holding the poison pattern */
    long lse_mismatch;       /* empty rows whose LSE is not +inf, or the reverse */
    double lse_bound_ratio;  /* largest |lse error| / its row's bound (snapmla_compare_lse_bounds) */
} snapmla_comparison;

/* The 0xff poison as the output types read it. */
#define SNAPMLA_POISON_BF16 0xffffu
#define SNAPMLA_POISON_F32 0xffffffffu

/* Compares out [rows, width] BF16 and lse [rows] fp32 with ref_out and
 * ref_lse (float64; +inf LSE and zero out for a row that sees no token).
 * Unwritten values count in unwritten (not in nan_count) and are left out
 * of the error sums. */
void snapmla_compare(const uint16_t *out, const float *lse, const double *ref_out,
                     const double *ref_lse, size_t rows, size_t width,
                     snapmla_comparison *c);

/* Sets c->lse_bound_ratio: the largest |lse - ref_lse| / bound over rows
 * where both are finite (a bound per row, for errors that scale with it). */
void snapmla_compare_lse_bounds(const float *lse, const double *ref_lse, const double *bound,
                                size_t rows, snapmla_comparison *c);

/* 1 when the comparison is within rel_l2_tol (judged on rel_l2, or on
 * rel_l2_exact when exact is set) and lse_tol, with no NaN, no unwritten
 * output and no LSE mismatch. */
int snapmla_comparison_passed(const snapmla_comparison *c, int exact, double rel_l2_tol,
                              double lse_tol);

/* One line, e.g. "rel_l2 3.1e-03 (exact 3.4e-03) max_abs 2.0e-02 nan 0
 * unwritten 0 lse_max_abs 1.2e-06 lse_mismatch 0 (tol 1e-02, 1e-04)",
 * cut to size. Returns buf. */
char *snapmla_comparison_summary(const snapmla_comparison *c, double rel_l2_tol,
                                 double lse_tol, char *buf, size_t size);

#endif
