/*
 * gc.c - version and record garbage collection.
 *
 * Owns: the GC horizon, the pin list and the GC thread of each database.
 * The queues it works through (tombstones, retired records) belong to the
 * record store (src/record/record.c).  See "Garbage collection" in
 * src/txn/README.
 *
 * Horizon.  Every active reader publishes a pin: a timestamp at or below
 * every timestamp it will read at (gc_pin_enter stores the pin, then loads
 * visible_ts again as the snapshot).  The horizon H is min(visible_ts,
 * every pin), read in that order with seq_cst loads.  A reader that
 * publishes its pin after we scanned its slot loaded its read timestamp
 * after its pin store, hence after our load of visible_ts, so it reads at
 * >= H.  Versions below the newest one with ts <= H are therefore
 * unreachable by every present and future reader except those still
 * inside an RCU section, and go through rcu_defer.
 *
 * Exact pins.  A checkpoint reads at one snapshot S only, for a long time.
 * It pins as above, then raises its pin to S | GC_PIN_EXACT (raising is
 * safe: it reads at S).  The same scan then yields two bounds: young, the
 * minimum over visible_ts and the other pins (every other present or
 * future reader reads at >= young, by the argument above), and old = S.
 * version.c prunes with both: it keeps the newest version <= S and cuts
 * those between it and the newest <= young (V2), so a checkpoint under
 * updates holds one old version per key, not every version written since
 * it began.  A scan that sees the pin before it is raised counts it as an
 * ordinary pin: young <= it, which keeps more, never less.  Any pair from
 * one scan stays safe later (a reader pinned after the scan reads at >=
 * young), but a young of one scan with the old of another is not: the pair
 * is published under a sequence count, and read whole or not at all.
 *
 * Records.  A record whose newest version is a tombstone with ts <= H (or
 * that has no version at all) leaves its indexes: under its latch it is
 * marked dead (if no lock is held or awaited on it), unlinked, and retired
 * with tag = visible_ts.  Transactions may hold pointers to records in
 * their read and write sets outside any RCU section, so a retired record is
 * freed only once every active pin is > tag (every transaction that could
 * have found it has ended), and then after a grace period for readers
 * still in flight.
 *
 * Lock order: gc->mu only guards the thread's sleep; latches are only
 * tried, never waited for, by the GC.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gc/gc.h"

#define GC_PERIOD_MS      10
#define GC_IDLE_PERIOD_MS 50
/* Commits have stopped when visible_ts has not moved for this long: a
 * round or two without a commit is only a hiccup (a committer descheduled,
 * or mapping the log's next window), and a sweep started then would walk
 * every record while commits go on. */
#define GC_IDLE_AFTER_MS 100

void gc_init(struct gc *gc, struct record_store *store, struct ks_set *ks, struct lock_mgr *lm)
{
    atomic_init(&gc->horizon, 1);
    atomic_init(&gc->bounds_seq, 0);
    atomic_init(&gc->bound_young, 1);
    atomic_init(&gc->bound_old, 1);
    atomic_init(&gc->pins, NULL);
    gc->store = store;
    gc->ks = ks;
    gc->lm = lm;
    pthread_mutex_init(&gc->mu, NULL);
    cond_init_monotonic(&gc->cv);
    gc->running = gc->stop = false;
    gc->gens = NULL;
    gc->ngens = gc->capgens = 0;
    gc->promoted = NULL;
    gc->npromoted = gc->cappromoted = 0;
    gc->limbo.b = NULL;
    gc->seen_visible = 0;
    gc->visible_moved = now_ns();
}

void gc_fini(struct gc *gc)
{
    assert(!gc->running);
    /* No transactions and no readers left: free at once. */
    for (size_t i = 0; i < gc->ngens; i++) {
        struct gc_gen *g = &gc->gens[i];
        while (g->recs) {
            struct record *nx = g->recs->gc_next;
            record_free_now(gc->store, g->recs);
            g->recs = nx;
        }
        for (size_t j = 0; j < g->nvers; j++) {
            mem_release(&gc->store->mem, version_bytes(g->vers[j]->vlen));
            version_free_now(g->vers[j]);
        }
        free(g->vers);
    }
    for (size_t j = 0; j < gc->npromoted; j++) {
        mem_release(&gc->store->mem, version_bytes(gc->promoted[j]->vlen));
        version_free_now(gc->promoted[j]);
    }
    free(gc->gens);
    free(gc->promoted);
    pthread_mutex_destroy(&gc->mu);
    pthread_cond_destroy(&gc->cv);
}

void gc_pin_register(struct gc *gc, struct gc_pin *pin)
{
    struct gc_pin *head = atomic_load(&gc->pins);
    do {
        pin->next = head;
    } while (!atomic_compare_exchange_weak(&gc->pins, &head, pin));
}

uint64_t gc_pin_enter(struct gc *gc, struct gc_pin *pin)
{
    struct record_store *s = gc->store;
    /* Pin first, then take the snapshot: see the file comment. */
    atomic_store(&pin->ts, atomic_load(&s->visible_ts));
    return atomic_load(&s->visible_ts);
}

uint64_t gc_pin_enter_exact(struct gc *gc, struct gc_pin *pin)
{
    uint64_t snap = gc_pin_enter(gc, pin);
    atomic_store(&pin->ts, snap | GC_PIN_EXACT);
    return snap;
}

/* The smallest active pin, at most `below` (UINT64_MAX: no bound). */
static uint64_t min_pin(struct gc *gc, uint64_t below)
{
    uint64_t m = below;
    for (struct gc_pin *p = atomic_load(&gc->pins); p; p = p->next) {
        uint64_t ts = atomic_load(&p->ts) & ~GC_PIN_EXACT;
        if (ts && ts < m)
            m = ts;
    }
    return m;
}

/* Publishes b unless another writer is at it, b is what is there, or b is
 * older (an older pair is still safe, only less use). */
static void publish_bounds(struct gc *gc, struct prune_bounds b)
{
    uint32_t s = atomic_load_explicit(&gc->bounds_seq, memory_order_relaxed);
    uint64_t young = atomic_load_explicit(&gc->bound_young, memory_order_relaxed);
    uint64_t old = atomic_load_explicit(&gc->bound_old, memory_order_relaxed);
    /* unchanged: no write to the line every commit reads */
    if ((s & 1) || b.young < young || (b.young == young && b.old == old) ||
        !atomic_compare_exchange_strong(&gc->bounds_seq, &s, s + 1))
        return;
    /* release: a reader that sees either new bound (acquire) sees the odd
     * count after it; no fences (ThreadSanitizer does not model them) */
    atomic_store_explicit(&gc->bound_young, b.young, memory_order_release);
    atomic_store_explicit(&gc->bound_old, b.old, memory_order_release);
    atomic_store_explicit(&gc->bounds_seq, s + 2, memory_order_release);
}

/* One scan: the horizon (returned) and the prune bounds (*b). */
static uint64_t scan_pins(struct gc *gc, struct prune_bounds *b)
{
    uint64_t young = atomic_load(&gc->store->visible_ts), old = UINT64_MAX;
    for (struct gc_pin *p = atomic_load(&gc->pins); p; p = p->next) {
        uint64_t raw = atomic_load(&p->ts), ts = raw & ~GC_PIN_EXACT;
        if (!ts)
            continue;
        if (!(raw & GC_PIN_EXACT) || ts >= old) {
            young = ts < young ? ts : young;
        } else { /* one exact pin is `old`: the one it displaces is ordinary */
            if (old < young)
                young = old;
            old = ts;
        }
    }
    b->young = young;
    b->old = old < young ? old : young;
    return b->old;
}

/* gc_horizon, also giving the scan's prune bounds. */
static uint64_t horizon_update(struct gc *gc, struct prune_bounds *bp)
{
    struct prune_bounds b;
    uint64_t h = scan_pins(gc, &b);
    /* Every reader reads at >= any H ever computed (see the file comment),
     * so keeping the largest is safe and never moves pruning backwards. */
    uint64_t old = atomic_load_explicit(&gc->horizon, memory_order_relaxed);
    while (h > old && !atomic_compare_exchange_weak(&gc->horizon, &old, h))
        ;
    publish_bounds(gc, b);
    *bp = b;
    return h;
}

uint64_t gc_horizon(struct gc *gc)
{
    struct prune_bounds b;
    return horizon_update(gc, &b);
}

enum gc_outcome { GC_KEEP, GC_REMOVED, GC_REVIVED };

/* Takes r out of ks's indexes if its newest version is an old tombstone. */
static enum gc_outcome gc_try_remove(struct gc *gc, struct txkv_ks *ks, struct record *r,
                                     uint64_t h)
{
    if (!latch_try(r, LATCH_GC))
        return GC_KEEP;
    struct version *v = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (v && !v->tomb) { /* written again since: nothing to do */
        latch_release(r);
        return GC_REVIVED;
    }
    if (v && v->ts > h) { /* some snapshot may still see the older value */
        latch_release(r);
        return GC_KEEP;
    }
    /* A record with pessimistic locks or waiters stays. */
    bool dead = lock_mark_dead_if_free(gc->lm, r);
    latch_release(r);
    if (!dead)
        return GC_KEEP;
    rcu_read_enter();
    ks_unlink(ks, r);
    rcu_read_leave();
    atomic_fetch_sub_explicit(&ks->nrecords, 1, memory_order_relaxed);
    return GC_REMOVED;
}

static void gc_process_tombstones(struct gc *gc, struct txkv_ks *ks, struct record *list,
                                  uint64_t h)
{
    struct record *keep = NULL;
    while (list) {
        struct record *r = list;
        list = r->gc_next;
        switch (gc_try_remove(gc, ks, r, h)) {
        case GC_KEEP:
            r->gc_next = keep;
            keep = r;
            break;
        case GC_REMOVED:
            record_retire(gc->store, r);
            break;
        case GC_REVIVED:
            ks_unqueue(ks, r);
            break;
        }
    }
    ks_requeue_tombstones(ks, keep);
}

/* Frees generation g through the limbo (a grace period still applies:
 * readers that found a record just before it left the indexes). */
static void gen_free(struct gc *gc, struct gc_gen *g)
{
    while (g->recs) {
        struct record *nx = g->recs->gc_next;
        limbo_add_record(&gc->limbo, gc->store, g->recs);
        g->recs = nx;
    }
    for (size_t i = 0; i < g->nvers; i++)
        limbo_add_version(&gc->limbo, gc->store, g->vers[i]);
    free(g->vers);
    g->vers = NULL;
    g->nvers = 0;
}

/*
 * Takes the records retired since the last round and the versions promoted
 * since, as one generation tagged with visible_ts as of now: everything in
 * it was retired before that load, so a transaction that could have found
 * it pinned at or below tag.  Frees the generations whose tag is below
 * every active pin (every such transaction has ended).
 */
static bool gc_process_retired(struct gc *gc)
{
    struct record *recs = record_take_retired(gc->store);
    bool work = recs || gc->npromoted;
    if (work) {
        if (VEC_RESERVE(gc->gens, gc->capgens, gc->ngens + 1, 8)) {
            record_requeue_retired(gc->store, recs); /* try again next round */
        } else {
            struct gc_gen *g = &gc->gens[gc->ngens++];
            g->tag = atomic_load(&gc->store->visible_ts);
            g->recs = recs;
            g->vers = gc->promoted;
            g->nvers = gc->npromoted;
            gc->promoted = NULL;
            gc->npromoted = gc->cappromoted = 0;
        }
    }
    uint64_t m = min_pin(gc, UINT64_MAX);
    size_t done = 0;
    while (done < gc->ngens && gc->gens[done].tag < m)
        gen_free(gc, &gc->gens[done++]);
    if (done) {
        memmove(gc->gens, gc->gens + done, (gc->ngens - done) * sizeof *gc->gens);
        gc->ngens -= done;
    }
    return work;
}

struct sweep {
    struct gc *gc;
    struct prune_bounds b;
};

/* Prunes r's chain and moves an out-of-line newest version back inline. */
static void sweep_one(struct record *r, void *arg)
{
    struct sweep *sw = arg;
    struct gc *gc = sw->gc;
    struct version *v = atomic_load_explicit(&r->head, memory_order_acquire);
    if (!v || (v->inl && !atomic_load_explicit(&v->next, memory_order_acquire)))
        return;
    /* room to keep a promoted version, reserved before we promote */
    bool room = !VEC_RESERVE(gc->promoted, gc->cappromoted, gc->npromoted + 1, 64);
    if (latch_try(r, LATCH_GC)) {
        version_prune(gc->store, r, sw->b, &gc->limbo);
        struct version *old = room ? version_promote(gc->store, r) : NULL;
        if (old)
            gc->promoted[gc->npromoted++] = old;
        latch_release(r);
    }
}

/* Prunes every chain and promotes out-of-line newest versions: after long
 * snapshots end, versions they pinned on keys nobody writes again would
 * otherwise stay, and after updates half the keys keep their newest version
 * out of line (a second miss and a second allocation). */
static void gc_sweep(struct gc *gc, struct prune_bounds b)
{
    struct sweep sw = {gc, b};
    for (struct txkv_ks *ks = ks_first(gc->ks); ks; ks = ks->next)
        ks_for_each_record(ks, sweep_one, &sw);
}

/*
 * Keeps each hash table sized to its population: the table never resizes by
 * itself (src/index/hash.c says why).  hash_maintain is O(1) unless the
 * load left its range, then resizes in O(n), amortised over n/2 inserts.
 */
static void gc_maintain_hashes(struct gc *gc)
{
    for (struct txkv_ks *ks = ks_first(gc->ks); ks; ks = ks->next) {
        int64_t n = atomic_load_explicit(&ks->nrecords, memory_order_relaxed);
        if (ks->hash)
            hash_maintain(ks->hash, n > 0 ? (size_t)n : 0);
    }
}

/* One round of the GC thread; returns true if it found nothing to do. */
static bool gc_round(struct gc *gc, uint64_t *swept_at)
{
    struct record_store *s = gc->store;
    struct prune_bounds b;
    uint64_t h = horizon_update(gc, &b);
    bool work = false;
    gc_maintain_hashes(gc);
    for (struct txkv_ks *ks = ks_first(gc->ks); ks; ks = ks->next) {
        struct record *tombs = ks_take_tombstones(ks);
        if (tombs)
            gc_process_tombstones(gc, ks, tombs, h);
        work |= tombs != NULL;
    }
    /* after the tombstones: what they retired may go in this round */
    work |= gc_process_retired(gc);
    int64_t nv = atomic_load_explicit(&s->nversions, memory_order_relaxed);
    int64_t nk = atomic_load_explicit(&s->nkeys, memory_order_relaxed);
    int64_t nool = atomic_load_explicit(&s->nooline, memory_order_relaxed);
    /* A sweep walks every record: worth it when old versions pile up, or,
     * once commits have stopped (visible_ts unchanged for GC_IDLE_AFTER_MS), to move
     * out-of-line newest versions back inline.  Not while commits run: under
     * updates the committers themselves keep about half the keys inline,
     * and sweeping 1M records every round cost a core (update throughput
     * fell 3x in kv-bench). */
    uint64_t vis = atomic_load_explicit(&s->visible_ts, memory_order_relaxed);
    uint64_t now = now_ns();
    if (vis != gc->seen_visible) {
        gc->seen_visible = vis;
        gc->visible_moved = now;
    }
    bool idle = now - gc->visible_moved >= GC_IDLE_AFTER_MS * 1000000ull;
    /* A pile-up: more versions than a key holds under updates (a commit
     * prunes before it installs: the newest and the one before), and,
     * while an exact pin holds old below young (a checkpoint), than a key
     * the walk has not reached holds: also the version the snapshot sees,
     * which no sweep can cut.  Counting that one started a sweep of every
     * record halfway through a checkpoint under 2-thread ycsb-a: 1.0 s of
     * a third runnable thread on 2 cores while the walk ran (wal-bench
     * checkpoint, 2026-12-03). */
    int64_t held = b.old < b.young ? 3 : 2;
    bool sweep = nv > held * nk + 4096 || (idle && !work && nool > 0);
    /* Again only once the horizon (old) has moved: while a checkpoint's
     * exact pin holds it, young moves on, but what a sweep could cut
     * then, commits cut as they write (sweeping each time young moved
     * walked every record every round). */
    if (sweep && b.old > *swept_at) {
        gc_sweep(gc, b);
        *swept_at = b.old;
    }
    limbo_flush(&gc->limbo);
    return !work && b.old == *swept_at;
}

static void *gc_main(void *arg)
{
    struct gc *gc = arg;
    uint64_t swept_at = 0;
    bool idle = false;
    pthread_mutex_lock(&gc->mu);
    while (!gc->stop) {
        struct timespec deadline;
        deadline_after(&deadline, (idle ? GC_IDLE_PERIOD_MS : GC_PERIOD_MS) * 1000u);
        pthread_cond_timedwait(&gc->cv, &gc->mu, &deadline);
        if (gc->stop)
            break;
        pthread_mutex_unlock(&gc->mu);
        idle = gc_round(gc, &swept_at);
        pthread_mutex_lock(&gc->mu);
    }
    pthread_mutex_unlock(&gc->mu);
    return NULL;
}

int gc_start(struct gc *gc)
{
    if (pthread_create(&gc->thread, NULL, gc_main, gc) != 0)
        return TXKV_NOMEM;
    gc->running = true;
    return 0;
}

void gc_stop(struct gc *gc)
{
    if (!gc->running)
        return;
    pthread_mutex_lock(&gc->mu);
    gc->stop = true;
    pthread_cond_signal(&gc->cv);
    pthread_mutex_unlock(&gc->mu);
    pthread_join(gc->thread, NULL);
    gc->running = false;
}
