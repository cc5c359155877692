/*
 * checkpoint.c - txkv_checkpoint: every keyspace's live keys, read from
 * one MVCC snapshot while transactions go on, into a new file; then the
 * log segments the checkpoint covers are removed.
 *
 * Steps (ckpt_mu held: one checkpoint at a time):
 *  1. Rotate the log (log.c): the old segments hold only commits with
 *     ts <= A, the last ts appended before the switch.
 *  2. Wait until visible_ts >= A (those commits are appended inside the
 *     publish section, so they become visible at once), then pin a
 *     snapshot S >= A with an exact GC pin: no version visible at S is
 *     freed, and pruning may cut the versions S does not see (first the
 *     walk's cursor is reset, see "Cursor").
 *  3. Walk each keyspace and write the versions visible at S, CHUNK_BYTES
 *     at a time: memory stays bounded, nothing is copied but one chunk.
 *     The walk goes in slices of SLICE_RECORDS records, each in its own
 *     RCU read-side section (the B+tree iterator keeps its key between
 *     them); a hash-only keyspace has no order to resume from and is
 *     walked in one section.
 *  4. fsync ckpt.tmp, rename it to ckpt-S.ckpt, fsync the directory;
 *     only then remove the older checkpoint and the old segments.
 * Commits never wait for a checkpoint, except for the rotation's swap of
 * file descriptors (a leader's turn).
 *
 * Helping.  A checkpoint thread beside committers that already fill the
 * cores is one runnable thread too many: the scheduler time-slices a
 * committer that has drawn its commit timestamp, every later commit waits
 * for its publication (commit.c, step 6), and the waiters spin on their
 * own CPUs.  Measured on 2 cores with 2 committers, a checkpoint thread of
 * its own cut commits to 21-53% of the rate without one, at nice 0, 5, 10
 * and 19 alike.  So while the walk is on (scan_active), committers do it:
 * after its commit, a committer whose turn has come (help_after) takes a
 * slice if no one else is at it (trylock), then waits HELP_SPACING times
 * the slice's duration before its next turn; the walk costs each
 * committer about 1 / (1 + HELP_SPACING) of its time.  Every
 * HELP_WINDOW_NS the thread in txkv_checkpoint counts the committers that
 * came by (a bit each in `present`): as many as there are CPUs, and it
 * sleeps through the next window; fewer, and a CPU is free for it: it
 * walks itself (`own`), and committers only say they came by.  It also
 * walks the hash-only keyspaces, which cannot be sliced.
 *
 * Cursor.  After each slice the walk publishes how far it has gone: its
 * keyspace and the 16-byte prefix of the last key written (ckpt_cursor,
 * under a sequence count), after its reads of the slice's records.  A
 * commit that writes a key sorting below it (wal_ckpt_passed, commit.c)
 * prunes that key with young alone: the walk never comes back to it, so
 * the version the snapshot sees is no longer needed, and the key's next
 * version goes back inline.  The cursor names its snapshot, and it is
 * reset before the pin is taken, after which the checkpoint waits for the
 * commits already in flight: a commit never applies one walk's cursor to
 * another walk's snapshot, even an equal one.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wal/wal.h"

#define CHUNK_BYTES    (256u << 10) /* a committer may write one */
#define SLICE_RECORDS  64           /* about 40-100 us of a committer's time */
#define HELP_SPACING   6
#define HELP_WINDOW_NS 10000000u

/* When this thread may help a checkpoint again (now_ns()). */
static __thread uint64_t help_after;
/* This thread's bit in ckpt_scan.present, 0 until its first help. */
static __thread uint64_t help_bit;
static _Atomic unsigned help_ids;

static void put_rec(struct ckpt_writer *cw, const char *rec, size_t size)
{
    if (cw->err)
        return;
    int e = wal_write_all(cw->fd, rec, size, cw->off);
    if (e)
        cw->err = e;
    else
        cw->off += (off_t)size;
}

static void flush_data(struct ckpt_writer *cw)
{
    if (cw->rec.len <= WAL_REC_HDR)
        return;
    size_t payload = cw->rec.len - WAL_REC_HDR;
    wal_encode_hdr(cw->rec.buf, WAL_CKPT_DATA, payload, cw->ts);
    wal_seal(cw->rec.buf, payload);
    put_rec(cw, cw->rec.buf, cw->rec.len + WAL_REC_TAIL);
    cw->rec.len = WAL_REC_HDR;
}

/*
 * Writes r's version at the snapshot, then prunes r with young alone, as
 * a commit of a key below the cursor would (see "Cursor"), but after its
 * write, not before: the walk never comes back to r, so no reader needs
 * more than the version young sees.  A key written twice or more before
 * the walk reached it holds three versions (the newest, the one before,
 * the one the snapshot sees); left to commits, they stayed until its next
 * write, and pushed the version count over the GC's pile-up mark, so that
 * the GC swept every record once the pin went: under 2-thread ycsb-a, a
 * third runnable thread for 1 s after each checkpoint.  Inside an RCU
 * read-side section.
 */
static void add_record(struct ckpt_writer *cw, struct txkv_ks *ks, struct record *r,
                       struct prune_bounds b)
{
    struct version *v = version_visible(r, cw->ts);
    if (v && !v->tomb && !cw->err) {
        if (wal_rec_add(&cw->rec, ks, r->key, r->klen, v->val, v->vlen, false)) {
            cw->err = ENOMEM;
            return;
        }
        cw->nkeys++;
    }
    struct version *h = atomic_load_explicit(&r->head, memory_order_acquire);
    if (b.young > cw->ts && h && atomic_load_explicit(&h->next, memory_order_acquire) &&
        latch_try(r, LATCH_GC)) {
        version_prune(cw->store, r, prune_below(b.young), &cw->limbo);
        latch_release(r);
    }
}

static void write_keyspace_header(struct ckpt_writer *cw, struct txkv_ks *ks)
{
    size_t nlen = strlen(ks->name);
    char rec[WAL_REC_HDR + 2 + 255 + WAL_REC_TAIL];
    wal_encode_hdr(rec, WAL_KEYSPACE, 2 + nlen, cw->ts);
    rec[WAL_REC_HDR] = (char)ks->flags;
    rec[WAL_REC_HDR + 1] = (char)nlen;
    memcpy(rec + WAL_REC_HDR + 2, ks->name, nlen);
    wal_seal(rec, 2 + nlen);
    put_rec(cw, rec, WAL_REC_HDR + 2 + nlen + WAL_REC_TAIL);
}

/* A hash-only keyspace: no order to resume from, so one section, writing
 * inside it (blocking in an RCU read-side section only delays reclamation). */
static void walk_hash(struct ckpt_writer *cw, struct txkv_ks *ks)
{
    struct hash_iter it;
    rcu_read_enter();
    struct prune_bounds b = gc_prune_bounds(cw->gc);
    for (struct hash_entry *e = hash_first(ks->hash, &it); e && !cw->err;
         e = hash_next(ks->hash, &it)) {
        add_record(cw, ks, container_of_(e, struct record, he), b);
        if (cw->rec.len >= CHUNK_BYTES)
            flush_data(cw);
    }
    rcu_read_leave();
    limbo_flush(&cw->limbo);
}

/* The walk of the checkpoint at s has written every key of ks up to key
 * (ks NULL: none).  One writer: the walk, under scan.mu or before it. */
static void cursor_set(struct ckpt_cursor *c, uint64_t s, struct txkv_ks *ks, const void *key,
                       size_t klen)
{
    uint32_t q = atomic_load_explicit(&c->seq, memory_order_relaxed);
    /* One writer.  Release on each field: the odd count, and everything
     * the walk read before (the slice's records), come before it. */
    atomic_store_explicit(&c->seq, q + 1, memory_order_relaxed);
    atomic_store_explicit(&c->s, s, memory_order_release);
    atomic_store_explicit(&c->ks, ks, memory_order_release);
    atomic_store_explicit(&c->hi, ks ? key_word(key, klen, 0) : 0, memory_order_release);
    atomic_store_explicit(&c->lo, ks ? key_word(key, klen, 8) : 0, memory_order_release);
    atomic_store(&c->seq, q + 2); /* seq_cst: see wal_checkpoint's reset */
}

bool wal_ckpt_passed(struct wal *w, const struct txkv_ks *ks, const void *key, size_t klen,
                     uint64_t s)
{
    struct ckpt_cursor *c = &w->scan.cursor;
    /* acquire: pairs with cursor_set; what the walk read of this key's
     * record happens before our prune of it */
    uint32_t q = atomic_load(&c->seq); /* seq_cst: see wal_checkpoint's reset */
    uint64_t cs = atomic_load_explicit(&c->s, memory_order_acquire);
    struct txkv_ks *cks = atomic_load_explicit(&c->ks, memory_order_acquire);
    uint64_t hi = atomic_load_explicit(&c->hi, memory_order_acquire);
    uint64_t lo = atomic_load_explicit(&c->lo, memory_order_acquire);
    if ((q & 1) || atomic_load_explicit(&c->seq, memory_order_relaxed) != q)
        return false;
    if (cs != s || cks != ks || !cks)
        return false;
    uint64_t khi = key_word(key, klen, 0), klo = key_word(key, klen, 8);
    return khi < hi || (khi == hi && klo < lo);
}

/* Ends the keyspace being walked; the walk goes on with the next one. */
static void next_keyspace(struct ckpt_scan *sc)
{
    if (sc->started && sc->ks->tree)
        btree_iter_fini(&sc->it);
    flush_data(sc->cw);
    sc->ks = sc->cw->err ? NULL : sc->ks->next;
    sc->started = false;
}

/* One slice of the walk (sc->mu held): up to SLICE_RECORDS records of a
 * B+tree, or a whole hash-only keyspace if caller (the checkpoint's own
 * thread: a committer should not stall that long).  False if it did
 * nothing. */
static bool scan_slice(struct ckpt_scan *sc, bool caller)
{
    struct ckpt_writer *cw = sc->cw;
    struct txkv_ks *ks = sc->ks;
    if (!ks || (!ks->tree && !caller))
        return false;
    if (!sc->started) {
        write_keyspace_header(cw, ks);
        if (ks->tree)
            btree_iter_init(ks->tree, &sc->it);
    }
    if (!ks->tree) {
        sc->started = true;
        if (ks->hash)
            walk_hash(cw, ks);
        next_keyspace(sc);
        return true;
    }
    /* Three passes, so that the slice's cache misses overlap instead of
     * following one another: collect the records (prefetching each), load
     * their heads (prefetching the versions), then read them. */
    struct record *recs[SLICE_RECORDS];
    unsigned n = 0;
    rcu_read_enter();
    int rc = sc->started ? btree_next(&sc->it) : btree_first(&sc->it);
    sc->started = true;
    while (rc == 0) {
        recs[n] = sc->it.val;
        __builtin_prefetch(recs[n]);
        __builtin_prefetch((char *)recs[n] + 64);
        if (++n == SLICE_RECORDS)
            break; /* positioned on the last record collected */
        rc = btree_next(&sc->it);
    }
    for (unsigned i = 0; i < n; i++)
        __builtin_prefetch(atomic_load_explicit(&recs[i]->head, memory_order_relaxed));
    struct prune_bounds b = gc_prune_bounds(cw->gc);
    for (unsigned i = 0; i < n; i++)
        add_record(cw, ks, recs[i], b);
    if (n) /* after the reads: commits may now prune what they read */
        cursor_set(&sc->cursor, cw->ts, ks, recs[n - 1]->key, recs[n - 1]->klen);
    if (rc == 0)
        btree_iter_unpin(&sc->it); /* resumes from its key copy */
    rcu_read_leave();
    limbo_flush(&cw->limbo);
    if (rc == TXKV_NOMEM && !cw->err)
        cw->err = ENOMEM;
    if (rc || cw->err)
        next_keyspace(sc);
    else if (cw->rec.len >= CHUNK_BYTES)
        flush_data(cw);
    return true;
}

void wal_ckpt_help_slow(struct wal *w)
{
    /* Present at every commit, not only at its turns: a turn may be
     * further off than a window (a slice that flushed a chunk). */
    if (!help_bit) /* this thread's bit in `present`: ids wrap at 64 */
        help_bit = UINT64_C(1) << (atomic_fetch_add(&help_ids, 1) % 64);
    if (!(atomic_load_explicit(&w->scan.present, memory_order_relaxed) & help_bit))
        atomic_fetch_or_explicit(&w->scan.present, help_bit, memory_order_relaxed);
    if (atomic_load_explicit(&w->scan.own, memory_order_relaxed))
        return; /* the checkpoint's thread walks: a CPU is free for it */
    uint64_t t0 = now_ns();
    if (t0 < help_after || pthread_mutex_trylock(&w->scan.mu))
        return; /* someone else is at it: try again after the next commit */
    bool did = scan_slice(&w->scan, false);
    w->scan.helped += did;
    pthread_mutex_unlock(&w->scan.mu);
    if (did) {
        uint64_t t1 = now_ns();
        help_after = t1 + (t1 - t0) * HELP_SPACING;
    }
}

/* Tests may set it (wal-test.h); 0: ask the system. */
unsigned wal_ckpt_cpus;

/* CPUs this process may run on. */
static unsigned cpus_usable(void)
{
    if (wal_ckpt_cpus)
        return wal_ckpt_cpus;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return (unsigned)CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

/* Step 3: the walk, with the committers' help.  Every HELP_WINDOW_NS the
 * checkpoint's thread counts the committers that came by to help: as many
 * as there are CPUs, and it sleeps, leaving the walk to them; fewer, and a
 * CPU is left over: it walks itself (committers then mostly find the walk
 * taken and go on). */
static void walk(struct wal *w, struct ckpt_writer *cw)
{
    struct ckpt_scan *sc = &w->scan;
    unsigned ncpu = cpus_usable();
    pthread_mutex_lock(&sc->mu);
    sc->cw = cw;
    sc->ks = ks_first(w->ks);
    sc->started = false;
    pthread_mutex_unlock(&sc->mu);
    atomic_store(&sc->present, 0);
    atomic_store(&w->scan_active, true);
    uint64_t win_t = now_ns(); /* own is false: a first window to see who comes by */
    for (;;) {
        bool sleep = false;
        pthread_mutex_lock(&sc->mu);
        bool own = atomic_load_explicit(&sc->own, memory_order_relaxed);
        if (sc->ks && (own || !sc->ks->tree))
            scan_slice(sc, true);
        else
            sleep = sc->ks != NULL;
        bool done = !sc->ks;
        pthread_mutex_unlock(&sc->mu);
        if (done)
            break;
        if (sleep) {
            struct timespec d = {0, HELP_WINDOW_NS};
            nanosleep(&d, NULL);
        }
        uint64_t t = now_ns();
        if (t - win_t >= HELP_WINDOW_NS) {
            uint64_t seen = atomic_exchange_explicit(&sc->present, 0, memory_order_relaxed);
            atomic_store_explicit(&sc->own, (unsigned)__builtin_popcountll(seen) < ncpu,
                                  memory_order_relaxed);
            win_t = t;
        }
    }
    /* A committer that saw scan_active still finds sc->ks NULL: it does
     * nothing, and never touches cw again. */
    atomic_store(&w->scan_active, false);
    atomic_store(&sc->own, false);
}

static void remove_old(struct wal *w, uint64_t prev_ckpt, uint64_t ts, uint64_t keep_seg)
{
    if (prev_ckpt && prev_ckpt != ts)
        wal_remove(w, "ckpt-%016llx.ckpt", prev_ckpt);
    for (uint64_t s = w->first_seg; s < keep_seg; s++)
        wal_remove(w, "wal-%016llx.log", s);
    w->first_seg = keep_seg;
}

int wal_checkpoint(struct wal *w)
{
    struct ckpt_writer cw = {.fd = -1, .store = w->store, .gc = w->gc};
    uint64_t a;
    int rc;

    pthread_mutex_lock(&w->ckpt_mu);
    if ((rc = wal_check(w)) || (rc = wal_rotate(w, &a)))
        goto out;
    uint64_t keep_seg = w->seg; /* only rotations change it: we hold ckpt_mu */
    clock_wait_visible(w->store, a);
    /* Nothing passed, before the pin: a commit that sees the new pin's
     * bounds sees this too (the GC's scan loads the pin after it).  A
     * commit that read the last walk's cursor before this reset has drawn
     * its timestamp already (seq_cst: our load of next_ts comes after the
     * reset, its draw before its cursor load): wait until it has published,
     * pruned and done, so that it cannot apply that cursor to our snapshot
     * (which may equal the last one's when nothing committed between). */
    cursor_set(&w->scan.cursor, 0, NULL, NULL, 0);
    clock_wait_visible(w->store, clock_drawn(w->store));
    cw.ts = gc_pin_enter_exact(w->gc, &w->pin); /* it reads at cw.ts only */
    assert(cw.ts >= a);

    cw.fd = openat(w->dirfd, "ckpt.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (cw.fd < 0)
        cw.err = errno;
    if (!cw.err)
        walk(w, &cw);
    gc_pin_leave(&w->pin);
    char end[WAL_REC_HDR + 8 + WAL_REC_TAIL];
    wal_encode_hdr(end, WAL_CKPT_END, 8, cw.ts);
    memcpy(end + WAL_REC_HDR, &cw.nkeys, 8);
    wal_seal(end, 8);
    put_rec(&cw, end, sizeof end);
    if (!cw.err && wal_io.fsync(cw.fd))
        cw.err = errno ? errno : EIO;
    if (cw.fd >= 0)
        close(cw.fd);
    if (!cw.err) {
        char name[64];
        snprintf(name, sizeof name, "ckpt-%016llx.ckpt", (unsigned long long)cw.ts);
        if (renameat(w->dirfd, "ckpt.tmp", w->dirfd, name))
            cw.err = errno;
        else
            cw.err = wal_fsync_dir(w);
    }
    if (cw.err) {
        /* The log is intact (a failed checkpoint loses nothing) unless the
         * failure was the rename's sync: then the directory is in doubt. */
        unlinkat(w->dirfd, "ckpt.tmp", 0);
        rc = cw.err == ENOMEM ? TXKV_NOMEM : TXKV_IO;
        goto out;
    }
    uint64_t prev = atomic_exchange(&w->ckpt_ts, cw.ts);
    remove_old(w, prev, cw.ts, keep_seg);
out:
    wal_rec_free(&cw.rec);
    pthread_mutex_unlock(&w->ckpt_mu);
    return rc;
}
