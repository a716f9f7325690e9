/* The GPU phase of `snapmla tune`: every config is checked against the host
 * reference, then timed per shape (graph replays, median, L2 cold), each
 * result appended to the measurement log as it is taken, with a progress
 * line and the time left on stderr. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "decode_timing.h"
#include "monotonic.h"
#include "tune.h"
#include "tune_gpu.h"

typedef struct progress {
    size_t checks_left, checks_done, timings_left, timings_done;
    double check_seconds, timing_seconds, start;
} progress;

static void duration(double seconds, char *out, size_t size)
{
    if (seconds < 90)
        snprintf(out, size, "%.0f s", seconds);
    else if (seconds < 5400)
        snprintf(out, size, "%.1f min", seconds / 60);
    else
        snprintf(out, size, "%.1f h", seconds / 3600);
}

/* "[12/96] 1.5 min elapsed, about 9.8 min left" */
static void progress_text(const progress *p, char *out, size_t size)
{
    size_t done = p->checks_done + p->timings_done;
    size_t total = done + p->checks_left + p->timings_left;
    double per_check = p->checks_done ? p->check_seconds / (double)p->checks_done : 0;
    double per_timing = p->timings_done ? p->timing_seconds / (double)p->timings_done : per_check;
    double left = per_check * (double)p->checks_left + per_timing * (double)p->timings_left;
    char elapsed[32], rest[32];
    duration(snapmla_seconds_now() - p->start, elapsed, sizeof elapsed);
    duration(left, rest, sizeof rest);
    snprintf(out, size, "[%zu/%zu] %s elapsed, %s%s left", done, total, elapsed,
             done ? "about " : "", done ? rest : "unknown time");
}

static double *slot(const tune_plan *plan, size_t c, int s)
{
    return &plan->us[c * (size_t)plan->shape_count + (size_t)s];
}

static size_t unmeasured(const tune_plan *plan, size_t c)
{
    size_t n = 0;
    for (int s = 0; s < plan->shape_count; ++s)
        n += *slot(plan, c, s) <= 0;
    return n;
}

/* After a failed CUDA call: can this process go on? */
static int context_alive(snapmla_context *ctx)
{
    return ctx->driver.cuCtxSynchronize() == CUDA_SUCCESS;
}

/* Returns 1 when the run may go on after a failed config. */
static int may_go_on(const tune_gpu_run *run)
{
    if (context_alive(run->ctx))
        return 1;
    fprintf(stderr, "snapmla: the CUDA context is lost after that error; run the same command "
                    "again to resume from %s (the config that failed is recorded)\n",
            run->log_path);
    return 0;
}

static int record(const tune_gpu_run *run, const char *kind, const tune_config *c,
                  const tune_shape *shape, double us)
{
    snapmla_error err;
    if (tune_log_append(run->log, kind, c, shape, us, &err) == SNAPMLA_OK)
        return 1;
    cli_report(&err);
    return 0;
}

/* Checks one config; returns 0 when the run must stop. */
static int check_config(const tune_gpu_run *run, size_t index, progress *p)
{
    tune_config *c = &run->plan->configs[index];
    double start = snapmla_seconds_now();
    snapmla_error err = {SNAPMLA_OK, ""};
    snapmla_kernel *kernel;
    int passed = 0;
    char reason[TUNE_REASON_MAX];
    if (!record(run, "checking", c, NULL, 0))
        return 0;
    snapmla_status s = snapmla_kernel_get(run->ctx, c->variant, &kernel, &err);
    if (s == SNAPMLA_OK)
        s = tune_check(run->ctx, kernel, c->splits, 1000 + index, &passed, reason, sizeof reason, &err);
    if (s != SNAPMLA_OK)
        snprintf(reason, sizeof reason, "%s", err.message);
    if (passed) {
        c->state = TUNE_CHECKED;
    } else {
        tune_reject(c, reason);
        p->timings_left -= unmeasured(run->plan, index);   /* never timed */
    }
    p->checks_done++;
    p->checks_left--;
    p->check_seconds += snapmla_seconds_now() - start;
    char line[160];
    progress_text(p, line, sizeof line);
    fprintf(stderr, "tune %s: check %s splits %d: %s: %s\n", line, c->variant->name, c->splits,
            passed ? "PASS" : "REJECTED", reason);
    if (!record(run, passed ? "checked" : "rejected", c, NULL, 0))
        return 0;
    return s == SNAPMLA_OK || may_go_on(run);
}

static int same_problem(const snapmla_variant *a, const snapmla_variant *b)
{
    char fa[SNAPMLA_FAMILY_MAX], fb[SNAPMLA_FAMILY_MAX];
    snapmla_variant_family(a, fa);
    snapmla_variant_family(b, fb);
    return strcmp(fa, fb) == 0 && a->q_heads == b->q_heads;
}


/* Times one config on the shape whose buffers are p; 0 when the run must stop. */
static int time_config(const tune_gpu_run *run, size_t index, int s, const cli_decode_problem *prob,
                       progress *p)
{
    const tune_plan *plan = run->plan;
    tune_config *c = &plan->configs[index];
    double start = snapmla_seconds_now();
    snapmla_error err = {SNAPMLA_OK, ""};
    snapmla_kernel *kernel;
    cli_decode_timing t;
    int ok = snapmla_kernel_get(run->ctx, c->variant, &kernel, &err) == SNAPMLA_OK &&
             cli_decode_time(kernel, prob, run->replays, c->splits, 0, &run->flush, NULL, &t, &err);
    p->timings_done++;
    p->timings_left--;
    p->timing_seconds += snapmla_seconds_now() - start;
    char line[160];
    progress_text(p, line, sizeof line);
    if (!ok) {
        tune_reject(c, err.message);
        p->timings_left -= unmeasured(plan, index) - 1;   /* this one is counted done */
        fprintf(stderr, "tune %s: %s splits %d %dx%d: REJECTED: %s\n", line, c->variant->name,
                c->splits, prob->batch, prob->seqlen, c->reason);
        return record(run, "rejected", c, NULL, 0) && may_go_on(run);
    }
    *slot(plan, index, s) = t.us;
    fprintf(stderr, "tune %s: %s splits %d %dx%d: %.1f us, %.2f TB/s\n", line, c->variant->name,
            c->splits, prob->batch, prob->seqlen, t.us, t.tbps);
    return record(run, "measured", c, &plan->shapes[s], t.us);
}

/* All configs sharing lead's problem (family and heads) on shape s: the
 * buffers are made once and shared. */
static int time_shape(const tune_gpu_run *run, size_t lead, int s, progress *p)
{
    const tune_plan *plan = run->plan;
    int wanted = 0;
    for (size_t c = lead; c < plan->config_count; ++c)
        wanted |= same_problem(plan->configs[c].variant, plan->configs[lead].variant) &&
                  plan->configs[c].state == TUNE_CHECKED && *slot(plan, c, s) <= 0;
    if (!wanted)
        return 1;
    cli_decode_problem prob;
    snapmla_error err;
    if (!cli_decode_problem_make(run->ctx, plan->configs[lead].variant, plan->shapes[s].batch,
                                 plan->shapes[s].seqlen, &prob, &err))
        return 0;
    int ok = 1;
    for (size_t c = lead; ok && c < plan->config_count; ++c)
        if (same_problem(plan->configs[c].variant, plan->configs[lead].variant) &&
            plan->configs[c].state == TUNE_CHECKED && *slot(plan, c, s) <= 0)
            ok = time_config(run, c, s, &prob, p);
    cli_decode_problem_free(&prob);
    return ok;
}

int tune_gpu(const tune_gpu_run *run)
{
    tune_plan *plan = run->plan;
    progress p = {.start = snapmla_seconds_now()};
    for (size_t c = 0; c < plan->config_count; ++c) {
        p.checks_left += plan->configs[c].state == TUNE_UNCHECKED;
        for (int s = 0; s < plan->shape_count && plan->configs[c].state != TUNE_REJECTED; ++s)
            p.timings_left += *slot(plan, c, s) <= 0;
    }
    for (size_t c = 0; c < plan->config_count; ++c)
        if (plan->configs[c].state == TUNE_UNCHECKED && !check_config(run, c, &p))
            return CLI_FAILED;
    for (size_t lead = 0; lead < plan->config_count; ++lead) {
        int first = 1;
        for (size_t c = 0; c < lead && first; ++c)
            first = !same_problem(plan->configs[c].variant, plan->configs[lead].variant);
        for (int s = 0; first && s < plan->shape_count; ++s)
            if (!time_shape(run, lead, s, &p))
                return CLI_FAILED;
    }
    return CLI_OK;
}
