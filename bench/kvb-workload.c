/*
 * kvb-workload.c - kv-bench's workloads: what one thread does, transaction
 * by transaction, against whichever engine the row names.
 *
 * A transaction is first drawn as a plan (its kind and its items) from the
 * thread's random stream, then executed; when it fails with a retryable
 * conflict it is executed again with the same plan, as an application would
 * retry it, and the abort is counted.  Drawing before executing keeps every
 * thread's stream identical across engines and isolation levels whatever
 * aborts, and keeps hard transactions from being swapped for easy ones.
 *
 * The mixes follow YCSB's core workloads (A 50/50 read/update, B 95/5,
 * C read-only, D 95% read-latest + 5% insert, E 95% short scans + 5% insert,
 * F 50% read + 50% read-modify-write), each operation its own transaction;
 * `read`, `update`, `rmw` and `scan` are db_bench/DBx1000-style single-kind
 * transactions; `bank` moves money between accounts while one auditor
 * thread sums every balance in read-only transactions; `multiget` reads
 * --ops-per-txn distinct keys in one read-only transaction, in one call on
 * engines that batch (txkv_get_many, RocksDB's MultiGet), else one get
 * after another; `readn` reads the same keys one get after another on every
 * engine (multiget's unbatched twin: the same seed draws the same keys, so
 * the two compare batching alone).  With --batch, `rmw` reads its keys with
 * one multiget (plain reads, as multiget's), then writes them.  Every value
 * read is folded into a checksum so no read can be optimised away.
 *
 * Latency is one logical transaction, retries included, on CLOCK_MONOTONIC.
 * Threads share only the phase word, the insert counter (ycsb-d/e) and the
 * failure slots; statistics are per thread and merged after the join.
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "kvb.h"

#define LOAD_BATCH 10000 /* items per loader transaction, for both engines */

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bench_fail(struct bench_shared *sh, int unsupported, const char *fmt, ...)
{
    int expected = 0;
    if (atomic_compare_exchange_strong(&sh->failed, &expected, 1)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(sh->failmsg, sizeof sh->failmsg, fmt, ap);
        va_end(ap);
        atomic_store(&sh->unsupported, unsupported);
    }
    atomic_store_explicit(&sh->phase, PHASE_STOP, memory_order_release);
}

/* A loud report: the bank's money is not all there. */
static void violation(struct bench_shared *sh, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void violation(struct bench_shared *sh, const char *fmt, ...)
{
    char msg[sizeof sh->violation];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (atomic_fetch_add(&sh->violations, 1) == 0)
        memcpy(sh->violation, msg, sizeof msg);
    fprintf(stderr, "kv-bench: BANK INVARIANT VIOLATED: %s\n", msg);
}

/* The bytes of every value: a fixed pattern from the seed, the same on every thread. */
static void value_fill(uint8_t *v, size_t n, uint64_t seed)
{
    struct bench_rng r;
    bench_rng_seed(&r, seed, UINT64_MAX);
    for (size_t i = 0; i < n; i++)
        v[i] = (uint8_t)bench_rand(&r);
}

int bench_worker_init(struct bench_worker *w, struct bench_shared *sh, unsigned tid, int auditor)
{
    const struct bench_config *cfg = sh->cfg;
    unsigned nitems = cfg->ops_per_txn > 2 ? cfg->ops_per_txn : 2;
    size_t setsz = 4;

    memset(w, 0, sizeof *w);
    w->sh = sh;
    w->tid = tid;
    w->auditor = auditor;
    bench_rng_seed(&w->rng, cfg->seed, tid);
    while (setsz < 2 * (size_t)nitems)
        setsz *= 2;
    w->set_mask = setsz - 1;
    w->set = calloc(setsz, sizeof *w->set);
    w->plan.items = calloc(nitems, sizeof *w->plan.items);
    w->key = malloc(cfg->key_size);
    w->val = malloc(cfg->value_size);
    w->tmp = malloc(cfg->value_size);
    w->mkeys = malloc((size_t)nitems * cfg->key_size);
    w->mkeyp = calloc(nitems, sizeof *w->mkeyp);
    w->mklen = calloc(nitems, sizeof *w->mklen);
    w->mvals = calloc(nitems, sizeof *w->mvals);
    w->mvlens = calloc(nitems, sizeof *w->mvlens);
    w->mrcs = calloc(nitems, sizeof *w->mrcs);
    if (cfg->batch && sh->workload == W_RMW)
        w->mcopy = malloc((size_t)nitems * cfg->value_size);
    if (!w->set || !w->plan.items || !w->key || !w->val || !w->tmp || !w->mkeys || !w->mkeyp ||
        !w->mklen || !w->mvals || !w->mvlens || !w->mrcs ||
        (cfg->batch && sh->workload == W_RMW && !w->mcopy)) {
        bench_worker_free(w);
        return BENCH_FAIL;
    }
    bench_key_init(w->key, cfg->key_size);
    for (unsigned i = 0; i < nitems; i++) {
        w->mkeyp[i] = w->mkeys + (size_t)i * cfg->key_size;
        w->mklen[i] = cfg->key_size;
        bench_key_init(w->mkeys + (size_t)i * cfg->key_size, cfg->key_size);
    }
    value_fill(w->val, cfg->value_size, cfg->seed);
    if (sh->theta > 0)
        w->latest = sh->zipf;
    w->quota = UINT64_MAX;
    if (cfg->txns && !auditor)
        w->quota = cfg->txns / sh->threads + (tid < cfg->txns % sh->threads);
    w->stamp = (uint64_t)(tid + 1) << 40;
    return BENCH_OK;
}

void bench_worker_free(struct bench_worker *w)
{
    free(w->set);
    free(w->plan.items);
    free(w->key);
    free(w->val);
    free(w->tmp);
    free(w->mkeys);
    free(w->mkeyp);
    free(w->mklen);
    free(w->mvals);
    free(w->mvlens);
    free(w->mrcs);
    free(w->mcopy);
    w->set = w->plan.items = NULL;
    w->key = w->val = w->tmp = w->mkeys = w->mcopy = NULL;
    w->mkeyp = w->mvals = NULL;
    w->mklen = w->mvlens = NULL;
    w->mrcs = NULL;
}

/* The timed phase starts.  Audits are not reset: every one checks the invariant. */
static void worker_reset(struct bench_worker *w)
{
    w->commits = w->aborts = w->ops = w->notfound = w->fold = 0;
    bench_hist_reset(&w->hist);
}

/* ---- drawing plans ------------------------------------------------------------ */

static inline uint64_t pick(struct bench_worker *w)
{
    if (w->sh->theta == 0)
        return bench_rand_below(&w->rng, w->sh->items);
    return bench_zipf_next(&w->sh->zipf, &w->rng);
}

/* ycsb-d: recent items are popular (YCSB's "latest": newest minus a zipfian rank). */
static uint64_t pick_latest(struct bench_worker *w)
{
    uint64_t n = atomic_load_explicit(&w->sh->next_item, memory_order_relaxed);
    if (w->sh->theta == 0)
        return bench_rand_below(&w->rng, n);
    if (n > w->latest.n)
        bench_zipf_grow(&w->latest, n);
    return n - 1 - bench_zipf_next(&w->latest, &w->rng);
}

static uint64_t pick_new(struct bench_worker *w)
{
    return atomic_fetch_add_explicit(&w->sh->next_item, 1, memory_order_relaxed);
}

static int set_add(struct bench_worker *w, uint64_t item)
{
    size_t h = bench_mix(item) & w->set_mask;
    while (w->set[h]) {
        if (w->set[h] == item + 1)
            return 0;
        h = (h + 1) & w->set_mask;
    }
    w->set[h] = item + 1;
    return 1;
}

/* n distinct items: a transaction touches a key once (zipfian repeats are redrawn). */
static void pick_distinct(struct bench_worker *w, unsigned n)
{
    uint64_t items = w->sh->items;
    memset(w->set, 0, (w->set_mask + 1) * sizeof *w->set);
    for (unsigned i = 0; i < n; i++) {
        uint64_t it = pick(w);
        for (unsigned tries = 0; !set_add(w, it); tries++)
            it = tries < 64 ? pick(w) : (it + 1) % items; /* tiny, skewed keyspaces */
        w->plan.items[i] = it;
    }
}

static void make_plan(struct bench_worker *w)
{
    struct bench_plan *p = &w->plan;
    const struct bench_config *cfg = w->sh->cfg;
    uint64_t r;

    p->n = 1;
    switch (w->sh->workload) {
    case W_YCSB_A:
    case W_YCSB_B:
        r = bench_rand_below(&w->rng, 100);
        p->kind = r < (w->sh->workload == W_YCSB_A ? 50u : 95u) ? P_READ : P_UPDATE;
        p->items[0] = pick(w);
        break;
    case W_YCSB_C:
    case W_READ:
        p->kind = P_READ;
        p->items[0] = pick(w);
        break;
    case W_YCSB_D:
        r = bench_rand_below(&w->rng, 100);
        p->kind = r < 95 ? P_READ : P_INSERT;
        p->items[0] = p->kind == P_READ ? pick_latest(w) : pick_new(w);
        break;
    case W_YCSB_E:
        r = bench_rand_below(&w->rng, 100);
        if (r < 95) {
            p->kind = P_SCAN;
            p->n = 1 + (unsigned)bench_rand_below(&w->rng, cfg->scan_length);
            p->items[0] = pick(w);
        } else {
            p->kind = P_INSERT;
            p->items[0] = pick_new(w);
        }
        break;
    case W_YCSB_F:
        r = bench_rand_below(&w->rng, 100);
        p->kind = r < 50 ? P_READ : P_RMW;
        p->items[0] = pick(w);
        break;
    case W_UPDATE:
        p->kind = P_UPDATE;
        p->items[0] = pick(w);
        break;
    case W_RMW:
        p->kind = P_RMW;
        p->n = cfg->ops_per_txn;
        pick_distinct(w, p->n);
        break;
    case W_SCAN:
        p->kind = P_SCAN;
        p->n = cfg->scan_length;
        p->items[0] = pick(w);
        break;
    case W_MULTIGET:
    case W_READN:
        p->kind = w->sh->workload == W_MULTIGET ? P_MULTIGET : P_READN;
        p->n = cfg->ops_per_txn;
        pick_distinct(w, p->n);
        break;
    case W_BANK:
        p->kind = P_TRANSFER;
        p->n = 2;
        pick_distinct(w, 2);
        p->amount = 1 + (int64_t)bench_rand_below(&w->rng, 100);
        break;
    }
}

/* ---- executing plans -------------------------------------------------------------- */

struct txn_result {
    uint64_t ops, notfound, fold;
};

/* Reads an account's balance for update. */
static int read_balance(struct bench_worker *w, uint64_t item, int64_t *bal, struct txn_result *res)
{
    const struct bench_engine *e = w->sh->eng;
    const void *v;
    size_t vl;
    bench_key(w->key, item);
    int rc = e->get(w->et, w->key, w->sh->cfg->key_size, &v, &vl, 1);
    if (rc == BENCH_NOTFOUND || (rc == BENCH_OK && vl < 8)) {
        bench_fail(w->sh, 0, "bank: account %" PRIu64 " is missing or short", item);
        return BENCH_FAIL;
    }
    if (rc == BENCH_OK) {
        *bal = (int64_t)bench_load64(v);
        res->fold += bench_fold(v, vl);
    }
    return rc;
}

/*
 * One value read: folds it into res (rc BENCH_OK) or counts it missing
 * (BENCH_NOTFOUND).  dst (rmw, may be NULL): the value to write back,
 * --value-size bytes: what was read, cut or padded with the loader's
 * pattern, or the pattern alone for a missing key.  Copied at once because
 * a put may move what an LMDB get pointed at.
 */
static void take_value(struct bench_worker *w, int rc, const void *v, size_t vl, uint8_t *dst,
                       struct txn_result *res)
{
    size_t vs = w->sh->cfg->value_size;
    if (rc == BENCH_NOTFOUND) {
        res->notfound++;
        if (dst)
            memcpy(dst, w->val, vs);
        return;
    }
    res->fold += bench_fold(v, vl);
    if (dst) {
        memcpy(dst, v, vl < vs ? vl : vs);
        if (vl < vs)
            memcpy(dst + vl, w->val + vl, vs - vl);
    }
}

/*
 * Reads the plan's n keys, already in w->mkeyp: with one multiget when
 * batched and the engine has one, else one get after another (plain reads,
 * not for update).  copy: keeps the values in w->mcopy (rmw --batch).
 */
static int read_keys(struct bench_worker *w, unsigned n, int batched, int copy,
                     struct txn_result *res)
{
    const struct bench_engine *e = w->sh->eng;
    size_t ks = w->sh->cfg->key_size, vs = w->sh->cfg->value_size;
    int rc;

    if (batched && e->multiget) {
        rc = e->multiget(w->et, n, w->mkeyp, w->mklen, w->mvals, w->mvlens, w->mrcs);
        if (rc != BENCH_OK)
            return rc;
        for (unsigned i = 0; i < n; i++)
            take_value(w, w->mrcs[i], w->mvals[i], w->mvlens[i],
                       copy ? w->mcopy + (size_t)i * vs : NULL, res);
        return BENCH_OK;
    }
    for (unsigned i = 0; i < n; i++) {
        const void *v = NULL;
        size_t vl = 0;
        rc = e->get(w->et, w->mkeyp[i], ks, &v, &vl, 0);
        if (rc != BENCH_OK && rc != BENCH_NOTFOUND)
            return rc;
        take_value(w, rc, v, vl, copy ? w->mcopy + (size_t)i * vs : NULL, res);
    }
    return BENCH_OK;
}

/* Runs w->plan once.  The transaction is over when this returns, whatever it returns. */
static int exec_plan(struct bench_worker *w, struct txn_result *res)
{
    const struct bench_engine *e = w->sh->eng;
    const struct bench_config *cfg = w->sh->cfg;
    struct bench_plan *p = &w->plan;
    void *t = w->et;
    size_t ks = cfg->key_size, vs = cfg->value_size;
    const void *v;
    size_t vl;
    unsigned got;
    int64_t a, b;
    int rc;

    rc = e->begin(t, p->kind == P_READ || p->kind == P_SCAN || p->kind == P_MULTIGET ||
                             p->kind == P_READN
                         ? BENCH_TXN_RDONLY
                         : 0);
    if (rc != BENCH_OK)
        return rc;
    switch (p->kind) {
    case P_READ:
        bench_key(w->key, p->items[0]);
        rc = e->get(t, w->key, ks, &v, &vl, 0);
        if (rc == BENCH_OK)
            res->fold += bench_fold(v, vl);
        else if (rc == BENCH_NOTFOUND)
            res->notfound++; /* ycsb-d: an item whose insert has not committed yet */
        else
            goto fail;
        res->ops = 1;
        break;
    case P_UPDATE:
    case P_INSERT:
        bench_key(w->key, p->items[0]);
        bench_store64(w->val, ++w->stamp);
        rc = e->put(t, w->key, ks, w->val, vs);
        if (rc != BENCH_OK)
            goto fail;
        res->ops = 1;
        break;
    case P_SCAN:
        bench_key(w->key, p->items[0]);
        rc = e->scan(t, w->key, ks, p->n, &got, &res->fold);
        if (rc != BENCH_OK)
            goto fail;
        res->ops = got;
        break;
    case P_RMW:
        if (cfg->batch &&
            w->sh->workload == W_RMW) { /* every read in one multiget, then every write */
            for (unsigned i = 0; i < p->n; i++)
                bench_key((uint8_t *)w->mkeyp[i], p->items[i]);
            if ((rc = read_keys(w, p->n, 1, 1, res)) != BENCH_OK)
                goto fail;
            for (unsigned i = 0; i < p->n; i++) {
                uint8_t *nv = w->mcopy + (size_t)i * vs;
                bench_store64(nv, bench_load64(nv) + 1);
                if ((rc = e->put(t, w->mkeyp[i], ks, nv, vs)) != BENCH_OK)
                    goto fail;
            }
            res->ops = 2 * (uint64_t)p->n;
            break;
        }
        for (unsigned i = 0; i < p->n; i++) {
            bench_key(w->key, p->items[i]);
            rc = e->get(t, w->key, ks, &v, &vl, 1);
            if (rc != BENCH_OK && rc != BENCH_NOTFOUND)
                goto fail;
            take_value(w, rc, v, vl, w->tmp, res);
            bench_store64(w->tmp, bench_load64(w->tmp) + 1);
            rc = e->put(t, w->key, ks, w->tmp, vs);
            if (rc != BENCH_OK)
                goto fail;
        }
        res->ops = 2 * (uint64_t)p->n;
        break;
    case P_MULTIGET:
    case P_READN: /* ops = keys read: ops/s is keys/s */
        for (unsigned i = 0; i < p->n; i++)
            bench_key((uint8_t *)w->mkeyp[i], p->items[i]);
        if ((rc = read_keys(w, p->n, p->kind == P_MULTIGET, 0, res)) != BENCH_OK)
            goto fail;
        res->ops = p->n;
        break;
    case P_TRANSFER:
        if ((rc = read_balance(w, p->items[0], &a, res)) != BENCH_OK ||
            (rc = read_balance(w, p->items[1], &b, res)) != BENCH_OK)
            goto fail;
        memcpy(w->tmp, w->val, vs);
        bench_store64(w->tmp, (uint64_t)(a - p->amount));
        bench_key(w->key, p->items[0]);
        if ((rc = e->put(t, w->key, ks, w->tmp, vs)) != BENCH_OK)
            goto fail;
        bench_store64(w->tmp, (uint64_t)(b + p->amount));
        bench_key(w->key, p->items[1]);
        if ((rc = e->put(t, w->key, ks, w->tmp, vs)) != BENCH_OK)
            goto fail;
        res->ops = 4;
        break;
    }
    return e->commit(t);
fail:
    e->abort(t);
    return rc;
}

static int one_txn(struct bench_worker *w)
{
    make_plan(w);
    uint64_t t0 = bench_now_ns();
    for (;;) {
        struct txn_result res = {0, 0, 0};
        int rc = exec_plan(w, &res);
        if (rc == BENCH_OK) {
            bench_hist_record(&w->hist, bench_now_ns() - t0);
            w->commits++;
            w->ops += res.ops;
            w->notfound += res.notfound;
            w->fold += res.fold;
            return BENCH_OK;
        }
        if (rc != BENCH_RETRY)
            return rc;
        w->aborts++;
        if (atomic_load_explicit(&w->sh->phase, memory_order_relaxed) == PHASE_STOP)
            return BENCH_STOPPED;
    }
}

/*
 * Sums every balance in one read-only transaction.  A wrong sum breaks the
 * invariant at SNAPSHOT, SERIALIZABLE and on LMDB; READ_COMMITTED reads are
 * not one snapshot, so there a wrong sum while transfers run is read skew
 * (allowed, counted), but the final audit on a quiet database must be exact.
 * An audit that has begun runs to its end even when the row stops: its
 * snapshot was taken while transfers ran, and on a large keyspace it may be
 * the only one.
 */
static int audit(struct bench_worker *w, int final)
{
    struct bench_shared *sh = w->sh;
    const struct bench_engine *e = sh->eng;
    size_t ks = sh->cfg->key_size;
    const void *v;
    size_t vl;
    int rc;

    for (;;) {
        int64_t sum = 0;
        uint64_t n = 0;
        if ((rc = e->begin(w->et, BENCH_TXN_RDONLY)) != BENCH_OK)
            goto failed;
        for (uint64_t i = 0; i < sh->items; i++) {
            bench_key(w->key, i);
            rc = e->get(w->et, w->key, ks, &v, &vl, 0);
            if (rc == BENCH_OK && vl >= 8) {
                sum += (int64_t)bench_load64(v);
                n++;
            } else if (rc == BENCH_OK || rc == BENCH_NOTFOUND) {
                violation(sh, "audit: account %" PRIu64 " is %s", i,
                          rc == BENCH_OK ? "shorter than 8 bytes" : "missing");
                e->abort(w->et);
                bench_fail(sh, 0, "bank: account %" PRIu64 " lost", i);
                return BENCH_FAIL;
            } else {
                e->abort(w->et);
                goto failed;
            }
        }
        rc = e->commit(w->et);
        if (rc == BENCH_OK) {
            w->audits++;
            w->ops += n;
            if (sum != sh->bank_total) {
                if (sh->isolation == ISO_RC && !final)
                    w->audit_skews++;
                else
                    violation(sh,
                              "%saudit of %" PRIu64 " accounts at %s found %" PRId64
                              ", expected %" PRId64,
                              final ? "final " : "", n, bench_iso_name(sh->isolation), sum,
                              sh->bank_total);
            }
            return BENCH_OK;
        }
    failed:
        if (rc != BENCH_RETRY)
            return rc;
        w->aborts++;
        if (!final && atomic_load_explicit(&sh->phase, memory_order_relaxed) == PHASE_STOP)
            return BENCH_STOPPED;
    }
}

void bench_worker_run(struct bench_worker *w)
{
    int measuring = 0;
    for (;;) {
        int ph = atomic_load_explicit(&w->sh->phase, memory_order_acquire);
        if (ph == PHASE_STOP)
            break;
        if (ph == PHASE_RUN && !measuring) {
            worker_reset(w);
            measuring = 1;
        }
        if (measuring && w->commits >= w->quota)
            break;
        int rc = w->auditor ? audit(w, 0) : one_txn(w);
        if (rc == BENCH_OK)
            continue;
        if (rc == BENCH_STOPPED)
            break;
        bench_fail(w->sh, rc == BENCH_NOTSUP, "%s", w->sh->eng->error(w->et));
        break;
    }
}

/* ---- before and after the timed run -------------------------------------------------- */

int bench_load(struct bench_shared *sh, void *t)
{
    const struct bench_engine *e = sh->eng;
    const struct bench_config *cfg = sh->cfg;
    uint8_t *key = malloc(cfg->key_size), *val = malloc(cfg->value_size);
    int rc = BENCH_OK;

    if (!key || !val) {
        bench_fail(sh, 0, "load: out of memory");
        rc = BENCH_FAIL;
        goto out;
    }
    bench_key_init(key, cfg->key_size);
    value_fill(val, cfg->value_size, cfg->seed);
    for (uint64_t i = 0; i < sh->items;) {
        uint64_t end = sh->items - i < LOAD_BATCH ? sh->items : i + LOAD_BATCH;
        if ((rc = e->begin(t, BENCH_TXN_LOAD)) != BENCH_OK)
            goto failed;
        for (uint64_t j = i; j < end; j++) {
            bench_key(key, j);
            bench_store64(val, sh->workload == W_BANK ? (uint64_t)BENCH_BANK_START : j);
            if ((rc = e->put(t, key, cfg->key_size, val, cfg->value_size)) != BENCH_OK) {
                e->abort(t);
                goto failed;
            }
        }
        if ((rc = e->commit(t)) == BENCH_RETRY)
            continue; /* nothing else writes: should not happen, but is harmless */
        if (rc != BENCH_OK)
            goto failed;
        i = end;
    }
    atomic_store(&sh->next_item, sh->items);
    sh->bank_total = (int64_t)sh->items * BENCH_BANK_START;
    goto out;
failed:
    bench_fail(sh, rc == BENCH_NOTSUP, "load: %s", e->error(t));
out:
    free(key);
    free(val);
    return rc;
}

int bench_probe(struct bench_shared *sh, void *t)
{
    const struct bench_engine *e = sh->eng;
    size_t ks = sh->cfg->key_size;
    uint8_t *key = calloc(1, ks);
    unsigned got;
    uint64_t fold = 0;
    int rc;

    if (!key) {
        bench_fail(sh, 0, "out of memory");
        return BENCH_FAIL;
    }
    if ((rc = e->begin(t, 0)) != BENCH_OK)
        goto failed;
    e->abort(t);
    if ((rc = e->begin(t, BENCH_TXN_RDONLY)) != BENCH_OK)
        goto failed;
    if (bench_workload_scans(sh->workload) &&
        (rc = e->scan(t, key, ks, 1, &got, &fold)) != BENCH_OK) {
        e->abort(t);
        goto failed;
    }
    e->abort(t);
    free(key);
    return BENCH_OK;
failed:
    free(key);
    bench_fail(sh, rc == BENCH_NOTSUP, "%s", e->error(t));
    return rc == BENCH_NOTSUP ? BENCH_NOTSUP : BENCH_FAIL;
}

int bench_final_audit(struct bench_shared *sh, void *t)
{
    struct bench_worker w;
    int rc;
    if (bench_worker_init(&w, sh, sh->threads + 1, 1) != BENCH_OK) {
        bench_fail(sh, 0, "out of memory");
        return BENCH_FAIL;
    }
    w.et = t;
    rc = audit(&w, 1);
    if (rc != BENCH_OK)
        bench_fail(sh, 0, "final audit: %s", sh->eng->error(t));
    bench_worker_free(&w);
    return rc;
}
