/* snapmla bench: times whole decode calls (split + combine) on the GPU with
 * CUDA events over graph replays, and prints achieved TB/s and TFLOP/s next
 * to the copy bandwidth and tensor-core peaks measured in the same run, FlashMLA's BF16 figures
 * for the same shapes, and each variant's ratio to the first one; the same
 * rows also as CSV and JSON files (docs/bench.md). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "context.h"
#include "decode_timing.h"
#include "error.h"
#include "fileio.h"
#include "gpu_clock.h"
#include "mma_peak.h"
#include "strbuf.h"

enum { MAX_SHAPES = 16, MAX_SPECS = 8 };

typedef struct shape {
    int batch;
    int seqlen;   /* every request's cache length, or the mean of ragged ones */
    int ragged;   /* lengths drawn in 1..2*seqlen-1 (cli_decode_problem_make_ragged) */
} shape;

typedef struct bench_options {
    shape shapes[MAX_SHAPES];
    int shape_count;
    int replays;
    const char *csv;
    const char *json;
    const char *spec_paths[MAX_SPECS];
    int spec_count;
    int plan_ready;   /* --plan-ready */
    int cold_l2;      /* --cold-l2 or --flush-mb */
    int flush_mb;     /* --flush-mb: MB written before each call (0: twice the L2) */
    int sustain_s;    /* --sustain: seconds of back-to-back replays before each shape's timing */
} bench_options;

/* One measured variant and shape, as the table, the CSV and the JSON show it. */
typedef struct bench_row {
    const char *variant;
    shape sh;
    int64_t tokens;         /* sum of the cache lengths: what TB/s and TFLOP/s count */
    cli_decode_timing t;
    double copy_fraction;   /* t.tbps over the copy bandwidth measured in the run */
    double mma_fraction;    /* t.tflops over the tensor-core peak of the variant's compute; NaN: no probe */
    double flashmla_us;     /* 0: no FlashMLA figure for this shape */
    int rows;               /* q_heads x q_len of the variant */
} bench_row;

/* FlashMLA BF16 dense decode on the lent H100, whole call, s_q = 1
 * (measured 2026-11-22, ../shared/notes/mla-landscape.md), uniform batches
 * only; 0: not measured. */
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

/* ---- options --------------------------------------------------------------- */

/* One shape, the len characters at item: BATCHxSEQLEN or BATCHxSEQLEN~. */
static int parse_shape(const char *item, size_t len, shape *sh)
{
    const char *p = item, *end = item + len;
    if (!cli_parse_int(&p, 1, 65535, &sh->batch) || p == end || *p++ != 'x' ||
        !cli_parse_int(&p, 1, 1 << 22, &sh->seqlen) || p > end)
        return 0;
    sh->ragged = p < end && *p == '~';
    return p + sh->ragged == end;
}

static void shape_text(shape sh, char *out, size_t size)
{
    snprintf(out, size, "%dx%d%s", sh.batch, sh.seqlen, sh.ragged ? "~" : "");
}

static int parse_shapes(const char *text, bench_options *o, char *why, size_t size)
{
    o->shape_count = 0;
    for (const char *p = text;; ++p) {
        size_t len = strcspn(p, ",");
        shape sh;
        char name[32];
        if (!parse_shape(p, len, &sh)) {
            snprintf(why, size, "--shapes: '%.*s' is not a shape; allowed: BATCHxSEQLEN (uniform) "
                     "or BATCHxSEQLEN~ (ragged: lengths drawn in 1..2*SEQLEN-1), batch 1..65535, "
                     "SEQLEN 1..4194304, comma-separated, at most %d", (int)(len < 64 ? len : 64), p,
                     MAX_SHAPES);
            return 0;
        }
        shape_text(sh, name, sizeof name);
        for (int k = 0; k < o->shape_count; ++k)
            if (o->shapes[k].batch == sh.batch && o->shapes[k].seqlen == sh.seqlen &&
                o->shapes[k].ragged == sh.ragged) {
                snprintf(why, size, "--shapes: %s is given twice", name);
                return 0;
            }
        if (o->shape_count == MAX_SHAPES) {
            snprintf(why, size, "--shapes: more than %d shapes", MAX_SHAPES);
            return 0;
        }
        o->shapes[o->shape_count++] = sh;
        p += len;
        if (*p == '\0')
            return 1;
    }
}

static int parse_options(int argc, char **argv, bench_options *o)
{
    char why[512];
    for (int i = 1; i < argc; ++i) {
        const char *a = argv[i];
        int has_value = strcmp(a, "--shapes") == 0 || strcmp(a, "--replays") == 0 ||
                        strcmp(a, "--csv") == 0 || strcmp(a, "--json") == 0 || strcmp(a, "--sustain") == 0 ||
                        strcmp(a, "--flush-mb") == 0;
        if (has_value && i + 1 == argc) {
            snprintf(why, sizeof why, "%s needs a value", a);
            return cli_usage_error(&cli_bench, why);
        }
        if (strcmp(a, "--shapes") == 0) {
            if (!parse_shapes(argv[++i], o, why, sizeof why))
                return cli_usage_error(&cli_bench, why);
        } else if (strcmp(a, "--replays") == 0) {
            if (cli_int_option(&cli_bench, a, argv[++i], 3, 64, &o->replays) != CLI_OK)
                return CLI_USAGE;
        } else if (strcmp(a, "--sustain") == 0) {
            if (cli_int_option(&cli_bench, a, argv[++i], 0, 120, &o->sustain_s) != CLI_OK)
                return CLI_USAGE;
        } else if (strcmp(a, "--csv") == 0) {
            o->csv = argv[++i];
        } else if (strcmp(a, "--json") == 0) {
            o->json = argv[++i];
            size_t n = strlen(o->json);
            if (n == 0 || o->json[n - 1] == '/') {
                snprintf(why, sizeof why, "--json: '%s' is not a file name; allowed: the path of "
                         "the JSON file to write", o->json);
                return cli_usage_error(&cli_bench, why);
            }
        } else if (strcmp(a, "--plan-ready") == 0) {
            o->plan_ready = 1;
        } else if (strcmp(a, "--cold-l2") == 0) {
            o->cold_l2 = 1;
        } else if (strcmp(a, "--flush-mb") == 0) {
            if (cli_int_option(&cli_bench, a, argv[++i], 64, 16384, &o->flush_mb) != CLI_OK)
                return CLI_USAGE;
            o->cold_l2 = 1;
        } else if (a[0] == '-') {
            snprintf(why, sizeof why, "unknown option '%s'", a);
            return cli_usage_error(&cli_bench, why);
        } else if (o->spec_count == MAX_SPECS) {
            snprintf(why, sizeof why, "more than %d SPECs", MAX_SPECS);
            return cli_usage_error(&cli_bench, why);
        } else {
            o->spec_paths[o->spec_count++] = a;
        }
    }
    if (o->spec_count == 0)
        return cli_usage_error(&cli_bench, "missing SPEC");
    if (o->csv && o->json && strcmp(o->csv, o->json) == 0) {
        snprintf(why, sizeof why, "--csv and --json both name '%s'; give each its own file", o->csv);
        return cli_usage_error(&cli_bench, why);
    }
    return CLI_OK;
}

/* ---- JSON output ----------------------------------------------------------- */

/* Built in memory as the rows come and written once the run is complete,
 * atomically (snapmla_write_file_atomic), so PATH never holds half a run. */
typedef struct json_out {
    const char *path;
    snapmla_strbuf text;
    int open;
    int rows;
} json_out;

/* Checked before the GPU work, so a path that cannot be written fails at
 * once: not a folder, in a folder that exists and takes new files. */
static int json_open(json_out *j, const char *path)
{
    memset(j, 0, sizeof *j);
    j->path = path;
    return j->open = cli_writable_file(path);
}

static void json_abandon(json_out *j)
{
    snapmla_strbuf_free(&j->text);
    j->open = 0;
}

/* Closes the document and writes the file; reports a failure. */
static int json_finish(json_out *j)
{
    snapmla_strbuf_puts(&j->text, j->rows ? "\n  ]\n}\n" : "]\n}\n");
    snapmla_error err;
    snapmla_status s = j->text.failed
                           ? snapmla_fail(&err, SNAPMLA_ERR_NOMEM, "cannot write '%s': out of memory", j->path)
                           : snapmla_write_file_atomic(j->path, j->text.data, j->text.length, &err);
    if (s != SNAPMLA_OK)
        fprintf(stderr, "snapmla: %s\n", err.message);
    json_abandon(j);
    return s == SNAPMLA_OK;
}

static void json_string(snapmla_strbuf *f, const char *s)
{
    snapmla_strbuf_puts(f, "\"");
    for (; *s; ++s) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            snapmla_strbuf_printf(f, "\\%c", c);
        else if (c == '\n')
            snapmla_strbuf_puts(f, "\\n");
        else if (c == '\t')
            snapmla_strbuf_puts(f, "\\t");
        else if (c < 0x20)
            snapmla_strbuf_printf(f, "\\u%04x", c);
        else
            snapmla_strbuf_append(f, (const char *)&c, 1);   /* UTF-8 passes through */
    }
    snapmla_strbuf_puts(f, "\"");
}

/* JSON has no NaN or infinity: those are written as null. */
static void json_number(snapmla_strbuf *f, double x, int decimals)
{
    if (isfinite(x))
        snapmla_strbuf_printf(f, "%.*f", decimals, x);
    else
        snapmla_strbuf_puts(f, "null");
}

static void json_begin(json_out *j, const char *device, const bench_options *o, unsigned max_mhz,
                       double copy, const cli_mma_ceilings *mma)
{
    snapmla_strbuf *f = &j->text;
    snapmla_strbuf_puts(f, "{\n  \"device\": ");
    json_string(f, device);
    snapmla_strbuf_printf(f, ",\n  \"replays\": %d,\n  \"plan_ready\": %s,\n  \"cold_l2\": %s,\n"
                          "  \"flush_mb\": %d,\n  \"sustain_s\": %d,\n  \"sm_max_mhz\": ",
                          o->replays, o->plan_ready ? "true" : "false", o->cold_l2 ? "true" : "false",
                          o->flush_mb, o->sustain_s);
    json_number(f, max_mhz ? (double)max_mhz : NAN, 0);
    snapmla_strbuf_puts(f, ",\n  \"ceilings\": {\"copy_tbps\": ");
    json_number(f, copy > 0 ? copy : NAN, 3);
    snapmla_strbuf_puts(f, ", \"bf16_tflops\": ");
    json_number(f, mma->measured ? mma->bf16_tflops : NAN, 1);
    snapmla_strbuf_puts(f, ", \"fp8_tflops\": ");
    json_number(f, mma->measured ? mma->fp8_tflops : NAN, 1);
    snapmla_strbuf_puts(f, ", \"fp8_n64_mix_tflops\": ");
    json_number(f, mma->measured ? mma->fp8_n64_mix_tflops : NAN, 1);
    snapmla_strbuf_puts(f, ", \"fp8_n64_ss_tflops\": ");
    json_number(f, mma->measured ? mma->fp8_n64_ss_tflops : NAN, 1);
    snapmla_strbuf_puts(f, "},\n  \"rows\": [");
}

static void json_row(json_out *j, const bench_row *r)
{
    snapmla_strbuf *f = &j->text;
    snapmla_strbuf_puts(f, j->rows++ ? ",\n    {\"variant\": " : "\n    {\"variant\": ");
    json_string(f, r->variant);
    snapmla_strbuf_printf(f, ", \"batch\": %d, \"seqlen\": %d, \"ragged\": %s, \"tokens\": %lld, \"us\": ",
                          r->sh.batch, r->sh.seqlen, r->sh.ragged ? "true" : "false", (long long)r->tokens);
    json_number(f, r->t.us, 2);
    snapmla_strbuf_puts(f, ", \"tbps\": ");
    json_number(f, r->t.tbps, 4);
    snapmla_strbuf_puts(f, ", \"copy_fraction\": ");
    json_number(f, r->copy_fraction, 4);
    snapmla_strbuf_puts(f, ", \"tflops\": ");
    json_number(f, r->t.tflops, 2);
    snapmla_strbuf_puts(f, ", \"mma_fraction\": ");
    json_number(f, r->mma_fraction, 4);
    snapmla_strbuf_puts(f, ", \"flashmla_us\": ");
    json_number(f, r->flashmla_us > 0 ? r->flashmla_us : NAN, 0);
    const cli_clock_stats *c = &r->t.clock;
    snapmla_strbuf_puts(f, ", \"sm_mhz\": ");
    json_number(f, c->samples ? c->sum_mhz / c->samples : NAN, 0);
    snapmla_strbuf_puts(f, ", \"clock_limits\": ");
    if (c->samples) {
        char limits[160];
        cli_clock_reasons_text(c->reasons, limits, sizeof limits);
        json_string(f, limits);
    } else {
        snapmla_strbuf_puts(f, "null");
    }
    snapmla_strbuf_puts(f, "}");
}

/* ---- timing ---------------------------------------------------------------- */

static int check(const snapmla_error *err, snapmla_status s)
{
    if (s != SNAPMLA_OK)
        cli_report(err);
    return s == SNAPMLA_OK;
}

/* Device-to-device copy bandwidth, bytes read plus written: the ceiling.
 * 0 after reporting a failed driver call. */
static double copy_bandwidth(const snapmla_driver *d, snapmla_error *err)
{
    size_t bytes = (size_t)1 << 30;
    CUdeviceptr a = 0, b = 0;
    CUevent start = NULL, stop = NULL;
    float ms = 0, best = 1e30f;
    snapmla_status s = SNAPMLA_CU(d, cuMemAlloc(&a, bytes), err);
    if (s == SNAPMLA_OK)
        s = SNAPMLA_CU(d, cuMemAlloc(&b, bytes), err);
    if (s == SNAPMLA_OK)
        s = SNAPMLA_CU(d, cuMemsetD8(a, 0x3c, bytes), err);
    if (s == SNAPMLA_OK)
        s = SNAPMLA_CU(d, cuEventCreate(&start, 0), err);
    if (s == SNAPMLA_OK)
        s = SNAPMLA_CU(d, cuEventCreate(&stop, 0), err);
    for (int i = 0; i < 6 && s == SNAPMLA_OK; ++i) {
        if ((s = SNAPMLA_CU(d, cuEventRecord(start, NULL), err)) != SNAPMLA_OK ||
            (s = SNAPMLA_CU(d, cuMemcpyDtoD(b, a, bytes), err)) != SNAPMLA_OK ||
            (s = SNAPMLA_CU(d, cuEventRecord(stop, NULL), err)) != SNAPMLA_OK ||
            (s = SNAPMLA_CU(d, cuEventSynchronize(stop), err)) != SNAPMLA_OK ||
            (s = SNAPMLA_CU(d, cuEventElapsedTime(&ms, start, stop), err)) != SNAPMLA_OK)
            break;
        if (i > 0 && ms < best)
            best = ms;
    }
    /* Cleanup after a failure may fail too; the first error is the one reported. */
    if (stop)
        d->cuEventDestroy(stop);
    if (start)
        d->cuEventDestroy(start);
    if (b)
        d->cuMemFree(b);
    if (a)
        d->cuMemFree(a);
    if (!check(err, s))
        return 0;
    return 2.0 * (double)bytes / (best * 1e-3) / 1e12;
}

static void device_name(const snapmla_driver *d, char *name, int size)
{
    CUdevice device;
    snapmla_error err;
    if (SNAPMLA_CU(d, cuCtxGetDevice(&device), &err) != SNAPMLA_OK ||
        SNAPMLA_CU(d, cuDeviceGetName(name, size, device), &err) != SNAPMLA_OK)
        snprintf(name, (size_t)size, "unknown");
}

/* One shape: buffers made and filled, the call timed, buffers freed. */
static int bench_shape(snapmla_context *ctx, snapmla_kernel *kernel, shape sh, const bench_options *o,
                       const cli_l2_flush *flush, const cli_clock_watch *watch, bench_row *row,
                       snapmla_error *err)
{
    const snapmla_variant *v = snapmla_kernel_variant(kernel);
    cli_decode_problem p;
    int made = sh.ragged ? cli_decode_problem_make_ragged(ctx, v, sh.batch, sh.seqlen, &p, err)
                         : cli_decode_problem_make(ctx, v, sh.batch, sh.seqlen, &p, err);
    if (!made)
        return 0;
    row->tokens = p.tokens;
    int ok = cli_decode_time(kernel, &p, o->replays, 0, o->plan_ready, flush, watch, &row->t, err);
    cli_decode_problem_free(&p);
    return ok;
}

enum { MAX_FIRSTS = 256 };

/* Where the rows go: the table on stdout, and the files asked for. */
typedef struct bench_out {
    double copy;   /* TB/s */
    cli_mma_ceilings mma;
    cli_l2_flush flush;   /* --cold-l2: written before each timed call; else no buffer (0 bytes) */
    cli_gpu_clock clock;  /* NVML, when the driver has it */
    cli_clock_watch watch;
    /* per shape and query rows, the first variant's time: what `vs first`
     * divides (FP8 against BF16 at the same heads, never across heads) */
    struct { int shape, rows; double us; } first[MAX_FIRSTS];
    int firsts;
    FILE *csv;
    json_out *json;
} bench_out;

static double first_us(bench_out *out, int k, const bench_row *r)
{
    for (int i = 0; i < out->firsts; ++i)
        if (out->first[i].shape == k && out->first[i].rows == r->rows)
            return out->first[i].us;
    if (out->firsts == MAX_FIRSTS)
        return r->t.us;   /* past the table (never with 16 shapes x 16 head counts) */
    out->first[out->firsts].shape = k;
    out->first[out->firsts].rows = r->rows;
    out->first[out->firsts].us = r->t.us;
    return out->first[out->firsts++].us;
}

static void put_row(bench_out *out, int k, const bench_row *r)
{
    char sk[32], fm_us[32] = "-", vs_fm[32] = "-", mma[32] = "-", mma_csv[32] = "";
    snprintf(sk, sizeof sk, "%d%s", r->sh.seqlen, r->sh.ragged ? "~" : "");
    if (r->flashmla_us > 0) {
        snprintf(fm_us, sizeof fm_us, "%.0f", r->flashmla_us);
        snprintf(vs_fm, sizeof vs_fm, "%.2fx", r->flashmla_us / r->t.us);
    }
    if (isfinite(r->mma_fraction)) {
        snprintf(mma, sizeof mma, "%.1f%%", 100 * r->mma_fraction);
        snprintf(mma_csv, sizeof mma_csv, "%.4f", r->mma_fraction);
    }
    /* the SM clock while the replays ran, and what held it down: "1980",
     * "1560 power cap"; "-" (empty in the CSV) without NVML */
    char mhz[200] = "-", mhz_csv[32] = "", limits[160] = "";
    const cli_clock_stats *c = &r->t.clock;
    if (c->samples) {
        cli_clock_reasons_text(c->reasons, limits, sizeof limits);
        snprintf(mhz_csv, sizeof mhz_csv, "%.0f", c->sum_mhz / c->samples);
        snprintf(mhz, sizeof mhz, "%s%s%s", mhz_csv, limits[0] ? " " : "", limits);
    }
    double first = first_us(out, k, r);
    printf("| %s | %d | %s | %.1f | %.3f | %.1f%% | %.1f | %s | %s | %s | %.2fx | %s |\n", r->variant,
           r->sh.batch, sk, r->t.us, r->t.tbps, 100 * r->copy_fraction, r->t.tflops, mma, fm_us, vs_fm,
           first / r->t.us, mhz);
    fflush(stdout);
    if (out->csv)   /* an empty mma_fraction: no tensor-core probe on this GPU; empty sm_mhz: no NVML */
        fprintf(out->csv, "%s,%d,%d,%d,%lld,%.2f,%.4f,%.4f,%.2f,%s,%.0f,%s,\"%s\"\n", r->variant, r->sh.batch,
                r->sh.seqlen, r->sh.ragged, (long long)r->tokens, r->t.us, r->t.tbps,
                r->copy_fraction, r->t.tflops, mma_csv, r->flashmla_us, mhz_csv, limits);
    if (out->json)
        json_row(out->json, r);
}

/* Every mla_decode variant of one spec on every shape. */
static int bench_spec(snapmla_context *ctx, const bench_options *o, const char *path,
                      bench_out *out, snapmla_error *err)
{
    snapmla_spec *spec;
    if (snapmla_spec_load(path, &spec, err) != SNAPMLA_OK)
        return cli_report(err);
    int code = CLI_OK;
    for (size_t i = 0; i < spec->count && code == CLI_OK; ++i) {
        const snapmla_variant *v = &spec->variants[i];
        snapmla_kernel *kernel;
        if (v->kernel != SNAPMLA_KERNEL_MLA_DECODE)
            continue;
        if (snapmla_kernel_get(ctx, v, &kernel, err) != SNAPMLA_OK) {
            code = cli_report(err);
            break;
        }
        for (int k = 0; k < o->shape_count; ++k) {
            bench_row r = {.variant = v->name, .sh = o->shapes[k], .rows = v->q_heads * v->q_len};
            if (!bench_shape(ctx, kernel, r.sh, o, &out->flush, &out->watch, &r, err)) {
                code = CLI_FAILED;
                break;
            }
            r.copy_fraction = r.t.tbps / out->copy;
            /* FP8 products against the e4m3 peak, every other engine against BF16's */
            r.mma_fraction = !out->mma.measured ? NAN
                             : r.t.tflops / (v->compute == SNAPMLA_COMPUTE_FP8 ? out->mma.fp8_tflops
                                                                              : out->mma.bf16_tflops);
            r.flashmla_us = r.sh.ragged ? 0 : flashmla_us(v->q_heads, v->q_len, r.sh.batch, r.sh.seqlen);
            put_row(out, k, &r);
        }
    }
    snapmla_spec_free(spec);
    return code;
}

/* The ceilings, then every spec; the JSON document is left for the caller to finish. */
static int bench(snapmla_context *ctx, const bench_options *o, json_out *json)
{
    snapmla_error err;
    const snapmla_driver *d;
    if (snapmla_context_driver(ctx, &d, &err) != SNAPMLA_OK ||
        snapmla_driver_ensure_context(d, &err) != SNAPMLA_OK) {
        int code = cli_report(&err);
        return code == CLI_USAGE ? CLI_FAILED : code;
    }
    bench_out out = {.json = json->open ? json : NULL};
    out.csv = o->csv ? fopen(o->csv, "w") : NULL;
    if (o->csv && !out.csv) {
        fprintf(stderr, "snapmla: cannot write '%s': %s\n", o->csv, strerror(errno));
        return CLI_USAGE;
    }
    char device[256];
    device_name(d, device, (int)sizeof device);
    printf("device: %s\n", device);
    out.copy = copy_bandwidth(d, &err);
    if (out.copy <= 0) {   /* the failed driver call is reported */
        if (out.csv)
            fclose(out.csv);
        return CLI_FAILED;
    }
    printf("device copy bandwidth (read + write), measured now: %.2f TB/s\n", out.copy);
    if (cli_mma_peak(d, &out.mma, &err) != SNAPMLA_OK) {
        int failed = cli_report(&err);
        if (out.csv)
            fclose(out.csv);
        return failed;
    }
    if (out.mma.measured)
        printf("tensor-core peak (back-to-back wgmma from shared memory), measured now: "
               "bf16 %.0f, fp8 %.0f TFLOP/s (m64n256); fp8 at the decode's m64n64k32: %.0f (2 warpgroups "
               "from shared memory, 2 with A in registers), %.0f (4 from shared memory)\n",
               out.mma.bf16_tflops, out.mma.fp8_tflops, out.mma.fp8_n64_mix_tflops, out.mma.fp8_n64_ss_tflops);
    else
        printf("tensor-core peak: not measured (the probe needs a Hopper GPU)\n");
    printf("GEMM ceilings (8192^3 through torch on the lent H100, not this run): bf16 784, "
           "fp8 1442 TFLOP/s\n");
    if (!strstr(device, "H100"))   /* the FlashMLA column is an H100's; other memories move other bytes */
        printf("FlashMLA BF16 us: measured on an H100, not this %s: compare bandwidth-bound shapes "
               "within this run only\n", device);
    if (o->cold_l2) {
        if (!cli_l2_flush_alloc(d, &out.flush, (size_t)o->flush_mb << 20, &err)) {
            if (out.csv)
                fclose(out.csv);
            return CLI_FAILED;
        }
        if (o->flush_mb)
            printf("--flush-mb %d: %zu MB written before each call (not timed); FlashMLA's own "
                   "benchmark writes 8 GB between calls\n", o->flush_mb, out.flush.bytes >> 20);
        else
            printf("--cold-l2: L2 flushed before each call (%zu MB written, not timed), as triton's "
                   "do_bench does\n", out.flush.bytes >> 20);
    }
    if (o->plan_ready)
        printf("--plan-ready: each call reuses a plan made once, as a step's layers after the first "
               "do; the plan kernel is not timed\n");
    cli_gpu_clock_open(d, &out.clock);
    out.watch.clock = &out.clock;
    out.watch.sustain_s = o->sustain_s;
    if (out.clock.library)
        printf("SM MHz: the SM clock while each shape's replays ran (NVML; maximum %u MHz), and "
               "what held it below (power cap: the board at its power limit)\n", out.clock.max_mhz);
    else
        printf("SM MHz: not sampled (%s)\n", out.clock.why);
    if (o->sustain_s)
        printf("--sustain %d: each shape's call replayed back to back for %d s before its timing, so "
               "the clock settles where a busy engine keeps it\n", o->sustain_s, o->sustain_s);
    else
        printf("each shape timed after a short warm-up: a burst, as FlashMLA's figures are; "
               "--sustain times a busy GPU (docs/bench.md)\n");
    for (int k = 0; k < o->shape_count; ++k)
        if (o->shapes[k].ragged) {
            printf("s_k N~: a ragged batch, cache lengths drawn uniformly in 1..2N-1 (fixed seed); "
                   "TB/s and TFLOP/s count the drawn lengths\n");
            break;
        }
    printf("\n| variant | batch | s_k | us | TB/s | %% copy BW | TFLOP/s | %% MMA peak | FlashMLA BF16 us | vs FlashMLA | vs first | SM MHz |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    if (out.csv)
        fprintf(out.csv, "variant,batch,seqlen,ragged,tokens,us,tbps,copy_fraction,tflops,mma_fraction,flashmla_us,"
                         "sm_mhz,clock_limits\n");
    if (out.json)
        json_begin(json, device, o, out.clock.max_mhz, out.copy, &out.mma);
    int code = CLI_OK;
    for (int s = 0; s < o->spec_count && code == CLI_OK; ++s)
        code = bench_spec(ctx, o, o->spec_paths[s], &out, &err);
    cli_l2_flush_free(d, &out.flush);
    cli_gpu_clock_close(&out.clock);
    if (out.csv && fclose(out.csv) != 0 && code == CLI_OK) {
        fprintf(stderr, "snapmla: cannot write '%s': %s\n", o->csv, strerror(errno));
        code = CLI_FAILED;
    }
    return code;
}

static int run_bench(int argc, char **argv)
{
    bench_options o = {.replays = 10};
    char why[512];
    parse_shapes("128x4096,128x16384,1x65536", &o, why, sizeof why);
    int code = parse_options(argc, argv, &o);
    if (code != CLI_OK)
        return code;
    json_out json = {0};
    if (o.json && !json_open(&json, o.json))
        return CLI_USAGE;
    int verbose = 0;
    snapmla_context *ctx = cli_context(&verbose, NULL, 0);
    code = ctx ? bench(ctx, &o, &json) : CLI_FAILED;
    if (json.open && code == CLI_OK) {
        if (!json_finish(&json))
            code = CLI_FAILED;
    } else if (json.open) {
        json_abandon(&json);
        fprintf(stderr, "snapmla: '%s' not written: the run did not finish\n", o.json);
    }
    if (ctx)
        snapmla_context_destroy(ctx);
    return code;
}

const cli_command cli_bench = {
    "bench", "time decode calls on the GPU (TB/s, TFLOP/s)",
    "usage: snapmla bench SPEC... [--shapes SHAPE,...] [--replays N] [--csv FILE] [--json FILE]\n"
    "                     [--plan-ready] [--cold-l2] [--flush-mb MB] [--sustain SECONDS]\n\n"
    "Times every mla_decode variant of the specs on the GPU: whole calls (split +\n"
    "combine) captured in a CUDA graph, median of N replays queued back to back,\n"
    "each timed with its own CUDA events (GPU time, no host launch latency), after\n"
    "two warm-up replays; the cache is filled through the append kernel of\n"
    "the same format with random data, pages scattered at random. Prints per\n"
    "shape: microseconds, achieved TB/s (cache bytes read + q + out) next to the\n"
    "device's copy bandwidth measured in the same run, TFLOP/s as a share of the\n"
    "tensor-core peak (fp8 or bf16, the variant's compute) measured in the same\n"
    "run on Hopper, FlashMLA BF16's time for the uniform shapes it was measured\n"
    "on, the ratio to the first variant with the same query heads x q_len\n"
    "(list the FP8 spec first for BF16/FP8 ratios), and the SM clock while the\n"
    "replays ran (NVML) with what held it down (the board's power cap). docs/bench.md\n"
    "has the details and the file formats.\n"
    "  --shapes   shapes, comma-separated, at most 16 (default 128x4096,128x16384,1x65536):\n"
    "             BATCHxSEQLEN   every request has SEQLEN tokens of cache\n"
    "             BATCHxSEQLEN~  ragged: lengths drawn uniformly in 1..2*SEQLEN-1\n"
    "                            (fixed seed: the same batch every run); TB/s and\n"
    "                            TFLOP/s count the drawn lengths\n"
    "  --replays  timed replays per shape, 3..64 (default 10)\n"
    "  --csv      also write the rows as CSV\n"
    "  --json     also write the rows and the measured ceilings as JSON; the file\n"
    "             appears only when the run completes\n"
    "  --plan-ready  time the calls of a step's later layers: the work plan (Hopper,\n"
    "             persistent launches) is made once and reused, not timed\n"
    "  --cold-l2  flush L2 before each timed call (twice its size written, not timed),\n"
    "             as triton's do_bench does; default: each call finds L2 as the last left it\n"
    "  --flush-mb MB (64..16384) written before each timed call instead (implies\n"
    "             --cold-l2); 8000 is what FlashMLA's own benchmark writes between calls\n"
    "  --sustain  seconds (0..120, default 0) of back-to-back replays before each\n"
    "             shape's timing: the board then sits at its power limit as in a busy\n"
    "             engine, and the clock (and times) with it; default: a burst\n",
    run_bench,
};
