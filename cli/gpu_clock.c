/* NVML for `snapmla bench`: the SM clock and its clock-event reasons, read
 * while the timed replays run (see gpu_clock.h). NVML's own header is not
 * needed: the few entry points are declared here by their documented
 * signatures. */
#include "gpu_clock.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

enum { NVML_SUCCESS = 0, NVML_CLOCK_SM = 1 };

/* nvmlClocksEventReason* bits (nvml.h) that say what lowered the clock */
static const struct { unsigned long long bit; const char *name; } limiting_reasons[] = {
    {0x2ull, "application clocks"}, {0x4ull, "power cap"},   {0x8ull, "hw slowdown"},
    {0x10ull, "sync boost"},        {0x20ull, "sw thermal"}, {0x40ull, "hw thermal"},
    {0x80ull, "power brake"},
};

void cli_clock_reasons_text(unsigned long long reasons, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof limiting_reasons / sizeof limiting_reasons[0]; ++i)
        if ((reasons & limiting_reasons[i].bit) && used < size) {
            int n = snprintf(out + used, size - used, "%s%s", used ? ", " : "", limiting_reasons[i].name);
            used += n > 0 ? (size_t)n : 0;
        }
}

typedef int (*nvml_void_fn)(void);
typedef int (*nvml_by_bus_fn)(const char *bus_id, void **device);
typedef int (*nvml_clock_fn)(void *device, int type, unsigned *mhz);
typedef int (*nvml_reasons_fn)(void *device, unsigned long long *reasons);

/* NULL when every step worked, else why not (c->library is then open or NULL). */
static const char *open_nvml(const snapmla_driver *d, cli_gpu_clock *c)
{
    CUdevice device;
    char bus_id[32];
    if (d->cuCtxGetDevice(&device) != CUDA_SUCCESS ||
        d->cuDeviceGetPCIBusId(bus_id, (int)sizeof bus_id, device) != CUDA_SUCCESS)
        return "the GPU's PCI bus id is not known";
    c->library = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!c->library)
        return "libnvidia-ml.so.1 not found";
    nvml_void_fn init = (nvml_void_fn)dlsym(c->library, "nvmlInit_v2");
    nvml_by_bus_fn by_bus = (nvml_by_bus_fn)dlsym(c->library, "nvmlDeviceGetHandleByPciBusId_v2");
    nvml_clock_fn max_clock = (nvml_clock_fn)dlsym(c->library, "nvmlDeviceGetMaxClockInfo");
    c->clock_info = (nvml_clock_fn)dlsym(c->library, "nvmlDeviceGetClockInfo");
    c->event_reasons = (nvml_reasons_fn)dlsym(c->library, "nvmlDeviceGetCurrentClocksEventReasons");
    if (!c->event_reasons)   /* drivers before 535 name it for throttling */
        c->event_reasons = (nvml_reasons_fn)dlsym(c->library, "nvmlDeviceGetCurrentClocksThrottleReasons");
    if (!init || !by_bus || !max_clock || !c->clock_info || !c->event_reasons)
        return "libnvidia-ml.so.1 lacks the clock queries";
    if (init() != NVML_SUCCESS)
        return "nvmlInit failed";
    if (by_bus(bus_id, &c->device) != NVML_SUCCESS || max_clock(c->device, NVML_CLOCK_SM, &c->max_mhz) != NVML_SUCCESS) {
        nvml_void_fn shutdown = (nvml_void_fn)dlsym(c->library, "nvmlShutdown");
        if (shutdown)
            shutdown();
        return "NVML does not know the context's GPU";
    }
    return NULL;
}

void cli_gpu_clock_open(const snapmla_driver *d, cli_gpu_clock *c)
{
    memset(c, 0, sizeof *c);
    const char *why = open_nvml(d, c);
    if (!why)
        return;
    snprintf(c->why, sizeof c->why, "%s", why);
    if (c->library)
        dlclose(c->library);
    c->library = NULL;
}

void cli_gpu_clock_close(cli_gpu_clock *c)
{
    if (!c->library)
        return;
    nvml_void_fn shutdown = (nvml_void_fn)dlsym(c->library, "nvmlShutdown");
    if (shutdown)
        shutdown();
    dlclose(c->library);
    c->library = NULL;
}

void cli_gpu_clock_sample(const cli_gpu_clock *c, cli_clock_stats *s)
{
    unsigned mhz;
    unsigned long long reasons;
    if (!c || !c->library || c->clock_info(c->device, NVML_CLOCK_SM, &mhz) != NVML_SUCCESS ||
        c->event_reasons(c->device, &reasons) != NVML_SUCCESS)
        return;
    s->sum_mhz += mhz;
    s->samples++;
    s->reasons |= reasons;
}
