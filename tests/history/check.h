/*
 * check.h - the history checker of tests/txn/history, on its own so that
 * kv-bench's --verify checks its runs with the same code.
 *
 * A history is one log per thread: the transactions it ran (committed,
 * failed, or aborted on purpose), the operations of each (reads with the
 * value seen, scan reads, writes), and every put.  Every put writes a value
 * no other put writes, HIST_VID(thread, n) for the thread's n-th put, and
 * records the version its transaction read of that key before its first
 * write of it (its predecessor); so committed versions form a chain per key
 * and every ww, wr and rw edge is exact.  hist_check() builds the
 * dependency graph of the committed transactions and counts the anomalies
 * of Adya's classification; hist_forbidden() says which of them the given
 * isolation level forbids and describes the first of each (a cycle with its
 * edge kinds, keys and transactions).  See tests/txn/history.c for the algorithm
 * and the hand-written histories that test it.
 *
 * Not thread-safe: one thread builds, checks and frees a checker; the logs
 * must not change while it runs.  Out of memory prints a message and exits.
 */
#ifndef TXKV_HIST_CHECK_H
#define TXKV_HIST_CHECK_H

#include <stddef.h>
#include <stdint.h>

enum { HIST_READ, HIST_SCAN, HIST_WRITE }; /* HIST_SCAN: a read made by a range scan */
enum { HIST_COMMITTED = 1, HIST_ABORTED, HIST_USER_ABORT };
/* Values of hist_tx.cc (txkv's TXKV_OPTIMISTIC / TXKV_PESSIMISTIC; 0: not said). */
enum { HIST_OPTIMISTIC = 1, HIST_PESSIMISTIC = 2 };

#define HIST_NOVAL     0u         /* a read of an absent key */
#define HIST_BADVAL    UINT64_MAX /* a read of bytes no put wrote */
#define HIST_VID_SHIFT 40
#define HIST_VID_MASK  ((UINT64_C(1) << HIST_VID_SHIFT) - 1)
/* The value id of thread t's n-th put (both from 0). */
#define HIST_VID(t, n) (((uint64_t)(t) + 1) << HIST_VID_SHIFT | ((uint64_t)(n) + 1))

struct hist_op {
    uint64_t val; /* value read (HIST_NOVAL: absent) or written */
    uint32_t key;
    uint8_t kind;
};

struct hist_tx {
    uint32_t op0, nops;         /* its operations: ops[op0 .. op0 + nops) of its thread */
    uint8_t status, cc, rdonly; /* rdonly: 1 read-only by choice, 2 declared read-only */
};

/* One put, indexed by its value's per-thread counter. */
struct hist_wr {
    uint32_t tx; /* the writer's index in its thread */
    uint32_t key;
    uint64_t pred; /* the version the writer read before its first write of key */
    uint8_t final; /* the writer's last write of key */
    uint32_t succ; /* the checker's: committed writes whose pred is this value */
};

/* One thread's log (arrays owned by the caller). */
struct hist_log {
    struct hist_op *ops;
    size_t nops;
    struct hist_tx *txs;
    size_t ntx;
    struct hist_wr *wrs;
    size_t nwr;
};

struct hist {
    const struct hist_log *logs;
    int nlogs;
    /* The key's name for messages. */
    void (*key_name)(char *buf, size_t n, uint32_t key, void *arg);
    /* The value key holds after the run (HIST_NOVAL: absent, HIST_BADVAL:
     * unreadable); NULL skips the check of final values. */
    uint64_t (*final_value)(uint32_t key, void *arg);
    void *arg;
};

enum { HIST_E_WW = 1, HIST_E_WR = 2, HIST_E_RW = 4, HIST_E_RWP = 8 };

struct hist_edge {
    uint32_t from, to, key;
    uint8_t kind;
};

struct hist_link {
    uint32_t tx; /* global index of a committed writer */
    uint64_t val;
    uint32_t next;
};

struct hist_checker {
    struct hist h;
    struct hist_log *logs; /* a copy of h.logs (the arrays are shared) */
    size_t n;              /* transactions, all threads */
    size_t *base;          /* nlogs + 1: global index of each thread's first transaction */
    uint32_t *thr;         /* global index -> thread */
    struct hist_edge *e;
    size_t ne, cape;
    size_t *off; /* CSR: edges from v are e[off[v] .. off[v+1]) */
    struct hist_link *links;
    size_t nlinks, caplinks;
    uint32_t *root; /* per key: committed writes of the first version */
    uint8_t *fork;  /* per key: two committed writes share a predecessor */
    size_t nkeys;
    uint32_t *stamp, *parent, *queue;
    uint32_t gen;
    /* results: how many of each, and the first described */
    long g1a, g1b, garbage, ryw, lost, final_bad;
    long g0, g1c, gsingle, g2, g2item, cyc_all;
    char ex_g1a[400], ex_g1b[400], ex_garbage[400], ex_ryw[400], ex_lost[600], ex_final[400];
    char ex_g0[1200], ex_g1c[1200], ex_gsingle[1200], ex_g2[1200];
    uint32_t cyc_g0[8], cyc_g1c[8], cyc_gsingle[8], cyc_g2[8]; /* transactions, for diag */
    int ncyc_g0, ncyc_g1c, ncyc_gsingle, ncyc_g2;
    uint32_t cyc_lost[2];
    int ncyc_lost;
};

/* Isolation levels for hist_forbidden (txkv's values). */
enum { HIST_READ_COMMITTED = 1, HIST_SNAPSHOT = 2, HIST_SERIALIZABLE = 3 };

/* Checks the history h; c is then read and finally freed with hist_checker_free. */
void hist_check(struct hist_checker *c, const struct hist *h);
void hist_checker_free(struct hist_checker *c);
/*
 * The number of anomalies that isolation forbids.  When print is not NULL
 * it is called with one line per anomaly kind found (its first instance:
 * the cycle, as "G-single: T3 -rw(k1)-> T8 -wr(k2)-> T3", and a count), and
 * one line per transaction of it with its operations.
 */
long hist_forbidden(const struct hist_checker *c, int isolation,
                    void (*print)(const char *line, void *arg), void *arg);

#endif /* TXKV_HIST_CHECK_H */
