/*
 * hash.c - the hash index: key bytes -> struct hash_entry, on liburcu's
 * lock-free resizable hash table (cds_lfht: Shalev & Shavit's split-ordered
 * list, with Michael's lock-free list deletion; see urcu/rculfhash.h).
 *
 * What it owns: the cds_lfht (its bucket arrays) and the seed.  It does not
 * own entries or key bytes: the caller embeds struct hash_entry (the 16-byte
 * cds_lfht_node, nothing else) in its record and tells hash_create where a
 * record's key is (key_of), so a point read is bucket -> record with no node
 * between and the record carries no key pointer or length for the index.
 *
 * Invariants (numbered as in src/index/README):
 *  H1. At most one linked entry per key (klen + bytes): every insertion goes
 *      through cds_lfht_add_unique, whose uniqueness guarantee (rculfhash.c,
 *      guarantee F) holds against concurrent add_unique and del.
 *  H2. An entry is linked under hv = XXH3_64(key, seed), the full 64 bits;
 *      the table orders its list by the bit-reversed hash, so equal hashes
 *      are adjacent and the match callback only runs on hash-equal nodes.
 *  H3. The table never frees an entry: exactly one of several concurrent
 *      hash_remove calls on an entry gets 0, and only its caller frees the
 *      entry, after a grace period.
 *
 * RCU contract (see hash.h for the per-function list):
 *  - lookup, insert, remove and iteration run inside a read-side section
 *    the caller holds (rcu_read_enter); the table needs it to walk nodes that
 *    concurrent removers may be unlinking, and we leave it to the caller so a
 *    transaction can chain a lookup into a use of the record it found.
 *  - A removed entry stays readable until a grace period has passed; the
 *    caller frees it with rcu_defer().  Nothing here ever frees an entry.
 *  - hash_create / hash_destroy have no concurrent users.  hash_destroy and
 *    hash_maintain must not run inside a read-side section: they wait for
 *    the table's resize work, and a shrink waits for a grace period, which
 *    would wait for us.  Nor in a call_rcu callback, as liburcu asks.
 *
 * Resizing is ours, by hash_maintain(h, n) with the owner's count n; the
 * table is created without CDS_LFHT_AUTO_RESIZE and CDS_LFHT_ACCOUNTING.
 * With them, liburcu resized large tables only when its split counters made
 * the count a power of two and the load had reached 8 (rculfhash.c,
 * ht_count_add: count >> CHAIN_LEN_RESIZE_THRESHOLD >= size), back to 1, so
 * a lookup hit walked 1.5 to 5 entries, each a dependent cache miss
 * (index-bench's shape report showed a load of 1.9 and 1.95 entries per hit
 * at 1M keys); and liburcu 0.13 has a race that could disarm automatic
 * resizing for good (__cds_lfht_resize_lazy_launch() queues the resize and
 * only then sets resize_initiated; hash-concurrent caught a 16-bucket table
 * holding 14,000 entries).  cds_lfht_resize() resizes in the calling thread
 * and is lock-free for readers and writers, so explicit resizing keeps the
 * load in (1/2, 1] while the table grows, with no race to work around.
 *
 * ThreadSanitizer: liburcu is not instrumented, so we state its edges with
 * rcu.h's annotations: rcu_publish_hb(e) before linking, rcu_observe_hb(e)
 * on every node we read fields of (inside the match callback too, since it
 * reads candidate nodes during the walk).  Grace periods are covered by
 * rcu_read_leave / RCU_CALLBACK_ENTER in rcu.h.
 */
#include "config.h"

#include <assert.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "base/util.h"
#include "index/hash.h"
#include "txkv.h"

struct hash_index {
    struct cds_lfht *ht;
    hash_key_of_fn key_of; /* the owner's: entry -> key bytes */
    uint64_t seed;
    unsigned long min_buckets;     /* the table never shrinks below this */
    _Atomic unsigned long buckets; /* the table's size: written under resize_mu */
    struct mutex resize_mu;        /* serialises hash_maintain's decisions */
};

/* What the match callback compares a candidate node against. */
struct hash_probe {
    const void *key;
    size_t klen;
    hash_key_of_fn key_of;
};

/* Initial sizes are capped here (256 MiB of buckets): hash_maintain grows the table anyway. */
#define HASH_MAX_INITIAL (1UL << 24)

/*
 * The sizing policy (hash_maintain).  A lookup hit walks its bucket's
 * entries up to its own, each a dependent cache miss: 1 + load/2 entries on
 * average, so the load is what costs.  The table grows when the load passes
 * HASH_LOAD_GROW, to the smallest power of two at which the load is at most
 * HASH_LOAD_GROW again (so between HASH_LOAD_GROW / 2 and HASH_LOAD_GROW), and
 * shrinks to that size when the load falls under HASH_LOAD_GROW / 8
 * (hysteresis: an add/remove churn around one size never resizes back and
 * forth).  Loads are in 1/8ths.
 */
#ifndef HASH_LOAD_GROW_EIGHTHS   /* -D for experiments */
#define HASH_LOAD_GROW_EIGHTHS 8 /* grow past load 1: load stays in (1/2, 1] while growing */
#endif

/* Each bucket is one struct cds_lfht_node in liburcu's bucket arrays. */
#define HASH_BUCKET_BYTES sizeof(struct cds_lfht_node)

#define hash_entry_of(n) caa_container_of((n), struct hash_entry, node)

/* Debug builds (--enable-debug) check the RCU side of each contract with
 * base/rcu.h's assert_in_rcu_section; release builds compile them away. */

static unsigned long round_up_pow2(size_t n)
{
    unsigned long v = 1;
    while (v < n && v < HASH_MAX_INITIAL)
        v <<= 1;
    return v;
}

/*
 * Called by cds_lfht on each node whose hash equals the probe's; the node
 * may be one another thread has just linked, so observe its publication
 * before reading its fields.
 */
static int hash_match(struct cds_lfht_node *node, const void *arg)
{
    const struct hash_entry *e = hash_entry_of(node);
    const struct hash_probe *p = arg;
    size_t klen;
    const uint8_t *key;

    rcu_observe_hb(e);
    key = p->key_of(e, &klen);
    return klen == p->klen && memcmp(key, p->key, klen) == 0;
}

/*
 * hash_create: a new empty index, hashing with XXH3-64 seeded with seed.
 * initial_size is a hint (rounded up to a power of two, at most 2^24) and
 * also the floor the table shrinks back to.  key_of finds an entry's key in
 * the owner's object.  No RCU section needed; the index has no other user
 * until the caller publishes it.  Returns 0, TXKV_INVALID (hp or key_of
 * NULL) or TXKV_NOMEM.
 */
int hash_create(uint64_t seed, size_t initial_size, hash_key_of_fn key_of, struct hash_index **hp)
{
    struct hash_index *h;
    unsigned long size;

    if (!hp)
        return TXKV_INVALID;
    *hp = NULL;
    if (!key_of)
        return TXKV_INVALID;
    h = calloc(1, sizeof *h);
    if (!h)
        return TXKV_NOMEM;
    size = round_up_pow2(initial_size);
    /* No AUTO_RESIZE, no ACCOUNTING: only hash_maintain resizes (see there). */
    h->ht = cds_lfht_new_flavor(size, size, 0, 0, TXKV_RCU_FLAVOR, NULL);
    if (!h->ht) {
        free(h);
        return TXKV_NOMEM;
    }
    h->seed = seed;
    h->key_of = key_of;
    h->min_buckets = size;
    atomic_init(&h->buckets, size);
    mutex_init(&h->resize_mu);
    *hp = h;
    return 0;
}

/*
 * hash_destroy: frees the table, not the entries.  Entries still linked are
 * unlinked first (cds_lfht_destroy refuses a non-empty table); they must
 * therefore still be readable when this is called, and the caller frees them
 * afterwards.  No concurrent users, no read-side section held by the caller,
 * not from a call_rcu callback (see the file comment).  NULL is ignored.
 */
void hash_destroy(struct hash_index *h)
{
    hash_destroy_each(h, NULL, NULL);
}

void hash_destroy_each(struct hash_index *h, void (*fn)(struct hash_entry *e, void *arg), void *arg)
{
    struct cds_lfht_iter it;
    struct cds_lfht_node *node;
    int rc;

    if (!h)
        return;
    assert_outside_rcu_section();
    /* No other user, but the table's API still wants a section for walks. */
    rcu_read_enter();
    for (cds_lfht_first(h->ht, &it); (node = cds_lfht_iter_get_node(&it));
         cds_lfht_next(h->ht, &it)) {
        (void)cds_lfht_del(h->ht, node); /* deleting the current node is allowed */
        if (fn)
            fn(hash_entry_of(node), arg);
    }
    rcu_read_leave();
    rc = cds_lfht_destroy(h->ht, NULL);
    assert(rc == 0);
    (void)rc;
    mutex_destroy(&h->resize_mu);
    free(h);
}

/* hash_key: XXH3-64 of key under this index's seed.  Pure: any thread, any context. */
uint64_t hash_key(const struct hash_index *h, const void *key, size_t klen)
{
    return XXH3_64bits_withSeed(key, klen, h->seed);
}

/*
 * hash_lookup: the entry whose key equals key[0..klen), or NULL.  Caller
 * holds a read-side section and keeps it for as long as it uses the entry;
 * hv is hash_key(h, key, klen) (the table itself only needs a key to come
 * with the same hv on every call; tests use that to force collisions).
 * Never blocks.  Sees every insertion that completed before it started
 * (rculfhash guarantee A.1).
 */
struct hash_entry *hash_lookup(struct hash_index *h, const void *key, size_t klen, uint64_t hv)
{
    struct hash_probe p = {key, klen, h->key_of};
    struct cds_lfht_iter it;
    struct cds_lfht_node *node;
    struct hash_entry *e;

    assert_in_rcu_section();
    cds_lfht_lookup(h->ht, (unsigned long)hv, hash_match, &p, &it);
    node = cds_lfht_iter_get_node(&it);
    if (!node)
        return NULL;
    e = hash_entry_of(node);
    rcu_observe_hb(e);
    return e;
}

/*
 * hash_prefetch: for now it does nothing.  cds_lfht keeps its bucket
 * arrays private (struct cds_lfht is opaque outside rculfhash.c), so there
 * is no bucket address to prefetch without reaching into liburcu's
 * internals.  A hand-written table of tagged buckets was measured at only
 * 1.2-1.4x cds_lfht's lookups (src/index/README), so cds_lfht stayed; a
 * table that replaces it fills this in (prefetch the bucket line of hv).
 * Its callers (src/txn/getmany.c) already call it where the bucket misses
 * would overlap.
 */
void hash_prefetch(struct hash_index *h, uint64_t hv)
{
    assert_in_rcu_section();
    (void)h;
    (void)hv;
}

/*
 * hash_insert: links e unless an entry with an equal key is linked.  Returns
 * e if it was linked, else the entry present (e is untouched by the table
 * and may be freed at once, no grace period needed).  Caller holds a
 * read-side section; key_of(e) gives e's key and hv = hash_key(h, key,
 * klen) of it.  Everything the caller wrote to e's record before the call is
 * visible to readers that find e (cds_lfht_add_unique has a full barrier
 * before its linking cmpxchg).  Lock-free; never blocks.
 */
struct hash_entry *hash_insert(struct hash_index *h, struct hash_entry *e, uint64_t hv)
{
    struct hash_probe p = {.key_of = h->key_of};
    struct cds_lfht_node *node;
    struct hash_entry *found;

    assert_in_rcu_section();
    p.key = h->key_of(e, &p.klen);
    assert(p.key && p.klen >= 1 && p.klen <= TXKV_MAX_KEY);
    cds_lfht_node_init(&e->node);
    rcu_publish_hb(e);
    node = cds_lfht_add_unique(h->ht, (unsigned long)hv, hash_match, &p, &e->node);
    if (node == &e->node)
        return e;
    found = hash_entry_of(node);
    rcu_observe_hb(found);
    return found;
}

/*
 * hash_load: see hash.h.  Why bucket order: a lookup, and the walk an
 * insert makes to find its place, start at bucket hv & (size - 1) in
 * liburcu's bucket array (16 bytes a bucket) and end at the next bucket's
 * node; in random order each of them is a cache miss, and so is every
 * entry met on the way.  In bucket order the array is read front to back
 * (the hardware prefetcher follows), the entries met are the ones just
 * linked, and the only random access left is the new entry itself, which
 * is prefetched a few items ahead.  The order of entries within a bucket
 * does not matter: cds_lfht_add_unique puts each at its place in the
 * split-ordered list whatever the order of insertion, so the table is the
 * one n hash_insert calls would build (H1, H2 hold as for hash_insert).
 */
#define LOAD_RADIX_BITS 11
#define LOAD_PREFETCH   8

size_t hash_load(struct hash_index *h, struct hash_load_item *items, struct hash_load_item *tmp,
                 size_t n, size_t count, uint64_t *order)
{
    assert_outside_rcu_section();
    if (!n)
        return 0;
    hash_maintain(h, count + n);
    unsigned long mask = atomic_load_explicit(&h->buckets, memory_order_relaxed) - 1;
    *order = mask;
    if (tmp && n > 1) { /* LSD radix sort on the bucket number, LOAD_RADIX_BITS at a time */
        struct hash_load_item *src = items, *dst = tmp;
        for (unsigned shift = 0; (mask >> shift) != 0; shift += LOAD_RADIX_BITS) {
            size_t cnt[1u << LOAD_RADIX_BITS] = {0};
            for (size_t i = 0; i < n; i++)
                cnt[((src[i].hv & mask) >> shift) & ((1u << LOAD_RADIX_BITS) - 1)]++;
            size_t sum = 0;
            for (size_t d = 0; d < (1u << LOAD_RADIX_BITS); d++) {
                size_t c = cnt[d];
                cnt[d] = sum;
                sum += c;
            }
            for (size_t i = 0; i < n; i++)
                dst[cnt[((src[i].hv & mask) >> shift) & ((1u << LOAD_RADIX_BITS) - 1)]++] = src[i];
            struct hash_load_item *t = src;
            src = dst;
            dst = t;
        }
        if (src != items)
            memcpy(items, src, n * sizeof *items);
    }
    size_t ndup = 0;
    rcu_read_enter();
    for (size_t i = 0; i < n; i++) {
        if (i + LOAD_PREFETCH < n)
            __builtin_prefetch(items[i + LOAD_PREFETCH].e, 1);
        struct hash_load_item it = items[i];
        if (hash_insert(h, it.e, it.hv) != it.e) { /* to the front, a linked one here */
            items[i] = items[ndup];
            items[ndup++] = it;
        }
    }
    rcu_read_leave();
    return ndup;
}

/*
 * hash_remove: unlinks e, which hash_insert linked into h earlier and which
 * has not been freed.  Returns 0, or TXKV_NOTFOUND if e was already unlinked
 * (exactly one of several concurrent removers of e gets 0, and only it may
 * free e).  Caller holds a read-side section; readers that entered theirs
 * before the removal may still see e, so free it with rcu_defer().
 */
int hash_remove(struct hash_index *h, struct hash_entry *e)
{
    assert_in_rcu_section();
    return cds_lfht_del(h->ht, &e->node) == 0 ? 0 : TXKV_NOTFOUND;
}

/*
 * hash_count: number of linked entries, by walking the table: O(n), so keep
 * it off hot paths.  Exact when no writer runs; with concurrent writers, a
 * count between the sizes at the start and the end of the walk.  Any thread,
 * inside or outside a read-side section (it enters its own, which nests).
 */
size_t hash_count(struct hash_index *h)
{
    long before, after;
    unsigned long count;

    rcu_read_enter();
    cds_lfht_count_nodes(h->ht, &before, &count, &after);
    rcu_read_leave();
    return count;
}

/* The entry the iterator is on, or NULL at the end. */
static struct hash_entry *iter_entry(struct hash_iter *it)
{
    struct cds_lfht_node *node = cds_lfht_iter_get_node(&it->it);
    if (!node)
        return NULL;
    struct hash_entry *e = hash_entry_of(node);
    rcu_observe_hb(e);
    return e;
}

/*
 * hash_first / hash_next: iteration in table (hash) order.  The caller holds
 * one read-side section for the whole walk, from hash_first to the last
 * hash_next.  An entry linked for the whole walk is returned exactly once;
 * one inserted or removed during the walk may or may not be.  Removing the
 * current entry (or any other) during the walk is allowed.  NULL at the end.
 */
struct hash_entry *hash_first(struct hash_index *h, struct hash_iter *it)
{
    assert_in_rcu_section();
    cds_lfht_first(h->ht, &it->it);
    return iter_entry(it);
}

struct hash_entry *hash_next(struct hash_index *h, struct hash_iter *it)
{
    assert_in_rcu_section();
    cds_lfht_next(h->ht, &it->it);
    return iter_entry(it);
}

/*
 * hash_maintain: sizes the table for n entries, the owner's count (the
 * table keeps none: liburcu's split counters cost every insert and remove an
 * atomic add, and resize only when the count crosses a power of two, which
 * let the load swing between 1 and 8).  Grows when n passes the table's
 * size times HASH_LOAD_GROW, to the smallest power of two that brings the
 * load back under it; shrinks when the load falls under an eighth of that,
 * to the size a grow would pick; never below min_buckets.  O(1) when the size
 * is right, so the owner may call it as often as it likes (txkv's GC thread:
 * every round); a resize is O(n) and lock-free for readers and writers,
 * which keep using the table meanwhile.  Any thread, outside any read-side
 * section (a shrink waits for grace periods); concurrent calls serialise.
 */
void hash_maintain(struct hash_index *h, size_t n)
{
    assert_outside_rcu_section();
    unsigned long cur = atomic_load_explicit(&h->buckets, memory_order_relaxed);
    /* load = n / cur; compare in eighths to stay in integers */
    if (n * 8 <= (size_t)cur * HASH_LOAD_GROW_EIGHTHS &&
        (n * 64 >= (size_t)cur * HASH_LOAD_GROW_EIGHTHS || cur <= h->min_buckets))
        return;
    mutex_lock(&h->resize_mu);
    unsigned long target = h->min_buckets;
    while ((size_t)target * HASH_LOAD_GROW_EIGHTHS < n * 8 && target < (1UL << 62))
        target <<= 1;
    if (target != atomic_load_explicit(&h->buckets, memory_order_relaxed)) {
        rcu_thread_ensure(); /* cds_lfht_resize wants a registered thread */
        cds_lfht_resize(h->ht, target);
        atomic_store_explicit(&h->buckets, target, memory_order_relaxed);
    }
    mutex_unlock(&h->resize_mu);
}

/*
 * hash_mem: the bytes of the table's bucket arrays (one struct
 * cds_lfht_node per bucket; entries are the caller's and not counted) and
 * of this struct.  O(1).  Any thread, any context.
 */
size_t hash_mem(struct hash_index *h)
{
    return atomic_load_explicit(&h->buckets, memory_order_relaxed) * HASH_BUCKET_BYTES + sizeof *h;
}

/*
 * hash_stats: the table's chains, by walking liburcu's list raw (its node
 * layout is public, its flag bits are not: rculfhash.c marks a node's own
 * next pointer with REMOVED (bit 0) when the node is logically deleted and
 * with BUCKET (bit 1) when the node is a bucket's dummy node; bits 0..2 are
 * flags).  A lookup of hash hv starts at bucket hv & (size - 1) and visits
 * that bucket's entries in list order up to its target, so a bucket holding
 * c entries costs 1 + 2 + ... + c visits over its c hits.  The walk starts at
 * the first entry, so empty buckets before it are not counted.
 */
#define LFHT_REMOVED 1UL
#define LFHT_BUCKET  2UL
#define LFHT_FLAGS   7UL

void hash_stats(struct hash_index *h, struct hash_stats *st)
{
    struct cds_lfht_iter it;
    struct cds_lfht_node *node;
    size_t chain = 0;
    double visits = 0;

    memset(st, 0, sizeof *st);
    rcu_read_enter();
    cds_lfht_first(h->ht, &it);
    node = cds_lfht_iter_get_node(&it);
    st->buckets = 1; /* the first entry's bucket */
    while (node) {
        uintptr_t next = (uintptr_t)rcu_dereference(node->next);
        if (next & LFHT_BUCKET) {
            /* node is a bucket's dummy: the chain before it is complete */
            visits += (double)chain * (double)(chain + 1) / 2;
            st->entries += chain;
            st->max_chain = chain > st->max_chain ? chain : st->max_chain;
            chain = 0;
            st->buckets++;
        } else if (!(next & LFHT_REMOVED)) {
            chain++;
        }
        node = (struct cds_lfht_node *)(next & ~LFHT_FLAGS);
    }
    rcu_read_leave();
    visits += (double)chain * (double)(chain + 1) / 2;
    st->entries += chain;
    st->max_chain = chain > st->max_chain ? chain : st->max_chain;
    st->nodes_per_hit = st->entries ? visits / (double)st->entries : 0;
}
