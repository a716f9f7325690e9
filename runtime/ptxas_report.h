/* What ptxas says about each kernel of a compiled variant (registers,
 * barriers, stack, spills, static shared memory, performance-loss notes),
 * read from NVRTC's log of a compile with `--ptxas-options=-v`. The
 * evidence `snapmla inspect` prints and the shipped-variant test checks. */
#ifndef SNAPMLA_RUNTIME_PTXAS_REPORT_H
#define SNAPMLA_RUNTIME_PTXAS_REPORT_H

#include "snapmla.h"

#define SNAPMLA_REPORT_MAX_KERNELS 8
#define SNAPMLA_REPORT_NOTES_MAX 2048

typedef struct snapmla_kernel_resources {
    char name[96];
    int registers;           /* per thread at launch (setmaxnreg may move them later) */
    int barriers;            /* named barriers */
    int stack_bytes;         /* local memory frame: spills and local arrays */
    int spill_store_bytes;
    int spill_load_bytes;
    int static_smem_bytes;   /* __shared__ variables; the dynamic part is the launch's */
    int performance_notes;   /* ptxas "Potential Performance Loss" notes and warnings naming it */
} snapmla_kernel_resources;

typedef struct snapmla_ptxas_report {
    int count;
    snapmla_kernel_resources kernels[SNAPMLA_REPORT_MAX_KERNELS];
    /* every performance-loss note and ptxas warning, one per line, as ptxas
     * wrote it (cut at the buffer's end) */
    char notes[SNAPMLA_REPORT_NOTES_MAX];
} snapmla_ptxas_report;

/* Fills *out from NVRTC's log (name: the program, for messages). Fails when
 * the log names no entry function (a log without -v, or a changed format). */
snapmla_status snapmla_ptxas_report_parse(const char *log, const char *name, snapmla_ptxas_report *out,
                                          snapmla_error *err);

/* The kernel named `kernel` in the report, or NULL. */
const snapmla_kernel_resources *snapmla_ptxas_report_find(const snapmla_ptxas_report *report,
                                                          const char *kernel);
#endif
