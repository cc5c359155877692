/*
 * log.c - the write-ahead log: record encoding, appends in commit order,
 * the mapped window, group commit, the sync policies, segment rotation,
 * the background thread.
 *
 * The segment being appended to is mapped MAP_SHARED, a window of
 * wal_window_bytes at a time, its blocks allocated before it is mapped.
 * An append copies an already sealed record into the window under w->mu:
 * no system call, and once the copy is done the bytes are in the page
 * cache, where a kill -9 of the process cannot take them (TXKV_SYNC_NONE
 * and INTERVAL promise that much).  Under TXKV_SYNC_COMMIT, whoever waits
 * for an LSN not yet synced and finds no leader becomes the leader: one
 * fdatasync, without the mutex, for everything appended so far; then it
 * advances synced and wakes everyone.  So every commit queued behind a
 * sync shares the next one (group commit), and I/O never runs under a
 * lock a committer needs.  Invariants (src/wal/README): W1 synced <=
 * appended; W2 bytes reach the segment in append order; W3 once failed is
 * set, synced never advances again and every wait returns TXKV_IO; W8 a
 * segment the log goes on from ends with a WAL_SEG_END record.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

static int sys_fallocate(int fd, off_t off, off_t len)
{
    int e = posix_fallocate(fd, off, len); /* returns the error, sets no errno */
    if (e) {
        errno = e;
        return -1;
    }
    return 0;
}

struct wal_io wal_io = {sys_pwrite, sys_fdatasync, sys_fsync, sys_fallocate};

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

void wal_remove(const struct wal *w, const char *fmt, uint64_t n)
{
    char *p = wal_path(w, fmt, n);
    if (p)
        unlink(p);
    free(p);
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

#define WAL_REC_KEEP ((size_t)64 << 10)

void wal_rec_reset(struct wal_rec *r)
{
    if (r->cap > WAL_REC_KEEP)
        wal_rec_free(r); /* a large transaction's: not kept for every commit after it */
    else if (r->buf)
        r->len = WAL_REC_HDR;
}

/* ---- the mapped window ---- */

size_t wal_window_bytes = WAL_WINDOW_BYTES;

/* Marks the log failed (W3) and wakes every waiter.  Caller holds mu. */
static void log_fail(struct wal *w, int e)
{
    atomic_store(&w->failed, e ? e : EIO);
    pthread_cond_broadcast(&w->cv);
}

/*
 * Maps the window of fd that holds offset off: wal_window_bytes from off
 * rounded down to a multiple of them.  Its blocks are allocated first, so
 * a store into the mapping never meets a full disk (which would be a
 * SIGBUS, not an error code).  0 or an errno.
 */
static int map_window(int fd, off_t off, char **winp, off_t *basep)
{
    off_t wb = (off_t)wal_window_bytes, base = off - off % wb;
    if (wal_io.fallocate(fd, base, wb))
        return errno ? errno : EIO;
    void *p = mmap(NULL, (size_t)wb, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, base);
    if (p == MAP_FAILED)
        return errno ? errno : ENOMEM;
    *winp = p;
    *basep = base;
    return 0;
}

/* Opens segment seg, new (create) or to go on at off, with its window. */
static int open_segment(struct wal *w, uint64_t seg, bool create, off_t off, struct wal_seg *sp)
{
    char *p = wal_path(w, "wal-%016llx.log", seg);
    if (!p)
        return ENOMEM;
    int fd = open(p, O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_TRUNC : 0), 0666);
    int e = fd < 0 ? errno : 0;
    if (!e && (e = map_window(fd, off, &sp->win, &sp->win_off))) {
        close(fd);
        if (create)
            unlink(p);
    }
    free(p);
    if (e)
        return e;
    sp->fd = fd;
    sp->off = off;
    return 0;
}

/* Unmaps the window, cuts the unused tail the windows allocated, syncs if
 * asked, closes.  0 or the first errno. */
static int finish_segment(struct wal_seg *sp, bool sync)
{
    char *wins[] = {sp->win, sp->next, sp->done};
    for (size_t i = 0; i < 3; i++)
        if (wins[i])
            munmap(wins[i], wal_window_bytes);
    int e = ftruncate(sp->fd, sp->off) ? errno : 0;
    if (!e && sync)
        e = sync_fd(sp->fd, true);
    close(sp->fd);
    sp->fd = -1;
    sp->win = sp->next = sp->done = NULL;
    return e;
}

/*
 * Moves the window on, once it is full.  Mapping a window costs a page
 * allocation per page (about 3 ms for 4 MiB on tmpfs here), and appends
 * run in the ordered section every committer waits on: so a committer maps
 * the next window ahead, in wal_wait, outside that section and without mu
 * (prepare_next), and here the move is a pointer swap.  Only if that has
 * not happened yet is the window mapped here.  Caller holds mu.
 */
static int move_window(struct wal_seg *sp)
{
    size_t wb = wal_window_bytes;
    if (sp->next) {
        if (sp->done) /* not unmapped yet: rare, it waits for a committer */
            munmap(sp->done, wb);
        sp->done = sp->win;
        sp->win = sp->next;
        sp->next = NULL;
        sp->win_off += (off_t)wb;
        return 0;
    }
    munmap(sp->win, wb);
    sp->win = NULL;
    return map_window(sp->fd, sp->off, &sp->win, &sp->win_off);
}

/*
 * Copies n bytes to the end of the log: into the window, moving it on
 * when it is full.  Caller holds mu and has seen the log not failed.
 * Once the copy is done the bytes are in the page cache: a kill -9 of
 * the process from here on loses none of them.  false: the window could
 * not move (the log fails; the bytes copied so far are a torn tail).
 */
static bool log_put(struct wal *w, const char *p, size_t n)
{
    struct wal_seg *sp = &w->cur;
    size_t wb = wal_window_bytes;
    w->appended += n;
    while (n) {
        size_t used = (size_t)(sp->off - sp->win_off);
        if (used == wb) {
            int e = move_window(sp);
            if (e) {
                log_fail(w, e);
                return false;
            }
            used = 0;
        }
        size_t k = n < wb - used ? n : wb - used;
        memcpy(sp->win + used, p, k);
        p += k;
        n -= k;
        sp->off += (off_t)k;
    }
    if (!sp->next && !w->preparing && (size_t)(sp->off - sp->win_off) >= wb / 2 &&
        !atomic_load_explicit(&w->want_next, memory_order_relaxed))
        atomic_store_explicit(&w->want_next, true, memory_order_relaxed);
    if (w->ckpt_bytes && wal_log_bytes(w) >= w->ckpt_bytes && !w->ckpt_wanted) {
        w->ckpt_wanted = true;
        pthread_cond_signal(&w->bg_cv);
    }
    return true;
}

/* ---- appends and group commit ---- */

void wal_rec_seal(struct wal_rec *r, uint64_t ts)
{
    size_t payload = r->len - WAL_REC_HDR;
    wal_encode_hdr(r->buf, WAL_COMMIT, payload, ts);
    wal_seal(r->buf, payload);
}

uint64_t wal_append_commit(struct wal *w, const struct wal_rec *r, uint64_t ts)
{
    uint64_t lsn = 0;
    mutex_lock(&w->mu);
    if (!atomic_load_explicit(&w->failed, memory_order_relaxed) &&
        log_put(w, r->buf, r->len + WAL_REC_TAIL)) {
        lsn = w->appended;
        w->last_ts = ts;
    }
    mutex_unlock(&w->mu);
    return lsn;
}

/*
 * Becomes the leader: makes everything appended so far durable with one
 * fdatasync (it also writes back what stores into the mapping dirtied).
 * Caller holds mu and no leader runs; mu is dropped during the sync and
 * held again on return.
 */
static void lead(struct wal *w)
{
    assert(!w->leader);
    w->leader = true;
    uint64_t end = w->appended;
    bool need = w->synced < end;
    int fd = w->cur.fd; /* only a leader changes it (rotation) */
    mutex_unlock(&w->mu);
    int e = need ? sync_fd(fd, true) : 0;
    mutex_lock(&w->mu);
    if (e)
        log_fail(w, e); /* W3: never retry and pretend (fsyncgate) */
    else if (need)
        w->synced = end;
    w->leader = false;
    pthread_cond_broadcast(&w->cv);
}

static int wait_synced(struct wal *w, uint64_t lsn)
{
    int rc = 0;
    mutex_lock(&w->mu);
    for (;;) {
        if (atomic_load_explicit(&w->failed, memory_order_relaxed)) {
            rc = TXKV_IO;
            break;
        }
        if (w->synced >= lsn)
            break;
        if (!w->leader) {
            lead(w);
            continue;
        }
        /* A leader's sync may be short (a page-cache file system); a futex
         * sleep and wake-up cost more than that here: pause a little
         * before sleeping. */
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

/*
 * Maps the current segment's next window ahead (move_window says why),
 * and unmaps the one appends left.  A committer calls it from wal_wait,
 * out of the ordered section.  The file stays open meanwhile: a rotation
 * waits for `preparing` to clear before it swaps segments.  The result is
 * kept only if it is still the window after cur.win; a failure is left
 * for move_window to meet, and fail the log, in its turn.
 */
static void prepare_next(struct wal *w)
{
    size_t wb = wal_window_bytes;
    mutex_lock(&w->mu);
    atomic_store_explicit(&w->want_next, false, memory_order_relaxed);
    if (w->preparing || w->cur.next || atomic_load_explicit(&w->failed, memory_order_relaxed)) {
        mutex_unlock(&w->mu);
        return;
    }
    w->preparing = true;
    int fd = w->cur.fd;
    off_t at = w->cur.win_off + (off_t)wb;
    char *done = w->cur.done;
    w->cur.done = NULL;
    mutex_unlock(&w->mu);

    if (done)
        munmap(done, wb);
    char *win = NULL;
    off_t base;
    int e = map_window(fd, at, &win, &base);

    mutex_lock(&w->mu);
    w->preparing = false;
    if (!e && at == w->cur.win_off + (off_t)wb && !w->cur.next) {
        w->cur.next = win;
        win = NULL;
    }
    pthread_cond_broadcast(&w->cv); /* a rotation may wait for preparing */
    mutex_unlock(&w->mu);
    if (win)
        munmap(win, wb); /* appends moved on without it */
}

int wal_wait(struct wal *w, uint64_t lsn)
{
    if (atomic_load_explicit(&w->want_next, memory_order_relaxed))
        prepare_next(w);
    if (!lsn)
        return TXKV_IO; /* the append found the log failed */
    if (w->sync != TXKV_SYNC_COMMIT)
        return wal_check(w); /* W1: the append copied it into the page cache */
    return wait_synced(w, lsn);
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
        log_put(w, rec, WAL_REC_HDR + 2 + nlen + WAL_REC_TAIL))
        lsn = w->appended;
    mutex_unlock(&w->mu);
    return wal_wait(w, lsn);
}

/* ---- segments ---- */

int wal_open_segment(struct wal *w, bool create)
{
    int e = open_segment(w, w->seg, create, w->cur.off, &w->cur);
    if (!e && create)
        e = wal_fsync_dir(w);
    return e ? TXKV_IO : 0;
}

/*
 * Starts a new segment.  The new file is made, allocated, mapped and its
 * name synced first, with no lock held; then, under mu, a WAL_SEG_END
 * record ends the old segment (the log goes on in the next one, W8) and
 * the segments swap: appends go on at once, into the new one.  The old
 * one is then cut to its length and synced (unless the policy is NONE)
 * while this thread holds the leader flag, so no commit is acknowledged
 * as synced past the swap before it is.  *last_ts: the commit ts of the
 * last record in the old segments.  Checkpoints only (ckpt_mu held).
 * 0 or TXKV_IO; a failure before the swap fails the checkpoint only.
 */
int wal_rotate(struct wal *w, uint64_t *last_ts)
{
    struct wal_seg next = {.fd = -1}, old;
    int e = open_segment(w, w->seg + 1, true, 0, &next);
    if (!e && (e = wal_fsync_dir(w)) != 0) {
        finish_segment(&next, false);
        wal_remove(w, "wal-%016llx.log", w->seg + 1);
    }
    if (e)
        return TXKV_IO;

    char end[WAL_REC_HDR + WAL_REC_TAIL];
    wal_encode_hdr(end, WAL_SEG_END, 0, 0);
    wal_seal(end, 0);
    mutex_lock(&w->mu);
    while (w->leader || w->preparing)
        mutex_cond_wait(&w->mu, &w->cv, NULL);
    if (atomic_load_explicit(&w->failed, memory_order_relaxed) || !log_put(w, end, sizeof end)) {
        mutex_unlock(&w->mu);
        finish_segment(&next, false); /* an empty file: recovery drops it (W8) */
        return TXKV_IO;
    }
    /* Hold leadership while the old file is finished: no sync runs on
     * the new one, so synced cannot pass the old one's end before it is
     * durable. */
    w->leader = true;
    old = w->cur;
    w->cur = next;
    atomic_store_explicit(&w->want_next, false, memory_order_relaxed);
    w->seg++;
    uint64_t old_end = w->appended;
    *last_ts = w->last_ts;
    w->log_base = w->appended;
    w->ckpt_wanted = false;
    mutex_unlock(&w->mu);

    e = finish_segment(&old, w->sync != TXKV_SYNC_NONE);

    mutex_lock(&w->mu);
    if (e)
        log_fail(w, e);
    else if (w->sync != TXKV_SYNC_NONE && w->synced < old_end)
        w->synced = old_end;
    w->leader = false;
    pthread_cond_broadcast(&w->cv);
    mutex_unlock(&w->mu);
    return e ? TXKV_IO : 0;
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
                lead(w);
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
    if (w->cur.fd >= 0) {
        /* Nobody else runs now: the thread is joined, no commit is open. */
        bool sync =
            !atomic_load_explicit(&w->failed, memory_order_relaxed) && w->sync != TXKV_SYNC_NONE;
        (void)finish_segment(&w->cur, sync);
    }
    if (w->lockfd >= 0)
        close(w->lockfd); /* releases the flock */
    if (w->dirfd >= 0)
        close(w->dirfd);
    pthread_cond_destroy(&w->cv);
    pthread_cond_destroy(&w->bg_cv);
    pthread_mutex_destroy(&w->ckpt_mu);
    pthread_mutex_destroy(&w->scan.mu);
    mutex_destroy(&w->mu);
    free(w->dir);
    free(w);
}

void wal_stats(struct wal *w, struct txkv_stats *st)
{
    mutex_lock(&w->mu);
    st->log_bytes = wal_log_bytes(w);
    mutex_unlock(&w->mu);
    st->checkpoint_ts = atomic_load(&w->ckpt_ts);
    st->recovered_bytes_dropped = w->recovered_dropped;
}
