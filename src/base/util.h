/*
 * util.h - the small pieces every layer of txkv uses: key order, the
 * clock, deadlines, one spin-then-yield wait, one growable array, and a
 * mutex whose holder debug builds can assert.
 *
 * Layer: base (see docs/design.md, "Layers").  Depends on nothing of txkv
 * but the public header.
 */
#ifndef TXKV_BASE_UTIL_H
#define TXKV_BASE_UTIL_H

#include <assert.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define container_of_(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

/* Byte-string order: memcmp, then the shorter key first. */
static inline int key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

/* x as stored big-endian: memcmp order becomes integer order. */
static inline uint64_t be64(uint64_t x)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return __builtin_bswap64(x);
#else
    return x;
#endif
}

/* Bytes off..off+7 of p[0..len) as a big-endian word, zero-padded.  Keys
 * whose words compare lower sort lower (key_cmp): a zero pad byte is below
 * any byte the other key has there, or both are padded and the shorter is
 * a prefix of the longer. */
static inline uint64_t key_word(const void *p, size_t len, size_t off)
{
    uint64_t x = 0;
    if (len > off)
        memcpy(&x, (const uint8_t *)p + off, len - off < 8 ? len - off : 8);
    return be64(x);
}

/* CLOCK_MONOTONIC, in nanoseconds: the one clock of the library.  Every
 * timed wait (lock timeouts, the GC's period) has its deadline on it. */
static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* *ts = now + us on CLOCK_MONOTONIC, for cond_timedwait on a cond_init_monotonic
 * condition variable. */
void deadline_after(struct timespec *ts, uint64_t us);

/* A condition variable whose timed waits use CLOCK_MONOTONIC. */
void cond_init_monotonic(pthread_cond_t *cv);

/*
 * Spin-then-yield wait for a holder that runs a few microseconds of work
 * and may be descheduled (more threads than cores):
 *
 *     struct spin s = {0};
 *     while (!done())
 *         spin_wait(&s);
 *
 * The first SPIN_PAUSES rounds execute the CPU's pause instruction; after
 * that each round yields the CPU.
 */
#define SPIN_PAUSES 128
struct spin {
    unsigned n;
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static inline void spin_wait(struct spin *s)
{
    if (s->n < SPIN_PAUSES) {
        s->n++;
        cpu_relax();
    } else {
        sched_yield();
    }
}

/*
 * Grows the array *p (elements of elsize bytes, capacity *cap) so that it
 * can hold at least need elements: doubling, from first at the least.
 * 0, or TXKV_NOMEM with *p and *cap unchanged.
 */
int vec_reserve(void *p, size_t *cap, size_t need, size_t elsize, size_t first);

#define VEC_RESERVE(arr, cap, need, first)                                                         \
    vec_reserve(&(arr), &(cap), (need), sizeof *(arr), (first))

/*
 * A mutex that knows its holder in debug builds, so that "caller holds mu"
 * can be asserted (SQLite's sqlite3_mutex_held).  Release builds keep only
 * the pthread mutex.
 */
struct mutex {
    pthread_mutex_t m;
#ifndef NDEBUG
    pthread_t owner;
    _Atomic int held;
#endif
};

void mutex_init(struct mutex *mu);
void mutex_destroy(struct mutex *mu);
void mutex_lock(struct mutex *mu);
void mutex_unlock(struct mutex *mu);
/* pthread_cond_[timed]wait on mu (deadline NULL: untimed); returns its error. */
int mutex_cond_wait(struct mutex *mu, pthread_cond_t *cv, const struct timespec *deadline);

#ifndef NDEBUG
/* True if the calling thread holds mu (debug builds only: use in assert). */
bool mutex_held(struct mutex *mu);
#endif

#endif /* TXKV_BASE_UTIL_H */
