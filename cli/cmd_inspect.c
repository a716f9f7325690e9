/* snapmla inspect: the compiler's evidence for each variant, without a GPU:
 * ptxas's resources per kernel (registers, barriers, stack, spills, shared
 * memory, performance-loss notes) and, where nvdisasm is found, a SASS
 * census (tensor-core, TMA and local-memory instructions). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "jit.h"
#include "sass_census.h"

typedef struct inspect_options {
    int strict;
    int sass;                  /* 1: count SASS (nvdisasm found) */
    char nvdisasm[512];
} inspect_options;

typedef struct inspect_totals {
    int variants, kernels, spilling, noted;
} inspect_totals;

static const sass_census *census_of(const sass_census *census, int count, const char *kernel)
{
    for (int i = 0; i < count; ++i)
        if (strcmp(census[i].kernel, kernel) == 0)
            return &census[i];
    return NULL;
}

static void print_kernel(const snapmla_kernel_resources *k, const sass_census *census)
{
    printf("  %-22s %3d registers, %2d barrier%s, stack %d B, spill stores/loads %d/%d B, static smem %d B",
           k->name, k->registers, k->barriers, k->barriers == 1 ? "" : "s", k->stack_bytes, k->spill_store_bytes,
           k->spill_load_bytes, k->static_smem_bytes);
    if (k->performance_notes)
        printf(", %d performance-loss note%s", k->performance_notes, k->performance_notes == 1 ? "" : "s");
    if (census) {
        printf("; SASS %d:", census->instructions);
        for (int c = 0; c < SASS_CLASS_COUNT; ++c)
            printf(" %s %d%s", sass_class_names[c], census->counts[c], c + 1 < SASS_CLASS_COUNT ? "," : "");
    }
    printf("\n");
}

/* Compiles one variant with ptxas's report and prints it; CLI_OK, or
 * CLI_FAILED after reporting a compile or disassembly failure. */
static int inspect_variant(const snapmla_variant *v, const inspect_options *o, inspect_totals *totals)
{
    snapmla_error err;
    char *source = NULL;
    size_t length = 0;
    unsigned char *cubin = NULL;
    size_t size = 0;
    snapmla_ptxas_report *report = malloc(sizeof *report);
    if (!report) {
        fprintf(stderr, "snapmla: out of memory\n");
        return CLI_FAILED;
    }
    int code = CLI_OK;
    if (snapmla_emit(v, &source, &length, &err) != SNAPMLA_OK ||
        snapmla_jit_compile_report(source, v->name, v->arch, &cubin, &size, report, &err) != SNAPMLA_OK) {
        fprintf(stderr, "snapmla: %s: %s\n", v->name, err.message);
        code = CLI_FAILED;
        goto done;
    }
    sass_census census[SASS_MAX_KERNELS];
    int census_count = 0;
    if (o->sass && sass_census_run(o->nvdisasm, cubin, size, census, &census_count, &err) != SNAPMLA_OK) {
        fprintf(stderr, "snapmla: %s: %s\n", v->name, err.message);
        code = CLI_FAILED;
        goto done;
    }
    printf("%s (%s, %d threads, %d B dynamic smem)\n", v->name, snapmla_arch_name(v->arch), v->threads,
           v->smem_bytes);
    totals->variants++;
    for (int i = 0; i < report->count; ++i) {
        const snapmla_kernel_resources *k = &report->kernels[i];
        print_kernel(k, census_of(census, census_count, k->name));
        totals->kernels++;
        totals->spilling += k->spill_store_bytes > 0 || k->spill_load_bytes > 0;
        totals->noted += k->performance_notes > 0;
    }
    for (const char *line = report->notes; *line;) {
        const char *end = strchr(line, '\n');
        const int n = end ? (int)(end - line) : (int)strlen(line);
        printf("  ptxas: %.*s\n", n, line);
        line += n + (end ? 1 : 0);
    }
done:
    free(cubin);
    free(source);
    free(report);
    return code;
}

static int run_inspect(int argc, char **argv)
{
    inspect_options o = {0};
    o.sass = 1;
    int spec_count = 0, code = CLI_OK;
    snapmla_spec **specs = calloc((size_t)argc, sizeof *specs);
    if (!specs)
        return CLI_FAILED;
    for (int i = 1; i < argc && code == CLI_OK; ++i) {
        if (strcmp(argv[i], "--strict") == 0) {
            o.strict = 1;
        } else if (strcmp(argv[i], "--no-sass") == 0) {
            o.sass = 0;
        } else if (argv[i][0] == '-') {
            code = cli_usage_error(&cli_inspect, "unknown option");
        } else {
            code = cli_load_spec(argv[i], specs, &spec_count);
        }
    }
    if (code == CLI_OK && spec_count == 0)
        code = cli_usage_error(&cli_inspect, "need at least one SPEC");
    if (code == CLI_OK && o.sass) {
        snapmla_error err;
        const int found = sass_find_disassembler(o.nvdisasm, sizeof o.nvdisasm, &err);
        if (found < 0)
            code = cli_report(&err);
        else if (found == 0)
            printf("SASS not counted: %s\n", err.message);
        o.sass = found == 1;
    }
    inspect_totals totals = {0};
    for (int s = 0; s < spec_count && code == CLI_OK; ++s)
        for (size_t i = 0; i < specs[s]->count && code == CLI_OK; ++i)
            code = inspect_variant(&specs[s]->variants[i], &o, &totals);
    if (code == CLI_OK) {
        printf("%d variant%s, %d kernels; spilling: %d; with performance-loss notes: %d\n", totals.variants,
               totals.variants == 1 ? "" : "s", totals.kernels, totals.spilling, totals.noted);
        if (o.strict && (totals.spilling || totals.noted)) {
            fprintf(stderr, "snapmla inspect: --strict: kernels spilling: %d; with performance-loss notes: %d\n",
                    totals.spilling, totals.noted);
            code = CLI_FAILED;
        }
    }
    for (int s = 0; s < spec_count; ++s)
        snapmla_spec_free(specs[s]);
    free(specs);
    return code;
}

const cli_command cli_inspect = {
    "inspect", "the compiler's resource report and SASS census of each variant",
    "usage: snapmla inspect SPEC... [--strict] [--no-sass]\n\n"
    "Compiles every variant through NVRTC with ptxas's report (no GPU needed; not\n"
    "cached) and prints, per kernel: registers per thread at launch (setmaxnreg\n"
    "may move them later), named barriers, stack frame, spill stores and loads,\n"
    "static shared memory, and ptxas's performance-loss notes (wgmma serialized,\n"
    "setmaxnreg ignored) in full. Where nvdisasm is found ($SNAPMLA_NVDISASM, PATH,\n"
    "$CUDA_HOME/bin, /usr/local/cuda/bin) it adds a SASS census: instructions in\n"
    "all, QGMMA (FP8 wgmma), HGMMA (BF16 wgmma), HMMA (mma.sync), UTMALDG (TMA\n"
    "loads), LDL and STL (local memory).\n"
    "  --strict   exit 1 when a kernel spills or ptxas notes a performance loss\n"
    "  --no-sass  skip the disassembly\n",
    run_inspect,
};
