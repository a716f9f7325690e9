/* The SM clock while `snapmla bench` times a shape, and what held it below
 * its maximum (the board's power cap, heat): from NVML, opened at run time
 * (libnvidia-ml.so.1, which ships with the driver) so that nothing links to it. */
#ifndef SNAPMLA_CLI_GPU_CLOCK_H
#define SNAPMLA_CLI_GPU_CLOCK_H

#include <stddef.h>

#include "driver.h"

typedef struct cli_gpu_clock {
    void *library;   /* NULL: not available; `why` says so */
    void *device;    /* nvmlDevice_t of the context's GPU */
    unsigned max_mhz;   /* the SM clock's maximum */
    int (*clock_info)(void *device, int type, unsigned *mhz);
    int (*event_reasons)(void *device, unsigned long long *reasons);
    char why[160];
} cli_gpu_clock;

/* Samples taken while a timed region runs. */
typedef struct cli_clock_stats {
    int samples;
    double sum_mhz;
    unsigned long long reasons;   /* every clock-event reason seen, or-ed */
} cli_clock_stats;

/* Opens NVML for the GPU of the current context (matched by PCI bus id).
 * Never fails the caller: without NVML, c->library is NULL and c->why says
 * why. */
void cli_gpu_clock_open(const snapmla_driver *d, cli_gpu_clock *c);
void cli_gpu_clock_close(cli_gpu_clock *c);
/* Adds one sample (nothing when closed, or when a query fails). */
void cli_gpu_clock_sample(const cli_gpu_clock *c, cli_clock_stats *s);
/* The reasons that held the clock down, as "power cap", "power cap, hw
 * thermal", ...; "" when none (idle and the like are left out). */
void cli_clock_reasons_text(unsigned long long reasons, char *out, size_t size);

#endif
