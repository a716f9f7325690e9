/* The spec stage's entry: file -> YAML tree -> judged fields -> variants.
 * A field given as a list makes a sweep: the cartesian product, in schema
 * order with the last field varying fastest, each point named from its
 * values and checked as a combination. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fileio.h"
#include "names.h"
#include "spec_check.h"
#include "spec_fields.h"
#include "yaml_tree.h"

enum { MAX_VARIANTS = 4096 };

typedef struct spec_input {
    const char *source;
    snapmla_kernel_kind kernel;
    int kernel_line, kernel_column;
    char name[49];
    field_values fields[32];
} spec_input;

static const char *const kernel_names[] = {"mla_decode", "mla_combine", "kv_append"};
static const char *const top_names[] = {"name", "kernel", "model", "cache", "tile", "split", "target"};

static snapmla_status read_name(spec_input *in, const yaml_node *n, snapmla_error *err)
{
    size_t length = n->kind == NODE_SCALAR ? strlen(n->scalar) : 0;
    int ok = length >= 1 && length <= 48;
    for (size_t i = 0; ok && i < length; ++i) {
        char c = n->scalar[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '-' || c == '.';
    }
    if (!ok)
        return snapmla_fail(err, SNAPMLA_ERR_SPEC,
                            "%s:%d:%d: name: '%.64s' is not allowed; allowed: 1 to 48 of "
                            "A-Z a-z 0-9 _ - .", in->source, n->line, n->column,
                            n->kind == NODE_SCALAR ? n->scalar : "(not a scalar)");
    memcpy(in->name, n->scalar, length + 1);
    return SNAPMLA_OK;
}

static snapmla_status read_kernel(spec_input *in, const yaml_node *n, snapmla_error *err)
{
    in->kernel_line = n->line;
    in->kernel_column = n->column;
    if (n->kind != NODE_SCALAR)
        return snapmla_fail(err, SNAPMLA_ERR_SPEC,
                            "%s:%d:%d: kernel: expected one of mla_decode, mla_combine, kv_append "
                            "(a spec describes one kernel; it cannot be a list)",
                            in->source, n->line, n->column);
    for (int k = 0; k < 3; ++k)
        if (strcmp(n->scalar, kernel_names[k]) == 0) {
            in->kernel = (snapmla_kernel_kind)k;
            return SNAPMLA_OK;
        }
    const char *close = snapmla_closest_name(n->scalar, kernel_names, 3);
    char hint[64] = "";
    if (close)
        snprintf(hint, sizeof hint, " (did you mean '%s'?)", close);
    return snapmla_fail(err, SNAPMLA_ERR_SPEC,
                        "%s:%d:%d: kernel: '%.64s' is not allowed%s; allowed: mla_decode, "
                        "mla_combine, kv_append", in->source, n->line, n->column, n->scalar, hint);
}

static snapmla_status read_section(spec_input *in, const yaml_item *section, snapmla_error *err)
{
    const yaml_node *n = section->value;
    if (n->kind != NODE_MAPPING)
        return snapmla_fail(err, SNAPMLA_ERR_SPEC, "%s:%d:%d: %s: expected a mapping of fields",
                            in->source, n->line, n->column, section->key);
    for (size_t i = 0; i < n->count; ++i) {
        const yaml_item *item = &n->items[i];
        const field_def *f = NULL;
        const char *names[16];
        size_t name_count = 0;
        for (size_t k = 0; k < snapmla_field_count; ++k) {
            if (strcmp(snapmla_fields[k].section, section->key) != 0)
                continue;
            names[name_count++] = snapmla_fields[k].name;
            if (strcmp(snapmla_fields[k].name, item->key) == 0) {
                f = &snapmla_fields[k];
                snapmla_status s = snapmla_field_read(f, item->value, in->source, &in->fields[k], err);
                if (s != SNAPMLA_OK)
                    return s;
            }
        }
        if (!f) {
            char list[256] = "", hint[96] = "";
            for (size_t k = 0, used = 0; k < name_count; ++k)
                used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", k ? ", " : "", names[k]);
            const char *close = snapmla_closest_name(item->key, names, name_count);
            if (close)
                snprintf(hint, sizeof hint, " (did you mean '%s'?)", close);
            return snapmla_fail(err, SNAPMLA_ERR_SPEC,
                                "%s:%d:%d: unknown field '%s.%.64s'%s; fields of '%s': %s",
                                in->source, item->key_line, item->key_column, section->key,
                                item->key, hint, section->key, list);
        }
    }
    return SNAPMLA_OK;
}

static snapmla_status read_top(spec_input *in, const yaml_node *root, snapmla_error *err)
{
    const yaml_item *kernel = NULL;
    for (size_t i = 0; i < root->count; ++i)
        if (strcmp(root->items[i].key, "kernel") == 0)
            kernel = &root->items[i];
    if (!kernel)
        return snapmla_fail(err, SNAPMLA_ERR_SPEC, "%s:%d:%d: kernel is required; allowed: "
                            "mla_decode, mla_combine, kv_append", in->source, root->line,
                            root->column);
    snapmla_status s = read_kernel(in, kernel->value, err);
    for (size_t i = 0; s == SNAPMLA_OK && i < root->count; ++i) {
        const yaml_item *item = &root->items[i];
        if (item == kernel)
            continue;
        if (strcmp(item->key, "name") == 0) {
            s = read_name(in, item->value, err);
            continue;
        }
        int known = 0;
        for (size_t k = 0; k < snapmla_section_count; ++k)
            known |= strcmp(item->key, snapmla_section_names[k]) == 0;
        if (known) {
            s = read_section(in, item, err);
            continue;
        }
        const char *close = snapmla_closest_name(item->key, top_names, 7);
        char hint[64] = "";
        if (close)
            snprintf(hint, sizeof hint, " (did you mean '%s'?)", close);
        s = snapmla_fail(err, SNAPMLA_ERR_SPEC, "%s:%d:%d: unknown field '%.64s'%s; top-level "
                         "fields: name, kernel, model, cache, tile, split, target", in->source,
                         item->key_line, item->key_column, item->key, hint);
    }
    return s;
}

/* Fields that do not apply to the kernel must not be given; required ones must. */
static snapmla_status check_presence(const spec_input *in, snapmla_error *err)
{
    unsigned bit = KERNEL_BIT(in->kernel);
    for (size_t k = 0; k < snapmla_field_count; ++k) {
        const field_def *f = &snapmla_fields[k];
        const field_values *fv = &in->fields[k];
        if (fv->given && !(f->applies & bit))
            return snapmla_fail(err, SNAPMLA_ERR_SPEC, "%s:%d:%d: %s.%s does not apply to kernel %s",
                                in->source, fv->line, fv->column, f->section, f->name,
                                kernel_names[in->kernel]);
        if (!fv->given && (f->required & bit))
            return snapmla_fail(err, SNAPMLA_ERR_SPEC, "%s:%d:%d: %s.%s is required for kernel %s",
                                in->source, in->kernel_line, in->kernel_column, f->section,
                                f->name, kernel_names[in->kernel]);
    }
    return SNAPMLA_OK;
}

static int field_index(const char *section, const char *name)
{
    for (size_t k = 0; k < snapmla_field_count; ++k)
        if (strcmp(snapmla_fields[k].section, section) == 0 && strcmp(snapmla_fields[k].name, name) == 0)
            return (int)k;
    return -1;
}

static int *field_slot(snapmla_variant *v, const field_def *f)
{
    return (int *)((char *)v + f->offset);
}

static void name_variant(const spec_input *in, snapmla_variant *v)
{
    char body[SNAPMLA_NAME_MAX - 56];   /* room for "NAME." */
    static const char *const policies[] = {"auto", "fixed", "none", "bal"};
    char layout = v->rope_layout == SNAPMLA_ROPE_PLANAR ? 'p' : 'i';
    switch (v->kernel) {
    case SNAPMLA_KERNEL_MLA_DECODE:
        snprintf(body, sizeof body, "mla_decode.l%dr%d.h%dq%d%c.%sp%d%c.kv%dq%ds%dw%d.%s%dm%d.%s.%s%s%s",
                 v->latent_dim, v->rope_dim, v->q_heads, v->q_len, v->causal ? 'c' : 'n',
                 snapmla_cache_format_tag(v->cache_format), v->page_size, layout, v->kv_tile, v->q_tile, v->stages,
                 v->warps, policies[v->split_policy], v->max_splits, v->split_min_tokens,
                 snapmla_arch_name(v->arch), snapmla_compute_name(v->compute),
                 v->engine == SNAPMLA_ENGINE_MMA_SYNC ? ".mma" : v->engine == SNAPMLA_ENGINE_WGMMA ? ".wgmma" : "",
                 /* an explicit schedule (auto keeps the names tuning databases hold) */
                 v->schedule == SNAPMLA_SCHEDULE_PAIR ? ".pair" : v->schedule == SNAPMLA_SCHEDULE_SEESAW ? ".seesaw" : "");
        break;
    case SNAPMLA_KERNEL_MLA_COMBINE:
        snprintf(body, sizeof body, "mla_combine.l%d.h%dq%d.w%d.s%d.%s", v->latent_dim, v->q_heads,
                 v->q_len, v->warps, v->max_splits, snapmla_arch_name(v->arch));
        break;
    case SNAPMLA_KERNEL_KV_APPEND:
        snprintf(body, sizeof body, "kv_append.l%dr%d.%sp%d%c.w%d.%s", v->latent_dim, v->rope_dim,
                 snapmla_cache_format_tag(v->cache_format), v->page_size, layout, v->warps,
                 snapmla_arch_name(v->arch));
        break;
    }
    if (in->name[0])
        snprintf(v->name, sizeof v->name, "%s.%s", in->name, body);
    else
        snprintf(v->name, sizeof v->name, "%s", body);
}

/* The line of the latest given field among those a failed check names. */
static void locate(const spec_input *in, const char *const *fields, int *line, int *column)
{
    *line = in->kernel_line;
    *column = in->kernel_column;
    int found = 0;
    for (int i = 0; i < SNAPMLA_CHECK_FIELDS && fields[i]; ++i) {
        char section[16];
        const char *dot = strchr(fields[i], '.');
        snprintf(section, sizeof section, "%.*s", (int)(dot - fields[i]), fields[i]);
        int k = field_index(section, dot + 1);
        if (k < 0 || !in->fields[k].given)
            continue;
        const field_values *fv = &in->fields[k];
        if (!found || fv->line > *line || (fv->line == *line && fv->column > *column)) {
            *line = fv->line;
            *column = fv->column;
            found = 1;
        }
    }
}

static snapmla_status expand(const spec_input *in, snapmla_spec *spec, snapmla_error *err)
{
    size_t total = 1;
    for (size_t k = 0; k < snapmla_field_count; ++k) {
        if (in->fields[k].given)
            total *= (size_t)in->fields[k].count;
        if (total > MAX_VARIANTS)
            return snapmla_fail(err, SNAPMLA_ERR_SPEC, "%s: the sweep has over %d variants; split it "
                                "into several specs", in->source, MAX_VARIANTS);
    }
    spec->variants = calloc(total, sizeof *spec->variants);
    spec->rejected = calloc(total, sizeof *spec->rejected);
    if (!spec->variants || !spec->rejected)
        return snapmla_fail(err, SNAPMLA_ERR_NOMEM, "%s: out of memory", in->source);
    int layout_field = field_index("cache", "rope_layout");
    int splits_field = field_index("split", "max_splits");
    int warps_field = field_index("tile", "warps");
    int q_rows_field = field_index("tile", "q_rows");
    int kv_tokens_field = field_index("tile", "kv_tokens");
    unsigned bit = KERNEL_BIT(in->kernel);
    char first_reason[SNAPMLA_ERROR_MAX] = "";
    for (size_t point = 0; point < total; ++point) {
        snapmla_variant v;
        memset(&v, 0, sizeof v);
        v.kernel = in->kernel;
        size_t rest = point;
        for (size_t k = snapmla_field_count; k-- > 0;) {   /* last field varies fastest */
            const field_def *f = &snapmla_fields[k];
            const field_values *fv = &in->fields[k];
            if (!(f->applies & bit))
                continue;
            int value = f->default_value;
            if (fv->given) {
                value = fv->values[rest % (size_t)fv->count];
                rest /= (size_t)fv->count;
            }
            *field_slot(&v, f) = value;
        }
        if (!in->fields[layout_field].given && v.cache_format == SNAPMLA_FORMAT_FP8_PER_TOKEN)
            v.rope_layout = SNAPMLA_ROPE_PLANAR;   /* its only layout */
        if (!in->fields[warps_field].given && v.engine == SNAPMLA_ENGINE_MMA_SYNC)
            v.warps = 2 * (v.q_tile / 16);         /* its layout: 2 warps per 16 rows */
        if (v.engine == SNAPMLA_ENGINE_WGMMA) {       /* its only tile: two warpgroups on 64 x 64 */
            if (!in->fields[warps_field].given)
                v.warps = 8;
            if (!in->fields[q_rows_field].given)
                v.q_tile = 64;
            if (!in->fields[kv_tokens_field].given)
                v.kv_tile = 64;
        }
        if (v.kernel == SNAPMLA_KERNEL_MLA_DECODE && v.split_policy == SNAPMLA_SPLIT_NONE) {
            if (in->fields[splits_field].given && v.max_splits != 1) {
                const field_values *fv = &in->fields[splits_field];
                return snapmla_fail(err, SNAPMLA_ERR_SPEC, "%s:%d:%d: split.max_splits %d contradicts "
                                    "split.policy none (which uses one split); drop it or set 1",
                                    in->source, fv->line, fv->column, v.max_splits);
            }
            v.max_splits = 1;
        }
        name_variant(in, &v);
        char reason[SNAPMLA_ERROR_MAX - 64];
        const char *fields[SNAPMLA_CHECK_FIELDS] = {0};
        if (snapmla_variant_check(&v, reason, sizeof reason, fields)) {
            spec->variants[spec->count++] = v;
            continue;
        }
        int line, column;
        locate(in, fields, &line, &column);
        snapmla_rejected *r = &spec->rejected[spec->rejected_count++];
        snprintf(r->name, sizeof r->name, "%s", v.name);
        snprintf(r->reason, sizeof r->reason, "%s:%d:%d: %s", in->source, line, column, reason);
        if (!first_reason[0])
            snprintf(first_reason, sizeof first_reason, "%s", r->reason);
    }
    if (spec->count == 0)
        return snapmla_fail(err, SNAPMLA_ERR_SPEC, "%s", first_reason);
    return SNAPMLA_OK;
}

snapmla_status snapmla_spec_parse(const char *text, size_t length, const char *source,
                                  snapmla_spec **out, snapmla_error *err)
{
    if (!text || !source || !out)
        return snapmla_fail(err, SNAPMLA_ERR_INVALID_ARG,
                            "snapmla_spec_parse: text, name and out must not be NULL");
    *out = NULL;
    yaml_node *root = NULL;
    snapmla_status s = snapmla_yaml_parse(text, length, source, &root, err);
    if (s != SNAPMLA_OK)
        return s;
    if (!root || (root->kind == NODE_MAPPING && root->count == 0)) {
        snapmla_yaml_free(root);
        return snapmla_fail(err, SNAPMLA_ERR_SPEC,
                            "%s: empty spec; expected a mapping with at least 'kernel'", source);
    }
    if (root->kind != NODE_MAPPING) {
        s = snapmla_fail(err, SNAPMLA_ERR_SPEC, "%s:%d:%d: a spec is a mapping of fields "
                         "(kernel, model, cache, ...), not a %s", source, root->line, root->column,
                         root->kind == NODE_SCALAR ? "scalar" : "list");
        snapmla_yaml_free(root);
        return s;
    }
    spec_input *in = calloc(1, sizeof *in);
    snapmla_spec *spec = calloc(1, sizeof *spec);
    if (!in || !spec || !(spec->path = strdup(source))) {
        free(in);
        snapmla_spec_free(spec);
        snapmla_yaml_free(root);
        return snapmla_fail(err, SNAPMLA_ERR_NOMEM, "%s: out of memory", source);
    }
    in->source = source;
    s = read_top(in, root, err);
    if (s == SNAPMLA_OK)
        s = check_presence(in, err);
    if (s == SNAPMLA_OK)
        s = expand(in, spec, err);
    free(in);
    snapmla_yaml_free(root);
    if (s != SNAPMLA_OK) {
        snapmla_spec_free(spec);
        return s;
    }
    *out = spec;
    return snapmla_ok(err);
}

snapmla_status snapmla_spec_load(const char *path, snapmla_spec **out, snapmla_error *err)
{
    if (!path || !out)
        return snapmla_fail(err, SNAPMLA_ERR_INVALID_ARG,
                            "snapmla_spec_load: path and out must not be NULL");
    unsigned char *text;
    size_t length;
    snapmla_status s = snapmla_read_file(path, SNAPMLA_TEXT_FILE_MAX, &text, &length, err);
    if (s != SNAPMLA_OK)
        return s;
    s = snapmla_spec_parse((const char *)text, length, path, out, err);
    free(text);
    return s;
}

void snapmla_spec_free(snapmla_spec *spec)
{
    if (!spec)
        return;
    free(spec->path);
    free(spec->variants);
    free(spec->rejected);
    free(spec);
}
