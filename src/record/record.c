/*
 * record.c - a record's life: created latched by its first writer, linked
 * into its keyspace's indexes (keyspace.c), queued when its newest version
 * is a tombstone, retired when the GC takes it out of the indexes, freed
 * after every transaction that could hold it has ended (src/gc/).  And the
 * limbo: batches of objects freed after a grace period.
 *
 * Owns: the record store's counters, clock and retire list.  queue_mu
 * guards the retire list, the keyspaces' tombstone queues and every
 * record's REC_QUEUED and gc_next; it is a leaf lock (held for a list
 * splice, never while taking a latch or another mutex).
 *
 * Why limbo batches and not an rcu_head per object: a record or version
 * would carry 16 bytes for a callback it uses once, and each call_rcu is a
 * queue operation and a callback invocation.  A batch of 61 pointers pays
 * one of each.  A thread fills its own batch (a transaction's, the GC's)
 * and hands it to liburcu when it is full or the thread's unit of work
 * ends, so nothing waits in a batch for long.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "record/keyspace.h"
#include "record/record.h"

/* Share of each record for its hash bucket and B+tree slot (approximate). */
#define INDEX_BYTES_PER_RECORD 48

static size_t pad8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

size_t record_icap(size_t vlen, bool has_value)
{
    return has_value && vlen <= RECORD_INLINE_MAX ? pad8(vlen) : 0;
}

static size_t record_alloc_size(size_t klen, bool slot, size_t icap)
{
    return sizeof(struct record) + pad8(klen) + (slot ? sizeof(struct version) + icap : 0);
}

size_t record_bytes(size_t klen, bool slot, size_t icap)
{
    return record_alloc_size(klen, slot, icap) + INDEX_BYTES_PER_RECORD;
}

size_t version_bytes(size_t vlen)
{
    return sizeof(struct version) + vlen;
}

void record_store_init(struct record_store *s, size_t mem_limit)
{
    /* Timestamp 1 is "the empty database"; commits start at 2. */
    atomic_init(&s->next_ts, 1);
    atomic_init(&s->visible_ts, 1);
    mem_init(&s->mem, mem_limit);
    atomic_init(&s->nkeys, 0);
    atomic_init(&s->nversions, 0);
    atomic_init(&s->nooline, 0);
    atomic_init(&s->gc_freed, 0);
    pthread_mutex_init(&s->queue_mu, NULL);
    s->retired = NULL;
}

void clock_wait_visible(struct record_store *s, uint64_t ts)
{
    struct spin sp = {0};
    /* acquire: everything installed under ts happens before our return */
    while (atomic_load_explicit(&s->visible_ts, memory_order_acquire) < ts)
        spin_wait(&sp);
}

void record_store_fini(struct record_store *s)
{
    while (s->retired) {
        struct record *nx = s->retired->gc_next;
        record_free_now(s, s->retired);
        s->retired = nx;
    }
    pthread_mutex_destroy(&s->queue_mu);
}

struct record *record_new(const void *key, size_t klen, bool slot, size_t icap, latch_t owner)
{
    assert(klen <= UINT16_MAX && icap <= RECORD_INLINE_MAX && icap % 8 == 0);
    struct record *r = malloc(record_alloc_size(klen, slot, icap));
    if (!r)
        return NULL;
    memset(r, 0, sizeof *r);
    memcpy(r->key, key, klen);
    r->klen = (uint16_t)klen;
    r->icap8 = (uint8_t)(icap / 8);
    atomic_init(&r->head, NULL);
    atomic_init(&r->latch, owner);
    atomic_init(&r->flags, slot ? REC_SLOT : 0);
    if (slot) {
        struct version *sv = record_slot(r);
        memset(sv, 0, sizeof *sv);
        sv->inl = 1;
    }
    rcu_publish_hb(r);
    return r;
}

void record_free_now(struct record_store *s, struct record *r)
{
    assert(!(atomic_load_explicit(&r->flags, memory_order_relaxed) & REC_LOCKED));
    struct version *v = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (record_promotable(r, v))
        atomic_fetch_sub_explicit(&s->nooline, 1, memory_order_relaxed);
    while (v) {
        struct version *nx = atomic_load_explicit(&v->next, memory_order_relaxed);
        atomic_fetch_sub_explicit(&s->nversions, 1, memory_order_relaxed);
        if (!v->inl) {
            mem_release(&s->mem, version_bytes(v->vlen));
            version_free_now(v);
        }
        v = nx;
    }
    bool slot = atomic_load_explicit(&r->flags, memory_order_relaxed) & REC_SLOT;
    mem_release(&s->mem, record_bytes(r->klen, slot, record_slot_cap(r)));
    free(r);
}

void record_retire(struct record_store *s, struct record *r)
{
    assert(record_dead(r));
    pthread_mutex_lock(&s->queue_mu);
    atomic_fetch_or_explicit(&r->flags, REC_QUEUED, memory_order_relaxed);
    r->gc_next = s->retired;
    s->retired = r;
    pthread_mutex_unlock(&s->queue_mu);
}

struct record *record_take_retired(struct record_store *s)
{
    pthread_mutex_lock(&s->queue_mu);
    struct record *l = s->retired;
    s->retired = NULL;
    pthread_mutex_unlock(&s->queue_mu);
    return l;
}

void record_requeue_retired(struct record_store *s, struct record *list)
{
    pthread_mutex_lock(&s->queue_mu);
    while (list) {
        struct record *nx = list->gc_next;
        list->gc_next = s->retired;
        s->retired = list;
        list = nx;
    }
    pthread_mutex_unlock(&s->queue_mu);
}

void latch_wait(struct record *r, latch_t owner)
{
    struct spin s = {0};
    while (atomic_load_explicit(&r->latch, memory_order_relaxed) || !latch_try(r, owner))
        spin_wait(&s);
}

/* ---- limbo --------------------------------------------------------------- */

#define LIMBO_CAP 61

struct limbo_batch {
    struct rcu_head rcu;
    struct record_store *s;
    uint32_t n;
    uintptr_t p[LIMBO_CAP]; /* an out-of-line version, or a record | 1 */
};

static void limbo_free_one(struct record_store *s, uintptr_t p)
{
    if (p & 1) {
        record_free_now(s, (struct record *)(p & ~(uintptr_t)1));
    } else {
        struct version *v = (struct version *)p;
        mem_release(&s->mem, version_bytes(v->vlen));
        version_free_now(v);
    }
    atomic_fetch_add_explicit(&s->gc_freed, 1, memory_order_relaxed);
}

static void limbo_cb(struct rcu_head *h)
{
    RCU_CALLBACK_ENTER();
    struct limbo_batch *b = container_of_(h, struct limbo_batch, rcu);
    for (uint32_t i = 0; i < b->n; i++)
        limbo_free_one(b->s, b->p[i]);
    free(b);
    RCU_CALLBACK_EXIT();
}

void limbo_flush(struct limbo *l)
{
    struct limbo_batch *b = l->b;
    if (!b)
        return;
    l->b = NULL;
    rcu_defer(&b->rcu, limbo_cb);
}

bool limbo_ready(struct limbo *l, struct record_store *s)
{
    if (l->b && l->b->s != s)
        limbo_flush(l);
    if (!l->b) {
        struct limbo_batch *b = malloc(sizeof *b);
        if (!b)
            return false;
        b->s = s;
        b->n = 0;
        l->b = b;
    }
    return true;
}

static void limbo_add(struct limbo *l, struct record_store *s, uintptr_t p)
{
    if (!limbo_ready(l, s)) {
        /* No memory for a batch: wait for the grace period here if we
         * may (outside a read-side section); inside one (the GC's
         * sweep) the object is freed at once, which V1 (version.c)
         * shows is safe for versions cut below W, the only thing freed
         * there (a cut between A and W goes through limbo_ready). */
        if (!urcu_memb_read_ongoing())
            urcu_memb_synchronize_rcu();
        else
            assert(!(p & 1));
        limbo_free_one(s, p);
        return;
    }
    struct limbo_batch *b = l->b;
    b->p[b->n++] = p;
    if (b->n == LIMBO_CAP)
        limbo_flush(l);
}

void limbo_add_version(struct limbo *l, struct record_store *s, struct version *v)
{
    assert(!v->inl);
    limbo_add(l, s, (uintptr_t)v);
}

void limbo_add_record(struct limbo *l, struct record_store *s, struct record *r)
{
    limbo_add(l, s, (uintptr_t)r | 1);
}
