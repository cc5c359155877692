/*
 * txn.c - transactions: begin/end, reads, buffered writes, read and range
 * sets, txkv_run.
 *
 * Owns the transaction objects.  They belong to the database, sit on the
 * push-only list db->txns and are reused, never freed before close, so the
 * GC can scan every pin without a lock.  A thread remembers the last object
 * it used (a thread-local hint) and claims it with a CAS on the object's own
 * cache line; nothing on begin, get or a read-only commit writes a cache
 * line that all threads share (the "read path" rule of docs/design.md).
 *
 * Begin: pin = visible_ts (seq_cst store), then read visible_ts again as the
 * snapshot.  The second load after the store is what makes the GC's scan
 * safe, see gc.c.
 *
 * A transaction is used by one thread at a time (any thread); nothing here
 * locks against concurrent calls on the same transaction.
 */
#include "config.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"

static __thread uint64_t tl_dbid;
static __thread struct txkv_txn *tl_hint;

int key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

/* ---- arena: key copies that live as long as the transaction ----------- */

void *arena_alloc(struct txkv_txn *t, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    struct arena_chunk *c = t->arena;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 16384 ? n : 16384;
        c = malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->cap = cap;
        c->used = 0;
        c->next = t->arena;
        t->arena = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

static void arena_reset(struct txkv_txn *t)
{
    /* Keep one chunk for the next transaction on this object. */
    struct arena_chunk *c = t->arena;
    while (c && c->next) {
        struct arena_chunk *nx = c->next;
        free(c);
        c = nx;
    }
    if (c && c->cap > 65536) {
        free(c);
        c = NULL;
    }
    if (c)
        c->used = 0;
    t->arena = c;
}

static const uint8_t *arena_key(struct txkv_txn *t, const void *key, size_t klen)
{
    uint8_t *p = arena_alloc(t, klen);
    if (p)
        memcpy(p, key, klen);
    return p;
}

/* ---- transaction objects ---------------------------------------------- */

static struct txkv_txn *txn_claim(struct txkv_db *db)
{
    int zero = 0;
    struct txkv_txn *t = tl_dbid == db->id ? tl_hint : NULL;
    if (t && atomic_compare_exchange_strong(&t->in_use, &zero, 1))
        return t;
    for (t = atomic_load_explicit(&db->txns, memory_order_acquire); t; t = t->all_next) {
        zero = 0;
        if (!atomic_load_explicit(&t->in_use, memory_order_relaxed) &&
            atomic_compare_exchange_strong(&t->in_use, &zero, 1))
            goto out;
    }
    if (posix_memalign((void **)&t, 64, sizeof *t) != 0)
        return NULL;
    memset(t, 0, sizeof *t);
    atomic_init(&t->in_use, 1);
    t->db = db;
    struct txkv_txn *head = atomic_load(&db->txns);
    do {
        t->all_next = head;
    } while (!atomic_compare_exchange_weak(&db->txns, &head, t));
out:
    tl_dbid = db->id;
    tl_hint = t;
    return t;
}

int txkv_begin(txkv_db *db, const txkv_txn_options *o, txkv_txn **txnp)
{
    if (!txnp)
        return TXKV_INVALID;
    *txnp = NULL;
    if (!db)
        return TXKV_INVALID;
    int iso = o && o->isolation ? o->isolation : db->opt.isolation;
    int cc = o && o->cc ? o->cc : db->opt.cc;
    unsigned flags = o ? o->flags : 0;
    if (iso < TXKV_READ_COMMITTED || iso > TXKV_SERIALIZABLE || (flags & ~(unsigned)TXKV_RDONLY) ||
        (cc != TXKV_OPTIMISTIC && cc != TXKV_PESSIMISTIC))
        return TXKV_INVALID;

    struct txkv_txn *t = txn_claim(db);
    if (!t)
        return TXKV_NOMEM;
    t->isolation = iso;
    t->cc = cc;
    t->flags = flags;
    t->failed = 0;
    t->nws = t->nrs = t->nranges = t->nsorted = 0;
    t->sorted_valid = false;
    t->wbytes = 0;
    t->cursors = NULL;
    t->serial = 0;
    t->lock_timeout_us = o && o->lock_timeout_us ? o->lock_timeout_us : db->opt.lock_timeout_us;
    if (cc == TXKV_PESSIMISTIC) /* age for the deadlock victim rule */
        t->serial = atomic_fetch_add_explicit(&db->txn_serial, 1, memory_order_relaxed) + 1;
    if (t->wmap)
        memset(t->wmap, 0, t->wmap_cap * sizeof *t->wmap);
    atomic_store_explicit(&t->begin_ns, now_ns(), memory_order_relaxed);
    /* Pin first, then take the snapshot: see gc.c for why this order. */
    atomic_store(&t->pin, atomic_load(&db->visible_ts));
    t->begin_ts = atomic_load(&db->visible_ts);
    *txnp = t;
    return 0;
}

/* Ends t: frees what it buffered and returns the object for reuse. */
static void txn_end(struct txkv_txn *t)
{
    cursor_close_all(t);
    lock_release_all(t); /* strict 2PL: after the commit is visible */
    for (size_t i = 0; i < t->nws; i++)
        if (t->ws[i].ver)
            version_free_now(t->ws[i].ver);
    while (t->superseded) {
        struct version *nx = atomic_load_explicit(&t->superseded->next, memory_order_relaxed);
        version_free_now(t->superseded);
        t->superseded = nx;
    }
    t->nws = t->nrs = t->nranges = 0;
    arena_reset(t);
    if (t->capws > 1024) { /* don't let one huge transaction keep its buffers */
        free(t->ws);
        free(t->wmap);
        free(t->wsorted);
        t->ws = NULL;
        t->wmap = t->wsorted = NULL;
        t->capws = t->wmap_cap = 0;
    }
    if (t->caprs > 4096) {
        free(t->rs);
        t->rs = NULL;
        t->caprs = 0;
    }
    /* release: the next user of this object sees it clean */
    atomic_store_explicit(&t->pin, 0, memory_order_release);
    atomic_store_explicit(&t->in_use, 0, memory_order_release);
}

/* Frees a transaction object for good (txkv_close; the object is not in use). */
void txn_destroy(struct txkv_txn *t)
{
    if (t->cv_ready)
        pthread_cond_destroy(&t->cv);
    free(t->held);
    free(t->ws);
    free(t->wmap);
    free(t->wsorted);
    free(t->rs);
    free(t->ranges);
    while (t->arena) {
        struct arena_chunk *nx = t->arena->next;
        free(t->arena);
        t->arena = nx;
    }
    free(t);
}

static void count(_Atomic uint64_t *c)
{
    /* Only the thread using the object writes its counters. */
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

void txkv_abort(txkv_txn *t)
{
    if (!t)
        return;
    if (!t->failed)
        count(&t->n_user);
    txn_end(t);
}

int txkv_commit(txkv_txn *t)
{
    if (!t)
        return TXKV_INVALID;
    int rc = t->failed ? TXKV_ABORTED : occ_commit(t);
    if (rc == 0)
        count(&t->n_commits);
    else if (rc == TXKV_CONFLICT)
        count(&t->n_conflict);
    else if (rc == TXKV_FULL)
        count(&t->n_full);
    txn_end(t);
    return rc;
}

int txn_fail(struct txkv_txn *t, int rc)
{
    if (rc == TXKV_CONFLICT)
        count(&t->n_conflict);
    else if (rc == TXKV_FULL)
        count(&t->n_full);
    else if (rc == TXKV_DEADLOCK)
        count(&t->n_deadlock);
    else if (rc == TXKV_LOCK_TIMEOUT)
        count(&t->n_timeout);
    t->failed = rc;
    /* A failed transaction will not commit: let the others have its locks now. */
    lock_release_all(t);
    return rc;
}

uint64_t txkv_txn_id(txkv_txn *t)
{
    if (!t)
        return 0;
    if (!t->serial) /* optimistic transactions get one only when asked */
        t->serial = atomic_fetch_add_explicit(&t->db->txn_serial, 1, memory_order_relaxed) + 1;
    return t->serial;
}

/* Pessimistic: lock key (mode) and, at SNAPSHOT, fail if it was committed
 * after our snapshot (first updater wins).  *recp: the locked record. */
static int txn_lock(struct txkv_txn *t, struct txkv_ks *ks, const void *key, size_t klen,
                    uint64_t hv, int mode, struct record **recp)
{
    int rc = lock_key(t, ks, key, klen, hv, mode, recp);
    if (rc == TXKV_NOMEM)
        return rc;
    if (rc)
        return txn_fail(t, rc);
    if (mode == LOCK_X && t->isolation == TXKV_SNAPSHOT) {
        struct version *v = atomic_load_explicit(&(*recp)->head, memory_order_acquire);
        if (v && v->ts > t->begin_ts)
            return txn_fail(t, TXKV_CONFLICT);
    }
    return 0;
}

/* The timestamp this transaction reads at now. */
uint64_t txn_read_ts(struct txkv_txn *t)
{
    if (t->isolation == TXKV_READ_COMMITTED)
        return atomic_load_explicit(&t->db->visible_ts, memory_order_acquire);
    return t->begin_ts;
}

/* ---- write set -------------------------------------------------------- */

static size_t wmap_slot(size_t cap, uint64_t hv)
{
    return (size_t)(hv ^ (hv >> 29)) & (cap - 1);
}

struct wentry *wset_find(struct txkv_txn *t, struct txkv_ks *ks, const void *key, size_t klen,
                         uint64_t hv)
{
    if (!t->nws)
        return NULL;
    for (size_t i = wmap_slot(t->wmap_cap, hv);; i = (i + 1) & (t->wmap_cap - 1)) {
        uint32_t x = t->wmap[i];
        if (!x)
            return NULL;
        struct wentry *w = &t->ws[x - 1];
        if (w->hv == hv && w->ks == ks && w->klen == klen && memcmp(w->key, key, klen) == 0)
            return w;
    }
}

static int wset_grow(struct txkv_txn *t)
{
    if (t->nws == t->capws) {
        size_t cap = t->capws ? t->capws * 2 : 16;
        struct wentry *ws = realloc(t->ws, cap * sizeof *ws);
        if (!ws)
            return TXKV_NOMEM;
        t->ws = ws;
        t->capws = cap;
    }
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

static int ws_cmp_ctx(const struct txkv_txn *t, uint32_t a, uint32_t b)
{
    const struct wentry *x = &t->ws[a], *y = &t->ws[b];
    if (x->ks != y->ks)
        return x->ks < y->ks ? -1 : 1;
    return key_cmp(x->key, x->klen, y->key, y->klen);
}

/* Sorts the write set's indices by (keyspace, key) for cursors: insertion
 * sort over the part added since the last sort, then a merge. */
void wset_sort(struct txkv_txn *t)
{
    if (t->sorted_valid)
        return;
    uint32_t *s = realloc(t->wsorted, (t->nws ? t->nws : 1) * sizeof *s);
    if (!s)
        return; /* cursors then fall back to a linear scan, see cursor.c */
    t->wsorted = s;
    for (size_t i = 0; i < t->nws; i++) {
        uint32_t x = (uint32_t)i;
        size_t j = i;
        while (j > 0 && ws_cmp_ctx(t, s[j - 1], x) > 0) {
            s[j] = s[j - 1];
            j--;
        }
        s[j] = x;
    }
    t->nsorted = t->nws;
    t->sorted_valid = true;
}

static int check_key(const void *key, size_t klen)
{
    return key && klen >= 1 && klen <= TXKV_MAX_KEY ? 0 : TXKV_INVALID;
}

static int txn_write(struct txkv_txn *t, struct txkv_ks *ks, const void *key, size_t klen,
                     const void *val, size_t vlen, bool tomb)
{
    if (!t)
        return TXKV_INVALID;
    if (t->failed)
        return TXKV_ABORTED;
    if (check_key(key, klen) || (!val && vlen) || vlen > TXKV_MAX_VALUE ||
        (ks && ks->db != t->db))
        return TXKV_INVALID;
    if (t->flags & TXKV_RDONLY)
        return TXKV_READONLY;
    ks = db_ks(t->db, ks);
    struct txkv_db *db = t->db;
    size_t add = mem_version_bytes(vlen);
    /* A transaction that alone would pass the limit fails now, not at commit. */
    if (!tomb && mem_over(db, t->wbytes + add))
        return txn_fail(t, TXKV_FULL);
    struct version *v = version_new(db, val, vlen, tomb);
    if (!v)
        return TXKV_NOMEM;
    uint64_t hv = db_hash(ks, key, klen);
    struct wentry *w = wset_find(t, ks, key, klen, hv);
    struct record *locked = NULL;
    if (t->cc == TXKV_PESSIMISTIC && !w) {
        int rc = txn_lock(t, ks, key, klen, hv, LOCK_X, &locked);
        if (rc) {
            version_free_now(v);
            return rc;
        }
    }
    if (w) {
        t->wbytes -= mem_version_bytes(w->ver->vlen);
        /* A get may have returned a pointer into the old value: keep it. */
        atomic_store_explicit(&w->ver->next, t->superseded, memory_order_relaxed);
        t->superseded = w->ver;
        w->ver = v;
        t->wbytes += add;
        return 0;
    }
    const uint8_t *kc;
    if (wset_grow(t) || !(kc = arena_key(t, key, klen))) {
        version_free_now(v);
        return TXKV_NOMEM;
    }
    w = &t->ws[t->nws];
    w->ks = ks;
    w->rec = locked; /* pessimistic: resolved and locked already */
    w->hv = hv;
    w->key = kc;
    w->klen = (uint32_t)klen;
    w->latched = w->made = false;
    w->ver = v;
    size_t i = wmap_slot(t->wmap_cap, hv);
    while (t->wmap[i])
        i = (i + 1) & (t->wmap_cap - 1);
    t->wmap[i] = (uint32_t)++t->nws;
    t->sorted_valid = false;
    t->wbytes += add + mem_record_bytes(klen);
    return 0;
}

int txkv_put(txkv_txn *t, txkv_ks *ks, const void *key, size_t klen, const void *val, size_t vlen)
{
    return txn_write(t, ks, key, klen, val, vlen, false);
}

int txkv_del(txkv_txn *t, txkv_ks *ks, const void *key, size_t klen)
{
    return txn_write(t, ks, key, klen, NULL, 0, true);
}

/* ---- reads ------------------------------------------------------------ */

static int rset_add(struct txkv_txn *t, struct txkv_ks *ks, struct record *r, const void *key,
                    size_t klen, uint64_t hv, uint64_t read_ts)
{
    if (t->nrs == t->caprs) {
        size_t cap = t->caprs ? t->caprs * 2 : 32;
        struct rentry *rs = realloc(t->rs, cap * sizeof *rs);
        if (!rs)
            return TXKV_NOMEM;
        t->rs = rs;
        t->caprs = cap;
    }
    struct rentry *e = &t->rs[t->nrs];
    e->ks = ks;
    e->rec = r;
    e->key = NULL;
    e->klen = (uint32_t)klen;
    e->hv = hv;
    e->read_ts = read_ts;
    if (!r && !(e->key = arena_key(t, key, klen)))
        return TXKV_NOMEM;
    t->nrs++;
    return 0;
}

int rset_add_range(struct txkv_txn *t, struct txkv_ks *ks, const void *lo, size_t lolen,
                   const void *hi, size_t hilen)
{
    if (t->nranges == t->capranges) {
        size_t cap = t->capranges ? t->capranges * 2 : 8;
        struct rangeentry *r = realloc(t->ranges, cap * sizeof *r);
        if (!r)
            return TXKV_NOMEM;
        t->ranges = r;
        t->capranges = cap;
    }
    struct rangeentry *e = &t->ranges[t->nranges];
    e->ks = ks;
    e->lo = lo ? arena_key(t, lo, lolen) : NULL;
    e->hi = hi ? arena_key(t, hi, hilen) : NULL;
    e->lolen = (uint32_t)lolen;
    e->hilen = (uint32_t)hilen;
    e->read_ts = t->begin_ts;
    if ((lo && !e->lo) || (hi && !e->hi))
        return TXKV_NOMEM;
    t->nranges++;
    return 0;
}

static int txn_read(struct txkv_txn *t, struct txkv_ks *ks, const void *key, size_t klen,
                    const void **val, size_t *vlen, bool for_update)
{
    if (!t)
        return TXKV_INVALID;
    if (t->failed)
        return TXKV_ABORTED;
    if (check_key(key, klen) || (ks && ks->db != t->db))
        return TXKV_INVALID;
    if (for_update && (t->flags & TXKV_RDONLY))
        return TXKV_READONLY;
    ks = db_ks(t->db, ks);
    uint64_t hv = db_hash(ks, key, klen);
    struct wentry *w = wset_find(t, ks, key, klen, hv);
    if (w) { /* read your own writes */
        if (w->ver->tomb)
            return TXKV_NOTFOUND;
        if (val)
            *val = w->ver->val;
        if (vlen)
            *vlen = w->ver->vlen;
        return 0;
    }
    bool ser = t->isolation == TXKV_SERIALIZABLE && !(t->flags & TXKV_RDONLY);
    if (t->cc == TXKV_PESSIMISTIC && (for_update || ser)) {
        /* Two-phase locking: read under the lock.  SERIALIZABLE reads the
         * newest committed version (the lock keeps it the newest); SNAPSHOT
         * reads its snapshot, which txn_lock checked is still the newest. */
        struct record *r;
        int rc = txn_lock(t, ks, key, klen, hv, for_update ? LOCK_X : LOCK_S, &r);
        if (rc)
            return rc;
        uint64_t rts = t->isolation == TXKV_SNAPSHOT
                           ? t->begin_ts
                           : atomic_load_explicit(&t->db->visible_ts, memory_order_acquire);
        rcu_read_enter();
        struct version *v = version_visible(r, rts);
        rcu_read_leave();
        if (!v || v->tomb)
            return TXKV_NOTFOUND;
        if (val)
            *val = v->val;
        if (vlen)
            *vlen = v->vlen;
        return 0;
    }
    uint64_t rts = txn_read_ts(t);
    rcu_read_enter();
    struct record *r = ks_lookup(ks, key, klen, hv);
    struct version *v = r ? version_visible(r, rts) : NULL;
    rcu_read_leave();
    /* Reads that must still hold at commit: all of them under SERIALIZABLE
     * (unless declared read-only), and get_for_update at every level. */
    if (for_update || ser) {
        int rc = rset_add(t, ks, r, key, klen, hv, rts);
        if (rc)
            return rc;
    }
    if (!v || v->tomb)
        return TXKV_NOTFOUND;
    /* v stays valid until t ends: it is visible at t's pin or later (gc.c). */
    if (val)
        *val = v->val;
    if (vlen)
        *vlen = v->vlen;
    return 0;
}

int txkv_get(txkv_txn *t, txkv_ks *ks, const void *key, size_t klen, const void **val,
             size_t *vlen)
{
    return txn_read(t, ks, key, klen, val, vlen, false);
}

int txkv_get_for_update(txkv_txn *t, txkv_ks *ks, const void *key, size_t klen,
                        const void **val, size_t *vlen)
{
    return txn_read(t, ks, key, klen, val, vlen, true);
}

/* ---- txkv_run --------------------------------------------------------- */

int txkv_run(txkv_db *db, const txkv_txn_options *o, int (*fn)(txkv_txn *, void *), void *arg,
             int max_tries)
{
    if (!db || !fn || max_tries < 0)
        return TXKV_INVALID;
    for (int tries = 1;; tries++) {
        txkv_txn *t;
        int rc = txkv_begin(db, o, &t);
        if (rc)
            return rc;
        rc = fn(t, arg);
        if (rc == 0) {
            rc = txkv_commit(t);
        } else {
            /* fn may return the txn's failure code: it is then not a user abort */
            if (t->failed)
                rc = t->failed;
            txkv_abort(t);
        }
        if (!txkv_is_retryable(rc) || (max_tries && tries >= max_tries))
            return rc;
        /* Back off a little more each time so colliding retries spread out. */
        for (int i = 0; i < (tries < 8 ? 1 << tries : 256); i++)
            sched_yield();
    }
}
