// ---- mla_decode, Hopper FP8 path: one score warpgroup over tile pairs (tile.warps 12)
//
// (Q to e4m3, the tile copies, V^T fragments and P' stores:
// wgmma_fp8_parts.cuh; the ring, paired here, and its TMA maps:
// wgmma_decode.cuh.)
//
// The role warpgroups' numbers and output side (decode_wgmma_fp8_roles.cu),
// with one score warpgroup instead of two. 384 threads:
//   S       warpgroup 0, SCORE_REGS: the scores of every tile, two at a
//           time. The ring's slots 2k, 2k + 1 interleave block by block
//           (PAIRED_RING), so one m64n128 product per k-step gives the
//           scores of tiles g, g + 1 (g even): Q is read from shared memory
//           once per pair, not once per tile. A range that starts or ends on
//           an odd tile takes that one alone (m64n64). Then per tile, in
//           order: the K scale, mask, exponentials, the lazy row state (in
//           registers: no hand-off between score warpgroups), P' to e4m3.
//   O0, O1  warpgroups 1, 2, OUTPUT_REGS each: as in the roles kernel (they
//           load Q; O_w owns channels [w LATENT/2, (w+1) LATENT/2); thread 0
//           of O0 copies tiles in).
// mbarriers, by the tile's number g = base + t (phases run on across the
// CTA's work items):
//   full[g % STAGES]   the tile's copies landed (TMA bytes)
//   used[g % STAGES]   S (128 arrivals) and O0, O1 (128 each) read it
//   pfull[g % 3]       P'(g) and the row state after g are out (S, 128)
//   pempty[g % 3]      both O are done with them (256)

namespace snapmla {

static_assert(SCALE_GROUPS == 1 && KV_TMA && PAIRED_RING,
              "score pairs: fp8_per_token, pages of 16 tokens or more, 384 threads");

// Registers per thread after the hand-over: S holds two score tiles (64)
// and their scales; O as in the roles kernel. setmaxnreg moves registers
// only within what the launch gave the CTA (168 a thread to 384 threads,
// a multiple of 8): an increase past it waits forever.
constexpr int LAUNCH_REGS = 65536 / THREADS / 8 * 8;
constexpr int SCORE_REGS = 152, OUTPUT_REGS = 176;
static_assert(SCORE_REGS + 2 * OUTPUT_REGS <= 3 * LAUNCH_REGS, "the registers the launch gave the CTA");
constexpr int P_SLOTS = P_BUFFERS;   // P' buffers and row-state slots, by g % P_SLOTS
constexpr int COPIER = 128;          // thread 0 of O0
static_assert(P_SLOTS == STATE_SLOTS && SCALE_GROUPS == 1, "one P' and one row state per slot");
struct SmemLayout : Fp8Smem {
    unsigned long long *pfull, *pempty;
};

__device__ __forceinline__ SmemLayout carve_smem(unsigned char *smem_raw)
{
    SmemLayout m;
    m.pfull = carve_fp8_smem(smem_raw, m);
    m.pempty = m.pfull + P_SLOTS;
    check_smem_layout(smem_raw, m.pempty + P_SLOTS);
    return m;
}

// mbarrier phase parity of the n-th use of a slot: uses n = g / slots.
__device__ __forceinline__ unsigned parity_of(int g, int slots) { return (unsigned)(g / slots) & 1u; }

// What S keeps per work item: this thread's two rows and their state.
struct ScoreRows {
    int row[2];              // 16 warp + lane / 4, + 8
    int visible_end[2];
    float scale_log2[2];     // softmax scale x log2 e x the row's q_s
    float max[2], sum[2], r[2];   // the lazy row state (raw-score max, row sum, P's factor)
};

// One tile's scores s (K scale and RoPE in) to P'(g) and the row state
// after it: mask, exponentials against the tile's own max, the lazy state
// update, P' to e4m3 into buffer g % P_SLOTS.
__device__ __forceinline__ void finish_tile(const SmemLayout &m, const KvRange &range, ScoreRows &rows,
                                            float (&s)[32], float (&token_scale)[16], const TileAt &at, int g,
                                            int t0, int full_end)
{
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, quad = lane % 4;
    if (t0 + KV_TILE > range.t_end)   // rows past the range: zero V before any product (clear_tail)
        clear_tail(at.lat, range.t_end - t0);
    if (t0 + KV_TILE > full_end) {    // the range's last tile, or a causal edge: mask
        zero_scales_past(token_scale, t0, range.t_end, quad);
        mask_scores(s, t0, rows.visible_end, quad);
    }
    const TileRowStats tile = tile_exponentials(s, token_scale, rows.scale_log2);
    if (g >= P_SLOTS)   // both O are done with the slot's last P' and state
        mbarrier_wait(m.pempty + g % P_SLOTS, parity_of(g - P_SLOTS, P_SLOTS));
    float factor[2], p_factor[2];   // O's factor; e's factor to P'
    bool rescale_rows = false;
#pragma unroll
    for (int h = 0; h < 2; ++h)
        lazy_row_update(rows.max[h], rows.sum[h], rows.r[h], tile, h, rows.scale_log2[h], factor[h],
                                        p_factor[h], rescale_rows);
    const bool rescale = __any_sync(0xffffffffu, rescale_rows);
    write_row_state(m.state_all + g % P_SLOTS * STATE_FLOATS, rows.row, rows.max, rows.sum, rows.r, factor, rescale,
                    warp, lane);
    // ---- P' = e v_scale r exp2(c (tile max - m')), e4m3, out to O ----
    store_p_scaled(m.p_all + g % P_SLOTS * P_BYTES, s, p_factor, warp, lane);
    fence_async_smem();                    // P' is read by wgmma (the async proxy)
    mbarrier_arrive(m.used + g % STAGES);  // S is done with the slot
    mbarrier_arrive(m.pfull + g % P_SLOTS);
}

// The scores of N tiles (1, or 2 from one ring pair, g even), t .. t+N-1
// of the range, then each tile's P' and row state in order.
template <int N>
__device__ __forceinline__ void score_tiles(const SmemLayout &m, const KvRange &range, ScoreRows &rows, int base,
                                            int t, int full_end, unsigned long long q_lat_desc,
                                            unsigned long long q_rope_desc)
{
    const int g = base + t, quad = threadIdx.x % 4;
    TileAt at[N];
#pragma unroll
    for (int h = 0; h < N; ++h) {
        at[h] = tile_at(m.ring, g + h);
        mbarrier_wait(m.full + (g + h) % STAGES, parity_of(g + h, STAGES));
    }
    // ---- S = Q K^T: latent (e4m3) times the K scale, then RoPE (BF16) ----
    const unsigned long long k_lat_desc = latent_desc(at[0].lat);
    const unsigned long long k_rope_desc = rope_desc(at[0].rope);
    float s[N][32];
#pragma unroll
    for (int h = 0; h < N; ++h)
#pragma unroll
        for (int i = 0; i < 32; ++i)
            s[h][i] = 0.f;
    wgmma_fence();
#pragma unroll
    for (int kb = 0; kb < LAT_BLOCKS; ++kb)
#pragma unroll
        for (int ks = 0; ks < 4; ++ks) {
            const unsigned long long a = desc_plus(q_lat_desc, kb * LAT_BLOCK_BYTES + ks * 32);
            const unsigned long long b = desc_plus(k_lat_desc, kb * LAT_BLOCK_STRIDE + ks * 32);
            if constexpr (N == 2)
                wgmma_qk_fp8_x2(s[0], s[N - 1], a, b, 1);
            else
                wgmma_qk_fp8(s[0], a, b, 1);
        }
    wgmma_commit();
    wgmma_wait<0>();
    float token_scale[N][16];   // columns 8j + 2*quad + {0, 1}: K's scale, then V's (the same)
#pragma unroll
    for (int h = 0; h < N; ++h) {
        fence_registers(s[h]);
        load_token_scales(at[h].scale, quad, 0, token_scale[h]);
#pragma unroll
        for (int i = 0; i < 32; ++i)
            s[h][i] *= token_scale[h][2 * (i / 4) + i % 2];
    }
    wgmma_fence();
    if constexpr (N == 2) {
#pragma unroll
        for (int rb = 0; rb < ROPE_BLOCKS; ++rb)
#pragma unroll
            for (int ks = 0; ks < ROPE_SW / 32; ++ks)
                wgmma_qk_bf16_x2(s[0], s[N - 1], desc_plus(q_rope_desc, rb * ROPE_BLOCK_BYTES + ks * 32),
                                 desc_plus(k_rope_desc, rb * ROPE_BLOCK_STRIDE + ks * 32), 1);
    } else {
        issue_rope_scores(s[0], q_rope_desc, k_rope_desc);
    }
    wgmma_commit();
    wgmma_wait<0>();
#pragma unroll
    for (int h = 0; h < N; ++h) {
        fence_registers(s[h]);
        finish_tile(m, range, rows, s[h], token_scale[h], at[h], g + h, range.t_begin + (t + h) * KV_TILE,
                    full_end);
    }
}

// S's tiles of one work item: pairs where the ring has them (g even), the
// odd ones alone.
__device__ __forceinline__ void score_item(const DecodeParams &p, const SmemLayout &m, int4 item, int splits,
                                           int base)
{
    const int row0 = (item.y & 0xffff) * Q_TILE;
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const KvRange range = item_range(p, item, splits);
    named_barrier(BAR_ITEM, THREADS);   // Q is in (O loads it)

    ScoreRows rows;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        rows.row[h] = 16 * warp + lane / 4 + 8 * h;
        rows.visible_end[h] = visible_end_of(range, row0 + rows.row[h]);
        rows.scale_log2[h] = p.softmax_scale * 1.4426950408889634f * m.q_scale[rows.row[h]];
        rows.max[h] = -inf_f32(), rows.sum[h] = 0.f, rows.r[h] = 1.f;
    }
    const int full_end = visible_end_of(range, 0);   // tiles ending before it need no mask
    const unsigned long long q_lat_desc = latent_desc(m.q_lat);
    const unsigned long long q_rope_desc = rope_desc(m.q_rope);
    for (int t = 0; t < range.tiles;) {
        if ((base + t) % 2 == 0 && t + 1 < range.tiles) {
            score_tiles<2>(m, range, rows, base, t, full_end, q_lat_desc, q_rope_desc);
            t += 2;
        } else {
            score_tiles<1>(m, range, rows, base, t, full_end, q_lat_desc, q_rope_desc);
            t += 1;
        }
    }
}

// O_w's share of Q's load, its products over every tile of one work item
// (w = 0, 1), then its half of the output. As the roles kernel's.
__device__ __forceinline__ void output_item(const DecodeParams &p, const KvMaps &maps, const SmemLayout &m,
                                            int4 item, int splits, int base)
{
    const int b = item.x, split = item.y >> 16, row0 = (item.y & 0xffff) * Q_TILE;
    const int tid = threadIdx.x, ow = warp_uniform(tid / 128) - 1;
    const int warp = (tid % 128) / 32, lane = tid % 32, quad = lane % 4;
    const KvRange range = item_range(p, item, splits);
    const int tiles = range.tiles;
    TileWhere next{};   // the copier's next copy: tile STAGES, then one per tile
    if (tid == COPIER) {
        for (int k = 0; k < STAGES; ++k)
            issue_kv_tile(p, maps, range, m.ring, m.full, base, k, locate_tile(range, k));
        next = locate_tile(range, STAGES);
    }
    load_q_fp8(p, b, row0, m.q_lat, m.q_rope, m.q_scale, tid - COPIER);
    fence_async_smem();
    named_barrier(BAR_ITEM, THREADS);   // Q is in

    float o[MBLOCKS][32];   // O^T: channels (channel_of) x the 64 query rows
#pragma unroll
    for (int mb = 0; mb < MBLOCKS; ++mb)
#pragma unroll
        for (int i = 0; i < 32; ++i)
            o[mb][i] = 0.f;
    // V^T by quarters, two quarters' fragments held (by q % 2): quarter q
    // loads while the products of q - 1 run.
    unsigned a[2][2][4];
    for (int t = 0; t < tiles; ++t) {
        const int g = base + t;
        const float *st = m.state_all + g % P_SLOTS * STATE_FLOATS;
        mbarrier_wait(m.pfull + g % P_SLOTS, parity_of(g, P_SLOTS));
        const int4 flags = *(const int4 *)(st + ST_FLAGS);
        const unsigned char *slot = tile_at(m.ring, g).lat;
        const unsigned long long p_desc = smem_desc(m.p_all + g % P_SLOTS * P_BYTES, P_LBO, P_SBO, 0);
        // Every wgmma wait below is on every path: a skipped wait, or O^T
        // rescaled while a product runs, serializes every product (ptxas C7514).
        wgmma_wait<0>();   // tile t-1's products: O^T may be rescaled
#pragma unroll
        for (int mb = 0; mb < MBLOCKS; ++mb)
            fence_registers(o[mb]);
        if (t > 0)   // tile t-1's P' and state are free
            mbarrier_arrive(m.pempty + (g - 1) % P_SLOTS);
        if (flags.x | flags.y | flags.z | flags.w) {   // warpgroup-uniform; mostly skipped
            float f[16];   // of query rows 8 j + 2 quad + {0, 1}: this thread's columns
            load_column_pairs(st + ST_FACTOR, quad, f);
#pragma unroll
            for (int mb = 0; mb < MBLOCKS; ++mb)
                scale_o_block(o[mb], f);
        }
        load_vt_quarter(slot, a[0][0], a[0][1], ow, warp, lane, 0, 0);
#pragma unroll
        for (int q = 0; q < 2 * GROUPS; ++q) {
            const int grp = q / 2, kc = q % 2;
            if (q > 0) {   // all but the last quarter are done: quarter q - 2's fragments are free
                wgmma_wait<1>();
                load_vt_quarter(slot, a[q % 2][0], a[q % 2][1], ow, warp, lane, grp, kc);
            }
            if (q == 2 * GROUPS - 1)
                mbarrier_arrive(m.used + g % STAGES);
            wgmma_fence();
#pragma unroll
            for (int mm = 0; mm < 2; ++mm)
                wgmma_pvt_fp8(o[2 * grp + mm], a[q % 2][mm], desc_plus(p_desc, 2 * kc * P_LBO), 1);
            wgmma_commit();
        }
        if (tid == COPIER && t + STAGES < tiles) {   // the slot's readers are done: refill it
            mbarrier_wait(m.used + g % STAGES, parity_of(g, STAGES));
            issue_kv_tile(p, maps, range, m.ring, m.full, base, t + STAGES, next);
            next = locate_tile(range, t + 1 + STAGES);
        }
        wgmma_wait<1>();   // (as in the roles kernel: keeps ptxas from spilling)
    }
    wgmma_wait<0>();
#pragma unroll
    for (int mb = 0; mb < MBLOCKS; ++mb)
        fence_registers(o[mb]);
    if (tiles > 0)
        mbarrier_arrive(m.pempty + (base + tiles - 1) % P_SLOTS);

    // ---- epilogue: O / (r l) per query row (the last tile's row state), lse ----
    const bool direct = range.splits == 1;   // the same for the whole CTA
    const float *final_state = m.state_all + (base + tiles + P_SLOTS - 1) % P_SLOTS * STATE_FLOATS;
    const int o_thread = tid - COPIER;   // 0 .. 255 over O0, O1
    if (o_thread < 64 && row0 + o_thread < ROWS) {   // (before the stage overwrites q_scale)
        const float mx = tiles > 0 ? final_state[ST_MAX + o_thread] : -inf_f32();
        const float l = tiles > 0 ? final_state[ST_SUM + o_thread] : 0.f;
        store_lse(p, b, split, row0 + o_thread, mx * m.q_scale[o_thread] * p.softmax_scale, l, direct);
    }
    // BF16 output through the stage (Q's smem and the ring's first slots: S
    // is done with Q, and both O with every slot after the barrier);
    // partials straight out, 16 bytes per store.
    unsigned char *stage = m.q_lat;
    if (direct)
        named_barrier(BAR_OUTPUT, 256);
    write_output(p, o, final_state, tiles > 0, stage, ow, warp, lane, b, split, row0, direct);
    if (direct) {
        named_barrier(BAR_OUTPUT, 256);
        copy_out_stage(p, b, row0, stage, o_thread, 256);
    }
}

// The kernel entry (launch shapes as decode_wgmma_kernel.cu's): S and the
// two O split at the top, each with its own register count and its own loop
// over the CTA's work items, in step through next_work_item's barriers.
// (The queue's reset is thread 0's, which is in S.)
extern "C" __global__ void __launch_bounds__(THREADS, 1)
snapmla_decode_split(const DecodeParams p, const __grid_constant__ KvMaps maps)
{
    extern __shared__ __align__(16) unsigned char smem_raw[];
    __shared__ int item_index;
    const SmemLayout m = carve_smem(smem_raw);
    if (threadIdx.x == 0) {
        init_ring_barriers(m.full, m.used, 1, 3 * 128);   // the copier's expect_tx; S, O0, O1
        for (int k = 0; k < P_SLOTS; ++k) {
            mbarrier_init(m.pfull + k, 128);    // S
            mbarrier_init(m.pempty + k, 256);   // O0 and O1
        }
        fence_mbarrier_init();
    }
    wait_prior_grids();   // (the plan, the cache append, Q's producer)
    if (threadIdx.x < COPIER) {
        registers_give_back<SCORE_REGS>();
        for_each_item(p, item_index,
                      [&](int4 item, int splits, int base) { score_item(p, m, item, splits, base); });
        release_queue(p);
    } else {
        registers_take<OUTPUT_REGS>();
        for_each_item(p, item_index,
                      [&](int4 item, int splits, int base) { output_item(p, maps, m, item, splits, base); });
    }
}

}  // namespace snapmla
