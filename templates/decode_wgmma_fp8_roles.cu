// ---- mla_decode, Hopper FP8 path with role warpgroups (tile.warps 16) -----
//
// (Q to e4m3, the tile copies, V^T fragments and P' stores:
// wgmma_fp8_parts.cuh; the ring and its TMA maps: wgmma_decode.cuh.)
//
// Schedule ("roles"). 512 threads, four warpgroups with two jobs, and the
// registers moved to where the accumulators are (setmaxnreg):
//   S0, S1  warpgroups 0, 1, SCORE_REGS each: the scores. S_w owns the
//           tiles t = w, w+2, ... of the work item:
//             QK      S = Q K^T (wgmma e4m3), times k_scale per column,
//                     + (Q_rope / q_s) K_rope^T (wgmma BF16)
//             local   e = exp2(c (S - the tile's own row max)), their row
//                     sum, and the row max of e v_scale
//             chain   the row state after tile t-1 in (sfull(t-1), from
//                     the other S); lazily (lazy_row_update below): the max m'
//                     and P's e4m3 factor r kept while the tile's P' fits,
//                     else moved; the row sum, O's factor (1 when kept);
//                     the state after t out (sfull(t)). A few instructions
//                     per row: the exponentials are not on the chain.
//             P'      e v_scale r exp2(c (tile max - m')) to e4m3, into P
//                     buffer t % 3 (pfull(t))
//   O0, O1  warpgroups 2, 3, OUTPUT_REGS each; they also load Q. O_w owns
//           output channels [w LATENT/2, (w+1) LATENT/2) and runs every
//           tile in order: wait pfull(t); retire the product of t-1
//           (pempty(t-1)); O^T = O^T factor(t) + V^T(t) P'(t)^T, wgmma e4m3
//           with A = V^T byte-transposed from the raw tile into registers
//           (a quarter: two m-blocks, 32 tokens, 8 registers) and B = P'(t):
//           the whole tile's quarters at once, then the eight products
//           (V_WHOLE_TILE below), or quarter by quarter, each load beside
//           the products of the last one. Each O copies the half of a
//           tile it reads (O0's thread 0: latent blocks 0-1 and the scales;
//           O1's thread 64: blocks 2-3 and the RoPE rows), into t's slot for
//           tile t+STAGES once its S and that O have read it, by TMA.
// The numbers are the seesaw's (decode_wgmma_fp8.cu) but for where r puts
// P' in e4m3's range (lazily, not at every new max; docs/fidelity.md).
// What changes is who runs them: there, each of two
// warpgroups runs QK, softmax and two products as one dependent chain per
// own tile, two warps per scheduler; here the products run beside the
// scores, four warps per scheduler, and only the row state's update is on
// the chain between the two S.
//
// mbarriers; their phases run on across the CTA's work items, by the tile's
// number g = base + t:
//   full[g % STAGES]   both halves' copies landed (2 arrivals, TMA bytes)
//   used[g % STAGES]   its S and O0 (128 arrivals each) read the lower half
//   used_hi[g % STAGES]  its S and O1 read the upper half
//   sfull[g % 3]       the row state after g is out (its S, 128)
//   pfull[g % 3]       P'(g) is out (its S, 128)
//   pempty[g % 3]      both O are done with P'(g) and its state (256)
//   qk_issued[g % 3]   g's S has issued its latent QK (128; PV_AFTER_NEXT_QK:
//                      O issues the products of g-1 after it)
// S waits pempty before it overwrites a P buffer and state slot, so S runs
// at most three tiles ahead of O.
//   epilogue (O)  one split: out = O / (r l) (BF16, 8-byte stores from
//                 registers, no stage), lse; several: fp32 partials

namespace snapmla {

static_assert(P_GROUPS == 1 && KV_TMA, "role warpgroups: one scale per token, pages of 16 tokens or more");

// How O reads a tile's V^T. Whole tile (the query rows fill whole 64-row
// tiles): all four quarters' fragments (32 registers) at once, the slot
// released, then the eight products as one group; by quarters (otherwise):
// two quarters' fragments held, each quarter loaded while the products of
// the last one run. The whole tile releases the slot sooner, and the ring's
// cycle (refill, landing, scores, P', O's read of V) sets the tile period:
// 6% faster at 128 heads (docs/perf.md). It needs O at 192 registers (at
// 176 or 184 ptxas serializes its wgmma) and so S at 64, where S spills
// unless every 64-row query tile is whole and, under a causal mask, holds
// one query token's heads (`snapmla inspect`, 1 to 128 heads, q_len 1 to
// 4): the others take the quarters.
constexpr bool V_WHOLE_TILE = ROWS % 64 == 0 && (!CAUSAL || Q_LEN == 1 || Q_HEADS % 64 == 0);
constexpr int V_QUARTERS_HELD = V_WHOLE_TILE ? 4 : 2;
// On fp8_per_tile128 (the codes rescaled in the slot by the tile's S before
// its QK) O holds a whole tile's products until the next tile's QK has been
// issued, so that QK reaches the tensor cores first: -0.5 to -1.2% at 128
// heads, 16K there; +2.1% on fp8_per_token, where it is off (docs/perf.md).
constexpr bool PV_AFTER_NEXT_QK = TOKEN_REQUANT && V_WHOLE_TILE;
// Registers per thread after the hand-over (the launch gives 128 a thread
// to 512 threads): S holds a score tile (32) and its scales; O its O^T
// (128), the V^T fragments held (8 per quarter) and their byte-permute
// temporaries.
constexpr int SCORE_REGS = V_WHOLE_TILE ? 64 : 80, OUTPUT_REGS = V_WHOLE_TILE ? 192 : 176;
static_assert(128 * 2 * (SCORE_REGS + OUTPUT_REGS) <= 65536, "the register file");
constexpr int P_SLOTS = P_BUFFERS;   // P' buffers and row-state slots, by g % P_SLOTS
constexpr int O_FIRST = 2 * 128;     // thread 0 of O0: the output warpgroups' first
// Shared memory (wgmma_fp8_parts.cuh; P' buffers and row-state slots by
// g % P_SLOTS), then the hand-over mbarriers, per P slot.
static_assert(P_SLOTS == STATE_SLOTS && P_GROUPS == 1, "one P' and one row state per slot");
struct SmemLayout : Fp8Smem {
    unsigned long long *sfull, *pfull, *pempty;
    unsigned long long *used_hi;   // per ring slot: S and O1 are done with its upper half (`used`: S and O0)
    unsigned long long *qk_issued; // per P slot: the tile's S has issued its latent QK (PV_AFTER_NEXT_QK)
    int *next_pages;               // [2][PIECES]: each half copier's next tile (NEXT_PAGES_IN_SMEM)
};
// With several pages a tile (pages under KV_TILE tokens), the half copier's
// next tile waits in smem, not in registers: at 192 registers the output
// warpgroups' O^T leaves no room for PIECES page numbers held across a tile
// (ptxas spilled 8 bytes at 16-token pages).
constexpr bool NEXT_PAGES_IN_SMEM = PIECES > 1;

__device__ __forceinline__ SmemLayout carve_smem(unsigned char *smem_raw)
{
    SmemLayout m;
    m.sfull = carve_fp8_smem(smem_raw, m);
    m.pfull = m.sfull + P_SLOTS;
    m.pempty = m.pfull + P_SLOTS;
    m.used_hi = m.pempty + P_SLOTS;
    m.qk_issued = m.used_hi + STAGES;
    m.next_pages = (int *)(m.qk_issued + P_SLOTS);
    check_smem_layout(smem_raw, m.next_pages + 2 * PIECES);
    return m;
}

// mbarrier phase parity of the n-th use of a slot: uses n = g / slots.
__device__ __forceinline__ unsigned parity_of(int g, int slots) { return (unsigned)(g / slots) & 1u; }

// The score warpgroups' softmax pieces and their lazy row state: O and l
// only need one common scale per row, not the true running max
// (docs/fidelity.md). Reset r to put a tile's
// largest P' at P_TARGET, a quarter of e4m3's top, so a later tile's max
// may grow 4x (2 bits) before O needs a rescale; keep r while the largest
// P' stays above P_FLOOR (e4m3 keeps its relative precision down to 2^-6:
// P' at P_FLOOR still has 2^9 below it in the normal range) and the max's
// factor beta stays <= BETA_MAX (l stays finite).
constexpr float P_TARGET = 112.f, P_FLOOR = 7.f, BETA_MAX = 256.f;

// What one tile's exponentials give per row half h: its largest raw score,
// the sum of its e, and its largest e v_scale.
struct TileRowStats {
    float max[2], sum[2], p_max[2];
};

// A score tile's exponentials against the tile's own row max (off the
// chain of row states): s becomes e v_scale. scale_log2: softmax scale x
// log2 e x the row's q_s.
__device__ __forceinline__ TileRowStats tile_exponentials(float (&s)[32], const float (&token_scale)[16],
                                                          const float (&scale_log2)[2])
{
    TileRowStats t;
    float max_scaled[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        t.max[h] = quad_max(max_of_row(s, h));
        // a row that sees nothing in this tile: e = exp2(-inf) = 0
        max_scaled[h] = t.max[h] == -inf_f32() ? 0.f : t.max[h] * scale_log2[h];
    }
    float part_sum[4];
    exponentials<true>(s, scale_log2, max_scaled, token_scale, part_sum);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        t.sum[h] = quad_sum(part_sum[2 * h] + part_sum[2 * h + 1]);
        t.p_max[h] = quad_max(fmaxf(max_of_row(s, h), 0.f));
    }
    return t;
}

// One row's state (max, sum, r) after tile stats t of row half h: kept
// while the tile's largest P' at them, r beta p_max, stays in [P_FLOOR,
// P_HIGH] and beta <= BETA_MAX (then O's factor is 1 and its rescale is
// skipped), else moved to the true max and r reset. factor: O's;
// p_factor: e's to P'; rescale is set when O's factor is not 1.
__device__ __forceinline__ void lazy_row_update(float &row_max, float &row_sum, float &row_r,
                                                const TileRowStats &t, int h, float scale_log2, float &factor,
                                                float &p_factor, bool &rescale)
{
    const float beta_keep = t.max[h] == -inf_f32() ? 0.f : fast_exp2((t.max[h] - row_max) * scale_log2);
    const float mx_keep = beta_keep * t.p_max[h] * row_r;
    if (beta_keep <= BETA_MAX && mx_keep <= P_HIGH && (mx_keep >= P_FLOOR || mx_keep == 0.f)) {
        factor = 1.f;
        p_factor = row_r * beta_keep;
        row_sum += beta_keep * t.sum[h];
        return;
    }
    const float m_new = fmaxf(row_max, t.max[h]);
    const float alpha = row_max == -inf_f32() ? 1.f : fast_exp2((row_max - m_new) * scale_log2);
    const float beta = t.max[h] == -inf_f32() ? 0.f : fast_exp2((t.max[h] - m_new) * scale_log2);
    row_max = m_new;
    row_sum = row_sum * alpha + beta * t.sum[h];
    const float mx = beta * t.p_max[h];
    const float r_new = mx > 0.f ? fminf(__fdividef(P_TARGET, mx), 1.2676506e30f) : row_r;
    factor = alpha * __fdividef(r_new, row_r);
    row_r = r_new;
    p_factor = r_new * beta;
    rescale = rescale || factor != 1.f;
}

// The row state after a tile into its slot st: per warp of 16 rows a flag
// (some factor is not 1), per row (the quad's first thread) max, sum, r and
// O's factor.
__device__ __forceinline__ void write_row_state(float *st, const int (&row)[2], const float (&row_max)[2],
                                                const float (&row_sum)[2], const float (&row_r)[2],
                                                const float (&factor)[2], bool rescale, int warp, int lane)
{
    if (lane == 0)
        ((int *)st)[ST_FLAGS + warp] = rescale;
    if (lane % 4 == 0) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            st[ST_MAX + row[h]] = row_max[h];
            st[ST_SUM + row[h]] = row_sum[h];
            st[ST_R + row[h]] = row_r[h];
            st[ST_FACTOR + row[h]] = factor[h];
        }
    }
}

// P' = s p_factor (per row half) to e4m3, into P buffer pbuf (store_p).
__device__ __forceinline__ void store_p_scaled(unsigned char *pbuf, const float (&s)[32], const float (&p_factor)[2],
                                               int warp, int lane)
{
    unsigned pa[2][4];
#pragma unroll
    for (int kc = 0; kc < 2; ++kc) {
        const int i = 16 * kc;
        const float f0 = p_factor[0], f1 = p_factor[1];
        pa[kc][0] = e4m3x4(s[i + 0] * f0, s[i + 1] * f0, s[i + 4] * f0, s[i + 5] * f0);
        pa[kc][1] = e4m3x4(s[i + 2] * f1, s[i + 3] * f1, s[i + 6] * f1, s[i + 7] * f1);
        pa[kc][2] = e4m3x4(s[i + 8] * f0, s[i + 9] * f0, s[i + 12] * f0, s[i + 13] * f0);
        pa[kc][3] = e4m3x4(s[i + 10] * f1, s[i + 11] * f1, s[i + 14] * f1, s[i + 15] * f1);
    }
    store_p(pbuf, pa, warp, lane);
}

// fp8_per_tile128 read per token: the codes of each token's 128-channel
// groups rescaled in the ring slot to the token's largest group scale, which
// replaces its group 0 scale (then the kernel is the per-token one). The scales are
// powers of two (FlashMLA's writer and ours round them up), so code x 2^-k is
// exact while it stays in e4m3's normal range and below that rounds to the
// subnormal step: off by at most 2^-10 of the token's scale, where the
// codes' own rounding is up to 2^-4 of a value (docs/fidelity.md). A group
// already at the largest scale is left as it is. By the tile's S (128
// threads, `thread` 0..127): a quad per token, each thread one group's
// 128-byte row, its chunks rotated by the token so that a warp's 8 tokens x
// 4 groups read and write 8 different 16-byte bank groups at a time (4
// wavefronts per 512 bytes); NaN codes stay NaN.
__device__ __forceinline__ void requant_tile128(unsigned char *k_lat, int thread)
{
    static_assert(!TOKEN_REQUANT || (SCALE_GROUPS == 4 && LAT_BLOCKS == 4), "four 128-channel groups, one latent block each");
    float *scales = (float *)(k_lat + KV_TILE * (LAT_ROW + ROPE_ROW));   // [token][group]
    const int grp = thread % 4;
#pragma unroll 1
    for (int j = thread / 4; j < KV_TILE; j += 32) {
        const float4 s = *(const float4 *)(scales + 4 * j);
        const float common = fmaxf(fmaxf(s.x, s.y), fmaxf(s.z, s.w));
        const float own = grp == 0 ? s.x : grp == 1 ? s.y : grp == 2 ? s.z : s.w;
        __syncwarp();   // the quad has read the token's scales
        if (grp == 0)
            scales[4 * j] = common;
        if (!(own < common))   // at the largest scale (or rows of no token: NaN)
            continue;
        const unsigned f = f16x2_of(__fdividef(own, common));   // 2^-k, exact in f16 down to 2^-24
        unsigned char *row = k_lat + grp * LAT_BLOCK_BYTES + j * 128;   // the swizzle stays inside the row
        // loads in fours ahead of their stores: a store before a load holds
        // that load back (ptxas cannot tell the chunks apart)
#pragma unroll
        for (int c0 = 0; c0 < 8; c0 += 4) {
            uint4 v[4];
#pragma unroll
            for (int c = 0; c < 4; ++c)
                v[c] = *(const uint4 *)(row + 16 * ((c0 + c + j) % 8));
#pragma unroll
            for (int c = 0; c < 4; ++c) {
                v[c].x = e4m3x4_times(v[c].x, f), v[c].y = e4m3x4_times(v[c].y, f);
                v[c].z = e4m3x4_times(v[c].z, f), v[c].w = e4m3x4_times(v[c].w, f);
                *(uint4 *)(row + 16 * ((c0 + c + j) % 8)) = v[c];
            }
        }
    }
}

// S_w's tiles of one work item (w = 0, 1).
__device__ __forceinline__ void score_item(const DecodeParams &p, const SmemLayout &m, int4 item, int splits,
                                           int base)
{
    const int row0 = (item.y & 0xffff) * Q_TILE;
    const int tid = threadIdx.x, wg = warp_uniform(tid / 128);
    const int warp = (tid % 128) / 32, lane = tid % 32, quad = lane % 4;
    const KvRange range = item_range(p, item, splits);
    const int t_end = range.t_end, tiles = range.tiles;
    named_barrier(BAR_ITEM, THREADS);   // Q is in (O loads it)

    // This thread's two rows of the score tile: 16*warp + lane/4, and + 8.
    const int my_row[2] = {16 * warp + lane / 4, 16 * warp + lane / 4 + 8};
    const int visible_end[2] = {visible_end_of(range, row0 + my_row[0]), visible_end_of(range, row0 + my_row[1])};
    // exp2 of (score - max) scaled: softmax scale, log2 e and the row's q_s
    float row_scale_log2[2];
#pragma unroll
    for (int h = 0; h < 2; ++h)
        row_scale_log2[h] = p.softmax_scale * 1.4426950408889634f * m.q_scale[my_row[h]];
    const int full_end = visible_end_of(range, 0);   // tiles ending before it need no mask
    const unsigned long long q_lat_desc = latent_desc(m.q_lat);
    const unsigned long long q_rope_desc = rope_desc(m.q_rope);

    for (int t = wg; t < tiles; t += 2) {
        const int g = base + t;
        const unsigned char *k_lat = m.ring + g % STAGES * STAGE_BYTES;
        const unsigned char *k_rope = k_lat + KV_TILE * LAT_ROW;
        const float *k_scale = (const float *)(k_rope + KV_TILE * ROPE_ROW);
        const int t0 = range.t_begin + t * KV_TILE;
        mbarrier_wait(m.full + g % STAGES, parity_of(g, STAGES));
        if constexpr (TOKEN_REQUANT) {
            requant_tile128(m.ring + g % STAGES * STAGE_BYTES, tid % 128);
            fence_async_smem();   // the codes are read by this S's wgmma (the async proxy)
            named_barrier(wg == 0 ? BAR_OWN : BAR_OWN + 1, 128);
        }

        // ---- S = Q K^T: latent (e4m3) times the K scale, then RoPE (BF16) ----
        const unsigned long long k_lat_desc = latent_desc(k_lat);
        const unsigned long long k_rope_desc = rope_desc(k_rope);
        float s[32];
#pragma unroll
        for (int i = 0; i < 32; ++i)
            s[i] = 0.f;
        wgmma_fence();
#pragma unroll
        for (int kb = 0; kb < LAT_BLOCKS; ++kb)
#pragma unroll
            for (int ks = 0; ks < 4; ++ks)
                wgmma_qk_fp8(s, desc_plus(q_lat_desc, kb * LAT_BLOCK_BYTES + ks * 32),
                             desc_plus(k_lat_desc, kb * LAT_BLOCK_BYTES + ks * 32), 1);
        wgmma_commit();
        if constexpr (PV_AFTER_NEXT_QK)
            mbarrier_arrive(m.qk_issued + g % P_SLOTS);   // O's products of g-1 may follow
        wgmma_wait<0>();
        fence_registers(s);
        float token_scale[16];   // columns 8j + 2*quad + {0, 1}: K's scale, then V's (the same)
        load_token_scales(k_scale, quad, 0, token_scale);   // (TOKEN_REQUANT: group 0's is the token's)
        scale_columns(s, token_scale);
        add_rope_scores(s, q_rope_desc, k_rope_desc);
        if (t0 + KV_TILE > t_end)   // rows past the range: zero V before any product (clear_tail)
            clear_tail(m.ring + g % STAGES * STAGE_BYTES, t_end - t0);
        if (t0 + KV_TILE > full_end) {   // the range's last tile, or a causal edge: mask
            zero_scales_past(token_scale, t0, t_end, quad);
            mask_scores(s, t0, visible_end, quad);
        }

        // ---- off the chain: exponentials against the tile's own row max ----
        const TileRowStats tile = tile_exponentials(s, token_scale, row_scale_log2);
        if (g >= P_SLOTS)   // both O are done with the slot's last P' and state
            mbarrier_wait(m.pempty + g % P_SLOTS, parity_of(g - P_SLOTS, P_SLOTS));

        // ---- the chain: the row state after t-1 in, after t out ----
        float row_max[2] = {-inf_f32(), -inf_f32()}, row_sum[2] = {0.f, 0.f}, row_r[2] = {1.f, 1.f};
        if (t > 0) {
            mbarrier_wait(m.sfull + (g - 1) % P_SLOTS, parity_of(g - 1, P_SLOTS));
            const float *st = m.state_all + (g - 1) % P_SLOTS * STATE_FLOATS;
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                row_max[h] = st[ST_MAX + my_row[h]];
                row_sum[h] = st[ST_SUM + my_row[h]];
                row_r[h] = st[ST_R + my_row[h]];
            }
        }
        float factor[2], p_factor[2];   // O's factor; e's factor to P'
        bool rescale_rows = false;
#pragma unroll
        for (int h = 0; h < 2; ++h)
            lazy_row_update(row_max[h], row_sum[h], row_r[h], tile, h, row_scale_log2[h], factor[h],
                                            p_factor[h], rescale_rows);
        const bool rescale = __any_sync(0xffffffffu, rescale_rows);
        write_row_state(m.state_all + g % P_SLOTS * STATE_FLOATS, my_row, row_max, row_sum, row_r, factor, rescale,
                        warp, lane);
        mbarrier_arrive(m.sfull + g % P_SLOTS);

        // ---- P' = e v_scale r exp2(c (tile max - m')), e4m3, out to O ----
        store_p_scaled(m.p_all + g % P_SLOTS * P_BYTES, s, p_factor, warp, lane);
        fence_async_smem();                    // P' is read by wgmma (the async proxy)
        mbarrier_arrive(m.used + g % STAGES);  // this S is done with the slot: both halves
        mbarrier_arrive(m.used_hi + g % STAGES);
        mbarrier_arrive(m.pfull + g % P_SLOTS);
    }
}

// Half h of KV tile `tile`'s copy (by one thread of O_h): the latent blocks of
// O_h's channels, and the scales (h 0) or the RoPE rows (h 1); the slot's
// `full` completes on both halves' arrivals and bytes.
__device__ __forceinline__ void issue_tile_half(const DecodeParams &p, const KvMaps &maps, const KvRange &r,
                                                unsigned char *ring, unsigned long long *full, int base, int tile,
                                                const TileWhere &w, int h)
{
    static_assert(LAT_BLOCKS % 2 == 0, "whole latent blocks per output warpgroup");
    issue_tma_part<LAT_BLOCKS / 2>(p, maps, r, ring, full, base, tile, w, h * (LAT_BLOCKS / 2), h == 1, h == 0);
}

// O_w's share of Q's load, its products over every tile of one work item
// (w = 0, 1), then its half of the output.
__device__ __forceinline__ void output_item(const DecodeParams &p, const KvMaps &maps, const SmemLayout &m,
                                            int4 item, int splits, int base)
{
    const int b = item.x, split = item.y >> 16, row0 = (item.y & 0xffff) * Q_TILE;
    const int tid = threadIdx.x, ow = warp_uniform(tid / 128) - 2;
    const int warp = (tid % 128) / 32, lane = tid % 32, quad = lane % 4;
    const KvRange range = item_range(p, item, splits);
    const int tiles = range.tiles;
    unsigned long long *const my_used = ow == 0 ? m.used : m.used_hi;   // this O's half of each slot
    // O0's thread 0 and O1's thread 64: warps 8 and 14, on different schedulers (warp % 4)
    const bool half_copier = tid % 128 == 64 * ow;
    // This half copier's next copy (tile STAGES, then one per tile), looked
    // up a tile ahead so that the block-table read is off the refill's path.
    TileWhere next{};
    int *const next_pages = m.next_pages + ow * PIECES;
    auto look_up_next = [&](int tile) {
        if constexpr (NEXT_PAGES_IN_SMEM)
            fetch_tile_pages(range, tile, next_pages);
        else
            next = locate_tile(range, tile);
    };
    auto next_where = [&]() { return NEXT_PAGES_IN_SMEM ? read_tile_pages(next_pages) : next; };
    QRowLoad q_ld;   // (Q's loads go out ahead of the tiles' copies)
    load_q_fp8_start(p, b, row0, q_ld, tid - O_FIRST);
    if (half_copier) {
        for (int k = 0; k < STAGES; ++k)
            issue_tile_half(p, maps, range, m.ring, m.full, base, k, locate_tile(range, k), ow);
        look_up_next(STAGES);
    }
    load_q_fp8_finish(q_ld, m.q_lat, m.q_rope, m.q_scale, tid - O_FIRST);
    fence_async_smem();
    named_barrier(BAR_ITEM, THREADS);   // Q is in

    float o[MBLOCKS][32];   // O^T: channels (channel_of) x the 64 query rows
    zero_o_t(o);
    // V^T's fragments, a quarter (one group's 32-token half: two m-blocks)
    // per a[i]: the whole tile's, or two quarters' by q % 2 (V_WHOLE_TILE).
    // (Reading V^T before P'(t) measured slower in both forms: docs/perf.md.)
    unsigned a[V_QUARTERS_HELD][2][4];
    for (int t = 0; t < tiles; ++t) {
        const int g = base + t;
        const float *st = m.state_all + g % P_SLOTS * STATE_FLOATS;
        mbarrier_wait(m.pfull + g % P_SLOTS, parity_of(g, P_SLOTS));
        const int4 flags = *(const int4 *)(st + ST_FLAGS);
        const unsigned char *slot = m.ring + g % STAGES * STAGE_BYTES;
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
                scale_columns(o[mb], f);
        }
        if constexpr (V_WHOLE_TILE) {
#pragma unroll
            for (int q = 0; q < 2 * GROUPS; ++q)
                load_vt_quarter(slot, a[q][0], a[q][1], ow, warp, lane, q / 2, q % 2);
            mbarrier_arrive(my_used + g % STAGES);
            if (PV_AFTER_NEXT_QK && t + 1 < tiles)   // the next tile's QK goes to the tensor cores first
                mbarrier_wait(m.qk_issued + (g + 1) % P_SLOTS, parity_of(g + 1, P_SLOTS));
            wgmma_fence();
#pragma unroll
            for (int q = 0; q < 2 * GROUPS; ++q)
#pragma unroll
                for (int mm = 0; mm < 2; ++mm)
                    wgmma_pvt_fp8(o[2 * (q / 2) + mm], a[q][mm], desc_plus(p_desc, 2 * (q % 2) * P_LBO), 1);
            wgmma_commit();
        } else {
            load_vt_quarter(slot, a[0][0], a[0][1], ow, warp, lane, 0, 0);
#pragma unroll
            for (int q = 0; q < 2 * GROUPS; ++q) {
                const int grp = q / 2, kc = q % 2;
                if (q > 0) {   // all but the last quarter are done: quarter q - 2's fragments are free
                    wgmma_wait<1>();
                    load_vt_quarter(slot, a[q % 2][0], a[q % 2][1], ow, warp, lane, grp, kc);
                }
                if (q == 2 * GROUPS - 1)
                    mbarrier_arrive(my_used + g % STAGES);
                wgmma_fence();
#pragma unroll
                for (int mm = 0; mm < 2; ++mm)
                    wgmma_pvt_fp8(o[2 * grp + mm], a[q % 2][mm], desc_plus(p_desc, 2 * kc * P_LBO), 1);
                wgmma_commit();
            }
        }
        if (half_copier && t + STAGES < tiles) {   // this half's readers are done: refill it
            mbarrier_wait(my_used + g % STAGES, parity_of(g, STAGES));
            issue_tile_half(p, maps, range, m.ring, m.full, base, t + STAGES, next_where(), ow);
            look_up_next(t + 1 + STAGES);
        }
        wgmma_wait<1>();   // (not needed here; without it ptxas spills 12 bytes, with it none)
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
    const int o_thread = tid - O_FIRST;   // 0 .. 255 over O0, O1
    if (o_thread < 64 && row0 + o_thread < ROWS) {
        const float mx = tiles > 0 ? final_state[ST_MAX + o_thread] : -inf_f32();
        const float l = tiles > 0 ? final_state[ST_SUM + o_thread] : 0.f;
        store_lse(p, b, split, row0 + o_thread, mx * m.q_scale[o_thread] * p.softmax_scale, l, direct);
    }
    // BF16 output straight from registers, 8 bytes per store (channels
    // c .. c+3 of a row), as the partials: no stage and no barrier (a
    // stage, with its two barriers and copy-out, measured 1.3% slower at
    // 4K, forty-seventh session).
    write_output(p, o, final_state, tiles > 0, nullptr, ow, warp, lane, b, split, row0, direct);
}

// The kernel entry (launch shapes as decode_wgmma_kernel.cu's): the roles
// split at the top, each with its own register count and its own loop over
// the CTA's work items, in step through next_work_item's barriers. (The
// queue's reset is thread 0's, which is in S0.)
extern "C" __global__ void __launch_bounds__(THREADS, 1)
snapmla_decode_split(const DecodeParams p, const __grid_constant__ KvMaps maps)
{
    extern __shared__ __align__(16) unsigned char smem_raw[];
    __shared__ int item_index;
    const SmemLayout m = carve_smem(smem_raw);
    if (threadIdx.x == 0) {
        init_ring_barriers(m.full, m.used, 2, 2 * 128);   // the two half copies; the tile's S and O0
        for (int s = 0; s < STAGES; ++s)
            mbarrier_init(m.used_hi + s, 2 * 128);           // the tile's S and O1
        for (int k = 0; k < P_SLOTS; ++k) {
            mbarrier_init(m.sfull + k, 128);    // the tile's S
            mbarrier_init(m.pfull + k, 128);    // the tile's S
            mbarrier_init(m.pempty + k, 256);   // O0 and O1
            mbarrier_init(m.qk_issued + k, 128);   // the tile's S
        }
        fence_mbarrier_init();
    }
    wait_prior_grids();   // (the plan, the cache append, Q's producer)
    if (threadIdx.x < O_FIRST) {
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
