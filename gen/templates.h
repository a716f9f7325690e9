/* The CUDA templates of templates/, embedded at build time (tools/embed.c). */
#ifndef SNAPMLA_GEN_TEMPLATES_H
#define SNAPMLA_GEN_TEMPLATES_H
#include <stddef.h>

/* The text of template `name` (its file's base name), NUL-terminated, or NULL. */
const char *snapmla_template(const char *name, size_t *size);

#endif
