/*
 * fuzz.h - what a fuzz target (tests/fuzz/fuzz-*.c) shares with its two
 * drivers: libFuzzer (clang --enable-fuzzing builds) and tests/fuzz/replay.c
 * (every other build: the corpus plus seeded random inputs, as TAP).
 *
 * A target defines LLVMFuzzerTestOneInput() and one `struct fuzz_target
 * fuzz_target`.  A violated property goes through fuzz_fail(): under
 * libFuzzer it prints the message and aborts, so the fuzzer keeps the input
 * as a crash; under replay the driver installs a report hook instead, which
 * records the message, and the target returns from the input at once.
 */
#ifndef TXKV_FUZZ_H
#define TXKV_FUZZ_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

struct fuzz_target {
    const char *name; /* "fuzz-api" */
    /* Writes one pseudo-random input of at most cap bytes into buf, drawing
     * from *rng (a seeded generator state); returns its length.  Replay only. */
    size_t (*generate)(uint64_t *rng, uint8_t *buf, size_t cap);
    /* Optional: proves the checks have teeth (replay runs it as one test).
     * Returns 1 if it passed; writes what it saw into msg. */
    int (*self_test)(uint64_t seed, char *msg, size_t msgsz);
    /* Set by replay: called with the message of a violated property instead
     * of abort().  NULL under libFuzzer. */
    void (*report)(const char *msg);
};

extern struct fuzz_target fuzz_target;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reports a violated property: abort() (libFuzzer), or the replay hook. */
static inline void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void fuzz_fail(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (fuzz_target.report) {
        fuzz_target.report(msg);
        return;
    }
    fprintf(stderr, "%s: property violated: %s\n", fuzz_target.name, msg);
    fflush(stderr);
    abort();
}

/*
 * The targets keep their database across inputs, because txkv_close waits
 * for liburcu's call_rcu thread, which runs its batches 10 ms apart: a close
 * per input would cap a target at about 50 inputs a second.  An input whose
 * hash is 0 modulo FUZZ_CLOSE_EVERY ends with txkv_close instead: a
 * property of the bytes (so a saved input replays the same way) that the
 * fuzzer cannot steer towards the way it can steer towards a magic byte.
 */
#define FUZZ_CLOSE_EVERY 128

static inline int fuzz_input_closes(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return n > 0 && h % FUZZ_CLOSE_EVERY == 0;
}

#endif /* TXKV_FUZZ_H */
