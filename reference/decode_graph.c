/* Graph capture of a decode call (see decode_graph.h). */
#include "decode_graph.h"

#include <string.h>

snapmla_status snapmla_decode_graph_capture(const snapmla_driver *d, snapmla_kernel *kernel,
                                            const snapmla_decode_args *args,
                                            snapmla_decode_graph *g, snapmla_error *err)
{
    memset(g, 0, sizeof *g);
    g->d = d;
    snapmla_status s = SNAPMLA_CU(d, cuStreamCreate(&g->stream, CU_STREAM_NON_BLOCKING), err);
    if (s == SNAPMLA_OK)
        s = SNAPMLA_CU(d, cuStreamBeginCapture(g->stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), err);
    if (s == SNAPMLA_OK) {
        snapmla_status launched = snapmla_decode(kernel, args, g->stream, err);
        s = SNAPMLA_CU(d, cuStreamEndCapture(g->stream, &g->graph), err);
        if (launched != SNAPMLA_OK)
            s = launched;
    }
    if (s == SNAPMLA_OK)
        s = SNAPMLA_CU(d, cuGraphInstantiate(&g->exec, g->graph, 0), err);
    if (s != SNAPMLA_OK)
        snapmla_decode_graph_destroy(g);
    return s;
}

void snapmla_decode_graph_destroy(snapmla_decode_graph *g)
{
    if (!g->d)
        return;
    if (g->exec)
        g->d->cuGraphExecDestroy(g->exec);
    if (g->graph)
        g->d->cuGraphDestroy(g->graph);
    if (g->stream)
        g->d->cuStreamDestroy(g->stream);
    memset(g, 0, sizeof *g);
}
