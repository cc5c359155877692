/*
 * db.c - databases, keyspaces, records in the indexes, statistics.
 *
 * Owns: the txkv_db object, the keyspace list (ks_mu), the mapping of keys
 * to records in each keyspace's indexes.
 *
 * A keyspace has a hash index, a B+tree, or both; both point at the same
 * record.  When a keyspace has a hash index it is the authority on whether
 * a key has a record; the B+tree follows it.  A record is created already
 * latched by its creator and inserted into the hash index first, then the
 * B+tree; anyone who finds it through the hash index must take the latch
 * before writing it, and by then it is in the B+tree too.  So no committed
 * version exists on a record that a scan could miss.
 *
 * ks_lookup / ks_insert must be called inside an RCU read-side section.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "db.h"

static _Atomic uint64_t db_ids = 1; /* unique ids for thread-local hints only */

uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t db_hash(const struct txkv_ks *ks, const void *key, size_t klen)
{
    return XXH3_64bits_withSeed(key, klen, ks->seed);
}

struct txkv_ks *db_ks(struct txkv_db *db, struct txkv_ks *ks)
{
    return ks ? ks : db->ks_default;
}

static int ks_new(struct txkv_db *db, const char *name, unsigned flags, struct txkv_ks **out)
{
    struct txkv_ks *ks = calloc(1, sizeof *ks);
    int rc = TXKV_NOMEM;
    if (!ks)
        return TXKV_NOMEM;
    ks->db = db;
    ks->flags = flags;
    ks->name = strdup(name);
    /* A per-keyspace seed keeps one keyspace's collisions out of another's. */
    ks->seed = XXH3_64bits(name, strlen(name)) ^ (db->id * 0x9e3779b97f4a7c15ull);
    if (!ks->name)
        goto fail;
    if ((flags & TXKV_HASH) && (rc = hash_create(ks->seed, 1024, &ks->hash)) != 0)
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

int txkv_open(const txkv_options *o, txkv_db **dbp)
{
    txkv_options def;
    struct txkv_db *db;
    int rc;

    if (!dbp)
        return TXKV_INVALID;
    *dbp = NULL;
    if (!o) {
        txkv_options_init(&def);
        o = &def;
    }
    if (o->isolation < TXKV_READ_COMMITTED || o->isolation > TXKV_SERIALIZABLE ||
        (o->cc != TXKV_OPTIMISTIC && o->cc != TXKV_PESSIMISTIC))
        return TXKV_INVALID;
    if (posix_memalign((void **)&db, 64, sizeof *db) != 0)
        return TXKV_NOMEM;
    memset(db, 0, sizeof *db);
    db->opt = *o;
    db->id = atomic_fetch_add(&db_ids, 1);
    /* Timestamp 1 is "the empty database"; commits start at 2. */
    atomic_init(&db->next_ts, 1);
    atomic_init(&db->visible_ts, 1);
    atomic_init(&db->horizon, 1);
    pthread_mutex_init(&db->ks_mu, NULL);
    if ((rc = lock_init(db)) != 0) {
        lock_fini(db);
        free(db);
        return rc;
    }
    pthread_mutex_init(&db->gc_mu, NULL);
    pthread_cond_init(&db->gc_cv, NULL);
    rc = ks_new(db, "default", TXKV_HASH | TXKV_ORDERED, &db->ks_default);
    if (rc)
        goto fail;
    db->ks_list = db->ks_default;
    rc = gc_start(db);
    if (rc)
        goto fail;
    *dbp = db;
    return 0;
fail:
    txkv_close(db);
    return rc;
}

int txkv_keyspace(txkv_db *db, const char *name, unsigned flags, txkv_ks **ksp)
{
    if (!db || !name || !ksp || !*name || strlen(name) > 255 ||
        (flags & ~(unsigned)(TXKV_CREATE | TXKV_HASH | TXKV_ORDERED)))
        return TXKV_INVALID;
    unsigned idx = flags & (TXKV_HASH | TXKV_ORDERED);
    if (!idx)
        idx = TXKV_HASH | TXKV_ORDERED;
    int rc = 0;
    pthread_mutex_lock(&db->ks_mu);
    struct txkv_ks *ks;
    for (ks = db->ks_list; ks; ks = ks->next)
        if (strcmp(ks->name, name) == 0)
            break;
    if (ks) {
        /* Index flags given explicitly must match the existing keyspace. */
        if ((flags & (TXKV_HASH | TXKV_ORDERED)) && ks->flags != idx)
            rc = TXKV_EXISTS;
    } else if (!(flags & TXKV_CREATE)) {
        rc = TXKV_NOTFOUND;
    } else if ((rc = ks_new(db, name, idx, &ks)) == 0) {
        ks->next = db->ks_list;
        db->ks_list = ks;
    }
    pthread_mutex_unlock(&db->ks_mu);
    *ksp = rc ? NULL : ks;
    return rc;
}

/* The record for key, dead or alive, or NULL.  RCU read side. */
struct record *ks_lookup(struct txkv_ks *ks, const void *key, size_t klen, uint64_t hv)
{
    if (ks->hash) {
        struct hash_entry *e = hash_lookup(ks->hash, key, klen, hv);
        return e ? container_of_(e, struct record, he) : NULL;
    }
    return btree_lookup(ks->tree, key, klen);
}

static struct record *record_new(struct txkv_ks *ks, const void *key, size_t klen, uintptr_t owner)
{
    struct record *r = malloc(sizeof *r + klen);
    if (!r)
        return NULL;
    memset(r, 0, sizeof *r);
    memcpy(r->key, key, klen);
    r->klen = (uint32_t)klen;
    r->ks = ks;
    r->he.key = r->key;
    r->he.klen = (uint32_t)klen;
    atomic_init(&r->head, NULL);
    atomic_init(&r->latch, owner);
    atomic_init(&r->dead, 0);
    rcu_publish_hb(r);
    return r;
}

/* Frees a record and its chain at once: no reader can reach it. */
void record_free_now(struct txkv_db *db, struct record *r)
{
    struct version *v = atomic_load_explicit(&r->head, memory_order_relaxed);
    while (v) {
        struct version *nx = atomic_load_explicit(&v->next, memory_order_relaxed);
        mem_release(db, mem_version_bytes(v->vlen));
        atomic_fetch_sub_explicit(&db->nversions, 1, memory_order_relaxed);
        version_free_now(v);
        v = nx;
    }
    mem_release(db, mem_record_bytes(r->klen));
    free(r->ls);
    free(r);
}

/*
 * Finds the live record for key or creates one latched by owner.
 * *created tells which.  A dead record found in the B+tree (the GC is
 * between its hash and tree removals) is helped out of the tree first.
 * The caller has reserved memory for a record; on !*created it releases it.
 * RCU read side.
 */
int ks_insert(struct txkv_ks *ks, const void *key, size_t klen, uint64_t hv, uintptr_t owner,
              struct record **recp, bool *created)
{
    struct record *nr = record_new(ks, key, klen, owner);
    *created = false;
    if (!nr)
        return TXKV_NOMEM;
    for (;;) {
        struct record *r = ks_lookup(ks, key, klen, hv);
        if (r && !atomic_load_explicit(&r->dead, memory_order_acquire)) {
            free(nr);
            *recp = r;
            return 0;
        }
        if (r) {
            /* The GC is taking a dead record out; help it, then look again. */
            if (ks->hash)
                hash_remove(ks->hash, &r->he);
            if (ks->tree)
                btree_remove(ks->tree, r->key, r->klen, r);
            continue;
        }
        if (ks->hash && hash_insert(ks->hash, &nr->he, hv) != &nr->he)
            continue; /* lost a race: use the winner's record */
        if (ks->tree) {
            void *ex = NULL;
            int rc;
            while ((rc = btree_insert(ks->tree, nr->key, klen, nr, &ex)) == TXKV_EXISTS) {
                struct record *o = ex;
                if (!atomic_load_explicit(&o->dead, memory_order_acquire) && !ks->hash) {
                    free(nr); /* tree-only keyspace: the tree is the authority */
                    *recp = o;
                    return 0;
                }
                /* A dead record the GC has not taken out of the tree yet (with a
                 * hash index, the hash slot we hold is the authority). */
                btree_remove(ks->tree, key, klen, o);
            }
            if (rc == TXKV_NOMEM) {
                if (ks->hash)
                    hash_remove(ks->hash, &nr->he);
                /* readers may have seen nr through the hash: retire, don't free */
                atomic_store(&nr->dead, 1);
                gc_retire(ks->db, nr);
                return TXKV_NOMEM;
            }
        }
        atomic_fetch_add_explicit(&ks->nrecords, 1, memory_order_relaxed);
        *recp = nr;
        *created = true;
        return 0;
    }
}

static void free_ks_records(struct txkv_db *db, struct txkv_ks *ks)
{
    if (ks->hash) {
        struct hash_iter it;
        rcu_read_enter();
        for (struct hash_entry *e = hash_first(ks->hash, &it); e; e = hash_next(ks->hash, &it)) {
            struct record *r = container_of_(e, struct record, he);
            hash_remove(ks->hash, e);
            if (ks->tree)
                btree_remove(ks->tree, r->key, r->klen, r);
            if (!r->queued)
                record_free_now(db, r);
            else
                atomic_store(&r->dead, 1); /* freed from the queue by gc_close */
        }
        rcu_read_leave();
    } else if (ks->tree) {
        struct btree_iter it;
        btree_iter_init(ks->tree, &it);
        rcu_read_enter();
        for (int rc = btree_first(&it); rc == 0; rc = btree_next(&it)) {
            struct record *r = it.val;
            /* out of the tree before it is freed: the tree's keys point into records */
            btree_remove(ks->tree, r->key, r->klen, r);
            if (!r->queued)
                record_free_now(db, r);
            else
                atomic_store(&r->dead, 1);
        }
        rcu_read_leave();
        btree_iter_fini(&it);
    }
}

void txkv_close(txkv_db *db)
{
    if (!db)
        return;
    gc_stop(db);
    /* Open transactions are a caller bug; the contract lets us abort them. */
    for (struct txkv_txn *t = atomic_load(&db->txns); t; t = t->all_next)
        if (atomic_load(&t->in_use))
            txkv_abort(t);
    rcu_drain(); /* callbacks account into db: let them finish first */
    struct txkv_ks *ks = db->ks_list;
    while (ks) {
        struct txkv_ks *nx = ks->next;
        free_ks_records(db, ks);
        ks = nx;
    }
    gc_close(db); /* queued and retired records */
    rcu_drain();
    for (ks = db->ks_list; ks;) {
        struct txkv_ks *nx = ks->next;
        if (ks->hash)
            hash_destroy(ks->hash);
        if (ks->tree)
            btree_destroy(ks->tree);
        free(ks->name);
        free(ks);
        ks = nx;
    }
    if (!db->ks_list && db->ks_default) { /* open failed before linking it */
        if (db->ks_default->hash)
            hash_destroy(db->ks_default->hash);
        if (db->ks_default->tree)
            btree_destroy(db->ks_default->tree);
        free(db->ks_default->name);
        free(db->ks_default);
    }
    for (struct txkv_txn *t = atomic_load(&db->txns); t;) {
        struct txkv_txn *nx = t->all_next;
        txn_destroy(t);
        t = nx;
    }
    lock_fini(db);
    pthread_mutex_destroy(&db->ks_mu);
    pthread_mutex_destroy(&db->gc_mu);
    pthread_cond_destroy(&db->gc_cv);
    free(db);
}

void txkv_stats(txkv_db *db, struct txkv_stats *st)
{
    if (!st)
        return;
    memset(st, 0, sizeof *st);
    if (!db)
        return;
    uint64_t now = now_ns(), oldest = 0;
    for (struct txkv_txn *t = atomic_load_explicit(&db->txns, memory_order_acquire); t;
         t = t->all_next) {
        st->commits += atomic_load_explicit(&t->n_commits, memory_order_relaxed);
        st->aborts_conflict += atomic_load_explicit(&t->n_conflict, memory_order_relaxed);
        st->aborts_full += atomic_load_explicit(&t->n_full, memory_order_relaxed);
        st->aborts_user += atomic_load_explicit(&t->n_user, memory_order_relaxed);
        st->aborts_deadlock += atomic_load_explicit(&t->n_deadlock, memory_order_relaxed);
        st->aborts_timeout += atomic_load_explicit(&t->n_timeout, memory_order_relaxed);
        if (atomic_load_explicit(&t->pin, memory_order_acquire)) {
            uint64_t b = atomic_load_explicit(&t->begin_ns, memory_order_relaxed);
            st->active_txns++;
            if (b && now > b && now - b > oldest)
                oldest = now - b;
        }
    }
    st->oldest_snapshot_age_us = oldest / 1000;
    int64_t k = atomic_load_explicit(&db->nkeys, memory_order_relaxed);
    int64_t v = atomic_load_explicit(&db->nversions, memory_order_relaxed);
    int64_t b = atomic_load_explicit(&db->mem_used, memory_order_relaxed);
    st->keys = k > 0 ? (uint64_t)k : 0;
    st->versions = v > 0 ? (uint64_t)v : 0;
    st->bytes = b > 0 ? (uint64_t)b : 0;
    st->gc_freed = atomic_load_explicit(&db->gc_freed, memory_order_relaxed);
}
