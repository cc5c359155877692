/*
 * fuzz-cli.c - fuzz target: kv-cli's command language, parsed and run.
 *
 * The input is a kv-cli script, read the way `kv-cli -f FILE` reads one
 * (kv-cli.c run_line): lines split at '\n' (NUL bytes stay in the line),
 * comment lines skipped, each line tokenized once and cut into statements
 * at ';', each statement parsed.  Properties, checked on every input:
 *
 *   - no crash, leak or undefined behaviour (ASan, UBSan, LSan), and no
 *     read past the line: each line is handed over in a buffer of exactly
 *     its length;
 *   - every token is NUL-terminated and no longer than its line; each
 *     token's bytes survive cli_quote (both modes; the ASCII one prints
 *     only printable ASCII) and cli_put_word through the tokenizer
 *     unchanged, and cli_put_value's output is either those bytes raw
 *     (printable) or a quoted string that tokenizes back to them;
 *   - a parsed command is sane (its fields are in range, its keys are
 *     NUL-terminated copies no longer than the line), and printed back
 *     canonically (keys through cli_put_word / cli_quote) it parses to the
 *     same command;
 *   - the data and transaction commands then run through cli_exec, the
 *     code kv-cli's session workers run, synchronously on this thread, in
 *     up to MAX_SESSIONS sessions (@NAME, .session) of one in-memory
 *     database.  Pessimistic lock waits time out after 1 us (a session
 *     blocked by another one on this same thread gets LOCK_TIMEOUT instead
 *     of hanging).  A failed command prints an error line; `.dump` (to the
 *     output) prints a dump whose lines parse back as PUT key value in
 *     strictly increasing key order.  Commands that touch files or sleep
 *     (.dump FILE, .load, .read, .sleep) and HELP are parsed but not run; the
 *     settings commands (.format, .timer, .isolation, .cc, ...) change the
 *     settings the next commands run with, as kv-cli's main thread does.
 *
 * The database lives across inputs (fuzz.h says why): each input ends by
 * rolling back every session and deleting every key, and the next one
 * checks that it starts empty; an input that fuzz_input_closes() picks
 * closes the database instead.
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../tools/cli.h"
#include "fuzz.h"

#define MAX_STATEMENTS 64
#define MAX_SESSIONS   4

struct ctx {
    const uint8_t *in;
    size_t insize;
    struct cli_shell sh;
    struct cli_session ses[MAX_SESSIONS];
    bool bad;
    int nexec;
};

#define CHECK(c, cond, ...)                                                                        \
    do {                                                                                           \
        if (!(c)->bad && !(cond)) {                                                                \
            (c)->bad = true;                                                                       \
            fuzz_fail(__VA_ARGS__);                                                                \
        }                                                                                          \
    } while (0)

/* ---- tokens and printers ------------------------------------------------ */

/* s tokenizes to exactly one token with bytes p[0..n). */
static bool one_token(const char *s, size_t sn, const void *p, size_t n, int *quoted)
{
    struct cli_tokens t = {0};
    char err[256];
    bool good = cli_tokenize(s, sn, &t, err, sizeof err) == 0 && t.n == 1 && t.v[0].p &&
                t.v[0].n == n && (n == 0 || memcmp(t.v[0].p, p, n) == 0);
    if (good && quoted)
        *quoted = t.v[0].quoted;
    cli_tokens_free(&t);
    return good;
}

static void check_printers(struct ctx *c, const struct cli_token *tok)
{
    struct cli_buf b = {0};
    int quoted = 0;
    for (int mode = 0; mode < 2 && !c->bad; mode++) {
        b.n = 0;
        cli_quote(&b, tok->p, tok->n, mode);
        CHECK(c, one_token(b.p, b.n, tok->p, tok->n, &quoted) && quoted,
              "cli_quote(ascii=%d) of a %zu-byte token does not tokenize back: %s", mode, tok->n,
              b.p);
        for (size_t i = 0; mode && i < b.n; i++)
            CHECK(c, b.p[i] >= 0x20 && b.p[i] < 0x7f, "cli_quote(ascii=1) printed byte 0x%02x: %s",
                  (unsigned char)b.p[i], b.p);
    }
    b.n = 0;
    cli_put_word(&b, tok->p, tok->n);
    CHECK(c, one_token(b.p, b.n, tok->p, tok->n, &quoted),
          "cli_put_word of a %zu-byte token does not tokenize back: %s", tok->n, b.p);
    CHECK(c, quoted || (b.n == tok->n && cli_printable(b.p, b.n)),
          "cli_put_word printed a raw word that is not the printable token: %s", b.p);
    b.n = 0;
    cli_put_value(&b, tok->p, tok->n);
    if (b.n && b.p[0] == '"')
        CHECK(c, one_token(b.p, b.n, tok->p, tok->n, NULL),
              "cli_put_value's quoted output does not tokenize back: %s", b.p);
    else
        CHECK(c, b.n == tok->n && memcmp(b.p, tok->p, b.n) == 0 && cli_printable(b.p, b.n),
              "cli_put_value printed something else raw: %s", b.p);
    cli_buf_free(&b);
}

/* ---- parse, check, print back ------------------------------------------- */

static bool bytes_ok(const struct cli_bytes *b, size_t max)
{
    return !b->p || (b->n <= max && b->p[b->n] == '\0');
}

static bool bytes_eq(const struct cli_bytes *x, const struct cli_bytes *y)
{
    if (!x->p || !y->p)
        return !x->p && !y->p;
    return x->n == y->n && memcmp(x->p, y->p, x->n) == 0;
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > CLI_NAME_MAX)
        return false;
    for (; *s; s++)
        if (!(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z') && !(*s >= '0' && *s <= '9') &&
            *s != '_' && *s != '-')
            return false;
    return true;
}

static void check_cmd(struct ctx *c, const struct cli_cmd *cmd, size_t linelen)
{
    enum cli_op op = cmd->op;
    CHECK(c, op > CLI_NONE && op <= CLI_DOT_QUIT && op != CLI_SHUTDOWN, "parsed op %d", (int)op);
    CHECK(c, !cmd->session || name_ok(cmd->session), "bad session name parsed: %s", cmd->session);
    CHECK(c, bytes_ok(&cmd->a, linelen) && bytes_ok(&cmd->b, linelen),
          "op %d: argument bytes longer than the line (%zu, %zu > %zu) or not terminated", (int)op,
          cmd->a.n, cmd->b.n, linelen);
    CHECK(c, !cmd->b.p || cmd->a.p, "op %d: a second argument without a first", (int)op);
    switch (op) {
    case CLI_GET:
    case CLI_DEL:
        CHECK(c, cmd->a.p && !cmd->b.p, "GET/DEL parsed without its key");
        break;
    case CLI_PUT:
        CHECK(c, cmd->a.p && cmd->b.p, "PUT parsed without key and value");
        break;
    case CLI_COUNT:
        CHECK(c, cmd->limit == UINT64_MAX, "COUNT parsed a LIMIT");
        break;
    case CLI_BEGIN:
        CHECK(c,
              cmd->begin.isolation >= 0 && cmd->begin.isolation <= TXKV_SERIALIZABLE &&
                  cmd->begin.cc >= 0 && cmd->begin.cc <= TXKV_PESSIMISTIC &&
                  !(cmd->begin.flags & ~(unsigned)TXKV_RDONLY) && cmd->begin.lock_timeout_us == 0,
              "BEGIN parsed bad options");
        break;
    case CLI_DOT_SESSION:
        CHECK(c, !cmd->a.p || name_ok(cmd->a.p), ".session parsed a bad name");
        break;
    case CLI_DOT_ISOLATION:
        CHECK(c, cmd->ival == -1 || (cmd->ival >= 1 && cmd->ival <= 3), ".isolation %d", cmd->ival);
        break;
    case CLI_DOT_CC:
        CHECK(c, cmd->ival == -1 || cmd->ival == 1 || cmd->ival == 2, ".cc %d", cmd->ival);
        break;
    case CLI_DOT_TIMER:
    case CLI_DOT_ECHO:
        CHECK(c, cmd->ival >= -1 && cmd->ival <= 1, "on/off parsed as %d", cmd->ival);
        break;
    case CLI_DOT_FORMAT:
        CHECK(c, cmd->ival >= -1 && cmd->ival <= CLI_FMT_JSON, ".format %d", cmd->ival);
        break;
    case CLI_DOT_SLEEP:
        CHECK(c, cmd->seconds >= 0 && cmd->seconds <= 3600, ".sleep %g", cmd->seconds);
        break;
    case CLI_DOT_LOAD:
        CHECK(c, cmd->a.p != NULL, ".load parsed without a file");
        break;
    default:
        break;
    }
}

static const char *level_words(int iso)
{
    return iso == TXKV_READ_COMMITTED ? "READ COMMITTED"
           : iso == TXKV_SNAPSHOT     ? "SNAPSHOT"
                                      : "SERIALIZABLE";
}

/* Prints cmd canonically as one statement; false for what has no printer. */
static bool print_cmd(const struct cli_cmd *cmd, struct cli_buf *b)
{
    const struct cli_cmd_info *ci = NULL;
    size_t n;
    const struct cli_cmd_info *all = cli_commands(&n);
    for (size_t i = 0; i < n && !ci; i++)
        if (all[i].op == cmd->op)
            ci = &all[i]; /* the first name of the op: PUT, not SET */
    if (!ci)
        return false;
    if (cmd->session)
        cli_buf_printf(b, "@%s ", cmd->session);
    cli_buf_puts(b, ci->name);
    switch (cmd->op) {
    case CLI_GET:
    case CLI_DEL:
    case CLI_PUT:
    case CLI_SAVEPOINT:
    case CLI_RELEASE:
        cli_buf_putc(b, ' ');
        cli_put_word(b, cmd->a.p, cmd->a.n);
        if (cmd->op == CLI_PUT) {
            cli_buf_putc(b, ' ');
            cli_put_word(b, cmd->b.p, cmd->b.n);
        }
        break;
    case CLI_SCAN:
    case CLI_COUNT:
        /* quoted: a raw key could be the keyword LIMIT */
        for (int i = 0; i < 2; i++) {
            const struct cli_bytes *k = i ? &cmd->b : &cmd->a;
            if (k->p) {
                cli_buf_putc(b, ' ');
                cli_quote(b, k->p, k->n, i);
            }
        }
        if (cmd->limit != UINT64_MAX)
            cli_buf_printf(b, " LIMIT %llu", (unsigned long long)cmd->limit);
        break;
    case CLI_BEGIN:
        if (cmd->begin.cc)
            cli_buf_printf(b, " %s", cli_cc_name(cmd->begin.cc));
        if (cmd->begin.flags & TXKV_RDONLY)
            cli_buf_puts(b, " READ ONLY");
        if (cmd->begin.isolation)
            cli_buf_printf(b, " %s", level_words(cmd->begin.isolation));
        break;
    case CLI_HELP:
    case CLI_DOT_DUMP:
    case CLI_DOT_LOAD:
    case CLI_DOT_READ:
        if (cmd->a.p) {
            cli_buf_putc(b, ' ');
            cli_quote(b, cmd->a.p, cmd->a.n, 0);
        }
        break;
    case CLI_DOT_SESSION:
        if (cmd->a.p)
            cli_buf_printf(b, " @%s", cmd->a.p);
        break;
    case CLI_DOT_ISOLATION:
        if (cmd->ival > 0)
            cli_buf_printf(b, " %s", level_words(cmd->ival));
        break;
    case CLI_DOT_CC:
        if (cmd->ival > 0)
            cli_buf_printf(b, " %s", cli_cc_name(cmd->ival));
        break;
    case CLI_DOT_TIMER:
    case CLI_DOT_ECHO:
        if (cmd->ival >= 0)
            cli_buf_puts(b, cmd->ival ? " on" : " off");
        break;
    case CLI_DOT_FORMAT:
        if (cmd->ival >= 0)
            cli_buf_printf(b, " %s", cli_format_name(cmd->ival));
        break;
    case CLI_DOT_SLEEP:
        cli_buf_printf(b, " %.17g", cmd->seconds);
        break;
    default:
        break;
    }
    return true;
}

static void check_reprint(struct ctx *c, const struct cli_cmd *cmd)
{
    struct cli_buf b = {0};
    struct cli_tokens t = {0};
    struct cli_cmd again;
    char err[512];
    if (!print_cmd(cmd, &b)) {
        cli_buf_free(&b);
        return;
    }
    int rc = cli_tokenize(b.p, b.n, &t, err, sizeof err);
    CHECK(c, rc == 0, "the canonical form does not tokenize (%s): %s", err, b.p);
    for (size_t i = 0; rc == 0 && i < t.n; i++)
        CHECK(c, t.v[i].p, "the canonical form has a ';': %s", b.p);
    if (rc == 0 && !c->bad) {
        rc = cli_parse(t.v, t.n, &again, err, sizeof err);
        CHECK(c, rc == 0, "the canonical form does not parse (%s): %s", err, b.p);
        if (rc == 0) {
            bool same = again.op == cmd->op && bytes_eq(&again.a, &cmd->a) &&
                        bytes_eq(&again.b, &cmd->b) && again.limit == cmd->limit &&
                        again.ival == cmd->ival && again.seconds == cmd->seconds &&
                        memcmp(&again.begin, &cmd->begin, sizeof again.begin) == 0 &&
                        (again.session ? cmd->session && !strcmp(again.session, cmd->session)
                                       : !cmd->session);
            CHECK(c, same, "the canonical form parses to another command: %s", b.p);
            cli_cmd_free(&again);
        }
    }
    cli_tokens_free(&t);
    cli_buf_free(&b);
}

/* ---- running commands --------------------------------------------------- */

/* A session by name (case-insensitive), created if there is room. */
static struct cli_session *session(struct ctx *c, const char *name)
{
    struct cli_shell *sh = &c->sh;
    for (int i = 0; i < sh->nsessions; i++)
        if (strcasecmp(sh->sessions[i]->name, name) == 0)
            return sh->sessions[i];
    if (sh->nsessions == MAX_SESSIONS)
        return NULL;
    struct cli_session *s = &c->ses[sh->nsessions];
    cli_session_init(sh, s, name); /* the fields only: no worker thread */
    sh->sessions[sh->nsessions++] = s;
    return s;
}

/* A .dump's lines parse back as PUT key value, keys strictly increasing. */
static void check_dump(struct ctx *c, const struct cli_buf *out)
{
    struct cli_tokens t = {0};
    struct cli_buf prev = {0};
    char err[256];
    int first = 1;
    for (size_t off = 0; off < out->n && !c->bad;) {
        const char *line = out->p + off;
        const char *nl = memchr(line, '\n', out->n - off);
        size_t len = nl ? (size_t)(nl - line) : out->n - off;
        off += len + 1;
        if (first || (len > 6 && !memcmp(line, "Time: ", 6)) ||
            (len > 11 && !memcmp(line, "{\"time_ms\":", 11))) {
            first = 0;
            continue; /* the header comment; .timer's line (plain or JSON) */
        }
        int rc = cli_tokenize(line, len, &t, err, sizeof err);
        CHECK(c,
              rc == 0 && t.n == 3 && t.v[0].p && !strcmp(t.v[0].p, "PUT") && t.v[1].p &&
                  t.v[1].quoted && t.v[2].p && t.v[2].quoted,
              "a .dump line does not parse as PUT \"key\" \"value\": %.*s", (int)len, line);
        if (c->bad)
            break;
        int cmp = prev.p ? memcmp(prev.p, t.v[1].p, prev.n < t.v[1].n ? prev.n : t.v[1].n) : -1;
        CHECK(c, cmp < 0 || (cmp == 0 && prev.n < t.v[1].n),
              ".dump keys are not in increasing order at: %.*s", (int)len, line);
        prev.n = 0;
        cli_buf_put(&prev, t.v[1].p, t.v[1].n);
        cli_tokens_free(&t);
    }
    cli_tokens_free(&t);
    cli_buf_free(&prev);
}

static void run_in_session(struct ctx *c, struct cli_cmd *cmd)
{
    struct cli_shell *sh = &c->sh;
    struct cli_session *s = cmd->session ? session(c, cmd->session) : sh->cur;
    if (!s)
        return;
    struct cli_job j;
    memset(&j, 0, sizeof j);
    j.s = s;
    j.cmd = *cmd;
    memset(cmd, 0, sizeof *cmd);
    j.format = sh->format;
    j.timer = sh->timer;
    j.isolation = s->isolation;
    j.cc = s->cc;
    j.prefixed = j.cmd.session != NULL;
    cli_exec(s, &j);
    /* what the worker publishes after each job (cli-session.c) */
    s->state = s->wstate;
    s->txn_opts = s->wopts;
    s->txn_id = s->wtxn_id;
    c->nexec++;
    /* no rows in CSV is no output at all */
    CHECK(c, j.out.p ? j.out.p[j.out.n] == '\0' : j.out.n == 0, "op %d: output not terminated",
          (int)j.cmd.op);
    if (j.failed && !c->bad) {
        const char *want = j.format == CLI_FMT_JSON ? "{\"error\":" : "(error) ";
        CHECK(c, j.out.p && !strncmp(j.out.p, want, strlen(want)),
              "op %d failed without an error line: %s", (int)j.cmd.op, j.out.p);
    }
    if (j.cmd.op == CLI_DOT_DUMP && !j.failed && !c->bad)
        check_dump(c, &j.out);
    cli_cmd_free(&j.cmd);
    cli_buf_free(&j.out);
    cli_buf_free(&j.aux);
    cli_buf_free(&j.diag); /* CSV .timer lines */
}

/* The main thread's commands (kv-cli.c run_main_cmd).  false: .quit. */
static bool run_main(struct ctx *c, struct cli_cmd *cmd)
{
    struct cli_shell *sh = &c->sh;
    switch (cmd->op) {
    case CLI_DOT_SESSION:
        if (cmd->a.p) {
            struct cli_session *s = session(c, cmd->a.p);
            if (s)
                sh->cur = s;
        }
        break;
    case CLI_DOT_SESSIONS: {
        struct cli_buf b = {0};
        cli_sessions_describe(sh, &b);
        cli_buf_free(&b);
        break;
    }
    case CLI_DOT_ISOLATION:
    case CLI_DOT_CC: {
        struct cli_session *s = cmd->session ? session(c, cmd->session) : sh->cur;
        if (s && cmd->ival > 0)
            *(cmd->op == CLI_DOT_CC ? &s->cc : &s->isolation) = cmd->ival;
        break;
    }
    case CLI_DOT_TIMER:
        if (cmd->ival >= 0)
            sh->timer = cmd->ival;
        break;
    case CLI_DOT_FORMAT:
        if (cmd->ival >= 0)
            sh->format = (enum cli_format)cmd->ival;
        break;
    case CLI_DOT_QUIT:
        return false;
    default:
        break; /* HELP, .echo: output only */
    }
    return true;
}

/* One statement: false to stop (.quit, or the statement budget). */
static bool statement(struct ctx *c, const struct cli_token *tok, size_t n, size_t linelen)
{
    struct cli_cmd cmd;
    char err[512];
    if (cli_parse(tok, n, &cmd, err, sizeof err) < 0)
        return true;
    bool go = true;
    if (cmd.op == CLI_NONE) {
        CHECK(c, n == 0 && !cmd.session && !cmd.a.p && !cmd.b.p,
              "a statement of %zu tokens parsed as empty", n);
    } else {
        check_cmd(c, &cmd, linelen);
        if (!c->bad)
            check_reprint(c, &cmd);
        bool touches_files =
            cmd.op == CLI_DOT_LOAD || cmd.op == CLI_DOT_READ || (cmd.op == CLI_DOT_DUMP && cmd.a.p);
        if (c->bad || touches_files || cmd.op == CLI_DOT_SLEEP)
            ;
        else if (CLI_OP_IN_SESSION(cmd.op))
            run_in_session(c, &cmd);
        else
            go = run_main(c, &cmd);
    }
    cli_cmd_free(&cmd);
    return go && c->nexec < MAX_STATEMENTS;
}

/* kv-cli.c is_comment */
static bool is_comment(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r'))
        i++;
    return i == n || s[i] == '#' || (i + 1 < n && s[i] == '-' && s[i + 1] == '-');
}

/* One line (kv-cli.c run_line); false to stop. */
static bool line(struct ctx *c, const char *s, size_t n)
{
    if (is_comment(s, n))
        return true;
    struct cli_tokens t = {0};
    char err[256];
    bool go = true;
    if (cli_tokenize(s, n, &t, err, sizeof err) == 0) {
        for (size_t i = 0; i < t.n && !c->bad; i++)
            if (t.v[i].p) {
                CHECK(c, t.v[i].n <= n && t.v[i].p[t.v[i].n] == '\0',
                      "token %zu: %zu bytes from a %zu-byte line, or not terminated", i, t.v[i].n,
                      n);
                check_printers(c, &t.v[i]);
            }
        for (size_t i = 0; i < t.n && go && !c->bad;) {
            size_t e = i;
            while (e < t.n && t.v[e].p)
                e++;
            go = statement(c, t.v + i, e - i, n);
            i = e + 1;
        }
    } else {
        CHECK(c, err[0] != '\0', "cli_tokenize failed without a message");
    }
    cli_tokens_free(&t);
    return go;
}

/* ---- the database across inputs ----------------------------------------- */

static txkv_db *the_db;

static void db_close(void)
{
    if (the_db)
        txkv_close(the_db);
    the_db = NULL;
}

static txkv_db *db_get(void)
{
    static bool registered;
    if (!the_db) {
        txkv_options o;
        txkv_options_init(&o);
        o.lock_timeout_us = 1; /* one thread plays every session: never wait */
        if (txkv_open(&o, &the_db) != 0) {
            the_db = NULL;
            return NULL;
        }
        if (!registered) {
            atexit(db_close);
            registered = true;
        }
    }
    return the_db;
}

/* Deletes every key: the next input starts empty. */
static void db_empty(struct ctx *c, txkv_db *db)
{
    txkv_txn *t;
    txkv_cursor *cur;
    int rc = txkv_begin(db, NULL, &t);
    if (rc == 0 && (rc = txkv_cursor_open(t, NULL, &cur)) == 0) {
        for (rc = txkv_cursor_seek(cur, NULL, 0); rc == 0; rc = txkv_cursor_next(cur)) {
            const void *k;
            size_t kl;
            if ((rc = txkv_cursor_get(cur, &k, &kl, NULL, NULL)) || (rc = txkv_del(t, NULL, k, kl)))
                break;
        }
        txkv_cursor_close(cur);
        if (rc == TXKV_NOTFOUND)
            rc = 0;
    }
    if (t)
        rc = rc ? (txkv_abort(t), rc) : txkv_commit(t);
    CHECK(c, rc == 0, "emptying the database: %s", txkv_strerror(rc));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct ctx ctx;
    struct ctx *c = &ctx;
    memset(c, 0, sizeof *c);
    c->in = data;
    c->insize = size;
    txkv_db *db = db_get();
    if (!db) {
        fuzz_fail("txkv_open failed");
        return 0;
    }
    struct txkv_stats st;
    txkv_stats(db, &st);
    CHECK(c, st.keys == 0 && st.active_txns == 0,
          "the database is not empty at the start: %llu keys, %llu transactions",
          (unsigned long long)st.keys, (unsigned long long)st.active_txns);
    struct cli_shell *sh = &c->sh;
    sh->db = db;
    pthread_mutex_init(&sh->mu, NULL);
    sh->format = CLI_FMT_PLAIN;
    sh->isolation = TXKV_SNAPSHOT;
    sh->cc = TXKV_OPTIMISTIC;
    sh->cur = session(c, "T1");

    for (size_t off = 0; off < size && !c->bad;) {
        const uint8_t *nl = memchr(data + off, '\n', size - off);
        size_t n = nl ? (size_t)(nl - (data + off)) : size - off;
        /* exactly n bytes, no terminator: ASan sees any read past the line */
        char *copy = malloc(n ? n : 1);
        if (!copy)
            abort();
        memcpy(copy, data + off, n);
        bool go = line(c, copy, n);
        free(copy);
        off += n + 1;
        if (!go)
            break;
    }

    for (int i = 0; i < sh->nsessions; i++)
        cli_txn_abandon(sh->sessions[i]); /* the worker's shutdown does this */
    pthread_mutex_destroy(&sh->mu);
    if (fuzz_input_closes(data, size)) {
        db_close();
        return 0;
    }
    db_empty(c, db);
    if (c->bad)
        db_close();
    return 0;
}

/* ---- replay's side: scripts made of kv-cli words -------------------------- */

static uint64_t rnd(uint64_t *st)
{
    uint64_t x = *st ? *st : 0x9e3779b97f4a7c15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *st = x;
    return x * 0x2545f4914f6cdd1dull;
}

static void put_str(uint8_t *buf, size_t *n, size_t cap, const char *s)
{
    size_t l = strlen(s);
    if (*n + l + 2 < cap) {
        memcpy(buf + *n, s, l);
        *n += l;
    }
}

/* clang-format off */
static const char *const words[] = {
    "GET", "PUT", "SET", "DEL", "SCAN", "COUNT", "BEGIN", "COMMIT", "ROLLBACK", "ABORT",
    "STATS", "DEADLOCKS", "LOCKS", "HELP", ".help", ".session", ".sessions", ".isolation",
    ".cc", ".timer", ".format", ".mode", ".echo", ".dump", ".load", ".sleep", ".quit", ".exit",
    "READ", "COMMITTED", "ONLY", "SNAPSHOT", "SERIALIZABLE", "OPTIMISTIC", "PESSIMISTIC",
    "LIMIT", "limit", "read-committed", "2pl", "occ", "on", "off", "json", "csv", "plain",
    "0", "1", "10", "-1", "0.0", "@T2", "@t3", "@", "T2", "quit",
};

/* quoting in all its forms, good and bad */
static const char *const pieces[] = {
    "a", "b", "k1", "key", "\"x y\"", "'lit\\n'", "\"\\x00\\xff\"", "\"\\n\\t\\r\\\\\\\"\"",
    "\"", "'", "\"\\q\"", "\"\\x4\"", "\"caf\\xc3\\xa9\"", "caf\xc3\xa9", "\xff\xfe",
    "#c", "--", "\"LIMIT\"", "''", "\"\"", ";", "x;y", "@x", "\\",
};

/* statements kv-cli accepts; each '%' becomes a key or a piece */
static const char *const templates[] = {
    "GET %", "PUT % %", "SET % %", "DEL %", "SCAN", "SCAN %", "SCAN % %", "SCAN % LIMIT 2",
    "COUNT", "COUNT % %", "BEGIN", "BEGIN SERIALIZABLE", "BEGIN READ COMMITTED PESSIMISTIC",
    "BEGIN SNAPSHOT PESSIMISTIC", "BEGIN READ ONLY", "COMMIT", "ROLLBACK", "STATS", "LOCKS",
    "DEADLOCKS", ".dump", ".sessions", ".session T2", ".session T1", ".isolation serializable",
    ".cc pessimistic", ".cc optimistic", ".format json", ".format csv", ".format plain",
    ".timer on", "@T2 GET %", "@T2 PUT % %", "@T2 BEGIN", "@T2 COMMIT",
    "@T3 BEGIN SERIALIZABLE PESSIMISTIC", "@T3 SCAN", "@T3 PUT % %", "@T3 ROLLBACK",
    "@T2 .isolation read committed", "HELP SCAN",
};
/* clang-format on */

static void put_piece(uint8_t *buf, size_t *n, size_t cap, uint64_t *rng)
{
    static const char *const keys[] = {"a", "b", "c", "k1", "\"x y\"", "\"\\x00\"", "\"LIMIT\""};
    uint64_t x = rnd(rng);
    if (x % 4)
        put_str(buf, n, cap, keys[(x >> 8) % (sizeof keys / sizeof keys[0])]);
    else
        put_str(buf, n, cap, pieces[(x >> 8) % (sizeof pieces / sizeof pieces[0])]);
}

static size_t generate(uint64_t *rng, uint8_t *buf, size_t cap)
{
    size_t n = 0;
    int lines = 1 + (int)(rnd(rng) % 16);
    for (int i = 0; i < lines; i++) {
        uint64_t x = rnd(rng);
        if (x % 8 == 0)
            put_str(buf, &n, cap, x % 16 ? "# " : "-- ");
        int nst = x % 5 == 0 ? 2 : 1; /* statements on the line */
        for (int st = 0; st < nst; st++) {
            if (st)
                put_str(buf, &n, cap, "; ");
            if (rnd(rng) % 4) { /* a well-formed statement */
                const char *t = templates[rnd(rng) % (sizeof templates / sizeof templates[0])];
                for (; *t; t++) {
                    if (*t == '%') {
                        put_piece(buf, &n, cap, rng);
                    } else if (n + 2 < cap) {
                        buf[n++] = (uint8_t)*t;
                    }
                }
                continue;
            }
            int nw = 1 + (int)(rnd(rng) % 5); /* word soup */
            for (int w = 0; w < nw; w++) {
                uint64_t y = rnd(rng);
                if (w)
                    put_str(buf, &n, cap, " ");
                if (w == 0 || y % 3 == 0) {
                    put_str(buf, &n, cap, words[(y >> 8) % (sizeof words / sizeof words[0])]);
                } else {
                    int np = 1 + (int)((y >> 8) % 3); /* adjacent pieces join into one token */
                    for (int p = 0; p < np; p++)
                        put_piece(buf, &n, cap, rng);
                }
            }
        }
        if (n + 1 < cap)
            buf[n++] = '\n';
    }
    /* now and then a stray byte */
    if (n && rnd(rng) % 4 == 0)
        buf[rnd(rng) % n] = (uint8_t)rnd(rng);
    return n;
}

struct fuzz_target fuzz_target = {"fuzz-cli", generate, NULL, NULL};
