/*
 * keyspace.c - keyspaces and the mapping of their keys to records.
 *
 * Owns: the keyspace set of a database (mu guards the list), each
 * keyspace's indexes, and the linking of records into them.
 *
 * A record is created already latched by its creator and inserted into the
 * hash index first, then the B+tree.  When a keyspace has a hash index it is
 * the authority on whether a key has a record; anyone who finds a record
 * through it must take the latch before writing the record, and by then the
 * record is in the B+tree too.  So no committed version exists on a record
 * that a scan could miss.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "record/keyspace.h"
#include "txkv.h"

/* The hash index's way from an entry to its key (hash_create's key_of): the
 * record's own key bytes, which outlive its time in the index (R3). */
static const uint8_t *record_key_of(const struct hash_entry *e, size_t *klen)
{
    const struct record *r = caa_container_of(e, struct record, he);

    *klen = r->klen;
    return r->key;
}

static int ks_new(struct ks_set *set, const char *name, unsigned flags, struct txkv_ks **out)
{
    struct txkv_ks *ks = calloc(1, sizeof *ks);
    int rc = TXKV_NOMEM;
    if (!ks)
        return TXKV_NOMEM;
    ks->set = set;
    ks->store = set->store;
    ks->flags = flags;
    ks->name = strdup(name);
    if (!ks->name)
        goto fail;
    /* A per-keyspace seed keeps one keyspace's collisions out of another's. */
    uint64_t seed = XXH3_64bits(name, strlen(name)) ^ set->seed;
    if ((flags & TXKV_HASH) && (rc = hash_create(seed, 1024, record_key_of, &ks->hash)) != 0)
        goto fail;
    if ((flags & TXKV_ORDERED) && (rc = btree_create(&ks->tree)) != 0)
        goto fail;
    *out = ks;
    return 0;
fail:
    if (ks->hash)
        hash_destroy(ks->hash);
    free(ks->name);
    free(ks);
    return rc;
}

static void ks_destroy(struct txkv_ks *ks)
{
    if (ks->hash)
        hash_destroy(ks->hash);
    if (ks->tree)
        btree_destroy(ks->tree);
    free(ks->name);
    free(ks);
}

int ks_set_init(struct ks_set *set, struct record_store *store, uint64_t seed)
{
    mutex_init(&set->mu);
    set->store = store;
    set->seed = seed;
    set->list = NULL;
    int rc = ks_new(set, "default", TXKV_HASH | TXKV_ORDERED, &set->def);
    if (rc)
        return rc;
    set->list = set->def;
    return 0;
}

void ks_set_fini(struct ks_set *set)
{
    for (struct txkv_ks *ks = set->list; ks;) {
        struct txkv_ks *nx = ks->next;
        ks_destroy(ks);
        ks = nx;
    }
    set->list = set->def = NULL;
    mutex_destroy(&set->mu);
}

int ks_open(struct ks_set *set, const char *name, unsigned flags, struct txkv_ks **ksp)
{
    unsigned idx = flags & (TXKV_HASH | TXKV_ORDERED);
    if (!idx)
        idx = TXKV_HASH | TXKV_ORDERED;
    int rc = 0;
    mutex_lock(&set->mu);
    struct txkv_ks *ks;
    for (ks = set->list; ks; ks = ks->next)
        if (strcmp(ks->name, name) == 0)
            break;
    if (ks) {
        /* Index flags given explicitly must match the existing keyspace. */
        if ((flags & (TXKV_HASH | TXKV_ORDERED)) && ks->flags != idx)
            rc = TXKV_EXISTS;
    } else if (!(flags & TXKV_CREATE)) {
        rc = TXKV_NOTFOUND;
    } else if ((rc = ks_new(set, name, idx, &ks)) == 0) {
        ks->next = set->list;
        set->list = ks;
    }
    mutex_unlock(&set->mu);
    *ksp = rc ? NULL : ks;
    return rc;
}

struct txkv_ks *ks_first(struct ks_set *set)
{
    mutex_lock(&set->mu);
    struct txkv_ks *l = set->list;
    mutex_unlock(&set->mu);
    return l;
}

uint64_t ks_hash(const struct txkv_ks *ks, const void *key, size_t klen)
{
    /* Without a hash index the hash only keys a transaction's own maps. */
    return ks->hash ? hash_key(ks->hash, key, klen) : XXH3_64bits(key, klen);
}

struct record *ks_lookup(struct txkv_ks *ks, const void *key, size_t klen, uint64_t hv)
{
    assert_in_rcu_section();
    if (ks->hash) {
        struct hash_entry *e = hash_lookup(ks->hash, key, klen, hv);
        return e ? container_of_(e, struct record, he) : NULL;
    }
    return btree_lookup(ks->tree, key, klen);
}

void ks_unlink(struct txkv_ks *ks, struct record *r)
{
    assert_in_rcu_section();
    if (ks->hash)
        hash_remove(ks->hash, &r->he);
    if (ks->tree)
        btree_remove(ks->tree, r->key, r->klen, r);
}

/* Links nr into the B+tree.  A dead record the GC has not taken out of the
 * tree yet is helped out; with a hash index, the hash slot we hold is the
 * authority.  In a tree-only keyspace a live record found there wins and is
 * returned in *found.  0, TXKV_EXISTS (*found) or TXKV_NOMEM. */
static int tree_link(struct txkv_ks *ks, struct record *nr, struct record **found)
{
    void *ex = NULL;
    int rc;
    while ((rc = btree_insert(ks->tree, nr->key, nr->klen, nr, &ex)) == TXKV_EXISTS) {
        struct record *o = ex;
        if (!record_dead(o) && !ks->hash) {
            *found = o;
            return TXKV_EXISTS;
        }
        btree_remove(ks->tree, nr->key, nr->klen, o);
    }
    return rc;
}

/*
 * Finds the live record for key or links nr (latched by its creator).
 * *created tells which.  A dead record found (the GC is between its hash
 * and tree removals) is helped out of the indexes first.  RCU read side.
 */
static int ks_insert(struct txkv_ks *ks, struct record *nr, uint64_t hv, struct record **recp,
                     bool *created)
{
    assert_in_rcu_section();
    *created = false;
    for (;;) {
        struct record *r = ks_lookup(ks, nr->key, nr->klen, hv);
        if (r && !record_dead(r)) {
            *recp = r;
            return 0;
        }
        if (r) {
            ks_unlink(ks, r); /* the GC is taking it out: help, then look again */
            continue;
        }
        if (ks->hash && hash_insert(ks->hash, &nr->he, hv) != &nr->he)
            continue; /* lost a race: use the winner's record */
        if (ks->tree) {
            int rc = tree_link(ks, nr, recp);
            if (rc == TXKV_EXISTS)
                return 0; /* tree-only keyspace: the tree is the authority */
            if (rc == TXKV_NOMEM) {
                if (ks->hash)
                    hash_remove(ks->hash, &nr->he);
                /* readers may have seen nr through the hash: retire, don't free */
                record_set_dead(nr);
                *created = true;
                return TXKV_NOMEM;
            }
        }
        atomic_fetch_add_explicit(&ks->nrecords, 1, memory_order_relaxed);
        *recp = nr;
        *created = true;
        return 0;
    }
}

int ks_resolve(const struct kref *k, const struct version *v, bool exempt, struct record **recp,
               bool *made)
{
    struct txkv_ks *ks = k->ks;
    struct record_store *s = ks->store;
    bool slot = v && !v->tomb && v->vlen <= RECORD_INLINE_MAX;
    size_t icap = record_icap(v ? v->vlen : 0, slot);
    size_t bytes = record_bytes(k->klen, slot, icap);
    int rc;
    assert_outside_rcu_section(); /* mem_reserve may wait for a grace period */
    *made = false;
    /* Reserve for a record before we know whether we create one. */
    if ((rc = mem_reserve(&s->mem, bytes, exempt)))
        return rc;
    /* Created latched: nobody writes it before it is in every index. */
    struct record *nr = record_new(k->key, k->klen, slot, icap, LATCH_CREATOR);
    if (!nr) {
        mem_release(&s->mem, bytes);
        return TXKV_NOMEM;
    }
    rcu_read_enter();
    rc = ks_insert(ks, nr, k->hv, recp, made);
    rcu_read_leave();
    if (!*made) {
        mem_release(&s->mem, bytes);
        free(nr);
        return rc;
    }
    if (rc) { /* linked into the hash index and out again: retire it */
        record_retire(s, nr);
        *made = false;
        return rc;
    }
    /* In every index now: others may take its latch. */
    latch_release(nr);
    return 0;
}

void ks_for_each_record(struct txkv_ks *ks, void (*fn)(struct record *r, void *arg), void *arg)
{
    rcu_read_enter();
    if (ks->hash) {
        struct hash_iter it;
        for (struct hash_entry *e = hash_first(ks->hash, &it); e; e = hash_next(ks->hash, &it))
            fn(container_of_(e, struct record, he), arg);
    } else if (ks->tree) {
        struct btree_iter it;
        btree_iter_init(ks->tree, &it);
        for (int rc = btree_first(&it); rc == 0; rc = btree_next(&it))
            fn(it.val, arg);
        btree_iter_fini(&it);
    }
    rcu_read_leave();
}

/* Close: puts a record on the list to free (a record on the tombstone queue
 * too: the queue is dropped; a retired one is not in the indexes any more). */
static void collect_record(struct record *r, void *arg)
{
    struct record **list = arg;
    r->gc_next = *list;
    *list = r;
}

static void collect_entry(struct hash_entry *e, void *arg)
{
    collect_record(container_of_(e, struct record, he), arg);
}

/*
 * Frees every record in the indexes, at close: nobody else uses the
 * database any more, so no record is taken out of the B+tree one by one
 * (btree_destroy frees its nodes whole, without reading a record), and
 * the hash index's own unlinking walk at its destruction is the walk that
 * finds the records (a record in the tree is in the hash index too, or
 * retired).  A close of 1M keys did a B+tree removal per key and walked
 * the hash chains twice.
 *
 * A record may be freed only once nothing can still reach it, and at close
 * that includes liburcu's resize worker: it walks the hash chains in its
 * own thread, inside a read-side section, and may still be holding a
 * record.  Freeing records right after their removal (as this once did)
 * let the worker write into freed memory: kv-bench runs that open and
 * close hundreds of databases died in malloc ("corrupted double-linked
 * list") at a close.  So: collect while the hash index is destroyed (which
 * waits for the resize in flight), then free.
 */
void ks_set_free_records(struct ks_set *set)
{
    for (struct txkv_ks *ks = set->list; ks; ks = ks->next) {
        struct record *list = NULL;
        ks->tomb_queue = NULL; /* its records are all in the indexes */
        if (ks->hash)
            hash_destroy_each(ks->hash, collect_entry, &list);
        else
            ks_for_each_record(ks, collect_record, &list);
        ks->hash = NULL;
        while (list) {
            struct record *nx = list->gc_next;
            record_free_now(ks->store, list);
            list = nx;
        }
    }
}

void ks_queue_tombstone(struct txkv_ks *ks, struct record *r)
{
    struct record_store *s = ks->store;
    pthread_mutex_lock(&s->queue_mu);
    if (!(atomic_load_explicit(&r->flags, memory_order_relaxed) & REC_QUEUED)) {
        atomic_fetch_or_explicit(&r->flags, REC_QUEUED, memory_order_relaxed);
        r->gc_next = ks->tomb_queue;
        ks->tomb_queue = r;
    }
    pthread_mutex_unlock(&s->queue_mu);
}

struct record *ks_take_tombstones(struct txkv_ks *ks)
{
    struct record_store *s = ks->store;
    pthread_mutex_lock(&s->queue_mu);
    struct record *l = ks->tomb_queue;
    ks->tomb_queue = NULL;
    pthread_mutex_unlock(&s->queue_mu);
    return l;
}

void ks_requeue_tombstones(struct txkv_ks *ks, struct record *list)
{
    struct record_store *s = ks->store;
    pthread_mutex_lock(&s->queue_mu);
    while (list) {
        struct record *nx = list->gc_next;
        assert(atomic_load_explicit(&list->flags, memory_order_relaxed) & REC_QUEUED);
        list->gc_next = ks->tomb_queue;
        ks->tomb_queue = list;
        list = nx;
    }
    pthread_mutex_unlock(&s->queue_mu);
}

void ks_unqueue(struct txkv_ks *ks, struct record *r)
{
    pthread_mutex_lock(&ks->store->queue_mu);
    atomic_fetch_and_explicit(&r->flags, (uint8_t)~REC_QUEUED, memory_order_relaxed);
    pthread_mutex_unlock(&ks->store->queue_mu);
}
