/* Growable string used while emitting generated source. */
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int reserve(snapmla_strbuf *sb, size_t extra)
{
    if (sb->failed)
        return 0;
    size_t need = sb->length + extra + 1;
    if (need <= sb->capacity)
        return 1;
    size_t capacity = sb->capacity ? sb->capacity : 256;
    while (capacity < need)
        capacity *= 2;
    char *grown = realloc(sb->data, capacity);
    if (!grown) {
        sb->failed = 1;
        return 0;
    }
    sb->data = grown;
    sb->capacity = capacity;
    return 1;
}

void snapmla_strbuf_append(snapmla_strbuf *sb, const char *text, size_t length)
{
    if (!reserve(sb, length))
        return;
    memcpy(sb->data + sb->length, text, length);
    sb->length += length;
    sb->data[sb->length] = '\0';
}

void snapmla_strbuf_puts(snapmla_strbuf *sb, const char *text)
{
    snapmla_strbuf_append(sb, text, strlen(text));
}

void snapmla_strbuf_printf(snapmla_strbuf *sb, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    int n = vsnprintf(NULL, 0, format, args);
    va_end(args);
    if (n < 0 || !reserve(sb, (size_t)n)) {
        sb->failed = 1;
        return;
    }
    va_start(args, format);
    vsnprintf(sb->data + sb->length, (size_t)n + 1, format, args);
    va_end(args);
    sb->length += (size_t)n;
}

void snapmla_strbuf_free(snapmla_strbuf *sb)
{
    free(sb->data);
    sb->data = NULL;
    sb->length = sb->capacity = 0;
}
