/*
 * kvb-lmdb.c - kv-bench's LMDB engine, the comparison baseline.
 *
 * LMDB has one isolation level (serializable: a single writer at a time,
 * readers on MVCC snapshots), so its rows are labelled isolation=ser,
 * cc=lmdb and run once per (workload, threads, theta).  Each row gets a
 * fresh environment in a mkdtemp directory under /dev/shm (falling back to
 * /tmp), opened the way in-memory LMDB users open it: MDB_NOSYNC |
 * MDB_NOMETASYNC | MDB_WRITEMAP | MDB_MAPASYNC, and MDB_NOTLS so that read
 * transactions are not tied to threads.  The map is sparse and sized from
 * keys x (key + value + node overhead) with generous headroom for inserts
 * and copy-on-write pages.  The directory is removed when the row ends, and
 * by kv-bench's signal handler if the run is cut short.
 *
 * Every thread keeps one read-only transaction and one read cursor and
 * recycles them with mdb_txn_reset/mdb_txn_renew and mdb_cursor_renew,
 * which is how LMDB applications avoid a reader-table slot per transaction.
 */
#include "config.h"

#include <errno.h>
#include <lmdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvb.h"

/*
 * ThreadSanitizer: Debian's LMDB is not instrumented, and its readers
 * synchronise with the writer through the meta pages and the reader table
 * with plain loads and stores that TSan cannot see, so every page a reader
 * touches after a commit (or a writer reuses after a reader left) would be
 * reported.  In TSan builds kv-bench tells TSan to ignore what LMDB's calls
 * into intercepted functions (memcpy, memcmp, mutexes) do; values LMDB wrote
 * are then invisible to TSan, which is exactly as much as it can know.
 * txkv's own accesses stay fully checked.
 */
#if defined(__SANITIZE_THREAD__)
#define LM_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define LM_TSAN 1
#endif
#endif
#ifdef LM_TSAN
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
    return "called_from_lib:liblmdb.so\n";
}
#endif

#define LM_NODE_OVERHEAD 64 /* per record: node header, page slot, fill slack */

struct lm_db {
    MDB_env *env;
    MDB_dbi dbi;
    char dir[64], data[80], lock[80];
};

struct lm_thread {
    struct lm_db *d;
    MDB_txn *rtxn, *wtxn, *cur; /* cur: the open one (rtxn or wtxn), or NULL */
    MDB_cursor *rcur;
    int rcur_fresh; /* rcur is bound to the current snapshot of rtxn */
    char err[160];
};

/* What the signal handler removes; written before it is armed. */
static char lm_sig_dir[64], lm_sig_data[80], lm_sig_lock[80];
static volatile sig_atomic_t lm_sig_armed;

void bench_lmdb_emergency_cleanup(void)
{
    if (lm_sig_armed) {
        unlink(lm_sig_data);
        unlink(lm_sig_lock);
        rmdir(lm_sig_dir);
    }
}

static int lm_fail(struct lm_thread *t, const char *what, int rc)
{
    snprintf(t->err, sizeof t->err, "lmdb %s: %s", what, mdb_strerror(rc));
    return BENCH_FAIL;
}

static void lm_remove(struct lm_db *d)
{
    lm_sig_armed = 0;
    unlink(d->data);
    unlink(d->lock);
    rmdir(d->dir);
}

static int lm_open(const struct bench_config *cfg, const struct bench_row *row, void **dbp,
                   char *err, size_t errlen)
{
    struct lm_db *d = calloc(1, sizeof *d);
    MDB_txn *txn;
    size_t per = cfg->key_size + cfg->value_size + LM_NODE_OVERHEAD;
    size_t map = ((size_t)1 << 30) + 8 * (size_t)cfg->keys * per;
    const char *what = "mkdtemp";
    int rc;

    if (!d) {
        snprintf(err, errlen, "out of memory");
        return BENCH_FAIL;
    }
    map = (map + ((size_t)2 << 20) - 1) & ~(((size_t)2 << 20) - 1);
    snprintf(d->dir, sizeof d->dir, "/dev/shm/kv-bench-XXXXXX");
    if (!mkdtemp(d->dir)) {
        snprintf(d->dir, sizeof d->dir, "/tmp/kv-bench-XXXXXX");
        if (!mkdtemp(d->dir)) {
            snprintf(err, errlen, "mkdtemp %s: %s", d->dir, strerror(errno));
            free(d);
            return BENCH_FAIL;
        }
    }
    snprintf(d->data, sizeof d->data, "%s/data.mdb", d->dir);
    snprintf(d->lock, sizeof d->lock, "%s/lock.mdb", d->dir);
    memcpy(lm_sig_dir, d->dir, sizeof lm_sig_dir);
    memcpy(lm_sig_data, d->data, sizeof lm_sig_data);
    memcpy(lm_sig_lock, d->lock, sizeof lm_sig_lock);
    lm_sig_armed = 1;

    what = "mdb_env_create";
    if ((rc = mdb_env_create(&d->env)) != 0)
        goto fail;
    what = "mdb_env_set_mapsize";
    if ((rc = mdb_env_set_mapsize(d->env, map)) != 0)
        goto fail;
    what = "mdb_env_set_maxreaders"; /* one per thread, the auditor, the main thread */
    if ((rc = mdb_env_set_maxreaders(d->env, row->threads + 126)) != 0)
        goto fail;
    what = "mdb_env_open";
    rc = mdb_env_open(d->env, d->dir,
                      MDB_NOSYNC | MDB_NOMETASYNC | MDB_WRITEMAP | MDB_MAPASYNC | MDB_NOTLS, 0600);
    if (rc != 0)
        goto fail;
    what = "mdb_txn_begin";
    if ((rc = mdb_txn_begin(d->env, NULL, 0, &txn)) != 0)
        goto fail;
    what = "mdb_dbi_open";
    if ((rc = mdb_dbi_open(txn, NULL, 0, &d->dbi)) != 0) {
        mdb_txn_abort(txn);
        goto fail;
    }
    what = "mdb_txn_commit";
    if ((rc = mdb_txn_commit(txn)) != 0)
        goto fail;
    *dbp = d;
    return BENCH_OK;
fail:
    snprintf(err, errlen, "%s: %s", what, mdb_strerror(rc));
    if (d->env)
        mdb_env_close(d->env);
    lm_remove(d);
    free(d);
    return BENCH_FAIL;
}

static void lm_close(void *db)
{
    struct lm_db *d = db;
    mdb_env_close(d->env);
    lm_remove(d);
    free(d);
}

static int lm_thread_open(void *db, void **tp, char *err, size_t errlen)
{
    struct lm_thread *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return BENCH_FAIL;
    }
    t->d = db;
    *tp = t;
    return BENCH_OK;
}

static void lm_thread_close(void *tp)
{
    struct lm_thread *t = tp;
    if (t->wtxn)
        mdb_txn_abort(t->wtxn);
    if (t->rcur)
        mdb_cursor_close(t->rcur);
    if (t->rtxn)
        mdb_txn_abort(t->rtxn);
    free(t);
}

static int lm_begin(void *tp, unsigned flags)
{
    struct lm_thread *t = tp;
    int rc;
    if (!(flags & BENCH_TXN_RDONLY)) {
        if ((rc = mdb_txn_begin(t->d->env, NULL, 0, &t->wtxn)) != 0)
            return lm_fail(t, "mdb_txn_begin", rc);
        t->cur = t->wtxn;
        return BENCH_OK;
    }
    if (!t->rtxn)
        rc = mdb_txn_begin(t->d->env, NULL, MDB_RDONLY, &t->rtxn);
    else
        rc = mdb_txn_renew(t->rtxn);
    if (rc != 0)
        return lm_fail(t, "read txn begin/renew", rc);
    t->rcur_fresh = 0;
    t->cur = t->rtxn;
    return BENCH_OK;
}

static int lm_get(void *tp, const void *key, size_t klen, const void **val, size_t *vlen,
                  int for_update)
{
    struct lm_thread *t = tp;
    MDB_val k = {klen, (void *)key}, v;
    int rc = mdb_get(t->cur, t->d->dbi, &k, &v);
    if (rc == 0) {
        *val = v.mv_data;
        *vlen = v.mv_size;
        return BENCH_OK;
    }
    return rc == MDB_NOTFOUND ? BENCH_NOTFOUND : lm_fail(t, "mdb_get", rc);
}

static int lm_put(void *tp, const void *key, size_t klen, const void *val, size_t vlen)
{
    struct lm_thread *t = tp;
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
    int rc = mdb_put(t->wtxn, t->d->dbi, &k, &v, 0);
    return rc == 0 ? BENCH_OK : lm_fail(t, "mdb_put", rc);
}

static int lm_scan(void *tp, const void *key, size_t klen, unsigned n, unsigned *got,
                   uint64_t *fold)
{
    struct lm_thread *t = tp;
    MDB_cursor *c;
    MDB_val k = {klen, (void *)key}, v;
    unsigned i = 0;
    int rc;

    if (t->cur && t->cur == t->rtxn) {
        if (!t->rcur)
            rc = mdb_cursor_open(t->rtxn, t->d->dbi, &t->rcur);
        else
            rc = t->rcur_fresh ? 0 : mdb_cursor_renew(t->rtxn, t->rcur);
        if (rc != 0)
            return lm_fail(t, "read cursor open/renew", rc);
        t->rcur_fresh = 1;
        c = t->rcur;
    } else if ((rc = mdb_cursor_open(t->wtxn, t->d->dbi, &c)) != 0) {
        return lm_fail(t, "mdb_cursor_open", rc);
    }
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && i < n;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        *fold += k.mv_size + bench_fold(v.mv_data, v.mv_size);
        if (++i == n)
            break;
    }
    if (c != t->rcur)
        mdb_cursor_close(c);
    *got = i;
    return rc == 0 || rc == MDB_NOTFOUND ? BENCH_OK : lm_fail(t, "mdb_cursor_get", rc);
}

static int lm_commit(void *tp)
{
    struct lm_thread *t = tp;
    int rc;
    if (t->cur && t->cur == t->rtxn) {
        mdb_txn_reset(t->rtxn);
        t->cur = NULL;
        return BENCH_OK;
    }
    rc = mdb_txn_commit(t->wtxn);
    t->wtxn = t->cur = NULL;
    return rc == 0 ? BENCH_OK : lm_fail(t, "mdb_txn_commit", rc);
}

static void lm_abort(void *tp)
{
    struct lm_thread *t = tp;
    if (t->cur && t->cur == t->rtxn)
        mdb_txn_reset(t->rtxn);
    else if (t->wtxn)
        mdb_txn_abort(t->wtxn);
    t->wtxn = t->cur = NULL;
}

static const char *lm_error(void *tp)
{
    struct lm_thread *t = tp;
    return t->err[0] ? t->err : "lmdb: unknown error";
}

static int lm_footprint(void *db, uint64_t *bytes, uint64_t *keys, char *err, size_t errlen)
{
    struct lm_db *d = db;
    MDB_txn *txn;
    MDB_stat st;
    int rc = mdb_txn_begin(d->env, NULL, MDB_RDONLY, &txn);
    if (rc == 0) {
        rc = mdb_stat(txn, d->dbi, &st);
        mdb_txn_abort(txn);
    }
    if (rc != 0) {
        snprintf(err, errlen, "mdb_stat: %s", mdb_strerror(rc));
        return BENCH_FAIL;
    }
    *bytes = (uint64_t)(st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages) * st.ms_psize;
    *keys = st.ms_entries;
    return BENCH_OK;
}

static const char *lm_version(void)
{
    static char v[32];
    int major, minor, patch;
    mdb_version(&major, &minor, &patch);
    snprintf(v, sizeof v, "%d.%d.%d", major, minor, patch);
    return v;
}

static const char *lm_mapping(int iso, int cc)
{
    return "one writer at a time, readers on snapshots (serializable only)";
}

const struct bench_engine bench_engine_lmdb = {
    .name = "lmdb",
    .open = lm_open,
    .close = lm_close,
    .thread_open = lm_thread_open,
    .thread_close = lm_thread_close,
    .begin = lm_begin,
    .get = lm_get,
    .put = lm_put,
    .scan = lm_scan,
    .commit = lm_commit,
    .abort = lm_abort,
    .error = lm_error,
    .footprint = lm_footprint,
    .version = lm_version,
    .mapping = lm_mapping,
};
