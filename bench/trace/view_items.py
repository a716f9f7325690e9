#!/usr/bin/env python3
"""Summary of a work-item timeline (bench/trace/items.py's KE and IT lines):
the kernel's span and the CTAs' end spread (from %globaltimer), each SM's
clock while it ran (clock64 over globaltimer), and per work item the
prologue, tile loop, epilogue (split at its output stores) and the gap to
the CTA's next item, in microseconds at each CTA's own clock.
    python3 bench/trace/view_items.py LOG"""
import statistics
import sys


def read(path):
    ke, it, rows, sm = {}, {}, [], {}
    for line in open(path):
        f = line.split()
        if f and f[0] == 'KE':       # cta, ns entry, ns exit, clk entry, clk exit, items
            ke[int(f[1])] = [int(x) for x in f[2:7]]
            if len(f) > 7:               # the SM it ran on (%smid; later traces)
                sm[int(f[1])] = int(f[7])
        elif f and f[0] == 'IT':     # cta, item, tiles, then (ns, clk) at: top, prologue, epilogue, end, stores
            it[(int(f[1]), int(f[2]))] = [int(x) for x in f[3:14]]
        elif line.startswith('|') and 'mla_decode' in line:
            rows.append(float(line.split('|')[4]))
    return ke, it, rows[0] if len(rows) == 1 else None, sm   # (the call's time where the log times one shape)


def summary(ke, it, call_us, sm=None):
    out = []
    ctas = sorted(c for c in ke if ke[c][4] > 0)
    if not ctas:
        return ['no busy CTA in the trace']
    t0 = min(ke[c][0] for c in ctas)
    ends = [(ke[c][1] - t0) / 1e3 for c in ctas]
    mhz = {c: (ke[c][3] - ke[c][2]) * 1e3 / max(1, ke[c][1] - ke[c][0]) for c in ctas}
    call = f'call {call_us} us; ' if call_us is not None else ''
    out.append(f'{call}kernel span {max(ends):.1f} us over {len(ctas)} busy CTAs (of {len(ke)}); '
               f'CTA end: min {min(ends):.1f}, median {statistics.median(ends):.1f}, max {max(ends):.1f} us')
    out.append(f'SM clock (clock64 / globaltimer per CTA): mean {statistics.mean(mhz.values()):.0f} MHz, '
               f'min {min(mhz.values()):.0f}, max {max(mhz.values()):.0f}')
    steps = {k: [] for k in ('kernel entry to first loop', 'prologue (item top to loop)', 'loop', 'loop per tile',
                             'epilogue (to item end)', '  to its stores', '  stores to item end', 'between items',
                             'whole item')}
    counts, per_cta = {}, {}
    for c in ctas:
        us = lambda a, b: (b - a) / mhz[c]   # clock64 cycles in us at this CTA's clock
        n = min(ke[c][4], 8)
        counts[n] = counts.get(n, 0) + 1
        for i in range(n):
            e = it.get((c, i))
            if not e:
                continue
            tiles, top, pro, epi, end, st = e[0], e[2], e[4], e[6], e[8], e[10]
            if i == 0 and pro:
                steps['kernel entry to first loop'].append(us(ke[c][2], pro))
            if pro:
                steps['prologue (item top to loop)'].append(us(top, pro))
            if pro and epi:
                per_tile = us(pro, epi) / max(tiles, 1)
                steps['loop'].append(us(pro, epi))
                steps['loop per tile'].append(per_tile)
                per_cta.setdefault(c, []).append(per_tile)
            if epi:
                steps['epilogue (to item end)'].append(us(epi, end))
            if epi and st:
                steps['  to its stores'].append(us(epi, st))
                steps['  stores to item end'].append(us(st, end))
            steps['whole item'].append((e[7] - e[1]) / 1e3)
            nxt = it.get((c, i + 1))
            if nxt:
                steps['between items'].append(us(end, nxt[2]))
    tiles = sorted(set(it[k][0] for k in it))
    out.append(f'items per CTA: {dict(sorted(counts.items()))}; tiles per item: {tiles[:8]}'
               f'{" ..." if len(tiles) > 8 else ""}')
    for name, v in steps.items():
        if v:
            out.append(f'  {name}: mean {statistics.mean(v):.2f} us, min {min(v):.2f}, max {max(v):.2f} (n {len(v)})')
    if sm and per_cta:
        # whether a CTA's pace follows its SM (the forty-second session's
        # gangs ran each CTA at its own steady rate)
        ranked = sorted(per_cta, key=lambda c: statistics.mean(per_cta[c]))
        show = lambda cs: ', '.join(f'SM {sm.get(c, "?")} {statistics.mean(per_cta[c]):.3f}' for c in cs)
        out.append(f'  loop per tile by SM, fastest: {show(ranked[:4])}; slowest: {show(ranked[-4:])}')
    return out


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    ke, it, call_us, sm = read(sys.argv[1])
    if not ke:
        sys.exit(f'{sys.argv[1]}: no KE lines (was the trace printed? it comes after the 8th launch)')
    print('\n'.join(summary(ke, it, call_us, sm)))
