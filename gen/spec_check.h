/* Combination checks of a variant (see spec_check.c). */
#ifndef SNAPMLA_GEN_SPEC_CHECK_H
#define SNAPMLA_GEN_SPEC_CHECK_H
#include <stddef.h>

#include "snapmla.h"

#define SNAPMLA_CHECK_FIELDS 3

/* Sets the derived fields (threads, smem_bytes). Returns 1 when the variant
 * can work; else 0 with the reason and the names of up to three fields
 * involved ("section.field", NULL-padded), so the caller can point at the
 * line that set one of them. */
int snapmla_variant_check(snapmla_variant *variant, char *reason, size_t size,
                          const char *fields[SNAPMLA_CHECK_FIELDS]);
#endif
