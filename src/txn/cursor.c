/*
 * cursor.c - ordered cursors: the snapshot's keys merged with the
 * transaction's own pending writes.
 *
 * A cursor is a position (a key and whether we are on it, before it or past
 * it) plus a batch of upcoming visible entries read from the B+tree in one
 * RCU read-side section.  Records and the versions a transaction can see
 * stay valid until it ends (src/gc/gc.c), so batched pointers may outlive the
 * section.  The key the cursor is on points into a record or the
 * transaction's arena, both stable until the transaction ends.
 *
 * Scans touch each record once.  A key of up to CKEY_INLINE bytes is copied
 * from the B+tree's leaf (which holds it whole) into the batch, and every
 * comparison the cursor makes reads that copy; the pointer handed to the
 * caller is the record's key, which nothing reads unless the caller does.
 * So a batch reads, per key, the leaf entry, the record's line holding its
 * newest-version pointer and the version: pass 1 walks the leaves
 * (btree_next prefetches the next leaf) and prefetches every record, pass 2
 * loads each record's head and prefetches the version, pass 3 reads the
 * versions -- so the misses of a batch overlap instead of queueing.
 *
 * Merge: in the cursor's direction, the next key is the nearer of the next
 * visible B+tree entry and the next pending write of this keyspace; on a tie
 * the pending write wins, and a pending delete hides the key.
 *
 * Cursor objects belong to one transaction object for the database's life:
 * closing a cursor (or ending its transaction, which closes its cursors)
 * bumps the cursor's generation and puts it in the object's pool for the
 * next txkv_cursor_open.  The caller's txkv_cursor * is a handle tagged
 * with that generation (base/handle.h), so a cursor used or closed after
 * its transaction ended is refused (TXKV_INVALID) or ignored (close), and
 * never reaches the transaction that uses the objects next.  Nothing is
 * freed before txkv_close, so a late close reads memory the library owns.
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

#include "txn/txn.h"

#define CURSOR_BATCH 64
/* The first batch from a new position: each refill doubles, up to CURSOR_BATCH.
 * A short scan (or a seek read once) pays for few records, a long one soon
 * reads full batches; 16 misses in flight is most of what the core overlaps. */
#define CURSOR_BATCH_FIRST 16
/* Keys up to this long are copied whole (the B+tree's leaves hold them whole). */
#define CKEY_INLINE 16

enum { POS_NONE, POS_ON, POS_BEFORE, POS_AFTER };

/* A starting point: the keys beyond key in direction dir (+1 or -1), key
 * itself too if incl.  key NULL: from the end of the keyspace that dir
 * starts at. */
struct cpos {
    const uint8_t *key;
    size_t klen;
    int dir;
    bool incl;
};

struct cent {
    const uint8_t *key; /* the record's key: what the caller gets */
    size_t klen;
    struct version *v;
    uint8_t kin[CKEY_INLINE]; /* key's bytes when klen <= CKEY_INLINE: what comparisons read */
};

/* The bytes comparisons read for batch entry d: never the record's for a short key. */
static inline const uint8_t *cent_ckey(const struct cent *d)
{
    return d->klen <= CKEY_INLINE ? d->kin : d->key;
}

struct txkv_cursor {
    _Atomic uint32_t gen;    /* handles of the open cursor carry it */
    _Atomic uintptr_t txn_h; /* the handle of the transaction it is open in */
    struct txkv_txn *txn;    /* the object: the same for the cursor's life */
    struct txkv_ks *ks;
    struct txkv_cursor *next_open; /* txn->cursors, or txn->cursor_pool */
    int pos;                       /* POS_*, relative to key */
    const uint8_t *key;            /* record key or arena copy: valid until txn ends */
    size_t klen;
    const uint8_t *ckey; /* key's bytes for comparisons: key, or kin */
    uint8_t kin[CKEY_INLINE];
    const void *val;
    size_t vlen;
    /* batch from the tree, in direction bdir, all beyond `key` when filled */
    struct cent buf[CURSOR_BATCH];
    int nbuf, bpos, bdir; /* bdir 0: no batch */
    int bsize;            /* entries the next fill looks at */
    bool bend;            /* the batch reached the end of the keyspace */
    const uint8_t *blast; /* last tree key the batch looked at: blastbuf or a record's key */
    size_t blastlen;
    uint8_t blastbuf[CKEY_INLINE];
    struct btree_iter it;
};

/* A cursor object for t: from its pool, or a new one; NULL: no memory. */
static struct txkv_cursor *cursor_obtain(struct txkv_txn *t)
{
    struct txkv_cursor *c = t->cursor_pool;
    if (c) {
        t->cursor_pool = c->next_open;
        return c;
    }
    if (posix_memalign((void **)&c, HANDLE_ALIGN, sizeof *c) != 0)
        return NULL;
    if (!handle_addr_ok(c)) {
        free(c);
        return NULL;
    }
    memset(c, 0, sizeof *c);
    atomic_init(&c->gen, 0);
    c->txn = t;
    return c;
}

static int cursor_open(struct txkv_txn *t, txkv_txn *h, struct txkv_ks *ks, txkv_cursor **cp)
{
    if (ks && ks->set != t->g->ks)
        return TXKV_INVALID;
    if (t->failed)
        return TXKV_ABORTED;
    ks = ks_or_default(t->g->ks, ks);
    if (!ks->tree)
        return TXKV_NOTSUP;
    struct txkv_cursor *c = cursor_obtain(t);
    if (!c)
        return TXKV_NOMEM;
    assert(c->txn == t);
    atomic_store_explicit(&c->txn_h, (uintptr_t)h, memory_order_relaxed);
    c->ks = ks;
    c->pos = POS_NONE;
    c->key = c->ckey = NULL;
    c->klen = 0;
    c->nbuf = c->bpos = c->bdir = 0;
    c->bend = false;
    c->blast = NULL;
    btree_iter_init(ks->tree, &c->it);
    c->next_open = t->cursors;
    t->cursors = c;
    *cp = (txkv_cursor *)handle_make(c, atomic_load_explicit(&c->gen, memory_order_relaxed));
    return 0;
}

int txkv_cursor_open(txkv_txn *h, txkv_ks *ks, txkv_cursor **cp)
{
    struct txkv_txn *t;
    if (!cp)
        return TXKV_INVALID;
    *cp = NULL;
    int rc = txn_enter(h, &t, __func__);
    if (rc)
        return rc;
    rc = cursor_open(t, h, ks, cp);
    txn_leave(t);
    return rc;
}

/* Closes open cursor c: every handle of it becomes stale; the object goes
 * to its transaction object's pool.  The caller unlinked it. */
static void cursor_retire(struct txkv_cursor *c)
{
    struct txkv_txn *t = c->txn;
    uint32_t gen = atomic_load_explicit(&c->gen, memory_order_relaxed);
    atomic_store_explicit(&c->gen, handle_gen_next(gen), memory_order_release);
    btree_iter_fini(&c->it);
    c->next_open = t->cursor_pool;
    t->cursor_pool = c;
}

void cursor_close_all(struct txkv_txn *t)
{
    while (t->cursors) {
        struct txkv_cursor *c = t->cursors;
        t->cursors = c->next_open;
        cursor_retire(c);
    }
}

void cursor_destroy_all(struct txkv_txn *t)
{
    cursor_close_all(t);
    while (t->cursor_pool) {
        struct txkv_cursor *c = t->cursor_pool;
        t->cursor_pool = c->next_open;
        free(c);
    }
}

/*
 * The start of every call on a cursor: resolves handle ch into *cp and
 * enters its transaction (*tp).  0, or TXKV_INVALID for a NULL handle, a
 * closed cursor (closed by the caller, or by the end of its transaction)
 * or the same refusals as txn_enter; the transaction is entered only on 0.
 * Reads only atomics of the cursor object until the transaction is entered.
 */
static int cursor_enter(txkv_cursor *ch, struct txkv_cursor **cp, struct txkv_txn **tp,
                        const char *fn)
{
    struct txkv_cursor *c = handle_ptr((uintptr_t)ch);
    uint32_t gen = handle_gen((uintptr_t)ch);
    *cp = c;
    if (!c || atomic_load_explicit(&c->gen, memory_order_acquire) != gen)
        return TXKV_INVALID;
    txkv_txn *h = (txkv_txn *)atomic_load_explicit(&c->txn_h, memory_order_relaxed);
    int rc = txn_enter(h, tp, fn);
    if (rc)
        return rc;
    /* Inside the transaction now: nobody else can close c; was it closed
     * between the two checks? */
    if (atomic_load_explicit(&c->gen, memory_order_relaxed) != gen) {
        txn_leave(*tp);
        return TXKV_INVALID;
    }
    return 0;
}

void txkv_cursor_close(txkv_cursor *ch)
{
    struct txkv_cursor *c;
    struct txkv_txn *t;
    if (cursor_enter(ch, &c, &t, __func__))
        return; /* NULL, or closed already (by its transaction's end too): harmless */
    for (struct txkv_cursor **pp = &t->cursors; *pp; pp = &(*pp)->next_open)
        if (*pp == c) {
            *pp = c->next_open;
            break;
        }
    cursor_retire(c);
    txn_leave(t);
}

/* Is key k beyond the starting point `from`? */
static bool beyond(const uint8_t *k, size_t kl, const struct cpos *from)
{
    if (!from->key)
        return true;
    int c = key_cmp(k, kl, from->key, from->klen) * from->dir;
    return c > 0 || (from->incl && c == 0);
}

/* A batch's bound: a locked re-read looks no further than key (NULL: the
 * end of the keyspace). */
struct cbound {
    const uint8_t *key;
    size_t klen;
};

/* The records a batch looked at, in order, with the short keys' bytes. */
struct cands {
    struct record *rec[CURSOR_BATCH];
    size_t klen[CURSOR_BATCH];
    uint8_t kin[CURSOR_BATCH][CKEY_INLINE];
    int n;
    int rc;      /* the iterator's last result */
    bool passed; /* stopped at the bound */
};

/* Starts fetching what pass 2 reads of r: its header (with the newest-version
 * pointer) and the next line, which holds the inline slot's version header
 * for keys of up to about 16 bytes (malloc aligns records to 16 bytes, so
 * the header may straddle two lines anyway). */
static inline void record_prefetch(const struct record *r)
{
    __builtin_prefetch(r);
    __builtin_prefetch((const char *)r + 64);
}

/* Pass 1 of a batch: walks the tree from `from` (its nodes hold the keys),
 * collecting records and prefetching each.  Reads no record.  RCU read side. */
static void collect(struct txkv_cursor *c, const struct cpos *from, const struct cbound *stop,
                    struct cands *cs)
{
    int dir = from->dir, rc;
    bool past_from = false; /* keys come strictly in order: once beyond from, all are */
    assert_in_rcu_section();
    struct cpos past = {stop ? stop->key : NULL, stop ? stop->klen : 0, dir, false};
    if (!from->key)
        rc = dir > 0 ? btree_first(&c->it) : btree_last(&c->it);
    else
        rc = dir > 0 ? btree_seek(&c->it, from->key, from->klen)
                     : btree_seek_le(&c->it, from->key, from->klen);
    cs->n = 0;
    cs->passed = false;
    for (; rc == 0 && cs->n<c->bsize; rc = dir> 0 ? btree_next(&c->it) : btree_prev(&c->it)) {
        if (stop && stop->key && beyond(c->it.key, c->it.klen, &past)) {
            cs->passed = true; /* past the range we locked */
            break;
        }
        if (past_from || (past_from = beyond(c->it.key, c->it.klen, from))) {
            struct record *r = c->it.val;
            record_prefetch(r);
            cs->rec[cs->n] = r;
            cs->klen[cs->n] = c->it.klen;
            if (c->it.klen <= CKEY_INLINE)
                memcpy(cs->kin[cs->n], c->it.key, c->it.klen);
            cs->n++;
        }
    }
    cs->rc = rc;
}

/* Passes 2 and 3: loads each record's head (prefetching the version), then
 * keeps the visible versions in the batch.  locked: a re-read under our
 * range lock (see below).  RCU read side. */
static void pick_visible(struct txkv_cursor *c, const struct cands *cs, uint64_t rts, bool locked)
{
    assert_in_rcu_section();
    for (int i = 0; i < cs->n; i++)
        __builtin_prefetch(atomic_load_explicit(&cs->rec[i]->head, memory_order_relaxed));
    for (int i = 0; i < cs->n; i++) {
        struct record *r = cs->rec[i];
        uint64_t ts = rts;
        if (locked) {
            /* Under our range lock: an optimistic commit that got past its
             * lock check before we registered may still be installing here.
             * Wait for it, then read at a timestamp that includes it (it
             * publishes before it unlatches). */
            lock_wait_unlatched(&c->txn->lk, r);
            ts = clock_visible(c->txn->g->store);
        }
        struct version *v = version_visible(r, ts);
        if (v && !v->tomb) {
            /* the caller reads the value next: start its other lines too */
            const char *p = (const char *)v, *end = v->val + v->vlen;
            for (const char *q = p + 64 - ((uintptr_t)p & 63); q < end && q < p + 512; q += 64)
                __builtin_prefetch(q);
            struct cent *d = &c->buf[c->nbuf++];
            d->key = r->key; /* its address: the record's key line is not read */
            d->klen = cs->klen[i];
            d->v = v;
            memcpy(d->kin, cs->kin[i], CKEY_INLINE);
        }
    }
}

/*
 * Reads the next batch from the tree, from `from`, at read timestamp rts.
 * stop: a re-read under a range lock, which looks no further than the
 * locked range and waits for optimistic commits installing on what it
 * reads (NULL: a plain read).  Three passes over a batch, so that the cache
 * misses of different keys overlap instead of queueing one after another;
 * every key looked at counts toward the observed range.
 */
static int cursor_read(struct txkv_cursor *c, const struct cpos *from, uint64_t rts,
                       const struct cbound *stop)
{
    struct cands cs;
    c->nbuf = c->bpos = 0;
    c->bdir = from->dir;
    rcu_read_enter();
    collect(c, from, stop, &cs);
    pick_visible(c, &cs, rts, stop != NULL);
    btree_iter_unpin(&c->it);
    rcu_read_leave();
    if (cs.rc == TXKV_NOMEM)
        return cs.rc;
    int n = cs.n;
    if (stop && (cs.passed || cs.rc == TXKV_NOTFOUND)) {
        /* A locked re-read covers exactly the locked range: what lies past
         * it is read (and locked) by the next fill.  (stop->key may be
         * blastbuf: it is left as it is.) */
        c->bend = stop->key == NULL;
        c->blast = stop->key;
        c->blastlen = stop->klen;
    } else {
        c->bend = cs.rc == TXKV_NOTFOUND || !n;
        c->blast = NULL;
        c->blastlen = n ? cs.klen[n - 1] : 0;
        if (n && c->blastlen <= CKEY_INLINE) /* the leaf's copy: the record is not read */
            c->blast = memcpy(c->blastbuf, cs.kin[n - 1], c->blastlen);
        else if (n)
            c->blast = cs.rec[n - 1]->key;
    }
    return 0;
}

/* Reads a batch and, under SERIALIZABLE, makes the interval it observed
 * hold until commit: locked (pessimistic) or recorded (optimistic). */
static int cursor_fill(struct txkv_cursor *c, const struct cpos *from)
{
    struct txkv_txn *t = c->txn;
    int rc = cursor_read(c, from, txn_read_ts(t), NULL);
    if (rc || !txn_ser_reads(t))
        return rc;
    /* The interval just observed: from `from` to the last key looked at,
     * or to the end of the keyspace. */
    struct cbound far = {c->bend ? NULL : c->blast, c->bend ? 0 : c->blastlen};
    struct key_range kr = {from->key, far.key, from->klen, far.klen};
    if (from->dir < 0)
        kr = (struct key_range){far.key, from->key, far.klen, from->klen};
    if (t->cc == TXKV_OPTIMISTIC)
        return rset_add_range(t, c->ks, &kr);
    /* Key-range lock on that interval, then read it again under the lock
     * at the newest committed state: nobody can change it until we end. */
    if ((rc = lock_range(&t->lk, c->ks, &kr)))
        return rc == TXKV_NOMEM ? rc : txn_fail(t, rc);
    /* far points into a record key that stays valid while t lives, or to
     * blastbuf, which the re-read changes only after its last use of far;
     * from->key is never blastbuf (cursor_step copies it). */
    return cursor_read(c, from, clock_visible(t->g->store), &far);
}

/* Binary search of the sorted write set: the first entry of this keyspace
 * beyond `from`, or NULL. */
static struct wentry *ws_next_sorted(struct txkv_cursor *c, const struct cpos *from)
{
    struct txkv_txn *t = c->txn;
    int dir = from->dir;
    size_t lo = 0, hi = t->nsorted;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        struct wentry *w = &t->ws[t->wsorted[mid]];
        int cmp = w->ks != c->ks ? (w->ks < c->ks ? -1 : 1)
                  : from->key    ? key_cmp(w->key, w->klen, from->key, from->klen)
                                 : dir;
        bool before = cmp < 0 || (cmp == 0 && (dir > 0 ? !from->incl : from->incl));
        if (before)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* dir > 0: lo is the first beyond; dir < 0: lo - 1 is the last beyond */
    if (dir > 0 ? lo >= t->nsorted : lo == 0)
        return NULL;
    struct wentry *w = &t->ws[t->wsorted[dir > 0 ? lo : lo - 1]];
    return w->ks == c->ks ? w : NULL;
}

/* The nearest pending write of this keyspace beyond `from`. */
static struct wentry *ws_next(struct txkv_cursor *c, const struct cpos *from)
{
    struct txkv_txn *t = c->txn;
    struct wentry *best = NULL;
    if (!t->nws)
        return NULL;
    wset_sort(t);
    if (t->sorted_valid)
        return ws_next_sorted(c, from);
    for (size_t i = 0; i < t->nws; i++) { /* no memory to sort: linear */
        struct wentry *w = &t->ws[i];
        if (w->ks != c->ks || !beyond(w->key, w->klen, from))
            continue;
        if (!best || key_cmp(w->key, w->klen, best->key, best->klen) * from->dir < 0)
            best = w;
    }
    return best;
}

/* Puts c on key (the caller's pointer), whose bytes comparisons read at
 * ckey: key itself, or a batch entry's copy (copied again: batches change). */
static void cursor_on(struct txkv_cursor *c, const uint8_t *key, const uint8_t *ckey, size_t klen,
                      const struct version *v)
{
    c->key = key;
    c->ckey = key;
    if (ckey != key) {
        memcpy(c->kin, ckey, CKEY_INLINE);
        c->ckey = c->kin;
    }
    c->klen = klen;
    c->val = v->val;
    c->vlen = v->vlen;
    c->pos = POS_ON;
}

/* Moves from `from` one entry in its direction. */
static int cursor_step(struct txkv_cursor *c, struct cpos from)
{
    int rc, dir = from.dir;
    if (c->bdir != dir) { /* a new position: a small batch first */
        c->bsize = CURSOR_BATCH_FIRST;
        if ((rc = cursor_fill(c, &from)))
            return rc;
    }
    for (;;) {
        /* drop batch entries not beyond from (consumed through a tie) */
        while (c->bpos < c->nbuf &&
               !beyond(cent_ckey(&c->buf[c->bpos]), c->buf[c->bpos].klen, &from))
            c->bpos++;
        if (c->bpos >= c->nbuf && !c->bend) { /* batch used up: read on from where it stopped */
            uint8_t kb[CKEY_INLINE];          /* the fill rewrites blastbuf; `on` must outlive it */
            struct cpos on = {c->blast, c->blastlen, dir, false};
            if (c->blast == c->blastbuf)
                on.key = memcpy(kb, c->blastbuf, c->blastlen);
            c->bsize = c->bsize < CURSOR_BATCH / 2 ? 2 * c->bsize : CURSOR_BATCH;
            if ((rc = cursor_fill(c, &on)))
                return rc;
            continue;
        }
        struct cent *d = c->bpos < c->nbuf ? &c->buf[c->bpos] : NULL;
        struct wentry *w = ws_next(c, &from);
        if (!d && !w) {
            c->pos = dir > 0 ? POS_AFTER : POS_BEFORE;
            c->key = c->ckey = from.key; /* remember where we ran out, to come back from */
            c->klen = from.klen;
            return TXKV_NOTFOUND;
        }
        int cmp = !d ? 1 : !w ? -1 : key_cmp(cent_ckey(d), d->klen, w->key, w->klen) * dir;
        if (cmp < 0) {
            c->bpos++;
            cursor_on(c, d->key, cent_ckey(d), d->klen, d->v);
            return 0;
        }
        /* the pending write is nearer, or the same key */
        if (cmp == 0)
            c->bpos++;
        if (!w->ver->tomb) {
            cursor_on(c, w->key, w->key, w->klen, w->ver);
            return 0;
        }
        /* our delete hides the key: look further */
        from = (struct cpos){w->key, w->klen, dir, false};
    }
}

static int cursor_seek(struct txkv_cursor *c, const void *key, size_t klen, int dir)
{
    if (key ? klen < 1 || klen > TXKV_MAX_KEY : klen != 0)
        return TXKV_INVALID;
    const uint8_t *k = NULL;
    if (key && !(k = arena_copy(c->txn, key, klen)))
        return TXKV_NOMEM;
    c->bdir = 0; /* a new position: the batch does not apply */
    return cursor_step(c, (struct cpos){k, k ? klen : 0, dir, true});
}

static int cursor_move(struct txkv_cursor *c, int dir)
{
    switch (c->pos) {
    case POS_NONE: /* unpositioned: next starts at the first key, prev at the last */
        c->bdir = 0;
        return cursor_step(c, (struct cpos){NULL, 0, dir, true});
    case POS_AFTER:
    case POS_BEFORE:
        if (dir == (c->pos == POS_AFTER ? +1 : -1))
            return TXKV_NOTFOUND;
        c->bdir = 0;
        return cursor_step(c, (struct cpos){c->ckey, c->klen, dir, c->ckey != NULL});
    default:
        return cursor_step(c, (struct cpos){c->ckey, c->klen, dir, false});
    }
}

static int cursor_get(struct txkv_cursor *c, const void **key, size_t *klen, const void **val,
                      size_t *vlen)
{
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

/* The public entry points: each inside cursor_enter/txn_leave. */

int txkv_cursor_seek(txkv_cursor *ch, const void *key, size_t klen)
{
    struct txkv_cursor *c;
    struct txkv_txn *t;
    int rc = cursor_enter(ch, &c, &t, __func__);
    if (rc)
        return rc;
    rc = t->failed ? TXKV_ABORTED : cursor_seek(c, key, klen, +1);
    txn_leave(t);
    return rc;
}

int txkv_cursor_seek_prev(txkv_cursor *ch, const void *key, size_t klen)
{
    struct txkv_cursor *c;
    struct txkv_txn *t;
    int rc = cursor_enter(ch, &c, &t, __func__);
    if (rc)
        return rc;
    rc = t->failed ? TXKV_ABORTED : cursor_seek(c, key, klen, -1);
    txn_leave(t);
    return rc;
}

int txkv_cursor_last(txkv_cursor *ch)
{
    return txkv_cursor_seek_prev(ch, NULL, 0);
}

int txkv_cursor_next(txkv_cursor *ch)
{
    struct txkv_cursor *c;
    struct txkv_txn *t;
    int rc = cursor_enter(ch, &c, &t, __func__);
    if (rc)
        return rc;
    rc = t->failed ? TXKV_ABORTED : cursor_move(c, +1);
    txn_leave(t);
    return rc;
}

int txkv_cursor_prev(txkv_cursor *ch)
{
    struct txkv_cursor *c;
    struct txkv_txn *t;
    int rc = cursor_enter(ch, &c, &t, __func__);
    if (rc)
        return rc;
    rc = t->failed ? TXKV_ABORTED : cursor_move(c, -1);
    txn_leave(t);
    return rc;
}

int txkv_cursor_get(txkv_cursor *ch, const void **key, size_t *klen, const void **val, size_t *vlen)
{
    struct txkv_cursor *c;
    struct txkv_txn *t;
    int rc = cursor_enter(ch, &c, &t, __func__);
    if (rc)
        return rc;
    rc = t->failed ? TXKV_ABORTED : cursor_get(c, key, klen, val, vlen);
    txn_leave(t);
    return rc;
}
