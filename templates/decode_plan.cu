// ---- mla_decode, Hopper: the work order of a persistent decode -------------
//
// Used when a batch's row blocks are at least as many as the decode CTAs the
// GPU holds (below that, the split grid fills the GPU; runtime/launch.c), or
// always under split.policy balanced. One CTA, PLAN_THREADS threads, before
// the decode kernel, on the device from the cache lengths (the step stays
// capturable in a CUDA graph).
// Work items: each row block of each request, whole; or, balanced
// (p.plan_ctas > 0), in pieces: a request is cut into about (its tiles / an
// even share of the batch's tiles per CTA slot) pieces (at most MAX_SPLITS,
// none under SPLIT_MIN_TOKENS), so a ragged batch's long requests no longer
// set the step's time; their partials go through the combine kernel.
// The items are sorted by length, longest first (a counting sort on the
// tile count), the row blocks of a request's piece side by side (so the
// second reads the KV tiles the first just brought into L2); the decode CTAs
// take them from a queue as they finish: longest-processing-time-first
// scheduling (the pair kernel's gangs take them by round instead, in the
// same order: wgmma_decode.cuh).
// Out: split_counts[b] = the request's pieces, plan[0] = 0 (the queue's
// head), plan[1] = the item count, plan[2] = 0 (decode CTAs done), items at
// plan + 4: {b, row block | piece << 16, first tile, end tile}. The decode
// kernel leaves plan[0] and plan[2] at 0 again, so later decodes with the
// same lengths (the step's other layers) can reuse the plan.

namespace snapmla {

constexpr int PLAN_THREADS = 1024, PLAN_KEYS = 1024;
constexpr int ROW_BLOCKS = (ROWS + Q_TILE - 1) / Q_TILE;

__device__ __forceinline__ int size_key(int tiles) { return min(tiles, PLAN_KEYS - 1); }

// A request of `tiles` tiles in pieces of about `share` tiles (the nearest
// count: a request just over the share stays whole), at most MAX_SPLITS of
// them and none under SPLIT_MIN_TOKENS: the piece length.
__device__ __forceinline__ int piece_tiles(int tiles, int share)
{
    constexpr int MIN_TILES = (SPLIT_MIN_TOKENS + KV_TILE - 1) / KV_TILE;
    const int most = max(1, tiles / MIN_TILES);
    const int pieces = min(min(MAX_SPLITS, most), max(1, (tiles + share / 2) / share));
    return max(1, (tiles + pieces - 1) / pieces);
}

__device__ __forceinline__ int pieces_of(int tiles, int share)
{
    const int each = piece_tiles(tiles, share);
    return max(1, (tiles + each - 1) / each);
}

extern "C" __global__ void __launch_bounds__(PLAN_THREADS, 1)
snapmla_decode_plan(const DecodeParams p)
{
    __shared__ int next_at[PLAN_KEYS];   // per size key: its count, then where its next item goes
    __shared__ int warp_total[PLAN_THREADS / 32];
    __shared__ unsigned long long all_tiles, all_pieces;
    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    allow_dependent_launch();   // the decode CTAs set up meanwhile, then wait for the plan
    wait_prior_grids();
    auto tiles_of = [&](int b) { return (p.seqlens[b] + KV_TILE - 1) / KV_TILE; };
    next_at[tid] = 0;
    if (tid == 0)
        all_tiles = all_pieces = 0;
    __syncthreads();
    int share = 1 << 30;   // whole row blocks
    if (p.plan_ctas > 0) {
        // An even share of the tiles per CTA slot (a slot runs a piece's row
        // blocks); if rounding leaves more pieces than slots (a second,
        // partial wave), the share grows by that ratio once.
        const long long slots = max(1, p.plan_ctas / ROW_BLOCKS);
        unsigned long long mine = 0;
        for (int b = tid; b < p.batch; b += PLAN_THREADS)
            mine += tiles_of(b);
        atomicAdd(&all_tiles, mine);
        __syncthreads();
        share = (int)max(1ll, ((long long)all_tiles + slots - 1) / slots);
        unsigned long long count = 0;
        for (int b = tid; b < p.batch; b += PLAN_THREADS)
            count += pieces_of(tiles_of(b), share);
        atomicAdd(&all_pieces, count);
        __syncthreads();
        if ((long long)all_pieces > slots)
            share = (int)(((long long)share * (long long)all_pieces + slots - 1) / slots);
    }
    for (int b = tid; b < p.batch; b += PLAN_THREADS) {
        const int tiles = tiles_of(b), each = piece_tiles(tiles, share), pieces = pieces_of(tiles, share);
        for (int k = 0; k < pieces; ++k)
            atomicAdd(&next_at[size_key(min(each, tiles - k * each))], ROW_BLOCKS);
        p.split_counts[b] = pieces;
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
        const int w_incl = warp_inclusive_sum(w);
        warp_total[lane] = w_incl - w;   // exclusive, per warp
        if (lane == 31) {
            p.plan[0] = 0;
            p.plan[1] = w_incl;          // every item
            p.plan[2] = 0;               // decode CTAs done (see decode_wgmma_kernel.cu)
        }
    }
    __syncthreads();
    next_at[key] = warp_total[warp] + incl - count;
    __syncthreads();

    // Each request's pieces to their places, a piece's row blocks side by side.
    int4 *items = (int4 *)(p.plan + 4);
    for (int b = tid; b < p.batch; b += PLAN_THREADS) {
        const int tiles = tiles_of(b), each = piece_tiles(tiles, share), pieces = pieces_of(tiles, share);
        for (int k = 0; k < pieces; ++k) {
            const int first = k * each, end = min(tiles, first + each);
            const int at = atomicAdd(&next_at[size_key(end - first)], ROW_BLOCKS);
            for (int rb = 0; rb < ROW_BLOCKS; ++rb)
                items[at + rb] = make_int4(b, rb | k << 16, first, end);
        }
    }
}

}  // namespace snapmla
