/*
 * lock.c - pessimistic locking: deadlock cycles, upgrades, timeouts,
 * FIFO wake-ups, and a mixed optimistic/pessimistic stress with a bank
 * invariant.
 *
 * Threads meet at barriers, and a test that must know a thread is asleep
 * on a lock polls db_test_lock_waiters() (an internal counter), never sleeps.
 * Every pessimistic transaction here has a 10 s lock timeout as a safety
 * net, so a bug shows up as a failure, not a hung test.
 */
#include "config.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "../tap.h"
#include "txkv.h"

#define SAFETY_US 10000000u

static txkv_db *db;

static txkv_txn *pbegin(int iso)
{
    txkv_txn_options o;
    txkv_txn *t;
    txkv_txn_options_init(&o);
    o.isolation = iso;
    o.cc = TXKV_PESSIMISTIC;
    o.lock_timeout_us = SAFETY_US;
    if (txkv_begin(db, &o, &t))
        bail_out("begin");
    return t;
}

static int put_s(txkv_txn *t, const char *k, const char *v)
{
    return txkv_put(t, NULL, k, strlen(k), v, strlen(v));
}

/* ---- cycles of N transactions ------------------------------------------ */

struct cyc {
    int n, i;
    pthread_barrier_t *bar;
    int rc;
    uint64_t id;
    txkv_txn *t;
};

static void *cycle_thread(void *arg)
{
    struct cyc *c = arg;
    char mine[16], next[16];
    snprintf(mine, sizeof mine, "c%d", c->i);
    snprintf(next, sizeof next, "c%d", (c->i + 1) % c->n);
    pthread_barrier_wait(c->bar); /* begin in thread order: ids grow with i */
    c->rc = put_s(c->t, mine, "1");
    pthread_barrier_wait(c->bar); /* everyone holds its own key */
    if (!c->rc)
        c->rc = put_s(c->t, next, "2");
    if (c->rc)
        txkv_abort(c->t);
    else
        c->rc = txkv_commit(c->t);
    return NULL;
}

static void cycle(int n)
{
    pthread_t th[8];
    struct cyc c[8];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)n);
    for (int i = 0; i < n; i++) {
        c[i] = (struct cyc){n, i, &bar, 0, 0, pbegin(TXKV_READ_COMMITTED)};
        c[i].id = txkv_txn_id(c[i].t);
    }
    for (int i = 0; i < n; i++)
        pthread_create(&th[i], NULL, cycle_thread, &c[i]);
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&bar);
    int victims = 0, commits = 0, youngest = 0;
    for (int i = 0; i < n; i++) {
        victims += c[i].rc == TXKV_DEADLOCK;
        commits += c[i].rc == 0;
        if (c[i].id > c[youngest].id)
            youngest = i;
    }
    ok(victims == 1 && commits == n - 1, "cycle of %d: one victim (%d), the rest commit (%d)", n,
       victims, commits);
    ok(c[youngest].rc == TXKV_DEADLOCK, "cycle of %d: the youngest is the victim", n);
    struct txkv_deadlock_info d[TXKV_DEADLOCK_HISTORY];
    size_t nd = txkv_deadlocks(db, d, TXKV_DEADLOCK_HISTORY);
    ok(nd > 0 && d[nd - 1].ntxns == (unsigned)n && d[nd - 1].victim == c[youngest].id &&
           d[nd - 1].klens[0] >= 2 && d[nd - 1].keys[0][0] == 'c',
       "cycle of %d: recorded in the history (%u transactions, victim %llu)", n,
       nd ? d[nd - 1].ntxns : 0, nd ? (unsigned long long)d[nd - 1].victim : 0ull);
}

/* ---- upgrades ------------------------------------------------------------ */

struct upg {
    pthread_barrier_t *bar;
    txkv_txn *t;
    int rc;
};

static void *upgrade_thread(void *arg)
{
    struct upg *u = arg;
    u->rc = txkv_get(u->t, NULL, "u", 1, NULL, NULL); /* S lock */
    pthread_barrier_wait(u->bar);
    if (u->rc == 0)
        u->rc = put_s(u->t, "u", "x"); /* S -> X while the other holds S */
    if (u->rc)
        txkv_abort(u->t);
    else
        u->rc = txkv_commit(u->t);
    return NULL;
}

static void upgrades(void)
{
    txkv_txn *t = pbegin(TXKV_SERIALIZABLE);
    put_s(t, "u", "0");
    txkv_commit(t);

    t = pbegin(TXKV_SERIALIZABLE);
    int r1 = txkv_get(t, NULL, "u", 1, NULL, NULL);
    int r2 = put_s(t, "u", "1");
    int r3 = txkv_commit(t);
    ok(r1 == 0 && r2 == 0 && r3 == 0, "a single holder upgrades S to X without waiting");

    pthread_t th[2];
    struct upg u[2];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, 2);
    for (int i = 0; i < 2; i++) {
        u[i] = (struct upg){&bar, pbegin(TXKV_SERIALIZABLE), 0};
        pthread_create(&th[i], NULL, upgrade_thread, &u[i]);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&bar);
    ok((u[0].rc == TXKV_DEADLOCK) + (u[1].rc == TXKV_DEADLOCK) == 1 &&
           (u[0].rc == 0) + (u[1].rc == 0) == 1,
       "two shared holders upgrading: one deadlock victim (%s, %s)", txkv_strerror(u[0].rc),
       txkv_strerror(u[1].rc));
}

/* ---- timeouts and FIFO --------------------------------------------------- */

struct waiter {
    int tag, rc, timeout_us;
    int *order, *norder;
    pthread_mutex_t *mu;
    int isolation; /* 0: READ_COMMITTED */
};

static void *waiter_thread(void *arg)
{
    struct waiter *w = arg;
    txkv_txn_options o;
    txkv_txn *t;
    txkv_txn_options_init(&o);
    o.cc = TXKV_PESSIMISTIC;
    /* at SNAPSHOT the holder's commit would fail us (first updater wins) */
    o.isolation = w->isolation ? w->isolation : TXKV_READ_COMMITTED;
    o.lock_timeout_us = (uint64_t)w->timeout_us;
    txkv_begin(db, &o, &t);
    w->rc = put_s(t, "f", "w");
    if (w->rc == 0) {
        pthread_mutex_lock(w->mu);
        w->order[(*w->norder)++] = w->tag; /* we hold the lock: order of grants */
        pthread_mutex_unlock(w->mu);
        w->rc = txkv_commit(t);
    } else {
        txkv_abort(t);
    }
    return NULL;
}

static void wait_for_waiters(size_t n)
{
    while (db_test_lock_waiters(db) < n)
        sched_yield();
}

static void timeouts_and_fifo(void)
{
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    int order[4], norder = 0;

    txkv_txn *h = pbegin(TXKV_SNAPSHOT);
    put_s(h, "f", "h");
    struct waiter w0 = {0, 0, 20000, order, &norder, &mu, 0};
    pthread_t th0;
    pthread_create(&th0, NULL, waiter_thread, &w0);
    pthread_join(th0, NULL);
    is(w0.rc, TXKV_LOCK_TIMEOUT, "a wait past lock_timeout_us fails with LOCK_TIMEOUT");

    struct waiter w1 = {1, 0, SAFETY_US, order, &norder, &mu, 0};
    struct waiter w2 = {2, 0, SAFETY_US, order, &norder, &mu, 0};
    pthread_t th1, th2;
    pthread_create(&th1, NULL, waiter_thread, &w1);
    wait_for_waiters(1);
    pthread_create(&th2, NULL, waiter_thread, &w2);
    wait_for_waiters(2);
    struct txkv_lock_info li[8];
    size_t nl = txkv_locks(db, li, 8);
    int held = 0, waiting = 0;
    for (size_t i = 0; i < nl && i < 8; i++) {
        if (li[i].klen != 1 || li[i].key[0] != 'f' || li[i].mode != TXKV_LOCK_EXCLUSIVE)
            continue;
        if (li[i].granted)
            held += li[i].txn == txkv_txn_id(h);
        else
            waiting++;
    }
    ok(nl == 3 && held == 1 && waiting == 2,
       "txkv_locks shows the holder and the two waiters (%zu entries)", nl);
    is(txkv_commit(h), 0, "the holder commits while two wait");
    pthread_join(th1, NULL);
    pthread_join(th2, NULL);
    ok(w1.rc == 0 && w2.rc == 0 && norder == 2 && order[0] == 1 && order[1] == 2,
       "waiters are granted in FIFO order after a commit");

    norder = 0;
    h = pbegin(TXKV_SNAPSHOT);
    put_s(h, "f", "h");
    pthread_create(&th1, NULL, waiter_thread, &w1);
    wait_for_waiters(1);
    txkv_abort(h);
    pthread_join(th1, NULL);
    ok(w1.rc == 0 && norder == 1, "a waiter wakes when the holder aborts");

    /* Strict 2PL at SERIALIZABLE: a writer that waited for the holder's
     * commit is ordered after it and commits; first-committer-wins is the
     * optimistic rule and must not fail it. */
    norder = 0;
    h = pbegin(TXKV_SERIALIZABLE);
    put_s(h, "f", "h");
    struct waiter w3 = {3, 0, SAFETY_US, order, &norder, &mu, TXKV_SERIALIZABLE};
    pthread_create(&th1, NULL, waiter_thread, &w3);
    wait_for_waiters(1);
    is(txkv_commit(h), 0, "SERIALIZABLE: the holder commits while a writer waits");
    pthread_join(th1, NULL);
    is(w3.rc, 0, "SERIALIZABLE: the writer that waited for the holder commits");

    /* A pessimistic lock makes an optimistic commit fail, not wait. */
    h = pbegin(TXKV_SNAPSHOT);
    put_s(h, "f", "h");
    txkv_txn *o;
    txkv_begin(db, NULL, &o);
    put_s(o, "f", "o");
    is(txkv_commit(o), TXKV_CONFLICT, "an optimistic write on a locked key: CONFLICT");
    txkv_commit(h);
}

/* ---- stress: mixed schemes, random lock order, bank invariant ---------- */

#define ACCOUNTS 24
#define START    1000

struct xfer {
    uint64_t rng;
    int a[4], n;
};

static int transfer(txkv_txn *t, void *arg)
{
    struct xfer *x = arg;
    long bal[4];
    for (int i = 0; i < x->n; i++) {
        char k[8];
        const void *v;
        size_t vl;
        char buf[24];
        snprintf(k, sizeof k, "a%02d", x->a[i]);
        int rc = txkv_get_for_update(t, NULL, k, strlen(k), &v, &vl);
        if (rc)
            return rc;
        memcpy(buf, v, vl);
        buf[vl] = 0;
        bal[i] = atol(buf);
    }
    long moved = 0;
    for (int i = 1; i < x->n; i++) {
        long m = (long)(tap_rand(&x->rng) % 10);
        bal[i] -= m;
        moved += m;
    }
    bal[0] += moved;
    for (int i = 0; i < x->n; i++) {
        char k[8], v[24];
        snprintf(k, sizeof k, "a%02d", x->a[i]);
        int vl = snprintf(v, sizeof v, "%ld", bal[i]);
        int rc = txkv_put(t, NULL, k, strlen(k), v, (size_t)vl);
        if (rc)
            return rc;
    }
    return 0;
}

static long total(int iso)
{
    txkv_txn_options o;
    txkv_txn *t;
    txkv_cursor *c;
    long sum = 0;
    txkv_txn_options_init(&o);
    o.isolation = iso;
    o.flags = TXKV_RDONLY;
    txkv_begin(db, &o, &t);
    txkv_cursor_open(t, NULL, &c);
    for (int rc = txkv_cursor_seek(c, "a", 1); rc == 0; rc = txkv_cursor_next(c)) {
        const void *k, *v;
        size_t kl, vl;
        char buf[24];
        txkv_cursor_get(c, &k, &kl, &v, &vl);
        if (((const char *)k)[0] != 'a')
            break;
        memcpy(buf, v, vl);
        buf[vl] = 0;
        sum += atol(buf);
    }
    txkv_commit(t);
    return sum;
}

static _Atomic int bad_sum, stress_fail;
static int stress_ops;

static void *stress_thread(void *arg)
{
    uint64_t rng = (uint64_t)(uintptr_t)arg;
    for (int op = 0; op < stress_ops; op++) {
        struct xfer x = {rng, {0}, 2 + (int)(tap_rand(&rng) % 3)};
        for (int i = 0; i < x.n; i++) { /* distinct accounts, random order */
        again:
            x.a[i] = (int)(tap_rand(&rng) % ACCOUNTS);
            for (int j = 0; j < i; j++)
                if (x.a[j] == x.a[i])
                    goto again;
        }
        txkv_txn_options o;
        txkv_txn_options_init(&o);
        o.cc = tap_rand(&rng) % 2 ? TXKV_PESSIMISTIC : TXKV_OPTIMISTIC;
        o.isolation = tap_rand(&rng) % 2 ? TXKV_SERIALIZABLE : TXKV_SNAPSHOT;
        o.lock_timeout_us = SAFETY_US;
        int rc = txkv_run(db, &o, transfer, &x, 0);
        rng = x.rng;
        if (rc)
            stress_fail++;
        if (op % 16 == 0 && total(TXKV_SNAPSHOT) != ACCOUNTS * START)
            bad_sum++;
    }
    return NULL;
}

static void stress(void)
{
    uint64_t seed = tap_seed();
    txkv_txn *t;
    txkv_begin(db, NULL, &t);
    for (int i = 0; i < ACCOUNTS; i++) {
        char k[8], v[16];
        snprintf(k, sizeof k, "a%02d", i);
        snprintf(v, sizeof v, "%d", START);
        put_s(t, k, v);
    }
    txkv_commit(t);
    stress_ops = (int)(400 * tap_scale());
    pthread_t th[8];
    for (int i = 0; i < 8; i++)
        pthread_create(&th[i], NULL, stress_thread,
                       (void *)(uintptr_t)(seed * 31 + (uint64_t)i + 1));
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    struct txkv_stats st;
    txkv_stats(db, &st);
    diag("stress: %llu commits, %llu conflicts, %llu deadlocks, %llu timeouts",
         (unsigned long long)st.commits, (unsigned long long)st.aborts_conflict,
         (unsigned long long)st.aborts_deadlock, (unsigned long long)st.aborts_timeout);
    is(stress_fail, 0, "stress: every transfer eventually commits (no hang, deadlocks resolved)");
    is(bad_sum, 0, "stress: every snapshot audit sees the invariant");
    is(total(TXKV_SERIALIZABLE), ACCOUNTS * START, "stress: the final total is exact");
}

int main(void)
{
    tap_seed();
    if (txkv_open(NULL, &db))
        bail_out("open");
    cycle(2);
    cycle(3);
    cycle(8);
    upgrades();
    timeouts_and_fifo();
    stress();
    txkv_close(db);
    return done_testing();
}
