/* The float64 host reference of MLA decode (absorbed, MQA form) and of the
 * split-KV merge: what every GPU result is judged against. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bf16.h"
#include "cache_layout.h"
#include "decode_problem.h"
#include "error.h"
#include "fp8.h"

/* Query row r as the kernel sees it. BF16 as given, except that the FP8
 * path (target.compute fp8) quantizes the latent part to e4m3 with one scale
 * per row (amax / 448 rounded up to a power of two), in the kernel's own float operations: that rounding
 * is part of the function it computes, so the reference does it too and the
 * check is left with P's e4m3 rounding alone (docs/fidelity.md). */
static void load_query(const snapmla_problem *p, size_t row, double *q)
{
    const snapmla_variant *v = &p->variant;
    int L = v->latent_dim, W = v->latent_dim + v->rope_dim;
    for (int c = 0; c < W; ++c)
        q[c] = snapmla_bf16_to_f32(p->q[row * W + c]);
    if (v->compute != SNAPMLA_COMPUTE_FP8)
        return;
    float amax = 0.f;
    for (int c = 0; c < L; ++c)
        amax = fmaxf(amax, fabsf((float)q[c]));
    float scale = snapmla_fp8_group_scale(amax, 1), inv = 1.f / scale;
    for (int c = 0; c < L; ++c)
        q[c] = (double)snapmla_e4m3_to_f32(snapmla_f32_to_e4m3((float)q[c] * inv)) * scale;
}

snapmla_status snapmla_ref_decode(const snapmla_problem *p, double *out, double *lse,
                                  snapmla_error *err)
{
    return snapmla_ref_decode_magnitude(p, out, lse, NULL, err);
}

snapmla_status snapmla_ref_decode_magnitude(const snapmla_problem *p, double *out, double *lse,
                                            double *magnitude, snapmla_error *err)
{
    const snapmla_variant *v = &p->variant;
    int L = v->latent_dim, W = v->latent_dim + v->rope_dim, P = v->page_size;
    int rows = v->q_len * v->q_heads, longest = 0;
    for (int b = 0; b < p->batch; ++b)
        longest = p->seqlens[b] > longest ? p->seqlens[b] : longest;
    /* the request's tokens, dequantized once, then every row reads them */
    double *keys = malloc(((size_t)longest + 1) * W * sizeof *keys);
    double *scores = malloc(((size_t)longest + 1) * sizeof *scores);
    double *q = malloc((size_t)W * sizeof *q);
    if (!keys || !scores || !q) {
        free(keys), free(scores), free(q);
        return snapmla_fail(err, SNAPMLA_ERR_NOMEM, "reference: out of host memory");
    }
    snapmla_layout layout = snapmla_layout_of(v);
    for (int b = 0; b < p->batch; ++b) {
        int n = p->seqlens[b];
        const int32_t *table = p->block_table + (size_t)b * p->block_table_stride;
        for (int t = 0; t < n; ++t)
            snapmla_layout_load(&layout, p->cache + (size_t)table[t / P] * (size_t)p->page_stride,
                                t % P, keys + (size_t)t * W);
        for (int r = 0; r < rows; ++r) {
            size_t row = (size_t)b * rows + r;
            int visible = n;
            if (v->causal) {
                int position = n - v->q_len + r / v->q_heads;   /* this query token's place */
                visible = position + 1 < n ? position + 1 : n;
                visible = visible < 0 ? 0 : visible;
            }
            double *o = out + row * L;
            memset(o, 0, (size_t)L * sizeof *o);
            if (magnitude)
                magnitude[row] = 0;
            if (visible == 0) {
                lse[row] = INFINITY;
                continue;
            }
            load_query(p, row, q);
            double m = -INFINITY;
            for (int t = 0; t < visible; ++t) {
                const double *k = keys + (size_t)t * W;
                double dot = 0;
                for (int c = 0; c < W; ++c)
                    dot += q[c] * k[c];
                scores[t] = dot * (double)p->softmax_scale;
                if (magnitude) {   /* only the FP8 check asks: a second pass, not a cost for all */
                    double size = 0;
                    for (int c = 0; c < W; ++c)
                        size += fabs(q[c] * k[c]);
                    magnitude[row] = fmax(magnitude[row], size * (double)p->softmax_scale);
                }
                m = fmax(m, scores[t]);
            }
            double sum = 0;
            for (int t = 0; t < visible; ++t)
                sum += (scores[t] = exp(scores[t] - m));
            for (int t = 0; t < visible; ++t) {
                const double *value = keys + (size_t)t * W;
                double weight = scores[t] / sum;
                for (int c = 0; c < L; ++c)
                    o[c] += weight * value[c];
            }
            lse[row] = m + log(sum);
        }
    }
    free(keys);
    free(scores);
    free(q);
    return snapmla_ok(err);
}

void snapmla_ref_combine(int batch, int splits, int rows, int latent, const float *o_part,
                         const float *lse_part, const int32_t *split_counts, double *out,
                         double *lse)
{
    for (int b = 0; b < batch; ++b)
        for (int r = 0; r < rows; ++r) {
            int k = split_counts[b] < 1 ? 1 : split_counts[b] > splits ? splits : split_counts[b];
            double m = -INFINITY, sum = 0;
            for (int s = 0; s < k; ++s)
                m = fmax(m, lse_part[((size_t)b * splits + s) * rows + r]);
            double *o = out + ((size_t)b * rows + r) * latent;
            memset(o, 0, (size_t)latent * sizeof *o);
            if (m == -INFINITY) {
                lse[(size_t)b * rows + r] = INFINITY;
                continue;
            }
            for (int s = 0; s < k; ++s)
                sum += exp(lse_part[((size_t)b * splits + s) * rows + r] - m);
            double total = m + log(sum);
            for (int s = 0; s < k; ++s) {
                size_t part = ((size_t)b * splits + s) * rows + r;
                double w = exp(lse_part[part] - total);
                for (int c = 0; c < latent; ++c)
                    o[c] += w * o_part[part * latent + c];
            }
            lse[(size_t)b * rows + r] = total;
        }
}
