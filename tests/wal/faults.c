/*
 * faults.c - a write or sync that fails fails the commit with TXKV_IO and
 * the log with it; the directory still recovers to a prefix.
 *
 * Through the I/O seam (src/wal/wal-test.h), with the log's window one
 * page, for each fault: the allocation of the next window failing with
 * ENOSPC, and with EIO (commits go on until one needs the next window),
 * fdatasync failing with EIO; then the checkpoint's fsync failing, and
 * its write coming back short and then failing:
 *  - the commit that meets the fault returns TXKV_IO;
 *  - every later writing commit returns TXKV_IO (never acknowledged
 *    without being durable), reads still work, a read-only commit is 0;
 *  - after close and reopen (faults off), every commit acknowledged
 *    before the fault is there; the failed one may or may not be (it is
 *    installed in memory, durability unknown), later ones are not.
 * A checkpoint whose file cannot be synced returns TXKV_IO and leaves the
 * log as it was: the database goes on and recovers everything.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>

#include "../tap.h"
#include "wal/wal-test.h"
#include "wal-util.h"

static struct wal_io saved;
static int fail_after; /* calls that still succeed */
static int fail_errno;
static bool short_first;

static int bad_fallocate(int fd, off_t off, off_t len)
{
    if (fail_after-- > 0)
        return saved.fallocate(fd, off, len);
    errno = fail_errno;
    return -1;
}

static ssize_t bad_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    if (fail_after-- > 0)
        return saved.pwrite(fd, buf, n, off);
    if (short_first && n > 1) {
        short_first = false;
        return saved.pwrite(fd, buf, n / 2, off);
    }
    errno = fail_errno;
    return -1;
}

static int bad_sync(int fd)
{
    if (fail_after-- > 0)
        return saved.fdatasync(fd);
    errno = fail_errno;
    return -1;
}

static char vbuf[64];

static void one_fault(const char *what, int which)
{
    char *dir = wt_mkdtemp(), k[16];
    txkv_db *db;
    is(wt_open(dir, TXKV_SYNC_COMMIT, &db), 0, "%s: open", what);
    int bad = 0;
    for (int i = 0; i < 20; i++) {
        snprintf(k, sizeof k, "k%d", i);
        bad += wt_put(db, NULL, k, "v") != 0;
    }
    is(bad, 0, "%s: 20 commits before the fault", what);
    fail_after = 0;
    fail_errno = which == 0 ? ENOSPC : EIO;
    if (which == 2)
        wal_io.fdatasync = bad_sync;
    else
        wal_io.fallocate = bad_fallocate;
    /* A sync fault meets the next commit; an allocation fault the commit
     * whose record reaches the next window, a page's worth later. */
    int more = 0, rc;
    for (;;) {
        snprintf(k, sizeof k, "m%d", more);
        if ((rc = wt_put(db, NULL, k, "v")) != 0 || ++more == 1000)
            break;
    }
    is(rc, TXKV_IO, "%s: a commit fails with TXKV_IO (after %d more)", what, more);
    if (which == 2)
        is(more, 0, "%s: a failed sync fails the very next commit", what);
    wal_io = saved; /* even with the disk back, the log stays failed */
    is(wt_put(db, NULL, "later", "v"), TXKV_IO, "%s: a later commit fails too", what);
    txkv_ks *ks;
    is(txkv_keyspace(db, "new", TXKV_CREATE, &ks), TXKV_IO, "%s: so does a keyspace creation",
       what);
    ok(wt_get(db, NULL, "k3", vbuf, sizeof vbuf) == 0, "%s: reads go on", what);
    txkv_txn *t;
    txkv_begin(db, NULL, &t);
    is(txkv_commit(t), 0, "%s: a read-only commit is fine", what);
    is(txkv_checkpoint(db), TXKV_IO, "%s: no checkpoint from a failed log", what);
    txkv_close(db);

    is(wt_open(dir, TXKV_SYNC_COMMIT, &db), 0, "%s: reopens", what);
    bad = 0;
    for (int i = 0; i < 20; i++) {
        snprintf(k, sizeof k, "k%d", i);
        bad += wt_get(db, NULL, k, vbuf, sizeof vbuf) != 0;
    }
    for (int i = 0; i < more; i++) {
        snprintf(k, sizeof k, "m%d", i);
        bad += wt_get(db, NULL, k, vbuf, sizeof vbuf) != 0;
    }
    is(bad, 0, "%s: every acknowledged commit recovered", what);
    is(wt_get(db, NULL, "later", vbuf, sizeof vbuf), TXKV_NOTFOUND, "%s: the later one is not",
       what);
    is(wt_put(db, NULL, "again", "v"), 0, "%s: commits work again", what);
    txkv_close(db);
    wt_rmdir(dir);
    free(dir);
}

/* The checkpoint's fsyncs: the directory's at the rotation (1), the
 * checkpoint file's (2), the directory's after the rename (3).  A failure
 * of 1 or 2 fails only the checkpoint (1 comes before the segments swap:
 * the new file is removed and appends stay in the old one). */
static int nfsync;
static int bad_fsync(int fd)
{
    if (++nfsync != 2)
        return saved.fsync(fd);
    errno = EIO;
    return -1;
}

static void checkpoint_fault(bool write)
{
    char *dir = wt_mkdtemp();
    txkv_db *db;
    is(wt_open(dir, TXKV_SYNC_COMMIT, &db), 0, "checkpoint fault: open");
    is(wt_put(db, NULL, "a", "1"), 0, "put");
    nfsync = 0;
    if (write) { /* the checkpoint file is the one thing written with pwrite */
        fail_after = 0;
        fail_errno = EIO;
        short_first = true;
        wal_io.pwrite = bad_pwrite;
    } else {
        wal_io.fsync = bad_fsync;
    }
    is(txkv_checkpoint(db), TXKV_IO, "a checkpoint whose %s fails: TXKV_IO",
       write ? "write (short, then EIO)" : "fsync");
    wal_io = saved;
    is(wt_put(db, NULL, "b", "2"), 0, "commits go on (the log is intact)");
    is(txkv_checkpoint(db), 0, "the next checkpoint works");
    txkv_close(db);
    is(wt_open(dir, TXKV_SYNC_COMMIT, &db), 0, "reopen");
    ok(wt_get(db, NULL, "a", vbuf, sizeof vbuf) == 0 &&
           wt_get(db, NULL, "b", vbuf, sizeof vbuf) == 0,
       "both recovered");
    txkv_close(db);
    wt_rmdir(dir);
    free(dir);
}

int main(void)
{
    saved = wal_io;
    wal_window_bytes = (size_t)sysconf(_SC_PAGESIZE);
    one_fault("window allocation ENOSPC", 0);
    one_fault("window allocation EIO", 1);
    one_fault("fdatasync EIO", 2);
    checkpoint_fault(false);
    checkpoint_fault(true);
    return done_testing();
}
