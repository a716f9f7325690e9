// ---- mla_decode, Hopper FP8 path (wgmma e4m3, sm_90a) ----------------------
//
// Schedule. Grid (row blocks of 64, splits, batch); 256 threads: two
// warpgroups WG0, WG1. A CTA owns 64 query rows (q_heads x q_len, padded) of
// one request and a contiguous range of its 64-token KV tiles.
//
//   prologue  Q latent -> e4m3 with one scale per row (amax / 448), Q RoPE
//             kept BF16, both into swizzled smem (K-major, as wgmma reads it)
//             cp.async KV tiles 0..STAGES-2: raw e4m3 latent, BF16 RoPE and
//             fp32 per-token scales, straight into swizzled smem
//   per tile  wait for tile k; fence to the async proxy; barrier
//     QK      WG w: S_w = Q[:, half w] K[:, half w]^T     wgmma m64n64k32 e4m3
//             S_w *= q_scale[row] * k_scale[token]         (per-token K scale on columns)
//             WG1:  S_1 += Q_rope K_rope^T                  wgmma m64n64k16 bf16
//             S = S_0 + S_1 through smem (in the V^T buffers; two barriers of
//             both warpgroups). Half the tensor work of each computing all of
//             S, and the two fp32 partial sums halve the error of the tensor
//             cores' reduced-precision accumulation (docs/perf.md)
//     softmax running max, P = exp2(scale_log2 (S - m)), per-thread partial
//             row sums; the mask only on the range's last tile or a causal edge
//     P'      P * v_scale[token] (scale fusion: V's per-token scale lies along
//             the reduction, so it goes into P), times a per-row r that keeps
//             the largest P' in [28, 448], to e4m3
//             O *= alpha * r_new / r_old (skipped by a warp where all are 1)
//     V^T     WG w transposes its 64 x LATENT/2 e4m3 half of the tile into
//             smem with tokens contiguous (e4m3 wgmma takes B K-major only),
//             in the token order the P' registers already have
//     PV      O_w += P' V_w^T                              wgmma m64n(LATENT/2)k32 e4m3,
//             left running: the next tile's QK wait retires it
//   (the copies of tile k+STAGES-1 are issued right after the QK product of
//    tile k starts, into the slot tile k-1 left)
//   epilogue  one split: out = O / (r l) (BF16), lse; several: fp32 partials
//
// Tokens past the range are zero-filled (codes and scales) and their scores
// set to -inf; rows past ROWS are zeros and are not stored.

namespace snapmla {

static_assert(Q_TILE == 64 && KV_TILE == 64 && THREADS == 256, "two warpgroups on 64 x 64");
static_assert(FORMAT == FORMAT_FP8_PER_TOKEN, "the FP8 path reads the per-token cache");
static_assert(LATENT % 256 == 0 && (ROPE == 32 || ROPE == 64 || ROPE == 128), "wgmma blocks");

constexpr int HALF = LATENT / 2;                      // channels per warpgroup
constexpr int LAT_BLOCK_BYTES = 64 * 128;             // 64 rows x 128 e4m3 channels
constexpr int ROPE_ROW = ROPE * 2;                    // bytes of one row's RoPE
constexpr int ROPE_SW = ROPE_ROW >= 128 ? 128 : ROPE_ROW;   // its swizzle width
constexpr int ROPE_BLOCK_BYTES = 64 * ROPE_SW;
constexpr int ROPE_BLOCKS = ROPE_ROW / ROPE_SW;
constexpr int ROPE_MODE = ROPE_SW == 128 ? 1 : ROPE_SW == 64 ? 2 : 3;  // descriptor swizzle code
// V^T: core matrices of 8 channels x 16 tokens (128 bytes) padded to 144 so
// that the transposing stores of a warp fall in 32 different banks.
constexpr int VT_SBO = 144;                           // next 8 channels
constexpr int VT_LBO = (HALF / 8) * VT_SBO;           // next 16 tokens
constexpr int VT_BYTES = (KV_TILE / 16) * VT_LBO;
constexpr int XCHG_FLOATS = 32 * 128;                 // one warpgroup's partial scores
// each warpgroup's V^T buffer, which first carries its partial scores
constexpr int VT_SLOT = VT_BYTES > XCHG_FLOATS * 4 ? VT_BYTES : XCHG_FLOATS * 4;
__host__ __device__ constexpr int round_up_1024(int x) { return (x + 1023) / 1024 * 1024; }
constexpr int Q_BYTES = round_up_1024(64 * (LATENT + ROPE_ROW) + 64 * 4);
constexpr int STAGE_BYTES = round_up_1024(KV_TILE * (LATENT + ROPE_ROW) + KV_TILE * 4);
constexpr int LAT_CHUNKS = LATENT / 16, ROPE_CHUNKS = ROPE_ROW / 16;
constexpr int TOKEN_CHUNKS = LAT_CHUNKS + ROPE_CHUNKS;

// Offset of byte `byte` of row `row` in a tile of ROW_BYTES-wide rows under
// the matching wgmma swizzle (128, 64 or 32 bytes): the row's 16-byte chunks
// are XORed with its phase, so 8 consecutive rows hit different banks.
template <int ROW_BYTES> __device__ __forceinline__ int swizzled(int row, int byte)
{
    constexpr int CHUNKS = ROW_BYTES / 16;
    const int phase = (row * ROW_BYTES / 128) & (CHUNKS - 1);
    return row * ROW_BYTES + (((byte >> 4) ^ phase) << 4) + (byte & 15);
}

__device__ __forceinline__ int latent_offset(int row, int channel)
{
    return (channel / 128) * LAT_BLOCK_BYTES + swizzled<128>(row, channel % 128);
}

__device__ __forceinline__ int rope_offset(int row, int byte)
{
    return (byte / ROPE_SW) * ROPE_BLOCK_BYTES + swizzled<ROPE_SW>(row, byte % ROPE_SW);
}

// Four floats -> four e4m3 codes, a in the lowest byte (RNE, saturating).
__device__ __forceinline__ unsigned e4m3x4(float a, float b, float c, float d)
{
    unsigned short lo, hi;
    asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(lo) : "f"(b), "f"(a));
    asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(hi) : "f"(d), "f"(c));
    return (unsigned)lo | ((unsigned)hi << 16);
}

// 2^x in one MUFU op (denormal results flush to 0, -inf gives 0).
__device__ __forceinline__ float fast_exp2(float x)
{
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

// The largest of this thread's 16 scores of row half h (accumulator
// elements i with (i / 2) % 2 == h), as a tree: 4 dependent steps, not 15.
__device__ __forceinline__ float max_of_row(const float (&s)[32], int h)
{
    float m[8];
#pragma unroll
    for (int j = 0; j < 8; ++j)
        m[j] = fmaxf(s[4 * j + 2 * h], s[4 * j + 2 * h + 1]);
#pragma unroll
    for (int w = 4; w > 0; w /= 2)
#pragma unroll
        for (int j = 0; j < w; ++j)
            m[j] = fmaxf(m[j], m[j + w]);
    return m[0];
}

// The CTA's 64 query rows: latent -> e4m3 with one scale per row, RoPE as
// BF16, into swizzled smem. Four threads per row; rows past ROWS are zeros.
__device__ __forceinline__ void load_q_fp8(const DecodeParams &p, int b, int row0,
                                           unsigned char *q_lat, unsigned char *q_rope, float *q_scale)
{
    constexpr int PART = LATENT / 4;   // latent channels per thread
    const int r = threadIdx.x / 4, part = threadIdx.x % 4;
    const bool valid = row0 + r < ROWS;
    const bf16_t *src = p.q + ((long long)b * ROWS + (valid ? row0 + r : 0)) * WIDTH;
    float amax = 0.f;
    if (valid)
        for (int c = part * PART; c < (part + 1) * PART; c += 8) {
            const uint4 v = *(const uint4 *)(src + c);
            const unsigned w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
            for (int i = 0; i < 4; ++i)
                amax = fmaxf(amax, fmaxf(fabsf(bf16_lo(w[i])), fabsf(bf16_hi(w[i]))));
        }
    amax = quad_max(amax);   // the row's four threads are one quad
    const float scale = fp8_scale(amax, false), inv = 1.f / scale;
    if (part == 0)
        q_scale[r] = scale;
    for (int c = part * PART; c < (part + 1) * PART; c += 8) {
        uint2 codes = make_uint2(0, 0);
        if (valid) {
            const uint4 v = *(const uint4 *)(src + c);
            codes.x = e4m3x4(bf16_lo(v.x) * inv, bf16_hi(v.x) * inv, bf16_lo(v.y) * inv, bf16_hi(v.y) * inv);
            codes.y = e4m3x4(bf16_lo(v.z) * inv, bf16_hi(v.z) * inv, bf16_lo(v.w) * inv, bf16_hi(v.w) * inv);
        }
        *(uint2 *)(q_lat + latent_offset(r, c)) = codes;
    }
    for (int piece = part; piece < ROPE_CHUNKS; piece += 4) {
        const uint4 v = valid ? *(const uint4 *)(src + LATENT + piece * 8) : make_uint4(0, 0, 0, 0);
        *(uint4 *)(q_rope + rope_offset(r, piece * 16)) = v;
    }
}

// Where this thread's token of KV tile `tile` lives: the byte offset of its
// page, or -1 past the range. Loaded one tile ahead of its copy, so the
// block-table read never stalls the issue of the copies.
__device__ __forceinline__ long long token_page(const DecodeParams &p, const KvRange &r, int tile)
{
    const int t = r.t_begin + tile * KV_TILE + threadIdx.x / 4;
    if (tile >= r.tiles || t >= r.t_end)
        return -1;
    return (long long)r.table[t / PAGE_SIZE] * p.page_stride;
}

// Starts the copy of KV tile `tile` into ring slot tile % STAGES and closes
// the cp.async group (an empty one past the range, keeping the count). Four
// threads per token, neighbours on neighbouring 16-byte chunks; tokens past
// the range are zero-filled (codes and scale).
__device__ __forceinline__ void issue_fp8_tile(const DecodeParams &p, const KvRange &r,
                                               unsigned char *ring, int tile, long long page)
{
    static_assert(THREADS == 4 * KV_TILE && TOKEN_CHUNKS % 4 == 0, "four threads per token");
    if (tile < r.tiles) {
        unsigned char *k_lat = ring + (tile % STAGES) * STAGE_BYTES;
        unsigned char *k_rope = k_lat + KV_TILE * LATENT;
        float *k_scale = (float *)(k_rope + KV_TILE * ROPE_ROW);
        const int j = threadIdx.x / 4, part = threadIdx.x % 4;
        const int t = r.t_begin + tile * KV_TILE + j;
        const bool valid = page >= 0;
        const unsigned char *base = p.cache + (valid ? page : 0);
        const long long slot = valid ? t % PAGE_SIZE : 0;
        const int size = valid ? 16 : 0;
#pragma unroll
        for (int i = 0; i < TOKEN_CHUNKS / 4; ++i) {
            const int c = part + 4 * i;
            if (c < LAT_CHUNKS) {
                cp_async_16(k_lat + latent_offset(j, c * 16), base + slot * LATENT + c * 16, size);
            } else {
                const int byte = (c - LAT_CHUNKS) * 16;
                cp_async_16(k_rope + rope_offset(j, byte),
                            base + (long long)PAGE_SIZE * LATENT + slot * ROPE_ROW + byte, size);
            }
        }
        if (part == 0)
            cp_async_4(k_scale + j, base + (long long)PAGE_SIZE * (LATENT + ROPE_ROW) + slot * 4,
                       valid ? 4 : 0);
    }
    cp_async_commit();
}

// This warpgroup's LATENT/2 channels of the e4m3 tile, transposed into V^T
// (tokens contiguous). P' holds, at k positions 4q..4q+3 of each 16, the
// tokens 2q, 2q+1, 2q+8, 2q+9 (the score accumulator's own order), so V^T
// stores its tokens in that order. A warp step covers 32 channels x 16
// tokens: lane (cm, g, tq) reads 4 words (4 tokens x 4 channels), transposes
// them with byte permutes and writes 4 words (4 channels x 4 tokens).
__device__ __forceinline__ void transpose_v(const unsigned char *k_lat, unsigned char *vt, int wg,
                                            int warp, int lane)
{
    constexpr int GROUPS = HALF / 32;
    const int tq = lane % 4, g = (lane / 4) % 2, cm = lane / 8;
#pragma unroll 2
    for (int step = warp; step < GROUPS * (KV_TILE / 16); step += 4) {
        const int block16 = step / GROUPS;
        const int c_local = (step % GROUPS) * 32 + cm * 8 + 4 * g;
        const int channel = wg * HALF + c_local;
        const int token = block16 * 16 + 2 * tq;
        const unsigned char *src = k_lat + (channel / 128) * LAT_BLOCK_BYTES;
        const int byte = channel % 128;
        const unsigned w0 = *(const unsigned *)(src + swizzled<128>(token, byte));
        const unsigned w1 = *(const unsigned *)(src + swizzled<128>(token + 1, byte));
        const unsigned w2 = *(const unsigned *)(src + swizzled<128>(token + 8, byte));
        const unsigned w3 = *(const unsigned *)(src + swizzled<128>(token + 9, byte));
        const unsigned lo01 = __byte_perm(w0, w1, 0x5140), lo23 = __byte_perm(w2, w3, 0x5140);
        const unsigned hi01 = __byte_perm(w0, w1, 0x7362), hi23 = __byte_perm(w2, w3, 0x7362);
        unsigned char *dst = vt + block16 * VT_LBO + (c_local / 8) * VT_SBO + (c_local % 8) * 16 + 4 * tq;
        *(unsigned *)(dst + 0) = __byte_perm(lo01, lo23, 0x5410);
        *(unsigned *)(dst + 16) = __byte_perm(lo01, lo23, 0x7632);
        *(unsigned *)(dst + 32) = __byte_perm(hi01, hi23, 0x5410);
        *(unsigned *)(dst + 48) = __byte_perm(hi01, hi23, 0x7632);
    }
}

extern "C" __global__ void __launch_bounds__(THREADS, 1)
snapmla_decode_split(const DecodeParams p)
{
    extern __shared__ __align__(16) unsigned char smem_raw[];
    // The 128-byte swizzle repeats every 1024 bytes: align the layout to it.
    unsigned char *smem = smem_raw + ((1024u - (smem_address(smem_raw) & 1023u)) & 1023u);
    unsigned char *q_lat = smem;                                // [LATENT/128][64][128] e4m3
    unsigned char *q_rope = q_lat + 64 * LATENT;                // [ROPE_BLOCKS][64][ROPE_SW] bf16
    float *q_scale = (float *)(q_rope + 64 * ROPE_ROW);         // [64]
    unsigned char *ring = smem + Q_BYTES;                       // [STAGES][STAGE_BYTES]
    // [2][VT_SLOT]: each warpgroup's V^T, which first carries its partial
    // scores to the other warpgroup ([32][128] floats)
    unsigned char *vt_all = ring + STAGES * STAGE_BYTES;
    check_smem_layout(smem_raw, vt_all + 2 * VT_SLOT);

    const int b = blockIdx.z, split = blockIdx.y, row0 = blockIdx.x * Q_TILE;
    const int tid = threadIdx.x, wg = tid / 128, wt = tid % 128;
    const int warp = wt / 32, lane = tid % 32, quad = lane % 4;
    const KvRange range = kv_range(p, b, split);
    if (split >= range.splits)
        return;
    const int n = range.n, t_end = range.t_end, tiles = range.tiles;

    load_q_fp8(p, b, row0, q_lat, q_rope, q_scale);
    for (int k = 0; k < STAGES - 1; ++k)
        issue_fp8_tile(p, range, ring, k, token_page(p, range, k));
    long long next_page = token_page(p, range, STAGES - 1);
    __syncthreads();

    // This thread's two rows of the tile (accumulator layout): 16*warp + lane/4, and + 8.
    const int my_row[2] = {16 * warp + lane / 4, 16 * warp + lane / 4 + 8};
    float q_scale_of[2];
    int visible_end[2];   // first token each row may not see
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        q_scale_of[h] = q_scale[my_row[h]];
        visible_end[h] = t_end;
        if (CAUSAL)
            visible_end[h] = min(t_end, n - Q_LEN + (row0 + my_row[h]) / Q_HEADS + 1);
    }
    const float scale_log2 = p.softmax_scale * 1.4426950408889634f;
    float row_max[2] = {-inf_f32(), -inf_f32()};   // of the unscaled scores
    float row_sum[2] = {0.f, 0.f};                 // over this thread's columns
    float row_r[2] = {1.f, 1.f};                   // P's current e4m3 factor
    float o[HALF / 2];
#pragma unroll
    for (int i = 0; i < HALF / 2; ++i)
        o[i] = 0.f;
    unsigned char *vt = vt_all + wg * VT_SLOT;
    float *mine = (float *)vt;
    const float *theirs = (const float *)(vt_all + (1 - wg) * VT_SLOT);
    // Tiles that end before this token need no mask (the causal edge of
    // the earliest query token, or the range's end).
    const int full_end = CAUSAL ? min(t_end, n - Q_LEN + 1) : t_end;

    // With two or more stages the next copies are issued under the QK
    // product; with one, before the wait.
    constexpr bool EARLY = STAGES >= 2;
    for (int k = 0; k < tiles; ++k) {
        if (!EARLY) {
            issue_fp8_tile(p, range, ring, k + STAGES - 1, next_page);
            next_page = token_page(p, range, k + STAGES);
        }
        cp_async_wait<EARLY ? STAGES - 2 : 0>();
        fence_async_smem();
        __syncthreads();   // tile k landed; everyone is past tile k-1's QK reads
        const unsigned char *k_lat = ring + (k % STAGES) * STAGE_BYTES;
        const unsigned char *k_rope = k_lat + KV_TILE * LATENT;
        const float *k_scale = (const float *)(k_rope + KV_TILE * ROPE_ROW);
        const int t0 = range.t_begin + k * KV_TILE;

        // ---- S_w = Q K^T over this warpgroup's latent half (e4m3) ----
        float s[32];
#pragma unroll
        for (int i = 0; i < 32; ++i)
            s[i] = 0.f;
        wgmma_fence();
#pragma unroll
        for (int kb = 0; kb < HALF / 128; ++kb) {
            const int block = wg * (HALF / 128) + kb;
#pragma unroll
            for (int ks = 0; ks < 4; ++ks)
                wgmma_qk_fp8(s, smem_desc(q_lat + block * LAT_BLOCK_BYTES + ks * 32, 16, 1024, 1),
                             smem_desc(k_lat + block * LAT_BLOCK_BYTES + ks * 32, 16, 1024, 1), 1);
        }
        wgmma_commit();
        if (EARLY) {
            issue_fp8_tile(p, range, ring, k + STAGES - 1, next_page);
            next_page = token_page(p, range, k + STAGES);
        }
        wgmma_wait<0>();   // also the previous tile's PV: O and V^T are free
        fence_registers(s);
        fence_registers(o);

        // Per-token K scale on the columns, per-row Q scale on the rows.
        float token_scale[16];   // columns 8j + 2*quad + {0, 1}
#pragma unroll
        for (int j = 0; j < 8; ++j) {
            const float2 v = *(const float2 *)(k_scale + 8 * j + 2 * quad);
            token_scale[2 * j] = v.x;
            token_scale[2 * j + 1] = v.y;
        }
#pragma unroll
        for (int i = 0; i < 32; ++i)
            s[i] *= q_scale_of[(i / 2) % 2] * token_scale[2 * (i / 4) + i % 2];

        if (wg == 1) {   // the RoPE part, BF16
            wgmma_fence();
#pragma unroll
            for (int rb = 0; rb < ROPE_BLOCKS; ++rb)
#pragma unroll
                for (int ks = 0; ks < ROPE_SW / 32; ++ks)
                    wgmma_qk_bf16(s, smem_desc(q_rope + rb * ROPE_BLOCK_BYTES + ks * 32, 16, 8 * ROPE_SW, ROPE_MODE),
                                  smem_desc(k_rope + rb * ROPE_BLOCK_BYTES + ks * 32, 16, 8 * ROPE_SW, ROPE_MODE), 1);
            wgmma_commit();
            wgmma_wait<0>();
            fence_registers(s);
        }

        // ---- S = S_0 + S_1: two fp32 partial sums of 256 channels each, which
        // also keeps the tensor cores' reduced-precision accumulation short ----
#pragma unroll
        for (int i = 0; i < 32; ++i)
            mine[i * 128 + wt] = s[i];
        named_barrier(1, 256);
#pragma unroll
        for (int i = 0; i < 32; ++i)
            s[i] += theirs[i * 128 + wt];
        named_barrier(1, 256);   // both read: the buffers become V^T again

        // ---- online softmax (scores unscaled; exp2 of scale_log2 * (s - m)) ----
        if (t0 + KV_TILE > full_end) {   // the range's last tile, or a causal edge: mask
#pragma unroll
            for (int i = 0; i < 32; ++i) {
                const int h = (i / 2) % 2, t = t0 + 8 * (i / 4) + 2 * quad + i % 2;
                s[i] = t < visible_end[h] ? s[i] : -inf_f32();
            }
        }
        float tile_max[2];
#pragma unroll
        for (int h = 0; h < 2; ++h)
            tile_max[h] = max_of_row(s, h);
        float alpha[2], m_scaled[2];
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const float m_new = fmaxf(row_max[h], quad_max(tile_max[h]));
            alpha[h] = row_max[h] == -inf_f32() ? 1.f : fast_exp2((row_max[h] - m_new) * scale_log2);
            row_max[h] = m_new;
            // a row that sees nothing: P = exp2(-inf) = 0
            m_scaled[h] = m_new == -inf_f32() ? 0.f : m_new * scale_log2;
            row_sum[h] *= alpha[h];
        }
        float part_sum[4] = {0.f, 0.f, 0.f, 0.f};   // two chains per row half
#pragma unroll
        for (int i = 0; i < 32; ++i) {
            const int h = (i / 2) % 2;
            const float e = fast_exp2(fmaf(s[i], scale_log2, -m_scaled[h]));
            part_sum[2 * h + (i / 4) % 2] += e;
            s[i] = e * token_scale[2 * (i / 4) + i % 2];   // scale fusion
        }
        float p_max[2];
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            row_sum[h] += part_sum[2 * h] + part_sum[2 * h + 1];
            p_max[h] = fmaxf(max_of_row(s, h), 0.f);
        }
        float factor[2];
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const float m = quad_max(p_max[h]);
            // e4m3 tops out at 448. P's factor r is kept while the tile's
            // largest P' = P r stays in [28, 448] (e4m3's relative precision is
            // the same across its normal range), else reset to 448 / max; so
            // O's rescale is mostly alpha alone, and mostly 1. r stays under
            // 2^100 so that the ratio is finite.
            float r_new = row_r[h];
            if (m > 0.f && (m * r_new > 448.f || m * r_new < 28.f))
                r_new = fminf(__fdividef(448.f, m), 1.2676506e30f);
            factor[h] = r_new == row_r[h] ? alpha[h] : alpha[h] * __fdividef(r_new, row_r[h]);
            row_r[h] = r_new;
        }

        // P' as the e4m3 A fragments of two k32 steps (the accumulator order)
        unsigned pa[2][4];
#pragma unroll
        for (int kc = 0; kc < 2; ++kc) {
            const float *x = s + 16 * kc;
            const float r0 = row_r[0], r1 = row_r[1];
            pa[kc][0] = e4m3x4(x[0] * r0, x[1] * r0, x[4] * r0, x[5] * r0);
            pa[kc][1] = e4m3x4(x[2] * r1, x[3] * r1, x[6] * r1, x[7] * r1);
            pa[kc][2] = e4m3x4(x[8] * r0, x[9] * r0, x[12] * r0, x[13] * r0);
            pa[kc][3] = e4m3x4(x[10] * r1, x[11] * r1, x[14] * r1, x[15] * r1);
        }
        if (__any_sync(0xffffffffu, factor[0] != 1.f || factor[1] != 1.f)) {   // warp-uniform
#pragma unroll
            for (int i = 0; i < HALF / 2; ++i)
                o[i] *= factor[(i / 2) % 2];
        }

        // ---- V^T, then O += P' V ----
        transpose_v(k_lat, vt, wg, warp, lane);
        fence_async_smem();
        named_barrier(2 + wg, 128);
        wgmma_fence();
#pragma unroll
        for (int kc = 0; kc < 2; ++kc)
            wgmma_pv_fp8(o, pa[kc], smem_desc(vt + 2 * kc * VT_LBO, VT_LBO, VT_SBO, 0), 1);
        wgmma_commit();   // completes under the next tile's copies and QK
    }
    wgmma_wait<0>();
    fence_registers(o);
    cp_async_wait<0>();

    const bool direct = range.splits == 1;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const float l = quad_sum(row_sum[h]);
        const int row = row0 + my_row[h];
        if (row >= ROWS)
            continue;
        const float inv = l > 0.f ? 1.f / (l * row_r[h]) : 0.f;
        const long long row_index = (long long)b * ROWS + row;
#pragma unroll
        for (int j = 0; j < HALF / 8; ++j) {
            const int c = wg * HALF + 8 * j + 2 * quad;
            store_output_pair(p, b, split, row, c, o[4 * j + 2 * h] * inv, o[4 * j + 2 * h + 1] * inv,
                              direct);
        }
        if (wg == 0 && quad == 0) {
            const float lse = l > 0.f ? row_max[h] * p.softmax_scale + logf(l) : 0.f;
            if (direct)
                p.lse[row_index] = l > 0.f ? lse : inf_f32();
            else
                p.lse_part[((long long)b * p.num_splits + split) * ROWS + row] = l > 0.f ? lse : -inf_f32();
        }
    }
}

}  // namespace snapmla
