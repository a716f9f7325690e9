/* The float64 host reference of MLA decode (absorbed, MQA form) and of the
 * split-KV merge: what every GPU result is judged against. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bf16.h"
#include "cache_layout.h"
#include "decode_problem.h"
#include "error.h"
#include "fp8.h"

/* The reference shares a request's rows among up to this many threads. */
enum { REFERENCE_MAX_THREADS = 32 };

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

/* One request's keys (dequantized once) and where its rows' results go;
 * the rows are shared out among threads, each with its own buffers. */
typedef struct request_job {
    const snapmla_problem *p;
    int b, n, rows, workers;
    const double *keys;
    double *out, *lse, *magnitude;
} request_job;

typedef struct row_worker {
    const request_job *job;
    int first;                 /* rows first, first + workers, ... */
    double *q, *scores;        /* latent+rope, longest+1 */
    pthread_t thread;
} row_worker;

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

static void *row_worker_main(void *arg)
{
    row_worker *w = arg;
    for (int r = w->first; r < w->job->rows; r += w->job->workers)
        reference_row(w->job, r, w->q, w->scores);
    return NULL;
}

/* A request's rows on `count` threads (the first on this one). Every row is
 * computed alone in the same order, so the result does not depend on the
 * thread count. A thread that cannot start leaves its rows to this one. */
static void run_rows(request_job *job, row_worker *workers, int count)
{
    job->workers = count;
    int started[REFERENCE_MAX_THREADS] = {0};
    for (int i = 0; i < count; ++i) {
        workers[i].job = job;
        workers[i].first = i;
        started[i] = i > 0 && pthread_create(&workers[i].thread, NULL, row_worker_main, &workers[i]) == 0;
    }
    for (int i = 0; i < count; ++i)
        if (!started[i])
            row_worker_main(&workers[i]);
    for (int i = 1; i < count; ++i)
        if (started[i])
            pthread_join(workers[i].thread, NULL);
}

snapmla_status snapmla_ref_decode_magnitude(const snapmla_problem *p, double *out, double *lse,
                                            double *magnitude, snapmla_error *err)
{
    const snapmla_variant *v = &p->variant;
    int W = v->latent_dim + v->rope_dim, P = v->page_size;
    int rows = v->q_len * v->q_heads, longest = 0;
    for (int b = 0; b < p->batch; ++b)
        longest = p->seqlens[b] > longest ? p->seqlens[b] : longest;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = cpus < 1 ? 1 : cpus > REFERENCE_MAX_THREADS ? REFERENCE_MAX_THREADS : (int)cpus;
    threads = threads > rows ? rows : threads;
    /* the request's tokens, dequantized once, then every row reads them */
    double *keys = malloc(((size_t)longest + 1) * W * sizeof *keys);
    row_worker workers[REFERENCE_MAX_THREADS] = {{0}};
    int ok = keys != NULL;
    for (int i = 0; i < threads; ++i) {
        workers[i].q = malloc((size_t)W * sizeof *workers[i].q);
        workers[i].scores = malloc(((size_t)longest + 1) * sizeof *workers[i].scores);
        ok = ok && workers[i].q && workers[i].scores;
    }
    if (ok) {
        snapmla_layout layout = snapmla_layout_of(v);
        for (int b = 0; b < p->batch; ++b) {
            int n = p->seqlens[b];
            const int32_t *table = p->block_table + (size_t)b * p->block_table_stride;
            for (int t = 0; t < n; ++t)
                snapmla_layout_load(&layout, p->cache + (size_t)table[t / P] * (size_t)p->page_stride,
                                    t % P, keys + (size_t)t * W);
            request_job job = {.p = p, .b = b, .n = n, .rows = rows, .keys = keys,
                               .out = out, .lse = lse, .magnitude = magnitude};
            /* threads only pay off past about a million multiply-adds */
            int count = (double)rows * n * W < 1e6 ? 1 : threads;
            run_rows(&job, workers, count);
        }
    }
    free(keys);
    for (int i = 0; i < threads; ++i)
        free(workers[i].q), free(workers[i].scores);
    return ok ? snapmla_ok(err) : snapmla_fail(err, SNAPMLA_ERR_NOMEM, "reference: out of host memory");
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
