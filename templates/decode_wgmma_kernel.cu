// ---- mla_decode on Hopper: the kernel entry of the seesaw (both wgmma paths)
//
// Runs decode_item (decode_wgmma_fp8.cu or decode_wgmma_bf16.cu, whichever
// the variant's compute selects) over the CTA's work items. SmemLayout,
// carve_smem and decode_item come from that file. (The FP8 path's role
// warpgroups have their own entry, in decode_wgmma_fp8_roles.cu.)

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
        // one arrival per copier thread; one per thread of both warpgroups
        init_ring_barriers(m.full, m.used, KV_TMA ? 1 : 128, 256);
        fence_mbarrier_init();
    }
    wait_prior_grids();   // (the plan, the cache append, Q's producer)
    for_each_item(p, item_index,
                  [&](int4 item, int splits, int base) { decode_item(p, maps, m, item, splits, base); });
    release_queue(p);
}

}  // namespace snapmla
