/*
 * lock.c - the pessimistic lock manager: record locks (S, X, S->X upgrade),
 * key-range locks for SERIALIZABLE scans, FIFO waits with timeouts.
 *
 * Owns: each record's lock queue (in lm->lsmap), the database's range locks,
 * owner list and waiter list.  Everything here runs under lm->mu, one mutex
 * per database (src/lock/README says why one is enough here and what would
 * replace it).  Waiters sleep on their own condition variable, never spin.
 *
 * Locks live on records.  To lock a key that has no record yet (an insert,
 * or a SERIALIZABLE read of an absent key), the record is created empty; a
 * record with locks is never removed by the GC (lock_mark_dead_if_free).
 *
 * Sharing with optimistic commits: the record's REC_LOCK_X / REC_LOCK_S
 * flags mirror the lock queue (an X holder, at least one S holder) so an
 * optimistic commit can see, without mu, that a pessimistic transaction
 * holds the record, and fail with TXKV_CONFLICT instead of waiting.  The
 * two sides order themselves like Dekker's algorithm: an optimistic
 * committer latches the record (seq_cst CAS) and then loads the flags; a
 * locker publishes its bit (seq_cst read-modify-write) and then waits
 * until the latch is free.  At least one of them sees the other.
 * Range locks: an optimistic committer latches its records, then checks the
 * range locks under mu; a range locker registers under mu, then waits
 * for the latches of the records in the range before it reads them.
 *
 * Grant rule for a request of transaction T on record r:
 *  - X: no other holder of r; S: no other X holder of r;
 *  - FIFO: no earlier waiter on r with a conflicting mode (an upgrade
 *    S->X by a holder skips the queue: it waits only for other holders);
 *  - X on a key inside a range locked by another transaction: wait;
 *  - a range lock: no other transaction holds X on a key in the range.
 * Locks are held to commit or abort (strict two-phase locking).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lock/lock-int.h"

int lock_mgr_init(struct lock_mgr *lm)
{
    memset(lm, 0, sizeof *lm);
    mutex_init(&lm->mu);
    atomic_init(&lm->nranges, 0);
    lm->dl_hist = calloc(TXKV_DEADLOCK_HISTORY, sizeof *lm->dl_hist);
    lm->blk_cap = 16; /* never empty, see lock_blockers */
    lm->blk = malloc(lm->blk_cap * sizeof *lm->blk);
    return lm->dl_hist && lm->blk ? 0 : TXKV_NOMEM;
}

void lock_mgr_fini(struct lock_mgr *lm)
{
    assert(!lm->waiters && !lm->ranges && !lm->lsn);
    free(lm->lsmap);
    mutex_destroy(&lm->mu);
    free(lm->dl_hist);
    free(lm->blk);
}

void lock_owner_init(struct lock_mgr *lm, struct lock_owner *o, latch_t latch)
{
    memset(o, 0, sizeof *o);
    o->lm = lm;
    o->latch = latch;
    mutex_lock(&lm->mu);
    o->all_next = lm->owners;
    lm->owners = o;
    mutex_unlock(&lm->mu);
}

void lock_owner_fini(struct lock_owner *o)
{
    assert(lock_none_held(o) && !o->wait_req && !o->wait_range);
    if (o->cv_ready)
        pthread_cond_destroy(&o->cv);
    free(o->held);
}

/* ---- the map of lock queues ---------------------------------------------- */

static size_t ls_slot(const struct lock_mgr *lm, const struct record *r)
{
    uint64_t x = (uint64_t)(uintptr_t)r * 0x9e3779b97f4a7c15ull;
    return (size_t)(x >> 32) & (lm->lscap - 1);
}

/* r's lock queue, or NULL.  mu held. */
static struct lockstate *ls_find(const struct lock_mgr *lm, const struct record *r)
{
    if (!lm->lsn)
        return NULL;
    for (size_t i = ls_slot(lm, r);; i = (i + 1) & (lm->lscap - 1)) {
        struct lockstate *ls = lm->lsmap[i];
        if (!ls || ls->rec == r)
            return ls;
    }
}

static void ls_put(struct lock_mgr *lm, struct lockstate *ls)
{
    size_t i = ls_slot(lm, ls->rec);
    while (lm->lsmap[i])
        i = (i + 1) & (lm->lscap - 1);
    lm->lsmap[i] = ls;
}

/* r's lock queue, made if absent; NULL: no memory.  mu held. */
static struct lockstate *ls_get(struct lock_mgr *lm, struct record *r)
{
    struct lockstate *ls = ls_find(lm, r);
    if (ls)
        return ls;
    if ((lm->lsn + 1) * 2 > lm->lscap) {
        size_t cap = lm->lscap ? lm->lscap * 2 : 64, oldcap = lm->lscap;
        struct lockstate **old = lm->lsmap, **m = calloc(cap, sizeof *m);
        if (!m)
            return NULL;
        lm->lsmap = m;
        lm->lscap = cap;
        for (size_t i = 0; i < oldcap; i++)
            if (old[i])
                ls_put(lm, old[i]);
        free(old);
    }
    if (!(ls = calloc(1, sizeof *ls)))
        return NULL;
    ls->rec = r;
    ls_put(lm, ls);
    lm->lsn++;
    return ls;
}

/* Frees r's queue once nobody holds or waits (L2).  mu held.  Deletion
 * with backward shift keeps every probe sequence unbroken. */
static void ls_drop_if_empty(struct lock_mgr *lm, struct record *r)
{
    struct lockstate *ls = ls_find(lm, r);
    if (!ls || ls->holders || ls->waitq)
        return;
    size_t mask = lm->lscap - 1, i = ls_slot(lm, r);
    while (lm->lsmap[i] != ls)
        i = (i + 1) & mask;
    free(ls);
    lm->lsn--;
    for (size_t j = (i + 1) & mask; lm->lsmap[j]; j = (j + 1) & mask) {
        size_t home = ls_slot(lm, lm->lsmap[j]->rec);
        /* move j back to i unless its home lies cyclically in (i, j] */
        if (((j - home) & mask) >= ((j - i) & mask)) {
            lm->lsmap[i] = lm->lsmap[j];
            i = j;
        }
    }
    lm->lsmap[i] = NULL;
}

/* ---- records and ranges -------------------------------------------------- */

static bool in_range(const struct rangelock *rl, const struct txkv_ks *ks, const struct record *r)
{
    return rl->ks == ks && (!rl->lo || key_cmp(r->key, r->klen, rl->lo, rl->lolen) >= 0) &&
           (!rl->hi || key_cmp(r->key, r->klen, rl->hi, rl->hilen) <= 0);
}

static int held_mode(const struct lock_owner *o, const struct record *r)
{
    struct lockstate *ls = ls_find(o->lm, r);
    for (struct lockreq *q = ls ? ls->holders : NULL; q; q = q->next)
        if (q->o == o)
            return q->mode;
    return 0;
}

static bool conflicts(int a, int b)
{
    return a == LOCK_X || b == LOCK_X;
}

/* Appends x to lm's scratch array; false if it could not grow. */
static bool blk_add(struct lock_mgr *lm, size_t *n, struct lock_owner *x)
{
    if (VEC_RESERVE(lm->blk, lm->blk_cap, *n + 1, 16))
        return false;
    lm->blk[(*n)++] = x;
    return true;
}

/* The blockers of a record request: conflicting holders, earlier
 * conflicting waiters (not for an upgrade) and, for X, range lockers. */
static void req_blockers(struct lock_owner *w, size_t *n)
{
    struct lock_mgr *lm = w->lm;
    struct lockreq *me = w->wait_req;
    struct record *r = me->rec;
    bool upgrade = held_mode(w, r) == LOCK_S;
    struct lockstate *ls = ls_find(lm, r);
    for (struct lockreq *q = ls->holders; q; q = q->next)
        if (q->o != w && conflicts(q->mode, me->mode) && !blk_add(lm, n, q->o))
            return;
    if (!upgrade)
        for (struct lockreq *q = ls->waitq; q && q != me; q = q->next)
            if (q->o != w && conflicts(q->mode, me->mode) && !blk_add(lm, n, q->o))
                return;
    if (me->mode == LOCK_X)
        for (struct rangelock *rl = lm->ranges; rl; rl = rl->next)
            if (rl->o != w && in_range(rl, me->ks, r) && !blk_add(lm, n, rl->o))
                return;
}

/* The blockers of a range request: owners with X on a key in the range. */
static void range_blockers(struct lock_owner *w, size_t *n)
{
    struct lock_mgr *lm = w->lm;
    for (struct lock_owner *o = lm->owners; o; o = o->all_next) {
        if (o == w)
            continue;
        for (size_t i = 0; i < o->nheld; i++)
            if (o->held[i].mode == LOCK_X &&
                in_range(w->wait_range, o->held[i].ks, o->held[i].rec)) {
                if (!blk_add(lm, n, o))
                    return;
                break;
            }
    }
}

struct lock_owner **lock_blockers(struct lock_owner *w, size_t *n)
{
    assert(mutex_held(&w->lm->mu));
    *n = 0;
    if (w->wait_req)
        req_blockers(w, n);
    else if (w->wait_range)
        range_blockers(w, n);
    return w->lm->blk;
}

size_t lock_waiting(struct lock_mgr *lm)
{
    size_t n = 0;
    mutex_lock(&lm->mu);
    for (struct lock_owner *w = lm->waiters; w; w = w->wait_next)
        n++;
    mutex_unlock(&lm->mu);
    return n;
}

struct record *lock_waited_record(const struct lock_owner *w)
{
    assert(mutex_held(&w->lm->mu));
    return w->wait_req ? w->wait_req->rec : NULL;
}

/* Records r in o's held list with mode (updating an entry that exists). */
static int held_add(struct lock_owner *o, struct record *r, struct txkv_ks *ks, int mode)
{
    for (size_t i = 0; i < o->nheld; i++)
        if (o->held[i].rec == r) {
            o->held[i].mode = mode;
            return 0;
        }
    if (VEC_RESERVE(o->held, o->capheld, o->nheld + 1, 16))
        return TXKV_NOMEM;
    o->held[o->nheld].rec = r;
    o->held[o->nheld].ks = ks;
    o->held[o->nheld].mode = mode;
    o->nheld++;
    return 0;
}

static void held_remove(struct lock_owner *o, struct record *r)
{
    for (size_t i = 0; i < o->nheld; i++)
        if (o->held[i].rec == r) {
            o->held[i] = o->held[--o->nheld];
            return;
        }
}

/* Wakes every sleeper: each re-checks its own grant rule. */
static void wake_waiters(struct lock_mgr *lm)
{
    for (struct lock_owner *w = lm->waiters; w; w = w->wait_next)
        pthread_cond_signal(&w->cv);
}

static void waiters_remove(struct lock_mgr *lm, struct lock_owner *o)
{
    for (struct lock_owner **pp = &lm->waiters; *pp; pp = &(*pp)->wait_next)
        if (*pp == o) {
            *pp = o->wait_next;
            break;
        }
}

/*
 * Sleeps until o's pending request (wait_req or wait_range) has no
 * blockers.  Runs the deadlock check before the first sleep and whenever
 * woken, so a cycle closed by a later request is found by whoever closes it.
 * mu held.  0, TXKV_DEADLOCK or TXKV_LOCK_TIMEOUT.
 */
static int wait_grant(struct lock_owner *o)
{
    struct lock_mgr *lm = o->lm;
    struct timespec deadline;
    size_t n;
    int rc = 0;
    assert(mutex_held(&lm->mu));
    if (o->timeout_us)
        deadline_after(&deadline, o->timeout_us);
    if (!o->cv_ready) {
        cond_init_monotonic(&o->cv);
        o->cv_ready = true;
    }
    o->victim = false;
    o->wait_next = lm->waiters;
    lm->waiters = o;
    for (;;) {
        lock_blockers(o, &n);
        if (!n)
            break;
        if (o->victim || (rc = dl_check(o)) != 0) {
            rc = TXKV_DEADLOCK;
            break;
        }
        int e = mutex_cond_wait(&lm->mu, &o->cv, o->timeout_us ? &deadline : NULL);
        if (o->victim) {
            rc = TXKV_DEADLOCK;
            break;
        }
        if (e == ETIMEDOUT) {
            lock_blockers(o, &n);
            if (n) {
                rc = TXKV_LOCK_TIMEOUT;
                break;
            }
        }
    }
    waiters_remove(lm, o);
    return rc;
}

/* Resolves key to its live record and takes mu; returns with mu held. */
static int lock_resolve(struct lock_owner *o, const struct kref *k, const struct version *v,
                        struct record **recp)
{
    for (;;) {
        bool made;
        /* exempt from the limit: a lock must be takeable to make room */
        int rc = ks_resolve(k, v, true, recp, &made);
        if (rc)
            return rc;
        mutex_lock(&o->lm->mu);
        /* The GC marks a record dead only when it has no locks; if it beat
         * us to it, the key has a new record to lock. */
        if (!record_dead(*recp)) {
            assert(mutex_held(&o->lm->mu));
            return 0;
        }
        mutex_unlock(&o->lm->mu);
    }
}

/* Does r have a granted S lock?  mu held. */
static bool has_shared_holder(const struct lockstate *ls)
{
    for (const struct lockreq *q = ls ? ls->holders : NULL; q; q = q->next)
        if (q->mode == LOCK_S)
            return true;
    return false;
}

/* Moves granted request q (of o on r, o held `have` before) to the
 * holders and publishes it in r's REC_LOCK_* flags.  mu held. */
static void grant(struct lock_owner *o, struct record *r, struct lockreq *q, int have)
{
    struct lockstate *ls = ls_find(o->lm, r);
    assert(mutex_held(&o->lm->mu) && ls);
    if (have == LOCK_S) /* upgrade: replace our S entry */
        for (struct lockreq **hp = &ls->holders; *hp; hp = &(*hp)->next)
            if ((*hp)->o == o) {
                struct lockreq *old = *hp;
                *hp = old->next;
                free(old);
                break;
            }
    q->granted = true;
    q->next = ls->holders;
    ls->holders = q;
    held_add(o, r, q->ks, q->mode); /* cannot fail: the entry exists */
    /* seq_cst: publish before we look at the latch, see the file comment.
     * An upgrade turns our S bit into the X bit in one step: the flags
     * must never show no lock in between, or an optimistic commit could
     * install over what we read under the S lock (a lost update the
     * history checker found).  We were the only holder (X is granted to
     * nobody else, S to no one but us), so S is set and X clear, and one
     * xor flips both. */
    if (q->mode == LOCK_X && have == LOCK_S)
        atomic_fetch_xor(&r->flags, REC_LOCKED);
    else
        atomic_fetch_or(&r->flags, q->mode == LOCK_X ? REC_LOCK_X : REC_LOCK_S);
}

int lock_key(struct lock_owner *o, const struct kref *k, int mode, const struct version *v,
             struct record **recp)
{
    struct lock_mgr *lm = o->lm;
    struct record *r;
    assert_outside_rcu_section();
    assert(mode == LOCK_S || mode == LOCK_X);
    int rc = lock_resolve(o, k, v, &r);
    if (rc)
        return rc;
    /* A record that has (or may get) locks stays out of the GC's reach:
     * REC_LOCKED from the grant on; the queue entry below keeps the
     * empty record we may have made from being taken before that. */
    int have = held_mode(o, r);
    if (have == LOCK_X || have == mode)
        goto out;
    struct lockreq *q = calloc(1, sizeof *q);
    struct lockstate *ls = q ? ls_get(lm, r) : NULL;
    if (!ls || held_add(o, r, k->ks, have) != 0) {
        free(q);
        ls_drop_if_empty(lm, r);
        rc = TXKV_NOMEM;
        goto out;
    }
    *q = (struct lockreq){.o = o, .rec = r, .ks = k->ks, .mode = mode};
    struct lockreq **pp = &ls->waitq;
    while (*pp)
        pp = &(*pp)->next;
    *pp = q;
    o->wait_req = q;
    rc = wait_grant(o);
    o->wait_req = NULL;
    for (pp = &ls->waitq; *pp != q; pp = &(*pp)->next)
        ;
    *pp = q->next;
    if (rc) {
        free(q);
        if (!have) /* drop the placeholder held entry */
            held_remove(o, r);
        ls_drop_if_empty(lm, r);
        wake_waiters(lm); /* those queued behind us may go now */
        goto out;
    }
    grant(o, r, q, have);
    mutex_unlock(&lm->mu);
    lock_wait_unlatched(o, r);
    *recp = r;
    return 0;
out:
    mutex_unlock(&lm->mu);
    *recp = r;
    return rc;
}

void lock_wait_unlatched(const struct lock_owner *o, struct record *r)
{
    /* Latches are held for a few microseconds and never across a wait. */
    struct spin s = {0};
    for (;;) {
        /* seq_cst: after our seq_cst flags update (Dekker, file comment) */
        latch_t l = atomic_load(&r->latch);
        if (!l || l == o->latch || l == LATCH_GC)
            return;
        spin_wait(&s);
    }
}

static struct rangelock *rangelock_new(struct lock_owner *o, struct txkv_ks *ks,
                                       const struct key_range *kr)
{
    struct rangelock *rl = calloc(1, sizeof *rl + kr->lolen + kr->hilen);
    if (!rl)
        return NULL;
    rl->o = o;
    rl->ks = ks;
    if (kr->lo) {
        rl->lo = (uint8_t *)(rl + 1);
        memcpy(rl->lo, kr->lo, kr->lolen);
        rl->lolen = (uint32_t)kr->lolen;
    }
    if (kr->hi) {
        rl->hi = (uint8_t *)(rl + 1) + kr->lolen;
        memcpy(rl->hi, kr->hi, kr->hilen);
        rl->hilen = (uint32_t)kr->hilen;
    }
    return rl;
}

int lock_range(struct lock_owner *o, struct txkv_ks *ks, const struct key_range *range)
{
    struct lock_mgr *lm = o->lm;
    assert_outside_rcu_section();
    struct rangelock *rl = rangelock_new(o, ks, range);
    if (!rl)
        return TXKV_NOMEM;
    mutex_lock(&lm->mu);
    o->wait_range = rl;
    int rc = wait_grant(o);
    o->wait_range = NULL;
    if (rc) {
        mutex_unlock(&lm->mu);
        free(rl);
        return rc;
    }
    rl->granted = true;
    rl->next = lm->ranges;
    lm->ranges = rl;
    rl->o_next = o->rlocks;
    o->rlocks = rl;
    atomic_fetch_add(&lm->nranges, 1);
    mutex_unlock(&lm->mu);
    return 0;
}

bool lock_ranges_block(struct lock_mgr *lm, const struct lock_owner *o, struct txkv_ks *const *kss,
                       struct record *const *recs, size_t n)
{
    /* seq_cst load after our seq_cst latch CASes: see the file comment */
    if (!atomic_load(&lm->nranges))
        return false;
    bool blocked = false;
    mutex_lock(&lm->mu);
    for (struct rangelock *rl = lm->ranges; rl && !blocked; rl = rl->next)
        if (rl->o != o)
            for (size_t i = 0; i < n && !blocked; i++)
                blocked = in_range(rl, kss[i], recs[i]);
    mutex_unlock(&lm->mu);
    return blocked;
}

/* Takes o's granted request off r's holders and out of r's flags. */
static void unhold(struct lock_owner *o, struct record *r)
{
    struct lockstate *ls = ls_find(o->lm, r);
    for (struct lockreq **pp = ls ? &ls->holders : NULL; pp && *pp; pp = &(*pp)->next)
        if ((*pp)->o == o) {
            struct lockreq *q = *pp;
            *pp = q->next;
            /* The bit goes with the last holder of its mode (X has one). */
            if (q->mode == LOCK_X)
                atomic_fetch_and(&r->flags, (uint8_t)~REC_LOCK_X);
            else if (!has_shared_holder(ls))
                atomic_fetch_and(&r->flags, (uint8_t)~REC_LOCK_S);
            free(q);
            break;
        }
    ls_drop_if_empty(o->lm, r);
}

void lock_release_all(struct lock_owner *o,
                      void (*empty)(struct record *r, struct txkv_ks *ks, void *arg), void *arg)
{
    struct lock_mgr *lm = o->lm;
    if (lock_none_held(o))
        return;
    mutex_lock(&lm->mu);
    for (size_t i = 0; i < o->nheld; i++) {
        struct record *r = o->held[i].rec;
        unhold(o, r);
        /* An empty record made for the lock: let the GC look at it. */
        if (!atomic_load_explicit(&r->head, memory_order_acquire) &&
            !(atomic_load(&r->flags) & REC_LOCKED))
            empty(r, o->held[i].ks, arg);
    }
    o->nheld = 0;
    while (o->rlocks) {
        struct rangelock *rl = o->rlocks;
        o->rlocks = rl->o_next;
        for (struct rangelock **pp = &lm->ranges; *pp; pp = &(*pp)->next)
            if (*pp == rl) {
                *pp = rl->next;
                break;
            }
        atomic_fetch_sub(&lm->nranges, 1);
        free(rl);
    }
    wake_waiters(lm);
    mutex_unlock(&lm->mu);
}

bool lock_mark_dead_if_free(struct lock_mgr *lm, struct record *r)
{
    assert(latch_held(r, LATCH_GC));
    mutex_lock(&lm->mu);
    bool locked = (atomic_load(&r->flags) & REC_LOCKED) || ls_find(lm, r);
    if (!locked)
        /* release: a committer that latches r after us sees dead and re-resolves */
        record_set_dead(r);
    mutex_unlock(&lm->mu);
    return !locked;
}

/* ---- txkv_locks ---------------------------------------------------------- */

static void info_key(unsigned char *dst, size_t *len, const uint8_t *k, size_t klen)
{
    *len = klen;
    memcpy(dst, k, klen < TXKV_DEADLOCK_KEY_MAX ? klen : TXKV_DEADLOCK_KEY_MAX);
}

static void info_record(struct txkv_lock_info *li, const struct lock_owner *o, int mode,
                        int granted, const struct record *r, const struct txkv_ks *ks)
{
    memset(li, 0, sizeof *li);
    li->txn = o->id;
    li->mode = mode;
    li->granted = granted;
    li->ks = (struct txkv_ks *)ks;
    info_key(li->key, &li->klen, r->key, r->klen);
}

static void info_range(struct txkv_lock_info *li, const struct rangelock *rl, int granted)
{
    memset(li, 0, sizeof *li);
    li->txn = rl->o->id;
    li->mode = TXKV_LOCK_RANGE;
    li->granted = granted;
    li->ks = rl->ks;
    li->has_lo = rl->lo != NULL;
    li->has_hi = rl->hi != NULL;
    if (rl->lo)
        info_key(li->key, &li->klen, rl->lo, rl->lolen);
    if (rl->hi)
        info_key(li->hi, &li->hilen, rl->hi, rl->hilen);
}

size_t lock_list(struct lock_mgr *lm, struct txkv_lock_info *out, size_t max)
{
    size_t n = 0;
    if (!out)
        max = 0;
    mutex_lock(&lm->mu);
    for (struct lock_owner *o = lm->owners; o; o = o->all_next) {
        for (size_t i = 0; i < o->nheld; i++) {
            struct record *r = o->held[i].rec;
            int mode = held_mode(o, r);
            if (!mode)
                continue; /* the placeholder of a first request still waiting */
            if (n < max)
                info_record(&out[n], o, mode, 1, r, o->held[i].ks);
            n++;
        }
        for (struct rangelock *rl = o->rlocks; rl; rl = rl->o_next, n++)
            if (n < max)
                info_range(&out[n], rl, 1);
    }
    for (struct lock_owner *w = lm->waiters; w; w = w->wait_next) {
        if (!w->wait_req && !w->wait_range)
            continue;
        if (n < max && w->wait_req)
            info_record(&out[n], w, w->wait_req->mode, 0, w->wait_req->rec, w->wait_req->ks);
        else if (n < max)
            info_range(&out[n], w->wait_range, 0);
        n++;
    }
    mutex_unlock(&lm->mu);
    return n;
}
