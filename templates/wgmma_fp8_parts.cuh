// ---- mla_decode, Hopper FP8 path: what its two schedules share ----------------
//
// The seesaw (decode_wgmma_fp8.cu, tile.warps 8) and the role warpgroups
// (decode_wgmma_fp8_roles.cu, tile.warps 16) compute the same numbers: Q to
// e4m3 per row, the P' buffers and the row state they hand over, the KV tile
// copies, V^T byte-transposed into wgmma A fragments. This file: those pieces.

namespace snapmla {

static_assert(FORMAT == FORMAT_FP8_PER_TOKEN || (KV_TILE128 && KV_TMA),
              "the FP8 path reads the per-token cache, or the per-tile128 one by TMA");

// The role warpgroups read fp8_per_tile128 per token: each token's groups
// are requantized in the ring slot to its largest scale (requant_tile128 in
// decode_wgmma_fp8_roles.cu), so one scale per token serves both products.
// The seesaw keeps one scale per group (P_GROUPS of them per tile).
constexpr bool TOKEN_REQUANT = KV_TILE128 && ROLE_WARPGROUPS;
constexpr int P_GROUPS = TOKEN_REQUANT ? 1 : SCALE_GROUPS;

// P' of one tile, e4m3, tokens contiguous per query row (the B operand of
// O^T = V^T P'^T, K-major, no swizzle): core matrices of 8 rows x 16 bytes,
// the next 16 k at +128, the next 8 rows at +512. One P' per scale group
// (V's scale is folded into it: the seesaw on fp8_per_tile128 has one per
// 128 channels). Three buffers: tile t's is overwritten by tile t+3's only
// after both products with it are done.
constexpr int P_LBO = 128, P_SBO = 512, P_BYTES = 64 * KV_TILE, P_BUFFERS = 3;
constexpr int P_TILE_BYTES = P_GROUPS * P_BYTES;
// The row state after a tile, per query row: max, row sum, then per scale
// group P's factor r and O's factor; then one flag per warp of 16 rows, set
// when a factor is not 1. Three slots, by tile % 3 (a slot is read after the
// next hand-off).
constexpr int ST_MAX = 0, ST_SUM = 64, ST_R = 128, ST_FACTOR = ST_R + 64 * P_GROUPS;
constexpr int ST_FLAGS = ST_FACTOR + 64 * P_GROUPS;
constexpr int STATE_FLOATS = ST_FLAGS + 4, STATE_SLOTS = 3;
// P's e4m3 factor r is kept while a tile's largest P' = P v r stays in
// [28, 448], else reset to put it at 448: the band keeps a flat softmax's
// mass in e4m3's normal range, and O's factor is 1 whenever neither the
// row max nor r moves.
constexpr float P_LOW = 28.f, P_HIGH = 448.f;
// O^T in m64 blocks of channels, two blocks per group of 32 x 4 channels
// (one 128-channel group of the latent: one scale group of fp8_per_tile128).
constexpr int MBLOCKS = HALF / 64, GROUPS = HALF / 128;
constexpr int Q_BYTES = round_up_1024(64 * (LATENT + ROPE_ROW) + 64 * 4);
constexpr int TOKEN_CHUNKS = LAT_CHUNKS + ROPE_CHUNKS;   // 16-byte cp.async chunks per token
static_assert(OUT_STAGE_BYTES <= Q_BYTES + STAGE_BYTES, "the output stage fits in Q's smem and a ring slot");

// Shared memory of both FP8 schedules, 1024-aligned for the 128-byte
// swizzle: Q, the ring of raw tiles, three tiles' P' and row state, and the
// ring's mbarriers. The role warpgroups add mbarriers after these.
struct Fp8Smem {
    unsigned char *q_lat;              // [LATENT/128][64][128] e4m3
    unsigned char *q_rope;             // [ROPE_BLOCKS][64][ROPE_SW] bf16
    float *q_scale;                    // [64]
    unsigned char *ring;               // [STAGES][STAGE_BYTES]
    unsigned char *p_all;              // [P_BUFFERS][P_GROUPS][P_BYTES]: P' by tile % 3
    float *state_all;                  // [STATE_SLOTS][STATE_FLOATS]: row state by tile % 3
    unsigned long long *full, *used;   // per ring slot: copies landed; its readers are done
};

// Fills m's common part; returns the first byte after it (used[STAGES]).
__device__ __forceinline__ unsigned long long *carve_fp8_smem(unsigned char *smem_raw, Fp8Smem &m)
{
    // The 128-byte swizzle repeats every 1024 bytes: align the layout to it.
    unsigned char *smem = smem_raw + ((1024u - (smem_address(smem_raw) & 1023u)) & 1023u);
    m.q_lat = smem;
    m.q_rope = m.q_lat + 64 * LATENT;
    m.q_scale = (float *)(m.q_rope + 64 * ROPE_ROW);
    m.ring = smem + Q_BYTES;
    m.p_all = m.ring + STAGES * STAGE_BYTES;
    m.state_all = (float *)(m.p_all + P_BUFFERS * P_TILE_BYTES);
    m.full = (unsigned long long *)(m.state_all + STATE_SLOTS * STATE_FLOATS);
    m.used = m.full + STAGES;
    return m.used + STAGES;
}

// The warpgroup that copies tile j in: the non-owner of tile j - STAGES,
// which refills that slot; the prologue's tiles follow the same parity.
__device__ __forceinline__ int copier_of(int j) { return (j + STAGES + 1) & 1; }

// Four floats -> four e4m3 codes, a in the lowest byte (RNE, saturating).
__device__ __forceinline__ unsigned e4m3x4(float a, float b, float c, float d)
{
    unsigned short lo, hi;
    asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(lo) : "f"(b), "f"(a));
    asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(hi) : "f"(d), "f"(c));
    return (unsigned)lo | ((unsigned)hi << 16);
}

// x (a power of two, or 0) in both halves of an f16x2.
__device__ __forceinline__ unsigned f16x2_of(float x)
{
    unsigned r;
    asm("cvt.rn.f16x2.f32 %0, %1, %1;" : "=r"(r) : "f"(x));
    return r;
}

// Four e4m3 codes times f (f16x2, both halves the same), rounded back to
// e4m3 (RNE, saturating; NaN stays NaN). Through f16, which holds every
// e4m3 value times 2^-k exactly down to 2^-24: one rounding.
__device__ __forceinline__ unsigned e4m3x4_times(unsigned codes, unsigned f)
{
    unsigned lo, hi;
    unsigned short a, b;
    asm("{\n\t.reg .b16 l, h;\n\tmov.b32 {l, h}, %2;\n\t"
        "cvt.rn.f16x2.e4m3x2 %0, l;\n\tcvt.rn.f16x2.e4m3x2 %1, h;\n\t}"
        : "=r"(lo), "=r"(hi) : "r"(codes));
    asm("mul.rn.f16x2 %0, %0, %1;" : "+r"(lo) : "r"(f));
    asm("mul.rn.f16x2 %0, %0, %1;" : "+r"(hi) : "r"(f));
    asm("cvt.rn.satfinite.e4m3x2.f16x2 %0, %1;" : "=h"(a) : "r"(lo));
    asm("cvt.rn.satfinite.e4m3x2.f16x2 %0, %1;" : "=h"(b) : "r"(hi));
    return (unsigned)a | ((unsigned)b << 16);
}

// The CTA's 64 query rows: latent -> e4m3 with one power-of-two scale per
// row, RoPE divided by it (exactly) as BF16, into swizzled smem. Four
// threads per row (a quad), each holding every fourth 8-channel chunk in
// registers between the amax and the conversion, so that a quad's loads
// are 64 contiguous bytes; rows past ROWS are zeros. 256 threads, this one
// number `thread`. Two steps: load_q_fp8_start puts every 16-byte load of
// the thread's quarter row (latent and RoPE) in flight at once, before the
// first tiles' copies, so that Q is not queued behind them (one round trip:
// 64 heads, 4K, -2.3%; batch 1 -1 to -2 us, docs/perf.md thirtieth
// session); load_q_fp8_finish quantizes and stores them.
struct QRowLoad {
    uint4 v[LATENT / 32];
    uint4 rope[ROPE_CHUNKS / 4];
};
__device__ __forceinline__ void load_q_fp8_start(const DecodeParams &p, int b, int row0, QRowLoad &q,
                                                 unsigned thread = threadIdx.x)
{
    constexpr int VECS = LATENT / 32;
    const int r = thread / 4, part = thread % 4;   // (unsigned: shifts, as threadIdx.x's were)
    const bool valid = row0 + r < ROWS;
    const bf16_t *src = p.q + ((long long)b * ROWS + (valid ? row0 + r : 0)) * WIDTH;
#pragma unroll
    for (int i = 0; i < VECS; ++i)
        q.v[i] = valid ? *(const uint4 *)(src + 8 * (part + 4 * i)) : make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int k = 0; k < ROPE_CHUNKS / 4; ++k)
        q.rope[k] = valid ? *(const uint4 *)(src + LATENT + (part + 4 * k) * 8) : make_uint4(0, 0, 0, 0);
}

__device__ __forceinline__ void load_q_fp8_finish(const QRowLoad &q, unsigned char *q_lat, unsigned char *q_rope,
                                                  float *q_scale, unsigned thread = threadIdx.x)
{
    static_assert(ROPE_CHUNKS % 4 == 0, "whole RoPE chunks per thread");
    constexpr int VECS = LATENT / 32;
    const int r = thread / 4, part = thread % 4;
    float amax = 0.f;
#pragma unroll
    for (int i = 0; i < VECS; ++i) {
        const unsigned w[4] = {q.v[i].x, q.v[i].y, q.v[i].z, q.v[i].w};
#pragma unroll
        for (int k = 0; k < 4; ++k)
            amax = fmaxf(amax, fmaxf(fabsf(bf16_lo(w[k])), fabsf(bf16_hi(w[k]))));
    }
    amax = quad_max(amax);   // the row's four threads are one quad
    // A power of two costs e4m3 no precision (its relative step is the same
    // across the normal range) and makes RoPE / scale exact.
    const float scale = fp8_scale(amax, true), inv = 1.f / scale;
    if (part == 0)
        q_scale[r] = scale;
#pragma unroll
    for (int i = 0; i < VECS; ++i) {
        const uint4 x = q.v[i];
        uint2 codes;
        codes.x = e4m3x4(bf16_lo(x.x) * inv, bf16_hi(x.x) * inv, bf16_lo(x.y) * inv, bf16_hi(x.y) * inv);
        codes.y = e4m3x4(bf16_lo(x.z) * inv, bf16_hi(x.z) * inv, bf16_lo(x.w) * inv, bf16_hi(x.w) * inv);
        *(uint2 *)(q_lat + latent_offset(r, 8 * (part + 4 * i))) = codes;
    }
#pragma unroll
    for (int k = 0; k < ROPE_CHUNKS / 4; ++k) {
        const uint4 x = q.rope[k];
        const unsigned w[4] = {x.x, x.y, x.z, x.w};
        unsigned y[4];
#pragma unroll
        for (int j = 0; j < 4; ++j)
            y[j] = (unsigned)f32_to_bf16(bf16_lo(w[j]) * inv) | ((unsigned)f32_to_bf16(bf16_hi(w[j]) * inv) << 16);
        *(uint4 *)(q_rope + rope_offset(r, (part + 4 * k) * 16)) = make_uint4(y[0], y[1], y[2], y[3]);
    }
}



// One warpgroup starts the copy of KV tile `tile` into ring slot
// (base + tile) % STAGES; each thread's copies arrive on the slot's mbarrier when they
// land. Two threads per token on alternate 16-byte chunks; tokens past the
// range are zero-filled (codes and scale). Nothing past the last tile.
__device__ __forceinline__ void issue_fp8_tile(const DecodeParams &p, const KvRange &r, unsigned char *ring,
                                               unsigned long long *full, int base, int tile, int page)
{
    static_assert(TOKEN_CHUNKS % 2 == 0, "two threads per token");
    if (tile >= r.tiles)
        return;
    unsigned char *k_lat = ring + (base + tile) % STAGES * STAGE_BYTES;
    unsigned char *k_rope = k_lat + KV_TILE * LAT_ROW;
    float *k_scale = (float *)(k_rope + KV_TILE * ROPE_ROW);
    const int wt = threadIdx.x % 128, j = wt / 2, part = wt % 2;
    const int t = r.t_begin + tile * KV_TILE + j;
    const bool valid = page >= 0;
    const unsigned char *page_at = p.cache + (valid ? (long long)page * p.page_stride : 0);
    const long long slot = valid ? t % PAGE_SIZE : 0;
    const int size = valid ? 16 : 0;
    // Latent chunk c = part + 2 i: 128-channel block i / 4, chunk (part + 2 i) % 8
    // of the row, XORed with the row's phase; four offsets, then immediates.
    int lat_at[4];
#pragma unroll
    for (int k = 0; k < 4; ++k)
        lat_at[k] = swizzled<128>(j, (part + 2 * k) * 16);
    const unsigned char *src = page_at + slot * LATENT + part * 16;
#pragma unroll
    for (int i = 0; i < LAT_CHUNKS / 2; ++i)
        cp_async_16(k_lat + lat_at[i % 4] + (i / 4) * LAT_BLOCK_BYTES, src + 32 * i, size);
    const unsigned char *rope_src = page_at + (long long)PAGE_SIZE * LATENT + slot * ROPE_ROW;
#pragma unroll
    for (int i = 0; i < ROPE_CHUNKS / 2; ++i) {
        const int byte = (part + 2 * i) * 16;
        cp_async_16(k_rope + rope_offset(j, byte), rope_src + byte, size);
    }
    if (part == 0)
        cp_async_4(k_scale + j, page_at + (long long)PAGE_SIZE * (LATENT + ROPE_ROW) + slot * 4, valid ? 4 : 0);
    cp_async_arrive(full + (base + tile) % STAGES);
}


// The copier threads of a warpgroup start the copy of tile `tile` of the
// range, the CTA's tile base + tile: ring slot and mbarrier phase run on
// across the CTA's work items.
__device__ __forceinline__ void issue_kv_tile(const DecodeParams &p, const KvMaps &maps, const KvRange &r,
                                           unsigned char *ring, unsigned long long *full, int base,
                                           int tile, const TileWhere &w)
{
    if constexpr (KV_TMA)
        issue_tma_tile(p, maps, r, ring, full, base, tile, w);
    else
        issue_fp8_tile(p, r, ring, full, base, tile, w.page[0]);
}


// How the output warpgroups read V^T's fragments from the raw tile. The
// seesaw (two warpgroups) by ldmatrix.trans: fewer instructions on its
// per-tile chain (-2.4% at 128 heads, -8% on the 656-byte cache, H200).
// The role warpgroups by 32-bit words and byte permutes: with ldmatrix
// their 128-head time was 1.8% worse next to the half copies (twentieth
// session, perf.md).
constexpr bool VT_LDMATRIX = !ROLE_WARPGROUPS;
// Whether write_output's BF16 goes through the output stage (the seesaw:
// then one 16-byte store per chunk of out) or straight from registers
// (the role warpgroups: no stage writes, barriers or copy-out, -1.3% at
// 128 heads 4K, forty-seventh session).
constexpr bool OUT_STAGED = !ROLE_WARPGROUPS;
static_assert(VT_LDMATRIX || !OUT_STAGED, "write_output's words form has no stage");

// Channel of row h (0: lane/4, 1: lane/4 + 8) of the m64 block mb of this
// thread's O^T accumulators; blocks 2g', 2g'+1 hold the 128 channels of
// group g' (one V scale per token in each, which P' carries).
// - ldmatrix: a warp's 16-row slice of an m-block is a 16-channel block of
//   the raw tile, and a thread's rows lane/4, lane/4 + 8 are its channels
//   2 (lane/4), 2 (lane/4) + 1: what ldmatrix.trans hands a thread (b16
//   column lane/4 of each 8 x 8 matrix).
// - words: a quad's four rows of blocks 2g', 2g'+1 are four consecutive
//   channels, one 32-bit word of the raw tile, which becomes those rows' A
//   fragments by a 4 x 4 byte transpose.
__device__ __forceinline__ int channel_of(int wg, int warp, int lane, int mb, int h)
{
    if constexpr (VT_LDMATRIX)
        return wg * HALF + 64 * mb + 16 * warp + 2 * (lane / 4) + h;
    else
        return wg * HALF + 128 * (mb / 2) + 32 * warp + 4 * (lane / 4) + 2 * (mb % 2) + h;
}

// The scale group of this warpgroup's channel group grp (0 for per-token).
__device__ __forceinline__ int scale_group_of(int wg, int grp) { return P_GROUPS > 1 ? wg * GROUPS + grp : 0; }

// Per-row (or per-token) floats of this thread's 16 score columns
// 8 j + 2 quad + {0, 1}, from 64 consecutive floats: v[8 j + 2 quad + e].
__device__ __forceinline__ void load_column_pairs(const float *v, int quad, float (&x)[16])
{
#pragma unroll
    for (int j = 0; j < 8; ++j) {
        const float2 pair = *(const float2 *)(v + 8 * j + 2 * quad);
        x[2 * j] = pair.x, x[2 * j + 1] = pair.y;
    }
}

// The scales of scale group g of this thread's 16 score columns 8 j + 2 quad
// + {0, 1} of a tile ([token][group] floats).
__device__ __forceinline__ void load_token_scales(const float *k_scale, int quad, int g, float (&ts)[16])
{
    if (SCALE_GROUPS == 1) {
        load_column_pairs(k_scale, quad, ts);
        return;
    }
#pragma unroll
    for (int j = 0; j < 8; ++j) {
        const int tok = 8 * j + 2 * quad;
        ts[2 * j] = k_scale[tok * SCALE_GROUPS + g];
        ts[2 * j + 1] = k_scale[(tok + 1) * SCALE_GROUPS + g];
    }
}

// Zeros the scales of this thread's columns (tokens t0 + 8 j + 2 quad + {0,
// 1}) at or past t_end: past the range P' = 0 x scale must stay 0 (the
// slot may hold any bytes there).
__device__ __forceinline__ void zero_scales_past(float (&ts)[16], int t0, int t_end, int quad)
{
#pragma unroll
    for (int c = 0; c < 16; ++c)
        if (t0 + 8 * (c / 2) + 2 * quad + c % 2 >= t_end)
            ts[c] = 0.f;
}

// Where this thread's 4 words of group grp's 16-token steps start: the
// offsets of tokens 2 quad + {0, 1, 8, 9} (the swizzle phase repeats every 8).
__device__ __forceinline__ const unsigned char *vt_group_block(const unsigned char *k_lat, int (&at)[4], int wg,
                                                               int warp, int lane, int grp)
{
    const int c0 = channel_of(wg, warp, lane, 2 * grp, 0);
    const int byte = c0 % 128;
#pragma unroll
    for (int e = 0; e < 4; ++e)
        at[e] = swizzled<128>(2 * (lane % 4) + (e & 1) + 8 * (e >> 1), byte);
    return k_lat + (c0 / 128) * LAT_BLOCK_BYTES;
}

// One 16-token step kk of a group: the fragments of channels c0, c0 + 1
// (lo, of m-block 2 grp) and c0 + 2, c0 + 3 (hi, of m-block 2 grp + 1).
__device__ __forceinline__ void load_vt_step(const unsigned char *block, const int (&at)[4], int kk,
                                             unsigned (&lo)[2], unsigned (&hi)[2])
{
    const unsigned w0 = *(const unsigned *)(block + at[0] + kk * 16 * 128);
    const unsigned w1 = *(const unsigned *)(block + at[1] + kk * 16 * 128);
    const unsigned w2 = *(const unsigned *)(block + at[2] + kk * 16 * 128);
    const unsigned w3 = *(const unsigned *)(block + at[3] + kk * 16 * 128);
    const unsigned lo01 = __byte_perm(w0, w1, 0x5140), lo23 = __byte_perm(w2, w3, 0x5140);
    const unsigned hi01 = __byte_perm(w0, w1, 0x7362), hi23 = __byte_perm(w2, w3, 0x7362);
    lo[0] = __byte_perm(lo01, lo23, 0x5410);   // channel c0
    lo[1] = __byte_perm(lo01, lo23, 0x7632);   // c0 + 1
    hi[0] = __byte_perm(hi01, hi23, 0x5410);   // c0 + 2
    hi[1] = __byte_perm(hi01, hi23, 0x7632);   // c0 + 3
}

// O^T's accumulators (this warpgroup's channels x the 64 query rows, laid
// out by channel_of), zeroed at a work item's start.
__device__ __forceinline__ void zero_o_t(float (&o)[MBLOCKS][32])
{
#pragma unroll
    for (int mb = 0; mb < MBLOCKS; ++mb)
#pragma unroll
        for (int i = 0; i < 32; ++i)
            o[mb][i] = 0.f;
}

// The A fragments of O^T += V^T P'^T for one quarter of this warpgroup's
// tile, the 32-token half kc of group grp's two m-blocks: lo (m-block
// 2 grp) and hi (2 grp + 1), read from the raw e4m3 tile (tokens x
// channels, 128-byte swizzle); fragment i = 2 j + h. K position 4 quad + e
// (+16 j, +32 kc) holds the token 2 quad + (e & 1) + 8 (e >> 1) (+16 j,
// +32 kc), the order P' was written in (the score accumulator's own).
// - ldmatrix: one ldmatrix.x4.trans per 16-token step 2 kc + j: matrix i
//   (lanes 8 i .. 8 i + 7 give its token rows) is m-block 2 grp + i / 2,
//   tokens 8 (i % 2) + 0..7; the b16 transpose leaves a thread tokens
//   2 quad, 2 quad + 1 (and + 8, + 9 in the next matrix) of its channel
//   pair, and one byte permute per fragment register splits the pair. Each
//   matrix's 8 rows (16 bytes each) fall in different banks by the swizzle.
// - words: per 16 tokens and 4 channels a thread reads 4 words (4 tokens x
//   4 channels) and transposes them with byte permutes; the 8 lanes of a
//   row read 32 consecutive bytes, and the 4 rows' swizzle phases put the
//   4 such pieces in different banks.
__device__ __forceinline__ void load_vt_quarter(const unsigned char *k_lat, unsigned (&lo)[4], unsigned (&hi)[4],
                                                int wg, int warp, int lane, int grp, int kc)
{
    if constexpr (VT_LDMATRIX) {
        const int mat = lane / 8;
        const int c0 = channel_of(wg, warp, 0, 2 * grp + mat / 2, 0);   // the matrix's 16 channels
        const unsigned char *row =
            k_lat + (c0 / 128) * LAT_BLOCK_BYTES + swizzled<128>(8 * (mat % 2) + lane % 8, c0 % 128);
#pragma unroll
        for (int j = 0; j < 2; ++j) {   // 16-token steps kk = 2 kc + j (the swizzle phase repeats every 8 rows)
            unsigned x[4];
            ldmatrix_x4_trans<true>(x, row + (2 * kc + j) * 16 * 128);
            lo[2 * j] = __byte_perm(x[0], x[1], 0x6420);       // even channel
            lo[2 * j + 1] = __byte_perm(x[0], x[1], 0x7531);   // odd channel
            hi[2 * j] = __byte_perm(x[2], x[3], 0x6420);
            hi[2 * j + 1] = __byte_perm(x[2], x[3], 0x7531);
        }
    } else {
        int at[4];
        const unsigned char *block = vt_group_block(k_lat, at, wg, warp, lane, grp);
#pragma unroll
        for (int j = 0; j < 2; ++j) {   // 16-token steps kk = 2 kc + j
            unsigned l[2], h[2];
            load_vt_step(block, at, 2 * kc + j, l, h);
            lo[2 * j] = l[0], lo[2 * j + 1] = l[1];
            hi[2 * j] = h[0], hi[2 * j + 1] = h[1];
        }
    }
}

// Every group's quarter of the 32-token half kc: a[mb] (load_vt_quarter's).
__device__ __forceinline__ void load_vt_chunk(const unsigned char *k_lat, unsigned (&a)[MBLOCKS][4], int wg,
                                              int warp, int lane, int kc)
{
#pragma unroll
    for (int grp = 0; grp < GROUPS; ++grp)
        load_vt_quarter(k_lat, a[2 * grp], a[2 * grp + 1], wg, warp, lane, grp, kc);
}

// Both 32-token halves: a[mb][kc] as load_vt_chunk's kc.
__device__ __forceinline__ void load_vt_fragments(const unsigned char *k_lat, unsigned (&a)[MBLOCKS][2][4],
                                                  int wg, int warp, int lane)
{
#pragma unroll
    for (int kc = 0; kc < 2; ++kc) {
        unsigned chunk[MBLOCKS][4];
        load_vt_chunk(k_lat, chunk, wg, warp, lane, kc);
#pragma unroll
        for (int mb = 0; mb < MBLOCKS; ++mb)
#pragma unroll
            for (int i = 0; i < 4; ++i)
                a[mb][kc][i] = chunk[mb][i];
    }
}

// An m64n64 accumulator times per-column factors f (columns 8 j + 2 quad
// + {0, 1}: this thread's, load_column_pairs' order): a score tile times its
// tokens' scales, or a block of O^T times its query rows' factors.
__device__ __forceinline__ void scale_columns(float (&acc)[32], const float (&f)[16])
{
#pragma unroll
    for (int i = 0; i < 32; ++i)
        acc[i] *= f[2 * (i / 4) + i % 2];
}

// The RoPE part of a score tile (BF16 wgmma) added to s, retired at once.
__device__ __forceinline__ void add_rope_scores(float (&s)[32], unsigned long long q_rope_desc,
                                                unsigned long long k_rope_desc)
{
    wgmma_fence();
    issue_rope_scores(s, q_rope_desc, k_rope_desc);
    wgmma_commit();
    wgmma_wait<0>();
    fence_registers(s);
}

// Four neighbouring output columns (c a multiple of 4) of one row, as
// store_output_pair's two: BF16 into out (one 8-byte store) when direct,
// else this split's fp32 partial (store_partial_quad).
__device__ __forceinline__ void store_output_quad(const DecodeParams &p, int b, int split, int row, int c, float4 x,
                                                  bool direct)
{
    if (direct)
        *(uint2 *)(p.out + ((long long)b * ROWS + row) * LATENT + c) = make_uint2(bf16x2(x.x, x.y), bf16x2(x.z, x.w));
    else
        store_partial_quad(p, b, split, row, c, x);
}

// A work item's output from this warpgroup's O^T (channels of warpgroup
// wg, channel_of) and the final row state: O / (r l) per query row, as
// BF16 (direct: through the output stage when OUT_STAGED, else straight
// into out) or as fp32 partials (several splits). The seesaw on
// fp8_per_tile128: each channel group's r.
__device__ __forceinline__ void write_output(const DecodeParams &p, const float (&o)[MBLOCKS][32],
                                             const float *final_state, bool have_state, unsigned char *stage,
                                             int wg, int warp, int lane, int b, int split, int row0, bool direct)
{
    constexpr int WG_SCALE_GROUPS = P_GROUPS > 1 ? GROUPS : 1;   // scale groups of a warpgroup's channels
    // (ldmatrix: opaque to ptxas, else it computes the channels before the
    // tile loop and spills them across it)
    if constexpr (VT_LDMATRIX)
        asm volatile("" : "+r"(lane));
    const int quad = lane % 4;
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
            const int n_row = 8 * j + 2 * quad + e, row = row0 + n_row;
            if (row >= ROWS && !(direct && OUT_STAGED))
                continue;
            const float l = have_state ? final_state[ST_SUM + n_row] : 0.f;
            float inv_of[WG_SCALE_GROUPS];
#pragma unroll
            for (int sg = 0; sg < WG_SCALE_GROUPS; ++sg)
                inv_of[sg] = l > 0.f ? 1.f / (l * final_state[ST_R + 64 * scale_group_of(wg, sg) + n_row]) : 0.f;
            if constexpr (VT_LDMATRIX) {
#pragma unroll
                for (int mb = 0; mb < MBLOCKS; ++mb) {   // this row's channel pair c, c + 1 of each m-block
                    const float inv = inv_of[WG_SCALE_GROUPS == 1 ? 0 : mb / 2];
                    const int c = channel_of(wg, warp, lane, mb, 0);
                    const float x0 = o[mb][4 * j + e] * inv, x1 = o[mb][4 * j + 2 + e] * inv;
                    if (direct && OUT_STAGED)
                        *(unsigned *)(stage + out_stage_offset(n_row, c)) = bf16x2(x0, x1);
                    else
                        store_output_pair(p, b, split, row, c, x0, x1, direct);
                }
            } else {
#pragma unroll
                for (int grp = 0; grp < GROUPS; ++grp) {
                    const float inv = inv_of[WG_SCALE_GROUPS == 1 ? 0 : grp];
                    const int c = channel_of(wg, warp, lane, 2 * grp, 0);   // channels c .. c+3
                    const float *lo = o[2 * grp], *hi = o[2 * grp + 1];
                    const float4 x = make_float4(lo[4 * j + e] * inv, lo[4 * j + 2 + e] * inv,
                                                 hi[4 * j + e] * inv, hi[4 * j + 2 + e] * inv);
                    store_output_quad(p, b, split, row, c, x, direct);
                }
            }
        }
}

// Stores this thread's P' fragments (rows 16 warp + lane/4 + 8h, k 32 kc +
// 16 j + 4 quad) where the B descriptor of wgmma_pvt_fp8 reads them.
__device__ __forceinline__ void store_p(unsigned char *pbuf, const unsigned (&pa)[2][4], int warp, int lane)
{
    unsigned char *base = pbuf + 2 * warp * P_SBO + (lane / 4) * 16 + 4 * (lane % 4);
#pragma unroll
    for (int kc = 0; kc < 2; ++kc)
#pragma unroll
        for (int i = 0; i < 4; ++i)   // i = 2 j + h
            *(unsigned *)(base + (i % 2) * P_SBO + (2 * kc + i / 2) * P_LBO) = pa[kc][i];
}

// row_exponentials, with s becoming e times V's per-token scale when FUSE
// (scale fusion: V's scale into P).
template <bool FUSE>
__device__ __forceinline__ void exponentials(float (&s)[32], const float (&scale_log2)[2], const float (&offset)[2],
                                             const float (&token_scale)[16], float (&part_sum)[4])
{
    row_exponentials(s, scale_log2, offset, part_sum,
                     [&](int i, float e) { return FUSE ? e * token_scale[2 * (i / 4) + i % 2] : e; });
}

}  // namespace snapmla
