/*
 * bounds.c - the GC's two prune bounds (src/gc/gc.c, "Exact pins").
 *
 * One record store and GC, no database around them; pins set by hand,
 * each to visible_ts as it is then (the protocol of gc_pin_enter):
 *  1. No pin: the horizon and both bounds are visible_ts.
 *  2. Ordinary pins only: young = old = the smallest pin.
 *  3. An exact pin above an ordinary one: no second bound (old = young).
 *  4. An exact pin alone: young is visible_ts, old the pin, the horizon old.
 *  5. Two exact pins: the smaller is old, the other counts as ordinary.
 *  6. gc_pin_enter_exact returns visible_ts and pins exactly it; beside an
 *     ordinary pin, young is that pin; all unpinned, the horizon is
 *     visible_ts.
 * Each case reads the bounds back with gc_prune_bounds, as a commit does.
 */
#include "config.h"

#include "../tap.h"
#include "gc/gc.h"

static struct record_store store;
static struct gc gc;
static struct gc_pin p1, p2, px, py;

static void set_visible(uint64_t ts)
{
    atomic_store(&store.visible_ts, ts);
}

static void expect(uint64_t h, uint64_t young, uint64_t old, const char *what)
{
    is((int)gc_horizon(&gc), (int)h, "%s: horizon %llu", what, (unsigned long long)h);
    struct prune_bounds b = gc_prune_bounds(&gc);
    ok(b.young == young && b.old == old, "%s: bounds %llu/%llu (got %llu/%llu)", what,
       (unsigned long long)young, (unsigned long long)old, (unsigned long long)b.young,
       (unsigned long long)b.old);
}

int main(void)
{
    plan(15);
    record_store_init(&store, 0);
    gc_init(&gc, &store, NULL, NULL);
    gc_pin_register(&gc, &p1);
    gc_pin_register(&gc, &p2);
    gc_pin_register(&gc, &px);
    gc_pin_register(&gc, &py);

    /* Pins follow the protocol: each is visible_ts when it is set. */
    set_visible(100);
    expect(100, 100, 100, "no pin");

    atomic_store(&p1.ts, 100);
    set_visible(150);
    atomic_store(&p2.ts, 150);
    set_visible(200);
    expect(100, 100, 100, "ordinary pins 100, 150");

    atomic_store(&px.ts, 200 | GC_PIN_EXACT);
    gc_pin_leave(&p1);
    set_visible(250);
    expect(150, 150, 150, "exact pin 200 above ordinary 150");

    gc_pin_leave(&p2);
    set_visible(300);
    expect(200, 300, 200, "exact pin 200 alone");

    set_visible(320);
    atomic_store(&py.ts, 320 | GC_PIN_EXACT);
    set_visible(400);
    expect(200, 320, 200, "exact pins 200 and 320");

    gc_pin_leave(&px);
    gc_pin_leave(&py);
    set_visible(500);
    uint64_t s = gc_pin_enter_exact(&gc, &px);
    is((int)s, 500, "gc_pin_enter_exact: the snapshot is visible_ts");
    ok(atomic_load(&px.ts) == (500 | GC_PIN_EXACT), "and the pin says exactly it");
    set_visible(550);
    atomic_store(&p1.ts, 550);
    set_visible(600);
    expect(500, 550, 500, "exact 500, ordinary 550, visible 600");
    gc_pin_leave(&px);
    gc_pin_leave(&p1);
    ok(gc_horizon(&gc) == 600, "all unpinned: the horizon is visible_ts");
    gc_fini(&gc);
    record_store_fini(&store);
    return 0;
}
