/*
 * lock-int.h - the lock manager's private structures, shared by lock.c and
 * deadlock.c only.  Everything here is under lock_mgr.mu.
 */
#ifndef TXKV_LOCK_LOCK_INT_H
#define TXKV_LOCK_LOCK_INT_H

#include "lock/lock.h"

/* A lock request on a record, granted or waiting. */
struct lockreq {
    struct lock_owner *o;
    struct record *rec;
    struct txkv_ks *ks;
    int mode;
    bool granted;
    struct lockreq *next;
};

/* A record's lock queue, in lm's map by record address; freed (and out of
 * the map) as soon as both lists are empty. */
struct lockstate {
    struct record *rec;
    struct lockreq *holders;
    struct lockreq *waitq; /* FIFO, oldest first */
};

/* A key-range lock (shared), granted or waited for. */
struct rangelock {
    struct lock_owner *o;
    struct txkv_ks *ks;
    uint8_t *lo, *hi; /* NULL: unbounded */
    uint32_t lolen, hilen;
    bool granted;
    struct rangelock *next;   /* lm->ranges (granted ones) */
    struct rangelock *o_next; /* o->rlocks */
};

/* One entry of an owner's held list: a record and the mode held (0: the
 * placeholder of a first request still waiting). */
struct heldlock {
    struct record *rec;
    struct txkv_ks *ks;
    int mode;
};

/*
 * Who keeps waiter w from being granted.  Fills lm's scratch array (valid
 * until the next call) and returns it.  Empty: w can be granted now.  If
 * the array cannot grow, the list is cut short: still non-empty, so w keeps
 * waiting rather than being granted wrongly.  mu held.
 */
struct lock_owner **lock_blockers(struct lock_owner *w, size_t *n);

/* The record w waits for, or NULL (a range wait).  mu held. */
struct record *lock_waited_record(const struct lock_owner *w);

/* 0: no cycle through o (or another victim was chosen); TXKV_DEADLOCK: o
 * is the victim.  mu held. */
int dl_check(struct lock_owner *o);

#endif /* TXKV_LOCK_LOCK_INT_H */
