/* The spec schema: every field, its type, default, allowed values and the
 * kernels it applies to (docs/spec.md is this table in prose), and the
 * judging of one field's values. Shared by the loader and the sweep. */
#ifndef SNAPMLA_GEN_SPEC_FIELDS_H
#define SNAPMLA_GEN_SPEC_FIELDS_H

#include <stddef.h>

#include "snapmla.h"
#include "yaml_tree.h"

#define KERNEL_BIT(kind) (1u << (kind))
#define ALL_KERNELS 7u

typedef enum field_type { FIELD_INT, FIELD_BOOL, FIELD_ENUM } field_type;

typedef struct field_def {
    const char *section;
    const char *name;
    field_type type;
    int min, max, multiple_of;          /* FIELD_INT ranges */
    const int *choices;                 /* FIELD_INT from a set (NULL: a range) */
    int choice_count;
    const char *const *names;           /* FIELD_ENUM: value i is names[i] */
    int name_count;
    int implemented;                    /* FIELD_ENUM: values >= this are reserved */
    int default_value;
    unsigned applies;                   /* KERNEL_BIT mask */
    unsigned required;                  /* KERNEL_BIT mask where it must be given */
    size_t offset;                      /* int field of snapmla_variant */
} field_def;

extern const field_def snapmla_fields[];
extern const size_t snapmla_field_count;
extern const char *const snapmla_section_names[];
extern const size_t snapmla_section_count;

/* A field's values as given (one, or several for a sweep), with marks. */
#define MAX_SWEEP_VALUES 64
typedef struct field_values {
    int given;
    int count;
    int values[MAX_SWEEP_VALUES];
    int line, column;              /* of the value (or list) */
} field_values;

/* Judges node (a scalar or a list of scalars) as field f's values. */
snapmla_status snapmla_field_read(const field_def *f, const yaml_node *node, const char *source,
                                  field_values *out, snapmla_error *err);

/* "allowed: ..." text of a field, for messages. */
void snapmla_field_allowed(const field_def *f, char *out, size_t size);

/* The closest name to `name` among names[0..count), or NULL if none is close. */
const char *snapmla_closest_name(const char *name, const char *const *names, size_t count);

#endif
