/* Tests of the host reference the GPU checks trust: BF16 rounding against an
 * independent rule, the float64 decode against a naive long-double one that
 * reads the cache bytes by the documented layout, closed forms, the random
 * problem's traps (poison, block tables), combine against decode split by
 * hand, the append reference and the comparison metrics.
 * Random data is fresh each run; the seed is printed, SNAPMLA_TEST_SEED
 * replays it. */
#include <check.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "parallel.h"
#include "reference.h"
#include "run_suite.h"

static uint64_t g_seed;   /* set once in main, before the runner forks */

static snapmla_variant variant_of(int latent, int rope, int heads, int q_len, int causal,
                                  int page, snapmla_rope_layout layout)
{
    snapmla_variant v;
    memset(&v, 0, sizeof v);
    v.kernel = SNAPMLA_KERNEL_MLA_DECODE;
    v.cache_format = SNAPMLA_FORMAT_BF16;
    v.latent_dim = latent;
    v.rope_dim = rope;
    v.q_heads = heads;
    v.q_len = q_len;
    v.causal = causal;
    v.page_size = page;
    v.rope_layout = layout;
    return v;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* ---- an independent reading of the BF16 cache ---------------------------- */

/* Byte offset, inside its page, of element c (latent then RoPE) of the token
 * in slot o: the rule of snapmla.h / docs, written out again. */
static size_t bf16_offset(const snapmla_variant *v, int o, int c)
{
    size_t L = (size_t)v->latent_dim, R = (size_t)v->rope_dim, P = (size_t)v->page_size;
    if (v->rope_layout == SNAPMLA_ROPE_INTERLEAVED)
        return ((size_t)o * (L + R) + (size_t)c) * 2;
    if ((size_t)c < L)
        return ((size_t)o * L + (size_t)c) * 2;
    return P * L * 2 + ((size_t)o * R + ((size_t)c - L)) * 2;
}

static float bf16_le(const unsigned char *at)
{
    return snapmla_bf16_to_f32((uint16_t)(at[0] | at[1] << 8));
}

/* Token t of request b, all latent+rope values. */
static void token(const snapmla_problem *p, int b, int t, long double *values)
{
    const snapmla_variant *v = &p->variant;
    int W = v->latent_dim + v->rope_dim;
    int32_t page = p->block_table[(size_t)b * p->block_table_stride + t / v->page_size];
    const unsigned char *base = p->cache + (size_t)page * (size_t)p->page_stride;
    if (v->cache_format == SNAPMLA_FORMAT_BF16) {
        for (int c = 0; c < W; ++c)
            values[c] = bf16_le(base + bf16_offset(v, t % v->page_size, c));
        return;
    }
    /* FP8 formats: dequantized by the layout code itself (tested in test_quant) */
    double d[1024];
    snapmla_layout layout = snapmla_layout_of(v);
    snapmla_layout_load(&layout, base, t % v->page_size, d);
    for (int c = 0; c < W; ++c)
        values[c] = d[c];
}

/* Tokens row r of request b sees. */
static int visible_tokens(const snapmla_variant *v, int n, int r)
{
    if (!v->causal)
        return n;
    int last = n - v->q_len + r / v->q_heads;
    return last + 1 < 0 ? 0 : last + 1;
}

/* Two-pass softmax in long double, token by token, over tokens [t0, t1) of
 * what the row sees; out 0 and lse -inf when that range is empty (a
 * split's convention; the caller maps it to +inf for a whole row). */
static void naive_range(const snapmla_problem *p, int b, int r, int t0, int t1,
                        long double *out, long double *lse)
{
    const snapmla_variant *v = &p->variant;
    int L = v->latent_dim, W = L + v->rope_dim, rows = v->q_len * v->q_heads;
    int seen = visible_tokens(v, p->seqlens[b], r);
    t1 = t1 < seen ? t1 : seen;
    for (int c = 0; c < L; ++c)
        out[c] = 0;
    *lse = -INFINITY;
    if (t1 <= t0)
        return;
    long double *k = xcalloc((size_t)W, sizeof *k), *s = xcalloc((size_t)(t1 - t0), sizeof *s);
    const uint16_t *q = p->q + ((size_t)b * rows + r) * W;
    long double m = -INFINITY, sum = 0;
    for (int t = t0; t < t1; ++t) {
        token(p, b, t, k);
        long double dot = 0;
        for (int c = 0; c < W; ++c)
            dot += (long double)snapmla_bf16_to_f32(q[c]) * k[c];
        s[t - t0] = dot * p->softmax_scale;
        m = s[t - t0] > m ? s[t - t0] : m;
    }
    for (int t = t0; t < t1; ++t)
        sum += expl(s[t - t0] - m);
    for (int t = t0; t < t1; ++t) {
        token(p, b, t, k);
        long double w = expl(s[t - t0] - m) / sum;
        for (int c = 0; c < L; ++c)
            out[c] += w * k[c];
    }
    *lse = m + logl(sum);
    free(k);
    free(s);
}

/* The whole decode, naive. */
static void naive_decode(const snapmla_problem *p, long double *out, long double *lse)
{
    const snapmla_variant *v = &p->variant;
    int rows = v->q_len * v->q_heads;
    for (int b = 0; b < p->batch; ++b)
        for (int r = 0; r < rows; ++r) {
            size_t row = (size_t)b * rows + r;
            naive_range(p, b, r, 0, p->seqlens[b], out + row * v->latent_dim, lse + row);
            if (isinf(lse[row]))
                lse[row] = INFINITY;
        }
}

typedef struct decoded {
    size_t rows, width;
    double *out, *lse;
} decoded;

static decoded decode(const snapmla_problem *p)
{
    decoded d = {(size_t)p->batch * p->variant.q_len * p->variant.q_heads,
                 (size_t)p->variant.latent_dim, NULL, NULL};
    d.out = xcalloc(d.rows * d.width, sizeof *d.out);
    d.lse = xcalloc(d.rows, sizeof *d.lse);
    snapmla_error err;
    ck_assert_msg(snapmla_ref_decode(p, d.out, d.lse, &err) == SNAPMLA_OK, "%s", err.message);
    return d;
}

static void decoded_free(decoded *d)
{
    free(d->out);
    free(d->lse);
}

static snapmla_problem make(const snapmla_variant *v, int batch, const int32_t *seqlens,
                            int64_t page_stride, uint64_t seed)
{
    snapmla_problem p;
    snapmla_error err;
    ck_assert_msg(snapmla_problem_make(v, batch, seqlens, page_stride, seed, &p, &err) ==
                      SNAPMLA_OK,
                  "%s", err.message);
    return p;
}

/* ---- BF16 ------------------------------------------------------------------ */

/* Round to nearest even by the definition: the two neighbours as doubles,
 * Inf standing at 2^128 (where the next binade would start). */
static uint16_t bf16_rule(float x)
{
    uint32_t bits;
    memcpy(&bits, &x, 4);
    uint16_t sign = (uint16_t)(bits >> 16 & 0x8000), low = (uint16_t)(bits >> 16 & 0x7fff);
    if (low >= 0x7f80)
        return (uint16_t)(bits >> 16);   /* Inf (NaN is not asked of this rule) */
    double a = fabs((double)x);
    double below = snapmla_bf16_to_f32(low);
    double above = low + 1 == 0x7f80 ? 0x1p128 : snapmla_bf16_to_f32((uint16_t)(low + 1));
    uint16_t pick;
    if (a - below < above - a)
        pick = low;
    else if (a - below > above - a)
        pick = (uint16_t)(low + 1);
    else
        pick = (low & 1) ? (uint16_t)(low + 1) : low;
    return (uint16_t)(sign | pick);
}

START_TEST(bf16_round_trips_every_value)
{
    for (uint32_t b = 0; b < 65536; ++b) {
        float f = snapmla_bf16_to_f32((uint16_t)b);
        uint32_t bits;
        memcpy(&bits, &f, 4);
        ck_assert_uint_eq(bits, b << 16);   /* widening is exact */
        if ((b & 0x7fff) > 0x7f80)
            continue;                       /* NaN: below */
        ck_assert_msg(snapmla_f32_to_bf16(f) == b, "%#x", b);
    }
}
END_TEST

START_TEST(bf16_rounds_to_nearest_even)
{
    ck_assert_uint_eq(snapmla_f32_to_bf16(1.00390625f), 0x3f80);    /* tie: down to even 1.0 */
    ck_assert_uint_eq(snapmla_f32_to_bf16(1.01171875f), 0x3f82);    /* tie: up to even 1.015625 */
    ck_assert_uint_eq(snapmla_f32_to_bf16(0x1.010002p0f), 0x3f81);  /* one ulp above the tie */
    ck_assert_uint_eq(snapmla_f32_to_bf16(-1.00390625f), 0xbf80);
    ck_assert_uint_eq(snapmla_f32_to_bf16(3.4e38f), 0x7f80);        /* overflow -> Inf */
    ck_assert_uint_eq(snapmla_f32_to_bf16(FLT_MAX), 0x7f80);
    ck_assert_uint_eq(snapmla_f32_to_bf16(-FLT_MAX), 0xff80);
    ck_assert_uint_eq(snapmla_f32_to_bf16(0x1.fep127f), 0x7f7f);     /* max finite bf16 */
    ck_assert_uint_eq(snapmla_f32_to_bf16(INFINITY), 0x7f80);
    ck_assert_uint_eq(snapmla_f32_to_bf16(-INFINITY), 0xff80);
    ck_assert_uint_eq(snapmla_f32_to_bf16(0x1p-149f), 0x0000);       /* subnormals kept, rounded */
    ck_assert_uint_eq(snapmla_f32_to_bf16(0x1p-133f), 0x0001);
    ck_assert_uint_eq(snapmla_f32_to_bf16(-0.0f), 0x8000);
    /* every float of a pseudo-random sweep, and every exponent's ties */
    snapmla_rng r = {g_seed};
    for (int i = 0; i < 2000000; ++i) {
        uint32_t bits = (uint32_t)snapmla_rng_next(&r);
        if (i % 4 == 1)
            bits = (bits & 0xffff0000u) | 0x8000u;   /* exact tie */
        else if (i % 4 == 2)
            bits = (bits & 0xffff0000u) | (0x8000u + (bits & 1 ? 1u : -1u));
        float f;
        memcpy(&f, &bits, 4);
        if (isnan(f))
            continue;
        ck_assert_msg(snapmla_f32_to_bf16(f) == bf16_rule(f), "%#x: %#x want %#x (seed %" PRIu64 ")",
                      bits, snapmla_f32_to_bf16(f), bf16_rule(f), g_seed);
    }
}
END_TEST

START_TEST(bf16_nan_stays_quiet_nan)
{
    const uint32_t nans[] = {0x7fc00000u, 0x7f800001u, 0x7f800100u, 0x7fbfffffu, 0xff800001u,
                             0xffc00000u, 0x7fffffffu, 0x7f810000u};
    for (size_t i = 0; i < sizeof nans / sizeof nans[0]; ++i) {
        float f;
        memcpy(&f, &nans[i], 4);
        uint16_t h = snapmla_f32_to_bf16(f);
        ck_assert_msg((h & 0x7fff) > 0x7f80, "%#x -> %#x not NaN", nans[i], h);
        ck_assert_msg(h & 0x0040, "%#x -> %#x not quiet", nans[i], h);
        ck_assert_uint_eq(h & 0x8000, nans[i] >> 16 & 0x8000);
        ck_assert(isnan(snapmla_bf16_to_f32(h)));
    }
}
END_TEST

/* ---- decode against the naive reference ----------------------------------- */

typedef struct decode_case {
    int latent, rope, heads, q_len, causal, page;
    snapmla_rope_layout layout;
    snapmla_cache_format format;
    int64_t stride_pad;   /* page_stride = natural + pad (0: natural) */
    int batch;
    int32_t seqlens[5];
} decode_case;

static const decode_case decode_cases[] = {
    {64, 16, 2, 1, 0, 4, SNAPMLA_ROPE_INTERLEAVED, SNAPMLA_FORMAT_BF16, 0, 3, {0, 1, 9}},
    {64, 16, 3, 3, 1, 4, SNAPMLA_ROPE_INTERLEAVED, SNAPMLA_FORMAT_BF16, 0, 4, {1, 2, 3, 10}},
    {64, 16, 3, 3, 0, 4, SNAPMLA_ROPE_PLANAR, SNAPMLA_FORMAT_BF16, 0, 4, {1, 2, 3, 10}},
    {32, 8, 1, 4, 1, 1, SNAPMLA_ROPE_PLANAR, SNAPMLA_FORMAT_BF16, 6, 3, {5, 0, 4}},
    {128, 32, 5, 2, 1, 16, SNAPMLA_ROPE_INTERLEAVED, SNAPMLA_FORMAT_BF16, 64, 5, {33, 16, 17, 1, 70}},
    {128, 32, 4, 2, 1, 16, SNAPMLA_ROPE_PLANAR, SNAPMLA_FORMAT_BF16, 130, 2, {47, 15}},
    {512, 64, 2, 1, 0, 64, SNAPMLA_ROPE_INTERLEAVED, SNAPMLA_FORMAT_BF16, 0, 2, {130, 64}},
    {512, 64, 3, 2, 1, 64, SNAPMLA_ROPE_PLANAR, SNAPMLA_FORMAT_BF16, 0, 2, {65, 3}},
    {512, 64, 2, 2, 1, 16, SNAPMLA_ROPE_INTERLEAVED, SNAPMLA_FORMAT_FP8_PER_TOKEN, 0, 2, {40, 7}},
    {512, 64, 2, 1, 0, 16, SNAPMLA_ROPE_INTERLEAVED, SNAPMLA_FORMAT_FP8_PER_TILE128, 0, 2, {21, 0}},
};
#define DECODE_CASES ((int)(sizeof decode_cases / sizeof decode_cases[0]))

START_TEST(decode_matches_naive)
{
    const decode_case *k = &decode_cases[_i];
    snapmla_variant v = variant_of(k->latent, k->rope, k->heads, k->q_len, k->causal, k->page,
                                   k->layout);
    v.cache_format = k->format;
    int64_t stride = k->stride_pad ? (int64_t)snapmla_cache_page_bytes(&v) + k->stride_pad : 0;
    uint64_t seed = g_seed + (uint64_t)_i;
    snapmla_problem p = make(&v, k->batch, k->seqlens, stride, seed);
    decoded d = decode(&p);
    long double *out = xcalloc(d.rows * d.width, sizeof *out), *lse = xcalloc(d.rows, sizeof *lse);
    naive_decode(&p, out, lse);
    for (size_t r = 0; r < d.rows; ++r) {
        if (isinf(lse[r])) {
            ck_assert_msg(isinf(d.lse[r]) && d.lse[r] > 0, "case %d row %zu: lse %g (seed %" PRIu64 ")",
                          _i, r, d.lse[r], seed);
        } else {
            ck_assert_msg(fabsl(d.lse[r] - lse[r]) <= 1e-12L * (1 + fabsl(lse[r])),
                          "case %d row %zu: lse %.17g want %.17Lg (seed %" PRIu64 ")", _i, r,
                          d.lse[r], lse[r], seed);
        }
        for (size_t c = 0; c < d.width; ++c) {
            long double want = out[r * d.width + c];
            ck_assert_msg(fabsl(d.out[r * d.width + c] - want) <= 1e-12L * (1 + fabsl(want)),
                          "case %d row %zu col %zu: %.17g want %.17Lg (seed %" PRIu64 ")", _i, r,
                          c, d.out[r * d.width + c], want, seed);
        }
    }
    free(out);
    free(lse);
    decoded_free(&d);
    snapmla_problem_free(&p);
}
END_TEST

/* ---- closed forms ---------------------------------------------------------- */

/* softmax_scale * q_row . k */
static long double score(const snapmla_problem *p, size_t row, const long double *k)
{
    int W = p->variant.latent_dim + p->variant.rope_dim;
    long double dot = 0;
    for (int c = 0; c < W; ++c)
        dot += (long double)snapmla_bf16_to_f32(p->q[row * W + c]) * k[c];
    return dot * p->softmax_scale;
}

static void assert_row(const decoded *d, size_t row, const long double *want, long double lse,
                       double tol, const char *what)
{
    ck_assert_msg(fabsl(d->lse[row] - lse) <= tol * (1 + fabsl(lse)), "%s row %zu: lse %.17g want %.17Lg",
                  what, row, d->lse[row], lse);
    for (size_t c = 0; c < d->width; ++c)
        ck_assert_msg(fabsl(d->out[row * d->width + c] - want[c]) <= tol * (1 + fabsl(want[c])),
                      "%s row %zu col %zu: %.17g want %.17Lg", what, row, c,
                      d->out[row * d->width + c], want[c]);
}

static void assert_empty_row(const decoded *d, size_t row)
{
    ck_assert_msg(isinf(d->lse[row]) && d->lse[row] > 0, "row %zu: lse %g, want +inf", row,
                  d->lse[row]);
    for (size_t c = 0; c < d->width; ++c)
        ck_assert_msg(d->out[row * d->width + c] == 0, "row %zu col %zu: %g, want 0", row, c,
                      d->out[row * d->width + c]);
}

START_TEST(zero_query_averages_the_values)
{
    /* q = 0: every score is 0, the softmax is flat: out = mean of the
     * visible V, lse = log(visible) */
    snapmla_variant v = variant_of(64, 16, 2, 2, 1, 4, SNAPMLA_ROPE_INTERLEAVED);
    const int32_t seqlens[] = {7, 1};
    snapmla_problem p = make(&v, 2, seqlens, 0, g_seed);
    memset(p.q, 0, (size_t)2 * 2 * 2 * 80 * 2);
    decoded d = decode(&p);
    long double k[80], mean[64];
    for (int b = 0; b < 2; ++b)
        for (int r = 0; r < 4; ++r) {
            int seen = visible_tokens(&v, seqlens[b], r);
            size_t row = (size_t)b * 4 + r;
            if (seen == 0) {
                assert_empty_row(&d, row);
                continue;
            }
            memset(mean, 0, sizeof mean);
            for (int t = 0; t < seen; ++t) {
                token(&p, b, t, k);
                for (int c = 0; c < 64; ++c)
                    mean[c] += k[c] / seen;
            }
            assert_row(&d, row, mean, logl(seen), 1e-13, "zero query");
        }
    decoded_free(&d);
    snapmla_problem_free(&p);
}
END_TEST

START_TEST(equal_keys_give_that_value)
{
    /* every token holds token 0's vector: out = V_0, lse = score + log(n) */
    snapmla_variant v = variant_of(64, 16, 3, 1, 0, 4, SNAPMLA_ROPE_PLANAR);
    const int32_t seqlens[] = {11};
    snapmla_problem p = make(&v, 1, seqlens, 0, g_seed);
    long double k0[80];
    token(&p, 0, 0, k0);
    uint16_t latent[64], rope[16];
    for (int c = 0; c < 64; ++c)
        latent[c] = snapmla_f32_to_bf16((float)k0[c]);
    for (int c = 0; c < 16; ++c)
        rope[c] = snapmla_f32_to_bf16((float)k0[64 + c]);
    snapmla_layout layout = snapmla_layout_of(&v);
    for (int t = 1; t < 11; ++t)
        snapmla_layout_store(&layout, p.cache + (size_t)p.block_table[t / 4] * p.page_stride, t % 4,
                             latent, rope);
    decoded d = decode(&p);
    for (int r = 0; r < 3; ++r)
        assert_row(&d, (size_t)r, k0, score(&p, (size_t)r, k0) + logl(11), 1e-13, "equal keys");
    decoded_free(&d);
    snapmla_problem_free(&p);
}
END_TEST

START_TEST(single_token_and_causal_edges)
{
    /* q_len 3, causal. n = 0: all empty. n = 1: query tokens 0 and 1 see
     * nothing, token 2 sees token 0 (out = V_0, lse = its score). n = 2:
     * token 0 sees nothing, token 1 sees token 0 only. */
    snapmla_variant v = variant_of(64, 16, 2, 3, 1, 4, SNAPMLA_ROPE_INTERLEAVED);
    const int32_t seqlens[] = {0, 1, 2};
    snapmla_problem p = make(&v, 3, seqlens, 0, g_seed);
    decoded d = decode(&p);
    long double k0[80];
    for (int r = 0; r < 6; ++r)
        assert_empty_row(&d, (size_t)r);
    for (int b = 1; b < 3; ++b) {
        token(&p, b, 0, k0);
        for (int r = 0; r < 6; ++r) {
            size_t row = (size_t)b * 6 + r;
            int query = r / 2;
            if (query < 3 - b) {
                assert_empty_row(&d, row);
                continue;
            }
            if (query > 3 - b)
                continue;   /* sees two tokens: the naive comparison covers it */
            assert_row(&d, row, k0, score(&p, row, k0), 1e-13, "single token");
        }
    }
    decoded_free(&d);
    /* without the mask every row of n = 1 sees token 0 */
    v.causal = 0;
    snapmla_problem_free(&p);
    p = make(&v, 3, seqlens, 0, g_seed);
    d = decode(&p);
    token(&p, 1, 0, k0);
    for (int r = 0; r < 6; ++r)
        assert_row(&d, (size_t)6 + r, k0, score(&p, (size_t)6 + r, k0), 1e-13,
                   "non-causal single token");
    for (int r = 0; r < 6; ++r)
        assert_empty_row(&d, (size_t)r);
    decoded_free(&d);
    snapmla_problem_free(&p);
}
END_TEST

START_TEST(layouts_and_strides_agree)
{
    /* the same seed writes the same logical data whatever the layout and the
     * page stride: the results must be identical to the bit */
    const int pages[] = {1, 4, 16};
    for (size_t i = 0; i < 3; ++i) {
        snapmla_variant a = variant_of(64, 16, 3, 2, 1, pages[i], SNAPMLA_ROPE_INTERLEAVED), b = a;
        b.rope_layout = SNAPMLA_ROPE_PLANAR;
        const int32_t seqlens[] = {13, 4, 0, 33};
        int64_t natural = (int64_t)snapmla_cache_page_bytes(&a);
        snapmla_problem pa = make(&a, 4, seqlens, 0, g_seed), pb = make(&b, 4, seqlens, natural + 96, g_seed);
        decoded da = decode(&pa), db = decode(&pb);
        ck_assert_int_eq(memcmp(da.out, db.out, da.rows * da.width * sizeof(double)), 0);
        ck_assert_int_eq(memcmp(da.lse, db.lse, da.rows * sizeof(double)), 0);
        decoded_free(&da);
        decoded_free(&db);
        snapmla_problem_free(&pa);
        snapmla_problem_free(&pb);
    }
}
END_TEST

START_TEST(softmax_is_neither_flat_nor_one_hot)
{
    /* the generator's scale: over 512 tokens the largest weight of a row
     * is well above uniform and well below one (the per-token sizes
     * of the generator make it peaky: about 0.5 on average) */
    snapmla_variant v = variant_of(512, 64, 8, 1, 0, 64, SNAPMLA_ROPE_INTERLEAVED);
    const int32_t seqlens[] = {512};
    snapmla_problem p = make(&v, 1, seqlens, 0, g_seed);
    ck_assert(fabsf(p.softmax_scale - 1.f / sqrtf(576.f)) < 1e-7f);
    long double k[576];
    double mean_top = 0;
    for (int r = 0; r < 8; ++r) {
        long double s[512], m = -INFINITY, sum = 0;
        for (int t = 0; t < 512; ++t) {
            token(&p, 0, t, k);
            long double dot = 0;
            for (int c = 0; c < 576; ++c)
                dot += (long double)snapmla_bf16_to_f32(p.q[r * 576 + c]) * k[c];
            s[t] = dot * p.softmax_scale;
            m = s[t] > m ? s[t] : m;
        }
        for (int t = 0; t < 512; ++t)
            sum += expl(s[t] - m);
        mean_top += (double)(1 / sum) / 8;
    }
    ck_assert_msg(mean_top > 4.0 / 512 && mean_top < 0.9, "mean top weight %g (seed %" PRIu64 ")",
                  mean_top, g_seed);
    snapmla_problem_free(&p);
}
END_TEST

/* ---- the problem generator ------------------------------------------------- */

START_TEST(problem_poisons_exactly_the_unused_bytes)
{
    const snapmla_rope_layout layouts[] = {SNAPMLA_ROPE_INTERLEAVED, SNAPMLA_ROPE_PLANAR};
    for (int l = 0; l < 2; ++l)
        for (int pad = 0; pad < 2; ++pad) {
            snapmla_variant v = variant_of(64, 16, 2, 2, 1, 16, layouts[l]);
            const int32_t seqlens[] = {0, 17, 16, 5, 40};
            int64_t natural = (int64_t)snapmla_cache_page_bytes(&v);
            snapmla_problem p = make(&v, 5, seqlens, pad ? natural + 40 : 0, g_seed + (uint64_t)l);
            ck_assert_int_eq(p.page_stride, pad ? natural + 40 : natural);
            size_t bytes = (size_t)(p.num_pages * p.page_stride);
            unsigned char *mask = xcalloc(bytes, 1);
            for (int b = 0; b < 5; ++b)
                for (int t = 0; t < seqlens[b]; ++t) {
                    int32_t page = p.block_table[b * p.block_table_stride + t / 16];
                    unsigned char *base = p.cache + (size_t)page * p.page_stride;
                    for (int c = 0; c < 80; ++c) {
                        size_t at = bf16_offset(&v, t % 16, c);
                        mask[(size_t)page * p.page_stride + at] = 1;
                        mask[(size_t)page * p.page_stride + at + 1] = 1;
                        ck_assert_msg(isfinite(bf16_le(base + at)), "request %d token %d value %d", b, t, c);
                    }
                }
            for (size_t i = 0; i < bytes; ++i)
                ck_assert_msg(mask[i] || p.cache[i] == 0xff, "byte %zu of %zu not poisoned: %#x", i,
                              bytes, p.cache[i]);
            /* the poison reads as NaN in BF16 */
            ck_assert(isnan(snapmla_bf16_to_f32(0xffff)));
            /* q is finite */
            for (size_t i = 0; i < (size_t)5 * 2 * 2 * 80; ++i)
                ck_assert(isfinite(snapmla_bf16_to_f32(p.q[i])));
            free(mask);
            snapmla_problem_free(&p);
        }
}
END_TEST

START_TEST(problem_block_tables_use_distinct_valid_pages)
{
    snapmla_variant v = variant_of(64, 16, 1, 1, 0, 4, SNAPMLA_ROPE_INTERLEAVED);
    const int32_t seqlens[] = {9, 0, 4, 1, 23, 8};
    snapmla_problem p = make(&v, 6, seqlens, 0, g_seed);
    int used = 0, minus_one = 0, huge = 0;
    unsigned char *taken = xcalloc((size_t)p.num_pages, 1);
    ck_assert_int_ge(p.block_table_stride, (23 + 3) / 4);
    for (int b = 0; b < 6; ++b) {
        ck_assert_int_eq(p.seqlens[b], seqlens[b]);
        int pages = (seqlens[b] + 3) / 4;
        for (int i = 0; i < p.block_table_stride; ++i) {
            int32_t page = p.block_table[b * p.block_table_stride + i];
            if (i < pages) {
                ck_assert_msg(page >= 0 && page < p.num_pages, "request %d page %d: %d", b, i, page);
                ck_assert_msg(!taken[page], "page %d used twice", page);
                taken[page] = 1;
                used++;
            } else {
                /* never to be read: must not name a real page */
                ck_assert_msg(page < 0 || page >= p.num_pages, "request %d entry %d: %d", b, i, page);
                minus_one += page == -1;
                huge += page >= p.num_pages;
            }
        }
    }
    ck_assert_int_gt(p.num_pages, used);   /* spare pages too */
    ck_assert_int_gt(minus_one, 0);
    ck_assert_int_gt(huge, 0);
    free(taken);
    snapmla_problem_free(&p);
}
END_TEST

START_TEST(problem_is_deterministic_in_its_seed)
{
    snapmla_variant v = variant_of(64, 16, 2, 2, 1, 4, SNAPMLA_ROPE_PLANAR);
    const int32_t seqlens[] = {9, 3};
    snapmla_problem a = make(&v, 2, seqlens, 0, g_seed), b = make(&v, 2, seqlens, 0, g_seed),
                    c = make(&v, 2, seqlens, 0, g_seed + 1);
    ck_assert_int_eq(a.num_pages, b.num_pages);
    ck_assert_uint_eq(a.seed, g_seed);
    ck_assert_int_eq(memcmp(a.q, b.q, (size_t)2 * 4 * 80 * 2), 0);
    ck_assert_int_eq(memcmp(a.cache, b.cache, (size_t)(a.num_pages * a.page_stride)), 0);
    ck_assert_int_eq(memcmp(a.block_table, b.block_table, (size_t)2 * a.block_table_stride * 4), 0);
    ck_assert_int_ne(memcmp(a.q, c.q, (size_t)2 * 4 * 80 * 2), 0);
    snapmla_problem_free(&a);
    snapmla_problem_free(&b);
    snapmla_problem_free(&c);
}
END_TEST

/* A problem large enough to be made and referenced on several threads
 * (over 2048 tokens a thread, over a million multiply-adds a row) gives
 * the same bytes and the same float64 answer every time. */
START_TEST(threaded_problem_and_reference_repeat_exactly)
{
    snapmla_variant v = variant_of(512, 64, 8, 2, 1, 64, SNAPMLA_ROPE_PLANAR);
    v.cache_format = SNAPMLA_FORMAT_FP8_PER_TOKEN;
    const int32_t seqlens[] = {9000, 0, 2500};
    snapmla_problem a = make(&v, 3, seqlens, 0, g_seed), b = make(&v, 3, seqlens, 0, g_seed);
    ck_assert_int_eq(memcmp(a.cache, b.cache, (size_t)(a.num_pages * a.page_stride)), 0);
    size_t rows = 3 * 16;
    double *out[2], *lse[2];
    snapmla_error err;
    for (int i = 0; i < 2; ++i) {
        out[i] = malloc(rows * 512 * sizeof(double));
        lse[i] = malloc(rows * sizeof(double));
        ck_assert_ptr_nonnull(out[i]);
        ck_assert_ptr_nonnull(lse[i]);
        ck_assert_int_eq(snapmla_ref_decode(i ? &b : &a, out[i], lse[i], &err), SNAPMLA_OK);
    }
    ck_assert_int_eq(memcmp(out[0], out[1], rows * 512 * sizeof(double)), 0);
    ck_assert_int_eq(memcmp(lse[0], lse[1], rows * sizeof(double)), 0);
    ck_assert(isinf(lse[0][16]));   /* the empty request's rows see nothing */
    ck_assert(isfinite(lse[0][0]) && isfinite(lse[0][47]));
    for (int i = 0; i < 2; ++i)
        free(out[i]), free(lse[i]);
    snapmla_problem_free(&a);
    snapmla_problem_free(&b);
}
END_TEST

/* snapmla_parallel_for visits every index once, for loops smaller and
 * larger than a thread's share. */
static void count_visits(void *context, size_t begin, size_t end)
{
    atomic_int *visits = context;
    for (size_t i = begin; i < end; ++i)
        atomic_fetch_add(&visits[i], 1);
}

START_TEST(parallel_for_visits_each_index_once)
{
    static const size_t counts[] = {0, 1, 7, 1000, 100003};
    static const size_t mins[] = {0, 1, 10, 4096};
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; ++c)
        for (size_t m = 0; m < sizeof mins / sizeof mins[0]; ++m) {
            atomic_int *visits = calloc(counts[c] + 1, sizeof *visits);
            ck_assert_ptr_nonnull(visits);
            snapmla_parallel_for(counts[c], mins[m], count_visits, visits);
            for (size_t i = 0; i < counts[c]; ++i)
                ck_assert_msg(atomic_load(&visits[i]) == 1, "count %zu min %zu: index %zu visited %d times",
                              counts[c], mins[m], i, atomic_load(&visits[i]));
            ck_assert_int_eq(atomic_load(&visits[counts[c]]), 0);
            free(visits);
        }
}
END_TEST

/* ---- combine ------------------------------------------------------------- */

START_TEST(combine_of_hand_splits_equals_decode)
{
    /* split every request's tokens in k_b contiguous ranges, compute each
     * range's normalised output and LSE naively (float, as a kernel stores
     * them), merge: the decode reference again. Unused split slots hold NaN
     * and must never be read. */
    snapmla_variant v = variant_of(128, 32, 3, 2, 1, 16, SNAPMLA_ROPE_INTERLEAVED);
    enum { BATCH = 5, SPLITS = 4, ROWS = 6, LATENT = 128 };
    const int32_t seqlens[BATCH] = {37, 5, 0, 1, 64};
    const int32_t counts[BATCH] = {4, 3, 2, 1, 3};
    snapmla_problem p = make(&v, BATCH, seqlens, 0, g_seed);
    float *o_part = xcalloc((size_t)BATCH * SPLITS * ROWS * LATENT, sizeof *o_part);
    float *lse_part = xcalloc((size_t)BATCH * SPLITS * ROWS, sizeof *lse_part);
    for (size_t i = 0; i < (size_t)BATCH * SPLITS * ROWS * LATENT; ++i)
        o_part[i] = NAN;
    for (size_t i = 0; i < (size_t)BATCH * SPLITS * ROWS; ++i)
        lse_part[i] = NAN;
    long double part[LATENT], part_lse;
    for (int b = 0; b < BATCH; ++b)
        for (int s = 0; s < counts[b]; ++s) {
            int t0 = seqlens[b] * s / counts[b], t1 = seqlens[b] * (s + 1) / counts[b];
            for (int r = 0; r < ROWS; ++r) {
                naive_range(&p, b, r, t0, t1, part, &part_lse);
                size_t at = ((size_t)b * SPLITS + s) * ROWS + r;
                lse_part[at] = (float)part_lse;
                for (int c = 0; c < LATENT; ++c)
                    o_part[at * LATENT + c] = (float)part[c];
            }
        }
    double *out = xcalloc((size_t)BATCH * ROWS * LATENT, sizeof *out);
    double *lse = xcalloc((size_t)BATCH * ROWS, sizeof *lse);
    snapmla_ref_combine(BATCH, SPLITS, ROWS, LATENT, o_part, lse_part, counts, out, lse);
    decoded d = decode(&p);
    for (size_t r = 0; r < (size_t)BATCH * ROWS; ++r) {
        if (isinf(d.lse[r])) {
            ck_assert_msg(isinf(lse[r]) && lse[r] > 0, "row %zu: %g", r, lse[r]);
        } else {
            ck_assert_msg(fabs(lse[r] - d.lse[r]) < 1e-5 * (1 + fabs(d.lse[r])), "row %zu: %g want %g",
                          r, lse[r], d.lse[r]);
        }
        for (size_t c = 0; c < LATENT; ++c)
            ck_assert_msg(fabs(out[r * LATENT + c] - d.out[r * LATENT + c]) < 1e-5,
                          "row %zu col %zu: %g want %g (seed %" PRIu64 ")", r, c, out[r * LATENT + c],
                          d.out[r * LATENT + c], g_seed);
    }
    decoded_free(&d);
    free(out);
    free(lse);
    free(o_part);
    free(lse_part);
    snapmla_problem_free(&p);
}
END_TEST

/* ---- append -------------------------------------------------------------- */

START_TEST(append_writes_valid_slots_only)
{
    const snapmla_rope_layout layouts[] = {SNAPMLA_ROPE_INTERLEAVED, SNAPMLA_ROPE_PLANAR};
    enum { L = 64, R = 16, PAGE = 4, PAGES = 3, N = 12, LS = L + 5, RS = R + 3 };
    for (int l = 0; l < 2; ++l) {
        snapmla_variant v = variant_of(L, R, 1, 1, 0, PAGE, layouts[l]);
        snapmla_layout layout = snapmla_layout_of(&v);
        int64_t stride = (int64_t)snapmla_cache_page_bytes(&v) + 24;
        size_t bytes = (size_t)(PAGES * stride);
        unsigned char *cache = xcalloc(bytes, 1), *mask = xcalloc(bytes, 1);
        memset(cache, 0xff, bytes);
        uint16_t latent[N * LS], rope[N * RS];
        snapmla_rng r = {g_seed + (uint64_t)l};
        for (size_t i = 0; i < sizeof latent / 2; ++i)
            latent[i] = snapmla_f32_to_bf16((float)snapmla_rng_normal(&r));
        for (size_t i = 0; i < sizeof rope / 2; ++i)
            rope[i] = snapmla_f32_to_bf16((float)snapmla_rng_normal(&r));
        /* padding, past the end (just and far), and valid slots in any order */
        const int64_t slots[N] = {5, -1, 11, 12, 0, -7, 7, 1000000, 3, 6, -1, 13};
        int64_t bad = snapmla_ref_append(&layout, cache, PAGES, stride, latent, LS, rope, RS, slots, N);
        ck_assert_int_eq(bad, 3);
        for (int i = 0; i < N; ++i) {
            if (slots[i] < 0 || slots[i] >= PAGES * PAGE)
                continue;
            size_t page = (size_t)(slots[i] / PAGE) * (size_t)stride;
            for (int c = 0; c < L + R; ++c) {
                size_t at = page + bf16_offset(&v, (int)(slots[i] % PAGE), c);
                uint16_t want = c < L ? latent[i * LS + c] : rope[i * RS + c - L];
                ck_assert_uint_eq(cache[at] | cache[at + 1] << 8, want);
                mask[at] = mask[at + 1] = 1;
            }
        }
        for (size_t i = 0; i < bytes; ++i)
            ck_assert_msg(mask[i] || cache[i] == 0xff, "byte %zu written", i);
        /* dense strides (0) read consecutive rows */
        memset(cache, 0xff, bytes);
        const int64_t one[2] = {-1, 2};
        ck_assert_int_eq(snapmla_ref_append(&layout, cache, PAGES, stride, latent, 0, rope, 0, one, 2), 0);
        ck_assert_uint_eq(cache[bf16_offset(&v, 2, 0)] | cache[bf16_offset(&v, 2, 0) + 1] << 8, latent[L]);
        ck_assert_uint_eq(cache[bf16_offset(&v, 2, L)] | cache[bf16_offset(&v, 2, L) + 1] << 8, rope[R]);
        free(cache);
        free(mask);
    }
}
END_TEST

START_TEST(append_quantizes_like_the_layout)
{
    /* FP8 formats: the bytes are exactly snapmla_layout_store's; nothing
     * outside the token's own bytes changes */
    snapmla_variant v = variant_of(512, 64, 1, 1, 0, 16, SNAPMLA_ROPE_INTERLEAVED);
    const snapmla_cache_format formats[] = {SNAPMLA_FORMAT_FP8_PER_TOKEN, SNAPMLA_FORMAT_FP8_PER_TILE128};
    for (int f = 0; f < 2; ++f) {
        v.cache_format = formats[f];
        snapmla_layout layout = snapmla_layout_of(&v);
        int64_t stride = (int64_t)snapmla_cache_page_bytes(&v);
        size_t bytes = (size_t)(2 * stride);
        unsigned char *cache = xcalloc(bytes, 1), *want = xcalloc(bytes, 1);
        memset(cache, 0xff, bytes);
        memset(want, 0xff, bytes);
        uint16_t latent[2 * 512], rope[2 * 64];
        snapmla_rng r = {g_seed};
        for (int i = 0; i < 2 * 512; ++i)
            latent[i] = snapmla_f32_to_bf16((float)(3 * snapmla_rng_normal(&r)));
        for (int i = 0; i < 2 * 64; ++i)
            rope[i] = snapmla_f32_to_bf16((float)snapmla_rng_normal(&r));
        const int64_t slots[3] = {17, -1, 32};
        ck_assert_int_eq(snapmla_ref_append(&layout, cache, 2, stride, latent, 0, rope, 0, slots, 3), 1);
        snapmla_layout_store(&layout, want + stride, 1, latent, rope);
        ck_assert_int_eq(memcmp(cache, want, bytes), 0);
        free(cache);
        free(want);
    }
}
END_TEST

/* ---- comparison ------------------------------------------------------------ */

START_TEST(compare_counts_what_went_wrong)
{
    enum { ROWS = 4, W = 8 };
    double ref_out[ROWS * W], ref_lse[ROWS] = {1.5, 2.25, INFINITY, -0.5};
    uint16_t out[ROWS * W];
    float lse[ROWS];
    for (int i = 0; i < ROWS * W; ++i) {
        ref_out[i] = i / W == 2 ? 0 : 0.1 * (i - 13);   /* row 2 is empty */
        out[i] = snapmla_f32_to_bf16((float)ref_out[i]);
    }
    for (int r = 0; r < ROWS; ++r)
        lse[r] = (float)ref_lse[r];
    snapmla_comparison c;
    char line[256];
    snapmla_compare(out, lse, ref_out, ref_lse, ROWS, W, &c);
    ck_assert(c.rel_l2 == 0 && c.nan_count == 0 && c.unwritten == 0 && c.lse_mismatch == 0);
    ck_assert(c.rel_l2_exact > 0 && c.rel_l2_exact < 4e-3);   /* BF16 rounding only */
    ck_assert(c.lse_max_abs == 0);
    ck_assert_uint_eq(c.values, ROWS * W);
    ck_assert(snapmla_comparison_passed(&c, 0, 1e-3, 1e-4));
    ck_assert(!snapmla_comparison_passed(&c, 1, 1e-6, 1e-4));

    out[3] = SNAPMLA_POISON_BF16;       /* never written */
    out[5] = 0x7fc0;                    /* NaN where the reference is finite */
    out[6] = 0x7f80;                    /* Inf */
    uint32_t poison = SNAPMLA_POISON_F32;
    memcpy(&lse[1], &poison, 4);        /* LSE never written */
    lse[2] = 0;                         /* empty row: must be +inf */
    lse[3] = (float)(ref_lse[3] + 0.25);
    snapmla_compare(out, lse, ref_out, ref_lse, ROWS, W, &c);
    ck_assert_int_eq(c.unwritten, 2);
    ck_assert_int_eq(c.nan_count, 2);
    ck_assert_int_eq(c.lse_mismatch, 1);
    ck_assert(fabs(c.lse_max_abs - 0.25) < 1e-6);
    ck_assert(!snapmla_comparison_passed(&c, 0, 1, 1));
    snapmla_comparison_summary(&c, 1e-2, 1e-4, line, sizeof line);
    ck_assert_msg(strncmp(line, "rel_l2 ", 7) == 0 && strstr(line, " nan 2 ") &&
                      strstr(line, " unwritten 2 ") && strstr(line, "lse_mismatch 1") &&
                      strstr(line, "(tol 1e-02, 1e-04)"),
                  "%s", line);
    char tiny[8];
    ck_assert_ptr_eq(snapmla_comparison_summary(&c, 1e-2, 1e-4, tiny, sizeof tiny), tiny);
    ck_assert_uint_eq(strlen(tiny), 7);

    /* a wrong value shows in the error by its size */
    for (int r = 0; r < ROWS; ++r)
        lse[r] = isinf(ref_lse[r]) ? INFINITY : (float)ref_lse[r];
    for (int i = 0; i < ROWS * W; ++i)
        out[i] = snapmla_f32_to_bf16((float)ref_out[i]);
    out[0] = snapmla_f32_to_bf16((float)(ref_out[0] + 1));
    snapmla_compare(out, lse, ref_out, ref_lse, ROWS, W, &c);
    ck_assert(c.rel_l2 > 0.1 && fabs(c.max_abs - 1) < 1e-2 && c.unwritten == 0 && c.nan_count == 0);
}
END_TEST

int main(void)
{
    if (!test_seed("test_reference", &g_seed))
        return EXIT_FAILURE;
    printf("test_reference: seed %" PRIu64 " (SNAPMLA_TEST_SEED=%" PRIu64 " replays it)\n", g_seed,
           g_seed);
    fflush(stdout);
    Suite *suite = suite_create("reference");
    TCase *tc = tcase_create("reference");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, bf16_round_trips_every_value);
    tcase_add_test(tc, bf16_rounds_to_nearest_even);
    tcase_add_test(tc, bf16_nan_stays_quiet_nan);
    tcase_add_loop_test(tc, decode_matches_naive, 0, DECODE_CASES);
    tcase_add_test(tc, zero_query_averages_the_values);
    tcase_add_test(tc, equal_keys_give_that_value);
    tcase_add_test(tc, single_token_and_causal_edges);
    tcase_add_test(tc, layouts_and_strides_agree);
    tcase_add_test(tc, softmax_is_neither_flat_nor_one_hot);
    tcase_add_test(tc, problem_poisons_exactly_the_unused_bytes);
    tcase_add_test(tc, problem_block_tables_use_distinct_valid_pages);
    tcase_add_test(tc, problem_is_deterministic_in_its_seed);
    tcase_add_test(tc, threaded_problem_and_reference_repeat_exactly);
    tcase_add_test(tc, parallel_for_visits_each_index_once);
    tcase_add_test(tc, combine_of_hand_splits_equals_decode);
    tcase_add_test(tc, append_writes_valid_slots_only);
    tcase_add_test(tc, append_quantizes_like_the_layout);
    tcase_add_test(tc, compare_counts_what_went_wrong);
    suite_add_tcase(suite, tc);
    return run_suite(suite, CK_FORK);
}
