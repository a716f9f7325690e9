// ---- mla_decode on Hopper: the kernel entry of the two-warpgroup kernels ----
//
// Runs decode_item (decode_wgmma_fp8.cu, decode_wgmma_bf16.cu or
// decode_wgmma_bf16_pair.cu, whichever the variant selects) over the CTA's
// work items. SmemLayout, carve_smem and decode_item come from that file,
// and init_item_barriers where its ring is not the seesaw's. (The FP8
// path's role warpgroups have their own entry, in decode_wgmma_fp8_roles.cu.)

namespace snapmla {

// decode_item over the CTA's items, in the form its file takes them.
template <typename Layout>
__device__ __forceinline__ void run_items(const DecodeParams &p, const KvMaps &maps, const Layout &m, int &item_index)
{
    if constexpr (TakesItemAhead<Layout>::value) {
        for_each_item_ahead(p, item_index, [&](int4 item, int splits, int base, bool prefetched, const PopItem &pop) {
            decode_item(p, maps, m, item, splits, base, prefetched, pop);
        });   // (it releases the queue at the CTA's last pop)
    } else {
        for_each_item(p, item_index,
                      [&](int4 item, int splits, int base) { decode_item(p, maps, m, item, splits, base); });
        release_queue(p);
    }
}

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
        init_item_barriers(m);
        fence_mbarrier_init();
    }
    wait_prior_grids();   // (the plan, the cache append, Q's producer)
    run_items(p, maps, m, item_index);
}

}  // namespace snapmla
