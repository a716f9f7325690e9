// ---- mla_combine: merge of split-KV partial results ------------------------
//
// Schedule. Grid (ROWS, batch); one CTA per query row of a request. Thread 0..k
// read the k partial LSEs, one warp folds them into weights in smem, then all
// threads sweep the LATENT columns, two each: out[c] = sum_s w_s * o_s[c].
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

extern "C" __global__ void __launch_bounds__(THREADS)
snapmla_combine(const CombineParams p)
{
    __shared__ float weight[MAX_SPLITS];
    __shared__ float total_lse;
    const int row = blockIdx.x, b = blockIdx.y, tid = threadIdx.x;
    const int k = min(max(p.split_counts[b], 1), p.num_splits);
    if (p.skip_single && k == 1)
        return;
    const long long part0 = (long long)b * p.num_splits * ROWS + row;   // split 0's row

    if (tid < 32) {
        float m = -inf_f32();
        for (int s = tid; s < k; s += 32)
            m = fmaxf(m, p.lse_part[part0 + (long long)s * ROWS]);
        m = warp_max(m);
        float sum = 0.f;
        for (int s = tid; s < k; s += 32) {
            float l = p.lse_part[part0 + (long long)s * ROWS];
            sum += l == -inf_f32() ? 0.f : __expf(l - m);
        }
        sum = warp_sum(sum);
        float lse = m == -inf_f32() ? -inf_f32() : m + logf(sum);
        for (int s = tid; s < k; s += 32) {
            float l = p.lse_part[part0 + (long long)s * ROWS];
            weight[s] = lse == -inf_f32() || l == -inf_f32() ? 0.f : __expf(l - lse);
        }
        if (tid == 0)
            total_lse = lse;
    }
    __syncthreads();

    const long long out_row = (long long)b * ROWS + row;
    const bool empty = total_lse == -inf_f32();
    // Two columns per thread; the splits' loads are independent of the sums
    // (a zero weight is a select, not a branch), so eight are in flight at once.
    for (int c = 2 * tid; c < LATENT; c += 2 * THREADS) {
        float2 o = make_float2(0.f, 0.f);
        if (!empty) {
            const float *col = p.o_part + part0 * LATENT + c;
#pragma unroll 8
            for (int s = 0; s < k; ++s) {
                const float2 x = *(const float2 *)(col + (long long)s * ROWS * LATENT);
                const float w = weight[s];
                o.x += w != 0.f ? w * x.x : 0.f;
                o.y += w != 0.f ? w * x.y : 0.f;
            }
        }
        p.out[out_row * LATENT + c] = f32_to_bf16(o.x);   // out is only 2-byte aligned
        p.out[out_row * LATENT + c + 1] = f32_to_bf16(o.y);
    }
    if (tid == 0)
        p.lse[out_row] = empty ? inf_f32() : total_lse;
}

}  // namespace snapmla
