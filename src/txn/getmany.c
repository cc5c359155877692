/*
 * getmany.c - txkv_get_many: n point reads of one keyspace in one call,
 * with their cache misses overlapped.
 *
 * A point read is a chain of dependent misses (bucket -> record -> version;
 * docs/design.md, "Performance notes"): about 250 ns each here, while
 * independent misses overlap to about 30 ns each.  n gets in a row pay the
 * chains one after another; a batch walks them stage by stage, every key's
 * step k before any key's step k+1 (as MICA's and DPDK rte_hash's bulk
 * lookups do), so the misses of one stage are in flight together:
 *   (a) hash every key (access_prepare) and answer keys the transaction
 *       wrote itself from its write set;
 *   (b) prefetch each remaining key's hash bucket (hash_prefetch);
 *   (c) look each key up (ks_lookup) and prefetch the record found, then
 *       load each record's head and prefetch the version it points at;
 *   (d) pick each key's visible version (version_visible), prefetch the
 *       rest of its value for the caller, and fill the outputs.
 * Keys go through in chunks of GETMANY_CHUNK, enough to fill the core's
 * miss buffers (about 10 to 12 lines in flight on x86) without the chunk's
 * own prefetches evicting each other.
 *
 * Semantics are those of n txkv_get calls in order (src/txn/README,
 * "Visibility"): own writes first; SERIALIZABLE read-write transactions add
 * every read to the read set, in key order of the batch, duplicates
 * included.  Where a read takes a lock (pessimistic SERIALIZABLE) the batch
 * reads key by key through txn_read: each S lock may wait, and locks are
 * taken in the caller's order as n gets would take them.  READ_COMMITTED
 * reads the whole batch at one read timestamp taken at the call: a history
 * that n gets could also produce (no commit published between them), and a
 * consistent snapshot of the batch for free.
 *
 * RCU: stages (b) to (d) of a chunk run in one read-side section.  Record
 * pointers put in the read set outlive it, as txkv_get's do (records are
 * retired only once every pin that could have found them has gone,
 * src/txn/README "Garbage collection"); version pointers returned stay
 * valid until the transaction ends (G1: visible at the transaction's pin or
 * later).
 */
#include "config.h"

#include "txn/txn.h"

/* Keys per chunk: see the file comment. */
#define GETMANY_CHUNK 16

/* How far into a found value stage (d) prefetches for the caller. */
#define GETMANY_VALUE_PREFETCH 512

/* A key of the chunk that the write set did not answer. */
struct gm_key {
    size_t i; /* its index in the caller's arrays */
    struct kref k;
    struct record *rec;
    const struct version *ver;
};

/* Sets rcs[from..n) to rc (keys the call did not read) and returns rc. */
static int stop_at(int *rcs, size_t from, size_t n, int rc)
{
    for (size_t i = from; i < n; i++)
        rcs[i] = rc;
    return rc;
}

/* Stages (b) to (d) for the m keys of a chunk, at read timestamp rts.
 * Fills g[].rec and g[].ver.  Enters and leaves its own read-side section. */
static void lookup_chunk(struct gm_key *g, size_t m, uint64_t rts)
{
    rcu_read_enter();
    for (size_t j = 0; j < m; j++)
        if (g[j].k.ks->hash)
            hash_prefetch(g[j].k.ks->hash, g[j].k.hv);
    for (size_t j = 0; j < m; j++) {
        g[j].rec = ks_lookup(g[j].k.ks, g[j].k.key, g[j].k.klen, g[j].k.hv);
        if (g[j].rec)
            __builtin_prefetch(g[j].rec);
    }
    /* relaxed: only an address to prefetch; version_visible loads it again
     * with acquire */
    for (size_t j = 0; j < m; j++)
        if (g[j].rec)
            __builtin_prefetch(atomic_load_explicit(&g[j].rec->head, memory_order_relaxed));
    for (size_t j = 0; j < m; j++) {
        const struct version *v = g[j].rec ? version_visible(g[j].rec, rts) : NULL;
        g[j].ver = v;
        if (v && !v->tomb) /* the caller reads the value next: start its other lines */
            for (size_t off = 64; off < sizeof *v + v->vlen && off < GETMANY_VALUE_PREFETCH;
                 off += 64)
                __builtin_prefetch((const char *)v + off);
    }
    rcu_read_leave();
}

/* The batched path: keys[from..n) of an optimistic transaction, or of a
 * pessimistic one whose reads take no locks.  0, or the first error. */
static int get_batched(struct txkv_txn *t, struct txkv_ks *ks, size_t n, const void *const *keys,
                       const size_t *klens, const void **vals, size_t *vlens, int *rcs)
{
    struct gm_key g[GETMANY_CHUNK];
    uint64_t rts = txn_read_ts(t); /* READ_COMMITTED: one timestamp, see above */
    bool validate = txn_ser_reads(t);

    for (size_t base = 0; base < n; base += GETMANY_CHUNK) {
        size_t end = n - base < GETMANY_CHUNK ? n : base + GETMANY_CHUNK, m = 0;
        /* (a): hash; own writes answer at once */
        for (size_t i = base; i < end; i++) {
            struct kref k;
            int rc = access_prepare(t, ks, keys[i], klens[i], &k);
            assert(rc == 0); /* txkv_get_many checked every key, and t cannot fail here */
            (void)rc;
            struct wentry *w = wset_find(t, &k);
            if (w)
                rcs[i] = read_found(w->ver, vals ? &vals[i] : NULL, vlens ? &vlens[i] : NULL);
            else
                g[m++] = (struct gm_key){.i = i, .k = k};
        }
        lookup_chunk(g, m, rts);
        for (size_t j = 0; j < m; j++) {
            size_t i = g[j].i;
            if (validate) {
                int rc = rset_add(t, &g[j].k, g[j].rec, rts);
                if (rc) {
                    /* n gets would have stopped here too; keys the write set
                     * answered after i are reported as not read */
                    return stop_at(rcs, i, n, rc);
                }
            }
            rcs[i] = read_found(g[j].ver, vals ? &vals[i] : NULL, vlens ? &vlens[i] : NULL);
        }
    }
    return 0;
}

/* Key by key, as n txkv_get calls: pessimistic reads that lock. */
static int get_each(struct txkv_txn *t, struct txkv_ks *ks, size_t n, const void *const *keys,
                    const size_t *klens, const void **vals, size_t *vlens, int *rcs)
{
    for (size_t i = 0; i < n; i++) {
        struct kref k;
        int rc = access_prepare(t, ks, keys[i], klens[i], &k);
        if (!rc)
            rc = txn_read(t, &k, vals ? &vals[i] : NULL, vlens ? &vlens[i] : NULL, false);
        rcs[i] = rc;
        if (rc && rc != TXKV_NOTFOUND)
            return stop_at(rcs, i, n, rc);
    }
    return 0;
}

/*
 * txkv_get_many: see txkv.h.  Arguments are checked before anything is
 * read, so a bad key leaves no trace in the read set or the lock table.
 */
int txkv_get_many(txkv_txn *h, txkv_ks *ks, size_t n, const void *const *keys, const size_t *klens,
                  const void **vals, size_t *vlens, int *rcs)
{
    struct txkv_txn *t;
    bool bad = false;
    int rc = txn_enter(h, &t, __func__);
    if (rc)
        return rc;
    if (n == 0)
        goto out;
    if (t->failed) {
        rc = TXKV_ABORTED;
        if (rcs)
            stop_at(rcs, 0, n, rc);
        goto out;
    }
    rc = TXKV_INVALID;
    if (!keys || !klens || !rcs || (ks && ks->set != t->g->ks))
        goto out;
    for (size_t i = 0; i < n; i++)
        if (check_key(keys[i], klens[i])) {
            rcs[i] = TXKV_INVALID;
            bad = true;
        }
    if (bad)
        goto out;
    if (t->cc == TXKV_PESSIMISTIC && txn_ser_reads(t))
        rc = get_each(t, ks, n, keys, klens, vals, vlens, rcs);
    else
        rc = get_batched(t, ks, n, keys, klens, vals, vlens, rcs);
out:
    txn_leave(t);
    return rc;
}
