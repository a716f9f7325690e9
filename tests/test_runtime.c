/* Tests of the runtime without a GPU: build through the memory and disk
 * caches, ahead-of-time directories, the driver's absence, and every launch
 * argument check (they run before anything touches the device). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aot.h"
#include "context.h"
#include "fileio.h"
#include "snapmla.h"
#include "run_suite.h"

static const char *const decode_yaml =
    "kernel: mla_decode\n"
    "model: {latent_dim: 256, rope_dim: 32, q_heads: 8}\n"
    "tile: {kv_tokens: 32, stages: 1}\n"
    "split: {max_splits: 4}\n";

static char temp_dir[64];
static int warnings;
static char last_warning[SNAPMLA_ERROR_MAX + 512];

static void count_warnings(void *user, snapmla_log_level level, const char *message)
{
    (void)user;
    if (level == SNAPMLA_LOG_WARN) {
        warnings++;
        snprintf(last_warning, sizeof last_warning, "%s", message);
    }
}

static void make_temp_dir(void)
{
    snprintf(temp_dir, sizeof temp_dir, "/tmp/snapmla-rt-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(temp_dir));
    warnings = 0;
}

static void remove_temp_dir(void)
{
    char command[128];
    snprintf(command, sizeof command, "rm -rf '%s'", temp_dir);
    ck_assert_int_eq(system(command), 0);
}

static snapmla_spec *parse(const char *yaml)
{
    snapmla_error err;
    snapmla_spec *spec = NULL;
    ck_assert_msg(snapmla_spec_parse(yaml, strlen(yaml), "t.yaml", &spec, &err) == SNAPMLA_OK,
                  "%s", err.message);
    return spec;
}

static snapmla_context *context_in(const char *cache_dir, const char *aot_dir)
{
    snapmla_options options = {0};
    options.cache_dir = cache_dir;
    options.log = count_warnings;
    const char *dirs[1] = {aot_dir};
    options.aot_dirs = dirs;
    options.aot_dir_count = aot_dir ? 1 : 0;
    snapmla_context *ctx;
    snapmla_error err;
    ck_assert_msg(snapmla_context_create(&options, &ctx, &err) == SNAPMLA_OK, "%s", err.message);
    return ctx;
}

START_TEST(build_is_served_from_memory_then_disk)
{
    snapmla_spec *spec = parse(decode_yaml);
    char cache[128];
    snprintf(cache, sizeof cache, "%s/cache", temp_dir);
    snapmla_context *ctx = context_in(cache, NULL);
    ck_assert_str_eq(snapmla_context_cache_dir(ctx), cache);
    snapmla_binary first, second, third;
    snapmla_error err;
    ck_assert_int_eq(snapmla_build(ctx, &spec->variants[0], &first, &err), SNAPMLA_OK);
    ck_assert_int_eq(first.source, SNAPMLA_FROM_COMPILE);
    ck_assert_int_eq(snapmla_build(ctx, &spec->variants[0], &second, &err), SNAPMLA_OK);
    ck_assert_int_eq(second.source, SNAPMLA_FROM_MEMORY);
    snapmla_context_destroy(ctx);
    ctx = context_in(cache, NULL);
    ck_assert_int_eq(snapmla_build(ctx, &spec->variants[0], &third, &err), SNAPMLA_OK);
    ck_assert_int_eq(third.source, SNAPMLA_FROM_DISK);
    ck_assert_uint_eq(first.cubin_size, third.cubin_size);
    ck_assert_int_eq(memcmp(first.cubin, third.cubin, first.cubin_size), 0);
    ck_assert_str_eq(first.key, third.key);
    ck_assert_int_eq(warnings, 0);
    snapmla_binary_release(&first);
    snapmla_binary_release(&second);
    snapmla_binary_release(&third);
    snapmla_context_destroy(ctx);
    snapmla_spec_free(spec);
}
END_TEST

/* A variant whose kernel cannot keep its accumulators in registers (the
 * mma_sync engine holds latent_dim / 4 of them per thread: 256 at 1024)
 * builds, and says so once, when compiled; from the cache it is silent. */
START_TEST(a_spilling_variant_is_reported_once_when_compiled)
{
    snapmla_spec *spec = parse("kernel: mla_decode\n"
                               "model: {latent_dim: 1024, rope_dim: 64, q_heads: 16}\n"
                               "tile: {engine: mma_sync, q_rows: 16, kv_tokens: 32}\n");
    char cache[128];
    snprintf(cache, sizeof cache, "%s/cache", temp_dir);
    snapmla_context *ctx = context_in(cache, NULL);
    snapmla_binary first, again;
    snapmla_error err;
    ck_assert_int_eq(snapmla_build(ctx, &spec->variants[0], &first, &err), SNAPMLA_OK);
    ck_assert_int_eq(first.source, SNAPMLA_FROM_COMPILE);
    ck_assert_int_eq(warnings, 1);
    ck_assert_msg(strstr(last_warning, spec->variants[0].name) &&
                      strstr(last_warning, ": snapmla_decode_split spills ") &&
                      strstr(last_warning, "bytes to local memory"),
                  "%s", last_warning);
    snapmla_context_destroy(ctx);
    ctx = context_in(cache, NULL);
    ck_assert_int_eq(snapmla_build(ctx, &spec->variants[0], &again, &err), SNAPMLA_OK);
    ck_assert_int_eq(again.source, SNAPMLA_FROM_DISK);
    ck_assert_int_eq(warnings, 1);
    snapmla_binary_release(&first);
    snapmla_binary_release(&again);
    snapmla_context_destroy(ctx);
    snapmla_spec_free(spec);
}
END_TEST

START_TEST(aot_directory_is_used_before_jit)
{
    snapmla_spec *spec = parse(decode_yaml);
    char cache[128], aot[128], other_cache[128];
    snprintf(cache, sizeof cache, "%s/cache", temp_dir);
    snprintf(aot, sizeof aot, "%s/aot", temp_dir);
    snprintf(other_cache, sizeof other_cache, "%s/other", temp_dir);
    snapmla_context *ctx = context_in(cache, NULL);
    snapmla_binary built;
    snapmla_error err;
    ck_assert_int_eq(snapmla_build(ctx, &spec->variants[0], &built, &err), SNAPMLA_OK);
    snapmla_aot_entry entry = {&spec->variants[0], &built};
    ck_assert_int_eq(snapmla_aot_write(aot, &entry, 1, &err), SNAPMLA_OK);
    snapmla_context_destroy(ctx);

    ctx = context_in(other_cache, aot);
    snapmla_binary loaded;
    ck_assert_int_eq(snapmla_build(ctx, &spec->variants[0], &loaded, &err), SNAPMLA_OK);
    ck_assert_int_eq(loaded.source, SNAPMLA_FROM_AOT);
    ck_assert_uint_eq(loaded.cubin_size, built.cubin_size);
    snapmla_binary_release(&loaded);
    snapmla_context_destroy(ctx);

    /* A damaged CUBIN is reported and compiled instead, never loaded. */
    char path[256];
    snprintf(path, sizeof path, "%s/%s.cubin", aot, spec->variants[0].name);
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    fseek(f, 100, SEEK_SET);
    fputc(0x5a, f);
    fclose(f);
    ctx = context_in(other_cache, aot);
    ck_assert_int_eq(snapmla_build(ctx, &spec->variants[0], &loaded, &err), SNAPMLA_OK);
    ck_assert_int_ne(loaded.source, SNAPMLA_FROM_AOT);
    ck_assert_int_eq(warnings, 1);
    snapmla_binary_release(&loaded);
    snapmla_binary_release(&built);
    snapmla_context_destroy(ctx);
    snapmla_spec_free(spec);
}
END_TEST

START_TEST(aot_missing_key_is_not_an_error)
{
    char aot[128];
    snprintf(aot, sizeof aot, "%s/aot", temp_dir);
    snapmla_error err;
    ck_assert_int_eq(snapmla_aot_write(aot, NULL, 0, &err), SNAPMLA_OK);
    unsigned char *cubin = (unsigned char *)"x";
    size_t size = 0;
    char key[65];
    memset(key, 'a', 64);
    key[64] = '\0';
    ck_assert_int_eq(snapmla_aot_find(aot, key, &cubin, &size, &err), SNAPMLA_OK);
    ck_assert_ptr_null(cubin);
}
END_TEST

/* ---- launch argument checks: a kernel struct without a module suffices,
 * since every check runs before the launch. */

static snapmla_kernel fake_kernel(const snapmla_variant *v)
{
    snapmla_kernel k;
    memset(&k, 0, sizeof k);
    k.variant = *v;
    k.sm_count = 132;   /* an H100's SMs, one decode CTA each */
    k.ctas_per_sm = 1;
    return k;
}

typedef struct decode_case {
    const char *what;
    void (*break_args)(snapmla_decode_args *a);
    const char *message;
} decode_case;

static void null_q(snapmla_decode_args *a) { a->q = NULL; }
static void bad_batch(snapmla_decode_args *a) { a->batch = -1; }
static void huge_batch(snapmla_decode_args *a) { a->batch = 70000; }
static void misaligned_q(snapmla_decode_args *a) { a->q = (const char *)a->q + 2; }
static void misaligned_out(snapmla_decode_args *a) { a->out = (char *)a->out + 8; }
static void no_pages(snapmla_decode_args *a) { a->num_pages = 0; }
static void small_stride(snapmla_decode_args *a) { a->page_stride = 64; }
static void odd_stride(snapmla_decode_args *a) { a->page_stride += 8; }
static void no_table(snapmla_decode_args *a) { a->block_table_stride = 0; }
static void nan_scale(snapmla_decode_args *a) { a->softmax_scale = 0.f / 0.f; }
static void too_many_splits(snapmla_decode_args *a) { a->num_splits = 5; }
static void small_workspace(snapmla_decode_args *a) { a->workspace_bytes = 1000; }

static const decode_case decode_cases[] = {
    {"null q", null_q,
     "snapmla_decode: q, kv_cache, block_table, cache_seqlens, out, lse and workspace must not be NULL"},
    {"negative batch", bad_batch, "snapmla_decode: batch must be in 0..65535"},
    {"huge batch", huge_batch, "snapmla_decode: batch must be in 0..65535"},
    {"misaligned q", misaligned_q, "snapmla_decode: q, kv_cache and out must be 16-byte aligned"},
    {"misaligned out", misaligned_out, "snapmla_decode: q, kv_cache and out must be 16-byte aligned"},
    {"no pages", no_pages, "snapmla_decode: num_pages must be at least 1"},
    {"small page stride", small_stride,
     "snapmla_decode: page_stride must be 0 or a multiple of 16 of at least the page size"},
    {"odd page stride", odd_stride,
     "snapmla_decode: page_stride must be 0 or a multiple of 16 of at least the page size"},
    {"no block table", no_table, "snapmla_decode: block_table_stride must be at least 1"},
    {"nan scale", nan_scale, "snapmla_decode: softmax_scale must be finite and positive"},
    {"too many splits", too_many_splits,
     "snapmla_decode: num_splits must be 0 (the variant's policy) or 1..split.max_splits of the variant"},
    {"small workspace", small_workspace, NULL},
};

/* Arguments of a 3-request decode that pass every check (host memory: the
 * kernel must never be launched with them). */
static snapmla_decode_args valid_decode_args(const snapmla_kernel *k)
{
    static _Alignas(16) unsigned char memory[4096];
    snapmla_decode_args a = {
        .batch = 3, .q = memory, .kv_cache = memory, .num_pages = 4,
        .page_stride = (int64_t)snapmla_cache_page_bytes(&k->variant),
        .block_table = (const int32_t *)memory, .block_table_stride = 2,
        .cache_seqlens = (const int32_t *)memory, .softmax_scale = 0.1f, .out = memory,
        .lse = (float *)memory, .workspace = memory,
        .workspace_bytes = snapmla_decode_workspace_bytes(k, 3), .num_splits = 0,
    };
    return a;
}

START_TEST(decode_arguments_are_checked)
{
    snapmla_spec *spec = parse(decode_yaml);
    snapmla_kernel k = fake_kernel(&spec->variants[0]);
    const decode_case *c = &decode_cases[_i];
    snapmla_decode_args a = valid_decode_args(&k);
    c->break_args(&a);
    char expected[256];
    if (c->message)
        snprintf(expected, sizeof expected, "%s", c->message);
    else
        snprintf(expected, sizeof expected,
                 "snapmla_decode: workspace has 1000 bytes; batch 3 needs %zu "
                 "(snapmla_decode_workspace_bytes)", snapmla_decode_workspace_bytes(&k, 3));
    snapmla_error err;
    ck_assert_int_eq(snapmla_decode(&k, &a, NULL, &err), SNAPMLA_ERR_INVALID_ARG);
    ck_assert_str_eq(err.message, expected);
    /* snapmla_decode_plan checks the same arguments, under its own name */
    char expected_plan[300];
    snprintf(expected_plan, sizeof expected_plan, "snapmla_decode_plan%s", expected + strlen("snapmla_decode"));
    ck_assert_int_eq(snapmla_decode_plan(&k, &a, NULL, &err), SNAPMLA_ERR_INVALID_ARG);
    ck_assert_str_eq(err.message, expected_plan);
    snapmla_spec_free(spec);
}
END_TEST

/* A launch without a plan (the SIMT engine; a Hopper batch under one CTA
 * per SM, which runs as a split grid): snapmla_decode_plan checks the
 * arguments and launches nothing (the fake kernel has no driver to launch
 * with). */
START_TEST(decode_plan_without_a_plan_does_nothing)
{
    static const char *const specs[] = {
        decode_yaml,
        "kernel: mla_decode\nmodel: {latent_dim: 256, rope_dim: 32, q_heads: 8}\n"
        "cache: {format: fp8_per_token}\ntile: {engine: wgmma}\ntarget: {compute: fp8}\n",
    };
    for (int i = 0; i < 2; ++i) {
        snapmla_spec *spec = parse(specs[i]);
        snapmla_kernel k = fake_kernel(&spec->variants[0]);
        snapmla_decode_args a = valid_decode_args(&k);   /* 3 requests: 3 row blocks < 132 SMs */
        snapmla_error err;
        ck_assert_msg(snapmla_decode_plan(&k, &a, NULL, &err) == SNAPMLA_OK, "%s", err.message);
        snapmla_spec_free(spec);
    }
}
END_TEST

START_TEST(launches_check_the_kernel_kind)
{
    snapmla_spec *spec = parse(decode_yaml);
    snapmla_kernel k = fake_kernel(&spec->variants[0]);
    snapmla_append_args append = {0};
    snapmla_combine_args combine = {0};
    snapmla_error err;
    ck_assert_int_eq(snapmla_append(&k, &append, NULL, &err), SNAPMLA_ERR_INVALID_ARG);
    char expected[512];
    snprintf(expected, sizeof expected,
             "snapmla_append: variant '%s' is a mla_decode kernel, not kv_append", k.variant.name);
    ck_assert_str_eq(err.message, expected);
    ck_assert_int_eq(snapmla_combine(&k, &combine, NULL, &err), SNAPMLA_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(err.message, "is a mla_decode kernel, not mla_combine"));
    ck_assert_int_eq(snapmla_decode(NULL, NULL, NULL, &err), SNAPMLA_ERR_INVALID_ARG);
    ck_assert_str_eq(err.message, "snapmla_decode: kernel and args must not be NULL");
    /* batch 0 is a valid empty call */
    snapmla_decode_args empty = {0};
    ck_assert_int_eq(snapmla_decode(&k, &empty, NULL, &err), SNAPMLA_OK);
    snapmla_spec_free(spec);
}
END_TEST

START_TEST(append_and_combine_arguments_are_checked)
{
    static const char *const append_yaml =
        "kernel: kv_append\nmodel: {latent_dim: 512, rope_dim: 64}\n";
    static const char *const combine_yaml =
        "kernel: mla_combine\nmodel: {latent_dim: 512, q_heads: 16}\nsplit: {max_splits: 8}\n";
    snapmla_spec *as = parse(append_yaml), *cs = parse(combine_yaml);
    snapmla_kernel ak = fake_kernel(&as->variants[0]), ck = fake_kernel(&cs->variants[0]);
    static _Alignas(16) unsigned char memory[256];
    snapmla_error err;
    snapmla_append_args a = {.num_tokens = 4, .latent = memory, .rope = memory,
                             .slot_mapping = (const int64_t *)memory, .kv_cache = memory,
                             .num_pages = 2};
    a.num_tokens = -1;
    ck_assert_int_eq(snapmla_append(&ak, &a, NULL, &err), SNAPMLA_ERR_INVALID_ARG);
    ck_assert_str_eq(err.message, "snapmla_append: num_tokens must not be negative");
    a.num_tokens = 0;
    ck_assert_int_eq(snapmla_append(&ak, &a, NULL, &err), SNAPMLA_OK);
    a.num_tokens = 4;
    a.latent_stride = 100;
    ck_assert_int_eq(snapmla_append(&ak, &a, NULL, &err), SNAPMLA_ERR_INVALID_ARG);
    ck_assert_str_eq(err.message,
                     "snapmla_append: latent_stride and rope_stride must be 0 or at least the row width");
    a.latent_stride = 0;
    a.rope = NULL;
    ck_assert_int_eq(snapmla_append(&ak, &a, NULL, &err), SNAPMLA_ERR_INVALID_ARG);
    ck_assert_str_eq(err.message,
                     "snapmla_append: latent, rope, slot_mapping and kv_cache must not be NULL");

    snapmla_combine_args c = {.batch = 2, .splits = 9, .o_partial = (const float *)memory,
                              .lse_partial = (const float *)memory,
                              .split_counts = (const int32_t *)memory, .out = memory,
                              .lse = (float *)memory};
    ck_assert_int_eq(snapmla_combine(&ck, &c, NULL, &err), SNAPMLA_ERR_INVALID_ARG);
    ck_assert_str_eq(err.message, "snapmla_combine: splits must be in 1..split.max_splits of the variant");
    c.splits = 2;
    c.out = NULL;
    ck_assert_int_eq(snapmla_combine(&ck, &c, NULL, &err), SNAPMLA_ERR_INVALID_ARG);
    ck_assert_str_eq(err.message,
                     "snapmla_combine: o_partial, lse_partial, split_counts, out and lse must not be NULL");
    snapmla_spec_free(as);
    snapmla_spec_free(cs);
}
END_TEST

START_TEST(kernel_get_without_a_gpu_says_so)
{
    if (access("/dev/nvidiactl", F_OK) == 0)
        return;   /* a GPU machine: tests/test_gpu.c covers loading */
    snapmla_spec *spec = parse(decode_yaml);
    snapmla_context *ctx = context_in(temp_dir, NULL);
    snapmla_kernel *k = NULL;
    snapmla_error err;
    ck_assert_int_eq(snapmla_kernel_get(ctx, &spec->variants[0], &k, &err), SNAPMLA_ERR_NO_DEVICE);
    ck_assert_ptr_null(k);
    ck_assert_msg(strncmp(err.message, "no CUDA", 7) == 0, "%s", err.message);
    snapmla_context_destroy(ctx);
    snapmla_spec_free(spec);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("runtime");
    TCase *tc = tcase_create("runtime");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, make_temp_dir, remove_temp_dir);
    tcase_add_test(tc, build_is_served_from_memory_then_disk);
    tcase_add_test(tc, a_spilling_variant_is_reported_once_when_compiled);
    tcase_add_test(tc, aot_directory_is_used_before_jit);
    tcase_add_test(tc, aot_missing_key_is_not_an_error);
    tcase_add_loop_test(tc, decode_arguments_are_checked, 0,
                        (int)(sizeof decode_cases / sizeof decode_cases[0]));
    tcase_add_test(tc, decode_plan_without_a_plan_does_nothing);
    tcase_add_test(tc, launches_check_the_kernel_kind);
    tcase_add_test(tc, append_and_combine_arguments_are_checked);
    tcase_add_test(tc, kernel_get_without_a_gpu_says_so);
    suite_add_tcase(suite, tc);
    return run_suite(suite, CK_FORK);
}
