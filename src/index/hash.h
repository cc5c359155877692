/*
 * hash.h - the hash index: key bytes -> entry, on liburcu's cds_lfht.
 *
 * The index does not own keys or entries.  A caller embeds a struct
 * hash_entry (16 bytes: the table's link and nothing else) in its own object
 * (txkv embeds it in the record, so a point read chases bucket -> record, not
 * bucket -> node -> record) and gives hash_create a function that finds an
 * entry's key bytes in that object; they must stay valid and unchanged for
 * as long as the entry is in the table plus one grace period.
 *
 * Concurrency contract (every function):
 *  - hash_lookup, hash_insert, hash_remove and the iterator must be called
 *    inside an RCU read-side section (rcu_read_enter()).  They never block.
 *  - hash_create / hash_destroy: no concurrent users.  hash_destroy and
 *    hash_maintain: outside any read-side section.  hash_key, hash_count,
 *    hash_mem: any context.  Debug builds assert the RCU side of each.
 *  - An entry taken out by hash_remove may still be seen by readers that
 *    entered their section before the removal; free it only after a grace
 *    period (rcu_defer()).
 *  - hash_insert publishes the entry with release semantics: a reader that
 *    finds it sees the fields the inserter wrote before the call.
 */
#ifndef TXKV_INDEX_HASH_H
#define TXKV_INDEX_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "base/rcu.h"

struct hash_index;

struct hash_entry {
    struct cds_lfht_node node; /* the table's link; the table owns it while linked */
};

/*
 * The owner's function from an entry to its key: returns the key bytes and
 * sets *klen (1..65535).  Called on entries a lookup, insert or remove
 * meets, inside the caller's read-side section, on any thread; it must only
 * read the owner's object (which may have just been linked by another
 * thread, or unlinked but not yet freed).
 */
typedef const uint8_t *(*hash_key_of_fn)(const struct hash_entry *e, size_t *klen);

/*
 * Creates an empty index whose hash is XXH3 seeded with seed and whose
 * entries' keys key_of finds; 0, TXKV_INVALID (hp or key_of NULL) or
 * TXKV_NOMEM.
 */
int hash_create(uint64_t seed, size_t initial_size, hash_key_of_fn key_of, struct hash_index **hp);
/* Frees the table (not the entries).  No concurrent users, no read-side section held. */
void hash_destroy(struct hash_index *h);
/* hash_destroy, calling fn(e, arg) on each entry still linked as it unlinks
 * it (a table walk of its own would be a second chain of cache misses).
 * fn must not free e: the table's resize work may still reach it until
 * this returns. */
void hash_destroy_each(struct hash_index *h, void (*fn)(struct hash_entry *e, void *arg),
                       void *arg);

/* XXH3-64 of the key with this index's seed.  Pure; any context. */
uint64_t hash_key(const struct hash_index *h, const void *key, size_t klen);

/* The entry for key, or NULL.  hv = hash_key(h, key, klen).  RCU read side. */
struct hash_entry *hash_lookup(struct hash_index *h, const void *key, size_t klen, uint64_t hv);

/*
 * Starts loading the cache lines a hash_lookup of hv will read first (the
 * bucket), without waiting for them; a batch of lookups calls it for every
 * key before it looks any up, so their misses overlap.  Only a hint: it
 * changes nothing and never faults.  RCU read side (a resize may free the
 * bucket array it reads).
 */
void hash_prefetch(struct hash_index *h, uint64_t hv);

/*
 * Inserts e (whose key key_of finds) if no entry with an equal key is
 * present.  Returns e when it was inserted, or the entry already present (e
 * is then not linked).  RCU read side.
 */
struct hash_entry *hash_insert(struct hash_index *h, struct hash_entry *e, uint64_t hv);

/* An entry for hash_load, with its hash (hash_key of its key). */
struct hash_load_item {
    uint64_t hv;
    struct hash_entry *e;
};

/*
 * Links n entries at once into a table that has no other user yet (a
 * database being recovered, before it is handed out): sizes the table for
 * count + n entries (count: the owner's count of those already linked),
 * sorts items by bucket and links them in that order, so the bucket array
 * and the list are walked front to back instead of one chain of dependent
 * misses per entry.  items is reordered.  Returns how many entries had a key
 * already linked (or twice in items); those were not linked and are moved to
 * items[0 .. returned).  The sort uses tmp, n more items of scratch; with
 * tmp NULL the entries are linked unsorted.  When tmp was given and none
 * was a duplicate, items is left in increasing order of hv & *order (the
 * bucket mask), which a caller may use to find them again.  No concurrent
 * users; outside any read-side section (it enters its own).
 */
size_t hash_load(struct hash_index *h, struct hash_load_item *items, struct hash_load_item *tmp,
                 size_t n, size_t count, uint64_t *order);

/* Unlinks e; 0, or TXKV_NOTFOUND if it was already removed.  RCU read side. */
int hash_remove(struct hash_index *h, struct hash_entry *e);

/* Number of entries (approximate while writers run, exact when quiescent).  O(n). */
size_t hash_count(struct hash_index *h);

/* Iteration in table order; RCU read side for the whole walk. */
struct hash_iter {
    struct cds_lfht_iter it;
};
struct hash_entry *hash_first(struct hash_index *h, struct hash_iter *it);
struct hash_entry *hash_next(struct hash_index *h, struct hash_iter *it);

/* Bytes the index itself uses beyond the entries (bucket arrays).  O(1). */
size_t hash_mem(struct hash_index *h);

/* The shape of the table's chains, for benchmarks and tests (hash_stats). */
struct hash_stats {
    size_t buckets;       /* bucket nodes walked: the table's bucket count, give or take the empty
                           * buckets before the first entry */
    size_t entries;       /* entries linked */
    size_t max_chain;     /* the longest bucket's entry count */
    double nodes_per_hit; /* entries a lookup hit visits on average, itself included (1 = ideal) */
};

/*
 * Walks the whole split-ordered list, bucket nodes included: O(entries +
 * buckets).  Exact when no writer runs, approximate otherwise.  Any thread,
 * inside or outside a read-side section (it enters its own).
 */
void hash_stats(struct hash_index *h, struct hash_stats *st);

/*
 * Sizes the table for n entries, n being the owner's count of them (the
 * table keeps none): grows it when the load passes 1, shrinks it when the
 * load falls under 1/8, else does nothing, in O(1).  A resize is O(n) and
 * never blocks readers or writers.  The table never resizes by itself: call
 * this whenever the count may have changed much (txkv's GC thread: every
 * round).  Outside any read-side section; any thread.
 */
void hash_maintain(struct hash_index *h, size_t n);

#endif /* TXKV_INDEX_HASH_H */
