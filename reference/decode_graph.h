/* One decode call captured in a CUDA graph on its own stream: how engines
 * run a decode step, and how the GPU checks and the benchmark replay it. */
#ifndef SNAPMLA_REFERENCE_DECODE_GRAPH_H
#define SNAPMLA_REFERENCE_DECODE_GRAPH_H

#include "context.h"

typedef struct snapmla_decode_graph {
    const snapmla_driver *d;
    CUstream stream;
    CUgraph graph;
    CUgraphExec exec;
} snapmla_decode_graph;

/* Captures snapmla_decode(kernel, args) and instantiates it. On failure
 * everything made so far is released. */
snapmla_status snapmla_decode_graph_capture(const snapmla_driver *d, snapmla_kernel *kernel,
                                            const snapmla_decode_args *args,
                                            snapmla_decode_graph *g, snapmla_error *err);
void snapmla_decode_graph_destroy(snapmla_decode_graph *g);

#endif
