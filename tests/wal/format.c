/*
 * format.c - the durable database's files: what is written is read back,
 * and what is not ours is refused and left alone.
 *
 *  1. Writes, deletes and keyspace creations (hash-only, ordered-only)
 *     survive close and open, with their index flags; a read-only
 *     transaction writes nothing to the log.
 *  2. A checkpoint plus the log after it: reopened, everything is there,
 *     the segments the checkpoint covers are gone, checkpoint_ts is set.
 *  3. A log record built here by hand from docs/durability.md (header,
 *     entry, XXH3) is read back: the documented format is the read one.
 *  4. A record or a FORMAT file of a newer version: TXKV_INVALID, and the
 *     directory is unchanged.  A directory with other files: TXKV_INVALID,
 *     unchanged (no LOCK file made).
 *  5. A second open of an open directory: TXKV_BUSY; after close, it opens.
 *  6. Garbage after the last record: cut, and recovered_bytes_dropped says
 *     how many bytes.  txkv_checkpoint on an in-memory database: INVALID.
 *  7. checkpoint_log_bytes: the background thread checkpoints on its own
 *     (polled with a deadline, no sleep); TXKV_SYNC_INTERVAL commits and
 *     recovers.
 *  8. Zero tails and segment ends (test_segments says what).
 */
#include "config.h"

#include <fcntl.h>
#include <sched.h>
#include <time.h>
#include <xxhash.h>

#include "../tap.h"
#include "wal-util.h"

static char vbuf[256];

static void test_roundtrip(void)
{
    char *dir = wt_mkdtemp();
    txkv_db *db;
    txkv_ks *h, *o;
    is(wt_open(dir, TXKV_SYNC_COMMIT, &db), 0, "open a new directory");
    is(txkv_keyspace(db, "h", TXKV_CREATE | TXKV_HASH, &h), 0, "hash-only keyspace");
    is(txkv_keyspace(db, "o", TXKV_CREATE | TXKV_ORDERED, &o), 0, "ordered keyspace");
    is(wt_put(db, NULL, "a", "1"), 0, "put a");
    is(wt_put(db, h, "b", "2"), 0, "put b");
    is(wt_put(db, o, "c", "3"), 0, "put c");
    is(wt_put(db, NULL, "a", "11"), 0, "overwrite a");
    is(wt_put(db, o, "c", NULL), 0, "delete c");
    struct txkv_stats st, st2;
    txkv_stats(db, &st);
    ok(st.log_bytes > 0, "the log grew (%llu bytes)", (unsigned long long)st.log_bytes);
    txkv_txn *t;
    txkv_txn_options to;
    txkv_txn_options_init(&to);
    to.flags = TXKV_RDONLY;
    txkv_begin(db, &to, &t);
    is(txkv_commit(t), 0, "read-only commit");
    txkv_begin(db, NULL, &t);
    txkv_get(t, NULL, "a", 1, &(const void *){0}, &(size_t){0});
    is(txkv_commit(t), 0, "commit of a transaction that only read");
    txkv_stats(db, &st2);
    is(st2.log_bytes, st.log_bytes, "read-only transactions wrote nothing");
    txkv_close(db);

    is(wt_open(dir, TXKV_SYNC_COMMIT, &db), 0, "reopen");
    is(txkv_keyspace(db, "h", TXKV_HASH, &h), 0, "hash keyspace recovered with its flag");
    is(txkv_keyspace(db, "o", TXKV_ORDERED, &o), 0, "ordered keyspace recovered with its flag");
    is(txkv_keyspace(db, "o", TXKV_HASH, &o), TXKV_EXISTS, "... and only that index");
    txkv_keyspace(db, "o", 0, &o);
    ok(wt_get(db, NULL, "a", vbuf, sizeof vbuf) == 0 && !strcmp(vbuf, "11"), "a = 11");
    ok(wt_get(db, h, "b", vbuf, sizeof vbuf) == 0 && !strcmp(vbuf, "2"), "b = 2");
    is(wt_get(db, o, "c", vbuf, sizeof vbuf), TXKV_NOTFOUND, "c deleted");
    txkv_stats(db, &st);
    is(st.keys, 2, "two keys counted");
    is(st.recovered_bytes_dropped, 0, "nothing dropped");
    is(wt_put(db, NULL, "d", "4"), 0, "commits go on after recovery");
    txkv_close(db);
    is(wt_open(dir, TXKV_SYNC_COMMIT, &db), 0, "reopen again");
    ok(wt_get(db, NULL, "d", vbuf, sizeof vbuf) == 0 && !strcmp(vbuf, "4"),
       "d = 4 (clock restored)");
    txkv_close(db);
    wt_rmdir(dir);
    free(dir);
}

static void test_checkpoint(void)
{
    char *dir = wt_mkdtemp(), key[32], val[32];
    txkv_db *db;
    txkv_ks *h;
    is(wt_open(dir, TXKV_SYNC_NONE, &db), 0, "open (SYNC_NONE)");
    txkv_keyspace(db, "h", TXKV_CREATE | TXKV_HASH, &h);
    int bad = 0;
    for (int i = 0; i < 3000; i++) {
        snprintf(key, sizeof key, "k%05d", i);
        snprintf(val, sizeof val, "v%d", i);
        bad += wt_put(db, i % 2 ? h : NULL, key, val) != 0;
    }
    is(bad, 0, "3000 puts");
    char seg_before[1024];
    wt_newest_segment(dir, seg_before, sizeof seg_before);
    is(txkv_checkpoint(db), 0, "checkpoint");
    struct txkv_stats st;
    txkv_stats(db, &st);
    ok(st.checkpoint_ts > 0, "checkpoint_ts set");
    ok(wt_file(dir, "ckpt-", NULL, 0) > 0, "a checkpoint file");
    ok(access(seg_before, F_OK) != 0, "the old segment is gone");
    for (int i = 0; i < 3000; i += 3) {
        snprintf(key, sizeof key, "k%05d", i);
        bad += wt_put(db, i % 2 ? h : NULL, key, i % 2 ? "x" : NULL) != 0;
    }
    is(bad, 0, "updates and deletes after it");
    is(txkv_checkpoint(db), 0, "second checkpoint");
    is(wt_put(db, NULL, "after", "1"), 0, "one more put");
    txkv_close(db);
    int ckpts = 0;
    {
        DIR *d = opendir(dir);
        struct dirent *e;
        while ((e = readdir(d)))
            ckpts += !strncmp(e->d_name, "ckpt-", 5);
        closedir(d);
    }
    is(ckpts, 1, "only the newest checkpoint is kept");
    is(wt_open(dir, TXKV_SYNC_NONE, &db), 0, "reopen");
    txkv_keyspace(db, "h", 0, &h);
    int wrong = 0;
    for (int i = 0; i < 3000; i++) {
        snprintf(key, sizeof key, "k%05d", i);
        snprintf(val, sizeof val, "v%d", i);
        int rc = wt_get(db, i % 2 ? h : NULL, key, vbuf, sizeof vbuf);
        if (i % 3 == 0)
            wrong += i % 2 ? rc != 0 || strcmp(vbuf, "x") : rc != TXKV_NOTFOUND;
        else
            wrong += rc != 0 || strcmp(vbuf, val);
    }
    is(wrong, 0, "checkpoint + log give every key its last value");
    ok(wt_get(db, NULL, "after", vbuf, sizeof vbuf) == 0, "the put after the checkpoint");
    txkv_stats(db, &st);
    is(st.keys, 3000 - 500 + 1, "keys counted");
    txkv_close(db);
    wt_rmdir(dir);
    free(dir);
}

/* One WAL_COMMIT record, as docs/durability.md describes it. */
static size_t hand_record(char *p, int version, uint64_t ts)
{
    const char *ks = "default", *k = "hand", *v = "made";
    char *e = p + 16;
    e[0] = 0;                          /* flags: a put */
    e[1] = (char)strlen(ks);           /* keyspace name length */
    uint16_t kl = (uint16_t)strlen(k); /* key length */
    uint32_t vl = (uint32_t)strlen(v); /* value length */
    memcpy(e + 2, &kl, 2);
    memcpy(e + 4, &vl, 4);
    memcpy(e + 8, ks, strlen(ks));
    memcpy(e + 8 + strlen(ks), k, kl);
    memcpy(e + 8 + strlen(ks) + kl, v, vl);
    uint32_t len = (uint32_t)(8 + strlen(ks) + kl + vl);
    p[0] = 1; /* WAL_COMMIT */
    p[1] = (char)version;
    p[2] = p[3] = 0;
    memcpy(p + 4, &len, 4);
    memcpy(p + 8, &ts, 8);
    uint64_t h = XXH3_64bits(p, 16 + len);
    memcpy(p + 16 + len, &h, 8);
    return 16 + len + 8;
}

static void append_file(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_APPEND);
    ok(fd >= 0 && write(fd, p, n) == (ssize_t)n, "append %zu bytes to the log", n);
    close(fd);
}

/* A directory holding one file name with text: refused, left as it was. */
static void refused_dir(const char *name, const char *text, const char *what)
{
    char *dir = wt_mkdtemp(), path[1024];
    txkv_db *db;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    is(wt_open(dir, TXKV_SYNC_COMMIT, &db), TXKV_INVALID, "%s: INVALID", what);
    is(wt_count(dir), 1, "%s: left untouched (no LOCK made)", what);
    wt_rmdir(dir);
    free(dir);
}

static void test_hand_and_versions(void)
{
    char *dir = wt_mkdtemp(), path[1024], rec[128];
    txkv_db *db;
    is(wt_open(dir, TXKV_SYNC_COMMIT, &db), 0, "open");
    txkv_close(db);
    ok(wt_file(dir, "wal-", path, sizeof path) == 0, "an empty segment");
    append_file(path, rec, hand_record(rec, 1, 1000));
    is(wt_open(dir, TXKV_SYNC_COMMIT, &db), 0, "reopen");
    ok(wt_get(db, NULL, "hand", vbuf, sizeof vbuf) == 0 && !strcmp(vbuf, "made"),
       "the hand-made record is read");
    is(wt_put(db, NULL, "next", "1"), 0, "a commit after it");
    txkv_close(db);

    /* A newer record version: refused, nothing changed. */
    wt_file(dir, "wal-", path, sizeof path);
    append_file(path, rec, hand_record(rec, 2, 5000));
    long size = wt_file(dir, "wal-", NULL, 0);
    int n = wt_count(dir);
    is(wt_open(dir, TXKV_SYNC_COMMIT, &db), TXKV_INVALID, "a record of a newer version: INVALID");
    is(wt_file(dir, "wal-", NULL, 0), size, "... the log untouched");
    is(wt_count(dir), n, "... no file added");
    wt_rmdir(dir);
    free(dir);

    refused_dir("FORMAT", "txkv database format 2\n", "a newer FORMAT");
    refused_dir("notes.txt", "not a database\n", "a foreign directory");

    /* A file where the directory should be. */
    dir = wt_mkdtemp();
    snprintf(path, sizeof path, "%s/plain", dir);
    FILE *f = fopen(path, "w");
    fclose(f);
    is(wt_open(path, TXKV_SYNC_COMMIT, &db), TXKV_INVALID, "a plain file: INVALID");
    txkv_options o;
    txkv_options_init(&o);
    o.dir = dir;
    o.sync = 7;
    is(txkv_open(&o, &db), TXKV_INVALID, "a bad sync policy: INVALID");
    wt_rmdir(dir);
    free(dir);
}

static void test_busy_and_tail(void)
{
    char *dir = wt_mkdtemp(), path[1024];
    txkv_db *db, *db2;
    is(wt_open(dir, TXKV_SYNC_COMMIT, &db), 0, "open");
    is(wt_open(dir, TXKV_SYNC_COMMIT, &db2), TXKV_BUSY, "second open: BUSY");
    is(wt_put(db, NULL, "x", "1"), 0, "the first still works");
    txkv_close(db);
    wt_file(dir, "wal-", path, sizeof path);
    char junk[37];
    memset(junk, 0x5a, sizeof junk);
    append_file(path, junk, sizeof junk);
    is(wt_open(dir, TXKV_SYNC_COMMIT, &db), 0, "opens after close");
    struct txkv_stats st;
    txkv_stats(db, &st);
    is(st.recovered_bytes_dropped, sizeof junk, "the torn tail is reported");
    ok(wt_get(db, NULL, "x", vbuf, sizeof vbuf) == 0, "data before it kept");
    txkv_close(db);
    is(wt_open(dir, TXKV_SYNC_COMMIT, &db), 0, "opens again");
    txkv_stats(db, &st);
    is(st.recovered_bytes_dropped, 0, "the tail was cut");
    txkv_close(db);
    wt_rmdir(dir);
    free(dir);

    is(txkv_open(NULL, &db), 0, "in-memory open");
    is(txkv_checkpoint(db), TXKV_INVALID, "checkpoint in memory: INVALID");
    is(txkv_checkpoint(NULL), TXKV_INVALID, "checkpoint(NULL): INVALID");
    txkv_close(db);
}

/* Writes n bytes to a new file. */
static void write_file(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0666);
    ok(fd >= 0 && write(fd, p, n) == (ssize_t)n, "write %zu bytes to a new file", n);
    close(fd);
}

/*
 * 8. Zero tails and segment ends (W8).  A kill -9 leaves the segment's
 * last mapped window as zeros past the last record: not damage, nothing
 * dropped, and appends go on in that segment after it.  A segment the
 * log goes on from ends with a WAL_SEG_END record (a checkpoint's
 * rotation writes it); one that does not, ends the log: a later segment
 * is dropped, its non-zero bytes reported.
 */
static void test_segments(void)
{
    char *dir = wt_mkdtemp(), path[1024], path2[1024], rec[128];
    txkv_db *db;
    struct txkv_stats st;
    is(wt_open(dir, TXKV_SYNC_COMMIT, &db), 0, "open");
    is(wt_put(db, NULL, "x", "1"), 0, "put x");
    txkv_close(db);
    long len = wt_newest_segment(dir, path, sizeof path);
    ok(len > 0 && wt_file(dir, "wal-", NULL, 0) == len, "close leaves no zero tail (%ld bytes)",
       len);
    static const char zeros[3 * 4096];
    append_file(path, zeros, sizeof zeros);
    is(wt_open(dir, TXKV_SYNC_COMMIT, &db), 0, "reopen after a zero tail");
    txkv_stats(db, &st);
    is(st.recovered_bytes_dropped, 0, "zeros are not dropped bytes");
    ok(wt_get(db, NULL, "x", vbuf, sizeof vbuf) == 0, "x there");
    is(wt_put(db, NULL, "y", "2"), 0, "put y");
    txkv_close(db);
    long len2 = wt_newest_segment(dir, path2, sizeof path2);
    ok(!strcmp(path, path2) && len2 > len && wt_file(dir, "wal-", NULL, 0) == len2,
       "y went on in the same segment, where x's record ended");

    /* The next segment by number, holding a good record: the one before
     * it has no WAL_SEG_END, so the log ended there. */
    unsigned long long seg = 0;
    int got = sscanf(strrchr(path, '/') + 1, "wal-%llx.log", &seg);
    ok(got == 1, "the segment is number %llu", seg);
    snprintf(path2, sizeof path2, "%s/wal-%016llx.log", dir, seg + 1);
    write_file(path2, rec, hand_record(rec, 1, 1u << 30));
    is(wt_open(dir, TXKV_SYNC_COMMIT, &db), 0, "reopen with a segment after an unended one");
    txkv_stats(db, &st);
    is(st.recovered_bytes_dropped, hand_record(rec, 1, 1u << 30), "its bytes are reported dropped");
    is(wt_get(db, NULL, "hand", vbuf, sizeof vbuf), TXKV_NOTFOUND, "its record is not applied");
    ok(access(path2, F_OK) != 0, "the segment is gone");
    ok(wt_get(db, NULL, "y", vbuf, sizeof vbuf) == 0, "y there");

    /* A checkpoint's rotation ends the old segment with WAL_SEG_END; the
     * commits after it are in the next segment and recovered. */
    is(txkv_checkpoint(db), 0, "checkpoint");
    is(wt_put(db, NULL, "z", "3"), 0, "put z");
    txkv_close(db);
    is(wt_open(dir, TXKV_SYNC_COMMIT, &db), 0, "reopen");
    ok(wt_get(db, NULL, "x", vbuf, sizeof vbuf) == 0 &&
           wt_get(db, NULL, "y", vbuf, sizeof vbuf) == 0 &&
           wt_get(db, NULL, "z", vbuf, sizeof vbuf) == 0,
       "x, y, z there");
    txkv_stats(db, &st);
    is(st.recovered_bytes_dropped, 0, "nothing dropped");
    txkv_close(db);
    wt_rmdir(dir);
    free(dir);
}

static void test_auto_and_interval(void)
{
    char *dir = wt_mkdtemp(), key[32];
    txkv_db *db;
    txkv_options o;
    txkv_options_init(&o);
    o.dir = dir;
    o.sync = TXKV_SYNC_INTERVAL;
    o.sync_interval_ms = 5;
    o.checkpoint_log_bytes = 16384;
    is(txkv_open(&o, &db), 0, "open (INTERVAL, checkpoint every 16 KiB of log)");
    int bad = 0;
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "key%04d", i);
        bad += wt_put(db, NULL, key, "some value of a few bytes") != 0;
    }
    is(bad, 0, "1000 commits");
    struct txkv_stats st;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do { /* the thread runs on its own: poll for it, up to 60 s */
        txkv_stats(db, &st);
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (!st.checkpoint_ts)
            sched_yield();
    } while (!st.checkpoint_ts && t.tv_sec - t0.tv_sec < 60);
    ok(st.checkpoint_ts > 0, "an automatic checkpoint was written");
    txkv_close(db);
    is(txkv_open(&o, &db), 0, "reopen");
    txkv_stats(db, &st);
    is(st.keys, 1000, "every key recovered");
    txkv_close(db);
    wt_rmdir(dir);
    free(dir);
}

int main(void)
{
    test_auto_and_interval();
    test_roundtrip();
    test_checkpoint();
    test_hand_and_versions();
    test_busy_and_tail();
    test_segments();
    return done_testing();
}
