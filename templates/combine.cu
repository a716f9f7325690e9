// ---- mla_combine: merge of split-KV partial results ------------------------
//
// Schedule. Grid (ROWS, batch); one CTA per query row of a request. Thread 0..k
// read the k partial LSEs, one warp folds them into weights in smem, then all
// threads sweep the LATENT columns: out[c] = sum_s w_s * o_s[c].
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
    for (int c = tid; c < LATENT; c += THREADS) {
        float o = 0.f;
        if (!empty)
            for (int s = 0; s < k; ++s)
                if (weight[s] != 0.f)
                    o += weight[s] * p.o_part[(part0 + (long long)s * ROWS) * LATENT + c];
        p.out[out_row * LATENT + c] = f32_to_bf16(o);
    }
    if (tid == 0)
        p.lse[out_row] = empty ? inf_f32() : total_lse;
}

}  // namespace snapmla
