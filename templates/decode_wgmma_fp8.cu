// ---- mla_decode, Hopper FP8 path (wgmma e4m3, sm_90a) ----------------------
//
// (The tile ring and TMA copies: wgmma_decode.cuh; Q, P' and V^T helpers:
// wgmma_fp8_parts.cuh; the kernel entry that runs decode_item:
// decode_wgmma_kernel.cu. tile.warps 16 runs decode_wgmma_fp8_roles.cu.)
//
// Schedule ("seesaw"). 256 threads: two warpgroups WG0, WG1. A work item is
// 64 query rows (q_heads x q_len, padded) of one request and a contiguous
// range of its 64-token KV tiles: one per CTA of the split grid (row blocks,
// splits, batch), or taken from the plan's queue by a persistent CTA (one
// per SM, decode_plan.cu; batches that fill the GPU). WG w owns
// the tiles t = w, w+2, ... (their scores and softmax) and the output
// channels [w LATENT/2, (w+1) LATENT/2) of every tile.
//
//   prologue  Q latent -> e4m3 with one scale q_s per row (amax / 448 rounded
//             up to a power of two), Q RoPE / q_s in BF16 (exact: q_s is a
//             power of two), both into swizzled smem (K-major, as wgmma reads it);
//             KV tiles 0..STAGES-1 (raw e4m3 latent, BF16 RoPE, fp32
//             per-token scales) straight into swizzled smem by TMA (one
//             thread; cp.async for pages under 16 tokens); each ring slot
//             has an mbarrier the copies complete on
//   own tile t (WG w)
//     QK      S = Q K^T over the whole latent         wgmma m64n64k32 e4m3
//             S *= k_scale[token]                     (per-token K scale on columns)
//             S += (Q_rope / q_s) K_rope^T            wgmma m64n64k16 bf16
//             so S is the score / q_s: q_s joins the softmax's per-row scale
//     chain   wait for tile t-1's row state (max m, P factor r, row sum l)
//             from the other warpgroup (named barrier, by tile parity)
//     softmax m' = max(m, rowmax S), P = exp2(row_scale_log2 (S - m')), l chained
//     P'      P * v_scale[token] (scale fusion: V's per-token scale lies along
//             the reduction, so it goes into P), times a per-row r that keeps
//             the largest P' in [28, 448] (so O's factor is mostly 1), to e4m3
//     publish P' and the row state of tile t (with O's factor) to smem
//     PV      O_w^T = O_w^T factor(u) + V_w(u)^T P'(u)^T for u = t-1, then t:
//             wgmma m64n64k32 e4m3, A = V^T from registers (byte-transposed
//             from the raw tile: e4m3 wgmma takes its operands K-major only),
//             B = P' from smem; O^T's channel order makes that a 4 x 4 byte
//             transpose per word, P's token order needs no shuffles
//   fp8_per_tile128 (FlashMLA's 656-byte token: one scale per 128 channels,
//   a "scale group"): the QK runs group by group, the running S moved from
//   group g's K scale to g+1's between them (one accumulator, a wait per
//   group); P' and its factor r are made per scale group (P v_scale(g) r(g)),
//   and each m64 block of O^T lies in one group (channel_of), so it takes its
//   group's P' and O factor. Per-token is the case of one group.
//   Only the softmax is on the WG0 -> WG1 -> WG0 chain; one warpgroup's GEMMs
//   run while the other's softmax does. A tile's slot is refilled (tile
//   t+STAGES) by its non-owner once both warpgroups have read it (the slot's
//   "used" mbarrier), so the copies run STAGES - 1 or so tiles ahead.
//   epilogue  one split: out = O / (r l) (BF16, staged in smem for 16-byte stores), lse;
//             several: fp32 partials
//
// Tokens past the range get zero codes and scales (cp.async zero-fills them;
// after a TMA copy the owner zeroes them, clear_tail) and -inf scores; rows
// past ROWS are zeros and are not stored.

namespace snapmla {

// Shared memory (wgmma_fp8_parts.cuh): used[s] counts both warpgroups.
struct SmemLayout : Fp8Smem {};

__device__ __forceinline__ SmemLayout carve_smem(unsigned char *smem_raw)
{
    SmemLayout m;
    check_smem_layout(smem_raw, carve_fp8_smem(smem_raw, m));
    return m;
}

// One work item of the plan (templates/decode_plan.cu): the tiles
// [item.z, item.w) of request item.x, row block item.y & 0xffff, piece
// item.y >> 16 of `splits`. `base`: the tiles this CTA ran before, which
// places this item's tiles in the ring and the mbarriers' phases.
__device__ __forceinline__ void decode_item(const DecodeParams &p, const KvMaps &maps, const SmemLayout &m,
                                            int4 item, int splits, int base)
{
    unsigned char *q_lat = m.q_lat, *q_rope = m.q_rope, *ring = m.ring, *p_all = m.p_all;
    float *q_scale = m.q_scale, *state_all = m.state_all;
    unsigned long long *full = m.full, *used = m.used;
    const int b = item.x, split = item.y >> 16, row0 = (item.y & 0xffff) * Q_TILE;
    const int tid = threadIdx.x, wg = warp_uniform(tid / 128);
    const int warp = (tid % 128) / 32, lane = tid % 32, quad = lane % 4;
    const KvRange range = item_range(p, item, splits);
    const int t_end = range.t_end, tiles = range.tiles;
    auto slot = [&](int u) { return (base + u) % STAGES; };
    auto phase = [&](int u) { return (unsigned)((base + u) / STAGES) & 1u; };

    // this warpgroup's next copy: tile STAGES (WG1) or STAGES + 1 (WG0), then every other
    TileWhere next{};
    QRowLoad q_ld;   // (Q's loads go out ahead of the tiles' copies)
    load_q_fp8_start(p, b, row0, q_ld);
    if (is_copier_thread()) {
        for (int k = 0; k < STAGES; ++k)
            if (copier_of(k) == wg)
                issue_kv_tile(p, maps, range, ring, full, base, k, locate_tile(range, k));
        next = locate_tile(range, STAGES + 1 - wg);
    }
    load_q_fp8_finish(q_ld, q_lat, q_rope, q_scale);
    fence_async_smem();
    __syncthreads();

    // This thread's two rows of the score tile: 16*warp + lane/4, and + 8.
    const int my_row[2] = {16 * warp + lane / 4, 16 * warp + lane / 4 + 8};
    // exp2 of (score - max) scaled: softmax scale, log2 e and the row's q_s
    // (S holds score / q_s)
    float row_scale_log2[2];
    const int visible_end[2] = {visible_end_of(range, row0 + my_row[0]), visible_end_of(range, row0 + my_row[1])};
#pragma unroll
    for (int h = 0; h < 2; ++h)
        row_scale_log2[h] = p.softmax_scale * 1.4426950408889634f * q_scale[my_row[h]];
    // The row state after the last tile seen (chained through both
    // warpgroups' tiles): max of S (score / q_s), P's e4m3 factor per scale
    // group, row sum.
    // (r is set afresh per own tile: from the state, or 1 before tile 0, so
    // that it holds no registers across the loop.)
    float row_max[2] = {-inf_f32(), -inf_f32()};
    float row_r[SCALE_GROUPS][2];
    float row_sum[2] = {0.f, 0.f};
    float o[MBLOCKS][32];   // O^T: channels (channel_of) x the 64 query rows
    zero_o_t(o);
    const int full_end = visible_end_of(range, 0);   // tiles ending before it need no mask
    const unsigned long long q_lat_desc = latent_desc(q_lat);
    const unsigned long long q_rope_desc = rope_desc(q_rope);

    auto state_of = [&](int u) { return state_all + (u % STATE_SLOTS) * STATE_FLOATS; };
    // The other warpgroup's row state after its tile u (this thread's rows).
    auto take_state = [&](int u) {
        named_barrier(BAR_STATE + u % 2, 256);   // tile u's P' and row state are out
        const float *st = state_of(u);
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            row_max[h] = st[ST_MAX + my_row[h]];
            row_sum[h] = st[ST_SUM + my_row[h]];
#pragma unroll
            for (int g = 0; g < SCALE_GROUPS; ++g)
                row_r[g][h] = st[ST_R + 64 * g + my_row[h]];
        }
    };
    // Retires this warpgroup's products: O's registers are its own again.
    auto wait_products = [&]() {
        wgmma_wait<0>();
#pragma unroll
        for (int mb = 0; mb < MBLOCKS; ++mb)
            fence_registers(o[mb]);
    };
    // O^T = O^T * factor(u) + V^T(u) P'(u)^T over this warpgroup's channels,
    // for either warpgroup's tile u (its P' and row state out); the previous
    // product must be done. Marks the slot read by this warpgroup.
    // (fp8_per_tile128: channel group grp's blocks take the factor and P' of
    // its scale group.)
    constexpr int WG_SCALE_GROUPS = KV_TILE128 ? GROUPS : 1;   // scale groups of a warpgroup's channels
    auto product = [&](int u) {
        const int4 flags = *(const int4 *)(state_of(u) + ST_FLAGS);
        if (flags.x | flags.y | flags.z | flags.w) {   // warpgroup-uniform; mostly skipped
#pragma unroll
            for (int sg = 0; sg < WG_SCALE_GROUPS; ++sg) {
                float f[16];   // of query rows 8 j + 2 quad + {0, 1}: this thread's columns
                load_column_pairs(state_of(u) + ST_FACTOR + 64 * scale_group_of(wg, sg), quad, f);
#pragma unroll
                for (int mb = 0; mb < MBLOCKS; ++mb)
                    if (WG_SCALE_GROUPS == 1 || mb / 2 == sg)
                        scale_columns(o[mb], f);
            }
        }
        unsigned a[MBLOCKS][2][4];
        load_vt_fragments(ring + slot(u) * STAGE_BYTES, a, wg, warp, lane);
        mbarrier_arrive(used + slot(u));
        const unsigned long long p_desc = smem_desc(p_all + (u % P_BUFFERS) * P_TILE_BYTES, P_LBO, P_SBO, 0);
        wgmma_fence();
#pragma unroll
        for (int mb = 0; mb < MBLOCKS; ++mb)
#pragma unroll
            for (int kc = 0; kc < 2; ++kc)
                wgmma_pvt_fp8(o[mb], a[mb][kc],
                              desc_plus(p_desc, scale_group_of(wg, mb / 2) * P_BYTES + 2 * kc * P_LBO), 1);
        wgmma_commit();
    };

    // Per own tile t: QK and its scaling; the critical section, the only
    // work between the two warpgroups' hand-offs (take tile t-1's row state,
    // softmax of t, publish P' and the state); then the products of tiles
    // t-1 and t into this warpgroup's channels, and the copies into t-1's slot.
    for (int t = wg; t < tiles; t += 2) {
        const unsigned char *k_lat = ring + slot(t) * STAGE_BYTES;
        const unsigned char *k_rope = k_lat + KV_TILE * LAT_ROW;
        const float *k_scale = (const float *)(k_rope + KV_TILE * ROPE_ROW);
        const int t0 = range.t_begin + t * KV_TILE;
        mbarrier_wait(full + slot(t), phase(t));
        fence_async_smem();

        // ---- S = Q K^T, latent part (e4m3) ----
        // fp8_per_tile128: a product per 128-channel scale group g, the
        // running sum moved from g's scale to g+1's in between, so that one
        // accumulator holds S in units of the last group's scale.
        const unsigned long long k_lat_desc = latent_desc(k_lat);
        const unsigned long long k_rope_desc = rope_desc(k_rope);
        constexpr int BLOCKS_PER_GROUP = LAT_BLOCKS / SCALE_GROUPS;
        float s[32];
#pragma unroll
        for (int i = 0; i < 32; ++i)
            s[i] = 0.f;
        float token_scale[16];   // columns 8j + 2*quad + {0, 1}: the K scale, then (last group) V's
#pragma unroll
        for (int g = 0; g < SCALE_GROUPS; ++g) {
            wgmma_fence();
#pragma unroll
            for (int kb = g * BLOCKS_PER_GROUP; kb < (g + 1) * BLOCKS_PER_GROUP; ++kb)
#pragma unroll
                for (int ks = 0; ks < 4; ++ks)
                    wgmma_qk_fp8(s, desc_plus(q_lat_desc, kb * LAT_BLOCK_BYTES + ks * 32),
                                 desc_plus(k_lat_desc, kb * LAT_BLOCK_BYTES + ks * 32), 1);
            wgmma_commit();
            if (g == 0)
                wait_products();   // the QK product and this warpgroup's last PV
            else
                wgmma_wait<0>();
            fence_registers(s);
            if (g + 1 < SCALE_GROUPS) {   // column c = 2 j + e: elements 4 j + e, 4 j + 2 + e
#pragma unroll
                for (int c = 0; c < 16; ++c) {
                    const int tok = 8 * (c / 2) + 2 * quad + c % 2;
                    const float ratio = __fdividef(k_scale[tok * SCALE_GROUPS + g], k_scale[tok * SCALE_GROUPS + g + 1]);
                    s[4 * (c / 2) + c % 2] *= ratio;
                    s[4 * (c / 2) + 2 + c % 2] *= ratio;
                }
            }
        }
        load_token_scales(k_scale, quad, SCALE_GROUPS - 1, token_scale);
        scale_columns(s, token_scale);   // the K scale (the row's q_s is in row_scale_log2)

        // ---- the RoPE part, BF16 ----
        add_rope_scores(s, q_rope_desc, k_rope_desc);
        if (t0 + KV_TILE > full_end) {   // the range's last tile, or a causal edge (one branch: the tail is an edge)
            if (KV_TMA && t0 + KV_TILE > t_end)
                clear_tail(ring + slot(t) * STAGE_BYTES, t_end - t0);
            zero_scales_past(token_scale, t0, t_end, quad);
            mask_scores(s, t0, visible_end, quad);
        }
        float tile_max[2];
#pragma unroll
        for (int h = 0; h < 2; ++h)
            tile_max[h] = quad_max(max_of_row(s, h));

        // ---- critical section: the row state of tile t-1 in, tile t's out ----
        if (t > 0)
            take_state(t - 1);
        else
#pragma unroll
            for (int g = 0; g < SCALE_GROUPS; ++g)
                row_r[g][0] = row_r[g][1] = 1.f;
        // online softmax (exp2 of row_scale_log2 * (s - m))
        float alpha[2], m_scaled[2];
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const float m_new = fmaxf(row_max[h], tile_max[h]);
            alpha[h] = row_max[h] == -inf_f32() ? 1.f : fast_exp2((row_max[h] - m_new) * row_scale_log2[h]);
            row_max[h] = m_new;
            // a row that sees nothing: P = exp2(-inf) = 0
            m_scaled[h] = m_new == -inf_f32() ? 0.f : m_new * row_scale_log2[h];
        }
        // scale fusion: V's per-token scale here (per scale group: below)
        float part_sum[4];
        exponentials<SCALE_GROUPS == 1>(s, row_scale_log2, m_scaled, token_scale, part_sum);
#pragma unroll
        for (int h = 0; h < 2; ++h)
            row_sum[h] = row_sum[h] * alpha[h] + quad_sum(part_sum[2 * h] + part_sum[2 * h + 1]);
        // P' = P v_scale r per scale group, as e4m3 in the accumulator's token order
        bool rescale_rows = false;
        float factor[SCALE_GROUPS][2];
#pragma unroll
        for (int g = 0; g < SCALE_GROUPS; ++g) {
            // V's scale of group g on this thread's columns (per-token: in s already)
            float v_scale[16];
            if (SCALE_GROUPS == 1) {
#pragma unroll
                for (int c = 0; c < 16; ++c)
                    v_scale[c] = 1.f;
            } else {
                load_token_scales(k_scale, quad, g, v_scale);
                if (t0 + KV_TILE > t_end)
                    zero_scales_past(v_scale, t0, t_end, quad);
            }
            auto x = [&](int i) { return s[i] * v_scale[2 * (i / 4) + i % 2]; };   // P v_scale
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const float m = quad_max(fmaxf(max_of_row(x, h), 0.f));
                // e4m3 tops out at 448 and keeps its relative precision across
                // its normal range; r stays under 2^100 so that the ratio is finite.
                float r_new = row_r[g][h];
                if (m > 0.f && (m * r_new > P_HIGH || m * r_new < P_LOW))
                    r_new = fminf(__fdividef(P_HIGH, m), 1.2676506e30f);
                factor[g][h] = r_new == row_r[g][h] ? alpha[h] : alpha[h] * __fdividef(r_new, row_r[g][h]);
                row_r[g][h] = r_new;
                rescale_rows = rescale_rows || factor[g][h] != 1.f;
            }
            unsigned pa[2][4];
#pragma unroll
            for (int kc = 0; kc < 2; ++kc) {
                const int i = 16 * kc;
                const float r0 = row_r[g][0], r1 = row_r[g][1];
                pa[kc][0] = e4m3x4(x(i + 0) * r0, x(i + 1) * r0, x(i + 4) * r0, x(i + 5) * r0);
                pa[kc][1] = e4m3x4(x(i + 2) * r1, x(i + 3) * r1, x(i + 6) * r1, x(i + 7) * r1);
                pa[kc][2] = e4m3x4(x(i + 8) * r0, x(i + 9) * r0, x(i + 12) * r0, x(i + 13) * r0);
                pa[kc][3] = e4m3x4(x(i + 10) * r1, x(i + 11) * r1, x(i + 14) * r1, x(i + 15) * r1);
            }
            store_p(p_all + (t % P_BUFFERS) * P_TILE_BYTES + g * P_BYTES, pa, warp, lane);
        }
        const bool rescale = __any_sync(0xffffffffu, rescale_rows);
        float *st = state_of(t);
        if (lane == 0)
            ((int *)st)[ST_FLAGS + warp] = rescale;
        if (quad == 0) {
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                st[ST_MAX + my_row[h]] = row_max[h];
                st[ST_SUM + my_row[h]] = row_sum[h];
#pragma unroll
                for (int g = 0; g < SCALE_GROUPS; ++g) {
                    st[ST_R + 64 * g + my_row[h]] = row_r[g][h];
                    st[ST_FACTOR + 64 * g + my_row[h]] = factor[g][h];
                }
            }
        }
        fence_async_smem();
        named_barrier_arrive(BAR_STATE + t % 2, 256);   // tile t's P' and row state to the other
        named_barrier(BAR_OWN + wg, 128);               // and to this warpgroup's product

        // ---- the products of tiles t-1 and t; the copies into t-1's slot ----
        if (t > 0) {
            product(t - 1);
            if (t - 1 + STAGES < tiles && is_copier_thread()) {   // once the owner has read it too
                mbarrier_wait(used + slot(t - 1), phase(t - 1));
                issue_kv_tile(p, maps, range, ring, full, base, t - 1 + STAGES, next);
                next = locate_tile(range, t + 1 + STAGES);
            }
            wait_products();   // before O's next rescale
        }
        product(t);   // completes under the next tile's wait and QK
    }
    if (tiles > 0 && (tiles - 1) % 2 != wg) {   // the last tile is the other's
        wait_products();
        take_state(tiles - 1);
        product(tiles - 1);
    }
    wait_products();

    // ---- epilogue: O / (r l) per query row (the final row state), lse ----
    const bool direct = range.splits == 1;   // the same for the whole CTA
    const float *final_state = state_of(tiles + STATE_SLOTS - 1);   // tile tiles-1's
    if (wg == 0 && quad == 0) {   // (before the stage overwrites q_scale)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int row = row0 + my_row[h];
            if (row < ROWS)
                store_lse(p, b, split, row, row_max[h] * q_scale[my_row[h]] * p.softmax_scale, row_sum[h], direct);
        }
    }
    // BF16 output through the stage (Q's smem and the ring's first slot,
    // both free once both warpgroups' last products are done); partials
    // straight out, 16 bytes per store.
    unsigned char *stage = m.q_lat;
    if (direct)
        __syncthreads();
    write_output(p, o, final_state, tiles > 0, stage, wg, warp, lane, b, split, row0, direct);
    if (direct) {
        __syncthreads();
        copy_out_stage(p, b, row0, stage);
    }
}

}  // namespace snapmla
