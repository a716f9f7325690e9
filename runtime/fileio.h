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
/* Reads a whole file; *data (NUL-terminated, owned by the caller) and *size. */
snapmla_status snapmla_read_file(const char *path, unsigned char **data, size_t *size,
                                 snapmla_error *err);
/* mkdir -p */
snapmla_status snapmla_make_dirs(const char *path, snapmla_error *err);
#endif
