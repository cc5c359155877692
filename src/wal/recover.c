/*
 * recover.c - opening a database directory: the format check, the lock
 * file, the newest checkpoint and the log after it, applied in commit
 * order; a torn or corrupt record ends the log and the tail is cut.
 *
 * Runs single-threaded inside txkv_open, before the database is handed
 * out and before any commit; files are read through mmap, records checked
 * (XXH3) before anything in them is applied, so a transaction is applied
 * whole or not at all.  docs/durability.md gives the argument.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "wal/wal.h"

#define FORMAT_MAGIC "txkv database format "

/* What a directory holds. */
struct dirscan {
    bool has_format, foreign;
    uint64_t *segs, *ckpts;
    size_t nsegs, ncapsegs, nckpts, ncapckpts;
};

static int add_num(uint64_t **a, size_t *n, size_t *cap, uint64_t v)
{
    if (VEC_RESERVE(*a, *cap, *n + 1, 8))
        return TXKV_NOMEM;
    (*a)[(*n)++] = v;
    return 0;
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* A name "PREFIX%016llx.SUFFIX"; sets *n. */
static bool match_num(const char *name, const char *prefix, const char *suffix, uint64_t *n)
{
    size_t pl = strlen(prefix), sl = strlen(suffix);
    if (strlen(name) != pl + 16 + sl || strncmp(name, prefix, pl) || strcmp(name + pl + 16, suffix))
        return false;
    uint64_t v = 0;
    for (size_t i = pl; i < pl + 16; i++) {
        char c = name[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return false;
        v = v << 4 | (uint64_t)d;
    }
    *n = v;
    return true;
}

static int scan_dir(int dirfd, struct dirscan *s)
{
    int fd = dup(dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return TXKV_IO;
    }
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        const char *n = e->d_name;
        uint64_t v;
        if (!strcmp(n, ".") || !strcmp(n, "..") || !strcmp(n, "LOCK") || !strcmp(n, "ckpt.tmp") ||
            !strcmp(n, "FORMAT.tmp"))
            continue;
        if (!strcmp(n, "FORMAT"))
            s->has_format = true;
        else if (match_num(n, "wal-", ".log", &v))
            rc = add_num(&s->segs, &s->nsegs, &s->ncapsegs, v);
        else if (match_num(n, "ckpt-", ".ckpt", &v))
            rc = add_num(&s->ckpts, &s->nckpts, &s->ncapckpts, v);
        else
            s->foreign = true;
    }
    closedir(d);
    if (s->nsegs)
        qsort(s->segs, s->nsegs, 8, u64_cmp);
    if (s->nckpts)
        qsort(s->ckpts, s->nckpts, 8, u64_cmp);
    return rc;
}

/* FORMAT: "txkv database format N\n".  0, or TXKV_INVALID. */
static int check_format(int dirfd)
{
    char buf[64] = {0};
    int fd = openat(dirfd, "FORMAT", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return TXKV_IO;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    size_t ml = strlen(FORMAT_MAGIC);
    if (n < (ssize_t)ml + 1 || strncmp(buf, FORMAT_MAGIC, ml))
        return TXKV_INVALID;
    char *end;
    unsigned long v = strtoul(buf + ml, &end, 10);
    if (end == buf + ml || *end != '\n' || v == 0 || v > WAL_FORMAT_VERSION)
        return TXKV_INVALID; /* a newer format: leave it alone */
    return 0;
}

static int write_format(struct wal *w)
{
    char buf[64];
    int n = snprintf(buf, sizeof buf, FORMAT_MAGIC "%d\n", WAL_FORMAT_VERSION);
    int fd = openat(w->dirfd, "FORMAT.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0)
        return TXKV_IO;
    int e = wal_write_all(fd, buf, (size_t)n, 0);
    if (!e && wal_io.fsync(fd))
        e = EIO;
    close(fd);
    if (!e && renameat(w->dirfd, "FORMAT.tmp", w->dirfd, "FORMAT"))
        e = errno;
    if (!e)
        e = wal_fsync_dir(w);
    return e ? TXKV_IO : 0;
}

/* ---- reading records ---- */

enum { REC_OK, REC_TORN, REC_NEWER };

struct rec {
    int type;
    uint64_t ts;
    const char *payload;
    size_t len;  /* payload */
    size_t size; /* whole record */
};

static int parse_rec(const char *p, size_t avail, struct rec *r)
{
    uint32_t len;
    if (avail < WAL_REC_HDR + WAL_REC_TAIL)
        return REC_TORN;
    memcpy(&len, p + 4, 4);
    if ((size_t)len > avail - WAL_REC_HDR - WAL_REC_TAIL)
        return REC_TORN;
    uint64_t h;
    memcpy(&h, p + WAL_REC_HDR + len, 8);
    if (XXH3_64bits(p, WAL_REC_HDR + (size_t)len) != h)
        return REC_TORN;
    if (p[1] != WAL_FORMAT_VERSION || p[2] || p[3])
        return REC_NEWER;
    r->type = (unsigned char)p[0];
    memcpy(&r->ts, p + 8, 8);
    r->payload = p + WAL_REC_HDR;
    r->len = len;
    r->size = WAL_REC_HDR + (size_t)len + WAL_REC_TAIL;
    return REC_OK;
}

struct applier {
    struct ks_set *set;
    struct txkv_ks *last; /* the keyspace of the last entry */
    struct wal_loader ld;
};

static int find_ks(struct applier *a, const char *name, size_t nlen, struct txkv_ks **ksp)
{
    char buf[256];
    if (a->last && strlen(a->last->name) == nlen && !memcmp(a->last->name, name, nlen)) {
        *ksp = a->last;
        return 0;
    }
    memcpy(buf, name, nlen);
    buf[nlen] = 0;
    int rc = ks_open(a->set, buf, 0, ksp);
    if (rc == 0)
        a->last = *ksp;
    return rc == TXKV_NOTFOUND ? TXKV_IO : rc; /* a write to an unknown keyspace */
}

/* Checks that a payload of entries decodes; then (apply) applies them at ts:
 * fresh, a checkpoint's (wal_apply_fresh), else a commit's. */
static int entries(struct applier *a, const struct rec *r, bool apply, uint64_t ts, bool fresh)
{
    const char *p = r->payload, *end = r->payload + r->len;
    while (p < end) {
        if (end - p < 8)
            return TXKV_IO;
        uint16_t klen;
        uint32_t vlen;
        bool tomb = p[0] & 1;
        size_t nlen = (unsigned char)p[1];
        memcpy(&klen, p + 2, 2);
        memcpy(&vlen, p + 4, 4);
        if ((size_t)(end - p) < 8 + nlen + klen + (size_t)vlen || !nlen || !klen || (tomb && vlen))
            return TXKV_IO;
        if (apply) {
            struct txkv_ks *ks;
            int rc = find_ks(a, p + 8, nlen, &ks);
            const char *key = p + 8 + nlen, *val = key + klen;
            if (!rc && fresh)
                rc = tomb ? TXKV_IO : wal_apply_fresh(&a->ld, ks, key, klen, val, vlen, ts);
            else if (!rc)
                rc = wal_apply_write(&a->ld, ks, key, klen, val, vlen, tomb, ts);
            if (rc)
                return rc;
        }
        p += 8 + nlen + klen + vlen;
    }
    return 0;
}

static int keyspace_rec(struct applier *a, const struct rec *r)
{
    char name[256];
    if (r->len < 2 || r->len != 2 + (size_t)(unsigned char)r->payload[1] || r->len == 2)
        return TXKV_IO;
    memcpy(name, r->payload + 2, r->len - 2);
    name[r->len - 2] = 0;
    struct txkv_ks *ks;
    unsigned flags = (unsigned char)r->payload[0] & (TXKV_HASH | TXKV_ORDERED);
    return wal_apply_keyspace(a->set, name, flags, &ks);
}

struct mapped {
    int fd;
    const char *p;
    size_t size;
};

static int map_file(struct wal *w, const char *fmt, uint64_t n, struct mapped *m)
{
    char *path = wal_path(w, fmt, n);
    if (!path)
        return TXKV_NOMEM;
    m->fd = open(path, O_RDWR | O_CLOEXEC);
    free(path);
    m->p = NULL;
    m->size = 0;
    if (m->fd < 0)
        return TXKV_IO;
    struct stat st;
    if (fstat(m->fd, &st)) {
        close(m->fd);
        return TXKV_IO;
    }
    m->size = (size_t)st.st_size;
    if (m->size) {
        void *p = mmap(NULL, m->size, PROT_READ, MAP_PRIVATE, m->fd, 0);
        if (p == MAP_FAILED) {
            close(m->fd);
            return TXKV_IO;
        }
        m->p = p;
    }
    return 0;
}

static void unmap_file(struct mapped *m)
{
    if (m->p)
        munmap((void *)m->p, m->size);
    close(m->fd);
}

static int load_checkpoint(struct wal *w, struct applier *a, uint64_t ts)
{
    struct mapped m;
    int rc = map_file(w, "ckpt-%016llx.ckpt", ts, &m);
    if (rc)
        return rc;
    size_t off = 0;
    bool complete = false;
    struct rec r;
    while (!rc && !complete) {
        int k = parse_rec(m.p + off, m.size - off, &r);
        if (k != REC_OK) {
            rc = k == REC_NEWER ? TXKV_INVALID : TXKV_IO; /* a damaged checkpoint */
            break;
        }
        if (r.ts != ts)
            rc = TXKV_IO;
        else if (r.type == WAL_KEYSPACE)
            rc = keyspace_rec(a, &r);
        else if (r.type == WAL_CKPT_DATA)
            rc = entries(a, &r, true, ts, true);
        else if (r.type == WAL_CKPT_END)
            complete = true;
        else
            rc = TXKV_INVALID;
        off += r.size;
    }
    /* Every record into every index, even after an error (close frees
     * what the indexes hold). */
    int frc = wal_apply_flush(&a->ld);
    unmap_file(&m);
    return rc ? rc : frc;
}

/* Where the bytes after the last non-zero one begin (0: all zero). */
static size_t nonzero_end(const char *p, size_t n)
{
    while (n && !p[n - 1])
        n--;
    return n;
}

/* What replaying a segment found. */
struct seg_scan {
    size_t good;    /* bytes of whole records, up to and with a WAL_SEG_END */
    size_t size;    /* of the file */
    size_t dropped; /* after good, up to the last non-zero byte */
    bool clean;     /* it ends with WAL_SEG_END: the log goes on (W8) */
    size_t idx;     /* its place in the directory's list (replay_all) */
};

/* Replays segment seg.  Past the good records come a torn record, damage,
 * or only zeros: the blocks a mapped window allocated and nothing reached
 * (not counted as dropped). */
static int replay_segment(struct wal *w, struct applier *a, uint64_t seg, uint64_t *last_ts,
                          struct seg_scan *ss)
{
    struct mapped m;
    int rc = map_file(w, "wal-%016llx.log", seg, &m);
    if (rc)
        return rc;
    uint64_t ckpt_ts = atomic_load(&w->ckpt_ts);
    size_t off = 0;
    struct rec r;
    ss->clean = false;
    while (off < m.size) {
        int k = parse_rec(m.p + off, m.size - off, &r);
        if (k == REC_NEWER) {
            rc = TXKV_INVALID;
            break;
        }
        if (k == REC_TORN)
            break;
        if (r.type == WAL_KEYSPACE) { /* the writes before it first */
            if ((rc = wal_apply_batch(&a->ld)) || (rc = keyspace_rec(a, &r)))
                break;
        } else if (r.type == WAL_COMMIT) {
            if (r.ts > ckpt_ts) {
                if (r.ts <= *last_ts || entries(a, &r, false, 0, false))
                    break; /* out of order or undecodable: treat as the end */
                if ((rc = entries(a, &r, true, r.ts, false)))
                    break;
                *last_ts = r.ts;
            }
        } else if (r.type == WAL_SEG_END && r.len == 0) {
            off += r.size;
            ss->clean = true;
            break;
        } else {
            rc = TXKV_INVALID;
            break;
        }
        off += r.size;
    }
    /* The queued writes point into the mapping: applied before it goes
     * (after an error they are dropped: the open fails). */
    if (!rc)
        rc = wal_apply_batch(&a->ld);
    a->ld.nbatch = 0;
    ss->good = off;
    ss->size = m.size;
    ss->dropped = nonzero_end(m.p + off, m.size - off);
    unmap_file(&m);
    return rc;
}

static int cut_segment(struct wal *w, uint64_t seg, size_t good)
{
    char *p = wal_path(w, "wal-%016llx.log", seg);
    if (!p)
        return TXKV_NOMEM;
    int fd = open(p, O_RDWR | O_CLOEXEC);
    free(p);
    if (fd < 0)
        return TXKV_IO;
    int e = ftruncate(fd, (off_t)good) || wal_io.fsync(fd);
    close(fd);
    return e ? TXKV_IO : 0;
}

/* A segment after the end of the log: its non-zero bytes are dropped. */
static int drop_segment(struct wal *w, uint64_t seg)
{
    struct mapped m;
    int rc = map_file(w, "wal-%016llx.log", seg, &m);
    if (rc)
        return rc;
    w->recovered_dropped += nonzero_end(m.p, m.size);
    unmap_file(&m);
    wal_remove(w, "wal-%016llx.log", seg);
    return 0;
}

/* The newest checkpoint, then the segments.  *last: what the last segment
 * kept held (good == SIZE_MAX: there was none). */
static int replay_all(struct wal *w, struct dirscan *s, struct applier *a, uint64_t *last_ts,
                      struct seg_scan *last)
{
    uint64_t ckpt_ts = 0;
    int rc;
    if (s->nckpts) {
        ckpt_ts = s->ckpts[s->nckpts - 1];
        atomic_store(&w->ckpt_ts, ckpt_ts);
        if ((rc = load_checkpoint(w, a, ckpt_ts)))
            return rc;
        for (size_t i = 0; i + 1 < s->nckpts; i++)
            wal_remove(w, "ckpt-%016llx.ckpt", s->ckpts[i]);
    }
    *last_ts = ckpt_ts;
    bool ended = false, changed = false;
    for (size_t i = 0; i < s->nsegs; i++) {
        if (ended) { /* W8: the log ended in an earlier segment */
            if ((rc = drop_segment(w, s->segs[i])))
                return rc;
            changed = true;
            continue;
        }
        struct seg_scan ss;
        if ((rc = replay_segment(w, a, s->segs[i], last_ts, &ss)))
            return rc;
        w->log_base -= ss.good; /* appended is 0 at open: wal_log_bytes counts these too */
        w->recovered_dropped += ss.dropped;
        if (ss.good < ss.size) {
            if ((rc = cut_segment(w, s->segs[i], ss.good)))
                return rc;
            changed = true;
        }
        *last = ss;
        last->idx = i;
        ended = !ss.clean;
    }
    if (changed && wal_fsync_dir(w))
        return TXKV_IO;
    return 0;
}

static int recover_scan(struct wal *w, struct dirscan *s)
{
    struct applier a = {.set = w->ks};
    uint64_t last_ts = 0;
    struct seg_scan last = {.good = SIZE_MAX};
    wal_loader_init(&a.ld);
    int rc = replay_all(w, s, &a, &last_ts, &last);
    wal_loader_fini(&a.ld);
    if (rc)
        return rc;
    /* Restore the clock: the next commit follows everything recovered. */
    if (last_ts > 1) {
        atomic_store(&w->store->next_ts, last_ts);
        atomic_store(&w->store->visible_ts, last_ts);
    }
    /* Appends go on at the end of the last segment kept, unless it ended
     * with WAL_SEG_END (then in a new one after it). */
    bool create = last.good == SIZE_MAX || last.clean;
    if (create) {
        w->seg = last.good == SIZE_MAX ? (s->nsegs ? s->segs[s->nsegs - 1] + 1 : 1)
                                       : s->segs[last.idx] + 1;
        w->cur.off = 0;
    } else {
        w->seg = s->segs[last.idx];
        w->cur.off = (off_t)last.good;
    }
    w->first_seg = s->nsegs ? s->segs[0] : w->seg;
    return wal_open_segment(w, create);
}

static int init_wal(const txkv_options *o, struct wal *w)
{
    w->cur.fd = w->dirfd = w->lockfd = -1;
    mutex_init(&w->mu);
    pthread_mutex_init(&w->ckpt_mu, NULL);
    pthread_mutex_init(&w->scan.mu, NULL);
    atomic_init(&w->scan_active, false);
    atomic_init(&w->scan.present, 0);
    atomic_init(&w->scan.own, false);
    atomic_init(&w->scan.cursor.seq, 0);
    atomic_init(&w->scan.cursor.s, 0);
    atomic_init(&w->scan.cursor.ks, NULL);
    atomic_init(&w->scan.cursor.hi, 0);
    atomic_init(&w->scan.cursor.lo, 0);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, NULL);
    pthread_cond_init(&w->bg_cv, &ca);
    pthread_condattr_destroy(&ca);
    w->sync = o->sync;
    w->interval_ms = o->sync_interval_ms ? o->sync_interval_ms : 100;
    w->ckpt_bytes = o->checkpoint_log_bytes;
    if (!(w->dir = strdup(o->dir)))
        return TXKV_NOMEM;
    return 0;
}

int wal_open(const txkv_options *o, struct record_store *store, struct ks_set *ks, struct gc *gc,
             struct wal **wp)
{
    struct dirscan s = {0};
    struct wal *w;
    int rc;

    *wp = NULL;
    if (!*o->dir ||
        (o->sync != TXKV_SYNC_COMMIT && o->sync != TXKV_SYNC_INTERVAL && o->sync != TXKV_SYNC_NONE))
        return TXKV_INVALID;
    if (!(w = aligned_alloc(_Alignof(struct wal), sizeof *w))) /* its lines: wal.h */
        return TXKV_NOMEM;
    memset(w, 0, sizeof *w);
    w->store = store;
    w->ks = ks;
    w->gc = gc;
    if ((rc = init_wal(o, w)))
        goto fail;
    if (mkdir(o->dir, 0777) && errno != EEXIST) {
        rc = errno == ENOENT || errno == ENOTDIR ? TXKV_INVALID : TXKV_IO;
        goto fail;
    }
    if ((w->dirfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        rc = errno == ENOTDIR ? TXKV_INVALID : TXKV_IO;
        goto fail;
    }
    /* Nothing is written before we know the directory is ours (or empty). */
    if ((rc = scan_dir(w->dirfd, &s)))
        goto fail;
    if (s.has_format ? (rc = check_format(w->dirfd)) != 0
                     : (s.foreign || s.nsegs || s.nckpts) && (rc = TXKV_INVALID))
        goto fail;
    w->lockfd = openat(w->dirfd, "LOCK", O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (w->lockfd < 0) {
        rc = TXKV_IO;
        goto fail;
    }
    if (flock(w->lockfd, LOCK_EX | LOCK_NB)) {
        rc = errno == EWOULDBLOCK ? TXKV_BUSY : TXKV_IO;
        goto fail;
    }
    if (!s.has_format && (rc = write_format(w)))
        goto fail;
    unlinkat(w->dirfd, "ckpt.tmp", 0);
    unlinkat(w->dirfd, "FORMAT.tmp", 0);
    gc_pin_register(gc, &w->pin);
    if ((rc = recover_scan(w, &s)) || (rc = wal_start_thread(w)))
        goto fail;
    free(s.segs);
    free(s.ckpts);
    *wp = w;
    return 0;
fail:
    free(s.segs);
    free(s.ckpts);
    wal_close(w);
    return rc;
}
