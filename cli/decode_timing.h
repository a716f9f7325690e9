/* Decode timing shared by `snapmla bench` and `snapmla tune`: the device
 * buffers of one shape (cache filled through the append kernel, pages
 * scattered) and the median time of a decode call replayed from a graph. */
#ifndef SNAPMLA_CLI_DECODE_TIMING_H
#define SNAPMLA_CLI_DECODE_TIMING_H

#include "context.h"
#include "gpu_clock.h"

/* One shape's inputs and outputs, for every variant of one family and head
 * count (they share the cache layout). */
typedef struct cli_decode_problem {
    snapmla_context *ctx;
    int batch, seqlen;   /* seqlen: every request's length, or the mean of ragged ones */
    int ragged;
    int32_t *lens;       /* [batch] the cache lengths on the host; owned */
    int64_t tokens;      /* sum of lens: what TB/s and TFLOP/s count */
    int rows, width, latent_dim, page_size;
    int table_stride;    /* block-table row: the pages of the longest request */
    int64_t pages;       /* each request gets the pages its length needs */
    size_t page_bytes, q_bytes, out_bytes;
    CUdeviceptr q, cache, table, seqlens, out, lse;
} cli_decode_problem;

typedef struct cli_decode_timing {
    double us, tbps, tflops;
    cli_clock_stats clock;   /* sampled while the replays ran (no samples: not watched) */
} cli_decode_timing;

/* What `snapmla bench` adds around the timed replays: a sustained load
 * before them, so the board's power management settles where a serving
 * engine keeps it, and the SM clock sampled while they run. */
typedef struct cli_clock_watch {
    const cli_gpu_clock *clock;   /* NULL or closed: no samples */
    double sustain_s;             /* replays back to back for this long first; 0: none */
} cli_clock_watch;

/* Allocates and fills the buffers of batch requests of seqlen tokens in v's
 * cache format. Errors are reported on stderr; returns 0 then, with
 * everything freed. */
int cli_decode_problem_make(snapmla_context *ctx, const snapmla_variant *v, int batch,
                            int seqlen, cli_decode_problem *p, snapmla_error *err);
/* The same for a ragged batch: lengths drawn uniformly in [1, 2*seqlen-1]
 * (mean seqlen) from a fixed seed, so every run and every variant sees the
 * same batch; each request gets the pages its own length needs. */
int cli_decode_problem_make_ragged(snapmla_context *ctx, const snapmla_variant *v, int batch,
                                   int seqlen, cli_decode_problem *p, snapmla_error *err);
void cli_decode_problem_free(cli_decode_problem *p);

/* The buffer written before each timed replay so that the call starts with
 * a cold L2: twice the L2, at least 64 MiB, or min_bytes where that is more
 * (bench's --flush-mb: FlashMLA's own benchmark writes 8 GB between calls). */
typedef struct cli_l2_flush {
    CUdeviceptr buffer;
    size_t bytes;
} cli_l2_flush;

/* Allocates the flush buffer for the current device. Errors are reported on
 * stderr; returns 0 then. */
int cli_l2_flush_alloc(const snapmla_driver *d, cli_l2_flush *f, size_t min_bytes,
                       snapmla_error *err);
void cli_l2_flush_free(const snapmla_driver *d, cli_l2_flush *f);

/* Median of `replays` (3..64) timed graph replays of one decode call, after
 * two warm-ups (and, with a watch, its sustained load; the clock is sampled
 * from when the last replay is queued until it ends; watch may be NULL). num_splits as in snapmla_decode_args; plan_ready: the plan
 * is made once before the capture (snapmla_decode_plan) and every replay
 * reuses it, as a step's layers after the first do. The replays are queued
 * back to back, each between its own CUDA events, so the times are the
 * GPU's, without the host's launch latency. With a flush buffer (bytes
 * not 0), it is written on the same stream before each replay, outside the
 * timed region: every call starts with a cold L2 (and the flush's dirty
 * lines), as FlashMLA's benchmark (triton's do_bench) times its calls.
 * Without one, each call finds L2 as the previous replay left it.
 * Errors are reported on stderr; returns 0 then. */
int cli_decode_time(snapmla_kernel *kernel, const cli_decode_problem *p, int replays,
                    int num_splits, int plan_ready, const cli_l2_flush *flush,
                    const cli_clock_watch *watch, cli_decode_timing *out, snapmla_error *err);

#endif
