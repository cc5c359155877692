/*
 * tap.h - a small TAP producer for txkv's tests (header only).
 *
 * plan(n) or no_plan() + done_testing(); ok(), is(), is_str(), skip(), diag().
 * tap_seed() reads TXKV_SEED from the environment (or derives one from the
 * clock), prints it, and the harness prints it again on any failure so a
 * failing run can be replayed:  TXKV_SEED=1234 ./tests/foo
 * tap_scale() reads TXKV_STRESS (default 1): stress tests multiply their
 * running time or operation counts by it.
 */
#ifndef TXKV_TAP_H
#define TXKV_TAP_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int tap_planned = -1;
static int tap_run;
static int tap_failed;
static uint64_t tap_seed_value;
static int tap_seed_set;

static void tap_atexit_(void)
{
    if (tap_failed && tap_seed_set)
        printf("# %d failed; replay with TXKV_SEED=%" PRIu64 "\n", tap_failed, tap_seed_value);
    fflush(stdout);
}

static inline void tap_init_(void)
{
    static int done;
    if (!done) {
        done = 1;
        setvbuf(stdout, NULL, _IOLBF, 0);
        atexit(tap_atexit_);
    }
}

static inline void plan(int n)
{
    tap_init_();
    tap_planned = n;
    printf("1..%d\n", n);
}

static inline void no_plan(void)
{
    tap_init_();
}

static inline void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void diag(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("# ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
}

static inline int ok_(int cond, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline int ok_(int cond, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    tap_init_();
    tap_run++;
    if (!cond)
        tap_failed++;
    printf("%sok %d - ", cond ? "" : "not ", tap_run);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    if (!cond) {
        printf("#   failed at %s:%d\n", file, line);
        if (tap_seed_set)
            printf("#   seed %" PRIu64 "\n", tap_seed_value);
    }
    return cond;
}

#define ok(cond, ...) ok_(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

#define is(got, want, ...)                                                                         \
    do {                                                                                           \
        long long got_ = (long long)(got), want_ = (long long)(want);                              \
        if (!ok_(got_ == want_, __FILE__, __LINE__, __VA_ARGS__))                                  \
            printf("#   got %lld, want %lld\n", got_, want_);                                      \
    } while (0)

#define is_str(got, want, ...)                                                                     \
    do {                                                                                           \
        const char *gs_ = (got), *ws_ = (want);                                                    \
        if (!ok_(gs_ && ws_ && strcmp(gs_, ws_) == 0, __FILE__, __LINE__, __VA_ARGS__))            \
            printf("#   got \"%s\", want \"%s\"\n", gs_ ? gs_ : "(null)", ws_ ? ws_ : "(null)");   \
    } while (0)

static inline void skip(int n, const char *why)
{
    tap_init_();
    for (int i = 0; i < n; i++)
        printf("ok %d # SKIP %s\n", ++tap_run, why);
}

static inline int done_testing(void)
{
    if (tap_planned < 0)
        printf("1..%d\n", tap_run);
    else if (tap_planned != tap_run)
        printf("# planned %d tests but ran %d\n", tap_planned, tap_run);
    return tap_failed || (tap_planned >= 0 && tap_planned != tap_run) ? 1 : 0;
}

static inline void bail_out(const char *why)
{
    printf("Bail out! %s\n", why);
    if (tap_seed_set)
        printf("# seed %" PRIu64 "\n", tap_seed_value);
    exit(1);
}

static inline uint64_t tap_seed(void)
{
    const char *s = getenv("TXKV_SEED");
    tap_init_();
    if (s && *s) {
        tap_seed_value = strtoull(s, NULL, 0);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        tap_seed_value = (uint64_t)ts.tv_sec * 1000003u ^ (uint64_t)ts.tv_nsec;
    }
    tap_seed_set = 1;
    printf("# seed %" PRIu64 "\n", tap_seed_value);
    return tap_seed_value;
}

static inline double tap_scale(void)
{
    const char *s = getenv("TXKV_STRESS");
    double v = s && *s ? strtod(s, NULL) : 1.0;
    return v > 0 ? v : 1.0;
}

/* xorshift64*: a small deterministic generator for tests. */
static inline uint64_t tap_rand(uint64_t *st)
{
    uint64_t x = *st ? *st : 0x9e3779b97f4a7c15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *st = x;
    return x * 0x2545f4914f6cdd1dull;
}

#endif /* TXKV_TAP_H */
