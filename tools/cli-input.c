/*
 * cli-input.c - where kv-cli's lines come from: libedit on a terminal, plain
 * reads otherwise.
 *
 * Both readers wait with poll() on the input and on the sessions' self-pipe,
 * so a result that arrives while the shell waits for a line (a blocked
 * command that finished) is printed at once instead of at the next Enter.
 * With libedit this happens inside our read-character function (EL_GETCFN):
 * clear the line being edited, print, and let libedit redraw the prompt
 * (EL_REFRESH), the way readline programs use rl_on_new_line.
 *
 * Ctrl-C cancels the line being typed, not the shell: SIGINT only sets a
 * flag, poll() returns EINTR, and the read function hands libedit a ^C that
 * is bound to "kv-cancel".  Ctrl-D on an empty line ends input.
 *
 * Main thread only.  libedit's History keeps the file kv-cli names
 * (~/.kvcli_history, or $KVCLI_HISTORY, "" for none); Tab completes command
 * names from cli-parse.c's command table, @session names, and the keywords
 * that may follow a command (arg_words below).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <histedit.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wchar.h>

#include "cli.h"

struct cli_input {
    int fd, notify_fd;
    cli_notify_fn notify;
    void *arg;
    /* plain reader */
    char *buf;
    size_t len, off, cap;
    int eof;
    /* libedit */
    EditLine *el;
    History *hist;
    char *histfile;
    cli_prompt_fn prompt;
    struct cli_shell *sh;
    int cancelled;
    unsigned char mb[MB_LEN_MAX];
    size_t mbn;
};

static volatile sig_atomic_t got_sigint;

static void on_sigint(int sig)
{
    (void)sig;
    got_sigint = 1;
}

/* ---- plain reader ----------------------------------------------------- */

struct cli_input *cli_input_fd(int fd, const struct cli_input_hooks *h)
{
    struct cli_input *in = cli_xmalloc(sizeof *in);
    struct stat st;
    memset(in, 0, sizeof *in);
    in->fd = fd;
    /* A file is always readable: results can wait for the next line's drain. */
    in->notify_fd = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? -1 : h->notify_fd;
    in->notify = h->notify;
    in->arg = h->arg;
    return in;
}

static int fd_line(struct cli_input *in, char **line, size_t *len)
{
    for (;;) {
        char *nl = in->len > in->off ? memchr(in->buf + in->off, '\n', in->len - in->off) : NULL;
        if (nl || (in->eof && in->off < in->len)) {
            size_t n = nl ? (size_t)(nl - (in->buf + in->off)) : in->len - in->off;
            *line = cli_xmemdup(in->buf + in->off, n);
            *len = n;
            in->off += n + (nl ? 1 : 0);
            return 1;
        }
        if (in->eof)
            return 0;
        if (in->off > 0) {
            memmove(in->buf, in->buf + in->off, in->len - in->off);
            in->len -= in->off;
            in->off = 0;
        }
        in->buf = cli_xgrow(in->buf, &in->cap, in->len + 4096, 1, 65536);
        if (in->notify_fd >= 0) {
            struct pollfd p[2] = {{in->fd, POLLIN, 0}, {in->notify_fd, POLLIN, 0}};
            if (poll(p, 2, -1) < 0) {
                if (errno == EINTR)
                    continue;
                in->eof = 1;
                continue;
            }
            if (p[1].revents & POLLIN) {
                cli_pipe_drain(in->notify_fd);
                in->notify(in->arg);
            }
            if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
        }
        ssize_t r = read(in->fd, in->buf + in->len, in->cap - in->len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            fprintf(stderr, "kv-cli: read error: %s\n", strerror(errno));
        if (r <= 0)
            in->eof = 1;
        else
            in->len += (size_t)r;
    }
}

/* ---- libedit ---------------------------------------------------------- */

static struct cli_input *el_input(EditLine *el)
{
    void *p = NULL;
    el_get(el, EL_CLIENTDATA, &p);
    return p;
}

static char *edit_prompt(EditLine *el)
{
    struct cli_input *in = el_input(el);
    return (char *)in->prompt(in->arg);
}

/* libedit's read function: one character from the terminal, printing async results. */
static int edit_getc(EditLine *el, wchar_t *wc)
{
    struct cli_input *in = el_input(el);
    for (;;) {
        if (in->mbn > 0) {
            mbstate_t st;
            memset(&st, 0, sizeof st);
            size_t r = mbrtowc(wc, (const char *)in->mb, in->mbn, &st);
            if (r == (size_t)-2 && in->mbn < sizeof in->mb) {
                /* an incomplete sequence: read on */
            } else {
                if (r == (size_t)-1 || r == (size_t)-2) {
                    *wc = in->mb[0]; /* not in the locale's charset: the byte itself */
                    r = 1;
                } else if (r == 0) {
                    r = 1;
                }
                memmove(in->mb, in->mb + r, in->mbn - r);
                in->mbn -= r;
                return 1;
            }
        }
        struct pollfd p[2] = {{in->fd, POLLIN, 0}, {in->notify_fd, POLLIN, 0}};
        int r = poll(p, in->notify_fd >= 0 ? 2 : 1, -1);
        if (r < 0 && errno == EINTR) {
            if (got_sigint) {
                got_sigint = 0;
                *wc = 3; /* ^C, bound to kv-cancel */
                return 1;
            }
            continue;
        }
        if (r < 0)
            return -1;
        if (in->notify_fd >= 0 && (p[1].revents & POLLIN)) {
            cli_pipe_drain(in->notify_fd);
            fputs("\r\033[K", stdout);
            fflush(stdout);
            in->notify(in->arg);
            el_set(el, EL_REFRESH);
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t k = read(in->fd, in->mb + in->mbn, 1);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0)
                return k == 0 ? 0 : -1;
            in->mbn++;
        }
    }
}

/*
 * Ctrl-C: show "^C" at the end of the line and end it with a pushed newline,
 * so libedit moves to a fresh line as for Enter; edit_line drops the line.
 */
static unsigned char edit_cancel(EditLine *el, int ch)
{
    (void)ch;
    const LineInfo *li = el_line(el);
    el_cursor(el, (int)(li->lastchar - li->cursor));
    el_insertstr(el, "^C");
    el_push(el, "\n");
    el_input(el)->cancelled = 1;
    return CC_REFRESH;
}

/* ---- completion ------------------------------------------------------- */

struct cands {
    const char *v[128];
    int n;
};

static void cand_add(struct cands *c, const char *w, const char *prefix, size_t plen)
{
    if (c->n == (int)(sizeof c->v / sizeof c->v[0]) || strncasecmp(w, prefix, plen) != 0)
        return;
    for (int i = 0; i < c->n; i++)
        if (strcasecmp(c->v[i], w) == 0)
            return;
    c->v[c->n++] = w;
}

/* Candidates among words, a NULL-terminated list. */
static void add_words(struct cands *c, const char *const *words, const char *p, size_t pl)
{
    for (; *words; words++)
        cand_add(c, *words, p, pl);
}

static void add_commands(struct cands *c, const char *p, size_t pl)
{
    size_t n;
    const struct cli_cmd_info *cmds = cli_commands(&n);
    for (size_t i = 0; i < n; i++)
        cand_add(c, cmds[i].name, p, pl);
}

static void add_sessions(struct cands *c, const struct cli_shell *sh, const char *p, size_t pl)
{
    for (int i = 0; i < sh->nsessions; i++)
        cand_add(c, sh->sessions[i]->name, p, pl);
}

static const char *const begin_words[] = {"READ",       "COMMITTED",   "SNAPSHOT", "SERIALIZABLE",
                                          "OPTIMISTIC", "PESSIMISTIC", "ONLY",     NULL};
static const char *const level_words[] = {"READ", "COMMITTED", "SNAPSHOT", "SERIALIZABLE", NULL};
static const char *const cc_words[] = {"OPTIMISTIC", "PESSIMISTIC", NULL};
static const char *const onoff_words[] = {"on", "off", NULL};
static const char *const format_words[] = {"plain", "csv", "json", NULL};
static const char *const rollback_words[] = {"TO", "SAVEPOINT", NULL};
static const char *const release_words[] = {"SAVEPOINT", NULL};

/* The keywords that may follow each command; session and command names are added live. */
static const struct {
    enum cli_op op;
    const char *const *words;
} arg_words[] = {
    {CLI_BEGIN, begin_words},       {CLI_DOT_ISOLATION, level_words},
    {CLI_DOT_CC, cc_words},         {CLI_DOT_TIMER, onoff_words},
    {CLI_DOT_ECHO, onoff_words},    {CLI_DOT_FORMAT, format_words},
    {CLI_ROLLBACK, rollback_words}, {CLI_RELEASE, release_words},
};

/* Candidates for a word after the command named first. */
static void add_args(struct cands *c, const struct cli_shell *sh, const char *first, const char *p,
                     size_t pl)
{
    const struct cli_cmd_info *ci = cli_command_find(first);
    enum cli_op op = ci ? ci->op : CLI_NONE;
    if (op == CLI_DOT_SESSION)
        add_sessions(c, sh, p, pl);
    else if (op == CLI_HELP)
        add_commands(c, p, pl);
    for (size_t i = 0; i < sizeof arg_words / sizeof arg_words[0]; i++)
        if (arg_words[i].op == op)
            add_words(c, arg_words[i].words, p, pl);
}

/*
 * The rest of w after the typed prefix (plen bytes), in the case of the last
 * letter the user typed: "beg" -> "in", "BEG" -> "IN", "Se" -> "rializable".
 */
static void rest_in_case(const char *w, const char *prefix, size_t plen, size_t upto, char *out,
                         size_t outsz)
{
    int lower = -1;
    for (size_t i = 0; i < plen; i++)
        if (isalpha((unsigned char)prefix[i]))
            lower = islower((unsigned char)prefix[i]) != 0;
    size_t j = 0;
    for (size_t i = plen; w[i] && i < upto && j + 1 < outsz; i++)
        out[j++] = lower == 1   ? (char)tolower((unsigned char)w[i])
                   : lower == 0 ? (char)toupper((unsigned char)w[i])
                                : w[i];
    out[j] = '\0';
}

/*
 * How many words come before the one at w in the statement that starts at
 * stmt, not counting an @NAME first; the first of them goes into first.
 */
static int words_before(const char *stmt, const char *w, char *first, size_t firstsz)
{
    int nwords = 0;
    for (const char *p = stmt; p < w;) {
        while (p < w && isspace((unsigned char)*p))
            p++;
        const char *q = p;
        while (q < w && !isspace((unsigned char)*q))
            q++;
        if (q == p)
            break;
        if (nwords == 0 && *p == '@') {
            p = q;
            continue;
        }
        if (nwords == 0)
            snprintf(first, firstsz, "%.*s", (int)(q - p), p);
        nwords++;
        p = q;
    }
    return nwords;
}

/* Completes the typed p[0..pl) from c: the one candidate, their common prefix, or a list. */
static unsigned char complete_with(EditLine *el, const struct cands *c, const char *p, size_t pl,
                                   int at)
{
    char word[64];
    if (c->n == 1) {
        rest_in_case(c->v[0], p, pl, SIZE_MAX, word, sizeof word);
        el_insertstr(el, word);
        el_insertstr(el, " ");
        return CC_REFRESH;
    }
    size_t common = strlen(c->v[0]);
    for (int i = 1; i < c->n; i++) {
        size_t k = 0;
        while (k < common && c->v[i][k] &&
               tolower((unsigned char)c->v[i][k]) == tolower((unsigned char)c->v[0][k]))
            k++;
        common = k;
    }
    if (common > pl) {
        rest_in_case(c->v[0], p, pl, common, word, sizeof word);
        el_insertstr(el, word);
        return CC_REFRESH;
    }
    fputc('\n', stdout);
    for (int i = 0; i < c->n; i++)
        printf("%s%s%s", at ? "@" : "", c->v[i], i + 1 < c->n ? "  " : "\n");
    fflush(stdout);
    return CC_REDISPLAY;
}

/* Tab: a command name, an @session, or a keyword that may follow the command. */
static unsigned char edit_complete(EditLine *el, int ch)
{
    (void)ch;
    struct cli_input *in = el_input(el);
    const LineInfo *li = el_line(el);
    const char *start = li->buffer, *cur = li->cursor;
    const char *w = cur;
    while (w > start && !isspace((unsigned char)w[-1]) && w[-1] != ';')
        w--;
    const char *stmt = w;
    while (stmt > start && stmt[-1] != ';')
        stmt--;
    char first[32] = "";
    int nwords = words_before(stmt, w, first, sizeof first);
    size_t plen = (size_t)(cur - w);
    char prefix[64];
    if (plen >= sizeof prefix)
        return CC_ERROR;
    memcpy(prefix, w, plen);
    prefix[plen] = '\0';

    struct cands c = {.n = 0};
    const char *p = prefix;
    size_t pl = plen;
    int at = nwords == 0 && prefix[0] == '@';
    if (at) {
        p++, pl--;
        add_sessions(&c, in->sh, p, pl);
    } else if (nwords == 0) {
        add_commands(&c, p, pl);
    } else {
        add_args(&c, in->sh, first, p, pl);
    }
    if (c.n == 0)
        return CC_ERROR;
    return complete_with(el, &c, p, pl, at);
}

struct cli_input *cli_input_edit(const char *prog, const struct cli_input_hooks *h,
                                 const char *histfile, struct cli_shell *sh)
{
    struct cli_input *in = cli_xmalloc(sizeof *in);
    memset(in, 0, sizeof *in);
    in->fd = STDIN_FILENO;
    in->notify_fd = h->notify_fd;
    in->notify = h->notify;
    in->arg = h->arg;
    in->prompt = h->prompt;
    in->sh = sh;

    /* No SA_RESTART: a Ctrl-C must interrupt poll() in edit_getc. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);

    in->el = el_init(prog, stdin, stdout, stderr);
    if (!in->el) {
        free(in);
        return NULL;
    }
    el_set(in->el, EL_CLIENTDATA, in);
    el_set(in->el, EL_EDITOR, "emacs");
    el_set(in->el, EL_SIGNAL, 1);
    el_set(in->el, EL_PROMPT, edit_prompt);
    el_set(in->el, EL_GETCFN, edit_getc);
    /* The wide call keeps our static strings; el_set would wcsdup them and never free. */
    el_wset(in->el, EL_ADDFN, L"kv-complete", L"complete a command or keyword", edit_complete);
    el_wset(in->el, EL_ADDFN, L"kv-cancel", L"cancel the line", edit_cancel);
    el_set(in->el, EL_BIND, "^I", "kv-complete", NULL);
    el_set(in->el, EL_BIND, "^C", "kv-cancel", NULL);

    in->hist = history_init();
    if (in->hist) {
        HistEvent ev;
        history(in->hist, &ev, H_SETSIZE, 1000);
        history(in->hist, &ev, H_SETUNIQUE, 1);
        if (histfile && *histfile) {
            in->histfile = cli_xstrdup(histfile);
            history(in->hist, &ev, H_LOAD, histfile);
        }
        el_set(in->el, EL_HIST, history, in->hist);
    }
    el_source(in->el, NULL); /* ~/.editrc, as other libedit programs do */
    return in;
}

static int edit_line(struct cli_input *in, char **line, size_t *len)
{
    got_sigint = 0; /* a Ctrl-C typed while a command ran is not for this line */
    for (;;) {
        int n = 0;
        in->cancelled = 0;
        const char *s = el_gets(in->el, &n);
        /*
         * el_gets put the terminal back in cooked mode, and the next one
         * prints its prompt before it leaves cooked mode again.  A Ctrl-D
         * typed in that window, as soon as the prompt shows, would be the
         * kernel's end-of-file, which the switch to raw mode turns into a
         * NUL byte: lost.  So the terminal goes back to the editor's mode
         * at once and stays there while the command runs (type-ahead is
         * then kept for libedit, and echoed when it reads it);
         * cli_input_close restores the terminal.
         */
        el_set(in->el, EL_PREP_TERM, 1);
        if (!s || n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            fputc('\n', stdout);
            return 0;
        }
        if (in->cancelled)
            continue;
        size_t l = (size_t)n;
        if (l && s[l - 1] == '\n')
            l--;
        if (in->hist) {
            size_t i = 0;
            while (i < l && isspace((unsigned char)s[i]))
                i++;
            if (i < l) {
                HistEvent ev;
                history(in->hist, &ev, H_ENTER, s);
            }
        }
        *line = cli_xmemdup(s, l);
        *len = l;
        return 1;
    }
}

int cli_input_line(struct cli_input *in, char **line, size_t *len)
{
    return in->el ? edit_line(in, line, len) : fd_line(in, line, len);
}

void cli_input_close(struct cli_input *in)
{
    if (!in)
        return;
    if (in->hist) {
        HistEvent ev;
        if (in->histfile)
            history(in->hist, &ev, H_SAVE, in->histfile);
        history_end(in->hist);
    }
    if (in->el) {
        el_set(in->el, EL_PREP_TERM, 0); /* cooked mode, as we found it */
        el_end(in->el);
        signal(SIGINT, SIG_DFL);
    }
    free(in->histfile);
    free(in->buf);
    free(in);
}
