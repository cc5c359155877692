/*
 * kvb-hist.c - kv-bench's latency histogram: merging and quantiles.
 *
 * The layout follows HdrHistogram with 4 significant bits: values below 16
 * have a bucket each; above, every power-of-two range [2^k, 2^(k+1)) is cut
 * into 16 equal sub-buckets, so a bucket is at most 1/16 (6.25%) of its
 * values wide and 976 buckets cover all of uint64_t.  Each thread records
 * into its own histogram without atomics (bench_hist_record in kvb.h); the
 * main thread merges them after the threads have been joined.
 */
#include "config.h"

#include <string.h>

#include "kvb.h"

void bench_hist_reset(struct bench_hist *h)
{
    memset(h, 0, sizeof *h);
}

void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src)
{
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++)
        dst->b[i] += src->b[i];
    dst->count += src->count;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t bench_hist_bucket_low(unsigned i)
{
    unsigned sub = 1u << BENCH_HIST_SUB_BITS;
    if (i < sub)
        return i;
    unsigned shift = (i >> BENCH_HIST_SUB_BITS) - 1;
    return (uint64_t)(sub + (i & (sub - 1))) << shift;
}

uint64_t bench_hist_bucket_width(unsigned i)
{
    unsigned sub = 1u << BENCH_HIST_SUB_BITS;
    return i < sub ? 1 : (uint64_t)1 << ((i >> BENCH_HIST_SUB_BITS) - 1);
}

double bench_hist_quantile(const struct bench_hist *h, double q)
{
    if (!h->count)
        return 0;
    /* the rank of the value at q: at least 1, at most count */
    uint64_t rank = (uint64_t)ceil(q * (double)h->count);
    if (rank < 1)
        rank = 1;
    if (rank > h->count)
        rank = h->count;
    uint64_t seen = 0;
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            double mid =
                (double)bench_hist_bucket_low(i) + (double)(bench_hist_bucket_width(i) - 1) / 2.0;
            return mid < (double)h->max ? mid : (double)h->max;
        }
    }
    return (double)h->max;
}
