/*
 * wal-bench.c - what durability costs: recovery (txkv_open of a
 * checkpoint plus a log), checkpoints taken while a ycsb-a workload runs,
 * and each sync policy's commit rate against memory's.
 *
 * Every mode works in a fresh directory made with mkdtemp under --dir
 * ($TMPDIR or /tmp by default) and remove it at the end, whatever
 * happened (on SIGINT, SIGTERM and SIGHUP too).  Keys are --key-size bytes: a 64-bit bijective mix
 * of the key number (big endian), then the number, zero padded; so key order is unrelated to load
 * order.  Values are --value-size bytes.
 *
 * recovery: loads --keys keys (1000 per transaction), checkpoints, closes;
 * times the reopen (the checkpoint alone); applies --updates single-key
 * updates of uniformly random keys under TXKV_SYNC_NONE, closes; times the
 * reopen (checkpoint + log); moves the checkpoint out and times the reopen
 * of the log alone (its updates then create the keys they touch).  Each
 * reopen is timed --repeat times (the best is reported) and prints seconds,
 * keys/s, the file sizes, txkv_stats' keys and bytes per key, and the RSS
 * the reopen added.
 *
 * checkpoint: loads --keys keys, checkpoints once (so the log starts
 * empty), runs ycsb-a (50% single-key reads, 50% single-key updates,
 * uniform keys) on --threads threads: --duration seconds without a
 * checkpoint, then a txkv_checkpoint on its own thread while they go on,
 * then --duration seconds without one again.  Reports txn/s in each
 * window, the checkpoint's duration, and the RSS at its start and its
 * peak during it (sampled every 5 ms), against the peak of the window
 * before.  Issue 16's targets: throughput during >= 70% of without, memory
 * growth <= 10%.  --checkpoints N takes N of them, a window after each,
 * prints a row each and the median share: one checkpoint's share swings
 * with a shared machine's noise.
 *
 * sync: kv-bench's update workload (single-key updates of uniform keys)
 * on --threads threads, for each sync policy (or the one --sync names) on
 * two databases loaded alike, one in memory and one with a directory under
 * that policy, the workers moving from one to the other every 50 ms for
 * --duration seconds on each: each round gives the policy's share of the
 * in-memory rate of that round, and the median share is reported, so a
 * slow spell of a shared machine falls on both.  Issue 16's targets:
 * TXKV_SYNC_COMMIT >= 50%, TXKV_SYNC_INTERVAL >= 85% at 2 threads.
 *
 * Exit status: 0, 1 when an operation failed, 2 for a bad command line.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kvb-sys.h"
#include "txkv.h"

#define LOAD_BATCH  1000
#define RSS_POLL_NS 5000000

struct cfg {
    uint64_t keys, updates;
    unsigned key_size, value_size, threads, repeat, checkpoints;
    double duration;
    uint64_t seed;
    int sync;
    const char *parent, *reopen;
    int recovery, checkpoint, sync_mode, sync_given, keep;
};

static char g_dir[4096]; /* the mkdtemp directory, removed at exit */
static char g_db[4200], g_aside[4200];

/* ---- small helpers ------------------------------------------------------------------ */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void make_key(unsigned char *k, unsigned ks, uint64_t i)
{
    uint64_t m = mix64(i + 0x9e3779b97f4a7c15ull);
    memset(k, 0, ks);
    for (int b = 0; b < 8; b++) {
        k[b] = (unsigned char)(m >> (56 - 8 * b));
        if (8 + b < (int)ks)
            k[8 + b] = (unsigned char)(i >> (56 - 8 * b));
    }
}

static void make_value(unsigned char *v, unsigned vs, uint64_t i, uint64_t stamp)
{
    uint64_t x = mix64(i ^ stamp << 32);
    for (unsigned b = 0; b < vs; b++, x = x >> 8 | x << 56)
        v[b] = (unsigned char)x;
}

/* xorshift64*: one stream per thread. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static void die_txkv(const char *what, int rc) __attribute__((noreturn));

static void cleanup(void)
{
    if (g_dir[0])
        bench_rmtree(g_dir);
    g_dir[0] = 0;
}

/* An interrupted run leaves nothing behind (bench_rmtree is
 * async-signal-safe; g_dir is complete before the handler is set). */
static void on_signal(int sig)
{
    if (g_dir[0])
        bench_rmtree(g_dir);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void die_txkv(const char *what, int rc)
{
    fprintf(stderr, "wal-bench: %s: %s\n", what, txkv_strerror(rc));
    cleanup();
    exit(1);
}

/* Bytes in files of dir whose names start with prefix. */
static uint64_t files_bytes(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    uint64_t n = 0;
    char p[4500];
    if (!d)
        return 0;
    while ((e = readdir(d))) {
        struct stat st;
        if (strncmp(e->d_name, prefix, strlen(prefix)))
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (!stat(p, &st))
            n += (uint64_t)st.st_size;
    }
    closedir(d);
    return n;
}

/* The name of dir's checkpoint file into buf; 0, or -1 if there is none. */
static int ckpt_name(const char *dir, char *buf, size_t len)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int rc = -1;
    if (!d)
        return -1;
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, "ckpt-", 5)) {
            snprintf(buf, len, "%s", e->d_name);
            rc = 0;
            break;
        }
    closedir(d);
    return rc;
}

static txkv_db *open_db(const struct cfg *c, int sync)
{
    txkv_options o;
    txkv_db *db;
    txkv_options_init(&o);
    o.dir = g_db;
    o.sync = sync;
    int rc = txkv_open(&o, &db);
    if (rc)
        die_txkv("txkv_open", rc);
    (void)c;
    return db;
}

static void load(const struct cfg *c, txkv_db *db)
{
    unsigned char *k = malloc(c->key_size), *v = malloc(c->value_size);
    if (!k || !v) {
        fprintf(stderr, "wal-bench: out of memory\n");
        cleanup();
        exit(1);
    }
    for (uint64_t i = 0; i < c->keys;) {
        txkv_txn *t;
        int rc = txkv_begin(db, NULL, &t);
        if (rc)
            die_txkv("txkv_begin", rc);
        for (uint64_t e = i + LOAD_BATCH < c->keys ? i + LOAD_BATCH : c->keys; i < e; i++) {
            make_key(k, c->key_size, i);
            make_value(v, c->value_size, i, 0);
            if ((rc = txkv_put(t, NULL, k, c->key_size, v, c->value_size)))
                die_txkv("txkv_put", rc);
        }
        if ((rc = txkv_commit(t)))
            die_txkv("txkv_commit (load)", rc);
    }
    free(k);
    free(v);
}

static int put1(txkv_db *db, const struct cfg *c, unsigned char *k, unsigned char *v, uint64_t i,
                uint64_t stamp)
{
    txkv_txn *t;
    int rc = txkv_begin(db, NULL, &t);
    if (rc)
        return rc;
    make_key(k, c->key_size, i);
    make_value(v, c->value_size, i, stamp);
    if ((rc = txkv_put(t, NULL, k, c->key_size, v, c->value_size))) {
        txkv_abort(t);
        return rc;
    }
    return txkv_commit(t);
}

/* ---- recovery ----------------------------------------------------------------------- */

struct reopen {
    double secs; /* best of --repeat */
    uint64_t keys, bytes, rss;
};

static void time_reopen(const struct cfg *c, struct reopen *r)
{
    r->secs = 1e30;
    for (unsigned i = 0; i < c->repeat; i++) {
        uint64_t rss0 = bench_rss_bytes(), t0 = now_ns();
        txkv_db *db = open_db(c, TXKV_SYNC_NONE);
        double s = (double)(now_ns() - t0) / 1e9;
        struct txkv_stats st;
        txkv_stats(db, &st);
        if (s < r->secs)
            r->secs = s;
        r->keys = st.keys;
        r->bytes = st.bytes;
        r->rss = bench_rss_bytes() - rss0;
        txkv_close(db);
    }
}

static void print_reopen(const char *what, const struct reopen *r, uint64_t records, uint64_t ckpt,
                         uint64_t log)
{
    double mib = 1024.0 * 1024.0;
    printf("%-16s %8.3f s %10.0f records/s  checkpoint %7.1f MiB  log %7.1f MiB  keys %9" PRIu64
           "  %6.1f B/key  rss +%.0f MiB\n",
           what, r->secs, (double)records / r->secs, (double)ckpt / mib, (double)log / mib, r->keys,
           r->keys ? (double)r->bytes / (double)r->keys : 0, (double)r->rss / mib);
}

static void run_recovery(const struct cfg *c)
{
    unsigned char *k = malloc(c->key_size), *v = malloc(c->value_size);
    char name[256], from[4500], to[4500];
    struct reopen ck, both, logonly;
    uint64_t seed = c->seed * 0x9e3779b97f4a7c15ull + 1, t0;
    int rc;

    if (!k || !v) {
        fprintf(stderr, "wal-bench: out of memory\n");
        cleanup();
        exit(1);
    }
    printf("recovery: %" PRIu64 " keys of %u B, values of %u B, %" PRIu64
           " single-key updates (uniform), best of %u\n",
           c->keys, c->key_size, c->value_size, c->updates, c->repeat);
    txkv_db *db = open_db(c, TXKV_SYNC_NONE);
    t0 = now_ns();
    load(c, db);
    printf("load             %8.3f s\n", (double)(now_ns() - t0) / 1e9);
    t0 = now_ns();
    if ((rc = txkv_checkpoint(db)))
        die_txkv("txkv_checkpoint", rc);
    printf("checkpoint       %8.3f s\n", (double)(now_ns() - t0) / 1e9);
    txkv_close(db);
    uint64_t ckb = files_bytes(g_db, "ckpt-");

    time_reopen(c, &ck);
    print_reopen("open ckpt", &ck, c->keys, ckb, files_bytes(g_db, "wal-"));

    db = open_db(c, TXKV_SYNC_NONE);
    t0 = now_ns();
    for (uint64_t i = 0; i < c->updates; i++)
        if ((rc = put1(db, c, k, v, rnd(&seed) % c->keys, i + 1)))
            die_txkv("update", rc);
    printf("updates          %8.3f s\n", (double)(now_ns() - t0) / 1e9);
    txkv_close(db);
    uint64_t logb = files_bytes(g_db, "wal-");

    time_reopen(c, &both);
    print_reopen("open ckpt+log", &both, c->keys + c->updates, ckb, logb);

    /* The log alone: the checkpoint moves out of the directory (its
     * segments were removed when it was taken, so the log holds exactly
     * the updates). */
    if (ckpt_name(g_db, name, sizeof name)) {
        fprintf(stderr, "wal-bench: no checkpoint file in %s\n", g_db);
        cleanup();
        exit(1);
    }
    snprintf(from, sizeof from, "%s/%s", g_db, name);
    snprintf(to, sizeof to, "%s/%s", g_aside, name);
    if (mkdir(g_aside, 0700) || rename(from, to)) {
        fprintf(stderr, "wal-bench: moving the checkpoint aside: %s\n", strerror(errno));
        cleanup();
        exit(1);
    }
    time_reopen(c, &logonly);
    print_reopen("open log", &logonly, c->updates, 0, logb);
    printf("log replay (ckpt+log - ckpt): %.3f s, %.0f records/s\n", both.secs - ck.secs,
           (double)c->updates / (both.secs - ck.secs > 0 ? both.secs - ck.secs : 1e-9));
    if (rename(to, from)) { /* back: the database is whole again (--keep, checkpoint mode) */
        fprintf(stderr, "wal-bench: moving the checkpoint back: %s\n", strerror(errno));
        cleanup();
        exit(1);
    }
    free(k);
    free(v);
}

/* reopen DIR: times txkv_open of an existing database (a profile's target). */
static void run_reopen(const struct cfg *c)
{
    struct reopen r;
    snprintf(g_db, sizeof g_db, "%s", c->reopen);
    time_reopen(c, &r);
    print_reopen("open", &r, 0, files_bytes(g_db, "ckpt-"), files_bytes(g_db, "wal-"));
}

/* ---- the workers of the checkpoint and sync modes --------------------------------------- */

struct shared {
    const struct cfg *c;
    txkv_db *db[2];  /* checkpoint: db[0] only; sync: in memory, durable */
    _Atomic int cur; /* the database the workers use now */
    bool reads;      /* ycsb-a (half reads); else updates only (kv-bench's update) */
    _Atomic int stop;
    _Atomic int failed;
};

struct worker {
    struct shared *sh;
    pthread_t tid;
    unsigned no;
    _Atomic uint64_t commits[2]; /* per database; read by the main thread at window edges */
};

/* Single-key transactions on uniform keys, on whichever database sh->cur
 * names when each begins: half reads if sh->reads, else all updates. */
static void *worker_main(void *arg)
{
    struct worker *w = arg;
    const struct cfg *c = w->sh->c;
    unsigned char *k = malloc(c->key_size), *v = malloc(c->value_size);
    uint64_t seed = (c->seed + w->no + 1) * 0x9e3779b97f4a7c15ull, stamp = (uint64_t)w->no << 40;
    if (!k || !v) {
        atomic_store(&w->sh->failed, TXKV_NOMEM);
        goto out;
    }
    while (!atomic_load_explicit(&w->sh->stop, memory_order_relaxed)) {
        int d = atomic_load_explicit(&w->sh->cur, memory_order_relaxed);
        txkv_db *db = w->sh->db[d];
        uint64_t r = rnd(&seed), i = r % c->keys;
        int rc;
        if (w->sh->reads && r >> 63) {
            txkv_txn *t;
            const void *val;
            size_t vl;
            if ((rc = txkv_begin(db, NULL, &t)) == 0) {
                make_key(k, c->key_size, i);
                rc = txkv_get(t, NULL, k, c->key_size, &val, &vl);
                if (rc == 0)
                    rc = txkv_commit(t);
                else
                    txkv_abort(t);
            }
        } else {
            rc = put1(db, c, k, v, i, ++stamp);
        }
        if (rc && !txkv_is_retryable(rc)) {
            atomic_store(&w->sh->failed, rc);
            break;
        }
        if (!rc)
            atomic_fetch_add_explicit(&w->commits[d], 1, memory_order_relaxed);
    }
out:
    free(k);
    free(v);
    return NULL;
}

static void start_workers(struct shared *sh, struct worker *ws)
{
    atomic_store(&sh->stop, 0);
    for (unsigned t = 0; t < sh->c->threads; t++) {
        ws[t] = (struct worker){.sh = sh, .no = t};
        if (pthread_create(&ws[t].tid, NULL, worker_main, &ws[t])) {
            fprintf(stderr, "wal-bench: pthread_create failed\n");
            cleanup();
            exit(1);
        }
    }
}

/* Stops and joins the workers; exits if one failed. */
static void stop_workers(struct shared *sh, struct worker *ws, const char *what)
{
    atomic_store(&sh->stop, 1);
    for (unsigned t = 0; t < sh->c->threads; t++)
        pthread_join(ws[t].tid, NULL);
    if (atomic_load(&sh->failed))
        die_txkv(what, atomic_load(&sh->failed));
}

/* ---- checkpoint under ycsb-a ------------------------------------------------------------ */

struct ckpt_thread {
    txkv_db *db;
    int rc;
    _Atomic int done;
    uint64_t t0, t1;
};

static void *ckpt_main(void *arg)
{
    struct ckpt_thread *ct = arg;
    ct->t0 = now_ns();
    ct->rc = txkv_checkpoint(ct->db);
    ct->t1 = now_ns();
    atomic_store(&ct->done, 1);
    return NULL;
}

/* Commits the n workers made on database d. */
static uint64_t total_commits(struct worker *ws, unsigned n, int d)
{
    uint64_t s = 0;
    for (unsigned i = 0; i < n; i++)
        s += atomic_load_explicit(&ws[i].commits[d], memory_order_relaxed);
    return s;
}

/* Sleeps secs, sampling RSS; returns the peak. */
static uint64_t window(double secs)
{
    uint64_t end = now_ns() + (uint64_t)(secs * 1e9), peak = 0;
    while (now_ns() < end) {
        uint64_t r = bench_rss_bytes();
        peak = r > peak ? r : peak;
        struct timespec ts = {0, RSS_POLL_NS};
        nanosleep(&ts, NULL);
    }
    return peak;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One checkpoint on its own thread while the workers run: its txn/s, its
 * duration, and the peak RSS during it (from rss_start). */
struct ckpt_round {
    double before, during, after, secs;
    uint64_t rss_start, peak_during, peak_before;
};

static void one_checkpoint(txkv_db *db, struct worker *ws, unsigned nthreads, struct ckpt_round *cr)
{
    struct ckpt_thread ct = {.db = db};
    pthread_t ctid;
    cr->rss_start = cr->peak_during = bench_rss_bytes();
    if (pthread_create(&ctid, NULL, ckpt_main, &ct)) {
        fprintf(stderr, "wal-bench: pthread_create failed\n");
        cleanup();
        exit(1);
    }
    uint64_t n2 = total_commits(ws, nthreads, 0), t2 = now_ns();
    while (!atomic_load(&ct.done)) {
        uint64_t r = bench_rss_bytes();
        cr->peak_during = r > cr->peak_during ? r : cr->peak_during;
        struct timespec ts = {0, RSS_POLL_NS};
        nanosleep(&ts, NULL);
    }
    uint64_t n3 = total_commits(ws, nthreads, 0), t3 = now_ns();
    pthread_join(ctid, NULL);
    if (ct.rc)
        die_txkv("txkv_checkpoint (during ycsb-a)", ct.rc);
    cr->during = (double)(n3 - n2) / ((double)(t3 - t2) / 1e9);
    cr->secs = (double)(ct.t1 - ct.t0) / 1e9;
}

/* txn/s over a window of secs; *peak: its peak RSS. */
static double rate_window(struct worker *ws, unsigned nthreads, double secs, uint64_t *peak)
{
    uint64_t n0 = total_commits(ws, nthreads, 0), t0 = now_ns();
    *peak = window(secs);
    uint64_t n1 = total_commits(ws, nthreads, 0), t1 = now_ns();
    return (double)(n1 - n0) / ((double)(t1 - t0) / 1e9);
}

static double share_of(const struct ckpt_round *cr)
{
    return cr->during / ((cr->before + cr->after) / 2);
}

static double growth(const struct ckpt_round *cr)
{
    return ((double)cr->peak_during - (double)cr->rss_start) / (double)cr->rss_start;
}

static void run_checkpoint(const struct cfg *c)
{
    struct shared sh = {.c = c, .reads = true};
    struct worker *ws = calloc(c->threads, sizeof *ws);
    struct ckpt_round *cr = calloc(c->checkpoints, sizeof *cr);
    double *share = calloc(c->checkpoints, sizeof *share);
    double mib = 1024.0 * 1024.0;
    uint64_t peak;
    int rc;

    if (!ws || !cr || !share) {
        fprintf(stderr, "wal-bench: out of memory\n");
        cleanup();
        exit(1);
    }
    printf("checkpoint under ycsb-a: %" PRIu64 " keys of %u B, values of %u B, %u thread%s, sync "
           "%s, windows of %g s\n",
           c->keys, c->key_size, c->value_size, c->threads, c->threads == 1 ? "" : "s",
           c->sync == TXKV_SYNC_COMMIT     ? "commit"
           : c->sync == TXKV_SYNC_INTERVAL ? "interval"
                                           : "none",
           c->duration);
    sh.db[0] = open_db(c, c->sync);
    load(c, sh.db[0]);
    if ((rc = txkv_checkpoint(sh.db[0])))
        die_txkv("txkv_checkpoint (after the load)", rc);
    start_workers(&sh, ws);
    window(c->duration / 2); /* warm-up */
    double before = rate_window(ws, c->threads, c->duration, &peak);
    for (unsigned k = 0; k < c->checkpoints; k++) {
        cr[k].before = before;
        cr[k].peak_before = peak;
        one_checkpoint(sh.db[0], ws, c->threads, &cr[k]);
        before = cr[k].after = rate_window(ws, c->threads, c->duration, &peak);
    }
    stop_workers(&sh, ws, "ycsb-a");
    uint64_t ckb = files_bytes(g_db, "ckpt-");
    txkv_close(sh.db[0]);

    if (c->checkpoints == 1) {
        struct ckpt_round *r = &cr[0];
        printf("txn/s before     %10.0f  (rss peak %.0f MiB)\n", r->before,
               (double)r->peak_before / mib);
        printf("txn/s during     %10.0f  (%.0f%% of the mean of before and after; target >= "
               "70%%)\n",
               r->during, 100 * share_of(r));
        printf("txn/s after      %10.0f  (rss peak %.0f MiB)\n", r->after, (double)peak / mib);
        printf("checkpoint       %10.3f s  %.1f MiB\n", r->secs, (double)ckb / mib);
        printf("rss at its start %10.0f MiB, peak during %.0f MiB: %+.1f%% (against the peak "
               "before: %+.1f%%; target <= 10%%)\n",
               (double)r->rss_start / mib, (double)r->peak_during / mib, 100 * growth(r),
               100 * ((double)r->peak_during - (double)r->peak_before) / (double)r->peak_before);
    } else {
        double worst = 0;
        printf("%-3s %10s %10s %10s %7s %9s %8s\n", "#", "before", "during", "after", "share",
               "seconds", "rss");
        for (unsigned k = 0; k < c->checkpoints; k++) {
            struct ckpt_round *r = &cr[k];
            share[k] = share_of(r);
            worst = growth(r) > worst ? growth(r) : worst;
            printf("%-3u %10.0f %10.0f %10.0f %6.0f%% %9.3f %+7.1f%%\n", k + 1, r->before,
                   r->during, r->after, 100 * share[k], r->secs, 100 * growth(r));
        }
        qsort(share, c->checkpoints, sizeof *share, cmp_double);
        unsigned n = c->checkpoints;
        double med = n % 2 ? share[n / 2] : (share[n / 2 - 1] + share[n / 2]) / 2;
        printf("txn/s during: median %.0f%% of the mean of the windows around it (min %.0f%%, max "
               "%.0f%%; target >= 70%%); rss growth at most %+.1f%% (target <= 10%%)\n",
               100 * med, 100 * share[0], 100 * share[n - 1], 100 * worst);
    }
    free(ws);
    free(cr);
    free(share);
}

/* ---- the sync policies against memory ---------------------------------------------------- */

/* A window on one database.  Shorter than the GC's idle delay (100 ms):
 * a database left idle longer sweeps all its records once, which would
 * fall on the other's window. */
#define SYNC_WINDOW_NS 50000000u
#define NPOLICY        3

static const char *const policy_name[NPOLICY] = {"none", "interval", "commit"};
static const int policy_sync[NPOLICY] = {TXKV_SYNC_NONE, TXKV_SYNC_INTERVAL, TXKV_SYNC_COMMIT};
static const int policy_target[NPOLICY] = {0, 85, 50}; /* issue 16, % of memory */

static void sleep_until(uint64_t t)
{
    for (uint64_t now; (now = now_ns()) < t;) {
        struct timespec ts = {(time_t)((t - now) / 1000000000u), (long)((t - now) % 1000000000u)};
        nanosleep(&ts, NULL);
    }
}

/* Runs the workers on sh->db[0] and [1] in turn, `rounds` windows on
 * each, the first of each round alternating; share[r] is round r's rate
 * on [1] over its rate on [0]; n and ns sum commits and time per database. */
static void sync_rounds(struct shared *sh, struct worker *ws, unsigned rounds, double *share,
                        uint64_t n[2], uint64_t ns[2])
{
    for (unsigned r = 0; r < rounds; r++) {
        double rate[2];
        for (int j = 0; j < 2; j++) {
            int i = j ^ (int)(r & 1);
            atomic_store(&sh->cur, i);
            uint64_t n0 = total_commits(ws, sh->c->threads, i), t0 = now_ns();
            sleep_until(t0 + SYNC_WINDOW_NS);
            uint64_t n1 = total_commits(ws, sh->c->threads, i), t1 = now_ns();
            rate[i] = (double)(n1 - n0) / ((double)(t1 - t0) / 1e9);
            n[i] += n1 - n0;
            ns[i] += t1 - t0;
        }
        if (share)
            share[r] = rate[0] > 0 ? rate[1] / rate[0] : 0;
    }
}

/*
 * For each sync policy: a database with a directory under that policy and
 * one in memory, loaded alike; the workers move from one to the other
 * every 50 ms for --duration seconds on each, so a slow spell of a shared
 * machine falls on both.  Each round gives the policy's share of the
 * in-memory rate of that round; the median share is the figure.
 */
static void run_sync(const struct cfg *c)
{
    struct shared sh = {.c = c};
    struct worker *ws = calloc(c->threads, sizeof *ws);
    unsigned rounds = (unsigned)(c->duration * 1e9 / SYNC_WINDOW_NS);
    double *share = calloc(rounds ? rounds : 1, sizeof *share);
    txkv_options o;
    int rc;

    if (!ws || !share) {
        fprintf(stderr, "wal-bench: out of memory\n");
        cleanup();
        exit(1);
    }
    if (rounds < 1)
        rounds = 1;
    printf("sync policies against memory, update: %" PRIu64 " keys of %u B, values of %u B, %u "
           "thread%s, %u rounds of a 50 ms window on each database\n",
           c->keys, c->key_size, c->value_size, c->threads, c->threads == 1 ? "" : "s", rounds);
    printf("%-10s %12s %12s %9s %9s %9s %7s\n", "policy", "txn/s", "memory", "share", "min", "max",
           "target");
    txkv_options_init(&o);
    if ((rc = txkv_open(&o, &sh.db[0])))
        die_txkv("txkv_open", rc);
    load(c, sh.db[0]);
    for (int p = 0; p < NPOLICY; p++) {
        uint64_t n[2] = {0}, ns[2] = {0};
        if (c->sync_given && policy_sync[p] != c->sync)
            continue;
        snprintf(g_db, sizeof g_db, "%s/%s", g_dir, policy_name[p]);
        sh.db[1] = open_db(c, policy_sync[p]);
        load(c, sh.db[1]);
        start_workers(&sh, ws);
        sync_rounds(&sh, ws, 4, NULL, n, ns); /* warm-up */
        memset(n, 0, sizeof n);
        memset(ns, 0, sizeof ns);
        sync_rounds(&sh, ws, rounds, share, n, ns);
        stop_workers(&sh, ws, "update");
        txkv_close(sh.db[1]);
        bench_rmtree(g_db);
        qsort(share, rounds, sizeof *share, cmp_double);
        double med =
            rounds % 2 ? share[rounds / 2] : (share[rounds / 2 - 1] + share[rounds / 2]) / 2;
        printf("%-10s %12.0f %12.0f %8.1f%% %8.1f%% %8.1f%%", policy_name[p],
               (double)n[1] / ((double)ns[1] / 1e9), (double)n[0] / ((double)ns[0] / 1e9),
               100 * med, 100 * share[0], 100 * share[rounds - 1]);
        if (policy_target[p])
            printf(" %5s%d%%", ">=", policy_target[p]);
        printf("\n");
        fflush(stdout);
    }
    txkv_close(sh.db[0]);
    free(ws);
    free(share);
}

/* ---- the command line --------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: wal-bench [options] [recovery] [checkpoint] [sync]\n"
               "Measures txkv's recovery (txkv_open of a checkpoint and a log), checkpoints\n"
               "taken under ycsb-a and the sync policies against memory, in a fresh temporary\n"
               "directory removed at the end.\n"
               "\n"
               "  recovery              load, checkpoint, update; time the reopen of the\n"
               "                        checkpoint, of checkpoint + log, of the log alone\n"
               "  checkpoint            ycsb-a txn/s and RSS before, during and after a\n"
               "                        txkv_checkpoint\n"
               "  sync                  update txn/s in memory and under each sync policy,\n"
               "                        alternating 50 ms windows; median share of memory\n"
               "  -k, --keys N          keys loaded (k/m suffixes) [1m]\n"
               "  -u, --updates N       recovery: single-key updates after the checkpoint [keys]\n"
               "      --key-size N      bytes per key, 16..65535 [16]\n"
               "      --value-size N    bytes per value, 8..16m [100]\n"
               "  -r, --repeat N        recovery: times each reopen, best reported [1]\n"
               "      --checkpoints N   checkpoint: take N, a window after each; per-checkpoint\n"
               "                        rows and the median share [1]\n"
               "  -t, --threads N       checkpoint, sync: worker threads [1]\n"
               "  -d, --duration SECS   checkpoint: seconds before and after it;\n"
               "                        sync: seconds on each database [3]\n"
               "      --sync POLICY     checkpoint: commit, interval, none [none];\n"
               "                        sync: only this one [all three]\n"
               "  -s, --seed N          random seed [1]\n"
               "      --dir DIR         where the temporary directory goes [$TMPDIR or /tmp]\n"
               "      --keep            keep the temporary directory (its path is printed)\n"
               "      --reopen DIR      only time txkv_open of the database DIR (--repeat times)\n"
               "  -h, --help            show this help\n"
               "With no mode, recovery and checkpoint run.\n");
}

static void bad(const char *msg, const char *arg) __attribute__((noreturn));
static void bad(const char *msg, const char *arg)
{
    fprintf(stderr, "wal-bench: %s '%s'\nTry 'wal-bench --help'.\n", msg, arg);
    exit(2);
}

static uint64_t count(const char *s, uint64_t min, uint64_t max)
{
    char *end;
    errno = 0;
    if (!*s || *s == '-')
        bad("not a count:", s);
    uint64_t v = strtoull(s, &end, 10), mul = 1;
    if (*end == 'k' || *end == 'K')
        mul = 1000, end++;
    else if (*end == 'm' || *end == 'M')
        mul = 1000000, end++;
    if (errno || end == s || *end || (v && UINT64_MAX / v < mul) || v * mul < min || v * mul > max)
        bad("not a count in range:", s);
    return v * mul;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"keys", required_argument, NULL, 'k'},
                                         {"updates", required_argument, NULL, 'u'},
                                         {"key-size", required_argument, NULL, 'K'},
                                         {"value-size", required_argument, NULL, 'V'},
                                         {"repeat", required_argument, NULL, 'r'},
                                         {"threads", required_argument, NULL, 't'},
                                         {"duration", required_argument, NULL, 'd'},
                                         {"sync", required_argument, NULL, 'S'},
                                         {"seed", required_argument, NULL, 's'},
                                         {"dir", required_argument, NULL, 'D'},
                                         {"keep", no_argument, NULL, 'E'},
                                         {"reopen", required_argument, NULL, 'O'},
                                         {"checkpoints", required_argument, NULL, 'C'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct cfg c = {.keys = 1000000,
                    .key_size = 16,
                    .value_size = 100,
                    .threads = 1,
                    .repeat = 1,
                    .checkpoints = 1,
                    .duration = 3,
                    .seed = 1,
                    .sync = TXKV_SYNC_NONE};
    int have_updates = 0, opt;
    char *end;

    while ((opt = getopt_long(argc, argv, "k:u:r:t:d:s:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'k':
            c.keys = count(optarg, 1, (uint64_t)1 << 32);
            break;
        case 'u':
            c.updates = count(optarg, 0, (uint64_t)1 << 40);
            have_updates = 1;
            break;
        case 'K':
            c.key_size = (unsigned)count(optarg, 16, 65535);
            break;
        case 'V':
            c.value_size = (unsigned)count(optarg, 8, 1 << 24);
            break;
        case 'r':
            c.repeat = (unsigned)count(optarg, 1, 1000);
            break;
        case 'C':
            c.checkpoints = (unsigned)count(optarg, 1, 1000);
            break;
        case 't':
            c.threads = (unsigned)count(optarg, 1, 256);
            break;
        case 'd':
            c.duration = strtod(optarg, &end);
            if (*end || !(c.duration > 0 && c.duration < 1e6))
                bad("not a duration:", optarg);
            break;
        case 'S':
            c.sync_given = 1;
            if (!strcmp(optarg, "commit"))
                c.sync = TXKV_SYNC_COMMIT;
            else if (!strcmp(optarg, "interval"))
                c.sync = TXKV_SYNC_INTERVAL;
            else if (!strcmp(optarg, "none"))
                c.sync = TXKV_SYNC_NONE;
            else
                bad("--sync: not commit, interval or none:", optarg);
            break;
        case 's':
            c.seed = count(optarg, 0, UINT64_MAX);
            break;
        case 'D':
            c.parent = optarg;
            break;
        case 'E':
            c.keep = 1;
            break;
        case 'O':
            c.reopen = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    for (; optind < argc; optind++) {
        if (!strcmp(argv[optind], "recovery"))
            c.recovery = 1;
        else if (!strcmp(argv[optind], "checkpoint"))
            c.checkpoint = 1;
        else if (!strcmp(argv[optind], "sync"))
            c.sync_mode = 1;
        else
            bad("unknown mode", argv[optind]);
    }
    if (c.reopen) {
        if (c.recovery || c.checkpoint || c.sync_mode)
            bad("--reopen takes no mode:", c.recovery     ? "recovery"
                                           : c.checkpoint ? "checkpoint"
                                                          : "sync");
        run_reopen(&c);
        return fflush(stdout) ? 1 : 0;
    }
    if (!c.recovery && !c.checkpoint && !c.sync_mode)
        c.recovery = c.checkpoint = 1;
    if (!have_updates)
        c.updates = c.keys;
    if (!c.parent)
        c.parent = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(g_dir, sizeof g_dir, "%s/wal-bench.XXXXXX", c.parent);
    if (!mkdtemp(g_dir)) {
        fprintf(stderr, "wal-bench: mkdtemp %s: %s\n", g_dir, strerror(errno));
        return 1;
    }
    snprintf(g_db, sizeof g_db, "%s/db", g_dir);
    snprintf(g_aside, sizeof g_aside, "%s/aside", g_dir);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    if (c.recovery)
        run_recovery(&c);
    if (c.checkpoint) {
        if (c.keep) {
            snprintf(g_db, sizeof g_db, "%s/db2", g_dir);
        } else {
            bench_rmtree(g_db);
        }
        run_checkpoint(&c);
    }
    if (c.sync_mode)
        run_sync(&c);
    if (c.keep) {
        printf("kept %s\n", g_dir);
        g_dir[0] = 0;
    }
    cleanup();
    return fflush(stdout) ? 1 : 0;
}
