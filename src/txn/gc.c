/*
 * gc.c - version and record garbage collection.
 *
 * Owns: the GC horizon, the tombstone queue, the retire list and the GC
 * thread of each database.  See "Garbage collection" in src/txn/README.
 *
 * Horizon.  Every active transaction publishes a pin in its object (txn.c):
 * a timestamp at or below every timestamp it will read at.  The horizon H
 * is min(visible_ts, every pin), read in that order with seq_cst loads.  A
 * transaction that publishes its pin after we scanned its slot loaded its
 * read timestamp after its pin store, hence after our load of visible_ts,
 * so it reads at >= H.  Versions below the newest one with ts <= H are
 * therefore unreachable by every present and future reader except those
 * still inside an RCU section, and go through rcu_defer.
 *
 * Records.  A record whose newest version is a tombstone with ts <= H (or
 * that has no version at all) leaves its indexes: under its latch it is
 * marked dead, unlinked, and put on the retire list with tag = visible_ts.
 * Transactions may hold pointers to records in their read and write sets
 * outside any RCU section, so a retired record is freed only once every
 * active pin is > tag (every transaction that could have found it has
 * ended), and then after a grace period for readers still in flight.
 *
 * Lock order: gc_mu is a leaf lock, never held while taking a latch
 * (latches are only tried, never waited for, while gc_mu is held).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "db.h"

#define GC_PERIOD_MS 10
#define GC_IDLE_PERIOD_MS 50

/* Scans every transaction slot; returns H and caches max(H, old) in db->horizon. */
uint64_t gc_horizon(struct txkv_db *db)
{
    uint64_t h = atomic_load(&db->visible_ts);
    for (struct txkv_txn *t = atomic_load(&db->txns); t; t = t->all_next) {
        uint64_t p = atomic_load(&t->pin);
        if (p && p < h)
            h = p;
    }
    /* Every reader reads at >= any H ever computed (see the file comment),
     * so keeping the largest is safe and never moves pruning backwards. */
    uint64_t old = atomic_load_explicit(&db->horizon, memory_order_relaxed);
    while (h > old && !atomic_compare_exchange_weak(&db->horizon, &old, h))
        ;
    return h;
}

/* The smallest pin of any active transaction, or UINT64_MAX. */
static uint64_t gc_min_pin(struct txkv_db *db)
{
    uint64_t m = UINT64_MAX;
    for (struct txkv_txn *t = atomic_load(&db->txns); t; t = t->all_next) {
        uint64_t p = atomic_load(&t->pin);
        if (p && p < m)
            m = p;
    }
    return m;
}

/* Called by a commit that installed a tombstone on r, holding r's latch. */
void gc_queue_tombstone(struct txkv_db *db, struct record *r)
{
    pthread_mutex_lock(&db->gc_mu);
    if (!r->queued) {
        r->queued = 1;
        r->gc_next = db->tomb_queue;
        db->tomb_queue = r;
    }
    pthread_mutex_unlock(&db->gc_mu);
}

/* r is out of every index; free it once no transaction can hold it. */
void gc_retire(struct txkv_db *db, struct record *r)
{
    r->retire_ts = atomic_load(&db->visible_ts);
    pthread_mutex_lock(&db->gc_mu);
    r->queued = 1;
    r->gc_next = db->retired;
    db->retired = r;
    pthread_mutex_unlock(&db->gc_mu);
}

static void record_free_cb(struct rcu_head *h)
{
    RCU_CALLBACK_ENTER();
    struct record *r = container_of_(h, struct record, rcu);
    struct txkv_db *db = r->ks->db;
    atomic_fetch_add_explicit(&db->gc_freed, 1, memory_order_relaxed);
    record_free_now(db, r);
    RCU_CALLBACK_EXIT();
}

/* Takes r out of its indexes if its newest version is an old tombstone.
 * Returns true when r left the tombstone queue (removed or revived). */
static bool gc_try_remove(struct txkv_db *db, struct record *r, uint64_t h)
{
    if (!latch_try(r, (uintptr_t)db))
        return false;
    struct version *v = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (v && !v->tomb) { /* written again since: nothing to do */
        latch_release(r);
        return true;
    }
    if (v && v->ts > h) { /* some snapshot may still see the older value */
        latch_release(r);
        return false;
    }
    /* A record with pessimistic locks or waiters stays (lock.c checks dead
     * under lm_mu before it queues on a record). */
    pthread_mutex_lock(&db->lm_mu);
    bool locked = atomic_load(&r->plock) || (r->ls && (r->ls->holders || r->ls->waitq));
    if (!locked)
        /* release: a committer that latches r after us sees dead and re-resolves */
        atomic_store_explicit(&r->dead, 1, memory_order_release);
    pthread_mutex_unlock(&db->lm_mu);
    latch_release(r);
    if (locked)
        return false;
    struct txkv_ks *ks = r->ks;
    rcu_read_enter();
    if (ks->hash)
        hash_remove(ks->hash, &r->he);
    if (ks->tree)
        btree_remove(ks->tree, r->key, r->klen, r);
    rcu_read_leave();
    atomic_fetch_sub_explicit(&ks->nrecords, 1, memory_order_relaxed);
    r->retire_ts = atomic_load(&db->visible_ts);
    return true;
}

static void gc_process_tombstones(struct txkv_db *db, uint64_t h)
{
    pthread_mutex_lock(&db->gc_mu);
    struct record *list = db->tomb_queue;
    db->tomb_queue = NULL;
    pthread_mutex_unlock(&db->gc_mu);

    struct record *keep = NULL, *retire = NULL;
    while (list) {
        struct record *r = list, *nx = r->gc_next;
        list = nx;
        if (!gc_try_remove(db, r, h)) {
            r->gc_next = keep;
            keep = r;
        } else if (atomic_load(&r->dead)) {
            r->gc_next = retire;
            retire = r;
        } else {
            pthread_mutex_lock(&db->gc_mu);
            r->queued = 0;
            pthread_mutex_unlock(&db->gc_mu);
        }
    }
    pthread_mutex_lock(&db->gc_mu);
    while (keep) {
        struct record *nx = keep->gc_next;
        keep->gc_next = db->tomb_queue;
        db->tomb_queue = keep;
        keep = nx;
    }
    while (retire) {
        struct record *nx = retire->gc_next;
        retire->gc_next = db->retired;
        db->retired = retire;
        retire = nx;
    }
    pthread_mutex_unlock(&db->gc_mu);
}

static void gc_process_retired(struct txkv_db *db)
{
    uint64_t m = gc_min_pin(db);
    pthread_mutex_lock(&db->gc_mu);
    struct record **pp = &db->retired, *done = NULL;
    while (*pp) {
        struct record *r = *pp;
        if (r->retire_ts < m) {
            *pp = r->gc_next;
            r->gc_next = done;
            done = r;
        } else {
            pp = &r->gc_next;
        }
    }
    pthread_mutex_unlock(&db->gc_mu);
    while (done) {
        struct record *nx = done->gc_next;
        rcu_defer(&done->rcu, record_free_cb);
        done = nx;
    }
}

static void prune_one(struct record *r, uint64_t h, uintptr_t owner)
{
    struct version *v = atomic_load_explicit(&r->head, memory_order_acquire);
    if (!v || !atomic_load_explicit(&v->next, memory_order_acquire))
        return;
    if (latch_try(r, owner)) {
        version_prune(r, h);
        latch_release(r);
    }
}

/* Prunes every chain: after long snapshots end, versions they pinned on keys
 * nobody writes again would otherwise stay. */
static void gc_sweep(struct txkv_db *db, uint64_t h)
{
    pthread_mutex_lock(&db->ks_mu);
    struct txkv_ks *list = db->ks_list;
    pthread_mutex_unlock(&db->ks_mu);
    /* Keyspaces are never freed before close and the list is push-only. */
    for (struct txkv_ks *ks = list; ks; ks = ks->next) {
        rcu_read_enter();
        if (ks->hash) {
            struct hash_iter it;
            for (struct hash_entry *e = hash_first(ks->hash, &it); e; e = hash_next(ks->hash, &it))
                prune_one(container_of_(e, struct record, he), h, (uintptr_t)db);
        } else {
            struct btree_iter it;
            btree_iter_init(ks->tree, &it);
            for (int rc = btree_first(&it); rc == 0; rc = btree_next(&it))
                prune_one(it.val, h, (uintptr_t)db);
            btree_iter_fini(&it);
        }
        rcu_read_leave();
    }
}

/*
 * Keeps each hash table sized to its population.  liburcu's automatic
 * resize can get stuck (src/index/hash.c explains the race); resizing
 * explicitly when the population has doubled or halved both sizes the
 * table and unsticks it.  O(n) per call, amortised over n/2 inserts.
 */
static void gc_maintain_hashes(struct txkv_db *db)
{
    pthread_mutex_lock(&db->ks_mu);
    struct txkv_ks *list = db->ks_list;
    pthread_mutex_unlock(&db->ks_mu);
    for (struct txkv_ks *ks = list; ks; ks = ks->next) {
        int64_t n = atomic_load_explicit(&ks->nrecords, memory_order_relaxed);
        if (!ks->hash || (n < 2 * ks->maintained_at + 1024 && 2 * n + 1024 > ks->maintained_at))
            continue;
        hash_maintain(ks->hash);
        ks->maintained_at = n;
    }
}

static void *gc_main(void *arg)
{
    struct txkv_db *db = arg;
    uint64_t swept_at = 0;
    bool idle = false;
    pthread_mutex_lock(&db->gc_mu);
    while (!db->gc_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long ms = idle ? GC_IDLE_PERIOD_MS : GC_PERIOD_MS;
        ts.tv_nsec += ms * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&db->gc_cv, &db->gc_mu, &ts);
        if (db->gc_stop)
            break;
        bool work = db->tomb_queue || db->retired;
        pthread_mutex_unlock(&db->gc_mu);

        uint64_t h = gc_horizon(db);
        gc_maintain_hashes(db);
        if (work) {
            gc_process_tombstones(db, h);
            gc_process_retired(db);
        }
        int64_t nv = atomic_load_explicit(&db->nversions, memory_order_relaxed);
        int64_t nk = atomic_load_explicit(&db->nkeys, memory_order_relaxed);
        if (nv > 2 * nk + 4096 && h > swept_at) {
            gc_sweep(db, h);
            swept_at = h;
        }
        idle = !work && h == swept_at;
        pthread_mutex_lock(&db->gc_mu);
    }
    pthread_mutex_unlock(&db->gc_mu);
    return NULL;
}

int gc_start(struct txkv_db *db)
{
    if (pthread_create(&db->gc_thread, NULL, gc_main, db) != 0)
        return TXKV_NOMEM;
    db->gc_running = true;
    return 0;
}

void gc_stop(struct txkv_db *db)
{
    if (!db->gc_running)
        return;
    pthread_mutex_lock(&db->gc_mu);
    db->gc_stop = true;
    pthread_cond_signal(&db->gc_cv);
    pthread_mutex_unlock(&db->gc_mu);
    pthread_join(db->gc_thread, NULL);
    db->gc_running = false;
}

/* At close, with no other users: free what the queues still hold. */
void gc_close(struct txkv_db *db)
{
    struct record *lists[2] = {db->tomb_queue, db->retired};
    db->tomb_queue = db->retired = NULL;
    for (int i = 0; i < 2; i++)
        while (lists[i]) {
            struct record *nx = lists[i]->gc_next;
            record_free_now(db, lists[i]);
            lists[i] = nx;
        }
}
