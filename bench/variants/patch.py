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
  quarters3  prepared in the fifty-fourth session, not yet timed: the
             output warpgroups hold three V^T quarters (24 registers), so
             the split is 72 / 184 (ptxas serializes their products at
             184 with four). q0's products are their own commit group; the
             last quarter is read into q0's registers once those are done,
             and only then is the slot released. With the token scales read
             again after the exponentials (`late`) it was +1.6% at 128
             heads 16K, 0.5% better than `late` alone; expected -0.5 to
             -1.9% on its own (perf.md)
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
    elif name == 'quarters3':
        rep('constexpr int V_QUARTERS_HELD = V_WHOLE_TILE ? 4 : 2;', 'constexpr int V_QUARTERS_HELD = V_WHOLE_TILE ? 3 : 2;')
        rep('constexpr int SCORE_REGS = V_WHOLE_TILE ? 64 : 80, OUTPUT_REGS = V_WHOLE_TILE ? 192 : 176;',
            'constexpr int SCORE_REGS = V_WHOLE_TILE ? 72 : 80, OUTPUT_REGS = V_WHOLE_TILE ? 184 : 176;')
        rep('''#pragma unroll
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
''', '''            // (quarters3) three quarters held: q0's products a commit group
            // of their own, the last quarter read into q0's registers once
            // those are done, and only then the slot released
            static_assert(GROUPS == 2, "four quarters");
#pragma unroll
            for (int q = 0; q < 3; ++q)
                load_vt_quarter(slot, a[q][0], a[q][1], ow, warp, lane, q / 2, q % 2);
            if (PV_AFTER_NEXT_QK && t + 1 < tiles)   // the next tile's QK goes to the tensor cores first
                mbarrier_wait(m.qk_issued + (g + 1) % P_SLOTS, parity_of(g + 1, P_SLOTS));
            wgmma_fence();
#pragma unroll
            for (int mm = 0; mm < 2; ++mm)
                wgmma_pvt_fp8(o[mm], a[0][mm], p_desc, 1);
            wgmma_commit();
#pragma unroll
            for (int q = 1; q < 3; ++q)
#pragma unroll
                for (int mm = 0; mm < 2; ++mm)
                    wgmma_pvt_fp8(o[2 * (q / 2) + mm], a[q][mm], desc_plus(p_desc, 2 * (q % 2) * P_LBO), 1);
            wgmma_commit();
            wgmma_wait<1>();
            load_vt_quarter(slot, a[0][0], a[0][1], ow, warp, lane, 1, 1);
            mbarrier_arrive(my_used + g % STAGES);
            wgmma_fence();
#pragma unroll
            for (int mm = 0; mm < 2; ++mm)
                wgmma_pvt_fp8(o[2 + mm], a[0][mm], desc_plus(p_desc, 2 * P_LBO), 1);
            wgmma_commit();
''')
    elif name == 'maxpack':
        rep('''    float max_scaled[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        t.max[h] = quad_max(max_of_row(s, h));
        // a row that sees nothing in this tile: e = exp2(-inf) = 0
        max_scaled[h] = t.max[h] == -inf_f32() ? 0.f : t.max[h] * scale_log2[h];
    }
''', '''    float max_scaled[2];
    // (maxpack) each row half's max rounded up to BF16 (a bound within 2^-8
    // of it serves as the tile's reference), both in one word: the quad's
    // max takes two dependent shuffles, not four (at 64 registers ptxas
    // runs the two halves' shuffles one after the other)
    unsigned packed = 0;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const unsigned bits = __float_as_uint(max_of_row(s, h));
        const unsigned up = (int)bits < 0 ? bits : bits + 0xffffu;   // toward +inf (-inf stays)
        packed |= h == 0 ? up & 0xffff0000u : up >> 16;
    }
#pragma unroll
    for (int lanes = 1; lanes < 4; lanes *= 2) {
        const unsigned other = __shfl_xor_sync(0xffffffffu, packed, lanes);
        asm("max.bf16x2 %0, %1, %2;" : "=r"(packed) : "r"(packed), "r"(other));
    }
    t.max[0] = __uint_as_float(packed & 0xffff0000u);
    t.max[1] = __uint_as_float(packed << 16);
#pragma unroll
    for (int h = 0; h < 2; ++h)   // a row that sees nothing in this tile: e = exp2(-inf) = 0
        max_scaled[h] = t.max[h] == -inf_f32() ? 0.f : t.max[h] * scale_log2[h];
''')
    elif name == 'flagsearly':
        rep('''        mbarrier_wait(m.pfull + g % P_SLOTS, parity_of(g, P_SLOTS));
        const int4 flags = *(const int4 *)(st + ST_FLAGS);
''', '''        // (flagsearly) the flags read once the row state is out (sfull),
        // so that their load is in before P' is (pfull)
        mbarrier_wait(m.sfull + g % P_SLOTS, parity_of(g, P_SLOTS));
        const int4 flags = *(const int4 *)(st + ST_FLAGS);
        mbarrier_wait(m.pfull + g % P_SLOTS, parity_of(g, P_SLOTS));
''')
    elif name not in ('pslots4', 'ldsm_all', 'combine_lse'):   # (those: tree_variant)
        sys.exit(f'unknown variant {name}: chain_ilp quarters3 maxpack flagsearly pslots4 ldsm_all combine_lse')
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
