/* Tests of the disk cache: SHA-256 against FIPS 180-4 vectors, keys, hits
 * and misses, corrupt, truncated and foreign entries, an unwritable
 * directory, builds that fail, and processes and threads racing on one key. */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "digest.h"
#include "disk_cache.h"
#include "run_suite.h"

static char dir[64];
static int warnings;
static char last_warning[1024];

static void record(void *user, snapmla_log_level level, const char *message)
{
    (void)user;
    if (level == SNAPMLA_LOG_WARN) {
        warnings++;
        snprintf(last_warning, sizeof last_warning, "%s", message);
    }
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/snapmla-cache-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    warnings = 0;
    last_warning[0] = '\0';
}

static void teardown(void)
{
    char command[128];
    snprintf(command, sizeof command, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(command), 0);
}

/* A build that counts its calls (in a file, so children of fork count too). */
typedef struct build_job {
    const char *payload;
    int sleep_ms;
    int fail;
    const char *counter;
} build_job;

static snapmla_status build(void *user, unsigned char **bytes, size_t *size, snapmla_error *err)
{
    build_job *job = user;
    if (job->counter) {
        FILE *f = fopen(job->counter, "a");
        ck_assert_ptr_nonnull(f);
        fputs("built\n", f);
        fclose(f);
    }
    if (job->sleep_ms)
        usleep((useconds_t)job->sleep_ms * 1000);
    if (job->fail) {
        if (err) {
            err->status = SNAPMLA_ERR_COMPILE;
            snprintf(err->message, sizeof err->message, "the build failed on purpose");
        }
        return SNAPMLA_ERR_COMPILE;
    }
    *size = strlen(job->payload);
    *bytes = malloc(*size);
    memcpy(*bytes, job->payload, *size);
    return SNAPMLA_OK;
}

static int count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    int n = 0;
    for (int c; f && (c = fgetc(f)) != EOF;)
        n += c == '\n';
    if (f)
        fclose(f);
    return n;
}

static const char *key_of(const char *text)
{
    static char key[65];
    const char *parts[1] = {text};
    size_t lengths[1] = {strlen(text)};
    snapmla_cache_make_key(parts, lengths, 1, key);
    return key;
}

static snapmla_disk_cache *open_cache(const char *path)
{
    snapmla_disk_cache *c;
    snapmla_error err;
    ck_assert_int_eq(snapmla_disk_cache_open(path, 0, record, NULL, &c, &err), SNAPMLA_OK);
    return c;
}

static void get(snapmla_disk_cache *c, const char *key, build_job *job, const char *want,
                snapmla_source_kind want_from)
{
    unsigned char *bytes = NULL;
    size_t size = 0;
    snapmla_source_kind from;
    snapmla_error err;
    ck_assert_msg(snapmla_disk_cache_get(c, key, "label", build, job, &bytes, &size, &from, &err) ==
                  SNAPMLA_OK, "%s", err.message);
    ck_assert_uint_eq(size, strlen(want));
    ck_assert_int_eq(memcmp(bytes, want, size), 0);
    ck_assert_int_eq(from, want_from);
    free(bytes);
}

static void entry_file(const char *key, char *path, size_t size)
{
    snprintf(path, size, "%s/%.2s/%s.snapmla", dir, key, key);
}

START_TEST(sha256_matches_fips_vectors)
{
    char hex[65];
    snapmla_sha256_hex("", 0, hex);
    ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    snapmla_sha256_hex("abc", 3, hex);
    ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    snapmla_sha256_hex(m448, strlen(m448), hex);
    ck_assert_str_eq(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
                       "klmnopqrlmnopqrsmnopqrstnopqrstu";
    snapmla_sha256_hex(m896, strlen(m896), hex);
    ck_assert_str_eq(hex, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
    snapmla_sha256 h;
    unsigned char digest[32];
    char chunk[1000];
    memset(chunk, 'a', sizeof chunk);
    snapmla_sha256_init(&h);
    for (int i = 0; i < 1000; ++i)
        snapmla_sha256_update(&h, chunk, sizeof chunk);
    snapmla_sha256_final(&h, digest);
    snapmla_hex(digest, 32, hex);
    ck_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}
END_TEST

START_TEST(key_changes_with_any_part_and_boundary)
{
    char a[65], b[65], c[65];
    const char *p1[2] = {"ab", "c"}, *p2[2] = {"a", "bc"}, *p3[2] = {"ab", "d"};
    size_t l1[2] = {2, 1}, l2[2] = {1, 2};
    snapmla_cache_make_key(p1, l1, 2, a);
    snapmla_cache_make_key(p2, l2, 2, b);
    snapmla_cache_make_key(p3, l1, 2, c);
    ck_assert_str_ne(a, b);
    ck_assert_str_ne(a, c);
    snapmla_cache_make_key(p1, l1, 2, b);
    ck_assert_str_eq(a, b);
}
END_TEST

START_TEST(miss_then_memory_then_disk)
{
    char counter[128];
    snprintf(counter, sizeof counter, "%s/count", dir);
    build_job job = {"cubin-bytes", 0, 0, counter};
    snapmla_disk_cache *c = open_cache(dir);
    ck_assert_str_eq(snapmla_disk_cache_dir(c), dir);
    const char *key = key_of("one");
    get(c, key, &job, "cubin-bytes", SNAPMLA_FROM_COMPILE);
    get(c, key, &job, "cubin-bytes", SNAPMLA_FROM_MEMORY);
    snapmla_disk_cache_close(c);
    c = open_cache(dir);
    get(c, key, &job, "cubin-bytes", SNAPMLA_FROM_DISK);
    snapmla_disk_cache_close(c);
    ck_assert_int_eq(count_lines(counter), 1);
    ck_assert_int_eq(warnings, 0);
}
END_TEST

/* Damages the stored entry of key, then expects one warning and a rebuild. */
static void damage_and_rebuild(void (*damage)(const char *path), const char *problem)
{
    build_job job = {"payload-0123456789", 0, 0, NULL};
    snapmla_disk_cache *c = open_cache(dir);
    const char *key = key_of("damaged");
    get(c, key, &job, job.payload, SNAPMLA_FROM_COMPILE);
    snapmla_disk_cache_close(c);
    char path[256];
    entry_file(key, path, sizeof path);
    damage(path);
    c = open_cache(dir);
    get(c, key, &job, job.payload, SNAPMLA_FROM_COMPILE);
    get(c, key, &job, job.payload, SNAPMLA_FROM_MEMORY);
    snapmla_disk_cache_close(c);
    ck_assert_int_eq(warnings, 1);
    char expected[512];
    snprintf(expected, sizeof expected, "snapmla: cache entry '%s' is corrupt (%s); rebuilding", path,
             problem);
    ck_assert_str_eq(last_warning, expected);
    c = open_cache(dir);   /* rebuilt entry is whole again */
    get(c, key, &job, job.payload, SNAPMLA_FROM_DISK);
    snapmla_disk_cache_close(c);
}

static void flip_payload_byte(const char *path)
{
    FILE *f = fopen(path, "r+b");
    fseek(f, -3, SEEK_END);
    int byte = fgetc(f);
    fseek(f, -3, SEEK_END);
    fputc(byte ^ 0x20, f);
    fclose(f);
}

static void cut_payload(const char *path)
{
    struct stat st;
    stat(path, &st);
    ck_assert_int_eq(truncate(path, st.st_size - 4), 0);
}

static void cut_header(const char *path) { ck_assert_int_eq(truncate(path, 20), 0); }

static void break_magic(const char *path)
{
    FILE *f = fopen(path, "r+b");
    fputc('X', f);
    fclose(f);
}

START_TEST(corrupt_payload_is_rebuilt) { damage_and_rebuild(flip_payload_byte, "payload checksum mismatch"); }
END_TEST
START_TEST(truncated_payload_is_rebuilt)
{
    damage_and_rebuild(cut_payload, "truncated or padded (header 127 + payload 18, file 141 bytes)");
}
END_TEST
START_TEST(truncated_header_is_rebuilt) { damage_and_rebuild(cut_header, "truncated header"); }
END_TEST
START_TEST(bad_magic_is_rebuilt) { damage_and_rebuild(break_magic, "not a snapmla cache entry (bad magic)"); }
END_TEST

START_TEST(entry_under_another_name_is_rejected)
{
    build_job job = {"payload", 0, 0, NULL};
    snapmla_disk_cache *c = open_cache(dir);
    char a[65], b[65], pa[256], pb[256], sub[256];
    snprintf(a, sizeof a, "%s", key_of("a"));
    snprintf(b, sizeof b, "%s", key_of("b"));
    get(c, a, &job, "payload", SNAPMLA_FROM_COMPILE);
    snapmla_disk_cache_close(c);
    entry_file(a, pa, sizeof pa);
    entry_file(b, pb, sizeof pb);
    snprintf(sub, sizeof sub, "%s/%.2s", dir, b);
    mkdir(sub, 0755);
    ck_assert_int_eq(rename(pa, pb), 0);
    build_job other = {"other", 0, 0, NULL};
    c = open_cache(dir);
    get(c, b, &other, "other", SNAPMLA_FROM_COMPILE);
    snapmla_disk_cache_close(c);
    ck_assert_int_eq(warnings, 1);
    ck_assert_ptr_nonnull(strstr(last_warning, "holds another key than its name says"));
}
END_TEST

START_TEST(unwritable_directory_falls_back_to_memory)
{
    /* a path under a regular file fails for root too (ENOTDIR) */
    char file[128], path[160];
    snprintf(file, sizeof file, "%s/file", dir);
    FILE *f = fopen(file, "w");
    fclose(f);
    snprintf(path, sizeof path, "%s/sub", file);
    snapmla_disk_cache *c = open_cache(path);
    ck_assert_ptr_null(snapmla_disk_cache_dir(c));
    ck_assert_int_eq(warnings, 1);
    char expected[512];
    snprintf(expected, sizeof expected,
             "snapmla: cache directory '%s' is not writable (cannot create directory '%s': Not a "
             "directory); caching in memory only", path, path);
    ck_assert_str_eq(last_warning, expected);
    build_job job = {"mem", 0, 0, NULL};
    const char *key = key_of("memory");
    get(c, key, &job, "mem", SNAPMLA_FROM_COMPILE);
    get(c, key, &job, "mem", SNAPMLA_FROM_MEMORY);
    snapmla_disk_cache_close(c);
    ck_assert_int_eq(warnings, 1);

    snapmla_error err;
    ck_assert_int_eq(snapmla_disk_cache_open(dir, 1, record, NULL, &c, &err), SNAPMLA_OK);
    ck_assert_ptr_null(snapmla_disk_cache_dir(c));   /* memory only on request: no warning */
    snapmla_disk_cache_close(c);
    ck_assert_int_eq(warnings, 1);
}
END_TEST

START_TEST(failed_build_stores_nothing)
{
    build_job job = {NULL, 0, 1, NULL};
    snapmla_disk_cache *c = open_cache(dir);
    unsigned char *bytes = NULL;
    size_t size;
    snapmla_source_kind from;
    snapmla_error err;
    const char *key = key_of("fails");
    ck_assert_int_eq(snapmla_disk_cache_get(c, key, "x", build, &job, &bytes, &size, &from, &err),
                     SNAPMLA_ERR_COMPILE);
    ck_assert_str_eq(err.message, "the build failed on purpose");
    ck_assert_ptr_null(bytes);
    snapmla_disk_cache_close(c);
    snapmla_cache_entry_info *entries;
    size_t count;
    ck_assert_int_eq(snapmla_disk_cache_list(dir, &entries, &count, &err), SNAPMLA_OK);
    ck_assert_uint_eq(count, 0);
    free(entries);
}
END_TEST

START_TEST(processes_racing_build_once)
{
    char counter[128];
    snprintf(counter, sizeof counter, "%s/count", dir);
    const char *key = key_of("raced");
    enum { CHILDREN = 4 };
    pid_t pids[CHILDREN];
    for (int i = 0; i < CHILDREN; ++i) {
        pids[i] = fork();
        ck_assert_int_ge(pids[i], 0);
        if (pids[i] == 0) {
            build_job job = {"raced-bytes", 200, 0, counter};
            snapmla_disk_cache *c;
            snapmla_error err;
            unsigned char *bytes = NULL;
            size_t size = 0;
            snapmla_source_kind from;
            int ok = snapmla_disk_cache_open(dir, 0, NULL, NULL, &c, &err) == SNAPMLA_OK &&
                     snapmla_disk_cache_get(c, key, "r", build, &job, &bytes, &size, &from, &err) ==
                         SNAPMLA_OK &&
                     size == 11 && memcmp(bytes, "raced-bytes", 11) == 0;
            _exit(ok ? 0 : 1);
        }
    }
    for (int i = 0; i < CHILDREN; ++i) {
        int status;
        ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    ck_assert_int_eq(count_lines(counter), 1);
}
END_TEST

typedef struct thread_arg {
    snapmla_disk_cache *cache;
    const char *key;
    build_job *job;
    int ok;
} thread_arg;

static void *thread_get(void *user)
{
    thread_arg *a = user;
    unsigned char *bytes = NULL;
    size_t size = 0;
    snapmla_source_kind from;
    snapmla_error err;
    a->ok = snapmla_disk_cache_get(a->cache, a->key, "t", build, a->job, &bytes, &size, &from, &err) ==
                SNAPMLA_OK && size == 5 && memcmp(bytes, "threa", 5) == 0;
    free(bytes);
    return NULL;
}

START_TEST(threads_racing_build_once)
{
    char counter[128];
    snprintf(counter, sizeof counter, "%s/count", dir);
    build_job job = {"threa", 100, 0, counter};
    snapmla_disk_cache *c = open_cache(dir);
    pthread_t threads[8];
    thread_arg args[8];
    for (int i = 0; i < 8; ++i) {
        args[i] = (thread_arg){c, key_of("threads"), &job, 0};
        ck_assert_int_eq(pthread_create(&threads[i], NULL, thread_get, &args[i]), 0);
    }
    for (int i = 0; i < 8; ++i) {
        pthread_join(threads[i], NULL);
        ck_assert(args[i].ok);
    }
    snapmla_disk_cache_close(c);
    ck_assert_int_eq(count_lines(counter), 1);
}
END_TEST

START_TEST(list_verify_and_clear)
{
    build_job job = {"x1", 0, 0, NULL};
    snapmla_disk_cache *c = open_cache(dir);
    char k1[65], k2[65];
    snprintf(k1, sizeof k1, "%s", key_of("k1"));
    snprintf(k2, sizeof k2, "%s", key_of("k2"));
    get(c, k1, &job, "x1", SNAPMLA_FROM_COMPILE);
    job.payload = "x22";
    get(c, k2, &job, "x22", SNAPMLA_FROM_COMPILE);
    snapmla_disk_cache_close(c);
    char path[256], foreign[256];
    entry_file(k2, path, sizeof path);
    flip_payload_byte(path);
    snprintf(foreign, sizeof foreign, "%s/notes.txt", dir);
    FILE *f = fopen(foreign, "w");
    fputs("mine\n", f);
    fclose(f);

    snapmla_cache_entry_info *entries;
    size_t count;
    snapmla_error err;
    ck_assert_int_eq(snapmla_disk_cache_list(dir, &entries, &count, &err), SNAPMLA_OK);
    ck_assert_uint_eq(count, 2);
    ck_assert(strcmp(entries[0].key, entries[1].key) < 0);
    for (size_t i = 0; i < 2; ++i) {
        int damaged = strcmp(entries[i].key, k2) == 0;
        ck_assert_int_eq(entries[i].valid, !damaged);
        ck_assert_str_eq(entries[i].problem, damaged ? "payload checksum mismatch" : "");
        if (!damaged) {
            ck_assert_str_eq(entries[i].label, "label");
            ck_assert_uint_eq(entries[i].payload_size, 2);
        }
    }
    free(entries);
    size_t removed = 0;
    ck_assert_int_eq(snapmla_disk_cache_clear(dir, &removed, &err), SNAPMLA_OK);
    ck_assert_uint_eq(removed, 4);   /* two entries, two lock files */
    ck_assert_int_eq(access(foreign, F_OK), 0);
    ck_assert_int_eq(snapmla_disk_cache_list(dir, &entries, &count, &err), SNAPMLA_OK);
    ck_assert_uint_eq(count, 0);
    free(entries);
    ck_assert_int_eq(snapmla_disk_cache_list("/nonexistent-cache", &entries, &count, &err), SNAPMLA_ERR_IO);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("cache");
    TCase *tc = tcase_create("cache");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, sha256_matches_fips_vectors);
    tcase_add_test(tc, key_changes_with_any_part_and_boundary);
    tcase_add_test(tc, miss_then_memory_then_disk);
    tcase_add_test(tc, corrupt_payload_is_rebuilt);
    tcase_add_test(tc, truncated_payload_is_rebuilt);
    tcase_add_test(tc, truncated_header_is_rebuilt);
    tcase_add_test(tc, bad_magic_is_rebuilt);
    tcase_add_test(tc, entry_under_another_name_is_rejected);
    tcase_add_test(tc, unwritable_directory_falls_back_to_memory);
    tcase_add_test(tc, failed_build_stores_nothing);
    tcase_add_test(tc, processes_racing_build_once);
    tcase_add_test(tc, threads_racing_build_once);
    tcase_add_test(tc, list_verify_and_clear);
    suite_add_tcase(suite, tc);
    return run_suite(suite, CK_FORK);
}
