/* The tuning database as a file: YAML text -> judged entries (every error
 * names file:line:column, the field, the bad value and what is allowed),
 * and entries -> YAML written atomically. docs/tuning.md has the format. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fileio.h"
#include "spec_fields.h"
#include "strbuf.h"
#include "tuning_db.h"
#include "yaml_tree.h"

enum { FORMAT_VERSION = 1, MAX_ROWS = 512 };

static const char *const entry_fields[] = {
    "arch", "device", "family", "rows", "batch", "context", "variant",
    "splits", "us", "runner_up", "runner_up_splits", "margin", "shapes",
};
enum { ENTRY_FIELDS = sizeof entry_fields / sizeof entry_fields[0], REQUIRED_FIELDS = 9 };
/* The first REQUIRED_FIELDS but splits (index 7) must be given. */
static const char *const required_text =
    "arch, device, family, rows, batch, context, variant, us";
static const char *const name_chars = "A-Z a-z 0-9 _ - .";

typedef struct reader {
    const char *source;
    size_t index;             /* of the entry being read */
    snapmla_error *err;
} reader;

static snapmla_status bad_value(const reader *r, const yaml_node *n, const char *field,
                                const char *problem)
{
    return snapmla_fail(r->err, SNAPMLA_ERR_SPEC, "%s:%d:%d: entries[%zu].%s: '%.64s' %s",
                        r->source, n->line, n->column, r->index, field, n->scalar, problem);
}

static snapmla_status need_scalar(const reader *r, const yaml_node *n, const char *field)
{
    if (n->kind == NODE_SCALAR)
        return SNAPMLA_OK;
    return snapmla_fail(r->err, SNAPMLA_ERR_SPEC, "%s:%d:%d: entries[%zu].%s: expected a scalar, "
                        "found a %s", r->source, n->line, n->column, r->index, field,
                        n->kind == NODE_SEQUENCE ? "list" : "mapping");
}

/* Plain decimal integers, as in specs: no sign, hex, quotes or floats. */
static int parse_int(const yaml_node *n, long long *value)
{
    const char *s = n->scalar;
    if (!n->plain || !*s || strlen(s) > 12)
        return 0;
    for (const char *p = s; *p; ++p)
        if (*p < '0' || *p > '9' || (p == s && *p == '0' && p[1]))
            return 0;
    *value = strtoll(s, NULL, 10);
    return 1;
}

static snapmla_status read_int(const reader *r, const yaml_node *n, const char *field, int min,
                               int max, int *out)
{
    char allowed[64];
    long long value;
    snprintf(allowed, sizeof allowed, "allowed: %d..%d", min, max);
    if (!parse_int(n, &value)) {
        char problem[96];
        snprintf(problem, sizeof problem, "is not an integer; %s", allowed);
        return bad_value(r, n, field, problem);
    }
    if (value < min || value > max) {
        char problem[96];
        snprintf(problem, sizeof problem, "is out of range; %s", allowed);
        return bad_value(r, n, field, problem);
    }
    *out = (int)value;
    return SNAPMLA_OK;
}

static snapmla_status read_number(const reader *r, const yaml_node *n, const char *field,
                                  int positive, double *out)
{
    char *end = NULL;
    double value = n->plain && *n->scalar ? strtod(n->scalar, &end) : NAN;
    int ok = end && *end == '\0' && isfinite(value) && (positive ? value > 0 : value >= 0);
    if (!ok)
        return bad_value(r, n, field, positive ? "is not allowed; allowed: a number over 0"
                                               : "is not allowed; allowed: a number, 0 or more");
    *out = value;
    return SNAPMLA_OK;
}

static int is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-' || c == '.';
}

/* A variant name or family: 1..size-1 of name_chars. */
static snapmla_status read_name(const reader *r, const yaml_node *n, const char *field,
                                char *out, size_t size)
{
    size_t length = strlen(n->scalar);
    int ok = length >= 1 && length < size;
    for (size_t i = 0; ok && i < length; ++i)
        ok = is_name_char(n->scalar[i]);
    if (!ok) {
        char problem[96];
        snprintf(problem, sizeof problem, "is not allowed; allowed: 1 to %zu of %s", size - 1,
                 name_chars);
        return bad_value(r, n, field, problem);
    }
    memcpy(out, n->scalar, length + 1);
    return SNAPMLA_OK;
}

static snapmla_status read_device(const reader *r, const yaml_node *n, char *out)
{
    size_t length = strlen(n->scalar);
    int ok = length >= 1 && length < SNAPMLA_DEVICE_NAME_MAX;
    for (size_t i = 0; ok && i < length; ++i)
        ok = n->scalar[i] >= 0x20 && n->scalar[i] < 0x7f;
    if (!ok) {
        char problem[96];
        snprintf(problem, sizeof problem, "is not allowed; allowed: 1 to %d printable ASCII "
                 "characters", SNAPMLA_DEVICE_NAME_MAX - 1);
        return bad_value(r, n, "device", problem);
    }
    memcpy(out, n->scalar, length + 1);
    return SNAPMLA_OK;
}

static snapmla_status read_arch(const reader *r, const yaml_node *n, snapmla_arch *out)
{
    static const snapmla_arch all[] = {SNAPMLA_ARCH_SM80, SNAPMLA_ARCH_SM89, SNAPMLA_ARCH_SM90A};
    for (size_t i = 0; i < 3; ++i)
        if (strcmp(n->scalar, snapmla_arch_name(all[i])) == 0) {
            *out = all[i];
            return SNAPMLA_OK;
        }
    return bad_value(r, n, "arch", "is not allowed; allowed: sm_80, sm_89, sm_90a");
}

static snapmla_status read_bucket(const reader *r, const yaml_node *n, const char *field,
                                  int *out)
{
    int batch = strcmp(field, "batch") == 0;
    int count = batch ? SNAPMLA_TUNING_BATCH_BUCKETS : SNAPMLA_TUNING_CONTEXT_BUCKETS;
    char label[32], allowed[400] = "is not a bucket; allowed: ";
    size_t used = strlen(allowed);
    for (int b = 0; b < count; ++b) {
        if (batch)
            snapmla_tuning_batch_label(b, label, sizeof label);
        else
            snapmla_tuning_context_label(b, label, sizeof label);
        if (strcmp(label, n->scalar) == 0) {
            *out = b;
            return SNAPMLA_OK;
        }
        used += (size_t)snprintf(allowed + used, sizeof allowed - used, "%s%s", b ? ", " : "", label);
    }
    return bad_value(r, n, field, allowed);
}

/* "BATCHxSEQLEN[,BATCHxSEQLEN...]" */
static snapmla_status read_shapes(const reader *r, const yaml_node *n, char *out)
{
    const char *p = n->scalar;
    int ok = strlen(p) < SNAPMLA_SHAPES_MAX;
    while (ok && *p) {
        int batch, seqlen, used = 0;
        ok = sscanf(p, "%9dx%9d%n", &batch, &seqlen, &used) == 2 && batch >= 1 && seqlen >= 0 &&
             *p >= '0' && *p <= '9';
        p += used;
        if (ok && *p == ',')
            ok = *++p != '\0';
    }
    if (!ok) {
        char problem[128];
        snprintf(problem, sizeof problem, "is not allowed; allowed: BATCHxSEQLEN[,BATCHxSEQLEN...] "
                 "in at most %d characters", SNAPMLA_SHAPES_MAX - 1);
        return bad_value(r, n, "shapes", problem);
    }
    strcpy(out, n->scalar);
    return SNAPMLA_OK;
}

static snapmla_status read_field(const reader *r, int k, const yaml_node *n, snapmla_tuning_entry *e)
{
    const char *field = entry_fields[k];
    snapmla_status s = need_scalar(r, n, field);
    if (s != SNAPMLA_OK)
        return s;
    switch (k) {
    case 0: return read_arch(r, n, &e->arch);
    case 1: return read_device(r, n, e->device);
    case 2: return read_name(r, n, field, e->family, sizeof e->family);
    case 3: return read_int(r, n, field, 1, MAX_ROWS, &e->rows);
    case 4: return read_bucket(r, n, field, &e->batch_bucket);
    case 5: return read_bucket(r, n, field, &e->context_bucket);
    case 6: return read_name(r, n, field, e->variant, sizeof e->variant);
    case 7: return read_int(r, n, field, 0, 128, &e->num_splits);
    case 8: return read_number(r, n, field, 1, &e->us);
    case 9: return read_name(r, n, field, e->runner_up, sizeof e->runner_up);
    case 10: return read_int(r, n, field, 0, 128, &e->runner_up_splits);
    case 11: return read_number(r, n, field, 0, &e->margin);
    default: return read_shapes(r, n, e->shapes);
    }
}

static snapmla_status unknown_field(const reader *r, const yaml_item *item)
{
    char list[256] = "", hint[96] = "";
    for (size_t k = 0, used = 0; k < ENTRY_FIELDS; ++k)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", k ? ", " : "",
                                 entry_fields[k]);
    const char *close = snapmla_closest_name(item->key, entry_fields, ENTRY_FIELDS);
    if (close)
        snprintf(hint, sizeof hint, " (did you mean '%s'?)", close);
    return snapmla_fail(r->err, SNAPMLA_ERR_SPEC, "%s:%d:%d: unknown field 'entries[%zu].%.64s'%s; "
                        "fields of an entry: %s", r->source, item->key_line, item->key_column,
                        r->index, item->key, hint, list);
}

/* Fields that only mean something with a runner-up, and the runner-up itself. */
static snapmla_status check_runner_up(const reader *r, const yaml_node *entry,
                                      const yaml_node *const *given, const snapmla_tuning_entry *e)
{
    if (!given[9]) {
        for (int k = 10; k <= 11; ++k)
            if (given[k])
                return snapmla_fail(r->err, SNAPMLA_ERR_SPEC, "%s:%d:%d: entries[%zu].%s is given "
                                    "without entries[%zu].runner_up", r->source, given[k]->line,
                                    given[k]->column, r->index, entry_fields[k], r->index);
        return SNAPMLA_OK;
    }
    if (!given[11])
        return snapmla_fail(r->err, SNAPMLA_ERR_SPEC, "%s:%d:%d: entries[%zu]: runner_up needs "
                            "margin (its time / us - 1)", r->source, entry->line, entry->column,
                            r->index);
    if (strcmp(e->runner_up, e->variant) == 0 && e->runner_up_splits == e->num_splits)
        return snapmla_fail(r->err, SNAPMLA_ERR_SPEC, "%s:%d:%d: entries[%zu].runner_up: '%.64s' "
                            "with splits %d is the winner itself", r->source, given[9]->line,
                            given[9]->column, r->index, e->runner_up, e->runner_up_splits);
    return SNAPMLA_OK;
}

static snapmla_status read_entry(const reader *r, const yaml_node *n, snapmla_tuning_entry *e)
{
    if (n->kind != NODE_MAPPING)
        return snapmla_fail(r->err, SNAPMLA_ERR_SPEC, "%s:%d:%d: entries[%zu]: expected a mapping "
                            "of fields, found a %s", r->source, n->line, n->column, r->index,
                            n->kind == NODE_SCALAR ? "scalar" : "list");
    const yaml_node *given[ENTRY_FIELDS] = {0};
    memset(e, 0, sizeof *e);
    for (size_t i = 0; i < n->count; ++i) {
        int k = 0;
        while (k < (int)ENTRY_FIELDS && strcmp(entry_fields[k], n->items[i].key) != 0)
            k++;
        if (k == (int)ENTRY_FIELDS)
            return unknown_field(r, &n->items[i]);
        snapmla_status s = read_field(r, k, n->items[i].value, e);
        if (s != SNAPMLA_OK)
            return s;
        given[k] = n->items[i].value;
    }
    for (int k = 0; k < REQUIRED_FIELDS; ++k)
        if (k != 7 && !given[k])
            return snapmla_fail(r->err, SNAPMLA_ERR_SPEC, "%s:%d:%d: entries[%zu]: %s is "
                                "required; required: %s", r->source, n->line, n->column, r->index,
                                entry_fields[k], required_text);
    return check_runner_up(r, n, given, e);
}

static snapmla_status read_entries(const char *source, const yaml_node *list,
                                   snapmla_tuning_db **out, snapmla_error *err)
{
    if (list->kind != NODE_SEQUENCE)
        return snapmla_fail(err, SNAPMLA_ERR_SPEC, "%s:%d:%d: entries: expected a list of "
                            "entries, found a %s", source, list->line, list->column,
                            list->kind == NODE_SCALAR ? "scalar" : "mapping");
    size_t count = list->count;
    snapmla_tuning_entry *entries = calloc(count ? count : 1, sizeof *entries);
    snapmla_tuning_mark *marks = calloc(count ? count : 1, sizeof *marks);
    char *name = strdup(source);
    if (!entries || !marks || !name) {
        free(entries);
        free(marks);
        free(name);
        return snapmla_fail(err, SNAPMLA_ERR_NOMEM, "%s: out of memory", source);
    }
    reader r = {source, 0, err};
    snapmla_status s = SNAPMLA_OK;
    for (size_t i = 0; i < count && s == SNAPMLA_OK; ++i) {
        r.index = i;
        s = read_entry(&r, list->items[i].value, &entries[i]);
        marks[i] = (snapmla_tuning_mark){list->items[i].value->line, list->items[i].value->column};
    }
    if (s != SNAPMLA_OK) {
        free(entries);
        free(marks);
        free(name);
        return s;
    }
    s = snapmla_tuning_db_adopt(name, entries, count, marks, out, err);
    free(marks);
    return s;
}

static snapmla_status read_version(const char *source, const yaml_node *n, snapmla_error *err)
{
    long long value;
    if (n->kind == NODE_SCALAR && parse_int(n, &value) && value == FORMAT_VERSION)
        return SNAPMLA_OK;
    return snapmla_fail(err, SNAPMLA_ERR_SPEC, "%s:%d:%d: version: '%.64s' is not allowed; "
                        "allowed: %d", source, n->line, n->column,
                        n->kind == NODE_SCALAR ? n->scalar : "(not a scalar)", FORMAT_VERSION);
}

static snapmla_status read_root(const char *source, const yaml_node *root,
                                snapmla_tuning_db **out, snapmla_error *err)
{
    static const char *const top[] = {"version", "entries"};
    const yaml_node *version = NULL, *entries = NULL;
    for (size_t i = 0; i < root->count; ++i) {
        const yaml_item *item = &root->items[i];
        if (strcmp(item->key, "version") == 0) {
            version = item->value;
        } else if (strcmp(item->key, "entries") == 0) {
            entries = item->value;
        } else {
            const char *close = snapmla_closest_name(item->key, top, 2);
            char hint[64] = "";
            if (close)
                snprintf(hint, sizeof hint, " (did you mean '%s'?)", close);
            return snapmla_fail(err, SNAPMLA_ERR_SPEC, "%s:%d:%d: unknown field '%.64s'%s; "
                                "top-level fields: version, entries", source, item->key_line,
                                item->key_column, item->key, hint);
        }
    }
    if (!version || !entries)
        return snapmla_fail(err, SNAPMLA_ERR_SPEC, "%s:%d:%d: %s is required; a tuning database "
                            "is 'version: %d' and 'entries' (a list, possibly empty)", source,
                            root->line, root->column, version ? "entries" : "version",
                            FORMAT_VERSION);
    snapmla_status s = read_version(source, version, err);
    return s == SNAPMLA_OK ? read_entries(source, entries, out, err) : s;
}

snapmla_status snapmla_tuning_db_parse(const char *text, size_t length, const char *name,
                                       snapmla_tuning_db **out, snapmla_error *err)
{
    if (!text || !name || !out)
        return snapmla_fail(err, SNAPMLA_ERR_INVALID_ARG,
                            "snapmla_tuning_db_parse: text, name and out must not be NULL");
    *out = NULL;
    yaml_node *root = NULL;
    snapmla_status s = snapmla_yaml_parse(text, length, name, &root, err);
    if (s != SNAPMLA_OK)
        return s;
    if (!root || (root->kind == NODE_MAPPING && root->count == 0))
        s = snapmla_fail(err, SNAPMLA_ERR_SPEC, "%s: empty tuning database; expected 'version: %d' "
                         "and 'entries'", name, FORMAT_VERSION);
    else if (root->kind != NODE_MAPPING)
        s = snapmla_fail(err, SNAPMLA_ERR_SPEC, "%s:%d:%d: a tuning database is a mapping with "
                         "'version' and 'entries', not a %s", name, root->line, root->column,
                         root->kind == NODE_SCALAR ? "scalar" : "list");
    else
        s = read_root(name, root, out, err);
    snapmla_yaml_free(root);
    return s;
}

snapmla_status snapmla_tuning_db_load(const char *path, snapmla_tuning_db **out,
                                      snapmla_error *err)
{
    if (!path || !out)
        return snapmla_fail(err, SNAPMLA_ERR_INVALID_ARG,
                            "snapmla_tuning_db_load: path and out must not be NULL");
    unsigned char *text;
    size_t length;
    snapmla_status s = snapmla_read_file(path, SNAPMLA_TEXT_FILE_MAX, &text, &length, err);
    if (s != SNAPMLA_OK)
        return s;
    s = snapmla_tuning_db_parse((const char *)text, length, path, out, err);
    free(text);
    return s;
}

/* ---- writing ------------------------------------------------------------- */

static void put_quoted(snapmla_strbuf *sb, const char *text)
{
    snapmla_strbuf_puts(sb, "\"");
    for (const char *p = text; *p; ++p) {
        if (*p == '"' || *p == '\\')
            snapmla_strbuf_puts(sb, "\\");
        snapmla_strbuf_append(sb, p, 1);
    }
    snapmla_strbuf_puts(sb, "\"");
}

static void put_entry(snapmla_strbuf *sb, const snapmla_tuning_entry *e)
{
    char batch[24], context[32];
    snapmla_tuning_batch_label(e->batch_bucket, batch, sizeof batch);
    snapmla_tuning_context_label(e->context_bucket, context, sizeof context);
    snapmla_strbuf_printf(sb, "  - arch: %s\n    device: ", snapmla_arch_name(e->arch));
    put_quoted(sb, e->device);
    snapmla_strbuf_printf(sb, "\n    family: %s\n    rows: %d\n    batch: %s\n    context: %s\n"
                          "    variant: %s\n    splits: %d\n    us: %.3f\n", e->family, e->rows,
                          batch, context, e->variant, e->num_splits, e->us);
    if (e->runner_up[0])
        snapmla_strbuf_printf(sb, "    runner_up: %s\n    runner_up_splits: %d\n"
                              "    margin: %.4f\n", e->runner_up, e->runner_up_splits, e->margin);
    if (e->shapes[0])
        snapmla_strbuf_printf(sb, "    shapes: %s\n", e->shapes);
}

snapmla_status snapmla_tuning_db_format(const snapmla_tuning_db *db, char **text,
                                        size_t *length, snapmla_error *err)
{
    if (!db || !text || !length)
        return snapmla_fail(err, SNAPMLA_ERR_INVALID_ARG,
                            "snapmla_tuning_db_format: db, text and length must not be NULL");
    snapmla_strbuf sb = {0};
    snapmla_strbuf_printf(&sb, "# snapmla tuning database (docs/tuning.md): the fastest variant "
                          "per shape bucket.\nversion: %d\nentries:%s\n", FORMAT_VERSION,
                          db->count ? "" : " []");
    for (size_t i = 0; i < db->count; ++i)
        put_entry(&sb, &db->entries[i]);
    if (sb.failed) {
        snapmla_strbuf_free(&sb);
        return snapmla_fail(err, SNAPMLA_ERR_NOMEM, "out of memory writing a tuning database");
    }
    *text = sb.data;
    *length = sb.length;
    return snapmla_ok(err);
}

snapmla_status snapmla_tuning_db_save(const snapmla_tuning_db *db, const char *path,
                                      snapmla_error *err)
{
    if (!path)
        return snapmla_fail(err, SNAPMLA_ERR_INVALID_ARG,
                            "snapmla_tuning_db_save: path must not be NULL");
    char *text;
    size_t length;
    snapmla_status s = snapmla_tuning_db_format(db, &text, &length, err);
    if (s != SNAPMLA_OK)
        return s;
    s = snapmla_write_file_atomic(path, text, length, err);
    free(text);
    return s == SNAPMLA_OK ? snapmla_ok(err) : s;
}
