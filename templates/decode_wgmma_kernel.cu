// ---- mla_decode on Hopper: the kernel entry of both wgmma paths -----------
//
// Runs decode_item (decode_wgmma_fp8.cu or decode_wgmma_bf16.cu, whichever
// the variant's compute selects) over the CTA's work items. SmemLayout,
// carve_smem and decode_item come from that file.

namespace snapmla {

// Two launch shapes. Persistent (p.plan set, batches with at least as many
// row blocks as CTAs fit on the GPU): one CTA per SM slot takes whole row
// blocks from the plan's queue, longest first, until none is left. Split
// grid (otherwise): one CTA per (row block, split, request), the split plan
// from the request's length (kv_range). The ring's mbarriers are set up once.
extern "C" __global__ void __launch_bounds__(THREADS, 1)
snapmla_decode_split(const DecodeParams p, const __grid_constant__ KvMaps maps)
{
    extern __shared__ __align__(16) unsigned char smem_raw[];
    __shared__ int item_index;
    const SmemLayout m = carve_smem(smem_raw);
    if (threadIdx.x == 0) {
        for (int s = 0; s < STAGES; ++s) {
            mbarrier_init(m.full + s, KV_TMA ? 1 : 128);   // one arrival per copier thread
            mbarrier_init(m.used + s, 256);                // one per thread of both, per tile
        }
        fence_mbarrier_init();
    }
    wait_prior_grids();   // (the plan, the cache append, Q's producer)
    const int4 *items = (const int4 *)(p.plan + 4);
    for (int round = 0, base = 0;; ++round) {
        // Nothing is in flight here (each item ends with its products
        // retired); saying so keeps ptxas from serializing every wgmma.
        wgmma_wait<0>();
        int4 item = make_int4(0, 0, 0, 0);
        int splits = 1;
        bool have;
        if (p.plan == nullptr) {   // split grid: this CTA's one item
            const KvRange r = kv_range(p, blockIdx.z, blockIdx.y);
            const int first = r.t_begin / KV_TILE;
            have = round == 0 && (int)blockIdx.y < r.splits;
            item = make_int4(blockIdx.z, blockIdx.x | blockIdx.y << 16, first, first + r.tiles);
            splits = r.splits;
        } else {                   // persistent: the queue's next item
            if (threadIdx.x == 0)
                item_index = atomicAdd(p.plan, 1);
            __syncthreads();
            have = item_index < p.plan[1];
            if (have) {
                item = items[item_index];
                splits = p.split_counts[item.x];   // the plan's pieces of this request
            }
        }
        // (a barrier's result, so ptxas sees the exit as uniform; it also
        // orders the mbarrier setup and item_index's reads before reuse)
        if (!__syncthreads_or(have))
            break;
        decode_item(p, maps, m, item, splits, base);
        base += item.w - item.z;
    }
    // Persistent: the last CTA out puts the queue back to its start, so the
    // next decode on this plan (plan_ready) finds every item again. Every
    // other CTA's pops come before its count (the fence), and the next
    // kernel in the stream sees the reset (it waits for this grid).
    if (p.plan != nullptr && threadIdx.x == 0) {
        __threadfence();
        if (atomicAdd(p.plan + 2, 1) == (int)gridDim.x - 1) {
            atomicExch(p.plan, 0);
            atomicExch(p.plan + 2, 0);
        }
    }
}

}  // namespace snapmla
