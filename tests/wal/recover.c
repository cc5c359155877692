/*
 * recover.c - recovery's fast paths give the database that was closed,
 * and keep nothing extra.
 *
 * Recovery loads a checkpoint without looking anything up (records made
 * with their version inline, linked into the B+tree in key order, into
 * the hash index at once in bucket order) and replays the log by freeing a
 * record's older versions before installing the new one (src/wal/apply.c).
 *
 *  1. A random history (seeded; the seed is printed) over three keyspaces
 *     (hash + B+tree, hash only, B+tree only): puts of values of 0 to 300
 *     bytes (inline, a slot too small for a later value, out of line),
 *     deletes, re-puts; a checkpoint in the middle, holding more than 4096
 *     keys of a keyspace (so the log replay finds them through apply.c's
 *     side index, which debug builds check against the hash index).
 *     Reopened, every key
 *     reads its model value, deleted keys are absent, the ordered
 *     keyspaces scan in the model's order, txkv_stats().keys is the
 *     model's count.  Then writes between the loaded keys, scans again, a
 *     second checkpoint, reopen: equal again.  Then with the log alone
 *     (no checkpoint) and with the checkpoint alone.
 *  2. Accounting: after a recovery, deleting every key and letting the GC
 *     reclaim brings the memory count and the version count back to
 *     exactly zero (the raw counter, so an undercount shows too).
 *  3. A checkpoint holding a key twice (made by hand from
 *     docs/durability.md), in a keyspace with a B+tree and in a hash-only
 *     one: txkv_open answers TXKV_IO (and, under LSan, leaks nothing).
 */
#include "config.h"

#include <fcntl.h>
#include <sched.h>
#include <time.h>
#include <xxhash.h>

#include "../tap.h"
#include "db.h"
#include "wal-util.h"

#define NKS        3
#define NKEYS      6000 /* > 4096: the log replay's side index (apply.c) is used */
#define MAXV       300
#define DEADLINE_S 60.0

static const char *const ks_names[NKS] = {"default", "h", "t"};
static const unsigned ks_flags[NKS] = {0, TXKV_HASH, TXKV_ORDERED};

/* The model: per keyspace and key number, the value or absent. */
struct mval {
    int present;
    unsigned len;
    unsigned char v[MAXV];
};
static struct mval model[NKS][NKEYS];
static uint64_t rng;
static unsigned seed;

static uint64_t rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 2685821657736338717ull;
}

static void key_of(unsigned i, char *k)
{
    /* spread: key order is not the order of key numbers */
    snprintf(k, 16, "k%05u", (i * 7919u) % 100000u);
}

static txkv_ks *keyspace(txkv_db *db, int s)
{
    txkv_ks *ks = NULL;
    if (s == 0)
        return NULL;
    if (txkv_keyspace(db, ks_names[s], TXKV_CREATE | ks_flags[s], &ks)) {
        diag("keyspace %s failed (seed %u)", ks_names[s], seed);
        exit(1);
    }
    return ks;
}

/* n random writes, 8 per transaction, into db and the model. */
static void writes(txkv_db *db, int n, unsigned keys)
{
    txkv_ks *ks[NKS];
    for (int s = 0; s < NKS; s++)
        ks[s] = keyspace(db, s);
    for (int i = 0; i < n;) {
        txkv_txn *t;
        if (txkv_begin(db, NULL, &t)) {
            diag("begin failed");
            exit(1);
        }
        for (int j = 0; j < 8 && i < n; j++, i++) {
            int s = (int)(rnd() % NKS);
            unsigned k = (unsigned)(rnd() % keys), r = (unsigned)(rnd() % 100);
            char key[16];
            key_of(k, key);
            struct mval *m = &model[s][k];
            int rc;
            if (r < 20) {
                rc = txkv_del(t, ks[s], key, strlen(key));
                m->present = 0;
            } else {
                /* mostly small (inline), some a little larger than before, some over 256 */
                unsigned len = r < 80 ? (unsigned)(rnd() % 40) : (unsigned)(rnd() % (MAXV + 1));
                for (unsigned b = 0; b < len; b++)
                    m->v[b] = (unsigned char)rnd();
                m->len = len;
                m->present = 1;
                rc = txkv_put(t, ks[s], key, strlen(key), m->v, len);
            }
            if (rc && rc != TXKV_NOTFOUND) {
                diag("write failed: %s (seed %u)", txkv_strerror(rc), seed);
                exit(1);
            }
        }
        if (txkv_commit(t)) {
            diag("commit failed (seed %u)", seed);
            exit(1);
        }
    }
}

/* Every key of keyspace s gets a value (100 per transaction). */
static void fill(txkv_db *db, int s)
{
    txkv_ks *ks = keyspace(db, s);
    for (unsigned k = 0; k < NKEYS;) {
        txkv_txn *t;
        int rc = txkv_begin(db, NULL, &t);
        for (unsigned e = k + 100; !rc && k < e && k < NKEYS; k++) {
            char key[16];
            struct mval *m = &model[s][k];
            key_of(k, key);
            m->len = 1 + k % 120;
            for (unsigned b = 0; b < m->len; b++)
                m->v[b] = (unsigned char)rnd();
            m->present = 1;
            rc = txkv_put(t, ks, key, strlen(key), m->v, m->len);
        }
        if (rc || (rc = txkv_commit(t))) {
            diag("fill failed: %s (seed %u)", txkv_strerror(rc), seed);
            exit(1);
        }
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Does db hold exactly the model?  Point reads of every key, full scans of
 * the ordered keyspaces, and the key count. */
static void check_model(txkv_db *db, const char *what)
{
    txkv_txn *t;
    int bad = 0, badscan = 0;
    uint64_t live = 0;
    if (txkv_begin(db, NULL, &t)) {
        diag("begin failed");
        exit(1);
    }
    for (int s = 0; s < NKS; s++) {
        txkv_ks *ks = keyspace(db, s);
        char *sorted[NKEYS];
        size_t n = 0;
        for (unsigned k = 0; k < NKEYS; k++) {
            char key[16];
            const void *v;
            size_t vl;
            key_of(k, key);
            int rc = txkv_get(t, ks, key, strlen(key), &v, &vl);
            struct mval *m = &model[s][k];
            if (m->present) {
                live++;
                sorted[n++] = strdup(key);
                if (rc || vl != m->len || (vl && memcmp(v, m->v, vl))) {
                    if (bad++ < 3)
                        diag("%s: %s/%s: rc %d, %zu bytes, model %u", what, ks_names[s], key, rc,
                             rc ? 0 : vl, m->len);
                }
            } else if (rc != TXKV_NOTFOUND) {
                if (bad++ < 3)
                    diag("%s: %s/%s: deleted but rc %d", what, ks_names[s], key, rc);
            }
        }
        if (ks_flags[s] != TXKV_HASH) {
            qsort(sorted, n, sizeof *sorted, cmp_str);
            txkv_cursor *c;
            size_t i = 0;
            if (txkv_cursor_open(t, ks, &c)) {
                diag("cursor_open failed");
                exit(1);
            }
            for (int rc = txkv_cursor_seek(c, NULL, 0); rc == 0; rc = txkv_cursor_next(c), i++) {
                const void *k, *v;
                size_t kl, vl;
                txkv_cursor_get(c, &k, &kl, &v, &vl);
                if (i >= n || kl != strlen(sorted[i]) || memcmp(k, sorted[i], kl))
                    badscan++;
            }
            if (i != n)
                badscan++;
            txkv_cursor_close(c);
        }
        for (size_t i = 0; i < n; i++)
            free(sorted[i]);
    }
    txkv_abort(t);
    struct txkv_stats st;
    txkv_stats(db, &st);
    ok(!bad, "%s: every key reads its model value (%d wrong; seed %u)", what, bad, seed);
    ok(!badscan, "%s: the ordered keyspaces scan in the model's order (seed %u)", what, seed);
    is((long long)st.keys, (long long)live, "%s: stats.keys is the model's count", what);
}

static void reopen(const char *dir, txkv_db **db, const char *what)
{
    txkv_close(*db);
    int rc = wt_open(dir, TXKV_SYNC_NONE, db);
    is(rc, 0, "%s: reopened", what);
    if (rc)
        exit(1);
}

/* Every key deleted, then the GC reclaims: the raw memory count and the
 * version count must come back to exactly 0. */
static void check_accounting(txkv_db *db, const char *what)
{
    txkv_txn *t;
    for (int s = 0; s < NKS; s++) {
        txkv_ks *ks = keyspace(db, s);
        for (unsigned k = 0; k < NKEYS; k++) {
            char key[16];
            key_of(k, key);
            int rc = txkv_begin(db, NULL, &t);
            if (!rc && (rc = txkv_del(t, ks, key, strlen(key))) == TXKV_NOTFOUND)
                rc = 0;
            if (!rc)
                rc = txkv_commit(t);
            if (rc) {
                diag("delete failed: %s", txkv_strerror(rc));
                exit(1);
            }
            model[s][k].present = 0;
        }
    }
    struct timespec t0, now;
    int64_t used;
    struct txkv_stats st;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        used = atomic_load(&db->store.mem.used);
        txkv_stats(db, &st);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((used == 0 && st.versions == 0) ||
            (double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) / 1e9 >
                DEADLINE_S)
            break;
        sched_yield();
    }
    ok(used == 0 && st.versions == 0 && st.keys == 0,
       "%s: after deleting everything the counts return to exactly 0 (bytes %lld, versions "
       "%llu, keys %llu)",
       what, (long long)used, (unsigned long long)st.versions, (unsigned long long)st.keys);
}

/* A fresh database: ckpt_writes writes and a checkpoint (if any), then
 * log_writes; reopened, compared with the model, then emptied. */
static void fresh_round(int ckpt_writes, int log_writes, const char *what)
{
    char *dir = wt_mkdtemp();
    txkv_db *db;
    memset(model, 0, sizeof model);
    is(wt_open(dir, TXKV_SYNC_NONE, &db), 0, "%s: a fresh database", what);
    if (ckpt_writes) {
        fill(db, 0);
        fill(db, 1);
        writes(db, ckpt_writes, NKEYS);
        is(txkv_checkpoint(db), 0, "%s: checkpoint", what);
    }
    writes(db, log_writes, NKEYS);
    reopen(dir, &db, what);
    check_model(db, what);
    check_accounting(db, what);
    txkv_close(db);
    wt_rmdir(dir);
    free(dir);
}

static void test_model(void)
{
    char *dir = wt_mkdtemp();
    txkv_db *db;
    memset(model, 0, sizeof model);
    is(wt_open(dir, TXKV_SYNC_NONE, &db), 0, "open");
    fill(db, 0);
    writes(db, 6000, NKEYS / 2);
    is(txkv_checkpoint(db), 0, "checkpoint");
    writes(db, 4000, NKEYS);
    reopen(dir, &db, "checkpoint + log");
    check_model(db, "checkpoint + log");

    /* new keys between the loaded ones, deletes, then a second round */
    writes(db, 4000, NKEYS);
    check_model(db, "after writes into the recovered database");
    is(txkv_checkpoint(db), 0, "a checkpoint of the recovered database");
    writes(db, 1000, NKEYS);
    reopen(dir, &db, "second checkpoint + log");
    check_model(db, "second checkpoint + log");

    /* the checkpoint alone: everything goes into one */
    is(txkv_checkpoint(db), 0, "a third checkpoint");
    reopen(dir, &db, "checkpoint alone");
    check_model(db, "checkpoint alone");
    txkv_close(db);

    wt_rmdir(dir);
    free(dir);
    /* the log alone (a database that never checkpoints), then a checkpoint
     * load and a log replay: equal to the model, and exact accounting */
    fresh_round(0, 8000, "log alone");
    fresh_round(6000, 6000, "checkpoint + log");
}

/* ---- a checkpoint made by hand ---------------------------------------------------- */

static size_t put_rec(char *p, int type, const char *payload, uint32_t len, uint64_t ts)
{
    p[0] = (char)type;
    p[1] = 1;
    p[2] = p[3] = 0;
    memcpy(p + 4, &len, 4);
    memcpy(p + 8, &ts, 8);
    memcpy(p + 16, payload, len);
    uint64_t h = XXH3_64bits(p, 16 + (size_t)len);
    memcpy(p + 16 + len, &h, 8);
    return 16 + (size_t)len + 8;
}

static size_t put_entry(char *p, const char *ks, const char *k, const char *v)
{
    uint16_t kl = (uint16_t)strlen(k);
    uint32_t vl = (uint32_t)strlen(v);
    p[0] = 0;
    p[1] = (char)strlen(ks);
    memcpy(p + 2, &kl, 2);
    memcpy(p + 4, &vl, 4);
    memcpy(p + 8, ks, strlen(ks));
    memcpy(p + 8 + strlen(ks), k, kl);
    memcpy(p + 8 + strlen(ks) + kl, v, vl);
    return 8 + strlen(ks) + kl + vl;
}

/* Writes path: a checkpoint at ts of keyspace ks (flags) holding keys[i] =
 * vals[i] for i < n; 1 if written. */
static int write_ckpt(const char *path, const char *ks, unsigned flags, const char *const *keys,
                      const char *const *vals, int n, uint64_t ts)
{
    char buf[4096], pay[1024];
    size_t len = 0, pl = 0;
    pay[0] = (char)flags;
    pay[1] = (char)strlen(ks);
    memcpy(pay + 2, ks, strlen(ks));
    len += put_rec(buf + len, 2, pay, (uint32_t)(2 + strlen(ks)), ts); /* KEYSPACE */
    for (int i = 0; i < n; i++)
        pl += put_entry(pay + pl, ks, keys[i], vals[i]);
    len += put_rec(buf + len, 3, pay, (uint32_t)pl, ts); /* CKPT_DATA */
    uint64_t nkeys = (uint64_t)n;
    len += put_rec(buf + len, 4, (const char *)&nkeys, 8, ts); /* CKPT_END */
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    int good = fd >= 0 && write(fd, buf, len) == (ssize_t)len;
    if (fd >= 0)
        close(fd);
    return good;
}

static void dup_checkpoint(const char *ks, unsigned flags, const char *what)
{
    static const char *const keys[] = {"a", "b", "a"}, *const vals[] = {"1", "2", "3"};
    char *dir = wt_mkdtemp(), path[1100], v[16];
    txkv_db *db;
    uint64_t ts = 100;
    is(wt_open(dir, TXKV_SYNC_COMMIT, &db), 0, "%s: open", what);
    txkv_close(db);
    snprintf(path, sizeof path, "%s/ckpt-%016llx.ckpt", dir, (unsigned long long)ts);
    ok(write_ckpt(path, ks, flags, keys, vals, 3, ts), "%s: a hand-made checkpoint", what);
    is(wt_open(dir, TXKV_SYNC_COMMIT, &db), TXKV_IO, "%s: a key twice: TXKV_IO", what);

    /* the same without the duplicate opens and reads back */
    ok(write_ckpt(path, ks, flags, keys, vals, 2, ts), "%s: without the duplicate", what);
    is(wt_open(dir, TXKV_SYNC_COMMIT, &db), 0, "%s: opens", what);
    txkv_ks *k = NULL;
    if (strcmp(ks, "default"))
        txkv_keyspace(db, ks, 0, &k);
    ok(wt_get(db, k, "a", v, sizeof v) == 0 && !strcmp(v, "1") &&
           wt_get(db, k, "b", v, sizeof v) == 0 && !strcmp(v, "2"),
       "%s: both keys read back", what);
    txkv_close(db);
    wt_rmdir(dir);
    free(dir);
}

int main(int argc, char **argv)
{
    seed = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 1;
    rng = seed * 0x9e3779b97f4a7c15ull + 1;
    diag("seed %u (rerun with: recover %u)", seed, seed);
    test_model();
    dup_checkpoint("default", TXKV_HASH | TXKV_ORDERED, "default keyspace");
    dup_checkpoint("hashonly", TXKV_HASH, "hash-only keyspace");
    return done_testing();
}
