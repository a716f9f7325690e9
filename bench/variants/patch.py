"""Candidate variants of the FP8 role-warpgroup kernel, kept as edits of the
shipped template so that they follow it and can be timed in a later device
call (unlike bench/probe, their numbers must be right: each is checked
against the float64 reference before it is timed).

    python3 bench/variants/patch.py NAME TEMPLATE OUT

writes TEMPLATE edited as NAME to OUT (NAME may join several with '+',
applied in order: prefetch1+copier1); a variant that also edits other
files of the tree (read from the current directory, the repository root)
writes them under OUT without `.cu`, plus `.tree/`, where
bench/template_ab.sh installs them for that variant's build.
bench/variants/run.sh writes them all. A variant whose text no longer matches the
template stops with an AssertionError.

  prefetch1  the copier also prefetches into L2 the tile after the one it
             just copied (cp.async.bulk.prefetch), so that copy reads L2
  prefetch2  the same, two tiles after
  retire_first  the output warpgroups retire tile t-1's products and free
             its P slot (pempty) before they wait for P'(t), not after, so
             that a late P' does not hold the slot the score side waits for
  pslots4    four P' buffers and row-state slots instead of three (the
             score warpgroups may run a tile further ahead of the output
             ones; shared memory 231648 bytes of 232448): edits
             wgmma_fp8_parts.cuh and the host's size (gen/resources.c)
  copier1    the copies are issued by thread 0 of O1 instead of O0, so
             that the output warpgroup that also copies is not the one the
             other waits for (O0 waits for O1's read of V today)
  half_copies  each output warpgroup copies the half of a tile it reads
             (its 256 latent channels; O0 also the scales, O1 the RoPE
             rows), once its score warpgroup and it are done with that half
             (a second `used` mbarrier per slot): no output warpgroup waits
             for the other's V read, and each issues half the copies (from
             warps on different schedulers: O0's thread 0, O1's thread 64);
             edits gen/resources.c (8 bytes of smem per ring slot)
  ldsm_all   V^T fragments by `ldmatrix.x4.trans` (b16 elements: 2 tokens
             x 2 channels per register) and one byte permute per fragment
             register: 8 loads and 32 permutes a tile per thread instead of
             32 loads and 48 permutes; a thread's channels become pairs
             (2 (lane / 4) + {0, 1} of a 16-channel block per m-block and
             warp), the output 4-byte stores. In the shared parts
             (wgmma_fp8_parts.cuh: channel_of, load_vt_quarter,
             write_output), so every V^T read of both FP8 schedules (the
             roles kernel's whole tile and its quarters, the seesaw's
             chunks, both FP8 caches) goes through ldmatrix.trans; edits
             wgmma_fp8_parts.cuh only
  chain_ilp  the score warpgroups' row-state update tests both row halves
             for "keep" before either updates (no branch between the two
             tests), so the two halves' exponential and compares overlap
             on the chain between the score warpgroups; a half that moves
             takes lazy_row_update as before
  combine_lse  the combine kernel (templates/combine.cu, every decode's)
             writes the row's LSE before its sweep instead of after, so
             that ptxas need not keep it across the sweep: no spill (4
             bytes at 512 threads today), but 40 registers instead of 32
             there (3 resident CTAs of 512 threads per SM instead of 4);
             time it where the combine weighs: SHAPES=1x65536,8x16384
"""
import os
import sys

PREFETCH = '''// The boxes of KV tile `tile` (its copy's pieces) prefetched into L2, so
// that the copy issued a tile later reads L2 instead of HBM.
__device__ __forceinline__ void prefetch_tile_l2(const DecodeParams &p, const KvMaps &maps, const KvRange &r, int tile,
                                                 const TileWhere &w)
{
    if (tile >= r.tiles)
        return;
    const int t0 = r.t_begin + tile * KV_TILE;
    const int pieces = min(PIECES, (r.t_end - t0 + BOX_ROWS - 1) / BOX_ROWS);
    const long long scale_plane = (long long)PAGE_SIZE * (LAT_ROW + ROPE_ROW);
#pragma unroll
    for (int k = 0; k < PIECES; ++k) {
        if (k >= pieces)
            break;
        const int slot = (t0 + k * BOX_ROWS) % PAGE_SIZE, page = w.page[k];
#pragma unroll
        for (int blk = 0; blk < LAT_BLOCKS; ++blk)
            asm volatile("cp.async.bulk.prefetch.tensor.3d.L2.global.tile [%0, {%1, %2, %3}];\\n" ::"l"(
                             (unsigned long long)&maps.latent), "r"(blk * 128), "r"(slot), "r"(page) : "memory");
#pragma unroll
        for (int rb = 0; rb < ROPE_BLOCKS; ++rb)
            asm volatile("cp.async.bulk.prefetch.tensor.3d.L2.global.tile [%0, {%1, %2, %3}];\\n" ::"l"(
                             (unsigned long long)&maps.rope), "r"(rb * ROPE_SW), "r"(slot), "r"(page) : "memory");
        asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;\\n" ::"l"(
                         p.cache + (long long)page * p.page_stride + scale_plane + slot * 4), "r"(BOX_ROWS * 4)
                     : "memory");
    }
}

// O_w's share of Q's load'''


HALF_ISSUE = '''// Half h of KV tile `tile`'s copy (by one thread of O_h): the latent blocks of
// O_h's channels, and the scales (h 0) or the RoPE rows (h 1); the slot's
// `full` completes on both halves' arrivals and bytes.
__device__ __forceinline__ void issue_tile_half(const DecodeParams &p, const KvMaps &maps, const KvRange &r,
                                                unsigned char *ring, unsigned long long *full, int base, int tile,
                                                const TileWhere &w, int h)
{
    static_assert(LAT_BLOCKS % 2 == 0, "whole latent blocks per output warpgroup");
    issue_tma_part<LAT_BLOCKS / 2>(p, maps, r, ring, full, base, tile, w, h * (LAT_BLOCKS / 2), h == 1, h == 0);
}

// O_w's share of Q's load'''


# ldsm_all's load_vt_quarter (with its ldmatrix wrapper)
LDSM_QUARTER = '''\
__device__ __forceinline__ void ldsm_x4_trans(unsigned (&r)[4], const void *p)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_address(p))
                 : "memory");
}

// The A fragments of O^T += V^T P'^T for one quarter of this warpgroup's
// tile, the 32-token half kc of group grp's two m-blocks: lo (m-block
// 2 grp) and hi (2 grp + 1), read from the raw e4m3 tile (tokens x
// channels, 128-byte swizzle); fragment i = 2 j + h. K position 4 quad + e
// (+16 j, +32 kc) holds the token 2 quad + (e & 1) + 8 (e >> 1) (+16 j,
// +32 kc), the order P' was written in (the score accumulator's own). One
// ldmatrix.x4.trans per 16-token step 2 kc + j: matrix i (lanes 8 i ..
// 8 i + 7 give its token rows) is m-block 2 grp + i / 2, tokens 8 (i % 2)
// + 0..7; the b16 transpose leaves a thread tokens 2 quad, 2 quad + 1 (and
// + 8, + 9 in the next matrix) of its channel pair, and one byte permute
// per fragment register splits the pair. Each matrix's 8 rows (16 bytes
// each) fall in different banks by the swizzle.
__device__ __forceinline__ void load_vt_quarter(const unsigned char *k_lat, unsigned (&lo)[4], unsigned (&hi)[4],
                                                int wg, int warp, int lane, int grp, int kc)
{
    const int mat = lane / 8;
    const int c0 = channel_of(wg, warp, 0, 2 * grp + mat / 2, 0);   // the matrix's 16 channels
    const unsigned char *row =
        k_lat + (c0 / 128) * LAT_BLOCK_BYTES + swizzled<128>(8 * (mat % 2) + lane % 8, c0 % 128);
#pragma unroll
    for (int j = 0; j < 2; ++j) {   // 16-token steps kk = 2 kc + j (the swizzle phase repeats every 8 rows)
        unsigned x[4];
        ldsm_x4_trans(x, row + (2 * kc + j) * 16 * 128);
        lo[2 * j] = __byte_perm(x[0], x[1], 0x6420);       // even channel
        lo[2 * j + 1] = __byte_perm(x[0], x[1], 0x7531);   // odd channel
        hi[2 * j] = __byte_perm(x[2], x[3], 0x6420);
        hi[2 * j + 1] = __byte_perm(x[2], x[3], 0x7531);
    }
}

'''

def variant(name, s):
    def rep(old, new):
        nonlocal s
        assert s.count(old) == 1, (name, old)
        s = s.replace(old, new)

    if name in ('prefetch1', 'prefetch2'):
        ahead = 1 if name == 'prefetch1' else 2
        rep("// O_w's share of Q's load", PREFETCH)
        first = ''.join(f'        prefetch_tile_l2(p, maps, range, STAGES + {k}, locate_tile(range, STAGES + {k}));\n'
                        for k in range(ahead))
        rep('''        next = locate_tile(range, STAGES);
''', '''        next = locate_tile(range, STAGES);
''' + first)
        rep('''            next = locate_tile(range, t + 1 + STAGES);
''', f'''            next = locate_tile(range, t + 1 + STAGES);
            prefetch_tile_l2(p, maps, range, t + {ahead} + STAGES, locate_tile(range, t + {ahead} + STAGES));
''')
    elif name == 'pslots4':
        pass   # (no line of the roles template: tree_variant has its edits)
    elif name == 'copier1':
        rep('''constexpr int COPIER = 2 * 128;      // thread 0 of O0
''', '''constexpr int O_FIRST = 2 * 128;     // thread 0 of O0
constexpr int COPIER = 3 * 128;      // thread 0 of O1
''')
        rep('tid - COPIER);', 'tid - O_FIRST);')
        rep('const int o_thread = tid - COPIER;', 'const int o_thread = tid - O_FIRST;')
        rep('if (threadIdx.x < COPIER) {', 'if (threadIdx.x < O_FIRST) {')
    elif name == 'retire_first':
        rep('''        mbarrier_wait(m.pfull + g % P_SLOTS, parity_of(g, P_SLOTS));
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
''', '''        const unsigned char *slot = m.ring + g % STAGES * STAGE_BYTES;
        const unsigned long long p_desc = smem_desc(m.p_all + g % P_SLOTS * P_BYTES, P_LBO, P_SBO, 0);
        wgmma_wait<0>();   // tile t-1's products: O^T may be rescaled
#pragma unroll
        for (int mb = 0; mb < MBLOCKS; ++mb)
            fence_registers(o[mb]);
        if (t > 0)   // tile t-1's P' and state are free
            mbarrier_arrive(m.pempty + (g - 1) % P_SLOTS);
        mbarrier_wait(m.pfull + g % P_SLOTS, parity_of(g, P_SLOTS));
        const int4 flags = *(const int4 *)(st + ST_FLAGS);
''')
    elif name == 'half_copies':
        rep("// O_w's share of Q's load", HALF_ISSUE)
        rep('''    unsigned long long *sfull, *pfull, *pempty;
};''', '''    unsigned long long *sfull, *pfull, *pempty;
    unsigned long long *used_hi;   // per ring slot: S and O1 are done with its upper half (`used`: S and O0)
};''')
        rep('''    check_smem_layout(smem_raw, m.pempty + P_SLOTS);''', '''    m.used_hi = m.pempty + P_SLOTS;
    check_smem_layout(smem_raw, m.used_hi + STAGES);''')
        rep('''        mbarrier_arrive(m.used + g % STAGES);  // this S is done with the slot
''', '''        mbarrier_arrive(m.used + g % STAGES);  // this S is done with the slot: both halves
        mbarrier_arrive(m.used_hi + g % STAGES);
''')
        rep('''    TileWhere next{};   // the copier's next copy: tile STAGES, then one per tile
    if (tid == COPIER) {
        for (int k = 0; k < STAGES; ++k)
            issue_kv_tile(p, maps, range, m.ring, m.full, base, k, locate_tile(range, k));
''', '''    unsigned long long *const my_used = ow == 0 ? m.used : m.used_hi;   // this O's half of each slot
    // O0's thread 0 and O1's thread 64: warps 8 and 14, on different schedulers (warp % 4)
    const bool half_copier = tid % 128 == 64 * ow;
    TileWhere next{};   // the copier's next copy: tile STAGES, then one per tile
    if (half_copier) {
        for (int k = 0; k < STAGES; ++k)
            issue_tile_half(p, maps, range, m.ring, m.full, base, k, locate_tile(range, k), ow);
''')
        rep('''            mbarrier_arrive(m.used + g % STAGES);
            wgmma_fence();''', '''            mbarrier_arrive(my_used + g % STAGES);
            wgmma_fence();''')
        rep('''                    mbarrier_arrive(m.used + g % STAGES);
''', '''                    mbarrier_arrive(my_used + g % STAGES);
''')
        rep('''        if (tid == COPIER && t + STAGES < tiles) {   // the slot's readers are done: refill it
            mbarrier_wait(m.used + g % STAGES, parity_of(g, STAGES));
            issue_kv_tile(p, maps, range, m.ring, m.full, base, t + STAGES, next);''',
            '''        if (half_copier && t + STAGES < tiles) {   // this half's readers are done: refill it
            mbarrier_wait(my_used + g % STAGES, parity_of(g, STAGES));
            issue_tile_half(p, maps, range, m.ring, m.full, base, t + STAGES, next, ow);''')
        rep('''        init_ring_barriers(m.full, m.used, 1, 3 * 128);   // the copier's expect_tx; the tile's S, O0, O1
''', '''        init_ring_barriers(m.full, m.used, 2, 2 * 128);   // the two half copies; the tile's S and O0
        for (int s = 0; s < STAGES; ++s)
            mbarrier_init(m.used_hi + s, 2 * 128);           // the tile's S and O1
''')
    elif name == 'ldsm_all':
        pass   # (no line of the roles template: tree_variant has its edits)
    elif name == 'chain_ilp':
        rep('''#pragma unroll
        for (int h = 0; h < 2; ++h)
            lazy_row_update(row_max[h], row_sum[h], row_r[h], tile, h, row_scale_log2[h], factor[h],
                                            p_factor[h], rescale_rows);
''', '''        // (chain_ilp) both halves' keep tests first: their chains overlap
        float beta_keep[2];
        bool keep[2];
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            beta_keep[h] = tile.max[h] == -inf_f32() ? 0.f
                                                     : fast_exp2((tile.max[h] - row_max[h]) * row_scale_log2[h]);
            const float mx_keep = beta_keep[h] * tile.p_max[h] * row_r[h];
            keep[h] = beta_keep[h] <= BETA_MAX && mx_keep <= P_HIGH && (mx_keep >= P_FLOOR || mx_keep == 0.f);
        }
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            if (keep[h]) {
                factor[h] = 1.f;
                p_factor[h] = row_r[h] * beta_keep[h];
                row_sum[h] += beta_keep[h] * tile.sum[h];
            } else {   // (lazy_row_update tests again, fails, and moves)
                lazy_row_update(row_max[h], row_sum[h], row_r[h], tile, h, row_scale_log2[h], factor[h],
                                p_factor[h], rescale_rows);
            }
        }
''')
    elif name != 'combine_lse':   # (it edits only the combine: tree_variant)
        sys.exit(f'unknown variant {name}: prefetch1 prefetch2 retire_first pslots4 copier1 half_copies ldsm_all '
                 'chain_ilp combine_lse')
    return s


def tree_variant(name, tree):
    """The variant's edits of files other than the template, into tree
    (path -> text, read from the current directory when first edited)."""
    def rep(path, old, new):
        if path not in tree:
            tree[path] = open(path).read()
        assert tree[path].count(old) == 1, (name, path, old)
        tree[path] = tree[path].replace(old, new)

    if name == 'pslots4':
        rep('templates/wgmma_fp8_parts.cuh', 'P_BYTES = 64 * KV_TILE, P_BUFFERS = 3;',
            'P_BYTES = 64 * KV_TILE, P_BUFFERS = ROLE_WARPGROUPS ? 4 : 3;')
        rep('templates/wgmma_fp8_parts.cuh', 'STATE_FLOATS = ST_FLAGS + 4, STATE_SLOTS = 3;',
            'STATE_FLOATS = ST_FLAGS + 4, STATE_SLOTS = ROLE_WARPGROUPS ? 4 : 3;')
        rep('gen/resources.c', '''        int p_barriers = snapmla_variant_role_warpgroups(v) ? 3 * 24 : 0;''',
            '''        int p_slots = snapmla_variant_role_warpgroups(v) ? 4 : 3;
        int p_barriers = snapmla_variant_role_warpgroups(v) ? p_slots * 24 : 0;''')
        rep('gen/resources.c', '3 * (p_tile + row_state)', 'p_slots * (p_tile + row_state)')
    if name == 'ldsm_all':
        parts = 'templates/wgmma_fp8_parts.cuh'
        rep(parts, '''// Channel of row h (0: lane/4, 1: lane/4 + 8) of the m64 block mb of this
// thread's O^T accumulators. The order is chosen so that a quad's four rows
// of blocks 2g', 2g'+1 are four consecutive channels: one 32-bit word of the
// raw tile, which becomes those rows' A fragments by a 4 x 4 byte transpose;
// and so that blocks 2g', 2g'+1 hold the 128 channels of group g' (one V
// scale per token in each, which P' carries).
__device__ __forceinline__ int channel_of(int wg, int warp, int lane, int mb, int h)
{
    return wg * HALF + 128 * (mb / 2) + 32 * warp + 4 * (lane / 4) + 2 * (mb % 2) + h;
}
''', '''// Channel of row h (0: lane/4, 1: lane/4 + 8) of the m64 block mb of this
// thread's O^T accumulators. A warp's 16-row slice of an m-block is a
// 16-channel block of the raw tile, and a thread's rows lane/4, lane/4 + 8
// are its channels 2 (lane/4), 2 (lane/4) + 1: what ldmatrix.trans hands a
// thread (b16 column lane/4 of each 8 x 8 matrix). Blocks 2g', 2g'+1 hold
// the 128 channels of group g' (one V scale per token in each, which P'
// carries).
__device__ __forceinline__ int channel_of(int wg, int warp, int lane, int mb, int h)
{
    return wg * HALF + 64 * mb + 16 * warp + 2 * (lane / 4) + h;
}
''')
        a = tree[parts].index("// Where this thread's 4 words of group grp's 16-token steps start")
        b = tree[parts].index("// Every group's quarter of the 32-token half kc")
        tree[parts] = tree[parts][:a] + LDSM_QUARTER + tree[parts][b:]
        rep(parts, '''    const int quad = lane % 4;
    // where row 2 quad + e, channels c .. c+3 of group grp go; row + 8 j is 8 j rows on
    unsigned stage_at[2][GROUPS];
#pragma unroll
    for (int e = 0; e < 2; ++e)
#pragma unroll
        for (int grp = 0; grp < GROUPS; ++grp)
            stage_at[e][grp] = out_stage_offset(2 * quad + e, channel_of(wg, warp, lane, 2 * grp, 0));
''', '''    // (opaque to ptxas: else it computes the channels before the tile loop
    // and spills them across it)
    asm volatile("" : "+r"(lane));
    const int quad = lane % 4;
''')
        rep(parts, '''            for (int grp = 0; grp < GROUPS; ++grp) {
                const float inv = inv_of[WG_SCALE_GROUPS == 1 ? 0 : grp];
                const int c = channel_of(wg, warp, lane, 2 * grp, 0);   // channels c .. c+3
                const float *lo = o[2 * grp], *hi = o[2 * grp + 1];
                const float4 x = make_float4(lo[4 * j + e] * inv, lo[4 * j + 2 + e] * inv, hi[4 * j + e] * inv,
                                             hi[4 * j + 2 + e] * inv);
                if (direct)
                    *(uint2 *)(stage + stage_at[e][grp] + j * 8 * LATENT * 2) =
                        make_uint2(bf16x2(x.x, x.y), bf16x2(x.z, x.w));
                else
                    store_partial_quad(p, b, split, row, c, x);
            }
''', '''            for (int mb = 0; mb < MBLOCKS; ++mb) {   // this row's channel pair c, c + 1 of each m-block
                const float inv = inv_of[WG_SCALE_GROUPS == 1 ? 0 : mb / 2];
                const int c = channel_of(wg, warp, lane, mb, 0);
                const float x0 = o[mb][4 * j + e] * inv, x1 = o[mb][4 * j + 2 + e] * inv;
                if (direct)
                    *(unsigned *)(stage + out_stage_offset(n_row, c)) = bf16x2(x0, x1);
                else
                    store_output_pair(p, b, split, row, c, x0, x1, false);
            }
''')
    if name == 'half_copies':
        rep('gen/resources.c', 'v->stages * 16 + p_barriers;',
            'v->stages * 16 + p_barriers + (snapmla_variant_role_warpgroups(v) ? v->stages * 8 : 0);')
    if name == 'combine_lse':
        rep('templates/combine.cu', '''    const bool empty = total_lse == -inf_f32();
''', '''    const bool empty = total_lse == -inf_f32();
    if (tid == 0)   // out now: else ptxas keeps it across the sweep
        p.lse[out_row] = empty ? inf_f32() : total_lse;
''')
        rep('templates/combine.cu', '''    if (tid == 0)
        p.lse[out_row] = empty ? inf_f32() : total_lse;
}
''', '''}
''')
    return tree


if __name__ == '__main__':
    name, template, out = sys.argv[1:4]
    text = open(template).read()
    tree = {}
    for part in name.split('+'):
        text = variant(part, text)
        tree = tree_variant(part, tree)
    open(out, 'w').write(text)
    for path, edited in tree.items():
        target = os.path.join(out[:-len('.cu')] + '.tree', path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, 'w').write(edited)
