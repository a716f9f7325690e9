/* Reads ptxas's verbose report out of NVRTC's log: one record per entry
 * function, and the notes that say a schedule was lost (wgmma serialized,
 * setmaxnreg ignored). Lines it does not know are skipped: the front end's
 * warnings, compile times. */
#include "ptxas_report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

static snapmla_kernel_resources *find(snapmla_ptxas_report *r, const char *kernel)
{
    for (int i = 0; i < r->count; ++i)
        if (strcmp(r->kernels[i].name, kernel) == 0)
            return &r->kernels[i];
    return NULL;
}

const snapmla_kernel_resources *snapmla_ptxas_report_find(const snapmla_ptxas_report *report,
                                                          const char *kernel)
{
    return find((snapmla_ptxas_report *)report, kernel);
}

/* The text between the first pair of single quotes after `after` in line,
 * into out; 0 when there is none. */
static int quoted_after(const char *line, const char *after, char *out, size_t size)
{
    const char *at = strstr(line, after);
    const char *open = at ? strchr(at + strlen(after), '\'') : NULL;
    const char *close = open ? strchr(open + 1, '\'') : NULL;
    if (!close)
        return 0;
    snprintf(out, size, "%.*s", (int)(close - open - 1), open + 1);
    return 1;
}

/* The integer written just before `unit` in line ("168 registers"), or -1. */
static int number_before(const char *line, const char *unit)
{
    const char *at = strstr(line, unit);
    if (!at)
        return -1;
    const char *p = at;
    while (p > line && p[-1] == ' ')
        --p;
    const char *digits = p;
    while (digits > line && digits[-1] >= '0' && digits[-1] <= '9')
        --digits;
    return digits == p ? -1 : atoi(digits);
}

static void add_note(snapmla_ptxas_report *r, const char *line)
{
    size_t used = strlen(r->notes);
    snprintf(r->notes + used, sizeof r->notes - used, "%s\n", line);
}

static snapmla_status read_line(snapmla_ptxas_report *r, const char *line, snapmla_kernel_resources **current,
                                const char *name, snapmla_error *err)
{
    char kernel[sizeof r->kernels[0].name];
    if (quoted_after(line, "Compiling entry function", kernel, sizeof kernel)) {
        if (r->count == SNAPMLA_REPORT_MAX_KERNELS)
            return snapmla_fail(err, SNAPMLA_ERR_INTERNAL, "ptxas report of '%s': more than %d kernels", name,
                                SNAPMLA_REPORT_MAX_KERNELS);
        snapmla_kernel_resources *k = &r->kernels[r->count++];
        memset(k, 0, sizeof *k);
        snprintf(k->name, sizeof k->name, "%s", kernel);
        k->registers = k->barriers = -1;
        *current = k;
    } else if (strstr(line, "Function properties for ")) {
        /* a device function that was not inlined has properties too: not a kernel */
        const char *of = strstr(line, "Function properties for ") + strlen("Function properties for ");
        *current = find(r, of);
    } else if (strstr(line, "Potential Performance Loss") || strncmp(line, "ptxas warning", 13) == 0) {
        /* a note that names its function is counted once every record is
         * read (ptxas prints such notes before the first record) */
        if (!quoted_after(line, "in the function", kernel, sizeof kernel) && *current)
            (*current)->performance_notes++;
        add_note(r, line);
    } else if (*current && strstr(line, "bytes stack frame")) {
        (*current)->stack_bytes = number_before(line, "bytes stack frame");
        (*current)->spill_store_bytes = number_before(line, "bytes spill stores");
        (*current)->spill_load_bytes = number_before(line, "bytes spill loads");
    } else if (*current && strstr(line, "Used ") && strstr(line, " registers")) {
        (*current)->registers = number_before(line, "registers");
        const int barriers = number_before(line, "barriers");
        (*current)->barriers = barriers < 0 ? 0 : barriers;
        const int smem = number_before(line, "bytes smem");
        (*current)->static_smem_bytes = smem < 0 ? 0 : smem;
    }
    return SNAPMLA_OK;
}

/* The line at *at into line (cut at its size), *at moved past it; 0 at
 * the end of text. */
static int next_line(const char **at, char *line, size_t size)
{
    const char *p = *at;
    if (!*p)
        return 0;
    const char *end = strchr(p, '\n');
    const size_t length = end ? (size_t)(end - p) : strlen(p);
    snprintf(line, size, "%.*s", (int)length, p);
    *at = p + length + (end ? 1 : 0);
    return 1;
}

/* Each note that names its function, on that kernel's record. */
static void count_named_notes(snapmla_ptxas_report *r)
{
    char kernel[sizeof r->kernels[0].name], line[1024];
    for (const char *p = r->notes; next_line(&p, line, sizeof line);) {
        snapmla_kernel_resources *k =
            quoted_after(line, "in the function", kernel, sizeof kernel) ? find(r, kernel) : NULL;
        if (k)
            k->performance_notes++;
    }
}

snapmla_status snapmla_ptxas_report_parse(const char *log, const char *name, snapmla_ptxas_report *out,
                                          snapmla_error *err)
{
    memset(out, 0, sizeof *out);
    snapmla_kernel_resources *current = NULL;
    char line[1024];
    for (const char *p = log; next_line(&p, line, sizeof line);) {
        snapmla_status s = read_line(out, line, &current, name, err);
        if (s != SNAPMLA_OK)
            return s;
    }
    if (out->count == 0)
        return snapmla_fail(err, SNAPMLA_ERR_INTERNAL,
                            "the compile log of '%s' names no kernel (was it compiled with ptxas -v?)", name);
    count_named_notes(out);
    for (int i = 0; i < out->count; ++i)
        if (out->kernels[i].registers < 0)
            return snapmla_fail(err, SNAPMLA_ERR_INTERNAL,
                                "the compile log of '%s' gives no register count for kernel '%s'", name,
                                out->kernels[i].name);
    return snapmla_ok(err);
}

int snapmla_spill_allowance(const char *kernel)
{
    return strcmp(kernel, "snapmla_decode_split") == 0 ? 0 : 16;
}

int snapmla_ptxas_report_problem(const snapmla_ptxas_report *report, char *out, size_t size)
{
    for (int i = 0; i < report->count; ++i) {
        const snapmla_kernel_resources *k = &report->kernels[i];
        const int allowed = snapmla_spill_allowance(k->name);
        if (k->spill_store_bytes > allowed || k->spill_load_bytes > allowed) {
            snprintf(out, size, "%s spills %d bytes to local memory (loads %d)", k->name,
                     k->spill_store_bytes, k->spill_load_bytes);
            return 1;
        }
        if (k->performance_notes > 0) {
            snprintf(out, size, "ptxas notes a performance loss in %s: %.*s", k->name,
                     (int)strcspn(report->notes, "\n"), report->notes);
            return 1;
        }
    }
    return 0;
}
