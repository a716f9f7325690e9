/* The content-addressed CUBIN cache: memory first, then disk, then build.
 * docs/cache.md has the entry format and the locking protocol. */
#ifndef SNAPMLA_RUNTIME_DISK_CACHE_H
#define SNAPMLA_RUNTIME_DISK_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "snapmla.h"

typedef struct snapmla_disk_cache snapmla_disk_cache;

/* dir NULL: $SNAPMLA_CACHE_DIR, else $XDG_CACHE_HOME/snapmla, else
 * $HOME/.cache/snapmla. memory_only, or a directory that cannot be created
 * or written, gives an in-memory cache (the latter with one warning through
 * log). Owned by the caller: snapmla_disk_cache_close. */
snapmla_status snapmla_disk_cache_open(const char *dir, int memory_only, snapmla_log_fn log,
                                       void *log_user, snapmla_disk_cache **out,
                                       snapmla_error *err);
void snapmla_disk_cache_close(snapmla_disk_cache *cache);
/* The directory in use, or NULL in memory-only mode. */
const char *snapmla_disk_cache_dir(const snapmla_disk_cache *cache);

/* The key: SHA-256 over the parts, each prefixed by its length so that
 * moving a boundary between parts changes the key. */
void snapmla_cache_make_key(const char *const *parts, const size_t *lengths, int count,
                            char key[65]);

/* Produces the payload for a miss: *bytes malloc'd, owned by the cache. */
typedef snapmla_status (*snapmla_cache_build_fn)(void *user, unsigned char **bytes,
                                                 size_t *size, snapmla_error *err);

/* Get-or-build. build runs at most once per key across the threads of this
 * cache and, through a lock file, across processes sharing the directory.
 * *bytes is a malloc'd copy owned by the caller. A corrupt or truncated
 * entry is reported once (log), removed and rebuilt. */
snapmla_status snapmla_disk_cache_get(snapmla_disk_cache *cache, const char *key,
                                      const char *label, snapmla_cache_build_fn build,
                                      void *build_user, unsigned char **bytes, size_t *size,
                                      snapmla_source_kind *from, snapmla_error *err);

/* For `snapmla cache ls|verify|clear`. */
typedef struct snapmla_cache_entry_info {
    char key[65];
    char label[SNAPMLA_NAME_MAX];
    uint64_t payload_size;
    int64_t mtime;
    int valid;
    char problem[128];
    char path[512];
} snapmla_cache_entry_info;

/* Every entry file of dir, checked, sorted by key. *entries owned by the caller. */
snapmla_status snapmla_disk_cache_list(const char *dir, snapmla_cache_entry_info **entries,
                                       size_t *count, snapmla_error *err);
/* Removes the entries, temporary files and lock files snapmla made; nothing else. */
snapmla_status snapmla_disk_cache_clear(const char *dir, size_t *removed, snapmla_error *err);

#endif
