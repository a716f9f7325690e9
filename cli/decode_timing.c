/* Decode timing on the GPU (see decode_timing.h): realistic data written by
 * the append kernel at device speed, then CUDA events around graph replays. */
#include "decode_timing.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bf16.h"
#include "cli.h"
#include "decode_graph.h"
#include "decode_problem.h"
#include "error.h"
#include "monotonic.h"

static int check(const snapmla_error *err, snapmla_status s)
{
    if (s != SNAPMLA_OK)
        cli_report(err);
    return s == SNAPMLA_OK;
}

/* Fills every slot of every page through the append kernel of the same
 * format: realistic data (random BF16, quantized like an engine would) at
 * device speed, instead of gigabytes generated on the host. */
static int fill_cache(snapmla_context *ctx, const snapmla_variant *v, CUdeviceptr cache,
                      int64_t pages, snapmla_error *err)
{
    const snapmla_driver *d = &ctx->driver;
    char yaml[512];
    snprintf(yaml, sizeof yaml,
             "kernel: kv_append\nmodel: {latent_dim: %d, rope_dim: %d}\n"
             "cache: {format: %s, page_size: %d, rope_layout: %s}\ntarget: {arch: %s}\n",
             v->latent_dim, v->rope_dim, snapmla_cache_format_name(v->cache_format), v->page_size,
             v->rope_layout == SNAPMLA_ROPE_PLANAR ? "planar" : "interleaved",
             snapmla_arch_name(v->arch));
    snapmla_spec *spec;
    snapmla_kernel *append;
    if (!check(err, snapmla_spec_parse(yaml, strlen(yaml), "bench-append", &spec, err)))
        return 0;
    int ok = check(err, snapmla_kernel_get(ctx, &spec->variants[0], &append, err));
    snapmla_spec_free(spec);
    const int64_t chunk = 65536;
    size_t latent_bytes = (size_t)chunk * v->latent_dim * 2, rope_bytes = (size_t)chunk * v->rope_dim * 2;
    uint16_t *host = malloc(latent_bytes + rope_bytes);
    int64_t *slots = malloc((size_t)chunk * 8);
    CUdeviceptr dlatent = 0, drope = 0, dslots = 0;
    ok = ok && host && slots && check(err, SNAPMLA_CU(d, cuMemAlloc(&dlatent, latent_bytes), err)) &&
         check(err, SNAPMLA_CU(d, cuMemAlloc(&drope, rope_bytes), err)) &&
         check(err, SNAPMLA_CU(d, cuMemAlloc(&dslots, (size_t)chunk * 8), err));
    if (ok) {
        snapmla_rng r = {12345};
        for (size_t i = 0; i < (latent_bytes + rope_bytes) / 2; ++i)
            host[i] = snapmla_f32_to_bf16((float)snapmla_rng_normal(&r));
        ok = check(err, SNAPMLA_CU(d, cuMemcpyHtoD(dlatent, host, latent_bytes), err)) &&
             check(err, SNAPMLA_CU(d, cuMemcpyHtoD(drope, (char *)host + latent_bytes, rope_bytes), err));
    }
    int64_t total = pages * v->page_size;
    for (int64_t first = 0; ok && first < total; first += chunk) {
        int64_t n = total - first < chunk ? total - first : chunk;
        for (int64_t i = 0; i < n; ++i)
            slots[i] = first + i;
        snapmla_append_args a = {.num_tokens = n, .latent = (void *)(uintptr_t)dlatent,
                                 .rope = (void *)(uintptr_t)drope,
                                 .slot_mapping = (void *)(uintptr_t)dslots,
                                 .kv_cache = (void *)(uintptr_t)cache, .num_pages = pages};
        ok = check(err, SNAPMLA_CU(d, cuMemcpyHtoD(dslots, slots, (size_t)n * 8), err)) &&
             check(err, snapmla_append(append, &a, NULL, err));
    }
    ok = ok && check(err, SNAPMLA_CU(d, cuCtxSynchronize(), err));
    if (dlatent)
        d->cuMemFree(dlatent);
    if (drope)
        d->cuMemFree(drope);
    if (dslots)
        d->cuMemFree(dslots);
    free(host);
    free(slots);
    return ok;
}

/* Pages a request of len tokens takes; one for an empty request, as the
 * block table needs a row of at least one entry. */
static int64_t pages_for(int32_t len, int page_size)
{
    return len > page_size ? ((int64_t)len + page_size - 1) / page_size : 1;
}

void cli_decode_problem_free(cli_decode_problem *p)
{
    if (!p->ctx)
        return;
    const snapmla_driver *d = &p->ctx->driver;
    CUdeviceptr *all[] = {&p->q, &p->cache, &p->table, &p->seqlens, &p->out, &p->lse};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
        if (*all[i])
            d->cuMemFree(*all[i]);
    free(p->lens);
    memset(p, 0, sizeof *p);
}

/* Random block table (pages scattered, as in a real pool), lengths and Q.
 * Request b's pages are the next ones of one shuffled list; the rest of its
 * table row (past its length) holds page 0, valid but never read. */
static int upload_inputs(cli_decode_problem *p, snapmla_error *err)
{
    const snapmla_driver *d = &p->ctx->driver;
    size_t entries = (size_t)p->batch * p->table_stride;
    int32_t *order = malloc((size_t)p->pages * 4), *table = calloc(entries, 4);
    uint16_t *q = malloc(p->q_bytes);
    int ok = order && table && q;
    if (!ok)
        check(err, snapmla_fail(err, SNAPMLA_ERR_NOMEM, "out of memory for the block table and Q "
                                "of %dx%d", p->batch, p->seqlen));
    if (ok) {
        snapmla_rng r = {99};
        for (int64_t i = 0; i < p->pages; ++i)
            order[i] = (int32_t)i;
        for (int64_t i = p->pages - 1; i > 0; --i) {
            int64_t j = (int64_t)snapmla_rng_below(&r, (uint64_t)i + 1);
            int32_t t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        int64_t next = 0;
        for (int b = 0; b < p->batch; ++b)
            for (int64_t k = 0, n = pages_for(p->lens[b], p->page_size); k < n; ++k)
                table[(size_t)b * p->table_stride + k] = order[next++];
        for (size_t i = 0; i < p->q_bytes / 2; ++i)
            q[i] = snapmla_f32_to_bf16((float)snapmla_rng_normal(&r));
        ok = check(err, SNAPMLA_CU(d, cuMemcpyHtoD(p->table, table, entries * 4), err)) &&
             check(err, SNAPMLA_CU(d, cuMemcpyHtoD(p->seqlens, p->lens, (size_t)p->batch * 4), err)) &&
             check(err, SNAPMLA_CU(d, cuMemcpyHtoD(p->q, q, p->q_bytes), err));
    }
    free(order);
    free(table);
    free(q);
    return ok;
}

/* Ragged lengths for seqlen >= 1, the same in every run. */
static void ragged_lens(int batch, int seqlen, int32_t *lens)
{
    snapmla_rng r = {0x5eed};
    for (int b = 0; b < batch; ++b)
        lens[b] = 1 + (int32_t)snapmla_rng_below(&r, 2 * (uint64_t)seqlen - 1);
}

static int make(snapmla_context *ctx, const snapmla_variant *v, int batch, int seqlen,
                int ragged, cli_decode_problem *p, snapmla_error *err)
{
    const snapmla_driver *d = &ctx->driver;
    memset(p, 0, sizeof *p);
    p->ctx = ctx;
    p->batch = batch;
    p->seqlen = seqlen;
    p->ragged = ragged = ragged && seqlen >= 1;
    p->lens = malloc((size_t)batch * sizeof *p->lens);
    if (!p->lens) {
        check(err, snapmla_fail(err, SNAPMLA_ERR_NOMEM, "out of memory for %d cache lengths", batch));
        cli_decode_problem_free(p);
        return 0;
    }
    if (ragged)
        ragged_lens(batch, seqlen, p->lens);
    else
        for (int b = 0; b < batch; ++b)
            p->lens[b] = seqlen;
    p->rows = v->q_heads * v->q_len;
    p->width = v->latent_dim + v->rope_dim;
    p->latent_dim = v->latent_dim;
    p->page_size = v->page_size;
    p->table_stride = 1;
    for (int b = 0; b < batch; ++b) {
        int64_t n = pages_for(p->lens[b], p->page_size);
        p->tokens += p->lens[b];
        p->pages += n;
        if (n > p->table_stride)
            p->table_stride = (int)n;
    }
    p->page_bytes = snapmla_cache_page_bytes(v);
    p->q_bytes = (size_t)batch * p->rows * p->width * 2;
    p->out_bytes = (size_t)batch * p->rows * v->latent_dim * 2;
    size_t table_bytes = (size_t)batch * p->table_stride * 4;
    int ok = check(err, SNAPMLA_CU(d, cuMemAlloc(&p->cache, (size_t)p->pages * p->page_bytes), err)) &&
             check(err, SNAPMLA_CU(d, cuMemAlloc(&p->q, p->q_bytes), err)) &&
             check(err, SNAPMLA_CU(d, cuMemAlloc(&p->table, table_bytes), err)) &&
             check(err, SNAPMLA_CU(d, cuMemAlloc(&p->seqlens, (size_t)batch * 4), err)) &&
             check(err, SNAPMLA_CU(d, cuMemAlloc(&p->out, p->out_bytes), err)) &&
             check(err, SNAPMLA_CU(d, cuMemAlloc(&p->lse, (size_t)batch * p->rows * 4), err)) &&
             upload_inputs(p, err) && fill_cache(ctx, v, p->cache, p->pages, err);
    if (!ok)
        cli_decode_problem_free(p);
    return ok;
}

int cli_decode_problem_make(snapmla_context *ctx, const snapmla_variant *v, int batch,
                            int seqlen, cli_decode_problem *p, snapmla_error *err)
{
    return make(ctx, v, batch, seqlen, 0, p, err);
}

int cli_decode_problem_make_ragged(snapmla_context *ctx, const snapmla_variant *v, int batch,
                                   int seqlen, cli_decode_problem *p, snapmla_error *err)
{
    return make(ctx, v, batch, seqlen, 1, p, err);
}

static int by_value(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

int cli_l2_flush_alloc(const snapmla_driver *d, cli_l2_flush *f, size_t min_bytes,
                       snapmla_error *err)
{
    CUdevice device;
    int l2 = 0;
    f->buffer = 0;
    f->bytes = 0;
    if (!check(err, SNAPMLA_CU(d, cuCtxGetDevice(&device), err)) ||
        !check(err, SNAPMLA_CU(d, cuDeviceGetAttribute(&l2, CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE, device), err)))
        return 0;
    size_t bytes = 2 * (size_t)l2 > ((size_t)64 << 20) ? 2 * (size_t)l2 : (size_t)64 << 20;
    if (min_bytes > bytes)
        bytes = min_bytes;
    if (!check(err, SNAPMLA_CU(d, cuMemAlloc(&f->buffer, bytes), err)))
        return 0;
    f->bytes = bytes;
    return 1;
}

void cli_l2_flush_free(const snapmla_driver *d, cli_l2_flush *f)
{
    if (f->buffer)
        d->cuMemFree(f->buffer);
    f->buffer = 0;
    f->bytes = 0;
}

/* Replays back to back for `seconds`, 16 queued at a time (the host's
 * check between them leaves the GPU idle for a few microseconds only). */
static int sustain_load(const snapmla_driver *d, CUgraphExec exec, CUstream stream, double seconds,
                        snapmla_error *err)
{
    int ok = 1;
    for (double t0 = snapmla_seconds_now(); ok && snapmla_seconds_now() - t0 < seconds;) {
        for (int i = 0; ok && i < 16; ++i)
            ok = check(err, SNAPMLA_CU(d, cuGraphLaunch(exec, stream), err));
        ok = ok && check(err, SNAPMLA_CU(d, cuStreamSynchronize(stream), err));
    }
    return ok;
}

/* Waits for `last`, sampling the clock every 0.2 ms until it completes (and
 * once after, so a short region has a sample too). */
static int wait_watching(const snapmla_driver *d, CUevent last, const cli_gpu_clock *clock,
                         cli_clock_stats *stats, snapmla_error *err)
{
    const struct timespec pause = {0, 200000};
    for (;;) {
        CUresult r = d->cuEventQuery(last);
        if (r == CUDA_SUCCESS)
            break;
        if (r != CUDA_ERROR_NOT_READY)
            return check(err, snapmla_driver_check(d, r, "cuEventQuery(the last replay)", err));
        cli_gpu_clock_sample(clock, stats);
        nanosleep(&pause, NULL);
    }
    if (stats->samples == 0)
        cli_gpu_clock_sample(clock, stats);
    return 1;
}

/* Median microseconds of one decode call, captured once and replayed. Every
 * replay is queued before the first is waited for, each between its own
 * pair of events (and after the flush, when there is one), so the GPU never
 * idles while the host submits: the events time GPU work only. */
static double time_decode(snapmla_kernel *kernel, const snapmla_driver *d,
                          const snapmla_decode_args *args, int replays, const cli_l2_flush *flush,
                          const cli_clock_watch *watch, cli_clock_stats *clock, snapmla_error *err)
{
    snapmla_decode_graph g;
    CUevent start[64] = {0}, stop[64] = {0};
    float samples[64];
    double median = -1;
    int ok = check(err, snapmla_decode_graph_capture(d, kernel, args, &g, err));   /* replays: 1..64 */
    if (!ok)
        return median;
    for (int i = 0; ok && i < replays; ++i)
        ok = check(err, SNAPMLA_CU(d, cuEventCreate(&start[i], 0), err)) &&
             check(err, SNAPMLA_CU(d, cuEventCreate(&stop[i], 0), err));
    CUstream stream = g.stream;
    CUgraphExec exec = g.exec;
    if (ok && watch && watch->sustain_s > 0)
        ok = sustain_load(d, exec, stream, watch->sustain_s, err);
    for (int i = 0; ok && i < 2; ++i)   /* warm-up */
        ok = check(err, SNAPMLA_CU(d, cuGraphLaunch(exec, stream), err));
    for (int i = 0; ok && i < replays; ++i) {
        if (flush->bytes)
            ok = check(err, SNAPMLA_CU(d, cuMemsetD32Async(flush->buffer, (unsigned)i, flush->bytes / 4, stream), err));
        ok = ok && check(err, SNAPMLA_CU(d, cuEventRecord(start[i], stream), err)) &&
             check(err, SNAPMLA_CU(d, cuGraphLaunch(exec, stream), err)) &&
             check(err, SNAPMLA_CU(d, cuEventRecord(stop[i], stream), err));
    }
    if (ok && watch && watch->clock && watch->clock->library)
        ok = wait_watching(d, stop[replays - 1], watch->clock, clock, err);
    ok = ok && check(err, SNAPMLA_CU(d, cuEventSynchronize(stop[replays - 1]), err));
    for (int i = 0; ok && i < replays; ++i)
        ok = check(err, SNAPMLA_CU(d, cuEventElapsedTime(&samples[i], start[i], stop[i]), err));
    if (ok) {
        qsort(samples, (size_t)replays, sizeof samples[0], by_value);
        median = 1e3 * samples[replays / 2];
    }
    for (int i = 0; i < replays; ++i) {
        if (start[i])
            d->cuEventDestroy(start[i]);
        if (stop[i])
            d->cuEventDestroy(stop[i]);
    }
    snapmla_decode_graph_destroy(&g);
    return median;
}

int cli_decode_time(snapmla_kernel *kernel, const cli_decode_problem *p, int replays,
                    int num_splits, int plan_ready, const cli_l2_flush *flush,
                    const cli_clock_watch *watch, cli_decode_timing *res, snapmla_error *err)
{
    const snapmla_driver *d = &p->ctx->driver;
    size_t ws = snapmla_decode_workspace_bytes(kernel, p->batch);
    CUdeviceptr workspace = 0;
    if (replays < 1 || replays > 64 || !check(err, SNAPMLA_CU(d, cuMemAlloc(&workspace, ws), err)))
        return 0;
    snapmla_decode_args a = {
        .batch = p->batch, .q = (void *)(uintptr_t)p->q, .kv_cache = (void *)(uintptr_t)p->cache,
        .num_pages = p->pages, .block_table = (void *)(uintptr_t)p->table,
        .block_table_stride = p->table_stride,
        .cache_seqlens = (void *)(uintptr_t)p->seqlens,
        .softmax_scale = 1.f / sqrtf((float)p->width), .out = (void *)(uintptr_t)p->out,
        .lse = (void *)(uintptr_t)p->lse, .workspace = (void *)(uintptr_t)workspace,
        .workspace_bytes = ws, .num_splits = num_splits,
    };
    if (plan_ready) {   /* the plan once (on the legacy stream, before the capture) */
        if (!check(err, snapmla_decode_plan(kernel, &a, NULL, err)) ||
            !check(err, SNAPMLA_CU(d, cuCtxSynchronize(), err))) {
            d->cuMemFree(workspace);
            return 0;
        }
        a.plan_ready = 1;
    }
    memset(&res->clock, 0, sizeof res->clock);
    res->us = time_decode(kernel, d, &a, replays, flush, watch, &res->clock, err);
    d->cuMemFree(workspace);
    if (res->us <= 0)
        return 0;
    double tokens = (double)p->tokens;   /* each request's own length, ragged or not */
    double bytes = tokens * (double)p->page_bytes / p->page_size + (double)p->q_bytes + (double)p->out_bytes;
    res->tbps = bytes / (res->us * 1e-6) / 1e12;
    res->tflops = 2.0 * p->rows * tokens * (p->width + p->latent_dim) / (res->us * 1e-6) / 1e12;
    return 1;
}
