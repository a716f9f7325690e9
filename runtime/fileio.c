/* File helpers of the runtime: atomic writes so no reader ever sees half a
 * CUBIN, manifest or generated source. */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"

snapmla_status snapmla_write_file_atomic(const char *path, const void *data, size_t size,
                                         snapmla_error *err)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return snapmla_fail(err, SNAPMLA_ERR_IO, "path too long: '%s'", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return snapmla_fail(err, SNAPMLA_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    const unsigned char *p = data;
    size_t left = size;
    int problem = 0;
    while (left > 0 && !problem) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            problem = n < 0 ? errno : EIO;
        else {
            p += n;
            left -= (size_t)n;
        }
    }
    if (!problem && fsync(fd) != 0)
        problem = errno;
    if (close(fd) != 0 && !problem)
        problem = errno;
    if (!problem && rename(tmp, path) != 0)
        problem = errno;
    if (problem) {
        unlink(tmp);
        return snapmla_fail(err, SNAPMLA_ERR_IO, "cannot write '%s': %s", path, strerror(problem));
    }
    return SNAPMLA_OK;
}

snapmla_status snapmla_read_file(const char *path, size_t max_bytes, unsigned char **data,
                                 size_t *size, snapmla_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return snapmla_fail(err, SNAPMLA_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    unsigned char *buffer = NULL;
    size_t length = 0, capacity = 0;
    snapmla_status s = SNAPMLA_OK;
    for (;;) {
        if (length > max_bytes) {
            s = snapmla_fail(err, SNAPMLA_ERR_IO, "cannot read '%s': larger than %zu MiB, the "
                             "most snapmla reads from a file of this kind", path, max_bytes >> 20);
            break;
        }
        if (length + 4096 + 1 > capacity) {
            capacity = capacity ? capacity * 2 : 65536;
            unsigned char *grown = realloc(buffer, capacity);
            if (!grown) {
                s = snapmla_fail(err, SNAPMLA_ERR_NOMEM, "out of memory reading '%s'", path);
                break;
            }
            buffer = grown;
        }
        errno = 0;
        size_t n = fread(buffer + length, 1, capacity - length - 1, f);
        length += n;
        if (n == 0) {
            if (ferror(f))   /* a folder: EISDIR */
                s = snapmla_fail(err, SNAPMLA_ERR_IO, "cannot read '%s': %s", path,
                                 strerror(errno ? errno : EIO));
            break;
        }
    }
    fclose(f);
    if (s != SNAPMLA_OK) {
        free(buffer);
        return s;
    }
    buffer[length] = '\0';
    *data = buffer;
    *size = length;
    return SNAPMLA_OK;
}

snapmla_status snapmla_make_dirs(const char *path, snapmla_error *err)
{
    char buffer[4096];
    if (snprintf(buffer, sizeof buffer, "%s", path) >= (int)sizeof buffer)
        return snapmla_fail(err, SNAPMLA_ERR_IO, "path too long: '%s'", path);
    for (char *p = buffer + 1;; ++p) {
        char c = *p;
        if (c != '/' && c != '\0')
            continue;
        *p = '\0';
        if (mkdir(buffer, 0755) != 0 && errno != EEXIST)
            return snapmla_fail(err, SNAPMLA_ERR_IO, "cannot create directory '%s': %s", buffer,
                                strerror(errno));
        *p = c;
        if (c == '\0')
            break;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return snapmla_fail(err, SNAPMLA_ERR_IO, "'%s' is not a directory", path);
    return SNAPMLA_OK;
}
