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

#include "../history/check.h" /* the checker: tests/history/check.c */
#include "../tap.h"
#include "db.h" /* db_test_skip_validation */
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
#define NOVAL        HIST_NOVAL
#define BADVAL       HIST_BADVAL
#define VID_SHIFT    HIST_VID_SHIFT
#define VID_MASK     HIST_VID_MASK

/* ---- the history ------------------------------------------------------- */

/* The history's types are the checker's (tests/history/check.h); a key is
 * global: round * nkeys + index. */
enum { OP_READ = HIST_READ, OP_SCAN = HIST_SCAN, OP_WRITE = HIST_WRITE };
enum { TX_COMMITTED = HIST_COMMITTED, TX_ABORTED = HIST_ABORTED, TX_USER_ABORT = HIST_USER_ABORT };

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
    struct hist_op *ops;
    size_t nops, capops;
    struct hist_tx *txs;
    size_t ntx, captx;
    struct hist_wr *wrs;
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
    w->ops[w->nops++] = (struct hist_op){.val = val, .key = key, .kind = (uint8_t)kind};
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
        w->wrs[w->nwr++] = (struct hist_wr){.tx = s->txi, .key = gkey, .pred = s->pred[k]};
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
    struct hist_tx *tx = &w->txs[w->ntx++];
    *tx = (struct hist_tx){
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

/* ---- the checker (tests/history/check.c) ------------------------------ */

static void key_name_cb(char *buf, size_t n, uint32_t key, void *arg)
{
    key_name(buf, n, arg, key);
}

/* What the key holds at the end, read from the run's database. */
static uint64_t final_value_cb(uint32_t key, void *arg)
{
    char kn[32];
    const void *v;
    size_t vl;
    txkv_txn *t;
    key_name(kn, sizeof kn, arg, key);
    if (txkv_begin(db, NULL, &t))
        bail_out("txkv_begin failed");
    int rc = txkv_get(t, NULL, kn, strlen(kn), &v, &vl);
    uint64_t got = rc == TXKV_NOTFOUND ? NOVAL : rc ? BADVAL : parse_val(v, vl);
    txkv_abort(t);
    return got;
}

static void check(struct hist_checker *c, const struct run *r)
{
    struct hist_log logs[NTHREADS];
    for (int t = 0; t < NTHREADS; t++)
        logs[t] = (struct hist_log){.ops = workers[t].ops,
                                    .nops = workers[t].nops,
                                    .txs = workers[t].txs,
                                    .ntx = workers[t].ntx,
                                    .wrs = workers[t].wrs,
                                    .nwr = workers[t].nwr};
    struct hist h = {.logs = logs,
                     .nlogs = NTHREADS,
                     .key_name = key_name_cb,
                     .final_value = db ? final_value_cb : NULL,
                     .arg = (void *)r};
    hist_check(c, &h);
}

static void print_diag(const char *line, void *arg)
{
    diag("%s", line);
}

static long forbidden(struct hist_checker *c, int isolation, bool print)
{
    return hist_forbidden(c, isolation, print ? print_diag : NULL, NULL);
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
        struct hist_checker c;
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
        hist_checker_free(&c);
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
    w->txs[w->ntx++] = (struct hist_tx){
        .op0 = (uint32_t)w->nops, .status = (uint8_t)status, .cc = TXKV_OPTIMISTIC};
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
        (struct hist_wr){.tx = (uint32_t)(w->ntx - 1), .key = key, .pred = pred, .final = final};
    uint64_t id = ((uint64_t)(t + 1) << VID_SHIFT) | (uint64_t)w->nwr;
    syn_op(t, OP_WRITE, key, id);
    return id;
}

/* Which levels forbid what the checker finds in the history built so far:
 * bit 0 READ_COMMITTED, bit 1 SNAPSHOT, bit 2 SERIALIZABLE. */
static int syn_check(long *count, int which)
{
    struct run r = {.name = "synthetic", .nkeys = 2};
    struct hist_checker c;
    int levels = 0;
    check(&c, &r);
    for (int l = TXKV_READ_COMMITTED; l <= TXKV_SERIALIZABLE; l++)
        if (forbidden(&c, l, false))
            levels |= 1 << (l - 1);
    long counts[] = {c.g1a, c.g1b, c.g0, c.g1c, c.gsingle, c.g2, c.g2item, c.lost, c.ryw};
    *count = counts[which];
    hist_checker_free(&c);
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
