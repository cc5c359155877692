/*
 * mem.c - the memory limit.
 *
 * The count covers the bytes of records (with their keys and an index
 * share) and versions (with their values) that are linked or about to be.
 * A commit reserves what it will add before it installs anything, so the
 * transaction that would pass the limit fails with TXKV_FULL and nothing it
 * wrote becomes visible.  Deletes are exempt from the check (they still
 * count): refusing a delete because memory is full would leave no way to
 * make room.  Frees release their bytes when they happen (after a grace
 * period), so "deleting data makes room again" once the GC catches up, and
 * before a reservation gives up it waits once for those frees (rcu_drain),
 * so garbage alone never makes a database with room report TXKV_FULL.
 *
 * The count is signed (frees may land before the reservation they match is
 * seen), so the limit is an int64_t: a size_t limit of 2^63 or more is "no
 * limit", not a negative number that every write would pass.
 */
#include "config.h"

#include "base/mem.h"
#include "base/rcu.h"
#include "txkv.h"

void mem_init(struct mem_limit *m, size_t limit)
{
    atomic_init(&m->used, 0);
    m->limit = limit > (size_t)INT64_MAX ? 0 : (int64_t)limit;
}

/* Would used + bytes pass lim (> 0)?  Without overflow for any bytes. */
static bool passes(int64_t used, size_t bytes, int64_t lim)
{
    return bytes > (size_t)lim || used > lim - (int64_t)bytes;
}

bool mem_over(struct mem_limit *m, size_t bytes)
{
    int64_t lim = m->limit;
    assert_outside_rcu_section();
    if (!lim || !passes(atomic_load_explicit(&m->used, memory_order_relaxed), bytes, lim))
        return false;
    rcu_drain();
    return passes(atomic_load_explicit(&m->used, memory_order_relaxed), bytes, lim);
}

int mem_reserve(struct mem_limit *m, size_t bytes, bool exempt)
{
    assert_outside_rcu_section();
    for (int tries = 0;; tries++) {
        int64_t after = atomic_fetch_add_explicit(&m->used, (int64_t)bytes, memory_order_relaxed) +
                        (int64_t)bytes;
        if (exempt || !m->limit || after <= m->limit)
            return 0;
        atomic_fetch_sub_explicit(&m->used, (int64_t)bytes, memory_order_relaxed);
        if (tries)
            return TXKV_FULL;
        rcu_drain(); /* let pending frees land, then try once more */
    }
}

void mem_release(struct mem_limit *m, size_t bytes)
{
    atomic_fetch_sub_explicit(&m->used, (int64_t)bytes, memory_order_relaxed);
}

uint64_t mem_used(const struct mem_limit *m)
{
    int64_t b = atomic_load_explicit(&m->used, memory_order_relaxed);
    return b > 0 ? (uint64_t)b : 0;
}
