/*
 * kv-cli.c - the txkv shell: options, the input loop, and the commands that
 * touch no transaction (HELP, .session, .timer, ...).
 *
 * Owns the shell's settings and its exit status.  Everything that runs in
 * a transaction is handed to a session (cli-session.c), whose worker thread
 * owns that session's txkv_txn; the main thread only reads input, keeps the
 * settings and prints, so it never blocks on a lock wait.
 *
 * Inputs, in order: every -c and -f as given, else stdin (libedit when it
 * is a terminal); .read runs a file in the middle of any of them.  One line
 * may hold several statements separated by ';'.  Errors of commands read
 * from a file name it and the line (sh->file, sh->line).
 * Exit status: 0 if every command succeeded, 1 if any printed an error (or
 * was still blocked at the end) or stdout could not be written, 2 for bad
 * usage, 3 when out of memory.  An interactive session ends 0 like sqlite3,
 * psql and redis-cli: its errors were seen as they happened.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* Why run_line asks to stop reading input: .quit, or a failure under --bail. */
enum { QUIT = 1, BAIL = 2 };

/* .read inside .read: deep enough for any script, shallow enough to stop a file reading itself. */
#define READ_DEPTH_MAX 16

static int run_file(struct cli_shell *sh, const char *path);

static void print_help_all(struct cli_buf *b)
{
    size_t n;
    const struct cli_cmd_info *c = cli_commands(&n);
    cli_buf_puts(b, "Commands (keywords are case-insensitive; ';' separates commands):\n");
    for (size_t i = 0; i < n; i++) {
        if (c[i].name[0] == '.' && (i == 0 || c[i - 1].name[0] != '.'))
            cli_buf_puts(b, "Shell commands:\n");
        char head[128];
        snprintf(head, sizeof head, "%s%s%s", c[i].name, *c[i].args ? " " : "", c[i].args);
        if (strlen(head) > 26)
            cli_buf_printf(b, "  %s\n  %-26s  %s\n", head, "", c[i].help);
        else
            cli_buf_printf(b, "  %-26s  %s\n", head, c[i].help);
    }
    cli_buf_puts(b, "@NAME command runs one command in session NAME (created on first use).\n"
                    "Quoting: \"...\" understands \\n \\t \\r \\0 \\\\ \\\" \\xHH; '...' is "
                    "literal.\n"
                    "HELP command explains one command.\n");
}

static int print_help(const char *topic, struct cli_buf *b)
{
    if (!topic) {
        print_help_all(b);
        return 0;
    }
    const struct cli_cmd_info *ci = cli_command_find(topic);
    if (!ci) {
        char dotted[64];
        snprintf(dotted, sizeof dotted, ".%s", topic);
        ci = cli_command_find(dotted);
    }
    if (!ci)
        return -1;
    cli_buf_printf(b, "%s%s%s\n  %s\n", ci->name, *ci->args ? " " : "", ci->args, ci->help);
    if (ci->more)
        cli_buf_printf(b, "%s\n", ci->more);
    return 0;
}

static void say_error(struct cli_shell *sh, const char *session, const char *name, const char *msg)
{
    struct cli_buf b = {0};
    cli_out_error_at(&b, sh->format, name, sh->file, sh->line, msg);
    cli_emit(&(struct cli_emit){sh->format, session, NULL, 1}, b.p, b.n);
    cli_buf_free(&b);
    sh->failures++;
}

/* .read FILE: its lines run here; QUIT or BAIL from inside it stop the caller too. */
static int dot_read(struct cli_shell *sh, const char *path)
{
    char err[512];
    if (sh->depth >= READ_DEPTH_MAX) {
        snprintf(err, sizeof err, ".read %s: nested more than %d deep (does a file read itself?)",
                 path, READ_DEPTH_MAX);
        say_error(sh, NULL, "INVALID", err);
        return 0;
    }
    int r = run_file(sh, path);
    if (r < 0) {
        snprintf(err, sizeof err, "cannot open %s: %s", path, strerror(errno));
        say_error(sh, NULL, "IO", err);
        return 0;
    }
    return r;
}

/* A command that runs on the main thread.  Returns QUIT for .quit. */
static int run_main_cmd(struct cli_shell *sh, struct cli_cmd *cmd)
{
    struct cli_buf b = {0};
    char err[256];
    int r = 0;
    switch (cmd->op) {
    case CLI_HELP:
        if (print_help(cmd->a.p, &b) < 0) {
            snprintf(err, sizeof err, "no command named '%s' (HELP lists them)", cmd->a.p);
            say_error(sh, NULL, "SYNTAX", err);
        }
        break;
    case CLI_DOT_SESSION:
        if (!cmd->a.p) {
            cli_buf_printf(&b, "%s\n", sh->cur->name);
        } else {
            struct cli_session *s = cli_session_get(sh, cmd->a.p, 1, err, sizeof err);
            if (s)
                sh->cur = s;
            else
                say_error(sh, NULL, "INVALID", err);
        }
        break;
    case CLI_DOT_SESSIONS:
        cli_sessions_describe(sh, &b);
        break;
    case CLI_DOT_ISOLATION:
    case CLI_DOT_CC: {
        struct cli_session *s = sh->cur;
        if (cmd->session && !(s = cli_session_get(sh, cmd->session, 1, err, sizeof err))) {
            say_error(sh, NULL, "INVALID", err);
            break;
        }
        int *field = cmd->op == CLI_DOT_CC ? &s->cc : &s->isolation;
        if (cmd->ival < 0)
            cli_buf_printf(&b, "%s\n",
                           cmd->op == CLI_DOT_CC ? cli_cc_name(*field)
                                                 : cli_isolation_name(*field));
        else
            *field = cmd->ival;
        break;
    }
    case CLI_DOT_TIMER:
        if (cmd->ival < 0)
            cli_buf_printf(&b, "%s\n", sh->timer ? "on" : "off");
        else
            sh->timer = cmd->ival;
        break;
    case CLI_DOT_ECHO:
        if (cmd->ival < 0)
            cli_buf_printf(&b, "%s\n", sh->echo ? "on" : "off");
        else
            sh->echo = cmd->ival;
        break;
    case CLI_DOT_FORMAT:
        if (cmd->ival < 0)
            cli_buf_printf(&b, "%s\n", cli_format_name((int)sh->format));
        else
            sh->format = (enum cli_format)cmd->ival;
        break;
    case CLI_DOT_QUIT:
        r = QUIT;
        break;
    case CLI_DOT_READ:
        r = dot_read(sh, cmd->a.p);
        break;
    default:
        break;
    }
    if (b.n)
        cli_print(cmd->session, b.p, b.n);
    cli_buf_free(&b);
    return r;
}

static int run_statement(struct cli_shell *sh, const struct cli_token *tok, size_t n)
{
    struct cli_cmd cmd;
    char err[512];
    if (cli_parse(tok, n, &cmd, err, sizeof err) < 0) {
        say_error(sh, NULL, "SYNTAX", err);
        return 0;
    }
    if (cmd.op == CLI_NONE) {
        cli_cmd_free(&cmd);
        return 0;
    }
    if (!CLI_OP_IN_SESSION(cmd.op)) {
        int r = run_main_cmd(sh, &cmd);
        cli_cmd_free(&cmd);
        return r;
    }
    struct cli_session *s = sh->cur;
    if (cmd.session && !(s = cli_session_get(sh, cmd.session, 1, err, sizeof err))) {
        say_error(sh, NULL, "INVALID", err);
        cli_cmd_free(&cmd);
        return 0;
    }
    int prefixed = cmd.session != NULL;
    cli_session_run(sh, s, &cmd, prefixed);
    return 0;
}

/* One input line: comments, then each ';'-separated statement.  QUIT/BAIL or 0. */
static int run_line(struct cli_shell *sh, const char *line, size_t len)
{
    if (sh->echo) {
        cli_print(NULL, line, len);
    }
    if (cli_line_is_comment(line, len))
        return 0;
    struct cli_tokens t = {0};
    char err[256];
    int r = 0;
    if (cli_tokenize(line, len, &t, err, sizeof err) < 0) {
        say_error(sh, NULL, "SYNTAX", err);
    } else {
        size_t n;
        for (size_t i = 0; i < t.n && !r; i += n + 1) {
            n = cli_statement_len(&t, i);
            int before = sh->failures;
            r = run_statement(sh, t.v + i, n);
            if (!r && sh->bail && sh->failures > before)
                r = BAIL;
        }
    }
    cli_tokens_free(&t);
    if (!r && sh->bail && sh->failures)
        r = BAIL; /* a blocked command that failed meanwhile */
    return r;
}

static int run_input(struct cli_shell *sh, struct cli_input *in)
{
    char *line;
    size_t len;
    int r = 0;
    while (!r && cli_input_line(in, &line, &len) == 1) {
        sh->line++;
        r = run_line(sh, line, len);
        free(line);
    }
    return r;
}

static int run_text(struct cli_shell *sh, const char *text)
{
    int r = 0;
    while (!r && *text) {
        const char *nl = strchr(text, '\n');
        size_t len = nl ? (size_t)(nl - text) : strlen(text);
        r = run_line(sh, text, len);
        text += len + (nl ? 1 : 0);
    }
    return r;
}

static void on_notify(void *arg)
{
    cli_drain(arg);
}

static const char *make_prompt(void *arg)
{
    static char buf[CLI_NAME_MAX + 16];
    struct cli_shell *sh = arg;
    snprintf(buf, sizeof buf, "kv[%s%s]> ", sh->cur->name, cli_session_mark(sh, sh->cur));
    return buf;
}

static char *history_path(void)
{
    const char *env = getenv("KVCLI_HISTORY");
    if (env)
        return *env ? cli_xstrdup(env) : NULL;
    const char *home = getenv("HOME");
    if (!home || !*home)
        return NULL;
    size_t n = strlen(home) + sizeof "/.kvcli_history";
    char *p = cli_xmalloc(n);
    snprintf(p, n, "%s/.kvcli_history", home);
    return p;
}

static void usage(FILE *f)
{
    fputs("Usage: kv-cli [OPTION]... [DIR]\n"
          "An interactive shell on a txkv database: in memory, or kept in the\n"
          "directory DIR (created if absent, recovered if not).\n"
          "\n"
          "  -c, --command=CMDS     run CMDS (';' separates commands); may repeat\n"
          "  -f, --file=FILE        run the commands in FILE ('-': stdin); may repeat;\n"
          "                         errors name the file and the line\n"
          "      --bail             stop at the first command that fails\n"
          "  -e, --echo             print each input line before its output\n"
          "      --isolation=LEVEL  default isolation: read-committed, snapshot (default),\n"
          "                         serializable\n"
          "      --cc=SCHEME        default concurrency control: optimistic (default),\n"
          "                         pessimistic\n"
          "      --mem-limit=SIZE   memory limit of the database (e.g. 64M; default none)\n"
          "      --lock-timeout=MS  pessimistic lock wait limit (default: wait)\n"
          "      --format=FORMAT    output format: plain (default), csv, json\n"
          "      --sync=POLICY      with DIR: commit (default), interval, none\n"
          "      --wait=MS          report a command blocked after MS (default 200); at the\n"
          "                         end of input wait 25 times as long for blocked ones\n"
          "  -h, --help             print this help and exit\n"
          "  -V, --version          print the version and exit\n"
          "\n"
          "Without -c or -f, commands come from stdin: with line editing when it is a\n"
          "terminal.  Type .help or HELP inside for the commands; see kv-cli(1).\n"
          "Exit status: 0 all commands succeeded (or an interactive session ended),\n"
          "1 a command failed or the output could not be written, 2 bad usage.\n",
          f);
}

static void usage_error(const char *fmt, const char *arg) __attribute__((format(printf, 1, 0)));
static void usage_error(const char *fmt, const char *arg)
{
    fputs("kv-cli: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\nTry 'kv-cli --help' for more information.\n", stderr);
    exit(2);
}

struct source {
    char kind; /* 'c' or 'f' */
    const char *arg;
};

/* What the command line asks for besides the shell's settings. */
struct args {
    txkv_options dbo;   /* the database's options, and the sessions' defaults */
    struct source *src; /* every -c and -f, in order */
    int nsrc;
};

enum { OPT_BAIL = 256, OPT_ISO, OPT_CC, OPT_MEM, OPT_LOCKTO, OPT_FORMAT, OPT_WAIT, OPT_SYNC };

/* An option that sets something: checks arg, sets it in sh or dbo; bad usage exits (2). */
static void set_option(int opt, const char *arg, struct cli_shell *sh, txkv_options *dbo)
{
    int v;
    size_t sz;
    switch (opt) {
    case 'e':
        sh->echo = 1;
        break;
    case OPT_BAIL:
        sh->bail = 1;
        break;
    case OPT_SYNC:
        if (!strcmp(arg, "commit"))
            dbo->sync = TXKV_SYNC_COMMIT;
        else if (!strcmp(arg, "interval"))
            dbo->sync = TXKV_SYNC_INTERVAL;
        else if (!strcmp(arg, "none"))
            dbo->sync = TXKV_SYNC_NONE;
        else
            usage_error("--sync: '%s' is not commit, interval or none", arg);
        break;
    case OPT_ISO:
        if ((v = cli_word_isolation(arg)) < 0)
            usage_error("--isolation: '%s' is not read-committed, snapshot or serializable", arg);
        dbo->isolation = v;
        break;
    case OPT_CC:
        if ((v = cli_word_cc(arg)) < 0)
            usage_error("--cc: '%s' is not optimistic or pessimistic", arg);
        dbo->cc = v;
        break;
    case OPT_MEM:
        if (cli_parse_size(arg, &sz) < 0)
            usage_error("--mem-limit: '%s' is not a size (like 4096, 64K, 512M, 2G)", arg);
        dbo->mem_limit = sz;
        break;
    case OPT_LOCKTO:
        if (cli_parse_size(arg, &sz) < 0 || sz > UINT64_MAX / 1000)
            usage_error("--lock-timeout: '%s' is not a number of milliseconds", arg);
        dbo->lock_timeout_us = (uint64_t)sz * 1000;
        break;
    case OPT_FORMAT:
        if ((v = cli_word_format(arg)) < 0)
            usage_error("--format: '%s' is not plain, csv or json", arg);
        sh->format = (enum cli_format)v;
        break;
    case OPT_WAIT:
        if (cli_parse_size(arg, &sz) < 0 || sz < 1 || sz > 60000)
            usage_error("--wait: '%s' is not a number of milliseconds (1 to 60000)", arg);
        sh->wait_ms = (unsigned)sz;
        sh->end_wait_ms = (unsigned)sz * 25;
        break;
    }
}

/*
 * Reads the command line into sh and a.  Returns -1 to go on, or the exit
 * status when kv-cli is done: --help, --version, an unknown option.
 */
static int parse_args(int argc, char **argv, struct cli_shell *sh, struct args *a)
{
    static const struct option longopts[] = {
        {"command", required_argument, NULL, 'c'},
        {"file", required_argument, NULL, 'f'},
        {"bail", no_argument, NULL, OPT_BAIL},
        {"echo", no_argument, NULL, 'e'},
        {"isolation", required_argument, NULL, OPT_ISO},
        {"cc", required_argument, NULL, OPT_CC},
        {"mem-limit", required_argument, NULL, OPT_MEM},
        {"lock-timeout", required_argument, NULL, OPT_LOCKTO},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"wait", required_argument, NULL, OPT_WAIT},
        {"sync", required_argument, NULL, OPT_SYNC},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":c:f:ehV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
        case 'f':
            a->src[a->nsrc++] = (struct source){(char)opt, optarg};
            break;
        case 'e':
        case OPT_BAIL:
        case OPT_ISO:
        case OPT_CC:
        case OPT_MEM:
        case OPT_LOCKTO:
        case OPT_FORMAT:
        case OPT_WAIT:
        case OPT_SYNC:
            set_option(opt, optarg, sh, &a->dbo);
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("kv-cli (txkv) %s\n", PACKAGE_VERSION);
            return 0;
        case ':':
            usage_error("option '%s' needs an argument", argv[optind - 1]);
            break;
        default:
            if (optopt)
                fprintf(stderr, "kv-cli: unknown option '-%c'\n", optopt);
            else
                fprintf(stderr, "kv-cli: unknown option '%s'\n", argv[optind - 1]);
            fputs("Try 'kv-cli --help' for more information.\n", stderr);
            return 2;
        }
    }
    if (optind < argc) /* sqlite3-style: kv-cli DIR opens a durable database */
        a->dbo.dir = argv[optind++];
    if (optind < argc)
        usage_error("unexpected argument '%s' (to run a script use -f FILE)", argv[optind]);
    return -1;
}

/* While waiting for input: print finished blocked commands; show the session. */
static struct cli_input_hooks input_hooks(struct cli_shell *sh)
{
    return (struct cli_input_hooks){sh->notify[0], on_notify, make_prompt, sh};
}

/* Runs the lines read from fd (a file, a pipe, or a terminal without libedit). */
static int run_fd(struct cli_shell *sh, int fd)
{
    struct cli_input_hooks h = input_hooks(sh);
    struct cli_input *in = cli_input_fd(fd, &h);
    int r = run_input(sh, in);
    cli_input_close(in);
    return r;
}

/*
 * The commands of path ("-": stdin), their errors marked path:line (or
 * <stdin>:line).  QUIT, BAIL or 0; -1 with errno when it cannot be opened.
 */
static int run_file(struct cli_shell *sh, const char *path)
{
    int is_stdin = strcmp(path, "-") == 0;
    int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    const char *file = sh->file;
    unsigned long line = sh->line;
    sh->file = is_stdin ? "<stdin>" : path;
    sh->line = 0;
    sh->depth++;
    int r = run_fd(sh, fd);
    sh->depth--;
    sh->file = file;
    sh->line = line;
    if (!is_stdin)
        close(fd);
    return r;
}

/* Every -c and -f in order, until .quit, --bail or a file that cannot be opened. */
static void run_sources(struct cli_shell *sh, const struct source *src, int nsrc)
{
    int r = 0;
    for (int i = 0; i < nsrc && !r; i++) {
        if (src[i].kind == 'c') {
            r = run_text(sh, src[i].arg);
            continue;
        }
        if ((r = run_file(sh, src[i].arg)) < 0) {
            fprintf(stderr, "kv-cli: cannot open %s: %s\n", src[i].arg, strerror(errno));
            sh->failures++;
            break;
        }
    }
}

/* stdin on a terminal: libedit with a prompt and history, or plain reads without it. */
static void run_terminal(struct cli_shell *sh, const char *prog)
{
    struct cli_input_hooks h = input_hooks(sh);
    char *hist = history_path();
    sh->interactive = 1;
    struct cli_input *in = cli_input_edit(prog, &h, hist, sh);
    free(hist);
    if (!in) {
        run_fd(sh, STDIN_FILENO);
        return;
    }
    if (sh->dir)
        printf("kv-cli %s: the txkv database in %s, session T1.\n", PACKAGE_VERSION, sh->dir);
    else
        printf("kv-cli %s: an empty in-memory txkv database, session T1.\n", PACKAGE_VERSION);
    printf("Type .help for the commands, .quit or Ctrl-D to leave.\n");
    run_input(sh, in);
    cli_input_close(in);
}

/* The exit status once everything ran: a lost output is a failure even interactively. */
static int exit_status(struct cli_shell *sh)
{
    int e = cli_output_errno();
    errno = 0;
    if (fflush(stdout) == EOF && !e)
        e = errno ? errno : EIO;
    if (e || ferror(stdout)) {
        fprintf(stderr, "kv-cli: cannot write to standard output: %s\n", strerror(e ? e : EIO));
        return 1;
    }
    return sh->failures && !sh->interactive ? 1 : 0;
}

int main(int argc, char **argv)
{
    static struct cli_shell shell;
    struct cli_shell *sh = &shell;
    struct args a = {.src = cli_xmalloc((size_t)argc * sizeof *a.src)};

    setlocale(LC_CTYPE, "");
    txkv_options_init(&a.dbo);
    sh->format = CLI_FMT_PLAIN;
    sh->wait_ms = 200;
    sh->end_wait_ms = 5000;
    int status = parse_args(argc, argv, sh, &a);
    if (status >= 0) {
        free(a.src);
        return status;
    }
    sh->isolation = a.dbo.isolation;
    sh->dir = a.dbo.dir;
    sh->sync = a.dbo.sync;
    sh->cc = a.dbo.cc;

    txkv_db *db;
    int rc = txkv_open(&a.dbo, &db);
    if (rc) {
        if (a.dbo.dir)
            fprintf(stderr, "kv-cli: cannot open the database in %s: %s: %s\n", a.dbo.dir,
                    txkv_strerror(rc), txkv_errmsg(rc));
        else
            fprintf(stderr, "kv-cli: cannot open a database: %s: %s\n", txkv_strerror(rc),
                    txkv_errmsg(rc));
        free(a.src);
        return 1;
    }
    if (a.dbo.dir) {
        struct txkv_stats st;
        txkv_stats(db, &st);
        if (st.recovered_bytes_dropped)
            fprintf(stderr, "kv-cli: recovery cut a torn or corrupt log tail: %llu bytes dropped\n",
                    (unsigned long long)st.recovered_bytes_dropped);
    }
    char err[256];
    if (cli_shell_init(sh, db) < 0 || !(sh->cur = cli_session_get(sh, "T1", 1, err, sizeof err))) {
        fprintf(stderr, "kv-cli: cannot start: %s\n", strerror(errno));
        return 1;
    }

    /* .quit and --bail only stop the reading; the exit status counts failures. */
    if (a.nsrc > 0)
        run_sources(sh, a.src, a.nsrc);
    else if (isatty(STDIN_FILENO))
        run_terminal(sh, argv[0]);
    else
        run_fd(sh, STDIN_FILENO);

    cli_finish(sh);
    free(a.src);
    if (cli_shell_shutdown(sh) < 0) {
        /* A worker is still inside txkv: neither close the database nor run exit handlers. */
        fflush(stdout);
        _exit(1);
    }
    txkv_close(db);
    return exit_status(sh);
}
