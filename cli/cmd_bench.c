/* snapmla bench: times whole decode calls (split + combine) on the GPU with
 * CUDA events over graph replays, and prints achieved TB/s and TFLOP/s next
 * to the copy bandwidth and tensor-core peaks measured in the same run, FlashMLA's BF16 figures
 * for the same shapes, and each variant's ratio to the first one. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "context.h"
#include "decode_timing.h"
#include "mma_peak.h"

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

typedef cli_decode_timing result;

/* One shape: buffers made and filled, the call timed, buffers freed. */
static int bench_shape(snapmla_context *ctx, snapmla_kernel *kernel, shape sh, int replays,
                       result *res, snapmla_error *err)
{
    cli_decode_problem p;
    if (!cli_decode_problem_make(ctx, snapmla_kernel_variant(kernel), sh.batch, sh.seqlen, &p, err))
        return 0;
    int ok = cli_decode_time(kernel, &p, replays, 0, 0, 0, res, err);
    cli_decode_problem_free(&p);
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
    cli_mma_ceilings mma;
    if (cli_mma_peak(d, &mma, &err) != SNAPMLA_OK) {
        int failed = cli_report(&err);
        if (csv)
            fclose(csv);
        snapmla_context_destroy(ctx);
        return failed;
    }
    if (mma.measured)
        printf("tensor-core peak (back-to-back wgmma from shared memory), measured now: "
               "bf16 %.0f, fp8 %.0f TFLOP/s\n", mma.bf16_tflops, mma.fp8_tflops);
    else
        printf("tensor-core peak: not measured (the probe needs a Hopper GPU)\n");
    printf("GEMM ceilings (8192^3 through torch on the lent H100, not this run): bf16 784, "
           "fp8 1442 TFLOP/s\n\n");
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
    "device's copy bandwidth measured in the same run, TFLOP/s next to the\n"
    "tensor-core peaks (bf16, fp8) measured in the same run on Hopper, FlashMLA\n"
    "BF16's time for the shapes it was measured on, and the ratio to the first\n"
    "variant (list the BF16 spec first for FP8/BF16 ratios).\n"
    "  --shapes   batch x cache length list (default 128x4096,128x16384,1x65536)\n"
    "  --replays  timed replays per shape, 3..64 (default 10)\n"
    "  --csv      also write the numbers as CSV\n",
    run_bench,
};
