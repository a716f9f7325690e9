// ---- prelude: constants of this variant and PTX wrappers -------------------
// Filled from the validated spec; every generated kernel starts with this.
// Self-contained on purpose: NVRTC needs no include path.

namespace snapmla {

constexpr int LATENT = {{latent_dim}};      // V width, latent part of K
constexpr int ROPE = {{rope_dim}};          // RoPE part of K
constexpr int WIDTH = LATENT + ROPE;        // K width
constexpr int Q_HEADS = {{q_heads}};
constexpr int Q_LEN = {{q_len}};
constexpr int ROWS = Q_HEADS * Q_LEN;       // query rows of one request
constexpr bool CAUSAL = {{causal}};
constexpr int PAGE_SIZE = {{page_size}};
constexpr bool ROPE_PLANAR = {{rope_planar}};

// Cache formats (docs/cache-formats.md has the byte layouts).
constexpr int FORMAT_BF16 = 0;            // [latent | rope] BF16, or planes
constexpr int FORMAT_FP8_PER_TOKEN = 1;   // planes: e4m3 latent, BF16 rope, fp32 scale
constexpr int FORMAT_FP8_PER_TILE128 = 2; // FlashMLA: [e4m3 latent | fp32 x L/128 | BF16 rope]
constexpr int FORMAT = {{cache_format}};
constexpr int TILE128_TOKEN_BYTES = LATENT + 4 * (LATENT / 128) + 2 * ROPE;
constexpr int KV_TILE = {{kv_tile}};
constexpr int Q_TILE = {{q_tile}};
constexpr int STAGES = {{stages}};
constexpr int THREADS = {{threads}};
constexpr int WARPS = THREADS / 32;
constexpr int MAX_SPLITS = {{max_splits}};
constexpr int SPLIT_MIN_TOKENS = {{split_min_tokens}};

typedef unsigned short bf16_t;  // raw BF16 bits

__device__ __forceinline__ float inf_f32() { return __int_as_float(0x7f800000); }

__device__ __forceinline__ float bf16_to_f32(bf16_t x)
{
    return __uint_as_float(((unsigned)x) << 16);
}

// Round to nearest even, NaN kept: the same rule as the host reference.
__device__ __forceinline__ bf16_t f32_to_bf16(float x)
{
    bf16_t r;
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(r) : "f"(x));
    return r;
}

// e4m3 (OCP E4M3FN) -> float, exact, on every arch: the bits move into a
// float's exponent and mantissa; subnormals are multiples of 2^-9.
__device__ __forceinline__ float e4m3_to_f32(unsigned code)
{
    unsigned sign = (code & 0x80u) << 24, magnitude = code & 0x7fu;
    if (magnitude == 0x7fu)
        return __uint_as_float(0x7fc00000u | sign);
    if (magnitude >= 8u)
        return __uint_as_float(sign | (((magnitude >> 3) + 120u) << 23) | ((magnitude & 7u) << 20));
    return __uint_as_float(sign | __float_as_uint((float)magnitude * 0.001953125f));
}

#if __CUDA_ARCH__ >= 890
// float -> e4m3, round to nearest even, saturating to +-448 (NaN stays NaN).
__device__ __forceinline__ unsigned char f32_to_e4m3(float x)
{
    unsigned short pair;
    asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(pair) : "f"(0.f), "f"(x));
    return (unsigned char)(pair & 0xff);
}
#endif

// x (positive, normal) rounded up to a power of two.
__device__ __forceinline__ float power_of_two_above(float x)
{
    const unsigned bits = __float_as_uint(x);
    return bits & 0x7fffffu ? __uint_as_float((bits & 0xff800000u) + 0x800000u) : x;
}

// The quantization scale of a group with largest magnitude amax: amax / 448,
// or that rounded up to a power of two (Q's per-row scale). An all-zero
// group gets 1, so its codes are zeros and decode to zeros.
__device__ __forceinline__ float fp8_scale(float amax, bool power_of_two)
{
    if (amax == 0.f)
        return 1.f;
    const float scale = amax / 448.f;
    return power_of_two ? power_of_two_above(scale) : scale;
}

// fp8_per_tile128's group scale, as FlashMLA's writer sets it: amax / 448
// raised to 1e-4, then up to a power of two (2^-13 at least: an all-zero
// group too, so a token's real groups always hold its largest scale).
__device__ __forceinline__ float fp8_tile128_scale(float amax) { return power_of_two_above(fmaxf(amax / 448.f, 1e-4f)); }

// Low and high BF16 of a packed pair, as floats.
__device__ __forceinline__ float bf16_lo(unsigned pair) { return __uint_as_float(pair << 16); }
__device__ __forceinline__ float bf16_hi(unsigned pair) { return __uint_as_float(pair & 0xffff0000u); }

// 16-byte asynchronous copy global -> shared; src_bytes 0 fills zeros and
// reads nothing (how tokens past the end are kept out of the math).
__device__ __forceinline__ void cp_async_16(void *smem, const void *gmem, int src_bytes)
{
    unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(src_bytes));
}

// 4-byte asynchronous copy (per-token scales), zero-filled like cp_async_16.
__device__ __forceinline__ void cp_async_4(void *smem, const void *gmem, int src_bytes)
{
    unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(s), "l"(gmem), "r"(src_bytes));
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }

template <int N> __device__ __forceinline__ void cp_async_wait()
{
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// Programmatic dependent launch (sm_90+; runtime/launch.c launches the
// kernels that call this with it): waits until the grids before this one in
// the stream have finished and their writes are visible. Called before a
// kernel's first global memory access; a no-op for a plain launch.
__device__ __forceinline__ void wait_prior_grids()
{
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

// Lets the next kernel in the stream start launching its CTAs now (they
// wait in wait_prior_grids until this grid has finished).
__device__ __forceinline__ void allow_dependent_launch()
{
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// Traps when the launch gave less dynamic shared memory than this kernel's
// layout ends at: a host-side size formula out of step with the template
// fails loudly instead of corrupting memory.
__device__ __forceinline__ void check_smem_layout(const void *base, const void *end)
{
    unsigned size;
    asm("mov.u32 %0, %%dynamic_smem_size;" : "=r"(size));
    if ((unsigned)((const char *)end - (const char *)base) > size)
        __trap();
}

__device__ __forceinline__ float warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

__device__ __forceinline__ float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Sum of v over lanes 0..lane of the warp (inclusive prefix sum).
__device__ __forceinline__ int warp_inclusive_sum(int v)
{
    const int lane = threadIdx.x % 32;
#pragma unroll
    for (int d = 1; d < 32; d *= 2) {
        const int u = __shfl_up_sync(0xffffffffu, v, d);
        if (lane >= d)
            v += u;
    }
    return v;
}

__device__ __forceinline__ unsigned smem_address(const void *p)
{
    return (unsigned)__cvta_generic_to_shared(p);
}

// Four 8 x 8 b16 matrices from shared memory, one row address per lane.
__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], const void *p)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_address(p)));
}

// The same, each matrix transposed. ORDERED adds a "memory" clobber, so the
// load stays after an mbarrier wait that made a TMA tile visible (the FP8 V^T
// read); the mma engine's loads follow a __syncthreads and go without.
template <bool ORDERED = false>
__device__ __forceinline__ void ldmatrix_x4_trans(unsigned (&r)[4], const void *p)
{
    if constexpr (ORDERED)
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                     : "r"(smem_address(p))
                     : "memory");
    else
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                     : "r"(smem_address(p)));
}

// Max and sum over the 4 threads of a quad (the lanes that share an MMA row).
__device__ __forceinline__ float quad_max(float v)
{
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
    return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}

__device__ __forceinline__ float quad_sum(float v)
{
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

}  // namespace snapmla
