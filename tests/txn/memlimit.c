/*
 * memlimit.c - the memory limit (txkv_options.mem_limit).
 *
 * Proves:
 *  1. fill: committing until a put or a commit fails with TXKV_FULL; a put
 *     that fails with TXKV_FULL fails its transaction (later calls and the
 *     commit answer TXKV_ABORTED); stats.bytes never passes the limit; the
 *     database stays consistent (every committed key reads its value, a
 *     cursor returns exactly the committed keys, stats.keys agrees) and
 *     usable (reads; deletes are accepted while full); deleting half the
 *     data makes room again once the GC has freed it (polled with a
 *     deadline, sched_yield between polls), and new puts then succeed.
 *  2. a large transaction (overwrites, deletes, inserts) whose put hits the
 *     limit in the middle leaves the database exactly as before it: the
 *     full contents compared key by key and value by value, and bytes
 *     unchanged.
 *  3. a large transaction whose puts fitted but whose commit no longer fits
 *     (other transactions filled the memory meanwhile) fails with TXKV_FULL
 *     at commit, leaves the database exactly as before, and its memory
 *     (including records it created while committing) is given back.
 *  4. four threads filling one database at once: bytes stay within the
 *     limit at every sample, and afterwards exactly the keys whose commits
 *     returned 0 are there, with their values.
 *  5. overwriting a live set of a quarter of the limit: a TXKV_FULL caused
 *     by versions still waiting for their grace period goes away once the
 *     GC catches up, and every overwrite gets in (how often it happens is
 *     reported, not judged).
 *  6. limits of 2^63 and more (SIZE_MAX: "unlimited") are no limit: puts
 *     and commits succeed (issue 14: they failed with TXKV_FULL, the limit
 *     was cast to a negative int64), while 2^63 - 1 still is a limit
 *     nothing reaches.
 * Deterministic by TXKV_SEED (value sizes in part 4).
 */
#include "config.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../tap.h"
#include "txkv.h"

#define LIMIT (1u << 20)
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__) || defined(TXKV_DEBUG)
#define DEADLINE_S 20.0
#else
#define DEADLINE_S 5.0
#endif

static uint64_t seed;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The value of key id: vlen bytes, a function of (id, salt). */
static void make_val(unsigned char *v, size_t vlen, uint64_t id, uint64_t salt)
{
    uint64_t x = (id + 1) * 0x9e3779b97f4a7c15ull ^ salt;
    for (size_t j = 0; j < vlen; j++) {
        if (j % 8 == 0)
            x = x * 6364136223846793005ull + 1442695040888963407ull;
        v[j] = (unsigned char)(x >> (j % 8 * 8));
    }
}

static int key_of(char *k, const char *prefix, uint64_t id)
{
    return snprintf(k, 32, "%s-%08llu", prefix, (unsigned long long)id);
}

static uint64_t stat_bytes(txkv_db *db)
{
    struct txkv_stats st;
    txkv_stats(db, &st);
    return st.bytes;
}

static uint64_t stat_keys(txkv_db *db)
{
    struct txkv_stats st;
    txkv_stats(db, &st);
    return st.keys;
}

/* Polls until stats.bytes <= max or the deadline passes; 1 if it held. */
static int poll_bytes_at_most(txkv_db *db, uint64_t max, double *waited)
{
    double t0 = now_s();
    for (;;) {
        uint64_t b = stat_bytes(db);
        *waited = now_s() - t0;
        if (b <= max)
            return 1;
        if (*waited > DEADLINE_S)
            return 0;
        sched_yield();
    }
}

/* ---- a dump of a whole keyspace, to compare states exactly ------------- */

struct dump {
    size_t n, cap;
    struct dent {
        char *k, *v;
        size_t kl, vl;
    } * e;
    int rc; /* 0, or the error that cut the dump short */
};

static void dump_free(struct dump *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->e[i].k);
        free(d->e[i].v);
    }
    free(d->e);
    memset(d, 0, sizeof *d);
}

static void dump_db(txkv_db *db, struct dump *d)
{
    txkv_txn *t;
    txkv_cursor *c;
    memset(d, 0, sizeof *d);
    if ((d->rc = txkv_begin(db, NULL, &t)))
        return;
    if ((d->rc = txkv_cursor_open(t, NULL, &c))) {
        txkv_abort(t);
        return;
    }
    int rc;
    for (rc = txkv_cursor_seek(c, NULL, 0); rc == 0; rc = txkv_cursor_next(c)) {
        const void *k, *v;
        size_t kl, vl;
        if ((rc = txkv_cursor_get(c, &k, &kl, &v, &vl)))
            break;
        if (d->n == d->cap) {
            d->cap = d->cap ? 2 * d->cap : 256;
            d->e = realloc(d->e, d->cap * sizeof *d->e);
            if (!d->e)
                bail_out("out of memory");
        }
        struct dent *e = &d->e[d->n++];
        e->k = malloc(kl);
        e->v = malloc(vl ? vl : 1);
        if (!e->k || !e->v)
            bail_out("out of memory");
        memcpy(e->k, k, kl);
        memcpy(e->v, v, vl);
        e->kl = kl;
        e->vl = vl;
    }
    d->rc = rc == TXKV_NOTFOUND ? 0 : rc;
    txkv_cursor_close(c);
    txkv_abort(t);
}

/* 1 if a and b hold the same keys with the same values; says how they differ. */
static int dumps_equal(const struct dump *a, const struct dump *b)
{
    if (a->rc || b->rc) {
        diag("dump failed: %s / %s", txkv_strerror(a->rc), txkv_strerror(b->rc));
        return 0;
    }
    if (a->n != b->n)
        diag("%zu keys before, %zu after", a->n, b->n);
    for (size_t i = 0; i < a->n && i < b->n; i++) {
        const struct dent *x = &a->e[i], *y = &b->e[i];
        if (x->kl != y->kl || memcmp(x->k, y->k, x->kl) != 0) {
            diag("entry %zu: key %.*s before, %.*s after", i, (int)x->kl, x->k, (int)y->kl, y->k);
            return 0;
        }
        if (x->vl != y->vl || memcmp(x->v, y->v, x->vl) != 0) {
            diag("entry %zu (%.*s): value differs", i, (int)x->kl, x->k);
            return 0;
        }
    }
    return a->n == b->n;
}

/* 1 if every key of d is a committed model key with its value and the count matches. */
struct model {
    const char *prefix;
    uint64_t n;          /* ids 0..n-1 were committed ... */
    const uint8_t *gone; /* ... except those with gone[id] (may be NULL) */
    size_t (*vlen)(uint64_t id);
    uint64_t salt;
};

static int model_check(txkv_db *db, const struct model *m, const char *what)
{
    txkv_txn *t;
    char k[32];
    static unsigned char want[4096];
    uint64_t expect = 0, bad = 0;
    if (txkv_begin(db, NULL, &t))
        return 0;
    for (uint64_t id = 0; id < m->n; id++) {
        int kl = key_of(k, m->prefix, id);
        const void *v;
        size_t vl;
        int rc = txkv_get(t, NULL, k, (size_t)kl, &v, &vl);
        if (m->gone && m->gone[id]) {
            bad += rc != TXKV_NOTFOUND;
            continue;
        }
        expect++;
        size_t wl = m->vlen(id);
        make_val(want, wl, id, m->salt);
        if (rc != 0 || vl != wl || memcmp(v, want, wl) != 0)
            bad++;
    }
    txkv_abort(t);
    ok(bad == 0, "%s: every committed key reads its value, deleted ones are gone (%llu wrong)",
       what, (unsigned long long)bad);
    struct dump d;
    dump_db(db, &d);
    uint64_t ours = 0;
    size_t plen = strlen(m->prefix);
    for (size_t i = 0; i < d.n; i++)
        ours +=
            d.e[i].kl > plen + 1 && memcmp(d.e[i].k, m->prefix, plen) == 0 && d.e[i].k[plen] == '-';
    ok(d.rc == 0 && ours == expect, "%s: a cursor finds exactly the %llu committed keys (%llu)",
       what, (unsigned long long)expect, (unsigned long long)ours);
    dump_free(&d);
    return bad == 0 && ours == expect;
}

/* ---- 1. fill, fail, recover -------------------------------------------- */

#define FILL_VLEN  200
#define FILL_BATCH 8

static size_t fill_vlen(uint64_t id)
{
    (void)id;
    return FILL_VLEN;
}

static void test_fill(void)
{
    txkv_options o;
    txkv_db *db;
    txkv_txn *t;
    unsigned char v[FILL_VLEN];
    char k[32];
    static uint8_t gone[1u << 16];
    struct txkv_stats st;
    uint64_t n = 0, max_bytes = 0;
    int rc = 0, at_put = 0;

    txkv_options_init(&o);
    o.mem_limit = LIMIT;
    if (txkv_open(&o, &db))
        bail_out("txkv_open");
    /* Fill in transactions of FILL_BATCH puts until one fails. */
    while (rc == 0 && n < sizeof gone - FILL_BATCH) {
        if ((rc = txkv_begin(db, NULL, &t)))
            break;
        for (uint64_t i = n; i < n + FILL_BATCH && rc == 0; i++) {
            make_val(v, FILL_VLEN, i, 0);
            rc = txkv_put(t, NULL, k, (size_t)key_of(k, "fill", i), v, FILL_VLEN);
        }
        if (rc) {
            at_put = 1;
            txkv_abort(t);
        } else if ((rc = txkv_commit(t)) == 0) {
            n += FILL_BATCH;
        }
        uint64_t b = stat_bytes(db);
        max_bytes = b > max_bytes ? b : max_bytes;
    }
    is(rc, TXKV_FULL, "filling stops with TXKV_FULL (at a %s) after %llu keys",
       at_put ? "put" : "commit", (unsigned long long)n);
    ok(max_bytes <= LIMIT, "bytes never passed the limit (max %llu of %u)",
       (unsigned long long)max_bytes, LIMIT);

    /* A put that fails fails its transaction: probe with new keys until one does. */
    is(txkv_begin(db, NULL, &t), 0, "begin a probe");
    rc = 0;
    for (uint64_t i = 0; i < 10000 && rc == 0; i++) {
        make_val(v, FILL_VLEN, i, 1);
        rc = txkv_put(t, NULL, k, (size_t)key_of(k, "probe", i), v, FILL_VLEN);
    }
    is(rc, TXKV_FULL, "a put in the full database: TXKV_FULL");
    const void *gv;
    size_t gvl;
    key_of(k, "fill", 0);
    is(txkv_get(t, NULL, k, strlen(k), &gv, &gvl), TXKV_ABORTED, "then get: ABORTED");
    is(txkv_put(t, NULL, "x", 1, "y", 1), TXKV_ABORTED, "put: ABORTED");
    is(txkv_del(t, NULL, k, strlen(k)), TXKV_ABORTED, "del: ABORTED");
    is(txkv_commit(t), TXKV_ABORTED, "commit: ABORTED");
    txkv_stats(db, &st);
    ok(st.aborts_full >= 1, "stats: aborts_full %llu", (unsigned long long)st.aborts_full);
    ok(st.bytes <= LIMIT, "bytes within the limit (%llu)", (unsigned long long)st.bytes);
    is(st.keys, n, "stats: keys is the number committed");

    struct model m = {"fill", n, NULL, fill_vlen, 0};
    model_check(db, &m, "full database");
    txkv_txn_options to;
    txkv_txn_options_init(&to);
    to.flags = TXKV_RDONLY;
    is(txkv_begin(db, &to, &t), 0, "a read-only transaction begins");
    key_of(k, "fill", n - 1);
    ok(txkv_get(t, NULL, k, strlen(k), &gv, &gvl) == 0 && gvl == FILL_VLEN, "and reads");
    is(txkv_commit(t), 0, "and commits");

    /* Deletes are accepted while full: delete every other key. */
    uint64_t full_bytes = stat_bytes(db);
    rc = 0;
    for (uint64_t i = 0; i < n && rc == 0; i += 100) {
        if ((rc = txkv_begin(db, NULL, &t)))
            break;
        for (uint64_t j = i; j < i + 100 && j < n && rc == 0; j++)
            if (j % 2 == 0) {
                rc = txkv_del(t, NULL, k, (size_t)key_of(k, "fill", j));
                gone[j] = 1;
            }
        if (rc)
            txkv_abort(t);
        else
            rc = txkv_commit(t);
    }
    is(rc, 0, "deleting half the keys succeeds while the database is full");
    is(stat_keys(db), n - (n + 1) / 2, "stats: keys went down at once");
    double waited = 0;
    int held = poll_bytes_at_most(db, full_bytes * 6 / 10, &waited);
    ok(held, "the GC gives the memory back within %.0f s (%llu -> %llu bytes after %.3f s)",
       DEADLINE_S, (unsigned long long)full_bytes, (unsigned long long)stat_bytes(db), waited);
    m.gone = gone;
    model_check(db, &m, "after deleting half");

    /* Room again: new keys worth a quarter of the limit (what they account). */
    uint64_t added = 0, target = stat_bytes(db) + LIMIT / 4;
    rc = 0;
    for (uint64_t i = 0; stat_bytes(db) < target && rc == 0; i += FILL_BATCH) {
        if ((rc = txkv_begin(db, NULL, &t)))
            break;
        for (uint64_t j = i; j < i + FILL_BATCH && rc == 0; j++) {
            make_val(v, FILL_VLEN, j, 2);
            rc = txkv_put(t, NULL, k, (size_t)key_of(k, "again", j), v, FILL_VLEN);
        }
        if (rc)
            txkv_abort(t);
        else if ((rc = txkv_commit(t)) == 0)
            added += FILL_BATCH * FILL_VLEN;
    }
    is(rc, 0, "new puts succeed again (%llu keys, %llu bytes now)",
       (unsigned long long)(added / FILL_VLEN), (unsigned long long)stat_bytes(db));
    model_check(db, &m, "after the new puts");
    struct model again = {"again", added / FILL_VLEN, NULL, fill_vlen, 2};
    model_check(db, &again, "the new keys");
    txkv_close(db);
}

/* ---- 2. a large transaction fails at a put in the middle --------------- */

#define BIG_VLEN 1024
#define PRELOAD  300

static size_t big_vlen(uint64_t id)
{
    (void)id;
    return BIG_VLEN;
}

static int preload(txkv_db *db, const char *prefix, uint64_t n, size_t vlen)
{
    static unsigned char v[BIG_VLEN];
    char k[32];
    int rc = 0;
    for (uint64_t i = 0; i < n && rc == 0; i += 10) {
        txkv_txn *t;
        if ((rc = txkv_begin(db, NULL, &t)))
            return rc;
        for (uint64_t j = i; j < i + 10 && j < n && rc == 0; j++) {
            make_val(v, vlen, j, 0);
            rc = txkv_put(t, NULL, k, (size_t)key_of(k, prefix, j), v, vlen);
        }
        rc = rc ? (txkv_abort(t), rc) : txkv_commit(t);
    }
    return rc;
}

static void test_big_put(void)
{
    txkv_options o;
    txkv_db *db;
    txkv_txn *t;
    static unsigned char v[BIG_VLEN];
    char k[32];
    struct dump before, after;
    int rc = 0;

    txkv_options_init(&o);
    o.mem_limit = LIMIT;
    if (txkv_open(&o, &db))
        bail_out("txkv_open");
    is(preload(db, "big", PRELOAD, BIG_VLEN), 0, "preload %d keys of %d bytes", PRELOAD, BIG_VLEN);
    dump_db(db, &before);
    uint64_t bytes_before = stat_bytes(db);

    is(txkv_begin(db, NULL, &t), 0, "begin a large transaction");
    for (uint64_t i = 0; i < 50 && rc == 0; i++) {
        make_val(v, BIG_VLEN, i, 7);
        rc = txkv_put(t, NULL, k, (size_t)key_of(k, "big", i), v, BIG_VLEN);
    }
    for (uint64_t i = 50; i < 100 && rc == 0; i++)
        rc = txkv_del(t, NULL, k, (size_t)key_of(k, "big", i));
    is(rc, 0, "50 overwrites and 50 deletes");
    uint64_t inserted = 0;
    for (uint64_t i = 0; i < 100000 && rc == 0; i++) {
        make_val(v, BIG_VLEN, i, 8);
        if ((rc = txkv_put(t, NULL, k, (size_t)key_of(k, "new", i), v, BIG_VLEN)) == 0)
            inserted++;
    }
    is(rc, TXKV_FULL, "then inserts until a put fails with TXKV_FULL (after %llu)",
       (unsigned long long)inserted);
    ok(inserted > 100, "in the middle of the transaction");
    is(txkv_commit(t), TXKV_ABORTED, "its commit: ABORTED");

    dump_db(db, &after);
    ok(dumps_equal(&before, &after), "the database is exactly as before it (%zu keys)", after.n);
    is(stat_keys(db), PRELOAD, "stats: keys unchanged");
    is(stat_bytes(db), bytes_before, "stats: bytes unchanged");
    model_check(db, &(struct model){"big", PRELOAD, NULL, big_vlen, 0}, "after the large txn");
    dump_free(&before);
    dump_free(&after);
    txkv_close(db);
}

/* ---- 3. a large transaction fails at commit ---------------------------- */

#define A_KEYS 2000

static void test_big_commit(void)
{
    txkv_options o;
    txkv_db *db;
    txkv_txn *a, *t;
    static unsigned char v[BIG_VLEN];
    char k[32];
    struct dump before, after;
    int rc = 0;

    txkv_options_init(&o);
    o.mem_limit = LIMIT;
    if (txkv_open(&o, &db))
        bail_out("txkv_open");
    /* What a new key with an empty value costs, to size the squeeze below. */
    uint64_t b0 = stat_bytes(db);
    is(preload(db, "cal", 100, 0), 0, "calibrate: 100 empty values");
    uint64_t per_key = (stat_bytes(db) - b0) / 100;
    diag("a new key with an empty value accounts %llu bytes", (unsigned long long)per_key);
    is(preload(db, "base", 100, BIG_VLEN), 0, "preload 100 keys of %d bytes", BIG_VLEN);

    is(txkv_begin(db, NULL, &a), 0, "begin transaction A");
    for (uint64_t i = 0; i < A_KEYS && rc == 0; i++)
        rc = txkv_put(a, NULL, k, (size_t)key_of(k, "a", i), "", 0);
    for (uint64_t i = 0; i < 10 && rc == 0; i++) {
        make_val(v, BIG_VLEN, i, 9);
        rc = txkv_put(a, NULL, k, (size_t)key_of(k, "base", i), v, BIG_VLEN);
    }
    for (uint64_t i = 10; i < 20 && rc == 0; i++)
        rc = txkv_del(a, NULL, k, (size_t)key_of(k, "base", i));
    is(rc, 0, "A buffers %d inserts, 10 overwrites and 10 deletes: its puts fit", A_KEYS);

    /* Others fill the memory until A's records no longer fit; its versions
     * alone (empty values) still would, so the commit fails in the middle of
     * creating A's records. */
    uint64_t target = LIMIT - (uint64_t)A_KEYS * per_key * 6 / 10, filled = 0;
    rc = 0;
    while (stat_bytes(db) + BIG_VLEN + 512 < target && rc == 0) {
        if ((rc = txkv_begin(db, NULL, &t)))
            break;
        make_val(v, BIG_VLEN, filled, 0);
        rc = txkv_put(t, NULL, k, (size_t)key_of(k, "other", filled), v, BIG_VLEN);
        rc = rc ? (txkv_abort(t), rc) : txkv_commit(t);
        filled += rc == 0;
    }
    is(rc, 0, "others commit %llu keys meanwhile (%llu bytes now)", (unsigned long long)filled,
       (unsigned long long)stat_bytes(db));
    dump_db(db, &before);
    uint64_t bytes_before = stat_bytes(db);
    struct txkv_stats st0, st1;
    txkv_stats(db, &st0);

    is(txkv_commit(a), TXKV_FULL, "A's commit: TXKV_FULL");
    /* Above bytes_before here: records A created before running out wait for the GC. */
    diag("bytes right after A's commit failed: %llu (before: %llu)",
         (unsigned long long)stat_bytes(db), (unsigned long long)bytes_before);
    dump_db(db, &after);
    ok(dumps_equal(&before, &after), "the database is exactly as before A's commit (%zu keys)",
       after.n);
    txkv_stats(db, &st1);
    is(st1.keys, st0.keys, "stats: keys unchanged");
    is(st1.aborts_full, st0.aborts_full + 1, "stats: aborts_full counted it");
    double waited = 0;
    int held = poll_bytes_at_most(db, bytes_before, &waited);
    ok(held, "A's memory is given back within %.0f s (%llu bytes, before %llu, after %.3f s)",
       DEADLINE_S, (unsigned long long)stat_bytes(db), (unsigned long long)bytes_before, waited);

    is(txkv_begin(db, NULL, &t), 0, "begin");
    const void *gv;
    size_t gvl;
    is(txkv_get(t, NULL, k, (size_t)key_of(k, "a", 0), &gv, &gvl), TXKV_NOTFOUND,
       "A's first key is absent");
    is(txkv_get(t, NULL, k, (size_t)key_of(k, "a", A_KEYS - 1), &gv, &gvl), TXKV_NOTFOUND,
       "A's last key is absent");
    is(txkv_put(t, NULL, k, (size_t)key_of(k, "a", 0), "again", 5), 0,
       "one of A's keys is written");
    is(txkv_commit(t), 0, "and commits");
    is(txkv_begin(db, NULL, &t), 0, "begin");
    ok(txkv_get(t, NULL, k, (size_t)key_of(k, "a", 0), &gv, &gvl) == 0 && gvl == 5 &&
           memcmp(gv, "again", 5) == 0,
       "and reads back");
    txkv_abort(t);
    dump_free(&before);
    dump_free(&after);
    txkv_close(db);
}

/* ---- 4. concurrent fill ------------------------------------------------ */

#define FILLERS         4
#define FILLER_MAX_KEYS 20000

struct filler {
    pthread_t th;
    txkv_db *db;
    int id;
    char prefix[16];
    uint64_t committed; /* ids 0..committed-1 committed */
    uint64_t fulls, max_bytes;
    int err;
};

static size_t conc_vlen(uint64_t id)
{
    return 50 + (size_t)((id * 0x9e3779b97f4a7c15ull ^ seed) >> 40) % 450;
}

static void *filler_main(void *p)
{
    struct filler *f = p;
    static _Thread_local unsigned char v[512];
    char k[32];
    /* Transactions of up to 4 new keys; a failed one is retried with the same
     * ids, so the committed ids stay a prefix 0..committed-1. */
    while (f->fulls < 8 && f->committed < FILLER_MAX_KEYS) {
        txkv_txn *t;
        int rc = txkv_begin(f->db, NULL, &t);
        if (rc) {
            f->err = rc;
            break;
        }
        for (uint64_t i = f->committed; i < f->committed + 4 && rc == 0; i++) {
            size_t vl = conc_vlen(i);
            make_val(v, vl, i, (uint64_t)f->id);
            rc = txkv_put(t, NULL, k, (size_t)key_of(k, f->prefix, i), v, vl);
        }
        rc = rc ? (txkv_abort(t), rc) : txkv_commit(t);
        if (rc == 0)
            f->committed += 4;
        else if (rc == TXKV_FULL)
            f->fulls++;
        else if (!txkv_is_retryable(rc)) {
            f->err = rc;
            break;
        }
        uint64_t b = stat_bytes(f->db);
        f->max_bytes = b > f->max_bytes ? b : f->max_bytes;
    }
    return NULL;
}

static void test_concurrent_fill(void)
{
    txkv_options o;
    txkv_db *db;
    struct filler f[FILLERS];

    txkv_options_init(&o);
    o.mem_limit = 2 * LIMIT;
    if (txkv_open(&o, &db))
        bail_out("txkv_open");
    for (int i = 0; i < FILLERS; i++) {
        memset(&f[i], 0, sizeof f[i]);
        f[i].db = db;
        f[i].id = i;
        snprintf(f[i].prefix, sizeof f[i].prefix, "t%d", i);
        if (pthread_create(&f[i].th, NULL, filler_main, &f[i]))
            bail_out("pthread_create");
    }
    uint64_t total = 0, max_bytes = 0;
    int errs = 0;
    for (int i = 0; i < FILLERS; i++) {
        pthread_join(f[i].th, NULL);
        total += f[i].committed;
        max_bytes = f[i].max_bytes > max_bytes ? f[i].max_bytes : max_bytes;
        errs += f[i].err != 0;
        if (f[i].err)
            diag("filler %d: %s", i, txkv_strerror(f[i].err));
    }
    is(errs, 0, "%d threads filled until TXKV_FULL, no other error", FILLERS);
    ok(max_bytes <= 2 * LIMIT, "bytes never passed the limit (max %llu of %u)",
       (unsigned long long)max_bytes, 2 * LIMIT);
    is(stat_keys(db), total, "stats: keys = the %llu keys committed", (unsigned long long)total);
    for (int i = 0; i < FILLERS; i++) {
        char what[32];
        snprintf(what, sizeof what, "filler %d", i);
        model_check(db, &(struct model){f[i].prefix, f[i].committed, NULL, conc_vlen, (uint64_t)i},
                    what);
    }
    txkv_close(db);
}

/* ---- 5. overwrites far below the limit -------------------------------- */

#define OW_KEYS  1000
#define OW_VLEN  32
#define OW_COUNT 30000

/*
 * A live set at about a quarter of the limit, overwritten one key per
 * transaction.  Superseded versions are freed only after an RCU grace
 * period and count against the limit until then, so a fast writer may
 * outrun reclamation and see TXKV_FULL (how often is reported).  What must
 * hold: after TXKV_FULL, once the GC has caught up (polled with a deadline),
 * the same commit succeeds; every overwrite gets in; the final values are
 * the last ones written.
 */
static void test_overwrite_churn(void)
{
    txkv_options o;
    txkv_db *db;
    unsigned char v[OW_VLEN];
    char k[32];
    uint64_t last[OW_KEYS] = {0};

    txkv_options_init(&o);
    o.mem_limit = LIMIT;
    if (txkv_open(&o, &db))
        bail_out("txkv_open");
    is(preload(db, "ow", OW_KEYS, OW_VLEN), 0, "%d keys of %d bytes", OW_KEYS, OW_VLEN);
    uint64_t live = stat_bytes(db);
    ok(live * 3 < LIMIT, "live set %llu bytes: under a third of the limit",
       (unsigned long long)live);
    long fulls = 0, stuck = 0, other = 0;
    double waited_total = 0, t0 = now_s();
    for (uint64_t n = 1; n <= OW_COUNT && !stuck && !other; n++) {
        uint64_t id = (n * 7919) % OW_KEYS;
        make_val(v, OW_VLEN, id, n);
        for (;;) {
            txkv_txn *t;
            int rc = txkv_begin(db, NULL, &t);
            if (rc == 0) {
                rc = txkv_put(t, NULL, k, (size_t)key_of(k, "ow", id), v, OW_VLEN);
                rc = rc ? (txkv_abort(t), rc) : txkv_commit(t);
            }
            if (rc == 0)
                break;
            if (rc != TXKV_FULL) {
                other = rc;
                break;
            }
            /* Wait for the garbage to be freed, not for time to pass. */
            double w = 0;
            fulls++;
            if (!poll_bytes_at_most(db, LIMIT / 2, &w)) {
                stuck = 1;
                break;
            }
            waited_total += w;
        }
        last[id] = n;
    }
    diag("%d overwrites in %.2f s: %ld failed TXKV_FULL first (%.3f s waiting for the GC)",
         OW_COUNT, now_s() - t0, fulls, waited_total);
    is(other, 0, "no error but TXKV_FULL");
    is(stuck, 0, "after each TXKV_FULL the GC made room within %.0f s", DEADLINE_S);
    /* Final values: key id holds the value written by its last overwrite. */
    txkv_txn *t;
    int bad = 0;
    is(txkv_begin(db, NULL, &t), 0, "begin");
    for (uint64_t id = 0; id < OW_KEYS; id++) {
        const void *gv;
        size_t gvl;
        make_val(v, OW_VLEN, id, last[id]);
        if (txkv_get(t, NULL, k, (size_t)key_of(k, "ow", id), &gv, &gvl) != 0 || gvl != OW_VLEN ||
            memcmp(gv, v, OW_VLEN) != 0)
            bad++;
    }
    txkv_abort(t);
    is(bad, 0, "every key holds its last value");
    is(stat_keys(db), OW_KEYS, "stats: keys %d", OW_KEYS);
    txkv_close(db);
}

static void test_huge_limits(void)
{
    const size_t limits[] = {SIZE_MAX, (size_t)1 << 63, ((size_t)1 << 63) + 1,
                             ((size_t)1 << 63) - 1};
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        txkv_options o;
        txkv_db *db;
        txkv_txn *t;
        txkv_options_init(&o);
        o.mem_limit = limits[i];
        if (txkv_open(&o, &db) != 0)
            bail_out("open with a huge mem_limit");
        int rc = txkv_begin(db, NULL, &t);
        int put = rc ? rc : txkv_put(t, NULL, "k", 1, "value", 5);
        int commit = rc ? rc : txkv_commit(t);
        ok(put == 0 && commit == 0, "mem_limit %zu: put %s, commit %s", limits[i],
           txkv_strerror(put), txkv_strerror(commit));
        txkv_close(db);
    }
}

int main(void)
{
    seed = tap_seed();
    test_huge_limits();
    test_fill();
    test_big_put();
    test_big_commit();
    test_concurrent_fill();
    test_overwrite_churn();
    return done_testing();
}
