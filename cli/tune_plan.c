/* The tune plan: which configs (variant x split count) of which shard are
 * timed on which shapes, and how their measurements become database
 * entries (the winner per family, rows and shape bucket). No GPU needed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tune.h"

/* ---- option texts --------------------------------------------------------- */

/* "1/8/128" -> values; returns the count, 0 on bad text. */
static int parse_set(const char *text, size_t length, int lo, int hi, int *values, int max)
{
    int count = 0;
    const char *p = text, *end = text + length;
    while (p < end) {
        long value = 0;
        const char *digits = p;
        while (p < end && *p >= '0' && *p <= '9' && value <= hi)
            value = value * 10 + (*p++ - '0');
        if (p == digits || value < lo || value > hi || count == max)
            return 0;
        values[count++] = (int)value;
        if (p < end && (*p != '/' || ++p == end))
            return 0;
    }
    return count;
}

static int add_shape(tune_shape *shapes, int *count, int batch, int seqlen, char *why, size_t size)
{
    for (int i = 0; i < *count; ++i)
        if (shapes[i].batch == batch && shapes[i].seqlen == seqlen) {
            snprintf(why, size, "--shapes: %dx%d is given twice", batch, seqlen);
            return 0;
        }
    if (*count == TUNE_MAX_SHAPES) {
        snprintf(why, size, "--shapes: more than %d shapes", TUNE_MAX_SHAPES);
        return 0;
    }
    shapes[(*count)++] = (tune_shape){batch, seqlen};
    return 1;
}

int tune_parse_shapes(const char *text, tune_shape *shapes, int *count, char *why, size_t size)
{
    *count = 0;
    const char *p = text;
    snprintf(why, size, "--shapes takes BATCHxSEQLEN[,BATCHxSEQLEN...] (each side may be a "
             "'/'-separated set: 1/8x4096/16384), batch 1..65535, seqlen 1..4194304");
    while (*p) {
        size_t item = strcspn(p, ","), cross = strcspn(p, "x");
        int batches[TUNE_MAX_SHAPES], seqlens[TUNE_MAX_SHAPES];
        if (cross >= item)
            return 0;
        int nb = parse_set(p, cross, 1, 65535, batches, TUNE_MAX_SHAPES);
        int ns = parse_set(p + cross + 1, item - cross - 1, 1, 1 << 22, seqlens, TUNE_MAX_SHAPES);
        if (!nb || !ns)
            return 0;
        for (int b = 0; b < nb; ++b)
            for (int s = 0; s < ns; ++s)
                if (!add_shape(shapes, count, batches[b], seqlens[s], why, size))
                    return 0;
        p += item;
        if (*p == ',' && *++p == '\0')
            return 0;
    }
    return *count > 0;
}

int tune_parse_shard(const char *text, int *index, int *count)
{
    int i, n, used = 0;
    if (sscanf(text, "%4d/%4d%n", &i, &n, &used) != 2 || text[used] != '\0' || text[0] < '0' ||
        text[0] > '9' || n < 1 || n > 1024 || i < 0 || i >= n)
        return 0;
    *index = i;
    *count = n;
    return 1;
}

int tune_parse_splits(const char *text, int *splits, int *count)
{
    *count = 0;
    for (const char *p = text; *p;) {
        size_t item = strcspn(p, ",");
        int value;
        if (parse_set(p, item, 0, 128, &value, 1) != 1 || *count == TUNE_MAX_SPLITS)
            return 0;
        for (int i = 0; i < *count; ++i)
            if (splits[i] == value)
                return 0;
        splits[(*count)++] = value;
        p += item;
        if (*p == ',' && *++p == '\0')
            return 0;
    }
    return *count > 0;
}

/* ---- the plan ------------------------------------------------------------- */

void tune_plan_free(tune_plan *plan)
{
    free(plan->variants);
    free(plan->configs);
    free(plan->us);
    memset(plan, 0, sizeof *plan);
}

/* Whether variant i of specs[s] has the name of an earlier decode variant. */
static int seen_before(snapmla_spec *const *specs, int s, size_t i)
{
    const char *name = specs[s]->variants[i].name;
    for (int t = 0; t <= s; ++t)
        for (size_t k = 0; k < (t == s ? i : specs[t]->count); ++k)
            if (strcmp(specs[t]->variants[k].name, name) == 0)
                return 1;
    return 0;
}

int tune_plan_make(snapmla_spec *const *specs, int spec_count, const int *splits,
                   int split_count, int shard, int shards, const tune_shape *shapes,
                   int shape_count, tune_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    size_t total = 0;
    for (int s = 0; s < spec_count; ++s)
        total += specs[s]->count;
    plan->variants = calloc(total ? total : 1, sizeof *plan->variants);
    plan->configs = calloc((total ? total : 1) * (size_t)split_count, sizeof *plan->configs);
    if (!plan->variants || !plan->configs) {
        tune_plan_free(plan);
        return 0;
    }
    for (int s = 0; s < spec_count; ++s)
        for (size_t i = 0; i < specs[s]->count; ++i) {
            const snapmla_variant *v = &specs[s]->variants[i];
            if (v->kernel != SNAPMLA_KERNEL_MLA_DECODE) {
                plan->other_kernels++;
                continue;
            }
            if (seen_before(specs, s, i))
                continue;   /* a variant given twice is tuned once */
            if (plan->sweep_count++ % (size_t)shards != (size_t)shard)
                continue;
            plan->variants[plan->variant_count++] = v;
            for (int k = 0; k < split_count; ++k)
                if (splits[k] <= v->max_splits)
                    plan->configs[plan->config_count++] = (tune_config){.variant = v,
                                                                        .splits = splits[k]};
        }
    plan->shape_count = shape_count;
    memcpy(plan->shapes, shapes, (size_t)shape_count * sizeof *shapes);
    plan->us = calloc((plan->config_count ? plan->config_count : 1) * (size_t)shape_count,
                      sizeof *plan->us);
    if (!plan->us) {
        tune_plan_free(plan);
        return 0;
    }
    return 1;
}

void tune_reject(tune_config *config, const char *reason)
{
    config->state = TUNE_REJECTED;
    snprintf(config->reason, sizeof config->reason, "%s", reason);
    for (char *p = config->reason; *p; ++p)   /* one line, one log field */
        if (*p == '\t' || *p == '\n' || *p == '\r')
            *p = ' ';
}

long tune_plan_find(const tune_plan *plan, const char *variant, int splits)
{
    for (size_t i = 0; i < plan->config_count; ++i)
        if (plan->configs[i].splits == splits && strcmp(plan->configs[i].variant->name, variant) == 0)
            return (long)i;
    return -1;
}

int tune_plan_shape(const tune_plan *plan, int batch, int seqlen)
{
    for (int i = 0; i < plan->shape_count; ++i)
        if (plan->shapes[i].batch == batch && plan->shapes[i].seqlen == seqlen)
            return i;
    return -1;
}

size_t tune_plan_pending(const tune_plan *plan)
{
    size_t pending = 0;
    for (size_t c = 0; c < plan->config_count; ++c)
        for (int s = 0; s < plan->shape_count && plan->configs[c].state != TUNE_REJECTED; ++s)
            pending += plan->us[c * (size_t)plan->shape_count + (size_t)s] <= 0;
    return pending;
}

/* ---- measurements -> entries ----------------------------------------------- */

typedef struct scored {
    size_t config;
    double us;
} scored;

static int by_score(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    if (x->us != y->us)
        return x->us < y->us ? -1 : 1;
    return (x->config > y->config) - (x->config < y->config);
}

/* Geometric mean of config c over the shapes in `in` (1 when the shape is in
 * the bucket); 0 when one of them is not measured. */
static double score(const tune_plan *plan, size_t c, const int *in)
{
    double logs = 0;
    int n = 0;
    for (int s = 0; s < plan->shape_count; ++s) {
        if (!in[s])
            continue;
        double us = plan->us[c * (size_t)plan->shape_count + (size_t)s];
        if (us <= 0)
            return 0;
        logs += log(us);
        n++;
    }
    return n ? exp(logs / n) : 0;
}

static void shapes_text(const tune_plan *plan, const int *in, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (int s = 0; s < plan->shape_count; ++s) {
        char one[32];
        if (!in[s])
            continue;
        int n = snprintf(one, sizeof one, "%s%dx%d", used ? "," : "", plan->shapes[s].batch,
                         plan->shapes[s].seqlen);
        if (used + (size_t)n >= size)
            break;
        memcpy(out + used, one, (size_t)n + 1);
        used += (size_t)n;
    }
}

static int same_key(const snapmla_variant *a, const snapmla_variant *b)
{
    char fa[SNAPMLA_FAMILY_MAX], fb[SNAPMLA_FAMILY_MAX];
    snapmla_variant_family(a, fa);
    snapmla_variant_family(b, fb);
    return strcmp(fa, fb) == 0 && a->q_heads * a->q_len == b->q_heads * b->q_len &&
           a->arch == b->arch;
}

/* The entry of the configs sharing config `lead`'s key, in one bucket. */
static int bucket_entry(const tune_plan *plan, size_t lead, const int *in, scored *pool,
                        snapmla_tuning_entry *e)
{
    size_t n = 0;
    for (size_t c = 0; c < plan->config_count; ++c) {
        double us;
        if (plan->configs[c].state != TUNE_CHECKED ||
            !same_key(plan->configs[c].variant, plan->configs[lead].variant) ||
            (us = score(plan, c, in)) <= 0)
            continue;
        pool[n++] = (scored){c, us};
    }
    if (n == 0)
        return 0;
    qsort(pool, n, sizeof *pool, by_score);
    const tune_config *win = &plan->configs[pool[0].config];
    snprintf(e->variant, sizeof e->variant, "%s", win->variant->name);
    e->num_splits = win->splits;
    e->us = pool[0].us;
    if (n > 1) {
        const tune_config *second = &plan->configs[pool[1].config];
        snprintf(e->runner_up, sizeof e->runner_up, "%s", second->variant->name);
        e->runner_up_splits = second->splits;
        e->margin = pool[1].us / pool[0].us - 1;
    }
    shapes_text(plan, in, e->shapes, sizeof e->shapes);
    return 1;
}

int tune_plan_entries(const tune_plan *plan, const char *device, snapmla_arch arch,
                      snapmla_tuning_entry **entries, size_t *count)
{
    size_t cap = plan->config_count * (size_t)plan->shape_count + 1;
    *entries = calloc(cap, sizeof **entries);
    scored *pool = calloc(plan->config_count + 1, sizeof *pool);
    int *in = calloc((size_t)plan->shape_count + 1, sizeof *in);
    *count = 0;
    if (!*entries || !pool || !in) {
        free(*entries);
        free(pool);
        free(in);
        *entries = NULL;
        return 0;
    }
    for (size_t lead = 0; lead < plan->config_count; ++lead) {
        int first = 1;   /* the first config of its key leads it */
        for (size_t c = 0; c < lead && first; ++c)
            first = !same_key(plan->configs[c].variant, plan->configs[lead].variant);
        if (!first || plan->configs[lead].variant->arch != arch)
            continue;
        for (int b = 0; b < SNAPMLA_TUNING_BATCH_BUCKETS; ++b)
            for (int k = 0; k < SNAPMLA_TUNING_CONTEXT_BUCKETS; ++k) {
                int any = 0;
                for (int s = 0; s < plan->shape_count; ++s) {
                    in[s] = snapmla_tuning_batch_bucket(plan->shapes[s].batch) == b &&
                            snapmla_tuning_context_bucket(plan->shapes[s].seqlen) == k;
                    any |= in[s];
                }
                snapmla_tuning_entry e = {.arch = arch, .rows = 0};
                if (!any || !bucket_entry(plan, lead, in, pool, &e))
                    continue;
                const snapmla_variant *v = plan->configs[lead].variant;
                snprintf(e.device, sizeof e.device, "%s", device);
                snapmla_variant_family(v, e.family);
                e.rows = v->q_heads * v->q_len;
                e.batch_bucket = b;
                e.context_bucket = k;
                (*entries)[(*count)++] = e;
            }
    }
    free(pool);
    free(in);
    return 1;
}
