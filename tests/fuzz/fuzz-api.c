/*
 * fuzz-api.c - fuzz target: the public API (txkv.h) against a serial model.
 *
 * The input is a program.  Each op is one byte (low 4 bits: the op, high 4
 * bits: the transaction slot) plus argument bytes; the input ends the
 * program, which is capped at MAX_OPS ops.  Everything runs on one thread
 * with OPTIMISTIC transactions, so the outcome of every call is determined
 * and the model checks it exactly:
 *
 *   - the model is the committed state (keyspace x key -> value), a commit
 *     counter, and per key the counter value of its last commit; a
 *     transaction slot holds its snapshot (a copy taken at begin), its
 *     write buffer, its read set and the key ranges its cursors covered;
 *   - gets return the newest committed value (READ_COMMITTED) or the
 *     snapshot's (SNAPSHOT, SERIALIZABLE), overlaid with the transaction's
 *     own writes; cursors walk exactly the model's keys in order, both
 *     directions, own pending puts included and own deletes hidden;
 *   - commit fails with TXKV_CONFLICT exactly when src/txn/README says:
 *     SNAPSHOT and SERIALIZABLE, a written key committed by another after
 *     the snapshot (first committer wins); every level, a key read with
 *     txkv_get_for_update committed by another after that read;
 *     SERIALIZABLE (not READ ONLY), a key it read with txkv_get, or a key
 *     inside a range one of its cursors read from the B+tree, committed by
 *     another after the snapshot; a transaction that wrote nothing never
 *     fails.  A cursor's range, per batch it reads from the tree, runs from
 *     where the batch started to the end of the keyspace in its direction:
 *     exact here because a keyspace never has more than NKEYS < CURSOR_BATCH
 *     (64, src/cursor.c) records, so every batch reaches the end;
 *   - pointers returned by gets and cursors still hold their bytes when the
 *     transaction ends; txkv_stats counts exactly the commits, conflicts,
 *     user aborts, live keys and open transactions; at the end a fresh
 *     transaction reads exactly the model, and txkv_close frees everything
 *     (LeakSanitizer).
 *
 * Ops (run_program): begin (level, READ ONLY), get, get_for_update, put,
 * del, a cursor walk (seek to a key or the start, or next/prev from
 * nowhere, then up to MAX_STEPS next/prev in any mix), commit, abort,
 * txkv_run (an autocommit get, put or del, or a callback that aborts),
 * calls with bad arguments, a check of the committed state by a fresh
 * transaction, and a re-check of the pointers a slot was given.  An op on a
 * free slot begins a transaction there first.  PESSIMISTIC transactions are
 * not modelled (their lock waits would need threads); fuzz-cli runs them,
 * checking safety only.
 *
 * Keys: NKEYS fixed keys (prefixes of each other, a shared 8-byte prefix,
 * keys of 32-300 bytes for the B+tree's out-of-line keys, 0x00 and 0xff
 * bytes) in three keyspaces: the default one (hash + B+tree, reached through
 * NULL or its own handle), a B+tree-only and a hash-only one.
 *
 * TXKV_FUZZ_BREAK_VALIDATION=1 in the environment makes every database skip
 * commit validation (db_test_skip_validation): the fuzzer must then report a
 * violation within seconds.  replay's self-test does the same on generated
 * programs and requires each conflict rule to be caught.
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h" /* db_test_skip_validation */
#include "fuzz.h"
#include "txkv.h"

#define NSLOTS    4
#define NKS       3
#define NKEYS     16
#define MAX_OPS   256
#define MAX_VAL   1100
#define MAX_STEPS 24
#define MAX_KEEP  8

enum { W_NONE = -2, W_DEL = -1 }; /* write buffer entries; >= 0: a value id */
enum { POS_NONE, POS_ON, POS_BEFORE, POS_AFTER };

struct key {
    const uint8_t *p;
    size_t n;
};

static uint8_t long_key[300];
static struct key keys[NKEYS];
static int kord[NKEYS];  /* key ids in key order */
static int krank[NKEYS]; /* key id -> its index in kord */

static int kcmp(const void *a, size_t al, const void *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al < bl ? -1 : al > bl);
}

static int kord_cmp(const void *a, const void *b)
{
    const struct key *x = &keys[*(const int *)a], *y = &keys[*(const int *)b];
    return kcmp(x->p, x->n, y->p, y->n);
}

static void keys_init(void)
{
    /* clang-format off */
    static const char *const lit[NKEYS - 1] = {
        "a",  "ab", "abc", "b", "\0", "\0\0", "\xff", "k1", "k10", "k2", "prefix8_A", "prefix8_B",
        "long-key-sharing-a-prefix-000001", "long-key-sharing-a-prefix-000001-and-more",
        "long-key-sharing-a-prefix-000002",
    };
    static const size_t litlen[NKEYS - 1] = {1, 2, 3, 1, 1, 2, 1, 2, 3, 2, 9, 9, 32, 41, 32};
    /* clang-format on */
    if (keys[0].p)
        return;
    for (int i = 0; i < NKEYS - 1; i++)
        keys[i] = (struct key){(const uint8_t *)lit[i], litlen[i]};
    memset(long_key, 'z', sizeof long_key);
    long_key[sizeof long_key - 1] = '!';
    keys[NKEYS - 1] = (struct key){long_key, sizeof long_key};
    for (int i = 0; i < NKEYS; i++)
        kord[i] = i;
    qsort(kord, NKEYS, sizeof kord[0], kord_cmp);
    for (int i = 0; i < NKEYS; i++)
        krank[kord[i]] = i;
}

/* ---- the model ---------------------------------------------------------- */

struct mstate {
    int16_t v[NKS][NKEYS]; /* value id, or -1: absent */
};

/* A value pointer a get or cursor returned: it must hold until the txn ends. */
struct kept {
    const void *p;
    size_t n;
    int vid;
};

struct slot {
    txkv_txn *t; /* NULL: free */
    int iso;
    bool rdonly;
    uint64_t begin; /* model commit counter at begin */
    struct mstate snap;
    int16_t w[NKS][NKEYS];       /* W_NONE, W_DEL or a value id */
    int nw;                      /* distinct keys written */
    uint64_t rts[NKS][NKEYS];    /* read set: earliest read timestamp; UINT64_MAX: none */
    uint8_t scanned[NKS][NKEYS]; /* keys inside a range a cursor read (SERIALIZABLE) */
    struct kept keep[MAX_KEEP];
    int nkeep;
};

struct run {
    txkv_db *db;
    txkv_ks *ks[NKS]; /* [0]: the default keyspace's own handle */
    struct mstate cur;
    uint64_t ts;              /* commits that wrote something */
    uint64_t mod[NKS][NKEYS]; /* ts of the key's last commit; 0: never */
    struct slot s[NSLOTS];
    int nvals;
    struct txkv_stats base;                                  /* txkv_stats when the input started */
    uint64_t commits, conflicts, user_aborts, rdonly_aborts; /* what txkv_stats must add */
    bool bad;                                                /* a property failed: stop */
    int op;           /* index of the op running, for messages */
    const uint8_t *p; /* the input */
    size_t n, i;
};

static uint8_t vpool[MAX_OPS + 4][MAX_VAL];
static size_t vlen_of[MAX_OPS + 4];
static bool broken_validation; /* replay's self-test, or the environment */

static const char *const iso_name[] = {"?", "READ_COMMITTED", "SNAPSHOT", "SERIALIZABLE"};

#define CHECK(r, cond, ...)                                                                        \
    do {                                                                                           \
        if (!(r)->bad && !(cond)) {                                                                \
            (r)->bad = true;                                                                       \
            fuzz_fail(__VA_ARGS__);                                                                \
        }                                                                                          \
    } while (0)

static unsigned next_byte(struct run *r)
{
    return r->i < r->n ? r->p[r->i++] : 0;
}

/* A new value: length from one input byte (sometimes over 1000 bytes); its
 * first two bytes are its id, so two values of a byte or more differ. */
static int new_value(struct run *r)
{
    unsigned b = next_byte(r);
    int id = r->nvals++;
    size_t n = b >= 0xf8 ? 1000 + (b & 7) * 10 : b % 48;
    uint8_t *v = vpool[id];
    for (size_t i = 0; i < n; i++)
        v[i] = (uint8_t)(i < 2 ? (size_t)id >> (8 * i) : (size_t)id * 7 + i * 13);
    vlen_of[id] = n;
    return id;
}

static bool same_value(int vid, const void *p, size_t n)
{
    return vid >= 0 && p && vlen_of[vid] == n && memcmp(vpool[vid], p, n) == 0;
}

/* keyspace and key from one byte: mostly the default keyspace */
static void pick_key(struct run *r, int *ks, int *k)
{
    unsigned b = next_byte(r);
    *k = (int)(b % NKEYS);
    unsigned h = b >> 4;
    *ks = h < 10 ? 0 : h < 13 ? 1 : 2;
}

/* The handle for model keyspace ks; the default one is NULL or its handle. */
static txkv_ks *ksh(struct run *r, int ks, int k)
{
    if (ks == 0)
        return (k + r->op) & 1 ? r->ks[0] : NULL;
    return r->ks[ks];
}

/* What slot s sees at (ks, k): a value id or -1. */
static int view(const struct run *r, const struct slot *s, int ks, int k)
{
    if (s->w[ks][k] != W_NONE)
        return s->w[ks][k] == W_DEL ? -1 : s->w[ks][k];
    return s->iso == TXKV_READ_COMMITTED ? r->cur.v[ks][k] : s->snap.v[ks][k];
}

static void keep_ptr(struct slot *s, const void *p, size_t n, int vid)
{
    if (s->nkeep < MAX_KEEP)
        s->keep[s->nkeep++] = (struct kept){p, n, vid};
}

static void check_kept(struct run *r, int sl)
{
    struct slot *s = &r->s[sl];
    for (int i = 0; i < s->nkeep; i++)
        CHECK(r, same_value(s->keep[i].vid, s->keep[i].p, s->keep[i].n),
              "op %d: slot %d: a value returned earlier (value %d) changed before the "
              "transaction ended",
              r->op, sl, s->keep[i].vid);
}

static void slot_begin(struct run *r, int sl, int iso, bool rdonly)
{
    struct slot *s = &r->s[sl];
    txkv_txn_options o;
    txkv_txn_options_init(&o);
    o.isolation = iso;
    o.cc = TXKV_OPTIMISTIC;
    o.flags = rdonly ? TXKV_RDONLY : 0;
    int rc = txkv_begin(r->db, &o, &s->t);
    CHECK(r, rc == 0 && s->t, "op %d: txkv_begin: %s", r->op, txkv_strerror(rc));
    if (rc) {
        s->t = NULL;
        return;
    }
    s->iso = iso;
    s->rdonly = rdonly;
    s->begin = r->ts;
    s->snap = r->cur;
    for (int ks = 0; ks < NKS; ks++)
        for (int k = 0; k < NKEYS; k++) {
            s->w[ks][k] = W_NONE;
            s->rts[ks][k] = UINT64_MAX;
            s->scanned[ks][k] = 0;
        }
    s->nw = 0;
    s->nkeep = 0;
}

/* The slot's transaction, begun with a default level if the slot is free. */
static struct slot *slot_get(struct run *r, int sl)
{
    if (!r->s[sl].t)
        slot_begin(r, sl, 1 + sl % 3, false);
    return r->s[sl].t ? &r->s[sl] : NULL;
}

static void slot_abort(struct run *r, int sl)
{
    struct slot *s = &r->s[sl];
    check_kept(r, sl);
    txkv_abort(s->t);
    s->t = NULL;
    s->nkeep = 0;
    if (s->rdonly) /* how LMDB-style code ends a read: counted apart */
        r->rdonly_aborts++;
    else
        r->user_aborts++;
}

/* ---- ops ------------------------------------------------------------------ */

static void op_get(struct run *r, int sl, bool for_update)
{
    int ks, k;
    pick_key(r, &ks, &k);
    unsigned flags = next_byte(r);
    struct slot *s = slot_get(r, sl);
    if (!s)
        return;
    const void *val = (const void *)1;
    size_t vlen = 12345;
    int rc = for_update ? txkv_get_for_update(s->t, ksh(r, ks, k), keys[k].p, keys[k].n,
                                              flags & 1 ? NULL : &val, flags & 2 ? NULL : &vlen)
                        : txkv_get(s->t, ksh(r, ks, k), keys[k].p, keys[k].n,
                                   flags & 1 ? NULL : &val, flags & 2 ? NULL : &vlen);
    const char *what = for_update ? "get_for_update" : "get";
    if (for_update && s->rdonly) {
        CHECK(r, rc == TXKV_READONLY, "op %d: %s in a READ ONLY transaction returned %s", r->op,
              what, txkv_strerror(rc));
        return;
    }
    int want = view(r, s, ks, k);
    CHECK(r, rc == (want < 0 ? TXKV_NOTFOUND : 0),
          "op %d: slot %d (%s): %s of key %d in keyspace %d returned %s, model says %s", r->op, sl,
          iso_name[s->iso], what, k, ks, txkv_strerror(rc), want < 0 ? "absent" : "present");
    if (rc == 0 && !(flags & 3)) {
        CHECK(r, same_value(want, val, vlen),
              "op %d: slot %d (%s): %s of key %d in keyspace %d returned a value of %zu bytes, "
              "model says value %d (%zu bytes)",
              r->op, sl, iso_name[s->iso], what, k, ks, vlen, want, vlen_of[want]);
        keep_ptr(s, val, vlen, want);
    }
    /* What commit must validate: reads not served by the write buffer. */
    if (s->w[ks][k] == W_NONE) {
        uint64_t ts = UINT64_MAX;
        if (for_update)
            ts = s->iso == TXKV_READ_COMMITTED ? r->ts : s->begin;
        else if (s->iso == TXKV_SERIALIZABLE && !s->rdonly)
            ts = s->begin;
        if (ts < s->rts[ks][k])
            s->rts[ks][k] = ts;
    }
}

static void op_write(struct run *r, int sl, bool del)
{
    int ks, k;
    pick_key(r, &ks, &k);
    int vid = del ? -1 : new_value(r);
    struct slot *s = slot_get(r, sl);
    if (!s)
        return;
    int rc;
    if (del) {
        rc = txkv_del(s->t, ksh(r, ks, k), keys[k].p, keys[k].n);
    } else {
        size_t n = vlen_of[vid];
        /* a zero-length value may come as NULL */
        rc = txkv_put(s->t, ksh(r, ks, k), keys[k].p, keys[k].n, n || vid % 2 ? vpool[vid] : NULL,
                      n);
    }
    if (s->rdonly) {
        CHECK(r, rc == TXKV_READONLY, "op %d: %s in a READ ONLY transaction returned %s", r->op,
              del ? "del" : "put", txkv_strerror(rc));
        return;
    }
    CHECK(r, rc == 0, "op %d: slot %d: %s of key %d in keyspace %d returned %s", r->op, sl,
          del ? "del" : "put", k, ks, txkv_strerror(rc));
    if (s->w[ks][k] == W_NONE)
        s->nw++;
    s->w[ks][k] = (int16_t)(del ? W_DEL : vid);
}

/* The model cursor: position and the direction of the batch it holds. */
struct mcur {
    int pos;  /* POS_* */
    int ref;  /* a rank in kord, or -1: no key (the ends) */
    int bdir; /* direction of txkv's batch: 0 none */
};

/* The SERIALIZABLE range a batch read from ref in direction dir records. */
static void note_fill(struct slot *s, int ks, int ref, int dir)
{
    if (s->iso != TXKV_SERIALIZABLE || s->rdonly)
        return;
    for (int p = 0; p < NKEYS; p++)
        if (ref < 0 || (dir > 0 ? p >= ref : p <= ref))
            s->scanned[ks][kord[p]] = 1;
}

/*
 * One step of src/cursor.c's cursor_step on the model: from ref (incl: ref
 * itself counts) in direction dir, the nearest key the slot sees.  A pending
 * delete moves the reference past the key it hides, which is where the
 * cursor stays when it runs out.  Returns the key id or -1.
 */
static int mstep(const struct run *r, struct slot *s, int ks, struct mcur *c, int ref, bool incl,
                 int dir)
{
    if (c->bdir != dir) {
        note_fill(s, ks, ref, dir);
        c->bdir = dir;
    }
    int p = ref < 0 ? (dir > 0 ? 0 : NKEYS - 1) : incl ? ref : ref + dir;
    for (; p >= 0 && p < NKEYS; p += dir) {
        int k = kord[p];
        if (s->w[ks][k] == W_DEL) {
            ref = p;
            continue;
        }
        if (view(r, s, ks, k) >= 0) {
            c->pos = POS_ON;
            c->ref = p;
            return k;
        }
    }
    c->pos = dir > 0 ? POS_AFTER : POS_BEFORE;
    c->ref = ref;
    return -1;
}

/* txkv_cursor_next/prev on the model (cursor_move in src/cursor.c). */
static int mmove(const struct run *r, struct slot *s, int ks, struct mcur *c, int dir)
{
    switch (c->pos) {
    case POS_NONE:
        c->bdir = 0;
        return mstep(r, s, ks, c, -1, true, dir);
    case POS_AFTER:
    case POS_BEFORE:
        if ((c->pos == POS_AFTER) == (dir > 0))
            return -1;
        c->bdir = 0;
        return mstep(r, s, ks, c, c->ref, c->ref >= 0, dir);
    default:
        return mstep(r, s, ks, c, c->ref, false, dir);
    }
}

static void op_scan(struct run *r, int sl)
{
    unsigned b = next_byte(r);
    int ks = b % 8 < 5 ? 0 : b % 8 < 7 ? 1 : 2;
    int start = (int)(b >> 3) % 4; /* seek(key), seek(NULL), next, prev */
    int sk = start == 0 ? (int)(next_byte(r) % NKEYS) : 0;
    int nsteps = (int)(next_byte(r) % MAX_STEPS);
    uint32_t dirs = next_byte(r) | next_byte(r) << 8 | (uint32_t)next_byte(r) << 16;
    struct slot *s = slot_get(r, sl);
    if (!s)
        return;
    txkv_cursor *c;
    int rc = txkv_cursor_open(s->t, ksh(r, ks, sl), &c);
    if (ks == 2) {
        CHECK(r, rc == TXKV_NOTSUP, "op %d: cursor on a hash-only keyspace returned %s", r->op,
              txkv_strerror(rc));
        if (rc == 0)
            txkv_cursor_close(c);
        return;
    }
    CHECK(r, rc == 0, "op %d: txkv_cursor_open returned %s", r->op, txkv_strerror(rc));
    if (rc)
        return;
    struct mcur mc = {POS_NONE, -1, 0};
    for (int step = -1; step < nsteps && !r->bad; step++) {
        int want;
        const char *what;
        if (step < 0 && start < 2) {
            what = start == 0 ? "seek" : "seek(NULL)";
            rc = start == 0 ? txkv_cursor_seek(c, keys[sk].p, keys[sk].n)
                            : txkv_cursor_seek(c, NULL, 0);
            mc.bdir = 0;
            mc.pos = POS_NONE;
            want = mstep(r, s, ks, &mc, start == 0 ? krank[sk] : -1, true, +1);
        } else {
            int dir = step < 0 ? (start == 2 ? 1 : -1) : (dirs >> step & 1) ? -1 : 1;
            what = dir > 0 ? "next" : "prev";
            rc = dir > 0 ? txkv_cursor_next(c) : txkv_cursor_prev(c);
            want = mmove(r, s, ks, &mc, dir);
        }
        CHECK(r, rc == (want < 0 ? TXKV_NOTFOUND : 0),
              "op %d: slot %d (%s): cursor step %d (%s) in keyspace %d returned %s, model says "
              "key %d (-1: none)",
              r->op, sl, iso_name[s->iso], step + 1, what, ks, txkv_strerror(rc), want);
        const void *k = NULL, *v = NULL;
        size_t kl = 0, vl = 0;
        int grc = txkv_cursor_get(c, &k, &kl, &v, &vl);
        if (want < 0) {
            CHECK(r, grc == TXKV_NOTFOUND, "op %d: cursor_get off the keys returned %s", r->op,
                  txkv_strerror(grc));
            continue;
        }
        int wv = view(r, s, ks, want);
        CHECK(r,
              grc == 0 && kl == keys[want].n && memcmp(k, keys[want].p, kl) == 0 &&
                  same_value(wv, v, vl),
              "op %d: slot %d (%s): cursor step %d (%s) in keyspace %d is on a key of %zu bytes "
              "(rc %s), model says key %d = value %d",
              r->op, sl, iso_name[s->iso], step + 1, what, ks, kl, txkv_strerror(grc), want, wv);
        if (grc == 0 && !r->bad)
            keep_ptr(s, v, vl, wv);
    }
    txkv_cursor_close(c);
}

/* Would slot s's commit conflict?  *why names the rule. */
static bool predict_conflict(const struct run *r, const struct slot *s, const char **why, int *wks,
                             int *wk)
{
    if (!s->nw)
        return false; /* wrote nothing: never fails */
    for (int ks = 0; ks < NKS; ks++)
        for (int k = 0; k < NKEYS; k++) {
            *wks = ks;
            *wk = k;
            if (s->iso != TXKV_READ_COMMITTED && s->w[ks][k] != W_NONE &&
                r->mod[ks][k] > s->begin) {
                *why = "write-write (first committer wins)";
                return true;
            }
            if (s->rts[ks][k] != UINT64_MAX && r->mod[ks][k] > s->rts[ks][k]) {
                *why = "read set";
                return true;
            }
            if (s->scanned[ks][k] && r->mod[ks][k] > s->begin) {
                *why = "scanned range";
                return true;
            }
        }
    return false;
}

static void apply(struct run *r, int ks, int k, int w)
{
    r->cur.v[ks][k] = (int16_t)(w == W_DEL ? -1 : w);
    r->mod[ks][k] = r->ts;
}

static void op_commit(struct run *r, int sl)
{
    struct slot *s = &r->s[sl];
    if (!s->t) {
        int rc = txkv_commit(NULL);
        CHECK(r, rc == TXKV_INVALID, "op %d: txkv_commit(NULL) returned %s", r->op,
              txkv_strerror(rc));
        return;
    }
    const char *why = NULL;
    int wks = 0, wk = 0;
    bool conflict = predict_conflict(r, s, &why, &wks, &wk);
    check_kept(r, sl);
    int rc = txkv_commit(s->t);
    s->t = NULL;
    s->nkeep = 0;
    if (conflict)
        CHECK(r, rc == TXKV_CONFLICT,
              "op %d: slot %d (%s%s): commit returned %s, model says CONFLICT (%s: key %d in "
              "keyspace %d)",
              r->op, sl, iso_name[s->iso], s->rdonly ? " READ ONLY" : "", txkv_strerror(rc), why,
              wk, wks);
    else
        CHECK(r, rc == 0, "op %d: slot %d (%s%s): commit returned %s, model says OK", r->op, sl,
              iso_name[s->iso], s->rdonly ? " READ ONLY" : "", txkv_strerror(rc));
    if (rc == TXKV_CONFLICT) {
        r->conflicts++;
        return;
    }
    if (rc)
        return;
    r->commits++;
    if (!s->nw)
        return;
    r->ts++;
    for (int ks = 0; ks < NKS; ks++)
        for (int k = 0; k < NKEYS; k++)
            if (s->w[ks][k] != W_NONE)
                apply(r, ks, k, s->w[ks][k]);
}

/* txkv_run: one op in a transaction of its own. */
struct auto_arg {
    struct run *r;
    int kind, ks, k, vid, got_rc;
    const void *val;
    size_t vlen;
};

static int auto_fn(txkv_txn *t, void *arg)
{
    struct auto_arg *a = arg;
    txkv_ks *h = ksh(a->r, a->ks, a->k);
    const struct key *key = &keys[a->k];
    switch (a->kind) {
    case 0:
        a->got_rc = txkv_get(t, h, key->p, key->n, &a->val, &a->vlen);
        return 0;
    case 1:
        a->got_rc = txkv_del(t, h, key->p, key->n);
        return a->got_rc;
    default:
        a->got_rc = txkv_put(t, h, key->p, key->n, vpool[a->vid], vlen_of[a->vid]);
        return a->kind == 3 && !a->got_rc ? 42 : a->got_rc; /* 3: the caller aborts */
    }
}

static void op_auto(struct run *r)
{
    unsigned b = next_byte(r);
    struct auto_arg a = {r, (int)(b % 4), 0, 0, -1, 0, NULL, 0};
    pick_key(r, &a.ks, &a.k);
    if (a.kind >= 2)
        a.vid = new_value(r);
    txkv_txn_options o;
    txkv_txn_options_init(&o);
    o.isolation = 1 + (int)(b >> 2) % 3;
    int rc = txkv_run(r->db, &o, auto_fn, &a, 1 + (int)(b >> 4) % 3);
    CHECK(r,
          rc == (a.kind == 3 ? 42 : 0) &&
              a.got_rc == (a.kind == 0 && r->cur.v[a.ks][a.k] < 0 ? TXKV_NOTFOUND : 0),
          "op %d: txkv_run (kind %d, key %d in keyspace %d) returned %s / %s", r->op, a.kind, a.k,
          a.ks, txkv_strerror(rc), txkv_strerror(a.got_rc));
    if (a.kind == 0 && a.got_rc == 0)
        CHECK(r, same_value(r->cur.v[a.ks][a.k], a.val, a.vlen),
              "op %d: autocommit get of key %d in keyspace %d: wrong value", r->op, a.k, a.ks);
    if (a.kind == 3) {
        r->user_aborts++;
        return;
    }
    r->commits++;
    if (a.kind == 0)
        return;
    r->ts++;
    apply(r, a.ks, a.k, a.kind == 1 ? W_DEL : a.vid);
}

/* Calls with bad arguments: TXKV_INVALID (or the keyspace errors), and the
 * transaction stays usable. */
static void op_invalid(struct run *r, int sl)
{
    static uint8_t huge[TXKV_MAX_KEY + 1];
    unsigned b = next_byte(r);
    struct slot *s = slot_get(r, sl);
    if (!s)
        return;
    const void *v;
    size_t vl;
    txkv_cursor *c;
    txkv_ks *ks;
    int rc, want = TXKV_INVALID;
    switch (b % 9) {
    case 0:
        rc = txkv_get(s->t, NULL, "k", 0, &v, &vl);
        break;
    case 1:
        rc = txkv_get(s->t, NULL, NULL, 1, &v, &vl);
        break;
    case 2:
        rc = txkv_put(s->t, r->ks[1], huge, sizeof huge, "v", 1);
        break;
    case 3:
        rc = txkv_put(s->t, NULL, "k", 1, NULL, 3);
        break;
    case 4:
        rc = txkv_del(s->t, r->ks[2], "", 0);
        break;
    case 5:
        rc = txkv_cursor_open(s->t, NULL, &c);
        if (rc == 0) {
            rc = txkv_cursor_seek(c, "k", 0);
            txkv_cursor_close(c);
        }
        break;
    case 6:
        rc = txkv_keyspace(r->db, "o", TXKV_HASH, &ks);
        want = TXKV_EXISTS;
        break;
    case 7:
        rc = txkv_keyspace(r->db, "absent", 0, &ks);
        want = TXKV_NOTFOUND;
        break;
    default:
        rc = txkv_get_for_update(s->t, NULL, huge, sizeof huge, &v, &vl);
        break;
    }
    CHECK(r, rc == want, "op %d: bad-argument call %u returned %s, want %s", r->op, b % 9,
          txkv_strerror(rc), txkv_strerror(want));
}

/* A fresh transaction reads exactly the committed model: gets in every
 * keyspace, full scans both ways in the ordered ones. */
static void check_committed(struct run *r, const char *when)
{
    txkv_txn *t;
    txkv_txn_options o;
    txkv_txn_options_init(&o);
    o.isolation = TXKV_SNAPSHOT;
    o.flags = TXKV_RDONLY;
    int rc = txkv_begin(r->db, &o, &t);
    CHECK(r, rc == 0, "%s: txkv_begin returned %s", when, txkv_strerror(rc));
    if (rc)
        return;
    for (int ks = 0; ks < NKS && !r->bad; ks++) {
        for (int k = 0; k < NKEYS; k++) {
            const void *v;
            size_t vl;
            int want = r->cur.v[ks][k];
            rc = txkv_get(t, r->ks[ks], keys[k].p, keys[k].n, &v, &vl);
            CHECK(r, want < 0 ? rc == TXKV_NOTFOUND : rc == 0 && same_value(want, v, vl),
                  "%s: key %d in keyspace %d reads %s, committed model says value %d", when, k, ks,
                  txkv_strerror(rc), want);
        }
        if (ks == 2)
            break;
        for (int dir = 1; dir >= -1; dir -= 2) {
            txkv_cursor *c;
            if ((rc = txkv_cursor_open(t, r->ks[ks], &c))) {
                CHECK(r, 0, "%s: txkv_cursor_open returned %s", when, txkv_strerror(rc));
                break;
            }
            int p = dir > 0 ? 0 : NKEYS - 1;
            for (rc = dir > 0 ? txkv_cursor_seek(c, NULL, 0) : txkv_cursor_prev(c); !r->bad;
                 rc = dir > 0 ? txkv_cursor_next(c) : txkv_cursor_prev(c)) {
                while (p >= 0 && p < NKEYS && r->cur.v[ks][kord[p]] < 0)
                    p += dir;
                if (p < 0 || p >= NKEYS) {
                    CHECK(r, rc == TXKV_NOTFOUND, "%s: a %s scan of keyspace %d has an extra key",
                          when, dir > 0 ? "forward" : "backward", ks);
                    break;
                }
                const void *k, *v;
                size_t kl, vl;
                int key = kord[p];
                CHECK(r,
                      rc == 0 && txkv_cursor_get(c, &k, &kl, &v, &vl) == 0 && kl == keys[key].n &&
                          memcmp(k, keys[key].p, kl) == 0 && same_value(r->cur.v[ks][key], v, vl),
                      "%s: a %s scan of keyspace %d misses or misreads key %d (%s)", when,
                      dir > 0 ? "forward" : "backward", ks, key, txkv_strerror(rc));
                p += dir;
            }
            txkv_cursor_close(c);
        }
    }
    rc = txkv_commit(t);
    CHECK(r, rc == 0, "%s: read-only commit returned %s", when, txkv_strerror(rc));
    if (rc == 0)
        r->commits++;
}

static void check_stats(struct run *r)
{
    struct txkv_stats st;
    uint64_t live = 0, open = 0;
    txkv_stats(r->db, &st);
    st.commits -= r->base.commits;
    st.aborts_conflict -= r->base.aborts_conflict;
    st.aborts_user -= r->base.aborts_user;
    st.aborts_deadlock -= r->base.aborts_deadlock;
    st.aborts_timeout -= r->base.aborts_timeout;
    st.aborts_full -= r->base.aborts_full;
    st.aborts_rdonly -= r->base.aborts_rdonly;
    for (int ks = 0; ks < NKS; ks++)
        for (int k = 0; k < NKEYS; k++)
            live += r->cur.v[ks][k] >= 0;
    for (int i = 0; i < NSLOTS; i++)
        open += r->s[i].t != NULL;
    CHECK(r,
          st.commits == r->commits && st.aborts_conflict == r->conflicts &&
              st.aborts_user == r->user_aborts && st.aborts_rdonly == r->rdonly_aborts &&
              st.keys == live && st.active_txns == open && st.aborts_deadlock == 0 &&
              st.aborts_timeout == 0 && st.aborts_full == 0,
          "txkv_stats: commits %llu (model %llu), conflicts %llu (%llu), user aborts %llu (%llu), "
          "read-only aborts %llu (%llu), keys %llu (%llu), active %llu (%llu)",
          (unsigned long long)st.commits, (unsigned long long)r->commits,
          (unsigned long long)st.aborts_conflict, (unsigned long long)r->conflicts,
          (unsigned long long)st.aborts_user, (unsigned long long)r->user_aborts,
          (unsigned long long)st.aborts_rdonly, (unsigned long long)r->rdonly_aborts,
          (unsigned long long)st.keys, (unsigned long long)live, (unsigned long long)st.active_txns,
          (unsigned long long)open);
}

static void run_program(struct run *r)
{
    for (r->op = 0; r->op < MAX_OPS && r->i < r->n && !r->bad; r->op++) {
        unsigned b = next_byte(r);
        int sl = (int)(b >> 4) % NSLOTS;
        switch (b & 15) {
        case 0:
        case 1:
            op_get(r, sl, false);
            break;
        case 2:
            op_get(r, sl, true);
            break;
        case 3:
        case 4:
            op_write(r, sl, false);
            break;
        case 5:
            op_write(r, sl, true);
            break;
        case 6:
        case 7:
            op_scan(r, sl);
            break;
        case 8: {
            unsigned o = next_byte(r);
            if (r->s[sl].t)
                slot_abort(r, sl);
            slot_begin(r, sl, 1 + (int)(o % 3), (o & 0x1c) == 0x1c);
            break;
        }
        case 9:
        case 10:
            op_commit(r, sl);
            break;
        case 11:
            if (r->s[sl].t)
                slot_abort(r, sl);
            else
                txkv_abort(NULL);
            break;
        case 12:
            op_auto(r);
            break;
        case 13:
            op_invalid(r, sl);
            break;
        case 14:
            check_committed(r, "check");
            break;
        default:
            if (r->s[sl].t)
                check_kept(r, sl);
            break;
        }
    }
}

static bool env_broken(void)
{
    static int v = -1;
    if (v < 0) {
        const char *e = getenv("TXKV_FUZZ_BREAK_VALIDATION");
        v = e && *e && *e != '0';
    }
    return v;
}

/*
 * The database lives across inputs (fuzz.h says why).  Each input starts on
 * an empty database (the previous one deleted what it left) and its own
 * model, so its outcome does not depend on earlier inputs; only txkv's
 * internal state (reused transaction objects, tombstones the GC has not
 * taken out yet) carries over.  An input that fuzz_input_closes() picks
 * ends with txkv_close, its open transactions left for close to abort; so
 * does an input after a failed check, and the process at exit
 * (LeakSanitizer then checks that close freed everything).
 */
static txkv_db *the_db;
static txkv_ks *the_ks[NKS];
static bool the_db_broken;

static void db_close(void)
{
    if (the_db)
        txkv_close(the_db);
    the_db = NULL;
}

static int db_get(struct run *r)
{
    static bool registered;
    bool broken = broken_validation || env_broken();
    if (the_db && the_db_broken != broken)
        db_close();
    if (!the_db) {
        int rc = txkv_open(NULL, &the_db);
        if (rc) {
            the_db = NULL;
            fuzz_fail("txkv_open: %s", txkv_strerror(rc));
            return rc;
        }
        if (!registered) {
            atexit(db_close);
            registered = true;
        }
        if (broken)
            db_test_skip_validation(the_db, true);
        the_db_broken = broken;
        if ((rc = txkv_keyspace(the_db, "default", 0, &the_ks[0])) ||
            (rc = txkv_keyspace(the_db, "o", TXKV_CREATE | TXKV_ORDERED, &the_ks[1])) ||
            (rc = txkv_keyspace(the_db, "h", TXKV_CREATE | TXKV_HASH, &the_ks[2]))) {
            fuzz_fail("txkv_keyspace: %s", txkv_strerror(rc));
            db_close();
            return rc;
        }
    }
    r->db = the_db;
    memcpy(r->ks, the_ks, sizeof r->ks);
    return 0;
}

/* Deletes what the model says is left, so the next input starts empty. */
static void db_empty(struct run *r)
{
    txkv_txn *t;
    int rc = txkv_begin(r->db, NULL, &t);
    for (int ks = 0; ks < NKS && rc == 0; ks++)
        for (int k = 0; k < NKEYS && rc == 0; k++)
            if (r->cur.v[ks][k] >= 0)
                rc = txkv_del(t, r->ks[ks], keys[k].p, keys[k].n);
    if (rc == 0)
        rc = txkv_commit(t);
    else
        txkv_abort(t);
    CHECK(r, rc == 0, "emptying the database at the end: %s", txkv_strerror(rc));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct run run;
    struct run *r = &run;
    keys_init();
    memset(r, 0, sizeof *r);
    memset(&r->cur, 0xff, sizeof r->cur); /* every value -1: absent */
    r->p = data;
    r->n = size;
    if (db_get(r))
        return 0;
    txkv_stats(r->db, &r->base);
    CHECK(r, r->base.keys == 0 && r->base.active_txns == 0,
          "the database is not empty at the start: %llu keys, %llu transactions",
          (unsigned long long)r->base.keys, (unsigned long long)r->base.active_txns);
    bool close = fuzz_input_closes(data, size);

    run_program(r);

    for (int sl = 0; sl < NSLOTS && !r->bad; sl++)
        if (r->s[sl].t)
            check_kept(r, sl);
    check_stats(r);
    for (int sl = 0; sl < NSLOTS; sl++)
        if (r->s[sl].t && (r->bad || !close))
            slot_abort(r, sl);
    if (!r->bad)
        check_committed(r, "end");
    if (r->bad || close) {
        db_close(); /* open transactions are aborted and freed here */
        return 0;
    }
    db_empty(r);
    if (r->bad)
        db_close();
    return 0;
}

/* ---- replay's side ------------------------------------------------------ */

static size_t generate(uint64_t *rng, uint8_t *buf, size_t cap)
{
    uint64_t x = *rng;
    x ^= x >> 12, x ^= x << 25, x ^= x >> 27, *rng = x;
    size_t n = 1 + (size_t)((x * 0x2545f4914f6cdd1dull) >> 33) % (cap < 600 ? cap : 600);
    for (size_t i = 0; i < n; i++) {
        x = *rng;
        x ^= x >> 12, x ^= x << 25, x ^= x >> 27, *rng = x;
        buf[i] = (uint8_t)((x * 0x2545f4914f6cdd1dull) >> 56);
    }
    return n;
}

static char st_msg[1024];
static int st_hits;

static void st_report(const char *msg)
{
    st_hits++;
    snprintf(st_msg, sizeof st_msg, "%s", msg);
}

/*
 * With validation switched off, commits that must conflict succeed: the
 * model must notice, for each rule (write-write, read set, scanned range),
 * within a bounded number of generated programs.
 */
static int self_test(uint64_t seed, char *msg, size_t msgsz)
{
    static const char *const rules[3] = {"write-write", "read set", "scanned range"};
    int found[3] = {0, 0, 0}, nfound = 0, tries = 0;
    uint64_t rng = seed ^ 0x5eed5eed5eedull;
    uint8_t buf[600];
    void (*saved)(const char *) = fuzz_target.report;
    fuzz_target.report = st_report;
    broken_validation = true;
    for (tries = 1; tries <= 20000 && nfound < 3; tries++) {
        st_hits = 0;
        size_t n = generate(&rng, buf, sizeof buf);
        LLVMFuzzerTestOneInput(buf, n);
        for (int i = 0; st_hits && i < 3; i++)
            if (!found[i] && strstr(st_msg, rules[i])) {
                found[i] = tries;
                nfound++;
            }
    }
    broken_validation = false;
    fuzz_target.report = saved;
    snprintf(msg, msgsz,
             "with validation off, generated programs caught a commit that had to fail by the "
             "write-write rule in program %d, the read-set rule in %d, the scanned-range rule "
             "in %d (0: not within %d programs)",
             found[0], found[1], found[2], tries - 1);
    return nfound == 3;
}

struct fuzz_target fuzz_target = {"fuzz-api", generate, self_test, NULL};
