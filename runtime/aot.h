/* Ahead-of-time kernel directories: CUBINs plus a manifest, written by
 * `snapmla build` and searched by the runtime before it tries JIT. */
#ifndef SNAPMLA_RUNTIME_AOT_H
#define SNAPMLA_RUNTIME_AOT_H
#include <stddef.h>

#include "snapmla.h"

#define SNAPMLA_AOT_MANIFEST "manifest.tsv"

typedef struct snapmla_aot_entry {
    const snapmla_variant *variant;
    const snapmla_binary *binary;
} snapmla_aot_entry;

/* Writes each CUBIN as DIR/<variant>.cubin and DIR/manifest.tsv, every file
 * through a temporary name and a rename: a reader never sees half a file. */
snapmla_status snapmla_aot_write(const char *dir, const snapmla_aot_entry *entries,
                                 size_t count, snapmla_error *err);

/* Looks key up in DIR's manifest. SNAPMLA_OK with *cubin set when found and
 * intact; SNAPMLA_OK with *cubin NULL when absent; an error when the entry
 * exists but its file is missing or does not match its checksum. */
snapmla_status snapmla_aot_find(const char *dir, const char *key,
                                unsigned char **cubin, size_t *size,
                                snapmla_error *err);
#endif
