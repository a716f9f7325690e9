/* Loading stage of the pipeline: libcuda opened with dlopen, so nothing in
 * snapmla links against the driver and GPU-less machines still generate,
 * compile and cache. */
#include "driver.h"

#include <dlfcn.h>
#include <string.h>

#include "error.h"

snapmla_status snapmla_driver_check(const snapmla_driver *driver, CUresult result,
                                    const char *what, snapmla_error *err)
{
    if (result == CUDA_SUCCESS)
        return SNAPMLA_OK;
    const char *name = "?", *text = "unknown error";
    if (driver->cuGetErrorName)
        driver->cuGetErrorName(result, &name);
    if (driver->cuGetErrorString)
        driver->cuGetErrorString(result, &text);
    return snapmla_fail(err, SNAPMLA_ERR_CUDA, "%s: %s (%s)", what, name, text);
}

snapmla_status snapmla_driver_open(snapmla_driver *driver, snapmla_error *err)
{
    memset(driver, 0, sizeof *driver);
    driver->library = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!driver->library)
        return snapmla_fail(err, SNAPMLA_ERR_NO_DEVICE,
                            "no CUDA driver: cannot load libcuda.so.1 (%s)", dlerror());
#define SNAPMLA_DRIVER_LOAD(name, symbol)                                       \
    *(void **)&driver->name = dlsym(driver->library, symbol);                   \
    if (!driver->name) {                                                        \
        snapmla_driver_close(driver);                                           \
        return snapmla_fail(err, SNAPMLA_ERR_NO_DEVICE,                         \
                            "the CUDA driver is too old: it lacks %s", symbol); \
    }
    SNAPMLA_DRIVER_FUNCTIONS(SNAPMLA_DRIVER_LOAD)
#undef SNAPMLA_DRIVER_LOAD
    CUresult r = driver->cuInit(0);
    int count = 0;
    if (r == CUDA_SUCCESS)
        r = driver->cuDeviceGetCount(&count);
    if (r != CUDA_SUCCESS || count == 0) {
        const char *text = "no device";
        if (r != CUDA_SUCCESS)
            driver->cuGetErrorString(r, &text);
        snapmla_driver_close(driver);
        return snapmla_fail(err, SNAPMLA_ERR_NO_DEVICE,
                            "no CUDA GPU: the driver loaded but reports %s", text);
    }
    return snapmla_ok(err);
}

void snapmla_driver_close(snapmla_driver *driver)
{
    if (driver->library)
        dlclose(driver->library);
    memset(driver, 0, sizeof *driver);
}

snapmla_status snapmla_driver_ensure_context(const snapmla_driver *driver,
                                             snapmla_error *err)
{
    CUcontext current = NULL;
    snapmla_status s = SNAPMLA_CU(driver, cuCtxGetCurrent(&current), err);
    if (s != SNAPMLA_OK || current)
        return s;
    CUdevice device;
    if ((s = SNAPMLA_CU(driver, cuDeviceGet(&device, 0), err)) != SNAPMLA_OK)
        return s;
    if ((s = SNAPMLA_CU(driver, cuDevicePrimaryCtxRetain(&current, device), err)) != SNAPMLA_OK)
        return s;
    return SNAPMLA_CU(driver, cuCtxSetCurrent(current), err);
}
