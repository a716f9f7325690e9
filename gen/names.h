/* Short tags of enum values, used inside variant names and tuning keys
 * (gen/names.c); the full names are in the public header. */
#ifndef SNAPMLA_GEN_NAMES_H
#define SNAPMLA_GEN_NAMES_H

#include "snapmla.h"

/* "bf16", "fp8tok" or "fp8t128" */
const char *snapmla_cache_format_tag(snapmla_cache_format format);

#endif
