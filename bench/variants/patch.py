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
  polyexp    prepared in the fifty-fifth session, not yet timed: the
             score warpgroups' exponentials (row_exponentials in
             wgmma_decode.cuh) compute every other one as 2^round(x)
             times a cubic in the remainder on the FMA pipe instead of
             MUFU.EX2 (relative error 1.8e-4; 0 below 2^-125), in case
             their step (~1300 traced cycles) waits on the MUFU pipe:
             expected -1 to +1% at 128 heads, 16K; revised from its SASS
             (fifty-sixth session, perf.md: the loop's 772 instructions
             become 920, and the base's exponentials are not held by the
             MUFU): +1 to +4%
  lateref    prepared in the fifty-sixth session, not yet timed: the
             score warpgroups' exponentials against a reference known
             before the tile's row max (the max their own row state held
             after their previous tile, raised to 64 below each thread's
             own largest score; the quad's references meet after the
             exponentials, each thread's e scaled to the largest), so the
             row max's four shuffle round trips leave the path from the
             scores to the exponentials; the products are the same up to
             rounding (a float model of the row state agrees with the
             exact softmax, jumps of 900 in log2 units included; perf.md).
             Expected -0.5 to -2% at 128 heads, 16K
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
Timed and dropped in the forty-eighth (code in commit ebe9591):
bar_used (the refill waits on a named barrier of its own output
warpgroup's warps instead of the `used` mbarriers: +0.5% at 128 heads
16K, +0.3% at 4K) and vt_words64 (the whole-tile V^T read by 8-byte
loads of a thread's 8 neighbouring channels, 16 loads a tile instead of
32: -0.1% / +0.1%, GPU suite 98/98).
Timed and dropped in the fiftieth (code in commit 3031113): ostagger
(O1 reads V^T(t) only once O0 has issued its products of t, an
`o0_issued` mbarrier per P slot: +0.9% at 128 heads 16K, +1.0% at 4K,
0 at 16 heads).
Timed and dropped in the fifty-first (code in commit a4c813f): qkchunk4,
qkchunk2 and qkroll (the latent QK submitted in four or two pieces, each
waited for before the next, or a commit group per latent block with two
in flight, so that the output warpgroups' products reach the tensor
pipe behind one piece: -0.2%, -0.5% and +0.1% at 128 heads 16K, 0 to
+0.3% elsewhere); pslots2 (two P' buffers and row-state slots, so that
the score warpgroups run at most two tiles ahead and fewer ring slots
hold scored tiles: +1.8% at 128 heads 16K, +2.4% at 4K, 0 at 16 heads;
code in commit 0f26577).
Timed and dropped in the fifty-second (code: bench/variants/early_qk.diff
at commit 5e4562a, `git apply` it; H200): chain (the score warpgroups'
row-state chain and P''s codes before the `pempty` wait, row states in
a slot per ring stage: +0.9% at 128 heads 16K and 4K, 0 at 16 heads)
and eq (chain, and the next own tile's QK issued before the `pempty`
wait when its copies are in: +3.4% / +3.8%, +4.0% with two query
tokens).
Timed and dropped in the fifty-fourth (H100; the code is described in
perf.md, not kept): late (the score warpgroups read the token scales
again after the exponentials instead of holding them through the RoPE
product and the row maxima, freeing 16 registers there: +2.1% at 128
heads 16K, -0.4% at 16 heads).
Timed and dropped in the fifty-fifth (H100; code in commit 40e3d76 but
for tmapfetch's): quarters3 (the shipped score loop at 72 registers; the output
warpgroups at 184 hold three V^T quarters, q0's products their own
commit group, the last quarter read into q0's registers once those are
done, then the slot released: +0.9% at 128 heads 16K, +2.5% at 4K),
maxpack (each row half's tile max rounded up to BF16 and both packed in
one word, so the quad's max takes two dependent shuffles, not four:
+0.3% / +0.5%), flagsearly (the output warpgroups read the rescale
flags after `sfull`, before waiting for `pfull`: +0.5% / +0.7%) and
tmapfetch (each half copier prefetches its tensor maps at the item's
start: +0.1% / +0.1%; code in commit bbe18f7).
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
    elif name == 'lateref':
        rep("""    float max[2], sum[2], p_max[2];
};""", """    float max[2], sum[2], p_max[2];
    float ref[2], fix[2];   // (lateref) the row's reference, scaled (e = exp2(s c - ref)); this thread's e to it
};""")
        rep("""__device__ __forceinline__ TileRowStats tile_exponentials(float (&s)[32], const float (&token_scale)[16],
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
}""", """// (lateref) The reference is known before the tile's row max: the max this
// warpgroup's row state held after its previous own tile (earlier_max; -inf
// at an item's first two tiles), raised to 64 below this thread's own largest
// score where that is higher (so no e passes 2^64). The quad's max of those
// references comes after, with the row maxima and sums; each thread's e are
// brought to it by fix <= 1.
__device__ __forceinline__ TileRowStats tile_exponentials(float (&s)[32], const float (&token_scale)[16],
                                                          const float (&scale_log2)[2], const float (&earlier_max)[2])
{
    TileRowStats t;
    float own_max[2], ref[2], offset[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        own_max[h] = max_of_row(s, h);
        ref[h] = fmaxf(earlier_max[h] * scale_log2[h], fmaf(own_max[h], scale_log2[h], -64.f));
        offset[h] = ref[h] == -inf_f32() ? 0.f : ref[h];   // (no score here or before: e = exp2(-inf) = 0)
    }
    float part_sum[4];
    exponentials<true>(s, scale_log2, offset, token_scale, part_sum);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        t.max[h] = quad_max(own_max[h]);
        t.ref[h] = quad_max(ref[h]);
        t.fix[h] = ref[h] == -inf_f32() ? 0.f : fast_exp2(ref[h] - t.ref[h]);
        t.sum[h] = quad_sum((part_sum[2 * h] + part_sum[2 * h + 1]) * t.fix[h]);
        t.p_max[h] = quad_max(fmaxf(max_of_row(s, h), 0.f) * t.fix[h]);
    }
    return t;
}""")
        rep("""    const float beta_keep = t.max[h] == -inf_f32() ? 0.f : fast_exp2((t.max[h] - row_max) * scale_log2);
    const float mx_keep = beta_keep * t.p_max[h] * row_r;
    if (beta_keep <= BETA_MAX && """, """    // (lateref) e is against t.ref, not the tile's max: beta from it, the max's test apart
    const float beta_keep = t.max[h] == -inf_f32() ? 0.f : fast_exp2(t.ref[h] - row_max * scale_log2);
    const float mx_keep = beta_keep * t.p_max[h] * row_r;
    static_assert(BETA_MAX == 256.f, "max_near's 8 is log2 BETA_MAX");
    const bool max_near = t.max[h] == -inf_f32() || (t.max[h] - row_max) * scale_log2 <= 8.f;
    if (max_near && """)
        rep('    const float beta = t.max[h] == -inf_f32() ? 0.f : fast_exp2((t.max[h] - m_new) * scale_log2);',
            '    const float beta = t.max[h] == -inf_f32() ? 0.f : fast_exp2(t.ref[h] - m_new * scale_log2);')
        rep("""        const TileRowStats tile = tile_exponentials(s, token_scale, row_scale_log2);
""", """        // (lateref) this warpgroup's own row state after tile g - 2 is still in its slot: the other
        // score warpgroup writes g + 1's there only after this one's sfull(g)
        float earlier_max[2] = {-inf_f32(), -inf_f32()};
        if (t >= 2) {
            const float *st_own = m.state_all + (g - 2) % P_SLOTS * STATE_FLOATS;
#pragma unroll
            for (int h = 0; h < 2; ++h)
                earlier_max[h] = st_own[ST_MAX + my_row[h]];
        }
        const TileRowStats tile = tile_exponentials(s, token_scale, row_scale_log2, earlier_max);
""")
        rep("""        store_p_scaled(m.p_all + g % P_SLOTS * P_BYTES, s, p_factor, warp, lane);
""", """        const float p_scale[2] = {p_factor[0] * tile.fix[0], p_factor[1] * tile.fix[1]};   // (lateref)
        store_p_scaled(m.p_all + g % P_SLOTS * P_BYTES, s, p_scale, warp, lane);
""")
    elif name not in ('pslots4', 'ldsm_all', 'combine_lse', 'polyexp'):   # (those: tree_variant)
        sys.exit(f'unknown variant {name}: chain_ilp pslots4 ldsm_all combine_lse polyexp lateref')
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
    if name == 'polyexp':
        rep('templates/wgmma_decode.cuh', '''template <typename Times>
__device__ __forceinline__ void row_exponentials(float (&s)[32], const float (&scale_log2)[2],
                                                 const float (&offset)[2], float (&part_sum)[4], Times times)
{''', '''// (polyexp) 2^x on the FMA pipe, for x <= 0: 2^j 2^f with j = round(x) and
// f in [-0.5, 0.5], 2^f a cubic (relative error 1.8e-4, under e4m3's
// step by 2^8); below 2^-125, 0
__device__ __forceinline__ float poly_exp2(float x)
{
    const float magic = 12582912.f;   // 1.5 x 2^23: x + magic holds round(x) in its low bits
    const float xc = fmaxf(x, -125.f);
    const float t = __fadd_rn(xc, magic);
    const float f = __fsub_rn(xc, __fsub_rn(t, magic));
    const float p = fmaf(fmaf(fmaf(0.0546022821f, f, 0.2419247998f), f, 0.6933166125f), f, 1.f);
    const float r = __int_as_float(__float_as_int(p) + (__float_as_int(t) << 23));
    return x < -125.f ? 0.f : r;
}

template <typename Times>
__device__ __forceinline__ void row_exponentials(float (&s)[32], const float (&scale_log2)[2],
                                                 const float (&offset)[2], float (&part_sum)[4], Times times)
{''')
        rep('templates/wgmma_decode.cuh', '''        const float e = fast_exp2(fmaf(s[i], scale_log2[h], -offset[h]));''',
            '''        const float x = fmaf(s[i], scale_log2[h], -offset[h]);
        const float e = i % 2 ? poly_exp2(x) : fast_exp2(x);   // (polyexp) half of them off the MUFU''')
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
