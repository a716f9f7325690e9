/* SASS evidence for `snapmla inspect`: a CUBIN disassembled by NVIDIA's
 * nvdisasm (a tool of the CUDA Toolkit; there is no library for it), and
 * per kernel the instructions that show what the kernel runs on. */
#ifndef SNAPMLA_CLI_SASS_CENSUS_H
#define SNAPMLA_CLI_SASS_CENSUS_H

#include <stddef.h>

#include "snapmla.h"

/* The instruction classes counted, by SASS mnemonic (before the first dot). */
typedef enum sass_class {
    SASS_QGMMA,    /* FP8 warpgroup MMA (wgmma e4m3) */
    SASS_HGMMA,    /* BF16 warpgroup MMA */
    SASS_HMMA,     /* BF16 mma.sync */
    SASS_UTMALDG,  /* bulk tensor (TMA) loads */
    SASS_LDL,      /* local memory: spills and local arrays */
    SASS_STL,
    SASS_CLASS_COUNT
} sass_class;

extern const char *const sass_class_names[SASS_CLASS_COUNT];

#define SASS_MAX_KERNELS 8

typedef struct sass_census {
    char kernel[96];
    int instructions;
    int counts[SASS_CLASS_COUNT];
} sass_census;

/* The nvdisasm to run, into path: $SNAPMLA_NVDISASM when set (an error when
 * it is not an executable file), else the first on PATH, else
 * $CUDA_HOME/bin, else /usr/local/cuda/bin. Returns 1 when found; 0 when
 * there is none (err says where it looked); -1 on a bad $SNAPMLA_NVDISASM. */
int sass_find_disassembler(char *path, size_t size, snapmla_error *err);

/* Counts nvdisasm's text (kernels by their .text.NAME sections) into
 * out[0..*count). */
void sass_census_parse(const char *text, sass_census out[SASS_MAX_KERNELS], int *count);

/* Disassembles cubin with nvdisasm and counts it. */
snapmla_status sass_census_run(const char *nvdisasm, const unsigned char *cubin, size_t size,
                               sass_census out[SASS_MAX_KERNELS], int *count, snapmla_error *err);

#endif
