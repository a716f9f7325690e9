// ---- mla_decode, Hopper: the work order of a persistent decode -------------
//
// Used when a batch's row blocks are at least as many as the decode CTAs the
// GPU holds (below that, the split grid fills the GPU; runtime/launch.c).
// One CTA, PLAN_THREADS threads, before the decode kernel, on the device from
// the cache lengths (the step stays capturable in a CUDA graph). Every row
// block of every request is one work item, whole (no split). The items are
// sorted by length, longest first (a counting sort on the tile count), the
// row blocks of a request side by side (so the second reads the KV tiles
// the first just brought into L2); the decode CTAs take them from a queue as
// they finish: longest-processing-time-first scheduling, which keeps a
// ragged batch's long requests from landing last.
// Out: split_counts[b] = 1, plan[0] = 0 (the queue's head), plan[1] = the
// item count, items at plan + 4: {b, row block, first tile, end tile}.

namespace snapmla {

constexpr int PLAN_THREADS = 1024, PLAN_KEYS = 1024;
constexpr int ROW_BLOCKS = (ROWS + Q_TILE - 1) / Q_TILE;

__device__ __forceinline__ int size_key(int tiles) { return min(tiles, PLAN_KEYS - 1); }

extern "C" __global__ void __launch_bounds__(PLAN_THREADS, 1)
snapmla_decode_plan(const DecodeParams p)
{
    __shared__ int next_at[PLAN_KEYS];   // per size key: its count, then where its next item goes
    __shared__ int warp_total[PLAN_THREADS / 32];
    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    next_at[tid] = 0;
    __syncthreads();
    for (int b = tid; b < p.batch; b += PLAN_THREADS) {
        atomicAdd(&next_at[size_key((p.seqlens[b] + KV_TILE - 1) / KV_TILE)], ROW_BLOCKS);
        p.split_counts[b] = 1;
    }
    __syncthreads();

    // Exclusive scan of the counts, largest key first: thread t holds key
    // PLAN_KEYS - 1 - t.
    static_assert(PLAN_KEYS == PLAN_THREADS, "one key per thread");
    const int key = PLAN_KEYS - 1 - tid, count = next_at[key];
    const int incl = warp_inclusive_sum(count);
    if (lane == 31)
        warp_total[warp] = incl;
    __syncthreads();
    if (warp == 0) {
        const int w = warp_total[lane];
        warp_total[lane] = warp_inclusive_sum(w) - w;   // exclusive, per warp
    }
    __syncthreads();
    next_at[key] = warp_total[warp] + incl - count;
    if (tid == 0) {
        p.plan[0] = 0;
        p.plan[1] = p.batch * ROW_BLOCKS;
    }
    __syncthreads();

    // Each request's row blocks to their places, side by side.
    int4 *items = (int4 *)(p.plan + 4);
    for (int b = tid; b < p.batch; b += PLAN_THREADS) {
        const int tiles = (p.seqlens[b] + KV_TILE - 1) / KV_TILE;
        const int at = atomicAdd(&next_at[size_key(tiles)], ROW_BLOCKS);
        for (int rb = 0; rb < ROW_BLOCKS; ++rb)
            items[at + rb] = make_int4(b, rb, 0, tiles);
    }
}

}  // namespace snapmla
