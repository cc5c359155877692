/*
 * cursor.c - ordered cursors: the snapshot's keys merged with the
 * transaction's own pending writes.
 *
 * A cursor is a position (a key and whether we are on it, before it or past
 * it) plus a batch of upcoming visible entries read from the B+tree in one
 * RCU read-side section.  Records and the versions a transaction can see
 * stay valid until it ends (gc.c), so batched pointers may outlive the
 * section.  The key the cursor is on points into a record or the
 * transaction's arena, both stable until the transaction ends.
 *
 * Merge: in the cursor's direction, the next key is the nearer of the next
 * visible B+tree entry and the next pending write of this keyspace; on a tie
 * the pending write wins, and a pending delete hides the key.
 *
 * SERIALIZABLE: each batch read from the tree adds the key interval it
 * covered (including keys it skipped as invisible, and up to the end of the
 * keyspace when it reached it) to the transaction's range set; commit checks
 * that nothing in those intervals changed, so a later insert into a range
 * this transaction scanned, even an empty one, is a conflict.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "db.h"

#define CURSOR_BATCH 64

enum { POS_NONE, POS_ON, POS_BEFORE, POS_AFTER };

struct cent {
    const uint8_t *key;
    size_t klen;
    struct version *v;
};

struct txkv_cursor {
    struct txkv_txn *txn;
    struct txkv_ks *ks;
    struct txkv_cursor *next_open;
    int pos;                   /* POS_*, relative to key */
    const uint8_t *key;        /* record key or arena copy: valid until txn ends */
    size_t klen;
    const void *val;
    size_t vlen;
    /* batch from the tree, in direction bdir, all beyond `key` when filled */
    struct cent buf[CURSOR_BATCH];
    int nbuf, bpos, bdir;      /* bdir 0: no batch */
    bool bend;                 /* the batch reached the end of the keyspace */
    const uint8_t *blast;      /* last tree key the batch looked at (a record's key) */
    size_t blastlen;
    struct btree_iter it;
};

int txkv_cursor_open(txkv_txn *t, txkv_ks *ks, txkv_cursor **cp)
{
    if (!cp)
        return TXKV_INVALID;
    *cp = NULL;
    if (!t || (ks && ks->db != t->db))
        return TXKV_INVALID;
    if (t->failed)
        return TXKV_ABORTED;
    ks = db_ks(t->db, ks);
    if (!ks->tree)
        return TXKV_NOTSUP;
    struct txkv_cursor *c = calloc(1, sizeof *c);
    if (!c)
        return TXKV_NOMEM;
    c->txn = t;
    c->ks = ks;
    c->pos = POS_NONE;
    btree_iter_init(ks->tree, &c->it);
    c->next_open = t->cursors;
    t->cursors = c;
    *cp = c;
    return 0;
}

static void cursor_free(struct txkv_cursor *c)
{
    btree_iter_fini(&c->it);
    free(c);
}

void txkv_cursor_close(txkv_cursor *c)
{
    if (!c)
        return;
    for (struct txkv_cursor **pp = &c->txn->cursors; *pp; pp = &(*pp)->next_open)
        if (*pp == c) {
            *pp = c->next_open;
            break;
        }
    cursor_free(c);
}

void cursor_close_all(struct txkv_txn *t)
{
    while (t->cursors) {
        struct txkv_cursor *c = t->cursors;
        t->cursors = c->next_open;
        cursor_free(c);
    }
}

/* Is key beyond the cursor's reference point in direction dir?  incl: the
 * reference key itself counts. */
static bool beyond(const uint8_t *k, size_t kl, const uint8_t *ref, size_t rl, int dir, bool incl)
{
    if (!ref)
        return true;
    int c = key_cmp(k, kl, ref, rl) * dir;
    return c > 0 || (incl && c == 0);
}

/* Reads the next batch from the tree, starting at ref (incl or not), at read
 * timestamp rts.  stop: do not look past this key (NULL: no bound).  wait:
 * wait for optimistic commits installing on what we read (pessimistic). */
static int cursor_read(struct txkv_cursor *c, const uint8_t *ref, size_t rl, int dir, bool incl,
                       uint64_t rts, const uint8_t *stop, size_t stoplen, bool stopend,
                       bool wait)
{
    const uint8_t *last = NULL;
    size_t lastlen = 0;
    bool passed_stop = false;
    int rc;
    c->nbuf = c->bpos = 0;
    c->bdir = dir;
    c->bend = false;
    rcu_read_enter();
    if (!ref)
        rc = dir > 0 ? btree_first(&c->it) : btree_last(&c->it);
    else
        rc = dir > 0 ? btree_seek(&c->it, ref, rl) : btree_seek_le(&c->it, ref, rl);
    /* Three passes over a batch, so that the cache misses of different keys
     * overlap instead of queueing one after another: 1. walk the tree (its
     * nodes hold the keys) collecting records, prefetching each; 2. load
     * each record's head, prefetching the version; 3. pick the visible
     * versions.  Every key looked at counts toward the observed range. */
    struct record *cand[CURSOR_BATCH];
    size_t clen[CURSOR_BATCH];
    int n = 0;
    for (; rc == 0 && n < CURSOR_BATCH;
         rc = dir > 0 ? btree_next(&c->it) : btree_prev(&c->it)) {
        if (stopend && stop && beyond(c->it.key, c->it.klen, stop, stoplen, dir, false)) {
            passed_stop = true; /* past the range we locked */
            break;
        }
        if (!ref || beyond(c->it.key, c->it.klen, ref, rl, dir, incl)) {
            cand[n] = c->it.val;
            clen[n] = c->it.klen;
            __builtin_prefetch(cand[n]);
            n++;
        }
    }
    for (int i = 0; i < n; i++)
        __builtin_prefetch(atomic_load_explicit(&cand[i]->head, memory_order_relaxed));
    for (int i = 0; i < n; i++) {
        struct record *r = cand[i];
        uint64_t ts = rts;
        if (wait) {
            /* Under our range lock: an optimistic commit that got past its
             * lock check before we registered may still be installing here.
             * Wait for it, then read at a timestamp that includes it (it
             * publishes before it unlatches). */
            lock_wait_unlatched(c->txn, r);
            ts = atomic_load_explicit(&c->txn->db->visible_ts, memory_order_acquire);
        }
        struct version *v = version_visible(r, ts);
        if (v && !v->tomb) {
            /* the caller reads the value next: start its other lines too */
            for (size_t off = 64; off < sizeof *v + v->vlen && off < 512; off += 64)
                __builtin_prefetch((const char *)v + off);
            c->buf[c->nbuf].key = r->key;
            c->buf[c->nbuf].klen = clen[i];
            c->buf[c->nbuf].v = v;
            c->nbuf++;
        }
    }
    if (n) {
        last = cand[n - 1]->key;
        lastlen = clen[n - 1];
    }
    btree_iter_unpin(&c->it);
    rcu_read_leave();
    if (rc == TXKV_NOMEM)
        return rc;
    c->bend = rc == TXKV_NOTFOUND || !last;
    c->blast = last;
    c->blastlen = lastlen;
    if (stopend && (passed_stop || rc == TXKV_NOTFOUND)) {
        /* A locked re-read covers exactly the locked range: what lies past
         * it is read (and locked) by the next fill. */
        c->bend = stop == NULL;
        c->blast = stop;
        c->blastlen = stoplen;
    }
    return 0;
}

static int cursor_fill(struct txkv_cursor *c, const uint8_t *ref, size_t rl, int dir, bool incl)
{
    struct txkv_txn *t = c->txn;
    bool ser = t->isolation == TXKV_SERIALIZABLE && !(t->flags & TXKV_RDONLY);
    int rc = cursor_read(c, ref, rl, dir, incl, txn_read_ts(t), NULL, 0, false, false);
    if (rc || !ser)
        return rc;
    /* The interval just observed: from ref to the last key looked at, or
     * to the end of the keyspace. */
    const uint8_t *far = c->bend ? NULL : c->blast;
    size_t farlen = c->bend ? 0 : c->blastlen;
    if (t->cc == TXKV_PESSIMISTIC) {
        /* Key-range lock on that interval, then read it again under the lock
         * at the newest committed state: nobody can change it until we end. */
        rc = dir > 0 ? lock_range(t, c->ks, ref, rl, far, farlen)
                     : lock_range(t, c->ks, far, farlen, ref, rl);
        if (rc)
            return rc == TXKV_NOMEM ? rc : txn_fail(t, rc);
        uint64_t now = atomic_load_explicit(&t->db->visible_ts, memory_order_acquire);
        /* far points into a record key that stays valid while t lives */
        return cursor_read(c, ref, rl, dir, incl, now, far, farlen, true, true);
    }
    if (dir > 0)
        return rset_add_range(t, c->ks, ref, rl, far, farlen);
    return rset_add_range(t, c->ks, far, farlen, ref, rl);
}

/* The nearest pending write of this keyspace beyond ref in direction dir. */
static struct wentry *ws_next(struct txkv_cursor *c, const uint8_t *ref, size_t rl, int dir,
                              bool incl)
{
    struct txkv_txn *t = c->txn;
    struct wentry *best = NULL;
    if (!t->nws)
        return NULL;
    wset_sort(t);
    if (t->sorted_valid) {
        /* binary search the first sorted entry beyond ref, then step to our ks */
        size_t lo = 0, hi = t->nsorted;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            struct wentry *w = &t->ws[t->wsorted[mid]];
            int cmp = w->ks != c->ks ? (w->ks < c->ks ? -1 : 1)
                                     : (ref ? key_cmp(w->key, w->klen, ref, rl) : (dir > 0 ? 1 : -1));
            bool before = dir > 0 ? (cmp < 0 || (cmp == 0 && !incl)) : (cmp < 0 || (cmp == 0 && incl));
            if (before)
                lo = mid + 1;
            else
                hi = mid;
        }
        /* dir > 0: lo is the first beyond; dir < 0: lo - 1 is the last beyond */
        size_t i = dir > 0 ? lo : lo - 1;
        if ((dir > 0 && i < t->nsorted) || (dir < 0 && lo > 0)) {
            struct wentry *w = &t->ws[t->wsorted[i]];
            if (w->ks == c->ks)
                best = w;
        }
        return best;
    }
    for (size_t i = 0; i < t->nws; i++) { /* no memory to sort: linear */
        struct wentry *w = &t->ws[i];
        if (w->ks != c->ks || (ref && !beyond(w->key, w->klen, ref, rl, dir, incl)))
            continue;
        if (!best || key_cmp(w->key, w->klen, best->key, best->klen) * dir < 0)
            best = w;
    }
    return best;
}

/* Moves from (ref, incl) one entry in direction dir. */
static int cursor_step(struct txkv_cursor *c, const uint8_t *ref, size_t rl, int dir, bool incl)
{
    int rc;
    if (c->bdir != dir && (rc = cursor_fill(c, ref, rl, dir, incl)))
        return rc;
    for (;;) {
        /* drop batch entries not beyond ref (consumed through a tie) */
        while (c->bpos < c->nbuf &&
               !beyond(c->buf[c->bpos].key, c->buf[c->bpos].klen, ref, rl, dir, incl))
            c->bpos++;
        if (c->bpos >= c->nbuf && !c->bend) { /* batch used up: read on from where it stopped */
            if ((rc = cursor_fill(c, c->blast, c->blastlen, dir, false)))
                return rc;
            continue;
        }
        struct cent *d = c->bpos < c->nbuf ? &c->buf[c->bpos] : NULL;
        struct wentry *w = ws_next(c, ref, rl, dir, incl);
        if (!d && !w) {
            c->pos = dir > 0 ? POS_AFTER : POS_BEFORE;
            c->key = ref; /* remember where we ran out, to come back from */
            c->klen = rl;
            return TXKV_NOTFOUND;
        }
        int cmp = !d ? 1 : !w ? -1 : key_cmp(d->key, d->klen, w->key, w->klen) * dir;
        if (cmp >= 0) { /* the pending write is nearer, or the same key */
            if (cmp == 0)
                c->bpos++;
            if (w->ver->tomb) { /* our delete hides the key: look further */
                ref = w->key;
                rl = w->klen;
                incl = false;
                continue;
            }
            c->key = w->key;
            c->klen = w->klen;
            c->val = w->ver->val;
            c->vlen = w->ver->vlen;
        } else {
            c->bpos++;
            c->key = d->key;
            c->klen = d->klen;
            c->val = d->v->val;
            c->vlen = d->v->vlen;
        }
        c->pos = POS_ON;
        return 0;
    }
}

static int cursor_check(struct txkv_cursor *c)
{
    if (!c)
        return TXKV_INVALID;
    return c->txn->failed ? TXKV_ABORTED : 0;
}

int txkv_cursor_seek(txkv_cursor *c, const void *key, size_t klen)
{
    int rc = cursor_check(c);
    if (rc)
        return rc;
    if (key && (klen < 1 || klen > TXKV_MAX_KEY))
        return TXKV_INVALID;
    const uint8_t *k = NULL;
    if (key && !(k = arena_alloc(c->txn, klen)))
        return TXKV_NOMEM;
    if (k)
        memcpy((void *)k, key, klen);
    c->bdir = 0; /* a new position: the batch does not apply */
    return cursor_step(c, k, k ? klen : 0, +1, true);
}

static int cursor_move(struct txkv_cursor *c, int dir)
{
    int rc = cursor_check(c);
    if (rc)
        return rc;
    switch (c->pos) {
    case POS_NONE: /* unpositioned: next starts at the first key, prev at the last */
        c->bdir = 0;
        return cursor_step(c, NULL, 0, dir, true);
    case POS_AFTER:
        if (dir > 0)
            return TXKV_NOTFOUND;
        c->bdir = 0;
        return cursor_step(c, c->key, c->klen, dir, c->key != NULL);
    case POS_BEFORE:
        if (dir < 0)
            return TXKV_NOTFOUND;
        c->bdir = 0;
        return cursor_step(c, c->key, c->klen, dir, c->key != NULL);
    default:
        return cursor_step(c, c->key, c->klen, dir, false);
    }
}

int txkv_cursor_next(txkv_cursor *c)
{
    return cursor_move(c, +1);
}

int txkv_cursor_prev(txkv_cursor *c)
{
    return cursor_move(c, -1);
}

int txkv_cursor_get(txkv_cursor *c, const void **key, size_t *klen, const void **val,
                    size_t *vlen)
{
    int rc = cursor_check(c);
    if (rc)
        return rc;
    if (c->pos != POS_ON)
        return TXKV_NOTFOUND;
    if (key)
        *key = c->key;
    if (klen)
        *klen = c->klen;
    if (val)
        *val = c->val;
    if (vlen)
        *vlen = c->vlen;
    return 0;
}
