/*
 * cli.h - kv-cli's private interface, shared by tools/cli-*.c and kv-cli.c.
 *
 * kv-cli is split by concept:
 *   cli-output.c   allocation, growable buffers, value quoting, plain/csv/json output
 *   cli-parse.c    tokenizer (quoting rules), the command table, the parser
 *   cli-exec.c     runs one parsed command in a session's transaction context
 *   cli-session.c  sessions: one worker thread each, job queues, bounded waits,
 *                  the order in which results are printed
 *   cli-input.c    line input: libedit (prompt, history, completion) or plain fd
 *   kv-cli.c       options, the main loop, dot commands that touch no database
 *
 * cli-output.c and cli-parse.c call nothing in libtxkv, so tests/cli-parse
 * links them alone.
 */
#ifndef TXKV_CLI_H
#define TXKV_CLI_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "txkv.h"

/* ---- cli-output.c: buffers and formatting ------------------------------ */

struct cli_buf {
    char *p;
    size_t n, cap;
};

/* Allocation that cannot fail: on out-of-memory kv-cli prints and exits (3). */
void *cli_xmalloc(size_t n);
void *cli_xrealloc(void *p, size_t n);
char *cli_xstrdup(const char *s);
/* A NUL-terminated copy of p[0..n), which may hold NULs itself. */
char *cli_xmemdup(const void *p, size_t n);
/*
 * The one growable array: returns p reallocated to hold at least need
 * elements of size bytes, doubling *cap (from first when 0) until they fit.
 */
void *cli_xgrow(void *p, size_t *cap, size_t need, size_t size, size_t first);

void cli_buf_put(struct cli_buf *b, const void *p, size_t n);
void cli_buf_puts(struct cli_buf *b, const char *s);
void cli_buf_putc(struct cli_buf *b, int c);
void cli_buf_printf(struct cli_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_buf_free(struct cli_buf *b);

enum cli_format { CLI_FMT_PLAIN, CLI_FMT_CSV, CLI_FMT_JSON };

/* 1 if p[0..n) is well-formed UTF-8 (no overlongs, no surrogates). */
int cli_utf8_valid(const void *p, size_t n);
/* 1 if every character is printable: ASCII 0x20..0x7e or UTF-8 >= U+00A0. */
int cli_printable(const void *p, size_t n);
/*
 * Writes "..." with \n \t \r \\ \" and \xHH escapes, the inverse of the
 * tokenizer's double quotes.  ascii: escape every byte >= 0x80 too (dumps);
 * else printable UTF-8 passes through (display).
 */
void cli_quote(struct cli_buf *b, const void *p, size_t n, int ascii);
/* A value for display: raw when printable and unambiguous, else quoted. */
void cli_put_value(struct cli_buf *b, const void *p, size_t n);
/* A key as one word that the tokenizer reads back: raw only when that is safe. */
void cli_put_word(struct cli_buf *b, const void *p, size_t n);

/* Results in the chosen format.  val == NULL: the key is absent. */
void cli_out_value(struct cli_buf *b, enum cli_format f, const void *key, size_t klen,
                   const void *val, size_t vlen);
void cli_out_ok(struct cli_buf *b, enum cli_format f);
/* OK with a count of what (singular): "OK (3 keys)" / {"ok":true,"keys":3}. */
void cli_out_ok_count(struct cli_buf *b, enum cli_format f, const char *what, uint64_t n);
void cli_out_error(struct cli_buf *b, enum cli_format f, const char *name, const char *msg);
/*
 * The same for a command read from a file: file:line: before the message
 * (plain, CSV), or "file" and "line" fields (JSON).  file NULL: no place.
 */
void cli_out_error_at(struct cli_buf *b, enum cli_format f, const char *name, const char *file,
                      unsigned long line, const char *msg);
void cli_out_rows_begin(struct cli_buf *b, enum cli_format f);
/* One key and its value, as SCAN lists them. */
struct cli_row {
    const void *key;
    size_t klen;
    const void *val;
    size_t vlen;
};
void cli_out_row(struct cli_buf *b, enum cli_format f, uint64_t index, const struct cli_row *r);
void cli_out_rows_end(struct cli_buf *b, enum cli_format f, uint64_t nrows);
void cli_out_count(struct cli_buf *b, enum cli_format f, uint64_t n);
/* How many of a key's len bytes a deadlock or lock report kept (the rest is cut). */
size_t cli_key_kept(size_t len);
/* How many of d's transactions d holds (a longer cycle is cut). */
unsigned cli_deadlock_ntxns(const struct txkv_deadlock_info *d);
/* One deadlock (a row between cli_out_rows_begin/end); names[i]: txns[i]'s session or NULL. */
void cli_out_deadlock(struct cli_buf *b, enum cli_format f, uint64_t index,
                      const struct txkv_deadlock_info *d, const char *const *names,
                      const char *victim);
/*
 * One entry of the lock table (a row between cli_out_rows_begin/end); name:
 * l->txn's session or NULL.  Plain: T2 (txn 7) X "k1" held.
 */
void cli_out_lock(struct cli_buf *b, enum cli_format f, uint64_t index,
                  const struct txkv_lock_info *l, const char *name);
/* One "name: text" line of .info (a JSON string, a CSV field). */
void cli_out_text(struct cli_buf *b, enum cli_format f, int first, int last, const char *name,
                  const char *text);
void cli_out_stat(struct cli_buf *b, enum cli_format f, int first, int last, const char *name,
                  uint64_t v);

/* ---- cli-parse.c: tokens, commands, the command table ------------------- */

/* A token's bytes, decoded and NUL-terminated (p[n] == 0); p == NULL marks ';'. */
struct cli_token {
    char *p;
    size_t n;
    int quoted; /* some part of it was quoted: never a keyword */
};

struct cli_tokens {
    struct cli_token *v;
    size_t n, cap;
};

/*
 * Splits one line into tokens.  Whitespace separates tokens, an unquoted
 * ';' ends a statement (a token with p == NULL), "..." understands
 * \n \t \r \0 \\ \" \' \xHH, '...' is literal, and adjacent pieces join into
 * one token as in a shell.  Returns 0, or -1 with a message in err.
 */
int cli_tokenize(const char *s, size_t n, struct cli_tokens *t, char *err, size_t errsz);
/* Frees the tokens' bytes and empties t, keeping its array for the next line. */
void cli_tokens_clear(struct cli_tokens *t);
void cli_tokens_free(struct cli_tokens *t);
/* How many tokens the statement at t->v[i] has: up to the next ';' token or the end. */
size_t cli_statement_len(const struct cli_tokens *t, size_t i);
/*
 * 1 if the line is blank, or a comment: '#' or '--' after leading blanks.
 * (cli_tokenize also ends a line at a '#' that starts a token: PUT k v # note.)
 */
int cli_line_is_comment(const char *s, size_t n);

enum cli_op {
    CLI_NONE,
    /* run by a session's worker thread */
    CLI_GET,
    CLI_PUT,
    CLI_DEL,
    CLI_SCAN,
    CLI_COUNT,
    CLI_BEGIN,
    CLI_COMMIT,
    CLI_ROLLBACK,
    CLI_STATS,
    CLI_DOT_DUMP,
    CLI_DOT_LOAD,
    CLI_DOT_SLEEP,
    CLI_DEADLOCKS,
    CLI_LOCKS, /* the lock table: who holds and who waits for which key */
    CLI_SAVEPOINT,
    CLI_ROLLBACK_TO, /* ROLLBACK TO name (parsed from ROLLBACK) */
    CLI_RELEASE,
    CLI_DOT_CHECKPOINT, /* txkv_checkpoint (durable databases) */
    CLI_DOT_INFO,       /* directory, sync policy, log size, last checkpoint */
    CLI_SHUTDOWN,       /* internal: ends the worker */
    /* run by the main thread */
    CLI_HELP,
    CLI_DOT_READ, /* runs a file's commands, as -f does */
    CLI_DOT_SESSION,
    CLI_DOT_SESSIONS,
    CLI_DOT_ISOLATION,
    CLI_DOT_CC,
    CLI_DOT_TIMER,
    CLI_DOT_FORMAT,
    CLI_DOT_ECHO,
    CLI_DOT_QUIT,
};

/* Ops up to and including CLI_SHUTDOWN run on a session's worker; the rest on the main thread. */
#define CLI_OP_IN_SESSION(op) ((op) > CLI_NONE && (op) <= CLI_SHUTDOWN)

struct cli_bytes {
    char *p; /* NUL-terminated copy; NULL when absent */
    size_t n;
};

struct cli_cmd {
    enum cli_op op;
    char *session;          /* @NAME, or NULL */
    struct cli_bytes a, b;  /* GET/DEL: a=key; PUT: a,b; SCAN/COUNT: from, to; FILE; words */
    uint64_t limit;         /* SCAN ... LIMIT n; UINT64_MAX: none */
    txkv_txn_options begin; /* BEGIN: 0 fields mean the session's defaults */
    int ival;               /* .isolation/.cc/.format value, on/off; -1: show */
    double seconds;         /* .sleep */
};

/* Parses one statement (no ';' tokens).  Returns 0, or -1 with a message in err. */
int cli_parse(const struct cli_token *tok, size_t n, struct cli_cmd *cmd, char *err, size_t errsz);
void cli_cmd_free(struct cli_cmd *cmd);

struct cli_cmd_info {
    const char *name; /* "GET", ".dump" */
    enum cli_op op;
    const char *args; /* "key value" */
    const char *help; /* one line */
    const char *more; /* further lines for HELP name, or NULL */
};

/* The command table: the one list behind the parser, HELP and tab completion. */
const struct cli_cmd_info *cli_commands(size_t *n);
const struct cli_cmd_info *cli_command_find(const char *name);

/* Word -> value, case-insensitive, '-', '_' and spaces ignored; -1 if unknown. */
int cli_word_isolation(const char *s);
int cli_word_cc(const char *s);
int cli_word_format(const char *s);
const char *cli_isolation_name(int iso); /* "SNAPSHOT" */
const char *cli_cc_name(int cc);         /* "OPTIMISTIC" */
const char *cli_format_name(int f);      /* "plain" */
/* "64M", "1g", "4096" -> bytes (K/M/G/T are powers of 1024).  0 or -1. */
int cli_parse_size(const char *s, size_t *out);

/* ---- cli-session.c: sessions, workers, jobs ----------------------------- */

#define CLI_MAX_SESSIONS 64
#define CLI_NAME_MAX     32

enum cli_state { CLI_IDLE, CLI_IN_TXN, CLI_FAILED };

struct cli_load_rec {
    struct cli_bytes key, val;
    size_t line; /* where the file gave it */
};

/* A named savepoint of the session's transaction (SAVEPOINT name). */
struct cli_savepoint {
    char *name;
    uint32_t id; /* txkv_savepoint's */
};

struct cli_session;

struct cli_job {
    struct cli_job *next; /* the session's queue, then the shell's done list */
    struct cli_session *s;
    struct cli_cmd cmd;
    /* captured when submitted, so the worker reads no shared settings */
    enum cli_format format;
    int timer, isolation, cc;
    int prefixed; /* @NAME: every output line starts with "[NAME] " */
    int note_id;  /* autocommit pessimistic: record the transaction's id */
    char *file;   /* the file and line the command came from (-f, .read), or NULL */
    unsigned long line;
    /* written by the worker; read by the main thread once done is set */
    struct cli_buf out;
    struct cli_buf diag;    /* CSV: what goes to stderr besides errors (.timer) */
    const char *csv_header; /* CSV: the result's header row, or NULL */
    int failed;
    int done;     /* under the shell mutex */
    int detached; /* under the shell mutex: the main thread stopped waiting */
    /* worker scratch */
    size_t mark;        /* out.n when the command started: errors cut back to it */
    const char *errmsg; /* a message of our own instead of txkv_errmsg() */
    char errbuf[512];
    struct cli_buf aux;        /* .dump text */
    uint64_t count;            /* keys dumped or loaded */
    struct cli_load_rec *recs; /* .load records */
    size_t nrecs;
};

struct cli_shell;

struct cli_session {
    struct cli_shell *sh;
    char name[CLI_NAME_MAX + 1];
    pthread_t thread;
    pthread_cond_t work;           /* with sh->mu: queue not empty, or stopping */
    struct cli_job *qhead, *qtail; /* under sh->mu */
    int unfinished;                /* under sh->mu: jobs submitted, not done */
    int stopping;                  /* under sh->mu: shutdown; .sleep ends early */
    int blocked;                   /* under sh->mu: detached jobs not done */
    int sleeping;                  /* under sh->mu: the worker is in .sleep */
    enum cli_state state;          /* under sh->mu: published by the worker */
    txkv_txn_options txn_opts;     /* under sh->mu: the open transaction's options */
    uint64_t txn_id;               /* under sh->mu: its txkv_txn_id */
    int isolation, cc;             /* main thread only: the session's defaults */
    /* worker thread only */
    txkv_txn *txn;
    enum cli_state wstate;
    txkv_txn_options wopts;
    uint64_t wtxn_id;
    struct cli_savepoint *sps; /* oldest first; the newest of a name wins */
    size_t nsps, capsps;
};

/* Which session ran transaction id: DEADLOCKS and LOCKS name sessions, not numbers. */
#define CLI_TXN_NAMES 256
struct cli_txn_name {
    uint64_t id;
    struct cli_session *s;
};

struct cli_shell {
    txkv_db *db;
    const char *dir; /* the database's directory; NULL in memory */
    int sync;        /* its sync policy (TXKV_SYNC_*) */
    pthread_mutex_t mu;
    pthread_cond_t done_cv; /* with mu: some job finished */
    struct cli_session *sessions[CLI_MAX_SESSIONS];
    int nsessions;
    struct cli_session *cur;
    struct cli_job *done_head, *done_tail;    /* under mu: detached jobs that finished */
    int notify[2];                            /* self-pipe: a detached job finished */
    struct cli_txn_name names[CLI_TXN_NAMES]; /* under mu: a ring, newest at nnames - 1 */
    uint64_t nnames;
    /* settings, main thread only */
    enum cli_format format;
    int timer, echo, bail, interactive;
    int isolation, cc;    /* defaults for new sessions */
    unsigned wait_ms;     /* how long a command may run before it is reported blocked */
    unsigned end_wait_ms; /* at the end of input, for blocked commands */
    int failures;         /* commands that printed an error */
    const char *file;     /* the file being read (-f, .read), or NULL; its line number: */
    unsigned long line;
    int depth; /* .read nesting */
};

int cli_shell_init(struct cli_shell *sh, txkv_db *db);
/*
 * Stops every worker (rolling back open transactions) and frees the sessions.
 * -1 if a worker did not stop within 5 s: then the database must not be closed.
 */
int cli_shell_shutdown(struct cli_shell *sh);
/* Fills a new session's fields from the shell's defaults; starts no thread. */
void cli_session_init(struct cli_shell *sh, struct cli_session *s, const char *name);
/* Finds a session by name (case-insensitive); creates it if create. */
struct cli_session *cli_session_get(struct cli_shell *sh, const char *name, int create, char *err,
                                    size_t errsz);
/* The prompt mark: "" idle, "*" in a transaction, "!" failed, "?" blocked. */
const char *cli_session_mark(struct cli_shell *sh, struct cli_session *s);
/* One line per session for .sessions. */
void cli_sessions_describe(struct cli_shell *sh, struct cli_buf *b);
/*
 * Runs cmd (moved into the job) in session s: waits up to sh->wait_ms for it,
 * prints its result, or reports it blocked and prints it when it finishes.
 */
void cli_session_run(struct cli_shell *sh, struct cli_session *s, struct cli_cmd *cmd,
                     int prefixed);
/* Prints the results of blocked commands that have finished since. */
void cli_drain(struct cli_shell *sh);
/* Empties the (non-blocking) self-pipe fd, whose bytes only say "look at the done list". */
void cli_pipe_drain(int fd);
/* At end of input: waits up to sh->end_wait_ms for blocked commands; reports the rest. */
void cli_finish(struct cli_shell *sh);
/* CLOCK_MONOTONIC now + ms, for timed waits on the shell's condition variables. */
struct timespec cli_deadline_after(unsigned ms);
/* Writes text to stdout with each line prefixed by "[name] " when name != NULL. */
void cli_print(const char *name, const char *p, size_t n);
/*
 * How a piece of output reaches stdout.  Plain text prefixes each line with
 * "[session] ".  The structured formats carry the session as a field: JSON
 * wraps each line's object as {"session":"T2",...} (an array as
 * {"session":"T2","rows":[...]}), CSV puts it in a first column, "session"
 * in the header row.  CSV errors go to stderr, as plain text.
 */
struct cli_emit {
    enum cli_format format;
    const char *session;    /* NULL: none */
    const char *csv_header; /* CSV: the header row to print first, or NULL */
    int error;
};
void cli_emit(const struct cli_emit *e, const char *p, size_t n);
/* 0, or the errno of the first write to stdout that failed. */
int cli_output_errno(void);

/* ---- cli-exec.c: the worker's side ---------------------------------- */

/* Worker only: aborts s's open transaction, if any, and forgets its savepoints. */
void cli_txn_abandon(struct cli_session *s);
/* Runs j->cmd in s's transaction context; fills j->out and j->failed. */
void cli_exec(struct cli_session *s, struct cli_job *j);
/* Parses a .load file into j->recs before any transaction starts.  0 or an error. */
int cli_load_parse(struct cli_job *j);
/* What session s's blocked command waits for: its lock requests and their holders. */
void cli_describe_wait(struct cli_shell *sh, struct cli_session *s, struct cli_buf *b);

/* ---- cli-input.c: reading lines --------------------------------------- */

struct cli_input;
typedef void (*cli_notify_fn)(void *arg);
typedef const char *(*cli_prompt_fn)(void *arg);

/* What a reader calls back while it waits for input. */
struct cli_input_hooks {
    int notify_fd;        /* -1: none */
    cli_notify_fn notify; /* notify_fd became readable, between keystrokes or lines */
    cli_prompt_fn prompt; /* libedit only: the prompt to show */
    void *arg;            /* passed to notify and prompt */
};

/* Plain reading from fd (files, pipes). */
struct cli_input *cli_input_fd(int fd, const struct cli_input_hooks *h);
/* libedit on the terminal: prompt, history in histfile (NULL: none), completion from sh. */
struct cli_input *cli_input_edit(const char *prog, const struct cli_input_hooks *h,
                                 const char *histfile, struct cli_shell *sh);
/* *line is malloc'd, without its newline.  1: a line, 0: end of input. */
int cli_input_line(struct cli_input *in, char **line, size_t *len);
void cli_input_close(struct cli_input *in);

#endif /* TXKV_CLI_H */
