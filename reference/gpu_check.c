/* GPU checks: a loaded kernel against the float64 host reference, on fresh
 * random data with NaN-poisoned unused cache slots and poisoned outputs. */
#include "gpu_check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "error.h"
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

/* ---- decode -------------------------------------------------------------- */

static void describe_seqlens(const int32_t *seqlens, int batch, char *out, size_t size)
{
    size_t used = 0;
    for (int b = 0; b < batch && used + 16 < size; ++b)
        used += (size_t)snprintf(out + used, size - used, "%s%d", b ? "," : "", seqlens[b]);
    if (batch > 0 && used + 16 >= size)
        snprintf(out + used, size - used, ",...");
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
    snapmla_ref_shape shape = {
        .batch = c->batch, .q_len = v->q_len, .q_heads = v->q_heads, .latent_dim = v->latent_dim,
        .rope_dim = v->rope_dim, .page_size = v->page_size, .rope_layout = v->rope_layout,
        .causal = v->causal,
    };
    snapmla_problem p;
    if ((s = snapmla_problem_make(&shape, c->seqlens, c->page_stride, c->seed, &p, err)) != SNAPMLA_OK)
        return s;
    size_t rows = (size_t)c->batch * v->q_len * v->q_heads;
    size_t out_count = rows * (size_t)v->latent_dim;
    double *ref_out = malloc(out_count * sizeof *ref_out);
    double *ref_lse = malloc(rows * sizeof *ref_lse);
    uint16_t *out = malloc(out_count * sizeof *out);
    float *lse = malloc(rows * sizeof *lse);
    device_arena a = {.d = d};
    if (!ref_out || !ref_lse || !out || !lse) {
        s = snapmla_fail(err, SNAPMLA_ERR_NOMEM, "gpu check: out of host memory");
        goto done;
    }
    size_t width = (size_t)v->latent_dim + v->rope_dim;
    CUdeviceptr dq, dcache, dtable, dseq, dout, dlse, dws;
    size_t ws_bytes = snapmla_decode_workspace_bytes(kernel, c->batch);
    if ((s = arena_upload(&a, p.q, rows * width * 2, &dq, err)) ||
        (s = arena_upload(&a, p.cache, (size_t)(p.num_pages * p.page_stride), &dcache, err)) ||
        (s = arena_upload(&a, p.block_table, (size_t)c->batch * p.block_table_stride * 4, &dtable, err)) ||
        (s = arena_upload(&a, p.seqlens, (size_t)c->batch * 4, &dseq, err)) ||
        (s = arena_alloc(&a, out_count * 2, 0xff, &dout, err)) ||   /* BF16 NaN */
        (s = arena_alloc(&a, rows * 4, 0xff, &dlse, err)) ||        /* fp32 NaN */
        (s = arena_alloc(&a, ws_bytes, 0xff, &dws, err)))
        goto done;
    snapmla_decode_args args = {
        .batch = c->batch, .q = PTR(dq), .kv_cache = PTR(dcache), .num_pages = p.num_pages,
        .page_stride = p.page_stride, .block_table = PTR(dtable),
        .block_table_stride = p.block_table_stride, .cache_seqlens = PTR(dseq),
        .softmax_scale = p.softmax_scale, .out = PTR(dout), .lse = PTR(dlse),
        .workspace = PTR(dws), .workspace_bytes = ws_bytes, .num_splits = c->num_splits,
    };
    if ((s = snapmla_decode(kernel, &args, NULL, err)) ||
        (s = SNAPMLA_CU(d, cuCtxSynchronize(), err)) ||
        (s = SNAPMLA_CU(d, cuMemcpyDtoH(out, dout, out_count * 2), err)) ||
        (s = SNAPMLA_CU(d, cuMemcpyDtoH(lse, dlse, rows * 4), err)) ||
        (s = snapmla_ref_decode(&p, ref_out, ref_lse, err)))
        goto done;
    snapmla_compare_result cmp;
    snapmla_compare_decode(out, lse, ref_out, ref_lse, rows, (size_t)v->latent_dim, &cmp);
    report->passed = cmp.rel_l2 <= SNAPMLA_CHECK_REL_L2 && cmp.lse_max_abs <= SNAPMLA_CHECK_LSE_ABS &&
                     cmp.nan_count == 0 && cmp.unwritten == 0 && cmp.lse_mismatch == 0;
    char lens[96];
    describe_seqlens(c->seqlens, c->batch, lens, sizeof lens);
    snprintf(report->summary, sizeof report->summary,
             "%s batch %d seqlens [%s] splits %d seed %llu: %s (tol rel_l2 %.0e, lse %.0e)",
             report->passed ? "PASS" : "FAIL", c->batch, lens, c->num_splits,
             (unsigned long long)c->seed, cmp.summary, SNAPMLA_CHECK_REL_L2, SNAPMLA_CHECK_LSE_ABS);
done:
    arena_free(&a);
    snapmla_problem_free(&p);
    free(ref_out);
    free(ref_lse);
    free(out);
    free(lse);
    return s == SNAPMLA_OK ? snapmla_ok(err) : s;
}
