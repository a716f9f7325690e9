#!/usr/bin/env python3
"""Summary of a timeline trace (bench/trace/patch.py's TR lines, clock64
cycles of one SM): a few steady tiles step by step, then the mean time of
each step over the steady tiles (8 .. 47 by default).
    python3 bench/trace/view.py roles|bf16 LOG [FIRST LAST]"""
import statistics
import sys

# the output warpgroups' steps up to their products' issue
# (6: by quarters only)
O_STEPS = [(0, 'top'), (1, 'pfull wait'), (2, 'retire t-1'), (6, 'first quarter (older logs: V^T read)'),
           (3, 'V^T read + products issued')]
STEPS = {
    # kind: per warpgroup kind, the events in time order and the name of the step ending at each
    'roles': {
        'S': [(0, 'top'), (1, 'full wait'), (2, 'latent QK'), (3, 'scale + RoPE QK'), (8, 'exponentials'),
              (4, 'pempty wait'), (5, 'sfull wait'), (6, 'row state'), (7, "P' out")],
        'O': O_STEPS + [(5, 'tail')],
        # O0's thread 0 also copies O0's half of each tile: its wait for that half's
        # readers, then the copy's issue (O1's half is copied by its thread 64: not stamped)
        'O0': O_STEPS + [(4, 'used wait'), (7, 'copy issue'), (5, 'look-up + tail')],
    },
    'bf16': {
        'S': [(0, 'top'), (1, 'retire own t-2'), (2, "other's P in"), (3, 'full wait'), (4, 'QK (+ other PV)'),
              (5, 'softmax'), (6, 'publish'), (7, 'own PV issue')],
    },
}


def main():
    kind, path = sys.argv[1], sys.argv[2]
    first, last = (int(sys.argv[3]), int(sys.argv[4])) if len(sys.argv) > 4 else (8, 48)
    rows, tiles = {}, None
    for line in open(path):
        f = line.split()
        if line.startswith('TRACE'):
            tiles = int(f[2])
        elif line.startswith('TR '):
            rows[(int(f[1]), int(f[2]))] = ([int(x) for x in f[3:13]] + [0] * 10)[:10]   # (older logs: 8 events)
    if not rows:
        sys.exit(f'{path}: no TR lines (the traced kernel did not print: fewer than 8 launches?)')
    last = min(last, tiles or 63, 63)
    owner = lambda t: t % 2   # the score warpgroup (roles) or the warpgroup (bf16) that owns tile t
    ev = lambda w, t, e: rows.get((w, t), [0] * 10)[e]
    mean = lambda xs: statistics.mean(xs) if xs else float('nan')
    print(f'{kind}: {tiles} tiles in CTA 0\'s first item; steady tiles {first}..{last - 1}; clock64 cycles')
    # (O0 and O1 apart: each also copies its half of a tile, and they may keep different paces)
    if kind == 'roles':
        groups = [('S', 'S', None), ('O0', 'O0', 2), ('O1', 'O', 3)]
    else:
        groups = [('WG0', 'S', 0), ('WG1', 'S', 1)]
    for label, who, only in groups:
        steps = STEPS[kind][who]
        if who == 'S':   # (warpgroup 1 of bf16 runs its QK before the other's product: its own order)
            tile_ws = lambda t: [owner(t)] if only is None or owner(t) == only else []
            if only == 1:
                steps = [steps[i] for i in (0, 1, 3, 2, 4, 5, 6, 7)]
        else:
            tile_ws = lambda t: [only]
        # only the events this trace stamped (a form, or an older log, may have fewer)
        steps = [s for s in steps if any(ev(w, t, s[0]) for t in range(first, last) for w in tile_ws(t))]
        out = []
        for (e0, _), (e1, name) in zip(steps, steps[1:]):
            d = [ev(w, t, e1) - ev(w, t, e0) for t in range(first, last) for w in tile_ws(t)
                 if ev(w, t, e0) and ev(w, t, e1)]
            out.append(f'{name} {mean(d):.0f}')
        total = [ev(w, t, steps[-1][0]) - ev(w, t, 0) for t in range(first, last) for w in tile_ws(t)
                 if ev(w, t, 0) and ev(w, t, steps[-1][0])]
        print(f'  {label} per own tile: ' + ', '.join(out) + f'; top to last {mean(total):.0f}')
    if kind == 'roles':
        period = [ev(2, t + 1, 1) - ev(2, t, 1) for t in range(first, last - 1)]
        print(f'  tile period (O0 sees P\' of t, then of t+1): {mean(period):.0f}')
        gap = [ev(owner(t), t + 2, 0) - ev(owner(t), t, 7) for t in range(first, last - 2)]
        print(f'  S: P\' out of t to the top of its next tile t+2: {mean(gap):.0f}')
        hand = [ev(2, t, 1) - ev(owner(t), t, 7) for t in range(first, last)]
        print(f'  P\' out (S) to O0 past its pfull wait: {mean(hand):.0f}')
        chain = [ev(owner(t + 1), t + 1, 5) - ev(owner(t), t, 6) for t in range(first, last - 1)]
        print(f'  row state out (t) to the other S past its sfull wait (t+1): {mean(chain):.0f}')
        # O arrives on pempty(t-3) at its tile t-2, once t-3's products retire (stamped by
        # each O's thread 0 only: O1's copier warp may arrive later)
        freed = lambda t: max(ev(2, t - 2, 2), ev(3, t - 2, 2))
        wake = [ev(owner(t), t, 4) - freed(t) for t in range(max(first, 2), last)]
        print(f'  O\'s thread 0s free P\' slot of t-3 (at tile t-2) to S past its pempty wait (t): {mean(wake):.0f}')
        ready = [ev(owner(t), t, 3) - freed(t) for t in range(max(first, 2), last)]
        print(f'  ... and S\'s RoPE QK of t retired, against that (negative: S was there first): {mean(ready):.0f}')
        copy = [ev(owner(t + 4), t + 4, 1) - ev(2, t, 4) for t in range(first, last - 4) if ev(2, t, 4)]
        print(f'  refill issued (slot of t) to its S past the full wait (t+4): {mean(copy):.0f}')
    else:
        period = [ev(owner(t + 1), t + 1, 6) - ev(owner(t), t, 6) for t in range(first, last - 1)]
        print(f'  tile period (publish of t to publish of t+1): {mean(period):.0f}')
        link = [ev(owner(t + 1), t + 1, 2) - ev(owner(t), t, 6) for t in range(first, last - 1)]
        print(f'  publish of t to the other warpgroup past its wait: {mean(link):.0f}')
    print('  step by step (cycles from the first tile shown):')
    base = min(v for (w, t), r in rows.items() if t == first for v in r if v)
    for t in range(first, min(last, first + 10)):
        for w in ([owner(t)] + ([2, 3] if kind == 'roles' else [])):
            who = 'S' if w < 2 else 'O0' if w == 2 else 'O'
            cells = ' '.join(f'{name}@{ev(w, t, e) - base}' for e, name in sorted(STEPS[kind][who], key=lambda x: ev(w, t, x[0])) if ev(w, t, e))
            print(f'    t{t:2d} wg{w}: {cells}')


if __name__ == '__main__':
    main()
