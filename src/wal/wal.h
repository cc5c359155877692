/*
 * wal.h - optional durability: the write-ahead log, group commit, sync
 * policies, checkpoints from an MVCC snapshot, and recovery.
 *
 * Layer: wal (base <- index <- record <- lock <- gc <- wal <- txn <- db).
 * Only databases opened with txkv_options.dir have a struct wal; the
 * commit path tests one pointer (txn_global.wal) and does nothing else
 * when it is NULL.  src/wal/README gives the invariants, docs/durability.md
 * the file formats and what each sync policy can lose.
 */
#ifndef TXKV_WAL_WAL_H
#define TXKV_WAL_WAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/util.h"
#include "gc/gc.h"
#include "record/keyspace.h"
#include "record/record.h"
#include "txkv.h"

/* The file format (docs/durability.md). */
#define WAL_FORMAT_VERSION 1
#define WAL_REC_HDR        16 /* type, version, 2 zero bytes, u32 payload length, u64 ts */
#define WAL_REC_TAIL       8  /* XXH3-64 of header + payload */
#define WAL_REC_MAX        ((size_t)1 << 31)
enum wal_rec_type {
    WAL_COMMIT = 1,    /* one committing transaction's writes */
    WAL_KEYSPACE = 2,  /* a keyspace created: u8 flags, u8 name length, name */
    WAL_CKPT_DATA = 3, /* checkpoint: a batch of live keys, entries as WAL_COMMIT */
    WAL_CKPT_END = 4,  /* checkpoint: complete; payload u64 number of keys */
    WAL_SEG_END = 5,   /* the last record of a segment the log goes on from (W8) */
};
/* The log file is mapped this much at a time (a multiple of the page size). */
#define WAL_WINDOW_BYTES ((size_t)4 << 20)

/*
 * The seam every write and sync goes through, so that tests can make them
 * fail (ENOSPC, EIO, short writes).  Each returns what the system call
 * returns (-1 with errno set on failure).
 */
struct wal_io {
    ssize_t (*pwrite)(int fd, const void *buf, size_t n, off_t off);
    int (*fdatasync)(int fd);
    int (*fsync)(int fd);
    int (*fallocate)(int fd, off_t off, off_t len); /* posix_fallocate, as -1 and errno */
};

/* A record being built (a commit's, outside any lock).  buf is NULL, or
 * holds the header's room and len - WAL_REC_HDR payload bytes. */
struct wal_rec {
    char *buf;
    size_t len, cap;
};

/* A checkpoint file being written (checkpoint.c), and the walk's state:
 * whoever walks (under scan.mu) owns it. */
struct ckpt_writer {
    int fd;
    off_t off;
    uint64_t ts, nkeys;
    struct wal_rec rec;
    int err; /* first errno or TXKV code */
    struct record_store *store;
    struct gc *gc;
    struct limbo limbo; /* versions the walk cut behind it, flushed each slice */
};

/*
 * How far the walk of the checkpoint at snapshot s has gone: every key of
 * keyspace ks that sorts below the 16-byte prefix (hi, lo) - the first 16
 * bytes of the last key it wrote, zero-padded, big-endian - is written.
 * Commits read it under the sequence count (odd while the walk writes it):
 * a key the walk has passed no longer needs the version s sees
 * (wal_ckpt_passed).
 */
struct ckpt_cursor {
    _Atomic uint32_t seq;
    _Atomic uint64_t s;
    struct txkv_ks *_Atomic ks; /* NULL: nothing passed */
    _Atomic uint64_t hi, lo;
};

/*
 * A checkpoint's walk of the keyspaces, in slices, by the thread in
 * txkv_checkpoint and by committers that help (checkpoint.c, "Helping"):
 * one slice at a time, under mu.
 */
struct ckpt_scan {
    pthread_mutex_t mu;
    struct ckpt_writer *cw; /* the walk's, while ks != NULL */
    struct txkv_ks *ks;     /* the keyspace being walked; NULL: no walk */
    bool started;           /* it is positioned in ks (its header is written) */
    struct btree_iter it;
    _Atomic uint64_t present; /* a bit per committer that came to help lately */
    _Atomic bool own;         /* the checkpoint's thread walks: committers do not */
    uint64_t helped;          /* slices committers did, since open (tests) */
    struct ckpt_cursor cursor;
};

/* A segment file open for appending, and its mapped windows.  off first:
 * in struct wal it ends the line every append writes. */
struct wal_seg {
    off_t off; /* bytes appended to the segment: win_off <= off <= win_off + window */
    int fd;
    char *win;     /* maps [win_off, win_off + wal_window_bytes) of the file */
    off_t win_off; /* a multiple of wal_window_bytes */
    char *next;    /* the window after win, mapped ahead (wal_wait), or NULL */
    char *done;    /* a window appends left, to unmap outside the ordered section */
};

/*
 * Laid out by who writes what.  Each append takes mu and writes appended,
 * last_ts and cur.off: with mu these fill the first cache line (40-byte
 * mutex, release build, x86-64), so an append moves one line of this
 * struct from the previous appender's cache to its own.  The line after
 * it is read by every commit (failed, the window) and written only when
 * the window moves, a checkpoint starts or the log fails, so it stays in
 * every reader's cache.  The group commit's state (cv, synced, leader)
 * has lines of its own.
 */
struct wal {
    /* ---- the log: guarded by mu (a leaf lock but for the sync of a leader,
     * which runs without it) */
    struct mutex mu __attribute__((aligned(64)));
    uint64_t appended; /* LSN: log bytes appended since open */
    uint64_t last_ts;  /* commit ts of the last appended commit */
    /* the segment being appended to: appends move its window (under mu);
     * only a rotation, as leader, swaps it */
    struct wal_seg cur;
    uint64_t log_base;      /* bytes since the last checkpoint: appended - log_base */
    _Atomic int failed;     /* 0, or the errno that failed the log */
    _Atomic bool want_next; /* cur.win is half used and cur.next is NULL */
    bool preparing;         /* a committer is mapping cur.next without mu */
    bool ckpt_wanted;       /* the bytes since the last checkpoint passed ckpt_bytes */
    uint64_t ckpt_bytes;    /* automatic checkpoint threshold; 0 = none (fixed at open) */

    /* waiters for synced, and for the leader's end */
    pthread_cond_t cv __attribute__((aligned(64)));
    uint64_t synced;     /* LSN: appended and synced */
    _Atomic bool leader; /* someone is syncing, or rotating */
    uint64_t seg;        /* cur's number (wal-SEG.log) */
    uint64_t first_seg;  /* the oldest segment still on disk (checkpoints) */

    /* ---- fixed at open */
    char *dir;
    int dirfd, lockfd;
    int sync;
    uint32_t interval_ms;
    struct record_store *store;
    struct ks_set *ks;
    struct gc *gc;

    _Atomic bool scan_active; /* a checkpoint's walk takes help (read by every commit) */

    /* ---- checkpoints: ckpt_mu serialises them */
    struct ckpt_scan scan;
    pthread_mutex_t ckpt_mu;
    struct gc_pin pin;
    _Atomic uint64_t ckpt_ts; /* ts of the newest checkpoint, 0 if none */
    uint64_t recovered_dropped;

    /* ---- the background thread (interval syncs, automatic checkpoints) */
    pthread_cond_t bg_cv; /* on mu */
    pthread_t thread;
    bool thread_running, stop;
};

/*
 * Opens (creating or recovering) the database directory o->dir into the
 * empty store and keyspaces given; on success *wp is the log, ready for
 * commits, and the commit clock is restored.  Errors: TXKV_BUSY (open
 * elsewhere), TXKV_INVALID (not a txkv directory, a newer format, bad
 * options), TXKV_IO, TXKV_NOMEM, TXKV_FULL (the data passes mem_limit).
 * Single-threaded: before the database is handed out.
 */
int wal_open(const txkv_options *o, struct record_store *store, struct ks_set *ks, struct gc *gc,
             struct wal **wp);
/* Stops the thread, writes and syncs what is appended (unless the log
 * failed), releases the directory. */
void wal_close(struct wal *w);

/* Bytes in the segments since the last checkpoint.  Caller holds mu. */
static inline uint64_t wal_log_bytes(const struct wal *w)
{
    return w->appended - w->log_base; /* modulo 2^64: log_base wraps below 0 at open */
}

/* ---- the commit path (txn/commit.c) ---- */

/* 0 or TXKV_IO: a failed log acknowledges no more commits. */
static inline int wal_check(struct wal *w)
{
    return atomic_load_explicit(&w->failed, memory_order_relaxed) ? TXKV_IO : 0;
}
/* Adds one write to a commit record being built; 0 or TXKV_NOMEM. */
int wal_rec_add(struct wal_rec *r, const struct txkv_ks *ks, const void *key, size_t klen,
                const void *val, size_t vlen, bool tomb);
/* Frees the record's buffer. */
void wal_rec_free(struct wal_rec *r);
/* Empties the record for the next commit, keeping a buffer of up to
 * WAL_REC_KEEP bytes: a transaction object is reused, and its commits then
 * serialise without a malloc and a free each. */
void wal_rec_reset(struct wal_rec *r);
/* Stamps the record with its commit ts and checksums it: once ts is
 * drawn, before the publish section (so the hash is not computed there). */
void wal_rec_seal(struct wal_rec *r, uint64_t ts);
/*
 * Appends the sealed record to the log and returns its end LSN (0 if the
 * log has failed).  The caller guarantees that appends happen in ts order
 * (commit.c calls it in the publish section, see src/wal/README).  A copy
 * into the mapped log: no system call, except when the window moves on.
 */
uint64_t wal_append_commit(struct wal *w, const struct wal_rec *r, uint64_t ts);
/* Waits until the log up to lsn is durable as the sync policy promises
 * (COMMIT: synced; INTERVAL, NONE: in the page cache, which the append
 * already did).  0 or TXKV_IO. */
int wal_wait(struct wal *w, uint64_t lsn);

/* Logs a keyspace creation and waits as for a commit.  0 or TXKV_IO. */
int wal_log_keyspace(struct wal *w, const struct txkv_ks *ks);

/* txkv_checkpoint.  0, TXKV_IO, TXKV_NOMEM. */
int wal_checkpoint(struct wal *w);

/*
 * Has the walk of the checkpoint at snapshot s written key (of ks)?  Then
 * its version at s may be pruned like any other (commit.c).  False when
 * unsure (the cursor changing under us, another checkpoint, a prefix tie).
 */
bool wal_ckpt_passed(struct wal *w, const struct txkv_ks *ks, const void *key, size_t klen,
                     uint64_t s);

void wal_ckpt_help_slow(struct wal *w);
/* Called by a committer after its commit, outside any lock and RCU
 * section: while a checkpoint walks, does a slice of the walk now and then
 * (checkpoint.c, "Helping").  One relaxed load otherwise. */
static inline void wal_ckpt_help(struct wal *w)
{
    if (atomic_load_explicit(&w->scan_active, memory_order_relaxed))
        wal_ckpt_help_slow(w);
}

/* For txkv_stats. */
void wal_stats(struct wal *w, struct txkv_stats *st);

/* ---- inside the module ---- */

/* log.c */
extern struct wal_io wal_io;
extern size_t wal_window_bytes; /* WAL_WINDOW_BYTES; tests make it small */
int wal_write_all(int fd, const void *buf, size_t n, off_t off);
int wal_rotate(struct wal *w, uint64_t *last_ts);
int wal_start_thread(struct wal *w);
size_t wal_encode_hdr(char *p, int type, size_t payload, uint64_t ts);
void wal_seal(char *rec, size_t payload);
char *wal_path(const struct wal *w, const char *fmt, uint64_t n);
/* Unlinks the file wal_path names (best effort: a failure leaves it). */
void wal_remove(const struct wal *w, const char *fmt, uint64_t n);
int wal_fsync_dir(struct wal *w);
/* Opens segment w->seg for appending at w->cur.off: a new file (create),
 * or the last one recovery kept, cut to its good records.  Recovery, at
 * open.  0 or TXKV_IO. */
int wal_open_segment(struct wal *w, bool create);
/* apply.c: recovery's writes into the store (its opening comment says how
 * each path differs from a commit's, and why that is safe). */
struct wal_side;

/* A log write waiting in the loader's batch (wal_apply_batch). */
struct wal_prep {
    struct txkv_ks *ks;
    const void *key, *val;
    size_t klen, vlen;
    bool tomb;
    uint64_t ts, hv;
    struct wal_side *side; /* the keyspace's checkpoint index, or NULL */
    size_t slot;           /* its directory slot for hv */
    struct record *rec;    /* found there, or NULL: look it up */
};
#define WAL_BATCH 16

struct wal_loader {
    /* a checkpoint's records in the B+tree, waiting for the hash index */
    struct txkv_ks *bulk_ks;
    struct hash_load_item *bulk; /* mapped: capbulk items, then as many for hash_load's sort */
    size_t nbulk, capbulk;
    /* per keyspace, its checkpoint's records in bucket order (apply.c) */
    struct wal_side *sides;
    size_t nsides;
    /* log writes decoded, not yet applied */
    struct wal_prep batch[WAL_BATCH];
    size_t nbatch;
    /* a version built here when it will be copied into an inline slot */
    _Alignas(8) char scratch[sizeof(struct version) + RECORD_INLINE_MAX];
};
void wal_loader_init(struct wal_loader *l);
/* Flushes (wal_apply_flush) and frees. */
void wal_loader_fini(struct wal_loader *l);
int wal_apply_keyspace(struct ks_set *set, const char *name, unsigned flags, struct txkv_ks **ksp);
/* A checkpoint's key (distinct, no record yet), stamped ts.  The record
 * reaches the hash index at the next wal_apply_flush. */
int wal_apply_fresh(struct wal_loader *l, struct txkv_ks *ks, const void *key, size_t klen,
                    const void *val, size_t vlen, uint64_t ts);
/* Links the records wal_apply_fresh queued into their hash index.  0, or
 * TXKV_IO: a key was there twice (those records are freed). */
int wal_apply_flush(struct wal_loader *l);
/* Queues a log record's write (or delete), stamped ts, after
 * wal_apply_flush; applies the batch when it is full.  0 or an error from
 * applying. */
int wal_apply_write(struct wal_loader *l, struct txkv_ks *ks, const void *key, size_t klen,
                    const void *val, size_t vlen, bool tomb, uint64_t ts);
/* Applies the queued writes, in order.  0, TXKV_NOMEM, TXKV_FULL, TXKV_IO. */
int wal_apply_batch(struct wal_loader *l);

#endif /* TXKV_WAL_WAL_H */
