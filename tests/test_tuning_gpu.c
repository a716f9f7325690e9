/* GPU tests of autotuning: the dispatcher runs the database's winner with
 * its split count (bit for bit the same call as launching it by hand), logs
 * its choice under SNAPMLA_LOG=dispatch, and the tune correctness gate
 * rejects a deliberately wrong variant (a non-causal kernel labelled causal)
 * while passing the honest one. Without a GPU the suite prints one SKIP line. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bf16.h"
#include "context.h"
#include "decode_problem.h"
#include "snapmla.h"
#include "tune.h"
#include "run_suite.h"

static snapmla_context *ctx;
static char logged[8][1024];
static int logged_count;

static void keep_log(void *user, snapmla_log_level level, const char *message)
{
    (void)user;
    (void)level;
    if (strstr(message, "dispatch") && logged_count < 8)
        snprintf(logged[logged_count++], sizeof logged[0], "%s", message);
}

static snapmla_spec *parse(const char *yaml)
{
    snapmla_spec *spec;
    snapmla_error err;
    ck_assert_msg(snapmla_spec_parse(yaml, strlen(yaml), "t.yaml", &spec, &err) == SNAPMLA_OK,
                  "%s", err.message);
    return spec;
}

static void device_name(char *name, int size)
{
    const snapmla_driver *d;
    snapmla_error err;
    CUdevice device;
    ck_assert_int_eq(snapmla_context_driver(ctx, &d, &err), SNAPMLA_OK);
    ck_assert_int_eq(SNAPMLA_CU(d, cuCtxGetDevice(&device), &err), SNAPMLA_OK);
    ck_assert_int_eq(SNAPMLA_CU(d, cuDeviceGetName(name, size, device), &err), SNAPMLA_OK);
}

typedef struct buffers {
    const snapmla_driver *d;
    CUdeviceptr q, cache, table, lens, out, lse, ws;
    size_t out_bytes;
} buffers;

/* batch 4 x 2000 tokens of random BF16 in pages in order. */
static snapmla_decode_args make_inputs(const snapmla_variant *v, size_t ws_bytes, buffers *b)
{
    enum { BATCH = 4, SEQLEN = 2000 };
    snapmla_error err;
    ck_assert_int_eq(snapmla_context_driver(ctx, &b->d, &err), SNAPMLA_OK);
    int width = v->latent_dim + v->rope_dim, rows = v->q_heads * v->q_len;
    int pages_each = (SEQLEN + v->page_size - 1) / v->page_size;
    size_t q_count = (size_t)BATCH * rows * width;
    size_t cache_bytes = (size_t)BATCH * pages_each * snapmla_cache_page_bytes(v);
    uint16_t *host = malloc(cache_bytes > q_count * 2 ? cache_bytes : q_count * 2);
    int32_t table[BATCH * 64] = {0}, lens[BATCH];
    ck_assert(host && pages_each <= 64);
    snapmla_rng r = {2024};
    b->out_bytes = (size_t)BATCH * rows * v->latent_dim * 2;
    const struct { CUdeviceptr *p; size_t n; } all[] = {
        {&b->q, q_count * 2}, {&b->cache, cache_bytes}, {&b->table, sizeof table},
        {&b->lens, sizeof lens}, {&b->out, b->out_bytes}, {&b->lse, (size_t)BATCH * rows * 4},
        {&b->ws, ws_bytes}};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
        ck_assert_int_eq(SNAPMLA_CU(b->d, cuMemAlloc(all[i].p, all[i].n), &err), SNAPMLA_OK);
    for (size_t i = 0; i < cache_bytes / 2; ++i)
        host[i] = snapmla_f32_to_bf16((float)snapmla_rng_normal(&r));
    ck_assert_int_eq(SNAPMLA_CU(b->d, cuMemcpyHtoD(b->cache, host, cache_bytes), &err), SNAPMLA_OK);
    for (size_t i = 0; i < q_count; ++i)
        host[i] = snapmla_f32_to_bf16((float)snapmla_rng_normal(&r));
    ck_assert_int_eq(SNAPMLA_CU(b->d, cuMemcpyHtoD(b->q, host, q_count * 2), &err), SNAPMLA_OK);
    for (int i = 0; i < BATCH * pages_each; ++i)
        table[i] = i;
    for (int i = 0; i < BATCH; ++i)
        lens[i] = SEQLEN - 300 * i;
    ck_assert_int_eq(SNAPMLA_CU(b->d, cuMemcpyHtoD(b->table, table, sizeof table), &err), SNAPMLA_OK);
    ck_assert_int_eq(SNAPMLA_CU(b->d, cuMemcpyHtoD(b->lens, lens, sizeof lens), &err), SNAPMLA_OK);
    free(host);
    return (snapmla_decode_args){
        .batch = BATCH, .q = (void *)(uintptr_t)b->q, .kv_cache = (void *)(uintptr_t)b->cache,
        .num_pages = BATCH * pages_each, .block_table = (void *)(uintptr_t)b->table,
        .block_table_stride = pages_each, .cache_seqlens = (void *)(uintptr_t)b->lens,
        .softmax_scale = 1.f / sqrtf((float)width), .out = (void *)(uintptr_t)b->out,
        .lse = (void *)(uintptr_t)b->lse, .workspace = (void *)(uintptr_t)b->ws,
        .workspace_bytes = ws_bytes};
}

static void *download(const buffers *b)
{
    void *host = malloc(b->out_bytes);
    snapmla_error err;
    ck_assert_int_eq(SNAPMLA_CU(b->d, cuCtxSynchronize(), &err), SNAPMLA_OK);
    ck_assert_int_eq(SNAPMLA_CU(b->d, cuMemcpyDtoH(host, b->out, b->out_bytes), &err), SNAPMLA_OK);
    return host;
}

START_TEST(dispatch_runs_the_recorded_winner)
{
    snapmla_spec *spec = parse("name: t\nkernel: mla_decode\n"
                               "model: {latent_dim: 512, rope_dim: 64, q_heads: 16}\n"
                               "tile: {engine: mma_sync, q_rows: 16, kv_tokens: [16, 32]}\n"
                               "split: {max_splits: 8}\n");
    snapmla_kernel *kernels[2];
    snapmla_error err;
    for (int i = 0; i < 2; ++i)
        ck_assert_msg(snapmla_kernel_get(ctx, &spec->variants[i], &kernels[i], &err) == SNAPMLA_OK,
                      "%s", err.message);
    snapmla_tuning_entry e;
    memset(&e, 0, sizeof e);
    e.arch = spec->variants[1].arch;
    device_name(e.device, sizeof e.device);
    snapmla_variant_family(&spec->variants[1], e.family);
    e.rows = 16;
    e.batch_bucket = snapmla_tuning_batch_bucket(4);
    e.context_bucket = snapmla_tuning_context_bucket(2000);
    snprintf(e.variant, sizeof e.variant, "%s", spec->variants[1].name);
    e.num_splits = 3;
    e.us = 10;
    setenv("SNAPMLA_LOG", "dispatch", 1);
    snapmla_tuning_db *db;
    ck_assert_int_eq(snapmla_tuning_db_create(&e, 1, &db, &err), SNAPMLA_OK);
    unsetenv("SNAPMLA_LOG");
    snapmla_dispatch *d;
    logged_count = 0;
    ck_assert_msg(snapmla_dispatch_create(db, kernels, 2, NULL, &d, &err) == SNAPMLA_OK, "%s",
                  err.message);
    snapmla_tuning_db_free(db);
    snapmla_dispatch_choice c = snapmla_dispatch_select(d, 4, 2000);
    ck_assert_ptr_eq(c.kernel, kernels[1]);
    ck_assert_int_eq(c.num_splits, 3);
    ck_assert_int_eq(c.source, SNAPMLA_DISPATCH_TUNED);
    ck_assert_int_eq(logged_count, 2);   /* the summary, then this bucket's first use */
    printf("  %s\n  %s\n", logged[0], logged[1]);
    ck_assert_ptr_nonnull(strstr(logged[1], "splits 3 (tuned at 3-4, 1025-2048: 10.0 us)"));
    c = snapmla_dispatch_select(d, 128, 100000);
    ck_assert_ptr_eq(c.kernel, kernels[1]);
    ck_assert_int_eq(c.source, SNAPMLA_DISPATCH_NEAREST);

    /* snapmla_decode_tuned is the winner's own call, bit for bit */
    size_t ws = snapmla_dispatch_workspace_bytes(d, 4);
    ck_assert_uint_ge(ws, snapmla_decode_workspace_bytes(kernels[0], 4));
    ck_assert_uint_ge(ws, snapmla_decode_workspace_bytes(kernels[1], 4));
    buffers b;
    snapmla_decode_args args = make_inputs(&spec->variants[1], ws, &b);
    ck_assert_msg(snapmla_decode_tuned(d, 2000, &args, NULL, &err) == SNAPMLA_OK, "%s", err.message);
    void *tuned = download(&b);
    snapmla_decode_args direct = args;
    direct.num_splits = 3;
    ck_assert_int_eq(snapmla_decode(kernels[1], &direct, NULL, &err), SNAPMLA_OK);
    void *by_hand = download(&b);
    ck_assert_int_eq(memcmp(tuned, by_hand, b.out_bytes), 0);
    free(tuned);
    free(by_hand);
    CUdeviceptr all[] = {b.q, b.cache, b.table, b.lens, b.out, b.lse, b.ws};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
        b.d->cuMemFree(all[i]);
    snapmla_dispatch_free(d);

    /* no database: the first candidate with its own policy */
    ck_assert_int_eq(snapmla_dispatch_create(NULL, kernels, 2, NULL, &d, &err), SNAPMLA_OK);
    c = snapmla_dispatch_select(d, 4, 2000);
    ck_assert_ptr_eq(c.kernel, kernels[0]);
    ck_assert_int_eq(c.num_splits, 0);
    ck_assert_int_eq(c.source, SNAPMLA_DISPATCH_DEFAULT);
    snapmla_dispatch_free(d);
    snapmla_spec_free(spec);
}
END_TEST

START_TEST(a_wrong_variant_is_rejected_by_the_check)
{
    snapmla_spec *spec = parse("kernel: mla_decode\n"
                               "model: {latent_dim: 512, rope_dim: 64, q_heads: 16, q_len: 2, "
                               "causal: false}\ntile: {engine: mma_sync, q_rows: 32}\n");
    snapmla_kernel *kernel;
    snapmla_error err;
    ck_assert_msg(snapmla_kernel_get(ctx, &spec->variants[0], &kernel, &err) == SNAPMLA_OK, "%s",
                  err.message);
    char reason[TUNE_REASON_MAX];
    int passed = -1;
    ck_assert_msg(tune_check(ctx, kernel, 0, 7, &passed, reason, sizeof reason, &err) == SNAPMLA_OK,
                  "%s", err.message);
    printf("  honest: %s\n", reason);
    ck_assert_msg(passed == 1, "%s", reason);
    kernel->variant.causal = 1;   /* the kernel still masks nothing: wrong for a causal step */
    ck_assert_msg(tune_check(ctx, kernel, 0, 7, &passed, reason, sizeof reason, &err) == SNAPMLA_OK,
                  "%s", err.message);
    printf("  mislabelled: %s\n", reason);
    ck_assert_msg(passed == 0, "the wrong variant passed: %s", reason);
    kernel->variant.causal = 0;
    snapmla_spec_free(spec);
}
END_TEST

int main(void)
{
    snapmla_error err;
    snapmla_options options = {0};
    options.log = keep_log;
    if (snapmla_context_create(&options, &ctx, &err) != SNAPMLA_OK) {
        fprintf(stderr, "test_tuning_gpu: %s\n", err.message);
        return EXIT_FAILURE;
    }
    const snapmla_driver *d;
    snapmla_status s = snapmla_context_driver(ctx, &d, &err);
    if (s == SNAPMLA_OK)
        s = snapmla_driver_ensure_context(d, &err);
    if (s == SNAPMLA_ERR_NO_DEVICE) {
        printf("SKIP test_tuning_gpu: %s\n", err.message);
        snapmla_context_destroy(ctx);
        return EXIT_SUCCESS;
    }
    if (s != SNAPMLA_OK) {
        fprintf(stderr, "test_tuning_gpu: %s\n", err.message);
        return EXIT_FAILURE;
    }
    Suite *suite = suite_create("tuning_gpu");
    TCase *tc = tcase_create("tuning_gpu");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, dispatch_runs_the_recorded_winner);
    tcase_add_test(tc, a_wrong_variant_is_rejected_by_the_check);
    suite_add_tcase(suite, tc);
    int status = run_suite(suite, CK_NOFORK);
    snapmla_context_destroy(ctx);
    return status;
}
