/*
 * ckpt.c - a checkpoint taken while committers run, and walked by them,
 * is one consistent snapshot (src/wal/checkpoint.c, "Helping"; the
 * versions it reads are kept by its exact pin, src/gc/gc.c).
 *
 * Three keyspaces (hash + B+tree, hash only, B+tree only), NPAIRS pairs of
 * keys each.  NTHREADS threads (more than this machine's cores) run
 * transactions that read a pair's first key and write both keys with that
 * value plus one; so in every snapshot the two keys of a pair are equal.
 * wal_ckpt_cpus = 1 makes the checkpoint leave its B+tree walks to the
 * committers whatever the machine (it walks the hash-only keyspace
 * itself).  While they run, checkpoints are taken one after another
 * until 3/4 of the commits are done; afterwards:
 *  1. committers did slices of the walk;
 *  2. reopened with the log (checkpoint + log), every pair is equal and
 *     holds the number of commits made to it;
 *  3. reopened from the last checkpoint alone (the log segments removed),
 *     every key is there, every pair is equal, and no value is above the
 *     final one: the checkpoint is a snapshot, whole pairs only.
 * Bounded: the threads stop after a fixed number of commits each (times
 * TXKV_STRESS under make stress).
 */
#include "config.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "../tap.h"
#include "db.h"
#include "wal-util.h"
#include "wal/wal-test.h"

#define NKS      3
#define NPAIRS   3000
#define NTHREADS 3

static const char *const ks_names[NKS] = {"default", "h", "t"};
static const unsigned ks_flags[NKS] = {0, TXKV_HASH, TXKV_ORDERED};

static txkv_db *db;
static txkv_ks *kss[NKS];
static _Atomic uint64_t commits[NKS][NPAIRS]; /* per pair: commits that wrote it */
static _Atomic int started, finished, stop;
static _Atomic uint64_t ncommits;
static unsigned seed;
static int per_thread;

static void key(char *k, int pair, int side)
{
    snprintf(k, 16, "p%06d-%c", pair, side ? 'b' : 'a');
}

/* One transaction: pair (ks, p) = its first key + 1.  0 or a txkv code. */
static int bump(txkv_txn *t, int ks, int p)
{
    char ka[16], kb[16];
    const void *v;
    size_t vl;
    uint64_t n;
    key(ka, p, 0);
    key(kb, p, 1);
    int rc = txkv_get(t, kss[ks], ka, strlen(ka), &v, &vl);
    if (rc)
        return rc;
    memcpy(&n, v, sizeof n);
    n++;
    if ((rc = txkv_put(t, kss[ks], ka, strlen(ka), &n, sizeof n)) ||
        (rc = txkv_put(t, kss[ks], kb, strlen(kb), &n, sizeof n)))
        return rc;
    return 0;
}

static void *committer(void *arg)
{
    uint64_t r = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull + seed;
    atomic_fetch_add(&started, 1);
    for (int i = 0; i < per_thread && !atomic_load(&stop); i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        int ks = (int)(r % NKS), p = (int)((r >> 8) % 64); /* hot pairs: long chains */
        if (i % 4 == 0)
            p = (int)((r >> 16) % NPAIRS);
        for (;;) {
            txkv_txn *t;
            int rc = txkv_begin(db, NULL, &t);
            if (rc == 0) {
                if ((rc = bump(t, ks, p)))
                    txkv_abort(t);
                else
                    rc = txkv_commit(t); /* frees t, whatever it returns */
            }
            if (rc == 0) {
                atomic_fetch_add(&commits[ks][p], 1);
                atomic_fetch_add(&ncommits, 1);
                break;
            }
            if (!txkv_is_retryable(rc)) {
                diag("commit: %s", txkv_strerror(rc));
                atomic_store(&stop, 1);
                break;
            }
        }
    }
    atomic_fetch_add(&finished, 1);
    return NULL;
}

static void open_db(const char *dir)
{
    if (wt_open(dir, TXKV_SYNC_NONE, &db))
        bail_out("txkv_open");
    for (int k = 0; k < NKS; k++)
        if (txkv_keyspace(db, ks_names[k], TXKV_CREATE | ks_flags[k], &kss[k]))
            bail_out("txkv_keyspace");
}

/* Every pair equal; *sum the values; *above pairs over their commit count. */
static int check_pairs(uint64_t *sum, int *above)
{
    int bad = 0;
    *sum = 0;
    *above = 0;
    txkv_txn *t;
    if (txkv_begin(db, NULL, &t))
        return -1;
    for (int k = 0; k < NKS; k++)
        for (int p = 0; p < NPAIRS; p++) {
            char ka[16], kb[16];
            const void *va, *vb;
            size_t la, lb;
            uint64_t a = 0, b = 0;
            key(ka, p, 0);
            key(kb, p, 1);
            if (txkv_get(t, kss[k], ka, strlen(ka), &va, &la) ||
                txkv_get(t, kss[k], kb, strlen(kb), &vb, &lb) || la != 8 || lb != 8) {
                bad++;
                continue;
            }
            memcpy(&a, va, 8);
            memcpy(&b, vb, 8);
            bad += a != b;
            *sum += a;
            *above += a > atomic_load(&commits[k][p]);
        }
    txkv_abort(t);
    return bad;
}

static void remove_segments(const char *dir)
{
    char path[1024];
    while (wt_file(dir, "wal-", path, sizeof path) >= 0)
        unlink(path);
}

int main(int argc, char **argv)
{
    seed = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 1;
    per_thread = (int)(20000 * tap_scale()); /* make stress: a longer run */
    plan(9);
    diag("seed %u, %d commits a thread", seed, per_thread);
    wal_ckpt_cpus = 1; /* committers walk, on any machine */
    char *dir = wt_mkdtemp();
    if (!dir)
        bail_out("mkdtemp");
    open_db(dir);

    txkv_txn *t;
    uint64_t zero = 0;
    int rc = txkv_begin(db, NULL, &t);
    for (int k = 0; k < NKS && !rc; k++)
        for (int p = 0; p < NPAIRS && !rc; p++)
            for (int s = 0; s < 2 && !rc; s++) {
                char kk[16];
                key(kk, p, s);
                rc = txkv_put(t, kss[k], kk, strlen(kk), &zero, sizeof zero);
            }
    is(rc ? rc : txkv_commit(t), 0, "load %d pairs in each of %d keyspaces", NPAIRS, NKS);

    pthread_t th[NTHREADS];
    for (uintptr_t i = 0; i < NTHREADS; i++)
        if (pthread_create(&th[i], NULL, committer, (void *)(i + 1)))
            bail_out("pthread_create");
    while (atomic_load(&started) < NTHREADS)
        sched_yield();
    /* Checkpoints one after another until 3/4 of the commits are done:
     * the last one is taken mid-run too. */
    int ck_fail = 0, nck = 0;
    while (atomic_load(&finished) < NTHREADS &&
           atomic_load(&ncommits) < (uint64_t)per_thread * NTHREADS * 3 / 4) {
        ck_fail += txkv_checkpoint(db) != 0;
        nck++;
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    ok(!atomic_load(&stop), "every commit succeeded or was retried");
    ok(nck >= 1 && !ck_fail, "%d checkpoints while %d threads commit, %d failed", nck, NTHREADS,
       ck_fail);
    uint64_t helped = db->wal->scan.helped;
    ok(helped > 0, "committers did slices of the walk (%llu)", (unsigned long long)helped);
    txkv_close(db);

    uint64_t total = 0, sum;
    int above;
    for (int k = 0; k < NKS; k++)
        for (int p = 0; p < NPAIRS; p++)
            total += atomic_load(&commits[k][p]);
    open_db(dir);
    is(check_pairs(&sum, &above), 0, "checkpoint + log: every pair equal");
    ok(sum == total, "checkpoint + log: every commit there (%llu of %llu)", (unsigned long long)sum,
       (unsigned long long)total);
    txkv_close(db);

    remove_segments(dir);
    open_db(dir);
    is(check_pairs(&sum, &above), 0, "checkpoint alone: every key there, every pair equal");
    is(above, 0, "checkpoint alone: no value above the final one");
    ok(sum <= total, "checkpoint alone: a prefix (%llu of %llu commits)", (unsigned long long)sum,
       (unsigned long long)total);
    txkv_close(db);
    wt_rmdir(dir);
    free(dir);
    return 0;
}
