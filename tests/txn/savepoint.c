/*
 * savepoint.c - txkv_savepoint and txkv_rollback_to against a model of
 * nested undo.
 *
 * Random rounds, both schemes, every isolation level: a transaction makes
 * random puts (over its own puts too), deletes and re-puts over a small key
 * universe, takes nested savepoints and rolls back to random live ones
 * (discarding the newer ones), and tries ids that must be refused (rolled
 * past, never given, 0).  The model keeps the transaction's pending writes
 * per savepoint.  Every get and full cursor scans, both directions, are
 * compared with "committed data overlaid with the pending writes"; every
 * value pointer a get returned, rolled back or not, must still hold its
 * bytes when the transaction ends (ASan builds also catch a freed one).
 * Then it commits or aborts and a fresh transaction reads the model.
 *
 * Directed cases: a rollback keeps pessimistic locks (another writer times
 * out on a key whose write was rolled back), reads (an optimistic
 * SERIALIZABLE transaction whose read was followed by a rollback still
 * conflicts) and the snapshot; a failed transaction answers TXKV_ABORTED;
 * read-only transactions may take savepoints; ids of an ended transaction
 * are refused by the next one on the same object; NULL and stale handles.
 * Deterministic by TXKV_SEED.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tap.h"
#include "txkv.h"

#define NKEYS  40
#define MAXSP  64
#define MAXPTR 4096

static txkv_db *db;
static uint64_t rng;
static char keys[NKEYS][8];
static int committed[NKEYS]; /* value or -1 */
static int pending[NKEYS];   /* value, -1 deleted, -2 untouched */

/* Savepoints live in the model, oldest first. */
static uint32_t sp_id[MAXSP];
static int sp_pending[MAXSP][NKEYS];
static int nsp;
static uint32_t dead_ids[MAXSP * 4]; /* rolled past: must be refused */
static int ndead;

/* Value pointers returned by gets: each must keep its bytes until the end. */
static struct {
    const void *p;
    size_t len;
    int val;
} ptrs[MAXPTR];
static int nptrs;

static int bad_get, bad_scan, bad_sp, bad_ptr, bad_end;

static size_t fmt_val(char *buf, int v)
{
    /* 1 to 60 bytes: different sizes, so a reused allocation shows */
    return (size_t)snprintf(buf, 64, "%d:%.*s", v, v % 50,
                            "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz");
}

static int model(int i)
{
    return pending[i] == -2 ? committed[i] : pending[i];
}

static int same_val(const void *p, size_t len, int v)
{
    char buf[64];
    size_t n = fmt_val(buf, v);
    return len == n && memcmp(p, buf, n) == 0;
}

static void check_gets(txkv_txn *t)
{
    for (int i = 0; i < NKEYS; i++) {
        const void *v;
        size_t vl;
        int rc = txkv_get(t, NULL, keys[i], strlen(keys[i]), &v, &vl);
        int want = model(i);
        if (want < 0 ? rc != TXKV_NOTFOUND : rc != 0 || !same_val(v, vl, want)) {
            if (bad_get++ < 3)
                diag("key %s: got %s, model %d", keys[i], txkv_strerror(rc), want);
        } else if (rc == 0 && nptrs < MAXPTR) {
            ptrs[nptrs].p = v;
            ptrs[nptrs].len = vl;
            ptrs[nptrs++].val = want;
        }
    }
}

/* Full scans, forward then backward, against the model. */
static void check_scans(txkv_txn *t)
{
    txkv_cursor *c;
    if (txkv_cursor_open(t, NULL, &c)) {
        bad_scan++;
        return;
    }
    for (int dir = 1; dir >= -1; dir -= 2) {
        int i = dir > 0 ? 0 : NKEYS - 1; /* keys[] is in key order */
        int rc = dir > 0 ? txkv_cursor_seek(c, NULL, 0) : txkv_cursor_last(c);
        for (;; rc = dir > 0 ? txkv_cursor_next(c) : txkv_cursor_prev(c)) {
            while (i >= 0 && i < NKEYS && model(i) < 0)
                i += dir;
            if (i < 0 || i >= NKEYS) {
                bad_scan += rc != TXKV_NOTFOUND;
                break;
            }
            const void *k, *v;
            size_t kl, vl;
            if (rc || txkv_cursor_get(c, &k, &kl, &v, &vl) || kl != strlen(keys[i]) ||
                memcmp(k, keys[i], kl) || !same_val(v, vl, model(i))) {
                bad_scan++;
                break;
            }
            i += dir;
        }
    }
    txkv_cursor_close(c);
}

static void op_write(txkv_txn *t)
{
    int i = (int)(tap_rand(&rng) % NKEYS);
    int rc;
    if (tap_rand(&rng) % 4 == 0) {
        rc = txkv_del(t, NULL, keys[i], strlen(keys[i]));
        pending[i] = -1;
    } else {
        char buf[64];
        int v = (int)(tap_rand(&rng) % 100000);
        rc = txkv_put(t, NULL, keys[i], strlen(keys[i]), buf, fmt_val(buf, v));
        pending[i] = v;
    }
    if (rc && bad_sp++ < 3)
        diag("write of %s: %s", keys[i], txkv_strerror(rc));
}

static void op_savepoint(txkv_txn *t)
{
    uint32_t id;
    if (nsp == MAXSP)
        return;
    int rc = txkv_savepoint(t, &id);
    if (rc || (nsp && id <= sp_id[nsp - 1])) {
        bad_sp++;
        return;
    }
    sp_id[nsp] = id;
    memcpy(sp_pending[nsp++], pending, sizeof pending);
}

static void op_rollback(txkv_txn *t)
{
    if (!nsp)
        return;
    int s = (int)(tap_rand(&rng) % (uint64_t)nsp);
    if (txkv_rollback_to(t, sp_id[s]) != 0) {
        bad_sp++;
        return;
    }
    memcpy(pending, sp_pending[s], sizeof pending);
    for (int j = s + 1; j < nsp; j++)
        if (ndead < (int)(sizeof dead_ids / sizeof dead_ids[0]))
            dead_ids[ndead++] = sp_id[j];
    nsp = s + 1; /* s itself stays */
}

static void op_bad_ids(txkv_txn *t)
{
    uint32_t never = nsp ? sp_id[nsp - 1] + 1000 : 0xfffffff0u;
    bad_sp += txkv_rollback_to(t, 0) != TXKV_INVALID;
    bad_sp += txkv_rollback_to(t, never) != TXKV_INVALID;
    if (ndead)
        bad_sp += txkv_rollback_to(t, dead_ids[tap_rand(&rng) % (uint64_t)ndead]) != TXKV_INVALID;
}

static void check_committed(int round)
{
    txkv_txn *t;
    if (txkv_begin(db, NULL, &t))
        bail_out("begin");
    for (int i = 0; i < NKEYS; i++)
        pending[i] = -2;
    int before = bad_get;
    check_gets(t);
    if (bad_get != before) {
        bad_end++;
        diag("round %d: the committed data differs from the model", round);
    }
    txkv_abort(t);
}

static void round_run(int r)
{
    txkv_txn_options o;
    txkv_txn *t;
    txkv_txn_options_init(&o);
    o.isolation = 1 + (int)(tap_rand(&rng) % 3);
    o.cc = tap_rand(&rng) % 2 ? TXKV_PESSIMISTIC : TXKV_OPTIMISTIC;
    if (txkv_begin(db, &o, &t))
        bail_out("begin");
    for (int i = 0; i < NKEYS; i++)
        pending[i] = -2;
    nsp = ndead = nptrs = 0;
    int nops = 20 + (int)(tap_rand(&rng) % 80);
    for (int n = 0; n < nops; n++) {
        unsigned x = (unsigned)(tap_rand(&rng) % 100);
        if (x < 50)
            op_write(t);
        else if (x < 62)
            check_gets(t);
        else if (x < 74)
            op_savepoint(t);
        else if (x < 86)
            op_rollback(t);
        else if (x < 92)
            op_bad_ids(t);
        else
            check_scans(t);
    }
    check_gets(t);
    check_scans(t);
    for (int i = 0; i < nptrs; i++)
        if (!same_val(ptrs[i].p, ptrs[i].len, ptrs[i].val) && bad_ptr++ < 3)
            diag("round %d: a value pointer a get returned changed", r);
    if (tap_rand(&rng) % 4) {
        int rc = txkv_commit(t);
        if (rc) {
            bad_end++;
            diag("round %d: uncontended commit: %s", r, txkv_strerror(rc));
        } else
            for (int i = 0; i < NKEYS; i++)
                if (pending[i] != -2)
                    committed[i] = pending[i];
    } else
        txkv_abort(t);
    check_committed(r);
}

/* ---- directed cases ------------------------------------------------------ */

static int commit_put(const char *k, const char *v)
{
    txkv_txn *t;
    int rc = txkv_begin(db, NULL, &t);
    if (!rc && (rc = txkv_put(t, NULL, k, strlen(k), v, strlen(v))) != 0) {
        txkv_abort(t);
        return rc;
    }
    return rc ? rc : txkv_commit(t);
}

static void test_kept(void)
{
    txkv_txn_options o;
    txkv_txn *t, *u;
    uint32_t sp;
    const void *v;
    size_t vl;

    /* pessimistic: the lock of a rolled-back write stays */
    txkv_txn_options_init(&o);
    o.cc = TXKV_PESSIMISTIC;
    o.lock_timeout_us = 2000;
    txkv_begin(db, &o, &t);
    is(txkv_savepoint(t, &sp), 0, "savepoint");
    is(txkv_put(t, NULL, "locked", 6, "t", 1), 0, "pessimistic put after it");
    is(txkv_rollback_to(t, sp), 0, "rollback_to");
    is(txkv_get(t, NULL, "locked", 6, &v, &vl), TXKV_NOTFOUND, "the write is gone");
    txkv_begin(db, &o, &u);
    is(txkv_put(u, NULL, "locked", 6, "u", 1), TXKV_LOCK_TIMEOUT,
       "another writer of the key still waits for the lock: LOCK_TIMEOUT");
    txkv_abort(u);
    is(txkv_commit(t), 0, "commit");
    is(commit_put("locked", "u"), 0, "after the end the key is free");

    /* optimistic SERIALIZABLE: a read before the rollback still validates */
    txkv_txn_options_init(&o);
    o.isolation = TXKV_SERIALIZABLE;
    txkv_begin(db, &o, &t);
    is(txkv_savepoint(t, &sp), 0, "savepoint");
    is(txkv_get(t, NULL, "r", 1, &v, &vl), TXKV_NOTFOUND, "read r");
    is(txkv_put(t, NULL, "w", 1, "t", 1), 0, "write w");
    is(txkv_rollback_to(t, sp), 0, "rollback_to");
    is(commit_put("r", "other"), 0, "another transaction writes r and commits");
    is(txkv_put(t, NULL, "w2", 2, "t", 1), 0, "write w2");
    is(txkv_commit(t), TXKV_CONFLICT, "the kept read of r conflicts at commit");

    /* SNAPSHOT: the snapshot stays */
    txkv_txn_options_init(&o);
    txkv_begin(db, &o, &t);
    is(txkv_savepoint(t, &sp), 0, "savepoint");
    is(txkv_put(t, NULL, "s", 1, "mine", 4), 0, "put s");
    is(txkv_rollback_to(t, sp), 0, "rollback_to");
    is(commit_put("s", "other"), 0, "another transaction commits s");
    is(txkv_get(t, NULL, "s", 1, &v, &vl), TXKV_NOTFOUND, "s still reads as at the snapshot");
    is(txkv_rollback_to(t, sp), 0, "the savepoint can be rolled back to again");
    txkv_abort(t);
}

static void test_misuse(void)
{
    txkv_options dbo;
    txkv_db *small;
    txkv_txn *t, *t2;
    txkv_txn_options o;
    uint32_t sp, sp2;
    static char blob[8192];

    is(txkv_savepoint(NULL, &sp), TXKV_INVALID, "savepoint: NULL txn");
    is(txkv_rollback_to(NULL, 1), TXKV_INVALID, "rollback_to: NULL txn");
    txkv_begin(db, NULL, &t);
    is(txkv_savepoint(t, NULL), TXKV_INVALID, "savepoint: NULL sp");
    is(txkv_savepoint(t, &sp), 0, "savepoint");
    is(txkv_commit(t), 0, "commit");
    is(txkv_savepoint(t, &sp2), TXKV_INVALID, "savepoint on an ended transaction: INVALID");
    is(txkv_rollback_to(t, sp), TXKV_INVALID, "rollback_to on an ended transaction: INVALID");
    txkv_begin(db, NULL, &t2); /* the same object */
    is(txkv_rollback_to(t2, sp), TXKV_INVALID, "an id of the previous transaction: INVALID");
    is(txkv_savepoint(t2, &sp2), 0, "a savepoint of the new one");
    ok(sp2 != sp, "gets a new id");
    txkv_abort(t2);

    txkv_txn_options_init(&o);
    o.flags = TXKV_RDONLY;
    txkv_begin(db, &o, &t);
    is(txkv_savepoint(t, &sp), 0, "savepoint in a read-only transaction");
    is(txkv_rollback_to(t, sp), 0, "rollback_to in a read-only transaction");
    txkv_abort(t);

    txkv_options_init(&dbo);
    dbo.mem_limit = 4096;
    if (txkv_open(&dbo, &small))
        bail_out("open small");
    txkv_begin(small, NULL, &t);
    is(txkv_savepoint(t, &sp), 0, "savepoint");
    is(txkv_put(t, NULL, "big", 3, blob, sizeof blob), TXKV_FULL, "a put fails the transaction");
    is(txkv_rollback_to(t, sp), TXKV_ABORTED, "rollback_to does not revive it: ABORTED");
    is(txkv_savepoint(t, &sp2), TXKV_ABORTED, "savepoint on a failed transaction: ABORTED");
    is(txkv_commit(t), TXKV_ABORTED, "commit: ABORTED");
    txkv_close(small);
}

int main(void)
{
    rng = tap_seed();
    for (int i = 0; i < NKEYS; i++) {
        snprintf(keys[i], sizeof keys[i], "k%02d", i);
        committed[i] = -1;
    }
    if (txkv_open(NULL, &db))
        bail_out("open");
    int rounds = (int)(200 * tap_scale());
    for (int r = 0; r < rounds; r++)
        round_run(r);
    ok(bad_get == 0, "gets match the model of nested undo (%d mismatches)", bad_get);
    ok(bad_scan == 0, "cursor scans both ways match it (%d mismatches)", bad_scan);
    ok(bad_sp == 0, "savepoints, rollbacks and refused ids behave (%d mismatches)", bad_sp);
    ok(bad_ptr == 0, "value pointers stay valid until the end, rolled back or not (%d)", bad_ptr);
    ok(bad_end == 0, "commits succeed and the committed data is the model (%d)", bad_end);
    test_kept();
    test_misuse();
    txkv_close(db);
    return done_testing();
}
