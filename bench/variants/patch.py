"""Candidate variants of the FP8 role-warpgroup kernel, kept as edits of the
shipped templates so that they follow them and can be timed in a later
device call (unlike bench/probe, their numbers must be right: each is
checked against the float64 reference before it is timed).

    python3 bench/variants/patch.py NAME TEMPLATE OUT

writes TEMPLATE (the roles kernel) edited as NAME to OUT (NAME may join
several with '+', applied in order: ldsm_all+pslots4); a variant that also
edits other files of the tree (read from the current directory, the
repository root) writes them under OUT without `.cu`, plus `.tree/`, where
bench/variants/ab.sh and bench/template_ab.sh install them for that
variant's build. A variant whose text no longer matches stops with an
AssertionError. A variant timed and kept goes into the templates and
leaves this list; one timed and not kept leaves it too, unless it serves
the tools' tests as an example of its kind (the four below, each timed in
the twentieth session on the H200 against the shipped kernel at 128 / 16
heads, batch 128, 16K: perf.md):

  chain_ilp  the score warpgroups' row-state update tests both row halves
             for "keep" before either updates, so the two halves'
             exponential and compares overlap on the chain between the
             score warpgroups (an edit of the roles template): +0.2% / 0
  pslots4    four P' buffers and row-state slots instead of three (shared
             memory 231648 + 8 x stages bytes of 232448): edits
             wgmma_fp8_parts.cuh and the host's size (gen/resources.c):
             -1.3% / -0.8% alone, but with the half copies (shipped since)
             -1.6% / -1.4% against their -1.9% / -0.8%
  ldsm_all   the role warpgroups also read V^T's fragments by
             `ldmatrix.x4.trans` (wgmma_fp8_parts.cuh's VT_LDMATRIX, the
             seesaw's form since the twentieth session): -1.3% / -2.1%
             alone, -0.1% / -2.4% with the half copies
  combine_lse  the combine kernel (templates/combine.cu, every decode's)
             writes the row's LSE before its sweep instead of after: no
             4-byte spill, but 40 registers instead of 32 at 512 threads
             (3 resident CTAs per SM instead of 4): -1.5% at batch 1
             (64K), +1.5% at batch 8 (16K), 0 at batch 128

Prepared in the twenty-first session after the trace of the half-copy
kernel (perf.md), not yet timed:

  s_copies   the score warpgroups issue the copies instead of the output
             warpgroups (which pace the tile and spent ~780 of its ~2430
             cycles on their half copies): thread 0 of S_w refills the slot
             of its own tile u with u + STAGES once both O have read u,
             polling (mbarrier test_wait) at its tile's steps and while it
             waits for a P slot; its state in smem (at 64 registers S would
             spill 36 bytes). At 128 heads with two query tokens ptxas
             spilled the grid's indices (hoisted out of the item loop): they
             are read where used, by volatile asm
  tma_blocks a half copy's two latent blocks by one 4-D TMA (128 bytes,
             slot, block, page) instead of two 3-D ones (the map in KvMaps'
             `scales`, unused by fp8_per_token)
  q_one_trip Q's RoPE chunks loaded with its latent, before any is
             converted: one memory round trip per work item's Q, not two
"""
import os
import sys


def variant(name, s):
    def rep(old, new):
        nonlocal s
        assert s.count(old) == 1, (name, old)
        s = s.replace(old, new)

    if name == 'chain_ilp':
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
    elif name == 's_copies':
        # The copies move from the output warpgroups (the tile's pace) to the
        # score warpgroups, which wait on O for much of each tile: thread 0
        # of S_w refills the slot of its own tile u with u + STAGES once both
        # O have read u, polling at its tile's steps and while it waits for
        # a P slot.
        half = '''// Half h of KV tile `tile`'s copy (by one thread of O_h): the latent blocks of
// O_h's channels, and the scales (h 0) or the RoPE rows (h 1); the slot's
// `full` completes on both halves' arrivals and bytes.
__device__ __forceinline__ void issue_tile_half(const DecodeParams &p, const KvMaps &maps, const KvRange &r,
                                                unsigned char *ring, unsigned long long *full, int base, int tile,
                                                const TileWhere &w, int h)
{
    static_assert(LAT_BLOCKS % 2 == 0, "whole latent blocks per output warpgroup");
    issue_tma_part<LAT_BLOCKS / 2>(p, maps, r, ring, full, base, tile, w, h * (LAT_BLOCKS / 2), h == 1, h == 0);
}

'''
        rep(half, '')
        rep('''__device__ __forceinline__ void score_item(const DecodeParams &p, const SmemLayout &m, int4 item, int splits,
                                           int base)
{''', half + '''// Both halves of tile t's copy (s_copies).
__device__ __forceinline__ void issue_tile_both(const DecodeParams &p, const KvMaps &maps, const KvRange &r,
                                                unsigned char *ring, unsigned long long *full, int base, int t,
                                                const TileWhere &w)
{
    issue_tile_half(p, maps, r, ring, full, base, t, w, 0);
    issue_tile_half(p, maps, r, ring, full, base, t, w, 1);
}

__device__ __forceinline__ void score_item(const DecodeParams &p, const KvMaps &maps, const SmemLayout &m, int4 item,
                                           int splits, int base)
{''')
        rep('''    const int t_end = range.t_end, tiles = range.tiles;
    named_barrier(BAR_ITEM, THREADS);   // Q is in (O loads it)
''', '''    const int t_end = range.t_end, tiles = range.tiles;
    // (s_copies) this S's copier: its own tiles among the first STAGES once
    // the slots' last tiles (the previous item's) are read, then refills
    const bool copier = tid % 128 == 0;
    // its state in smem, not in the 64 registers of every S thread:
    // the own tile u whose slot is refilled next (with u + STAGES), and where that tile is
    __shared__ int refill_state[2][1 + PIECES];
    auto refill_save = [&](int u) {
        const TileWhere w = locate_tile(range, u + STAGES);
        refill_state[wg][0] = u;
#pragma unroll
        for (int k = 0; k < PIECES; ++k)
            refill_state[wg][1 + k] = w.page[k];
    };
    if (copier) {
        for (int t = wg; t < STAGES && t < tiles; t += 2) {
            const int g = base + t;
            if (g >= STAGES) {
                mbarrier_wait(m.used + g % STAGES, parity_of(g - STAGES, STAGES));
                mbarrier_wait(m.used_hi + g % STAGES, parity_of(g - STAGES, STAGES));
            }
            issue_tile_both(p, maps, range, m.ring, m.full, base, t, locate_tile(range, t));
        }
        refill_save(wg);
    }
    // one refill: blocking (the tile is needed now) or only if both O have read u;
    // false when nothing was issued
    auto refill_one = [&](bool block) {
        const int u = refill_state[wg][0], g = base + u;
        if (u + STAGES >= tiles)
            return false;
        if (block) {
            mbarrier_wait(m.used + g % STAGES, parity_of(g, STAGES));
            mbarrier_wait(m.used_hi + g % STAGES, parity_of(g, STAGES));
        } else if (!mbarrier_test(m.used + g % STAGES, parity_of(g, STAGES)) ||
                   !mbarrier_test(m.used_hi + g % STAGES, parity_of(g, STAGES))) {
            return false;
        }
        TileWhere w;
#pragma unroll
        for (int k = 0; k < PIECES; ++k)
            w.page[k] = refill_state[wg][1 + k];
        issue_tile_both(p, maps, range, m.ring, m.full, base, u + STAGES, w);
        refill_save(u + 2);
        return true;
    };
    auto refill_poll = [&]() {
        while (refill_one(false)) {
        }
    };
    named_barrier(BAR_ITEM, THREADS);   // Q is in (O loads it)
''')
        rep('''        const int t0 = range.t_begin + t * KV_TILE;
        mbarrier_wait(m.full + g % STAGES, parity_of(g, STAGES));
''', '''        const int t0 = range.t_begin + t * KV_TILE;
        if (copier) {
            while (refill_state[wg][0] + STAGES <= t)   // tile t itself: its slot's last tile must be read
                refill_one(true);
            refill_poll();
        }
        mbarrier_wait(m.full + g % STAGES, parity_of(g, STAGES));
''')
        rep('''        wgmma_commit();
        wgmma_wait<0>();
        fence_registers(s);
        float token_scale[16];''', '''        wgmma_commit();
        if (copier)
            refill_poll();
        wgmma_wait<0>();
        fence_registers(s);
        float token_scale[16];''')
        rep('''        if (g >= P_SLOTS)   // both O are done with the slot's last P' and state
            mbarrier_wait(m.pempty + g % P_SLOTS, parity_of(g - P_SLOTS, P_SLOTS));''',
            '''        if (g >= P_SLOTS) {   // both O are done with the slot's last P' and state
            if (copier) {
                while (!mbarrier_try(m.pempty + g % P_SLOTS, parity_of(g - P_SLOTS, P_SLOTS)))
                    refill_poll();
            } else {
                mbarrier_wait(m.pempty + g % P_SLOTS, parity_of(g - P_SLOTS, P_SLOTS));
            }
        }''')
        rep('''        mbarrier_arrive(m.used_hi + g % STAGES);
        mbarrier_arrive(m.pfull + g % P_SLOTS);
    }
}''', '''        mbarrier_arrive(m.used_hi + g % STAGES);
        mbarrier_arrive(m.pfull + g % P_SLOTS);
        if (copier)
            refill_poll();
    }
}''')
        # O no longer copies
        rep('''    // O0's thread 0 and O1's thread 64: warps 8 and 14, on different schedulers (warp % 4)
    const bool half_copier = tid % 128 == 64 * ow;
    TileWhere next{};   // this half copier's next copy: tile STAGES, then one per tile
    if (half_copier) {
        for (int k = 0; k < STAGES; ++k)
            issue_tile_half(p, maps, range, m.ring, m.full, base, k, locate_tile(range, k), ow);
        next = locate_tile(range, STAGES);
    }
''', '')
        rep('''        if (half_copier && t + STAGES < tiles) {   // this half's readers are done: refill it
            mbarrier_wait(my_used + g % STAGES, parity_of(g, STAGES));
            issue_tile_half(p, maps, range, m.ring, m.full, base, t + STAGES, next, ow);
            next = locate_tile(range, t + 1 + STAGES);
        }
''', '')
        rep('''score_item(p, m, item, splits, base); });''', '''score_item(p, maps, m, item, splits, base); });''')
    elif name not in ('pslots4', 'ldsm_all', 'combine_lse', 'tma_blocks', 'q_one_trip'):   # (tree_variant only)
        sys.exit(f'unknown variant {name}: chain_ilp pslots4 ldsm_all combine_lse tma_blocks q_one_trip s_copies')
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
        rep('gen/resources.c', '''        int role_barriers = snapmla_variant_role_warpgroups(v) ? 3 * 24 + v->stages * 8 : 0;''',
            '''        int p_slots = snapmla_variant_role_warpgroups(v) ? 4 : 3;
        int role_barriers = snapmla_variant_role_warpgroups(v) ? p_slots * 24 + v->stages * 8 : 0;''')
        rep('gen/resources.c', '3 * (p_tile + row_state)', 'p_slots * (p_tile + row_state)')
    if name == 'ldsm_all':
        rep('templates/wgmma_fp8_parts.cuh', 'constexpr bool VT_LDMATRIX = !ROLE_WARPGROUPS;',
            'constexpr bool VT_LDMATRIX = true;')
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
    if name == 'tma_blocks':
        # a half copy's two latent blocks by one 4-D TMA (128 bytes, slot,
        # block, page) instead of two 3-D ones; the map goes in KvMaps'
        # `scales`, which fp8_per_token leaves unused (a bulk copy reads them)
        rep('templates/wgmma.cuh', '// `bytes` contiguous bytes (a multiple of 16; both ends 16-byte aligned)',
            r'''__device__ __forceinline__ void tma_load_4d(void *dst, const void *map, int x, int y, int z, int w,
                                            unsigned long long *bar)
{
    asm volatile("cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
                 " [%0], [%1, {%2, %3, %4, %5}], [%6];\n" ::"r"((unsigned)__cvta_generic_to_shared(dst)),
                 "l"((unsigned long long)map), "r"(x), "r"(y), "r"(z), "r"(w), "r"(mbarrier_address(bar))
                 : "memory");
}

// `bytes` contiguous bytes (a multiple of 16; both ends 16-byte aligned)''')
        rep('templates/wgmma_decode.cuh', '''#pragma unroll
        for (int j = 0; j < BLOCKS; ++j) {
            const int blk = first_block + j;
            tma_load_3d(k_lat + blk * LAT_BLOCK_BYTES + k * BOX_ROWS * 128, &maps.latent, blk * 128, slot, page, bar);
        }''', '''        if constexpr (ROLE_WARPGROUPS && FORMAT == FORMAT_FP8_PER_TOKEN && PIECES == 1 && BLOCKS == 2) {
            tma_load_4d(k_lat + first_block * LAT_BLOCK_BYTES, &maps.scales, 0, slot, first_block, page, bar);
        } else {
#pragma unroll
            for (int j = 0; j < BLOCKS; ++j) {
                const int blk = first_block + j;
                tma_load_3d(k_lat + blk * LAT_BLOCK_BYTES + k * BOX_ROWS * 128, &maps.latent, blk * 128, slot, page,
                            bar);
            }
        }''')
        rep('runtime/launch.c', "/* The tensor maps of a TMA variant's latent and RoPE rows",
            '''/* (tma_blocks) fp8_per_token's latent plane as (128 bytes, slot, block,
 * page), two blocks a box: the role kernel's half copy in one TMA */
static snapmla_status encode_latent_blocks(const snapmla_kernel *k, CUtensorMap *map, uint64_t base,
                                           int64_t page_stride, int64_t num_pages, snapmla_error *err)
{
    const snapmla_variant *v = &k->variant;
    const snapmla_driver *d = &k->owner->driver;
    cuuint64_t dims[4] = {128, (cuuint64_t)v->page_size, (cuuint64_t)(v->latent_dim / 128), (cuuint64_t)num_pages};
    cuuint64_t strides[3] = {(cuuint64_t)v->latent_dim, 128, (cuuint64_t)page_stride};
    cuuint32_t box[4] = {128, (cuuint32_t)v->kv_tile, 2, 1};
    cuuint32_t element_strides[4] = {1, 1, 1, 1};
    return SNAPMLA_CU(d, cuTensorMapEncodeTiled(map, CU_TENSOR_MAP_DATA_TYPE_UINT8, 4, (void *)(uintptr_t)base,
                                                dims, strides, box, element_strides,
                                                CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                                                CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                                                CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE),
                      err);
}

/* The tensor maps of a TMA variant's latent and RoPE rows''')
        rep('runtime/launch.c', '''    if (s == SNAPMLA_OK && tile128)
        s = encode_plane(''', '''    if (s == SNAPMLA_OK && v->cache_format == SNAPMLA_FORMAT_FP8_PER_TOKEN && v->threads == 512 &&
        v->page_size >= v->kv_tile)
        s = encode_latent_blocks(k, &maps->scales, cache, page_stride, num_pages, err);
    if (s == SNAPMLA_OK && tile128)
        s = encode_plane(''')
    if name == 's_copies':
        rep('templates/wgmma.cuh', '''// ---- bulk copies (TMA): completion counted in bytes on an mbarrier ----''',
            r'''// Whether the phase with parity `parity` of `bar` has completed, now.
__device__ __forceinline__ bool mbarrier_test(unsigned long long *bar, unsigned parity)
{
    unsigned done;
    asm volatile("{\n.reg .pred p;\nmbarrier.test_wait.parity.shared::cta.b64 p, [%1], %2;\n"
                 "selp.u32 %0, 1, 0, p;\n}\n" : "=r"(done) : "r"(mbarrier_address(bar)), "r"(parity) : "memory");
    return done != 0;
}

// The same, after waiting for it up to about 0.2 us.
__device__ __forceinline__ bool mbarrier_try(unsigned long long *bar, unsigned parity)
{
    unsigned done;
    asm volatile("{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2, 200;\n"
                 "selp.u32 %0, 1, 0, p;\n}\n" : "=r"(done) : "r"(mbarrier_address(bar)), "r"(parity) : "memory");
    return done != 0;
}

// ---- bulk copies (TMA): completion counted in bytes on an mbarrier ----''')
        # ptxas hoisted the grid's indices out of the item loop and, at S's
        # 64 registers with two query tokens, spilled them: read them where
        # they are used (volatile: not hoisted)
        rep('templates/wgmma_decode.cuh', '''        const KvRange r = kv_range(p, blockIdx.z, blockIdx.y);
        const int first = r.t_begin / KV_TILE;
        have = round == 0 && (int)blockIdx.y < r.splits;
        item = make_int4(blockIdx.z, blockIdx.x | blockIdx.y << 16, first, first + r.tiles);''', '''        unsigned bx, by, bz;
        asm volatile("mov.u32 %0, %%ctaid.x;" : "=r"(bx));
        asm volatile("mov.u32 %0, %%ctaid.y;" : "=r"(by));
        asm volatile("mov.u32 %0, %%ctaid.z;" : "=r"(bz));
        const KvRange r = kv_range(p, bz, by);
        const int first = r.t_begin / KV_TILE;
        have = round == 0 && (int)by < r.splits;
        item = make_int4(bz, bx | by << 16, first, first + r.tiles);''')
    if name == 'q_one_trip':
        # Q's RoPE chunks loaded with its latent, before any is converted:
        # one memory round trip per work item's Q instead of two
        rep('templates/wgmma_fp8_parts.cuh', '''    uint4 v[VECS];
    float amax = 0.f;''', '''    uint4 v[VECS];
    constexpr int ROPE_VECS = (ROPE_CHUNKS + 3) / 4;   // this thread's RoPE chunks: part, part + 4, ...
    uint4 rope_in[ROPE_VECS];
#pragma unroll
    for (int j = 0; j < ROPE_VECS; ++j) {
        const int piece = part + 4 * j;
        rope_in[j] = valid && piece < ROPE_CHUNKS ? *(const uint4 *)(src + LATENT + piece * 8) : make_uint4(0, 0, 0, 0);
    }
    float amax = 0.f;''')
        rep('templates/wgmma_fp8_parts.cuh', '''    for (int piece = part; piece < ROPE_CHUNKS; piece += 4) {
        const uint4 x = valid ? *(const uint4 *)(src + LATENT + piece * 8) : make_uint4(0, 0, 0, 0);
        const unsigned w[4] = {x.x, x.y, x.z, x.w};''', '''#pragma unroll
    for (int j = 0; j < ROPE_VECS; ++j) {
        const int piece = part + 4 * j;
        if (piece >= ROPE_CHUNKS)
            break;
        const uint4 x = rope_in[j];
        const unsigned w[4] = {x.x, x.y, x.z, x.w};''')
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
