/* The CUDA driver API, opened at run time (dlopen of libcuda) so that the
 * generator, NVRTC and the cache work on machines without a GPU or driver. */
#ifndef SNAPMLA_RUNTIME_DRIVER_H
#define SNAPMLA_RUNTIME_DRIVER_H

#include <cuda.h>

#include "snapmla.h"

/* X(name as called, symbol exported by libcuda) */
#define SNAPMLA_DRIVER_FUNCTIONS(X)                               \
    X(cuInit, "cuInit")                                           \
    X(cuGetErrorName, "cuGetErrorName")                           \
    X(cuGetErrorString, "cuGetErrorString")                       \
    X(cuDeviceGetCount, "cuDeviceGetCount")                       \
    X(cuDeviceGet, "cuDeviceGet")                                 \
    X(cuDeviceGetName, "cuDeviceGetName")                         \
    X(cuDeviceGetAttribute, "cuDeviceGetAttribute")               \
    X(cuDeviceGetPCIBusId, "cuDeviceGetPCIBusId")                 \
    X(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain")       \
    X(cuCtxGetCurrent, "cuCtxGetCurrent")                         \
    X(cuCtxSetCurrent, "cuCtxSetCurrent")                         \
    X(cuCtxGetDevice, "cuCtxGetDevice")                           \
    X(cuCtxSynchronize, "cuCtxSynchronize")                       \
    X(cuModuleLoadData, "cuModuleLoadData")                       \
    X(cuModuleUnload, "cuModuleUnload")                           \
    X(cuModuleGetFunction, "cuModuleGetFunction")                 \
    X(cuFuncSetAttribute, "cuFuncSetAttribute")                   \
    X(cuFuncGetAttribute, "cuFuncGetAttribute")                   \
    X(cuOccupancyMaxActiveBlocksPerMultiprocessor,                \
      "cuOccupancyMaxActiveBlocksPerMultiprocessor")              \
    X(cuLaunchKernel, "cuLaunchKernel")                           \
    X(cuLaunchKernelEx, "cuLaunchKernelEx")                       \
    X(cuMemAlloc, "cuMemAlloc_v2")                                \
    X(cuMemFree, "cuMemFree_v2")                                  \
    X(cuMemcpyHtoD, "cuMemcpyHtoD_v2")                            \
    X(cuMemcpyDtoH, "cuMemcpyDtoH_v2")                            \
    X(cuMemcpyDtoD, "cuMemcpyDtoD_v2")                            \
    X(cuMemsetD8, "cuMemsetD8_v2")                                \
    X(cuMemsetD32Async, "cuMemsetD32Async")                       \
    X(cuStreamCreate, "cuStreamCreate")                           \
    X(cuStreamDestroy, "cuStreamDestroy_v2")                      \
    X(cuStreamSynchronize, "cuStreamSynchronize")                 \
    X(cuStreamBeginCapture, "cuStreamBeginCapture_v2")            \
    X(cuStreamEndCapture, "cuStreamEndCapture")                   \
    X(cuGraphInstantiate, "cuGraphInstantiateWithFlags")          \
    X(cuGraphLaunch, "cuGraphLaunch")                             \
    X(cuGraphExecDestroy, "cuGraphExecDestroy")                   \
    X(cuGraphDestroy, "cuGraphDestroy")                           \
    X(cuEventCreate, "cuEventCreate")                             \
    X(cuEventRecord, "cuEventRecord")                             \
    X(cuEventSynchronize, "cuEventSynchronize")                   \
    X(cuEventQuery, "cuEventQuery")                               \
    X(cuEventElapsedTime, "cuEventElapsedTime_v2")                \
    X(cuEventDestroy, "cuEventDestroy_v2")                        \
    X(cuTensorMapEncodeTiled, "cuTensorMapEncodeTiled")

typedef struct snapmla_driver {
    void *library;
#define SNAPMLA_DRIVER_FIELD(name, symbol) __typeof__(name) *name;
    SNAPMLA_DRIVER_FUNCTIONS(SNAPMLA_DRIVER_FIELD)
#undef SNAPMLA_DRIVER_FIELD
} snapmla_driver;

/* Opens libcuda and cuInit()s it. SNAPMLA_ERR_NO_DEVICE when there is no
 * driver or no GPU, with a message that says which. */
snapmla_status snapmla_driver_open(snapmla_driver *driver, snapmla_error *err);
void snapmla_driver_close(snapmla_driver *driver);

/* Makes a context current on the calling thread: the one already current,
 * else device 0's primary context. */
snapmla_status snapmla_driver_ensure_context(const snapmla_driver *driver,
                                             snapmla_error *err);

/* Checks a driver result: on failure fills err with "what: NAME (text)". */
snapmla_status snapmla_driver_check(const snapmla_driver *driver, CUresult result,
                                    const char *what, snapmla_error *err);

#define SNAPMLA_CU(driver, call, err)                                          \
    snapmla_driver_check((driver), (driver)->call, #call, (err))

#endif
