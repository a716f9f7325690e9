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
             -1.6% / -1.4% against their -1.9% / -0.8%; against the
             thirty-sixth session's kernel (H100, 128 heads, 16K / 4K):
             +0.2% / +0.4%
  ldsm_all   the role warpgroups also read V^T's fragments by
             `ldmatrix.x4.trans` (wgmma_fp8_parts.cuh's VT_LDMATRIX, the
             seesaw's form since the twentieth session): -1.3% / -2.1%
             alone, -0.1% / -2.4% with the half copies; against the
             thirty-sixth session's kernel (H100, 128 heads, 16K / 4K):
             +1.1% / +1.8% (with pslots4: +0.9% / +1.5%)
  combine_lse  the combine kernel (templates/combine.cu, every decode's)
             writes the row's LSE before its sweep instead of after: no
             4-byte spill, but 40 registers instead of 32 at 512 threads
             (3 resident CTAs per SM instead of 4): -1.5% at batch 1
             (64K), +1.5% at batch 8 (16K), 0 at batch 128

Timed and dropped in the twenty-second session (H100; perf.md, with their
code in git history): s_copies (the score warpgroups issue the copies:
+34% at 128 heads), tma_blocks (one 4-D TMA per half copy: -0.1 to
-0.3%), q_one_trip (Q's RoPE loaded with its latent: -0.2 to +0.1%). In
the twenty-fourth: late_refill (each output warpgroup's copier refills
the slot of tile t-1 at tile t instead of waiting for tile t's readers:
+5.0 to +6.5% at 128 heads, 0 to +0.4% at 64), early_refill (the
refill before the products: +5.2%), copy3 (three copier warps per
output warpgroup: +1.6%) and scale_shfl (the token scales by one load
per lane and shuffles: +5.8%). Kept in the forty-sixth: gangs (the BF16
pair kernel's persistent grid taking its items by round in gangs of a
piece's row blocks: -0.4% at two query tokens, 8K, -0.7% ragged; now in
templates/wgmma_decode.cuh). Kept in the forty-seventh: direct_out (the
role warpgroups' BF16 output from registers, no stage: -0.1% at 128
heads 16K, -1.3% at 4K, 0 at 16 heads; now in write_output's words form).
Timed and dropped in the forty-seventh: rolling (a commit group per V^T
quarter, quarter q of tile t loaded once t-1's quarter q retired, so the
loads run under t-1's last products: +11.6% at 128 heads 16K, +11.9% at
4K, +3.7% at batch 1, 0 at 16 heads; its code is commit e643801's).
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
    elif name == 'bar_used':
        # S's reads of a slot are done before its pfull (which the copier's
        # warpgroup has waited for), so the refill needs only its own
        # warpgroup's V^T reads: a named barrier per output warpgroup and
        # tile parity (the copier's warp syncs, the three others arrive)
        # instead of the `used` mbarriers' arrivals (S and O) and wait.
        rep('''        mbarrier_arrive(m.used + g % STAGES);  // this S is done with the slot: both halves
        mbarrier_arrive(m.used_hi + g % STAGES);
''', '')
        rep('''    QRowLoad q_ld;   // (Q's loads go out ahead of the tiles' copies)
''', '''    // (bar_used) this warpgroup's V^T reads of tile t are done: the copier's
    // warp waits for the other three at a named barrier (6 + 2 ow + t % 2)
    // before it refills the half; two ids, so that no arrival of tile t + 1
    // meets tile t's barrier
    const bool copier_warp = (tid % 128) / 32 == 2 * ow;
    auto half_read = [&](int t) {
        if (!copier_warp && t + STAGES < tiles)
            named_barrier_arrive(6 + 2 * ow + t % 2, 128);
    };
    QRowLoad q_ld;   // (Q's loads go out ahead of the tiles' copies)
''')
        # (the arrivals after the products' issue: between the V^T loads and
        # the wgmma fence, ptxas split the eight products apart, C7519)
        rep('''            mbarrier_arrive(my_used + g % STAGES);
            if (PV_AFTER_NEXT_QK''', '''            if (PV_AFTER_NEXT_QK''')
        rep('''                if (q == 2 * GROUPS - 1)
                    mbarrier_arrive(my_used + g % STAGES);
''', '')
        rep('''        if (half_copier && t + STAGES < tiles) {   // this half's readers are done: refill it
            mbarrier_wait(my_used + g % STAGES, parity_of(g, STAGES));
            issue_tile_half(p, maps, range, m.ring, m.full, base, t + STAGES, next_where(), ow);
            look_up_next(t + 1 + STAGES);
        }''', '''        half_read(t);
        if (copier_warp && t + STAGES < tiles) {   // this half's readers are done: refill it
            named_barrier(6 + 2 * ow + t % 2, 128);
            if (half_copier) {
                issue_tile_half(p, maps, range, m.ring, m.full, base, t + STAGES, next_where(), ow);
                look_up_next(t + 1 + STAGES);
            }
        }''')
    elif name == 'vt_words64':   # (and its tree_variant edits)
        rep('''#pragma unroll
            for (int q = 0; q < 2 * GROUPS; ++q)
                load_vt_quarter(slot, a[q][0], a[q][1], ow, warp, lane, q / 2, q % 2);''',
            '''            static_assert(VT_WORDS64 == V_WHOLE_TILE, "the 8-byte read is the whole tile's");
            load_vt_tile64(slot, a, ow, warp, lane);''')
    elif name not in ('pslots4', 'ldsm_all', 'combine_lse'):   # (those: tree_variant)
        sys.exit(f'unknown variant {name}: chain_ilp bar_used vt_words64 pslots4 ldsm_all combine_lse')
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
        rep('gen/resources.c', '''        int role_barriers = roles ? 4 * 24 + v->stages * 8 + 2 * pieces * 4 : 0;''',
            '''        int p_slots = roles ? 4 : 3;
        int role_barriers = roles ? 4 * 8 * p_slots + v->stages * 8 + 2 * pieces * 4 : 0;''')
        rep('gen/resources.c', '3 * (p_tile + row_state)', 'p_slots * (p_tile + row_state)')
    if name == 'vt_words64':
        parts = 'templates/wgmma_fp8_parts.cuh'
        rep(parts, '''constexpr bool VT_LDMATRIX = !ROLE_WARPGROUPS;
''', '''constexpr bool VT_LDMATRIX = !ROLE_WARPGROUPS;
// (vt_words64) The role warpgroups' whole-tile read (V_WHOLE_TILE there) with
// a thread's 8 channels next to each other: one 8-byte load per token, 16
// loads a tile instead of 32 words.
constexpr bool VT_WORDS64 = ROLE_WARPGROUPS && HALF == 256 && ROWS % 64 == 0 &&
                            (!CAUSAL || Q_LEN == 1 || Q_HEADS % 64 == 0);
''')
        rep(parts, '''    if constexpr (VT_LDMATRIX)
        return wg * HALF + 64 * mb + 16 * warp + 2 * (lane / 4) + h;
    else''', '''    if constexpr (VT_LDMATRIX)
        return wg * HALF + 64 * mb + 16 * warp + 2 * (lane / 4) + h;
    else if constexpr (VT_WORDS64)   // a thread's 8 channels: m-blocks 0-3, rows h 0-1
        return wg * HALF + 64 * warp + 8 * (lane / 4) + 2 * mb + h;
    else''')
        rep(parts, '''// One 16-token step kk of a group: the fragments of channels c0, c0 + 1
// (lo, of m-block 2 grp) and c0 + 2, c0 + 3 (hi, of m-block 2 grp + 1).
__device__ __forceinline__ void load_vt_step(const unsigned char *block, const int (&at)[4], int kk,
                                             unsigned (&lo)[2], unsigned (&hi)[2])
{
    const unsigned w0 = *(const unsigned *)(block + at[0] + kk * 16 * 128);
    const unsigned w1 = *(const unsigned *)(block + at[1] + kk * 16 * 128);
    const unsigned w2 = *(const unsigned *)(block + at[2] + kk * 16 * 128);
    const unsigned w3 = *(const unsigned *)(block + at[3] + kk * 16 * 128);
''', '''// 4 tokens' words of 4 channels c0 .. c0+3 to the channels' fragments: c0,
// c0 + 1 (lo) and c0 + 2, c0 + 3 (hi), each 4 tokens in w0 .. w3's order.
__device__ __forceinline__ void transpose_words(unsigned w0, unsigned w1, unsigned w2, unsigned w3,
                                                unsigned (&lo)[2], unsigned (&hi)[2])
{
    const unsigned lo01 = __byte_perm(w0, w1, 0x5140), lo23 = __byte_perm(w2, w3, 0x5140);
    const unsigned hi01 = __byte_perm(w0, w1, 0x7362), hi23 = __byte_perm(w2, w3, 0x7362);
    lo[0] = __byte_perm(lo01, lo23, 0x5410);
    lo[1] = __byte_perm(lo01, lo23, 0x7632);
    hi[0] = __byte_perm(hi01, hi23, 0x5410);
    hi[1] = __byte_perm(hi01, hi23, 0x7632);
}

// (vt_words64) The whole tile's fragments, a[q][mm] as the quarters' (q = 2
// grp + kc): per 16-token step, 4 tokens' 8-byte loads of this thread's
// channels c0 .. c0 + 7, the low words to m-blocks 0-1, the high to 2-3.
// (a template: the quarters' kernels hold two quarters and never call it)
template <int HELD>
__device__ __forceinline__ void load_vt_tile64(const unsigned char *k_lat, unsigned (&a)[HELD][2][4], int wg,
                                               int warp, int lane)
{
    static_assert(HELD == 4 || !VT_WORDS64, "the whole tile's four quarters");
    if constexpr (HELD == 4) {
    const int c0 = channel_of(wg, warp, lane, 0, 0);
    const unsigned char *block = k_lat + (c0 / 128) * LAT_BLOCK_BYTES;
    int at[2];   // tokens 2 quad + e (and + 8, + 16 kk: the same swizzle phase)
#pragma unroll
    for (int e = 0; e < 2; ++e)
        at[e] = swizzled<128>(2 * (lane % 4) + e, c0 % 128);
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
        const int kc = kk / 2, j = kk % 2;
        uint2 w[4];
#pragma unroll
        for (int e = 0; e < 4; ++e)
            w[e] = *(const uint2 *)(block + at[e & 1] + (kk * 16 + 8 * (e >> 1)) * 128);
        unsigned lo[2], hi[2];
        transpose_words(w[0].x, w[1].x, w[2].x, w[3].x, lo, hi);
        a[kc][0][2 * j] = lo[0], a[kc][0][2 * j + 1] = lo[1];
        a[kc][1][2 * j] = hi[0], a[kc][1][2 * j + 1] = hi[1];
        transpose_words(w[0].y, w[1].y, w[2].y, w[3].y, lo, hi);
        a[2 + kc][0][2 * j] = lo[0], a[2 + kc][0][2 * j + 1] = lo[1];
        a[2 + kc][1][2 * j] = hi[0], a[2 + kc][1][2 * j + 1] = hi[1];
    }
    }
}

// One 16-token step kk of a group: the fragments of channels c0, c0 + 1
// (lo, of m-block 2 grp) and c0 + 2, c0 + 3 (hi, of m-block 2 grp + 1).
__device__ __forceinline__ void load_vt_step(const unsigned char *block, const int (&at)[4], int kk,
                                             unsigned (&lo)[2], unsigned (&hi)[2])
{
    const unsigned w0 = *(const unsigned *)(block + at[0] + kk * 16 * 128);
    const unsigned w1 = *(const unsigned *)(block + at[1] + kk * 16 * 128);
    const unsigned w2 = *(const unsigned *)(block + at[2] + kk * 16 * 128);
    const unsigned w3 = *(const unsigned *)(block + at[3] + kk * 16 * 128);
''')
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
