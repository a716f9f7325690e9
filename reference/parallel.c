/* snapmla_parallel_for (parallel.h): one pthread per chunk but the first,
 * which runs on the caller's thread. */
#include "parallel.h"

#include <pthread.h>
#include <unistd.h>

enum { MAX_THREADS = 32 };

typedef struct chunk {
    void (*body)(void *, size_t, size_t);
    void *context;
    size_t begin, end;
    pthread_t thread;
    int started;
} chunk;

static void *run_chunk(void *arg)
{
    chunk *c = arg;
    c->body(c->context, c->begin, c->end);
    return NULL;
}

void snapmla_parallel_for(size_t count, size_t min_per_thread,
                          void (*body)(void *context, size_t begin, size_t end), void *context)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t threads = cpus < 1 ? 1 : cpus > MAX_THREADS ? MAX_THREADS : (size_t)cpus;
    size_t useful = min_per_thread ? count / min_per_thread : count;
    threads = threads > useful ? useful : threads;
    if (threads <= 1) {
        if (count > 0)
            body(context, 0, count);
        return;
    }
    chunk chunks[MAX_THREADS];
    for (size_t i = 0; i < threads; ++i) {
        chunks[i] = (chunk){.body = body, .context = context, .begin = count * i / threads,
                            .end = count * (i + 1) / threads};
        chunks[i].started = i > 0 && pthread_create(&chunks[i].thread, NULL, run_chunk, &chunks[i]) == 0;
    }
    for (size_t i = 0; i < threads; ++i)
        if (!chunks[i].started)
            run_chunk(&chunks[i]);
    for (size_t i = 1; i < threads; ++i)
        if (chunks[i].started)
            pthread_join(chunks[i].thread, NULL);
}
