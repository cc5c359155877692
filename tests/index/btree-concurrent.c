/*
 * btree-concurrent: six threads (more than this machine's cores) insert,
 * remove, look up and scan one B+tree at once.
 *
 * Keys are "key:" + be32(i) + owner byte + a filler of 0..12 bytes that
 * depends on (i, owner).  Their order is (i, owner), so every thread's keys
 * sit next to every other thread's, in the same leaves; the first 8 bytes
 * tie across owners, so comparisons go past the inline prefix.  Owner 0..5
 * is a worker thread, which alone inserts and removes its own keys and keeps
 * a model of them; owner 6 marks "stable" keys, inserted before the run and
 * never removed.
 *
 * Checked while running:
 *  - insert/remove/lookup of a thread's own keys agree exactly with its model;
 *    a stable key is always found; any key found has its own value;
 *  - every scan (seek + next, or seek_le + prev, sometimes leaving and
 *    re-entering the read-side section halfway) is strictly ascending
 *    (descending), starts at or past (before) its probe, and misses no key that
 *    was present for the whole scan: stable keys and the thread's own keys.
 * Checked afterwards: one scan each way equals the union of the models (no
 * lost or duplicate keys), the count matches, and after removing everything
 * the tree is back to one empty leaf.
 *
 * Two rounds: a wide key range (a tree of several levels) and a narrow one
 * (a tree whose root keeps splitting and collapsing).  Operation counts scale
 * with TXKV_STRESS; deterministic per thread by TXKV_SEED (the interleaving
 * is not).  No sleeps: threads start at a barrier and are joined.
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "index/btree.h"
#include "base/rcu.h"
#include "../tap.h"
#include "txkv.h"

enum { NTHREADS = 6, STABLE = NTHREADS, NOWNERS = NTHREADS + 1, KEYMAX = 24 };

struct round {
    const char *name;
    uint32_t range;        /* i in [0, range) for every owner */
    uint32_t stable_every; /* (i, STABLE) is a stable key when i % stable_every == 0 */
    unsigned long ops;     /* per thread */
};

static struct btree *tree;
static const struct round *rnd;
static uint64_t seed;
static pthread_barrier_t start_line;

/* All key bytes, [owner][i]: never freed during a round, so the tree may hold them. */
static uint8_t (*keybytes[NOWNERS])[KEYMAX];
static uint8_t keylen[NOWNERS][1 << 15];

static size_t encode(uint8_t *b, uint32_t i, unsigned owner)
{
    size_t fill = (i * 7 + owner * 3) % 13;
    memcpy(b, "key:", 4);
    b[4] = (uint8_t)(i >> 24);
    b[5] = (uint8_t)(i >> 16);
    b[6] = (uint8_t)(i >> 8);
    b[7] = (uint8_t)i;
    b[8] = (uint8_t)owner;
    for (size_t j = 0; j < fill; j++)
        b[9 + j] = (uint8_t)(i + j * owner);
    return 9 + fill;
}

static const uint8_t *key_of(uint32_t i, unsigned owner)
{
    return keybytes[owner][i];
}

static void *val_of(uint32_t i, unsigned owner)
{
    return (void *)(uintptr_t)((((uint64_t)i << 4) | owner) + 1);
}

/* Decodes a key the tree returned and checks it is one of ours, byte for byte. */
static int decode(const void *key, size_t len, uint32_t *i, unsigned *owner)
{
    const uint8_t *b = key;
    if (len < 9 || memcmp(b, "key:", 4) != 0)
        return 0;
    *i = (uint32_t)b[4] << 24 | (uint32_t)b[5] << 16 | (uint32_t)b[6] << 8 | b[7];
    *owner = b[8];
    if (*i >= rnd->range || *owner >= NOWNERS)
        return 0;
    return len == keylen[*owner][*i] && memcmp(b, key_of(*i, *owner), len) == 0;
}

static int is_stable(uint32_t i)
{
    return i % rnd->stable_every == 0;
}

struct worker {
    pthread_t tid;
    unsigned id;
    uint64_t rng;
    uint8_t *present; /* [range]: the model of this thread's own keys */
    unsigned long failures, scans, scanned;
};

#define FAIL(w, ...)                                                                               \
    do {                                                                                           \
        if ((w)->failures++ < 5)                                                                   \
            diag(__VA_ARGS__);                                                                     \
    } while (0)

/* Position of (i, owner) in key order. */
static uint64_t ord(uint32_t i, unsigned owner)
{
    return (uint64_t)i * NOWNERS + owner;
}

/* Must (i, owner) be seen by a scan of w that covers it? */
static int must_see(const struct worker *w, uint64_t o)
{
    uint32_t i = (uint32_t)(o / NOWNERS);
    unsigned owner = (unsigned)(o % NOWNERS);
    return (owner == STABLE && is_stable(i)) || (owner == w->id && w->present[i]);
}

/*
 * Checks that no must-see key lies strictly between positions a and b (a < b)
 * of the key order.  Walks the gap, which is short while the tree is dense.
 */
static void check_gap(struct worker *w, uint64_t a, uint64_t b, const char *what)
{
    for (uint64_t o = a + 1; o < b; o++) {
        if (must_see(w, o)) {
            FAIL(w, "thread %u: %s skipped key (%u, %u)", w->id, what, (unsigned)(o / NOWNERS),
                 (unsigned)(o % NOWNERS));
            return;
        }
    }
}

static void scan(struct worker *w)
{
    struct btree_iter it;
    int forward = tap_rand(&w->rng) % 2;
    uint32_t pi = (uint32_t)(tap_rand(&w->rng) % rnd->range);
    unsigned po = (unsigned)(tap_rand(&w->rng) % NOWNERS);
    uint64_t end = ord(rnd->range, 0); /* one past the last position */
    unsigned steps = 20 + (unsigned)(tap_rand(&w->rng) % 80);
    int rc;

    btree_iter_init(tree, &it);
    rcu_read_enter();
    /* The probe sits at ord(pi, po); treat it as the previous position, inclusive. */
    uint64_t prev = ord(pi, po);
    if (forward)
        rc = btree_seek(&it, key_of(pi, po), keylen[po][pi]);
    else
        rc = btree_seek_le(&it, key_of(pi, po), keylen[po][pi]);
    int first = 1;
    for (unsigned s = 0; s < steps; s++) {
        if (rc == TXKV_NOTFOUND) {
            /* Ran off the end: nothing that must be seen lies beyond. */
            if (forward)
                check_gap(w, first ? prev - 1 : prev, end, "forward scan (end)");
            else
                check_gap(w, (uint64_t)-1, first ? prev + 1 : prev, "reverse scan (end)");
            break;
        }
        if (rc != 0) {
            FAIL(w, "thread %u: scan step rc %d", w->id, rc);
            break;
        }
        uint32_t i;
        unsigned owner;
        if (!decode(it.key, it.klen, &i, &owner) || it.val != val_of(i, owner)) {
            FAIL(w, "thread %u: scan returned a corrupt entry", w->id);
            break;
        }
        uint64_t o = ord(i, owner);
        if (forward) {
            if (first ? o < prev : o <= prev)
                FAIL(w, "thread %u: forward scan not ascending", w->id);
            else
                check_gap(w, first ? prev - 1 : prev, o, "forward scan");
        } else {
            if (first ? o > prev : o >= prev)
                FAIL(w, "thread %u: reverse scan not descending", w->id);
            else
                check_gap(w, o, first ? prev + 1 : prev, "reverse scan");
        }
        if (owner == w->id && !w->present[i])
            FAIL(w, "thread %u: scan saw its own removed key %u", w->id, i);
        prev = o;
        first = 0;
        w->scanned++;
        if (s % 16 == 15) { /* continue in a new read-side section */
            btree_iter_unpin(&it);
            rcu_read_leave();
            rcu_read_enter();
        }
        rc = forward ? btree_next(&it) : btree_prev(&it);
    }
    btree_iter_unpin(&it);
    rcu_read_leave();
    btree_iter_fini(&it);
    w->scans++;
}

static void one_op(struct worker *w)
{
    unsigned r = (unsigned)(tap_rand(&w->rng) % 100);
    uint32_t i = (uint32_t)(tap_rand(&w->rng) % rnd->range);
    unsigned me = w->id;

    if (r < 5) {
        scan(w);
        return;
    }
    rcu_read_enter();
    if (r < 35) {
        void *old = NULL;
        int rc = btree_insert(tree, key_of(i, me), keylen[me][i], val_of(i, me), &old);
        if (w->present[i] ? rc != TXKV_EXISTS || old != val_of(i, me) : rc != 0)
            FAIL(w, "thread %u: insert %u: rc %d, present %d", me, i, rc, w->present[i]);
        w->present[i] = 1;
    } else if (r < 60) {
        int wrong = tap_rand(&w->rng) % 4 == 0;
        void *expect = wrong ? (void *)((uintptr_t)val_of(i, me) ^ ((uintptr_t)1 << 40))
                             : (tap_rand(&w->rng) % 2 ? val_of(i, me) : NULL);
        int rc = btree_remove(tree, key_of(i, me), keylen[me][i], expect);
        int want = w->present[i] && !wrong ? 0 : TXKV_NOTFOUND;
        if (rc != want)
            FAIL(w, "thread %u: remove %u: rc %d, want %d", me, i, rc, want);
        if (rc == 0)
            w->present[i] = 0;
    } else if (r < 85) {
        void *v = btree_lookup(tree, key_of(i, me), keylen[me][i]);
        if (v != (w->present[i] ? val_of(i, me) : NULL))
            FAIL(w, "thread %u: lookup of own key %u disagrees with its model", me, i);
    } else if (r < 95) {
        uint32_t s = i - i % rnd->stable_every;
        if (btree_lookup(tree, key_of(s, STABLE), keylen[STABLE][s]) != val_of(s, STABLE))
            FAIL(w, "thread %u: stable key %u not found", me, s);
    } else {
        unsigned other = (unsigned)(tap_rand(&w->rng) % NOWNERS);
        void *v = btree_lookup(tree, key_of(i, other), keylen[other][i]);
        if (v && v != val_of(i, other))
            FAIL(w, "thread %u: key (%u, %u) has a foreign value", me, i, other);
    }
    rcu_read_leave();
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    pthread_barrier_wait(&start_line);
    for (unsigned long n = 0; n < rnd->ops; n++)
        one_op(w);
    return NULL;
}

static void run_round(const struct round *r)
{
    struct worker w[NTHREADS];
    unsigned long failures = 0, scans = 0, scanned = 0;
    rnd = r;

    for (unsigned o = 0; o < NOWNERS; o++)
        for (uint32_t i = 0; i < r->range; i++)
            keylen[o][i] = (uint8_t)encode(keybytes[o][i], i, o);

    size_t mem0 = btree_mem(tree), nstable = 0;
    rcu_read_enter();
    for (uint32_t i = 0; i < r->range; i++) {
        if (is_stable(i)) {
            btree_insert(tree, key_of(i, STABLE), keylen[STABLE][i], val_of(i, STABLE), NULL);
            nstable++;
        }
    }
    rcu_read_leave();

    pthread_barrier_init(&start_line, NULL, NTHREADS);
    for (unsigned t = 0; t < NTHREADS; t++) {
        memset(&w[t], 0, sizeof(w[t]));
        w[t].id = t;
        w[t].rng = seed ^ (0x9e3779b97f4a7c15ull * (t + 1)) ^ (uint64_t)r->range;
        w[t].present = calloc(r->range, 1);
        if (!w[t].present)
            bail_out("out of memory");
        if (pthread_create(&w[t].tid, NULL, worker_main, &w[t]) != 0)
            bail_out("pthread_create");
    }
    for (unsigned t = 0; t < NTHREADS; t++) {
        pthread_join(w[t].tid, NULL);
        failures += w[t].failures;
        scans += w[t].scans;
        scanned += w[t].scanned;
    }
    pthread_barrier_destroy(&start_line);
    ok(failures == 0, "%s: %d threads x %lu operations: every check held (%lu scans, %lu keys)",
       r->name, NTHREADS, r->ops, scans, scanned);

    /* Quiescent: one scan each way must be exactly the union of the models. */
    size_t want = nstable, seen = 0;
    for (unsigned t = 0; t < NTHREADS; t++)
        for (uint32_t i = 0; i < r->range; i++)
            want += w[t].present[i];
    struct btree_iter it;
    unsigned long bad = 0;
    btree_iter_init(tree, &it);
    rcu_read_enter();
    uint64_t o = 0;
    for (int rc = btree_first(&it); rc == 0; rc = btree_next(&it), seen++) {
        uint32_t i;
        unsigned owner;
        while (o < ord(r->range, 0)) {
            uint32_t oi = (uint32_t)(o / NOWNERS);
            unsigned oo = (unsigned)(o % NOWNERS);
            if (oo == STABLE ? is_stable(oi) : w[oo].present[oi])
                break;
            o++;
        }
        if (!decode(it.key, it.klen, &i, &owner) || ord(i, owner) != o ||
            it.val != val_of(i, owner))
            bad++;
        o++;
    }
    ok(bad == 0 && seen == want,
       "%s: afterwards a forward scan is exactly the models' union "
       "(%zu keys, %lu mismatches)",
       r->name, seen, bad);
    seen = 0;
    uint64_t last = UINT64_MAX;
    bad = 0;
    for (int rc = btree_last(&it); rc == 0; rc = btree_prev(&it), seen++) {
        uint32_t i;
        unsigned owner;
        if (!decode(it.key, it.klen, &i, &owner) || (last != UINT64_MAX && ord(i, owner) >= last))
            bad++;
        else
            last = ord(i, owner);
    }
    ok(bad == 0 && seen == want, "%s: a reverse scan is strictly descending with every key",
       r->name);
    is(btree_count(tree), want, "%s: count matches", r->name);

    /* Empty it again: every key must be removable exactly once. */
    bad = 0;
    for (unsigned owner = 0; owner < NOWNERS; owner++) {
        for (uint32_t i = 0; i < r->range; i++) {
            int present = owner == STABLE ? is_stable(i) : w[owner].present[i];
            int rc = btree_remove(tree, key_of(i, owner), keylen[owner][i], NULL);
            bad += rc != (present ? 0 : TXKV_NOTFOUND);
        }
    }
    btree_iter_unpin(&it);
    rcu_read_leave();
    btree_iter_fini(&it);
    ok(bad == 0 && btree_count(tree) == 0, "%s: removing every key once empties the tree", r->name);
    is(btree_mem(tree), mem0, "%s: memory back to one empty leaf", r->name);
    for (unsigned t = 0; t < NTHREADS; t++)
        free(w[t].present);
}

int main(void)
{
    seed = tap_seed();
    double scale = tap_scale();
#ifdef TXKV_TSAN
    scale /= 8; /* TSan runs some 10x slower; keep make check short */
#endif
    struct round rounds[] = {
        {"wide", 20000, 3, (unsigned long)(150000 * scale)},
        {"narrow", 48, 16, (unsigned long)(100000 * scale)},
    };
    for (unsigned o = 0; o < NOWNERS; o++) {
        keybytes[o] = calloc(1u << 15, KEYMAX);
        if (!keybytes[o])
            bail_out("out of memory");
    }
    if (btree_create(&tree) != 0)
        bail_out("btree_create");
    for (size_t r = 0; r < sizeof(rounds) / sizeof(rounds[0]); r++)
        run_round(&rounds[r]);
    btree_destroy(tree);
    rcu_drain();
    for (unsigned o = 0; o < NOWNERS; o++)
        free(keybytes[o]);
    return done_testing();
}
