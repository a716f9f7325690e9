/* The tensor-core ceilings `snapmla bench` prints: the probe of
 * templates/mma_peak.cu compiled through NVRTC, one CTA per SM, timed with
 * CUDA events. Hopper only (wgmma); elsewhere it says it did not measure. */
#include "mma_peak.h"

#include <stdlib.h>

#include "emit_wgmma.h"
#include "error.h"
#include "jit.h"
#include "strbuf.h"

enum { PEAK_ITERS = 2048 };

/* Whether the current context's GPU is compute capability 9.0 (wgmma). */
static int is_hopper(const snapmla_driver *d, int *sm_count, snapmla_error *err)
{
    CUdevice device;
    int major = 0, minor = 0;
    if (SNAPMLA_CU(d, cuCtxGetDevice(&device), err) ||
        SNAPMLA_CU(d, cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device), err) ||
        SNAPMLA_CU(d, cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device), err) ||
        SNAPMLA_CU(d, cuDeviceGetAttribute(sm_count, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, device), err))
        return -1;
    return major == 9 && minor == 0;
}

/* Best of a few timed launches of one probe kernel (one CTA per SM of
 * `warpgroups` warpgroups, each issuing 4 wgmma per iteration), in TFLOP/s. */
static snapmla_status time_probe(const snapmla_driver *d, CUfunction f, int sm_count, int warpgroups,
                                 double flop_per_wgmma, double *tflops, snapmla_error *err)
{
    CUdeviceptr sink = 0;
    CUevent start = NULL, stop = NULL;
    snapmla_status s = SNAPMLA_CU(d, cuMemAlloc(&sink, (size_t)sm_count * 4), err);
    if (!s)
        s = SNAPMLA_CU(d, cuEventCreate(&start, 0), err);
    if (!s)
        s = SNAPMLA_CU(d, cuEventCreate(&stop, 0), err);
    float best = 1e30f;
    for (int round = 0; !s && round < 4; ++round) {   /* round 0 warms up */
        int iters = PEAK_ITERS;
        void *args[] = {&sink, &iters};
        float ms = 0;
        if ((s = SNAPMLA_CU(d, cuEventRecord(start, NULL), err)) ||
            (s = SNAPMLA_CU(d, cuLaunchKernel(f, (unsigned)sm_count, 1, 1, 128u * (unsigned)warpgroups, 1, 1, 0,
                                              NULL, args, NULL), err)) ||
            (s = SNAPMLA_CU(d, cuEventRecord(stop, NULL), err)) ||
            (s = SNAPMLA_CU(d, cuEventSynchronize(stop), err)) ||
            (s = SNAPMLA_CU(d, cuEventElapsedTime(&ms, start, stop), err)))
            break;
        if (round > 0 && ms < best)
            best = ms;
    }
    if (!s) {
        double flop = (double)sm_count * warpgroups * 4 * PEAK_ITERS * flop_per_wgmma;
        *tflops = flop / (best * 1e-3) / 1e12;
    }
    if (start)
        d->cuEventDestroy(start);
    if (stop)
        d->cuEventDestroy(stop);
    if (sink)
        d->cuMemFree(sink);
    return s;
}

snapmla_status cli_mma_peak(const snapmla_driver *d, cli_mma_ceilings *out, snapmla_error *err)
{
    out->measured = 0;
    out->bf16_tflops = out->fp8_tflops = out->fp8_n64_mix_tflops = out->fp8_n64_ss_tflops = 0;
    int sm_count = 0;
    int hopper = is_hopper(d, &sm_count, err);
    if (hopper <= 0)
        return hopper < 0 ? err->status : snapmla_ok(err);
    snapmla_strbuf source = {0};
    snapmla_emit_mma_peak(&source);
    if (source.failed) {
        snapmla_strbuf_free(&source);
        return snapmla_fail(err, SNAPMLA_ERR_NOMEM, "out of memory emitting the peak probe");
    }
    unsigned char *cubin = NULL;
    size_t size = 0;
    CUmodule module = NULL;
    CUfunction fp8, bf16, n64_mix, n64_ss;
    snapmla_status s = snapmla_jit_compile(source.data, "mma_peak.cu", SNAPMLA_ARCH_SM90A, &cubin,
                                           &size, err);
    snapmla_strbuf_free(&source);
    if (!s)
        s = SNAPMLA_CU(d, cuModuleLoadData(&module, cubin), err);
    free(cubin);
    if (!s)
        s = SNAPMLA_CU(d, cuModuleGetFunction(&fp8, module, "snapmla_mma_peak_fp8"), err);
    if (!s)
        s = SNAPMLA_CU(d, cuModuleGetFunction(&bf16, module, "snapmla_mma_peak_bf16"), err);
    if (!s)
        s = SNAPMLA_CU(d, cuModuleGetFunction(&n64_mix, module, "snapmla_mma_n64_mix_fp8"), err);
    if (!s)
        s = SNAPMLA_CU(d, cuModuleGetFunction(&n64_ss, module, "snapmla_mma_n64_ss_fp8"), err);
    /* m64n256k32 e4m3 and m64n256k16 BF16 from two warpgroups, m64n64k32
     * e4m3 from four: 2 * 64 * N * K flops each */
    if (!s)
        s = time_probe(d, fp8, sm_count, 2, 2.0 * 64 * 256 * 32, &out->fp8_tflops, err);
    if (!s)
        s = time_probe(d, bf16, sm_count, 2, 2.0 * 64 * 256 * 16, &out->bf16_tflops, err);
    if (!s)
        s = time_probe(d, n64_mix, sm_count, 4, 2.0 * 64 * 64 * 32, &out->fp8_n64_mix_tflops, err);
    if (!s)
        s = time_probe(d, n64_ss, sm_count, 4, 2.0 * 64 * 64 * 32, &out->fp8_n64_ss_tflops, err);
    if (module)
        d->cuModuleUnload(module);
    out->measured = s == SNAPMLA_OK;
    return s == SNAPMLA_OK ? snapmla_ok(err) : s;
}
