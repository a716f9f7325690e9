/* Ahead-of-time directories: what `snapmla build` leaves for deployment, one
 * CUBIN per variant and a tab-separated manifest, read back by key. */
#include "aot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fileio.h"
#include "digest.h"

#define MANIFEST_HEADER "# snapmla ahead-of-time manifest, format 1\n" \
    "# key\tvariant\tkernel\tarch\tthreads\tsmem_bytes\tgrid\tcubin\tbytes\tsha256\n"

static void describe_grid(const snapmla_variant *v, char *out, size_t size)
{
    switch (v->kernel) {
    case SNAPMLA_KERNEL_MLA_DECODE:
        snprintf(out, size, "%dx(splits)x(batch)", (v->q_heads * v->q_len + v->q_tile - 1) / v->q_tile);
        break;
    case SNAPMLA_KERNEL_MLA_COMBINE:
        snprintf(out, size, "%dx(batch)x1", v->q_heads * v->q_len);
        break;
    case SNAPMLA_KERNEL_KV_APPEND:
        snprintf(out, size, "(tokens/%d)x1x1", v->warps);
        break;
    }
}

snapmla_status snapmla_aot_write(const char *dir, const snapmla_aot_entry *entries,
                                 size_t count, snapmla_error *err)
{
    snapmla_status s = snapmla_make_dirs(dir, err);
    if (s != SNAPMLA_OK)
        return s;
    size_t capacity = sizeof MANIFEST_HEADER + count * 1024;
    char *manifest = malloc(capacity);
    if (!manifest)
        return snapmla_fail(err, SNAPMLA_ERR_NOMEM, "out of memory writing the manifest");
    size_t length = (size_t)snprintf(manifest, capacity, "%s", MANIFEST_HEADER);
    for (size_t i = 0; i < count && s == SNAPMLA_OK; ++i) {
        const snapmla_variant *v = entries[i].variant;
        const snapmla_binary *b = entries[i].binary;
        char path[4096], grid[64], digest[65];
        snprintf(path, sizeof path, "%s/%s.cubin", dir, v->name);
        s = snapmla_write_file_atomic(path, b->cubin, b->cubin_size, err);
        describe_grid(v, grid, sizeof grid);
        snapmla_sha256_hex(b->cubin, b->cubin_size, digest);
        length += (size_t)snprintf(manifest + length, capacity - length,
                                   "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s.cubin\t%zu\t%s\n", b->key,
                                   v->name, snapmla_kernel_kind_name(v->kernel),
                                   snapmla_arch_name(v->arch), v->threads, v->smem_bytes, grid,
                                   v->name, b->cubin_size, digest);
    }
    if (s == SNAPMLA_OK) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, SNAPMLA_AOT_MANIFEST);
        s = snapmla_write_file_atomic(path, manifest, length, err);
    }
    free(manifest);
    return s == SNAPMLA_OK ? snapmla_ok(err) : s;
}

/* Splits one manifest line into its tab-separated fields, in place. */
static int split_fields(char *line, char *fields[], int most)
{
    int n = 0;
    for (char *p = line; n < most;) {
        fields[n++] = p;
        char *tab = strchr(p, '\t');
        if (!tab)
            break;
        *tab = '\0';
        p = tab + 1;
    }
    return n;
}

snapmla_status snapmla_aot_find(const char *dir, const char *key, unsigned char **cubin,
                                size_t *size, snapmla_error *err)
{
    *cubin = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, SNAPMLA_AOT_MANIFEST);
    unsigned char *text;
    size_t text_size;
    if (snapmla_read_file(path, SNAPMLA_TEXT_FILE_MAX, &text, &text_size, err) != SNAPMLA_OK)
        return snapmla_fail(err, SNAPMLA_ERR_IO, "ahead-of-time directory '%s' has no readable %s",
                            dir, SNAPMLA_AOT_MANIFEST);
    snapmla_status s = SNAPMLA_OK;
    int line_number = 0;
    for (char *line = (char *)text, *next; line && *line; line = next) {
        line_number++;
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (line[0] == '#' || strncmp(line, key, 64) != 0)
            continue;
        char *f[10];
        if (split_fields(line, f, 10) != 10 || strlen(f[0]) != 64) {
            s = snapmla_fail(err, SNAPMLA_ERR_CACHE, "%s:%d: malformed manifest line", path,
                             line_number);
            break;
        }
        char file[4096];
        snprintf(file, sizeof file, "%s/%s", dir, f[7]);
        unsigned char *data;
        size_t data_size;
        if ((s = snapmla_read_file(file, SNAPMLA_BINARY_FILE_MAX, &data, &data_size, err)) != SNAPMLA_OK)
            break;
        char digest[65];
        snapmla_sha256_hex(data, data_size, digest);
        if (strtoull(f[8], NULL, 10) != data_size || strcmp(digest, f[9]) != 0) {
            free(data);
            s = snapmla_fail(err, SNAPMLA_ERR_CACHE, "'%s' does not match its manifest entry "
                             "(size or checksum)", file);
            break;
        }
        *cubin = data;
        *size = data_size;
        break;
    }
    free(text);
    return s == SNAPMLA_OK ? snapmla_ok(err) : s;
}
