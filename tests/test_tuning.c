/* Tests of autotuning without a GPU: shape buckets and their edges, spec
 * families, the tuning database (every parse error with its exact message,
 * round trip, atomic save, merge, lookup, seeded mutations), tuned dispatch
 * built from variants, the tune plan (shapes, splits, shards), the
 * measurement log (resume, torn lines, errors, seeded mutations), the
 * reduction to winners, and a parallel
 * NVRTC compile of a 24-variant sweep. Runs under ASan/UBSan. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build_pool.h"
#include "dispatch.h"
#include "snapmla.h"
#include "tune.h"
#include "input_checks.h"
#include "mutate.h"
#include "run_suite.h"

static const char *const device = "NVIDIA H100 80GB HBM3";
static const char *const family = "l512r64.q1c.bf16p64i.bf16";

static snapmla_spec *parse_spec(const char *yaml)
{
    snapmla_error err;
    snapmla_spec *spec = NULL;
    ck_assert_msg(snapmla_spec_parse(yaml, strlen(yaml), "t.yaml", &spec, &err) == SNAPMLA_OK,
                  "%s", err.message);
    return spec;
}

/* A 16-head sweep over kv tile (16, 32) and stages (1, 2): 4 variants. */
static snapmla_spec *small_sweep(void)
{
    return parse_spec("name: t\nkernel: mla_decode\n"
                      "model: {latent_dim: 512, rope_dim: 64, q_heads: 16}\n"
                      "tile: {engine: mma_sync, q_rows: 16, kv_tokens: [16, 32], stages: [1, 2]}\n"
                      "split: {max_splits: 8}\n");
}

static snapmla_tuning_entry entry(int batch_bucket, int context_bucket, const char *variant,
                                  int splits, double us)
{
    snapmla_tuning_entry e;
    memset(&e, 0, sizeof e);
    e.arch = SNAPMLA_ARCH_SM90A;
    snprintf(e.device, sizeof e.device, "%s", device);
    snprintf(e.family, sizeof e.family, "%s", family);
    e.rows = 16;
    e.batch_bucket = batch_bucket;
    e.context_bucket = context_bucket;
    snprintf(e.variant, sizeof e.variant, "%s", variant);
    e.num_splits = splits;
    e.us = us;
    snprintf(e.shapes, sizeof e.shapes, "8x4096");
    return e;
}

static snapmla_tuning_db *make_db(const snapmla_tuning_entry *entries, size_t count)
{
    snapmla_tuning_db *db = NULL;
    snapmla_error err;
    ck_assert_msg(snapmla_tuning_db_create(entries, count, &db, &err) == SNAPMLA_OK, "%s",
                  err.message);
    return db;
}

static snapmla_tuning_db *parse_db(const char *yaml)
{
    snapmla_tuning_db *db = NULL;
    snapmla_error err;
    ck_assert_msg(snapmla_tuning_db_parse(yaml, strlen(yaml), "db.yaml", &db, &err) == SNAPMLA_OK,
                  "%s", err.message);
    return db;
}

/* ---- buckets and families ------------------------------------------------------ */

START_TEST(bucket_edges)
{
    static const struct { int batch, bucket; } batches[] = {
        {0, -1}, {1, 0}, {2, 1}, {3, 2}, {4, 2}, {5, 3}, {8, 3}, {9, 4}, {16, 4}, {17, 5},
        {64, 6}, {65, 7}, {128, 7}, {129, 8}, {256, 8}, {257, 9}, {65535, 9}};
    for (size_t i = 0; i < sizeof batches / sizeof batches[0]; ++i)
        ck_assert_msg(snapmla_tuning_batch_bucket(batches[i].batch) == batches[i].bucket,
                      "batch %d", batches[i].batch);
    static const struct { int64_t context; int bucket; } contexts[] = {
        {-1, -1}, {0, 0}, {1, 0}, {512, 0}, {513, 1}, {1024, 1}, {1025, 2}, {4096, 3},
        {4097, 4}, {1048576, 11}, {1048577, 12}, {(int64_t)1 << 40, 12}};
    for (size_t i = 0; i < sizeof contexts / sizeof contexts[0]; ++i)
        ck_assert_msg(snapmla_tuning_context_bucket(contexts[i].context) == contexts[i].bucket,
                      "context %lld", (long long)contexts[i].context);
    int lo, hi;
    int64_t clo, chi;
    snapmla_tuning_batch_edges(0, &lo, &hi);
    ck_assert(lo == 1 && hi == 1);
    snapmla_tuning_batch_edges(3, &lo, &hi);
    ck_assert(lo == 5 && hi == 8);
    snapmla_tuning_batch_edges(9, &lo, &hi);
    ck_assert(lo == 257 && hi == -1);
    snapmla_tuning_context_edges(0, &clo, &chi);
    ck_assert(clo == 0 && chi == 512);
    snapmla_tuning_context_edges(3, &clo, &chi);
    ck_assert(clo == 2049 && chi == 4096);
    snapmla_tuning_context_edges(12, &clo, &chi);
    ck_assert(clo == 1048577 && chi == -1);
    /* every value falls in the bucket whose edges hold it */
    for (int b = 1; b <= 300; ++b) {
        snapmla_tuning_batch_edges(snapmla_tuning_batch_bucket(b), &lo, &hi);
        ck_assert(lo <= b && (hi < 0 || b <= hi));
    }
}
END_TEST

START_TEST(families_leave_out_heads_and_tuning)
{
    snapmla_spec *spec = parse_spec(
        "kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: [16, 128], q_len: 2}\n"
        "cache: {format: fp8_per_token}\ntile: {kv_tokens: [32, 64], stages: 1}\n");
    char first[SNAPMLA_FAMILY_MAX], other[SNAPMLA_FAMILY_MAX];
    snapmla_variant_family(&spec->variants[0], first);
    ck_assert_str_eq(first, "l512r64.q2c.fp8tokp64p.bf16");
    for (size_t i = 1; i < spec->count; ++i) {
        snapmla_variant_family(&spec->variants[i], other);
        ck_assert_str_eq(other, first);
    }
    snapmla_spec_free(spec);
}
END_TEST

/* ---- the database file ----------------------------------------------------------- */

static const char *const good_entry =
    "  - arch: sm_90a\n"
    "    device: \"NVIDIA H100 80GB HBM3\"\n"
    "    family: l512r64.q1c.bf16p64i.bf16\n"
    "    rows: 16\n"
    "    batch: 5-8\n"
    "    context: 2049-4096\n"
    "    variant: t.a\n"
    "    us: 12.5\n";

typedef struct bad_db {
    const char *yaml;      /* "%s" is replaced by good_entry */
    const char *message;
} bad_db;

static const bad_db bad_dbs[] = {
    {"", "db.yaml: empty tuning database; expected 'version: 1' and 'entries'"},
    {"- 1\n", "db.yaml:1:1: a tuning database is a mapping with 'version' and 'entries', not a list"},
    {"version: 1\n", "db.yaml:1:1: entries is required; a tuning database is 'version: 1' and "
                     "'entries' (a list, possibly empty)"},
    {"entries: []\n", "db.yaml:1:1: version is required; a tuning database is 'version: 1' and "
                      "'entries' (a list, possibly empty)"},
    {"version: 2\nentries: []\n", "db.yaml:1:10: version: '2' is not allowed; allowed: 1"},
    {"version: 1\nentris: []\n",
     "db.yaml:2:1: unknown field 'entris' (did you mean 'entries'?); top-level fields: version, entries"},
    {"version: 1\nentries: []\nname: x\n",
     "db.yaml:3:1: unknown field 'name'; top-level fields: version, entries"},
    {"version: 1\nentries: {a: 1}\n",
     "db.yaml:2:10: entries: expected a list of entries, found a mapping"},
    {"version: 1\nentries:\n  - 7\n",
     "db.yaml:3:5: entries[0]: expected a mapping of fields, found a scalar"},
    {"version: 1\nentries:\n%s    varaint: x\n",
     "db.yaml:11:5: unknown field 'entries[0].varaint' (did you mean 'variant'?); fields of an "
     "entry: arch, device, family, rows, batch, context, variant, splits, us, runner_up, "
     "runner_up_splits, margin, shapes"},
    {"version: 1\nentries:\n  - arch: sm_100\n",
     "db.yaml:3:11: entries[0].arch: 'sm_100' is not allowed; allowed: sm_80, sm_89, sm_90a"},
    {"version: 1\nentries:\n  - rows: 0\n",
     "db.yaml:3:11: entries[0].rows: '0' is out of range; allowed: 1..512"},
    {"version: 1\nentries:\n  - rows: \"16\"\n",
     "db.yaml:3:11: entries[0].rows: '16' is not an integer; allowed: 1..512"},
    {"version: 1\nentries:\n  - rows: [16]\n",
     "db.yaml:3:11: entries[0].rows: expected a scalar, found a list"},
    {"version: 1\nentries:\n  - batch: 5-9\n",
     "db.yaml:3:12: entries[0].batch: '5-9' is not a bucket; allowed: 1, 2, 3-4, 5-8, 9-16, "
     "17-32, 33-64, 65-128, 129-256, 257+"},
    {"version: 1\nentries:\n  - context: 4096\n",
     "db.yaml:3:14: entries[0].context: '4096' is not a bucket; allowed: 0-512, 513-1024, "
     "1025-2048, 2049-4096, 4097-8192, 8193-16384, 16385-32768, 32769-65536, 65537-131072, "
     "131073-262144, 262145-524288, 524289-1048576, 1048577+"},
    {"version: 1\nentries:\n  - us: -3\n",
     "db.yaml:3:9: entries[0].us: '-3' is not allowed; allowed: a number over 0"},
    {"version: 1\nentries:\n  - us: nan\n",
     "db.yaml:3:9: entries[0].us: 'nan' is not allowed; allowed: a number over 0"},
    {"version: 1\nentries:\n  - margin: -0.5\n",
     "db.yaml:3:13: entries[0].margin: '-0.5' is not allowed; allowed: a number, 0 or more"},
    {"version: 1\nentries:\n  - variant: a b\n",
     "db.yaml:3:14: entries[0].variant: 'a b' is not allowed; allowed: 1 to 191 of A-Z a-z 0-9 _ - ."},
    {"version: 1\nentries:\n  - device: \"\"\n",
     "db.yaml:3:13: entries[0].device: '' is not allowed; allowed: 1 to 95 printable ASCII characters"},
    {"version: 1\nentries:\n  - splits: 129\n",
     "db.yaml:3:13: entries[0].splits: '129' is out of range; allowed: 0..128"},
    {"version: 1\nentries:\n  - shapes: 8x\n",
     "db.yaml:3:13: entries[0].shapes: '8x' is not allowed; allowed: BATCHxSEQLEN[,BATCHxSEQLEN...] "
     "in at most 63 characters"},
    {"version: 1\nentries:\n  - arch: sm_90a\n    rows: 16\n",
     "db.yaml:3:5: entries[0]: device is required; required: arch, device, family, rows, batch, "
     "context, variant, us"},
    {"version: 1\nentries:\n%s    margin: 0.1\n",
     "db.yaml:11:13: entries[0].margin is given without entries[0].runner_up"},
    {"version: 1\nentries:\n%s    runner_up: t.b\n",
     "db.yaml:3:5: entries[0]: runner_up needs margin (its time / us - 1)"},
    {"version: 1\nentries:\n%s    runner_up: t.a\n    margin: 0\n",
     "db.yaml:11:16: entries[0].runner_up: 't.a' with splits 0 is the winner itself"},
    {"version: 1\nentries:\n%s%s",
     "db.yaml:11:5: entries[1] repeats the key of entries[0] (line 3): sm_90a 'NVIDIA H100 80GB "
     "HBM3' l512r64.q1c.bf16p64i.bf16 rows 16 batch 5-8 context 2049-4096"},
    {"version: 1\nentries: [\n", "db.yaml:3:1: YAML syntax error: did not find expected node "
                                 "content (while parsing a flow node)"},
};
enum { BAD_DBS = sizeof bad_dbs / sizeof bad_dbs[0] };

START_TEST(bad_databases_give_one_exact_message)
{
    char yaml[2048];
    snprintf(yaml, sizeof yaml, bad_dbs[_i].yaml, good_entry, good_entry);
    snapmla_tuning_db *db = NULL;
    snapmla_error err;
    ck_assert_int_eq(snapmla_tuning_db_parse(yaml, strlen(yaml), "db.yaml", &db, &err),
                     SNAPMLA_ERR_SPEC);
    ck_assert_ptr_null(db);
    ck_assert_str_eq(err.message, bad_dbs[_i].message);
}
END_TEST

START_TEST(created_entries_are_checked)
{
    snapmla_tuning_entry e[2] = {entry(3, 3, "t.a", 0, 10), entry(3, 3, "t.b", 0, 11)};
    snapmla_tuning_db *db = NULL;
    snapmla_error err;
    ck_assert_int_eq(snapmla_tuning_db_create(e, 2, &db, &err), SNAPMLA_ERR_INVALID_ARG);
    ck_assert_str_eq(err.message, "tuning database: entries[1] repeats the key of entries[0]: "
                                  "sm_90a 'NVIDIA H100 80GB HBM3' l512r64.q1c.bf16p64i.bf16 "
                                  "rows 16 batch 5-8 context 2049-4096");
    e[1] = entry(3, 4, "t.b", 0, -1);
    ck_assert_int_eq(snapmla_tuning_db_create(e, 2, &db, &err), SNAPMLA_ERR_INVALID_ARG);
    ck_assert_str_eq(err.message, "snapmla_tuning_db_create: entries[1]: us must be over 0 and "
                                  "margin 0 or more");
    e[1] = entry(3, 4, "t b", 0, 1);
    ck_assert_int_eq(snapmla_tuning_db_create(e, 2, &db, &err), SNAPMLA_ERR_INVALID_ARG);
    e[1] = entry(3, 13, "t.b", 0, 1);
    ck_assert_int_eq(snapmla_tuning_db_create(e, 2, &db, &err), SNAPMLA_ERR_INVALID_ARG);
    ck_assert_int_eq(snapmla_tuning_db_create(e, 2, NULL, &err), SNAPMLA_ERR_INVALID_ARG);
    ck_assert_int_eq(snapmla_tuning_db_load("/nonexistent/db.yaml", &db, &err), SNAPMLA_ERR_IO);
    ck_assert_str_eq(err.message, "cannot open '/nonexistent/db.yaml': No such file or directory");
}
END_TEST

static int same_entry(const snapmla_tuning_entry *a, const snapmla_tuning_entry *b)
{
    return a->arch == b->arch && !strcmp(a->device, b->device) && !strcmp(a->family, b->family) &&
           a->rows == b->rows && a->batch_bucket == b->batch_bucket &&
           a->context_bucket == b->context_bucket && !strcmp(a->variant, b->variant) &&
           a->num_splits == b->num_splits && a->us == b->us && !strcmp(a->runner_up, b->runner_up) &&
           a->runner_up_splits == b->runner_up_splits && a->margin == b->margin &&
           !strcmp(a->shapes, b->shapes);
}

START_TEST(round_trip_and_atomic_save)
{
    snapmla_tuning_entry e[3] = {entry(7, 3, "t.b", 4, 253.125), entry(0, 0, "t.a", 0, 9.5),
                                 entry(3, 12, "t.c", 0, 1000)};
    snprintf(e[0].runner_up, sizeof e[0].runner_up, "t.a");
    e[0].runner_up_splits = 8;
    e[0].margin = 0.0712;
    snprintf(e[1].device, sizeof e[1].device, "GPU \"quoted\" \\ name");
    snprintf(e[2].shapes, sizeof e[2].shapes, "4x2000000,8x1048577");
    snapmla_tuning_db *db = make_db(e, 3);
    ck_assert_uint_eq(snapmla_tuning_db_count(db), 3);
    /* sorted by key: device "GPU..." < "NVIDIA...", then batch bucket */
    ck_assert_str_eq(snapmla_tuning_db_entry(db, 0)->variant, "t.a");
    ck_assert_str_eq(snapmla_tuning_db_entry(db, 1)->variant, "t.c");
    ck_assert_str_eq(snapmla_tuning_db_entry(db, 2)->variant, "t.b");
    ck_assert_ptr_null(snapmla_tuning_db_entry(db, 3));

    char dir[] = "/tmp/snapmla-tuning-XXXXXX", path[128];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/db.yaml", dir);
    snapmla_error err;
    ck_assert_int_eq(snapmla_tuning_db_save(db, path, &err), SNAPMLA_OK);
    snapmla_tuning_db *back = NULL;
    ck_assert_msg(snapmla_tuning_db_load(path, &back, &err) == SNAPMLA_OK, "%s", err.message);
    ck_assert_uint_eq(snapmla_tuning_db_count(back), 3);
    for (size_t i = 0; i < 3; ++i)
        ck_assert(same_entry(snapmla_tuning_db_entry(db, i), snapmla_tuning_db_entry(back, i)));
    char *a, *b;
    size_t la, lb;
    ck_assert_int_eq(snapmla_tuning_db_format(db, &a, &la, &err), SNAPMLA_OK);
    ck_assert_int_eq(snapmla_tuning_db_format(back, &b, &lb, &err), SNAPMLA_OK);
    ck_assert_uint_eq(la, lb);
    ck_assert_int_eq(memcmp(a, b, la), 0);
    ck_assert_ptr_nonnull(strstr(a, "    batch: 65-128\n    context: 2049-4096\n    variant: t.b\n"
                                    "    splits: 4\n    us: 253.125\n    runner_up: t.a\n"
                                    "    runner_up_splits: 8\n    margin: 0.0712\n"));
    free(a);
    free(b);
    /* a save into a missing directory leaves nothing and says why */
    char missing[160];
    snprintf(missing, sizeof missing, "%s/no/db.yaml", dir);
    ck_assert_int_eq(snapmla_tuning_db_save(db, missing, &err), SNAPMLA_ERR_IO);
    char command[200];
    snprintf(command, sizeof command, "test $(ls -A '%s' | wc -l) -eq 1 && rm -rf '%s'", dir, dir);
    ck_assert_int_eq(system(command), 0);
    snapmla_tuning_db_free(db);
    snapmla_tuning_db_free(back);

    snapmla_tuning_db *empty = make_db(NULL, 0);
    ck_assert_int_eq(snapmla_tuning_db_format(empty, &a, &la, &err), SNAPMLA_OK);
    snapmla_tuning_db *again = parse_db(a);
    ck_assert_uint_eq(snapmla_tuning_db_count(again), 0);
    free(a);
    snapmla_tuning_db_free(empty);
    snapmla_tuning_db_free(again);
}
END_TEST

/* Mutations of the shipped database either load, and format and load back
 * to the same text, or are refused with a message that names the file
 * (tests/input_checks.h; under ASan/UBSan: no stray access, no leak). */
START_TEST(mutated_databases_round_trip_or_fail_cleanly)
{
    enum { MUTATIONS = 3000, CAP = 65536 };
    static char text[CAP], mutated[CAP];
    FILE *file = fopen(SNAPMLA_SOURCE_DIR "/docs/tuned_h100_fp8.yaml", "rb");
    ck_assert_ptr_nonnull(file);
    size_t len = fread(text, 1, CAP - 1, file);
    fclose(file);
    ck_assert_uint_lt(len, CAP - 1);
    size_t outcomes[2] = {0, 0};
    for (uint64_t seed = 0; seed < MUTATIONS; ++seed) {
        char why[SNAPMLA_ERROR_MAX + 128];
        size_t n = mutate_text(text, len, seed, mutated, CAP);
        int result = check_tuning_db_text(mutated, n, why, sizeof why);
        ck_assert_msg(result != INPUT_MISBEHAVED, "mutation seed %llu: %s\n%.1500s",
                      (unsigned long long)seed, why, mutated);
        ++outcomes[result];
    }
    ck_assert_uint_gt(outcomes[INPUT_LOADED], MUTATIONS / 50);
    ck_assert_uint_gt(outcomes[INPUT_REFUSED], MUTATIONS / 4);
}
END_TEST

START_TEST(lookup_at_bucket_edges)
{
    snapmla_tuning_entry e[3] = {entry(3, 3, "t.mid", 2, 10), entry(0, 0, "t.small", 0, 5),
                                 entry(9, 12, "t.huge", 0, 900)};
    snapmla_tuning_db *db = make_db(e, 3);
    snapmla_tuning_query q = {SNAPMLA_ARCH_SM90A, device, family, 16, 5, 2049};
    static const struct { int batch; int64_t context; const char *want; } cases[] = {
        {5, 2049, "t.mid"}, {8, 4096, "t.mid"}, {6, 3000, "t.mid"}, {4, 4096, NULL},
        {9, 4096, NULL}, {8, 2048, NULL}, {8, 4097, NULL}, {1, 0, "t.small"}, {1, 512, "t.small"},
        {2, 512, NULL}, {1, 513, NULL}, {257, 1048577, "t.huge"}, {65535, (int64_t)1 << 33, "t.huge"},
        {256, 1048577, NULL}, {0, 100, NULL}, {1, -1, NULL}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
        q.batch = cases[i].batch;
        q.context = cases[i].context;
        const snapmla_tuning_entry *found = snapmla_tuning_lookup(db, &q);
        if (cases[i].want)
            ck_assert_msg(found && strcmp(found->variant, cases[i].want) == 0, "case %zu", i);
        else
            ck_assert_msg(!found, "case %zu found %s", i, found ? found->variant : "");
    }
    q.batch = 8;
    q.context = 4096;
    ck_assert_int_eq(snapmla_tuning_lookup(db, &q)->num_splits, 2);
    q.rows = 32;
    ck_assert_ptr_null(snapmla_tuning_lookup(db, &q));
    q.rows = 16;
    q.arch = SNAPMLA_ARCH_SM80;
    ck_assert_ptr_null(snapmla_tuning_lookup(db, &q));
    q.arch = SNAPMLA_ARCH_SM90A;
    q.device = "NVIDIA H100 PCIe";
    ck_assert_ptr_null(snapmla_tuning_lookup(db, &q));
    q.device = device;
    q.family = "l512r64.q1c.fp8tokp64p.bf16";
    ck_assert_ptr_null(snapmla_tuning_lookup(db, &q));
    ck_assert_ptr_null(snapmla_tuning_lookup(NULL, &q));
    snapmla_tuning_db_free(db);
}
END_TEST

/* The shipped BF16 schedule database (docs/tuned_h100_bf16_schedule.yaml,
 * measured on the H100 in the thirtieth session) loads, and its lookups
 * give the schedules the measurements chose: the seesaw at one query token
 * and batch 1, the pair schedule at two tokens and batch 128. */
START_TEST(the_shipped_bf16_schedule_database_loads_and_picks)
{
    snapmla_tuning_db *db = NULL;
    snapmla_error err = {0};
    ck_assert_msg(snapmla_tuning_db_load(SNAPMLA_SOURCE_DIR "/docs/tuned_h100_bf16_schedule.yaml", &db, &err) ==
                      SNAPMLA_OK,
                  "%s", err.message);
    ck_assert_uint_eq(snapmla_tuning_db_count(db), 12);
    static const struct { const char *family; int rows, batch; int64_t context; const char *suffix; } cases[] = {
        {"l512r64.q1c.bf16p64i.bf16", 128, 1, 4096, ".seesaw"},
        {"l512r64.q1c.bf16p64i.bf16", 128, 128, 16384, ".pair"},
        {"l512r64.q2c.bf16p64i.bf16", 256, 128, 16384, ".pair"},
        {"l512r64.q2c.bf16p64i.bf16", 256, 1, 4096, ".seesaw"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
        snapmla_tuning_query q = {SNAPMLA_ARCH_SM90A, "NVIDIA H100 80GB HBM3", cases[i].family, cases[i].rows,
                                  cases[i].batch, cases[i].context};
        const snapmla_tuning_entry *found = snapmla_tuning_lookup(db, &q);
        ck_assert_msg(found != NULL, "case %zu: no entry", i);
        const size_t n = strlen(found->variant), k = strlen(cases[i].suffix);
        ck_assert_msg(n > k && strcmp(found->variant + n - k, cases[i].suffix) == 0, "case %zu picked %s", i,
                      found->variant);
    }
    snapmla_tuning_db_free(db);
}
END_TEST

/* ---- merge ---------------------------------------------------------------------- */

static char warnings[4][1024];
static int warning_count;

static void keep_warning(void *user, snapmla_log_level level, const char *message)
{
    (void)user;
    if (level == SNAPMLA_LOG_WARN && warning_count < 4)
        snprintf(warnings[warning_count++], sizeof warnings[0], "%s", message);
}

START_TEST(merge_keeps_the_faster_and_recomputes_the_runner_up)
{
    /* a: key X won by t.a (100 us, runner-up t.b +10%); key Y only here.
     * b: key X won by t.c (90 us, runner-up t.a at 95 us); key Z only here. */
    snapmla_tuning_entry ea[2] = {entry(3, 3, "t.a", 0, 100), entry(3, 4, "t.y", 0, 50)};
    snprintf(ea[0].runner_up, sizeof ea[0].runner_up, "t.b");
    ea[0].margin = 0.1;
    snapmla_tuning_entry eb[2] = {entry(3, 3, "t.c", 4, 90), entry(0, 0, "t.z", 0, 5)};
    snprintf(eb[0].runner_up, sizeof eb[0].runner_up, "t.a");
    eb[0].margin = 95.0 / 90.0 - 1;
    snprintf(eb[0].shapes, sizeof eb[0].shapes, "6x3000");
    snapmla_tuning_db *dbs[2] = {make_db(ea, 2), make_db(eb, 2)}, *merged = NULL;
    snapmla_error err;
    size_t conflicts = 99;
    warning_count = 0;
    ck_assert_int_eq(snapmla_tuning_db_merge((const snapmla_tuning_db *const *)dbs, 2,
                                             keep_warning, NULL, &conflicts, &merged, &err),
                     SNAPMLA_OK);
    ck_assert_uint_eq(conflicts, 1);
    ck_assert_int_eq(warning_count, 1);
    ck_assert_str_eq(warnings[0], "snapmla: merge: sm_90a 'NVIDIA H100 80GB HBM3' "
                                  "l512r64.q1c.bf16p64i.bf16 rows 16 batch 5-8 context 2049-4096: "
                                  "tuning database has t.a splits 0 (100.0 us), tuning database "
                                  "has t.c splits 4 (90.0 us); kept t.c splits 4 (the files "
                                  "measured different shapes)");
    ck_assert_uint_eq(snapmla_tuning_db_count(merged), 3);
    snapmla_tuning_query q = {SNAPMLA_ARCH_SM90A, device, family, 16, 8, 4096};
    const snapmla_tuning_entry *x = snapmla_tuning_lookup(merged, &q);
    ck_assert_str_eq(x->variant, "t.c");
    ck_assert_int_eq(x->num_splits, 4);
    ck_assert(x->us == 90);
    ck_assert_str_eq(x->runner_up, "t.a");   /* 95 us beats t.a's own 100 and t.b's 110 */
    ck_assert(fabs(x->margin - (95.0 / 90.0 - 1)) < 1e-12);
    ck_assert_str_eq(x->shapes, "6x3000");   /* the winner's */
    q.context = 8000;
    ck_assert_str_eq(snapmla_tuning_lookup(merged, &q)->variant, "t.y");
    q.batch = 1;
    q.context = 1;
    ck_assert_str_eq(snapmla_tuning_lookup(merged, &q)->variant, "t.z");
    snapmla_tuning_db_free(merged);

    /* the same winner in both: no conflict, the faster time, runner-up from either */
    snapmla_tuning_entry same = entry(3, 3, "t.a", 0, 98);
    snapmla_tuning_db *c = make_db(&same, 1);
    const snapmla_tuning_db *pair[2] = {dbs[0], c};
    warning_count = 0;
    ck_assert_int_eq(snapmla_tuning_db_merge(pair, 2, keep_warning, NULL, &conflicts, &merged, &err),
                     SNAPMLA_OK);
    ck_assert_uint_eq(conflicts, 0);
    ck_assert_int_eq(warning_count, 0);
    q.batch = 8;
    q.context = 4096;
    x = snapmla_tuning_lookup(merged, &q);
    ck_assert(x->us == 98);
    ck_assert_str_eq(x->runner_up, "t.b");
    ck_assert(fabs(x->margin - (110.0 / 98.0 - 1)) < 1e-12);
    snapmla_tuning_db_free(merged);
    snapmla_tuning_db_free(c);
    snapmla_tuning_db_free(dbs[0]);
    snapmla_tuning_db_free(dbs[1]);
    ck_assert_int_eq(snapmla_tuning_db_merge(NULL, 1, NULL, NULL, NULL, &merged, &err),
                     SNAPMLA_ERR_INVALID_ARG);
}
END_TEST

/* ---- dispatch --------------------------------------------------------------------- */

static char infos[8][1024];
static int info_count;

static void keep_info(void *user, snapmla_log_level level, const char *message)
{
    (void)user;
    if (level == SNAPMLA_LOG_INFO && info_count < 8)
        snprintf(infos[info_count++], sizeof infos[0], "%s", message);
}

START_TEST(dispatch_picks_the_recorded_winner)
{
    snapmla_spec *spec = small_sweep();
    const snapmla_variant *candidates[4];
    for (int i = 0; i < 4; ++i)
        candidates[i] = &spec->variants[i];
    /* winners: variant 2 with 4 splits at batch 5-8 x context 2049-4096;
     * variant 3 at 1 x 0-512; a variant that is not a candidate at 257+. */
    snapmla_tuning_entry e[3] = {entry(3, 3, spec->variants[2].name, 4, 50),
                                 entry(0, 0, spec->variants[3].name, 0, 5),
                                 entry(9, 12, "other.variant", 0, 900)};
    setenv("SNAPMLA_LOG", "cache,dispatch", 1);
    snapmla_tuning_db *db = make_db(e, 3);
    unsetenv("SNAPMLA_LOG");
    snapmla_dispatch *d = NULL;
    snapmla_error err;
    info_count = 0;
    ck_assert_msg(snapmla_dispatch_build(db, candidates, NULL, 4, device, keep_info, NULL, &d,
                                         &err) == SNAPMLA_OK, "%s", err.message);
    ck_assert_int_eq(info_count, 2);
    ck_assert_ptr_nonnull(strstr(infos[0], "'other.variant' splits 0, is not among the candidates"));
    ck_assert_str_eq(infos[1], "snapmla: dispatch: 4 candidates of l512r64.q1c.bf16p64i.bf16, 16 "
                               "heads, sm_90a on 'NVIDIA H100 80GB HBM3': 2 of 130 buckets tuned, "
                               "the others from the nearest tuned bucket");
    snapmla_tuning_db_free(db);   /* the dispatcher keeps what it needs */
    int splits;
    snapmla_dispatch_source source;
    ck_assert_int_eq(snapmla_dispatch_pick(d, 8, 4096, &splits, &source), 2);
    ck_assert_int_eq(splits, 4);
    ck_assert_int_eq(source, SNAPMLA_DISPATCH_TUNED);
    ck_assert_int_eq(snapmla_dispatch_pick(d, 5, 2049, &splits, &source), 2);
    ck_assert_int_eq(snapmla_dispatch_pick(d, 1, 512, &splits, &source), 3);
    ck_assert_int_eq(source, SNAPMLA_DISPATCH_TUNED);
    /* untuned buckets: the nearest tuned one */
    ck_assert_int_eq(snapmla_dispatch_pick(d, 8, 8192, &splits, &source), 2);
    ck_assert_int_eq(source, SNAPMLA_DISPATCH_NEAREST);
    ck_assert_int_eq(splits, 4);
    ck_assert_int_eq(snapmla_dispatch_pick(d, 2, 600, &splits, &source), 3);
    ck_assert_int_eq(snapmla_dispatch_pick(d, 1000, 1 << 20, &splits, &source), 2);
    /* the first use of each bucket is logged, once */
    ck_assert_int_eq(info_count, 7);
    ck_assert_str_eq(infos[2], "snapmla: dispatch: batch 8, context 4096 (buckets 5-8, 2049-4096): "
                               "t.mla_decode.l512r64.h16q1c.bf16p64i.kv32q16s1w2.auto8m256.sm_90a."
                               "bf16.mma splits 4 (tuned at 5-8, 2049-4096: 50.0 us)");
    snapmla_dispatch_pick(d, 6, 3000, NULL, NULL);
    ck_assert_int_eq(info_count, 7);
    char line[512];
    snapmla_dispatch_describe(d, 8, 8192, line, sizeof line);
    ck_assert_str_eq(line, "batch 8, context 8192 (buckets 5-8, 4097-8192): t.mla_decode.l512r64."
                           "h16q1c.bf16p64i.kv32q16s1w2.auto8m256.sm_90a.bf16.mma splits 4 "
                           "(nearest tuned bucket 5-8, 2049-4096: 50.0 us)");
    snapmla_dispatch_choice choice = snapmla_dispatch_select(d, 8, 4096);
    ck_assert_ptr_null(choice.kernel);   /* built without kernels */
    ck_assert_int_eq(choice.num_splits, 4);
    ck_assert_int_eq(snapmla_decode_tuned(d, 4096, NULL, NULL, &err), SNAPMLA_ERR_INVALID_ARG);
    snapmla_dispatch_free(d);

    /* another device, or no database: the first candidate, its own policy */
    db = make_db(e, 3);
    ck_assert_int_eq(snapmla_dispatch_build(db, candidates, NULL, 4, "NVIDIA A100", NULL, NULL, &d,
                                            &err), SNAPMLA_OK);
    ck_assert_int_eq(snapmla_dispatch_pick(d, 8, 4096, &splits, &source), 0);
    ck_assert_int_eq(splits, 0);
    ck_assert_int_eq(source, SNAPMLA_DISPATCH_DEFAULT);
    snapmla_dispatch_describe(d, 8, 4096, line, sizeof line);
    ck_assert_ptr_nonnull(strstr(line, "splits 0 (default: the database has no entry for this family"));
    snapmla_dispatch_free(d);
    ck_assert_int_eq(snapmla_dispatch_build(NULL, candidates, NULL, 4, device, NULL, NULL, &d, &err),
                     SNAPMLA_OK);
    ck_assert_int_eq(snapmla_dispatch_pick(d, 8, 4096, &splits, &source), 0);
    snapmla_dispatch_free(d);
    snapmla_tuning_db_free(db);
    snapmla_spec_free(spec);
}
END_TEST

START_TEST(dispatch_refuses_mixed_candidates)
{
    snapmla_spec *a = small_sweep();
    snapmla_spec *b = parse_spec("kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, "
                                 "q_heads: 16}\ncache: {page_size: 32}\n");
    const snapmla_variant *candidates[2] = {&a->variants[0], &b->variants[0]};
    snapmla_dispatch *d = NULL;
    snapmla_error err;
    ck_assert_int_eq(snapmla_dispatch_build(NULL, candidates, NULL, 2, device, NULL, NULL, &d, &err),
                     SNAPMLA_ERR_INVALID_ARG);
    ck_assert_str_eq(err.message, "snapmla_dispatch_create: candidate 1 'mla_decode.l512r64.h16q1c."
                                  "bf16p32i.kv64q16s2w8.auto64m256.sm_90a.bf16' is "
                                  "l512r64.q1c.bf16p32i.bf16 with 16 heads for sm_90a; the first is "
                                  "l512r64.q1c.bf16p64i.bf16 with 16 heads for sm_90a: a dispatcher "
                                  "serves one family, head count and arch");
    ck_assert_int_eq(snapmla_dispatch_build(NULL, candidates, NULL, 0, device, NULL, NULL, &d, &err),
                     SNAPMLA_ERR_INVALID_ARG);
    ck_assert_int_eq(snapmla_dispatch_create(NULL, NULL, 1, NULL, &d, &err), SNAPMLA_ERR_INVALID_ARG);
    snapmla_dispatch_choice none = snapmla_dispatch_select(NULL, 1, 1);
    ck_assert_ptr_null(none.kernel);
    snapmla_spec_free(a);
    snapmla_spec_free(b);
}
END_TEST

/* ---- the plan ------------------------------------------------------------------------ */

START_TEST(shapes_splits_and_shards_parse)
{
    tune_shape shapes[TUNE_MAX_SHAPES];
    int count;
    char why[256];
    ck_assert(tune_parse_shapes("128x4096,1x65536", shapes, &count, why, sizeof why));
    ck_assert_int_eq(count, 2);
    ck_assert(shapes[1].batch == 1 && shapes[1].seqlen == 65536);
    ck_assert(tune_parse_shapes("1/8/128x4096/16384,2x7", shapes, &count, why, sizeof why));
    ck_assert_int_eq(count, 7);
    ck_assert(shapes[0].batch == 1 && shapes[0].seqlen == 4096);
    ck_assert(shapes[1].batch == 1 && shapes[1].seqlen == 16384);
    ck_assert(shapes[5].batch == 128 && shapes[5].seqlen == 16384);
    static const char *const bad[] = {"", "128", "x4096", "128x", "0x10", "1x0", "65536x1",
                                      "1x4194305", "1x1,", "1x1,,2x2", "1//2x3", "1x2/", "-1x5",
                                      "1x5 ", "1x+5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i)
        ck_assert_msg(!tune_parse_shapes(bad[i], shapes, &count, why, sizeof why), "%s", bad[i]);
    ck_assert(!tune_parse_shapes("1x1,1x1", shapes, &count, why, sizeof why));
    ck_assert_str_eq(why, "--shapes: 1x1 is given twice");
    ck_assert(!tune_parse_shapes("1/2/3/4/5/6/7/8x1/2/3/4/5/6/7/8/9", shapes, &count, why, sizeof why));
    ck_assert_str_eq(why, "--shapes: more than 64 shapes");

    int splits[TUNE_MAX_SPLITS], n;
    ck_assert(tune_parse_splits("0,4,128", splits, &n));
    ck_assert(n == 3 && splits[2] == 128);
    ck_assert(!tune_parse_splits("0,0", splits, &n));
    ck_assert(!tune_parse_splits("129", splits, &n));
    ck_assert(!tune_parse_splits("1,", splits, &n));
    ck_assert(!tune_parse_splits("", splits, &n));

    int i, of;
    ck_assert(tune_parse_shard("0/1", &i, &of) && i == 0 && of == 1);
    ck_assert(tune_parse_shard("1/2", &i, &of) && i == 1 && of == 2);
    static const char *const bad_shards[] = {"2/2", "-1/2", "1", "1/0", "1/2x", "a/b", "0/1025", ""};
    for (size_t k = 0; k < sizeof bad_shards / sizeof bad_shards[0]; ++k)
        ck_assert_msg(!tune_parse_shard(bad_shards[k], &i, &of), "%s", bad_shards[k]);
}
END_TEST

START_TEST(shards_partition_the_sweep)
{
    snapmla_spec *specs[3] = {small_sweep(),
                              parse_spec("kernel: kv_append\nmodel: {latent_dim: 512, rope_dim: 64}\n"),
                              small_sweep()};   /* the same variants again: tuned once */
    int splits[3] = {0, 4, 16};   /* 16 is over the sweep's max_splits 8 */
    tune_shape shapes[1] = {{8, 4096}};
    int seen[4] = {0};
    for (int shard = 0; shard < 3; ++shard) {
        tune_plan plan;
        ck_assert(tune_plan_make(specs, 3, splits, 3, shard, 3, shapes, 1, &plan));
        ck_assert_uint_eq(plan.sweep_count, 4);
        ck_assert_uint_eq(plan.other_kernels, 1);
        ck_assert_uint_eq(plan.config_count, 2 * plan.variant_count);
        for (size_t v = 0; v < plan.variant_count; ++v) {
            long index = plan.variants[v] - specs[0]->variants;
            ck_assert_int_eq(index % 3, shard);
            seen[index]++;
            ck_assert_int_eq(plan.configs[2 * v].splits, 0);
            ck_assert_int_eq(plan.configs[2 * v + 1].splits, 4);
        }
        ck_assert_uint_eq(tune_plan_pending(&plan), plan.config_count);
        tune_plan_free(&plan);
    }
    for (int v = 0; v < 4; ++v)
        ck_assert_int_eq(seen[v], 1);
    for (int s = 0; s < 3; ++s)
        snapmla_spec_free(specs[s]);
}
END_TEST

/* ---- the measurement log --------------------------------------------------------------- */

static tune_plan plan_of(snapmla_spec *spec)
{
    int splits[2] = {0, 4};
    tune_shape shapes[3] = {{8, 4096}, {6, 3000}, {1, 100}};
    tune_plan plan;
    ck_assert(tune_plan_make(&spec, 1, splits, 2, 0, 1, shapes, 3, &plan));
    return plan;
}

START_TEST(the_log_resumes_a_run)
{
    snapmla_spec *spec = small_sweep();
    tune_plan plan = plan_of(spec);
    const char *v0 = spec->variants[0].name, *v1 = spec->variants[1].name;
    char text[4096];
    snprintf(text, sizeof text,
             "# comment\n"
             "device\tNVIDIA H100 80GB HBM3\tsm_90a\n"
             "checking\t%s\t0\nchecked\t%s\t0\n"
             "measured\t%s\t0\t8\t4096\t50.5\n"
             "measured\t%s\t0\t6\t3000\t40\n"
             "measured\t%s\t0\t2\t2\t1\n"            /* a shape of another run: ignored */
             "measured\tother.variant\t0\t8\t4096\t1\n"   /* another sweep's: ignored */
             "checking\t%s\t4\nrejected\t%s\t4\tFAIL rel_l2 0.5\n"
             "checking\t%s\t0\n"                     /* interrupted once: checked again */
             "checking\t%s\t4\nchecking\t%s\t4\n"    /* twice: rejected */
             "measured\t%s\t0\t1\t100\t7",          /* torn: dropped */
             v0, v0, v0, v0, v0, v0, v0, v1, v1, v1, v0);
    tune_log_summary sum;
    snapmla_error err;
    ck_assert_msg(tune_log_parse(text, strlen(text), "m.tsv", &plan, &sum, &err) == SNAPMLA_OK,
                  "%s", err.message);
    ck_assert_str_eq(sum.device, device);
    ck_assert_str_eq(sum.arch, "sm_90a");
    ck_assert_uint_eq(sum.records, 11);
    ck_assert_uint_eq(sum.applied, 9);
    ck_assert_uint_eq(sum.measured, 2);
    ck_assert_int_eq(sum.valid_bytes, (long)(strrchr(text, '\n') + 1 - text));
    ck_assert_int_eq(plan.configs[0].state, TUNE_CHECKED);
    ck_assert(plan.us[0] == 50.5 && plan.us[1] == 40 && plan.us[2] == 0);
    ck_assert_int_eq(plan.configs[1].state, TUNE_REJECTED);
    ck_assert_str_eq(plan.configs[1].reason, "FAIL rel_l2 0.5");
    ck_assert_int_eq(plan.configs[2].state, TUNE_UNCHECKED);
    ck_assert_int_eq(plan.configs[3].state, TUNE_REJECTED);
    ck_assert_str_eq(plan.configs[3].reason, "its correctness check did not finish in two earlier "
                                             "runs (the process crashed or was stopped during it)");
    /* 8 configs x 3 shapes, minus 2 rejected configs and 2 measured */
    ck_assert_uint_eq(tune_plan_pending(&plan), 6 * 3 - 2);
    tune_plan_free(&plan);
    snapmla_spec_free(spec);
}
END_TEST

typedef struct bad_log {
    const char *text;
    const char *message;
} bad_log;

static const bad_log bad_logs[] = {
    {"checked\tt.x\t0\n", "m.tsv:1: records before the device line"},
    {"device\tGPU\n", "m.tsv:1: device: expected 'device<TAB>GPU NAME<TAB>ARCH'"},
    {"device\tGPU\tsm_90a\ndevice\tGPU\tsm_90a\n", "m.tsv:2: device: a log holds one device line"},
    {"device\tGPU\tsm_90a\ntimed\tx\t0\n",
     "m.tsv:2: 'timed' is not a record; records: device, checking, checked, rejected, measured"},
    {"device\tGPU\tsm_90a\nmeasured\tx\t0\t8\t4096\n",
     "m.tsv:2: measured: expected VARIANT SPLITS BATCH SEQLEN US (tab-separated, US over 0)"},
    {"device\tGPU\tsm_90a\nmeasured\tx\t0\t8\t4096\t-1\n",
     "m.tsv:2: measured: expected VARIANT SPLITS BATCH SEQLEN US (tab-separated, US over 0)"},
    {"device\tGPU\tsm_90a\nmeasured\tx\t0\t0\t4096\t1\n",
     "m.tsv:2: measured: expected VARIANT SPLITS BATCH SEQLEN US (tab-separated, US over 0)"},
    {"device\tGPU\tsm_90a\nchecked\tx\t129\n", "m.tsv:2: checked: expected VARIANT SPLITS (tab-separated)"},
    {"device\tGPU\tsm_90a\nchecked\tx\n", "m.tsv:2: checked: expected VARIANT SPLITS (tab-separated)"},
    {"device\tGPU\tsm_90a\nrejected\tx\t0\n",
     "m.tsv:2: rejected: expected VARIANT SPLITS REASON (tab-separated)"},
};
enum { BAD_LOGS = sizeof bad_logs / sizeof bad_logs[0] };

START_TEST(bad_logs_give_one_exact_message)
{
    snapmla_spec *spec = small_sweep();
    tune_plan plan = plan_of(spec);
    tune_log_summary sum;
    snapmla_error err;
    ck_assert_int_eq(tune_log_parse(bad_logs[_i].text, strlen(bad_logs[_i].text), "m.tsv", &plan,
                                    &sum, &err), SNAPMLA_ERR_SPEC);
    ck_assert_str_eq(err.message, bad_logs[_i].message);
    tune_plan_free(&plan);
    snapmla_spec_free(spec);
}
END_TEST

/* Mutations of a log (a crash mid-line, a hand edit) are read or refused
 * with a message naming the file; never a stray access (ASan/UBSan). A
 * refused log leaves the plan as it was given, a read one only moves
 * configs the log names. */
START_TEST(mutated_logs_are_read_or_refused_cleanly)
{
    enum { MUTATIONS = 2000, CAP = 8192 };
    snapmla_spec *spec = small_sweep();
    const char *v0 = spec->variants[0].name, *v1 = spec->variants[1].name;
    char text[CAP], mutated[CAP];
    int len = snprintf(text, sizeof text,
                       "device\tNVIDIA H100 80GB HBM3\tsm_90a\n"
                       "checking\t%s\t0\nchecked\t%s\t0\n"
                       "measured\t%s\t0\t8\t4096\t50.5\n"
                       "measured\t%s\t0\t6\t3000\t40\n"
                       "checking\t%s\t4\nrejected\t%s\t4\tFAIL rel_l2 0.5\n"
                       "checking\t%s\t4\nchecking\t%s\t4\n",
                       v0, v0, v0, v0, v0, v0, v1, v1);
    ck_assert_int_lt(len, CAP);
    size_t outcomes[2] = {0, 0};
    for (uint64_t seed = 0; seed < MUTATIONS; ++seed) {
        size_t n = mutate_text(text, (size_t)len, seed, mutated, CAP);
        tune_plan plan = plan_of(spec);
        tune_log_summary sum;
        snapmla_error err = {.status = SNAPMLA_OK, .message = ""};
        snapmla_status s = tune_log_parse(mutated, n, "m.tsv", &plan, &sum, &err);
        ck_assert_msg(s == SNAPMLA_OK || (s == SNAPMLA_ERR_SPEC && strncmp(err.message, "m.tsv", 5) == 0),
                      "mutation seed %llu: status %d, '%s'\n%.1500s", (unsigned long long)seed, (int)s,
                      err.message, mutated);
        ck_assert_uint_le(tune_plan_pending(&plan), plan.config_count * (size_t)plan.shape_count);
        outcomes[s == SNAPMLA_OK]++;
        tune_plan_free(&plan);
    }
    ck_assert_uint_gt(outcomes[0], MUTATIONS / 10);
    ck_assert_uint_gt(outcomes[1], MUTATIONS / 10);
    snapmla_spec_free(spec);
}
END_TEST

START_TEST(the_log_is_appended_and_read_back)
{
    snapmla_spec *spec = small_sweep();
    tune_plan plan = plan_of(spec);
    char dir[] = "/tmp/snapmla-tunelog-XXXXXX", path[128];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/m.tsv", dir);
    tune_log_summary sum;
    snapmla_error err;
    ck_assert_int_eq(tune_log_read(path, &plan, &sum, &err), SNAPMLA_OK);   /* absent: empty */
    ck_assert_str_eq(sum.device, "");
    FILE *log;
    ck_assert_int_eq(tune_log_open(path, &sum, device, SNAPMLA_ARCH_SM90A, &log, &err), SNAPMLA_OK);
    tune_reject(&plan.configs[1], "FAIL\twith a tab\nand a newline");
    ck_assert_int_eq(tune_log_append(log, "checked", &plan.configs[0], NULL, 0, &err), SNAPMLA_OK);
    ck_assert_int_eq(tune_log_append(log, "measured", &plan.configs[0], &plan.shapes[1], 12.25, &err),
                     SNAPMLA_OK);
    ck_assert_int_eq(tune_log_append(log, "rejected", &plan.configs[1], NULL, 0, &err), SNAPMLA_OK);
    fputs("measured\ttorn", log);   /* an interruption mid-record */
    fclose(log);
    tune_plan_free(&plan);

    plan = plan_of(spec);
    ck_assert_msg(tune_log_read(path, &plan, &sum, &err) == SNAPMLA_OK, "%s", err.message);
    ck_assert_str_eq(sum.device, device);
    ck_assert_int_eq(plan.configs[0].state, TUNE_CHECKED);
    ck_assert(plan.us[1] == 12.25);
    ck_assert_int_eq(plan.configs[1].state, TUNE_REJECTED);
    ck_assert_str_eq(plan.configs[1].reason, "FAIL with a tab and a newline");
    /* reopening drops the torn tail and does not repeat the device line */
    ck_assert_int_eq(tune_log_open(path, &sum, device, SNAPMLA_ARCH_SM90A, &log, &err), SNAPMLA_OK);
    ck_assert_int_eq(tune_log_append(log, "measured", &plan.configs[0], &plan.shapes[0], 20, &err),
                     SNAPMLA_OK);
    fclose(log);
    tune_plan_free(&plan);
    plan = plan_of(spec);
    ck_assert_msg(tune_log_read(path, &plan, &sum, &err) == SNAPMLA_OK, "%s", err.message);
    ck_assert(plan.us[0] == 20 && plan.us[1] == 12.25);
    ck_assert_uint_eq(sum.records, 4);
    char command[200];
    snprintf(command, sizeof command, "test $(grep -c device '%s') -eq 1 && rm -rf '%s'", path, dir);
    ck_assert_int_eq(system(command), 0);
    tune_plan_free(&plan);
    snapmla_spec_free(spec);
}
END_TEST

/* ---- measurements -> winners ----------------------------------------------------------- */

START_TEST(winners_per_bucket)
{
    snapmla_spec *spec = small_sweep();
    tune_plan plan = plan_of(spec);   /* 8 configs; shapes 8x4096 and 6x3000 share a bucket */
    double us[8][3] = {
        {100, 100, 10},   /* config 0 */
        {90, 120, 0},     /* 1: geomean 103.9 over the shared bucket; 1x100 not measured */
        {80, 80, 9},      /* 2: fastest, but rejected */
        {95, 95, 11},     /* 3: best checked of the shared bucket */
        {99, 0, 8},       /* 4: incomplete in the shared bucket; best at 1x100 */
        {0, 0, 0}, {0, 0, 0}, {0, 0, 0}};
    for (size_t c = 0; c < plan.config_count; ++c) {
        plan.configs[c].state = TUNE_CHECKED;
        for (int s = 0; s < 3; ++s)
            plan.us[c * 3 + (size_t)s] = us[c][s];
    }
    tune_reject(&plan.configs[2], "FAIL");
    snapmla_tuning_entry *entries;
    size_t count;
    ck_assert(tune_plan_entries(&plan, device, SNAPMLA_ARCH_SM90A, &entries, &count));
    ck_assert_uint_eq(count, 2);
    snapmla_tuning_db *db = make_db(entries, count);
    free(entries);
    const snapmla_tuning_entry *e = snapmla_tuning_db_entry(db, 0);   /* batch 1, context 0-512 */
    ck_assert_int_eq(e->batch_bucket, 0);
    ck_assert_str_eq(e->variant, spec->variants[2].name);   /* config 4: variant 2, splits 0 */
    ck_assert_int_eq(e->num_splits, 0);
    ck_assert(fabs(e->us - 8) < 1e-9);
    ck_assert_str_eq(e->runner_up, spec->variants[0].name);
    ck_assert(fabs(e->margin - 0.25) < 1e-12);
    ck_assert_str_eq(e->shapes, "1x100");
    e = snapmla_tuning_db_entry(db, 1);
    ck_assert_int_eq(e->batch_bucket, 3);
    ck_assert_int_eq(e->context_bucket, 3);
    ck_assert_str_eq(e->variant, spec->variants[1].name);   /* config 3: variant 1, splits 4 */
    ck_assert_int_eq(e->num_splits, 4);
    ck_assert(fabs(e->us - 95) < 1e-9);
    ck_assert_str_eq(e->runner_up, spec->variants[0].name);
    ck_assert(fabs(e->margin - (100.0 / 95.0 - 1)) < 1e-9);
    ck_assert_str_eq(e->shapes, "8x4096,6x3000");
    ck_assert_str_eq(e->family, family);
    ck_assert_int_eq(e->rows, 16);
    snapmla_tuning_db_free(db);
    tune_plan_free(&plan);
    snapmla_spec_free(spec);
}
END_TEST

/* ---- compiling a sweep ---------------------------------------------------------------- */

START_TEST(a_sweep_compiles_in_parallel_through_nvrtc)
{
    snapmla_spec *spec;
    snapmla_error err;
    ck_assert_msg(snapmla_spec_load(SNAPMLA_SOURCE_DIR "/specs/deepseek_v3_tune.yaml", &spec, &err)
                  == SNAPMLA_OK, "%s", err.message);
    ck_assert_uint_ge(spec->count, 24);
    snapmla_options options = {0};
    options.disable_disk_cache = 1;
    snapmla_context *ctx;
    ck_assert_int_eq(snapmla_context_create(&options, &ctx, &err), SNAPMLA_OK);
    const snapmla_variant **variants = calloc(spec->count, sizeof *variants);
    snapmla_binary *binaries = calloc(spec->count, sizeof *binaries);
    snapmla_error *errors = calloc(spec->count, sizeof *errors);
    for (size_t i = 0; i < spec->count; ++i)
        variants[i] = &spec->variants[i];
    double wall = snapmla_build_pool(ctx, variants, spec->count, 4, binaries, errors);
    double nvrtc = 0;
    for (size_t i = 0; i < spec->count; ++i) {
        ck_assert_msg(errors[i].status == SNAPMLA_OK, "%s: %s", variants[i]->name, errors[i].message);
        ck_assert_int_eq(binaries[i].source, SNAPMLA_FROM_COMPILE);
        ck_assert_uint_gt(binaries[i].cubin_size, 1000);
        nvrtc += binaries[i].compile_seconds;
        snapmla_binary_release(&binaries[i]);
    }
    printf("compiled %zu variants in %.1f s on 4 threads (%.1f s of NVRTC, %.1f variants/s)\n",
           spec->count, wall, nvrtc, (double)spec->count / wall);
    snapmla_build_pool(ctx, variants, spec->count, 3, binaries, errors);
    for (size_t i = 0; i < spec->count; ++i) {
        ck_assert_int_eq(errors[i].status, SNAPMLA_OK);
        ck_assert_int_eq(binaries[i].source, SNAPMLA_FROM_MEMORY);
        snapmla_binary_release(&binaries[i]);
    }
    snapmla_context_destroy(ctx);
    free(variants);
    free(binaries);
    free(errors);
    snapmla_spec_free(spec);
}
END_TEST

START_TEST(sweep_points_over_the_resources_are_rejected_with_the_reason)
{
    snapmla_spec *spec = parse_spec("name: t\nkernel: mla_decode\n"
                                    "model: {latent_dim: 512, rope_dim: 64, q_heads: 16}\n"
                                    "tile: {engine: mma_sync, q_rows: 16, kv_tokens: [64, 128], "
                                    "stages: [1, 2]}\n");
    ck_assert_uint_eq(spec->count, 3);
    ck_assert_uint_eq(spec->rejected_count, 1);
    ck_assert_str_eq(spec->rejected[0].name,
                     "t.mla_decode.l512r64.h16q1c.bf16p64i.kv128q16s2w2.auto64m256.sm_90a.bf16.mma");
    ck_assert_str_eq(spec->rejected[0].reason, "t.yaml:4:68: needs 334080 bytes of shared memory "
                                               "per CTA, over the 232448 that sm_90a allows: lower "
                                               "tile.kv_tokens, tile.stages or tile.q_rows");
    /* rejected points are not in the plan */
    int splits[1] = {0};
    tune_shape shapes[1] = {{1, 100}};
    tune_plan plan;
    ck_assert(tune_plan_make(&spec, 1, splits, 1, 0, 1, shapes, 1, &plan));
    ck_assert_uint_eq(plan.config_count, 3);
    tune_plan_free(&plan);
    snapmla_spec_free(spec);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("tuning");
    TCase *tc = tcase_create("tuning");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, bucket_edges);
    tcase_add_test(tc, families_leave_out_heads_and_tuning);
    tcase_add_loop_test(tc, bad_databases_give_one_exact_message, 0, BAD_DBS);
    tcase_add_test(tc, created_entries_are_checked);
    tcase_add_test(tc, round_trip_and_atomic_save);
    tcase_add_test(tc, mutated_databases_round_trip_or_fail_cleanly);
    tcase_add_test(tc, lookup_at_bucket_edges);
    tcase_add_test(tc, the_shipped_bf16_schedule_database_loads_and_picks);
    tcase_add_test(tc, merge_keeps_the_faster_and_recomputes_the_runner_up);
    tcase_add_test(tc, dispatch_picks_the_recorded_winner);
    tcase_add_test(tc, dispatch_refuses_mixed_candidates);
    tcase_add_test(tc, shapes_splits_and_shards_parse);
    tcase_add_test(tc, shards_partition_the_sweep);
    tcase_add_test(tc, the_log_resumes_a_run);
    tcase_add_loop_test(tc, bad_logs_give_one_exact_message, 0, BAD_LOGS);
    tcase_add_test(tc, mutated_logs_are_read_or_refused_cleanly);
    tcase_add_test(tc, the_log_is_appended_and_read_back);
    tcase_add_test(tc, winners_per_bucket);
    tcase_add_test(tc, a_sweep_compiles_in_parallel_through_nvrtc);
    tcase_add_test(tc, sweep_points_over_the_resources_are_rejected_with_the_reason);
    suite_add_tcase(suite, tc);
    return run_suite(suite, CK_FORK);
}
