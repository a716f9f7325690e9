/* snapmla run: the main job. Builds every variant of a spec and, on a GPU,
 * runs one step on fresh random data against the float64 host reference. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "gpu_check.h"

typedef struct run_options {
    const char *spec_path;
    int batch;
    int seqlen;
    uint64_t seed;
    int verbose;
} run_options;

/* A ragged batch around seqlen, with the edge lengths of the page. */
static void make_seqlens(const run_options *o, const snapmla_variant *v, int32_t *seqlens)
{
    const int32_t edges[] = {o->seqlen, 1, v->page_size + 1, 0, v->page_size - 1,
                             v->page_size, o->seqlen / 3 + 7, o->seqlen - 5};
    for (int b = 0; b < o->batch; ++b) {
        int32_t n = edges[b % 8];
        seqlens[b] = n < 0 ? 0 : n;
    }
}

static int run_variant(snapmla_context *ctx, const run_options *o, const snapmla_variant *v,
                       uint64_t seed)
{
    snapmla_error err;
    snapmla_kernel *kernel;
    if (snapmla_kernel_get(ctx, v, &kernel, &err) != SNAPMLA_OK)
        return cli_report(&err);
    snapmla_check_report report = {0};
    snapmla_status s;
    if (v->kernel == SNAPMLA_KERNEL_MLA_DECODE) {
        int32_t *seqlens = calloc((size_t)o->batch, sizeof *seqlens);
        if (!seqlens)
            return CLI_FAILED;
        make_seqlens(o, v, seqlens);
        snapmla_decode_check check = {.batch = o->batch, .seqlens = seqlens, .seed = seed};
        s = snapmla_check_decode(ctx, kernel, &check, &report, &err);
        free(seqlens);
    } else if (v->kernel == SNAPMLA_KERNEL_KV_APPEND) {
        s = snapmla_check_append(ctx, kernel, 4096, seed, &report, &err);
    } else {
        s = snapmla_check_combine(ctx, kernel, o->batch, v->max_splits < 7 ? v->max_splits : 7,
                                  seed, &report, &err);
    }
    if (s != SNAPMLA_OK)
        return cli_report(&err);
    printf("%s: %s\n", v->name, report.summary);
    return report.passed ? CLI_OK : CLI_FAILED;
}

static int run_run(int argc, char **argv)
{
    run_options o = {.batch = 8, .seqlen = 4096, .seed = 0};
    int seeded = 0;
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc) {
            if (cli_int_option(&cli_run, "--batch", argv[++i], 1, 65535, &o.batch) != CLI_OK)
                return CLI_USAGE;
        } else if (strcmp(argv[i], "--seqlen") == 0 && i + 1 < argc) {
            if (cli_int_option(&cli_run, "--seqlen", argv[++i], 0, 1 << 24, &o.seqlen) != CLI_OK)
                return CLI_USAGE;
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            if (cli_u64_option(&cli_run, "--seed", argv[++i], &o.seed) != CLI_OK)
                return CLI_USAGE;
            seeded = 1;
        } else if (strcmp(argv[i], "-v") == 0) {
            o.verbose = 1;
        } else if (argv[i][0] == '-' || o.spec_path) {
            return cli_usage_error(&cli_run, "unknown option, missing value or second SPEC");
        } else {
            o.spec_path = argv[i];
        }
    }
    if (!o.spec_path)
        return cli_usage_error(&cli_run, "missing SPEC");
    if (!seeded)
        o.seed = (uint64_t)time(NULL);
    snapmla_error err;
    snapmla_spec *spec;
    if (snapmla_spec_load(o.spec_path, &spec, &err) != SNAPMLA_OK)
        return cli_report(&err);
    int verbose = o.verbose;
    snapmla_context *ctx = cli_context(&verbose, NULL, 0);
    if (!ctx) {
        snapmla_spec_free(spec);
        return CLI_FAILED;
    }
    int code = CLI_OK;
    size_t compiled = 0, cached = 0;
    for (size_t i = 0; i < spec->count && code == CLI_OK; ++i) {
        snapmla_binary binary;
        if (snapmla_build(ctx, &spec->variants[i], &binary, &err) != SNAPMLA_OK) {
            code = cli_report(&err);
            break;
        }
        if (binary.source == SNAPMLA_FROM_COMPILE)
            compiled++;
        else
            cached++;
        printf("%s: %s, %zu-byte CUBIN\n", spec->variants[i].name,
               binary.source == SNAPMLA_FROM_COMPILE ? "compiled" : "from the cache",
               binary.cubin_size);
        snapmla_binary_release(&binary);
    }
    if (code == CLI_OK) {
        snapmla_kernel *first;
        snapmla_status s = snapmla_kernel_get(ctx, &spec->variants[0], &first, &err);
        if (s == SNAPMLA_ERR_NO_DEVICE) {
            printf("%s: generated and compiled %zu variant%s (%zu compiled, %zu from the cache); "
                   "the decode check needs a GPU\n", err.message, spec->count,
                   spec->count == 1 ? "" : "s", compiled, cached);
        } else if (s != SNAPMLA_OK) {
            code = cli_report(&err);
        } else {
            printf("seed %llu (replay with --seed %llu)\n", (unsigned long long)o.seed,
                   (unsigned long long)o.seed);
            for (size_t i = 0; i < spec->count; ++i) {
                int c = run_variant(ctx, &o, &spec->variants[i], o.seed + i);
                if (c != CLI_OK)
                    code = c;
            }
        }
    }
    snapmla_context_destroy(ctx);
    snapmla_spec_free(spec);
    return code;
}

const cli_command cli_run = {
    "run", "build a spec's kernels and check them on the GPU",
    "usage: snapmla run SPEC [--batch B] [--seqlen N] [--seed S] [-v]\n\n"
    "Builds every variant (through the cache). On a GPU, runs one step of each on\n"
    "fresh random data and compares it with the float64 host reference: decode on\n"
    "a ragged batch (lengths around N and the page edges, NaN in unused cache\n"
    "slots, outputs poisoned), append bit-exact, combine of random partials.\n"
    "Without a GPU it says so and stops after compiling. Exit 1 if a check fails.\n"
    "  --batch B   requests per step (default 8)\n"
    "  --seqlen N  longest cache length (default 4096)\n"
    "  --seed S    replay a run (default: the time, printed)\n",
    run_run,
};
