/* GPU tests: every kernel against the float64 host reference over odd shapes
 * (q_heads 1..128, q_len 1..4, cache lengths 0, 1, page-1, page, page+1,
 * ragged), NaN in every unused cache slot, random block tables, poisoned
 * outputs, forced split counts, and a CUDA-graph replay with changing cache
 * lengths. Without a GPU the suite prints one SKIP line and exits 0. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "build_pool.h"
#include "gpu_check.h"
#include "snapmla.h"
#include "run_suite.h"

static snapmla_context *ctx;
static uint64_t base_seed;

typedef struct shape_case {
    const char *yaml;   /* model/cache/tile overrides after the fixed head */
} shape_case;

/* Each spec is a mla_decode with these fields; dims 512+64 unless given. */
static const char *const decode_cases[] = {
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 1, q_len: 1}\n",
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 3, q_len: 4}\n",
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 16, q_len: 2}\ncache: {page_size: 16}\n",
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 63, q_len: 3}\ncache: {page_size: 128}\n"
    "tile: {kv_tokens: 32, stages: 3}\n",
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 128, q_len: 1}\n",
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 128, q_len: 2}\ntile: {q_rows: 32, warps: 16}\n",
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 16, q_len: 1}\n"
    "cache: {page_size: 32, rope_layout: planar}\ntile: {kv_tokens: 32, stages: 1, warps: 4}\n",
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 64, q_len: 1}\ncache: {page_size: 1}\n"
    "tile: {kv_tokens: 16, q_rows: 8}\n",
    "model: {latent_dim: 256, rope_dim: 32, q_heads: 40, q_len: 1}\n",
    "model: {latent_dim: 256, rope_dim: 32, q_heads: 5, q_len: 2, causal: false}\n"
    "cache: {page_size: 16, rope_layout: planar}\ntile: {kv_tokens: 16}\n",
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 16, q_len: 1}\n"
    "split: {policy: fixed, max_splits: 7, min_tokens: 16}\n",
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 128}\ncache: {format: fp8_per_token}\n",
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 16, q_len: 2}\n"
    "cache: {format: fp8_per_tile128, page_size: 16}\n",
    "model: {latent_dim: 256, rope_dim: 32, q_heads: 40}\n"
    "cache: {format: fp8_per_token, page_size: 1}\ntile: {kv_tokens: 16}\n",
    /* the tensor-core engine */
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 128}\n"
    "tile: {engine: mma_sync, q_rows: 64, kv_tokens: 32}\n",
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 16, q_len: 2}\n"
    "cache: {format: fp8_per_token, page_size: 16}\ntile: {engine: mma_sync, q_rows: 16}\n",
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 3, q_len: 4}\n"
    "cache: {format: fp8_per_tile128}\ntile: {engine: mma_sync, q_rows: 16, kv_tokens: 32, stages: 3}\n",
    "model: {latent_dim: 256, rope_dim: 32, q_heads: 40, causal: false, q_len: 2}\n"
    "cache: {rope_layout: planar, page_size: 1}\ntile: {engine: mma_sync, q_rows: 32, kv_tokens: 16}\n",
    /* the Hopper FP8 path (wgmma e4m3) */
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 128}\ncache: {format: fp8_per_token}\n"
    "tile: {engine: wgmma}\ntarget: {compute: fp8}\n",
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 1, q_len: 1}\ncache: {format: fp8_per_token}\n"
    "tile: {engine: wgmma}\ntarget: {compute: fp8}\n",
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 16, q_len: 2}\n"
    "cache: {format: fp8_per_token, page_size: 16}\ntile: {engine: wgmma}\ntarget: {compute: fp8}\n",
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 63, q_len: 3}\n"
    "cache: {format: fp8_per_token, page_size: 128}\ntile: {engine: wgmma, stages: 3}\n"
    "target: {compute: fp8}\n",
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 3, q_len: 4}\n"
    "cache: {format: fp8_per_token, page_size: 32}\ntile: {engine: wgmma}\ntarget: {compute: fp8}\n"
    "split: {policy: fixed, max_splits: 5, min_tokens: 16}\n",
    "model: {latent_dim: 256, rope_dim: 32, q_heads: 40, q_len: 2, causal: false}\n"
    "cache: {format: fp8_per_token, page_size: 1}\ntile: {engine: wgmma}\ntarget: {compute: fp8}\n",
    "model: {latent_dim: 512, rope_dim: 128, q_heads: 64}\n"
    "cache: {format: fp8_per_token, page_size: 64}\ntile: {engine: wgmma}\ntarget: {compute: fp8}\n",
    /* MiniCPM3 dims through TMA: 64-byte RoPE rows (64-byte swizzle), four
     * page pieces per tile */
    "model: {latent_dim: 256, rope_dim: 32, q_heads: 40, q_len: 1}\n"
    "cache: {format: fp8_per_token, page_size: 16}\ntile: {engine: wgmma}\ntarget: {compute: fp8}\n",
    /* the Hopper FP8 path on FlashMLA's 656-byte cache (fp8_per_tile128: a
     * scale per 128 channels, so a P' per scale group): whole pages, page
     * pieces of 16 and 32 tokens, 2 and 3 stages, RoPE 32 / 64 / 128 */
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 128}\ncache: {format: fp8_per_tile128}\n"
    "tile: {engine: wgmma}\ntarget: {compute: fp8}\n",
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 16, q_len: 2}\n"
    "cache: {format: fp8_per_tile128, page_size: 16}\ntile: {engine: wgmma, stages: 3}\ntarget: {compute: fp8}\n",
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 63, q_len: 3}\n"
    "cache: {format: fp8_per_tile128, page_size: 128}\ntile: {engine: wgmma}\ntarget: {compute: fp8}\n"
    "split: {policy: fixed, max_splits: 5, min_tokens: 16}\n",
    "model: {latent_dim: 512, rope_dim: 128, q_heads: 64}\n"
    "cache: {format: fp8_per_tile128, page_size: 32}\ntile: {engine: wgmma}\ntarget: {compute: fp8}\n",
    "model: {latent_dim: 512, rope_dim: 32, q_heads: 1, q_len: 4}\n"
    "cache: {format: fp8_per_tile128, page_size: 64}\ntile: {engine: wgmma}\ntarget: {compute: fp8}\n",
    /* the Hopper FP8 path's role warpgroups (tile.warps 16: two score
     * warpgroups, two output warpgroups): pages of 16 to 128 tokens, 2 to 4
     * stages, RoPE 32 / 64 / 128, MiniCPM3 dims, a fixed split, the
     * balanced plan */
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 128}\ncache: {format: fp8_per_token}\n"
    "tile: {engine: wgmma, warps: 16}\ntarget: {compute: fp8}\n",
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 1, q_len: 1}\ncache: {format: fp8_per_token}\n"
    "tile: {engine: wgmma, warps: 16}\ntarget: {compute: fp8}\n",
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 16, q_len: 2}\n"
    "cache: {format: fp8_per_token, page_size: 16}\ntile: {engine: wgmma, warps: 16, stages: 2}\n"
    "target: {compute: fp8}\n",
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 63, q_len: 3}\n"
    "cache: {format: fp8_per_token, page_size: 128}\ntile: {engine: wgmma, warps: 16, stages: 3}\n"
    "target: {compute: fp8}\n",
    "model: {latent_dim: 512, rope_dim: 32, q_heads: 3, q_len: 4}\n"
    "cache: {format: fp8_per_token, page_size: 32}\ntile: {engine: wgmma, warps: 16}\ntarget: {compute: fp8}\n"
    "split: {policy: fixed, max_splits: 5, min_tokens: 16}\n",
    "model: {latent_dim: 256, rope_dim: 32, q_heads: 40, q_len: 2, causal: false}\n"
    "cache: {format: fp8_per_token, page_size: 16}\ntile: {engine: wgmma, warps: 16}\ntarget: {compute: fp8}\n",
    "model: {latent_dim: 512, rope_dim: 128, q_heads: 64}\n"
    "cache: {format: fp8_per_token, page_size: 64}\ntile: {engine: wgmma, warps: 16, stages: 3}\n"
    "target: {compute: fp8}\n",
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 16, q_len: 1}\ncache: {format: fp8_per_token}\n"
    "tile: {engine: wgmma, warps: 16}\ntarget: {compute: fp8}\nsplit: {policy: balanced}\n",
    /* the role warpgroups on FlashMLA's 656-byte cache (each token's groups
     * requantized to its largest scale in the ring slot): whole tiles and
     * quarters, pages of 16 to 128 tokens, 2 to 4 stages, RoPE 32 / 64 / 128 */
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 128}\ncache: {format: fp8_per_tile128}\n"
    "tile: {engine: wgmma, warps: 16, stages: 4}\ntarget: {compute: fp8}\n",
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 16, q_len: 2}\n"
    "cache: {format: fp8_per_tile128, page_size: 16}\ntile: {engine: wgmma, warps: 16, stages: 2}\n"
    "target: {compute: fp8}\n",
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 63, q_len: 3}\n"
    "cache: {format: fp8_per_tile128, page_size: 128}\ntile: {engine: wgmma, warps: 16, stages: 3}\n"
    "target: {compute: fp8}\nsplit: {policy: fixed, max_splits: 5, min_tokens: 16}\n",
    "model: {latent_dim: 512, rope_dim: 128, q_heads: 64}\n"
    "cache: {format: fp8_per_tile128, page_size: 32}\ntile: {engine: wgmma, warps: 16, stages: 3}\n"
    "target: {compute: fp8}\n",
    "model: {latent_dim: 512, rope_dim: 32, q_heads: 1, q_len: 4}\n"
    "cache: {format: fp8_per_tile128, page_size: 64}\ntile: {engine: wgmma, warps: 16}\ntarget: {compute: fp8}\n",
    /* the Hopper BF16 path (wgmma bf16; the pair schedule at the default two
     * stages from 256 query rows, the seesaw below that or at more stages):
     * FlashMLA's interleaved cache and the planar one, page pieces of 16 and
     * 32 tokens, whole pages of 64 and 128; the pair schedule with a partial
     * last row block and a planar, non-causal one; MiniCPM3 dims with 4
     * stages (the seesaw's refill after the hand-off) and with 3 stages at
     * 300 rows (where the seesaw's warpgroup 1 puts its QK first) */
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 128}\ntile: {engine: wgmma}\n",
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 96, q_len: 3}\ncache: {page_size: 32}\n"
    "tile: {engine: wgmma}\n",
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 128, q_len: 2, causal: false}\n"
    "cache: {rope_layout: planar}\ntile: {engine: wgmma}\n",
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 1, q_len: 1}\ntile: {engine: wgmma}\n",
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 16, q_len: 2}\ncache: {page_size: 16}\n"
    "tile: {engine: wgmma}\n",
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 63, q_len: 3}\n"
    "cache: {page_size: 128, rope_layout: planar}\ntile: {engine: wgmma}\n",
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 3, q_len: 4}\ncache: {page_size: 32}\n"
    "tile: {engine: wgmma}\nsplit: {policy: fixed, max_splits: 5, min_tokens: 16}\n",
    "model: {latent_dim: 256, rope_dim: 32, q_heads: 40, q_len: 2, causal: false}\n"
    "cache: {page_size: 16, rope_layout: planar}\ntile: {engine: wgmma, stages: 4}\n",
    "model: {latent_dim: 256, rope_dim: 32, q_heads: 100, q_len: 3}\ncache: {page_size: 64}\n"
    "tile: {engine: wgmma, stages: 3}\n",
    /* the BF16 pair schedule (two stages) off DeepSeek dims: P(u+1) beside
     * P(u) when Q's RoPE smem is too small for it (RoPE 32), and two RoPE
     * blocks of A fragments in registers (RoPE 128) */
    "model: {latent_dim: 256, rope_dim: 32, q_heads: 100, q_len: 3, causal: false}\n"
    "cache: {page_size: 16, rope_layout: planar}\ntile: {engine: wgmma}\n",
    "model: {latent_dim: 256, rope_dim: 128, q_heads: 86, q_len: 3}\ncache: {page_size: 32}\n"
    "tile: {engine: wgmma}\n",
    /* tile.schedule forcing either order where auto takes the other: the
     * pair schedule at 128 rows and at 12 rows with 5 fixed splits, the
     * seesaw at 256 rows (its warpgroup 1's QK first) at DeepSeek dims */
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 128}\ntile: {engine: wgmma, schedule: pair}\n",
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 3, q_len: 4}\ncache: {page_size: 32}\n"
    "tile: {engine: wgmma, schedule: pair}\nsplit: {policy: fixed, max_splits: 5, min_tokens: 16}\n",
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 128, q_len: 2}\ntile: {engine: wgmma, schedule: seesaw}\n",
    /* split.policy balanced: the device plan cuts long requests into pieces
     * (partials + combine) next to whole short ones, on both Hopper paths */
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 16, q_len: 1}\ncache: {format: fp8_per_token}\n"
    "tile: {engine: wgmma}\ntarget: {compute: fp8}\nsplit: {policy: balanced}\n",
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 128, q_len: 1}\ntile: {engine: wgmma}\n"
    "split: {policy: balanced, max_splits: 8, min_tokens: 128}\n",
};
enum { DECODE_CASES = sizeof decode_cases / sizeof decode_cases[0] };

static snapmla_status parse_case(const char *head, const char *body, snapmla_spec **spec, snapmla_error *err)
{
    char yaml[1024];
    snprintf(yaml, sizeof yaml, "%s%s", head, body);
    return snapmla_spec_parse(yaml, strlen(yaml), "case.yaml", spec, err);
}

static snapmla_kernel *kernel_for(const char *head, const char *body, snapmla_spec **spec_out)
{
    snapmla_error err;
    snapmla_spec *spec;
    ck_assert_msg(parse_case(head, body, &spec, &err) == SNAPMLA_OK, "%s\n%s%s", err.message, head, body);
    snapmla_kernel *kernel;
    ck_assert_msg(snapmla_kernel_get(ctx, &spec->variants[0], &kernel, &err) == SNAPMLA_OK, "%s",
                  err.message);
    *spec_out = spec;
    return kernel;
}

/* Runs one GPU check and asserts it passed; the report line is printed
 * under `label`. */
static void expect_check(snapmla_kernel *kernel, const snapmla_decode_check *check, const char *label)
{
    snapmla_check_report report;
    snapmla_error err;
    ck_assert_msg(snapmla_check_decode(ctx, kernel, check, &report, &err) == SNAPMLA_OK, "%s",
                  err.message);
    printf("  %s: %s\n", label, report.summary);
    ck_assert_msg(report.passed, "%s", report.summary);
}

static void expect_decode(snapmla_kernel *kernel, const int32_t *seqlens, int batch,
                          int num_splits, uint64_t seed)
{
    snapmla_decode_check check = {.batch = batch, .seqlens = seqlens, .num_splits = num_splits,
                                  .seed = seed};
    expect_check(kernel, &check, snapmla_kernel_variant(kernel)->name);
}

START_TEST(decode_matches_reference)
{
    snapmla_spec *spec;
    snapmla_kernel *kernel = kernel_for("kernel: mla_decode\n", decode_cases[_i], &spec);
    const snapmla_variant *v = &spec->variants[0];
    uint64_t seed = base_seed + 1000u * (uint64_t)_i;
    int page = v->page_size;
    /* the page edges, one request each */
    const int32_t edges[] = {0, 1, page > 1 ? page - 1 : 2, page, page + 1};
    expect_decode(kernel, edges, 5, 0, seed);
    /* a ragged batch, long enough to be split */
    const int32_t ragged[] = {3001, 17, 0, 1200, 64 * 3 + 5, 2, 777};
    expect_decode(kernel, ragged, 7, 0, seed + 1);
    expect_decode(kernel, ragged, 7, 1, seed + 2);
    expect_decode(kernel, ragged, 7, v->max_splits, seed + 3);
    snapmla_spec_free(spec);
}
END_TEST

/* A DeepSeek-dims (512 + 64) mla_decode kernel: `heads` completes the
 * model line, `engine` (one of the bodies below) follows it. */
static void deepseek_body(const char *heads, const char *engine, char *body, size_t size)
{
    snprintf(body, size, "model: {latent_dim: 512, rope_dim: 64, %s}\n%s", heads, engine);
}

static snapmla_kernel *deepseek_kernel(const char *heads, const char *engine, snapmla_spec **spec_out)
{
    char body[512];
    deepseek_body(heads, engine, body, sizeof body);
    return kernel_for("kernel: mla_decode\n", body, spec_out);
}

/* The head counts the engine tests below give deepseek_kernel. */
static const char *const engine_test_heads[] = {"q_heads: 128", "q_heads: 2, q_len: 2",
                                                "q_heads: 16, q_len: 2"};

/* The default engine, the Hopper FP8 path (on both FP8 caches, and in
 * role warpgroups), the BF16 path and the balanced plan, for the long and
 * graph tests. */
#define COUNT_OF(array) ((int)(sizeof(array) / sizeof((array)[0])))

static const char *const engine_bodies[] = {
    "",
    "cache: {format: fp8_per_token}\ntile: {engine: wgmma}\ntarget: {compute: fp8}\n",
    "tile: {engine: wgmma}\n",
    "cache: {format: fp8_per_token}\ntile: {engine: wgmma}\ntarget: {compute: fp8}\n"
    "split: {policy: balanced}\n",
    "cache: {format: fp8_per_tile128}\ntile: {engine: wgmma, stages: 3}\ntarget: {compute: fp8}\n",
    "cache: {format: fp8_per_token}\ntile: {engine: wgmma, warps: 16}\ntarget: {compute: fp8}\n",
};
/* The Hopper paths, for the persistent-launch test. */
static const char *const hopper_bodies[] = {
    "cache: {format: fp8_per_token}\ntile: {engine: wgmma}\ntarget: {compute: fp8}\n",
    "tile: {engine: wgmma}\n",
    "cache: {format: fp8_per_tile128}\ntile: {engine: wgmma, stages: 3}\ntarget: {compute: fp8}\n",
    "cache: {format: fp8_per_token}\ntile: {engine: wgmma, warps: 16}\ntarget: {compute: fp8}\n",
};

START_TEST(decode_long_context_single_request)
{
    snapmla_spec *spec;
    snapmla_kernel *kernel = deepseek_kernel(engine_test_heads[0], engine_bodies[_i], &spec);
    const int32_t one[] = {20000 + 13};
    expect_decode(kernel, one, 1, 0, base_seed + 77);
    snapmla_spec_free(spec);
}
END_TEST

/* The longest context the issue asks for: one request of 2^20 tokens (16384
 * tiles of 64, split as the plan chooses) next to an empty one, two query
 * tokens of 2 heads (causal), against the float64 reference. */
START_TEST(decode_million_token_context)
{
    snapmla_spec *spec;
    snapmla_kernel *kernel = deepseek_kernel(engine_test_heads[1], engine_bodies[_i], &spec);
    const int32_t lens[] = {1 << 20, 0};
    expect_decode(kernel, lens, 2, 0, base_seed + 55);
    snapmla_spec_free(spec);
}
END_TEST

START_TEST(decode_graph_replay_with_changing_lengths)
{
    snapmla_spec *spec;
    snapmla_kernel *kernel = deepseek_kernel(engine_test_heads[2], engine_bodies[_i], &spec);
    const int32_t most[] = {5000, 300, 64, 1, 2049};
    const int32_t round1[] = {5000, 300, 64, 1, 2049};
    const int32_t round2[] = {4100, 2, 0, 1, 129};
    const int32_t round3[] = {65, 299, 63, 0, 2000};
    const int32_t *rounds[] = {round1, round2, round3};
    snapmla_decode_check check = {.batch = 5, .seqlens = most, .seed = base_seed + 99,
                                  .graph_rounds = rounds, .graph_round_count = 3};
    expect_check(kernel, &check, "graph");
    snapmla_spec_free(spec);
}
END_TEST

/* `count` ragged cache lengths under 300: every 8th at a page or tile edge
 * (0, 1, 63, 64, 65), the rest random. */
static void ragged_lengths(int32_t *lens, int count, uint64_t *state)
{
    static const int32_t edges[] = {0, 1, 63, 64, 65};
    for (int b = 0; b < count; ++b) {
        *state = *state * 6364136223846793005ull + 1442695040888963407ull;
        lens[b] = b % 8 == 0 ? edges[(b / 8) % 5] : (int32_t)((*state >> 33) % 300);
    }
}

/* 160 ragged requests (lengths from `state_bits`), then two graph replays
 * with new lengths, each under the first call's: a persistent launch's check. */
static void expect_persistent_replays(snapmla_kernel *kernel, uint64_t state_bits, uint64_t seed, const char *label)
{
    enum { BATCH = 160 };
    static int32_t lens[3][BATCH];
    uint64_t state = base_seed | state_bits;
    for (int r = 0; r < 3; ++r)
        ragged_lengths(lens[r], BATCH, &state);
    for (int b = 0; b < BATCH; ++b)   /* the first call's lengths hold every round's */
        for (int r = 1; r < 3; ++r)
            lens[0][b] = lens[0][b] > lens[r][b] ? lens[0][b] : lens[r][b];
    const int32_t *rounds[] = {lens[1], lens[2]};
    snapmla_decode_check check = {.batch = BATCH, .seqlens = lens[0], .seed = seed,
                                  .graph_rounds = rounds, .graph_round_count = 2};
    expect_check(kernel, &check, label);
}

/* The Hopper path's persistent launch: a batch with more row blocks (160
 * requests x 2 of 64 heads) than the GPU holds CTAs (132 on an H100), so
 * whole row blocks are taken from the device-side queue, longest first.
 * Ragged lengths with the page edges and empty requests; replayed from a
 * CUDA graph with new lengths (the plan kernel resets the queue). */
START_TEST(decode_persistent_large_batch)
{
    snapmla_spec *spec;
    snapmla_kernel *kernel = deepseek_kernel(engine_test_heads[0], hopper_bodies[_i], &spec);
    expect_persistent_replays(kernel, 1, base_seed + 123, "persistent");
    snapmla_spec_free(spec);
}
END_TEST

/* The BF16 pair kernel's persistent launch (it takes its next item under
 * the current one's epilogue: for_each_item_ahead), which the tests above
 * run only through the seesaw's 128 rows: 4 row blocks (128 heads x 2
 * tokens), 2 (40 heads x 3 tokens: a partial query tile, causal) and 8
 * (128 heads x 4 tokens). 160 ragged requests, then graph replays with
 * new lengths; an item no CTA took leaves its poisoned rows. The kernel
 * takes its items by round where the grid is whole gangs of row blocks (4
 * and 2 here on 132 SMs) and from the queue at 8 (for_each_item_ahead). */
static const char *const pair_persistent_cases[] = {
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 128, q_len: 2}\ntile: {engine: wgmma}\n",
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 40, q_len: 3}\ntile: {engine: wgmma, schedule: pair}\n",
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 128, q_len: 4}\ntile: {engine: wgmma}\n",
};

START_TEST(decode_persistent_pair)
{
    snapmla_spec *spec;
    snapmla_kernel *kernel = kernel_for("kernel: mla_decode\n", pair_persistent_cases[_i], &spec);
    expect_persistent_replays(kernel, 9, base_seed + 456, "persistent pair");
    snapmla_spec_free(spec);
}
END_TEST

/* One plan for the layers of a step: snapmla_decode_plan, then three
 * decodes with plan_ready, each against the reference with its outputs
 * poisoned first; so the persistent kernel must leave the plan's queue as
 * it found it. 160 requests x 128 heads run persistent on both Hopper paths
 * and under the balanced plan (partials and the combine); the default
 * engine has no plan and must ignore plan_ready. */
START_TEST(decode_plan_reused_across_layers)
{
    snapmla_spec *spec;
    snapmla_kernel *kernel = deepseek_kernel(engine_test_heads[0], engine_bodies[_i], &spec);
    enum { BATCH = 160 };
    static int32_t lens[BATCH];
    uint64_t state = base_seed | 5;
    ragged_lengths(lens, BATCH, &state);
    snapmla_decode_check check = {.batch = BATCH, .seqlens = lens, .seed = base_seed + 321,
                                  .plan_reuse_calls = 3};
    expect_check(kernel, &check, "plan reused");
    snapmla_spec_free(spec);
}
END_TEST

static const char *const append_cases[] = {
    "model: {latent_dim: 512, rope_dim: 64}\n",
    "model: {latent_dim: 512, rope_dim: 64}\ncache: {page_size: 16, rope_layout: planar}\n",
    "model: {latent_dim: 256, rope_dim: 32}\ncache: {page_size: 1}\ntile: {warps: 4}\n",
    "model: {latent_dim: 512, rope_dim: 64}\ncache: {format: fp8_per_token}\n",
    "model: {latent_dim: 512, rope_dim: 64}\ncache: {format: fp8_per_tile128, page_size: 16}\n",
    "model: {latent_dim: 256, rope_dim: 32}\ncache: {format: fp8_per_token, page_size: 1}\n",
};

START_TEST(append_is_bit_exact)
{
    snapmla_spec *spec;
    snapmla_kernel *kernel = kernel_for("kernel: kv_append\n", append_cases[_i], &spec);
    const int64_t counts[] = {0, 1, 1000};
    for (int i = 0; i < 3; ++i) {
        snapmla_check_report report;
        snapmla_error err;
        ck_assert_msg(snapmla_check_append(ctx, kernel, counts[i], base_seed + 7 * (uint64_t)i,
                                           &report, &err) == SNAPMLA_OK, "%s", err.message);
        printf("  %s: %s\n", spec->variants[0].name, report.summary);
        ck_assert_msg(report.passed, "%s", report.summary);
    }
    snapmla_spec_free(spec);
}
END_TEST

START_TEST(combine_matches_reference)
{
    snapmla_spec *spec;
    snapmla_kernel *kernel = kernel_for(
        "kernel: mla_combine\n",
        "model: {latent_dim: 512, q_heads: 16, q_len: 2}\nsplit: {max_splits: 9}\n", &spec);
    const int splits[] = {1, 2, 9};
    for (int i = 0; i < 3; ++i) {
        snapmla_check_report report;
        snapmla_error err;
        ck_assert_msg(snapmla_check_combine(ctx, kernel, 6, splits[i], base_seed + (uint64_t)i,
                                            &report, &err) == SNAPMLA_OK, "%s", err.message);
        printf("  %s: %s\n", spec->variants[0].name, report.summary);
        ck_assert_msg(report.passed, "%s", report.summary);
    }
    snapmla_spec_free(spec);
}
END_TEST

/* Whether a case's spec text holds `only` (every case when only is NULL:
 * SNAPMLA_GPU_CASES unset). */
static int case_selected(const char *text, const char *only)
{
    return !only || strstr(text, only) != NULL;
}

/* Compiles the selected tests' decode kernels on a pool of threads before
 * any test runs: NVRTC takes seconds per Hopper kernel, one after another
 * inside the tests. Each test then finds its kernel in the context's
 * caches. A spec or kernel that fails here fails again, with its message,
 * in its own test. (hopper_bodies are among engine_bodies.) */
enum {
    PREBUILD_MAX =
        DECODE_CASES + COUNT_OF(pair_persistent_cases) + COUNT_OF(engine_bodies) * COUNT_OF(engine_test_heads)
};

static void prebuild_decode_kernels(const char *only)
{
    char (*bodies)[1024] = malloc(PREBUILD_MAX * sizeof *bodies);
    if (!bodies) {   /* the tests then compile their own kernels */
        printf("test_gpu: no memory to prebuild the kernels\n");
        return;
    }
    size_t texts = 0;
    for (int i = 0; i < DECODE_CASES; ++i)
        if (case_selected(decode_cases[i], only))
            snprintf(bodies[texts++], sizeof bodies[0], "%s", decode_cases[i]);
    for (int i = 0; i < COUNT_OF(pair_persistent_cases); ++i)
        if (case_selected(pair_persistent_cases[i], only))
            snprintf(bodies[texts++], sizeof bodies[0], "%s", pair_persistent_cases[i]);
    for (int e = 0; e < COUNT_OF(engine_bodies); ++e)
        if (case_selected(engine_bodies[e], only))
            for (int h = 0; h < COUNT_OF(engine_test_heads); ++h)
                deepseek_body(engine_test_heads[h], engine_bodies[e], bodies[texts++], sizeof bodies[0]);
    snapmla_spec *specs[PREBUILD_MAX];
    const snapmla_variant *variants[PREBUILD_MAX];
    snapmla_binary binaries[PREBUILD_MAX];
    snapmla_error errors[PREBUILD_MAX];
    size_t count = 0;
    for (size_t i = 0; i < texts; ++i) {
        snapmla_error err;
        if (parse_case("kernel: mla_decode\n", bodies[i], &specs[count], &err) != SNAPMLA_OK)
            continue;
        variants[count] = &specs[count]->variants[0];
        ++count;
    }
    free(bodies);
    const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    const int threads = cpus < 1 ? 1 : cpus > 16 ? 16 : (int)cpus;
    const double wall = snapmla_build_pool(ctx, variants, count, threads, binaries, errors);
    int failed = 0;
    for (size_t i = 0; i < count; ++i) {
        failed += errors[i].status != SNAPMLA_OK;
        snapmla_binary_release(&binaries[i]);
        snapmla_spec_free(specs[i]);
    }
    printf("test_gpu: %zu decode kernels built in %.1f s on %d threads (%d failed: their tests say why)\n",
           count, wall, threads, failed);
}

/* Registers loop test `test` for each of its `count` spec texts that holds
 * `only` (all of them when only is NULL). */
static int add_cases(TCase *tc, const TTest *test, const char *const *texts, int count, const char *only)
{
    int added = 0;
    for (int i = 0; i < count; ++i)
        if (case_selected(texts[i], only)) {
            tcase_add_loop_test(tc, test, i, i + 1);
            ++added;
        }
    return added;
}

int main(void)
{
    snapmla_error err;
    snapmla_options options = {0};
    if (snapmla_context_create(&options, &ctx, &err) != SNAPMLA_OK) {
        fprintf(stderr, "test_gpu: %s\n", err.message);
        return EXIT_FAILURE;
    }
    /* Probe with the smallest kernel: no GPU means one SKIP line, not a failure. */
    snapmla_spec *probe_spec;
    const char *probe = "kernel: kv_append\nmodel: {latent_dim: 512, rope_dim: 64}\n";
    snapmla_kernel *probe_kernel;
    if (snapmla_spec_parse(probe, strlen(probe), "probe.yaml", &probe_spec, &err) != SNAPMLA_OK) {
        fprintf(stderr, "test_gpu: %s\n", err.message);
        return EXIT_FAILURE;
    }
    snapmla_status s = snapmla_kernel_get(ctx, &probe_spec->variants[0], &probe_kernel, &err);
    snapmla_spec_free(probe_spec);
    if (s == SNAPMLA_ERR_NO_DEVICE) {
        printf("SKIP test_gpu: %s\n", err.message);
        snapmla_context_destroy(ctx);
        return EXIT_SUCCESS;
    }
    if (s != SNAPMLA_OK) {
        fprintf(stderr, "test_gpu: %s\n", err.message);
        return EXIT_FAILURE;
    }
    if (!test_seed("test_gpu", &base_seed)) {
        snapmla_context_destroy(ctx);
        return EXIT_FAILURE;
    }
    printf("test_gpu: seed %llu (replay with SNAPMLA_TEST_SEED=%llu)\n",
           (unsigned long long)base_seed, (unsigned long long)base_seed);

    /* SNAPMLA_GPU_CASES=TEXT registers only the cases whose spec text holds
     * TEXT (say "warps: 16" for one path), to check one kernel in a short
     * device call; the full suite is the default. */
    const char *only = getenv("SNAPMLA_GPU_CASES");
    if (only)
        printf("test_gpu: only the cases whose spec holds \"%s\" (SNAPMLA_GPU_CASES)\n", only);
    Suite *suite = suite_create("gpu");
    TCase *tc = tcase_create("gpu");
    tcase_set_timeout(tc, 600);
    int added = add_cases(tc, decode_matches_reference, decode_cases, DECODE_CASES, only);
    added += add_cases(tc, decode_long_context_single_request, engine_bodies, COUNT_OF(engine_bodies), only);
    added += add_cases(tc, decode_million_token_context, engine_bodies, COUNT_OF(engine_bodies), only);
    added += add_cases(tc, decode_graph_replay_with_changing_lengths, engine_bodies, COUNT_OF(engine_bodies), only);
    added += add_cases(tc, decode_persistent_large_batch, hopper_bodies, COUNT_OF(hopper_bodies), only);
    added += add_cases(tc, decode_persistent_pair, pair_persistent_cases, COUNT_OF(pair_persistent_cases), only);
    added += add_cases(tc, decode_plan_reused_across_layers, engine_bodies, COUNT_OF(engine_bodies), only);
    added += add_cases(tc, append_is_bit_exact, append_cases, COUNT_OF(append_cases), only);
    if (!only)
        tcase_add_test(tc, combine_matches_reference);
    else if (added == 0) {   /* a filter that selects nothing must not pass as a run */
        fprintf(stderr, "test_gpu: SNAPMLA_GPU_CASES \"%s\" matches no case\n", only);
        srunner_free(srunner_create(suite));   /* (frees the suite) */
        snapmla_context_destroy(ctx);
        return EXIT_FAILURE;
    }
    suite_add_tcase(suite, tc);
    prebuild_decode_kernels(only);
    /* One process keeps one CUDA context and the loaded modules. */
    int status = run_suite(suite, CK_NOFORK);
    snapmla_context_destroy(ctx);
    return status;
}
