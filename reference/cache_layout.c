/* Host side of the cache formats: token placement and the quantizer, the
 * rule docs/cache-formats.md states and the kernels implement. */
#include "cache_layout.h"

#include <math.h>
#include <string.h>

#include "bf16.h"
#include "fp8.h"

snapmla_layout snapmla_layout_of(const snapmla_variant *v)
{
    snapmla_layout l = {v->cache_format, v->latent_dim, v->rope_dim, v->page_size, v->rope_layout};
    return l;
}

/* x rounded up to a power of two (x positive and normal) */
static float power_of_two_above(float x)
{
    uint32_t bits;
    memcpy(&bits, &x, 4);
    if (bits & 0x7fffffu) {
        bits = (bits & 0xff800000u) + 0x800000u;
        memcpy(&x, &bits, 4);
    }
    return x;
}

float snapmla_fp8_group_scale(float amax, int power_of_two)
{
    if (amax == 0.f)
        return 1.f;
    float scale = amax / 448.f;
    return power_of_two ? power_of_two_above(scale) : scale;
}

float snapmla_fp8_tile128_scale(float amax)
{
    /* FlashMLA's writer: amax / 448 raised to 1e-4 (all-zero groups too) */
    return power_of_two_above(fmaxf(amax / 448.f, 1e-4f));
}

/* Byte offsets of a token's latent, RoPE and first scale inside its page. */
typedef struct token_place {
    size_t latent, rope, scale;
    size_t latent_bytes, rope_bytes, scale_bytes;
} token_place;

static token_place place(const snapmla_layout *l, int slot)
{
    size_t L = (size_t)l->latent_dim, R = (size_t)l->rope_dim, P = (size_t)l->page_size;
    size_t s = (size_t)slot;
    token_place t = {0};
    switch (l->format) {
    case SNAPMLA_FORMAT_BF16:
        t.latent_bytes = L * 2;
        t.rope_bytes = R * 2;
        if (l->rope_layout == SNAPMLA_ROPE_INTERLEAVED) {
            t.latent = s * (L + R) * 2;
            t.rope = t.latent + L * 2;
        } else {
            t.latent = s * L * 2;
            t.rope = P * L * 2 + s * R * 2;
        }
        break;
    case SNAPMLA_FORMAT_FP8_PER_TOKEN:
        t.latent = s * L;
        t.rope = P * L + s * R * 2;
        t.scale = P * (L + 2 * R) + s * 4;
        t.latent_bytes = L;
        t.rope_bytes = R * 2;
        t.scale_bytes = 4;
        break;
    case SNAPMLA_FORMAT_FP8_PER_TILE128:
        t.latent = s * (L + L / 32 + 2 * R);
        t.scale = t.latent + L;
        t.rope = t.scale + L / 32;
        t.latent_bytes = L;
        t.rope_bytes = R * 2;
        t.scale_bytes = L / 32;
        break;
    }
    return t;
}

void snapmla_layout_store(const snapmla_layout *l, unsigned char *page, int slot,
                          const uint16_t *latent, const uint16_t *rope)
{
    token_place t = place(l, slot);
    memcpy(page + t.rope, rope, (size_t)l->rope_dim * 2);
    if (l->format == SNAPMLA_FORMAT_BF16) {
        memcpy(page + t.latent, latent, (size_t)l->latent_dim * 2);
        return;
    }
    int group = l->format == SNAPMLA_FORMAT_FP8_PER_TOKEN ? l->latent_dim : 128;
    for (int g = 0; g < l->latent_dim / group; ++g) {
        float amax = 0.f;
        for (int c = g * group; c < (g + 1) * group; ++c)
            amax = fmaxf(amax, fabsf(snapmla_bf16_to_f32(latent[c])));
        float scale = l->format == SNAPMLA_FORMAT_FP8_PER_TILE128 ? snapmla_fp8_tile128_scale(amax)
                                                                   : snapmla_fp8_group_scale(amax, 0);
        for (int c = g * group; c < (g + 1) * group; ++c) {
            float quotient = snapmla_bf16_to_f32(latent[c]) / scale;
            page[t.latent + (size_t)c] = snapmla_f32_to_e4m3(quotient);
        }
        memcpy(page + t.scale + (size_t)g * 4, &scale, 4);
    }
}

void snapmla_tile128_read_per_token(const snapmla_layout *l, unsigned char *page, int slot)
{
    token_place t = place(l, slot);
    int groups = l->latent_dim / 128;
    float scale[16], common = 0.f;
    memcpy(scale, page + t.scale, (size_t)groups * 4);
    for (int g = 0; g < groups; ++g)
        common = fmaxf(common, scale[g]);
    for (int g = 0; g < groups; ++g) {
        if (scale[g] < common) {   /* code x 2^-k (exact in float), rounded once to e4m3 */
            float factor = scale[g] / common;
            for (int c = g * 128; c < (g + 1) * 128; ++c) {
                unsigned char *code = page + t.latent + (size_t)c;
                *code = snapmla_f32_to_e4m3(snapmla_e4m3_to_f32(*code) * factor);
            }
        }
        memcpy(page + t.scale + (size_t)g * 4, &common, 4);
    }
}

void snapmla_layout_load(const snapmla_layout *l, const unsigned char *page, int slot,
                         double *values)
{
    token_place t = place(l, slot);
    for (int c = 0; c < l->rope_dim; ++c) {
        uint16_t bits;
        memcpy(&bits, page + t.rope + (size_t)c * 2, 2);
        values[l->latent_dim + c] = snapmla_bf16_to_f32(bits);
    }
    if (l->format == SNAPMLA_FORMAT_BF16) {
        for (int c = 0; c < l->latent_dim; ++c) {
            uint16_t bits;
            memcpy(&bits, page + t.latent + (size_t)c * 2, 2);
            values[c] = snapmla_bf16_to_f32(bits);
        }
        return;
    }
    int group = l->format == SNAPMLA_FORMAT_FP8_PER_TOKEN ? l->latent_dim : 128;
    for (int c = 0; c < l->latent_dim; ++c) {
        float scale;
        memcpy(&scale, page + t.scale + (size_t)(c / group) * 4, 4);
        values[c] = (double)snapmla_e4m3_to_f32(page[t.latent + (size_t)c]) * (double)scale;
    }
}

void snapmla_layout_mark(const snapmla_layout *l, int slot, unsigned char *mask)
{
    token_place t = place(l, slot);
    memset(mask + t.latent, 1, t.latent_bytes);
    memset(mask + t.rope, 1, t.rope_bytes);
    if (t.scale_bytes)
        memset(mask + t.scale, 1, t.scale_bytes);
}
