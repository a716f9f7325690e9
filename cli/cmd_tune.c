/* snapmla tune: autotuning. Expands the specs' sweeps, compiles this shard's
 * variants on a pool of threads, then on a GPU checks and times every
 * config per shape (tune_gpu.c) and writes the winners per shape bucket to
 * a tuning database. `tune merge` and `tune pick` are in tune_db_cmds.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_pool.h"
#include "cli.h"
#include "context.h"
#include "error.h"
#include "tune.h"
#include "tune_gpu.h"
#include "tuning_db.h"

enum { MAX_SPECS = 64 };

typedef struct tune_options {
    const char *spec_paths[MAX_SPECS];
    int spec_count;
    tune_shape shapes[TUNE_MAX_SHAPES];
    int shape_count;
    int splits[TUNE_MAX_SPLITS];
    int split_count;
    int jobs, replays, shard, shards, dry_run, verbose;
    const char *output;
    const char *log_path;
    char default_log[4096];
} tune_options;

/* ---- options --------------------------------------------------------------- */

static int option_value(int argc, char **argv, int *i, const char *name, const char **value)
{
    size_t n = strlen(name);
    if (strcmp(argv[*i], name) == 0 && *i + 1 < argc) {
        *value = argv[++*i];
        return 1;
    }
    if (strcmp(name, "-j") == 0 && strncmp(argv[*i], "-j", 2) == 0 && argv[*i][2]) {
        *value = argv[*i] + 2;   /* -j8 */
        return 1;
    }
    if (strncmp(argv[*i], name, n) == 0 && argv[*i][n] == '=') {
        *value = argv[*i] + n + 1;
        return 1;
    }
    return 0;
}

static int parse_option(tune_options *o, int argc, char **argv, int *i)
{
    const char *value;
    char why[256];
    if (option_value(argc, argv, i, "--shapes", &value)) {
        if (!tune_parse_shapes(value, o->shapes, &o->shape_count, why, sizeof why))
            return cli_usage_error(&cli_tune, why);
    } else if (option_value(argc, argv, i, "--splits", &value)) {
        if (!tune_parse_splits(value, o->splits, &o->split_count))
            return cli_usage_error(&cli_tune, "--splits takes split counts 0..128 (0: the "
                                              "variant's policy), comma-separated, at most 16");
    } else if (option_value(argc, argv, i, "-j", &value)) {
        return cli_int_option(&cli_tune, "-j", value, 1, 64, &o->jobs);
    } else if (option_value(argc, argv, i, "--replays", &value)) {
        return cli_int_option(&cli_tune, "--replays", value, 3, 64, &o->replays);
    } else if (option_value(argc, argv, i, "--shard", &value)) {
        if (!tune_parse_shard(value, &o->shard, &o->shards))
            return cli_usage_error(&cli_tune, "--shard takes i/n with 0 <= i < n <= 1024 "
                                              "(this process tunes variants i, i+n, i+2n, ...)");
    } else if (option_value(argc, argv, i, "-o", &value)) {
        o->output = value;
    } else if (option_value(argc, argv, i, "--resume", &value)) {
        o->log_path = value;
    } else if (strcmp(argv[*i], "--dry-run") == 0) {
        o->dry_run = 1;
    } else if (strcmp(argv[*i], "-v") == 0) {
        o->verbose = 1;
    } else if (argv[*i][0] == '-' || o->spec_count == MAX_SPECS) {
        return cli_usage_error(&cli_tune, "unknown option, missing value or over 64 specs");
    } else {
        o->spec_paths[o->spec_count++] = argv[*i];
    }
    return CLI_OK;
}

/* tuned.yaml -> tuned.measurements.tsv */
static void default_log_path(tune_options *o)
{
    const char *out = o->output;
    size_t n = strlen(out);
    if (n > 5 && strcmp(out + n - 5, ".yaml") == 0)
        n -= 5;
    else if (n > 4 && strcmp(out + n - 4, ".yml") == 0)
        n -= 4;
    snprintf(o->default_log, sizeof o->default_log, "%.*s.measurements.tsv", (int)n, out);
    o->log_path = o->default_log;
}

static int parse_options(tune_options *o, int argc, char **argv)
{
    memset(o, 0, sizeof *o);
    o->jobs = 2;
    o->replays = 10;
    o->shards = 1;
    o->output = "tuned.yaml";
    o->splits[0] = 0;
    o->split_count = 1;
    for (int i = 1; i < argc; ++i) {
        int code = parse_option(o, argc, argv, &i);
        if (code != CLI_OK)
            return code;
    }
    if (o->spec_count == 0 || o->shape_count == 0)
        return cli_usage_error(&cli_tune, "need at least one SPEC and --shapes");
    if (!o->log_path)
        default_log_path(o);
    /* Both files are written after the compile (the log) or the timings (the
     * database): a path that cannot be written fails now, not hours later. */
    if (!o->dry_run && (!cli_writable_file(o->log_path) || !cli_writable_file(o->output)))
        return CLI_USAGE;
    return CLI_OK;
}

/* ---- compile phase --------------------------------------------------------- */

static void first_line(const char *text, char *out, size_t size)
{
    snprintf(out, size, "%.*s", (int)strcspn(text, "\n"), text);
}

static void report_rejected_points(snapmla_spec *const *specs, int spec_count)
{
    for (int s = 0; s < spec_count; ++s)
        for (size_t i = 0; i < specs[s]->rejected_count; ++i)
            printf("  rejected %s: %s\n", specs[s]->rejected[i].name, specs[s]->rejected[i].reason);
}

/* Compiles the plan's variants; configs of a variant that fails are rejected. */
static int compile_plan(snapmla_context *ctx, tune_plan *plan, int jobs, snapmla_spec *const *specs,
                        int spec_count)
{
    size_t n = plan->variant_count;
    snapmla_binary *binaries = calloc(n ? n : 1, sizeof *binaries);
    snapmla_error *errors = calloc(n ? n : 1, sizeof *errors);
    if (!binaries || !errors) {
        free(binaries);
        free(errors);
        fprintf(stderr, "snapmla: out of memory\n");
        return 0;
    }
    double wall = snapmla_build_pool(ctx, plan->variants, n, jobs, binaries, errors);
    size_t compiled = 0, hits = 0, failed = 0, rejected_points = 0;
    double nvrtc = 0;
    for (size_t i = 0; i < n; ++i) {
        if (errors[i].status != SNAPMLA_OK)
            failed++;
        else if (binaries[i].source == SNAPMLA_FROM_COMPILE)
            compiled++, nvrtc += binaries[i].compile_seconds;
        else
            hits++;
        snapmla_binary_release(&binaries[i]);
    }
    for (int s = 0; s < spec_count; ++s)
        rejected_points += specs[s]->rejected_count;
    printf("compiled %zu variant%s on %d thread%s in %.1f s (%.1f variants/s): %zu by NVRTC "
           "(%.1f s of NVRTC), %zu cache hit%s, %zu failed; %zu sweep point%s rejected for "
           "resources or combination\n", n, n == 1 ? "" : "s", jobs, jobs == 1 ? "" : "s", wall,
           wall > 0 ? (double)n / wall : 0.0, compiled, nvrtc, hits, hits == 1 ? "" : "s", failed,
           rejected_points, rejected_points == 1 ? "" : "s");
    report_rejected_points(specs, spec_count);
    for (size_t i = 0; i < n; ++i) {
        if (errors[i].status == SNAPMLA_OK)
            continue;
        char line[TUNE_REASON_MAX], reason[TUNE_REASON_MAX + 16];
        first_line(errors[i].message, line, sizeof line);
        snprintf(reason, sizeof reason, "compile: %s", line);
        printf("  rejected %s: %s\n", plan->variants[i]->name, reason);
        for (size_t c = 0; c < plan->config_count; ++c)
            if (plan->configs[c].variant == plan->variants[i])
                tune_reject(&plan->configs[c], reason);
    }
    free(binaries);
    free(errors);
    return 1;
}

/* ---- the GPU ----------------------------------------------------------------- */

typedef struct gpu {
    const snapmla_driver *d;
    char name[SNAPMLA_DEVICE_NAME_MAX];
    snapmla_arch arch;
} gpu;

/* The current device's name and arch; NO_DEVICE without one. */
static snapmla_status find_gpu(snapmla_context *ctx, gpu *g, snapmla_error *err)
{
    snapmla_status s = snapmla_context_driver(ctx, &g->d, err);
    if (s == SNAPMLA_OK)
        s = snapmla_driver_ensure_context(g->d, err);
    CUdevice device;
    int major = 0, minor = 0;
    if (s == SNAPMLA_OK)
        s = SNAPMLA_CU(g->d, cuCtxGetDevice(&device), err);
    if (s == SNAPMLA_OK)
        s = SNAPMLA_CU(g->d, cuDeviceGetName(g->name, (int)sizeof g->name, device), err);
    if (s == SNAPMLA_OK)
        s = SNAPMLA_CU(g->d, cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device), err);
    if (s == SNAPMLA_OK)
        s = SNAPMLA_CU(g->d, cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device), err);
    if (s != SNAPMLA_OK)
        return s;
    if (major == 9 && minor == 0)
        g->arch = SNAPMLA_ARCH_SM90A;
    else if (major == 8 && minor == 9)
        g->arch = SNAPMLA_ARCH_SM89;
    else if (major == 8 && minor == 0)
        g->arch = SNAPMLA_ARCH_SM80;
    else
        return snapmla_fail(err, SNAPMLA_ERR_UNSUPPORTED, "this GPU is sm_%d%d; snapmla targets "
                            "sm_80, sm_89 and sm_90a", major, minor);
    return SNAPMLA_OK;
}

/* ---- results ------------------------------------------------------------------ */

static void print_entries(const snapmla_tuning_db *db)
{
    printf("\n| family | rows | batch | context | winner | splits | us | runner-up |\n"
           "|---|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < snapmla_tuning_db_count(db); ++i) {
        const snapmla_tuning_entry *e = snapmla_tuning_db_entry(db, i);
        char batch[24], context[32], margin[32] = "-";
        snapmla_tuning_batch_label(e->batch_bucket, batch, sizeof batch);
        snapmla_tuning_context_label(e->context_bucket, context, sizeof context);
        if (e->runner_up[0])
            snprintf(margin, sizeof margin, "+%.1f%%", 100 * e->margin);
        printf("| %s | %d | %s | %s | %s | %d | %.1f | %s |\n", e->family, e->rows, batch, context,
               e->variant, e->num_splits, e->us, margin);
    }
}

static int write_database(const tune_options *o, const tune_plan *plan, const gpu *g)
{
    snapmla_tuning_entry *entries;
    size_t count;
    snapmla_tuning_db *db = NULL;
    snapmla_error err;
    if (!tune_plan_entries(plan, g->name, g->arch, &entries, &count)) {
        fprintf(stderr, "snapmla: out of memory\n");
        return CLI_FAILED;
    }
    snapmla_status s = snapmla_tuning_db_create(entries, count, &db, &err);
    free(entries);
    if (s == SNAPMLA_OK)
        s = snapmla_tuning_db_save(db, o->output, &err);
    if (s != SNAPMLA_OK) {
        cli_report(&err);
        snapmla_tuning_db_free(db);
        return CLI_FAILED;
    }
    print_entries(db);
    printf("wrote %s: %zu entr%s for '%s' (%s)\n", o->output, count, count == 1 ? "y" : "ies",
           g->name, snapmla_arch_name(g->arch));
    snapmla_tuning_db_free(db);
    if (count == 0)
        fprintf(stderr, "snapmla: no config passed its check and was timed on a whole bucket\n");
    return count ? CLI_OK : CLI_FAILED;
}

/* ---- the run --------------------------------------------------------------------- */

static void report_resume(const tune_options *o, const tune_plan *plan, const tune_log_summary *sum)
{
    size_t rejected = 0, checked = 0;
    for (size_t c = 0; c < plan->config_count; ++c) {
        rejected += plan->configs[c].state == TUNE_REJECTED;
        checked += plan->configs[c].state == TUNE_CHECKED;
    }
    printf("plan: shard %d/%d: %zu of %zu decode variants, %zu config%s x %d shape%s; %s: %zu "
           "measurement%s and %zu check%s already taken, %zu measurement%s to go (%zu config%s "
           "rejected)\n", o->shard, o->shards, plan->variant_count, plan->sweep_count,
           plan->config_count, plan->config_count == 1 ? "" : "s", plan->shape_count,
           plan->shape_count == 1 ? "" : "s", o->log_path, sum->measured,
           sum->measured == 1 ? "" : "s", checked, checked == 1 ? "" : "s",
           tune_plan_pending(plan), tune_plan_pending(plan) == 1 ? "" : "s", rejected,
           rejected == 1 ? "" : "s");
    if (plan->other_kernels)
        printf("skipped %zu variant%s of other kernels than mla_decode\n", plan->other_kernels,
               plan->other_kernels == 1 ? "" : "s");
}

/* Checks and times on the GPU, with the log open for appending. */
static int run_on_gpu(const tune_options *o, snapmla_context *ctx, tune_plan *plan, const gpu *g,
                      const tune_log_summary *sum)
{
    snapmla_error err;
    FILE *log = NULL;
    if (sum->device[0] && (strcmp(sum->device, g->name) != 0 ||
                           strcmp(sum->arch, snapmla_arch_name(g->arch)) != 0)) {
        fprintf(stderr, "snapmla: %s was measured on '%s' (%s); this GPU is '%s' (%s): give "
                "another --resume file\n", o->log_path, sum->device, sum->arch, g->name,
                snapmla_arch_name(g->arch));
        return CLI_USAGE;
    }
    if (tune_log_open(o->log_path, sum, g->name, g->arch, &log, &err) != SNAPMLA_OK)
        return cli_report(&err);
    tune_gpu_run run = {ctx, plan, log, o->log_path, o->replays, {0, 0}};
    int code = cli_l2_flush_alloc(g->d, &run.flush, 0, &err) ? CLI_OK : CLI_FAILED;
    printf("timing on '%s' (%s): median of %d graph replays per shape, L2 flushed (%zu MB "
           "written) before each; progress on stderr\n", g->name, snapmla_arch_name(g->arch),
           o->replays, run.flush.bytes >> 20);
    fflush(stdout);
    if (code == CLI_OK)
        code = tune_gpu(&run);
    cli_l2_flush_free(g->d, &run.flush);
    fclose(log);
    if (code == CLI_OK)
        code = write_database(o, plan, g);
    return code;
}

static int tune_specs(const tune_options *o, snapmla_spec *const *specs)
{
    tune_plan plan;
    if (!tune_plan_make(specs, o->spec_count, o->splits, o->split_count, o->shard, o->shards,
                        o->shapes, o->shape_count, &plan)) {
        fprintf(stderr, "snapmla: out of memory\n");
        return CLI_FAILED;
    }
    if (plan.variant_count == 0) {
        fprintf(stderr, "snapmla: no mla_decode variant for shard %d/%d (%zu in the sweep)\n",
                o->shard, o->shards, plan.sweep_count);
        tune_plan_free(&plan);
        return CLI_USAGE;
    }
    int verbose = o->verbose;
    snapmla_context *ctx = cli_context(&verbose, NULL, 0);
    snapmla_error err;
    tune_log_summary sum;
    int code = ctx && compile_plan(ctx, &plan, o->jobs, specs, o->spec_count) ? CLI_OK : CLI_FAILED;
    if (code == CLI_OK && tune_log_read(o->log_path, &plan, &sum, &err) != SNAPMLA_OK)
        code = cli_report(&err);
    if (code == CLI_OK)
        report_resume(o, &plan, &sum);
    gpu g = {0};
    snapmla_status s = code == CLI_OK ? find_gpu(ctx, &g, &err) : SNAPMLA_OK;
    if (code != CLI_OK) {
        /* reported */
    } else if (o->dry_run) {
        if (s == SNAPMLA_OK)
            printf("dry run: stopping before the checks and timings on '%s'\n", g.name);
        else
            printf("dry run: timing needs a GPU (%s); stopping after the compile\n", err.message);
    } else if (s != SNAPMLA_OK) {
        fprintf(stderr, "snapmla: %s: timing needs a GPU (--dry-run compiles only)\n", err.message);
        code = CLI_FAILED;
    } else {
        code = run_on_gpu(o, ctx, &plan, &g, &sum);
    }
    snapmla_context_destroy(ctx);
    tune_plan_free(&plan);
    return code;
}

static int run_tune(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "merge") == 0)
        return cli_tune_merge(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "pick") == 0)
        return cli_tune_pick(argc - 1, argv + 1);
    tune_options o;
    int code = parse_options(&o, argc, argv);
    if (code != CLI_OK)
        return code;
    snapmla_spec *specs[MAX_SPECS] = {0};
    int loaded = 0;
    for (; loaded < o.spec_count && code == CLI_OK; ++loaded) {
        snapmla_error err;
        if (snapmla_spec_load(o.spec_paths[loaded], &specs[loaded], &err) != SNAPMLA_OK)
            code = cli_report(&err);
    }
    if (code == CLI_OK)
        code = tune_specs(&o, specs);
    for (int s = 0; s < loaded; ++s)
        snapmla_spec_free(specs[s]);
    return code;
}

const cli_command cli_tune = {
    "tune", "autotune a sweep per shape bucket into a tuning database",
    "usage: snapmla tune SPEC... --shapes BxS[,BxS...] [--splits N,...] [-j N] [-o FILE]\n"
    "                    [--shard i/n] [--resume FILE] [--replays N] [--dry-run] [-v]\n"
    "       snapmla tune merge A.yaml B.yaml... -o OUT.yaml\n"
    "       snapmla tune pick DB.yaml SPEC... --shapes BxS[,BxS...] [--device NAME]\n\n"
    "Compiles every mla_decode variant of the specs' sweeps through NVRTC on N\n"
    "threads (wall time, variants per second, cache hits; variants over the\n"
    "arch's resources or failing to compile are rejected with the reason). On a\n"
    "GPU, each config (variant x split count) first runs one step against the\n"
    "float64 host reference (a wrong one is rejected, never a winner), then is\n"
    "timed per shape: CUDA events over graph replays, median, L2 flushed before\n"
    "each replay. Every result is appended to a measurement log as it is taken;\n"
    "running the same command again resumes from it. The winners per (device,\n"
    "family, rows, batch bucket, context bucket) go to the tuning database\n"
    "(docs/tuning.md). Without a GPU: exit 1 after the compile, 0 with --dry-run.\n"
    "  --shapes   batch x cache length; each side may be a set: 1/8/128x4096/16384\n"
    "  --splits   split counts to try per variant (default 0: the variant's policy)\n"
    "  -j N       compile on N threads (default 2)\n"
    "  -o FILE    the tuning database to write (default tuned.yaml)\n"
    "  --shard i/n  tune decode variants i, i+n, ... of the sweep (merge the shards'\n"
    "             databases with `tune merge`)\n"
    "  --resume FILE  the measurement log (default: -o's name + .measurements.tsv)\n"
    "  --replays  timed replays per shape, 3..64 (default 10)\n"
    "  --dry-run  compile and show the plan; no checks, no timings\n"
    "merge: one database from several (same key: the faster winner; conflicts\n"
    "reported). pick: which variant and split count the runtime dispatch chooses\n"
    "for each shape, without a GPU (device: --device, else the database's only one).\n",
    run_tune,
};
