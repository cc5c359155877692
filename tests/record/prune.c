/*
 * prune.c - version_prune with two bounds keeps exactly what readers
 * within them can reach (src/record/version.c, "Pruning", V1 and V2).
 *
 * Chains built by hand on one record, versions stamped 10, 20, ...:
 *  1. One bound (young == old): everything newer than it and the newest
 *     version at or below it stay, the rest is cut; the counters follow.
 *  2. Two bounds: the versions between the newest <= young and the newest
 *     <= old are cut as well.  A reader of exactly old finds its version,
 *     a reader at >= young finds its own; a version cut from the middle
 *     still leads, through its unchanged next pointer, to the version the
 *     reader of old looks for (a reader may be standing on it).
 *  3. The inline slot between the two bounds stays linked (a commit would
 *     reuse a cut slot at once); the out-of-line versions around it go.
 *  4. No version at or below old: the out-of-line versions below the
 *     newest <= young are cut; the slot among them stays.
 * The cut versions wait in limbo for a grace period; the test reads them
 * inside one RCU read-side section, then drains, so nothing is freed
 * under it and nothing leaks.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "../tap.h"
#include "base/rcu.h"
#include "record/record.h"

#define NV 12

static struct record_store store;
static struct limbo limbo;

/* A record with a slot of 32 bytes, latched by a transaction's token. */
static struct record *make_record(void)
{
    struct record *r = record_new("key", 3, true, 32, LATCH_FIRST_TXN);
    if (!r)
        bail_out("record_new: no memory");
    return r;
}

/* Installs a version stamped ts (value: its timestamp as text), pruning
 * nothing. */
static struct version *put(struct record *r, uint64_t ts)
{
    char val[24];
    int n = snprintf(val, sizeof val, "v%llu", (unsigned long long)ts);
    struct version *v = version_new(val, (size_t)n, false);
    if (!v)
        bail_out("version_new: no memory");
    atomic_fetch_add(&store.nversions, 1);
    struct version *nv = version_install(&store, r, v, ts, prune_below(0), &limbo);
    if (nv != v)
        version_free_now(v); /* copied into the slot */
    return nv;
}

/* The chain's timestamps, newest first, as "100 90 ..." into buf. */
static const char *chain(struct record *r, char *buf, size_t n)
{
    size_t off = 0;
    buf[0] = '\0';
    for (struct version *v = atomic_load(&r->head); v && off < n; v = atomic_load(&v->next))
        off += (size_t)snprintf(buf + off, n - off, "%s%llu%s", off ? " " : "",
                                (unsigned long long)v->ts, v->inl ? "s" : "");
    return buf;
}

static uint64_t visible_ts(struct record *r, uint64_t ts)
{
    struct version *v = version_visible(r, ts);
    return v ? v->ts : 0;
}

static void test_one_bound(void)
{
    char buf[256];
    struct record *r = make_record();
    for (uint64_t ts = 10; ts <= 50; ts += 10)
        put(r, ts);
    is_str(chain(r, buf, sizeof buf), "50 40 30 20 10s", "one bound: the chain as built");
    int64_t nv = atomic_load(&store.nversions);
    uint64_t freed = atomic_load(&store.gc_freed);
    is((int)version_prune(&store, r, prune_below(35), &limbo), 2, "one bound 35: two cut");
    is_str(chain(r, buf, sizeof buf), "50 40 30", "newer than 35, and 30, stay");
    is((int)(nv - atomic_load(&store.nversions)), 2, "the version count drops by two");
    is((int)(atomic_load(&store.gc_freed) - freed), 1, "the slot is free at once");
    is((int)version_prune(&store, r, prune_below(35), &limbo), 0, "pruning again cuts nothing");
    record_free_now(&store, r);
}

static void test_two_bounds(void)
{
    char buf[256];
    struct record *r = make_record();
    struct version *v[NV] = {0};
    for (int i = 1; i <= 10; i++)
        v[i] = put(r, (uint64_t)i * 10);
    is_str(chain(r, buf, sizeof buf), "100 90 80 70 60 50 40 30 20 10s",
           "two bounds: the chain as built");
    int64_t nv = atomic_load(&store.nversions);
    struct prune_bounds b = {75, 35};
    rcu_read_enter();
    is((int)version_prune(&store, r, b, &limbo), 5,
       "bounds 75/35: 60, 50, 40, 20 and the slot cut");
    is_str(chain(r, buf, sizeof buf), "100 90 80 70 30", "newer than 75, 70, and 30 stay");
    is((int)(nv - atomic_load(&store.nversions)), 5, "the version count drops by five");
    is((int)visible_ts(r, 35), 30, "a reader of exactly 35 finds 30");
    is((int)visible_ts(r, 75), 70, "a reader at 75 finds 70");
    is((int)visible_ts(r, 1000), 100, "a reader at 1000 finds 100");
    /* A reader of 35 that had reached 50 before the cut goes on to 30. */
    struct version *p = v[5];
    while (p && p->ts > 35)
        p = atomic_load(&p->next);
    ok(p == v[3], "from the cut version 50, the path still ends at 30");
    ok(memcmp(v[3]->val, "v30", 3) == 0, "and 30's value is intact");
    rcu_read_leave();
    /* The bounds move on: 70 goes, the reader's 30 stays. */
    struct prune_bounds b2 = {95, 35};
    is((int)version_prune(&store, r, b2, &limbo), 2, "bounds 95/35: 80 and 70 cut");
    is_str(chain(r, buf, sizeof buf), "100 90 30", "100, 90, 30 stay");
    /* The reader of 35 is gone: one bound again. */
    is((int)version_prune(&store, r, prune_below(95), &limbo), 1, "bound 95 alone: 30 cut");
    is_str(chain(r, buf, sizeof buf), "100 90", "100 and 90 stay");
    record_free_now(&store, r);
}

static void test_slot_in_middle(void)
{
    char buf[256];
    struct record *r = make_record();
    put(r, 10);
    put(r, 20);
    put(r, 30);
    version_prune(&store, r, prune_below(25), &limbo); /* cuts the slot (10) */
    put(r, 40);                                        /* refills the slot */
    for (uint64_t ts = 50; ts <= 70; ts += 10)
        put(r, ts);
    is_str(chain(r, buf, sizeof buf), "70 60 50 40s 30 20", "slot in the middle: as built");
    struct prune_bounds b = {65, 25};
    is((int)version_prune(&store, r, b, &limbo), 2, "bounds 65/25: 50 and 30 cut, not the slot");
    is_str(chain(r, buf, sizeof buf), "70 60 40s 20", "the slot stays linked");
    rcu_read_enter();
    is((int)visible_ts(r, 25), 20, "a reader of exactly 25 finds 20");
    is((int)visible_ts(r, 65), 60, "a reader at 65 finds 60");
    rcu_read_leave();
    is((int)version_prune(&store, r, prune_below(65), &limbo), 2,
       "one bound 65: the slot and 20 go below 60");
    is_str(chain(r, buf, sizeof buf), "70 60", "70 and 60 stay");
    record_free_now(&store, r);
}

static void test_nothing_at_old(void)
{
    char buf[256];
    struct record *r = make_record();
    for (uint64_t ts = 50; ts <= 90; ts += 10)
        put(r, ts);
    struct prune_bounds b = {75, 35};
    is((int)version_prune(&store, r, b, &limbo), 1, "bounds 75/35, nothing <= 35: 60 cut");
    is_str(chain(r, buf, sizeof buf), "90 80 70 50s", "newer than 75, 70, and the slot stay");
    rcu_read_enter();
    is((int)visible_ts(r, 35), 0, "a reader of 35 finds nothing, as before");
    rcu_read_leave();
    record_free_now(&store, r);
}

int main(void)
{
    plan(30);
    record_store_init(&store, 0);
    test_one_bound();
    test_two_bounds();
    test_slot_in_middle();
    test_nothing_at_old();
    limbo_flush(&limbo);
    rcu_drain(); /* the cut versions are freed: nothing leaks */
    ok(atomic_load(&store.gc_freed) > 0, "the cut versions were freed after a grace period");
    record_store_fini(&store);
    return 0;
}
