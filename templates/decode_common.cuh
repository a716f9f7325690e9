// ---- mla_decode, shared by its engines: parameters, split plan, KV loads ---
//
// The split plan is computed on the device from the cache lengths, so a
// decode step can be captured in a CUDA graph. KV tiles land in shared
// memory as BF16 rows of KV_STRIDE elements (padded so that 16-byte reads
// and ldmatrix rows of consecutive tokens fall in different banks): BF16
// caches through cp.async, FP8 caches dequantized on the way (per-token
// codes kept exact, their scale left to the math).

namespace snapmla {

struct DecodeParams {
    const bf16_t *q;            // [batch, ROWS, WIDTH]
    const unsigned char *cache; // pages of page_stride bytes
    const int *block_table;     // [batch, block_table_stride]
    const int *seqlens;         // [batch]
    bf16_t *out;                // [batch, ROWS, LATENT]
    float *lse;                 // [batch, ROWS]
    float *o_part;              // [batch, num_splits, ROWS, LATENT]
    float *lse_part;            // [batch, num_splits, ROWS]
    int *split_counts;          // [batch]
    int *plan;                  // Hopper, persistent: queue head, item count, int4 items
                                // (decode_plan.cu); null: one CTA per (row block, split, request)
    long long page_stride;      // bytes
    long long num_pages;
    int block_table_stride;
    int batch;
    int num_splits;             // splits allowed by this launch (grid.y)
    float softmax_scale;
    int plan_ctas;              // persistent: the decode CTAs a balanced plan evens the
                                // tiles over; 0: whole row blocks (decode_plan.cu)
};

constexpr int KV_STRIDE = WIDTH + 8;   // padded smem row (bank spread)
constexpr int CHUNKS = WIDTH / 8;      // 16-byte chunks per token
constexpr int LATENT_CHUNKS = LATENT / 8;
// Splits used by a request of n tokens when the launch allows `allowed`:
// no split shorter than SPLIT_MIN_TOKENS, none empty. Computed on the device
// from the cache lengths so a decode step can be captured in a CUDA graph.
struct SplitPlan {
    int count;         // splits of this request
    int tiles_each;    // KV tiles per split
};

__device__ __forceinline__ SplitPlan plan_splits(int n, int allowed)
{
    int tiles = (n + KV_TILE - 1) / KV_TILE;
    int want = (n + SPLIT_MIN_TOKENS - 1) / SPLIT_MIN_TOKENS;
    int k = min(min(want, allowed), tiles);
    k = max(k, 1);
    SplitPlan p;
    p.tiles_each = max((tiles + k - 1) / k, 1);
    p.count = max((tiles + p.tiles_each - 1) / p.tiles_each, 1);
    return p;
}

// Address of 16-byte chunk c of token t of a BF16 cache.
__device__ __forceinline__ const unsigned char *
kv_chunk(const DecodeParams &p, const int *table, int t, int c)
{
    long long page = table[t / PAGE_SIZE];
    int slot = t % PAGE_SIZE;
    const unsigned char *base = p.cache + page * p.page_stride;
    if (!ROPE_PLANAR)
        return base + (long long)slot * WIDTH * 2 + c * 16;
    if (c < LATENT_CHUNKS)
        return base + (long long)slot * LATENT * 2 + c * 16;
    return base + (long long)PAGE_SIZE * LATENT * 2 + (long long)slot * ROPE * 2 +
           (c - LATENT_CHUNKS) * 16;
}

// FP8 caches, dequantized to BF16 on the way into shared memory (the FP8
// tensor-core path reads them as they are). One item: 16 latent values or
// 8 RoPE values of one token.
constexpr int FP8_LATENT_ITEMS = LATENT / 16;
constexpr int FP8_ITEMS = FP8_LATENT_ITEMS + ROPE / 8;

// 16 e4m3 codes times scale -> 16 BF16 values at dst (16-byte aligned).
__device__ __forceinline__ void convert16(uint4 raw, float scale, bf16_t *dst)
{
    unsigned words[4] = {raw.x, raw.y, raw.z, raw.w};
    unsigned packed[8];
#pragma unroll
    for (int w = 0; w < 4; ++w) {
        unsigned x = words[w];
        packed[2 * w] = (unsigned)f32_to_bf16(e4m3_to_f32(x & 0xff) * scale) |
                        ((unsigned)f32_to_bf16(e4m3_to_f32((x >> 8) & 0xff) * scale) << 16);
        packed[2 * w + 1] = (unsigned)f32_to_bf16(e4m3_to_f32((x >> 16) & 0xff) * scale) |
                            ((unsigned)f32_to_bf16(e4m3_to_f32(x >> 24) * scale) << 16);
    }
    ((uint4 *)dst)[0] = make_uint4(packed[0], packed[1], packed[2], packed[3]);
    ((uint4 *)dst)[1] = make_uint4(packed[4], packed[5], packed[6], packed[7]);
}

__device__ __forceinline__ void dequantize_item(const DecodeParams &p, const int *table,
                                                bf16_t *row, float *token_scale, int t, int item)
{
    long long page = table[t / PAGE_SIZE];
    long long slot = t % PAGE_SIZE;
    const unsigned char *base = p.cache + page * p.page_stride;
    const unsigned char *latent, *rope;
    const float *scales;
    if (FORMAT == FORMAT_FP8_PER_TOKEN) {
        latent = base + slot * LATENT;
        rope = base + (long long)PAGE_SIZE * LATENT + slot * ROPE * 2;
        scales = (const float *)(base + (long long)PAGE_SIZE * (LATENT + 2 * ROPE) + slot * 4);
    } else {
        latent = base + slot * TILE128_TOKEN_BYTES;
        scales = (const float *)(latent + LATENT);
        rope = latent + LATENT + 4 * (LATENT / 128);
    }
    if (item < FP8_LATENT_ITEMS) {
        // Per token: the codes go in unscaled (exact in BF16) and the scale
        // is applied to the score and to P; per 128 channels: scaled here
        // (exact for FlashMLA's power-of-two scales).
        float scale = 1.f;
        if (FORMAT == FORMAT_FP8_PER_TOKEN && item == 0)
            *token_scale = scales[0];
        if (FORMAT == FORMAT_FP8_PER_TILE128)
            scale = scales[item * 16 / 128];
        convert16(*(const uint4 *)(latent + item * 16), scale, row + item * 16);
    } else {
        int r = item - FP8_LATENT_ITEMS;
        *(uint4 *)(row + LATENT + r * 8) = *(const uint4 *)(rope + r * 16);
    }
}

__device__ __forceinline__ void load_kv_tile(const DecodeParams &p, const int *table,
                                             bf16_t *dst, float *token_scale, int t0, int t_end)
{
    if (FORMAT == FORMAT_BF16) {
        for (int i = threadIdx.x; i < KV_TILE * CHUNKS; i += THREADS) {
            int j = i / CHUNKS, c = i % CHUNKS;
            int t = t0 + j;
            bool valid = t < t_end;
            const void *src = valid ? (const void *)kv_chunk(p, table, t, c) : (const void *)p.cache;
            cp_async_16(dst + j * KV_STRIDE + c * 8, src, valid ? 16 : 0);
        }
    } else {
        for (int i = threadIdx.x; i < KV_TILE * FP8_ITEMS; i += THREADS) {
            int j = i / FP8_ITEMS, item = i % FP8_ITEMS;
            int t = t0 + j;
            bf16_t *row = dst + j * KV_STRIDE;
            if (t < t_end) {
                dequantize_item(p, table, row, token_scale + j, t, item);
            } else if (item < FP8_LATENT_ITEMS) {
                if (FORMAT == FORMAT_FP8_PER_TOKEN && item == 0)
                    token_scale[j] = 0.f;
                ((uint4 *)(row + item * 16))[0] = make_uint4(0, 0, 0, 0);
                ((uint4 *)(row + item * 16))[1] = make_uint4(0, 0, 0, 0);
            } else {
                *(uint4 *)(row + LATENT + (item - FP8_LATENT_ITEMS) * 8) = make_uint4(0, 0, 0, 0);
            }
        }
    }
}

// The KV range a CTA owns: its split of request b. The first CTA of each
// request publishes the request's split count for the combine kernel.
struct KvRange {
    int n;              // the request's cache length
    int splits;         // splits the request uses
    int t_begin, t_end; // this split's tokens
    int tiles;          // KV tiles in [t_begin, t_end)
    const int *table;   // the request's block table row
};

// Request b's block table row. Both b and the stride are non-negative
// (runtime/launch.c), so the product is unsigned: no sign word of the stride
// stays live (one held through the FP8 roles kernel's loop spilled there).
__device__ __forceinline__ const int *table_row(const DecodeParams &p, int b)
{
    return p.block_table + (unsigned long long)(unsigned)b * (unsigned)p.block_table_stride;
}

__device__ __forceinline__ KvRange kv_range(const DecodeParams &p, int b, int split)
{
    KvRange r;
    r.n = p.seqlens[b];
    const SplitPlan plan = plan_splits(r.n, p.num_splits);
    if (split == 0 && blockIdx.x == 0 && threadIdx.x == 0)
        p.split_counts[b] = plan.count;
    r.splits = plan.count;
    r.t_begin = split * plan.tiles_each * KV_TILE;
    r.t_end = min(r.n, r.t_begin + plan.tiles_each * KV_TILE);
    r.tiles = r.t_end > r.t_begin ? (r.t_end - r.t_begin + KV_TILE - 1) / KV_TILE : 0;
    r.table = table_row(p, b);
    return r;
}

// The CTA's Q_TILE query rows into shared memory, `stride` elements apart.
// Rows past ROWS are zeros: they compute harmlessly and are not stored.
__device__ __forceinline__ void load_q_rows(const DecodeParams &p, int b, int row0, bf16_t *dst,
                                            int stride)
{
    for (int i = threadIdx.x; i < Q_TILE * CHUNKS; i += THREADS) {
        int r = i / CHUNKS, c = i % CHUNKS;
        uint4 v = make_uint4(0, 0, 0, 0);
        if (row0 + r < ROWS)
            v = ((const uint4 *)(p.q + ((long long)b * ROWS + row0 + r) * WIDTH))[c];
        *(uint4 *)(dst + r * stride + c * 8) = v;
    }
}

// Starts the copy of KV tile `tile` of the range into its ring slot (tile %
// STAGES) and closes the cp.async group, so that waiting for STAGES - 1
// pending groups means tile `tile - STAGES + 1` has landed. Past the range
// it only closes an empty group, keeping the count.
__device__ __forceinline__ void issue_tile(const DecodeParams &p, const KvRange &r, bf16_t *skv,
                                           float *kv_scale, int tile)
{
    if (tile < r.tiles)
        load_kv_tile(p, r.table, skv + (tile % STAGES) * KV_TILE * KV_STRIDE,
                     kv_scale + (tile % STAGES) * KV_TILE, r.t_begin + tile * KV_TILE, r.t_end);
    cp_async_commit();
}

// A row's LSE (log_max + log l, natural log): into lse when the request
// used one split, else into this split's partial. A row that saw nothing
// (l = 0): +inf as the final LSE, -inf (no mass) as a partial, so that the
// combine gives it zero weight.
__device__ __forceinline__ void store_lse(const DecodeParams &p, int b, int split, int row, float log_max,
                                          float l, bool direct)
{
    if (direct)
        p.lse[(long long)b * ROWS + row] = l > 0.f ? log_max + logf(l) : inf_f32();
    else
        p.lse_part[((long long)b * p.num_splits + split) * ROWS + row] = l > 0.f ? log_max + logf(l) : -inf_f32();
}

// Two neighbouring output columns of one row: BF16 straight into out when
// the request used one split, else fp32 into this split's partial (c is
// even: one 4-byte or 8-byte store; out is 16-byte aligned, launch.c).
__device__ __forceinline__ void store_output_pair(const DecodeParams &p, int b, int split, int row,
                                                  int c, float x0, float x1, bool direct)
{
    if (direct) {
        const long long at = ((long long)b * ROWS + row) * LATENT + c;
        *(unsigned *)(p.out + at) = (unsigned)f32_to_bf16(x0) | ((unsigned)f32_to_bf16(x1) << 16);
    } else {
        float *dst = p.o_part + (((long long)b * p.num_splits + split) * ROWS + row) * LATENT + c;
        *(float2 *)dst = make_float2(x0, x1);
    }
}

// Four neighbouring columns (c a multiple of 4) of a split's fp32 partial:
// one 16-byte store.
__device__ __forceinline__ void store_partial_quad(const DecodeParams &p, int b, int split, int row, int c, float4 x)
{
    *(float4 *)(p.o_part + (((long long)b * p.num_splits + split) * ROWS + row) * LATENT + c) = x;
}

// A lane's channel pair c, c+1 (c = 2 mod 4 when `low` is false) of two
// rows, row_a (a0, a1) and row_b (b0, b1), into a split's fp32 partial,
// where lane ^ mask holds the neighbouring pair of the same rows: the lanes
// swap halves so that the `low` one stores row_a's channels c .. c+3 and
// the other row_b's c-2 .. c+1, one 16-byte store each. Twice the bytes per
// store of one pair each: on the BF16 path at batch 1 (every CTA writing
// its partial at once) the epilogue took 16.3 us with 8-byte stores (8 rows x
// 32 bytes a warp) and 5.6 us with these; the FP8 seesaw's 8-byte stores
// (4 rows x 64 bytes) stay, 1-4% faster there than this swap (docs/perf.md,
// twenty-ninth session). All 32 lanes call it.
__device__ __forceinline__ void store_partial_swapped(const DecodeParams &p, int b, int split, bool low, int mask,
                                                      int row_a, int row_b, int c, float a0, float a1, float b0,
                                                      float b1)
{
    const float r0 = __shfl_xor_sync(0xffffffffu, low ? b0 : a0, mask);
    const float r1 = __shfl_xor_sync(0xffffffffu, low ? b1 : a1, mask);
    const int row = low ? row_a : row_b;
    if (row < ROWS)
        store_partial_quad(p, b, split, row, low ? c : c - 2,
                           low ? make_float4(a0, a1, r0, r1) : make_float4(r0, r1, b0, b1));
}

}  // namespace snapmla
