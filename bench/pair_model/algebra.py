# The pair schedule's softmax algebra (templates/decode_wgmma_bf16_pair.cu), row by row in float64,
# against a plain softmax: tiles of 64 tokens, WG0 on even tiles, WG1 on odd,
# O split in two channel halves; masked columns and rows that see nothing.
#   python3 bench/pair_model/algebra.py   (numpy)
import numpy as np
rng = np.random.default_rng(1)
NEG = -np.inf

def exp2(x): return np.exp2(x)

def pair_schedule(S, V, scale_log2):
    """S: [tiles][rows][64] raw scores (-inf masked); V: [tiles][64][D]."""
    tiles, rows, _ = S.shape; D = V.shape[2]; H = D // 2
    M = np.full(rows, NEG)                  # running max (raw), smem ST_MAX
    O = [np.zeros((rows, H)), np.zeros((rows, H))]
    l = [np.zeros(rows), np.zeros(rows)]    # per-warpgroup row sums
    for u in range(0, tiles, 2):
        has_other = u + 1 < tiles
        # WG0: softmax of u
        s0 = S[u]
        m0 = np.maximum(M, s0.max(axis=1))
        a0 = np.where(M == NEG, 1.0, exp2((M - m0) * scale_log2))
        off0 = np.where(m0 == NEG, 0.0, m0 * scale_log2)
        P0 = exp2(s0 * scale_log2 - off0[:, None])
        l[0] = l[0] * a0 + P0.sum(axis=1)
        O[0] *= a0[:, None]
        O[0] += P0 @ V[u][:, :H]
        # WG1: softmax of u+1 from m0
        if has_other:
            s1 = S[u + 1]; tmax = s1.max(axis=1)
        else:
            tmax = np.full(rows, NEG)
        m1 = np.maximum(m0, tmax)
        a1 = np.where(m0 == NEG, 1.0, exp2((m0 - m1) * scale_log2))
        off1 = np.where(m1 == NEG, 0.0, m1 * scale_log2)
        if has_other:
            P1 = exp2(s1 * scale_log2 - off1[:, None])
            l[1] = l[1] * (a1 * a0) + P1.sum(axis=1)
            O[1] *= (a1 * a0)[:, None]
            O[1] += P1 @ V[u + 1][:, H:]
        else:
            l[1] *= a0
            O[1] *= a0[:, None]
        M = m1
        # WG0: P(u) x exp(m0 - m1) out; WG1's product with it
        P0s = P0 * a1[:, None]
        O[1] += P0s @ V[u][:, H:]
        if has_other:
            O[0] *= a1[:, None]; l[0] *= a1
            O[0] += P1 @ V[u + 1][:, :H]
    L = l[0] + l[1]
    inv = np.where(L > 0, 1 / np.where(L > 0, L, 1), 0)
    out = np.concatenate([O[0], O[1]], axis=1) * inv[:, None]
    lse = np.where(L > 0, M * scale_log2 / np.log2(np.e) + np.log(np.where(L > 0, L, 1)), np.inf)
    return out, lse

def reference(S, V, scale):
    tiles, rows, _ = S.shape
    s = np.concatenate(list(S), axis=1) * scale        # rows x tokens
    v = np.concatenate(list(V), axis=0)
    m = s.max(axis=1)
    ok = m > NEG
    p = np.exp(s - np.where(ok, m, 0)[:, None])
    L = p.sum(axis=1)
    out = np.where(ok[:, None], (p @ v) / np.where(ok, L, 1)[:, None], 0)
    lse = np.where(ok, m + np.log(np.where(ok, L, 1)), np.inf)
    return out, lse

worst = 0
for trial in range(400):
    tiles = int(rng.integers(1, 9)); rows = 8; D = 16
    scale = 0.1
    S = rng.normal(0, 30, (tiles, rows, 64))
    # growing maxima, masks: whole rows masked in some tiles, a tail, a row that sees nothing
    S += rng.normal(0, 20, (tiles, 1, 1)) * np.arange(tiles)[:, None, None] / max(tiles, 1)
    end = int(rng.integers(1, 64 * tiles + 1))
    for t in range(tiles):
        for j in range(64):
            if t * 64 + j >= end: S[t, :, j] = NEG
    for r in range(rows):
        if rng.random() < 0.2:   # causal-like: this row sees fewer tokens
            vis = int(rng.integers(0, end + 1))
            for t in range(tiles):
                for j in range(64):
                    if t * 64 + j >= vis: S[t, r, j] = NEG
    V = rng.normal(0, 1, (tiles, 64, D))
    o1, l1 = pair_schedule(S, V, scale * np.log2(np.e))
    o2, l2 = reference(S, V, scale)
    err = np.abs(o1 - o2).max()
    lerr = np.abs(np.where(np.isfinite(l2), l1 - l2, 0)).max()
    assert np.array_equal(np.isfinite(l1), np.isfinite(l2)), trial
    worst = max(worst, err, lerr)
print("pair algebra vs softmax: 400 trials, worst abs error %.2e" % worst)
assert worst < 1e-9
