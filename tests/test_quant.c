/* Tests of the host reference's number formats and cache layouts: e4m3 and
 * BF16 conversions against independent brute-force rules, quantize/
 * dequantize bounds per format, the scale rule's edges, and the float64
 * decode reference on closed forms. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bf16.h"
#include "cache_layout.h"
#include "decode_problem.h"
#include "fidelity.h"
#include "fp8.h"
#include "run_suite.h"

/* ---- e4m3 ----------------------------------------------------------------- */

/* The 126 finite non-negative e4m3 values, decoded independently of fp8.c. */
static double e4m3_value(int code)
{
    int e = (code >> 3) & 15, m = code & 7;
    return e == 0 ? m / 8.0 * pow(2, -6) : (1 + m / 8.0) * pow(2, e - 7);
}

/* Brute force: nearest finite value, ties to the even code, saturating. */
static uint8_t e4m3_brute(float x)
{
    if (isnan(x))
        return signbit(x) ? 0xff : 0x7f;
    double a = fabs((double)x);
    int best = 0;
    double best_d = INFINITY;
    for (int code = 0; code <= 0x7e; ++code) {
        double d = fabs(e4m3_value(code) - a);
        if (d < best_d || (d == best_d && (code & 1) == 0)) {
            best = code;
            best_d = d;
        }
    }
    if (a > 448)
        best = 0x7e;
    return (uint8_t)(best | (signbit(x) ? 0x80 : 0));
}

START_TEST(e4m3_decodes_all_codes)
{
    for (int code = 0; code < 256; ++code) {
        float v = snapmla_e4m3_to_f32((uint8_t)code);
        if ((code & 0x7f) == 0x7f) {
            ck_assert(isnan(v));
            continue;
        }
        double want = e4m3_value(code & 0x7f) * ((code & 0x80) ? -1 : 1);
        ck_assert_msg(v == (float)want, "code %#x: %g want %g", code, v, want);
        if (code != 0x80)   /* -0 encodes back to 0x80 too, checked below */
            ck_assert_uint_eq(snapmla_f32_to_e4m3(v), code);
    }
    ck_assert_uint_eq(snapmla_f32_to_e4m3(-0.0f), 0x80);
    ck_assert_uint_eq(snapmla_f32_to_e4m3(0.0f), 0x00);
}
END_TEST

START_TEST(e4m3_encodes_like_the_rule)
{
    const float edges[] = {448.f, 464.f, 463.99f, 464.01f, 480.f, 1e30f, INFINITY, 0x1p-9f,
                           0x1p-10f, 0x1.8p-10f, 0x1p-11f, 0x1p-6f, 0x1.fp-7f, 0.f, 1.f, 1.0625f,
                           1.125f, 1.1875f, 3.5f, 240.f, 256.f, 272.f, 288.f, 304.f};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; ++i)
        for (int s = 0; s < 2; ++s) {
            float x = s ? -edges[i] : edges[i];
            ck_assert_msg(snapmla_f32_to_e4m3(x) == e4m3_brute(x), "%a: %#x want %#x", x,
                          snapmla_f32_to_e4m3(x), e4m3_brute(x));
        }
    ck_assert_uint_eq(snapmla_f32_to_e4m3(464.f), 0x7e);   /* saturates, never NaN */
    ck_assert_uint_eq(snapmla_f32_to_e4m3(-INFINITY), 0xfe);
    ck_assert_uint_eq(snapmla_f32_to_e4m3(NAN) & 0x7f, 0x7f);
    /* a dense sweep: every 2^-12 step of the float line from 2^-12 up to 512 */
    for (double x = 0x1p-12; x < 512; x *= 1.0 + 0x1p-12) {
        float f = (float)x;
        ck_assert_msg(snapmla_f32_to_e4m3(f) == e4m3_brute(f), "%a", f);
    }
}
END_TEST

/* ---- bf16 ------------------------------------------------------------------ */

START_TEST(bf16_round_trips_and_rounds_to_even)
{
    for (uint32_t b = 0; b < 65536; ++b) {
        float f = snapmla_bf16_to_f32((uint16_t)b);
        if (isnan(f))
            ck_assert(isnan(snapmla_bf16_to_f32(snapmla_f32_to_bf16(f))));
        else
            ck_assert_uint_eq(snapmla_f32_to_bf16(f), b);
    }
    ck_assert_uint_eq(snapmla_f32_to_bf16(1.00390625f), 0x3f80);    /* tie -> even (1.0) */
    ck_assert_uint_eq(snapmla_f32_to_bf16(1.01171875f), 0x3f82);    /* tie -> even (1.015625) */
    ck_assert_uint_eq(snapmla_f32_to_bf16(3.4e38f), 0x7f80);        /* overflow -> Inf */
    ck_assert_uint_eq(snapmla_f32_to_bf16(-INFINITY), 0xff80);
}
END_TEST

/* ---- cache layouts and quantization ------------------------------------- */

static const snapmla_cache_format formats[] = {SNAPMLA_FORMAT_BF16, SNAPMLA_FORMAT_FP8_PER_TOKEN,
                                               SNAPMLA_FORMAT_FP8_PER_TILE128};

START_TEST(round_trip_error_is_bounded_per_format)
{
    snapmla_layout l = {formats[_i], 512, 64, 16, SNAPMLA_ROPE_INTERLEAVED};
    unsigned char page[16 * 1152];
    uint16_t latent[512], rope[64];
    double back[576];
    snapmla_rng r = {7 + (uint64_t)_i};
    for (int slot = 0; slot < 16; ++slot) {
        double size = exp(2 * snapmla_rng_normal(&r));
        for (int c = 0; c < 512; ++c)
            latent[c] = snapmla_f32_to_bf16((float)(size * snapmla_rng_normal(&r)));
        for (int c = 0; c < 64; ++c)
            rope[c] = snapmla_f32_to_bf16((float)snapmla_rng_normal(&r));
        snapmla_layout_store(&l, page, slot, latent, rope);
        snapmla_layout_load(&l, page, slot, back);
        for (int c = 0; c < 64; ++c)   /* RoPE is BF16 in every format: exact */
            ck_assert(back[512 + c] == snapmla_bf16_to_f32(rope[c]));
        double amax = 0;
        for (int c = 0; c < 512; ++c)
            amax = fmax(amax, fabs(snapmla_bf16_to_f32(latent[c])));
        for (int c = 0; c < 512; ++c) {
            double x = snapmla_bf16_to_f32(latent[c]), e = fabs(back[c] - x);
            if (formats[_i] == SNAPMLA_FORMAT_BF16)
                ck_assert(e == 0);
            else   /* half an e4m3 step: 2^-4 relative, or the subnormal step of the group */
                ck_assert_msg(e <= fabs(x) / 16 + 2 * amax / 448 * 0x1p-10, "c %d x %g e %g", c, x, e);
        }
    }
}
END_TEST

START_TEST(zero_token_decodes_to_zeros_and_outlier_saturates_nothing)
{
    for (int f = 1; f < 3; ++f) {
        snapmla_layout l = {formats[f], 512, 64, 1, SNAPMLA_ROPE_PLANAR};
        unsigned char page[1024];
        uint16_t latent[512] = {0}, rope[64] = {0};
        double back[576];
        snapmla_layout_store(&l, page, 0, latent, rope);
        snapmla_layout_load(&l, page, 0, back);
        for (int c = 0; c < 576; ++c)
            ck_assert(back[c] == 0.0);
        latent[3] = snapmla_f32_to_bf16(30000.f);
        latent[4] = snapmla_f32_to_bf16(1.f);
        snapmla_layout_store(&l, page, 0, latent, rope);
        snapmla_layout_load(&l, page, 0, back);
        ck_assert_msg(fabs(back[3] - 30000.0) <= 30000.0 / 16, "%g", back[3]);
        ck_assert(isfinite(back[4]));
    }
    ck_assert(snapmla_fp8_group_scale(0.f, 0) == 1.f);
    ck_assert(snapmla_fp8_group_scale(448.f, 0) == 1.f);
    ck_assert(snapmla_fp8_group_scale(449.f, 1) == 2.f);   /* rounded up to a power of two */
    ck_assert(snapmla_fp8_group_scale(224.f, 1) == 0.5f);
    /* fp8_per_tile128, as FlashMLA's writer: raised to 1e-4, then up to a power of two */
    ck_assert(snapmla_fp8_tile128_scale(449.f) == 2.f);
    ck_assert(snapmla_fp8_tile128_scale(224.f) == 0.5f);
    ck_assert(snapmla_fp8_tile128_scale(0.f) == ldexpf(1.f, -13));
    ck_assert(snapmla_fp8_tile128_scale(1e-3f) == ldexpf(1.f, -13));
    ck_assert(snapmla_fp8_tile128_scale(448.f * ldexpf(1.f, -12)) == ldexpf(1.f, -12));
}
END_TEST

START_TEST(layout_marks_exactly_the_token_bytes)
{
    for (int f = 0; f < 3; ++f)
        for (int rl = 0; rl < 2; ++rl) {
            snapmla_variant v;
            memset(&v, 0, sizeof v);
            v.latent_dim = 512;
            v.rope_dim = 64;
            v.page_size = 16;
            v.cache_format = formats[f];
            v.rope_layout = rl ? SNAPMLA_ROPE_PLANAR : SNAPMLA_ROPE_INTERLEAVED;
            snapmla_layout l = snapmla_layout_of(&v);
            size_t bytes = snapmla_cache_page_bytes(&v);
            unsigned char *mask = calloc(bytes, 1);
            size_t token_bytes = 0;
            for (int slot = 0; slot < 16; ++slot) {
                snapmla_layout_mark(&l, slot, mask);
                size_t marked = 0;
                for (size_t i = 0; i < bytes; ++i)
                    marked += mask[i];
                if (slot == 0)
                    token_bytes = marked;
                ck_assert_uint_eq(marked, token_bytes * (size_t)(slot + 1));   /* no overlap */
            }
            const size_t want[] = {1152, 644, 656};
            ck_assert_uint_eq(token_bytes, want[f]);
            ck_assert_uint_ge(bytes, 16 * want[f]);
            free(mask);
        }
}
END_TEST

/* ---- the decode reference ---------------------------------------------- */

static snapmla_variant small_variant(int q_heads, int q_len, int causal)
{
    snapmla_variant v;
    memset(&v, 0, sizeof v);
    v.kernel = SNAPMLA_KERNEL_MLA_DECODE;
    v.latent_dim = 64;
    v.rope_dim = 16;
    v.q_heads = q_heads;
    v.q_len = q_len;
    v.causal = causal;
    v.page_size = 4;
    v.cache_format = SNAPMLA_FORMAT_BF16;
    return v;
}

START_TEST(reference_closed_forms)
{
    snapmla_variant v = small_variant(2, 3, 1);
    const int32_t seqlens[] = {0, 1, 9};
    snapmla_problem p;
    snapmla_error err;
    ck_assert_int_eq(snapmla_problem_make(&v, 3, seqlens, 0, 11, &p, &err), SNAPMLA_OK);
    double out[3 * 6 * 64], lse[18];
    ck_assert_int_eq(snapmla_ref_decode(&p, out, lse, &err), SNAPMLA_OK);
    /* request 0: no tokens: out 0, lse +inf for every row */
    for (int r = 0; r < 6; ++r) {
        ck_assert(isinf(lse[r]) && lse[r] > 0);
        for (int c = 0; c < 64; ++c)
            ck_assert(out[r * 64 + c] == 0);
    }
    /* request 1: one token, q_len 3 causal: rows of query tokens 0 and 1 see
     * nothing, query token 2 sees token 0: out = V_0, lse = its score */
    snapmla_layout l = snapmla_layout_of(&v);
    double k0[80];
    snapmla_layout_load(&l, p.cache + (size_t)p.block_table[p.block_table_stride] * p.page_stride, 0, k0);
    for (int r = 6; r < 12; ++r) {
        int token = (r - 6) / 2;
        if (token < 2) {
            ck_assert(isinf(lse[r]));
            continue;
        }
        double dot = 0;
        for (int c = 0; c < 80; ++c)
            dot += snapmla_bf16_to_f32(p.q[(size_t)r * 80 + c]) * k0[c];
        ck_assert_msg(fabs(lse[r] - dot * p.softmax_scale) < 1e-12, "%g %g", lse[r], dot);
        for (int c = 0; c < 64; ++c)
            ck_assert(fabs(out[r * 64 + c] - k0[c]) < 1e-12);
    }
    /* every valid token is finite, every other cache byte is NaN-poisoned */
    size_t bytes = (size_t)(p.num_pages * p.page_stride);
    unsigned char *mask = calloc(bytes, 1);
    for (int b = 0; b < 3; ++b)
        for (int t = 0; t < seqlens[b]; ++t)
            snapmla_layout_mark(&l, t % 4,
                                mask + (size_t)p.block_table[b * p.block_table_stride + t / 4] * p.page_stride);
    for (size_t i = 0; i < bytes; ++i)
        if (!mask[i])
            ck_assert_uint_eq(p.cache[i], 0xff);
    free(mask);
    snapmla_problem_free(&p);
}
END_TEST

START_TEST(reference_layouts_agree)
{
    /* the same seed gives the same logical data whatever the layout */
    snapmla_variant a = small_variant(3, 1, 1), b = a;
    b.rope_layout = SNAPMLA_ROPE_PLANAR;
    const int32_t seqlens[] = {13, 4};
    snapmla_problem pa, pb;
    snapmla_error err;
    ck_assert_int_eq(snapmla_problem_make(&a, 2, seqlens, 0, 5, &pa, &err), SNAPMLA_OK);
    ck_assert_int_eq(snapmla_problem_make(&b, 2, seqlens, 1024, 5, &pb, &err), SNAPMLA_OK);
    double oa[2 * 3 * 64], ob[2 * 3 * 64], la[6], lb[6];
    ck_assert_int_eq(snapmla_ref_decode(&pa, oa, la, &err), SNAPMLA_OK);
    ck_assert_int_eq(snapmla_ref_decode(&pb, ob, lb, &err), SNAPMLA_OK);
    for (int i = 0; i < 2 * 3 * 64; ++i)
        ck_assert(oa[i] == ob[i]);
    for (int i = 0; i < 6; ++i)
        ck_assert(la[i] == lb[i]);
    snapmla_problem_free(&pa);
    snapmla_problem_free(&pb);
}
END_TEST

START_TEST(combine_reference_merges_splits)
{
    /* two splits of one softmax: merging their normalised outputs gives the
     * whole; an empty split (-inf) weighs nothing */
    const float o[2 * 2] = {1, 2, 3, 4}, lse_part[2] = {logf(1), logf(3)};
    const int32_t counts[1] = {2};
    double out[2], lse[1];
    snapmla_ref_combine(1, 2, 1, 2, o, lse_part, counts, out, lse);
    ck_assert(fabs(lse[0] - log(4)) < 1e-6);
    ck_assert(fabs(out[0] - (0.25 * 1 + 0.75 * 3)) < 1e-6);
    const float empty[2] = {-INFINITY, -INFINITY};
    snapmla_ref_combine(1, 2, 1, 2, o, empty, counts, out, lse);
    ck_assert(isinf(lse[0]) && lse[0] > 0 && out[0] == 0 && out[1] == 0);
}
END_TEST

/* The study's headline, on a small fixed case: per-token beats naive FP8 on
 * latents with outlier channels, exact per-tile128 scales beat
 * power-of-two ones, and RoPE stored divided by the token's scale is as good
 * as RoPE stored as it is (a wrong scale on that part would show at once).
 * Deterministic (fixed seed). */
START_TEST(fidelity_ranks_the_recipes)
{
    snapmla_fidelity_config c = {.latent_dim = 512, .rope_dim = 64, .q_heads = 4, .context = 4096,
                                 .queries = 1, .outlier_gain = 30, .outlier_channels = 8,
                                 .rope_gain = 4, .seed = 11};
    snapmla_fidelity_row rows[SNAPMLA_RECIPE_COUNT];
    snapmla_error err;
    ck_assert_int_eq(snapmla_fidelity_run(&c, rows, &err), SNAPMLA_OK);
    for (int k = 0; k < SNAPMLA_RECIPE_COUNT; ++k) {
        ck_assert(rows[k].rel_l2 > 0 && rows[k].rel_l2 < 1);
        ck_assert(rows[k].cosine <= 1 && rows[k].cosine > 0);
    }
    ck_assert_msg(rows[SNAPMLA_RECIPE_PER_TOKEN].rel_l2 < 0.5 * rows[SNAPMLA_RECIPE_NAIVE_FP8].rel_l2,
                  "per-token %g naive %g", rows[SNAPMLA_RECIPE_PER_TOKEN].rel_l2,
                  rows[SNAPMLA_RECIPE_NAIVE_FP8].rel_l2);
    ck_assert(rows[SNAPMLA_RECIPE_PER_TILE128_EXACT].rel_l2 < rows[SNAPMLA_RECIPE_PER_TILE128].rel_l2);
    const double divided = rows[SNAPMLA_RECIPE_PER_TOKEN_ROPE_DIVIDED].rel_l2;
    ck_assert_msg(fabs(divided - rows[SNAPMLA_RECIPE_PER_TOKEN].rel_l2) < 0.02 * rows[SNAPMLA_RECIPE_PER_TOKEN].rel_l2,
                  "RoPE divided %g, per-token %g", divided, rows[SNAPMLA_RECIPE_PER_TOKEN].rel_l2);
    /* FlashMLA's cache read per token (the role warpgroups) loses next to
     * nothing, even with outlier channels making one group's scale 30x the
     * others' */
    const double as_token = rows[SNAPMLA_RECIPE_PER_TILE128_AS_TOKEN].rel_l2;
    ck_assert_msg(fabs(as_token - rows[SNAPMLA_RECIPE_PER_TILE128].rel_l2) < 0.01 * rows[SNAPMLA_RECIPE_PER_TILE128].rel_l2,
                  "per-tile128 read per token %g, as stored %g", as_token, rows[SNAPMLA_RECIPE_PER_TILE128].rel_l2);
}
END_TEST

/* The role warpgroups' reading of an fp8_per_tile128 token (the host mirror
 * of their requant): every scale becomes the largest; codes of a group at it
 * stay as they are; the others decode within 2^-10 of the largest scale of
 * their stored value (exactly where they stay in e4m3's normal range); NaN
 * codes stay NaN. */
START_TEST(tile128_read_per_token_keeps_the_values)
{
    snapmla_layout l = {SNAPMLA_FORMAT_FP8_PER_TILE128, 512, 64, 1, SNAPMLA_ROPE_INTERLEAVED};
    unsigned char page[1024], stored[1024];
    uint16_t latent[512], rope[64] = {0};
    for (int c = 0; c < 512; ++c)   /* groups 1x, 1/8x, 1/1000x and 0: scales 2^-8 ... 2^-13 */
        latent[c] = snapmla_f32_to_bf16(c < 128 ? sinf((float)c) : c < 256 ? sinf((float)c) / 8
                                        : c < 384 ? sinf((float)c) / 1000 : 0.f);
    snapmla_layout_store(&l, page, 0, latent, rope);
    page[300] = 0x7f;   /* a NaN code in group 2 */
    memcpy(stored, page, sizeof page);
    double before[576], after[576];
    snapmla_layout_load(&l, stored, 0, before);
    snapmla_tile128_read_per_token(&l, page, 0);
    snapmla_layout_load(&l, page, 0, after);
    float scale[4];
    memcpy(scale, page + 512, 16);
    const float common = ldexpf(1.f, -8);
    for (int g = 0; g < 4; ++g)
        ck_assert_msg(scale[g] == common, "group %d scale %g", g, scale[g]);
    ck_assert(memcmp(page, stored, 128) == 0);   /* group 0 holds the largest scale */
    int moved = 0;
    for (int c = 0; c < 512; ++c) {
        if (c == 300) {
            ck_assert(isnan(after[c]));
            continue;
        }
        ck_assert_msg(fabs(after[c] - before[c]) <= ldexp(common, -10), "c %d: %g -> %g", c, before[c], after[c]);
        moved += after[c] != before[c];
    }
    ck_assert_int_gt(moved, 0);   /* group 2's smallest codes left e4m3's normal range */
    for (int c = 512; c < 576; ++c)
        ck_assert(after[c] == before[c]);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("quant");
    TCase *tc = tcase_create("quant");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, e4m3_decodes_all_codes);
    tcase_add_test(tc, e4m3_encodes_like_the_rule);
    tcase_add_test(tc, bf16_round_trips_and_rounds_to_even);
    tcase_add_loop_test(tc, round_trip_error_is_bounded_per_format, 0, 3);
    tcase_add_test(tc, zero_token_decodes_to_zeros_and_outlier_saturates_nothing);
    tcase_add_test(tc, layout_marks_exactly_the_token_bytes);
    tcase_add_test(tc, tile128_read_per_token_keeps_the_values);
    tcase_add_test(tc, reference_closed_forms);
    tcase_add_test(tc, reference_layouts_agree);
    tcase_add_test(tc, combine_reference_merges_splits);
    tcase_add_test(tc, fidelity_ranks_the_recipes);
    suite_add_tcase(suite, tc);
    return run_suite(suite, CK_FORK);
}
