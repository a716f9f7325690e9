/* A growable string for the generator: append, printf-append, take. */
#ifndef SNAPMLA_GEN_STRBUF_H
#define SNAPMLA_GEN_STRBUF_H
#include <stddef.h>

typedef struct snapmla_strbuf {
    char *data;
    size_t length;
    size_t capacity;
    int failed;   /* an allocation failed; later appends are ignored */
} snapmla_strbuf;

void snapmla_strbuf_append(snapmla_strbuf *sb, const char *text, size_t length);
void snapmla_strbuf_puts(snapmla_strbuf *sb, const char *text);
void snapmla_strbuf_printf(snapmla_strbuf *sb, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
void snapmla_strbuf_free(snapmla_strbuf *sb);

#endif
