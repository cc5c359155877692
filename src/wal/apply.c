/*
 * apply.c - recovery's writes into the store: keyspaces, and versions
 * installed directly with their commit timestamps.
 *
 * The one file of src/wal/ that builds records and versions itself, kept
 * small on purpose: when the record layout changes (src/record/), this is
 * what follows it.  Single-threaded (txkv_open, before the database is
 * handed out), outside any RCU read-side section; the latch is still
 * taken so the record layer's assertions hold.
 */
#include "config.h"

#include "wal/wal.h"

int wal_apply_keyspace(struct ks_set *set, const char *name, unsigned flags, struct txkv_ks **ksp)
{
    int rc = ks_open(set, name, flags | TXKV_CREATE, ksp);
    return rc == TXKV_EXISTS ? TXKV_IO : rc;
}

int wal_apply_write(struct txkv_ks *ks, const void *key, size_t klen, const void *val, size_t vlen,
                    bool tomb, uint64_t ts, bool fresh)
{
    struct record_store *s = ks->store;
    struct kref k = {ks, key, klen, ks_hash(ks, key, klen)};
    struct record *r = NULL;
    bool made = false;
    int rc;

    size_t vbytes = version_bytes(vlen);
    if ((rc = mem_reserve(&s->mem, vbytes, tomb)))
        return rc;
    if (!fresh) { /* an update finds its record without making one first */
        rcu_read_enter();
        r = ks_lookup(ks, key, klen, k.hv);
        if (r && record_dead(r))
            r = NULL;
        rcu_read_leave();
    }
    struct version *v = version_new(val, vlen, tomb);
    if (!v) {
        mem_release(&s->mem, vbytes);
        return TXKV_NOMEM;
    }
    if (!r && (rc = ks_resolve(&k, v, tomb, &r, &made))) {
        version_free_now(v);
        mem_release(&s->mem, vbytes);
        return rc;
    }
    /* The GC thread, which resizes hash tables as they grow, is not running
     * yet: do its job (as gc_maintain_hashes does); O(1) unless it resizes. */
    int64_t n = atomic_load_explicit(&ks->nrecords, memory_order_relaxed);
    if (made && ks->hash)
        hash_maintain(ks->hash, n > 0 ? (size_t)n : 0);
    latch_wait(r, LATCH_RECOVERY);
    struct version *old = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (old && old->ts >= ts) { /* cannot happen in a well-formed log */
        latch_release(r);
        version_free_now(v);
        mem_release(&s->mem, vbytes);
        return TXKV_IO;
    }
    /* read old before it is freed */
    int64_t dkeys = (old && !old->tomb) ? (tomb ? -1 : 0) : (tomb ? 0 : 1);
    /* horizon 0: version_install prunes nothing; we cut below */
    struct version *nv = version_install(s, r, v, ts, 0, NULL);
    if (nv != v) { /* copied into the record's inline slot */
        version_free_now(v);
        mem_release(&s->mem, vbytes);
    }
    /* Nobody can read the older versions: free them now rather than after
     * a grace period (version_prune would hand them to liburcu's thread);
     * an inline slot cut here is simply free for the next write. */
    struct version *o = atomic_load_explicit(&nv->next, memory_order_relaxed);
    atomic_store_explicit(&nv->next, NULL, memory_order_relaxed);
    while (o) {
        struct version *nx = atomic_load_explicit(&o->next, memory_order_relaxed);
        if (!o->inl) {
            mem_release(&s->mem, version_bytes(o->vlen));
            version_free_now(o);
        }
        atomic_fetch_sub_explicit(&s->nversions, 1, memory_order_relaxed);
        o = nx;
    }
    latch_release(r);
    atomic_fetch_add_explicit(&s->nkeys, dkeys, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->nversions, 1, memory_order_relaxed);
    if (tomb)
        ks_queue_tombstone(ks, r);
    return 0;
}
