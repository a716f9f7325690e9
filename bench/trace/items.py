"""Work-item timeline of the Hopper decode kernels (device diagnostic).

Edits a copy of the templates (the tree given, in place) so that thread 0
of every CTA stamps %globaltimer (ns) and clock64() at the kernel's entry
(after griddepcontrol.wait, where it also keeps the CTA's SM, %smid) and
exit, and at each of its first 8 work items' top and end; the BF16
seesaw and pair templates also stamp the end of the item's prologue (Q
and the first tiles in), the start of its epilogue (the last product
retired) and of its output stores. The plan
kernel of the same module prints the stamps after the split kernel's 8th
launch (the combine kernel where the launch has no plan: a split grid),
as bench/trace/patch.py does. clock64 over globaltimer gives each SM's
clock while it ran. The two-warpgroup kernels (both seesaws and the
pair schedule) share decode_wgmma_kernel.cu's entry; the FP8 role
warpgroups have their own, stamped by the first output thread (O0's
thread 0): an item's prologue ends when its first P' is in, its epilogue
starts when its last products retire, and it ends when its output is out
(the score warpgroups run up to three tiles ahead).
bench/trace/items.sh runs it on the GPU and bench/trace/view_items.py
reads the lines. A stamp takes the CTA's number through an opaque move,
so that ptxas does not keep the stamps' addresses live across the tile
loops: then no stamped kernel spills (`snapmla inspect` of the stamped
build; the pair kernel at two query tokens spilled 4 bytes before).
    python3 bench/trace/items.py TREE
"""
import importlib.util
import os
import sys

GLOBALS = r'''namespace snapmla {

// ---- work-item timeline (bench/trace/items.py) ----
#define IT_CTAS 264
#define IT_THREAD 0   // the stamping thread (the role warpgroups: O0's first)
#define IT_ITEMS 8
// per CTA and item: globaltimer, clock64 at top, prologue done, epilogue start, end, stores start
__device__ unsigned long long snap_it[IT_CTAS][IT_ITEMS][10];
__device__ unsigned long long snap_ke[IT_CTAS][4];   // globaltimer at entry, exit; clock64 at entry, exit
__device__ unsigned snap_sm[IT_CTAS];   // the SM the CTA ran on (%smid)
__device__ int snap_itn[IT_CTAS], snap_itt[IT_CTAS][IT_ITEMS], snap_grid;
__device__ unsigned snap_launch, snap_printed;
__device__ __forceinline__ unsigned long long global_ns()
{
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}
#define IT_CTA ((int)(blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z)))
// (the CTA's number opaque to ptxas: else it keeps the stamps' addresses
// live across the tile loops, and the role warpgroups' output side spills)
__device__ __forceinline__ void it_stamp(int ev)
{
    int c = IT_CTA;
    asm volatile("" : "+r"(c));
    if (c < IT_CTAS && snap_itn[c] < IT_ITEMS) {
        unsigned long long *e = snap_it[c][snap_itn[c]] + 2 * ev;
        e[0] = global_ns();
        e[1] = clock64();
    }
}
#define IT_STAMP(ev_) do { if (threadIdx.x == IT_THREAD) it_stamp(ev_); } while (0)
#define IT_ENTER() do { if (threadIdx.x == IT_THREAD && IT_CTA < IT_CTAS) { snap_itn[IT_CTA] = 0; \
    snap_ke[IT_CTA][0] = global_ns(); snap_ke[IT_CTA][2] = clock64(); \
    asm volatile("mov.u32 %0, %%smid;" : "=r"(snap_sm[IT_CTA])); } } while (0)
#define IT_ITEM_DONE(item_) do { IT_STAMP(3); if (threadIdx.x == IT_THREAD && IT_CTA < IT_CTAS) { \
    if (snap_itn[IT_CTA] < IT_ITEMS) snap_itt[IT_CTA][snap_itn[IT_CTA]] = (item_).w - (item_).z; \
    snap_itn[IT_CTA] += 1; } } while (0)
#define IT_EXIT() do { if (threadIdx.x == IT_THREAD && IT_CTA < IT_CTAS) { snap_ke[IT_CTA][1] = global_ns(); \
    snap_ke[IT_CTA][3] = clock64(); if (IT_CTA == 0) { snap_grid = gridDim.x * gridDim.y * gridDim.z; \
    atomicAdd(&snap_launch, 1u); } } } while (0)
// (called by the plan and combine kernels only: a call in the decode kernel serializes its wgmma)
__device__ __noinline__ void print_trace()
{
    printf("ITRACE grid %d\n", snap_grid);
    for (int c = 0; c < IT_CTAS && c < snap_grid; ++c) {
        printf("KE %d %llu %llu %llu %llu %d %u\n", c, snap_ke[c][0], snap_ke[c][1], snap_ke[c][2], snap_ke[c][3],
               snap_itn[c], snap_sm[c]);
        for (int i = 0; i < snap_itn[c] && i < IT_ITEMS; ++i) {
            const unsigned long long *e = snap_it[c][i];
            printf("IT %d %d %d %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu\n", c, i, snap_itt[c][i], e[0], e[1],
                   e[2], e[3], e[4], e[5], e[6], e[7], e[8], e[9]);
        }
    }
}
'''

# decode_wgmma_kernel.cu: the CTA's entry and exit around run_items; each
# item's top and end in both of its loops (for_each_item, and the pair
# schedule's for_each_item_ahead).
ENTRY_EDITS = [
    ('    run_items(p, maps, m, item_index);\n',
     '    IT_ENTER();\n    run_items(p, maps, m, item_index);\n    IT_EXIT();\n'),
    ('{ decode_item(p, maps, m, item, splits, base); }',
     '{ IT_STAMP(0); decode_item(p, maps, m, item, splits, base); IT_ITEM_DONE(item); }'),
    ('            decode_item(p, maps, m, item, splits, base, prefetched, pop);\n',
     '            IT_STAMP(0);\n            decode_item(p, maps, m, item, splits, base, prefetched, pop);\n'
     '            IT_ITEM_DONE(item);\n'),
]

# The role warpgroups' entry: its output side's loop stamped (by O0's
# first thread, IT_THREAD below), as the output side runs every tile and
# writes the output.
ROLES_ENTRY = '''        registers_take<OUTPUT_REGS>();
        for_each_item(p, item_index,
                      [&](int4 item, int splits, int base) { output_item(p, maps, m, item, splits, base); });
'''

ROLES_ENTRY_STAMPED = '''        registers_take<OUTPUT_REGS>();
        IT_ENTER();
        for_each_item(p, item_index, [&](int4 item, int splits, int base) {
            IT_STAMP(0); output_item(p, maps, m, item, splits, base); IT_ITEM_DONE(item); });
        IT_EXIT();
'''

ROLES_EDITS = [
    (ROLES_ENTRY, ROLES_ENTRY_STAMPED),
    ('namespace snapmla {\n', '#undef IT_THREAD\n#define IT_THREAD O_FIRST\nnamespace snapmla {\n'),
    # the first P' in (tile 0's pfull, waited for once more before the
    # loop, so that the loop's code stays as shipped): the prologue's end
    ('    for (int t = 0; t < tiles; ++t) {\n',
     '    if (tiles > 0) {\n        mbarrier_wait(m.pfull + base % P_SLOTS, parity_of(base, P_SLOTS));\n'
     '        IT_STAMP(1);\n    }\n    for (int t = 0; t < tiles; ++t) {\n'),
    ('    if (tiles > 0)\n        mbarrier_arrive(m.pempty + (base + tiles - 1) % P_SLOTS);\n',
     '    IT_STAMP(2);\n    if (tiles > 0)\n        mbarrier_arrive(m.pempty + (base + tiles - 1) % P_SLOTS);\n'),
    ('    write_output(p, o, final_state, tiles > 0,', '    IT_STAMP(4);\n    write_output(p, o, final_state, tiles > 0,'),
]

# template: [(text the stamp goes before, event)]
STAMPS = {
    'decode_wgmma_bf16.cu': [
        ('    // This thread\'s two rows of the score tile and of O: 16*warp + lane/4, and + 8.\n', 1),
        ('    // ---- epilogue: O / l per query row, lse ----\n', 2),
        ('    const float inv[2] = {row_sum[0] > 0.f', 4),
    ],
    'decode_wgmma_bf16_pair.cu': [
        ('    // This thread\'s two rows of the score tile and of O: 16*warp + lane/4, and + 8.\n', 1),
        ('    // ---- epilogue: the row sums (quad, then both warpgroups), O / l, lse ----\n', 2),
        ('    const bool direct = range.splits == 1;   // the same for the whole CTA\n', 4),
    ],
}


def rep(text, old, new, what):
    if text.count(old) != 1:
        sys.exit(f'bench/trace/items.py: {what}: the text to patch is not there once (the template changed)')
    return text.replace(old, new)


def patch(tree):
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location('trace_patch', os.path.join(here, 'patch.py'))
    tp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tp)
    edits = {
        'decode_wgmma_kernel.cu': ENTRY_EDITS,
        'decode_wgmma_fp8_roles.cu': ROLES_EDITS,
        'decode_plan.cu': [('namespace snapmla {\n', GLOBALS), ('    wait_prior_grids();\n', tp.PLAN_PRINT)],
        'combine.cu': [('    wait_prior_grids();   // the split kernel\'s partials\n', tp.PRINT)],
    }
    for name, stamps in STAMPS.items():
        edits[name] = [(before, f'    IT_STAMP({ev});\n' + before) for before, ev in stamps]
    for name, pairs in edits.items():
        path = os.path.join(tree, 'templates', name)
        s = open(path).read()
        for old, new in pairs:
            s = rep(s, old, new, name)
        open(path, 'w').write(s)


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    patch(sys.argv[1])
    print('stamped', sys.argv[1])
