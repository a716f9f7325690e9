/* Code generation, PTX part: the warpgroup MMA wrappers a wgmma variant
 * needs, one per shape. Written by code because an m64nN wrapper names N/2
 * accumulator registers in its asm operand list; the templates then call
 * them by name (FP8: wgmma_qk_fp8, wgmma_qk_bf16, wgmma_pvt_fp8; BF16:
 * wgmma_qk_bf16, wgmma_pv_bf16_rs, wgmma_pv_bf16_ss). */
#include "emit_wgmma.h"

#include <string.h>

#include "resources.h"
#include "templates.h"

/* One wrapper: D[64 x n] (+)= A[64 x k] B[k x n]^T with fp32 accumulators.
 * A comes from shared memory (descriptor) or from 4 registers; B always from
 * shared memory. `tail` holds the immediates after the scale-d predicate.
 * `halves` 2: D is two arrays, columns [0, n/2) and [n/2, n) (two tiles'
 * scores in one product). */
static void wrapper_in(snapmla_strbuf *out, const char *name, const char *comment, int n,
                       const char *shape_and_types, int a_in_registers, const char *tail, int halves)
{
    int acc = n / 2;   /* fp32 accumulators per thread of the warpgroup */
    int part = acc / halves;
    snapmla_strbuf_printf(out, "// %s\n", comment);
    if (halves == 2)
        snapmla_strbuf_printf(out, "__device__ __forceinline__ void %s(float (&d)[%d], float (&e)[%d], %s, "
                                   "unsigned long long b, int accumulate)\n{\n",
                              name, part, part, a_in_registers ? "const unsigned (&a)[4]" : "unsigned long long a");
    else
        snapmla_strbuf_printf(out, "__device__ __forceinline__ void %s(float (&d)[%d], %s, "
                                   "unsigned long long b, int accumulate)\n{\n",
                              name, acc, a_in_registers ? "const unsigned (&a)[4]" : "unsigned long long a");
    int a_ops = a_in_registers ? 4 : 1;
    int pred = acc + a_ops + 1;
    snapmla_strbuf_printf(out, "    asm volatile(\"{\\n.reg .pred p;\\nsetp.ne.b32 p, %%%d, 0;\\n\"\n"
                               "                 \"wgmma.mma_async.sync.aligned.%s {\"\n                 \"",
                          pred, shape_and_types);
    for (int i = 0; i < acc; ++i)
        snapmla_strbuf_printf(out, "%%%d%s%s", i, i + 1 < acc ? "," : "",
                              (i % 16 == 15 && i + 1 < acc) ? "\"\n                 \"" : "");
    if (a_in_registers)
        snapmla_strbuf_printf(out, "}, {%%%d,%%%d,%%%d,%%%d}, %%%d, p%s;\\n}\\n\"\n", acc, acc + 1,
                              acc + 2, acc + 3, acc + 4, tail);
    else
        snapmla_strbuf_printf(out, "}, %%%d, %%%d, p%s;\\n}\\n\"\n", acc, acc + 1, tail);
    snapmla_strbuf_puts(out, "                 : ");
    for (int i = 0; i < acc; ++i)
        snapmla_strbuf_printf(out, "\"+f\"(%c[%d])%s%s", i < part ? 'd' : 'e', i % part, i + 1 < acc ? ", " : "",
                              (i % 8 == 7 && i + 1 < acc) ? "\n                   " : "");
    if (a_in_registers)
        snapmla_strbuf_puts(out, "\n                 : \"r\"(a[0]), \"r\"(a[1]), \"r\"(a[2]), \"r\"(a[3]), "
                                 "\"l\"(b), \"r\"(accumulate));\n}\n\n");
    else
        snapmla_strbuf_puts(out, "\n                 : \"l\"(a), \"l\"(b), \"r\"(accumulate));\n}\n\n");
}

static void wrapper(snapmla_strbuf *out, const char *name, const char *comment, int n,
                    const char *shape_and_types, int a_in_registers, const char *tail)
{
    wrapper_in(out, name, comment, n, shape_and_types, a_in_registers, tail, 1);
}

void snapmla_emit_wgmma_wrappers(snapmla_strbuf *out, const snapmla_variant *v)
{
    char shape[96];
    snapmla_strbuf_puts(out, "// ---- wgmma wrappers of this variant (gen/emit_wgmma.c) ---------------------\n"
                             "namespace snapmla {\n\n");
    snprintf(shape, sizeof shape, "m64n%dk16.f32.bf16.bf16", v->kv_tile);
    wrapper(out, "wgmma_qk_bf16", "scores (the RoPE part on the FP8 path): BF16 Q (smem) x BF16 K (smem), "
            "K-major both", v->kv_tile, shape, 0, ", 1, 1, 0, 0");
    if (v->compute == SNAPMLA_COMPUTE_FP8) {
        snprintf(shape, sizeof shape, "m64n%dk32.f32.e4m3.e4m3", v->kv_tile);
        wrapper(out, "wgmma_qk_fp8", "scores, latent part: e4m3 Q (smem) x e4m3 K (smem), K-major both",
                v->kv_tile, shape, 0, ", 1, 1");
        if (snapmla_variant_score_pairs(v)) {   /* decode_wgmma_fp8_pair.cu: two tiles' scores at once */
            snprintf(shape, sizeof shape, "m64n%dk32.f32.e4m3.e4m3", 2 * v->kv_tile);
            wrapper_in(out, "wgmma_qk_fp8_x2", "scores of a tile pair, latent part: e4m3 Q (smem) x e4m3 K "
                       "(smem, the pair's rows at one stride)", 2 * v->kv_tile, shape, 0, ", 1, 1", 2);
            snprintf(shape, sizeof shape, "m64n%dk16.f32.bf16.bf16", 2 * v->kv_tile);
            wrapper_in(out, "wgmma_qk_bf16_x2", "scores of a tile pair, RoPE part: BF16 Q (smem) x BF16 K "
                       "(smem)", 2 * v->kv_tile, shape, 0, ", 1, 1, 0, 0", 2);
        }
        snprintf(shape, sizeof shape, "m64n%dk32.f32.e4m3.e4m3", v->q_tile);
        wrapper(out, "wgmma_pvt_fp8",
                "output, transposed: e4m3 V^T (registers) x e4m3 P' (smem, tokens contiguous)",
                v->q_tile, shape, 1, ", 1, 1");
    } else {
        /* O = P V over a warpgroup's half of the latent; V is the K tile read
         * MN-major (the last immediate transposes B) */
        int half = v->latent_dim / 2;
        snprintf(shape, sizeof shape, "m64n%dk16.f32.bf16.bf16", half);
        wrapper(out, "wgmma_pv_bf16_rs", "output: BF16 P (registers) x BF16 V (smem, MN-major)", half, shape,
                1, ", 1, 1, 1");
        wrapper(out, "wgmma_pv_bf16_ss", "output: BF16 P (smem, K-major) x BF16 V (smem, MN-major)", half,
                shape, 0, ", 1, 1, 0, 1");
    }
    snapmla_strbuf_puts(out, "}  // namespace snapmla\n\n");
}

/* The tensor-core peak probe (templates/mma_peak.cu): the wgmma plumbing,
 * its m64n256 and m64n64 wrappers and the kernels, with no spec behind it. */
void snapmla_emit_mma_peak(snapmla_strbuf *out)
{
    size_t size;
    snapmla_strbuf_puts(out, "// Generated by snapmla: tensor-core peak probe (sm_90a).\n\n");
    const char *plumbing = snapmla_template("wgmma.cuh", &size);
    snapmla_strbuf_append(out, plumbing, size);
    snapmla_strbuf_puts(out, "\nnamespace snapmla {\n\n");
    wrapper(out, "wgmma_peak_fp8", "peak probe: e4m3 x e4m3, both from shared memory", 256,
            "m64n256k32.f32.e4m3.e4m3", 0, ", 1, 1");
    wrapper(out, "wgmma_peak_bf16", "peak probe: BF16 x BF16, both from shared memory", 256,
            "m64n256k16.f32.bf16.bf16", 0, ", 1, 1, 0, 0");
    /* the FP8 decode's own shapes: QK from shared memory, PV with A in registers */
    wrapper(out, "wgmma_n64_fp8_ss", "decode-shape probe: e4m3 x e4m3, both from shared memory", 64,
            "m64n64k32.f32.e4m3.e4m3", 0, ", 1, 1");
    wrapper(out, "wgmma_n64_fp8_rs", "decode-shape probe: e4m3 A from registers x e4m3 B (smem)", 64,
            "m64n64k32.f32.e4m3.e4m3", 1, ", 1, 1");
    snapmla_strbuf_puts(out, "}  // namespace snapmla\n\n");
    const char *kernels = snapmla_template("mma_peak.cu", &size);
    snapmla_strbuf_append(out, kernels, size);
}
