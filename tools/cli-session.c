/*
 * cli-session.c - sessions: a worker thread each, job queues, bounded waits,
 * and the order in which results reach stdout.
 *
 * Why threads: a pessimistic lock wait blocks the calling thread inside
 * txkv, and a shell that shows two transactions blocking each other must
 * not block with them (PostgreSQL's isolationtester runs each session on
 * its own connection for the same reason).  So each session owns a worker
 * thread that runs its commands in order, and the main thread only reads
 * input and prints.
 *
 * Protocol (all fields named "under sh->mu" in cli.h): the main thread
 * queues a job and waits on sh->done_cv with a deadline of sh->wait_ms.  If
 * the job finishes in time the main thread prints it.  If not, it marks the
 * job detached and says "[NAME] blocked"; when the worker finishes a
 * detached job it appends it to the done list (sh->done_head) and writes a
 * byte to the self-pipe, so an idle prompt wakes up and prints it (cli_drain).  The
 * decision "done" vs "detached" is made under the mutex on both sides, so
 * each result is printed exactly once, by the main thread.
 *
 * Determinism for scripts: a step's own result prints first; then, because
 * that step may have released locks that blocked jobs wait for, the shell
 * waits up to sh->wait_ms more for blocked jobs to finish (wait_blocked, at
 * the end of cli_session_run) and prints those in the order they finished.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

struct timespec cli_deadline_after(unsigned ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* A condition variable whose timed waits take cli_deadline_after's deadlines. */
static int cond_init_monotonic(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
    return rc;
}

int cli_shell_init(struct cli_shell *sh, txkv_db *db)
{
    sh->db = db;
    if (pthread_mutex_init(&sh->mu, NULL) != 0)
        return -1;
    if (cond_init_monotonic(&sh->done_cv) != 0)
        return -1;
    if (pipe(sh->notify) < 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        fcntl(sh->notify[i], F_SETFL, fcntl(sh->notify[i], F_GETFL) | O_NONBLOCK);
        fcntl(sh->notify[i], F_SETFD, FD_CLOEXEC);
    }
    return 0;
}

/* Appends j to s's queue and wakes its worker; under sh->mu. */
static void job_enqueue(struct cli_session *s, struct cli_job *j)
{
    if (s->qtail)
        s->qtail->next = j;
    else
        s->qhead = j;
    s->qtail = j;
    s->unfinished++;
    pthread_cond_signal(&s->work);
}

static void job_free(struct cli_job *j)
{
    cli_cmd_free(&j->cmd);
    cli_buf_free(&j->out);
    cli_buf_free(&j->aux);
    cli_buf_free(&j->diag);
    free(j->file);
    free(j);
}

static void *session_main(void *arg)
{
    struct cli_session *s = arg;
    struct cli_shell *sh = s->sh;
    pthread_mutex_lock(&sh->mu);
    for (;;) {
        while (!s->qhead)
            pthread_cond_wait(&s->work, &sh->mu);
        struct cli_job *j = s->qhead;
        s->qhead = j->next;
        if (!s->qhead)
            s->qtail = NULL;
        j->next = NULL;
        pthread_mutex_unlock(&sh->mu);

        if (j->cmd.op == CLI_SHUTDOWN) {
            cli_txn_abandon(s);
            job_free(j);
            pthread_mutex_lock(&sh->mu);
            s->unfinished--;
            s->state = CLI_IDLE;
            break;
        }
        cli_exec(s, j);

        pthread_mutex_lock(&sh->mu);
        s->state = s->wstate;
        s->txn_opts = s->wopts;
        s->txn_id = s->wtxn_id;
        s->unfinished--;
        j->done = 1;
        if (j->detached) {
            s->blocked--;
            if (sh->done_tail)
                sh->done_tail->next = j;
            else
                sh->done_head = j;
            sh->done_tail = j;
            /* Wakes a prompt that waits for input; a full pipe already says so. */
            ssize_t w = write(sh->notify[1], "", 1);
            (void)w;
        }
        pthread_cond_broadcast(&sh->done_cv);
    }
    pthread_cond_broadcast(&sh->done_cv);
    pthread_mutex_unlock(&sh->mu);
    return NULL;
}

void cli_session_init(struct cli_shell *sh, struct cli_session *s, const char *name)
{
    memset(s, 0, sizeof *s);
    s->sh = sh;
    snprintf(s->name, sizeof s->name, "%s", name);
    s->isolation = sh->isolation;
    s->cc = sh->cc;
    s->state = s->wstate = CLI_IDLE;
}

struct cli_session *cli_session_get(struct cli_shell *sh, const char *name, int create, char *err,
                                    size_t errsz)
{
    for (int i = 0; i < sh->nsessions; i++)
        if (strcasecmp(sh->sessions[i]->name, name) == 0)
            return sh->sessions[i];
    if (!create) {
        snprintf(err, errsz, "no session named %s", name);
        return NULL;
    }
    if (sh->nsessions == CLI_MAX_SESSIONS) {
        snprintf(err, errsz, "too many sessions (at most %d)", CLI_MAX_SESSIONS);
        return NULL;
    }
    struct cli_session *s = cli_xmalloc(sizeof *s);
    cli_session_init(sh, s, name);
    cond_init_monotonic(&s->work); /* .sleep waits on it with a deadline */
    int rc = pthread_create(&s->thread, NULL, session_main, s);
    if (rc != 0) {
        snprintf(err, errsz, "cannot start a thread for session %s: %s", name, strerror(rc));
        pthread_cond_destroy(&s->work);
        free(s);
        return NULL;
    }
    sh->sessions[sh->nsessions++] = s;
    return s;
}

const char *cli_session_mark(struct cli_shell *sh, struct cli_session *s)
{
    const char *m;
    pthread_mutex_lock(&sh->mu);
    if (s->blocked)
        m = "?";
    else
        m = s->state == CLI_IN_TXN ? "*" : s->state == CLI_FAILED ? "!" : "";
    pthread_mutex_unlock(&sh->mu);
    return m;
}

void cli_sessions_describe(struct cli_shell *sh, struct cli_buf *b)
{
    pthread_mutex_lock(&sh->mu);
    for (int i = 0; i < sh->nsessions; i++) {
        struct cli_session *s = sh->sessions[i];
        const char *st = s->sleeping              ? "sleeping"
                         : s->blocked             ? "blocked"
                         : s->state == CLI_IN_TXN ? "transaction"
                         : s->state == CLI_FAILED ? "failed"
                                                  : "idle";
        cli_buf_printf(b, "%c %-8s %-12s ", s == sh->cur ? '*' : ' ', s->name, st);
        if (s->state == CLI_IDLE) {
            cli_buf_printf(b, "defaults %s %s\n", cli_isolation_name(s->isolation),
                           cli_cc_name(s->cc));
        } else if (s->state == CLI_FAILED) {
            cli_buf_puts(b, "must ROLLBACK\n");
        } else {
            cli_buf_printf(b, "%s %s%s, txn %llu\n", cli_isolation_name(s->txn_opts.isolation),
                           cli_cc_name(s->txn_opts.cc),
                           s->txn_opts.flags & TXKV_RDONLY ? " READ ONLY" : "",
                           (unsigned long long)s->txn_id);
        }
    }
    pthread_mutex_unlock(&sh->mu);
}

static int out_errno; /* main thread only: the first failed write to stdout */

int cli_output_errno(void)
{
    return out_errno;
}

/* One line (len bytes, no newline) as e says; the session as a prefix, field or column. */
static void emit_line(const struct cli_emit *e, FILE *f, const char *p, size_t len)
{
    const char *name = e->session;
    if (!name) {
        /* nothing to add */
    } else if (e->format == CLI_FMT_JSON && len && p[0] == '{') {
        fprintf(f, "{\"session\":\"%s\"%s", name, len > 2 ? "," : "");
        p++, len--;
    } else if (e->format == CLI_FMT_JSON && len && p[0] == '[') {
        fprintf(f, "{\"session\":\"%s\",\"rows\":", name);
        fwrite(p, 1, len, f);
        p = "}", len = 1;
    } else if (e->format == CLI_FMT_CSV && f == stdout) {
        fprintf(f, "%s,", name); /* session names need no quoting */
    } else {
        fprintf(f, "[%s] ", name);
    }
    fwrite(p, 1, len, f);
    fputc('\n', f);
}

void cli_emit(const struct cli_emit *e, const char *p, size_t n)
{
    FILE *f = e->error && e->format == CLI_FMT_CSV ? stderr : stdout;
    if (e->format == CLI_FMT_CSV && e->csv_header && !e->error)
        fprintf(f, "%s%s\n", e->session ? "session," : "", e->csv_header);
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t len = nl ? (size_t)(nl - p) : n;
        emit_line(e, f, p, len);
        p += len + (nl ? 1 : 0);
        n -= len + (nl ? 1 : 0);
    }
    if (fflush(f) == EOF && f == stdout && !out_errno)
        out_errno = errno ? errno : EIO;
}

void cli_print(const char *name, const char *p, size_t n)
{
    cli_emit(&(struct cli_emit){CLI_FMT_PLAIN, name, NULL, 0}, p, n);
}

static void print_job(struct cli_shell *sh, struct cli_job *j)
{
    const char *name = j->prefixed || j->detached ? j->s->name : NULL;
    cli_emit(&(struct cli_emit){j->format, name, j->csv_header, j->failed}, j->out.p, j->out.n);
    if (j->diag.n)
        cli_emit(&(struct cli_emit){CLI_FMT_PLAIN, name, NULL, 1}, j->diag.p, j->diag.n);
    if (j->failed)
        sh->failures++;
}

/*
 * A session's state change that is no command's result: "blocked",
 * "queued" (behind its blocked command), "sleeping" (in .sleep).  Plain:
 * "[T2] blocked"; JSON {"session":"T2","event":"blocked"}; CSV T2,blocked.
 */
static void emit_event(enum cli_format f, const char *session, const char *event, const char *text)
{
    struct cli_buf b = {0};
    if (f == CLI_FMT_JSON)
        cli_buf_printf(&b, "{\"event\":\"%s\"}\n", event);
    else
        cli_buf_printf(&b, "%s\n", f == CLI_FMT_CSV ? event : text);
    cli_emit(&(struct cli_emit){f, session, "event", 0}, b.p, b.n);
    cli_buf_free(&b);
}

void cli_pipe_drain(int fd)
{
    char junk[64];
    while (read(fd, junk, sizeof junk) > 0)
        ;
}

/* Takes the list of detached jobs that finished, oldest first. */
static struct cli_job *take_done(struct cli_shell *sh)
{
    pthread_mutex_lock(&sh->mu);
    struct cli_job *j = sh->done_head;
    sh->done_head = sh->done_tail = NULL;
    pthread_mutex_unlock(&sh->mu);
    return j;
}

void cli_drain(struct cli_shell *sh)
{
    cli_pipe_drain(sh->notify[0]);
    struct cli_job *j = take_done(sh);
    while (j) {
        struct cli_job *next = j->next;
        print_job(sh, j);
        job_free(j);
        j = next;
    }
}

/* Frees finished jobs without printing them (at exit, after "still blocked"). */
static void drain_discard(struct cli_shell *sh)
{
    struct cli_job *j = take_done(sh);
    while (j) {
        struct cli_job *next = j->next;
        job_free(j);
        j = next;
    }
}

static int any_blocked(struct cli_shell *sh)
{
    for (int i = 0; i < sh->nsessions; i++)
        if (sh->sessions[i]->blocked)
            return 1;
    return 0;
}

/* Waits (until deadline) for every blocked job to finish; called with sh->mu held. */
static void wait_blocked(struct cli_shell *sh, const struct timespec *deadline)
{
    while (any_blocked(sh))
        if (pthread_cond_timedwait(&sh->done_cv, &sh->mu, deadline) == ETIMEDOUT)
            break;
}

void cli_session_run(struct cli_shell *sh, struct cli_session *s, struct cli_cmd *cmd, int prefixed)
{
    struct cli_job *j = cli_xmalloc(sizeof *j);
    memset(j, 0, sizeof *j);
    j->s = s;
    j->cmd = *cmd;
    memset(cmd, 0, sizeof *cmd);
    j->format = sh->format;
    j->timer = sh->timer;
    j->isolation = s->isolation;
    j->cc = s->cc;
    j->prefixed = prefixed;
    j->file = sh->file ? cli_xstrdup(sh->file) : NULL;
    j->line = sh->line;

    struct timespec deadline = cli_deadline_after(sh->wait_ms);
    pthread_mutex_lock(&sh->mu);
    int queued = s->blocked > 0;
    job_enqueue(s, j);
    while (!queued && !j->done)
        if (pthread_cond_timedwait(&sh->done_cv, &sh->mu, &deadline) == ETIMEDOUT)
            break;
    int done = j->done;
    if (!done) {
        j->detached = 1;
        s->blocked++;
    }
    pthread_mutex_unlock(&sh->mu);

    if (!done) {
        if (queued)
            emit_event(sh->format, s->name, "queued", "queued behind its blocked command");
        else if (j->cmd.op == CLI_DOT_SLEEP) /* j is the worker's now, but its cmd is fixed */
            emit_event(sh->format, s->name, "sleeping", "sleeping");
        else
            emit_event(sh->format, s->name, "blocked", "blocked");
        cli_drain(sh);
        return;
    }
    print_job(sh, j);
    job_free(j);
    cli_drain(sh);
    /* This step may have released what blocked jobs wait for: let them report now. */
    deadline = cli_deadline_after(sh->wait_ms);
    pthread_mutex_lock(&sh->mu);
    wait_blocked(sh, &deadline);
    pthread_mutex_unlock(&sh->mu);
    cli_drain(sh);
}

/* Reports a session still blocked at the end: an error, and in a terminal what it waits for. */
static void report_unfinished(struct cli_shell *sh, struct cli_session *s, int sleeping)
{
    struct cli_buf b = {0};
    cli_out_error(&b, sh->format, "BLOCKED",
                  sleeping ? "still sleeping at the end of input; giving up on it"
                           : "still blocked at the end of input; giving up on it");
    cli_emit(&(struct cli_emit){sh->format, s->name, NULL, 1}, b.p, b.n);
    if (sh->interactive && !sleeping) {
        b.n = 0;
        cli_describe_wait(sh, s, &b);
        int plain = sh->format == CLI_FMT_PLAIN;
        cli_emit(&(struct cli_emit){CLI_FMT_PLAIN, s->name, NULL, !plain}, b.p, b.n);
    }
    cli_buf_free(&b);
    sh->failures++;
}

void cli_finish(struct cli_shell *sh)
{
    /* A person who typed Ctrl-D is told at once; a script waits for what it started. */
    struct timespec deadline = cli_deadline_after(sh->interactive ? 0 : sh->end_wait_ms);
    pthread_mutex_lock(&sh->mu);
    wait_blocked(sh, &deadline);
    pthread_mutex_unlock(&sh->mu);
    cli_drain(sh);
    for (int i = 0; i < sh->nsessions; i++) {
        struct cli_session *s = sh->sessions[i];
        pthread_mutex_lock(&sh->mu);
        int blocked = s->blocked, sleeping = s->sleeping;
        pthread_mutex_unlock(&sh->mu);
        if (blocked)
            report_unfinished(sh, s, sleeping);
    }
    fflush(stdout);
}

int cli_shell_shutdown(struct cli_shell *sh)
{
    int stuck = 0;
    for (int i = 0; i < sh->nsessions; i++) {
        struct cli_session *s = sh->sessions[i];
        struct cli_job *j = cli_xmalloc(sizeof *j);
        memset(j, 0, sizeof *j);
        j->s = s;
        j->cmd.op = CLI_SHUTDOWN;
        pthread_mutex_lock(&sh->mu);
        s->stopping = 1;
        job_enqueue(s, j);
        pthread_mutex_unlock(&sh->mu);
    }
    /*
     * Every session now rolls back after its queued work, which releases the
     * locks that the blocked ones wait for; give them a bounded time.
     */
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 5;
    for (int i = 0; i < sh->nsessions; i++) {
        struct cli_session *s = sh->sessions[i];
        if (pthread_timedjoin_np(s->thread, NULL, &deadline) != 0) {
            fprintf(stderr, "kv-cli: session %s did not stop\n", s->name);
            stuck = 1;
            continue;
        }
        pthread_cond_destroy(&s->work);
    }
    if (stuck)
        return -1;
    /* Jobs queued behind a blocked one and never reported: nothing to print now. */
    drain_discard(sh);
    for (int i = 0; i < sh->nsessions; i++)
        free(sh->sessions[i]);
    sh->nsessions = 0;
    pthread_cond_destroy(&sh->done_cv);
    pthread_mutex_destroy(&sh->mu);
    close(sh->notify[0]);
    close(sh->notify[1]);
    return 0;
}
