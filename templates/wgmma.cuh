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

// `desc` moved on by `bytes` (a multiple of 16). The start address is the
// low 14 bits in 16-byte units and smem ends below 256 KB, so a plain add
// never carries out of it: one add per wgmma instead of rebuilding the
// descriptor from a pointer (about ten instructions each, measured in SASS).
__device__ __forceinline__ unsigned long long desc_plus(unsigned long long desc, int bytes)
{
    const unsigned lo = (unsigned)desc + (unsigned)(bytes >> 4), hi = (unsigned)(desc >> 32);
    return (unsigned long long)hi << 32 | lo;
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

// A value the same in every lane, broadcast from lane 0: no change in
// value, but ptxas then knows it is warp-uniform, and what derives from it
// (ring slots, mbarrier addresses, smem descriptors) stays in uniform
// registers instead of being moved there (R2UR) before every wgmma.
__device__ __forceinline__ int warp_uniform(int v) { return __shfl_sync(0xffffffffu, v, 0); }

// Ordinary shared-memory stores (and cp.async) become visible to wgmma only
// through a proxy fence in each writing thread before the barrier.
__device__ __forceinline__ void fence_async_smem() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

__device__ __forceinline__ void named_barrier(int id, int threads)
{
    asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// Signals a named barrier without waiting: the producer half of a hand-off
// whose consumers bar.sync on the same id (stores before it are released).
__device__ __forceinline__ void named_barrier_arrive(int id, int threads)
{
    asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// Waits at a named barrier and returns whether `value` was true in any of
// its threads (the same answer in all, which ptxas can see as uniform).
__device__ __forceinline__ bool barrier_or(int id, int threads, bool value)
{
    int any;
    asm volatile("{\n.reg .pred p, q;\nsetp.ne.b32 p, %1, 0;\nbar.red.or.pred q, %2, %3, p;\n"
                 "selp.b32 %0, 1, 0, q;\n}\n"
                 : "=r"(any)
                 : "r"((int)value), "r"(id), "r"(threads)
                 : "memory");
    return any != 0;
}

// Moves registers between warpgroups (setmaxnreg, sm_90a): a warpgroup
// gives some back, another takes them; ptxas allocates each role's code
// under its new count. N: a multiple of 8 in [24, 256].
template <int N> __device__ __forceinline__ void registers_give_back()
{
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
}
template <int N> __device__ __forceinline__ void registers_take()
{
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
}

// ---- mbarriers: completion of asynchronous copies ----
__device__ __forceinline__ unsigned mbarrier_address(const unsigned long long *bar)
{
    return (unsigned)__cvta_generic_to_shared(bar);
}

__device__ __forceinline__ void mbarrier_init(unsigned long long *bar, unsigned arrivals)
{
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(mbarrier_address(bar)), "r"(arrivals)
                 : "memory");
}

// Makes initialised mbarriers visible before any thread arrives on them.
__device__ __forceinline__ void fence_mbarrier_init()
{
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}

// One arrival on `bar` once every cp.async this thread issued so far has
// landed (noinc: the arrival is one of those the barrier was initialised with).
__device__ __forceinline__ void cp_async_arrive(unsigned long long *bar)
{
    asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(mbarrier_address(bar))
                 : "memory");
}

// One arrival of this thread on `bar`.
__device__ __forceinline__ void mbarrier_arrive(unsigned long long *bar)
{
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(mbarrier_address(bar)) : "memory");
}

// Waits until the phase with parity `parity` of `bar` has completed.
__device__ __forceinline__ void mbarrier_wait(unsigned long long *bar, unsigned parity)
{
    asm volatile("{\n.reg .pred done;\nWAIT:\n"
                 "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
                 "@!done bra WAIT;\n}\n" ::"r"(mbarrier_address(bar)), "r"(parity)
                 : "memory");
}

// ---- bulk copies (TMA): completion counted in bytes on an mbarrier ----
// This thread's arrival on `bar`, which also makes the current phase wait
// for `bytes` more bytes of bulk copies.
__device__ __forceinline__ void mbarrier_expect_bytes(unsigned long long *bar, unsigned bytes)
{
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(mbarrier_address(bar)),
                 "r"(bytes)
                 : "memory");
}

// The box of the 3-D tensor map `map` (a __grid_constant__ parameter) at
// element coordinates (x, y, z) into smem at dst, laid out and swizzled as
// the map says; its bytes complete on `bar`.
__device__ __forceinline__ void tma_load_3d(void *dst, const void *map, int x, int y, int z,
                                            unsigned long long *bar)
{
    asm volatile("cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
                 " [%0], [%1, {%2, %3, %4}], [%5];\n" ::"r"((unsigned)__cvta_generic_to_shared(dst)),
                 "l"((unsigned long long)map), "r"(x), "r"(y), "r"(z), "r"(mbarrier_address(bar))
                 : "memory");
}

// `bytes` contiguous bytes (a multiple of 16; both ends 16-byte aligned)
// from global memory into smem; they complete on `bar`.
__device__ __forceinline__ void bulk_load(void *dst, const void *src, unsigned bytes, unsigned long long *bar)
{
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n"
                 ::"r"((unsigned)__cvta_generic_to_shared(dst)), "l"(src), "r"(bytes), "r"(mbarrier_address(bar))
                 : "memory");
}

}  // namespace snapmla
