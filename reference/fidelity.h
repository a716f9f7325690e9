/* The fidelity study: how far each FP8 cache recipe moves the attention
 * output from float64 attention over the unquantized cache, on synthetic
 * latents shaped like real ones (heavy tails, outlier channels, RoPE of a
 * larger range). CPU only. */
#ifndef SNAPMLA_REFERENCE_FIDELITY_H
#define SNAPMLA_REFERENCE_FIDELITY_H

#include <stdint.h>

#include "snapmla.h"

typedef enum snapmla_recipe {
    SNAPMLA_RECIPE_NAIVE_FP8,        /* whole token incl. RoPE, one per-tensor scale */
    SNAPMLA_RECIPE_PER_TENSOR,       /* latent e4m3 per-tensor scale, RoPE BF16 */
    SNAPMLA_RECIPE_PER_TOKEN,        /* SnapMLA: latent per-token scale, RoPE BF16 */
    SNAPMLA_RECIPE_PER_TILE128,      /* FlashMLA: 4 scales per token (pow2), RoPE BF16 */
    SNAPMLA_RECIPE_PER_TILE128_EXACT,/* the same with exact amax/448 scales */
    SNAPMLA_RECIPE_PER_TOKEN_SMOOTH, /* per-token after static per-channel equalization */
    SNAPMLA_RECIPE_PER_TOKEN_ROPE_DIVIDED, /* per-token, RoPE stored BF16 divided by the token's scale */
    SNAPMLA_RECIPE_PER_TILE128_AS_TOKEN,   /* FlashMLA's cache as the role warpgroups read it */
    SNAPMLA_RECIPE_COUNT
} snapmla_recipe;

const char *snapmla_recipe_name(snapmla_recipe recipe);

typedef struct snapmla_fidelity_config {
    int latent_dim, rope_dim, q_heads;
    int context;            /* tokens in the cache */
    int queries;            /* independent query sets (requests) averaged over */
    double outlier_gain;    /* outlier channels' scale, e.g. 30 */
    int outlier_channels;   /* how many latent channels are outliers */
    double rope_gain;       /* RoPE values' scale relative to the latent's */
    uint64_t seed;
} snapmla_fidelity_config;

typedef struct snapmla_fidelity_row {
    snapmla_recipe recipe;
    double rel_l2;     /* ||out - ref|| / ||ref||, over all heads and queries */
    double max_abs;    /* largest |out - ref| */
    double cosine;     /* smallest per-row cosine similarity */
} snapmla_fidelity_row;

/* Fills rows[SNAPMLA_RECIPE_COUNT]. */
snapmla_status snapmla_fidelity_run(const snapmla_fidelity_config *config,
                                    snapmla_fidelity_row rows[SNAPMLA_RECIPE_COUNT],
                                    snapmla_error *err);

#endif
