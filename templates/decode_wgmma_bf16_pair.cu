// ---- mla_decode, Hopper BF16 path: the pair schedule (wgmma bf16, sm_90a) ----
//
// (The TMA copies and shared helpers: wgmma_decode.cuh; the kernel entry:
// decode_wgmma_kernel.cu, with this file's ring mbarriers, at the end. The
// generator takes it at tile.stages 2, where a tile per warpgroup is all
// that fits at 512 + 64, from 256 query rows or under tile.schedule pair;
// otherwise the BF16 path is the seesaw, decode_wgmma_bf16.cu.)
//
// Two warpgroups on pairs of 64-token tiles (u, u+1): WG0 owns the even
// tile u (its scores and softmax), WG1 the odd tile u+1; warpgroup w keeps
// O over the latent channels [w HALF, (w+1) HALF) and takes both tiles'
// products on that half. Both tiles of a pair end on one row max: WG0's
// softmax of u moves the running max to m0, WG1's of u+1 to m1 >= m0, and
// WG0 publishes P(u) times exp(m0 - m1), so that no product waits for a
// rescale of the other's O.
//   QK   S = Q K^T              wgmma m64n64k16; latent: Q and K from smem;
//        RoPE: Q's A fragments in registers (loaded once per item: its smem
//        then holds the second P buffer)
//   PV   O_w += P V_w           wgmma m64nHALFk16, V read MN-major from the
//        K tile; the own P from registers, the other's from smem
// Shared memory: Q's latent, two ring slots (one per tile of a pair), P(u)
// and P(u+1). A slot arrives in chunks (a 64-channel latent block, or a
// RoPE block), each completing on its own mbarrier, so a QK starts on the
// first chunk that lands. Each half of a slot is refilled by the warpgroup
// that reads it last, as soon as its product on it retires:
//   slot of u:   latent left half (QK(u), O0 += P(u) V)          by WG0
//                right half and RoPE (QK(u), O1 += P(u) V)      by WG1
//   slot of u+1: left half (QK(u+1), O0 += P(u+1) V)             by WG0
//                right half and RoPE (QK(u+1), O1 += P(u+1) V)  by WG1
// One pair, per warpgroup (S(u) and S(u+1) ready from the pair before):
//   WG0: softmax(u) -> m0 | O0 += P(u) V(u), retired | wait m1; refill the
//        left of u's slot with u+2; publish P(u) exp(m0 - m1) | wait P(u+1);
//        O0 rescaled, O0 += P(u+1) V(u+1) | QK(u+2) on the left chunks; that
//        product retired: refill the left of u+1's slot with u+3 | QK(u+2)
//        on the right chunks and the RoPE, retired
//   WG1: wait m0; softmax(u+1) -> m1 | publish P(u+1), O1 += P(u+1) V(u+1) |
//        wait P(u); O1 += P(u) V(u) | own product retired: refill the right
//        of u+1's slot with u+3 | the other retired: the right of u's slot
//        with u+2 | QK(u+3): right chunks and RoPE first, then left, retired
// The rows of a range's last tile past its end are zeroed by the tile's
// owner after its QK (clear_tail), before either product reads them.
//   epilogue  one split: out = O / l (BF16, 16-byte stores from registers), lse; several: fp32 partials.
//        On a persistent grid it first takes the CTA's next item and starts
//        that item's Q and first two tiles (ring and Q's smem are free by
//        then), so they land under this epilogue, not in the next prologue.

namespace snapmla {

static_assert(FORMAT == FORMAT_BF16, "the BF16 path reads the BF16 cache");
static_assert(KV_TMA, "the BF16 path copies its tiles by TMA (pages of 16 tokens or more)");
static_assert(STAGES == 2, "the pair schedule: one ring slot per tile of a pair");

constexpr int Q_BYTES = round_up_1024(64 * (LAT_ROW + ROPE_ROW));
constexpr int P_BYTES = 64 * KV_TILE * 2;                 // BF16 P of one tile, K-major, 128-byte swizzle
constexpr bool P1_IN_Q_ROPE = 64 * ROPE_ROW >= P_BYTES;    // else P(u+1) gets its own region
constexpr int SLOT_CHUNKS = LAT_BLOCKS + ROPE_BLOCKS;          // a slot's copies, each on its own mbarrier
constexpr int HALF_BLOCKS = LAT_BLOCKS / 2;               // a half of the latent (HALF channels)
constexpr int RIGHT_CHUNKS = SLOT_CHUNKS - HALF_BLOCKS;        // the right half and the RoPE blocks
constexpr int ROPE_STEPS = ROPE / 16;                     // k16 steps of the RoPE product
// Per query row: the running max (raw score), the factors of the pair's
// two softmaxes (WG0's exp(M - m0), WG1's exp(m0 - m1)), and at the end
// each warpgroup's row sum.
constexpr int ST_MAX = 0, ST_F0 = 64, ST_F1 = 128, ST_SUM = 192, STATE_FLOATS = 320;
constexpr int ACC = HALF / 2;   // O's fp32 accumulators per thread (64 rows x HALF)
// Named barriers of the pair hand-offs (one producer warpgroup arrives,
// the other waits): m0 out, m1 out, P(u) out, P(u+1) out.
constexpr int BAR_M0 = BAR_STATE, BAR_M1 = BAR_STATE + 1, BAR_P0 = 7, BAR_P1 = 8;

// Shared memory, 1024-aligned for the 128-byte swizzle.
struct SmemLayout {
    unsigned char *q_lat;          // [LAT_BLOCKS][64][128] bf16
    unsigned char *q_rope;         // [ROPE_BLOCKS][64][ROPE_SW] bf16, until it is in registers
    unsigned char *ring;           // [2][STAGE_BYTES]
    unsigned char *p[2];           // [64][128] each: P(u), P(u+1)
    float *state;                  // [STATE_FLOATS]
    unsigned long long *chunk_full;   // [2][SLOT_CHUNKS]: a chunk of the slot landed
};

__device__ __forceinline__ SmemLayout carve_smem(unsigned char *smem_raw)
{
    unsigned char *smem = smem_raw + ((1024u - (smem_address(smem_raw) & 1023u)) & 1023u);
    SmemLayout m;
    m.q_lat = smem;
    m.q_rope = m.q_lat + 64 * LAT_ROW;
    m.ring = smem + Q_BYTES;
    m.p[0] = m.ring + STAGES * STAGE_BYTES;
    m.p[1] = P1_IN_Q_ROPE ? m.q_rope : m.p[0] + P_BYTES;
    m.state = (float *)(m.p[0] + (P1_IN_Q_ROPE ? 1 : 2) * P_BYTES);
    m.chunk_full = (unsigned long long *)(m.state + STATE_FLOATS);
    check_smem_layout(smem_raw, m.chunk_full + STAGES * SLOT_CHUNKS);
    return m;
}

// S (+)= Q K^T over chunks [FIRST, FIRST + COUNT) of the ring slot at
// k_lat (latent blocks from smem; RoPE blocks with Q's A fragments from
// registers), each as soon as its mbarrier (bars[c], phase `parity`) says
// it landed; the first step zeroes S when `zero`. Into the caller's open
// wgmma group (it commits).
template <int FIRST, int COUNT>
__device__ __forceinline__ void issue_qk_chunks(float (&s)[32], const unsigned (&q_rope_a)[ROPE_STEPS][4],
                                                unsigned long long q_lat_desc, const unsigned char *k_lat,
                                                unsigned long long *bars, unsigned parity, bool zero)
{
    const unsigned long long k_lat_desc = latent_desc(k_lat);
    const unsigned long long k_rope_desc = rope_desc(k_lat + KV_TILE * LAT_ROW);
#pragma unroll
    for (int c = FIRST; c < FIRST + COUNT; ++c) {
        mbarrier_wait(bars + c, parity);
        wgmma_fence();
        if (c < LAT_BLOCKS) {
#pragma unroll
            for (int ks = 0; ks < 4; ++ks)
                wgmma_qk_bf16(s, desc_plus(q_lat_desc, c * LAT_BLOCK_BYTES + ks * 32),
                              desc_plus(k_lat_desc, c * LAT_BLOCK_BYTES + ks * 32), !(zero && c == FIRST && ks == 0));
        } else {
            constexpr int STEPS = ROPE_SW / 32;   // k16 steps per RoPE block
#pragma unroll
            for (int ks = 0; ks < STEPS; ++ks)
                wgmma_qk_bf16_rs(s, q_rope_a[(c - LAT_BLOCKS) * STEPS + ks],
                                 desc_plus(k_rope_desc, (c - LAT_BLOCKS) * ROPE_BLOCK_BYTES + ks * 32),
                                 !(zero && c == FIRST && ks == 0));
        }
    }
}


// Four 8 x 8 b16 matrices to shared memory, one row address per lane (the
// fragment order of ldmatrix_x4).
__device__ __forceinline__ void stmatrix_x4(void *p, const unsigned (&r)[4])
{
    asm volatile("stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1,%2,%3,%4};\n" ::"r"(smem_address(p)),
                 "r"(r[0]), "r"(r[1]), "r"(r[2]), "r"(r[3])
                 : "memory");
}

// One thread starts the copy of chunks [FIRST, FIRST + COUNT) of KV tile
// `tile` into its ring slot by TMA (chunk c < LAT_BLOCKS: latent block c;
// else RoPE block c - LAT_BLOCKS), the pieces up to the range's end; each
// chunk's bytes complete on its own mbarrier. `present`: the caller knows
// the tile is in the range (the steady loop: no test on the copier's path).
template <int FIRST, int COUNT>
__device__ __forceinline__ void issue_chunks(const KvMaps &maps, const KvRange &r, const SmemLayout &m, int base,
                                             int tile, const TileWhere &w, bool present = false)
{
    if (!present && tile >= r.tiles)
        return;
    const int s = (unsigned)(base + tile) % STAGES;
    unsigned char *k_lat = m.ring + s * STAGE_BYTES;
    unsigned char *k_rope = k_lat + KV_TILE * LAT_ROW;
    const int t0 = r.t_begin + tile * KV_TILE;
    const int pieces = tile_pieces(r, t0);
#pragma unroll
    for (int c = FIRST; c < FIRST + COUNT; ++c) {
        unsigned long long *bar = m.chunk_full + s * SLOT_CHUNKS + c;
        const bool latent = c < LAT_BLOCKS;
        mbarrier_expect_bytes(bar, pieces * BOX_ROWS * (latent ? 128 : ROPE_SW));
#pragma unroll
        for (int k = 0; k < PIECES; ++k) {
            if (k >= pieces)
                break;
            const int slot = (t0 + k * BOX_ROWS) % PAGE_SIZE, page = w.page[k];
            if (latent)
                tma_load_3d(k_lat + c * LAT_BLOCK_BYTES + k * BOX_ROWS * 128, &maps.latent, c * 128, slot, page, bar);
            else
                tma_load_3d(k_rope + (c - LAT_BLOCKS) * ROPE_BLOCK_BYTES + k * BOX_ROWS * ROPE_SW, &maps.rope,
                            (c - LAT_BLOCKS) * ROPE_SW, slot, page, bar);
        }
    }
}

// A quad's 4 x 4 words transposed: lane q's x[k] becomes lane k's x[q]
// (two butterfly steps, each swapping the off-diagonal halves of 2 x 2
// blocks: lanes ^ 1 within a pair of words, lanes ^ 2 between pairs).
__device__ __forceinline__ void quad_transpose(unsigned (&x)[4], int quad)
{
    const bool odd = quad & 1, high = quad & 2;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const unsigned got = __shfl_xor_sync(0xffffffffu, odd ? x[2 * h] : x[2 * h + 1], 1);
        if (odd)
            x[2 * h] = got;
        else
            x[2 * h + 1] = got;
    }
#pragma unroll
    for (int c = 0; c < 2; ++c) {
        const unsigned got = __shfl_xor_sync(0xffffffffu, high ? x[c] : x[2 + c], 2);
        if (high)
            x[c] = got;
        else
            x[2 + c] = got;
    }
}

// O / l of this thread's rows as BF16 into out by 16-byte stores from
// registers (no smem: the next item's Q and tiles are landing there). The
// quad holds 8 channels of a row as 4 x 2; for a pair of 8-channel groups
// (j, j + 1) of both rows, the quad transposes its words so that lane q
// stores whole group j + q % 2 of row q / 2 (a warp: 16 rows x 32 bytes).
__device__ __forceinline__ void store_out_swapped(const DecodeParams &p, int b, int row0, const int (&my_row)[2],
                                                  int channel0, int quad, const float (&o)[ACC],
                                                  const float (&inv)[2])
{
    const int row = row0 + (quad < 2 ? my_row[0] : my_row[1]);   // (no dynamic index: registers)
    bf16_t *out = p.out + ((long long)b * ROWS + row) * LATENT + channel0 + 8 * (quad % 2);
#pragma unroll
    for (int j = 0; j < ACC / 4; j += 2) {
        unsigned x[4];   // (row 0, j), (row 0, j + 1), (row 1, j), (row 1, j + 1): channels 2 quad, + 1
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            const int i = 4 * (j + k % 2) + 2 * (k / 2);
            x[k] = bf16x2(o[i] * inv[k / 2], o[i + 1] * inv[k / 2]);
        }
        quad_transpose(x, quad);
        if (row < ROWS)
            *(uint4 *)(out + 8 * j) = make_uint4(x[0], x[1], x[2], x[3]);
    }
}

// One work item (see decode_wgmma_fp8.cu's decode_item for its fields).
// `prefetched`: the item before started this one's Q and first two tiles;
// pop() takes the next item (every thread, once, in the epilogue), whose Q
// and first tiles this one starts.
__device__ __forceinline__ void decode_item(const DecodeParams &p, const KvMaps &maps, const SmemLayout &m,
                                            int4 item, int splits, int base, bool prefetched, const PopItem &pop)
{
    const int b = item.x, split = item.y >> 16, row0 = (item.y & 0xffff) * Q_TILE;
    const int tid = threadIdx.x, wg = warp_uniform(tid / 128);
    const int warp = (tid % 128) / 32, lane = tid % 32, quad = lane % 4;
    const KvRange range = item_range(p, item, splits);
    const int t_end = range.t_end, tiles = range.tiles;
    auto slot = [&](int u) { return (int)((unsigned)(base + u) % STAGES); };
    auto phase = [&](int u) { return (unsigned)(base + u) / STAGES & 1u; };
    auto lat_of = [&](int u) { return m.ring + slot(u) * STAGE_BYTES; };
    const bool copier = tid % 128 == 0;

    // The first two tiles, whole, by WG0's copier, and Q (unless the item
    // before started them); later tiles by halves (the header).
    if (!prefetched) {
        if (copier && wg == 0) {
            issue_chunks<0, SLOT_CHUNKS>(maps, range, m, base, 0, locate_tile(range, 0));
            issue_chunks<0, SLOT_CHUNKS>(maps, range, m, base, 1, locate_tile(range, 1));
        }
        start_q_bf16(p, b, row0, m.q_lat, m.q_rope);
    }
    cp_async_wait<0>();
    if (tid < 64)
        m.state[ST_MAX + tid] = -inf_f32();
    fence_async_smem();
    __syncthreads();
    // Q's RoPE as the A fragments of the RoPE product (k16 step j: rows
    // 16 warp + lane % 16, channels 16 j + 8 (lane / 16)); once every thread
    // has them, that smem is P(u+1)'s.
    unsigned q_rope_a[ROPE_STEPS][4];
#pragma unroll
    for (int j = 0; j < ROPE_STEPS; ++j)
        ldmatrix_x4(q_rope_a[j], m.q_rope + rope_offset(16 * warp + lane % 16, 32 * j + 16 * (lane / 16)));
    __syncthreads();

    // This thread's two rows of the score tile and of O: 16*warp + lane/4, and + 8.
    const int my_row[2] = {16 * warp + lane / 4, 16 * warp + lane / 4 + 8};
    const float scale_log2 = p.softmax_scale * 1.4426950408889634f;
    const float row_scale_log2[2] = {scale_log2, scale_log2};   // (both row halves: row_exponentials)
    const int visible_end[2] = {visible_end_of(range, row0 + my_row[0]), visible_end_of(range, row0 + my_row[1])};
    const int full_end = visible_end_of(range, 0);   // tiles ending before it need no mask
    const unsigned long long q_lat_desc = latent_desc(m.q_lat);
    const unsigned long long p_desc[2] = {latent_desc(m.p[0]), latent_desc(m.p[1])};
    // This thread's part of its rows' sums over its warpgroup's tiles, in
    // units of the running max (the quad's parts and both warpgroups'
    // are added at the end).
    float row_sum[2] = {0.f, 0.f};
    float o[ACC];   // O: rows my_row[(i / 2) % 2], channels wg HALF + 8 (i / 4) + 2 quad + i % 2
#pragma unroll
    for (int i = 0; i < ACC; ++i)
        o[i] = 0.f;
    float s[32];    // scores, then P (fp32): the same rows, tokens 8 (i / 4) + 2 quad + i % 2
#pragma unroll
    for (int i = 0; i < 32; ++i)
        s[i] = 0.f;

    // V(u) over this warpgroup's channels, MN-major: 64-channel blocks 8 KB
    // apart (LBO), 8-token row groups 1 KB apart (SBO), 16 tokens per step.
    auto v_desc = [&](int u) {
        return smem_desc(lat_of(u) + wg * HALF_BLOCKS * LAT_BLOCK_BYTES, LAT_BLOCK_BYTES, 1024, 1);
    };
    auto bars_of = [&](int u) { return m.chunk_full + slot(u) * SLOT_CHUNKS; };
    // The owner of tile u, its QK retired: on the range's last tile or a
    // causal edge (one branch on the common path: the tail is an edge too),
    // the rows past the range's end zeroed (V meets P = 0 there, and 0 x NaN
    // is NaN) for both warpgroups' products (the other's sees them through
    // the P hand-off's barrier), then the scores past each row's end masked.
    auto clear_and_mask_edge = [&](int u) {
        const int t0 = range.t_begin + u * KV_TILE;
        if (t0 + KV_TILE > full_end) {
            if (t0 + KV_TILE > t_end) {
                clear_tail(lat_of(u), t_end - t0);
                fence_async_smem();
                named_barrier(BAR_OWN + wg, 128);
            }
            mask_scores(s, t0, visible_end, quad);
        }
    };
    // P as the A fragments of the own product (r: row half r % 2, 8-token half r / 2).
    auto pack_p = [&](unsigned (&pa)[KV_TILE / 16][4]) {
#pragma unroll
        for (int kk = 0; kk < KV_TILE / 16; ++kk)
#pragma unroll
            for (int r = 0; r < 4; ++r)
                pa[kk][r] = bf16x2(s[8 * kk + 2 * r], s[8 * kk + 2 * r + 1]);
    };
    // P into a P buffer (K-major, 128-byte swizzle), a 16-token step per
    // stmatrix: lane l gives row 16 warp + l % 16 at tokens + 8 (l / 16).
    auto store_p = [&](unsigned char *dst, const unsigned (&pa)[KV_TILE / 16][4]) {
#pragma unroll
        for (int kk = 0; kk < KV_TILE / 16; ++kk)
            stmatrix_x4(dst + swizzled<128>(16 * warp + lane % 16, 32 * kk + 16 * (lane / 16)), pa[kk]);
    };

    // ---- prologue: each warpgroup's first score tile ----
    if (wg == 0 && tiles > 0) {
        wgmma_fence();
        issue_qk_chunks<0, SLOT_CHUNKS>(s, q_rope_a, q_lat_desc, lat_of(0), bars_of(0), phase(0), true);
        wgmma_commit();
    } else if (wg == 1 && tiles > 1) {
        wgmma_fence();
        issue_qk_chunks<HALF_BLOCKS, RIGHT_CHUNKS>(s, q_rope_a, q_lat_desc, lat_of(1), bars_of(1), phase(1), true);
        issue_qk_chunks<0, HALF_BLOCKS>(s, q_rope_a, q_lat_desc, lat_of(1), bars_of(1), phase(1), false);
        wgmma_commit();
    }
    wgmma_wait<0>();
    fence_registers(s);

    // One pair (u, u + 1). STEADY (a constant at each call: the body is
    // inlined twice): tiles u .. u + 3 exist and neither u nor u + 1 is an
    // edge, so that copy of the body has no branch for them (the loop's
    // common path, as FlashMLA's kernel instantiates its own); the last
    // pairs and edges take the general copy.
    auto pair_body = [&](const bool STEADY, int u) {
        const bool has_other = STEADY || u + 1 < tiles, has_next = STEADY || u + 2 < tiles,
                   has_next_other = STEADY || u + 3 < tiles;
        TileWhere where2{}, where3{};   // (the block-table reads go out early)
        if (copier) {
            where2 = locate_tile(range, u + 2);
            where3 = locate_tile(range, u + 3);
        }
        if (wg == 0) {
            // ---- WG0: softmax of u against the running max -> m0 ----
            if (!STEADY)
                clear_and_mask_edge(u);
            float alpha[2], m_scaled[2], m_new[2];
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const float m_old = m.state[ST_MAX + my_row[h]];
                m_new[h] = fmaxf(m_old, quad_max(max_of_row(s, h)));
                alpha[h] = m_old == -inf_f32() ? 1.f : fast_exp2((m_old - m_new[h]) * scale_log2);
                m_scaled[h] = m_new[h] == -inf_f32() ? 0.f : m_new[h] * scale_log2;   // a row that sees nothing: P = 0
            }
            __syncwarp();   // the quad has read the old max
            if (quad == 0) {
#pragma unroll
                for (int h = 0; h < 2; ++h) {
                    m.state[ST_MAX + my_row[h]] = m_new[h];
                    m.state[ST_F0 + my_row[h]] = alpha[h];
                }
            }
            named_barrier_arrive(BAR_M0, 256);
            float part_sum[4];
            row_exponentials(s, row_scale_log2, m_scaled, part_sum);
#pragma unroll
            for (int h = 0; h < 2; ++h)
                row_sum[h] = row_sum[h] * alpha[h] + (part_sum[2 * h] + part_sum[2 * h + 1]);
            unsigned pa[KV_TILE / 16][4];
            pack_p(pa);
            scale_o_rows(o, alpha[0], alpha[1]);
            // ---- O0 += P(u) V(u), retired ----
            const unsigned long long v = v_desc(u);
            wgmma_fence();
#pragma unroll
            for (int kk = 0; kk < KV_TILE / 16; ++kk)
                wgmma_pv_bf16_rs(o, pa[kk], desc_plus(v, kk * 16 * 128), 1);
            wgmma_commit();
            wgmma_wait<0>();
            fence_registers(o);
            // ---- m1 out: publish P(u) exp(m0 - m1) ----
            named_barrier(BAR_M1, 256);
            float f1[2];
#pragma unroll
            for (int h = 0; h < 2; ++h)
                f1[h] = m.state[ST_F1 + my_row[h]];
            if (__any_sync(0xffffffffu, f1[0] != 1.f || f1[1] != 1.f)) {   // (else P(u) as it is)
#pragma unroll
                for (int i = 0; i < 32; ++i)
                    s[i] *= f1[(i / 2) % 2];
                pack_p(pa);
            }
            store_p(m.p[0], pa);
            fence_async_smem();
            named_barrier_arrive(BAR_P0, 256);
            // ---- P(u+1) out: O0 rescaled, O0 += P(u+1) V(u+1) ----
            if (has_other) {
                named_barrier(BAR_P1, 256);   // (u+1's left chunks: WG1's QK waited for them; this
                                              // barrier orders that wait before our product's reads)
                // refill the left of u's slot only now: a copy that lands just in time
                // lets a row block that runs ahead wait on DRAM while the request's
                // others catch up through L2, which keeps their reads merged (docs/design.md)
                if (copier && has_next)
                    issue_chunks<0, HALF_BLOCKS>(maps, range, m, base, u + 2, where2, STEADY);
                scale_o_rows(o, f1[0], f1[1]);
#pragma unroll
                for (int h = 0; h < 2; ++h)
                    row_sum[h] *= f1[h];
                const unsigned long long v1 = v_desc(u + 1);
                wgmma_fence();
#pragma unroll
                for (int kk = 0; kk < KV_TILE / 16; ++kk)
                    wgmma_pv_bf16_ss(o, desc_plus(p_desc[1], kk * 32), desc_plus(v1, kk * 16 * 128), 1);
                wgmma_commit();
            }
            // ---- QK(u+2): left chunks; the product retired: refill the left of u+1's slot; the rest ----
            if (has_next) {
                wgmma_fence();
                issue_qk_chunks<0, HALF_BLOCKS>(s, q_rope_a, q_lat_desc, lat_of(u + 2), bars_of(u + 2), phase(u + 2), true);
                wgmma_commit();
                if (has_other) {
                    wgmma_wait<1>();
                    if (copier && has_next_other)
                        issue_chunks<0, HALF_BLOCKS>(maps, range, m, base, u + 3, where3, STEADY);
                }
                issue_qk_chunks<HALF_BLOCKS, RIGHT_CHUNKS>(s, q_rope_a, q_lat_desc, lat_of(u + 2), bars_of(u + 2), phase(u + 2), false);
                wgmma_commit();
            }
            wgmma_wait<0>();
            fence_registers(o);
            fence_registers(s);
        } else {
            // ---- WG1: softmax of u+1 from m0 -> m1 ----
            float tile_max[2] = {-inf_f32(), -inf_f32()};
            if (has_other) {
                if (!STEADY)
                    clear_and_mask_edge(u + 1);
#pragma unroll
                for (int h = 0; h < 2; ++h)
                    tile_max[h] = quad_max(max_of_row(s, h));
            }
            named_barrier(BAR_M0, 256);
            float alpha[2], f0[2], m_scaled[2], m_new[2];
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const float m0 = m.state[ST_MAX + my_row[h]];
                f0[h] = m.state[ST_F0 + my_row[h]];
                m_new[h] = fmaxf(m0, tile_max[h]);
                alpha[h] = m0 == -inf_f32() ? 1.f : fast_exp2((m0 - m_new[h]) * scale_log2);
                m_scaled[h] = m_new[h] == -inf_f32() ? 0.f : m_new[h] * scale_log2;
            }
            __syncwarp();   // the quad has read m0
            if (quad == 0) {
#pragma unroll
                for (int h = 0; h < 2; ++h) {
                    m.state[ST_MAX + my_row[h]] = m_new[h];
                    m.state[ST_F1 + my_row[h]] = alpha[h];
                }
            }
            named_barrier_arrive(BAR_M1, 256);
            // ---- publish P(u+1); O1 += P(u+1) V(u+1) ----
            if (has_other) {
                float part_sum[4];
                row_exponentials(s, row_scale_log2, m_scaled, part_sum);
#pragma unroll
                for (int h = 0; h < 2; ++h)
                    row_sum[h] = row_sum[h] * (alpha[h] * f0[h]) + (part_sum[2 * h] + part_sum[2 * h + 1]);
                unsigned pa[KV_TILE / 16][4];
                pack_p(pa);
                store_p(m.p[1], pa);
                scale_o_rows(o, alpha[0] * f0[0], alpha[1] * f0[1]);
                const unsigned long long v = v_desc(u + 1);
                wgmma_fence();
#pragma unroll
                for (int kk = 0; kk < KV_TILE / 16; ++kk)
                    wgmma_pv_bf16_rs(o, pa[kk], desc_plus(v, kk * 16 * 128), 1);
                wgmma_commit();
                fence_async_smem();   // P(u+1), to WG0's product (BAR_P1)
            } else {
#pragma unroll
                for (int h = 0; h < 2; ++h)
                    row_sum[h] *= f0[h];   // (alpha is 1: m1 = m0)
                scale_o_rows(o, f0[0], f0[1]);
            }
            // ---- P(u) out: O1 += P(u) V(u) ----
            named_barrier(BAR_P0, 256);   // (u's right chunks: WG0's QK waited, as above)
            const unsigned long long v0 = v_desc(u);
            wgmma_fence();
#pragma unroll
            for (int kk = 0; kk < KV_TILE / 16; ++kk)
                wgmma_pv_bf16_ss(o, desc_plus(p_desc[0], kk * 32), desc_plus(v0, kk * 16 * 128), 1);
            wgmma_commit();
            if (has_other) {
                named_barrier_arrive(BAR_P1, 256);
                // ---- the own product retired: refill the right of u+1's slot ----
                wgmma_wait<1>();
                if (copier && has_next_other)
                    issue_chunks<HALF_BLOCKS, RIGHT_CHUNKS>(maps, range, m, base, u + 3, where3, STEADY);
            }
            // ---- the other's retired: refill the right of u's slot; QK(u+3) ----
            wgmma_wait<0>();
            fence_registers(o);
            if (copier && has_next)
                issue_chunks<HALF_BLOCKS, RIGHT_CHUNKS>(maps, range, m, base, u + 2, where2, STEADY);
            if (has_next_other) {
                wgmma_fence();
                issue_qk_chunks<HALF_BLOCKS, RIGHT_CHUNKS>(s, q_rope_a, q_lat_desc, lat_of(u + 3), bars_of(u + 3), phase(u + 3), true);
                issue_qk_chunks<0, HALF_BLOCKS>(s, q_rope_a, q_lat_desc, lat_of(u + 3), bars_of(u + 3), phase(u + 3), false);
                wgmma_commit();
                wgmma_wait<0>();
                fence_registers(s);
            }
        }
    };
    // Steady pairs: u + 3 < tiles and u + 1 ends by full_end. (Only at one
    // piece a tile: with the pieces' pages in registers, two copies of the
    // body cost ptxas a spill at three query tokens.)
    const int steady_end = PIECES > 1 ? 0 : min(tiles - 3, (full_end - range.t_begin) / KV_TILE - 1);
    int u = 0;
    for (; u < steady_end; u += 2)
        pair_body(true, u);
    for (; u < tiles; u += 2)
        pair_body(false, u);

    // ---- epilogue: the row sums (quad, then both warpgroups), O / l, lse ----
    float l[2], row_max[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        row_sum[h] = quad_sum(row_sum[h]);
        if (quad == 0)
            m.state[ST_SUM + 64 * wg + my_row[h]] = row_sum[h];
    }
    __syncthreads();   // (both warpgroups are also past their last QK: Q's smem is free)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        l[h] = m.state[ST_SUM + my_row[h]] + m.state[ST_SUM + 64 + my_row[h]];
        row_max[h] = m.state[ST_MAX + my_row[h]];
    }
    // The ring, Q's smem and the P buffers are free (both warpgroups'
    // products retired before the barrier): the next item's Q and first
    // two tiles start here, under this epilogue.
    const ItemAhead &next = pop();
    if (next.have) {
        const KvRange next_range = item_range(p, next.item, next.splits);
        if (copier && wg == 0) {
            issue_chunks<0, SLOT_CHUNKS>(maps, next_range, m, base + tiles, 0, locate_tile(next_range, 0));
            issue_chunks<0, SLOT_CHUNKS>(maps, next_range, m, base + tiles, 1, locate_tile(next_range, 1));
        }
        start_q_bf16(p, next.item.x, (next.item.y & 0xffff) * Q_TILE, m.q_lat, m.q_rope);
    }
    const bool direct = range.splits == 1;   // the same for the whole CTA
    const float inv[2] = {l[0] > 0.f ? 1.f / l[0] : 0.f, l[1] > 0.f ? 1.f / l[1] : 0.f};
    if (direct)   // rows past ROWS too: the stores skip them
        store_out_swapped(p, b, row0, my_row, wg * HALF, quad, o, inv);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int row = row0 + my_row[h];
        if (wg == 0 && quad == 0 && row < ROWS)
            store_lse(p, b, split, row, row_max[h] * p.softmax_scale, l[h], direct);
    }
    if (!direct)
        store_partials_bf16(p, b, split, row0, my_row, wg * HALF, quad, o, inv);
    // Everyone has read the state before the next item writes it.
    __syncthreads();
}

template <> struct TakesItemAhead<SmemLayout> {
    static constexpr bool value = true;
};

// The ring's mbarriers for decode_wgmma_kernel.cu's entry: each slot's chunk
// mbarriers complete on one arrival (the copier's) and their bytes.
__device__ __forceinline__ void init_item_barriers(const SmemLayout &m)
{
    for (int i = 0; i < STAGES * SLOT_CHUNKS; ++i)
        mbarrier_init(m.chunk_full + i, 1);
}

}  // namespace snapmla
