/*
 * keyspace.h - keyspaces: named maps of byte-string keys to records, each
 * with a hash index, a B+tree, or both, and the set of a database's
 * keyspaces.
 *
 * Layer: record.  A keyspace with a hash index uses it for point
 * operations and as the authority on whether a key has a record; the
 * B+tree follows it (keyspace.c says why no scan can miss a committed
 * version).  Both indexes point at the same record.
 */
#ifndef TXKV_RECORD_KEYSPACE_H
#define TXKV_RECORD_KEYSPACE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "index/btree.h"
#include "index/hash.h"
#include "record/record.h"

struct ks_set;

struct txkv_ks {
    struct ks_set *set; /* the database it belongs to */
    struct record_store *store;
    struct txkv_ks *next;
    char *name;
    unsigned flags;           /* TXKV_HASH | TXKV_ORDERED */
    struct hash_index *hash;  /* NULL if the keyspace has no hash index */
    struct btree *tree;       /* NULL if it has no B+tree */
    _Atomic int64_t nrecords; /* records in the indexes (approximate) */
    /* Records whose newest version is a tombstone (or that have none), for
     * the GC to take out of the indexes; linked through gc_next, under
     * store->queue_mu. */
    struct record *tomb_queue;
};

/* Every keyspace of a database.  The list is push-only and keyspaces are
 * freed only at close, so a reader may walk it from a snapshot of `list`
 * taken under mu and keep the pointers. */
struct ks_set {
    struct mutex mu;
    struct txkv_ks *list;
    struct txkv_ks *def; /* "default": the keyspace of a NULL txkv_ks */
    struct record_store *store;
    uint64_t seed; /* per database, mixed into each keyspace's hash seed */
};

/* Creates the set with its default keyspace; 0 or TXKV_NOMEM. */
int ks_set_init(struct ks_set *set, struct record_store *store, uint64_t seed);
/* Frees every record still in the indexes (records already retired are
 * out of them: the GC and record_store_fini free those) and drops the
 * tombstone queues; the hash indexes are destroyed on the way, after
 * their resize work is over.  The B+trees keep pointers to the freed
 * records until ks_set_fini frees their nodes without reading them.
 * Close only: no other users, no RCU callbacks pending that touch these
 * records. */
void ks_set_free_records(struct ks_set *set);
/* Frees the keyspaces and their indexes (after ks_set_free_records). */
void ks_set_fini(struct ks_set *set);

/* txkv_keyspace: finds or creates the keyspace name (see txkv.h). */
int ks_open(struct ks_set *set, const char *name, unsigned flags, struct txkv_ks **ksp);

/* The head of the list now; see struct ks_set for why it may be kept. */
struct txkv_ks *ks_first(struct ks_set *set);

/* ks, or the default keyspace for NULL. */
static inline struct txkv_ks *ks_or_default(struct ks_set *set, struct txkv_ks *ks)
{
    return ks ? ks : set->def;
}

/* A key of a keyspace with its hash (ks_hash): what a point operation
 * carries from layer to layer. */
struct kref {
    struct txkv_ks *ks;
    const void *key;
    size_t klen;
    uint64_t hv;
};

/* The key's hash: the hash index's own where there is one (one hash per
 * key, computed once per operation).  Pure; any context. */
uint64_t ks_hash(const struct txkv_ks *ks, const void *key, size_t klen);

/* The record for key, dead or alive, or NULL.  hv = ks_hash().  RCU read side. */
struct record *ks_lookup(struct txkv_ks *ks, const void *key, size_t klen, uint64_t hv);

/*
 * Finds the live record for key, or creates and links one; a record made
 * for v (a value to be written; NULL: a delete or a lock) gets an inline
 * slot sized for it.  The record
 * bytes are reserved against the memory limit first (exempt: reserve past
 * it, for deletes and locks) and released again if the record existed.
 * On return the record is in every index of ks and unlatched; *made says
 * whether this call created it.  0, TXKV_FULL or TXKV_NOMEM.  Outside any
 * RCU read-side section.
 */
int ks_resolve(const struct kref *k, const struct version *v, bool exempt, struct record **recp,
               bool *made);

/*
 * Calls fn(r, arg) for every record in ks's indexes (through the hash index
 * where there is one, else the B+tree), inside one RCU read-side section.
 * fn may take r out of the indexes.  fn must not block.
 */
void ks_for_each_record(struct txkv_ks *ks, void (*fn)(struct record *r, void *arg), void *arg);

/* Takes a dead record out of ks's indexes.  RCU read side. */
void ks_unlink(struct txkv_ks *ks, struct record *r);

/* Queues r (of ks) for the GC: its newest version is a tombstone, or it has
 * none.  Any thread; idempotent while r is queued. */
void ks_queue_tombstone(struct txkv_ks *ks, struct record *r);
/* Moves ks's tombstone queue to the caller (the GC). */
struct record *ks_take_tombstones(struct txkv_ks *ks);
/* Gives records back still queued; ks_unqueue: r leaves the queue for good. */
void ks_requeue_tombstones(struct txkv_ks *ks, struct record *list);
void ks_unqueue(struct txkv_ks *ks, struct record *r);

#endif /* TXKV_RECORD_KEYSPACE_H */
