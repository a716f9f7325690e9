/* Judging combinations: a variant whose values are each allowed can still be
 * impossible together (shared memory over the arch's limit, too many
 * accumulators, a format with the wrong layout). Caught here, at generation
 * time, never at launch. */
#include "spec_check.h"

#include <stdarg.h>
#include <stdio.h>

#include "resources.h"

static int failed(char *reason, size_t size, const char **fields, const char *const *involved,
                  const char *format, ...) __attribute__((format(printf, 5, 6)));

static int failed(char *reason, size_t size, const char **fields, const char *const *involved,
                  const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(reason, size, format, args);
    va_end(args);
    for (int i = 0; i < SNAPMLA_CHECK_FIELDS; ++i)
        fields[i] = involved[i];
    return 0;
}

/* The wgmma engine has one tile (64 query rows x 64 tokens) and two paths:
 * FP8 (two warpgroups, templates/decode_wgmma_fp8.cu, or four in roles,
 * templates/decode_wgmma_fp8_roles.cu) and BF16 (templates/decode_wgmma_bf16.cu). */
static int wgmma_fits(const snapmla_variant *v, char *reason, size_t size, const char **fields)
{
    if (v->arch != SNAPMLA_ARCH_SM90A) {
        static const char *const f[] = {"tile.engine", "target.arch", NULL};
        return failed(reason, size, fields, f,
                      "tile.engine wgmma needs Hopper's warpgroup MMA: target.arch must be sm_90a "
                      "(given %s)", snapmla_arch_name(v->arch));
    }
    int tile128 = v->cache_format == SNAPMLA_FORMAT_FP8_PER_TILE128;
    int fp8_path = v->compute == SNAPMLA_COMPUTE_FP8 &&
                   (v->cache_format == SNAPMLA_FORMAT_FP8_PER_TOKEN || tile128);
    int bf16_path = v->compute == SNAPMLA_COMPUTE_BF16 && v->cache_format == SNAPMLA_FORMAT_BF16;
    if (!fp8_path && !bf16_path) {
        static const char *const f[] = {"tile.engine", "target.compute", "cache.format"};
        return failed(reason, size, fields, f,
                      "tile.engine wgmma generates two paths in this version: target.compute fp8 on "
                      "cache.format fp8_per_token or fp8_per_tile128, and target.compute bf16 on "
                      "cache.format bf16 (given %s on %s); other pairs run on tile.engine mma_sync",
                      snapmla_compute_name(v->compute),
                      snapmla_cache_format_name(v->cache_format));
    }
    if ((bf16_path || tile128) && !snapmla_variant_kv_tma(v)) {
        static const char *const f[] = {"cache.page_size", "tile.engine", "cache.format"};
        return failed(reason, size, fields, f,
                      "the wgmma path on cache.format %s copies KV tiles by TMA, one box per page "
                      "piece: cache.page_size must be 16 or more and divide or be a multiple of "
                      "tile.kv_tokens %d (given %d)", snapmla_cache_format_name(v->cache_format),
                      v->kv_tile, v->page_size);
    }
    if (v->q_tile != 64 || v->kv_tile != 64 || (v->warps != 8 && v->warps != 16)) {
        static const char *const f[] = {"tile.q_rows", "tile.kv_tokens", "tile.warps"};
        return failed(reason, size, fields, f,
                      "tile.engine wgmma works on 64 query rows x 64 tokens with two or four warpgroups: "
                      "tile.q_rows 64, tile.kv_tokens 64, tile.warps 8 or 16 (given %d, %d, %d)",
                      v->q_tile, v->kv_tile, v->warps);
    }
    /* tile.warps 16: the FP8 path's role warpgroups (templates/decode_wgmma_fp8_roles.cu) */
    if (v->warps == 16 && (!fp8_path || !snapmla_variant_kv_tma(v))) {
        static const char *const f[] = {"tile.warps", "cache.format", "cache.page_size"};
        return failed(reason, size, fields, f,
                      "tile.warps 16 (the role warpgroups) is the FP8 path on cache.format "
                      "fp8_per_token or fp8_per_tile128 with TMA copies: target.compute fp8, "
                      "cache.page_size 16 or more that divides or is a multiple of 64 (given %s on "
                      "%s, page %d); other paths take tile.warps 8",
                      snapmla_compute_name(v->compute), snapmla_cache_format_name(v->cache_format),
                      v->page_size);
    }
    if (v->stages < 2) {
        static const char *const f[] = {"tile.stages", "tile.engine", NULL};
        return failed(reason, size, fields, f,
                      "tile.engine wgmma has its two warpgroups on two KV tiles at once: "
                      "tile.stages must be 2 or more (given %d)", v->stages);
    }
    if (v->schedule == SNAPMLA_SCHEDULE_PAIR && v->stages != 2) {
        static const char *const f[] = {"tile.schedule", "tile.stages", NULL};
        return failed(reason, size, fields, f,
                      "tile.schedule pair works on a pair of tiles in the ring's two slots: "
                      "tile.stages must be 2 (given %d)", v->stages);
    }
    if (v->latent_dim % 256 != 0 || v->latent_dim > 512 ||
        (v->rope_dim != 32 && v->rope_dim != 64 && v->rope_dim != 128)) {
        static const char *const f[] = {"model.latent_dim", "model.rope_dim", "tile.engine"};
        return failed(reason, size, fields, f,
                      "tile.engine wgmma splits the output between two warpgroups in 128-channel "
                      "blocks: model.latent_dim must be 256 or 512 and model.rope_dim 32, 64 or 128 "
                      "(given %d, %d)", v->latent_dim, v->rope_dim);
    }
    return 1;
}

int snapmla_variant_check(snapmla_variant *v, char *reason, size_t size,
                          const char *fields[SNAPMLA_CHECK_FIELDS])
{
    v->threads = v->warps * 32;
    v->smem_bytes = snapmla_variant_smem_bytes(v);
    int uses_cache = v->kernel != SNAPMLA_KERNEL_MLA_COMBINE;
    if (uses_cache && v->cache_format == SNAPMLA_FORMAT_FP8_PER_TOKEN &&
        v->rope_layout != SNAPMLA_ROPE_PLANAR) {
        static const char *const f[] = {"cache.format", "cache.rope_layout", NULL};
        return failed(reason, size, fields, f,
                      "cache.format fp8_per_token stores planes: cache.rope_layout must be planar");
    }
    if (uses_cache && v->cache_format == SNAPMLA_FORMAT_FP8_PER_TILE128) {
        static const char *const f[] = {"model.latent_dim", "cache.format", "cache.rope_layout"};
        if (v->rope_layout != SNAPMLA_ROPE_INTERLEAVED)
            return failed(reason, size, fields, f,
                          "cache.format fp8_per_tile128 is FlashMLA's token-interleaved layout: "
                          "cache.rope_layout must be interleaved");
        int token = v->latent_dim + v->latent_dim / 32 + 2 * v->rope_dim;
        if (v->latent_dim % 128 != 0 || token % 16 != 0)
            return failed(reason, size, fields, f,
                          "cache.format fp8_per_tile128 needs model.latent_dim a multiple of 128 "
                          "and a token of a multiple of 16 bytes; latent %d + rope %d gives %d",
                          v->latent_dim, v->rope_dim, token);
    }
    if (v->kernel == SNAPMLA_KERNEL_KV_APPEND && v->cache_format != SNAPMLA_FORMAT_BF16 &&
        v->arch == SNAPMLA_ARCH_SM80) {
        static const char *const f[] = {"cache.format", "target.arch", NULL};
        return failed(reason, size, fields, f,
                      "writing an FP8 cache needs the e4m3 conversion of sm_89 or later; "
                      "target.arch is sm_80");
    }
    if (v->kernel != SNAPMLA_KERNEL_MLA_DECODE)
        return 1;
    if (v->schedule != SNAPMLA_SCHEDULE_AUTO &&
        (v->engine != SNAPMLA_ENGINE_WGMMA || v->compute != SNAPMLA_COMPUTE_BF16)) {
        static const char *const f[] = {"tile.schedule", "tile.engine", "target.compute"};
        return failed(reason, size, fields, f,
                      "tile.schedule %s picks the order of the Hopper BF16 path's two warpgroups: it "
                      "needs tile.engine wgmma and target.compute bf16 (given %s, %s); elsewhere leave "
                      "it auto", v->schedule == SNAPMLA_SCHEDULE_PAIR ? "pair" : "seesaw",
                      snapmla_engine_name(v->engine), snapmla_compute_name(v->compute));
    }
    if (v->engine == SNAPMLA_ENGINE_WGMMA && !wgmma_fits(v, reason, size, fields))
        return 0;
    int limit = snapmla_arch_smem_limit(v->arch);
    if (v->smem_bytes > limit) {
        static const char *const f[] = {"tile.kv_tokens", "tile.q_rows", "tile.stages"};
        return failed(reason, size, fields, f,
                      "needs %d bytes of shared memory per CTA, over the %d that %s allows: "
                      "lower tile.kv_tokens, tile.stages or tile.q_rows",
                      v->smem_bytes, limit, snapmla_arch_name(v->arch));
    }
    if (v->engine == SNAPMLA_ENGINE_WGMMA)
        return 1;
    if (v->split_policy == SNAPMLA_SPLIT_BALANCED) {
        static const char *const f[] = {"split.policy", "tile.engine", NULL};
        return failed(reason, size, fields, f,
                      "split.policy balanced is planned on the device for the persistent Hopper "
                      "launch: it needs tile.engine wgmma (given %s)", snapmla_engine_name(v->engine));
    }
    if (v->compute == SNAPMLA_COMPUTE_FP8) {
        static const char *const f[] = {"target.compute", "tile.engine", NULL};
        return failed(reason, size, fields, f,
                      "target.compute fp8 runs on FP8 tensor cores: it needs tile.engine wgmma "
                      "(given %s)", snapmla_engine_name(v->engine));
    }
    if (v->engine == SNAPMLA_ENGINE_MMA_SYNC) {
        static const char *const f[] = {"tile.q_rows", "tile.warps", "tile.engine"};
        if (v->q_tile < 16)
            return failed(reason, size, fields, f,
                          "tile.engine mma_sync works on 16 query rows at a time: tile.q_rows must "
                          "be 16, 32 or 64 (given %d)", v->q_tile);
        if (v->warps != 2 * (v->q_tile / 16))
            return failed(reason, size, fields, f,
                          "tile.engine mma_sync puts 2 warps on each 16 query rows: tile.q_rows "
                          "%d needs tile.warps %d (given %d)",
                          v->q_tile, 2 * (v->q_tile / 16), v->warps);
        return 1;
    }
    int acc = snapmla_decode_acc_per_thread(v);
    if (acc > SNAPMLA_DECODE_ACC_MAX) {
        static const char *const f[] = {"tile.q_rows", "tile.warps", NULL};
        return failed(reason, size, fields, f,
                      "needs %d fp32 accumulators per thread, over %d: lower tile.q_rows or "
                      "raise tile.warps", acc, SNAPMLA_DECODE_ACC_MAX);
    }
    return 1;
}
