/* Code generation, PTX part: the warpgroup MMA wrappers a wgmma variant
 * needs, one per shape. Written by code because an m64nN wrapper names N/2
 * accumulator registers in its asm operand list; the templates then call
 * them by name (wgmma_qk_fp8, wgmma_qk_bf16, wgmma_pv_fp8). */
#include "emit_wgmma.h"

/* One wrapper: D[64 x n] (+)= A[64 x k] B[k x n]^T with fp32 accumulators.
 * A comes from shared memory (descriptor) or from 4 registers; B always from
 * shared memory. `tail` holds the immediates after the scale-d predicate. */
static void wrapper(snapmla_strbuf *out, const char *name, const char *comment, int n,
                    const char *shape_and_types, int a_in_registers, const char *tail)
{
    int acc = n / 2;   /* fp32 accumulators per thread of the warpgroup */
    snapmla_strbuf_printf(out, "// %s\n", comment);
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
        snapmla_strbuf_printf(out, "\"+f\"(d[%d])%s%s", i, i + 1 < acc ? ", " : "",
                              (i % 8 == 7 && i + 1 < acc) ? "\n                   " : "");
    if (a_in_registers)
        snapmla_strbuf_puts(out, "\n                 : \"r\"(a[0]), \"r\"(a[1]), \"r\"(a[2]), \"r\"(a[3]), "
                                 "\"l\"(b), \"r\"(accumulate));\n}\n\n");
    else
        snapmla_strbuf_puts(out, "\n                 : \"l\"(a), \"l\"(b), \"r\"(accumulate));\n}\n\n");
}

void snapmla_emit_wgmma_wrappers(snapmla_strbuf *out, const snapmla_variant *v)
{
    char shape[96];
    int half = v->latent_dim / 2;
    snapmla_strbuf_puts(out, "// ---- wgmma wrappers of this variant (gen/emit_wgmma.c) ---------------------\n"
                             "namespace snapmla {\n\n");
    snprintf(shape, sizeof shape, "m64n%dk32.f32.e4m3.e4m3", v->kv_tile);
    wrapper(out, "wgmma_qk_fp8", "scores, latent part: e4m3 Q (smem) x e4m3 K (smem), K-major both",
            v->kv_tile, shape, 0, ", 1, 1");
    snprintf(shape, sizeof shape, "m64n%dk16.f32.bf16.bf16", v->kv_tile);
    wrapper(out, "wgmma_qk_bf16", "scores, RoPE part: BF16 Q (smem) x BF16 K (smem), K-major both",
            v->kv_tile, shape, 0, ", 1, 1, 0, 0");
    snprintf(shape, sizeof shape, "m64n%dk32.f32.e4m3.e4m3", half);
    wrapper(out, "wgmma_pv_fp8", "output: e4m3 P (registers) x e4m3 V^T (smem, tokens contiguous)",
            half, shape, 1, ", 1, 1");
    snapmla_strbuf_puts(out, "}  // namespace snapmla\n\n");
}
