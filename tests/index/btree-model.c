/*
 * btree-model: the B+tree against a reference model, one thread.
 *
 * The model is a sorted array of distinct keys (a "pool") with a presence bit
 * and a value per key.  Random operations (insert, remove with and without an
 * expected value, lookup, seek, seek_le, first, last, next, prev) run on both
 * and must agree; now and then a long walk (op_walk) steps across many
 * leaves while keys around it come and go.  Probe keys are pool keys and their neighbours (one byte
 * more or less, a byte changed), so seeks land on exact hits, gaps and ends.
 * Pools mix 1-byte keys, keys that are prefixes of each other, keys sharing
 * a long prefix (the tree's 8-byte inline prefix ties) and 65535-byte keys.
 *
 * The tree gets a private copy of each key, freed one grace period after its
 * removal: under ASan a tree that kept reading a removed key (say, as a
 * separator) fails.  A long-lived iterator steps now and then across inserts
 * and removals around it and across read-side sections (unpinned first).
 *
 * Deterministic by TXKV_SEED.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "index/btree.h"
#include "base/rcu.h"
#include "../tap.h"
#include "txkv.h"

static uint64_t rng;
static unsigned long failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            if (failures++ < 10)                                                                   \
                diag(__VA_ARGS__);                                                                 \
        }                                                                                          \
    } while (0)

static int key_cmp(const uint8_t *a, size_t la, const uint8_t *b, size_t lb)
{
    int c = memcmp(a, b, la < lb ? la : lb);
    return c ? c : (la > lb) - (la < lb);
}

/* ---- the model ------------------------------------------------------------ */

struct model {
    size_t n;      /* pool size */
    uint8_t **key; /* the pool, sorted, distinct */
    size_t *len;
    uint8_t **copy; /* the bytes the tree holds while present */
    void **val;     /* NULL = absent */
    uint64_t *bits; /* presence */
    size_t present;
};

/* Copies removed from the tree, freed after the next grace period. */
static uint8_t **graveyard;
static size_t ngrave, capgrave;

static void bury(uint8_t *p)
{
    if (ngrave == capgrave) {
        capgrave = capgrave ? capgrave * 2 : 1024;
        graveyard = realloc(graveyard, capgrave * sizeof(*graveyard));
        if (!graveyard)
            bail_out("out of memory");
    }
    graveyard[ngrave++] = p;
}

/*
 * Leaves the read-side section, lets a grace period pass, frees the buried
 * key copies and enters again.  Iterators must be unpinned by the caller.
 */
static void quiesce(void)
{
    rcu_read_leave();
    rcu_synchronize();
    for (size_t i = 0; i < ngrave; i++)
        free(graveyard[i]);
    ngrave = 0;
    rcu_read_enter();
}

/* Only a new read-side section: cheaper than quiesce(); iterators unpinned first. */
static void reenter(void)
{
    rcu_read_leave();
    rcu_read_enter();
}

struct pkey {
    uint8_t *p;
    size_t len;
};

static int pkey_cmp(const void *a, const void *b)
{
    const struct pkey *x = a, *y = b;
    return key_cmp(x->p, x->len, y->p, y->len);
}

/* Sorts and dedupes keys[0..n) into m (which takes the arrays' ownership). */
static void model_init(struct model *m, struct pkey *keys, size_t n)
{
    qsort(keys, n, sizeof(*keys), pkey_cmp);
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (w > 0 && pkey_cmp(&keys[w - 1], &keys[i]) == 0)
            free(keys[i].p);
        else
            keys[w++] = keys[i];
    }
    memset(m, 0, sizeof(*m));
    m->n = w;
    m->key = calloc(w, sizeof(*m->key));
    m->len = calloc(w, sizeof(*m->len));
    m->copy = calloc(w, sizeof(*m->copy));
    m->val = calloc(w, sizeof(*m->val));
    m->bits = calloc((w + 63) / 64 + 1, sizeof(*m->bits));
    if (!m->key || !m->len || !m->copy || !m->val || !m->bits)
        bail_out("out of memory");
    for (size_t i = 0; i < w; i++) {
        m->key[i] = keys[i].p;
        m->len[i] = keys[i].len;
    }
    free(keys);
}

static void model_free(struct model *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->key[i]);
        free(m->copy[i]);
    }
    free(m->key);
    free(m->len);
    free(m->copy);
    free(m->val);
    free(m->bits);
}

static void model_set(struct model *m, size_t i, void *val, uint8_t *copy)
{
    if (val)
        m->bits[i / 64] |= 1ull << (i % 64);
    else
        m->bits[i / 64] &= ~(1ull << (i % 64));
    m->present += (val != NULL) - (m->val[i] != NULL);
    m->val[i] = val;
    m->copy[i] = copy;
}

/* Smallest present index >= i, or -1. */
static long next_present(const struct model *m, long i)
{
    if (i < 0)
        i = 0;
    while ((size_t)i < m->n) {
        uint64_t w = m->bits[i / 64] >> (i % 64);
        if (w)
            return (size_t)(i + __builtin_ctzll(w)) < m->n ? i + __builtin_ctzll(w) : -1;
        i = (i / 64 + 1) * 64;
    }
    return -1;
}

/* Largest present index <= i, or -1. */
static long prev_present(const struct model *m, long i)
{
    if ((size_t)i >= m->n && i >= 0)
        i = (long)m->n - 1;
    while (i >= 0) {
        uint64_t w = m->bits[i / 64] << (63 - i % 64);
        if (w)
            return i - __builtin_clzll(w);
        i = (i / 64) * 64 - 1;
    }
    return -1;
}

/* First pool index whose key is >= k (strict: > k). */
static long pool_bound(const struct model *m, const uint8_t *k, size_t kl, int strict)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = key_cmp(m->key[mid], m->len[mid], k, kl);
        if (c < 0 || (strict && c == 0))
            lo = mid + 1;
        else
            hi = mid;
    }
    return (long)lo;
}

/* ---- checks ------------------------------------------------------------- */

/* The iterator's state against the model's answer idx (-1: none) after a call that returned rc. */
static void check_pos(const struct model *m, const struct btree_iter *it, int rc, long idx,
                      const char *what)
{
    if (idx < 0) {
        CHECK(rc == TXKV_NOTFOUND && !it->valid, "%s: got rc %d, want NOTFOUND", what, rc);
        return;
    }
    CHECK(rc == 0 && it->valid, "%s: got rc %d, want key #%ld", what, rc, idx);
    if (rc == 0) {
        CHECK(key_cmp(it->key, it->klen, m->key[idx], m->len[idx]) == 0 && it->val == m->val[idx],
              "%s: wrong entry (want #%ld, len %zu; got len %zu)", what, idx, m->len[idx],
              it->klen);
    }
}

/* A probe: a pool key, or a neighbour of one, or (rarely) the empty key. */
static size_t make_probe(const struct model *m, uint8_t *buf, size_t cap)
{
    size_t i = tap_rand(&rng) % m->n, len = m->len[i];
    if (len > cap - 1)
        len = cap - 1;
    memcpy(buf, m->key[i], len);
    switch (tap_rand(&rng) % 8) {
    case 0: /* one byte more */
        buf[len++] = (uint8_t)(tap_rand(&rng) % 3 == 0 ? 0 : tap_rand(&rng));
        break;
    case 1: /* one byte less */
        if (len > 0)
            len--;
        break;
    case 2: /* a byte changed */
        if (len > 0)
            buf[tap_rand(&rng) % len] += (uint8_t)(tap_rand(&rng) % 2 ? 1 : 255);
        break;
    case 3:
        if (tap_rand(&rng) % 64 == 0)
            len = 0;
        break;
    default: /* the key itself */
        break;
    }
    return len;
}

static void step_and_check(const struct model *m, struct btree_iter *it, int forward)
{
    long want;
    if (!it->valid) {
        int rc = forward ? btree_next(it) : btree_prev(it);
        CHECK(rc == TXKV_NOTFOUND, "step on an unpositioned iterator: rc %d", rc);
        return;
    }
    if (forward)
        want = next_present(m, pool_bound(m, it->key, it->klen, 1));
    else
        want = prev_present(m, pool_bound(m, it->key, it->klen, 0) - 1);
    check_pos(m, it, forward ? btree_next(it) : btree_prev(it), want, forward ? "next" : "prev");
}

static void full_scan_check(struct btree *t, const struct model *m, const char *phase)
{
    struct btree_iter it;
    unsigned long before = failures;
    size_t n = 0;
    btree_iter_init(t, &it);
    long want = next_present(m, 0);
    int rc = btree_first(&it);
    check_pos(m, &it, rc, want, "first");
    while (rc == 0 && want >= 0) {
        n++;
        want = next_present(m, want + 1);
        rc = btree_next(&it);
        check_pos(m, &it, rc, want, "scan next");
    }
    want = prev_present(m, (long)m->n - 1);
    rc = btree_last(&it);
    check_pos(m, &it, rc, want, "last");
    while (rc == 0 && want >= 0) {
        want = prev_present(m, want - 1);
        rc = btree_prev(&it);
        check_pos(m, &it, rc, want, "scan prev");
    }
    btree_iter_fini(&it);
    ok(failures == before && n == m->present && btree_count(t) == m->present,
       "%s: full scans both ways match the model (%zu keys)", phase, n);
}

/* ---- one random operation ------------------------------------------------ */

static void *fresh_value(void)
{
    return (void *)(uintptr_t)(tap_rand(&rng) | 1);
}

static void op_insert(struct btree *t, struct model *m, size_t i)
{
    uint8_t *copy = malloc(m->len[i]);
    void *val = fresh_value(), *old = NULL;
    if (!copy)
        bail_out("out of memory");
    memcpy(copy, m->key[i], m->len[i]);
    int rc = btree_insert(t, copy, m->len[i], val, &old);
    if (m->val[i]) {
        CHECK(rc == TXKV_EXISTS && old == m->val[i], "insert of a present key: rc %d", rc);
        free(copy);
    } else {
        CHECK(rc == 0, "insert of an absent key: rc %d", rc);
        if (rc == 0)
            model_set(m, i, val, copy);
        else
            free(copy);
    }
}

static void op_remove(struct btree *t, struct model *m, size_t i)
{
    void *expect = NULL;
    unsigned how = tap_rand(&rng) % 3;
    if (how == 1)
        expect = m->val[i] ? m->val[i] : fresh_value();
    else if (how == 2)
        expect = (void *)((uintptr_t)(m->val[i] ? m->val[i] : fresh_value()) ^ 2); /* wrong */
    int rc = btree_remove(t, m->key[i], m->len[i], expect);
    int should = m->val[i] && (!expect || expect == m->val[i]);
    CHECK(rc == (should ? 0 : TXKV_NOTFOUND), "remove (mode %u): rc %d, want %d", how, rc,
          should ? 0 : TXKV_NOTFOUND);
    if (should && rc == 0) {
        bury(m->copy[i]);
        model_set(m, i, NULL, NULL);
    }
}

static void op_lookup(struct btree *t, struct model *m)
{
    static uint8_t buf[70000];
    size_t len = make_probe(m, buf, sizeof(buf));
    if (len == 0)
        return;
    long i = pool_bound(m, buf, len, 0);
    void *want =
        (size_t)i < m->n && key_cmp(m->key[i], m->len[i], buf, len) == 0 ? m->val[i] : NULL;
    void *got = btree_lookup(t, buf, len);
    CHECK(got == want, "lookup of a %zu-byte probe: got %p want %p", len, got, want);
}

static void op_seek(struct btree *t, struct model *m, struct btree_iter *it)
{
    static uint8_t buf[70000];
    size_t len = make_probe(m, buf, sizeof(buf));
    int le = tap_rand(&rng) % 2, rc;
    long want;
    if (le) {
        want = prev_present(m, pool_bound(m, buf, len, 1) - 1);
        rc = btree_seek_le(it, buf, len);
    } else {
        want = next_present(m, pool_bound(m, buf, len, 0));
        rc = btree_seek(it, buf, len);
    }
    check_pos(m, it, rc, want, le ? "seek_le" : "seek");
    unsigned steps = tap_rand(&rng) % 6;
    for (unsigned s = 0; s < steps && it->valid; s++)
        step_and_check(m, it, tap_rand(&rng) % 2);
}

/*
 * A long walk from a seek: a few hundred steps, mostly in one direction, so
 * the iterator crosses leaves (stepping into a neighbour leaf through the
 * parent, or searching when the parent changed); between steps, inserts and
 * removes near the iterator split and empty the leaves around it, its own
 * and its parent included.  Every step must agree with the model.
 */
static void op_walk(struct btree *t, struct model *m, struct btree_iter *it)
{
    static uint8_t buf[70000];
    size_t len = make_probe(m, buf, sizeof(buf));
    int forward = tap_rand(&rng) % 2;
    long want = forward ? next_present(m, pool_bound(m, buf, len, 0))
                        : prev_present(m, pool_bound(m, buf, len, 1) - 1);
    check_pos(m, it, forward ? btree_seek(it, buf, len) : btree_seek_le(it, buf, len), want,
              "walk: seek");
    unsigned steps = 64 + tap_rand(&rng) % 256;
    for (unsigned s = 0; s < steps && it->valid; s++) {
        if (tap_rand(&rng) % 4 == 0) {
            long i = pool_bound(m, it->key, it->klen, 0) + (long)(tap_rand(&rng) % 81) - 40;
            if (i >= 0 && (size_t)i < m->n) {
                if (tap_rand(&rng) % 2)
                    op_insert(t, m, (size_t)i);
                else
                    op_remove(t, m, (size_t)i);
            }
        }
        if (tap_rand(&rng) % 16 == 0)
            forward = !forward;
        step_and_check(m, it, forward);
    }
}

struct mix {
    unsigned insert, remove, lookup, seek; /* per 100; the rest: first/last, count */
};

/*
 * ops random operations on pool m with the given mix; pit is the long-lived
 * iterator.  Returns through failures.
 */
static void run_ops(struct btree *t, struct model *m, struct btree_iter *pit, unsigned long ops,
                    struct mix mix)
{
    struct btree_iter it;
    btree_iter_init(t, &it);
    for (unsigned long op = 0; op < ops; op++) {
        unsigned r = tap_rand(&rng) % 100;
        size_t i = tap_rand(&rng) % m->n;
        if (r < mix.insert) {
            op_insert(t, m, i);
        } else if ((r -= mix.insert) < mix.remove) {
            op_remove(t, m, i);
        } else if ((r -= mix.remove) < mix.lookup) {
            op_lookup(t, m);
        } else if ((r -= mix.lookup) < mix.seek) {
            if (tap_rand(&rng) % 64 == 0)
                op_walk(t, m, &it);
            else
                op_seek(t, m, &it);
        } else if (r % 3 == 0) {
            check_pos(m, &it, btree_first(&it), next_present(m, 0), "first");
        } else if (r % 3 == 1) {
            check_pos(m, &it, btree_last(&it), prev_present(m, (long)m->n - 1), "last");
        } else {
            CHECK(btree_count(t) == m->present, "count %zu, model %zu", btree_count(t), m->present);
        }
        /* The long-lived iterator: a step now and then, wherever the tree moved. */
        if (tap_rand(&rng) % 16 == 0) {
            if (!pit->valid)
                op_seek(t, m, pit);
            else
                step_and_check(m, pit, tap_rand(&rng) % 2);
        }
        if (op % 1024 == 1023) {
            btree_iter_unpin(&it);
            btree_iter_unpin(pit);
            if (op % 32768 == 32767)
                quiesce();
            else
                reenter();
        }
    }
    btree_iter_fini(&it);
}

/* Removes every present key (in random order) and checks the tree is back to one empty leaf. */
static void drain(struct btree *t, struct model *m, size_t mem0, const char *phase)
{
    unsigned long before = failures;
    size_t start = tap_rand(&rng) % m->n;
    for (size_t k = 0; k < 2 * m->n; k++) {
        /* A permutation of the pool (7919 is prime), then a sweep for any left over. */
        size_t i = k < m->n ? (start + k * 7919) % m->n : k - m->n;
        if (!m->val[i])
            continue;
        int rc = btree_remove(t, m->key[i], m->len[i], tap_rand(&rng) % 2 ? m->val[i] : NULL);
        CHECK(rc == 0, "drain: remove rc %d", rc);
        if (rc == 0) {
            bury(m->copy[i]);
            model_set(m, i, NULL, NULL);
        }
    }
    struct btree_iter it;
    btree_iter_init(t, &it);
    CHECK(btree_first(&it) == TXKV_NOTFOUND && btree_last(&it) == TXKV_NOTFOUND,
          "drained tree still has entries");
    btree_iter_fini(&it);
    ok(failures == before && btree_count(t) == 0 && m->present == 0, "%s: drained to empty", phase);
    is(btree_mem(t), mem0, "%s: memory back to one empty leaf after draining", phase);
}

/* ---- pools ------------------------------------------------------------- */

static struct pkey *pool_alloc(size_t n)
{
    struct pkey *k = calloc(n, sizeof(*k));
    if (!k)
        bail_out("out of memory");
    return k;
}

static struct pkey key_dup(const uint8_t *p, size_t len)
{
    struct pkey k = {malloc(len ? len : 1), len};
    if (!k.p)
        bail_out("out of memory");
    memcpy(k.p, p, len);
    return k;
}

/*
 * A mixed pool: short keys over a tiny alphabet (many prefix relations and
 * keys that differ only in trailing zero bytes), random keys, keys behind a
 * common 19-byte prefix, keys of 8 to 18 bytes sharing their first 8 (the
 * tree keeps keys of up to 16 bytes inline), and extensions/truncations of
 * earlier keys.
 */
static struct pkey *pool_mixed(size_t n)
{
    static const uint8_t alpha[] = {0x00, 0x01, 'a', 'b', 0xff};
    static const char common[] = "txkv/common/prefix/";
    struct pkey *keys = pool_alloc(n);
    uint8_t buf[64];
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        switch (tap_rand(&rng) % 5) {
        case 0:
            len = 1 + tap_rand(&rng) % 12;
            for (size_t j = 0; j < len; j++)
                buf[j] = alpha[tap_rand(&rng) % sizeof(alpha)];
            break;
        case 1:
            len = 1 + tap_rand(&rng) % 40;
            for (size_t j = 0; j < len; j++)
                buf[j] = (uint8_t)tap_rand(&rng);
            break;
        case 2:
            memcpy(buf, common, sizeof(common) - 1);
            len = sizeof(common) - 1 + tap_rand(&rng) % 8;
            for (size_t j = sizeof(common) - 1; j < len; j++)
                buf[j] = alpha[tap_rand(&rng) % sizeof(alpha)];
            break;
        case 3: /* 8..18 bytes behind a fixed 8: ties on both inline words, lengths around 16 */
            memcpy(buf, "ABCDEFGH", 8);
            len = 8 + tap_rand(&rng) % 11;
            for (size_t j = 8; j < len; j++)
                buf[j] = alpha[tap_rand(&rng) % sizeof(alpha)];
            break;
        default:
            if (i == 0) {
                buf[0] = 'a';
                len = 1;
                break;
            }
            {
                struct pkey *o = &keys[tap_rand(&rng) % i];
                len = o->len < 40 ? o->len : 40;
                memcpy(buf, o->p, len);
                if (len > 1 && tap_rand(&rng) % 2)
                    len--;
                else
                    buf[len++] = alpha[tap_rand(&rng) % sizeof(alpha)];
            }
            break;
        }
        keys[i] = key_dup(buf, len);
    }
    return keys;
}

/* Every 1-byte key, plus "x" + a random byte + random tails. */
static struct pkey *pool_bytes(size_t *n)
{
    struct pkey *keys = pool_alloc(256 + 2000);
    uint8_t b[8];
    for (unsigned i = 0; i < 256; i++) {
        b[0] = (uint8_t)i;
        keys[i] = key_dup(b, 1);
    }
    for (unsigned i = 0; i < 2000; i++) {
        size_t len = 2 + tap_rand(&rng) % 6;
        b[0] = (uint8_t)tap_rand(&rng);
        for (size_t j = 1; j < len; j++)
            b[j] = (uint8_t)(tap_rand(&rng) % 4);
        keys[256 + i] = key_dup(b, len);
    }
    *n = 256 + 2000;
    return keys;
}

/* Keys of 65535 bytes (and 65534, 9, 8, 1) that differ late, early, or are prefixes. */
static struct pkey *pool_long(size_t *n)
{
    size_t cnt = 0, cap = 3 * 48 + 4;
    struct pkey *keys = pool_alloc(cap);
    uint8_t *base = malloc(65535);
    if (!base)
        bail_out("out of memory");
    for (size_t j = 0; j < 65535; j++)
        base[j] = (uint8_t)(j * 7 + 3);
    for (unsigned v = 0; v < 48; v++) { /* enough for a few leaves */
        struct pkey k = key_dup(base, 65535);
        k.p[65534] = (uint8_t)(v * 31); /* differ in the last byte */
        keys[cnt++] = k;
        k = key_dup(base, 65535);
        k.p[9] = (uint8_t)(v * 29); /* differ just past the inline prefix */
        keys[cnt++] = k;
        k = key_dup(base, 65535);
        k.p[3] = (uint8_t)(v * 37); /* differ inside the prefix */
        keys[cnt++] = k;
    }
    keys[cnt++] = key_dup(base, 65534); /* a prefix of the 65535-byte base variants */
    keys[cnt++] = key_dup(base, 9);
    keys[cnt++] = key_dup(base, 8);
    keys[cnt++] = key_dup(base, 1);
    free(base);
    *n = cnt;
    return keys;
}

/* "ordered" keys: a 4-byte big-endian counter after a 6-byte prefix, for sequential loads. */
static struct pkey *pool_counter(size_t n)
{
    struct pkey *keys = pool_alloc(n);
    uint8_t b[10] = {'o', 'r', 'd', 'e', 'r', ':'};
    for (size_t i = 0; i < n; i++) {
        b[6] = (uint8_t)(i >> 24);
        b[7] = (uint8_t)(i >> 16);
        b[8] = (uint8_t)(i >> 8);
        b[9] = (uint8_t)i;
        keys[i] = key_dup(b, 10);
    }
    return keys;
}

/* ---- phases --------------------------------------------------------------- */

static void phase(struct btree *t, size_t mem0, const char *name, struct pkey *keys, size_t n,
                  unsigned long ops, struct mix grow, struct mix shrink)
{
    struct model m;
    struct btree_iter pit;
    unsigned long before = failures;
    model_init(&m, keys, n);
    btree_iter_init(t, &pit);
    run_ops(t, &m, &pit, ops / 2, grow);
    full_scan_check(t, &m, name);
    run_ops(t, &m, &pit, ops - ops / 2, shrink);
    ok(failures == before, "%s: %lu random operations agree with the model (pool %zu)", name, ops,
       m.n);
    full_scan_check(t, &m, name);
    btree_iter_fini(&pit);
    drain(t, &m, mem0, name);
    btree_iter_unpin(&pit);
    quiesce();
    model_free(&m);
}

static void test_empty(struct btree *t)
{
    struct btree_iter it;
    btree_iter_init(t, &it);
    ok(btree_lookup(t, "a", 1) == NULL, "empty: lookup misses");
    is(btree_remove(t, "a", 1, NULL), TXKV_NOTFOUND, "empty: remove misses");
    is(btree_first(&it), TXKV_NOTFOUND, "empty: no first");
    is(btree_last(&it), TXKV_NOTFOUND, "empty: no last");
    is(btree_seek(&it, "a", 1), TXKV_NOTFOUND, "empty: seek finds nothing");
    is(btree_seek_le(&it, "a", 1), TXKV_NOTFOUND, "empty: seek_le finds nothing");
    is(btree_next(&it), TXKV_NOTFOUND, "empty: next on an unpositioned iterator");
    is(btree_prev(&it), TXKV_NOTFOUND, "empty: prev on an unpositioned iterator");
    is(btree_count(t), 0, "empty: count 0");
    ok(btree_mem(t) > 0, "empty: the root leaf is counted in mem");
    is(btree_insert(t, "a", 0, (void *)1, NULL), TXKV_INVALID, "a 0-byte key is refused");
    is(btree_insert(t, "a", 1, NULL, NULL), TXKV_INVALID, "a NULL value is refused");
    btree_iter_fini(&it);
}

/*
 * The iterator's own contract, step by step: it continues from its key copy
 * after that key is removed, sees keys inserted around it, and survives
 * unpin + a grace period in which its old leaf is freed.
 */
static void test_iterator_contract(struct btree *t)
{
    enum { N = 3000 };
    static char keys[N][16];
    static char between[2][24];
    struct btree_iter it;
    btree_iter_init(t, &it);
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof(keys[i]), "key%06d", i);
        btree_insert(t, keys[i], 9, (void *)(uintptr_t)(i + 1), NULL);
    }
    is(btree_seek(&it, "key001000", 9), 0, "contract: seek to key001000");
    is(btree_remove(t, "key001000", 9, NULL), 0, "contract: remove the key the iterator is on");
    memcpy(between[0], "key000999\xff", 10); /* between 999 and 1000 */
    memcpy(between[1], "key001000\x00", 10); /* just after 1000 */
    btree_insert(t, between[0], 10, (void *)(uintptr_t)100001, NULL);
    btree_insert(t, between[1], 10, (void *)(uintptr_t)100002, NULL);
    ok(btree_next(&it) == 0 && it.klen == 10 && memcmp(it.key, between[1], 10) == 0,
       "contract: next after removal finds the key inserted just after");
    ok(btree_prev(&it) == 0 && it.klen == 10 && memcmp(it.key, between[0], 10) == 0,
       "contract: prev skips the removed key and finds the one inserted before it");
    btree_iter_unpin(&it);
    quiesce();
    ok(btree_next(&it) == 0 && it.klen == 10 && memcmp(it.key, between[1], 10) == 0,
       "contract: next across a read-side section boundary");

    /* Empty the iterator's whole neighbourhood so its leaf is unlinked and freed. */
    is(btree_seek(&it, "key002000", 9), 0, "contract: seek to key002000");
    for (int i = 1500; i < 2600; i++)
        btree_remove(t, keys[i], 9, NULL);
    ok(btree_next(&it) == 0 && memcmp(it.key, "key002600", 9) == 0,
       "contract: next after the leaf under the iterator was emptied (same section)");
    ok(btree_prev(&it) == 0 && memcmp(it.key, "key001499", 9) == 0,
       "contract: prev over the emptied range");
    btree_iter_unpin(&it);
    quiesce();
    for (int i = 1000; i < 1499; i++)
        btree_remove(t, keys[i], 9, NULL);
    ok(btree_next(&it) == 0 && memcmp(it.key, "key002600", 9) == 0,
       "contract: next after unpin, removals and a grace period");
    ok(btree_seek_le(&it, "key001499", 9) == 0 && memcmp(it.key, "key001499", 9) == 0,
       "contract: seek_le on an exact key");
    ok(btree_seek_le(&it, "key0014989", 10) == 0 && memcmp(it.key, between[1], 10) == 0,
       "contract: seek_le over a removed range lands on the last key below it");
    btree_remove(t, between[0], 10, NULL);
    btree_remove(t, between[1], 10, NULL);
    for (int i = 0; i < N; i++)
        btree_remove(t, keys[i], 9, NULL);
    is(btree_count(t), 0, "contract: all removed");
    btree_iter_fini(&it);
    btree_iter_unpin(&it);
    quiesce();
}

int main(void)
{
    struct btree *t;
    size_t n;
    rng = tap_seed();
    if (btree_create(&t) != 0)
        bail_out("btree_create");
    rcu_read_enter();
    size_t mem0 = btree_mem(t);

    test_empty(t);
    test_iterator_contract(t);
    is(btree_mem(t), mem0, "contract: memory back to one empty leaf");

    struct mix grow = {45, 15, 20, 15}, churn = {30, 30, 20, 15}, shrink = {15, 45, 20, 15};
    /* Random operations per phase, in units of k: 1,000k = 1M in all. */
    unsigned long k = 1000;
#ifdef TXKV_TSAN
    k /= 8; /* one thread: TSan finds little here and runs some 20x slower */
#endif

    struct pkey *keys;
    phase(t, mem0, "small", pool_mixed(400), 400, 200 * k, churn, churn);
    keys = pool_bytes(&n);
    phase(t, mem0, "bytes", keys, n, 100 * k, grow, shrink);
    phase(t, mem0, "mixed", pool_mixed(30000), 30000, 530 * k, grow, shrink);
    phase(t, mem0, "ordered", pool_counter(20000), 20000, 150 * k, grow, shrink);
    keys = pool_long(&n);
    phase(t, mem0, "long", keys, n, 20 * k, grow, shrink);

    /* Sequential loads use the uneven split: the tree stays well filled. */
    {
        struct model m;
        size_t nk = 50 * k;
        model_init(&m, pool_counter(nk), nk);
        for (size_t i = 0; i < m.n; i++)
            op_insert(t, &m, i);
        size_t asc = btree_mem(t);
        full_scan_check(t, &m, "ascending load");
        ok((double)asc / nk < 40.0, "ascending load: %.1f bytes per key", (double)asc / nk);
        drain(t, &m, mem0, "ascending load");
        for (size_t i = m.n; i-- > 0;)
            op_insert(t, &m, i);
        ok((double)btree_mem(t) / nk < 40.0, "descending load: %.1f bytes per key",
           (double)btree_mem(t) / nk);
        full_scan_check(t, &m, "descending load");
        drain(t, &m, mem0, "descending load");
        quiesce();
        model_free(&m);
    }

    rcu_read_leave();
    btree_destroy(t);
    rcu_drain();
    free(graveyard);
    ok(failures == 0, "no mismatches in total (%lu)", failures);
    return done_testing();
}
