/* Tuned dispatch, between the tuning database and the launch: at creation,
 * every (batch, context) bucket is resolved once to a candidate kernel and a
 * split count; a call then costs two bucket computations and a table read
 * (no allocation, no lock), then snapmla_decode. */
#include "dispatch.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "error.h"
#include "tuning_db.h"

enum { B = SNAPMLA_TUNING_BATCH_BUCKETS, C = SNAPMLA_TUNING_CONTEXT_BUCKETS };

typedef struct dispatch_cell {
    int candidate;
    int num_splits;
    snapmla_dispatch_source source;
    int from_batch, from_context;   /* the bucket whose entry decided */
    double us;
    atomic_int logged;              /* first use of the bucket logged */
} dispatch_cell;

struct snapmla_dispatch {
    int count;
    snapmla_variant *variants;
    snapmla_kernel **kernels;       /* NULL when built from variants only */
    char family[SNAPMLA_FAMILY_MAX];
    char device[SNAPMLA_DEVICE_NAME_MAX];
    int log_dispatch;
    snapmla_log_fn log;
    void *log_user;
    int from_database;              /* entries of this family and device found */
    dispatch_cell cells[B][C];
};

void snapmla_dispatch_free(snapmla_dispatch *d)
{
    if (!d)
        return;
    free(d->variants);
    free(d->kernels);
    free(d);
}

static void say(const snapmla_dispatch *d, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static void say(const snapmla_dispatch *d, const char *format, ...)
{
    if (!d->log_dispatch)
        return;
    va_list args;
    va_start(args, format);
    snapmla_log_line(d->log, d->log_user, SNAPMLA_LOG_INFO, format, args);
    va_end(args);
}

/* ---- building the table --------------------------------------------------- */

static snapmla_status check_candidates(snapmla_dispatch *d, const snapmla_variant *const *variants,
                                       snapmla_error *err)
{
    const snapmla_variant *first = variants[0];
    snapmla_variant_family(first, d->family);
    for (int i = 0; i < d->count; ++i) {
        const snapmla_variant *v = variants[i];
        char family[SNAPMLA_FAMILY_MAX];
        if (!v || v->kernel != SNAPMLA_KERNEL_MLA_DECODE)
            return snapmla_fail(err, SNAPMLA_ERR_INVALID_ARG, "snapmla_dispatch_create: "
                                "candidate %d is not an mla_decode kernel", i);
        snapmla_variant_family(v, family);
        if (strcmp(family, d->family) != 0 || v->q_heads != first->q_heads || v->arch != first->arch)
            return snapmla_fail(err, SNAPMLA_ERR_INVALID_ARG, "snapmla_dispatch_create: candidate "
                                "%d '%s' is %s with %d heads for %s; the first is %s with %d heads "
                                "for %s: a dispatcher serves one family, head count and arch", i,
                                v->name, family, v->q_heads, snapmla_arch_name(v->arch), d->family,
                                first->q_heads, snapmla_arch_name(first->arch));
        d->variants[i] = *v;
    }
    return SNAPMLA_OK;
}

static int find_candidate(const snapmla_dispatch *d, const snapmla_tuning_entry *e)
{
    for (int i = 0; i < d->count; ++i)
        if (strcmp(d->variants[i].name, e->variant) == 0 &&
            e->num_splits <= d->variants[i].max_splits)
            return i;
    return -1;
}

/* The database's entries for this family: each bucket gets its winner when
 * the winner is a candidate. */
static void fill_tuned(snapmla_dispatch *d, const snapmla_tuning_db *db)
{
    snapmla_tuning_entry key = {.arch = d->variants[0].arch, .rows = d->variants[0].q_heads *
                                                                     d->variants[0].q_len};
    snprintf(key.device, sizeof key.device, "%s", d->device);
    snprintf(key.family, sizeof key.family, "%s", d->family);
    for (size_t i = 0; db && i < db->count; ++i) {
        const snapmla_tuning_entry *e = &db->entries[i];
        key.batch_bucket = e->batch_bucket;
        key.context_bucket = e->context_bucket;
        if (snapmla_tuning_key_compare(e, &key) != 0)
            continue;
        d->from_database = 1;
        int candidate = find_candidate(d, e);
        char batch[24], context[32];
        snapmla_tuning_batch_label(e->batch_bucket, batch, sizeof batch);
        snapmla_tuning_context_label(e->context_bucket, context, sizeof context);
        if (candidate < 0) {
            say(d, "snapmla: dispatch: the database's winner for batch %s, context %s, '%s' "
                "splits %d, is not among the candidates; that bucket is filled like an "
                "untuned one", batch, context, e->variant, e->num_splits);
            continue;
        }
        dispatch_cell *cell = &d->cells[e->batch_bucket][e->context_bucket];
        cell->candidate = candidate;
        cell->num_splits = e->num_splits;
        cell->source = SNAPMLA_DISPATCH_TUNED;
        cell->from_batch = e->batch_bucket;
        cell->from_context = e->context_bucket;
        cell->us = e->us;
    }
}

static int distance(int b, int c, int b2, int c2)
{
    return abs(b - b2) + abs(c - c2);
}

/* Untuned buckets take the nearest tuned bucket's choice (fewest bucket
 * steps in batch plus context; on a tie, the fewest in batch). */
static void fill_nearest(snapmla_dispatch *d)
{
    for (int b = 0; b < B; ++b)
        for (int c = 0; c < C; ++c) {
            dispatch_cell *cell = &d->cells[b][c];
            if (cell->source == SNAPMLA_DISPATCH_TUNED)
                continue;
            const dispatch_cell *best = NULL;
            for (int b2 = 0; b2 < B; ++b2)
                for (int c2 = 0; c2 < C; ++c2) {
                    const dispatch_cell *t = &d->cells[b2][c2];
                    if (t->source != SNAPMLA_DISPATCH_TUNED)
                        continue;
                    int dist = distance(b, c, b2, c2), old = best ? distance(b, c, best->from_batch, best->from_context) : 0;
                    if (!best || dist < old ||
                        (dist == old && abs(b - b2) < abs(b - best->from_batch)))
                        best = t;
                }
            if (best) {
                cell->candidate = best->candidate;
                cell->num_splits = best->num_splits;
                cell->source = SNAPMLA_DISPATCH_NEAREST;
                cell->from_batch = best->from_batch;
                cell->from_context = best->from_context;
                cell->us = best->us;
            }
        }
}

snapmla_status snapmla_dispatch_build(const snapmla_tuning_db *db,
                                      const snapmla_variant *const *variants,
                                      snapmla_kernel *const *kernels, int count,
                                      const char *device, snapmla_log_fn log, void *log_user,
                                      snapmla_dispatch **out, snapmla_error *err)
{
    if (!variants || count < 1 || !device || !out)
        return snapmla_fail(err, SNAPMLA_ERR_INVALID_ARG, "snapmla_dispatch_create: candidates "
                            "(at least one), device and out must not be NULL");
    snapmla_dispatch *d = calloc(1, sizeof *d);
    if (d)
        d->variants = calloc((size_t)count, sizeof *d->variants);
    if (d && kernels)
        d->kernels = calloc((size_t)count, sizeof *d->kernels);
    if (!d || !d->variants || (kernels && !d->kernels)) {
        snapmla_dispatch_free(d);
        return snapmla_fail(err, SNAPMLA_ERR_NOMEM, "out of memory creating a dispatcher");
    }
    d->count = count;
    snprintf(d->device, sizeof d->device, "%s", device);
    d->log = log;
    d->log_user = log_user;
    d->log_dispatch = db ? db->log_dispatch : snapmla_tuning_env_logs_dispatch();
    snapmla_status s = check_candidates(d, variants, err);
    if (s != SNAPMLA_OK) {
        snapmla_dispatch_free(d);
        return s;
    }
    for (int i = 0; kernels && i < count; ++i)
        d->kernels[i] = kernels[i];
    fill_tuned(d, db);
    fill_nearest(d);
    int tuned = 0;
    for (int b = 0; b < B; ++b)
        for (int c = 0; c < C; ++c)
            tuned += d->cells[b][c].source == SNAPMLA_DISPATCH_TUNED;
    say(d, "snapmla: dispatch: %d candidate%s of %s, %d heads, %s on '%s': %d of %d buckets "
        "tuned, %s", count, count == 1 ? "" : "s", d->family, d->variants[0].q_heads,
        snapmla_arch_name(d->variants[0].arch), d->device, tuned, B * C,
        tuned ? "the others from the nearest tuned bucket" : "all on the default (first candidate)");
    *out = d;
    return snapmla_ok(err);
}

/* ---- choosing ------------------------------------------------------------ */

static const dispatch_cell *cell_of(const snapmla_dispatch *d, int batch, int64_t context)
{
    int b = snapmla_tuning_batch_bucket(batch), c = snapmla_tuning_context_bucket(context);
    return &d->cells[b < 0 ? 0 : b][c < 0 ? 0 : c];
}

void snapmla_dispatch_describe(const snapmla_dispatch *d, int batch, int64_t context, char *out,
                               size_t size)
{
    const dispatch_cell *cell = cell_of(d, batch, context);
    int b = snapmla_tuning_batch_bucket(batch), c = snapmla_tuning_context_bucket(context);
    char bl[24], cl[32], why[160];
    snapmla_tuning_batch_label(b < 0 ? 0 : b, bl, sizeof bl);
    snapmla_tuning_context_label(c < 0 ? 0 : c, cl, sizeof cl);
    if (cell->source == SNAPMLA_DISPATCH_DEFAULT) {
        snprintf(why, sizeof why, "default: %s", d->from_database ? "no usable entry for this "
                 "family, heads and device" : "the database has no entry for this family, heads "
                 "and device");
    } else {
        char fb[24], fc[32];
        snapmla_tuning_batch_label(cell->from_batch, fb, sizeof fb);
        snapmla_tuning_context_label(cell->from_context, fc, sizeof fc);
        snprintf(why, sizeof why, "%s %s, %s: %.1f us",
                 cell->source == SNAPMLA_DISPATCH_TUNED ? "tuned at" : "nearest tuned bucket",
                 fb, fc, cell->us);
    }
    snprintf(out, size, "batch %d, context %lld (buckets %s, %s): %s splits %d (%s)", batch,
             (long long)context, bl, cl, d->variants[cell->candidate].name, cell->num_splits, why);
}

int snapmla_dispatch_pick(snapmla_dispatch *d, int batch, int64_t context, int *num_splits,
                          snapmla_dispatch_source *source)
{
    dispatch_cell *cell = (dispatch_cell *)cell_of(d, batch, context);
    if (d->log_dispatch && d->log && atomic_load_explicit(&cell->logged, memory_order_relaxed) == 0 &&
        atomic_exchange(&cell->logged, 1) == 0) {   /* a read, not a write, once logged */
        char line[SNAPMLA_ERROR_MAX - 32];
        snapmla_dispatch_describe(d, batch, context, line, sizeof line);
        say(d, "snapmla: dispatch: %s", line);
    }
    if (num_splits)
        *num_splits = cell->num_splits;
    if (source)
        *source = cell->source;
    return cell->candidate;
}

/* ---- with kernels --------------------------------------------------------- */

static snapmla_status device_name(snapmla_kernel *k, char *out, size_t size, snapmla_error *err)
{
    const snapmla_driver *d = &k->owner->driver;
    CUcontext current = NULL;
    CUdevice device;
    snapmla_status s = SNAPMLA_CU(d, cuCtxGetCurrent(&current), err);
    if (s == SNAPMLA_OK && current != k->cuda_context)
        return snapmla_fail(err, SNAPMLA_ERR_INVALID_ARG, "snapmla_dispatch_create: the kernels "
                            "were loaded on another CUDA context than the current one");
    if (s == SNAPMLA_OK)
        s = SNAPMLA_CU(d, cuCtxGetDevice(&device), err);
    if (s == SNAPMLA_OK)
        s = SNAPMLA_CU(d, cuDeviceGetName(out, (int)size, device), err);
    return s;
}

snapmla_status snapmla_dispatch_create(const snapmla_tuning_db *db,
                                       snapmla_kernel *const *candidates, int count,
                                       const char *device, snapmla_dispatch **out,
                                       snapmla_error *err)
{
    if (!candidates || count < 1 || count > 4096 || !out)
        return snapmla_fail(err, SNAPMLA_ERR_INVALID_ARG, "snapmla_dispatch_create: candidates "
                            "(1 to 4096) and out must not be NULL");
    const snapmla_variant **variants = calloc((size_t)count, sizeof *variants);
    if (!variants)
        return snapmla_fail(err, SNAPMLA_ERR_NOMEM, "out of memory creating a dispatcher");
    snapmla_status s = SNAPMLA_OK;
    for (int i = 0; i < count && s == SNAPMLA_OK; ++i)
        if (!candidates[i] || candidates[i]->owner != candidates[0]->owner ||
            candidates[i]->cuda_context != candidates[0]->cuda_context)
            s = snapmla_fail(err, SNAPMLA_ERR_INVALID_ARG, "snapmla_dispatch_create: candidate %d "
                             "is NULL or from another snapmla or CUDA context than the first", i);
        else
            variants[i] = &candidates[i]->variant;
    char name[SNAPMLA_DEVICE_NAME_MAX] = "";
    if (s == SNAPMLA_OK && !device && (s = device_name(candidates[0], name, sizeof name, err)) == SNAPMLA_OK)
        device = name;
    if (s == SNAPMLA_OK) {
        const snapmla_context *ctx = candidates[0]->owner;
        s = snapmla_dispatch_build(db, variants, candidates, count, device, ctx->log,
                                   ctx->log_user, out, err);
    }
    free(variants);
    return s;
}

snapmla_dispatch_choice snapmla_dispatch_select(snapmla_dispatch *d, int batch, int64_t context)
{
    snapmla_dispatch_choice choice = {NULL, 0, SNAPMLA_DISPATCH_DEFAULT};
    if (!d)
        return choice;
    int i = snapmla_dispatch_pick(d, batch, context, &choice.num_splits, &choice.source);
    choice.kernel = d->kernels ? d->kernels[i] : NULL;
    return choice;
}

size_t snapmla_dispatch_workspace_bytes(const snapmla_dispatch *d, int batch)
{
    size_t most = 0;
    for (int i = 0; d && d->kernels && i < d->count; ++i) {
        size_t bytes = snapmla_decode_workspace_bytes(d->kernels[i], batch);
        most = bytes > most ? bytes : most;
    }
    return most;
}

snapmla_status snapmla_decode_tuned(snapmla_dispatch *d, int64_t context,
                                    const snapmla_decode_args *args, void *stream,
                                    snapmla_error *err)
{
    if (!d || !args || !d->kernels)
        return snapmla_fail(err, SNAPMLA_ERR_INVALID_ARG, "snapmla_decode_tuned: dispatch (made "
                            "by snapmla_dispatch_create) and args must not be NULL");
    snapmla_dispatch_choice choice = snapmla_dispatch_select(d, args->batch, context);
    snapmla_decode_args a = *args;
    if (a.num_splits == 0)
        a.num_splits = choice.num_splits;
    return snapmla_decode(choice.kernel, &a, stream, err);
}
