/* snapmla build: ahead-of-time builds. Every variant of the given specs is
 * compiled (on -j threads, through the cache) and written with a manifest. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aot.h"
#include "build_pool.h"
#include "cli.h"
#include "fileio.h"

typedef struct build_job {
    snapmla_context *ctx;
    const snapmla_variant **variants;
    snapmla_binary *binaries;
    snapmla_error *errors;
    size_t count;
} build_job;

static int parse_arch(const char *text, snapmla_arch *arch)
{
    static const snapmla_arch all[] = {SNAPMLA_ARCH_SM80, SNAPMLA_ARCH_SM89, SNAPMLA_ARCH_SM90A};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
        if (strcmp(text, snapmla_arch_name(all[i])) == 0) {
            *arch = all[i];
            return 1;
        }
    return 0;
}

typedef struct build_options {
    const char *output;
    int has_arch;
    snapmla_arch arch;
    int jobs;
    int verbose;
} build_options;

static int report_builds(build_job *job)
{
    int code = CLI_OK;
    size_t compiled = 0, cached = 0, aot = 0;
    double seconds = 0;
    for (size_t i = 0; i < job->count; ++i) {
        if (job->errors[i].status != SNAPMLA_OK) {
            fprintf(stderr, "snapmla: %s: %s\n", job->variants[i]->name, job->errors[i].message);
            code = CLI_FAILED;
            continue;
        }
        switch (job->binaries[i].source) {
        case SNAPMLA_FROM_COMPILE: compiled++; seconds += job->binaries[i].compile_seconds; break;
        case SNAPMLA_FROM_AOT: aot++; break;
        default: cached++; break;
        }
    }
    printf("built %zu variant%s: %zu compiled (%.1f s of NVRTC), %zu from the cache",
           job->count, job->count == 1 ? "" : "s", compiled, seconds, cached);
    if (aot)
        printf(", %zu from ahead-of-time directories", aot);
    printf("\n");
    return code;
}

static int build_all(const build_options *o, snapmla_spec **specs, int spec_count)
{
    size_t total = 0, skipped = 0;
    for (int s = 0; s < spec_count; ++s)
        total += specs[s]->count;
    build_job job = {0};
    job.variants = calloc(total ? total : 1, sizeof *job.variants);
    job.binaries = calloc(total ? total : 1, sizeof *job.binaries);
    job.errors = calloc(total ? total : 1, sizeof *job.errors);
    snapmla_aot_entry *entries = calloc(total ? total : 1, sizeof *entries);
    int code = CLI_OK;
    int verbose = o->verbose;
    job.ctx = cli_context(&verbose, NULL, 0);
    if (!job.variants || !job.binaries || !job.errors || !entries || !job.ctx) {
        fprintf(stderr, "snapmla: out of memory\n");
        code = CLI_FAILED;
        goto done;
    }
    for (int s = 0; s < spec_count; ++s)
        for (size_t i = 0; i < specs[s]->count; ++i) {
            const snapmla_variant *v = &specs[s]->variants[i];
            if (o->has_arch && v->arch != o->arch)
                skipped++;
            else
                job.variants[job.count++] = v;
        }
    if (skipped)
        printf("skipped %zu variant%s whose target.arch is not %s\n", skipped,
               skipped == 1 ? "" : "s", snapmla_arch_name(o->arch));
    if (job.count == 0) {
        fprintf(stderr, "snapmla: no variant to build\n");
        code = CLI_USAGE;
        goto done;
    }
    /* The output folder is made and checked before the compile, which can take minutes. */
    snapmla_error dir_err;
    if (snapmla_make_dirs(o->output, &dir_err) != SNAPMLA_OK) {
        code = cli_report(&dir_err);
        goto done;
    }
    if (access(o->output, W_OK | X_OK) != 0) {
        fprintf(stderr, "snapmla: cannot write into '%s': %s\n", o->output, strerror(errno));
        code = CLI_USAGE;
        goto done;
    }
    snapmla_build_pool(job.ctx, job.variants, job.count, o->jobs, job.binaries, job.errors);
    code = report_builds(&job);
    if (code == CLI_OK) {
        for (size_t i = 0; i < job.count; ++i) {
            entries[i].variant = job.variants[i];
            entries[i].binary = &job.binaries[i];
        }
        snapmla_error err;
        if (snapmla_aot_write(o->output, entries, job.count, &err) != SNAPMLA_OK)
            code = cli_report(&err);
        else
            printf("wrote %zu CUBIN%s and %s/%s\n", job.count, job.count == 1 ? "" : "s",
                   o->output, SNAPMLA_AOT_MANIFEST);
    }
done:
    for (size_t i = 0; job.binaries && i < job.count; ++i)
        snapmla_binary_release(&job.binaries[i]);
    snapmla_context_destroy(job.ctx);
    free(job.variants);
    free(job.binaries);
    free(job.errors);
    free(entries);
    return code;
}

static int run_build(int argc, char **argv)
{
    build_options o = {0};
    o.jobs = 2;
    snapmla_spec **specs = calloc((size_t)argc, sizeof *specs);
    int spec_count = 0, code = CLI_OK;
    if (!specs)
        return CLI_FAILED;
    for (int i = 1; i < argc && code == CLI_OK; ++i) {
        if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
            o.output = argv[++i];
        } else if (strcmp(argv[i], "--arch") == 0 && i + 1 < argc) {
            if (!parse_arch(argv[++i], &o.arch))
                code = cli_usage_error(&cli_build, "--arch takes sm_90a, sm_89 or sm_80");
            o.has_arch = 1;
        } else if (strcmp(argv[i], "-j") == 0 && i + 1 < argc) {
            code = cli_int_option(&cli_build, "-j", argv[++i], 1, 64, &o.jobs);
        } else if (strcmp(argv[i], "-v") == 0) {
            o.verbose = 1;
        } else if (argv[i][0] == '-') {
            code = cli_usage_error(&cli_build, "unknown option or missing value");
        } else {
            code = cli_load_spec(argv[i], specs, &spec_count);
        }
    }
    if (code == CLI_OK && (!o.output || spec_count == 0))
        code = cli_usage_error(&cli_build, "need at least one SPEC and -o DIR");
    if (code == CLI_OK)
        code = build_all(&o, specs, spec_count);
    cli_free_specs(specs, spec_count);
    return code;
}

const cli_command cli_build = {
    "build", "ahead-of-time build: CUBINs plus a manifest",
    "usage: snapmla build SPEC... -o DIR [--arch sm_90a|sm_89|sm_80] [-j N] [-v]\n\n"
    "Compiles every variant of the specs through NVRTC (no GPU needed), served from\n"
    "the disk cache when it can be, and writes DIR/<variant>.cubin and\n"
    "DIR/manifest.tsv (variant, cache key, arch, launch shape, shared memory,\n"
    "checksum). The runtime loads from such a directory before it tries JIT.\n"
    "  --arch A   build only the variants whose target.arch is A\n"
    "  -j N       compile on N threads (default 2)\n"
    "  -v         say where each variant came from\n",
    run_build,
};
