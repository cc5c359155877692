/*
 * util.c - deadlines, monotonic condition variables, the growable array
 * and the debug-checked mutex of util.h.  Owns no state.
 */
#include "config.h"

#include <stdlib.h>

#include "base/util.h"
#include "txkv.h"

void deadline_after(struct timespec *ts, uint64_t us)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(us / 1000000);
    ts->tv_nsec += (long)(us % 1000000) * 1000;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

void cond_init_monotonic(pthread_cond_t *cv)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &a);
    pthread_condattr_destroy(&a);
}

int vec_reserve(void *p, size_t *cap, size_t need, size_t elsize, size_t first)
{
    void **arr = p;
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : first;
    while (nc < need)
        nc *= 2;
    void *na = realloc(*arr, nc * elsize);
    if (!na)
        return TXKV_NOMEM;
    *arr = na;
    *cap = nc;
    return 0;
}

void mutex_init(struct mutex *mu)
{
    pthread_mutex_init(&mu->m, NULL);
#ifndef NDEBUG
    atomic_init(&mu->held, 0);
#endif
}

void mutex_destroy(struct mutex *mu)
{
#ifndef NDEBUG
    assert(!atomic_load(&mu->held));
#endif
    pthread_mutex_destroy(&mu->m);
}

#ifndef NDEBUG
static void mutex_taken(struct mutex *mu)
{
    assert(!atomic_load_explicit(&mu->held, memory_order_relaxed));
    mu->owner = pthread_self();
    atomic_store_explicit(&mu->held, 1, memory_order_relaxed);
}

static void mutex_giving(struct mutex *mu)
{
    assert(mutex_held(mu));
    atomic_store_explicit(&mu->held, 0, memory_order_relaxed);
}

bool mutex_held(struct mutex *mu)
{
    /* Only the holder can see held set with its own id: another thread may
     * read a stale owner, but then held or owner tells it "not me". */
    return atomic_load_explicit(&mu->held, memory_order_relaxed) &&
           pthread_equal(mu->owner, pthread_self());
}
#endif

void mutex_lock(struct mutex *mu)
{
    pthread_mutex_lock(&mu->m);
#ifndef NDEBUG
    mutex_taken(mu);
#endif
}

void mutex_unlock(struct mutex *mu)
{
#ifndef NDEBUG
    mutex_giving(mu);
#endif
    pthread_mutex_unlock(&mu->m);
}

int mutex_cond_wait(struct mutex *mu, pthread_cond_t *cv, const struct timespec *deadline)
{
#ifndef NDEBUG
    mutex_giving(mu);
#endif
    int e = deadline ? pthread_cond_timedwait(cv, &mu->m, deadline) : pthread_cond_wait(cv, &mu->m);
#ifndef NDEBUG
    mutex_taken(mu);
#endif
    return e;
}
