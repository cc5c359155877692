/*
 * deadlock.c - wait-for-graph cycle detection for the pessimistic lock
 * manager, victim choice, and the deadlock history.
 *
 * Runs under lm->mu, before a transaction sleeps and each time it wakes
 * still blocked.  The edges out of a waiter W are lock_blockers(W): the
 * holders whose mode conflicts with W's request, the earlier waiters in
 * the same FIFO queue that it must let go first, and the holders of range
 * locks (or of exclusive locks inside a range) that stop it.  Only
 * waiters have edges, and every edge into the graph is added by the
 * transaction that is about to sleep, so a new cycle always passes through
 * the transaction that checks: a depth-first search from it finds every
 * cycle that exists, of any length (PostgreSQL's DeadLockCheck looks the
 * same way; it also reorders queues, which we do not).
 *
 * Victim: the youngest transaction of the cycle (the largest begin
 * id), so the oldest work survives and a transaction that keeps losing
 * grows older and eventually wins.  If the victim is the checker, it fails
 * with TXKV_DEADLOCK at once; otherwise the victim is asleep in the cycle,
 * gets its flag set and is woken, and fails.  Either way its locks are
 * released right away (the transaction layer fails it, which releases
 * its locks), so the others proceed.
 * A holder upgrading S->X waits only for the other holders, so a single
 * holder's upgrade never has an edge to itself: no false deadlock.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "lock/lock-int.h"

struct dl_frame {
    struct lock_owner *t;
    struct lock_owner **out; /* copy of t's blockers */
    size_t n, i;
};

/* A key of the history: its full length, at most TXKV_DEADLOCK_KEY_MAX bytes kept. */
static void dl_key(unsigned char *dst, size_t *len, const uint8_t *k, size_t klen)
{
    *len = klen;
    memcpy(dst, k, klen < TXKV_DEADLOCK_KEY_MAX ? klen : TXKV_DEADLOCK_KEY_MAX);
}

static void dl_record(struct lock_mgr *lm, struct dl_frame *st, size_t depth,
                      struct lock_owner *victim)
{
    struct txkv_deadlock_info *d = &lm->dl_hist[lm->dl_seq % TXKV_DEADLOCK_HISTORY];
    memset(d, 0, sizeof *d);
    d->seq = ++lm->dl_seq;
    d->victim = victim->id;
    d->ntxns = (unsigned)depth;
    for (size_t i = 0; i < depth && i < TXKV_DEADLOCK_MAX_TXNS; i++) {
        struct record *r = lock_waited_record(st[i].t);
        const struct rangelock *rl = st[i].t->wait_range;
        d->txns[i] = st[i].t->id;
        if (r) {
            dl_key(d->keys[i], &d->klens[i], r->key, r->klen);
        } else if (rl) {
            d->range[i] = 1;
            d->has_lo[i] = rl->lo != NULL;
            d->has_hi[i] = rl->hi != NULL;
            if (rl->lo)
                dl_key(d->keys[i], &d->klens[i], rl->lo, rl->lolen);
            if (rl->hi)
                dl_key(d->his[i], &d->hilens[i], rl->hi, rl->hilen);
        }
    }
}

int dl_check(struct lock_owner *t)
{
    struct lock_mgr *lm = t->lm;
    assert(mutex_held(&lm->mu));
    size_t cap = 16, depth = 0;
    struct dl_frame *st = malloc(cap * sizeof *st);
    int rc = 0;
    if (!st)
        return 0; /* cannot search now; we check again on the next wake-up */
    uint64_t mark = ++lm->dl_epoch;
    size_t n;
    struct lock_owner **b = lock_blockers(t, &n);
    st[0] = (struct dl_frame){t, malloc(n * sizeof *b + 1), n, 0};
    if (!st[0].out)
        goto out_nofree;
    memcpy(st[0].out, b, n * sizeof *b);
    depth = 1;
    t->dl_mark = mark;
    while (depth) {
        struct dl_frame *f = &st[depth - 1];
        if (f->i == f->n) {
            free(f->out);
            depth--;
            continue;
        }
        struct lock_owner *next = f->out[f->i++];
        if (next == t) { /* a cycle: st[0..depth) */
            struct lock_owner *victim = t;
            bool resolving = false;
            for (size_t i = 0; i < depth; i++)
                resolving |= st[i].t->victim;
            if (resolving)
                break; /* its victim is waking up and will let go */
            for (size_t i = 0; i < depth; i++)
                if (st[i].t->id > victim->id)
                    victim = st[i].t;
            dl_record(lm, st, depth, victim);
            if (victim == t) {
                rc = TXKV_DEADLOCK;
            } else {
                victim->victim = true;
                pthread_cond_signal(&victim->cv);
            }
            break;
        }
        if (next->dl_mark == mark || (!next->wait_req && !next->wait_range))
            continue; /* seen, or not waiting: no edges out */
        next->dl_mark = mark;
        b = lock_blockers(next, &n);
        if (VEC_RESERVE(st, cap, depth + 1, 16))
            break;
        struct lock_owner **copy = malloc(n * sizeof *copy + 1);
        if (!copy)
            break;
        memcpy(copy, b, n * sizeof *copy);
        st[depth++] = (struct dl_frame){next, copy, n, 0};
    }
    while (depth)
        free(st[--depth].out);
out_nofree:
    free(st);
    return rc;
}

size_t lock_deadlocks(struct lock_mgr *lm, struct txkv_deadlock_info *out, size_t max)
{
    if (!out)
        return 0;
    mutex_lock(&lm->mu);
    uint64_t have = lm->dl_seq < TXKV_DEADLOCK_HISTORY ? lm->dl_seq : TXKV_DEADLOCK_HISTORY;
    size_t n = have < max ? (size_t)have : max;
    /* the newest n, oldest first */
    for (size_t i = 0; i < n; i++)
        out[i] = lm->dl_hist[(lm->dl_seq - n + i) % TXKV_DEADLOCK_HISTORY];
    mutex_unlock(&lm->mu);
    return n;
}
