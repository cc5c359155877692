/*
 * btree.c - the concurrent B+tree: byte-string keys in memcmp order -> void *.
 *
 * Owns: the tree's nodes and the separator keys of its inner nodes.  It does
 * not own the keys of its entries nor the values.  src/index/README has the
 * design in full; this is the summary the code relies on.
 *
 * Algorithm: optimistic lock coupling (V. Leis, F. Scheibner, A. Kemper,
 * T. Neumann, "The ART of practical synchronization", DaMoN 2016) on a
 * B+tree.  Every node has a 64-bit version word: bit 0 obsolete, bit 1
 * locked, the rest a counter that every write-unlock advances.
 *  - Readers take no lock and store nothing shared: read a node's version
 *    (waiting while it is locked), read the node, check the version again;
 *    any change restarts the operation from the root.  A pointer read from a
 *    node (a child, a long key's bytes) is followed only after the node's
 *    version has been re-checked, so it is one the node really held.
 *  - Lock coupling: after reading a child's version the reader re-checks the
 *    parent's.  A split locks the parent before it changes the child, so a
 *    reader that arrives at a half of a split node always notices.
 *  - Writers lock only the nodes they change, by upgrading the version they
 *    read to a lock with one compare-and-swap (failure: restart).  Inserts
 *    split full inner nodes on the way down (so a child's split always finds
 *    room in its parent) and split a full leaf, then restart.  Splits are in
 *    place: the left half keeps its node, the right half moves to a new one.
 *    Every split goes through one prologue (split_lock: allocate, then lock
 *    parent and node) and one epilogue (split_publish: link the new node
 *    into the parent or under a new root, unlock).
 *  - No merges.  A leaf that becomes empty is unlinked together with every
 *    ancestor left without children; a root left with one child is replaced
 *    by that child.  Underfull nodes otherwise stay (README: why).
 *
 * Keys in nodes: each entry holds the key's length, its first 8 bytes as a
 * big-endian word (so one integer comparison orders most pairs), and one
 * more word: bytes 8..15 the same way when the key has at most 16 bytes --
 * the whole key is then in the node and its bytes are never read again -- or
 * else a pointer to the bytes (the caller's, in leaves; a copy the tree owns,
 * in inner nodes).  Separators are the shortest keys that separate two
 * leaves (suffix truncation), so they are nearly always inline.
 *
 * Invariants (of each node at any version a reader validated; numbered as
 * in src/index/README, and cited by number below):
 *  B1. In an inner node with separators s[0..n) and children c[0..n], every
 *      key of c[i] lies in [s[i-1], s[i]); s is strictly ascending; so are a
 *      leaf's keys.
 *  B2. A node's key range shrinks only through a change of that node's own
 *      version (its split, or its removal, which marks it obsolete); it may
 *      grow when a sibling is removed.  So "this node covers k at the
 *      version I validated" stays true while that version is unchanged.
 *  B3. t->root changes only under the lock of the node that is the root at
 *      that moment (a root split or a root collapse).
 *  B4. Each out-of-line separator is referenced by exactly one live slot;
 *      one that moves up in a split changes owner, not address.
 *  B5. A node, and an out-of-line separator, is freed only through
 *      rcu_defer() once unreachable and (a node) marked obsolete; a caller's
 *      key bytes are read only while the key is in the tree or in the grace
 *      period after its removal.
 *  B6. Keys only ever move rightwards, into a new right sibling.
 * Debug builds assert the preconditions each function states (node locked,
 * inside a read-side section, room in the node); see assert_locked.
 *
 * Memory ordering: version loads that start a read are acquire and pair with
 * the release of write_unlock*; the re-check is an acquire fence then a
 * relaxed load, pairing with the release fence that upgrade() issues after
 * taking the lock (the seqlock pattern, H.-J. Boehm, "Can seqlocks get along
 * with programming language memory models?", MSPC 2012).  Node fields that
 * readers race with are read and written with relaxed atomics, so TSan sees
 * no data race.  TSan does not model fences and needs none here: a read that
 * validates read its first version after the last writer's unlock, and that
 * acquire/release pair is the happens-before edge TSan tracks.
 *
 * Concurrency contract: see btree.h.  Lookups, inserts, removes and the
 * iterators' positioning calls run inside an RCU read-side section; create
 * and destroy have no concurrent users; count, mem and the iterators'
 * init/fini/unpin run in any context.
 */
#include "config.h"

#include <assert.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "index/btree.h"
#include "txkv.h"

/* Entries per leaf and separators per inner node: 8 cache lines of prefixes. */
#define BT_LEAF_CAP  64
#define BT_INNER_CAP 64
/* Deeper than any tree can grow: a level exists only above a full node. */
#define BT_MAX_HEIGHT 32
#define BT_MAX_KEY    65535
/* Keys up to this long live entirely in the node. */
#define BT_INLINE 16
/* How far ahead an iterator prefetches long keys' bytes it will copy. */
#define BT_ITER_PREFETCH 12
/* An iterator prefetches the next leaf when this many entries of its leaf are left. */
#define BT_ITER_SIBLING 16

#define BT_OBSOLETE 1u
#define BT_LOCKED   2u

#define LD(x)    __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define ST(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

/*
 * TSan does not model fences and GCC warns (-Wtsan) when it meets one; TSan
 * needs none here (see the file comment), so keep the fence for the real
 * memory model and silence the warning in TSan builds only.
 */
#if defined(TXKV_TSAN) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
#define BT_FENCE(order)                                                                            \
    do {                                                                                           \
        _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wtsan\"")                \
            __atomic_thread_fence(order);                                                          \
        _Pragma("GCC diagnostic pop")                                                              \
    } while (0)
#else
#define BT_FENCE(order) __atomic_thread_fence(order)
#endif

/*
 * Contract checks (as SQLite's assert(holds_mutex(...))): plain
 * asserts, so a debug build (--enable-debug) checks them and a release build
 * (-DNDEBUG) compiles them away.  A node lock records no owner: "locked"
 * means locked by someone, and the caller's own upgrade makes it us.
 */
#define assert_locked(n) assert(is_locked(n))

/* The header every node starts with; one cache line, so the arrays are aligned. */
struct bt_node {
    uint64_t version;    /* the OLC word, see the file comment */
    uint16_t count;      /* leaf: entries; inner: separators (children = count + 1) */
    uint8_t level;       /* 0 for leaves; set at allocation, never changed */
    struct rcu_head rcu; /* queued once the node is unlinked */
    uint8_t *dead_sep;   /* an out-of-line separator unlinked with this node */
} __attribute__((aligned(64)));

struct bt_slot {
    uint64_t kx; /* key bytes 8..15 (key <= 16 bytes) or a pointer to the caller's bytes */
    void *val;
};

/* Separate arrays, so that a binary search walks dense prefixes only. */
struct bt_leaf {
    struct bt_node h;
    uint64_t pfx[BT_LEAF_CAP]; /* key bytes 0..7, big-endian, zero-padded */
    uint16_t klen[BT_LEAF_CAP];
    struct bt_slot slot[BT_LEAF_CAP];
};

struct bt_inner {
    struct bt_node h;
    uint64_t pfx[BT_INNER_CAP];
    uint16_t klen[BT_INNER_CAP];
    uint64_t kx[BT_INNER_CAP]; /* as bt_slot.kx; out-of-line bytes are owned */
    struct bt_node *child[BT_INNER_CAP + 1];
};

#define BT_LEAF_SIZE  ((sizeof(struct bt_leaf) + 63) & ~(size_t)63)
#define BT_INNER_SIZE ((sizeof(struct bt_inner) + 63) & ~(size_t)63)

struct btree {
    struct bt_node *root; /* read by every operation: alone on its line */
    /* Written by every insert and remove: kept off the root's line. */
    long count __attribute__((aligned(64)));
    long mem;
};

/* A search key: its bytes and its two words. */
struct bt_key {
    const uint8_t *p;
    size_t len;
    uint64_t pfx, sfx;
};

/* A stored key (an entry's or a separator's), as read from a node. */
struct bt_ent {
    uint64_t pfx, kx;
    size_t len;
};

/* The separators that bound a leaf's range, as a descent met them; len 0: no such fence. */
struct bt_fences {
    struct bt_ent lo, hi;
};

/* What a descent recorded: the nodes, their versions, the child taken. */
struct bt_path {
    int height; /* index of the leaf in node[] */
    struct bt_node *node[BT_MAX_HEIGHT];
    uint64_t ver[BT_MAX_HEIGHT];
    unsigned idx[BT_MAX_HEIGHT];
};

/* How a descent picks a child, and what a positioning search looks for. */
enum bt_how {
    BT_GE,    /* first key >= k (also point operations) */
    BT_GT,    /* first key > k */
    BT_LE,    /* last key <= k */
    BT_LT,    /* last key < k */
    BT_FIRST, /* leftmost */
    BT_LAST   /* rightmost */
};

/* ---- keys ------------------------------------------------------------- */

/* be64 and key_word: base/util.h. */

static inline void key_init(struct bt_key *k, const void *p, size_t len)
{
    k->p = p;
    k->len = len;
    k->pfx = key_word(p, len, 0);
    k->sfx = key_word(p, len, 8);
}

/* The second word an entry for k stores. */
static inline uint64_t key_kx(const struct bt_key *k)
{
    return k->len <= BT_INLINE ? k->sfx : (uint64_t)(uintptr_t)k->p;
}

/* The bytes of a stored key: rebuilt in buf when inline, else where kx points. */
static inline const uint8_t *ent_bytes(const struct bt_ent *e, uint8_t buf[BT_INLINE])
{
    if (e->len > BT_INLINE)
        return (const uint8_t *)(uintptr_t)e->kx;
    uint64_t w[2] = {be64(e->pfx), be64(e->kx)};
    memcpy(buf, w, sizeof(w));
    return buf;
}

static inline int cmp_len(size_t a, size_t b)
{
    return (a > b) - (a < b);
}

static inline int cmp_u64(uint64_t a, uint64_t b)
{
    return (a > b) - (a < b);
}

/*
 * Orders a stored key (length el, second word ex, read optimistically from n
 * at version v) against k when their first words are equal.  A key of at
 * most 8 (16) bytes whose words equal another's is a prefix of it -- its zero
 * padding matched the other's bytes -- so the shorter sorts first.  Only when
 * both keys go past what the words hold and the stored one is out of line
 * are bytes read, after n is validated at v (a change sets *bad instead).
 */
static inline int tie_cmp(size_t el, uint64_t ex, const struct bt_key *k, const struct bt_node *n,
                          uint64_t v, int *bad);

/* ---- versions (the OLC protocol) ---------------------------------------- */

/*
 * Before each attempt of an operation that restarts from the root: the
 * first attempt goes at once, every retry waits (base/util.h's spin_wait:
 * the writer in the way may be preempted, more threads than cores).
 */
struct restart {
    bool again;
    struct spin s;
};

static inline void restart_pause(struct restart *r)
{
    if (r->again)
        spin_wait(&r->s);
    r->again = true;
}

/* For assertions: n's lock is held (by someone; see assert_locked). */
static inline __attribute__((unused)) int is_locked(const struct bt_node *n)
{
    return (LD(n->version) & BT_LOCKED) != 0;
}

/*
 * Starts an optimistic read of n: the version once n is unlocked, with
 * *obsolete set if n has been removed from the tree.
 */
static inline uint64_t read_lock(const struct bt_node *n, int *obsolete)
{
    struct spin spins = {0};
    for (;;) {
        /* Acquire: pairs with the release in write_unlock*, so that writer's stores are seen. */
        uint64_t v = __atomic_load_n(&n->version, __ATOMIC_ACQUIRE);
        if (!(v & BT_LOCKED)) {
            *obsolete = (v & BT_OBSOLETE) != 0;
            return v;
        }
        spin_wait(&spins);
    }
}

/* True if n is still at version v: every read of n since read_lock was consistent. */
static inline int validate(const struct bt_node *n, uint64_t v)
{
    /* Keeps the node reads above before the re-read; pairs with upgrade's release fence. */
    BT_FENCE(__ATOMIC_ACQUIRE);
    return __atomic_load_n(&n->version, __ATOMIC_RELAXED) == v;
}

/* Turns an optimistic read at version v into the write lock; 0 if n changed. */
static inline int upgrade(struct bt_node *n, uint64_t v)
{
    if (!__atomic_compare_exchange_n(&n->version, &v, v + BT_LOCKED, 0, __ATOMIC_ACQUIRE,
                                     __ATOMIC_RELAXED))
        return 0;
    /* The lock is visible before any node store below; pairs with validate's acquire fence. */
    BT_FENCE(__ATOMIC_RELEASE);
    return 1;
}

/* Clears the lock and advances the counter; release pairs with read_lock's acquire. */
static inline void write_unlock(struct bt_node *n)
{
    assert_locked(n);
    __atomic_fetch_add(&n->version, BT_LOCKED, __ATOMIC_RELEASE);
}

/* As write_unlock, and marks n obsolete for good; release pairs with read_lock's acquire. */
static inline void write_unlock_obsolete(struct bt_node *n)
{
    assert_locked(n);
    __atomic_fetch_add(&n->version, BT_LOCKED + BT_OBSOLETE, __ATOMIC_RELEASE);
}

/* The root and its version, checked to still be the root after the version was read. */
static inline struct bt_node *read_root(struct btree *t, uint64_t *v)
{
    for (;;) {
        /* Acquire: pairs with the release store in make_root / collapse_root. */
        struct bt_node *n = __atomic_load_n(&t->root, __ATOMIC_ACQUIRE);
        int obsolete;
        *v = read_lock(n, &obsolete);
        /*
         * t->root moves away from n only under n's lock (B3), and the
         * version load was acquire: if n was split or collapsed before that
         * load, this reload sees the new root.
         */
        if (!obsolete && n == __atomic_load_n(&t->root, __ATOMIC_RELAXED))
            return n;
    }
}

static inline int tie_cmp(size_t el, uint64_t ex, const struct bt_key *k, const struct bt_node *n,
                          uint64_t v, int *bad)
{
    if (el <= 8 || k->len <= 8)
        return cmp_len(el, k->len);
    if (el <= BT_INLINE)
        return ex != k->sfx ? cmp_u64(ex, k->sfx) : cmp_len(el, k->len);
    /* ex is a pointer only if it came with this el: check before following it. */
    if (!validate(n, v)) {
        *bad = 1;
        return 0;
    }
    const uint8_t *b = (const uint8_t *)(uintptr_t)ex;
    size_t m = el < k->len ? el : k->len;
    int c = memcmp(b + 8, k->p + 8, m - 8); /* the first 8 bytes are equal */
    return c ? c : cmp_len(el, k->len);
}

/* ---- nodes ---------------------------------------------------------------- */

static inline unsigned clamp_count(unsigned n, unsigned cap)
{
    return n <= cap ? n : cap; /* a racing read may see anything; stay inside the node */
}

static struct bt_node *node_alloc(unsigned level)
{
    size_t size = level ? BT_INNER_SIZE : BT_LEAF_SIZE;
    struct bt_node *n = aligned_alloc(64, size);
    if (n) {
        memset(n, 0, size);
        n->level = (uint8_t)level;
    }
    return n;
}

static inline size_t node_size(const struct bt_node *n)
{
    return n->level ? BT_INNER_SIZE : BT_LEAF_SIZE;
}

static void node_free_cb(struct rcu_head *head)
{
    RCU_CALLBACK_ENTER();
    struct bt_node *n = caa_container_of(head, struct bt_node, rcu);
    assert(LD(n->version) & BT_OBSOLETE); /* unlinked with write_unlock_obsolete (B5) */
    free(n->dead_sep);
    free(n);
    RCU_CALLBACK_EXIT(); /* rcu_drain()'s caller may count on the memory being back */
}

/*
 * Requests the lines of n a search will touch, all at once, so their misses
 * overlap: a leaf whole (prefixes, then the entry found), an inner node's
 * header and prefixes (its child line follows from the search).
 */
static inline void node_prefetch(const struct bt_node *n, int leaf)
{
    const char *p = (const char *)n;
    size_t end = leaf ? BT_LEAF_SIZE : offsetof(struct bt_inner, klen);
    for (size_t off = 0; off < end; off += 64)
        __builtin_prefetch(p + off);
}

static inline void mem_add(struct btree *t, long delta)
{
    __atomic_fetch_add(&t->mem, delta, __ATOMIC_RELAXED);
}

/*
 * The first entry of n (count cnt) that is >= k, and in *eq whether it
 * equals k; n is read optimistically at version v, and -1 means a version
 * check failed (restart).  The loop body selects rather than branches on the
 * common path.
 */
static inline __attribute__((always_inline)) int
node_search(const struct bt_node *n, uint64_t v, unsigned cnt, const struct bt_key *k, int *eq)
{
    const int leaf = n->level == 0;
    const struct bt_leaf *l = (const struct bt_leaf *)n;
    const struct bt_inner *in = (const struct bt_inner *)n;
    const uint64_t *pfx = leaf ? l->pfx : in->pfx;
    const uint16_t *lens = leaf ? l->klen : in->klen;
    unsigned base = 0, len = cnt;
    int bad = 0;
    while (len > 0) {
        unsigned half = len / 2, mid = base + half;
        uint64_t p = LD(pfx[mid]);
        int lt = p < k->pfx;
        if (__builtin_expect(p == k->pfx, 0)) {
            uint64_t x = leaf ? LD(l->slot[mid].kx) : LD(in->kx[mid]);
            lt = tie_cmp(LD(lens[mid]), x, k, n, v, &bad) < 0;
            if (bad)
                return -1;
        }
        base = lt ? mid + 1 : base;
        len = lt ? len - half - 1 : half;
    }
    *eq = 0;
    if (base < cnt && LD(pfx[base]) == k->pfx) {
        uint64_t x = leaf ? LD(l->slot[base].kx) : LD(in->kx[base]);
        *eq = tie_cmp(LD(lens[base]), x, k, n, v, &bad) == 0;
        if (bad)
            return -1;
    }
    return (int)base;
}

/* The child a descent takes for how/k in inner node n (count cnt); -1: restart. */
static inline int child_index(const struct bt_inner *n, uint64_t v, unsigned cnt,
                              const struct bt_key *k, enum bt_how how)
{
    int eq, lb;
    if (how == BT_FIRST)
        return 0;
    if (how == BT_LAST)
        return (int)cnt;
    lb = node_search(&n->h, v, cnt, k, &eq);
    if (lb < 0)
        return -1;
    /* Child i holds [s[i-1], s[i]): a key equal to s[i] lives to its right (but LT wants < k). */
    return how == BT_LT ? lb : lb + eq;
}

static inline void read_sep(const struct bt_inner *in, unsigned i, struct bt_ent *e)
{
    e->pfx = LD(in->pfx[i]);
    e->kx = LD(in->kx[i]);
    e->len = LD(in->klen[i]);
}

/*
 * Optimistic descent from the root to the leaf for how/k.  Returns the leaf
 * and its version *v; at that version the leaf covered k (B2).
 * Fills the fences f and the path when asked (non-NULL).  Reads only;
 * restarts internally.
 */
static struct bt_leaf *descend(struct btree *t, const struct bt_key *k, enum bt_how how,
                               uint64_t *v, struct bt_fences *f, struct bt_path *path)
{
    struct bt_ent *lo = f ? &f->lo : NULL, *hi = f ? &f->hi : NULL;
    struct restart restarts = {0};
restart:
    restart_pause(&restarts);
    if (f)
        lo->len = hi->len = 0; /* no stored key is empty: 0 means "no fence" */
    uint64_t nv;
    struct bt_node *n = read_root(t, &nv);
    int h = 0;
    while (n->level) {
        const struct bt_inner *in = (const struct bt_inner *)n;
        unsigned cnt = clamp_count(LD(n->count), BT_INNER_CAP);
        int idx = child_index(in, nv, cnt, k, how);
        if (idx < 0)
            goto restart;
        if (hi && (unsigned)idx < cnt) /* deeper separators are tighter: the last one wins */
            read_sep(in, (unsigned)idx, hi);
        if (lo && idx > 0)
            read_sep(in, (unsigned)idx - 1, lo);
        struct bt_node *child = LD(in->child[idx]);
        if (!validate(n, nv)) /* child is a pointer n really held */
            goto restart;
        node_prefetch(child, n->level == 1);
        if (path) {
            path->node[h] = n;
            path->ver[h] = nv;
            path->idx[h] = (unsigned)idx;
        }
        int obsolete;
        uint64_t cv = read_lock(child, &obsolete);
        /* Lock coupling: n unchanged after child's version was read, so child still covers k. */
        if (obsolete || !validate(n, nv))
            goto restart;
        n = child;
        nv = cv;
        if (++h >= BT_MAX_HEIGHT)
            abort(); /* a corrupt tree; cannot happen (see BT_MAX_HEIGHT) */
    }
    if (path) {
        path->node[h] = n;
        path->ver[h] = nv;
        path->height = h;
    }
    *v = nv;
    return (struct bt_leaf *)n;
}

/* ---- writer-side node edits (the node is locked or unpublished) ------------ */

static void leaf_insert_at(struct bt_leaf *l, unsigned pos, const struct bt_key *k, void *val)
{
    unsigned n = l->h.count;
    assert_locked(&l->h);
    assert(n < BT_LEAF_CAP && pos <= n);
    /* Element by element with atomic stores: readers may be reading these slots. */
    for (unsigned j = n; j > pos; j--) {
        ST(l->pfx[j], l->pfx[j - 1]);
        ST(l->klen[j], l->klen[j - 1]);
        ST(l->slot[j].kx, l->slot[j - 1].kx);
        ST(l->slot[j].val, l->slot[j - 1].val);
    }
    ST(l->pfx[pos], k->pfx);
    ST(l->klen[pos], (uint16_t)k->len);
    ST(l->slot[pos].kx, key_kx(k));
    ST(l->slot[pos].val, val);
    ST(l->h.count, (uint16_t)(n + 1));
}

static void leaf_remove_at(struct bt_leaf *l, unsigned pos)
{
    unsigned n = l->h.count;
    assert_locked(&l->h);
    assert(pos < n);
    for (unsigned j = pos; j + 1 < n; j++) {
        ST(l->pfx[j], l->pfx[j + 1]);
        ST(l->klen[j], l->klen[j + 1]);
        ST(l->slot[j].kx, l->slot[j + 1].kx);
        ST(l->slot[j].val, l->slot[j + 1].val);
    }
    ST(l->h.count, (uint16_t)(n - 1));
}

/* Inserts separator s at pos with child c to its right. */
static void inner_insert_at(struct bt_inner *in, unsigned pos, const struct bt_ent *s,
                            struct bt_node *c)
{
    unsigned n = in->h.count;
    assert_locked(&in->h);
    assert(n < BT_INNER_CAP && pos <= n); /* full inner nodes split on the way down */
    for (unsigned j = n; j > pos; j--) {
        ST(in->pfx[j], in->pfx[j - 1]);
        ST(in->klen[j], in->klen[j - 1]);
        ST(in->kx[j], in->kx[j - 1]);
        ST(in->child[j + 1], in->child[j]);
    }
    ST(in->pfx[pos], s->pfx);
    ST(in->klen[pos], (uint16_t)s->len);
    ST(in->kx[pos], s->kx);
    ST(in->child[pos + 1], c);
    ST(in->h.count, (uint16_t)(n + 1));
}

/* Removes child pos and a separator next to it; that separator into *s. */
static void inner_remove_child(struct bt_inner *in, unsigned pos, struct bt_ent *s)
{
    unsigned n = in->h.count;
    assert_locked(&in->h);
    assert(n > 0 && pos <= n);           /* the child has a sibling to take its range over */
    unsigned at = pos > 0 ? pos - 1 : 0; /* child pos-1 (or the new child 0) takes the range over */
    s->pfx = in->pfx[at];
    s->kx = in->kx[at];
    s->len = in->klen[at];
    for (unsigned j = at; j + 1 < n; j++) {
        ST(in->pfx[j], in->pfx[j + 1]);
        ST(in->klen[j], in->klen[j + 1]);
        ST(in->kx[j], in->kx[j + 1]);
    }
    for (unsigned j = pos; j < n; j++)
        ST(in->child[j], in->child[j + 1]);
    ST(in->h.count, (uint16_t)(n - 1));
}

/* A new root over left and right; the caller holds left's lock and left is the root. */
static void make_root(struct btree *t, struct bt_inner *root, struct bt_node *left,
                      const struct bt_ent *s, struct bt_node *right)
{
    assert_locked(left);
    assert(LD(t->root) == left);
    root->h.level = (uint8_t)(left->level + 1);
    root->h.count = 1;
    root->pfx[0] = s->pfx;
    root->klen[0] = (uint16_t)s->len;
    root->kx[0] = s->kx;
    root->child[0] = left;
    root->child[1] = right;
    mem_add(t, (long)BT_INNER_SIZE);
    /* Release: pairs with read_root's acquire; the node is initialised above. */
    __atomic_store_n(&t->root, &root->h, __ATOMIC_RELEASE);
}

/*
 * The shortest key s with a < s <= b (a < b, both stored keys): b cut after
 * the first byte where they differ (suffix truncation, R. Bayer and K.
 * Unterauer, "Prefix B-trees", TODS 1977).  Inline when it fits, else an
 * owned copy.  0, or TXKV_NOMEM.
 */
static int make_separator(const struct bt_ent *a, const struct bt_ent *b, struct bt_ent *s)
{
    uint8_t abuf[BT_INLINE], bbuf[BT_INLINE];
    const uint8_t *ap = ent_bytes(a, abuf), *bp = ent_bytes(b, bbuf);
    size_t m = a->len < b->len ? a->len : b->len, i = 0;
    while (i < m && ap[i] == bp[i])
        i++;
    assert(i < b->len); /* else b would be a prefix of a, so b <= a */
    s->len = i + 1;
    s->pfx = key_word(bp, s->len, 0);
    if (s->len <= BT_INLINE) {
        s->kx = key_word(bp, s->len, 8);
        return 0;
    }
    uint8_t *copy = malloc(s->len);
    if (!copy)
        return TXKV_NOMEM;
    memcpy(copy, bp, s->len);
    s->kx = (uint64_t)(uintptr_t)copy;
    return 0;
}

static inline void leaf_ent(const struct bt_leaf *l, unsigned i, struct bt_ent *e)
{
    e->pfx = l->pfx[i];
    e->kx = l->slot[i].kx;
    e->len = l->klen[i];
}

/* ---- life cycle ------------------------------------------------------------ */

/*
 * Creates an empty tree (one empty leaf).  0 or TXKV_NOMEM.
 * No concurrent users; needs no read-side section.
 */
int btree_create(struct btree **tp)
{
    struct btree *t = aligned_alloc(64, sizeof(*t));
    struct bt_node *root = node_alloc(0);
    if (!t || !root) {
        free(t);
        free(root);
        return TXKV_NOMEM;
    }
    memset(t, 0, sizeof(*t));
    t->root = root;
    t->mem = (long)BT_LEAF_SIZE;
    *tp = t;
    return 0;
}

static void free_subtree(struct bt_node *n)
{
    if (n->level) {
        struct bt_inner *in = (struct bt_inner *)n;
        for (unsigned i = 0; i < in->h.count; i++)
            if (in->klen[i] > BT_INLINE)
                free((void *)(uintptr_t)in->kx[i]);
        for (unsigned i = 0; i <= in->h.count; i++)
            free_subtree(in->child[i]);
    }
    free(n);
}

/*
 * Frees every node still in the tree (not the keys or values).  No concurrent
 * users, and no reader may still hold a node.  Nodes unlinked earlier may
 * still sit in RCU's callback queue; they free themselves (rcu_drain() waits
 * for them) and never touch t.
 */
void btree_destroy(struct btree *t)
{
    if (!t)
        return;
    assert_outside_rcu_section(); /* nor may the caller's own section hold a node */
    free_subtree(t->root);
    free(t);
}

/* ---- point operations ---------------------------------------------------- */

/*
 * The leaf for k, its version *v, and in *pos the first slot >= k (*eq: it
 * holds k), searched at *v.  What the caller reads from the leaf next it
 * must validate at *v.  Restarts internally.  Inlined, as node_search: it is
 * the whole of a lookup's hot path.
 */
static inline __attribute__((always_inline)) struct bt_leaf *
leaf_find(struct btree *t, const struct bt_key *k, uint64_t *v, int *pos, int *eq)
{
    for (;;) {
        struct bt_leaf *l = descend(t, k, BT_GE, v, NULL, NULL);
        unsigned cnt = clamp_count(LD(l->h.count), BT_LEAF_CAP);
        *pos = node_search(&l->h, *v, cnt, k, eq);
        if (*pos >= 0)
            return l;
    }
}

/*
 * The value stored under key, or NULL.  RCU read side; stores nothing shared.
 * Linearizes at the leaf's final validation.
 */
void *btree_lookup(struct btree *t, const void *key, size_t klen)
{
    struct bt_key k;
    assert_in_rcu_section();
    key_init(&k, key, klen);
    for (;;) {
        uint64_t v;
        int eq, pos;
        struct bt_leaf *l = leaf_find(t, &k, &v, &pos, &eq);
        void *val = eq ? LD(l->slot[pos].val) : NULL;
        if (validate(&l->h, v))
            return val;
    }
}

/* ---- inserts ------------------------------------------------------------- */

/* What an insert step answers to send the insert back to the root (TXKV_* codes are <= 0). */
#define BT_RESTART 1

/*
 * An insert in progress: its key and value, and the nodes allocated before
 * any lock is taken (a split's new right sibling, a new root).  The spares
 * survive restarts and are freed at the end unless a split published them.
 */
struct bt_insert {
    struct btree *t;
    struct bt_key k;
    void *val;
    struct bt_node *spare_leaf, *spare_inner, *spare_root;
};

/*
 * Where an insert's descent stands: n, read at version v, reached through
 * child pidx of parent, read at pv (parent NULL: n was the root).
 */
struct bt_pos {
    struct bt_node *n, *parent;
    uint64_t v, pv;
    unsigned pidx;
};

/*
 * The prologue of every split.  First allocate n's new right sibling and,
 * when n is the root, the new root (no lock is held, so TXKV_NOMEM leaves the
 * tree as it was); then lock the parent and n at the versions the descent
 * read, parent first, never waiting: a failed upgrade releases what is held.
 * 0: both locked, and n is still the parent's child pidx, or still the root
 * (B3).  BT_RESTART or TXKV_NOMEM: nothing locked.
 */
static int split_lock(struct bt_insert *ins, const struct bt_pos *p)
{
    struct bt_node **sibling = p->n->level ? &ins->spare_inner : &ins->spare_leaf;

    if (!*sibling && !(*sibling = node_alloc(p->n->level ? 1 : 0)))
        return TXKV_NOMEM;
    if (!p->parent && !ins->spare_root && !(ins->spare_root = node_alloc(1)))
        return TXKV_NOMEM;
    if (p->parent && !upgrade(p->parent, p->pv))
        return BT_RESTART;
    if (!upgrade(p->n, p->v)) {
        if (p->parent)
            write_unlock(p->parent);
        return BT_RESTART;
    }
    if (!p->parent && p->n != LD(ins->t->root)) { /* a new root appeared above n */
        write_unlock(p->n);
        return BT_RESTART;
    }
    return 0;
}

/* Releases what split_lock took. */
static void split_unlock(const struct bt_pos *p)
{
    write_unlock(p->n);
    if (p->parent)
        write_unlock(p->parent);
}

/*
 * The epilogue of every split: right, holding n's upper half, goes into n's
 * parent after separator s, or under a new root beside n; then both unlock.
 * n (and its parent) locked by split_lock.
 */
static void split_publish(struct bt_insert *ins, const struct bt_pos *p, const struct bt_ent *s,
                          struct bt_node *right)
{
    assert_locked(p->n);
    assert(!p->parent || is_locked(p->parent));
    if (p->parent) {
        inner_insert_at((struct bt_inner *)p->parent, p->pidx, s, right);
    } else {
        make_root(ins->t, (struct bt_inner *)ins->spare_root, p->n, s, right);
        ins->spare_root = NULL;
    }
    split_unlock(p);
}

/*
 * Splits the full inner node p->n (cnt separators) met on the way down, so
 * that a split of its child always finds room in it: the upper half moves to
 * the spare node, the middle separator up.  Always ends the attempt:
 * BT_RESTART (split, or the locks were lost) or TXKV_NOMEM.
 */
static int split_inner(struct bt_insert *ins, const struct bt_pos *p, unsigned cnt)
{
    int rc = split_lock(ins, p);
    if (rc != 0)
        return rc;
    struct bt_inner *in = (struct bt_inner *)p->n, *r = (struct bt_inner *)ins->spare_inner;
    unsigned mid = cnt / 2, rn = cnt - mid - 1;
    assert(in->h.count == cnt); /* locked at the version cnt was read at */
    r->h.level = in->h.level;
    for (unsigned j = 0; j < rn; j++) {
        r->pfx[j] = in->pfx[mid + 1 + j];
        r->klen[j] = in->klen[mid + 1 + j];
        r->kx[j] = in->kx[mid + 1 + j];
    }
    for (unsigned j = 0; j <= rn; j++)
        r->child[j] = in->child[mid + 1 + j];
    r->h.count = (uint16_t)rn;
    ST(in->h.count, (uint16_t)mid);
    mem_add(ins->t, (long)BT_INNER_SIZE);
    /* The middle separator moves up; out-of-line bytes change owner, not address (B4). */
    struct bt_ent up = {in->pfx[mid], in->kx[mid], in->klen[mid]};
    ins->spare_inner = NULL;
    split_publish(ins, p, &up, &r->h);
    return BT_RESTART;
}

/*
 * Splits the full leaf p->n (cnt entries), where the insert's key would go
 * at slot pos.  In half, except when appending at either end: ascending (or
 * descending) loads would otherwise leave every leaf half empty.  BT_RESTART
 * (split: the insert then finds room; or the locks were lost) or TXKV_NOMEM.
 */
static int split_leaf(struct bt_insert *ins, const struct bt_pos *p, unsigned cnt, unsigned pos)
{
    int rc = split_lock(ins, p);
    if (rc != 0)
        return rc;
    struct bt_leaf *l = (struct bt_leaf *)p->n, *r = (struct bt_leaf *)ins->spare_leaf;
    unsigned at = cnt / 2;
    assert(l->h.count == cnt && pos <= cnt); /* locked at the version both were read at */
    if (pos == cnt)
        at = cnt - cnt / 8;
    else if (pos == 0)
        at = cnt / 8;
    struct bt_ent a, b, s;
    leaf_ent(l, at - 1, &a);
    leaf_ent(l, at, &b);
    if (make_separator(&a, &b, &s) != 0) {
        split_unlock(p);
        return TXKV_NOMEM;
    }
    for (unsigned j = at; j < cnt; j++) {
        r->pfx[j - at] = l->pfx[j];
        r->klen[j - at] = l->klen[j];
        r->slot[j - at] = l->slot[j];
    }
    r->h.count = (uint16_t)(cnt - at);
    ST(l->h.count, (uint16_t)at);
    mem_add(ins->t, (long)(BT_LEAF_SIZE + (s.len > BT_INLINE ? s.len : 0)));
    ins->spare_leaf = NULL;
    split_publish(ins, p, &s, &r->h);
    return BT_RESTART;
}

/*
 * An insert's descent: as a reader's, but it keeps each node's parent (a
 * split locks both) and splits the first full inner node it meets.  0: *p
 * is at the leaf, and the leaf's parent was re-checked after the leaf's
 * version was read, so the leaf covers the key at p->v (B2).  BT_RESTART,
 * or TXKV_NOMEM from a split.
 */
static int insert_descend(struct bt_insert *ins, struct bt_pos *p)
{
    uint64_t v, pv = 0;
    struct bt_node *n = read_root(ins->t, &v), *parent = NULL;
    unsigned pidx = 0;

    while (n->level) {
        struct bt_inner *in = (struct bt_inner *)n;
        unsigned cnt = clamp_count(LD(n->count), BT_INNER_CAP);
        if (cnt == BT_INNER_CAP) {
            *p = (struct bt_pos){n, parent, v, pv, pidx};
            return split_inner(ins, p, cnt);
        }
        /* Lock coupling: the parent still held n when n's version was read. */
        if (parent && !validate(parent, pv))
            return BT_RESTART;
        int idx = child_index(in, v, cnt, &ins->k, BT_GE);
        if (idx < 0)
            return BT_RESTART;
        struct bt_node *child = LD(in->child[idx]);
        if (!validate(n, v)) /* child is a pointer n really held */
            return BT_RESTART;
        node_prefetch(child, n->level == 1);
        int obsolete;
        uint64_t cv = read_lock(child, &obsolete);
        if (obsolete)
            return BT_RESTART;
        parent = n;
        pv = v;
        pidx = (unsigned)idx;
        n = child;
        v = cv;
    }
    if (parent && !validate(parent, pv))
        return BT_RESTART;
    *p = (struct bt_pos){n, parent, v, pv, pidx};
    return 0;
}

/*
 * An insert's last step, at the leaf p->n: TXKV_EXISTS (and *existing) if
 * the key is there; a split if the leaf is full; else the entry goes in
 * under the leaf's lock: 0.  BT_RESTART, TXKV_NOMEM.
 */
static int insert_at_leaf(struct bt_insert *ins, const struct bt_pos *p, void **existing)
{
    struct bt_leaf *l = (struct bt_leaf *)p->n;
    unsigned cnt = clamp_count(LD(l->h.count), BT_LEAF_CAP);
    int eq, pos = node_search(&l->h, p->v, cnt, &ins->k, &eq);
    if (pos < 0)
        return BT_RESTART;
    if (eq) {
        void *old = LD(l->slot[pos].val);
        if (!validate(&l->h, p->v))
            return BT_RESTART;
        if (existing)
            *existing = old;
        return TXKV_EXISTS;
    }
    if (cnt == BT_LEAF_CAP)
        return split_leaf(ins, p, cnt, (unsigned)pos);
    /* v unchanged since the parent check, so the leaf still covers k (B2). */
    if (!upgrade(&l->h, p->v))
        return BT_RESTART;
    leaf_insert_at(l, (unsigned)pos, &ins->k, ins->val);
    write_unlock(&l->h);
    __atomic_fetch_add(&ins->t->count, 1, __ATOMIC_RELAXED);
    return 0;
}

/*
 * Inserts key -> val if key is absent (see btree.h).  RCU read side.  Locks
 * at most two nodes at a time (a node and its parent, for a split) and never
 * waits for a lock while holding one.  TXKV_INVALID for a key of 0 or more
 * than 65535 bytes or a NULL val.  Nodes are allocated before any lock is
 * taken, so TXKV_NOMEM leaves the tree as it was.
 */
int btree_insert(struct btree *t, const void *key, size_t klen, void *val, void **existing)
{
    struct bt_insert ins = {.t = t, .val = val};
    struct bt_pos p;
    struct restart restarts = {0};
    int rc;

    assert_in_rcu_section();
    if (klen == 0 || klen > BT_MAX_KEY || !val)
        return TXKV_INVALID;
    key_init(&ins.k, key, klen);
    do {
        restart_pause(&restarts);
        rc = insert_descend(&ins, &p);
        if (rc == 0)
            rc = insert_at_leaf(&ins, &p, existing);
    } while (rc == BT_RESTART);
    free(ins.spare_leaf);
    free(ins.spare_inner);
    free(ins.spare_root);
    return rc;
}

/*
 * Replaces a root that has a single child by that child, for as long as
 * there is one.  Holds one lock at a time: the root's (B3).  RCU read side.
 */
static void collapse_root(struct btree *t)
{
    assert_in_rcu_section();
    for (;;) {
        uint64_t v;
        struct bt_node *r = read_root(t, &v);
        if (!r->level || LD(r->count) != 0) {
            if (validate(r, v))
                return;
            continue;
        }
        struct bt_node *c = LD(((struct bt_inner *)r)->child[0]);
        if (!upgrade(r, v))
            continue;
        assert(LD(t->root) == r && LD(r->count) == 0);
        /* Unchanged since read_root saw it as the root, so it still is (B3). */
        __atomic_store_n(&t->root, c, __ATOMIC_RELEASE); /* pairs with read_root's acquire */
        write_unlock_obsolete(r);
        mem_add(t, -(long)BT_INNER_SIZE);
        rcu_defer(&r->rcu, node_free_cb);
    }
}

/*
 * Unlinks the empty leaf on k's path, if it still is empty, with every
 * ancestor that has no other child.  Locks the path top-down from the lowest
 * ancestor that keeps a child, each at the version the descent saw; any
 * change restarts.  RCU read side.
 */
static void unlink_empty(struct btree *t, const struct bt_key *k)
{
    assert_in_rcu_section();
    struct bt_path path;
    struct restart restarts = {0};
restart:
    restart_pause(&restarts);
    uint64_t v;
    struct bt_leaf *l = descend(t, k, BT_GE, &v, NULL, &path);
    int h = path.height;
    if (LD(l->h.count) != 0 || h == 0) {
        if (!validate(&l->h, v))
            goto restart;
        return; /* refilled meanwhile, or the root leaf, which stays */
    }
    int a = h - 1;
    while (a >= 0 && LD(path.node[a]->count) == 0)
        a--;
    if (a < 0) { /* a chain of only children from the root: shorten it */
        if (!validate(&l->h, v))
            goto restart;
        collapse_root(t);
        return;
    }
    for (int i = a; i <= h; i++) {
        if (!upgrade(path.node[i], path.ver[i])) {
            while (--i >= a)
                write_unlock(path.node[i]);
            goto restart;
        }
    }
    /* All locked at the versions the descent saw: the path and the counts read hold. */
    assert(l->h.count == 0 && path.node[a]->count > 0);
    struct bt_inner *anc = (struct bt_inner *)path.node[a];
    struct bt_ent dead;
    inner_remove_child(anc, path.idx[a], &dead);
    long freed = 0;
    if (dead.len > BT_INLINE) {
        path.node[a + 1]->dead_sep = (uint8_t *)(uintptr_t)dead.kx;
        freed -= (long)dead.len;
    }
    for (int i = a + 1; i <= h; i++) {
        freed -= (long)node_size(path.node[i]);
        write_unlock_obsolete(path.node[i]);
    }
    int root_single = a == 0 && anc->h.count == 0;
    write_unlock(&anc->h);
    mem_add(t, freed);
    for (int i = a + 1; i <= h; i++)
        rcu_defer(&path.node[i]->rcu, node_free_cb);
    if (root_single)
        collapse_root(t);
}

/*
 * Removes key if it maps to expect (or to anything when expect is NULL).
 * RCU read side.  Locks the leaf only, then (when it emptied) the path to
 * it.  The caller frees the key bytes only after a grace period.
 */
int btree_remove(struct btree *t, const void *key, size_t klen, void *expect)
{
    struct bt_key k;
    assert_in_rcu_section();
    key_init(&k, key, klen);
    for (;;) {
        uint64_t v;
        int eq, pos;
        struct bt_leaf *l = leaf_find(t, &k, &v, &pos, &eq);
        if (!eq || (expect && LD(l->slot[pos].val) != expect)) {
            if (validate(&l->h, v))
                return TXKV_NOTFOUND;
            continue;
        }
        if (!upgrade(&l->h, v))
            continue;
        leaf_remove_at(l, (unsigned)pos);
        unsigned left = l->h.count;
        write_unlock(&l->h);
        __atomic_fetch_sub(&t->count, 1, __ATOMIC_RELAXED);
        if (left == 0)
            unlink_empty(t, &k);
        return 0;
    }
}

/* Number of keys; exact when no writer runs.  Any context. */
size_t btree_count(struct btree *t)
{
    /* An insert's increment may land after a racing remove's decrement: never report < 0. */
    long c = __atomic_load_n(&t->count, __ATOMIC_RELAXED);
    return c > 0 ? (size_t)c : 0;
}

/* Bytes of nodes and out-of-line separators; exact when no writer runs.  Any context. */
size_t btree_mem(struct btree *t)
{
    long m = __atomic_load_n(&t->mem, __ATOMIC_RELAXED);
    return m > 0 ? (size_t)m : 0;
}

/* ---- iterators ---------------------------------------------------------- */

/* Prepares it on t, unpositioned.  Any context; one thread at a time uses it. */
void btree_iter_init(struct btree *t, struct btree_iter *it)
{
    memset(it, 0, sizeof(*it));
    it->t = t;
}

/* Frees the key copy.  Any context. */
void btree_iter_fini(struct btree_iter *it)
{
    free(it->kbuf);
    it->kbuf = NULL;
    it->kcap = 0;
    it->key = NULL;
    it->valid = 0;
    it->leaf = NULL;
}

/* Drops the leaf hint; call before leaving the read-side section that set it.  Any context. */
void btree_iter_unpin(struct btree_iter *it)
{
    it->leaf = NULL;
    it->parent = NULL;
}

static int iter_none(struct btree_iter *it)
{
    it->valid = 0;
    it->leaf = NULL;
    it->parent = NULL;
    return TXKV_NOTFOUND;
}

/*
 * The neighbour, in direction dir (+1 or -1), of the hint's leaf as the
 * parent holds it: read without validation, so only good for a prefetch
 * (which never faults; the node itself stays allocated for the section).
 * NULL at the parent's edge or without a parent.
 */
static inline const struct bt_node *sibling_guess(const struct btree_iter *it, int dir)
{
    const struct bt_inner *p = it->parent;
    if (!p)
        return NULL;
    int i = it->pslot + dir;
    if (i < 0 || i > (int)clamp_count(LD(p->h.count), BT_INNER_CAP))
        return NULL;
    return LD(p->child[i]);
}

/*
 * Called once the iterator stands on slot s of a leaf of cnt entries, moving
 * in direction dir: when few entries are left (exactly BT_ITER_SIBLING, or
 * fewer on arrival), start fetching the next leaf, so that stepping into it
 * (iter_hop) finds it in cache.
 */
static inline void prefetch_sibling(const struct btree_iter *it, unsigned cnt, unsigned s, int dir,
                                    int arrived)
{
    unsigned left = dir > 0 ? cnt - 1 - s : s;
    if (left == BT_ITER_SIBLING || (arrived && left < BT_ITER_SIBLING)) {
        const struct bt_node *n = sibling_guess(it, dir);
        if (n)
            node_prefetch(n, 1);
    }
}

/* Starts fetching the bytes of out-of-line keys in slots [from, to) of l. */
static inline void prefetch_keys(const struct bt_leaf *l, unsigned from, unsigned to)
{
    for (unsigned j = from; j < to; j++)
        if (LD(l->klen[j]) > BT_INLINE) /* racy: a wrong guess only wastes a prefetch */
            __builtin_prefetch((const void *)(uintptr_t)LD(l->slot[j].kx));
}

/*
 * Positions it on slot s of l, read at version v: reads the entry, validates,
 * copies the key.  1 done, 0 restart, TXKV_NOMEM.
 */
static int iter_take(struct btree_iter *it, struct bt_leaf *l, uint64_t v, unsigned s)
{
    assert(s < BT_LEAF_CAP);
    struct bt_ent e = {LD(l->pfx[s]), LD(l->slot[s].kx), LD(l->klen[s])};
    void *val = LD(l->slot[s].val);
    if (!validate(&l->h, v))
        return 0;
    if (e.len > it->kcap || !it->kcap) { /* the buffer always holds BT_INLINE bytes */
        size_t cap = it->kcap ? it->kcap : 32;
        while (cap < e.len)
            cap *= 2;
        uint8_t *nb = realloc(it->kbuf, cap);
        if (!nb) {
            iter_none(it);
            return TXKV_NOMEM;
        }
        it->kbuf = nb;
        it->kcap = cap;
    }
    if (e.len <= BT_INLINE) { /* both words, padding included: a fixed-size copy */
        uint64_t w[2] = {be64(e.pfx), be64(e.kx)};
        memcpy(it->kbuf, w, sizeof(w));
    } else {
        if (it->leaf != l) { /* arriving at a leaf: fetch the long keys ahead at once */
            unsigned cnt = clamp_count(LD(l->h.count), BT_LEAF_CAP);
            unsigned lo = s > BT_ITER_PREFETCH ? s - BT_ITER_PREFETCH : 0;
            unsigned hi = s + 1 + BT_ITER_PREFETCH < cnt ? s + 1 + BT_ITER_PREFETCH : cnt;
            prefetch_keys(l, lo, hi);
        }
        /* e was l's entry at v: the bytes stay valid for this read-side section. */
        memcpy(it->kbuf, (const void *)(uintptr_t)e.kx, e.len);
    }
    it->key = it->kbuf;
    it->klen = e.len;
    it->val = val;
    it->valid = 1;
    it->leaf = l;
    it->leaf_version = v;
    it->slot = (int)s;
    return 1;
}

/*
 * The general positioning search.  When the leaf for k has no qualifying
 * entry, the answer lies past one of its fences: continue from there (a
 * forward search from the upper fence, inclusive; a backward one from the
 * lower fence, exclusive, since keys >= it belong to this leaf's range).
 */
static int iter_find(struct btree_iter *it, const uint8_t *key, size_t klen, enum bt_how how)
{
    struct bt_key k = {NULL, 0, 0, 0};
    uint8_t fbuf[BT_INLINE]; /* an inline fence's bytes, once it is the search key */
    assert_in_rcu_section();
    if (how != BT_FIRST && how != BT_LAST)
        key_init(&k, key, klen);
    int forward = how == BT_FIRST || how == BT_GE || how == BT_GT;
    for (;;) {
        struct bt_fences fence;
        struct bt_path path;
        uint64_t v;
        struct bt_leaf *l = descend(it->t, &k, how, &v, &fence, &path);
        unsigned cnt = clamp_count(LD(l->h.count), BT_LEAF_CAP);
        int s, eq = 0, pos = 0;
        if (how != BT_FIRST && how != BT_LAST) {
            pos = node_search(&l->h, v, cnt, &k, &eq);
            if (pos < 0)
                continue;
        }
        switch (how) {
        case BT_FIRST:
            s = 0;
            break;
        case BT_LAST:
            s = (int)cnt - 1;
            break;
        case BT_GE:
            s = pos;
            break;
        case BT_GT:
            s = pos + eq;
            break;
        case BT_LE:
            s = pos + eq - 1;
            break;
        default: /* BT_LT */
            s = pos - 1;
            break;
        }
        if (s >= 0 && (unsigned)s < cnt) {
            /* The parent, validated after l's version was read (lock coupling). */
            int h = path.height;
            it->parent = h ? path.node[h - 1] : NULL;
            it->parent_version = h ? path.ver[h - 1] : 0;
            it->pslot = h ? (int)path.idx[h - 1] : 0;
            int r = iter_take(it, l, v, (unsigned)s);
            if (r == 0)
                continue;
            if (r == 1)
                prefetch_sibling(it, cnt, (unsigned)s, forward ? 1 : -1, 1);
            return r == 1 ? 0 : r;
        }
        if (!validate(&l->h, v)) /* the fences and "nothing here" held at v */
            continue;
        struct bt_ent *f = forward ? &fence.hi : &fence.lo;
        if (f->len == 0)
            return iter_none(it);
        /* An out-of-line fence is tree-owned and valid for this section. */
        key_init(&k, ent_bytes(f, fbuf), f->len);
        how = forward ? BT_GE : BT_LT;
    }
}

/* First key >= key (klen may be 0).  RCU read side, as every call below. */
int btree_seek(struct btree_iter *it, const void *key, size_t klen)
{
    return iter_find(it, key, klen, BT_GE);
}

/* Last key <= key. */
int btree_seek_le(struct btree_iter *it, const void *key, size_t klen)
{
    return iter_find(it, key, klen, BT_LE);
}

int btree_first(struct btree_iter *it)
{
    return iter_find(it, NULL, 0, BT_FIRST);
}

int btree_last(struct btree_iter *it)
{
    return iter_find(it, NULL, 0, BT_LAST);
}

/*
 * Steps from the hint's leaf l, read at version v and found to hold nothing
 * beyond the current slot in direction dir, into its neighbour under the
 * same parent: the first (dir > 0) or last entry there.  1 done, 0 not
 * possible (no parent, at the parent's edge, a version changed, an empty
 * neighbour: the caller searches instead), TXKV_NOMEM.
 *
 * Why the entry taken is the next key: the parent unchanged since the
 * descent means l is still its child pslot and the neighbour its child
 * pslot + dir, with the separator between them unchanged (B1); l held
 * nothing beyond the current key at v, and the neighbour, read with lock
 * coupling on the parent, covers the keys on the other side of that
 * separator.  So as with iter_find, the key returned was in the tree at the
 * neighbour's validated version, and a key present all along is not skipped.
 */
static int iter_hop(struct btree_iter *it, struct bt_leaf *l, uint64_t v, int dir)
{
    const struct bt_inner *p = it->parent;
    uint64_t pv = it->parent_version;
    if (!p || !validate(&l->h, v)) /* the count the caller read is l's at v */
        return 0;
    int i = it->pslot + dir;
    unsigned pcnt = clamp_count(LD(p->h.count), BT_INNER_CAP);
    if (i < 0 || i > (int)pcnt)
        return 0;
    struct bt_node *n = LD(p->child[i]);
    if (!validate(&p->h, pv)) /* i was in range and n is a child p really held */
        return 0;
    int obsolete;
    uint64_t nv = read_lock(n, &obsolete);
    /* Lock coupling: p unchanged after n's version was read, so n still covers its range. */
    if (obsolete || !validate(&p->h, pv))
        return 0;
    unsigned cnt = clamp_count(LD(n->count), BT_LEAF_CAP);
    if (cnt == 0) /* an empty leaf waiting to be unlinked: search past it */
        return 0;
    unsigned s = dir > 0 ? 0 : cnt - 1;
    int r = iter_take(it, (struct bt_leaf *)n, nv, s); /* validates cnt at nv */
    if (r != 1)
        return r;
    it->pslot = i;
    prefetch_sibling(it, cnt, s, dir, 1);
    return 1;
}

/*
 * Moves from the hint's leaf, if it is unchanged, one entry in direction
 * dir: within the leaf, or into its neighbour (iter_hop).  1 done, 0 the
 * caller must search, TXKV_NOMEM.
 */
static inline int iter_step(struct btree_iter *it, int dir)
{
    struct bt_leaf *l = it->leaf;
    if (!l)
        return 0;
    uint64_t v = __atomic_load_n(&l->h.version, __ATOMIC_ACQUIRE); /* pairs with write_unlock */
    if (v != it->leaf_version)
        return 0;
    unsigned cnt = clamp_count(LD(l->h.count), BT_LEAF_CAP);
    int s = it->slot + dir;
    if (s < 0 || (unsigned)s >= cnt)
        return iter_hop(it, l, v, dir);
    unsigned u = (unsigned)s;
    if (dir > 0 && u + BT_ITER_PREFETCH < cnt)
        prefetch_keys(l, u + BT_ITER_PREFETCH, u + BT_ITER_PREFETCH + 1);
    else if (dir < 0 && u >= BT_ITER_PREFETCH)
        prefetch_keys(l, u - BT_ITER_PREFETCH, u - BT_ITER_PREFETCH + 1);
    int r = iter_take(it, l, v, u);
    if (r == 1)
        prefetch_sibling(it, cnt, u, dir, 0);
    return r;
}

/*
 * First key > the current one.  The hint makes this O(1) while the leaf
 * (or, to step into the next leaf, its parent) is unchanged; otherwise it
 * searches from the key copy, which need not be in the tree any more.
 * TXKV_NOTFOUND, and nothing else, on an unpositioned iterator.
 */
int btree_next(struct btree_iter *it)
{
    assert_in_rcu_section();
    if (!it->valid)
        return TXKV_NOTFOUND;
    int r = iter_step(it, +1);
    if (r != 0)
        return r == 1 ? 0 : r;
    return iter_find(it, it->kbuf, it->klen, BT_GT);
}

/* Last key < the current one; as btree_next. */
int btree_prev(struct btree_iter *it)
{
    assert_in_rcu_section();
    if (!it->valid)
        return TXKV_NOTFOUND;
    int r = iter_step(it, -1);
    if (r != 0)
        return r == 1 ? 0 : r;
    return iter_find(it, it->kbuf, it->klen, BT_LT);
}
