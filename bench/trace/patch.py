"""Timeline trace of a Hopper decode kernel (device diagnostic).

Edits the template in place so that thread 0 of each warpgroup of CTA 0
stamps clock64() at the steps of its tile loop, for the CTA's first work
item and its tiles < 63, into a __device__ array; the plan kernel of the
same module (and the combine kernel, where one runs) prints the array
once, after the split kernel's 8th launch (a warm one). The decode kernel itself makes no call (a printf
there would serialize its wgmma, ptxas C7510), so its SASS only gains
the stores. bench/trace/run.sh restores the templates; bench/trace/view.py
reads the printed lines. A patch whose text no longer matches the template
stops with an AssertionError.
    python3 bench/trace/patch.py roles|bf16
"""
import sys

GLOBALS = '''namespace snapmla {

// ---- timeline trace (bench/trace): CTA 0's first work item, tiles < 63 ----
__device__ unsigned long long snap_trace[4][64][10];
__device__ unsigned snap_launch, snap_printed;
#define TR(wg_, t_, ev_) do { if (blockIdx.x == 0 && base == 0 && (threadIdx.x % 128) == 0 && (t_) < 63) \\
    snap_trace[wg_][t_][ev_] = clock64(); } while (0)
// (called by the plan and combine kernels only: a call in the decode kernel serializes its wgmma)
__device__ __noinline__ void print_trace()
{
    printf("TRACE tiles %d rows %d\\n", (int)snap_trace[0][63][7], ROWS);
    for (int w = 0; w < 4; ++w)
        for (int t = 0; t < 63; ++t)
            printf("TR %d %d %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu\\n", w, t, snap_trace[w][t][0],
                   snap_trace[w][t][1], snap_trace[w][t][2], snap_trace[w][t][3], snap_trace[w][t][4],
                   snap_trace[w][t][5], snap_trace[w][t][6], snap_trace[w][t][7], snap_trace[w][t][8],
                   snap_trace[w][t][9]);
}
'''

PRINT = '''    wait_prior_grids();   // the split kernel's partials
    {   // (bench/trace) the split kernel's timeline, once, after its 8th launch
        __shared__ int print_now;
        if (tid == 0)
            print_now = row == 0 && b == 0 && snap_launch == 8 && atomicExch(&snap_printed, 1u) == 0;
        __syncthreads();
        if (print_now && tid == 0) {
            print_trace();
        }
    }
'''

# Events. roles, S (warpgroups 0, 1; own tiles t % 2 == wg): 0 top, 1 tile landed
# (full), 2 latent QK retired, 3 RoPE retired, 8 exponentials done, 4 P
# slot free (pempty), 5 previous row state in (sfull), 6 row state out,
# 7 P' out. O (2, 3): 0 top, 1 P' in (pfull), 2 previous products retired,
# 6 (by quarters only) the first quarter issued (a stamp between the whole
# tile's V^T read and its products makes ptxas serialize them, C7519), 3
# all issued, 4 (O0) slot's readers done (used), 7 (O0) copy issued, 5
# end. bf16 (warpgroups 0, 1; own tiles): 0 top, 1 own product of t-2
# retired, 2 the other's P(t-1) and row state in, 3 tile landed, 4 QK
# retired, 5 softmax done, 6 P(t) and state out, 7 own product issued.


PLAN_PRINT = '''    wait_prior_grids();
    if (blockIdx.x == 0 && tid == 0 && snap_launch == 8 && atomicExch(&snap_printed, 1u) == 0) {
        print_trace();
    }
'''


def patch(kind, s, c, plan):
    def rep(text, old, new):
        assert text.count(old) == 1, (kind, old)
        return text.replace(old, new)

    # the plan kernel comes first in the module: it holds the array, and it
    # prints it too (a persistent decode launches no combine kernel)
    plan = rep(plan, 'namespace snapmla {\n', GLOBALS)
    plan = rep(plan, '    wait_prior_grids();\n', PLAN_PRINT)
    c = rep(c, '    wait_prior_grids();   // the split kernel\'s partials\n', PRINT)
    if kind == 'roles':
        s = rep(s, '''        mbarrier_wait(m.full + g % STAGES, parity_of(g, STAGES));
''', '''        TR(wg, t, 0);
        mbarrier_wait(m.full + g % STAGES, parity_of(g, STAGES));
        TR(wg, t, 1);
''')
        s = rep(s, '''        fence_registers(s);
        float token_scale[16];''', '''        fence_registers(s);
        TR(wg, t, 2);
        float token_scale[16];''')
        s = rep(s, '''        add_rope_scores(s, q_rope_desc, k_rope_desc);
''', '''        add_rope_scores(s, q_rope_desc, k_rope_desc);
        TR(wg, t, 3);
''')
        s = rep(s, '''        if (g >= P_SLOTS)   // both O are done with the slot's last P' and state
            mbarrier_wait(m.pempty + g % P_SLOTS, parity_of(g - P_SLOTS, P_SLOTS));
''', '''        fence_registers(s);   // (the exponentials before the stamp)
        TR(wg, t, 8);
        if (g >= P_SLOTS)   // both O are done with the slot's last P' and state
            mbarrier_wait(m.pempty + g % P_SLOTS, parity_of(g - P_SLOTS, P_SLOTS));
        TR(wg, t, 4);
''')
        s = rep(s, '''            const float *st = m.state_all + (g - 1) % P_SLOTS * STATE_FLOATS;
''', '''            const float *st = m.state_all + (g - 1) % P_SLOTS * STATE_FLOATS;
            TR(wg, t, 5);
''')
        s = rep(s, '''        mbarrier_arrive(m.sfull + g % P_SLOTS);
''', '''        mbarrier_arrive(m.sfull + g % P_SLOTS);
        TR(wg, t, 6);
''')
        s = rep(s, '''        mbarrier_arrive(m.pfull + g % P_SLOTS);
    }''', '''        mbarrier_arrive(m.pfull + g % P_SLOTS);
        TR(wg, t, 7);
    }
    if (blockIdx.x == 0 && base == 0 && threadIdx.x == 0)
        snap_trace[0][63][7] = tiles;''')
        s = rep(s, '''        mbarrier_wait(m.pfull + g % P_SLOTS, parity_of(g, P_SLOTS));
''', '''        TR(2 + ow, t, 0);
        mbarrier_wait(m.pfull + g % P_SLOTS, parity_of(g, P_SLOTS));
        TR(2 + ow, t, 1);
''')
        s = rep(s, '''            fence_registers(o[mb]);
        if (t > 0)''', '''            fence_registers(o[mb]);
        TR(2 + ow, t, 2);
        if (t > 0)''')
        s = rep(s, '''                wgmma_commit();
            }
        }
        if (half_copier && t + STAGES < tiles) {''', '''                wgmma_commit();
                if (q == 0)
                    TR(2 + ow, t, 6);
            }
        }
        TR(2 + ow, t, 3);
        if (half_copier && t + STAGES < tiles) {''')
        s = rep(s, '''            mbarrier_wait(my_used + g % STAGES, parity_of(g, STAGES));
            issue_tile_half(''', '''            mbarrier_wait(my_used + g % STAGES, parity_of(g, STAGES));
            TR(2 + ow, t, 4);
            issue_tile_half(''')
        s = rep(s, '''            issue_tile_half(p, maps, range, m.ring, m.full, base, t + STAGES, next_where(), ow);
''', '''            issue_tile_half(p, maps, range, m.ring, m.full, base, t + STAGES, next_where(), ow);
            TR(2 + ow, t, 7);
''')
        s = rep(s, '''        wgmma_wait<1>();   // (not needed here''', '''        TR(2 + ow, t, 5);
        wgmma_wait<1>();   // (not needed here''')
        s = rep(s, '''    __shared__ int item_index;
''', '''    __shared__ int item_index;
    if (threadIdx.x == 0 && blockIdx.x == 0)
        atomicAdd(&snap_launch, 1u);
''')
    elif kind == 'bf16':
        s = rep(s, '''    const int t_end = range.t_end, tiles = range.tiles;
''', '''    const int t_end = range.t_end, tiles = range.tiles;
    if (blockIdx.x == 0 && base == 0 && threadIdx.x == 0) {
        atomicAdd(&snap_launch, 1u);
        snap_trace[0][63][7] = tiles;
    }
''')
        s = rep(s, '''        named_barrier(BAR_STATE + u % 2, 256);     // P(u) and its row state are out
''', '''        named_barrier(BAR_STATE + u % 2, 256);     // P(u) and its row state are out
        TR(wg, u + 1, 2);
''')
        s = rep(s, '''        wait_products();
        if (STEADY || own_pending >= 0)
            mbarrier_arrive(used + slot(own_pending));
        own_pending = -1;
        if (STAGES == 2)
            refill(t);
''', '''        TR(wg, t, 0);
        wait_products();
        if (STEADY || own_pending >= 0)
            mbarrier_arrive(used + slot(own_pending));
        own_pending = -1;
        if (STAGES == 2)
            refill(t);
        TR(wg, t, 1);
''')
        s = rep(s, '''        mbarrier_wait(full + slot(t), phase(t));
        wgmma_fence();''', '''        mbarrier_wait(full + slot(t), phase(t));
        TR(wg, t, 3);
        wgmma_fence();''')
        s = rep(s, '''        fence_registers(s);
        if (!STEADY && t0 + KV_TILE > full_end) {''', '''        fence_registers(s);
        TR(wg, t, 4);
        if (!STEADY && t0 + KV_TILE > full_end) {''')
        s = rep(s, '''        // ---- 5. publish P(t) and tile t's row state; O += P(t) V(t) ----
''', '''        // ---- 5. publish P(t) and tile t's row state; O += P(t) V(t) ----
        TR(wg, t, 5);
''')
        s = rep(s, '''        named_barrier_arrive(BAR_STATE + t % 2, 256);   // to the other warpgroup
''', '''        named_barrier_arrive(BAR_STATE + t % 2, 256);   // to the other warpgroup
        TR(wg, t, 6);
''')
        s = rep(s, '''        own_pending = t;
    };''', '''        own_pending = t;
        TR(wg, t, 7);
    };''')
    else:
        raise SystemExit(f'unknown kernel {kind!r}: roles or bf16')
    return s, c, plan


if __name__ == '__main__':
    kind = sys.argv[1]
    path = {'roles': 'templates/decode_wgmma_fp8_roles.cu', 'bf16': 'templates/decode_wgmma_bf16.cu'}[kind]
    s, c, plan = patch(kind, open(path).read(), open('templates/combine.cu').read(),
                       open('templates/decode_plan.cu').read())
    open(path, 'w').write(s)
    open('templates/combine.cu', 'w').write(c)
    open('templates/decode_plan.cu', 'w').write(plan)
