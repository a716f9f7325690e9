/* The tuning database as a table: shape buckets, spec families, the sorted
 * immutable entry table, lookup by binary search, and the merge of several
 * databases. Its YAML form is tuning_db_yaml.c; docs/tuning.md the format. */
#include "tuning_db.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "names.h"

/* ---- buckets ------------------------------------------------------------- */

int snapmla_tuning_batch_bucket(int batch)
{
    if (batch < 1)
        return -1;
    int bucket = 0;
    while (bucket < SNAPMLA_TUNING_BATCH_BUCKETS - 1 && batch > (1 << bucket))
        bucket++;
    return bucket;
}

int snapmla_tuning_context_bucket(int64_t context)
{
    if (context < 0)
        return -1;
    int bucket = 0;
    while (bucket < SNAPMLA_TUNING_CONTEXT_BUCKETS - 1 && context > ((int64_t)512 << bucket))
        bucket++;
    return bucket;
}

void snapmla_tuning_batch_edges(int bucket, int *lo, int *hi)
{
    *lo = bucket <= 0 ? 1 : (1 << (bucket - 1)) + 1;
    *hi = bucket >= SNAPMLA_TUNING_BATCH_BUCKETS - 1 ? -1 : 1 << (bucket < 0 ? 0 : bucket);
}

void snapmla_tuning_context_edges(int bucket, int64_t *lo, int64_t *hi)
{
    *lo = bucket <= 0 ? 0 : ((int64_t)512 << (bucket - 1)) + 1;
    *hi = bucket >= SNAPMLA_TUNING_CONTEXT_BUCKETS - 1 ? -1 : (int64_t)512 << (bucket < 0 ? 0 : bucket);
}

void snapmla_tuning_batch_label(int bucket, char *out, size_t size)
{
    int lo, hi;
    snapmla_tuning_batch_edges(bucket, &lo, &hi);
    if (hi < 0)
        snprintf(out, size, "%d+", lo);
    else if (lo == hi)
        snprintf(out, size, "%d", lo);
    else
        snprintf(out, size, "%d-%d", lo, hi);
}

void snapmla_tuning_context_label(int bucket, char *out, size_t size)
{
    int64_t lo, hi;
    snapmla_tuning_context_edges(bucket, &lo, &hi);
    if (hi < 0)
        snprintf(out, size, "%lld+", (long long)lo);
    else
        snprintf(out, size, "%lld-%lld", (long long)lo, (long long)hi);
}

/* ---- families and keys --------------------------------------------------- */

void snapmla_variant_family(const snapmla_variant *v, char family[SNAPMLA_FAMILY_MAX])
{
    snprintf(family, SNAPMLA_FAMILY_MAX, "l%dr%d.q%d%c.%sp%d%c.%s", v->latent_dim, v->rope_dim,
             v->q_len, v->causal ? 'c' : 'n', snapmla_cache_format_tag(v->cache_format), v->page_size,
             v->rope_layout == SNAPMLA_ROPE_PLANAR ? 'p' : 'i',
             snapmla_compute_name(v->compute));
}

int snapmla_tuning_key_compare(const snapmla_tuning_entry *a, const snapmla_tuning_entry *b)
{
    if (a->arch != b->arch)
        return a->arch < b->arch ? -1 : 1;
    int c = strcmp(a->device, b->device);
    if (c == 0)
        c = strcmp(a->family, b->family);
    if (c != 0)
        return c < 0 ? -1 : 1;
    if (a->rows != b->rows)
        return a->rows < b->rows ? -1 : 1;
    if (a->batch_bucket != b->batch_bucket)
        return a->batch_bucket < b->batch_bucket ? -1 : 1;
    if (a->context_bucket != b->context_bucket)
        return a->context_bucket < b->context_bucket ? -1 : 1;
    return 0;
}

void snapmla_tuning_key_text(const snapmla_tuning_entry *e, char *out, size_t size)
{
    char batch[24], context[32];
    snapmla_tuning_batch_label(e->batch_bucket, batch, sizeof batch);
    snapmla_tuning_context_label(e->context_bucket, context, sizeof context);
    snprintf(out, size, "%s '%s' %s rows %d batch %s context %s", snapmla_arch_name(e->arch),
             e->device, e->family, e->rows, batch, context);
}

int snapmla_tuning_env_logs_dispatch(void)
{
    const char *log = getenv("SNAPMLA_LOG");
    return log && strstr(log, "dispatch") != NULL;
}

/* ---- the table ----------------------------------------------------------- */

typedef struct ordered {
    snapmla_tuning_entry entry;
    size_t position;   /* in the input, so that equal keys name both */
} ordered;

static int by_key_then_position(const void *a, const void *b)
{
    const ordered *x = a, *y = b;
    int c = snapmla_tuning_key_compare(&x->entry, &y->entry);
    return c ? c : (x->position > y->position) - (x->position < y->position);
}

static snapmla_status refuse_repeat(const char *source, const ordered *first,
                                    const ordered *second, const snapmla_tuning_mark *marks,
                                    snapmla_error *err)
{
    char key[512];
    snapmla_tuning_key_text(&second->entry, key, sizeof key);
    if (marks)
        return snapmla_fail(err, SNAPMLA_ERR_SPEC,
                            "%s:%d:%d: entries[%zu] repeats the key of entries[%zu] (line %d): %s",
                            source, marks[second->position].line, marks[second->position].column,
                            second->position, first->position, marks[first->position].line, key);
    return snapmla_fail(err, SNAPMLA_ERR_INVALID_ARG, "%s: entries[%zu] repeats the key of "
                        "entries[%zu]: %s", source, second->position, first->position, key);
}

snapmla_status snapmla_tuning_db_adopt(char *source, snapmla_tuning_entry *entries, size_t count,
                                       const snapmla_tuning_mark *marks, snapmla_tuning_db **out,
                                       snapmla_error *err)
{
    snapmla_tuning_db *db = calloc(1, sizeof *db);
    ordered *sorted = calloc(count ? count : 1, sizeof *sorted);
    if (!db || !sorted || !source || !entries) {
        free(db);
        free(sorted);
        free(entries);
        free(source);
        return snapmla_fail(err, SNAPMLA_ERR_NOMEM, "out of memory building a tuning database");
    }
    for (size_t i = 0; i < count; ++i)
        sorted[i] = (ordered){entries[i], i};
    qsort(sorted, count, sizeof *sorted, by_key_then_position);
    snapmla_status s = SNAPMLA_OK;
    for (size_t i = 1; i < count && s == SNAPMLA_OK; ++i)
        if (snapmla_tuning_key_compare(&sorted[i - 1].entry, &sorted[i].entry) == 0)
            s = refuse_repeat(source, &sorted[i - 1], &sorted[i], marks, err);
    for (size_t i = 0; i < count; ++i)
        entries[i] = sorted[i].entry;
    free(sorted);
    db->source = source;
    db->entries = entries;
    db->count = count;
    db->log_dispatch = snapmla_tuning_env_logs_dispatch();
    if (s != SNAPMLA_OK) {
        snapmla_tuning_db_free(db);
        return s;
    }
    *out = db;
    return snapmla_ok(err);
}

static int is_name(const char *s, size_t size)
{
    size_t n = strnlen(s, size);
    if (n == 0 || n == size)
        return 0;
    for (size_t i = 0; i < n; ++i)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-' || s[i] == '.'))
            return 0;
    return 1;
}

static int is_device(const char *s)
{
    size_t n = strnlen(s, SNAPMLA_DEVICE_NAME_MAX);
    for (size_t i = 0; i < n; ++i)
        if (s[i] < 0x20 || s[i] >= 0x7f)
            return 0;
    return n >= 1 && n < SNAPMLA_DEVICE_NAME_MAX;
}

/* What the file format could not hold, in words; NULL when e is fine. */
static const char *entry_problem(const snapmla_tuning_entry *e)
{
    if ((unsigned)e->arch > SNAPMLA_ARCH_SM90A)
        return "arch is not a snapmla_arch";
    if (!is_device(e->device))
        return "device must be 1 to 95 printable ASCII characters";
    if (!is_name(e->family, sizeof e->family) || !is_name(e->variant, sizeof e->variant))
        return "family and variant must be names of A-Z a-z 0-9 _ - .";
    if (e->rows < 1 || e->rows > 512)
        return "rows must be in 1..512";
    if (e->batch_bucket < 0 || e->batch_bucket >= SNAPMLA_TUNING_BATCH_BUCKETS ||
        e->context_bucket < 0 || e->context_bucket >= SNAPMLA_TUNING_CONTEXT_BUCKETS)
        return "batch_bucket or context_bucket is not a bucket";
    if (e->num_splits < 0 || e->num_splits > 128 || e->runner_up_splits < 0 ||
        e->runner_up_splits > 128)
        return "num_splits and runner_up_splits must be in 0..128";
    if (!(e->us > 0) || !isfinite(e->us) || !(e->margin >= 0) || !isfinite(e->margin))
        return "us must be over 0 and margin 0 or more";
    if (e->runner_up[0] && !is_name(e->runner_up, sizeof e->runner_up))
        return "runner_up must be empty or a name of A-Z a-z 0-9 _ - .";
    size_t shapes = strnlen(e->shapes, sizeof e->shapes);
    if (shapes == sizeof e->shapes || strspn(e->shapes, "0123456789x,") != shapes)
        return "shapes must be BATCHxSEQLEN[,BATCHxSEQLEN...] in at most 63 characters";
    return NULL;
}

snapmla_status snapmla_tuning_db_create(const snapmla_tuning_entry *entries, size_t count,
                                        snapmla_tuning_db **out, snapmla_error *err)
{
    if (!out || (count && !entries))
        return snapmla_fail(err, SNAPMLA_ERR_INVALID_ARG,
                            "snapmla_tuning_db_create: out and entries must not be NULL");
    for (size_t i = 0; i < count; ++i) {
        const char *problem = entry_problem(&entries[i]);
        if (problem)
            return snapmla_fail(err, SNAPMLA_ERR_INVALID_ARG,
                                "snapmla_tuning_db_create: entries[%zu]: %s", i, problem);
    }
    snapmla_tuning_entry *copy = malloc((count ? count : 1) * sizeof *copy);
    if (copy && count)
        memcpy(copy, entries, count * sizeof *copy);
    return snapmla_tuning_db_adopt(strdup("tuning database"), copy, count, NULL, out, err);
}

size_t snapmla_tuning_db_count(const snapmla_tuning_db *db)
{
    return db ? db->count : 0;
}

const snapmla_tuning_entry *snapmla_tuning_db_entry(const snapmla_tuning_db *db, size_t index)
{
    return db && index < db->count ? &db->entries[index] : NULL;
}

void snapmla_tuning_db_free(snapmla_tuning_db *db)
{
    if (!db)
        return;
    free(db->source);
    free(db->entries);
    free(db);
}

const snapmla_tuning_entry *snapmla_tuning_lookup(const snapmla_tuning_db *db,
                                                  const snapmla_tuning_query *q)
{
    if (!db || !q || !q->device || !q->family)
        return NULL;
    snapmla_tuning_entry key;
    key.arch = q->arch;
    key.rows = q->rows;
    key.batch_bucket = snapmla_tuning_batch_bucket(q->batch);
    key.context_bucket = snapmla_tuning_context_bucket(q->context);
    if (key.batch_bucket < 0 || key.context_bucket < 0 ||
        strlen(q->device) >= sizeof key.device || strlen(q->family) >= sizeof key.family)
        return NULL;
    strcpy(key.device, q->device);
    strcpy(key.family, q->family);
    size_t lo = 0, hi = db->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = snapmla_tuning_key_compare(&db->entries[mid], &key);
        if (c == 0)
            return &db->entries[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* ---- merge --------------------------------------------------------------- */

typedef struct contender {
    const char *variant;
    int splits;
    double us;
} contender;

typedef struct sourced {
    const snapmla_tuning_entry *entry;
    size_t db;
} sourced;

static int by_key_then_db(const void *a, const void *b)
{
    const sourced *x = a, *y = b;
    int c = snapmla_tuning_key_compare(x->entry, y->entry);
    return c ? c : (x->db > y->db) - (x->db < y->db);
}

static int by_time(const void *a, const void *b)
{
    const contender *x = a, *y = b;
    if (x->us != y->us)
        return x->us < y->us ? -1 : 1;
    int c = strcmp(x->variant, y->variant);
    return c ? c : (x->splits > y->splits) - (x->splits < y->splits);
}

/* Adds a config unless it is there already, keeping its faster time. */
static void contend(contender *all, size_t *count, const char *variant, int splits, double us)
{
    for (size_t i = 0; i < *count; ++i)
        if (all[i].splits == splits && strcmp(all[i].variant, variant) == 0) {
            if (us < all[i].us)
                all[i].us = us;
            return;
        }
    all[(*count)++] = (contender){variant, splits, us};
}

static void report_conflict(const sourced *group, size_t n, const snapmla_tuning_db *const *dbs,
                            const contender *kept, snapmla_log_fn log, void *user)
{
    char message[SNAPMLA_ERROR_MAX], key[512];
    snapmla_tuning_key_text(group[0].entry, key, sizeof key);
    size_t used = (size_t)snprintf(message, sizeof message, "snapmla: merge: %s:", key);
    int shapes_differ = 0;
    for (size_t i = 0; i < n && used < sizeof message; ++i) {
        const snapmla_tuning_entry *e = group[i].entry;
        used += (size_t)snprintf(message + used, sizeof message - used, "%s %s has %s splits %d "
                                 "(%.1f us)", i ? "," : "", dbs[group[i].db]->source, e->variant,
                                 e->num_splits, e->us);
        shapes_differ |= strcmp(e->shapes, group[0].entry->shapes) != 0;
    }
    if (used < sizeof message)
        snprintf(message + used, sizeof message - used, "; kept %s splits %d%s", kept->variant,
                 kept->splits, shapes_differ ? " (the files measured different shapes)" : "");
    if (log)
        log(user, SNAPMLA_LOG_WARN, message);
}

/* One key's entries (n >= 1) -> one entry; returns 1 on a conflict. */
static int merge_group(const sourced *group, size_t n, const snapmla_tuning_db *const *dbs,
                       contender *scratch, snapmla_tuning_entry *out, snapmla_log_fn log,
                       void *user)
{
    size_t count = 0;
    int disagree = 0;
    for (size_t i = 0; i < n; ++i) {
        const snapmla_tuning_entry *e = group[i].entry;
        contend(scratch, &count, e->variant, e->num_splits, e->us);
        if (e->runner_up[0])
            contend(scratch, &count, e->runner_up, e->runner_up_splits, e->us * (1 + e->margin));
        disagree |= e->num_splits != group[0].entry->num_splits ||
                    strcmp(e->variant, group[0].entry->variant) != 0;
    }
    qsort(scratch, count, sizeof *scratch, by_time);
    const snapmla_tuning_entry *from = group[0].entry;   /* the winner's entry, for its shapes */
    for (size_t i = 0; i < n; ++i)
        if (group[i].entry->us == scratch[0].us && group[i].entry->num_splits == scratch[0].splits &&
            strcmp(group[i].entry->variant, scratch[0].variant) == 0) {
            from = group[i].entry;
            break;
        }
    *out = *from;
    out->runner_up[0] = '\0';
    out->runner_up_splits = 0;
    out->margin = 0;
    if (count > 1) {
        snprintf(out->runner_up, sizeof out->runner_up, "%s", scratch[1].variant);
        out->runner_up_splits = scratch[1].splits;
        out->margin = scratch[1].us / scratch[0].us - 1;
    }
    if (disagree)
        report_conflict(group, n, dbs, &scratch[0], log, user);
    return disagree;
}

snapmla_status snapmla_tuning_db_merge(const snapmla_tuning_db *const *dbs, size_t count,
                                       snapmla_log_fn log, void *log_user, size_t *conflicts,
                                       snapmla_tuning_db **out, snapmla_error *err)
{
    if (!out || (count && !dbs))
        return snapmla_fail(err, SNAPMLA_ERR_INVALID_ARG,
                            "snapmla_tuning_db_merge: dbs and out must not be NULL");
    size_t total = 0;
    for (size_t i = 0; i < count; ++i) {
        if (!dbs[i])
            return snapmla_fail(err, SNAPMLA_ERR_INVALID_ARG,
                                "snapmla_tuning_db_merge: dbs[%zu] is NULL", i);
        total += dbs[i]->count;
    }
    sourced *all = calloc(total ? total : 1, sizeof *all);
    contender *scratch = calloc(2 * total + 1, sizeof *scratch);
    snapmla_tuning_entry *merged = calloc(total ? total : 1, sizeof *merged);
    if (!all || !scratch || !merged) {
        free(all);
        free(scratch);
        free(merged);
        return snapmla_fail(err, SNAPMLA_ERR_NOMEM, "out of memory merging tuning databases");
    }
    size_t n = 0, kept = 0, disagreements = 0;
    for (size_t i = 0; i < count; ++i)
        for (size_t k = 0; k < dbs[i]->count; ++k)
            all[n++] = (sourced){&dbs[i]->entries[k], i};
    qsort(all, n, sizeof *all, by_key_then_db);
    for (size_t first = 0, end; first < n; first = end) {
        end = first + 1;
        while (end < n && snapmla_tuning_key_compare(all[first].entry, all[end].entry) == 0)
            end++;
        disagreements += (size_t)merge_group(&all[first], end - first, dbs, scratch,
                                             &merged[kept++], log, log_user);
    }
    free(all);
    free(scratch);
    if (conflicts)
        *conflicts = disagreements;
    return snapmla_tuning_db_adopt(strdup("merged tuning database"), merged, kept, NULL, out, err);
}
