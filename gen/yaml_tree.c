/* YAML -> tree with marks, on libyaml's event parser. Events (not libyaml's
 * document loader) so that aliases, anchors and tags can be refused instead
 * of silently resolved, and duplicate keys caught with both lines. */
#include "yaml_tree.h"

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "error.h"

enum { MAX_DEPTH = 8 };

typedef struct builder {
    yaml_parser_t parser;
    const char *source;
    snapmla_error *err;
    snapmla_status status;
} builder;

static snapmla_status fail_at(builder *b, yaml_mark_t mark, const char *what)
{
    b->status = snapmla_fail(b->err, SNAPMLA_ERR_SPEC, "%s:%zu:%zu: %s", b->source,
                             mark.line + 1, mark.column + 1, what);
    return b->status;
}

static snapmla_status parser_failed(builder *b)
{
    yaml_parser_t *p = &b->parser;
    const char *problem = p->problem ? p->problem : "malformed YAML";
    if (p->error == YAML_MEMORY_ERROR)
        return b->status = snapmla_fail(b->err, SNAPMLA_ERR_NOMEM, "%s: out of memory", b->source);
    if (p->context)
        return b->status = snapmla_fail(b->err, SNAPMLA_ERR_SPEC,
                                        "%s:%zu:%zu: YAML syntax error: %s (%s)", b->source,
                                        p->problem_mark.line + 1, p->problem_mark.column + 1,
                                        problem, p->context);
    return b->status = snapmla_fail(b->err, SNAPMLA_ERR_SPEC, "%s:%zu:%zu: YAML syntax error: %s",
                                    b->source, p->problem_mark.line + 1,
                                    p->problem_mark.column + 1, problem);
}

static int next_event(builder *b, yaml_event_t *event)
{
    if (!yaml_parser_parse(&b->parser, event)) {
        parser_failed(b);
        return 0;
    }
    return 1;
}

void snapmla_yaml_free(yaml_node *node)
{
    if (!node)
        return;
    for (size_t i = 0; i < node->count; ++i) {
        free(node->items[i].key);
        snapmla_yaml_free(node->items[i].value);
    }
    free(node->items);
    free(node->scalar);
    free(node);
}

static yaml_node *new_node(builder *b, yaml_kind kind, yaml_mark_t mark)
{
    yaml_node *n = calloc(1, sizeof *n);
    if (!n) {
        b->status = snapmla_fail(b->err, SNAPMLA_ERR_NOMEM, "%s: out of memory", b->source);
        return NULL;
    }
    n->kind = kind;
    n->line = (int)mark.line + 1;
    n->column = (int)mark.column + 1;
    return n;
}

static int add_item(builder *b, yaml_node *parent, char *key, yaml_mark_t key_mark,
                    yaml_node *value)
{
    yaml_item *grown = realloc(parent->items, (parent->count + 1) * sizeof *grown);
    if (!grown) {
        b->status = snapmla_fail(b->err, SNAPMLA_ERR_NOMEM, "%s: out of memory", b->source);
        return 0;
    }
    parent->items = grown;
    yaml_item *item = &parent->items[parent->count++];
    item->key = key;
    item->key_line = (int)key_mark.line + 1;
    item->key_column = (int)key_mark.column + 1;
    item->value = value;
    return 1;
}

/* Anchors, aliases and tags would make a spec mean something other than
 * what it shows; refuse them. */
static int refuse_decorations(builder *b, const yaml_event_t *e)
{
    const unsigned char *anchor = NULL, *tag = NULL;
    if (e->type == YAML_SCALAR_EVENT) {
        anchor = e->data.scalar.anchor;
        tag = e->data.scalar.tag;
    } else if (e->type == YAML_SEQUENCE_START_EVENT) {
        anchor = e->data.sequence_start.anchor;
        tag = e->data.sequence_start.tag;
    } else if (e->type == YAML_MAPPING_START_EVENT) {
        anchor = e->data.mapping_start.anchor;
        tag = e->data.mapping_start.tag;
    }
    if (e->type == YAML_ALIAS_EVENT || anchor || tag) {
        fail_at(b, e->start_mark, "YAML anchors, aliases and tags are not supported in specs");
        return 0;
    }
    return 1;
}

static yaml_node *parse_node(builder *b, yaml_event_t *first, int depth);

static yaml_node *parse_collection(builder *b, yaml_event_t *start, int depth)
{
    int mapping = start->type == YAML_MAPPING_START_EVENT;
    yaml_node *node = new_node(b, mapping ? NODE_MAPPING : NODE_SEQUENCE, start->start_mark);
    if (!node)
        return NULL;
    if (depth >= MAX_DEPTH) {
        fail_at(b, start->start_mark, "nesting is deeper than a spec can be");
        snapmla_yaml_free(node);
        return NULL;
    }
    for (;;) {
        yaml_event_t e;
        if (!next_event(b, &e))
            break;
        if (e.type == YAML_MAPPING_END_EVENT || e.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&e);
            return node;
        }
        char *key = NULL;
        yaml_mark_t key_mark = e.start_mark;
        if (mapping) {
            if (!refuse_decorations(b, &e)) {
                yaml_event_delete(&e);
                break;
            }
            if (e.type != YAML_SCALAR_EVENT) {
                fail_at(b, e.start_mark, "mapping keys must be plain names");
                yaml_event_delete(&e);
                break;
            }
            key = strdup((const char *)e.data.scalar.value);
            yaml_event_delete(&e);
            for (size_t i = 0; key && i < node->count; ++i)
                if (strcmp(node->items[i].key, key) == 0) {
                    char what[256];
                    snprintf(what, sizeof what, "duplicate field '%.100s' (first at line %d)", key,
                             node->items[i].key_line);
                    fail_at(b, key_mark, what);
                    free(key);
                    key = NULL;
                    break;
                }
            if (!key || b->status != SNAPMLA_OK || !next_event(b, &e)) {
                if (!key && b->status == SNAPMLA_OK)
                    b->status = snapmla_fail(b->err, SNAPMLA_ERR_NOMEM, "%s: out of memory", b->source);
                free(key);
                break;
            }
        }
        yaml_node *child = parse_node(b, &e, depth + 1);
        yaml_event_delete(&e);
        if (!child || !add_item(b, node, key, key_mark, child)) {
            free(key);
            snapmla_yaml_free(child);
            break;
        }
    }
    snapmla_yaml_free(node);
    return NULL;
}

static yaml_node *parse_node(builder *b, yaml_event_t *e, int depth)
{
    if (!refuse_decorations(b, e))
        return NULL;
    if (e->type == YAML_SCALAR_EVENT) {
        yaml_node *node = new_node(b, NODE_SCALAR, e->start_mark);
        if (!node)
            return NULL;
        node->scalar = strdup((const char *)e->data.scalar.value);
        node->plain = e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        if (!node->scalar) {
            b->status = snapmla_fail(b->err, SNAPMLA_ERR_NOMEM, "%s: out of memory", b->source);
            snapmla_yaml_free(node);
            return NULL;
        }
        return node;
    }
    if (e->type == YAML_SEQUENCE_START_EVENT || e->type == YAML_MAPPING_START_EVENT)
        return parse_collection(b, e, depth);
    fail_at(b, e->start_mark, "unexpected YAML event");
    return NULL;
}

snapmla_status snapmla_yaml_parse(const char *text, size_t length, const char *source,
                                  yaml_node **root, snapmla_error *err)
{
    builder b = {.source = source, .err = err, .status = SNAPMLA_OK};
    *root = NULL;
    if (!yaml_parser_initialize(&b.parser))
        return snapmla_fail(err, SNAPMLA_ERR_NOMEM, "%s: out of memory", source);
    yaml_parser_set_input_string(&b.parser, (const unsigned char *)text, length);
    yaml_node *tree = NULL;
    int documents = 0, done = 0;
    while (!done && b.status == SNAPMLA_OK) {
        yaml_event_t e;
        if (!next_event(&b, &e))
            break;
        switch (e.type) {
        case YAML_STREAM_END_EVENT: done = 1; break;
        case YAML_DOCUMENT_START_EVENT:
            if (++documents > 1)
                fail_at(&b, e.start_mark, "a spec holds one YAML document; found a second");
            break;
        case YAML_SCALAR_EVENT:
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
        case YAML_ALIAS_EVENT:
            tree = parse_node(&b, &e, 0);
            break;
        default: break;
        }
        yaml_event_delete(&e);
    }
    yaml_parser_delete(&b.parser);
    if (b.status != SNAPMLA_OK) {
        snapmla_yaml_free(tree);
        return b.status;
    }
    *root = tree;
    return SNAPMLA_OK;
}
