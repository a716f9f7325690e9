// Device probe: how fast can each SM pull KV-tile-sized bulk copies into its
// shared memory, with K of them in flight? The decode kernels' rings keep
// 2 (BF16, 72 KB tiles) to 4 (FP8, 40 KB) tiles; this says what that many
// copies in flight can deliver per SM, from L2 (a source that fits in it,
// as when a request's row blocks read the same tiles) and from DRAM.
// One CTA per SM, one thread issuing cp.async.bulk copies that complete on
// an mbarrier per slot; nothing computes, so the copy rate is the ceiling.
//   nvcc -O3 -gencode=arch=compute_90a,code=sm_90a bench/probe/tile_copy.cu -o tile_copy && ./tile_copy
// Prints one line per (tile bytes, slots, source): TB/s into shared memory.
#include <cstdio>
#include <cstdlib>
#include <cuda_runtime.h>

#define CHECK(call)                                                                      \
    do {                                                                                 \
        cudaError_t err_ = (call);                                                       \
        if (err_ != cudaSuccess) {                                                       \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call,                \
                    cudaGetErrorString(err_));                                           \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

// The kernels' own mbarrier and bulk-copy helpers (templates/wgmma.cuh),
// given the one prelude function they use; the rest of the prelude is
// filled in by the generator.
namespace snapmla {
__device__ __forceinline__ unsigned smem_address(const void *p) { return (unsigned)__cvta_generic_to_shared(p); }
}  // namespace snapmla
#include "../../templates/wgmma.cuh"
using namespace snapmla;

// Copy tile `tile` of this CTA into `slot`: one bulk copy per 8 KB piece, as
// the decode's TMA boxes are about that size.
__device__ __forceinline__ void copy_tile(unsigned char *ring, unsigned long long *bars, int slot, const char *src,
                                          long long src_tiles, int tile_bytes, long long tile)
{
    mbarrier_expect_bytes(bars + slot, tile_bytes);
    const long long at = (tile * 7919 + blockIdx.x * 104729LL) % src_tiles * tile_bytes;
    for (int off = 0; off < tile_bytes; off += 8192)
        bulk_load(ring + slot * tile_bytes + off, src + at + off, tile_bytes - off < 8192 ? tile_bytes - off : 8192,
                  bars + slot);
}

extern "C" __global__ void __launch_bounds__(32, 1)
pull_tiles(const char *src, long long src_tiles, int tile_bytes, int slots, int tiles, int *sink)
{
    extern __shared__ __align__(128) unsigned char ring[];
    __shared__ unsigned long long bars[8];
    if (threadIdx.x != 0)
        return;
    for (int s = 0; s < slots; ++s)
        mbarrier_init(bars + s, 1);
    fence_mbarrier_init();
    for (int i = 0; i < slots && i < tiles; ++i)
        copy_tile(ring, bars, i, src, src_tiles, tile_bytes, i);
    int acc = 0;
    for (int i = 0; i < tiles; ++i) {
        const int slot = i % slots;
        mbarrier_wait(bars + slot, (unsigned)(i / slots) & 1u);
        acc += ring[slot * tile_bytes + (i & 127)];   // touch the tile (generic proxy, after the wait)
        if (i + slots < tiles)
            copy_tile(ring, bars, slot, src, src_tiles, tile_bytes, i + slots);
    }
    if (acc == 12345)
        *sink = acc;
}

int main()
{
    int sms = 0;
    CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    const long long big = 4LL << 30, small = 24LL << 20;   // DRAM-resident, L2-resident sources
    char *src = nullptr;
    int *sink = nullptr;
    CHECK(cudaMalloc(&src, big));
    CHECK(cudaMemset(src, 1, big));
    CHECK(cudaMalloc(&sink, sizeof(int)));
    CHECK(cudaFuncSetAttribute(pull_tiles, cudaFuncAttributeMaxDynamicSharedMemorySize, 220 * 1024));
    cudaEvent_t t0, t1;
    CHECK(cudaEventCreate(&t0));
    CHECK(cudaEventCreate(&t1));
    struct { const char *name; int bytes; } kinds[] = {{"bf16 tile (64 x 1152 B)", 73728}, {"fp8 tile (64 x 644 B)", 41216}};
    printf("tile_copy: %d CTAs (one per SM), one thread each issuing cp.async.bulk in 8 KB pieces\n", sms);
    for (const auto &k : kinds) {
        for (int slots = 1; slots <= 5 && slots * k.bytes <= 220 * 1024; ++slots) {
            for (int from_l2 = 1; from_l2 >= 0; --from_l2) {
                const long long src_tiles = (from_l2 ? small : big) / k.bytes;
                const int tiles = from_l2 ? 2000 : 1000;
                pull_tiles<<<sms, 32, slots * k.bytes>>>(src, src_tiles, k.bytes, slots, 50, sink);   // warm-up
                CHECK(cudaGetLastError());
                CHECK(cudaEventRecord(t0));
                pull_tiles<<<sms, 32, slots * k.bytes>>>(src, src_tiles, k.bytes, slots, tiles, sink);
                CHECK(cudaGetLastError());
                CHECK(cudaEventRecord(t1));
                CHECK(cudaEventSynchronize(t1));
                float ms = 0.f;
                CHECK(cudaEventElapsedTime(&ms, t0, t1));
                const double bytes = (double)sms * tiles * k.bytes;
                printf("%-24s slots %d  from %-4s  %6.2f TB/s  (%.2f us per tile per SM)\n", k.name, slots,
                       from_l2 ? "L2" : "DRAM", bytes / (ms * 1e-3) / 1e12, ms * 1e3 / tiles);
            }
        }
    }
    CHECK(cudaFree(src));
    CHECK(cudaFree(sink));
    return 0;
}
