/* snapmla bench: times whole decode calls (split + combine) on the GPU with
 * CUDA events over graph replays, and prints achieved TB/s and TFLOP/s next
 * to the copy bandwidth measured in the same run, FlashMLA's BF16 figures
 * for the same shapes, and each variant's ratio to the first one. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bf16.h"
#include "cli.h"
#include "context.h"
#include "decode_graph.h"
#include "decode_problem.h"

typedef struct shape {
    int batch;
    int seqlen;
} shape;

typedef struct bench_options {
    shape shapes[16];
    int shape_count;
    int replays;
    const char *csv;
} bench_options;

/* FlashMLA BF16 dense decode on the lent H100, whole call, s_q = 1
 * (measured 2026-11-22, ../shared/notes/mla-landscape.md); 0: not measured. */
static double flashmla_us(int heads, int q_len, int batch, int seqlen)
{
    static const struct { int heads, q_len, batch, seqlen; double us; } known[] = {
        {128, 1, 128, 4096, 253}, {128, 1, 128, 16384, 980}, {64, 1, 128, 4096, 221},
        {64, 1, 128, 16384, 884}, {16, 1, 128, 4096, 216},   {16, 1, 128, 16384, 824},
        {128, 2, 128, 8192, 842}, {128, 1, 1, 65536, 66},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; ++i)
        if (known[i].heads == heads && known[i].q_len == q_len && known[i].batch == batch &&
            known[i].seqlen == seqlen)
            return known[i].us;
    return 0;
}

typedef struct device {
    const snapmla_driver *d;
    CUdeviceptr q, cache, table, seqlens, out, lse, workspace;
} device;

static int check(const snapmla_error *err, snapmla_status s)
{
    if (s != SNAPMLA_OK)
        cli_report(err);
    return s == SNAPMLA_OK;
}

/* Device-to-device copy bandwidth, bytes read plus written: the ceiling. */
static double copy_bandwidth(const snapmla_driver *d, snapmla_error *err)
{
    size_t bytes = (size_t)1 << 30;
    CUdeviceptr a = 0, b = 0;
    CUevent start, stop;
    float ms = 0, best = 1e30f;
    if (!check(err, SNAPMLA_CU(d, cuMemAlloc(&a, bytes), err)) ||
        !check(err, SNAPMLA_CU(d, cuMemAlloc(&b, bytes), err)))
        return 0;
    d->cuMemsetD8(a, 0x3c, bytes);
    d->cuEventCreate(&start, 0);
    d->cuEventCreate(&stop, 0);
    for (int i = 0; i < 6; ++i) {
        d->cuEventRecord(start, NULL);
        d->cuMemcpyDtoD(b, a, bytes);
        d->cuEventRecord(stop, NULL);
        d->cuEventSynchronize(stop);
        d->cuEventElapsedTime(&ms, start, stop);
        if (i > 0 && ms < best)
            best = ms;
    }
    d->cuEventDestroy(start);
    d->cuEventDestroy(stop);
    d->cuMemFree(a);
    d->cuMemFree(b);
    return 2.0 * (double)bytes / (best * 1e-3) / 1e12;
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

static int by_value(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* Median microseconds of one decode call, captured once and replayed. */
static double time_decode(snapmla_kernel *kernel, const snapmla_driver *d,
                          const snapmla_decode_args *args, int replays, snapmla_error *err)
{
    snapmla_decode_graph g;
    CUevent start = NULL, stop = NULL;
    float samples[64], ms = 0;
    double median = -1;
    int ok = check(err, snapmla_decode_graph_capture(d, kernel, args, &g, err)) &&
             check(err, SNAPMLA_CU(d, cuEventCreate(&start, 0), err)) &&
             check(err, SNAPMLA_CU(d, cuEventCreate(&stop, 0), err));
    CUstream stream = g.stream;
    CUgraphExec exec = g.exec;
    for (int i = 0; ok && i < 2; ++i)   /* warm-up */
        ok = check(err, SNAPMLA_CU(d, cuGraphLaunch(exec, stream), err));
    for (int i = 0; ok && i < replays; ++i) {
        ok = check(err, SNAPMLA_CU(d, cuEventRecord(start, stream), err)) &&
             check(err, SNAPMLA_CU(d, cuGraphLaunch(exec, stream), err)) &&
             check(err, SNAPMLA_CU(d, cuEventRecord(stop, stream), err)) &&
             check(err, SNAPMLA_CU(d, cuEventSynchronize(stop), err)) &&
             check(err, SNAPMLA_CU(d, cuEventElapsedTime(&ms, start, stop), err));
        samples[i] = ms;
    }
    if (ok) {
        qsort(samples, (size_t)replays, sizeof samples[0], by_value);
        median = 1e3 * samples[replays / 2];
    }
    if (start)
        d->cuEventDestroy(start);
    if (stop)
        d->cuEventDestroy(stop);
    snapmla_decode_graph_destroy(&g);
    return median;
}

typedef struct result {
    double us, tbps, tflops;
} result;

static int bench_shape(snapmla_context *ctx, snapmla_kernel *kernel, shape sh, int replays,
                       result *res, snapmla_error *err)
{
    const snapmla_variant *v = snapmla_kernel_variant(kernel);
    const snapmla_driver *d = &ctx->driver;
    int W = v->latent_dim + v->rope_dim, rows = v->q_heads * v->q_len;
    int pages_each = (sh.seqlen + v->page_size - 1) / v->page_size;
    int64_t pages = (int64_t)sh.batch * (pages_each ? pages_each : 1);
    size_t page_bytes = snapmla_cache_page_bytes(v);
    size_t q_bytes = (size_t)sh.batch * rows * W * 2, out_bytes = (size_t)sh.batch * rows * v->latent_dim * 2;
    size_t ws = snapmla_decode_workspace_bytes(kernel, sh.batch);
    device g = {.d = d};
    int32_t *table = malloc((size_t)pages * 4), *lens = malloc((size_t)sh.batch * 4);
    uint16_t *q = malloc(q_bytes);
    int ok = table && lens && q &&
             check(err, SNAPMLA_CU(d, cuMemAlloc(&g.cache, (size_t)pages * page_bytes), err)) &&
             check(err, SNAPMLA_CU(d, cuMemAlloc(&g.q, q_bytes), err)) &&
             check(err, SNAPMLA_CU(d, cuMemAlloc(&g.table, (size_t)pages * 4), err)) &&
             check(err, SNAPMLA_CU(d, cuMemAlloc(&g.seqlens, (size_t)sh.batch * 4), err)) &&
             check(err, SNAPMLA_CU(d, cuMemAlloc(&g.out, out_bytes), err)) &&
             check(err, SNAPMLA_CU(d, cuMemAlloc(&g.lse, (size_t)sh.batch * rows * 4), err)) &&
             check(err, SNAPMLA_CU(d, cuMemAlloc(&g.workspace, ws), err));
    if (ok) {
        snapmla_rng r = {99};
        for (int64_t i = 0; i < pages; ++i)
            table[i] = (int32_t)i;
        for (int64_t i = pages - 1; i > 0; --i) {   /* pages scattered, as in a real pool */
            int64_t j = (int64_t)snapmla_rng_below(&r, (uint64_t)i + 1);
            int32_t t = table[i];
            table[i] = table[j];
            table[j] = t;
        }
        for (int b = 0; b < sh.batch; ++b)
            lens[b] = sh.seqlen;
        for (size_t i = 0; i < q_bytes / 2; ++i)
            q[i] = snapmla_f32_to_bf16((float)snapmla_rng_normal(&r));
        ok = check(err, SNAPMLA_CU(d, cuMemcpyHtoD(g.table, table, (size_t)pages * 4), err)) &&
             check(err, SNAPMLA_CU(d, cuMemcpyHtoD(g.seqlens, lens, (size_t)sh.batch * 4), err)) &&
             check(err, SNAPMLA_CU(d, cuMemcpyHtoD(g.q, q, q_bytes), err)) &&
             fill_cache(ctx, v, g.cache, pages, err);
    }
    if (ok) {
        snapmla_decode_args a = {
            .batch = sh.batch, .q = (void *)(uintptr_t)g.q, .kv_cache = (void *)(uintptr_t)g.cache,
            .num_pages = pages, .block_table = (void *)(uintptr_t)g.table,
            .block_table_stride = pages_each ? pages_each : 1,
            .cache_seqlens = (void *)(uintptr_t)g.seqlens, .softmax_scale = 1.f / sqrtf((float)W),
            .out = (void *)(uintptr_t)g.out, .lse = (void *)(uintptr_t)g.lse,
            .workspace = (void *)(uintptr_t)g.workspace, .workspace_bytes = ws,
        };
        res->us = time_decode(kernel, d, &a, replays, err);
        ok = res->us > 0;
        double tokens = (double)sh.batch * sh.seqlen;
        double bytes = tokens * (double)page_bytes / v->page_size + (double)q_bytes + (double)out_bytes;
        res->tbps = bytes / (res->us * 1e-6) / 1e12;
        res->tflops = 2.0 * rows * tokens * (W + v->latent_dim) / (res->us * 1e-6) / 1e12;
    }
    CUdeviceptr *all[] = {&g.q, &g.cache, &g.table, &g.seqlens, &g.out, &g.lse, &g.workspace};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
        if (*all[i])
            d->cuMemFree(*all[i]);
    free(table);
    free(lens);
    free(q);
    return ok;
}

static int parse_shapes(const char *text, bench_options *o)
{
    o->shape_count = 0;
    for (const char *p = text; *p && o->shape_count < 16;) {
        int batch, seqlen, used = 0;
        if (sscanf(p, "%dx%d%n", &batch, &seqlen, &used) != 2 || batch < 1 || batch > 65535 ||
            seqlen < 1 || seqlen > (1 << 22))
            return 0;
        o->shapes[o->shape_count++] = (shape){batch, seqlen};
        p += used;
        if (*p == ',')
            p++;
        else if (*p)
            return 0;
    }
    return o->shape_count > 0;
}

static int run_bench(int argc, char **argv)
{
    bench_options o = {.replays = 10};
    parse_shapes("128x4096,128x16384,1x65536", &o);
    const char *spec_paths[8];
    int spec_count = 0;
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--shapes") == 0 && i + 1 < argc) {
            if (!parse_shapes(argv[++i], &o))
                return cli_usage_error(&cli_bench, "--shapes takes BATCHxSEQLEN[,BATCHxSEQLEN...] (at most 16)");
        } else if (strcmp(argv[i], "--replays") == 0 && i + 1 < argc) {
            o.replays = atoi(argv[++i]);
            if (o.replays < 3 || o.replays > 64)
                return cli_usage_error(&cli_bench, "--replays takes 3..64");
        } else if (strcmp(argv[i], "--csv") == 0 && i + 1 < argc) {
            o.csv = argv[++i];
        } else if (argv[i][0] == '-' || spec_count == 8) {
            return cli_usage_error(&cli_bench, "unknown option, missing value or over 8 specs");
        } else {
            spec_paths[spec_count++] = argv[i];
        }
    }
    if (spec_count == 0)
        return cli_usage_error(&cli_bench, "missing SPEC");
    int verbose = 0;
    snapmla_context *ctx = cli_context(&verbose, NULL, 0);
    if (!ctx)
        return CLI_FAILED;
    snapmla_error err;
    const snapmla_driver *d;
    if (snapmla_context_driver(ctx, &d, &err) != SNAPMLA_OK ||
        snapmla_driver_ensure_context(d, &err) != SNAPMLA_OK) {
        int code = cli_report(&err);
        snapmla_context_destroy(ctx);
        return code == CLI_USAGE ? CLI_FAILED : code;
    }
    FILE *csv = o.csv ? fopen(o.csv, "w") : NULL;
    if (o.csv && !csv) {
        fprintf(stderr, "snapmla: cannot write '%s'\n", o.csv);
        snapmla_context_destroy(ctx);
        return CLI_USAGE;
    }
    double copy = copy_bandwidth(d, &err);
    printf("device copy bandwidth (read + write), measured now: %.2f TB/s\n", copy);
    printf("GEMM ceilings (not measured by this tool; torch on this H100 model): bf16 784, fp8 1442 TFLOP/s\n\n");
    printf("| variant | batch | s_k | us | TB/s | %% copy BW | TFLOP/s | FlashMLA BF16 us | vs FlashMLA | vs first |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|\n");
    if (csv)
        fprintf(csv, "variant,batch,seqlen,us,tbps,copy_fraction,tflops,flashmla_us\n");
    int code = CLI_OK;
    double first_us[16] = {0};
    for (int s = 0; s < spec_count && code == CLI_OK; ++s) {
        snapmla_spec *spec;
        if (snapmla_spec_load(spec_paths[s], &spec, &err) != SNAPMLA_OK) {
            code = cli_report(&err);
            break;
        }
        for (size_t i = 0; i < spec->count && code == CLI_OK; ++i) {
            const snapmla_variant *v = &spec->variants[i];
            snapmla_kernel *kernel;
            if (v->kernel != SNAPMLA_KERNEL_MLA_DECODE)
                continue;
            if (snapmla_kernel_get(ctx, v, &kernel, &err) != SNAPMLA_OK) {
                code = cli_report(&err);
                break;
            }
            for (int k = 0; k < o.shape_count; ++k) {
                result r;
                if (!bench_shape(ctx, kernel, o.shapes[k], o.replays, &r, &err)) {
                    code = CLI_FAILED;
                    break;
                }
                double fm = flashmla_us(v->q_heads, v->q_len, o.shapes[k].batch, o.shapes[k].seqlen);
                if (first_us[k] == 0)
                    first_us[k] = r.us;
                char fm_us[32] = "-", vs_fm[32] = "-";
                if (fm > 0) {
                    snprintf(fm_us, sizeof fm_us, "%.0f", fm);
                    snprintf(vs_fm, sizeof vs_fm, "%.2fx", fm / r.us);
                }
                printf("| %s | %d | %d | %.1f | %.3f | %.1f%% | %.1f | %s | %s | %.2fx |\n", v->name,
                       o.shapes[k].batch, o.shapes[k].seqlen, r.us, r.tbps, 100 * r.tbps / copy,
                       r.tflops, fm_us, vs_fm, first_us[k] / r.us);
                if (csv)
                    fprintf(csv, "%s,%d,%d,%.2f,%.4f,%.4f,%.2f,%.0f\n", v->name, o.shapes[k].batch,
                            o.shapes[k].seqlen, r.us, r.tbps, r.tbps / copy, r.tflops, fm);
                fflush(stdout);
            }
        }
        snapmla_spec_free(spec);
    }
    if (csv)
        fclose(csv);
    snapmla_context_destroy(ctx);
    return code;
}

const cli_command cli_bench = {
    "bench", "time decode calls on the GPU (TB/s, TFLOP/s)",
    "usage: snapmla bench SPEC... [--shapes BxS,...] [--replays N] [--csv FILE]\n\n"
    "Times every mla_decode variant of the specs on the GPU: whole calls (split +\n"
    "combine) captured in a CUDA graph, median of N replays timed with CUDA events\n"
    "after two warm-up replays; the cache is filled through the append kernel of\n"
    "the same format with random data, pages scattered at random. Prints per\n"
    "shape: microseconds, achieved TB/s (cache bytes read + q + out) next to the\n"
    "device's copy bandwidth measured in the same run, TFLOP/s, FlashMLA BF16's\n"
    "time for the shapes it was measured on, and the ratio to the first variant.\n"
    "  --shapes   batch x cache length list (default 128x4096,128x16384,1x65536)\n"
    "  --replays  timed replays per shape, 3..64 (default 10)\n"
    "  --csv      also write the numbers as CSV\n",
    run_bench,
};
