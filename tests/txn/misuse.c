/*
 * misuse.c - the public API against bad input and misuse.
 *
 * Proves, one call at a time and on one thread:
 *  - NULL handles and NULL out-parameters are TXKV_INVALID (or ignored where
 *    the call returns nothing), never a crash;
 *  - keys of 0 and 65536 bytes, values of TXKV_MAX_VALUE + 1 bytes (the length
 *    is rejected before the buffer is read: the buffer passed is 16 bytes, so
 *    ASan would catch a read) and a NULL value with a length are
 *    TXKV_INVALID, and the transaction stays usable: its earlier and later
 *    writes commit;
 *  - 1-byte and 65535-byte keys and zero-length values work, through gets
 *    and cursors;
 *  - a failed transaction (TXKV_FULL) answers TXKV_ABORTED to every later
 *    call, cursors included, and txkv_commit on it returns TXKV_ABORTED;
 *  - writes in a TXKV_RDONLY transaction are TXKV_READONLY, reads work;
 *  - keyspaces: cursors on a hash-only keyspace are TXKV_NOTSUP, lookups
 *    without TXKV_CREATE are TXKV_NOTFOUND, other index flags TXKV_EXISTS,
 *    bad names and flags TXKV_INVALID, a keyspace of another database
 *    TXKV_INVALID;
 *  - txkv_open and txkv_begin reject bad options with TXKV_INVALID;
 *  - txkv_run retries retryable failures (a real commit conflict and a
 *    retryable code returned by fn), stops at max_tries, and returns fn's
 *    non-zero value without committing;
 *  - txkv_close with transactions, writes and cursors still open does not
 *    crash or leak (ASan/LSan builds check the leak part);
 *  - the decisions of issue 14, as txkv.h and txkv(3) state them: NULL
 *    val/vlen in a get is an existence check; cursor_seek and seek_prev
 *    with a NULL key and a length are TXKV_INVALID; next (prev) on a
 *    cursor not positioned yet goes to the first (last) key; the default
 *    keyspace is called "default"; aborting a TXKV_RDONLY transaction
 *    counts in aborts_rdonly, not aborts_user; txkv_strerror names a code
 *    and txkv_errmsg describes it.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "../tap.h"
#include "txkv.h"

static txkv_db *db;

/* Commits one key = value in a transaction of its own. */
static int put1(txkv_ks *ks, const char *key, const char *val)
{
    txkv_txn *t;
    int rc = txkv_begin(db, NULL, &t);
    if (rc)
        return rc;
    rc = txkv_put(t, ks, key, strlen(key), val, strlen(val));
    if (rc) {
        txkv_abort(t);
        return rc;
    }
    return txkv_commit(t);
}

/* 1 if key reads as val (a NUL-terminated string) in a new transaction. */
static int reads_as(txkv_ks *ks, const char *key, const char *val)
{
    txkv_txn *t;
    const void *v;
    size_t vl;
    if (txkv_begin(db, NULL, &t))
        return 0;
    int rc = txkv_get(t, ks, key, strlen(key), &v, &vl);
    int good = val ? rc == 0 && vl == strlen(val) && memcmp(v, val, vl) == 0 : rc == TXKV_NOTFOUND;
    txkv_abort(t);
    return good;
}

static void test_null_handles(void)
{
    txkv_txn *t = (txkv_txn *)&t; /* poison: must be reset to NULL */
    txkv_cursor *c;
    txkv_ks *ks;
    const void *v;
    size_t vl;
    struct txkv_stats st;

    is(txkv_open(NULL, NULL), TXKV_INVALID, "open: NULL dbp");
    is(txkv_begin(NULL, NULL, &t), TXKV_INVALID, "begin: NULL db");
    ok(t == NULL, "begin: *txnp is NULL after a failure");
    is(txkv_begin(db, NULL, NULL), TXKV_INVALID, "begin: NULL txnp");
    is(txkv_commit(NULL), TXKV_INVALID, "commit: NULL txn");
    txkv_abort(NULL);
    ok(1, "abort: NULL is ignored");
    is(txkv_get(NULL, NULL, "k", 1, &v, &vl), TXKV_INVALID, "get: NULL txn");
    is(txkv_get_for_update(NULL, NULL, "k", 1, &v, &vl), TXKV_INVALID, "get_for_update: NULL txn");
    is(txkv_put(NULL, NULL, "k", 1, "v", 1), TXKV_INVALID, "put: NULL txn");
    is(txkv_del(NULL, NULL, "k", 1), TXKV_INVALID, "del: NULL txn");
    is(txkv_cursor_open(NULL, NULL, &c), TXKV_INVALID, "cursor_open: NULL txn");
    is(txkv_cursor_seek(NULL, NULL, 0), TXKV_INVALID, "cursor_seek: NULL cursor");
    is(txkv_cursor_next(NULL), TXKV_INVALID, "cursor_next: NULL cursor");
    is(txkv_cursor_prev(NULL), TXKV_INVALID, "cursor_prev: NULL cursor");
    is(txkv_cursor_get(NULL, NULL, NULL, NULL, NULL), TXKV_INVALID, "cursor_get: NULL cursor");
    txkv_cursor_close(NULL);
    ok(1, "cursor_close: NULL is ignored");
    is(txkv_keyspace(NULL, "x", TXKV_CREATE, &ks), TXKV_INVALID, "keyspace: NULL db");
    is(txkv_keyspace(db, "x", TXKV_CREATE, NULL), TXKV_INVALID, "keyspace: NULL ksp");
    is(txkv_keyspace(db, NULL, TXKV_CREATE, &ks), TXKV_INVALID, "keyspace: NULL name");
    memset(&st, 0xff, sizeof st);
    txkv_stats(NULL, &st);
    ok(st.commits == 0 && st.keys == 0, "stats: NULL db gives zeros");
    txkv_stats(db, NULL);
    ok(1, "stats: NULL st is ignored");
    txkv_close(NULL);
    ok(1, "close: NULL is ignored");

    is(txkv_begin(db, NULL, &t), 0, "begin");
    is(txkv_cursor_open(t, NULL, NULL), TXKV_INVALID, "cursor_open: NULL cp");
    is(txkv_get(t, NULL, NULL, 1, &v, &vl), TXKV_INVALID, "get: NULL key");
    is(txkv_put(t, NULL, NULL, 1, "v", 1), TXKV_INVALID, "put: NULL key");
    is(txkv_del(t, NULL, NULL, 1), TXKV_INVALID, "del: NULL key");
    is(txkv_put(t, NULL, "after-null", 10, "ok", 2), 0, "the txn is usable after NULL arguments");
    is(txkv_commit(t), 0, "and commits");
    ok(reads_as(NULL, "after-null", "ok"), "its write is there");
}

static int run_fn_never(txkv_txn *t, void *arg)
{
    (void)t;
    ++*(int *)arg;
    return 0;
}

static void test_lengths(void)
{
    txkv_txn *t;
    txkv_cursor *c;
    const void *v, *k;
    size_t vl, kl;
    static char big[TXKV_MAX_KEY + 1];
    char small[16] = "0123456789abcdef";

    memset(big, 'K', sizeof big);
    is(txkv_begin(db, NULL, &t), 0, "begin");
    is(txkv_put(t, NULL, "before", 6, "1", 1), 0, "a write before the bad calls");
    is(txkv_get(t, NULL, "k", 0, &v, &vl), TXKV_INVALID, "get: 0-byte key");
    is(txkv_get_for_update(t, NULL, "k", 0, &v, &vl), TXKV_INVALID, "get_for_update: 0-byte key");
    is(txkv_put(t, NULL, "k", 0, "v", 1), TXKV_INVALID, "put: 0-byte key");
    is(txkv_del(t, NULL, "k", 0), TXKV_INVALID, "del: 0-byte key");
    is(txkv_get(t, NULL, big, TXKV_MAX_KEY + 1, &v, &vl), TXKV_INVALID, "get: 65536-byte key");
    is(txkv_get_for_update(t, NULL, big, TXKV_MAX_KEY + 1, &v, &vl), TXKV_INVALID,
       "get_for_update: 65536-byte key");
    is(txkv_put(t, NULL, big, TXKV_MAX_KEY + 1, "v", 1), TXKV_INVALID, "put: 65536-byte key");
    is(txkv_del(t, NULL, big, TXKV_MAX_KEY + 1), TXKV_INVALID, "del: 65536-byte key");
    is(txkv_put(t, NULL, "k", 1, small, TXKV_MAX_VALUE + 1), TXKV_INVALID,
       "put: value of TXKV_MAX_VALUE + 1 bytes (rejected before reading it)");
    is(txkv_put(t, NULL, "k", 1, small, SIZE_MAX), TXKV_INVALID, "put: value of SIZE_MAX bytes");
    is(txkv_put(t, NULL, "k", 1, NULL, 1), TXKV_INVALID, "put: NULL value with vlen 1");
    is(txkv_cursor_open(t, NULL, &c), 0, "cursor_open");
    is(txkv_cursor_seek(c, "k", 0), TXKV_INVALID, "cursor_seek: 0-byte key");
    is(txkv_cursor_seek(c, big, TXKV_MAX_KEY + 1), TXKV_INVALID, "cursor_seek: 65536-byte key");
    is(txkv_cursor_seek(c, "before", 6), 0, "the cursor is usable afterwards");
    ok(txkv_cursor_get(c, &k, &kl, &v, &vl) == 0 && kl == 6 && memcmp(k, "before", 6) == 0,
       "and finds the transaction's own write");
    txkv_cursor_close(c);

    /* The limits themselves, and a zero-length value. */
    is(txkv_put(t, NULL, "\x01", 1, "one", 3), 0, "put: 1-byte key");
    big[TXKV_MAX_KEY - 1] = 'Z'; /* differs from every shorter prefix of itself */
    is(txkv_put(t, NULL, big, TXKV_MAX_KEY, "max", 3), 0, "put: 65535-byte key");
    is(txkv_put(t, NULL, "empty", 5, small, 0), 0, "put: zero-length value");
    is(txkv_put(t, NULL, "empty-null", 10, NULL, 0), 0, "put: NULL value of length 0");
    is(txkv_put(t, NULL, "after", 5, "2", 1), 0, "the transaction stays usable");
    vl = 99;
    ok(txkv_get(t, NULL, "empty", 5, &v, &vl) == 0 && vl == 0,
       "own zero-length value reads back with vlen 0");
    is(txkv_commit(t), 0, "commit after the rejected calls");

    is(txkv_begin(db, NULL, &t), 0, "begin a reader");
    ok(txkv_get(t, NULL, "before", 6, &v, &vl) == 0 && vl == 1 && memcmp(v, "1", 1) == 0,
       "the write made before the bad calls committed");
    ok(txkv_get(t, NULL, "after", 5, &v, &vl) == 0 && vl == 1 && memcmp(v, "2", 1) == 0,
       "the write made after them committed");
    is(txkv_get(t, NULL, "k", 1, &v, &vl), TXKV_NOTFOUND, "no rejected write slipped in");
    ok(txkv_get(t, NULL, "\x01", 1, &v, &vl) == 0 && vl == 3 && memcmp(v, "one", 3) == 0,
       "1-byte key reads back");
    ok(txkv_get(t, NULL, big, TXKV_MAX_KEY, &v, &vl) == 0 && vl == 3 && memcmp(v, "max", 3) == 0,
       "65535-byte key reads back");
    big[TXKV_MAX_KEY - 1] = 'K';
    is(txkv_get(t, NULL, big, TXKV_MAX_KEY, &v, &vl), TXKV_NOTFOUND,
       "a 65535-byte key differing in its last byte is another key");
    is(txkv_get(t, NULL, big, TXKV_MAX_KEY - 1, &v, &vl), TXKV_NOTFOUND,
       "its 65534-byte prefix is another key");
    vl = 99;
    ok(txkv_get(t, NULL, "empty", 5, &v, &vl) == 0 && vl == 0, "zero-length value reads back");
    vl = 99;
    ok(txkv_get(t, NULL, "empty-null", 10, &v, &vl) == 0 && vl == 0,
       "NULL zero-length value reads back");
    /* A cursor sees both limit keys with their exact lengths, and the empty values. */
    is(txkv_cursor_open(t, NULL, &c), 0, "cursor_open");
    int seen_one = 0, seen_max = 0, seen_empty = 0, order = 1, n = 0;
    const void *prev = NULL;
    size_t prevlen = 0;
    for (int rc = txkv_cursor_seek(c, NULL, 0); rc == 0; rc = txkv_cursor_next(c)) {
        if (txkv_cursor_get(c, &k, &kl, &v, &vl))
            break;
        n++;
        if (prev) {
            size_t m = prevlen < kl ? prevlen : kl;
            int cmp = memcmp(prev, k, m);
            if (cmp > 0 || (cmp == 0 && prevlen >= kl))
                order = 0;
        }
        prev = k;
        prevlen = kl;
        if (kl == 1 && memcmp(k, "\x01", 1) == 0)
            seen_one = vl == 3;
        if (kl == TXKV_MAX_KEY)
            seen_max = vl == 3 && ((const char *)k)[TXKV_MAX_KEY - 1] == 'Z';
        if (kl == 5 && memcmp(k, "empty", 5) == 0)
            seen_empty = vl == 0;
    }
    ok(seen_one && seen_max && seen_empty,
       "the cursor returns the 1-byte key, the 65535-byte key and the empty value (%d keys)", n);
    ok(order, "in strictly increasing key order");
    txkv_cursor_close(c);
    txkv_abort(t);

    int calls = 0;
    is(txkv_run(NULL, NULL, run_fn_never, &calls, 0), TXKV_INVALID, "run: NULL db");
    is(txkv_run(db, NULL, NULL, &calls, 0), TXKV_INVALID, "run: NULL fn");
    is(txkv_run(db, NULL, run_fn_never, &calls, -1), TXKV_INVALID, "run: negative max_tries");
    is(calls, 0, "fn not called on a rejected txkv_run");
}

static int run_fn_full(txkv_txn *t, void *arg)
{
    static char blob[8192];
    ++*(int *)arg;
    return txkv_put(t, NULL, "big", 3, blob, sizeof blob);
}

static void test_failed_txn(void)
{
    txkv_options o;
    txkv_db *small;
    txkv_txn *t;
    txkv_cursor *c, *c2;
    const void *v;
    size_t vl;
    static char blob[8192];

    txkv_options_init(&o);
    o.mem_limit = 4096;
    is(txkv_open(&o, &small), 0, "open with a 4 KiB memory limit");
    txkv_db *keep = db;
    db = small;
    is(put1(NULL, "a", "committed"), 0, "a small write fits");
    is(txkv_begin(small, NULL, &t), 0, "begin");
    is(txkv_put(t, NULL, "b", 1, "pending", 7), 0, "a pending write");
    is(txkv_cursor_open(t, NULL, &c), 0, "a cursor opened before the failure");
    is(txkv_cursor_seek(c, NULL, 0), 0, "positioned");
    is(txkv_put(t, NULL, "big", 3, blob, sizeof blob), TXKV_FULL, "8 KiB value: TXKV_FULL");
    is(txkv_get(t, NULL, "a", 1, &v, &vl), TXKV_ABORTED, "get on the failed txn: ABORTED");
    is(txkv_get(t, NULL, "b", 1, &v, &vl), TXKV_ABORTED, "get of its own write: ABORTED");
    is(txkv_get_for_update(t, NULL, "a", 1, &v, &vl), TXKV_ABORTED, "get_for_update: ABORTED");
    is(txkv_put(t, NULL, "c", 1, "x", 1), TXKV_ABORTED, "put: ABORTED");
    is(txkv_del(t, NULL, "a", 1), TXKV_ABORTED, "del: ABORTED");
    is(txkv_cursor_open(t, NULL, &c2), TXKV_ABORTED, "cursor_open: ABORTED");
    is(txkv_cursor_seek(c, NULL, 0), TXKV_ABORTED, "cursor_seek on an open cursor: ABORTED");
    is(txkv_cursor_next(c), TXKV_ABORTED, "cursor_next: ABORTED");
    is(txkv_cursor_prev(c), TXKV_ABORTED, "cursor_prev: ABORTED");
    is(txkv_cursor_get(c, NULL, NULL, NULL, NULL), TXKV_ABORTED, "cursor_get: ABORTED");
    is(txkv_put(t, NULL, "c", 1, "x", 1), TXKV_ABORTED, "still ABORTED on a second try");
    /* The cursor is left open on purpose: ending the transaction closes it. */
    is(txkv_commit(t), TXKV_ABORTED, "commit of the failed txn: ABORTED");
    ok(reads_as(NULL, "a", "committed"), "the earlier commit is intact");
    ok(reads_as(NULL, "b", NULL), "the failed txn's pending write is not visible");
    ok(reads_as(NULL, "big", NULL), "nor the write that failed");
    is(put1(NULL, "d", "fits"), 0, "the database is usable afterwards");

    /* The same failure ended with txkv_abort. */
    is(txkv_begin(small, NULL, &t), 0, "begin");
    is(txkv_put(t, NULL, "big", 3, blob, sizeof blob), TXKV_FULL, "TXKV_FULL again");
    is(txkv_put(t, NULL, "e", 1, "x", 1), TXKV_ABORTED, "then ABORTED");
    txkv_abort(t);
    ok(1, "abort of a failed txn");
    /* txkv_run returns TXKV_FULL from fn and does not retry it. */
    int calls = 0;
    is(txkv_run(small, NULL, run_fn_full, &calls, 0), TXKV_FULL,
       "run: fn returning a put's TXKV_FULL gets TXKV_FULL back");
    is(calls, 1, "not retried");
    ok(reads_as(NULL, "big", NULL), "nothing committed");
    struct txkv_stats st;
    txkv_stats(small, &st);
    ok(st.aborts_full >= 2, "stats count the TXKV_FULL failures (%llu)",
       (unsigned long long)st.aborts_full);
    is(st.active_txns, 0, "no transaction is active");
    db = keep;
    txkv_close(small);
}

static void test_readonly(void)
{
    txkv_txn_options to;
    txkv_txn *t;
    txkv_cursor *c;
    const void *v;
    size_t vl;

    is(put1(NULL, "ro", "value"), 0, "a key to read");
    txkv_txn_options_init(&to);
    to.flags = TXKV_RDONLY;
    for (int iso = TXKV_READ_COMMITTED; iso <= TXKV_SERIALIZABLE; iso++) {
        to.isolation = iso;
        is(txkv_begin(db, &to, &t), 0, "begin RDONLY at isolation %d", iso);
        is(txkv_put(t, NULL, "ro", 2, "x", 1), TXKV_READONLY, "put: READONLY");
        is(txkv_del(t, NULL, "ro", 2), TXKV_READONLY, "del: READONLY");
        is(txkv_get_for_update(t, NULL, "ro", 2, &v, &vl), TXKV_READONLY,
           "get_for_update: READONLY");
        ok(txkv_get(t, NULL, "ro", 2, &v, &vl) == 0 && vl == 5 && memcmp(v, "value", 5) == 0,
           "get works and the txn was not failed");
        is(txkv_cursor_open(t, NULL, &c), 0, "cursor_open works");
        is(txkv_cursor_seek(c, "ro", 2), 0, "cursor_seek works");
        txkv_cursor_close(c);
        is(txkv_commit(t), 0, "commit of a RDONLY txn");
    }
    ok(reads_as(NULL, "ro", "value"), "the key is unchanged");
}

static void test_keyspaces(void)
{
    txkv_ks *h, *o, *b, *ks, *b2;
    txkv_txn *t;
    txkv_cursor *c = (txkv_cursor *)&c;
    const void *v;
    size_t vl;
    char name[300];

    ks = (txkv_ks *)&ks;
    is(txkv_keyspace(db, "absent", 0, &ks), TXKV_NOTFOUND, "absent keyspace without CREATE");
    ok(ks == NULL, "*ksp is NULL after a failure");
    is(txkv_keyspace(db, "absent", TXKV_HASH, &ks), TXKV_NOTFOUND, "... also with index flags");
    is(txkv_keyspace(db, "h", TXKV_CREATE | TXKV_HASH, &h), 0, "create a hash-only keyspace");
    is(txkv_keyspace(db, "o", TXKV_CREATE | TXKV_ORDERED, &o), 0, "create an ordered-only one");
    is(txkv_keyspace(db, "b", TXKV_CREATE | TXKV_HASH | TXKV_ORDERED, &b), 0,
       "create one with both");
    is(txkv_keyspace(db, "h", TXKV_ORDERED, &ks), TXKV_EXISTS, "h asked as ORDERED: EXISTS");
    is(txkv_keyspace(db, "h", TXKV_HASH | TXKV_ORDERED, &ks), TXKV_EXISTS,
       "h asked with both: EXISTS");
    is(txkv_keyspace(db, "h", TXKV_CREATE | TXKV_ORDERED, &ks), TXKV_EXISTS,
       "h created again as ORDERED: EXISTS");
    is(txkv_keyspace(db, "o", TXKV_HASH, &ks), TXKV_EXISTS, "o asked as HASH: EXISTS");
    is(txkv_keyspace(db, "b", TXKV_HASH, &ks), TXKV_EXISTS, "b asked as HASH only: EXISTS");
    ok(txkv_keyspace(db, "h", TXKV_HASH, &ks) == 0 && ks == h, "h asked as HASH: the same handle");
    ok(txkv_keyspace(db, "h", TXKV_CREATE | TXKV_HASH, &ks) == 0 && ks == h,
       "CREATE of an existing keyspace with its flags: the same handle");
    ok(txkv_keyspace(db, "b", 0, &ks) == 0 && ks == b, "b by name alone: the same handle");
    ks = NULL;
    int rc = txkv_keyspace(db, "h", 0, &ks);
    diag("h looked up with no index flags: %s (the flags default to both; the header does not "
         "say whether that means EXISTS for a hash-only keyspace)",
         txkv_strerror(rc));

    is(txkv_keyspace(db, "", TXKV_CREATE, &ks), TXKV_INVALID, "empty name: INVALID");
    memset(name, 'n', 256);
    name[256] = 0;
    is(txkv_keyspace(db, name, TXKV_CREATE, &ks), TXKV_INVALID, "256-byte name: INVALID");
    name[255] = 0;
    is(txkv_keyspace(db, name, TXKV_CREATE, &ks), 0, "255-byte name: created");
    is(txkv_keyspace(db, "flags", TXKV_CREATE | 8, &ks), TXKV_INVALID, "unknown flag: INVALID");
    is(txkv_keyspace(db, "flags", TXKV_CREATE | 0x80000000u, &ks), TXKV_INVALID,
       "high unknown flag: INVALID");

    /* The same key in each keyspace is a different key. */
    is(put1(h, "k", "in-h"), 0, "write k in h");
    is(put1(o, "k", "in-o"), 0, "write k in o");
    is(put1(b, "k", "in-b"), 0, "write k in b");
    ok(reads_as(h, "k", "in-h") && reads_as(o, "k", "in-o") && reads_as(b, "k", "in-b"),
       "each keyspace keeps its own k");
    ok(reads_as(NULL, "k", NULL), "the default keyspace has no k");

    is(txkv_begin(db, NULL, &t), 0, "begin");
    is(txkv_cursor_open(t, h, &c), TXKV_NOTSUP, "cursor on a hash-only keyspace: NOTSUP");
    ok(c == NULL, "*cp is NULL after a failure");
    ok(txkv_get(t, h, "k", 1, &v, &vl) == 0 && vl == 4, "the txn is usable after NOTSUP");
    is(txkv_cursor_open(t, o, &c), 0, "cursor on an ordered-only keyspace");
    ok(txkv_cursor_seek(c, NULL, 0) == 0 && txkv_cursor_get(c, NULL, NULL, &v, &vl) == 0 &&
           vl == 4 && memcmp(v, "in-o", 4) == 0,
       "finds its key");
    is(txkv_cursor_next(c), TXKV_NOTFOUND, "and only that key");
    txkv_cursor_close(c);
    is(txkv_put(t, o, "k2", 2, "x", 1), 0, "put in an ordered-only keyspace");
    ok(txkv_get(t, o, "k2", 2, &v, &vl) == 0 && vl == 1, "get of own write there");
    is(txkv_del(t, h, "k", 1), 0, "del in a hash-only keyspace");
    is(txkv_commit(t), 0, "commit");
    ok(reads_as(h, "k", NULL) && reads_as(o, "k2", "x"), "both writes are visible");

    /* A keyspace of another database. */
    txkv_db *db2;
    is(txkv_open(NULL, &db2), 0, "open a second database");
    is(txkv_keyspace(db2, "b", TXKV_CREATE, &b2), 0, "with a keyspace b");
    is(txkv_begin(db, NULL, &t), 0, "begin in the first");
    is(txkv_get(t, b2, "k", 1, &v, &vl), TXKV_INVALID, "get through db2's keyspace: INVALID");
    is(txkv_put(t, b2, "k", 1, "x", 1), TXKV_INVALID, "put through db2's keyspace: INVALID");
    is(txkv_cursor_open(t, b2, &c), TXKV_INVALID, "cursor through db2's keyspace: INVALID");
    ok(txkv_get(t, b, "k", 1, &v, &vl) == 0 && vl == 4, "the txn is still usable");
    txkv_abort(t);
    txkv_close(db2);
}

static void test_options(void)
{
    txkv_options o;
    txkv_txn_options to;
    txkv_db *d = (txkv_db *)&d;
    txkv_txn *t;

    txkv_options_init(&o);
    ok(o.mem_limit == 0 && o.isolation == TXKV_SNAPSHOT && o.cc == TXKV_OPTIMISTIC &&
           o.lock_timeout_us == 0,
       "txkv_options_init defaults");
    int bad_iso[] = {0, -1, 4, 1000};
    for (size_t i = 0; i < sizeof bad_iso / sizeof bad_iso[0]; i++) {
        txkv_options_init(&o);
        o.isolation = bad_iso[i];
        d = (txkv_db *)&d;
        is(txkv_open(&o, &d), TXKV_INVALID, "open: isolation %d is INVALID", bad_iso[i]);
        ok(d == NULL, "*dbp is NULL after a failure");
    }
    int bad_cc[] = {0, -1, 3};
    for (size_t i = 0; i < sizeof bad_cc / sizeof bad_cc[0]; i++) {
        txkv_options_init(&o);
        o.cc = bad_cc[i];
        is(txkv_open(&o, &d), TXKV_INVALID, "open: cc %d is INVALID", bad_cc[i]);
    }
    txkv_options_init(&o);
    o.cc = TXKV_PESSIMISTIC;
    int rc = txkv_open(&o, &d);
    diag("open with cc PESSIMISTIC: %s", txkv_strerror(rc));
    if (rc == 0)
        txkv_close(d);

    txkv_txn_options_init(&to);
    ok(to.isolation == 0 && to.cc == 0 && to.flags == 0 && to.lock_timeout_us == 0,
       "txkv_txn_options_init: all defaults");
    to.isolation = 4;
    is(txkv_begin(db, &to, &t), TXKV_INVALID, "begin: isolation 4");
    to.isolation = -2;
    is(txkv_begin(db, &to, &t), TXKV_INVALID, "begin: isolation -2");
    txkv_txn_options_init(&to);
    to.cc = 3;
    is(txkv_begin(db, &to, &t), TXKV_INVALID, "begin: cc 3");
    txkv_txn_options_init(&to);
    to.flags = 2;
    is(txkv_begin(db, &to, &t), TXKV_INVALID, "begin: unknown flag");
    txkv_txn_options_init(&to);
    to.cc = TXKV_PESSIMISTIC;
    rc = txkv_begin(db, &to, &t);
    ok(rc == 0 || rc == TXKV_NOTSUP, "begin PESSIMISTIC: 0 or NOTSUP (%s)", txkv_strerror(rc));
    if (rc == 0)
        txkv_abort(t);
    struct txkv_stats st;
    txkv_stats(db, &st);
    is(st.active_txns, 0, "rejected begins leave no active transaction");
}

/* ---- txkv_run --------------------------------------------------------- */

struct run_arg {
    int calls;
    int conflicts; /* make the first this many attempts conflict */
    int ret;       /* what fn returns once the conflicts are used up */
};

/* Writes "run"; on the first attempts, commits a competing write of "run"
 * from a second transaction first, so the commit fails first-committer-wins. */
static int run_fn_conflict(txkv_txn *t, void *p)
{
    struct run_arg *a = p;
    char val[24];
    int n = ++a->calls;
    const void *v;
    size_t vl;
    int rc = txkv_get(t, NULL, "run", 3, &v, &vl);
    if (rc && rc != TXKV_NOTFOUND)
        return rc;
    snprintf(val, sizeof val, "attempt-%d", n);
    if ((rc = txkv_put(t, NULL, "run", 3, val, strlen(val))))
        return rc;
    if (n <= a->conflicts && (rc = put1(NULL, "run", "competitor")))
        return rc == TXKV_CONFLICT ? -1000 : rc; /* don't let a test bug look retryable */
    return n <= a->conflicts ? 0 : a->ret;
}

/* Returns a retryable code itself on the first attempts. */
static int run_fn_retcode(txkv_txn *t, void *p)
{
    struct run_arg *a = p;
    int rc = txkv_put(t, NULL, "retcode", 7, "x", 1);
    if (rc)
        return rc;
    return ++a->calls <= a->conflicts ? TXKV_CONFLICT : a->ret;
}

static void test_run(void)
{
    struct run_arg a = {0, 2, 0};
    struct txkv_stats st0, st1;

    txkv_stats(db, &st0);
    is(txkv_run(db, NULL, run_fn_conflict, &a, 0), 0, "run: commits after two conflicts");
    is(a.calls, 3, "fn ran three times");
    ok(reads_as(NULL, "run", "attempt-3"), "the third attempt's write committed");
    txkv_stats(db, &st1);
    is(st1.aborts_conflict - st0.aborts_conflict, 2, "stats: two conflicts");

    a = (struct run_arg){0, 100, 0};
    is(txkv_run(db, NULL, run_fn_conflict, &a, 3), TXKV_CONFLICT,
       "run with max_tries 3: CONFLICT after three conflicts");
    is(a.calls, 3, "fn ran exactly three times");
    ok(reads_as(NULL, "run", "competitor"), "only the competitor's write is there");

    a = (struct run_arg){0, 0, 42};
    txkv_stats(db, &st0);
    is(txkv_run(db, NULL, run_fn_conflict, &a, 0), 42, "run: fn's 42 is returned");
    is(a.calls, 1, "fn ran once");
    ok(reads_as(NULL, "run", "competitor"), "fn's write was not committed");
    txkv_stats(db, &st1);
    is(st1.commits, st0.commits, "stats: no commit");

    a = (struct run_arg){0, 1, -1000};
    is(txkv_run(db, NULL, run_fn_conflict, &a, 0), -1000,
       "run: a non-retryable value after a conflict is returned");
    is(a.calls, 2, "after two calls");

    a = (struct run_arg){0, 2, 0};
    is(txkv_run(db, NULL, run_fn_retcode, &a, 0), 0, "run: fn returning CONFLICT is retried");
    is(a.calls, 3, "fn ran three times");
    ok(reads_as(NULL, "retcode", "x"), "and the last attempt committed");

    a = (struct run_arg){0, 0, TXKV_INVALID};
    is(txkv_run(db, NULL, run_fn_retcode, &a, 0), TXKV_INVALID,
       "run: fn returning INVALID is not retried");
    is(a.calls, 1, "fn ran once");

    txkv_stats(db, &st1);
    is(st1.active_txns, 0, "no transaction is left active");
}

/* Transactions, a pending write and cursors still open at close: the
 * contract calls it a caller bug that must not corrupt memory; under ASan
 * this also proves nothing leaks. */
/* txkv_close frees a B+tree-only keyspace's records while it walks the
 * tree; keys longer than the tree keeps inline point into the records, so
 * each must leave the tree before it is freed (ASan caught a read of a
 * freed key here, found by fuzz-api). */
static void test_close_tree_only(void)
{
    txkv_db *d;
    txkv_ks *ks;
    txkv_txn *t;
    is(txkv_open(NULL, &d), 0, "open");
    is(txkv_keyspace(d, "ordered", TXKV_CREATE | TXKV_ORDERED, &ks), 0, "a B+tree-only keyspace");
    is(txkv_begin(d, NULL, &t), 0, "begin");
    int rc = 0;
    for (int i = 0; i < 300 && !rc; i++) {
        char k[64];
        snprintf(k, sizeof k, "long-key-sharing-a-prefix-%06d", i);
        rc = txkv_put(t, ks, k, strlen(k), "v", 1);
    }
    is(rc, 0, "300 long keys with a shared prefix");
    is(txkv_commit(t), 0, "commit");
    txkv_close(d);
    ok(1, "close of a B+tree-only keyspace with long keys returned");
}

static void test_close_open(void)
{
    txkv_db *d;
    txkv_txn *t1, *t2, *t3, *t4;
    txkv_cursor *c1, *c2;
    txkv_txn_options to;
    txkv_options o;

    txkv_options_init(&o);
    o.mem_limit = 1 << 20;
    is(txkv_open(&o, &d), 0, "open");
    txkv_db *keep = db;
    db = d;
    for (int i = 0; i < 100; i++) {
        char k[16];
        snprintf(k, sizeof k, "key%03d", i);
        put1(NULL, k, "v");
    }
    db = keep;
    txkv_txn_options_init(&to);
    is(txkv_begin(d, NULL, &t1), 0, "txn 1: pending writes");
    is(txkv_put(t1, NULL, "new", 3, "pending", 7), 0, "a pending write");
    is(txkv_del(t1, NULL, "key000", 6), 0, "a pending delete");
    is(txkv_begin(d, NULL, &t2), 0, "txn 2: open cursors");
    is(txkv_cursor_open(t2, NULL, &c1), 0, "cursor 1");
    is(txkv_cursor_seek(c1, "key050", 6), 0, "positioned");
    is(txkv_cursor_open(t2, NULL, &c2), 0, "cursor 2, unpositioned");
    (void)c2;
    to.flags = TXKV_RDONLY;
    to.isolation = TXKV_SERIALIZABLE;
    is(txkv_begin(d, &to, &t3), 0, "txn 3: read-only, serializable");
    is(txkv_begin(d, NULL, &t4), 0, "txn 4: failed");
    static char blob[2 << 20];
    is(txkv_put(t4, NULL, "big", 3, blob, sizeof blob), TXKV_FULL, "fails with TXKV_FULL");
    struct txkv_stats st;
    txkv_stats(d, &st);
    is(st.active_txns, 4, "four transactions active");
    txkv_close(d);
    ok(1, "close with four transactions open returned");
}

static void test_decisions(void)
{
    txkv_txn *t;
    txkv_cursor *c;
    txkv_ks *ks, *ks2;
    const void *v, *k;
    size_t vl, kl;
    struct txkv_stats st0, st;

    is(put1(NULL, "dec-b", "2"), 0, "put dec-b");
    is(put1(NULL, "dec-a", "1"), 0, "put dec-a");
    is(txkv_begin(db, NULL, &t), 0, "begin");
    is(txkv_get(t, NULL, "dec-a", 5, NULL, NULL), 0, "get with NULL val and vlen: 0 (exists)");
    is(txkv_get(t, NULL, "dec-x", 5, NULL, NULL), TXKV_NOTFOUND, "... NOTFOUND (absent)");
    v = NULL;
    ok(txkv_get(t, NULL, "dec-a", 5, &v, NULL) == 0 && v && memcmp(v, "1", 1) == 0,
       "get with NULL vlen only: the value");
    vl = 9;
    ok(txkv_get(t, NULL, "dec-a", 5, NULL, &vl) == 0 && vl == 1, "get with NULL val only: vlen");
    is(txkv_get_for_update(t, NULL, "dec-a", 5, NULL, NULL), 0, "get_for_update with NULL outs");
    is(txkv_cursor_open(t, NULL, &c), 0, "cursor_open");
    is(txkv_cursor_get(c, &k, &kl, &v, &vl), TXKV_NOTFOUND, "cursor_get before positioning");
    is(txkv_cursor_seek(c, NULL, 5), TXKV_INVALID, "cursor_seek(c, NULL, 5): INVALID");
    is(txkv_cursor_seek_prev(c, NULL, 5), TXKV_INVALID, "cursor_seek_prev(c, NULL, 5): INVALID");
    is(txkv_cursor_next(c), 0, "next on a cursor not positioned yet: 0");
    is(txkv_cursor_get(c, &k, &kl, NULL, NULL), 0, "positioned");
    const void *fk = k;
    size_t fkl = kl;
    is(txkv_cursor_seek(c, NULL, 0), 0, "seek to the first key");
    ok(txkv_cursor_get(c, &k, &kl, NULL, NULL) == 0 && kl == fkl && memcmp(k, fk, kl) == 0,
       "next on an unpositioned cursor is the first key");
    txkv_cursor_close(c);
    is(txkv_cursor_open(t, NULL, &c), 0, "cursor_open");
    is(txkv_cursor_prev(c), 0, "prev on a cursor not positioned yet: 0");
    is(txkv_cursor_get(c, &k, &kl, NULL, NULL), 0, "positioned");
    const void *lk = k;
    size_t lkl = kl;
    is(txkv_cursor_last(c), 0, "last");
    ok(txkv_cursor_get(c, &k, &kl, NULL, NULL) == 0 && kl == lkl && memcmp(k, lk, kl) == 0,
       "prev on an unpositioned cursor is the last key");
    txkv_cursor_close(c);
    txkv_abort(t);

    is(txkv_keyspace(db, "default", 0, &ks), 0, "the default keyspace is called \"default\"");
    is(txkv_keyspace(db, "default", TXKV_CREATE | TXKV_HASH | TXKV_ORDERED, &ks2), 0,
       "creating \"default\" finds it");
    ok(ks == ks2, "the same keyspace");
    is(txkv_keyspace(db, "default", TXKV_HASH, &ks2), TXKV_EXISTS, "it has both indexes");
    ok(reads_as(ks, "dec-a", "1"), "what NULL wrote reads through \"default\"");
    is(put1(ks, "dec-c", "3"), 0, "a write through \"default\"");
    ok(reads_as(NULL, "dec-c", "3"), "reads through NULL");

    txkv_txn_options o;
    txkv_txn_options_init(&o);
    o.flags = TXKV_RDONLY;
    txkv_stats(db, &st0);
    for (int i = 0; i < 3; i++) {
        txkv_begin(db, &o, &t);
        txkv_get(t, NULL, "dec-a", 5, NULL, NULL);
        txkv_abort(t);
    }
    txkv_begin(db, NULL, &t);
    txkv_abort(t);
    txkv_stats(db, &st);
    is(st.aborts_rdonly - st0.aborts_rdonly, 3, "read-only aborts count in aborts_rdonly");
    is(st.aborts_user - st0.aborts_user, 1, "and not in aborts_user (one read-write abort)");

    is_str(txkv_strerror(TXKV_CONFLICT), "CONFLICT", "txkv_strerror names the code");
    ok(strstr(txkv_errmsg(TXKV_CONFLICT), "conflict") != NULL, "txkv_errmsg describes it: %s",
       txkv_errmsg(TXKV_CONFLICT));
}

int main(void)
{
    tap_seed();
    if (txkv_open(NULL, &db) != 0)
        bail_out("txkv_open failed");
    test_null_handles();
    test_lengths();
    test_failed_txn();
    test_readonly();
    test_keyspaces();
    test_options();
    test_run();
    test_close_tree_only();
    test_close_open();
    test_decisions();
    txkv_close(db);
    return done_testing();
}
