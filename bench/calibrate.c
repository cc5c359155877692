/*
 * calibrate.c - index-bench --calibrate: what a cache miss costs on this
 * machine, the yardstick of bench/RESULTS.md's "misses implied by timing".
 *
 * Method (printed in the output's header line too): a working set of
 * --calibrate=MIB MiB (512 by default, far beyond any last-level cache) is
 * cut into 64-byte lines, and the first 8 bytes of each line point to the
 * next line of one random cyclic permutation of all of them (Sattolo's
 * algorithm, so the lines form a single cycle and no prefetcher can guess
 * the next address).  A "dependent" chase follows one pointer after another:
 * every load waits for the previous one, so time / loads is the latency of
 * one miss (TLB misses included, as on txkv's own heap: the pages are
 * whatever malloc's would be, with the kernel's transparent-huge-page
 * setting, which the header names).  An "overlapped" chase follows 8
 * independent chains started at random lines, interleaved in one loop:
 * the 8 loads of a round are in flight together, so time / (8 x rounds) is
 * the cost of a miss when the core overlaps them, the best a batched or
 * prefetching data path can hope for.  The same two chases over a 256 KiB
 * set (resident in L2 on current x86) give the cost of a hit, for contrast.
 * Each figure is the median of 3 timed chases; the whole run takes a few
 * seconds, most of it building the permutation.
 *
 * Kept apart from index-bench.c, which only parses --calibrate and calls
 * calibrate_run().
 */
#include "config.h"

/* The figures describe the machine, not the build: optimised in debug builds too. */
#if defined(__GNUC__) && !defined(__clang__) && defined(TXKV_DEBUG)
#pragma GCC optimize("O2")
#endif

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "calibrate.h"

#define LINE          64
#define CHAINS        8 /* interleaved chains of the overlapped chase */
#define REPS          3 /* timed chases per figure; the median is reported */
#define DEP_LOADS     (1u << 20)
#define RESIDENT_SIZE (256u << 10)

static volatile uintptr_t calib_sink;

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t calib_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n). */
static uint64_t calib_below(uint64_t *s, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)calib_rand(s) * n) >> 64);
}

/*
 * Links the n lines at base into one random cycle: line i's first word
 * points to line sigma(i), sigma a cyclic permutation drawn by Sattolo's
 * algorithm (j < i strictly, which is what makes it a single n-cycle).
 * The indexes are shuffled in place in the lines' slots, then turned into
 * addresses in one sequential pass.
 */
static void link_cycle(char *base, size_t n, uint64_t *seed)
{
    for (size_t i = 0; i < n; i++)
        *(uintptr_t *)(base + i * LINE) = i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)calib_below(seed, i);
        uintptr_t *a = (uintptr_t *)(base + i * LINE), *b = (uintptr_t *)(base + j * LINE);
        uintptr_t t = *a;
        *a = *b;
        *b = t;
    }
    for (size_t i = 0; i < n; i++) {
        uintptr_t *slot = (uintptr_t *)(base + i * LINE);
        *slot = (uintptr_t)(base + *slot * LINE);
    }
}

/* ns per load of `loads` dependent loads from start. */
static double chase_dependent(void *start, size_t loads)
{
    void *p = start;
    double t0 = mono_now();
    for (size_t i = 0; i < loads; i += 8) {
        p = *(void **)p, p = *(void **)p, p = *(void **)p, p = *(void **)p;
        p = *(void **)p, p = *(void **)p, p = *(void **)p, p = *(void **)p;
    }
    double t = mono_now() - t0;
    calib_sink += (uintptr_t)p;
    return t * 1e9 / (double)loads;
}

/* ns per load of CHAINS chains advanced together for `rounds` rounds. */
static double chase_overlapped(void *const starts[CHAINS], size_t rounds)
{
    void *p0 = starts[0], *p1 = starts[1], *p2 = starts[2], *p3 = starts[3];
    void *p4 = starts[4], *p5 = starts[5], *p6 = starts[6], *p7 = starts[7];
    double t0 = mono_now();
    for (size_t i = 0; i < rounds; i++) {
        p0 = *(void **)p0, p1 = *(void **)p1, p2 = *(void **)p2, p3 = *(void **)p3;
        p4 = *(void **)p4, p5 = *(void **)p5, p6 = *(void **)p6, p7 = *(void **)p7;
    }
    double t = mono_now() - t0;
    calib_sink += (uintptr_t)p0 ^ (uintptr_t)p1 ^ (uintptr_t)p2 ^ (uintptr_t)p3 ^ (uintptr_t)p4 ^
                  (uintptr_t)p5 ^ (uintptr_t)p6 ^ (uintptr_t)p7;
    return t * 1e9 / ((double)rounds * CHAINS);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The dependent and overlapped figures over a fresh set of `bytes`. */
static int measure_set(size_t bytes, uint64_t *seed, double *dep, double *ovl)
{
    size_t n = bytes / LINE;
    double d[REPS], o[REPS];
    void *starts[CHAINS];
    char *base = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (base == MAP_FAILED)
        return -1;
    link_cycle(base, n, seed);
    /* A resident set is walked once first, so that the timed chases hit. */
    if (bytes <= RESIDENT_SIZE)
        chase_dependent(base, n < 8 ? 8 : n);
    for (int r = 0; r < REPS; r++) {
        d[r] = chase_dependent(base + calib_below(seed, n) * LINE, DEP_LOADS);
        for (int c = 0; c < CHAINS; c++)
            starts[c] = base + calib_below(seed, n) * LINE;
        o[r] = chase_overlapped(starts, DEP_LOADS / CHAINS);
    }
    munmap(base, bytes);
    qsort(d, REPS, sizeof d[0], cmp_double);
    qsort(o, REPS, sizeof o[0], cmp_double);
    *dep = d[REPS / 2];
    *ovl = o[REPS / 2];
    return 0;
}

/* The kernel's transparent-huge-page mode ("always", "madvise", "never"), or "unknown". */
static void thp_mode(char *buf, size_t len)
{
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    char line[128], *a, *b;

    snprintf(buf, len, "unknown");
    if (!f)
        return;
    if (fgets(line, sizeof line, f) && (a = strchr(line, '[')) && (b = strchr(a, ']'))) {
        *b = '\0';
        snprintf(buf, len, "%s", a + 1);
    }
    fclose(f);
}

int calibrate_run(unsigned mib, const char *csv_path)
{
    struct {
        size_t bytes;
        double dep, ovl;
    } sets[2] = {{(size_t)mib << 20, 0, 0}, {RESIDENT_SIZE, 0, 0}};
    uint64_t seed = 0x5eed5eedull;
    char thp[32];
    double t0 = mono_now();
    FILE *csv = NULL;

    if (mib < 1 || mib > (1u << 20)) {
        fprintf(stderr, "index-bench: --calibrate=MIB takes 1 to 1048576\n");
        return 2;
    }
    for (int i = 0; i < 2; i++) {
        if (measure_set(sets[i].bytes, &seed, &sets[i].dep, &sets[i].ovl) != 0) {
            fprintf(stderr, "index-bench: --calibrate: cannot map %zu bytes\n", sets[i].bytes);
            return 2;
        }
    }
    thp_mode(thp, sizeof thp);
    printf("# calibrate: pointer chase, one 8-byte slot per 64-byte line, lines linked in one "
           "random cycle (Sattolo); dependent = 1 chain (latency of a miss), overlapped = %d "
           "chains interleaved (cost of a miss when %d are in flight); ns per load, median of "
           "%d chases of %u loads; THP %s; %.1f s\n",
           CHAINS, CHAINS, REPS, DEP_LOADS, thp, mono_now() - t0);
    printf("%-12s %14s %14s\n", "working_set", "dependent_ns", "overlapped_ns");
    for (int i = 0; i < 2; i++) {
        char name[32];
        if (sets[i].bytes >= (1u << 20))
            snprintf(name, sizeof name, "%zuMiB", sets[i].bytes >> 20);
        else
            snprintf(name, sizeof name, "%zuKiB", sets[i].bytes >> 10);
        printf("%-12s %14.2f %14.2f\n", name, sets[i].dep, sets[i].ovl);
    }
    if (csv_path) {
        if (!(csv = fopen(csv_path, "w"))) {
            perror(csv_path);
            return 2;
        }
        fprintf(csv, "working_set_bytes,dependent_ns,overlapped_ns\n");
        for (int i = 0; i < 2; i++)
            fprintf(csv, "%zu,%.3f,%.3f\n", sets[i].bytes, sets[i].dep, sets[i].ovl);
        if (fclose(csv) != 0) {
            perror(csv_path);
            return 2;
        }
    }
    return 0;
}
