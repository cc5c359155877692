/*
 * mem.c - the memory limit.
 *
 * db->mem_used counts the bytes of records (with their keys and an index
 * share) and versions (with their values) that are linked or about to be.
 * A commit reserves what it will add before it installs anything, so the
 * transaction that would pass the limit fails with TXKV_FULL and nothing it
 * wrote becomes visible.  Deletes are exempt from the check (they still
 * count): refusing a delete because memory is full would leave no way to
 * make room.  Frees release their bytes when they happen (after a grace
 * period), so "deleting data makes room again" once the GC catches up.
 *
 * The counter is one atomic on its own cache line, touched only by writes.
 */
#include "config.h"

#include "db.h"

/* Reservations are made outside read-side sections: they may wait for a
 * grace period (rcu_drain) before they give up. */

/* Share of each record for its hash bucket and B+tree slot (approximate). */
#define INDEX_BYTES_PER_RECORD 48

size_t mem_record_bytes(size_t klen)
{
    return sizeof(struct record) + klen + INDEX_BYTES_PER_RECORD;
}

size_t mem_version_bytes(size_t vlen)
{
    return sizeof(struct version) + vlen;
}

/*
 * Would `bytes` more pass the limit?  Memory of versions already cut off but
 * still waiting for a grace period counts until it is freed; before saying
 * yes, wait once for those frees (rcu_drain), so garbage alone never makes
 * a database with room report TXKV_FULL.  Outside any read-side section.
 */
bool mem_over(struct txkv_db *db, size_t bytes)
{
    int64_t lim = (int64_t)db->opt.mem_limit;
    if (!lim || atomic_load_explicit(&db->mem_used, memory_order_relaxed) + (int64_t)bytes <= lim)
        return false;
    rcu_drain();
    return atomic_load_explicit(&db->mem_used, memory_order_relaxed) + (int64_t)bytes > lim;
}

int mem_reserve(struct txkv_db *db, size_t bytes, bool exempt)
{
    for (int tries = 0;; tries++) {
        int64_t after = atomic_fetch_add_explicit(&db->mem_used, (int64_t)bytes,
                                                  memory_order_relaxed) + (int64_t)bytes;
        if (exempt || !db->opt.mem_limit || after <= (int64_t)db->opt.mem_limit)
            return 0;
        atomic_fetch_sub_explicit(&db->mem_used, (int64_t)bytes, memory_order_relaxed);
        if (tries)
            return TXKV_FULL;
        rcu_drain(); /* let pending frees land, then try once more */
    }
}

void mem_release(struct txkv_db *db, size_t bytes)
{
    atomic_fetch_sub_explicit(&db->mem_used, (int64_t)bytes, memory_order_relaxed);
}
