/*
 * commit.c - the commit of a writing transaction, both schemes: latch,
 * timestamp, validate, install, publish.
 *
 * The protocol (Silo's, with a visible-timestamp watermark instead of
 * epochs; see src/txn/README "Commit"):
 *  1. Reserve memory for what the commit adds (TXKV_FULL).
 *  2. Resolve every written key to its record (creating it if absent) and
 *     latch the records in address order.  Latch waits follow that one
 *     order, so they never form a cycle; a record held by a pessimistic
 *     lock is not waited for: the commit fails with TXKV_CONFLICT.
 *  3. ts = ++next_ts (seq_cst).
 *  4. Validate.  SNAPSHOT/SERIALIZABLE, optimistic: no written key has a
 *     version newer than the snapshot (first committer wins).  Every
 *     read-set entry (all reads under SERIALIZABLE, get_for_update
 *     everywhere): the key's newest version is still the one read and its
 *     record is not latched by another committer.  Every scanned range
 *     (SERIALIZABLE): no record in it is latched by another or has a
 *     version newer than the snapshot.
 *     Why the latch test suffices: a committer C that latched a record we
 *     read before our step 3 either took its timestamp before ours (then it
 *     still holds the latch or has installed, and we see one or the other)
 *     or takes it after ours (then C serialises after us and its write over
 *     our read is a legal anti-dependency).
 *  5. Install: link each new version, stamped ts, at the head of its chain
 *     (release store), pruning old versions on the way.
 *  6. Publish: wait until visible_ts == ts - 1, then visible_ts = ts.  A
 *     snapshot at visible_ts therefore covers only completely installed
 *     commits, and a transaction that begins after txkv_commit returned
 *     sees the commit.  A failed validation publishes its timestamp too
 *     (nothing installed) so later commits are not held up.
 *  7. Release the latches.
 *
 * Pessimistic transactions commit through the same steps: their written
 * records are already resolved and exclusively locked (lock.c), their reads
 * are protected by locks, so steps 2-4 find nothing to wait for or reject
 * except an optimistic commit still installing.  Their locks are released
 * after step 7 (strict two-phase locking, txn.c).  One path for both
 * schemes keeps the publication order (step 6) one order.
 */
#include "config.h"

#include <stdlib.h>

#include "txn/txn.h"
#include "wal/wal.h"

static int wentry_addr_cmp(const void *a, const void *b)
{
    const struct wentry *x = a, *y = b;
    return x->rec < y->rec ? -1 : x->rec > y->rec;
}

static void unlatch_write_set(struct txkv_txn *t)
{
    for (size_t i = 0; i < t->nws; i++) {
        struct wentry *w = &t->ws[i];
        if (w->latched) {
            latch_release(w->rec);
            w->latched = false;
        }
    }
}

/* Resolves every written key to its live record, creating the missing
 * ones (pessimistic writes were resolved when they locked the key). */
static int resolve_write_set(struct txkv_txn *t)
{
    for (size_t i = 0; i < t->nws; i++) {
        struct wentry *w = &t->ws[i];
        if (w->rec)
            continue;
        struct kref k = {w->ks, w->key, w->klen, w->hv};
        int rc = ks_resolve(&k, w->ver, w->ver->tomb, &w->rec, &w->made);
        if (rc)
            return rc;
    }
    return 0;
}

/* Does a pessimistic lock stop this commit?  Never wait on one: that
 * could close a cycle.  The latches are held (seq_cst CASes before the
 * loads, src/lock/README "Sharing with optimistic commits"). */
static bool locks_block(struct txkv_txn *t)
{
    bool pessimistic = t->cc == TXKV_PESSIMISTIC;
    for (size_t i = 0; i < t->nws; i++)
        if (lock_blocks_commit(t->ws[i].rec, pessimistic))
            return true;
    if (!lock_any_ranges(t->g->lm))
        return false;
    struct record **recs = arena_alloc(t, t->nws * sizeof *recs);
    struct txkv_ks **kss = arena_alloc(t, t->nws * sizeof *kss);
    if (!recs || !kss)
        return true; /* cannot check: do not commit */
    for (size_t i = 0; i < t->nws; i++) {
        recs[i] = t->ws[i].rec;
        kss[i] = t->ws[i].ks;
    }
    return lock_ranges_block(t->g->lm, &t->lk, kss, recs, t->nws);
}

/* Latches every record of the write set; on failure releases what it took. */
static int latch_write_set(struct txkv_txn *t)
{
    latch_t me = txn_token(t);
    int rc;
    for (;;) {
        if ((rc = resolve_write_set(t)))
            goto fail;
        /* Address order: two committers never wait for each other in a cycle. */
        qsort(t->ws, t->nws, sizeof *t->ws, wentry_addr_cmp);
        bool again = false;
        for (size_t i = 0; i < t->nws; i++) {
            struct wentry *w = &t->ws[i];
            if (!w->latched) {
                latch_wait(w->rec, me);
                w->latched = true;
            }
            if (record_dead(w->rec)) {
                again = true; /* the GC took it out: find or make a new one */
                latch_release(w->rec);
                w->latched = false;
                w->rec = NULL;
            }
        }
        if (!again) {
            if (locks_block(t)) {
                rc = TXKV_CONFLICT;
                goto fail;
            }
            return 0;
        }
        unlatch_write_set(t); /* re-latch in address order with the new records */
    }
fail:
    unlatch_write_set(t);
    return rc;
}

/* Newest version of a record is no newer than ts, and nobody else is installing. */
static bool record_unchanged(struct record *r, struct txkv_txn *t, uint64_t ts)
{
    if (latch_held_by_other(r, txn_token(t)))
        return false;
    struct version *v = atomic_load_explicit(&r->head, memory_order_acquire);
    return !v || v->ts <= ts;
}

static bool validate_read(struct txkv_txn *t, struct rentry *e)
{
    struct record *r = e->rec;
    bool ok = true;
    rcu_read_enter();
    /* A dead record's last version was an old tombstone we read as absent;
     * look for a newer record of the key, as for a key that had none. */
    if (!r || record_dead(r)) {
        const void *key = r ? r->key : e->key;
        r = ks_lookup(e->ks, key, e->klen, e->hv);
        if (r && record_dead(r))
            r = NULL;
    }
    if (r)
        ok = record_unchanged(r, t, e->read_ts);
    rcu_read_leave();
    return ok;
}

static bool validate_range(struct txkv_txn *t, struct rangeentry *e)
{
    struct btree_iter it;
    bool ok = true;
    int rc;
    btree_iter_init(e->ks->tree, &it);
    rcu_read_enter();
    rc = e->lo ? btree_seek(&it, e->lo, e->lolen) : btree_first(&it);
    for (; rc == 0; rc = btree_next(&it)) {
        if (e->hi && key_cmp(it.key, it.klen, e->hi, e->hilen) > 0)
            break;
        if (!record_unchanged(it.val, t, e->read_ts)) {
            ok = false;
            break;
        }
    }
    rcu_read_leave();
    btree_iter_fini(&it);
    /* TXKV_NOMEM from the iterator: we could not check, so do not commit. */
    return ok && rc != TXKV_NOMEM;
}

static int validate(struct txkv_txn *t)
{
    if (t->g->skip_validation) /* tests only: txn_test_skip_validation */
        return 0;
    /* First committer wins, for optimistic transactions only.  A pessimistic
     * one holds the exclusive lock of every key it wrote: at SNAPSHOT
     * txn_lock already failed it if the key had changed since its snapshot
     * (first updater wins), and at SERIALIZABLE strict 2PL orders it after
     * whoever committed the key before it got the lock. */
    if (t->isolation != TXKV_READ_COMMITTED && t->cc == TXKV_OPTIMISTIC)
        for (size_t i = 0; i < t->nws; i++) {
            struct version *v = atomic_load_explicit(&t->ws[i].rec->head, memory_order_relaxed);
            if (v && v->ts > t->begin_ts)
                return TXKV_CONFLICT; /* first committer wins */
        }
    for (size_t i = 0; i < t->nrs; i++)
        if (!validate_read(t, &t->rs[i]))
            return TXKV_CONFLICT;
    for (size_t i = 0; i < t->nranges; i++)
        if (!validate_range(t, &t->ranges[i]))
            return TXKV_CONFLICT;
    return 0;
}

static void install(struct txkv_txn *t, uint64_t ts)
{
    struct record_store *s = t->g->store;
    struct prune_bounds pb = gc_prune_bounds(t->g->gc);
    int64_t dkeys = 0, dversions = 0;
    for (size_t i = 0; i < t->nws; i++) {
        struct wentry *w = &t->ws[i];
        struct record *r = w->rec;
        struct version *old = atomic_load_explicit(&r->head, memory_order_relaxed);
        struct version *v = w->ver;
        assert(w->latched && latch_held(r, txn_token(t)));
        struct prune_bounds b = pb;
        /* WAL hook: a key the checkpoint has written needs no version at
         * its snapshot any more (src/wal/checkpoint.c, "Cursor") */
        if (b.old < b.young && t->g->wal &&
            wal_ckpt_passed(t->g->wal, w->ks, w->key, w->klen, b.old))
            b.old = b.young;
        if (version_install(s, r, v, ts, b, &t->limbo) == v)
            w->ver = NULL; /* owned by the chain now */
        else               /* copied into r's inline slot: w->ver goes at txn_end */
            mem_release(&s->mem, version_bytes(v->vlen));
        dversions++;
        dkeys += (old && !old->tomb) ? (v->tomb ? -1 : 0) : (v->tomb ? 0 : 1);
        if (v->tomb)
            ks_queue_tombstone(w->ks, r);
    }
    atomic_fetch_add_explicit(&s->nkeys, dkeys, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->nversions, dversions, memory_order_relaxed);
}

/* Makes ts visible once every earlier timestamp is (step 6).  WAL hook:
 * a durable commit's record is appended here, in the section that runs
 * in ts order, so the log is in commit order (src/wal/README). */
static void publish(struct record_store *s, uint64_t ts, struct wal *w, struct wal_rec *wr,
                    uint64_t *lsn)
{
    /* everything installed under ts-1 happens before our store; the
     * predecessor may be descheduled, hence spin, then yield */
    clock_wait_visible(s, ts - 1);
    if (wr)
        *lsn = wal_append_commit(w, wr, ts);
    /* pairs with the acquire load of visible_ts at begin/read */
    clock_publish(s, ts);
}

/* Records this commit created and will not fill: let the GC take them out. */
static void drop_made(struct txkv_txn *t)
{
    for (size_t i = 0; i < t->nws; i++)
        if (t->ws[i].made && t->ws[i].rec &&
            !atomic_load_explicit(&t->ws[i].rec->head, memory_order_relaxed))
            ks_queue_tombstone(t->ws[i].ks, t->ws[i].rec);
}

/* Step 1: reserves the versions' bytes; *all_tomb if every write deletes. */
static int reserve_versions(struct txkv_txn *t, size_t *bytes)
{
    size_t vbytes = 0;
    bool all_tomb = true;
    for (size_t i = 0; i < t->nws; i++) {
        vbytes += version_bytes(t->ws[i].ver->vlen);
        all_tomb &= t->ws[i].ver->tomb;
    }
    *bytes = vbytes;
    return mem_reserve(&t->g->store->mem, vbytes, all_tomb);
}

/* WAL hook: a durable database serialises the write set before latching. */
static int wal_build(struct txkv_txn *t, struct wal_rec *wr)
{
    int rc = wal_check(t->g->wal);
    for (size_t i = 0; i < t->nws && !rc; i++) {
        struct wentry *w = &t->ws[i];
        rc = wal_rec_add(wr, w->ks, w->key, w->klen, w->ver->val, w->ver->vlen, w->ver->tomb);
    }
    if (rc)
        wal_rec_reset(wr);
    return rc;
}

int txn_commit_writes(struct txkv_txn *t)
{
    struct txn_global *g = t->g;
    struct record_store *s = g->store;
    struct wal_rec *wr = &t->wal; /* WAL hook: empty, its buffer kept from the last commit */
    uint64_t lsn = 0;
    size_t vbytes;
    int rc;

    if (!t->nws)
        return 0; /* read-only: its snapshot is a serial prefix, nothing to check */
    assert_outside_rcu_section();
    if (g->wal && (rc = wal_build(t, wr)))
        return rc;
    /* 1. memory for the versions (records are reserved as they are made) */
    if ((rc = reserve_versions(t, &vbytes))) {
        wal_rec_reset(wr);
        return rc;
    }
    /* 2. */
    if ((rc = latch_write_set(t))) {
        drop_made(t);
        mem_release(&s->mem, vbytes);
        wal_rec_reset(wr);
        return rc;
    }
    /* 3. seq_cst: ordered before our loads of other records' latches in 4 */
    uint64_t ts = atomic_fetch_add(&s->next_ts, 1) + 1;
    /* 4. */
    rc = validate(t);
    /* 5. */
    if (rc == 0 && g->wal)
        wal_rec_seal(wr, ts); /* WAL hook: hashed here, not in publish's ordered section */
    if (rc == 0)
        install(t, ts);
    /* 6. */
    publish(s, ts, g->wal, rc == 0 && g->wal ? wr : NULL, &lsn);
    /* 7. */
    if (rc) {
        drop_made(t);
        mem_release(&s->mem, vbytes);
    }
    unlatch_write_set(t);
    if ((atomic_fetch_add_explicit(&t->n_since_horizon, 1, memory_order_relaxed) & 255) == 0)
        gc_horizon(g->gc);
    if (g->wal) { /* WAL hook: wait as the sync policy says, latches released */
        wal_rec_reset(wr);
        if (rc == 0)
            rc = wal_wait(g->wal, lsn);
    }
    return rc;
}
