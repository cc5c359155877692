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

static int tok_error(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int tok_error(char *err, size_t errsz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
    return -1;
}

int cli_tokenize(const char *s, size_t n, struct cli_tokens *t, char *err, size_t errsz)
{
    struct cli_buf cur = {0};
    size_t i = 0;
    t->n = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
            i++;
            continue;
        }
        if (c == ';') {
            tok_push(t, NULL, 0, 0);
            i++;
            continue;
        }
        /* One token: unquoted runs and quoted pieces until whitespace or ';'. */
        int quoted = 0;
        cur.n = 0;
        cli_buf_put(&cur, "", 0);
        while (i < n) {
            c = (unsigned char)s[i];
            if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' ||
                c == ';')
                break;
            if (c == '\'') {
                size_t start = ++i;
                while (i < n && s[i] != '\'')
                    i++;
                if (i == n) {
                    free(cur.p);
                    return tok_error(err, errsz, "unterminated ' quote");
                }
                cli_buf_put(&cur, s + start, i - start);
                i++;
                quoted = 1;
            } else if (c == '"') {
                i++;
                for (;;) {
                    if (i == n) {
                        free(cur.p);
                        return tok_error(err, errsz, "unterminated \" quote");
                    }
                    c = (unsigned char)s[i++];
                    if (c == '"')
                        break;
                    if (c != '\\') {
                        cli_buf_putc(&cur, c);
                        continue;
                    }
                    if (i == n) {
                        free(cur.p);
                        return tok_error(err, errsz, "unterminated \" quote");
                    }
                    c = (unsigned char)s[i++];
                    switch (c) {
                    case 'n':
                        cli_buf_putc(&cur, '\n');
                        break;
                    case 't':
                        cli_buf_putc(&cur, '\t');
                        break;
                    case 'r':
                        cli_buf_putc(&cur, '\r');
                        break;
                    case '0':
                        cli_buf_putc(&cur, '\0');
                        break;
                    case '\\':
                    case '"':
                    case '\'':
                        cli_buf_putc(&cur, c);
                        break;
                    case 'x': {
                        int h = i < n ? hexval((unsigned char)s[i]) : -1;
                        int l = i + 1 < n ? hexval((unsigned char)s[i + 1]) : -1;
                        if (h < 0 || l < 0) {
                            free(cur.p);
                            return tok_error(err, errsz,
                                             "\\x needs two hex digits (\\x00 to \\xff)");
                        }
                        cli_buf_putc(&cur, h * 16 + l);
                        i += 2;
                        break;
                    }
                    default:
                        free(cur.p);
                        if (isprint(c))
                            return tok_error(err, errsz,
                                             "unknown escape \\%c in \"...\" (use \\\\ for a "
                                             "backslash, or '...' for literal text)",
                                             c);
                        return tok_error(err, errsz, "unknown escape \\x%02x in \"...\"", c);
                    }
                }
                quoted = 1;
            } else {
                cli_buf_putc(&cur, c);
                i++;
            }
        }
        tok_push(t, cli_xmemdup(cur.p, cur.n), cur.n, quoted);
    }
    free(cur.p);
    return 0;
}

void cli_tokens_free(struct cli_tokens *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i].p);
    free(t->v);
    t->v = NULL;
    t->n = t->cap = 0;
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
    {"ROLLBACK", CLI_ROLLBACK, "", "roll back this session's transaction (alias ABORT)", NULL},
    {"ABORT", CLI_ROLLBACK, "", "the same as ROLLBACK", NULL},
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
    {".sleep", CLI_DOT_SLEEP, "SECONDS", "pause this session (for scripts)", NULL},
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

static int perr(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int perr(char *err, size_t errsz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
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

static int usage_err(const struct cli_cmd_info *ci, char *err, size_t errsz)
{
    if (*ci->args)
        return perr(err, errsz, "usage: %s %s", ci->name, ci->args);
    return perr(err, errsz, "%s takes no arguments", ci->name);
}

static int parse_onoff(const struct cli_token *t)
{
    if (!strcasecmp(t->p, "on") || !strcasecmp(t->p, "1") || !strcasecmp(t->p, "yes"))
        return 1;
    if (!strcasecmp(t->p, "off") || !strcasecmp(t->p, "0") || !strcasecmp(t->p, "no"))
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

static int parse_begin(const struct cli_token *tok, size_t n, struct cli_cmd *cmd, char *err,
                       size_t errsz)
{
    memset(&cmd->begin, 0, sizeof cmd->begin); /* 0: the session's defaults */
    for (size_t i = 1; i < n;) {
        const struct cli_token *t = &tok[i];
        int v;
        if (i + 1 < n && is_kw(t, "READ") && is_kw(&tok[i + 1], "ONLY")) {
            if (cmd->begin.flags & TXKV_RDONLY)
                return perr(err, errsz, "BEGIN: READ ONLY given twice");
            cmd->begin.flags |= TXKV_RDONLY;
            i += 2;
        } else if ((v = parse_level(tok, n, &i)) > 0) {
            if (cmd->begin.isolation)
                return perr(err, errsz, "BEGIN: more than one isolation level");
            cmd->begin.isolation = v;
        } else if (!t->quoted && (v = cli_word_cc(t->p)) > 0) {
            if (cmd->begin.cc)
                return perr(err, errsz, "BEGIN: more than one of OPTIMISTIC, PESSIMISTIC");
            cmd->begin.cc = v;
            i++;
        } else {
            return perr(err, errsz,
                        "BEGIN: unexpected '%s' (expected READ COMMITTED, SNAPSHOT, "
                        "SERIALIZABLE, OPTIMISTIC, PESSIMISTIC or READ ONLY)",
                        t->p);
        }
    }
    return 0;
}

/* SCAN/COUNT [from [to]] [LIMIT n] (COUNT: no LIMIT). */
static int parse_range(const struct cli_cmd_info *ci, const struct cli_token *tok, size_t n,
                       struct cli_cmd *cmd, int allow_limit, char *err, size_t errsz)
{
    size_t i = 1, nkeys = 0;
    while (i < n) {
        if (allow_limit && is_kw(&tok[i], "LIMIT")) {
            if (cmd->limit != UINT64_MAX)
                return perr(err, errsz, "%s: LIMIT given twice", ci->name);
            if (i + 1 >= n)
                return perr(err, errsz, "%s: LIMIT needs a number", ci->name);
            const char *s = tok[i + 1].p;
            char *end;
            errno = 0;
            unsigned long long v = strtoull(s, &end, 10);
            if (!isdigit((unsigned char)*s) || *end || errno)
                return perr(err, errsz, "%s: LIMIT needs a number, not '%s'", ci->name, s);
            cmd->limit = v;
            i += 2;
            continue;
        }
        if (cmd->limit != UINT64_MAX || nkeys == 2)
            return usage_err(ci, err, errsz);
        bytes_set(nkeys == 0 ? &cmd->a : &cmd->b, &tok[i]);
        nkeys++;
        i++;
    }
    return 0;
}

int cli_parse(const struct cli_token *tok, size_t n, struct cli_cmd *cmd, char *err, size_t errsz)
{
    memset(cmd, 0, sizeof *cmd);
    cmd->limit = UINT64_MAX;
    cmd->ival = -1;
    if (n > 0 && !tok[0].quoted && tok[0].p[0] == '@') {
        const char *name = tok[0].p + 1;
        if (!*name)
            return perr(err, errsz, "@ needs a session name: @NAME command");
        for (const char *c = name; *c; c++)
            if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-')
                return perr(err, errsz, "bad session name '%s' (letters, digits, '_' and '-' only)",
                            name);
        if (strlen(name) > CLI_NAME_MAX)
            return perr(err, errsz, "session name longer than %d characters", CLI_NAME_MAX);
        cmd->session = cli_xstrdup(name);
        tok++;
        n--;
        if (n == 0) {
            cli_cmd_free(cmd);
            return perr(err, errsz, "@%s needs a command after it", name);
        }
    }
    if (n == 0)
        return 0; /* an empty statement: CLI_NONE */

    const struct cli_cmd_info *ci = cli_command_find(tok[0].p);
    if (!ci) {
        if (!strcasecmp(tok[0].p, "quit") || !strcasecmp(tok[0].p, "exit"))
            perr(err, errsz, "unknown command '%s' (.quit or Ctrl-D leaves kv-cli)", tok[0].p);
        else if (tok[0].p[0] == '.')
            perr(err, errsz, "unknown command '%s' (.help lists the commands)", tok[0].p);
        else
            perr(err, errsz, "unknown command '%s' (HELP lists the commands)", tok[0].p);
        goto fail;
    }
    cmd->op = ci->op;
    switch (ci->op) {
    case CLI_GET:
    case CLI_DEL:
        if (n != 2)
            goto usage;
        bytes_set(&cmd->a, &tok[1]);
        break;
    case CLI_PUT:
        if (n != 3)
            goto usage;
        bytes_set(&cmd->a, &tok[1]);
        bytes_set(&cmd->b, &tok[2]);
        break;
    case CLI_SCAN:
    case CLI_COUNT:
        if (parse_range(ci, tok, n, cmd, ci->op == CLI_SCAN, err, errsz) < 0)
            goto fail;
        break;
    case CLI_BEGIN:
        if (parse_begin(tok, n, cmd, err, errsz) < 0)
            goto fail;
        break;
    case CLI_COMMIT:
    case CLI_ROLLBACK:
    case CLI_STATS:
    case CLI_DEADLOCKS:
    case CLI_LOCKS:
    case CLI_DOT_SESSIONS:
    case CLI_DOT_QUIT:
        if (n != 1)
            goto usage;
        break;
    case CLI_HELP:
        if (n > 2)
            goto usage;
        if (n == 2)
            bytes_set(&cmd->a, &tok[1]);
        break;
    case CLI_DOT_SESSION:
        if (n > 2)
            goto usage;
        if (n == 2) {
            const char *name = tok[1].p;
            if (name[0] == '@')
                name++;
            if (!*name || strlen(name) > CLI_NAME_MAX) {
                perr(err, errsz, "a session name is 1 to %d characters", CLI_NAME_MAX);
                goto fail;
            }
            for (const char *c = name; *c; c++)
                if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-') {
                    perr(err, errsz, "bad session name '%s' (letters, digits, '_' and '-' only)",
                         name);
                    goto fail;
                }
            struct cli_token t = {(char *)name, strlen(name), 0};
            bytes_set(&cmd->a, &t);
        }
        break;
    case CLI_DOT_ISOLATION:
        if (n > 1) {
            size_t i = 1;
            cmd->ival = parse_level(tok, n, &i);
            if (cmd->ival < 0 || i != n) {
                perr(err, errsz, "%s: expected READ COMMITTED, SNAPSHOT or SERIALIZABLE", ci->name);
                goto fail;
            }
        }
        break;
    case CLI_DOT_CC:
        if (n > 2)
            goto usage;
        if (n == 2 && (cmd->ival = cli_word_cc(tok[1].p)) < 0) {
            perr(err, errsz, "%s: expected OPTIMISTIC or PESSIMISTIC, not '%s'", ci->name,
                 tok[1].p);
            goto fail;
        }
        break;
    case CLI_DOT_TIMER:
    case CLI_DOT_ECHO:
        if (n > 2)
            goto usage;
        if (n == 2 && (cmd->ival = parse_onoff(&tok[1])) < 0) {
            perr(err, errsz, "%s: expected on or off, not '%s'", ci->name, tok[1].p);
            goto fail;
        }
        break;
    case CLI_DOT_FORMAT:
        if (n > 2)
            goto usage;
        if (n == 2 && (cmd->ival = cli_word_format(tok[1].p)) < 0) {
            perr(err, errsz, "%s: expected plain, csv or json, not '%s'", ci->name, tok[1].p);
            goto fail;
        }
        break;
    case CLI_DOT_DUMP:
        if (n > 2)
            goto usage;
        if (n == 2)
            bytes_set(&cmd->a, &tok[1]);
        break;
    case CLI_DOT_LOAD:
        if (n != 2)
            goto usage;
        bytes_set(&cmd->a, &tok[1]);
        break;
    case CLI_DOT_SLEEP: {
        char *end;
        if (n != 2)
            goto usage;
        errno = 0;
        cmd->seconds = strtod(tok[1].p, &end);
        if (*end || errno || end == tok[1].p || !(cmd->seconds >= 0 && cmd->seconds <= 3600)) {
            perr(err, errsz, "%s: expected seconds from 0 to 3600, not '%s'", ci->name, tok[1].p);
            goto fail;
        }
        break;
    }
    case CLI_NONE:
    case CLI_SHUTDOWN:
        goto usage;
    }
    if (cmd->session && !CLI_OP_IN_SESSION(cmd->op) && cmd->op != CLI_DOT_ISOLATION &&
        cmd->op != CLI_DOT_CC) {
        perr(err, errsz, "%s does not run in a session; drop the @%s", ci->name, cmd->session);
        goto fail;
    }
    return 0;
usage:
    usage_err(ci, err, errsz);
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
