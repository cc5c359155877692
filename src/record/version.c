/*
 * version.c - version chains: allocation, visibility, installing (inline or
 * out of line), pruning, promotion back inline.
 *
 * A record's chain is newest first and holds only committed versions, each
 * with its final commit timestamp (version_install stamps it as it links
 * it, under the latch, after the commit took its timestamp).  So visibility
 * is a pure timestamp test: a reader with read timestamp R sees the first
 * version with ts <= R.  A commit with ts <= R is completely installed
 * before the visible timestamp reaches R (src/txn/commit.c publishes in
 * timestamp order), so R never shows half a commit.
 *
 * Readers walk the chain inside an RCU read-side section with acquire loads
 * (pairing with the release store of head in version_install).
 *
 * Pruning (latch held), with bounds Y >= O (src/gc/: every active or
 * future reader reads at >= Y, except readers of exactly O, a checkpoint's
 * snapshot; O == Y when there is none): keep every version with ts > Y,
 * the newest version A with ts <= Y, the newest version W with ts <= O,
 * and the inline slot if it lies between A and W; cut the rest.  With
 * O == Y that is the classic rule (keep what is newer than the horizon and
 * the newest below it); with O < Y a long checkpoint keeps one extra
 * version per key instead of every version written since it began.
 *
 * Why nobody is looking at a version cut below W (V1).  Every reader
 * that walks a chain reads at R >= O (src/gc/gc.c, "Horizon").  W.ts <= O
 * <= R, and W was installed before the visible timestamp reached W.ts,
 * hence before the reader took R and loaded head: so W is on the reader's
 * path, and the reader stops at W or above it, never loading W->next.  Nor
 * can an active transaction hold a value pointer into a cut version: it
 * read at some R' >= O, where W (or something newer) was already visible.
 * Out-of-line versions still go through a grace period (limbo, record.c),
 * as a margin; the inline slot is reused at once by the next commit that
 * finds it cut, which is what keeps one allocation per key under updates.
 *
 * Why a version cut between A and W is safe (V2).  A reader with R >= Y
 * stops at A or above (V1's argument with A), so only a reader of exactly
 * O can be past A.  It may stand on a cut version M: M's next pointer is
 * never changed by the cut, every version below M down to W is either
 * still linked or cut the same way, so M's path still ends at W, the
 * version it looks for.  M's memory waits for a grace period (limbo).  The
 * inline slot is never cut in the middle: a commit reuses a cut slot at
 * once, and a reader standing on it would read the new contents; it stays
 * linked (we relink around the cut versions on either side of it) until a
 * later prune cuts it below W, where V1 applies.
 *
 * Promotion (GC, latch held): when the newest version is out of line and
 * the slot is free, its contents move into the slot and head points there.
 * Transactions active at that moment may hold the old version's value
 * pointer, so the GC keeps it until they have ended (src/gc/gc.c).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "record/keyspace.h"
#include "record/record.h"

struct version *version_new(const void *val, size_t vlen, bool tomb)
{
    struct version *v = malloc(sizeof *v + vlen);
    if (!v)
        return NULL;
    v->ts = 0;
    atomic_init(&v->next, NULL);
    v->vlen = (uint32_t)vlen;
    v->tomb = tomb;
    v->inl = 0;
    if (vlen)
        memcpy(v->val, val, vlen);
    return v;
}

/* A version never linked, or unreachable by any reader. */
void version_free_now(struct version *v)
{
    assert(!v->inl);
    free(v);
}

struct version *version_visible(struct record *r, uint64_t ts)
{
    assert_in_rcu_section();
    /* acquire: pairs with the release store of head in version_install */
    struct version *v = atomic_load_explicit(&r->head, memory_order_acquire);
    while (v) {
        rcu_observe_hb(v);
        if (v->ts <= ts)
            return v;
        v = atomic_load_explicit(&v->next, memory_order_acquire);
    }
    return NULL;
}

/* Is r's slot free: none of r's chain?  Latch held. */
static bool slot_free(struct record *r, struct version *slot)
{
    for (struct version *v = atomic_load_explicit(&r->head, memory_order_relaxed); v;
         v = atomic_load_explicit(&v->next, memory_order_relaxed))
        if (v == slot)
            return false;
    return true;
}

/* Fills the free slot with src's contents, stamped ts, over next. */
static void slot_fill(struct version *slot, const struct version *src, uint64_t ts,
                      struct version *next)
{
    slot->ts = ts;
    atomic_store_explicit(&slot->next, next, memory_order_relaxed);
    slot->vlen = src->vlen;
    slot->tomb = src->tomb;
    if (src->vlen)
        memcpy(slot->val, src->val, src->vlen);
}

/* Keeps the count of promotable heads as r's head goes from old to now. */
static void count_ool(struct record_store *s, struct record *r, const struct version *old,
                      const struct version *now)
{
    int d = record_promotable(r, now) - record_promotable(r, old);
    if (d)
        atomic_fetch_add_explicit(&s->nooline, d, memory_order_relaxed);
}

struct version *version_install(struct record_store *s, struct record *r, struct version *v,
                                uint64_t ts, struct prune_bounds b, struct limbo *l)
{
    assert(atomic_load_explicit(&r->latch, memory_order_relaxed) != 0);
    assert(!v->inl);
    version_prune(s, r, b, l);
    struct version *old = atomic_load_explicit(&r->head, memory_order_relaxed);
    assert(!old || old->ts < ts); /* R1: strictly decreasing down the chain */
    struct version *slot = record_slot(r);
    struct version *nv = v;
    if (slot && v->vlen <= record_slot_cap(r) && !v->tomb && slot_free(r, slot)) {
        /* V1: nobody reads the slot's old contents any more */
        slot_fill(slot, v, ts, old);
        nv = slot;
    } else {
        v->ts = ts;
        atomic_store_explicit(&v->next, old, memory_order_relaxed);
    }
    rcu_publish_hb(nv);
    /* release: pairs with the acquire in version_visible */
    atomic_store_explicit(&r->head, nv, memory_order_release);
    count_ool(s, r, old, nv);
    return nv;
}

/* V2: cuts the out-of-line versions between a (newest with ts <= b.young)
 * and the newest with ts <= b.old, which it returns (NULL: none).  *n
 * counts the cut. */
static struct version *prune_middle(struct record_store *s, struct version *a,
                                    struct prune_bounds b, struct limbo *l, size_t *n)
{
    struct version *keep = a; /* the last version kept so far */
    struct version *m = atomic_load_explicit(&a->next, memory_order_relaxed);
    while (m && m->ts > b.old) {
        struct version *nx = atomic_load_explicit(&m->next, memory_order_relaxed);
        /* The slot stays linked (V2), and so does a version we could not
         * be sure to defer (no memory for a limbo batch): freeing it at
         * once could pull it from under the reader of b.old. */
        if (m->inl || !limbo_ready(l, s)) {
            if (atomic_load_explicit(&keep->next, memory_order_relaxed) != m)
                atomic_store_explicit(&keep->next, m, memory_order_release);
            keep = m;
        } else {
            limbo_add_version(l, s, m); /* m->next untouched: V2 */
            ++*n;
        }
        m = nx;
    }
    if (atomic_load_explicit(&keep->next, memory_order_relaxed) != m)
        atomic_store_explicit(&keep->next, m, memory_order_release);
    return m;
}

size_t version_prune(struct record_store *s, struct record *r, struct prune_bounds b,
                     struct limbo *l)
{
    assert(atomic_load_explicit(&r->latch, memory_order_relaxed) != 0);
    assert(b.old <= b.young);
    size_t n = 0, nslot = 0;
    struct version *v = atomic_load_explicit(&r->head, memory_order_relaxed);
    while (v && v->ts > b.young)
        v = atomic_load_explicit(&v->next, memory_order_relaxed);
    if (v && b.old < v->ts)
        v = prune_middle(s, v, b, l, &n);
    struct version *old = v ? atomic_load_explicit(&v->next, memory_order_relaxed) : NULL;
    if (!old)
        goto done;
    /* V1: no reader walks past v; out-of-line versions still wait for a
     * grace period, the slot is simply free from now on. */
    atomic_store_explicit(&v->next, NULL, memory_order_release);
    while (old) {
        struct version *nx = atomic_load_explicit(&old->next, memory_order_relaxed);
        if (!old->inl)
            limbo_add_version(l, s, old);
        else
            nslot++; /* reclaimed now: gc_freed counts it at once */
        old = nx;
        n++;
    }
done:
    if (nslot)
        atomic_fetch_add_explicit(&s->gc_freed, nslot, memory_order_relaxed);
    /* Live versions are those linked: cut ones stop counting now, even if
     * their memory waits for a grace period. */
    if (n)
        atomic_fetch_sub_explicit(&s->nversions, (int64_t)n, memory_order_relaxed);
    return n;
}

struct version *version_promote(struct record_store *s, struct record *r)
{
    assert(atomic_load_explicit(&r->latch, memory_order_relaxed) != 0);
    struct version *h = atomic_load_explicit(&r->head, memory_order_relaxed);
    struct version *slot = record_slot(r);
    if (!h || h->inl || h->tomb || !slot || h->vlen > record_slot_cap(r) || !slot_free(r, slot))
        return NULL;
    slot_fill(slot, h, h->ts, atomic_load_explicit(&h->next, memory_order_relaxed));
    rcu_publish_hb(slot);
    /* release: readers that load head from now on see the slot's contents */
    atomic_store_explicit(&r->head, slot, memory_order_release);
    count_ool(s, r, h, slot);
    return h;
}
