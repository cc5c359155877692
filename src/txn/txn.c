/*
 * txn.c - transaction objects: claim, begin, end, fail, txkv_run, stats.
 *
 * Owns the transaction objects.  They belong to the database, sit on the
 * push-only list g->txns and are reused, never freed before close, so the
 * GC can scan every pin without a lock.  A thread remembers the last object
 * it used (a thread-local hint) and claims it with a CAS on the object's own
 * cache line; nothing on begin, get or a read-only commit writes a cache
 * line that all threads share (the "read path" rule of docs/design.md).
 *
 * Begin pins the transaction (gc_pin_enter: pin, then snapshot; src/gc/gc.c
 * says why that order makes the GC's scan safe).
 *
 * Handles.  Because objects are reused, the caller's txkv_txn * is not the
 * object's address but a handle tagged with the object's generation
 * (base/handle.h); txn_end bumps the generation, so a handle kept after its
 * transaction ended is refused with TXKV_INVALID instead of reaching the
 * transaction that uses the object next.  The check reads one word on the
 * object's private cache line; begin, get and read-only commit still write
 * no line other threads share.
 *
 * A transaction is used by one thread at a time (any thread); nothing here
 * locks against concurrent calls on the same transaction.  txn_enter marks
 * a call in progress: debug builds catch every overlap (a CAS) and abort
 * with a message, release builds refuse most with TXKV_INVALID (src/txn/txn.h).
 */
#include "config.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "txn/txn.h"
#include "wal/wal.h"

static __thread uint64_t tl_dbid;
static __thread struct txkv_txn *tl_hint;

/* ---- arena: key copies that live as long as the transaction ----------- */

void *arena_alloc(struct txkv_txn *t, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    struct arena_chunk *c = t->arena;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 16384 ? n : 16384;
        c = malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->cap = cap;
        c->used = 0;
        c->next = t->arena;
        t->arena = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

const uint8_t *arena_copy(struct txkv_txn *t, const void *p, size_t n)
{
    uint8_t *d = arena_alloc(t, n);
    if (d)
        memcpy(d, p, n);
    return d;
}

static void arena_reset(struct txkv_txn *t)
{
    /* Keep one chunk for the next transaction on this object. */
    struct arena_chunk *c = t->arena;
    while (c && c->next) {
        struct arena_chunk *nx = c->next;
        free(c);
        c = nx;
    }
    if (c && c->cap > 65536) {
        free(c);
        c = NULL;
    }
    if (c)
        c->used = 0;
    t->arena = c;
}

/* ---- handles: one thread at a time, stale handles refused --------------- */

int txn_enter_refused(struct txkv_txn *t, uint64_t seen, uint64_t want, const char *fn)
{
    if ((seen >> 1) != (want >> 1))
        return TXKV_INVALID; /* stale: its transaction ended */
#ifndef NDEBUG
    /* Two threads in calls on one transaction at once: a caller bug the
     * contract forbids ("one thread at a time").  Say so plainly and stop
     * before the transaction's buffers are corrupted. */
    fprintf(stderr,
            "txkv: %s: transaction %p is in a call on another thread at the same time; a "
            "transaction may be used by one thread at a time (txkv(3), CAVEATS)\n",
            fn, (void *)handle_make(t, (uint32_t)(want >> 1)));
    abort();
#else
    (void)t;
    (void)fn;
    return TXKV_INVALID;
#endif
}

/* ---- transaction objects ---------------------------------------------- */

static struct txkv_txn *txn_new(struct txn_global *g)
{
    /* A latch token per transaction object, unique in this database: the
     * objects live until txkv_close, so tokens are never reused (running
     * out would take 2^32 objects at once, far beyond memory). */
    latch_t token = atomic_fetch_add_explicit(&g->next_token, 1, memory_order_relaxed);
    if (token < LATCH_FIRST_TXN)
        return NULL;
    struct txkv_txn *t;
    if (posix_memalign((void **)&t, HANDLE_ALIGN, sizeof *t) != 0)
        return NULL;
    if (!handle_addr_ok(t)) { /* no room for the generation: see base/handle.h */
        free(t);
        return NULL;
    }
    memset(t, 0, sizeof *t);
    atomic_init(&t->state, 0);
    atomic_init(&t->in_use, 1);
    t->g = g;
    gc_pin_register(g->gc, &t->pin);
    lock_owner_init(g->lm, &t->lk, token);
    struct txkv_txn *head = atomic_load(&g->txns);
    do {
        t->all_next = head;
    } while (!atomic_compare_exchange_weak(&g->txns, &head, t));
    return t;
}

static struct txkv_txn *txn_claim(struct txn_global *g)
{
    int zero = 0;
    struct txkv_txn *t = tl_dbid == g->db_id ? tl_hint : NULL;
    if (t && atomic_compare_exchange_strong(&t->in_use, &zero, 1))
        return t;
    for (t = atomic_load_explicit(&g->txns, memory_order_acquire); t; t = t->all_next) {
        zero = 0;
        if (!atomic_load_explicit(&t->in_use, memory_order_relaxed) &&
            atomic_compare_exchange_strong(&t->in_use, &zero, 1))
            break;
    }
    if (!t && !(t = txn_new(g)))
        return NULL;
    tl_dbid = g->db_id;
    tl_hint = t;
    return t;
}

struct txn_opts {
    int isolation, cc;
    unsigned flags;
    uint64_t timeout_us;
};

/* o's choices, the database's defaults for the rest; 0 or TXKV_INVALID. */
static int txn_options(const struct txn_global *g, const txkv_txn_options *o, struct txn_opts *out)
{
    out->isolation = o && o->isolation ? o->isolation : g->isolation;
    out->cc = o && o->cc ? o->cc : g->cc;
    out->flags = o ? o->flags : 0;
    out->timeout_us = o && o->lock_timeout_us ? o->lock_timeout_us : g->lock_timeout_us;
    if (out->isolation < TXKV_READ_COMMITTED || out->isolation > TXKV_SERIALIZABLE ||
        (out->flags & ~(unsigned)TXKV_RDONLY) ||
        (out->cc != TXKV_OPTIMISTIC && out->cc != TXKV_PESSIMISTIC))
        return TXKV_INVALID;
    return 0;
}

static uint64_t next_id(struct txn_global *g)
{
    return atomic_fetch_add_explicit(&g->next_id, 1, memory_order_relaxed) + 1;
}

int txn_begin(struct txn_global *g, const txkv_txn_options *o, struct txkv_txn **txnp)
{
    struct txn_opts opt;
    if (txn_options(g, o, &opt))
        return TXKV_INVALID;
    struct txkv_txn *t = txn_claim(g);
    if (!t)
        return TXKV_NOMEM;
    t->isolation = opt.isolation;
    t->cc = opt.cc;
    t->flags = opt.flags;
    t->failed = 0;
    t->nws = t->nrs = t->nranges = t->nsorted = 0;
    t->sorted_valid = false;
    t->wbytes = 0;
    assert(!t->cursors && !t->nsps && !t->nundo && !t->superseded);
    t->lk.timeout_us = opt.timeout_us;
    /* Optimistic transactions get an id only when asked (txkv_txn_id);
     * pessimistic ones need it now: it is their age for the victim rule. */
    t->lk.id = t->cc == TXKV_PESSIMISTIC ? next_id(g) : 0;
    if (t->wmap)
        memset(t->wmap, 0, t->wmap_cap * sizeof *t->wmap);
    atomic_store_explicit(&t->begin_ns, now_ns(), memory_order_relaxed);
    t->begin_ts = gc_pin_enter(g->gc, &t->pin);
    *txnp = txn_handle(t);
    return 0;
}

void txn_record_empty(struct record *r, struct txkv_ks *ks, void *arg)
{
    (void)arg;
    ks_queue_tombstone(ks, r);
}

static void txn_release_locks(struct txkv_txn *t)
{
    lock_release_all(&t->lk, txn_record_empty, t->g);
}

/* Ends t, which the caller entered: frees what it buffered, makes every
 * handle of it stale and returns the object for reuse. */
static void txn_end(struct txkv_txn *t)
{
    cursor_close_all(t);
    savepoint_clear(t);
    txn_release_locks(t); /* strict 2PL: after the commit is visible */
    for (size_t i = 0; i < t->nws; i++)
        if (t->ws[i].ver)
            version_free_now(t->ws[i].ver);
    while (t->superseded) {
        struct version *nx = atomic_load_explicit(&t->superseded->next, memory_order_relaxed);
        version_free_now(t->superseded);
        t->superseded = nx;
    }
    limbo_flush(&t->limbo); /* what this commit cut off */
    t->nws = t->nrs = t->nranges = 0;
    arena_reset(t);
    if (t->capws > 1024) { /* don't let one huge transaction keep its buffers */
        free(t->ws);
        free(t->wmap);
        free(t->wsorted);
        t->ws = NULL;
        t->wmap = t->wsorted = NULL;
        t->capws = t->wmap_cap = t->capsorted = 0;
    }
    if (t->caprs > 4096) {
        free(t->rs);
        t->rs = NULL;
        t->caprs = 0;
    }
    /* Leave and bump the generation in one store: from here on every handle
     * of this transaction is stale (release: pairs with txn_enter's acquire
     * in whoever holds one). */
    uint64_t s = atomic_load_explicit(&t->state, memory_order_relaxed);
    atomic_store_explicit(&t->state, (uint64_t)handle_gen_next((uint32_t)(s >> 1)) << 1,
                          memory_order_release);
    /* release: the next user of this object sees it clean */
    gc_pin_leave(&t->pin);
    atomic_store_explicit(&t->in_use, 0, memory_order_release);
}

/* Frees a transaction object for good (close; the object is not in use). */
static void txn_destroy(struct txkv_txn *t)
{
    cursor_destroy_all(t);
    free(t->sps);
    free(t->undo);
    lock_owner_fini(&t->lk);
    free(t->ws);
    free(t->wmap);
    free(t->wsorted);
    free(t->rs);
    free(t->ranges);
    wal_rec_free(&t->wal);
    while (t->arena) {
        struct arena_chunk *nx = t->arena->next;
        free(t->arena);
        t->arena = nx;
    }
    free(t);
}

static void count(_Atomic uint64_t *c)
{
    /* Only the thread using the object writes its counters. */
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

/* Aborts t, which the caller entered.  An abort of a read-only
 * transaction is how LMDB-style code ends every read: it is counted as
 * aborts_rdonly, not as a user abort of work. */
static void txn_abort(struct txkv_txn *t)
{
    if (!t->failed)
        count(t->flags & TXKV_RDONLY ? &t->n_rdonly_abort : &t->n_user);
    txn_end(t);
}

void txkv_abort(txkv_txn *h)
{
    struct txkv_txn *t;
    if (txn_enter(h, &t, __func__) == 0) /* NULL or stale: nothing to end */
        txn_abort(t);
}

int txkv_commit(txkv_txn *h)
{
    struct txkv_txn *t;
    int rc = txn_enter(h, &t, __func__);
    if (rc)
        return rc;
    rc = t->failed ? TXKV_ABORTED : txn_commit_writes(t);
    if (rc == 0)
        count(&t->n_commits);
    else if (rc == TXKV_CONFLICT)
        count(&t->n_conflict);
    else if (rc == TXKV_FULL)
        count(&t->n_full);
    struct wal *w = t->g->wal; /* t may be reused once it has ended */
    txn_end(t);
    /* WAL hook: a slice of a checkpoint's walk now and then, once the
     * transaction holds no lock, latch or pin (src/wal/checkpoint.c) */
    if (w)
        wal_ckpt_help(w);
    return rc;
}

int txn_fail(struct txkv_txn *t, int rc)
{
    if (rc == TXKV_CONFLICT)
        count(&t->n_conflict);
    else if (rc == TXKV_FULL)
        count(&t->n_full);
    else if (rc == TXKV_DEADLOCK)
        count(&t->n_deadlock);
    else if (rc == TXKV_LOCK_TIMEOUT)
        count(&t->n_timeout);
    t->failed = rc;
    /* A failed transaction will not commit: let the others have its locks now. */
    txn_release_locks(t);
    return rc;
}

uint64_t txkv_txn_id(txkv_txn *h)
{
    struct txkv_txn *t;
    if (txn_enter(h, &t, __func__))
        return 0;
    /* Ids come from one 64-bit counter per database and are never given
     * twice, so an id in the deadlock history never names a later
     * transaction.  Optimistic transactions get one only when asked: the
     * read path writes no shared line. */
    if (!t->lk.id)
        t->lk.id = next_id(t->g);
    uint64_t id = t->lk.id;
    txn_leave(t);
    return id;
}

/* The code that failed h's transaction, or 0 (also for a stale handle). */
static int txn_failed_code(txkv_txn *h)
{
    struct txkv_txn *t;
    if (txn_enter(h, &t, "txkv_run"))
        return 0;
    int rc = t->failed;
    txn_leave(t);
    return rc;
}

/* ---- txkv_run --------------------------------------------------------- */

int txn_run(struct txn_global *g, const txkv_txn_options *o, int (*fn)(txkv_txn *, void *),
            void *arg, int max_tries)
{
    for (int tries = 1;; tries++) {
        txkv_txn *t;
        int rc = txn_begin(g, o, &t);
        if (rc)
            return rc;
        rc = fn(t, arg);
        if (rc == 0) {
            rc = txkv_commit(t);
        } else {
            /* fn may return the txn's failure code: it is then not a user abort */
            int failed = txn_failed_code(t);
            if (failed)
                rc = failed;
            txkv_abort(t);
        }
        if (!txkv_is_retryable(rc) || (max_tries && tries >= max_tries))
            return rc;
        /* Back off a little more each time so colliding retries spread out. */
        for (int i = 0; i < (tries < 8 ? 1 << tries : 256); i++)
            sched_yield();
    }
}

/* ---- the database's part -------------------------------------------------- */

void txn_global_init(struct txn_global *g, const txkv_options *o, uint64_t db_id)
{
    atomic_init(&g->txns, NULL);
    atomic_init(&g->next_id, 0);
    atomic_init(&g->next_token, LATCH_FIRST_TXN);
    g->db_id = db_id;
    g->isolation = o->isolation;
    g->cc = o->cc;
    g->lock_timeout_us = o->lock_timeout_us;
    g->skip_validation = false;
}

void txn_abort_open(struct txn_global *g)
{
    for (struct txkv_txn *t = atomic_load(&g->txns); t; t = t->all_next)
        if (atomic_load(&t->in_use)) {
            /* its thread is gone or misbehaving: take the call over */
            uint64_t s = atomic_load(&t->state);
            atomic_store(&t->state, s | 1);
            txn_abort(t);
        }
}

void txn_global_fini(struct txn_global *g)
{
    for (struct txkv_txn *t = atomic_load(&g->txns); t;) {
        struct txkv_txn *nx = t->all_next;
        txn_destroy(t);
        t = nx;
    }
    atomic_store(&g->txns, NULL);
}

void txn_stats(struct txn_global *g, struct txkv_stats *st)
{
    uint64_t now = now_ns(), oldest = 0;
    for (struct txkv_txn *t = atomic_load_explicit(&g->txns, memory_order_acquire); t;
         t = t->all_next) {
        st->commits += atomic_load_explicit(&t->n_commits, memory_order_relaxed);
        st->aborts_conflict += atomic_load_explicit(&t->n_conflict, memory_order_relaxed);
        st->aborts_full += atomic_load_explicit(&t->n_full, memory_order_relaxed);
        st->aborts_user += atomic_load_explicit(&t->n_user, memory_order_relaxed);
        st->aborts_deadlock += atomic_load_explicit(&t->n_deadlock, memory_order_relaxed);
        st->aborts_timeout += atomic_load_explicit(&t->n_timeout, memory_order_relaxed);
        st->aborts_rdonly += atomic_load_explicit(&t->n_rdonly_abort, memory_order_relaxed);
        if (atomic_load_explicit(&t->pin.ts, memory_order_acquire)) {
            uint64_t b = atomic_load_explicit(&t->begin_ns, memory_order_relaxed);
            st->active_txns++;
            if (b && now > b && now - b > oldest)
                oldest = now - b;
        }
    }
    st->oldest_snapshot_age_us = oldest / 1000;
}
