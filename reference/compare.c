/* How far a device result lies from the float64 reference: the numbers a
 * GPU check is judged by, and the one line that reports them. */
#include "reference.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void snapmla_compare(const uint16_t *out, const float *lse, const double *ref_out,
                     const double *ref_lse, size_t rows, size_t width,
                     snapmla_comparison *c)
{
    double err2 = 0, exact2 = 0, ref2 = 0;
    memset(c, 0, sizeof *c);
    c->values = rows * width;
    c->rows = rows;
    for (size_t i = 0; i < rows * width; ++i) {
        if (out[i] == SNAPMLA_POISON_BF16) {
            c->unwritten++;
            continue;
        }
        double got = snapmla_bf16_to_f32(out[i]), want = ref_out[i];
        if (!isfinite(got)) {
            c->nan_count++;
            continue;
        }
        /* the output is BF16: what it can be at best is the reference rounded */
        double rounded = snapmla_bf16_to_f32(snapmla_f32_to_bf16((float)want));
        err2 += (got - rounded) * (got - rounded);
        exact2 += (got - want) * (got - want);
        ref2 += want * want;
        c->max_abs = fmax(c->max_abs, fabs(got - want));
    }
    c->rel_l2 = ref2 > 0 ? sqrt(err2 / ref2) : sqrt(err2);
    c->rel_l2_exact = ref2 > 0 ? sqrt(exact2 / ref2) : sqrt(exact2);
    for (size_t r = 0; r < rows; ++r) {
        uint32_t bits;
        memcpy(&bits, &lse[r], 4);
        if (bits == SNAPMLA_POISON_F32)
            c->unwritten++;
        else if (isinf(ref_lse[r]))
            c->lse_mismatch += !(isinf(lse[r]) && lse[r] > 0);
        else if (!isfinite(lse[r]))
            c->nan_count++;
        else
            c->lse_max_abs = fmax(c->lse_max_abs, fabs((double)lse[r] - ref_lse[r]));
    }
}

void snapmla_compare_lse_bounds(const float *lse, const double *ref_lse, const double *bound,
                                size_t rows, snapmla_comparison *c)
{
    c->lse_bound_ratio = 0;
    for (size_t r = 0; r < rows; ++r)
        if (isfinite(lse[r]) && isfinite(ref_lse[r]))
            c->lse_bound_ratio =
                fmax(c->lse_bound_ratio, fabs((double)lse[r] - ref_lse[r]) / bound[r]);
}

int snapmla_comparison_passed(const snapmla_comparison *c, int exact, double rel_l2_tol,
                              double lse_tol)
{
    double error = exact ? c->rel_l2_exact : c->rel_l2;
    return error <= rel_l2_tol && c->lse_max_abs <= lse_tol && c->nan_count == 0 &&
           c->unwritten == 0 && c->lse_mismatch == 0;
}

char *snapmla_comparison_summary(const snapmla_comparison *c, double rel_l2_tol,
                                 double lse_tol, char *buf, size_t size)
{
    if (size == 0)
        return buf;
    snprintf(buf, size,
             "rel_l2 %.1e (exact %.1e) max_abs %.1e nan %ld unwritten %ld lse_max_abs %.1e "
             "lse_mismatch %ld (tol %.0e, %.0e)",
             c->rel_l2, c->rel_l2_exact, c->max_abs, c->nan_count, c->unwritten, c->lse_max_abs,
             c->lse_mismatch, rel_l2_tol, lse_tol);
    return buf;
}
