/*
 * handles.c - transaction and cursor handles that outlive their
 * transaction, and transactions used by two threads at once (issue 14,
 * bugs 2 and 3).
 *
 * Proves, on transaction objects the library reuses:
 *  - stale transaction handles: after txkv_commit(t) (or txkv_abort(t)) and
 *    a txkv_begin that reuses t's object, every call with t returns
 *    TXKV_INVALID (txkv_txn_id: 0; txkv_abort: nothing) and nothing of it
 *    reaches the new transaction, also from another thread while the new
 *    one is in use; a second commit of t is TXKV_INVALID;
 *  - late cursor close: txkv_cursor_close after the transaction ended
 *    returns (it hung at 100% CPU: a SIGALRM deadline turns a hang into a
 *    failure), calls on such a cursor return TXKV_INVALID, and neither
 *    touches a cursor the next transaction opened on the reused objects;
 *    a double close is harmless;
 *  - one transaction, two threads: while thread A sleeps inside a call on
 *    T (a pessimistic lock wait), every entry point called on T by the
 *    main thread is refused: TXKV_INVALID in release builds, and in debug
 *    builds the program stops with a message naming the call (run in a
 *    child process per entry point); T is intact afterwards;
 *  - txkv_txn_id is unique for the database's life: ids of transactions on
 *    one reused object increase; no id in the deadlock history is the id
 *    of a transaction that began after the deadlock.
 */
#include "config.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../tap.h"
#include "db.h" /* db_test_lock_waiters */
#include "txkv.h"

static void on_alarm(int sig)
{
    static const char msg[] = "not ok - a call hung (deadline passed)\nBail out! hang\n";
    (void)sig;
    if (write(1, msg, sizeof msg - 1) < 0)
        _exit(2);
    _exit(1);
}

static int reads(txkv_db *db, const char *key, const char *want)
{
    txkv_txn *t;
    const void *v;
    size_t vl;
    if (txkv_begin(db, NULL, &t))
        return 0;
    int rc = txkv_get(t, NULL, key, strlen(key), &v, &vl);
    int good =
        want ? rc == 0 && vl == strlen(want) && memcmp(v, want, vl) == 0 : rc == TXKV_NOTFOUND;
    txkv_abort(t);
    return good;
}

/* Every call a stale handle can make; how many returned what they should. */
static int stale_calls(txkv_txn *t, txkv_cursor *c)
{
    const void *v;
    size_t vl;
    txkv_cursor *c2 = (txkv_cursor *)&c2;
    int good = 0;
    good += txkv_put(t, NULL, "stale", 5, "x", 1) == TXKV_INVALID;
    good += txkv_del(t, NULL, "live", 4) == TXKV_INVALID;
    good += txkv_get(t, NULL, "live", 4, &v, &vl) == TXKV_INVALID;
    good += txkv_get_for_update(t, NULL, "live", 4, &v, &vl) == TXKV_INVALID;
    good += txkv_cursor_open(t, NULL, &c2) == TXKV_INVALID && c2 == NULL;
    good += txkv_txn_id(t) == 0;
    if (c) {
        good += txkv_cursor_seek(c, NULL, 0) == TXKV_INVALID;
        good += txkv_cursor_next(c) == TXKV_INVALID;
        good += txkv_cursor_prev(c) == TXKV_INVALID;
        good += txkv_cursor_get(c, NULL, NULL, &v, &vl) == TXKV_INVALID;
        txkv_cursor_close(c);
        good += 1;
    } else
        good += 5;
    txkv_abort(t); /* must not end whatever uses the object now */
    good += txkv_commit(t) == TXKV_INVALID;
    return good;
}
#define STALE_CALLS 12

struct stale_arg {
    txkv_txn *t;
    txkv_cursor *c;
    int good;
};

static void *stale_thread(void *p)
{
    struct stale_arg *a = p;
    a->good = stale_calls(a->t, a->c);
    return NULL;
}

static void test_stale_txn(txkv_db *db)
{
    txkv_txn *t, *t2;
    txkv_cursor *c, *c2;
    const void *k;
    size_t kl;

    is(txkv_begin(db, NULL, &t), 0, "begin");
    is(txkv_put(t, NULL, "live", 4, "1", 1), 0, "put");
    is(txkv_commit(t), 0, "commit");
    uint64_t id_before = 0;
    is(txkv_begin(db, NULL, &t2), 0, "begin again (the thread's object is reused)");
    id_before = txkv_txn_id(t2);
    is(txkv_put(t, NULL, "stale", 5, "x", 1), TXKV_INVALID, "put with the ended handle: INVALID");
    is(stale_calls(t, NULL), STALE_CALLS, "every call with the ended handle: INVALID or nothing");
    is(txkv_txn_id(t2), id_before, "the new transaction is untouched: same id");
    is(txkv_put(t2, NULL, "new", 3, "2", 1), 0, "the new transaction is usable");
    is(txkv_commit(t2), 0, "and commits");
    ok(reads(db, "stale", NULL), "the stale put did not land in the new transaction");
    ok(reads(db, "live", "1") && reads(db, "new", "2"), "the live writes are there");
    is(txkv_commit(t2), TXKV_INVALID, "a second commit: INVALID");

    /* cursors: close after the end, on objects the next transaction reuses */
    alarm(30);
    is(txkv_begin(db, NULL, &t), 0, "begin");
    is(txkv_cursor_open(t, NULL, &c), 0, "cursor_open");
    is(txkv_cursor_seek(c, NULL, 0), 0, "seek");
    is(txkv_commit(t), 0, "commit with the cursor open");
    txkv_cursor_close(c);
    ok(1, "txkv_cursor_close after the commit returned");
    txkv_cursor_close(c);
    ok(1, "and a second close too");
    is(txkv_cursor_next(c), TXKV_INVALID, "next on a cursor of an ended txn: INVALID");
    is(txkv_begin(db, NULL, &t), 0, "begin");
    is(txkv_cursor_open(t, NULL, &c), 0, "cursor_open");
    is(txkv_cursor_seek(c, NULL, 0), 0, "seek");
    txkv_abort(t);
    is(txkv_begin(db, NULL, &t2), 0, "begin (reusing the transaction and cursor objects)");
    is(txkv_cursor_open(t2, NULL, &c2), 0, "a new cursor");
    is(txkv_cursor_seek(c2, "new", 3), 0, "positioned on 'new'");
    is(stale_calls(t, c), STALE_CALLS, "every call with the aborted txn and its cursor: refused");
    ok(txkv_cursor_get(c2, &k, &kl, NULL, NULL) == 0 && kl == 3 && memcmp(k, "new", 3) == 0,
       "the new cursor is untouched by the stale close");
    is(txkv_cursor_next(c2), TXKV_NOTFOUND, "and moves on");

    /* a stale handle used from another thread while the object is in use */
    txkv_cursor_close(c2);
    is(txkv_cursor_open(t2, NULL, &c2), 0, "another cursor");
    struct stale_arg a = {t, c, 0};
    pthread_t th;
    pthread_create(&th, NULL, stale_thread, &a);
    pthread_join(th, NULL);
    is(a.good, STALE_CALLS, "stale calls from another thread: refused");
    is(txkv_cursor_seek(c2, NULL, 0), 0, "the live cursor works");
    is(txkv_commit(t2), 0, "the live transaction commits");
    txkv_cursor_close(c2);
    ok(reads(db, "stale", NULL), "nothing stale landed");
    alarm(0);
}

/* ---- one transaction, two threads ---------------------------------------- */

struct sleeper {
    txkv_txn *t;
    int rc;
};

static void *sleeper_main(void *p)
{
    struct sleeper *s = p;
    const void *v;
    size_t vl;
    s->rc = txkv_get_for_update(s->t, NULL, "held", 4, &v, &vl); /* waits for U */
    return NULL;
}

/* Each call, were it let in, would return something else than what
 * call_refused expects of a refusal: get of an absent key NOTFOUND, commit
 * 0, the cursor calls 0, txkv_txn_id of a pessimistic transaction its id. */
static const char *const call_name[] __attribute__((unused)) = {
    "txkv_get",         "txkv_get_for_update", "txkv_put",          "txkv_del",
    "txkv_cursor_open", "txkv_commit",         "txkv_abort",        "txkv_txn_id",
    "txkv_cursor_next", "txkv_cursor_seek",    "txkv_cursor_close", "txkv_cursor_seek_prev",
    "txkv_savepoint",   "txkv_rollback_to",
};
#define NCALLS ((int)(sizeof call_name / sizeof call_name[0]))

/* Calls entry point i on t (or its cursor c); 1 if it was refused.  sp: a
 * savepoint of t. */
static int call_refused(int i, txkv_txn *t, txkv_cursor *c, uint32_t sp)
{
    const void *v;
    size_t vl;
    txkv_cursor *c2;
    switch (i) {
    case 0:
        return txkv_get(t, NULL, "k", 1, &v, &vl) == TXKV_INVALID;
    case 1:
        return txkv_get_for_update(t, NULL, "k", 1, &v, &vl) == TXKV_INVALID;
    case 2:
        return txkv_put(t, NULL, "k", 1, "v", 1) == TXKV_INVALID;
    case 3:
        return txkv_del(t, NULL, "k", 1) == TXKV_INVALID;
    case 4:
        return txkv_cursor_open(t, NULL, &c2) == TXKV_INVALID;
    case 5:
        return txkv_commit(t) == TXKV_INVALID;
    case 6:
        txkv_abort(t);
        return 1; /* checked by the transaction being intact afterwards */
    case 7:
        return txkv_txn_id(t) == 0;
    case 8:
        return txkv_cursor_next(c) == TXKV_INVALID;
    case 9:
        return txkv_cursor_seek(c, NULL, 0) == TXKV_INVALID;
    case 10:
        txkv_cursor_close(c);
        return 1; /* checked by the cursor working afterwards */
    case 11:
        return txkv_cursor_seek_prev(c, "z", 1) == TXKV_INVALID;
    case 12:
        return txkv_savepoint(t, &sp) == TXKV_INVALID;
    case 13:
        return txkv_rollback_to(t, sp) == TXKV_INVALID;
    default:
        return 0;
    }
}

/*
 * T sleeps inside txkv_get_for_update on thread A (U holds the key), and
 * this thread calls entry point `which` on T (-1: all of them).  Returns
 * how many were refused, with T intact afterwards (its put, cursor and
 * commit work); -1 if the scene could not be set up.
 */
static int two_threads(int which)
{
    txkv_db *db;
    txkv_txn *u, *t;
    txkv_cursor *c;
    txkv_txn_options o;
    txkv_txn_options_init(&o);
    o.cc = TXKV_PESSIMISTIC;
    if (txkv_open(NULL, &db) || txkv_begin(db, &o, &u) || txkv_put(u, NULL, "held", 4, "u", 1) ||
        txkv_begin(db, &o, &t) || txkv_put(t, NULL, "mine", 4, "t", 1) ||
        txkv_cursor_open(t, NULL, &c))
        return -1;
    uint32_t sp = 0;
    if (txkv_savepoint(t, &sp))
        return -1;
    struct sleeper s = {t, 1};
    pthread_t th;
    pthread_create(&th, NULL, sleeper_main, &s);
    while (db_test_lock_waiters(db) < 1)
        sched_yield();
    int refused = 0;
    for (int i = which < 0 ? 0 : which; i < (which < 0 ? NCALLS : which + 1); i++)
        refused += call_refused(i, t, c, sp);
    txkv_abort(u); /* A gets the lock now */
    pthread_join(th, NULL);
    const void *k;
    size_t kl;
    int intact = s.rc == TXKV_NOTFOUND && txkv_cursor_seek(c, NULL, 0) == 0 &&
                 txkv_cursor_get(c, &k, &kl, NULL, NULL) == 0 && kl == 4 &&
                 memcmp(k, "mine", 4) == 0 && txkv_put(t, NULL, "more", 4, "t", 1) == 0;
    txkv_cursor_close(c);
    intact = intact && txkv_commit(t) == 0;
    txkv_close(db);
    return intact ? refused : -1;
}

#ifdef TXKV_DEBUG
/* Debug builds stop the program: run entry point i in a child, with its
 * stderr in a pipe; 1 if it died of SIGABRT saying what happened. */
static int child_stopped(int i)
{
    int fd[2];
    fflush(stdout);
    if (pipe(fd))
        return 0;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd[1], 2);
        close(fd[0]);
        two_threads(i);
        _exit(0); /* not stopped: the parent reports it */
    }
    close(fd[1]);
    char buf[1024];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf - 1 && (r = read(fd[0], buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = 0;
    close(fd[0]);
    int st;
    waitpid(pid, &st, 0);
    int good = WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT && strstr(buf, call_name[i]) &&
               strstr(buf, "used by one thread at a time");
    if (!good)
        diag("%s: child status %d, stderr: %s", call_name[i], st, buf);
    return good;
}
#endif

static void test_two_threads(void)
{
#ifdef TXKV_DEBUG
    for (int i = 0; i < NCALLS; i++)
        ok(child_stopped(i),
           "debug build: %s on a transaction another thread is inside stops "
           "the program with a message",
           call_name[i]);
#else
    is(two_threads(-1), NCALLS,
       "release build: all %d entry points refused (INVALID) while another thread is inside a "
       "call on the transaction, which stays intact",
       NCALLS);
#endif
}

/* ---- ids ------------------------------------------------------------------- */

struct locker {
    txkv_txn *t;
    const char *key;
    int rc;
};

static void *locker_main(void *p)
{
    struct locker *l = p;
    l->rc = txkv_put(l->t, NULL, l->key, 1, "x", 1);
    return NULL;
}

static void test_ids(txkv_db *db)
{
    uint64_t last = 0;
    int increasing = 1;
    for (int i = 0; i < 100; i++) {
        txkv_txn *t;
        txkv_txn_options o;
        txkv_txn_options_init(&o);
        o.cc = i % 2 ? TXKV_PESSIMISTIC : TXKV_OPTIMISTIC;
        if (txkv_begin(db, &o, &t))
            bail_out("begin");
        uint64_t id = txkv_txn_id(t);
        increasing &= id > last && txkv_txn_id(t) == id;
        last = id;
        if (i % 3)
            txkv_commit(t);
        else
            txkv_abort(t);
    }
    ok(increasing, "ids of transactions on reused objects increase and are stable");

    /* a deadlock: A holds a and wants b, B holds b and wants a */
    txkv_txn_options o;
    txkv_txn_options_init(&o);
    o.cc = TXKV_PESSIMISTIC;
    txkv_txn *a, *b;
    txkv_begin(db, &o, &a);
    txkv_begin(db, &o, &b);
    txkv_put(a, NULL, "a", 1, "x", 1);
    txkv_put(b, NULL, "b", 1, "x", 1);
    struct locker la = {a, "b", 1};
    pthread_t th;
    pthread_create(&th, NULL, locker_main, &la);
    while (db_test_lock_waiters(db) < 1)
        sched_yield();
    int rb = txkv_put(b, NULL, "a", 1, "x", 1);
    if (rb == TXKV_DEADLOCK)
        txkv_abort(b);
    pthread_join(th, NULL);
    ok(rb == TXKV_DEADLOCK && la.rc == 0, "deadlock: the younger transaction is the victim");
    txkv_commit(a);
    if (rb != TXKV_DEADLOCK)
        txkv_abort(b);
    struct txkv_deadlock_info dl[TXKV_DEADLOCK_HISTORY];
    size_t n = txkv_deadlocks(db, dl, TXKV_DEADLOCK_HISTORY);
    ok(n >= 1, "the deadlock is in the history");
    uint64_t maxid = 0;
    for (size_t i = 0; i < n; i++)
        for (unsigned j = 0; j < dl[i].ntxns; j++)
            if (dl[i].txns[j] > maxid)
                maxid = dl[i].txns[j];
    int later_ok = 1;
    for (int i = 0; i < 50; i++) {
        txkv_txn *t;
        txkv_begin(db, &o, &t);
        later_ok &= txkv_txn_id(t) > maxid;
        txkv_abort(t);
    }
    ok(later_ok, "no transaction begun later has an id the deadlock history names");
    is(txkv_txn_id(a), 0, "an ended transaction's id: 0");
}

int main(void)
{
    txkv_db *db;
    signal(SIGALRM, on_alarm);
    test_two_threads(); /* first: debug builds fork, best before threads exist */
    if (txkv_open(NULL, &db))
        bail_out("open");
    test_stale_txn(db);
    test_ids(db);
    txkv_close(db);
    return done_testing();
}
