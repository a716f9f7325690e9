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

/* Local-memory spill bytes (stores or loads) a kernel may have and still
 * run as designed: none for the decode kernel (its registers are the
 * schedule), 16 for the small kernels (ptxas keeps a value or two across a
 * loop there: a store and a load per CTA). */
int snapmla_spill_allowance(const char *kernel);

/* Whether the report shows a kernel that will not run as designed: spills
 * over snapmla_spill_allowance, or a performance-loss note. 1 with the first
 * such kernel described in out ("snapmla_decode_split spills 1048 bytes to
 * local memory (loads 1140)"); 0 when every kernel is clean. */
int snapmla_ptxas_report_problem(const snapmla_ptxas_report *report, char *out, size_t size);

/* The kernel named `kernel` in the report, or NULL. */
const snapmla_kernel_resources *snapmla_ptxas_report_find(const snapmla_ptxas_report *report,
                                                          const char *kernel);
#endif
