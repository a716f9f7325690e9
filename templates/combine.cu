// ---- mla_combine: merge of split-KV partial results ------------------------
//
// Schedule. Grid (ROWS, batch); one CTA per query row of a request. Thread 0..k
// read the k partial LSEs, one warp folds them into weights in smem, then all
// threads sweep the LATENT columns, four each (in groups over the splits
// when the CTA has threads to spare): out[c] = sum_s w_s * o_s[c].
// skip_single: requests the split kernel finished alone (one split) were
// written directly and are left untouched.

namespace snapmla {

struct CombineParams {
    const float *o_part;      // [batch, num_splits, ROWS, LATENT]
    const float *lse_part;    // [batch, num_splits, ROWS]
    const int *split_counts;  // [batch]
    bf16_t *out;              // [batch, ROWS, LATENT]
    float *lse;               // [batch, ROWS]
    int batch;
    int num_splits;
    int skip_single;
};

// At 512 threads, two blocks per SM lift ptxas's register budget from 32
// (one block's share) to 64: no 4-byte spill (docs/perf.md, thirtieth session).
extern "C" __global__ void __launch_bounds__(THREADS, THREADS >= 512 ? 2 : 0)
snapmla_combine(const CombineParams p)
{
    __shared__ float weight[MAX_SPLITS];
    __shared__ float total_lse;
    const int row = blockIdx.x, b = blockIdx.y, tid = threadIdx.x;
    wait_prior_grids();   // the split kernel's partials
    const int k = min(max(p.split_counts[b], 1), p.num_splits);
    if (p.skip_single && k == 1)
        return;
    const long long part0 = (long long)b * p.num_splits * ROWS + row;   // split 0's row

    if (tid < 32) {
        // each lane's partial LSEs, read once (all loads in flight together)
        constexpr int PER_LANE = (MAX_SPLITS + 31) / 32;
        float l[PER_LANE];
#pragma unroll
        for (int j = 0; j < PER_LANE; ++j) {
            const int s = tid + 32 * j;
            l[j] = s < k ? p.lse_part[part0 + (long long)s * ROWS] : -inf_f32();
        }
        float m = -inf_f32();
#pragma unroll
        for (int j = 0; j < PER_LANE; ++j)
            m = fmaxf(m, l[j]);
        m = warp_max(m);
        float sum = 0.f;
#pragma unroll
        for (int j = 0; j < PER_LANE; ++j)
            sum += l[j] == -inf_f32() ? 0.f : __expf(l[j] - m);
        sum = warp_sum(sum);
        const float lse = m == -inf_f32() ? -inf_f32() : m + logf(sum);
#pragma unroll
        for (int j = 0; j < PER_LANE; ++j) {
            const int s = tid + 32 * j;
            if (s < k)
                weight[s] = lse == -inf_f32() || l[j] == -inf_f32() ? 0.f : __expf(l[j] - lse);
        }
        if (tid == 0)
            total_lse = lse;
    }
    __syncthreads();

    const long long out_row = (long long)b * ROWS + row;
    const bool empty = total_lse == -inf_f32();
    // Four columns per thread (one 16-byte load per split). When the row
    // needs at most half the CTA, GROUPS thread groups take every GROUPS-th
    // split and add up through smem: fewer serial loads per thread. The loads
    // do not wait on the sums (a zero weight is a select, not a branch), so
    // sixteen are in flight at once.
    static_assert(LATENT % 4 == 0, "16-byte columns");
    constexpr int COLS4 = LATENT / 4;
    constexpr int GROUPS = THREADS >= 2 * COLS4 ? THREADS / COLS4 : 1;
    const float4 *row_part = (const float4 *)(p.o_part + part0 * LATENT);
    auto sweep = [&](int first_split, int c4) {
        float4 o = make_float4(0.f, 0.f, 0.f, 0.f);
        if (empty)
            return o;
#pragma unroll 16
        for (int s = first_split; s < k; s += GROUPS) {
            const float4 x = row_part[(long long)s * ROWS * COLS4 + c4];
            const float w = weight[s];
            o.x += w != 0.f ? w * x.x : 0.f;
            o.y += w != 0.f ? w * x.y : 0.f;
            o.z += w != 0.f ? w * x.z : 0.f;
            o.w += w != 0.f ? w * x.w : 0.f;
        }
        return o;
    };
    auto store = [&](int c4, float4 o) {
        const long long at = out_row * LATENT + 4 * c4;
        p.out[at] = f32_to_bf16(o.x);   // out is only 2-byte aligned
        p.out[at + 1] = f32_to_bf16(o.y);
        p.out[at + 2] = f32_to_bf16(o.z);
        p.out[at + 3] = f32_to_bf16(o.w);
    };
    if constexpr (GROUPS > 1) {
        __shared__ float4 group_sum[GROUPS > 1 ? GROUPS - 1 : 1][COLS4];
        const int group = tid / COLS4, c4 = tid % COLS4;
        float4 o = make_float4(0.f, 0.f, 0.f, 0.f);
        if (group < GROUPS)
            o = sweep(group, c4);
        if (group > 0 && group < GROUPS)
            group_sum[group - 1][c4] = o;
        __syncthreads();
        if (group == 0) {
            for (int g = 0; g < GROUPS - 1; ++g) {
                const float4 x = group_sum[g][c4];
                o.x += x.x, o.y += x.y, o.z += x.z, o.w += x.w;
            }
            store(c4, o);
        }
    } else {
        for (int c4 = tid; c4 < COLS4; c4 += THREADS)
            store(c4, sweep(0, c4));
    }
    if (tid == 0)
        p.lse[out_row] = empty ? inf_f32() : total_lse;
}

}  // namespace snapmla
