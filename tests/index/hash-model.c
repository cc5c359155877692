/*
 * hash-model.c - the hash index against a reference model, one thread.
 *
 * The model is an array indexed by key id (64K possible keys) holding the
 * entry linked for that key, or NULL.  Over a million random inserts,
 * removes, lookups and counts must agree with it, and now and then a full
 * iteration must return each linked entry exactly once.  Keys are 1 to
 * 65535 bytes, and many are prefixes of each other, so a match that
 * compared fewer bytes than klen, or ignored klen, would be caught.  A second
 * phase hands the table deliberately colliding hash values (the table only
 * needs a key to come with the same hv every time), so the match callback
 * decides between many nodes with equal hashes.  The table starts with
 * one bucket and only hash_maintain() resizes it: every 1024 operations for
 * the true count, as an owner would, and at each iteration for a much
 * smaller or larger count, so it shrinks and grows.  hash_load (a batch
 * linked in bucket order, with keys already present and keys twice in the
 * batch) must leave the same table as the model says, sorted or not.
 *
 * Entries are malloc'ed with their key bytes inline and freed through
 * rcu_defer() after removal; at the end everything is removed, rcu_drain()
 * runs the frees, and LeakSanitizer (in ASan builds) checks nothing leaked.
 * Deterministic by TXKV_SEED.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "index/hash.h"
#include "../tap.h"
#include "txkv.h"

#define NKEYS                65536u
#define NOPS                 1100000u /* at least a million, see the file comment */
#define COLLIDE_KEYS         1024u
#define COLLIDE_OPS          60000u
#define COLLIDE_MASK         15u /* 16 distinct hash values in the collision phase */
#define OPS_PER_SECTION      32u /* leave the read side often so grace periods end */
#define COUNT_EVERY          32768u
#define ITERATE_EVERY        65536u
#define OWNER_MAINTAIN_EVERY 1024u /* a multiple of OPS_PER_SECTION */

/*
 * Key ids and their bytes:
 *   0..255       1 byte, the id itself;
 *   256..1279    2..1025 bytes: prefixes of one pattern;
 *   1280..1312   2326..65535 bytes: longer prefixes of the same pattern,
 *                ending with 65534 and 65535 bytes;
 *   1313..       0xFE, the id in two bytes, then filler: 3..63 bytes, and
 *                every 64th id 100..4099 bytes.
 * The pattern starts with 0xFF, so the families cannot collide.
 */
#define PREFIX_FIRST  256u
#define LONG_FIRST    1280u
#define LONG_LAST     1312u
#define GENERAL_FIRST 1313u
#define SPECIAL_IDS   GENERAL_FIRST /* ids 0..SPECIAL_IDS-1 get extra attention */

struct key {
    const uint8_t *p;
    uint32_t len;
};

struct ent {
    struct hash_entry he;
    struct rcu_head rcu;
    uint32_t id;
    uint8_t key[];
};

struct model {
    struct hash_index *h;
    struct ent **slot; /* the entry linked for each id, or NULL */
    uint32_t nids;
    size_t count;
    uint64_t mask; /* applied to every hash value: ~0, or a few bits to collide */
    uint8_t *seen; /* scratch for the iteration check */
};

static struct key keys[NKEYS];
static uint8_t *pattern; /* 65535 bytes */
static uint8_t *general; /* the bytes of the general keys */
static uint64_t rng;
static unsigned failures; /* model disagreements; each is also reported once by diag */
static unsigned long frees_queued, frees_done;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond) && failures++ < 20)                                                            \
            diag(__VA_ARGS__);                                                                     \
    } while (0)

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void keys_init(void)
{
    static uint8_t one[256];
    size_t glen = 0, off = 0;

    pattern = malloc(TXKV_MAX_KEY);
    if (!pattern)
        bail_out("out of memory");
    for (uint32_t i = 0; i < TXKV_MAX_KEY; i++)
        pattern[i] = (uint8_t)mix64(i);
    pattern[0] = 0xFF;

    for (uint32_t id = 0; id < PREFIX_FIRST; id++) {
        one[id] = (uint8_t)id;
        keys[id] = (struct key){&one[id], 1};
    }
    for (uint32_t id = PREFIX_FIRST; id < LONG_FIRST; id++)
        keys[id] = (struct key){pattern, id - PREFIX_FIRST + 2};
    for (uint32_t id = LONG_FIRST; id < LONG_LAST - 1; id++)
        keys[id] = (struct key){pattern, TXKV_MAX_KEY - (LONG_LAST - 1 - id) * 2039u};
    keys[LONG_LAST - 1] = (struct key){pattern, TXKV_MAX_KEY - 1};
    keys[LONG_LAST] = (struct key){pattern, TXKV_MAX_KEY};

    for (uint32_t id = GENERAL_FIRST; id < NKEYS; id++) {
        uint64_t m = mix64(id);
        keys[id].len = id % 64 == 0 ? 100 + (uint32_t)(m % 4000) : 3 + (uint32_t)(m % 61);
        glen += keys[id].len;
    }
    general = malloc(glen);
    if (!general)
        bail_out("out of memory");
    for (uint32_t id = GENERAL_FIRST; id < NKEYS; id++) {
        uint8_t *p = general + off;
        p[0] = 0xFE;
        p[1] = (uint8_t)(id >> 8);
        p[2] = (uint8_t)id;
        for (uint32_t i = 3; i < keys[id].len; i++)
            p[i] = (uint8_t)mix64((uint64_t)id << 20 | i);
        keys[id].p = p;
        off += keys[id].len;
    }
}

static struct ent *ent_new(uint32_t id)
{
    struct ent *e = malloc(sizeof *e + keys[id].len);
    if (!e)
        bail_out("out of memory");
    memcpy(e->key, keys[id].p, keys[id].len);
    e->id = id;
    return e;
}

/* hash_create's key_of: an entry's key is its ent's. */
static const uint8_t *ent_key_of(const struct hash_entry *he, size_t *klen)
{
    const struct ent *e = caa_container_of(he, struct ent, he);

    *klen = keys[e->id].len;
    return e->key;
}

static void ent_free_cb(struct rcu_head *head)
{
    RCU_CALLBACK_ENTER();
    /* Only the call_rcu thread counts here; the main thread reads it after rcu_drain(). */
    __atomic_fetch_add(&frees_done, 1, __ATOMIC_RELAXED);
    free(caa_container_of(head, struct ent, rcu));
}

static uint64_t hv_of(const struct model *m, uint32_t id)
{
    return hash_key(m->h, keys[id].p, keys[id].len) & m->mask;
}

static uint32_t pick_id(const struct model *m)
{
    uint64_t r = tap_rand(&rng);
    /* One op in 16 goes to the 1-byte, prefix and long keys, which are few. */
    if (m->nids > SPECIAL_IDS && (r & 15) == 0)
        return (uint32_t)((r >> 4) % SPECIAL_IDS);
    return (uint32_t)((r >> 4) % m->nids);
}

static void op_insert(struct model *m, uint32_t id)
{
    struct ent *e = ent_new(id);
    struct hash_entry *got = hash_insert(m->h, &e->he, hv_of(m, id));

    if (m->slot[id]) {
        CHECK(got == &m->slot[id]->he, "insert of present key %u returned another entry", id);
        free(e); /* never linked: no grace period needed */
    } else {
        CHECK(got == &e->he, "insert of absent key %u did not link it", id);
        if (got == &e->he) {
            m->slot[id] = e;
            m->count++;
        } else {
            free(e);
        }
    }
}

static void op_remove(struct model *m, uint32_t id)
{
    struct ent *e = m->slot[id];
    int rc;

    if (!e) {
        CHECK(hash_lookup(m->h, keys[id].p, keys[id].len, hv_of(m, id)) == NULL,
              "absent key %u found before remove", id);
        return;
    }
    rc = hash_remove(m->h, &e->he);
    CHECK(rc == 0, "remove of key %u: %d", id, rc);
    rc = hash_remove(m->h, &e->he);
    CHECK(rc == TXKV_NOTFOUND, "second remove of key %u: %d", id, rc);
    CHECK(hash_lookup(m->h, keys[id].p, keys[id].len, hv_of(m, id)) == NULL,
          "key %u found after its removal", id);
    m->slot[id] = NULL;
    m->count--;
    frees_queued++;
    /* Inside the section: readers (none here but the principle holds) may still see e. */
    rcu_defer(&e->rcu, ent_free_cb);
}

static void op_lookup(struct model *m, uint32_t id)
{
    struct hash_entry *got = hash_lookup(m->h, keys[id].p, keys[id].len, hv_of(m, id));
    struct ent *want = m->slot[id];

    CHECK(got == (want ? &want->he : NULL), "lookup of key %u: got %p, want %p", id, (void *)got,
          (void *)want);
    if (got) {
        struct ent *e = caa_container_of(got, struct ent, he);
        CHECK(e->id == id, "lookup of key %u found key %u", id, e->id);
    }
}

/* A key that is no key: a general key cut by one byte (still >= 2 bytes, starting 0xFE). */
static void op_lookup_miss(struct model *m, uint32_t id)
{
    if (id < GENERAL_FIRST)
        id = GENERAL_FIRST + id;
    if (id >= m->nids)
        return;
    size_t len = keys[id].len - 1;
    uint64_t hv = hash_key(m->h, keys[id].p, len) & m->mask;
    CHECK(hash_lookup(m->h, keys[id].p, len, hv) == NULL, "truncated key %u found", id);
}

static void check_count(struct model *m)
{
    size_t n = hash_count(m->h);
    CHECK(n == m->count, "count %zu, model %zu", n, m->count);
}

static void check_iteration(struct model *m)
{
    struct hash_iter it;
    size_t n = 0;

    memset(m->seen, 0, m->nids);
    rcu_read_enter();
    for (struct hash_entry *he = hash_first(m->h, &it); he; he = hash_next(m->h, &it)) {
        struct ent *e = caa_container_of(he, struct ent, he);
        uint32_t id = e->id;
        n++;
        if (id >= m->nids || m->slot[id] != e) {
            CHECK(0, "iteration returned an entry (id %u) the model does not have", id);
            continue;
        }
        CHECK(!m->seen[id], "iteration returned key %u twice", id);
        m->seen[id] = 1;
    }
    rcu_read_leave();
    CHECK(n == m->count, "iteration saw %zu entries, model has %zu", n, m->count);
}

/*
 * Random operations in three phases: growing, shrinking, then balanced, so
 * the table resizes both ways while we check it.
 */
static void run(struct model *m, uint32_t nops)
{
    static const unsigned mix[3][2] = {{60, 10}, {15, 55}, {40, 25}}; /* insert%, remove% */

    for (uint32_t i = 0; i < nops; i++) {
        const unsigned *w = mix[(uint64_t)i * 3 / nops];
        uint32_t id = pick_id(m);
        unsigned r = (unsigned)(tap_rand(&rng) % 100);

        if (i % OPS_PER_SECTION == 0) {
            if (i)
                rcu_read_leave();
            /* As an owner does: size the table for the count now and then. */
            if (i % OWNER_MAINTAIN_EVERY == 0)
                hash_maintain(m->h, m->count);
            rcu_read_enter();
        }
        if (r < w[0])
            op_insert(m, id);
        else if (r < w[0] + w[1])
            op_remove(m, id);
        else if (r < 95)
            op_lookup(m, id);
        else
            op_lookup_miss(m, id);
        if (i % COUNT_EVERY == COUNT_EVERY - 1)
            check_count(m);
        if (i % ITERATE_EVERY == ITERATE_EVERY - 1) {
            rcu_read_leave();
            /* A forced resize under the model's eye, for 1/16 or 8 times the
             * count: a shrink or a grow, which the next owner's call undoes. */
            hash_maintain(m->h, tap_rand(&rng) % 2 ? m->count / 16 : m->count * 8);
            check_iteration(m);
            rcu_read_enter();
        }
    }
    rcu_read_leave();
}

static void remove_all(struct model *m)
{
    rcu_read_enter();
    for (uint32_t id = 0; id < m->nids; id++)
        if (m->slot[id])
            op_remove(m, id);
    rcu_read_leave();
}

static void model_init(struct model *m, uint64_t seed, size_t initial, uint32_t nids, uint64_t mask)
{
    memset(m, 0, sizeof *m);
    if (hash_create(seed, initial, ent_key_of, &m->h) != 0)
        bail_out("hash_create failed");
    m->nids = nids;
    m->mask = mask;
    m->slot = calloc(nids, sizeof *m->slot);
    m->seen = malloc(nids);
    if (!m->slot || !m->seen)
        bail_out("out of memory");
}

static void model_fini(struct model *m)
{
    hash_destroy(m->h);
    free(m->slot);
    free(m->seen);
}

/*
 * hash_load: a batch of n entries for random ids (some already linked, some
 * twice in the batch) is loaded into m's table, sorted (tmp) or not; every
 * id ends up with exactly one entry, the one the table returns, and the
 * returned count of entries not linked, at the front of the batch, is
 * exactly the batch's surplus; a sorted batch of fresh keys comes back in
 * bucket order.  The model takes the linked ones.
 */
static void load_batch(struct model *m, size_t n, int sorted, int fresh)
{
    struct hash_load_item *it = malloc(n * sizeof *it), *tmp = malloc(n * sizeof *tmp);
    uint8_t *in = calloc(m->nids, 1);
    size_t surplus = 0;
    if (!it || !tmp || !in)
        bail_out("out of memory");
    for (size_t i = 0; i < n; i++) {
        uint32_t id = pick_id(m);
        while (fresh && (m->slot[id] || in[id])) /* fresh: only keys absent so far */
            id = (id + 1) % m->nids;
        struct ent *e = ent_new(id);
        it[i].hv = hv_of(m, id);
        it[i].e = &e->he;
        surplus += m->slot[id] || in[id];
        in[id] = 1;
    }
    uint64_t order;
    size_t ndup = hash_load(m->h, it, sorted ? tmp : NULL, n, m->count, &order);
    CHECK(ndup == surplus, "hash_load: %zu not linked, want %zu", ndup, surplus);
    for (size_t i = 1; sorted && !ndup && i < n; i++)
        CHECK((it[i - 1].hv & order) <= (it[i].hv & order), "hash_load: not in bucket order at %zu",
              i);
    rcu_read_enter();
    for (size_t i = 0; i < n; i++) {
        struct ent *e = caa_container_of(it[i].e, struct ent, he);
        struct hash_entry *got = hash_lookup(m->h, keys[e->id].p, keys[e->id].len, hv_of(m, e->id));
        if (i < ndup) {
            CHECK(got && got != &e->he, "hash_load: key %u reported unlinked but linked", e->id);
        } else {
            CHECK(got == &e->he, "hash_load: key %u reported linked, lookup disagrees", e->id);
            CHECK(!m->slot[e->id], "hash_load: key %u linked twice", e->id);
            m->slot[e->id] = e;
            m->count++;
        }
    }
    rcu_read_leave();
    for (size_t i = 0; i < ndup; i++) /* never linked: no grace period needed */
        free(caa_container_of(it[i].e, struct ent, he));
    free(it);
    free(tmp);
    free(in);
}

static void test_load(uint64_t seed)
{
    struct model m;
    for (int sorted = 0; sorted < 2; sorted++) {
        model_init(&m, mix64(seed + (uint64_t)sorted), 1, NKEYS, ~(uint64_t)0);
        load_batch(&m, 20000, sorted, 1); /* an empty table, grown for it; checks the order */
        load_batch(&m, 30000, sorted, 0); /* into a full one: many keys present */
        check_count(&m);
        check_iteration(&m);
        run(&m, 20000); /* the loaded table works on */
        check_iteration(&m);
        ok(failures == 0, "hash_load (%s) agrees with the model", sorted ? "sorted" : "unsorted");
        remove_all(&m);
        model_fini(&m);
    }
    model_init(&m, seed, 4, COLLIDE_KEYS, COLLIDE_MASK);
    load_batch(&m, 500, 1, 1);
    load_batch(&m, 2000, 1, 0);
    check_iteration(&m);
    ok(failures == 0, "hash_load with forced hash collisions agrees with the model");
    remove_all(&m);
    model_fini(&m);
}

/*
 * hash_maintain's policy and hash_stats, on h holding the n entries e[]:
 * only hash_maintain resizes, to a load in (1/2, 1] when it grows, not at
 * all while the load stays in [1/8, 1], and down again below 1/8; the
 * shape stays true to the entries through it all.
 */
static void test_sizing(struct hash_index *h, struct ent **e, size_t n)
{
    struct hash_stats st;
    size_t before = hash_mem(h);

    hash_stats(h, &st);
    is(st.entries, n, "hash_stats counts the entries");
    ok(st.max_chain >= 1 && st.max_chain <= n, "longest chain %zu", st.max_chain);
    ok(st.nodes_per_hit >= 1 && st.nodes_per_hit <= (double)(n + 1) / 2,
       "entries visited per hit %.2f", st.nodes_per_hit);
    hash_maintain(h, n);
    hash_stats(h, &st);
    ok(st.buckets >= n / 2 && st.buckets <= 2 * n,
       "hash_maintain(%zu) grew the table to a load near 1 (%zu buckets walked)", n, st.buckets);
    ok(hash_mem(h) >= 64 * 16 && hash_mem(h) < 256 * 16, "hash_mem follows: %zu (%zu before)",
       hash_mem(h), before);
    ok(st.nodes_per_hit < 2.5, "entries visited per hit after the grow: %.2f", st.nodes_per_hit);
    size_t grown = hash_mem(h);
    hash_maintain(h, n / 4);
    is(hash_mem(h), grown, "a load of 1/4 keeps the size");
    hash_maintain(h, 2 * n);
    ok(hash_mem(h) > grown, "a load of 2 grows it");
    hash_maintain(h, 1);
    ok(hash_mem(h) < grown, "a load under 1/8 shrinks it");
    hash_stats(h, &st);
    is(st.entries, n, "no entry lost through the resizes");
    size_t found = 0;
    rcu_read_enter();
    for (size_t i = 0; i < n; i++) {
        uint32_t id = e[i]->id;
        found += hash_lookup(h, keys[id].p, keys[id].len, hash_key(h, keys[id].p, keys[id].len)) ==
                 &e[i]->he;
    }
    rcu_read_leave();
    is(found, n, "every entry found after the resizes");
}

/* hash_create's arguments, hash_key, and destroying a table that still has entries. */
static void test_basics(uint64_t seed)
{
    struct hash_index *h = NULL, *h2 = NULL;
    struct ent *e[100];
    size_t mem0, mem1;

    is(hash_create(seed, 16, ent_key_of, NULL), TXKV_INVALID,
       "hash_create rejects a NULL result pointer");
    is(hash_create(seed, 16, NULL, &h), TXKV_INVALID, "hash_create rejects a NULL key_of");
    ok(h == NULL, "and leaves no index behind");
    is(hash_create(seed, 0, ent_key_of, &h), 0, "hash_create with initial size 0");
    is(hash_create(seed + 1, 1000, ent_key_of, &h2), 0,
       "hash_create with a size that is no power of two");
    ok(hash_key(h, "abc", 3) == hash_key(h, "abc", 3), "hash_key is deterministic");
    ok(hash_key(h, "abc", 3) != hash_key(h2, "abc", 3), "hash_key depends on the seed");
    ok(hash_key(h, "abc", 3) != hash_key(h, "abc", 2), "hash_key covers every byte");
    is(hash_count(h), 0, "a new table is empty");
    mem0 = hash_mem(h);
    ok(mem0 > 0, "hash_mem of an empty table: %zu", mem0);

    rcu_read_enter();
    for (uint32_t i = 0; i < 100; i++) {
        uint32_t id = GENERAL_FIRST + i;
        e[i] = ent_new(id);
        hash_insert(h, &e[i]->he, hash_key(h, keys[id].p, keys[id].len));
    }
    rcu_read_leave();
    is(hash_count(h), 100, "100 entries counted");
    mem1 = hash_mem(h);
    ok(mem1 >= mem0, "hash_mem does not drop as the table fills (%zu -> %zu)", mem0, mem1);
    test_sizing(h, e, 100);
    /* Entries still linked: hash_destroy unlinks them, the table must not leak. */
    hash_destroy(h);
    hash_destroy(h2);
    hash_destroy(NULL);
    ok(1, "hash_destroy of a table with entries (LeakSanitizer checks it freed the table)");
    for (uint32_t i = 0; i < 100; i++)
        free(e[i]);
}

int main(void)
{
    struct model m;
    uint64_t seed = tap_seed();

    rng = seed;
    no_plan();
    keys_init();
    test_basics(seed);

    model_init(&m, mix64(seed), 1, NKEYS, ~(uint64_t)0);
    run(&m, NOPS);
    ok(failures == 0, "%u random operations agree with the model", NOPS);
    diag("%zu entries at the end of the random phase", m.count);
    check_count(&m);
    check_iteration(&m);
    ok(failures == 0, "final count and iteration agree with the model");
    remove_all(&m);
    is(hash_count(m.h), 0, "empty after removing everything");
    check_iteration(&m);
    ok(failures == 0, "iteration of the emptied table returns nothing");
    model_fini(&m);

    test_load(seed);

    /* Keys 0..1023: 1-byte keys and prefixes of one another, 16 hash values. */
    model_init(&m, seed, 4, COLLIDE_KEYS, COLLIDE_MASK);
    run(&m, COLLIDE_OPS);
    check_iteration(&m);
    ok(failures == 0, "%u operations with forced hash collisions agree with the model",
       COLLIDE_OPS);
    remove_all(&m);
    is(hash_count(m.h), 0, "collision table empty after removing everything");
    model_fini(&m);

    rcu_drain();
    is(__atomic_load_n(&frees_done, __ATOMIC_RELAXED), frees_queued,
       "every deferred free ran by rcu_drain()");
    free(pattern);
    free(general);
    return done_testing();
}
