/* First step of the spec stage: YAML text -> a small tree of mappings,
 * sequences and scalars that remembers where each node stood, so later
 * stages can name the line and column of a bad value. */
#ifndef SNAPMLA_GEN_YAML_TREE_H
#define SNAPMLA_GEN_YAML_TREE_H

#include <stddef.h>

#include "snapmla.h"

typedef enum yaml_kind { NODE_SCALAR, NODE_SEQUENCE, NODE_MAPPING } yaml_kind;

typedef struct yaml_item yaml_item;

typedef struct yaml_node {
    yaml_kind kind;
    int line, column;        /* 1-based */
    char *scalar;            /* NODE_SCALAR */
    int plain;               /* scalar written without quotes */
    yaml_item *items;        /* children: mapping entries or sequence items */
    size_t count;
} yaml_node;

struct yaml_item {
    char *key;               /* mapping entries; NULL in sequences */
    int key_line, key_column;
    yaml_node *value;
};

/* Parses one YAML document. Errors name "source:line:column". Mappings with
 * a repeated key, anchors, aliases, tags, non-scalar keys, several
 * documents and nesting deeper than 8 levels are errors. *root is NULL for
 * an empty document. */
snapmla_status snapmla_yaml_parse(const char *text, size_t length, const char *source,
                                  yaml_node **root, snapmla_error *err);
void snapmla_yaml_free(yaml_node *node);

#endif
