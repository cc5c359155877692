/*
 * orphan.c - a thread that exits with a transaction open leaves it
 * open: the transaction pins versions until someone ends it or txkv_close
 * runs, and it does not wedge the GC (txkv(3) CAVEATS, src/txn/README).
 *
 * Proves:
 *  1. A thread begins a SNAPSHOT transaction, reads a key, opens a cursor
 *     and steps it, and returns without ending either.  After the join:
 *     the thread's RCU registration is gone (registered once, unregistered
 *     once); the transaction is still active; overwrites of every key are
 *     all kept (it pins them); RCU grace periods still complete (a second
 *     database's GC frees its old versions: gc_freed reaches its target);
 *     the main thread can go on with the orphan's cursor and read the
 *     orphan's snapshot through gets and a new cursor (transactions are not
 *     tied to threads); once the main thread ends it - with txkv_commit in
 *     one run, txkv_abort in another - the GC cuts what it pinned: versions
 *     fall back to about one per key, and no transaction is active.
 *  2. An optimistic orphan with pending writes: they stay invisible to
 *     others, the orphan still reads its own writes from the main thread,
 *     and committing it from the main thread installs them; a second one
 *     whose key was committed meanwhile fails with TXKV_CONFLICT.  A
 *     pessimistic orphan holding an exclusive lock: txkv_locks shows it,
 *     another pessimistic transaction with a 20 ms lock timeout gets
 *     TXKV_LOCK_TIMEOUT (on a put and on a get_for_update), an optimistic
 *     commit gets TXKV_CONFLICT; once the main thread aborts the orphan the
 *     lock table is empty and the key can be written.  The same for a
 *     SERIALIZABLE orphan's range lock (from a cursor) and an insert into it.
 *  3. 16 threads (more than the cores) each exit with a transaction open,
 *     of six kinds (snapshot with an open cursor, optimistic with pending
 *     writes, pessimistic with an X lock, pessimistic SERIALIZABLE with a
 *     range lock, optimistic SERIALIZABLE with a read set, read-committed
 *     read-only); txkv_close with all of them open returns.  Under
 *     --enable-sanitizers=address, LeakSanitizer checks nothing leaks.
 *  4. Short-lived threads (SHORT_THREADS, 8 alive at a time) each run one
 *     transaction to its end and exit: each registers with RCU once and
 *     unregisters once, no transaction is left active, the number of
 *     transaction objects stays within what 8 live threads need (no
 *     growth with the number of threads), the commit and abort counts are
 *     exact, and the GC still frees and bounds versions afterwards.
 *
 * RCU registrations are counted by wrapping liburcu's register/unregister
 * calls (see "Counting RCU registrations" below); only this test's worker
 * threads are counted, so the GC threads and liburcu's call_rcu thread,
 * which register whenever they first need to, cannot disturb the counts.
 *
 * Waiting for the GC polls txkv_stats with sched_yield until a condition
 * holds, failing after DEADLINE_S (tests/gc/gc.c's style: polling for a condition,
 * not sleeping for synchronisation).  No test step depends on timing: the
 * lock timeouts fire against locks that are never released meanwhile.
 * Deterministic: no randomness (TXKV_SEED is printed for the harness only).
 */
#include "config.h"

#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h" /* counts transaction objects (db->txn.txns) in case 4 */
#include "../tap.h"
#include "txkv.h"

#define NKEYS   1000
#define KLEN    8 /* "key 0042" */
#define VLEN    16
#define BATCH   10
#define ROUNDS  10           /* overwrites of every key while an orphan pins them */
#define BOUND   (10 * NKEYS) /* versions with no reader pinning them (tests/gc/gc.c's bound) */
#define PRUNED  (NKEYS + 16) /* after an orphan ends: about one version per key */
#define NORPHAN 16           /* case 3 */
#define WAVE    8            /* case 4: threads alive at a time */

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TXKV_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define TXKV_ASAN 1
#endif

/* TXKV_TSAN comes from rcu.h.  Thread creation is slow under TSan. */
#if defined(TXKV_TSAN)
#define SHORT_THREADS 300 /* about 3 ms a thread under TSan */
#define DEADLINE_S    20.0
#elif defined(TXKV_ASAN) || defined(TXKV_DEBUG)
#define SHORT_THREADS 1000
#define DEADLINE_S    20.0
#else
#define SHORT_THREADS 4000
#define DEADLINE_S    5.0
#endif

/* ---- Counting RCU registrations ----------------------------------------
 * src/rcu.c registers a thread with urcu_memb_register_thread() on its first
 * read-side section and unregisters it from a pthread key destructor at
 * exit.  The test binary defines both functions, so rcu.c's calls (linked
 * into this binary from libtxkv-core) land here; they count and forward to
 * liburcu's own, found with RTLD_NEXT.  `tracked` marks this test's worker
 * threads; thread-local storage is still valid while key destructors run.
 */
static __thread int tracked;
static _Atomic long regs, unregs;
static void (*real_register)(void), (*real_unregister)(void);
static void wrap_init(void);

void urcu_memb_register_thread(void)
{
    if (!real_register) /* called before main(): one thread, no race */
        wrap_init();
    if (tracked)
        atomic_fetch_add(&regs, 1);
    real_register();
}

void urcu_memb_unregister_thread(void)
{
    if (tracked)
        atomic_fetch_add(&unregs, 1);
    real_unregister();
}

static void wrap_init(void)
{
    real_register = (void (*)(void))dlsym(RTLD_NEXT, "urcu_memb_register_thread");
    real_unregister = (void (*)(void))dlsym(RTLD_NEXT, "urcu_memb_unregister_thread");
    if (!real_register || !real_unregister)
        bail_out("cannot find liburcu's register/unregister functions");
}

/* ---- keys, values, batches ------------------------------------------- */

static void make_key(char *k, int i)
{
    char tmp[16];
    snprintf(tmp, sizeof tmp, "key %04d", i % 10000);
    memcpy(k, tmp, KLEN);
}

static void make_val(unsigned char *v, int i, uint64_t g)
{
    uint64_t id = (uint64_t)i;
    memcpy(v, &id, 8);
    memcpy(v + 8, &g, 8);
}

static int val_is(const void *got, size_t len, int i, uint64_t g)
{
    unsigned char v[VLEN];
    make_val(v, i, g);
    return len == VLEN && memcmp(got, v, VLEN) == 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Writes keys [from, to) at gen + 1 in transactions of BATCH keys, each
 * retried while it fails with a retryable code (the GC latches records
 * briefly while it prunes).  0 or the error. */
static int write_keys(txkv_db *d, uint64_t *gen, int from, int to)
{
    for (int i = from; i < to; i += BATCH) {
        int n = to - i < BATCH ? to - i : BATCH, rc = 0;
        for (int tries = 0; tries < 1000; tries++) {
            txkv_txn *t;
            char k[KLEN];
            unsigned char v[VLEN];
            if ((rc = txkv_begin(d, NULL, &t)))
                return rc;
            for (int j = i; j < i + n && !rc; j++) {
                make_key(k, j);
                make_val(v, j, gen[j] + 1);
                rc = txkv_put(t, NULL, k, KLEN, v, VLEN);
            }
            if (rc) {
                txkv_abort(t);
                return rc;
            }
            if (!txkv_is_retryable(rc = txkv_commit(t)))
                break;
        }
        if (rc)
            return rc;
        for (int j = i; j < i + n; j++)
            gen[j]++;
    }
    return 0;
}

static int write_rounds(txkv_db *d, uint64_t *gen, int from, int to, int rounds)
{
    int rc = 0;
    for (int r = 0; r < rounds && !rc; r++)
        rc = write_keys(d, gen, from, to);
    return rc;
}

/* Commits key = val (a string) in a transaction of options o; 0 or the error. */
static int put_str(txkv_db *d, const txkv_txn_options *o, const char *key, const char *val)
{
    txkv_txn *t;
    int rc = txkv_begin(d, o, &t);
    if (rc)
        return rc;
    if ((rc = txkv_put(t, NULL, key, strlen(key), val, strlen(val)))) {
        txkv_abort(t);
        return rc;
    }
    return txkv_commit(t);
}

/* 1 if key reads as val (NULL: absent) in a new transaction of d. */
static int reads_as(txkv_db *d, const char *key, const char *val)
{
    txkv_txn *t;
    const void *v;
    size_t vl;
    if (txkv_begin(d, NULL, &t))
        return 0;
    int rc = txkv_get(t, NULL, key, strlen(key), &v, &vl);
    int good = val ? rc == 0 && vl == strlen(val) && memcmp(v, val, vl) == 0 : rc == TXKV_NOTFOUND;
    txkv_abort(t);
    return good;
}

/* Number of keys in [from, to) whose get in t does not return gen[i]. */
static int wrong_gets(txkv_txn *t, const uint64_t *gen, int from, int to)
{
    int bad = 0;
    for (int i = from; i < to; i++) {
        char k[KLEN];
        const void *v;
        size_t vl;
        make_key(k, i);
        bad += txkv_get(t, NULL, k, KLEN, &v, &vl) != 0 || !val_is(v, vl, i, gen[i]);
    }
    return bad;
}

/* Steps c forward from where it is, expecting keys from .. NKEYS-1 with
 * values gen[]; returns the number of keys seen and counts mismatches. */
static int scan_from(txkv_cursor *c, int rc, int from, const uint64_t *gen, int *bad)
{
    int n = 0;
    for (int i = from; rc == 0; rc = txkv_cursor_next(c), i++, n++) {
        const void *k, *v;
        size_t kl, vl;
        char want[KLEN];
        make_key(want, i);
        if (i >= NKEYS || txkv_cursor_get(c, &k, &kl, &v, &vl) != 0 || kl != KLEN ||
            memcmp(k, want, KLEN) != 0 || !val_is(v, vl, i, gen[i])) {
            (*bad)++;
            break;
        }
    }
    return n;
}

/* ---- waiting for the GC ------------------------------------------------ */

static int poll_stats(txkv_db *d, int (*cond)(const struct txkv_stats *, uint64_t), uint64_t arg,
                      struct txkv_stats *st, double *waited)
{
    double t0 = now_s();
    for (;;) {
        txkv_stats(d, st);
        if (cond(st, arg)) {
            *waited = now_s() - t0;
            return 1;
        }
        if (now_s() - t0 > DEADLINE_S) {
            *waited = now_s() - t0;
            return 0;
        }
        sched_yield();
    }
}

static int versions_below(const struct txkv_stats *st, uint64_t bound)
{
    return st->versions < bound;
}

static int freed_at_least(const struct txkv_stats *st, uint64_t min)
{
    return st->gc_freed >= min;
}

/* Versions made (nmade) beyond what the GC may legitimately leave linked
 * (its sweep runs above 2 x keys + 4096; then every chain is cut to one)
 * must be freed: gc_freed reaching this needs RCU callbacks to run. */
static uint64_t freed_target(uint64_t nmade, uint64_t nkeys)
{
    uint64_t keep = 2 * nkeys + 4096 + nkeys;
    return nmade > keep ? nmade - keep : 0;
}

/* bound: PRUNED after an orphan that pinned more versions than the GC's
 * sweep threshold (2 x keys + 4096) ends: the sweep then cuts every chain
 * back to its newest version (no writer runs meanwhile).  BOUND elsewhere. */
static void expect_versions_bounded(txkv_db *d, uint64_t bound, const char *what)
{
    struct txkv_stats st;
    double waited;
    int held = poll_stats(d, versions_below, bound, &st, &waited);
    ok(held, "%s: versions back below %llu within %.0f s (%llu after %.3f s)", what,
       (unsigned long long)bound, DEADLINE_S, (unsigned long long)st.versions, waited);
    is(st.active_txns, 0, "%s: no active transaction", what);
    is(st.oldest_snapshot_age_us, 0, "%s: oldest_snapshot_age_us is 0", what);
}

/* ---- orphan threads ---------------------------------------------------- */

enum {
    K_SNAPSHOT,    /* get, cursor stepped and left open */
    K_OPT_PENDING, /* optimistic: pending put, put and delete */
    K_PESS_X,      /* pessimistic: X lock on key `key` */
    K_PESS_RANGE,  /* pessimistic SERIALIZABLE: S range lock from a cursor */
    K_OPT_SER,     /* optimistic SERIALIZABLE: reads in the read set, one write */
    K_RC_RDONLY,   /* READ_COMMITTED, TXKV_RDONLY: a get */
    K_NKINDS,
};

struct worker {
    txkv_db *db;
    txkv_ks *ks; /* K_PESS_X in case 3: its own keyspace */
    int kind, key;
    int is_short;           /* case 4: a whole transaction, ended (short_body) */
    const uint64_t *gen;    /* the values the thread's snapshot must see */
    pthread_barrier_t *bar; /* case 3: all alive at once */
    txkv_txn *t;            /* left open */
    txkv_cursor *c;         /* left open (K_SNAPSHOT) */
    uint64_t id;            /* txkv_txn_id */
    int ok;
    char why[160];
};

static void wfail(struct worker *w, const char *what, int rc)
{
    if (w->ok) {
        w->ok = 0;
        snprintf(w->why, sizeof w->why, "%s: %s", what, txkv_strerror(rc));
    }
}

#define WCHECK(w, cond, what, rc)                                                                  \
    do {                                                                                           \
        if (!(cond))                                                                               \
            wfail(w, what, rc);                                                                    \
    } while (0)

/* Begins the transaction of its kind, uses it, and returns with it open. */
static void orphan_body(struct worker *w)
{
    txkv_txn_options o;
    const void *v;
    size_t vl;
    char k[KLEN];
    int rc;

    txkv_txn_options_init(&o);
    o.lock_timeout_us = 5000000; /* none of these waits: fail, don't hang, if one did */
    switch (w->kind) {
    case K_SNAPSHOT:
    case K_OPT_PENDING:
        o.isolation = TXKV_SNAPSHOT;
        o.cc = TXKV_OPTIMISTIC;
        break;
    case K_PESS_X:
        o.cc = TXKV_PESSIMISTIC;
        break;
    case K_PESS_RANGE:
        o.isolation = TXKV_SERIALIZABLE;
        o.cc = TXKV_PESSIMISTIC;
        break;
    case K_OPT_SER:
        o.isolation = TXKV_SERIALIZABLE;
        o.cc = TXKV_OPTIMISTIC;
        break;
    case K_RC_RDONLY:
        o.isolation = TXKV_READ_COMMITTED;
        o.flags = TXKV_RDONLY;
        break;
    }
    rc = txkv_begin(w->db, &o, &w->t);
    WCHECK(w, rc == 0, "begin", rc);
    if (rc)
        return;
    w->id = txkv_txn_id(w->t);

    /* Every kind reads first: the thread registers with RCU here. */
    make_key(k, 0);
    rc = txkv_get(w->t, NULL, k, KLEN, &v, &vl);
    WCHECK(w, rc == 0 && (!w->gen || val_is(v, vl, 0, w->gen[0])), "get of key 0", rc);

    switch (w->kind) {
    case K_SNAPSHOT: {
        const void *ck, *cv;
        size_t ckl, cvl;
        char want[KLEN];
        rc = txkv_cursor_open(w->t, NULL, &w->c);
        WCHECK(w, rc == 0, "cursor_open", rc);
        if (rc)
            break;
        rc = txkv_cursor_seek(w->c, NULL, 0);
        for (int i = 0; i < 3 && rc == 0; i++)
            rc = txkv_cursor_next(w->c);
        WCHECK(w, rc == 0, "cursor seek and three nexts", rc);
        rc = txkv_cursor_get(w->c, &ck, &ckl, &cv, &cvl);
        make_key(want, 3);
        WCHECK(w,
               rc == 0 && ckl == KLEN && memcmp(ck, want, KLEN) == 0 &&
                   (!w->gen || val_is(cv, cvl, 3, w->gen[3])),
               "the cursor is on key 3 with its snapshot value", rc);
        break;
    }
    case K_OPT_PENDING:
        rc = txkv_put(w->t, NULL, "pend-new", 8, "orphan-value", 12);
        WCHECK(w, rc == 0, "put pend-new", rc);
        make_key(k, 1);
        rc = txkv_del(w->t, NULL, k, KLEN);
        WCHECK(w, rc == 0, "del key 1", rc);
        make_key(k, w->key);
        rc = txkv_put(w->t, NULL, k, KLEN, "orphan-2", 8);
        WCHECK(w, rc == 0, "put of its key", rc);
        rc = txkv_get(w->t, NULL, k, KLEN, &v, &vl);
        WCHECK(w, rc == 0 && vl == 8 && memcmp(v, "orphan-2", 8) == 0, "reads its own put", rc);
        make_key(k, 1);
        rc = txkv_get(w->t, NULL, k, KLEN, &v, &vl);
        WCHECK(w, rc == TXKV_NOTFOUND, "reads its own delete", rc);
        break;
    case K_PESS_X:
        make_key(k, w->key);
        rc = txkv_put(w->t, w->ks, k, KLEN, "locked-by-orphan", 16);
        WCHECK(w, rc == 0, "pessimistic put (X lock)", rc);
        break;
    case K_PESS_RANGE: {
        make_key(k, 100);
        rc = txkv_cursor_open(w->t, NULL, &w->c);
        WCHECK(w, rc == 0, "cursor_open", rc);
        if (rc)
            break;
        rc = txkv_cursor_seek(w->c, k, KLEN);
        if (rc == 0)
            rc = txkv_cursor_next(w->c);
        WCHECK(w, rc == 0, "serializable cursor seek and next (range lock)", rc);
        txkv_cursor_close(w->c);
        w->c = NULL;
        break;
    }
    case K_OPT_SER:
        for (int i = 1; i < 5 && rc == 0; i++) {
            make_key(k, i);
            rc = txkv_get(w->t, NULL, k, KLEN, &v, &vl);
        }
        WCHECK(w, rc == 0, "serializable reads", rc);
        make_key(k, 200 + w->key);
        rc = txkv_put(w->t, NULL, k, KLEN, "ser", 3);
        WCHECK(w, rc == 0, "serializable put", rc);
        break;
    case K_RC_RDONLY:
        break;
    }
}

/* ---- case 4's short transactions --------------------------------------- */

static int short_fn(txkv_txn *t, void *arg)
{
    struct worker *w = arg;
    char k[KLEN];
    const void *v;
    size_t vl;
    make_key(k, w->key);
    int rc = w->kind == 1 ? txkv_get_for_update(t, NULL, k, KLEN, &v, &vl)
                          : txkv_get(t, NULL, k, KLEN, &v, &vl);
    if (rc && rc != TXKV_NOTFOUND)
        return rc;
    char val[32];
    int n = snprintf(val, sizeof val, "short-%d", w->kind);
    return txkv_put(t, NULL, k, KLEN, val, (size_t)n);
}

/* kind % 4: 0 optimistic write, 1 pessimistic write, 2 read-only
 * SERIALIZABLE get + cursor step, committed; 3 a write, aborted. */
static void short_body(struct worker *w)
{
    txkv_txn_options o;
    txkv_txn *t;
    txkv_cursor *c;
    const void *v;
    size_t vl;
    char k[KLEN];
    int rc;

    txkv_txn_options_init(&o);
    switch (w->kind) {
    case 0:
    case 1:
        o.cc = w->kind == 0 ? TXKV_OPTIMISTIC : TXKV_PESSIMISTIC;
        rc = txkv_run(w->db, &o, short_fn, w, 0);
        WCHECK(w, rc == 0, "txkv_run", rc);
        break;
    case 2:
        o.isolation = TXKV_SERIALIZABLE;
        o.flags = TXKV_RDONLY;
        if ((rc = txkv_begin(w->db, &o, &t))) {
            wfail(w, "begin", rc);
            break;
        }
        make_key(k, w->key);
        rc = txkv_get(t, NULL, k, KLEN, &v, &vl);
        WCHECK(w, rc == 0 || rc == TXKV_NOTFOUND, "get", rc);
        if ((rc = txkv_cursor_open(t, NULL, &c)) == 0) {
            rc = txkv_cursor_seek(c, k, KLEN);
            WCHECK(w, rc == 0 || rc == TXKV_NOTFOUND, "cursor_seek", rc);
            txkv_cursor_close(c);
        } else {
            wfail(w, "cursor_open", rc);
        }
        rc = txkv_commit(t);
        WCHECK(w, rc == 0, "read-only commit", rc);
        break;
    case 3:
        if ((rc = txkv_begin(w->db, NULL, &t))) {
            wfail(w, "begin", rc);
            break;
        }
        rc = short_fn(t, w);
        WCHECK(w, rc == 0, "get and put", rc);
        txkv_abort(t);
        break;
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    tracked = 1;
    w->ok = 1;
    if (w->bar)
        pthread_barrier_wait(w->bar);
    if (w->is_short)
        short_body(w);
    else
        orphan_body(w);
    return NULL; /* K_*: the transaction (and a K_SNAPSHOT cursor) stay open */
}

/* Runs one orphan worker to its exit. */
static void run_orphan(struct worker *w)
{
    pthread_t th;
    if (pthread_create(&th, NULL, worker_main, w) != 0)
        bail_out("pthread_create failed");
    pthread_join(th, NULL);
    ok(w->ok, "orphan thread (kind %d) did its part and exited%s%s", w->kind, w->ok ? "" : ": ",
       w->ok ? "" : w->why);
}

/* The RCU registrations of tracked threads since the last call: every
 * thread that used txkv registered once and, having exited, unregistered. */
static void expect_registrations(long nthreads, const char *what)
{
    static long last_regs, last_unregs;
    long r = atomic_load(&regs) - last_regs, u = atomic_load(&unregs) - last_unregs;
    last_regs += r;
    last_unregs += u;
    ok(r == nthreads && u == nthreads,
       "%s: %ld thread(s) registered with RCU once each and unregistered at exit "
       "(%ld registrations, %ld unregistrations)",
       what, nthreads, r, u);
}

/* ---- case 1 ------------------------------------------------------------ */

static uint64_t cur_gen[NKEYS]; /* the committed generation of each key */

static txkv_db *open_loaded(void)
{
    txkv_db *d;
    if (txkv_open(NULL, &d) != 0)
        bail_out("txkv_open failed");
    memset(cur_gen, 0, sizeof cur_gen);
    if (write_keys(d, cur_gen, 0, NKEYS) != 0)
        bail_out("loading the keys failed");
    return d;
}

/* RCU grace periods complete while the orphan is open: a second database,
 * with nothing pinning it, frees its overwritten versions (only RCU
 * callbacks count into gc_freed, and RCU is one process-wide domain). */
static void expect_grace_periods(const char *what)
{
    enum { NK2 = 100, R2 = 100 };
    static uint64_t g2[NK2];
    txkv_db *d2;
    struct txkv_stats st;
    double waited;
    if (txkv_open(NULL, &d2) != 0)
        bail_out("txkv_open failed");
    memset(g2, 0, sizeof g2);
    int rc = write_keys(d2, g2, 0, NK2);
    for (int r = 0; r < R2 && !rc; r++)
        rc = write_keys(d2, g2, 0, NK2);
    is(rc, 0, "%s: %d overwrites in a second database", what, NK2 * R2);
    uint64_t target = freed_target((uint64_t)NK2 * (R2 + 1), NK2);
    int held = poll_stats(d2, freed_at_least, target, &st, &waited);
    ok(held,
       "%s: RCU grace periods complete: the second database's gc_freed reaches %llu "
       "within %.0f s (%llu after %.3f s)",
       what, (unsigned long long)target, DEADLINE_S, (unsigned long long)st.gc_freed, waited);
    txkv_close(d2);
}

static void case_snapshot_orphan(int end_with_commit)
{
    const char *what = end_with_commit ? "snapshot orphan, committed" : "snapshot orphan, aborted";
    static uint64_t want[NKEYS];
    struct txkv_stats st;
    txkv_db *d = open_loaded();
    if (!end_with_commit) /* a snapshot at a later generation than the load's */
        if (write_rounds(d, cur_gen, 0, NKEYS, 2) != 0)
            bail_out("overwrites failed");
    memcpy(want, cur_gen, sizeof want);

    struct worker w = {.db = d, .kind = K_SNAPSHOT, .gen = want};
    run_orphan(&w);
    expect_registrations(1, what);
    if (!w.ok || !w.t || !w.c)
        bail_out("the orphan thread failed; nothing else can be checked");
    txkv_stats(d, &st);
    is(st.active_txns, 1, "%s: its transaction is still active after the thread exited", what);

    txkv_stats(d, &st);
    uint64_t v0 = st.versions;
    is(write_rounds(d, cur_gen, 0, NKEYS, ROUNDS), 0, "%s: %d overwrites by the main thread", what,
       ROUNDS * NKEYS);
    txkv_stats(d, &st);
    ok(st.versions >= (uint64_t)(ROUNDS + 1) * NKEYS,
       "%s: every overwrite is kept while it is open (versions %llu -> %llu >= %d)", what,
       (unsigned long long)v0, (unsigned long long)st.versions, (ROUNDS + 1) * NKEYS);
    ok(st.oldest_snapshot_age_us > 0, "%s: oldest_snapshot_age_us %llu > 0", what,
       (unsigned long long)st.oldest_snapshot_age_us);
    if (end_with_commit)
        expect_grace_periods(what);

    /* The main thread carries on with the orphan's cursor, then reads the
     * snapshot through gets and a new cursor. */
    int bad = 0;
    int n = scan_from(w.c, txkv_cursor_next(w.c), 4, want, &bad);
    ok(bad == 0 && n == NKEYS - 4,
       "%s: the orphan's cursor, stepped on by the main thread, returns keys 4..%d with the "
       "snapshot's values (%d keys, %d wrong)",
       what, NKEYS - 1, n, bad);
    is(wrong_gets(w.t, want, 0, NKEYS), 0, "%s: its gets from the main thread see its snapshot",
       what);
    txkv_cursor *c;
    bad = 0;
    n = 0;
    if (txkv_cursor_open(w.t, NULL, &c) == 0) {
        n = scan_from(c, txkv_cursor_seek(c, NULL, 0), 0, want, &bad);
        txkv_cursor_close(c);
    }
    ok(bad == 0 && n == NKEYS, "%s: a new cursor on it sees its snapshot (%d keys, %d wrong)", what,
       n, bad);

    /* End it from the main thread (its cursor is still open). */
    if (end_with_commit)
        is(txkv_commit(w.t), 0, "%s: txkv_commit from the main thread", what);
    else
        txkv_abort(w.t);
    expect_versions_bounded(d, PRUNED, what);
    txkv_txn *t;
    is(txkv_begin(d, NULL, &t), 0, "%s: begin", what);
    is(wrong_gets(t, cur_gen, 0, NKEYS), 0, "%s: a new transaction sees the latest values", what);
    txkv_abort(t);
    txkv_close(d);
}

static void case_snapshot_committed(void)
{
    case_snapshot_orphan(1);
}

static void case_snapshot_aborted(void)
{
    case_snapshot_orphan(0);
}

/* ---- case 2 ------------------------------------------------------------ */

static void case_optimistic_pending(void)
{
    const char *what = "optimistic orphan";
    static uint64_t want[NKEYS];
    txkv_db *d = open_loaded();
    memcpy(want, cur_gen, sizeof want);

    /* One orphan that will commit, one whose key the main thread writes. */
    struct worker w = {.db = d, .kind = K_OPT_PENDING, .key = 2, .gen = want};
    struct worker w2 = {.db = d, .kind = K_OPT_PENDING, .key = 3, .gen = want};
    run_orphan(&w);
    run_orphan(&w2);
    expect_registrations(2, what);
    if (!w.ok || !w2.ok)
        bail_out("an orphan thread failed; nothing else can be checked");

    ok(reads_as(d, "pend-new", NULL), "%s: its pending put is invisible to others", what);
    char k[KLEN + 1] = {0};
    txkv_txn *t;
    is(txkv_begin(d, NULL, &t), 0, "begin a reader");
    is(wrong_gets(t, cur_gen, 0, NKEYS), 0,
       "%s: its pending delete and puts are invisible to others", what);
    txkv_abort(t);

    is(write_rounds(d, cur_gen, 10, NKEYS, ROUNDS), 0,
       "%s: main thread overwrites keys 10..%d %d times", what, NKEYS - 1, ROUNDS);
    make_key(k, 3);
    is(put_str(d, NULL, k, "main-3"), 0, "%s: main thread commits the second orphan's key", what);

    /* The orphan, used from the main thread, reads its own writes and its snapshot. */
    const void *v;
    size_t vl;
    ok(txkv_get(w.t, NULL, "pend-new", 8, &v, &vl) == 0 && vl == 12 &&
           memcmp(v, "orphan-value", 12) == 0,
       "%s: still reads its pending put from the main thread", what);
    make_key(k, 1);
    is(txkv_get(w.t, NULL, k, KLEN, &v, &vl), TXKV_NOTFOUND, "%s: and its pending delete", what);
    make_key(k, 2);
    ok(txkv_get(w.t, NULL, k, KLEN, &v, &vl) == 0 && vl == 8 && memcmp(v, "orphan-2", 8) == 0,
       "%s: and its pending overwrite", what);
    is(wrong_gets(w.t, want, 10, NKEYS), 0, "%s: the other keys read as its snapshot", what);

    is(txkv_commit(w.t), 0, "%s: txkv_commit from the main thread", what);
    ok(reads_as(d, "pend-new", "orphan-value"), "%s: its put is now visible", what);
    make_key(k, 1);
    ok(reads_as(d, k, NULL), "%s: its delete too", what);
    make_key(k, 2);
    ok(reads_as(d, k, "orphan-2"), "%s: and its overwrite", what);
    is(txkv_commit(w2.t), TXKV_CONFLICT,
       "%s: the second orphan, whose key was committed meanwhile, fails with CONFLICT", what);
    make_key(k, 3);
    ok(reads_as(d, k, "main-3"), "%s: the key keeps the main thread's value", what);
    expect_versions_bounded(d, PRUNED, what);
    txkv_close(d);
}

/* How many entries of txkv_locks are held by txn id with mode. */
static int locks_held(txkv_db *d, uint64_t id, int mode, size_t *total)
{
    struct txkv_lock_info li[64];
    size_t n = txkv_locks(d, li, 64);
    int c = 0;
    *total = n;
    for (size_t i = 0; i < n && i < 64; i++)
        c += li[i].txn == id && li[i].mode == mode && li[i].granted;
    return c;
}

static void case_pessimistic(void)
{
    const char *what = "pessimistic orphan";
    txkv_txn_options po, oo;
    txkv_txn *t;
    const void *v;
    size_t vl, total;
    char k[KLEN + 1] = {0};
    struct txkv_stats st0, st;
    txkv_db *d = open_loaded();

    struct worker w = {.db = d, .kind = K_PESS_X, .key = 5, .gen = cur_gen};
    run_orphan(&w);
    expect_registrations(1, what);
    if (!w.ok)
        bail_out("the orphan thread failed; nothing else can be checked");
    is(locks_held(d, w.id, TXKV_LOCK_EXCLUSIVE, &total), 1,
       "%s: txkv_locks shows its X lock after the thread exited (%zu entries)", what, total);

    txkv_stats(d, &st0);
    txkv_txn_options_init(&po);
    po.cc = TXKV_PESSIMISTIC;
    po.lock_timeout_us = 20000;
    make_key(k, 5);
    is(put_str(d, &po, k, "other"), TXKV_LOCK_TIMEOUT,
       "%s: a pessimistic put of its key (20 ms timeout): LOCK_TIMEOUT", what);
    is(txkv_begin(d, &po, &t), 0, "begin");
    is(txkv_get_for_update(t, NULL, k, KLEN, &v, &vl), TXKV_LOCK_TIMEOUT,
       "%s: a get_for_update of its key: LOCK_TIMEOUT", what);
    txkv_abort(t);
    txkv_txn_options_init(&oo);
    oo.cc = TXKV_OPTIMISTIC;
    is(put_str(d, &oo, k, "other"), TXKV_CONFLICT, "%s: an optimistic commit of its key: CONFLICT",
       what);
    make_key(k, 6);
    is(put_str(d, &po, k, "six"), 0, "%s: another key can be locked and written", what);
    txkv_stats(d, &st);
    is(st.aborts_timeout - st0.aborts_timeout, 2, "%s: stats count two lock timeouts", what);

    txkv_abort(w.t);
    is(txkv_locks(d, NULL, 0), 0, "%s: after the main thread aborts it, the lock table is empty",
       what);
    make_key(k, 5);
    is(put_str(d, &po, k, "after"), 0, "%s: its key can now be locked and written", what);
    ok(reads_as(d, k, "after"), "%s: and reads the new value", what);

    /* A SERIALIZABLE orphan's range lock, from a cursor that read keys 100... */
    struct worker wr = {.db = d, .kind = K_PESS_RANGE, .gen = cur_gen};
    run_orphan(&wr);
    expect_registrations(1, "pessimistic range orphan");
    if (!wr.ok)
        bail_out("the orphan thread failed; nothing else can be checked");
    is(locks_held(d, wr.id, TXKV_LOCK_RANGE, &total), 1,
       "range orphan: txkv_locks shows its range lock (%zu entries)", total);
    is(put_str(d, &po, "key 0100x", "insert"), TXKV_LOCK_TIMEOUT,
       "range orphan: a pessimistic insert into its range: LOCK_TIMEOUT");
    txkv_abort(wr.t);
    is(txkv_locks(d, NULL, 0), 0, "range orphan: after the abort, the lock table is empty");
    is(put_str(d, &po, "key 0100x", "insert"), 0, "range orphan: the insert now succeeds");
    expect_versions_bounded(d, PRUNED, what);
    txkv_close(d);
}

/* ---- case 3 ------------------------------------------------------------ */

static void case_close_with_orphans(void)
{
    const char *what = "16 orphans at close";
    struct worker w[NORPHAN];
    pthread_t th[NORPHAN];
    pthread_barrier_t bar;
    txkv_ks *lks;
    size_t total;
    txkv_db *d = open_loaded();

    if (txkv_keyspace(d, "locks", TXKV_CREATE, &lks) != 0)
        bail_out("txkv_keyspace failed");
    pthread_barrier_init(&bar, NULL, NORPHAN);
    for (int i = 0; i < NORPHAN; i++) {
        /* X locks in their own keyspace, away from the range locks' keys. */
        w[i] = (struct worker){.db = d, .kind = i % K_NKINDS, .key = 10 + i, .bar = &bar};
        if (w[i].kind == K_PESS_X)
            w[i].ks = lks;
        if (pthread_create(&th[i], NULL, worker_main, &w[i]) != 0)
            bail_out("pthread_create failed");
    }
    int nok = 0, nx = 0, xheld = 0;
    for (int i = 0; i < NORPHAN; i++) {
        pthread_join(th[i], NULL);
        nok += w[i].ok;
        if (!w[i].ok)
            diag("thread %d (kind %d): %s", i, w[i].kind, w[i].why);
    }
    pthread_barrier_destroy(&bar);
    is(nok, NORPHAN, "%s: every thread began and used its transaction, then exited", what);
    expect_registrations(NORPHAN, what);
    struct txkv_stats st;
    txkv_stats(d, &st);
    is(st.active_txns, NORPHAN, "%s: all %d transactions are still active", what, NORPHAN);
    for (int i = 0; i < NORPHAN; i++)
        if (w[i].kind == K_PESS_X) {
            nx++;
            xheld += locks_held(d, w[i].id, TXKV_LOCK_EXCLUSIVE, &total);
        }
    is(xheld, nx, "%s: the %d pessimistic orphans still hold their X locks", what, nx);
    txkv_close(d);
    ok(1, "%s: txkv_close with them open returned", what);
}

/* ---- case 4 ------------------------------------------------------------ */

static size_t txn_objects(txkv_db *d)
{
    size_t n = 0;
    for (struct txkv_txn *t = atomic_load(&d->txn.txns); t; t = t->all_next)
        n++;
    return n;
}

/* Valgrind puts its preload libraries in the client's LD_PRELOAD. */
static int under_valgrind(void)
{
    const char *p = getenv("LD_PRELOAD");
    return p && strstr(p, "/vgpreload_") != NULL;
}

static void case_short_lived(void)
{
    const char *what = "short-lived threads";
    /* Under Valgrind (make check-valgrind) a thread costs some 35 ms: an
     * eighth of them makes the same point. */
    int nthreads = (int)(SHORT_THREADS * tap_scale()) / (under_valgrind() ? 8 : 1);
    static struct worker w[WAVE];
    pthread_t th[WAVE];
    struct txkv_stats st0, st;
    txkv_db *d = open_loaded();

    size_t objs0 = txn_objects(d);
    txkv_stats(d, &st0);
    int bad = 0, done = 0;
    long want_commits = 0, want_user_aborts = 0, want_writes = 0;
    double t0 = now_s();
    while (done < nthreads) {
        int n = nthreads - done < WAVE ? nthreads - done : WAVE;
        for (int i = 0; i < n; i++) {
            int kind = done + i;
            w[i] = (struct worker){.db = d, .is_short = 1, .kind = kind % 4, .key = kind % 64};
            if (kind % 4 == 3)
                want_user_aborts++;
            else
                want_commits++;
            if (kind % 4 < 2)
                want_writes++;
            if (pthread_create(&th[i], NULL, worker_main, &w[i]) != 0)
                bail_out("pthread_create failed");
        }
        for (int i = 0; i < n; i++) {
            pthread_join(th[i], NULL);
            if (!w[i].ok && bad++ < 5)
                diag("thread %d: %s", done + i, w[i].why);
        }
        done += n;
    }
    double secs = now_s() - t0;
    is(bad, 0, "%s: %d threads each ran one transaction and exited (%.2f s)", what, nthreads, secs);
    expect_registrations(nthreads, what);
    txkv_stats(d, &st);
    is(st.active_txns, 0, "%s: no transaction is left active", what);
    is(st.commits - st0.commits, want_commits, "%s: stats count %ld commits", what, want_commits);
    is(st.aborts_user - st0.aborts_user, want_user_aborts, "%s: and %ld user aborts", what,
       want_user_aborts);
    size_t objs = txn_objects(d);
    ok(objs <= objs0 + WAVE,
       "%s: transaction objects %zu -> %zu: no more than %d live threads need (no growth)", what,
       objs0, objs, WAVE);

    /* The GC still works: overwrite enough to need it, then wait for it. */
    is(write_rounds(d, cur_gen, 0, NKEYS, ROUNDS), 0, "%s: %d more overwrites", what,
       ROUNDS * NKEYS);
    uint64_t made = (uint64_t)NKEYS * (ROUNDS + 1) + (uint64_t)want_writes;
    double waited;
    uint64_t target = freed_target(made, NKEYS);
    int held = poll_stats(d, freed_at_least, target, &st, &waited);
    ok(held, "%s: gc_freed reaches %llu within %.0f s (%llu after %.3f s)", what,
       (unsigned long long)target, DEADLINE_S, (unsigned long long)st.gc_freed, waited);
    expect_versions_bounded(d, BOUND, what);
    txkv_close(d);
}

int main(void)
{
    static const struct {
        void (*fn)(void);
        const char *name;
    } cases[] = {{case_snapshot_committed, "1, snapshot orphan committed"},
                 {case_snapshot_aborted, "1, snapshot orphan aborted"},
                 {case_optimistic_pending, "2, optimistic orphans"},
                 {case_pessimistic, "2, pessimistic orphans"},
                 {case_close_with_orphans, "3, close with 16 orphans"},
                 {case_short_lived, "4, short-lived threads"}};
    wrap_init();
    tap_seed();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double t0 = now_s();
        cases[i].fn();
        diag("case %s: %.2f s", cases[i].name, now_s() - t0);
    }
    return done_testing();
}
