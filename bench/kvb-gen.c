/*
 * kvb-gen.c - kv-bench's random streams and zipfian distribution.
 *
 * Streams: xoshiro256** (Blackman and Vigna), each seeded by running
 * splitmix64 over (seed, stream number).  A thread's stream depends only on
 * --seed and its thread number, never on the engine or the isolation level,
 * so every row of a sweep draws the same keys in the same order.
 *
 * Zipfian: the generator of Gray et al., "Quickly generating billion-record
 * synthetic databases" (SIGMOD 1994), the one YCSB's ZipfianGenerator uses,
 * with zeta(n, theta) precomputed once per row.  Ranks are not scrambled
 * here: items become keys through a 64-bit bijection (bench_key), which
 * scatters the popular ranks across the key order instead.  zeta is summed
 * exactly for the first 2^22 terms; beyond that the Euler-Maclaurin formula
 * gives the tail (relative error far below 1e-12), so 100M-key rows do not
 * spend seconds in pow().
 */
#include "config.h"

#include <math.h>

#include "kvb.h"

#define ZETA_EXACT ((uint64_t)1 << 22)

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void bench_rng_seed(struct bench_rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream + 1) * 0xd1342543de82ef95ull;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3]))
        r->s[0] = 1; /* the one state xoshiro cannot leave */
}

/* sum of i^-theta for i in [from, to], exact. */
static double zeta_exact(uint64_t from, uint64_t to, double theta)
{
    double s = 0;
    for (uint64_t i = from; i <= to; i++)
        s += pow((double)i, -theta);
    return s;
}

/* sum of i^-theta for i in [a, b]: Euler-Maclaurin to the first derivative term. */
static double zeta_tail(uint64_t a, uint64_t b, double theta)
{
    double fa = pow((double)a, -theta), fb = pow((double)b, -theta);
    double integral = (pow((double)b, 1 - theta) - pow((double)a, 1 - theta)) / (1 - theta);
    double dfa = -theta * fa / (double)a, dfb = -theta * fb / (double)b;
    return integral + (fa + fb) / 2 + (dfb - dfa) / 12;
}

static double zeta_range(uint64_t from, uint64_t to, double theta)
{
    if (to < from)
        return 0;
    if (to < ZETA_EXACT || to - from < ZETA_EXACT)
        return zeta_exact(from, to, theta);
    if (from < ZETA_EXACT)
        return zeta_exact(from, ZETA_EXACT - 1, theta) + zeta_tail(ZETA_EXACT, to, theta);
    return zeta_tail(from, to, theta);
}

static void zipf_derive(struct bench_zipf *z)
{
    z->eta = z->n < 2 ? 0 : (1 - pow(2.0 / (double)z->n, 1 - z->theta)) / (1 - z->zeta2 / z->zetan);
}

void bench_zipf_init(struct bench_zipf *z, uint64_t n, double theta)
{
    z->n = n ? n : 1;
    z->theta = theta;
    z->alpha = 1 / (1 - theta);
    z->zeta2 = zeta_exact(1, 2, theta);
    z->zetan = zeta_range(1, z->n, theta);
    z->half_pow_theta = pow(0.5, theta);
    zipf_derive(z);
}

void bench_zipf_grow(struct bench_zipf *z, uint64_t n2)
{
    if (n2 <= z->n)
        return;
    z->zetan += zeta_range(z->n + 1, n2, z->theta);
    z->n = n2;
    zipf_derive(z);
}
