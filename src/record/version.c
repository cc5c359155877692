/*
 * version.c - version chains: allocation, visibility, pruning, freeing.
 *
 * A record's chain is newest first and holds only committed versions, each
 * with its final commit timestamp (version_install stamps it as it links
 * it, under the latch, after the commit took its timestamp).  So visibility is a pure timestamp
 * test: a reader with read timestamp R sees the first version with ts <= R.  A commit with ts <= R
 * is completely installed before the visible timestamp reaches R (src/txn/commit.c publishes in
 * timestamp order), so R never shows half a commit.
 *
 * Readers walk the chain inside an RCU read-side section with acquire loads
 * (pairing with the release store in version_install).
 *
 * Pruning (latch held): with horizon H (src/gc/: no active or future
 * transaction reads below H), keep every version with ts > H and the newest
 * version with ts <= H; cut the rest.  Any reader's read timestamp is >= H,
 * so the version it needs is at or above the cut, and a reader already past
 * the cut point is protected by its RCU section: cut versions are freed
 * through rcu_defer.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "record/keyspace.h"
#include "record/record.h"

struct version *version_new(struct record_store *s, const void *val, size_t vlen, bool tomb)
{
    struct version *v = malloc(sizeof *v + vlen);
    if (!v)
        return NULL;
    v->ts = 0;
    atomic_init(&v->next, NULL);
    v->vlen = (uint32_t)vlen;
    v->tomb = tomb;
    v->store = s;
    if (vlen)
        memcpy(v->val, val, vlen);
    return v;
}

/* A version never linked, or unreachable by any reader. */
void version_free_now(struct version *v)
{
    free(v);
}

static void version_free_cb(struct rcu_head *h)
{
    RCU_CALLBACK_ENTER();
    struct version *v = container_of_(h, struct version, rcu);
    struct record_store *s = v->store;
    mem_release(&s->mem, version_bytes(v->vlen));
    atomic_fetch_add_explicit(&s->gc_freed, 1, memory_order_relaxed);
    free(v);
    RCU_CALLBACK_EXIT();
}

/* A version that was linked and is now cut off: free after a grace period;
 * its bytes are released then (it was already uncounted as a live version). */
static void version_free_deferred(struct version *v)
{
    rcu_defer(&v->rcu, version_free_cb);
}

struct version *version_visible(struct record *r, uint64_t ts)
{
    assert_in_rcu_section();
    /* acquire: pairs with the release store of head in version_install */
    struct version *v = atomic_load_explicit(&r->head, memory_order_acquire);
    while (v) {
        rcu_observe_hb(v);
        if (v->ts <= ts)
            return v;
        v = atomic_load_explicit(&v->next, memory_order_acquire);
    }
    return NULL;
}

void version_install(struct record *r, struct version *v, uint64_t ts)
{
    assert(atomic_load_explicit(&r->latch, memory_order_relaxed) != 0);
    struct version *old = atomic_load_explicit(&r->head, memory_order_relaxed);
    assert(!old || old->ts < ts); /* R1: strictly decreasing down the chain */
    v->ts = ts;
    atomic_store_explicit(&v->next, old, memory_order_relaxed);
    rcu_publish_hb(v);
    /* release: pairs with the acquire in version_visible */
    atomic_store_explicit(&r->head, v, memory_order_release);
}

/*
 * Cuts the versions below the newest one with ts <= horizon and queues them
 * for freeing.  The latch makes the caller the only writer of the chain (R2).
 */
size_t version_prune(struct record *r, uint64_t horizon)
{
    assert(atomic_load_explicit(&r->latch, memory_order_relaxed) != 0);
    struct version *v = atomic_load_explicit(&r->head, memory_order_relaxed);
    while (v && v->ts > horizon)
        v = atomic_load_explicit(&v->next, memory_order_relaxed);
    if (!v)
        return 0;
    struct version *old = atomic_load_explicit(&v->next, memory_order_relaxed);
    if (!old)
        return 0;
    /* Readers that loaded the old pointer keep walking freed-later memory
     * safely: RCU.  Readers that load NULL never needed what was cut. */
    atomic_store_explicit(&v->next, NULL, memory_order_release);
    size_t n = 0;
    while (old) {
        struct version *nx = atomic_load_explicit(&old->next, memory_order_relaxed);
        version_free_deferred(old);
        old = nx;
        n++;
    }
    /* Live versions are those linked: cut ones stop counting now, even if
     * their memory waits for a grace period. */
    atomic_fetch_sub_explicit(&r->ks->store->nversions, (int64_t)n, memory_order_relaxed);
    return n;
}
