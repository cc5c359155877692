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
 *     freed, and pruning may cut the versions S does not see.
 *  3. Walk each keyspace (B+tree: in chunks of CHUNK_RECORDS records per
 *     RCU read-side section, so grace periods go on; hash-only keyspaces
 *     in one section) and write the versions visible at S, CHUNK_BYTES at
 *     a time: memory stays bounded, nothing is copied but one chunk.
 *  4. fsync ckpt.tmp, rename it to ckpt-S.ckpt, fsync the directory;
 *     only then remove the older checkpoint and the old segments.
 * Commits never wait for a checkpoint, except for the rotation's swap of
 * file descriptors (a leader's turn).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wal/wal.h"

#define CHUNK_BYTES   (1u << 20)
#define CHUNK_RECORDS 1024

struct ckpt_writer {
    int fd;
    off_t off;
    uint64_t ts, nkeys;
    struct wal_rec rec;
    int err; /* first errno or TXKV code */
};

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

static void add_record(struct ckpt_writer *cw, struct txkv_ks *ks, struct record *r)
{
    struct version *v = version_visible(r, cw->ts);
    if (!v || v->tomb || cw->err)
        return;
    if (wal_rec_add(&cw->rec, ks, r->key, r->klen, v->val, v->vlen, false)) {
        cw->err = ENOMEM;
        return;
    }
    cw->nkeys++;
}

static void write_keyspace(struct ckpt_writer *cw, struct txkv_ks *ks)
{
    size_t nlen = strlen(ks->name);
    char rec[WAL_REC_HDR + 2 + 255 + WAL_REC_TAIL];
    wal_encode_hdr(rec, WAL_KEYSPACE, 2 + nlen, cw->ts);
    rec[WAL_REC_HDR] = (char)ks->flags;
    rec[WAL_REC_HDR + 1] = (char)nlen;
    memcpy(rec + WAL_REC_HDR + 2, ks->name, nlen);
    wal_seal(rec, 2 + nlen);
    put_rec(cw, rec, WAL_REC_HDR + 2 + nlen + WAL_REC_TAIL);

    if (ks->tree) {
        struct btree_iter it;
        btree_iter_init(ks->tree, &it);
        rcu_read_enter();
        int rc = btree_first(&it);
        for (unsigned n = 1; rc == 0 && !cw->err; n++) {
            add_record(cw, ks, it.val);
            if (n % CHUNK_RECORDS == 0 || cw->rec.len >= CHUNK_BYTES) {
                /* let grace periods pass; the iterator keeps its key */
                btree_iter_unpin(&it);
                rcu_read_leave();
                if (cw->rec.len >= CHUNK_BYTES)
                    flush_data(cw);
                rcu_read_enter();
            }
            rc = btree_next(&it);
        }
        rcu_read_leave();
        btree_iter_fini(&it);
        if (rc == TXKV_NOMEM && !cw->err)
            cw->err = ENOMEM;
    } else if (ks->hash) {
        /* No order to resume from: one section, writing inside it (blocking
         * in an RCU read-side section only delays reclamation). */
        struct hash_iter it;
        rcu_read_enter();
        for (struct hash_entry *e = hash_first(ks->hash, &it); e && !cw->err;
             e = hash_next(ks->hash, &it)) {
            add_record(cw, ks, container_of_(e, struct record, he));
            if (cw->rec.len >= CHUNK_BYTES)
                flush_data(cw);
        }
        rcu_read_leave();
    }
    flush_data(cw);
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
    struct ckpt_writer cw = {.fd = -1};
    uint64_t a;
    int rc;

    pthread_mutex_lock(&w->ckpt_mu);
    if ((rc = wal_check(w)) || (rc = wal_rotate(w, &a)))
        goto out;
    uint64_t keep_seg = w->seg; /* only rotations change it: we hold ckpt_mu */
    clock_wait_visible(w->store, a);
    cw.ts = gc_pin_enter_exact(w->gc, &w->pin); /* it reads at cw.ts only */
    assert(cw.ts >= a);

    cw.fd = openat(w->dirfd, "ckpt.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (cw.fd < 0)
        cw.err = errno;
    for (struct txkv_ks *ks = ks_first(w->ks); ks && !cw.err; ks = ks->next)
        write_keyspace(&cw, ks);
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
