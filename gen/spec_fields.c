/* Judging single values of a spec: the schema table and the rules that turn
 * one YAML scalar (or a list of them) into checked integers. */
#include "spec_fields.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

#define D SNAPMLA_KERNEL_MLA_DECODE
#define C SNAPMLA_KERNEL_MLA_COMBINE
#define A SNAPMLA_KERNEL_KV_APPEND
#define AT(field) offsetof(snapmla_variant, field)

static const int page_sizes[] = {1, 16, 32, 64, 128};
static const int kv_tokens[] = {16, 32, 64, 128};
static const int q_rows[] = {8, 16, 32, 64};
static const int warps[] = {4, 8, 16};
static const char *const bools[] = {"false", "true"};
static const char *const formats[] = {"bf16", "fp8_per_token", "fp8_per_tile128"};
static const char *const layouts[] = {"interleaved", "planar"};
static const char *const policies[] = {"auto", "fixed", "none", "balanced"};
static const char *const archs[] = {"sm_80", "sm_89", "sm_90a"};
static const char *const computes[] = {"bf16", "fp8"};
static const char *const engines[] = {"simt", "mma_sync", "wgmma"};
static const char *const schedules[] = {"auto", "seesaw", "pair"};

#define ENUM(list, implemented) FIELD_ENUM, 0, 0, 0, NULL, 0, list, \
    (int)(sizeof list / sizeof list[0]), implemented
#define RANGE(lo, hi, step) FIELD_INT, lo, hi, step, NULL, 0, NULL, 0, 0
#define SET(list) FIELD_INT, 0, 0, 0, list, (int)(sizeof list / sizeof list[0]), NULL, 0, 0

const field_def snapmla_fields[] = {
    {"model", "latent_dim", RANGE(32, 1024, 32), 0, KERNEL_BIT(D) | KERNEL_BIT(C) | KERNEL_BIT(A),
     KERNEL_BIT(D) | KERNEL_BIT(C) | KERNEL_BIT(A), AT(latent_dim)},
    {"model", "rope_dim", RANGE(16, 128, 16), 0, KERNEL_BIT(D) | KERNEL_BIT(A),
     KERNEL_BIT(D) | KERNEL_BIT(A), AT(rope_dim)},
    {"model", "q_heads", RANGE(1, 128, 1), 0, KERNEL_BIT(D) | KERNEL_BIT(C),
     KERNEL_BIT(D) | KERNEL_BIT(C), AT(q_heads)},
    {"model", "q_len", RANGE(1, 4, 1), 1, KERNEL_BIT(D) | KERNEL_BIT(C), 0, AT(q_len)},
    {"model", "causal", FIELD_BOOL, 0, 0, 0, NULL, 0, bools, 2, 2, 1, KERNEL_BIT(D), 0, AT(causal)},
    {"cache", "format", ENUM(formats, 3), SNAPMLA_FORMAT_BF16, KERNEL_BIT(D) | KERNEL_BIT(A), 0,
     AT(cache_format)},
    {"cache", "page_size", SET(page_sizes), 64, KERNEL_BIT(D) | KERNEL_BIT(A), 0, AT(page_size)},
    {"cache", "rope_layout", ENUM(layouts, 2), SNAPMLA_ROPE_INTERLEAVED,
     KERNEL_BIT(D) | KERNEL_BIT(A), 0, AT(rope_layout)},
    {"tile", "kv_tokens", SET(kv_tokens), 64, KERNEL_BIT(D), 0, AT(kv_tile)},
    {"tile", "q_rows", SET(q_rows), 16, KERNEL_BIT(D), 0, AT(q_tile)},
    {"tile", "stages", RANGE(1, 4, 1), 2, KERNEL_BIT(D), 0, AT(stages)},
    {"tile", "warps", SET(warps), 8, ALL_KERNELS, 0, AT(warps)},
    {"tile", "engine", ENUM(engines, 3), SNAPMLA_ENGINE_SIMT, KERNEL_BIT(D), 0, AT(engine)},
    {"tile", "schedule", ENUM(schedules, 3), SNAPMLA_SCHEDULE_AUTO, KERNEL_BIT(D), 0, AT(schedule)},
    {"split", "policy", ENUM(policies, 4), SNAPMLA_SPLIT_AUTO, KERNEL_BIT(D), 0, AT(split_policy)},
    {"split", "max_splits", RANGE(1, 128, 1), 64, KERNEL_BIT(D) | KERNEL_BIT(C), 0, AT(max_splits)},
    {"split", "min_tokens", RANGE(16, 1048576, 1), 256, KERNEL_BIT(D), 0, AT(split_min_tokens)},
    {"target", "arch", ENUM(archs, 3), SNAPMLA_ARCH_SM90A, ALL_KERNELS, 0, AT(arch)},
    {"target", "compute", ENUM(computes, 2), SNAPMLA_COMPUTE_BF16, KERNEL_BIT(D), 0, AT(compute)},
};
const size_t snapmla_field_count = sizeof snapmla_fields / sizeof snapmla_fields[0];

const char *const snapmla_section_names[] = {"model", "cache", "tile", "split", "target"};
const size_t snapmla_section_count = 5;

void snapmla_field_allowed(const field_def *f, char *out, size_t size)
{
    size_t used = (size_t)snprintf(out, size, "allowed: ");
    if (f->type == FIELD_INT && f->choices) {
        for (int i = 0; i < f->choice_count && used < size; ++i)
            used += (size_t)snprintf(out + used, size - used, "%s%d", i ? ", " : "", f->choices[i]);
    } else if (f->type == FIELD_INT) {
        if (f->multiple_of > 1)
            snprintf(out + used, size - used, "multiples of %d in %d..%d", f->multiple_of, f->min,
                     f->max);
        else
            snprintf(out + used, size - used, "%d..%d", f->min, f->max);
    } else {
        int shown = f->type == FIELD_BOOL ? 2 : f->implemented;
        for (int i = 0; i < shown && used < size; ++i)
            used += (size_t)snprintf(out + used, size - used, "%s%s", i ? ", " : "", f->names[i]);
    }
}

static snapmla_status bad_value(const field_def *f, const yaml_node *n, const char *source,
                                const char *problem, snapmla_error *err)
{
    char allowed[256];
    snapmla_field_allowed(f, allowed, sizeof allowed);
    return snapmla_fail(err, SNAPMLA_ERR_SPEC, "%s:%d:%d: %s.%s: '%.64s' %s; %s", source, n->line,
                        n->column, f->section, f->name, n->scalar, problem, allowed);
}

/* Decimal integers only: no sign but '-', no hex, octal, floats or spaces. */
static int parse_int(const char *text, long long *value)
{
    const char *p = text + (*text == '-');
    if (*p < '0' || *p > '9')
        return 0;
    for (const char *q = p; *q; ++q)
        if (*q < '0' || *q > '9')
            return 0;
    errno = 0;
    char *end;
    *value = strtoll(text, &end, 10);
    return errno == ERANGE ? -1 : 1;
}

static snapmla_status read_scalar(const field_def *f, const yaml_node *n, const char *source,
                                  int *value, snapmla_error *err)
{
    if (n->kind != NODE_SCALAR)
        return snapmla_fail(err, SNAPMLA_ERR_SPEC,
                            "%s:%d:%d: %s.%s: expected a scalar or a list of scalars, found a %s",
                            source, n->line, n->column, f->section, f->name,
                            n->kind == NODE_MAPPING ? "mapping" : "nested list");
    if (f->type == FIELD_INT) {
        long long v = 0;
        int parsed = n->plain ? parse_int(n->scalar, &v) : 0;
        if (parsed == 0)
            return bad_value(f, n, source, "is not an integer", err);
        int in_range = parsed > 0 && v >= f->min && v <= f->max;
        if (f->choices) {
            in_range = 0;
            for (int i = 0; parsed > 0 && i < f->choice_count; ++i)
                in_range |= v == f->choices[i];
        } else if (in_range && f->multiple_of > 1) {
            in_range = v % f->multiple_of == 0;
        }
        if (!in_range)
            return bad_value(f, n, source, f->choices ? "is not allowed" : "is out of range", err);
        *value = (int)v;
        return SNAPMLA_OK;
    }
    for (int i = 0; i < f->name_count; ++i)
        if (strcmp(n->scalar, f->names[i]) == 0) {
            if (i >= f->implemented)
                return snapmla_fail(err, SNAPMLA_ERR_SPEC,
                                    "%s:%d:%d: %s.%s: '%s' is reserved and not implemented in "
                                    "this version", source, n->line, n->column, f->section,
                                    f->name, n->scalar);
            *value = i;
            return SNAPMLA_OK;
        }
    if (f->type == FIELD_BOOL) {
        static const char *const yaml11[] = {"yes", "no", "on", "off", "y", "n", "True", "False",
                                             "TRUE", "FALSE", "Yes", "No"};
        for (size_t i = 0; i < sizeof yaml11 / sizeof yaml11[0]; ++i)
            if (strcmp(n->scalar, yaml11[i]) == 0)
                return bad_value(f, n, source, "is ambiguous YAML; write true or false", err);
        return bad_value(f, n, source, "is not a boolean", err);
    }
    const char *close = snapmla_closest_name(n->scalar, f->names, (size_t)f->name_count);
    if (close) {
        char problem[128];
        snprintf(problem, sizeof problem, "is not allowed (did you mean '%s'?)", close);
        return bad_value(f, n, source, problem, err);
    }
    return bad_value(f, n, source, "is not allowed", err);
}

snapmla_status snapmla_field_read(const field_def *f, const yaml_node *node, const char *source,
                                  field_values *out, snapmla_error *err)
{
    memset(out, 0, sizeof *out);
    out->given = 1;
    out->line = node->line;
    out->column = node->column;
    if (node->kind != NODE_SEQUENCE) {
        out->count = 1;
        return read_scalar(f, node, source, &out->values[0], err);
    }
    if (node->count == 0)
        return snapmla_fail(err, SNAPMLA_ERR_SPEC, "%s:%d:%d: %s.%s: an empty list sweeps nothing",
                            source, node->line, node->column, f->section, f->name);
    if (node->count > MAX_SWEEP_VALUES)
        return snapmla_fail(err, SNAPMLA_ERR_SPEC, "%s:%d:%d: %s.%s: %zu values; a sweep takes at "
                            "most %d per field", source, node->line, node->column, f->section,
                            f->name, node->count, MAX_SWEEP_VALUES);
    for (size_t i = 0; i < node->count; ++i) {
        const yaml_node *item = node->items[i].value;
        snapmla_status s = read_scalar(f, item, source, &out->values[i], err);
        if (s != SNAPMLA_OK)
            return s;
        for (size_t j = 0; j < i; ++j)
            if (out->values[j] == out->values[i])
                return snapmla_fail(err, SNAPMLA_ERR_SPEC, "%s:%d:%d: %s.%s: '%s' is listed twice",
                                    source, item->line, item->column, f->section, f->name,
                                    item->scalar);
        out->count++;
    }
    return SNAPMLA_OK;
}

/* Edit distance with adjacent transpositions (optimal string alignment):
 * "arhc" is one step from "arch". */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 99;
    size_t d[64][64];
    for (size_t i = 0; i <= la; ++i)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; ++j)
        d[0][j] = j;
    for (size_t i = 1; i <= la; ++i)
        for (size_t j = 1; j <= lb; ++j) {
            size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[la][lb];
}

const char *snapmla_closest_name(const char *name, const char *const *names, size_t count)
{
    /* one slip in a short name, two in a long one */
    const char *best = NULL;
    size_t best_distance = strlen(name) >= 7 ? 3 : 2;
    for (size_t i = 0; i < count; ++i) {
        size_t d = edit_distance(name, names[i]);
        if (strlen(name) >= 3 && strncmp(names[i], name, strlen(name)) == 0)
            d = 1;   /* a prefix of the real name */
        if (d < best_distance) {
            best = names[i];
            best_distance = d;
        }
    }
    return best;
}
