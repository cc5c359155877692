/*
 * btree.h - a concurrent B+tree: byte-string keys in memcmp order -> void *.
 *
 * Readers take no lock and write no shared memory (optimistic lock coupling:
 * read a node's version, read the node, check the version again, restart on
 * a change).  Writers lock only the nodes they change.  Nodes are freed with
 * rcu_defer(), never while a reader may hold them.  See src/index/README.
 *
 * Keys are not copied: a key of up to 16 bytes is held whole in its leaf;
 * for a longer one the tree keeps its first bytes and a pointer to the
 * caller's key bytes.  The caller keeps those bytes valid and unchanged
 * while the key is in the tree and for one grace period after
 * btree_remove() (txkv points at the record's own key, and frees the record
 * through RCU).
 *
 * Concurrency contract:
 *  - btree_lookup, btree_insert, btree_remove, and btree_seek, btree_seek_le,
 *    btree_first, btree_last, btree_next, btree_prev must be called inside
 *    an RCU read-side section (rcu_read_enter()).  They never wait for a
 *    lock while holding one; readers write nothing shared.
 *  - btree_create / btree_destroy have no concurrent users; btree_destroy
 *    runs outside any read-side section.
 *  - btree_count, btree_mem, btree_iter_init, btree_iter_fini and
 *    btree_iter_unpin: any context.
 *  Debug builds (--enable-debug) assert the RCU side of each.
 */
#ifndef TXKV_INDEX_BTREE_H
#define TXKV_INDEX_BTREE_H

#include <stddef.h>
#include <stdint.h>

#include "base/rcu.h"

struct btree;

int btree_create(struct btree **tp); /* 0 or TXKV_NOMEM */
void btree_destroy(struct btree *t); /* frees the nodes, not the values */

/* The value stored under key, or NULL. */
void *btree_lookup(struct btree *t, const void *key, size_t klen);

/*
 * Inserts key -> val if key is absent: 0.  If key is present: TXKV_EXISTS and
 * *existing (if not NULL) is the value present.  TXKV_NOMEM if a node could not
 * be allocated (the tree is unchanged).  TXKV_INVALID for klen 0 or over
 * 65535, or a NULL val.
 */
int btree_insert(struct btree *t, const void *key, size_t klen, void *val, void **existing);

/*
 * Removes key if it maps to expect (or to anything when expect is NULL): 0,
 * else TXKV_NOTFOUND.
 */
int btree_remove(struct btree *t, const void *key, size_t klen, void *expect);

/* Number of keys (exact when quiescent). */
size_t btree_count(struct btree *t);
/* Bytes used by the tree's nodes. */
size_t btree_mem(struct btree *t);

/*
 * A position.  It keeps a private copy of its current key, so it stays usable
 * while others insert and remove around it and across read-side sections:
 * next/prev continue from the key it was on, whether or not that key is still
 * in the tree.  It also keeps a hint (the leaf and its version, the leaf's
 * parent and its version) that makes next/prev O(1) while the leaf is
 * unchanged, and lets them step into the neighbouring leaf (prefetched a few
 * entries before it is needed) without a descent while the parent is
 * unchanged.  The hint is only trusted within the read-side section that set
 * it, so call btree_iter_unpin() before leaving that section if the iterator
 * will be used again later.
 */
struct btree_iter {
    struct btree *t;
    const void *key; /* current key: it->kbuf, valid while positioned */
    size_t klen;
    void *val; /* current value */
    int valid; /* positioned on an entry */
    /* private */
    uint8_t *kbuf;
    size_t kcap;
    void *leaf;
    uint64_t leaf_version;
    int slot;
    void *parent; /* the leaf's parent as the descent met it, and its version */
    uint64_t parent_version;
    int pslot; /* the leaf's index among the parent's children */
};

void btree_iter_init(struct btree *t, struct btree_iter *it);
void btree_iter_fini(struct btree_iter *it); /* frees the key copy */

/*
 * Each returns 0 when positioned on an entry (it->key/klen/val set),
 * TXKV_NOTFOUND when there is none (it->valid = 0), TXKV_NOMEM if the key
 * copy cannot grow.
 */
int btree_seek(struct btree_iter *it, const void *key, size_t klen);    /* first key >= key */
int btree_seek_le(struct btree_iter *it, const void *key, size_t klen); /* last key <= key */
int btree_first(struct btree_iter *it);
int btree_last(struct btree_iter *it);
int btree_next(struct btree_iter *it);        /* first key > current key */
int btree_prev(struct btree_iter *it);        /* last key < current key */
void btree_iter_unpin(struct btree_iter *it); /* drop the leaf hint */

#endif /* TXKV_INDEX_BTREE_H */
