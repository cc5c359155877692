/*
 * hash-concurrent.c - the hash index under 6 threads (more than this
 * machine's cores, so threads are preempted inside read-side sections).
 *
 * Key ids fall in four groups:
 *   stable  inserted before the threads start and never removed: every
 *           lookup must find them, and every full iteration must return
 *           each exactly once, however the table resizes meanwhile;
 *   owned   each thread has its own range and is the only one to insert or
 *           remove there, so it knows exactly what a lookup or a full
 *           iteration must return for those keys, and the main thread can
 *           check after the join that no key was lost or duplicated;
 *   shared  all threads insert and remove the same few keys.  On the
 *           "counted" half a remover first claims the entry and lowers the
 *           key's counter, then unlinks it; an inserter whose entry got
 *           linked raises the counter, which therefore must not have been
 *           above 0: a second linked entry for a key is caught the moment
 *           it is counted.  On the "raced" half removers race in hash_remove
 *           itself; exactly one may win each entry, and the tallies of
 *           linked inserts and won removes must explain what is left;
 *   foreign other threads' owned keys: a lookup may return an entry or
 *           NULL, but an entry must carry the key asked for.
 * The table starts with one bucket and the threads take turns calling
 * hash_maintain(), the only thing that resizes it, for the true count or a
 * much smaller or larger one, so it grows and shrinks while all this runs.
 * Threads start together on a barrier; nothing waits by sleeping.
 * The operation count is scaled by TXKV_STRESS (make stress).
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "index/hash.h"
#include "../tap.h"
#include "txkv.h"

#define NTHREADS              6
#define NSTABLE               1024u
#define NSHARED               16u /* the first NCOUNTED are counted, the rest raced */
#define NCOUNTED              8u
#define RANGE                 4096u /* owned ids per thread */
#define SHARED_FIRST          NSTABLE
#define OWNED_FIRST           (NSTABLE + NSHARED)
#define NIDS                  (OWNED_FIRST + NTHREADS * RANGE)
#define OPS_PER_SECTION       16u
#define FULL_ITERATION_EVERY  2000u
#define PARTIAL_ITERATION_LEN 256u
#define MAINTAIN_EVERY        1024u /* ops; a multiple of OPS_PER_SECTION */
/* Per thread at TXKV_STRESS=1; TSan runs each access ~10x slower, so it does less. */
#ifdef TXKV_TSAN
#define OPS_PER_THREAD 20000u
#else
#define OPS_PER_THREAD 150000u
#endif

struct key {
    uint8_t *p;
    uint32_t len;
};

struct ent {
    struct hash_entry he;
    struct rcu_head rcu;
    uint32_t id;
    int claimed; /* shared keys: set by the one remover of this entry */
    uint8_t key[];
};

struct worker {
    pthread_t th;
    int t;
    uint64_t rng;
    uint32_t nops;
    struct ent *slot[RANGE]; /* this thread's owned keys: the entry linked, or NULL */
    size_t present;
    long shared_net[NSHARED]; /* raced keys: inserts that linked ours - removes won */
    uint32_t *stamp;          /* per id: the full iteration that last saw it */
    unsigned failures;
    unsigned long full_iterations, foreign_found;
};

static struct key keys[NIDS];
static struct hash_index *h;
static pthread_barrier_t start;
static struct worker workers[NTHREADS];
static int linked[NCOUNTED]; /* counted keys: entries linked and not claimed for removal */

#define CHECK(w, cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond) && (w)->failures++ < 10)                                                       \
            diag(__VA_ARGS__);                                                                     \
    } while (0)

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Ids below 256 are 1-byte keys; the rest are 0xFE, the id in 3 bytes, filler: 4..43 bytes. */
static void keys_init(void)
{
    for (uint32_t id = 0; id < NIDS; id++) {
        uint32_t len = id < 256 ? 1 : 4 + (uint32_t)(mix64(id) % 40);
        uint8_t *p = malloc(len);
        if (!p)
            bail_out("out of memory");
        if (id < 256) {
            p[0] = (uint8_t)id;
        } else {
            p[0] = 0xFE;
            p[1] = (uint8_t)(id >> 16);
            p[2] = (uint8_t)(id >> 8);
            p[3] = (uint8_t)id;
            for (uint32_t i = 4; i < len; i++)
                p[i] = (uint8_t)mix64((uint64_t)id << 8 | i);
        }
        keys[id] = (struct key){p, len};
    }
}

static struct ent *ent_new(uint32_t id)
{
    struct ent *e = malloc(sizeof *e + keys[id].len);
    if (!e)
        bail_out("out of memory");
    memcpy(e->key, keys[id].p, keys[id].len);
    e->id = id;
    e->claimed = 0;
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
    free(caa_container_of(head, struct ent, rcu));
}

static struct hash_entry *lookup(uint32_t id)
{
    return hash_lookup(h, keys[id].p, keys[id].len, hash_key(h, keys[id].p, keys[id].len));
}

static struct hash_entry *insert(struct ent *e)
{
    return hash_insert(h, &e->he, hash_key(h, e->key, keys[e->id].len));
}

/* An entry some lookup or walk returned must be a live entry for a key of ours. */
static int entry_sane(const struct hash_entry *he, uint32_t *idp)
{
    const struct ent *e = caa_container_of(he, struct ent, he);
    uint32_t id = e->id;

    *idp = id;
    return id < NIDS && memcmp(e->key, keys[id].p, keys[id].len) == 0;
}

/* The hash_entry a thread has linked for its i-th owned key, or NULL. */
static struct hash_entry *slot_entry(const struct worker *w, uint32_t i)
{
    return w->slot[i] ? &w->slot[i]->he : NULL;
}

static void op_owned_insert(struct worker *w, uint32_t i)
{
    uint32_t id = OWNED_FIRST + (uint32_t)w->t * RANGE + i;
    struct ent *e = ent_new(id);
    struct hash_entry *got = insert(e);

    if (w->slot[i]) {
        CHECK(w, got == &w->slot[i]->he, "thread %d: insert of present key %u: other entry", w->t,
              id);
        free(e);
    } else if (got == &e->he) {
        w->slot[i] = e;
        w->present++;
    } else {
        CHECK(w, 0, "thread %d: insert of absent key %u did not link it", w->t, id);
        free(e);
    }
}

static void op_owned_remove(struct worker *w, uint32_t i)
{
    uint32_t id = OWNED_FIRST + (uint32_t)w->t * RANGE + i;
    struct ent *e = w->slot[i];
    int rc;

    if (!e)
        return;
    rc = hash_remove(h, &e->he);
    CHECK(w, rc == 0, "thread %d: remove of key %u: %d", w->t, id, rc);
    rc = hash_remove(h, &e->he);
    CHECK(w, rc == TXKV_NOTFOUND, "thread %d: second remove of key %u: %d", w->t, id, rc);
    CHECK(w, lookup(id) == NULL, "thread %d: key %u found after its removal", w->t, id);
    w->slot[i] = NULL;
    w->present--;
    rcu_defer(&e->rcu, ent_free_cb);
}

static void op_owned_lookup(struct worker *w, uint32_t i)
{
    uint32_t id = OWNED_FIRST + (uint32_t)w->t * RANGE + i;
    struct hash_entry *got = lookup(id);

    CHECK(w, got == slot_entry(w, i), "thread %d: lookup of own key %u", w->t, id);
}

static void op_stable_lookup(struct worker *w, uint32_t id)
{
    struct hash_entry *got = lookup(id);
    uint32_t gid;

    CHECK(w, got && entry_sane(got, &gid) && gid == id, "thread %d: stable key %u %s", w->t, id,
          got ? "wrong" : "not found");
}

/* Inserting a key that is present must return the entry present, never link a duplicate. */
static void op_stable_insert(struct worker *w, uint32_t id)
{
    struct ent *e = ent_new(id);
    struct hash_entry *got = insert(e);
    uint32_t gid;

    CHECK(w, got != &e->he && entry_sane(got, &gid) && gid == id,
          "thread %d: insert of stable key %u was not refused", w->t, id);
    if (got != &e->he)
        free(e);
}

static void op_foreign_lookup(struct worker *w, uint32_t id)
{
    struct hash_entry *got = lookup(id);
    uint32_t gid;

    if (got) {
        w->foreign_found++;
        CHECK(w, entry_sane(got, &gid) && gid == id, "thread %d: foreign key %u: wrong entry", w->t,
              id);
    }
}

static void op_shared_insert(struct worker *w, uint32_t s)
{
    uint32_t id = SHARED_FIRST + s, gid;
    struct ent *e = ent_new(id);
    struct hash_entry *got = insert(e);

    if (got != &e->he) {
        CHECK(w, entry_sane(got, &gid) && gid == id, "thread %d: shared key %u: wrong entry", w->t,
              id);
        free(e);
    } else if (s < NCOUNTED) {
        /* A remover may claim and uncount e before we count it, so the counter can be
         * below 0 here; it can be above 0 only if another entry is counted, and so
         * still linked, while e is. */
        int before = __atomic_fetch_add(&linked[s], 1, __ATOMIC_SEQ_CST);
        CHECK(w, before <= 0, "thread %d: shared key %u linked while another entry was", w->t, id);
    } else {
        w->shared_net[s]++;
    }
}

static void op_shared_remove(struct worker *w, uint32_t s)
{
    uint32_t id = SHARED_FIRST + s;
    struct hash_entry *got = lookup(id);
    struct ent *e;
    int zero = 0, rc;

    if (!got)
        return;
    e = caa_container_of(got, struct ent, he);
    if (s < NCOUNTED) {
        /* Claim, uncount, unlink: the counter never covers an unlinked entry. */
        if (!__atomic_compare_exchange_n(&e->claimed, &zero, 1, 0, __ATOMIC_SEQ_CST,
                                         __ATOMIC_SEQ_CST))
            return;
        __atomic_fetch_sub(&linked[s], 1, __ATOMIC_SEQ_CST);
        rc = hash_remove(h, got);
        CHECK(w, rc == 0, "thread %d: claimed shared key %u: remove %d", w->t, id, rc);
    } else {
        /* Several threads may find the same entry; exactly one remove returns 0. */
        if (hash_remove(h, got) != 0)
            return;
        CHECK(w,
              __atomic_compare_exchange_n(&e->claimed, &zero, 1, 0, __ATOMIC_SEQ_CST,
                                          __ATOMIC_SEQ_CST),
              "thread %d: shared key %u: two removes of one entry returned 0", w->t, id);
        w->shared_net[s]--;
    }
    rcu_defer(&e->rcu, ent_free_cb);
}

static void op_partial_iteration(struct worker *w)
{
    struct hash_iter it;
    uint32_t n = 0, id;

    for (struct hash_entry *he = hash_first(h, &it); he && n < PARTIAL_ITERATION_LEN;
         he = hash_next(h, &it), n++)
        CHECK(w, entry_sane(he, &id), "thread %d: iteration returned a bad entry", w->t);
}

/*
 * Stable keys are linked for the whole walk: each is returned exactly once.
 * This thread's own keys cannot change during the walk: the walk returns
 * exactly those it has linked.  Anyone else's may be seen or not.
 */
static void op_full_iteration(struct worker *w)
{
    struct hash_iter it;
    uint32_t gen = (uint32_t)++w->full_iterations, id, own_lo, stable = 0;
    size_t own = 0;

    own_lo = OWNED_FIRST + (uint32_t)w->t * RANGE;
    for (struct hash_entry *he = hash_first(h, &it); he; he = hash_next(h, &it)) {
        if (!entry_sane(he, &id)) {
            CHECK(w, 0, "thread %d: full iteration returned a bad entry", w->t);
            continue;
        }
        if (id < NSTABLE) {
            CHECK(w, w->stamp[id] != gen, "thread %d: stable key %u returned twice", w->t, id);
            stable += w->stamp[id] != gen;
        } else if (id >= own_lo && id < own_lo + RANGE) {
            CHECK(w, w->stamp[id] != gen, "thread %d: own key %u returned twice", w->t, id);
            CHECK(w, slot_entry(w, id - own_lo) == he, "thread %d: own key %u: wrong entry", w->t,
                  id);
            own += w->stamp[id] != gen;
        }
        w->stamp[id] = gen;
    }
    CHECK(w, stable == NSTABLE, "thread %d: full iteration saw %u of %u stable keys", w->t, stable,
          NSTABLE);
    CHECK(w, own == w->present, "thread %d: full iteration saw %zu of its %zu keys", w->t, own,
          w->present);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    pthread_barrier_wait(&start);
    rcu_read_enter();
    for (uint32_t i = 0; i < w->nops; i++) {
        uint64_t r = tap_rand(&w->rng);
        uint32_t pct = (uint32_t)(r % 1000), x = (uint32_t)(r >> 32);

        if (i % OPS_PER_SECTION == 0) {
            rcu_read_leave();
            /* Resizes while the other threads run, one thread at a time: for the
             * true count, or for one 1/16 to 8 times it, forcing shrinks and grows. */
            if (i % MAINTAIN_EVERY == 0 && w->t == (int)(i / MAINTAIN_EVERY) % NTHREADS) {
                size_t n = hash_count(h);
                hash_maintain(h, x % 4 < 2 ? n : x % 4 == 2 ? n / 16 : n * 8);
            }
            rcu_read_enter();
        }
        if (i % FULL_ITERATION_EVERY == FULL_ITERATION_EVERY - 1)
            op_full_iteration(w);
        else if (pct < 250)
            op_owned_insert(w, x % RANGE);
        else if (pct < 450)
            op_owned_remove(w, x % RANGE);
        else if (pct < 620)
            op_owned_lookup(w, x % RANGE);
        else if (pct < 740)
            op_stable_lookup(w, x % NSTABLE);
        else if (pct < 790)
            op_stable_insert(w, x % NSTABLE);
        else if (pct < 880)
            op_foreign_lookup(w, OWNED_FIRST + x % (NTHREADS * RANGE));
        else if (pct < 930)
            op_shared_insert(w, x % NSHARED);
        else if (pct < 980)
            op_shared_remove(w, x % NSHARED);
        else
            op_partial_iteration(w);
    }
    rcu_read_leave();
    return NULL;
}

/* After the join: every key where the model says, the count right, each key seen once. */
static void check_final(struct ent **stable, long *shared_net)
{
    struct hash_iter it;
    unsigned bad_lookup = 0, bad_iter = 0, twice = 0;
    size_t want = NSTABLE, n = 0, shared_present = 0;
    uint8_t *seen = calloc(NIDS, 1);

    if (!seen)
        bail_out("out of memory");
    rcu_read_enter();
    for (uint32_t id = 0; id < NSTABLE; id++)
        bad_lookup += lookup(id) != &stable[id]->he;
    for (uint32_t s = 0; s < NSHARED; s++) {
        struct hash_entry *got = lookup(SHARED_FIRST + s);
        shared_present += got != NULL;
        bad_lookup += (s < NCOUNTED ? linked[s] : shared_net[s]) != (got ? 1 : 0);
    }
    for (int t = 0; t < NTHREADS; t++) {
        struct worker *w = &workers[t];
        want += w->present;
        for (uint32_t i = 0; i < RANGE; i++)
            bad_lookup += lookup(OWNED_FIRST + (uint32_t)t * RANGE + i) != slot_entry(w, i);
    }
    want += shared_present;
    for (struct hash_entry *he = hash_first(h, &it); he; he = hash_next(h, &it)) {
        uint32_t id;
        n++;
        if (!entry_sane(he, &id)) {
            bad_iter++;
            continue;
        }
        twice += seen[id];
        seen[id] = 1;
        if (id >= OWNED_FIRST) {
            struct worker *w = &workers[(id - OWNED_FIRST) / RANGE];
            bad_iter += slot_entry(w, (id - OWNED_FIRST) % RANGE) != he;
        }
    }
    rcu_read_leave();
    is(bad_lookup, 0, "after the threads: every lookup agrees with the per-thread models");
    is(hash_count(h), want, "after the threads: count = stable + owned + shared left");
    is(n, want, "after the threads: iteration returns as many entries as the models have");
    is(bad_iter, 0, "after the threads: iteration returns only entries the models have");
    is(twice, 0, "after the threads: iteration returns no key twice");
    free(seen);
}

static void remove_all(void)
{
    struct hash_iter it;

    rcu_read_enter();
    /* Removing the current entry during a walk is allowed. */
    for (struct hash_entry *he = hash_first(h, &it); he; he = hash_next(h, &it)) {
        if (hash_remove(h, he) == 0)
            rcu_defer(&caa_container_of(he, struct ent, he)->rcu, ent_free_cb);
    }
    rcu_read_leave();
}

int main(void)
{
    uint64_t seed = tap_seed();
    uint32_t nops = (uint32_t)(OPS_PER_THREAD * tap_scale());
    struct ent **stable = calloc(NSTABLE, sizeof *stable);
    long shared_net[NSHARED] = {0};
    unsigned failures = 0;
    unsigned long full = 0, foreign = 0;

    no_plan();
    if (!stable)
        bail_out("out of memory");
    keys_init();
    is(hash_create(seed, 1, ent_key_of, &h), 0, "hash_create");

    rcu_read_enter();
    for (uint32_t id = 0; id < NSTABLE; id++) {
        stable[id] = ent_new(id);
        if (insert(stable[id]) != &stable[id]->he)
            bail_out("stable key refused");
    }
    rcu_read_leave();

    pthread_barrier_init(&start, NULL, NTHREADS);
    for (int t = 0; t < NTHREADS; t++) {
        struct worker *w = &workers[t];
        w->t = t;
        w->rng = mix64(seed + (uint64_t)t);
        w->nops = nops;
        w->stamp = calloc(NIDS, sizeof *w->stamp);
        if (!w->stamp || pthread_create(&w->th, NULL, worker_main, w) != 0)
            bail_out("cannot start a thread");
    }
    for (int t = 0; t < NTHREADS; t++) {
        struct worker *w = &workers[t];
        pthread_join(w->th, NULL);
        failures += w->failures;
        full += w->full_iterations;
        foreign += w->foreign_found;
        for (uint32_t s = 0; s < NSHARED; s++)
            shared_net[s] += w->shared_net[s];
        free(w->stamp);
    }
    pthread_barrier_destroy(&start);
    diag("%d threads x %u operations, %lu full iterations, %lu foreign keys found", NTHREADS, nops,
         full, foreign);
    is(failures, 0, "no thread saw a lookup, insert, remove or iteration go wrong");

    check_final(stable, shared_net);
    remove_all();
    is(hash_count(h), 0, "empty after removing everything");
    hash_destroy(h);
    rcu_drain();
    free(stable);
    for (uint32_t id = 0; id < NIDS; id++)
        free(keys[id].p);
    return done_testing();
}
