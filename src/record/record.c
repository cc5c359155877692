/*
 * record.c - a record's life: created latched by its first writer, linked
 * into its keyspace's indexes (keyspace.c), queued when its newest version
 * is a tombstone, retired when the GC takes it out of the indexes, freed
 * after every transaction that could hold it has ended (src/gc/).
 *
 * Owns: the record store's counters, clock and queues.  queue_mu guards
 * tomb_queue, retired and every record's `queued`; it is a leaf lock (held
 * for a list splice, never while taking a latch or another mutex).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "record/record.h"

/* Share of each record for its hash bucket and B+tree slot (approximate). */
#define INDEX_BYTES_PER_RECORD 48

size_t record_bytes(size_t klen)
{
    return sizeof(struct record) + klen + INDEX_BYTES_PER_RECORD;
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
    atomic_init(&s->gc_freed, 0);
    pthread_mutex_init(&s->queue_mu, NULL);
    s->tomb_queue = s->retired = NULL;
}

void record_store_fini(struct record_store *s)
{
    struct record *lists[2] = {s->tomb_queue, s->retired};
    s->tomb_queue = s->retired = NULL;
    for (int i = 0; i < 2; i++)
        while (lists[i]) {
            struct record *nx = lists[i]->gc_next;
            record_free_now(s, lists[i]);
            lists[i] = nx;
        }
    pthread_mutex_destroy(&s->queue_mu);
}

struct record *record_new(struct txkv_ks *ks, const void *key, size_t klen, uintptr_t owner)
{
    struct record *r = malloc(sizeof *r + klen);
    if (!r)
        return NULL;
    memset(r, 0, sizeof *r);
    memcpy(r->key, key, klen);
    r->klen = (uint32_t)klen;
    r->ks = ks;
    r->he.key = r->key;
    r->he.klen = (uint32_t)klen;
    atomic_init(&r->head, NULL);
    atomic_init(&r->latch, owner);
    atomic_init(&r->dead, 0);
    rcu_publish_hb(r);
    return r;
}

void record_free_now(struct record_store *s, struct record *r)
{
    assert(!r->ls && !atomic_load_explicit(&r->plock, memory_order_relaxed));
    struct version *v = atomic_load_explicit(&r->head, memory_order_relaxed);
    while (v) {
        struct version *nx = atomic_load_explicit(&v->next, memory_order_relaxed);
        mem_release(&s->mem, version_bytes(v->vlen));
        atomic_fetch_sub_explicit(&s->nversions, 1, memory_order_relaxed);
        version_free_now(v);
        v = nx;
    }
    mem_release(&s->mem, record_bytes(r->klen));
    free(r);
}

void record_queue_tombstone(struct record_store *s, struct record *r)
{
    pthread_mutex_lock(&s->queue_mu);
    if (!r->queued) {
        r->queued = 1;
        r->gc_next = s->tomb_queue;
        s->tomb_queue = r;
    }
    pthread_mutex_unlock(&s->queue_mu);
}

void record_retire(struct record_store *s, struct record *r)
{
    assert(atomic_load(&r->dead));
    r->retire_ts = atomic_load(&s->visible_ts);
    pthread_mutex_lock(&s->queue_mu);
    r->queued = 1;
    r->gc_next = s->retired;
    s->retired = r;
    pthread_mutex_unlock(&s->queue_mu);
}

static struct record *take(struct record_store *s, struct record **list)
{
    pthread_mutex_lock(&s->queue_mu);
    struct record *l = *list;
    *list = NULL;
    pthread_mutex_unlock(&s->queue_mu);
    return l;
}

struct record *record_take_tombstones(struct record_store *s)
{
    return take(s, &s->tomb_queue);
}

struct record *record_take_retired(struct record_store *s)
{
    return take(s, &s->retired);
}

void record_requeue(struct record_store *s, struct record *list, bool tomb)
{
    struct record **dst = tomb ? &s->tomb_queue : &s->retired;
    pthread_mutex_lock(&s->queue_mu);
    while (list) {
        struct record *nx = list->gc_next;
        assert(list->queued);
        list->gc_next = *dst;
        *dst = list;
        list = nx;
    }
    pthread_mutex_unlock(&s->queue_mu);
}

void record_unqueue(struct record_store *s, struct record *r)
{
    pthread_mutex_lock(&s->queue_mu);
    r->queued = 0;
    pthread_mutex_unlock(&s->queue_mu);
}

void latch_wait(struct record *r, uintptr_t owner)
{
    struct spin s = {0};
    while (atomic_load_explicit(&r->latch, memory_order_relaxed) || !latch_try(r, owner))
        spin_wait(&s);
}
