/*
 * savepoint.c - savepoints: undo the writes made after a point of the
 * transaction, keep everything else.
 *
 * Owns t->sps (the savepoint stack, oldest first) and t->undo (the undo
 * log).  Only the thread inside a call on t touches them (txn_enter).
 *
 * A savepoint records how long the write set and the undo log were and
 * t->wbytes.  Writes after it either add write-set entries (which a
 * rollback drops: the write set is an array, so they are its tail) or
 * replace the version of an entry that existed when the newest savepoint
 * was taken: the replaced version then goes to the undo log instead of
 * t->superseded, and a rollback puts it back.  A replaced entry younger
 * than the newest savepoint needs no undo record: every savepoint that
 * could restore it would drop the entry altogether.
 *
 * What a rollback keeps, as PostgreSQL's and RocksDB's do: the read set and
 * scanned ranges (they were observed, so SERIALIZABLE still validates
 * them), pessimistic locks (strict 2PL: a lock is released only at the
 * end), the snapshot, and every version a get or cursor may point into
 * (rolled-back versions go to t->superseded and live until t ends).
 *
 * Ids come from t->next_sp, which is never reset, so an id is never valid
 * twice on one transaction object: ids of savepoints rolled past, of
 * earlier transactions, or made up, are TXKV_INVALID.  Rolling back to a
 * savepoint keeps it (it can be rolled back to again) and discards the
 * ones taken after it.
 */
#include "config.h"

#include <stdlib.h>

#include "txn/txn.h"

int savepoint_reserve(struct txkv_txn *t)
{
    if (!t->nsps)
        return 0;
    return VEC_RESERVE(t->undo, t->capundo, t->nundo + 1, 16) ? TXKV_NOMEM : 0;
}

bool savepoint_keep(struct txkv_txn *t, size_t idx, struct version *old)
{
    if (!t->nsps || idx >= t->sps[t->nsps - 1].nws)
        return false;
    assert(t->nundo < t->capundo); /* savepoint_reserve */
    t->undo[t->nundo++] = (struct undo){idx, old};
    return true;
}

void savepoint_clear(struct txkv_txn *t)
{
    for (size_t i = 0; i < t->nundo; i++)
        version_free_now(t->undo[i].old);
    t->nundo = 0;
    t->nsps = 0;
}

/* Undoes the writes after sp: restores replaced versions newest first,
 * then drops the entries added after it.  Every version taken out of the
 * write set goes to t->superseded (pointers into it stay valid). */
static void rollback_writes(struct txkv_txn *t, const struct savepoint *sp)
{
    while (t->nundo > sp->nundo) {
        struct undo *u = &t->undo[--t->nundo];
        struct wentry *w = &t->ws[u->idx];
        txn_supersede(t, w->ver);
        w->ver = u->old;
    }
    for (size_t i = sp->nws; i < t->nws; i++)
        txn_supersede(t, t->ws[i].ver);
    /* A pessimistic entry dropped here keeps its lock (strict 2PL): the
     * record stays in t->lk's held list and is released at the end. */
    t->nws = sp->nws;
    t->wbytes = sp->wbytes;
    wset_rebuild_map(t);
}

int txkv_savepoint(txkv_txn *h, uint32_t *sp)
{
    struct txkv_txn *t;
    if (!sp)
        return TXKV_INVALID;
    int rc = txn_enter(h, &t, __func__);
    if (rc)
        return rc;
    if (t->failed)
        rc = TXKV_ABORTED;
    else if (t->next_sp == UINT32_MAX)
        rc = TXKV_INVALID; /* 4 billion savepoints on one object: ids would repeat */
    else if (VEC_RESERVE(t->sps, t->capsps, t->nsps + 1, 4))
        rc = TXKV_NOMEM;
    if (!rc) {
        *sp = ++t->next_sp;
        t->sps[t->nsps++] = (struct savepoint){*sp, t->nws, t->nundo, t->wbytes};
    }
    txn_leave(t);
    return rc;
}

int txkv_rollback_to(txkv_txn *h, uint32_t id)
{
    struct txkv_txn *t;
    int rc = txn_enter(h, &t, __func__);
    if (rc)
        return rc;
    /* ids increase up the stack: search from the newest */
    size_t i = t->nsps;
    while (i > 0 && t->sps[i - 1].id > id)
        i--;
    if (t->failed)
        rc = TXKV_ABORTED;
    else if (i == 0 || t->sps[i - 1].id != id)
        rc = TXKV_INVALID;
    else {
        rollback_writes(t, &t->sps[i - 1]);
        t->nsps = i; /* keep sp, discard the newer ones */
    }
    txn_leave(t);
    return rc;
}
