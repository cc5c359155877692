/*
 * getmany.c - txkv_get_many against n txkv_get calls and a model.
 *
 * Proves:
 *  - model: at every isolation level, both schemes, on a keyspace with
 *    both indexes, a hash-only one and a B+tree-only one, batches of 0 to
 *    40 random keys (present, absent, deleted, the transaction's own puts
 *    and deletes, duplicates in one batch, across the 16-key chunks) read
 *    exactly what txkv_get reads key by key, and what the model says: own
 *    writes first, then the snapshot (SNAPSHOT, optimistic SERIALIZABLE) or
 *    the newest commit (READ_COMMITTED, pessimistic SERIALIZABLE), a
 *    commit made after begin included; with NULL vals/vlens too; every
 *    value pointer still holds its bytes when the transaction ends;
 *  - arguments: NULL arrays, bad keys (NULL, 0 and 65536 bytes) and a
 *    keyspace of another database are TXKV_INVALID, mark the bad keys,
 *    read nothing (no read-set entry: the transaction commits over a
 *    concurrent write) and leave the transaction usable; n == 0 is 0;
 *    stale and NULL handles are TXKV_INVALID; a failed transaction answers
 *    TXKV_ABORTED in every rcs[];
 *  - SERIALIZABLE: optimistic get_many records its reads (a key read, and
 *    an absent key read, then written by another transaction: commit
 *    fails with TXKV_CONFLICT; a key not read: commit succeeds; read-only
 *    transactions record nothing); pessimistic get_many takes S locks
 *    (another transaction's commit over them fails; a lock held by another
 *    makes get_many fail with TXKV_LOCK_TIMEOUT at that key, rcs[] from it
 *    on holding the error);
 *  - concurrency: 4 threads (more than the 2 cores here) move money
 *    between accounts while readers sum every account with get_many at
 *    SNAPSHOT and SERIALIZABLE: every sum is the starting total.
 * Deterministic by TXKV_SEED (the concurrent part by its interleaving too).
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tap.h"
#include "txkv.h"

#define NKEYS   48 /* the universe; keys >= NLIVE are never written */
#define NLIVE   40
#define MAXB    40
#define MAXPTR  8192
#define NROUNDS 12

static txkv_db *db;
static uint64_t rng;
static char keys[NKEYS][12];
static size_t klen_of[NKEYS];

static int pess_ok = 1; /* this build provides TXKV_PESSIMISTIC */

static unsigned rnd(unsigned n)
{
    return (unsigned)(tap_rand(&rng) % n);
}

static size_t fmt_val(char *buf, int v)
{
    return (size_t)snprintf(buf, 80, "%d:%.*s", v, v % 60,
                            "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefgh");
}

static int same_val(const void *p, size_t len, int v)
{
    char buf[80];
    size_t n = fmt_val(buf, v);
    return len == n && memcmp(p, buf, n) == 0;
}

static txkv_txn *begin_(int iso, int cc, unsigned flags, uint64_t timeout_us)
{
    txkv_txn_options o;
    txkv_txn *t = NULL;
    txkv_txn_options_init(&o);
    o.isolation = iso;
    o.cc = cc;
    o.flags = flags;
    o.lock_timeout_us = timeout_us;
    int rc = txkv_begin(db, &o, &t);
    if (rc == TXKV_NOTSUP && cc == TXKV_PESSIMISTIC)
        return NULL;
    if (rc)
        bail_out("txkv_begin failed");
    return t;
}

/* Commits key i = v (v < 0: a delete) in a transaction of its own. */
static int put1(txkv_ks *ks, int i, int v)
{
    txkv_txn *t = begin_(TXKV_SNAPSHOT, TXKV_OPTIMISTIC, 0, 0);
    char buf[80];
    int rc = v < 0 ? txkv_del(t, ks, keys[i], klen_of[i])
                   : txkv_put(t, ks, keys[i], klen_of[i], buf, fmt_val(buf, v));
    if (rc) {
        txkv_abort(t);
        return rc;
    }
    return txkv_commit(t);
}

/* ---- the model test -------------------------------------------------------- */

/* committed state: value or -1 (absent or deleted) */
static int snap[NKEYS], now[NKEYS];
static int own[NKEYS]; /* -2 untouched, -1 deleted, else value */
static int nextval = 1;

static struct {
    const void *p;
    size_t len;
    int val;
} ptrs[MAXPTR];
static int nptrs;

static int bad_many, bad_model, bad_null, bad_ptr;

static void keep_ptr(const void *p, size_t len, int val)
{
    if (nptrs < MAXPTR) {
        ptrs[nptrs].p = p;
        ptrs[nptrs].len = len;
        ptrs[nptrs++].val = val;
    }
}

/* What key i must read as in a transaction at (iso, cc). */
static int expect(int i, int iso, int cc)
{
    if (own[i] != -2)
        return own[i];
    if (iso == TXKV_READ_COMMITTED || (iso == TXKV_SERIALIZABLE && cc == TXKV_PESSIMISTIC))
        return now[i];
    return snap[i];
}

/* One batch of n random keys: get_many against txkv_get and the model. */
static void check_batch(txkv_txn *t, txkv_ks *ks, int iso, int cc, size_t n)
{
    const void *kp[MAXB], *vals[MAXB], *gv;
    size_t kl[MAXB], vlens[MAXB], gl;
    int idx[MAXB], rcs[MAXB];
    for (size_t j = 0; j < n; j++) {
        /* duplicates: half the time reuse an earlier key of the batch */
        idx[j] = j && rnd(4) == 0 ? idx[rnd((unsigned)j)] : (int)rnd(NKEYS);
        kp[j] = keys[idx[j]];
        kl[j] = klen_of[idx[j]];
        rcs[j] = 12345;
    }
    int null_out = rnd(5) == 0;
    int rc = txkv_get_many(t, ks, n, kp, kl, null_out ? NULL : vals, null_out ? NULL : vlens, rcs);
    if (rc) {
        bad_many++;
        diag("get_many of %zu keys: %s", n, txkv_strerror(rc));
        return;
    }
    for (size_t j = 0; j < n; j++) {
        int i = idx[j], want = expect(i, iso, cc);
        int grc = txkv_get(t, ks, keys[i], klen_of[i], &gv, &gl);
        if (grc != TXKV_OK && grc != TXKV_NOTFOUND)
            bail_out("txkv_get failed");
        if (rcs[j] != grc ||
            (grc == 0 && !null_out && (vlens[j] != gl || memcmp(vals[j], gv, gl)))) {
            if (bad_many++ < 5)
                diag("key %d: get_many rc %d, get rc %d", i, rcs[j], grc);
        }
        if ((want < 0) != (rcs[j] == TXKV_NOTFOUND) ||
            (want >= 0 && !null_out && (rcs[j] || !same_val(vals[j], vlens[j], want)))) {
            if (bad_model++ < 5)
                diag("key %d (iso %d cc %d): rc %d, model %d", i, iso, cc, rcs[j], want);
        }
        if (!null_out && rcs[j] == 0)
            keep_ptr(vals[j], vlens[j], want);
        if (null_out && rcs[j] != 0 && rcs[j] != TXKV_NOTFOUND)
            bad_null++;
    }
}

/* One round at (iso, cc) on ks: commits, a transaction, batches, own writes. */
static void model_round(txkv_ks *ks, int iso, int cc)
{
    /* committed changes before the transaction: puts and deletes */
    for (int k = 0; k < 12; k++) {
        int i = (int)rnd(NLIVE), v = rnd(3) == 0 ? -1 : nextval++;
        if (put1(ks, i, v))
            bail_out("setup commit failed");
        snap[i] = now[i] = v;
    }
    txkv_txn *t = begin_(iso, cc, 0, 0);
    if (!t)
        return;
    for (int i = 0; i < NKEYS; i++)
        own[i] = -2;
    nptrs = 0;
    /* a commit after our begin (before we hold any lock): visible to
     * READ_COMMITTED and pessimistic SERIALIZABLE reads, not to snapshots */
    int touched[NKEYS] = {0};
    for (int k = 0; k < 4; k++) {
        int i = (int)rnd(NLIVE), v = rnd(3) == 0 ? -1 : nextval++;
        if (put1(ks, i, v))
            bail_out("concurrent commit failed");
        now[i] = v;
        touched[i] = 1;
    }
    for (int b = 0; b < 8; b++) {
        check_batch(t, ks, iso, cc, rnd(MAXB + 1));
        /* own writes between batches: puts over puts, deletes, re-puts (not
         * over the commit after begin: a pessimistic SNAPSHOT write of such
         * a key fails, first updater wins) */
        for (int k = 0; k < 4; k++) {
            int i = (int)rnd(NLIVE);
            if (touched[i])
                continue;
            char buf[80];
            int rc;
            if (rnd(3) == 0) {
                rc = txkv_del(t, ks, keys[i], klen_of[i]);
                own[i] = -1;
            } else {
                own[i] = nextval++;
                rc = txkv_put(t, ks, keys[i], klen_of[i], buf, fmt_val(buf, own[i]));
            }
            if (rc)
                bail_out("own write failed");
        }
    }
    for (int k = 0; k < nptrs; k++)
        if (!same_val(ptrs[k].p, ptrs[k].len, ptrs[k].val))
            bad_ptr++;
    txkv_abort(t);
    memcpy(snap, now, sizeof snap);
}

static void test_model(void)
{
    static const char *const names[] = {"default", "h", "o"};
    static const unsigned flags[] = {0, TXKV_CREATE | TXKV_HASH, TXKV_CREATE | TXKV_ORDERED};
    static const int isos[] = {TXKV_READ_COMMITTED, TXKV_SNAPSHOT, TXKV_SERIALIZABLE};
    for (int x = 0; x < 3; x++) {
        txkv_ks *ks = NULL;
        if (x && txkv_keyspace(db, names[x], flags[x], &ks))
            bail_out("keyspace");
        for (int i = 0; i < NKEYS; i++)
            snap[i] = now[i] = -1;
        for (int li = 0; li < 3; li++)
            for (int cc = TXKV_OPTIMISTIC; cc <= TXKV_PESSIMISTIC; cc++) {
                bad_many = bad_model = bad_null = bad_ptr = 0;
                txkv_txn *probe = begin_(isos[li], cc, 0, 0);
                if (!probe) {
                    pess_ok = 0;
                    skip(1, "this build has no TXKV_PESSIMISTIC");
                    continue;
                }
                txkv_abort(probe);
                for (int r = 0; r < NROUNDS; r++)
                    model_round(ks, isos[li], cc);
                ok(!bad_many && !bad_model && !bad_null && !bad_ptr,
                   "%s keyspace, isolation %d, %s: get_many = n gets = model "
                   "(mismatches: gets %d, model %d, null-out %d, pointers %d)",
                   names[x], isos[li], cc == TXKV_OPTIMISTIC ? "optimistic" : "pessimistic",
                   bad_many, bad_model, bad_null, bad_ptr);
            }
        /* leave the next keyspace's model alone: this one is not read again */
    }
}

/* ---- arguments ----------------------------------------------------------------- */

static void test_args(void)
{
    const void *kp[3] = {"a", "b", "c"}, *vals[3];
    size_t kl[3] = {1, 1, 1}, vl[3];
    int rcs[3];
    txkv_txn *t = begin_(TXKV_SERIALIZABLE, TXKV_OPTIMISTIC, 0, 0);

    is(txkv_get_many(NULL, NULL, 3, kp, kl, vals, vl, rcs), TXKV_INVALID, "NULL txn: INVALID");
    is(txkv_get_many(t, NULL, 0, NULL, NULL, NULL, NULL, NULL), 0, "n == 0: 0");
    is(txkv_get_many(t, NULL, 3, NULL, kl, vals, vl, rcs), TXKV_INVALID, "NULL keys: INVALID");
    is(txkv_get_many(t, NULL, 3, kp, NULL, vals, vl, rcs), TXKV_INVALID, "NULL klens: INVALID");
    is(txkv_get_many(t, NULL, 3, kp, kl, vals, vl, NULL), TXKV_INVALID, "NULL rcs: INVALID");

    /* bad keys: marked, nothing read (so no read-set entry for keys[0]) */
    static char big[TXKV_MAX_KEY + 1];
    const void *bk[4] = {keys[0], NULL, "c", big};
    size_t bl[4] = {klen_of[0], 1, 0, sizeof big};
    int brc[4] = {7, 7, 7, 7};
    is(txkv_get_many(t, NULL, 4, bk, bl, NULL, NULL, brc), TXKV_INVALID, "bad keys: INVALID");
    ok(brc[0] == 7 && brc[1] == TXKV_INVALID && brc[2] == TXKV_INVALID && brc[3] == TXKV_INVALID,
       "bad keys are marked INVALID, the good one untouched");
    is(put1(NULL, 0, 5), 0, "another transaction writes a key of the bad batch");
    ok(txkv_put(t, NULL, "z", 1, "1", 1) == 0 && txkv_commit(t) == 0,
       "the transaction stays usable and commits: the bad batch read nothing");

    /* a keyspace of another database */
    txkv_db *db2;
    txkv_ks *ks2;
    if (txkv_open(NULL, &db2) || txkv_keyspace(db2, "default", 0, &ks2))
        bail_out("second database");
    t = begin_(TXKV_SNAPSHOT, TXKV_OPTIMISTIC, 0, 0);
    is(txkv_get_many(t, ks2, 3, kp, kl, vals, vl, rcs), TXKV_INVALID,
       "a keyspace of another database: INVALID");
    txkv_abort(t);
    txkv_close(db2);

    /* a stale handle */
    t = begin_(TXKV_SNAPSHOT, TXKV_OPTIMISTIC, 0, 0);
    txkv_txn *stale = t;
    txkv_abort(t);
    is(txkv_get_many(stale, NULL, 3, kp, kl, vals, vl, rcs), TXKV_INVALID, "stale handle: INVALID");
}

/* ---- SERIALIZABLE: reads are recorded, or locked ----------------------------------- */

static void test_serializable(void)
{
    const void *kp[3] = {keys[1], keys[2], keys[NKEYS - 1]}, *vals[3];
    size_t kl[3] = {klen_of[1], klen_of[2], klen_of[NKEYS - 1]}, vl[3];
    int rcs[3];
    txkv_txn *t;

    if (put1(NULL, 1, 100) || put1(NULL, 2, 200))
        bail_out("setup");
    /* a key read, then written by another */
    t = begin_(TXKV_SERIALIZABLE, TXKV_OPTIMISTIC, 0, 0);
    ok(txkv_get_many(t, NULL, 3, kp, kl, vals, vl, rcs) == 0 && rcs[0] == 0 && rcs[1] == 0 &&
           rcs[2] == TXKV_NOTFOUND,
       "optimistic SER: get_many reads two present keys and an absent one");
    is(put1(NULL, 2, 201), 0, "another transaction overwrites a key read");
    is(txkv_put(t, NULL, keys[3], klen_of[3], "x", 1), 0, "the reader writes another key");
    is(txkv_commit(t), TXKV_CONFLICT, "its commit fails: the read was in the read set");

    /* an absent key read, then inserted by another */
    t = begin_(TXKV_SERIALIZABLE, TXKV_OPTIMISTIC, 0, 0);
    ok(txkv_get_many(t, NULL, 3, kp, kl, vals, vl, rcs) == 0 && rcs[2] == TXKV_NOTFOUND,
       "optimistic SER: the absent key reads NOTFOUND");
    is(put1(NULL, NKEYS - 1, 7), 0, "another transaction inserts it");
    ok(txkv_put(t, NULL, keys[3], klen_of[3], "x", 1) == 0 && txkv_commit(t) == TXKV_CONFLICT,
       "the reader's commit fails: the absent read was recorded");
    if (put1(NULL, NKEYS - 1, -1))
        bail_out("cleanup");

    /* a key not read: no conflict */
    t = begin_(TXKV_SERIALIZABLE, TXKV_OPTIMISTIC, 0, 0);
    txkv_get_many(t, NULL, 3, kp, kl, vals, vl, rcs);
    is(put1(NULL, 5, 9), 0, "another transaction writes a key not read");
    ok(txkv_put(t, NULL, keys[3], klen_of[3], "y", 1) == 0 && txkv_commit(t) == 0,
       "the reader commits");

    /* read-only: nothing recorded, never aborts */
    t = begin_(TXKV_SERIALIZABLE, TXKV_OPTIMISTIC, TXKV_RDONLY, 0);
    txkv_get_many(t, NULL, 3, kp, kl, vals, vl, rcs);
    is(put1(NULL, 1, 101), 0, "a key a read-only SER transaction read is overwritten");
    ok(rcs[0] == 0 && same_val(vals[0], vl[0], 100) && txkv_commit(t) == 0,
       "the read-only transaction read its snapshot and commits");

    if (!pess_ok) {
        skip(5, "this build has no TXKV_PESSIMISTIC");
        return;
    }
    /* pessimistic: S locks, in order */
    t = begin_(TXKV_SERIALIZABLE, TXKV_PESSIMISTIC, 0, 0);
    ok(txkv_get_many(t, NULL, 3, kp, kl, vals, vl, rcs) == 0 && rcs[0] == 0 &&
           same_val(vals[0], vl[0], 101) && rcs[2] == TXKV_NOTFOUND,
       "pessimistic SER: get_many reads the newest commits");
    txkv_txn *w = begin_(TXKV_SNAPSHOT, TXKV_OPTIMISTIC, 0, 0);
    ok(txkv_put(w, NULL, keys[2], klen_of[2], "w", 1) == 0 && txkv_commit(w) == TXKV_CONFLICT,
       "an optimistic commit over a key get_many S-locked fails");
    is(txkv_commit(t), 0, "the pessimistic reader commits");

    txkv_txn *x = begin_(TXKV_SERIALIZABLE, TXKV_PESSIMISTIC, 0, 0);
    if (txkv_put(x, NULL, keys[2], klen_of[2], "x", 1))
        bail_out("X lock");
    t = begin_(TXKV_SERIALIZABLE, TXKV_PESSIMISTIC, 0, 1000);
    rcs[0] = rcs[1] = rcs[2] = 77;
    int rc = txkv_get_many(t, NULL, 3, kp, kl, vals, vl, rcs);
    ok(rc == TXKV_LOCK_TIMEOUT && rcs[0] == 0 && rcs[1] == TXKV_LOCK_TIMEOUT &&
           rcs[2] == TXKV_LOCK_TIMEOUT,
       "a key X-locked by another: LOCK_TIMEOUT at that key and after it (%s; %d %d %d)",
       txkv_strerror(rc), rcs[0], rcs[1], rcs[2]);
    rcs[0] = 77;
    ok(txkv_get_many(t, NULL, 3, kp, kl, vals, vl, rcs) == TXKV_ABORTED && rcs[0] == TXKV_ABORTED &&
           rcs[2] == TXKV_ABORTED,
       "the failed transaction answers ABORTED in every rcs[]");
    txkv_abort(t);
    txkv_abort(x);
}

/* ---- concurrency: sums over every account --------------------------------------- */

#define NACC     24
#define NTHREADS 4
#define START    1000

static int bad_sum, bad_rc;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static char acc_key[NACC][8];

static void *worker(void *arg)
{
    uint64_t r = (uint64_t)(uintptr_t)arg * 7919 + 1;
    unsigned id = (unsigned)(uintptr_t)arg;
    const void *kp[NACC], *vals[NACC];
    size_t kl[NACC], vl[NACC];
    int rcs[NACC], local_bad = 0, local_rc = 0;
    for (int i = 0; i < NACC; i++)
        kp[i] = acc_key[i], kl[i] = strlen(acc_key[i]);
    for (int n = 0; n < 600; n++) {
        txkv_txn *t;
        int iso = (n + id) % 2 ? TXKV_SNAPSHOT : TXKV_SERIALIZABLE;
        if (id % 2 == 0) { /* a transfer: read two accounts with get_many, write both */
            t = begin_(iso, TXKV_OPTIMISTIC, 0, 0);
            unsigned a = (unsigned)(tap_rand(&r) % NACC), b = (unsigned)(tap_rand(&r) % NACC);
            if (a == b)
                b = (b + 1) % NACC;
            const void *k2[2] = {kp[a], kp[b]};
            size_t l2[2] = {kl[a], kl[b]};
            int rc = txkv_get_many(t, NULL, 2, k2, l2, vals, vl, rcs);
            if (rc || rcs[0] || rcs[1]) {
                local_rc++;
                txkv_abort(t);
                continue;
            }
            long va = 0, vb = 0;
            memcpy(&va, vals[0], sizeof va);
            memcpy(&vb, vals[1], sizeof vb);
            va -= 3;
            vb += 3;
            if (txkv_put(t, NULL, kp[a], kl[a], &va, sizeof va) ||
                txkv_put(t, NULL, kp[b], kl[b], &vb, sizeof vb)) {
                txkv_abort(t);
                continue;
            }
            rc = txkv_commit(t);
            if (rc && rc != TXKV_CONFLICT)
                local_rc++;
        } else { /* an audit: every account in one get_many */
            t = begin_(iso, TXKV_OPTIMISTIC, n % 3 ? TXKV_RDONLY : 0, 0);
            int rc = txkv_get_many(t, NULL, NACC, kp, kl, vals, vl, rcs);
            long sum = 0;
            for (int i = 0; i < NACC && !rc; i++) {
                long v;
                if (rcs[i]) {
                    rc = rcs[i];
                    break;
                }
                memcpy(&v, vals[i], sizeof v);
                sum += v;
            }
            if (rc)
                local_rc++;
            else if (sum != (long)NACC * START)
                local_bad++;
            rc = txkv_commit(t);
            if (rc && rc != TXKV_CONFLICT)
                local_rc++;
        }
    }
    pthread_mutex_lock(&mu);
    bad_sum += local_bad;
    bad_rc += local_rc;
    pthread_mutex_unlock(&mu);
    return NULL;
}

static void test_concurrent(void)
{
    txkv_txn *t = begin_(TXKV_SNAPSHOT, TXKV_OPTIMISTIC, 0, 0);
    for (int i = 0; i < NACC; i++) {
        long v = START;
        snprintf(acc_key[i], sizeof acc_key[i], "acc%02d", i);
        if (txkv_put(t, NULL, acc_key[i], strlen(acc_key[i]), &v, sizeof v))
            bail_out("accounts");
    }
    if (txkv_commit(t))
        bail_out("accounts commit");
    pthread_t th[NTHREADS];
    for (uintptr_t i = 0; i < NTHREADS; i++)
        if (pthread_create(&th[i], NULL, worker, (void *)i))
            bail_out("pthread_create");
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    ok(bad_sum == 0 && bad_rc == 0,
       "%d threads: every get_many audit sums the starting total (wrong sums %d, errors %d)",
       NTHREADS, bad_sum, bad_rc);
}

int main(void)
{
    rng = tap_seed();
    for (int i = 0; i < NKEYS; i++)
        klen_of[i] = (size_t)snprintf(keys[i], sizeof keys[i], "key%d", i * 7919 % 1000);
    if (txkv_open(NULL, &db))
        bail_out("txkv_open");
    test_model();
    test_args();
    test_serializable();
    test_concurrent();
    txkv_close(db);
    return done_testing();
}
