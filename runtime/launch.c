/* Launch stage of the pipeline: checks every argument of a decode, combine or
 * append call against the variant it was generated for, then launches
 * through the driver API. The parameter structs mirror the templates'. */
#include <math.h>
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "context.h"
#include "error.h"
#include "resources.h"

/* Mirrors DecodeParams in templates/decode_common.cuh. */
typedef struct decode_params {
    uint64_t q, cache, block_table, seqlens, out, lse, o_part, lse_part, split_counts, plan;
    int64_t page_stride, num_pages;
    int32_t block_table_stride, batch, num_splits;
    float softmax_scale;
    int32_t plan_ctas;
} decode_params;
_Static_assert(sizeof(decode_params) == 120, "DecodeParams layout");
_Static_assert(offsetof(decode_params, plan_ctas) == 112, "DecodeParams layout");

/* Mirrors KvMaps in templates/wgmma_decode.cuh: the cache's latent and RoPE
 * rows (and fp8_per_tile128's per-token scales) as TMA tensor maps, the
 * wgmma kernel's second parameter. */
typedef struct kv_maps {
    CUtensorMap latent, rope, scales;
} kv_maps;
_Static_assert(sizeof(kv_maps) == 384, "KvMaps layout");

/* Mirrors CombineParams in templates/combine.cu. */
typedef struct combine_params {
    uint64_t o_part, lse_part, split_counts, out, lse;
    int32_t batch, num_splits, skip_single, unused;
} combine_params;
_Static_assert(sizeof(combine_params) == 56, "CombineParams layout");

/* Mirrors AppendParams in templates/append.cu. */
typedef struct append_params {
    uint64_t latent, rope, slots, cache, bad_slots;
    int64_t num_tokens, latent_stride, rope_stride, num_pages, page_stride;
} append_params;
_Static_assert(sizeof(append_params) == 80, "AppendParams layout");

#define ADDRESS(pointer) ((uint64_t)(uintptr_t)(pointer))

static snapmla_status check_kind(const snapmla_kernel *kernel, snapmla_kernel_kind kind,
                                 const void *args, const char *call, snapmla_error *err)
{
    if (!kernel || !args)
        return snapmla_fail(err, SNAPMLA_ERR_INVALID_ARG, "%s: kernel and args must not be NULL", call);
    if (kernel->variant.kernel != kind)
        return snapmla_fail(err, SNAPMLA_ERR_INVALID_ARG, "%s: variant '%s' is a %s kernel, not %s",
                            call, kernel->variant.name, snapmla_kernel_kind_name(kernel->variant.kernel),
                            snapmla_kernel_kind_name(kind));
    return SNAPMLA_OK;
}

static snapmla_status require(int ok, snapmla_error *err, const char *call, const char *what)
{
    return ok ? SNAPMLA_OK : snapmla_fail(err, SNAPMLA_ERR_INVALID_ARG, "%s: %s", call, what);
}

#define REQUIRE(cond, what)                                                  \
    do {                                                                     \
        snapmla_status s_ = require((cond), err, call, (what));              \
        if (s_ != SNAPMLA_OK)                                                \
            return s_;                                                       \
    } while (0)

/* ---- decode -------------------------------------------------------------- */

static int row_blocks(const snapmla_variant *v)
{
    return (v->q_heads * v->q_len + v->q_tile - 1) / v->q_tile;
}

typedef struct workspace_layout {
    size_t split_counts, plan, lse_part, o_part, total;
} workspace_layout;

static size_t round_up(size_t x, size_t to) { return (x + to - 1) / to * to; }

static workspace_layout layout_workspace(const snapmla_variant *v, int batch)
{
    size_t rows = (size_t)v->q_heads * v->q_len;
    size_t parts = (size_t)batch * (size_t)v->max_splits * rows;
    workspace_layout w;
    w.split_counts = 0;
    /* the Hopper engine's work order: queue head, item count and the count
     * of decode CTAs done (16 bytes with a spare int), then an
     * item of 16 bytes per row block of each request (per piece of one,
     * up to max_splits, when the plan balances) */
    w.plan = round_up((size_t)batch * 4, 256);
    size_t pieces = v->split_policy == SNAPMLA_SPLIT_BALANCED ? (size_t)v->max_splits : 1;
    size_t plan_bytes =
        v->engine == SNAPMLA_ENGINE_WGMMA ? 16 + (size_t)batch * (size_t)row_blocks(v) * pieces * 16 : 0;
    w.lse_part = w.plan + round_up(plan_bytes, 256);
    w.o_part = w.lse_part + round_up(parts * 4, 256);
    w.total = w.o_part + parts * (size_t)v->latent_dim * 4;
    return w;
}

size_t snapmla_decode_workspace_bytes(const snapmla_kernel *kernel, int batch)
{
    if (!kernel || kernel->variant.kernel != SNAPMLA_KERNEL_MLA_DECODE || batch <= 0)
        return 0;
    return layout_workspace(&kernel->variant, batch).total;
}

/* Splits per request for this launch: as many as fit the GPU's resident
 * CTAs in one wave (floor: a second, partial wave costs more than it saves,
 * and every split adds partial outputs for the combine to read). */
static int launch_splits(const snapmla_kernel *k, int batch, int requested)
{
    const snapmla_variant *v = &k->variant;
    if (requested > 0)
        return requested;
    if (v->split_policy == SNAPMLA_SPLIT_NONE)
        return 1;
    if (v->split_policy == SNAPMLA_SPLIT_FIXED)
        return v->max_splits;
    long ctas = (long)batch * row_blocks(v);
    long want = (long)k->sm_count * k->ctas_per_sm / ctas;
    return (int)(want < 1 ? 1 : want > v->max_splits ? v->max_splits : want);
}

/* Whether `function` starts with griddepcontrol.wait (templates/prelude.cuh,
 * wait_prior_grids): the wgmma decode kernel, its plan and every combine,
 * when built for sm_90a. The SIMT and mma decode kernels do not wait, so
 * they are launched plainly. */
static int waits_for_prior_grids(const snapmla_kernel *k, CUfunction function)
{
    if (k->variant.arch != SNAPMLA_ARCH_SM90A)
        return 0;
    if (function == k->combine_function || function == k->plan_function)
        return 1;
    return function == k->main_function &&
           (k->variant.kernel == SNAPMLA_KERNEL_MLA_COMBINE ||
            (k->variant.kernel == SNAPMLA_KERNEL_MLA_DECODE && k->variant.engine == SNAPMLA_ENGINE_WGMMA));
}

/* Launches `threads` per CTA with one parameter struct, or two (second
 * not NULL). Hopper kernels go as programmatic dependent launches: their
 * CTAs may start while the stream's previous kernel drains, and each waits
 * (griddepcontrol.wait, templates/prelude.cuh) before its first global
 * memory access; so the launch gap between kernels is hidden, in a CUDA
 * graph too. */
static snapmla_status launch_with(const snapmla_kernel *k, CUfunction function, unsigned grid_x,
                                  unsigned grid_y, unsigned grid_z, unsigned threads, unsigned shared,
                                  void *params, void *params2, void *stream, const char *what,
                                  snapmla_error *err)
{
    const snapmla_driver *d = &k->owner->driver;
    void *arguments[] = {params, params2};
    CUlaunchAttribute overlap = {.id = CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION};
    overlap.value.programmaticStreamSerializationAllowed = 1;
    CUlaunchConfig config = {
        .gridDimX = grid_x, .gridDimY = grid_y, .gridDimZ = grid_z,
        .blockDimX = threads, .blockDimY = 1, .blockDimZ = 1,
        .sharedMemBytes = shared, .hStream = (CUstream)stream,
        .attrs = &overlap, .numAttrs = waits_for_prior_grids(k, function) ? 1 : 0,
    };
    return snapmla_driver_check(d, d->cuLaunchKernelEx(&config, function, arguments, NULL), what, err);
}

/* One part of every token of the paged cache (its latent or its RoPE) as a
 * 3-D byte tensor (the part's `row_bytes`, slot in the page, page; tokens
 * `token_stride` bytes apart), read in boxes of `box_bytes` x min(page,
 * tile) tokens, swizzled as wgmma reads them (box_bytes 128, 64 or 32). */
static snapmla_status encode_plane(const snapmla_kernel *k, CUtensorMap *map, uint64_t base,
                                   int row_bytes, int token_stride, int box_bytes, int64_t page_stride,
                                   int64_t num_pages, snapmla_error *err)
{
    const snapmla_variant *v = &k->variant;
    const snapmla_driver *d = &k->owner->driver;
    cuuint64_t dims[3] = {(cuuint64_t)row_bytes, (cuuint64_t)v->page_size, (cuuint64_t)num_pages};
    cuuint64_t strides[2] = {(cuuint64_t)token_stride, (cuuint64_t)page_stride};
    cuuint32_t box[3] = {(cuuint32_t)box_bytes,
                         (cuuint32_t)(v->page_size < v->kv_tile ? v->page_size : v->kv_tile), 1};
    cuuint32_t element_strides[3] = {1, 1, 1};
    /* the swizzle wgmma reads each row width with; rows under 32 bytes
     * (fp8_per_tile128's scales) are copied as they are */
    CUtensorMapSwizzle swizzle = box_bytes == 128  ? CU_TENSOR_MAP_SWIZZLE_128B
                                 : box_bytes == 64 ? CU_TENSOR_MAP_SWIZZLE_64B
                                 : box_bytes == 32 ? CU_TENSOR_MAP_SWIZZLE_32B
                                                   : CU_TENSOR_MAP_SWIZZLE_NONE;
    return SNAPMLA_CU(d, cuTensorMapEncodeTiled(map, CU_TENSOR_MAP_DATA_TYPE_UINT8, 3, (void *)(uintptr_t)base,
                                                dims, strides, box, element_strides,
                                                CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle,
                                                CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                                                CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE),
                      err);
}

/* The tensor maps of a TMA variant's latent and RoPE rows
 * (docs/cache-formats.md): fp8_per_token, an e4m3 latent plane then a BF16
 * RoPE plane per page; bf16, whole tokens (interleaved) or a latent plane
 * then a RoPE plane (planar); fp8_per_tile128, whole 656-byte tokens, whose
 * scales get a third map. Zeros for other variants. */
static snapmla_status encode_kv_maps(const snapmla_kernel *k, uint64_t cache, int64_t page_stride,
                                     int64_t num_pages, kv_maps *maps, snapmla_error *err)
{
    memset(maps, 0, sizeof *maps);
    const snapmla_variant *v = &k->variant;
    if (!snapmla_variant_kv_tma(v))
        return SNAPMLA_OK;
    const char *call = "snapmla_decode";
    REQUIRE(num_pages <= INT32_MAX, "num_pages must be at most 2^31 - 1 (pages are int32 in block_table)");
    REQUIRE(page_stride < ((int64_t)1 << 40), "page_stride must be under 2^40 bytes (a TMA stride)");
    int tile128 = v->cache_format == SNAPMLA_FORMAT_FP8_PER_TILE128;
    int rope_bytes = 2 * v->rope_dim;
    int latent_bytes = v->cache_format == SNAPMLA_FORMAT_BF16 ? 2 * v->latent_dim : v->latent_dim;
    int scale_bytes = tile128 ? 4 * (v->latent_dim / 128) : 0;   /* between latent and RoPE */
    int interleaved = tile128 ||
                      (v->cache_format == SNAPMLA_FORMAT_BF16 && v->rope_layout == SNAPMLA_ROPE_INTERLEAVED);
    int token_bytes = latent_bytes + scale_bytes + rope_bytes;
    uint64_t rope_at = interleaved ? (uint64_t)(latent_bytes + scale_bytes)
                                   : (uint64_t)v->page_size * (uint64_t)latent_bytes;
    snapmla_status s = encode_plane(k, &maps->latent, cache, latent_bytes, interleaved ? token_bytes : latent_bytes,
                                    128, page_stride, num_pages, err);
    if (s == SNAPMLA_OK)
        s = encode_plane(k, &maps->rope, cache + rope_at, rope_bytes, interleaved ? token_bytes : rope_bytes,
                         rope_bytes < 128 ? rope_bytes : 128, page_stride, num_pages, err);
    if (s == SNAPMLA_OK && tile128)
        s = encode_plane(k, &maps->scales, cache + (uint64_t)latent_bytes, scale_bytes, token_bytes, scale_bytes,
                         page_stride, num_pages, err);
    return s;
}

/* The variant's threads per CTA, one parameter struct. */
static snapmla_status launch(const snapmla_kernel *k, CUfunction function, unsigned grid_x,
                             unsigned grid_y, unsigned grid_z, unsigned shared, void *params,
                             void *stream, const char *what, snapmla_error *err)
{
    return launch_with(k, function, grid_x, grid_y, grid_z, (unsigned)k->variant.threads, shared, params,
                       NULL, stream, what, err);
}

/* snapmla_decode (plan_only 0) and snapmla_decode_plan (1): the same
 * checks and launch decisions, so that a plan made alone is the one the
 * decode would have made. */
static snapmla_status decode_call(snapmla_kernel *kernel, const snapmla_decode_args *a, void *stream,
                                  int plan_only, const char *call, snapmla_error *err)
{
    snapmla_status s = check_kind(kernel, SNAPMLA_KERNEL_MLA_DECODE, a, call, err);
    if (s != SNAPMLA_OK)
        return s;
    const snapmla_variant *v = &kernel->variant;
    REQUIRE(a->batch >= 0 && a->batch <= 65535, "batch must be in 0..65535");
    if (a->batch == 0)
        return snapmla_ok(err);
    REQUIRE(a->q && a->kv_cache && a->block_table && a->cache_seqlens && a->out && a->lse &&
                a->workspace,
            "q, kv_cache, block_table, cache_seqlens, out, lse and workspace must not be NULL");
    REQUIRE(ADDRESS(a->q) % 16 == 0 && ADDRESS(a->kv_cache) % 16 == 0 && ADDRESS(a->out) % 16 == 0,
            "q, kv_cache and out must be 16-byte aligned");
    REQUIRE(ADDRESS(a->lse) % 4 == 0 &&
                ADDRESS(a->workspace) % 16 == 0 && ADDRESS(a->block_table) % 4 == 0 &&
                ADDRESS(a->cache_seqlens) % 4 == 0,
            "lse, block_table and cache_seqlens must be aligned to their element size "
            "and workspace to 16 bytes");
    size_t page_bytes = snapmla_cache_page_bytes(v);
    int64_t page_stride = a->page_stride ? a->page_stride : (int64_t)page_bytes;
    REQUIRE(a->num_pages >= 1, "num_pages must be at least 1");
    REQUIRE(page_stride >= (int64_t)page_bytes && page_stride % 16 == 0,
            "page_stride must be 0 or a multiple of 16 of at least the page size");
    REQUIRE(a->block_table_stride >= 1, "block_table_stride must be at least 1");
    REQUIRE(isfinite(a->softmax_scale) && a->softmax_scale > 0.f,
            "softmax_scale must be finite and positive");
    REQUIRE(a->num_splits >= 0 && a->num_splits <= v->max_splits,
            "num_splits must be 0 (the variant's policy) or 1..split.max_splits of the variant");
    workspace_layout w = layout_workspace(v, a->batch);
    if (a->workspace_bytes < w.total)
        return snapmla_fail(err, SNAPMLA_ERR_INVALID_ARG,
                            "%s: workspace has %zu bytes; batch %d needs %zu "
                            "(snapmla_decode_workspace_bytes)", call, a->workspace_bytes, a->batch,
                            w.total);

    int splits = launch_splits(kernel, a->batch, a->num_splits);
    /* Hopper, and either policy auto with row blocks enough to fill the GPU
     * (so launch_splits gave 1) or policy balanced: a persistent grid taking
     * items longest first (templates/decode_plan.cu). Balanced: the plan
     * splits long requests (up to max_splits) to even the tiles over the
     * CTAs, so partials are laid out for max_splits and the combine runs. */
    int grid_ctas = kernel->sm_count * kernel->ctas_per_sm;
    int planned = v->engine == SNAPMLA_ENGINE_WGMMA && a->num_splits == 0;   /* the policy decides */
    int balanced = planned && v->split_policy == SNAPMLA_SPLIT_BALANCED;
    int persistent = balanced || (planned && v->split_policy == SNAPMLA_SPLIT_AUTO &&
                                  (long)a->batch * row_blocks(v) >= grid_ctas);
    if (balanced)
        splits = v->max_splits;
    uint64_t ws = ADDRESS(a->workspace);
    decode_params p = {
        .q = ADDRESS(a->q), .cache = ADDRESS(a->kv_cache), .block_table = ADDRESS(a->block_table),
        .seqlens = ADDRESS(a->cache_seqlens), .out = ADDRESS(a->out), .lse = ADDRESS(a->lse),
        .o_part = ws + w.o_part, .lse_part = ws + w.lse_part, .split_counts = ws + w.split_counts,
        .page_stride = page_stride, .num_pages = a->num_pages,
        .plan = persistent ? ws + w.plan : 0, .block_table_stride = a->block_table_stride,
        .batch = a->batch, .num_splits = splits, .softmax_scale = a->softmax_scale,
        .plan_ctas = balanced ? grid_ctas : 0,
    };
    /* the plan, unless the caller has one in the workspace (the decode
     * kernel's last CTA puts the queue back to its start) */
    if (persistent && (plan_only || !a->plan_ready)) {
        s = launch_with(kernel, kernel->plan_function, 1, 1, 1, 1024, 0, &p, NULL, stream,
                        "launching the decode plan kernel", err);   /* PLAN_THREADS */
        if (s != SNAPMLA_OK)
            return s;
    }
    if (plan_only)
        return snapmla_ok(err);
    kv_maps maps;
    s = encode_kv_maps(kernel, p.cache, page_stride, a->num_pages, &maps, err);
    if (s != SNAPMLA_OK)
        return s;
    if (persistent) {
        /* one CTA per SM slot taking the plan's items; the wgmma kernel
         * takes the maps as a second parameter */
        s = launch_with(kernel, kernel->main_function, (unsigned)grid_ctas, 1, 1, (unsigned)v->threads,
                        (unsigned)v->smem_bytes, &p, &maps, stream, "launching the decode kernel", err);
    } else {
        s = launch_with(kernel, kernel->main_function, (unsigned)row_blocks(v), (unsigned)splits,
                        (unsigned)a->batch, (unsigned)v->threads, (unsigned)v->smem_bytes, &p,
                        v->engine == SNAPMLA_ENGINE_WGMMA ? &maps : NULL, stream,
                        "launching the decode kernel", err);
    }
    if (s != SNAPMLA_OK || splits == 1)
        return s == SNAPMLA_OK ? snapmla_ok(err) : s;
    combine_params c = {
        .o_part = p.o_part, .lse_part = p.lse_part, .split_counts = p.split_counts,
        .out = p.out, .lse = p.lse, .batch = a->batch, .num_splits = splits, .skip_single = 1,
    };
    s = launch(kernel, kernel->combine_function, (unsigned)(v->q_heads * v->q_len),
               (unsigned)a->batch, 1, 0, &c, stream, "launching the combine kernel", err);
    return s == SNAPMLA_OK ? snapmla_ok(err) : s;
}

snapmla_status snapmla_decode(snapmla_kernel *kernel, const snapmla_decode_args *a, void *stream,
                              snapmla_error *err)
{
    return decode_call(kernel, a, stream, 0, "snapmla_decode", err);
}

snapmla_status snapmla_decode_plan(snapmla_kernel *kernel, const snapmla_decode_args *a, void *stream,
                                   snapmla_error *err)
{
    return decode_call(kernel, a, stream, 1, "snapmla_decode_plan", err);
}

/* ---- combine ------------------------------------------------------------- */

snapmla_status snapmla_combine(snapmla_kernel *kernel, const snapmla_combine_args *a,
                               void *stream, snapmla_error *err)
{
    const char *call = "snapmla_combine";
    snapmla_status s = check_kind(kernel, SNAPMLA_KERNEL_MLA_COMBINE, a, call, err);
    if (s != SNAPMLA_OK)
        return s;
    const snapmla_variant *v = &kernel->variant;
    REQUIRE(a->batch >= 0 && a->batch <= 65535, "batch must be in 0..65535");
    if (a->batch == 0)
        return snapmla_ok(err);
    REQUIRE(a->splits >= 1 && a->splits <= v->max_splits,
            "splits must be in 1..split.max_splits of the variant");
    REQUIRE(a->o_partial && a->lse_partial && a->split_counts && a->out && a->lse,
            "o_partial, lse_partial, split_counts, out and lse must not be NULL");
    combine_params c = {
        .o_part = ADDRESS(a->o_partial), .lse_part = ADDRESS(a->lse_partial),
        .split_counts = ADDRESS(a->split_counts), .out = ADDRESS(a->out), .lse = ADDRESS(a->lse),
        .batch = a->batch, .num_splits = a->splits, .skip_single = 0,
    };
    s = launch(kernel, kernel->main_function, (unsigned)(v->q_heads * v->q_len),
               (unsigned)a->batch, 1, 0, &c, stream, "launching the combine kernel", err);
    return s == SNAPMLA_OK ? snapmla_ok(err) : s;
}

/* ---- append -------------------------------------------------------------- */

snapmla_status snapmla_append(snapmla_kernel *kernel, const snapmla_append_args *a,
                              void *stream, snapmla_error *err)
{
    const char *call = "snapmla_append";
    snapmla_status s = check_kind(kernel, SNAPMLA_KERNEL_KV_APPEND, a, call, err);
    if (s != SNAPMLA_OK)
        return s;
    const snapmla_variant *v = &kernel->variant;
    REQUIRE(a->num_tokens >= 0, "num_tokens must not be negative");
    if (a->num_tokens == 0)
        return snapmla_ok(err);
    long long warps = v->warps;
    REQUIRE((a->num_tokens + warps - 1) / warps <= 0x7fffffffLL, "num_tokens is too large for one launch");
    REQUIRE(a->latent && a->rope && a->slot_mapping && a->kv_cache,
            "latent, rope, slot_mapping and kv_cache must not be NULL");
    REQUIRE(ADDRESS(a->latent) % 2 == 0 && ADDRESS(a->rope) % 2 == 0 &&
                ADDRESS(a->slot_mapping) % 8 == 0 && ADDRESS(a->kv_cache) % 16 == 0 &&
                ADDRESS(a->bad_slots) % 4 == 0,
            "latent and rope must be 2-byte, slot_mapping 8-byte, kv_cache 16-byte and "
            "bad_slots 4-byte aligned");
    int64_t latent_stride = a->latent_stride ? a->latent_stride : v->latent_dim;
    int64_t rope_stride = a->rope_stride ? a->rope_stride : v->rope_dim;
    REQUIRE(latent_stride >= v->latent_dim && rope_stride >= v->rope_dim,
            "latent_stride and rope_stride must be 0 or at least the row width");
    size_t page_bytes = snapmla_cache_page_bytes(v);
    int64_t page_stride = a->page_stride ? a->page_stride : (int64_t)page_bytes;
    REQUIRE(a->num_pages >= 1, "num_pages must be at least 1");
    REQUIRE(page_stride >= (int64_t)page_bytes && page_stride % 16 == 0,
            "page_stride must be 0 or a multiple of 16 of at least the page size");
    append_params p = {
        .latent = ADDRESS(a->latent), .rope = ADDRESS(a->rope), .slots = ADDRESS(a->slot_mapping),
        .cache = ADDRESS(a->kv_cache), .bad_slots = ADDRESS(a->bad_slots),
        .num_tokens = a->num_tokens, .latent_stride = latent_stride, .rope_stride = rope_stride,
        .num_pages = a->num_pages, .page_stride = page_stride,
    };
    s = launch(kernel, kernel->main_function, (unsigned)((a->num_tokens + warps - 1) / warps), 1, 1,
               0, &p, stream, "launching the append kernel", err);
    return s == SNAPMLA_OK ? snapmla_ok(err) : s;
}
