// ---- mla_decode, SIMT path (sm_80+): split-KV attention over a BF16 cache --
//
// Schedule. Grid (row blocks, splits, batch); one CTA owns Q_TILE query rows
// of one request and one contiguous range of its KV tiles.
//
//   prologue   all threads: Q rows -> smem (BF16); cp.async KV tiles 0..S-2
//   per tile   cp.async tile k+S-1 into the ring (zero-fill past the range)
//              wait for tile k; barrier
//              scores  S[r][j] = scale * q_r . k_j   one thread per (r, j)
//              softmax one warp per row: running max m, sum l, rescale
//              PV      acc[r][c] = acc*rescale + sum_j P[r][j] v_j[c]
//                      one thread per (r, c) cell, accumulators in registers
//              barrier (the ring slot may now be refilled)
//   epilogue   one split: out = acc / l (BF16), lse = m + log l
//              several:   fp32 partial out and lse to the workspace; the
//                         combine kernel merges them
//
// Tokens past the split's range are never read (zero-filled and masked), so
// poisoned (NaN) cache slots and garbage block-table entries never reach the
// math.

namespace snapmla {

constexpr int ACC = (Q_TILE * LATENT + THREADS - 1) / THREADS;

// Dot product of 8 BF16 pairs held in two 16-byte vectors, in fp32.
__device__ __forceinline__ float dot8(uint4 a, uint4 w)
{
    return bf16_lo(a.x) * bf16_lo(w.x) + bf16_hi(a.x) * bf16_hi(w.x) +
           bf16_lo(a.y) * bf16_lo(w.y) + bf16_hi(a.y) * bf16_hi(w.y) +
           bf16_lo(a.z) * bf16_lo(w.z) + bf16_hi(a.z) * bf16_hi(w.z) +
           bf16_lo(a.w) * bf16_lo(w.w) + bf16_hi(a.w) * bf16_hi(w.w);
}

extern "C" __global__ void __launch_bounds__(THREADS)
snapmla_decode_split(const DecodeParams p)
{
    extern __shared__ __align__(16) unsigned char smem[];
    bf16_t *sq = (bf16_t *)smem;                                  // [Q_TILE][WIDTH]
    bf16_t *skv = sq + Q_TILE * WIDTH;                            // [STAGES][KV_TILE][KV_STRIDE]
    float *ss = (float *)(skv + STAGES * KV_TILE * KV_STRIDE);    // [Q_TILE][KV_TILE]
    float *row_max = ss + Q_TILE * KV_TILE;
    float *row_sum = row_max + Q_TILE;
    float *row_rescale = row_sum + Q_TILE;
    float *kv_scale = row_rescale + Q_TILE;                       // [STAGES][KV_TILE], fp8_per_token
    check_smem_layout(smem, kv_scale + (FORMAT == FORMAT_FP8_PER_TOKEN ? STAGES * KV_TILE : 0));

    const int b = blockIdx.z, split = blockIdx.y, row0 = blockIdx.x * Q_TILE;
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const KvRange range = kv_range(p, b, split);
    if (split >= range.splits)
        return;
    const int n = range.n, t_begin = range.t_begin, t_end = range.t_end, tiles = range.tiles;

    load_q_rows(p, b, row0, sq, WIDTH);
    for (int r = tid; r < Q_TILE; r += THREADS) {
        row_max[r] = -inf_f32();
        row_sum[r] = 0.f;
    }

    float acc[ACC];
#pragma unroll
    for (int k = 0; k < ACC; ++k)
        acc[k] = 0.f;

    for (int k = 0; k < STAGES - 1; ++k)
        issue_tile(p, range, skv, kv_scale, k);

    for (int k = 0; k < tiles; ++k) {
        issue_tile(p, range, skv, kv_scale, k + STAGES - 1);
        cp_async_wait<STAGES - 1>();
        __syncthreads();

        const bf16_t *kv = skv + (k % STAGES) * KV_TILE * KV_STRIDE;
        const float *token_scale = kv_scale + (k % STAGES) * KV_TILE;
        const int t0 = t_begin + k * KV_TILE;

        for (int i = tid; i < Q_TILE * KV_TILE; i += THREADS) {
            int r = i / KV_TILE, j = i % KV_TILE;
            const uint4 *qv = (const uint4 *)(sq + r * WIDTH);
            const uint4 *kk = (const uint4 *)(kv + j * KV_STRIDE);
            float dot = 0.f;
#pragma unroll 4
            for (int c = 0; c < LATENT_CHUNKS; ++c)
                dot += dot8(qv[c], kk[c]);
            if (FORMAT == FORMAT_FP8_PER_TOKEN)
                dot *= token_scale[j];   // K's per-token scale on the score column
#pragma unroll
            for (int c = LATENT_CHUNKS; c < CHUNKS; ++c)
                dot += dot8(qv[c], kk[c]);
            int t = t0 + j;
            int limit = t_end;   // first token this row may not see
            if (CAUSAL) {
                int query_pos = n - Q_LEN + (row0 + r) / Q_HEADS;
                limit = min(limit, query_pos + 1);
            }
            ss[i] = t < limit ? dot * p.softmax_scale : -inf_f32();
        }
        __syncthreads();

        for (int r = warp; r < Q_TILE; r += WARPS) {
            float m_tile = -inf_f32();
            for (int j = lane; j < KV_TILE; j += 32)
                m_tile = fmaxf(m_tile, ss[r * KV_TILE + j]);
            m_tile = warp_max(m_tile);
            float m_old = row_max[r];
            float m_new = fmaxf(m_old, m_tile);
            float sum = 0.f;
            for (int j = lane; j < KV_TILE; j += 32) {
                float s = ss[r * KV_TILE + j];
                float e = s == -inf_f32() ? 0.f : __expf(s - m_new);
                sum += e;
                // Scale fusion: V's per-token scale lies along PV's reduction,
                // so it multiplies P, after the row sum has taken P as is.
                ss[r * KV_TILE + j] = FORMAT == FORMAT_FP8_PER_TOKEN ? e * token_scale[j] : e;
            }
            sum = warp_sum(sum);
            if (lane == 0) {
                float rescale = m_old == -inf_f32() ? 0.f : __expf(m_old - m_new);
                row_rescale[r] = rescale;
                row_sum[r] = row_sum[r] * rescale + sum;
                row_max[r] = m_new;
            }
        }
        __syncthreads();

#pragma unroll
        for (int a = 0; a < ACC; ++a) {
            int cell = tid + a * THREADS;
            if (cell < Q_TILE * LATENT) {
                int r = cell / LATENT, c = cell % LATENT;
                const float *pr = ss + r * KV_TILE;
                float v = acc[a] * row_rescale[r];
                for (int j = 0; j < KV_TILE; ++j)
                    v += pr[j] * bf16_to_f32(kv[j * KV_STRIDE + c]);
                acc[a] = v;
            }
        }
        __syncthreads();
    }
    cp_async_wait<0>();

    const bool direct = range.splits == 1;
#pragma unroll
    for (int a = 0; a < ACC; ++a) {
        int cell = tid + a * THREADS;
        if (cell >= Q_TILE * LATENT)
            continue;
        int r = cell / LATENT, c = cell % LATENT;
        int row = row0 + r;
        if (row >= ROWS)
            continue;
        float l = row_sum[r];
        float o = l > 0.f ? acc[a] / l : 0.f;
        long long row_index = (long long)b * ROWS + row;
        if (direct)
            p.out[row_index * LATENT + c] = f32_to_bf16(o);
        else
            p.o_part[(((long long)b * p.num_splits + split) * ROWS + row) * LATENT + c] = o;
    }
    for (int r = tid; r < Q_TILE; r += THREADS) {
        int row = row0 + r;
        if (row >= ROWS)
            continue;
        store_lse(p, b, split, row, row_max[r], row_sum[r], direct);
    }
}

}  // namespace snapmla
