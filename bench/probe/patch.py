"""Leave-one-stage-out timing probes of the FP8 role-warpgroup kernel.

Each probe edits templates/decode_wgmma_fp8_roles.cu in place so that one
stage is dropped, halved or moved; its numbers are WRONG on purpose, only
its time means something (the difference to `base` is what the stage
costs on the critical path). bench/probe/run.sh restores the template after
each probe. A probe whose text no longer matches the template stops with
an AssertionError instead of timing the unchanged kernel.
    python3 bench/probe/patch.py PROBE[+PROBE...]
"""
import sys

PATH = 'templates/decode_wgmma_fp8_roles.cu'
# The output warpgroups' products in both forms of the V^T read: the whole
# tile (128 and 64 heads, the probes' shape) and by quarters (other head
# counts). Each probe edits both, so it holds whichever form is compiled.
PV_WHOLE = 'wgmma_pvt_fp8(o[2 * (q / 2) + mm], a[q][mm], desc_plus(p_desc, 2 * (q % 2) * P_LBO), 1);'
PV_QUARTERS = 'wgmma_pvt_fp8(o[2 * grp + mm], a[q % 2][mm], desc_plus(p_desc, 2 * kc * P_LBO), 1);'
# An output warpgroup's copier refilling its half of a slot.
REFILL = '            issue_tile_half(p, maps, range, m.ring, m.full, base, t + STAGES, next_where(), ow);\n'


# The S^T form (fifty-third session): a cache whose latent is stored channel-major
# within a tile would hand the output warpgroups V^T as a K-major shared-memory
# operand (no fragment loads) and move the transposition to the score side: S^T =
# K Q^T with K's A fragments from registers (ldmatrix.trans + byte permutes), its
# softmax reducing each query row across the tile's four warps. These probes put
# that work into today's kernel (numbers wrong) to time the form before building it.
QK_LOOP = """        wgmma_fence();
#pragma unroll
        for (int kb = 0; kb < LAT_BLOCKS; ++kb)
#pragma unroll
            for (int ks = 0; ks < 4; ++ks)
                wgmma_qk_fp8(s, desc_plus(q_lat_desc, kb * LAT_BLOCK_BYTES + ks * 32),
                             desc_plus(k_lat_desc, kb * LAT_BLOCK_BYTES + ks * 32), 1);
        wgmma_commit();
"""
KFRAG_QK = """        {   // (kfrag) K's A fragments from registers, 16 ldmatrix.x4.trans and 64 byte permutes a
            // tile, two k-blocks of four steps in flight; B = Q (smem)
            unsigned kf[2][4][4];
#pragma unroll
            for (int kb = 0; kb < LAT_BLOCKS; ++kb) {
                if (kb >= 2)
                    wgmma_wait<1>();   // kb - 2's products have read kf[kb % 2]
#pragma unroll
                for (int ks = 0; ks < 4; ++ks) {
                    const int k = 4 * kb + ks, mat = lane / 8;
                    const int c0 = 256 * (k / 8) + 64 * (2 * ((k / 4) % 2) + mat / 2) + 16 * warp;
                    const unsigned char *row =
                        k_lat + (c0 / 128) * LAT_BLOCK_BYTES + swizzled<128>(8 * (mat % 2) + lane % 8, c0 % 128);
                    unsigned x[4];
                    ldmatrix_x4_trans<true>(x, row + (k % 4) * 16 * 128);
                    kf[kb % 2][ks][0] = __byte_perm(x[0], x[1], 0x6420);
                    kf[kb % 2][ks][1] = __byte_perm(x[0], x[1], 0x7531);
                    kf[kb % 2][ks][2] = __byte_perm(x[2], x[3], 0x6420);
                    kf[kb % 2][ks][3] = __byte_perm(x[2], x[3], 0x7531);
                }
                wgmma_fence();
#pragma unroll
                for (int ks = 0; ks < 4; ++ks)
                    wgmma_pvt_fp8(s, kf[kb % 2][ks], desc_plus(q_lat_desc, kb * LAT_BLOCK_BYTES + ks * 32), 1);
                wgmma_commit();
            }
        }
"""
COLUMN_REDUCE = """        // (colsoft) a query row's reduction across the tile's four warps, as S^T's columns need:
        // three shuffles, the warp's 64 columns through the slot's RoPE rows (read by now), a barrier
        float *const col_scratch = (float *)(m.ring + g % STAGES * STAGE_BYTES + KV_TILE * LAT_ROW);
        auto column_reduce = [&](float *scratch, bool is_max) -> float {
            float v[16];   // this thread's 16 columns over its two rows
#pragma unroll
            for (int j = 0; j < 8; ++j)
#pragma unroll
                for (int e = 0; e < 2; ++e)
                    v[2 * j + e] = is_max ? fmaxf(s[4 * j + e], s[4 * j + 2 + e]) : s[4 * j + e] + s[4 * j + 2 + e];
#pragma unroll
            for (int i = 0; i < 16; ++i)
#pragma unroll
                for (int off = 4; off < 32; off *= 2) {
                    const float o = __shfl_xor_sync(0xffffffffu, v[i], off);
                    v[i] = is_max ? fmaxf(v[i], o) : v[i] + o;
                }
            if (lane < 4)
#pragma unroll
                for (int j = 0; j < 8; ++j)
                    *(float2 *)(scratch + warp * 64 + 8 * j + 2 * lane) = make_float2(v[2 * j], v[2 * j + 1]);
            named_barrier(BAR_OWN + wg, 128);
            float keep = 0.f;
#pragma unroll
            for (int j = 0; j < 8; ++j) {
                float2 x = *(const float2 *)(scratch + 8 * j + 2 * quad);
#pragma unroll
                for (int w = 1; w < 4; ++w) {
                    const float2 y = *(const float2 *)(scratch + w * 64 + 8 * j + 2 * quad);
                    x.x = is_max ? fmaxf(x.x, y.x) : x.x + y.x;
                    x.y = is_max ? fmaxf(x.y, y.y) : x.y + y.y;
                }
                keep += x.x + x.y;
            }
            return keep;
        };
        {
            const float keep = column_reduce(col_scratch, true);
            asm volatile("" : "+f"(s[0]) : "f"(keep));   // the exponentials wait for it
        }
"""
COLUMN_SUM = """        {   // (colsoft) the row sums the same way
            const float keep = column_reduce(col_scratch + 256, false);
            asm volatile("" : "+f"(tile.sum[0]) : "f"(keep));   // the chain waits for it
        }
"""


def pass_on(why, keep):
    """A score warpgroup's tile t % 4 >= 2 reduced to its barriers: it waits
    for a free P' buffer and the other's row state, then arrives on every
    barrier its work would (keep: a line before the arrivals)."""
    return ("        if (t % 4 >= 2) {   // " + why + "\n"
            "            if (g >= P_SLOTS)\n"
            "                mbarrier_wait(m.pempty + g % P_SLOTS, parity_of(g - P_SLOTS, P_SLOTS));\n"
            "            if (t > 0)\n"
            "                mbarrier_wait(m.sfull + (g - 1) % P_SLOTS, parity_of(g - 1, P_SLOTS));\n" + keep +
            "            mbarrier_arrive(m.sfull + g % P_SLOTS);\n"
            "            mbarrier_arrive(m.used + g % STAGES);\n"
            "            mbarrier_arrive(m.used_hi + g % STAGES);\n"
            "            mbarrier_arrive(m.pfull + g % P_SLOTS);\n"
            "            continue;\n"
            "        }\n")


def keep_a(frag):
    """Uses the fragments without a product (so their loads stay)."""
    return 'asm volatile("" :: ' + ', '.join(f'"r"({frag}[{i}])' for i in range(4)) + ');'


def extra_loads(name, n, indent, wide=False):
    """n shared-memory loads a thread of Q, two at a time, each pair's
    address hanging on the last (a test that is false on any real Q), so
    that n / 2 round trips run where they are put (their sum kept). Narrow:
    4 bytes, every lane of a warp at one address (one wavefront a load,
    next to no bandwidth); wide: 16 bytes, conflict-free (four wavefronts
    a load; a 16-byte load takes four passes, broadcast or not)."""
    pad = ' ' * indent
    if wide:
        load = (f"{pad}        unsigned v[4];\n"
                f"{pad}        asm volatile(\"ld.volatile.shared.v4.u32 {{%0, %1, %2, %3}}, [%4];\"\n"
                f"{pad}                     : \"=r\"(v[0]), \"=r\"(v[1]), \"=r\"(v[2]), \"=r\"(v[3])\n"
                f"{pad}                     : \"r\"(smem_address(m.q_lat + ((k * 128 + tid % 128) * 16 + off) % (32 * 1024))));\n"
                f"{pad}        acc ^= v[0] ^ v[1] ^ v[2] ^ v[3];\n")
    else:
        load = (f"{pad}        unsigned v;\n"
                f"{pad}        asm volatile(\"ld.volatile.shared.u32 %0, [%1];\"\n"
                f"{pad}                     : \"=r\"(v) : \"r\"(smem_address(m.q_lat + ((k * 128 + warp * 32) * 16 + off) % (32 * 1024))));\n"
                f"{pad}        acc ^= v;\n")
    return (f"{pad}{{   // ({name}) {n} loads, {n // 2} round trips\n"
            f"{pad}    unsigned acc = 0, off = 0;\n"
            "#pragma unroll\n"
            f"{pad}    for (int k = 0; k < {n}; ++k) {{\n" + load +
            f"{pad}        if (k % 2 == 1)\n"
            f"{pad}            off = acc == 0x9e3779b9u ? 16 : 0;\n"
            f"{pad}    }}\n"
            f"{pad}    asm volatile(\"\" :: \"r\"(acc));\n"
            f"{pad}}}\n")


def probe(name, s):
    def rep(old, new):
        nonlocal s
        assert old in s, (name, old)
        s = s.replace(old, new)

    if name == 'base':
        pass
    elif name == 'norope':      # no RoPE product (and no wait for it)
        rep('''        add_rope_scores(s, q_rope_desc, k_rope_desc);
''', '')
    elif name == 'halfqk':      # half the latent QK products
        rep('for (int kb = 0; kb < LAT_BLOCKS; ++kb)', 'for (int kb = 0; kb < LAT_BLOCKS / 2; ++kb)')
    elif name == 'nochain':     # S does not wait for the other S's row state
        rep('            mbarrier_wait(m.sfull + (g - 1) % P_SLOTS, parity_of(g - 1, P_SLOTS));\n', '')
    elif name == 'nopv':        # no PV products (the fragments still load)
        rep(PV_WHOLE, keep_a('a[q][mm]'))
        rep(PV_QUARTERS, keep_a('a[q % 2][mm]'))
    elif name == 'halfpv':      # the products of one channel group of two
        rep(PV_WHOLE, 'if (q / 2 == 0) ' + PV_WHOLE + ' else ' + keep_a('a[q][mm]'))
        rep(PV_QUARTERS, 'if (grp == 0) ' + PV_QUARTERS + ' else ' + keep_a('a[q % 2][mm]'))
    elif name == 'novt':        # V^T fragments loaded for the first two quarters only
        rep('''            for (int q = 0; q < 2 * GROUPS; ++q)
                load_vt_quarter(slot, a[q][0], a[q][1], ow, warp, lane, q / 2, q % 2);''',
            '''            for (int q = 0; q < 2; ++q)
                load_vt_quarter(slot, a[q][0], a[q][1], ow, warp, lane, q / 2, q % 2);''')
        rep('''                    wgmma_wait<1>();
                    load_vt_quarter(slot, a[q % 2][0], a[q % 2][1], ow, warp, lane, grp, kc);''',
            '''                    wgmma_wait<1>();
                    if (q == 1)
                        load_vt_quarter(slot, a[q % 2][0], a[q % 2][1], ow, warp, lane, grp, kc);''')
    elif name in ('nocopy', 'nocopy_noused'):   # no refill: the copier only arrives on `full` (stale slots)
        rep(REFILL, '            mbarrier_arrive(m.full + (base + t + STAGES) % STAGES);\n')
        if name == 'nocopy_noused':   # nor its wait for the slot's readers
            rep('            mbarrier_wait(my_used + g % STAGES, parity_of(g, STAGES));\n', '')
    elif name == 'onewait':   # the RoPE product in the latent QK's commit group: one wait (the
        # code a cache of RoPE divided by the token scale would run; here RoPE is scaled too)
        rep('''                             desc_plus(k_lat_desc, kb * LAT_BLOCK_BYTES + ks * 32), 1);
        wgmma_commit();''', '''                             desc_plus(k_lat_desc, kb * LAT_BLOCK_BYTES + ks * 32), 1);
        issue_rope_scores(s, q_rope_desc, k_rope_desc);
        wgmma_commit();''')
        rep('''        add_rope_scores(s, q_rope_desc, k_rope_desc);
''', '')
    elif name == 'qkregs':   # the latent QK's A operand from registers (fake Q fragments): K the only smem read
        rep('''    for (int t = wg; t < tiles; t += 2) {''', '''    unsigned qa_fake[4];   // (qkregs) loaded once an item, as Q's fragments would be
#pragma unroll
    for (int i = 0; i < 4; ++i)
        qa_fake[i] = ((const unsigned *)m.q_lat)[(tid % 128) * 4 + i];
    for (int t = wg; t < tiles; t += 2) {''')
        rep('wgmma_qk_fp8(s, desc_plus(q_lat_desc, kb * LAT_BLOCK_BYTES + ks * 32),',
            'wgmma_pvt_fp8(s, qa_fake,')
    elif name == 'pairtiles':   # S runs the QK products of half its tiles (t % 4 < 2): the other
        # CTA of a 64-row pair would score the rest (its P' arrives here)
        rep('        for (int kb = 0; kb < LAT_BLOCKS; ++kb)',
            '        for (int kb = 0; kb < (t % 4 < 2 ? LAT_BLOCKS : 0); ++kb)')
        rep('''        add_rope_scores(s, q_rope_desc, k_rope_desc);
''', '''        if (t % 4 < 2)
            add_rope_scores(s, q_rope_desc, k_rope_desc);
''')
    elif name == 'pairsoft':   # on the tiles t % 4 >= 2, S only passes the barriers on: the other CTA
        # of a 64-row pair would score them, softmax and P' too (the row state's hop there costs nothing here)
        at = '        // ---- S = Q K^T: latent (e4m3) times the K scale, then RoPE (BF16) ----\n'
        rep(at, pass_on('(pairsoft) no products, exponentials, row state or P\'', '') + at)
    elif name == 'softhalf':   # on the tiles t % 4 >= 2, S runs its products, then only passes the
        # barriers on: what its exponentials, row state and P' cost beside the products
        at = '        // ---- off the chain: exponentials against the tile\'s own row max ----\n'
        rep(at, pass_on('(softhalf) no exponentials, row state or P\'',
                        '            asm volatile("" :: "f"(s[0]), "f"(s[31]));\n') + at)
    elif name == 'nopstore':   # P' is not written (O reads the slot's stale P')
        rep('''        store_p_scaled(m.p_all + g % P_SLOTS * P_BYTES, s, p_factor, warp, lane);
''', '')
    elif name == 'paircopy':   # on the tiles pairtiles leaves out, only O0's half is copied
        rep(REFILL, '''            if (ow == 1 && (t + STAGES) % 4 >= 2)
                mbarrier_arrive(m.full + (base + t + STAGES) % STAGES);
            else
''' + '    ' + REFILL)
    elif name in ('smemload8', 'smemload16', 'smembc8', 'smembc16'):
        # smemloadN: S reads N x 16 bytes a thread of Q more a tile (N x 16 wavefronts), where it would
        # wait for a free P' buffer: if shared memory's bandwidth binds the tile, the tile grows by about
        # the wavefronts added. smembcN: the same round trips with narrow loads, the control for their latency
        at = "        if (g >= P_SLOTS)   // both O are done with the slot's last P' and state\n"
        rep(at, extra_loads(name, int(name.lstrip('smemloadbc')), 8, wide=name.startswith('smemload')) + at)
    elif name == 'lat8s2':   # smembc8's round trips at the end of S's tile, after its P' is out
        rep('''        mbarrier_arrive(m.pfull + g % P_SLOTS);
    }
''', '''        mbarrier_arrive(m.pfull + g % P_SLOTS);
''' + extra_loads(name, 8, 8) + '''    }
''')
    elif name in ('lat8o', 'lat8opre'):   # the same round trips on the output warpgroups' path:
        # lat8o after their products' issue (before the copier), lat8opre before their V^T read
        if name == 'lat8o':
            rep('''                    wgmma_pvt_fp8(o[2 * (q / 2) + mm], a[q][mm], desc_plus(p_desc, 2 * (q % 2) * P_LBO), 1);
            wgmma_commit();
''', '''                    wgmma_pvt_fp8(o[2 * (q / 2) + mm], a[q][mm], desc_plus(p_desc, 2 * (q % 2) * P_LBO), 1);
            wgmma_commit();
''' + extra_loads(name, 8, 12))
        else:
            rep('''        if constexpr (V_WHOLE_TILE) {
#pragma unroll
            for (int q = 0; q < 2 * GROUPS; ++q)
                load_vt_quarter(''', '''        if constexpr (V_WHOLE_TILE) {
''' + extra_loads(name, 8, 12) + '''#pragma unroll
            for (int q = 0; q < 2 * GROUPS; ++q)
                load_vt_quarter(''')
    elif name == 'l2page':   # every refill copies one of the item's first four tiles again (its slot's first
        # tile): the same issue, bytes and shared-memory writes, but read from L2, never from HBM
        rep(REFILL, REFILL.replace('next_where()', 'locate_tile(range, (t + STAGES) % STAGES)'))
    elif name == 'nofence':   # S's proxy fence after its P' stores dropped (O may read stale P')
        rep('''        fence_async_smem();                    // P' is read by wgmma (the async proxy)
''', '')
    elif name == 'pvsmem':   # O's products read V^T from the slot (A from smem, no fragment loads);
        # O waits for them before it frees the slot
        rep("""#pragma unroll
            for (int q = 0; q < 2 * GROUPS; ++q)
                load_vt_quarter(slot, a[q][0], a[q][1], ow, warp, lane, q / 2, q % 2);
            mbarrier_arrive(my_used + g % STAGES);
""", '')
        rep(PV_WHOLE, 'wgmma_qk_fp8(o[2 * (q / 2) + mm], desc_plus(latent_desc(slot), (2 * ow + q / 2) * '
            'LAT_BLOCK_BYTES + (2 * mm + q % 2) * 32), desc_plus(p_desc, 2 * (q % 2) * P_LBO), 1);')
        rep("""            wgmma_commit();
        } else {""", """            wgmma_commit();
            wgmma_wait<0>();   // (pvsmem) the products read V^T in the slot
#pragma unroll
            for (int mb = 0; mb < MBLOCKS; ++mb)
                fence_registers(o[mb]);
            mbarrier_arrive(my_used + g % STAGES);
        } else {""")
    elif name.startswith('regs') and name[4:].isdigit():   # regsN: S at N registers, O at 256 - N (regs96:
        # O at 160, enough when it holds no V^T fragments, under pvsmem)
        n = int(name[4:])
        rep('SCORE_REGS = V_WHOLE_TILE ? 64 : 80, OUTPUT_REGS = V_WHOLE_TILE ? 192 : 176;',
            f'SCORE_REGS = V_WHOLE_TILE ? {n} : 80, OUTPUT_REGS = V_WHOLE_TILE ? {256 - n} : 176;')
    elif name == 'kfrag':   # S^T's QK: K's A fragments loaded and transposed by S (needs regs96)
        rep(QK_LOOP, KFRAG_QK)
    elif name == 'colsoft':   # S^T's softmax: each query row's max and sum across four warps
        rep("""        // ---- off the chain: exponentials against the tile's own row max ----
        const TileRowStats tile = tile_exponentials(s, token_scale, row_scale_log2);
""", COLUMN_REDUCE + """        // ---- off the chain: exponentials against the tile's own row max ----
        TileRowStats tile = tile_exponentials(s, token_scale, row_scale_log2);
""" + COLUMN_SUM)
        # and P's factors back: in S^T one thread a query row runs the chain, the 16 columns of every
        # thread then read their factors (a third barrier)
        rep("""        const bool rescale = __any_sync(0xffffffffu, rescale_rows);
""", """        {   // (colsoft) P's factors out by one thread a row, in by every thread's 16 columns
            if (tid % 128 < 64)
                col_scratch[512 + tid % 128] = p_factor[0];
            named_barrier(BAR_OWN + wg, 128);
            float keep = 0.f;
#pragma unroll
            for (int j = 0; j < 8; ++j) {
                const float2 x = *(const float2 *)(col_scratch + 512 + 8 * j + 2 * quad);
                keep += x.x + x.y;
            }
            asm volatile("" : "+f"(p_factor[0]) : "f"(keep));
        }
        const bool rescale = __any_sync(0xffffffffu, rescale_rows);
""")
    else:
        sys.exit(f'unknown probe {name}: base norope halfqk nochain nopv halfpv novt nocopy nocopy_noused onewait '
                 'qkregs pairtiles pairsoft softhalf nopstore paircopy smemload8 smemload16 smembc8 smembc16 lat8s2 lat8o lat8opre nofence l2page '
                 'pvsmem regsN (N: the score registers, e.g. regs96) kfrag colsoft')
    return s


if __name__ == '__main__':
    text = open(PATH).read()
    for part in sys.argv[1].split('+'):   # probes joined by '+' apply in order: nocopy+halfpv
        text = probe(part, text)
    open(PATH, 'w').write(text)
