/* The GPU phase of `snapmla tune` (tune_gpu.c), called by cmd_tune.c once
 * the plan is compiled and the measurement log read back. */
#ifndef SNAPMLA_CLI_TUNE_GPU_H
#define SNAPMLA_CLI_TUNE_GPU_H

#include "context.h"
#include "decode_timing.h"
#include "tune.h"

typedef struct tune_gpu_run {
    snapmla_context *ctx;
    tune_plan *plan;
    FILE *log;                 /* the measurement log, open for appending */
    const char *log_path;
    int replays;
    cli_l2_flush flush;        /* written before each timed replay (cold L2) */
} tune_gpu_run;

/* Checks the unchecked configs, then times every checked config on every
 * shape it lacks. Returns a CLI exit code (CLI_FAILED when the run had to
 * stop: a lost CUDA context or an unwritable log; it can be resumed). */
int tune_gpu(const tune_gpu_run *run);

#endif
