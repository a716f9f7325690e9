// ---- kv_append: new tokens into the paged BF16 cache -----------------------
//
// Schedule. One warp per new token; lanes copy the latent and RoPE elements
// (coalesced, any row stride). A negative slot is padding and skipped; a slot
// past the cache is counted in bad_slots and not written.

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
    bf16_t *latent_dst, *rope_dst;
    if (ROPE_PLANAR) {
        latent_dst = (bf16_t *)(page + offset * LATENT * 2);
        rope_dst = (bf16_t *)(page + (long long)PAGE_SIZE * LATENT * 2 + offset * ROPE * 2);
    } else {
        latent_dst = (bf16_t *)(page + offset * WIDTH * 2);
        rope_dst = latent_dst + LATENT;
    }
    const bf16_t *latent_src = p.latent + token * p.latent_stride;
    const bf16_t *rope_src = p.rope + token * p.rope_stride;
    for (int c = lane; c < LATENT; c += 32)
        latent_dst[c] = latent_src[c];
    for (int c = lane; c < ROPE; c += 32)
        rope_dst[c] = rope_src[c];
}

}  // namespace snapmla
