/*
 * ckpt-prune.c - a checkpoint's walk cuts, as it passes each key, the
 * version its snapshot read (src/wal/checkpoint.c, add_record): once the
 * checkpoint is done no key keeps a version for it, with no sweep of
 * every record to free them.
 *
 * The GC thread is stopped, so that nothing but commits and the walk
 * prunes (the test calls gc_horizon itself to move the bounds on).  One
 * thread takes a checkpoint; wal_ckpt_cpus = 1 leaves its walk (upwards
 * in key order) to the committer, the main thread, which meanwhile writes
 * the keys from the top down, each twice (two transactions).  A commit
 * prunes before it installs, so a key written twice keeps its newest
 * version and the one before; one written twice before the walk reaches
 * it also keeps the version the snapshot sees: more extra versions than
 * keys written, counted while it runs.  Once the walk has passed them, at
 * most one extra version a key written is left.
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

#define NKEYS 20000

static txkv_db *db;
static _Atomic int ckpt_done;
static int ckpt_rc;

static void *checkpointer(void *arg)
{
    (void)arg;
    ckpt_rc = txkv_checkpoint(db);
    atomic_store(&ckpt_done, 1);
    return NULL;
}

static void key(char *k, int i)
{
    snprintf(k, 16, "k%07d", i);
}

static int64_t extra_versions(void)
{
    return atomic_load(&db->store.nversions) - atomic_load(&db->store.nkeys);
}

int main(void)
{
    plan(6);
    wal_ckpt_cpus = 1; /* the committer walks, on any machine */
    char *dir = wt_mkdtemp();
    if (!dir)
        bail_out("mkdtemp");
    is(wt_open(dir, TXKV_SYNC_NONE, &db), 0, "open %s", dir);
    gc_stop(&db->gc); /* only commits and the walk prune from here on */

    txkv_txn *t;
    int rc = txkv_begin(db, NULL, &t);
    for (int i = 0; i < NKEYS && !rc; i++) {
        char k[16];
        key(k, i);
        rc = txkv_put(t, NULL, k, strlen(k), "v0", 2);
    }
    is(rc ? rc : txkv_commit(t), 0, "load %d keys", NKEYS);

    pthread_t th;
    if (pthread_create(&th, NULL, checkpointer, NULL))
        bail_out("pthread_create");
    while (!atomic_load(&db->wal->scan_active) && !atomic_load(&ckpt_done))
        sched_yield(); /* the snapshot is pinned once the walk is on */
    int64_t most = 0;  /* extra versions beyond one a key written */
    int fail = 0, n = 0;
    for (int i = NKEYS - 1; i >= 0 && !atomic_load(&ckpt_done); i--, n++) {
        char k[16];
        key(k, i);
        for (int j = 0; j < 2; j++) { /* each commit helps the walk after it */
            fail += wt_put(db, NULL, k, j ? "v2" : "v1") != 0;
            gc_horizon(&db->gc);
        }
        int64_t e = extra_versions() - (n + 1);
        most = e > most ? e : most;
    }
    pthread_join(th, NULL);
    is(ckpt_rc, 0, "the checkpoint succeeded");
    ok(!fail, "%d keys written twice while it ran, %d writes failed", n, fail);
    ok(most > 0, "keys written ahead of the walk kept its version too (%lld beyond one a key)",
       (long long)most);
    int64_t left = extra_versions();
    ok(left <= n, "the walk cut them as it passed: %lld extra versions for %d keys written",
       (long long)left, n);

    txkv_close(db);
    wt_rmdir(dir);
    free(dir);
    return 0;
}
