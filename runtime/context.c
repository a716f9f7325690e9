/* Binary and load stages of the pipeline: a variant becomes a CUBIN (from an
 * ahead-of-time directory, the memory or disk cache, or NVRTC) and then a
 * loaded module on the caller's CUDA context. */
#include "context.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aot.h"
#include "error.h"
#include "jit.h"
#include "monotonic.h"
#include "resources.h"

void snapmla_log_line(snapmla_log_fn log, void *user, snapmla_log_level level,
                      const char *format, va_list args)
{
    if (!log)
        return;
    char message[SNAPMLA_ERROR_MAX];
    vsnprintf(message, sizeof message, format, args);
    log(user, level, message);
}

void snapmla_context_log(const snapmla_context *ctx, snapmla_log_level level,
                         const char *format, ...)
{
    va_list args;
    va_start(args, format);
    snapmla_log_line(ctx->log, ctx->log_user, level, format, args);
    va_end(args);
}

snapmla_status snapmla_context_create(const snapmla_options *options,
                                      snapmla_context **out, snapmla_error *err)
{
    static const snapmla_options defaults = {0};
    if (!out)
        return snapmla_fail(err, SNAPMLA_ERR_INVALID_ARG,
                            "snapmla_context_create: out must not be NULL");
    if (!options)
        options = &defaults;
    snapmla_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return snapmla_fail(err, SNAPMLA_ERR_NOMEM, "out of memory creating a context");
    ctx->log = options->log;
    ctx->log_user = options->log_user;
    if (options->aot_dir_count > 0) {
        ctx->aot_dirs = calloc((size_t)options->aot_dir_count, sizeof *ctx->aot_dirs);
        for (int i = 0; ctx->aot_dirs && i < options->aot_dir_count; ++i) {
            ctx->aot_dirs[i] = strdup(options->aot_dirs[i]);
            if (!ctx->aot_dirs[i])
                break;
            ctx->aot_dir_count = i + 1;
        }
        if (ctx->aot_dir_count != options->aot_dir_count) {
            snapmla_context_destroy(ctx);
            return snapmla_fail(err, SNAPMLA_ERR_NOMEM, "out of memory creating a context");
        }
    }
    snapmla_status s = snapmla_disk_cache_open(options->cache_dir, options->disable_disk_cache,
                                               ctx->log, ctx->log_user, &ctx->cache, err);
    if (s != SNAPMLA_OK) {
        snapmla_context_destroy(ctx);
        return s;
    }
    pthread_mutex_init(&ctx->lock, NULL);
    *out = ctx;
    return snapmla_ok(err);
}

void snapmla_context_destroy(snapmla_context *ctx)
{
    if (!ctx)
        return;
    for (snapmla_kernel *k = ctx->kernels, *next; k; k = next) {
        next = k->next;
        if (ctx->driver_state == 1 && k->module)
            ctx->driver.cuModuleUnload(k->module);
        free(k);
    }
    if (ctx->driver_state == 1)
        snapmla_driver_close(&ctx->driver);
    if (ctx->cache) {
        snapmla_disk_cache_close(ctx->cache);
        pthread_mutex_destroy(&ctx->lock);
    }
    for (int i = 0; i < ctx->aot_dir_count; ++i)
        free(ctx->aot_dirs[i]);
    free(ctx->aot_dirs);
    free(ctx);
}

const char *snapmla_context_cache_dir(const snapmla_context *ctx)
{
    return ctx ? snapmla_disk_cache_dir(ctx->cache) : NULL;
}

/* ---- keys and builds ----------------------------------------------------- */

static snapmla_status emit_with_key(const snapmla_variant *v, char **source,
                                    char key[65], snapmla_error *err)
{
    size_t length;
    snapmla_status s = snapmla_emit(v, source, &length, err);
    if (s != SNAPMLA_OK)
        return s;
    const char *options[SNAPMLA_JIT_MAX_OPTIONS];
    int option_count = snapmla_jit_options(v->arch, options);
    char generator[32], nvrtc[32];
    snprintf(generator, sizeof generator, "snapmla-generator-%d", SNAPMLA_GENERATOR_VERSION);
    snapmla_jit_version(nvrtc);
    const char *parts[4 + SNAPMLA_JIT_MAX_OPTIONS];
    size_t lengths[4 + SNAPMLA_JIT_MAX_OPTIONS];
    int n = 0;
    parts[n++] = generator;
    parts[n++] = nvrtc;
    parts[n++] = snapmla_arch_name(v->arch);
    for (int i = 0; i < option_count; ++i)
        parts[n++] = options[i];
    for (int i = 0; i < n; ++i)
        lengths[i] = strlen(parts[i]);
    parts[n] = *source;
    lengths[n++] = length;
    snapmla_cache_make_key(parts, lengths, n, key);
    return SNAPMLA_OK;
}

snapmla_status snapmla_cache_key(const snapmla_variant *variant, char key[65],
                                 snapmla_error *err)
{
    char *source = NULL;
    snapmla_status s = emit_with_key(variant, &source, key, err);
    free(source);
    return s == SNAPMLA_OK ? snapmla_ok(err) : s;
}

typedef struct compile_job {
    const snapmla_variant *variant;
    const char *source;
    double seconds;
    char problem[SNAPMLA_ERROR_MAX];   /* ptxas's report says it will run slowly */
} compile_job;

static snapmla_status compile_variant(void *user, unsigned char **bytes,
                                      size_t *size, snapmla_error *err)
{
    compile_job *job = user;
    char name[SNAPMLA_NAME_MAX + 4];
    snprintf(name, sizeof name, "%s.cu", job->variant->name);
    double start = snapmla_seconds_now();
    snapmla_status s = snapmla_jit_compile_noted(job->source, name, job->variant->arch, bytes,
                                                 size, job->problem, sizeof job->problem, err);
    job->seconds = snapmla_seconds_now() - start;
    return s;
}

static snapmla_status find_aot(snapmla_context *ctx, const char *key,
                               snapmla_binary *out)
{
    for (int i = 0; i < ctx->aot_dir_count; ++i) {
        snapmla_error aot_err;
        unsigned char *cubin = NULL;
        size_t size = 0;
        if (snapmla_aot_find(ctx->aot_dirs[i], key, &cubin, &size, &aot_err) != SNAPMLA_OK) {
            snapmla_context_log(ctx, SNAPMLA_LOG_WARN, "snapmla: %s; compiling instead",
                                aot_err.message);
            continue;
        }
        if (cubin) {
            out->cubin = cubin;
            out->cubin_size = size;
            out->source = SNAPMLA_FROM_AOT;
            return SNAPMLA_OK;
        }
    }
    return SNAPMLA_OK;
}

snapmla_status snapmla_build(snapmla_context *ctx, const snapmla_variant *variant,
                             snapmla_binary *out, snapmla_error *err)
{
    if (!ctx || !variant || !out)
        return snapmla_fail(err, SNAPMLA_ERR_INVALID_ARG,
                            "snapmla_build: ctx, variant and out must not be NULL");
    memset(out, 0, sizeof *out);
    char *source = NULL;
    snapmla_status s = emit_with_key(variant, &source, out->key, err);
    if (s == SNAPMLA_OK)
        s = find_aot(ctx, out->key, out);
    if (s == SNAPMLA_OK && !out->cubin) {
        compile_job job = {variant, source, 0.0, ""};
        s = snapmla_disk_cache_get(ctx->cache, out->key, variant->name, compile_variant,
                                   &job, &out->cubin, &out->cubin_size, &out->source, err);
        out->compile_seconds = out->source == SNAPMLA_FROM_COMPILE ? job.seconds : 0.0;
        /* Said once, when it is compiled (the cache then serves it silently). */
        if (s == SNAPMLA_OK && out->source == SNAPMLA_FROM_COMPILE && job.problem[0])
            snapmla_context_log(ctx, SNAPMLA_LOG_WARN,
                                "snapmla: %s: %s; it runs, slower than it should (`snapmla "
                                "inspect` prints ptxas's report; docs/spec.md, \"When ptxas "
                                "spills\", says what sets a kernel's registers)",
                                variant->name, job.problem);
    }
    free(source);
    if (s != SNAPMLA_OK)
        return s;
    static const char *const from[] = {"compiled", "disk cache", "memory", "ahead-of-time directory"};
    snapmla_context_log(ctx, SNAPMLA_LOG_INFO, "snapmla: %s: %s (%s)", variant->name,
                        from[out->source], out->key);
    return snapmla_ok(err);
}

void snapmla_binary_release(snapmla_binary *binary)
{
    if (!binary)
        return;
    free(binary->cubin);
    binary->cubin = NULL;
    binary->cubin_size = 0;
}

/* ---- loading ------------------------------------------------------------- */

snapmla_status snapmla_context_driver(snapmla_context *ctx, const snapmla_driver **driver,
                                      snapmla_error *err)
{
    pthread_mutex_lock(&ctx->lock);
    if (ctx->driver_state == 0)
        ctx->driver_state =
            snapmla_driver_open(&ctx->driver, &ctx->driver_error) == SNAPMLA_OK ? 1 : -1;
    int state = ctx->driver_state;
    pthread_mutex_unlock(&ctx->lock);
    if (state != 1)
        return snapmla_fail(err, ctx->driver_error.status, "%s", ctx->driver_error.message);
    *driver = &ctx->driver;
    return SNAPMLA_OK;
}

static snapmla_kernel *find_loaded(snapmla_context *ctx, const char *key, CUcontext cuda)
{
    for (snapmla_kernel *k = ctx->kernels; k; k = k->next)
        if (k->cuda_context == cuda && strcmp(k->key, key) == 0)
            return k;
    return NULL;
}

/* The same variant on the same CUDA context: no emit, no hash. */
static snapmla_kernel *find_loaded_variant(snapmla_context *ctx, const snapmla_variant *v,
                                           CUcontext cuda)
{
    pthread_mutex_lock(&ctx->lock);
    snapmla_kernel *k = ctx->kernels;
    while (k && !(k->cuda_context == cuda && memcmp(&k->variant, v, sizeof *v) == 0))
        k = k->next;
    pthread_mutex_unlock(&ctx->lock);
    return k;
}

static const char *main_function_name(snapmla_kernel_kind kind)
{
    switch (kind) {
    case SNAPMLA_KERNEL_MLA_DECODE: return "snapmla_decode_split";
    case SNAPMLA_KERNEL_MLA_COMBINE: return "snapmla_combine";
    case SNAPMLA_KERNEL_KV_APPEND: return "snapmla_append";
    }
    return "?";
}

/* Module load, functions, shared-memory limit and the device's arch check. */
static snapmla_status load_module(const snapmla_driver *d, snapmla_kernel *k,
                                  const snapmla_binary *binary, snapmla_error *err)
{
    CUdevice device;
    int major = 0, minor = 0;
    snapmla_status s = SNAPMLA_CU(d, cuCtxGetDevice(&device), err);
    if (s == SNAPMLA_OK)
        s = SNAPMLA_CU(d, cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device), err);
    if (s == SNAPMLA_OK)
        s = SNAPMLA_CU(d, cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device), err);
    if (s == SNAPMLA_OK)
        s = SNAPMLA_CU(d, cuDeviceGetAttribute(&k->sm_count, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, device), err);
    if (s != SNAPMLA_OK)
        return s;
    static const int wanted[][2] = {[SNAPMLA_ARCH_SM80] = {8, 0}, [SNAPMLA_ARCH_SM89] = {8, 9},
                                    [SNAPMLA_ARCH_SM90A] = {9, 0}};
    const int *need = wanted[k->variant.arch];
    if (major != need[0] || minor != need[1])
        return snapmla_fail(err, SNAPMLA_ERR_UNSUPPORTED,
                            "variant '%s' targets %s but the GPU is sm_%d%d: "
                            "set target.arch to match the GPU",
                            k->variant.name, snapmla_arch_name(k->variant.arch), major, minor);
    if ((s = SNAPMLA_CU(d, cuModuleLoadData(&k->module, binary->cubin), err)) != SNAPMLA_OK)
        return s;
    s = SNAPMLA_CU(d, cuModuleGetFunction(&k->main_function, k->module,
                                          main_function_name(k->variant.kernel)), err);
    if (s == SNAPMLA_OK && k->variant.kernel == SNAPMLA_KERNEL_MLA_DECODE)
        s = SNAPMLA_CU(d, cuModuleGetFunction(&k->combine_function, k->module, "snapmla_combine"), err);
    if (s == SNAPMLA_OK && k->variant.kernel == SNAPMLA_KERNEL_MLA_DECODE &&
        k->variant.engine == SNAPMLA_ENGINE_WGMMA)
        s = SNAPMLA_CU(d, cuModuleGetFunction(&k->plan_function, k->module, "snapmla_decode_plan"), err);
    if (s == SNAPMLA_OK && k->variant.smem_bytes > 48 * 1024)
        s = SNAPMLA_CU(d, cuFuncSetAttribute(k->main_function,
                                             CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                             k->variant.smem_bytes), err);
    k->ctas_per_sm = 1;
    if (s == SNAPMLA_OK && k->variant.kernel == SNAPMLA_KERNEL_MLA_DECODE)
        s = SNAPMLA_CU(d, cuOccupancyMaxActiveBlocksPerMultiprocessor(&k->ctas_per_sm, k->main_function,
                                                                      k->variant.threads,
                                                                      (size_t)k->variant.smem_bytes), err);
    if (s == SNAPMLA_OK && k->ctas_per_sm < 1)
        s = snapmla_fail(err, SNAPMLA_ERR_UNSUPPORTED,
                         "variant '%s' cannot run: not one CTA fits on an SM (%d threads, %d bytes "
                         "of shared memory)", k->variant.name, k->variant.threads, k->variant.smem_bytes);
    if (s != SNAPMLA_OK) {
        d->cuModuleUnload(k->module);
        k->module = NULL;
    }
    return s;
}

snapmla_status snapmla_kernel_get(snapmla_context *ctx, const snapmla_variant *variant,
                                  snapmla_kernel **out, snapmla_error *err)
{
    if (!ctx || !variant || !out)
        return snapmla_fail(err, SNAPMLA_ERR_INVALID_ARG,
                            "snapmla_kernel_get: ctx, variant and out must not be NULL");
    const snapmla_driver *d;
    snapmla_status s = snapmla_context_driver(ctx, &d, err);
    if (s == SNAPMLA_OK)
        s = snapmla_driver_ensure_context(d, err);
    CUcontext cuda = NULL;
    if (s == SNAPMLA_OK)
        s = SNAPMLA_CU(d, cuCtxGetCurrent(&cuda), err);
    if (s != SNAPMLA_OK)
        return s;
    snapmla_kernel *loaded = find_loaded_variant(ctx, variant, cuda);
    if (loaded) {
        *out = loaded;
        return snapmla_ok(err);
    }
    snapmla_binary binary;
    if ((s = snapmla_build(ctx, variant, &binary, err)) != SNAPMLA_OK)
        return s;

    pthread_mutex_lock(&ctx->lock);
    snapmla_kernel *k = find_loaded(ctx, binary.key, cuda);
    if (!k) {
        k = calloc(1, sizeof *k);
        if (!k) {
            s = snapmla_fail(err, SNAPMLA_ERR_NOMEM, "out of memory loading '%s'", variant->name);
        } else {
            k->variant = *variant;
            memcpy(k->key, binary.key, sizeof k->key);
            k->cuda_context = cuda;
            k->owner = ctx;
            s = load_module(d, k, &binary, err);
            if (s == SNAPMLA_OK) {
                k->next = ctx->kernels;
                ctx->kernels = k;
            } else {
                free(k);
                k = NULL;
            }
        }
    }
    pthread_mutex_unlock(&ctx->lock);
    snapmla_binary_release(&binary);
    if (s != SNAPMLA_OK)
        return s;
    *out = k;
    return snapmla_ok(err);
}

const snapmla_variant *snapmla_kernel_variant(const snapmla_kernel *kernel)
{
    return kernel ? &kernel->variant : NULL;
}
