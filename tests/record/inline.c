/*
 * inline.c - the record's inline version slot: transitions between inline
 * and out-of-line versions, and memory returning to its baseline.
 *
 * A record made for a value of at most 256 bytes holds that value inline;
 * a later version goes out of line while the slot is still in the chain,
 * and back into the slot once the slot is cut off; the GC moves an
 * out-of-line newest version back into a free slot.  None of that is
 * visible through the API except as values and txkv_stats, so this proves:
 *  1. A long SNAPSHOT reader holding value pointers sees its values,
 *     byte for byte and at the same addresses, while its key is
 *     overwritten many times (through every transition) and after.
 *  2. Values just under, at and over the inline limit, and values that
 *     grow past the slot or shrink into it, read back exactly, through
 *     gets and a cursor, in fresh and old snapshots.
 *  3. Delete and re-insert cycles read back exactly; a snapshot taken
 *     before the delete still sees the value.
 *  4. Reclamation: after N keys are loaded, overwritten (same sizes) many
 *     times while a long reader pins old versions, and the reader ends,
 *     txkv_stats' bytes and versions come back to exactly the figures after
 *     the load (every newest version back inline, every out-of-line one
 *     freed).  Polls with a deadline, never sleeps as synchronisation.
 */
#include "config.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../tap.h"
#include "txkv.h"

#define NKEYS      500
#define DEADLINE_S 30.0

static txkv_db *db;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A value of len bytes derived from (key, gen): every byte checked. */
static void make_val(unsigned char *v, size_t len, int key, int gen)
{
    for (size_t i = 0; i < len; i++)
        v[i] = (unsigned char)(key * 31 + gen * 7 + i);
}

/* Writes k = v in a transaction of its own; v NULL: deletes k. */
static int write1(const char *k, const void *v, size_t vlen)
{
    txkv_txn *t;
    int rc = txkv_begin(db, NULL, &t);
    if (rc)
        return rc;
    rc = v ? txkv_put(t, NULL, k, strlen(k), v, vlen) : txkv_del(t, NULL, k, strlen(k));
    if (rc) {
        txkv_abort(t);
        return rc;
    }
    return txkv_commit(t);
}

static int put1(const char *k, const void *v, size_t vlen)
{
    return write1(k, v, vlen); /* callers pass a buffer, even for 0 bytes */
}

static int del1(const char *k)
{
    return write1(k, NULL, 0);
}

/* Reads k in a fresh transaction: txkv_get's code, or -1 if none began. */
static int get_rc(const char *k)
{
    txkv_txn *t;
    const void *v;
    size_t vl;
    if (txkv_begin(db, NULL, &t))
        return -1;
    int rc = txkv_get(t, NULL, k, strlen(k), &v, &vl);
    txkv_abort(t);
    return rc;
}

/* Reads k in a fresh transaction; 1 if it holds exactly want[0..wlen), by
 * get and by cursor. */
static int reads_back(const char *k, const void *want, size_t wlen)
{
    txkv_txn *t;
    const void *v;
    size_t vl;
    if (txkv_begin(db, NULL, &t))
        return 0;
    int rc = txkv_get(t, NULL, k, strlen(k), &v, &vl);
    int good = rc == 0 && vl == wlen && memcmp(v, want, wlen) == 0;
    /* the cursor path too */
    txkv_cursor *c;
    if (good && txkv_cursor_open(t, NULL, &c) == 0) {
        const void *ck, *cv;
        size_t ckl, cvl;
        good = txkv_cursor_seek(c, k, strlen(k)) == 0 &&
               txkv_cursor_get(c, &ck, &ckl, &cv, &cvl) == 0 && ckl == strlen(k) &&
               memcmp(ck, k, ckl) == 0 && cvl == wlen && memcmp(cv, want, wlen) == 0;
        txkv_cursor_close(c);
    }
    txkv_abort(t);
    return good;
}

static int absent(const char *k)
{
    return get_rc(k) == TXKV_NOTFOUND;
}

static void test_long_reader(void)
{
    unsigned char v0[100], v[100];
    make_val(v0, sizeof v0, 1, 0);
    ok(put1("long", v0, sizeof v0) == 0, "a key made with a 100-byte value");
    txkv_txn *r;
    const void *p;
    size_t pl;
    int rc = txkv_begin(db, NULL, &r);
    rc = rc ? rc : txkv_get(r, NULL, "long", 4, &p, &pl);
    ok(rc == 0 && pl == sizeof v0 && memcmp(p, v0, pl) == 0, "the long reader reads it");
    int bad = 0, badw = 0;
    for (int gen = 1; gen <= 300; gen++) {
        make_val(v, sizeof v, 1, gen);
        if (put1("long", v, sizeof v))
            badw++;
        if (memcmp(p, v0, sizeof v0) != 0)
            bad++; /* its pointer must keep its bytes */
        if (gen % 50 == 0 && !reads_back("long", v, sizeof v))
            bad++;
        if (gen % 37 == 0)
            sched_yield(); /* let the GC prune and promote in between */
    }
    const void *p2;
    size_t pl2;
    rc = txkv_get(r, NULL, "long", 4, &p2, &pl2);
    ok(!badw, "300 overwrites commit (%d failed)", badw);
    ok(!bad, "the reader's value pointer kept its bytes through 300 overwrites (%d bad)", bad);
    ok(rc == 0 && pl2 == sizeof v0 && memcmp(p2, v0, pl2) == 0,
       "a second get in the old snapshot still reads the first value");
    txkv_abort(r);
    make_val(v, sizeof v, 1, 300);
    ok(reads_back("long", v, sizeof v), "a fresh snapshot reads the last value");
}

static void test_sizes(void)
{
    /* sizes around the 256-byte inline limit and the 8-byte slot padding */
    static const size_t sizes[] = {0, 1, 7, 8, 9, 100, 255, 256, 257, 1000};
    unsigned char v[1000], w[1000];
    int bad = 0;
    char k[32];
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        for (size_t j = 0; j < sizeof sizes / sizeof *sizes; j++) {
            snprintf(k, sizeof k, "size-%zu-%zu", i, j);
            make_val(v, sizes[i], (int)i, (int)j);
            make_val(w, sizes[j], (int)j, (int)i + 1);
            /* first value sizes the slot; the second may or may not fit */
            if (put1(k, v, sizes[i]) || !reads_back(k, v, sizes[i]))
                bad++;
            txkv_txn *old;
            const void *p;
            size_t pl;
            if (txkv_begin(db, NULL, &old) || txkv_get(old, NULL, k, strlen(k), &p, &pl))
                bad++;
            for (int gen = 0; gen < 4; gen++) /* through slot and out of line */
                if (put1(k, gen % 2 ? v : w, gen % 2 ? sizes[i] : sizes[j]))
                    bad++;
            if (!reads_back(k, v, sizes[i]))
                bad++;
            if (pl != sizes[i] || memcmp(p, v, pl) != 0)
                bad++;
            txkv_abort(old);
        }
    }
    ok(!bad, "values of 0..1000 bytes over each other read back exactly (%d bad)", bad);
}

static void test_delete_reinsert(void)
{
    unsigned char v[120];
    int bad = 0;
    for (int gen = 0; gen < 50; gen++) {
        make_val(v, sizeof v - (size_t)(gen % 3) * 50, 3, gen);
        size_t len = sizeof v - (size_t)(gen % 3) * 50;
        if (put1("cycle", v, len) || !reads_back("cycle", v, len))
            bad++;
        txkv_txn *old;
        const void *p;
        size_t pl;
        if (txkv_begin(db, NULL, &old) || txkv_get(old, NULL, "cycle", 5, &p, &pl))
            bad++;
        if (del1("cycle") || !absent("cycle"))
            bad++;
        if (txkv_get(old, NULL, "cycle", 5, &p, &pl) || pl != len || memcmp(p, v, len) != 0)
            bad++;
        txkv_abort(old);
        if (gen % 10 == 0)
            sched_yield();
    }
    ok(!bad, "50 delete / re-insert cycles of changing sizes (%d bad)", bad);
}

static int poll_back(uint64_t bytes, uint64_t versions, struct txkv_stats *st, double *waited)
{
    double t0 = now_s();
    for (;;) {
        txkv_stats(db, st);
        if (st->bytes == bytes && st->versions == versions) {
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

static void test_reclamation(void)
{
    txkv_ks *ks;
    txkv_db *first = db;
    /* a database of its own: the figures are the whole database's */
    ok(txkv_open(NULL, &db) == 0 && txkv_keyspace(db, "reclaim", TXKV_CREATE, &ks) == 0,
       "a database and keyspace of its own");
    unsigned char v[100];
    char k[16];
    txkv_txn *t;
    for (int i = 0; i < NKEYS; i++) {
        snprintf(k, sizeof k, "r%05d", i);
        make_val(v, sizeof v, i, 0);
        if (txkv_begin(db, NULL, &t) || txkv_put(t, ks, k, strlen(k), v, sizeof v) ||
            txkv_commit(t)) {
            diag("%s failed", "load");
            exit(1);
        };
    }
    struct txkv_stats base, st;
    txkv_stats(db, &base);
    /* a long reader pins the first values while every key is overwritten */
    txkv_txn *r;
    ok(txkv_begin(db, NULL, &r) == 0, "a long reader begins");
    for (int gen = 1; gen <= 6; gen++)
        for (int i = 0; i < NKEYS; i++) {
            snprintf(k, sizeof k, "r%05d", i);
            make_val(v, sizeof v, i, gen);
            if (txkv_begin(db, NULL, &t) || txkv_put(t, ks, k, strlen(k), v, sizeof v) ||
                txkv_commit(t)) {
                diag("%s failed", "overwrite");
                exit(1);
            };
        }
    txkv_stats(db, &st);
    ok(st.versions >= base.versions + 6 * NKEYS && st.bytes > base.bytes,
       "while it is open the old versions stay (%llu versions, %llu bytes; base %llu, %llu)",
       (unsigned long long)st.versions, (unsigned long long)st.bytes,
       (unsigned long long)base.versions, (unsigned long long)base.bytes);
    int bad = 0;
    for (int i = 0; i < NKEYS; i += 7) {
        const void *p;
        size_t pl;
        snprintf(k, sizeof k, "r%05d", i);
        make_val(v, sizeof v, i, 0);
        if (txkv_get(r, ks, k, strlen(k), &p, &pl) || pl != sizeof v || memcmp(p, v, pl))
            bad++;
    }
    ok(!bad, "the long reader still reads the load's values (%d bad)", bad);
    txkv_abort(r);
    double waited;
    int back = poll_back(base.bytes, base.versions, &st, &waited);
    ok(back,
       "after it ends, bytes and versions return exactly to the load's (%llu, %llu; now %llu, "
       "%llu after %.2f s)",
       (unsigned long long)base.bytes, (unsigned long long)base.versions,
       (unsigned long long)st.bytes, (unsigned long long)st.versions, waited);
    bad = 0;
    for (int i = 0; i < NKEYS; i++) {
        snprintf(k, sizeof k, "r%05d", i);
        make_val(v, sizeof v, i, 6);
        const void *p;
        size_t pl;
        if (txkv_begin(db, NULL, &t) || txkv_get(t, ks, k, strlen(k), &p, &pl) || pl != sizeof v ||
            memcmp(p, v, pl))
            bad++;
        txkv_abort(t);
    }
    ok(!bad, "every key reads its last value after the GC moved it (%d bad)", bad);
    txkv_close(db);
    db = first;
}

int main(void)
{
    plan(15);
    ok(txkv_open(NULL, &db) == 0, "open");
    test_long_reader();
    test_sizes();
    test_delete_reinsert();
    test_reclamation();
    txkv_close(db);
    return 0;
}
