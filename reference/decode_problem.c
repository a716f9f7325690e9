/* Random decode problems for the GPU checks: the same call an engine makes,
 * with traps (NaN slots, garbage table entries) where a kernel must not look. */
#include "decode_problem.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "bf16.h"
#include "cache_layout.h"
#include "error.h"
#include "parallel.h"

uint64_t snapmla_rng_next(snapmla_rng *r)
{
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double snapmla_rng_normal(snapmla_rng *r)
{
    double u1 = ((double)(snapmla_rng_next(r) >> 11) + 0.5) / 9007199254740992.0;
    double u2 = (double)(snapmla_rng_next(r) >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

uint64_t snapmla_rng_below(snapmla_rng *r, uint64_t n)
{
    return n ? snapmla_rng_next(r) % n : 0;
}

/* An independent generator for item `index` of a seed's problem: its
 * state is a hash of both, so items can be drawn in any order, on any
 * thread, with the same values. */
static snapmla_rng rng_for(uint64_t seed, uint64_t index)
{
    snapmla_rng mix = {seed ^ (index * 0xd6e8feb86659fd93ull)};
    snapmla_rng r = {snapmla_rng_next(&mix)};
    return r;
}

/* The cache's tokens, each from its own generator (rng_for(seed, token's
 * global index)), written where the block table puts them. */
typedef struct token_fill {
    snapmla_problem *p;
    const snapmla_layout *layout;
    const int64_t *first;   /* [batch + 1]: the global index of each request's token 0 */
    atomic_int out_of_memory;
} token_fill;

static void fill_tokens(void *context, size_t begin, size_t end)
{
    token_fill *f = context;
    snapmla_problem *p = f->p;
    const snapmla_variant *v = &p->variant;
    int P = v->page_size;
    /* (+ 2: never a request for 0 bytes) */
    uint16_t *latent = malloc((size_t)v->latent_dim * 2 + 2), *rope = malloc((size_t)v->rope_dim * 2 + 2);
    if (!latent || !rope) {
        atomic_store(&f->out_of_memory, 1);
        free(latent), free(rope);
        return;
    }
    int b = 0;
    for (size_t i = begin; i < end; ++i) {
        while ((int64_t)i >= f->first[b + 1])
            ++b;
        int t = (int)((int64_t)i - f->first[b]);
        snapmla_rng r = rng_for(p->seed, (uint64_t)i);
        /* per-token sizes differ, as real latents do, to exercise FP8 scales;
         * and per 128-channel group by up to 8x, so that a token's
         * fp8_per_tile128 scales differ by up to three powers of two */
        double size = exp(0.5 * snapmla_rng_normal(&r)), group_size = size;
        for (int c = 0; c < v->latent_dim; ++c) {
            if (c % 128 == 0)
                group_size = size * ldexp(1.0, -(int)snapmla_rng_below(&r, 4));
            latent[c] = snapmla_f32_to_bf16((float)(group_size * snapmla_rng_normal(&r)));
        }
        for (int c = 0; c < v->rope_dim; ++c)
            rope[c] = snapmla_f32_to_bf16((float)snapmla_rng_normal(&r));
        const int32_t *table = p->block_table + (size_t)b * p->block_table_stride;
        unsigned char *page = p->cache + (size_t)table[t / P] * (size_t)p->page_stride;
        snapmla_layout_store(f->layout, page, t % P, latent, rope);
    }
    free(latent);
    free(rope);
}

void snapmla_problem_free(snapmla_problem *p)
{
    free(p->q);
    free(p->cache);
    free(p->block_table);
    free(p->seqlens);
    memset(p, 0, sizeof *p);
}

snapmla_status snapmla_problem_make(const snapmla_variant *v, int batch, const int32_t *seqlens,
                                    int64_t page_stride, uint64_t seed, snapmla_problem *p,
                                    snapmla_error *err)
{
    memset(p, 0, sizeof *p);
    p->variant = *v;
    p->batch = batch;
    p->seed = seed;
    int P = v->page_size, W = v->latent_dim + v->rope_dim;
    int64_t natural = (int64_t)snapmla_cache_page_bytes(v);
    p->page_stride = page_stride ? page_stride : natural;
    int64_t used_pages = 0;
    p->block_table_stride = 1;
    for (int b = 0; b < batch; ++b) {
        int pages = (seqlens[b] + P - 1) / P;
        used_pages += pages;
        if (pages > p->block_table_stride)
            p->block_table_stride = pages;
    }
    snapmla_rng r = {seed};
    p->num_pages = used_pages + 1 + (int64_t)snapmla_rng_below(&r, 4);   /* spare, poisoned */
    size_t rows = (size_t)batch * v->q_len * v->q_heads;
    p->q = malloc(rows * W * 2);
    p->cache = malloc((size_t)(p->num_pages * p->page_stride));
    p->block_table = malloc((size_t)batch * p->block_table_stride * 4);
    p->seqlens = malloc((size_t)batch * 4);
    int64_t *order = malloc((size_t)p->num_pages * sizeof *order);
    int64_t *first = malloc(((size_t)batch + 1) * sizeof *first);
    if (!p->q || !p->cache || !p->block_table || !p->seqlens || !order || !first) {
        free(order), free(first);
        snapmla_problem_free(p);
        return snapmla_fail(err, SNAPMLA_ERR_NOMEM, "problem: out of host memory");
    }
    memcpy(p->seqlens, seqlens, (size_t)batch * 4);
    p->softmax_scale = (float)(1.0 / sqrt((double)W));
    for (size_t i = 0; i < rows * W; ++i)
        p->q[i] = snapmla_f32_to_bf16((float)snapmla_rng_normal(&r));

    /* 0xff bytes are NaN as BF16, e4m3 and fp32 alike. */
    memset(p->cache, 0xff, (size_t)(p->num_pages * p->page_stride));
    for (int64_t i = 0; i < p->num_pages; ++i)
        order[i] = i;
    for (int64_t i = p->num_pages - 1; i > 0; --i) {
        int64_t j = (int64_t)snapmla_rng_below(&r, (uint64_t)i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    int64_t next_page = 0;
    first[0] = 0;
    for (int b = 0; b < batch; ++b) {
        int32_t *table = p->block_table + (size_t)b * p->block_table_stride;
        int pages = (seqlens[b] + P - 1) / P;
        for (int i = 0; i < p->block_table_stride; ++i)   /* never to be read */
            table[i] = i < pages ? (int32_t)order[next_page++] : (i % 2 ? -1 : 0x7fffffff);
        first[b + 1] = first[b] + seqlens[b];
    }
    /* 2^20 tokens are ~6e8 normal draws: on every core, one generator a token */
    snapmla_layout layout = snapmla_layout_of(v);
    token_fill fill = {.p = p, .layout = &layout, .first = first};
    atomic_init(&fill.out_of_memory, 0);
    snapmla_parallel_for((size_t)first[batch], 2048, fill_tokens, &fill);
    free(order);
    free(first);
    if (atomic_load(&fill.out_of_memory)) {
        snapmla_problem_free(p);
        return snapmla_fail(err, SNAPMLA_ERR_NOMEM, "problem: out of host memory");
    }
    return snapmla_ok(err);
}
