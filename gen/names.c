/* Names of the API's enums for messages and generated headers, and the one
 * formula of a cache page's size per format (docs/cache-formats.md). */
#include "names.h"

const char *snapmla_status_name(snapmla_status status)
{
    static const char *const names[] = {
        [SNAPMLA_OK] = "ok", [SNAPMLA_ERR_INVALID_ARG] = "invalid argument",
        [SNAPMLA_ERR_SPEC] = "bad spec", [SNAPMLA_ERR_IO] = "I/O error",
        [SNAPMLA_ERR_COMPILE] = "compile error", [SNAPMLA_ERR_CUDA] = "CUDA error",
        [SNAPMLA_ERR_NO_DEVICE] = "no device", [SNAPMLA_ERR_NOMEM] = "out of memory",
        [SNAPMLA_ERR_CACHE] = "corrupt cache entry", [SNAPMLA_ERR_UNSUPPORTED] = "unsupported",
        [SNAPMLA_ERR_INTERNAL] = "internal error",
    };
    return (unsigned)status < sizeof names / sizeof names[0] ? names[status] : "unknown status";
}

const char *snapmla_kernel_kind_name(snapmla_kernel_kind kind)
{
    switch (kind) {
    case SNAPMLA_KERNEL_MLA_DECODE: return "mla_decode";
    case SNAPMLA_KERNEL_MLA_COMBINE: return "mla_combine";
    case SNAPMLA_KERNEL_KV_APPEND: return "kv_append";
    }
    return "?";
}

const char *snapmla_cache_format_name(snapmla_cache_format format)
{
    switch (format) {
    case SNAPMLA_FORMAT_BF16: return "bf16";
    case SNAPMLA_FORMAT_FP8_PER_TOKEN: return "fp8_per_token";
    case SNAPMLA_FORMAT_FP8_PER_TILE128: return "fp8_per_tile128";
    }
    return "?";
}

const char *snapmla_arch_name(snapmla_arch arch)
{
    switch (arch) {
    case SNAPMLA_ARCH_SM80: return "sm_80";
    case SNAPMLA_ARCH_SM89: return "sm_89";
    case SNAPMLA_ARCH_SM90A: return "sm_90a";
    }
    return "?";
}

const char *snapmla_engine_name(snapmla_engine engine)
{
    switch (engine) {
    case SNAPMLA_ENGINE_SIMT: return "simt";
    case SNAPMLA_ENGINE_MMA_SYNC: return "mma_sync";
    case SNAPMLA_ENGINE_WGMMA: return "wgmma";
    }
    return "?";
}

const char *snapmla_compute_name(snapmla_compute compute)
{
    switch (compute) {
    case SNAPMLA_COMPUTE_BF16: return "bf16";
    case SNAPMLA_COMPUTE_FP8: return "fp8";
    }
    return "?";
}

size_t snapmla_cache_page_bytes(const snapmla_variant *v)
{
    size_t P = (size_t)v->page_size, L = (size_t)v->latent_dim, R = (size_t)v->rope_dim;
    switch (v->cache_format) {
    case SNAPMLA_FORMAT_BF16: return P * (L + R) * 2;
    case SNAPMLA_FORMAT_FP8_PER_TOKEN: return (P * (L + 2 * R + 4) + 15) / 16 * 16;
    case SNAPMLA_FORMAT_FP8_PER_TILE128: return P * (L + L / 32 + 2 * R);
    }
    return 0;
}

const char *snapmla_cache_format_tag(snapmla_cache_format format)
{
    switch (format) {
    case SNAPMLA_FORMAT_BF16: return "bf16";
    case SNAPMLA_FORMAT_FP8_PER_TOKEN: return "fp8tok";
    case SNAPMLA_FORMAT_FP8_PER_TILE128: return "fp8t128";
    }
    return "?";
}
