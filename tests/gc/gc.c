/*
 * gc.c - version garbage collection keeps memory bounded, and never
 * takes a version a live snapshot can still read.
 *
 * Proves, on one database of NKEYS keys:
 *  1. Overwriting the keys about a million times in all (scaled down under
 *     sanitizers) with no long reader keeps txkv_stats().versions below
 *     10 x keys at every sample: old versions are unlinked as fast as they
 *     are made; and once the writes stop, gc_freed catches up within a
 *     deadline (they are freed after an RCU grace period).
 *  2. With one SNAPSHOT transaction kept open, further overwrites are all
 *     kept (versions >= their number + one visible version per key), the
 *     open transaction still reads exactly the values of its snapshot,
 *     through gets and through a cursor, and oldest_snapshot_age_us > 0;
 *     keys deleted meanwhile stay readable to it (with their old values,
 *     across several GC periods) and are gone for a fresh snapshot.
 *  3. After it ends, versions fall back below 10 x keys within a deadline
 *     (the GC thread runs every 10-50 ms; the test polls txkv_stats with
 *     sched_yield until the condition holds, and fails if the deadline
 *     passes: polling for a condition, not sleeping for synchronisation).
 *  4. Deleting every key makes keys 0 at once, and within a deadline no
 *     version is left and bytes are back to the baseline measured right
 *     after txkv_open.  Slack on bytes: max(4 KiB, 1% of the peak).  txkv
 *     accounts records and versions only (keys, values, a fixed per-record
 *     index share), and every one of them is freed once the GC has retired
 *     the deleted records, so the expected value is the baseline exactly;
 *     the slack only keeps the test from depending on that accounting being
 *     exact to the byte.
 *  5. The keys can be written again afterwards.
 * One writer thread; a commit that fails with a retryable code is retried
 * (the GC latches records while pruning) and the retries are reported.
 * Deterministic by TXKV_SEED (the choice of keys overwritten).
 */
#include "config.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../tap.h"
#include "txkv.h"

#define NKEYS         1000
#define KLEN          12
#define VLEN          32
#define BATCH         10 /* puts per transaction */
#define BOUND         (10 * NKEYS)
#define PINNED_ROUNDS 20  /* overwrites of every key while the long reader is open */
#define NDEL          100 /* keys deleted while it is open */

/* Sanitizer builds are 3-15x slower: do fewer overwrites, keep the point. */
#if defined(__SANITIZE_THREAD__)
#define OVERWRITES 100000
#define DEADLINE_S 20.0
#elif defined(__SANITIZE_ADDRESS__) || defined(TXKV_DEBUG)
#define OVERWRITES 250000
#define DEADLINE_S 20.0
#else
#define OVERWRITES 1000000
#define DEADLINE_S 5.0
#endif

static txkv_db *db;
static uint64_t gen[NKEYS]; /* the committed generation of each key */

static void make_key(char *k, int i)
{
    snprintf(k, KLEN + 1, "gc-key-%05u", (unsigned)i % 100000u);
}

static void make_val(unsigned char *v, int i, uint64_t g)
{
    uint64_t id = (uint64_t)i, x = id * 0x9e3779b97f4a7c15ull ^ g;
    memcpy(v, &id, sizeof id);
    memcpy(v + 8, &g, sizeof g);
    for (int j = 16; j < VLEN; j++)
        v[j] = (unsigned char)(x >> (j % 8 * 8));
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Commits puts of the given (distinct) keys at gen[i] + 1; returns 0 or the error. */
static int overwrite_once(const int *ids, int n)
{
    txkv_txn *t;
    char k[KLEN + 1];
    unsigned char v[VLEN];
    int rc = txkv_begin(db, NULL, &t);
    if (rc)
        return rc;
    for (int j = 0; j < n; j++) {
        make_key(k, ids[j]);
        make_val(v, ids[j], gen[ids[j]] + 1);
        if ((rc = txkv_put(t, NULL, k, KLEN, v, VLEN))) {
            txkv_abort(t);
            return rc;
        }
    }
    if ((rc = txkv_commit(t)))
        return rc;
    for (int j = 0; j < n; j++)
        gen[ids[j]]++;
    return 0;
}

/* The test has one writer, but TXKV_CONFLICT is retryable by contract (the
 * GC latches records briefly while pruning): retry, and count how often. */
static long retries;

static int overwrite(const int *ids, int n)
{
    int rc;
    for (int tries = 0; tries < 1000; tries++) {
        if (!txkv_is_retryable(rc = overwrite_once(ids, n)))
            return rc;
        retries++;
    }
    return rc;
}

/* Deletes keys from .. from + n - 1 in one transaction, retried like overwrite(). */
static int delete_range(int from, int n)
{
    int rc = 0;
    for (int tries = 0; tries < 1000; tries++) {
        txkv_txn *t;
        char k[KLEN + 1];
        if ((rc = txkv_begin(db, NULL, &t)))
            return rc;
        for (int j = from; j < from + n && !rc; j++) {
            make_key(k, j);
            rc = txkv_del(t, NULL, k, KLEN);
        }
        if (rc) {
            txkv_abort(t);
            return rc;
        }
        if (!txkv_is_retryable(rc = txkv_commit(t)))
            return rc;
        retries++;
    }
    return rc;
}

/* Polls txkv_stats until cond holds or the deadline passes.  1 if it held. */
static int poll_stats(int (*cond)(const struct txkv_stats *, uint64_t), uint64_t arg,
                      struct txkv_stats *st, double *waited)
{
    double t0 = now_s(), deadline = t0 + DEADLINE_S;
    for (;;) {
        txkv_stats(db, st);
        if (cond(st, arg)) {
            *waited = now_s() - t0;
            return 1;
        }
        if (now_s() > deadline) {
            *waited = now_s() - t0;
            return 0;
        }
        sched_yield();
    }
}

static int versions_bounded(const struct txkv_stats *st, uint64_t bound)
{
    return st->versions < bound;
}

static int freed_at_least(const struct txkv_stats *st, uint64_t min)
{
    return st->gc_freed >= min;
}

/* Everything deleted has been freed: no version left, bytes back to max. */
static int drained(const struct txkv_stats *st, uint64_t max)
{
    return st->bytes <= max && st->versions == 0;
}

/* Checks every key against want[] in t (absent if gone[i]): by get and by a
 * full cursor scan. */
static void check_snapshot(txkv_txn *t, const uint64_t *want, const uint8_t *gone, const char *what)
{
    char k[KLEN + 1];
    unsigned char v[VLEN];
    const void *gv, *gk;
    size_t vl, kl;
    int bad_get = 0, bad_scan = 0, n = 0;

    for (int i = 0; i < NKEYS; i++) {
        make_key(k, i);
        make_val(v, i, want[i]);
        int rc = txkv_get(t, NULL, k, KLEN, &gv, &vl);
        if (gone && gone[i])
            bad_get += rc != TXKV_NOTFOUND;
        else if (rc != 0 || vl != VLEN || memcmp(gv, v, VLEN) != 0)
            bad_get++;
    }
    ok(bad_get == 0, "%s: every get returns the snapshot's value (%d wrong)", what, bad_get);

    txkv_cursor *c;
    if (txkv_cursor_open(t, NULL, &c) != 0) {
        ok(0, "%s: cursor_open", what);
        return;
    }
    int i = 0, want_n = 0;
    for (int j = 0; j < NKEYS; j++)
        want_n += !(gone && gone[j]);
    for (int rc = txkv_cursor_seek(c, NULL, 0); rc == 0; rc = txkv_cursor_next(c), n++, i++) {
        while (i < NKEYS && gone && gone[i])
            i++;
        if (txkv_cursor_get(c, &gk, &kl, &gv, &vl) != 0 || i >= NKEYS) {
            bad_scan++;
            break;
        }
        make_key(k, i);
        make_val(v, i, want[i]);
        if (kl != KLEN || memcmp(gk, k, KLEN) != 0 || vl != VLEN || memcmp(gv, v, VLEN) != 0)
            bad_scan++;
    }
    txkv_cursor_close(c);
    ok(bad_scan == 0 && n == want_n,
       "%s: a cursor scan returns the %d keys in order with the "
       "snapshot's values (%d keys, %d wrong)",
       what, want_n, n, bad_scan);
}

int main(void)
{
    uint64_t rng = tap_seed();
    struct txkv_stats st;
    int ids[BATCH];
    double t0, waited = 0;

    if (txkv_open(NULL, &db) != 0)
        bail_out("txkv_open failed");
    txkv_stats(db, &st);
    uint64_t base_bytes = st.bytes;
    diag("baseline after open: %llu bytes, %llu versions", (unsigned long long)base_bytes,
         (unsigned long long)st.versions);

    /* Load. */
    int rc = 0;
    for (int i = 0; i < NKEYS && !rc; i += BATCH) {
        for (int j = 0; j < BATCH; j++)
            ids[j] = i + j;
        rc = overwrite(ids, BATCH);
    }
    is(rc, 0, "loaded %d keys", NKEYS);
    txkv_stats(db, &st);
    is(st.keys, NKEYS, "stats: %d keys", NKEYS);

    /* 1. Overwrites with no long reader: versions bounded throughout. */
    t0 = now_s();
    uint64_t maxv = 0, samples = 0, peak_bytes = 0, max_outstanding = 0;
    int failed = 0;
    long done;
    for (done = 0; done < OVERWRITES && !failed; done += BATCH) {
        for (int j = 0; j < BATCH; j++) {
            ids[j] = (int)(tap_rand(&rng) % NKEYS);
            for (int m = 0; m < j; m++)
                if (ids[m] == ids[j]) { /* distinct keys: draw again */
                    j--;
                    break;
                }
        }
        if ((rc = overwrite(ids, BATCH)) != 0) {
            failed = 1;
            break;
        }
        if ((done / BATCH) % 32 == 0) {
            txkv_stats(db, &st);
            samples++;
            if (st.versions > maxv)
                maxv = st.versions;
            uint64_t outstanding = NKEYS + (uint64_t)done + BATCH - st.gc_freed;
            if (outstanding > max_outstanding)
                max_outstanding = outstanding;
            if (st.bytes > peak_bytes)
                peak_bytes = st.bytes;
        }
    }
    ok(!failed, "%d overwrites committed (%s)", OVERWRITES, txkv_strerror(rc));
    diag("versions made and not yet freed (made - gc_freed): max %llu",
         (unsigned long long)max_outstanding);
    ok(maxv < BOUND, "versions stayed below %d in %llu samples (max %llu)", BOUND,
       (unsigned long long)samples, (unsigned long long)maxv);
    txkv_stats(db, &st);
    diag("%d overwrites in %.2f s; after: %llu versions, %llu keys, %llu bytes, %llu gc_freed",
         OVERWRITES, now_s() - t0, (unsigned long long)st.versions, (unsigned long long)st.keys,
         (unsigned long long)st.bytes, (unsigned long long)st.gc_freed);
    /* Versions are freed after an RCU grace period: gc_freed catches up once
     * the writes stop.  (Every version made but the one per key still linked,
     * less the BOUND a chain may still hold.) */
    uint64_t made = NKEYS + (uint64_t)done;
    int held = poll_stats(freed_at_least, made - BOUND, &st, &waited);
    ok(held, "gc_freed reaches %llu within %.0f s (%llu after %.3f s)",
       (unsigned long long)(made - BOUND), DEADLINE_S, (unsigned long long)st.gc_freed, waited);

    /* 2. One long reader pins its snapshot. */
    static uint64_t want[NKEYS];
    txkv_txn *reader;
    txkv_txn_options to;
    txkv_txn_options_init(&to);
    to.isolation = TXKV_SNAPSHOT;
    is(txkv_begin(db, &to, &reader), 0, "begin the long reader");
    memcpy(want, gen, sizeof want);
    check_snapshot(reader, want, NULL, "long reader at begin");
    txkv_stats(db, &st);
    uint64_t v_before = st.versions;
    rc = 0;
    for (int r = 0; r < PINNED_ROUNDS && !rc; r++)
        for (int i = 0; i < NKEYS && !rc; i += BATCH) {
            for (int j = 0; j < BATCH; j++)
                ids[j] = i + j;
            rc = overwrite(ids, BATCH);
        }
    is(rc, 0, "%d more overwrites committed while it is open", PINNED_ROUNDS * NKEYS);
    txkv_stats(db, &st);
    diag("versions %llu -> %llu while pinned", (unsigned long long)v_before,
         (unsigned long long)st.versions);
    ok(st.versions >= (uint64_t)(PINNED_ROUNDS + 1) * NKEYS,
       "versions grew: every overwrite since the snapshot is kept (%llu >= %d)",
       (unsigned long long)st.versions, (PINNED_ROUNDS + 1) * NKEYS);
    ok(st.active_txns >= 1, "stats: active_txns %llu", (unsigned long long)st.active_txns);
    ok(st.oldest_snapshot_age_us > 0, "stats: oldest_snapshot_age_us %llu > 0",
       (unsigned long long)st.oldest_snapshot_age_us);
    if (st.bytes > peak_bytes)
        peak_bytes = st.bytes;
    check_snapshot(reader, want, NULL, "long reader after the overwrites");

    /* 2b. Keys deleted while it is open: the GC must not take their records
     * (or the versions before the tombstones) out from under it.  It keeps
     * reading them for several GC periods (10-50 ms). */
    static uint8_t gone[NKEYS];
    rc = 0;
    for (int i = 0; i < NDEL && !rc; i += 100)
        rc = delete_range(i, 100);
    memset(gone, 1, NDEL);
    is(rc, 0, "deleted %d keys while it is open", NDEL);
    int bad = 0;
    long rounds = 0;
    double until = now_s() + 0.2;
    do {
        for (int i = 0; i < NDEL; i++) {
            char k[KLEN + 1];
            unsigned char v[VLEN];
            const void *gv;
            size_t gvl;
            make_key(k, i);
            make_val(v, i, want[i]);
            if (txkv_get(reader, NULL, k, KLEN, &gv, &gvl) != 0 || gvl != VLEN ||
                memcmp(gv, v, VLEN) != 0)
                bad++;
        }
        rounds++;
        sched_yield();
    } while (now_s() < until);
    ok(bad == 0, "for 200 ms (%ld rounds) it still reads the deleted keys' old values", rounds);
    check_snapshot(reader, want, NULL, "long reader after the deletes");
    txkv_txn *fresh;
    is(txkv_begin(db, &to, &fresh), 0, "begin a fresh reader");
    check_snapshot(fresh, gen, gone, "fresh reader");
    txkv_abort(fresh);
    is(txkv_commit(reader), 0, "end the long reader");
    txkv_stats(db, &st);
    is(st.keys, NKEYS - NDEL, "stats: keys %d", NKEYS - NDEL);

    /* 3. Back to bounded once it has ended. */
    held = poll_stats(versions_bounded, BOUND, &st, &waited);
    ok(held, "versions back below %d within %.0f s (%llu after %.3f s)", BOUND, DEADLINE_S,
       (unsigned long long)st.versions, waited);
    is(st.active_txns, 0, "no active transaction");
    is(st.oldest_snapshot_age_us, 0, "oldest_snapshot_age_us is 0 with no snapshot");

    /* 4. Delete everything. */
    rc = 0;
    for (int i = 0; i < NKEYS && !rc; i += 100)
        rc = delete_range(i, 100);
    is(rc, 0, "deleted every key");
    txkv_stats(db, &st);
    is(st.keys, 0, "stats: keys is 0 at once");
    uint64_t slack = peak_bytes / 100 > 4096 ? peak_bytes / 100 : 4096;
    held = poll_stats(drained, base_bytes + slack, &st, &waited);
    ok(held,
       "no version left and bytes back to the baseline %llu + %llu within %.0f s "
       "(%llu versions, %llu bytes after %.3f s; peak %llu)",
       (unsigned long long)base_bytes, (unsigned long long)slack, DEADLINE_S,
       (unsigned long long)st.versions, (unsigned long long)st.bytes, waited,
       (unsigned long long)peak_bytes);

    txkv_txn *t;
    txkv_cursor *c;
    is(txkv_begin(db, NULL, &t), 0, "begin");
    is(txkv_cursor_open(t, NULL, &c), 0, "cursor_open");
    is(txkv_cursor_seek(c, NULL, 0), TXKV_NOTFOUND, "a scan finds no key");
    txkv_cursor_close(c);
    char k[KLEN + 1];
    make_key(k, 7);
    const void *gv;
    size_t gvl;
    is(txkv_get(t, NULL, k, KLEN, &gv, &gvl), TXKV_NOTFOUND, "a get finds no key");
    txkv_abort(t);

    /* 5. The keys come back. */
    rc = 0;
    for (int i = 0; i < NKEYS && !rc; i += BATCH) {
        for (int j = 0; j < BATCH; j++)
            ids[j] = i + j;
        rc = overwrite(ids, BATCH);
    }
    is(rc, 0, "wrote every key again");
    txkv_stats(db, &st);
    is(st.keys, NKEYS, "stats: %d keys", NKEYS);
    is(txkv_begin(db, NULL, &t), 0, "begin");
    check_snapshot(t, gen, NULL, "after rewriting");
    txkv_abort(t);

    /* Nonzero means a commit failed TXKV_CONFLICT with no other transaction
     * running: the GC held a latch longer than a committer waits. */
    diag("commits retried after TXKV_CONFLICT with no concurrent transaction: %ld", retries);
    txkv_close(db);
    return done_testing();
}
