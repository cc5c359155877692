/*
 * rwset.c - gets, puts and deletes: the write set (buffered new versions),
 * the read set and range set that SERIALIZABLE commits validate, and the
 * pessimistic locking each access takes.
 *
 * Writes are buffered: each put allocates its new version at once (so the
 * commit only links), keyed in a per-transaction open-addressing map; a
 * transaction reads its own writes first.  Pessimistic writes (and
 * get_for_update, and SERIALIZABLE pessimistic reads) lock the key at the
 * access (src/lock/); optimistic ones record what commit must validate.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "txn/txn.h"

/* ---- write set -------------------------------------------------------- */

static size_t wmap_slot(size_t cap, uint64_t hv)
{
    return (size_t)(hv ^ (hv >> 29)) & (cap - 1);
}

struct wentry *wset_find(struct txkv_txn *t, const struct kref *k)
{
    if (!t->nws)
        return NULL;
    for (size_t i = wmap_slot(t->wmap_cap, k->hv);; i = (i + 1) & (t->wmap_cap - 1)) {
        uint32_t x = t->wmap[i];
        if (!x)
            return NULL;
        struct wentry *w = &t->ws[x - 1];
        if (w->hv == k->hv && w->ks == k->ks && w->klen == k->klen &&
            memcmp(w->key, k->key, k->klen) == 0)
            return w;
    }
}

/* Room for one more entry, the map at most half full. */
static int wset_grow(struct txkv_txn *t)
{
    if (VEC_RESERVE(t->ws, t->capws, t->nws + 1, 16))
        return TXKV_NOMEM;
    if ((t->nws + 1) * 2 > t->wmap_cap) {
        size_t cap = t->wmap_cap ? t->wmap_cap * 2 : 32;
        uint32_t *m = calloc(cap, sizeof *m);
        if (!m)
            return TXKV_NOMEM;
        for (size_t j = 0; j < t->nws; j++) {
            size_t i = wmap_slot(cap, t->ws[j].hv);
            while (m[i])
                i = (i + 1) & (cap - 1);
            m[i] = (uint32_t)j + 1;
        }
        free(t->wmap);
        t->wmap = m;
        t->wmap_cap = cap;
    }
    return 0;
}

static void wmap_add(struct txkv_txn *t, size_t idx)
{
    size_t i = wmap_slot(t->wmap_cap, t->ws[idx].hv);
    while (t->wmap[i])
        i = (i + 1) & (t->wmap_cap - 1);
    t->wmap[i] = (uint32_t)idx + 1;
}

void wset_rebuild_map(struct txkv_txn *t)
{
    if (t->wmap)
        memset(t->wmap, 0, t->wmap_cap * sizeof *t->wmap);
    for (size_t i = 0; i < t->nws; i++)
        wmap_add(t, i);
    t->sorted_valid = false;
}

static int ws_cmp(const struct txkv_txn *t, uint32_t a, uint32_t b)
{
    const struct wentry *x = &t->ws[a], *y = &t->ws[b];
    if (x->ks != y->ks)
        return x->ks < y->ks ? -1 : 1;
    return key_cmp(x->key, x->klen, y->key, y->klen);
}

/* Sorts the write set's indices by (keyspace, key) for cursors: an
 * insertion sort of the whole set, redone only after a write added a key
 * (write sets that cursors merge are small; the sort is adaptive, so a set
 * that grew in key order costs one pass). */
void wset_sort(struct txkv_txn *t)
{
    if (t->sorted_valid)
        return;
    if (VEC_RESERVE(t->wsorted, t->capsorted, t->nws ? t->nws : 1, 16))
        return; /* cursors then fall back to a linear scan, see cursor.c */
    uint32_t *s = t->wsorted;
    for (size_t i = 0; i < t->nws; i++) {
        uint32_t x = (uint32_t)i;
        size_t j = i;
        while (j > 0 && ws_cmp(t, s[j - 1], x) > 0) {
            s[j] = s[j - 1];
            j--;
        }
        s[j] = x;
    }
    t->nsorted = t->nws;
    t->sorted_valid = true;
}

int check_key(const void *key, size_t klen)
{
    return key && klen >= 1 && klen <= TXKV_MAX_KEY ? 0 : TXKV_INVALID;
}

int access_prepare(struct txkv_txn *t, struct txkv_ks *ks, const void *key, size_t klen,
                   struct kref *k)
{
    if (t->failed)
        return TXKV_ABORTED;
    if (check_key(key, klen) || (ks && ks->set != t->g->ks))
        return TXKV_INVALID;
    k->ks = ks_or_default(t->g->ks, ks);
    k->key = key;
    k->klen = klen;
    k->hv = ks_hash(k->ks, key, klen);
    return 0;
}

/* Pessimistic: lock key (mode) and, at SNAPSHOT, fail if it was committed
 * after our snapshot (first updater wins).  *recp: the locked record; v:
 * the value about to be written, if any (sizes a record made for it). */
static int txn_lock(struct txkv_txn *t, const struct kref *k, int mode, const struct version *v,
                    struct record **recp)
{
    int rc = lock_key(&t->lk, k, mode, v, recp);
    if (rc == TXKV_NOMEM)
        return rc;
    if (rc)
        return txn_fail(t, rc);
    if (mode == LOCK_X && t->isolation == TXKV_SNAPSHOT) {
        struct version *h = atomic_load_explicit(&(*recp)->head, memory_order_acquire);
        if (h && h->ts > t->begin_ts)
            return txn_fail(t, TXKV_CONFLICT);
    }
    return 0;
}

/* A second write of a key t already wrote: replace the buffered version.
 * Room for an undo record was reserved (savepoint_reserve). */
static void wentry_replace(struct txkv_txn *t, struct wentry *w, struct version *v)
{
    t->wbytes -= version_bytes(w->ver->vlen);
    /* A savepoint may want the old value back; else a get may have
     * returned a pointer into it: keep it either way. */
    if (!savepoint_keep(t, (size_t)(w - t->ws), w->ver))
        txn_supersede(t, w->ver);
    w->ver = v;
    t->wbytes += version_bytes(v->vlen);
}

/* A first write of key: a new write-set entry.  locked: the record a
 * pessimistic transaction locked for it (NULL: resolved at commit). */
static int wentry_add(struct txkv_txn *t, const struct kref *k, struct version *v,
                      struct record *locked)
{
    const uint8_t *kc;
    if (wset_grow(t) || !(kc = arena_copy(t, k->key, k->klen)))
        return TXKV_NOMEM;
    struct wentry *w = &t->ws[t->nws];
    *w = (struct wentry){
        .ks = k->ks, .rec = locked, .hv = k->hv, .key = kc, .klen = (uint32_t)k->klen, .ver = v};
    wmap_add(t, t->nws++);
    t->sorted_valid = false;
    t->wbytes +=
        version_bytes(v->vlen) + record_bytes(k->klen, !v->tomb, record_icap(v->vlen, !v->tomb));
    return 0;
}

/* Buffers k = val (tomb: a delete of k), locking k first if pessimistic. */
static int txn_write(struct txkv_txn *t, const struct kref *k, const void *val, size_t vlen,
                     bool tomb)
{
    if ((!val && vlen) || vlen > TXKV_MAX_VALUE)
        return TXKV_INVALID;
    if (t->flags & TXKV_RDONLY)
        return TXKV_READONLY;
    struct record_store *s = t->g->store;
    /* A transaction that alone would pass the limit fails now, not at commit. */
    if (!tomb && mem_over(&s->mem, t->wbytes + version_bytes(vlen)))
        return txn_fail(t, TXKV_FULL);
    struct version *v = version_new(val, vlen, tomb);
    if (!v)
        return TXKV_NOMEM;
    struct wentry *w = wset_find(t, k);
    if (w) {
        if (savepoint_reserve(t)) {
            version_free_now(v);
            return TXKV_NOMEM;
        }
        wentry_replace(t, w, v);
        return 0;
    }
    struct record *locked = NULL;
    int rc = 0;
    if (t->cc == TXKV_PESSIMISTIC)
        rc = txn_lock(t, k, LOCK_X, v, &locked);
    if (rc || (rc = wentry_add(t, k, v, locked)) != 0) {
        version_free_now(v);
        return rc;
    }
    return 0;
}

int txkv_put(txkv_txn *h, txkv_ks *ks, const void *key, size_t klen, const void *val, size_t vlen)
{
    struct kref k;
    struct txkv_txn *t;
    int rc = txn_enter(h, &t, __func__);
    if (rc)
        return rc;
    rc = access_prepare(t, ks, key, klen, &k);
    if (!rc)
        rc = txn_write(t, &k, val, vlen, false);
    txn_leave(t);
    return rc;
}

int txkv_del(txkv_txn *h, txkv_ks *ks, const void *key, size_t klen)
{
    struct kref k;
    struct txkv_txn *t;
    int rc = txn_enter(h, &t, __func__);
    if (rc)
        return rc;
    rc = access_prepare(t, ks, key, klen, &k);
    if (!rc)
        rc = txn_write(t, &k, NULL, 0, true);
    txn_leave(t);
    return rc;
}

/* ---- read set --------------------------------------------------------- */

int rset_add(struct txkv_txn *t, const struct kref *k, struct record *r, uint64_t read_ts)
{
    if (VEC_RESERVE(t->rs, t->caprs, t->nrs + 1, 32))
        return TXKV_NOMEM;
    struct rentry *e = &t->rs[t->nrs];
    *e = (struct rentry){
        .ks = k->ks, .rec = r, .klen = (uint32_t)k->klen, .hv = k->hv, .read_ts = read_ts};
    if (!r && !(e->key = arena_copy(t, k->key, k->klen)))
        return TXKV_NOMEM;
    t->nrs++;
    return 0;
}

int rset_add_range(struct txkv_txn *t, struct txkv_ks *ks, const struct key_range *kr)
{
    if (VEC_RESERVE(t->ranges, t->capranges, t->nranges + 1, 8))
        return TXKV_NOMEM;
    struct rangeentry *e = &t->ranges[t->nranges];
    e->ks = ks;
    e->lo = kr->lo ? arena_copy(t, kr->lo, kr->lolen) : NULL;
    e->hi = kr->hi ? arena_copy(t, kr->hi, kr->hilen) : NULL;
    e->lolen = (uint32_t)kr->lolen;
    e->hilen = (uint32_t)kr->hilen;
    e->read_ts = t->begin_ts;
    if ((kr->lo && !e->lo) || (kr->hi && !e->hi))
        return TXKV_NOMEM;
    t->nranges++;
    return 0;
}

/* ---- reads ------------------------------------------------------------ */

int read_found(const struct version *v, const void **val, size_t *vlen)
{
    if (!v || v->tomb)
        return TXKV_NOTFOUND;
    if (val)
        *val = v->val;
    if (vlen)
        *vlen = v->vlen;
    return 0;
}

/* Two-phase locking: read under the lock.  SERIALIZABLE reads the newest
 * committed version (the lock keeps it the newest); SNAPSHOT reads its
 * snapshot, which txn_lock checked is still the newest. */
static int read_locked(struct txkv_txn *t, const struct kref *k, bool for_update,
                       const struct version **vp)
{
    struct record *r;
    int rc = txn_lock(t, k, for_update ? LOCK_X : LOCK_S, NULL, &r);
    if (rc)
        return rc;
    uint64_t rts = t->isolation == TXKV_SNAPSHOT ? t->begin_ts : clock_visible(t->g->store);
    rcu_read_enter();
    *vp = version_visible(r, rts);
    rcu_read_leave();
    return 0;
}

/* An unlocked read at t's read timestamp; records it in the read set when
 * commit must validate it. */
static int read_snapshot(struct txkv_txn *t, const struct kref *k, bool for_update,
                         const struct version **vp)
{
    uint64_t rts = txn_read_ts(t);
    rcu_read_enter();
    struct record *r = ks_lookup(k->ks, k->key, k->klen, k->hv);
    *vp = r ? version_visible(r, rts) : NULL;
    rcu_read_leave();
    /* Reads that must still hold at commit: all of them under SERIALIZABLE
     * (unless declared read-only), and get_for_update at every level.
     * *vp stays valid until t ends: it is visible at t's pin or later. */
    if (for_update || txn_ser_reads(t))
        return rset_add(t, k, r, rts);
    return 0;
}

int txn_read(struct txkv_txn *t, const struct kref *k, const void **val, size_t *vlen,
             bool for_update)
{
    if (for_update && (t->flags & TXKV_RDONLY))
        return TXKV_READONLY;
    struct wentry *w = wset_find(t, k);
    if (w) /* read your own writes */
        return read_found(w->ver, val, vlen);
    const struct version *v;
    int rc;
    if (t->cc == TXKV_PESSIMISTIC && (for_update || txn_ser_reads(t)))
        rc = read_locked(t, k, for_update, &v);
    else
        rc = read_snapshot(t, k, for_update, &v);
    return rc ? rc : read_found(v, val, vlen);
}

int txkv_get(txkv_txn *h, txkv_ks *ks, const void *key, size_t klen, const void **val, size_t *vlen)
{
    struct kref k;
    struct txkv_txn *t;
    int rc = txn_enter(h, &t, __func__);
    if (rc)
        return rc;
    rc = access_prepare(t, ks, key, klen, &k);
    if (!rc)
        rc = txn_read(t, &k, val, vlen, false);
    txn_leave(t);
    return rc;
}

int txkv_get_for_update(txkv_txn *h, txkv_ks *ks, const void *key, size_t klen, const void **val,
                        size_t *vlen)
{
    struct kref k;
    struct txkv_txn *t;
    int rc = txn_enter(h, &t, __func__);
    if (rc)
        return rc;
    rc = access_prepare(t, ks, key, klen, &k);
    if (!rc)
        rc = txn_read(t, &k, val, vlen, true);
    txn_leave(t);
    return rc;
}
