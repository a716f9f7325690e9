// ---- mla_decode on Hopper (wgmma, sm_90a): what the FP8 and BF16 paths share
//
// Both paths (decode_wgmma_fp8.cu, decode_wgmma_bf16.cu) run two warpgroups
// on 64 query rows x 64-token KV tiles, out of a ring of KV tiles in
// shared memory laid out as wgmma reads them: per tile, the latent as
// 64-row blocks of 128 bytes (128 e4m3 or 64 BF16 channels) under the
// 128-byte swizzle, the RoPE rows under the 128/64/32-byte swizzle, and for
// an FP8 cache the tile's scales (per token; fp8_per_tile128: per token and
// 128-channel group, [token][group]). This file: that layout, the TMA
// copies that fill it, and small math both softmaxes use. The kernel entry
// is decode_wgmma_kernel.cu.

namespace snapmla {

// Two warpgroups (the seesaw of both paths), or four (the FP8 path's role
// warpgroups, decode_wgmma_fp8_roles.cu).
constexpr bool ROLE_WARPGROUPS = THREADS == 512;
static_assert(Q_TILE == 64 && KV_TILE == 64 && (THREADS == 256 || ROLE_WARPGROUPS), "warpgroups on 64 x 64");
static_assert(STAGES >= 2, "the two warpgroups work on two tiles at once");
static_assert(LATENT % 256 == 0 && (ROPE == 32 || ROPE == 64 || ROPE == 128), "wgmma blocks");

constexpr bool KV_TILE128 = FORMAT == FORMAT_FP8_PER_TILE128;
constexpr bool KV_FP8 = FORMAT == FORMAT_FP8_PER_TOKEN || KV_TILE128;   // else a BF16 cache
constexpr int SCALE_GROUPS = KV_TILE128 ? LATENT / 128 : 1;   // an FP8 token's scales
constexpr int HALF = LATENT / 2;                          // output channels per warpgroup
constexpr int LAT_ROW = KV_FP8 ? LATENT : 2 * LATENT;     // bytes of a token's latent
constexpr int LAT_BLOCK_BYTES = 64 * 128;                 // 64 rows x 128 bytes
constexpr int LAT_BLOCKS = LAT_ROW / 128;
constexpr int ROPE_ROW = ROPE * 2;                        // bytes of one row's RoPE
constexpr int ROPE_SW = ROPE_ROW >= 128 ? 128 : ROPE_ROW; // its swizzle width
constexpr int ROPE_BLOCK_BYTES = 64 * ROPE_SW;
constexpr int ROPE_BLOCKS = ROPE_ROW / ROPE_SW;
constexpr int ROPE_MODE = ROPE_SW == 128 ? 1 : ROPE_SW == 64 ? 2 : 3;  // descriptor swizzle code
constexpr int SCALE_BYTES = KV_FP8 ? 4 * SCALE_GROUPS : 0; // per token, after the RoPE rows
__host__ __device__ constexpr int round_up_1024(int x) { return (x + 1023) / 1024 * 1024; }
constexpr int STAGE_BYTES = round_up_1024(KV_TILE * (LAT_ROW + ROPE_ROW + SCALE_BYTES));
constexpr int LAT_CHUNKS = LAT_ROW / 16, ROPE_CHUNKS = ROPE_ROW / 16;
// KV tiles come in by TMA when pages hold at least 16 tokens: one thread
// issues a tile's boxes (per page piece: the latent's 128-byte blocks and
// the RoPE rows through the tensor maps, with the swizzle wgmma reads; the
// per-token scales as one bulk copy, fp8_per_tile128's through a third map).
// Smaller pages (fp8_per_token only): cp.async.
constexpr bool KV_TMA = {{kv_tma}};
constexpr int BOX_ROWS = PAGE_SIZE < KV_TILE ? PAGE_SIZE : KV_TILE;   // a tile's tokens in one page
constexpr int PIECES = KV_TMA ? KV_TILE / BOX_ROWS : 1;
static_assert(!KV_TMA || (KV_TILE % BOX_ROWS == 0 && PAGE_SIZE % BOX_ROWS == 0 && BOX_ROWS >= 16),
              "TMA boxes tile the KV tile and the page");
// The cache's latent and RoPE rows (and fp8_per_tile128's scales) as 3-D
// tensor maps (bytes x slot x page), encoded by runtime/launch.c; a kernel
// parameter (__grid_constant__).
struct alignas(64) TensorMap { unsigned long long opaque[16]; };
struct KvMaps { TensorMap latent, rope, scales; };

// Named barriers: 1, 2 hand a tile's row state between the warpgroups (by
// tile parity); 3, 4 close each warpgroup's own P writes; 5 is the whole
// CTA's between work items.
constexpr int BAR_STATE = 1, BAR_OWN = 3, BAR_ITEM = 5;

// Offset of byte `byte` of row `row` in a tile of ROW_BYTES-wide rows under
// the matching wgmma swizzle (128, 64 or 32 bytes): the row's 16-byte chunks
// are XORed with its phase, so 8 consecutive rows hit different banks.
template <int ROW_BYTES> __device__ __forceinline__ int swizzled(int row, int byte)
{
    constexpr int CHUNKS = ROW_BYTES / 16;
    const int phase = (row * ROW_BYTES / 128) & (CHUNKS - 1);
    return row * ROW_BYTES + (((byte >> 4) ^ phase) << 4) + (byte & 15);
}

// Byte `byte` of a row's latent / RoPE in a 64-row tile of the ring (or Q).
__device__ __forceinline__ int latent_offset(int row, int byte)
{
    return (byte / 128) * LAT_BLOCK_BYTES + swizzled<128>(row, byte % 128);
}

__device__ __forceinline__ int rope_offset(int row, int byte)
{
    return (byte / ROPE_SW) * ROPE_BLOCK_BYTES + swizzled<ROPE_SW>(row, byte % ROPE_SW);
}

// The BF16 kernels' Q: the CTA's 64 query rows as BF16 into swizzled smem
// (K-major, as the QK product reads them), by 16-byte asynchronous copies,
// all in flight at once and committed, not waited for (the caller's
// cp_async_wait<0>); rows past ROWS are zero-filled. (The FP8 kernels
// quantize Q on the way in: load_q_fp8_start/finish.)
__device__ __forceinline__ void start_q_bf16(const DecodeParams &p, int b, int row0, unsigned char *q_lat,
                                             unsigned char *q_rope)
{
    constexpr int ROW_CHUNKS = LAT_CHUNKS + ROPE_CHUNKS;
    for (int i = threadIdx.x; i < 64 * ROW_CHUNKS; i += THREADS) {
        const int r = i / ROW_CHUNKS, c = i % ROW_CHUNKS;
        const bool valid = row0 + r < ROWS;
        const bf16_t *src = p.q + ((long long)b * ROWS + (valid ? row0 + r : 0)) * WIDTH + 8 * c;
        unsigned char *dst =
            c < LAT_CHUNKS ? q_lat + latent_offset(r, 16 * c) : q_rope + rope_offset(r, 16 * (c - LAT_CHUNKS));
        cp_async_16(dst, src, valid ? 16 : 0);
    }
    cp_async_commit();
}

// O *= f per row (a thread's accumulators i alternate rows by (i / 2) % 2:
// f0, f1), skipped by a warp whose rows all keep their factor 1.
template <int N> __device__ __forceinline__ void scale_o_rows(float (&o)[N], float f0, float f1)
{
    if (__any_sync(0xffffffffu, f0 != 1.f || f1 != 1.f)) {
#pragma unroll
        for (int i = 0; i < N; ++i)
            o[i] *= (i / 2) % 2 ? f1 : f0;
    }
}

// The BF16 kernels' fp32 split partial (O / l) of this thread's two rows
// (my_row) and its ACC accumulators (channels channel0 + 8 j + 2 quad, + 1):
// quads 0, 1 and 2, 3 swap a row each, so every store is 16 bytes.
template <int N>
__device__ __forceinline__ void store_partials_bf16(const DecodeParams &p, int b, int split, int row0,
                                                    const int (&my_row)[2], int channel0, int quad,
                                                    const float (&o)[N], const float (&inv)[2])
{
#pragma unroll
    for (int j = 0; j < N / 4; ++j)
        store_partial_swapped(p, b, split, quad % 2 == 0, 1, row0 + my_row[0], row0 + my_row[1],
                              channel0 + 8 * j + 2 * quad, o[4 * j] * inv[0], o[4 * j + 1] * inv[0],
                              o[4 * j + 2] * inv[1], o[4 * j + 3] * inv[1]);
}

// wgmma descriptors (K-major, under the layout's swizzle) of a region laid
// out as above: latent blocks (Q's, a ring tile's, or the BF16 path's P,
// which has their layout) or RoPE rows.
__device__ __forceinline__ unsigned long long latent_desc(const void *region) { return smem_desc(region, 16, 1024, 1); }
__device__ __forceinline__ unsigned long long rope_desc(const void *region)
{
    return smem_desc(region, 16, 8 * ROPE_SW, ROPE_MODE);
}

// 2^x in one MUFU op (denormal results flush to 0, -inf gives 0).
__device__ __forceinline__ float fast_exp2(float x)
{
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

// Two floats -> packed BF16 (lo in the low half), round to nearest even.
__device__ __forceinline__ unsigned bf16x2(float lo, float hi)
{
    unsigned r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}

// The largest of this thread's 16 values at(i) of row half h (accumulator
// elements i with (i / 2) % 2 == h), as a tree: 4 dependent steps, not 15.
template <typename At> __device__ __forceinline__ float max_of_row(At at, int h)
{
    float m[8];
#pragma unroll
    for (int j = 0; j < 8; ++j)
        m[j] = fmaxf(at(4 * j + 2 * h), at(4 * j + 2 * h + 1));
#pragma unroll
    for (int w = 4; w > 0; w /= 2)
#pragma unroll
        for (int j = 0; j < w; ++j)
            m[j] = fmaxf(m[j], m[j + w]);
    return m[0];
}

__device__ __forceinline__ float max_of_row(const float (&s)[32], int h)
{
    return max_of_row([&](int i) { return s[i]; }, h);
}

// e = exp2(s scale_log2 - offset) per row half of a score tile, summed
// into part_sum (two chains per row half); s[i] becomes times(i, e), or e.
template <typename Times>
__device__ __forceinline__ void row_exponentials(float (&s)[32], const float (&scale_log2)[2],
                                                 const float (&offset)[2], float (&part_sum)[4], Times times)
{
#pragma unroll
    for (int k = 0; k < 4; ++k)
        part_sum[k] = 0.f;
#pragma unroll
    for (int i = 0; i < 32; ++i) {
        const int h = (i / 2) % 2;
        const float e = fast_exp2(fmaf(s[i], scale_log2[h], -offset[h]));
        part_sum[2 * h + (i / 4) % 2] += e;
        s[i] = times(i, e);
    }
}

__device__ __forceinline__ void row_exponentials(float (&s)[32], const float (&scale_log2)[2],
                                                 const float (&offset)[2], float (&part_sum)[4])
{
    row_exponentials(s, scale_log2, offset, part_sum, [](int, float e) { return e; });
}

// Issues S += Q_rope K_rope^T (BF16 wgmma over the RoPE swizzle blocks)
// into the open group; the caller fences, commits and waits.
__device__ __forceinline__ void issue_rope_scores(float (&s)[32], unsigned long long q_rope_desc,
                                                  unsigned long long k_rope_desc)
{
#pragma unroll
    for (int rb = 0; rb < ROPE_BLOCKS; ++rb)
#pragma unroll
        for (int ks = 0; ks < ROPE_SW / 32; ++ks)
            wgmma_qk_bf16(s, desc_plus(q_rope_desc, rb * ROPE_BLOCK_BYTES + ks * 32),
                          desc_plus(k_rope_desc, rb * ROPE_BLOCK_BYTES + ks * 32), 1);
}

// The score tile's columns (tokens t0 + 8 j + 2 quad + {0, 1}) at or past
// their row half's visible end get -inf (the range's last tile, a causal
// edge).
__device__ __forceinline__ void mask_scores(float (&s)[32], int t0, const int (&visible_end)[2], int quad)
{
#pragma unroll
    for (int i = 0; i < 32; ++i) {
        const int h = (i / 2) % 2, tok = t0 + 8 * (i / 4) + 2 * quad + i % 2;
        s[i] = tok < visible_end[h] ? s[i] : -inf_f32();
    }
}

// The KV range of a work item (decode_plan.cu's fields: request, row block
// | piece << 16, first and end tile), a piece of `splits`.
__device__ __forceinline__ KvRange item_range(const DecodeParams &p, int4 item, int splits)
{
    KvRange r;
    r.n = p.seqlens[item.x];
    r.splits = splits;
    r.t_begin = item.z * KV_TILE;
    r.t_end = min(r.n, item.w * KV_TILE);
    r.tiles = item.w - item.z;
    r.table = table_row(p, item.x);
    return r;
}

// The first token query row `row` (of the request's ROWS) may not see: the
// range's end, or its causal edge. Row 0 has the earliest edge, so tiles
// that end before visible_end_of(r, 0) need no mask.
__device__ __forceinline__ int visible_end_of(const KvRange &r, int row)
{
    return CAUSAL ? min(r.t_end, r.n - Q_LEN + row / Q_HEADS + 1) : r.t_end;
}

// The threads that issue copies: one per warpgroup for TMA, all for cp.async.
__device__ __forceinline__ bool is_copier_thread() { return !KV_TMA || threadIdx.x % 128 == 0; }

// Where a KV tile lives, as its copier needs it: TMA, the page of each piece
// of BOX_ROWS tokens; cp.async, the page of this thread's token (two threads
// of a warpgroup per token). -1 past the range. Loaded one copy ahead, so the
// block-table read never stalls the copies.
struct TileWhere { int page[PIECES]; };

// The pieces of the tile from token t0 that hold range tokens (the tile is
// in the range: at least one; with one piece a tile, that one, known to the
// compiler so that the copier's path has no test for it).
__device__ __forceinline__ int tile_pieces(const KvRange &r, int t0)
{
    return PIECES == 1 ? 1 : min(PIECES, (r.t_end - t0 + BOX_ROWS - 1) / BOX_ROWS);
}

// The first token of piece k of the tile (TMA), or this thread's token.
__device__ __forceinline__ int piece_token(const KvRange &r, int tile, int k)
{
    return r.t_begin + tile * KV_TILE + (KV_TMA ? k * BOX_ROWS : (threadIdx.x % 128) / 2);
}

__device__ __forceinline__ TileWhere locate_tile(const KvRange &r, int tile)
{
    TileWhere w;
#pragma unroll
    for (int k = 0; k < PIECES; ++k) {
        const int t = piece_token(r, tile, k);
        w.page[k] = tile < r.tiles && t < r.t_end ? r.table[t / PAGE_SIZE] : -1;
    }
    return w;
}

// locate_tile's pages, copied into smem at dst[PIECES] asynchronously (this
// thread's cp.async group; read_tile_pages waits for it): a copier that
// looks its next tile up early holds no registers for it meanwhile.
__device__ __forceinline__ void fetch_tile_pages(const KvRange &r, int tile, int *dst)
{
#pragma unroll
    for (int k = 0; k < PIECES; ++k) {
        const int t = piece_token(r, tile, k);
        const bool valid = tile < r.tiles && t < r.t_end;
        cp_async_4(dst + k, valid ? r.table + t / PAGE_SIZE : r.table, valid ? 4 : 0);
    }
    cp_async_commit();
}

__device__ __forceinline__ TileWhere read_tile_pages(const int *src)
{
    cp_async_wait<0>();
    TileWhere w;
#pragma unroll
    for (int k = 0; k < PIECES; ++k)
        w.page[k] = src[k];
    return w;
}

// One thread starts the copy of part of KV tile `tile` into ring slot
// (base + tile) % STAGES by TMA: the pieces up to the range's end, each a
// box per 128-byte latent block of [first_block, first_block + BLOCKS),
// per RoPE swizzle block (rope) and (FP8) its scales (scales); the part's
// bytes go on the slot's `full`. Rows past the range's end hold whatever
// the page or the slot held before (see clear_tail).
template <int BLOCKS>
__device__ __forceinline__ void issue_tma_part(const DecodeParams &p, const KvMaps &maps, const KvRange &r,
                                               unsigned char *ring, unsigned long long *full, int base, int tile,
                                               const TileWhere &w, int first_block, bool rope, bool scales)
{
    if (tile >= r.tiles)
        return;
    unsigned char *k_lat = ring + (base + tile) % STAGES * STAGE_BYTES;
    unsigned char *k_rope = k_lat + KV_TILE * LAT_ROW;
    float *k_scale = (float *)(k_rope + KV_TILE * ROPE_ROW);
    unsigned long long *bar = full + (base + tile) % STAGES;
    const int t0 = r.t_begin + tile * KV_TILE;
    const int pieces = tile_pieces(r, t0);
    mbarrier_expect_bytes(bar, pieces * BOX_ROWS * (BLOCKS * 128 + (rope ? ROPE_ROW : 0) + (scales ? SCALE_BYTES : 0)));
    const long long scale_plane = (long long)PAGE_SIZE * (LAT_ROW + ROPE_ROW);
#pragma unroll
    for (int k = 0; k < PIECES; ++k) {
        if (k >= pieces)
            break;
        const int slot = (t0 + k * BOX_ROWS) % PAGE_SIZE, page = w.page[k];
#pragma unroll
        for (int j = 0; j < BLOCKS; ++j) {
            const int blk = first_block + j;
            tma_load_3d(k_lat + blk * LAT_BLOCK_BYTES + k * BOX_ROWS * 128, &maps.latent, blk * 128, slot, page, bar);
        }
        if (rope) {
#pragma unroll
            for (int rb = 0; rb < ROPE_BLOCKS; ++rb)
                tma_load_3d(k_rope + rb * ROPE_BLOCK_BYTES + k * BOX_ROWS * ROPE_SW, &maps.rope, rb * ROPE_SW,
                            slot, page, bar);
        }
        if (scales && KV_TILE128)
            tma_load_3d(k_scale + k * BOX_ROWS * SCALE_GROUPS, &maps.scales, 0, slot, page, bar);
        else if (scales && KV_FP8)
            bulk_load(k_scale + k * BOX_ROWS, p.cache + (long long)page * p.page_stride + scale_plane + slot * 4,
                      BOX_ROWS * 4, bar);
    }
}

// The whole tile (issue_tma_part's every part).
__device__ __forceinline__ void issue_tma_tile(const DecodeParams &p, const KvMaps &maps, const KvRange &r,
                                               unsigned char *ring, unsigned long long *full, int base,
                                               int tile, const TileWhere &w)
{
    static_assert(LAT_BLOCKS * 128 == LAT_ROW, "the latent in 128-byte blocks");
    issue_tma_part<LAT_BLOCKS>(p, maps, r, ring, full, base, tile, w, 0, true, true);
}

// TMA copies whole boxes, so the rows of a range's last tile past its end
// hold other tokens or unused (possibly NaN) slots. Their scores are masked,
// but their V rows meet P = 0 in the tensor cores, and 0 x NaN is NaN: the
// owner zeroes their latent after its QK (once per range), before any PV.
__device__ __forceinline__ void clear_tail(unsigned char *k_lat, int valid)
{
#pragma unroll 1   // (a once-per-range path: unrolled, it spilled a role score warpgroup's registers)
    for (int i = threadIdx.x % 128; i < (KV_TILE - valid) * LAT_CHUNKS; i += 128) {
        const int row = valid + i / LAT_CHUNKS, c = i % LAT_CHUNKS;
        *(uint4 *)(k_lat + (c / 8) * LAT_BLOCK_BYTES + row * 128 + (c % 8) * 16) = make_uint4(0, 0, 0, 0);
    }
}

// Thread 0 at a kernel entry: the ring's mbarriers, full[s] completing on
// `full_arrivals` (the copiers' arrivals, with their bytes) and used[s] on
// `used_arrivals` (one per reading thread, per tile).
__device__ __forceinline__ void init_ring_barriers(unsigned long long *full, unsigned long long *used,
                                                   unsigned full_arrivals, unsigned used_arrivals)
{
    for (int s = 0; s < STAGES; ++s) {
        mbarrier_init(full + s, full_arrivals);
        mbarrier_init(used + s, used_arrivals);
    }
}

// A work item's BF16 output leaves through smem (free after the last QK):
// rows of LATENT channels, 16-byte chunks XORed with row % 8 so that the
// fragment stores of a warp's rows spread over the banks; then 16-byte
// stores, each warp writing 512 contiguous bytes of out (the 64 rows of a
// row block are contiguous there).
constexpr int OUT_STAGE_BYTES = 64 * LATENT * 2;

// Byte of the stage where channel `channel` (even) of row `row` goes.
__device__ __forceinline__ unsigned out_stage_offset(unsigned row, unsigned channel)
{
    return row * LATENT * 2 + (((channel / 8) ^ (row & 7)) << 4) + (channel % 8) * 2;
}

// The stage's rows that exist (row0 + row < ROWS) into out, by the CTA;
// after a barrier that follows the stage's last write.
__device__ __forceinline__ void copy_out_stage(const DecodeParams &p, int b, int row0, const unsigned char *stage)
{
    constexpr int CHUNKS = LATENT / 8;   // 16-byte chunks of a row
    const int rows = min(64, ROWS - row0);
    bf16_t *out = p.out + ((long long)b * ROWS + row0) * LATENT;
    for (int i = threadIdx.x; i < rows * CHUNKS; i += THREADS)
        *(uint4 *)(out + 8 * i) = *(const uint4 *)(stage + out_stage_offset(i / CHUNKS, 8 * (i % CHUNKS)));
}

// The seesaws' ring mbarriers (a template with another ring overloads it
// for its SmemLayout): one arrival per copier thread, one per thread of
// both warpgroups.
template <typename Layout> __device__ __forceinline__ void init_item_barriers(const Layout &m)
{
    init_ring_barriers(m.full, m.used, KV_TMA ? 1 : 128, 256);
}

// Gangs: in the pair kernel's persistent grid, when the grid is whole
// gangs, the ROW_BLOCKS neighbouring CTAs of a gang take one piece's row
// blocks together, one piece per round, the gangs in order on even rounds
// and in reverse on odd ones. The items are longest first, so a gang that
// took a long piece takes a short one next and ragged batches even out;
// the index comes from the round, with no atomic between two items, and a
// piece's row blocks start together. (The queue serves other grids and the
// other kernels: at 16-token pages the FP8 role warpgroups' thread 0 had
// no registers for the rounds.)
__device__ __forceinline__ bool runs_in_gangs(const DecodeParams &p)
{
    return p.plan != nullptr && gridDim.x % ROW_BLOCKS == 0;
}

__device__ __forceinline__ int gang_item_index(int round)
{
    const int gangs = gridDim.x / ROW_BLOCKS, gang = blockIdx.x / ROW_BLOCKS;
    const int place = round % 2 ? gangs - 1 - gang : gang;
    return (round * gangs + place) * ROW_BLOCKS + blockIdx.x % ROW_BLOCKS;
}

// This CTA's item of that round, if the plan has one.
__device__ __forceinline__ bool take_gang_item(const DecodeParams &p, int round, int4 &item, int &splits)
{
    const int at = gang_item_index(round);
    if (at >= p.plan[1])
        return false;
    item = ((const int4 *)(p.plan + 4))[at];
    splits = p.split_counts[item.x];
    return true;
}

// The CTA's next work item, for every thread of it (all THREADS call it in
// step; the answer is the same for all). Split grid (no plan): this CTA's
// one item, from the request's length (kv_range), in round 0. GANGS and a
// grid of whole gangs: the round's item (above). Persistent otherwise:
// the plan queue's next item, taken by thread 0 into `shared_index`. The
// answer comes out of a barrier, so ptxas sees the loop's exit as uniform;
// that barrier also keeps shared_index until every thread has read it, and
// the next call's first one holds every thread until the CTA is done with
// the last item.
template <bool GANGS = false>
__device__ __forceinline__ bool next_work_item(const DecodeParams &p, int round, int &shared_index, int4 &item,
                                               int &splits)
{
    item = make_int4(0, 0, 0, 0);
    splits = 1;
    bool have;
    if (p.plan == nullptr) {
        const KvRange r = kv_range(p, blockIdx.z, blockIdx.y);
        const int first = r.t_begin / KV_TILE;
        have = round == 0 && (int)blockIdx.y < r.splits;
        item = make_int4(blockIdx.z, blockIdx.x | blockIdx.y << 16, first, first + r.tiles);
        splits = r.splits;
    } else if (GANGS && runs_in_gangs(p)) {
        have = take_gang_item(p, round, item, splits);
    } else {
        if (threadIdx.x == 0)
            shared_index = atomicAdd(p.plan, 1);
        named_barrier(BAR_ITEM, THREADS);
        have = shared_index < p.plan[1];
        if (have) {
            item = ((const int4 *)(p.plan + 4))[shared_index];
            splits = p.split_counts[item.x];   // the plan's pieces of this request
        }
    }
    return barrier_or(BAR_ITEM, THREADS, have);
}

// Runs work(item, splits, base) over the CTA's work items; `base` counts the
// tiles of the items before, which places an item's tiles in the ring and
// the mbarriers' phases.
template <typename Work> __device__ __forceinline__ void for_each_item(const DecodeParams &p, int &shared_index,
                                                                       Work work)
{
    for (int round = 0, base = 0;; ++round) {
        // Nothing is in flight here (each item ends with its products
        // retired); saying so keeps ptxas from serializing every wgmma.
        wgmma_wait<0>();
        int4 item;
        int splits;
        if (!next_work_item(p, round, shared_index, item, splits))
            break;
        work(item, splits, warp_uniform(base));
        base += item.w - item.z;
    }
}

// Persistent: the last CTA out puts the queue back to its start, so the
// next decode on this plan (plan_ready) finds every item again. Every other
// CTA's pops come before its count (the fence), and the next kernel in the
// stream sees the reset (it waits for this grid). Thread 0, after its last
// pop (the one that finds the queue empty) or at the kernel's end.
__device__ __forceinline__ void release_queue(const DecodeParams &p)
{
    if (p.plan != nullptr && threadIdx.x == 0) {
        __threadfence();
        if (atomicAdd(p.plan + 2, 1) == (int)gridDim.x - 1) {
            atomicExch(p.plan, 0);
            atomicExch(p.plan + 2, 0);
        }
    }
}

// The next item, taken inside the current one (decode_item calls pop()
// once, every thread in step, once its ring and Q's smem are free), so that
// the item can start the next one's copies under its own epilogue.
struct ItemAhead {
    int4 item;
    int splits;
    bool have;
};
struct PopItem {
    const DecodeParams &p;
    int &shared_index;
    ItemAhead &next;
    int round;   // the round of the item it takes (gangs)
    // The split grid's one item is taken (for_each_item_ahead marked
    // shared_index -1); gangs: the round's item; persistent otherwise: the
    // queue's next, and the CTA's last pop releases the queue. (Asked of
    // shared_index first, and released here, not at the kernel's end: else
    // whether there is a plan, and where, stays in registers through every
    // item, and the pair kernel has none to spare.)
    __device__ __forceinline__ const ItemAhead &operator()() const
    {
        bool have = false;
        next.item = make_int4(0, 0, 0, 0);
        next.splits = 1;
        // (next_work_item's pop, written out again: through a shared helper
        // ptxas allocates the seesaw kernels' registers differently from
        // the measured build)
        if (runs_in_gangs(p)) {
            have = take_gang_item(p, round, next.item, next.splits);
        } else if (shared_index >= 0) {   // (the same for all: thread 0 writes only indices >= 0)
            if (threadIdx.x == 0)
                shared_index = atomicAdd(p.plan, 1);
            named_barrier(BAR_ITEM, THREADS);
            have = shared_index < p.plan[1];
            if (have) {
                next.item = ((const int4 *)(p.plan + 4))[shared_index];
                next.splits = p.split_counts[next.item.x];
            }
            if (!have && threadIdx.x == 0) {   // (release_queue without its test: p.plan is set here)
                int *plan = p.plan;
                __threadfence();
                if (atomicAdd(plan + 2, 1) == (int)gridDim.x - 1) {
                    atomicExch(plan, 0);
                    atomicExch(plan + 2, 0);
                }
            }
        }
        next.have = barrier_or(BAR_ITEM, THREADS, have);
        return next;
    }
};

// Whether a kernel's decode_item takes its next item ahead (the pair
// schedule's does; its file specializes this for its SmemLayout).
template <typename Layout> struct TakesItemAhead {
    static constexpr bool value = false;
};

// Runs work(item, splits, base, prefetched, pop) over the CTA's work items:
// `prefetched` says the item before started this one's Q and first tiles
// (pop's answer, every thread's the same).
template <typename Work> __device__ __forceinline__ void for_each_item_ahead(const DecodeParams &p, int &shared_index,
                                                                             Work work)
{
    ItemAhead now, next;
    now.have = next_work_item<true>(p, 0, shared_index, now.item, now.splits);
    if (!now.have && !runs_in_gangs(p))
        release_queue(p);   // (else the last pop does; gangs leave the queue alone)
    if (p.plan == nullptr && threadIdx.x == 0)
        shared_index = -1;   // (read after the item's first barrier)
    bool prefetched = false;
    for (int base = 0, round = 1; now.have; ++round) {
        wgmma_wait<0>();   // (as for_each_item)
        work(now.item, now.splits, warp_uniform(base), prefetched, PopItem{p, shared_index, next, round});
        base += now.item.w - now.item.z;
        now = next;
        prefetched = next.have;
    }
}


}  // namespace snapmla
