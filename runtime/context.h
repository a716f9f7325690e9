/* Internal view of a context and its loaded kernels, shared by context.c
 * (build and load) and launch.c (argument checks and launches). */
#ifndef SNAPMLA_RUNTIME_CONTEXT_H
#define SNAPMLA_RUNTIME_CONTEXT_H

#include <stdarg.h>
#include <pthread.h>

#include "disk_cache.h"
#include "driver.h"
#include "snapmla.h"

struct snapmla_kernel {
    snapmla_variant variant;
    char key[65];
    CUcontext cuda_context;       /* the context the module lives in */
    CUmodule module;
    CUfunction main_function;     /* decode split, combine or append */
    CUfunction combine_function;  /* decode only: its split-KV merge */
    CUfunction plan_function;     /* wgmma decode only: its work plan (persistent grid) */
    int sm_count;
    int ctas_per_sm;              /* decode: resident CTAs per SM (occupancy) */
    snapmla_context *owner;
    struct snapmla_kernel *next;
};

struct snapmla_context {
    snapmla_log_fn log;
    void *log_user;
    char **aot_dirs;
    int aot_dir_count;
    snapmla_disk_cache *cache;
    pthread_mutex_t lock;         /* guards everything below */
    int driver_state;             /* 0 not tried, 1 open, -1 failed */
    snapmla_driver driver;
    snapmla_error driver_error;
    snapmla_kernel *kernels;
};

/* The driver, opened on first use; NO_DEVICE when there is none. */
snapmla_status snapmla_context_driver(snapmla_context *ctx,
                                      const snapmla_driver **driver,
                                      snapmla_error *err);
void snapmla_context_log(const snapmla_context *ctx, snapmla_log_level level,
                         const char *format, ...)
    __attribute__((format(printf, 3, 4)));
/* One formatted line to a log callback (nothing when it is NULL). */
void snapmla_log_line(snapmla_log_fn log, void *user, snapmla_log_level level,
                      const char *format, va_list args) __attribute__((format(printf, 4, 0)));

#endif
