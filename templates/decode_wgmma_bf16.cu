// ---- mla_decode, Hopper BF16 path (wgmma bf16, sm_90a) ----------------------
//
// (The tile ring, TMA copies and shared helpers: wgmma_decode.cuh; the
// kernel entry that runs decode_item: decode_wgmma_kernel.cu.)
//
// The FP8 path's seesaw on a BF16 cache. 256 threads: two warpgroups. WG w
// owns the tiles t = w, w+2, ... (their scores and softmax) and the output
// channels [w HALF, (w+1) HALF) of every tile. BF16 operands allow the
// plain product shapes:
//   QK   S = Q K^T                  wgmma m64n64k16, Q and K from smem (K-major)
//   PV   O_w = O_w alpha + P V_w    wgmma m64nHALFk16, V read from the same
//        smem tile MN-major (BF16 wgmma transposes B itself); P from
//        registers for the own tile, from smem for the other warpgroup's
// Shared memory: at 512 + 64, Q is 72 KB and a KV tile 72 KB, so two ring
// slots and ONE P buffer and row-state slot fit. That fixes the order
// within an own tile t:
//   1. retire the own product of tile t-2; with two slots, tile t goes into
//      t-2's slot as soon as the other warpgroup has read it too
//   2. take tile t-1's row state (max, sum, O's factor) from the other
//      warpgroup; rescale O, O += P(t-1) V(t-1) with P(t-1) from the P
//      buffer, retired at once: the P buffer and t-1's slot are free here
//      (warpgroup 1 from 256 rows: right behind step 3's QK instead, retired with it)
//   3. QK(t), scores masked; the rows of a range's last tile past its end
//      zeroed (clear_tail)
//   4. softmax of t (online, in registers)
//   5. publish P(t) and the row state of t; rescale O and start
//      O += P(t) V(t) from registers (retired at the next step 1)
// Steps 2-5 are the chain between the warpgroups. Warpgroup 0 always takes the
// other's product before its QK: a slot is free only once both warpgroups
// have read it, and after the QK its release (and so the copy of tile t+1)
// would wait for tile t's own copy, putting one copy latency per tile on
// the chain (measured: 3.0 us per tile at 128 heads against 1.5-1.9, and
// 26% slower when both warpgroups put the QK first). From 256 query rows
// (four row blocks a request) warpgroup 1 puts its QK first, as soon as
// its tile lands, and the other's product right behind it; its link of
// the chain is then that product and the softmax. Measured on the H100
// against both warpgroups in the first order (docs/perf.md, twenty-third
// session): at batch 128, 0.3-1% faster at 256 rows and 1.4% at 384, a
// tie at 32 and 64 (bandwidth-bound), 1-4% slower at 96, 128 and 192; at
// batch 1 slower everywhere, 5-9% below 256 rows, 1-3% from 256.
// With more than two slots, the refill of t-2's slot waits until both
// warpgroups have read t-2 (after step 2, or after warpgroup 1's QK), off
// the QK's path.
//   epilogue  one split: out = O / l (BF16, staged in smem for 16-byte stores), lse; several: fp32 partials

namespace snapmla {

static_assert(FORMAT == FORMAT_BF16, "the BF16 path reads the BF16 cache");
static_assert(KV_TMA, "the BF16 path copies its tiles by TMA (pages of 16 tokens or more)");

constexpr int Q_BYTES = round_up_1024(64 * (LAT_ROW + ROPE_ROW));
constexpr int P_BYTES = 64 * KV_TILE * 2;   // BF16 P of one tile, K-major, 128-byte swizzle
// The row state after a tile, per query row: max (raw score), row sum, and
// the factor O takes before that tile's product.
constexpr int ST_MAX = 0, ST_SUM = 64, ST_FACTOR = 128, STATE_FLOATS = 192;
constexpr int ACC = HALF / 2;   // O's fp32 accumulators per thread (64 rows x HALF)

static_assert(OUT_STAGE_BYTES <= Q_BYTES, "the output stage fits in Q's smem");

// Shared memory, 1024-aligned for the 128-byte swizzle.
struct SmemLayout {
    unsigned char *q_lat;              // [LAT_BLOCKS][64][128] bf16
    unsigned char *q_rope;             // [ROPE_BLOCKS][64][ROPE_SW] bf16
    unsigned char *ring;               // [STAGES][STAGE_BYTES]
    unsigned char *p;                  // [64][128]: P of the last published tile
    float *state;                      // [3][64]: its row state
    unsigned long long *full, *used;   // per ring slot: copies landed; both warpgroups read it
};

__device__ __forceinline__ SmemLayout carve_smem(unsigned char *smem_raw)
{
    unsigned char *smem = smem_raw + ((1024u - (smem_address(smem_raw) & 1023u)) & 1023u);
    SmemLayout m;
    m.q_lat = smem;
    m.q_rope = m.q_lat + 64 * LAT_ROW;
    m.ring = smem + Q_BYTES;
    m.p = m.ring + STAGES * STAGE_BYTES;
    m.state = (float *)(m.p + P_BYTES);
    m.full = (unsigned long long *)(m.state + STATE_FLOATS);
    m.used = m.full + STAGES;
    check_smem_layout(smem_raw, m.used + STAGES);
    return m;
}

// One work item (see decode_wgmma_fp8.cu's decode_item for its fields).
__device__ __forceinline__ void decode_item(const DecodeParams &p, const KvMaps &maps, const SmemLayout &m,
                                            int4 item, int splits, int base)
{
    unsigned char *ring = m.ring;
    unsigned long long *full = m.full, *used = m.used;
    const int b = item.x, split = item.y >> 16, row0 = (item.y & 0xffff) * Q_TILE;
    const int tid = threadIdx.x, wg = warp_uniform(tid / 128);
    const int warp = (tid % 128) / 32, lane = tid % 32, quad = lane % 4;
    const KvRange range = item_range(p, item, splits);
    const int t_end = range.t_end, tiles = range.tiles;
    auto slot = [&](int u) { return (base + u) % STAGES; };
    auto phase = [&](int u) { return (unsigned)((base + u) / STAGES) & 1u; };
    auto lat_of = [&](int u) { return ring + slot(u) * STAGE_BYTES; };

    // The ring's first STAGES tiles; then each warpgroup's copier refills
    // tile t-2's slot with tile t-2+STAGES at its own tile t.
    const bool copier = tid % 128 == 0;
    TileWhere next{};
    if (copier) {
        if (wg == 0)
            for (int k = 0; k < STAGES; ++k)
                issue_tma_tile(p, maps, range, ring, full, base, k, locate_tile(range, k));
        next = locate_tile(range, STAGES + wg);
    }
    auto refill = [&](int t) {   // tile t-2's slot gets tile t-2+STAGES, once both have read t-2
        const int j = t - 2 + STAGES;
        if (copier && t >= 2 && j < tiles) {
            mbarrier_wait(used + slot(t - 2), phase(t - 2));
            issue_tma_tile(p, maps, range, ring, full, base, j, next);
            next = locate_tile(range, j + 2);
        }
    };
    start_q_bf16(p, b, row0, m.q_lat, m.q_rope);
    cp_async_wait<0>();
    fence_async_smem();
    __syncthreads();

    // This thread's two rows of the score tile and of O: 16*warp + lane/4, and + 8.
    const int my_row[2] = {16 * warp + lane / 4, 16 * warp + lane / 4 + 8};
    const float scale_log2 = p.softmax_scale * 1.4426950408889634f;
    const float row_scale_log2[2] = {scale_log2, scale_log2};   // (both row halves: row_exponentials)
    const int visible_end[2] = {visible_end_of(range, row0 + my_row[0]), visible_end_of(range, row0 + my_row[1])};
    const int full_end = visible_end_of(range, 0);   // tiles ending before it need no mask
    const unsigned long long q_lat_desc = latent_desc(m.q_lat);
    const unsigned long long q_rope_desc = rope_desc(m.q_rope);
    // The row state after the last tile seen, chained through both
    // warpgroups' tiles: max of the raw scores, row sum.
    float row_max[2] = {-inf_f32(), -inf_f32()};
    float row_sum[2] = {0.f, 0.f};
    float o[ACC];   // O: rows my_row[(i / 2) % 2], channels wg HALF + 8 (i / 4) + 2 quad + i % 2
#pragma unroll
    for (int i = 0; i < ACC; ++i)
        o[i] = 0.f;
    float s[32];    // scores: the same rows, tokens 8 (i / 4) + 2 quad + i % 2
#pragma unroll
    for (int i = 0; i < 32; ++i)
        s[i] = 0.f;
    int own_pending = -1;   // the own tile whose product is in flight

    auto wait_products = [&]() {
        wgmma_wait<0>();
        fence_registers(o);
    };
    // V(u) of this warpgroup's channels, MN-major: 64-channel blocks 8 KB
    // apart (LBO), 8-token row groups 1 KB apart (SBO), 16 tokens per step.
    auto v_desc = [&](int u) {
        return smem_desc(lat_of(u) + (wg * HALF * 2 / 128) * LAT_BLOCK_BYTES, LAT_BLOCK_BYTES, 1024, 1);
    };
    const unsigned long long p_desc = latent_desc(m.p);

    // The other warpgroup's tile u, once it is out: its row state (this
    // warpgroup's chain), then O += P(u) V(u) over this warpgroup's channels,
    // retired at once (with any QK issued before it): u's slot is then free
    // for the next copy and the P buffer for this warpgroup's next P.
    auto other_tile = [&](int u) {
        named_barrier(BAR_STATE + u % 2, 256);     // P(u) and its row state are out
        mbarrier_wait(full + slot(u), phase(u));   // (already complete: its owner saw it) TMA's bytes, this side
        float f[2];
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            row_max[h] = m.state[ST_MAX + my_row[h]];
            row_sum[h] = m.state[ST_SUM + my_row[h]];
            f[h] = m.state[ST_FACTOR + my_row[h]];
        }
        scale_o_rows(o, f[0], f[1]);
        const unsigned long long v = v_desc(u);
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < KV_TILE / 16; ++kk)
            wgmma_pv_bf16_ss(o, desc_plus(p_desc, kk * 32), desc_plus(v, kk * 16 * 128), 1);
        wgmma_commit();
        wait_products();
        mbarrier_arrive(used + slot(u));
    };
    // The other's tile t-1 at own tile t; with more than two slots its
    // release lets the refill of t-2's slot go out (with two, step 1 did).
    auto other_then_refill = [&](int t) {
        other_tile(t - 1);
        if (STAGES > 2)
            refill(t);
    };
    // Warpgroup 0 takes the other's tile before its QK; warpgroup 1 after
    // it from 256 rows (the header says why).
    const bool qk_first = wg == 1 && ROWS >= 256;

    // One own tile t. STEADY (a constant at each call: the body is inlined
    // twice): t is past this warpgroup's first tile and holds no tail or
    // causal edge, so that copy has no branch for them (as the pair
    // kernel's steady copy); the first tile and the edges take the general
    // copy.
    auto tile_body = [&](const bool STEADY, int t) {
        // ---- 1. the own product of t-2 retires; tile t may need its slot ----
        wait_products();
        if (STEADY || own_pending >= 0)
            mbarrier_arrive(used + slot(own_pending));
        own_pending = -1;
        if (STAGES == 2)
            refill(t);

        // ---- 2. the other's tile t-1: its row state, O += P(t-1) V(t-1) ----
        if ((STEADY || t > 0) && !qk_first)
            other_then_refill(t);

        // ---- 3. S = Q K^T (latent, then RoPE) ----
        const unsigned char *k_lat = lat_of(t);
        const unsigned char *k_rope = k_lat + KV_TILE * LAT_ROW;
        const int t0 = range.t_begin + t * KV_TILE;
        const unsigned long long k_lat_desc = latent_desc(k_lat);
        const unsigned long long k_rope_desc = rope_desc(k_rope);
        mbarrier_wait(full + slot(t), phase(t));
        wgmma_fence();
#pragma unroll
        for (int kb = 0; kb < LAT_BLOCKS; ++kb)
#pragma unroll
            for (int ks = 0; ks < 4; ++ks)
                wgmma_qk_bf16(s, desc_plus(q_lat_desc, kb * LAT_BLOCK_BYTES + ks * 32),
                              desc_plus(k_lat_desc, kb * LAT_BLOCK_BYTES + ks * 32), kb + ks > 0);
        issue_rope_scores(s, q_rope_desc, k_rope_desc);
        wgmma_commit();
        if ((STEADY || t > 0) && qk_first) {   // the other's product right behind the QK, both retired here
            other_then_refill(t);
        } else {
            wgmma_wait<0>();
        }
        fence_registers(s);
        if (!STEADY && t0 + KV_TILE > full_end) {   // the range's last tile, or a causal edge (one branch: the tail is an edge)
            if (t0 + KV_TILE > t_end)
                clear_tail(lat_of(t), t_end - t0);
            mask_scores(s, t0, visible_end, quad);
        }

        // ---- 4. online softmax of tile t (exp2 of scale_log2 (s - m)) ----
        float alpha[2], m_scaled[2];
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const float m_new = fmaxf(row_max[h], quad_max(max_of_row(s, h)));
            alpha[h] = row_max[h] == -inf_f32() ? 1.f : fast_exp2((row_max[h] - m_new) * scale_log2);
            row_max[h] = m_new;
            m_scaled[h] = m_new == -inf_f32() ? 0.f : m_new * scale_log2;   // a row that sees nothing: P = 0
        }
        float part_sum[4];                          // two chains per row half
        row_exponentials(s, row_scale_log2, m_scaled, part_sum);
        unsigned pa[KV_TILE / 16][4];               // P as the A fragments of the own product
#pragma unroll
        for (int kk = 0; kk < KV_TILE / 16; ++kk)
#pragma unroll
            for (int r = 0; r < 4; ++r)   // r: (row half, 8-token half) = (r % 2, r / 2)
                pa[kk][r] = bf16x2(s[8 * kk + 2 * r], s[8 * kk + 2 * r + 1]);
#pragma unroll
        for (int h = 0; h < 2; ++h)
            row_sum[h] = row_sum[h] * alpha[h] + quad_sum(part_sum[2 * h] + part_sum[2 * h + 1]);

        // ---- 5. publish P(t) and tile t's row state; O += P(t) V(t) ----
#pragma unroll
        for (int kk = 0; kk < KV_TILE / 16; ++kk)
#pragma unroll
            for (int r = 0; r < 4; ++r)
                *(unsigned *)(m.p + swizzled<128>(my_row[r % 2], 32 * kk + 16 * (r / 2) + 4 * quad)) = pa[kk][r];
        if (quad == 0) {
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                m.state[ST_MAX + my_row[h]] = row_max[h];
                m.state[ST_SUM + my_row[h]] = row_sum[h];
                m.state[ST_FACTOR + my_row[h]] = alpha[h];
            }
        }
        fence_async_smem();
        named_barrier_arrive(BAR_STATE + t % 2, 256);   // to the other warpgroup
        if (!STEADY && t0 + KV_TILE > t_end)
            named_barrier(BAR_OWN + wg, 128);   // the zeroed tail rows, to this warpgroup's product
        scale_o_rows(o, alpha[0], alpha[1]);
        const unsigned long long v = v_desc(t);
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < KV_TILE / 16; ++kk)
            wgmma_pv_bf16_rs(o, pa[kk], desc_plus(v, kk * 16 * 128), 1);
        wgmma_commit();
        own_pending = t;
    };
    int t = wg;
    if (t < tiles) {   // the first own tile: no product of t-2 (and for WG0 no tile t-1)
        tile_body(false, t);
        t += 2;
    }
    // Own tiles ending by full_end: no tail, no edge.
    const int steady_end = min(tiles, (full_end - range.t_begin) / KV_TILE);
    for (; t < steady_end; t += 2)
        tile_body(true, t);
    for (; t < tiles; t += 2)
        tile_body(false, t);
    wait_products();
    if (own_pending >= 0)
        mbarrier_arrive(used + slot(own_pending));
    if (tiles > 0 && (tiles - 1) % 2 != wg)   // the last tile is the other's
        other_tile(tiles - 1);

    // ---- epilogue: O / l per query row, lse ----
    const bool direct = range.splits == 1;   // the same for the whole CTA
    if (direct)
        __syncthreads();   // both warpgroups are past their last QK: Q's smem is free
    const float inv[2] = {row_sum[0] > 0.f ? 1.f / row_sum[0] : 0.f, row_sum[1] > 0.f ? 1.f / row_sum[1] : 0.f};
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int row = row0 + my_row[h];
        if (direct) {   // rows past ROWS too: the copy-out skips them
#pragma unroll
            for (int j = 0; j < ACC / 4; ++j)
                *(unsigned *)(m.q_lat + out_stage_offset(my_row[h], wg * HALF + 8 * j) + 4 * quad) =
                    bf16x2(o[4 * j + 2 * h] * inv[h], o[4 * j + 2 * h + 1] * inv[h]);
        }
        if (wg == 0 && quad == 0 && row < ROWS)
            store_lse(p, b, split, row, row_max[h] * p.softmax_scale, row_sum[h], direct);
    }
    if (!direct)
        store_partials_bf16(p, b, split, row0, my_row, wg * HALF, quad, o, inv);
    if (direct) {
        __syncthreads();
        copy_out_stage(p, b, row0, m.q_lat);
    }
}

}  // namespace snapmla
