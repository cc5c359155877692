/*
 * parse.c - kv-cli's tokenizer, parser and printers, without a database.
 *
 * The quoting rules are a contract with users' scripts and with .dump files,
 * so they are tested both ways: fixed cases, and random byte strings that
 * must survive cli_quote -> cli_tokenize unchanged (deterministic by seed).
 */
#include "config.h"

#include <string.h>

#include "../../tools/cli.h"
#include "../tap.h"

/* Tokenizes s; returns the number of tokens, or -1.  Tokens stay in *t. */
static int tok(const char *s, struct cli_tokens *t)
{
    char err[256];
    cli_tokens_free(t);
    return cli_tokenize(s, strlen(s), t, err, sizeof err) < 0 ? -1 : (int)t->n;
}

static int tok_is(const struct cli_tokens *t, size_t i, const void *p, size_t n)
{
    return i < t->n && t->v[i].p && t->v[i].n == n && memcmp(t->v[i].p, p, n) == 0;
}

/* Parses one statement; returns its op or -1 (message in err). */
static int parse(const char *s, struct cli_cmd *cmd, char *err, size_t errsz)
{
    struct cli_tokens t = {0};
    int r = -1;
    if (cli_tokenize(s, strlen(s), &t, err, errsz) == 0)
        r = cli_parse(t.v, t.n, cmd, err, errsz) < 0 ? -1 : (int)cmd->op;
    cli_tokens_free(&t);
    return r;
}

static void test_tokenizer(void)
{
    struct cli_tokens t = {0};
    is(tok("  GET   key ", &t), 2, "whitespace separates tokens");
    ok(tok_is(&t, 0, "GET", 3) && tok_is(&t, 1, "key", 3), "tokens are the words");
    is(tok("PUT \"a b\" 'c d'", &t), 3, "quoted tokens keep spaces");
    ok(tok_is(&t, 1, "a b", 3) && tok_is(&t, 2, "c d", 3) && t.v[1].quoted && t.v[2].quoted,
       "double and single quotes");
    tok("\"\\n\\t\\r\\\\\\\"\\'\\x00\\xfF\\0\"", &t);
    ok(tok_is(&t, 0, "\n\t\r\\\"'\0\xff\0", 9), "escapes in double quotes");
    tok("'a\\nb'", &t);
    ok(tok_is(&t, 0, "a\\nb", 4), "single quotes are literal");
    tok("key\"with space\"'s'", &t);
    ok(t.n == 1 && tok_is(&t, 0, "keywith spaces", 14), "adjacent pieces join");
    is(tok("GET a; GET b;", &t), 6, "';' ends statements");
    ok(t.v[2].p == NULL && t.v[5].p == NULL && tok_is(&t, 3, "GET", 3), "';' markers");
    tok("PUT a \"x;y\"", &t);
    ok(t.n == 3 && tok_is(&t, 2, "x;y", 3), "quoted ';' is data");
    is(tok("GET \"abc", &t), -1, "unterminated double quote");
    is(tok("GET 'abc", &t), -1, "unterminated single quote");
    is(tok("GET \"\\x4\"", &t), -1, "\\x with one digit");
    is(tok("GET \"\\q\"", &t), -1, "unknown escape");
    is(tok("GET \"abc\\", &t), -1, "backslash at the end");
    is(tok("", &t), 0, "empty line");
    tok("\"\"", &t);
    ok(t.n == 1 && t.v[0].n == 0 && t.v[0].quoted, "empty quoted token");
    cli_tokens_free(&t);
}

static void test_parser(void)
{
    struct cli_cmd c;
    char err[256];
    is(parse("get k", &c, err, sizeof err), CLI_GET, "get is case-insensitive");
    ok(c.a.n == 1 && c.a.p[0] == 'k', "GET key");
    cli_cmd_free(&c);
    is(parse("SET k v", &c, err, sizeof err), CLI_PUT, "SET is PUT");
    ok(!strcmp(c.a.p, "k") && !strcmp(c.b.p, "v"), "PUT key value");
    cli_cmd_free(&c);
    is(parse("PUT k", &c, err, sizeof err), -1, "PUT needs a value");
    ok(strstr(err, "usage: PUT key value") != NULL, "usage message: %s", err);
    is(parse("GET", &c, err, sizeof err), -1, "GET needs a key");
    is(parse("GET a b", &c, err, sizeof err), -1, "GET takes one key");
    is(parse("FROB x", &c, err, sizeof err), -1, "unknown command");
    ok(strstr(err, "unknown command 'FROB'") != NULL, "unknown command message: %s", err);
    is(parse("SCAN", &c, err, sizeof err), CLI_SCAN, "SCAN alone");
    ok(!c.a.p && !c.b.p && c.limit == UINT64_MAX, "SCAN without range or limit");
    cli_cmd_free(&c);
    is(parse("scan a c limit 10", &c, err, sizeof err), CLI_SCAN, "SCAN from to LIMIT");
    ok(!strcmp(c.a.p, "a") && !strcmp(c.b.p, "c") && c.limit == 10, "range and limit");
    cli_cmd_free(&c);
    is(parse("SCAN LIMIT 0", &c, err, sizeof err), CLI_SCAN, "SCAN LIMIT alone");
    ok(!c.a.p && c.limit == 0, "LIMIT 0");
    cli_cmd_free(&c);
    is(parse("SCAN \"LIMIT\" 5", &c, err, sizeof err), CLI_SCAN, "quoted LIMIT is a key");
    ok(!strcmp(c.a.p, "LIMIT") && !strcmp(c.b.p, "5") && c.limit == UINT64_MAX,
       "quoted LIMIT as from");
    cli_cmd_free(&c);
    is(parse("SCAN LIMIT x", &c, err, sizeof err), -1, "LIMIT needs a number");
    is(parse("SCAN LIMIT -1", &c, err, sizeof err), -1, "LIMIT is not negative");
    is(parse("SCAN a b c", &c, err, sizeof err), -1, "SCAN takes at most two keys");
    is(parse("SCAN LIMIT 1 a", &c, err, sizeof err), -1, "keys come before LIMIT");
    is(parse("COUNT a LIMIT 3", &c, err, sizeof err), -1, "COUNT has no LIMIT");
    is(parse("BEGIN", &c, err, sizeof err), CLI_BEGIN, "BEGIN");
    ok(c.begin.isolation == 0 && c.begin.cc == 0 && c.begin.flags == 0, "BEGIN: defaults");
    cli_cmd_free(&c);
    is(parse("begin read committed pessimistic read only", &c, err, sizeof err), CLI_BEGIN,
       "BEGIN with every option");
    ok(c.begin.isolation == TXKV_READ_COMMITTED && c.begin.cc == TXKV_PESSIMISTIC &&
           c.begin.flags == TXKV_RDONLY,
       "BEGIN options parsed");
    cli_cmd_free(&c);
    is(parse("BEGIN OPTIMISTIC SERIALIZABLE", &c, err, sizeof err), CLI_BEGIN, "any order");
    ok(c.begin.isolation == TXKV_SERIALIZABLE && c.begin.cc == TXKV_OPTIMISTIC, "order");
    cli_cmd_free(&c);
    is(parse("BEGIN SNAPSHOT SERIALIZABLE", &c, err, sizeof err), -1, "two levels");
    is(parse("BEGIN READ", &c, err, sizeof err), -1, "READ alone");
    is(parse("BEGIN FAST", &c, err, sizeof err), -1, "unknown BEGIN option");
    is(parse("COMMIT now", &c, err, sizeof err), -1, "COMMIT takes nothing");
    is(parse("ABORT", &c, err, sizeof err), CLI_ROLLBACK, "ABORT is ROLLBACK");
    is(parse("@T2 GET k", &c, err, sizeof err), CLI_GET, "@NAME command");
    ok(c.session && !strcmp(c.session, "T2"), "session name kept");
    cli_cmd_free(&c);
    is(parse("@T2", &c, err, sizeof err), -1, "@NAME alone");
    is(parse("@ GET k", &c, err, sizeof err), -1, "@ without a name");
    is(parse("@a.b GET k", &c, err, sizeof err), -1, "bad session name");
    is(parse("@T2 .timer on", &c, err, sizeof err), -1, ".timer is not per session");
    is(parse("@T2 .isolation serializable", &c, err, sizeof err), CLI_DOT_ISOLATION,
       ".isolation with @");
    ok(c.ival == TXKV_SERIALIZABLE, ".isolation value");
    cli_cmd_free(&c);
    is(parse(".ISOLATION read committed", &c, err, sizeof err), CLI_DOT_ISOLATION,
       ".isolation READ COMMITTED");
    ok(c.ival == TXKV_READ_COMMITTED, "two-word level");
    cli_cmd_free(&c);
    is(parse(".isolation", &c, err, sizeof err), CLI_DOT_ISOLATION, ".isolation shows");
    ok(c.ival == -1, ".isolation without value");
    cli_cmd_free(&c);
    is(parse(".isolation chaos", &c, err, sizeof err), -1, "bad level");
    is(parse(".cc pessimistic", &c, err, sizeof err), CLI_DOT_CC, ".cc");
    ok(c.ival == TXKV_PESSIMISTIC, ".cc value");
    cli_cmd_free(&c);
    is(parse(".timer maybe", &c, err, sizeof err), -1, ".timer needs on/off");
    is(parse(".format json", &c, err, sizeof err), CLI_DOT_FORMAT, ".format");
    ok(c.ival == CLI_FMT_JSON, ".format json");
    cli_cmd_free(&c);
    is(parse(".format xml", &c, err, sizeof err), -1, "bad format");
    is(parse(".sleep 0.25", &c, err, sizeof err), CLI_DOT_SLEEP, ".sleep");
    ok(c.seconds == 0.25, ".sleep seconds");
    cli_cmd_free(&c);
    is(parse(".sleep -1", &c, err, sizeof err), -1, ".sleep negative");
    is(parse(".sleep soon", &c, err, sizeof err), -1, ".sleep not a number");
    is(parse(".load", &c, err, sizeof err), -1, ".load needs a file");
    is(parse(".session", &c, err, sizeof err), CLI_DOT_SESSION, ".session shows");
    cli_cmd_free(&c);
    is(parse(".session x y", &c, err, sizeof err), -1, ".session takes one name");
    is(parse(".frob", &c, err, sizeof err), -1, "unknown dot command");
    ok(strstr(err, ".help") != NULL, "unknown dot command points to .help");
    is(parse("", &c, err, sizeof err), CLI_NONE, "empty statement");
    is(parse("HELP GET", &c, err, sizeof err), CLI_HELP, "HELP GET");
    cli_cmd_free(&c);
}

static void test_words(void)
{
    size_t sz;
    is(cli_word_isolation("read-committed"), TXKV_READ_COMMITTED, "read-committed");
    is(cli_word_isolation("READ_COMMITTED"), TXKV_READ_COMMITTED, "READ_COMMITTED");
    is(cli_word_isolation("Serializable"), TXKV_SERIALIZABLE, "Serializable");
    is(cli_word_isolation("repeatable"), -1, "unknown level");
    is(cli_word_cc("Pessimistic"), TXKV_PESSIMISTIC, "cc word");
    ok(cli_parse_size("64M", &sz) == 0 && sz == 64u << 20, "64M");
    ok(cli_parse_size("2GiB", &sz) == 0 && sz == (size_t)2 << 30, "2GiB");
    ok(cli_parse_size("4096", &sz) == 0 && sz == 4096, "4096");
    ok(cli_parse_size("12x", &sz) < 0 && cli_parse_size("", &sz) < 0 &&
           cli_parse_size("-5", &sz) < 0,
       "bad sizes");
}

static void test_printers(void)
{
    struct cli_buf b = {0};
    ok(cli_printable("hello world", 11), "ASCII is printable");
    ok(cli_printable("caf\xc3\xa9", 5), "UTF-8 is printable");
    ok(!cli_printable("a\nb", 3), "newline is not printable");
    ok(!cli_printable("\xff", 1), "bad UTF-8 is not printable");
    ok(!cli_utf8_valid("\xc0\x80", 2), "overlong NUL is not UTF-8");
    ok(!cli_utf8_valid("\xed\xa0\x80", 3), "surrogates are not UTF-8");
    cli_put_value(&b, "hello world", 11);
    is_str(b.p, "hello world", "printable value is raw");
    b.n = 0;
    cli_put_value(&b, "a\tb\x01", 4);
    is_str(b.p, "\"a\\tb\\x01\"", "binary value is quoted");
    b.n = 0;
    cli_put_value(&b, "", 0);
    is_str(b.p, "\"\"", "empty value is quoted");
    b.n = 0;
    cli_put_value(&b, "(nil)", 5);
    is_str(b.p, "\"(nil)\"", "the value (nil) is quoted");
    b.n = 0;
    cli_put_word(&b, "a b", 3);
    is_str(b.p, "\"a b\"", "word with a space is quoted");
    b.n = 0;
    cli_quote(&b, "caf\xc3\xa9", 5, 1);
    is_str(b.p, "\"caf\\xc3\\xa9\"", "ASCII-only quoting escapes UTF-8");
    b.n = 0;
    cli_out_value(&b, CLI_FMT_JSON, "k", 1, "\xff\x00", 2);
    is_str(b.p, "{\"key\":\"k\",\"value_hex\":\"ff00\"}\n", "JSON: non-UTF-8 as hex");
    b.n = 0;
    cli_out_value(&b, CLI_FMT_JSON, "k\"", 2, NULL, 0);
    is_str(b.p, "{\"key\":\"k\\\"\",\"value\":null}\n", "JSON: absent is null");
    b.n = 0;
    cli_out_row(&b, CLI_FMT_CSV, 0, &(struct cli_row){"a,b", 3, "say \"hi\"", 8});
    is_str(b.p, "\"a,b\",\"say \"\"hi\"\"\"\n", "CSV quoting");
    b.n = 0;
    cli_out_value(&b, CLI_FMT_CSV, "k", 1, "", 0);
    cli_out_value(&b, CLI_FMT_CSV, "k", 1, NULL, 0);
    is_str(b.p, "k,\"\"\nk,\n", "CSV: key,value rows; an empty value vs absent");
    b.n = 0;
    cli_out_error(&b, CLI_FMT_PLAIN, "CONFLICT", "retry it");
    is_str(b.p, "(error) CONFLICT: retry it\n", "plain error line");
    cli_buf_free(&b);
}

/* Random bytes survive quote -> tokenize, in both quoting modes and as words. */
static void test_roundtrip(void)
{
    uint64_t seed = tap_seed(), st = seed;
    struct cli_tokens t = {0};
    struct cli_buf b = {0};
    char err[256];
    int bad = 0;
    for (int i = 0; i < 2000 && !bad; i++) {
        unsigned char v[64];
        size_t n = tap_rand(&st) % sizeof v;
        int mode = (int)(tap_rand(&st) % 3);
        for (size_t k = 0; k < n; k++) {
            uint64_t r = tap_rand(&st);
            /* mostly printable, some UTF-8 and control bytes, all 256 values possible */
            v[k] = r % 4 ? (unsigned char)(0x20 + r / 4 % 95) : (unsigned char)(r >> 8);
        }
        b.n = 0;
        if (mode == 0)
            cli_quote(&b, v, n, 1);
        else if (mode == 1)
            cli_quote(&b, v, n, 0);
        else
            cli_put_word(&b, v, n);
        if (cli_tokenize(b.p, b.n, &t, err, sizeof err) < 0 || t.n != 1 || t.v[0].n != n ||
            memcmp(t.v[0].p, v, n) != 0) {
            diag("round trip %d (mode %d) failed: %s", i, mode, b.p);
            bad = 1;
        }
        cli_tokens_free(&t);
    }
    ok(!bad, "2000 random byte strings round-trip through quoting");
    cli_buf_free(&b);
}

int main(void)
{
    test_tokenizer();
    test_parser();
    test_words();
    test_printers();
    test_roundtrip();
    return done_testing();
}
