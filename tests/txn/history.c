/*
 * history.c - randomized history checking (Elle/Jepsen style,
 * simplified): run many concurrent random transactions, record what each
 * read and wrote, build the dependency graph of the committed ones and look
 * for the anomalies each isolation level forbids (Adya; the isolation table
 * of docs/design.md).
 *
 * Generator.  NTHREADS threads (more than the cores) run transactions of 2
 * to 5 operations on a small set of hot keys: point reads, range scans
 * through a cursor (forwards or backwards, over part or all of the set),
 * and writes.  Every write puts a value no other write ever puts (the
 * writer thread and a per-thread counter), so a read names the exact write
 * it saw.  Every write is a read-modify-write: the transaction reads the key
 * right before its first write of it (with txkv_get_for_update at
 * READ_COMMITTED, where a plain read is not validated) and records the
 * version it read as the new version's predecessor; so the committed
 * versions of a key form a chain from "absent", and the version order - and
 * with it every ww and rw edge - is exact, not guessed.  Some transactions
 * write a key twice (the first value must never be read: G1b), some abort
 * on purpose after writing (never to be read: G1a), some are read-only.
 * Keys are never deleted; instead the run moves to a fresh set of keys
 * every ROUND_LEN transactions (the key names carry the round), so absent
 * keys that scans observe and later transactions create - predicate
 * anti-dependencies, phantoms - are common, not just at the start.
 *
 * Checker.  Over the committed transactions:
 *   ww  T1 -> T2: T2 overwrote the version T1 wrote (T2 read it first);
 *   wr  T1 -> T2: T2 read the version T1 wrote;
 *   rw  T1 -> T2: T1 read a version (or the key's absence) and T2 wrote the
 *       next one; "rw-p" when the read was part of a range scan (a predicate
 *       read: a scan that did not see a key reads its absence).
 * Anomalies:
 *   G1a  a read of a value written by a transaction that did not commit;
 *   G1b  a read of a value its committed writer overwrote itself;
 *   G0   a cycle of ww edges;  G1c  a cycle of ww and wr edges;
 *   lost update  two committed transactions overwrote the same version;
 *   G-single  a cycle with exactly one rw edge (read skew);
 *   G2   any cycle (write skew, G2-item; with rw-p edges, predicate G2).
 * Also: a transaction reads its own writes, cursors return keys in order
 * and in range, garbage is never read, and after the run every key holds
 * the last version of its chain.  Strongly connected components (Tarjan)
 * find the cycles; the first forbidden one is printed with its edge kinds
 * and the operations of its transactions.
 * Forbidden at every level: G0, G1a, G1b, G1c, lost update (the
 * read-modify-writes read with get_for_update at READ_COMMITTED, which
 * promises a conflict if the key changes before commit).  SNAPSHOT adds
 * G-single; SERIALIZABLE forbids every cycle.  What a level allows
 * (G-single at READ_COMMITTED, write skew at SNAPSHOT) is counted (diag).
 *
 * Also asserted: read-only transactions never fail (TXKV_RDONLY ones at
 * any scheme, optimistic ones without the flag), and no call returns a
 * code other than a retryable one.
 *
 * The checker is tested first on hand-written histories: each anomaly is
 * found and forbidden exactly at the levels that forbid it, and a serial
 * history is clean.  Then the runs, each on a fresh database: OPTIMISTIC at
 * each level, PESSIMISTIC SNAPSHOT and SERIALIZABLE (300 ms lock timeout),
 * and both schemes mixed at SERIALIZABLE with many scans (pessimistic range
 * locks against optimistic commits into the range).  Last, the checker is
 * shown to fail on a real database: one whose optimistic commits skip
 * validation (db_test_skip_validation, tests only), where a contended
 * read-modify-write workload at SNAPSHOT and at SERIALIZABLE must produce a
 * forbidden anomaly within BROKEN_TRIES bounded rounds.
 *
 * Threads start together at a barrier and now and then sched_yield()
 * between operations, so that transactions interleave even on two cores.
 * The generator is deterministic by TXKV_SEED (the interleaving is not);
 * transaction counts scale with TXKV_STRESS (make stress), checked in
 * chunks of at most MAX_CHUNK so memory stays bounded.  No sleeps.
 */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h" /* db_test_skip_validation */
#include "../tap.h"
#include "txkv.h"

/* Sanitizer and debug builds are several times slower: fewer transactions.
 * (GCC defines __SANITIZE_*__; clang answers __has_feature.) */
#if defined(__SANITIZE_THREAD__)
#define HIST_TSAN 1
#elif defined(__SANITIZE_ADDRESS__)
#define HIST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HIST_TSAN 1
#elif __has_feature(address_sanitizer)
#define HIST_ASAN 1
#endif
#endif
#if defined(HIST_TSAN)
#define BASE_TXNS 8000
#elif defined(HIST_ASAN) || defined(TXKV_DEBUG)
#define BASE_TXNS 16000
#else
#define BASE_TXNS 60000
#endif

#define NTHREADS     5
#define MAXK         9      /* hot keys per round: one digit in the key name */
#define ROUND_LEN    100    /* transactions (attempts) per round of fresh keys */
#define BROKEN_TRIES 10     /* bounded rounds for the broken build to be caught */
#define MAX_CHUNK    100000 /* transactions checked at once (bounds memory) */
#define KEYLEN       11     /* "h%08u.%u" */
#define NOVAL        0u     /* a read of an absent key */
#define BADVAL       UINT64_MAX
#define VID_SHIFT    40
#define VID_MASK     ((UINT64_C(1) << VID_SHIFT) - 1)

/* ---- the history ------------------------------------------------------- */

enum { OP_READ, OP_SCAN, OP_WRITE }; /* OP_SCAN: a read made by a cursor scan */
enum { TX_COMMITTED = 1, TX_ABORTED, TX_USER_ABORT };

struct op {
    uint64_t val; /* value read (NOVAL: absent) or written */
    uint32_t key; /* global key: round * nkeys + index */
    uint8_t kind;
};

struct tx {
    uint32_t op0, nops;
    uint8_t status, cc, rdonly;
};

/* One put, indexed by its value's per-thread counter. */
struct wr {
    uint32_t tx; /* the writer's index in its thread */
    uint32_t key;
    uint64_t pred; /* the version the writer read before its first write of key */
    uint8_t final; /* the writer's last write of key */
    uint32_t succ; /* committed writes whose pred is this value: link index + 1 */
};

struct run {
    const char *name;
    int isolation, cc; /* cc 0: each transaction picks at random */
    int nkeys;
    long ntxns;
    int pct_scan, pct_read;                       /* of operations; the rest are writes */
    int pct_rdonly, pct_abort, pct_twice, pct_fu; /* of transactions / writes */
    int pct_yield; /* of operations: sched_yield() before it, to interleave */
    bool broken;
};

struct worker {
    pthread_t th;
    int id;
    uint64_t rng;
    const struct run *run;
    struct op *ops;
    size_t nops, capops;
    struct tx *txs;
    size_t ntx, captx;
    struct wr *wrs;
    size_t nwr, capwr;
    long commits, aborts, user_aborts, unexpected, bad_scans, ro_failed, rc_count[16];
    char first_unexpected[160], first_bad_scan[300];
};

static uint64_t seed;
static txkv_db *db;
static atomic_long next_attempt;
static pthread_barrier_t start_line;
static struct worker workers[NTHREADS];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        bail_out("out of memory");
    return q;
}

#define GROW(arr, n, cap)                                                                          \
    do {                                                                                           \
        if ((n) == (cap)) {                                                                        \
            (cap) = (cap) ? 2 * (cap) : 1024;                                                      \
            (arr) = xrealloc((arr), (cap) * sizeof *(arr));                                        \
        }                                                                                          \
    } while (0)

static size_t mkkey(char *buf, uint32_t round, int k)
{
    snprintf(buf, KEYLEN + 1, "h%08u.%d", (unsigned)round, k);
    return KEYLEN;
}

static void key_name(char *buf, size_t n, const struct run *r, uint32_t gkey)
{
    char k[KEYLEN + 1];
    mkkey(k, gkey / (uint32_t)r->nkeys, (int)(gkey % (uint32_t)r->nkeys));
    snprintf(buf, n, "%s", k);
}

/* Value text <-> id: (thread + 1) << 40 | counter, in hex. */
static uint64_t parse_val(const void *v, size_t n)
{
    char buf[24];
    if (n == 0 || n >= sizeof buf)
        return BADVAL;
    memcpy(buf, v, n);
    buf[n] = 0;
    char *end;
    uint64_t id = strtoull(buf, &end, 16);
    return *end || id == NOVAL ? BADVAL : id;
}

/* memcmp order, shorter first on a tie (the keyspace's order). */
static int kcmp(const void *a, size_t al, const void *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al < bl ? -1 : al > bl);
}

static bool pct(struct worker *w, int p)
{
    return (int)(tap_rand(&w->rng) % 100) < p;
}

/* ---- the generator ----------------------------------------------------- */

struct txstate {
    txkv_txn *t;
    int isolation, cc;
    uint32_t round, txi;
    uint64_t pred[MAXK];    /* version read before the first write of each key */
    uint64_t written[MAXK]; /* own latest value of each key, NOVAL if none */
};

static void push_op(struct worker *w, int kind, uint32_t key, uint64_t val)
{
    GROW(w->ops, w->nops, w->capops);
    w->ops[w->nops++] = (struct op){.val = val, .key = key, .kind = (uint8_t)kind};
}

static void note_rc(struct worker *w, int rc, const char *what)
{
    w->rc_count[-rc & 15]++;
    if (!txkv_is_retryable(rc) && rc != TXKV_ABORTED) {
        if (!w->unexpected++)
            snprintf(w->first_unexpected, sizeof w->first_unexpected, "%s: %s", what,
                     txkv_strerror(rc));
    }
}

/* Where a scan went wrong, for the diag line. */
struct scanpos {
    const struct txstate *s;
    bool back;
    int lo, hi, last;
};

static void bad_scan(struct worker *w, const struct scanpos *p, const char *what, const void *key,
                     size_t klen)
{
    if (w->bad_scans++)
        return;
    char k[64], own[3 * MAXK + 1] = "none";
    size_t n = klen < sizeof k - 1 ? klen : sizeof k - 1;
    for (size_t i = 0; i < n; i++) {
        char ch = key ? ((const char *)key)[i] : '?';
        k[i] = ch >= 32 && ch < 127 ? ch : '?';
    }
    k[n] = 0;
    for (int i = 0, m = 0; i < w->run->nkeys; i++)
        if (p->s->written[i] != NOVAL)
            m += snprintf(own + m, sizeof own - (size_t)m, "%s%d", m ? "," : "", i);
    snprintf(w->first_bad_scan, sizeof w->first_bad_scan,
             "%s %s: %s %s scan of keys %d..%d of round %u, previous key index %d, own "
             "pending writes to keys %s",
             what, k, p->s->cc == TXKV_PESSIMISTIC ? "PESSIMISTIC" : "OPTIMISTIC",
             p->back ? "backward" : "forward", p->lo, p->hi, (unsigned)p->s->round, p->last, own);
}

static int do_read(struct worker *w, struct txstate *s, int k, bool fu, int kind, uint64_t *out)
{
    char key[KEYLEN + 1];
    const void *v;
    size_t vl;
    size_t kl = mkkey(key, s->round, k);
    int rc = fu ? txkv_get_for_update(s->t, NULL, key, kl, &v, &vl)
                : txkv_get(s->t, NULL, key, kl, &v, &vl);
    if (rc == TXKV_NOTFOUND) {
        *out = NOVAL;
    } else if (rc) {
        note_rc(w, rc, fu ? "get_for_update" : "get");
        return rc;
    } else {
        *out = parse_val(v, vl);
    }
    push_op(w, kind, s->round * (uint32_t)w->run->nkeys + (uint32_t)k, *out);
    return 0;
}

/* A scan of keys lo..hi of the round, forwards or backwards. */
static int do_scan(struct worker *w, struct txstate *s)
{
    int nk = w->run->nkeys;
    int lo = (int)(tap_rand(&w->rng) % (uint64_t)nk), hi;
    if (pct(w, 40))
        lo = 0, hi = nk - 1;
    else
        hi = lo + (int)(tap_rand(&w->rng) % (uint64_t)(nk - lo));
    bool back = pct(w, 30);
    char lok[KEYLEN + 1], hik[KEYLEN + 1];
    mkkey(lok, s->round, lo);
    mkkey(hik, s->round, hi);
    uint64_t seen[MAXK] = {0};
    bool got[MAXK] = {false}, bad = false;
    txkv_cursor *c;
    int rc = txkv_cursor_open(s->t, NULL, &c);
    if (rc) {
        note_rc(w, rc, "cursor_open");
        return rc;
    }
    int last = back ? hi + 1 : lo - 1, above = 0;
    struct scanpos sp = {.s = s, .back = back, .lo = lo, .hi = hi, .last = last};
    char pk[KEYLEN]; /* the cursor's previous key: every step moves strictly */
    size_t pkl = 0;
    rc = txkv_cursor_seek(c, back ? hik : lok, KEYLEN);
    if (back && rc == TXKV_NOTFOUND) {
        bad_scan(w, &sp, "seek found nothing at or after", hik, KEYLEN);
        bad = true;
    }
    while (rc == 0) {
        const void *k, *v;
        size_t kl, vl;
        if ((rc = txkv_cursor_get(c, &k, &kl, &v, &vl)) != 0) {
            bad_scan(w, &sp, "cursor_get failed on a positioned cursor; probe", back ? hik : lok,
                     KEYLEN);
            bad = true;
            break;
        }
        sp.last = last;
        if (pkl && (back ? kcmp(k, kl, pk, pkl) >= 0 : kcmp(k, kl, pk, pkl) <= 0)) {
            bad_scan(w, &sp, "cursor stepped the wrong way, to", k, kl);
            bad = true;
            break;
        }
        if (kl > sizeof pk) {
            bad_scan(w, &sp, "cursor returned a key nobody wrote:", k, kl);
            bad = true;
            break;
        }
        memcpy(pk, k, kl);
        pkl = kl;
        if (back && kcmp(k, kl, hik, KEYLEN) > 0) {
            /* The seek lands past hi when hi is absent.  At READ_COMMITTED
             * every step reads the newest commits, so keys created since,
             * between there and hi, show up on the way back too; in a
             * snapshot only the landing key can be past hi. */
            if (++above > 1 && s->isolation != TXKV_READ_COMMITTED) {
                bad_scan(w, &sp, "cursor returned a second key past the range,", k, kl);
                bad = true;
                break;
            }
            rc = txkv_cursor_prev(c);
            continue;
        }
        if (back ? kcmp(k, kl, lok, KEYLEN) < 0 : kcmp(k, kl, hik, KEYLEN) > 0)
            break;
        const char *ks = k;
        int idx = kl == KEYLEN && ks[KEYLEN - 2] == '.' ? ks[KEYLEN - 1] - '0' : -1;
        if (idx < lo || idx > hi || memcmp(k, lok, KEYLEN - 1) != 0 ||
            (back ? idx >= last : idx <= last)) {
            bad_scan(w, &sp, "cursor returned", k, kl);
            bad = true;
            break;
        }
        last = idx;
        got[idx] = true;
        seen[idx] = parse_val(v, vl);
        rc = back ? txkv_cursor_prev(c) : txkv_cursor_next(c);
    }
    txkv_cursor_close(c);
    if (bad)
        return TXKV_INVALID; /* counted in bad_scans; the transaction is dropped */
    if (rc && rc != TXKV_NOTFOUND) {
        note_rc(w, rc, "cursor");
        return rc;
    }
    for (int k = lo; k <= hi; k++)
        push_op(w, OP_SCAN, s->round * (uint32_t)nk + (uint32_t)k, got[k] ? seen[k] : NOVAL);
    return 0;
}

static int do_write(struct worker *w, struct txstate *s, int k, int isolation)
{
    const struct run *r = w->run;
    uint32_t gkey = s->round * (uint32_t)r->nkeys + (uint32_t)k;
    uint64_t v;
    int rc;
    if (s->written[k] == NOVAL) {
        /* Read-modify-write: the version read is the new one's predecessor. */
        bool fu = isolation == TXKV_READ_COMMITTED || pct(w, r->pct_fu);
        if ((rc = do_read(w, s, k, fu, OP_READ, &v)))
            return rc;
        s->pred[k] = v;
    } else if (pct(w, 50) && (rc = do_read(w, s, k, false, OP_READ, &v))) {
        return rc; /* read-your-writes, checked later */
    }
    int puts = pct(w, r->pct_twice) ? 2 : 1;
    for (int i = 0; i < puts; i++) {
        GROW(w->wrs, w->nwr, w->capwr);
        uint64_t id = ((uint64_t)(w->id + 1) << VID_SHIFT) | (uint64_t)(w->nwr + 1);
        w->wrs[w->nwr++] = (struct wr){.tx = s->txi, .key = gkey, .pred = s->pred[k]};
        char key[KEYLEN + 1], val[24];
        size_t kl = mkkey(key, s->round, k);
        int vl = snprintf(val, sizeof val, "%" PRIx64, id);
        if ((rc = txkv_put(s->t, NULL, key, kl, val, (size_t)vl))) {
            note_rc(w, rc, "put");
            return rc;
        }
        push_op(w, OP_WRITE, gkey, id);
        s->written[k] = id;
    }
    return 0;
}

static void one_txn(struct worker *w, long n)
{
    const struct run *r = w->run;
    struct txstate s = {
        .isolation = r->isolation, .round = (uint32_t)(n / ROUND_LEN), .txi = (uint32_t)w->ntx};
    txkv_txn_options o;
    txkv_txn_options_init(&o);
    o.isolation = r->isolation;
    o.cc = r->cc ? r->cc : (pct(w, 50) ? TXKV_OPTIMISTIC : TXKV_PESSIMISTIC);
    o.lock_timeout_us = 300000;
    bool rdonly = pct(w, r->pct_rdonly);
    if (rdonly && pct(w, 50))
        o.flags = TXKV_RDONLY; /* else read-only by choice, without the flag */
    GROW(w->txs, w->ntx, w->captx);
    struct tx *tx = &w->txs[w->ntx++];
    *tx = (struct tx){
        .op0 = (uint32_t)w->nops, .cc = (uint8_t)o.cc, .rdonly = (uint8_t)(o.flags ? 2 : rdonly)};
    s.cc = o.cc;
    int rc = txkv_begin(db, &o, &s.t);
    if (rc) {
        note_rc(w, rc, "begin");
        tx->status = TX_ABORTED;
        return;
    }
    int nops = 2 + (int)(tap_rand(&w->rng) % 4);
    for (int i = 0; i < nops && rc == 0; i++) {
        int p = (int)(tap_rand(&w->rng) % 100);
        int k = (int)(tap_rand(&w->rng) % (uint64_t)r->nkeys);
        uint64_t v;
        if (pct(w, r->pct_yield))
            sched_yield(); /* let another thread in between our operations */
        if (p < r->pct_scan)
            rc = do_scan(w, &s);
        else if (rdonly || p < r->pct_scan + r->pct_read)
            rc = do_read(w, &s, k, false, OP_READ, &v);
        else
            rc = do_write(w, &s, k, r->isolation);
    }
    if (rc) {
        txkv_abort(s.t);
        tx->status = TX_ABORTED;
    } else if (!rdonly && pct(w, r->pct_abort)) {
        txkv_abort(s.t);
        tx->status = TX_USER_ABORT;
    } else if ((rc = txkv_commit(s.t)) != 0) {
        note_rc(w, rc, "commit");
        tx->status = TX_ABORTED;
    } else {
        tx->status = TX_COMMITTED;
    }
    tx->nops = (uint32_t)(w->nops - tx->op0);
    for (int k = 0; k < r->nkeys; k++)
        if (s.written[k] != NOVAL)
            w->wrs[(s.written[k] & VID_MASK) - 1].final = 1;
    w->commits += tx->status == TX_COMMITTED;
    w->aborts += tx->status == TX_ABORTED;
    w->user_aborts += tx->status == TX_USER_ABORT;
    /* Never fail: TXKV_RDONLY transactions (no locks, no validation) and
     * optimistic ones without writes (nothing to validate). */
    if (tx->status == TX_ABORTED && (o.flags || (rdonly && o.cc == TXKV_OPTIMISTIC)))
        w->ro_failed++;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    long n;
    pthread_barrier_wait(&start_line);
    while ((n = atomic_fetch_add(&next_attempt, 1)) < w->run->ntxns)
        one_txn(w, n);
    return NULL;
}

/* ---- the checker ------------------------------------------------------- */

enum { E_WW = 1, E_WR = 2, E_RW = 4, E_RWP = 8 };
#define E_ALL (E_WW | E_WR | E_RW | E_RWP)

struct edge {
    uint32_t from, to, key;
    uint8_t kind;
};

struct link {
    uint32_t tx; /* global index of a committed writer */
    uint64_t val;
    uint32_t next;
};

struct checker {
    const struct run *run;
    size_t n; /* transactions, all threads */
    size_t base[NTHREADS + 1];
    uint8_t *thr; /* global index -> thread */
    struct edge *e;
    size_t ne, cape;
    size_t *off; /* CSR: edges from v are e[off[v] .. off[v+1]) */
    struct link *links;
    size_t nlinks, caplinks;
    uint32_t *root; /* per key: committed writes of the first version */
    uint8_t *fork;  /* per key: two committed writes share a predecessor */
    size_t nkeys;
    uint32_t *stamp, *parent, *queue;
    uint32_t gen;
    /* results */
    long g1a, g1b, garbage, ryw, lost, final_bad;
    long g0, g1c, gsingle, g2, g2item, cyc_all;
    char ex_g1a[400], ex_g1b[400], ex_garbage[400], ex_ryw[400], ex_lost[600], ex_final[400];
    char ex_g0[1200], ex_g1c[1200], ex_gsingle[1200], ex_g2[1200];
    uint32_t cyc_g0[8], cyc_g1c[8], cyc_gsingle[8], cyc_g2[8]; /* transactions, for diag */
    int ncyc_g0, ncyc_g1c, ncyc_gsingle, ncyc_g2;
    uint32_t cyc_lost[2];
    int ncyc_lost;
};

static const struct tx *gtx(const struct checker *c, uint32_t g)
{
    int t = c->thr[g];
    return &workers[t].txs[g - c->base[t]];
}

static const struct op *gops(const struct checker *c, uint32_t g)
{
    return &workers[c->thr[g]].ops[gtx(c, g)->op0];
}

/* The put behind a value id, or NULL for garbage. */
static struct wr *lookup(const struct checker *c, uint64_t id, uint32_t *gtxp)
{
    uint64_t t = id >> VID_SHIFT, i = id & VID_MASK;
    if (id == BADVAL || t < 1 || t > NTHREADS || i < 1 || i > workers[t - 1].nwr)
        return NULL;
    struct wr *w = &workers[t - 1].wrs[i - 1];
    *gtxp = (uint32_t)(c->base[t - 1] + w->tx);
    return w;
}

static void val_name(char *buf, size_t n, uint64_t v)
{
    if (v == NOVAL)
        snprintf(buf, n, "absent");
    else if (v == BADVAL)
        snprintf(buf, n, "garbage");
    else
        snprintf(buf, n, "%u:%" PRIu64, (unsigned)(v >> VID_SHIFT), v & VID_MASK);
}

static const char *status_name(int s)
{
    return s == TX_COMMITTED ? "committed" : s == TX_USER_ABORT ? "aborted by the test" : "failed";
}

/* "T12 (thread 3, OPTIMISTIC): r h00000001.2=1:5 w h00000001.2=3:7 ..." */
static void tx_describe(const struct checker *c, uint32_t g)
{
    const struct tx *tx = gtx(c, g);
    const struct op *o = gops(c, g);
    char line[600];
    int n = snprintf(line, sizeof line, "  T%u (thread %d, %s%s, %s):", g, c->thr[g] + 1,
                     tx->cc == TXKV_PESSIMISTIC ? "PESSIMISTIC" : "OPTIMISTIC",
                     tx->rdonly == 2 ? ", TXKV_RDONLY"
                     : tx->rdonly    ? ", read-only"
                                     : "",
                     status_name(tx->status));
    for (uint32_t i = 0; i < tx->nops && n < (int)sizeof line - 48; i++) {
        char k[32], v[32];
        key_name(k, sizeof k, c->run, o[i].key);
        val_name(v, sizeof v, o[i].val);
        n += snprintf(line + n, sizeof line - (size_t)n, " %s %s=%s",
                      o[i].kind == OP_WRITE  ? "w"
                      : o[i].kind == OP_SCAN ? "scan"
                                             : "r",
                      k, v);
    }
    diag("%s", line);
}

static void add_edge(struct checker *c, uint32_t from, uint32_t to, uint32_t key, int kind)
{
    if (from == to)
        return;
    GROW(c->e, c->ne, c->cape);
    c->e[c->ne++] = (struct edge){.from = from, .to = to, .key = key, .kind = (uint8_t)kind};
}

static void example(char *buf, size_t n, long count, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void example(char *buf, size_t n, long count, const char *fmt, ...)
{
    if (count != 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, n, fmt, ap);
    va_end(ap);
}

/* Links every committed final write into its predecessor's successor list. */
static void build_versions(struct checker *c)
{
    for (uint32_t g = 0; g < c->n; g++) {
        const struct tx *tx = gtx(c, g);
        if (tx->status != TX_COMMITTED)
            continue;
        const struct op *o = gops(c, g);
        for (uint32_t i = 0; i < tx->nops; i++) {
            uint32_t wt;
            struct wr *w;
            if (o[i].kind != OP_WRITE || !(w = lookup(c, o[i].val, &wt)) || !w->final)
                continue;
            uint32_t *head;
            uint32_t pt;
            struct wr *p = w->pred == NOVAL ? NULL : lookup(c, w->pred, &pt);
            if (w->pred == NOVAL)
                head = &c->root[w->key];
            else if (p)
                head = &p->succ;
            else
                continue; /* read garbage: reported as such */
            GROW(c->links, c->nlinks, c->caplinks);
            c->links[c->nlinks] = (struct link){.tx = g, .val = o[i].val, .next = *head};
            *head = (uint32_t)++c->nlinks;
        }
    }
}

/* Successor list of version v of key (v NOVAL: the key's absence). */
static uint32_t succ_of(const struct checker *c, uint32_t key, uint64_t v)
{
    uint32_t t;
    struct wr *w;
    if (v == NOVAL)
        return c->root[key];
    return (w = lookup(c, v, &t)) ? w->succ : 0;
}

static void build_edges(struct checker *c)
{
    char kn[32], vn[32];
    for (uint32_t g = 0; g < c->n; g++) {
        const struct tx *tx = gtx(c, g);
        if (tx->status != TX_COMMITTED)
            continue;
        const struct op *o = gops(c, g);
        uint64_t own[MAXK] = {0};
        for (uint32_t i = 0; i < tx->nops; i++) {
            uint32_t key = o[i].key, k = key % (uint32_t)c->run->nkeys, wt;
            uint64_t v = o[i].val;
            struct wr *w;
#define NAMES() (key_name(kn, sizeof kn, c->run, key), val_name(vn, sizeof vn, v))
            if (o[i].kind == OP_WRITE) {
                own[k] = v;
                w = lookup(c, v, &wt);
                if (w && w->final && w->pred != NOVAL) {
                    uint32_t pt;
                    struct wr *p = lookup(c, w->pred, &pt);
                    if (p &&
                        workers[c->thr[pt]].txs[pt - c->base[c->thr[pt]]].status == TX_COMMITTED &&
                        p->final)
                        add_edge(c, pt, g, key, E_WW);
                }
                continue;
            }
            if (own[k] != NOVAL) { /* a read of a key it wrote: its own latest value */
                if (v != own[k]) {
                    if (++c->ryw == 1)
                        NAMES();
                    example(c->ex_ryw, sizeof c->ex_ryw, c->ryw,
                            "T%u read %s=%s after writing it, not its own latest write", g, kn, vn);
                }
                continue;
            }
            if (v != NOVAL) {
                if (!(w = lookup(c, v, &wt)) || w->key != key) {
                    if (++c->garbage == 1)
                        NAMES();
                    example(c->ex_garbage, sizeof c->ex_garbage, c->garbage,
                            "T%u read %s=%s: no write put that value there", g, kn, vn);
                    continue;
                }
                int st = gtx(c, wt)->status;
                if (st != TX_COMMITTED) {
                    if (++c->g1a == 1)
                        NAMES();
                    example(c->ex_g1a, sizeof c->ex_g1a, c->g1a,
                            "G1a: T%u read %s=%s, written by T%u, which %s", g, kn, vn, wt,
                            st == TX_USER_ABORT ? "the test aborted" : "failed to commit");
                    continue;
                }
                if (!w->final) {
                    if (++c->g1b == 1)
                        NAMES();
                    example(c->ex_g1b, sizeof c->ex_g1b, c->g1b,
                            "G1b: T%u read %s=%s, an intermediate write of T%u", g, kn, vn, wt);
                    continue;
                }
                add_edge(c, wt, g, key, E_WR);
            }
            for (uint32_t l = succ_of(c, key, v); l; l = c->links[l - 1].next)
                add_edge(c, g, c->links[l - 1].tx, key, o[i].kind == OP_SCAN ? E_RWP : E_RW);
        }
    }
#undef NAMES
    /* CSR by source. */
    c->off = calloc(c->n + 1, sizeof *c->off);
    struct edge *sorted = xrealloc(NULL, c->ne * sizeof *sorted);
    for (size_t i = 0; i < c->ne; i++)
        c->off[c->e[i].from + 1]++;
    for (size_t v = 0; v < c->n; v++)
        c->off[v + 1] += c->off[v];
    size_t *pos = xrealloc(NULL, (c->n + 1) * sizeof *pos);
    memcpy(pos, c->off, (c->n + 1) * sizeof *pos);
    for (size_t i = 0; i < c->ne; i++)
        sorted[pos[c->e[i].from]++] = c->e[i];
    free(pos);
    free(c->e);
    c->e = sorted;
}

/* Lost updates: two committed writes with the same predecessor. */
static void fork_at(struct checker *c, uint32_t head, uint32_t key, uint64_t pred)
{
    if (!head || !c->links[head - 1].next)
        return;
    c->fork[key] = 1;
    if (++c->lost == 1) {
        char kn[32], vn[32];
        const struct link *a = &c->links[head - 1], *b = &c->links[a->next - 1];
        key_name(kn, sizeof kn, c->run, key);
        val_name(vn, sizeof vn, pred);
        snprintf(c->ex_lost, sizeof c->ex_lost,
                 "lost update: T%u and T%u both read %s=%s and both overwrote it", b->tx, a->tx, kn,
                 vn);
        c->cyc_lost[0] = b->tx;
        c->cyc_lost[1] = a->tx;
        c->ncyc_lost = 2;
    }
}

static void check_forks(struct checker *c)
{
    for (size_t key = 0; key < c->nkeys; key++)
        fork_at(c, c->root[key], (uint32_t)key, NOVAL);
    for (int t = 0; t < NTHREADS; t++)
        for (size_t i = 0; i < workers[t].nwr; i++) {
            struct wr *w = &workers[t].wrs[i];
            fork_at(c, w->succ, w->key, ((uint64_t)(t + 1) << VID_SHIFT) | (uint64_t)(i + 1));
        }
}

/* After the run every key holds the last version of its chain, and every
 * committed write of the key is on the chain. */
static void check_final(struct checker *c)
{
    long *writes = calloc(c->nkeys, sizeof *writes);
    for (size_t i = 0; i < c->nlinks; i++) {
        uint32_t wt;
        struct wr *w = lookup(c, c->links[i].val, &wt);
        writes[w->key]++;
    }
    txkv_txn *t;
    if (txkv_begin(db, NULL, &t))
        bail_out("txkv_begin failed");
    for (size_t key = 0; key < c->nkeys; key++) {
        char kn[32], vn[32], wn[32];
        key_name(kn, sizeof kn, c->run, (uint32_t)key);
        uint64_t tail = NOVAL;
        long len = 0;
        if (c->fork[key])
            continue; /* reported as a lost update */
        for (uint32_t l = c->root[key]; l; l = succ_of(c, (uint32_t)key, tail)) {
            tail = c->links[l - 1].val;
            len++;
        }
        const void *v;
        size_t vl;
        int rc = txkv_get(t, NULL, kn, strlen(kn), &v, &vl);
        uint64_t got = rc == TXKV_NOTFOUND ? NOVAL : rc ? BADVAL : parse_val(v, vl);
        if (got != tail || len != writes[key]) {
            val_name(vn, sizeof vn, got);
            val_name(wn, sizeof wn, tail);
            example(c->ex_final, sizeof c->ex_final, ++c->final_bad,
                    "%s holds %s at the end; its chain of %ld versions (%ld committed writes) "
                    "ends at %s",
                    kn, vn, len, writes[key], wn);
        }
    }
    txkv_abort(t);
    free(writes);
}

/* Iterative Tarjan over the edges in mask; returns the number of components. */
static uint32_t scc(const struct checker *c, unsigned mask, uint32_t *comp)
{
    const uint32_t UNSET = UINT32_MAX;
    size_t n = c->n;
    uint32_t *idx = xrealloc(NULL, n * sizeof *idx), *low = xrealloc(NULL, n * sizeof *low);
    uint32_t *stk = xrealloc(NULL, n * sizeof *stk), *cs = xrealloc(NULL, n * sizeof *cs);
    size_t *ce = xrealloc(NULL, n * sizeof *ce);
    uint8_t *on = calloc(n, 1);
    uint32_t counter = 0, ncomp = 0;
    size_t sp = 0, csp = 0;
    for (size_t i = 0; i < n; i++)
        idx[i] = UNSET;
    for (uint32_t s = 0; s < n; s++) {
        if (idx[s] != UNSET)
            continue;
        idx[s] = low[s] = counter++;
        stk[sp++] = s;
        on[s] = 1;
        cs[csp] = s;
        ce[csp++] = c->off[s];
        while (csp) {
            uint32_t v = cs[csp - 1];
            size_t e = ce[csp - 1];
            if (e < c->off[v + 1]) {
                ce[csp - 1]++;
                if (!(c->e[e].kind & mask))
                    continue;
                uint32_t w = c->e[e].to;
                if (idx[w] == UNSET) {
                    idx[w] = low[w] = counter++;
                    stk[sp++] = w;
                    on[w] = 1;
                    cs[csp] = w;
                    ce[csp++] = c->off[w];
                } else if (on[w] && idx[w] < low[v]) {
                    low[v] = idx[w];
                }
                continue;
            }
            if (low[v] == idx[v]) {
                uint32_t x;
                do {
                    x = stk[--sp];
                    on[x] = 0;
                    comp[x] = ncomp;
                } while (x != v);
                ncomp++;
            }
            if (--csp && low[v] < low[cs[csp - 1]])
                low[cs[csp - 1]] = low[v];
        }
    }
    free(idx);
    free(low);
    free(stk);
    free(cs);
    free(ce);
    free(on);
    return ncomp;
}

/* Shortest path from s to t over edges in mask inside component comp[s]
 * (t == s: a cycle).  Writes its edge indices to path; returns the length,
 * 0 if there is none. */
static size_t bfs(struct checker *c, unsigned mask, const uint32_t *comp, uint32_t s, uint32_t t,
                  size_t *path, size_t maxpath)
{
    uint32_t gen = ++c->gen, head = 0, tail = 0;
    c->queue[tail++] = s;
    c->stamp[s] = gen;
    while (head < tail) {
        uint32_t v = c->queue[head++];
        for (size_t e = c->off[v]; e < c->off[v + 1]; e++) {
            uint32_t w = c->e[e].to;
            if (!(c->e[e].kind & mask) || comp[w] != comp[s])
                continue;
            if (w == t) {
                size_t n = 0, pe = e;
                for (;;) { /* count, then fill backwards */
                    n++;
                    uint32_t from = c->e[pe].from;
                    if (from == s)
                        break;
                    pe = c->parent[from];
                }
                size_t len = n;
                pe = e;
                for (size_t i = n; i-- > 0;) {
                    if (i < maxpath)
                        path[i] = pe;
                    if (i)
                        pe = c->parent[c->e[pe].from];
                }
                return len;
            }
            if (c->stamp[w] != gen) {
                c->stamp[w] = gen;
                c->parent[w] = (uint32_t)e;
                c->queue[tail++] = w;
            }
        }
    }
    return 0;
}

static const char *kind_name(int k)
{
    return k == E_WW ? "ww" : k == E_WR ? "wr" : k == E_RW ? "rw" : "rw-p";
}

/* "G1c: T1 -ww(h00000000.3)-> T7 -wr(h00000000.1)-> T1" */
static void describe_cycle(struct checker *c, char *buf, size_t n, const char *what,
                           const size_t *path, size_t len, size_t maxpath, uint32_t *txs, int *ntxs)
{
    int m = snprintf(buf, n, "%s: T%u", what, c->e[path[0]].from);
    *ntxs = 0;
    for (size_t i = 0; i < len && i < maxpath && m < (int)n - 64; i++) {
        char kn[32];
        const struct edge *e = &c->e[path[i]];
        key_name(kn, sizeof kn, c->run, e->key);
        m += snprintf(buf + m, n - (size_t)m, " -%s(%s)-> T%u", kind_name(e->kind), kn, e->to);
        if (*ntxs < 8)
            txs[(*ntxs)++] = e->from;
    }
    if (len > maxpath)
        snprintf(buf + m, n - (size_t)m, " ... (%zu edges)", len);
}

#define MAXPATH 32

/* Components of the edges in mask that hold a cycle; the first one described. */
static long cycles(struct checker *c, unsigned mask, const char *what, char *ex, size_t exn,
                   uint32_t *txs, int *ntxs, uint32_t *comp)
{
    uint32_t ncomp = scc(c, mask, comp);
    uint32_t *size = calloc(ncomp, sizeof *size);
    long found = 0;
    for (size_t v = 0; v < c->n; v++)
        size[comp[v]]++;
    for (uint32_t v = 0; v < c->n; v++) {
        if (size[comp[v]] < 2)
            continue;
        if (++found == 1) {
            size_t path[MAXPATH];
            size_t len = bfs(c, mask, comp, v, v, path, MAXPATH);
            describe_cycle(c, ex, exn, what, path, len, MAXPATH, txs, ntxs);
        }
        size[comp[v]] = 0; /* count each component once */
    }
    free(size);
    return found;
}

/* G-single: an rw edge a -> b and a path b -> a of ww and wr edges; counted
 * per component of the whole graph. */
static void check_gsingle(struct checker *c, const uint32_t *comp)
{
    uint32_t ncomp = 0;
    for (size_t v = 0; v < c->n; v++)
        if (comp[v] + 1 > ncomp)
            ncomp = comp[v] + 1;
    uint8_t *done = calloc(ncomp ? ncomp : 1, 1);
    size_t path[MAXPATH + 1];
    for (size_t e = 0; e < c->ne; e++) {
        const struct edge *x = &c->e[e];
        if (!(x->kind & (E_RW | E_RWP)) || comp[x->from] != comp[x->to] || done[comp[x->from]])
            continue;
        size_t len = bfs(c, E_WW | E_WR, comp, x->to, x->from, path + 1, MAXPATH);
        if (!len)
            continue;
        done[comp[x->from]] = 1;
        if (++c->gsingle == 1) {
            path[0] = e;
            describe_cycle(c, c->ex_gsingle, sizeof c->ex_gsingle, "G-single", path, len + 1,
                           MAXPATH + 1, c->cyc_gsingle, &c->ncyc_gsingle);
        }
    }
    free(done);
}

static void check(struct checker *c, const struct run *r)
{
    memset(c, 0, sizeof *c);
    c->run = r;
    uint32_t maxkey = 0;
    for (int t = 0; t < NTHREADS; t++) {
        c->base[t + 1] = c->base[t] + workers[t].ntx;
        for (size_t i = 0; i < workers[t].nwr; i++)
            if (workers[t].wrs[i].key + 1 > maxkey)
                maxkey = workers[t].wrs[i].key + 1;
        for (size_t i = 0; i < workers[t].nops; i++)
            if (workers[t].ops[i].key + 1 > maxkey)
                maxkey = workers[t].ops[i].key + 1;
    }
    c->n = c->base[NTHREADS];
    c->nkeys = maxkey;
    c->thr = xrealloc(NULL, c->n);
    for (int t = 0; t < NTHREADS; t++)
        memset(c->thr + c->base[t], t, workers[t].ntx);
    c->root = calloc(c->nkeys + 1, sizeof *c->root);
    c->fork = calloc(c->nkeys + 1, 1);
    c->stamp = calloc(c->n + 1, sizeof *c->stamp);
    c->parent = calloc(c->n + 1, sizeof *c->parent);
    c->queue = calloc(c->n + 1, sizeof *c->queue);
    uint32_t *comp = calloc(c->n + 1, sizeof *comp);
    if (!c->root || !c->fork || !c->stamp || !c->parent || !c->queue || !comp)
        bail_out("out of memory");

    build_versions(c);
    build_edges(c);
    check_forks(c);
    if (db)
        check_final(c);
    c->g0 = cycles(c, E_WW, "G0", c->ex_g0, sizeof c->ex_g0, c->cyc_g0, &c->ncyc_g0, comp);
    c->g1c =
        cycles(c, E_WW | E_WR, "G1c", c->ex_g1c, sizeof c->ex_g1c, c->cyc_g1c, &c->ncyc_g1c, comp);
    c->g2item = cycles(c, E_WW | E_WR | E_RW, "G2-item", c->ex_g2, sizeof c->ex_g2, c->cyc_g2,
                       &c->ncyc_g2, comp);
    c->g2 = cycles(c, E_ALL, "cycle", c->ex_g2, sizeof c->ex_g2, c->cyc_g2, &c->ncyc_g2, comp);
    check_gsingle(c, comp); /* comp: the components of the whole graph */
    free(comp);
}

static void checker_free(struct checker *c)
{
    free(c->thr);
    free(c->e);
    free(c->off);
    free(c->links);
    free(c->root);
    free(c->fork);
    free(c->stamp);
    free(c->parent);
    free(c->queue);
}

/* The forbidden anomalies of the run's level; the first of each kind is described. */
static long forbidden(struct checker *c, int isolation, bool print)
{
    struct {
        long n;
        const char *ex;
        const uint32_t *txs;
        int ntxs;
        bool on;
    } a[] = {
        {c->garbage, c->ex_garbage, NULL, 0, true},
        {c->ryw, c->ex_ryw, NULL, 0, true},
        {c->g1a, c->ex_g1a, NULL, 0, true},
        {c->g1b, c->ex_g1b, NULL, 0, true},
        {c->g0, c->ex_g0, c->cyc_g0, c->ncyc_g0, true},
        {c->g1c, c->ex_g1c, c->cyc_g1c, c->ncyc_g1c, true},
        {c->lost, c->ex_lost, c->cyc_lost, c->ncyc_lost, true},
        {c->final_bad, c->ex_final, NULL, 0, true},
        {c->gsingle, c->ex_gsingle, c->cyc_gsingle, c->ncyc_gsingle,
         isolation != TXKV_READ_COMMITTED},
        {c->g2, c->ex_g2, c->cyc_g2, c->ncyc_g2, isolation == TXKV_SERIALIZABLE},
    };
    long total = 0;
    for (size_t i = 0; i < sizeof a / sizeof a[0]; i++) {
        if (!a[i].on || !a[i].n)
            continue;
        total += a[i].n;
        if (print) {
            diag("%s (%ld in all)", a[i].ex, a[i].n);
            for (int j = 0; j < a[i].ntxs; j++)
                tx_describe(c, a[i].txs[j]);
        }
    }
    return total;
}

/* ---- runs -------------------------------------------------------------- */

static const char *iso_name(int i)
{
    return i == TXKV_READ_COMMITTED ? "READ_COMMITTED"
           : i == TXKV_SNAPSHOT     ? "SNAPSHOT"
                                    : "SERIALIZABLE";
}

static void open_db(bool broken)
{
    txkv_txn *t;
    if (txkv_open(NULL, &db))
        bail_out("txkv_open failed");
    if (broken)
        db_test_skip_validation(db, true);
    /* A key after every round's keys: a backward scan's seek always lands. */
    if (txkv_begin(db, NULL, &t) || txkv_put(t, NULL, "z", 1, "sentinel", 8) || txkv_commit(t))
        bail_out("sentinel commit failed");
}

static void workers_reset(const struct run *r)
{
    for (int i = 0; i < NTHREADS; i++) {
        struct worker *w = &workers[i];
        free(w->ops);
        free(w->txs);
        free(w->wrs);
        memset(w, 0, sizeof *w);
        w->id = i;
        w->run = r;
    }
}

static void generate(const struct run *r, uint64_t run_seed)
{
    atomic_store(&next_attempt, 0);
    workers_reset(r);
    for (int i = 0; i < NTHREADS; i++) {
        struct worker *w = &workers[i];
        w->rng = run_seed * 0x9e3779b97f4a7c15ull + (uint64_t)(i + 1) * 0xbf58476d1ce4e5b9ull;
        if (pthread_create(&w->th, NULL, worker_main, w))
            bail_out("pthread_create failed");
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(workers[i].th, NULL);
}

/* One run: generate, check, assert; returns the forbidden anomalies found.
 * A long run (TXKV_STRESS) goes in chunks of at most MAX_CHUNK transactions,
 * each on a fresh database and checked on its own, so that the history in
 * memory stays bounded; the counts add up. */
static long one_run(const struct run *r, uint64_t run_seed, bool assert_clean)
{
    long commits = 0, aborts = 0, user = 0, unexpected = 0, bad = 0, ro = 0, rcs[16] = {0};
    long nf = 0, gsingle = 0, g2 = 0, g2item = 0, lost = 0, g0 = 0, g1a = 0, g1b = 0, g1c = 0;
    size_t edges = 0;
    double trun = 0, tcheck = 0;
    char ue[sizeof workers[0].first_unexpected] = "", bs[sizeof workers[0].first_bad_scan] = "";
    struct run chunk = *r;
    for (long left = r->ntxns, part = 0; left > 0; left -= chunk.ntxns, part++) {
        chunk.ntxns = left < MAX_CHUNK ? left : MAX_CHUNK;
        double t0 = now_s();
        open_db(r->broken);
        generate(&chunk, run_seed + (uint64_t)part * 7919u);
        double t1 = now_s();
        for (int i = 0; i < NTHREADS; i++) {
            struct worker *w = &workers[i];
            commits += w->commits;
            aborts += w->aborts;
            user += w->user_aborts;
            if (w->unexpected && !ue[0])
                snprintf(ue, sizeof ue, "%s", w->first_unexpected);
            if (w->bad_scans && !bs[0])
                snprintf(bs, sizeof bs, "%s", w->first_bad_scan);
            unexpected += w->unexpected;
            bad += w->bad_scans;
            ro += w->ro_failed;
            for (int j = 0; j < 16; j++)
                rcs[j] += w->rc_count[j];
        }
        struct checker c;
        check(&c, &chunk);
        txkv_close(db);
        db = NULL;
        trun += t1 - t0;
        tcheck += now_s() - t1;
        long f = forbidden(&c, r->isolation, false);
        if (f && !nf)
            forbidden(&c, r->isolation, true); /* the first chunk that has any */
        nf += f;
        edges += c.ne;
        gsingle += c.gsingle, g2 += c.g2, g2item += c.g2item, lost += c.lost;
        g0 += c.g0, g1a += c.g1a, g1b += c.g1b, g1c += c.g1c;
        checker_free(&c);
    }
    diag("%s: %ld committed, %ld failed (CONFLICT %ld, DEADLOCK %ld, LOCK_TIMEOUT %ld), "
         "%ld aborted by the test; %zu edges; run %.2f s, check %.2f s",
         r->name, commits, aborts, rcs[-TXKV_CONFLICT], rcs[-TXKV_DEADLOCK],
         rcs[-TXKV_LOCK_TIMEOUT], user, edges, trun, tcheck);
    diag("%s: cyclic components: G-single %ld, any cycle %ld (%ld from item edges alone); "
         "lost updates %ld, G0 %ld, G1a %ld, G1b %ld, G1c %ld",
         r->name, gsingle, g2, g2item, lost, g0, g1a, g1b, g1c);
    if (assert_clean) {
        ok(unexpected == 0, "%s: no unexpected error codes", r->name);
        if (ue[0])
            diag("first: %s", ue);
        ok(bad == 0, "%s: cursor scans return their range in order", r->name);
        if (bs[0])
            diag("first: %s", bs);
        ok(ro == 0, "%s: read-only transactions never fail (%ld did)", r->name, ro);
        ok(commits > r->ntxns / 10, "%s: transactions commit (%ld of %ld)", r->name, commits,
           r->ntxns);
        ok(nf == 0, "%s: no forbidden anomaly (%ld found)", r->name, nf);
    }
    return nf;
}

/* ---- the checker on histories written by hand --------------------------- */

/* Thread t of the synthetic history holds one transaction; keys x = 0, y = 1. */
enum { X = 0, Y = 1 };

static void syn_tx(int t, int status)
{
    struct worker *w = &workers[t];
    GROW(w->txs, w->ntx, w->captx);
    w->txs[w->ntx++] =
        (struct tx){.op0 = (uint32_t)w->nops, .status = (uint8_t)status, .cc = TXKV_OPTIMISTIC};
}

static void syn_op(int t, int kind, uint32_t key, uint64_t v)
{
    struct worker *w = &workers[t];
    push_op(w, kind, key, v);
    w->txs[w->ntx - 1].nops++;
}

/* A put by thread t; returns its value. */
static uint64_t syn_w(int t, uint32_t key, uint64_t pred, bool final)
{
    struct worker *w = &workers[t];
    GROW(w->wrs, w->nwr, w->capwr);
    w->wrs[w->nwr++] =
        (struct wr){.tx = (uint32_t)(w->ntx - 1), .key = key, .pred = pred, .final = final};
    uint64_t id = ((uint64_t)(t + 1) << VID_SHIFT) | (uint64_t)w->nwr;
    syn_op(t, OP_WRITE, key, id);
    return id;
}

/* Which levels forbid what the checker finds in the history built so far:
 * bit 0 READ_COMMITTED, bit 1 SNAPSHOT, bit 2 SERIALIZABLE. */
static int syn_check(long *count, int which)
{
    struct run r = {.name = "synthetic", .nkeys = 2};
    struct checker c;
    int levels = 0;
    check(&c, &r);
    for (int l = TXKV_READ_COMMITTED; l <= TXKV_SERIALIZABLE; l++)
        if (forbidden(&c, l, false))
            levels |= 1 << (l - 1);
    long counts[] = {c.g1a, c.g1b, c.g0, c.g1c, c.gsingle, c.g2, c.g2item, c.lost, c.ryw};
    *count = counts[which];
    checker_free(&c);
    workers_reset(NULL);
    return levels;
}

enum { C_G1A, C_G1B, C_G0, C_G1C, C_GSINGLE, C_G2, C_G2ITEM, C_LOST, C_RYW };
#define ALL_LEVELS 7
#define SI_SER     6
#define SER_ONLY   4

static void self_test(void)
{
    long n;
    int lv;
    uint64_t a, b;
    workers_reset(NULL);

    /* A clean serial history: T0 creates x, T1 overwrites it, T2 scans. */
    syn_tx(0, TX_COMMITTED);
    syn_op(0, OP_READ, X, NOVAL);
    a = syn_w(0, X, NOVAL, true);
    syn_tx(1, TX_COMMITTED);
    syn_op(1, OP_READ, X, a);
    b = syn_w(1, X, a, true);
    syn_op(1, OP_READ, X, b);
    syn_tx(2, TX_COMMITTED);
    syn_op(2, OP_SCAN, X, b);
    syn_op(2, OP_SCAN, Y, NOVAL);
    lv = syn_check(&n, C_G2);
    ok(lv == 0 && n == 0, "checker: a serial history is clean at every level");

    /* G1a: T1 reads what the aborted T0 wrote. */
    syn_tx(0, TX_ABORTED);
    syn_op(0, OP_READ, X, NOVAL);
    a = syn_w(0, X, NOVAL, true);
    syn_tx(1, TX_COMMITTED);
    syn_op(1, OP_READ, X, a);
    lv = syn_check(&n, C_G1A);
    ok(lv == ALL_LEVELS && n == 1, "checker: G1a (aborted read) is found, forbidden everywhere");

    /* G1b: T1 reads T0's first of two writes of x. */
    syn_tx(0, TX_COMMITTED);
    syn_op(0, OP_READ, X, NOVAL);
    a = syn_w(0, X, NOVAL, false);
    syn_w(0, X, NOVAL, true);
    syn_tx(1, TX_COMMITTED);
    syn_op(1, OP_READ, X, a);
    lv = syn_check(&n, C_G1B);
    ok(lv == ALL_LEVELS && n == 1, "checker: G1b (intermediate read) is found");

    /* G0 (and G1c): T0 writes x then y, T1 writes y then x, each over the
     * other's version. */
    syn_tx(0, TX_COMMITTED);
    syn_tx(1, TX_COMMITTED);
    syn_op(0, OP_READ, X, NOVAL);
    a = syn_w(0, X, NOVAL, true);
    syn_op(1, OP_READ, Y, NOVAL);
    b = syn_w(1, Y, NOVAL, true);
    syn_op(0, OP_READ, Y, b);
    syn_w(0, Y, b, true);
    syn_op(1, OP_READ, X, a);
    syn_w(1, X, a, true);
    lv = syn_check(&n, C_G0);
    ok(lv == ALL_LEVELS && n == 1, "checker: G0 (ww cycle) is found");

    /* G1c: each reads what the other wrote. */
    syn_tx(0, TX_COMMITTED);
    syn_tx(1, TX_COMMITTED);
    syn_op(0, OP_READ, X, NOVAL);
    a = syn_w(0, X, NOVAL, true);
    syn_op(1, OP_READ, Y, NOVAL);
    b = syn_w(1, Y, NOVAL, true);
    syn_op(0, OP_READ, Y, b);
    syn_op(1, OP_READ, X, a);
    lv = syn_check(&n, C_G1C);
    ok(lv == ALL_LEVELS && n == 1, "checker: G1c (wr cycle) is found");

    /* Lost update: both overwrite the absence of x. */
    syn_tx(0, TX_COMMITTED);
    syn_op(0, OP_READ, X, NOVAL);
    syn_w(0, X, NOVAL, true);
    syn_tx(1, TX_COMMITTED);
    syn_op(1, OP_READ, X, NOVAL);
    syn_w(1, X, NOVAL, true);
    lv = syn_check(&n, C_LOST);
    ok(lv == ALL_LEVELS && n == 1, "checker: a lost update is found");

    /* G-single (read skew): T0 misses T1's x but sees its y. */
    syn_tx(1, TX_COMMITTED);
    syn_op(1, OP_READ, X, NOVAL);
    syn_w(1, X, NOVAL, true);
    syn_op(1, OP_READ, Y, NOVAL);
    b = syn_w(1, Y, NOVAL, true);
    syn_tx(0, TX_COMMITTED);
    syn_op(0, OP_READ, X, NOVAL);
    syn_op(0, OP_READ, Y, b);
    lv = syn_check(&n, C_GSINGLE);
    ok(lv == SI_SER && n == 1, "checker: G-single is found, allowed at READ_COMMITTED only");

    /* Write skew (G2-item): each reads both, writes the one the other read. */
    syn_tx(0, TX_COMMITTED);
    syn_tx(1, TX_COMMITTED);
    syn_op(0, OP_READ, X, NOVAL);
    syn_op(0, OP_READ, Y, NOVAL);
    syn_op(1, OP_READ, X, NOVAL);
    syn_op(1, OP_READ, Y, NOVAL);
    syn_w(0, X, NOVAL, true);
    syn_w(1, Y, NOVAL, true);
    lv = syn_check(&n, C_G2ITEM);
    ok(lv == SER_ONLY && n == 1, "checker: write skew is found, forbidden at SERIALIZABLE only");

    /* Predicate G2: each scans x..y, finds nothing, inserts one of them. */
    syn_tx(0, TX_COMMITTED);
    syn_tx(1, TX_COMMITTED);
    syn_op(0, OP_SCAN, X, NOVAL);
    syn_op(0, OP_SCAN, Y, NOVAL);
    syn_op(1, OP_SCAN, X, NOVAL);
    syn_op(1, OP_SCAN, Y, NOVAL);
    syn_w(0, X, NOVAL, true);
    syn_w(1, Y, NOVAL, true);
    lv = syn_check(&n, C_G2ITEM);
    ok(lv == SER_ONLY && n == 0, "checker: phantom write skew needs the predicate edges");

    /* Read-your-writes: T0 does not see its own write. */
    syn_tx(0, TX_COMMITTED);
    syn_op(0, OP_READ, X, NOVAL);
    syn_w(0, X, NOVAL, true);
    syn_op(0, OP_READ, X, NOVAL);
    lv = syn_check(&n, C_RYW);
    ok(lv == ALL_LEVELS && n == 1, "checker: a transaction not reading its own write is found");
}

static long scaled(long n)
{
    double v = (double)n * tap_scale();
    return v < ROUND_LEN ? ROUND_LEN : (long)v;
}

int main(void)
{
    seed = tap_seed();
    plan(10 + 6 * 5 + 2);
    if (pthread_barrier_init(&start_line, NULL, NTHREADS))
        bail_out("pthread_barrier_init failed");
    self_test();

    /* 8 hot keys per round; of operations 10% scans, 40% reads, 50% writes;
     * 10% read-only and 3% deliberately aborted transactions; 15% of
     * writes put twice; some read-modify-writes read with get_for_update
     * (all of them at READ_COMMITTED); 5% of operations yield first. */
#define MAIN_RUN(nm, iso, scheme, n, fu)                                                           \
    {                                                                                              \
        .name = (nm), .isolation = (iso), .cc = (scheme), .nkeys = 8, .ntxns = scaled(n),          \
        .pct_scan = 10, .pct_read = 40, .pct_rdonly = 10, .pct_abort = 3, .pct_twice = 15,         \
        .pct_fu = (fu), .pct_yield = 5                                                             \
    }
    struct run runs[] = {
        MAIN_RUN("READ_COMMITTED/OPTIMISTIC", TXKV_READ_COMMITTED, TXKV_OPTIMISTIC, BASE_TXNS, 25),
        MAIN_RUN("SNAPSHOT/OPTIMISTIC", TXKV_SNAPSHOT, TXKV_OPTIMISTIC, BASE_TXNS, 25),
        MAIN_RUN("SERIALIZABLE/OPTIMISTIC", TXKV_SERIALIZABLE, TXKV_OPTIMISTIC, BASE_TXNS, 25),
        MAIN_RUN("SNAPSHOT/PESSIMISTIC", TXKV_SNAPSHOT, TXKV_PESSIMISTIC, BASE_TXNS / 3, 50),
        MAIN_RUN("SERIALIZABLE/PESSIMISTIC", TXKV_SERIALIZABLE, TXKV_PESSIMISTIC, BASE_TXNS / 3,
                 50),
        /* Each transaction OPTIMISTIC or PESSIMISTIC at random, half of the
         * operations scans: pessimistic range locks against optimistic
         * commits into the range, on 6 keys. */
        {.name = "SERIALIZABLE/mixed",
         .isolation = TXKV_SERIALIZABLE,
         .cc = 0,
         .nkeys = 6,
         .ntxns = scaled(BASE_TXNS),
         .pct_scan = 50,
         .pct_read = 20,
         .pct_rdonly = 10,
         .pct_abort = 3,
         .pct_twice = 15,
         .pct_fu = 50,
         .pct_yield = 10},
    };
#undef MAIN_RUN
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++)
        one_run(&runs[i], seed + i, true);

    /* The checker can fail: without validation, optimistic commits let
     * lost updates and cycles through.  3 hot keys, mostly writes. */
    int levels[] = {TXKV_SNAPSHOT, TXKV_SERIALIZABLE};
    for (int l = 0; l < 2; l++) {
        char name[64];
        snprintf(name, sizeof name, "broken %s/OPTIMISTIC", iso_name(levels[l]));
        struct run b = {.name = name,
                        .isolation = levels[l],
                        .cc = TXKV_OPTIMISTIC,
                        .nkeys = 3,
                        .ntxns = scaled(BASE_TXNS / 6),
                        .pct_scan = 5,
                        .pct_read = 15,
                        .pct_twice = 5,
                        .pct_yield = 20,
                        .broken = true};
        long nf = 0;
        int round;
        for (round = 1; round <= BROKEN_TRIES && nf == 0; round++)
            nf = one_run(&b, seed + 100 + (uint64_t)(l * BROKEN_TRIES + round), false);
        ok(nf > 0, "%s: the checker finds forbidden anomalies (%ld, round %d of at most %d)", name,
           nf, round - 1, BROKEN_TRIES);
    }

    for (int i = 0; i < NTHREADS; i++) {
        free(workers[i].ops);
        free(workers[i].txs);
        free(workers[i].wrs);
    }
    pthread_barrier_destroy(&start_line);
    return done_testing();
}
