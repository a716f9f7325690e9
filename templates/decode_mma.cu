// ---- mla_decode, tensor-core path (mma.sync, sm_80+) ------------------------
//
// Schedule. Grid (row blocks, splits, batch). A CTA owns Q_TILE query rows of
// one request and a contiguous range of its KV tiles; 2 warps per 16 rows:
// warp w takes rows 16*(w % ROW_WARPS).. and output columns half (w / ROW_WARPS)
// of the LATENT, so the 16 x LATENT fp32 output accumulator is split in two
// (LATENT/2 * 16 / 32 floats per thread). The two warps of a row block split
// the QK reduction instead: one takes the first half of the latent channels,
// the other the second half and the RoPE part; each adds its partner's
// partial scores, exchanged through shared memory under a pair barrier.
//
//   prologue   Q rows -> smem; cp.async KV tiles 0..STAGES-2 (all threads)
//   per tile   cp.async tile k+STAGES-1; wait for tile k; barrier
//              S  = Q K^T        mma m16n8k16, A = Q (ldmatrix), B = K rows (ldmatrix),
//                                half the channels per warp, partials summed
//                 (fp8_per_token: the latent part times each token's scale,
//                  then the RoPE part added)
//              online softmax on the S fragments in registers (quad shuffles)
//              O += P V          A = P from the S fragments (bf16x2), B = V
//                                rows (ldmatrix.trans), P times V's per-token
//                                scale for fp8_per_token (scale fusion)
//              barrier (the ring slot may now be refilled)
//   epilogue   one split: out = O / l (BF16), lse; several: fp32 partials
//
// Tokens past the range are zero-filled and their scores set to -inf.

namespace snapmla {

constexpr int ROW_WARPS = Q_TILE / 16;
constexpr int HALF = LATENT / 2;            // output columns per warp
constexpr int S_TILES = KV_TILE / 8;        // n-tiles of the score tile
constexpr int O_TILES = HALF / 8;           // n-tiles of a warp's output
static_assert(Q_TILE % 16 == 0 && WARPS == 2 * ROW_WARPS, "2 warps per 16 rows");
static_assert(KV_TILE % 16 == 0 && LATENT % 32 == 0 && ROPE % 16 == 0, "mma shapes");

// D = A B + D, m16n8k16, BF16 in, fp32 accumulate.
__device__ __forceinline__ void mma_bf16(float (&d)[4], const unsigned (&a)[4], unsigned b0,
                                         unsigned b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ unsigned pack_bf16(float lo, float hi)
{
    unsigned r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}

// S[16 x KV_TILE] += Q[16, k0..k1) K[.., k0..k1)^T for this warp's rows.
__device__ __forceinline__ void qk_steps(float (&s)[S_TILES][4], const bf16_t *q, const bf16_t *kv,
                                         int lane, int k0, int k1)
{
    for (int k = k0; k < k1; k += 16) {
        unsigned a[4];
        ldmatrix_x4(a, q + (lane % 16) * KV_STRIDE + k + (lane / 16) * 8);
#pragma unroll
        for (int n = 0; n < S_TILES; n += 2) {
            unsigned b[4];
            ldmatrix_x4(b, kv + (n * 8 + lane % 8 + (lane / 16) * 8) * KV_STRIDE + k +
                               ((lane / 8) % 2) * 8);
            mma_bf16(s[n], a, b[0], b[1]);
            mma_bf16(s[n + 1], a, b[2], b[3]);
        }
    }
}

// FP8 caches on this engine: the raw bytes stream through a cp.async ring
// (latency hidden like BF16 rows), and each tile is converted to one BF16
// tile in shared memory just before its math.
constexpr bool STAGED = FORMAT != FORMAT_BF16;
constexpr int KV_SLOTS = STAGED ? 1 : STAGES;   // BF16 tiles kept in shared memory
constexpr int RAW_TOKEN = FORMAT == FORMAT_FP8_PER_TOKEN ? LATENT + 2 * ROPE + 4 : TILE128_TOKEN_BYTES;
constexpr int RAW_STAGE = KV_TILE * RAW_TOKEN;  // per token: latent plane, rope plane, scales

__device__ __forceinline__ void issue_raw_tile(const DecodeParams &p, const KvRange &r,
                                               unsigned char *raw, int tile)
{
    if (tile < r.tiles) {
        unsigned char *dst = raw + (tile % STAGES) * RAW_STAGE;
        const int t0 = r.t_begin + tile * KV_TILE;
        constexpr int CHUNKS16 = FORMAT == FORMAT_FP8_PER_TOKEN ? (LATENT + 2 * ROPE) / 16
                                                                 : TILE128_TOKEN_BYTES / 16;
        for (int i = threadIdx.x; i < KV_TILE * CHUNKS16; i += THREADS) {
            int j = i / CHUNKS16, c = i % CHUNKS16, t = t0 + j;
            bool valid = t < r.t_end;
            const unsigned char *base = p.cache;
            long long slot = 0;
            if (valid) {
                base += (long long)r.table[t / PAGE_SIZE] * p.page_stride;
                slot = t % PAGE_SIZE;
            }
            const unsigned char *src;
            unsigned char *d;
            if (FORMAT == FORMAT_FP8_PER_TILE128) {
                d = dst + j * TILE128_TOKEN_BYTES + c * 16;
                src = base + slot * TILE128_TOKEN_BYTES + c * 16;
            } else if (c < LATENT / 16) {
                d = dst + j * LATENT + c * 16;
                src = base + slot * LATENT + c * 16;
            } else {
                int rc = c - LATENT / 16;
                d = dst + KV_TILE * LATENT + j * 2 * ROPE + rc * 16;
                src = base + (long long)PAGE_SIZE * LATENT + slot * 2 * ROPE + rc * 16;
            }
            cp_async_16(d, valid ? src : p.cache, valid ? 16 : 0);
        }
        if (FORMAT == FORMAT_FP8_PER_TOKEN)
            for (int j = threadIdx.x; j < KV_TILE; j += THREADS) {
                int t = t0 + j;
                bool valid = t < r.t_end;
                const unsigned char *src = p.cache;
                if (valid)
                    src += (long long)r.table[t / PAGE_SIZE] * p.page_stride +
                           (long long)PAGE_SIZE * (LATENT + 2 * ROPE) + (t % PAGE_SIZE) * 4;
                cp_async_4(dst + KV_TILE * (LATENT + 2 * ROPE) + j * 4, src, valid ? 4 : 0);
            }
    }
    cp_async_commit();
}

// One raw stage -> the BF16 tile (and, per token, the scales). Zero-filled
// tokens convert to zeros (scale 0 times code 0).
__device__ __forceinline__ void convert_raw_tile(const unsigned char *raw, bf16_t *tile,
                                                 float *token_scale)
{
    for (int i = threadIdx.x; i < KV_TILE * FP8_ITEMS; i += THREADS) {
        int j = i / FP8_ITEMS, item = i % FP8_ITEMS;
        bf16_t *row = tile + j * KV_STRIDE;
        const unsigned char *latent, *rope;
        float scale = 1.f;
        if (FORMAT == FORMAT_FP8_PER_TOKEN) {
            latent = raw + j * LATENT;
            rope = raw + KV_TILE * LATENT + j * 2 * ROPE;
            if (item == 0)
                token_scale[j] = *(const float *)(raw + KV_TILE * (LATENT + 2 * ROPE) + j * 4);
        } else {
            latent = raw + j * TILE128_TOKEN_BYTES;
            rope = latent + LATENT + 4 * (LATENT / 128);
            if (item < FP8_LATENT_ITEMS)
                scale = ((const float *)(latent + LATENT))[item * 16 / 128];
        }
        if (item < FP8_LATENT_ITEMS)
            convert16(*(const uint4 *)(latent + item * 16), scale, row + item * 16);
        else
            *(uint4 *)(row + LATENT + (item - FP8_LATENT_ITEMS) * 8) =
                *(const uint4 *)(rope + (item - FP8_LATENT_ITEMS) * 16);
    }
}

extern "C" __global__ void __launch_bounds__(THREADS, 1)
snapmla_decode_split(const DecodeParams p)
{
    extern __shared__ __align__(16) unsigned char smem[];
    bf16_t *sq = (bf16_t *)smem;                                   // [Q_TILE][KV_STRIDE]
    bf16_t *skv = sq + Q_TILE * KV_STRIDE;                         // [KV_SLOTS][KV_TILE][KV_STRIDE]
    float *kv_scale = (float *)(skv + KV_SLOTS * KV_TILE * KV_STRIDE); // [KV_SLOTS][KV_TILE], fp8_per_token
    // [ROW_WARPS][2][S_TILES * 4][32]: each warp's partial scores, lane-minor
    float *partial = kv_scale + (FORMAT == FORMAT_FP8_PER_TOKEN ? KV_SLOTS * KV_TILE : 0);
    unsigned char *raw = (unsigned char *)(partial + 2 * ROW_WARPS * S_TILES * 4 * 32); // FP8: [STAGES][RAW_STAGE]
    check_smem_layout(smem, raw + (STAGED ? STAGES * RAW_STAGE : 0));

    const int b = blockIdx.z, split = blockIdx.y, row0 = blockIdx.x * Q_TILE;
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int wrow = (warp % ROW_WARPS) * 16;      // first row of this warp in the tile
    const int half = warp / ROW_WARPS;             // which LATENT half this warp outputs
    const KvRange range = kv_range(p, b, split);
    if (split >= range.splits)
        return;
    const int n = range.n, t_begin = range.t_begin, t_end = range.t_end, tiles = range.tiles;

    load_q_rows(p, b, row0, sq, KV_STRIDE);

    // This thread's two rows of the warp's 16: lane/4 and lane/4 + 8.
    const int my_row[2] = {row0 + wrow + lane / 4, row0 + wrow + lane / 4 + 8};
    int visible_end[2];   // first token each row may not see
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        visible_end[h] = t_end;
        if (CAUSAL)
            visible_end[h] = min(t_end, n - Q_LEN + my_row[h] / Q_HEADS + 1);
    }
    float row_max[2] = {-inf_f32(), -inf_f32()}, row_sum[2] = {0.f, 0.f};
    float o[O_TILES][4];
#pragma unroll
    for (int j = 0; j < O_TILES; ++j)
        o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;

    for (int k = 0; k < STAGES - 1; ++k) {
        if constexpr (STAGED)
            issue_raw_tile(p, range, raw, k);
        else
            issue_tile(p, range, skv, kv_scale, k);
    }

    for (int k = 0; k < tiles; ++k) {
        if constexpr (STAGED)
            issue_raw_tile(p, range, raw, k + STAGES - 1);
        else
            issue_tile(p, range, skv, kv_scale, k + STAGES - 1);
        cp_async_wait<STAGES - 1>();
        __syncthreads();

        const bf16_t *kv = skv + (STAGED ? 0 : (k % STAGES) * KV_TILE * KV_STRIDE);
        const float *token_scale = kv_scale + (STAGED ? 0 : (k % STAGES) * KV_TILE);
        if constexpr (STAGED) {
            convert_raw_tile(raw + (k % STAGES) * RAW_STAGE, skv, kv_scale);
            __syncthreads();
        }
        const int t0 = t_begin + k * KV_TILE;

        float s[S_TILES][4];
#pragma unroll
        for (int j = 0; j < S_TILES; ++j)
            s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
        qk_steps(s, sq + wrow * KV_STRIDE, kv, lane, half * (LATENT / 2), (half + 1) * (LATENT / 2));
        if (FORMAT == FORMAT_FP8_PER_TOKEN) {
#pragma unroll
            for (int j = 0; j < S_TILES; ++j) {
                int c = j * 8 + 2 * (lane % 4);
                s[j][0] *= token_scale[c];
                s[j][1] *= token_scale[c + 1];
                s[j][2] *= token_scale[c];
                s[j][3] *= token_scale[c + 1];
            }
        }
        if (half == 1)
            qk_steps(s, sq + wrow * KV_STRIDE, kv, lane, LATENT, WIDTH);
        {
            // Pair exchange: write mine, wait for the partner's, add it.
            float *mine = partial + ((warp % ROW_WARPS) * 2 + half) * (S_TILES * 4 * 32);
            const float *theirs = partial + ((warp % ROW_WARPS) * 2 + (1 - half)) * (S_TILES * 4 * 32);
#pragma unroll
            for (int j = 0; j < S_TILES; ++j)
#pragma unroll
                for (int e = 0; e < 4; ++e)
                    mine[(j * 4 + e) * 32 + lane] = s[j][e];
            asm volatile("bar.sync %0, 64;\n" ::"r"(1 + warp % ROW_WARPS));
#pragma unroll
            for (int j = 0; j < S_TILES; ++j)
#pragma unroll
                for (int e = 0; e < 4; ++e)
                    s[j][e] += theirs[(j * 4 + e) * 32 + lane];
        }

        // Online softmax over this tile, for the thread's two rows.
        float tile_max[2] = {-inf_f32(), -inf_f32()};
#pragma unroll
        for (int j = 0; j < S_TILES; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                int t = t0 + j * 8 + 2 * (lane % 4) + (e & 1);
                float v = t < visible_end[e / 2] ? s[j][e] * p.softmax_scale : -inf_f32();
                s[j][e] = v;
                tile_max[e / 2] = fmaxf(tile_max[e / 2], v);
            }
        float rescale[2];
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            float m_new = fmaxf(row_max[h], quad_max(tile_max[h]));
            rescale[h] = row_max[h] == -inf_f32() ? 0.f : __expf(row_max[h] - m_new);
            row_max[h] = m_new;
        }
        float tile_sum[2] = {0.f, 0.f};
#pragma unroll
        for (int j = 0; j < S_TILES; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                float v = s[j][e] == -inf_f32() ? 0.f : __expf(s[j][e] - row_max[e / 2]);
                tile_sum[e / 2] += v;
                // scale fusion: V's per-token scale goes into P, after the row sum
                if (FORMAT == FORMAT_FP8_PER_TOKEN)
                    v *= token_scale[j * 8 + 2 * (lane % 4) + (e & 1)];
                s[j][e] = v;
            }
#pragma unroll
        for (int h = 0; h < 2; ++h)
            row_sum[h] = row_sum[h] * rescale[h] + quad_sum(tile_sum[h]);
#pragma unroll
        for (int j = 0; j < O_TILES; ++j) {
            o[j][0] *= rescale[0];
            o[j][1] *= rescale[0];
            o[j][2] *= rescale[1];
            o[j][3] *= rescale[1];
        }

        // O += P V over this warp's half of the columns.
        const bf16_t *v_half = kv + half * HALF;
#pragma unroll
        for (int kk = 0; kk < KV_TILE / 16; ++kk) {
            unsigned a[4] = {pack_bf16(s[2 * kk][0], s[2 * kk][1]),
                             pack_bf16(s[2 * kk][2], s[2 * kk][3]),
                             pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                             pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3])};
            const bf16_t *v_rows = v_half + (kk * 16 + lane % 8 + ((lane / 8) % 2) * 8) * KV_STRIDE +
                                   (lane / 16) * 8;
#pragma unroll
            for (int j = 0; j < O_TILES; j += 2) {
                unsigned bv[4];
                ldmatrix_x4_trans(bv, v_rows + j * 8);
                mma_bf16(o[j], a, bv[0], bv[1]);
                mma_bf16(o[j + 1], a, bv[2], bv[3]);
            }
        }
        __syncthreads();
    }
    cp_async_wait<0>();

    const bool direct = range.splits == 1;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        int row = my_row[h];
        if (row >= ROWS)
            continue;
        float l = row_sum[h];
        float inv = l > 0.f ? 1.f / l : 0.f;
#pragma unroll
        for (int j = 0; j < O_TILES; ++j) {
            int c = half * HALF + j * 8 + 2 * (lane % 4);
            store_output_pair(p, b, split, row, c, o[j][2 * h] * inv, o[j][2 * h + 1] * inv, direct);
        }
        if (half == 0 && lane % 4 == 0)
            store_lse(p, b, split, row, row_max[h], l, direct);
    }
}

}  // namespace snapmla
