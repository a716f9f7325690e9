/* Where each token's bytes sit in a cache page, for every format, and the
 * host quantizer: the reference the append kernel must match bit for bit and
 * the decode kernels read through (docs/cache-formats.md). */
#ifndef SNAPMLA_REFERENCE_CACHE_LAYOUT_H
#define SNAPMLA_REFERENCE_CACHE_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "snapmla.h"

typedef struct snapmla_layout {
    snapmla_cache_format format;
    int latent_dim;
    int rope_dim;
    int page_size;
    snapmla_rope_layout rope_layout;   /* bf16 only; FP8 formats fix their own */
} snapmla_layout;

/* The layout of a variant's cache. */
snapmla_layout snapmla_layout_of(const snapmla_variant *variant);

/* The quantization scale of a group whose largest magnitude is amax. */
float snapmla_fp8_group_scale(float amax, int power_of_two);
/* fp8_per_tile128's scale, as FlashMLA's writer: amax / 448 raised to 1e-4,
 * rounded up to a power of two (2^-13 for an all-zero group) */
float snapmla_fp8_tile128_scale(float amax);

/* An fp8_per_tile128 token rewritten in place as the role warpgroups read
 * it (templates/decode_wgmma_fp8_roles.cu, requant_tile128): each group's
 * codes times its scale / the token's largest, rounded once to e4m3, and
 * every scale set to the largest (NaN codes stay NaN). */
void snapmla_tile128_read_per_token(const snapmla_layout *layout, unsigned char *page, int slot);

/* Encodes one token (BF16 latent and RoPE) into its slot of a page. */
void snapmla_layout_store(const snapmla_layout *layout, unsigned char *page, int slot,
                          const uint16_t *latent, const uint16_t *rope);
/* Decodes one token: latent_dim dequantized latent values, then rope_dim
 * RoPE values, as doubles. */
void snapmla_layout_load(const snapmla_layout *layout, const unsigned char *page, int slot,
                         double *values);
/* Sets mask[i] = 1 for every byte of the page that belongs to slot's token. */
void snapmla_layout_mark(const snapmla_layout *layout, int slot, unsigned char *page_mask);

#endif
