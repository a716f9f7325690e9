/* Tensor-core ceilings measured by `snapmla bench` (cli/mma_peak.c). */
#ifndef SNAPMLA_CLI_MMA_PEAK_H
#define SNAPMLA_CLI_MMA_PEAK_H

#include "driver.h"

typedef struct cli_mma_ceilings {
    int measured;         /* 0: not a Hopper GPU, nothing timed */
    double bf16_tflops;   /* back-to-back wgmma from shared memory */
    double fp8_tflops;
    /* the FP8 decode's shapes, m64n64k32 e4m3 from four warpgroups: two
     * from shared memory and two with A in registers (the role warpgroups'
     * QK and PV), and all four from shared memory */
    double fp8_n64_mix_tflops;
    double fp8_n64_ss_tflops;
} cli_mma_ceilings;

/* Compiles and times the probe on the current context's GPU. */
snapmla_status cli_mma_peak(const snapmla_driver *d, cli_mma_ceilings *out, snapmla_error *err);

#endif
