/*
 * check.c - the history checker (Elle/Jepsen style, simplified): builds the
 * dependency graph of a history's committed transactions and finds the
 * anomalies of Adya's classification in it.  Used by tests/txn/history
 * (randomized runs on txkv, and hand-written histories that test the
 * checker itself) and by kv-bench --verify (runs on every engine).
 *
 * Edges between committed transactions:
 *   ww  T1 -> T2: T2 overwrote the version T1 wrote (T2 read it first);
 *   wr  T1 -> T2: T2 read the version T1 wrote;
 *   rw  T1 -> T2: T1 read a version (or the key's absence) and T2 wrote the
 *       next one; "rw-p" when the read was part of a range scan.
 * Anomalies: G1a (a read of an aborted write), G1b (a read of an
 * intermediate write), G0 (a ww cycle), G1c (a ww/wr cycle), lost update
 * (two committed writes of one predecessor), G-single (a cycle with exactly
 * one rw edge), G2 (any cycle); also garbage reads, a transaction not
 * reading its own writes, and final values off the end of their chain.
 * Strongly connected components (iterative Tarjan) find the cycles, a BFS
 * inside the component the shortest one to print.  Which anomalies each
 * level forbids: hist_forbidden, after docs/design.md's isolation table.
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define HIST_E_ALL (HIST_E_WW | HIST_E_WR | HIST_E_RW | HIST_E_RWP)

static void hist_oom(void) __attribute__((noreturn));
static void hist_oom(void)
{
    fputs("history checker: out of memory\n", stderr);
    exit(1);
}

static void *hist_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        hist_oom();
    return q;
}

static void *hist_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        hist_oom();
    return p;
}

#define HIST_GROW(arr, n, cap)                                                                     \
    do {                                                                                           \
        if ((n) == (cap)) {                                                                        \
            (cap) = (cap) ? 2 * (cap) : 1024;                                                      \
            (arr) = hist_xrealloc((arr), (cap) * sizeof *(arr));                                   \
        }                                                                                          \
    } while (0)

static const struct hist_tx *gtx(const struct hist_checker *c, uint32_t g)
{
    int t = c->thr[g];
    return &c->logs[t].txs[g - c->base[t]];
}

static const struct hist_op *gops(const struct hist_checker *c, uint32_t g)
{
    return &c->logs[c->thr[g]].ops[gtx(c, g)->op0];
}

/* The put behind a value id, or NULL for garbage. */
static struct hist_wr *lookup(const struct hist_checker *c, uint64_t id, uint32_t *gtxp)
{
    uint64_t t = id >> HIST_VID_SHIFT, i = id & HIST_VID_MASK;
    if (id == HIST_BADVAL || t < 1 || t > (uint64_t)c->h.nlogs || i < 1 || i > c->logs[t - 1].nwr)
        return NULL;
    struct hist_wr *w = &c->logs[t - 1].wrs[i - 1];
    *gtxp = (uint32_t)(c->base[t - 1] + w->tx);
    return w;
}

static void val_name(char *buf, size_t n, uint64_t v)
{
    if (v == HIST_NOVAL)
        snprintf(buf, n, "absent");
    else if (v == HIST_BADVAL)
        snprintf(buf, n, "garbage");
    else
        snprintf(buf, n, "%u:%" PRIu64, (unsigned)(v >> HIST_VID_SHIFT), v & HIST_VID_MASK);
}

static const char *status_name(int s)
{
    return s == HIST_COMMITTED    ? "committed"
           : s == HIST_USER_ABORT ? "aborted by the test"
                                  : "failed";
}

/* "T12 (thread 3, OPTIMISTIC): r h00000001.2=1:5 w h00000001.2=3:7 ..." */
static void tx_describe(const struct hist_checker *c, uint32_t g,
                        void (*print)(const char *line, void *arg), void *arg)
{
    const struct hist_tx *tx = gtx(c, g);
    const struct hist_op *o = gops(c, g);
    char line[600];
    int n = snprintf(line, sizeof line, "  T%u (thread %d, %s%s, %s):", g, (int)c->thr[g] + 1,
                     tx->cc == HIST_PESSIMISTIC  ? "PESSIMISTIC"
                     : tx->cc == HIST_OPTIMISTIC ? "OPTIMISTIC"
                                                 : "-",
                     tx->rdonly == 2 ? ", TXKV_RDONLY"
                     : tx->rdonly    ? ", read-only"
                                     : "",
                     status_name(tx->status));
    for (uint32_t i = 0; i < tx->nops && n < (int)sizeof line - 48; i++) {
        char k[32], v[32];
        c->h.key_name(k, sizeof k, o[i].key, c->h.arg);
        val_name(v, sizeof v, o[i].val);
        n += snprintf(line + n, sizeof line - (size_t)n, " %s %s=%s",
                      o[i].kind == HIST_WRITE  ? "w"
                      : o[i].kind == HIST_SCAN ? "scan"
                                               : "r",
                      k, v);
    }
    print(line, arg);
}

static void add_edge(struct hist_checker *c, uint32_t from, uint32_t to, uint32_t key, int kind)
{
    if (from == to)
        return;
    HIST_GROW(c->e, c->ne, c->cape);
    c->e[c->ne++] = (struct hist_edge){.from = from, .to = to, .key = key, .kind = (uint8_t)kind};
}

static void example(char *buf, size_t n, long count, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void example(char *buf, size_t n, long count, const char *fmt, ...)
{
    if (count != 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, n, fmt, ap);
    va_end(ap);
}

/* Links every committed final write into its predecessor's successor list. */
static void build_versions(struct hist_checker *c)
{
    for (uint32_t g = 0; g < c->n; g++) {
        const struct hist_tx *tx = gtx(c, g);
        if (tx->status != HIST_COMMITTED)
            continue;
        const struct hist_op *o = gops(c, g);
        for (uint32_t i = 0; i < tx->nops; i++) {
            uint32_t wt;
            struct hist_wr *w;
            if (o[i].kind != HIST_WRITE || !(w = lookup(c, o[i].val, &wt)) || !w->final)
                continue;
            uint32_t *head;
            uint32_t pt;
            struct hist_wr *p = w->pred == HIST_NOVAL ? NULL : lookup(c, w->pred, &pt);
            if (w->pred == HIST_NOVAL)
                head = &c->root[w->key];
            else if (p)
                head = &p->succ;
            else
                continue; /* read garbage: reported as such */
            HIST_GROW(c->links, c->nlinks, c->caplinks);
            c->links[c->nlinks] = (struct hist_link){.tx = g, .val = o[i].val, .next = *head};
            *head = (uint32_t)++c->nlinks;
        }
    }
}

/* Successor list of version v of key (v HIST_NOVAL: the key's absence). */
static uint32_t succ_of(const struct hist_checker *c, uint32_t key, uint64_t v)
{
    uint32_t t;
    struct hist_wr *w;
    if (v == HIST_NOVAL)
        return c->root[key];
    return (w = lookup(c, v, &t)) ? w->succ : 0;
}

static void build_edges(struct hist_checker *c)
{
    char kn[32], vn[32];
    uint32_t maxops = 1, *own;
    for (uint32_t g = 0; g < c->n; g++)
        if (gtx(c, g)->nops > maxops)
            maxops = gtx(c, g)->nops;
    own = hist_xrealloc(NULL, maxops * sizeof *own); /* ops: each key's latest own write */
    for (uint32_t g = 0; g < c->n; g++) {
        const struct hist_tx *tx = gtx(c, g);
        if (tx->status != HIST_COMMITTED)
            continue;
        const struct hist_op *o = gops(c, g);
        uint32_t nown = 0; /* own[0..nown): the keys it wrote so far, its latest values */
        for (uint32_t i = 0; i < tx->nops; i++) {
            uint32_t key = o[i].key, k, wt;
            uint64_t v = o[i].val;
            struct hist_wr *w;
#define NAMES() (c->h.key_name(kn, sizeof kn, key, c->h.arg), val_name(vn, sizeof vn, v))
            for (k = 0; k < nown && o[own[k]].key != key; k++)
                ;
            if (o[i].kind == HIST_WRITE) {
                if (k == nown)
                    nown++;
                own[k] = i;
                w = lookup(c, v, &wt);
                if (w && w->final && w->pred != HIST_NOVAL) {
                    uint32_t pt;
                    struct hist_wr *p = lookup(c, w->pred, &pt);
                    if (p &&
                        c->logs[c->thr[pt]].txs[pt - c->base[c->thr[pt]]].status ==
                            HIST_COMMITTED &&
                        p->final)
                        add_edge(c, pt, g, key, HIST_E_WW);
                }
                continue;
            }
            if (k < nown) { /* a read of a key it wrote: its own latest value */
                if (v != o[own[k]].val) {
                    if (++c->ryw == 1)
                        NAMES();
                    example(c->ex_ryw, sizeof c->ex_ryw, c->ryw,
                            "T%u read %s=%s after writing it, not its own latest write", g, kn, vn);
                }
                continue;
            }
            if (v != HIST_NOVAL) {
                if (!(w = lookup(c, v, &wt)) || w->key != key) {
                    if (++c->garbage == 1)
                        NAMES();
                    example(c->ex_garbage, sizeof c->ex_garbage, c->garbage,
                            "T%u read %s=%s: no write put that value there", g, kn, vn);
                    continue;
                }
                int st = gtx(c, wt)->status;
                if (st != HIST_COMMITTED) {
                    if (++c->g1a == 1)
                        NAMES();
                    example(c->ex_g1a, sizeof c->ex_g1a, c->g1a,
                            "G1a: T%u read %s=%s, written by T%u, which %s", g, kn, vn, wt,
                            st == HIST_USER_ABORT ? "the test aborted" : "failed to commit");
                    continue;
                }
                if (!w->final) {
                    if (++c->g1b == 1)
                        NAMES();
                    example(c->ex_g1b, sizeof c->ex_g1b, c->g1b,
                            "G1b: T%u read %s=%s, an intermediate write of T%u", g, kn, vn, wt);
                    continue;
                }
                add_edge(c, wt, g, key, HIST_E_WR);
            }
            for (uint32_t l = succ_of(c, key, v); l; l = c->links[l - 1].next)
                add_edge(c, g, c->links[l - 1].tx, key,
                         o[i].kind == HIST_SCAN ? HIST_E_RWP : HIST_E_RW);
        }
    }
#undef NAMES
    free(own);
    /* CSR by source. */
    c->off = hist_xcalloc(c->n + 1, sizeof *c->off);
    struct hist_edge *sorted = hist_xrealloc(NULL, c->ne * sizeof *sorted);
    for (size_t i = 0; i < c->ne; i++)
        c->off[c->e[i].from + 1]++;
    for (size_t v = 0; v < c->n; v++)
        c->off[v + 1] += c->off[v];
    size_t *pos = hist_xrealloc(NULL, (c->n + 1) * sizeof *pos);
    memcpy(pos, c->off, (c->n + 1) * sizeof *pos);
    for (size_t i = 0; i < c->ne; i++)
        sorted[pos[c->e[i].from]++] = c->e[i];
    free(pos);
    free(c->e);
    c->e = sorted;
}

/* Lost updates: two committed writes with the same predecessor. */
static void fork_at(struct hist_checker *c, uint32_t head, uint32_t key, uint64_t pred)
{
    if (!head || !c->links[head - 1].next)
        return;
    c->fork[key] = 1;
    if (++c->lost == 1) {
        char kn[32], vn[32];
        const struct hist_link *a = &c->links[head - 1], *b = &c->links[a->next - 1];
        c->h.key_name(kn, sizeof kn, key, c->h.arg);
        val_name(vn, sizeof vn, pred);
        snprintf(c->ex_lost, sizeof c->ex_lost,
                 "lost update: T%u and T%u both read %s=%s and both overwrote it", b->tx, a->tx, kn,
                 vn);
        c->cyc_lost[0] = b->tx;
        c->cyc_lost[1] = a->tx;
        c->ncyc_lost = 2;
    }
}

static void check_forks(struct hist_checker *c)
{
    for (size_t key = 0; key < c->nkeys; key++)
        fork_at(c, c->root[key], (uint32_t)key, HIST_NOVAL);
    for (int t = 0; t < c->h.nlogs; t++)
        for (size_t i = 0; i < c->logs[t].nwr; i++) {
            struct hist_wr *w = &c->logs[t].wrs[i];
            fork_at(c, w->succ, w->key, HIST_VID(t, i));
        }
}

/* After the run every key holds the last version of its chain, and every
 * committed write of the key is on the chain. */
static void check_final(struct hist_checker *c)
{
    long *writes = hist_xcalloc(c->nkeys, sizeof *writes);
    for (size_t i = 0; i < c->nlinks; i++) {
        uint32_t wt;
        struct hist_wr *w = lookup(c, c->links[i].val, &wt);
        writes[w->key]++;
    }
    for (size_t key = 0; key < c->nkeys; key++) {
        char kn[32], vn[32], wn[32];
        c->h.key_name(kn, sizeof kn, (uint32_t)key, c->h.arg);
        uint64_t tail = HIST_NOVAL;
        long len = 0;
        if (c->fork[key])
            continue; /* reported as a lost update */
        for (uint32_t l = c->root[key]; l; l = succ_of(c, (uint32_t)key, tail)) {
            tail = c->links[l - 1].val;
            len++;
        }
        uint64_t got = c->h.final_value((uint32_t)key, c->h.arg);
        if (got != tail || len != writes[key]) {
            val_name(vn, sizeof vn, got);
            val_name(wn, sizeof wn, tail);
            example(c->ex_final, sizeof c->ex_final, ++c->final_bad,
                    "%s holds %s at the end; its chain of %ld versions (%ld committed writes) "
                    "ends at %s",
                    kn, vn, len, writes[key], wn);
        }
    }
    free(writes);
}

/* Iterative Tarjan over the edges in mask; returns the number of components. */
static uint32_t scc(const struct hist_checker *c, unsigned mask, uint32_t *comp)
{
    const uint32_t UNSET = UINT32_MAX;
    size_t n = c->n;
    uint32_t *idx = hist_xrealloc(NULL, n * sizeof *idx),
             *low = hist_xrealloc(NULL, n * sizeof *low);
    uint32_t *stk = hist_xrealloc(NULL, n * sizeof *stk), *cs = hist_xrealloc(NULL, n * sizeof *cs);
    size_t *ce = hist_xrealloc(NULL, n * sizeof *ce);
    uint8_t *on = hist_xcalloc(n, 1);
    uint32_t counter = 0, ncomp = 0;
    size_t sp = 0, csp = 0;
    for (size_t i = 0; i < n; i++)
        idx[i] = UNSET;
    for (uint32_t s = 0; s < n; s++) {
        if (idx[s] != UNSET)
            continue;
        idx[s] = low[s] = counter++;
        stk[sp++] = s;
        on[s] = 1;
        cs[csp] = s;
        ce[csp++] = c->off[s];
        while (csp) {
            uint32_t v = cs[csp - 1];
            size_t e = ce[csp - 1];
            if (e < c->off[v + 1]) {
                ce[csp - 1]++;
                if (!(c->e[e].kind & mask))
                    continue;
                uint32_t w = c->e[e].to;
                if (idx[w] == UNSET) {
                    idx[w] = low[w] = counter++;
                    stk[sp++] = w;
                    on[w] = 1;
                    cs[csp] = w;
                    ce[csp++] = c->off[w];
                } else if (on[w] && idx[w] < low[v]) {
                    low[v] = idx[w];
                }
                continue;
            }
            if (low[v] == idx[v]) {
                uint32_t x;
                do {
                    x = stk[--sp];
                    on[x] = 0;
                    comp[x] = ncomp;
                } while (x != v);
                ncomp++;
            }
            if (--csp && low[v] < low[cs[csp - 1]])
                low[cs[csp - 1]] = low[v];
        }
    }
    free(idx);
    free(low);
    free(stk);
    free(cs);
    free(ce);
    free(on);
    return ncomp;
}

/* Shortest path from s to t over edges in mask inside component comp[s]
 * (t == s: a cycle).  Writes its edge indices to path; returns the length,
 * 0 if there is none. */
static size_t bfs(struct hist_checker *c, unsigned mask, const uint32_t *comp, uint32_t s,
                  uint32_t t, size_t *path, size_t maxpath)
{
    uint32_t gen = ++c->gen, head = 0, tail = 0;
    c->queue[tail++] = s;
    c->stamp[s] = gen;
    while (head < tail) {
        uint32_t v = c->queue[head++];
        for (size_t e = c->off[v]; e < c->off[v + 1]; e++) {
            uint32_t w = c->e[e].to;
            if (!(c->e[e].kind & mask) || comp[w] != comp[s])
                continue;
            if (w == t) {
                size_t n = 0, pe = e;
                for (;;) { /* count, then fill backwards */
                    n++;
                    uint32_t from = c->e[pe].from;
                    if (from == s)
                        break;
                    pe = c->parent[from];
                }
                size_t len = n;
                pe = e;
                for (size_t i = n; i-- > 0;) {
                    if (i < maxpath)
                        path[i] = pe;
                    if (i)
                        pe = c->parent[c->e[pe].from];
                }
                return len;
            }
            if (c->stamp[w] != gen) {
                c->stamp[w] = gen;
                c->parent[w] = (uint32_t)e;
                c->queue[tail++] = w;
            }
        }
    }
    return 0;
}

static const char *kind_name(int k)
{
    return k == HIST_E_WW ? "ww" : k == HIST_E_WR ? "wr" : k == HIST_E_RW ? "rw" : "rw-p";
}

/* "G1c: T1 -ww(h00000000.3)-> T7 -wr(h00000000.1)-> T1" */
static void describe_cycle(struct hist_checker *c, char *buf, size_t n, const char *what,
                           const size_t *path, size_t len, size_t maxpath, uint32_t *txs, int *ntxs)
{
    int m = snprintf(buf, n, "%s: T%u", what, c->e[path[0]].from);
    *ntxs = 0;
    for (size_t i = 0; i < len && i < maxpath && m < (int)n - 64; i++) {
        char kn[32];
        const struct hist_edge *e = &c->e[path[i]];
        c->h.key_name(kn, sizeof kn, e->key, c->h.arg);
        m += snprintf(buf + m, n - (size_t)m, " -%s(%s)-> T%u", kind_name(e->kind), kn, e->to);
        if (*ntxs < 8)
            txs[(*ntxs)++] = e->from;
    }
    if (len > maxpath)
        snprintf(buf + m, n - (size_t)m, " ... (%zu edges)", len);
}

#define MAXPATH 32

/* Components of the edges in mask that hold a cycle; the first one described. */
static long cycles(struct hist_checker *c, unsigned mask, const char *what, char *ex, size_t exn,
                   uint32_t *txs, int *ntxs, uint32_t *comp)
{
    uint32_t ncomp = scc(c, mask, comp);
    uint32_t *size = hist_xcalloc(ncomp, sizeof *size);
    long found = 0;
    for (size_t v = 0; v < c->n; v++)
        size[comp[v]]++;
    for (uint32_t v = 0; v < c->n; v++) {
        if (size[comp[v]] < 2)
            continue;
        if (++found == 1) {
            size_t path[MAXPATH];
            size_t len = bfs(c, mask, comp, v, v, path, MAXPATH);
            describe_cycle(c, ex, exn, what, path, len, MAXPATH, txs, ntxs);
        }
        size[comp[v]] = 0; /* count each component once */
    }
    free(size);
    return found;
}

/* G-single: an rw edge a -> b and a path b -> a of ww and wr edges; counted
 * per component of the whole graph. */
static void check_gsingle(struct hist_checker *c, const uint32_t *comp)
{
    uint32_t ncomp = 0;
    for (size_t v = 0; v < c->n; v++)
        if (comp[v] + 1 > ncomp)
            ncomp = comp[v] + 1;
    uint8_t *done = hist_xcalloc(ncomp ? ncomp : 1, 1);
    size_t path[MAXPATH + 1];
    for (size_t e = 0; e < c->ne; e++) {
        const struct hist_edge *x = &c->e[e];
        if (!(x->kind & (HIST_E_RW | HIST_E_RWP)) || comp[x->from] != comp[x->to] ||
            done[comp[x->from]])
            continue;
        size_t len = bfs(c, HIST_E_WW | HIST_E_WR, comp, x->to, x->from, path + 1, MAXPATH);
        if (!len)
            continue;
        done[comp[x->from]] = 1;
        if (++c->gsingle == 1) {
            path[0] = e;
            describe_cycle(c, c->ex_gsingle, sizeof c->ex_gsingle, "G-single", path, len + 1,
                           MAXPATH + 1, c->cyc_gsingle, &c->ncyc_gsingle);
        }
    }
    free(done);
}

void hist_check(struct hist_checker *c, const struct hist *h)
{
    memset(c, 0, sizeof *c);
    c->h = *h;
    c->logs = hist_xrealloc(NULL, (size_t)(h->nlogs ? h->nlogs : 1) * sizeof *c->logs);
    memcpy(c->logs, h->logs, (size_t)h->nlogs * sizeof *c->logs);
    c->base = hist_xcalloc((size_t)h->nlogs + 1, sizeof *c->base);
    uint32_t maxkey = 0;
    for (int t = 0; t < h->nlogs; t++) {
        c->base[t + 1] = c->base[t] + c->logs[t].ntx;
        for (size_t i = 0; i < c->logs[t].nwr; i++)
            if (c->logs[t].wrs[i].key + 1 > maxkey)
                maxkey = c->logs[t].wrs[i].key + 1;
        for (size_t i = 0; i < c->logs[t].nops; i++)
            if (c->logs[t].ops[i].key + 1 > maxkey)
                maxkey = c->logs[t].ops[i].key + 1;
    }
    c->n = c->base[h->nlogs];
    c->nkeys = maxkey;
    c->thr = hist_xrealloc(NULL, c->n * sizeof *c->thr);
    for (int t = 0; t < h->nlogs; t++)
        for (size_t i = 0; i < c->logs[t].ntx; i++)
            c->thr[c->base[t] + i] = (uint32_t)t;
    c->root = hist_xcalloc(c->nkeys + 1, sizeof *c->root);
    c->fork = hist_xcalloc(c->nkeys + 1, 1);
    c->stamp = hist_xcalloc(c->n + 1, sizeof *c->stamp);
    c->parent = hist_xcalloc(c->n + 1, sizeof *c->parent);
    c->queue = hist_xcalloc(c->n + 1, sizeof *c->queue);
    uint32_t *comp = hist_xcalloc(c->n + 1, sizeof *comp);

    build_versions(c);
    build_edges(c);
    check_forks(c);
    if (h->final_value)
        check_final(c);
    c->g0 = cycles(c, HIST_E_WW, "G0", c->ex_g0, sizeof c->ex_g0, c->cyc_g0, &c->ncyc_g0, comp);
    c->g1c = cycles(c, HIST_E_WW | HIST_E_WR, "G1c", c->ex_g1c, sizeof c->ex_g1c, c->cyc_g1c,
                    &c->ncyc_g1c, comp);
    c->g2item = cycles(c, HIST_E_WW | HIST_E_WR | HIST_E_RW, "G2-item", c->ex_g2, sizeof c->ex_g2,
                       c->cyc_g2, &c->ncyc_g2, comp);
    c->g2 = cycles(c, HIST_E_ALL, "cycle", c->ex_g2, sizeof c->ex_g2, c->cyc_g2, &c->ncyc_g2, comp);
    check_gsingle(c, comp); /* comp: the components of the whole graph */
    free(comp);
}

void hist_checker_free(struct hist_checker *c)
{
    free(c->logs);
    free(c->base);
    free(c->thr);
    free(c->e);
    free(c->off);
    free(c->links);
    free(c->root);
    free(c->fork);
    free(c->stamp);
    free(c->parent);
    free(c->queue);
}

/* The forbidden anomalies of the run's level; the first of each kind is described. */
long hist_forbidden(const struct hist_checker *c, int isolation,
                    void (*print)(const char *line, void *arg), void *arg)
{
    struct {
        long n;
        const char *ex;
        const uint32_t *txs;
        int ntxs;
        bool on;
    } a[] = {
        {c->garbage, c->ex_garbage, NULL, 0, true},
        {c->ryw, c->ex_ryw, NULL, 0, true},
        {c->g1a, c->ex_g1a, NULL, 0, true},
        {c->g1b, c->ex_g1b, NULL, 0, true},
        {c->g0, c->ex_g0, c->cyc_g0, c->ncyc_g0, true},
        {c->g1c, c->ex_g1c, c->cyc_g1c, c->ncyc_g1c, true},
        {c->lost, c->ex_lost, c->cyc_lost, c->ncyc_lost, true},
        {c->final_bad, c->ex_final, NULL, 0, true},
        {c->gsingle, c->ex_gsingle, c->cyc_gsingle, c->ncyc_gsingle,
         isolation != HIST_READ_COMMITTED},
        {c->g2, c->ex_g2, c->cyc_g2, c->ncyc_g2, isolation == HIST_SERIALIZABLE},
    };
    long total = 0;
    for (size_t i = 0; i < sizeof a / sizeof a[0]; i++) {
        if (!a[i].on || !a[i].n)
            continue;
        total += a[i].n;
        if (print) {
            char line[1300];
            snprintf(line, sizeof line, "%s (%ld in all)", a[i].ex, a[i].n);
            print(line, arg);
            for (int j = 0; j < a[i].ntxs; j++)
                tx_describe(c, a[i].txs[j], print, arg);
        }
    }
    return total;
}
