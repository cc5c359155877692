/*
 * kvb.h - what kv-bench's files share: the parsed command line, one row of
 * the sweep and its results, the engine interface that txkv, LMDB, RocksDB
 * (TransactionDB, OptimisticTransactionDB) and SQLite implement, the per-thread random streams, the
 * key generators and the latency histogram.  Private to bench/; nothing here is installed.
 *
 * The hot-path helpers (random numbers, zipfian draws, key encoding, value
 * folding, histogram recording) are static inline so that both engines pay
 * exactly the same generator cost per transaction.
 */
#ifndef KVB_H
#define KVB_H

#include <math.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kvb-sys.h"

/* ---- the command line ---------------------------------------------------- */

enum bench_workload {
    W_YCSB_A,
    W_YCSB_B,
    W_YCSB_C,
    W_YCSB_D,
    W_YCSB_E,
    W_YCSB_F,
    W_READ,
    W_UPDATE,
    W_RMW,
    W_SCAN,
    W_BANK,
    W_MULTIGET,
    W_READN,
    W_COUNT
};

enum bench_engine_id {
    ENG_TXKV,
    ENG_LMDB,
    ENG_ROCKSDB_TXN,
    ENG_ROCKSDB_OCC,
    ENG_SQLITE,
    ENG_COUNT
};
/* Same values as txkv's enums, so the txkv engine passes them through. */
enum bench_iso { ISO_RC = 1, ISO_SI = 2, ISO_SER = 3 };
enum bench_cc { CC_OCC = 1, CC_2PL = 2, CC_LMDB = 3, CC_SQLITE = 4 };
enum bench_index { IDX_NONE = 0, IDX_HASH = 1, IDX_BTREE = 2, IDX_BOTH = 3 };

#define BENCH_MAX_LIST    32
#define BENCH_MAX_OPS     10000 /* --ops-per-txn and --scan-length limit */
#define BENCH_MAX_THREADS 1024

struct bench_config {
    int workloads[BENCH_MAX_LIST], nworkloads;
    int engines[BENCH_MAX_LIST], nengines;
    int isolations[BENCH_MAX_LIST], nisolations;
    int ccs[BENCH_MAX_LIST], nccs;
    int indexes[BENCH_MAX_LIST], nindexes;
    unsigned threads[BENCH_MAX_LIST];
    int nthreads;
    double thetas[BENCH_MAX_LIST];
    int nthetas;
    uint64_t keys;
    unsigned key_size, value_size;
    double duration, warmup; /* seconds */
    uint64_t txns;           /* > 0: a fixed count (all threads together) instead of duration */
    uint64_t seed;
    unsigned ops_per_txn, scan_length;
    int batch;                /* --batch: rmw reads its keys with one multiget */
    uint64_t lock_timeout_us; /* pessimistic lock waits (txkv, rocksdb-txn); 0: wait */
    int verify;               /* --verify: each row's engine/level/scheme is history-checked */
    uint64_t verify_txns;     /* transactions of each verification run */
    int break_validation;     /* test builds only: txkv's optimistic commits skip validation */
    int update_pass;          /* --update-pass: rewrite every key after the row (kvb-mem.c) */
    const char *csv_path, *json_path, *plot_dir;
    int progress; /* stderr is a terminal */
    /* txkv durability: --dir (a fresh database directory per row is made
     * in it and removed) and --sync's list, BENCH_SYNC_* (MEM: in memory). */
    const char *dir;
    int syncs[BENCH_MAX_LIST], nsyncs;
};
enum { BENCH_SYNC_MEM, BENCH_SYNC_COMMIT, BENCH_SYNC_INTERVAL, BENCH_SYNC_NONE };

/* ---- one row of the sweep ------------------------------------------------- */

/* ROW_NA: the engine cannot provide the row's isolation level (never run weaker). */
enum bench_status { ROW_OK, ROW_UNSUPPORTED, ROW_FAILED, ROW_NA };
/* --verify's outcome for a row. */
enum bench_verify_status { VERIFY_NONE, VERIFY_OK, VERIFY_ANOMALY, VERIFY_ERROR };

struct bench_row {
    /* what runs */
    int engine, workload, isolation, cc, index;
    int sync; /* txkv: BENCH_SYNC_* (the label says txkv+commit etc.) */
    unsigned threads;
    double theta;
    /* what came out */
    int status;
    char note[400];
    double seconds, load_seconds;
    uint64_t txns, aborts, ops, notfound, audits, audit_skews, checksum;
    double txn_per_sec, ops_per_sec, abort_rate, p50_us, p99_us, p999_us, bytes_per_key;
    /* kvb-mem.c: the footprint after the load and after --update-pass (< 0: not
     * measured), and the process's RSS growth per key from before the open to then */
    double load_bytes_per_key, rss_load_per_key, pass_bytes_per_key, rss_pass_per_key;
    /* --verify */
    int verify_status;
    uint64_t verify_commits, verify_aborts;
    unsigned verify_threads;
    char verify_msg[1400]; /* the first forbidden anomaly, or the error */
    char *verify_detail;   /* malloc'd: every line the checker printed, or NULL */
};

const char *bench_workload_name(int w);
const char *bench_engine_label(const struct bench_row *r); /* "txkv", "txkv-hash", "lmdb", ... */
const char *bench_engine_id_name(int engine);              /* "txkv", "rocksdb-txn", ... */
const char *bench_iso_name(int iso);
const char *bench_cc_name(int cc);
const char *bench_index_name(int idx);
/* 1 if the workload reads through ordered cursors. */
int bench_workload_scans(int w);

/* ---- the engine interface ---------------------------------------------------- */

/*
 * Results of engine calls.  BENCH_RETRY: the transaction failed with a
 * retryable conflict (txkv CONFLICT, DEADLOCK, LOCK_TIMEOUT) and must be
 * ended with abort (commit already ended it).  BENCH_FAIL and BENCH_NOTSUP
 * leave a message for error().
 */
enum {
    BENCH_OK = 0,
    BENCH_NOTFOUND = 1,
    BENCH_RETRY = 2,
    BENCH_NOTSUP = 3,
    BENCH_STOPPED = 4,
    BENCH_NA = 5, /* open(): the engine cannot provide the row's isolation level */
    BENCH_FAIL = -1
};
/* begin() flags: a read-only transaction; the loader's (database defaults). */
enum { BENCH_TXN_RDONLY = 1, BENCH_TXN_LOAD = 2 };

/*
 * One engine.  open/close/footprint run on the main thread with no worker
 * alive; a thread context (thread_open) is used by one thread at a time and
 * holds at most one transaction.  Pointers returned by get stay valid until
 * the transaction ends or, for LMDB write transactions, until the next put.
 */
struct bench_engine {
    const char *name;
    int (*open)(const struct bench_config *cfg, const struct bench_row *row, void **dbp, char *err,
                size_t errlen);
    void (*close)(void *db);
    int (*thread_open)(void *db, void **tp, char *err, size_t errlen);
    void (*thread_close)(void *t);
    int (*begin)(void *t, unsigned flags);
    int (*get)(void *t, const void *key, size_t klen, const void **val, size_t *vlen,
               int for_update);
    int (*put)(void *t, const void *key, size_t klen, const void *val, size_t vlen);
    /* Reads up to n records from the first key >= key; *got of them, their values folded. */
    int (*scan)(void *t, const void *key, size_t klen, unsigned n, unsigned *got, uint64_t *fold);
    int (*commit)(void *t);
    void (*abort)(void *t);
    const char *(*error)(void *t); /* what the last BENCH_FAIL / BENCH_NOTSUP was */
    /* Bytes the engine holds for its data, and how many keys it holds. */
    int (*footprint)(void *db, uint64_t *bytes, uint64_t *keys, char *err, size_t errlen);
    /* The engine's version ("7.8.3"). */
    const char *(*version)(void);
    /* Optional (NULL: none). */
    /*
     * Reads n keys in one call, as n plain gets (not for update) would:
     * rcs[i] is BENCH_OK (vals[i], vlens[i] set) or BENCH_NOTFOUND.  The
     * values stay valid until the next get, multiget or put, or the end of
     * the transaction.  Returns BENCH_OK or the first other result (then
     * the transaction must be aborted).  NULL: the workloads read one key
     * after another with get.
     */
    int (*multiget)(void *t, unsigned n, const void *const *keys, const size_t *klens,
                    const void **vals, size_t *vlens, int *rcs);
    /* After the load, before timing (RocksDB: flush the memtable to a sorted file). */
    int (*loaded)(void *db, char *err, size_t errlen);
    /* Adds what the row's notes should say about the engine (SQLite: busy waits). */
    void (*note)(void *db, char *buf, size_t len);
    /* How the engine provides isolation iso under scheme cc: one line for the output. */
    const char *(*mapping)(int iso, int cc);
};

extern const struct bench_engine bench_engine_txkv;
extern const struct bench_engine bench_engine_lmdb;
#ifdef HAVE_ROCKSDB
extern const struct bench_engine bench_engine_rocksdb_txn;
extern const struct bench_engine bench_engine_rocksdb_occ;
#endif
#ifdef HAVE_SQLITE3
extern const struct bench_engine bench_engine_sqlite;
#endif
/* The engine of id, or NULL when this kv-bench was built without it. */
const struct bench_engine *bench_engine_of(int id);
/* The Debian package that brings an engine this build lacks. */
const char *bench_engine_package(int id);

/*
 * Scratch directories of engines that keep files (LMDB, RocksDB, SQLite),
 * under /dev/shm (or /tmp): created with mkdtemp, removed with everything in
 * them when the row ends, and by kv-bench's signal handler if the run is cut
 * short (bench_scratch_emergency_cleanup is async-signal-safe).
 */
int bench_scratch_dir(char *dir, size_t len, const char *tag, char *err, size_t errlen);
void bench_scratch_remove(const char *dir);
void bench_scratch_emergency_cleanup(void);
/* Removes the LMDB scratch directory; async-signal-safe (kv-bench's signal handler). */
void bench_lmdb_emergency_cleanup(void);

/* ---- random streams (xoshiro256**, seeded by splitmix64) ----------------------- */

struct bench_rng {
    uint64_t s[4];
};

/* Stream `stream` of seed: threads of every row and engine draw the same numbers. */
void bench_rng_seed(struct bench_rng *r, uint64_t seed, uint64_t stream);

static inline uint64_t bench_rotl_(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t bench_rand(struct bench_rng *r)
{
    uint64_t *s = r->s, res = bench_rotl_(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = bench_rotl_(s[3], 45);
    return res;
}

/* Uniform in [0, n), n >= 1 (Lemire's multiply-shift; bias < n / 2^64). */
static inline uint64_t bench_rand_below(struct bench_rng *r, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)bench_rand(r) * n) >> 64);
}

/* Uniform in [0, 1). */
static inline double bench_rand_double(struct bench_rng *r)
{
    return (double)(bench_rand(r) >> 11) * 0x1.0p-53;
}

/* ---- zipfian ranks (Gray et al., SIGMOD 1994, as YCSB's ZipfianGenerator) ------- */

struct bench_zipf {
    uint64_t n;
    double theta, alpha, zetan, zeta2, eta, half_pow_theta;
};

/* Ranks 0..n-1, rank 0 the most popular; 0 < theta < 1, n >= 1. */
void bench_zipf_init(struct bench_zipf *z, uint64_t n, double theta);
/* Extends z to n2 >= z->n items, adding the new terms to zeta (YCSB's incremental zeta). */
void bench_zipf_grow(struct bench_zipf *z, uint64_t n2);

static inline uint64_t bench_zipf_next(const struct bench_zipf *z, struct bench_rng *r)
{
    double u = bench_rand_double(r), uz = u * z->zetan;
    if (uz < 1.0 || z->n < 2)
        return 0;
    if (uz < 1.0 + z->half_pow_theta)
        return 1;
    uint64_t v = (uint64_t)((double)z->n * pow(z->eta * u - z->eta + 1.0, z->alpha));
    return v < z->n ? v : z->n - 1;
}

/* ---- keys and values ----------------------------------------------------------- */

/*
 * Item i's key: the big-endian bytes of a 64-bit bijection of i (the
 * splitmix64 finalizer), then '0' padding up to --key-size (the padding is
 * written once per buffer by bench_key_init).  The bijection spreads items,
 * and so zipfian hot items and freshly inserted ones, over the whole key
 * order, as YCSB's hashed insert order does; key order stays memcmp order
 * for both engines.
 */
static inline uint64_t bench_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static inline void bench_key_init(uint8_t *key, unsigned key_size)
{
    memset(key, '0', key_size);
}

static inline void bench_key(uint8_t *key, uint64_t item)
{
    uint64_t m = bench_mix(item);
    for (int i = 7; i >= 0; i--, m >>= 8)
        key[i] = (uint8_t)m;
}

static inline uint64_t bench_load64(const void *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void bench_store64(void *p, uint64_t v)
{
    memcpy(p, &v, sizeof v);
}

/* Reads every byte of a value, so neither engine's reads can be optimised away. */
static inline uint64_t bench_fold(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t s = n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        s += bench_load64(b + i);
    for (; i < n; i++)
        s += b[i];
    return s;
}

/* ---- latency histogram (HdrHistogram-like: 2^k buckets, 16 sub-buckets each) ---- */

#define BENCH_HIST_SUB_BITS 4
#define BENCH_HIST_BUCKETS  ((64 - BENCH_HIST_SUB_BITS + 1) << BENCH_HIST_SUB_BITS)

struct bench_hist {
    uint64_t count, max;
    uint64_t b[BENCH_HIST_BUCKETS];
};

static inline unsigned bench_hist_index(uint64_t v)
{
    if (v < (1u << BENCH_HIST_SUB_BITS))
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v), shift = msb - BENCH_HIST_SUB_BITS;
    return ((shift + 1) << BENCH_HIST_SUB_BITS) +
           (unsigned)((v >> shift) - (1u << BENCH_HIST_SUB_BITS));
}

static inline void bench_hist_record(struct bench_hist *h, uint64_t v)
{
    h->b[bench_hist_index(v)]++;
    h->count++;
    if (v > h->max)
        h->max = v;
}

void bench_hist_reset(struct bench_hist *h);
void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src);
/* The value at quantile q (0..1): the middle of its bucket, at most the largest seen. */
double bench_hist_quantile(const struct bench_hist *h, double q);
/* The smallest value bucket i holds, and how many values it spans. */
uint64_t bench_hist_bucket_low(unsigned i);
uint64_t bench_hist_bucket_width(unsigned i);

/* ---- workloads: one thread's loop ------------------------------------------------ */

enum bench_phase { PHASE_WARMUP, PHASE_RUN, PHASE_STOP };

/* What every thread of a row shares. */
struct bench_shared {
    _Atomic int phase;
    _Atomic uint64_t next_item; /* ycsb-d/e: the item the next insert creates */
    _Atomic int failed;         /* 1: failmsg is written (by the thread that set it) */
    _Atomic int unsupported;    /* 1: the failure was BENCH_NOTSUP */
    _Atomic uint64_t violations;
    char failmsg[320];
    char violation[320];
    const struct bench_config *cfg;
    const struct bench_engine *eng;
    void *db;
    struct bench_zipf zipf; /* over the loaded items, when theta > 0 */
    uint64_t items;         /* loaded items */
    int64_t bank_total;     /* what every audit must find */
    int workload, isolation;
    unsigned threads; /* workers, not counting the bank's auditor */
    double theta;
    _Atomic unsigned ready; /* threads that have opened their engine context */
    _Atomic int go;         /* set once every thread is ready */
};

enum plan_kind { P_READ, P_UPDATE, P_INSERT, P_SCAN, P_RMW, P_TRANSFER, P_MULTIGET, P_READN };

struct bench_plan {
    int kind;
    unsigned n;      /* keys used (RMW, TRANSFER), or records to scan */
    int64_t amount;  /* TRANSFER */
    uint64_t *items; /* n of them (one for READ/UPDATE/INSERT/SCAN) */
};

struct bench_worker {
    struct bench_shared *sh;
    void *et; /* the engine's thread context */
    unsigned tid;
    int auditor; /* bank: sums every balance in read-only transactions */
    uint64_t quota;
    struct bench_rng rng;
    struct bench_zipf latest; /* ycsb-d: over the items that exist so far */
    uint8_t *key, *val, *tmp;
    uint8_t *mkeys; /* multiget, readn, rmw --batch: ops_per_txn keys */
    const void **mkeyp;
    size_t *mklen;
    const void **mvals; /* what a multiget returned */
    size_t *mvlens;
    int *mrcs;
    uint8_t *mcopy; /* rmw --batch: the values read, ops_per_txn x value_size */
    struct bench_plan plan;
    uint64_t *set; /* open-addressing set of item+1: distinct items per transaction */
    size_t set_mask;
    uint64_t stamp;
    /* measured (reset when the timed phase starts) */
    uint64_t commits, aborts, ops, notfound, audits, audit_skews, fold;
    struct bench_hist hist;
};

/* Values the loader writes: the balance every bank account starts with. */
#define BENCH_BANK_START 1000

int bench_worker_init(struct bench_worker *w, struct bench_shared *sh, unsigned tid, int auditor);
void bench_worker_free(struct bench_worker *w);
/* The thread's loop: warm up, measure, stop on PHASE_STOP or its quota. */
void bench_worker_run(struct bench_worker *w);
/* Loads the row's items through t (one thread) in batches. */
int bench_load(struct bench_shared *sh, void *t);
/*
 * Before loading: begins the transactions the row needs (and a cursor when
 * it scans) on the empty database.  BENCH_NOTSUP when the engine cannot.
 */
int bench_probe(struct bench_shared *sh, void *t);
/* One audit from the main thread after the run: BENCH_OK, or BENCH_FAIL (message in sh). */
int bench_final_audit(struct bench_shared *sh, void *t);
/* Records the first failure of a row; later ones are dropped. */
void bench_fail(struct bench_shared *sh, int unsupported, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- output ----------------------------------------------------------------------- */

/* Opens the CSV/JSON files and checks the plot directory: 0, or -1 (message printed). */
int bench_out_open(const struct bench_config *cfg);
void bench_out_header(const struct bench_config *cfg, unsigned nrows);
void bench_out_row(const struct bench_config *cfg, const struct bench_row *r);
/* 0, or the errno of the first write of the table to stdout that failed. */
int bench_out_stdout_errno(void);
/* Writes the JSON file and the charts; 0, or -1 when a file could not be written. */
int bench_out_finish(const struct bench_config *cfg, const struct bench_row *rows, unsigned nrows);

/* ---- --verify (kvb-verify.c) ------------------------------------------------------ */

/*
 * Runs the checkable workload on a fresh database of row's engine, level and
 * scheme, and checks its history at the row's level; fills row->verify_*.
 */
void bench_verify(const struct bench_config *cfg, const struct bench_engine *eng,
                  struct bench_row *row);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

/* ---- memory (kvb-mem.c) --------------------------------------------------------- */

/* bench_rss_bytes: bench/kvb-sys.h */
/* Which allocator serves malloc, and the one configure linked: one line. */
const char *bench_allocator(void);
/* --update-pass: puts a new value under every loaded key, PASS_BATCH keys a transaction. */
int bench_update_pass(struct bench_shared *sh, void *t);
/* The footprint once it has stopped changing (the engine's GC caught up), 3 s at most. */
int bench_settled_footprint(const struct bench_engine *e, void *db, uint64_t *bytes, uint64_t *keys,
                            char *err, size_t errlen);

#endif /* KVB_H */
