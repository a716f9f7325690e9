"""Byte-level emulation of the output warpgroups' V^T fragment loads (no GPU).

Both shipped forms of load_vt_quarter and channel_of (wgmma_fp8_parts.cuh's
VT_LDMATRIX): "words" (the role warpgroups: 32-bit loads and byte
permutes) and "ldmatrix" (the seesaw: ldmatrix.trans and one permute per
fragment register), rewritten here as Python over a model of
the swizzled e4m3 tile in shared memory, `__byte_perm` and `ldmatrix.trans`
(lane 8 i + r gives row r of matrix i; lane t receives stored rows 2 (t % 4),
2 (t % 4) + 1 of column t / 4). Each fragment byte must be the (token,
channel) that the wgmma A-fragment layout and P''s token order ask for
(register 2 j + h: row half h, K positions 16 j + 4 quad + e = tokens
2 quad + (e & 1) + 8 (e >> 1) + 16 j), for latents of 512 and 256, each
channel of a warpgroup's half must be some thread's row exactly once, the
m-blocks 2 g, 2 g + 1 must hold one 128-channel scale group (the 656-byte
cache), and the loads must not conflict
(each 128-byte wavefront of a warp's load covers the 32 banks once).
    python3 bench/variants/fragments.py
"""
import sys

LAT_BLOCK = 64 * 128
HALF = 256   # output channels per warpgroup: 256 (DeepSeek's latent 512) or 128 (MiniCPM3's 256)


def swizzled(row, byte):
    return row * 128 + ((((byte >> 4) ^ (row & 7))) << 4) + (byte & 15)


SMEM = {}


def fill_tile():
    SMEM.clear()
    SMEM.update({(ch // 128) * LAT_BLOCK + swizzled(tok, ch % 128): (tok, ch)
                 for tok in range(64) for ch in range(2 * HALF)})


def ld(addr, n):
    return [SMEM[addr + i] for i in range(n)]


def byte_perm(x, y, s):
    b = x + y
    return [b[(s >> (4 * i)) & 7] for i in range(4)]


def channel_of(wg, warp, lane, mb, h):          # words (VT_LDMATRIX false)
    return wg * HALF + 128 * (mb // 2) + 32 * warp + 4 * (lane // 4) + 2 * (mb % 2) + h


def channel_ldsm_of(wg, warp, lane, mb, h):     # ldmatrix (VT_LDMATRIX true)
    return wg * HALF + 64 * mb + 16 * warp + 2 * (lane // 4) + h


def transpose4(w):
    lo01, lo23 = byte_perm(w[0], w[1], 0x5140), byte_perm(w[2], w[3], 0x5140)
    hi01, hi23 = byte_perm(w[0], w[1], 0x7362), byte_perm(w[2], w[3], 0x7362)
    return (byte_perm(lo01, lo23, 0x5410), byte_perm(lo01, lo23, 0x7632),
            byte_perm(hi01, hi23, 0x5410), byte_perm(hi01, hi23, 0x7632))


def token_rows(lane):
    return [2 * (lane % 4) + (e & 1) + 8 * (e >> 1) for e in range(4)]


def quarters(wg, warp, lane, loads):
    a = {}
    for grp in range(HALF // 128):
        c0 = channel_of(wg, warp, lane, 2 * grp, 0)
        at = [(c0 // 128) * LAT_BLOCK + swizzled(t, c0 % 128) for t in token_rows(lane)]
        for kk in range(4):
            loads.append([x + kk * 2048 for x in at])
            f = transpose4([ld(x + kk * 2048, 4) for x in at])
            for m in range(2):
                a[(2 * grp + m, kk // 2, 2 * (kk % 2))] = f[2 * m]
                a[(2 * grp + m, kk // 2, 2 * (kk % 2) + 1)] = f[2 * m + 1]
    return a


def ldsm_row(wg, warp, lane, mp):
    mat = lane // 8
    c0 = channel_ldsm_of(wg, warp, 0, 2 * mp + mat // 2, 0)
    return (c0 // 128) * LAT_BLOCK + swizzled(8 * (mat % 2) + lane % 8, c0 % 128)


def tile_ldsm(wg, warp, lane, loads):
    a = {}
    for mp in range(HALF // 128):
        for kk in range(4):
            rows = [ldsm_row(wg, warp, l, mp) + kk * 2048 for l in range(32)]
            loads.append(rows)
            q, p = lane % 4, lane // 4
            x = [ld(rows[8 * i + 2 * q] + 2 * p, 2) + ld(rows[8 * i + 2 * q + 1] + 2 * p, 2) for i in range(4)]
            for m in range(2):
                a[(2 * mp + m, kk // 2, 2 * (kk % 2))] = byte_perm(x[2 * m], x[2 * m + 1], 0x6420)
                a[(2 * mp + m, kk // 2, 2 * (kk % 2) + 1)] = byte_perm(x[2 * m], x[2 * m + 1], 0x7531)
    return a


def expected(cof, wg, warp, lane, mb, kc, i):
    j, h = i // 2, i % 2
    return [(32 * kc + 16 * j + t, cof(wg, warp, lane, mb, h)) for t in token_rows(lane)]


def most_per_bank(addresses, width):
    """The largest number of 4-byte words a wavefront's bank gets twice or more, for
    addresses loaded width bytes each, split into 128-byte wavefronts as the hardware does."""
    per_wave = max(1, 128 // width)
    worst = 0
    for w in range(0, len(addresses), per_wave):
        banks = [((x + 4 * k) // 4) % 32 for x in addresses[w:w + per_wave] for k in range(width // 4)]
        worst = max(worst, max(banks.count(b) for b in set(banks)))
    return worst


def check(name, load, cof, width):
    bad, per_lane_loads = 0, {}
    for wg in range(2):
        for warp in range(4):
            for lane in range(32):
                loads = []
                for key, got in load(wg, warp, lane, loads).items():
                    bad += got != expected(cof, wg, warp, lane, *key)
                per_lane_loads[(wg, warp, lane)] = loads
            chans = sorted(cof(wg, warp, l, mb, h) for l in range(0, 32, 4) for mb in range(HALF // 64)
                           for h in range(2))
            bad += chans != sorted(set(chans)) or len(chans) != HALF // 4
        chans = sorted(cof(wg, w, l, mb, h) for w in range(4) for l in range(0, 32, 4) for mb in range(HALF // 64)
                       for h in range(2))
        bad += chans != list(range(wg * HALF, (wg + 1) * HALF))
        # fp8_per_tile128: m-blocks 2 g, 2 g + 1 hold exactly the 128 channels of the warpgroup's scale group g
        for g in range(HALF // 128):
            group = {cof(wg, w, l, mb, h) for w in range(4) for l in range(0, 32, 4) for mb in (2 * g, 2 * g + 1)
                     for h in range(2)}
            bad += group != set(range(wg * HALF + 128 * g, wg * HALF + 128 * (g + 1)))
    # banks: a warp instruction's addresses (per lane, per load; ldmatrix: the 32 row addresses)
    worst = 0
    for wg in range(2):
        for warp in range(4):
            n = len(per_lane_loads[(wg, warp, 0)])
            for k in range(n):
                if name == 'ldmatrix':
                    worst = max(worst, most_per_bank(per_lane_loads[(wg, warp, 0)][k], 16))
                else:
                    for e in range(4):
                        worst = max(worst, most_per_bank([per_lane_loads[(wg, warp, l)][k][e] for l in range(32)],
                                                         width))
    print(f'{name}, latent {2 * HALF}: {bad} wrong fragment bytes or channel maps; at most {worst} access(es) per '
          'bank and wavefront')
    return bad == 0 and worst == 1


if __name__ == '__main__':
    ok = True
    for HALF in (256, 128):
        fill_tile()
        ok &= check('words', quarters, channel_of, 4)
        ok &= check('ldmatrix', tile_ldsm, channel_ldsm_of, 16)
    sys.exit(0 if ok else 1)
