/*
 * apply.c - recovery's writes into the store: keyspaces, and versions
 * installed directly with their commit timestamps.
 *
 * The one file of src/wal/ that builds records and versions itself, kept
 * small on purpose: when the record layout changes (src/record/), this is
 * what follows it.  Single-threaded (txkv_open, before the database is
 * handed out), outside any RCU read-side section; the latch is still
 * taken so the record layer's assertions hold.
 *
 * Recovery is the only writer and nobody reads, which the two paths below
 * use (each is what a transaction's commit would leave, minus what only
 * concurrent readers need):
 *
 *  - A checkpoint's keys (wal_apply_fresh) are distinct and have no record
 *    yet: each record is made with its one version in its inline slot (no
 *    allocation but the record), linked into the B+tree (in key order,
 *    checkpoint.c writes it so: the descent's path stays in cache), and
 *    queued for the hash index, which takes them all at once in bucket
 *    order (hash_load) when the keyspace's keys end.  Nothing is looked up.
 *    Until then those records are in the B+tree only and stay latched by
 *    their creator; wal_apply_flush runs before anything else is applied
 *    and on every way out of a checkpoint load, so after it every record is
 *    in every index of its keyspace again (what keyspace.c's close and the
 *    GC rely on).  A duplicate key in a checkpoint is a damaged checkpoint
 *    (TXKV_IO).
 *  - A log record's write (wal_apply_write) replaces the record's whole
 *    chain: the older versions are freed before the new one is installed,
 *    so the inline slot is free again and a value that fits goes there, as
 *    it went at the first write; an update costs no allocation (a commit
 *    must leave the old version to its readers and write out of line, and
 *    the GC moves it back later).
 *
 * Accounting is exactly a commit's: a record costs record_bytes, an
 * out-of-line version version_bytes, an inline one nothing more; nkeys,
 * nversions, nooline and the keyspace's nrecords move as the commit path
 * moves them, so txkv_stats after recovery counts exactly what is held.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "wal/wal.h"

void wal_loader_init(struct wal_loader *l)
{
    memset(l, 0, sizeof *l);
}

static void sides_free(struct wal_loader *l);

void wal_loader_fini(struct wal_loader *l)
{
    (void)wal_apply_flush(l);
    if (l->bulk)
        munmap(l->bulk, 2 * l->capbulk * sizeof *l->bulk);
    l->bulk = NULL;
    l->capbulk = 0;
    l->nbatch = 0; /* recover.c applies the batch before it ends; after an error it is dropped */
    sides_free(l);
}

static void *map_anon(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/*
 * Room for one more queued record.  The queue (16 bytes a key, and as much
 * again for hash_load's sort) lives only while a checkpoint loads; it is
 * mapped, not malloc'd, so that all of it goes back to the system at the
 * end instead of staying in malloc's free lists (recovery keeps nothing
 * but the data).
 */
static int bulk_reserve(struct wal_loader *l)
{
    if (l->nbulk < l->capbulk)
        return 0;
    size_t cap = l->capbulk ? 2 * l->capbulk : 8192;
    size_t size = 2 * cap * sizeof *l->bulk, old = 2 * l->capbulk * sizeof *l->bulk;
    void *p;
#ifdef MREMAP_MAYMOVE /* Linux: grows without a copy */
    if (!l->bulk)
        p = map_anon(size);
    else if ((p = mremap(l->bulk, old, size, MREMAP_MAYMOVE)) == MAP_FAILED)
        p = NULL;
#else
    if ((p = map_anon(size)) && l->bulk) {
        memcpy(p, l->bulk, l->nbulk * sizeof *l->bulk);
        munmap(l->bulk, old);
    }
#endif
    if (!p)
        return TXKV_NOMEM;
    l->bulk = p;
    l->capbulk = cap;
    return 0;
}

int wal_apply_keyspace(struct ks_set *set, const char *name, unsigned flags, struct txkv_ks **ksp)
{
    int rc = ks_open(set, name, flags | TXKV_CREATE, ksp);
    return rc == TXKV_EXISTS ? TXKV_IO : rc;
}

/* The value as a version in the loader's scratch buffer (vlen fits a slot). */
static struct version *scratch_version(struct wal_loader *l, const void *val, size_t vlen)
{
    struct version *v = (struct version *)(void *)l->scratch;
    assert(vlen <= RECORD_INLINE_MAX);
    v->ts = 0;
    atomic_init(&v->next, NULL);
    v->vlen = (uint32_t)vlen;
    v->tomb = 0;
    v->inl = 0;
    if (vlen)
        memcpy(v->val, val, vlen);
    return v;
}

/*
 * A keyspace's checkpoint records, kept after hash_load in its bucket order
 * (increasing hv & mask) with a directory: dir[j] is the first item whose
 * (hv & mask) >> shift is j.  The log replay finds a checkpoint key's
 * record here instead of through cds_lfht, whose walk is a chain of
 * dependent misses that cannot be prefetched (its bucket arrays are
 * private): directory slot, items, record are each prefetched a stage
 * ahead for a whole batch (wal_apply_batch), so their misses overlap.
 * Valid for all of recovery because no record leaves an index before the
 * GC starts (a delete leaves a tombstone in the record), so a key's record
 * is the one the checkpoint made; keys the checkpoint lacks are not here
 * and are looked up.  Mapped, and unmapped at the end of recovery.
 */
struct wal_side {
    struct txkv_ks *ks;
    struct hash_load_item *items;
    size_t n, items_bytes;
    uint32_t *dir; /* ndir + 1 entries */
    size_t dir_bytes;
    uint64_t mask;
    unsigned shift;
};

#define SIDE_MIN_ITEMS 4096 /* below this, lookups stay in cache anyway */
#define SIDE_PER_SLOT  4    /* items per directory slot, on average: one cache line */

/* Keeps the loader's queue, sorted in bucket order by mask, as ks's side
 * index (the queue's sort half goes back).  Without memory for it, the
 * queue is simply dropped: lookups go through the hash index. */
static void side_keep(struct wal_loader *l, struct txkv_ks *ks, size_t n, uint64_t mask)
{
    size_t half = l->capbulk * sizeof *l->bulk;
    struct hash_load_item *items = l->bulk;
    l->bulk = NULL;
    l->capbulk = 0;
    munmap((char *)items + half, half); /* page-aligned: capbulk is a multiple of 8192 */
    unsigned bits = 0, dbits = 0;
    while (bits < 64 && (mask >> bits))
        bits++;
    while (dbits < bits && ((size_t)SIDE_PER_SLOT << (dbits + 1)) <= n)
        dbits++;
    size_t ndir = (size_t)1 << dbits, dir_bytes = (ndir + 1) * sizeof(uint32_t);
    struct wal_side *sides = realloc(l->sides, (l->nsides + 1) * sizeof *sides);
    uint32_t *dir = n < UINT32_MAX && sides ? map_anon(dir_bytes) : NULL;
    if (sides)
        l->sides = sides;
    if (!dir) {
        munmap(items, half);
        return;
    }
    unsigned shift = bits - dbits;
    size_t i = 0;
    for (size_t j = 0; j < ndir; j++) {
        while (i < n && ((items[i].hv & mask) >> shift) < j)
            i++;
        dir[j] = (uint32_t)i;
    }
    dir[ndir] = (uint32_t)n;
    l->sides[l->nsides++] = (struct wal_side){ks, items, n, half, dir, dir_bytes, mask, shift};
}

static void sides_free(struct wal_loader *l)
{
    for (size_t i = 0; i < l->nsides; i++) {
        munmap(l->sides[i].items, l->sides[i].items_bytes);
        munmap(l->sides[i].dir, l->sides[i].dir_bytes);
    }
    free(l->sides);
    l->sides = NULL;
    l->nsides = 0;
}

static struct wal_side *side_of(struct wal_loader *l, struct txkv_ks *ks)
{
    for (size_t i = 0; i < l->nsides; i++)
        if (l->sides[i].ks == ks)
            return &l->sides[i];
    return NULL;
}

/* The record of key (hash hv) among the side index's, or NULL. */
static struct record *side_find(const struct wal_side *sd, size_t slot, const void *key,
                                size_t klen, uint64_t hv)
{
    for (uint32_t i = sd->dir[slot]; i < sd->dir[slot + 1]; i++) {
        if (sd->items[i].hv != hv)
            continue;
        struct record *r = caa_container_of(sd->items[i].e, struct record, he);
        if (r->klen == klen && !memcmp(r->key, key, klen))
            return r;
    }
    return NULL;
}

int wal_apply_flush(struct wal_loader *l)
{
    struct txkv_ks *ks = l->bulk_ks;
    size_t n = l->nbulk;
    if (!n)
        return 0;
    struct record_store *s = ks->store;
    int64_t nrec = atomic_load_explicit(&ks->nrecords, memory_order_relaxed);
    size_t linked = nrec > (int64_t)n ? (size_t)nrec - n : 0;
    uint64_t order;
    size_t ndup = hash_load(ks->hash, l->bulk, l->bulk + l->capbulk, n, linked, &order);
    for (size_t i = ndup; i < n; i++)
        latch_release(caa_container_of(l->bulk[i].e, struct record, he));
    l->nbulk = 0;
    l->bulk_ks = NULL;
    if (!ndup && n >= SIDE_MIN_ITEMS && !side_of(l, ks)) {
        side_keep(l, ks, n, order);
        return 0;
    }
    /* A key twice in a hash-only keyspace's checkpoint (with a B+tree,
     * btree_insert caught it): the second record is in no index. */
    for (size_t i = 0; i < ndup; i++) {
        struct record *r = caa_container_of(l->bulk[i].e, struct record, he);
        atomic_fetch_sub_explicit(&s->nkeys, 1, memory_order_relaxed);
        atomic_fetch_sub_explicit(&ks->nrecords, 1, memory_order_relaxed);
        latch_release(r);
        record_free_now(s, r);
    }
    return ndup ? TXKV_IO : 0;
}

int wal_apply_fresh(struct wal_loader *l, struct txkv_ks *ks, const void *key, size_t klen,
                    const void *val, size_t vlen, uint64_t ts)
{
    struct record_store *s = ks->store;
    bool slot = vlen <= RECORD_INLINE_MAX;
    size_t icap = record_icap(vlen, slot);
    size_t bytes = record_bytes(klen, slot, icap) + (slot ? 0 : version_bytes(vlen));
    int rc;

    if (ks != l->bulk_ks && (rc = wal_apply_flush(l)))
        return rc;
    if (ks->hash && bulk_reserve(l))
        return TXKV_NOMEM;
    if ((rc = mem_reserve(&s->mem, bytes, false)))
        return rc;
    struct record *r = record_new(key, klen, slot, icap, LATCH_CREATOR);
    struct version *v = !r     ? NULL
                        : slot ? scratch_version(l, val, vlen)
                               : version_new(val, vlen, false);
    if (!v) {
        free(r);
        mem_release(&s->mem, bytes);
        return TXKV_NOMEM;
    }
    struct version *nv = version_install(s, r, v, ts, prune_below(0), NULL);
    assert(slot ? nv != v : nv == v); /* the scratch is copied, never linked */
    (void)nv;
    atomic_fetch_add_explicit(&s->nversions, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->nkeys, 1, memory_order_relaxed);
    if (ks->tree) {
        rcu_read_enter();
        rc = btree_insert(ks->tree, r->key, r->klen, r, NULL);
        rcu_read_leave();
        if (rc) { /* in no index: free it with what it holds */
            atomic_fetch_sub_explicit(&s->nkeys, 1, memory_order_relaxed);
            latch_release(r);
            record_free_now(s, r);
            return rc == TXKV_EXISTS ? TXKV_IO : rc; /* a key twice: damaged */
        }
    }
    atomic_fetch_add_explicit(&ks->nrecords, 1, memory_order_relaxed);
    if (!ks->hash) {
        latch_release(r);
        return 0;
    }
    l->bulk[l->nbulk].hv = ks_hash(ks, key, klen);
    l->bulk[l->nbulk].e = &r->he;
    l->nbulk++;
    l->bulk_ks = ks;
    return 0;
}

/* One log write; p->rec: its record if the side index found it. */
static int apply_one(struct wal_loader *l, const struct wal_prep *p)
{
    struct txkv_ks *ks = p->ks;
    struct record_store *s = ks->store;
    const void *key = p->key, *val = p->val;
    size_t klen = p->klen, vlen = p->vlen;
    bool tomb = p->tomb;
    uint64_t ts = p->ts;
    struct kref k = {ks, key, klen, p->hv};
    struct record *r = p->rec;
    bool made = false;
    int rc;

    assert(!l->nbulk); /* the checkpoint's records are all in their indexes */
    size_t vbytes = version_bytes(vlen);
    if ((rc = mem_reserve(&s->mem, vbytes, tomb)))
        return rc;
#ifndef NDEBUG
    rcu_read_enter();
    assert(!r || r == ks_lookup(ks, key, klen, k.hv)); /* the side index agrees */
    rcu_read_leave();
#endif
    if (!r) {
        rcu_read_enter();
        r = ks_lookup(ks, key, klen, k.hv);
        if (r && record_dead(r))
            r = NULL;
        rcu_read_leave();
    }
    /* Built in the scratch buffer when it may go inline; copied to the
     * heap below if it does not fit the record's slot after all. */
    bool maybe_inl = !tomb && vlen <= RECORD_INLINE_MAX;
    struct version *v = maybe_inl ? scratch_version(l, val, vlen) : version_new(val, vlen, tomb);
    if (!v) {
        mem_release(&s->mem, vbytes);
        return TXKV_NOMEM;
    }
    if (!r && (rc = ks_resolve(&k, v, tomb, &r, &made))) {
        if (!maybe_inl)
            version_free_now(v);
        mem_release(&s->mem, vbytes);
        return rc;
    }
    /* The GC thread, which resizes hash tables as they grow, is not running
     * yet: do its job (as gc_maintain_hashes does); O(1) unless it resizes. */
    int64_t n = atomic_load_explicit(&ks->nrecords, memory_order_relaxed);
    if (made && ks->hash)
        hash_maintain(ks->hash, n > 0 ? (size_t)n : 0);
    latch_wait(r, LATCH_RECOVERY);
    struct version *old = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (old && old->ts >= ts) { /* cannot happen in a well-formed log */
        latch_release(r);
        if (!maybe_inl)
            version_free_now(v);
        mem_release(&s->mem, vbytes);
        return TXKV_IO;
    }
    int64_t dkeys = (old && !old->tomb) ? (tomb ? -1 : 0) : (tomb ? 0 : 1);
    struct version *slot = record_slot(r);
    if (maybe_inl && !(slot && vlen <= record_slot_cap(r))) {
        /* the slot was sized for a smaller first value: out of line */
        struct version *h = version_new(val, vlen, false);
        if (!h) {
            latch_release(r);
            mem_release(&s->mem, vbytes);
            return TXKV_NOMEM;
        }
        v = h;
        maybe_inl = false;
    }
    /* Nobody can read the older versions: free them all now, before the
     * install (a commit keeps them for its readers and the GC cuts them
     * later), so the inline slot is free for the new value. */
    if (old) {
        if (record_promotable(r, old))
            atomic_fetch_sub_explicit(&s->nooline, 1, memory_order_relaxed);
        atomic_store_explicit(&r->head, NULL, memory_order_relaxed);
        for (struct version *o = old, *nx; o; o = nx) {
            nx = atomic_load_explicit(&o->next, memory_order_relaxed);
            if (!o->inl) {
                mem_release(&s->mem, version_bytes(o->vlen));
                version_free_now(o);
            }
            atomic_fetch_sub_explicit(&s->nversions, 1, memory_order_relaxed);
        }
    }
    /* horizon 0: version_install prunes nothing (the chain is empty) */
    struct version *nv = version_install(s, r, v, ts, prune_below(0), NULL);
    assert(maybe_inl ? nv == slot : nv == v); /* the scratch is copied, never linked */
    if (nv != v)                              /* copied into the record's inline slot */
        mem_release(&s->mem, vbytes);
    latch_release(r);
    atomic_fetch_add_explicit(&s->nkeys, dkeys, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->nversions, 1, memory_order_relaxed);
    if (tomb)
        ks_queue_tombstone(ks, r);
    return 0;
}

int wal_apply_write(struct wal_loader *l, struct txkv_ks *ks, const void *key, size_t klen,
                    const void *val, size_t vlen, bool tomb, uint64_t ts)
{
    struct wal_prep *p = &l->batch[l->nbatch++];
    *p = (struct wal_prep){
        .ks = ks, .key = key, .val = val, .klen = klen, .vlen = vlen, .tomb = tomb, .ts = ts};
    return l->nbatch == WAL_BATCH ? wal_apply_batch(l) : 0;
}

/*
 * Group prefetching (S. Chen, A. Ailamaki, P. B. Gibbons, T. C. Mowry,
 * "Improving hash join performance through prefetching", ICDE 2004): each
 * stage issues the prefetches of every write in the batch before the next
 * stage reads what they fetch, so a batch waits for about one miss per
 * stage instead of one per stage per write.  The writes are then applied
 * in log order; nothing but the lookups moved ahead, and a lookup's answer
 * cannot change before its write is applied (see struct wal_side).
 */
int wal_apply_batch(struct wal_loader *l)
{
    size_t n = l->nbatch;
    struct wal_prep *b = l->batch;
    int rc = 0;
    l->nbatch = 0;
    for (size_t i = 0; i < n; i++) { /* the directory slots */
        struct wal_prep *p = &b[i];
        p->hv = ks_hash(p->ks, p->key, p->klen);
        p->side = l->nsides ? side_of(l, p->ks) : NULL;
        p->rec = NULL;
        if (p->side) {
            p->slot = (size_t)((p->hv & p->side->mask) >> p->side->shift);
            __builtin_prefetch(&p->side->dir[p->slot]);
        }
    }
    for (size_t i = 0; i < n; i++) /* the items */
        if (b[i].side)
            __builtin_prefetch(&b[i].side->items[b[i].side->dir[b[i].slot]]);
    for (size_t i = 0; i < n; i++) { /* the records: header, key and slot */
        struct wal_prep *p = &b[i];
        if (p->side && (p->rec = side_find(p->side, p->slot, p->key, p->klen, p->hv))) {
            __builtin_prefetch(p->rec, 1);
            __builtin_prefetch((char *)p->rec + 64, 1);
            __builtin_prefetch((char *)p->rec + 128, 1);
        }
    }
    for (size_t i = 0; i < n && !rc; i++)
        rc = apply_one(l, &b[i]);
    return rc;
}
