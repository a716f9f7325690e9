// ---- kv_append: new tokens into the paged cache -----------------------------
//
// Schedule. One warp per new token; lanes walk the latent and RoPE elements
// (coalesced, any row stride). BF16: copied. FP8: the warp reduces the
// group's amax, every lane quantizes its elements with the shared scale
// (scale = amax / 448, RNE, saturating; docs/cache-formats.md). A negative
// slot is padding and skipped; a slot past the cache is counted in bad_slots
// and not written.

namespace snapmla {

struct AppendParams {
    const bf16_t *latent;     // [num_tokens, latent_stride]
    const bf16_t *rope;       // [num_tokens, rope_stride]
    const long long *slots;   // [num_tokens]: page * PAGE_SIZE + offset
    unsigned char *cache;
    int *bad_slots;           // optional
    long long num_tokens;
    long long latent_stride;  // elements
    long long rope_stride;    // elements
    long long num_pages;
    long long page_stride;    // bytes
};

// FP8 formats: quantize one token's latent, copy its RoPE.
__device__ __forceinline__ void quantize_token(const bf16_t *latent_src, const bf16_t *rope_src,
                                               unsigned char *page, long long offset, int lane)
{
#if __CUDA_ARCH__ >= 890
    unsigned char *latent_dst;
    float *scale_dst;
    bf16_t *rope_dst;
    if (FORMAT == FORMAT_FP8_PER_TOKEN) {
        latent_dst = page + offset * LATENT;
        rope_dst = (bf16_t *)(page + (long long)PAGE_SIZE * LATENT + offset * ROPE * 2);
        scale_dst = (float *)(page + (long long)PAGE_SIZE * (LATENT + 2 * ROPE) + offset * 4);
    } else {
        latent_dst = page + offset * TILE128_TOKEN_BYTES;
        scale_dst = (float *)(latent_dst + LATENT);
        rope_dst = (bf16_t *)(latent_dst + LATENT + 4 * (LATENT / 128));
    }
    // One scale per group: the whole latent (per token) or 128 channels.
    constexpr int GROUP = FORMAT == FORMAT_FP8_PER_TOKEN ? LATENT : 128;
    for (int g = 0; g < LATENT / GROUP; ++g) {
        float amax = 0.f;
        for (int c = g * GROUP + lane; c < (g + 1) * GROUP; c += 32)
            amax = fmaxf(amax, fabsf(bf16_to_f32(latent_src[c])));
        amax = warp_max(amax);
        float scale = FORMAT == FORMAT_FP8_PER_TILE128 ? fp8_tile128_scale(amax) : fp8_scale(amax, false);
        for (int c = g * GROUP + lane; c < (g + 1) * GROUP; c += 32)
            latent_dst[c] = f32_to_e4m3(bf16_to_f32(latent_src[c]) / scale);
        if (lane == 0)
            scale_dst[g] = scale;
    }
    for (int c = lane; c < ROPE; c += 32)
        rope_dst[c] = rope_src[c];
#else
    __trap();   // validation rejects FP8 formats below sm_89
#endif
}

extern "C" __global__ void __launch_bounds__(THREADS)
snapmla_append(const AppendParams p)
{
    const long long token = (long long)blockIdx.x * WARPS + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (token >= p.num_tokens)
        return;
    const long long slot = p.slots[token];
    if (slot < 0)
        return;
    if (slot >= p.num_pages * PAGE_SIZE) {
        if (lane == 0 && p.bad_slots)
            atomicAdd(p.bad_slots, 1);
        return;
    }
    unsigned char *page = p.cache + (slot / PAGE_SIZE) * p.page_stride;
    const long long offset = slot % PAGE_SIZE;
    const bf16_t *latent_src = p.latent + token * p.latent_stride;
    const bf16_t *rope_src = p.rope + token * p.rope_stride;
    if constexpr (FORMAT == FORMAT_BF16) {
        bf16_t *latent_dst, *rope_dst;
        if (ROPE_PLANAR) {
            latent_dst = (bf16_t *)(page + offset * LATENT * 2);
            rope_dst = (bf16_t *)(page + (long long)PAGE_SIZE * LATENT * 2 + offset * ROPE * 2);
        } else {
            latent_dst = (bf16_t *)(page + offset * WIDTH * 2);
            rope_dst = latent_dst + LATENT;
        }
        for (int c = lane; c < LATENT; c += 32)
            latent_dst[c] = latent_src[c];
        for (int c = lane; c < ROPE; c += 32)
            rope_dst[c] = rope_src[c];
    } else {
        quantize_token(latent_src, rope_src, page, offset, lane);
    }
}

}  // namespace snapmla
