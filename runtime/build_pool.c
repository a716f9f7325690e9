/* The binary stage for many variants at once: threads take the next variant
 * from a shared counter and build it through the context's caches (which
 * are thread-safe, with per-key locks across processes). */
#include "build_pool.h"

#include <pthread.h>
#include <stdatomic.h>

#include "monotonic.h"

typedef struct pool_job {
    snapmla_context *ctx;
    const snapmla_variant *const *variants;
    snapmla_binary *binaries;
    snapmla_error *errors;
    size_t count;
    atomic_size_t next;
} pool_job;

static void *pool_worker(void *user)
{
    pool_job *job = user;
    for (size_t i; (i = atomic_fetch_add(&job->next, 1)) < job->count;)
        snapmla_build(job->ctx, job->variants[i], &job->binaries[i], &job->errors[i]);
    return NULL;
}

double snapmla_build_pool(snapmla_context *ctx, const snapmla_variant *const *variants,
                          size_t count, int threads, snapmla_binary *binaries,
                          snapmla_error *errors)
{
    pool_job job = {ctx, variants, binaries, errors, count, 0};
    double start = snapmla_seconds_now();
    threads = threads < 1 ? 1 : threads > 64 ? 64 : threads;
    pthread_t workers[64];
    int started = 0;
    for (; started < threads; ++started)
        if (pthread_create(&workers[started], NULL, pool_worker, &job) != 0)
            break;
    if (started == 0)
        pool_worker(&job);
    for (int t = 0; t < started; ++t)
        pthread_join(workers[t], NULL);
    return snapmla_seconds_now() - start;
}
