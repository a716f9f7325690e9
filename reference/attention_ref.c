/* The float64 host reference of MLA decode (absorbed, MQA form) and of the
 * split-KV merge: what every GPU result is judged against. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "bf16.h"
#include "cache_layout.h"
#include "decode_problem.h"
#include "error.h"
#include "fp8.h"
#include "parallel.h"

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

/* One request's keys (dequantized once) and where its rows' results go. */
typedef struct request_job {
    const snapmla_problem *p;
    const snapmla_layout *layout;
    int b, n, rows;
    double *keys;
    double *out, *lse, *magnitude;
    atomic_int out_of_memory;
} request_job;

/* Row r of request b: softmax over the tokens it sees, the weighted sum of
 * their latents, its LSE and (when asked) its score magnitude. */
static void reference_row(const request_job *job, int r, double *q, double *scores)
{
    const snapmla_problem *p = job->p;
    const snapmla_variant *v = &p->variant;
    int L = v->latent_dim, W = v->latent_dim + v->rope_dim, n = job->n;
    size_t row = (size_t)job->b * job->rows + r;
    int visible = n;
    if (v->causal) {
        int position = n - v->q_len + r / v->q_heads;   /* this query token's place */
        visible = position + 1 < n ? position + 1 : n;
        visible = visible < 0 ? 0 : visible;
    }
    double *o = job->out + row * L;
    memset(o, 0, (size_t)L * sizeof *o);
    if (job->magnitude)
        job->magnitude[row] = 0;
    if (visible == 0) {
        job->lse[row] = INFINITY;
        return;
    }
    load_query(p, row, q);
    double m = -INFINITY;
    for (int t = 0; t < visible; ++t) {
        const double *k = job->keys + (size_t)t * W;
        double dot = 0;
        for (int c = 0; c < W; ++c)
            dot += q[c] * k[c];
        scores[t] = dot * (double)p->softmax_scale;
        if (job->magnitude) {   /* only the FP8 check asks: a second pass, not a cost for all */
            double size = 0;
            for (int c = 0; c < W; ++c)
                size += fabs(q[c] * k[c]);
            job->magnitude[row] = fmax(job->magnitude[row], size * (double)p->softmax_scale);
        }
        m = fmax(m, scores[t]);
    }
    double sum = 0;
    for (int t = 0; t < visible; ++t)
        sum += (scores[t] = exp(scores[t] - m));
    for (int t = 0; t < visible; ++t) {
        const double *value = job->keys + (size_t)t * W;
        double weight = scores[t] / sum;
        for (int c = 0; c < L; ++c)
            o[c] += weight * value[c];
    }
    job->lse[row] = m + log(sum);
}

/* Tokens [begin, end) of the request, dequantized into keys. */
static void load_keys(void *context, size_t begin, size_t end)
{
    request_job *job = context;
    const snapmla_problem *p = job->p;
    int W = p->variant.latent_dim + p->variant.rope_dim, P = p->variant.page_size;
    const int32_t *table = p->block_table + (size_t)job->b * p->block_table_stride;
    for (size_t t = begin; t < end; ++t)
        snapmla_layout_load(job->layout, p->cache + (size_t)table[t / P] * (size_t)p->page_stride,
                            (int)(t % P), job->keys + t * W);
}

/* Rows [begin, end) of the request, with this chunk's own buffers. */
static void reference_rows(void *context, size_t begin, size_t end)
{
    request_job *job = context;
    int W = job->p->variant.latent_dim + job->p->variant.rope_dim;
    double *q = malloc((size_t)W * sizeof *q);
    double *scores = malloc(((size_t)job->n + 1) * sizeof *scores);
    if (!q || !scores)
        atomic_store(&job->out_of_memory, 1);
    else
        for (size_t r = begin; r < end; ++r)
            reference_row(job, (int)r, q, scores);
    free(q);
    free(scores);
}

snapmla_status snapmla_ref_decode_magnitude(const snapmla_problem *p, double *out, double *lse,
                                            double *magnitude, snapmla_error *err)
{
    const snapmla_variant *v = &p->variant;
    int W = v->latent_dim + v->rope_dim;
    int rows = v->q_len * v->q_heads, longest = 0;
    for (int b = 0; b < p->batch; ++b)
        longest = p->seqlens[b] > longest ? p->seqlens[b] : longest;
    /* the request's tokens, dequantized once, then every row reads them */
    double *keys = malloc(((size_t)longest + 1) * W * sizeof *keys);
    if (!keys)
        return snapmla_fail(err, SNAPMLA_ERR_NOMEM, "reference: out of host memory");
    snapmla_layout layout = snapmla_layout_of(v);
    int out_of_memory = 0;
    for (int b = 0; b < p->batch && !out_of_memory; ++b) {
        request_job job = {.p = p, .layout = &layout, .b = b, .n = p->seqlens[b], .rows = rows,
                           .keys = keys, .out = out, .lse = lse, .magnitude = magnitude};
        atomic_init(&job.out_of_memory, 0);
        snapmla_parallel_for((size_t)job.n, 4096, load_keys, &job);
        /* a row is n x (latent + rope) multiply-adds, twice: threads pay off
         * past about a million of them */
        size_t row_work = (size_t)job.n * W + 1;
        snapmla_parallel_for((size_t)rows, row_work >= 1000000 ? 1 : 1000000 / row_work, reference_rows, &job);
        out_of_memory = atomic_load(&job.out_of_memory);
    }
    free(keys);
    return out_of_memory ? snapmla_fail(err, SNAPMLA_ERR_NOMEM, "reference: out of host memory") : snapmla_ok(err);
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
