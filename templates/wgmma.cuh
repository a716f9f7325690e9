// ---- wgmma plumbing (sm_90a): descriptors, ordering, proxy fences ---------
// Shared by the Hopper decode and the tensor-core peak probe; needs nothing
// from the prelude, so the probe can stand alone.

namespace snapmla {

// wgmma shared-memory descriptor: start, leading and stride byte offsets (16-byte units), swizzle.
__device__ __forceinline__ unsigned long long smem_desc(const void *p, int lbo, int sbo, int mode)
{
    return (unsigned long long)(((unsigned)__cvta_generic_to_shared(p) & 0x3ffffu) >> 4) |
           ((unsigned long long)((lbo >> 4) & 0x3fff) << 16) |
           ((unsigned long long)((sbo >> 4) & 0x3fff) << 32) | ((unsigned long long)mode << 62);
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void wgmma_wait()
{
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}

// Keeps the compiler from moving accumulator reads or writes across an
// asynchronous wgmma (it cannot see that the asm writes them later).
template <int N> __device__ __forceinline__ void fence_registers(float (&r)[N])
{
#pragma unroll
    for (int i = 0; i < N; ++i)
        asm volatile("" : "+f"(r[i])::"memory");
}

// Ordinary shared-memory stores (and cp.async) become visible to wgmma only
// through a proxy fence in each writing thread before the barrier.
__device__ __forceinline__ void fence_async_smem() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

__device__ __forceinline__ void named_barrier(int id, int threads)
{
    asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

}  // namespace snapmla
