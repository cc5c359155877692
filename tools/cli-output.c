/*
 * cli-output.c - kv-cli's output: growable buffers, quoting, result formats.
 *
 * Owns how bytes become text, and kv-cli's allocation helpers (cli_x*, the
 * one growable array).  Keys and values are arbitrary bytes, so every
 * printer decides between raw and quoted: plain output prints a value raw
 * when a reader cannot mistake it (printable, not empty, not starting with '#' or
 * '"', not "(nil)"), else in the tokenizer's own double-quoted syntax, which
 * can be pasted back; a key is raw only when it reads back as the same one
 * word (cli_put_word).  Dumps quote always and in ASCII only.  JSON strings must be Unicode: bytes
 * that are not UTF-8 go into a
 * "*_hex" field instead of being silently mangled.
 *
 * CSV results are rows under a header row (cli-exec.c names the columns);
 * an error is one plain "(error) NAME: message" line, which the printer
 * sends to stderr in CSV.  A JSON result is one value per line.
 *
 * Commands write into a cli_buf on a worker thread; the main thread prints
 * the buffer later, so nothing here touches stdout.  No locks, no libtxkv.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void *cli_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fputs("kv-cli: out of memory\n", stderr);
        exit(3);
    }
    return p;
}

void *cli_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fputs("kv-cli: out of memory\n", stderr);
        exit(3);
    }
    return q;
}

char *cli_xmemdup(const void *p, size_t n)
{
    char *q = cli_xmalloc(n + 1);
    if (n)
        memcpy(q, p, n);
    q[n] = '\0';
    return q;
}

char *cli_xstrdup(const char *s)
{
    return cli_xmemdup(s, strlen(s));
}

void *cli_xgrow(void *p, size_t *cap, size_t need, size_t size, size_t first)
{
    if (*cap >= need)
        return p;
    size_t c = *cap ? *cap : first;
    while (c < need)
        c *= 2;
    *cap = c;
    return cli_xrealloc(p, c * size);
}

/* Room for extra bytes and the NUL that every put keeps after them. */
static void buf_reserve(struct cli_buf *b, size_t extra)
{
    b->p = cli_xgrow(b->p, &b->cap, b->n + extra + 1, 1, 256);
}

void cli_buf_put(struct cli_buf *b, const void *p, size_t n)
{
    buf_reserve(b, n);
    if (n)
        memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = '\0';
}

void cli_buf_puts(struct cli_buf *b, const char *s)
{
    cli_buf_put(b, s, strlen(s));
}

void cli_buf_putc(struct cli_buf *b, int c)
{
    char ch = (char)c;
    cli_buf_put(b, &ch, 1);
}

void cli_buf_printf(struct cli_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0)
        return;
    buf_reserve(b, (size_t)len + 1);
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)len + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)len;
}

void cli_buf_free(struct cli_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

/* Length of the UTF-8 sequence at s (1..4), 0 if malformed; *cp gets the code point. */
static size_t utf8_seq(const unsigned char *s, size_t n, unsigned *cp)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xe0) == 0xc0) {
        len = 2, min = 0x80, c &= 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3, min = 0x800, c &= 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4, min = 0x10000, c &= 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}

int cli_utf8_valid(const void *p, size_t n)
{
    const unsigned char *s = p;
    unsigned cp;
    for (size_t i = 0; i < n;) {
        size_t l = utf8_seq(s + i, n - i, &cp);
        if (!l)
            return 0;
        i += l;
    }
    return 1;
}

static int cp_printable(unsigned cp)
{
    return (cp >= 0x20 && cp < 0x7f) || cp >= 0xa0;
}

int cli_printable(const void *p, size_t n)
{
    const unsigned char *s = p;
    unsigned cp;
    for (size_t i = 0; i < n;) {
        size_t l = utf8_seq(s + i, n - i, &cp);
        if (!l || !cp_printable(cp))
            return 0;
        i += l;
    }
    return 1;
}

void cli_quote(struct cli_buf *b, const void *p, size_t n, int ascii)
{
    const unsigned char *s = p;
    buf_reserve(b, n + 2);
    cli_buf_putc(b, '"');
    for (size_t i = 0; i < n;) {
        unsigned c = s[i], cp;
        size_t l;
        switch (c) {
        case '\n':
            cli_buf_put(b, "\\n", 2);
            break;
        case '\t':
            cli_buf_put(b, "\\t", 2);
            break;
        case '\r':
            cli_buf_put(b, "\\r", 2);
            break;
        case '\\':
            cli_buf_put(b, "\\\\", 2);
            break;
        case '"':
            cli_buf_put(b, "\\\"", 2);
            break;
        default:
            if (c >= 0x20 && c < 0x7f) {
                cli_buf_putc(b, (int)c);
            } else if (!ascii && c >= 0x80 && (l = utf8_seq(s + i, n - i, &cp)) &&
                       cp_printable(cp)) {
                cli_buf_put(b, s + i, l);
                i += l;
                continue;
            } else {
                cli_buf_printf(b, "\\x%02x", c);
            }
        }
        i++;
    }
    cli_buf_putc(b, '"');
}

void cli_put_value(struct cli_buf *b, const void *p, size_t n)
{
    const char *s = p;
    if (n && s[0] != '"' && s[0] != '#' && !(n == 5 && memcmp(s, "(nil)", 5) == 0) &&
        cli_printable(p, n))
        cli_buf_put(b, p, n);
    else
        cli_quote(b, p, n, 0);
}

void cli_put_word(struct cli_buf *b, const void *p, size_t n)
{
    const char *s = p;
    int raw = n > 0 && cli_printable(p, n) && s[0] != '@' && s[0] != '#';
    for (size_t i = 0; raw && i < n; i++)
        if (strchr(" \"';\\", s[i]))
            raw = 0;
    if (raw && n >= 2 && s[0] == '-' && s[1] == '-')
        raw = 0;
    if (raw)
        cli_buf_put(b, p, n);
    else
        cli_quote(b, p, n, 0);
}

/* ---- formats ---------------------------------------------------------- */

static void csv_field(struct cli_buf *b, const void *p, size_t n)
{
    const char *s = p;
    int q = n == 0 || s[0] == ' ' || s[n - 1] == ' ';
    for (size_t i = 0; !q && i < n; i++)
        if (s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r')
            q = 1;
    if (!q) {
        cli_buf_put(b, p, n);
        return;
    }
    cli_buf_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"')
            cli_buf_putc(b, '"');
        cli_buf_putc(b, s[i]);
    }
    cli_buf_putc(b, '"');
}

static void json_string(struct cli_buf *b, const void *p, size_t n)
{
    const unsigned char *s = p;
    cli_buf_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned c = s[i];
        if (c == '"' || c == '\\') {
            cli_buf_putc(b, '\\');
            cli_buf_putc(b, (int)c);
        } else if (c == '\n') {
            cli_buf_put(b, "\\n", 2);
        } else if (c == '\t') {
            cli_buf_put(b, "\\t", 2);
        } else if (c == '\r') {
            cli_buf_put(b, "\\r", 2);
        } else if (c < 0x20 || c == 0x7f) {
            cli_buf_printf(b, "\\u%04x", c);
        } else {
            cli_buf_putc(b, (int)c);
        }
    }
    cli_buf_putc(b, '"');
}

/* "name":"text", or "name_hex":"6869" when the bytes are not UTF-8. */
static void json_bytes_field(struct cli_buf *b, const char *name, const void *p, size_t n)
{
    if (cli_utf8_valid(p, n)) {
        cli_buf_printf(b, "\"%s\":", name);
        json_string(b, p, n);
    } else {
        const unsigned char *s = p;
        cli_buf_printf(b, "\"%s_hex\":\"", name);
        for (size_t i = 0; i < n; i++)
            cli_buf_printf(b, "%02x", s[i]);
        cli_buf_putc(b, '"');
    }
}

void cli_out_value(struct cli_buf *b, enum cli_format f, const void *key, size_t klen,
                   const void *val, size_t vlen)
{
    switch (f) {
    case CLI_FMT_PLAIN:
        if (val)
            cli_put_value(b, val, vlen);
        else
            cli_buf_puts(b, "(nil)");
        break;
    case CLI_FMT_CSV:
        /* key,value; NULL is an empty unquoted field, an empty value "" (as COPY ... CSV) */
        csv_field(b, key, klen);
        cli_buf_putc(b, ',');
        if (val)
            csv_field(b, val, vlen);
        break;
    case CLI_FMT_JSON:
        cli_buf_putc(b, '{');
        json_bytes_field(b, "key", key, klen);
        cli_buf_putc(b, ',');
        if (val)
            json_bytes_field(b, "value", val, vlen);
        else
            cli_buf_puts(b, "\"value\":null");
        cli_buf_putc(b, '}');
        break;
    }
    cli_buf_putc(b, '\n');
}

void cli_out_ok(struct cli_buf *b, enum cli_format f)
{
    cli_buf_puts(b, f == CLI_FMT_JSON ? "{\"ok\":true}\n" : "OK\n");
}

void cli_out_ok_count(struct cli_buf *b, enum cli_format f, const char *what, uint64_t n)
{
    if (f == CLI_FMT_JSON)
        cli_buf_printf(b, "{\"ok\":true,\"%ss\":%llu}\n", what, (unsigned long long)n);
    else if (f == CLI_FMT_CSV)
        cli_buf_printf(b, "OK,%llu\n", (unsigned long long)n);
    else
        cli_buf_printf(b, "OK (%llu %s%s)\n", (unsigned long long)n, what, n == 1 ? "" : "s");
}

void cli_out_error(struct cli_buf *b, enum cli_format f, const char *name, const char *msg)
{
    cli_out_error_at(b, f, name, NULL, 0, msg);
}

void cli_out_error_at(struct cli_buf *b, enum cli_format f, const char *name, const char *file,
                      unsigned long line, const char *msg)
{
    if (f == CLI_FMT_JSON) {
        cli_buf_puts(b, "{\"error\":");
        json_string(b, name, strlen(name));
        cli_buf_puts(b, ",\"message\":");
        json_string(b, msg, strlen(msg));
        if (file) {
            cli_buf_puts(b, ",\"file\":");
            json_string(b, file, strlen(file));
            cli_buf_printf(b, ",\"line\":%lu", line);
        }
        cli_buf_puts(b, "}\n");
    } else if (file) {
        /* after the name, so that "(error) NAME" still starts the line */
        cli_buf_printf(b, "(error) %s: %s:%lu: %s\n", name, file, line, msg);
    } else {
        cli_buf_printf(b, "(error) %s: %s\n", name, msg);
    }
}

void cli_out_rows_begin(struct cli_buf *b, enum cli_format f)
{
    if (f == CLI_FMT_JSON)
        cli_buf_putc(b, '[');
}

void cli_out_row(struct cli_buf *b, enum cli_format f, uint64_t index, const struct cli_row *r)
{
    const void *key = r->key, *val = r->val;
    size_t klen = r->klen, vlen = r->vlen;
    switch (f) {
    case CLI_FMT_PLAIN:
        cli_put_word(b, key, klen);
        cli_buf_putc(b, ' ');
        cli_put_value(b, val, vlen);
        cli_buf_putc(b, '\n');
        break;
    case CLI_FMT_CSV:
        csv_field(b, key, klen);
        cli_buf_putc(b, ',');
        csv_field(b, val, vlen);
        cli_buf_putc(b, '\n');
        break;
    case CLI_FMT_JSON:
        if (index)
            cli_buf_putc(b, ',');
        cli_buf_putc(b, '{');
        json_bytes_field(b, "key", key, klen);
        cli_buf_putc(b, ',');
        json_bytes_field(b, "value", val, vlen);
        cli_buf_putc(b, '}');
        break;
    }
}

void cli_out_rows_end(struct cli_buf *b, enum cli_format f, uint64_t nrows)
{
    if (f == CLI_FMT_JSON)
        cli_buf_puts(b, "]\n");
    else if (f == CLI_FMT_PLAIN && nrows == 0)
        cli_buf_puts(b, "(empty)\n");
}

void cli_out_count(struct cli_buf *b, enum cli_format f, uint64_t n)
{
    if (f == CLI_FMT_JSON)
        cli_buf_printf(b, "{\"count\":%llu}\n", (unsigned long long)n);
    else
        cli_buf_printf(b, "%llu\n", (unsigned long long)n);
}

void cli_out_text(struct cli_buf *b, enum cli_format f, int first, int last, const char *name,
                  const char *text)
{
    switch (f) {
    case CLI_FMT_PLAIN:
        cli_buf_printf(b, "%s: %s\n", name, text);
        break;
    case CLI_FMT_CSV:
        cli_buf_printf(b, "%s,", name);
        csv_field(b, text, strlen(text));
        cli_buf_printf(b, "\n");
        break;
    case CLI_FMT_JSON:
        cli_buf_printf(b, "%s\"%s\":", first ? "{" : ",", name);
        json_string(b, text, strlen(text));
        cli_buf_printf(b, "%s", last ? "}\n" : "");
        break;
    }
}

void cli_out_stat(struct cli_buf *b, enum cli_format f, int first, int last, const char *name,
                  uint64_t v)
{
    unsigned long long u = (unsigned long long)v;
    switch (f) {
    case CLI_FMT_PLAIN:
        cli_buf_printf(b, "%s: %llu\n", name, u);
        break;
    case CLI_FMT_CSV:
        cli_buf_printf(b, "%s,%llu\n", name, u);
        break;
    case CLI_FMT_JSON:
        cli_buf_printf(b, "%s\"%s\":%llu%s", first ? "{" : ",", name, u, last ? "}\n" : "");
        break;
    }
}

size_t cli_key_kept(size_t len)
{
    return len < TXKV_DEADLOCK_KEY_MAX ? len : TXKV_DEADLOCK_KEY_MAX;
}

unsigned cli_deadlock_ntxns(const struct txkv_deadlock_info *d)
{
    return d->ntxns < TXKV_DEADLOCK_MAX_TXNS ? d->ntxns : TXKV_DEADLOCK_MAX_TXNS;
}

/* "T1 (txn 3)", or "txn 3" when no session is known. */
static void txn_label(struct cli_buf *b, const char *name, uint64_t id)
{
    if (name)
        cli_buf_printf(b, "%s (txn %llu)", name, (unsigned long long)id);
    else
        cli_buf_printf(b, "txn %llu", (unsigned long long)id);
}

/* A key of the lock table, quoted, "..." after it when txkv kept only a prefix. */
static void lock_key_plain(struct cli_buf *b, const unsigned char *k, size_t len)
{
    cli_quote(b, k, cli_key_kept(len), 0);
    if (len > TXKV_DEADLOCK_KEY_MAX)
        cli_buf_puts(b, "...");
}

/* "name":"bytes","name_truncated":false, or "name":null when unbounded. */
static void lock_key_json(struct cli_buf *b, const char *name, int present, const unsigned char *k,
                          size_t len)
{
    if (!present) {
        cli_buf_printf(b, "\"%s\":null", name);
        return;
    }
    json_bytes_field(b, name, k, cli_key_kept(len));
    cli_buf_printf(b, ",\"%s_truncated\":%s", name, len > TXKV_DEADLOCK_KEY_MAX ? "true" : "false");
}

/* A range as LOCKS prints it: [lo, hi], (-inf, ... or ..., +inf) when unbounded. */
static void range_plain(struct cli_buf *b, int has_lo, const unsigned char *lo, size_t lolen,
                        int has_hi, const unsigned char *hi, size_t hilen)
{
    if (has_lo) {
        cli_buf_putc(b, '[');
        lock_key_plain(b, lo, lolen);
    } else {
        cli_buf_puts(b, "(-inf");
    }
    cli_buf_puts(b, ", ");
    if (has_hi) {
        lock_key_plain(b, hi, hilen);
        cli_buf_putc(b, ']');
    } else {
        cli_buf_puts(b, "+inf)");
    }
}

/* Did txns[i] of a deadlock wait for a key range (a SERIALIZABLE
 * PESSIMISTIC scan) rather than a key? */
static int dl_waited_range(const struct txkv_deadlock_info *d, unsigned i)
{
    return d->range[i] != 0;
}

static void deadlock_plain(struct cli_buf *b, const struct txkv_deadlock_info *d,
                           const char *const *names, const char *victim)
{
    unsigned n = cli_deadlock_ntxns(d);
    cli_buf_printf(b, "deadlock %llu:", (unsigned long long)d->seq);
    for (unsigned i = 0; i < n; i++) {
        size_t kl = cli_key_kept(d->klens[i]);
        cli_buf_puts(b, i ? ", " : " ");
        txn_label(b, names[i], d->txns[i]);
        if (dl_waited_range(d, i)) {
            cli_buf_puts(b, " waited for RANGE ");
            range_plain(b, d->has_lo[i], d->keys[i], d->klens[i], d->has_hi[i], d->his[i],
                        d->hilens[i]);
            continue;
        }
        cli_buf_puts(b, " waited for ");
        cli_put_word(b, d->keys[i], kl);
        if (kl < d->klens[i])
            cli_buf_puts(b, "...");
    }
    cli_buf_puts(b, "; victim ");
    txn_label(b, victim, d->victim);
    cli_buf_putc(b, '\n');
}

void cli_out_deadlock(struct cli_buf *b, enum cli_format f, uint64_t index,
                      const struct txkv_deadlock_info *d, const char *const *names,
                      const char *victim)
{
    unsigned n = cli_deadlock_ntxns(d);
    unsigned long long seq = (unsigned long long)d->seq;
    switch (f) {
    case CLI_FMT_PLAIN:
        deadlock_plain(b, d, names, victim);
        break;
    case CLI_FMT_CSV:
        /* seq,txn,txn_session,lock,key,hi,truncated,victim: lock is key or
         * range; a range's key and hi are its bounds, empty when unbounded */
        for (unsigned i = 0; i < n; i++) {
            int range = dl_waited_range(d, i);
            int has_lo = !range || d->has_lo[i], has_hi = range && d->has_hi[i];
            size_t kl = cli_key_kept(d->klens[i]), hl = cli_key_kept(d->hilens[i]);
            cli_buf_printf(b, "%llu,%llu,", seq, (unsigned long long)d->txns[i]);
            if (names[i])
                csv_field(b, names[i], strlen(names[i]));
            cli_buf_puts(b, range ? ",range," : ",key,");
            if (has_lo)
                csv_field(b, d->keys[i], kl);
            cli_buf_putc(b, ',');
            if (has_hi)
                csv_field(b, d->his[i], hl);
            cli_buf_printf(b, ",%d,%d\n",
                           (has_lo && kl < d->klens[i]) || (has_hi && hl < d->hilens[i]),
                           d->txns[i] == d->victim);
        }
        break;
    case CLI_FMT_JSON:
        if (index)
            cli_buf_putc(b, ',');
        cli_buf_printf(b, "{\"seq\":%llu,\"victim\":%llu,\"cycle\":[", seq,
                       (unsigned long long)d->victim);
        for (unsigned i = 0; i < n; i++) {
            size_t kl = cli_key_kept(d->klens[i]);
            cli_buf_printf(b, "%s{\"txn\":%llu,", i ? "," : "", (unsigned long long)d->txns[i]);
            if (names[i]) {
                cli_buf_puts(b, "\"session\":");
                json_string(b, names[i], strlen(names[i]));
                cli_buf_putc(b, ',');
            }
            if (dl_waited_range(d, i)) {
                cli_buf_puts(b, "\"lock\":\"range\",");
                lock_key_json(b, "lo", d->has_lo[i], d->keys[i], d->klens[i]);
                cli_buf_putc(b, ',');
                lock_key_json(b, "hi", d->has_hi[i], d->his[i], d->hilens[i]);
                cli_buf_putc(b, '}');
                continue;
            }
            cli_buf_puts(b, "\"lock\":\"key\",");
            json_bytes_field(b, "key", d->keys[i], kl);
            cli_buf_printf(b, ",\"key_truncated\":%s}", kl < d->klens[i] ? "true" : "false");
        }
        cli_buf_puts(b, "]}");
        break;
    }
}

static const char *lock_mode_name(int mode)
{
    switch (mode) {
    case TXKV_LOCK_SHARED:
        return "S";
    case TXKV_LOCK_EXCLUSIVE:
        return "X";
    case TXKV_LOCK_RANGE:
        return "RANGE";
    }
    return "?";
}

void cli_out_lock(struct cli_buf *b, enum cli_format f, uint64_t index,
                  const struct txkv_lock_info *l, const char *name)
{
    int range = l->mode == TXKV_LOCK_RANGE;
    int has_lo = !range || l->has_lo, has_hi = range && l->has_hi;
    const char *state = l->granted ? "held" : "waiting";
    switch (f) {
    case CLI_FMT_PLAIN:
        txn_label(b, name, l->txn);
        cli_buf_printf(b, " %s ", lock_mode_name(l->mode));
        if (!range)
            lock_key_plain(b, l->key, l->klen);
        else /* the range covers lo <= key <= hi */
            range_plain(b, has_lo, l->key, l->klen, has_hi, l->hi, l->hilen);
        cli_buf_printf(b, " %s\n", state);
        break;
    case CLI_FMT_CSV:
        /* txn,session,mode,state,key,hi,truncated: a range's missing bound is empty */
        cli_buf_printf(b, "%llu,", (unsigned long long)l->txn);
        if (name)
            csv_field(b, name, strlen(name));
        cli_buf_printf(b, ",%s,%s,", lock_mode_name(l->mode), state);
        if (has_lo)
            csv_field(b, l->key, cli_key_kept(l->klen));
        cli_buf_putc(b, ',');
        if (has_hi)
            csv_field(b, l->hi, cli_key_kept(l->hilen));
        cli_buf_printf(b, ",%d\n",
                       (has_lo && l->klen > TXKV_DEADLOCK_KEY_MAX) ||
                           (has_hi && l->hilen > TXKV_DEADLOCK_KEY_MAX));
        break;
    case CLI_FMT_JSON:
        if (index)
            cli_buf_putc(b, ',');
        cli_buf_printf(b, "{\"txn\":%llu,", (unsigned long long)l->txn);
        if (name) {
            cli_buf_puts(b, "\"session\":");
            json_string(b, name, strlen(name));
            cli_buf_putc(b, ',');
        }
        cli_buf_printf(b, "\"mode\":\"%s\",\"state\":\"%s\",", lock_mode_name(l->mode), state);
        if (!range) {
            lock_key_json(b, "key", 1, l->key, l->klen);
        } else {
            lock_key_json(b, "lo", has_lo, l->key, l->klen);
            cli_buf_putc(b, ',');
            lock_key_json(b, "hi", has_hi, l->hi, l->hilen);
        }
        cli_buf_putc(b, '}');
        break;
    }
}
