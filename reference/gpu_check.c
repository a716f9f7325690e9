/* GPU checks: a loaded kernel against the float64 host reference, on fresh
 * random data with NaN-poisoned unused cache slots and poisoned outputs. */
#include "gpu_check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "error.h"
#include "decode_graph.h"
#include "reference.h"

/* ---- device buffers ------------------------------------------------------ */

typedef struct device_buffer {
    CUdeviceptr ptr;
    size_t size;
} device_buffer;

typedef struct device_arena {
    const snapmla_driver *d;
    device_buffer buffers[16];
    int count;
} device_arena;

static snapmla_status arena_alloc(device_arena *a, size_t size, uint8_t poison,
                                  CUdeviceptr *out, snapmla_error *err)
{
    if (a->count == 16)
        return snapmla_fail(err, SNAPMLA_ERR_INTERNAL, "gpu check: too many buffers");
    device_buffer *b = &a->buffers[a->count];
    b->size = size ? size : 16;
    snapmla_status s = SNAPMLA_CU(a->d, cuMemAlloc(&b->ptr, b->size), err);
    if (s != SNAPMLA_OK)
        return s;
    a->count++;
    *out = b->ptr;
    return SNAPMLA_CU(a->d, cuMemsetD8(b->ptr, poison, b->size), err);
}

static snapmla_status arena_upload(device_arena *a, const void *host, size_t size,
                                   CUdeviceptr *out, snapmla_error *err)
{
    snapmla_status s = arena_alloc(a, size, 0, out, err);
    if (s == SNAPMLA_OK && size)
        s = SNAPMLA_CU(a->d, cuMemcpyHtoD(*out, host, size), err);
    return s;
}

static void arena_free(device_arena *a)
{
    for (int i = 0; i < a->count; ++i)
        a->d->cuMemFree(a->buffers[i].ptr);
    a->count = 0;
}

#define PTR(x) ((void *)(uintptr_t)(x))

/* ---- comparison (reference/compare.c) ---------------------------------------- */

typedef snapmla_comparison comparison;

static void worst_of(comparison *worst, const comparison *c)
{
    worst->rel_l2 = fmax(worst->rel_l2, c->rel_l2);
    worst->rel_l2_exact = fmax(worst->rel_l2_exact, c->rel_l2_exact);
    worst->max_abs = fmax(worst->max_abs, c->max_abs);
    worst->lse_max_abs = fmax(worst->lse_max_abs, c->lse_max_abs);
    worst->nan_count += c->nan_count;
    worst->unwritten += c->unwritten;
    worst->lse_mismatch += c->lse_mismatch;
    worst->lse_bound_ratio = fmax(worst->lse_bound_ratio, c->lse_bound_ratio);
}

/* The tensor-core engines' BF16 products (mma_sync, wgmma with compute
 * bf16) round P to BF16 before PV. */
static int p_in_bf16(const snapmla_variant *v)
{
    return v->engine != SNAPMLA_ENGINE_SIMT && v->compute == SNAPMLA_COMPUTE_BF16;
}

/* Those are judged against the unrounded reference, the FP8 path too (its
 * Q and P are e4m3), the SIMT engine against the BF16-rounded one; see
 * gpu_check.h. */
static int unrounded(const snapmla_variant *v)
{
    return p_in_bf16(v) || v->compute == SNAPMLA_COMPUTE_FP8;
}

static double tolerance_of(const snapmla_variant *v)
{
    if (v->compute == SNAPMLA_COMPUTE_FP8)
        return SNAPMLA_CHECK_REL_L2_FP8;
    return p_in_bf16(v) ? SNAPMLA_CHECK_REL_L2_BF16_P : SNAPMLA_CHECK_REL_L2;
}

static double lse_tolerance_of(const snapmla_variant *v)
{
    return v->compute == SNAPMLA_COMPUTE_FP8 ? SNAPMLA_CHECK_LSE_ABS_FP8 : SNAPMLA_CHECK_LSE_ABS;
}

/* The FP8 path's LSE is judged per row against its bound (gpu_check.h),
 * the others' against one absolute tolerance. */
static int comparison_passed(const comparison *c, const snapmla_variant *v)
{
    if (v->compute == SNAPMLA_COMPUTE_FP8)
        return snapmla_comparison_passed(c, 1, tolerance_of(v), INFINITY) && c->lse_bound_ratio <= 1.0;
    return snapmla_comparison_passed(c, unrounded(v), tolerance_of(v), lse_tolerance_of(v));
}

/* ---- decode -------------------------------------------------------------- */

static void describe_seqlens(const int32_t *seqlens, int batch, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (int b = 0; b < batch && used + 16 < size; ++b)
        used += (size_t)snprintf(out + used, size - used, "%s%d", b ? "," : "", seqlens[b]);
    if (batch > 0 && used + 16 >= size)
        snprintf(out + used, size - used, ",...");
}

typedef struct decode_run {
    const snapmla_driver *d;
    snapmla_problem *p;
    size_t rows, out_count;
    CUdeviceptr out, lse, seqlens;
    uint16_t *host_out;
    float *host_lse;
    double *ref_out, *ref_lse;
    double *lse_bound;          /* per row, the FP8 path's LSE bound; NULL otherwise */
    int reference_current;      /* ref_* and lse_bound hold the current inputs' answer */
} decode_run;

/* Poisons the outputs, runs (a graph replay or a plain call), compares. */
static snapmla_status run_and_compare(decode_run *run, snapmla_kernel *kernel,
                                      const snapmla_decode_args *args, CUgraphExec graph,
                                      CUstream stream, comparison *c, snapmla_error *err)
{
    const snapmla_driver *d = run->d;
    snapmla_status s;
    if ((s = SNAPMLA_CU(d, cuMemsetD8(run->out, 0xff, run->out_count * 2), err)) ||
        (s = SNAPMLA_CU(d, cuMemsetD8(run->lse, 0xff, run->rows * 4), err)))
        return s;
    /* The poison (and a graph round's new lengths) went through the legacy
     * stream, which the graph's non-blocking stream does not wait for:
     * without this the LSE poison could land after the kernel's writes. */
    if (!graph)
        s = snapmla_decode(kernel, args, stream, err);
    else if ((s = SNAPMLA_CU(d, cuCtxSynchronize(), err)) == SNAPMLA_OK)
        s = SNAPMLA_CU(d, cuGraphLaunch(graph, stream), err);
    if (s || (s = SNAPMLA_CU(d, cuStreamSynchronize(stream), err)) ||
        (s = SNAPMLA_CU(d, cuMemcpyDtoH(run->host_out, run->out, run->out_count * 2), err)) ||
        (s = SNAPMLA_CU(d, cuMemcpyDtoH(run->host_lse, run->lse, run->rows * 4), err)))
        return s;
    if (!run->reference_current) {
        if ((s = snapmla_ref_decode_magnitude(run->p, run->ref_out, run->ref_lse, run->lse_bound, err)))
            return s;
        if (run->lse_bound)   /* the reference wrote each row's score magnitude: make it the bound */
            for (size_t r = 0; r < run->rows; ++r)
                run->lse_bound[r] = SNAPMLA_CHECK_LSE_ABS_FP8 + SNAPMLA_CHECK_LSE_REL_FP8 * run->lse_bound[r];
        run->reference_current = 1;
    }
    snapmla_compare(run->host_out, run->host_lse, run->ref_out, run->ref_lse, run->rows,
                    (size_t)run->p->variant.latent_dim, c);
    if (run->lse_bound)
        snapmla_compare_lse_bounds(run->host_lse, run->ref_lse, run->lse_bound, run->rows, c);
    return SNAPMLA_OK;
}

/* Captures the call once, then replays it for each round's cache lengths. */
static snapmla_status graph_rounds(decode_run *run, snapmla_kernel *kernel,
                                   const snapmla_decode_args *args,
                                   const snapmla_decode_check *check, comparison *worst,
                                   snapmla_error *err)
{
    const snapmla_driver *d = run->d;
    snapmla_decode_graph g;
    snapmla_status s = snapmla_decode_graph_capture(d, kernel, args, &g, err);
    int32_t *saved = run->p->seqlens;
    for (int round = 0; s == SNAPMLA_OK && round < check->graph_round_count; ++round) {
        const int32_t *lengths = check->graph_rounds[round];
        for (int b = 0; b < check->batch; ++b)
            if (lengths[b] > check->seqlens[b])
                s = snapmla_fail(err, SNAPMLA_ERR_INVALID_ARG,
                                 "gpu check: graph round %d asks for more tokens than the cache has",
                                 round);
        if (s == SNAPMLA_OK)
            s = SNAPMLA_CU(d, cuMemcpyHtoD(run->seqlens, lengths, (size_t)check->batch * 4), err);
        run->p->seqlens = (int32_t *)lengths;   /* the reference reads the round's lengths */
        run->reference_current = 0;
        comparison c;
        if (s == SNAPMLA_OK && (s = run_and_compare(run, kernel, args, g.exec, g.stream, &c, err)) == SNAPMLA_OK)
            worst_of(worst, &c);
        run->p->seqlens = saved;
    }
    snapmla_decode_graph_destroy(&g);
    return s;
}

/* One plan, then `calls` decodes on it (plan_ready), each compared with
 * the one reference of their common inputs. */
static snapmla_status plan_reuse_rounds(decode_run *run, snapmla_kernel *kernel,
                                        const snapmla_decode_args *args, int calls, comparison *worst,
                                        snapmla_error *err)
{
    snapmla_decode_args reuse = *args;
    reuse.plan_ready = 1;
    snapmla_status s = snapmla_decode_plan(kernel, args, NULL, err);
    for (int i = 0; s == SNAPMLA_OK && i < calls; ++i) {
        comparison c;
        if ((s = run_and_compare(run, kernel, &reuse, NULL, NULL, &c, err)) == SNAPMLA_OK)
            worst_of(worst, &c);
    }
    return s;
}

snapmla_status snapmla_check_decode(snapmla_context *ctx, snapmla_kernel *kernel,
                                    const snapmla_decode_check *c, snapmla_check_report *report,
                                    snapmla_error *err)
{
    const snapmla_variant *v = snapmla_kernel_variant(kernel);
    const snapmla_driver *d;
    snapmla_status s = snapmla_context_driver(ctx, &d, err);
    if (s != SNAPMLA_OK)
        return s;
    snapmla_problem p;
    if ((s = snapmla_problem_make(v, c->batch, c->seqlens, c->page_stride, c->seed, &p, err)))
        return s;
    decode_run run = {.d = d, .p = &p};
    run.rows = (size_t)c->batch * v->q_len * v->q_heads;
    run.out_count = run.rows * (size_t)v->latent_dim;
    run.ref_out = malloc(run.out_count * sizeof *run.ref_out);
    run.ref_lse = malloc(run.rows * sizeof *run.ref_lse);
    const int fp8 = v->compute == SNAPMLA_COMPUTE_FP8;
    run.lse_bound = fp8 ? malloc(run.rows * sizeof *run.lse_bound) : NULL;
    run.host_out = malloc(run.out_count * sizeof *run.host_out);
    run.host_lse = malloc(run.rows * sizeof *run.host_lse);
    device_arena a = {.d = d};
    size_t width = (size_t)v->latent_dim + v->rope_dim;
    size_t ws_bytes = snapmla_decode_workspace_bytes(kernel, c->batch);
    CUdeviceptr dq, dcache, dtable, dws;
    if (!run.ref_out || !run.ref_lse || (fp8 && !run.lse_bound) || !run.host_out || !run.host_lse)
        s = snapmla_fail(err, SNAPMLA_ERR_NOMEM, "gpu check: out of host memory");
    if (s || (s = arena_upload(&a, p.q, run.rows * width * 2, &dq, err)) ||
        (s = arena_upload(&a, p.cache, (size_t)(p.num_pages * p.page_stride), &dcache, err)) ||
        (s = arena_upload(&a, p.block_table, (size_t)c->batch * p.block_table_stride * 4, &dtable, err)) ||
        (s = arena_upload(&a, p.seqlens, (size_t)c->batch * 4, &run.seqlens, err)) ||
        (s = arena_alloc(&a, run.out_count * 2, 0xff, &run.out, err)) ||
        (s = arena_alloc(&a, run.rows * 4, 0xff, &run.lse, err)) ||
        (s = arena_alloc(&a, ws_bytes, 0xff, &dws, err)))
        goto done;
    snapmla_decode_args args = {
        .batch = c->batch, .q = PTR(dq), .kv_cache = PTR(dcache), .num_pages = p.num_pages,
        .page_stride = p.page_stride, .block_table = PTR(dtable),
        .block_table_stride = p.block_table_stride, .cache_seqlens = PTR(run.seqlens),
        .softmax_scale = p.softmax_scale, .out = PTR(run.out), .lse = PTR(run.lse),
        .workspace = PTR(dws), .workspace_bytes = ws_bytes, .num_splits = c->num_splits,
    };
    comparison worst = {0};
    if (c->graph_round_count > 0)
        s = graph_rounds(&run, kernel, &args, c, &worst, err);
    else if (c->plan_reuse_calls > 0)
        s = plan_reuse_rounds(&run, kernel, &args, c->plan_reuse_calls, &worst, err);
    else
        s = run_and_compare(&run, kernel, &args, NULL, NULL, &worst, err);
    if (s != SNAPMLA_OK)
        goto done;
    report->passed = comparison_passed(&worst, v);
    double tolerance = tolerance_of(v);
    char lens[96], tolerances[128];
    describe_seqlens(c->seqlens, c->batch, lens, sizeof lens);
    char mode[48] = "seqlens ";
    if (c->graph_round_count)
        snprintf(mode, sizeof mode, "graph rounds, cache ");
    else if (c->plan_reuse_calls)
        snprintf(mode, sizeof mode, "one plan, %d decodes, seqlens ", c->plan_reuse_calls);
    if (v->compute == SNAPMLA_COMPUTE_FP8)
        snprintf(tolerances, sizeof tolerances,
                 "lse/bound %.2f (tol %.0e unrounded, lse %.0e + 2^-9 sum|q k|)",
                 worst.lse_bound_ratio, tolerance, lse_tolerance_of(v));
    else
        snprintf(tolerances, sizeof tolerances, "(tol %.0e%s, %.0e)", tolerance,
                 unrounded(v) ? " unrounded" : "", lse_tolerance_of(v));
    snprintf(report->summary, sizeof report->summary,
             "%s %s[%s] splits %d seed %llu: rel_l2 %.2e (vs unrounded %.2e) max_abs %.2e "
             "lse_max_abs %.2e nan %ld unwritten %ld lse_mismatch %ld %s",
             report->passed ? "PASS" : "FAIL",
             mode, lens, c->num_splits,
             (unsigned long long)c->seed, worst.rel_l2, worst.rel_l2_exact, worst.max_abs,
             worst.lse_max_abs, worst.nan_count, worst.unwritten, worst.lse_mismatch, tolerances);
done:
    arena_free(&a);
    snapmla_problem_free(&p);
    free(run.ref_out);
    free(run.ref_lse);
    free(run.lse_bound);
    free(run.host_out);
    free(run.host_lse);
    return s == SNAPMLA_OK ? snapmla_ok(err) : s;
}

/* ---- append -------------------------------------------------------------- */

snapmla_status snapmla_check_append(snapmla_context *ctx, snapmla_kernel *kernel,
                                    int64_t num_tokens, uint64_t seed,
                                    snapmla_check_report *report, snapmla_error *err)
{
    const snapmla_variant *v = snapmla_kernel_variant(kernel);
    const snapmla_driver *d;
    snapmla_status s = snapmla_context_driver(ctx, &d, err);
    if (s != SNAPMLA_OK)
        return s;
    snapmla_rng r = {seed};
    int L = v->latent_dim, R = v->rope_dim;
    int64_t page_bytes = (int64_t)snapmla_cache_page_bytes(v);
    int64_t num_pages = num_tokens / v->page_size + 2;
    int64_t slots_total = num_pages * v->page_size;
    size_t cache_bytes = (size_t)(num_pages * page_bytes), n = (size_t)num_tokens;
    /* rows wider than the data, to exercise the strides */
    int64_t latent_stride = L + 8, rope_stride = R + 8;
    uint16_t *latent = malloc((n + 1) * latent_stride * 2), *rope = malloc((n + 1) * rope_stride * 2);
    int64_t *slots = malloc((n + 1) * sizeof *slots), *free_slots = malloc((size_t)slots_total * 8);
    unsigned char *expected = malloc(cache_bytes), *got = malloc(cache_bytes);
    device_arena a = {.d = d};
    if (!latent || !rope || !slots || !free_slots || !expected || !got) {
        s = snapmla_fail(err, SNAPMLA_ERR_NOMEM, "gpu check: out of host memory");
        goto done;
    }
    for (size_t i = 0; i < n * latent_stride; ++i)
        latent[i] = snapmla_f32_to_bf16((float)(snapmla_rng_normal(&r) * (1 + (i / latent_stride) % 7)));
    for (size_t i = 0; i < n * rope_stride; ++i)
        rope[i] = snapmla_f32_to_bf16((float)snapmla_rng_normal(&r));
    /* An all-zero token and one huge channel, the scale rule's edges. */
    if (n > 2) {
        memset(latent, 0, (size_t)L * 2);
        latent[latent_stride + 3] = snapmla_f32_to_bf16(30000.f);
    }
    for (int64_t i = 0; i < slots_total; ++i)
        free_slots[i] = i;
    for (int64_t i = slots_total - 1; i > 0; --i) {
        int64_t j = (int64_t)snapmla_rng_below(&r, (uint64_t)i + 1), t = free_slots[i];
        free_slots[i] = free_slots[j];
        free_slots[j] = t;
    }
    int64_t bad_expected = 0;
    for (size_t i = 0; i < n; ++i) {
        uint64_t kind = snapmla_rng_below(&r, 50);
        if (kind == 0)
            slots[i] = -1;                                  /* padding: skipped */
        else if (kind == 1) {
            slots[i] = slots_total + (int64_t)snapmla_rng_below(&r, 1000);   /* rejected */
            bad_expected++;
        } else
            slots[i] = free_slots[i];
    }
    memset(expected, 0xa5, cache_bytes);
    snapmla_layout layout = snapmla_layout_of(v);
    int64_t rejected = snapmla_ref_append(&layout, expected, num_pages, page_bytes, latent,
                                          latent_stride, rope, rope_stride, slots, num_tokens);
    if (rejected != bad_expected) {
        s = snapmla_fail(err, SNAPMLA_ERR_INTERNAL, "gpu check: the host append rejected %lld "
                         "slots, %lld planted", (long long)rejected, (long long)bad_expected);
        goto done;
    }
    CUdeviceptr dlatent, drope, dslots, dcache, dbad;
    int32_t bad = -1;
    if ((s = arena_upload(&a, latent, n * latent_stride * 2, &dlatent, err)) ||
        (s = arena_upload(&a, rope, n * rope_stride * 2, &drope, err)) ||
        (s = arena_upload(&a, slots, n * 8, &dslots, err)) ||
        (s = arena_alloc(&a, cache_bytes, 0xa5, &dcache, err)) ||
        (s = arena_alloc(&a, 4, 0, &dbad, err)))
        goto done;
    snapmla_append_args args = {
        .num_tokens = num_tokens, .latent = PTR(dlatent), .latent_stride = latent_stride,
        .rope = PTR(drope), .rope_stride = rope_stride, .slot_mapping = PTR(dslots),
        .kv_cache = PTR(dcache), .num_pages = num_pages, .page_stride = 0, .bad_slots = PTR(dbad),
    };
    if ((s = snapmla_append(kernel, &args, NULL, err)) ||
        (s = SNAPMLA_CU(d, cuCtxSynchronize(), err)) ||
        (s = SNAPMLA_CU(d, cuMemcpyDtoH(got, dcache, cache_bytes), err)) ||
        (s = SNAPMLA_CU(d, cuMemcpyDtoH(&bad, dbad, 4), err)))
        goto done;
    size_t differing = 0, first = 0;
    for (size_t i = 0; i < cache_bytes; ++i)
        if (got[i] != expected[i] && differing++ == 0)
            first = i;
    report->passed = differing == 0 && bad == bad_expected;
    snprintf(report->summary, sizeof report->summary,
             "%s %lld tokens seed %llu: %zu of %zu cache bytes differ from the host quantizer "
             "(first at byte %lld); bad slots %d (expected %lld)",
             report->passed ? "PASS" : "FAIL", (long long)num_tokens, (unsigned long long)seed,
             differing, cache_bytes, differing ? (long long)first : -1LL, bad,
             (long long)bad_expected);
done:
    arena_free(&a);
    free(latent), free(rope), free(slots), free(free_slots), free(expected), free(got);
    return s == SNAPMLA_OK ? snapmla_ok(err) : s;
}

/* ---- combine ------------------------------------------------------------- */

snapmla_status snapmla_check_combine(snapmla_context *ctx, snapmla_kernel *kernel, int batch,
                                     int splits, uint64_t seed, snapmla_check_report *report,
                                     snapmla_error *err)
{
    const snapmla_variant *v = snapmla_kernel_variant(kernel);
    const snapmla_driver *d;
    snapmla_status s = snapmla_context_driver(ctx, &d, err);
    if (s != SNAPMLA_OK)
        return s;
    snapmla_rng r = {seed};
    int rows = v->q_heads * v->q_len, L = v->latent_dim;
    size_t parts = (size_t)batch * splits * rows, out_rows = (size_t)batch * rows;
    float *o_part = malloc(parts * L * 4), *lse_part = malloc(parts * 4), *lse = malloc(out_rows * 4);
    int32_t *counts = malloc((size_t)batch * 4);
    uint16_t *out = malloc(out_rows * L * 2);
    double *ref_out = malloc(out_rows * L * 8), *ref_lse = malloc(out_rows * 8);
    device_arena a = {.d = d};
    if (!o_part || !lse_part || !lse || !counts || !out || !ref_out || !ref_lse) {
        s = snapmla_fail(err, SNAPMLA_ERR_NOMEM, "gpu check: out of host memory");
        goto done;
    }
    for (int b = 0; b < batch; ++b)
        counts[b] = 1 + (int32_t)snapmla_rng_below(&r, (uint64_t)splits);
    for (size_t i = 0; i < parts * L; ++i)
        o_part[i] = (float)snapmla_rng_normal(&r);
    for (size_t i = 0; i < parts; ++i) {
        /* some splits saw nothing (-inf); one request's rows saw nothing at all */
        uint64_t kind = snapmla_rng_below(&r, 8);
        lse_part[i] = kind == 0 ? -INFINITY : (float)(3 * snapmla_rng_normal(&r));
        if (batch > 1 && i / ((size_t)splits * rows) == 1)
            lse_part[i] = -INFINITY;
    }
    snapmla_ref_combine(batch, splits, rows, L, o_part, lse_part, counts, ref_out, ref_lse);
    CUdeviceptr dop, dlp, dcounts, dout, dlse;
    if ((s = arena_upload(&a, o_part, parts * L * 4, &dop, err)) ||
        (s = arena_upload(&a, lse_part, parts * 4, &dlp, err)) ||
        (s = arena_upload(&a, counts, (size_t)batch * 4, &dcounts, err)) ||
        (s = arena_alloc(&a, out_rows * L * 2, 0xff, &dout, err)) ||
        (s = arena_alloc(&a, out_rows * 4, 0xff, &dlse, err)))
        goto done;
    snapmla_combine_args args = {.batch = batch, .splits = splits, .o_partial = PTR(dop),
                                 .lse_partial = PTR(dlp), .split_counts = PTR(dcounts),
                                 .out = PTR(dout), .lse = PTR(dlse)};
    if ((s = snapmla_combine(kernel, &args, NULL, err)) ||
        (s = SNAPMLA_CU(d, cuCtxSynchronize(), err)) ||
        (s = SNAPMLA_CU(d, cuMemcpyDtoH(out, dout, out_rows * L * 2), err)) ||
        (s = SNAPMLA_CU(d, cuMemcpyDtoH(lse, dlse, out_rows * 4), err)))
        goto done;
    comparison c;
    snapmla_compare(out, lse, ref_out, ref_lse, out_rows, (size_t)L, &c);
    report->passed = snapmla_comparison_passed(&c, 0, SNAPMLA_CHECK_REL_L2,   /* fp32 weights */
                                               SNAPMLA_CHECK_LSE_ABS);
    snprintf(report->summary, sizeof report->summary,
             "%s batch %d splits %d seed %llu: rel_l2 %.2e max_abs %.2e lse_max_abs %.2e nan %ld "
             "lse_mismatch %ld (tol %.0e, %.0e)",
             report->passed ? "PASS" : "FAIL", batch, splits, (unsigned long long)seed, c.rel_l2,
             c.max_abs, c.lse_max_abs, c.nan_count, c.lse_mismatch, SNAPMLA_CHECK_REL_L2,
             SNAPMLA_CHECK_LSE_ABS);
done:
    arena_free(&a);
    free(o_part), free(lse_part), free(lse), free(counts), free(out), free(ref_out), free(ref_lse);
    return s == SNAPMLA_OK ? snapmla_ok(err) : s;
}
