/*
 * cursor.c - gets and cursors against a model, with pending writes.
 *
 * Random rounds: a transaction makes random puts and deletes over a small key
 * universe (keys of 1..19 bytes, some prefixes of others), then every
 * get, a full forward scan, a full backward scan (from txkv_cursor_last and
 * from an unpositioned cursor's prev), random seeks and seek_prevs
 * (last key <= k) followed by random next/prev steps are compared with the
 * model "committed data overlaid with this transaction's pending writes".
 * Then it commits or aborts at random and the committed model follows.
 *
 * Then SERIALIZABLE ranges through the new entry points, for optimistic
 * and pessimistic transactions: what txkv_cursor_last and
 * txkv_cursor_seek_prev observed (the keys they passed and the gap beyond
 * the last key, or before the first) is protected until commit - an insert
 * there by another transaction makes the optimistic scanner fail with
 * CONFLICT and waits (times out) against the pessimistic one - while an
 * insert outside it does not.  Deterministic by seed.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tap.h"
#include "txkv.h"

#define NKEYS 160

static char keys[NKEYS][24];
static size_t klens[NKEYS];
static int committed[NKEYS]; /* value or -1 */
static int pending[NKEYS];   /* value, -1 delete, -2 untouched */

static int kcmp(const void *a, size_t al, const void *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al < bl ? -1 : al > bl);
}

static int cmp_idx(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return kcmp(keys[x], klens[x], keys[y], klens[y]);
}

static int order[NKEYS]; /* key indices in key order */

static int model(int i)
{
    return pending[i] == -2 ? committed[i] : pending[i];
}

/* Index in `order` of the first key >= (k, kl). */
static int lower(const void *k, size_t kl)
{
    int lo = 0, hi = NKEYS;
    while (lo < hi) {
        int m = (lo + hi) / 2;
        if (kcmp(keys[order[m]], klens[order[m]], k, kl) < 0)
            lo = m + 1;
        else
            hi = m;
    }
    return lo;
}

static int cur_key(txkv_cursor *c)
{
    const void *k, *v;
    size_t kl, vl;
    if (txkv_cursor_get(c, &k, &kl, &v, &vl))
        return -1;
    for (int i = 0; i < NKEYS; i++)
        if (klens[i] == kl && memcmp(keys[i], k, kl) == 0) {
            char buf[16];
            memcpy(buf, v, vl < 15 ? vl : 15);
            buf[vl < 15 ? vl : 15] = 0;
            if (atoi(buf) != model(i))
                return -2;
            return i;
        }
    return -3;
}

/* ---- SERIALIZABLE ranges observed by last and seek_prev ------------------ */

static txkv_db *rdb;

/* Another transaction inserts key and commits: 0, or why it could not. */
static int insert(const char *key)
{
    txkv_txn_options o;
    txkv_txn *u;
    txkv_txn_options_init(&o);
    o.cc = TXKV_PESSIMISTIC; /* waits on a range lock; times out */
    o.lock_timeout_us = 2000;
    int rc = txkv_begin(rdb, &o, &u);
    if (!rc && (rc = txkv_put(u, NULL, key, strlen(key), "x", 1)) != 0) {
        txkv_abort(u);
        return rc;
    }
    return rc ? rc : txkv_commit(u);
}

/*
 * A SERIALIZABLE transaction of scheme cc observes a range through `how`
 * (0: txkv_cursor_last, 1: seek_prev to "m5", 2: seek_prev below every
 * key), another inserts `key`, then the first writes and commits.  Returns
 * the first's commit code, or the insert's failure (with cc pessimistic the
 * insert waits and times out instead).
 */
static int range_case(int cc, int how, const char *key, int *insert_rc)
{
    if (txkv_open(NULL, &rdb))
        bail_out("open");
    /* 200 keys a000..a199 (more than one cursor batch), then m0..m9 */
    char k[8];
    for (int i = 0; i < 210; i++) {
        if (i < 200)
            snprintf(k, sizeof k, "a%03d", i);
        else
            snprintf(k, sizeof k, "m%d", i - 200);
        if (insert(k))
            bail_out("load");
    }
    txkv_txn_options o;
    txkv_txn *t;
    txkv_cursor *c;
    txkv_txn_options_init(&o);
    o.isolation = TXKV_SERIALIZABLE;
    o.cc = cc;
    txkv_begin(rdb, &o, &t);
    txkv_cursor_open(t, NULL, &c);
    int rc = how == 0   ? txkv_cursor_last(c)
             : how == 1 ? txkv_cursor_seek_prev(c, "m5", 2)
                        : txkv_cursor_seek_prev(c, "0", 1);
    if (rc != (how == 2 ? TXKV_NOTFOUND : 0))
        bail_out("positioning");
    txkv_cursor_close(c);
    *insert_rc = insert(key);
    txkv_put(t, NULL, "w", 1, "t", 1);
    rc = txkv_commit(t);
    txkv_close(rdb);
    return rc;
}

static void test_ranges(int cc)
{
    const char *name = cc == TXKV_OPTIMISTIC ? "optimistic" : "pessimistic";
    int want_in = cc == TXKV_OPTIMISTIC ? 0 : TXKV_LOCK_TIMEOUT; /* the insert's fate */
    int want_commit = cc == TXKV_OPTIMISTIC ? TXKV_CONFLICT : 0;
    int ins, rc;
    static const struct {
        int how;
        const char *key;
        int inside;
        const char *what;
    } cases[] = {
        {0, "z", 1, "last: an insert after the last key"},
        {0, "m45", 1, "last: an insert among the keys it passed"},
        {0, "a0005", 0, "last: an insert far below the batch it read"},
        {1, "m5", 1, "seek_prev(m5): an overwrite of m5 itself"},
        {1, "m45", 1, "seek_prev(m5): an insert just below m5"},
        {1, "m55", 0, "seek_prev(m5): an insert just above m5"},
        {1, "z", 0, "seek_prev(m5): an insert far above"},
        {2, "+", 1, "seek_prev below every key: an insert into that empty range"},
        {2, "b", 0, "seek_prev below every key: an insert above the first key"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rc = range_case(cc, cases[i].how, cases[i].key, &ins);
        if (cases[i].inside)
            ok(ins == want_in && rc == want_commit, "%s SERIALIZABLE, %s: insert %s, commit %s",
               name, cases[i].what, txkv_strerror(ins), txkv_strerror(rc));
        else
            ok(ins == 0 && rc == 0, "%s SERIALIZABLE, %s: no conflict (insert %s, commit %s)", name,
               cases[i].what, txkv_strerror(ins), txkv_strerror(rc));
    }
}

int main(void)
{
    uint64_t rng = tap_seed();
    txkv_db *db;
    int bad_get = 0, bad_fwd = 0, bad_bwd = 0, bad_seek = 0, bad_commit = 0, bad_last = 0,
        bad_seek_prev = 0;
    int rounds = (int)(300 * tap_scale());

    for (int i = 0; i < NKEYS; i++) {
        /* lengths 1..4 over a small alphabet: many prefixes of each other */
        klens[i] = 1 + i % 4;
        for (size_t j = 0; j < klens[i]; j++)
            keys[i][j] = (char)('a' + (i / (j + 1) + j) % 5);
        committed[i] = -1;
        order[i] = i;
    }
    /* make keys unique */
    for (int i = 0; i < NKEYS; i++)
        for (int j = 0; j < i; j++)
            if (klens[i] == klens[j] && memcmp(keys[i], keys[j], klens[i]) == 0) {
                keys[i][klens[i]++] = (char)('0' + i % 10);
                keys[i][klens[i]++] = (char)('0' + i / 10 % 10);
                j = -1;
            }
    /* every fifth key padded to 14..19 bytes with 'z' (in no key, so keys stay
     * unique): keys on both sides of the B+tree's 16 inline bytes, which the
     * cursor copies from the leaf, and longer ones it reads from the record */
    for (int i = 0; i < NKEYS; i += 5)
        while (klens[i] < 14 + (size_t)(i / 5 % 6))
            keys[i][klens[i]++] = 'z';
    qsort(order, NKEYS, sizeof order[0], cmp_idx);

    if (txkv_open(NULL, &db))
        bail_out("open");
    for (int r = 0; r < rounds; r++) {
        txkv_txn_options o;
        txkv_txn_options_init(&o);
        o.isolation = 1 + (int)(tap_rand(&rng) % 3);
        txkv_txn *t;
        if (txkv_begin(db, &o, &t))
            bail_out("begin");
        for (int i = 0; i < NKEYS; i++)
            pending[i] = -2;
        int nops = (int)(tap_rand(&rng) % 40);
        for (int n = 0; n < nops; n++) {
            int i = (int)(tap_rand(&rng) % NKEYS);
            if (tap_rand(&rng) % 4 == 0) {
                txkv_del(t, NULL, keys[i], klens[i]);
                pending[i] = -1;
            } else {
                char buf[16];
                int v = (int)(tap_rand(&rng) % 100000);
                int len = snprintf(buf, sizeof buf, "%d", v);
                txkv_put(t, NULL, keys[i], klens[i], buf, (size_t)len);
                pending[i] = v;
            }
        }
        for (int i = 0; i < NKEYS; i++) {
            const void *v;
            size_t vl;
            int rc = txkv_get(t, NULL, keys[i], klens[i], &v, &vl);
            char buf[16];
            if (rc == 0) {
                memcpy(buf, v, vl);
                buf[vl] = 0;
            }
            if (model(i) < 0 ? rc != TXKV_NOTFOUND : (rc != 0 || atoi(buf) != model(i)))
                bad_get++;
        }
        txkv_cursor *c;
        if (txkv_cursor_open(t, NULL, &c))
            bail_out("cursor_open");
        /* forward */
        int p = 0;
        for (int rc = txkv_cursor_seek(c, NULL, 0); rc == 0; rc = txkv_cursor_next(c)) {
            while (p < NKEYS && model(order[p]) < 0)
                p++;
            if (p >= NKEYS || cur_key(c) != order[p])
                bad_fwd++;
            p++;
        }
        while (p < NKEYS && model(order[p]) < 0)
            p++;
        if (p != NKEYS)
            bad_fwd++;
        /* backward from past the end */
        p = NKEYS - 1;
        for (int rc = txkv_cursor_prev(c); rc == 0; rc = txkv_cursor_prev(c)) {
            while (p >= 0 && model(order[p]) < 0)
                p--;
            if (p < 0 || cur_key(c) != order[p])
                bad_bwd++;
            p--;
        }
        while (p >= 0 && model(order[p]) < 0)
            p--;
        if (p != -1)
            bad_bwd++;
        /* from txkv_cursor_last: the same backward walk */
        p = NKEYS - 1;
        for (int rc = txkv_cursor_last(c); rc == 0; rc = txkv_cursor_prev(c)) {
            while (p >= 0 && model(order[p]) < 0)
                p--;
            if (p < 0 || cur_key(c) != order[p])
                bad_last++;
            p--;
        }
        while (p >= 0 && model(order[p]) < 0)
            p--;
        if (p != -1)
            bad_last++;
        /* random seek_prevs (last key <= k) and steps */
        for (int s = 0; s < 10; s++) {
            char sk[6];
            size_t sl = 1 + tap_rand(&rng) % 5;
            for (size_t j = 0; j < sl; j++)
                sk[j] = (char)('a' + tap_rand(&rng) % 6);
            int q = lower(sk, sl); /* first >= sk */
            if (q >= NKEYS || kcmp(keys[order[q]], klens[order[q]], sk, sl) != 0)
                q--; /* last <= sk */
            while (q >= 0 && model(order[q]) < 0)
                q--;
            int rc = txkv_cursor_seek_prev(c, sk, sl);
            if (q < 0 ? rc != TXKV_NOTFOUND : (rc != 0 || cur_key(c) != order[q]))
                bad_seek_prev++;
            if (q < 0) { /* before the start: next comes back to the first */
                int f = 0;
                while (f < NKEYS && model(order[f]) < 0)
                    f++;
                rc = txkv_cursor_next(c);
                if (f >= NKEYS ? rc != TXKV_NOTFOUND : (rc != 0 || cur_key(c) != order[f]))
                    bad_seek_prev++;
                continue;
            }
            for (int st = 0; st < 8; st++) {
                int dir = tap_rand(&rng) % 2 ? 1 : -1;
                int nq = q + dir;
                while (nq >= 0 && nq < NKEYS && model(order[nq]) < 0)
                    nq += dir;
                rc = dir > 0 ? txkv_cursor_next(c) : txkv_cursor_prev(c);
                if (nq < 0 || nq >= NKEYS) {
                    if (rc != TXKV_NOTFOUND)
                        bad_seek_prev++;
                    break;
                }
                if (rc != 0 || cur_key(c) != order[nq])
                    bad_seek_prev++;
                q = nq;
            }
        }
        /* random seeks and steps */
        for (int s = 0; s < 10; s++) {
            char sk[6];
            size_t sl = 1 + tap_rand(&rng) % 5;
            for (size_t j = 0; j < sl; j++)
                sk[j] = (char)('a' + tap_rand(&rng) % 6);
            int q = lower(sk, sl);
            while (q < NKEYS && model(order[q]) < 0)
                q++;
            int rc = txkv_cursor_seek(c, sk, sl);
            if (q >= NKEYS ? rc != TXKV_NOTFOUND : (rc != 0 || cur_key(c) != order[q]))
                bad_seek++;
            int valid = q < NKEYS; /* if not, the cursor is past the end */
            for (int st = 0; st < 8; st++) {
                int dir = tap_rand(&rng) % 2 ? 1 : -1;
                if (!valid && dir > 0)
                    continue;
                int nq = valid ? q + dir : NKEYS - 1;
                while (nq >= 0 && nq < NKEYS && model(order[nq]) < 0)
                    nq += dir > 0 || !valid ? (dir > 0 ? 1 : -1) : -1;
                rc = dir > 0 ? txkv_cursor_next(c) : txkv_cursor_prev(c);
                if (nq < 0 || nq >= NKEYS) {
                    if (rc != TXKV_NOTFOUND)
                        bad_seek++;
                    break; /* off the end: start a new seek */
                }
                if (rc != 0 || cur_key(c) != order[nq])
                    bad_seek++;
                q = nq;
                valid = 1;
            }
        }
        txkv_cursor_close(c);
        /* unpositioned cursors: next is the first key, prev the last */
        if (txkv_cursor_open(t, NULL, &c))
            bail_out("cursor_open");
        int f = 0, l = NKEYS - 1;
        while (f < NKEYS && model(order[f]) < 0)
            f++;
        while (l >= 0 && model(order[l]) < 0)
            l--;
        int rc1 = txkv_cursor_next(c);
        if (f >= NKEYS ? rc1 != TXKV_NOTFOUND : (rc1 != 0 || cur_key(c) != order[f]))
            bad_fwd++;
        txkv_cursor_close(c);
        if (txkv_cursor_open(t, NULL, &c))
            bail_out("cursor_open");
        rc1 = txkv_cursor_prev(c);
        if (l < 0 ? rc1 != TXKV_NOTFOUND : (rc1 != 0 || cur_key(c) != order[l]))
            bad_bwd++;
        rc1 = txkv_cursor_seek_prev(c, NULL, 0);
        if (l < 0 ? rc1 != TXKV_NOTFOUND : (rc1 != 0 || cur_key(c) != order[l]))
            bad_last++;
        txkv_cursor_close(c);
        if (tap_rand(&rng) % 3) {
            int rc = txkv_commit(t);
            if (rc) {
                bad_commit++;
                diag("round %d: commit at isolation %d: %s", r, o.isolation, txkv_strerror(rc));
            } else
                for (int i = 0; i < NKEYS; i++)
                    if (pending[i] != -2)
                        committed[i] = pending[i];
        } else {
            txkv_abort(t);
        }
    }
    ok(bad_get == 0, "gets match the model (%d mismatches)", bad_get);
    ok(bad_fwd == 0, "forward scans match the model (%d mismatches)", bad_fwd);
    ok(bad_bwd == 0, "backward scans match the model (%d mismatches)", bad_bwd);
    ok(bad_seek == 0, "seeks and steps match the model (%d mismatches)", bad_seek);
    ok(bad_last == 0, "txkv_cursor_last and backward walks from it match (%d mismatches)",
       bad_last);
    ok(bad_seek_prev == 0, "seek_prevs (last key <= k) and steps match the model (%d mismatches)",
       bad_seek_prev);
    ok(bad_commit == 0, "uncontended commits succeed (%d failed)", bad_commit);

    /* hash-only keyspaces have no order */
    txkv_ks *hks;
    txkv_txn *t;
    txkv_cursor *c;
    is(txkv_keyspace(db, "h", TXKV_CREATE | TXKV_HASH, &hks), 0, "hash-only keyspace created");
    txkv_begin(db, NULL, &t);
    is(txkv_cursor_open(t, hks, &c), TXKV_NOTSUP, "cursor on a hash-only keyspace: NOTSUP");
    is(txkv_put(t, hks, "k", 1, "v", 1), 0, "put into a hash-only keyspace");
    is(txkv_commit(t), 0, "commit");
    txkv_begin(db, NULL, &t);
    is(txkv_get(t, NULL, "k", 1, NULL, NULL), TXKV_NOTFOUND, "keyspaces are separate");
    is(txkv_get(t, hks, "k", 1, NULL, NULL), 0, "read back from the hash-only keyspace");
    txkv_abort(t);
    txkv_close(db);
    test_ranges(TXKV_OPTIMISTIC);
    test_ranges(TXKV_PESSIMISTIC);
    return done_testing();
}
