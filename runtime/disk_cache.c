/* Cache stage of the pipeline: CUBINs by content key, in memory and on disk.
 * Writes go to a temporary file and are renamed into place, so a reader sees
 * a whole entry or none; a per-key lock file (flock) makes racing processes
 * wait for the first builder instead of compiling the same kernel twice, and
 * a condition variable does the same for threads. */
#include "disk_cache.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "digest.h"
#include "error.h"
#include "fileio.h"

#define ENTRY_MAGIC "SNAPMLA"   /* 8 bytes with its NUL */
#define ENTRY_VERSION 1u
#define ENTRY_SUFFIX ".snapmla"
#define HEADER_FIXED (8 + 4 + 4 + 8 + 32 + 64 + 2)

typedef struct memory_entry {
    char key[65];
    unsigned char *bytes;
    size_t size;
    struct memory_entry *next;
} memory_entry;

typedef struct building_key {
    char key[65];
    struct building_key *next;
} building_key;

struct snapmla_disk_cache {
    char *dir;                    /* NULL: memory only */
    snapmla_log_fn log;
    void *log_user;
    pthread_mutex_t lock;         /* guards everything below */
    pthread_cond_t changed;       /* a build finished */
    memory_entry *entries;
    building_key *building;
    unsigned long temp_counter;
};

static void warn(const snapmla_disk_cache *c, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static void warn(const snapmla_disk_cache *c, const char *format, ...)
{
    if (!c->log)
        return;
    char message[1024];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    c->log(c->log_user, SNAPMLA_LOG_WARN, message);
}

/* ---- keys and paths ------------------------------------------------------ */

void snapmla_cache_make_key(const char *const *parts, const size_t *lengths, int count,
                            char key[65])
{
    snapmla_sha256 h;
    unsigned char digest[32];
    snapmla_sha256_init(&h);
    for (int i = 0; i < count; ++i) {
        unsigned char prefix[8];
        for (int b = 0; b < 8; ++b)
            prefix[b] = (unsigned char)((uint64_t)lengths[i] >> (8 * b));
        snapmla_sha256_update(&h, prefix, 8);
        snapmla_sha256_update(&h, parts[i], lengths[i]);
    }
    snapmla_sha256_final(&h, digest);
    snapmla_hex(digest, 32, key);
}

static void entry_path(const char *dir, const char *key, char *out, size_t size)
{
    snprintf(out, size, "%s/%.2s/%s" ENTRY_SUFFIX, dir, key, key);
}

/* ---- opening ------------------------------------------------------------- */

static char *default_dir(void)
{
    const char *env = getenv("SNAPMLA_CACHE_DIR");
    if (env && *env)
        return strdup(env);
    char buffer[4096];
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && *xdg)
        snprintf(buffer, sizeof buffer, "%s/snapmla", xdg);
    else if (home && *home)
        snprintf(buffer, sizeof buffer, "%s/.cache/snapmla", home);
    else
        return NULL;
    return strdup(buffer);
}

/* Creates dir, dir/tmp and dir/locks and proves a file can be written there. */
static int prepare_dir(const char *dir, char *problem, size_t size)
{
    char path[4096];
    snapmla_error err;
    const char *const subdirs[] = {"", "/tmp", "/locks"};
    for (int i = 0; i < 3; ++i) {
        snprintf(path, sizeof path, "%s%s", dir, subdirs[i]);
        if (snapmla_make_dirs(path, &err) != SNAPMLA_OK) {
            snprintf(problem, size, "%s", err.message);
            return 0;
        }
    }
    snprintf(path, sizeof path, "%s/tmp/probe.%ld.tmp", dir, (long)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(problem, size, "%s", strerror(errno));
        return 0;
    }
    close(fd);
    unlink(path);
    return 1;
}

/* Temporary files of writers that died more than an hour ago. */
static void sweep_stale_temps(const char *dir)
{
    char tmp_dir[4096];
    snprintf(tmp_dir, sizeof tmp_dir, "%s/tmp", dir);
    DIR *d = opendir(tmp_dir);
    if (!d)
        return;
    time_t now = time(NULL);
    for (struct dirent *e; (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".tmp") != 0)
            continue;
        char path[4352];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", tmp_dir, e->d_name);
        if (stat(path, &st) == 0 && now - st.st_mtime > 3600)
            unlink(path);
    }
    closedir(d);
}

snapmla_status snapmla_disk_cache_open(const char *dir, int memory_only, snapmla_log_fn log,
                                       void *log_user, snapmla_disk_cache **out,
                                       snapmla_error *err)
{
    snapmla_disk_cache *c = calloc(1, sizeof *c);
    if (!c)
        return snapmla_fail(err, SNAPMLA_ERR_NOMEM, "out of memory opening the cache");
    c->log = log;
    c->log_user = log_user;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->changed, NULL);
    if (!memory_only) {
        c->dir = dir ? strdup(dir) : default_dir();
        char problem[512];
        if (!c->dir) {
            warn(c, "snapmla: no cache directory (set SNAPMLA_CACHE_DIR or HOME); caching in "
                    "memory only");
        } else if (!prepare_dir(c->dir, problem, sizeof problem)) {
            warn(c, "snapmla: cache directory '%s' is not writable (%s); caching in memory only",
                 c->dir, problem);
            free(c->dir);
            c->dir = NULL;
        } else {
            sweep_stale_temps(c->dir);
        }
    }
    *out = c;
    return snapmla_ok(err);
}

void snapmla_disk_cache_close(snapmla_disk_cache *c)
{
    if (!c)
        return;
    for (memory_entry *e = c->entries, *next; e; e = next) {
        next = e->next;
        free(e->bytes);
        free(e);
    }
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->changed);
    free(c->dir);
    free(c);
}

const char *snapmla_disk_cache_dir(const snapmla_disk_cache *c)
{
    return c ? c->dir : NULL;
}

/* ---- entries --------------------------------------------------------------- */

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; ++i)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; ++i)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Checks a whole entry file's bytes; on success points at the payload. */
static int parse_entry(const unsigned char *data, size_t size, const char *expected_key,
                       const unsigned char **payload, size_t *payload_size, char *label,
                       size_t label_size, char *problem, size_t problem_size)
{
    if (size < HEADER_FIXED) {
        snprintf(problem, problem_size, "truncated header");
        return 0;
    }
    if (memcmp(data, ENTRY_MAGIC, 8) != 0) {
        snprintf(problem, problem_size, "not a snapmla cache entry (bad magic)");
        return 0;
    }
    if (get_le(data + 8, 4) != ENTRY_VERSION) {
        snprintf(problem, problem_size, "entry format %u, expected %u", (unsigned)get_le(data + 8, 4),
                 ENTRY_VERSION);
        return 0;
    }
    uint64_t header = get_le(data + 12, 4), length = get_le(data + 16, 8);
    size_t label_length = (size_t)get_le(data + HEADER_FIXED - 2, 2);
    if (header != HEADER_FIXED + label_length || header > size || length != size - header) {
        snprintf(problem, problem_size, "truncated or padded (header %llu + payload %llu, file %zu bytes)",
                 (unsigned long long)header, (unsigned long long)length, size);
        return 0;
    }
    if (expected_key && memcmp(data + 56, expected_key, 64) != 0) {
        snprintf(problem, problem_size, "holds another key than its name says");
        return 0;
    }
    char digest[65], stored[65];
    snapmla_sha256_hex(data + header, (size_t)length, digest);
    snapmla_hex(data + 24, 32, stored);
    if (strcmp(digest, stored) != 0) {
        snprintf(problem, problem_size, "payload checksum mismatch");
        return 0;
    }
    if (label) {
        size_t n = label_length < label_size - 1 ? label_length : label_size - 1;
        memcpy(label, data + HEADER_FIXED, n);
        label[n] = '\0';
    }
    *payload = data + header;
    *payload_size = (size_t)length;
    return 1;
}

static snapmla_status store_entry(snapmla_disk_cache *c, const char *key, const char *label,
                                  const unsigned char *bytes, size_t size, snapmla_error *err)
{
    size_t label_length = strlen(label) > 0xffff ? 0xffff : strlen(label);
    size_t header = HEADER_FIXED + label_length;
    unsigned char *file = malloc(header + size);
    if (!file)
        return snapmla_fail(err, SNAPMLA_ERR_NOMEM, "out of memory storing a cache entry");
    memcpy(file, ENTRY_MAGIC, 8);
    put_u32(file + 8, ENTRY_VERSION);
    put_u32(file + 12, (uint32_t)header);
    put_u64(file + 16, size);
    snapmla_sha256 h;
    snapmla_sha256_init(&h);
    snapmla_sha256_update(&h, bytes, size);
    snapmla_sha256_final(&h, file + 24);
    memcpy(file + 56, key, 64);
    file[HEADER_FIXED - 2] = (unsigned char)(label_length & 0xff);
    file[HEADER_FIXED - 1] = (unsigned char)(label_length >> 8);
    memcpy(file + HEADER_FIXED, label, label_length);
    memcpy(file + header, bytes, size);

    char subdir[4096], path[4352], temp[4352];
    snprintf(subdir, sizeof subdir, "%s/%.2s", c->dir, key);
    entry_path(c->dir, key, path, sizeof path);
    pthread_mutex_lock(&c->lock);
    unsigned long serial = ++c->temp_counter;
    pthread_mutex_unlock(&c->lock);
    snprintf(temp, sizeof temp, "%s/tmp/%s.%ld.%lu.tmp", c->dir, key, (long)getpid(), serial);
    snapmla_status s = snapmla_make_dirs(subdir, err);
    int fd = s == SNAPMLA_OK ? open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644) : -1;
    int problem = s == SNAPMLA_OK && fd < 0 ? errno : 0;
    size_t done = 0;
    while (fd >= 0 && !problem && done < header + size) {
        ssize_t n = write(fd, file + done, header + size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            problem = n < 0 ? errno : EIO;
        else
            done += (size_t)n;
    }
    if (fd >= 0 && !problem && fsync(fd) != 0)
        problem = errno;
    if (fd >= 0 && close(fd) != 0 && !problem)
        problem = errno;
    if (fd >= 0 && !problem && rename(temp, path) != 0)
        problem = errno;
    if (fd >= 0 && problem)
        unlink(temp);
    free(file);
    if (problem)
        s = snapmla_fail(err, SNAPMLA_ERR_IO, "cannot write cache entry '%s': %s", path, strerror(problem));
    return s;
}

/* Reads key's entry. 1 with a payload copy; 0 when absent; -1 when corrupt
 * (reported, removed). */
static int load_entry(snapmla_disk_cache *c, const char *key, unsigned char **bytes, size_t *size)
{
    char path[4352];
    entry_path(c->dir, key, path, sizeof path);
    unsigned char *data;
    size_t data_size;
    snapmla_error err;
    if (access(path, F_OK) != 0 || snapmla_read_file(path, SNAPMLA_BINARY_FILE_MAX, &data, &data_size, &err) != SNAPMLA_OK)
        return 0;
    const unsigned char *payload;
    size_t payload_size;
    char problem[128];
    if (!parse_entry(data, data_size, key, &payload, &payload_size, NULL, 0, problem, sizeof problem)) {
        warn(c, "snapmla: cache entry '%s' is corrupt (%s); rebuilding", path, problem);
        unlink(path);
        free(data);
        return -1;
    }
    *bytes = malloc(payload_size ? payload_size : 1);
    if (*bytes)
        memcpy(*bytes, payload, payload_size);
    *size = payload_size;
    free(data);
    return *bytes ? 1 : 0;
}

/* ---- get-or-build -------------------------------------------------------- */

static memory_entry *find_memory(snapmla_disk_cache *c, const char *key)
{
    for (memory_entry *e = c->entries; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

static int is_building(snapmla_disk_cache *c, const char *key)
{
    for (building_key *b = c->building; b; b = b->next)
        if (strcmp(b->key, key) == 0)
            return 1;
    return 0;
}

static void done_building(snapmla_disk_cache *c, building_key *mark)
{
    pthread_mutex_lock(&c->lock);
    for (building_key **p = &c->building; *p; p = &(*p)->next)
        if (*p == mark) {
            *p = mark->next;
            break;
        }
    pthread_cond_broadcast(&c->changed);
    pthread_mutex_unlock(&c->lock);
    free(mark);
}

static unsigned char *copy_bytes(const unsigned char *bytes, size_t size)
{
    unsigned char *copy = malloc(size ? size : 1);
    if (copy)
        memcpy(copy, bytes, size);
    return copy;
}

/* Under the per-key lock file: the disk entry, or a build stored to disk. */
static snapmla_status disk_or_build(snapmla_disk_cache *c, const char *key, const char *label,
                                    snapmla_cache_build_fn build, void *user, unsigned char **bytes,
                                    size_t *size, snapmla_source_kind *from, snapmla_error *err)
{
    int lock_fd = -1;
    if (c->dir) {
        char lock_path[4352];
        snprintf(lock_path, sizeof lock_path, "%s/locks/%s.lock", c->dir, key);
        lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        while (lock_fd >= 0 && flock(lock_fd, LOCK_EX) != 0 && errno == EINTR)
            ;
        if (load_entry(c, key, bytes, size) == 1) {
            *from = SNAPMLA_FROM_DISK;
            if (lock_fd >= 0)
                close(lock_fd);
            return SNAPMLA_OK;
        }
    }
    snapmla_status s = build(user, bytes, size, err);
    *from = SNAPMLA_FROM_COMPILE;
    if (s == SNAPMLA_OK && c->dir) {
        snapmla_error store_err;
        if (store_entry(c, key, label, *bytes, *size, &store_err) != SNAPMLA_OK)
            warn(c, "snapmla: %s; keeping it in memory only", store_err.message);
    }
    if (lock_fd >= 0)
        close(lock_fd);   /* releases the flock */
    return s;
}

snapmla_status snapmla_disk_cache_get(snapmla_disk_cache *c, const char *key, const char *label,
                                      snapmla_cache_build_fn build, void *build_user,
                                      unsigned char **bytes, size_t *size,
                                      snapmla_source_kind *from, snapmla_error *err)
{
    if (!c || !key || strlen(key) != 64 || !build || !bytes || !size || !from)
        return snapmla_fail(err, SNAPMLA_ERR_INVALID_ARG, "snapmla_disk_cache_get: bad arguments");
    building_key *mark = calloc(1, sizeof *mark);
    if (!mark)
        return snapmla_fail(err, SNAPMLA_ERR_NOMEM, "out of memory in the cache");
    pthread_mutex_lock(&c->lock);
    for (;;) {
        memory_entry *e = find_memory(c, key);
        if (e) {
            *bytes = copy_bytes(e->bytes, e->size);
            *size = e->size;
            *from = SNAPMLA_FROM_MEMORY;
            pthread_mutex_unlock(&c->lock);
            free(mark);
            return *bytes ? snapmla_ok(err)
                          : snapmla_fail(err, SNAPMLA_ERR_NOMEM, "out of memory in the cache");
        }
        if (!is_building(c, key))
            break;
        pthread_cond_wait(&c->changed, &c->lock);   /* another thread builds it */
    }
    memcpy(mark->key, key, 65);
    mark->next = c->building;
    c->building = mark;
    pthread_mutex_unlock(&c->lock);

    unsigned char *built = NULL;
    size_t built_size = 0;
    snapmla_status s = disk_or_build(c, key, label ? label : "", build, build_user, &built,
                                     &built_size, from, err);
    memory_entry *e = s == SNAPMLA_OK ? calloc(1, sizeof *e) : NULL;
    unsigned char *copy = e ? copy_bytes(built, built_size) : NULL;
    if (s == SNAPMLA_OK && !copy)
        s = snapmla_fail(err, SNAPMLA_ERR_NOMEM, "out of memory in the cache");
    if (s == SNAPMLA_OK) {
        memcpy(e->key, key, 65);
        e->bytes = built;
        e->size = built_size;
        pthread_mutex_lock(&c->lock);
        e->next = c->entries;
        c->entries = e;
        pthread_mutex_unlock(&c->lock);
        *bytes = copy;
        *size = built_size;
    } else {
        free(e);
        free(built);
    }
    done_building(c, mark);
    return s == SNAPMLA_OK ? snapmla_ok(err) : s;
}

/* ---- listing and clearing ------------------------------------------------ */

static int by_key(const void *a, const void *b)
{
    return strcmp(((const snapmla_cache_entry_info *)a)->key,
                  ((const snapmla_cache_entry_info *)b)->key);
}

static int is_hex_dir(const char *name)
{
    return strlen(name) == 2 && strspn(name, "0123456789abcdef") == 2;
}

static int has_suffix(const char *name, const char *suffix)
{
    size_t n = strlen(name), s = strlen(suffix);
    return n > s && strcmp(name + n - s, suffix) == 0;
}

static void inspect(const char *path, const char *file_name, snapmla_cache_entry_info *info)
{
    memset(info, 0, sizeof *info);
    snprintf(info->path, sizeof info->path, "%s", path);
    snprintf(info->key, sizeof info->key, "%.64s", file_name);
    struct stat st;
    if (stat(path, &st) == 0)
        info->mtime = (int64_t)st.st_mtime;
    unsigned char *data;
    size_t size;
    snapmla_error err;
    if (snapmla_read_file(path, SNAPMLA_BINARY_FILE_MAX, &data, &size, &err) != SNAPMLA_OK) {
        snprintf(info->problem, sizeof info->problem, "unreadable");
        return;
    }
    const unsigned char *payload;
    size_t payload_size;
    info->valid = parse_entry(data, size, info->key, &payload, &payload_size, info->label,
                              sizeof info->label, info->problem, sizeof info->problem);
    info->payload_size = info->valid ? payload_size : 0;
    free(data);
}

snapmla_status snapmla_disk_cache_list(const char *dir, snapmla_cache_entry_info **entries,
                                       size_t *count, snapmla_error *err)
{
    *entries = NULL;
    *count = 0;
    DIR *top = opendir(dir);
    if (!top)
        return snapmla_fail(err, SNAPMLA_ERR_IO, "cannot read cache directory '%s': %s", dir,
                            strerror(errno));
    size_t capacity = 0;
    snapmla_status s = SNAPMLA_OK;
    for (struct dirent *sub; s == SNAPMLA_OK && (sub = readdir(top));) {
        if (!is_hex_dir(sub->d_name))
            continue;
        char sub_path[4096];
        snprintf(sub_path, sizeof sub_path, "%s/%s", dir, sub->d_name);
        DIR *d = opendir(sub_path);
        for (struct dirent *e; d && (e = readdir(d));) {
            if (!has_suffix(e->d_name, ENTRY_SUFFIX))
                continue;
            if (*count == capacity) {
                capacity = capacity ? 2 * capacity : 16;
                snapmla_cache_entry_info *grown = realloc(*entries, capacity * sizeof *grown);
                if (!grown) {
                    s = snapmla_fail(err, SNAPMLA_ERR_NOMEM, "out of memory listing the cache");
                    break;
                }
                *entries = grown;
            }
            char path[4352];
            snprintf(path, sizeof path, "%s/%s", sub_path, e->d_name);
            inspect(path, e->d_name, &(*entries)[(*count)++]);
        }
        if (d)
            closedir(d);
    }
    closedir(top);
    if (s != SNAPMLA_OK) {
        free(*entries);
        *entries = NULL;
        *count = 0;
        return s;
    }
    if (*count > 1)
        qsort(*entries, *count, sizeof **entries, by_key);
    return SNAPMLA_OK;
}

/* Removes the files of one folder whose names end in suffix. */
static size_t remove_matching(const char *folder, const char *suffix)
{
    size_t removed = 0;
    DIR *d = opendir(folder);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (!has_suffix(e->d_name, suffix))
            continue;
        char path[4352];
        snprintf(path, sizeof path, "%s/%s", folder, e->d_name);
        removed += unlink(path) == 0;
    }
    if (d)
        closedir(d);
    rmdir(folder);   /* only succeeds when nothing foreign is left */
    return removed;
}

snapmla_status snapmla_disk_cache_clear(const char *dir, size_t *removed, snapmla_error *err)
{
    *removed = 0;
    DIR *top = opendir(dir);
    if (!top)
        return snapmla_fail(err, SNAPMLA_ERR_IO, "cannot read cache directory '%s': %s", dir,
                            strerror(errno));
    for (struct dirent *sub; (sub = readdir(top));)
        if (is_hex_dir(sub->d_name)) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, sub->d_name);
            *removed += remove_matching(path, ENTRY_SUFFIX);
        }
    closedir(top);
    char path[4096];
    snprintf(path, sizeof path, "%s/tmp", dir);
    *removed += remove_matching(path, ".tmp");
    snprintf(path, sizeof path, "%s/locks", dir);
    *removed += remove_matching(path, ".lock");
    return snapmla_ok(err);
}
