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
