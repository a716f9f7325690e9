/* Resource model of the generated kernels (see templates/decode_simt.cu for
 * the shared-memory plan these numbers mirror). */
#include "resources.h"

int snapmla_arch_smem_limit(snapmla_arch arch)
{
    switch (arch) {
    case SNAPMLA_ARCH_SM80: return 163 * 1024;
    case SNAPMLA_ARCH_SM89: return 99 * 1024;
    case SNAPMLA_ARCH_SM90A: return 227 * 1024;
    }
    return 0;
}

static int round_up_1024(int bytes) { return (bytes + 1023) / 1024 * 1024; }

int snapmla_variant_smem_bytes(const snapmla_variant *v)
{
    if (v->kernel != SNAPMLA_KERNEL_MLA_DECODE)
        return 0;
    int width = v->latent_dim + v->rope_dim;
    /* fp8_per_token: each ring slot's per-token scales (applied to scores and P) */
    int token_scales = v->cache_format == SNAPMLA_FORMAT_FP8_PER_TOKEN ? v->stages * v->kv_tile * 4 : 0;
    if (snapmla_variant_bf16_pair(v)) {
        /* templates/decode_wgmma_bf16_pair.cu: 1024-aligned BF16 Q and two KV
         * tiles, P(u) (P(u+1) in Q's RoPE smem when it fits there, else
         * beside P(u)), row state (5 floats per query row), one mbarrier per
         * chunk of a slot (64-channel latent blocks, RoPE blocks). */
        int row = 2 * (v->latent_dim + v->rope_dim);
        int p_tile = 2 * v->q_tile * v->kv_tile;
        int p1_apart = v->q_tile * 2 * v->rope_dim < p_tile;
        int rope_blocks = 2 * v->rope_dim > 128 ? 2 * v->rope_dim / 128 : 1;
        int chunks = 2 * v->latent_dim / 128 + rope_blocks;
        return 1024 + round_up_1024(v->q_tile * row) + v->stages * round_up_1024(v->kv_tile * row) +
               (1 + p1_apart) * p_tile + 5 * v->q_tile * 4 + v->stages * chunks * 8;
    }
    if (v->engine == SNAPMLA_ENGINE_WGMMA && v->compute == SNAPMLA_COMPUTE_BF16) {
        /* templates/decode_wgmma_bf16.cu: 1024-aligned BF16 Q and KV tiles
         * (STAGES of them), one tile's BF16 P and row state (3 floats per
         * query row), two mbarriers per ring slot. */
        int row = 2 * (v->latent_dim + v->rope_dim);
        return 1024 + round_up_1024(v->q_tile * row) + v->stages * round_up_1024(v->kv_tile * row) +
               2 * v->q_tile * v->kv_tile + 3 * v->q_tile * 4 + v->stages * 16;
    }
    if (v->engine == SNAPMLA_ENGINE_WGMMA) {
        /* templates/decode_wgmma_fp8.cu: 1024-aligned regions for the 128-byte
         * swizzle; FP8 Q + BF16 RoPE + row scales, STAGES raw KV tiles with
         * their scales (one per token, or one per 128 channels for
         * fp8_per_tile128: `groups`), three tiles' e4m3 P' (one per scale
         * group) and row state (max, sum, then P's factor and O's per group),
         * two mbarriers per ring slot. */
        int roles = snapmla_variant_role_warpgroups(v);
        int groups = v->cache_format == SNAPMLA_FORMAT_FP8_PER_TILE128 ? v->latent_dim / 128 : 1;
        /* the role warpgroups requantize fp8_per_tile128 to one scale per
         * token in the ring slot, so their P' and row state are per token */
        int p_groups = roles ? 1 : groups;
        int q_region = round_up_1024(v->q_tile * (v->latent_dim + 2 * v->rope_dim) + v->q_tile * 4);
        int stage = round_up_1024(v->kv_tile * (v->latent_dim + 2 * v->rope_dim) + v->kv_tile * 4 * groups);
        int p_tile = p_groups * v->q_tile * v->kv_tile;
        int row_state = (2 + 2 * p_groups) * v->q_tile * 4 + 16;   /* + a flag per warp of 16 rows */
        /* tile.warps 16 (decode_wgmma_fp8_roles.cu): four more mbarriers per P'
         * buffer, and a second `used` one per ring slot (each output warpgroup
         * copies the half of a tile it reads), and each one's next tile's
         * pages, one per 16..32-token page of a tile */
        int pieces = snapmla_variant_kv_tma(v) && v->page_size < v->kv_tile ? v->kv_tile / v->page_size : 1;
        int role_barriers = roles ? 4 * 24 + v->stages * 8 + 2 * pieces * 4 : 0;
        return 1024 + q_region + v->stages * stage + 3 * (p_tile + row_state) + v->stages * 16 + role_barriers;
    }
    if (v->engine == SNAPMLA_ENGINE_MMA_SYNC) {
        /* BF16: Q and the KV ring in padded rows. FP8: Q, one BF16 tile, and
         * the ring of raw tiles it is converted from. */
        int fp8 = v->cache_format != SNAPMLA_FORMAT_BF16;
        int slots = fp8 ? 1 : v->stages;
        int raw_token = v->cache_format == SNAPMLA_FORMAT_FP8_PER_TOKEN
                            ? v->latent_dim + 2 * v->rope_dim + 4
                            : v->latent_dim + v->latent_dim / 32 + 2 * v->rope_dim;
        int scales = v->cache_format == SNAPMLA_FORMAT_FP8_PER_TOKEN ? slots * v->kv_tile * 4 : 0;
        return (v->q_tile + slots * v->kv_tile) * (width + 8) * 2 + scales +
               2 * v->q_tile * v->kv_tile * 4 +   /* partial scores of both warps of a pair */
               (fp8 ? v->stages * v->kv_tile * raw_token : 0);
    }
    int q_tile = v->q_tile * width * 2;                 /* BF16 query rows */
    /* BF16 KV ring; rows padded by 8 elements so 16-byte reads of
     * consecutive tokens fall in different banks */
    int kv_tiles = v->stages * v->kv_tile * (width + 8) * 2;
    int scores = v->q_tile * v->kv_tile * 4;            /* fp32 scores / P */
    int row_state = v->q_tile * 4 * 4;                  /* max, sum, rescale */
    return q_tile + kv_tiles + scores + row_state + token_scales;
}

int snapmla_variant_kv_tma(const snapmla_variant *v)
{
    int ps = v->page_size, tile = v->kv_tile;
    return v->kernel == SNAPMLA_KERNEL_MLA_DECODE && v->engine == SNAPMLA_ENGINE_WGMMA && ps >= 16 &&
           (ps % tile == 0 || tile % ps == 0);
}

int snapmla_variant_role_warpgroups(const snapmla_variant *v)
{
    return v->kernel == SNAPMLA_KERNEL_MLA_DECODE && v->engine == SNAPMLA_ENGINE_WGMMA &&
           v->compute == SNAPMLA_COMPUTE_FP8 && v->warps == 16;
}

int snapmla_variant_bf16_pair(const snapmla_variant *v)
{
    if (v->kernel != SNAPMLA_KERNEL_MLA_DECODE || v->engine != SNAPMLA_ENGINE_WGMMA ||
        v->compute != SNAPMLA_COMPUTE_BF16 || v->stages != 2 || v->schedule == SNAPMLA_SCHEDULE_SEESAW)
        return 0;
    /* auto: from 256 query rows only. There (two query tokens, 128 heads)
     * it beat the seesaw by 3-6% on the H100 at every batch; at 128 rows it
     * wins only from about 32 requests and lost 7% at batch 1, at 64 and 16
     * rows it tied at best (docs/perf.md, twenty-ninth session). */
    return v->schedule == SNAPMLA_SCHEDULE_PAIR || v->q_heads * v->q_len >= 256;
}

int snapmla_decode_acc_per_thread(const snapmla_variant *v)
{
    int threads = v->warps * 32;
    int cells = v->q_tile * v->latent_dim;
    return (cells + threads - 1) / threads;
}
