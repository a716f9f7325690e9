/* Whole-file reads and atomic writes (temp file + rename), shared by the
 * ahead-of-time directory writer and the CLI's `gen -o`. */
#ifndef SNAPMLA_RUNTIME_FILEIO_H
#define SNAPMLA_RUNTIME_FILEIO_H
#include <stddef.h>

#include "snapmla.h"

/* Writes path so that readers see the old file or the whole new one, never
 * part of it. Nothing is left behind on failure. */
snapmla_status snapmla_write_file_atomic(const char *path, const void *data, size_t size,
                                         snapmla_error *err);
/* Most bytes a whole-file read takes: a spec, database, manifest or log
 * (text), a CUBIN, cache entry or SASS listing (binary). A file past them
 * is not one of ours, and a device such as /dev/zero never ends. */
#define SNAPMLA_TEXT_FILE_MAX ((size_t)64 << 20)
#define SNAPMLA_BINARY_FILE_MAX ((size_t)1 << 30)
/* Reads a whole file of at most max_bytes; *data (NUL-terminated, owned by
 * the caller) and *size. */
snapmla_status snapmla_read_file(const char *path, size_t max_bytes, unsigned char **data,
                                 size_t *size, snapmla_error *err);
/* mkdir -p */
snapmla_status snapmla_make_dirs(const char *path, snapmla_error *err);
#endif
