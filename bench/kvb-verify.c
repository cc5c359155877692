/*
 * kvb-verify.c - kv-bench --verify: each row's engine, isolation level and
 * scheme run a workload whose history can be checked, and the project's
 * history checker (tests/history/check.c, the one tests/txn/history uses)
 * checks it at the level the row claims.  No peer benchmark checks its own
 * runs; this one does, so a row's figure is never for a level it did not
 * provide.
 *
 * The workload (after tests/txn/history): max(2, row threads) threads run
 * --verify-txns transactions together on VKEYS hot keys of a fresh
 * database.  A transaction has 2 to 4 operations; 10% are read-only
 * (declared so to the engine).  A write is a read-modify-write: it reads
 * the key first (for update at read committed, where a plain read is not
 * protected, and half the time elsewhere), records the version it read as
 * the new one's predecessor, and puts a value no other put ever writes
 * (the thread and its put counter, in the value's first 8 bytes); 15% of
 * writes put twice (the first value must never be read) and 3% of
 * transactions abort on purpose after writing (never to be read).  So each
 * key's committed versions form a chain and every dependency edge is
 * exact.  A transaction that fails with a retryable error is recorded as
 * failed and not retried.  Threads yield now and then between operations
 * so that transactions interleave even on two cores (not for
 * synchronisation: nothing waits on it).
 *
 * The check (hist_check, hist_forbidden): at every level G0, G1a, G1b, G1c
 * and lost updates are forbidden; snapshot adds G-single (read skew);
 * serializable forbids every cycle.  The first anomaly of each kind is kept
 * with its cycle and transactions for the output.
 */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "kvb.h"

#define VKEYS     6
#define VKEY_LEN  8
#define VVAL_LEN  16
#define V_RDONLY  10 /* % of transactions */
#define V_READ    40 /* % of operations of a read-write transaction */
#define V_TWICE   15 /* % of writes */
#define V_ABORT   3  /* % of read-write transactions */
#define V_YIELD   10 /* % of operations */
#define V_MAX_THR 64

struct vlog {
    struct hist_op *ops;
    size_t nops, capops;
    struct hist_tx *txs;
    size_t ntx, captx;
    struct hist_wr *wrs;
    size_t nwr, capwr;
};

struct vshared {
    const struct bench_engine *eng;
    void *db;
    int isolation, cc;
    uint64_t txns;
    _Atomic uint64_t next;
    _Atomic int failed;
    char failmsg[300];
};

struct vworker {
    struct vshared *sh;
    pthread_t th;
    unsigned id;
    struct bench_rng rng;
    void *et;
    struct vlog log;
    uint64_t commits, aborts;
    int oom;
};

static void vkey(uint8_t *k, unsigned i)
{
    snprintf((char *)k, VKEY_LEN + 1, "kvbv%04u", i);
}

static int vgrow(void **arr, size_t n, size_t *cap, size_t size)
{
    if (n < *cap)
        return 0;
    size_t nc = *cap ? 2 * *cap : 1024;
    void *p = realloc(*arr, nc * size);
    if (!p)
        return -1;
    *arr = p;
    *cap = nc;
    return 0;
}

static int pct(struct vworker *w, unsigned p)
{
    return bench_rand_below(&w->rng, 100) < p;
}

static int push_op(struct vworker *w, int kind, uint32_t key, uint64_t val)
{
    struct vlog *l = &w->log;
    if (vgrow((void **)&l->ops, l->nops, &l->capops, sizeof *l->ops))
        return -1;
    l->ops[l->nops++] = (struct hist_op){.val = val, .key = key, .kind = (uint8_t)kind};
    return 0;
}

static uint64_t parse_val(const void *v, size_t vl)
{
    uint64_t id;
    if (vl < 8)
        return HIST_BADVAL;
    id = bench_load64(v);
    return id == HIST_NOVAL ? HIST_BADVAL : id;
}

static void vfail(struct vshared *sh, const char *what, const char *msg)
{
    int expected = 0;
    if (atomic_compare_exchange_strong(&sh->failed, &expected, 1))
        snprintf(sh->failmsg, sizeof sh->failmsg, "%s: %s", what, msg);
}

/* A read, recorded; BENCH_OK, BENCH_RETRY or BENCH_FAIL. */
static int vread(struct vworker *w, unsigned k, int fu, uint64_t *out)
{
    const struct bench_engine *e = w->sh->eng;
    uint8_t key[VKEY_LEN + 1];
    const void *v;
    size_t vl;
    vkey(key, k);
    int rc = e->get(w->et, key, VKEY_LEN, &v, &vl, fu);
    if (rc == BENCH_NOTFOUND)
        *out = HIST_NOVAL;
    else if (rc == BENCH_OK)
        *out = parse_val(v, vl);
    else
        return rc;
    if (push_op(w, HIST_READ, k, *out))
        return w->oom = 1, BENCH_FAIL;
    return BENCH_OK;
}

static void one_txn(struct vworker *w)
{
    struct vshared *sh = w->sh;
    const struct bench_engine *e = sh->eng;
    struct vlog *l = &w->log;
    uint64_t pred[VKEYS] = {0}, written[VKEYS] = {0};
    int rdonly = pct(w, V_RDONLY), rc;
    int nops = 2 + (int)bench_rand_below(&w->rng, 3);
    struct hist_tx *tx;

    if (vgrow((void **)&l->txs, l->ntx, &l->captx, sizeof *l->txs)) {
        w->oom = 1;
        return;
    }
    tx = &l->txs[l->ntx++];
    *tx = (struct hist_tx){.op0 = (uint32_t)l->nops,
                           .cc = (uint8_t)(sh->cc == CC_OCC   ? HIST_OPTIMISTIC
                                           : sh->cc == CC_2PL ? HIST_PESSIMISTIC
                                                              : 0),
                           .rdonly = (uint8_t)(rdonly ? 2 : 0)};
    rc = e->begin(w->et, rdonly ? BENCH_TXN_RDONLY : 0);
    for (int i = 0; i < nops && rc == BENCH_OK; i++) {
        unsigned k = (unsigned)bench_rand_below(&w->rng, VKEYS);
        uint64_t v;
        if (pct(w, V_YIELD))
            sched_yield(); /* let another thread in between our operations */
        if (rdonly || pct(w, V_READ)) {
            rc = vread(w, k, 0, &v);
            continue;
        }
        if (!written[k]) { /* read-modify-write: what it read is the new version's predecessor */
            int fu = sh->isolation == ISO_RC || pct(w, 50);
            if ((rc = vread(w, k, fu, &v)) != BENCH_OK)
                break;
            pred[k] = v;
        }
        int puts = pct(w, V_TWICE) ? 2 : 1;
        for (int j = 0; j < puts && rc == BENCH_OK; j++) {
            uint8_t key[VKEY_LEN + 1], val[VVAL_LEN];
            uint64_t id = HIST_VID(w->id, l->nwr);
            if (vgrow((void **)&l->wrs, l->nwr, &l->capwr, sizeof *l->wrs)) {
                w->oom = 1;
                rc = BENCH_FAIL;
                break;
            }
            l->wrs[l->nwr++] =
                (struct hist_wr){.tx = (uint32_t)(l->ntx - 1), .key = k, .pred = pred[k]};
            vkey(key, k);
            memset(val, 0, sizeof val);
            bench_store64(val, id);
            if ((rc = e->put(w->et, key, VKEY_LEN, val, sizeof val)) != BENCH_OK)
                break;
            if (push_op(w, HIST_WRITE, k, id)) {
                w->oom = 1;
                rc = BENCH_FAIL;
                break;
            }
            written[k] = id;
        }
    }
    if (rc != BENCH_OK) {
        if (rc != BENCH_RETRY && !w->oom)
            vfail(sh, "engine", e->error(w->et));
        e->abort(w->et);
        tx->status = HIST_ABORTED;
    } else if (!rdonly && pct(w, V_ABORT)) {
        e->abort(w->et);
        tx->status = HIST_USER_ABORT;
    } else if ((rc = e->commit(w->et)) != BENCH_OK) {
        if (rc != BENCH_RETRY)
            vfail(sh, "commit", e->error(w->et));
        tx->status = HIST_ABORTED;
    } else {
        tx->status = HIST_COMMITTED;
    }
    tx->nops = (uint32_t)(l->nops - tx->op0);
    for (unsigned k = 0; k < VKEYS; k++)
        if (written[k])
            l->wrs[(written[k] & HIST_VID_MASK) - 1].final = 1;
    w->commits += tx->status == HIST_COMMITTED;
    w->aborts += tx->status == HIST_ABORTED;
}

static void *vworker_main(void *arg)
{
    struct vworker *w = arg;
    struct vshared *sh = w->sh;
    char err[200];
    if (sh->eng->thread_open(sh->db, &w->et, err, sizeof err) != BENCH_OK) {
        vfail(sh, "thread_open", err);
        return NULL;
    }
    while (!atomic_load(&sh->failed) && !w->oom && atomic_fetch_add(&sh->next, 1) < sh->txns)
        one_txn(w);
    if (w->oom)
        vfail(sh, "history", "out of memory");
    sh->eng->thread_close(w->et);
    return NULL;
}

struct vfinal {
    const struct bench_engine *eng;
    void *t;
    int failed;
};

static void key_name(char *buf, size_t n, uint32_t key, void *arg)
{
    snprintf(buf, n, "kvbv%04u", (unsigned)key);
}

/* What key holds after the run, read in a read-only transaction of its own. */
static uint64_t final_value(uint32_t key, void *arg)
{
    struct vfinal *f = arg;
    uint8_t k[VKEY_LEN + 1];
    const void *v;
    size_t vl;
    uint64_t got = HIST_BADVAL;
    vkey(k, key);
    if (f->eng->begin(f->t, BENCH_TXN_RDONLY) != BENCH_OK) {
        f->failed = 1;
        return got;
    }
    int rc = f->eng->get(f->t, k, VKEY_LEN, &v, &vl, 0);
    if (rc == BENCH_NOTFOUND)
        got = HIST_NOVAL;
    else if (rc == BENCH_OK)
        got = parse_val(v, vl);
    else
        f->failed = 1;
    f->eng->commit(f->t);
    return got;
}

struct detail {
    char *buf;
    size_t len, cap;
};

static void collect(const char *line, void *arg)
{
    struct detail *d = arg;
    size_t n = strlen(line) + 6;
    if (d->len + n + 1 > d->cap) {
        size_t nc = d->cap ? 2 * d->cap : 4096;
        while (nc < d->len + n + 1)
            nc *= 2;
        char *p = realloc(d->buf, nc);
        if (!p)
            return;
        d->buf = p;
        d->cap = nc;
    }
    d->len += (size_t)snprintf(d->buf + d->len, d->cap - d->len, "#   %s\n", line);
}

void bench_verify(const struct bench_config *cfg, const struct bench_engine *eng,
                  struct bench_row *row)
{
    struct vshared sh = {
        .eng = eng, .isolation = row->isolation, .cc = row->cc, .txns = cfg->verify_txns};
    unsigned nthr = row->threads < 2 ? 2 : row->threads > V_MAX_THR ? V_MAX_THR : row->threads;
    struct vworker *ws = calloc(nthr, sizeof *ws);
    struct hist_log logs[V_MAX_THR];
    struct vfinal fin = {.eng = eng};
    struct bench_row vrow = *row;
    unsigned started = 0;
    char err[320];

    row->verify_status = VERIFY_ERROR;
    row->verify_threads = nthr;
    if (!ws) {
        snprintf(row->verify_msg, sizeof row->verify_msg, "out of memory");
        return;
    }
    vrow.threads = nthr;
    if (eng->open(cfg, &vrow, &sh.db, err, sizeof err) != BENCH_OK) {
        snprintf(row->verify_msg, sizeof row->verify_msg, "open: %s", err);
        free(ws);
        return;
    }
    for (unsigned i = 0; i < nthr; i++) {
        ws[i].sh = &sh;
        ws[i].id = i;
        bench_rng_seed(&ws[i].rng, cfg->seed ^ 0x766572696679ull, i);
    }
    for (; started < nthr; started++)
        if (pthread_create(&ws[started].th, NULL, vworker_main, &ws[started]) != 0) {
            vfail(&sh, "pthread_create", "failed");
            break;
        }
    for (unsigned i = 0; i < started; i++)
        pthread_join(ws[i].th, NULL);

    if (atomic_load(&sh.failed)) {
        snprintf(row->verify_msg, sizeof row->verify_msg, "%s", sh.failmsg);
        goto out;
    }
    if (eng->thread_open(sh.db, &fin.t, err, sizeof err) != BENCH_OK) {
        snprintf(row->verify_msg, sizeof row->verify_msg, "thread_open: %s", err);
        goto out;
    }
    for (unsigned i = 0; i < nthr; i++) {
        struct vlog *l = &ws[i].log;
        logs[i] = (struct hist_log){.ops = l->ops,
                                    .nops = l->nops,
                                    .txs = l->txs,
                                    .ntx = l->ntx,
                                    .wrs = l->wrs,
                                    .nwr = l->nwr};
        row->verify_commits += ws[i].commits;
        row->verify_aborts += ws[i].aborts;
    }
    struct hist h = {.logs = logs,
                     .nlogs = (int)nthr,
                     .key_name = key_name,
                     .final_value = final_value,
                     .arg = &fin};
    struct hist_checker c;
    struct detail d = {NULL, 0, 0};
    hist_check(&c, &h);
    long nf = hist_forbidden(&c, row->isolation, collect, &d);
    if (fin.failed)
        snprintf(row->verify_msg, sizeof row->verify_msg, "reading the final values failed: %s",
                 eng->error(fin.t));
    eng->thread_close(fin.t);
    if (fin.failed) {
        free(d.buf);
    } else if (nf) {
        row->verify_status = VERIFY_ANOMALY;
        /* the first line: the first anomaly, as the checker describes it */
        const char *nl = d.buf ? strchr(d.buf + 4, '\n') : NULL;
        snprintf(row->verify_msg, sizeof row->verify_msg, "%.*s (%ld forbidden at %s)",
                 d.buf && nl ? (int)(nl - d.buf - 4) : 0, d.buf ? d.buf + 4 : "", nf,
                 bench_iso_name(row->isolation));
        row->verify_detail = d.buf;
    } else {
        row->verify_status = VERIFY_OK;
        free(d.buf);
    }
    hist_checker_free(&c);
out:
    eng->close(sh.db);
    for (unsigned i = 0; i < nthr; i++) {
        free(ws[i].log.ops);
        free(ws[i].log.txs);
        free(ws[i].log.wrs);
    }
    free(ws);
}
