/*
 * cli-exec.c - runs one command in a session's transaction context.
 *
 * Runs on the session's worker thread only, and is the only code that
 * touches the session's txkv_txn (s->txn, s->wstate, s->wopts, s->wtxn_id),
 * so those need no lock; sh->mu is taken only to record and look up which
 * session ran which transaction id (DEADLOCKS, LOCKS) and for .sleep's wait.  A lock wait
 * inside txkv blocks this thread, never the shell.
 *
 * Transaction states follow psql: outside BEGIN a command is its own
 * transaction (txkv_run, retried a few times on CONFLICT, DEADLOCK or
 * LOCK_TIMEOUT); inside BEGIN a failure that fails the transaction
 * (retryable codes, FULL, ABORTED) aborts it at once, so a deadlock victim
 * releases its locks now and the other sessions go on, and leaves the
 * session "failed" until COMMIT or ROLLBACK ends it.
 *
 * Output goes to j->out; an error cuts back whatever the command had
 * written (a half-printed SCAN, an attempt that txkv_run retried) and
 * prints one "(error) NAME: message" line instead.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cli.h"

#define AUTOCOMMIT_TRIES 5
/* kv-cli's own error for a malformed .load line; not a txkv code. */
#define CLI_ESYNTAX (-1000)

static int job_err(struct cli_job *j, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int job_err(struct cli_job *j, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->errbuf, sizeof j->errbuf, fmt, ap);
    va_end(ap);
    j->errmsg = j->errbuf;
    return rc;
}

/* Drops what the command wrote to j->out: an attempt txkv_run retries, or before an error. */
static void out_rewind(struct cli_job *j)
{
    j->out.n = j->mark;
    if (j->out.p)
        j->out.p[j->out.n] = '\0';
}

/* Forgets the savepoints from index i on. */
static void sp_forget(struct cli_session *s, size_t i)
{
    while (s->nsps > i)
        free(s->sps[--s->nsps].name);
    if (i == 0) {
        free(s->sps);
        s->sps = NULL;
        s->capsps = 0;
    }
}

/* Returns the session to "no transaction", whatever state it was in. */
static void txn_end(struct cli_session *s)
{
    sp_forget(s, 0);
    s->txn = NULL;
    s->wstate = CLI_IDLE;
    s->wtxn_id = 0;
    memset(&s->wopts, 0, sizeof s->wopts);
}

void cli_txn_abandon(struct cli_session *s)
{
    if (s->txn)
        txkv_abort(s->txn);
    txn_end(s);
}

/* Remembers that session s runs transaction t, for DEADLOCKS and LOCKS; returns t's id. */
static uint64_t note_txn(struct cli_session *s, txkv_txn *t)
{
    struct cli_shell *sh = s->sh;
    uint64_t id = txkv_txn_id(t);
    pthread_mutex_lock(&sh->mu);
    sh->names[sh->nnames++ % CLI_TXN_NAMES] = (struct cli_txn_name){id, s};
    pthread_mutex_unlock(&sh->mu);
    return id;
}

/* The session that ran transaction id most recently, or NULL; under sh->mu. */
static const char *txn_session(struct cli_shell *sh, uint64_t id)
{
    uint64_t n = sh->nnames < CLI_TXN_NAMES ? sh->nnames : CLI_TXN_NAMES;
    for (uint64_t i = 1; i <= n; i++) {
        const struct cli_txn_name *e = &sh->names[(sh->nnames - i) % CLI_TXN_NAMES];
        if (e->id == id)
            return e->s->name;
    }
    return NULL;
}

/* ---- the data commands: each runs inside a transaction ---------------- */

static int op_get(txkv_txn *t, struct cli_job *j)
{
    const void *v;
    size_t vl;
    int rc = txkv_get(t, NULL, j->cmd.a.p, j->cmd.a.n, &v, &vl);
    if (rc == TXKV_NOTFOUND) {
        cli_out_value(&j->out, j->format, j->cmd.a.p, j->cmd.a.n, NULL, 0);
        return 0;
    }
    if (rc)
        return rc;
    cli_out_value(&j->out, j->format, j->cmd.a.p, j->cmd.a.n, v ? v : "", v ? vl : 0);
    return 0;
}

static int key_before(const void *k, size_t kl, const struct cli_bytes *to)
{
    int c = memcmp(k, to->p, kl < to->n ? kl : to->n);
    return c < 0 || (c == 0 && kl < to->n);
}

enum range_what { RANGE_SCAN, RANGE_COUNT, RANGE_DUMP };

static int op_range(txkv_txn *t, struct cli_job *j, enum range_what what)
{
    static const struct cli_bytes all = {NULL, 0};
    /* .dump's a is its FILE: a dump always covers every key */
    const struct cli_bytes *from = what == RANGE_DUMP ? &all : &j->cmd.a;
    const struct cli_bytes *to = what == RANGE_DUMP ? &all : &j->cmd.b;
    txkv_cursor *c;
    uint64_t n = 0;
    int rc = txkv_cursor_open(t, NULL, &c);
    if (rc)
        return rc;
    if (what == RANGE_SCAN)
        cli_out_rows_begin(&j->out, j->format);
    if (what == RANGE_DUMP) {
        j->aux.n = 0;
        cli_buf_puts(&j->aux, "# txkv dump 1: PUT \"key\" \"value\" per line; .load reads it\n");
    }
    rc = txkv_cursor_seek(c, from->n ? from->p : NULL, from->n);
    while (rc == 0 && n < j->cmd.limit) {
        const void *k, *v;
        size_t kl, vl;
        rc = txkv_cursor_get(c, &k, &kl, &v, &vl);
        if (rc)
            break;
        if (!v)
            v = "", vl = 0;
        if (to->p && !key_before(k, kl, to))
            break;
        if (what == RANGE_SCAN) {
            cli_out_row(&j->out, j->format, n, &(struct cli_row){k, kl, v, vl});
        } else if (what == RANGE_DUMP) {
            cli_buf_puts(&j->aux, "PUT ");
            cli_quote(&j->aux, k, kl, 1);
            cli_buf_putc(&j->aux, ' ');
            cli_quote(&j->aux, v, vl, 1);
            cli_buf_putc(&j->aux, '\n');
        }
        n++;
        rc = txkv_cursor_next(c);
    }
    txkv_cursor_close(c);
    if (rc == TXKV_NOTFOUND)
        rc = 0;
    if (rc)
        return rc;
    if (what == RANGE_SCAN)
        cli_out_rows_end(&j->out, j->format, n);
    else if (what == RANGE_COUNT)
        cli_out_count(&j->out, j->format, n);
    j->count = n;
    return 0;
}

static int op_load(txkv_txn *t, struct cli_job *j)
{
    for (size_t i = 0; i < j->nrecs; i++) {
        const struct cli_load_rec *r = &j->recs[i];
        int rc = txkv_put(t, NULL, r->key.p, r->key.n, r->val.p, r->val.n);
        if (rc)
            return rc;
    }
    j->count = j->nrecs;
    return 0;
}

/* The body of one command; also txkv_run's callback, so it starts from scratch each try. */
static int run_op(txkv_txn *t, void *arg)
{
    struct cli_job *j = arg;
    int rc = 0;
    if (j->note_id)
        note_txn(j->s, t);
    out_rewind(j);
    switch (j->cmd.op) {
    case CLI_GET:
        rc = op_get(t, j);
        break;
    case CLI_PUT:
        rc = txkv_put(t, NULL, j->cmd.a.p, j->cmd.a.n, j->cmd.b.p, j->cmd.b.n);
        if (!rc)
            cli_out_ok(&j->out, j->format);
        break;
    case CLI_DEL:
        rc = txkv_del(t, NULL, j->cmd.a.p, j->cmd.a.n);
        if (!rc)
            cli_out_ok(&j->out, j->format);
        break;
    case CLI_SCAN:
        rc = op_range(t, j, RANGE_SCAN);
        break;
    case CLI_COUNT:
        rc = op_range(t, j, RANGE_COUNT);
        break;
    case CLI_DOT_DUMP:
        rc = op_range(t, j, RANGE_DUMP);
        break;
    case CLI_DOT_LOAD:
        rc = op_load(t, j);
        break;
    default:
        rc = TXKV_INVALID;
    }
    return rc;
}

/* A data command: in the open transaction, or in one of its own. */
static int in_txn(struct cli_session *s, struct cli_job *j)
{
    if (s->wstate == CLI_FAILED)
        return TXKV_ABORTED;
    if (s->wstate == CLI_IN_TXN) {
        int rc = run_op(s->txn, j);
        if (rc && (txkv_is_retryable(rc) || rc == TXKV_FULL || rc == TXKV_ABORTED)) {
            txkv_abort(s->txn);
            txn_end(s);
            s->wstate = CLI_FAILED;
        }
        return rc;
    }
    txkv_txn_options o;
    txkv_txn_options_init(&o);
    o.isolation = j->isolation;
    o.cc = j->cc; /* reads too: an autocommit GET behaves as BEGIN; GET; COMMIT */
    j->note_id = o.cc == TXKV_PESSIMISTIC;
    return txkv_run(s->sh->db, &o, run_op, j, AUTOCOMMIT_TRIES);
}

static int do_begin(struct cli_session *s, struct cli_job *j)
{
    if (s->wstate == CLI_FAILED)
        return job_err(j, TXKV_ABORTED, "the failed transaction must be ended first (ROLLBACK)");
    if (s->wstate == CLI_IN_TXN)
        return job_err(j, TXKV_INVALID,
                       "a transaction is already open in this session (COMMIT or ROLLBACK it)");
    txkv_txn_options o = j->cmd.begin;
    if (!o.isolation)
        o.isolation = j->isolation;
    if (!o.cc)
        o.cc = j->cc;
    int rc = txkv_begin(s->sh->db, &o, &s->txn);
    if (rc) {
        s->txn = NULL;
        if (rc == TXKV_NOTSUP)
            return job_err(j, rc, "%s %s transactions are not supported by this build",
                           cli_isolation_name(o.isolation), cli_cc_name(o.cc));
        return rc;
    }
    s->wstate = CLI_IN_TXN;
    s->wopts = o;
    s->wtxn_id = note_txn(s, s->txn);
    cli_out_ok(&j->out, j->format);
    return 0;
}

/* SAVEPOINT, ROLLBACK TO and RELEASE need an open transaction that has not failed. */
static int sp_check(struct cli_session *s, struct cli_job *j)
{
    if (s->wstate == CLI_IDLE)
        return job_err(j, TXKV_INVALID,
                       "no transaction is open in this session (savepoints "
                       "live inside BEGIN ... COMMIT)");
    if (s->wstate == CLI_FAILED)
        return job_err(j, TXKV_ABORTED, "the failed transaction must be ended first (ROLLBACK)");
    return 0;
}

/* The newest savepoint named name (case-insensitive, as SQL), or -1 with an error. */
static long sp_find(struct cli_session *s, struct cli_job *j)
{
    for (size_t i = s->nsps; i-- > 0;)
        if (strcasecmp(s->sps[i].name, j->cmd.a.p) == 0)
            return (long)i;
    job_err(j, TXKV_INVALID, "no savepoint named %s in this transaction", j->cmd.a.p);
    return -1;
}

static int do_savepoint(struct cli_session *s, struct cli_job *j)
{
    uint32_t id;
    int rc = sp_check(s, j);
    if (rc || (rc = txkv_savepoint(s->txn, &id)))
        return rc;
    s->sps = cli_xgrow(s->sps, &s->capsps, s->nsps + 1, sizeof *s->sps, 8);
    s->sps[s->nsps++] = (struct cli_savepoint){cli_xstrdup(j->cmd.a.p), id};
    cli_out_ok(&j->out, j->format);
    return 0;
}

/* ROLLBACK TO name undoes the writes after it and keeps it; RELEASE name forgets it. */
static int do_savepoint_end(struct cli_session *s, struct cli_job *j)
{
    int rc = sp_check(s, j);
    long i = rc ? -1 : sp_find(s, j);
    if (rc || i < 0)
        return rc ? rc : TXKV_INVALID;
    if (j->cmd.op == CLI_RELEASE) {
        sp_forget(s, (size_t)i);
    } else {
        if ((rc = txkv_rollback_to(s->txn, s->sps[i].id)))
            return rc;
        sp_forget(s, (size_t)i + 1);
    }
    cli_out_ok(&j->out, j->format);
    return 0;
}

static int do_commit(struct cli_session *s, struct cli_job *j)
{
    if (s->wstate == CLI_IDLE)
        return job_err(j, TXKV_INVALID, "no transaction is open in this session");
    if (s->wstate == CLI_FAILED) {
        txn_end(s);
        return job_err(j, TXKV_ABORTED, "the transaction had failed; it was rolled back");
    }
    int rc = txkv_commit(s->txn);
    txn_end(s);
    if (!rc)
        cli_out_ok(&j->out, j->format);
    return rc;
}

static int do_rollback(struct cli_session *s, struct cli_job *j)
{
    if (s->wstate == CLI_IDLE)
        return job_err(j, TXKV_INVALID, "no transaction is open in this session");
    if (s->txn)
        txkv_abort(s->txn);
    txn_end(s);
    cli_out_ok(&j->out, j->format);
    return 0;
}

static void do_stats(struct cli_session *s, struct cli_job *j)
{
    struct txkv_stats st;
    memset(&st, 0, sizeof st);
    txkv_stats(s->sh->db, &st);
    const struct {
        const char *name;
        uint64_t v;
    } f[] = {
        {"commits", st.commits},
        {"aborts_conflict", st.aborts_conflict},
        {"aborts_deadlock", st.aborts_deadlock},
        {"aborts_timeout", st.aborts_timeout},
        {"aborts_full", st.aborts_full},
        {"aborts_user", st.aborts_user},
        {"keys", st.keys},
        {"versions", st.versions},
        {"bytes", st.bytes},
        {"gc_freed", st.gc_freed},
        {"active_txns", st.active_txns},
        {"oldest_snapshot_age_us", st.oldest_snapshot_age_us},
    };
    size_t n = sizeof f / sizeof f[0];
    for (size_t i = 0; i < n; i++)
        cli_out_stat(&j->out, j->format, i == 0, i == n - 1, f[i].name, f[i].v);
}

/* .checkpoint: TXKV_INVALID for an in-memory database. */
static int do_checkpoint(struct cli_session *s, struct cli_job *j)
{
    if (!s->sh->dir)
        return job_err(j, TXKV_INVALID, "the database is in memory: open a directory (kv-cli DIR)");
    int rc = txkv_checkpoint(s->sh->db);
    if (!rc)
        cli_out_ok(&j->out, j->format);
    return rc;
}

/* .info: where the database lives and how durable it is. */
static void do_info(struct cli_session *s, struct cli_job *j)
{
    static const char *const policies[] = {"commit", "interval", "none"};
    struct cli_shell *sh = s->sh;
    struct txkv_stats st;
    memset(&st, 0, sizeof st);
    txkv_stats(sh->db, &st);
    int d = sh->dir != NULL;
    cli_out_text(&j->out, j->format, 1, !d, "database", d ? sh->dir : "(in memory)");
    if (!d)
        return;
    cli_out_text(&j->out, j->format, 0, 0, "sync",
                 sh->sync >= 0 && sh->sync <= 2 ? policies[sh->sync] : "?");
    cli_out_stat(&j->out, j->format, 0, 0, "log_bytes", st.log_bytes);
    cli_out_stat(&j->out, j->format, 0, 0, "checkpoint_ts", st.checkpoint_ts);
    cli_out_stat(&j->out, j->format, 0, 1, "recovered_bytes_dropped", st.recovered_bytes_dropped);
}

static void do_deadlocks(struct cli_session *s, struct cli_job *j)
{
    struct cli_shell *sh = s->sh;
    struct txkv_deadlock_info d[TXKV_DEADLOCK_HISTORY];
    size_t n = txkv_deadlocks(sh->db, d, TXKV_DEADLOCK_HISTORY);
    cli_out_rows_begin(&j->out, j->format);
    for (size_t i = 0; i < n; i++) {
        const char *names[TXKV_DEADLOCK_MAX_TXNS], *victim;
        unsigned m = cli_deadlock_ntxns(&d[i]);
        pthread_mutex_lock(&sh->mu);
        for (unsigned k = 0; k < m; k++)
            names[k] = txn_session(sh, d[i].txns[k]);
        victim = txn_session(sh, d[i].victim);
        pthread_mutex_unlock(&sh->mu);
        cli_out_deadlock(&j->out, j->format, i, &d[i], names, victim);
    }
    cli_out_rows_end(&j->out, j->format, n);
}

/* Lock table order: by key (an unbounded range first), holders before waiters, by txn. */
static int lock_cmp(const void *pa, const void *pb)
{
    const struct txkv_lock_info *a = pa, *b = pb;
    int alo = a->mode != TXKV_LOCK_RANGE || a->has_lo,
        blo = b->mode != TXKV_LOCK_RANGE || b->has_lo;
    if (alo != blo)
        return alo - blo;
    if (alo) {
        size_t al = cli_key_kept(a->klen), bl = cli_key_kept(b->klen);
        int c = memcmp(a->key, b->key, al < bl ? al : bl);
        if (c)
            return c;
        if (a->klen != b->klen)
            return a->klen < b->klen ? -1 : 1;
    }
    if (a->granted != b->granted)
        return b->granted - a->granted;
    if (a->txn != b->txn)
        return a->txn < b->txn ? -1 : 1;
    return a->mode - b->mode;
}

/* The lock table; txkv_locks says how many entries there are, so grow until all fit. */
static void do_locks(struct cli_session *s, struct cli_job *j)
{
    struct cli_shell *sh = s->sh;
    size_t cap = 64, n;
    struct txkv_lock_info *l = cli_xmalloc(cap * sizeof *l);
    while ((n = txkv_locks(sh->db, l, cap)) > cap) {
        cap = n + n / 2; /* the table may grow again before the next call */
        l = cli_xrealloc(l, cap * sizeof *l);
    }
    qsort(l, n, sizeof *l, lock_cmp);
    const char **names = cli_xmalloc((n ? n : 1) * sizeof *names);
    pthread_mutex_lock(&sh->mu);
    for (size_t i = 0; i < n; i++)
        names[i] = txn_session(sh, l[i].txn);
    pthread_mutex_unlock(&sh->mu);
    cli_out_rows_begin(&j->out, j->format);
    for (size_t i = 0; i < n; i++)
        cli_out_lock(&j->out, j->format, i, &l[i], names[i]);
    cli_out_rows_end(&j->out, j->format, n);
    free(names);
    free(l);
}

void cli_describe_wait(struct cli_shell *sh, struct cli_session *s, struct cli_buf *b)
{
    size_t cap = 64, n;
    struct txkv_lock_info *l = cli_xmalloc(cap * sizeof *l);
    while ((n = txkv_locks(sh->db, l, cap)) > cap) {
        cap = n + n / 2;
        l = cli_xrealloc(l, cap * sizeof *l);
    }
    qsort(l, n, sizeof *l, lock_cmp);
    const char **names = cli_xmalloc((n ? n : 1) * sizeof *names);
    pthread_mutex_lock(&sh->mu);
    for (size_t i = 0; i < n; i++)
        names[i] = txn_session(sh, l[i].txn);
    pthread_mutex_unlock(&sh->mu);
    for (size_t i = 0; i < n; i++) {
        if (l[i].granted || names[i] != s->name)
            continue;
        cli_buf_puts(b, "waiting: ");
        cli_out_lock(b, CLI_FMT_PLAIN, 0, &l[i], names[i]);
        for (size_t k = 0; k < n; k++) /* who holds that key */
            if (l[k].granted && l[k].txn != l[i].txn && l[i].mode != TXKV_LOCK_RANGE &&
                l[k].mode != TXKV_LOCK_RANGE && l[k].klen == l[i].klen &&
                !memcmp(l[k].key, l[i].key, cli_key_kept(l[i].klen))) {
                cli_buf_puts(b, "holder:  ");
                cli_out_lock(b, CLI_FMT_PLAIN, 0, &l[k], names[k]);
            }
    }
    if (!b->n)
        cli_buf_puts(b, "(no lock wait: see LOCKS in another session)\n");
    free(names);
    free(l);
}

/* Waits on the session's condition so that shutdown can cut the pause short. */
static void do_sleep(struct cli_session *s, struct cli_job *j)
{
    struct cli_shell *sh = s->sh;
    struct timespec deadline = cli_deadline_after((unsigned)(j->cmd.seconds * 1000 + 0.5));
    pthread_mutex_lock(&sh->mu);
    s->sleeping = 1; /* a pause, not a lock wait: the shell says "sleeping" */
    while (!s->stopping)
        if (pthread_cond_timedwait(&s->work, &sh->mu, &deadline) == ETIMEDOUT)
            break;
    s->sleeping = 0;
    pthread_mutex_unlock(&sh->mu);
    cli_out_ok(&j->out, j->format);
}

static int write_file(struct cli_job *j, const char *path, const struct cli_buf *b)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return job_err(j, TXKV_IO, "cannot write %s: %s", path, strerror(errno));
    size_t w = b->n ? fwrite(b->p, 1, b->n, f) : 0;
    int e = w != b->n ? errno : 0;
    if (fclose(f) != 0 && !e)
        e = errno;
    if (e)
        return job_err(j, TXKV_IO, "cannot write %s: %s", path, strerror(e));
    return 0;
}

static void free_recs(struct cli_job *j)
{
    for (size_t i = 0; i < j->nrecs; i++) {
        free(j->recs[i].key.p);
        free(j->recs[i].val.p);
    }
    free(j->recs);
    j->recs = NULL;
    j->nrecs = 0;
}

/* The statements of one .load line into j->recs: each must be PUT key value. */
static int load_line(struct cli_job *j, struct cli_tokens *t, size_t lineno, size_t *reccap)
{
    size_t n;
    for (size_t i = 0; i < t->n; i += n + 1) {
        n = cli_statement_len(t, i);
        if (n == 0)
            continue;
        const struct cli_token *w = &t->v[i];
        const struct cli_cmd_info *ci = w->quoted ? NULL : cli_command_find(w->p);
        if (!ci || ci->op != CLI_PUT || n != 3)
            return job_err(j, CLI_ESYNTAX, "%s:%zu: expected PUT key value", j->cmd.a.p, lineno);
        size_t kl = t->v[i + 1].n;
        if (kl == 0 || kl > TXKV_MAX_KEY)
            return job_err(j, CLI_ESYNTAX, "%s:%zu: %s key (a key is 1 to %u bytes)", j->cmd.a.p,
                           lineno, kl ? "too long a" : "an empty", TXKV_MAX_KEY);
        j->recs = cli_xgrow(j->recs, reccap, j->nrecs + 1, sizeof *j->recs, 64);
        struct cli_load_rec *r = &j->recs[j->nrecs++];
        r->key = (struct cli_bytes){t->v[i + 1].p, kl};
        r->val = (struct cli_bytes){t->v[i + 2].p, t->v[i + 2].n};
        r->line = lineno;
        t->v[i + 1].p = t->v[i + 2].p = NULL; /* moved into the record */
    }
    return 0;
}

/* Record order for finding a key given twice: by key, then by line. */
static int rec_cmp(const void *pa, const void *pb)
{
    const struct cli_load_rec *a = *(const struct cli_load_rec *const *)pa,
                              *b = *(const struct cli_load_rec *const *)pb;
    size_t n = a->key.n < b->key.n ? a->key.n : b->key.n;
    int c = memcmp(a->key.p, b->key.p, n);
    if (c)
        return c;
    if (a->key.n != b->key.n)
        return a->key.n < b->key.n ? -1 : 1;
    return a->line < b->line ? -1 : a->line > b->line;
}

/* A key the file gives twice is a mistake (a dump never does): report both lines. */
static int load_check_dups(struct cli_job *j)
{
    if (j->nrecs < 2)
        return 0;
    const struct cli_load_rec **v = cli_xmalloc(j->nrecs * sizeof *v);
    for (size_t i = 0; i < j->nrecs; i++)
        v[i] = &j->recs[i];
    qsort(v, j->nrecs, sizeof *v, rec_cmp);
    int rc = 0;
    for (size_t i = 1; i < j->nrecs && !rc; i++) {
        if (v[i]->key.n != v[i - 1]->key.n || memcmp(v[i]->key.p, v[i - 1]->key.p, v[i]->key.n))
            continue;
        struct cli_buf k = {0};
        cli_put_word(&k, v[i]->key.p, v[i]->key.n > 64 ? 64 : v[i]->key.n);
        rc = job_err(j, CLI_ESYNTAX, "%s:%zu: key %s%s given twice (first on line %zu)", j->cmd.a.p,
                     v[i]->line, k.p, v[i]->key.n > 64 ? "..." : "", v[i - 1]->line);
        cli_buf_free(&k);
    }
    free(v);
    return rc;
}

int cli_load_parse(struct cli_job *j)
{
    const char *path = j->cmd.a.p;
    FILE *f = fopen(path, "r");
    if (!f)
        return job_err(j, TXKV_IO, "cannot open %s: %s", path, strerror(errno));
    struct cli_tokens t = {0};
    char *line = NULL, msg[256];
    size_t cap = 0, lineno = 0, reccap = 0;
    ssize_t len;
    int rc = 0;
    while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (cli_line_is_comment(line, (size_t)len))
            continue;
        if (cli_tokenize(line, (size_t)len, &t, msg, sizeof msg) < 0) {
            rc = job_err(j, CLI_ESYNTAX, "%s:%zu: %s", path, lineno, msg);
            break;
        }
        rc = load_line(j, &t, lineno, &reccap);
        cli_tokens_clear(&t);
    }
    if (rc == 0 && ferror(f))
        rc = job_err(j, TXKV_IO, "cannot read %s: %s", path, strerror(errno));
    if (rc == 0)
        rc = load_check_dups(j);
    free(line);
    cli_tokens_free(&t);
    fclose(f);
    if (rc)
        free_recs(j);
    return rc;
}

/* The CSV header row of a command's result; NULL: the output is not CSV (.dump's text). */
static const char *csv_header(const struct cli_cmd *cmd)
{
    switch (cmd->op) {
    case CLI_GET:
    case CLI_SCAN:
        return "key,value";
    case CLI_COUNT:
        return "count";
    case CLI_STATS:
    case CLI_DOT_INFO:
        return "counter,value";
    case CLI_DEADLOCKS:
        return "seq,txn,txn_session,lock,key,hi,truncated,victim";
    case CLI_LOCKS:
        return "txn,txn_session,mode,state,key,hi,truncated";
    case CLI_DOT_LOAD:
        return "status,keys";
    case CLI_DOT_DUMP:
        return cmd->a.p ? "status,keys" : NULL;
    default:
        return "status"; /* OK */
    }
}

/* .timer's line: plain text, a JSON object, or (CSV) a line on stderr. */
static void out_time(struct cli_job *j, double ms)
{
    if (j->format == CLI_FMT_JSON)
        cli_buf_printf(&j->out, "{\"time_ms\":%.3f}\n", ms);
    else
        cli_buf_printf(j->format == CLI_FMT_CSV ? &j->diag : &j->out, "Time: %.3f ms\n", ms);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void cli_exec(struct cli_session *s, struct cli_job *j)
{
    double t0 = now_ms();
    int rc = 0;
    j->mark = j->out.n;
    switch (j->cmd.op) {
    case CLI_BEGIN:
        rc = do_begin(s, j);
        break;
    case CLI_COMMIT:
        rc = do_commit(s, j);
        break;
    case CLI_ROLLBACK:
        rc = do_rollback(s, j);
        break;
    case CLI_SAVEPOINT:
        rc = do_savepoint(s, j);
        break;
    case CLI_ROLLBACK_TO:
    case CLI_RELEASE:
        rc = do_savepoint_end(s, j);
        break;
    case CLI_STATS:
        do_stats(s, j);
        break;
    case CLI_DOT_CHECKPOINT:
        rc = do_checkpoint(s, j);
        break;
    case CLI_DOT_INFO:
        do_info(s, j);
        break;
    case CLI_DOT_SLEEP:
        do_sleep(s, j);
        break;
    case CLI_DEADLOCKS:
        do_deadlocks(s, j);
        break;
    case CLI_LOCKS:
        do_locks(s, j);
        break;
    case CLI_DOT_LOAD:
        rc = cli_load_parse(j);
        if (!rc)
            rc = in_txn(s, j);
        if (!rc)
            cli_out_ok_count(&j->out, j->format, "key", j->count);
        free_recs(j);
        break;
    case CLI_DOT_DUMP:
        rc = in_txn(s, j);
        if (!rc && j->cmd.a.p) {
            rc = write_file(j, j->cmd.a.p, &j->aux);
            if (!rc)
                cli_out_ok_count(&j->out, j->format, "key", j->count);
        } else if (!rc) {
            cli_buf_put(&j->out, j->aux.p, j->aux.n);
        }
        cli_buf_free(&j->aux);
        break;
    default:
        rc = in_txn(s, j);
        break;
    }
    if (rc == TXKV_INVALID && !j->errmsg && j->cmd.a.p &&
        (j->cmd.op == CLI_GET || j->cmd.op == CLI_PUT || j->cmd.op == CLI_DEL) &&
        (j->cmd.a.n == 0 || j->cmd.a.n > TXKV_MAX_KEY))
        job_err(j, rc, "invalid argument: a key is 1 to %u bytes", TXKV_MAX_KEY);
    if (rc) {
        out_rewind(j);
        cli_out_error_at(&j->out, j->format, rc == CLI_ESYNTAX ? "SYNTAX" : txkv_strerror(rc),
                         j->file, j->line, j->errmsg ? j->errmsg : txkv_errmsg(rc));
        j->failed = 1;
    } else if (j->format == CLI_FMT_CSV) {
        j->csv_header = csv_header(&j->cmd);
    }
    if (j->timer)
        out_time(j, now_ms() - t0);
}
