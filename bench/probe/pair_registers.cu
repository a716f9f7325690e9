// Register check of the 64-row CTA pair's split (docs/design.md, "A candidate
// not built"), compile only, no GPU: does ptxas keep the wgmma asynchronous
// (no C7510-C7520 note, no spill) with score warpgroups at SCORE_REGS holding
// Q's e4m3 latent as 64 A-fragment registers (a score tile, its token scales
// and row state beside them; not Q's RoPE part, 16 more), and output
// warpgroups at OUTPUT_REGS holding O^T for 128 channels (64) and V^T's
// fragments: two tiles' (2 x 16, the next tile's loaded under this one's
// products) or, with -DSINGLE_VT, one tile's, loaded once the last products
// retire. A model of the two loops, not the kernel: no chain, copies or
// barriers, and its numbers mean nothing.
//   nvcc -cubin -arch=sm_90a -O3 -Xptxas -v [-DSINGLE_VT] -DSCORE_REGS=144 -DOUTPUT_REGS=112 \
//       bench/probe/pair_registers.cu -o /tmp/pair_registers.cubin
#ifndef SCORE_REGS
#define SCORE_REGS 144
#endif
#ifndef OUTPUT_REGS
#define OUTPUT_REGS 112
#endif
#include "../../templates/wgmma.cuh"   // (stands alone: no prelude)

using namespace snapmla;

static_assert(2 * (SCORE_REGS + OUTPUT_REGS) <= 512, "the register file: 128 x 512 threads");

__device__ __forceinline__ void mma_rs(float (&d)[32], const unsigned (&a)[4], unsigned long long b, int acc)
{
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n64k32.f32.e4m3.e4m3 {"
                 "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,"
                 "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, {%32,%33,%34,%35}, %36, p, 1, 1;\n}\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
                   "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
                   "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
                   "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(acc));
}
// This thread's warpgroup to n registers a thread (the launch gives 128).
template <int N> __device__ __forceinline__ void set_registers()
{
    if constexpr (N > 128)
        registers_take<N>();
    else
        registers_give_back<N>();
}
// K and P' tiles (a model: the layout only has to be a valid one).
__device__ __forceinline__ unsigned long long desc(const void *p) { return smem_desc(p, 16, 1024, 1); }

extern "C" __global__ void __launch_bounds__(512, 1) pair_registers(const float *scales, unsigned char *out, int tiles)
{
    extern __shared__ __align__(1024) unsigned char smem[];   // [0, 32K) Q, then 4 K/V slots of 32K, then P'
    const int tid = threadIdx.x, wg = __shfl_sync(~0u, tid / 128, 0), lane = tid % 32;
    unsigned char *pbuf = smem + 5 * 32768;
    if (wg < 2) {   // score: Q latent in registers, every other tile of the pair's (this CTA's share)
        set_registers<SCORE_REGS>();
        unsigned q[16][4];
#pragma unroll
        for (int k = 0; k < 16; ++k)
#pragma unroll
            for (int i = 0; i < 4; ++i)
                q[k][i] = ((const unsigned *)smem)[(k * 128 + tid % 128) * 4 + i];
        float m[2] = {-1e30f, -1e30f}, l[2] = {0.f, 0.f};
        for (int t = wg; t < tiles; t += 4) {
            const unsigned char *k_tile = smem + 32768 * (1 + t % 4);
            float s[32];
            wgmma_fence();
#pragma unroll
            for (int k = 0; k < 16; ++k)
                mma_rs(s, q[k], desc(k_tile + 2048 * k), k > 0);
            wgmma_commit();
            wgmma_wait<0>();
            fence_registers(s);
            float ts[16];
#pragma unroll
            for (int j = 0; j < 16; ++j)
                ts[j] = scales[t * 64 + 8 * (j / 2) + 2 * (lane % 4) + j % 2];
            unsigned pk[8];
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                float mx = -1e30f;
#pragma unroll
                for (int j = 0; j < 16; ++j)
                    mx = fmaxf(mx, s[2 * (j / 2) * 2 + 2 * h + j % 2] * ts[j]);
                mx = fmaxf(mx, __shfl_xor_sync(~0u, mx, 1));
                mx = fmaxf(mx, __shfl_xor_sync(~0u, mx, 2));
                const float mn = fmaxf(m[h], mx), alpha = exp2f(m[h] - mn);
                float sum = 0.f;
#pragma unroll
                for (int j = 0; j < 16; ++j) {
                    const int i = 2 * (j / 2) * 2 + 2 * h + j % 2;
                    s[i] = exp2f(s[i] * ts[j] - mn);
                    sum += s[i];
                }
                l[h] = l[h] * alpha + sum;
                m[h] = mn;
            }
#pragma unroll
            for (int i = 0; i < 8; ++i) {
                unsigned short lo, hi;
                asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(lo) : "f"(s[4 * i + 1]), "f"(s[4 * i]));
                asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(hi) : "f"(s[4 * i + 3]), "f"(s[4 * i + 2]));
                pk[i] = lo | (unsigned)hi << 16;
            }
#pragma unroll
            for (int i = 0; i < 8; ++i)
                ((unsigned *)pbuf)[(t % 3) * 1024 + i * 128 + tid % 128] = pk[i];
            __syncwarp();
        }
        if (lane % 4 == 0)
            ((float2 *)out)[tid] = make_float2(m[0] + l[0], m[1] + l[1]);
    } else {   // output: O^T for 128 channels, V^T of tile t+1 loaded while t's products run
        set_registers<OUTPUT_REGS>();
        const int ow = wg - 2;
        float o[2][32];
#pragma unroll
        for (int mb = 0; mb < 2; ++mb)
#pragma unroll
            for (int i = 0; i < 32; ++i)
                o[mb][i] = 0.f;
        unsigned a[2][2][2][4];   // [buffer][m-block][k-step][fragment]
        auto load_vt = [&](unsigned (&f)[2][2][4], int t) {
            const unsigned *v = (const unsigned *)(smem + 32768 * (1 + t % 4)) + ow * 32;
#pragma unroll
            for (int mb = 0; mb < 2; ++mb)
#pragma unroll
                for (int ks = 0; ks < 2; ++ks)
#pragma unroll
                    for (int i = 0; i < 4; ++i) {
                        const unsigned w0 = v[(ks * 32 + i * 8 + lane / 4) * 128 + mb * 16 + tid % 16];
                        const unsigned w1 = v[(ks * 32 + i * 8 + lane / 4 + 4) * 128 + mb * 16 + tid % 16];
                        f[mb][ks][i] = __byte_perm(w0, w1, 0x5140 + i);
                    }
        };
#ifdef SINGLE_VT   // one tile's V^T held: loaded once the last tile's products retire
        for (int t = 0; t < tiles; ++t) {
            wgmma_wait<0>();
            fence_registers(o[0]);
            fence_registers(o[1]);
            load_vt(a[0], t);
            const unsigned long long p = desc(pbuf + (t % 3) * 4096);
            wgmma_fence();
#pragma unroll
            for (int mb = 0; mb < 2; ++mb)
#pragma unroll
                for (int ks = 0; ks < 2; ++ks)
                    mma_rs(o[mb], a[0][mb][ks], p + 64 * ks, 1);
            wgmma_commit();
        }
#else
        load_vt(a[0], 0);
        for (int t = 0; t < tiles; t += 2) {
#pragma unroll
            for (int b = 0; b < 2; ++b) {
                const unsigned long long p = desc(pbuf + ((t + b) % 3) * 4096);
                wgmma_fence();
#pragma unroll
                for (int mb = 0; mb < 2; ++mb)
#pragma unroll
                    for (int ks = 0; ks < 2; ++ks)
                        mma_rs(o[mb], a[b][mb][ks], p + 64 * ks, 1);
                wgmma_commit();
                wgmma_wait<1>();   // the last tile's products, which read a[b ^ 1]
                load_vt(a[b ^ 1], t + b + 1);   // under this tile's products
            }
        }
#endif
        wgmma_wait<0>();
        fence_registers(o[0]);
        fence_registers(o[1]);
#pragma unroll
        for (int mb = 0; mb < 2; ++mb)
#pragma unroll
            for (int i = 0; i < 32; ++i)
                ((float *)out)[4096 + ((mb * 32 + i) * 256 + tid - 256)] = o[mb][i];
    }
}
