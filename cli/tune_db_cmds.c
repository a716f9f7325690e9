/* `snapmla tune merge` (several tuning databases into one, e.g. the shards
 * of a sweep or the runs of several machines) and `snapmla tune pick` (what
 * the runtime dispatch would choose per shape, shown without a GPU). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dispatch.h"
#include "tune.h"

enum { MAX_FILES = 256 };

static void log_line(void *user, snapmla_log_level level, const char *message)
{
    (void)user;
    (void)level;
    fprintf(stderr, "%s\n", message);
}

int cli_tune_merge(int argc, char **argv)
{
    const char *paths[MAX_FILES], *output = NULL;
    int count = 0;
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
            output = argv[++i];
        else if (argv[i][0] == '-' || count == MAX_FILES)
            return cli_usage_error(&cli_tune, "merge: unknown option, missing value or over 256 files");
        else
            paths[count++] = argv[i];
    }
    if (count == 0 || !output)
        return cli_usage_error(&cli_tune, "merge: need at least one database and -o OUT.yaml");
    snapmla_tuning_db *dbs[MAX_FILES] = {0}, *merged = NULL;
    snapmla_error err;
    int code = CLI_OK, loaded = 0;
    size_t total = 0, conflicts = 0;
    for (; loaded < count && code == CLI_OK; ++loaded)
        if (snapmla_tuning_db_load(paths[loaded], &dbs[loaded], &err) != SNAPMLA_OK)
            code = cli_report(&err);
        else
            total += snapmla_tuning_db_count(dbs[loaded]);
    if (code == CLI_OK &&
        (snapmla_tuning_db_merge((const snapmla_tuning_db *const *)dbs, (size_t)count, log_line,
                                 NULL, &conflicts, &merged, &err) != SNAPMLA_OK ||
         snapmla_tuning_db_save(merged, output, &err) != SNAPMLA_OK))
        code = cli_report(&err);
    if (code == CLI_OK)
        printf("merged %d file%s (%zu entries in all) into %s: %zu entr%s, %zu conflict%s (the "
               "faster winner kept)\n", count, count == 1 ? "" : "s", total, output,
               snapmla_tuning_db_count(merged), snapmla_tuning_db_count(merged) == 1 ? "y" : "ies",
               conflicts, conflicts == 1 ? "" : "s");
    for (int i = 0; i < loaded; ++i)
        snapmla_tuning_db_free(dbs[i]);
    snapmla_tuning_db_free(merged);
    return code;
}

/* ---- pick -------------------------------------------------------------------- */

typedef struct pick_options {
    const char *db_path;
    const char *spec_paths[64];
    int spec_count;
    tune_shape shapes[TUNE_MAX_SHAPES];
    int shape_count;
    const char *device;
} pick_options;

static int parse_pick(pick_options *o, int argc, char **argv)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; ++i) {
        char why[256];
        if (strcmp(argv[i], "--shapes") == 0 && i + 1 < argc) {
            if (!tune_parse_shapes(argv[++i], o->shapes, &o->shape_count, why, sizeof why))
                return cli_usage_error(&cli_tune, why);
        } else if (strcmp(argv[i], "--device") == 0 && i + 1 < argc) {
            o->device = argv[++i];
        } else if (argv[i][0] == '-' || o->spec_count == 64) {
            return cli_usage_error(&cli_tune, "pick: unknown option, missing value or over 64 specs");
        } else if (!o->db_path) {
            o->db_path = argv[i];
        } else {
            o->spec_paths[o->spec_count++] = argv[i];
        }
    }
    if (!o->db_path || o->spec_count == 0 || o->shape_count == 0)
        return cli_usage_error(&cli_tune, "pick: need DB.yaml, at least one SPEC and --shapes");
    return CLI_OK;
}

/* --device, else the database's only device. */
static const char *pick_device(const pick_options *o, const snapmla_tuning_db *db)
{
    if (o->device)
        return o->device;
    const char *only = NULL;
    for (size_t i = 0; i < snapmla_tuning_db_count(db); ++i) {
        const char *d = snapmla_tuning_db_entry(db, i)->device;
        if (only && strcmp(only, d) != 0) {
            fprintf(stderr, "snapmla: %s holds several devices; choose one with --device\n",
                    o->db_path);
            return NULL;
        }
        only = d;
    }
    if (!only)
        fprintf(stderr, "snapmla: %s is empty; give --device to see the defaults\n", o->db_path);
    return only;
}

static int same_group(const snapmla_variant *a, const snapmla_variant *b)
{
    char fa[SNAPMLA_FAMILY_MAX], fb[SNAPMLA_FAMILY_MAX];
    snapmla_variant_family(a, fa);
    snapmla_variant_family(b, fb);
    return strcmp(fa, fb) == 0 && a->q_heads == b->q_heads && a->arch == b->arch;
}

/* One dispatcher per family, heads and arch among the variants. */
static int show_groups(const pick_options *o, const snapmla_tuning_db *db, const char *device,
                       const snapmla_variant **all, int count)
{
    const snapmla_variant **group = calloc((size_t)count, sizeof *group);
    if (!group)
        return CLI_FAILED;
    int code = CLI_OK;
    for (int lead = 0; lead < count && code == CLI_OK; ++lead) {
        int first = 1, n = 0;
        for (int i = 0; i < lead && first; ++i)
            first = !same_group(all[i], all[lead]);
        for (int i = lead; first && i < count; ++i)
            if (same_group(all[i], all[lead]))
                group[n++] = all[i];
        if (!first)
            continue;
        snapmla_dispatch *d;
        snapmla_error err;
        if (snapmla_dispatch_build(db, group, NULL, n, device, log_line, NULL, &d, &err) != SNAPMLA_OK) {
            code = cli_report(&err);
            break;
        }
        char family[SNAPMLA_FAMILY_MAX];
        snapmla_variant_family(all[lead], family);
        printf("%s, %d heads, %s (%d candidate%s; default: %s):\n", family, all[lead]->q_heads,
               snapmla_arch_name(all[lead]->arch), n, n == 1 ? "" : "s", group[0]->name);
        for (int s = 0; s < o->shape_count; ++s) {
            char line[1024];
            snapmla_dispatch_describe(d, o->shapes[s].batch, o->shapes[s].seqlen, line, sizeof line);
            printf("  %s\n", line);
        }
        snapmla_dispatch_free(d);
    }
    free(group);
    return code;
}

int cli_tune_pick(int argc, char **argv)
{
    pick_options o;
    int code = parse_pick(&o, argc, argv);
    if (code != CLI_OK)
        return code;
    snapmla_tuning_db *db = NULL;
    snapmla_spec *specs[64] = {0};
    const snapmla_variant **all = NULL;
    snapmla_error err;
    int loaded = 0, count = 0;
    if (snapmla_tuning_db_load(o.db_path, &db, &err) != SNAPMLA_OK)
        return cli_report(&err);
    for (; loaded < o.spec_count && code == CLI_OK; ++loaded)
        if (snapmla_spec_load(o.spec_paths[loaded], &specs[loaded], &err) != SNAPMLA_OK)
            code = cli_report(&err);
    size_t total = 0;
    for (int s = 0; s < loaded && specs[s]; ++s)
        total += specs[s]->count;
    const char *device = code == CLI_OK ? pick_device(&o, db) : NULL;
    if (code == CLI_OK && !device)
        code = CLI_USAGE;
    if (code == CLI_OK && !(all = calloc(total + 1, sizeof *all)))
        code = CLI_FAILED;
    for (int s = 0; code == CLI_OK && s < loaded; ++s)
        for (size_t i = 0; i < specs[s]->count; ++i)
            if (specs[s]->variants[i].kernel == SNAPMLA_KERNEL_MLA_DECODE)
                all[count++] = &specs[s]->variants[i];
    if (code == CLI_OK && count == 0)
        code = cli_usage_error(&cli_tune, "pick: the specs have no mla_decode variant");
    if (code == CLI_OK) {
        printf("dispatch on '%s' with %s:\n", device, o.db_path);
        code = show_groups(&o, db, device, all, count);
    }
    free(all);
    for (int s = 0; s < loaded; ++s)
        snapmla_spec_free(specs[s]);
    snapmla_tuning_db_free(db);
    return code;
}
