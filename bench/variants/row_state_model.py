"""A float model of one query row through the role warpgroups' lazy softmax
(templates/decode_wgmma_fp8_roles.cu: tile_exponentials, lazy_row_update),
in two forms: the shipped one (each tile's exponentials against the tile's
own row max) and bench/variants/patch.py's `lateref` (against the max the
row state held after tile t-2, raised to 64 below each thread's own largest
score, the quad's references met afterwards by a factor fix <= 1). Random
rows (masked scores, empty threads and tiles, jumps up to ~900 in log2
units) go through both; each output must match the exact softmax of the
same scores. Float64 and no e4m3 rounding: it checks the algebra, not the
kernel. Exit status 1 on a mismatch.

    python3 bench/variants/row_state_model.py
"""
import math
import random
import sys

INF = math.inf
P_TARGET, P_FLOOR, P_HIGH, BETA_MAX = 112.0, 7.0, 448.0, 256.0


def ex2(x):
    if x == -INF:
        return 0.0
    return 2.0 ** x if x < 1000 else INF


def run(scores, vs, c, late):
    """scores: tiles of 4 threads (a quad) x 16 values, -inf where masked; vs: the
    tokens' V scales. Returns the row's output, as the kernel's O / (r l)."""
    row_max, row_sum, r = -INF, 0.0, 1.0
    O = 0.0   # the output's numerator: each token's value is its scale v (code 1)
    maxes = []
    for t, tile in enumerate(scores):
        own = [max(th) for th in tile]
        if late:
            earlier = maxes[t - 2] if t >= 2 else -INF
            refs = [max(earlier * c, o * c - 64 if o > -INF else -INF) for o in own]
            offs = [0.0 if x == -INF else x for x in refs]
            e = [[ex2(s * c - offs[k]) if s > -INF else 0.0 for s in th] for k, th in enumerate(tile)]
            tref = max(refs)
            fix = [0.0 if x == -INF else ex2(x - tref) for x in refs]
        else:
            tmax = max(own)
            off = 0.0 if tmax == -INF else tmax * c
            e = [[ex2(s * c - off) if s > -INF else 0.0 for s in th] for th in tile]
            tref = tmax * c if tmax > -INF else -INF
            fix = [1.0] * 4
        ev = [[x * v for x, v in zip(th, vv)] for th, vv in zip(e, vs[t])]
        tsum = sum(sum(th) * f for th, f in zip(e, fix))
        pmax = max(max(max(th), 0.0) * f for th, f in zip(ev, fix))
        tmax = max(own)
        # lazy_row_update
        beta_keep = 0.0 if tmax == -INF else ex2(tref - row_max * c) if row_max > -INF else INF
        mx_keep = beta_keep * pmax * r
        if late:
            near = tmax == -INF or (row_max > -INF and (tmax - row_max) * c <= 8)
        else:
            near = beta_keep <= BETA_MAX
        if near and mx_keep <= P_HIGH and (mx_keep >= P_FLOOR or mx_keep == 0.0):
            factor, pf = 1.0, r * beta_keep
            row_sum += beta_keep * tsum
        else:
            m_new = max(row_max, tmax)
            alpha = 1.0 if row_max == -INF else ex2((row_max - m_new) * c)
            beta = 0.0 if tmax == -INF else ex2(tref - m_new * c)
            row_max = m_new
            row_sum = row_sum * alpha + beta * tsum
            mx = beta * pmax
            r_new = min(P_TARGET / mx, 1.2676506e30) if mx > 0 else r
            factor = alpha * r_new / r
            r = r_new
            pf = r_new * beta
        maxes.append(row_max)
        O = O * factor + sum(sum(x * pf * f for x in th) for th, f in zip(ev, fix))
    return O / (r * row_sum) if row_sum > 0 else 0.0


random.seed(1)
worst = 0
for trial in range(3000):
    T = random.randint(1, 9)
    c = random.choice([0.05, 0.18, 1.0, 3.0])
    jump = random.choice([0, 0, 5, 80, 300])
    scores, vs = [], []
    for t in range(T):
        base = random.gauss(0, 4) + (jump if t == T - 1 and random.random() < .5 else 0)
        tile = [[(base + random.gauss(0, 3)) if random.random() > 0.1 else -INF for _ in range(16)] for _ in range(4)]
        if random.random() < 0.1: tile = [[-INF] * 16 for _ in range(4)]
        if random.random() < 0.1: tile[random.randint(0, 3)] = [-INF] * 16
        scores.append(tile)
        vs.append([[2 ** random.uniform(-6, 6) for _ in range(16)] for _ in range(4)])
    a = run(scores, vs, c, False)
    b = run(scores, vs, c, True)
    # exact softmax
    flat = [(s, v) for tile, vv in zip(scores, vs) for th, tv in zip(tile, vv) for s, v in zip(th, tv) if s > -INF]
    if flat:
        m = max(s for s, _ in flat)
        w = [2 ** ((s - m) * c) for s, _ in flat]
        exact = sum(wi * v for wi, (_, v) in zip(w, flat)) / sum(w)
    else:
        exact = 0.0
    for name, got in (('shipped', a), ('lateref', b)):
        err = abs(got - exact) / (abs(exact) + 1e-30) if exact else abs(got)
        if not err < 1e-9:
            print('mismatch:', name, 'trial', trial, got, 'exact', exact, 'tiles', T, 'c', c, 'jump', jump)
            sys.exit(1)
    worst = max(worst, abs(a - b) / (abs(a) + 1e-300))
print(f'3000 rows: both forms match the exact softmax; largest difference between them {worst:.1e}')
