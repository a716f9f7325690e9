"""Leave-one-stage-out timing probes of the FP8 role-warpgroup kernel.

Each probe edits templates/decode_wgmma_fp8_roles.cu in place so that one
stage is dropped, halved or moved; its numbers are WRONG on purpose, only
its time means something (the difference to `base` is what the stage
costs on the critical path). bench/probe/run.sh restores the template after
each probe. A probe whose text no longer matches the template stops with
an AssertionError instead of timing the unchanged kernel.
    python3 bench/probe/patch.py PROBE
"""
import sys

PATH = 'templates/decode_wgmma_fp8_roles.cu'
PV = 'wgmma_pvt_fp8(o[2 * grp + mm], a[q % 2][mm], desc_plus(p_desc, 2 * kc * P_LBO), 1);'
KEEP_A = ('asm volatile("" :: "r"(a[q % 2][mm][0]), "r"(a[q % 2][mm][1]), "r"(a[q % 2][mm][2]), '
          '"r"(a[q % 2][mm][3]));')


def probe(name, s):
    def rep(old, new):
        nonlocal s
        assert old in s, (name, old)
        s = s.replace(old, new)

    if name == 'base':
        pass
    elif name == 'norope':      # no RoPE product (and no wait for it)
        rep('''        wgmma_fence();
        issue_rope_scores(s, q_rope_desc, k_rope_desc);
        wgmma_commit();
        wgmma_wait<0>();
        fence_registers(s);
''', '')
    elif name == 'halfqk':      # half the latent QK products
        rep('for (int kb = 0; kb < LAT_BLOCKS; ++kb)', 'for (int kb = 0; kb < LAT_BLOCKS / 2; ++kb)')
    elif name == 'nochain':     # S does not wait for the other S's row state
        rep('            mbarrier_wait(m.sfull + (g - 1) % P_SLOTS, parity_of(g - 1, P_SLOTS));\n', '')
    elif name == 'nopv':        # no PV products (the fragments still load)
        rep(PV, KEEP_A)
    elif name == 'halfpv':      # the products of one channel group of two
        rep(PV, 'if (grp == 0) ' + PV + ' else ' + KEEP_A)
    elif name == 'early':       # the slot freed once S has read K, refilled at O's loop head
        rep('''        fence_async_smem();                    // P' is read by wgmma (the async proxy)
        mbarrier_arrive(m.used + g % STAGES);  // this S is done with the slot
''', '''        fence_async_smem();                    // P' is read by wgmma (the async proxy)
''')
        rep('''        fence_registers(s);
        if (t0 + KV_TILE > t_end)''', '''        fence_registers(s);
        mbarrier_arrive(m.used + g % STAGES);
        if (t0 + KV_TILE > t_end)''')
        rep('''            if (q == 2 * GROUPS - 1)
                mbarrier_arrive(m.used + g % STAGES);
''', '')
        rep('''        if (tid == COPIER && t + STAGES < tiles) {   // the slot's readers are done: refill it
            mbarrier_wait(m.used + g % STAGES, parity_of(g, STAGES));
            issue_kv_tile(p, maps, range, m.ring, m.full, base, t + STAGES, next);
            next = locate_tile(range, t + 1 + STAGES);
        }
''', '')
        rep('''        mbarrier_wait(m.pfull + g % P_SLOTS, parity_of(g, P_SLOTS));
''', '''        mbarrier_wait(m.full + g % STAGES, parity_of(g, STAGES));
        mbarrier_arrive(m.used + g % STAGES);
        if (tid == COPIER && t + STAGES < tiles) {
            mbarrier_wait(m.used + g % STAGES, parity_of(g, STAGES));
            issue_kv_tile(p, maps, range, m.ring, m.full, base, t + STAGES, next);
            next = locate_tile(range, t + 1 + STAGES);
        }
        mbarrier_wait(m.pfull + g % P_SLOTS, parity_of(g, P_SLOTS));
''')
    elif name == 'novt':        # V^T fragments loaded for the first two quarters only
        rep('''                wgmma_wait<1>();
                load_vt_quarter(slot, a[q % 2][0], a[q % 2][1], ow, warp, lane, grp, kc);''',
            '''                wgmma_wait<1>();
                if (q == 1)
                    load_vt_quarter(slot, a[q % 2][0], a[q % 2][1], ow, warp, lane, grp, kc);''')
    else:
        sys.exit(f'unknown probe {name}: base norope halfqk nochain nopv halfpv early novt')
    return s


if __name__ == '__main__':
    text = open(PATH).read()
    open(PATH, 'w').write(probe(sys.argv[1], text))
