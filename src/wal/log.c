/*
 * log.c - the write-ahead log: record encoding, appends in commit order,
 * group commit, the sync policies, segment rotation, the background thread.
 *
 * Appends copy an already sealed record into w->buf under w->mu; nothing
 * in an append waits for I/O.  Whoever waits for an LSN that is not yet
 * written (or synced) and finds no leader becomes the leader: it takes the
 * whole buffer (swapping in the spare), writes it and, if asked to, calls
 * fdatasync, all without the mutex; then it advances written/synced and
 * wakes everyone.  So every commit queued behind a sync shares the next
 * one (group commit), and I/O never runs under a lock a committer needs.
 * Invariants (src/wal/README): W1 synced <= written <= appended; W2 bytes
 * reach the file in append order; W3 once failed is set, written and
 * synced never advance again and every wait returns TXKV_IO.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "wal/wal.h"

static ssize_t sys_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    return pwrite(fd, buf, n, off);
}

static int sys_fdatasync(int fd)
{
    return fdatasync(fd);
}

static int sys_fsync(int fd)
{
    return fsync(fd);
}

struct wal_io wal_io = {sys_pwrite, sys_fdatasync, sys_fsync};

/* Writes n bytes at off, continuing after short writes; 0 or an errno. */
int wal_write_all(int fd, const void *buf, size_t n, off_t off)
{
    const char *p = buf;
    while (n) {
        ssize_t k = wal_io.pwrite(fd, p, n, off);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return errno ? errno : EIO;
        }
        if (k == 0)
            return ENOSPC;
        p += k;
        n -= (size_t)k;
        off += k;
    }
    return 0;
}

static int sync_fd(int fd, bool data_only)
{
    int e = data_only ? wal_io.fdatasync(fd) : wal_io.fsync(fd);
    return e ? (errno ? errno : EIO) : 0;
}

int wal_fsync_dir(struct wal *w)
{
    return sync_fd(w->dirfd, false);
}

char *wal_path(const struct wal *w, const char *fmt, uint64_t n)
{
    char name[64];
    snprintf(name, sizeof name, fmt, (unsigned long long)n);
    size_t len = strlen(w->dir) + strlen(name) + 2;
    char *p = malloc(len);
    if (p)
        snprintf(p, len, "%s/%s", w->dir, name);
    return p;
}

/* ---- records ---- */

size_t wal_encode_hdr(char *p, int type, size_t payload, uint64_t ts)
{
    uint32_t len = (uint32_t)payload;
    p[0] = (char)type;
    p[1] = WAL_FORMAT_VERSION;
    p[2] = p[3] = 0;
    memcpy(p + 4, &len, 4);
    memcpy(p + 8, &ts, 8);
    return WAL_REC_HDR;
}

/* Writes the checksum after a record whose header and payload are in place. */
void wal_seal(char *rec, size_t payload)
{
    uint64_t h = XXH3_64bits(rec, WAL_REC_HDR + payload);
    memcpy(rec + WAL_REC_HDR + payload, &h, 8);
}

static int rec_reserve(struct wal_rec *r, size_t more)
{
    if (!r->buf) {
        r->cap = 256 + more;
        if (!(r->buf = malloc(r->cap)))
            return TXKV_NOMEM;
        r->len = WAL_REC_HDR;
    }
    if (r->len + more + WAL_REC_TAIL > r->cap) {
        size_t cap = (r->len + more + WAL_REC_TAIL) * 2;
        char *b = realloc(r->buf, cap);
        if (!b)
            return TXKV_NOMEM;
        r->buf = b;
        r->cap = cap;
    }
    return 0;
}

int wal_rec_add(struct wal_rec *r, const struct txkv_ks *ks, const void *key, size_t klen,
                const void *val, size_t vlen, bool tomb)
{
    size_t nlen = strlen(ks->name);
    size_t need = 8 + nlen + klen + (tomb ? 0 : vlen);
    if (rec_reserve(r, need))
        return TXKV_NOMEM;
    if (r->len + need > WAL_REC_MAX)
        return TXKV_INVALID;
    char *p = r->buf + r->len;
    uint16_t k16 = (uint16_t)klen;
    uint32_t v32 = tomb ? 0 : (uint32_t)vlen;
    p[0] = tomb ? 1 : 0;
    p[1] = (char)nlen;
    memcpy(p + 2, &k16, 2);
    memcpy(p + 4, &v32, 4);
    memcpy(p + 8, ks->name, nlen);
    memcpy(p + 8 + nlen, key, klen);
    if (v32)
        memcpy(p + 8 + nlen + klen, val, vlen);
    r->len += need;
    return 0;
}

void wal_rec_free(struct wal_rec *r)
{
    free(r->buf);
    r->buf = NULL;
    r->len = r->cap = 0;
}

/* ---- appends and group commit ---- */

/* Copies len bytes into the buffer.  Caller holds mu.  false: no memory
 * (the log fails: this record can never be written in its place). */
static bool buf_put(struct wal *w, const char *p, size_t len)
{
    if (w->len + len > w->cap) {
        size_t cap = w->cap ? w->cap : 1 << 16;
        while (cap < w->len + len)
            cap *= 2;
        char *b = realloc(w->buf, cap);
        if (!b) {
            atomic_store(&w->failed, ENOMEM);
            pthread_cond_broadcast(&w->cv);
            return false;
        }
        w->buf = b;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, p, len);
    w->len += len;
    w->appended += len;
    w->log_bytes += len;
    if (w->ckpt_bytes && w->log_bytes >= w->ckpt_bytes && !w->ckpt_wanted) {
        w->ckpt_wanted = true;
        pthread_cond_signal(&w->bg_cv);
    }
    return true;
}

uint64_t wal_append_commit(struct wal *w, struct wal_rec *r, uint64_t ts)
{
    size_t payload = r->len - WAL_REC_HDR;
    wal_encode_hdr(r->buf, WAL_COMMIT, payload, ts);
    wal_seal(r->buf, payload);
    uint64_t lsn = 0;
    mutex_lock(&w->mu);
    if (!atomic_load_explicit(&w->failed, memory_order_relaxed) &&
        buf_put(w, r->buf, r->len + WAL_REC_TAIL)) {
        lsn = w->appended;
        w->last_ts = ts;
    }
    mutex_unlock(&w->mu);
    return lsn;
}

/*
 * Becomes the leader: writes everything appended so far and, if sync,
 * makes it durable.  Caller holds mu and no leader runs; mu is dropped
 * during the I/O and held again on return.
 */
static void lead(struct wal *w, bool sync)
{
    assert(!w->leader);
    w->leader = true;
    char *b = w->buf;
    size_t n = w->len;
    size_t cap = w->cap;
    w->buf = w->spare;
    w->cap = w->spare_cap;
    w->len = 0;
    w->spare = b;
    w->spare_cap = cap;
    uint64_t end = w->appended;
    bool need_sync = sync && w->synced < end;
    mutex_unlock(&w->mu);

    /* Only the leader touches fd and seg_off (W2: one writer, in order). */
    int e = n ? wal_write_all(w->fd, b, n, w->seg_off) : 0;
    if (!e)
        w->seg_off += (off_t)n;
    if (!e && need_sync)
        e = sync_fd(w->fd, true);

    mutex_lock(&w->mu);
    if (e) {
        /* W3: never retry and pretend (fsyncgate) */
        atomic_store(&w->failed, e);
    } else {
        w->written = end;
        if (sync)
            w->synced = end;
    }
    w->leader = false;
    pthread_cond_broadcast(&w->cv);
}

static int wait_for(struct wal *w, uint64_t lsn, bool sync)
{
    int rc = 0;
    mutex_lock(&w->mu);
    for (;;) {
        if (atomic_load_explicit(&w->failed, memory_order_relaxed)) {
            rc = TXKV_IO;
            break;
        }
        if ((sync ? w->synced : w->written) >= lsn)
            break;
        if (!w->leader) {
            lead(w, sync);
            continue;
        }
        /* A leader's write takes microseconds; a futex sleep and wake-up
         * cost more than that here: pause a little before sleeping. */
        mutex_unlock(&w->mu);
        struct spin sp = {0};
        for (int i = 0; i < SPIN_PAUSES && atomic_load_explicit(&w->leader, memory_order_relaxed);
             i++)
            spin_wait(&sp);
        mutex_lock(&w->mu);
        if (w->leader)
            mutex_cond_wait(&w->mu, &w->cv, NULL);
    }
    mutex_unlock(&w->mu);
    return rc;
}

int wal_wait(struct wal *w, uint64_t lsn)
{
    if (!lsn)
        return TXKV_IO; /* the append found the log failed */
    return wait_for(w, lsn, w->sync == TXKV_SYNC_COMMIT);
}

int wal_log_keyspace(struct wal *w, const struct txkv_ks *ks)
{
    size_t nlen = strlen(ks->name);
    char rec[WAL_REC_HDR + 2 + 255 + WAL_REC_TAIL];
    wal_encode_hdr(rec, WAL_KEYSPACE, 2 + nlen, 0);
    rec[WAL_REC_HDR] = (char)ks->flags;
    rec[WAL_REC_HDR + 1] = (char)nlen;
    memcpy(rec + WAL_REC_HDR + 2, ks->name, nlen);
    wal_seal(rec, 2 + nlen);
    uint64_t lsn = 0;
    mutex_lock(&w->mu);
    if (!atomic_load_explicit(&w->failed, memory_order_relaxed) &&
        buf_put(w, rec, WAL_REC_HDR + 2 + nlen + WAL_REC_TAIL))
        lsn = w->appended;
    mutex_unlock(&w->mu);
    return wal_wait(w, lsn);
}

/* ---- segments ---- */

static int open_segment(struct wal *w, uint64_t seg, int *fdp)
{
    char *p = wal_path(w, "wal-%016llx.log", seg);
    if (!p)
        return ENOMEM;
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    int e = fd < 0 ? errno : 0;
    free(p);
    if (e)
        return e;
    *fdp = fd;
    return 0;
}

int wal_open_first_segment(struct wal *w)
{
    int e = open_segment(w, w->seg, &w->fd);
    if (!e)
        e = wal_fsync_dir(w);
    w->seg_off = 0;
    return e ? TXKV_IO : 0;
}

/*
 * Starts a new segment: everything appended so far goes to the old one,
 * which is synced (unless the policy is NONE) and closed.  *last_ts: the
 * commit ts of the last record in the old segments.  Checkpoints only
 * (ckpt_mu held).  0 or TXKV_IO.
 */
int wal_rotate(struct wal *w, uint64_t *last_ts)
{
    int rc = 0;
    mutex_lock(&w->mu);
    while (w->leader)
        mutex_cond_wait(&w->mu, &w->cv, NULL);
    if (atomic_load_explicit(&w->failed, memory_order_relaxed)) {
        mutex_unlock(&w->mu);
        return TXKV_IO;
    }
    lead(w, w->sync != TXKV_SYNC_NONE);
    *last_ts = w->last_ts;
    if (atomic_load_explicit(&w->failed, memory_order_relaxed)) {
        mutex_unlock(&w->mu);
        return TXKV_IO;
    }
    /* Hold leadership while the files change: no append waits for I/O. */
    w->leader = true;
    mutex_unlock(&w->mu);
    int fd = -1;
    int e = open_segment(w, w->seg + 1, &fd);
    if (!e)
        e = wal_fsync_dir(w);
    mutex_lock(&w->mu);
    if (e) {
        if (fd >= 0)
            close(fd);
        atomic_store(&w->failed, e);
        rc = TXKV_IO;
    } else {
        close(w->fd);
        w->fd = fd;
        w->seg++;
        w->seg_off = 0;
        w->log_bytes = w->len; /* appended since the old segment was written */
        w->ckpt_wanted = false;
    }
    w->leader = false;
    pthread_cond_broadcast(&w->cv);
    mutex_unlock(&w->mu);
    return rc;
}

/* ---- the background thread ---- */

static void *bg_main(void *arg)
{
    struct wal *w = arg;
    mutex_lock(&w->mu);
    while (!w->stop) {
        if (w->ckpt_wanted) {
            w->ckpt_wanted = false;
            mutex_unlock(&w->mu);
            (void)wal_checkpoint(w); /* a failure fails the log: commits see it */
            mutex_lock(&w->mu);
            continue;
        }
        if (w->sync == TXKV_SYNC_INTERVAL) {
            uint64_t dl = now_ns() + (uint64_t)w->interval_ms * 1000000u;
            struct timespec ts = {(time_t)(dl / 1000000000u), (long)(dl % 1000000000u)};
            mutex_cond_wait(&w->mu, &w->bg_cv, &ts);
            if (w->stop || w->ckpt_wanted)
                continue;
            if (!w->leader && w->synced < w->appended &&
                !atomic_load_explicit(&w->failed, memory_order_relaxed))
                lead(w, true);
        } else {
            mutex_cond_wait(&w->mu, &w->bg_cv, NULL);
        }
    }
    mutex_unlock(&w->mu);
    return NULL;
}

int wal_start_thread(struct wal *w)
{
    if (w->sync != TXKV_SYNC_INTERVAL && !w->ckpt_bytes)
        return 0;
    if (pthread_create(&w->thread, NULL, bg_main, w))
        return TXKV_NOMEM;
    w->thread_running = true;
    return 0;
}

void wal_close(struct wal *w)
{
    if (!w)
        return;
    if (w->thread_running) {
        mutex_lock(&w->mu);
        w->stop = true;
        pthread_cond_signal(&w->bg_cv);
        mutex_unlock(&w->mu);
        pthread_join(w->thread, NULL);
    }
    if (w->fd >= 0) {
        mutex_lock(&w->mu);
        if (!atomic_load_explicit(&w->failed, memory_order_relaxed) && !w->leader)
            lead(w, w->sync != TXKV_SYNC_NONE);
        mutex_unlock(&w->mu);
        close(w->fd);
    }
    if (w->lockfd >= 0)
        close(w->lockfd); /* releases the flock */
    if (w->dirfd >= 0)
        close(w->dirfd);
    pthread_cond_destroy(&w->cv);
    pthread_cond_destroy(&w->bg_cv);
    pthread_mutex_destroy(&w->ckpt_mu);
    mutex_destroy(&w->mu);
    free(w->buf);
    free(w->spare);
    free(w->dir);
    free(w);
}

void wal_stats(struct wal *w, struct txkv_stats *st)
{
    mutex_lock(&w->mu);
    st->log_bytes = w->log_bytes;
    mutex_unlock(&w->mu);
    st->checkpoint_ts = atomic_load(&w->ckpt_ts);
    st->recovered_bytes_dropped = w->recovered_dropped;
}
