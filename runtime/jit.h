/* JIT: generated CUDA source -> CUBIN through NVRTC (no GPU needed). */
#ifndef SNAPMLA_RUNTIME_JIT_H
#define SNAPMLA_RUNTIME_JIT_H
#include <stddef.h>

#include "ptxas_report.h"
#include "snapmla.h"

#define SNAPMLA_JIT_MAX_OPTIONS 8

/* The NVRTC options used for arch; they are part of the cache key. */
int snapmla_jit_options(snapmla_arch arch, const char *options[SNAPMLA_JIT_MAX_OPTIONS]);
/* "nvrtc-13.0": part of the cache key. */
void snapmla_jit_version(char out[32]);

/* Compiles source (name used in NVRTC messages) to a CUBIN owned by the
 * caller (free()). On failure the message holds NVRTC's log. */
snapmla_status snapmla_jit_compile(const char *source, const char *name,
                                   snapmla_arch arch, unsigned char **cubin,
                                   size_t *size, snapmla_error *err);
/* snapmla_jit_compile with ptxas's report of each kernel (registers,
 * spills, performance-loss notes) in *report. Not cached: for inspection. */
snapmla_status snapmla_jit_compile_report(const char *source, const char *name, snapmla_arch arch,
                                          unsigned char **cubin, size_t *size, snapmla_ptxas_report *report,
                                          snapmla_error *err);
/* snapmla_jit_compile that also says, in problem (empty when none), why
 * ptxas's report shows a kernel that will not run as designed
 * (snapmla_ptxas_report_problem); an unreadable report is no problem. */
snapmla_status snapmla_jit_compile_noted(const char *source, const char *name, snapmla_arch arch,
                                         unsigned char **cubin, size_t *size, char *problem,
                                         size_t problem_size, snapmla_error *err);
#endif
