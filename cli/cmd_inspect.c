/* snapmla inspect: the compiler's evidence for each variant, without a GPU:
 * ptxas's resources per kernel (registers, barriers, stack, spills, shared
 * memory, performance-loss notes) and, where nvdisasm is found, a SASS
 * census (tensor-core, TMA and local-memory instructions). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fileio.h"
#include "jit.h"
#include "sass_census.h"
#include "strbuf.h"

typedef struct inspect_options {
    int strict;
    int sass;                  /* 1: count SASS (nvdisasm found) */
    char nvdisasm[512];
    const char *csv;           /* NULL: no CSV */
} inspect_options;

typedef struct inspect_totals {
    int variants, kernels, spilling, noted;
    int off_design;            /* variants the runtime warns about (snapmla_ptxas_report_problem) */
    snapmla_strbuf csv;        /* the CSV's rows, written whole at the end */
} inspect_totals;

static const char csv_header[] = "variant,kernel,registers,barriers,stack_bytes,spill_store_bytes,spill_load_bytes,"
                                 "static_smem_bytes,dynamic_smem_bytes,performance_notes,sass_instructions";

/* One kernel's CSV row; the SASS columns are empty when SASS was not counted. */
static void csv_row(snapmla_strbuf *csv, const snapmla_variant *v, const snapmla_kernel_resources *k,
                    const sass_census *census)
{
    snapmla_strbuf_printf(csv, "%s,%s,%d,%d,%d,%d,%d,%d,%d,%d,", v->name, k->name, k->registers, k->barriers,
                          k->stack_bytes, k->spill_store_bytes, k->spill_load_bytes, k->static_smem_bytes,
                          v->smem_bytes, k->performance_notes);
    if (census)
        snapmla_strbuf_printf(csv, "%d", census->instructions);
    for (int c = 0; c < SASS_CLASS_COUNT; ++c)
        if (census)
            snapmla_strbuf_printf(csv, ",%d", census->counts[c]);
        else
            snapmla_strbuf_puts(csv, ",");
    snapmla_strbuf_puts(csv, "\n");
}

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
        const sass_census *counted = census_of(census, census_count, k->name);
        print_kernel(k, counted);
        if (o->csv)
            csv_row(&totals->csv, v, k, counted);
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
    char problem[SNAPMLA_ERROR_MAX];
    if (snapmla_ptxas_report_problem(report, problem, sizeof problem)) {
        printf("  off its design: %s\n", problem);
        totals->off_design++;
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
        } else if (strcmp(argv[i], "--csv") == 0) {
            const size_t n = i + 1 < argc ? strlen(argv[i + 1]) : 0;
            if (n == 0 || argv[i + 1][n - 1] == '/')
                code = cli_usage_error(&cli_inspect, "--csv needs the path of the CSV file to write");
            else
                o.csv = argv[++i];
        } else if (argv[i][0] == '-') {
            code = cli_usage_error(&cli_inspect, "unknown option");
        } else {
            code = cli_load_spec(argv[i], specs, &spec_count);
        }
    }
    if (code == CLI_OK && spec_count == 0)
        code = cli_usage_error(&cli_inspect, "need at least one SPEC");
    if (code == CLI_OK && o.csv && !cli_writable_file(o.csv))
        code = CLI_USAGE;
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
    if (o.csv) {
        snapmla_strbuf_puts(&totals.csv, csv_header);
        for (int c = 0; c < SASS_CLASS_COUNT; ++c)
            snapmla_strbuf_printf(&totals.csv, ",%s", sass_class_names[c]);
        snapmla_strbuf_puts(&totals.csv, "\n");
    }
    for (int s = 0; s < spec_count && code == CLI_OK; ++s)
        for (size_t i = 0; i < specs[s]->count && code == CLI_OK; ++i)
            code = inspect_variant(&specs[s]->variants[i], &o, &totals);
    const int inspected_all = code == CLI_OK;
    if (code == CLI_OK) {
        printf("%d variant%s, %d kernels; spilling: %d; with performance-loss notes: %d; variants "
               "off their design: %d\n", totals.variants, totals.variants == 1 ? "" : "s",
               totals.kernels, totals.spilling, totals.noted, totals.off_design);
        if (o.strict && totals.off_design) {
            fprintf(stderr, "snapmla inspect: --strict: variants off their design: %d (kernels "
                    "spilling: %d; with performance-loss notes: %d)\n", totals.off_design,
                    totals.spilling, totals.noted);
            code = CLI_FAILED;
        }
    }
    if (o.csv && inspected_all) {   /* (also when --strict fails: the report is whole) */
        snapmla_error err;
        if (totals.csv.failed)
            code = cli_report(&(snapmla_error){SNAPMLA_ERR_NOMEM, "out of memory for the CSV"});
        else if (snapmla_write_file_atomic(o.csv, totals.csv.data, totals.csv.length, &err) != SNAPMLA_OK)
            code = cli_report(&err);
    }
    snapmla_strbuf_free(&totals.csv);
    cli_free_specs(specs, spec_count);
    return code;
}

const cli_command cli_inspect = {
    "inspect", "the compiler's resource report and SASS census of each variant",
    "usage: snapmla inspect SPEC... [--strict] [--no-sass] [--csv FILE]\n\n"
    "Compiles every variant through NVRTC with ptxas's report (no GPU needed; not\n"
    "cached) and prints, per kernel: registers per thread at launch (setmaxnreg\n"
    "may move them later), named barriers, stack frame, spill stores and loads,\n"
    "static shared memory, and ptxas's performance-loss notes (wgmma serialized,\n"
    "setmaxnreg ignored) in full. Where nvdisasm is found ($SNAPMLA_NVDISASM, PATH,\n"
    "$CUDA_HOME/bin, /usr/local/cuda/bin) it adds a SASS census: instructions in\n"
    "all, QGMMA (FP8 wgmma), HGMMA (BF16 wgmma), HMMA (mma.sync), UTMALDG (TMA\n"
    "loads), LDL and STL (local memory).\n"
    "A variant is off its design when its decode kernel spills, another kernel\n"
    "spills over 16 bytes (a value kept across a loop), or ptxas notes a\n"
    "performance loss: the runtime warns when it compiles such a variant.\n"
    "  --strict   exit 1 when a variant is off its design\n"
    "  --no-sass  skip the disassembly\n"
    "  --csv F    also write one row per kernel to F (written whole, at the end)\n",
    run_inspect,
};
