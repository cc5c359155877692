/*
 * cli-parse.c - kv-cli's command language: tokens, the command table, parsing.
 *
 * Owns the syntax.  A line is tokenized once (quotes decoded, ';' marking
 * statement ends), then each statement is parsed into a struct cli_cmd that
 * owns copies of its bytes, so it can travel to a worker thread while the
 * line is freed.  Quoting follows redis-cli ("..." with C-like escapes,
 * '...' literal) with one shell habit added: adjacent pieces join into one
 * token (key"with space").  A quoted token is never a keyword, which is how
 * SCAN "LIMIT" names a key.
 *
 * The command table below is the one list of commands: the parser, HELP and
 * tab completion all read it, so a command cannot exist without its help.
 * Pure code: no threads, no libtxkv calls.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"

/* ---- tokenizer -------------------------------------------------------- */

/* One line being split: the input, the position, the token being built. */
struct lexer {
    const char *s;
    size_t n, i;
    struct cli_buf cur; /* the current token's decoded bytes */
    char *err;
    size_t errsz;
};

/* Formats a message into err; returns -1 so that error paths can return it. */
static int verr(char *err, size_t errsz, const char *fmt, va_list ap)
{
    vsnprintf(err, errsz, fmt, ap);
    return -1;
}

static int lex_error(struct lexer *lx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int lex_error(struct lexer *lx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr(lx->err, lx->errsz, fmt, ap);
    va_end(ap);
    return -1;
}

static void tok_push(struct cli_tokens *t, char *p, size_t n, int quoted)
{
    t->v = cli_xgrow(t->v, &t->cap, t->n + 1, sizeof *t->v, 16);
    t->v[t->n++] = (struct cli_token){p, n, quoted};
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Token separators: the C locale's whitespace, whatever LC_CTYPE says (main sets it). */
static int is_blank(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* '...' from its opening quote at s[i]: the bytes up to the next ' as they are. */
static int lex_single(struct lexer *lx)
{
    size_t start = ++lx->i;
    while (lx->i < lx->n && lx->s[lx->i] != '\'')
        lx->i++;
    if (lx->i == lx->n)
        return lex_error(lx, "unterminated ' quote");
    cli_buf_put(&lx->cur, lx->s + start, lx->i - start);
    lx->i++;
    return 0;
}

/* The escape after a backslash inside "...", the inverse of cli_quote. */
static int lex_escape(struct lexer *lx)
{
    const char *s = lx->s;
    size_t n = lx->n;
    unsigned char c = (unsigned char)s[lx->i++];
    switch (c) {
    case 'n':
        cli_buf_putc(&lx->cur, '\n');
        return 0;
    case 't':
        cli_buf_putc(&lx->cur, '\t');
        return 0;
    case 'r':
        cli_buf_putc(&lx->cur, '\r');
        return 0;
    case '0':
        cli_buf_putc(&lx->cur, '\0');
        return 0;
    case '\\':
    case '"':
    case '\'':
        cli_buf_putc(&lx->cur, c);
        return 0;
    case 'x': {
        int h = lx->i < n ? hexval((unsigned char)s[lx->i]) : -1;
        int l = lx->i + 1 < n ? hexval((unsigned char)s[lx->i + 1]) : -1;
        if (h < 0 || l < 0)
            return lex_error(lx, "\\x needs two hex digits (\\x00 to \\xff)");
        cli_buf_putc(&lx->cur, h * 16 + l);
        lx->i += 2;
        return 0;
    }
    }
    if (isprint(c))
        return lex_error(lx,
                         "unknown escape \\%c in \"...\" (use \\\\ for a "
                         "backslash, or '...' for literal text)",
                         c);
    return lex_error(lx, "unknown escape \\x%02x in \"...\"", c);
}

/* "..." from its opening quote at s[i], escapes decoded. */
static int lex_double(struct lexer *lx)
{
    lx->i++;
    for (;;) {
        if (lx->i == lx->n)
            return lex_error(lx, "unterminated \" quote");
        unsigned char c = (unsigned char)lx->s[lx->i++];
        if (c == '"')
            return 0;
        if (c != '\\') {
            cli_buf_putc(&lx->cur, c);
            continue;
        }
        if (lx->i == lx->n)
            return lex_error(lx, "unterminated \" quote");
        if (lex_escape(lx) < 0)
            return -1;
    }
}

/* One token into lx->cur: unquoted runs and quoted pieces until whitespace or ';'. */
static int lex_token(struct lexer *lx, int *quoted)
{
    *quoted = 0;
    lx->cur.n = 0;
    cli_buf_put(&lx->cur, "", 0);
    while (lx->i < lx->n) {
        unsigned char c = (unsigned char)lx->s[lx->i];
        if (is_blank(c) || c == ';')
            break;
        if (c == '\'' || c == '"') {
            if ((c == '\'' ? lex_single(lx) : lex_double(lx)) < 0)
                return -1;
            *quoted = 1;
        } else {
            cli_buf_putc(&lx->cur, c);
            lx->i++;
        }
    }
    return 0;
}

int cli_tokenize(const char *s, size_t n, struct cli_tokens *t, char *err, size_t errsz)
{
    struct lexer lx = {.s = s, .n = n, .err = err, .errsz = errsz};
    int rc = 0;
    t->n = 0;
    while (lx.i < n) {
        unsigned char c = (unsigned char)s[lx.i];
        int quoted;
        if (is_blank(c)) {
            lx.i++;
        } else if (c == '#') {
            break; /* a comment to the end of the line, as in a shell: PUT k v # why */
        } else if (c == ';') {
            tok_push(t, NULL, 0, 0);
            lx.i++;
        } else if ((rc = lex_token(&lx, &quoted)) < 0) {
            break;
        } else {
            tok_push(t, cli_xmemdup(lx.cur.p, lx.cur.n), lx.cur.n, quoted);
        }
    }
    cli_buf_free(&lx.cur);
    return rc;
}

void cli_tokens_clear(struct cli_tokens *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i].p);
    t->n = 0;
}

void cli_tokens_free(struct cli_tokens *t)
{
    cli_tokens_clear(t);
    free(t->v);
    t->v = NULL;
    t->cap = 0;
}

size_t cli_statement_len(const struct cli_tokens *t, size_t i)
{
    size_t e = i;
    while (e < t->n && t->v[e].p)
        e++;
    return e - i;
}

int cli_line_is_comment(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r'))
        i++;
    return i == n || s[i] == '#' || (i + 1 < n && s[i] == '-' && s[i + 1] == '-');
}

/* ---- the command table ------------------------------------------------ */

static const struct cli_cmd_info commands[] = {
    {"GET", CLI_GET, "key", "print the value of key, or (nil) if it is absent", NULL},
    {"PUT", CLI_PUT, "key value", "set key to value (alias SET)", NULL},
    {"SET", CLI_PUT, "key value", "the same as PUT", NULL},
    {"DEL", CLI_DEL, "key", "delete key (an absent key is fine)", NULL},
    {"SCAN", CLI_SCAN, "[from [to]] [LIMIT n]", "list keys and values in order, from <= key < to",
     "  Keys are ordered bytewise (memcmp).  A quoted \"LIMIT\" is a key, not the\n"
     "  keyword.  An empty result prints (empty)."},
    {"COUNT", CLI_COUNT, "[from [to]]", "count the keys, from <= key < to", NULL},
    {"BEGIN", CLI_BEGIN, "[level] [OPTIMISTIC | PESSIMISTIC] [READ ONLY]",
     "start a transaction in this session",
     "  level is READ COMMITTED, SNAPSHOT or SERIALIZABLE.\n"
     "  Without options the session's defaults apply (.isolation, .cc).  Until\n"
     "  COMMIT or ROLLBACK every command of the session runs in it; the prompt\n"
     "  shows * (in a transaction) or ! (failed: only ROLLBACK or COMMIT help).\n"
     "  Outside BEGIN each command is its own transaction (autocommit), retried\n"
     "  a few times when it fails with a retryable error."},
    {"COMMIT", CLI_COMMIT, "", "commit this session's transaction", NULL},
    {"ROLLBACK", CLI_ROLLBACK, "[TO [SAVEPOINT] name]",
     "roll back this session's transaction (alias ABORT), or to a savepoint",
     "  ROLLBACK TO name undoes the writes made since SAVEPOINT name; the\n"
     "  transaction stays open, reads and locks are kept, and name remains (the\n"
     "  savepoints taken after it are forgotten)."},
    {"ABORT", CLI_ROLLBACK, "[TO [SAVEPOINT] name]", "the same as ROLLBACK", NULL},
    {"SAVEPOINT", CLI_SAVEPOINT, "name", "mark a point of this transaction to roll back to",
     "  Savepoints nest; a name given again marks a new point, and ROLLBACK TO\n"
     "  and RELEASE use the newest of that name.  Inside a transaction only."},
    {"RELEASE", CLI_RELEASE, "[SAVEPOINT] name",
     "forget savepoint name and those after it (their writes stay)", NULL},
    {"STATS", CLI_STATS, "", "print the database's counters", NULL},
    {"DEADLOCKS", CLI_DEADLOCKS, "", "show the last deadlocks and their victims",
     "  For each deadlock the pessimistic lock manager detected (the last 16):\n"
     "  the transactions of the cycle, by session and transaction id, the key\n"
     "  each one was waiting for, and the victim, which failed with DEADLOCK."},
    {"LOCKS", CLI_LOCKS, "", "show who holds and who waits for which key",
     "  One line per lock held or requested, in key order:\n"
     "      T2 (txn 7) X \"k1\" held\n"
     "      T1 (txn 6) X \"k1\" waiting\n"
     "      T3 (txn 9) RANGE [\"a\", +inf) held\n"
     "  by session and transaction id; S is shared (a SERIALIZABLE read), X\n"
     "  exclusive (a write), RANGE a SERIALIZABLE PESSIMISTIC scan's key range\n"
     "  (lo <= key <= hi).  Keys longer than 32 bytes are cut, marked \"...\".\n"
     "  A blocked session queues it: run it in another one (@NAME LOCKS).\n"
     "  No locks prints (empty)."},
    {"HELP", CLI_HELP, "[command]", "list the commands, or explain one", NULL},
    {".help", CLI_HELP, "[command]", "the same as HELP", NULL},
    {".session", CLI_DOT_SESSION, "[NAME]", "switch to session NAME, creating it",
     "  Without NAME, print the current session.  Each session is its own\n"
     "  transaction context on its own thread.\n"
     "  \"@NAME command\" runs one command in session NAME without switching;\n"
     "  its output lines start with [NAME].  A command that has not finished\n"
     "  after a moment (a lock wait) is reported \"[NAME] blocked\"; its result\n"
     "  is printed when it arrives and the shell goes on meanwhile."},
    {".sessions", CLI_DOT_SESSIONS, "", "list the sessions and their transaction states", NULL},
    {".isolation", CLI_DOT_ISOLATION, "[READ COMMITTED | SNAPSHOT | SERIALIZABLE]",
     "set or show this session's default isolation", NULL},
    {".cc", CLI_DOT_CC, "[OPTIMISTIC | PESSIMISTIC]", "set or show this session's default scheme",
     NULL},
    {".checkpoint", CLI_DOT_CHECKPOINT, "",
     "write a checkpoint (a database opened from a directory)",
     "  Writes every keyspace's keys from one snapshot to a checkpoint file in\n"
     "  the database's directory; the log it covers is removed.  Other\n"
     "  sessions' transactions go on meanwhile.  In memory: INVALID."},
    {".info", CLI_DOT_INFO, "", "show the database's directory, sync policy and log size",
     "  database (the directory, or \"(in memory)\"), then for a directory:\n"
     "  sync (commit, interval or none), log_bytes (log written since the last\n"
     "  checkpoint), checkpoint_ts (commit timestamp of the newest checkpoint,\n"
     "  0 if none) and recovered_bytes_dropped (a torn log tail cut at open)."},
    {".timer", CLI_DOT_TIMER, "on|off", "show how long each command took", NULL},
    {".format", CLI_DOT_FORMAT, "plain|csv|json", "choose the output format", NULL},
    {".mode", CLI_DOT_FORMAT, "plain|csv|json", "the same as .format (as in sqlite3)", NULL},
    {".echo", CLI_DOT_ECHO, "on|off", "print each input line before running it", NULL},
    {".dump", CLI_DOT_DUMP, "[FILE]", "write all keys and values to FILE (or stdout)",
     "  The dump is text: a comment line, then one line per key in key order,\n"
     "      PUT \"key\" \"value\"\n"
     "  with \\n \\t \\r \\\\ \\\" and \\xHH escapes (bytes >= 0x80 as \\xHH), so\n"
     "  binary keys and values survive.  Inside a transaction it dumps what the\n"
     "  transaction sees."},
    {".load", CLI_DOT_LOAD, "FILE", "load a dump file in one transaction",
     "  Lines are PUT or SET commands in kv-cli's quoting, blank lines and\n"
     "  comments (# or --).  The file is checked before anything is written; it\n"
     "  loads in the session's open transaction, or else in one transaction of\n"
     "  its own."},
    {".read", CLI_DOT_READ, "FILE", "run the commands in FILE, as -f does",
     "  FILE's lines run as if typed here, in the current session; .read may\n"
     "  nest.  Errors name the file and the line: (error) NAME: FILE:LINE: ...\n"
     "  A relative FILE is found from kv-cli's working directory."},
    {".sleep", CLI_DOT_SLEEP, "SECONDS", "pause this session (for scripts)",
     "  A session that sleeps longer than --wait is reported \"sleeping\"; the\n"
     "  shell goes on meanwhile."},
    {".quit", CLI_DOT_QUIT, "", "leave kv-cli (also .exit and Ctrl-D)", NULL},
    {".exit", CLI_DOT_QUIT, "", "the same as .quit", NULL},
};

const struct cli_cmd_info *cli_commands(size_t *n)
{
    *n = sizeof commands / sizeof commands[0];
    return commands;
}

const struct cli_cmd_info *cli_command_find(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcasecmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* ---- words ------------------------------------------------------------ */

/* s lowercased without '-', '_' and spaces into out; 0, or -1 if too long. */
static int norm_word(const char *s, char *out, size_t outsz)
{
    size_t j = 0;
    for (; *s; s++) {
        if (*s == '-' || *s == '_' || *s == ' ')
            continue;
        if (j + 1 >= outsz)
            return -1;
        out[j++] = (char)tolower((unsigned char)*s);
    }
    out[j] = '\0';
    return 0;
}

int cli_word_isolation(const char *s)
{
    char w[32];
    if (norm_word(s, w, sizeof w) < 0)
        return -1;
    if (!strcmp(w, "readcommitted") || !strcmp(w, "rc"))
        return TXKV_READ_COMMITTED;
    if (!strcmp(w, "snapshot") || !strcmp(w, "si"))
        return TXKV_SNAPSHOT;
    if (!strcmp(w, "serializable") || !strcmp(w, "ser"))
        return TXKV_SERIALIZABLE;
    return -1;
}

int cli_word_cc(const char *s)
{
    char w[32];
    if (norm_word(s, w, sizeof w) < 0)
        return -1;
    if (!strcmp(w, "optimistic") || !strcmp(w, "occ"))
        return TXKV_OPTIMISTIC;
    if (!strcmp(w, "pessimistic") || !strcmp(w, "2pl"))
        return TXKV_PESSIMISTIC;
    return -1;
}

int cli_word_format(const char *s)
{
    if (!strcasecmp(s, "plain"))
        return CLI_FMT_PLAIN;
    if (!strcasecmp(s, "csv"))
        return CLI_FMT_CSV;
    if (!strcasecmp(s, "json"))
        return CLI_FMT_JSON;
    return -1;
}

const char *cli_isolation_name(int iso)
{
    switch (iso) {
    case TXKV_READ_COMMITTED:
        return "READ COMMITTED";
    case TXKV_SNAPSHOT:
        return "SNAPSHOT";
    case TXKV_SERIALIZABLE:
        return "SERIALIZABLE";
    }
    return "?";
}

const char *cli_cc_name(int cc)
{
    return cc == TXKV_OPTIMISTIC ? "OPTIMISTIC" : cc == TXKV_PESSIMISTIC ? "PESSIMISTIC" : "?";
}

const char *cli_format_name(int f)
{
    return f == CLI_FMT_CSV ? "csv" : f == CLI_FMT_JSON ? "json" : "plain";
}

int cli_parse_size(const char *s, size_t *out)
{
    char *end;
    if (!*s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    int shift = 0;
    switch (tolower((unsigned char)*end)) {
    case '\0':
        break;
    case 'k':
        shift = 10;
        break;
    case 'm':
        shift = 20;
        break;
    case 'g':
        shift = 30;
        break;
    case 't':
        shift = 40;
        break;
    default:
        return -1;
    }
    if (*end) {
        end++;
        if (tolower((unsigned char)*end) == 'i')
            end++;
        if (tolower((unsigned char)*end) == 'b')
            end++;
        if (*end)
            return -1;
    }
    if (shift && v > (~0ull >> shift))
        return -1;
    v <<= shift;
    if (v > (size_t)-1)
        return -1;
    *out = (size_t)v;
    return 0;
}

/* ---- parser ----------------------------------------------------------- */

/* One statement being parsed: its tokens (tok[0] the command name once ci is set). */
struct pstate {
    const struct cli_cmd_info *ci;
    const struct cli_token *tok;
    size_t n;
    struct cli_cmd *cmd;
    char *err;
    size_t errsz;
};

static int perr(struct pstate *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int perr(struct pstate *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr(p->err, p->errsz, fmt, ap);
    va_end(ap);
    return -1;
}

static void bytes_set(struct cli_bytes *b, const struct cli_token *t)
{
    b->p = cli_xmemdup(t->p, t->n);
    b->n = t->n;
}

/* An unquoted token equal to kw, case-insensitively. */
static int is_kw(const struct cli_token *t, const char *kw)
{
    return !t->quoted && strcasecmp(t->p, kw) == 0;
}

static int usage_err(struct pstate *p)
{
    if (*p->ci->args)
        return perr(p, "usage: %s %s", p->ci->name, p->ci->args);
    return perr(p, "%s takes no arguments", p->ci->name);
}

/* 0 if name has only letters, digits, '_' and '-'; else -1 with the message. */
static int check_name_chars(struct pstate *p, const char *name)
{
    for (const char *c = name; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-')
            return perr(p, "bad session name '%s' (letters, digits, '_' and '-' only)", name);
    return 0;
}

static int parse_onoff(const char *s)
{
    if (!strcasecmp(s, "on") || !strcasecmp(s, "1") || !strcasecmp(s, "yes"))
        return 1;
    if (!strcasecmp(s, "off") || !strcasecmp(s, "0") || !strcasecmp(s, "no"))
        return 0;
    return -1;
}

/*
 * An isolation level from tok[*i...]: READ COMMITTED (two words) or one word.
 * Advances *i past it and returns the level, or -1 (nothing consumed).
 */
static int parse_level(const struct cli_token *tok, size_t n, size_t *i)
{
    if (*i + 1 < n && is_kw(&tok[*i], "READ") && is_kw(&tok[*i + 1], "COMMITTED")) {
        *i += 2;
        return TXKV_READ_COMMITTED;
    }
    int iso = tok[*i].quoted ? -1 : cli_word_isolation(tok[*i].p);
    if (iso > 0)
        (*i)++;
    return iso;
}

/*
 * The argument parsers, one per shape of arguments; parsers[] below maps
 * each op to its own.  Each fills p->cmd and returns 0, or -1 with a message.
 */

/* COMMIT, ROLLBACK, STATS, ...: nothing after the name. */
static int args_none(struct pstate *p)
{
    return p->n != 1 ? usage_err(p) : 0;
}

/* ROLLBACK [TO [SAVEPOINT] name]: ROLLBACK TO is its own op. */
static int args_rollback(struct pstate *p)
{
    const struct cli_token *t = p->tok;
    if (p->n == 1)
        return 0;
    size_t i = 2;
    if (p->n < 3 || !is_kw(&t[1], "TO"))
        return usage_err(p);
    if (p->n == 4 && is_kw(&t[2], "SAVEPOINT"))
        i = 3;
    if (i + 1 != p->n)
        return usage_err(p);
    p->cmd->op = CLI_ROLLBACK_TO;
    bytes_set(&p->cmd->a, &t[i]);
    return 0;
}

/* RELEASE [SAVEPOINT] name. */
static int args_release(struct pstate *p)
{
    size_t i = p->n == 3 && is_kw(&p->tok[1], "SAVEPOINT") ? 2 : 1;
    if (i + 1 != p->n)
        return usage_err(p);
    bytes_set(&p->cmd->a, &p->tok[i]);
    return 0;
}

/* GET key, DEL key, .load FILE. */
static int args_one(struct pstate *p)
{
    if (p->n != 2)
        return usage_err(p);
    bytes_set(&p->cmd->a, &p->tok[1]);
    return 0;
}

/* HELP [command], .dump [FILE]. */
static int args_optional_one(struct pstate *p)
{
    if (p->n > 2)
        return usage_err(p);
    if (p->n == 2)
        bytes_set(&p->cmd->a, &p->tok[1]);
    return 0;
}

/* PUT key value. */
static int args_put(struct pstate *p)
{
    if (p->n != 3)
        return usage_err(p);
    bytes_set(&p->cmd->a, &p->tok[1]);
    bytes_set(&p->cmd->b, &p->tok[2]);
    return 0;
}

/* LIMIT n at tok[*i] (*i is on the LIMIT keyword); advances *i past n. */
static int range_limit(struct pstate *p, size_t *i)
{
    const char *name = p->ci->name;
    if (p->cmd->limit != UINT64_MAX)
        return perr(p, "%s: LIMIT given twice", name);
    if (*i + 1 >= p->n)
        return perr(p, "%s: LIMIT needs a number", name);
    const char *s = p->tok[*i + 1].p;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!isdigit((unsigned char)*s) || *end || errno)
        return perr(p, "%s: LIMIT needs a number, not '%s'", name, s);
    p->cmd->limit = v;
    *i += 2;
    return 0;
}

/* SCAN/COUNT [from [to]] [LIMIT n] (COUNT: no LIMIT). */
static int args_range(struct pstate *p)
{
    int allow_limit = p->ci->op == CLI_SCAN;
    size_t i = 1, nkeys = 0;
    while (i < p->n) {
        if (allow_limit && is_kw(&p->tok[i], "LIMIT")) {
            if (range_limit(p, &i) < 0)
                return -1;
            continue;
        }
        if (p->cmd->limit != UINT64_MAX || nkeys == 2)
            return usage_err(p);
        bytes_set(nkeys == 0 ? &p->cmd->a : &p->cmd->b, &p->tok[i]);
        nkeys++;
        i++;
    }
    return 0;
}

static int args_begin(struct pstate *p)
{
    const struct cli_token *tok = p->tok;
    txkv_txn_options *o = &p->cmd->begin;
    memset(o, 0, sizeof *o); /* 0: the session's defaults */
    for (size_t i = 1; i < p->n;) {
        const struct cli_token *t = &tok[i];
        int v;
        if (i + 1 < p->n && is_kw(t, "READ") && is_kw(&tok[i + 1], "ONLY")) {
            if (o->flags & TXKV_RDONLY)
                return perr(p, "BEGIN: READ ONLY given twice");
            o->flags |= TXKV_RDONLY;
            i += 2;
        } else if ((v = parse_level(tok, p->n, &i)) > 0) {
            if (o->isolation)
                return perr(p, "BEGIN: more than one isolation level");
            o->isolation = v;
        } else if (!t->quoted && (v = cli_word_cc(t->p)) > 0) {
            if (o->cc)
                return perr(p, "BEGIN: more than one of OPTIMISTIC, PESSIMISTIC");
            o->cc = v;
            i++;
        } else {
            return perr(p,
                        "BEGIN: unexpected '%s' (expected READ COMMITTED, SNAPSHOT, "
                        "SERIALIZABLE, OPTIMISTIC, PESSIMISTIC or READ ONLY)",
                        t->p);
        }
    }
    return 0;
}

/* .session [NAME]; NAME may carry the '@' of "@NAME command". */
static int args_session(struct pstate *p)
{
    if (p->n > 2)
        return usage_err(p);
    if (p->n == 1)
        return 0;
    const char *name = p->tok[1].p;
    if (name[0] == '@')
        name++;
    if (!*name || strlen(name) > CLI_NAME_MAX)
        return perr(p, "a session name is 1 to %d characters", CLI_NAME_MAX);
    if (check_name_chars(p, name) < 0)
        return -1;
    struct cli_token t = {(char *)name, strlen(name), 0};
    bytes_set(&p->cmd->a, &t);
    return 0;
}

static int args_isolation(struct pstate *p)
{
    if (p->n > 1) {
        size_t i = 1;
        p->cmd->ival = parse_level(p->tok, p->n, &i);
        if (p->cmd->ival < 0 || i != p->n)
            return perr(p, "%s: expected READ COMMITTED, SNAPSHOT or SERIALIZABLE", p->ci->name);
    }
    return 0;
}

/* A setting with one optional word: ival = word(tok[1]), or -1 (show) without it. */
static int args_setting(struct pstate *p, int (*word)(const char *), const char *expected)
{
    if (p->n > 2)
        return usage_err(p);
    if (p->n == 2 && (p->cmd->ival = word(p->tok[1].p)) < 0)
        return perr(p, "%s: expected %s, not '%s'", p->ci->name, expected, p->tok[1].p);
    return 0;
}

static int args_cc(struct pstate *p)
{
    return args_setting(p, cli_word_cc, "OPTIMISTIC or PESSIMISTIC");
}

static int args_onoff(struct pstate *p)
{
    return args_setting(p, parse_onoff, "on or off");
}

static int args_format(struct pstate *p)
{
    return args_setting(p, cli_word_format, "plain, csv or json");
}

static int args_sleep(struct pstate *p)
{
    struct cli_cmd *cmd = p->cmd;
    const char *s;
    char *end;
    if (p->n != 2)
        return usage_err(p);
    s = p->tok[1].p;
    errno = 0;
    cmd->seconds = strtod(s, &end);
    if (*end || errno || end == s || !(cmd->seconds >= 0 && cmd->seconds <= 3600))
        return perr(p, "%s: expected seconds from 0 to 3600, not '%s'", p->ci->name, s);
    return 0;
}

/* Each op's argument parser; NULL (CLI_NONE, CLI_SHUTDOWN): not a command one can type. */
static int (*const parsers[])(struct pstate *) = {
    [CLI_GET] = args_one,
    [CLI_DEL] = args_one,
    [CLI_PUT] = args_put,
    [CLI_SCAN] = args_range,
    [CLI_COUNT] = args_range,
    [CLI_BEGIN] = args_begin,
    [CLI_COMMIT] = args_none,
    [CLI_ROLLBACK] = args_rollback,
    [CLI_SAVEPOINT] = args_one,
    [CLI_RELEASE] = args_release,
    [CLI_STATS] = args_none,
    [CLI_DOT_CHECKPOINT] = args_none,
    [CLI_DOT_INFO] = args_none,
    [CLI_DEADLOCKS] = args_none,
    [CLI_LOCKS] = args_none,
    [CLI_DOT_SESSIONS] = args_none,
    [CLI_DOT_QUIT] = args_none,
    [CLI_HELP] = args_optional_one,
    [CLI_DOT_DUMP] = args_optional_one,
    [CLI_DOT_LOAD] = args_one,
    [CLI_DOT_READ] = args_one,
    [CLI_DOT_SESSION] = args_session,
    [CLI_DOT_ISOLATION] = args_isolation,
    [CLI_DOT_CC] = args_cc,
    [CLI_DOT_TIMER] = args_onoff,
    [CLI_DOT_ECHO] = args_onoff,
    [CLI_DOT_FORMAT] = args_format,
    [CLI_DOT_SLEEP] = args_sleep,
};

/* "@NAME command": takes the @NAME token off p's statement into cmd->session. */
static int parse_at_session(struct pstate *p)
{
    const char *name = p->tok[0].p + 1;
    if (!*name)
        return perr(p, "@ needs a session name: @NAME command");
    if (check_name_chars(p, name) < 0)
        return -1;
    if (strlen(name) > CLI_NAME_MAX)
        return perr(p, "session name longer than %d characters", CLI_NAME_MAX);
    p->cmd->session = cli_xstrdup(name);
    p->tok++;
    p->n--;
    if (p->n == 0)
        return perr(p, "@%s needs a command after it", name);
    return 0;
}

static int unknown_command(struct pstate *p)
{
    const char *name = p->tok[0].p;
    if (!strcasecmp(name, "quit") || !strcasecmp(name, "exit"))
        return perr(p, "unknown command '%s' (.quit or Ctrl-D leaves kv-cli)", name);
    if (name[0] == '.')
        return perr(p, "unknown command '%s' (.help lists the commands)", name);
    return perr(p, "unknown command '%s' (HELP lists the commands)", name);
}

/* The command found in the table, its arguments, and whether @NAME may prefix it. */
static int parse_command(struct pstate *p)
{
    struct cli_cmd *cmd = p->cmd;
    p->ci = cli_command_find(p->tok[0].p);
    if (!p->ci)
        return unknown_command(p);
    cmd->op = p->ci->op;
    int (*args)(struct pstate *) =
        (size_t)cmd->op < sizeof parsers / sizeof parsers[0] ? parsers[cmd->op] : NULL;
    if ((args ? args(p) : usage_err(p)) < 0)
        return -1;
    /* .isolation and .cc run on the main thread but set a session's defaults */
    if (cmd->session && !CLI_OP_IN_SESSION(cmd->op) && cmd->op != CLI_DOT_ISOLATION &&
        cmd->op != CLI_DOT_CC)
        return perr(p, "%s does not run in a session; drop the @%s", p->ci->name, cmd->session);
    return 0;
}

int cli_parse(const struct cli_token *tok, size_t n, struct cli_cmd *cmd, char *err, size_t errsz)
{
    struct pstate p = {NULL, tok, n, cmd, err, errsz};
    memset(cmd, 0, sizeof *cmd);
    cmd->limit = UINT64_MAX;
    cmd->ival = -1;
    if (n > 0 && !tok[0].quoted && tok[0].p[0] == '@' && parse_at_session(&p) < 0)
        goto fail;
    if (p.n == 0)
        return 0; /* an empty statement: CLI_NONE */
    if (parse_command(&p) < 0)
        goto fail;
    return 0;
fail:
    cli_cmd_free(cmd);
    return -1;
}

void cli_cmd_free(struct cli_cmd *cmd)
{
    free(cmd->session);
    free(cmd->a.p);
    free(cmd->b.p);
    cmd->session = cmd->a.p = cmd->b.p = NULL;
    cmd->op = CLI_NONE;
}
