/*
 * lock.c - the pessimistic lock manager: record locks (S, X, S->X upgrade),
 * key-range locks for SERIALIZABLE scans, FIFO waits with timeouts.
 *
 * Owns: each record's lock queue (record->ls), the database's range locks
 * and waiter list.  Everything here runs under db->lm_mu, one mutex per
 * database (src/txn/README "Pessimistic locking" says why one is enough
 * here and what would replace it).  Waiters sleep on their own condition
 * variable, never spin.
 *
 * Locks live on records.  To lock a key that has no record yet (an insert,
 * or a SERIALIZABLE read of an absent key), the record is created empty; a
 * record with locks is never removed by the GC (gc.c checks plock).
 *
 * Sharing with optimistic commits: record->plock mirrors the lock queue
 * (PLOCK_X bit, shared count) so an optimistic commit can see, without
 * lm_mu, that a pessimistic transaction holds the record, and fail with
 * TXKV_CONFLICT instead of waiting.  The two sides order themselves like
 * Dekker's algorithm: an optimistic committer latches the record (seq_cst
 * CAS) and then loads plock; a locker publishes plock (seq_cst) and then
 * waits until the latch is free.  At least one of them sees the other.
 * Range locks: an optimistic committer latches its records, then checks the
 * range locks under lm_mu; a range locker registers under lm_mu, then waits
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
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"

struct rangelock {
    struct txkv_txn *t;
    struct txkv_ks *ks;
    uint8_t *lo, *hi;      /* NULL: unbounded */
    uint32_t lolen, hilen;
    bool granted;
    struct rangelock *next;     /* db->ranges (granted ones) */
    struct rangelock *t_next;   /* t->rlocks */
};

int lock_init(struct txkv_db *db)
{
    pthread_mutex_init(&db->lm_mu, NULL);
    db->dl_hist = calloc(TXKV_DEADLOCK_HISTORY, sizeof *db->dl_hist);
    db->blk_cap = 16; /* never empty, see lock_blockers */
    db->blk = malloc(db->blk_cap * sizeof *db->blk);
    return db->dl_hist && db->blk ? 0 : TXKV_NOMEM;
}

void lock_fini(struct txkv_db *db)
{
    pthread_mutex_destroy(&db->lm_mu);
    free(db->dl_hist);
    free(db->blk);
}

static bool in_range(const struct rangelock *rl, const struct record *r)
{
    return rl->ks == r->ks && (!rl->lo || key_cmp(r->key, r->klen, rl->lo, rl->lolen) >= 0) &&
           (!rl->hi || key_cmp(r->key, r->klen, rl->hi, rl->hilen) <= 0);
}

static int held_mode(struct txkv_txn *t, struct record *r)
{
    for (struct lockreq *q = r->ls ? r->ls->holders : NULL; q; q = q->next)
        if (q->t == t)
            return q->mode;
    return 0;
}

static bool conflicts(int a, int b)
{
    return a == LOCK_X || b == LOCK_X;
}

/*
 * Who keeps waiter w from being granted.  Fills the database's scratch
 * array (lm_mu held; valid until the next call) and returns it.  Empty: w
 * can be granted now.  If the array cannot grow, the list is cut short:
 * still non-empty, so w keeps waiting rather than being granted wrongly.
 */
struct txkv_txn **lock_blockers(struct txkv_txn *w, size_t *n)
{
    struct txkv_db *db = w->db;
    *n = 0;
#define ADD(x)                                                                                     \
    do {                                                                                           \
        if (*n == db->blk_cap) {                                                                   \
            size_t nc = db->blk_cap ? db->blk_cap * 2 : 16;                                        \
            struct txkv_txn **nb = realloc(db->blk, nc * sizeof *nb);                              \
            if (!nb)                                                                               \
                return db->blk;                                                                    \
            db->blk = nb;                                                                          \
            db->blk_cap = nc;                                                                      \
        }                                                                                          \
        db->blk[(*n)++] = (x);                                                                     \
    } while (0)
    if (w->wait_req) {
        struct lockreq *me = w->wait_req;
        struct record *r = me->rec;
        bool upgrade = held_mode(w, r) == LOCK_S;
        for (struct lockreq *q = r->ls->holders; q; q = q->next)
            if (q->t != w && conflicts(q->mode, me->mode))
                ADD(q->t);
        if (!upgrade)
            for (struct lockreq *q = r->ls->waitq; q && q != me; q = q->next)
                if (q->t != w && conflicts(q->mode, me->mode))
                    ADD(q->t);
        if (me->mode == LOCK_X)
            for (struct rangelock *rl = db->ranges; rl; rl = rl->next)
                if (rl->t != w && in_range(rl, r))
                    ADD(rl->t);
    } else if (w->wait_range) {
        struct rangelock *me = w->wait_range;
        for (struct txkv_txn *t = atomic_load(&db->txns); t; t = t->all_next) {
            if (t == w || !t->nheld)
                continue;
            for (size_t i = 0; i < t->nheld; i++)
                if (t->held[i].mode == LOCK_X && in_range(me, t->held[i].rec)) {
                    ADD(t);
                    break;
                }
        }
    }
#undef ADD
    return db->blk;
}

/* How many transactions are asleep on a lock (tests poll it). */
size_t lock_waiting(struct txkv_db *db)
{
    size_t n = 0;
    pthread_mutex_lock(&db->lm_mu);
    for (struct txkv_txn *w = db->waiters; w; w = w->wait_next)
        n++;
    pthread_mutex_unlock(&db->lm_mu);
    return n;
}

struct record *lock_waited_record(struct txkv_txn *w)
{
    return w->wait_req ? w->wait_req->rec : NULL;
}

static int held_add(struct txkv_txn *t, struct record *r, int mode)
{
    for (size_t i = 0; i < t->nheld; i++)
        if (t->held[i].rec == r) {
            t->held[i].mode = mode;
            return 0;
        }
    if (t->nheld == t->capheld) {
        size_t cap = t->capheld ? t->capheld * 2 : 16;
        struct heldlock *h = realloc(t->held, cap * sizeof *h);
        if (!h)
            return TXKV_NOMEM;
        t->held = h;
        t->capheld = cap;
    }
    t->held[t->nheld].rec = r;
    t->held[t->nheld].mode = mode;
    t->nheld++;
    return 0;
}

/* Wakes every sleeper: each re-checks its own grant rule. */
static void wake_waiters(struct txkv_db *db)
{
    for (struct txkv_txn *w = db->waiters; w; w = w->wait_next)
        pthread_cond_signal(&w->cv);
}

static void waiters_remove(struct txkv_db *db, struct txkv_txn *t)
{
    for (struct txkv_txn **pp = &db->waiters; *pp; pp = &(*pp)->wait_next)
        if (*pp == t) {
            *pp = t->wait_next;
            break;
        }
}

static void deadline_after(struct timespec *ts, uint64_t us)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(us / 1000000);
    ts->tv_nsec += (long)(us % 1000000) * 1000;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void txn_cv_ready(struct txkv_txn *t)
{
    if (!t->cv_ready) {
        pthread_condattr_t a;
        pthread_condattr_init(&a);
        pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
        pthread_cond_init(&t->cv, &a);
        pthread_condattr_destroy(&a);
        t->cv_ready = true;
    }
}

/*
 * Sleeps until t's pending request (wait_req or wait_range) has no
 * blockers.  Runs the deadlock check before the first sleep and whenever
 * woken, so a cycle closed by a later request is found by whoever closes it.
 * lm_mu held.  0, TXKV_DEADLOCK or TXKV_LOCK_TIMEOUT.
 */
static int wait_grant(struct txkv_txn *t)
{
    struct txkv_db *db = t->db;
    struct timespec deadline;
    size_t n;
    bool timed = t->lock_timeout_us != 0;
    int rc = 0;
    if (timed)
        deadline_after(&deadline, t->lock_timeout_us);
    txn_cv_ready(t);
    t->victim = false;
    t->wait_next = db->waiters;
    db->waiters = t;
    for (;;) {
        lock_blockers(t, &n);
        if (!n)
            break;
        if (t->victim || (rc = dl_check(t)) != 0) {
            rc = TXKV_DEADLOCK;
            break;
        }
        int e = timed ? pthread_cond_timedwait(&t->cv, &db->lm_mu, &deadline)
                      : pthread_cond_wait(&t->cv, &db->lm_mu);
        if (t->victim) {
            rc = TXKV_DEADLOCK;
            break;
        }
        if (e == ETIMEDOUT) {
            lock_blockers(t, &n);
            if (n) {
                rc = TXKV_LOCK_TIMEOUT;
                break;
            }
        }
    }
    waiters_remove(db, t);
    return rc;
}

/*
 * Locks key in mode for t, creating its record if needed; *recp is the
 * record.  Waits (sleeping) while the lock is held in a conflicting mode.
 * 0, TXKV_DEADLOCK, TXKV_LOCK_TIMEOUT or TXKV_NOMEM.  On DEADLOCK and
 * LOCK_TIMEOUT the caller fails t; its locks are released when it ends.
 * Called outside any RCU section.
 */
int lock_key(struct txkv_txn *t, struct txkv_ks *ks, const void *key, size_t klen, uint64_t hv,
             int mode, struct record **recp)
{
    struct txkv_db *db = t->db;
    struct record *r;
    bool made;
    int rc;

    for (;;) {
        if ((rc = mem_reserve(db, mem_record_bytes(klen), true)))
            return rc;
        rcu_read_enter();
        rc = ks_insert(ks, key, klen, hv, (uintptr_t)t, &r, &made);
        rcu_read_leave();
        if (!made)
            mem_release(db, mem_record_bytes(klen));
        if (rc)
            return rc;
        if (made) /* in every index now: others may take its latch */
            latch_release(r);
        pthread_mutex_lock(&db->lm_mu);
        /* The GC marks a record dead only when it has no locks; if it beat
         * us to it, the key has a new record to lock. */
        if (!atomic_load(&r->dead))
            break;
        pthread_mutex_unlock(&db->lm_mu);
    }
    /* A record that has (or may get) locks stays out of the GC's reach:
     * plock != 0 from the grant on; the queue entry below keeps the
     * empty record we may have made from being taken before that. */
    int have = held_mode(t, r);
    if (have == LOCK_X || have == mode) {
        pthread_mutex_unlock(&db->lm_mu);
        *recp = r;
        return 0;
    }
    if (!r->ls && !(r->ls = calloc(1, sizeof *r->ls))) {
        pthread_mutex_unlock(&db->lm_mu);
        return TXKV_NOMEM;
    }
    struct lockreq *q = calloc(1, sizeof *q);
    if (!q || held_add(t, r, have) != 0) {
        free(q);
        pthread_mutex_unlock(&db->lm_mu);
        return TXKV_NOMEM;
    }
    q->t = t;
    q->rec = r;
    q->mode = mode;
    struct lockreq **pp = &r->ls->waitq;
    while (*pp)
        pp = &(*pp)->next;
    *pp = q;
    t->wait_req = q;
    rc = wait_grant(t);
    t->wait_req = NULL;
    for (pp = &r->ls->waitq; *pp != q; pp = &(*pp)->next)
        ;
    *pp = q->next;
    if (rc) {
        free(q);
        if (!have) /* drop the placeholder held entry */
            for (size_t i = 0; i < t->nheld; i++)
                if (t->held[i].rec == r) {
                    t->held[i] = t->held[--t->nheld];
                    break;
                }
        wake_waiters(db); /* those queued behind us may go now */
        pthread_mutex_unlock(&db->lm_mu);
        return rc;
    }
    if (have == LOCK_S) /* upgrade: replace our S entry */
        for (struct lockreq **hp = &r->ls->holders; *hp; hp = &(*hp)->next)
            if ((*hp)->t == t) {
                struct lockreq *old = *hp;
                *hp = old->next;
                free(old);
                break;
            }
    q->granted = true;
    q->next = r->ls->holders;
    r->ls->holders = q;
    held_add(t, r, mode); /* cannot fail: the entry exists */
    /* seq_cst: publish before we look at the latch, see the file comment.
     * An upgrade turns our shared count into the X bit in one step: plock
     * must never read 0 in between, or an optimistic commit could install
     * over what we read under the S lock (a lost update the history
     * checker found).  No one else holds X, so the add sets the bit. */
    if (mode == LOCK_X)
        atomic_fetch_add(&r->plock, have == LOCK_S ? PLOCK_X - 1 : PLOCK_X);
    else
        atomic_fetch_add(&r->plock, 1);
    pthread_mutex_unlock(&db->lm_mu);
    lock_wait_unlatched(t, r);
    *recp = r;
    return 0;
}

/* Waits until no optimistic commit is installing on r.  Latches are held
 * for a few microseconds and never across a wait, so spinning is right. */
void lock_wait_unlatched(struct txkv_txn *t, struct record *r)
{
    for (int i = 0;; i++) {
        uintptr_t l = atomic_load(&r->latch);
        if (!l || l == (uintptr_t)t || l == (uintptr_t)t->db)
            return;
        if (i > 64)
            sched_yield();
    }
}

/*
 * Locks the key range [lo, hi] (NULL: unbounded) of ks in shared mode for
 * t: until t ends, no other transaction may write a key in it.  Waits while
 * another transaction holds an exclusive lock on a key in the range.
 */
int lock_range(struct txkv_txn *t, struct txkv_ks *ks, const void *lo, size_t lolen,
               const void *hi, size_t hilen)
{
    struct txkv_db *db = t->db;
    struct rangelock *rl = calloc(1, sizeof *rl + lolen + hilen);
    int rc;
    if (!rl)
        return TXKV_NOMEM;
    rl->t = t;
    rl->ks = ks;
    if (lo) {
        rl->lo = (uint8_t *)(rl + 1);
        memcpy(rl->lo, lo, lolen);
        rl->lolen = (uint32_t)lolen;
    }
    if (hi) {
        rl->hi = (uint8_t *)(rl + 1) + lolen;
        memcpy(rl->hi, hi, hilen);
        rl->hilen = (uint32_t)hilen;
    }
    pthread_mutex_lock(&db->lm_mu);
    t->wait_range = rl;
    rc = wait_grant(t);
    t->wait_range = NULL;
    if (rc) {
        pthread_mutex_unlock(&db->lm_mu);
        free(rl);
        return rc;
    }
    rl->granted = true;
    rl->next = db->ranges;
    db->ranges = rl;
    rl->t_next = t->rlocks;
    t->rlocks = rl;
    atomic_fetch_add(&db->nranges, 1);
    pthread_mutex_unlock(&db->lm_mu);
    return 0;
}

/*
 * For an optimistic commit holding its write set's latches: true if a
 * pessimistic transaction holds a lock it would break (a record lock on a
 * key it writes, or a range lock around one).  Then the commit fails with
 * TXKV_CONFLICT rather than wait.
 */
bool lock_occ_blocked(struct txkv_txn *t)
{
    struct txkv_db *db = t->db;
    /* seq_cst loads after our seq_cst latch CASes: see the file comment */
    for (size_t i = 0; i < t->nws; i++) {
        uint32_t p = atomic_load(&t->ws[i].rec->plock);
        if (t->cc == TXKV_PESSIMISTIC ? (p & ~PLOCK_X) != 0 : p != 0)
            return true;
    }
    if (!atomic_load(&db->nranges))
        return false;
    bool blocked = false;
    pthread_mutex_lock(&db->lm_mu);
    for (struct rangelock *rl = db->ranges; rl && !blocked; rl = rl->next)
        if (rl->t != t)
            for (size_t i = 0; i < t->nws && !blocked; i++)
                blocked = in_range(rl, t->ws[i].rec);
    pthread_mutex_unlock(&db->lm_mu);
    return blocked;
}

/* Releases every lock of t (commit, abort, or chosen as a victim) and wakes
 * the waiters that may now go. */
void lock_release_all(struct txkv_txn *t)
{
    struct txkv_db *db = t->db;
    if (!t->nheld && !t->rlocks)
        return;
    pthread_mutex_lock(&db->lm_mu);
    for (size_t i = 0; i < t->nheld; i++) {
        struct record *r = t->held[i].rec;
        for (struct lockreq **pp = &r->ls->holders; *pp; pp = &(*pp)->next)
            if ((*pp)->t == t) {
                struct lockreq *q = *pp;
                *pp = q->next;
                if (q->mode == LOCK_X)
                    atomic_fetch_and(&r->plock, ~PLOCK_X);
                else
                    atomic_fetch_sub(&r->plock, 1);
                free(q);
                break;
            }
        /* An empty record we created for the lock: let the GC look at it. */
        if (!atomic_load_explicit(&r->head, memory_order_acquire) && !atomic_load(&r->plock))
            gc_queue_tombstone(db, r);
    }
    t->nheld = 0;
    while (t->rlocks) {
        struct rangelock *rl = t->rlocks;
        t->rlocks = rl->t_next;
        for (struct rangelock **pp = &db->ranges; *pp; pp = &(*pp)->next)
            if (*pp == rl) {
                *pp = rl->next;
                break;
            }
        atomic_fetch_sub(&db->nranges, 1);
        free(rl);
    }
    wake_waiters(db);
    pthread_mutex_unlock(&db->lm_mu);
}

static void info_key(unsigned char *dst, size_t *len, const uint8_t *k, size_t klen)
{
    *len = klen;
    memcpy(dst, k, klen < TXKV_DEADLOCK_KEY_MAX ? klen : TXKV_DEADLOCK_KEY_MAX);
}

size_t txkv_locks(txkv_db *db, struct txkv_lock_info *out, size_t max)
{
    size_t n = 0;
    if (!db)
        return 0;
#define EMIT(...)                                                                                  \
    do {                                                                                           \
        if (n < max && out) {                                                                      \
            struct txkv_lock_info *li = &out[n];                                                   \
            memset(li, 0, sizeof *li);                                                             \
            __VA_ARGS__;                                                                           \
        }                                                                                          \
        n++;                                                                                       \
    } while (0)
    pthread_mutex_lock(&db->lm_mu);
    for (struct txkv_txn *t = atomic_load(&db->txns); t; t = t->all_next) {
        for (size_t i = 0; i < t->nheld; i++) {
            struct record *r = t->held[i].rec;
            int mode = held_mode(t, r);
            if (!mode)
                continue; /* the placeholder of a first request still waiting */
            EMIT(li->txn = t->serial; li->mode = mode; li->granted = 1; li->ks = r->ks;
                 info_key(li->key, &li->klen, r->key, r->klen));
        }
        for (struct rangelock *rl = t->rlocks; rl; rl = rl->t_next)
            EMIT(li->txn = t->serial; li->mode = TXKV_LOCK_RANGE; li->granted = 1;
                 li->ks = rl->ks; li->has_lo = rl->lo != NULL; li->has_hi = rl->hi != NULL;
                 if (rl->lo) info_key(li->key, &li->klen, rl->lo, rl->lolen);
                 if (rl->hi) info_key(li->hi, &li->hilen, rl->hi, rl->hilen));
    }
    for (struct txkv_txn *w = db->waiters; w; w = w->wait_next) {
        if (w->wait_req) {
            struct record *r = w->wait_req->rec;
            EMIT(li->txn = w->serial; li->mode = w->wait_req->mode; li->ks = r->ks;
                 info_key(li->key, &li->klen, r->key, r->klen));
        } else if (w->wait_range) {
            struct rangelock *rl = w->wait_range;
            EMIT(li->txn = w->serial; li->mode = TXKV_LOCK_RANGE; li->ks = rl->ks;
                 li->has_lo = rl->lo != NULL; li->has_hi = rl->hi != NULL;
                 if (rl->lo) info_key(li->key, &li->klen, rl->lo, rl->lolen);
                 if (rl->hi) info_key(li->hi, &li->hilen, rl->hi, rl->hilen));
        }
    }
    pthread_mutex_unlock(&db->lm_mu);
#undef EMIT
    return n;
}
